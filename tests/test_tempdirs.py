"""cohortlab's folders in the system's temporary folder: a killed process's are swept by the next
run (the raw data of a report killed with SIGKILL stayed in /tmp for good; audit 94, left item)."""

import os
import subprocess
import sys

import pytest

from cohortlab import tempdirs


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_the_folders_of_ended_processes_are_swept_and_no_others(tmp_path):
    dead, alive = _dead_pid(), os.getppid()
    for name in (f"cohortlab-report-{dead}-abc", f"cohortlab-report-sims-{dead}-x", f"cohortlab-duckdb-{dead}-f00",
                 f"cohortlab-report-{alive}-abc", f"cohortlab-report-{os.getpid()}-mine", "cohortlab-report-notapid",
                 f"other-{dead}-abc"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "data.duckdb").write_text("raw data")
    (tmp_path / f"cohortlab-report-{dead}-file").write_text("a file, not a folder")
    removed = tempdirs.sweep_stale(tmp_path)
    assert sorted(p.name for p in removed) == sorted([f"cohortlab-duckdb-{dead}-f00", f"cohortlab-report-{dead}-abc",
                                                      f"cohortlab-report-sims-{dead}-x"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([
        f"cohortlab-report-{alive}-abc", f"cohortlab-report-{os.getpid()}-mine", "cohortlab-report-notapid",
        f"other-{dead}-abc", f"cohortlab-report-{dead}-file"])


def test_a_new_folder_names_its_process_and_sweeps_first(tmp_path, monkeypatch):
    monkeypatch.setattr(tempdirs.tempfile, "tempdir", str(tmp_path))
    dead = _dead_pid()
    (tmp_path / f"cohortlab-report-{dead}-old").mkdir()
    d = tempdirs.make_temp_dir("report")
    try:
        assert os.path.basename(d.name).startswith(f"cohortlab-report-{os.getpid()}-")
        assert not (tmp_path / f"cohortlab-report-{dead}-old").exists()
    finally:
        d.cleanup()
    assert tempdirs.temp_dir_path("duckdb", "f00") == str(tmp_path / f"cohortlab-duckdb-{os.getpid()}-f00")
    # once per process and temporary folder: a report opens many engines, the listing is not repeated
    (tmp_path / f"cohortlab-report-{dead}-later").mkdir()
    tempdirs.make_temp_dir("report").cleanup()
    assert (tmp_path / f"cohortlab-report-{dead}-later").exists()
    with pytest.raises(ValueError):
        tempdirs.make_temp_dir("other")
