"""load_world loads a folder's Mixpanel events beside its other exports, on a second connection
to the same database: the same tables as one load after the other; each load all or nothing; a
failure stops new loads (the one beside finishes) and names the first failed file; Ctrl-C rolls
the events back too; a load that runs out of memory beside the other runs again alone; files large
next to the memory limit load one after the other."""

from __future__ import annotations

import threading
import time

import pytest

from cohortlab import Lab
from cohortlab.loaders import LoadError
from cohortlab.loaders.folder import LOAD_PARALLEL_ENV, load_parallel, load_world
from cohortlab.loaders.mixpanel_events import MixpanelEventsLoader

# every column but the load ids (a snapshot's id is its load's), which follow the order loads start
# in (two run at once), and the wall-clock time of each load
_NOT_COMPARED = ("load_id", "snapshot_id", "loaded_at")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from cohortlab.synth import generate

    out = tmp_path_factory.mktemp("lanes") / "world"
    generate(out, users=400, seed=11, scenario="mid_migration")
    return out


@pytest.fixture
def events_threads(monkeypatch):
    """The names of the threads the events loader ran in."""
    names: list[str] = []
    real = MixpanelEventsLoader.load

    def load(self, *a, **k):
        names.append(threading.current_thread().name)
        return real(self, *a, **k)

    monkeypatch.setattr(MixpanelEventsLoader, "load", load)
    return names


def _content(lab) -> dict[str, list[tuple]]:
    """Every canonical table's rows (but the load ids), sorted."""
    from cohortlab import schema

    out = {}
    for t in schema.TABLES:
        cols = [c for (c,) in lab.engine.query_rows(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position", [t])
            if c not in _NOT_COMPARED]
        select = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in cols)
        out[t] = sorted(lab.engine.query_rows(f"SELECT {select} FROM {t}"), key=repr)
    return out


def test_the_events_load_beside_the_rest_into_the_same_tables(world, monkeypatch, events_threads, run_once):
    monkeypatch.setenv(LOAD_PARALLEL_ENV, "1")
    with Lab() as one_by_one:
        serial = load_world(one_by_one, world)
        expected = _content(one_by_one)
    assert events_threads == ["MainThread"]
    monkeypatch.setenv(LOAD_PARALLEL_ENV, "2")
    with Lab() as lab:
        beside = load_world(lab, world)
        assert events_threads[1:] == ["cohortlab-load-events"]
        got = _content(lab)
        # the folder's order, whatever order the loads ended in
        assert [r.kind for r in beside.reports] == [r.kind for r in serial.reports]
        assert str(beside) == str(serial)
        assert got["mp_events"] and got["mp_cohort_members"] and got["mpa_profiles"]
        assert got == expected
        # loading the folder again changes nothing, in either lane
        again = load_world(lab, world)
        assert sum(r.loaded for r in again.reports) == 0
        assert _content(lab) == expected


def test_one_thread_or_the_setting_loads_one_after_the_other(world, monkeypatch, events_threads, run_once):
    monkeypatch.setenv(LOAD_PARALLEL_ENV, "1")
    assert load_parallel() == 1
    monkeypatch.setenv(LOAD_PARALLEL_ENV, "two")
    from cohortlab.errors import SettingsError

    with pytest.raises(SettingsError, match=r"COHORTLAB_LOAD_PARALLEL='two': expected a whole number"):
        load_parallel()
    monkeypatch.delenv(LOAD_PARALLEL_ENV)
    monkeypatch.delenv("COHORTLAB_THREADS", raising=False)
    monkeypatch.setattr("cohortlab.engines.duckdb.default_threads", lambda: 1)
    assert load_parallel() == 1
    monkeypatch.setattr("cohortlab.engines.duckdb.default_threads", lambda: 4)
    assert load_parallel() == 2
    monkeypatch.setenv("COHORTLAB_THREADS", "1")
    assert load_parallel() == 1
    # a lab's own thread count decides: one thread, one load at a time; two, the events beside
    with Lab(threads=1) as lab:
        assert load_parallel(lab.engine) == 1
        load_world(lab, world)
    with Lab(threads=2) as lab:
        assert load_parallel(lab.engine) == 2
        load_world(lab, world)
    assert events_threads == ["MainThread", "cohortlab-load-events"]


def test_a_failed_events_file_names_it_and_loads_no_event(world, tmp_path, monkeypatch, run_once):
    import shutil

    monkeypatch.setenv(LOAD_PARALLEL_ENV, "2")
    broken = tmp_path / "world"
    shutil.copytree(world, broken)
    bad = sorted((broken / "mixpanel" / "events").iterdir())[-1]
    bad.write_bytes(b"")
    with Lab() as lab:
        with pytest.raises(LoadError, match="empty file") as e:
            load_world(lab, broken)
        assert e.value.path == str(bad)
        assert lab.engine.query_rows("SELECT count(*) FROM mp_events")[0][0] == 0
        loaded = lab.engine.query_rows("SELECT kind, count(*) FROM loads GROUP BY kind")
        assert "mixpanel-events" not in dict(loaded)
        # what loaded beside it before it failed loaded whole: every file's rows are in
        for (load_id, rows) in lab.engine.query_rows("SELECT load_id, loaded FROM loads "
                                                     "WHERE kind = 'mparticle-profiles'"):
            assert lab.engine.query_rows("SELECT count(*) FROM mpa_profiles WHERE load_id = ?", [load_id])[0][0] == rows


def test_a_failed_load_beside_lets_the_events_finish_and_starts_no_other(world, tmp_path, monkeypatch, run_once):
    import shutil

    monkeypatch.setenv(LOAD_PARALLEL_ENV, "2")
    broken = tmp_path / "world"
    shutil.copytree(world, broken)
    bad = sorted(p for p in (broken / "mparticle").rglob("*") if p.is_file())[0]
    bad.write_bytes(b"")
    with Lab() as lab:
        with pytest.raises(LoadError, match="empty file") as e:
            load_world(lab, broken)
        assert e.value.path == str(bad)
        kinds = dict(lab.engine.query_rows("SELECT kind, count(*) FROM loads GROUP BY kind"))
        # the events finished (all of them); none of the loads after the failed one started
        events = len(list((broken / "mixpanel" / "events").iterdir()))
        assert kinds == {"mixpanel-events": events}
        assert lab.engine.query_rows("SELECT count(*) FROM mp_profiles")[0][0] == 0


def test_ctrl_c_rolls_the_events_back(world, monkeypatch, run_once):
    """Interrupted while the events are half loaded (a file's rows inserted, the load not
    committed): the interrupt reaches the caller, and no event, nor its load, is left."""
    monkeypatch.setenv(LOAD_PARALLEL_ENV, "2")
    inserted = threading.Event()
    real_file = MixpanelEventsLoader.load_file

    def load_file(self, ctx):
        result = real_file(self, ctx)
        inserted.set()
        while not ctx.engine._interrupted:  # until the caller is interrupted
            time.sleep(0.01)
        return result

    monkeypatch.setattr(MixpanelEventsLoader, "load_file", load_file)
    real_load = Lab.load

    def load(self, kind, *a, **k):
        if kind == "mixpanel-profiles":
            assert inserted.wait(30)
            raise KeyboardInterrupt
        return real_load(self, kind, *a, **k)

    monkeypatch.setattr(Lab, "load", load)
    with Lab() as lab:
        with pytest.raises(KeyboardInterrupt):
            load_world(lab, world)
        assert lab.engine.query_rows("SELECT count(*) FROM mp_events")[0][0] == 0
        assert lab.engine.query_rows("SELECT count(*) FROM loads WHERE kind = 'mixpanel-events'")[0][0] == 0
        assert not any(t.name == "cohortlab-load-events" for t in threading.enumerate())
        # the lab's own connection works on
        assert lab.engine.query_rows("SELECT count(*) FROM loads WHERE kind = 'mixpanel-cohorts'")[0][0] == 1


def _out_of_memory(path):
    return LoadError(path, "Out of Memory Error: failed to pin block of size 256.0 KiB")


def test_events_out_of_memory_beside_the_others_load_again_alone(world, monkeypatch, events_threads, run_once):
    import duckdb

    monkeypatch.setenv(LOAD_PARALLEL_ENV, "1")
    with Lab() as one_by_one:
        load_world(one_by_one, world)
        expected = _content(one_by_one)
    monkeypatch.setenv(LOAD_PARALLEL_ENV, "2")
    real_file = MixpanelEventsLoader.load_file

    def load_file(self, ctx):
        if threading.current_thread().name == "cohortlab-load-events":
            raise _out_of_memory(ctx.path) from duckdb.OutOfMemoryException("Out of Memory Error")
        return real_file(self, ctx)

    monkeypatch.setattr(MixpanelEventsLoader, "load_file", load_file)
    with Lab() as lab:
        load_world(lab, world)
        assert events_threads[1:] == ["cohortlab-load-events", "MainThread"]  # beside, then again alone
        assert _content(lab) == expected


def test_another_load_out_of_memory_beside_the_events_loads_again_once_they_end(world, monkeypatch, run_once):
    import duckdb

    monkeypatch.setenv(LOAD_PARALLEL_ENV, "1")
    with Lab() as one_by_one:
        load_world(one_by_one, world)
        expected = _content(one_by_one)
    monkeypatch.setenv(LOAD_PARALLEL_ENV, "2")
    failed_once = threading.Event()
    real_file = MixpanelEventsLoader.load_file

    def load_file(self, ctx):  # the events go on once the profiles have run out of memory
        assert failed_once.wait(30)
        time.sleep(0.2)
        return real_file(self, ctx)

    monkeypatch.setattr(MixpanelEventsLoader, "load_file", load_file)
    real_load = Lab.load
    calls = []

    def load(self, kind, *a, **k):
        if kind == "mixpanel-profiles":
            calls.append(any(t.name == "cohortlab-load-events" for t in threading.enumerate()))
            if not failed_once.is_set():
                failed_once.set()
                raise _out_of_memory(a[0][0]) from duckdb.OutOfMemoryException("Out of Memory Error")
        return real_load(self, kind, *a, **k)

    monkeypatch.setattr(Lab, "load", load)
    with Lab() as lab:
        load_world(lab, world)
        assert calls == [True, False]  # beside the events, then again after them
        assert _content(lab) == expected


def test_files_large_next_to_the_memory_limit_load_one_after_the_other(world, tmp_path, monkeypatch, events_threads,
                                                                       run_once):
    import gzip

    import cohortlab.loaders.folder as folder

    with Lab(memory_limit="1.5GB") as lab:  # DuckDB shows it as "1.3 GiB"
        assert folder.memory_limit_bytes(lab.engine) == 1.3 * 2**30
    monkeypatch.setenv(LOAD_PARALLEL_ENV, "2")
    monkeypatch.setattr(folder, "memory_limit_bytes", lambda engine: 2 * 1024)  # every file is large beside 2 KiB
    with Lab() as lab:
        load_world(lab, world)
    assert events_threads == ["MainThread"]
    packed = tmp_path / "p.json.gz"
    packed.write_bytes(gzip.compress(b"x" * 100_000))
    assert folder._decompressed_size(packed) == 100_000  # its trailer, larger than 4x its size
    assert folder._decompressed_size(world / "mixpanel" / "cohorts.json") == (world / "mixpanel" / "cohorts.json").stat().st_size
