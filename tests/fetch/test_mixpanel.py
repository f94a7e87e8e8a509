"""Mixpanel side of ``cohortlab fetch`` against the local fake services: raw event export (chunks,
gzip, resumable, 429/5xx retried, truncated streams retried), Engage paging (session expiry and
shifting results restart the listing), cohorts list and members snapshots, then loading."""

from __future__ import annotations

import gzip
import json
import os
import re
from datetime import datetime

import pytest

from cohortlab import Lab
from cohortlab.fetch import FetchError, fetch
from cohortlab.fetch.mixpanel import MixpanelClient
from tests.fetch import fake_services as fs
from tests.fetch.conftest import BIG, FALLBACK, NEG


def _mp(creds, policy, **kw) -> MixpanelClient:
    return MixpanelClient(creds.mixpanel, policy=policy, **kw)


def _lines(path) -> list[dict]:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def _pages(folder) -> list[dict]:
    """The Engage pages written in a profiles folder, in order."""
    return [json.loads(p.read_text()) for p in sorted(folder.iterdir())]


def _no_tmp(out) -> bool:
    tmp = out / ".fetch" / "tmp"
    return not tmp.exists() or not any(tmp.iterdir())


# --------------------------------------------------------------------------- raw events
def test_export_in_chunks_gzip_kept_and_second_run_fetches_nothing(fake, creds, policy, tmp_path):
    mp = _mp(creds, policy)
    chunks = mp.export_events(tmp_path, "2026-01-01", "2026-01-03", chunk_days=2)
    assert [(str(c.from_date), str(c.to_date), c.events) for c in chunks] == [
        ("2026-01-01", "2026-01-02", 4), ("2026-01-03", "2026-01-03", 1)]
    files = sorted(p.name for p in (tmp_path / "mixpanel" / "events").iterdir())
    assert files == ["2026-01-01_2026-01-02.jsonl.gz", "2026-01-03_2026-01-03.jsonl.gz"]
    first = _lines(tmp_path / "mixpanel" / "events" / files[0])
    assert [e["properties"]["$insert_id"] for e in first] == ["e1", "e2", "e3", "e4"]
    assert first[1]["properties"]["$mparticle_user_id"] == BIG  # exact in the file
    # the requests carried the documented parameters
    params = [p for e, _, p in fake.log if e == "export"]
    assert params[0]["from_date"] == "2026-01-01" and params[0]["to_date"] == "2026-01-02"
    assert params[0]["project_id"] == "4242"

    again = mp.export_events(tmp_path, "2026-01-01", "2026-01-03", chunk_days=2)
    assert all(c.skipped for c in again)
    assert fake.count("export") == 2  # nothing asked again
    assert _no_tmp(tmp_path)


def test_export_event_filter_and_empty_chunk(fake, creds, policy, tmp_path):
    mp = _mp(creds, policy)
    chunks = mp.export_events(tmp_path, "2026-01-01", "2026-01-04", chunk_days=1, events=["Purchase"])
    assert [c.events for c in chunks] == [1, 1, 1, 0]
    assert chunks[3].file is None  # no empty file (a loader refuses one)
    assert json.loads([p for e, _, p in fake.log if e == "export"][0]["event"]) == ["Purchase"]
    # the empty day is remembered: a second run does not ask for it again
    mp.export_events(tmp_path, "2026-01-01", "2026-01-04", chunk_days=1, events=["Purchase"])
    assert fake.count("export") == 4


@pytest.mark.parametrize("state", ["[" * 100_000 + "]" * 100_000, "[]", '{"empty": 5}', "{not json"])
def test_an_unreadable_chunk_record_is_no_record(fake, creds, policy, tmp_path, state):
    """.fetch/mixpanel_chunks.json of another shape (damaged, or planted in a shared --out) is no
    record: the chunks are fetched again, as with none (it raised RecursionError, AttributeError,
    JSONDecodeError with a traceback; a request record nested too deeply, RecursionError)."""
    (tmp_path / ".fetch").mkdir()
    for name in ("mixpanel_chunks.json", "mixpanel_export_requests.json", "mixpanel_query_requests.json"):
        (tmp_path / ".fetch" / name).write_text(state)  # the request records too: unreadable = none
    fetch(tmp_path, sources=["mixpanel"], from_date="2026-01-01", to_date="2026-01-03", chunk_days=2,
          profiles=False, credentials=creds, policy=policy, progress=False)
    assert fake.count("export") == 2 and len(list((tmp_path / "mixpanel" / "events").iterdir())) == 2


def test_a_chunk_fetched_with_a_filter_is_not_the_whole_chunk_for_a_later_run(fake, creds, policy, tmp_path):
    """--event Purchase, then no filter: the second run fetches the whole chunk (it took the
    filtered file for it and kept 3 of the 5 events); both files load, each event once."""
    mp = _mp(creds, policy)
    filtered = mp.export_events(tmp_path, "2026-01-01", "2026-01-03", chunk_days=3, events=["Purchase"])
    whole = mp.export_events(tmp_path, "2026-01-01", "2026-01-03", chunk_days=3)
    assert [c.skipped for c in whole] == [False] and fake.count("export") == 2
    assert (filtered[0].events, whole[0].events) == (3, 5)
    names = sorted(p.name for p in (tmp_path / "mixpanel" / "events").iterdir())
    assert names[0] == "2026-01-01_2026-01-03.jsonl.gz" and names[1].startswith("2026-01-01_2026-01-03_filter-")
    # the same filter again: nothing fetched
    assert all(c.skipped for c in mp.export_events(tmp_path, "2026-01-01", "2026-01-03", chunk_days=3,
                                                   events=["Purchase"]))
    assert fake.count("export") == 2
    with Lab() as lab:
        lab.load("mixpanel-events", tmp_path / "mixpanel" / "events")
        assert lab.sql("SELECT count(*) AS n FROM mp_events").n[0] == 5


def test_429_honours_retry_after_and_5xx_is_retried(fake, creds, policy, tmp_path):
    fake.faults["export"] = [("status", 429, 7), ("status", 503), ("status", 502)]
    mp = _mp(creds, policy)
    chunks = mp.export_events(tmp_path, "2026-01-01", "2026-01-03", chunk_days=3)
    assert chunks[0].events == 5
    assert fake.count("export") == 4
    assert dict(mp.http.stats.retries) == {"429": 1, "503": 1, "502": 1}
    assert policy.waits[0] == 7.0  # the Retry-After, not the backoff
    assert policy.waits[1:] == [2.0, 4.0]  # exponential backoff (jitter off in the test policy)


def test_every_5xx_is_retried_as_documented(fake, creds, policy, tmp_path):
    # docs/fetching.md says 429 and 5xx answers are retried; only 500, 502, 503 and 504
    # were: a gateway's 520-524 (or a 507) stopped the run at once
    fake.faults["export"] = [("status", 520), ("status", 522), ("status", 507)]
    mp = _mp(creds, policy)
    chunks = mp.export_events(tmp_path, "2026-01-01", "2026-01-03", chunk_days=3)
    assert chunks[0].events == 5
    assert dict(mp.http.stats.retries) == {"520": 1, "522": 1, "507": 1}
    fake.faults["cohorts"] = [("status", 418)]  # anything else is not retried
    with pytest.raises(FetchError, match="^mixpanel: HTTP 418 on /api/query/cohorts/list: fault 418$"):
        mp.cohorts(tmp_path)


def test_a_429_without_retry_after_waits_minutes_not_seconds(fake, creds, tmp_path, capsys):
    """Mixpanel counts its limits per hour (60 queries) and documents no Retry-After: a 429 means
    the hour's queries are used up (by another client: cohortlab paces its own). Retried after
    1, 2, 4, 8 then 15 minutes, each wait said first; a 503 still backs off from 1 s."""
    from cohortlab.fetch.http import no_sleep_policy

    policy = no_sleep_policy(retries=5)  # the default number of retries
    fake.faults["export"] = [("status", 429)] * 5
    mp = _mp(creds, policy)
    assert mp.export_events(tmp_path, "2026-01-01", "2026-01-03", chunk_days=3)[0].events == 5
    assert policy.waits == [60.0, 120.0, 240.0, 480.0, 900.0]
    said = capsys.readouterr().err
    assert "mixpanel: HTTP 429 on /api/2.0/export: fault 429; retry 1 of 5 in 60 s" in said
    assert "retry 5 of 5 in 15 min" in said


@pytest.mark.parametrize("value", ["NaN", "nan", "Infinity", "-inf", "1e3", "+5", "-1", "soon", "0x10"])
def test_an_unreadable_retry_after_is_the_normal_backoff(fake, creds, policy, tmp_path, value):
    # Retry-After: NaN was a ValueError traceback from time.sleep(nan)
    fake.faults["export"] = [("status", 503, value), ("status", 429, value)]
    mp = _mp(creds, policy)
    chunks = mp.export_events(tmp_path, "2026-01-01", "2026-01-03", chunk_days=3)
    assert chunks[0].events == 5
    # the backoff, as without the header: a 503's from 1 s, a 429's (Mixpanel's limits are per
    # hour) from a minute
    assert policy.waits == [1.0, 120.0]


def test_parse_retry_after():
    from cohortlab.fetch.http import parse_retry_after

    assert parse_retry_after("7") == 7.0 and parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: now
    for bad in ("NaN", "Infinity", "1e3", "+5", "-1", "", None, "Wed, 99 Foo 2015", "9" * 400):
        assert parse_retry_after(bad) is None, bad


def test_a_long_retry_after_is_capped_and_the_error_says_so(fake, creds, policy, tmp_path):
    fake.sticky["export"] = ("status", 429, 3600)
    mp = _mp(creds, policy)
    with pytest.raises(FetchError, match=r"HTTP 429 on /api/2.0/export: fault 429 \(the server asked to wait 3600 s; "
                                         r"cohortlab waits at most 300 s before a retry\)$"):
        mp.export_events(tmp_path, "2026-01-01", "2026-01-03", chunk_days=3)
    assert policy.waits == [300.0] * 3


def test_a_long_wait_before_a_retry_is_said_first_and_a_short_one_is_not(fake, creds, policy, tmp_path):
    # a Retry-After of minutes (up to 5 x 300 s with the defaults) was waited in silence,
    # the progress bar standing still: the run looked stuck
    fake.faults["export"] = [("status", 503, 120), ("status", 429, 5), ("status", 429, 30)]
    mp = _mp(creds, policy)
    said: list[str] = []
    mp.http.notify = said.append
    chunks = mp.export_events(tmp_path, "2026-01-01", "2026-01-03", chunk_days=3)
    assert chunks[0].events == 5 and policy.waits == [120.0, 5.0, 30.0]
    assert said == ["mixpanel: HTTP 503 on /api/2.0/export: fault 503; retry 1 of 3 in 2 min",
                    "mixpanel: HTTP 429 on /api/2.0/export: fault 429; retry 3 of 3 in 30 s"]


def test_reads_have_a_finite_default_timeout_and_a_hanging_server_is_retried(fake, creds, policy, tmp_path):
    # the default was 600 s per read (x 6 attempts), with no way to change it
    from cohortlab.fetch.mparticle import MParticleClient

    mp, mpa = _mp(creds, policy), MParticleClient(creds.mparticle, policy=policy)
    assert mp.http._client.timeout.read == 120.0 and mp.http._client.timeout.connect == 30.0
    assert mpa.http._client.timeout.read == 60.0
    mp.close(), mpa.close()
    fake.hang = 0.8
    fake.faults["cohorts"] = ["hang"]
    mp = _mp(creds, policy, timeout=0.2)
    assert len(mp.cohorts(tmp_path)) == 2
    assert dict(mp.http.stats.retries) == {"transport": 1}
    fake.sticky["cohorts"] = "hang"
    with pytest.raises(FetchError, match=r"^mixpanel: giving up after 4 attempts: ReadTimeout on /api/query/cohorts/list"):
        mp.cohorts(tmp_path)


def test_5xx_exhausted_writes_nothing(fake, creds, policy, tmp_path):
    fake.sticky["export"] = ("status", 500)
    mp = _mp(creds, policy)
    with pytest.raises(FetchError, match=r"^mixpanel: giving up after 4 attempts: HTTP 500 on /api/2.0/export"):
        mp.export_events(tmp_path, "2026-01-01", "2026-01-03", chunk_days=3)
    assert fake.count("export") == 4  # bounded: 1 + 3 retries
    assert not (tmp_path / "mixpanel" / "events").exists() or not any((tmp_path / "mixpanel" / "events").iterdir())
    assert _no_tmp(tmp_path)


@pytest.mark.parametrize("fault", ["truncate_gzip", "cut_line"])
def test_truncated_stream_is_retried_and_never_kept(fake, creds, policy, tmp_path, fault):
    fake.faults["export"] = [fault]  # cut_line: a plain (not gzip) body cut in the middle of a line
    mp = _mp(creds, policy)
    chunks = mp.export_events(tmp_path, "2026-01-01", "2026-01-03", chunk_days=3)
    assert chunks[0].events == 5
    assert len(_lines(chunks[0].file)) == 5
    assert mp.http.stats.retries["bad_body"] == 1
    assert fake.count("export") == 2
    assert _no_tmp(tmp_path)


def test_truncated_every_time_fails_cleanly(fake, creds, policy, tmp_path):
    fake.sticky["export"] = "truncate_gzip"
    mp = _mp(creds, policy)
    with pytest.raises(FetchError, match="truncated gzip stream"):
        mp.export_events(tmp_path, "2026-01-01", "2026-01-03", chunk_days=3)
    assert not list((tmp_path / "mixpanel").rglob("*.jsonl*")) if (tmp_path / "mixpanel").exists() else True


@pytest.mark.parametrize("fault", ["terminated_early", "terminated_glued"])
def test_an_export_mixpanel_terminated_early_is_an_error_and_not_kept(fake, creds, policy, tmp_path, fault):
    """Mixpanel ends an export it stopped before the end with a line 'terminated early': the
    chunk was kept, and its load failed later. It is not retried (the same
    range would stop again): the error says to fetch with smaller chunks. The words may also be
    appended to the record cut off, with no line break: that chunk was kept, and its
    load quarantined one malformed record, the rest of the range missing."""
    fake.faults["export"] = [fault]
    mp = _mp(creds, policy)
    with pytest.raises(FetchError, match=r"^Mixpanel stopped the export of 2026-01-01\.\.2026-01-03 before its "
                                         r"end \(the body ends with 'terminated early'\): fetch again with a smaller "
                                         r"--chunk-days"):
        mp.export_events(tmp_path, "2026-01-01", "2026-01-03", chunk_days=3)
    assert fake.count("export") == 1
    assert not list(tmp_path.rglob("*.jsonl*")) and _no_tmp(tmp_path)


@pytest.mark.parametrize("fault, what", [
    # an error object was saved as the chunk's file and the chunk never fetched again
    ("error_200", "an error instead of events: Internal error while exporting, please retry"),
    # a body whose first line was blank ("\r\n<!DOCTYPE html>...", a proxy's page) was
    # not checked: saved as the chunk's file ("3 events"), remembered as fetched, never fetched again
    ("html_200", "something that is not JSONL events: <!DOCTYPE html>"),
], ids=["error-object", "html-after-a-line-break"])
def test_an_answer_with_200_that_is_not_events_is_retried_never_kept(fake, creds, policy, tmp_path, fault, what):
    fake.faults["export"] = [fault]
    mp = _mp(creds, policy)
    chunks = mp.export_events(tmp_path, "2026-01-01", "2026-01-03", chunk_days=3)
    assert chunks[0].events == 5 and len(_lines(chunks[0].file)) == 5
    assert mp.http.stats.retries["bad_body"] == 1
    assert _no_tmp(tmp_path)
    fake.sticky["export"] = fault  # every time: an error, nothing kept
    with pytest.raises(FetchError, match=r"giving up after 4 attempts: the export of chunk 2026-01-04..2026-01-04 "
                                         r"answered HTTP 200 with " + re.escape(what)):
        mp.export_events(tmp_path, "2026-01-04", "2026-01-04")
    assert not list((tmp_path / "mixpanel" / "events").glob("2026-01-04*")) and _no_tmp(tmp_path)


def test_an_error_object_answered_with_200_every_time_is_an_error_and_not_fetched(fake, creds, policy, tmp_path):
    fake.sticky["export"] = "error_200"
    mp = _mp(creds, policy)
    with pytest.raises(FetchError, match=r"giving up after 4 attempts: the export of chunk 2026-01-01..2026-01-03 "
                                         r"answered HTTP 200 with an error "
                                         r"instead of events: Internal error while exporting, please retry"):
        mp.export_events(tmp_path, "2026-01-01", "2026-01-03", chunk_days=3)
    assert not list(tmp_path.rglob("*.jsonl*"))
    del fake.sticky["export"]
    again = mp.export_events(tmp_path, "2026-01-01", "2026-01-03", chunk_days=3)  # not remembered as fetched
    assert [(c.skipped, c.events) for c in again] == [(False, 5)]


# --------------------------------------------------------------------------- engage
def test_engage_pages_with_session_id(fake, creds, policy, tmp_path):
    mp = _mp(creds, policy)
    listing, folder = mp.profiles(tmp_path)
    assert listing.page_results == [2, 2, 1] and listing.pages == 3
    assert [len(p["results"]) for p in _pages(folder)] == [2, 2, 1]
    calls = [p for e, _, p in fake.log if e == "engage"]
    assert [(c.get("page"), c.get("session_id")) for c in calls] == [(None, None), ("1", "s1"), ("2", "s1")]
    assert sorted(p.name for p in folder.iterdir()) == [f"engage_page_0000{i}.json" for i in range(3)]


def test_an_engage_error_answered_with_200_says_the_servers_error(fake, creds, policy, tmp_path):
    """An Engage error can come with status 200 and no results ({"status": "error", "error": …}):
    it was reported as "expected a JSON object with a results list", the server's words lost."""
    fake.faults["engage"] = [("json_200", {"status": "error", "error": "Invalid where expression"})]
    with pytest.raises(FetchError, match="Engage answered status 'error': Invalid where expression"):
        _mp(creds, policy).profiles(tmp_path)


def test_a_server_s_error_that_quotes_an_email_or_phone_is_shown_without_them(fake, creds, policy, tmp_path):
    """A server's error text may quote a profile: fetch printed it in clear, where a load of the
    same answer masked it (a red-team run)."""
    fake.faults["engage"] = [("json_200", {"status": "error",
                                           "error": "no access to profile erin.y@example.com (+44 7700 900123)"})]
    with pytest.raises(FetchError) as e:
        _mp(creds, policy).profiles(tmp_path)
    assert str(e.value).endswith("Engage answered status 'error': no access to profile <email> (<phone number>)")


def test_a_cohort_named_after_an_email_is_masked_in_the_summary(fake, creds, policy, tmp_path):
    """The summary promises no personal data: a cohort named "Leads of dana.x@example.com" was
    printed in clear (a red-team run). The files keep the name as sent."""
    fake.cohorts = [{"id": 7, "name": "Leads of dana.x@example.com"}]
    s = fetch(tmp_path, sources=["mixpanel"], all_cohorts=True, profiles=False, credentials=creds, policy=policy,
              progress=False)
    assert "members of 'Leads of <email>' (id 7): 0 as of" in str(s) and "dana" not in str(s)
    assert (tmp_path / "mixpanel" / "members" / "cohort-7").is_dir()  # no folder named after the email
    assert json.loads((tmp_path / "mixpanel" / "cohorts.json").read_text())[0]["name"] == "Leads of dana.x@example.com"


def test_cohorts_named_after_an_email_or_a_phone_are_masked_in_json_counts_summary_and_progress(fake, env, tmp_path):
    """--json keyed each cohort's members by its name ("members:bob.jones@example.com"), which the
    plain summary masks, and a name shaped like a national phone number (which slug() gives no
    folder) was in clear in the summary, the key and the progress bar: all three show the name as
    the summary does, a masked key with the cohort's id (two masked names would share it); the
    skipped items and the `incomplete` error line too. The files keep the names as sent."""
    from click.testing import CliRunner

    from cohortlab.cli import main

    fake.cohorts = [{"id": 7, "name": "bob.jones@example.com"}, {"id": 8, "name": "415-555-0123"},
                    {"id": 9, "name": "07700 900123"}, {"id": 10, "name": "Power Users"},
                    {"id": 11, "name": "Call +44 7700 900555"}]
    fake.delete_after_list = {11: 400}
    full = {k: v for k, v in os.environ.items() if not k.startswith(("MIXPANEL_", "MPARTICLE_", "COHORTLAB_"))}
    r = CliRunner().invoke(main, ["fetch", "--out", str(tmp_path / "o"), "--source", "mixpanel", "--all-cohorts",
                                  "--no-profiles", "--retries", "0", "--progress", "--json"],
                           env={**full, **env}, catch_exceptions=False)
    assert r.exit_code == 1, r.output
    doc = json.loads(r.stdout)
    assert {k: v for k, v in doc["counts"].items() if k.startswith("members:")} == {
        "members:<email> (id 7)": 0, "members:<phone number> (id 8)": 0, "members:<phone number> (id 9)": 0,
        "members:Power Users": 0}
    assert [(i["cohort"], i["cohort_id"]) for i in doc["skipped"]] == [("Call <phone number>", "11")]
    assert "members of <email>: " in r.stderr and "members of <phone number>: " in r.stderr  # the progress bars
    assert r.stderr.splitlines()[-1] == ("error: incomplete: 1 item(s) skipped (cohort-deleted: 'Call <phone number>' "
                                         "(id 11)); the rest was fetched")
    for personal in ("bob.jones", "555-0123", "900123", "900555"):
        assert personal not in r.stdout + r.stderr, personal
    r = CliRunner().invoke(main, ["fetch", "--out", str(tmp_path / "o"), "--source", "mixpanel", "--cohort", "8",
                                  "--cohort", "9", "--no-profiles", "--retries", "0"], env={**full, **env})
    assert "members of '<phone number>' (id 8): 0 as of" in r.stdout
    assert "members of '<phone number>' (id 9): 0 as of" in r.stdout and "555" not in r.stdout + r.stderr
    names = {c["name"] for c in json.loads((tmp_path / "o" / "mixpanel" / "cohorts.json").read_text())}
    assert {"bob.jones@example.com", "415-555-0123"} <= names


def test_a_project_with_data_views_sends_its_workspace_id_to_the_query_api_only(fake, env, policy, tmp_path):
    """Mixpanel asks Query API callers of a project with Data Views to send the global data view's
    workspace_id beside project_id (MIXPANEL_WORKSPACE_ID, or mixpanel.workspace_id); the raw
    export takes project_id only. Without it nothing is sent."""
    from cohortlab.fetch.credentials import load_credentials

    mp = _mp(load_credentials(env={**env, "MIXPANEL_WORKSPACE_ID": "3456"}), policy)
    mp.profiles(tmp_path)
    mp.list_cohorts()
    mp.export_events(tmp_path, "2026-01-01", "2026-01-01")
    sent = {e: p for e, _, p in fake.log}
    assert (sent["engage"]["workspace_id"], sent["cohorts"]["workspace_id"]) == ("3456", "3456")
    assert "workspace_id" not in sent["export"] and sent["export"]["project_id"] == sent["engage"]["project_id"]
    _mp(load_credentials(env=env), policy).list_cohorts()
    assert "workspace_id" not in [p for e, _, p in fake.log if e == "cohorts"][-1]


def test_engage_session_expiry_restarts_from_page_zero_on_the_new_data(fake, creds, policy, tmp_path):
    # page 0 is served, then the data changes and the session expires before page 1
    fake.faults["engage"] = [None, "expire_session"]
    mp = _mp(creds, policy)
    fake.profiles.insert(0, {"$distinct_id": "cust-0", "$properties": {}})  # after the snapshot of s1
    fake.sessions.clear()
    listing, folder = mp.profiles(tmp_path)
    assert listing.restarts == 1
    ids = [r["$distinct_id"] for p in _pages(folder) for r in p["results"]]
    assert len(ids) == len(set(ids)) == 6 and "cust-0" in ids
    assert {p["session_id"] for p in _pages(folder)} == {"s2"}  # one session per listing (s1's page 0 dropped)


def test_engage_shifting_pages_restart_and_give_up_when_it_never_settles(fake, creds, policy, tmp_path):
    fake.faults["engage"] = [None, "shift"]
    mp = _mp(creds, policy, max_restarts=2)
    listing, _ = mp.profiles(tmp_path)
    assert listing.restarts == 1 and listing.results == 5

    fake.sticky["engage"] = "shift"
    with pytest.raises(FetchError, match="Engage paging restarted 2 times"):
        mp.profiles(tmp_path / "other")
    # bounded: 3 attempts x (page 0 + the shifted page 1)
    assert fake.count("engage") == 5 + 3 * 2  # first listing: 2 + 3 pages; then 3 x (page 0, page 1)


FLOATS = fs.Raw('{"$distinct_id": "cust-f", "$properties": {"$mparticle_user_id": 1.0e18, '
                '"score": 9.080350317581165e18, "n": 1.50}}')
SURROGATE = fs.Raw('{"$distinct_id": "cust-s", "$properties": {"$name": "Ann \\ud83d"}}')  # JS cut an emoji


def test_profile_pages_are_written_exactly_as_sent(fake, creds, policy, tmp_path):
    # 1.0e18 was re-encoded 1e+18, and a lone surrogate was a UnicodeEncodeError
    fake.profiles[1:1] = [FLOATS, SURROGATE]
    with Lab() as lab:
        fetch(tmp_path, lab=lab, sources=["mixpanel"], credentials=creds, policy=policy, progress=False)
        files = sorted((tmp_path / "mixpanel" / "profiles").iterdir())
        assert [f.read_bytes() for f in files] == [b + b"\n" for b in fake.engage_bodies]
        assert b'"$mparticle_user_id": 1.0e18' in files[0].read_bytes() + files[1].read_bytes()
        q = lab.engine.query_rows
        assert q("SELECT mparticle_user_id FROM mp_profiles WHERE distinct_id = 'cust-f'") == [("1.0e18",)]
        # the page holding the lone surrogate loads, the escape read as its text (docs/loading#limits;
        # until loaders version 6 the loader quarantined that whole page)
        assert q("SELECT count(*) FROM mp_profiles")[0][0] == 7
        assert q("SELECT properties->>'$.\"$name\"' FROM mp_profiles WHERE distinct_id = 'cust-s'") == [("Ann \\ud83d",)]
        # the same as loading the very same pages fetched by hand
        hand = tmp_path / "hand"
        hand.mkdir()
        for i, b in enumerate(fake.engage_bodies):
            (hand / f"page{i}.json").write_bytes(b)
        with Lab() as lab2:
            lab2.load("mixpanel-profiles", sorted(str(p) for p in hand.iterdir()))
            cols = "distinct_id, mparticle_user_id"
            assert sorted(lab2.engine.query_rows(f"SELECT {cols} FROM mp_profiles")) == sorted(
                q(f"SELECT {cols} FROM mp_profiles"))


def test_members_pages_keep_numbers_and_escapes_as_sent(fake, creds, policy, tmp_path):
    fake.members[1000] = ["cust-1", fs.Raw('{"$distinct_id": "cust-9", "$properties": {"x": 1.0e18}}'),
                          fs.Raw('{"$distinct_id": "m\\ud83d", "$properties": {}}')]
    mp = _mp(creds, policy)
    snap = mp.members(tmp_path, "1000", "Power Users")
    text = snap.file.read_text()
    assert '"x": 1.0e18' in text and '"m\\ud83d"' in text
    lines = text.splitlines()
    assert len(lines) == 2 and all(line.startswith('{"as_of": "') for line in lines)
    assert json.loads(lines[0])["filter_by_cohort"] == {"id": 1000, "name": "Power Users"}


def test_engage_pages_are_written_as_they_arrive(fake, creds, policy, tmp_path, monkeypatch):
    # every page was held in memory until the listing ended
    mp = _mp(creds, policy)
    seen: list[int] = []
    real = mp._post_engage

    def spy(form):
        seen.append(len(list((tmp_path / ".fetch" / "tmp").rglob("engage_page_*.json"))))
        return real(form)

    monkeypatch.setattr(mp, "_post_engage", spy)
    mp.profiles(tmp_path)
    assert seen == [0, 1, 2]  # page N is on disk before page N+1 is asked for


def test_members_snapshot_in_the_members_loader_layout(fake, creds, policy, tmp_path):
    mp = _mp(creds, policy)
    mp.cohorts(tmp_path)
    snap = mp.members(tmp_path, "1000", "Power Users")
    assert snap.members == 3
    assert snap.file.parent == tmp_path / "mixpanel" / "members" / "Power_Users-1000"
    pages = [json.loads(line) for line in snap.file.read_text().splitlines()]
    assert len(pages) == 2
    assert {p["as_of"] for p in pages} == {snap.as_of.strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert pages[0]["filter_by_cohort"] == {"id": 1000, "name": "Power Users"}
    assert json.loads([p for e, _, p in fake.log if e == "engage"][0]["filter_by_cohort"]) == {"id": 1000}

    with Lab() as lab:
        lab.load("mixpanel-cohorts", tmp_path / "mixpanel" / "cohorts.json")
        r = lab.load("mixpanel-members", snap.file)
        assert r.loaded == 3
        rows = lab.engine.query_rows("SELECT cohort_id, cohort_name, as_of, member_count FROM mp_cohort_snapshots")
        assert rows == [("1000", "Power Users", snap.as_of.replace(tzinfo=None), 3)]
        assert sorted(r[0] for r in lab.engine.query_rows("SELECT distinct_id FROM mp_cohort_members")) == sorted(
            ["cust-1", "cust-2", str(FALLBACK)])


def test_members_pages_with_a_byte_order_mark_are_a_snapshot(fake, creds, policy, tmp_path):
    # json.loads skipped the BOM, splicing the page's text did not: ValueError
    # ("not a JSON object"), a traceback from the CLI
    fake.faults["engage"] = ["bom", "bom"]
    mp = _mp(creds, policy)
    mp.cohorts(tmp_path)
    snap = mp.members(tmp_path, "1000", "Power Users")
    assert snap.members == 3
    lines = snap.file.read_bytes().splitlines()
    assert len(lines) == 2 and all(line.startswith(b'{"as_of": ') for line in lines)
    with Lab() as lab:
        lab.load("mixpanel-cohorts", tmp_path / "mixpanel" / "cohorts.json")
        assert lab.load("mixpanel-members", snap.file).loaded == 3


def test_cohorts_whose_names_reduce_to_the_same_folder_name_keep_their_own_snapshot(fake, creds, policy, tmp_path):
    # both slugged to "cohort" (or "A_B"), one snapshot replaced the other
    fake.cohorts = [{"id": 2001, "name": "日本のユーザー"}, {"id": 2002, "name": "Пользователи"},
                    {"id": 2003, "name": "A/B"}, {"id": 2004, "name": "A B"}]
    fake.members.update({2001: ["u1", "u2"], 2002: ["u3"], 2003: ["u4"], 2004: []})
    with Lab() as lab:
        s = fetch(tmp_path, lab=lab, sources=["mixpanel"], all_cohorts=True, profiles=False, credentials=creds,
                  policy=policy, progress=False)
        rows = sorted(lab.engine.query_rows("SELECT cohort_id, cohort_name, member_count FROM mp_cohort_snapshots"))
        assert rows == [("2001", "日本のユーザー", 2), ("2002", "Пользователи", 1), ("2003", "A/B", 1), ("2004", "A B", 0)]
    folders = sorted(p.parent.name for p in (tmp_path / "mixpanel" / "members").rglob("*.jsonl"))
    assert folders == ["A_B-2003", "A_B-2004", "cohort-2001", "cohort-2002"]
    assert len({line for line in s.lines if line.startswith("members of")}) == 4


def test_a_cohort_name_with_a_lone_surrogate_is_written_as_sent(fake, creds, policy, tmp_path):
    # a name cut inside an emoji ("Fans \ud83d" in the cohorts list) made every run stop
    # at its first step with a UnicodeEncodeError traceback (cohorts.json, then the members
    # snapshot and fetch.json, were encoded to UTF-8 with the surrogate in them)
    fake.cohorts = [{"id": 1000, "name": "Fans \ud83d"}, {"id": 1001, "name": "Fans 😀 é"}]
    s = fetch(tmp_path, sources=["mixpanel"], all_cohorts=True, profiles=False, credentials=creds, policy=policy,
              progress=False)
    listed = (tmp_path / "mixpanel" / "cohorts.json").read_bytes()
    assert listed == json.dumps(fake.cohorts).encode() + b"\n"  # as sent: b'"Fans \\ud83d"', escapes kept
    assert json.loads(listed) == fake.cohorts
    snap = next((tmp_path / "mixpanel" / "members").glob("Fans-1000/*.jsonl"))
    line = snap.read_bytes().splitlines()[0]
    assert b'"filter_by_cohort": {"id": 1000, "name": "Fans \\ud83d"}' in line
    assert json.loads(line)["results"][0]["$distinct_id"] == "cust-1"
    runs = json.loads((tmp_path / "fetch.json").read_text(encoding="utf-8"))["runs"]
    assert {i.get("cohort") for i in runs[-1]["items"]} >= {"Fans \ud83d", "Fans 😀 é"}
    assert "members of 'Fans \\ud83d' (id 1000): 3" in str(s)


def test_the_cohorts_list_is_written_as_mixpanel_sent_it(fake, creds, policy, tmp_path):
    # it was parsed and written again: indented, `1.5e2` as `150.0`, where docs/fetching.md says
    # answers keep their text as sent (found by an independent check of fetch)
    fake.cohorts_text = ('[\n  {"id": 1000, "name": "Power Users 😀", "count": 1.5e2, "is_visible": 1},\n'
                         '  {"id": 1001, "name": "Fans \\u00e9", "count": 3}\n]\n')
    fetch(tmp_path, sources=["mixpanel"], cohorts=["1000"], profiles=False, credentials=creds, policy=policy,
          progress=False)
    assert (tmp_path / "mixpanel" / "cohorts.json").read_text(encoding="utf-8") == fake.cohorts_text
    with Lab() as lab:
        lab.load("mixpanel-cohorts", tmp_path / "mixpanel" / "cohorts.json")
        assert lab.engine.query_rows("SELECT cohort_id, name FROM mp_cohorts ORDER BY cohort_id") == [
            ("1000", "Power Users 😀"), ("1001", "Fans é")]


def test_the_same_cohort_asked_twice_is_one_snapshot(fake, creds, policy, tmp_path):
    s = fetch(tmp_path, sources=["mixpanel"], cohorts=["1000", "Power Users"], profiles=False, credentials=creds,
              policy=policy, progress=False)
    assert sum(1 for line in s.lines if line.startswith("members of")) == 1


def test_empty_cohort_is_a_snapshot_of_zero_members(fake, creds, policy, tmp_path):
    mp = _mp(creds, policy)
    mp.cohorts(tmp_path)
    snap = mp.members(tmp_path, "1001", "Churn Risk")
    assert snap.members == 0
    with Lab() as lab:
        lab.load("mixpanel-cohorts", tmp_path / "mixpanel" / "cohorts.json")
        lab.load("mixpanel-members", snap.file)
        assert lab.engine.query_rows("SELECT cohort_name, member_count FROM mp_cohort_snapshots") == [("Churn Risk", 0)]


# --------------------------------------------------------------------------- the whole mixpanel fetch
def test_fetch_mixpanel_and_load(fake, creds, policy, tmp_path):
    with Lab() as lab:
        s = fetch(tmp_path, lab=lab, sources=["mixpanel"], from_date="2026-01-01", to_date="2026-01-03",
                  cohorts=["Power Users"], credentials=creds, policy=policy, progress=False)
        q = lab.engine.query_rows
        assert q("SELECT count(*) FROM mp_events")[0][0] == 5
        assert q("SELECT count(*) FROM mp_profiles")[0][0] == 5
        assert q("SELECT count(*) FROM mp_cohorts")[0][0] == 2
        assert q("SELECT mparticle_user_id FROM mp_profiles WHERE distinct_id = 'cust-2'") == [(str(BIG),)]
        assert q("SELECT member_count FROM mp_cohort_snapshots") == [(3,)]
        assert s.counts["events"] == 5 and s.counts["profiles"] == 5 and s.counts["members:Power Users"] == 3
        text = str(s)
        assert "mixpanel events 2026-01-01..2026-01-03: 5 events in 1 file(s)" in text
        assert "ann@example.com" not in text  # no personal data in the summary
        # a second fetch + load doubles nothing
        fetch(tmp_path, lab=lab, sources=["mixpanel"], from_date="2026-01-01", to_date="2026-01-03",
              credentials=creds, policy=policy, progress=False)
        assert q("SELECT count(*) FROM mp_events")[0][0] == 5
        assert q("SELECT count(*) FROM mp_profiles")[0][0] == 5
    manifest = json.loads((tmp_path / "fetch.json").read_text())
    assert len(manifest["runs"]) == 2
    kinds = [i["kind"] for i in manifest["runs"][0]["items"]]
    assert kinds == ["mixpanel-cohorts", "mixpanel-events", "mixpanel-profiles", "mixpanel-members"]
    datetime.fromisoformat(manifest["runs"][0]["items"][3]["as_of"].replace("Z", "+00:00"))
    # the raw event chunks are recorded too: what the run fetched, and what it skipped
    events = manifest["runs"][0]["items"][1]
    assert {k: events[k] for k in ("path", "from_date", "to_date", "events", "files", "already_fetched")} == {
        "path": "mixpanel/events", "from_date": "2026-01-01", "to_date": "2026-01-03", "events": 5,
        "files": ["mixpanel/events/2026-01-01_2026-01-03.jsonl.gz"], "already_fetched": 0}
    again = manifest["runs"][1]["items"][1]
    assert (again["kind"], again["files"], again["already_fetched"]) == ("mixpanel-events", [], 1)


def test_profiles_whose_count_is_a_multiple_of_the_page_size_fetch_and_load(fake, creds, policy, tmp_path):
    fake.page_size = 5  # 5 profiles: a full page, then Engage's empty last page (its own file)
    with Lab() as lab:
        fetch(tmp_path, lab=lab, sources=["mixpanel"], from_date="2026-01-01", to_date="2026-01-03",
              credentials=creds, policy=policy, progress=False)
        assert sorted(p.name for p in (tmp_path / "mixpanel" / "profiles").iterdir()) == [
            "engage_page_00000.json", "engage_page_00001.json"]
        assert lab.engine.query_rows("SELECT count(*) FROM mp_profiles")[0][0] == 5


def test_unknown_cohort_is_a_clear_error(fake, creds, policy, tmp_path):
    with pytest.raises(FetchError, match="no cohort 'Nope' in the project's cohorts list"):
        fetch(tmp_path, sources=["mixpanel"], cohorts=["Nope"], profiles=False, credentials=creds,
              policy=policy, progress=False)


@pytest.mark.parametrize("cohorts, message", [
    (["Power Users", "Power Userz"], "no cohort 'Power Userz'"),
    (["Twins"], "cohort name 'Twins' is ambiguous"),
])
def test_a_cohort_the_list_does_not_name_is_an_error_before_events_and_profiles(fake, creds, policy, tmp_path,
                                                                                cohorts, message):
    # a typo in --cohort was found only after the event chunks and the Engage listing
    # (hours at 60 requests an hour), once the members were due
    fake.cohorts += [{"id": 2001, "name": "Twins"}, {"id": 2002, "name": "Twins"}]
    with pytest.raises(FetchError, match=message):
        fetch(tmp_path, sources=["mixpanel"], from_date="2026-01-01", to_date="2026-01-14", cohorts=cohorts,
              credentials=creds, policy=policy, progress=False)
    assert fs.Counts(fake) == {"cohorts": 1}
    assert not (tmp_path / "mixpanel" / "events").exists() and not (tmp_path / "mixpanel" / "profiles").exists()


def test_regions_choose_the_documented_hosts(creds, policy):
    creds.mixpanel.export_url = creds.mixpanel.query_url = None
    for region, export, query in (("us", "https://data.mixpanel.com", "https://mixpanel.com"),
                                  ("eu", "https://data-eu.mixpanel.com", "https://eu.mixpanel.com"),
                                  ("in", "https://data-in.mixpanel.com", "https://in.mixpanel.com")):
        creds.mixpanel.region = region
        mp = _mp(creds, policy)
        assert (mp.export_url, mp.query_url) == (export, query)
        mp.close()
    creds.mixpanel.region = "mars"
    with pytest.raises(FetchError, match="region must be one of us, eu, in"):
        _mp(creds, policy)


def test_negative_mpid_text_survives(fake, creds, policy, tmp_path):
    mp = _mp(creds, policy)
    _, folder = mp.profiles(tmp_path)
    assert _pages(folder)[0]["results"][0]["$properties"]["$mparticle_user_id"] == str(NEG)


def test_recent_chunks_are_fetched_again_closed_ones_are_not(fake, creds, policy, tmp_path):
    from datetime import timedelta, timezone as tz

    today = datetime.now(tz.utc).date()
    fake.events.append({"event": "Late", "properties": {
        "time": int(datetime(today.year, today.month, today.day, tzinfo=tz.utc).timestamp()),
        "distinct_id": "cust-1", "$insert_id": "late-1"}})
    mp = _mp(creds, policy)
    first = mp.export_events(tmp_path, today - timedelta(days=3), today, chunk_days=1)
    assert [c.events for c in first] == [0, 0, 0, 1]
    second = mp.export_events(tmp_path, today - timedelta(days=3), today, chunk_days=1)
    # the two closed days are known empty; yesterday and today may still get events
    assert [c.skipped for c in second] == [True, True, False, False]
    assert fake.count("export") == 4 + 2
    assert len(_lines(second[3].file)) == 1


def test_line_counter_reads_multi_member_gzip_and_refuses_a_cut_one():
    from cohortlab.fetch.http import RetryableError
    from cohortlab.fetch.mixpanel import _LineCounter

    body = gzip.compress(b'{"a":1}\n{"a":2}\n') + gzip.compress(b'{"a":3}')  # last line without newline
    c = _LineCounter(True)
    for i in range(0, len(body), 5):
        c.feed(body[i:i + 5])
    c.finish()
    assert c.lines == 3
    cut = _LineCounter(True)
    cut.feed(body[:-10])  # the second member is cut
    with pytest.raises(RetryableError, match="truncated gzip stream"):
        cut.finish()


def test_lab_fetch_is_the_same_call(fake, creds, policy, tmp_path):
    with Lab() as lab:
        s = lab.fetch(tmp_path, sources=["mixpanel"], cohorts=["1000"], credentials=creds, policy=policy,
                      progress=False)
        assert s.counts["members:Power Users"] == 3
        assert lab.engine.query_rows("SELECT count(*) FROM mp_cohort_members")[0][0] == 3


def test_an_hourly_budget_lets_the_last_hours_requests_decide_the_wait():
    from cohortlab.fetch.http import HourlyBudget

    b = HourlyBudget(3, "/api/query")
    for t in (0.0, 10.0, 20.0):
        assert b.delay(t) == 0.0
        b.record(t)
    assert b.delay(30.0) == 3570.0  # the 4th waits for the 1st to be an hour old
    b.record(3600.0)
    assert b.delay(3600.0) == 10.0  # then for the 2nd
    assert b.delay(3700.0) == 0.0  # the 2nd and 3rd are older than an hour by then: only one in the window
    b.record(3700.0)
    assert b.delay(3700.0) == 0.0 and b.delay(3600.0 + 1) == 0.0


def test_the_raw_export_is_asked_at_most_3_times_a_second(fake, creds, policy, tmp_path, capsys):
    # Mixpanel's raw export allows 3 queries a second besides 60 an hour. Twelve one-day chunks
    # answered at once (the policy's clock moves only by its waits): every 4th request waits for
    # the second to pass (and a tenth more), silently (12 were sent in 0.55 s, and the 429 they caused was waited out
    # as another client's use of the hour: minutes; found by an independent check of fetch)
    mp = _mp(creds, policy)
    chunks = mp.export_events(tmp_path, "2026-01-01", "2026-01-12", chunk_days=1)
    assert len(chunks) == 12 and fake.count("export") == 12
    assert policy.waits == pytest.approx([1.1, 1.1, 1.1])  # a second and a tenth to spare for the network
    starts = list(mp.export_budget._starts)
    assert all(b - a >= 1.1 - 1e-9 for a, b in zip(starts, starts[3:]))
    assert capsys.readouterr().err == ""
    from cohortlab.fetch.http import HourlyBudget

    b = HourlyBudget(60, "/api/query")  # the Query API: no limit per second
    for _ in range(5):
        assert b.pace(0.0) == 0.0
        b.record(0.0)


def test_engage_waits_within_mixpanels_hourly_limit_and_says_how_long_first(fake, creds, tmp_path):
    # 60 queries an hour (Mixpanel's documented limit for the Query API): a listing of more pages
    # waits instead of running into HTTP 429 and failing after its retries; page 0 says how long
    # the whole listing will take when Engage's total gives its size
    from cohortlab.fetch.http import RetryPolicy

    clock, waits = [0.0], []

    def sleep(seconds: float) -> None:  # a clock that moves only when the client waits
        waits.append(seconds)
        clock[0] += seconds

    mp = _mp(creds, RetryPolicy(retries=3, sleep=sleep, jitter=False))
    mp.query_budget.per_hour = 2  # the fake has 5 profiles in pages of 2: 3 pages + the cohorts list
    mp.query_budget.clock = lambda: clock[0]
    fake.total_is_listing = True
    said: list[str] = []
    mp.http.notify = said.append
    try:
        mp.cohorts(tmp_path)  # query 1 at 0 s
        listing, _ = mp.profiles(tmp_path)  # page 0 at 0 s, page 1 at 3600 s, page 2 at 3600 s
    finally:
        mp.close()
    assert listing.page_results == [2, 2, 1]
    assert waits == [3600.0]
    assert said == [
        "mixpanel: Engage lists 5 profiles in 3 pages; at 2 queries an hour (Mixpanel's limit) this takes about "
        "1 h 30 min. For a project this size a Data Pipelines export is faster (docs/fetching.md#mixpanel-data-pipelines)",
        "mixpanel: 2 requests to /api/query in the last hour, the most Mixpanel allows: waiting 1 h 00 min before the next"]
    assert fake.count("engage") == 3 and fake.count("cohorts") == 1  # each asked once: nothing ran into a 429


def test_raw_export_chunks_wait_within_the_hourly_limit_too(fake, creds, tmp_path):
    from cohortlab.fetch.http import RetryPolicy

    clock, waits = [100.0], []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    mp = _mp(creds, RetryPolicy(retries=3, sleep=sleep, jitter=False))
    mp.export_budget.per_hour = 2
    mp.export_budget.clock = lambda: clock[0]
    mp.http.notify = lambda line: None
    try:  # three 1-day chunks: the third waits for the first to be an hour old
        chunks = mp.export_events(tmp_path, "2026-01-01", "2026-01-03", chunk_days=1)
    finally:
        mp.close()
    assert [c.events for c in chunks] == [2, 2, 1]
    assert waits == [3600.0]


def _run_of_cohorts_lists(creds, folder, times: int) -> list[float]:
    """A run (a new client remembering its budgets in ``folder``, 2 queries an hour) asking for
    the cohorts list ``times`` times; the waits it made."""
    from cohortlab.fetch.http import no_sleep_policy

    policy = no_sleep_policy()
    mp = _mp(creds, policy)
    mp.query_budget.per_hour = 2
    mp.http.notify = lambda line: None
    mp.remember_budgets(folder)
    try:
        for _ in range(times):
            mp.cohorts(folder)
    finally:
        mp.close()
    return policy.waits


def test_a_run_started_within_the_hour_of_another_counts_its_requests(fake, creds, tmp_path):
    # the limit is Mixpanel's, per hour, not per run: a second run right after a first one that
    # used the hour's queries waits for them (their times are kept in the folder's .fetch/)
    assert _run_of_cohorts_lists(creds, tmp_path, 2) == []
    assert len(json.loads((tmp_path / "mixpanel_query_requests.json").read_text())) == 2
    waits = _run_of_cohorts_lists(creds, tmp_path, 1)
    assert len(waits) == 1 and 3500 < waits[0] <= 3600

    # times older than an hour, and a file that is not a list of times, are no reason to wait
    (tmp_path / "mixpanel_query_requests.json").write_text(json.dumps([1.0, 2.0]))
    (tmp_path / "mixpanel_export_requests.json").write_text("{not json")
    assert _run_of_cohorts_lists(creds, tmp_path, 2) == []


def test_fetch_keeps_the_hours_request_times_in_its_folder(fake, creds, policy, tmp_path):
    fetch(tmp_path, sources=["mixpanel"], profiles=True, credentials=creds, policy=policy, progress=False)
    times = json.loads((tmp_path / ".fetch" / "mixpanel_query_requests.json").read_text())
    assert len(times) == 1 + 3  # the cohorts list, 5 profiles in pages of 2
    assert times == sorted(times) and abs(times[-1] - __import__("time").time()) < 60


def test_a_proxy_page_or_an_empty_body_with_status_200_is_retried_on_every_json_endpoint(fake, creds, policy,
                                                                                         tmp_path):
    # only the raw export retried such an answer; Engage and the cohorts list
    # stopped the run at once ("unexpected Engage answer", "not JSON"), with no word of what came
    fake.faults["cohorts"] = ["proxy_page"]
    fake.faults["engage"] = ["empty_200", "proxy_page"]
    mp = _mp(creds, policy)
    assert [c["name"] for c in mp.cohorts(tmp_path)] == [c["name"] for c in fake.cohorts]
    mp.profiles(tmp_path)
    assert fake.count("engage") == 2 + len(list((tmp_path / "mixpanel" / "profiles").iterdir()))
    assert dict(mp.http.stats.retries) == {"bad_body": 3}
    # a page that stays a proxy page is one error naming the endpoint and what came, after the retries
    fake.faults["cohorts"] = ["proxy_page"] * 10
    with pytest.raises(FetchError, match=r"^mixpanel: giving up after \d+ attempts: HTTP 200 on "
                                         r"/api/query/cohorts/list with a body that is not JSON: <!DOCTYPE html> "):
        mp.cohorts(tmp_path)
