"""Hand-written DuckDB baseline: the near-limit reference for ``cohortlab bench``.

What a DuckDB user would write by hand to answer "what happens to each cohort member" on a
``cohortlab synth`` world (or exports laid out the same way): read the files directly with
``read_json`` / ``read_csv`` (only the keys needed, typed up front) and classify every member of
each cohort's latest snapshot per docs/rules.md#resolution with the default settings (``fallback="data"``,
``event_identity_cutoff`` 2026-01-15, ``protection="only_update"``) in ONE query.

    python bench/baseline_duckdb.py WORLD_DIR [--out counts.json] [--threads N] [--memory-limit 2GB]

Prints and writes per cohort: the as-of time, the member count and the counts of
(identifier_source, status, gap_reason). MPIDs stay BIGINT end to end (``read_json`` parses JSON
integers exactly); ``$mparticle_user_id`` and distinct_ids are read as text.

Deliberately NOT done (cohortlab does it, the reference does not): quarantine of bad records,
de-duplication of events and profiles, exact JSON-float tokens, ``recoverable_via``, storing
anything. Layouts handled: Engage pages (``profiles/*.json``) or result JSONL
(``profiles*.jsonl[.gz]``); member snapshots as CSV (``distinct_id`` column) or Engage pages,
one file per snapshot named by its as-of time, in a folder per cohort.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import duckdb

CUTOFF_EPOCH = 1768435200  # 2026-01-15T00:00:00Z, docs/rules.md#assumptions event_identity_cutoff default
TS_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})-(\d{2})Z")


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _list(paths) -> str:
    return "[" + ", ".join(_q(str(p)) for p in paths) + "]"


def _norm(s: str) -> str:
    return "".join(c for c in s.lower() if c.isalnum())


def _files(folder: Path, *patterns: str) -> list[Path]:
    out: list[Path] = []
    for pat in patterns:
        out += sorted(p for p in folder.glob(pat) if p.is_file())
    return out


def latest_snapshots(world: Path) -> list[tuple[str, str, Path]]:
    """(cohort name, as_of ISO, file) of the latest snapshot file of each cohort folder."""
    names = {}
    cohorts_file = world / "mixpanel" / "cohorts.json"
    if cohorts_file.exists():
        names = {_norm(c["name"]): c["name"] for c in json.loads(cohorts_file.read_text())}
    out = []
    for d in sorted((world / "mixpanel" / "members").iterdir()):
        files = [f for f in d.iterdir() if f.is_file() and TS_RE.search(f.name)]
        if not files:
            continue
        f = max(files, key=lambda p: TS_RE.search(p.name).groups())
        y, mo, da, h, mi, s = TS_RE.search(f.name).groups()
        out.append((names.get(_norm(d.name), d.name), f"{y}-{mo}-{da}T{h}:{mi}:{s}", f))
    return out


def build_query(world: Path) -> str:
    mp, mpa = world / "mixpanel", world / "mparticle"
    mpa_files = _files(mpa, "profiles.jsonl", "profiles.jsonl.gz", "profiles/*.json*")
    events = _files(mp / "events", "*.jsonl", "*.jsonl.gz", "*.json", "*.json.gz")
    prof_lines = _files(mp, "profiles/*.jsonl", "profiles/*.jsonl.gz")
    prof_pages = _files(mp, "profiles/*.json", "profiles/*.json.gz")
    if not (mpa_files and events and (prof_lines or prof_pages)):
        raise SystemExit(f"{world}: expected mparticle/profiles.jsonl, mixpanel/events/, mixpanel/profiles/")

    props_t = 'STRUCT("$mparticle_user_id" VARCHAR)'
    prof_parts = []
    if prof_lines:
        prof_parts.append(
            f"""SELECT "$distinct_id" AS distinct_id, "$properties"."$mparticle_user_id" AS mpuid
                FROM read_json({_list(prof_lines)}, format='newline_delimited',
                               columns={{'$distinct_id': 'VARCHAR', '$properties': '{props_t}'}})""")
    if prof_pages:
        prof_parts.append(
            f"""SELECT r."$distinct_id" AS distinct_id, r."$properties"."$mparticle_user_id" AS mpuid
                FROM (SELECT unnest(results) AS r FROM read_json({_list(prof_pages)},
                      columns={{'results': 'STRUCT("$distinct_id" VARCHAR, "$properties" {props_t})[]'}}))""")

    member_parts = []
    for cohort, as_of, f in latest_snapshots(world):
        as_of_epoch = f"epoch(CAST({_q(as_of)} AS TIMESTAMP))"
        if f.name.endswith((".csv", ".csv.gz")):
            src = f"SELECT distinct_id FROM read_csv({_q(str(f))}, header=true, all_varchar=true)"
        else:
            src = (f"""SELECT r."$distinct_id" AS distinct_id FROM (SELECT unnest(results) AS r
                       FROM read_json({_q(str(f))}, columns={{'results': 'STRUCT("$distinct_id" VARCHAR)[]'}}))""")
        member_parts.append(f"SELECT DISTINCT {_q(cohort)} AS cohort, {_q(as_of)} AS as_of, "
                            f"{as_of_epoch} AS as_of_epoch, distinct_id FROM ({src}) WHERE distinct_id IS NOT NULL")
    if not member_parts:
        raise SystemExit(f"{world}: no member snapshots under mixpanel/members/<cohort>/")

    ev_t = ("STRUCT(time DOUBLE, distinct_id VARCHAR, \"$user_id\" VARCHAR, \"$device_id\" VARCHAR, "
            "\"$mparticle_user_id\" VARCHAR)")
    return f"""
    WITH
    mpa AS (SELECT DISTINCT mpid FROM read_json({_list(mpa_files)}, format='newline_delimited',
                                                 columns={{'mpid': 'BIGINT'}}) WHERE mpid IS NOT NULL),
    flt AS (SELECT DISTINCT TRY_CAST(CAST(mpid AS DOUBLE) AS BIGINT) AS f FROM mpa),
    prof AS ({" UNION ALL ".join(prof_parts)}),
    members AS ({" UNION ALL ".join(member_parts)}),
    ev AS (
        SELECT coalesce(nullif(p.distinct_id, ''), nullif(p."$user_id", ''), '$device:' || nullif(p."$device_id", ''))
                   AS distinct_id,
               p.time AS t, p."$mparticle_user_id" AS mpuid
        FROM (SELECT properties AS p FROM read_json({_list(events)}, format='newline_delimited',
                                                    columns={{'event': 'VARCHAR', 'properties': '{ev_t}'}}))
        WHERE p.time >= {CUTOFF_EPOCH} AND p."$mparticle_user_id" IS NOT NULL
    ),
    ev_last AS (   -- latest event since the cutoff, not after as_of, with $mparticle_user_id (ties: max value)
        SELECT m.cohort, m.distinct_id, max({{'t': e.t, 'v': e.mpuid}}).v AS mpuid
        FROM ev e JOIN members m ON m.distinct_id = e.distinct_id AND e.t <= m.as_of_epoch
        GROUP BY ALL
    ),
    ident AS (
        SELECT m.cohort, m.as_of, m.distinct_id,
               CASE WHEN pf.mpuid IS NOT NULL THEN 'mparticle_user_id'
                    WHEN el.mpuid IS NOT NULL THEN 'event_property' ELSE 'distinct_id' END AS identifier_source,
               coalesce(pf.mpuid, el.mpuid, m.distinct_id) AS identifier
        FROM members m
        LEFT JOIN prof pf ON pf.distinct_id = m.distinct_id
        LEFT JOIN ev_last el ON el.cohort = m.cohort AND el.distinct_id = m.distinct_id
    ),
    cand AS (
        SELECT *, CASE WHEN regexp_full_match(identifier, '-?[0-9]+') THEN TRY_CAST(identifier AS BIGINT) END AS c
        FROM ident
    )
    SELECT cohort, as_of, identifier_source,
           CASE WHEN mpa.mpid IS NOT NULL THEN 'matched' ELSE 'unmatched' END AS status,
           CASE WHEN mpa.mpid IS NOT NULL THEN NULL
                WHEN c IS NULL AND identifier_source <> 'distinct_id' THEN 'malformed_mparticle_user_id'
                WHEN c IS NULL THEN 'distinct_id_not_mpid'
                WHEN flt.f IS NOT NULL THEN 'mpid_precision_loss'
                ELSE 'mpid_not_found' END AS gap_reason,
           count(*) AS n
    FROM cand LEFT JOIN mpa ON mpa.mpid = cand.c LEFT JOIN flt ON flt.f = cand.c
    GROUP BY ALL
    """


def outcome_counts(rows) -> dict:
    """{cohort: {as_of, members, outcomes: {"source|status|gap_reason": n}}} (gap_reason None → "")."""
    out: dict = {}
    for cohort, as_of, src, status, gap, n in rows:
        c = out.setdefault(cohort, {"as_of": as_of, "members": 0, "outcomes": {}})
        c["members"] += int(n)
        key = f"{src}|{status}|{gap or ''}"
        c["outcomes"][key] = c["outcomes"].get(key, 0) + int(n)
    for c in out.values():
        c["outcomes"] = dict(sorted(c["outcomes"].items()))
    return dict(sorted(out.items()))


def run(world: str | Path, threads: int | None = None, memory_limit: str | None = None) -> dict:
    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute(f"SET memory_limit = {_q(memory_limit)}")
    rows = con.execute(build_query(Path(world))).fetchall()
    return {"baseline": "duckdb", "seconds": round(time.perf_counter() - t0, 3), "counts": outcome_counts(rows)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("world")
    ap.add_argument("--out")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--memory-limit")
    ap.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE instead")
    a = ap.parse_args(argv)
    if a.explain:
        con = duckdb.connect()
        print(con.execute("EXPLAIN ANALYZE " + build_query(Path(a.world))).fetchall()[0][1])
        return 0
    res = run(a.world, a.threads, a.memory_limit)
    text = json.dumps(res, indent=2)
    if a.out:
        Path(a.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
