"""``cohortlab bench`` run by the console script from the source checkout: the script does not put
the current folder on ``sys.path``, so the command finds ``bench/harness.py`` in the current folder
or a parent up to the git root itself; elsewhere it fails with a clear error. (The import happens
inside the command, so it is invoked, with ``bench`` neither importable nor imported.)"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cohortlab.cli import main
from cohortlab.cli.bench import checkout_root

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def as_console_script(monkeypatch):
    """``sys.path`` as the console script has it: neither the checkout nor the current folder on
    it, and ``bench`` not imported yet (all restored afterwards)."""
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".") and Path(p).resolve() != REPO])
    for name in [m for m in sys.modules if m == "bench" or m.startswith("bench.")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(ImportError):
        __import__("bench.harness")


@pytest.mark.parametrize("where", [".", "docs"], ids=["checkout", "a-subfolder"])
def test_bench_finds_the_harness_of_the_checkout_it_runs_in(where, as_console_script, monkeypatch):
    monkeypatch.chdir(REPO / where)
    r = CliRunner().invoke(main, ["bench", "--steps", "load,nope"])
    assert r.exit_code == 1
    assert "unknown step(s) ['nope']" in r.output  # the harness ran: the error is about the step
    assert "source checkout" not in r.output
    assert sys.modules["bench.harness"].__file__ == str(REPO / "bench" / "harness.py")


def test_bench_outside_a_checkout_says_where_to_run_it(as_console_script, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["bench", "--steps", "nope"])
    assert r.exit_code == 1
    assert "cohortlab bench runs from a source checkout" in r.output
    assert "unknown step" not in r.output


def test_checkout_root_stops_at_the_git_root(tmp_path):
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "harness.py").write_text("")
    repo = tmp_path / "repo"
    (repo / "a" / "b").mkdir(parents=True)
    (repo / ".git").write_text("gitdir: elsewhere\n")  # a worktree's .git is a file
    assert checkout_root(repo / "a" / "b") is None  # bench/ above the git root is not the checkout's
    (repo / "bench").mkdir()
    (repo / "bench" / "harness.py").write_text("")
    assert checkout_root(repo / "a" / "b") == repo.resolve()
    assert checkout_root(tmp_path) == tmp_path.resolve()  # no git: the folder itself
    assert checkout_root(tmp_path / "repo" / "a") == repo.resolve()
