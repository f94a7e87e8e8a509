"""The remedies valued by subset simulations (docs/simulate.md#remedies) equal the remedies
valued by simulating every member (``value_remedies(..., _full=True)``): every row, note and
attribute, on the hand-built worlds of test_remedies.py under several settings, on a small
synthetic world, and on random small worlds (hypothesis)."""

from __future__ import annotations

from datetime import timedelta

import hypothesis
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, strategies as st

from cohortlab import Lab
from cohortlab.simulation.remedies import value_remedies
from cohortlab.simulation.subset_world import MEMBER_TABLES, SubsetWorld
from tests.depth import search

from .conftest import ts
from .test_properties import C as PC, POOL, T0, build, datasets
from .test_remedies import C, DAILY, app_event, world  # noqa: F401  (the fixture)


def both(engine, cohort, at=None, settings=None, since=None):
    """(fast, full) frames, after checking that nothing of either run is left behind."""
    fast = value_remedies(engine, cohort, at, settings, since=since)
    full = value_remedies(engine, cohort, at, settings, since=since, _full=True)
    left = engine.query_rows("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_remedy_%' "
                             "OR table_name LIKE '_reexport_%' OR table_name LIKE 'sim_%_rem_%'")[0][0]
    views = [v for (v,) in engine.query_rows("SELECT view_name FROM duckdb_views() WHERE temporary")
             if v in MEMBER_TABLES or v.startswith("_reexport_")]
    assert (left, views) == (0, []), views
    return fast, full


def assert_same(fast: pd.DataFrame, full: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(fast, full)
    assert fast.attrs == full.attrs


SETTINGS = [  # fallback "strict" with "only_update": test_history_webhooks_and_recovery
    DAILY,
    {**DAILY, "fallback": "strict", "protection": "create_and_update"},
    {**DAILY, "resolution_time": "as_of"},
    {**DAILY, "apply_order": "adds_then_removes", "snapshot_ttl": "12h"},
]


@pytest.mark.parametrize("settings", SETTINGS, ids=["daily", "strict-create", "as_of", "refresh"])
def test_the_main_world_under_several_settings(world, settings):  # noqa: F811
    fast, full = both(world.engine, C, "2026-03-07", settings, "2026-03-02")
    assert_same(fast, full)
    if settings is DAILY:  # the figures of test_remedies: the subset path is the one that gave them
        assert dict(zip(fast.key, fast.gained)) == {"rule": 1, "rule_reexport": 3, "sdk_code": 1, "sdk_reexport": 1,
                                                    "switch_eit": 2, "reexport": 0, "reconnect": 0}


def test_members_sharing_a_profile_with_a_written_member(data):
    """S (matched to 101) and C1 (written 101 on Mar 3) share profile 101; T writes to 102, which
    C1's write never touches. C1 enters on Mar 4 (101 true, fixed), S leaves on Mar 6: its remove
    writes false on 101. The subset must hold S as well as C1 to see that remove."""
    data.mpa(101, customer_id="C1").mpa(102)
    data.profile("C1").profile("S", mparticle_user_id="101").profile("T", mparticle_user_id="102")
    data.event("C1", "2026-03-03")
    data.snapshot(C, "2026-03-01", ["S", "T"])
    data.snapshot(C, "2026-03-04", ["C1", "S", "T"])
    data.snapshot(C, "2026-03-06", ["C1", "T"])
    fast, full = both(data.engine, C, "2026-03-07", DAILY, "2026-03-02")
    assert_same(fast, full)
    after = dict(zip(fast.key, fast.audience_after))
    assert after["rule"] == 1  # 102 only: S's remove on Mar 6 wins over C1's add on Mar 4
    assert after["rule_reexport"] == 2  # the re-export on Mar 7 re-sends C1: 101 true again


def test_a_reexport_at_the_last_run_removes_nothing(data):
    """S leaves in the snapshot the last run (Mar 7) sees: as configured that run removes it
    (101 false); a re-export there is a full sync instead, which removes nothing, so 101 keeps
    the value it had before (derived from the baseline, not simulated: the same figure)."""
    data.mpa(101).mpa(102)
    data.profile("S", mparticle_user_id="101").profile("T", mparticle_user_id="102")
    data.snapshot(C, "2026-03-01", ["S", "T"])
    data.snapshot(C, "2026-03-07", ["T"])
    fast, full = both(data.engine, C, "2026-03-07", DAILY, "2026-03-02")
    assert_same(fast, full)
    row = fast.set_index("key").loc["reexport"]
    assert (row.audience_before, row.audience_after) == (1, 2)


def test_a_write_to_a_profile_mparticle_does_not_hold_creates_an_orphan(data):
    """C9's customer id names MPID 109, which has no mParticle profile: the Rule writes 109, an
    orphan with create_and_update (a profile the first subset run did not expect: P grows)."""
    data.mpa(101, customer_id="C1")
    data.engine.execute("INSERT INTO mpa_identities (mpid, kind, identity_type, value) "
                        "VALUES (109, 'user', 'customer_id', 'C9')")
    data.profile("C1").profile("C9")
    data.event("C1", "2026-03-03").event("C9", "2026-03-03")
    data.snapshot(C, "2026-03-01", ["C1", "C9"])
    settings = {**DAILY, "protection": "create_and_update"}
    grew = []
    build_ = SubsetWorld.build

    def counting(self, *args, **kwargs):
        grew.append(1)
        build_(self, *args, **kwargs)

    SubsetWorld.build = counting
    try:
        fast, full = both(data.engine, C, "2026-03-07", settings, "2026-03-02")
    finally:
        SubsetWorld.build = build_
    assert_same(fast, full)
    assert len(grew) == 3  # the Rule's subset and the switch's, and the Rule's again with the orphan "109"


def test_history_webhooks_and_recovery(data):
    """A profile history, webhook membership and members recoverable through the MPID itself."""
    big = 7340993254993012745
    data.mpa(101, customer_id="C1").mpa(106).mpa(big)
    data.profile("C1", history=True)
    data.profile("C1", as_of="2026-03-06")
    data.profile("J", mparticle_user_id='"106"')
    data.profile("K", mparticle_user_id=repr(float(big)))
    data.event("C1", "2026-03-03").event("J", "2026-03-03")
    app_event(data, "K", "2026-03-04", "dev-k")
    data.webhook(C, "members", "2026-03-01", ["C1", "J"])
    data.webhook(C, "add_members", "2026-03-04", ["K", "C1"])
    data.webhook(C, "remove_members", "2026-03-06", ["J"])
    for settings in (DAILY, {**DAILY, "fallback": "strict"}):
        fast, full = both(data.engine, C, "2026-03-07", settings, "2026-03-02")
        assert_same(fast, full)


# ----------------------------------------------------------------------------- a synthetic world
@pytest.fixture(scope="module")
def synth_lab(tmp_path_factory):
    pytest.importorskip("cohortlab.synth")
    from cohortlab.loaders.folder import load_world
    from cohortlab.synth import generate

    out = tmp_path_factory.mktemp("remedy-synth")
    generate(out, users=600, seed=5, scenario="mid_migration")
    with Lab() as lab:
        load_world(lab, str(out))
        yield lab


def test_a_synthetic_world(synth_lab):
    fast, full = both(synth_lab.engine, "Recent Purchasers")
    assert_same(fast, full)
    assert (fast.gained > 0).sum() >= 2  # the Rule and the re-export recover someone here


# ----------------------------------------------------------------------------- random small worlds
@st.composite
def worlds(draw):
    mpids, profiles, source, msgs, opts, at = draw(datasets())
    # activity (some from the app, some anonymous: no $user_id), and customer ids naming members' profiles
    events = [(d, draw(st.integers(0, 180)), draw(st.sampled_from([None, "dev"])), draw(st.sampled_from([d, None])))
              for d in draw(st.lists(st.sampled_from(POOL), max_size=6))]
    idents = {m: draw(st.sampled_from([None, "u0", "u1", "u2"])) for m in sorted(mpids)}
    since = draw(st.integers(0, 120))
    return mpids, profiles, source, msgs, opts, at, events, idents, since


@hypothesis.settings(**search(3, 25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_random_worlds(w):
    mpids, profiles, source, msgs, opts, at, events, idents, since = w
    with Lab() as lab:
        build(lab, mpids, profiles, source, msgs)
        eng = lab.engine
        for i, (d, minute, device, user) in enumerate(events):
            eng.execute("INSERT INTO mp_events (event, time, distinct_id, insert_id, device_id, user_id) "
                        "VALUES ('e', ?, ?, ?, ?, ?)", [T0 + timedelta(minutes=minute), d, f"e{i}", device, user])
        for m, v in idents.items():
            if v:
                eng.execute("INSERT INTO mpa_identities (mpid, kind, identity_type, value) "
                            "VALUES (?, 'user', 'customer_id', ?)", [m, v])
        fast, full = both(eng, PC, T0 + timedelta(minutes=at), opts, T0 + timedelta(minutes=since))
        assert_same(fast, full)


def test_run_sync_can_skip_the_tables_the_subset_does_not_read(world):  # noqa: F811
    """The subset simulations skip ``resolution`` and ``timeline``: the attribute state is the
    same without them, their tables are not made, and nothing else can be skipped."""
    from cohortlab.simulation.sync import Names, run_sync

    a, b = Names("sim_skipa_"), Names("sim_skipb_")
    run_sync(world.engine, C, "2026-03-07", DAILY, names=a)
    run = run_sync(world.engine, C, "2026-03-07", DAILY, names=b, skip=("resolution", "timeline"))
    assert "resolution" not in run.step_counts and "timeline" not in run.step_counts
    cols = "mpid, orphan_identifier, is_orphan, value, last_write_at, writes"
    got = world.engine.query_rows(f"SELECT {cols} FROM {b.attribute_state} ORDER BY mpid")
    assert got == world.engine.query_rows(f"SELECT {cols} FROM {a.attribute_state} ORDER BY mpid")
    assert got == [(104, None, False, True, ts("2026-03-01"), 1)]  # M, sent on Mar 1
    assert not world.engine.query_rows("SELECT 1 FROM duckdb_tables() WHERE table_name = 'sim_skipb_timeline'")
    with pytest.raises(ValueError, match="only resolution, attribute_state, timeline can be skipped"):
        run_sync(world.engine, C, "2026-03-07", DAILY, names=Names("sim_skipc_"), skip=("state",))
