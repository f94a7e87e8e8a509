"""Loader speed against a hand-written DuckDB load of the same files (the "Speed and memory" targets, docs/benchmarks.md).

    python bench/loaders_baseline.py make DIR --rows 1000000       # generate the inputs
    python bench/loaders_baseline.py run DIR [--cases engage,mparticle,members_csv,members_pages]
                                             [--repeat 2] [--threads 2] [--memory-limit 1.5GB] [--trace]

``make`` writes, with DuckDB ``COPY`` (seconds, not minutes), the shapes cohortlab reads:

* ``engage.jsonl``      N Engage result objects ``{"$distinct_id", "$properties"}`` (synth shape;
                        ~70% carry ``$mparticle_user_id``, 1 in 100,000 as a JSON float);
* ``mparticle.jsonl``   N mParticle Profile API objects (list identities, attributes, 10% with an
                        audience membership);
* ``members.csv``       0.67·N members ``distinct_id,as_of`` (the 6.7M-of-10M cohort);
* ``members_pages.json`` the same members as Engage ``filter_by_cohort`` pages (1000 results a
                        page, one page a line, with ``$properties``: the members loader also
                        upserts those profiles).

``run`` times, for each case, in a fresh process each (so peak RSS is per case), into a new
database file: the hand-written load (``read_json`` with explicit typed columns / ``read_csv``
writing the same canonical columns, no quarantine, no dedup, no fingerprint) and cohortlab's
loader (``Lab(db).load(kind, file)``). It prints wall time, CPU time (user+sys, steadier than
wall time on a shared machine), peak RSS, and the ratio cohortlab / hand-written of each.
``--trace`` also prints cohortlab's slowest SQL statements.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

CASES = ("engage", "mparticle", "members_csv", "members_pages")
KIND = {
    "engage": ("mixpanel-profiles", "engage.jsonl", {}),
    "mparticle": ("mparticle-profiles", "mparticle.jsonl", {}),
    "members_csv": ("mixpanel-members", "members.csv", {"cohort": "Big Cohort"}),
    "members_pages": ("mixpanel-members", "members_pages.json", {"cohort": "Big Cohort"}),
}


def _q(s) -> str:
    return "'" + str(s).replace("'", "''") + "'"


# --------------------------------------------------------------------------- inputs
def make(out: Path, rows: int, threads: int | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads={threads}")
    con.execute("SET preserve_insertion_order=true")
    t0 = time.time()
    con.execute(
        f"""
        CREATE TEMP TABLE people AS
        SELECT i,
               (hash(i, 'mpid')::HUGEINT - 9223372036854775808)::BIGINT AS mpid,
               CASE WHEN i % 10 < 3 THEN 'cust-' || (1000000 + i)
                    WHEN i % 10 = 3 THEN '$device:' || uuid()
                    ELSE (hash(i, 'mpid')::HUGEINT - 9223372036854775808)::BIGINT::VARCHAR END AS distinct_id,
               (['Ann', 'Farid', 'Tara', 'Dev', 'Liam', 'Grace', 'Hugo', 'Mina'])[1 + i % 8] AS first,
               (['Costa', 'Brown', 'Ali', 'Muller', 'Kumar', 'Garcia', 'Rossi', 'Smith'])[1 + (i // 8) % 8] AS last,
               (['web', 'iphone', 'android'])[1 + i % 3] AS platform,
               TIMESTAMP '2025-11-01' + to_seconds((hash(i, 'c') % 9000000)::BIGINT) AS created,
               i % 100000 = 7 AS float_mpuid
        FROM range({rows}) t(i)
        """
    )
    email = "lower(first || '.' || last || '.' || i || '@example.com')"
    con.execute(
        f"""
        COPY (
          SELECT distinct_id AS "$distinct_id",
                 CASE WHEN float_mpuid THEN json('{{"$created":"' || strftime(created, '%Y-%m-%dT%H:%M:%S')
                        || '","$email":"' || {email} || '","$mparticle_user_id":1.2e18,"platform":"web"}}')
                 ELSE json_object('$created', strftime(created, '%Y-%m-%dT%H:%M:%S'),
                       '$email', CASE WHEN i % 7 <> 0 THEN {email} END,
                       '$first_name', first, '$last_name', last,
                       '$last_seen', strftime(created + INTERVAL 3 DAY, '%Y-%m-%dT%H:%M:%S'),
                       '$mparticle_user_id', CASE WHEN i % 10 < 7 THEN mpid::VARCHAR END,
                       'platform', platform) END AS "$properties"
          FROM people ORDER BY i
        ) TO {_q(out / 'engage.jsonl')} (FORMAT json)
        """
    )
    con.execute(
        f"""
        COPY (
          SELECT mpid, epoch_ms(created) AS created_timestamp_ms,
                 epoch_ms(created + INTERVAL 3 DAY) AS last_stored_timestamp_ms,
                 FALSE AS is_opted_out, NULL AS limit_ad_tracking,
                 [{{'type': CASE WHEN platform = 'web' THEN 'device_application_stamp'
                                 WHEN platform = 'iphone' THEN 'ios_idfv' ELSE 'android_uuid' END,
                    'encoding': 'none', 'value': md5(i::VARCHAR)}}] AS device_identities,
                 [{{'type': 'customer_id', 'encoding': 'none', 'value': 'cust-' || (1000000 + i)}},
                  {{'type': 'email', 'encoding': 'none', 'value': {email}}}] AS user_identities,
                 NULL AS account_userattributes,
                 json_object('$firstname', first, '$lastname', last, 'platform', platform) AS user_attributes,
                 CASE WHEN i % 10 = 0 THEN [{{'audience_id': 5000 + i % 20, 'audience_name': 'Audience ' || (i % 20),
                                              'expiration_timestamp_ms': NULL::BIGINT}}]
                      ELSE [] END AS audience_memberships
          FROM people ORDER BY i
        ) TO {_q(out / 'mparticle.jsonl')} (FORMAT json)
        """
    )
    members = "SELECT * FROM people WHERE hash(i, 'member') % 100 < 67"
    con.execute(
        f"COPY (SELECT distinct_id, '2026-03-01T00:00:00Z' AS as_of FROM ({members}) ORDER BY i) "
        f"TO {_q(out / 'members.csv')} (FORMAT csv, HEADER true)"
    )
    n_members = con.execute(f"SELECT count(*) FROM ({members})").fetchone()[0]
    con.execute(
        f"""
        COPY (
          SELECT p AS page, 1000 AS page_size, 'b23fc7ac-15c4-ae0c-6c3b-fa003657e954' AS session_id,
                 'ok' AS status, {n_members} AS total, '2026-03-01T00:00:00Z' AS as_of,
                 '{{"id": 1001}}' AS filter_by_cohort,
                 list({{'$distinct_id': distinct_id,
                       '$properties': json_object('$created', strftime(created, '%Y-%m-%dT%H:%M:%S'),
                                                  '$email', {email}, '$first_name', first,
                                                  '$last_name', last, 'platform', platform)}} ORDER BY n) AS results
          FROM (SELECT *, (row_number() OVER (ORDER BY i) - 1) AS n, n // 1000 AS p FROM ({members}))
          GROUP BY p ORDER BY p
        ) TO {_q(out / 'members_pages.json')} (FORMAT json)
        """
    )
    print(f"wrote {out} in {time.time() - t0:.1f}s: {rows:,} profiles of each kind, {n_members:,} members")
    for f in sorted(out.iterdir()):
        print(f"  {f.name:<22}{f.stat().st_size / 1e6:>10,.0f} MB")


# --------------------------------------------------------------------------- hand-written loads
def _handwritten(con: duckdb.DuckDBPyConnection, case: str, path: Path) -> int:
    f = _q(path)
    if case == "engage":
        con.execute(
            """CREATE TABLE mp_profiles (distinct_id VARCHAR, mparticle_user_id VARCHAR, email VARCHAR,
               phone VARCHAR, created TIMESTAMP, last_seen TIMESTAMP, properties JSON, line BIGINT)"""
        )
        con.execute(
            f"""
            INSERT INTO mp_profiles
            SELECT "$distinct_id", p->>'$."$mparticle_user_id"', p->>'$."$email"', p->>'$."$phone"',
                   TRY_CAST(p->>'$."$created"' AS TIMESTAMP), TRY_CAST(p->>'$."$last_seen"' AS TIMESTAMP),
                   p, row_number() OVER ()
            FROM (SELECT "$distinct_id", "$properties" AS p
                  FROM read_json({f}, format='newline_delimited',
                                 columns={{'$distinct_id': 'VARCHAR', '$properties': 'JSON'}}))
            """
        )
        return con.execute("SELECT count(*) FROM mp_profiles").fetchone()[0]
    if case == "mparticle":
        ident = "STRUCT(type VARCHAR, encoding VARCHAR, value VARCHAR)[]"
        aud = "STRUCT(audience_id BIGINT, audience_name VARCHAR, expiration_timestamp_ms BIGINT)[]"
        con.execute(
            f"""
            CREATE TEMP TABLE raw AS
            SELECT row_number() OVER () AS line, * FROM read_json({f}, format='newline_delimited', columns={{
                'mpid': 'BIGINT', 'created_timestamp_ms': 'BIGINT', 'last_stored_timestamp_ms': 'BIGINT',
                'is_opted_out': 'BOOLEAN', 'user_identities': '{ident}', 'device_identities': '{ident}',
                'user_attributes': 'JSON', 'audience_memberships': '{aud}'}})
            """
        )
        con.execute(
            """CREATE TABLE mpa_profiles AS SELECT mpid, epoch_ms(created_timestamp_ms) AS created_at,
               epoch_ms(last_stored_timestamp_ms) AS last_stored_at, is_opted_out, NULL::VARCHAR AS environment,
               'profile_api' AS source, line FROM raw"""
        )
        con.execute(
            """CREATE TABLE mpa_identities AS
               SELECT mpid, 'user' AS kind, u.type AS identity_type, u.value, line
               FROM (SELECT mpid, line, unnest(user_identities) AS u FROM raw)
               UNION ALL
               SELECT mpid, 'device', d.type, d.value, line
               FROM (SELECT mpid, line, unnest(device_identities) AS d FROM raw)"""
        )
        con.execute(
            """CREATE TABLE mpa_attributes AS
               SELECT mpid, unnest(json_keys(user_attributes)) AS name,
                      unnest(json_extract(user_attributes, '$.*')) AS value, line FROM raw"""
        )
        con.execute(
            """CREATE TABLE mpa_audiences AS
               SELECT mpid, a.audience_id, a.audience_name, epoch_ms(a.expiration_timestamp_ms) AS expiration_at, line
               FROM (SELECT mpid, line, unnest(audience_memberships) AS a FROM raw)"""
        )
        return con.execute("SELECT count(*) FROM mpa_profiles").fetchone()[0]
    if case == "members_csv":
        con.execute(
            f"""CREATE TABLE mp_cohort_members AS
                SELECT distinct_id, min(line) AS line FROM (
                  SELECT distinct_id, row_number() OVER () + 1 AS line
                  FROM read_csv({f}, header=true, columns={{'distinct_id': 'VARCHAR', 'as_of': 'VARCHAR'}}))
                GROUP BY distinct_id"""
        )
        return con.execute("SELECT count(*) FROM mp_cohort_members").fetchone()[0]
    if case == "members_pages":
        res = "STRUCT(\"$distinct_id\" VARCHAR, \"$properties\" JSON)[]"
        con.execute(
            f"""CREATE TEMP TABLE m AS
                SELECT r."$distinct_id" AS distinct_id, r."$properties" AS p, row_number() OVER () AS line
                FROM (SELECT unnest(results) AS r FROM read_json({f}, format='newline_delimited',
                      columns={{'as_of': 'VARCHAR', 'filter_by_cohort': 'VARCHAR', 'results': '{res}'}}))"""
        )
        con.execute(
            "CREATE TABLE mp_cohort_members AS SELECT distinct_id, min(line) AS line FROM m GROUP BY distinct_id"
        )
        con.execute(
            """CREATE TABLE mp_profiles AS
               SELECT distinct_id, p->>'$."$mparticle_user_id"' AS mparticle_user_id, p->>'$."$email"' AS email,
                      p->>'$."$phone"' AS phone, TRY_CAST(p->>'$."$created"' AS TIMESTAMP) AS created,
                      TRY_CAST(p->>'$."$last_seen"' AS TIMESTAMP) AS last_seen, p AS properties, line
               FROM m"""
        )
        return con.execute("SELECT count(*) FROM mp_cohort_members").fetchone()[0]
    raise ValueError(case)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _trace_engine() -> list[tuple[float, float, str]]:
    """Time every statement cohortlab's DuckDB engine runs (monkeypatch; the engine is untouched)."""
    from cohortlab.engines.duckdb import DuckDBEngine

    log: list[tuple[float, float, str]] = []
    for name in ("execute", "query_rows"):
        orig = getattr(DuckDBEngine, name)

        def timed(self, sql, params=None, _orig=orig):
            t, c = time.perf_counter(), _cpu()
            try:
                return _orig(self, sql, params)
            finally:
                log.append((_cpu() - c, time.perf_counter() - t, " ".join(sql.split())[:150]))

        setattr(DuckDBEngine, name, timed)
    return log


def run_case(folder: Path, case: str, which: str, threads: int | None, trace: bool,
             memory_limit: str | None = None) -> dict:
    kind, fname, options = KIND[case]
    path = folder / fname
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP", "/tmp")) as tmp:
        db = Path(tmp) / "bench.duckdb"
        log = _trace_engine() if trace and which == "cohortlab" else None
        if which == "cohortlab":
            from cohortlab import Lab  # imported before timing (pandas & co. take ~1 s of CPU)
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        if which == "handwritten":
            con = duckdb.connect(str(db))
            if threads:
                con.execute(f"SET threads={threads}")
            if memory_limit:
                con.execute(f"SET memory_limit='{memory_limit}'")
            rows = _handwritten(con, case, path)
            con.close()
        else:
            opts = {k: v for k, v in (("threads", threads), ("memory_limit", memory_limit)) if v}
            lab = Lab(db, **opts)
            rep = lab.load(kind, path, **options)
            rows = rep.loaded
            lab.engine.close()
        wall = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
    out = {
        "case": case, "which": which, "rows": int(rows), "wall": wall,
        "cpu": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime),
        "rss_mb": r1.ru_maxrss / 1024,
    }
    if log is not None:
        out["trace"] = sorted(log, reverse=True)[:8]
    return out


def run(folder: Path, cases: list[str], repeat: int, threads: int | None, trace: bool,
        memory_limit: str | None = None) -> list[dict]:
    print(f"uptime: {os.popen('uptime').read().strip()}")
    results = []
    for _ in range(repeat):
        for case in cases:
            pair = {}
            for which in ("handwritten", "cohortlab"):
                cmd = [sys.executable, __file__, "case", str(folder), case, which]
                if threads:
                    cmd += ["--threads", str(threads)]
                if trace:
                    cmd += ["--trace"]
                if memory_limit:
                    cmd += ["--memory-limit", memory_limit]
                p = subprocess.run(cmd, capture_output=True, text=True)
                if p.returncode:
                    sys.exit(f"{case}/{which} failed:\n{p.stderr}")
                pair[which] = json.loads(p.stdout.strip().splitlines()[-1])
            h, c = pair["handwritten"], pair["cohortlab"]
            print(
                f"{case:<14} rows {c['rows']:>11,}  hand {h['wall']:6.1f}s cpu {h['cpu']:6.1f}s "
                f"rss {h['rss_mb']:6.0f}MB | cohortlab {c['wall']:6.1f}s cpu {c['cpu']:6.1f}s "
                f"rss {c['rss_mb']:6.0f}MB | ratio wall {c['wall'] / h['wall']:4.2f} cpu {c['cpu'] / h['cpu']:4.2f}",
                flush=True,
            )
            for cpu, wall, sql in c.get("trace", []):
                print(f"      cpu {cpu:6.2f}s wall {wall:6.2f}s  {sql}")
            results.append(pair)
    print(f"uptime: {os.popen('uptime').read().strip()}")
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("dir", type=Path)
    m.add_argument("--rows", type=int, default=1_000_000)
    m.add_argument("--threads", type=int)
    r = sub.add_parser("run")
    r.add_argument("dir", type=Path)
    r.add_argument("--cases", default=",".join(CASES))
    r.add_argument("--repeat", type=int, default=1)
    r.add_argument("--threads", type=int)
    r.add_argument("--trace", action="store_true")
    r.add_argument("--memory-limit", help="DuckDB memory_limit for both loads, e.g. 1.5GB")
    r.add_argument("--json", type=Path, help="also write the results here")
    c = sub.add_parser("case")
    c.add_argument("dir", type=Path)
    c.add_argument("case", choices=CASES)
    c.add_argument("which", choices=("handwritten", "cohortlab"))
    c.add_argument("--threads", type=int)
    c.add_argument("--trace", action="store_true")
    c.add_argument("--memory-limit")
    a = ap.parse_args(argv)
    if a.cmd == "make":
        make(a.dir, a.rows, a.threads)
    elif a.cmd == "run":
        res = run(a.dir, a.cases.split(","), a.repeat, a.threads, a.trace, a.memory_limit)
        if a.json:
            a.json.write_text(json.dumps(res, indent=1))
    else:
        print(json.dumps(run_case(a.dir, a.case, a.which, a.threads, a.trace, a.memory_limit)))


if __name__ == "__main__":
    main()
