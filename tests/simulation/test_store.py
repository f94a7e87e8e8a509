"""Stored simulations (cohortlab.simulation.store, docs/simulate.md#stored-simulations): a
simulation kept in the DuckDB file is read by the next Lab on the same data instead of being
computed again, is never read for other settings, another time or changed data, and verify and
explain give the same answers from it. A small synthetic world, loaded into a file once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cohortlab import Lab
from cohortlab.cli import main
from cohortlab.simulation import store
from cohortlab.simulation.simulate import PUBLISHED, outcome_counts_at
from cohortlab.simulation.verify import observed_times

C = "Recent Purchasers"
DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="module")
def world_db(tmp_path_factory):
    from cohortlab.loaders.folder import load_world
    from cohortlab.synth import generate

    d = tmp_path_factory.mktemp("store")
    generate(d / "world", users=300, seed=11, scenario="mid_migration")
    db = d / "world.duckdb"
    with Lab(db) as lab:
        load_world(lab, d / "world")
    return db


@pytest.fixture
def db(world_db, tmp_path):
    """A fresh copy of the loaded world (tests write into it)."""
    path = tmp_path / "lab.duckdb"
    shutil.copy(world_db, path)
    return str(path)


def frames(result):
    return {t: result.tables[t].as_pandas() for t in PUBLISHED}


def assert_same_tables(a: dict, b: dict):
    assert a.keys() == b.keys()
    for t in a:
        assert a[t].equals(b[t]), t


# --------------------------------------------------------------------------- reuse
def test_a_stored_simulation_is_read_by_a_new_lab_also_read_only_with_identical_tables(db, computed):
    with Lab(db) as lab:
        fresh = lab.simulate(C, store=True)
        assert fresh.store_event == "written" and not fresh.stored
        expected, counts, run_id = frames(fresh), dict(fresh.counts), fresh.run_id
        assert len(expected["resolution"]) > 0
        entry, = lab.stored_simulations().to_dict("records")
        assert entry["run_id"] == run_id and entry["cohort"] == C
    assert len(computed) == 1

    for read_only in (False, True):
        with Lab(db, read_only=read_only) as lab:
            got = lab.simulate(C)
            assert got.stored and got.store_event == "read" and got.run_id == run_id
            assert all(t.table_name.startswith("simstore_") for t in got.tables.values())
            # every table a reader of a result takes (explain, outcome_counts_at, the remedies)
            assert set(got.table_names) == set(PUBLISHED) | set(store.STORED_TABLES)
            assert all(lab.engine.table_exists(t) for t in got.table_names.values())
            assert_same_tables(frames(got), expected)
            assert got.counts == counts and got.audience == fresh.audience
            assert got.waterfall.equals(fresh.waterfall)
            assert lab.cached_simulation(C) is got
    assert len(computed) == 1  # neither lab computed anything

    # a stored result is never dropped by its holder, nor by the garbage collector
    with Lab(db) as lab:
        got = lab.simulate(C)
        got.drop()
        del got
        lab.clear_simulations()
        again = lab.simulate(C)
        assert again.stored and again.tables["resolution"].count() == len(expected["resolution"])
    assert len(computed) == 1


def test_the_earlier_snapshot_counts_of_a_stored_simulation_are_those_of_the_computed_one(db):
    with Lab(db) as lab:
        fresh = lab.simulate(C, store=True)
        times = [fresh.t0, fresh.at]
        want = outcome_counts_at(fresh, times)
    with Lab(db, read_only=True) as lab:
        got = lab.simulate(C)
        assert got.stored
        assert outcome_counts_at(got, times).equals(want)


def test_not_read_under_other_settings_or_another_time(db, computed):
    with Lab(db) as lab:
        base = lab.simulate(C, store=True)
    with Lab(db) as lab:
        other = lab.simulate(C, settings={"fallback": "strict"})
        earlier = lab.simulate(C, at=base.t0)
        assert not other.stored and not earlier.stored
        assert lab.simulate(C).stored
        assert lab.cached_simulation(C, settings={"apply_order": "adds_then_removes"}) is None
    # the stored one and the other settings; the other time is cut from the stored one, not read
    # as if it were stored (cohortlab.simulation.earlier)
    assert len(computed) == 2


# --------------------------------------------------------------------------- discarded
def test_a_load_that_changes_the_data_drops_the_stored_simulations(db, computed):
    with Lab(db) as lab:
        lab.simulate(C, store=True)
        assert len(lab.stored_simulations()) == 1
        report = lab.load("mixpanel-profiles", str(DATA / "mixpanel" / "profiles" / "profiles.jsonl"))
        assert report.load_ids
        assert len(lab.stored_simulations()) == 0
        assert not [t for (t,) in lab.engine.query_rows("SELECT table_name FROM information_schema.tables")
                    if t.startswith("simstore_")]
        again = lab.simulate(C)
        assert not again.stored
        # loading the same file again changes nothing: what is stored then stays
        lab.simulate(C, store=True)
        assert not lab.load("mixpanel-profiles", str(DATA / "mixpanel" / "profiles" / "profiles.jsonl")).load_ids
        assert len(lab.stored_simulations()) == 1
    assert len(computed) == 2


def test_changed_data_found_at_lookup_is_never_read(db, computed):
    """Rows loaded without the Lab (a loader called on the engine, here a loads row written by
    hand) change the data fingerprint: a read-only lab ignores the stored simulation, a writable
    one drops it."""
    with Lab(db) as lab:
        lab.simulate(C, store=True)
        lab.engine.execute("INSERT INTO loads (load_id, kind, source_file, fingerprint, loaded) "
                           "VALUES (9999, 'mixpanel-events', 'more.jsonl', 'new-content', 5)")
    with Lab(db, read_only=True) as lab:
        assert not lab.simulate(C).stored
        assert len(lab.stored_simulations()) == 1  # a read-only lab only looks
    with Lab(db) as lab:
        assert lab.cached_simulation(C) is None
        assert len(lab.stored_simulations()) == 0
    assert len(computed) == 2


def test_the_data_fingerprint_follows_the_loads_and_the_code_version(db, monkeypatch):
    with Lab(db) as lab:
        fp = store.data_fingerprint(lab.engine)
        assert fp == store.data_fingerprint(lab.engine)
        monkeypatch.setattr(store, "STORE_VERSION", "next")
        assert store.data_fingerprint(lab.engine) != fp
        monkeypatch.undo()
        lab.engine.execute("UPDATE loads SET loaded = loaded + 1 WHERE load_id = (SELECT min(load_id) FROM loads)")
        assert store.data_fingerprint(lab.engine) != fp


def test_the_store_keeps_at_most_max_stored_the_oldest_dropped(db, monkeypatch):
    monkeypatch.setattr(store, "MAX_STORED", 2)
    with Lab(db) as lab:
        first = lab.simulate(C, store=True)
        lab.simulate(C, settings={"fallback": "strict"}, store=True)
        lab.simulate(C, settings={"apply_order": "adds_then_removes"}, store=True)
        kept = lab.stored_simulations()
        assert len(kept) == 2 and first.run_id not in set(kept.run_id)
        assert not lab.engine.table_exists(f"simstore_{first.run_id}_resolution")
        assert lab.engine.table_exists(f"simstore_{kept.run_id.iloc[-1]}_resolution")
        # storing the same simulation again replaces nothing and adds nothing
        lab.simulate(C, settings={"fallback": "strict"}, store=True)
        assert list(lab.stored_simulations().run_id) == list(kept.run_id)


def test_storing_is_refused_where_it_cannot_be_kept(db):
    with Lab(db, read_only=True) as lab:
        with pytest.raises(store.StoreError, match="read-only"):
            lab.simulate(C, store=True)
    with Lab(db) as lab:
        with pytest.raises(store.StoreError, match="debug"):
            lab.simulate(C, debug=True, store=True)
        lab.engine.name = "spark"  # another engine: no lookup, and a clear refusal to store
        try:
            assert store.lookup(lab.engine, "anything") is None
            with pytest.raises(store.StoreError, match="spark engine does not store"):
                lab.simulate(C, store=True)
        finally:
            lab.engine.name = "duckdb"
        assert len(lab.stored_simulations()) == 0


# --------------------------------------------------------------------------- the commands
def test_cli_simulate_stores_by_default_and_not_with_no_store(db):
    r = CliRunner().invoke(main, ["simulate", "--db", db, "--cohort", C, "--no-store"])
    assert r.exit_code == 0, r.output
    assert "simulation: not stored (--no-store)" in r.output
    with Lab(db, read_only=True) as lab:
        assert len(lab.stored_simulations()) == 0
    r = CliRunner().invoke(main, ["simulate", "--db", db, "--cohort", C])
    assert r.exit_code == 0, r.output
    assert "simulation: stored in the database" in r.output
    # the mParticle snapshot of this world is taken before the cohort's latest snapshot
    assert "verify and explain simulate at the mParticle snapshot time 2026-02-28 12:00:00 UTC" in r.output
    again = CliRunner().invoke(main, ["simulate", "--db", db, "--cohort", C])
    assert again.exit_code == 0 and "simulation: read from the database" in again.output
    assert again.output.split("simulation:")[0] == r.output.split("simulation:")[0]
    assert "discrepancy waterfall" + r.output.split("discrepancy waterfall")[1] == \
        "discrepancy waterfall" + again.output.split("discrepancy waterfall")[1]
    with Lab(db, read_only=True) as lab:
        assert len(lab.stored_simulations()) == 1


def test_cli_simulate_no_store_neither_reads_nor_stores(db, computed):
    assert CliRunner().invoke(main, ["simulate", "--db", db, "--cohort", C]).exit_code == 0  # stored
    r = CliRunner().invoke(main, ["simulate", "--db", db, "--cohort", C, "--no-store"])
    assert r.exit_code == 0 and "simulation: not stored (--no-store)" in r.output
    assert computed == [C, C]  # computed again, not read


def test_cli_verify_stores_then_explain_reads_it(db, computed):
    r = CliRunner().invoke(main, ["verify", "--db", db, "--cohort", C, "--no-store"])
    assert r.exit_code == 0 and "simulation: computed (not stored)" in r.output
    first = CliRunner().invoke(main, ["verify", "--db", db, "--cohort", C])
    assert first.exit_code == 0 and "simulation: computed and stored" in first.output
    second = CliRunner().invoke(main, ["verify", "--db", db, "--cohort", C])
    assert second.exit_code == 0 and "simulation: read from the database" in second.output
    body = r.output.split("\nsimulation:")[0]
    assert first.output.split("\nsimulation:")[0] == body == second.output.split("\nsimulation:")[0]
    assert len(computed) == 2
    with Lab(db, read_only=True) as lab:
        user = lab.simulate(C, observed_times(lab.engine, C)[0]).resolution.distinct_id.iloc[0]
    x = CliRunner().invoke(main, ["explain", "--db", db, "--cohort", C, "--user", user])
    assert x.exit_code == 0 and "simulation: read from the database" in x.output
    assert len(computed) == 2


# --------------------------------------------------------------------------- same answers
def test_verify_and_explain_are_identical_with_and_without_the_store(db):
    with Lab(db, use_stored=False) as lab:
        at, _ = observed_times(lab.engine, C)
        v0 = lab.verify(C)
        assert not v0.simulation.stored
        base = (v0.to_text(), v0.confusion.copy(), v0.disagreements.copy(), v0.profiles.copy())
        members = v0.simulation.resolution
        users = list(members.distinct_id.iloc[:: max(1, len(members) // 4)][:4])
        users += [str(int(m)) for m in members.mpid.dropna().iloc[:1]]  # by MPID too
    with Lab(db, use_stored=False) as lab:  # nothing cached: explain simulates the related members
        alone = {}
        for u in users:
            x = lab.explain(C, u)
            assert x.simulation == "related"
            alone[u] = x.to_text()
    with Lab(db) as lab:
        lab.simulate(C, at, store=True)
    with Lab(db, read_only=True) as lab:
        v1 = lab.verify(C)
        assert v1.simulation.stored
        assert v1.to_text() == base[0]
        assert v1.confusion.equals(base[1]) and v1.disagreements.equals(base[2]) and v1.profiles.equals(base[3])
        for u in users:
            x = lab.explain(C, u)
            assert x.simulation == "stored"
            assert x.to_text() == alone[u], u


# --------------------------------------------------------------------------- the report's hint
def test_the_report_says_when_nothing_is_stored_for_the_current_data(db):
    from cohortlab.report.runner import stored_simulations_hint

    hint = stored_simulations_hint(db)
    assert hint is not None and f"cohortlab simulate --db {db}" in hint
    with Lab(db) as lab:
        lab.simulate(C, store=True)
    assert stored_simulations_hint(db) is None
    with Lab(db) as lab:  # the data changes behind the store (a row of loads): stale, hint again
        lab.engine.execute("UPDATE loads SET loaded = loaded + 1 WHERE load_id = (SELECT max(load_id) FROM loads)")
    assert stored_simulations_hint(db) is not None
    assert stored_simulations_hint(str(Path(db).with_name("missing.duckdb"))) is None
