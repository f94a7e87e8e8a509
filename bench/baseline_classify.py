"""Hand-written classification query on the *loaded* tables: the near-limit reference for
``cohortlab simulate`` of one snapshot in ``cohortlab bench``.

What a DuckDB user would write against a cohortlab database to classify every member of one
cohort's latest snapshot per docs/rules.md#resolution with the default settings (``fallback="data"``,
``event_identity_cutoff`` 2026-01-15, ``protection="only_update"``): ONE query over
``mp_cohort_members``, ``mp_profiles``, ``mp_events`` and ``mpa_profiles``, counts of
(identifier_source, status, gap_reason).

    python bench/baseline_classify.py DB --cohort NAME [--out counts.json] [--threads N] [--memory-limit 2GB]

Deliberately NOT done (``cohortlab simulate`` does it): the waterfall, the sync timeline,
``recoverable_via``, writing the per-member resolution table, printing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import duckdb

CUTOFF = "2026-01-15 00:00:00"  # docs/rules.md#assumptions event_identity_cutoff default

QUERY = f"""
WITH
snap AS (SELECT snapshot_id, as_of FROM mp_cohort_snapshots WHERE cohort_name = $cohort
         ORDER BY as_of DESC, snapshot_id DESC LIMIT 1),
members AS (SELECT DISTINCT m.distinct_id, s.as_of FROM mp_cohort_members m JOIN snap s USING (snapshot_id)),
ev_last AS (   -- latest event since the cutoff, not after as_of, with $mparticle_user_id (ties: max value)
    SELECT m.distinct_id, max({{'t': e.time, 'v': e.mparticle_user_id}}).v AS mpuid
    FROM mp_events e JOIN members m ON m.distinct_id = e.distinct_id AND e.time <= m.as_of
    WHERE e.time >= TIMESTAMP '{CUTOFF}' AND e.mparticle_user_id IS NOT NULL
    GROUP BY ALL
),
ident AS (
    SELECT m.distinct_id,
           CASE WHEN pf.mparticle_user_id IS NOT NULL THEN 'mparticle_user_id'
                WHEN el.mpuid IS NOT NULL THEN 'event_property' ELSE 'distinct_id' END AS identifier_source,
           coalesce(pf.mparticle_user_id, el.mpuid, m.distinct_id) AS identifier
    FROM members m
    LEFT JOIN mp_profiles pf ON pf.distinct_id = m.distinct_id
    LEFT JOIN ev_last el ON el.distinct_id = m.distinct_id
),
cand AS (SELECT *, CASE WHEN regexp_full_match(identifier, '-?[0-9]+') THEN TRY_CAST(identifier AS BIGINT) END AS c
         FROM ident),
flt AS (SELECT DISTINCT TRY_CAST(CAST(mpid AS DOUBLE) AS BIGINT) AS f FROM mpa_profiles)
SELECT identifier_source,
       CASE WHEN mpa.mpid IS NOT NULL THEN 'matched' ELSE 'unmatched' END AS status,
       CASE WHEN mpa.mpid IS NOT NULL THEN NULL
            WHEN c IS NULL AND identifier_source <> 'distinct_id' THEN 'malformed_mparticle_user_id'
            WHEN c IS NULL THEN 'distinct_id_not_mpid'
            WHEN flt.f IS NOT NULL THEN 'mpid_precision_loss'
            ELSE 'mpid_not_found' END AS gap_reason,
       count(*) AS n
FROM cand LEFT JOIN mpa_profiles mpa ON mpa.mpid = cand.c LEFT JOIN flt ON flt.f = cand.c
GROUP BY ALL
"""


def run(db: str, cohort: str, threads: int | None = None, memory_limit: str | None = None) -> dict:
    t0 = time.perf_counter()
    con = duckdb.connect(db, read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    as_of = con.execute("SELECT max(as_of) FROM mp_cohort_snapshots WHERE cohort_name = ?", [cohort]).fetchone()[0]
    if as_of is None:
        known = [n for (n,) in con.execute("SELECT DISTINCT cohort_name FROM mp_cohort_snapshots ORDER BY 1").fetchall()]
        con.close()
        raise SystemExit(f"{db}: no snapshot of cohort {cohort!r} (cohorts with snapshots: "
                         f"{', '.join(map(repr, known)) or 'none'})")
    outcomes: dict[str, int] = {}
    for src, status, gap, n in con.execute(QUERY, {"cohort": cohort}).fetchall():
        outcomes[f"{src}|{status}|{gap or ''}"] = int(n)
    con.close()
    counts = {cohort: {"as_of": as_of.strftime("%Y-%m-%dT%H:%M:%S"), "members": sum(outcomes.values()),
                       "outcomes": dict(sorted(outcomes.items()))}}
    return {"baseline": "classify", "seconds": round(time.perf_counter() - t0, 3), "counts": counts}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("db")
    ap.add_argument("--cohort", required=True)
    ap.add_argument("--out")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--memory-limit")
    a = ap.parse_args(argv)
    res = run(a.db, a.cohort, a.threads, a.memory_limit)
    text = json.dumps(res, indent=2)
    if a.out:
        from pathlib import Path

        Path(a.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
