"""Spark gives the same rows as DuckDB: every public result and every pipeline step.

The edge-case world of ``world.py`` is built in DuckDB, exported to Parquet with
``export_canonical`` and read into Spark with ``SparkEngine.read_canonical`` (so the export path
is exercised too). The same sequence of public API calls then runs on both engines; each
returned DataFrame, and, for the calls in debug mode, every materialised step table
(``<table>__<step>``), must hold the same rows (order-insensitive, BIGINTs exact).
"""

from __future__ import annotations

import re
import time

import pytest

from cohortlab import Lab
from cohortlab.engines.spark.readers import export_canonical

from tests.depth import DEEP

from .compare import diff
from .conftest import temp_views
from .world import api_calls, build_world

pytestmark = pytest.mark.spark

# Each call costs 10-30 s on Spark (its JVM runs every step as a job), the equivalence fixture
# 260 s with all of them: CI runs one call of each path and `make test-spark-deep` every call.
# Left out of CI, each beside the CI call that runs its code on Spark: the webhook resolution at
# a time (resolution_snap_debug, step by step), the snapshot simulation with the default and with
# the strict/paused settings (simulate_snap_one_time_as_of; simulate_hook_strict_debug, step by
# step; the synthetic world's default simulation below), the webhook default
# (simulate_hook_strict_debug) and the re-export value (a simulation with settings of its own).
# The portability lint (test_portability.py, in the DuckDB suite) reads every call's SQL.
DEEP_ONLY = {"resolution_hook_at", "simulate_snap_default", "simulate_snap_strict_create_paused",
             "simulate_hook_default", "reexport_value_snap"}
CALLS = [(name, call) for name, call in api_calls() if DEEP or name not in DEEP_ONLY]


def _tables(engine) -> set[str]:
    if engine.name == "spark":
        return temp_views(engine.spark)
    return {r[0] for r in engine.query_rows("SELECT table_name FROM information_schema.tables")}


_RUN_ID = re.compile(r"^sim_[0-9a-f]+_")


def _new_steps(engine, before: set[str]) -> dict[str, str]:
    """The debug step tables (``sim_<run id>_<table>__<step>``) a call created, by name without
    the run id (each engine draws its own run ids)."""
    return {_RUN_ID.sub("", t): t for t in _tables(engine) - before if "__" in t}


@pytest.fixture(scope="module")
def runs(spark_session, tmp_path_factory):
    """Run every API call on both engines; collect results, step-table diffs and timings."""
    from cohortlab.engines.spark.engine import SparkEngine

    tmp = tmp_path_factory.mktemp("equiv")
    duck = Lab()
    build_world(duck.engine)
    export_canonical(duck.engine, tmp / "canonical")
    engine = SparkEngine(spark_session, scratch_dir=tmp / "scratch")
    engine.read_canonical(tmp / "canonical")
    spark = Lab(engine=engine)

    out: dict[str, dict] = {}
    for name, call in CALLS:
        before = (_tables(duck.engine), _tables(engine)) if "debug" in name else (set(), set())
        t0 = time.perf_counter()
        d = call(duck)
        t1 = time.perf_counter()
        try:
            s, err = call(spark), None
        except Exception as e:  # reported by the test of this call
            s, err = {}, e
        t2 = time.perf_counter()
        steps = {}
        if err is None and "debug" in name:
            d_steps, s_steps = _new_steps(duck.engine, before[0]), _new_steps(engine, before[1])
            for t in sorted(d_steps.keys() & s_steps.keys()):
                steps[t] = diff(duck.engine.query_df(f"SELECT * FROM {d_steps[t]}"),
                                engine.query_df(f"SELECT * FROM {s_steps[t]}"))
        out[name] = {"duckdb": d, "spark": s, "error": err, "steps": steps, "seconds": (t1 - t0, t2 - t1)}
    # every table both engines hold at the end (stored results, canonical tables); the pseudonym
    # key (cohortlab_meta) is drawn at random per database, so it is compared by shape below
    final = {}
    keys = {}
    for e in (duck.engine, engine):
        keys[e.name] = e.query_rows("SELECT name, length(value) FROM cohortlab_meta")
    for t in sorted((_tables(duck.engine) & _tables(engine)) - {"cohortlab_meta"}):
        final[t] = diff(duck.engine.query_df(f"SELECT * FROM {t}"), engine.query_df(f"SELECT * FROM {t}"))
    yield out, final, keys
    for name, r in out.items():
        print(f"{name:<32} duckdb {r['seconds'][0]:6.2f}s  spark {r['seconds'][1]:6.2f}s")
    spark.close()
    duck.close()


def test_the_calls_left_out_of_ci_are_calls_of_the_list():
    assert DEEP_ONLY <= {name for name, _ in api_calls()}


@pytest.mark.parametrize("call", [n for n, _ in CALLS])
def test_public_results_are_identical(runs, call):
    out, _, _ = runs
    r = out[call]
    if r["error"] is not None:
        raise r["error"]
    assert set(r["spark"]) == set(r["duckdb"])
    problems = {k: diff(r["duckdb"][k], r["spark"][k]) for k in r["duckdb"]}
    problems = {k: v for k, v in problems.items() if v}
    assert not problems, "\n".join(f"{k}: {v}" for k, v in problems.items())


@pytest.mark.parametrize("call", [n for n, _ in CALLS if "debug" in n])
def test_every_pipeline_step_is_identical(runs, call):
    out, _, _ = runs
    r = out[call]
    if r["error"] is not None:
        raise r["error"]
    assert len(r["steps"]) >= 10, sorted(r["steps"])
    problems = {k: v for k, v in r["steps"].items() if v}
    assert not problems, "\n".join(f"{k}: {v}" for k, v in problems.items())


# --------------------------------------------------------------------------- a synthetic world
# the strict fallback, a cadence and an EIT timeline are simulated on the edge-case world above
SYNTH_CALLS = ["simulate_power_users", "migration_plans"]


def _synth_call(name):
    from cohortlab.migration.plans import standard_plans

    if name == "simulate_power_users":
        return lambda lab: {k: getattr(r, k) for r in [lab.simulate("Power Users")]
                            for k in ("resolution", "timeline", "waterfall", "attribute_state", "gap_summary")}

    def plans(lab):
        from cohortlab.migration.run import run_plans

        r = run_plans(lab.engine, standard_plans("2026-02-01T00:00:00Z"), "2026-01-20", "2026-03-01")
        return {"migration_daily": r.daily, "migration_summary": r.summary}

    return plans


@pytest.fixture(scope="module")
def synth_runs(spark_session, tmp_path_factory):
    """The generator's `mid_migration` scenario (300 people), loaded with the DuckDB loaders."""
    from cohortlab.engines.spark.engine import SparkEngine
    from cohortlab.synth.build import generate
    from cohortlab.loaders.folder import load_world

    tmp = tmp_path_factory.mktemp("synth")
    generate(tmp / "world", users=300, seed=11, scenario="mid_migration")
    duck = Lab()
    load_world(duck, tmp / "world")
    export_canonical(duck.engine, tmp / "canonical")
    engine = SparkEngine(spark_session, scratch_dir=tmp / "scratch")
    engine.read_canonical(tmp / "canonical")
    spark = Lab(engine=engine)
    out = {}
    for name in SYNTH_CALLS:
        call = _synth_call(name)
        d = call(duck)
        try:
            out[name] = (d, call(spark), None)
        except Exception as e:
            out[name] = (d, {}, e)
    yield out
    spark.close()
    duck.close()


@pytest.mark.parametrize("call", SYNTH_CALLS)
def test_synthetic_world_results_are_identical(synth_runs, call):
    d, s, err = synth_runs[call]
    if err is not None:
        raise err
    assert len(d[next(iter(d))]) > 0
    problems = {k: diff(d[k], s[k]) for k in d}
    problems = {k: v for k, v in problems.items() if v}
    assert not problems, "\n".join(f"{k}: {v}" for k, v in problems.items())


def test_every_stored_table_is_identical(runs):
    """The published results (the calls publish explicitly: ``simulate(..., publish=True)``), the
    migration and verify tables and the canonical tables hold the same rows on both engines."""
    _, final, keys = runs
    assert {"resolution", "timeline", "waterfall", "attribute_state", "gap_summary", "mpa_profiles",
            "migration_daily", "migration_summary", "verify_profiles"} <= set(final)
    assert keys["duckdb"] == keys["spark"] == [("pseudonym_key", 32)]
    problems = {k: v for k, v in final.items() if v}
    assert not problems, "\n".join(f"{k}: {v}" for k, v in problems.items())


def test_the_what_if_on_data_without_user_ids_is_identical(spark_session, tmp_path):
    """Data without any $user_id: the what-if tells a logged-in event by a join to
    mParticle's device identities (cohortlab.identifiers.LoggedIn), and the switch is read from
    those events; Spark gives the figures DuckDB gives."""
    from cohortlab.engines.spark.engine import SparkEngine
    from cohortlab.loaders.folder import load_world
    from cohortlab.migration.run import compare

    from tests.migration.no_user_id_world import SETTINGS, write_world

    with Lab() as duck:
        load_world(duck, write_world(tmp_path / "world", user_ids=False))
        export_canonical(duck.engine, tmp_path / "canonical")
        d = compare(duck.engine, settings=SETTINGS)
        engine = SparkEngine(spark_session, scratch_dir=tmp_path / "scratch")
        try:
            engine.read_canonical(tmp_path / "canonical")
            s = compare(engine, settings=SETTINGS)
        finally:
            engine.close()
    assert s.switch == d.switch and not d.switch.identified
    cols = ["plan", "members_end", "matched_end", "split_profiles_end", "never_fixable_users", "unfixed_profiles"]
    assert s.summary[cols].to_dict("records") == d.summary[cols].to_dict("records")
    assert d.summary["members_end"].tolist() == [10, 10, 8, 8]
