"""``generate()``: build a world chunk by chunk and write it.

People are split into ranges (one per events file). For each range, numpy draws the people and
their events (``population``), and DuckDB turns them into JSON lines and into every per-person
result: Mixpanel profiles, cohort membership at each snapshot, webhook diffs, the truth's
identifier, the mParticle profiles. Everything about a person lives in one range, so only small
tables cross ranges (webhook members, truth rows, existing MPIDs and identities); big outputs are
written as one part per range and concatenated in range order. Nothing depends on the number of
threads, so the same seed gives the same bytes.
"""

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

from cohortlab.synth import observed as obsv
from cohortlab.synth import population as pop
from cohortlab.synth.truth import TRUTH_COLUMNS, TRUTH_CUTOFF, truth_pre_sql, truth_sql
from cohortlab.synth.world import EVENT_NAMES, WorldConfig, build_config, epoch
from cohortlab.output_files import remove_written
from cohortlab.pipeline import sql_list, sql_str
from cohortlab.synth.writers import LineFile, copy_lines, iso_sql, slug, write_json

FIRST_NAMES = ("Ann", "Bob", "Carla", "Dev", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jamal",
               "Kira", "Liam", "Mina", "Noah", "Olga", "Pablo", "Quinn", "Rosa", "Sami", "Tara")
LAST_NAMES = ("Lee", "Smith", "Garcia", "Nguyen", "Kumar", "Muller", "Rossi", "Silva", "Kim", "Dubois",
              "Novak", "Haddad", "Okafor", "Tanaka", "Jensen", "Costa", "Ivanova", "Brown", "Ali", "Moreau")
OUTPUTS = ("mixpanel", "mparticle", "truth.parquet", "truth_verify.parquet", "manifest.json")
PLATFORM_DEVICE = {"web": "device_application_stamp", "iphone": "ios_idfv", "android": "android_uuid"}
WEBHOOK_ACTIONS = ("members", "remove_members", "add_members")  # by `ak`
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


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
        """``truth.parquet`` as pandas with nullable dtypes (MPIDs stay exact ``Int64``)."""
        import pandas as pd

        return pd.read_parquet(self.truth_path, dtype_backend="numpy_nullable")




def _iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _hex(words: list[np.ndarray]) -> pa.Array:
    """Lower-case hex text of one or more uint64 words per row (16 characters per word)."""
    n = len(words[0])
    b = np.concatenate([w.astype(">u8").view(np.uint8).reshape(n, 8) for w in words], axis=1)
    width = 2 * b.shape[1]
    out = np.empty((n, width), dtype=np.uint8)
    out[:, 0::2] = _HEX[b >> 4]
    out[:, 1::2] = _HEX[b & 15]
    offsets = np.arange(0, width * (n + 1), width, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(out.reshape(-1))).cast(pa.string())


def _not_written_by_synth(out: Path) -> list[str]:
    """The files under ``out`` that its ``manifest.json`` does not list as synth's (all of them
    without a manifest of synth's): ``--force`` replaces a generated world only. A folder of real
    exports has the same ``mixpanel/`` and ``mparticle/`` folders as a world, and was deleted."""
    try:
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        written = {str(f["path"]) for f in manifest["files"]} if manifest.get("generator") == "cohortlab synth" else set()
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        written = set()
    if written:
        written |= {name for name in OUTPUTS if "." in name}  # the manifest and the truth files beside the exports
    found = sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                   if not p.is_dir() and not p.relative_to(out).parts[0].startswith(".synth"))
    return [f for f in found if f not in written]


def _check_out(out: Path, force: bool) -> None:
    """Refuse an ``out`` this run may not write into; touches nothing."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a directory")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise FileExistsError(f"{out}: not empty (use --force to replace a generated world)")
        foreign = _not_written_by_synth(out)
        if foreign:
            raise FileExistsError(f"{out}: contains files that synth did not write ({', '.join(foreign[:5])}"
                                  f"{f' and {len(foreign) - 5:,} more' if len(foreign) > 5 else ''}); "
                                  "refusing to replace it")


def _clear_out(out: Path) -> None:
    """Empty ``out`` (checked by ``_check_out``: a world synth wrote) or make it."""
    if out.is_dir():
        for p in out.iterdir():
            if p.is_dir():
                shutil.rmtree(p)
            else:
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
    """Write a synthetic world of ``users`` people into ``out_dir`` (layout: ``cohortlab.synth``).

    ``scenario`` names a base (``SCENARIOS``); ``config`` is a YAML path, a dict or a
    ``WorldConfig``; ``overrides`` are ``WorldConfig`` fields. ``force`` replaces a world
    previously generated in ``out_dir`` (a folder with other files is refused)."""
    t0 = time.perf_counter()
    if users < 1:
        raise ValueError("users must be at least 1")
    if not 0 <= seed < 2**63:
        raise ValueError("seed must be a non-negative 64-bit integer")
    cfg = config if isinstance(config, WorldConfig) else build_config(scenario, config, **overrides)
    if gzip is not None:
        cfg = cfg.model_copy(update={"gzip": gzip})
    out = Path(out_dir)
    existed = out.exists()
    _check_out(out, force)  # a refusal leaves `out` as it is; from here on, everything in it is this run's
    work = None
    try:
        _clear_out(out)
        work = Path(tempfile.mkdtemp(prefix=".synth-work-", dir=out))
        con = duckdb.connect(":memory:")
        con.execute("SET preserve_insertion_order = true")
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET temp_directory = {sql_str(work / 'duckdb-tmp')}")
        con.execute("SET memory_limit = '2GB'")
        try:
            manifest = _World(con, cfg, users, seed, out, work, progress).run()
        finally:
            con.close()
    except BaseException:
        # stopped (Ctrl-C, SIGTERM) or failed: no half-written world, which the next run (a cron
        # job's retry) refused as "not empty" and, without a manifest, even with --force. Only the
        # names a world has go (OUTPUTS): a file another process put into the folder meanwhile stays
        # (the signal may come before the folder is made, or before its working folder is named)
        remove_written(out, [*OUTPUTS, *(p.name for p in out.glob(".synth-work-*"))], made=not existed)
        raise
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    return SynthResult(out, cfg, users, seed, manifest, time.perf_counter() - t0,
                       [out / f["path"] for f in manifest["files"]])


class _World:
    def __init__(self, con, cfg: WorldConfig, users: int, seed: int, out: Path, work: Path, progress: bool):
        self.con, self.cfg, self.users, self.seed, self.out, self.work = con, cfg, users, seed, out, work
        self.progress = progress
        big = users > cfg.big_world_users
        self.files: list[dict[str, Any]] = []
        self.snap = cfg.snapshot_times
        self.last_si = len(self.snap) - 1
        self.end = epoch(cfg.end)
        self.keep_from = self.end - cfg.mparticle_ttl_days * pop.DAY
        self.ext = ".jsonl.gz" if cfg.gzip else ".jsonl"
        self.profiles_format = cfg.profiles_format if cfg.profiles_format != "auto" else ("jsonl" if big else "pages")
        self.members_format = cfg.members_format if cfg.members_format != "auto" else ("csv" if big else "pages")
        n_files = max(cfg.min_event_files, math.ceil(users / cfg.users_per_event_file))
        n_files = min(n_files, users)
        self.bounds = [round(i * users / n_files) for i in range(n_files + 1)]
        self.counts: Counter = Counter()
        self.member_counts: Counter = Counter()  # (ci, si) -> members
        self.sinks: dict[str, LineFile] = {}
        # observed mParticle state (cohortlab.synth.observed)
        planned = obsv.plan(len(self.snap))
        self.obs_si = planned[1] if planned else self.last_si
        self.pause_si = planned[0] if planned else None
        self.observed_at = (self.snap[-2] + self.snap[-1]) // 2 if planned else self.snap[-1]
        self.names_values = obsv.names_values([c.name for c in cfg.cohorts])

    # ------------------------------------------------------------------ helpers
    def q(self, sql: str, params=None):
        res = self.con.execute(sql, params) if params is not None else self.con.execute(sql)
        if sql.lstrip()[:6].upper() in ("CREATE", "INSERT", "DROP T", "DROP I", "COPY ("):
            res.fetchall()  # statements: finish them (duckdb keeps results open otherwise)
        return res

    def scalar(self, sql: str, params=None):
        return self.q(sql, params).fetchall()[0][0]

    def add_file(self, path: Path, kind: str, records: int, **extra) -> None:
        self.files.append({"path": path.relative_to(self.out).as_posix(), "kind": kind,
                           "records": int(records), **extra})

    def session_id(self, *parts) -> str:
        tag = ":".join(map(str, parts))
        z = np.zeros(1, dtype=np.int64)
        h = _hex([pop.bits(self.seed, "session-a:" + tag, z), pop.bits(self.seed, "session-b:" + tag, z)])[0].as_py()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"

    def sink(self, name: str, path: Path, header: bytes = b"", gzip: bool = False) -> LineFile:
        """The output file ``name``, opened on first use; each range of people appends to it."""
        if name not in self.sinks:
            self.sinks[name] = LineFile(path, gzip=gzip, header=header)
        return self.sinks[name]

    def close_sink(self, name: str) -> int:
        f = self.sinks.pop(name, None)
        if f is None:
            return 0
        f.close()
        return f.lines

    def members_path(self, ci: int, si: int) -> Path:
        stamp = time.strftime("%Y-%m-%dT%H-%M-%SZ", time.gmtime(self.snap[si]))
        ext = ".csv" if self.members_format == "csv" else ".json"
        return self.out / "mixpanel" / "members" / slug(self.cfg.cohorts[ci].name) / f"{stamp}{ext}"

    # ------------------------------------------------------------------ run
    def run(self) -> dict[str, Any]:
        from tqdm.auto import tqdm

        phases = [("profiles", self._profiles), ("cohorts & members", self._members),
                  ("webhooks", self._webhooks), ("mparticle", self._mparticle), ("truth", self._truth),
                  ("manifest", self._manifest)]
        n_chunks = len(self.bounds) - 1
        bar = tqdm(total=n_chunks + len(phases), desc="synth", unit="step", disable=not self.progress,
                   leave=False)
        try:
            self._create_tables()
            for i in range(n_chunks):
                bar.set_postfix_str(f"people & events {i + 1}/{n_chunks}")
                self._chunk(i, self.bounds[i], self.bounds[i + 1])
                bar.update()
            if self.cfg.bad_event_lines:
                self._bad_events()
            manifest = None
            for name, step in phases:
                bar.set_postfix_str(name)
                manifest = step()
                bar.update()
        finally:
            bar.close()
            for name in list(self.sinks):
                self.close_sink(name)
        return manifest

    def _create_tables(self) -> None:
        self.q("CREATE TABLE g_prof_obj (pid BIGINT, uk TINYINT, obj VARCHAR)")
        self.q("CREATE TABLE g_mrows (ci INTEGER, si INTEGER, pid BIGINT, dk TINYINT, obj VARCHAR)")
        self.q("CREATE TABLE g_wh (ci INTEGER, si INTEGER, ak INTEGER, pid BIGINT, dk TINYINT, obj VARCHAR)")
        self.q("""CREATE TABLE g_tpre (ci INTEGER, pid BIGINT, dk TINYINT, distinct_id VARCHAR, true_mpid BIGINT,
                  has_profile BOOLEAN, identifier_source VARCHAR, identifier VARCHAR, prof_email VARCHAR,
                  last_t BIGINT)""")
        self.q("CREATE TABLE g_mpa (mpid BIGINT)")
        self.q("CREATE TABLE g_idents (type VARCHAR, value VARCHAR)")
        self.q("""CREATE TABLE g_vtruth (cohort_name VARCHAR, mpid BIGINT, person_id BIGINT, simulated VARCHAR,
                  observed VARCHAR, cause VARCHAR, in_snapshot BOOLEAN, other_name VARCHAR, other_value VARCHAR,
                  last_write_si INTEGER, changed_si INTEGER, at_capture VARCHAR)""")
        self.q("CREATE TABLE g_snapshot_profiles (n BIGINT)")

    # ------------------------------------------------------------------ one range of people
    def _chunk(self, i: int, lo: int, hi: int) -> None:
        cfg, seed, q = self.cfg, self.seed, self.q
        P = pop.people(cfg, seed, lo, hi, len(FIRST_NAMES), len(LAST_NAMES))
        E, first_uk = pop.events(cfg, seed, P)
        starts = np.cumsum(P.n) - P.n
        dev = _hex([pop.bits(seed, "device_a", P.pid), pop.bits(seed, "device_b", P.pid)])
        pc = pa.table({
            "pid": P.pid, "mpid": P.mpid, "other_mpid": P.other_mpid, "platform": P.platform,
            "first_ev_t": E.t[starts], "last_ev_t": E.t[starts + P.n - 1], "n": P.n,
            "logged": P.logged, "has_email": P.has_email, "bucket": P.bucket,
            "fname": P.fname, "lname": P.lname, "churned": P.churned, "first_uk": first_uk, "d": dev,
            "variant": (pop.bits(seed, "device_v", P.pid) >> np.uint64(62)).astype(np.int64),
        })
        self.con.register("pc", pc)
        ps = self.con.sql(f"""
            SELECT pid, mpid, mpid::VARCHAR AS mpid_txt, {sql_list(pop.PLATFORMS)}[platform + 1] AS platform,
              {sql_list([PLATFORM_DEVICE[p] for p in pop.PLATFORMS])}[platform + 1] AS device_type,
              substr(d, 1, 8) || '-' || substr(d, 9, 4) || '-4' || substr(d, 14, 3) || '-'
                || ['8', '9', 'a', 'b'][variant + 1] || substr(d, 18, 3) || '-' || substr(d, 21, 12) AS device,
              first_ev_t, last_ev_t, n AS n_events, logged, has_email,
              'cust-' || (1000000 + pid) AS customer_id,
              lower({sql_list(FIRST_NAMES)}[fname + 1] || '.' || {sql_list(LAST_NAMES)}[lname + 1]) || '.' || pid
                || '@example.com' AS email,
              {sql_list(FIRST_NAMES)}[fname + 1] AS first_name, {sql_list(LAST_NAMES)}[lname + 1] AS last_name,
              bucket,
              CASE bucket WHEN {pop.B_SDK_OK} THEN mpid::VARCHAR
                WHEN {pop.B_FLOAT} THEN coalesce(TRY_CAST(CAST(mpid AS DOUBLE) AS BIGINT)::VARCHAR, mpid::VARCHAR)
                WHEN {pop.B_UNDEFINED} THEN 'undefined' WHEN {pop.B_EMPTY} THEN ''
                WHEN {pop.B_OTHER_WS} THEN other_mpid::VARCHAR END AS sdk_value,
              churned, first_uk
            FROM pc ORDER BY pid""").to_arrow_table()
        self.con.unregister("pc")
        del pc
        self.con.register("ps", ps)
        self._events_file(i, P, E, ps)

        # ---- aggregates over the (de-duplicated) events of this range
        nonnull = (E.mk == pop.MK_EXACT) | ((E.mk == pop.MK_SDK) & (P.bucket[E.p] != pop.B_NULL))
        evn = pa.table({
            "pid": P.pid[E.p], "k": E.k, "t": E.t, "ev": E.ev, "uk": E.uk, "dk": E.dk, "mk": E.mk,
            "ua": E.ua, "prof": E.prof, "mnn": nonnull,
        })
        del E
        self.con.register("evn", evn)
        key = "t * 1048576 + k"
        q(f"""CREATE OR REPLACE TEMP TABLE c_prof AS SELECT pid, uk, min(t) AS created, max(t) AS last_seen,
              arg_max(ua, {key}) FILTER (WHERE ua > 0) AS ua_last FROM evn WHERE prof GROUP BY pid, uk""")
        q("CREATE OR REPLACE TEMP TABLE c_dk AS SELECT pid, dk, count(*) AS n, max(t) AS last_t FROM evn GROUP BY pid, dk")
        # the event rule at each snapshot's run (send time): the latest event value since the cutoff
        # and at or before snapshot si; the truth's (as-of) reading is that of the last snapshot
        latest = ", ".join(f"arg_max(mk, {key}) FILTER (WHERE t <= {s})" for s in self.snap)
        q(f"""CREATE OR REPLACE TEMP TABLE c_ers AS
              SELECT pid, dk, si, mk_last FROM (
                SELECT pid, dk, unnest([{latest}]) AS mk_last, unnest(range({len(self.snap)})) AS si FROM evn
                WHERE mnn AND t >= {TRUTH_CUTOFF} AND t <= {self.snap[-1]} GROUP BY pid, dk)
              WHERE mk_last IS NOT NULL""")
        q(f"CREATE OR REPLACE TEMP TABLE c_er AS SELECT pid, dk, mk_last FROM c_ers WHERE si = {self.last_si}")
        cols, conds, lo_t = [], [], None
        for ci, c in enumerate(cfg.cohorts):
            evf = f" AND ev = {EVENT_NAMES.index(c.event)}" if c.event else ""
            for si, s in enumerate(self.snap):
                w0 = s - c.window_days * pop.DAY
                lo_t = w0 if lo_t is None else min(lo_t, w0)
                cols.append(f"count(*) FILTER (WHERE t > {w0} AND t <= {s}{evf}) AS c{ci}_{si}")
                conds.append(f"SELECT {ci} AS ci, {si} AS si, pid, dk FROM cnt WHERE c{ci}_{si} >= {c.min_count}")
        q(f"CREATE OR REPLACE TEMP TABLE cnt AS SELECT pid, dk, {', '.join(cols)} FROM evn WHERE t > {lo_t} "
          "GROUP BY pid, dk")
        q(f"CREATE OR REPLACE TEMP TABLE c_mem AS {' UNION ALL '.join(conds)}")
        q("DROP TABLE cnt")
        self.con.unregister("evn")
        del evn

        self._chunk_profiles(i)
        self._chunk_members(i)
        q(f"INSERT INTO g_tpre {truth_pre_sql(self.last_si)}")
        self._chunk_observed(P)
        self._chunk_mparticle(i)
        self.con.unregister("ps")
        self.con.unregister("c_plant")
        for t in ("c_prof", "c_pf", "c_dk", "c_er", "c_ers", "c_mem", "c_mi", "c_writes", "c_obs"):
            q(f"DROP TABLE IF EXISTS {t}")

    def _events_file(self, i: int, P: pop.People, E: pop.Events, ps: pa.Table) -> None:
        rows = np.repeat(np.arange(len(E.t), dtype=np.int64), 1 + E.dup.astype(np.int64))
        take = pa.array(E.p[rows])
        rnd = E.rnd[rows]
        ex = pa.table({
            "event": pa.array(EVENT_NAMES).take(pa.array(E.ev[rows].astype(np.int64))),
            "t": E.t[rows], "dk": E.dk[rows], "uk": E.uk[rows], "mk": E.mk[rows],
            "iid": _hex([rnd]), "lag": ((rnd >> np.uint64(40)) % np.uint64(90000)).astype(np.int64),
            "cents": (199 + (rnd >> np.uint64(8)) % np.uint64(20000)).astype(np.int64),
            "mpid_txt": ps["mpid_txt"].take(take), "customer_id": ps["customer_id"].take(take),
            "email": ps["email"].take(take), "device": ps["device"].take(take),
            "sdk_value": ps["sdk_value"].take(take), "mp_lib": ps["platform"].take(take),
        })
        del take, rnd
        # one concat() per line (no chain of ||: no intermediate strings); concat() drops NULLs,
        # so a JSON null is spelled out explicitly
        did = ("CASE dk WHEN 1 THEN mpid_txt WHEN 2 THEN customer_id WHEN 3 THEN email "
               "ELSE concat('$device:', device) END")
        uid = "CASE uk WHEN 1 THEN mpid_txt WHEN 2 THEN customer_id ELSE email END"
        mval = "CASE mk WHEN 1 THEN mpid_txt ELSE sdk_value END"
        line = f"""concat('{{"event":"', event, '","properties":{{"time":', t, ',"distinct_id":"', {did},
            '","$insert_id":"', iid, '","$device_id":"', device, '"',
            CASE WHEN uk = 0 THEN '' ELSE concat(',"$user_id":"', {uid}, '"') END,
            CASE WHEN mk = 0 THEN '' WHEN {mval} IS NULL THEN ',"$mparticle_user_id":null'
                 ELSE concat(',"$mparticle_user_id":"', {mval}, '"') END,
            ',"mp_lib":"', mp_lib, '","mp_processing_time_ms":', t * 1000 + lag,
            CASE WHEN event = 'Purchase'
                 THEN concat(',"amount":', cents // 100, '.', lpad((cents % 100)::VARCHAR, 2, '0')) ELSE '' END,
            '}}}}')"""
        path = self.out / "mixpanel" / "events" / f"part-{i:05d}{self.ext}"
        self.con.register("ex", ex)
        copy_lines(self.con, f"SELECT {line} FROM ex", path, gzip=self.cfg.gzip)
        self.con.unregister("ex")
        self.add_file(path, "mixpanel-events", len(rows))
        self.counts["events"] += len(E.t)
        self.counts["event_lines"] += len(rows)
        self.counts["duplicate_event_lines"] += len(rows) - len(E.t)

    def _chunk_profiles(self, i: int) -> None:
        mpuid = f"CASE a.ua_last WHEN {pop.MK_EXACT} THEN p.mpid_txt WHEN {pop.MK_SDK} THEN p.sdk_value END"
        did = "CASE a.uk WHEN 1 THEN p.mpid_txt WHEN 2 THEN p.customer_id ELSE p.email END"
        self.q(f"""CREATE OR REPLACE TEMP TABLE c_pf AS
            SELECT a.pid, a.uk, {did} AS distinct_id, a.ua_last IS NOT NULL AS mpuid_present, {mpuid} AS mpuid,
              CASE WHEN p.has_email THEN p.email END AS email, p.first_name, p.last_name,
              concat('{{"$distinct_id":"', {did}, '","$properties":{{"$created":"', {iso_sql('a.created')}, '"',
                CASE WHEN p.has_email THEN concat(',"$email":"', p.email, '"') ELSE '' END,
                ',"$first_name":"', p.first_name, '","$last_name":"', p.last_name,
                '","$last_seen":"', {iso_sql('a.last_seen')}, '"',
                CASE WHEN a.ua_last IS NULL THEN '' WHEN {mpuid} IS NULL THEN ',"$mparticle_user_id":null'
                     ELSE concat(',"$mparticle_user_id":"', {mpuid}, '"') END,
                ',"platform":"', p.platform, '"}}}}') AS obj
            FROM c_prof a JOIN ps p ON p.pid = a.pid
            ORDER BY a.pid, a.uk""")
        n, n_mpuid, two = self.q("""SELECT count(*), count(*) FILTER (WHERE mpuid_present),
            (SELECT count(*) FROM (SELECT pid FROM c_pf GROUP BY pid HAVING count(*) > 1)) FROM c_pf""").fetchall()[0]
        self.counts["mixpanel_profiles"] += n
        self.counts["mixpanel_profiles_with_mparticle_user_id"] += n_mpuid
        self.counts["people_with_two_profiles"] += two
        if self.profiles_format == "jsonl":
            self.sink("profiles", self.out / "mixpanel" / "profiles" / f"profiles{self.ext}",
                      gzip=self.cfg.gzip).write_sql(self.con, "SELECT obj FROM c_pf")
        else:
            self.q("INSERT INTO g_prof_obj SELECT pid, uk, obj FROM c_pf")

    def _chunk_members(self, i: int) -> None:
        q = self.q
        q("""CREATE OR REPLACE TEMP TABLE c_mi AS
            SELECT d.pid, d.dk,
              CASE d.dk WHEN 1 THEN p.mpid_txt WHEN 2 THEN p.customer_id WHEN 3 THEN p.email
                        ELSE '$device:' || p.device END AS distinct_id,
              pf.pid IS NOT NULL AS has_profile, pf.obj, pf.email AS prof_email,
              CASE WHEN pf.pid IS NOT NULL THEN p.first_name ELSE '' END AS first_name,
              CASE WHEN pf.pid IS NOT NULL THEN p.last_name ELSE '' END AS last_name
            FROM (SELECT DISTINCT pid, dk FROM c_mem) d JOIN ps p ON p.pid = d.pid
            LEFT JOIN c_pf pf ON pf.pid = d.pid AND pf.uk = d.dk""")
        for ci, si, n in q("SELECT ci, si, count(*) FROM c_mem GROUP BY ALL").fetchall():
            self.member_counts[(ci, si)] += n
        self.counts["member_distinct_ids"] += self.scalar("SELECT count(*) FROM c_mi")
        if self.members_format == "csv":
            for ci, c in enumerate(self.cfg.cohorts):
                for si, s in enumerate(self.snap):
                    self.sink(f"members/{ci}/{si}", self.members_path(ci, si), header=b"distinct_id,as_of\n").write_sql(
                        self.con, f"""SELECT mi.distinct_id || ',{_iso(s)}' FROM c_mem m
                        JOIN c_mi mi ON mi.pid = m.pid AND mi.dk = m.dk
                        WHERE m.ci = {ci} AND m.si = {si} ORDER BY m.pid, m.dk""")
        else:
            q("""INSERT INTO g_mrows SELECT m.ci, m.si, m.pid, m.dk,
                   coalesce(mi.obj, '{"$distinct_id":"' || mi.distinct_id || '","$properties":{}}')
                 FROM c_mem m JOIN c_mi mi ON mi.pid = m.pid AND mi.dk = m.dk
                 ORDER BY m.ci, m.si, m.pid, m.dk""")
        # webhook calls: the full list at the first snapshot, then removes (ak 1) and adds (ak 2)
        member = ("""'{"mixpanel_distinct_id":"' || mi.distinct_id || '","email":"' || coalesce(mi.prof_email, '')
                  || '","first_name":"' || mi.first_name || '","last_name":"' || mi.last_name || '"}'""")
        q(f"""INSERT INTO g_wh SELECT w.ci, w.si, w.ak, w.pid, w.dk, {member} FROM (
              SELECT ci, si, 0 AS ak, pid, dk FROM c_mem WHERE si = 0
              UNION ALL
              SELECT ci, si + 1, 1, pid, dk FROM (
                SELECT ci, si, pid, dk FROM c_mem WHERE si < {self.last_si}
                EXCEPT SELECT ci, si - 1, pid, dk FROM c_mem WHERE si > 0)
              UNION ALL
              SELECT ci, si, 2, pid, dk FROM (
                SELECT ci, si, pid, dk FROM c_mem WHERE si > 0
                EXCEPT SELECT ci, si + 1, pid, dk FROM c_mem WHERE si < {self.last_si})
            ) w JOIN c_mi mi ON mi.pid = w.pid AND mi.dk = w.dk
            ORDER BY w.ci, w.si, w.ak, w.pid, w.dk""")

    def _chunk_observed(self, P: pop.People) -> None:
        """The feed's writes, the observed attributes of each profile and the verify truth
        (cohortlab.synth.observed), with the planted people of this range."""
        u = pop.uniform(self.seed, "observed_plant", P.pid)
        old, missing = self.cfg.observed_old_name_share, self.cfg.observed_missing_share
        plant = np.where(u < old, 1, np.where(u < old + missing, 2, 0)).astype(np.int8)
        self.con.register("c_plant", pa.table({"pid": P.pid, "plant": plant}))
        self.q(f"CREATE OR REPLACE TEMP TABLE c_writes AS {obsv.feed_writes_sql(self.keep_from, self.last_si)}")
        self.q(f"CREATE OR REPLACE TEMP TABLE c_obs AS {obsv.observed_attributes_sql(self.obs_si, self.names_values)}")
        self.q(f"INSERT INTO g_vtruth {obsv.verify_truth_sql(self.last_si, self.obs_si, self.names_values)}")
        self.q(f"""INSERT INTO g_snapshot_profiles SELECT count(*) FROM ps p LEFT JOIN c_plant pl ON pl.pid = p.pid
                   WHERE p.last_ev_t >= {self.keep_from} AND coalesce(pl.plant, 0) <> 2""")

    def _chunk_mparticle(self, i: int) -> None:
        keep = self.keep_from
        self.q(f"INSERT INTO g_mpa SELECT mpid FROM ps WHERE last_ev_t >= {keep}")
        self.q(f"""INSERT INTO g_idents
            SELECT 'customer_id', customer_id FROM ps WHERE last_ev_t >= {keep} AND logged
            UNION ALL SELECT 'email', email FROM ps WHERE last_ev_t >= {keep} AND has_email
            UNION ALL SELECT device_type, '$device:' || device FROM ps WHERE last_ev_t >= {keep}""")
        ident = lambda t, v: f"""concat('{{"type":"{t}","encoding":"none","value":"', {v}, '"}}')"""  # noqa: E731
        snap_t = [int(t) for t in self.snap]
        write_t = f"{sql_list([str(t) for t in snap_t])}[o.last_write_si + 1]::BIGINT"
        # captured at observed_at: the last store is the latest event or observed feed write before it
        stored = f"greatest(least(last_ev_t, {self.observed_at}), coalesce({write_t}, 0))"
        line = f"""concat('{{"mpid":', mpid_txt, ',"created_timestamp_ms":', first_ev_t * 1000,
            ',"last_stored_timestamp_ms":', {stored} * 1000,
            ',"is_opted_out":false,"limit_ad_tracking":null,"device_identities":[{{"type":"', device_type,
            '","encoding":"none","value":"', device, '"}}],"user_identities":[',
            CASE WHEN logged THEN {ident('customer_id', 'customer_id')} ELSE '' END,
            CASE WHEN has_email THEN concat(',', {ident('email', 'email')}) ELSE '' END,
            '],"account_userattributes":null,"user_attributes":{{', coalesce(o.attrs, ''),
            CASE WHEN logged THEN concat('"$firstname":"', first_name, '","$lastname":"', last_name, '",') ELSE '' END,
            '"platform":"', platform, '"}},"audience_memberships":[]}}')"""
        src = f"""ps LEFT JOIN c_obs o ON o.pid = ps.pid LEFT JOIN c_plant pl ON pl.pid = ps.pid
                  WHERE last_ev_t >= {keep}"""
        self.sink("mparticle", self.out / "mparticle" / f"profiles{self.ext}", gzip=self.cfg.gzip).write_sql(
            self.con, f"SELECT {line} FROM {src} AND coalesce(pl.plant, 0) <> 2 ORDER BY ps.pid")
        self.sink("mparticle_ids", self.out / "mparticle" / "profiles" / f"identities-only{self.ext}",
                  gzip=self.cfg.gzip).write_sql(
            self.con, f"SELECT {line} FROM {src} AND pl.plant = 2 ORDER BY ps.pid")
        c = self.q(f"""SELECT count(*), count(*) FILTER (WHERE abs(mpid::HUGEINT) > 9007199254740992),
                count(*) FILTER (WHERE mpid < 0) FROM ps WHERE last_ev_t >= {keep}""").fetchall()[0]
        self.counts["mparticle_profiles"] += c[0]
        self.counts["mpids_above_2_53"] += c[1]
        self.counts["negative_mpids"] += c[2]
        for name, n in self.q("""SELECT 'logged_in', count(*) FILTER (WHERE logged) FROM ps
                UNION ALL SELECT 'with_email', count(*) FILTER (WHERE has_email) FROM ps
                UNION ALL SELECT 'churned', count(*) FILTER (WHERE churned) FROM ps""").fetchall():
            self.counts[name] += n
        for b, n in self.q("SELECT bucket, count(*) FROM ps GROUP BY 1").fetchall():
            self.counts["bucket:" + pop.BUCKET_NAMES[int(b)]] += n
        self.counts["distinct_ids"] += self.scalar("SELECT count(*) FROM c_dk")

    def _bad_events(self) -> None:
        """Deliberately malformed lines (truncated JSON) at the end of the last events file."""
        import gzip as gz

        entry = [f for f in self.files if f["kind"] == "mixpanel-events"][-1]
        path = self.out / entry["path"]
        lines = "".join(
            '{"event":"App Open","properties":{"time":%d,"distinct_id":"trunc' % (self.end - 3600 - i) + "\n"
            for i in range(self.cfg.bad_event_lines)
        ).encode()
        with open(path, "ab") as f:
            f.write(gz.compress(lines, mtime=0) if self.cfg.gzip else lines)
        entry["records"] += self.cfg.bad_event_lines
        entry["bad_records"] = self.cfg.bad_event_lines
        self.counts["bad_event_lines"] = self.cfg.bad_event_lines

    # ------------------------------------------------------------------ Mixpanel profiles
    def _profiles(self) -> None:
        n = self.counts["mixpanel_profiles"]
        folder = self.out / "mixpanel" / "profiles"
        if self.profiles_format == "jsonl":
            path = folder / f"profiles{self.ext}"
            if "profiles" not in self.sinks:  # no profile at all
                self.sink("profiles", path, gzip=self.cfg.gzip)
            assert self.close_sink("profiles") == n
            self.add_file(path, "mixpanel-profiles", n)
            return
        ps = self.cfg.page_size
        sid = self.session_id("engage")
        head = f'{{"page":\' || page || \',"page_size":{ps},"session_id":"{sid}","status":"ok","total":{n},"results":['
        cur = self.q(f"""
            SELECT page, count(*) AS n, '{head}' || string_agg(obj, ',' ORDER BY rn) || ']}}' AS doc
            FROM (SELECT obj, rn, rn // {ps} AS page
                  FROM (SELECT obj, row_number() OVER (ORDER BY pid, uk) - 1 AS rn FROM g_prof_obj))
            GROUP BY page ORDER BY page""")
        docs = cur.fetchall() or [(0, 0, head.replace("' || page || '", "0") + "]}")]
        folder.mkdir(parents=True, exist_ok=True)
        for page, cnt, doc in docs:
            path = folder / f"page-{page:05d}.json"
            path.write_text(doc + "\n", encoding="utf-8")
            self.add_file(path, "mixpanel-profiles", cnt)

    # ------------------------------------------------------------------ cohorts list, member snapshots
    def _members(self) -> None:
        created = epoch(self.cfg.start) - 14 * pop.DAY + 9 * 3600
        doc = [
            {"count": int(self.member_counts.get((ci, self.last_si), 0)), "is_visible": 1,
             "description": c.description,
             "created": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(created + ci * 3600)),
             "project_id": self.cfg.project_id, "id": c.id, "name": c.name}
            for ci, c in enumerate(self.cfg.cohorts)
        ]
        path = self.out / "mixpanel" / "cohorts.json"
        write_json(path, doc)
        self.add_file(path, "mixpanel-cohorts", len(doc))
        ps = self.cfg.page_size
        self.snapshots: list[dict[str, Any]] = []
        for ci, c in enumerate(self.cfg.cohorts):
            for si, s in enumerate(self.snap):
                n = self.member_counts.get((ci, si), 0)
                if self.members_format == "csv":
                    path = self.members_path(ci, si)
                    self.sink(f"members/{ci}/{si}", path, header=b"distinct_id,as_of\n")
                    assert self.close_sink(f"members/{ci}/{si}") == n
                else:
                    path = self.members_path(ci, si)
                    sid = self.session_id("members", ci, si)
                    fbc = json.dumps(json.dumps({"id": c.id}))[1:-1]
                    head = (f'{{"page":\' || page || \',"page_size":{ps},"session_id":"{sid}","status":"ok",'
                            f'"total":{n},"as_of":"{_iso(s)}","filter_by_cohort":"{fbc}","results":[')
                    if n:
                        sel = f"""
                            SELECT '{head}' || string_agg(obj, ',' ORDER BY rn) || ']}}' AS line
                            FROM (SELECT obj, rn, rn // {ps} AS page FROM (
                                    SELECT obj, row_number() OVER (ORDER BY pid, dk) - 1 AS rn
                                    FROM g_mrows WHERE ci = {ci} AND si = {si}))
                            GROUP BY page ORDER BY page"""
                    else:
                        sel = "SELECT '" + head.replace("' || page || '", "0") + "]}' AS line"
                    copy_lines(self.con, sel, path)
                self.add_file(path, "mixpanel-members", n)
                self.snapshots.append({"path": path.relative_to(self.out).as_posix(), "cohort": c.name,
                                       "cohort_id": c.id, "as_of": _iso(s), "members": int(n)})

    # ------------------------------------------------------------------ webhooks
    def _webhooks(self) -> None:
        ps = self.cfg.page_size
        self.webhooks: list[dict[str, Any]] = []
        for ci, c in enumerate(self.cfg.cohorts):
            calls = [(0, 0)] + [(si, ak) for si in range(1, len(self.snap)) for ak in (1, 2)]
            values = ", ".join(
                f"({si}, {ak}, '{self.session_id('webhook', ci, si)}', '{_iso(self.snap[si] + 60)}')"
                for si, ak in calls
            )
            params = (
                f'"mixpanel_project_id":"{self.cfg.project_id}","mixpanel_cohort_id":"{c.id}",'
                f'"mixpanel_cohort_name":{json.dumps(c.name)},'
                f'"mixpanel_cohort_description":{json.dumps(c.description)},'
            ).replace("'", "''")
            sel = f"""
              WITH calls AS (SELECT * FROM (VALUES {values}) v(si, ak, sid, rx)),
              w AS (SELECT si, ak, obj, row_number() OVER (PARTITION BY si, ak ORDER BY pid, dk) - 1 AS rn
                    FROM g_wh WHERE ci = {ci}),
              wm AS (SELECT si, ak, rn // {ps} AS page, string_agg(obj, ',' ORDER BY rn) AS body, count(*) AS n
                     FROM w GROUP BY ALL),
              n AS (SELECT si, ak, count(*) AS n FROM w GROUP BY ALL),
              pages AS (SELECT c.*, greatest(1, ceil(coalesce(n.n, 0) / {ps}))::BIGINT AS total_pages
                        FROM calls c LEFT JOIN n USING (si, ak)),
              exp AS (SELECT *, unnest(range(total_pages)) AS page FROM pages)
              SELECT '{{"received_at":"' || e.rx || '","action":"' || {sql_list(WEBHOOK_ACTIONS)}[e.ak + 1]
                || '","parameters":{{{params}"mixpanel_session_id":"' || e.sid
                || '","page_info":{{"total_pages":' || e.total_pages || ',"page_count":' || (e.page + 1)
                || '}},"members":[' || coalesce(wm.body, '') || ']}}}}' AS line
              FROM exp e LEFT JOIN wm USING (si, ak, page)
              ORDER BY e.si, e.ak, e.page"""
            path = self.out / "mixpanel" / "webhooks" / f"{slug(c.name)}.jsonl"
            copy_lines(self.con, sel, path)
            pages = self.scalar(f"""SELECT sum(greatest(1, ceil(coalesce(n, 0) / {ps})))::BIGINT FROM
                (SELECT * FROM (VALUES {values}) v(si, ak, sid, rx)) c
                LEFT JOIN (SELECT si, ak, count(*) AS n FROM g_wh WHERE ci = {ci} GROUP BY ALL) x USING (si, ak)""")
            self.add_file(path, "mixpanel-webhooks", pages)
            self.webhooks.append({"payloads": path.relative_to(self.out).as_posix(), "cohort": c.name,
                                  "pages": int(pages)})

    # ------------------------------------------------------------------ mParticle
    def _mparticle(self) -> None:
        path = self.out / "mparticle" / f"profiles{self.ext}"
        if "mparticle" not in self.sinks:
            self.sink("mparticle", path, gzip=self.cfg.gzip)
        in_snapshot = self.close_sink("mparticle")
        ids_path = self.out / "mparticle" / "profiles" / f"identities-only{self.ext}"
        if "mparticle_ids" not in self.sinks:
            self.sink("mparticle_ids", ids_path, gzip=self.cfg.gzip)
        only_ids = self.close_sink("mparticle_ids")
        assert in_snapshot + only_ids == self.counts["mparticle_profiles"]
        self.counts["mparticle_deleted"] = self.users - self.counts["mparticle_profiles"]
        # a file without profiles (a tiny world) is not written: an empty export is no snapshot
        for p, n, extra in ((path, in_snapshot, {"observed_at": _iso(self.observed_at)}), (ids_path, only_ids, {})):
            if n:
                self.add_file(p, "mparticle-profiles", n, **extra)
            else:
                p.unlink()

    # ------------------------------------------------------------------ truth
    def _truth(self) -> None:
        values = ", ".join(f"({ci}, {sql_str(c.name)}, {c.id})" for ci, c in enumerate(self.cfg.cohorts))
        self.q(f"CREATE TABLE truth AS {truth_sql(self.snap[-1], values)}")
        path = self.out / "truth.parquet"
        self.q(f"COPY (SELECT {', '.join(TRUTH_COLUMNS)} FROM truth ORDER BY cohort_name, distinct_id) "
               f"TO {sql_str(path)} (FORMAT parquet)")
        self.truth_rows = self.scalar("SELECT count(*) FROM truth")
        vpath = self.out / "truth_verify.parquet"
        self.q(f"COPY (SELECT {', '.join(obsv.VERIFY_COLUMNS)} FROM g_vtruth ORDER BY cohort_name, mpid) "
               f"TO {sql_str(vpath)} (FORMAT parquet)")

    def _expected_verify(self) -> dict[str, Any]:
        """The confusion table and cause counts `cohortlab verify` should give per cohort, when
        run with ``snapshot_at`` = ``observed_at`` and ``at`` = the last snapshot."""
        snapshot_profiles = int(self.scalar("SELECT coalesce(sum(n), 0) FROM g_snapshot_profiles"))
        out: dict[str, Any] = {
            "snapshot_at": _iso(self.observed_at), "at": _iso(self.snap[-1]),
            "pause": ({"start": _iso(self.snap[self.pause_si] - 60), "end": _iso(self.observed_at + 3600),
                       "modelled": False} if self.pause_si is not None else None),
            "cohorts": {},
        }
        for c in self.cfg.cohorts:
            carried = self.scalar("SELECT count(*) FROM g_vtruth WHERE cohort_name = ? "
                                  "AND (observed <> 'absent' OR other_name IS NOT NULL)", [c.name])
            if not carried:
                # no profile of the snapshot carries its attribute (none of its members matched):
                # verify cannot tell that from a snapshot without cohort attributes, and refuses
                out["cohorts"][c.name] = {"confusion": None, "causes": None, "refused": "no observed state"}
                continue
            conf = {f"{s}/{o}": int(n) for s, o, n in self.q(
                "SELECT simulated, observed, count(*) FROM g_vtruth WHERE cohort_name = ? GROUP BY 1, 2 ORDER BY 1, 2",
                [c.name]).fetchall()}
            written = int(self.scalar("SELECT count(*) FROM g_vtruth WHERE cohort_name = ? AND in_snapshot", [c.name]))
            conf["absent/absent"] = conf.get("absent/absent", 0) + snapshot_profiles - written
            causes = {k: int(n) for k, n in self.q(
                "SELECT cause, count(*) FROM g_vtruth WHERE cohort_name = ? AND cause IS NOT NULL GROUP BY 1 ORDER BY 1",
                [c.name]).fetchall()}
            out["cohorts"][c.name] = {"confusion": conf, "causes": causes}
        return out

    def _expected(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for c in self.cfg.cohorts:
            def by(col):
                rows = self.q(f"SELECT {col}, count(*) FROM truth WHERE cohort_name = ? GROUP BY 1 ORDER BY 1",
                              [c.name]).fetchall()
                return {("null" if k is None else str(k)): int(v) for k, v in rows}

            n, matched, distinct = self.q(
                "SELECT count(*), count(*) FILTER (WHERE status = 'matched'), count(DISTINCT mpid) "
                "FROM truth WHERE cohort_name = ?", [c.name]).fetchall()[0]
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

        k = self.counts
        counts = {
            "people": self.users,
            "logged_in": k["logged_in"], "with_email": k["with_email"], "churned": k["churned"],
            "events": k["events"],
            "event_lines": k["event_lines"] + k["bad_event_lines"],
            "duplicate_event_lines": k["duplicate_event_lines"],
            "bad_event_lines": k["bad_event_lines"],
            "distinct_ids": k["distinct_ids"],
            "people_with_two_profiles": k["people_with_two_profiles"],
            "mixpanel_profiles": k["mixpanel_profiles"],
            "mixpanel_profiles_with_mparticle_user_id": k["mixpanel_profiles_with_mparticle_user_id"],
            "mparticle_profiles": k["mparticle_profiles"],
            "mparticle_deleted": k["mparticle_deleted"],
            "mpids_above_2_53": k["mpids_above_2_53"],
            "negative_mpids": k["negative_mpids"],
            "mparticle_user_id_writers": {b: k["bucket:" + b] for b in pop.BUCKET_NAMES},
            "cohort_members": {
                c.name: {_iso(s): self.member_counts.get((ci, si), 0) for si, s in enumerate(self.snap)}
                for ci, c in enumerate(self.cfg.cohorts)
            },
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
            "layout": {"profiles": self.profiles_format, "members": self.members_format, "gzip": self.cfg.gzip,
                       "event_files": len(self.bounds) - 1},
            "as_of": _iso(self.snap[-1]),
            "snapshot_times": [_iso(s) for s in self.snap],
            "truth_settings": {"fallback": "data", "event_identity_cutoff": _iso(TRUTH_CUTOFF),
                               "protection": "only_update"},
            "counts": counts,
            "deliberately_bad": (
                {"mixpanel-events": {"malformed_json": k["bad_event_lines"]}} if k["bad_event_lines"] else {}
            ),
            "expected": self._expected(),
            "truth": {"path": "truth.parquet", "rows": int(self.truth_rows), "as_of": _iso(self.snap[-1])},
            "observed_at": _iso(self.observed_at),
            "expected_verify": self._expected_verify(),
            "truth_verify": {"path": "truth_verify.parquet",
                             "rows": int(self.scalar("SELECT count(*) FROM g_vtruth"))},
            "files": self.files,
            "snapshots": self.snapshots,
            "webhooks": self.webhooks,
        }
        write_json(self.out / "manifest.json", manifest)
        return manifest
