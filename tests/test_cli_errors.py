"""User errors on the command line are one line ``error: ...`` naming the file or option, with a
non-zero exit and no traceback (docs/troubleshooting.md), and they are found before any work:

* a YAML file that is not UTF-8 text (a binary file) given as ``--settings``, ``--plan``,
  ``fetch --config`` or ``synth --config``;
* ``synth --config``: invalid YAML, an unknown key or a value of the wrong type;
* ``bench``: an unknown ``--scenario``, a bad ``--memory-limit`` (or ``$COHORTLAB_MEMORY_LIMIT``),
  and a failed step whose log went with the temporary folder;
* output files (``verify --out``, ``migrate ... --out / --chart``) in a folder that does not exist,
  checked before the simulation runs; ``verify --out`` writes ``.csv.gz`` like the others.
* a failed ``load`` into a new database path leaves neither the file nor the folders made for it.

(``fetch --from/--to``: tests/fetch/test_cli_arguments.py.)"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from cohortlab.cli import main
from tests.worlds import small_loaded_world

REPO = Path(__file__).resolve().parents[1]
BINARY = b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary, not YAML"
NOT_UTF8 = "not UTF-8 text (invalid byte at offset 0): save it as UTF-8"
PLAN = "name: switch\neit_timeline:\n  - {since: null, eit: customer_id}\n  - {since: 2026-02-01, eit: mparticle_id}\n"


def run(*args, env: dict[str, str | None] | None = None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def error_line(r) -> str:
    """The one ``error:`` line of a failed command (and nothing else on stderr, no traceback)."""
    assert r.exit_code not in (0, None), f"expected a failure, got exit 0:\n{r.output}"
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """A small synthetic world (cohorts Power Users, Recent Purchasers; an mParticle snapshot),
    loaded into a database file."""
    return small_loaded_world(tmp_path_factory.mktemp("cli-errors"))


@pytest.fixture
def binary(tmp_path):
    p = tmp_path / "binary.yaml"
    p.write_bytes(BINARY)
    return str(p)


@pytest.fixture
def plan(tmp_path):
    p = tmp_path / "plan.yaml"
    p.write_text(PLAN)
    return str(p)


# --------------------------------------------------------------------------- 1. not UTF-8 text
@pytest.mark.parametrize("command", [
    ["simulate", "--cohort", "Power Users"],
    ["verify", "--cohort", "Power Users"],
    ["explain", "--cohort", "Power Users", "--user", "someone"],
    ["remedies", "--cohort", "Power Users"],
    ["migrate", "compare"],
    ["migrate", "plan", "--plan", "{plan}"],
    ["migrate", "validate", "--plan", "{plan}", "--cohort", "Power Users"],
], ids=lambda c: " ".join(c[:2]))
def test_a_binary_settings_file_is_one_line_naming_it(db, binary, plan, command):
    args = [a.replace("{plan}", plan) for a in command]
    r = run(*args, "--db", db, "--settings", binary)
    line = error_line(r)  # the settings reader's message: the file named
    assert line.startswith("error: ") and line.endswith(f"{binary}: {NOT_UTF8}")
    assert r.stdout == ""  # nothing ran


@pytest.mark.parametrize("command", [
    ["migrate", "plan"],
    ["migrate", "compare"],
    ["migrate", "validate", "--cohort", "Power Users"],
], ids=lambda c: " ".join(c[:2]))
def test_a_binary_plan_file_is_one_line_naming_it(db, binary, command):
    r = run(*command, "--db", db, "--plan", binary)
    line = error_line(r)  # the plan reader's message: the file named
    assert line.startswith("error: ") and line.endswith(f"{binary}: {NOT_UTF8}")


def test_one_binary_plan_among_several_is_named(db, binary, plan):
    r = run("migrate", "compare", "--db", db, "--plan", plan, "--plan", binary)
    line = error_line(r)
    assert line.startswith("error: ") and line.endswith(f"{binary}: {NOT_UTF8}")


def test_a_binary_fetch_config_is_one_line_and_nothing_is_created(binary, tmp_path):
    out = tmp_path / "exports"
    env = {k: None for k in os.environ if k.startswith(("MIXPANEL_", "MPARTICLE_", "COHORTLAB_"))}
    r = run("fetch", "--out", out, "--config", binary, env=env)
    assert error_line(r) == f"error: {binary}: {NOT_UTF8}"
    assert not out.exists()


def test_a_binary_fetch_config_is_a_fetch_error_for_the_library(binary):
    from cohortlab.fetch import FetchError, load_credentials

    with pytest.raises(FetchError, match="binary.yaml: not UTF-8 text"):
        load_credentials(binary, env={})


def test_read_text_file_names_the_file(tmp_path, binary):
    from cohortlab.errors import CohortlabError, SettingsError, read_text_file

    with pytest.raises(SettingsError) as e:
        read_text_file(binary, SettingsError)
    assert str(e.value) == f"{binary}: {NOT_UTF8}"
    late = tmp_path / "late.yaml"
    late.write_bytes("a: é\n".encode() + b"b: \xe9\n")  # latin-1 after valid UTF-8
    with pytest.raises(CohortlabError, match=r"late.yaml: not UTF-8 text \(invalid byte at offset 9\)"):
        read_text_file(late)
    with pytest.raises(CohortlabError, match=r"missing.yaml: cannot read the settings file \(No such file"):
        read_text_file(tmp_path / "missing.yaml", what="the settings file")
    good = tmp_path / "good.yaml"
    good.write_text("a: é\n", encoding="utf-8")
    assert read_text_file(good) == "a: é\n"


# --------------------------------------------------------------------------- 3. synth --config
@pytest.mark.parametrize("text, problem", [
    (None, NOT_UTF8),
    ("a: [1, 2\n", "not valid YAML (line 2, column 1: expected ',' or ']', but got '<stream end>')"),
    ("- 1\n- 2\n", "expected a mapping of parameters, got list"),
    ("login_share: abc\n",
     "invalid world config: login_share: Input should be a valid number, unable to parse string as a number "
     "(got 'abc')"),
    ("tiers: [{name: a, share: 0.5, rate_min: 1, rate_max: 2}]\n",
     "invalid world config: config: tier shares must add up to 1"),
    ("cohorts: [{id: 1, name: x, bogus: 2}]\n", "invalid world config: cohorts.0.bogus: unknown parameter"),
    ("scenario: nope\n",
     "unknown scenario 'nope'; expected one of healthy, customer_id_legacy, mid_migration, remediated, demo"),
], ids=["binary", "invalid-yaml", "a-list", "wrong-type", "model-check", "nested-unknown-key", "unknown-scenario"])
def test_a_bad_synth_config_is_one_line_naming_the_file(tmp_path, text, problem):
    cfg = tmp_path / "world.yaml"
    if text is None:
        cfg.write_bytes(BINARY)
    else:
        cfg.write_text(text)
    out = tmp_path / "w"
    r = run("synth", out, "--users", 10, "--config", cfg, "--no-progress")
    assert error_line(r) == f"error: {cfg}: {problem}"
    assert not out.exists()


def test_an_unknown_synth_config_key_lists_the_known_ones(tmp_path):
    cfg = tmp_path / "world.yaml"
    cfg.write_text("nope_key: 1\nlogin_share: 2\n")
    line = error_line(run("synth", tmp_path / "w", "--users", 10, "--config", cfg, "--no-progress"))
    assert line.startswith(f"error: {cfg}: invalid world config: login_share: Input should be less than or equal "
                           "to 1 (got 2); nope_key: unknown parameter (known parameters: scenario, description, ")
    assert "pydantic" not in line and "For further information" not in line


def test_build_config_from_a_file_raises_a_settings_error(tmp_path):
    from cohortlab.errors import SettingsError
    from cohortlab.synth import build_config

    cfg = tmp_path / "world.yaml"
    cfg.write_text("churn_share: [1]\n")
    with pytest.raises(SettingsError, match=r"world.yaml: invalid world config: churn_share: Input should be"):
        build_config(config=cfg)


# --------------------------------------------------------------------------- 5. bench
@pytest.fixture
def in_checkout(monkeypatch):
    monkeypatch.chdir(REPO)  # the steps run `python -m bench.harness` from the checkout


def test_bench_refuses_an_unknown_scenario_up_front(in_checkout):
    r = run("bench", "--scenario", "nope", "--steps", "load")
    assert error_line(r) == ("error: --scenario nope: unknown scenario; expected one of healthy, customer_id_legacy, "
                             "mid_migration, remediated, demo")


def test_bench_refuses_a_bad_memory_limit_up_front(in_checkout):
    r = run("bench", "--memory-limit", "banana", "--steps", "load")
    assert error_line(r) == ("error: --memory-limit banana: not a memory size (e.g. 1.5GB, 800MB, 2GiB): "
                             "Memory must have a number (e.g. 1GB)")
    assert r.stdout == ""  # no world generated


def test_the_harness_checks_scenario_and_memory_limit_too(in_checkout, tmp_path):
    from bench.harness import BenchError, run_bench

    with pytest.raises(BenchError, match="unknown scenario 'nope'"):
        run_bench(users=100, scenario="nope", steps=["load"], keep=tmp_path / "k", say=lambda m: None)
    with pytest.raises(BenchError, match="memory_limit \"1GB'\": not a memory size"):
        run_bench(users=100, steps=["load"], memory_limit="1GB'", keep=tmp_path / "k", say=lambda m: None)
    assert not (tmp_path / "k").exists()


def test_a_bad_memory_limit_in_the_environment_is_one_line(db):
    r = run("simulate", "--db", db, "--cohort", "Power Users", env={"COHORTLAB_MEMORY_LIMIT": "lots"})
    assert error_line(r) == ("error: COHORTLAB_MEMORY_LIMIT='lots': not a memory size (e.g. 1.5GB, 800MB, 2GiB): "
                             "Memory must have a number (e.g. 1GB)")


@pytest.mark.parametrize("value", ["many", "0", "-1", "2.5"])
def test_a_bad_thread_count_in_the_environment_is_one_line(db, value):
    r = run("simulate", "--db", db, "--cohort", "Power Users", env={"COHORTLAB_THREADS": value})
    assert error_line(r) == (f"error: COHORTLAB_THREADS={value!r}: not a number of threads "
                             "(a whole number, at least 1, e.g. 2)")


def test_a_good_memory_limit_in_the_environment_is_used(db):
    r = run("simulate", "--db", db, "--cohort", "Power Users", "--no-store", env={"COHORTLAB_MEMORY_LIMIT": "500MB"})
    assert r.exit_code == 0, r.output


def test_a_failed_step_without_keep_gives_the_log_tail_not_a_removed_path(in_checkout, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run("bench", "--data", empty, "--steps", "load", "--repeat", "1")
    assert r.exit_code == 1 and "Traceback" not in r.stderr
    assert r.stderr.splitlines() == [
        "error: benchmark failed:",
        f"  load: failed (exit 1: FileNotFoundError: {empty}: expected mixpanel/ and/or mparticle/ export folders; "
        "the log was in a temporary folder, now removed: --keep DIR keeps it)",
    ]
    assert "cohortlab-bench-" not in r.output  # no path into the removed folder


def test_a_failed_step_with_keep_points_at_the_kept_log(in_checkout, tmp_path):
    empty, keep = tmp_path / "empty", tmp_path / "keep"
    empty.mkdir()
    r = run("bench", "--data", empty, "--steps", "load", "--repeat", "1", "--keep", keep)
    assert r.exit_code == 1 and "Traceback" not in r.stderr
    log = keep / "logs" / "load-1.log"
    assert r.stderr.splitlines() == ["error: benchmark failed:", f"  load: failed (exit 1; log {log})"]
    assert "expected mixpanel/ and/or mparticle/ export folders" in log.read_text()


# --------------------------------------------------------------------------- 6. output paths
@pytest.mark.parametrize("command, option, name", [
    (["verify", "--cohort", "Power Users"], "--out", "v.csv"),
    (["migrate", "compare"], "--out", "daily.csv"),
    (["migrate", "compare"], "--chart", "c.png"),
    (["migrate", "plan", "--plan", "{plan}"], "--out", "daily.csv"),
    (["migrate", "plan", "--plan", "{plan}"], "--chart", "c.png"),
    (["migrate", "validate", "--plan", "{plan}", "--cohort", "Power Users"], "--out", "u.csv"),
], ids=["verify-out", "compare-out", "compare-chart", "plan-out", "plan-chart", "validate-out"])
def test_an_output_in_a_missing_folder_is_refused_before_any_work(db, plan, tmp_path, command, option, name):
    target = tmp_path / "nodir" / name
    args = [a.replace("{plan}", plan) for a in command]
    r = run(*args, "--db", db, option, target)
    assert error_line(r) == f"error: {option} {target}: the folder {tmp_path / 'nodir'} does not exist"
    assert r.stdout == ""  # nothing was computed


@pytest.mark.parametrize("command, option, name, expected", [
    (["verify", "--cohort", "Power Users"], "--out", "v.txt", "a .csv, .csv.gz or .parquet"),
    (["migrate", "compare"], "--out", "daily.json", "a .csv, .csv.gz or .parquet"),
    (["migrate", "compare"], "--chart", "c.txt", "a .png, .svg or .pdf"),
], ids=["verify-out", "compare-out", "compare-chart"])
def test_an_output_with_a_wrong_suffix_is_refused_before_any_work(db, tmp_path, command, option, name, expected):
    target = tmp_path / name
    r = run(*command, "--db", db, option, target)
    assert error_line(r) == f"error: {option} {target}: expected {expected} file name"
    assert r.stdout == ""


def test_verify_writes_csv_gz(db, tmp_path):
    out = tmp_path / "profiles.csv.gz"
    r = run("verify", "--db", db, "--cohort", "Power Users", "--out", out, "--no-store")
    assert r.exit_code == 0, r.output
    with gzip.open(out, "rt") as f:
        assert f.readline().startswith("mpid,simulated,observed,agree,cause")
    df = pd.read_csv(out)
    assert len(df) > 0 and f"wrote {len(df):,} profiles to {out}" in r.stdout


def test_migrate_compare_writes_csv_gz_and_an_svg_chart(db, tmp_path):
    out, chart = tmp_path / "daily.csv.gz", tmp_path / "rates.svg"
    r = run("migrate", "compare", "--db", db, "--switch", "2026-02-01", "--out", out, "--chart", chart)
    assert r.exit_code == 0, r.output
    assert len(pd.read_csv(out)) > 0
    assert chart.read_text().lstrip().startswith("<?xml")


def test_options_that_make_no_sense_are_refused(db, tmp_path):
    r = run("report", "--db", db, "--keep-data", "--out", tmp_path / "r")
    assert error_line(r) == "error: --keep-data keeps the database loaded from --data: give --data (a --db is never copied)"
    assert not (tmp_path / "r").exists()
    r = run("verify", "--db", db, "--cohort", "Power Users", "--limit", "-5")
    assert r.exit_code == 2 and "Invalid value for '--limit': -5 is not in the range x>=0" in r.stderr


def test_export_of_an_unknown_table_makes_no_folder(db, tmp_path):
    out = tmp_path / "canonical"
    line = error_line(run("export", "--db", db, "--out", out, "--table", "mp_events", "--table", "nope"))
    assert line.startswith("error: not canonical tables: nope (known: loads, rejects, mp_events, ")
    assert not out.exists()


def test_export_counts_what_it_wrote_in_words(db, tmp_path):
    r = run("export", "--db", db, "--out", tmp_path / "one", "--table", "mp_events")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[-1] == f"exported 1 table to {tmp_path / 'one'}"
    r = run("export", "--db", db, "--out", tmp_path / "two", "--table", "mp_events", "--table", "loads")
    assert r.stdout.splitlines()[-1] == f"exported 2 tables to {tmp_path / 'two'}"


def test_export_over_existing_files_writes_nothing(db, tmp_path):
    out = tmp_path / "canonical"
    out.mkdir()
    (out / "mp_profiles.parquet").write_bytes(b"mine")
    line = error_line(run("export", "--db", db, "--out", out))
    # the option the command has, not the Python argument
    assert line == f"error: {out / 'mp_profiles.parquet'} exists (use --overwrite; overwrite=True in Python)"
    assert sorted(p.name for p in out.iterdir()) == ["mp_profiles.parquet"]  # not even the tables before it
    assert (out / "mp_profiles.parquet").read_bytes() == b"mine"
    r = run("export", "--db", db, "--out", out, "--overwrite")
    assert r.exit_code == 0, r.output
    assert (out / "mp_profiles.parquet").read_bytes()[:4] == b"PAR1"
    line = error_line(run("export", "--db", db, "--out", out))  # every file there now: the first named
    assert line.startswith(f"error: {out / 'loads.parquet'} exists; ") and line.endswith(" more table file(s) too (use --overwrite; overwrite=True in Python)")


def test_export_never_writes_a_table_under_its_final_name(db, tmp_path):
    """A table file appears whole, by a rename: an export killed while DuckDB writes one leaves no
    truncated <table>.parquet (it did: unreadable, 'No magic bytes found', and the next export
    refused to replace it without --overwrite)."""
    from cohortlab.engines.duckdb import DuckDBEngine
    from cohortlab.engines.spark.readers import export_canonical

    out = tmp_path / "canonical"
    (out).mkdir()
    (out / ".mp_events.parquet.part").write_bytes(b"left by a killed export")
    engine = DuckDBEngine(db, read_only=True)
    execute, seen = engine.execute, []

    def checking(sql, params=None):
        execute(sql, params)
        if sql.startswith("COPY ("):
            seen.append(sorted(p.name for p in out.iterdir() if not p.name.startswith(".")))

    engine.execute = checking
    try:
        counts = export_canonical(engine, out)
    finally:
        engine.close()
    assert seen[0] == [] and seen[-1] == sorted(f"{t}.parquet" for t in list(counts)[:-1])
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{t}.parquet" for t in counts)  # no .part left


def test_an_interrupted_export_removes_the_tables_it_added(db, tmp_path):
    """An export stopped after 3 of its 18 tables left them, and the next run was refused
    ("loads.parquet exists; 2 more ... use --overwrite"). The files it added go; a file it
    replaced (with overwrite) stays replaced, a folder it did not make stays."""
    from cohortlab.engines.duckdb import DuckDBEngine
    from cohortlab.engines.spark.readers import export_canonical

    out = tmp_path / "canonical"
    engine = DuckDBEngine(db, read_only=True)
    execute, copies = engine.execute, []

    def stopping(sql, params=None):
        if sql.startswith("COPY (") and len(copies) == 3:
            raise KeyboardInterrupt
        execute(sql, params)
        copies.append(sql)

    engine.execute = stopping
    try:
        with pytest.raises(KeyboardInterrupt):
            export_canonical(engine, out)
        assert not out.exists()
        out.mkdir()
        copies.clear()
        with pytest.raises(KeyboardInterrupt):
            export_canonical(engine, out)
        assert list(out.iterdir()) == []
        engine.execute = execute
        assert len(export_canonical(engine, out)) > 3  # the retry is not refused
        # a link that points nowhere, where a table goes, is the user's: refused without overwrite
        linked = tmp_path / "linked"
        linked.mkdir()
        (linked / "mp_events.parquet").symlink_to(tmp_path / "elsewhere.parquet")
        with pytest.raises(FileExistsError, match="mp_events.parquet exists"):
            export_canonical(engine, linked)
        assert (linked / "mp_events.parquet").is_symlink()
    finally:
        engine.close()


@pytest.mark.parametrize("command, option, name", [
    (["simulate", "--cohort", "Power Users", "--no-store"], "--members-out", "members.csv"),
    (["simulate", "--cohort", "Power Users", "--no-store"], "--members-out", "members.csv.gz"),
    (["simulate", "--cohort", "Power Users", "--no-store"], "--members-out", "members.parquet"),
    (["verify", "--cohort", "Power Users", "--no-store"], "--out", "profiles.parquet"),
    (["migrate", "compare", "--switch", "2026-02-01"], "--out", "daily.csv.gz"),
    (["migrate", "compare", "--switch", "2026-02-01"], "--chart", "rates.png"),
    (["migrate", "validate", "--plan", "{plan}", "--cohort", "Power Users"], "--out", "users.parquet"),
], ids=["members-csv", "members-csv-gz", "members-parquet", "verify-out", "compare-out", "compare-chart",
        "validate-out"])
def test_an_output_file_appears_whole_or_not_at_all(db, plan, tmp_path, monkeypatch, command, option, name):
    """Each output is written under a hidden part name and renamed: a command stopped while it
    writes (here: Ctrl-C at the rename) leaves the user's older file as it was and no part file
    (it wrote in place: a killed write left a truncated file that looked complete)."""
    import cohortlab.output_files as output_files

    target = tmp_path / name
    target.write_bytes(b"an older file")
    (tmp_path / f".{name}.part").write_bytes(b"left by a killed write")
    args = [a.replace("{plan}", plan) for a in command]
    written = {}

    def interrupted(src, dst):
        written["part"] = Path(src).read_bytes()
        raise KeyboardInterrupt

    monkeypatch.setattr(output_files.os, "replace", interrupted)
    r = run(*args, "--db", db, option, target)
    assert r.exit_code != 0
    assert len(written["part"]) > 100 and written["part"] != b"left by a killed write"  # the whole output
    assert target.read_bytes() == b"an older file"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    monkeypatch.undo()
    r = run(*args, "--db", db, option, target)
    assert r.exit_code == 0, r.output
    if name.endswith(".gz"):  # the same rows (a gzip header holds its write time)
        assert gzip.decompress(target.read_bytes()) == gzip.decompress(written["part"])
    elif not name.endswith((".png", ".parquet")):
        assert target.read_bytes() == written["part"]  # the same content
    if name.endswith(".parquet"):
        assert len(pd.read_parquet(target)) > 0


READING_COMMANDS = [
    ["info"],
    ["simulate", "--cohort", "Power Users"],
    ["verify", "--cohort", "Power Users"],
    ["explain", "--cohort", "Power Users", "--user", "someone"],
    ["remedies", "--cohort", "Power Users"],
    ["migrate", "compare", "--switch", "2026-02-01"],
]


@pytest.mark.parametrize("command", READING_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_another_programs_database_is_refused_and_never_written(tmp_path, command):
    """A DuckDB file of another program is one error line, and stays as it was (``info`` wrote
    the 18 cohortlab tables into it)."""
    import duckdb

    other = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE orders AS SELECT 1 AS id")
    con.close()
    line = error_line(run(*command, "--db", other))
    assert line == (f"error: {other}: not a cohortlab database (none of its tables is one that `cohortlab load` "
                    "writes): load the exports into it first")
    con = duckdb.connect(str(other), read_only=True)
    assert con.execute("SELECT table_name FROM information_schema.tables").fetchall() == [("orders",)]
    con.close()


@pytest.mark.parametrize("command", READING_COMMANDS[:2], ids=lambda c: " ".join(c[:2]))
def test_an_empty_or_sqlite_database_is_one_line_and_never_written(tmp_path, command):
    """An empty DuckDB file (no table) given to a reading command: `info` wrote cohortlab's 18
    tables into it (12 KB to 536 KB). A SQLite file named .duckdb: DuckDB tried to download its
    SQLite extension (6 s offline, then a network error). Each is one line, the file unchanged."""
    import sqlite3

    import duckdb

    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    before = empty.read_bytes()
    assert error_line(run(*command, "--db", empty)) == (
        f"error: {empty}: an empty database, nothing loaded (load data first with `cohortlab load --db {empty} ...`)")
    assert empty.read_bytes() == before
    lite = tmp_path / "lite.duckdb"
    con = sqlite3.connect(lite)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    before = lite.read_bytes()
    assert error_line(run(*command, "--db", lite)) == f"error: {lite}: a SQLite database, not a DuckDB database file"
    assert error_line(run("load", "--db", lite, "mixpanel-cohorts", REPO / "data/mixpanel/cohorts.json")) == (
        f"error: {lite}: a SQLite database, not a DuckDB database file")
    assert lite.read_bytes() == before


@pytest.mark.parametrize("command", READING_COMMANDS[:2], ids=lambda c: " ".join(c[:2]))
def test_an_export_given_as_the_database_is_named_for_what_it_is(tmp_path, command):
    """Arguments swapped (`--db events.jsonl`): DuckDB 2 opens a JSON or CSV file as a database of
    views over it, which the check for views in a database then named ('holds view 'file', view
    'events'...', a reliability review). Its first bytes say what it is: one line, the file unchanged."""
    jsonl = tmp_path / "events.jsonl"
    jsonl.write_text('{"event":"A","properties":{"time":1772000000,"distinct_id":"u1"}}\n')
    csv = tmp_path / "members.csv"
    csv.write_text("distinct_id\nu1\n")
    for path, what in ((jsonl, "a JSON file"), (csv, "a text file")):
        before = path.read_bytes()
        expected = (f"error: {path}: {what}, not a DuckDB database file (an export is loaded into one: "
                    f"cohortlab load --db lab.duckdb KIND {path})")
        assert error_line(run(*command, "--db", path)) == expected
        assert error_line(run("load", "--db", path, "mixpanel-cohorts", REPO / "data/mixpanel/cohorts.json")) == expected
        assert path.read_bytes() == before


@pytest.mark.parametrize("command", READING_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_database_that_cannot_be_written_is_read_without_storing(db, tmp_path, monkeypatch, command):
    """A database file on a read-only mount (or without write permission) is read: the command
    computes in memory, stores nothing and says so (it was `cannot open the database (...
    Read-only file system)`). The test stands in for the mount by making the
    file look unwritable to the command; the file's bytes must not change."""
    import shutil

    import cohortlab.cli.app as app

    copy = tmp_path / "ro.duckdb"
    shutil.copy(db, copy)
    before = copy.read_bytes()
    real_access = os.access
    monkeypatch.setattr(app.os, "access", lambda p, mode: False if mode == os.W_OK else real_access(p, mode))
    r = run(*command, "--db", copy)
    lines = r.stderr.splitlines()
    assert lines[0] == f"note: {copy} cannot be written here: results are computed in memory and not stored in it"
    assert "Traceback" not in r.output
    # `migrate compare` ended with `stored: migration_daily, ...` all the same
    assert not any(line.startswith("stored:") for line in r.stdout.splitlines()), r.stdout
    if command[0] == "explain":  # an unknown user: its own error line, after the note
        assert r.exit_code == 1 and len(lines) == 2 and lines[1].startswith("error: "), r.stderr
    else:
        assert r.exit_code == 0, r.output
    assert copy.read_bytes() == before and not (tmp_path / "ro.duckdb.wal").exists()


@pytest.mark.parametrize("args, option", [
    (["simulate", "--db", "DB", "--cohort", "Power Users", "--at", "yesterday"], "--at"),
    (["verify", "--db", "DB", "--cohort", "Power Users", "--at", "yesterday"], "--at"),
    (["explain", "--db", "DB", "--cohort", "Power Users", "--user", "u1", "--at", "yesterday"], "--at"),
    (["remedies", "--db", "DB", "--cohort", "Power Users", "--at", "yesterday"], "--at"),
    (["remedies", "--db", "DB", "--cohort", "Power Users", "--since", "yesterday"], "--since"),
    (["migrate", "validate", "--db", "DB", "--cohort", "Power Users", "--plan", "PLAN", "--at", "yesterday"], "--at"),
    # these named the Python argument (snapshot_at, start, end, switch), found after the database was opened
    (["verify", "--db", "DB", "--cohort", "Power Users", "--snapshot-at", "yesterday"], "--snapshot-at"),
    (["explain", "--db", "DB", "--cohort", "Power Users", "--user", "u1", "--snapshot-at", "yesterday"], "--snapshot-at"),
    (["migrate", "compare", "--db", "DB", "--switch", "yesterday"], "--switch"),
    (["migrate", "compare", "--db", "DB", "--start", "yesterday", "--switch", "2026-02-01"], "--start"),
    (["migrate", "plan", "--db", "DB", "--plan", "PLAN", "--end", "yesterday"], "--end"),
    (["migrate", "plan", "--db", "missing.duckdb", "--plan", "PLAN", "--start", "yesterday"], "--start"),
])
def test_a_time_that_is_not_a_time_names_its_option(db, plan, args, option):
    line = error_line(run(*[{"DB": db, "PLAN": plan}.get(a, a) for a in args]))
    assert line == f"error: {option}: not a time: 'yesterday' (expected ISO-8601, e.g. 2026-03-01T12:00:00Z)"


def test_migrate_validate_prints_the_confusion_table_without_pandas_axis_names(db, plan):
    r = run("migrate", "validate", "--db", db, "--plan", plan, "--cohort", "Power Users")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[1].split() == ["observed", "matched", "observed", "unmatched"]  # the header, alone
    rows = {" ".join(ln.split()[:2]): [int(x) for x in ln.split()[2:]] for ln in lines[2:4]}
    assert set(rows) == {"predicted matched", "predicted unmatched"}
    differ = int(lines[5].split("; ")[1].split()[0])
    assert rows["predicted matched"][1] + rows["predicted unmatched"][0] == differ
    assert "observed_matched" not in r.output and "predicted_matched" not in r.output


def _commands(group, path=()):
    import click

    for name, cmd in sorted(group.commands.items()):
        yield (*path, name)
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*path, name))


@pytest.mark.parametrize("command", list(_commands(main)), ids=" ".join)
def test_help_texts_print_a_percent_sign_once(command):
    """click does not %-format help texts: a ``%%`` meant as an escaped ``%`` is printed as it is
    (``bench --memory-limit`` said "25%% of RAM")."""
    r = run(*command, "--help")
    assert r.exit_code == 0, r.output
    assert "%%" not in r.output


def test_simulate_help_names_every_members_out_format():
    """``--members-out`` takes what every output file takes (.csv, .csv.gz, .parquet); its help
    named two of them."""
    text = " ".join(run("simulate", "--help").output.split())
    assert ".csv, .csv.gz or .parquet" in text


@pytest.mark.parametrize("command, option, name", [
    (["migrate", "compare", "--switch", "2026-02-01"], "--chart", "rates.png"),  # matplotlib wrote through it
    (["simulate", "--cohort", "Power Users", "--no-store"], "--members-out", "members.csv"),
], ids=["chart", "members"])
def test_an_output_file_is_never_written_through_a_link_put_in_its_place(db, tmp_path, monkeypatch, command, option,
                                                                         name):
    """``--chart /tmp/rates.png``: the part file ``/tmp/.rates.png.part`` was removed,
    then opened by name by the writer; another user who put a link there in between (a loop does
    it) had the output written over any file of this user's the link pointed to."""
    import cohortlab.output_files as output_files

    victim = tmp_path / "victim.txt"
    victim.write_text("a file of the user's")
    real_unlink = Path.unlink

    def unlink_then_link(self, missing_ok=False):  # the other user wins the race
        real_unlink(self, missing_ok=missing_ok)
        if self.name.endswith(".part") and not self.is_symlink():
            self.symlink_to(victim)

    monkeypatch.setattr(output_files.Path, "unlink", unlink_then_link)
    target = tmp_path / name
    r = run(*command, "--db", db, option, target)
    assert victim.read_bytes() == b"a file of the user's"
    assert error_line(r).startswith(f"error: {tmp_path / f'.{name}.part'}: made by another process")
    assert not target.exists()


# --------------------------------------------------------------------------- a failed first load
@pytest.mark.parametrize("make_path", [
    lambda tmp: tmp / "no-such-file.jsonl",
    lambda tmp: (tmp / "empty-folder").mkdir() or tmp / "empty-folder",
    lambda tmp: (tmp / "notes.txt").write_text("hello\n") and tmp / "notes.txt",
])
def test_a_failed_load_leaves_no_database_it_created(tmp_path, make_path):
    """A load that fails leaves no trace: it left an empty database file (and the
    folders made for it), which ``info`` then showed as an empty database instead of saying
    ``no such database``."""
    path = make_path(tmp_path)
    db = tmp_path / "new" / "sub" / "lab.duckdb"
    line = error_line(run("load", "--db", db, "mixpanel-events", path))
    assert str(path.name) in line
    assert not (tmp_path / "new").exists()
    # a database that existed is kept, with what it held
    existing = tmp_path / "lab.duckdb"
    assert run("load", "--db", existing, "mixpanel-cohorts", REPO / "data/mixpanel/cohorts.json").exit_code == 0
    error_line(run("load", "--db", existing, "mixpanel-events", path))
    assert existing.exists()
    assert "mp_cohorts" in run("info", "--db", existing).output


def test_a_strict_load_that_warns_leaves_no_database_it_created(tmp_path):
    db = tmp_path / "lab.duckdb"
    error_line(run("load", "--db", db, "mixpanel-events", "--strict", REPO / "data/mixpanel/cohorts.json"))
    assert not db.exists() and not (tmp_path / "lab.duckdb.wal").exists()


# --------------------------------------------------------------------------- a database of older loaders
def test_a_load_records_the_version_of_the_loaders(tmp_path):
    from cohortlab import Lab
    from cohortlab.schema import LOADER_VERSION

    db = tmp_path / "lab.duckdb"
    assert run("load", "--db", db, "mixpanel-cohorts", REPO / "data/mixpanel/cohorts.json").exit_code == 0
    with Lab(str(db), read_only=True) as lab:
        assert lab.engine.query_rows("SELECT DISTINCT loader_version FROM loads") == [(LOADER_VERSION,)]


@pytest.mark.parametrize("older, problem", [
    ("ALTER TABLE loads DROP COLUMN loader_version", "loads has no column loader_version"),
    ("UPDATE loads SET loader_version = {previous} WHERE kind = 'mixpanel-members'",
     "{n} of its loads were read by older loaders, version {previous} (this one's: {current})"),
])
@pytest.mark.parametrize("command", [
    ["info"], ["load", "mixpanel-cohorts", "COHORTS"], ["simulate", "--cohort", "Power Users"],
    ["verify", "--cohort", "Power Users"], ["report", "--out", "OUT"], ["export", "--out", "OUT"],
])
def test_a_database_loaded_by_older_loaders_is_refused_in_one_line(db, tmp_path, older, problem, command):
    """A database keeps what the loaders of its cohortlab read, and loading the same
    file again is skipped (same fingerprint): a database loaded before a loader fix (e.g. a
    members CSV whose ``remove`` rows counted as members) gave other results than a fresh load,
    without a word. Such a database (before loads.loader_version, or with loads of a lower
    version) is refused by every command, one line saying what to do, and left as it was."""
    import duckdb

    from cohortlab.schema import LOADER_VERSION

    copy = tmp_path / "old.duckdb"
    copy.write_bytes(Path(db).read_bytes())
    with duckdb.connect(str(copy)) as con:
        n = con.execute("SELECT count(*) FROM loads WHERE kind = 'mixpanel-members'").fetchone()[0]
        con.execute(older.format(previous=LOADER_VERSION - 1))
    before = copy.read_bytes()
    subs = {"COHORTS": str(REPO / "data/mixpanel/cohorts.json"), "OUT": str(tmp_path / "out")}
    line = error_line(run(command[0], "--db", copy, *[subs.get(a, a) for a in command[1:]]))
    expected = problem.format(n=n, previous=LOADER_VERSION - 1, current=LOADER_VERSION)
    assert line == (f"error: {copy}: its tables were written by an older cohortlab ({expected}): "
                    "load the exports into a new database file")
    assert copy.read_bytes() == before and not (tmp_path / "old.duckdb.wal").exists()
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- a truncated database file
@pytest.mark.parametrize("command", [
    ["info"], ["load", "mixpanel-cohorts", "COHORTS"], ["simulate", "--cohort", "Power Users"],
    ["verify", "--cohort", "Power Users"], ["explain", "--cohort", "Power Users", "--user", "u1"],
    ["remedies", "--cohort", "Power Users"], ["report", "--out", "OUT"], ["export", "--out", "OUT"],
])
def test_a_truncated_database_file_is_one_line_and_left_as_it_was(db, tmp_path, command):
    """A database file cut short (a copy that did not finish) opened, and the first
    read of a missing block was a traceback (IOException: Could not read enough bytes); a load
    into it succeeded, and a report left its folder."""
    whole = Path(db).read_bytes()
    cut = tmp_path / "cut.duckdb"
    cut.write_bytes(whole[: len(whole) // 2])
    subs = {"COHORTS": str(REPO / "data/mixpanel/cohorts.json"), "OUT": str(tmp_path / "out")}
    line = error_line(run(command[0], "--db", cut, *[subs.get(a, a) for a in command[1:]]))
    assert line.startswith(f"error: {cut}: the database file is truncated or damaged (a copy that did not finish?): "
                           "restore it from a whole copy, or load the exports into a new database file ("), line
    assert cut.read_bytes() == whole[: len(whole) // 2]
    assert not (tmp_path / "out").exists() and not (tmp_path / "cut.duckdb.wal").exists()


def test_a_database_file_is_whole_only_with_every_block_its_tables_use(db, tmp_path):
    """The size check: a whole file is whole; one cut by its last block, which a table uses, is not
    (the header's block count and the tables' own blocks agree on it)."""
    from cohortlab.cli.app import truncated

    assert truncated(db) is None
    whole = Path(db).read_bytes()
    cut = tmp_path / "cut.duckdb"
    cut.write_bytes(whole[:-1])
    assert "the database file is truncated or damaged" in truncated(str(cut))


def test_a_read_of_a_missing_block_is_one_line():
    import duckdb

    from cohortlab.cli.app import machine_problem

    error = duckdb.IOException('IO Error: Could not read enough bytes from file "/x/lab.duckdb": attempted to read '
                               '262144 bytes from location 798720')
    assert machine_problem(error) == ("/x/lab.duckdb: the database file is truncated or damaged (a copy that did not "
                                      "finish?): restore it from a whole copy, or load the exports into a new database file")


# --------------------------------------------------------------------------- no writable temporary folder
def _no_temp_dir(monkeypatch):
    """Python's own error when neither $TMPDIR, /tmp, /var/tmp nor the current folder can be written."""
    import errno
    import tempfile

    def gettempdir():
        raise FileNotFoundError(errno.ENOENT, "No usable temporary directory found in ['/tmp', '/var/tmp', '/usr/tmp', '/']")

    monkeypatch.setattr(tempfile, "tempdir", None)
    monkeypatch.setattr(tempfile, "gettempdir", gettempdir)
    monkeypatch.setattr(tempfile, "_get_default_tempdir", gettempdir)


@pytest.mark.parametrize("source", ["--data", "--db"])
def test_a_report_without_a_writable_temporary_folder_is_one_line_and_leaves_no_folder(db, tmp_path, monkeypatch,
                                                                                       source):
    """As an ordinary user with no writable temporary folder, ``report`` ended in a
    traceback, and with --data left its report folder behind."""
    _no_temp_dir(monkeypatch)
    out = tmp_path / "rep"
    r = run("report", source, Path(db).parent / "world" if source == "--data" else db, "--out", out)
    assert error_line(r) == ("error: No usable temporary directory found in ['/tmp', '/var/tmp', '/usr/tmp', '/']: "
                             "set TMPDIR to a folder you can write (e.g. mkdir -p ~/tmp; export TMPDIR=~/tmp)")
    assert not out.exists()


def test_no_writable_temporary_folder_is_one_line_for_every_command(monkeypatch):
    import tempfile

    from cohortlab.cli.app import machine_problem

    _no_temp_dir(monkeypatch)
    with pytest.raises(FileNotFoundError) as e:
        tempfile.mkdtemp()
    assert machine_problem(e.value).endswith(": set TMPDIR to a folder you can write (e.g. mkdir -p ~/tmp; "
                                             "export TMPDIR=~/tmp)")


# --------------------------------------------------------------------------- usage mistakes
@pytest.mark.parametrize("args", [
    ["simulate", "--db", "DB", "--cohort", "Power Users", "--no-such-option"],
    ["simulat", "--db", "DB"],
    ["simulate", "--db", "DB"],
    ["load", "--db", "DB", "mixpanel-bogus", "x.json"],
    ["report", "--db", "DB", "--out", "AFILE"],
    ["simulate", "--db", "DB", "--cohort", "Power Users", "--settings", "AFOLDER"],
])
def test_a_mistake_in_the_command_line_exits_2_as_troubleshooting_says(db, tmp_path, args):
    """docs/troubleshooting.md described exit statuses 130 and 'non-zero', not the 2
    of a usage mistake, nor its form (the usage, then ``Error: …``)."""
    (tmp_path / "afile").write_text("x")
    subs = {"DB": db, "AFILE": str(tmp_path / "afile"), "AFOLDER": str(tmp_path)}
    r = run(*[subs.get(a, a) for a in args])
    assert r.exit_code == 2 and "Traceback" not in r.output
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: ") and "--help' for help." in r.stderr  # 'cohortlab' under CliRunner: 'main'
    text = (REPO / "docs/troubleshooting.md").read_text(encoding="utf-8")
    statuses = text.split("**Exit statuses.**", 1)[1].split("\n\n", 1)[0]
    for status in ("`0`", "`1`", "`2`", "`130`"):
        assert status in statuses
    assert "`Error: …`" in statuses


@pytest.mark.parametrize("newer, problem", [
    ("ALTER TABLE mp_events ADD COLUMN future VARCHAR", "mp_events has a column future this version does not know"),
    ("UPDATE loads SET loader_version = {next} WHERE kind = 'mixpanel-members'",
     "{n} of its loads were read by newer loaders, version {next} (this one's: {current})"),
])
def test_a_database_of_a_newer_cohortlab_is_refused_in_one_line(db, tmp_path, newer, problem):
    """The other way round: a database loaded by a later cohortlab, opened by this one
    (a downgrade, two versions on one machine). A load into it was a binder error ('table loads
    has 11 columns but 10 values were supplied'): one line now, and the file is left as it was."""
    import duckdb

    from cohortlab.schema import LOADER_VERSION

    copy = tmp_path / "new.duckdb"
    copy.write_bytes(Path(db).read_bytes())
    with duckdb.connect(str(copy)) as con:
        n = con.execute("SELECT count(*) FROM loads WHERE kind = 'mixpanel-members'").fetchone()[0]
        con.execute(newer.format(next=LOADER_VERSION + 1))
    before = copy.read_bytes()
    for command in (["info"], ["load", "mixpanel-cohorts", str(REPO / "data/mixpanel/cohorts.json")],
                    ["simulate", "--cohort", "Power Users"]):
        line = error_line(run(command[0], "--db", copy, *command[1:]))
        expected = problem.format(n=n, next=LOADER_VERSION + 1, current=LOADER_VERSION)
        assert line == (f"error: {copy}: its tables were written by a newer cohortlab ({expected}): "
                        "use that version, or load the exports into a new database file")
    assert copy.read_bytes() == before


def test_a_guessable_pseudonym_key_in_the_environment_is_one_line_before_any_output(db, tmp_path):
    # simulate --members-out printed its waterfall, then refused the key when it came to write the
    # members (docs/reports.md#stable-pseudonyms); like the engine settings, it is checked first
    out = tmp_path / "m.csv"
    r = run("simulate", "--db", db, "--cohort", "Power Users", "--members-out", str(out),
            env={"COHORTLAB_PSEUDONYM_KEY": "0123456789abcde"})
    assert r.exit_code == 1 and r.stdout == "" and not out.exists()
    assert error_line(r).startswith("error: COHORTLAB_PSEUDONYM_KEY is 15 character(s) long: a pseudonym key must "
                                    "have at least 16")


def test_the_command_list_describes_each_command_whole():
    """`cohortlab --help` cut each description after 45 characters, mid-parenthesis ("(scenario
    `demo`, a..."; a newcomer's walkthrough): each command has a short help of its own, shown whole."""
    r = CliRunner().invoke(main, ["--help"], terminal_width=100)
    listed = r.output.split("Commands:\n", 1)[1].splitlines()
    assert len(listed) == len(main.commands) == 14
    assert not [line for line in listed if line.rstrip().endswith("...")]
    assert all(main.commands[name].short_help for name in main.commands)



# --------------------------------------------------------------------------- the machine, signals, pipes
def test_a_permission_error_is_one_line_naming_the_path():
    """An --out folder this user may not write (export, report, demo) gave a 30-line traceback
    (PermissionError from mkdir); a file it may not read too. One line naming the path (the CLI
    runs machine_problem on what escapes a command; CI runs as root, which no mode stops)."""
    import errno

    from cohortlab.cli.app import machine_problem

    assert machine_problem(PermissionError(errno.EACCES, "Permission denied", "ro/exp")) == (
        "ro/exp: permission denied: check its permissions (and its folder's), or use another path")
    assert machine_problem(OSError(errno.EROFS, "Read-only file system", "/mnt/ro/x")).startswith(
        "/mnt/ro/x: read-only file system: ")
    assert machine_problem(ValueError("a bug")) is None  # keeps its traceback


def _cli(*args):
    import sys

    return [sys.executable, "-c", "from cohortlab.cli import main; main()", *map(str, args)]


def test_sigterm_stops_a_command_as_ctrl_c_does(tmp_path):
    """A supervisor (Airflow, systemd, `timeout`) stops a task with SIGTERM: only `report` and
    `lab` handled it; `synth` died with status 143 and left a half-written world that the cron
    job's retry refused ("not empty", and without a manifest even with --force). Every command
    now stops as on Ctrl-C: `error: interrupted`, status 130, and synth removes what it wrote."""
    import signal
    import subprocess
    import time

    out = tmp_path / "world"
    proc = subprocess.Popen(_cli("synth", out, "--users", "400000", "--seed", "3"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not out.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the folder exists once the command runs (its handler is in place)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "error: interrupted", err
    assert "Traceback" not in err and not out.exists()


def test_a_reader_that_stops_reading_ends_the_command_quietly(db):
    """`cohortlab info --db X | head -1` exited 1 with nothing said (a BrokenPipeError caught as
    an error). It exits as a pipe's writer does, 141, without a message."""
    import subprocess

    proc = subprocess.Popen(_cli("info", "--db", db), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # no reader: the command's first write meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err == ""


def test_a_bad_parallel_threshold_in_the_environment_is_one_line_and_no_import_fails(db):
    """COHORTLAB_PARALLEL_MIN_BYTES=abc was int() at import: every command, --version too, ended
    in a ValueError traceback. The import falls back to the default; a command says it in one line."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", "import cohortlab.loaders.base as b; print(b.PARALLEL_MIN_BYTES)"],
                       env={**os.environ, "COHORTLAB_PARALLEL_MIN_BYTES": "abc"}, capture_output=True, text=True)
    assert (r.returncode, r.stdout.strip()) == (0, str(16 * 1024 * 1024))
    line = error_line(run("info", "--db", db, env={"COHORTLAB_PARALLEL_MIN_BYTES": "abc"}))
    assert line == "error: COHORTLAB_PARALLEL_MIN_BYTES='abc': expected a whole number of bytes (0: every file in parallel)"


def test_an_interrupted_demo_leaves_no_folder_that_blocks_the_next(tmp_path, monkeypatch):
    """A demo stopped while generating or reporting left OUT/ with its world, and the next run
    was refused ("already exists ... use --overwrite"). The folder it made goes with it."""
    import cohortlab.synth

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cohortlab.synth, "generate", stopped)
    out = tmp_path / "demo"
    r = run("demo", "--out", out)
    assert r.exit_code == 130 and r.stderr.splitlines()[-1] == "error: interrupted" and "Traceback" not in r.output
    assert not out.exists()
    out.mkdir()  # a folder the user made, empty: kept, and empty again
    r = run("demo", "--out", out)
    assert r.exit_code == 130 and out.is_dir() and list(out.iterdir()) == []

    def stopped_after_another_wrote(out_dir, *args, **kwargs):  # a file put into the folder meanwhile
        (Path(out_dir).parent / "notes.txt").write_text("mine")
        raise KeyboardInterrupt

    monkeypatch.setattr(cohortlab.synth, "generate", stopped_after_another_wrote)
    r = run("demo", "--out", tmp_path / "demo2")
    assert r.exit_code == 130 and [p.name for p in (tmp_path / "demo2").iterdir()] == ["notes.txt"]
    # --overwrite of an earlier demo that then stops puts the earlier one back, as a report does
    monkeypatch.setattr(cohortlab.synth, "generate", stopped)
    from cohortlab.report.pages import MARKER

    earlier = tmp_path / "earlier"
    (earlier / "report").mkdir(parents=True)
    (earlier / "report" / "index.html").write_text("the earlier demo")
    (earlier / MARKER).write_text("")  # a demo's folder (its claim)
    r = run("demo", "--out", earlier, "--overwrite")
    assert r.exit_code == 130 and (earlier / "report" / "index.html").read_text() == "the earlier demo"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # nothing left aside


@pytest.mark.parametrize("command", READING_COMMANDS[1:], ids=lambda c: " ".join(c[:2]))
def test_every_command_names_a_missing_settings_file_alike(db, command):
    """remedies said "nope.yaml: cannot read settings file ..." where the others say "bad settings
    file: ..." (each command had its own copy of the reading; one helper now)."""
    assert error_line(run(*command, "--db", db, "--settings", "nope.yaml")) == (
        "error: bad settings file: nope.yaml: cannot read settings file (No such file or directory)")


def test_report_and_export_name_their_options_and_what_to_do(db, tmp_path):
    """`report --db X --data Y` said "a database (db) or a data folder (data)"; a missing --db of
    report and export lacked the "load data first" the other commands give."""
    assert error_line(run("report", "--db", db, "--data", tmp_path, "--out", tmp_path / "r")) == (
        "error: give either a database (--db, parameter db) or a folder of exports (--data, parameter data), not both")
    missing = tmp_path / "nope.duckdb"
    assert error_line(run("report", "--db", missing, "--out", tmp_path / "r")) == (
        f"error: {missing}: no such database (load data first with `cohortlab load --db {missing} ...`, or give "
        "--data, a folder of exports)")
    assert error_line(run("export", "--db", missing, "--out", tmp_path / "e")) == (
        f"error: {missing}: no such database (load data first with `cohortlab load --db {missing} ...`)")


def test_variables_standing_for_options_are_named_and_a_misspelt_kind_is_suggested(db, tmp_path):
    """COHORTLAB_ENGINE=foo was click's usage error "Invalid value for '--engine'" (exit 2), an option
    never given; COHORTLAB_LOCK_WAIT=abc the same for '--wait'. A misspelt load KIND listed the
    kinds without the nearest one, as click suggests for options and commands."""
    assert error_line(run("simulate", "--db", db, "--cohort", "Power Users", env={"COHORTLAB_ENGINE": "foo"})) == (
        "error: COHORTLAB_ENGINE='foo': expected duckdb or spark")
    assert error_line(run("info", "--db", db, env={"COHORTLAB_LOCK_WAIT": "abc"})) == (
        "error: COHORTLAB_LOCK_WAIT='abc': expected seconds to wait for a database in use, 0 to 86400")
    r = run("load", "--db", tmp_path / "x.duckdb", "mixpanel-evnts", REPO / "data/mixpanel/cohorts.json")
    assert r.exit_code == 2 and r.stderr.strip().endswith("Did you mean 'mixpanel-events'?")
    assert not (tmp_path / "x.duckdb").exists()
