"""DuckDB settings from the environment: one variable caps every command and notebook of a job."""

from __future__ import annotations

from cohortlab.engines.duckdb import DuckDBEngine


def _setting(eng, name):
    return eng.query_rows(f"SELECT current_setting('{name}')")[0][0]


def test_memory_limit_and_threads_from_the_environment(monkeypatch):
    monkeypatch.setenv("COHORTLAB_MEMORY_LIMIT", "700MB")
    monkeypatch.setenv("COHORTLAB_THREADS", "1")
    eng = DuckDBEngine(None)
    assert _setting(eng, "memory_limit") == "667.5 MiB"  # DuckDB shows 700 MB in MiB
    assert _setting(eng, "threads") == 1


def test_explicit_arguments_win_over_the_environment(monkeypatch):
    monkeypatch.setenv("COHORTLAB_MEMORY_LIMIT", "700MB")
    eng = DuckDBEngine(None, memory_limit="1GB", threads=2)
    assert _setting(eng, "memory_limit") == "953.6 MiB"
    assert _setting(eng, "threads") == 2


def test_a_thread_count_that_is_not_one_is_a_settings_error(monkeypatch):
    import pytest

    from cohortlab.errors import SettingsError

    monkeypatch.setenv("COHORTLAB_THREADS", "many")
    with pytest.raises(SettingsError, match=r"COHORTLAB_THREADS='many': not a number of threads"):
        DuckDBEngine(None)


def test_spill_files_a_killed_process_left_are_removed_at_the_next_open(tmp_path):
    """A load killed while DuckDB spilled left <db>.tmp/duckdb_temp_<pid>_* for good (DuckDB removes
    only its own, at close); the next process that opens the file for writing removes them."""
    db = tmp_path / "lab.duckdb"
    DuckDBEngine(str(db)).close()
    spill = tmp_path / "lab.duckdb.tmp"
    spill.mkdir()
    for name in ("duckdb_temp_4242_0_owner", "duckdb_temp_4242_0_storage_DEFAULT-0.tmp"):
        (spill / name).write_bytes(b"x" * 1000)
    (spill / "notes.txt").write_text("not DuckDB's")
    DuckDBEngine(str(db), read_only=True).close()  # a reader leaves them (it spills elsewhere)
    assert len(list(spill.iterdir())) == 3
    DuckDBEngine(str(db)).close()
    assert [p.name for p in spill.iterdir()] == ["notes.txt"]
