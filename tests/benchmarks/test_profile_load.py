"""bench/profile_load.py: where a load spends its time (runs in CI on a tiny world)."""

from __future__ import annotations

import importlib.util
import json

from bench.harness import bench_dir


def _tool():
    spec = importlib.util.spec_from_file_location("_profile_load", bench_dir() / "profile_load.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_profile_names_every_kind_and_explains_one_statement(tmp_path, capsys):
    from cohortlab import Lab
    from cohortlab.synth import generate

    world = tmp_path / "w"
    generate(world, users=300, seed=3, scenario="mid_migration")
    db = tmp_path / "p.duckdb"
    assert _tool().main([str(world), "--db", str(db), "--top", "3", "--explain", "INSERT INTO mp_events"]) == 0
    out = capsys.readouterr().out
    for kind in ("mixpanel-events", "mixpanel-profiles", "mixpanel-members", "mparticle-profiles"):
        assert f"  {kind}" in out
        # statements' wall, load() wall and load() CPU seconds, each a number
        line = next(ln for ln in out.splitlines() if ln.startswith(f"  {kind} "))
        figures = [float(x) for x in line.split()[1:] if x != "s"]
        assert len(figures) == 3 and figures[1] > 0 and figures[2] > 0, line
    assert "s CPU (all threads)" in out
    assert "top 3 statements" in out and "EXPLAIN ANALYZE" in out and "Insert" in out
    # the statement run under EXPLAIN ANALYZE took effect once, as in a normal load: the events
    # stored are the generator's count
    events = json.loads((world / "manifest.json").read_text())["counts"]["events"]
    with Lab(str(db), read_only=True) as lab:
        assert lab.engine.query_rows("SELECT count(*) FROM mp_events")[0][0] == events
