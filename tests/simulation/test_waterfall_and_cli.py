"""docs/rules.md#waterfall waterfall rows, the gap summary, and the `cohortlab simulate` command."""

import pandas as pd
import pytest
from click.testing import CliRunner

from cohortlab import Lab
from cohortlab.cli import main
from cohortlab.simulation.waterfall import ReconciliationError, build_waterfall, check_waterfall

from .conftest import Data

C = "Power Users"


@pytest.fixture
def world(data):
    """Members at 2026-03-02: m1, m2 (duplicates of MPID 1), m3 (MPID 3, joined at 00:00 - the
    run at 00:00 sees it), bad (junk property, recoverable by email), cid (customer id)."""
    data.mpa(1).mpa(2).mpa(3).mpa(4, email="bad@example.com").mpa(5, customer_id="cid")
    data.profile("m1", mparticle_user_id="1")
    data.profile("m2", mparticle_user_id="1")
    data.profile("m3", mparticle_user_id="3")
    data.profile("gone", mparticle_user_id="2")
    data.profile("bad", mparticle_user_id="undefined", email="bad@example.com")
    data.snapshot(C, "2026-03-01T00:00", ["m1", "gone", "bad", "cid"])
    data.snapshot(C, "2026-03-02T00:00", ["m1", "m2", "m3", "bad", "cid"])
    return data


def test_waterfall_rows_in_order(world):
    # one-time export at t0: 'gone' stays true (stale), m3 never gets true (not yet)
    r = world.lab.simulate(C, settings={"sync_type": "one_time"})
    assert [tuple(x) for x in r.waterfall[["step", "kind", "count"]].itertuples(index=False)] == [
        ("members", "total", 5),
        ("unmatched:malformed_mparticle_user_id", "minus", 1),
        ("unmatched:distinct_id_not_mpid", "minus", 1),
        ("shared_mpid", "minus", 1),
        ("should_be_true", "total", 2),
        ("not_yet_true", "minus", 1),
        ("stale_true", "plus", 1),
        ("orphans_true", "plus", 0),
        ("audience", "total", 2),
    ]
    assert list(r.waterfall.columns) == ["step", "label", "kind", "count"]
    # m1 and m2 share MPID 1: the step counts 1 (matched members minus distinct MPIDs), and its label
    # says so; "members sharing an MPID with another member" are 2 (the label named
    # twice the count, while the identity-gaps page counts the 2 profiles on the shared MPID)
    label = r.waterfall.set_index("step").loc["shared_mpid", "label"]
    assert label == "matched members beyond the first on each MPID (several Mixpanel profiles, one person)"


def test_gap_summary_by_reason_recoverable_via_and_identifier_source(world):
    g = world.lab.gap_summary(C)
    by_gap = g[g.breakdown == "gap_reason"][["gap_reason", "recoverable_via", "members"]]
    assert sorted(map(tuple, by_gap.values.tolist())) == [
        ("distinct_id_not_mpid", "customer_id", 1),
        ("malformed_mparticle_user_id", "email", 1),
    ]
    by_src = g[g.breakdown == "identifier_source"].set_index(["identifier_source", "status"]).members.to_dict()
    assert by_src == {("mparticle_user_id", "matched"): 3, ("mparticle_user_id", "unmatched"): 1, ("distinct_id", "unmatched"): 1}
    assert g.share.max() == pytest.approx(3 / 5)


def test_check_waterfall_refuses_steps_that_do_not_add_up():
    counts = {"members": 3, "matched": 3, "gaps": {}, "should_be_true": 3, "true_linked": 3, "orphans_true": 0,
              "true_and_should": 3}
    df = build_waterfall(counts)
    check_waterfall(df)
    bad = df.copy()
    bad.loc[bad.step == "audience", "count"] = 4
    with pytest.raises(ReconciliationError, match="does not add up at audience"):
        check_waterfall(bad)
    with pytest.raises(ReconciliationError, match="unexpected gap_reason"):
        build_waterfall({**counts, "gaps": {"whatever": 1}})


# --------------------------------------------------------------------------- CLI
@pytest.fixture
def db(tmp_path):
    path = tmp_path / "lab.duckdb"
    with Lab(path) as lab:
        d = Data(lab)
        d.mpa(1).mpa(2, email="ann@example.com")
        d.profile("a", mparticle_user_id="1")
        d.profile("b", mparticle_user_id="undefined", email="ann@example.com")
        d.snapshot(C, "2026-03-01T00:00", ["a", "b"])
    return str(path)


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_simulate_prints_the_waterfall_and_writes_members_without_personal_data(db, tmp_path):
    out = tmp_path / "members.csv"
    res = run("simulate", "--db", db, "--cohort", C, "--members-out", str(out))
    assert res.exit_code == 0, res.output
    assert "discrepancy waterfall" in res.output
    assert "unmatched:malformed_mparticle_user_id" in res.output
    assert "timeline: 1 run at" in res.output
    assert "ann@example.com" not in res.output
    members = pd.read_csv(out)
    assert members.distinct_id.tolist() == ["a", "b"]
    assert "email" not in members.columns
    assert members.recoverable_via.tolist()[1] == "email"


def test_simulate_shows_personal_data_only_when_asked(db, tmp_path):
    out = tmp_path / "members.parquet"
    res = run("simulate", "--db", db, "--cohort", C, "--members-out", str(out), "--show-personal-data")
    assert res.exit_code == 0, res.output
    assert pd.read_parquet(out).email.fillna("-").tolist() == ["-", "ann@example.com"]


def test_simulate_with_a_settings_file_and_debug(db, tmp_path):
    s = tmp_path / "s.yaml"
    s.write_text("attribute_template: 'Mixpanel - {cohort_name}'\nsync_type: one_time\n")
    res = run("simulate", "--db", db, "--cohort", C, "--settings", str(s), "--debug")
    assert res.exit_code == 0, res.output
    assert "attribute: 'Mixpanel - Power Users'" in res.output
    assert "resolved.resolved" in res.output


def test_simulate_prints_every_setting_a_file_changes(db, tmp_path):
    """The cutoff, the EIT timeline and the re-exports are printed, as the defaults are: a file
    that turns the event rule off is not shown as the defaults."""
    default = run("simulate", "--db", db, "--cohort", C)
    assert default.exit_code == 0, default.output
    assert ("event_identity_cutoff=2026-01-15T00:00:00Z eit_timeline=customer_id reexport_at=none"
            in default.output)
    s = tmp_path / "s.yaml"
    s.write_text("event_identity_cutoff: null\n"
                 "eit_timeline: [{eit: customer_id}, {since: '2026-02-01', eit: mparticle_id}]\n"
                 "reexport_at: ['2026-02-10', '2026-02-11', '2026-02-12', '2026-02-13']\n")
    res = run("simulate", "--db", db, "--cohort", C, "--settings", str(s))
    assert res.exit_code == 0, res.output
    assert ("event_identity_cutoff=none (rule off) "
            "eit_timeline=customer_id,mparticle_id@2026-02-01T00:00:00Z "
            "reexport_at=2026-02-10T00:00:00Z,2026-02-11T00:00:00Z,2026-02-12T00:00:00Z,+1 more") in res.output


def test_simulate_says_which_settings_are_dated_after_the_as_of_time(db, tmp_path):
    """docs/settings.md's example (pauses from 2026-03-02, a re-export on 2026-03-20) on data as of
    2026-03-01: the settings line listed them and the waterfall did not change, with nothing saying
    why (a newcomer's review). A pause that started before the as-of time does act: not named."""
    s = tmp_path / "s.yaml"
    s.write_text("pauses:\n  - {start: 2026-02-28T00:00:00Z, end: 2026-03-02T00:00:00Z}\n"
                 "  - {start: 2026-03-10T00:00:00Z, end: 2026-03-11T00:00:00Z}\n"
                 "  - {start: 2026-03-02T00:00:00Z, end: 2026-03-06T00:00:00Z}\n"
                 "reexport_at: ['2026-02-20', '2026-03-20']\n")
    res = run("simulate", "--db", db, "--cohort", C, "--settings", str(s))
    assert res.exit_code == 0, res.output
    notes = [line for line in res.output.splitlines() if line.startswith("note: after the as-of time")]
    assert notes == ["note: after the as-of time (2026-03-01 00:00 UTC), so without effect on this simulation: "
                     "2 pauses from 2026-03-02 00:00 UTC; reexport_at 2026-03-20 00:00 UTC (give a later --at, "
                     "with data of that time)"]
    assert "note: after the as-of time" not in run("simulate", "--db", db, "--cohort", C).output


def test_simulate_errors(db, tmp_path):
    res = run("simulate", "--db", db, "--cohort", "Nope")
    assert res.exit_code == 1 and "unknown cohort 'Nope'; known cohorts: 'Power Users'" in _all(res)
    bad = tmp_path / "bad.yaml"
    bad.write_text("cadence: 15m\nfallbak: strict\n")
    res = run("simulate", "--db", db, "--cohort", C, "--settings", str(bad))
    assert res.exit_code == 1 and "fallbak: unknown option" in _all(res)
    res = run("simulate", "--db", db, "--cohort", C, "--at", "2020-01-01")
    assert res.exit_code == 1 and "has no members at 2020-01-01 00:00:00 UTC" in _all(res)
    res = run("simulate", "--db", str(tmp_path / "none.duckdb"), "--cohort", C)
    assert res.exit_code == 1 and "no such database" in _all(res)


def _all(res):
    err = ""
    try:
        err = res.stderr
    except (ValueError, AttributeError):
        pass
    return res.output + err


def test_simulate_stores_the_results_under_their_documented_names(db):
    assert run("simulate", "--db", db, "--cohort", C).exit_code == 0
    with Lab(db, read_only=True) as lab:
        assert lab.sql("SELECT distinct_id FROM resolution ORDER BY 1").distinct_id.tolist() == ["a", "b"]
        assert lab.sql("SELECT count(*) AS n FROM timeline").n[0] == 1
        assert lab.sql("SELECT count FROM waterfall WHERE step = 'audience'")["count"][0] == 1


def test_simulate_assumptions_all_prints_the_audience_under_each_value(db):
    res = run("simulate", "--db", db, "--cohort", C, "--assumptions", "all", "--no-timeline")
    assert res.exit_code == 0, res.output
    assert "audience under each value of every assumption" in res.output
    # a (property 1) is matched whatever the assumptions; b's junk property creates an orphan
    # with create_and_update: the audience is 1 or 2
    line = next(x for x in res.output.splitlines() if x.strip().startswith("protection"))
    assert line.split()[1:3] == ["1", "2"] and "only_update*=1" in line and "create_and_update=2" in line
    assert "no change in the audience: " in res.output and "fallback" in res.output.split("no change")[1]
    assert "audience on Power Users = false: 0 profiles" in res.output


# --------------------------------------------------------------------------- audiences on false, negative steps
def test_the_audience_on_false_counts_an_orphan_set_false(data):
    """docs/rules.md#audiences-on-false: an audience on <attribute> = false counts the profiles
    whose attribute is false, orphans included. A's $mparticle_user_id 12345 names no profile:
    create_and_update makes an orphan, true at 00:00 and false at 01:00 when A leaves."""
    data.profile("A", mparticle_user_id="12345")
    data.snapshot(C, "2026-03-01T00:00", ["A"])
    data.snapshot(C, "2026-03-01T01:00", [])
    r = data.lab.simulate(C, at="2026-03-01T01:00", settings={"cadence": "1h", "protection": "create_and_update"})
    assert r.attribute_state[["orphan_identifier", "is_orphan", "value"]].values.tolist() == [["12345", True, False]]
    assert (r.audience, r.audience_false) == (0, 1)
    assert r.timeline.false_count.tolist() == [0, 1]  # the timeline's last row agrees
    assert r.summary()["audience_false"] == 1


def test_check_waterfall_refuses_negative_steps_even_when_they_add_up():
    """docs/rules.md#waterfall: counts are never negative. A not_yet_true of -1 and a stale_true
    of -1 cancel out (5 - -1 + -1 = 5), so only the sign check can catch them."""
    df = pd.DataFrame(
        [("members", "", "total", 5), ("shared_mpid", "", "minus", 0), ("should_be_true", "", "total", 5),
         ("not_yet_true", "", "minus", -1), ("stale_true", "", "plus", -1), ("orphans_true", "", "plus", 0),
         ("audience", "", "total", 5)],
        columns=["step", "label", "kind", "count"])
    with pytest.raises(ReconciliationError, match="negative step in the waterfall"):
        check_waterfall(df)
    # the same from counts: more profiles both true and due than due at all
    counts = {"members": 5, "matched": 5, "gaps": {}, "should_be_true": 5, "true_linked": 5, "orphans_true": 0,
              "true_and_should": 6}
    with pytest.raises(ReconciliationError, match="negative step in the waterfall"):
        build_waterfall(counts)
