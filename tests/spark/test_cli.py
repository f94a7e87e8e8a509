"""`cohortlab simulate --engine spark` prints what `--engine duckdb` prints."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cohortlab import Lab
from cohortlab.cli import main

from .world import SNAP_COHORT, build_world

pytestmark = pytest.mark.spark


def test_simulate_on_spark_prints_the_same_report(tmp_path, spark_session, clean_views):
    db = tmp_path / "lab.duckdb"
    with Lab(db) as lab:
        build_world(lab.engine)
    outs = {}
    for engine in ("duckdb", "spark"):
        members = tmp_path / f"members-{engine}.csv"
        r = CliRunner().invoke(
            main,
            ["simulate", "--db", str(db), "--cohort", SNAP_COHORT, "--engine", engine,
             "--spark-master", "local[2]", "--members-out", str(members)],
        )
        assert r.exit_code == 0, r.output
        outs[engine] = (r.output.replace(str(members), "MEMBERS"), members.read_text())
    assert outs["spark"] == outs["duckdb"]
    assert "discrepancy waterfall" in outs["spark"][0]
    assert spark_session.sparkContext._jsc is not None  # the shared session was not stopped
