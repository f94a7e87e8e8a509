"""Prediction vs observation on worlds written by the generator (``cohortlab.synth``).

The plan is the world's own history (its EIT timeline, remediation and event rule); the
observation is what cohortlab's resolution (docs/rules.md#resolution) computes from the exported files. The two
models are independent: the what-if sees only events (who was active when), mParticle profiles
and the plan; the resolution sees Mixpanel profiles, members and event properties.

* Without app-written ``$mparticle_user_id`` noise (``*_share = 0``) they agree on every member
  of every cohort at every snapshot.
* With the scenario's default noise they differ only on members whose ``$mparticle_user_id`` was
  written by app code outside any plan (junk, a float-rounded or another workspace's MPID, a
  null that hides the event property, or a correct value on a profile that the plan would not
  reach); every difference carries that explanation, never ``model_differs``.
"""

from __future__ import annotations

import pandas as pd
import pytest

from cohortlab import Lab, synth
from cohortlab.migration.run import run_plans
from cohortlab.migration.validate import validate
from cohortlab.migration.plans import MigrationPlan
from cohortlab.loaders.folder import load_world

from tests.depth import spread

USERS = 1500
SEED = 11
NO_NOISE = dict(sdk_ok_share=0, float_share=0, junk_share=0, null_share=0, other_workspace_share=0)
APP_WRITTEN = {"bad_mparticle_user_id", "event_property_missing", "property_written_outside_plan"}


def plan_of(config) -> MigrationPlan:
    """The history of a generated world as a migration plan."""
    return MigrationPlan(
        name=f"history of {config.scenario}",
        eit_timeline=[{"since": s.start, "eit": s.type} for s in config.eit],
        remediation=[{"kind": config.remediation.method, "since": config.remediation.start}]
        if config.remediation else [],
        event_identity_cutoff=config.event_mpuid_from,
    )


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    cache = {}

    def get(scenario, noise):
        key = (scenario, noise)
        if key not in cache:
            out = tmp_path_factory.mktemp(f"{scenario}-{'noisy' if noise else 'clean'}")
            res = synth.generate(out, users=USERS, seed=SEED, scenario=scenario, force=True,
                                 **({} if noise else NO_NOISE))
            lab = Lab()
            load_world(lab, out)
            cache[key] = (res, lab)
        return cache[key]

    yield get
    for _, lab in cache.values():
        lab.close()


def _snapshots(lab, cohort):
    return [pd.Timestamp(t) for t in lab.sql(
        f"SELECT DISTINCT as_of FROM mp_cohort_snapshots WHERE cohort_name = '{cohort}' ORDER BY as_of").as_of]


@pytest.mark.parametrize("scenario", ["mid_migration", "remediated", "healthy", "customer_id_legacy"])
def test_prediction_equals_resolution_without_app_noise(worlds, scenario):
    res, lab = worlds(scenario, noise=False)
    plan = plan_of(res.config)
    truth = res.truth()
    for cohort in ("Power Users", "Recent Purchasers"):
        snaps = _snapshots(lab, cohort)
        for at in spread(snaps):  # each is a resolution and a what-if
            observed = lab.resolution(cohort, at, settings={"resolution_time": "as_of"})  # what the exports show
            v = validate(lab.engine, plan, observed, cohort, at, store=False)
            assert len(v.users) == len(observed) > 0
            if at < snaps[-1] and scenario == "remediated":
                # Mixpanel profiles are exported once, at the end: a profile property written by
                # activity after an earlier snapshot is visible to the resolution of that
                # snapshot, not to a prediction as of it (remediated world only)
                assert set(v.differences["explanation"]) <= {"activity_after_export"}, v.verdict
                continue
            assert v.differ == 0, (cohort, at, v.verdict, v.differences.head().to_dict("records"))
            assert v.predicted_match_rate == v.observed_match_rate
            if at < snaps[-1]:
                continue
            # the prediction links every member to the generator's true person
            t = truth[truth.cohort_name == cohort].set_index("distinct_id")["true_mpid"]
            u = v.users.set_index("distinct_id")
            assert (u["predicted_mpid"].astype("Int64") == t.reindex(u.index).astype("Int64")).all()


def test_mid_migration_with_app_noise_differs_only_where_app_code_wrote_the_identifier(worlds):
    res, lab = worlds("mid_migration", noise=True)
    plan = plan_of(res.config)
    for cohort in ("Power Users", "Recent Purchasers"):
        observed = lab.resolution(cohort, settings={"resolution_time": "as_of"})  # what the exports show
        v = validate(lab.engine, plan, observed, cohort, observed["as_of"].iloc[0])
        d = v.differences
        assert set(d["explanation"]) <= APP_WRITTEN, d[["distinct_id", "obs_gap_reason", "explanation"]]
        # everyone else agrees
        same = v.users[~v.users["differs"]]
        assert (same["predicted_matched"] == same["observed_matched"]).all()
        assert v.verdict.startswith(f"observed match rate {v.observed_match_rate:.1%}, predicted "
                                    f"{v.predicted_match_rate:.1%}; {v.differ:,} "
                                    f"{'member differs' if v.differ == 1 else 'members differ'}")
        conf = v.confusion
        assert int(conf.values.sum()) == len(observed)
        assert int(conf.loc["predicted matched", "observed unmatched"] + conf.loc["predicted unmatched", "observed matched"]) == v.differ


def test_mid_migration_split_profiles_match_the_generator(worlds):
    res, lab = worlds("mid_migration", noise=False)
    plan = plan_of(res.config)
    r = run_plans(lab.engine, [plan], "2026-02-01", "2026-02-28", keep_tables=True)
    summary = r.summary
    # people with events under both their customer id and their MPID
    expected = lab.engine.query_rows(f"""
        SELECT count(*) FROM (SELECT m.mpid FROM {r.tables.links} m
            WHERE m.mpid IS NOT NULL GROUP BY m.mpid
            HAVING count(DISTINCT CASE WHEN starts_with(m.distinct_id, 'cust-') THEN 1
                                       WHEN m.distinct_id = CAST(m.mpid AS VARCHAR) THEN 2 END) = 2)""")[0][0]
    assert expected > 0
    assert summary.iloc[0]["split_profiles_end"] == expected
    # before the switch nobody has two profiles
    before = run_plans(lab.engine, [plan], "2026-01-20", "2026-01-31", store=False).daily
    assert before["split_profiles"].max() == 0


def test_lab_validate_migration_on_the_export(worlds):
    res, lab = worlds("mid_migration", noise=False)
    v = lab.validate_migration(plan_of(res.config), "Power Users")
    assert v.differ == 0 and v.verdict.endswith("0 members differ")
    stored = lab.sql("SELECT * FROM migration_validation_summary")
    assert stored.iloc[0]["differ"] == 0 and stored.iloc[0]["members"] == len(v.users)
