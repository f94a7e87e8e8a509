"""The sync page's sentences when orphans are true (protection create_and_update): the profiles
created for unmatched members are neither matched members' profiles nor counted by stale_true,
and a one-time export keeps the orphan of a member who left true (docs/rules.md#orphans)."""

from __future__ import annotations

import pytest

from cohortlab import Lab
from cohortlab.report import insights, metrics, summaries
from tests.simulation.conftest import Data

C = "Power Users"
SETTINGS = {"protection": "create_and_update", "cadence": "12h", "reexport_at": ["2026-03-02T00:00"]}


@pytest.fixture(scope="module")
def orphan_world():
    """Two members whose $mparticle_user_id is no MPID (an orphan each): none at the first run,
    both from 2026-03-02, only u1 from 2026-03-03. A one-time export at the first run and its
    re-export at 2026-03-02 leave both orphans true; a dynamic sync removed u2's."""
    with Lab() as lab:
        data = Data(lab)
        data.profile("u1", mparticle_user_id="cust-1")
        data.profile("u2", mparticle_user_id="cust-2")
        data.snapshot(C, "2026-03-01T00:00", [])
        data.snapshot(C, "2026-03-02T00:00", ["u1", "u2"])
        data.snapshot(C, "2026-03-03T00:00", ["u1"])
        dynamic = insights.simulate_all(lab, [C], settings=insights.with_sync_type(SETTINGS, "dynamic"))
        one_time = insights.timelines_all(lab, [C], settings=insights.with_sync_type(SETTINGS, "one_time"))
        yield metrics.sync_figures({c: s.timeline for c, s in dynamic.items()}, one_time,
                                   sent_not_true=insights.sent_not_true(dynamic),
                                   stale_orphans=insights.stale_orphans(lab, dynamic, one_time, settings=SETTINGS))


def test_the_audience_of_orphans_alone_is_not_said_to_be_the_matched_members_profiles(orphan_world):
    dyn = orphan_world["cohorts"][C]["dynamic"]
    assert (dyn["members"], dyn["true_count"], dyn["true_linked"], dyn["orphans_true"], dyn["stale_orphans"]) == (
        1, 1, 0, 1, 0)
    assert summaries.no_staleness(dyn) == (
        "no stale or pending profiles of matched members after any of the 5 runs (the chart counts only those; "
        "after the last run the audience holds 1 profile, an orphan created for an unmatched member, for the "
        "1 member: no member matched)")
    mixed = {"runs": 577, "members": 9, "true_count": 7, "true_linked": 5, "orphans_true": 2}
    assert summaries.no_staleness(mixed).endswith(
        "after the last run the audience holds 5 profiles of matched members and 2 orphans created for "
        "unmatched members, for the 9 members)")


def test_a_one_time_export_counts_the_orphan_of_a_member_who_left_and_names_its_re_export(orphan_world):
    one = orphan_world["cohorts"][C]["one_time"]
    # the chart's last point (true_count against members) and the sentence read the same figures
    assert (one["members"], one["true_count"], one["stale_true"], one["stale_orphans"], one["full_syncs"]) == (
        1, 2, 0, 1, 1)
    assert one["reexports"] == ["2026-03-02 00:00:00"]
    text = summaries.sync_report_summary(orphan_world)
    assert ("A one-time export at the first run and a re-export at 2026-03-02 00:00 UTC would now leave **0** "
            "stale profiles (besides 1 orphan of a member who left, still true) and **0** missing profiles: "
            "2 profiles with the attribute true for 1 member.") in text
    assert ("After the last run Mixpanel has **1** member and mParticle **1** profile with the attribute true "
            "(an orphan created for an unmatched member): 0 not yet true, 0 stale") in text
    configured = summaries.sync_summary(C, orphan_world["cohorts"][C]["dynamic"], one, "one_time")
    assert configured.startswith(
        "**Power Users**: the one-time export (as configured) at 2026-03-01 00:00 UTC and a re-export at "
        "2026-03-02 00:00 UTC leave **0** stale profiles (besides 1 orphan of a member who left, still true) "
        "and **0** missing profiles after the last run: 2 profiles with the attribute true for 1 Mixpanel member.")


def test_the_overview_of_a_configured_one_time_export_counts_its_stale_orphans_too(orphan_world):
    stats = {C: orphan_world["cohorts"][C]["one_time"]}
    assert summaries.sync_overview(stats, "one_time").startswith(
        "**After the last run, 1 Mixpanel member faces 2 mParticle profiles with the attribute true** across "
        "1 cohort: 0 stale (besides 1 orphan of a member who left, still true), 0 missing")


def test_stale_is_counted_one_way_in_the_cohort_lines_the_overview_metrics_and_the_card(orphan_world):
    """Red team rs3 (a configured one-time export re-exported, create_and_update): Orph's line said
    '2 stale profiles (1 of them an orphan ...)' where metrics.json's stale_true was 1, and the
    overview '2 stale (besides 1 orphan ...)' beside cohort lines adding to 3. stale_true counts
    matched members' profiles only, everywhere; the orphans of members who left are said apart,
    'besides', from one figure (stale_orphans; the card's stale_orphans_last_run)."""
    orph = dict(orphan_world["cohorts"][C]["one_time"], stale_true=1)  # rs3's Orph: 1 matched stale, 1 orphan
    gone = dict(orph, members=0, true_count=1, true_linked=1, orphans_true=0, stale_true=1, stale_orphans=0,
                reexports=[])
    stats = {"Gone": gone, "Orph": orph}
    h = metrics.sync_headline(stats, "one_time")
    assert (h["stale true (last run)"], h[metrics.STALE_ORPHANS]) == (2, 1)
    assert h.stable_keys[metrics.STALE_ORPHANS] == "stale_orphans_last_run"
    assert list(h)[-2:] == [metrics.STALE_ORPHANS, "missing (last run)"]  # beside "stale true"
    assert ": 2 stale (besides 1 orphan of a member who left, still true), 0 missing;" in summaries.sync_overview(
        stats, "one_time")
    assert "leave **1** stale profile (besides 1 orphan of a member who left, still true) and **0** missing" in (
        summaries.sync_summary("Orph", {}, orph, "one_time"))
    assert "leaves **1** stale profile and **0** missing" in summaries.sync_summary("Gone", {}, gone, "one_time")
    # no orphan of a member who left: no such figure on the card (the default report's keys)
    assert metrics.STALE_ORPHANS not in metrics.sync_headline({"Gone": gone}, "one_time")
    # a dynamic sync's line says them apart the same way
    dyn = dict(orphan_world["cohorts"][C]["dynamic"], stale_orphans=1)
    assert ", 0 stale (left the cohort, still true; at most 0), besides 1 orphan of a member who left, still true." in (
        summaries.sync_summary(C, dyn))


def test_one_orphan_among_the_profiles_true_is_said_in_the_singular():
    assert summaries._orphans_words({"true_count": 3, "orphans_true": 1}) == (
        " (1 of them an orphan created for an unmatched member)")
    assert summaries._orphans_words({"true_count": 3, "orphans_true": 2}) == (
        " (2 of them orphans created for unmatched members)")
