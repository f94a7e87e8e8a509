"""Every file loads with cohortlab's loaders, with zero rejects except the deliberately bad
records the manifest counts; and cohortlab's resolution equals the truth row for row."""

from __future__ import annotations

import pytest

from cohortlab import Lab
from tests.synth.conftest import mparticle_profiles

pytest.importorskip("cohortlab.loaders.mixpanel_events")
pytest.importorskip("cohortlab.loaders.mparticle_profiles")


def load_files(lab, res):
    """Load every file of the manifest with the loader of its kind (members with as_of/cohort)."""
    snaps = {s["path"]: s for s in res.manifest["snapshots"]}
    order = ["mparticle-profiles", "mixpanel-cohorts", "mixpanel-profiles", "mixpanel-events",
             "mixpanel-members", "mixpanel-webhooks"]
    reports = []
    for kind in order:
        files = [f for f in res.manifest["files"] if f["kind"] == kind]
        if kind == "mixpanel-members":
            for f in files:
                s = snaps[f["path"]]
                opts = {"as_of": s["as_of"], "cohort": s["cohort"]} if f["path"].endswith(".csv") else {}
                reports.append((f, lab.load(kind, str(res.out_dir / f["path"]), **opts)))
        elif files:
            reports.append((files, lab.load(kind, [str(res.out_dir / f["path"]) for f in files])))
    return reports


def check_counts(lab, res, bad=0):
    c = res.manifest["counts"]
    rejects = lab.sql("SELECT kind, reason, count(*) AS n FROM rejects GROUP BY ALL")
    if bad:
        assert rejects.to_dict("records") == [{"kind": "mixpanel-events", "reason": "malformed_json", "n": bad}]
    else:
        assert rejects.empty, rejects
    n = lambda t: int(lab.sql(f"SELECT count(*) FROM {t}").iloc[0, 0])  # noqa: E731
    assert n("mp_events") == c["events"]
    assert int(lab.sql("SELECT sum(deduplicated) FROM loads WHERE kind = 'mixpanel-events'").iloc[0, 0]) \
        == c["duplicate_event_lines"]
    assert n("mp_profiles") == c["mixpanel_profiles"]
    assert n("mpa_profiles") == c["mparticle_profiles"]
    assert n("mp_cohort_snapshots") == len(res.manifest["snapshots"])
    assert n("mp_webhook_pages") == sum(w["pages"] for w in res.manifest["webhooks"])
    # MPIDs survive the load exactly
    got = set(lab.sql("SELECT mpid::VARCHAR AS m FROM mpa_profiles")["m"])
    assert got == {str(o["mpid"]) for o in mparticle_profiles(res)}


def assert_resolution_equals_truth(lab, res):
    cols = "distinct_id, identifier_source, identifier, mpid, status, gap_reason, recoverable_via"
    for cohort, e in res.manifest["expected"].items():
        # the truth is the resolution at the as-of time (every member resolved then)
        table = lab.simulate(cohort, settings={"resolution_time": "as_of"}).tables["resolution"].table_name
        truth = f"(SELECT {cols} FROM read_parquet('{res.truth_path}') WHERE cohort_name = ?)"
        diff = lab.sql(f"""(SELECT {cols} FROM {table} EXCEPT ALL {truth})
                           UNION ALL ({truth} EXCEPT ALL SELECT {cols} FROM {table})""", [cohort, cohort])
        assert diff.empty, (cohort, diff.head(10))
        assert int(lab.sql(f"SELECT count(*) FROM {table}").iloc[0, 0]) == e["members"]


def assert_loads_and_resolves_as_the_truth(res) -> None:
    with Lab() as lab:
        load_files(lab, res)
        check_counts(lab, res)
        if resolution_available():
            assert_resolution_equals_truth(lab, res)


def test_every_file_loads_without_rejects_and_resolves_as_the_truth(scenario_world):
    assert_loads_and_resolves_as_the_truth(scenario_world)


def test_big_world_layout_gzip_loads_and_resolves_as_the_truth(make_world):
    res = make_world("mid_migration", users=900, gzip=True, profiles_format="jsonl", members_format="csv")
    assert res.manifest["layout"] == {"profiles": "jsonl", "members": "csv", "gzip": True, "event_files": 3}
    assert_loads_and_resolves_as_the_truth(res)


def test_deliberately_bad_records_are_the_only_rejects(make_world):
    res = make_world("healthy", users=600, bad_event_lines=3)
    assert res.manifest["deliberately_bad"] == {"mixpanel-events": {"malformed_json": 3}}
    with Lab() as lab:
        load_files(lab, res)
        check_counts(lab, res, bad=3)


def test_load_world_reads_a_synth_folder(make_world):
    world = pytest.importorskip("cohortlab.loaders.folder")
    res = make_world("remediated")
    with Lab() as lab:
        report = world.load_world(lab, res.out_dir)
        assert not report.ignored
        check_counts(lab, res)


@pytest.mark.parametrize("users", [1, 3])
def test_a_tiny_world_loads(make_world, users):
    """A world too small to have every kind of profile writes no empty file (an empty export is
    refused by the loaders): every file it lists loads."""
    world = pytest.importorskip("cohortlab.loaders.folder")
    res = make_world("demo", users=users)
    assert all((res.out_dir / f["path"]).stat().st_size > 0 for f in res.manifest["files"]
               if f["kind"].startswith("mparticle"))
    with Lab() as lab:
        report = world.load_world(lab, res.out_dir)
        assert not report.ignored
        check_counts(lab, res)


def resolution_available() -> bool:
    try:
        import cohortlab.simulation.resolution  # noqa: F401
    except ImportError:
        return False
    return True
