"""``outcome_counts_at``: the member and matched counts at earlier snapshots, read from one
simulation's tables, equal what a simulation up to each snapshot gives (the report's match rate
over time), whatever the settings."""

from __future__ import annotations

import pytest

from cohortlab.simulation.simulate import outcome_counts_at, simulate

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
        for t, members, matched in zip(times, got["members"], got["matched"]):
            assert (members, matched) == _counts_by_simulating(lab, cohort, t, settings), (cohort, t)
            checked += members
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
