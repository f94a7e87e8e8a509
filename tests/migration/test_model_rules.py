"""The what-if's model rules (docs/migration.md#model), each on a small hand-built world whose right
answer is worked out in the test. Several come from an independent re-implementation of the model
from the docs, which found where the code and the docs disagreed.

Every world here is a few events and profiles inserted straight into the canonical tables
(``conftest.insert_events``: distinct_id, time, $user_id, $device_id[, $mparticle_user_id]).
The window is 2026-01-01 .. 2026-03-10 and the event rule is off unless a test says otherwise.
"""

from __future__ import annotations

import pandas as pd
import pytest

from cohortlab.migration.run import run_plans

from .conftest import insert_events, insert_profiles, plan, runner

START, END = "2026-01-01", "2026-03-10"
BIG = 9080350317581165123  # above 2^53: int(float(BIG)) = 9080350317581165568, another MPID
SWITCH_FEB = [{"since": None, "eit": "customer_id"}, {"since": "2026-02-01", "eit": "mparticle_id"}]


run = runner(START, END)


def users(lab, plan_name):
    df = lab.sql(f"SELECT * FROM migration_users WHERE plan = '{plan_name}' ORDER BY first_seen")
    return df


# --------------------------------------------------------------------------- remediation
def test_a_rule_writes_from_the_first_logged_in_event_also_under_mparticle_id(lab):
    # Profile 77 (customer id c77). Jan 5 logged in as c77; after the Feb 1 switch an anonymous
    # event on Feb 2 (keyed by the MPID: mparticle_id keys everyone) and a logged-in one on Feb 5.
    # The Rule (from Feb 1) writes $mparticle_user_id for logged-in activity only: Feb 5, not
    # Feb 2. Until Feb 5 the MPID profile matches through the distinct_id fallback.
    insert_events(lab, [("c77", "2026-01-05 10:00:00", "c77", "A"),
                        ("$device:A", "2026-02-02 10:00:00", None, "A"),
                        ("77", "2026-02-05 10:00:00", "77", "A")])
    insert_profiles(lab, {77: [("user", "customer_id", "c77")]})
    run(lab, plan("switch + Rule", eit_timeline=SWITCH_FEB, remediation={"kind": "rule", "since": "2026-02-01"}))
    u = users(lab, "switch + Rule").set_index("distinct_id")
    assert list(u.index) == ["c77", "77"]
    assert u.loc["77", "remediation_at"] == pd.Timestamp("2026-02-05 10:00:00")
    assert u.loc["77", "identifier_source"] == "mparticle_user_id"
    assert u.loc["77", "matchable_from"] == pd.Timestamp("2026-02-02 10:00:00")   # the fallback, from its first event
    assert pd.isna(u.loc["c77", "remediation_at"])

    # validation's as-of view: at Feb 3 the profile property is not there yet
    from cohortlab.migration.validate import predict_at
    t = predict_at(lab.engine, plan("switch + Rule", eit_timeline=SWITCH_FEB,
                                    remediation={"kind": "rule", "since": "2026-02-01"}), "2026-02-03")
    got = lab.sql(f"SELECT distinct_id, identifier_source FROM {t} WHERE distinct_id = '77'")
    assert list(got.identifier_source) == ["distinct_id"]


# --------------------------------------------------------------------------- gap reasons
def test_gap_reasons_follow_the_resolution_rules(lab):
    # Profile 77 has the numeric customer id 1001 (no profile 1001): under customer_id its
    # profile "1001" is unmatched with distinct_id_is_identity (rules.md#distinct-id-is-identity,
    # before mpid_not_found). "9080350317581165568" is in no profile (not in mParticle) and is
    # int(float(9080350317581165123)), an existing MPID: mpid_precision_loss. "555" is a deleted
    # profile (its $mparticle_user_id names no profile) keyed by that MPID after the switch:
    # mpid_not_found. "c-9" is a customer id: distinct_id_not_mpid.
    insert_events(lab, [("1001", "2026-01-05 10:00:00", "1001", "A"),
                        ("9080350317581165568", "2026-01-06 10:00:00", "9080350317581165568", "B"),
                        ("c-5", "2026-02-06 10:00:00", "c-5", "C", "555"),
                        ("c-9", "2026-01-07 10:00:00", "c-9", "D")])
    insert_profiles(lab, {77: [("user", "customer_id", "1001")],
                          9080350317581165123: [("user", "customer_id", "other")],
                          9: [("user", "customer_id", "c-9")]})
    run(lab, plan("do nothing"), plan("switch", eit_timeline=SWITCH_FEB))
    got = {r.distinct_id: r.gap_reason for r in users(lab, "do nothing").itertuples()}
    assert got == {"1001": "distinct_id_is_identity", "9080350317581165568": "mpid_precision_loss",
                   "c-5": "distinct_id_not_mpid", "c-9": "distinct_id_not_mpid"}
    got = {r.distinct_id: (r.category, r.gap_reason) for r in users(lab, "switch").itertuples()}
    assert got["555"] == ("mparticle_profile_deleted", "mpid_not_found")
    assert got["1001"] == ("never_fixable", "distinct_id_is_identity")


def test_a_key_that_is_another_profiles_mpid_is_matched_as_the_resolution_matches_it(lab):
    # Profile 77's customer id is "88", which is the MPID of profile 88 (another person). Under
    # customer_id its Mixpanel profile is keyed "88": the $distinct_id fallback matches it
    # whenever the distinct_id is the MPID of an existing profile (rules.md#resolution), to the
    # wrong person, from its first event. It was unmatched with mpid_not_found, a reason that
    # contradicted itself (the MPID exists).
    insert_events(lab, [("88", "2026-01-05 10:00:00", "88", "A", "77")])
    insert_profiles(lab, {77: [("user", "customer_id", "88")], 88: [("user", "customer_id", "zz")]})
    daily, summary = run(lab, plan("do nothing"))
    u = users(lab, "do nothing").set_index("distinct_id")
    assert list(u.index) == ["88"]
    row = u.loc["88"]
    assert (row.mpid, row.identifier_source, row.status, row.category) == (77, "distinct_id", "matched", "matched")
    assert pd.isna(row.gap_reason) and not row.keyed_by_mpid  # not its own MPID
    assert row.matchable_from == pd.Timestamp("2026-01-05 10:00:00")
    assert daily.iloc[-1][["members", "matched"]].tolist() == [1, 1]
    assert summary.loc["do nothing", "final_match_rate"] == 1.0


# --------------------------------------------------------------------------- one profile per distinct_id
def test_two_eit_periods_that_give_the_same_distinct_id_give_one_profile(lab):
    # Profile 77: customer id = email = a@x.com, logged in Jan 5 and Feb 5; customer_id, then
    # email from Feb 1: both periods key a@x.com, one Mixpanel profile, no split.
    # Profile 11: customer id "11", its own MPID's text; customer_id, then mparticle_id from
    # Feb 1: both periods key "11", one profile, keyed by its MPID, matched by the fallback
    # (fallback: data) from its first event on Jan 6.
    insert_events(lab, [("a@x.com", "2026-01-05 10:00:00", "a@x.com", "A"),
                        ("a@x.com", "2026-02-05 10:00:00", "a@x.com", "A"),
                        ("11", "2026-01-06 10:00:00", "11", "B"),
                        ("11", "2026-02-06 10:00:00", "11", "B")])
    insert_profiles(lab, {77: [("user", "customer_id", "a@x.com"), ("user", "email", "a@x.com")],
                          11: [("user", "customer_id", "11")]})
    daily, summary = run(lab, plan("to email", eit_timeline=[{"since": None, "eit": "customer_id"},
                                                             {"since": "2026-02-01", "eit": "email"}]),
                         plan("to mpid", eit_timeline=SWITCH_FEB))
    u = users(lab, "to email").set_index("distinct_id")
    assert list(u.index) == ["a@x.com", "11"]
    assert (u.loc["a@x.com", "events"], u.loc["a@x.com", "person_profiles"]) == (2, 1)
    assert u.loc["a@x.com", "status"] == "unmatched" and u.loc["a@x.com", "category"] == "unfixed"
    # "11" under customer_id is its own MPID's text: the data fallback matches it
    assert (u.loc["11", "status"], bool(u.loc["11", "keyed_by_mpid"])) == ("matched", True)
    s = summary.loc["to email"]
    assert (s.members_end, s.people_end, s.split_profiles_end, s.stranded_profiles) == (2, 2, 0, 0)
    assert s.final_match_rate == pytest.approx(0.5)

    u = users(lab, "to mpid").set_index("distinct_id")
    assert list(u.index) == ["a@x.com", "11", "77"]   # by first_seen
    assert (u.loc["11", "events"], u.loc["11", "person_profiles"], u.loc["11", "status"]) == (2, 1, "matched")
    assert u.loc["11", "matchable_from"] == pd.Timestamp("2026-01-06 10:00:00")
    s = summary.loc["to mpid"]
    assert (s.members_end, s.people_end, s.split_profiles_end) == (3, 2, 1)   # 77 splits, 11 does not


# --------------------------------------------------------------------------- person links
def test_person_links_take_the_first_rule_over_all_devices_in_text_order(lab):
    # cust-x: on device A its event carries $mparticle_user_id 5 (an existing MPID: rule a);
    # on device B nothing but its $user_id, the customer id of profile 9 (rule c). Rule a comes
    # first, over all its events: 5 (before: 9, the larger of the two per-device links).
    # cust-y: $mparticle_user_id "9" on device A, "10" on device B, both existing: the largest
    # in text order is "9" (before: 10, the numerically largest).
    # cust-z: "abc" (junk) on device A and 7 on device B, no profile 7 (deleted): rule f, 7.
    insert_events(lab, [("cust-x", "2026-01-20 10:00:00", "cust-x", "A", "5"),
                        ("cust-x", "2026-01-21 10:00:00", "cust-x", "B"),
                        ("cust-y", "2026-01-20 10:00:00", "cust-y", "C", "9"),
                        ("cust-y", "2026-01-21 10:00:00", "cust-y", "D", "10"),
                        ("cust-z", "2026-01-20 10:00:00", "cust-z", "E", "abc"),
                        ("cust-z", "2026-01-21 10:00:00", "cust-z", "F", "7")])
    insert_profiles(lab, {5: [("user", "email", "x@x.com")], 9: [("user", "customer_id", "cust-x")], 10: []})
    r = run_plans(lab.engine, [plan("x")], START, END, keep_tables=True)
    rows = lab.engine.query_rows(f"SELECT distinct_id, mpid, link FROM {r.tables.links} ORDER BY distinct_id")
    assert rows == [("cust-x", 5, "direct"), ("cust-y", 9, "direct"), ("cust-z", 7, "claimed")]
    r.drop_tables(lab.engine)


def test_a_device_first_used_by_a_deleted_profile_s_user_belongs_to_that_user(lab):
    # $device:X is anonymous on Jan 3; c-del logs in on device X on Jan 9, and its events from Jan
    # 20 carry MPID 7, of no loaded profile (deleted: rule f). Simplified ID Merge: the device is
    # c-del's, so $device:X is c-del's person, 7 (it was a person of its own, not in mParticle:
    # the device's first user counted only when linked to an existing profile). c-del itself
    # keeps its own rule. Its device W, which profile 3 holds as a device identity, is first used
    # by c-w (claiming 8, also deleted): c-w is not merged into its own claim but takes its own
    # rules in order: the device identity (rule e) before the claim, 3.
    insert_events(lab, [("$device:X", "2026-01-03 10:00:00", None, "X"),
                        ("c-del", "2026-01-09 10:00:00", "c-del", "X"),
                        ("c-del", "2026-01-20 10:00:00", "c-del", "X", "7"),
                        ("c-w", "2026-01-10 10:00:00", "c-w", "W", "8")])
    insert_profiles(lab, {3: [("device", "android_uuid", "W")]})
    r = run_plans(lab.engine, [plan("x")], START, END, keep_tables=True)
    rows = lab.engine.query_rows(f"SELECT distinct_id, mpid, link FROM {r.tables.links} ORDER BY distinct_id")
    assert rows == [("$device:X", 7, "device_merge"), ("c-del", 7, "claimed"), ("c-w", 3, "device_identity")]
    r.drop_tables(lab.engine)
    assert list(r.summary.people_end) == [2]


# --------------------------------------------------------------------------- keys under an identity EIT
def test_under_email_a_person_without_an_email_is_keyed_by_a_device(lab):
    # Profile 1 has a customer id (c1) but no email. Plan: email, then mparticle_id from Feb 1.
    # Jan 5 (logged in as c1): no email to key by, so a device id, $device:A (rules.md
    # #external-identity-type), not the customer id c1. Feb 10: keyed by the MPID "1", and the
    # device merges into it (Simplified ID Merge): one profile, no split, matched at the end.
    # Profile 555 is deleted (only its $mparticle_user_id on c-5's events): under email it is
    # keyed by its device too; under customer_id by its observed distinct_id c-5 (its identities
    # are unknown; the customer_id-keyed exports show c-5).
    insert_events(lab, [("c1", "2026-01-05 10:00:00", "c1", "A"),
                        ("1", "2026-02-10 10:00:00", "1", "A"),
                        ("c-5", "2026-01-06 10:00:00", "c-5", "E", "555")])
    insert_profiles(lab, {1: [("user", "customer_id", "c1")]})
    daily, summary = run(lab, plan("email", eit_timeline=[{"since": None, "eit": "email"},
                                                          {"since": "2026-02-01", "eit": "mparticle_id"}]),
                         plan("customer id"))
    u = users(lab, "email").set_index("distinct_id")
    assert list(u.index) == ["$device:E", "1"]
    assert (u.loc["1", "events"], u.loc["1", "person_profiles"], u.loc["1", "status"]) == (2, 1, "matched")
    on = daily[daily["plan"] == "email"].set_index("day")
    assert tuple(on.loc[pd.Timestamp("2026-02-09"), ["members", "people", "split_profiles"]]) == (2, 2, 0)  # $device:A
    s = summary.loc["email"]
    assert (s.members_end, s.split_profiles_end, s.stranded_profiles) == (2, 0, 0)
    assert s.final_match_rate == pytest.approx(0.5)
    assert set(users(lab, "customer id").distinct_id) == {"c1", "c-5"}


# --------------------------------------------------------------------------- projection
def test_repeat_keeps_the_period_when_the_data_span_fewer_days(lab):
    # 10 days of data: c1 on Jan 20, c2 on Jan 29 (profiles 1 and 2). repeat_days 30: the last
    # 30 days (Dec 31 .. Jan 29) repeat every 30 days, the days before Jan 20 empty: c1 comes back
    # on Feb 19 and Mar 21 (after the window), c2 on Feb 28. Not every 10 days (c1 on Jan 30,
    # Feb 9, Feb 19, Mar 1: a rhythm the data never showed). A Rule from Feb 25 reaches c2 only;
    # c1 is never fixable.
    insert_events(lab, [("c1", "2026-01-20 10:00:00", "c1", "A"), ("c2", "2026-01-29 10:00:00", "c2", "B")])
    insert_profiles(lab, {1: [("user", "customer_id", "c1")], 2: [("user", "customer_id", "c2")]})
    _, summary = run(lab, plan("Rule", remediation={"kind": "rule", "since": "2026-02-25"}), activity="repeat",
                     start="2026-01-20", end="2026-03-10")
    u = users(lab, "Rule").set_index("distinct_id")
    assert (u.loc["c1", "events"], u.loc["c1", "last_seen"]) == (2, pd.Timestamp("2026-02-19 10:00:00"))
    assert (u.loc["c1", "status"], u.loc["c1", "category"]) == ("unmatched", "never_fixable")
    assert (u.loc["c2", "events"], u.loc["c2", "status"]) == (2, "matched")
    assert summary.loc["Rule"].final_match_rate == pytest.approx(0.5)


# --------------------------------------------------------------------------- never fixable
MPID_UNTIL_JAN_10 = [{"since": None, "eit": "mparticle_id"}, {"since": "2026-01-10", "eit": "customer_id"}]


def test_an_mparticle_id_period_that_has_ended_fixes_nobody_at_the_window_end(lab):
    # The EIT is mparticle_id until Jan 10, customer_id after; a Rule writes from Jan 5, strict
    # fallback. c-u (profile 101) was active on Jan 3 only: keyed by its MPID then, unmatched at
    # the end (customer_id in force: the fallback is off) and never active after the Rule, so
    # never fixable. The mparticle_id period from the start counted as a fix from 1970 and made
    # it merely unfixed. c-v (102), active on Jan 20, is matched by the Rule. With customer_id
    # throughout c-u was never fixable already.
    insert_events(lab, [("c-u", "2026-01-03 10:00:00", "c-u", "U"), ("c-v", "2026-01-20 10:00:00", "c-v", "V")])
    insert_profiles(lab, {101: [("user", "customer_id", "c-u")], 102: [("user", "customer_id", "c-v")]})
    rule = {"kind": "rule", "since": "2026-01-05"}
    _, summary = run(lab, plan("mpid first", eit_timeline=MPID_UNTIL_JAN_10, remediation=rule),
                     plan("customer id", remediation=rule), settings={"fallback": "strict"})
    for name, key in (("mpid first", "101"), ("customer id", "c-u")):
        u = users(lab, name).set_index("distinct_id")
        assert (u.loc[key, "status"], u.loc[key, "category"]) == ("unmatched", "never_fixable"), name
        assert u.loc["c-v", "status"] == "matched", name
        assert summary.loc[name].never_fixable_users == 1, name


def test_activity_after_an_mparticle_id_period_and_before_the_cutoff_is_never_fixable(lab):
    # The same timeline, the data fallback and the event rule from Jan 15. $device:A, the device
    # of profile 201 (known by its email only), is active on Jan 12 alone: keyed by the device
    # under customer_id, never active after the cutoff, the one fix still in force at the end:
    # never fixable (it was unfixed: the ended mparticle_id period counted as a fix from 1970).
    # $device:B (profile 202) is active on Jan 20 with its MPID on the event: matched.
    insert_events(lab, [("$device:A", "2026-01-12 10:00:00", None, "A"),
                        ("$device:B", "2026-01-20 10:00:00", None, "B", "202")])
    insert_profiles(lab, {201: [("user", "email", "a@example.com"), ("device", "android_uuid", "A")],
                          202: [("user", "email", "b@example.com"), ("device", "android_uuid", "B")]})
    _, summary = run(lab, plan("p", eit_timeline=MPID_UNTIL_JAN_10, event_identity_cutoff="2026-01-15"))
    u = users(lab, "p").set_index("distinct_id")
    assert (u.loc["$device:A", "status"], u.loc["$device:A", "category"]) == ("unmatched", "never_fixable")
    assert u.loc["$device:B", "status"] == "matched"
    assert summary.loc["p"].never_fixable_users == 1


def test_an_mparticle_id_eit_in_force_at_the_end_is_a_fix_from_its_start(lab):
    # customer_id until Feb 1, mparticle_id after. c1 (profile 1) is active on Jan 5 only, c2
    # (profile 2) on Feb 5 (keyed by its MPID: matched). c1 has no activity after the switch,
    # the plan's first fix: never fixable. Switched back to customer_id on Mar 1, the window's
    # end has no mparticle_id in force and no other fix: nobody is never fixable (c1 unfixed).
    insert_events(lab, [("c1", "2026-01-05 10:00:00", "c1", "A"), ("2", "2026-02-05 10:00:00", "2", "B")])
    insert_profiles(lab, {1: [("user", "customer_id", "c1")], 2: [("user", "customer_id", "c2")]})
    back = SWITCH_FEB + [{"since": "2026-03-01", "eit": "customer_id"}]
    _, summary = run(lab, plan("switch", eit_timeline=SWITCH_FEB), plan("and back", eit_timeline=back))
    assert users(lab, "switch").set_index("distinct_id").loc["c1", "category"] == "never_fixable"
    assert users(lab, "and back").set_index("distinct_id").loc["c1", "category"] == "unfixed"
    assert (summary.loc["switch"].never_fixable_users, summary.loc["and back"].never_fixable_users) == (1, 0)


def test_a_plan_whose_final_match_rate_is_0_has_no_days_to_90_or_99_percent(lab):
    # customer_id, then email from Jan 5 (a change inside the window); c-u (profile 101, no email)
    # is never matched: the rate is 0 every day. 90% of 0 is reached on every day, so there is
    # nothing to reach: no days (NaN), not 0.
    insert_events(lab, [("c-u", "2026-01-02 10:00:00", "c-u", "U"), ("c-u", "2026-01-08 10:00:00", "c-u", "U")])
    insert_profiles(lab, {101: [("user", "customer_id", "c-u")]})
    _, summary = run(lab, plan("email", eit_timeline=[{"since": None, "eit": "customer_id"},
                                                      {"since": "2026-01-05", "eit": "email"}]))
    s = summary.loc["email"]
    assert s.final_match_rate == 0 and s.first_change == pd.Timestamp("2026-01-05")
    assert pd.isna(s.days_to_90pct) and pd.isna(s.days_to_99pct)


# --------------------------------------------------------------------------- gap reasons
def test_a_mparticle_user_id_of_no_loaded_profile_is_sent_instead_of_the_distinct_id(lab):
    # c-del's events from Jan 20 carry MPID 4871266971393660188, of no loaded profile (deleted);
    # c-rnd's carry int(float(BIG)), BIG's float-rounded MPID. The event rule (from Jan 15), or a
    # Rule (from Jan 10) that writes the same MPID, gives each profile that $mparticle_user_id:
    # it is sent instead of the distinct_id and matches nothing, as the resolution says
    # (mpid_not_found; mpid_precision_loss). They were reported as sent by their distinct_id
    # (distinct_id_not_mpid), beside an event_rule_at / remediation_at of Jan 20.
    rounded = str(int(float(BIG)))
    insert_events(lab, [("c-del", "2026-01-05 10:00:00", "c-del", "D"),
                        ("c-del", "2026-01-20 10:00:00", "c-del", "D", "4871266971393660188"),
                        ("c-rnd", "2026-01-05 10:00:00", "c-rnd", "R"),
                        ("c-rnd", "2026-01-20 10:00:00", "c-rnd", "R", rounded)])
    insert_profiles(lab, {BIG: []})
    run(lab, plan("event rule", event_identity_cutoff="2026-01-15"),
        plan("Rule", remediation={"kind": "rule", "since": "2026-01-10"}))
    for name, source in (("event rule", "event_property"), ("Rule", "mparticle_user_id")):
        u = users(lab, name).set_index("distinct_id")
        got = {d: tuple(u.loc[d, ["identifier_source", "status", "gap_reason", "category"]]) for d in ("c-del", "c-rnd")}
        assert got == {"c-del": (source, "unmatched", "mpid_not_found", "mparticle_profile_deleted"),
                       "c-rnd": (source, "unmatched", "mpid_precision_loss", "mparticle_profile_deleted")}, name
