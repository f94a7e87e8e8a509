"""The what-if (docs/rules.md#migration) on the hand-built history of ``conftest.py`` (read its table first).

Unless a test says otherwise the event rule is off (``event_identity_cutoff: None``) so that
each plan's own effect is visible, and the window is 2025-12-01 .. 2026-01-14 (state at the end
of each day). Expected values are worked out by hand in the comments.
"""

from __future__ import annotations

import pandas as pd
import pytest

from cohortlab.migration.run import run_plans
from cohortlab.migration.plans import MigrationPlan, PlanError, load_plans, standard_plans

from .conftest import insert_events, insert_profiles, plan, runner

START, END = "2025-12-01", "2026-01-14"
SWITCH = [{"since": None, "eit": "customer_id"}, {"since": "2026-01-05", "eit": "mparticle_id"}]


run = runner(START, END)


def day(daily, d, plan_name=None):
    sel = daily[daily["day"] == pd.Timestamp(d)]
    if plan_name is not None:
        sel = sel[sel["plan"] == plan_name]
    assert len(sel) == 1
    return sel.iloc[0]


def users(lab, plan_name):
    df = lab.sql(f"SELECT * FROM migration_users WHERE plan = '{plan_name}'")
    return {r.distinct_id: r for r in df.itertuples()}


# --------------------------------------------------------------------------- switch only
def test_switch_only_splits_the_person_who_straddles_the_switch(world):
    daily, summary = run(world, plan("switch only", eit_timeline=SWITCH))
    u = users(world, "switch only")
    # Bob: customer-id profile before the switch, MPID profile after it (a split)
    assert set(u) == {"c-ann", "c-bob", "102", "103", "$device:dev-dan", "x-eve"}
    assert (u["c-bob"].status, u["c-bob"].category) == ("unmatched", "stranded_split")
    assert (u["102"].status, u["102"].identifier_source, u["102"].keyed_by_mpid) == ("matched", "distinct_id", True)
    assert u["102"].person_profiles == 2 and u["c-bob"].person_profiles == 2
    # Cat only ever used the app after the switch: one profile, the MPID
    assert (u["103"].status, u["103"].category) == ("matched", "matched")
    # Ann and Dan never came back after the switch: never fixable
    assert (u["c-ann"].status, u["c-ann"].gap_reason, u["c-ann"].category) == (
        "unmatched", "distinct_id_not_mpid", "never_fixable")
    assert u["$device:dev-dan"].mpid == 104 and u["$device:dev-dan"].category == "never_fixable"
    # Eve is not in mParticle at all
    assert u["x-eve"].category == "not_in_mparticle" and pd.isna(u["x-eve"].mpid)

    # day by day: before Cat (01-07) nobody matches; Bob's MPID profile appears 01-10
    assert tuple(day(daily, "2026-01-06")[["members", "matched", "people", "split_profiles"]]) == (4, 0, 4, 0)
    assert tuple(day(daily, "2026-01-07")[["members", "matched", "people", "split_profiles"]]) == (5, 1, 5, 0)
    last = day(daily, "2026-01-14")
    assert tuple(last[["members", "matched", "people", "matched_people", "split_profiles", "overcount"]]) == (
        6, 2, 5, 2, 1, 1)
    assert last["match_rate"] == pytest.approx(2 / 6)
    s = summary.loc["switch only"]
    assert s.final_match_rate == pytest.approx(2 / 6)
    assert (s.split_profiles_end, s.stranded_profiles, s.never_fixable_users) == (1, 1, 2)
    # 90% of the final 1/3 is reached on 01-10 (1/5 on 01-07 is below): 5 days after the switch
    assert s.days_to_90pct == 5 and s.days_to_99pct == 5


def test_switch_plus_rule_matches_through_the_profile_property(world):
    daily, summary = run(world, plan("switch + Rule", eit_timeline=SWITCH,
                                     remediation={"kind": "rule", "since": "2026-01-05"}))
    u = users(world, "switch + Rule")
    assert u["102"].identifier_source == "mparticle_user_id"
    assert u["102"].remediation_at == pd.Timestamp("2026-01-10 10:00:00")
    # the Rule cannot reach the old customer-id profile: no event goes there after the switch
    assert u["c-bob"].status == "unmatched"
    assert summary.loc["switch + Rule"].final_match_rate == pytest.approx(2 / 6)


# --------------------------------------------------------------------------- Rule only
def test_rule_only_fixes_returning_users_without_splitting(world):
    daily, summary = run(world, plan("Rule only", remediation={"kind": "rule", "since": "2026-01-05"}))
    u = users(world, "Rule only")
    assert set(u) == {"c-ann", "c-bob", "c-cat", "$device:dev-dan", "x-eve"}
    assert (u["c-bob"].status, u["c-bob"].identifier_source) == ("matched", "mparticle_user_id")
    assert u["c-bob"].matchable_from == pd.Timestamp("2026-01-10 10:00:00")
    assert u["c-cat"].status == "matched"
    assert u["c-ann"].category == "never_fixable"
    assert tuple(day(daily, "2026-01-09")[["members", "matched"]]) == (5, 1)   # Cat
    assert tuple(day(daily, "2026-01-10")[["members", "matched", "split_profiles"]]) == (5, 2, 0)
    s = summary.loc["Rule only"]
    assert (s.final_match_rate, s.split_profiles_end, s.never_fixable_users) == (pytest.approx(0.4), 0, 2)


def test_remediation_before_the_switch_reaches_users_active_in_between(world):
    # Rule from 2025-12-05, switch 2026-01-05. Ann's 12-10 event is after the Rule: her
    # customer-id profile gets $mparticle_user_id. Bob's only pre-switch event (12-02) is
    # before the Rule: his old profile stays unmatched. Dan is anonymous (no profile to write).
    daily, summary = run(world, plan("early rule", eit_timeline=SWITCH,
                                     remediation={"kind": "sdk", "since": "2025-12-05"}))
    u = users(world, "early rule")
    assert (u["c-ann"].status, u["c-ann"].identifier_source) == ("matched", "mparticle_user_id")
    assert u["c-ann"].matchable_from == pd.Timestamp("2025-12-10 10:00:00")
    assert u["c-bob"].status == "unmatched"
    assert u["$device:dev-dan"].status == "unmatched"
    assert tuple(day(daily, "2025-12-09")[["members", "matched"]]) == (4, 0)
    assert tuple(day(daily, "2025-12-10")[["members", "matched"]]) == (4, 1)
    assert summary.loc["early rule"].final_match_rate == pytest.approx(3 / 6)   # c-ann, 102, 103


def test_remediation_after_the_last_visit_fixes_nobody(world):
    # Rule from 2026-01-12: nobody is active after it, so without a switch nothing matches;
    # with the switch, the MPID profiles match through the $distinct_id fallback anyway.
    late = {"kind": "rule", "since": "2026-01-12"}
    _, summary = run(world, plan("late rule", remediation=late),
                     plan("switch + late rule", eit_timeline=SWITCH, remediation=late))
    assert summary.loc["late rule"].matched_end == 0
    assert summary.loc["late rule"].never_fixable_users == 4           # everyone in mParticle
    assert summary.loc["switch + late rule"].matched_end == 2
    u = users(world, "switch + late rule")
    assert u["102"].identifier_source == "distinct_id" and pd.isna(u["102"].remediation_at)


def test_nobody_is_never_fixable_in_a_window_that_ends_before_the_plans_first_fix(world):
    """A window ending 2026-01-03, before the 01-05 switch: Ann, Bob and Dan (in mParticle) are
    unmatched, not yet fixable; they may come back after the switch. All three were counted "never
    fixable (inactive after the change)" (synth mid_migration, a window ending before the
    2026-01-15 event rule gave 450 of them). With the switch inside the window, as before."""
    _, summary = run(world, plan("switch only", eit_timeline=SWITCH), end="2026-01-03")
    s = summary.loc["switch only"]
    assert (s.never_fixable_users, s.unfixed_profiles, s.unmatched_users) == (0, 3, 4)  # and Eve
    _, summary = run(world, plan("switch only", eit_timeline=SWITCH), end="2026-01-05")
    assert summary.loc["switch only"].never_fixable_users == 3


# --------------------------------------------------------------------------- do nothing / event rule
def test_do_nothing_without_event_rule_matches_nobody(world):
    _, summary = run(world, plan("do nothing"))
    s = summary.loc["do nothing"]
    assert (s.members_end, s.matched_end, s.never_fixable_users) == (5, 0, 0)
    assert s.unfixed_profiles == 4 and s.not_in_mparticle_profiles == 1   # no fix in the plan at all
    assert pd.isna(s.days_to_90pct)


def test_event_rule_recovers_users_active_after_the_cutoff(world):
    _, summary = run(world, plan("do nothing", event_identity_cutoff="2026-01-06"))
    u = users(world, "do nothing")
    assert (u["c-bob"].status, u["c-bob"].identifier_source) == ("matched", "event_property")
    assert u["c-bob"].event_rule_at == pd.Timestamp("2026-01-10 10:00:00")
    assert u["c-cat"].status == "matched"
    assert u["c-ann"].category == "never_fixable"
    assert summary.loc["do nothing"].final_match_rate == pytest.approx(2 / 5)


# --------------------------------------------------------------------------- strict fallback
def test_strict_fallback_needs_mparticle_id_in_force_at_the_as_of_time(world):
    back = plan("back to customer id", eit_timeline=[{"since": None, "eit": "mparticle_id"},
                                                     {"since": "2026-01-05", "eit": "customer_id"}])
    # before 01-05 everyone is keyed by the MPID (Dan too: MPID even before login)
    daily, summary = run(world, back)
    u = users(world, "back to customer id")
    assert {k for k, r in u.items() if r.status == "matched"} == {"101", "102", "104"}
    assert set(u) == {"101", "102", "104", "x-eve", "c-bob", "c-cat"}
    daily_s, summary_s = run(world, back, settings={"fallback": "strict"})
    u = users(world, "back to customer id")
    assert summary_s.loc["back to customer id"].matched_end == 0
    assert u["101"].gap_reason == "fallback_disabled"
    # while mparticle_id is in force (as of the end of 01-03) the strict fallback matches
    assert day(daily_s, "2026-01-03")["matched"] == 3
    assert day(daily_s, "2026-01-05")["matched"] == 0


# --------------------------------------------------------------------------- Simplified ID Merge
def test_anonymous_activity_joins_the_first_identified_profile(lab):
    # Fay browses anonymously on 12-05, logs in only on 01-08, after the switch: with Simplified
    # ID Merge her device's earlier events belong to her first $user_id, the MPID. One profile.
    insert_events(lab, [("c-fay", "2025-12-05 09:00:00", None, "dev-fay"),
                        ("c-fay", "2026-01-08 09:00:00", "c-fay", "dev-fay")])
    insert_profiles(lab, {105: [("user", "customer_id", "c-fay"), ("device", "ios_idfv", "dev-fay")]})
    daily, summary = run(lab, plan("switch only", eit_timeline=SWITCH), plan("no switch"))
    u = users(lab, "switch only")
    assert set(u) == {"105"} and u["105"].status == "matched"
    assert summary.loc["switch only"].split_profiles_end == 0
    # day by day: until she logs in she is the anonymous $device:dev-fay (unmatched); from 01-08
    # the merged MPID profile (matched through the $distinct_id fallback), never both
    assert tuple(day(daily, "2026-01-07", "switch only")[["members", "matched", "split_profiles"]]) == (1, 0, 0)
    assert tuple(day(daily, "2026-01-08", "switch only")[["members", "matched", "split_profiles"]]) == (1, 1, 0)
    assert tuple(day(daily, "2025-12-05", "switch only")[["members", "people"]]) == (1, 1)
    u = users(lab, "no switch")
    assert set(u) == {"c-fay"}


def test_person_links(world):
    r = run_plans(world.engine, [plan("x")], START, END, keep_tables=True)
    rows = world.engine.query_rows(f"SELECT distinct_id, mpid, link FROM {r.tables.links} ORDER BY distinct_id")
    assert rows == [
        ("$device:dev-dan", 104, "device_identity"),      # Dan: known to mParticle by his device
        ("c-ann", 101, "direct"), ("c-bob", 102, "direct"), ("c-cat", 103, "direct"),   # customer ids
        ("x-eve", None, "none"),                          # not in mParticle
    ]


def test_person_links_read_every_event_not_one_per_interval(lab):
    # Hal's two events fall in one interval and carry two $mparticle_user_id values: 999 (no
    # profile) and 106 (his). Ivy's events are keyed by a distinct_id that is not her $user_id;
    # Jo logged in once under another customer id. Every event's values count (the largest
    # $user_id, the smallest and largest $mparticle_user_id, text order), whatever the scan order.
    insert_events(lab, [("c-hal", "2026-01-20 09:00:00", "c-hal", "dev-hal", "999"),
                        ("c-hal", "2026-01-20 10:00:00", "c-hal", "dev-hal", "106"),
                        ("c-hal", "2026-01-20 11:00:00", "c-hal", "dev-hal", "c-hal"),
                        ("x-ivy", "2026-01-20 09:00:00", "c-ivy", "dev-ivy"),
                        ("c-jo", "2026-01-20 09:00:00", "c-jo", "dev-jo"),
                        ("c-jo", "2026-01-20 10:00:00", "c-joe", "dev-jo")])
    insert_profiles(lab, {106: [], 107: [("user", "customer_id", "c-ivy")], 108: [("user", "customer_id", "c-joe")]})
    r = run_plans(lab.engine, [plan("x")], "2026-01-19", "2026-01-22", keep_tables=True)
    rows = lab.engine.query_rows(f"SELECT distinct_id, mpid, link FROM {r.tables.links} ORDER BY distinct_id")
    assert rows == [("c-hal", 106, "direct"), ("c-jo", 108, "direct"), ("x-ivy", 107, "direct")]


def test_event_property_links_a_person_whose_profile_was_deleted(lab):
    # Gus's mParticle profile is gone (not in mpa_profiles), his events after the cutoff carry
    # his MPID: he is a person with an MPID that no longer exists: mpid_not_found, never matched.
    insert_events(lab, [("c-gus", "2026-01-20 09:00:00", "c-gus", "dev-gus", "777"),
                        ("c-gus", "2026-01-21 09:00:00", "c-gus", "dev-gus", "777")])
    _, summary = run(lab, plan("switch", eit_timeline=[{"since": None, "eit": "customer_id"},
                                                       {"since": "2026-01-21", "eit": "mparticle_id"}],
                               event_identity_cutoff="2026-01-15"), start="2026-01-19", end="2026-01-22")
    u = users(lab, "switch")
    assert set(u) == {"c-gus", "777"}
    assert u["777"].status == "unmatched" and u["777"].gap_reason == "mpid_not_found"
    assert u["c-gus"].category == u["777"].category == "mparticle_profile_deleted"


# --------------------------------------------------------------------------- projection
def test_repeat_projects_observed_activity_past_the_last_event(world):
    # data span 2025-12-01 .. 2026-01-10 = 41 days; a switch on 2026-01-12 is after every event:
    # with observed activity nobody gets an MPID profile.
    p = plan("future switch", eit_timeline=[{"since": None, "eit": "customer_id"},
                                            {"since": "2026-01-12", "eit": "mparticle_id"}])
    _, obs = run(world, p, end="2026-01-25")
    assert obs.loc["future switch"].matched_end == 0
    # repeating the whole 41 days: Ann's 12-01 activity comes back on 01-11 (before the switch),
    # her 12-10 event on 01-20, Bob's 12-02 on 01-12, Dan's 12-03 on 01-13 ...
    r = run_plans(world.engine, [p], START, "2026-01-25", activity="repeat", repeat_days=41)
    summary = r.summary
    u = users(world, "future switch")
    assert {k for k, r in u.items() if r.status == "matched"} == {"101", "102", "104"}
    assert u["101"].first_seen == pd.Timestamp("2026-01-20 10:00:00")      # 12-10 + 41 days
    # Ann and Bob now have two profiles; Dan has one: his anonymous device activity joins his
    # first identified key, the MPID (Simplified ID Merge)
    assert summary.iloc[0].split_profiles_end == 2
    assert "$device:dev-dan" not in u
    # default: only the last 30 days (12-12 .. 01-10: Cat 01-07, Bob 01-10) repeat, every 30
    # days: Cat is back on 02-06, Bob on 02-09; Ann and Dan churned and stay away
    _, rep = run(world, p, end="2026-02-10", activity="repeat")
    u = users(world, "future switch")
    assert {k for k, r in u.items() if r.status == "matched"} == {"102", "103"}
    assert u["103"].first_seen == pd.Timestamp("2026-02-06 10:00:00")
    s = rep.loc["future switch"]
    assert (s.split_profiles_end, s.never_fixable_users) == (2, 2)


# --------------------------------------------------------------------------- standard plans, YAML
def test_standard_plans_side_by_side(world):
    daily, summary = run(world, *standard_plans("2026-01-05", event_identity_cutoff=None))
    assert list(summary.index) == ["switch only", "switch + Rule", "Rule only", "do nothing"]
    assert set(daily.columns) >= {"plan", "day", "match_rate", "matched", "members", "split_profiles"}
    assert len(daily) == 4 * 45
    assert summary["final_match_rate"].round(4).tolist() == [0.3333, 0.3333, 0.4, 0.0]
    stored = world.sql("SELECT plan, count(*) AS n FROM migration_daily GROUP BY plan")
    assert dict(zip(stored.plan, stored.n)) == {p: 45 for p in summary.index}


def test_plan_yaml_round_trip(tmp_path):
    p = MigrationPlan(name="switch + Rule", eit_timeline=SWITCH, remediation={"kind": "rule", "since": "2026-01-05"})
    path = tmp_path / "p.yaml"
    p.to_yaml(path)
    assert MigrationPlan.from_yaml(path) == p
    assert p.event_identity_cutoff.isoformat() == "2026-01-15T00:00:00+00:00"       # settings default
    path.write_text("name: x\neit_timeline: mpid\nevent_identity_cutoff: null\n")
    q = MigrationPlan.from_yaml(path)
    assert q.eit_timeline[0].eit == "mparticle_id" and q.event_identity_cutoff is None
    path.write_text("name: x\neit_timeline: customer-number\n")
    with pytest.raises(PlanError, match="eit"):
        MigrationPlan.from_yaml(path)


def test_a_plan_file_s_mistakes_say_what_to_fix(tmp_path):
    """A misspelt key said only "Extra inputs are not permitted", and a file of several plans
    where one is read said to use load_plans(), a Python call, to a command-line user (a review
    of migration validation)."""
    path = tmp_path / "p.yaml"
    path.write_text("name: x\neit_timline: customer_id\n")
    with pytest.raises(PlanError, match=r"p\.yaml: invalid migration plan: eit_timline: unknown key \(did you mean "
                                        r"'eit_timeline'\?\); the keys: name, description, eit_timeline"):
        MigrationPlan.from_yaml(path)
    path.write_text("name: x\nremediation: [{kind: rule, sinse: 2026-02-01}]\n")
    with pytest.raises(PlanError, match=r"remediation\.0\.sinse: unknown key \(did you mean 'since'\?\); the keys: "
                                        r"kind, since$"):
        MigrationPlan.from_yaml(path)
    path.write_text("plans: [{name: a, eit_timeline: customer_id}, {name: b, eit_timeline: mparticle_id}]\n")
    with pytest.raises(PlanError, match=r"p\.yaml: holds 2 plans \(a, b\); one is needed here: put it in a file of "
                                        r"its own"):
        MigrationPlan.from_yaml(path)


def test_example_plans_load():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "data" / "plans"
    names = [p.name for f in sorted(root.glob("*.yaml")) for p in load_plans(f)]
    assert "switch only" in names and "do nothing" in names


def test_cohort_scope_follows_the_members_people_across_their_profiles(world):
    # the cohort's latest snapshot lists Bob (by his customer id) and Eve: the what-if follows
    # those two people, including Bob's later MPID profile
    world.engine.execute("INSERT INTO mp_cohort_snapshots (snapshot_id, cohort_name, as_of, member_count) "
                         "VALUES (1, 'Power Users', TIMESTAMP '2026-01-01', 2)")
    world.engine.execute("INSERT INTO mp_cohort_members (snapshot_id, cohort_name, as_of, distinct_id) VALUES "
                         "(1, 'Power Users', TIMESTAMP '2026-01-01', 'c-bob'), (1, 'Power Users', TIMESTAMP '2026-01-01', 'x-eve')")
    daily = run_plans(world.engine, [plan("switch only", eit_timeline=SWITCH)], START, END, cohort="Power Users").daily
    last = day(daily, END)
    assert tuple(last[["members", "matched", "people", "split_profiles"]]) == (3, 1, 2, 1)
    assert set(daily["cohort"]) == {"Power Users"}
    with pytest.raises(ValueError, match="unknown cohort 'Nope'"):
        run_plans(world.engine, [plan("x")], START, END, cohort="Nope")


def test_cohort_scope_of_a_renamed_cohort_is_its_latest_snapshot_by_its_id_or_any_of_its_names(world):
    """A cohort renamed between two snapshots (one id): its latest snapshot, under its current
    name, scopes the what-if whether it is asked for by that name, the earlier one or its id. The
    scope matched snapshots by the name asked for: by the earlier name it followed the older
    snapshot's members, by the id it was 'no membership snapshot'; the rows and the population
    line named the cohort as asked."""
    e = world.engine
    e.execute("INSERT INTO mp_cohort_snapshots (snapshot_id, cohort_id, cohort_name, as_of, member_count) VALUES "
              "(1, '7', 'Heavy Users', TIMESTAMP '2025-12-20', 1), (2, '7', 'Power Users', TIMESTAMP '2026-01-01', 2)")
    e.execute("INSERT INTO mp_cohort_members (snapshot_id, cohort_name, as_of, distinct_id) VALUES "
              "(1, 'Heavy Users', TIMESTAMP '2025-12-20', 'x-eve'), "
              "(2, 'Power Users', TIMESTAMP '2026-01-01', 'c-bob'), (2, 'Power Users', TIMESTAMP '2026-01-01', 'x-eve')")
    for asked in ("Power Users", "Heavy Users", "7"):
        run = run_plans(world.engine, [plan("switch only", eit_timeline=SWITCH)], START, END, cohort=asked)
        assert tuple(day(run.daily, END)[["members", "matched", "people", "split_profiles"]]) == (3, 1, 2, 1), asked
        assert "the 2 members of 'Power Users'" in run.population, (asked, run.population)
        assert set(run.daily["cohort"]) == set(run.summary["cohort"]) == {"Power Users"}, asked  # named as simulate names it


def test_cohort_scope_of_two_snapshots_of_one_time_is_the_one_loaded_last(world):
    """docs/rules.md#membership: of two snapshots with the same as-of time, the later load counts,
    here as in the simulation and explain (``CohortRef.snapshots_sql``, the one place of that rule)."""
    e = world.engine
    e.execute("INSERT INTO mp_cohort_snapshots (snapshot_id, cohort_name, as_of, member_count) VALUES "
              "(1, 'Power Users', TIMESTAMP '2026-01-01', 1), (2, 'Power Users', TIMESTAMP '2026-01-01', 2), "
              "(3, 'Power Users', TIMESTAMP '2025-12-01', 1)")
    e.execute("INSERT INTO mp_cohort_members (snapshot_id, cohort_name, as_of, distinct_id) VALUES "
              "(1, 'Power Users', TIMESTAMP '2026-01-01', 'c-ann'), "
              "(2, 'Power Users', TIMESTAMP '2026-01-01', 'c-bob'), (2, 'Power Users', TIMESTAMP '2026-01-01', 'x-eve'), "
              "(3, 'Power Users', TIMESTAMP '2025-12-01', 'c-cat')")
    run = run_plans(world.engine, [plan("switch only", eit_timeline=SWITCH)], START, END, cohort="Power Users")
    assert tuple(day(run.daily, END)[["members", "matched", "people", "split_profiles"]]) == (3, 1, 2, 1)
    assert "the 2 members of 'Power Users'" in run.population, run.population


# --------------------------------------------------------------------------- re-export after fixing identifiers
def test_a_fix_after_the_first_send_needs_a_re_export(world):
    """Rule from Jan 5: Bob's profile (first sent Dec 2) gets $mparticle_user_id on Jan 10, after it
    was sent: matched in Mixpanel, not in mParticle until re-sent. Cat's profile is created on
    Jan 7 with the fix already there: sent matched. A re-export on Jan 12 re-sends Bob; one on
    Jan 8 comes before his fix."""
    rule = {"kind": "rule", "since": "2026-01-05"}
    _, summary = run(world, plan("no re-export", remediation=rule),
                     plan("re-export Jan 12", remediation=rule, reexport_at="2026-01-12"),
                     plan("re-export Jan 8", remediation=rule, reexport_at="2026-01-08"))
    assert summary["users_needing_reexport"].tolist() == [1, 1, 1]
    assert summary["reexport_users"].tolist() == [0, 1, 0]
    assert summary.loc["re-export Jan 12", "reexport_at"] == pd.Timestamp("2026-01-12")
    assert (summary.loc["no re-export", "matched_end"] == summary.loc["re-export Jan 12", "matched_end"])


def test_the_switch_needs_no_re_export(world):
    """Bob's new MPID profile is created after the switch, keyed by the MPID: sent matched."""
    _, summary = run(world, plan("switch only", eit_timeline=SWITCH, reexport_at="2026-01-12"))
    assert (summary.loc["switch only", "users_needing_reexport"], summary.loc["switch only", "reexport_users"]) == (0, 0)


def test_the_re_export_is_a_dated_change_of_the_plan():
    p = plan("p", remediation={"kind": "rule", "since": "2026-01-05"}, reexport_at="2026-01-12")
    assert ("re-export the cohort" in [label for _, label in p.changes])
    assert MigrationPlan.model_validate(p.to_dict()).reexport_at == p.reexport_at


def test_a_timeline_without_an_undated_period_is_customer_id_before_its_first_date(world):
    """`eit_timeline: [{since: 2026-01-05, eit: mparticle_id}]`: before 01-05 the EIT is customer_id
    (mParticle's default, as SyncSettings.eit_at and the daily `eit` column said), but the model
    keyed that activity by MPID: no split, everyone matched from their first event."""
    dated = plan("dated only", eit_timeline=[{"since": "2026-01-05", "eit": "mparticle_id"}])
    assert [(p.since, p.eit) for p in dated.eit_timeline][0] == (None, "customer_id")
    daily, summary = run(world, dated, plan("switch only", eit_timeline=SWITCH))
    cols = ["members_end", "matched_end", "split_profiles_end", "never_fixable_users", "days_to_90pct"]
    assert summary.loc["dated only", cols].tolist() == summary.loc["switch only", cols].tolist()
    assert tuple(day(daily, "2026-01-06", "dated only")[["members", "matched", "eit"]]) == (4, 0, "mparticle_id")
    assert day(daily, "2026-01-03", "dated only")["eit"] == "customer_id"  # (01-04: the state at 01-05 00:00)
