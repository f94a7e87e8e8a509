"""A folder written by ``cohortlab fetch`` and loaded later: each profile export gets the capture
time ``fetch.json`` records for it, not the load time (docs/fetching.md#capture-times,
docs/loading.md#fetched). The fetches run on a fixed clock ("Monday", "Wednesday") and the loads
now, months later."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

import cohortlab.fetch.mixpanel as fetch_mixpanel
import cohortlab.fetch.mparticle as fetch_mparticle
from cohortlab import Lab
from cohortlab.fetch import FetchError, fetch
from cohortlab.loaders import LoadError
from cohortlab.loaders.folder import load_world
from tests.fetch.conftest import BIG, FALLBACK, NEG

MONDAY = datetime(2026, 3, 2, 9, 0, 0, tzinfo=timezone.utc)
WEDNESDAY = datetime(2026, 3, 4, 9, 0, 0, tzinfo=timezone.utc)
MPIDS = [NEG, BIG, FALLBACK]


@pytest.fixture
def clock(monkeypatch):
    """``clock(t)``: the fetch modules' clock reads ``t`` (the requests' times: Engage's first
    page, the Profile API requests)."""

    def set_to(t: datetime) -> None:
        class Fixed(datetime):
            @classmethod
            def now(cls, tz=None):
                return t if tz is not None else t.replace(tzinfo=None)

        monkeypatch.setattr(fetch_mixpanel, "datetime", Fixed)
        monkeypatch.setattr(fetch_mparticle, "datetime", Fixed)

    return set_to


def _history(lab, distinct_id="cust-1"):
    return lab.engine.query_rows(
        "SELECT mparticle_user_id, as_of FROM mp_profile_history WHERE distinct_id = ? ORDER BY load_id",
        [distinct_id])


def _mparticle_as_of(lab):
    return sorted({r[0] for r in lab.engine.query_rows(
        "SELECT json_extract_string(options, '$.as_of') FROM loads WHERE kind = 'mparticle-profiles'")})


def test_a_fetched_folder_loaded_later_takes_the_recorded_capture_times(fake, creds, policy, tmp_path, clock):
    clock(MONDAY)
    fetch(tmp_path, sources=["mixpanel", "mparticle"], mpids=MPIDS, credentials=creds, policy=policy,
          progress=False)
    record = json.loads((tmp_path / "fetch.json").read_text())["runs"][-1]
    items = {i["kind"]: i for i in record["items"]}
    assert items["mixpanel-profiles"]["as_of"] == "2026-03-02T09:00:00Z"  # the first page's request
    part = items["mparticle-profiles"]["files"][0]
    assert part == "part-20260302T090000Z-00001.jsonl"  # named by its capture time
    assert items["mparticle-profiles"]["file_times"] == {part: "2026-03-02T09:00:00Z"}
    # a whole-folder load (report --data, fetch --db), months later
    with Lab() as lab:
        load_world(lab, tmp_path)
        assert {r[0] for r in lab.engine.query_rows("SELECT as_of FROM mp_profile_history")} == {
            MONDAY.replace(tzinfo=None)}
        assert _mparticle_as_of(lab) == ["2026-03-02T09:00:00"]
        # loaded again: nothing doubles (the same capture time, the same fingerprints)
        again = load_world(lab, tmp_path)
        assert all(not r.load_ids for r in again.reports)
        assert lab.engine.query_rows("SELECT count(*) FROM mp_profile_history")[0][0] == 5
    # `cohortlab load KIND` of the fetched files: the same times; -o as_of wins
    with Lab() as lab:
        lab.load("mixpanel-profiles", tmp_path / "mixpanel" / "profiles")
        lab.load("mparticle-profiles", tmp_path / "mparticle" / "profiles", as_of="2026-03-03T00:00:00Z")
        assert {r[1] for r in _history(lab)} == {MONDAY.replace(tzinfo=None)}
        assert _mparticle_as_of(lab) == ["2026-03-03T00:00:00"]
        # the same time given as -o as_of is the same file: already loaded
        r = lab.load("mixpanel-profiles", tmp_path / "mixpanel" / "profiles", as_of="2026-03-02T09:00:00Z")
        assert r.skipped and not r.load_ids


def test_the_identifier_a_run_sent_and_verify_follow_the_fetch_time(fake, creds, policy, tmp_path, clock):
    monday, wednesday = tmp_path / "monday", tmp_path / "wednesday"
    clock(MONDAY)  # cust-1 names NEG, an mParticle profile; Power Users holds cust-1
    fetch(monday, sources=["mixpanel", "mparticle"], cohorts=["Power Users"], mpids=MPIDS, credentials=creds,
          policy=policy, progress=False)
    clock(WEDNESDAY)  # by Wednesday cust-1's profile names another MPID
    fake.profiles[0] = {"$distinct_id": "cust-1", "$properties": {"$mparticle_user_id": "5555"}}
    fetch(wednesday, sources=["mixpanel"], cohorts=["Power Users"], credentials=creds, policy=policy,
          progress=False)
    with Lab() as lab:  # loaded later, the newer folder first
        load_world(lab, wednesday)
        load_world(lab, monday)
        assert _history(lab) == [("5555", WEDNESDAY.replace(tzinfo=None)),
                                 (str(NEG), MONDAY.replace(tzinfo=None))]
        res = lab.resolution("Power Users", at=MONDAY)
        sent = res[res.distinct_id == "cust-1"].iloc[0]
        assert (sent.identifier, sent.status) == (str(NEG), "matched")  # the profile as it was on Monday
        v = lab.verify("Power Users", at=MONDAY)
        assert v.snapshot_at == MONDAY  # the Profile API answers' capture time, not their last_stored_at
        assert v.disagreements.empty


def test_a_fetch_with_db_and_a_later_load_of_the_folder_double_nothing(fake, creds, policy, tmp_path, clock):
    clock(MONDAY)
    with Lab() as lab:
        fetch(tmp_path, lab=lab, sources=["mixpanel", "mparticle"], credentials=creds, policy=policy,
              progress=False)
        # the fetch's own loads already took the capture times (fetch.json is written as each item is in place)
        assert {r[1] for r in _history(lab)} == {MONDAY.replace(tzinfo=None)}
        assert _mparticle_as_of(lab) == ["2026-03-02T09:00:00"]
        n = lab.engine.query_rows("SELECT (SELECT count(*) FROM loads), (SELECT count(*) FROM mp_profile_history)")
        report = load_world(lab, tmp_path)
        assert all(not r.load_ids for r in report.reports)
        assert lab.engine.query_rows(
            "SELECT (SELECT count(*) FROM loads), (SELECT count(*) FROM mp_profile_history)") == n


def test_a_fetch_json_written_before_file_times_still_loads(fake, creds, policy, tmp_path, clock):
    """fetch.json as earlier versions wrote it: no file_times, no complete; the mParticle item's as_of
    was the run's start."""
    clock(MONDAY)
    fetch(tmp_path, sources=["mixpanel", "mparticle"], mpids=MPIDS, credentials=creds, policy=policy,
          progress=False)
    part = next((tmp_path / "mparticle" / "profiles").iterdir()).name
    (tmp_path / "fetch.json").write_text(json.dumps({"runs": [{"fetched_at": "2026-03-02T08:59:00Z", "items": [
        {"kind": "mixpanel-cohorts", "path": "mixpanel/cohorts.json", "as_of": "2026-03-02T08:59:00Z"},
        {"kind": "mixpanel-profiles", "path": "mixpanel/profiles", "as_of": "2026-03-02T08:59:30Z"},
        {"kind": "mparticle-profiles", "path": "mparticle/profiles", "as_of": "2026-03-02T08:59:45Z",
         "files": [part]}]}]}, indent=2))
    with Lab() as lab:
        load_world(lab, tmp_path)
        assert {r[0] for r in lab.engine.query_rows("SELECT as_of FROM mp_profile_history")} == {
            datetime(2026, 3, 2, 8, 59, 30)}
        assert _mparticle_as_of(lab) == ["2026-03-02T08:59:45"]


def test_a_part_no_run_recorded_takes_the_time_in_its_name(fake, creds, policy, tmp_path, clock):
    clock(MONDAY)
    fetch(tmp_path, sources=["mixpanel", "mparticle"], mpids=MPIDS, credentials=creds, policy=policy,
          progress=False)
    runs = json.loads((tmp_path / "fetch.json").read_text())["runs"]
    runs[-1]["items"] = [i for i in runs[-1]["items"] if i["kind"] != "mparticle-profiles"]  # killed before the record
    (tmp_path / "fetch.json").write_text(json.dumps({"runs": runs}))
    with Lab() as lab:
        load_world(lab, tmp_path)
        assert _mparticle_as_of(lab) == ["2026-03-02T09:00:00"]


@pytest.mark.parametrize("text, why", [
    ("{not json", "not valid JSON"),
    ('{"runs": ' + "[" * 100_000 + "]" * 100_000 + "}", "not valid JSON (nested too deeply)"),  # was RecursionError
    ('{"runs": {}}', 'expected an object with a "runs" list'),
    ('{"runs": [{"items": [{"kind": "mixpanel-profiles", "path": "mixpanel/profiles", "as_of": "Monday"}]}]}',
     "run 1, item 1 (mixpanel-profiles): as_of 'Monday' is not a time"),
])
def test_a_malformed_fetch_json_is_a_clear_error_and_loads_nothing(fake, creds, policy, tmp_path, text, why):
    fetch(tmp_path, sources=["mixpanel"], credentials=creds, policy=policy, progress=False)
    (tmp_path / "fetch.json").write_text(text)
    with Lab() as lab:
        with pytest.raises(LoadError, match="fetch.json: " + why.replace("(", r"\(").replace(")", r"\)")):
            load_world(lab, tmp_path)
        assert lab.engine.query_rows("SELECT count(*) FROM loads")[0][0] == 0  # nothing, not even the cohorts
        with pytest.raises(LoadError, match="fetch.json"):
            lab.load("mixpanel-profiles", tmp_path / "mixpanel" / "profiles")
        # -o as_of needs no record: the file loads
        lab.load("mixpanel-profiles", tmp_path / "mixpanel" / "profiles", as_of="2026-03-02T09:00:00Z")
        assert lab.engine.query_rows("SELECT count(*) FROM mp_profiles")[0][0] == 5
    # fetch into the folder refuses it too, before any request, rather than replacing it
    fake.log.clear()
    with pytest.raises(FetchError, match="fetch.json"):
        fetch(tmp_path, sources=["mixpanel"], credentials=creds, policy=policy, progress=False)
    assert fake.log == [] and (tmp_path / "fetch.json").read_text() == text


def test_a_run_that_stops_on_an_error_still_records_what_it_fetched(fake, creds, policy, tmp_path, clock):
    clock(MONDAY)
    fetch(tmp_path, sources=["mixpanel"], credentials=creds, policy=policy, progress=False)
    clock(WEDNESDAY)
    fake.faults["engage"] = [None, None, None, ("status", 404)]  # the members, after the 3 profile pages
    with pytest.raises(FetchError, match="HTTP 404 on /api/query/engage"):  # after the profiles were swapped in
        fetch(tmp_path, sources=["mixpanel"], cohorts=["Power Users"], credentials=creds, policy=policy,
              progress=False)
    runs = json.loads((tmp_path / "fetch.json").read_text())["runs"]
    assert len(runs) == 2  # the stopped run is recorded
    last = runs[-1]
    assert last["complete"] is False
    assert [i["as_of"] for i in last["items"] if i["kind"] == "mixpanel-profiles"] == ["2026-03-04T09:00:00Z"]
    with Lab() as lab:
        load_world(lab, tmp_path)
        assert {r[0] for r in lab.engine.query_rows("SELECT as_of FROM mp_profile_history")} == {
            WEDNESDAY.replace(tzinfo=None)}


def test_a_run_stopped_at_an_event_chunk_records_the_chunks_in_place(fake, creds, policy, tmp_path):
    # the events item was written once every chunk was in; a run stopped at its third
    # chunk recorded nothing of the two in the folder (docs: a stopped run records what it fetched)
    fake.faults["export"] = [None, None, ("status", 400)]
    with pytest.raises(FetchError, match="HTTP 400 on /api/2.0/export"):
        fetch(tmp_path, sources=["mixpanel"], from_date="2026-01-01", to_date="2026-01-09", chunk_days=3,
              profiles=False, credentials=creds, policy=policy, progress=False)
    last = json.loads((tmp_path / "fetch.json").read_text())["runs"][-1]
    assert last["complete"] is False
    (item,) = [i for i in last["items"] if i["kind"] == "mixpanel-events"]
    assert (item["files"], item["empty_chunks"], item["events"]) == (
        ["mixpanel/events/2026-01-01_2026-01-03.jsonl.gz"], ["2026-01-04_2026-01-06"], 5)
    fetch(tmp_path, sources=["mixpanel"], from_date="2026-01-01", to_date="2026-01-09", chunk_days=3,
          profiles=False, credentials=creds, policy=policy, progress=False)
    last = json.loads((tmp_path / "fetch.json").read_text())["runs"][-1]
    (item,) = [i for i in last["items"] if i["kind"] == "mixpanel-events"]
    assert (item["files"], item["empty_chunks"], item["already_fetched"], last["complete"]) == (
        [], ["2026-01-07_2026-01-09"], 2, True)


def test_fetch_json_keeps_the_engage_listing_of_the_profiles_folder_however_old(fake, creds, policy, tmp_path,
                                                                                 clock):
    clock(MONDAY)
    fetch(tmp_path, sources=["mixpanel"], credentials=creds, policy=policy, progress=False)
    path = tmp_path / "fetch.json"
    runs = json.loads(path.read_text())["runs"]
    runs += [{"fetched_at": "2026-03-03T00:00:00Z", "items": []} for _ in range(120)]  # runs without profiles
    path.write_text(json.dumps({"runs": runs}))
    fetch(tmp_path, sources=["mixpanel"], profiles=False, credentials=creds, policy=policy, progress=False)
    kept = json.loads(path.read_text())["runs"]
    assert len(kept) == 100
    assert [i["as_of"] for i in kept[0]["items"] if i["kind"] == "mixpanel-profiles"] == ["2026-03-02T09:00:00Z"]
    with Lab() as lab:
        load_world(lab, tmp_path)
        assert {r[0] for r in lab.engine.query_rows("SELECT as_of FROM mp_profile_history")} == {
            MONDAY.replace(tzinfo=None)}


def test_each_mparticle_part_is_dated_by_its_first_request(fake, creds, policy, tmp_path, monkeypatch):
    """A long Profile API run: a later part holds later answers, and gets a later time, not the
    run's start (a million MPIDs at 15 a second take 18 hours)."""
    calls: list[datetime] = []

    class Ticking(datetime):
        @classmethod
        def now(cls, tz=None):  # every reading of the clock is one hour later
            calls.append(MONDAY + timedelta(hours=len(calls)))
            return calls[-1]

    monkeypatch.setattr(fetch_mparticle, "datetime", Ticking)
    fetch(tmp_path, sources=["mparticle"], mpids=MPIDS, part_size=1, concurrency=1, credentials=creds,
          policy=policy, progress=False)
    item = json.loads((tmp_path / "fetch.json").read_text())["runs"][-1]["items"][0]
    assert item["as_of"] == "2026-03-02T09:00:00Z"  # the run's start, as before
    # one clock reading per request after the run's start (10:00, 11:00, 12:00); a part is dated by
    # its first (a part usually holds one answer; two when they complete before the part is written)
    times = item["file_times"]
    assert item["files"] == list(times)
    assert min(times.values()) == "2026-03-02T10:00:00Z"
    assert sorted(times.values()) == list(times.values()) and len(set(times.values())) == len(times)
    for name, t in times.items():  # the part's name carries the same time
        assert name.startswith("part-" + t.replace("-", "").replace(":", "") + "-")
    with Lab() as lab:
        load_world(lab, tmp_path)
        assert _mparticle_as_of(lab) == sorted(t.rstrip("Z") for t in times.values())


def test_fetch_timezone_records_the_project_time_zone_and_the_folder_loads_its_events_in_it(
        fake, creds, policy, tmp_path):
    # a project created before 2023 exports times as its wall clock (docs/loading.md#project-time-zone):
    # fetch --timezone records the zone, and every load of the folder's raw events reads it, the
    # events of runs before it included; `cohortlab load -o timezone=...` still wins
    fetch(tmp_path, sources=["mixpanel"], from_date="2026-01-01", to_date="2026-01-09", chunk_days=3,
          profiles=False, credentials=creds, policy=policy, progress=False)

    def times(**options):
        with Lab() as lab:
            lab.load("mixpanel-events", str(tmp_path / "mixpanel" / "events"), **options)
            return sorted(r[0] for r in lab.engine.query_rows("SELECT time FROM mp_events"))
    as_utc = times()
    fetch(tmp_path, sources=["mixpanel"], profiles=False, timezone="america/los_angeles", credentials=creds,
          policy=policy, progress=False)
    assert json.loads((tmp_path / "fetch.json").read_text())["runs"][-1]["mixpanel_timezone"] == "America/Los_Angeles"
    assert times() == [t + timedelta(hours=8) for t in as_utc]  # January: UTC-8
    with Lab() as lab:  # a folder load (report --data, fetch --db): the same
        load_world(lab, tmp_path)
        assert sorted(r[0] for r in lab.engine.query_rows("SELECT time FROM mp_events")) == times()
        assert lab.engine.query_rows("SELECT DISTINCT options->>'timezone' FROM loads WHERE kind = 'mixpanel-events'") \
            == [("America/Los_Angeles",)]
    assert times(timezone="UTC") == as_utc and times(timezone="Asia/Kolkata")[0] == as_utc[0] - timedelta(hours=5.5)
    # a later run naming UTC wins; one naming none keeps it
    fetch(tmp_path, sources=["mixpanel"], profiles=False, timezone="Etc/UTC", credentials=creds, policy=policy,
          progress=False)
    fetch(tmp_path, sources=["mixpanel"], profiles=False, credentials=creds, policy=policy, progress=False)
    assert times() == as_utc


def test_fetch_timezone_is_checked_before_any_request(fake, creds, policy, tmp_path):
    with pytest.raises(FetchError, match="fetch: timezone must be a time zone name .* got 'PST'"):
        fetch(tmp_path / "a", sources=["mixpanel"], timezone="PST", credentials=creds, policy=policy, progress=False)
    with pytest.raises(FetchError, match=r"timezone \(--timezone\): for the mixpanel side"):
        fetch(tmp_path / "b", sources=["mparticle"], mpids=MPIDS, timezone="Europe/Berlin", credentials=creds,
              policy=policy, progress=False)
    assert fake.log == [] and not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "fetch.json").write_text(json.dumps({"runs": [{"items": [], "mixpanel_timezone": "Mars/Base"}]}))
    (tmp_path / "c" / "mixpanel" / "events").mkdir(parents=True)
    (tmp_path / "c" / "mixpanel" / "events" / "e.jsonl").write_text(
        '{"event":"e","properties":{"time":1768867200,"distinct_id":"U"}}\n')
    with Lab() as lab, pytest.raises(LoadError, match=r"fetch.json: run 1: mixpanel_timezone: .*got 'Mars/Base'"):
        lab.load("mixpanel-events", str(tmp_path / "c" / "mixpanel" / "events"))
