"""Shared, expensive fixtures of the report tests: one tiny synthetic world and one report run,
built once per test session (and once across pytest-xdist workers, behind a lock file)."""

from __future__ import annotations

import os
import pickle
import shutil
import time
from pathlib import Path

import pytest

WORLD_USERS = 600
WORLD_SEED = 5
ROOT = Path(__file__).resolve().parents[2]


def _shared(tmp_path_factory, worker_id: str, name: str, build):
    """Build ``name`` once for the whole session: the first worker builds it, others wait."""
    base = tmp_path_factory.getbasetemp()
    root = base if worker_id == "master" else base.parent
    target, done, lock = root / name, root / f"{name}.done", root / f"{name}.lock"
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        deadline = time.monotonic() + 600
        while not done.exists():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for the shared fixture {name}")
            time.sleep(0.5)
        result = pickle.loads(done.read_bytes())
        if isinstance(result, BaseException):
            pytest.fail(f"shared fixture {name} failed in another worker: {result!r}")
        return result
    os.close(fd)
    try:
        result = build(target)
    except BaseException as e:  # let the waiting workers fail fast too
        done.write_bytes(pickle.dumps(RuntimeError(repr(e))))
        raise
    done.write_bytes(pickle.dumps(result))
    return result


@pytest.fixture(scope="session")
def worker_id(request):  # pytest-xdist provides this fixture; without xdist: "master"
    return getattr(request.config, "workerinput", {}).get("workerid", "master")


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory, worker_id) -> dict:
    """``cohortlab demo --users 600 --out <tmp>``: generates a tiny ``mid_migration`` world with
    the synthetic data generator, loads it and runs the report of all four notebooks."""
    pytest.importorskip("cohortlab.synth")

    def build(target: Path) -> dict:
        from click.testing import CliRunner

        from cohortlab.cli import main

        t0 = time.monotonic()
        r = CliRunner().invoke(main, ["demo", "--users", str(WORLD_USERS), "--seed", str(WORLD_SEED),
                                      "--out", str(target)])
        return {
            "exit_code": r.exit_code,
            "stdout": r.stdout,
            "stderr": r.stderr,
            "exception": repr(r.exception) if r.exception and r.exit_code not in (0, 1) else None,
            "seconds": time.monotonic() - t0,
            "world": target / "world",
            "out": target / "report",
        }

    return _shared(tmp_path_factory, worker_id, "demo", build)


@pytest.fixture(scope="session")
def sample_db(tmp_path_factory, worker_id) -> str:
    """The bundled sample exports (data/, no EIT switch) loaded once for the session into a
    database that the tests only read (reports on it, and its checks, open it read-only)."""

    def build(target: Path) -> str:
        from cohortlab import Lab
        from cohortlab.loaders.folder import load_world

        target.mkdir()
        db = target / "sample.duckdb"
        with Lab(str(db)) as lab:
            load_world(lab, str(ROOT / "data"), progress=False)
        return str(db)

    return _shared(tmp_path_factory, worker_id, "sample", build)


@pytest.fixture(scope="session")
def synth_world(demo_run) -> Path:
    return demo_run["world"]


@pytest.fixture(scope="session")
def report_run(demo_run) -> dict:
    assert demo_run["exception"] is None, demo_run["exception"] + demo_run["stderr"]
    return demo_run


@pytest.fixture
def world_lab(report_run, tmp_path):
    """A private copy of the report's database (the notebooks' data), opened as a Lab."""
    from cohortlab import Lab

    db = tmp_path / "copy.duckdb"
    src = report_run["out"] / "data.duckdb"
    shutil.copy(src, db)
    if src.with_suffix(".duckdb.wal").exists():
        shutil.copy(src.with_suffix(".duckdb.wal"), db.with_suffix(".duckdb.wal"))
    with Lab(str(db)) as lab:
        yield lab
