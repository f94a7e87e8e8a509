"""mParticle side of ``cohortlab fetch``: the Profile API per MPID the Mixpanel side refers to,
concurrent and paced, 429/5xx retried, token refreshed once on 401, resumable, exact int64 MPIDs,
then loaded into the mpa_* tables (attributes and audiences are the snapshot)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cohortlab import Lab
from cohortlab.fetch import AuthError, FetchError, fetch
from cohortlab.fetch.mparticle import MParticleClient, fetched_mpids, read_missing
from tests.fetch import fake_services as fs
from tests.fetch.conftest import BIG, FALLBACK, GONE, NEG


def _client(creds, policy, rate=None) -> MParticleClient:
    return MParticleClient(creds.mparticle, policy=policy, rate=rate)


def test_fetch_the_referenced_mpids_and_load_them(fake, creds, policy, tmp_path):
    with Lab() as lab:
        s = fetch(tmp_path, lab=lab, from_date="2026-01-01", to_date="2026-01-03", credentials=creds,
                  policy=policy, progress=False)
        q = lab.engine.query_rows
        # $mparticle_user_id of profiles/events and the distinct_id that is an MPID; "undefined" is not
        assert sorted(r[0] for r in q("SELECT mpid FROM mpa_profiles")) == sorted([NEG, BIG, FALLBACK])
        assert q("SELECT value FROM mpa_identities WHERE mpid = ?", [BIG]) == [("cust-2",)]
        assert q("SELECT name, value_bool FROM mpa_attributes WHERE mpid = ?", [NEG]) == [("Power Users", True)]
        assert q("SELECT audience_id FROM mpa_audiences WHERE mpid = ?", [FALLBACK]) == [(17802,)]
    assert s.counts["mparticle_profiles"] == 3 and s.counts["mparticle_missing"] == 1
    asked = sorted(int(p["path"].rsplit("/", 1)[1]) for e, _, p in fake.log if e == "profile")
    assert asked == sorted([NEG, BIG, FALLBACK, GONE])
    assert all(p["fields"] == "device_identities,user_identities,user_attributes,audience_memberships,attribution"
               for e, _, p in fake.log if e == "profile")
    assert read_missing(tmp_path / ".fetch" / "mparticle_missing.json") == {GONE}
    text = str(s)
    assert "mparticle profiles: 4 MPIDs referenced, 3 fetched, 1 not found (404), 0 already fetched" in text
    # the summary ends with what was loaded: the Mixpanel folder, then the new profile parts
    assert "mixpanel-events         1 file(s)            5 rows" in text
    assert text.endswith("mparticle-profiles: 1 file(s) loaded\n  rows read                3\n  loaded                   3\n"
                         "  deduplicated             0\n  quarantined              0")


def test_with_a_lab_and_load_false_the_mpids_must_be_given_and_nothing_is_loaded(fake, creds, policy, tmp_path):
    """load=False: the lab holds none of the fetched Mixpanel side, so it cannot name the MPIDs
    (an error before any mParticle request); given MPIDs are fetched and left in the folder."""
    with Lab() as lab:
        with pytest.raises(FetchError, match="with load=False give the MPIDs"):
            fetch(tmp_path / "a", lab=lab, load=False, credentials=creds, policy=policy, progress=False)
        assert not [e for e, _, _ in fake.log if e == "profile"]
        s = fetch(tmp_path / "b", lab=lab, load=False, sources=["mparticle"], mpids=[NEG, BIG], credentials=creds,
                  policy=policy, progress=False)
        assert s.counts["mparticle_profiles"] == 2 and not s.loads
        assert lab.engine.query_rows("SELECT count(*) FROM mpa_profiles") == [(0,)]
    assert fetched_mpids(tmp_path / "b" / "mparticle" / "profiles") == {NEG, BIG}


def test_mpids_read_from_the_fetched_files_without_a_database(fake, creds, policy, tmp_path):
    fetch(tmp_path, sources=["mixpanel"], credentials=creds, policy=policy, progress=False)
    s = fetch(tmp_path, sources=["mparticle"], credentials=creds, policy=policy, progress=False)
    assert s.counts["mparticle_profiles"] == 3
    assert fetched_mpids(tmp_path / "mparticle" / "profiles") == {NEG, BIG, FALLBACK}
    # the part file holds the MPIDs as exact JSON integers
    text = "".join(p.read_text() for p in (tmp_path / "mparticle" / "profiles").glob("*.jsonl"))
    assert f'"mpid": {BIG}' in text and f'"mpid": {NEG}' in text


def test_mpids_read_from_the_fetched_files_are_loaded_into_a_database_file_not_memory(fake, creds, policy, tmp_path,
                                                                                     monkeypatch):
    # an in-memory database held the whole Mixpanel export to read the MPIDs (484 MB
    # peak for a 193 MB folder, 919 MB for 509 MB); a temporary file in .fetch/tmp holds its
    # tables on disk (390 and 669 MB), and it is removed once they are read
    import cohortlab.fetch.mparticle as mparticle

    fetch(tmp_path, sources=["mixpanel"], credentials=creds, policy=policy, progress=False)
    seen: list[str] = []
    real = mparticle.referenced_mpids

    def spy(engine):
        seen.extend(r[0] for r in engine.query_rows("SELECT path FROM duckdb_databases() WHERE NOT internal"))
        return real(engine)

    monkeypatch.setattr(mparticle, "referenced_mpids", spy)
    s = fetch(tmp_path, sources=["mparticle"], credentials=creds, policy=policy, progress=False)
    assert s.counts["mparticle_profiles"] == 3
    assert len(seen) == 1 and seen[0] and (tmp_path / ".fetch" / "tmp") in Path(seen[0]).parents
    assert not any((tmp_path / ".fetch" / "tmp").iterdir())


def test_second_run_fetches_only_what_is_missing(fake, creds, policy, tmp_path):
    mpa = _client(creds, policy)
    first = mpa.fetch_profiles(tmp_path, [NEG, BIG], progress=False)
    assert (first.fetched, first.skipped) == (2, 0)
    second = mpa.fetch_profiles(tmp_path, [NEG, BIG, FALLBACK, GONE], progress=False)
    assert (second.fetched, second.missing, second.skipped) == (1, 1, 2)
    third = mpa.fetch_profiles(tmp_path, [NEG, BIG, FALLBACK, GONE], progress=False)
    assert (third.fetched, third.skipped) == (0, 4)
    assert fake.count("profile") == 4  # each MPID asked exactly once
    again = mpa.fetch_profiles(tmp_path, [GONE], retry_missing=True, progress=False)
    assert (again.missing, fake.count("profile")) == (1, 5)


def test_the_summary_tells_mpids_found_missing_earlier_from_those_already_fetched(fake, creds, policy, tmp_path):
    # a run with a wrong workspace id (every MPID 404) then a run with the right one
    # said "0 fetched, 0 not found (404), 3 already fetched" and fetched nothing: none had been
    # (one MPID it knows: a run whose every MPID answers 404 is now an error, a URL likely wrong)
    known = dict(fake.mpa_profiles)
    fake.mpa_profiles.clear()
    fake.mpa_profiles[55] = {"mpid": 55}
    first = fetch(tmp_path, sources=["mparticle"], mpids=[NEG, BIG, FALLBACK, 55], credentials=creds, policy=policy,
                  progress=False)
    assert "1 fetched, 3 not found (404), 0 already fetched" in str(first)
    fake.mpa_profiles.update(known)  # the right workspace now
    s = fetch(tmp_path, sources=["mparticle"], mpids=[NEG, BIG, FALLBACK, 7], credentials=creds, policy=policy,
              progress=False)
    assert ("mparticle profiles: 4 MPIDs referenced, 0 fetched, 1 not found (404), 0 already fetched, "
            "3 not found by an earlier run, not asked again (--retry-missing asks)") in str(s)
    assert (s.counts["mparticle_missing"], s.counts["mparticle_known_missing"]) == (1, 3)
    s = fetch(tmp_path, sources=["mparticle"], mpids=[NEG, BIG, FALLBACK], retry_missing=True, credentials=creds,
              policy=policy, progress=False)
    assert "3 MPIDs referenced, 3 fetched, 0 not found (404), 0 already fetched" in str(s)
    assert "earlier run" not in str(s)


def test_the_missing_list_is_the_workspaces_whose_answers_made_it(fake, env, creds, policy, tmp_path):
    # the MPIDs one workspace answered 404 for were skipped by a run into the same
    # folder with another workspace's credentials, although that workspace knows them
    from cohortlab.fetch.credentials import load_credentials

    fake.other_workspaces = {"11/22/44": {GONE: {"mpid": GONE}}}
    first = fetch(tmp_path, sources=["mparticle"], mpids=[GONE], credentials=creds, policy=policy, progress=False)
    assert first.counts["mparticle_missing"] == 1
    other = load_credentials(env={**env, "MPARTICLE_WORKSPACE_ID": "44"})
    s = fetch(tmp_path, sources=["mparticle"], mpids=[GONE, 777], credentials=other, policy=policy, progress=False)
    assert (s.counts["mparticle_profiles"], s.counts["mparticle_missing"], s.counts["mparticle_known_missing"]) == (
        1, 1, 0)
    lists = json.loads((tmp_path / ".fetch" / "mparticle_missing.json").read_text())["lists"]
    assert [(x["workspace"]["workspace_id"], x["missing"]) for x in lists] == [("33", [GONE]), ("44", [777])]
    assert set(lists[0]["workspace"]) == {"api_url", "org_id", "account_id", "workspace_id"}  # no credential
    assert fs.MPA_SECRET not in json.dumps(lists) and fs.MPA_CLIENT not in json.dumps(lists)


def test_a_folder_holding_another_workspaces_profiles_is_refused_before_any_request(fake, env, creds, policy,
                                                                                   tmp_path):
    # the MPIDs in its part files were skipped as fetched, and the folder loaded as one workspace
    # holding both workspaces' profiles
    from cohortlab.fetch.credentials import load_credentials

    fake.other_workspaces = {"11/22/44": {NEG: {"mpid": NEG}, GONE: {"mpid": GONE}}}
    fetch(tmp_path, sources=["mparticle"], mpids=[NEG], credentials=creds, policy=policy, progress=False)
    item = json.loads((tmp_path / "fetch.json").read_text())["runs"][-1]["items"][0]
    assert item["workspace"] == {"api_url": fake.base, "org_id": "11", "account_id": "22", "workspace_id": "33"}
    other = load_credentials(env={**env, "MPARTICLE_WORKSPACE_ID": "44"})
    before = len(fake.log)
    with pytest.raises(FetchError, match=r"^mparticle: .*profiles holds 1 part file\(s\) fetched from workspace "
                                         r"11/22/33 at http.*; this run's credentials name workspace 11/22/44 at "):
        fetch(tmp_path, from_date="2026-01-01", to_date="2026-01-03", mpids=None, credentials=other, policy=policy,
              progress=False)
    assert len(fake.log) == before  # not even the Mixpanel side: it may take hours
    # the same workspace goes on; and once the other workspace's parts are removed, so does this one
    s = fetch(tmp_path, sources=["mparticle"], mpids=[NEG, BIG], credentials=creds, policy=policy, progress=False)
    assert s.counts["mparticle_profiles"] == 1
    for p in (tmp_path / "mparticle" / "profiles").iterdir():
        p.unlink()
    s = fetch(tmp_path, sources=["mparticle"], mpids=[NEG, GONE], credentials=other, policy=policy, progress=False)
    assert s.counts["mparticle_profiles"] == 2
    with Lab() as lab:  # the record with its workspace still dates the parts
        lab.load("mparticle-profiles", [str(p) for p in (tmp_path / "mparticle" / "profiles").iterdir()])
        assert lab.engine.query_rows("SELECT count(*) FROM mpa_profiles")[0][0] == 2


def test_a_missing_list_of_an_earlier_version_is_asked_again_once(fake, creds, policy, tmp_path):
    # a bare list names no workspace: which one answered those 404s is not known
    (tmp_path / ".fetch").mkdir()
    (tmp_path / ".fetch" / "mparticle_missing.json").write_text(f"[{GONE}]\n")
    s = fetch(tmp_path, sources=["mparticle"], mpids=[GONE, NEG], credentials=creds, policy=policy, progress=False)
    assert (s.counts["mparticle_profiles"], s.counts["mparticle_missing"]) == (1, 1)
    assert ("1 of those asked had been found missing by an earlier version, which did not record the "
            "workspace: asked again") in str(s)
    s = fetch(tmp_path, sources=["mparticle"], mpids=[GONE, NEG], credentials=creds, policy=policy, progress=False)
    assert s.counts["mparticle_known_missing"] == 1 and "earlier version" not in str(s)
    assert fake.count("profile") == 2


def test_an_interrupted_run_resumes(fake, creds, policy, tmp_path):
    fake.profile_faults[BIG] = [("status", 500)] * 10  # this one keeps failing
    mpa = _client(creds, policy)
    with pytest.raises(FetchError, match=r"giving up after 4 attempts: HTTP 500 on /userprofile/v1/11/22/33/"):
        mpa.fetch_profiles(tmp_path, [NEG, BIG, FALLBACK], concurrency=1, progress=False)
    # what was fetched before the failure (in MPID order: NEG, FALLBACK, then BIG) is on disk
    assert fetched_mpids(tmp_path / "mparticle" / "profiles") == {NEG, FALLBACK}
    fake.profile_faults.clear()
    res = mpa.fetch_profiles(tmp_path, [NEG, BIG, FALLBACK], concurrency=1, progress=False)
    assert (res.fetched, res.skipped) == (1, 2)
    assert fetched_mpids(tmp_path / "mparticle" / "profiles") == {NEG, BIG, FALLBACK}
    assert not any((tmp_path / ".fetch" / "tmp").iterdir())


def test_rate_limit_and_server_errors_are_retried(fake, creds, policy, tmp_path):
    fake.faults["profile"] = [("status", 429, 3), ("status", 503)]
    mpa = _client(creds, policy)
    res = mpa.fetch_profiles(tmp_path, [NEG], progress=False)
    assert res.fetched == 1
    assert dict(mpa.http.stats.retries) == {"429": 1, "503": 1}
    assert policy.waits[0] == 3.0


@pytest.mark.parametrize("status", [429, 503])
def test_a_429_or_a_retry_after_pauses_every_thread_not_only_the_one_it_answered(fake, creds, tmp_path, status):
    # with --concurrency 4, a 429 made one thread wait while the three others kept
    # sending requests, which the server refused too (each a 429 and a retry used up); a 503 with
    # Retry-After (a service down for maintenance, back in a second) paused only its own thread
    from cohortlab.fetch.http import RetryPolicy

    fake.mpa_profiles.update({m: {"mpid": m} for m in range(3000, 3040)})
    fake.profile_delay = 0.05
    fake.faults["profile"] = [("status", status, 2)]
    mpa = MParticleClient(creds.mparticle, policy=RetryPolicy(retries=2, jitter=False), rate=None)
    res = mpa.fetch_profiles(tmp_path, range(3000, 3040), concurrency=4, progress=False)
    assert res.fetched == 40 and dict(mpa.http.stats.retries) == {str(status): 1}
    answered = next(done for _, done, f in fake.profile_times if f == ("status", status, 2))
    # the requests already in flight end (0.4 s for one sent just before the answer came: on a
    # busy machine, a thread can wait that long for a core); no request arrives in the rest of
    # the 2 s the server asked for
    during = [t - answered for t, _, _ in fake.profile_times if answered + 0.4 < t < answered + 1.8]
    assert during == [], during
    assert sum(1 for t, _, _ in fake.profile_times if t >= answered + 1.8) >= 30
    mpa.close()


def test_a_5xx_without_retry_after_waits_only_in_its_own_thread(fake, creds, tmp_path):
    # one request's failure, not the host's word: the other threads go on meanwhile
    from cohortlab.fetch.http import RetryPolicy

    fake.mpa_profiles.update({m: {"mpid": m} for m in range(3000, 3040)})
    fake.profile_delay = 0.05
    fake.faults["profile"] = [("status", 503)]
    mpa = MParticleClient(creds.mparticle, policy=RetryPolicy(retries=2, backoff=1.0, jitter=False), rate=None)
    res = mpa.fetch_profiles(tmp_path, range(3000, 3040), concurrency=4, progress=False)
    assert res.fetched == 40 and dict(mpa.http.stats.retries) == {"503": 1}
    answered = next(done for _, done, f in fake.profile_times if f == ("status", 503))
    during = [t for t, _, _ in fake.profile_times if answered + 0.1 < t < answered + 0.9]
    assert len(during) >= 10, during
    mpa.close()


def test_expired_token_is_renewed_once(fake, creds, policy, tmp_path):
    fake.faults["profile"] = ["expire_token"]
    mpa = _client(creds, policy)
    res = mpa.fetch_profiles(tmp_path, [NEG, BIG], concurrency=1, progress=False)
    assert res.fetched == 2
    assert fake.count("token") == 2
    assert [p for e, _, p in fake.log if e == "token"][0] == {
        "client_id": "mpa-client", "audience": "https://api.mparticle.com", "grant_type": "client_credentials"}


def test_a_token_is_renewed_before_it_expires_by_its_expires_in(fake, creds, policy, tmp_path):
    """mParticle's tokens expire after 8 hours (the answer's expires_in); what an expired one
    answers is not documented, so a long run does not wait for it: the token is renewed five
    minutes before (half-way for a short one), and no request is refused for it."""
    fake.token_expires_in = 0.4  # renewed after 0.2 s
    fake.mpa_profiles.update({m: {"mpid": m} for m in range(2000, 2006)})
    fake.profile_delay = 0.1
    mpa = _client(creds, policy)
    res = mpa.fetch_profiles(tmp_path, range(2000, 2006), concurrency=1, progress=False)
    assert res.fetched == 6 and dict(mpa.http.stats.retries) == {}
    assert fake.count("token") >= 3  # the first and at least two renewals, none after a refusal
    fake.token_expires_in, before = "soon", fake.count("token")  # no number: renewed only when refused
    mpa = _client(creds, policy)
    assert mpa.fetch_profiles(tmp_path / "b", range(2000, 2006), concurrency=1, progress=False).fetched == 6
    assert fake.count("token") == before + 1


def test_retry_after_spelled_as_mparticles_limits_page_writes_it_is_honoured(fake, creds, policy, tmp_path):
    fake.faults["profile"] = [("status", 429, 4, "RetryAfter")]
    mpa = _client(creds, policy)
    assert mpa.fetch_profiles(tmp_path, [NEG], progress=False).fetched == 1
    assert policy.waits[0] == 4.0


def test_threads_hitting_an_expired_token_renew_it_once(fake, creds, policy, tmp_path):
    fake.mpa_profiles.update({m: {"mpid": m} for m in range(2000, 2009)})
    fake.profile_delay = 0.05
    fake.faults["profile"] = ["expire_token"]
    mpa = _client(creds, policy)
    res = mpa.fetch_profiles(tmp_path, range(2000, 2009), concurrency=3, progress=False)
    assert res.fetched == 9
    assert fake.count("token") == 2  # the first token, and one renewal


def test_bad_client_credentials_one_clear_error(fake, creds, policy, tmp_path):
    from cohortlab.fetch.credentials import Secret

    creds.mparticle.client_secret = Secret("wrong-secret-value")
    mpa = _client(creds, policy)
    with pytest.raises(AuthError) as e:
        mpa.fetch_profiles(tmp_path, [NEG], progress=False)
    msg = str(e.value)
    assert msg.startswith("mparticle: authentication failed (HTTP 401) on /oauth/token: invalid_client.")
    assert "\n" not in msg and "wrong-secret-value" not in msg
    assert fake.count("profile") == 0


def test_concurrency_is_bounded_and_pacing_applies(fake, creds, policy, tmp_path):
    fake.mpa_profiles.update({m: {"mpid": m, "user_attributes": {}} for m in range(1000, 1012)})
    fake.profile_delay = 0.05
    mpa = _client(creds, policy, rate=1000.0)
    res = mpa.fetch_profiles(tmp_path, range(1000, 1012), concurrency=3, part_size=5, progress=False)
    assert res.fetched == 12
    assert 1 < fake.max_inflight <= 3
    # parts are written as they fill (5, plus what finished meanwhile), the rest at the end
    sizes = [len(p.read_text().splitlines()) for p in res.files]
    assert len(sizes) >= 2 and all(n <= 5 + 3 for n in sizes)
    assert sum(len(p.read_text().splitlines()) for p in res.files) == 12


def test_pacer_spaces_request_starts():
    from cohortlab.fetch.http import RateLimiter

    now = [0.0]
    slept: list[float] = []
    lim = RateLimiter(4.0, clock=lambda: now[0], sleep=slept.append)
    for _ in range(5):
        lim.acquire()
    assert slept == [0.25, 0.5, 0.75, 1.0]


def test_a_rounded_mpid_in_the_answer_is_not_trusted(fake, creds, policy, tmp_path):
    fake.mpa_profiles[BIG] = {"mpid": 9080350317581165000, "user_attributes": {}}  # rounded upstream
    mpa = _client(creds, policy)
    res = mpa.fetch_profiles(tmp_path, [BIG], progress=False)
    assert res.mismatched == 1
    line = json.loads(res.files[0].read_text())
    assert line["mpid"] == BIG and line["mpid_returned"] == 9080350317581165000


EXACT = 9080350317581164544  # an int64 a double holds exactly: 9.080350317581165e18 equals it in value


def test_a_float_mpid_equal_in_value_is_kept_aside_and_the_line_loads(fake, creds, policy, tmp_path):
    # the float was written as the line's mpid (9.080350317581165e+18), the loader
    # quarantined the line (invalid_mpid) and every run fetched the MPID again
    fake.mpa_profiles[EXACT] = fs.Raw('{"mpid": 9.080350317581165e18, "user_attributes": {"score": 1.0e18}}')
    mpa = _client(creds, policy)
    res = mpa.fetch_profiles(tmp_path, [EXACT], progress=False)
    assert (res.fetched, res.mismatched) == (1, 1)
    text = res.files[0].read_text()
    assert text == f'{{"mpid": {EXACT}, "mpid_returned": 9.080350317581165e18, "user_attributes": {{"score": 1.0e18}}}}\n'
    assert fetched_mpids(tmp_path / "mparticle" / "profiles") == {EXACT}
    again = mpa.fetch_profiles(tmp_path, [EXACT], progress=False)
    assert (again.fetched, again.skipped) == (0, 1)  # not fetched again
    with Lab() as lab:
        lab.load("mparticle-profiles", [str(p) for p in res.files])
        assert lab.engine.query_rows("SELECT mpid FROM mpa_profiles") == [(EXACT,)]


def test_a_profile_with_a_lone_surrogate_does_not_stop_the_run(fake, creds, policy, tmp_path):
    # on the mParticle side: json.dumps then write_text raised UnicodeEncodeError
    fake.mpa_profiles[42] = fs.Raw('{"mpid": 42, "user_attributes": {"$FirstName": "Ann \\ud83d"}}')
    mpa = _client(creds, policy)
    res = mpa.fetch_profiles(tmp_path, [42, NEG], progress=False)
    assert res.fetched == 2
    lines = "".join(p.read_text() for p in res.files).splitlines()
    assert '{"mpid": 42, "user_attributes": {"$FirstName": "Ann \\ud83d"}}' in lines
    assert fetched_mpids(tmp_path / "mparticle" / "profiles") == {42, NEG}
    with Lab() as lab:
        r = lab.load("mparticle-profiles", [str(p) for p in res.files])
        # that line loads, the escape read as its text, as for the same answer by hand
        assert (dict(r.quarantined), len(r.warnings)) == ({}, 1)
        assert lab.engine.query_rows("SELECT mpid FROM mpa_profiles ORDER BY mpid") == sorted([(42,), (NEG,)])


def test_an_answer_with_a_byte_order_mark_is_fetched_and_one_not_in_utf8_is_one_clear_error(fake, creds, policy,
                                                                                             tmp_path):
    # json.loads took both (it skips a BOM, and reads UTF-16), then splicing the text
    # raised ValueError ("not a JSON object") or UnicodeDecodeError: a traceback from the CLI
    fake.profile_faults[NEG] = ["bom"]
    res = _client(creds, policy).fetch_profiles(tmp_path, [NEG, BIG], progress=False)
    assert res.fetched == 2
    lines = "".join(p.read_text(encoding="utf-8") for p in res.files).splitlines()
    assert any(line.startswith(f'{{"mpid": {NEG}, "created_timestamp_ms": ') for line in lines)
    with Lab() as lab:
        lab.load("mparticle-profiles", [str(p) for p in res.files])
        assert lab.engine.query_rows("SELECT mpid FROM mpa_profiles ORDER BY mpid") == [(NEG,), (BIG,)]
    fake.profile_faults[FALLBACK] = ["utf16"]
    with pytest.raises(FetchError, match=f"^mparticle: the profile of MPID {FALLBACK} is not JSON in UTF-8$"):
        _client(creds, policy).fetch_profiles(tmp_path, [FALLBACK], progress=False)


def test_a_string_mpid_equal_to_the_one_asked_is_written_as_the_integer(fake, creds, policy, tmp_path):
    fake.mpa_profiles[NEG] = {"mpid": str(NEG), "user_attributes": {}}
    res = _client(creds, policy).fetch_profiles(tmp_path, [NEG], progress=False)
    assert res.mismatched == 0
    assert res.files[0].read_text() == f'{{"mpid": {NEG}, "user_attributes": {{}}}}\n'


def test_an_error_stops_the_other_threads_retry_loops(fake, creds, tmp_path):
    # on an error or Ctrl-C the requests in flight ran their whole retry loop
    # (up to 6 x 60 s) before the run could end
    from cohortlab.fetch.http import no_sleep_policy

    fake.mpa_profiles.update({1: {"mpid": 1}, 2: {"mpid": 2}})
    fake.profile_faults[1] = [("status", 400)]  # not retried: the run fails at once
    fake.profile_faults[2] = [("status", 503)] * 100  # retried, slowly
    fake.profile_delay = 0.02
    mpa = _client(creds, no_sleep_policy(retries=50))
    with pytest.raises(FetchError, match="HTTP 400"):
        mpa.fetch_profiles(tmp_path, [1, 2], concurrency=2, progress=False)
    assert sum(1 for e, _, p in fake.log if e == "profile" and p["path"].endswith("/2")) < 10  # not 51


def test_cancel_ends_a_real_wait_between_retries_at_once(fake, creds, tmp_path):
    import threading
    import time

    from cohortlab.fetch.http import RetryPolicy

    fake.sticky["profile"] = ("status", 503, 30)  # Retry-After: 30 s
    mpa = _client(creds, RetryPolicy(retries=3))  # the real time.sleep
    mpa._auth.token = "tok-1"
    errors: list[Exception] = []

    def run():
        try:
            mpa.profile(NEG)
        except FetchError as e:
            errors.append(e)

    t0 = time.monotonic()
    th = threading.Thread(target=run)
    th.start()
    time.sleep(0.3)
    mpa.http.cancel()
    th.join(5)
    assert not th.is_alive() and time.monotonic() - t0 < 3
    assert [str(e) for e in errors] == ["mparticle: cancelled"]


def test_a_proxy_page_with_status_200_is_retried_not_the_end_of_the_run(fake, creds, policy, tmp_path):
    # one proxy page stopped a run of Profile API calls (18 hours for a million
    # MPIDs) with "the profile of MPID ... is not JSON in UTF-8"; it is retried like a 503
    fake.profile_faults[NEG] = ["proxy_page", "empty_200"]
    mpa = _client(creds, policy)
    res = mpa.fetch_profiles(tmp_path, [NEG, BIG], progress=False)
    assert res.fetched == 2 and dict(mpa.http.stats.retries) == {"bad_body": 2}
    assert fetched_mpids(tmp_path / "mparticle" / "profiles") == {NEG, BIG}


def test_a_token_answer_that_is_not_json_is_retried_and_one_without_a_token_names_its_keys(fake, creds, policy,
                                                                                            tmp_path):
    """A proxy's HTML page (status 200) from the token endpoint was not retried, and was told as
    "answered without an access_token" (an operator's review): it is retried as the other JSON
    endpoints' are; a JSON answer without a token names its keys (never its values)."""
    from cohortlab.fetch.http import FetchError
    from cohortlab.fetch.mparticle import MParticleClient

    fake.faults["token"] = ["proxy_page"]
    mpa = MParticleClient(creds.mparticle, policy=policy)
    assert mpa.authenticate() and fake.count("token") == 2 and mpa.http.stats.n_retries == 1
    fake.faults["token"] = [("json_200", {"error": "access_denied", "error_description": "secret-ish text"})]
    with pytest.raises(FetchError, match=r"^mparticle: the token endpoint answered without an access_token "
                                         r"\(its keys: error, error_description\)$"):
        MParticleClient(creds.mparticle, policy=policy).authenticate()
