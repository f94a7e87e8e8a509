"""A run that cannot fetch everything: a cohort deleted between the cohorts list and its members
request is skipped and the run goes on, incomplete (audit 121, Q18)."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from cohortlab.cli import main
from cohortlab.fetch import fetch
from cohortlab.fetch.http import HttpStatusError
from tests.fetch import fake_services as fs


def _run(args, env, command="fetch"):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("MIXPANEL_", "MPARTICLE_", "COHORTLAB_"))}
    full.update(env)
    return CliRunner().invoke(main, [command, *args], env=full, catch_exceptions=False)


# --------------------------------------------------------------------------- Q18: a cohort deleted meanwhile
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
    r = _run(["--out", str(tmp_path / "again"), "--cohort", "1001", "--retries", "0"], env)
    assert r.exit_code == 1
    assert r.stderr == "error: no cohort '1001' in the project's cohorts list (by id or name)\n"
