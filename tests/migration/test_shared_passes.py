"""The plans of one run share work (docs/migration.md#how-it-runs): plans with the same EIT
timeline and event identity cutoff share one profiles pass (one remediation column per start),
the split profiles come from an aggregate, and the summary is read from the users as stored.
Each plan run together with others must give what it gives alone, and the split profiles what
the ranking of each person's profiles gives, on a generated world."""

from __future__ import annotations

import pandas as pd
import pytest

from cohortlab import Lab, synth
from cohortlab.loaders.folder import load_world
from cohortlab.migration.plans import MigrationPlan, standard_plans
from cohortlab.migration.run import run_plans

START, END = "2025-12-20", "2026-03-10"


def plans() -> list[MigrationPlan]:
    """Two shapes of the standard four, a third remediation start in the Rule-only shape, and a
    three-EIT timeline (a person can have three current profiles there) with and without a
    remediation and a re-export."""
    three = [{"since": None, "eit": "email"}, {"since": "2026-01-10", "eit": "customer_id"},
             {"since": "2026-02-05", "eit": "mparticle_id"}]
    return standard_plans("2026-01-20T00:00:00Z", rule="2026-01-25T00:00:00Z") + [
        MigrationPlan(name="Rule later", eit_timeline="customer_id", remediation={"kind": "rule", "since": "2026-02-10"},
                      reexport_at="2026-02-20"),
        MigrationPlan(name="three EITs + SDK", eit_timeline=three, remediation={"kind": "sdk", "since": "2026-01-12"},
                      reexport_at="2026-02-25", event_identity_cutoff=None),
        MigrationPlan(name="three EITs", eit_timeline=three, event_identity_cutoff=None),
    ]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    out = tmp_path_factory.mktemp("mid")
    synth.generate(out, users=400, seed=5, scenario="mid_migration", force=True)
    with Lab() as lab:
        load_world(lab, out)
        yield lab


def stored_users(lab, plan: str) -> pd.DataFrame:
    u = lab.sql(f"SELECT * FROM migration_users WHERE plan = '{plan}'")
    return u.sort_values(list(u.columns), na_position="first").reset_index(drop=True)  # row order aside


def test_each_plan_run_with_the_others_gives_what_it_gives_alone(lab):
    together = run_plans(lab.engine, plans(), START, END)
    users = {p.name: stored_users(lab, p.name) for p in plans()}
    assert len(together.summary) == len(plans())
    assert together.summary["stranded_profiles"].sum() > 0 and together.summary["users_needing_reexport"].sum() > 0
    for plan in plans():
        alone = run_plans(lab.engine, [plan], START, END)
        pd.testing.assert_frame_equal(together.daily[together.daily["plan"] == plan.name].reset_index(drop=True),
                                      alone.daily, check_exact=True)
        pd.testing.assert_frame_equal(together.summary[together.summary["plan"] == plan.name].reset_index(drop=True),
                                      alone.summary, check_exact=True)
        pd.testing.assert_frame_equal(users[plan.name], stored_users(lab, plan.name), check_exact=True)
        assert len(users[plan.name]) > 0


def test_the_summary_is_the_same_whether_the_users_are_stored_or_not(lab):
    stored = run_plans(lab.engine, plans(), START, END, store=True).summary
    read_on_the_fly = run_plans(lab.engine, plans(), START, END, store=False).summary
    pd.testing.assert_frame_equal(stored, read_on_the_fly, check_exact=True)


@pytest.mark.parametrize("name", ["switch only", "three EITs + SDK"])
def test_split_profiles_are_persons_whose_second_current_profile_exists(lab, name):
    """Reference: rank each person's profiles (current ones first, by first activity); a person
    is split from the first activity of its second profile when that one is current."""
    plan = next(p for p in plans() if p.name == name)
    r = run_plans(lab.engine, [plan], START, END, store=False, keep_tables=True)
    try:
        prof = lab.sql(f"SELECT pid, first_t, end_t FROM {r.tables.name('shape0_profiles')}")
    finally:
        r.drop_tables(lab.engine)
    prof = prof.assign(ended=prof["end_t"].notna()).sort_values(["pid", "ended", "first_t"])
    second = prof[prof.groupby("pid").cumcount() == 1]
    split_from = second.loc[~second["ended"], "first_t"]
    expected = [int((split_from < as_of).sum()) for as_of in r.daily["as_of"]]
    assert r.daily["split_profiles"].tolist() == expected
    assert max(expected) > 0
    if name == "three EITs + SDK":  # someone has three current profiles: the second-pass case is exercised
        current = prof[~prof["ended"]].groupby("pid").size()
        assert current.max() == 3


def test_the_plans_of_one_shape_share_their_gap_reason_lookups(lab, monkeypatch):
    # the lookups read only the shape's profiles: in the users' one statement they are steps of
    # the shape, not of each plan (7 plans, 3 shapes: 3 lookups, not 7)
    written = {}
    engine_cls = type(lab.engine)
    materialise = engine_cls.materialise

    def spy(self, table, sql, *args, **kw):
        written[table] = sql
        return materialise(self, table, sql, *args, **kw)

    monkeypatch.setattr(engine_cls, "materialise", spy)
    run_plans(lab.engine, plans(), START, END)
    sql = written["migration_users"]
    assert [sql.count(f"unmatched_int64_keys_shape{g} AS (") for g in range(4)] == [1, 1, 1, 0]
    assert [sql.count(f"identity_ids_shape{g} AS (") for g in range(3)] == [1, 1, 1]
    assert "unmatched_int64_keys_0" not in sql and sql.count("gap_reasons_") == len(plans()) * 2  # defined, read
