"""Hostile input: a database file handed to cohortlab is data, never code.

A view stored in place of a canonical table, or a macro named after a built-in function, would
run its own SQL whenever cohortlab reads the file: it can read any file the user can and show it
as a cohort name (a security review put ``/proc/self/environ`` and a key file into a report's
index page this way). Every way cohortlab opens a database refuses such a file, naming the
object; the secret never reaches any output."""

from __future__ import annotations

import re
import shutil

import duckdb
import pytest

from cohortlab import Lab
from cohortlab.errors import DatabaseError

from .conftest import Run

SECRET = "TOPSECRET-key-file-contents"


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "id_rsa"
    path.write_text(SECRET + "\n")
    return path


def _poisoned(seed_db, tmp_path, *statements: str) -> str:
    path = tmp_path / "shared.duckdb"
    shutil.copy(seed_db, path)
    con = duckdb.connect(str(path))
    for sql in statements:
        con.execute(sql)
    con.close()
    return str(path)


def _view_db(seed_db, tmp_path, secret) -> str:
    """``mp_cohorts`` replaced by a view that names each cohort after the secret file."""
    return _poisoned(
        seed_db, tmp_path,
        "CREATE TABLE mp_cohorts_real AS SELECT * FROM mp_cohorts",
        "DROP TABLE mp_cohorts",
        f"CREATE VIEW mp_cohorts AS SELECT * REPLACE ((SELECT content FROM read_text('{secret}')) AS name) "
        "FROM mp_cohorts_real")


def _macro_db(seed_db, tmp_path, secret) -> str:
    """A macro ``lower`` that reads the secret file in place of the built-in function."""
    return _poisoned(seed_db, tmp_path, f"CREATE MACRO lower(x) AS (SELECT content FROM read_text('{secret}'))")


@pytest.mark.parametrize("read_only", [False, True], ids=["read-write", "read-only"])
def test_a_view_in_place_of_a_canonical_table_is_refused_when_the_file_is_opened(seed_db, tmp_path, secret, read_only):
    db = _view_db(seed_db, tmp_path, secret)
    with pytest.raises(DatabaseError) as e:
        Lab(db, read_only=read_only)
    assert "view 'mp_cohorts'" in str(e.value) and "run SQL of its own" in str(e.value)
    assert 'DROP VIEW "mp_cohorts"' in str(e.value)
    assert SECRET not in str(e.value)


@pytest.mark.parametrize("read_only", [False, True], ids=["read-write", "read-only"])
def test_a_macro_named_after_a_built_in_function_is_refused(seed_db, tmp_path, secret, read_only):
    db = _macro_db(seed_db, tmp_path, secret)
    with pytest.raises(DatabaseError) as e:
        Lab(db, read_only=read_only)
    assert "macro 'lower'" in str(e.value) and 'DROP MACRO "lower"' in str(e.value)


def test_without_the_check_the_macro_would_have_taken_the_built_in_s_place(seed_db, tmp_path, secret):
    """What the refusal prevents: DuckDB resolves the attached file's macro before the built-in."""
    db = _macro_db(seed_db, tmp_path, secret)
    con = duckdb.connect(db, read_only=True)
    assert con.execute("SELECT lower('ABC')").fetchone()[0] == SECRET + "\n"
    con.close()


def test_a_macro_of_another_name_is_left_alone_and_any_stored_view_is_refused(seed_db, tmp_path):
    """A helper macro of its own name is never called by cohortlab: the file opens. cohortlab
    writes no view, and a view of any name may be read by a query of the user's (the error says
    to keep one's own views as TEMP views or in another database)."""
    db = _poisoned(seed_db, tmp_path, "CREATE MACRO my_share(a, b) AS a / b")
    with Lab(db, read_only=True) as lab:
        assert lab.engine.query_rows("SELECT count(*) FROM mp_cohort_members") == [(1,)]
    db = _poisoned(seed_db, tmp_path, "CREATE VIEW my_members AS SELECT * FROM mp_cohort_members")
    with pytest.raises(DatabaseError, match="view 'my_members'"):
        Lab(db, read_only=True)


@pytest.mark.parametrize("command", [["info"], ["simulate", "--cohort", "Seeded"],
                                     ["report", "--notebooks", "match_rates"]])
def test_the_commands_refuse_the_file_in_one_line_and_never_show_the_secret(seed_db, tmp_path, secret, cli, command):
    db = _view_db(seed_db, tmp_path, secret)
    extra = ["--out", str(tmp_path / "report")] if command[0] == "report" else []
    r: Run = cli(*command, "--db", db, *extra)
    r.assert_one_line_error("view 'mp_cohorts'")
    assert SECRET not in r.stdout + r.stderr
    assert not any(SECRET in p.read_text(errors="replace") for p in tmp_path.rglob("*")
                   if p.is_file() and p.suffix in (".html", ".json", ".ipynb", ".md"))


def test_queries_never_install_an_extension_from_the_network(seed_db, tmp_path):
    with Lab(str(tmp_path / "x.duckdb")) as lab:
        assert lab.engine.query_rows("SELECT current_setting('autoinstall_known_extensions')") == [(False,)]
    with Lab() as lab:
        assert lab.engine.query_rows("SELECT current_setting('autoinstall_known_extensions')") == [(False,)]


@pytest.mark.parametrize("statements, named", [
    # a built-in's name in another letter case: DuckDB looks names up without it
    (["CREATE MACRO \"MAX\"(x) AS (SELECT content FROM read_text('{secret}'))"], "macro 'MAX'"),
    # macros standing in for the functions the check itself calls, hiding a view
    (["CREATE MACRO duckdb_views() AS TABLE SELECT * FROM system.main.duckdb_views() WHERE internal",
      "CREATE MACRO duckdb_functions() AS TABLE SELECT * FROM system.main.duckdb_functions() WHERE internal",
      "CREATE VIEW leak AS SELECT content AS name FROM read_text('{secret}')"], "view 'leak'"),
    # one that runs (and fails, quoting the file) when the file's tables are listed, before any open
    (["CREATE MACRO duckdb_tables() AS TABLE SELECT t.* FROM system.main.duckdb_tables() t "
      "WHERE error('HOSTILE ' || (SELECT content FROM read_text('{secret}'))) IS NULL"], "table macro 'duckdb_tables'"),
])
def test_a_file_cannot_hide_from_the_check_or_run_before_it(seed_db, tmp_path, secret, cli, statements, named):
    """A red team's three ways around the first version of the check: a macro 'MAX' (the name
    compared with its case), table macros named duckdb_views/duckdb_functions that the check's own
    queries called (on a writable open the file's macros came first), and a duckdb_tables macro
    that ran when `info` listed the file's tables before the check (a traceback quoting the file).
    The check is the first query on the file and reads DuckDB's own catalog only."""
    db = _poisoned(seed_db, tmp_path, *(s.format(secret=secret) for s in statements))
    for read_only in (False, True):
        with pytest.raises(DatabaseError, match=re.escape(named)):
            Lab(db, read_only=read_only)
    for command in (["info"], ["simulate", "--cohort", "Seeded"], ["report", "--notebooks", "match_rates",
                                                                   "--out", str(tmp_path / "r")]):
        r: Run = cli(*command, "--db", db)
        r.assert_one_line_error(named)
        assert SECRET not in r.stdout + r.stderr


def test_an_object_outside_main_is_named_with_its_schema_and_the_advice_drops_it(seed_db, tmp_path):
    """The advice said DROP VIEW "v" for a view scratch.v (an analyst following it got 'View with
    name v does not exist'), and DROP MACRO "lower" for s.lower ('Cannot drop internal catalog
    entry'). Following the advice now makes the file open."""
    db = _poisoned(seed_db, tmp_path, "CREATE SCHEMA scratch", "CREATE VIEW scratch.v AS SELECT 1 AS x",
                   "CREATE SCHEMA s", "CREATE MACRO s.lower(x) AS x")
    with pytest.raises(DatabaseError) as e:
        Lab(db)
    message = str(e.value)
    assert "holds view 'scratch.v', macro 's.lower'" in message and 'drop each (DROP VIEW "scratch"."v";' in message
    con = duckdb.connect(db)
    con.execute('DROP VIEW "scratch"."v"')
    con.execute('DROP MACRO "s"."lower"')
    con.close()
    with Lab(db, read_only=True) as lab:
        assert lab.engine.query_rows("SELECT count(*) FROM mp_cohort_members") == [(1,)]


def test_a_report_refuses_an_observed_db_that_runs_sql_before_any_notebook(seed_db, tmp_path, secret, cli):
    """`-p observed_db=` a file holding a view: the EIT page failed half-way, after the report
    folder was made (an analyst's check of the day's build); it is refused first, as --db is."""
    observed = _view_db(seed_db, tmp_path, secret)
    out = tmp_path / "report"
    r: Run = cli("report", "--db", seed_db, "--out", out, "-p", f"observed_db={observed}",
                 "--notebooks", "eit_migration")
    r.assert_one_line_error("observed_db: ")
    assert "view 'mp_cohorts'" in r.stderr and not out.exists()
