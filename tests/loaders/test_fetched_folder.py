"""A folder written by ``cohortlab fetch`` (``fetch.json`` beside ``mixpanel/`` and ``mparticle/``),
made by hand: its profile exports take the capture times the record gives, not the load time
(docs/loading.md#fetched). The fetch side (what is recorded): tests/fetch/test_capture_times.py."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from cohortlab.loaders import LoadError
from cohortlab.loaders.folder import load_world

PAGE = {"page": 0, "page_size": 1000, "session_id": "1234567890-EXAMPL", "status": "ok", "total": 2,
        "results": [{"$distinct_id": "U1", "$properties": {"$mparticle_user_id": "101"}},
                    {"$distinct_id": "U2", "$properties": {"$mparticle_user_id": "102"}}]}
PART = "part-20260302T090000Z-00001.jsonl"


def _fetched(write, record, part=PART):
    write("exports/mixpanel/profiles/engage_page_00000.json", json.dumps(PAGE) + "\n")
    write(f"exports/mparticle/profiles/{part}", '{"mpid": 101, "user_attributes": {"Power Users": true}}\n')
    if record is not None:
        write("exports/fetch.json", record if isinstance(record, str) else json.dumps(record))


def _record(profiles="2026-03-02T08:00:00Z", parts=None):
    return {"runs": [{"fetched_at": "2026-03-02T07:59:00Z", "complete": True, "items": [
        {"kind": "mixpanel-cohorts", "path": "mixpanel/cohorts.json", "as_of": "2026-03-02T07:59:00Z"},
        {"kind": "mixpanel-profiles", "path": "mixpanel/profiles", "as_of": profiles},
        {"kind": "mparticle-profiles", "path": "mparticle/profiles", "as_of": "2026-03-02T07:59:00Z",
         "files": [PART], "file_times": parts if parts is not None else {PART: "2026-03-02T09:00:00Z"}}]}]}


def _times(lab):
    return (sorted({r[0] for r in lab.engine.query_rows("SELECT as_of FROM mp_profile_history")}, key=str),
            sorted({r[0] for r in lab.engine.query_rows(
                "SELECT json_extract_string(options, '$.as_of') FROM loads WHERE kind = 'mparticle-profiles'")},
                key=str))


def test_the_profiles_of_a_fetched_folder_take_the_recorded_times(lab, write, tmp_path, run_once):
    _fetched(write, _record())
    load_world(lab, tmp_path / "exports")
    assert _times(lab) == ([datetime(2026, 3, 2, 8, 0)], ["2026-03-02T09:00:00"])
    # loaded again: the same fingerprints (the time is part of them), nothing loaded twice
    again = load_world(lab, tmp_path / "exports")
    assert all(not r.load_ids for r in again.reports)


def test_kind_loads_of_the_fetched_files_take_them_too_and_as_of_wins(lab, write, tmp_path, run_once):
    _fetched(write, _record())
    lab.load("mixpanel-profiles", tmp_path / "exports" / "mixpanel" / "profiles", as_of="2026-03-05T00:00:00Z")
    lab.load("mparticle-profiles", tmp_path / "exports" / "mparticle" / "profiles")
    assert _times(lab) == ([datetime(2026, 3, 5)], ["2026-03-02T09:00:00"])


def test_a_symlinked_fetched_folder(lab, write, tmp_path, run_once):
    _fetched(write, _record())
    (tmp_path / "view").mkdir()
    (tmp_path / "view" / "mixpanel").symlink_to(tmp_path / "exports" / "mixpanel")
    lab.load("mixpanel-profiles", tmp_path / "view" / "mixpanel" / "profiles")
    assert _times(lab)[0] == [datetime(2026, 3, 2, 8, 0)]


def test_without_fetch_json_nothing_changes(lab, write, tmp_path, run_once):
    _fetched(write, None)
    load_world(lab, tmp_path / "exports")
    assert _times(lab) == ([None], [None])  # the load time counts (and verify's last_stored_at)


def test_files_the_record_has_no_time_for(lab, write, tmp_path, run_once):
    """A part no run lists takes the time of its name; a profiles folder no run lists, the load time."""
    record = _record()
    record["runs"][0]["items"] = record["runs"][0]["items"][:1]
    _fetched(write, record, part="part-20260302T091500Z-00003.jsonl")
    load_world(lab, tmp_path / "exports")
    assert _times(lab) == ([None], ["2026-03-02T09:15:00"])


def test_the_newest_listing_dates_the_profiles_folder(lab, write, tmp_path, run_once):
    older, newer = _record(profiles="2026-03-01T00:00:00Z"), _record(profiles="2026-03-02T10:00:00Z")
    _fetched(write, {"runs": older["runs"] + [{"fetched_at": "x", "items": []}] + newer["runs"]})
    load_world(lab, tmp_path / "exports")
    assert _times(lab)[0] == [datetime(2026, 3, 2, 10, 0)]


@pytest.mark.parametrize("record, why", [
    ("[1, 2", "not valid JSON"),
    ("[]", 'expected an object with a "runs" list'),
    ({"runs": [{"items": {}}]}, 'run 1: expected an object with an "items" list'),
    ({"runs": [{"items": [{"kind": "mparticle-profiles", "path": "mparticle/profiles", "files": "x"}]}]},
     'run 1, item 1 \\(mparticle-profiles\\): "files" must be a list'),
    ({"runs": [{"items": [{"kind": "mixpanel-profiles", "path": "mixpanel/profiles", "as_of": 20260302}]}]},
     "run 1, item 1 \\(mixpanel-profiles\\): as_of 20260302 is not a time"),
])
def test_a_malformed_record_stops_the_load_before_anything_is_loaded(lab, write, tmp_path, record, why, run_once):
    _fetched(write, record)
    write("exports/mixpanel/cohorts.json", '[{"id": 1, "name": "Power Users"}]')
    with pytest.raises(LoadError, match=f"exports/fetch.json: {why}"):
        load_world(lab, tmp_path / "exports")
    assert lab.engine.query_rows("SELECT count(*) FROM loads")[0][0] == 0


CLUTTER = {".DS_Store": b"\x00\x00\x00\x01Bud1", "._engage_page_00000.json": b"\x00\x05\x16\x07\x00\x02",
           "Thumbs.db": b"\xd0\xcf\x11\xe0\xa1\xb1", "desktop.ini": b"[.ShellClassInfo]\r\n"}


def test_os_clutter_in_a_fetched_folder_is_not_loaded(lab, write, tmp_path, run_once):
    """Thumbs.db (Windows Explorer's thumbnails) in mixpanel/profiles/ was loaded as a profiles
    page: 'unrecognised format' stopped the whole load; desktop.ini too. Hidden names (.DS_Store,
    macOS's ._NAME beside a copied file) were already left out."""
    from cohortlab.loaders.files import is_clutter

    _fetched(write, _record())
    for top in ("mixpanel", "mparticle"):
        for name, data in CLUTTER.items():
            (tmp_path / "exports" / top / "profiles" / name).write_bytes(data)
    (tmp_path / "exports" / "mparticle" / "profiles" / "THUMBS.DB").write_bytes(b"\xd0\xcf")  # any case
    assert [is_clutter(n) for n in (*CLUTTER, "THUMBS.DB", ".git", "engage_page_00000.json", "thumbs.db.json")] == [
        True] * 6 + [False, False]
    report = load_world(lab, tmp_path / "exports")
    assert report.by_kind()["mixpanel-profiles"]["files"] == 1
    assert report.by_kind()["mparticle-profiles"]["files"] == 1
    assert lab.engine.query_rows("SELECT count(*) FROM mp_profiles") == [(2,)]
    assert len(report.ignored) == 9  # said, as hidden files are
    # named for what they are (the line said 'hidden, or holding no data' of Thumbs.db)
    assert "(docs/loading.md#folder), hidden files and OS clutter (Thumbs.db, desktop.ini), or holding no data: " \
        in report.ignored_text()
    r = lab.load("mixpanel-profiles", tmp_path / "exports" / "mixpanel" / "profiles")
    assert sorted(r.not_read) == sorted(CLUTTER)
    assert ("file(s) of the folder: hidden files and OS clutter (Thumbs.db, desktop.ini), markers holding no "
            "data, or links to a file outside it: ") in str(r)
