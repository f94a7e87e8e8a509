"""Simulations shared by the report's notebooks (cohortlab.report.shared, docs/reports.md#shared-simulations):
computed once into a scratch file (the user's database is only read), read by a notebook's
read-only Lab instead of computed again, with the same tables; simulations stored in the
database stay visible; the runner shares them and the figures do not change."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from cohortlab import Lab
from cohortlab.report import shared
from cohortlab.report.runner import run_report


@pytest.fixture
def db(report_run, tmp_path) -> str:
    """A private copy of the demo report's database (600 users, two cohorts)."""
    path = tmp_path / "copy.duckdb"
    shutil.copy(report_run["out"] / "data.duckdb", path)
    return str(path)


def _digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _cohorts(db) -> list[str]:
    from cohortlab.report.insights import cohort_names

    with Lab(db, read_only=True) as lab:
        return cohort_names(lab)


def _frame(result, name: str) -> pd.DataFrame:
    df = result.tables[name].as_pandas()
    return df.sort_values(list(df.columns)).reset_index(drop=True)


def test_shared_simulations_are_read_instead_of_computed_and_are_the_same(db, tmp_path, computed):
    names = _cohorts(db)
    assert len(names) == 2
    before = _digest(db)
    done = shared.share_simulations(db, tmp_path / "sims.duckdb")
    assert done.simulated == names and done.reused == []
    assert sorted(computed) == sorted(names)
    assert _digest(db) == before and not Path(db + ".wal").exists()  # the user's file is only read

    computed.clear()
    with Lab(db, read_only=True) as lab, Lab(db, read_only=True, use_stored=False) as fresh:
        assert shared.attach(lab.engine, done.path)
        for c in names:
            r = lab.simulate(c)
            assert r.stored and r.store_event == "read"
            f = fresh.simulate(c)
            assert r.counts == f.counts and r.audience == f.audience
            for t in ("resolution", "timeline", "waterfall", "attribute_state"):
                pd.testing.assert_frame_equal(_frame(r, t), _frame(f, t), check_dtype=False)
    assert computed == names  # only the fresh lab computed them


@pytest.mark.parametrize("name", ["sims-1.duckdb", "it's here.duckdb"])
def test_a_scratch_file_name_is_data_not_sql(db, tmp_path, computed, name):
    # the scratch file's name becomes its catalog's name: quoted, whatever it holds
    done = shared.share_simulations(db, tmp_path / name)
    assert len(done.simulated) == 2
    with Lab(db, read_only=True) as lab:
        assert shared.attach(lab.engine, done.path)
        assert all(lab.simulate(c).stored for c in done.simulated)


def test_simulations_stored_in_the_database_stay_visible(db, tmp_path, computed):
    first, second = _cohorts(db)
    with Lab(db) as lab:  # `cohortlab simulate` stored one of them in the database
        lab.simulate(first, store=True)
    computed.clear()
    done = shared.share_simulations(db, tmp_path / "sims.duckdb")
    assert done.reused == [first] and done.simulated == [second]
    assert computed == [second]
    computed.clear()
    with Lab(db, read_only=True) as lab:
        shared.attach(lab.engine, done.path)
        assert all(lab.simulate(c).store_event == "read" for c in (first, second))
    assert computed == []


def test_attach_needs_a_file_and_a_read_only_lab(db, tmp_path):
    with Lab(db, read_only=True) as lab:
        assert shared.attach(lab.engine, None) is False
        with pytest.raises(FileNotFoundError, match="no such file of shared simulations"):
            shared.attach(lab.engine, tmp_path / "missing.duckdb")
    done = shared.share_simulations(db, tmp_path / "sims.duckdb")
    with pytest.raises(FileExistsError):
        shared.share_simulations(db, done.path)
    with Lab(db) as lab:  # a writable lab resolves names in the file itself: left alone
        assert shared.attach(lab.engine, done.path) is False


def _injected(ipynb: Path) -> str:
    nb = nbformat.read(str(ipynb), as_version=4)
    return "\n".join(c.source for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))


def _figures(result) -> dict:
    return {n.name: {k: v for k, v in n.metrics.items() if k not in ("generated_at",)} for n in result.notebooks}


def test_the_runner_shares_them_and_the_figures_do_not_change(db, tmp_path, monkeypatch):
    monkeypatch.setenv("COHORTLAB_REPORT_PARALLEL", "2")
    said: list[str] = []
    before = _digest(db)
    nbs = ["match_rates", "identity_gaps"]
    with_sharing = run_report(nbs, db=db, out=tmp_path / "shared", progress=said.append)
    assert with_sharing.ok, [n.error for n in with_sharing.failed]
    # its own name on the line: a notebook's start line may come between it and "simulating ..."
    assert any(m.startswith("shared simulations: 2 simulated in ") for m in said), said
    assert not any("no simulation is stored" in m for m in said)  # the hint is for unshared runs
    for n in with_sharing.notebooks:
        text = _injected(n.ipynb)
        assert "simulations = " in text
        path = text.split("simulations = ", 1)[1].splitlines()[0].strip().strip("\"'")
        assert not Path(path).exists() and not Path(path).parent.exists()  # removed after the run
    assert _digest(db) == before

    said.clear()
    alone = run_report(nbs, db=db, out=tmp_path / "alone", progress=said.append, share_simulations=False)
    assert alone.ok
    assert not any("simulated" in m for m in said)
    # asked not to share, with nothing stored: said once, before the notebooks
    assert sum(m.startswith("no simulation is stored in ") for m in said) == 1
    assert all("simulations = " not in _injected(n.ipynb) for n in alone.notebooks)
    said.clear()  # one notebook simulates on its own anyway: no hint in every scheduled run's log
    assert run_report(["match_rates"], db=db, out=tmp_path / "one", progress=said.append).ok
    assert not any("no simulation is stored" in m for m in said), said
    a, b = _figures(with_sharing), _figures(alone)
    assert json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)
    assert sorted(a["match_rates"]["metrics"]["cohorts"]) == _cohorts(db)
    assert a["match_rates"]["headline"]["Mixpanel cohort members"] > 0


def test_the_sharing_process_starts_with_the_memory_share_it_is_given(db, tmp_path, monkeypatch):
    """The runner gives the process that simulates its own memory share (scheduling.kernel_settings)
    through ``env``, not through this process's environment, which two kernels start from."""
    monkeypatch.delenv("COHORTLAB_MEMORY_LIMIT", raising=False)
    with pytest.raises(RuntimeError, match="Memory must have a number"):
        shared.share_in_subprocess(db, tmp_path / "bad.duckdb", env={"COHORTLAB_MEMORY_LIMIT": "not a size"})
    done = shared.share_in_subprocess(db, tmp_path / "sims.duckdb", env={"COHORTLAB_MEMORY_LIMIT": "200MB"})
    assert sorted(done.simulated) == sorted(_cohorts(db)) and done.path.exists()
