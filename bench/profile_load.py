"""Where a load spends its time: every SQL statement ``load_world`` runs, timed and grouped.

    python bench/profile_load.py WORLD_DIR [--db FILE] [--top 25] [--memory-limit 1.5GB]
    python bench/profile_load.py WORLD_DIR --explain 'INSERT INTO mp_events'

Loads WORLD_DIR (a ``cohortlab synth`` folder or exports laid out the same way) into a fresh
database, wrapping the engine so that each statement's wall time is recorded. Prints the total,
the time per loader kind, and the statements that took longest, grouped by their first 80
characters (the same statement for 40 event files is one line, with its count).
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

    def load(self, engine, paths, **kwargs):
        timer.label = self.kind
        try:
            return orig_load(self, engine, paths, **kwargs)
        finally:
            timer.label = "-"

    tmp = None
    db = a.db
    if not db:
        tmp = tempfile.TemporaryDirectory()
        db = str(Path(tmp.name) / "profile.duckdb")
    for p in (db, db + ".wal"):
        if os.path.exists(p):
            os.remove(p)
    t0 = time.perf_counter()
    Loader.load = load
    try:
        with timer:
            lab = Lab(db, memory_limit=a.memory_limit)
            load_world(lab, a.world)
            lab.close()
    finally:
        Loader.load = orig_load
    wall = time.perf_counter() - t0
    print(f"load_world + close: {wall:.2f} s wall; statements {timer.seconds:.2f} s")
    print("\nby loader kind:")
    for kind, s in timer.by_label.most_common():
        print(f"  {kind:<22}{s:8.2f} s")
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
