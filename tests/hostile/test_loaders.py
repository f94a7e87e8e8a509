"""Every loader against hostile input (tests/hostile/cases.py): a bad file fails with one line
naming it and changes nothing; anything that loads balances its counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cohortlab import Lab

from .cases import cases
from .conftest import checksum, read_only

CASES = cases()


# loading the same file twice must change nothing: checked on one case per loader (a load is
# about half a second on a busy machine, and the suite has to stay fast)
AGAIN = {c.id for c in CASES if c.id.endswith(("/crlf", "/int64-edges", "/one-column-ids-with-pipes"))}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case, db, seed_db, seed_checksum, cli, tmp_path):
    path = tmp_path / case.name
    path.write_bytes(case.data)
    opts = [x for o in case.options for x in ("-o", o)]
    run = cli("load", "--db", db, case.kind, path, "--json", "--no-progress", *opts)
    if case.expect == "error":
        run.assert_one_line_error(case.message)
        # the same bytes as the seed (and no .wal) hold the same tables; otherwise the tables are compared
        same_file = Path(db).read_bytes() == seed_db.read_bytes() and not Path(f"{db}.wal").exists()
        assert same_file or checksum(db) == seed_checksum, "a failed load changed the database"
        return
    assert run.code == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    report = json.loads(run.stdout)
    quarantined = sum(report["quarantined"].values())
    assert report["rows_read"] == report["loaded"] + report["deduplicated"] + quarantined
    if case.loaded is not None:
        assert report["loaded"] == case.loaded, report
    if case.reasons is not None:
        assert report["quarantined"] == case.reasons, report
    if case.quarantined is not None:
        assert quarantined == case.quarantined, report
    with read_only(db) as con:
        r, l, d, q = con.execute(
            "SELECT sum(rows_read), sum(loaded), sum(deduplicated), sum(quarantined) FROM loads WHERE source_file = ?",
            [str(path)]).fetchall()[0]
        assert r == l + d + q
        assert con.execute("SELECT count(*) FROM rejects WHERE source_file = ?", [str(path)]).fetchall()[0][0] == q
        for sql, expected in case.rows:
            assert con.execute(sql).fetchall() == expected, sql
        after = checksum(db, con) if case.id in AGAIN else None
    if after is not None:
        again = cli("load", "--db", db, case.kind, path, "--json", "--no-progress", *opts)
        assert again.code == 0 and json.loads(again.stdout)["skipped"] == [str(path)]
        assert checksum(db) == after


@pytest.mark.parametrize("manifest", ["[" * 100_000 + "]" * 100_000, "[]", '{"parameters": [1]}', "5"])
def test_a_folder_manifest_of_any_json_is_ignored_not_fatal(tmp_path, manifest):
    """A folder's manifest.json only suggests (members' as_of, report hints): one of another
    shape, or nested too deeply to parse, is ignored. It raised RecursionError in load_world and
    AttributeError in world_hints (cohortlab report --data), with a traceback."""
    from cohortlab.loaders.folder import load_world, world_hints

    (tmp_path / "mixpanel").mkdir()
    (tmp_path / "mixpanel" / "cohorts.json").write_text('[{"id": 1, "name": "A", "count": 3}]')
    (tmp_path / "manifest.json").write_text(manifest)
    assert world_hints(tmp_path) == {}
    with Lab() as lab:
        load_world(lab, tmp_path)
        assert lab.engine.query_rows("SELECT count(*) FROM mp_cohorts")[0][0] == 1


def test_a_link_in_a_folder_to_a_file_outside_it_is_not_followed(tmp_path, cli):
    """A folder of exports may come from someone else (a tarball keeps links): a link named like
    an events file that points at ~/.aws/credentials had its first bytes quoted in the load's error
    ("file starts with 'aws_secret_access_key = ...'"), and one pointing at a JSON file of secrets
    was loaded, its line stored whole in `rejects` (a security review). A link out of the folder is
    not read; it is named on a 'not loaded' line. A link to a file inside the folder is read."""
    outside = tmp_path / "home"
    outside.mkdir()
    (outside / "credentials").write_text("aws_secret_access_key = SECRETKEY123\n")
    (outside / "config.json").write_text('{"auths": {"registry": {"auth": "SECRETTOKEN456"}}}\n')
    world = tmp_path / "world"
    events = world / "mixpanel" / "events"
    events.mkdir(parents=True)
    (events / "2026-03.jsonl").write_text(
        '{"event":"A","properties":{"time":1772000000,"distinct_id":"u1","$insert_id":"i1"}}\n')
    (events / "2026-04.jsonl").symlink_to(outside / "credentials")
    (events / "2026-05.jsonl").symlink_to(outside / "config.json")
    (world / "mixpanel" / "export-copy.jsonl").symlink_to(events / "2026-03.jsonl")  # inside: read
    db = str(tmp_path / "lab.duckdb")
    run = cli("load", "--db", db, "folder", world)
    assert run.code == 0, run.stderr
    assert "SECRET" not in run.stdout + run.stderr
    assert ("  not loaded: 2 link(s) to a file outside the folder, not followed (docs/loading.md#links; load such "
            "a file by its own path): mixpanel/events/2026-04.jsonl, mixpanel/events/2026-05.jsonl") in run.stdout
    with Lab(db, read_only=True) as lab:
        assert lab.engine.query_rows("SELECT count(*) FROM mp_events") == [(1,)]
        assert lab.engine.query_rows("SELECT count(*) FROM rejects") == [(0,)]
    run = cli("load", "--db", str(tmp_path / "lab2.duckdb"), "folder", world, "--json")
    assert [p.rsplit("/", 1)[-1] for p in json.loads(run.stdout)["links_not_followed"]] == ["2026-04.jsonl",
                                                                                              "2026-05.jsonl"]


def test_a_folder_assembled_from_links_out_of_it_says_why_it_loads_nothing(tmp_path, cli):
    """`world/mixpanel -> /elsewhere/mixpanel`: every export is a link out of the folder. The load
    said 'none of its files is where a folder of exports keeps them', which they were (a red team
    on the day's changes); it names the links."""
    real = tmp_path / "elsewhere" / "mixpanel" / "events"
    real.mkdir(parents=True)
    (real / "e.jsonl").write_text('{"event":"A","properties":{"time":1772000000,"distinct_id":"u1"}}\n')
    world = tmp_path / "world"
    world.mkdir()
    (world / "mixpanel").symlink_to(tmp_path / "elsewhere" / "mixpanel")
    run = cli("load", "--db", tmp_path / "lab.duckdb", "folder", world)
    run.assert_one_line_error("nothing to load: its 1 export file(s) are links to files outside the folder, "
                              "which are not followed (docs/loading.md#links): mixpanel/events/e.jsonl")


def test_a_link_out_of_a_folder_given_to_one_kind_is_not_read_either(tmp_path, cli):
    """`cohortlab load KIND FOLDER` read a link in the folder to any file (its line stored in
    rejects); it is left out like a hidden file, on the `not read` line. A file named by its own
    path is read wherever it is."""
    (tmp_path / "secret.json").write_text('{"user": "x", "pw": "SECRETPW789"}\n')
    events = tmp_path / "events"
    events.mkdir()
    (events / "a.jsonl").write_text('{"event":"A","properties":{"time":1772000000,"distinct_id":"u1","$insert_id":"i"}}\n')
    (events / "b.jsonl").symlink_to(tmp_path / "secret.json")
    db = str(tmp_path / "lab.duckdb")
    run = cli("load", "--db", db, "mixpanel-events", events, "--json")
    report = json.loads(run.stdout)
    assert report["loaded"] == 1 and report["not_read"] == ["b.jsonl"], report
    with Lab(db, read_only=True) as lab:
        assert lab.engine.query_rows("SELECT count(*) FROM rejects") == [(0,)]
