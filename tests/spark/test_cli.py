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
    assert r.exit_code == 1 and r.stderr.strip() == (
        f"error: {out}: is a folder, not a DuckDB database file (a folder written by `cohortlab export`: the Spark "
        "engine reads it, --engine spark)")


def test_an_export_spark_cannot_read_and_a_master_that_is_none_are_one_line(tmp_path, spark_session, clean_views):
    """A float MPID column in an export folder, and --spark-master bogus://nowhere, were a Python
    traceback (the second after a Java stack trace) (a review as a Spark user). The shared session
    is not stopped by the failed open."""
    import shutil

    import duckdb

    db = tmp_path / "lab.duckdb"
    with Lab(db) as lab:
        build_world(lab.engine)
    out = tmp_path / "canonical"
    assert CliRunner().invoke(main, ["export", "--db", str(db), "--out", str(out)]).exit_code == 0
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    profiles = bad / "mpa_profiles.parquet"
    duckdb.execute(f"COPY (SELECT * REPLACE (CAST(mpid AS DOUBLE) AS mpid) FROM '{out / 'mpa_profiles.parquet'}') "
               f"TO '{profiles}' (FORMAT PARQUET)")
    r = CliRunner().invoke(main, ["simulate", "--db", str(bad), "--cohort", SNAP_COHORT, "--engine", "spark",
                                  "--spark-master", "local[2]"])
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert r.stderr.strip().splitlines()[-1].startswith("error: mpa_profiles.mpid: a double column, where cohortlab "
                                                         "expects bigint")
    r = CliRunner().invoke(main, ["simulate", "--db", str(out), "--cohort", SNAP_COHORT, "--engine", "spark",
                                  "--spark-master", "bogus://nowhere"])
    assert r.exit_code == 1 and r.stderr.strip() == (
        "error: spark master 'bogus://nowhere' is not a master URL: local, local[N], local[*], spark://HOST:PORT, "
        "yarn or k8s://HOST:PORT (--spark-master, COHORTLAB_SPARK_MASTER)")
    assert spark_session.sparkContext._jsc is not None
