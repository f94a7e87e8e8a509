"""The cost of members mParticle does not hold yet: a one-time export, then members who enter
after it (never sent), each with events carrying ``$mparticle_user_id`` over many runs.

    python bench/pending_sends.py [--members 100000] [--events 10] [--days 60] [--cadence 1h] [--top 8]

Such a member is decided again, provisionally, at each run after which its identifier may differ
(docs/rules.md#resolution-time): here at the run after each of its events. The world is built in
an in-memory database (rows inserted straight into the canonical tables: no loading is
measured); ``simulate`` is timed, every SQL statement too (``bench/timing.py``), and the
figures printed: the simulation's wall time, the decisions step (the members' run of each
change), the statements that took longest, and the last run's counts, which must say every
pending member (``should_be_true`` = ``not_yet_true`` = ``--members``; the command fails
otherwise). docs/benchmarks.md#pending-members gives the measured figures.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

T0 = datetime(2026, 3, 1)


def build(lab, members: int, events: int, days: int) -> None:
    """MPIDs 1..members, each the ``$mparticle_user_id`` of Mixpanel profile u<i>; the cohort is
    u0 alone at T0 (the one-time export) and u0..u<members> an hour later; ``events`` events of
    each member from T0 + 1:30 over ``days`` days, each carrying its MPID (spread by a hash)."""
    e = lab.engine
    e.execute(f"INSERT INTO mpa_profiles (mpid, source) SELECT i, 'bench' FROM range(1, {members} + 1) t(i)")
    e.execute("INSERT INTO mp_profiles (distinct_id, mparticle_user_id) "
              f"SELECT 'u' || i, CAST(i AS VARCHAR) FROM range(1, {members} + 1) t(i)")
    e.execute("INSERT INTO mp_cohort_snapshots (snapshot_id, cohort_id, cohort_name, as_of, member_count) "
              "VALUES (1, NULL, 'Pending', ?, 1), (2, NULL, 'Pending', ?, ?)",
              [T0, T0 + timedelta(hours=1), members + 1])
    e.execute("INSERT INTO mp_cohort_members (snapshot_id, cohort_name, as_of, distinct_id) "
              "VALUES (1, 'Pending', ?, 'u0')", [T0])
    e.execute("INSERT INTO mp_cohort_members (snapshot_id, cohort_name, as_of, distinct_id) "
              f"SELECT 2, 'Pending', CAST(? AS TIMESTAMP), 'u' || i FROM range(0, {members} + 1) t(i)",
              [T0 + timedelta(hours=1)])
    span = days * 86_400_000_000
    e.execute("INSERT INTO mp_events (event, time, distinct_id, insert_id, mparticle_user_id, user_id) "
              f"SELECT 'Open', CAST(? AS TIMESTAMP) + to_microseconds(CAST(hash(i, j) % {span} AS BIGINT)), "
              "'u' || i, 'i' || i || '_' || j, CAST(i AS VARCHAR), 'u' || i "
              f"FROM range(1, {members} + 1) a(i), range({events}) b(j)", [T0 + timedelta(minutes=90)])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--members", type=int, default=100_000)
    ap.add_argument("--events", type=int, default=10, help="events per member")
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--cadence", default="1h")
    ap.add_argument("--top", type=int, default=8)
    a = ap.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.timing import StatementTimer
    from cohortlab import Lab

    with Lab() as lab:
        t = time.perf_counter()
        build(lab, a.members, a.events, a.days)
        built = time.perf_counter() - t
        timer = StatementTimer(width=90, methods=("execute", "query_rows", "query_df"))
        settings = {"cadence": a.cadence, "sync_type": "one_time", "event_identity_cutoff": T0.isoformat()}
        t = time.perf_counter()
        with timer:
            r = lab.simulate("Pending", at=T0 + timedelta(days=a.days), settings=settings)
            last = r.timeline.iloc[-1]
        wall = time.perf_counter() - t
    decisions = sum(s for key, s, _ in timer.top(10_000) if "_decisions AS" in key)
    print(f"world: {a.members:,} pending members x {a.events} events over {a.days} days, "
          f"{len(r.timeline):,} runs ({a.cadence}); built in {built:.2f} s")
    print(f"simulate: {wall:.2f} s (decisions step {decisions:.2f} s); "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
    for key, dt, n in timer.top(a.top):
        print(f"{dt:8.2f} s {n:5d}x  {key}")
    counts = (int(last.should_be_true), int(last.not_yet_true), int(last.true_count))
    print(f"last run: should_be_true {counts[0]:,}, not_yet_true {counts[1]:,}, true {counts[2]:,}")
    if counts != (a.members, a.members, 0):
        print(f"error: expected should_be_true = not_yet_true = {a.members:,} and nothing true", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
