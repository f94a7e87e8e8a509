"""``outcome_counts_at``: the member and matched counts at earlier snapshots, read from one
simulation's tables, equal what a simulation up to each snapshot gives (the report's match rate
over time), whatever the settings."""

from __future__ import annotations

import pytest

from cohortlab import Lab
from cohortlab.loaders.folder import load_world
from cohortlab.simulation.simulate import outcome_counts_at, simulate


@pytest.fixture(scope="module")
def world_lab(tmp_path_factory):
    pytest.importorskip("cohortlab.synth")
    from cohortlab.synth import generate

    world = tmp_path_factory.mktemp("outcomes_at") / "world"
    generate(world, users=500, seed=11, scenario="mid_migration")
    lab = Lab()
    load_world(lab, world)
    yield lab
    lab.close()


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


SETTINGS = {
    "defaults (send time)": {},
    "as-of resolution": {"resolution_time": "as_of"},
    # runs every 7 h: snapshots fall between runs, so members enter without a decision (resolved at t)
    "off-grid cadence": {"cadence": "7h"},
    "paused export, create_and_update": {
        "protection": "create_and_update",
        "pauses": [{"start": "2026-02-24T06:00:00Z", "end": "2026-02-27T18:00:00Z"}],
    },
    "one-time export with a re-export": {"sync_type": "one_time", "reexport_at": ["2026-02-26T12:00:00Z"]},
    "start after the first snapshot, strict fallback": {"start": "2026-02-25T12:00:00Z", "fallback": "strict"},
}


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
