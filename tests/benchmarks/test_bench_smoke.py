"""Smoke test of ``cohortlab bench`` at 10k users (not in CI: ``pytest -m bench tests/bench``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.bench


def test_bench_runs_every_step_at_10k_users(tmp_path):
    out = tmp_path / "bench.json"
    exe = Path(sys.executable).with_name("cohortlab")
    proc = subprocess.run(
        [str(exe), "bench", "--users", "10000", "--repeat", "1", "--out", str(out), "--keep", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["users"] == 10_000
    for step in ("load", "resolve", "simulate", "classify", "timeline", "migration", "report_db", "report", "demo",
                 "duckdb", "pandas"):
        s = res["steps"][step]
        assert s["status"] == "ok", (step, s["status"])
        assert s["median_wall_s"] > 0 and s["peak_rss_mib"] > 0
        assert s["ratio_duckdb"] > 0 and s["ratio_pandas"] > 0
    assert res["steps"]["simulate"]["ratio_classify"] > 0
    assert res["agreement"] == {"duckdb": "agree", "pandas": "agree", "classify": "agree"}
    assert res["steps"]["timeline"]["detail"]["runs"] == 30 * 96 + 1
    assert set(res["targets"]) >= {"load_resolve_within_1.5x_duckdb", "10x_faster_than_pandas", "demo_under_30_s",
                                   "simulate_within_1.5x_classify", "report_db_under_30_s"}
    assert "load + resolution + waterfall" in proc.stdout


def test_bench_fails_loudly_on_an_unknown_step(tmp_path):
    exe = Path(sys.executable).with_name("cohortlab")
    proc = subprocess.run([str(exe), "bench", "--users", "1000", "--steps", "load,nope"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "unknown step" in proc.stderr
