"""A run that cannot fetch everything: a cohort deleted between the cohorts list and its members
request is skipped and the run goes on, incomplete; and ``--json`` prints one JSON
object on stdout whatever the outcome, with the error and what was fetched so far."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from cohortlab.cli import main
from cohortlab.fetch import fetch
from cohortlab.fetch.http import HttpStatusError
from tests.fetch import fake_services as fs
from tests.fetch.conftest import BIG, NEG


def _run(args, env, command="fetch"):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("MIXPANEL_", "MPARTICLE_", "COHORTLAB_"))}
    full.update(env)
    return CliRunner().invoke(main, [command, *args], env=full, catch_exceptions=False)


# --------------------------------------------------------------------------- a cohort deleted meanwhile
@pytest.mark.parametrize("status", [400, 404])
def test_a_cohort_deleted_after_the_list_is_skipped_and_the_run_goes_on(fake, creds, policy, tmp_path, capsys,
                                                                         status):
    # Churn Risk (1001) is deleted once the list is answered: its members listing is refused.
    # It stopped the whole run: Power Users' snapshot (after it) and the mParticle side never came
    fake.delete_after_list = {1001: status}
    s = fetch(tmp_path, all_cohorts=True, credentials=creds, policy=policy, progress=False)
    assert not s.complete
    assert [(k["kind"], k["cohort"], k["cohort_id"]) for k in s.skipped] == [("cohort-deleted", "Churn Risk", "1001")]
    assert s.counts["cohorts_skipped"] == 1 and s.counts["members:Power Users"] == 3
    assert s.counts["mparticle_profiles"] == 3  # the mParticle side ran
    line = ("members of 'Churn Risk' (id 1001): skipped, deleted during the run: the cohorts list, asked again, "
            f"no longer has it (the members listing answered HTTP {status} on /api/query/engage: "
            "cohort 1001 does not exist)")
    assert line in str(s)
    assert f"mixpanel: warning: {line}" in capsys.readouterr().err  # said at once, not hours later
    assert fake.count("cohorts") == 2  # the list, then once more to tell a deleted cohort from another refusal
    run = json.loads((tmp_path / "fetch.json").read_text())["runs"][-1]
    assert run["complete"] is False
    skipped = [i for i in run["items"] if i["kind"] == "mixpanel-members-skipped"]
    assert [(i["cohort"], i["cohort_id"]) for i in skipped] == [("Churn Risk", "1001")]
    assert [i["cohort"] for i in run["items"] if i["kind"] == "mixpanel-members"] == ["Power Users"]
    assert not list((tmp_path / "mixpanel" / "members").glob("Churn*"))  # no snapshot of it, not even empty


def test_a_deleted_cohort_found_by_all_cohorts_is_not_said_to_be_asked_for_by_cohort(fake, creds, policy, tmp_path):
    # with --all-cohorts a --cohort given too picks nothing (every cohort is listed): the next run
    # with the same options does not stop at the list, so there is nothing to drop
    fake.delete_after_list = {1001: 400}
    s = fetch(tmp_path, sources=["mixpanel"], all_cohorts=True, cohorts=["Churn Risk"], profiles=False,
              credentials=creds, policy=policy, progress=False)
    assert not s.complete and "skipped, deleted during the run" in str(s)
    assert "--cohort" not in str(s)


def test_a_refused_members_listing_of_a_cohort_still_listed_stops_the_run(fake, creds, policy, tmp_path):
    # a 400 for another reason (the cohort is still there) is an error, as before: never a skip
    fake.faults["engage"] = [("status", 400)]
    with pytest.raises(HttpStatusError, match="HTTP 400 on /api/query/engage: fault 400"):
        fetch(tmp_path, sources=["mixpanel"], cohorts=["Power Users"], profiles=False, credentials=creds,
              policy=policy, progress=False)
    assert fake.count("cohorts") == 2


def test_a_deleted_cohort_named_with_cohort_makes_the_command_fail_after_the_rest(fake, env, tmp_path):
    fake.cohorts[1]["name"] = "Churn\x1b[2J Risk"
    fake.delete_after_list = {1001: 400}
    out = tmp_path / "exports"
    r = _run(["--out", str(out), "--cohort", "1001", "--cohort", "Power Users", "--retries", "0"], env)
    assert r.exit_code == 1, r.output
    assert "members of 'Power Users' (id 1000): 3 as of" in r.stdout
    assert "members of 'Churn\\x1b[2J Risk' (id 1001): skipped, deleted during the run" in r.stdout
    assert "it was asked for by --cohort: drop it from the next run's options" in r.stdout
    assert "mparticle profiles: 4 MPIDs referenced, 3 fetched" in r.stdout
    assert "\x1b" not in r.stdout + r.stderr
    assert r.stderr.splitlines()[-1] == ("error: incomplete: 1 item(s) skipped (cohort-deleted: 'Churn\\x1b[2J Risk' "
                                         "(id 1001)); the rest was fetched")
    # the next run naming it stops at the cohorts list, before any other request (as a typo does)
    r = _run(["--out", str(tmp_path / "again"), "--cohort", "1001", "--retries", "0", "--json"], env)
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert (doc["ok"], doc["error"]) == (False, {"kind": "fetch", "message": "no cohort '1001' in the project's "
                                                 "cohorts list (by id or name)"})
    assert doc["counts"] == {"cohorts": 1}


# --------------------------------------------------------------------------- --json when the run fails
def test_json_of_a_run_that_fails_on_the_mparticle_side_says_what_was_fetched(fake, env, tmp_path):
    # a scheduled job parsing stdout got nothing: the error was only the stderr line
    fake.sticky["token"] = ("status", 401)
    r = _run(["--out", str(tmp_path / "o"), "--cohort", "Power Users", "--retries", "0", "--json"], env)
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["complete"] is False
    assert doc["error"]["kind"] == "auth"
    assert doc["error"]["message"].startswith("mparticle: authentication failed (HTTP 401) on /oauth/token")
    assert r.stderr == f"error: {doc['error']['message']}\n"  # the same line, for a human
    # the mParticle token is asked first: a wrong secret no longer waits for the Mixpanel side's
    # hours (an operator's review), so nothing was fetched, and the JSON says so
    assert doc["counts"] == {} and "mixpanel" not in doc["http"]
    assert [endpoint for endpoint, _, _ in fake.log] == ["token"]
    assert fs.MP_SECRET not in r.output and fs.MPA_SECRET not in r.output and "ann@example.com" not in r.output


def test_a_run_that_stops_counts_the_events_and_profiles_it_wrote_so_far(fake, creds, policy, tmp_path):
    """`counts` held the events and the mParticle profiles only once their step was over: a run
    stopped after a chunk (or a part) of them had written said nothing of them, although fetch.json
    recorded them (an operator's review)."""
    fake.faults["export"] = [None, ("status", 400)]  # the first day's chunk, then a refusal
    with pytest.raises(HttpStatusError) as e:
        fetch(tmp_path / "a", from_date="2026-01-01", to_date="2026-01-03", chunk_days=1, credentials=creds,
              policy=policy, progress=False)
    assert e.value.fetch_summary.counts == {"cohorts": 2, "events": 2}  # Jan 1: e1 and e2
    fake.profile_faults[BIG] = [("status", 400)]  # MPIDs are asked in order: NEG first, written in its part
    with pytest.raises(HttpStatusError) as e:
        fetch(tmp_path / "b", sources=["mparticle"], mpids=[NEG, BIG], part_size=1, concurrency=1,
              credentials=creds, policy=policy, progress=False)
    assert e.value.fetch_summary.counts == {"mparticle_profiles": 1}


def test_json_of_a_run_stopped_by_ctrl_c_says_what_was_fetched(fake, env, tmp_path, monkeypatch):
    from cohortlab.fetch.mixpanel import MixpanelClient

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(MixpanelClient, "members", interrupted)
    r = _run(["--out", str(tmp_path / "o"), "--cohort", "Power Users", "--retries", "0", "--json"], env)
    assert r.exit_code == 130
    doc = json.loads(r.stdout)
    assert doc["error"] == {"kind": "interrupted", "message": "interrupted: what was written is complete; run the "
                                                              "same command again to resume"}
    assert doc["counts"] == {"cohorts": 2, "profiles": 5} and doc["ok"] is False
    assert r.stderr == f"error: {doc['error']['message']}\n"


def test_json_of_a_run_refused_before_any_request(fake, env, tmp_path):
    r = _run(["--out", str(tmp_path / "o"), "--from", "2026-13-01", "--to", "2026-01-02", "--json"], env)
    assert r.exit_code == 1
    assert json.loads(r.stdout) == {"ok": False, "complete": False, "out": str(tmp_path / "o"), "counts": {},
                                    "http": {}, "skipped": [],
                                    "error": {"kind": "usage", "message": "--from 2026-13-01: not a valid day "
                                                                          "(month must be in 1..12)"}}
    assert r.stderr == "error: --from 2026-13-01: not a valid day (month must be in 1..12)\n"
    env = {**env, "MIXPANEL_SERVICE_ACCOUNT_SECRET": "not-the-right-secret-42"}
    r = _run(["--out", str(tmp_path / "o"), "--source", "mixpanel", "--retries", "0", "--json"], env)
    doc = json.loads(r.stdout)
    assert doc["error"]["kind"] == "auth" and "not-the-right-secret-42" not in r.output


def test_json_of_a_complete_run_says_ok(fake, env, tmp_path):
    r = _run(["--out", str(tmp_path / "o"), "--source", "mixpanel", "--no-profiles", "--json"], env)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert (doc["ok"], doc["complete"], doc["skipped"], doc["counts"]["cohorts"]) == (True, True, [], 2)
    assert "error" not in doc


def test_load_json_prints_the_error_as_json_too(tmp_path):
    bad = tmp_path / "cohorts.json"
    bad.write_text('{"not": "a list"')
    db = str(tmp_path / "lab.duckdb")
    r = _run(["--db", db, "mixpanel-cohorts", str(bad), "--json", "--no-progress"], {}, command="load")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["kind"] == "mixpanel-cohorts" and doc["loaded"] == 0
    assert doc["error"]["kind"] == "load" and r.stderr == f"error: {doc['error']['message']}\n"


@pytest.mark.parametrize("args, message", [
    (["--concurrency", "abc"], "Invalid value for '--concurrency': 'abc' is not a valid integer range."),
    (["--bogus"], "No such option '--bogus'. Did you mean '--out'?"),
])
def test_json_of_an_argument_click_refuses(tmp_path, args, message):
    # a usage error (exit 2) printed click's usage on stderr and nothing on stdout: a scheduled job
    # reading stdout got no JSON to parse
    r = _run(["--out", str(tmp_path / "o"), *args, "--json"], {})
    assert r.exit_code == 2
    assert json.loads(r.stdout) == {"ok": False, "complete": False, "out": str(tmp_path / "o"), "counts": {},
                                    "http": {}, "skipped": [], "error": {"kind": "usage", "message": message}}
    assert r.stderr.endswith(f"Error: {message}\n")
    r = _run(["--json"], {})  # --out missing: the object says so, out null
    assert r.exit_code == 2 and json.loads(r.stdout)["out"] is None
    assert json.loads(r.stdout)["error"]["message"] == "Missing option '--out'."
    r = _run(["--out", str(tmp_path / "o"), *args], {})  # without --json: stdout stays empty
    assert r.exit_code == 2 and r.stdout == ""


def test_load_json_of_an_argument_click_refuses(tmp_path):
    db = str(tmp_path / "lab.duckdb")
    r = _run(["--db", db, "mixpanel-cohorts", "x.json", "-o", "junk", "--json"], {}, command="load")
    assert r.exit_code == 2
    assert json.loads(r.stdout) == {"ok": False, "kind": "mixpanel-cohorts", "loaded": 0, "error": {
        "kind": "usage", "message": "Invalid value for '-o' / '--option': expected KEY=VALUE, got 'junk'"}}
    r = _run(["--db", db, "no-such-kind", "x.json", "--json"], {}, command="load")
    assert r.exit_code == 2 and json.loads(r.stdout)["kind"] is None
    assert json.loads(r.stdout)["error"]["message"].startswith("Invalid value for 'KIND': 'no-such-kind' is not one of")
    r = _run(["--db", db, "mixpanel-cohorts", "--", "--json"], {}, command="load")  # a path named --json
    assert r.stdout == ""
