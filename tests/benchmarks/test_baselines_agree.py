"""The benchmark's baselines compute the same member outcomes as cohortlab (runs in CI).

On a tiny synthetic world, in both file layouts the generator writes (small worlds: Engage pages
for profiles and members; big worlds: profiles JSONL and members CSV), the hand-written DuckDB
script and the pandas script must give exactly the counts of (identifier_source, status,
gap_reason) per cohort that cohortlab's resolution gives, and the truth's counts.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from bench.harness import bench_dir, compare_counts, step_load, step_resolve

pytest.importorskip("cohortlab.synth")


def _baseline(name: str):
    path = bench_dir() / f"baseline_{name}.py"
    spec = importlib.util.spec_from_file_location(f"_bench_baseline_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _truth_counts(world: Path) -> dict:
    import pandas as pd

    t = pd.read_parquet(world / "truth.parquet")
    out: dict = {}
    for (cohort, src, status, gap), n in t.groupby(
        ["cohort_name", "identifier_source", "status", t["gap_reason"].fillna("")]
    ).size().items():
        out.setdefault(cohort, {})[f"{src}|{status}|{gap}"] = int(n)
    return out


@pytest.mark.parametrize("layout", ["pages", "big"])
def test_baselines_agree_with_cohortlab(tmp_path, layout):
    from cohortlab.synth import generate

    world = tmp_path / "world"
    formats = {} if layout == "pages" else {"profiles_format": "jsonl", "members_format": "csv"}
    generate(world, users=300, seed=11, scenario="mid_migration", **formats)
    db = str(tmp_path / "bench.duckdb")
    step_load(db=db, data=str(world))
    ours = step_resolve(db=db)["counts"]
    assert ours and all(c["members"] > 0 for c in ours.values())
    assert {c: v["outcomes"] for c, v in ours.items()} == _truth_counts(world)

    for name in ("duckdb", "pandas"):
        theirs = _baseline(name).run(world)["counts"]
        assert compare_counts(ours, theirs) == [], name
        assert {c: v["members"] for c, v in theirs.items()} == {c: v["members"] for c, v in ours.items()}

    # the classification query on the loaded tables, one cohort at a time (the simulate reference)
    classify = _baseline("classify")
    for cohort in ours:
        theirs = classify.run(db, cohort)["counts"]
        assert list(theirs) == [cohort]
        assert compare_counts({cohort: ours[cohort]}, theirs) == [], cohort
    if layout == "pages":  # a cohort without a snapshot is named, with the ones there are
        with pytest.raises(SystemExit, match=r"no snapshot of cohort 'Nope' \(cohorts with snapshots: 'Power Users'"):
            classify.run(db, "Nope")


def test_compare_counts_reports_every_difference():
    ours = {"A": {"as_of": "2026-03-01T00:00:00", "members": 3,
                  "outcomes": {"distinct_id|matched|": 2, "distinct_id|unmatched|mpid_not_found": 1}}}
    theirs = {"A": {"as_of": "2026-03-01T00:00:00", "members": 3,
                    "outcomes": {"distinct_id|matched|": 3}},
              "B": {"as_of": "2026-03-01T00:00:00", "members": 0, "outcomes": {}}}
    diffs = compare_counts(ours, theirs)
    assert diffs == [
        "A: distinct_id|matched|: cohortlab 2 vs baseline 3",
        "A: distinct_id|unmatched|mpid_not_found: cohortlab 1 vs baseline 0",
        "B: only in the baseline",
    ]
