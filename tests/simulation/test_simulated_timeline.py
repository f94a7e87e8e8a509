"""The timeline of a sync without the rest of a simulation (``simulated_timeline``, what the sync
timeline page reads for the one-time export): the same frame as ``simulate(...).timeline``, and
nothing left behind."""

from __future__ import annotations

import pandas as pd
import pytest

from cohortlab.report import insights
from cohortlab.simulation.simulate import simulated_timeline

from .conftest import SEND_TIME_SETTINGS

C = "Power Users"


def _sim_tables(lab):
    return [r[0] for r in lab.engine.query_rows(
        "SELECT table_name FROM duckdb_tables() WHERE temporary AND table_name LIKE 'sim_%'")]


@pytest.mark.parametrize("settings", SEND_TIME_SETTINGS.values(), ids=SEND_TIME_SETTINGS.keys())
def test_the_timeline_alone_is_the_simulations_timeline(world_lab, settings):
    before = _sim_tables(world_lab)
    alone = simulated_timeline(world_lab.engine, C, settings=settings)
    assert _sim_tables(world_lab) == before  # the run's tables are dropped
    full = world_lab.simulate(C, settings=settings)
    members = dict(zip(full.waterfall.step, full.waterfall["count"]))["members"]
    assert len(alone) > 1 and alone["members"].iloc[-1] == members > 0
    pd.testing.assert_frame_equal(alone, full.timeline, check_exact=True)


def test_the_one_time_export_of_a_small_cohort(data):
    """Two members exported once: the export adds both; nothing is sent again, so a member who
    leaves stays true (stale) and one who enters is never true (pending)."""
    for d, m in {"a": 1, "b": 2, "c": 3}.items():
        data.mpa(m)
        data.profile(d, mparticle_user_id=str(m))
    data.snapshot(C, "2026-03-01T00:00", ["a", "b"])
    data.snapshot(C, "2026-03-02T00:00", ["b", "c"])
    tl = insights.timelines_all(data.lab, [C], settings={"sync_type": "one_time", "cadence": "12h"})[C]
    assert list(tl[["kind", "sent", "members", "adds", "true_count", "not_yet_true", "stale_true"]]
                .itertuples(index=False, name=None)) == [
        ("one_time", True, 2, 2, 2, 0, 0),
        ("observation", False, 2, 0, 2, 0, 0),
        ("observation", False, 2, 0, 2, 1, 1)]



def test_a_simulation_held_or_stored_is_read_not_played_again(data, monkeypatch):
    """The sync timeline page reads a one-time simulation stored earlier (``cohortlab simulate
    --store`` of the same settings) rather than playing the export again."""
    from cohortlab import Lab
    import cohortlab.simulation.simulate as simulate_module

    for d, m in {"a": 1, "b": 2}.items():
        data.mpa(m)
        data.profile(d, mparticle_user_id=str(m))
    data.snapshot(C, "2026-03-01T00:00", ["a", "b"])
    data.snapshot(C, "2026-03-02T00:00", ["b"])
    settings = {"sync_type": "one_time", "cadence": "12h"}
    played = insights.timelines_all(data.lab, [C], settings=settings)[C]
    stored = data.lab.simulate(C, settings=settings, store=True)
    assert stored.store_event == "written"

    def no_replay(*a, **k):
        raise AssertionError("played again")

    monkeypatch.setattr(simulate_module, "simulated_timeline", no_replay)
    other = Lab(engine=data.lab.engine)  # another Lab (not closed: the engine is shared): only the database holds it
    read = insights.timelines_all(other, [C], settings=settings)[C]
    pd.testing.assert_frame_equal(read, played, check_exact=True)
    with pytest.raises(AssertionError, match="played again"):  # other settings: nothing stored
        insights.timelines_all(data.lab, [C], settings={**settings, "cadence": "6h"})


def test_the_cohort_is_looked_up_by_its_name_once(data, monkeypatch):
    """With nothing stored, the page looks for a stored simulation and then plays the export: the
    cohort found for the first is the one the second plays (one lookup of its name, not two)."""
    import cohortlab.simulation.membership as membership
    import cohortlab.simulation.sync as sync

    data.mpa(1)
    data.profile("a", mparticle_user_id="1")
    data.snapshot(C, "2026-03-01T00:00", ["a"])
    looked_up = []
    find = membership.find_cohort

    def counting(engine, cohort, *a, **k):
        if isinstance(cohort, str):
            looked_up.append(cohort)
        return find(engine, cohort, *a, **k)

    for module in (membership, sync):  # the Lab imports it when called, the sync when imported
        monkeypatch.setattr(module, "find_cohort", counting)
    tl = insights.timelines_all(data.lab, [C], settings={"sync_type": "one_time", "cadence": "12h"})[C]
    assert tl["true_count"].iloc[0] == 1
    assert looked_up == [C]
