"""Speed of the what-if (run with ``pytest -m bench tests/migration/test_bench.py``).

The target: 1M users with 30 days of events (about 30M events), four plans over 60 days, under
60 s on a 2-core machine, set-based in DuckDB. The world is built directly in SQL (building it
takes longer than the what-if); ``COHORTLAB_BENCH_USERS`` scales it down for a quick look.
The budget scales linearly with the number of users (never below 5 s). On a machine busier
than its cores (load average above the core count, e.g. other test suites running), wall time
measures the neighbours, so the check uses the process CPU time divided by the two threads.
"""

from __future__ import annotations

import os
import resource
import time

import pytest

from cohortlab import Lab
from cohortlab.migration.run import run_plans
from cohortlab.migration.plans import standard_plans

USERS = int(os.environ.get("COHORTLAB_BENCH_USERS", "1000000"))
EVENTS_PER_USER = 30


def build(lab: Lab, users: int) -> None:
    """90% logged-in users keyed by customer id, 10% anonymous ($device:), events spread
    uniformly over 2026-01-01 .. 2026-01-30, $mparticle_user_id on events from the 2026-01-15
    cutoff, every user in mParticle."""
    ex = lab.engine.execute
    ex(f"INSERT INTO mpa_profiles (mpid, source) SELECT 1000000000000 + u * 7919, 'bench' FROM range({users}) t(u)")
    ex(f"""INSERT INTO mpa_identities (mpid, kind, identity_type, value)
           SELECT 1000000000000 + u * 7919, 'user', 'customer_id', 'c' || u FROM range({users}) t(u) WHERE u % 10 <> 0""")
    ex(f"""INSERT INTO mp_events (event, time, distinct_id, insert_id, device_id, user_id, mparticle_user_id)
        SELECT 'e', t, CASE WHEN u % 10 = 0 THEN '$device:d' || u ELSE 'c' || u END, CAST(i AS VARCHAR), 'd' || u,
               CASE WHEN u % 10 = 0 THEN NULL ELSE 'c' || u END,
               CASE WHEN t >= TIMESTAMP '2026-01-15' THEN CAST(1000000000000 + u * 7919 AS VARCHAR) END
        FROM (SELECT i, CAST(hash(i) % {users} AS BIGINT) AS u,
                     TIMESTAMP '2026-01-01' + to_seconds(CAST(hash(i * 31 + 7) % (30 * 86400) AS BIGINT)) AS t
              FROM range({users * EVENTS_PER_USER}) r(i))""")


@pytest.mark.bench
def test_four_plans_sixty_days(tmp_path):
    with Lab(tmp_path / "bench.duckdb", threads=2) as lab:
        build(lab, USERS)
        plans = standard_plans("2026-02-01T00:00:00Z", rule="2026-01-20T00:00:00Z")
        cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])  # noqa: E731
        t0, c0 = time.perf_counter(), cpu()
        r = run_plans(lab.engine, plans, "2026-01-01", "2026-03-01", activity="repeat")
        daily, summary = r.daily, r.summary
        elapsed, cpu_s = time.perf_counter() - t0, cpu() - c0
        budget = max(5.0, 60.0 * USERS / 1_000_000)
        busy = os.getloadavg()[0] > (os.cpu_count() or 2)
        print(f"\n{USERS:,} users, {USERS * EVENTS_PER_USER:,} events, 4 plans x 60 days: wall {elapsed:.1f} s, "
              f"CPU {cpu_s:.1f} s, load {os.getloadavg()[0]:.1f} (budget {budget:.0f} s)")
        assert len(daily) == 4 * 60
        assert summary.set_index("plan").loc["switch only", "split_profiles_end"] > 0
        assert (cpu_s / 2 if busy else elapsed) < budget
