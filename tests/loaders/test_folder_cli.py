"""`cohortlab load --db FILE folder DIR`: a whole folder of exports in one command, each file by its
place (docs/loading.md#folder), as `report --data` and `load_world` load it."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from cohortlab import Lab
from cohortlab.cli import main
from cohortlab.loaders.folder import load_world

TABLES = ("mp_cohorts", "mp_profiles", "mp_events", "mp_cohort_members", "mp_webhook_pages", "mpa_profiles",
          "mpa_identities", "mpa_attributes")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from cohortlab.synth import generate

    out = tmp_path_factory.mktemp("folder-cli") / "world"
    generate(out, users=150, seed=5, scenario="mid_migration")
    return out


def _load(*args):
    return CliRunner().invoke(main, ["load", *[str(a) for a in args]])


def _counts(db) -> dict[str, int]:
    with Lab(str(db), read_only=True) as lab:
        return {t: lab.engine.count(t) for t in TABLES}


def test_a_folder_loads_in_one_command_as_load_world_loads_it(world, tmp_path, run_once):
    r = _load("--db", tmp_path / "lab.duckdb", "folder", world)
    assert r.exit_code == 0, r.output
    expected = Lab()
    report = load_world(expected, world)
    assert _counts(tmp_path / "lab.duckdb") == {t: expected.engine.count(t) for t in TABLES}
    assert all(n > 0 for n in _counts(tmp_path / "lab.duckdb").values())
    lines = r.stdout.splitlines()
    assert lines[0] == f"loaded {world}:"
    for kind, d in report.by_kind().items():  # a line per kind: its files and rows
        assert any(line.split()[:3] == [kind, str(d["files"]), "file(s)"] and f"{d['loaded']:,} rows" in line
                   for line in lines), (kind, lines)
    again = _load("--db", tmp_path / "lab.duckdb", "folder", world)
    assert again.exit_code == 0 and "already loaded" in again.stdout
    assert _counts(tmp_path / "lab.duckdb") == {t: expected.engine.count(t) for t in TABLES}  # nothing doubled


def test_a_members_file_loaded_on_its_own_and_then_with_its_folder_is_loaded_once(world, tmp_path, run_once):
    """The folder load gave a members file the manifest's cohort and as_of as options, so the same
    bytes had another fingerprint than `load mixpanel-members FILE`: loaded both ways, the cohort had
    two snapshots at one time (14 snapshots became 16, and the members doubled there; a review of
    scheduled loads). The file's own as_of and cohort win: one fingerprint, whichever way."""
    db = tmp_path / "lab.duckdb"
    day = sorted((world / "mixpanel" / "members" / "power-users").iterdir())[-1]
    assert _load("--db", db, "mixpanel-cohorts", world / "mixpanel" / "cohorts.json").exit_code == 0
    alone = _load("--db", db, "mixpanel-members", day)
    assert alone.exit_code == 0, alone.output
    r = _load("--db", db, "folder", world)
    assert r.exit_code == 0, r.output
    expected = Lab()
    load_world(expected, world)
    assert _counts(db) == {t: expected.engine.count(t) for t in TABLES}
    snapshots = "SELECT cohort_name, as_of, count(*) FROM mp_cohort_snapshots GROUP BY ALL HAVING count(*) > 1"
    with Lab(str(db), read_only=True) as lab:
        assert lab.sql(snapshots).empty
        assert lab.engine.count("mp_cohort_snapshots") == expected.engine.count("mp_cohort_snapshots") == 14


def test_json_lists_each_load_in_the_folders_order(world, tmp_path, run_once):
    r = _load("--db", tmp_path / "lab.duckdb", "folder", world, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["ok"] is True and out["kind"] == "folder" and out["folder"] == str(world)
    kinds = [x["kind"] for x in out["loads"]]
    assert kinds[:2] == ["mparticle-profiles", "mixpanel-cohorts"] and kinds[-1] == "mixpanel-webhooks"
    assert kinds.count("mixpanel-members") > 1  # one load per members file (its own snapshot)
    assert out["loaded"] == sum(x["loaded"] for x in out["loads"]) > 0
    assert out["warnings"] == [] and out["not_loaded"] == []


def test_json_of_a_failed_folder_says_what_stays_loaded(world, tmp_path, run_once):
    """A folder is all or nothing per load, not as a whole: the loads before the failing file stay
    loaded. --json said "loaded": 0 beside a database holding most of the folder; it gives the
    rows and each load that stays, with its warnings."""
    bad = tmp_path / "world"
    shutil.copytree(world, bad)
    (bad / "mixpanel" / "cohorts.json").write_text("[not json")
    db = tmp_path / "lab.duckdb"
    r = _load("--db", db, "folder", bad, "--json")
    assert r.exit_code == 1
    out = json.loads(r.stdout)
    assert out["ok"] is False and "cohorts.json" in out["error"]["message"]
    committed = {x["kind"]: x["loaded"] for x in out["committed"]}
    assert "mparticle-profiles" in committed and "mixpanel-cohorts" not in committed
    assert out["loaded"] == sum(committed.values()) > 0
    with Lab(str(db), read_only=True) as lab:
        assert lab.engine.count("mpa_profiles") == committed["mparticle-profiles"]
        assert lab.engine.count("mp_cohorts") == 0


def test_the_project_time_zone_reaches_the_raw_events(world, tmp_path, run_once):
    r = _load("--db", tmp_path / "lab.duckdb", "folder", world, "-o", "timezone=Europe/Paris")
    assert r.exit_code == 0, r.output
    with Lab(str(tmp_path / "lab.duckdb"), read_only=True) as lab:
        (zones,) = lab.engine.query_rows(
            "SELECT list(DISTINCT options->>'timezone') FROM loads WHERE kind = 'mixpanel-events'")[0]
    assert zones == ["Europe/Paris"]


@pytest.mark.parametrize("args, message", [
    (["NOPE"], "error: NOPE: no such folder"),
    (["FILE"], "error: FILE: not a folder (a whole folder of exports: its mixpanel/ and mparticle/ folders, "
               "docs/loading.md#folder)"),
    (["EMPTY"], "error: EMPTY: expected mixpanel/ and/or mparticle/ export folders"),
    (["WORLD", "WORLD"], "error: folder: expected one folder of exports, got 2 paths"),
    (["WORLD", "-o", "as_of=2026-03-01"], "error: folder: unknown option(s) ['as_of']; a folder takes only "
                                          "-o timezone=ZONE (each file's kind and options come from its place: "
                                          "docs/loading.md#folder)"),
    (["WORLD", "--strict"], "error: --strict takes one KIND at a time (a folder's loads are each all or nothing, "
                            "not the folder): load its kinds one by one with --strict, or the folder without it"),
])
def test_a_folder_that_cannot_load_is_one_error_line_and_no_database(world, tmp_path, args, message, run_once):
    (tmp_path / "empty").mkdir()
    subs = {"NOPE": tmp_path / "nope", "FILE": world / "manifest.json", "EMPTY": tmp_path / "empty", "WORLD": world}
    db = tmp_path / "new" / "lab.duckdb"
    r = _load("--db", db, "folder", *[subs.get(a, a) for a in args])
    assert r.exit_code == 1
    for k, v in subs.items():
        message = message.replace(f"{k}:", f"{v}:")
    assert r.stderr.strip().splitlines() == [message]
    assert not (tmp_path / "new").exists()  # the database and its folder made for it are gone


def test_a_broken_file_stops_the_folder_and_the_loads_before_it_stay(world, tmp_path, run_once):
    broken = tmp_path / "world"
    shutil.copytree(world, broken)
    first = sorted((broken / "mixpanel" / "events").iterdir())[0]
    first.write_bytes(b"\x00\x01 not an export\n")
    r = _load("--db", tmp_path / "lab.duckdb", "folder", broken)
    assert r.exit_code == 1
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith(f"error: {first}: ")
    counts = _counts(tmp_path / "lab.duckdb")
    # the first load (mParticle profiles) ran before the events, or beside them, and finished: whole
    assert counts["mpa_profiles"] > 0
    assert counts["mp_events"] == 0 and counts["mp_cohort_members"] == 0  # the failed load, and those after it


def test_the_warnings_go_to_stderr_and_the_summary_to_stdout(world, tmp_path, run_once):
    warned = tmp_path / "world"
    shutil.copytree(world, warned)
    hooks = sorted((warned / "mixpanel" / "webhooks").iterdir())[0]
    page = {"received_at": "2026-03-01T00:01:00Z", "action": "add_members",
            "parameters": {"mixpanel_cohort_id": "1000", "mixpanel_cohort_name": "Power Users",
                           "mixpanel_session_id": "s-repeat", "page_info": {"total_pages": 1, "page_count": 1},
                           "members": [{"mixpanel_distinct_id": "cust-1"}, {"mixpanel_distinct_id": "cust-1"}]}}
    line = len(hooks.read_text().splitlines()) + 1
    with hooks.open("a") as f:
        f.write(json.dumps(page) + "\n")
    r = _load("--db", tmp_path / "lab.duckdb", "folder", warned)
    assert r.exit_code == 0, r.output
    assert r.stderr.splitlines() == [
        f"warning: {hooks}: members listed more than once in a page (line {line}): 1 repeated entry not stored; "
        "each member is stored once, with its first entry (a page's members are a set)"]
    assert not any(line.lstrip().startswith("warning:") for line in r.stdout.splitlines())
    assert any(line.split()[:1] == ["mixpanel-webhooks"] for line in r.stdout.splitlines())
