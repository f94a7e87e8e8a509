"""`cohortlab simulate --engine spark` prints what `--engine duckdb` prints."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cohortlab import Lab
from cohortlab.cli import main

from .world import SNAP_COHORT, build_world

pytestmark = pytest.mark.spark


def test_simulate_on_spark_prints_the_same_report_from_an_export_folder(tmp_path, spark_session, clean_views):
    """The same text and the same --members-out file as --engine duckdb; with --engine spark, --db
    may be a folder written by `cohortlab export` (docs/spark.md). One test, because each Spark
    simulation costs seconds of CI."""
    db = tmp_path / "lab.duckdb"
    with Lab(db) as lab:
        build_world(lab.engine)
    out = tmp_path / "canonical"
    r = CliRunner().invoke(main, ["export", "--db", str(db), "--out", str(out)])
    assert r.exit_code == 0, r.output
    outs, stored = {}, {}
    for engine, source in (("duckdb", db), ("spark", out)):
        members = tmp_path / f"members-{engine}.csv"
        r = CliRunner().invoke(
            main,
            ["simulate", "--db", str(source), "--cohort", SNAP_COHORT, "--engine", engine,
             "--spark-master", "local[2]", "--members-out", str(members), "--no-store"],
        )
        assert r.exit_code == 0, r.output
        lines = r.output.replace(str(members), "MEMBERS").splitlines()
        stored[engine] = [x for x in lines if x.startswith("simulation:")]  # the one line that may differ
        outs[engine] = ("\n".join(x for x in lines if not x.startswith("simulation:")), members.read_text())
    assert outs["spark"] == outs["duckdb"]
    assert stored == {"duckdb": ["simulation: not stored (--no-store)"],
                      "spark": ["simulation: not stored (the spark engine does not store simulations)"]}
    assert "discrepancy waterfall" in outs["spark"][0] and outs["spark"][1].count("\n") > 1
    assert spark_session.sparkContext._jsc is not None  # the shared session was not stopped
    r = CliRunner().invoke(main, ["simulate", "--db", str(out), "--cohort", SNAP_COHORT])  # DuckDB: a file only
    assert r.exit_code == 1 and "is a folder, not a DuckDB database file" in r.output
