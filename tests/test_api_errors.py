"""An analyst's mistakes through the Python API (``Lab``) raise cohortlab's own errors: a
:class:`cohortlab.errors.CohortlabError` (the base the CLI prints on one line, and the one a
notebook can catch), still the ``ValueError``/``RuntimeError`` it was, with a message that names
what to fix: not a KeyError, a pydantic or a DuckDB internal."""

from __future__ import annotations

import pytest

from cohortlab import Lab, SyncSettings
from cohortlab.errors import CohortlabError


@pytest.fixture
def lab():
    with Lab() as lab:
        lab.engine.execute("INSERT INTO mp_cohort_snapshots (snapshot_id, cohort_name, as_of, member_count) "
                           "VALUES (1, 'Power Users', '2026-03-01', 1)")
        lab.engine.execute("INSERT INTO mp_cohort_members (snapshot_id, cohort_name, as_of, distinct_id) "
                           "VALUES (1, 'Power Users', '2026-03-01', 'u1')")
        yield lab


PLAN = {"name": "p", "eit_timeline": "customer_id"}


@pytest.mark.parametrize("call,base,message", [
    (lambda lab: lab.simulate("Power Userz"), ValueError, "unknown cohort 'Power Userz' (did you mean 'Power Users'?); known cohorts: 'Power Users'"),
    (lambda lab: lab.resolution("Nope"), ValueError, "unknown cohort 'Nope'"),
    (lambda lab: lab.verify("Nope"), ValueError, "unknown cohort 'Nope'"),
    (lambda lab: lab.explain("Nope", "u1"), ValueError, "unknown cohort 'Nope'"),
    (lambda lab: lab.explain("Power Users", "nobody"), ValueError, "user 'nobody' not found"),
    (lambda lab: lab.verify("Power Users"), ValueError, "no observed state for cohort 'Power Users'"),
    (lambda lab: lab.simulate("Power Users", source="csv"), ValueError, "source must be auto, snapshots or webhooks"),
    (lambda lab: lab.table("nope"), ValueError, "no table 'nope'"),
    (lambda lab: lab.load("mixpanel-event", "x.jsonl"), ValueError, "unknown load kind 'mixpanel-event'"),
    (lambda lab: lab.load("mixpanel-events", "x.jsonl", timeunit="s"), ValueError, "unknown option"),
    (lambda lab: lab.load("mixpanel-events", "x.jsonl", time_unit="hours"), ValueError, "time_unit must be one of"),
    (lambda lab: lab.migration_plan({"name": "p", "switch_at": "2026-02-01"}, "2026-01-01", "2026-02-01"),
     ValueError, "invalid migration plan: switch_at"),
    (lambda lab: lab.simulate("Power Users", settings=SyncSettings(fallback="strick")), ValueError,
     "invalid settings: fallback: Input should be 'data' or 'strict' (got 'strick')"),
    # a time that is not one names the argument, not "time"
    (lambda lab: lab.simulate("Power Users", at="yesterday"), ValueError, "at: not a time: 'yesterday'"),
    (lambda lab: lab.resolution("Power Users", "yesterday"), ValueError, "at: not a time: 'yesterday'"),
    (lambda lab: lab.remedies("Power Users", since="yesterday"), ValueError, "since: not a time: 'yesterday'"),
    (lambda lab: lab.reexport_value("Power Users", when="yesterday"), ValueError, "when: not a time: 'yesterday'"),
    (lambda lab: lab.migration_plan(PLAN, "yesterday", "2026-02-01"), ValueError, "start: not a time: 'yesterday'"),
    (lambda lab: lab.compare_plans([PLAN], "2026-01-01", "tomorrow"), ValueError, "end: not a time: 'tomorrow'"),
    # the migration what-if's mistakes were plain ValueErrors
    (lambda lab: lab.migration_plan(PLAN, "2026-01-01", "2026-02-01", activity="obs"), ValueError,
     "activity must be one of observed, repeat, not 'obs'"),
    (lambda lab: lab.migration_plan(PLAN, "2026-02-01", "2026-01-01"), ValueError,
     "window end 2026-01-01 is before its start 2026-02-01"),
    (lambda lab: lab.compare_plans([PLAN, PLAN], "2026-01-01", "2026-02-01"), ValueError,
     "plan names must be unique"),
    (lambda lab: lab.migration_plan(PLAN, "2026-01-01", "2026-02-01", cohort="Power Userz"), ValueError,
     "unknown cohort 'Power Userz' (did you mean 'Power Users'?); known cohorts: 'Power Users'"),
    (lambda lab: lab.validate_migration(PLAN, "Power Users", observed=lab.sql("SELECT 'u1' AS distinct_id")),
     ValueError, "validate_migration needs `at` when `observed` has no as_of column"),
])
def test_a_mistake_raises_a_cohortlab_error_naming_it(lab, call, base, message):
    with pytest.raises(CohortlabError) as e:
        call(lab)
    assert isinstance(e.value, base)  # what callers caught before still catches it
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_dropped_simulation_is_a_cohortlab_error(lab):
    from cohortlab.simulation.simulate import DroppedTableError

    r = lab.simulate("Power Users")
    lab.clear_simulations()
    with pytest.raises(DroppedTableError) as e:
        r.tables["resolution"].as_pandas()
    assert isinstance(e.value, CohortlabError) and isinstance(e.value, RuntimeError)
    assert "run the simulation again" in str(e.value)


def test_a_closed_lab_says_so(tmp_path):
    """Using a Lab after close() (a notebook cell run again after `with Lab(...)`) is one line naming
    the database, not DuckDB's ConnectionException; closing twice is harmless."""
    from cohortlab.errors import DatabaseError

    db = tmp_path / "lab.duckdb"
    with Lab(db) as lab:
        pass
    lab.close()
    for call in (lambda: lab.sql("SELECT 1"), lambda: lab.simulate("Power Users"), lambda: lab.info()):
        with pytest.raises(DatabaseError, match=r"lab.duckdb: this lab was closed .*open a new Lab"):
            call()
    with Lab(db) as again:  # the file is free again
        assert again.sql("SELECT 1 AS x").x.tolist() == [1]


def test_a_database_that_is_no_path_is_refused(tmp_path, monkeypatch):
    """Lab(5) created a database file named 5 in the current folder."""
    monkeypatch.chdir(tmp_path)
    for database, kind in ((5, "int"), (b"x.duckdb", "bytes"), (["a"], "list")):
        with pytest.raises(CohortlabError, match=f"Lab: database is a DuckDB file's path .*, not {kind}$"):
            Lab(database)
    assert list(tmp_path.iterdir()) == []


def test_a_load_into_a_read_only_lab_says_so_and_changes_nothing(tmp_path):
    """Lab(db, read_only=True).load(...) failed with DuckDB's 'Cannot execute statement of type
    "SELECT" on database "source" which is attached in read-only mode' (the load's id sequence):
    it now says the Lab is read-only and what to do; the file is unchanged."""
    from cohortlab.errors import DatabaseError

    db = tmp_path / "lab.duckdb"
    members = tmp_path / "m.csv"
    members.write_text("distinct_id\nu1\n")
    with Lab(db) as lab:
        lab.load("mixpanel-members", members, cohort="C", as_of="2026-03-01")
    before = db.read_bytes()
    with Lab(db, read_only=True) as lab:
        with pytest.raises(DatabaseError, match=r"cannot load into .*lab.duckdb: this Lab opened it read-only"):
            lab.load("mixpanel-members", members, cohort="D", as_of="2026-03-02")
        assert lab.sql("SELECT count(*) AS n FROM mp_cohort_snapshots").n.tolist() == [1]
    assert db.read_bytes() == before


def test_a_database_open_in_this_process_in_another_mode_says_which_lab_holds_it(tmp_path):
    """A Lab left open by an earlier notebook cell (or `_`), then the same file opened read-only:
    DuckDB's "Unique file handle conflict" reached the analyst as it was (a newcomer's walkthrough)."""
    from cohortlab.errors import DatabaseError

    db = tmp_path / "lab.duckdb"
    with Lab(db):
        with pytest.raises(DatabaseError, match=r"lab\.duckdb: already open in this process by another Lab .* "
                                                r"close it first \(lab\.close\(\)"):
            Lab(db, read_only=True)
    with Lab(db, read_only=True) as lab:  # closed: free again
        assert lab.sql("SELECT 1 AS x").x.tolist() == [1]


def test_compare_plans_takes_one_plan_or_a_list_and_says_what_else_is_wrong(lab):
    from cohortlab.migration.plans import PlanError

    with pytest.raises(PlanError, match="plans must be a list of plans .* not int"):
        lab.compare_plans(5, "2026-02-20", "2026-03-01")
    lab.engine.execute("INSERT INTO mp_events (event, time, distinct_id, insert_id) "
                       "VALUES ('e', '2026-02-25', 'u1', 'i1')")
    one = lab.compare_plans({"name": "p", "eit_timeline": "customer_id"}, "2026-02-20", "2026-03-01")
    assert set(one["plan"]) == {"p"}  # a dict is one plan, not a list of its keys


def test_a_plans_frame_prints_concatenates_and_saves(lab, tmp_path):
    """compare_plans kept its summary, a DataFrame, in the frame's attrs: pandas compares attrs
    with == (concat, and repr, which concatenates a long frame's head and tail) and writes them
    as JSON to Parquet, so printing the frame of the docs' example, pd.concat of two plans' frames
    and to_parquet raised. The summary is lab.last_migration_summary; the frame is a plain one."""
    import pandas as pd

    lab.engine.execute("INSERT INTO mp_events (event, time, distinct_id, insert_id) "
                       "VALUES ('e', '2026-02-25', 'u1', 'i1')")
    daily = lab.compare_plans([PLAN, {**PLAN, "name": "q"}], "2026-01-01", "2026-03-31")
    assert set(lab.last_migration_summary["plan"]) == {"p", "q"} and len(daily) == 2 * 90
    with pd.option_context("display.max_rows", 10, "display.max_columns", 4):
        assert "match_rate" in repr(daily) and "plan" in daily._repr_html_()
    one = lab.migration_plan({**PLAN, "name": "r"}, "2026-01-01", "2026-03-31")
    assert list(lab.last_migration_summary["plan"]) == ["r"]
    assert len(pd.concat([daily, one])) == 3 * 90
    daily.to_parquet(tmp_path / "daily.parquet")
    assert pd.read_parquet(tmp_path / "daily.parquet").equals(daily)


def test_a_notebooks_missing_db_or_data_is_one_line_naming_the_parameter_and_the_folder(tmp_path, monkeypatch):
    """A notebook's `db`/`data` (lab.open_lab) that names nothing: the message names the absolute path
    a relative one was looked for at (the notebook's folder) and the parameter to set; it was
    "../data: no such folder", a plain FileNotFoundError. Still a FileNotFoundError."""
    from cohortlab.errors import InputNotFoundError, SettingsError
    from cohortlab.lab import open_lab

    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputNotFoundError) as e:
        open_lab(None, "../data")
    assert isinstance(e.value, FileNotFoundError) and isinstance(e.value, CohortlabError)
    assert str(e.value) == (f"../data: no such folder ({tmp_path.parent / 'data'}): set data to a folder of exports "
                            "(mixpanel/..., mparticle/...), or db to a DuckDB file")
    with pytest.raises(InputNotFoundError, match=r"^lab\.duckdb: no such database \(.*lab\.duckdb\): set db to a "
                                                 r"DuckDB file \(`cohortlab load`\), or db = None and data to"):
        open_lab("lab.duckdb")
    with pytest.raises(InputNotFoundError, match=r"set observed_db to a DuckDB file"):
        open_lab("lab.duckdb", names=("observed_db", "observed_data"))
    with pytest.raises(SettingsError, match=r"set db \(a DuckDB file\) or data \(a folder of exports\)"):
        open_lab()


def test_the_eit_notebooks_missing_observed_db_names_that_parameter(lab, tmp_path, monkeypatch):
    """The validation's exports (insights.migration_validation, the EIT notebook's observed_db)
    open through the notebook's open_lab, which did not pass the parameter names on: the
    validation failed with a TypeError on every observed_db other than db itself."""
    from cohortlab.errors import InputNotFoundError
    from cohortlab.report import insights

    monkeypatch.chdir(tmp_path)
    plans = insights.migration_plans(switch_at="2026-02-01T00:00:00Z")
    with pytest.raises(InputNotFoundError, match=r"^later\.duckdb: no such database .*set observed_db to a DuckDB file"):
        insights.migration_validation(lab, plans, observed_db="later.duckdb")


def test_a_notebooks_unknown_cohort_fails_its_setup_cell(lab):
    """A notebook's `cohorts` (insights.cohort_names, its setup cell) is checked as `cohortlab report`
    checks it: the EIT migration notebook uses its cohorts only to validate, and a typo there ran
    to the end without a word when run by hand."""
    from cohortlab.report import insights
    from cohortlab.simulation.membership import CohortError

    assert insights.cohort_names(lab) == ["Power Users"] == insights.cohort_names(lab, "Power Users")
    with pytest.raises(CohortError, match=r"^unknown cohort 'Power User' \(did you mean 'Power Users'\?\); known cohorts: 'Power Users'$"):
        insights.cohort_names(lab, ["Power Users", "Power User"])


def test_stored_simulations_has_its_columns_also_when_none_is_stored(lab):
    """lab.stored_simulations() before anything was stored was a frame without columns, so
    `lab.stored_simulations()["cohort"]` was a KeyError."""
    from cohortlab.simulation.store import CATALOGUE_COLUMNS

    df = lab.stored_simulations()
    assert df.empty and list(df.columns) == [name for name, _, _ in CATALOGUE_COLUMNS]
    assert df["cohort"].tolist() == []


def test_in_a_notebook_a_cohortlab_error_is_the_cells_line_and_the_message(tmp_path):
    """Run by hand (JupyterLab, `jupyter nbconvert --execute`), a notebook cell whose cohortlab call
    fails showed a traceback through cohortlab's frames (lab.py, membership.py, ...) above the one
    line that says what to fix. Now: the cell's line that raised, then the message; other errors,
    and `%xmode Verbose`, keep every frame."""
    import re

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in (
        "from cohortlab import Lab\nlab = Lab()",
        "x = 1\nlab.simulate('Nope')",
        "%xmode Verbose",
        "lab.simulate('Nope')",
        "%xmode Context\nint('x')",
    )]
    NotebookClient(nb, kernel_name="python3", timeout=120, allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    def shown(cell):
        (err,) = [o for o in nb.cells[cell].outputs if o.output_type == "error"]
        return err, re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(err.traceback))

    err, text = shown(1)
    assert (err.ename, err.evalue) == ("CohortError", "unknown cohort 'Nope'; known cohorts: none loaded")
    assert re.search(r"Cell In\[\d+\], line 2", text) and "----> 2 lab.simulate('Nope')" in text
    assert "CohortError: unknown cohort 'Nope'; known cohorts: none loaded" in text
    assert "membership.py" not in text and "lab.py" not in text and "%xmode Verbose shows them" in text
    _, verbose = shown(3)
    assert "membership.py" in verbose and "CohortError: unknown cohort 'Nope'" in verbose
    err, other = shown(4)  # not a cohortlab error: as IPython shows it
    assert err.ename == "ValueError" and "invalid literal for int()" in other


def test_a_time_taken_from_a_frames_numpy_array_is_a_time(lab):
    """`lab.simulate(c, at=r.timeline["run_at"].to_numpy()[5])`: a NumPy datetime64 was "at: not a
    time" although a pandas Timestamp of the same column was taken; NaT is still refused."""
    import numpy as np

    r = lab.simulate("Power Users")
    at = r.timeline["run_at"].to_numpy()[-1]
    assert isinstance(at, np.datetime64)
    assert lab.simulate("Power Users", at=at).at == r.at
    assert lab.simulate("Power Users", at=np.datetime64("2026-03-01")).at == r.at
    with pytest.raises(CohortlabError, match=r"^at: not a time: np\.datetime64\('NaT'"):
        lab.simulate("Power Users", at=np.datetime64("NaT"))


@pytest.mark.parametrize("call,what", [
    (lambda lab, t: lab.simulate("Power Users", at=t), "at"),
    (lambda lab, t: lab.remedies("Power Users", since=t), "since"),
    (lambda lab, t: lab.explain("Power Users", "u1", at=t), "at"),
    (lambda lab, t: lab.reexport_value("Power Users", when=t), "when"),
    (lambda lab, t: SyncSettings(start=t), "start"),
])
def test_pandas_nat_is_no_time(lab, call, what):
    """pandas' NaT (an empty cell's time, max() of an empty frame) is a datetime to Python: it went
    through as a time and failed deep inside (a float NaN conversion, the text 'NaT' pasted into
    SQL, a pydantic serialisation error). It is refused as np.datetime64('NaT') was."""
    import pandas as pd

    with pytest.raises(CohortlabError, match=rf"{what}: not a time: NaT \(a missing time\)"):
        call(lab, pd.NaT)


@pytest.mark.parametrize("observed,message", [
    ([1, 2], r"observed: a DataFrame of the observed resolution .*, not list"),
    ("members.csv", r"observed: a DataFrame .*, not str"),
    ({"distinct_id": ["u1"]}, r"observed: a DataFrame .*, not dict"),
    ("no status", r"observed: the frame has no column status \(a resolution's columns: .*\); it has distinct_id, mpid"),
    ("no columns", r"observed: the frame has no column distinct_id or status .*; it has none"),
])
def test_validate_migration_names_what_the_observed_frame_lacks(lab, observed, message):
    """validate_migration(observed=...) with something other than a resolution failed deep
    inside: pandas' KeyError, DuckDB's binder error on obs_status, 'list' object has no attribute
    'columns'. It names what is missing."""
    import pandas as pd

    if observed == "no status":
        observed = pd.DataFrame({"distinct_id": ["u1"], "mpid": pd.array([5], dtype="Int64")})
    elif observed == "no columns":
        observed = pd.DataFrame()
    with pytest.raises(CohortlabError, match=message):
        lab.validate_migration(PLAN, "Power Users", at="2026-03-01", observed=observed)
