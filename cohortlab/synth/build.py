"""``generate()``: build a world chunk by chunk (numpy) and write it (DuckDB)."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from cohortlab.synth import population as pop
from cohortlab.synth.truth import TRUTH_COLUMNS, TRUTH_CUTOFF, truth_sql
from cohortlab.synth.world import EVENT_NAMES, WorldConfig, build_config, epoch
from cohortlab.synth.writers import copy_lines, iso_sql, slug, sql_str, write_json

FIRST_NAMES = ("Ann", "Bob", "Carla", "Dev", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jamal",
               "Kira", "Liam", "Mina", "Noah", "Olga", "Pablo", "Quinn", "Rosa", "Sami", "Tara")
LAST_NAMES = ("Lee", "Smith", "Garcia", "Nguyen", "Kumar", "Muller", "Rossi", "Silva", "Kim", "Dubois",
              "Novak", "Haddad", "Okafor", "Tanaka", "Jensen", "Costa", "Ivanova", "Brown", "Ali", "Moreau")
OUTPUTS = ("mixpanel", "mparticle", "truth.parquet", "manifest.json")
PLATFORM_DEVICE = {"web": "device_application_stamp", "iphone": "ios_idfv", "android": "android_uuid"}
WEBHOOK_ACTIONS = ("members", "remove_members", "add_members")  # by `ak`


@dataclass
class SynthResult:
    """What ``generate`` wrote. ``manifest`` is the content of ``manifest.json``."""

    out_dir: Path
    config: WorldConfig
    users: int
    seed: int
    manifest: dict[str, Any]
    seconds: float = 0.0
    files: list[Path] = field(default_factory=list)

    @property
    def truth_path(self) -> Path:
        return self.out_dir / self.manifest["truth"]["path"]

    def truth(self):
        import pandas as pd

        return pd.read_parquet(self.truth_path)


def _sql_list(items) -> str:
    return "[" + ", ".join(sql_str(x) for x in items) + "]"


def _iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _prepare_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a directory")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise FileExistsError(f"{out}: not empty (use --force to replace a generated world)")
        foreign = [p.name for p in out.iterdir() if p.name not in OUTPUTS and not p.name.startswith(".synth")]
        if foreign:
            raise FileExistsError(f"{out}: contains files that synth did not write ({', '.join(sorted(foreign))}); "
                                  "refusing to replace it")
        for name in OUTPUTS:
            p = out / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    out.mkdir(parents=True, exist_ok=True)


def generate(
    out_dir: str | os.PathLike,
    users: int,
    seed: int = 0,
    scenario: str | None = None,
    config: str | os.PathLike | dict | WorldConfig | None = None,
    progress: bool = False,
    force: bool = False,
    gzip: bool | None = None,
    **overrides: Any,
) -> SynthResult:
    """Write a synthetic world of ``users`` people into ``out_dir`` (see ``cohortlab.synth``)."""
    t0 = time.perf_counter()
    if users < 1:
        raise ValueError("users must be at least 1")
    if not 0 <= seed < 2**63:
        raise ValueError("seed must be a non-negative 64-bit integer")
    cfg = config if isinstance(config, WorldConfig) else build_config(scenario, config, **overrides)
    if gzip is not None:
        cfg = cfg.model_copy(update={"gzip": gzip})
    out = Path(out_dir)
    _prepare_out(out, force)
    big = users > cfg.big_world_users
    work = Path(tempfile.mkdtemp(prefix=".synth-work-", dir=out)) if big else None
    try:
        con = duckdb.connect(str(work / "work.duckdb") if work else ":memory:")
        con.execute("SET preserve_insertion_order = true")
        con.execute("SET TimeZone = 'UTC'")
        if work:
            con.execute(f"SET temp_directory = {sql_str(work / 'tmp')}")
            con.execute("SET memory_limit = '2GB'")
        w = _World(con, cfg, users, seed, out, big, progress)
        manifest = w.run()
        con.close()
    finally:
        if work:
            shutil.rmtree(work, ignore_errors=True)
    res = SynthResult(out, cfg, users, seed, manifest, time.perf_counter() - t0,
                      [out / f["path"] for f in manifest["files"]])
    return res


class _World:
    def __init__(self, con, cfg: WorldConfig, users: int, seed: int, out: Path, big: bool, progress: bool):
        self.con, self.cfg, self.users, self.seed, self.out, self.big = con, cfg, users, seed, out, big
        self.files: list[dict[str, Any]] = []
        self.snap = cfg.snapshot_times
        self.end = epoch(cfg.end)
        self.ext = ".jsonl.gz" if cfg.gzip else ".jsonl"
        self.profiles_format = cfg.profiles_format if cfg.profiles_format != "auto" else ("jsonl" if big else "pages")
        self.members_format = cfg.members_format if cfg.members_format != "auto" else ("csv" if big else "pages")
        n_files = max(cfg.min_event_files, math.ceil(users / cfg.users_per_event_file))
        n_files = min(n_files, users)
        self.bounds = [round(i * users / n_files) for i in range(n_files + 1)]
        self.counts: Counter = Counter()
        self.progress = progress

    # ------------------------------------------------------------------ helpers
    def q(self, sql: str, params=None):
        return self.con.execute(sql, params) if params is not None else self.con.execute(sql)

    def scalar(self, sql: str):
        return self.q(sql).fetchone()[0]

    def add_file(self, path: Path, kind: str, records: int, **extra) -> None:
        self.files.append({"path": str(path.relative_to(self.out)), "kind": kind, "records": int(records), **extra})

    def session_id(self, *parts) -> str:
        b = pop.bits(self.seed, "session:" + ":".join(map(str, parts)), np.array([0], dtype=np.int64))[0]
        c = pop.bits(self.seed, "session2:" + ":".join(map(str, parts)), np.array([0], dtype=np.int64))[0]
        h = f"{int(b):016x}{int(c):016x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"

    # ------------------------------------------------------------------ run
    def run(self) -> dict[str, Any]:
        from tqdm.auto import tqdm

        phases = ["profiles", "cohorts", "members", "webhooks", "mparticle", "truth", "manifest"]
        bar = tqdm(total=len(self.bounds) - 1 + len(phases), desc="synth", unit="step",
                   disable=not self.progress, leave=False)
        self._create_tables()
        for i in range(len(self.bounds) - 1):
            bar.set_postfix_str(f"people & events {i + 1}/{len(self.bounds) - 1}")
            self._chunk(i, self.bounds[i], self.bounds[i + 1])
            bar.update()
        if self.cfg.bad_event_lines:
            self._bad_events()
        steps = {
            "profiles": self._profiles, "cohorts": self._cohorts, "members": self._members,
            "webhooks": self._webhooks, "mparticle": self._mparticle, "truth": self._truth,
            "manifest": self._manifest,
        }
        manifest = None
        for name in phases:
            bar.set_postfix_str(name)
            manifest = steps[name]()
            bar.update()
        bar.close()
        return manifest

    def _create_tables(self) -> None:
        self.q("""CREATE TABLE persons (pid BIGINT, mpid BIGINT, mpid_txt VARCHAR, platform VARCHAR,
            device_type VARCHAR, device VARCHAR, first_ev_t BIGINT, last_ev_t BIGINT, n_events BIGINT,
            logged BOOLEAN, has_email BOOLEAN, customer_id VARCHAR, email VARCHAR, first_name VARCHAR,
            last_name VARCHAR, bucket TINYINT, sdk_value VARCHAR, churned BOOLEAN, first_uk TINYINT)""")
        self.q("CREATE TABLE profiles_agg (pid BIGINT, uk TINYINT, created BIGINT, last_seen BIGINT, ua_last TINYINT)")
        self.q("CREATE TABLE members (ci INTEGER, si INTEGER, pid BIGINT, dk TINYINT)")
        self.q("CREATE TABLE evrule (pid BIGINT, dk TINYINT, mk_last TINYINT)")
        self.q("CREATE TABLE dk_stats (pid BIGINT, dk TINYINT, n BIGINT, first_t BIGINT, last_t BIGINT)")

    # ------------------------------------------------------------------ people and events
    def _chunk(self, i: int, lo: int, hi: int) -> None:
        cfg, seed = self.cfg, self.seed
        P = pop.people(cfg, seed, lo, hi, len(FIRST_NAMES), len(LAST_NAMES))
        E, first_uk = pop.events(cfg, seed, P)
        starts = np.cumsum(P.n) - P.n
        pc = pa.table({
            "pid": P.pid, "mpid": P.mpid, "other_mpid": P.other_mpid, "platform": P.platform,
            "first_ev_t": E.t[starts], "last_ev_t": E.t[starts + P.n - 1], "n": P.n,
            "logged": P.logged, "has_email": P.has_email, "bucket": P.bucket,
            "fname": P.fname, "lname": P.lname, "churned": P.churned, "first_uk": first_uk,
            "dev_a": pop.bits(seed, "device_a", P.pid), "dev_b": pop.bits(seed, "device_b", P.pid),
        })
        self.con.register("pc", pc)
        dev = "format('{:016x}', dev_a) || format('{:016x}', dev_b)"
        ps = self.con.sql(f"""
            SELECT pid, mpid, mpid::VARCHAR AS mpid_txt, {_sql_list(pop.PLATFORMS)}[platform + 1] AS platform,
              {_sql_list([PLATFORM_DEVICE[p] for p in pop.PLATFORMS])}[platform + 1] AS device_type,
              substr(d, 1, 8) || '-' || substr(d, 9, 4) || '-4' || substr(d, 14, 3) || '-'
                || ['8', '9', 'a', 'b'][(dev_b >> 62)::INTEGER + 1] || substr(d, 18, 3)
                || '-' || substr(d, 21, 12) AS device,
              first_ev_t, last_ev_t, n AS n_events, logged, has_email,
              'cust-' || (1000000 + pid) AS customer_id,
              lower({_sql_list(FIRST_NAMES)}[fname + 1] || '.' || {_sql_list(LAST_NAMES)}[lname + 1]) || '.' || pid
                || '@example.com' AS email,
              {_sql_list(FIRST_NAMES)}[fname + 1] AS first_name, {_sql_list(LAST_NAMES)}[lname + 1] AS last_name,
              bucket,
              CASE bucket WHEN {pop.B_SDK_OK} THEN mpid::VARCHAR
                WHEN {pop.B_FLOAT} THEN coalesce(TRY_CAST(CAST(mpid AS DOUBLE) AS BIGINT)::VARCHAR, mpid::VARCHAR)
                WHEN {pop.B_UNDEFINED} THEN 'undefined' WHEN {pop.B_EMPTY} THEN ''
                WHEN {pop.B_OTHER_WS} THEN other_mpid::VARCHAR END AS sdk_value,
              churned, first_uk
            FROM (SELECT *, {dev} AS d FROM pc) ORDER BY pid""").to_arrow_table()
        self.con.unregister("pc")
        self.con.register("ps", ps)
        self.q("INSERT INTO persons SELECT * FROM ps")
        self.con.unregister("ps")

        # ---- the export file of this chunk (duplicates written twice, adjacent)
        rows = np.repeat(np.arange(len(E.t), dtype=np.int64), 1 + E.dup.astype(np.int64))
        take = pa.array(E.p[rows])
        ex = pa.table({
            "event": pa.array(EVENT_NAMES).take(pa.array(E.ev[rows].astype(np.int64))),
            "t": E.t[rows], "dk": E.dk[rows], "uk": E.uk[rows], "mk": E.mk[rows], "rnd": E.rnd[rows],
            "mpid_txt": ps["mpid_txt"].take(take), "customer_id": ps["customer_id"].take(take),
            "email": ps["email"].take(take), "device": ps["device"].take(take),
            "sdk_value": ps["sdk_value"].take(take), "mp_lib": ps["platform"].take(take),
        })
        did = ("CASE dk WHEN 1 THEN mpid_txt WHEN 2 THEN customer_id WHEN 3 THEN email "
               "ELSE '$device:' || device END")
        uid = "CASE uk WHEN 1 THEN mpid_txt WHEN 2 THEN customer_id ELSE email END"
        cents = "(199 + (rnd >> 8) % 20000)"
        line = f"""'{{"event":"' || event || '","properties":{{"time":' || t || ',"distinct_id":"' || {did}
            || '","$insert_id":"' || format('{{:016x}}', rnd) || '","$device_id":"' || device || '"'
            || CASE WHEN uk = 0 THEN '' ELSE ',"$user_id":"' || {uid} || '"' END
            || CASE WHEN mk = 0 THEN '' ELSE ',"$mparticle_user_id":'
                 || coalesce('"' || CASE mk WHEN 1 THEN mpid_txt ELSE sdk_value END || '"', 'null') END
            || ',"mp_lib":"' || mp_lib || '","mp_processing_time_ms":' || (t * 1000 + ((rnd >> 40) % 90000)::BIGINT)
            || CASE WHEN event = 'Purchase' THEN ',"amount":' || ({cents} // 100) || '.'
                 || lpad(({cents} % 100)::VARCHAR, 2, '0') ELSE '' END
            || '}}}}'"""
        path = self.out / "mixpanel" / "events" / f"part-{i:05d}{self.ext}"
        self.con.register("ex", ex)
        copy_lines(self.con, f"SELECT {line} FROM ex", path, gzip=self.cfg.gzip)
        self.con.unregister("ex")
        self.add_file(path, "mixpanel-events", len(rows))
        self.counts["events"] += len(E.t)
        self.counts["event_lines"] += len(rows)
        self.counts["duplicate_event_lines"] += len(rows) - len(E.t)
        del ex, take, rows

        # ---- aggregates over the (de-duplicated) events
        nonnull = (E.mk == pop.MK_EXACT) | ((E.mk == pop.MK_SDK) & (P.bucket[E.p] != pop.B_NULL))
        evn = pa.table({
            "pid": P.pid[E.p], "k": E.k, "t": E.t, "ev": E.ev, "uk": E.uk, "dk": E.dk, "mk": E.mk,
            "ua": E.ua, "prof": E.prof, "mnn": nonnull,
        })
        self.con.register("evn", evn)
        key = "t * 1048576 + k"
        self.q(f"""INSERT INTO profiles_agg SELECT pid, uk, min(t), max(t),
                   arg_max(ua, {key}) FILTER (WHERE ua > 0) FROM evn WHERE prof GROUP BY pid, uk""")
        self.q("INSERT INTO dk_stats SELECT pid, dk, count(*), min(t), max(t) FROM evn GROUP BY pid, dk")
        last = self.snap[-1]
        self.q(f"""INSERT INTO evrule SELECT pid, dk, arg_max(mk, {key}) FROM evn
                   WHERE mnn AND t >= {TRUTH_CUTOFF} AND t <= {last} GROUP BY pid, dk""")
        cols, conds = [], []
        lo_t = None
        for ci, c in enumerate(cfg.cohorts):
            evf = f" AND ev = {EVENT_NAMES.index(c.event)}" if c.event else ""
            for si, s in enumerate(self.snap):
                w0 = s - c.window_days * pop.DAY
                lo_t = w0 if lo_t is None else min(lo_t, w0)
                cols.append(f"count(*) FILTER (WHERE t > {w0} AND t <= {s}{evf}) AS c{ci}_{si}")
                conds.append(f"SELECT {ci} AS ci, {si} AS si, pid, dk FROM cnt WHERE c{ci}_{si} >= {c.min_count}")
        if cols:
            self.q(f"CREATE OR REPLACE TEMP TABLE cnt AS SELECT pid, dk, {', '.join(cols)} FROM evn "
                   f"WHERE t > {lo_t} GROUP BY pid, dk")
            self.q(f"INSERT INTO members SELECT * FROM ({' UNION ALL '.join(conds)}) ORDER BY ci, si, pid, dk")
            self.q("DROP TABLE cnt")
        self.con.unregister("evn")

    def _bad_events(self) -> None:
        """Deliberately malformed lines (truncated JSON) at the end of the last events file."""
        import gzip as gz

        path = self.out / self.files[-1]["path"]
        lines = "".join(
            '{"event":"App Open","properties":{"time":%d,"distinct_id":"trunc' % (self.end - 3600 - i) + "\n"
            for i in range(self.cfg.bad_event_lines)
        ).encode()
        if self.cfg.gzip:
            with open(path, "ab") as f:
                f.write(gz.compress(lines, mtime=0))
        else:
            with open(path, "ab") as f:
                f.write(lines)
        self.files[-1]["records"] += self.cfg.bad_event_lines
        self.files[-1]["bad_records"] = self.cfg.bad_event_lines
        self.counts["bad_event_lines"] = self.cfg.bad_event_lines

    # ------------------------------------------------------------------ Mixpanel profiles
    def _profiles(self) -> None:
        mpuid = f"CASE a.ua_last WHEN {pop.MK_EXACT} THEN p.mpid_txt WHEN {pop.MK_SDK} THEN p.sdk_value END"
        did = "CASE a.uk WHEN 1 THEN p.mpid_txt WHEN 2 THEN p.customer_id ELSE p.email END"
        self.q(f"""CREATE TABLE mp_prof AS
            SELECT a.pid, a.uk, {did} AS distinct_id, a.ua_last IS NOT NULL AS mpuid_present, {mpuid} AS mpuid,
              CASE WHEN p.has_email THEN p.email END AS email, p.first_name, p.last_name,
              a.created, a.last_seen,
              '{{"$distinct_id":"' || {did} || '","$properties":{{"$created":"' || {iso_sql('a.created')} || '"'
                || CASE WHEN p.has_email THEN ',"$email":"' || p.email || '"' ELSE '' END
                || ',"$first_name":"' || p.first_name || '","$last_name":"' || p.last_name
                || '","$last_seen":"' || {iso_sql('a.last_seen')} || '"'
                || CASE WHEN a.ua_last IS NULL THEN ''
                        ELSE ',"$mparticle_user_id":' || coalesce('"' || {mpuid} || '"', 'null') END
                || ',"platform":"' || p.platform || '"}}}}' AS obj
            FROM profiles_agg a JOIN persons p ON p.pid = a.pid
            ORDER BY a.pid, a.uk""")
        n = self.scalar("SELECT count(*) FROM mp_prof")
        self.counts["mixpanel_profiles"] = n
        self.counts["mixpanel_profiles_with_mparticle_user_id"] = self.scalar(
            "SELECT count(*) FROM mp_prof WHERE mpuid_present")
        folder = self.out / "mixpanel" / "profiles"
        if self.profiles_format == "jsonl":
            path = folder / f"profiles{self.ext}"
            copy_lines(self.con, "SELECT obj FROM mp_prof", path, gzip=self.cfg.gzip)
            self.add_file(path, "mixpanel-profiles", n)
            return
        ps = self.cfg.page_size
        sid = self.session_id("engage")
        cur = self.q(f"""
            SELECT page, count(*) AS n, '{{"page":' || page || ',"page_size":{ps},"session_id":"{sid}","status":"ok","total":{n},"results":['
                || coalesce(string_agg(obj, ',' ORDER BY rn), '') || ']}}' AS doc
            FROM (SELECT obj, rn, rn // {ps} AS page FROM (SELECT obj, row_number() OVER (ORDER BY pid, uk) - 1 AS rn FROM mp_prof))
            GROUP BY page ORDER BY page""")
        wrote = False
        while batch := cur.fetchmany(256):
            for page, cnt, doc in batch:
                path = folder / f"page-{page:05d}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(doc + "\n", encoding="utf-8")
                self.add_file(path, "mixpanel-profiles", cnt)
                wrote = True
        if not wrote:
            path = folder / "page-00000.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f'{{"page":0,"page_size":{ps},"session_id":"{sid}","status":"ok","total":0,"results":[]}}\n')
            self.add_file(path, "mixpanel-profiles", 0)

    # ------------------------------------------------------------------ cohorts list
    def _cohorts(self) -> None:
        last = len(self.snap) - 1
        counts = dict(self.q(f"SELECT ci, count(*) FROM members WHERE si = {last} GROUP BY ci").fetchall())
        created = epoch(self.cfg.start) - 14 * pop.DAY + 9 * 3600
        doc = [
            {"count": int(counts.get(ci, 0)), "is_visible": 1, "description": c.description,
             "created": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(created + ci * 3600)),
             "project_id": self.cfg.project_id, "id": c.id, "name": c.name}
            for ci, c in enumerate(self.cfg.cohorts)
        ]
        path = self.out / "mixpanel" / "cohorts.json"
        write_json(path, doc)
        self.add_file(path, "mixpanel-cohorts", len(doc))
        # member objects (webhooks) and Engage results (member pages), per (pid, dk)
        self.q("""CREATE TABLE mrows AS
            SELECT m.ci, m.si, m.pid, m.dk,
              CASE m.dk WHEN 1 THEN p.mpid_txt WHEN 2 THEN p.customer_id WHEN 3 THEN p.email
                        ELSE '$device:' || p.device END AS distinct_id,
              pr.obj, pr.email AS prof_email, pr.pid IS NOT NULL AS has_profile,
              CASE WHEN pr.pid IS NOT NULL THEN p.first_name ELSE '' END AS first_name,
              CASE WHEN pr.pid IS NOT NULL THEN p.last_name ELSE '' END AS last_name
            FROM members m JOIN persons p ON p.pid = m.pid
            LEFT JOIN mp_prof pr ON pr.pid = m.pid AND pr.uk = m.dk
            ORDER BY m.ci, m.si, m.pid, m.dk""")

    # ------------------------------------------------------------------ member snapshots
    def _members(self) -> None:
        ps = self.cfg.page_size
        self.snapshots: list[dict[str, Any]] = []
        for ci, c in enumerate(self.cfg.cohorts):
            for si, s in enumerate(self.snap):
                n = self.scalar(f"SELECT count(*) FROM mrows WHERE ci = {ci} AND si = {si}")
                stamp = time.strftime("%Y-%m-%dT%H-%M-%SZ", time.gmtime(s))
                folder = self.out / "mixpanel" / "members" / slug(c.name)
                if self.members_format == "csv":
                    path = folder / f"{stamp}.csv"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    self.q(f"""COPY (SELECT distinct_id, '{_iso(s)}' AS as_of FROM mrows
                               WHERE ci = {ci} AND si = {si} ORDER BY pid, dk)
                               TO {sql_str(path)} (FORMAT csv, HEADER true)""")
                else:
                    path = folder / f"{stamp}.json"
                    sid = self.session_id("members", ci, si)
                    fbc = json.dumps(json.dumps({"id": c.id}))[1:-1]
                    head = (f'{{"page":\' || page || \',"page_size":{ps},"session_id":"{sid}","status":"ok",'
                            f'"total":{n},"as_of":"{_iso(s)}","filter_by_cohort":"{fbc}","results":[')
                    sel = f"""
                        SELECT '{head}' || coalesce(string_agg(coalesce(obj,
                                 '{{"$distinct_id":"' || distinct_id || '","$properties":{{}}}}'), ',' ORDER BY rn), '')
                               || ']}}' AS line
                        FROM (SELECT *, rn // {ps} AS page FROM (
                                SELECT obj, distinct_id, row_number() OVER (ORDER BY pid, dk) - 1 AS rn
                                FROM mrows WHERE ci = {ci} AND si = {si}))
                        GROUP BY page ORDER BY page"""
                    if n == 0:
                        sel = f"SELECT '{head.replace(chr(39) + ' || page || ' + chr(39), '0')}]}}' AS line"
                    copy_lines(self.con, sel, path)
                self.add_file(path, "mixpanel-members", n)
                self.snapshots.append({"path": str(path.relative_to(self.out)), "cohort": c.name,
                                       "cohort_id": c.id, "as_of": _iso(s), "members": int(n)})

    # ------------------------------------------------------------------ webhooks
    def _webhooks(self) -> None:
        ps = self.cfg.page_size
        S = len(self.snap)
        self.q("""CREATE TEMP TABLE wh AS
            SELECT ci, si, 0 AS ak, pid, dk FROM members WHERE si = 0
            UNION ALL
            SELECT a.ci, a.si, 2 AS ak, a.pid, a.dk FROM members a
              WHERE a.si > 0 AND NOT EXISTS (SELECT 1 FROM members b WHERE b.ci = a.ci AND b.si = a.si - 1
                                             AND b.pid = a.pid AND b.dk = a.dk)
            UNION ALL
            SELECT b.ci, b.si + 1 AS si, 1 AS ak, b.pid, b.dk FROM members b
              WHERE b.si < (SELECT max(si) FROM members) AND NOT EXISTS (
                SELECT 1 FROM members a WHERE a.ci = b.ci AND a.si = b.si + 1 AND a.pid = b.pid AND a.dk = b.dk)""")
        # calls (si, ak): the full list (ak 0) first, then per later snapshot removes (1) and adds (2)
        self.webhooks: list[dict[str, Any]] = []
        for ci, c in enumerate(self.cfg.cohorts):
            calls = [(0, 0)] + [(si, ak) for si in range(1, S) for ak in (1, 2)]
            values = []
            for si, ak in calls:
                sid = self.session_id("webhook", ci, si)
                rx = _iso(self.snap[si] + 60)
                values.append(f"({si}, {ak}, '{sid}', '{rx}')")
            params = (
                f'"mixpanel_project_id":"{self.cfg.project_id}","mixpanel_cohort_id":"{c.id}",'
                f'"mixpanel_cohort_name":{json.dumps(c.name)},"mixpanel_cohort_description":{json.dumps(c.description)},'
            ).replace("'", "''")
            member = ("""'{"mixpanel_distinct_id":"' || r.distinct_id || '","email":"' || coalesce(r.prof_email, '')
                      || '","first_name":"' || r.first_name || '","last_name":"' || r.last_name || '"}'""")
            sel = f"""
              WITH calls AS (SELECT * FROM (VALUES {', '.join(values)}) v(si, ak, sid, rx)),
              w AS (SELECT w.si, w.ak, w.pid, w.dk,
                      row_number() OVER (PARTITION BY w.si, w.ak ORDER BY w.pid, w.dk) - 1 AS rn
                    FROM wh w WHERE w.ci = {ci}),
              wm AS (SELECT w.si, w.ak, w.rn // {ps} AS page, string_agg({member}, ',' ORDER BY w.rn) AS body
                     FROM w JOIN mrows r ON r.ci = {ci} AND r.pid = w.pid AND r.dk = w.dk
                       AND r.si = CASE WHEN w.ak = 1 THEN w.si - 1 ELSE w.si END
                     GROUP BY ALL),
              n AS (SELECT si, ak, count(*) AS n FROM w GROUP BY ALL),
              pages AS (SELECT c.*, greatest(1, ceil(coalesce(n.n, 0) / {ps}))::BIGINT AS total_pages
                        FROM calls c LEFT JOIN n USING (si, ak)),
              exp AS (SELECT *, unnest(range(total_pages)) AS page FROM pages)
              SELECT '{{"received_at":"' || e.rx || '","action":"' || {_sql_list(WEBHOOK_ACTIONS)}[e.ak + 1]
                || '","parameters":{{{params}"mixpanel_session_id":"' || e.sid
                || '","page_info":{{"total_pages":' || e.total_pages || ',"page_count":' || (e.page + 1)
                || '}},"members":[' || coalesce(wm.body, '') || ']}}}}' AS line
              FROM exp e LEFT JOIN wm USING (si, ak, page)
              ORDER BY e.si, e.ak, e.page"""
            path = self.out / "mixpanel" / "webhooks" / f"{slug(c.name)}.jsonl"
            copy_lines(self.con, sel, path)
            pages = sum(1 for _ in open(path, "rb"))
            self.add_file(path, "mixpanel-webhooks", pages)
            self.webhooks.append({"payloads": str(path.relative_to(self.out)), "cohort": c.name, "pages": pages})

    # ------------------------------------------------------------------ mParticle
    def _mparticle(self) -> None:
        keep = self.end - self.cfg.mparticle_ttl_days * pop.DAY
        self.q(f"CREATE TABLE mpa AS SELECT mpid FROM persons WHERE last_ev_t >= {keep}")
        self.q(f"""CREATE TABLE mpa_idents AS
            SELECT 'customer_id' AS type, customer_id AS value FROM persons WHERE last_ev_t >= {keep} AND logged
            UNION ALL SELECT 'email', email FROM persons WHERE last_ev_t >= {keep} AND has_email""")
        ident = lambda t, v: f"""'{{"type":"{t}","encoding":"none","value":"' || {v} || '"}}'"""  # noqa: E731
        line = f"""'{{"mpid":' || mpid_txt || ',"created_timestamp_ms":' || (first_ev_t * 1000)
            || ',"last_stored_timestamp_ms":' || (last_ev_t * 1000)
            || ',"is_opted_out":false,"limit_ad_tracking":null,"device_identities":[{{"type":"' || device_type
            || '","encoding":"none","value":"' || device || '"}}],"user_identities":['
            || CASE WHEN logged THEN {ident('customer_id', 'customer_id')} ELSE '' END
            || CASE WHEN has_email THEN ',' || {ident('email', 'email')} ELSE '' END
            || '],"account_userattributes":null,"user_attributes":{{'
            || CASE WHEN logged THEN '"$firstname":"' || first_name || '","$lastname":"' || last_name || '",' ELSE '' END
            || '"platform":"' || platform || '"}},"audience_memberships":[]}}'"""
        path = self.out / "mparticle" / f"profiles{self.ext}"
        order = "" if self.big else " ORDER BY pid"
        copy_lines(self.con, f"SELECT {line} FROM persons WHERE last_ev_t >= {keep}{order}", path, gzip=self.cfg.gzip)
        n = self.scalar("SELECT count(*) FROM mpa")
        self.counts["mparticle_profiles"] = n
        self.counts["mparticle_deleted"] = self.users - n
        self.add_file(path, "mparticle-profiles", n)

    # ------------------------------------------------------------------ truth
    def _truth(self) -> None:
        values = ", ".join(f"({ci}, {sql_str(c.name)}, {c.id})" for ci, c in enumerate(self.cfg.cohorts))
        sql = truth_sql(len(self.snap) - 1, self.snap[-1], values)
        self.q(f"CREATE TABLE truth AS {sql}")
        path = self.out / "truth.parquet"
        self.q(f"COPY (SELECT {', '.join(TRUTH_COLUMNS)} FROM truth ORDER BY cohort_name, distinct_id) "
               f"TO {sql_str(path)} (FORMAT parquet)")
        self.truth_rows = self.scalar("SELECT count(*) FROM truth")

    def _expected(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for ci, c in enumerate(self.cfg.cohorts):
            def by(col):
                rows = self.q(f"SELECT {col}, count(*) FROM truth WHERE cohort_name = ? GROUP BY 1 ORDER BY 1",
                              [c.name]).fetchall()
                return {("null" if k is None else str(k)): int(v) for k, v in rows}

            n = self.scalar(f"SELECT count(*) FROM truth WHERE cohort_name = {sql_str(c.name)}")
            matched = by("status").get("matched", 0)
            distinct = self.scalar(f"SELECT count(DISTINCT mpid) FROM truth WHERE cohort_name = {sql_str(c.name)}")
            out[c.name] = {
                "cohort_id": c.id, "members": n, "matched": matched, "unmatched": n - matched,
                "match_rate": round(matched / n, 6) if n else None,
                "distinct_matched_mpids": distinct, "shared_mpid": matched - distinct,
                "status": by("status"), "gap_reason": by("gap_reason"),
                "identifier_source": by("identifier_source"), "recoverable_via": by("recoverable_via"),
            }
        return out

    # ------------------------------------------------------------------ manifest
    def _manifest(self) -> dict[str, Any]:
        import cohortlab

        q = self.scalar
        buckets = dict(self.q("SELECT bucket, count(*) FROM persons GROUP BY 1 ORDER BY 1").fetchall())
        counts = {
            "people": self.users,
            "logged_in": q("SELECT count(*) FROM persons WHERE logged"),
            "with_email": q("SELECT count(*) FROM persons WHERE has_email"),
            "churned": q("SELECT count(*) FROM persons WHERE churned"),
            "events": self.counts["events"],
            "event_lines": self.counts["event_lines"] + self.counts["bad_event_lines"],
            "duplicate_event_lines": self.counts["duplicate_event_lines"],
            "bad_event_lines": self.counts["bad_event_lines"],
            "distinct_ids": q("SELECT count(*) FROM dk_stats"),
            "people_with_two_profiles": q("SELECT count(*) FROM (SELECT pid FROM mp_prof GROUP BY pid HAVING count(*) > 1)"),
            "mixpanel_profiles": self.counts["mixpanel_profiles"],
            "mixpanel_profiles_with_mparticle_user_id": self.counts["mixpanel_profiles_with_mparticle_user_id"],
            "mparticle_profiles": self.counts["mparticle_profiles"],
            "mparticle_deleted": self.counts["mparticle_deleted"],
            "mparticle_user_id_writers": {pop.BUCKET_NAMES[int(b)]: int(n) for b, n in buckets.items()},
            "mpids_above_2_53": q("SELECT count(*) FROM mpa WHERE abs(mpid::HUGEINT) > 9007199254740992"),
            "negative_mpids": q("SELECT count(*) FROM mpa WHERE mpid < 0"),
        }
        manifest = {
            "generator": "cohortlab synth",
            "cohortlab_version": cohortlab.__version__,
            "duckdb_version": duckdb.__version__,
            "scenario": self.cfg.scenario,
            "description": self.cfg.description,
            "users": self.users,
            "seed": self.seed,
            "parameters": self.cfg.dump(),
            "layout": {"profiles": self.profiles_format, "members": self.members_format, "gzip": self.cfg.gzip},
            "as_of": _iso(self.snap[-1]),
            "snapshot_times": [_iso(s) for s in self.snap],
            "truth_settings": {"fallback": "data", "event_identity_cutoff": _iso(TRUTH_CUTOFF),
                               "protection": "only_update"},
            "counts": {k: int(v) if not isinstance(v, dict) else v for k, v in counts.items()},
            "deliberately_bad": (
                {"mixpanel-events": {"malformed_json": self.counts["bad_event_lines"]}}
                if self.counts["bad_event_lines"] else {}
            ),
            "expected": self._expected(),
            "truth": {"path": "truth.parquet", "rows": int(self.truth_rows), "as_of": _iso(self.snap[-1])},
            "files": self.files,
            "snapshots": self.snapshots,
            "webhooks": self.webhooks,
        }
        write_json(self.out / "manifest.json", manifest)
        return manifest
