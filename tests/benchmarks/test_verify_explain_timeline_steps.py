"""The bench steps verify, explain and timeline (docs/benchmarks.md#issue-14) on a tiny synthetic
world: each reports what it measured, and the numbers are those of the simulation (runs in CI)."""

from __future__ import annotations

import pytest

from bench.harness import largest_cohort, step_explain, step_load, step_timeline, step_verify

pytest.importorskip("cohortlab.synth")


def test_verify_explain_and_timeline_steps_report_members_runs_and_seconds(tmp_path):
    from cohortlab import Lab
    from cohortlab.synth import generate

    world = tmp_path / "world"
    generate(world, users=300, seed=11, scenario="mid_migration")
    db = str(tmp_path / "bench.duckdb")
    step_load(db=db, data=str(world))
    cohort = largest_cohort(db)

    v = step_verify(db=db)
    e = step_explain(db=db)
    t = step_timeline(db=db, days="2", cadence="1h")
    with Lab(db) as lab:
        assert len(lab.stored_simulations()) == 0
        members = lab.simulate(cohort).tables["resolution"].count()
        verified = lab.verify(cohort)
        verified_members = verified.simulation.tables["resolution"].count()
    assert v["cohort"] == e["cohort"] == t["cohort"] == cohort
    assert e["members"] == members > 0 and v["members"] == verified_members > 0
    assert v["compared"] == verified.compared and v["disagreements"] == len(verified.disagreements)
    assert v["verify_s"] > 0 and v["verify_cached_s"] > 0 and e["explain_s"] > 0 and e["user_steps"] > 5
    # the figures from a stored simulation (the steps store one, check it gives the same answer
    # and drop it again: the database is left as it was)
    assert v["verify_stored_s"] > 0 and v["store_s"] > 0 and e["explain_stored_s"] > 0
    assert {"lookup", "mixpanel_profile", "membership", "resolution"} <= set(e["kinds"])
    assert t["runs"] == 2 * 24 + 1 and t["resolution_time"] == "send" and t["timeline_s"] > 0
    assert t["members"] == members
