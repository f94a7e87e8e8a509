"""DuckDB settings from the environment: one variable caps every command and notebook of a job."""

from __future__ import annotations

import pytest

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


def test_bad_engine_arguments_from_python_are_settings_errors_naming_them(tmp_path, monkeypatch):
    """Lab(memory_limit="lots") was DuckDB's ParserException, Lab(threads="two") a ValueError from int()
    and Lab(threads=0) silently all cores; each is one line naming the argument, and
    the database file is not left open behind the error."""
    import pytest

    from cohortlab import Lab
    from cohortlab.errors import SettingsError

    db = tmp_path / "lab.duckdb"
    for kw, message in [({"memory_limit": "lots"}, r"memory_limit='lots': not a memory size \(e\.g\. 1\.5GB"),
                        ({"memory_limit": "1'GB"}, r"memory_limit=\"1'GB\": not a memory size"),
                        ({"threads": "two"}, r"threads='two': not a number of threads"),
                        ({"threads": 0}, r"threads=0: not a number of threads")]:
        with pytest.raises(SettingsError, match=message):
            Lab(db, **kw)
    monkeypatch.setenv("COHORTLAB_MEMORY_LIMIT", "lots")
    with pytest.raises(SettingsError, match=r"COHORTLAB_MEMORY_LIMIT='lots': not a memory size"):
        DuckDBEngine(None)
    monkeypatch.delenv("COHORTLAB_MEMORY_LIMIT")
    with Lab(db, memory_limit="1GB", threads="2") as lab:  # a number as text is a number
        assert _setting(lab.engine, "threads") == 2


def test_a_misspelt_lab_option_names_lab_and_an_engine_given_takes_no_duckdb_option(tmp_path):
    """Lab(memry_limit=...) was a TypeError naming DuckDBEngine.__init__, a class the user never
    called; and with an engine given, memory_limit was silently not applied."""
    import pytest

    from cohortlab import Lab
    from cohortlab.errors import SettingsError

    with pytest.raises(TypeError, match=r"Lab\.__init__\(\) got an unexpected keyword argument 'memry_limit'"):
        Lab(tmp_path / "a.duckdb", memry_limit="1GB")
    engine = DuckDBEngine(None)
    with pytest.raises(SettingsError, match="memory_limit and threads are DuckDB's: set them on the engine given"):
        Lab(engine=engine, memory_limit="1GB")
    engine.close()


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


def test_an_interrupted_query_is_a_keyboard_interrupt_in_python():
    """Ctrl-C during a DuckDB statement of any Lab call (a load, a simulation) reaches Python as
    KeyboardInterrupt, as everywhere else in Python; DuckDB raises its own exception types
    (a Ctrl-C inside Lab.load surfaced as RuntimeError: Query interrupted)."""
    import threading
    import time

    from cohortlab.lab import Lab

    with Lab() as lab:
        threading.Thread(target=lambda: (time.sleep(0.3), lab.engine.con.interrupt()), daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            lab.engine.query_rows("SELECT count(*) FROM range(100000000000) a, range(10) b")
        assert lab.engine.query_rows("SELECT 42") == [(42,)]  # the connection is still usable
