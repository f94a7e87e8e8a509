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
