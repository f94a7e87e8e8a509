"""bench/pending_sends.py: the cost of members a one-time export never sent (runs in CI, tiny)."""

from __future__ import annotations

import importlib.util
import re

from bench.harness import bench_dir


def _tool():
    spec = importlib.util.spec_from_file_location("_pending_sends", bench_dir() / "pending_sends.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_it_prints_the_figures_and_checks_every_member_is_pending(capsys):
    assert _tool().main(["--members", "300", "--events", "3", "--days", "2", "--top", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("world: 300 pending members x 3 events over 2 days, 49 runs (1h)")
    assert out[1].startswith("simulate: ") and "decisions step" in out[1] and "peak RSS" in out[1]
    assert len([line for line in out if re.match(r"^ +\d+\.\d\d s +\d+x  \S", line)]) == 2  # --top 2 statements
    assert out[-1] == "last run: should_be_true 300, not_yet_true 300, true 0"
