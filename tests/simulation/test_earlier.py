"""A simulation at an earlier time derived from a later one (``cohortlab.simulation.earlier``)
equals the simulation computed up to that time, table for table, whatever the settings; the Lab
uses it when it holds the later one (``verify`` at the mParticle snapshot after the report's
simulation of the latest snapshot)."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from cohortlab import Lab
from cohortlab.simulation.earlier import derivable, simulate_earlier
from cohortlab.simulation.simulate import PUBLISHED, simulate

from tests.depth import spread

from .conftest import SEND_TIME_SETTINGS


def _snapshots(lab):
    return [r[0] for r in lab.engine.query_rows("SELECT DISTINCT as_of FROM mp_cohort_snapshots ORDER BY as_of")]


def _same_tables(got, want) -> None:
    for table in PUBLISHED:
        pd.testing.assert_frame_equal(got.tables[table].as_pandas(), want.tables[table].as_pandas(),
                                      check_dtype=False, obj=table)
    assert got.audience == want.audience and got.counts == want.counts


SETTINGS = SEND_TIME_SETTINGS  # as_of resolution is not derived (test below)


@pytest.mark.parametrize("name", list(SETTINGS))
def test_the_earlier_simulation_is_the_later_one_cut_at_its_time(world_lab, name):
    lab, settings = world_lab, SETTINGS[name]
    snaps = _snapshots(lab)
    # at snapshots, between runs, and half a day before the last snapshot (an mParticle snapshot)
    times = [*spread(snaps[1:-1]), snaps[2] + timedelta(minutes=7), snaps[-1] - timedelta(hours=12)]
    derived = 0
    for cohort in ("Power Users", "Recent Purchasers"):
        later = simulate(lab.engine, cohort, None, settings)
        try:
            for t in times:
                got = simulate_earlier(later, t)
                if got is None:  # before the first run: nothing to cut
                    assert not derivable(later, t) and t < later.t0.replace(tzinfo=None)
                    continue
                want = simulate(lab.engine, cohort, t, settings)
                try:
                    _same_tables(got, want)
                    derived += 1
                finally:
                    got.drop()
                    want.drop()
        finally:
            later.drop()
    assert derived >= 6


def test_not_derived_where_the_cut_would_not_be_exact(world_lab):
    lab = world_lab
    t = _snapshots(lab)[-2]
    as_of = simulate(lab.engine, "Power Users", None, {"resolution_time": "as_of"})
    send = simulate(lab.engine, "Power Users", t)
    try:
        assert simulate_earlier(as_of, t) is None  # every decision resolves at the as-of time
        assert simulate_earlier(send, t + timedelta(hours=1)) is None  # not earlier
        assert simulate_earlier(send, t) is not None
    finally:
        as_of.drop()
        send.drop()


def test_the_lab_derives_verify_time_from_the_latest_simulation(world_lab, monkeypatch):
    import cohortlab.simulation.simulate as entry

    lab = Lab(engine=world_lab.engine)
    latest = lab.simulate("Recent Purchasers")
    t = latest.at - timedelta(hours=12)
    with monkeypatch.context() as m:  # derived: nothing is simulated in full
        m.setattr(entry, "simulate", lambda *a, **k: pytest.fail("simulated in full"))
        got = lab.simulate("Recent Purchasers", at=t)
    assert got.at.replace(tzinfo=None) == t.replace(tzinfo=None)
    want = simulate(lab.engine, "Recent Purchasers", t)
    try:
        _same_tables(got, want)
    finally:
        want.drop()
    assert lab.simulate("Recent Purchasers", at=t) is got  # cached like any other


def test_a_new_lab_cuts_the_latest_stored_simulation(world_lab, monkeypatch):
    # `cohortlab simulate` stored the latest snapshot's simulation; a later process (`cohortlab
    # verify`) wants the mParticle snapshot's time: it cuts the stored one instead of simulating
    import cohortlab.simulation.simulate as entry

    Lab(engine=world_lab.engine).simulate("Power Users", store=True)
    lab = Lab(engine=world_lab.engine)  # nothing cached
    t = lab.simulate("Power Users").at - timedelta(hours=12)  # the stored one, read
    lab = Lab(engine=world_lab.engine)
    with monkeypatch.context() as m:
        m.setattr(entry, "simulate", lambda *a, **k: pytest.fail("simulated in full"))
        got = lab.simulate("Power Users", at=t)
    want = simulate(lab.engine, "Power Users", t)
    try:
        _same_tables(got, want)
    finally:
        want.drop()
    assert not got.stored
