"""Where verify, explain and the sync timeline spend their time: every SQL statement timed.

    python bench/profile_sim.py DB verify [--cohort C] [--top 25]
    python bench/profile_sim.py DB explain [--cohort C] [--user ID]
    python bench/profile_sim.py DB timeline [--cohort C] [--days 30] [--cadence 15m]
    python bench/profile_sim.py DB timeline --explain 'CREATE OR REPLACE TEMP TABLE sim_'
    COHORTLAB_MEMORY_LIMIT=687MB COHORTLAB_THREADS=1 python bench/profile_sim.py DB migration

Opens the loaded database DB, runs the command the same way the bench steps do
(``bench/harness.py``: ``verify``, ``explain``, ``timeline``; verify and explain also store a
simulation, run again from it, and drop it), and prints the total, then the statements that
took longest grouped by their first 90 characters. ``migration`` runs what the report's EIT
notebook runs (read-only, the standard plans around the data's switch, the events' days,
nothing stored); the report gives that notebook's kernel 687MB and one thread, as above.
``--explain PREFIX`` prints DuckDB's ``EXPLAIN ANALYZE`` of the first statement containing
PREFIX, in place of the plain run of that statement (its effect happens once).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _flatten(plan_json: str, top: int = 30) -> str:
    """The operators of a JSON ``EXPLAIN ANALYZE``, slowest first: seconds, rows, name, detail."""
    import json

    ops = []

    def walk(node, depth):
        name = node.get("name") or node.get("operator_name") or node.get("operator_type") or "?"
        extra = node.get("extra_info") or {}
        detail = "; ".join(f"{k}={v}" for k, v in extra.items() if k not in ("Estimated Cardinality",))[:160]
        ops.append((float(node.get("timing", node.get("operator_timing", 0)) or 0),
                    int(node.get("intermediate_rows", node.get("operator_cardinality", 0)) or 0),
                    depth, name.strip(), detail))
        for c in node.get("children", []):
            walk(c, depth + 1)

    root = json.loads(plan_json)
    root = root.get("operator", root) if isinstance(root, dict) else root
    for n in (root if isinstance(root, list) else [root]):
        walk(n, 0)
    total = sum(o[0] for o in ops)
    lines = [f"operators: {total:.2f} s in {len(ops)}"]
    for t, rows, depth, name, detail in sorted(ops, reverse=True)[:top]:
        lines.append(f"{t:7.2f} s {rows:>12,}  d{depth:<3} {name:<22} {detail}")
    return "\n".join(lines)


def _report_migration(db: str) -> dict:
    """The EIT notebook's what-if (``notebooks/eit_migration``) on a read-only lab."""
    from cohortlab.report import insights
    from cohortlab.report.notebook import open_lab

    lab = open_lab(db)
    try:
        switch_at, _ = insights.find_switch(lab)
        plans = insights.migration_plans(None, switch_at=switch_at)
        start, end = insights.migration_window(lab)
        daily, summary = insights.run_migration(lab, plans, start, end)
    finally:
        lab.close()
    return {"days": int(daily["day"].nunique()), "plans": len(plans),
            "final_match_rate": {r.plan: round(float(r.final_match_rate), 4) for r in summary.itertuples()}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("db")
    ap.add_argument("what", choices=("verify", "explain", "timeline", "simulate", "migration"))
    ap.add_argument("--cohort")
    ap.add_argument("--user")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--cadence", default="15m")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--explain", metavar="PREFIX")
    ap.add_argument("--as-of", action="store_true", help="resolution_time: as_of (the single-resolution mode)")
    a = ap.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench import harness
    from bench.timing import StatementTimer

    timer = StatementTimer(width=90, methods=("execute", "query_rows", "query_df"),
                           explain=(lambda key: a.explain in key) if a.explain else None,
                           explain_sql="EXPLAIN (ANALYZE, FORMAT JSON)")
    t0 = time.perf_counter()
    kw = {"cohort": a.cohort} if a.cohort else {}
    with timer:
        if a.what == "verify":
            out = harness.step_verify(a.db, **kw)
        elif a.what == "explain":
            out = harness.step_explain(a.db, **kw, **({"user": a.user} if a.user else {}))
        elif a.what == "migration":
            out = _report_migration(a.db)
        elif a.what == "simulate":
            cohort = a.cohort or harness.largest_cohort(a.db)
            with harness._lab(a.db) as lab:
                out = {"cohort": cohort, "audience": lab.simulate(cohort).audience}
        else:
            out = harness.step_timeline(a.db, **kw, days=str(a.days), cadence=a.cadence,
                                        **({"resolution_time": "as_of"} if a.as_of else {}))
    total = time.perf_counter() - t0
    print(f"{a.what}: {total:.2f} s; {out}")
    print(f"statements: {timer.seconds:.2f} s in {timer.calls} calls")
    for key, dt, n in timer.top(a.top):
        print(f"{dt:8.2f} s {n:5d}x  {key}")
    for plan in timer.explained:
        print(_flatten(plan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
