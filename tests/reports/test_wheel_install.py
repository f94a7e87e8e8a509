"""A wheel install (not editable) runs a report from a folder outside the repository: the
notebooks ship as package data and are found without the source tree.

(It ran ``cohortlab demo``, all four notebooks, about 20 CPU-seconds of notebooks that the
report tests on a checkout run already. What is particular to a wheel install is checked once: the
installed ``cohortlab`` generates a world, loads it and runs one of its shipped notebooks by
name with the venv's own kernel (``cohortlab synth`` + ``cohortlab report --data``, the demo's
steps); the four notebooks are in the installed package; one notebook runs as shipped on the
shipped sample exports.)

The fresh venv sees the dependencies of the test interpreter through a ``.pth`` line (nothing is
downloaded); ``cohortlab`` itself must be imported from the installed wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{cmd}\n{r.stdout}\n{r.stderr}"
    return r


def test_wheel_install_runs_the_demo_s_steps_outside_the_repository(tmp_path):
    # build from a copy of the sources, so the build leaves nothing in the repository
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "cohortlab", src / "cohortlab", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(src), "-w", wheels])
    (wheel,) = wheels.glob("cohortlab-*.whl")

    venv = tmp_path / "venv"
    # no pip of its own (ensurepip took about 3 CPU-s): the test interpreter's pip, seen through the
    # .pth line below, runs under the venv's python and installs the wheel into the venv
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv])
    py = venv / "bin" / "python"
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # deps, not cohortlab
    # the data files pip would have installed with nbconvert (its HTML templates); no kernels
    (venv / "share" / "jupyter").mkdir(parents=True)
    (venv / "share" / "jupyter" / "nbconvert").symlink_to(Path(sys.prefix) / "share" / "jupyter" / "nbconvert")
    _run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed", wheel])

    away = tmp_path / "elsewhere"
    away.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "COHORTLAB_ENGINE")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    where = _run([py, "-c", "import cohortlab, cohortlab.report.runner as r; print(cohortlab.__file__); "
                            "print(r.NOTEBOOKS_DIR)"], cwd=away, env=env).stdout.split()
    assert Path(where[0]).is_relative_to(venv) and Path(where[1]).is_relative_to(venv)
    kernel = _run([py, "-c", "from cohortlab.report.runner import kernel_name; print(kernel_name())"],
                  cwd=away, env=env).stdout.strip()
    assert kernel == "python3"  # the venv's own interpreter runs the notebooks, not the repository's kernel

    # the demo's steps with the installed command, one notebook found by its name in the package
    # (a relative --out, as the demo's)
    _run([venv / "bin" / "cohortlab", "synth", "--users", "300", "--seed", "7", "--scenario", "demo",
          "demo/world"], cwd=away, env=env, timeout=600)
    r = _run([venv / "bin" / "cohortlab", "report", "--data", "demo/world", "--notebooks", "sync_timeline",
              "--out", "demo/report"], cwd=away, env=env, timeout=900)
    index = away / r.stdout.strip().splitlines()[-1]
    assert index.resolve() == (away / "demo" / "report" / "index.html").resolve() and index.is_file()
    for name in ("sync_timeline",):
        assert f"{name}: ok" in r.stderr
        doc = json.loads((away / "demo" / "report" / name / "metrics.json").read_text())
        assert doc["notebook"] == name and doc["headline"]
    # every notebook the demo runs ships in the installed package
    for name in ("match_rates", "identity_gaps", "sync_timeline", "eit_migration"):
        assert (Path(where[1]) / f"{name}.ipynb").is_file(), name

    # a notebook opened as shipped reads the sample exports shipped in the wheel (its default data,
    # ../sample_data from its own folder): the wheel had no sample data, and the notebook failed
    installed = Path(where[1])
    assert (installed.parent / "sample_data" / "mixpanel" / "cohorts.json").is_file()
    _run([py, "-m", "papermill", installed / "match_rates.ipynb", away / "as_shipped.ipynb", "-k", "python3",
          "--cwd", installed], cwd=away, env=env, timeout=600)
    cells = json.loads((away / "as_shipped.ipynb").read_text())["cells"]
    outputs = [o for c in cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert "Power Users" in json.dumps(outputs)  # a cohort of the sample exports

    # `cohortlab lab` of the wheel opens copies in the current folder, never the installed notebooks
    work = _run([py, "-c", "from cohortlab.cli.report import in_checkout, lab_workspace\n"
                           "from cohortlab.report.runner import NOTEBOOKS_DIR as n\n"
                           "import pathlib\n"
                           "assert not in_checkout(n)\n"
                           "print(lab_workspace(n, n.parent / 'sample_data', pathlib.Path.cwd())[0])"],
                cwd=away, env=env).stdout.strip()
    assert Path(work) == away / "cohortlab-notebooks" / "notebooks"
    assert sorted(p.name for p in Path(work).glob("*.ipynb")) == sorted(p.name for p in installed.glob("*.ipynb"))
    assert (Path(work).parent / "sample_data" / "mixpanel" / "cohorts.json").is_file()
