"""What the report pages say, on hand-built figures: each number in the words and tables a reader
sees (paused windows, agreement, shared MPIDs, migration plans, wording)."""

import json

import pandas as pd

from cohortlab.report import metrics, summaries
from cohortlab.report import notebook as ui
from cohortlab.settings import settings_summary


def _timeline(runs: list[tuple[str, bool]]) -> pd.DataFrame:
    """A dynamic sync's timeline: ``(run time, failed)`` per run, in order."""
    return pd.DataFrame({"run_at": pd.to_datetime([t for t, _ in runs]), "failed": [f for _, f in runs]})


# the demo's two pauses: one ends with a successful run, the other still runs at the last run
DEMO_LIKE = _timeline([
    ("2026-02-24 04:00", False), ("2026-02-24 06:00", True), ("2026-02-24 08:00", True),
    ("2026-02-27 18:00", False), ("2026-02-28 18:00", False),
    ("2026-02-28 20:00", True), ("2026-02-28 22:00", True), ("2026-03-01 00:00", True),
])


def test_a_paused_window_names_its_first_successful_run_after_the_pause_or_that_it_still_runs():
    w = metrics.paused_windows(DEMO_LIKE)
    assert w["start"].tolist() == list(pd.to_datetime(["2026-02-24 06:00", "2026-02-28 20:00"]))
    assert w["last_failed"].tolist() == list(pd.to_datetime(["2026-02-24 08:00", "2026-03-01 00:00"]))
    assert w["end"].iloc[0] == pd.Timestamp("2026-02-27 18:00") and pd.isna(w["end"].iloc[1])
    # only failed runs are counted, in every row: the windows add up to the timeline's failed runs
    assert w["failed_runs"].tolist() == [2, 3]
    assert int(w["failed_runs"].sum()) == metrics.timeline_summary(DEMO_LIKE.assign(
        full_refresh=False, adds=0, removes=0, members=0, true_count=0, not_yet_true=0, stale_true=0))["failed_runs"]


def test_the_paused_windows_table_says_when_the_sync_is_still_paused_at_the_last_run():
    rows = metrics._rows(metrics.paused_windows(DEMO_LIKE))
    table = ui.paused_windows_table(rows, last_run="2026-03-01T00:00:00")
    assert table.to_dict(orient="records") == [
        {"first failed run": "2026-02-24 06:00", "last failed run": "2026-02-24 08:00", "failed runs": 2,
         "first successful run after the pause": "2026-02-27 18:00"},
        {"first failed run": "2026-02-28 20:00", "last failed run": "2026-03-01 00:00", "failed runs": 3,
         "first successful run after the pause": "none: still paused at the last run (2026-03-01 00:00)"},
    ]


def test_a_pause_that_ends_with_a_reconnect_says_so_and_counts_as_a_full_sync():
    """A reconnect's first successful run is a full sync (not a full refresh: it clears nothing):
    the paused-windows table says how the pause ended, the summary counts it."""
    tl = _sync_timeline([(pd.Timestamp("2026-02-25 00:00"), 5, 5, 0, False, False, 5, 0, 0),
                         (pd.Timestamp("2026-02-25 00:15"), 5, 0, 0, True, False, 5, 0, 0),
                         (pd.Timestamp("2026-02-25 00:30"), 6, 6, 0, False, False, 6, 0, 0)]).assign(
        kind=["first", "failed", "reconnect"])
    w = metrics._rows(metrics.paused_windows(tl))
    assert ui.paused_windows_table(w)["first successful run after the pause"].tolist() == [
        "2026-02-25 00:30 (a reconnect: full sync)"]
    stats = metrics.timeline_summary(tl)
    assert (stats["full_refreshes"], stats["full_syncs"]) == (0, 1)
    assert "(1 failed, 0 full refreshes, 1 full sync after a reconnect or a re-export)" in summaries.sync_summary("C", stats)


def test_a_one_time_exports_observation_points_are_not_counted_as_runs():
    """A one-time export runs once; its timeline goes on with points where nothing is sent (the
    sync card said "sync runs 1,154" and "0 of 1,154 runs failed" for two one-time exports)."""
    tl = _sync_timeline([(pd.Timestamp("2026-02-25 00:00"), 5, 5, 0, False, False, 5, 0, 0),
                         (pd.Timestamp("2026-02-25 00:15"), 5, 0, 0, False, False, 5, 0, 0),
                         (pd.Timestamp("2026-02-25 00:30"), 6, 0, 0, False, False, 5, 0, 0)]).assign(
        kind=["one_time", "observation", "observation"])
    stats = metrics.timeline_summary(tl)
    assert (stats["runs"], stats["observation_points"], stats["failed_runs"]) == (1, 2, 0)
    assert metrics.sync_headline({"C": stats, "D": stats})["sync runs (summed over cohorts)"] == 2


def test_a_timeline_without_failed_runs_has_no_paused_window():
    assert metrics.paused_windows(_timeline([("2026-03-01", False), ("2026-03-02", False)])).empty


# --------------------------------------------------------------------------- observed vs simulated
def test_a_share_with_exceptions_is_never_rounded_to_100_or_0_percent():
    assert summaries.pct(1 - 1 / 3374) == ">99.9%"  # 1 of 3,374 profiles disagrees
    assert summaries.pct(1 / 3374) == "<0.1%"
    assert summaries.pct(1.0) == "100.0%" and summaries.pct(0.0) == "0.0%"
    assert summaries.pct(0.9227) == "92.3%" and summaries.pct(None) == "n/a"
    assert ui.format_for_people(pd.DataFrame({"match_rate": [3373 / 3374, 1.0]}))["match rate"].tolist() == [
        ">99.9%", "100.0%"]


class _Verified:
    """A VerifyResult as :func:`metrics.verify_figures` reads it: the legacy world's Power Users,
    3,374 profiles compared, 3,364 of them absent on both sides, 1 disagreement."""

    def __init__(self):
        values = ["true", "false", "absent"]
        conf = pd.DataFrame(0, index=pd.Index(values, name="simulated"), columns=values + ["other"])
        conf.loc["true", "true"], conf.loc["false", "false"], conf.loc["true", "absent"] = 7, 2, 1
        conf.loc["absent", "absent"] = 3364
        self.confusion = conf
        self.compared = 3374
        self.agreement = 1 - 1 / 3374
        self.attribute, self.snapshot_at, self.snapshot_at_from = "Power Users", "2026-03-01", "given"
        self.at = "2026-03-01"
        self.audience = pd.DataFrame({"audience": ["= true", "= false"], "observed": [7, 2], "simulated": [8, 2],
                                      "difference": [-1, 0]})
        self.causes = pd.DataFrame({"cause": ["pause_not_modelled"], "profiles": [1]})
        self.disagreements = pd.DataFrame({"mpid": [42], "simulated": ["true"], "observed": ["absent"],
                                           "cause": ["pause_not_modelled"], "evidence": [""], "detail": [""]})
        self.names = pd.DataFrame({"attribute": ["Power Users"], "how": ["exact"], "profiles": [9], "true": [7],
                                   "false": [2]})
        self.notes = []


def test_agreement_is_also_stated_over_the_profiles_where_either_side_has_the_attribute():
    f = metrics.verify_figures({"Power Users": _Verified()})
    c, t = f["cohorts"]["Power Users"], f["totals"]
    assert (c["compared"], c["with_attribute"], c["disagreements"]) == (3374, 10, 1)
    assert c["agreement_with_attribute"] == 0.9 and t["agreement_with_attribute"] == 0.9
    assert t["agreement"] == c["agreement"] == 1 - 1 / 3374  # the figure over every profile compared stays
    text = summaries.verify_summary(f)
    assert ("**Observed 7 vs simulated 8** profiles with the attribute true in mParticle at 2026-03-01 00:00 UTC, "
            "the snapshot's time (agreement >99.9% of "
            "3,374 profiles; 90.0% of the 10 where either side has the attribute).") in text
    assert ("1 of 3,374 profiles disagree (agreement >99.9% of 3,374 profiles; 90.0% of the 10 where either side "
            "has the attribute)") in text
    assert "100.0%" not in text


# --------------------------------------------------------------------------- sync timeline
def test_no_stale_or_pending_profiles_is_not_said_to_be_an_audience_matching_the_cohort():
    # the legacy world's Power Users: 210 members, 7 of them matched, never a stale or pending profile
    stats = {"runs": 577, "members": 210, "true_count": 7, "stale_true": 0, "not_yet_true": 0}
    assert summaries.no_staleness(stats) == (
        "no stale or pending profiles after any of the 577 runs (the audience always held exactly the profiles "
        "of the matched members: 7 profiles for the 210 members after the last run)")
    assert "matched the cohort" not in summaries.no_staleness(stats)


def test_no_staleness_counts_the_audience_in_profiles_not_in_matched_members():
    """The demo's Power Users: 175 members, 165 matched (the match-rates page), 19 of them on an MPID
    another member has: 146 profiles. The sentence said "146 of the 175 members", a second, different
    count of the matched members."""
    stats = {"runs": 577, "members": 175, "true_count": 146, "stale_true": 0, "not_yet_true": 0}
    text = summaries.no_staleness(stats)
    assert "146 of the 175 members" not in text
    assert "146 profiles for the 175 members after the last run" in text


# --------------------------------------------------------------------------- across cohorts
def _member(cohort, distinct_id, mpid, gap=None, identifier=None):
    status = "matched" if gap is None else "unmatched"
    return {"cohort_name": cohort, "distinct_id": distinct_id, "identifier_source": "distinct_id",
            "identifier": identifier or str(mpid), "mpid": mpid, "status": status, "gap_reason": gap,
            "recoverable_via": None, "active_after_cutoff": True}


# MPID 11 is shared by two profiles in both cohorts, MPID 22 in cohort A only; cust-9 lost
# precision and is a member of both cohorts
ACROSS = pd.DataFrame([
    _member("A", "p1", 11), _member("A", "p2", 11), _member("B", "p1", 11), _member("B", "p2", 11),
    _member("A", "p3", 22), _member("A", "p4", 22), _member("A", "p5", 22),
    _member("A", "cust-9", None, "mpid_precision_loss", "7000000000000000000"),
    _member("B", "cust-9", None, "mpid_precision_loss", "7000000000000000000"),
])


def test_an_mpid_shared_in_two_cohorts_is_counted_once_and_the_pairs_are_named_as_such():
    f = metrics.identity_gaps_figures(ACROSS, metrics.shared_mpids(ACROSS))
    assert (f["shared_mpids"], f["shared_mpids_distinct"], f["profiles_on_shared_mpids"]) == (3, 2, 7)
    assert summaries.shared_mpids_words(f, bold=True) == (
        "**2** MPIDs are each claimed by several Mixpanel profiles of a cohort (counted once per cohort, as the "
        "chart and the table list them: **3** (cohort, MPID) pairs, **7** profiles)")
    assert ("on the match-rates page): 2 MPIDs are each claimed by several Mixpanel profiles of a cohort (counted "
            "once per cohort, as the chart and the table list them: 3 (cohort, MPID) pairs, 7 profiles).") in \
        summaries.identity_gaps_summary(f)
    one = metrics.identity_gaps_figures(ACROSS[ACROSS["cohort_name"] == "A"],
                                        metrics.shared_mpids(ACROSS[ACROSS["cohort_name"] == "A"]))
    assert summaries.shared_mpids_words(one) == "2 MPIDs are claimed by 5 Mixpanel profiles"


def test_a_member_in_two_cohorts_is_counted_once_as_a_profile():
    f = metrics.identity_gaps_figures(ACROSS, metrics.shared_mpids(ACROSS))
    assert (f["precision_loss"], f["precision_loss_profiles"]) == (2, 1)
    assert summaries.precision_loss_words(f) == (
        "**2** cohort members (1 Mixpanel profile, some in several cohorts, listed with each cohort) send")
    assert [r["cohort_name"] for r in f["precision_loss_rows"]] == ["A", "B"]  # each listed with its cohort
    one = metrics.identity_gaps_figures(ACROSS[ACROSS["cohort_name"] == "A"], metrics.shared_mpids(ACROSS))
    assert summaries.precision_loss_words(one) == "**1** member sends"


# --------------------------------------------------------------------------- EIT migration
def _daily(rates: dict[str, list[int]]) -> pd.DataFrame:
    """Three days, 100 Mixpanel profiles, ``matched`` per day of each plan."""
    days = pd.to_datetime(["2026-02-14", "2026-02-15", "2026-02-16"])
    return pd.DataFrame([{"day": d, "plan": p, "members": 100, "matched": m, "match_rate": m / 100,
                          "split_profiles": 0} for p, ms in rates.items() for d, m in zip(days, ms)])


def test_a_plan_that_equals_do_nothing_every_day_has_no_effect_and_no_days_to_90_percent():
    from cohortlab.migration.plans import standard_plans

    plans = standard_plans("2026-02-15T00:00:00Z")  # switch only, switch + Rule, Rule only, do nothing
    daily = _daily({"switch only": [40, 60, 75], "switch + Rule": [40, 60, 75], "Rule only": [40, 40, 40],
                    "do nothing": [40, 40, 40]})
    first = pd.Timestamp("2026-02-15")
    summary = pd.DataFrame({"plan": [p.name for p in plans], "first_change": [first, first, first, pd.NaT],
                            "members_end": 100, "matched_end": [75, 75, 40, 40],
                            "final_match_rate": [0.75, 0.75, 0.40, 0.40], "split_profiles_end": 0,
                            "never_fixable_users": 0, "days_to_90pct": [1.0, 1.0, 1.0, None],
                            "days_to_99pct": [1.0, 1.0, 11.0, None]})
    f = metrics.migration_figures(summary, daily, switch="2026-02-15T00:00:00Z", switch_source="the switch parameter",
                                  start="2026-02-14", end="2026-02-16", plan_list=plans)
    rows = {p["plan"]: p for p in f["plans"]}
    assert rows["Rule only"]["no_effect_as"] == "do nothing"
    assert (rows["Rule only"]["days_to_90pct"], rows["Rule only"]["days_to_99pct"]) == (None, None)
    assert rows["switch only"]["no_effect_as"] is None and rows["switch only"]["days_to_90pct"] == 1
    from cohortlab.escaping import unescape_md

    text = unescape_md(summaries.migration_summary(f, {"event_identity_cutoff": "2026-01-15T00:00:00Z"}))
    assert ("- **Rule only**: 40.0% of 100 Mixpanel profiles at the end; 0 split profiles; 0 users can never be "
            "fixed (inactive after the plan's change); **no effect** in this window: every day the same match rate as "
            "do nothing (its changes: rule writes $mparticle_user_id from 2026-02-15 00:00 UTC).") in text
    assert "Rule only**: 40.0% of 100 Mixpanel profiles at the end; 0 split profiles; 0 users can never be fixed " \
           "(inactive after the plan's change); reaches" not in text
    assert "reaches 90% of its final rate 1 day after its first change" in text  # switch only
    # each page says what it counts, and the rule both follow (the Rule valued one way)
    assert ("A plan's Rule or SDK code starts on the date given with the plan, and a plan counts the Mixpanel "
            "profiles that reach an mParticle profile. The identity-gaps page values its remedies from the "
            "2026-01-15 00:00 UTC cutoff instead, and counts the cohort members' users a remedy brings into the "
            "audience once they are sent, so what a Rule gains there differs from these plans. Both pages follow one "
            "rule for a Rule and SDK code: they write from logged-in events only (a `$user_id`; in data without any, "
            "an event keyed by no device id), never onto a `$device:` profile.") in text
    assert "The window runs from 2026-02-14 to 2026-02-16." in text
    table = ui.format_for_people(ui.frame(f["plans"])[["plan", "days_to_90pct", "days_to_99pct"]])
    assert table.loc[2].tolist() == ["Rule only", "—", "—"]


def test_the_unmatched_found_in_mparticle_are_counted_in_plain_words():
    f = metrics.identity_gaps_figures(ACROSS, metrics.shared_mpids(ACROSS))
    assert "- **0** of the 2 unmatched members are in mParticle after all (found through another identity)" in \
        summaries.identity_gaps_summary(f)


# --------------------------------------------------------------------------- wording
def test_one_pending_profile_is_one_profile_not_these_1():
    loss = {"step": "not_yet_true", "kind": "minus", "users": 1, "share_of_members": 0.01, "remedy": "next_run"}
    assert summaries._remedy_words(loss) == "the next successful run sets this **1** profile true"
    assert summaries._remedy_words({**loss, "users": 3}) == "the next successful run sets these **3** profiles true"


def test_stale_profiles_are_not_said_to_be_cleared_by_a_re_export():
    """A re-export removes nothing (the identity-gaps page's remedies say so): what sets a stale
    profile false is a dynamic sync's removes or a full refresh."""
    loss = {"step": "stale_true", "kind": "plus", "users": 7, "share_of_members": 0.03, "remedy": "re_export"}
    words = summaries._remedy_words(loss)
    assert words.startswith("a dynamic sync's next successful run sends the removes that set these **7** profiles false")
    assert "a re-export removes nothing" in words and "would clear" not in words


def test_tables_write_negative_numbers_with_the_minus_sign_and_times_as_the_sentences_do():
    df = pd.DataFrame({"audience": ["= true", "= false"], "difference": [-2, 0], "mpid": ["-5", "7"],
                       "note": ["writes from 2026-01-15T00:00:00Z; re-export at 2026-03-01T00:00:00Z",
                                "the run at 2026-02-28 00:00:00 wrote false"]})
    out = ui.format_for_people(df)
    assert out["difference"].tolist() == ["−2", "0"]
    assert out["mpid"].tolist() == ["-5", "7"]  # an identifier keeps its characters
    assert out["note"].tolist() == ["writes from 2026-01-15 00:00 UTC; re-export at 2026-03-01 00:00 UTC",
                                    "the run at 2026-02-28 00:00 UTC wrote false"]


def test_gap_reasons_are_written_in_words_as_the_waterfall_writes_its_steps():
    from cohortlab import charts

    gaps = pd.DataFrame({"gap_reason": ["distinct_id_not_mpid", "mpid_not_found"], "users": [30, 7]})
    ax = charts.gaps_by_reason_chart(gaps).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["MPID of no mParticle profile", "$distinct_id not an MPID"]
    f = metrics.identity_gaps_figures(ACROSS, metrics.shared_mpids(ACROSS))
    assert metrics.figures_headline_identity_gaps(f)["most frequent gap reason"] == "MPID rounded through a float"
    assert "Most frequent gap reason among the unmatched: **MPID rounded through a float** (2 members)" in \
        summaries.identity_gaps_summary(f)


def test_tied_gap_reasons_are_each_named_none_picked():
    """Three reasons tied at one member each: the headline and the summary named the first (by
    name) as "the most frequent", as if the others were fewer (an end-to-end run met it)."""
    f = dict(metrics.identity_gaps_figures(ACROSS, metrics.shared_mpids(ACROSS)))
    f["by_gap_reason"] = [{"gap_reason": r, "users": 1} for r in
                          ("distinct_id_not_mpid", "malformed_mparticle_user_id", "mpid_not_found")]
    words = ["$distinct_id not an MPID", "$mparticle_user_id not an MPID", "MPID of no mParticle profile"]
    assert [metrics.top_gap_reasons(f)[i]["gap_reason"] for i in range(3)] == [r["gap_reason"] for r in f["by_gap_reason"]]
    assert metrics.figures_headline_identity_gaps(f)["most frequent gap reason"] == " / ".join(words)
    text = summaries.identity_gaps_summary(f)
    assert "Most frequent gap reasons among the unmatched, tied at 1 member each: " in text
    assert all(f"**{w}**" in text for w in words)
    f["by_gap_reason"][0]["users"] = 2  # no longer tied: one named
    assert metrics.figures_headline_identity_gaps(f)["most frequent gap reason"] == words[0]


def _sync_timeline(rows):
    """(run_at, members, adds, removes, failed, full_refresh, true_count, not_yet_true, stale_true)"""
    return pd.DataFrame(rows, columns=["run_at", "members", "adds", "removes", "failed", "full_refresh", "true_count",
                                       "not_yet_true", "stale_true"])


def test_the_sync_page_leads_with_the_sync_the_settings_configure():
    """With ``sync_type: one_time`` the headline and the overview are the one-time export's (as the
    other pages simulate it), and the dynamic replay is named as the alternative."""
    dynamic = _sync_timeline([(pd.Timestamp("2026-03-01 00:00"), 10, 10, 0, False, False, 8, 0, 0),
                         (pd.Timestamp("2026-03-01 00:15"), 9, 0, 1, False, False, 7, 0, 0)])
    one_time = _sync_timeline([(pd.Timestamp("2026-03-01 00:00"), 9, 10, 0, False, False, 8, 1, 2)])
    f = metrics.sync_figures({"C": dynamic}, {"C": one_time}, configured="one_time")
    assert (f["totals"]["stale true (last run)"], f["totals"]["missing (last run)"]) == (2, 1)
    # the card's label says what the summary says: missing, not "not yet true" (no run sends them;
    # the card read "not yet true (last run) 59" beside "59 missing")
    assert "not yet true (last run)" not in f["totals"] and f["totals"].units["missing (last run)"] == "count"
    text = summaries.sync_report_summary(json.loads(json.dumps(f, default=str)))
    assert text.startswith("The settings configure a **one-time export**")
    assert ("the one-time export (as configured) at 2026-03-01 00:00 UTC leaves **2** stale profiles and **1** "
            "missing profile") in text
    assert "A dynamic sync (2 runs) would leave 0 stale and 0 not yet true." in text
    # the default: the dynamic sync leads, as before
    d = metrics.sync_figures({"C": dynamic}, {"C": one_time})
    assert (d["configured"], d["totals"]["stale true (last run)"], d["totals"]["not yet true (last run)"]) == (
        "dynamic", 0, 0)
    assert "2 dynamic sync run" in summaries.sync_report_summary(d)


def test_with_the_event_identity_rule_off_no_unmatched_member_is_called_inactive_or_never_fixable():
    """``event_identity_cutoff: null``: ``active_after_cutoff`` is null for every member (no cutoff),
    which is not "inactive": the page said "0 of the unmatched were active ...; 3 were not" and
    counted every unmatched member found in mParticle as never fixable, beside a Rule that recovers them."""
    off = pd.DataFrame([
        {**_member("A", "p1", 11)},
        {**_member("A", "cust-1", None, "distinct_id_not_mpid", "cust-1"), "recoverable_via": "customer_id"},
        {**_member("A", "cust-2", None, "distinct_id_not_mpid", "cust-2"), "recoverable_via": "customer_id"},
        {**_member("A", "cust-3", None, "distinct_id_not_mpid", "cust-3")},
    ]).assign(active_after_cutoff=None)
    for frame in (off, off.assign(n=1)):  # per member, and counted
        f = json.loads(json.dumps(metrics.identity_gaps_figures(frame, metrics.shared_mpids(frame))))
        assert (f["unmatched"], f["in_mparticle"], f["not_in_mparticle"]) == (3, 2, 1)
        assert f["never_fixable"] is None and f["active_after_cutoff"] is None and f["inactive_since_cutoff"] is None
        assert f["activity"] == []
        assert metrics.figures_headline_identity_gaps(f)["never fixable (cohort members in mParticle, inactive since the cutoff)"] is None
        text = summaries.identity_gaps_summary(f, {"event_identity_cutoff": None})
        assert "; 3 were not" not in text and "inactive since the cutoff" not in text
        assert "The event identity rule is off in these settings" in text
        assert "**1** unmatched member is found under none of their identities" in text
    # with the rule on, a member without activity since the cutoff is inactive, as before
    on = off.assign(active_after_cutoff=False)
    f = metrics.identity_gaps_figures(on, metrics.shared_mpids(on))
    assert (f["never_fixable"], f["active_after_cutoff"], f["inactive_since_cutoff"]) == (2, 0, 3)
    assert "- 0 of the unmatched were active on or after the 2026-01-15 00:00 UTC cutoff; 3 were not." in \
        summaries.identity_gaps_summary(f)


def test_the_settings_line_of_a_page_header_tells_apart_settings_that_change_the_story():
    """The header said "one-time sync every 15 min" for a one-time export (which runs once), and
    showed the same line for settings that differ in resolution time, re-exports or EIT timeline."""
    line = settings_summary({"sync_type": "one_time"})
    assert "one-time export at the first run" in line and "every 15 min" not in line
    assert "one-time export at 2026-02-01 00:00 UTC" in settings_summary(
        {"sync_type": "one_time", "start": "2026-02-01"})
    default = settings_summary(None)
    assert default == ('fallback data; event cutoff 2026-01-15 00:00 UTC; protection only_update; dynamic sync every '
                       '15 min; attribute "{cohort_name}"; no pauses')  # unchanged: earlier runs stay comparable
    others = [{"resolution_time": "as_of"}, {"reexport_at": ["2026-03-20"]}, {"apply_order": "adds_then_removes"},
              {"snapshot_ttl": "36h"}, {"refresh_clears_stale": False}, {"start": "2026-02-01"},
              {"eit_timeline": [{"since": None, "eit": "customer_id"}, {"since": "2026-02-10", "eit": "mparticle_id"}]},
              {"pauses": [{"start": "2026-02-24", "end": "2026-02-25", "ends_with": "reconnect"}]}]
    lines = [settings_summary(o) for o in others]
    assert len(set(lines + [default])) == len(others) + 1, lines
    assert "EIT customer_id, then mparticle_id from 2026-02-10 00:00 UTC" in lines[-2]
    assert "2026-02-24 00:00 UTC to 2026-02-25 00:00 UTC (then a reconnect)" in lines[-1]
    assert "full refresh after a gap of 36 hours" in lines[3]


def test_a_cohort_without_members_is_said_to_have_none_not_a_rate_of_n_a():
    """The match-rates summary said "Nobody: 0 members in Mixpanel, 0 reach a profile (n/a of its
    members)" where its table shows "—"; a stale profile of an emptied cohort said "(n/a of members)";
    with no member in any cohort the identity-gaps page said "All 0 cohort members reach an mParticle
    profile"."""
    empty = {"members": 0, "matched": 0, "match_rate": None, "audience": 0, "losses": []}
    emptied = {**empty, "audience": 2, "losses": [{"step": "stale_true", "kind": "plus", "users": 2,
                                                   "share_of_members": None, "remedy": "re_export"}]}
    f = {"totals": {"members": 5, "matched": 5, "match_rate": 1.0, "cohorts": 3, "audience": 7},
         "losses": [], "cohorts": {"Buyers": {"members": 5, "matched": 5, "match_rate": 1.0, "audience": 5,
                                               "losses": []}, "Nobody": empty, "Emptied": emptied}}
    text = summaries.match_rates_summary(f)
    assert "n/a" not in text
    assert "**Nobody**: no members in Mixpanel at the chosen time; the audience holds **0** profiles." in text
    assert ("**Emptied**: no members in Mixpanel at the chosen time; the audience holds **2** profiles. Where they "
            "come from:\n- +2: profiles still true although their member left the cohort;") in text
    none = metrics.identity_gaps_figures(ACROSS.iloc[0:0], metrics.shared_mpids(ACROSS.iloc[0:0]))
    assert summaries.identity_gaps_summary(none).startswith("**No cohort members found**")


def test_no_remedy_is_not_blamed_on_unmatched_members_when_there_are_none():
    """With every member matched the remedies chart said "the unmatched members are not in
    mParticle or inactive"."""
    assert "the unmatched members" not in summaries.no_remedy_recovers({"unmatched": 0})
    assert "every member reaches an mParticle profile" in summaries.no_remedy_recovers({"unmatched": 0})
    # with unmatched members, the reason is what a remedy needs, not a claim about them: a world
    # without events said "found under none of their identities, or inactive" of members found
    # in mParticle and active by their $last_seen
    assert summaries.no_remedy_recovers({"unmatched": 4}) == (
        "no remedy recovers anyone: a Rule and SDK code write from logged-in events, and no unmatched member "
        "found under one of their identities has one since the remedies start; no member waits to be re-sent")


def test_the_migration_page_header_does_not_put_later_days_under_an_earlier_as_of():
    """With ``-p as_of=2026-02-26T12:00:00Z`` the EIT-migration page's header said "as of
    2026-02-26 12:00 UTC" above plans predicted to 2026-02-28 (its window: the events' range)."""
    text = summaries.migration_as_of("2026-02-26T12:00:00Z", "2025-11-01", "2026-02-28")
    assert text == ("2026-02-26 12:00 UTC for the validation; the plans are predicted day by day from 2025-11-01 "
                    "to 2026-02-28")
    assert summaries.migration_as_of(None, "2025-11-01", "2026-02-28") == "2026-02-28 (the last day predicted, from 2025-11-01)"


def test_a_time_with_an_offset_is_written_in_utc_in_the_page_header():
    """A notebook run with ``as_of = "2026-03-01T05:30:00+05:30"`` (JupyterLab: the parameter as
    typed, not checked by ``cohortlab report``) said "as of 2026-03-01 05:30 UTC+05:30", an
    instant 5.5 hours off."""
    assert summaries.readable_times("2026-03-01T05:30:00+05:30") == "2026-03-01 00:00 UTC"
    assert summaries.readable_times("until 2026-02-28T19:00:00-0500.") == "until 2026-03-01 00:00 UTC."
    assert summaries.readable_times("2026-03-01T00:00:00Z and 2026-03-01 12:00:00") == \
        "2026-03-01 00:00 UTC and 2026-03-01 12:00 UTC"
    assert summaries.readable_times("2026-03-01 00:00 UTC, 2026-03-01") == "2026-03-01 00:00 UTC, 2026-03-01"
    assert ui.context(["A"], None, as_of="2026-03-01T05:30:00+05:30")["as_of"] == "2026-03-01 00:00 UTC"
    assert summaries.migration_as_of("2026-02-28T19:00:00-05:00", "2025-11-01", "2026-02-28").startswith(
        "2026-03-01 00:00 UTC for the validation")


def test_the_migration_page_header_names_what_its_plans_count_and_what_its_cohorts_are_for(tmp_path):
    """The EIT page's header named the report's cohorts above plans that count every Mixpanel
    profile with events: its cohorts are only those of the validation."""
    from cohortlab.report.pages import page_context
    from cohortlab.report.runner import NotebookResult

    def header(cohorts, population=None):
        ctx = ui.context(cohorts, None, db="w.duckdb", settings={}, as_of="2026-02-28", population=population)
        result = NotebookResult(name="eit_migration", source=tmp_path / "eit_migration.ipynb",
                                ipynb=tmp_path / "eit_migration" / "eit_migration.ipynb")
        result.metrics = json.loads(json.dumps({"context": ctx}))
        return page_context(result, {})

    validated = header(["Power Users", "Recent Purchasers"], "every Mixpanel profile with events")
    assert list(validated)[:2] == ["population", "cohorts"]
    assert validated["population"] == "every Mixpanel profile with events"
    assert validated["cohorts"] == "Power Users, Recent Purchasers (the validation)"
    assert header([], "every Mixpanel profile with events")["cohorts"] == "none (no validation)"
    plain = header(["Power Users"])  # the other pages: their figures count the cohorts' members
    assert "population" not in plain and plain["cohorts"] == "Power Users"


def test_one_cohort_has_one_audience():
    """A report of one cohort said "across 1 cohort; the mParticle audiences hold 99 profiles"."""
    one = {"members": 102, "matched": 99, "match_rate": 99 / 102, "audience": 99, "losses": []}
    f = {"totals": {"members": 102, "matched": 99, "match_rate": 99 / 102, "cohorts": 1, "audience": 99},
         "losses": [], "cohorts": {"Power Users": one}}
    assert "across 1 cohort; the mParticle audience holds **99** profiles." in summaries.match_rates_summary(f)
    f["totals"]["cohorts"] = 2
    f["cohorts"]["Other"] = one
    assert "across 2 cohorts; the mParticle audiences hold" in summaries.match_rates_summary(f)


def test_with_a_one_time_export_configured_the_dynamic_charts_are_named_as_such():
    """``sync_type: one_time``: the per-cohort charts replay a dynamic sync; titled "mParticle
    audience" they showed 146 profiles where the configured export leaves 150, and their "no stale
    or pending profiles" stood beside a summary counting 13 stale and 9 missing."""
    assert summaries.dynamic_replay_words("dynamic") == ("", "")
    suffix, prefix = summaries.dynamic_replay_words("one_time")
    assert suffix == " (dynamic sync, not the one configured)"
    assert prefix.startswith("What a dynamic sync would do (the settings configure a one-time export")
    dynamic = _sync_timeline([(pd.Timestamp("2026-03-01 00:00"), 10, 10, 0, False, False, 8, 0, 0)])
    one_time = _sync_timeline([(pd.Timestamp("2026-03-01 00:00"), 9, 10, 0, False, False, 8, 1, 2)])
    f = metrics.sync_figures({"C": dynamic}, {"C": one_time}, configured="one_time")
    text = summaries.sync_report_summary(json.loads(json.dumps(f, default=str)))
    assert "the figures below the charts' dynamic replay" not in text
    assert "the charts replay a dynamic sync instead" in text


def test_the_waterfall_caption_names_every_kind_of_step():
    """The caption said "subtract members lost per gap reason and duplicates, then the sync's pending
    and stale profiles": nothing of the orphans a create_and_update feed adds (+584 in a legacy world),
    and stale profiles are added, not subtracted."""
    from cohortlab.notebooks.build import MATCH_RATES

    cell = next(c.source for c in MATCH_RATES.cells if "waterfall_chart" in c.source)
    assert "orphans" in cell and "add the stale profiles" in cell


def test_a_one_time_exports_missing_profiles_are_not_called_pending():
    """The overview said "15 stale, 55 pending" for a one-time export, whose per-cohort lines call
    the same profiles missing: no run will send them."""
    dynamic = _sync_timeline([(pd.Timestamp("2026-03-01 00:00"), 10, 10, 0, False, False, 8, 0, 0)])
    one_time = _sync_timeline([(pd.Timestamp("2026-03-01 00:00"), 9, 10, 0, False, False, 8, 1, 2)])
    f = json.loads(json.dumps(metrics.sync_figures({"C": dynamic}, {"C": one_time}, configured="one_time"), default=str))
    text = summaries.sync_report_summary(f)
    assert "2 stale, 1 missing;" in text and "pending" not in text.split("\n")[0]
    d = json.loads(json.dumps(metrics.sync_figures({"C": dynamic}, {"C": one_time}), default=str))
    assert "0 stale, 0 pending;" in summaries.sync_report_summary(d)


def _three_not_yet_true(**attrs):
    """A stand-in simulation of cohort A: 10 members, all matched, 3 of their profiles not yet true."""
    waterfall = pd.DataFrame([("members", "x", "total", 10), ("shared_mpid", "x", "minus", 0),
                              ("should_be_true", "x", "total", 10), ("not_yet_true", "x", "minus", 3),
                              ("stale_true", "x", "plus", 0), ("audience", "x", "total", 7)],
                             columns=["step", "label", "kind", "count"])
    resolution = pd.DataFrame({"cohort_name": ["A"] * 10, "identifier_source": "event_property",
                               "status": "matched", "gap_reason": None, "recoverable_via": None,
                               "active_after_cutoff": True})
    return type("Sim", (), {"resolution": resolution, "as_of": None, "waterfall": waterfall, **attrs})()


def test_a_one_time_exports_matched_profiles_not_true_are_missing_on_the_match_rates_page_too():
    """With ``sync_type: one_time`` no run sends a member the export left out: the sync-timeline page
    calls them missing, and the match-rates page must not promise that "the next successful run
    sets them true" (it did, for the same 59 profiles the sync page called missing)."""
    from cohortlab.settings import SyncSettings

    def sim(sync_type):
        return _three_not_yet_true(settings=SyncSettings(sync_type=sync_type))

    one_time = summaries.match_rates_summary(metrics.match_rates_figures({"A": sim("one_time")}, sent_not_true={}))
    line = next(ln for ln in one_time.splitlines() if ln.startswith("- −3"))
    assert "missing" in line and "the one-time export did not send them" in line
    assert "next successful run" not in line and "pending" not in line
    assert "only a new export (a re-export, `reexport_at`) sets these **3** profiles true" in line
    # the largest step, in the summary's first line and on the index card, is named so too
    assert "The largest step between the two: missing (one-time export) (−3)." in one_time
    f = metrics.match_rates_figures({"A": sim("one_time")}, sent_not_true={})
    assert dict(metrics.figures_headline_match_rates(f))["largest loss, all cohorts: missing (one-time export)"] == 3
    dynamic = summaries.match_rates_summary(metrics.match_rates_figures({"A": sim("dynamic")}, sent_not_true={}))
    assert "pending until a successful run); the next successful run sets these **3** profiles true" in dynamic
    assert "The largest step between the two: not yet true (−3)." in dynamic


def test_the_eit_page_builds_the_standard_plans_with_the_settings_as_migrate_compare_does():
    """The EIT page's standard plans take the settings' event identity cutoff and the EIT before
    the switch, as ``migrate compare --settings`` does (with ``event_identity_cutoff:
    null`` and ``fallback: strict`` the page predicted "do nothing" at 68.2% with the default
    cutoff, under a header saying "event rule off", where ``migrate compare`` gave 0.0%)."""
    from cohortlab.migration.switch import plans_around
    from cohortlab.report import insights

    settings = {"event_identity_cutoff": None, "fallback": "strict",
                "eit_timeline": [{"since": None, "eit": "email"}, {"since": "2026-02-15T00:00:00Z", "eit": "mparticle_id"}]}
    at = pd.Timestamp("2026-02-15T00:00:00Z").to_pydatetime()
    page = insights.migration_plans(None, switch_at=at, settings=settings)
    assert page == plans_around(at, settings=settings)
    assert [p.name for p in page] == ["switch only", "switch + Rule", "Rule only", "do nothing"]
    assert all(p.event_identity_cutoff is None for p in page)
    assert page[-1].eit_at(pd.Timestamp("2026-03-01").to_pydatetime()) == "email"
    # without settings: the defaults, as before
    assert insights.migration_plans(None, switch_at=at) == plans_around(at)


def test_the_index_and_metrics_json_keep_the_underscores_of_a_step_named_on_the_page():
    """metrics.json's summary (the index card's finding) is the page's first line as plain text:
    emphasis and code marks go, an underscore inside a word stays ("The largest step
    between the two: $distinctid not an MPID (−248)." on the index, "$distinct_id" on the page)."""
    f = {"totals": {"cohorts": 1, "members": 10, "matched": 7, "match_rate": 0.7, "audience": 7},
         "losses": [{"step": "unmatched:distinct_id_not_mpid", "kind": "minus", "users": 3}], "cohorts": {}}
    first = summaries.match_rates_summary(f).split("\n")[0]
    assert ui._plain(first) == ("7 of 10 Mixpanel cohort members (70.0% of members) reach an mParticle profile across "
                                "1 cohort; the mParticle audience holds 7 profiles. The largest step between the two: "
                                "$distinct_id not an MPID (−3).")
    assert ui._plain("**bold** _em_ __strong__ `$mparticle_user_id` and a \\_ kept") == (
        "bold em strong $mparticle_user_id and a _ kept")


def test_a_paused_window_cut_by_since_says_it_began_before_the_first_run_shown():
    """``since`` shows the runs from that time on: a pause already running then began earlier (the
    header's settings line dates it), so the table must not give the first run shown as its first
    failed run ("first failed run 2026-02-27 00:00" under a header "paused 2026-02-24
    06:00 UTC to 2026-02-27 18:00 UTC")."""
    cut = metrics.window(DEMO_LIKE, "2026-02-24T07:00:00Z")
    rows = metrics._rows(metrics.paused_windows(cut))
    assert [r["started_before"] for r in rows] == [True, False]
    table = ui.paused_windows_table(rows, last_run="2026-03-01T00:00:00")
    assert table["first failed run"].tolist() == ["before 2026-02-24 08:00 (the first run shown)", "2026-02-28 20:00"]
    assert table["failed runs"].tolist() == [1, 3]
    # cut where no pause runs, or not cut: the first failed run is the pause's own
    assert not any(r["started_before"] for r in metrics._rows(metrics.paused_windows(metrics.window(DEMO_LIKE, "2026-02-27T18:00:00Z"))))
    whole = ui.paused_windows_table(metrics._rows(metrics.paused_windows(metrics.window(DEMO_LIKE, None))))
    assert whole["first failed run"].tolist() == ["2026-02-24 06:00", "2026-02-28 20:00"]


def test_the_eit_pages_window_with_repeated_activity_ends_one_period_past_the_last_event():
    """``activity: repeat`` projects the activity past the last event: the page's default window
    ends one period later, as ``migrate compare --activity repeat`` (the page stopped
    at the last event's day, so the projection added nothing and its figures differed from the
    CLI's: 69.8% vs 70.0%)."""
    import datetime as dt

    import pytest

    from cohortlab import Lab
    from cohortlab.report import insights

    with Lab() as lab:
        for did, t in (("a", "2026-01-05 10:00:00"), ("b", "2026-02-28 10:00:00")):
            lab.engine.execute("INSERT INTO mp_events (event, time, distinct_id, insert_id) "
                               "VALUES ('e', CAST(? AS TIMESTAMP), ?, ?)", [t, did, did])
        assert insights.migration_window(lab) == (dt.date(2026, 1, 5), dt.date(2026, 2, 28))
        assert insights.migration_window(lab, activity="repeat") == (dt.date(2026, 1, 5), dt.date(2026, 3, 30))
        assert insights.migration_window(lab, "2026-02-01", "2026-04-01", activity="repeat") == (
            dt.date(2026, 2, 1), dt.date(2026, 4, 1))
        with pytest.raises(ValueError, match="would change nothing"):
            insights.migration_window(lab, None, "2026-02-20", activity="repeat")


def test_matched_profiles_already_sent_are_not_promised_to_the_next_run():
    """A matched member mParticle already holds (sent by a successful run) whose profile is not true
    (a remove sent for another Mixpanel profile of the same MPID wrote false over it) is sent again
    by no diff run: the page said "the next successful run sets these 19 profiles true" of 19 such
    profiles, with no pause and every run successful."""
    sim = _three_not_yet_true()
    every = summaries.match_rates_summary(metrics.match_rates_figures({"A": sim}, None, None, {"A": 3}))
    line = next(ln for ln in every.splitlines() if ln.startswith("- −3"))
    assert "next successful run" not in line and "pending" not in line
    assert line == ("- −3 (30.0% of members): matched profiles not true in mParticle although already sent (a remove "
                    "sent for another Mixpanel profile of the same MPID set them false, or their profile did not exist "
                    "yet when they were sent); no diff run sends them again: only a full sync (a re-export, a "
                    "reconnect, or a full refresh after a pause longer than `snapshot_ttl`) sets these **3** profiles "
                    "true.")
    some = summaries.match_rates_summary(metrics.match_rates_figures({"A": sim}, None, None, {"A": 1}))
    assert ("the next successful run sets **2** of them true; the other **1**, already sent (a remove for another "
            "Mixpanel profile of the same MPID set it false, or its profile did not exist yet when sent), only a full "
            "sync (a re-export, a reconnect, or a full refresh after a pause longer than `snapshot_ttl`) sets it "
            "true.") in some
    none = summaries.match_rates_summary(metrics.match_rates_figures({"A": sim}, None, None, {"A": 0}))
    assert "; the next successful run sets these **3** profiles true." in none


def test_the_sync_page_does_not_call_profiles_already_sent_pending():
    """The sync page said "0 stale, 23 pending" of 23 profiles that every run had sent (a remove for
    another Mixpanel profile of the same MPID wrote false over them): no run will send them."""
    tl = _sync_timeline([(pd.Timestamp("2026-03-01 00:00"), 10, 10, 0, False, False, 8, 0, 0),
                         (pd.Timestamp("2026-03-01 00:15"), 12, 2, 0, False, False, 9, 3, 0)])
    ot = _sync_timeline([(pd.Timestamp("2026-03-01 00:00"), 10, 10, 0, False, False, 8, 0, 0)])
    every = summaries.sync_report_summary(metrics.sync_figures({"C": tl}, {"C": ot}, sent_not_true={"C": 3}))
    assert ("0 stale, 3 not yet true (all already sent: no diff run sends them again, only a full sync sets them "
            "true); 0 of 2 runs failed.") in every and "pending" not in every
    assert ("profiles with the attribute true: 3 not yet true (all already sent: no diff run sends them again, only "
            "a full sync sets them true), 0 stale") in every
    some = summaries.sync_report_summary(metrics.sync_figures({"C": tl}, {"C": ot}, sent_not_true={"C": 1}))
    assert "3 not yet true (1 of them already sent: no diff run sends them again" in some
    assert "3 not yet true (1 already sent: no diff run sends them again" in some
    one = summaries.sync_report_summary(metrics.sync_figures({"C": tl.assign(not_yet_true=[0, 1])}, {"C": ot},
                                                             sent_not_true={"C": 1}))
    assert "0 stale, 1 not yet true (already sent: no diff run sends them again" in one
    none = summaries.sync_report_summary(metrics.sync_figures({"C": tl}, {"C": ot}, sent_not_true={"C": 0}))
    assert "0 stale, 3 pending; 0 of 2 runs failed." in none and "already sent" not in none


def test_a_switch_the_report_read_from_a_manifest_is_not_called_the_switch_parameter():
    from cohortlab import Lab
    from cohortlab.report import insights

    with Lab() as lab:
        at, given = insights.find_switch(lab, switch="2026-02-10")
        assert (at.isoformat()[:16], given) == ("2026-02-10T00:00", "the switch parameter")
        assert insights.find_switch(lab, switch="2026-02-10", switch_from="manifest")[1] == (
            "the synthetic world's manifest (manifest.json: its EIT step to mparticle_id)")


def test_the_eit_card_names_no_farthest_cohort_when_every_validated_cohort_is_as_predicted():
    """w1: every validated cohort observed 100.0%, predicted 100.0%, 0 members differ; the card named
    one of them "farthest from its prediction"."""
    def row(name, members, predicted, observed, differ=0):
        return {"cohort_name": name, "members": members, "predicted_matched": predicted, "observed_matched": observed,
                "predicted_match_rate": predicted / members if members else None,
                "observed_match_rate": observed / members if members else None, "users_differ": differ}

    plan = {"plan": "switch only", "final_match_rate": 0.69, "split_profiles_end": 70, "never_fixable_users": 0}
    agree = {"plans": [plan], "best": ["switch only"],
             "validation": {"cohorts": [row("A", 46, 46, 46), row("B", 32, 32, 32), row("Nobody", 0, 0, 0)]}}
    head = metrics.figures_headline_migration(agree)
    assert head["validated cohorts, each exactly as predicted (no member differs)"] == 2
    assert not any("farthest" in k for k in head)
    assert set(head.stable_keys.values()) & {"validated_cohort", "validated_observed_match_rate"} == set()
    assert head.stable_keys["validated cohorts, each exactly as predicted (no member differs)"] == (
        "validated_cohorts_as_predicted")
    # one cohort off by a member: it is named, with its own rates
    agree["validation"]["cohorts"][1] = row("B", 32, 31, 32, differ=1)
    head = metrics.figures_headline_migration(agree)
    assert head["validated cohort farthest from its prediction"] == "B"
    assert head["its predicted match rate (of its members)"] == 31 / 32


def test_counts_of_one_are_singular_in_the_summaries():
    """w2's Power Users, one member: "1 members in Mixpanel", "the audience holds 1 profiles",
    "1 were not", "1 Mixpanel members face 1 mParticle profiles"."""
    one = {"members": 1, "matched": 0, "match_rate": 0.0, "audience": 1, "losses": []}
    f = {"totals": {"members": 1, "matched": 0, "match_rate": 0.0, "cohorts": 1, "audience": 1}, "losses": [],
         "cohorts": {"Power Users": one}}
    text = summaries.match_rates_summary(f)
    assert "the mParticle audience holds **1** profile." in text
    assert ("**Power Users**: 1 member in Mixpanel, 0 reach a profile (0.0% of its members); the audience holds "
            "**1** profile.") in text
    assert "1 member in Mixpanel, 1 reaches a profile" in summaries.match_rates_summary(
        {**f, "cohorts": {"Power Users": {**one, "matched": 1, "match_rate": 1.0}}})
    assert summaries.activity_words({"active_after_cutoff": 7, "inactive_since_cutoff": 1}).endswith("; 1 was not.")
    tl = _sync_timeline([(pd.Timestamp("2026-03-01 00:00"), 1, 1, 0, False, False, 1, 0, 0)])
    overview = summaries.sync_report_summary(metrics.sync_figures({"C": tl}, {"C": tl}))
    assert overview.startswith("**After the last run, 1 Mixpanel member faces 1 mParticle profile with the attribute "
                               "true** across 1 cohort")


def test_a_cohort_never_with_a_member_says_so_in_place_of_its_sync_charts():
    empty = _sync_timeline([(pd.Timestamp("2026-03-01 00:00"), 0, 0, 0, False, False, 0, 0, 0),
                            (pd.Timestamp("2026-03-01 00:15"), 0, 0, 0, False, False, 0, 0, 0)])
    assert summaries.never_a_member({"runs": 2}, empty, empty) == (
        "the cohort never had a member (0 members at any of the 2 runs, no profile ever true)")
    one = empty.assign(members=[0, 1])
    assert summaries.never_a_member({"runs": 2}, one, empty) is None
    assert summaries.never_a_member({"runs": 0}, empty.iloc[0:0]) is None  # no run: "no sync runs in the window"


def test_pause_advice_is_not_given_for_settings_of_a_one_time_export():
    """w1 with settings of a one-time export (no pauses) while the world ran a dynamic sync: 4
    profiles simulated true, observed false, were advised to add the export's failed window to the
    settings' pauses, which a one-time export ignores."""
    v = {"by_cause": {"snapshot_before_last_run": 0, "pause_not_modelled": 4, "unexplained": 5}}
    dynamic = summaries.verify_causes_text(v)
    assert "add the export's failed window to the settings' `pauses`" in dynamic
    once = summaries.verify_causes_text(v, "one_time")
    assert ("- **pause not modelled**: 4 profiles; the settings simulate a one-time export, which no pause affects "
            "and which never writes false: a profile it wrote true that mParticle shows false, or without the "
            "attribute, was not left as that export wrote it, so the feed runs another sync (a recurring one removes "
            "the members who left); simulate the sync the feed runs (`sync_type: dynamic`, its pauses and "
            "re-exports) rather than add a pause.") in once
    assert "`pauses`, or reconnect" not in once


def test_a_cohort_with_a_member_only_before_since_has_none_in_the_window_not_never():
    """mk_s1's Gone with since after its one member left: the runs shown have no member and no
    profile true, but the cohort had one before since, so the line is not 'never had a member'."""
    tl = _sync_timeline([(pd.Timestamp("2026-03-02 00:00"), 1, 1, 0, False, False, 1, 0, 0),
                         (pd.Timestamp("2026-03-03 00:00"), 0, 0, 1, False, False, 0, 0, 0),
                         (pd.Timestamp("2026-03-04 00:00"), 0, 0, 0, False, False, 0, 0, 0),
                         (pd.Timestamp("2026-03-05 00:00"), 0, 0, 0, False, False, 0, 0, 0)])
    empty = tl.assign(members=0, adds=0, removes=0, true_count=0)
    f = metrics.sync_figures({"Gone": metrics.window(tl, "2026-03-03T12:00:00Z"), "Nobody": metrics.window(empty, "2026-03-03T12:00:00Z")},
                             {"Gone": metrics.window(empty, "2026-03-03T12:00:00Z"), "Nobody": metrics.window(empty, "2026-03-03T12:00:00Z")})
    gone, nobody = f["cohorts"]["Gone"], f["cohorts"]["Nobody"]
    assert (gone["member_before_window"], nobody["member_before_window"]) == (True, False)
    line = summaries.never_a_member(gone["dynamic"], ui.frame(gone["runs"]), ui.frame(gone["one_time_runs"]),
                                    before_window=gone["member_before_window"])
    assert line == ("no member in the window (0 members at any of the 2 runs in it, no profile true; "
                    "the cohort had a member before it)")
    assert summaries.never_a_member(nobody["dynamic"], ui.frame(nobody["runs"]), ui.frame(nobody["one_time_runs"]),
                                    before_window=nobody["member_before_window"]) == (
        "the cohort never had a member (0 members at any of the 2 runs, no profile ever true)")
    # no since: nothing left out, never a member before the window
    assert metrics.sync_figures({"Gone": tl}, {"Gone": empty})["cohorts"]["Gone"]["member_before_window"] is False
