"""The command line under unlucky conditions: a database in use or unusable, outputs that cannot
be written, settings that would exhaust the machine, warnings and --strict, scheduled-job hygiene."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from cohortlab import Lab

from .conftest import checksum

REPO = Path(__file__).resolve().parents[2]
BIG = 9007199254740993  # 2^53 + 1: not representable as a float64


# --------------------------------------------------------------------------- the database
def _hold(db: str, seconds: float) -> subprocess.Popen:
    """Another process holding ``db`` open for ``seconds`` (it prints 'ready' once it does)."""
    code = f"import duckdb, sys, time; c = duckdb.connect({db!r}); print('ready', flush=True); time.sleep({seconds})"
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


@pytest.mark.parametrize("command", [["info"], ["load", "mixpanel-events", "EVENTS"], ["export", "--out", "OUT"]])
def test_a_database_in_use_is_one_line_naming_the_process(db, cli, tmp_path, command):
    events = tmp_path / "e.jsonl"
    events.write_text('{"event":"x","properties":{"time":1772000000,"distinct_id":"a"}}\n')
    args = [str(events) if a == "EVENTS" else str(tmp_path / "out") if a == "OUT" else a for a in command]
    holder = _hold(db, 30)
    try:
        t0 = time.monotonic()
        run = cli(args[0], "--db", db, "--wait", "0.5", *args[1:])
        line = run.assert_one_line_error("the database is in use by another process")
        assert f"(PID {holder.pid})" in line
        assert 0.4 < time.monotonic() - t0 < 20
    finally:
        holder.kill()
        holder.wait()


# --------------------------------------------------------------------------- Ctrl-C
# DuckDB 2 turns a SIGINT that lands during a query into RuntimeError("Query interrupted"); Python
# raises KeyboardInterrupt elsewhere. Either way: one line, exit 130, the database as it was.
@pytest.mark.parametrize("where, error", [
    ("load_file", RuntimeError("Query interrupted")),  # was: "error: e.jsonl: Query interrupted"
    ("finish", RuntimeError("Query interrupted")),  # was: a traceback
    ("load_file", KeyboardInterrupt()),  # was: "Aborted!", exit 1
])
def test_ctrl_c_during_a_load_is_one_line_exit_130_and_changes_nothing(db, cli, tmp_path, monkeypatch, where, error):
    from cohortlab.loaders.mixpanel_events import MixpanelEventsLoader

    events = tmp_path / "e.jsonl"
    events.write_text('{"event":"x","properties":{"time":1772000000,"distinct_id":"a"}}\n')
    before = checksum(db)

    def interrupted(*args, **kwargs):
        raise error

    monkeypatch.setattr(MixpanelEventsLoader, where, interrupted)
    run = cli("load", "--db", db, "mixpanel-events", events)
    assert run.assert_one_line_error() == "error: interrupted"
    assert run.code == 130
    assert checksum(db) == before
    monkeypatch.undo()
    assert cli("load", "--db", db, "mixpanel-events", events).code == 0  # nothing marked as loaded
    assert checksum(db) != before


def test_ctrl_c_during_a_simulation_is_one_line_exit_130(db, cli, monkeypatch):
    from cohortlab import lab as lab_module

    def interrupted(*args, **kwargs):
        raise RuntimeError("Query interrupted")

    monkeypatch.setattr(lab_module.Lab, "simulate", interrupted)
    run = cli("simulate", "--db", db, "--cohort", "Seeded")
    assert run.assert_one_line_error() == "error: interrupted"
    assert run.code == 130


def _raising(error):
    def raise_it(*args, **kwargs):
        raise error

    return raise_it


@pytest.mark.parametrize("error, expected", [
    (OSError(28, "No space left on device"), "error: no space left on the device: free some space, or write elsewhere"),
    (RuntimeError('IO Error: Async write failed for range [offset=0, size=9]: {"exception_type":"IO",'
                   '"exception_message":"Could not write file \\"/full/m.csv\\": No space left on device","errno":"28"}'),
     "error: /full/m.csv: no space left on the device: free some space, or write elsewhere"),
    (RuntimeError("Out of Memory Error: failed to allocate data of size 2.0 MiB (292.0 KiB/1.9 MiB used)"),
     "error: Out of Memory Error: failed to allocate data of size 2.0 MiB (292.0 KiB/1.9 MiB used) (with the "
     "default memory limit): give DuckDB more memory, e.g. COHORTLAB_MEMORY_LIMIT=1.5GB"),
])
def test_a_full_disk_or_too_little_memory_is_one_line(db, cli, monkeypatch, error, expected):
    """(They were tracebacks: export, simulate --members-out or report onto a full disk, a load whose
    COMMIT could not write the .wal, a simulation under a tiny COHORTLAB_MEMORY_LIMIT.)"""
    from cohortlab import lab as lab_module

    monkeypatch.delenv("COHORTLAB_MEMORY_LIMIT", raising=False)
    monkeypatch.setattr(lab_module.Lab, "simulate", _raising(error))
    run = cli("simulate", "--db", db, "--cohort", "Seeded")
    assert run.assert_one_line_error() == expected


def test_other_runtime_errors_still_show_their_traceback(db, cli, monkeypatch):
    from cohortlab import lab as lab_module

    def bug(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(lab_module.Lab, "simulate", bug)
    run = cli("simulate", "--db", db, "--cohort", "Seeded")
    assert isinstance(run.result.exception, RuntimeError)


@pytest.mark.parametrize("command", [["info"], ["load", "mixpanel-events", "EVENTS"], ["simulate", "--cohort", "Seeded"],
                                     ["verify", "--cohort", "Seeded"], ["export", "--out", "OUT"]])
def test_tables_of_an_older_cohortlab_are_one_line_naming_the_database(db, cli, tmp_path, command):
    """A canonical table without a column of this version (a database written by an older
    cohortlab): one line naming the database and the column (it was a traceback, or for a load a
    binder error that named the input file as the problem), and the database is not changed."""
    import duckdb

    with duckdb.connect(db) as con:
        con.execute("ALTER TABLE mp_events DROP COLUMN properties")
    events = tmp_path / "e.jsonl"
    events.write_text('{"event":"x","properties":{"time":1772000000,"distinct_id":"a"}}\n')
    args = [str(events) if a == "EVENTS" else str(tmp_path / "out") if a == "OUT" else a for a in command]
    run = cli(args[0], "--db", db, *args[1:])
    line = run.assert_one_line_error()
    assert line == (f"error: {db}: its tables were written by an older cohortlab (mp_events has no column "
                    "properties): load the exports into a new database file")
    assert not (tmp_path / "out").exists()


def test_report_takes_the_wait_its_error_names(db, cli, tmp_path):
    """The error says "--wait SECONDS to wait longer": report had no --wait (only $COHORTLAB_LOCK_WAIT)."""
    holder = _hold(db, 30)
    try:
        run = cli("report", "--db", db, "--wait", "0.5", "--out", tmp_path / "r")
        line = run.assert_one_line_error("the database is in use by another process")
        assert "waited 0.5 s (--wait SECONDS to wait longer)" in line
        assert not (tmp_path / "r").exists()
    finally:
        holder.kill()
        holder.wait()


def test_wait_lets_a_command_run_once_the_other_process_is_done(db, cli):
    holder = _hold(db, 1.0)
    try:
        run = cli("info", "--db", db, "--wait", "30")
        assert run.code == 0, run.stderr
        assert "tables:" in run.stdout
    finally:
        holder.wait()


def test_a_file_that_is_not_a_duckdb_database(cli, tmp_path):
    bad = tmp_path / "notes.duckdb"
    bad.write_text("these are my notes\n")
    run = cli("info", "--db", bad)
    run.assert_one_line_error("not a DuckDB database file")
    run = cli("load", "--db", bad, "mixpanel-events", bad)
    run.assert_one_line_error("not a DuckDB database file")
    assert bad.read_text() == "these are my notes\n"


def test_a_database_folder_that_cannot_be_created(cli, tmp_path):
    afile = tmp_path / "a-file"
    afile.write_text("x")
    events = tmp_path / "e.jsonl"
    events.write_text('{"event":"x","properties":{"time":1772000000,"distinct_id":"a"}}\n')
    run = cli("load", "--db", afile / "sub" / "lab.duckdb", "mixpanel-events", events)
    run.assert_one_line_error("cannot create its folder")


# --------------------------------------------------------------------------- simulate outputs
@pytest.fixture(scope="module")
def _cohort_seed(tmp_path_factory):
    """Power Users: member a (MPID 2^53+1, matched) and b (no MPID); loaded once per module."""
    folder = tmp_path_factory.mktemp("cohort_db")
    path = folder / "sim.duckdb"
    (folder / "mp.jsonl").write_text(
        json.dumps({"$distinct_id": "a", "$properties": {"$mparticle_user_id": str(BIG)}}) + "\n"
        + json.dumps({"$distinct_id": "b", "$properties": {}}) + "\n")
    (folder / "mpa.jsonl").write_text(f'{{"mpid": {BIG}, "user_attributes": {{}}}}\n')
    (folder / "members.csv").write_text("distinct_id\na\nb\n")
    with Lab(path) as lab:
        lab.load("mixpanel-profiles", folder / "mp.jsonl")
        lab.load("mparticle-profiles", folder / "mpa.jsonl")
        lab.load("mixpanel-members", folder / "members.csv", cohort="Power Users", as_of="2026-03-01")
    return path


@pytest.fixture
def cohort_db(_cohort_seed, tmp_path):
    """A copy of the Power Users database for one test (a simulation stores its results in it)."""
    path = tmp_path / "sim.duckdb"
    shutil.copyfile(_cohort_seed, path)
    return str(path)


def test_members_out_parquet_keeps_mpids_exact_for_pandas(cohort_db, cli, tmp_path):
    out = tmp_path / "members.parquet"
    run = cli("simulate", "--db", cohort_db, "--cohort", "Power Users", "--members-out", out, "--no-timeline")
    assert run.code == 0, run.stderr
    mpid = pd.read_parquet(out).set_index("distinct_id").mpid
    assert str(mpid.dtype) == "Int64"
    assert mpid["a"] == BIG and pd.isna(mpid["b"])


@pytest.mark.parametrize("target, message", [
    ("missing/members.csv", "does not exist"),
    ("members.txt", "expected a .csv, .csv.gz or .parquet file name"),
])
def test_members_out_is_checked_before_the_simulation_runs(cohort_db, cli, tmp_path, target, message):
    out = tmp_path / target
    run = cli("simulate", "--db", cohort_db, "--cohort", "Power Users", "--members-out", out)
    run.assert_one_line_error(message)
    assert "discrepancy waterfall" not in run.stdout  # nothing ran


# --------------------------------------------------------------------------- settings
@pytest.mark.parametrize("yaml, message", [
    ("start: 0001-01-01T00:00:00Z\ncadence: 15m\n", "at most 1,000,000 runs per simulation"),
    ('attribute_template: "{cohort_name:>100000000000}"\n', "only the placeholder {cohort_name} is allowed"),
    ('attribute_template: "{cohort_name.__class__}"\n', "only the placeholder {cohort_name} is allowed"),
    ("snapshot_ttl: 9999999999d\n", "at most 3660 days"),
    ("cadence: 99999999999999s\n", "at most 3660 days"),
])
def test_settings_that_would_exhaust_the_machine_are_refused(cohort_db, cli, tmp_path, yaml, message):
    s = tmp_path / "s.yaml"
    s.write_text(yaml)
    t0 = time.monotonic()
    run = cli("simulate", "--db", cohort_db, "--cohort", "Power Users", "--settings", s)
    run.assert_one_line_error(message)
    assert time.monotonic() - t0 < 30


# --------------------------------------------------------------------------- warnings, --strict
def test_a_load_whose_every_record_is_quarantined_warns_and_fails_under_strict(db, cli, tmp_path):
    cohorts = tmp_path / "cohorts.json"
    cohorts.write_text('[{"id": 1, "name": "A", "count": 3}, {"id": 2, "name": "B", "count": 4}]')
    before = checksum(db)
    run = cli("load", "--db", db, "mparticle-profiles", cohorts, "--strict")
    run.assert_one_line_error("every record was quarantined (2: missing_mpid 2); is this a mparticle-profiles file?")
    assert checksum(db) == before
    run = cli("load", "--db", db, "mparticle-profiles", cohorts)
    assert run.code == 0
    assert run.stderr.strip().startswith("warning: ") and "every record was quarantined" in run.stderr


def test_a_misspelled_cohort_warns_with_the_near_match(db, cli, tmp_path):
    members = tmp_path / "m.csv"
    members.write_text("distinct_id\nu1\n")
    before = checksum(db)
    run = cli("load", "--db", db, "mixpanel-members", members, "-o", "cohort=seeded ", "-o", "as_of=2026-03-01", "--strict")
    run.assert_one_line_error("cohort 'seeded ' is not a known cohort")  # the name as given
    assert "did you mean 'Seeded'?" in run.stderr
    assert checksum(db) == before
    run = cli("load", "--db", db, "mixpanel-members", members, "-o", "cohort=Seedd", "-o", "as_of=2026-03-01")
    assert run.code == 0 and "warning:" in run.stderr and "did you mean 'Seeded'?" in run.stderr
    # an unrelated new name is no typo: no warning
    other = tmp_path / "o.csv"
    other.write_text("distinct_id\nu2\n")
    run = cli("load", "--db", db, "mixpanel-members", other, "-o", "cohort=Churn Risk", "-o", "as_of=2026-03-01",
              "--strict")
    assert run.code == 0 and run.stderr == ""


def test_no_progress_bar_when_stderr_is_not_a_terminal(db, cli, tmp_path):
    events = tmp_path / "e.jsonl"
    events.write_text('{"event":"x","properties":{"time":1772000000,"distinct_id":"a"}}\n')
    run = cli("load", "--db", db, "mixpanel-events", events)
    assert run.code == 0 and "\r" not in run.stderr and "loading" not in run.stderr


# --------------------------------------------------------------------------- mParticle batches
def test_batches_apply_in_their_own_time_order_and_a_replay_changes_nothing(tmp_path):
    old = {"mpid": 42, "timestamp_unixtime_ms": 1_772_000_000_000,
           "user_attributes": {"Power Users": False}, "user_identities": {"customer_id": "old"}}
    new = {"mpid": 42, "timestamp_unixtime_ms": 1_772_000_900_000,
           "user_attributes": {"Power Users": True}, "user_identities": {"customer_id": "new"}}
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    (tmp_path / "replay.bin").write_bytes(gzip.compress(json.dumps(old, indent=2).encode()))

    def state(lab):
        return (lab.engine.query_rows("SELECT name, value_bool FROM mpa_attributes WHERE mpid = 42"),
                lab.engine.query_rows("SELECT identity_type, value FROM mpa_identities WHERE mpid = 42"))

    expected = ([("Power Users", True)], [("customer_id", "new")])
    with Lab() as lab:
        lab.load("mparticle-batches", tmp_path / "old.json")
        lab.load("mparticle-batches", tmp_path / "new.json")
        r = lab.load("mparticle-batches", tmp_path / "replay.bin")  # the old batch again, gzipped
        assert (r.rows_read, r.loaded, r.deduplicated) == (1, 0, 1)
        assert state(lab) == expected
    with Lab() as lab:  # loaded in the wrong order: the batch time decides
        lab.load("mparticle-batches", tmp_path / "new.json")
        lab.load("mparticle-batches", tmp_path / "old.json")
        assert state(lab) == expected


# --------------------------------------------------------------------------- cohortlab lab
def test_lab_passes_jupyter_options_through(cli, monkeypatch):
    import cohortlab.cli.report as report_cli

    seen = {}
    monkeypatch.setattr(report_cli, "run_server", lambda cmd: seen.setdefault("cmd", cmd) and 0)
    run = cli("lab", "--no-browser", "--port", "8899", "--ServerApp.token=abc")
    assert run.code == 0, run.stderr
    assert seen["cmd"][1] == "lab"
    assert seen["cmd"][-4:] == ["--no-browser", "--port", "8899", "--ServerApp.token=abc"]


def test_stopping_lab_stops_the_server(tmp_path):
    pidfile = tmp_path / "server.pid"
    server = f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    parent = textwrap.dedent(f"""
        import sys
        from cohortlab.cli.report import run_server
        sys.exit(run_server([sys.executable, "-c", {server!r}], grace=5))
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.Popen([sys.executable, "-c", parent], env=env)
    deadline = time.monotonic() + 60
    while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    child = int(pidfile.read_text())
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) != 0
    for _ in range(100):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the server outlived cohortlab lab")


def test_pandas_has_an_upper_bound_pyspark_supports():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pandas_req = next(d for d in deps if d.startswith("pandas"))
    assert "<3" in pandas_req.replace(" ", "")


def test_a_migration_window_of_centuries_is_refused(db, cli):
    t0 = time.monotonic()
    run = cli("migrate", "compare", "--db", db, "--switch", "2026-03-01", "--start", "0001-01-01", "--end", "2026-03-01")
    run.assert_one_line_error("at most 3,660 days")
    assert time.monotonic() - t0 < 30


def test_duckdb_progress_bar_is_off_when_stderr_is_not_a_terminal(monkeypatch):
    from cohortlab.engines.duckdb import DuckDBEngine

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    eng = DuckDBEngine()
    try:
        assert eng.query_rows("SELECT current_setting('enable_progress_bar')")[0][0] is False
    finally:
        eng.close()


EVIL = "Power\x1b]0;PWNED\x07\x1b[31mRED\x1b[2K\rFORGED\nerror: forged line"


def test_names_from_data_never_reach_the_terminal_as_control_sequences(tmp_path, cli):
    """A cohort name and a distinct_id holding escape sequences, a carriage return and a line
    break: every command prints them escaped (\\x1b, \\r, \\n), on their own line, never raw."""
    path = tmp_path / "evil.duckdb"
    (tmp_path / "mp.jsonl").write_text(
        json.dumps({"$distinct_id": "a", "$properties": {"$mparticle_user_id": str(BIG)}}) + "\n"
        + json.dumps({"$distinct_id": "\x1b[31mEVIL\x1b[0m", "$properties": {"$mparticle_user_id": "7"}}) + "\n")
    (tmp_path / "mpa.jsonl").write_text(f'{{"mpid": {BIG}, "user_attributes": {{{json.dumps(EVIL)}: true}}}}\n')
    (tmp_path / "members.csv").write_text('distinct_id\na\n"\x1b[31mEVIL\x1b[0m"\n')
    with Lab(path) as lab:
        lab.load("mixpanel-profiles", tmp_path / "mp.jsonl")
        lab.load("mparticle-profiles", tmp_path / "mpa.jsonl")
        lab.load("mixpanel-members", tmp_path / "members.csv", cohort=EVIL, as_of="2026-03-01")
    runs = {
        "info": cli("info", "--db", path),
        "simulate": cli("simulate", "--db", path, "--cohort", EVIL),
        "verify": cli("verify", "--db", path, "--cohort", EVIL),
        "unknown cohort": cli("simulate", "--db", path, "--cohort", EVIL + "x"),
    }
    assert runs["simulate"].code == 0 and runs["verify"].code == 0, runs["simulate"].stdout
    runs["unknown cohort"].assert_one_line_error("unknown cohort")
    for name, r in runs.items():
        out = r.stdout + r.stderr
        assert not any(c in out for c in "\x1b\x07\r"), (name, out)
        assert "\nerror: forged line" not in out and "\nFORGED" not in out, (name, out)
    assert "Power\\x1b]0;PWNED\\x07\\x1b[31mRED\\x1b[2K\\rFORGED\\nerror: forged line" in runs["simulate"].stdout


@pytest.mark.parametrize("kind, name, content, options, names", [
    ("mparticle-csv", "audience.csv", "-7346244611012968789,cust-1,ann.smith@example.com,+44 7700 900123\n", [],
     "columns found: -7346244611012968789, cust-1, <email>, <phone number>"),
    ("mixpanel-members", "members.csv", "alice.jones@example.com,2026-03-01T00:00:00Z\n", ["-o", "cohort=X"],
     "the header has ['<email>', '2026-03-01T00:00:00Z']"),
    ("mixpanel-members", "swapped.csv", "distinct_id,as_of\n2026-03-01T00:00:00Z,bob.brown@example.com\n",
     ["-o", "cohort=X"], "as_of: not a time: '<email>'"),
    ("mixpanel-members", "engage.json",
     '{"status":"error","error":"no access to profile carol.white@example.com","results":[]}\n',
     ["-o", "cohort=X", "-o", "as_of=2026-03-01"], "no access to profile <email>"),
    # the other spellings the reports read as personal (privacy.normalised): they were shown in clear
    ("mixpanel-members", "percent.csv", "alice.jones%40example.com,2026-03-01T00:00:00Z\n", ["-o", "cohort=X"],
     "the header has ['<email>', '2026-03-01T00:00:00Z']"),
    ("mixpanel-members", "fullwidth.csv", "carol.white\uff20example.com,2026-03-01T00:00:00Z\n", ["-o", "cohort=X"],
     "the header has ['<email>', '2026-03-01T00:00:00Z']"),
    ("mixpanel-members", "phone.csv", "distinct_id,as_of\nx,%2B447700900123\n", ["-o", "cohort=X"],
     "as_of: not a time: '<phone number>'"),
    # a national phone number (the North-American shapes): it was shown in clear
    ("mixpanel-members", "national.csv", "415-555-0123\n(415) 555-7700\n", ["-o", "cohort=X", "-o", "as_of=2026-03-01"],
     "the header has ['<phone number>']"),
])
def test_a_load_error_that_quotes_a_record_shows_no_email_or_phone(db, cli, tmp_path, kind, name, content, options,
                                                                   names):
    """A header taken for a record, swapped columns, a server's error text: the error still says
    what is wrong and where, without whose record it is."""
    path = tmp_path / name
    path.write_text(content)
    line = cli("load", "--db", db, kind, path, *options).assert_one_line_error(names)
    assert str(path) in line
    # the record's own text, without the file's name: pytest's folder (pytest-7700) is no phone
    said = line.replace(str(path), "")
    assert "@" not in said and "7700" not in said and "example.com" not in said


def test_a_load_warning_that_quotes_a_name_shows_no_email_or_phone(db, cli, tmp_path):
    """A warning quotes data as an error does (a cohort named in the file, a header's attribute
    name, the stored cohort a typo is close to) but printed it in clear, on stderr and in --json's
    "warnings": masked as an error is."""
    seed = tmp_path / "seed.csv"
    seed.write_text("distinct_id\nu1\n")
    run = cli("load", "--db", db, "mixpanel-members", seed, "-o", "cohort=bob.jones@example.com", "-o",
              "as_of=2026-03-01")
    assert run.code == 0 and run.stderr == "", run.stderr
    near = tmp_path / "near.csv"
    near.write_text("distinct_id\nu2\n")
    run = cli("load", "--db", db, "mixpanel-members", near, "-o", "cohort=bob.jones@example.co", "-o",
              "as_of=2026-03-01", "--json")
    assert run.code == 0, run.stderr
    assert json.loads(run.stdout)["warnings"] == [
        f"{near}: cohort '<email>' is not a known cohort, so a new cohort is created; did you mean '<email>'?"]
    none = tmp_path / "none.json"
    none.write_text(json.dumps({"page": 0, "session_id": "s2", "status": "ok", "as_of": "2026-03-03T00:00:00Z",
                                "filter_by_cohort": {"id": 51, "name": "bob.jones@example.com"},
                                "results": [{"$distinct_id": True}]}) + "\n")
    part = tmp_path / "part.json"
    part.write_text(json.dumps({"page": 1, "page_size": 1, "session_id": "s3", "status": "ok", "total": 2,
                                "as_of": "2026-03-04T00:00:00Z", "filter_by_cohort": {"id": 52, "name": "+14155550199"},
                                "results": [{"$distinct_id": "u3"}]}) + "\n")
    run = cli("load", "--db", db, "mixpanel-members", none, part)
    assert run.code == 0, run.stderr
    assert run.stderr.splitlines() == [
        f"warning: {none}: none of its 1 records names a member (see the quarantine): it writes no snapshot of "
        "'<email>' (one of 0 members would remove every member)",
        f"warning: {none}: every record was quarantined (1: bad_distinct_id 1); is this a mixpanel-members file?",
        f"warning: {part}: holds Engage page(s) 1 of a listing but not its first page (page 0): its snapshot of "
        "'<phone number>' holds part of the cohort; load every page file of the listing in one call (their folder), "
        "into a database that holds none of them (a file loaded before is skipped)"]
    audience = tmp_path / "audience.csv"
    audience.write_text("mpid,email,415-555-0123,415-555-0123\n1,a@b.com,true,false\n")
    run = cli("load", "--db", db, "mparticle-csv", audience)
    assert run.code == 0, run.stderr
    assert run.stderr == (f"warning: {audience}: the header repeats '<phone number>' (column 4): the first column "
                          "of each name is read, the repeated one ignored\n")
    run = cli("load", "--db", tmp_path / "strict.duckdb", "mparticle-csv", audience, "--strict")
    assert "'<phone number>'" in run.assert_one_line_error("the header repeats") and "555" not in run.stderr


def test_plan_names_never_reach_the_terminal_as_control_sequences(db, cli, tmp_path):
    """migrate compare's verdict ("best: <plan> ... ahead of <plan>") names plans from a YAML file:
    escaped like every other name from data (it was printed raw: an OSC sequence retitled the
    terminal)."""
    plans = tmp_path / "plans.yaml"
    plans.write_text(json.dumps({"plans": [
        {"name": EVIL, "eit_timeline": [{"since": None, "eit": "customer_id"},
                                        {"since": "2026-02-20", "eit": "mparticle_id"}]},
        {"name": "other" + EVIL, "eit_timeline": "customer_id"}]}))
    run = cli("migrate", "compare", "--db", db, "--plan", plans)
    assert run.code == 0, run.stdout + run.stderr
    out = run.stdout + run.stderr
    assert not any(c in out for c in "\x1b\x07\r"), out
    assert "\nerror: forged line" not in out and "\nFORGED" not in out, out
    assert "Power\\x1b]0;PWNED\\x07" in run.stdout


def test_a_warning_naming_a_file_never_writes_its_control_characters(db, cli, tmp_path):
    """A load's warning names the file, and an export folder's file names are data: printed
    escaped on one line (it was raw: an OSC sequence retitled the terminal, a line break in the
    name forged a line); --strict's error line too."""
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / ("p" + EVIL + ".json")).write_text('[{"id": 1, "name": "A", "count": 3}]')
    for strict in (["--strict"], []):  # --strict first: it loads nothing
        run = cli("load", "--db", db, "mparticle-profiles", folder, *strict)
        assert not any(c in run.stdout + run.stderr for c in "\x1b\x07\r"), run.stderr
        lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "every record was quarantined" in lines[0], run.stderr
        assert lines[0].startswith("error: " if strict else "warning: ") and "Power\\x1b]0;PWNED\\x07" in lines[0]


def test_a_full_disk_during_a_load_is_the_machine_s_not_the_file_s(db, cli, monkeypatch, tmp_path):
    """A load whose database (DuckDB's "No space left on device"), whose temporary copy of the
    file, or whose file size limit (`ulimit -f`: "File too large") ran out said `"kind": "load"`,
    as if the export were wrong, and the copy's error named no folder (a reliability review)."""
    import json

    from cohortlab.loaders import line_ends

    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(b'{"event":"A","properties":{"time":1772000000,"distinct_id":"u1","$insert_id":"i1"}}\r\n'
                      b'{"event":"A","properties":{"time":1772000001,"distinct_id":"u2","$insert_id":"i2"}}\n')
    real_write = line_ends.normalise_line_ends

    def full(src, dst, **kw):
        with line_ends.naming_written(dst):
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(line_ends, "normalise_line_ends", full)
    run = cli("load", "--db", db, "mixpanel-events", mixed, "--json")
    error = json.loads(run.stdout)["error"]
    assert error["kind"] == "machine"
    assert error["message"].endswith(".jsonl: no space left on the device: free some space, or write elsewhere")
    assert "cohortlab-lines-" in error["message"]  # the temporary folder that filled
    monkeypatch.setattr(line_ends, "normalise_line_ends", real_write)

    from cohortlab.engines.duckdb import DuckDBEngine

    for text, said in (('IO Error: Could not write file "/full/lab.duckdb.wal": No space left on device',
                        "/full/lab.duckdb.wal: no space left on the device"),
                       ('IO Error: Could not write file "/full/lab.duckdb.wal": File too large',
                        "/full/lab.duckdb.wal: file too large for this process's limit on file size (ulimit -f)")):
        real = DuckDBEngine.execute

        def failing(self, sql, params=None, _text=text, _real=real):
            if sql.lstrip().upper().startswith("INSERT INTO MP_EVENTS"):
                raise RuntimeError(_text)
            return _real(self, sql, params)

        monkeypatch.setattr(DuckDBEngine, "execute", failing)
        run = cli("load", "--db", db, "mixpanel-events", mixed, "--json")
        error = json.loads(run.stdout)["error"]
        assert error["kind"] == "machine" and error["message"].startswith(said), error
        monkeypatch.setattr(DuckDBEngine, "execute", real)


def test_an_error_quoting_data_that_reads_like_a_full_disk_is_still_the_file_s():
    """A CSV error quotes the line it could not read: data saying 'No space left on device' is
    not a full disk (only DuckDB's I/O errors and the system's are)."""
    from cohortlab.errors import is_disk_full

    assert is_disk_full(OSError(28, "No space left on device"))
    assert is_disk_full(RuntimeError('IO Error: Could not write file "x.wal": No space left on device'))
    assert not is_disk_full(RuntimeError("Invalid Input Error: CSV Error on Line: 3\\nOriginal Line: "
                                         "1,No space left on device,x"))


def test_a_path_that_holds_the_words_of_a_full_disk_is_no_full_disk(tmp_path, cli):
    """A folder named 'File too large' made a malformed file in it a full disk ("kind": "machine",
    'ulimit -f'), as the error quoted its path (a red team on the day's changes)."""
    import json

    folder = tmp_path / "File too large"
    folder.mkdir()
    bad = folder / "cohorts.json"
    bad.write_text('[{"id": 1, "name": "x"}, {"id": 2, "name": "y" "count": 3}]')
    run = cli("load", "--json", "--db", tmp_path / "d.duckdb", "mixpanel-cohorts", bad)
    error = json.loads(run.stdout)["error"]
    assert error["kind"] == "load" and "malformed JSON" in error["message"], error
    from cohortlab.errors import is_disk_full

    assert not is_disk_full(RuntimeError('IO Error: No files found that match the pattern "File too large/x.json"'))
