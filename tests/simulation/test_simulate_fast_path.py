"""What makes `cohortlab simulate` fast without changing what it says (docs/simulate.md#cli-cost):
the command imports no pandas, prints its tables exactly as pandas would, reads the members'
profile versions once, and decides single / multi profile history on the members alone."""

import random
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from cohortlab import Lab
from cohortlab.cli import main
from cohortlab.cli.simulate import TIMELINE_SHOWN, _timeline_lines, _waterfall_text
from cohortlab.cli.tables import text_table
from cohortlab.simulation.sync import Names, run_sync

from .conftest import Data

C = "Power Users"
ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("pandas", "numpy", "pyarrow", "matplotlib", "sqlglot", "papermill", "nbformat")


# --------------------------------------------------------------------------- text tables
def _random_value(rng, kind):
    if kind == "text":
        return "".join(rng.choice("ab =-:ü$") for _ in range(rng.randint(0, 14)))
    if kind == "int":
        return rng.choice([0, 7, -5, 240183, -(2**40), rng.randint(-1000, 10**7)])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "quarter_hours":
        return datetime(2026, 2, 23) + timedelta(minutes=15 * rng.randint(0, 9))
    return datetime(2026, 2, 23) + timedelta(days=rng.randint(0, 9))  # midnights: pandas prints dates


def test_text_table_is_what_pandas_to_string_prints():
    rng = random.Random(15)
    for _ in range(300):
        kinds = [rng.choice(["text", "int", "bool", "quarter_hours", "days"]) for _ in range(rng.randint(1, 5))]
        columns = [rng.choice(["a", "run_at", "a_long_column_name", "count", "ü"]) + str(i) for i in range(len(kinds))]
        rows = [tuple(_random_value(rng, k) for k in kinds) for _ in range(rng.randint(1, 6))]
        assert text_table(columns, rows) == pd.DataFrame(rows, columns=columns).to_string(index=False), (kinds, rows)


@pytest.mark.parametrize("rows", [
    [], [(None, 1)], [(1.5, 1)], [("a\tb", 1)], [(datetime(2026, 3, 1, 0, 0, 0, 500), 1)], [(1, 2), ("x", 3)],
])
def test_text_table_declines_what_it_would_not_print_like_pandas(rows):
    assert text_table(["a", "b"], rows) is None


# --------------------------------------------------------------------------- the command
@pytest.fixture
def busy(data):
    """Hourly snapshots over two days with churn (more than 20 runs that send changes), runs every
    15 minutes (run times that are not midnights), a paused window (failed runs)."""
    data.mpa(1).mpa(2).mpa(3)
    data.profile("a", mparticle_user_id="1").profile("b", mparticle_user_id="2").profile("c", mparticle_user_id="3")
    start = datetime(2026, 3, 1)
    for h in range(30):
        members = ["a"] + (["b"] if h % 2 else []) + (["c"] if h % 3 == 0 else []) + ["junk"]
        data.snapshot(C, (start + timedelta(hours=h)).isoformat(), members)
    return data


BUSY = {"pauses": [{"start": "2026-03-01T05:10:00Z", "end": "2026-03-01T07:00:00Z"}], "snapshot_ttl": "1h"}


def _pandas_timeline(tl):
    """What `cohortlab simulate` printed before it read the timeline without pandas."""
    sent, runs, obs = tl[tl.sent], tl[tl.kind != "observation"], tl[tl.kind == "observation"]
    what = (f"1 run at {runs.run_at.iloc[0]} UTC" if len(runs) == 1
            else f"{len(runs)} runs from {runs.run_at.iloc[0]} to {runs.run_at.iloc[-1]} UTC")
    def n(k: int, one: str, many: str) -> str:
        return f"{k:,} {one if k == 1 else many}"

    if len(obs):
        what += f", then {n(len(obs), 'observation point', 'observation points')} to {tl.run_at.iloc[-1]} UTC (nothing sent)"
    lines = [f"timeline: {what}; "
             f"{int(tl.failed.sum())} failed, {n(int(tl.full_refresh.sum()), 'full refresh', 'full refreshes')}, "
             f"{n(int(sent.adds.sum()), 'add', 'adds')} and {n(int(sent.removes.sum()), 'remove', 'removes')} sent"]
    changed = tl[~tl.kind.isin(["diff", "observation"]) | (tl.adds > 0) | (tl.removes > 0)]
    if len(changed) > 20:
        changed = changed.tail(20)
        lines.append("last 20 runs that sent changes, failed or refreshed:")
    lines.append(changed.to_string(index=False, columns=TIMELINE_SHOWN))
    return lines


@pytest.mark.parametrize("settings", [BUSY, {"sync_type": "one_time"}, {}])
def test_the_printed_waterfall_and_timeline_are_the_pandas_ones(busy, settings):
    r = busy.lab.simulate(C, settings=settings)
    lines = _timeline_lines(busy.engine, r.tables["timeline"].table_name)
    assert lines == _pandas_timeline(r.timeline)
    wf = r.waterfall.copy()
    wf["sign"] = wf.kind.map({"total": "=", "minus": "-", "plus": "+"})
    assert _waterfall_text(r) == wf.to_string(index=False, columns=["sign", "step", "count", "label"])
    if settings.get("sync_type") == "one_time":  # one export, then points where nothing is sent: not runs
        assert lines[0].startswith("timeline: 1 run at 2026-03-01 00:00:00 UTC, then 116 observation points to "
                                   "2026-03-02 05:00:00 UTC (nothing sent); 0 failed"), lines[0]
    if settings is BUSY:
        assert "runs from 2026-03-01 00:00:00 to 2026-03-02 05:00:00 UTC; 7 failed, 1 full refresh," in lines[0]  # 05:15 .. 06:45
        assert lines[1] == "last 20 runs that sent changes, failed or refreshed:"
        assert "2026-03-02 05:00:00 diff" in lines[-1]  # times, not dates: not every run is at midnight


def test_a_one_time_export_lists_its_export_not_its_observation_points(busy):
    """The listing names the runs that sent changes, failed or refreshed: a one-time export's
    observation points send nothing (116 of them here) and are not listed, so the export itself
    is not pushed out of the last 20."""
    r = busy.lab.simulate(C, settings={"sync_type": "one_time", "reexport_at": ["2026-03-01T12:00:00Z"]})
    lines = _timeline_lines(busy.engine, r.tables["timeline"].table_name)
    assert "last 20 runs" not in "\n".join(lines)
    listed = lines[1].splitlines()[1:]
    assert [ln.split()[2] for ln in listed] == ["one_time", "reexport"], lines
    assert "observation" not in lines[1]


def _small_db(tmp_path):
    """A database with one matched member (``a``) and one that is not (``junk``) of cohort ``C``."""
    db = tmp_path / "lab.duckdb"
    with Lab(db) as lab:
        d = Data(lab)
        d.mpa(1)
        d.profile("a", mparticle_user_id="1")
        d.snapshot(C, "2026-03-01T00:00", ["a", "junk"])
    return db


def test_debug_row_counts_are_one_column(tmp_path):
    """``--debug`` prints ``stage.step`` and its row count: the counts in one right-aligned column,
    whatever the length of the stage's name (the step alone was padded)."""
    db = _small_db(tmp_path)
    r = CliRunner().invoke(main, ["simulate", "--db", str(db), "--cohort", C, "--debug", "--no-timeline"])
    assert r.exit_code == 0, r.output
    rows = r.output.split("rows per step (debug)\n", 1)[1].splitlines()
    rows = rows[:next((i for i, ln in enumerate(rows) if not ln.startswith("  ")), len(rows))]
    assert len(rows) > 10 and len({len(ln) for ln in rows}) == 1, rows
    assert all(ln.split()[-1].replace(",", "").isdigit() for ln in rows)


def test_simulate_command_imports_no_pandas(tmp_path):
    db = _small_db(tmp_path)
    code = (
        "import sys\n"
        "import cohortlab.cli.app\n"
        f"heavy = {HEAVY!r}\n"
        "print('app', sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
        "from cohortlab.cli import main\n"
        f"try:\n    main(['simulate', '--db', {str(db)!r}, '--cohort', {C!r}, '--no-store'])\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "print('simulate', sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "app []" in out.stdout and "simulate []" in out.stdout, out.stdout
    assert "audience" in out.stdout and "timeline: 1 run at" in out.stdout


def test_simulate_output_is_unchanged_through_the_command(busy, tmp_path):
    """The command's output against the same table printed through pandas (the earlier code)."""
    db = tmp_path / "busy.duckdb"
    busy.engine.execute(f"ATTACH '{db}' AS f")
    for t in ("mp_cohort_snapshots", "mp_cohort_members", "mp_profiles", "mpa_profiles", "mpa_identities"):
        busy.engine.execute(f"CREATE TABLE f.{t} AS SELECT * FROM {t}")
    busy.engine.execute("DETACH f")
    s = tmp_path / "s.yaml"
    s.write_text("pauses:\n  - {start: '2026-03-01T05:10:00Z', end: '2026-03-01T07:00:00Z'}\nsnapshot_ttl: 1h\n")
    res = CliRunner().invoke(main, ["simulate", "--db", str(db), "--cohort", C, "--settings", str(s), "--no-store"])
    assert res.exit_code == 0, res.output
    with Lab(db, read_only=True) as lab:
        tl = lab.sql("SELECT * FROM timeline ORDER BY run")
        wf = lab.sql("SELECT * FROM waterfall ORDER BY position")
    wf["sign"] = wf.kind.map({"total": "=", "minus": "-", "plus": "+"})
    assert wf.to_string(index=False, columns=["sign", "step", "count", "label"]) in res.output
    assert "\n".join(_pandas_timeline(tl)) in res.output


# --------------------------------------------------------------------------- profile history
@pytest.fixture
def versions(data):
    """Members m1 (one profile version), m2 (two: no property until Mar 3, then MPID 2); 'other'
    is no member and has two versions."""
    data.mpa(1).mpa(2)
    data.profile("m1", mparticle_user_id="1", history=True)
    data.profile("m2", history=True)
    data.profile("m2", mparticle_user_id="2", as_of="2026-03-03")
    data.profile("other", history=True)
    data.profile("other", mparticle_user_id="1", as_of="2026-03-02")
    return data


def _tables(engine, history, prefix):
    n = Names(prefix)
    run_sync(engine, C, "2026-03-04", {"cadence": "1d"}, names=n, history=history)
    return {t: engine.query_df(f"SELECT * FROM {getattr(n, t)} ORDER BY ALL")
            for t in ("resolved", "resolution", "attribute_state", "timeline")}


def test_history_read_on_the_members_only_gives_what_the_whole_history_gives(versions):
    versions.snapshot(C, "2026-03-01", ["m1"])
    versions.snapshot(C, "2026-03-02", ["m1", "m2"])
    versions.snapshot(C, "2026-03-04", ["m1", "m2"])
    got = _tables(versions.engine, None, "sim_auto_")  # the members' versions decide: m2 has two -> multi
    want = _tables(versions.engine, "multi", "sim_multi_")
    for t in got:
        pd.testing.assert_frame_equal(got[t], want[t])
    res = got["resolution"].set_index("distinct_id")
    assert res.loc["m2", "status"] == "unmatched" and res.loc["m1", "mpid"] == 1  # m2 sent on Mar 2, no MPID then


def test_members_with_one_version_each_read_it_as_single(versions):
    """Only 'other' (no member) has two versions: the members read as single history, same outcome."""
    versions.snapshot(C, "2026-03-01", ["m1"])
    got = _tables(versions.engine, None, "sim_auto_")
    want = _tables(versions.engine, "multi", "sim_multi_")
    for t in got:
        pd.testing.assert_frame_equal(got[t], want[t])
    from cohortlab.simulation.resolution import member_history_kind

    assert member_history_kind(versions.engine, "sim_auto_member_profiles") == "single"
    assert member_history_kind(versions.engine, "mp_profile_history") == "multi"


def test_send_time_requests_need_no_de_duplication(busy):
    """Every (member, time) requested once: at send time the decisions are distinct per run."""
    for resolution_time in ("send", "as_of"):
        n = Names(f"sim_req_{resolution_time}_")
        run_sync(busy.engine, C, None, {**BUSY, "resolution_time": resolution_time}, names=n)
        total, distinct = busy.engine.query_rows(
            f"SELECT count(*), count(DISTINCT (distinct_id, resolve_time)) FROM {n.requests}")[0]
        assert total == distinct > 0
