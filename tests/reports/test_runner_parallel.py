"""The report runner runs two notebooks at a time: results (and the index) keep the order asked
for, the longest default notebook starts first, each kernel gets its share of the memory limit
and of the cores (DuckDB threads), and ``COHORTLAB_REPORT_PARALLEL`` chooses how many run at once."""

import re
import time
from pathlib import Path

import nbformat
import pytest

from cohortlab import Lab

from cohortlab.report import scheduling
from cohortlab.report.runner import ReportError, parallel_notebooks, run_report

KERNELSPEC = {"name": "cohortlab", "display_name": "cohortlab (Python 3)", "language": "python"}


def _notebook(path: Path, seconds: float, *, reads_shared: bool = False) -> Path:
    """A notebook that records when it ran and the memory limit its kernel was given
    (``reads_shared``: it declares the parameter of the shared simulations)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = KERNELSPEC
    params = nbformat.v4.new_code_cell('db = None\noutput_dir = "."' + ("\nsimulations = None" if reads_shared else ""))
    params.metadata["tags"] = ["parameters"]
    nb.cells.append(params)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import json, os, time\n"
        "t0 = time.time()\n"
        f"time.sleep({seconds})\n"
        "json.dump({'title': os.path.basename(output_dir), 'db': db, 'start': t0, 'end': time.time(),\n"
        "           'memory_limit': os.environ.get('COHORTLAB_MEMORY_LIMIT'),\n"
        "           'threads': os.environ.get('COHORTLAB_THREADS'), 'simulations': globals().get('simulations'),\n"
        "           'cwd': os.getcwd()},\n"
        "          open(os.path.join(output_dir, 'metrics.json'), 'w'))"))
    nbformat.write(nb, str(path))
    return path


def _three(tmp_path: Path, seconds: float) -> tuple[Path, list[Path]]:
    d = tmp_path / "nbs"
    d.mkdir()
    db = d / "x.duckdb"
    with Lab(str(db)):  # an empty cohortlab database: the tiny notebooks read nothing
        pass
    # named like the default notebooks: eit_migration is known to be the longest
    return db, [_notebook(d / f"{n}.ipynb", seconds) for n in ("match_rates", "identity_gaps", "eit_migration")]


@pytest.fixture
def notebooks(tmp_path):
    """Three notebooks of 3 s each: long enough for the order in which they ran to show."""
    return _three(tmp_path, 3.0)


@pytest.fixture
def quick_notebooks(tmp_path):
    """Three notebooks that end at once, for tests that do not look at the order."""
    return _three(tmp_path, 0.1)


def test_two_at_a_time_in_the_order_asked_for_longest_first(notebooks, tmp_path, monkeypatch):
    db, nbs = notebooks
    monkeypatch.setenv("COHORTLAB_REPORT_PARALLEL", "2")
    monkeypatch.delenv("COHORTLAB_MEMORY_LIMIT", raising=False)
    monkeypatch.delenv("COHORTLAB_THREADS", raising=False)
    result = run_report(nbs, db=db, out=tmp_path / "out")
    assert result.ok
    assert [n.name for n in result.notebooks] == ["match_rates", "identity_gaps", "eit_migration"]
    runs = {n.name: n.metrics for n in result.notebooks}
    # eit_migration and identity_gaps ran together; match_rates after one of them
    assert runs["eit_migration"]["start"] < runs["identity_gaps"]["end"]
    assert runs["identity_gaps"]["start"] < runs["eit_migration"]["end"]
    assert runs["match_rates"]["start"] >= min(runs["eit_migration"]["end"], runs["identity_gaps"]["end"]) - 0.5
    # each kernel had its share of the default DuckDB memory limit (the migration what-if the
    # larger one) and half of the cores (at least one)
    from cohortlab.engines.duckdb import default_threads

    least = {n: _mb(e["COHORTLAB_MEMORY_LIMIT"]) for n, e in scheduling.kernel_settings(runs, 2).items()}
    got = {n: _mb(r["memory_limit"]) for n, r in runs.items()}
    budget = scheduling.memory_budget(2)
    # the what-if started first and kept the least share of the notebook beside it; that one had it
    assert got["eit_migration"] == budget - least["identity_gaps"] > got["identity_gaps"] == least["identity_gaps"]
    # match_rates took what the notebook still running left, or the whole budget when both had
    # ended (on a busy machine they may end within the same moment): never less than its least
    # share, and any two that ran at once stayed within the budget
    assert got["match_rates"] in (budget - got["eit_migration"], budget - got["identity_gaps"], budget)
    assert all(got[n] >= least[n] for n in runs)
    assert all(got[a] + got[b] <= budget for a in runs for b in runs
               if a < b and runs[a]["start"] < runs[b]["end"] and runs[b]["start"] < runs[a]["end"])
    assert {r["threads"] for r in runs.values()} == {str(max(1, default_threads() // 2))}
    import os

    # the runner's own settings are gone afterwards
    assert "COHORTLAB_MEMORY_LIMIT" not in os.environ and "COHORTLAB_THREADS" not in os.environ
    index = (tmp_path / "out" / "index.html").read_text()
    assert index.index("match_rates") < index.index("identity_gaps") < index.index("eit_migration")


def test_each_kernel_runs_in_its_notebooks_folder_and_this_process_stays_where_it_was(quick_notebooks, tmp_path,
                                                                                     monkeypatch):
    # papermill's cwd= changes the whole process's folder from the thread that runs a notebook:
    # two at once restored each other's, so the process was left in a report folder (a deleted
    # one after an interrupted report: every later getcwd() failed)
    import os

    db, nbs = quick_notebooks
    monkeypatch.setenv("COHORTLAB_REPORT_PARALLEL", "2")
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    seen = []
    real_chdir = os.chdir
    monkeypatch.setattr(os, "chdir", lambda p: (seen.append(str(p)), real_chdir(p))[1])
    result = run_report(nbs, db=db, out=tmp_path / "out")
    assert result.ok
    assert {n.name: n.metrics["cwd"] for n in result.notebooks} == {
        n.name: str((tmp_path / "out" / n.name).resolve()) for n in result.notebooks}
    assert os.getcwd() == str(here) and seen == []


def _mb(limit: str) -> int:
    assert limit.endswith("MB"), limit
    return int(limit[:-2])


def test_memory_shares_of_processes_that_run_together_stay_within_the_default_limit(monkeypatch):
    monkeypatch.delenv("COHORTLAB_MEMORY_LIMIT", raising=False)
    monkeypatch.delenv("COHORTLAB_THREADS", raising=False)
    monkeypatch.setattr("cohortlab.engines.duckdb.default_memory_limit", lambda: "1500MB")
    monkeypatch.setattr("cohortlab.engines.duckdb.default_threads", lambda: 2)
    names = ["match_rates", "identity_gaps", "sync_timeline", "eit_migration", scheduling.SHARED_SIMULATIONS]
    shares = {n: _mb(e["COHORTLAB_MEMORY_LIMIT"]) for n, e in scheduling.kernel_settings(names, 2).items()}
    # 1,500 MB less what the second process holds beyond its limit (470 MB), split 2:1 by weight
    assert shares == {"eit_migration": 686, "match_rates": 343, "identity_gaps": 343, "sync_timeline": 343,
                      scheduling.SHARED_SIMULATIONS: 343}
    assert all(shares["eit_migration"] + shares[n] + scheduling._PYTHON_MB <= 1500 for n in names[:3])
    # without the what-if, two light notebooks share the budget evenly
    assert {n: _mb(e["COHORTLAB_MEMORY_LIMIT"]) for n, e in scheduling.kernel_settings(names[:2], 2).items()} == {
        "match_rates": 515, "identity_gaps": 515}
    assert {e["COHORTLAB_THREADS"] for e in scheduling.kernel_settings(names, 2).values()} == {"1"}
    # one at a time: nothing set; what the user set: left alone
    assert scheduling.kernel_settings(names, 1) == {n: {} for n in names}
    monkeypatch.setenv("COHORTLAB_MEMORY_LIMIT", "2GB")
    monkeypatch.setenv("COHORTLAB_THREADS", "4")
    assert scheduling.kernel_settings(names, 2) == {n: {} for n in names}


def test_a_process_takes_the_share_the_running_ones_leave_and_keeps_the_least_share_of_the_next(monkeypatch):
    monkeypatch.delenv("COHORTLAB_MEMORY_LIMIT", raising=False)
    monkeypatch.delenv("COHORTLAB_THREADS", raising=False)
    monkeypatch.setattr("cohortlab.engines.duckdb.default_memory_limit", lambda: "1500MB")
    monkeypatch.setattr("cohortlab.engines.duckdb.default_threads", lambda: 2)
    sims = scheduling.SHARED_SIMULATIONS
    shares = scheduling.Shares(["eit_migration", "identity_gaps", "match_rates", "sync_timeline", sims], 2)
    # the report's order: the what-if and the shared simulations start together; the budget is 1,030 MB
    # (1,500 less 470), the least shares 686 and 343 MB
    assert _mb(shares.take("eit_migration")["COHORTLAB_MEMORY_LIMIT"]) == 1030 - 343  # keeps the next one's least
    assert _mb(shares.take(sims)["COHORTLAB_MEMORY_LIMIT"]) == 343
    shares.give_back(sims)
    with shares.held("identity_gaps") as env:
        assert env == {"COHORTLAB_MEMORY_LIMIT": "343MB", "COHORTLAB_THREADS": "1"}
    shares.take("match_rates")
    shares.give_back("eit_migration")
    # the what-if has ended: the notebook after it on its lane gets what match_rates leaves
    assert shares.take("sync_timeline") == {"COHORTLAB_MEMORY_LIMIT": "687MB", "COHORTLAB_THREADS": "1"}
    assert shares.given["match_rates"]["COHORTLAB_MEMORY_LIMIT"] == "343MB"

    # started the other way round, the simulations keep the what-if's least share for it
    shares = scheduling.Shares(["eit_migration", "identity_gaps", sims], 2)
    assert _mb(shares.take(sims)["COHORTLAB_MEMORY_LIMIT"]) == 1030 - 686
    assert _mb(shares.take("eit_migration")["COHORTLAB_MEMORY_LIMIT"]) == 686
    # a light notebook alone, with only light ones to come: half of the budget each
    shares = scheduling.Shares(["match_rates", "identity_gaps", "sync_timeline"], 2)
    assert [_mb(shares.take(n)["COHORTLAB_MEMORY_LIMIT"]) for n in ("match_rates", "identity_gaps")] == [515, 515]
    shares.give_back("match_rates")
    assert _mb(shares.take("sync_timeline")["COHORTLAB_MEMORY_LIMIT"]) == 515
    # one at a time, or a limit the user set: as kernel_settings, nothing of the memory is decided
    assert scheduling.Shares(["match_rates"], 1).take("match_rates") == {}
    monkeypatch.setenv("COHORTLAB_MEMORY_LIMIT", "2GB")
    assert scheduling.Shares(["match_rates", "identity_gaps"], 2).take("match_rates") == {"COHORTLAB_THREADS": "1"}


def test_one_at_a_time_and_a_limit_the_user_set(notebooks, tmp_path, monkeypatch):
    db, nbs = notebooks
    monkeypatch.setenv("COHORTLAB_REPORT_PARALLEL", "1")
    monkeypatch.setenv("COHORTLAB_MEMORY_LIMIT", "700MB")
    monkeypatch.delenv("COHORTLAB_THREADS", raising=False)
    t0 = time.monotonic()
    result = run_report(nbs[:2], db=db, out=tmp_path / "out")
    assert result.ok and time.monotonic() - t0 >= 6.0  # 2 x 3 s, one after the other
    a, b = (n.metrics for n in result.notebooks)
    assert a["end"] <= b["start"] + 0.5
    assert a["memory_limit"] == b["memory_limit"] == "700MB"
    assert a["threads"] is None and b["threads"] is None  # one at a time: every core for each


def test_readers_of_shared_simulations_start_after_the_others_and_run_without_them_when_it_fails(tmp_path,
                                                                                                 monkeypatch):
    d = tmp_path / "nbs"
    d.mkdir()
    db = d / "x.duckdb"
    with Lab(str(db)):
        pass
    from cohortlab.report import shared

    def fails(*args, **kwargs):
        raise RuntimeError("deliberately broken")

    monkeypatch.setattr(shared, "share_in_subprocess", fails)  # the notebooks then simulate on their own
    nbs = [_notebook(d / "match_rates.ipynb", 1.0, reads_shared=True),
           _notebook(d / "sync_timeline.ipynb", 1.0, reads_shared=True),
           _notebook(d / "eit_migration.ipynb", 1.0)]
    monkeypatch.setenv("COHORTLAB_REPORT_PARALLEL", "2")
    said: list[str] = []
    result = run_report(nbs, db=db, out=tmp_path / "out", progress=said.append)
    assert result.ok, [n.error for n in result.notebooks]
    assert any(m.startswith("shared simulations: not shared (RuntimeError: deliberately broken)")
               and "each notebook simulates on its own" in m for m in said), said
    runs = {n.name: n.metrics for n in result.notebooks}
    assert runs["match_rates"]["simulations"] is None and runs["sync_timeline"]["simulations"] is None
    # the notebook that reads no shared simulation was started first (the sharing ran beside it)
    order = [m.split(" ")[0] for m in said if re.fullmatch(r"\w+ \.\.\.", m)]  # "NAME ..." as each starts
    assert order[0] == "eit_migration" and set(order[1:]) == {"match_rates", "sync_timeline"}
    # [k/n] counts the notebooks done, in the order they end (it was each one's place in the list
    # asked for: a report began with "[4/4] eit_migration ...", as if it were over)
    assert [m.split("] ")[0] + "]" for m in said if re.match(r"\[\d/\d\] \w+: ok", m)] == ["[1/3]", "[2/3]", "[3/3]"]
    # asked not to share: no attempt
    said.clear()
    assert run_report(nbs, db=db, out=tmp_path / "out2", progress=said.append, share_simulations=False).ok
    assert not any("simulating each cohort once" in m or "not shared" in m for m in said), said


def test_the_sharing_process_waits_for_a_free_slot_beside_as_many_other_notebooks_as_workers(tmp_path, monkeypatch):
    """Two notebooks that read no shared simulation run at once: the process that simulates for the
    others waits until one has ended, so that no more processes run at once than the budget counts."""
    d = tmp_path / "nbs"
    d.mkdir()
    db = d / "x.duckdb"
    with Lab(str(db)):
        pass
    from cohortlab.report import runner, shared

    made, sharing = [], {}

    class Recorded(scheduling.Shares):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            made.append(self)

    def slow_and_broken(*args, env=None, **kwargs):  # holds its share a while; the readers then run without it
        sharing.update(start=time.time(), limit=env["COHORTLAB_MEMORY_LIMIT"])
        time.sleep(1.0)
        sharing["end"] = time.time()
        raise RuntimeError("deliberately broken")

    monkeypatch.setattr(runner, "Shares", Recorded)
    monkeypatch.setattr(shared, "share_in_subprocess", slow_and_broken)
    monkeypatch.setenv("COHORTLAB_REPORT_PARALLEL", "2")
    monkeypatch.delenv("COHORTLAB_MEMORY_LIMIT", raising=False)
    monkeypatch.delenv("COHORTLAB_THREADS", raising=False)
    nbs = [_notebook(d / "match_rates.ipynb", 0.1, reads_shared=True),
           _notebook(d / "sync_timeline.ipynb", 0.1, reads_shared=True),
           _notebook(d / "mine.ipynb", 3.0), _notebook(d / "eit_migration.ipynb", 3.0)]
    result = run_report(nbs, db=db, out=tmp_path / "out")
    assert result.ok, [n.error for n in result.notebooks]
    runs = {n.name: n.metrics for n in result.notebooks}
    # the two long notebooks ran together; the sharing process started once one of them had ended
    assert runs["mine"]["start"] < runs["eit_migration"]["end"] and runs["eit_migration"]["start"] < runs["mine"]["end"]
    assert sharing["start"] >= min(runs["mine"]["end"], runs["eit_migration"]["end"])
    # and the shares of the processes that ran together stayed within the budget of two
    (shares,) = made
    mb = {n: _mb(e["COHORTLAB_MEMORY_LIMIT"]) for n, e in shares.given.items()}
    assert mb[scheduling.SHARED_SIMULATIONS] == _mb(sharing["limit"])
    budget = scheduling.memory_budget(2)
    assert mb["mine"] + mb["eit_migration"] <= budget
    # it took what the one still running left (which one: whichever gave its slot back first)
    assert mb[scheduling.SHARED_SIMULATIONS] in (budget - mb["mine"], budget - mb["eit_migration"])


def test_the_parallel_setting(monkeypatch):
    monkeypatch.setenv("COHORTLAB_REPORT_PARALLEL", "3")
    assert parallel_notebooks() == 3
    monkeypatch.setenv("COHORTLAB_REPORT_PARALLEL", "two")
    with pytest.raises(ReportError, match="COHORTLAB_REPORT_PARALLEL='two'"):
        parallel_notebooks()
    monkeypatch.delenv("COHORTLAB_REPORT_PARALLEL")
    monkeypatch.setattr("cohortlab.engines.duckdb.default_threads", lambda: 1)
    assert parallel_notebooks() == 1
    monkeypatch.setattr("cohortlab.engines.duckdb.default_threads", lambda: 8)
    assert parallel_notebooks() == 2
    assert list(scheduling._LONGEST_FIRST)[0] == "eit_migration"


def test_a_relative_output_folder_works_with_two_notebooks_at_once(quick_notebooks, tmp_path, monkeypatch):
    """papermill's ``cwd=`` changes the directory of the whole process while a notebook runs: with
    ``--out`` relative, the second notebook used to find no output folder (the demo, run outside
    the repository, failed on it)."""
    db, nbs = quick_notebooks
    monkeypatch.setenv("COHORTLAB_REPORT_PARALLEL", "2")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rel").mkdir()
    with Lab(str(tmp_path / "rel" / "x.duckdb")):
        pass
    result = run_report(nbs, db="rel/x.duckdb", out="rel/report")  # a relative path parameter too
    assert result.ok, [n.error for n in result.notebooks]
    assert result.out_dir == (tmp_path / "rel" / "report").resolve()
    for n in result.notebooks:
        assert n.metrics["title"] == n.name
        assert n.metrics["db"] == str((tmp_path / "rel" / "x.duckdb").resolve())
        assert (tmp_path / "rel" / "report" / n.name / f"{n.name}.ipynb").exists()


def test_notebooks_run_two_at_a_time_leave_no_event_loop_open(tmp_path, monkeypatch):
    """Each notebook's kernel client runs on an event loop of the thread that runs it; the runner
    closes that loop when the notebook is done, so that a report leaves no loop (nor its
    selector's file descriptors) to the garbage collector: a JupyterLab session that runs reports
    all day does not accumulate them, and no ResourceWarning appears later in unrelated code."""
    import gc
    import warnings

    d = tmp_path / "nbs"
    d.mkdir()
    db = d / "x.duckdb"
    with Lab(str(db)):
        pass
    nbs = [_notebook(d / f"{n}.ipynb", 0.1) for n in ("match_rates", "identity_gaps")]
    monkeypatch.setenv("COHORTLAB_REPORT_PARALLEL", "2")
    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        assert run_report(nbs, db=db, out=tmp_path / "out").ok
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
