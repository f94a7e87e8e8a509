"""cohortlab's folders in the system's temporary folder: a killed process's are swept by the next
run (the raw data of a report killed with SIGKILL stayed in /tmp for good)."""

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
    private = tempdirs.make_private_dir("duckdb")
    assert os.path.dirname(private) == str(tmp_path)
    assert os.path.basename(private).startswith(f"cohortlab-duckdb-{os.getpid()}-")
    os.rmdir(private)
    # once per process and temporary folder: a report opens many engines, the listing is not repeated
    (tmp_path / f"cohortlab-report-{dead}-later").mkdir()
    tempdirs.make_temp_dir("report").cleanup()
    assert (tmp_path / f"cohortlab-report-{dead}-later").exists()
    with pytest.raises(ValueError):
        tempdirs.make_temp_dir("other")


@pytest.mark.parametrize("read_only", [False, True], ids=["in-memory", "read-only"])
def test_a_read_only_or_in_memory_engine_spills_into_a_folder_only_its_owner_reads(tmp_path, monkeypatch, read_only):
    """DuckDB made the spill folder of an in-memory or read-only engine itself, 0755,
    and its spill files 0644 under the usual umask 022: rows of the user's data, personal data
    included, readable by every user of the machine in /tmp while the process ran."""
    import duckdb

    from cohortlab import Lab

    monkeypatch.setattr(tempdirs.tempfile, "tempdir", str(tmp_path))
    db = None
    if read_only:
        db = str(tmp_path / "lab.duckdb")
        duckdb.connect(db).close()
    old_umask = os.umask(0o022)
    try:
        with Lab(db, read_only=read_only, memory_limit="30MB", threads=1) as lab:
            temp = lab.engine.query_rows("SELECT current_setting('temp_directory')")[0][0]
            assert os.path.basename(temp).startswith(f"cohortlab-duckdb-{os.getpid()}-")
            assert os.stat(temp).st_mode & 0o777 == 0o700
            lab.sql("SET preserve_insertion_order = false")  # a sort that spills: DuckDB writes into the folder
            lab.sql("CREATE TEMP TABLE x AS SELECT repeat('someone@example.com', 5) || i AS s FROM range(600000) t(i)")
            assert lab.sql("SELECT count(DISTINCT s) AS n FROM x")["n"][0] == 600000
            assert os.stat(temp).st_mode & 0o777 == 0o700
    finally:
        os.umask(old_umask)
    assert not os.path.exists(temp)  # removed at close


def test_the_spill_folder_of_an_engine_never_closed_goes_with_its_process(tmp_path):
    """A notebook's kernel ends with its labs open: their private spill folders are removed when
    the process ends, not left empty in the temporary folder until the next run sweeps them."""
    code = "from cohortlab import Lab; lab = Lab(); print(lab.engine.query_rows(\"SELECT current_setting('temp_directory')\")[0][0])"
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    temp = out.strip()
    assert os.path.dirname(temp) == str(tmp_path) and os.path.basename(temp).startswith("cohortlab-duckdb-")
    assert list(tmp_path.iterdir()) == []


def test_a_killed_load_s_copy_of_an_export_is_swept_by_the_next_run(tmp_path, monkeypatch):
    """A load reads a file with mixed line ends through a whole copy; killed with SIGKILL, the
    copy (personal data) stayed in the temporary folder for good: its folder had no process id
    (a reliability review). It is now a cohortlab-lines-<pid>-... folder, swept like the others."""
    from cohortlab import Lab

    monkeypatch.setattr(tempdirs.tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(tempdirs, "_swept", set())
    dead = _dead_pid()
    left = tmp_path / f"cohortlab-lines-{dead}-k1ll"
    left.mkdir()
    (left / "0.jsonl").write_text('{"event":"A","properties":{"distinct_id":"ann@example.com"}}\n')
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(b'{"event":"A","properties":{"time":1772000000,"distinct_id":"u1","$insert_id":"i1"}}\r\n'
                      b'{"event":"A","properties":{"time":1772000001,"distinct_id":"u2","$insert_id":"i2"}}\n')
    with Lab() as lab:
        assert lab.load("mixpanel-events", str(mixed)).loaded == 2
    assert not left.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("cohortlab-")] == []  # its own copy removed too
