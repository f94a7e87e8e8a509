"""``outcome_counts_at``: the member and matched counts at earlier snapshots, read from one
simulation's tables, equal what a simulation up to each snapshot gives (the report's match rate
over time), whatever the settings."""

from __future__ import annotations

import pytest

from cohortlab.simulation.simulate import outcome_counts_at, simulate

from tests.depth import spread

from .conftest import SEND_TIME_SETTINGS


def _snapshots(lab, cohort):
    return [r[0] for r in lab.engine.query_rows(
        "SELECT DISTINCT as_of FROM mp_cohort_snapshots WHERE cohort_name = ? ORDER BY as_of", [cohort])]


def _counts_by_simulating(lab, cohort, t, settings):
    r = simulate(lab.engine, cohort, t, settings)
    try:
        return lab.engine.query_rows(
            "SELECT count(*), count(CASE WHEN status = 'matched' THEN 1 END) "
            f"FROM {r.tables['resolution'].table_name}")[0]
    finally:
        r.drop()


SETTINGS = {**SEND_TIME_SETTINGS, "as-of resolution": {"resolution_time": "as_of"}}


@pytest.mark.parametrize("name", list(SETTINGS))
def test_counts_at_earlier_snapshots_equal_a_simulation_up_to_each(world_lab, name):
    lab, settings = world_lab, SETTINGS[name]
    checked = 0
    for cohort in ("Power Users", "Recent Purchasers"):
        times = _snapshots(lab, cohort)
        assert len(times) >= 3
        latest = simulate(lab.engine, cohort, times[-1], settings)
        try:
            got = outcome_counts_at(latest, times)
        finally:
            latest.drop()
        assert list(got["as_of"].map(lambda t: t.replace(tzinfo=None))) == times
        counts = dict(zip(times, zip(got["members"], got["matched"])))
        for t in spread(times):  # each is a simulation up to t
            assert counts[t] == _counts_by_simulating(lab, cohort, t, settings), (cohort, t)
            checked += counts[t][0]
    assert checked > 0  # the world's cohorts have members: the comparison compared something


def test_times_in_any_order_repeated_and_between_snapshots(world_lab):
    """One pass answers every time: the answer for each time is the same whatever the order of
    the times, a repeated time, a time between two snapshots or before the first."""
    from datetime import timedelta

    lab, cohort = world_lab, "Recent Purchasers"
    snaps = _snapshots(lab, cohort)
    between = snaps[1] + (snaps[2] - snaps[1]) / 2
    times = [snaps[-1], snaps[0] - timedelta(days=1), between, snaps[1], snaps[-1], snaps[0]]
    latest = simulate(lab.engine, cohort, snaps[-1])
    try:
        got = outcome_counts_at(latest, times)
    finally:
        latest.drop()
    assert list(got["as_of"].map(lambda t: t.replace(tzinfo=None))) == times
    expected = {t: _counts_by_simulating(lab, cohort, t, None) for t in set(times) - {times[1]}}
    for t, members, matched in zip(times, got["members"], got["matched"]):
        assert (members, matched) == ((0, 0) if t == times[1] else expected[t]), t
    assert got["members"].iloc[0] == got["members"].iloc[4] > 0


def test_times_after_the_simulation_and_webhook_membership_are_refused(world_lab):
    times = _snapshots(world_lab, "Power Users")
    r = simulate(world_lab.engine, "Power Users", times[1])
    try:
        with pytest.raises(ValueError, match="after the simulation"):
            outcome_counts_at(r, [times[2]])
        r.source = "webhooks"
        with pytest.raises(ValueError, match="snapshot membership"):
            outcome_counts_at(r, [times[0]])
    finally:
        r.drop()


@pytest.mark.parametrize("case", ["left and came back", "entered during a pause"])
def test_a_member_mparticle_does_not_hold_is_resolved_at_the_time(data, case):
    """docs/rules.md#resolution-time: a member mParticle does not hold at t (it left and a run
    saw it leave, or it entered during a pause: a provisional decision only) is resolved at t.
    outcome_counts_at took the member's latest decision up to t, of an earlier stint or a
    provisional one, so it counted x unmatched ('undefined' until 00:20) where simulate(t)
    finds it matched (found by fuzzing)."""
    C = "Power Users"
    data.mpa(101)
    data.profile("x", mparticle_user_id="undefined", as_of="2026-03-01T00:00")
    data.profile("x", mparticle_user_id="101", as_of="2026-03-01T00:20")
    settings = {"cadence": "15m"}
    if case == "left and came back":  # runs at 00:00 (sends x), 00:15 (removes it), 00:30 (sends it again)
        data.snapshot(C, "2026-03-01T00:00", ["x", "y"])
        data.snapshot(C, "2026-03-01T00:05", ["y"])
        data.snapshot(C, "2026-03-01T00:25", ["x", "y"])
        t = "2026-03-01T00:27"
    else:  # x enters at 00:05; the runs at 00:15 and 00:30 fail (a provisional decision at 00:15)
        data.snapshot(C, "2026-03-01T00:00", ["y"])
        data.snapshot(C, "2026-03-01T00:05", ["x", "y"])
        settings["pauses"] = [{"start": "2026-03-01T00:10", "end": "2026-03-01T00:40"}]
        t = "2026-03-01T00:35"
    direct = data.lab.simulate(C, at=t, settings=settings)
    assert direct.resolution.set_index("distinct_id").status.to_dict() == {"x": "matched", "y": "unmatched"}
    latest = simulate(data.engine, C, "2026-03-01T01:00", settings)
    try:
        got = outcome_counts_at(latest, [t])
    finally:
        latest.drop()
    assert (got["members"].iloc[0], got["matched"].iloc[0]) == (2, 1)
