"""Where a load spends its time: every SQL statement ``load_world`` runs, timed and grouped.

    python bench/profile_load.py WORLD_DIR [--db FILE] [--top 25] [--memory-limit 1.5GB]
    python bench/profile_load.py WORLD_DIR --explain 'INSERT INTO mp_events'

Loads WORLD_DIR (a ``cohortlab synth`` folder or exports laid out the same way) into a fresh
database, wrapping the engine so that each statement's wall time is recorded. Prints the total
(wall and CPU seconds), per loader kind the statements' wall time and the ``load()`` call's wall
and CPU time (CPU of the whole process, every DuckDB thread and Python: on a shared machine it
moves less with other work than wall time; wall minus statements is Python), and the statements
that took longest, grouped by their first 80 characters (the same statement for 40 event files
is one line, with its count). The kinds load one after the other (``COHORTLAB_LOAD_PARALLEL=1``),
so that each statement and the CPU are those of the kind that runs: the total is that of a load
without the events beside the others (docs/loading.md#folder-parallel).
``--explain PREFIX`` also prints DuckDB's ``EXPLAIN ANALYZE`` of the first statement (without a
result: CREATE, INSERT, ...) starting with PREFIX: that statement runs under EXPLAIN ANALYZE in
place of the plain one, so its effect happens once, as in a normal load.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("world")
    ap.add_argument("--db", help="database file (default: a temporary one, removed afterwards)")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--memory-limit")
    ap.add_argument("--explain", metavar="PREFIX")
    a = ap.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.timing import StatementTimer
    from cohortlab.lab import Lab
    from cohortlab.loaders.base import Loader
    from cohortlab.loaders.folder import load_world

    timer = StatementTimer(width=80, explain=(lambda key: key.startswith(a.explain)) if a.explain else None)
    orig_load = Loader.load
    # CPU seconds of the whole process (every DuckDB thread) per loader kind, Python included:
    # on a shared machine less sensitive to other work than wall time
    cpu_by_kind: dict[str, float] = {}
    wall_by_kind: dict[str, float] = {}

    def load(self, engine, paths, **kwargs):
        timer.label = self.kind
        c0, w0 = time.process_time(), time.perf_counter()
        try:
            return orig_load(self, engine, paths, **kwargs)
        finally:
            timer.label = "-"
            cpu_by_kind[self.kind] = cpu_by_kind.get(self.kind, 0.0) + time.process_time() - c0
            wall_by_kind[self.kind] = wall_by_kind.get(self.kind, 0.0) + time.perf_counter() - w0

    tmp = None
    db = a.db
    if not db:
        tmp = tempfile.TemporaryDirectory()
        db = str(Path(tmp.name) / "profile.duckdb")
    for p in (db, db + ".wal"):
        if os.path.exists(p):
            os.remove(p)
    from cohortlab.loaders.folder import LOAD_PARALLEL_ENV

    # one load at a time: each statement, and the process's CPU, belong to the kind that runs
    # (load_world would load the events beside the others, docs/loading.md#folder-parallel)
    parallel = os.environ.get(LOAD_PARALLEL_ENV)
    os.environ[LOAD_PARALLEL_ENV] = "1"
    t0, c0 = time.perf_counter(), time.process_time()
    Loader.load = load
    try:
        with timer:
            lab = Lab(db, memory_limit=a.memory_limit)
            load_world(lab, a.world)
            lab.close()
    finally:
        Loader.load = orig_load
        if parallel is None:
            os.environ.pop(LOAD_PARALLEL_ENV, None)
        else:
            os.environ[LOAD_PARALLEL_ENV] = parallel
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"load_world + close: {wall:.2f} s wall, {cpu:.2f} s CPU (all threads); statements {timer.seconds:.2f} s "
          f"(load average {os.getloadavg()[0]:.1f})")
    print("\nby loader kind:          statements   load() wall   load() CPU")
    for kind, s in timer.by_label.most_common():
        print(f"  {kind:<22}{s:8.2f} s  {wall_by_kind.get(kind, 0):10.2f} s  {cpu_by_kind.get(kind, 0):9.2f} s")
    print(f"\ntop {a.top} statements (grouped by their first 80 characters):")
    for key, s, n in timer.top(a.top):
        print(f"  {s:8.2f} s {n:4d}x  {key}")
    if timer.explained:
        print("\nEXPLAIN ANALYZE of the first statement starting with", repr(a.explain))
        print(timer.explained[0])
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
