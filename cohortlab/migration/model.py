"""docs/rules.md#migration: External Identity Type (EIT) migration what-if, plan comparison and validation.

Model
-----
1. **Persons.** Every Mixpanel ``distinct_id`` seen in ``mp_events`` is linked to one mParticle
   person (an MPID), first match wins:
   a. a valid ``$mparticle_user_id`` event property that is an existing MPID;
   b. the ``distinct_id`` itself is the decimal text of an existing MPID;
   c. the event ``$user_id`` or the ``distinct_id`` equals a *user* identity value (customer_id,
      email, other, ...) held by exactly one profile (``mpa_identities``);
   d. Simplified ID Merge: a device (``$device_id``, or the ``$device:`` distinct_id) is merged
      into the first identified user seen with it, so anonymous events follow that user;
   e. a *device* identity of exactly one profile equals the device id;
   f. a valid ``$mparticle_user_id`` that is not an existing MPID (a deleted profile).
   A distinct_id that links to nothing is its own person, without an MPID ("not in mParticle").
2. **What Mixpanel would hold under a plan.** Each event is re-keyed with the EIT in force at
   its time: ``mparticle_id`` → the person's MPID (decimal text); ``customer_id``/``email``/
   ``other``/``other2..4`` → the person's identity value of that type, or ``$device:<device>``
   when the person has none (an unlinked person keeps its own distinct_id). One Mixpanel
   profile per (person, key): a person active before and after a switch has two (a *split*).
   A profile exists from its first event.
3. **$mparticle_user_id.** A remediation (Rule or SDK) writes it on the profile the event goes
   to, for every event at or after its start; the event rule (``event_identity_cutoff``)
   puts it on every event at or after the cutoff. Either way the value is the person's MPID.
4. **Matching** (docs/rules.md#resolution, the given settings): a profile matches at time T when its person's
   MPID exists and (it got ``$mparticle_user_id`` from an event at or after a remediation start
   or the cutoff, before T) or (its key is the MPID and the ``$distinct_id`` fallback applies:
   ``fallback='data'`` always, ``'strict'`` only when the plan's EIT at T is ``mparticle_id``).
5. **Members** are all profiles that exist at T (``members='all'``). A daily value is the state at
   the end of the day (as-of = next midnight UTC).
6. **Future activity.** ``activity='observed'`` uses the loaded events only (nobody is active
   after the last event). ``activity='repeat'`` projects the activity of the last
   ``repeat_days`` (30) whole days of data forward, repeated with that period, up to the window
   end: people active lately keep their rhythm, people who churned earlier stay away.

All heavy work is set-based DuckDB SQL in named steps (:class:`cohortlab.pipeline.Pipeline`,
portable subset); the per-day numbers come from a histogram of (first seen, matched from) days
joined to the day grid, never from one query per day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable

import pandas as pd

from cohortlab.errors import SettingsError
from cohortlab.engines.base import Engine
from cohortlab.identifiers import is_valid_mpid_sql, mpid_sql
from cohortlab.pipeline import Pipeline, sql_str, sql_ts
from cohortlab.migration.plans import EIT_IDENTITY_TYPE, MigrationPlan
from cohortlab.settings import SyncSettings
from cohortlab.times import naive_utc, parse_day, parse_naive_utc, parse_time

IDENTITY_COLUMNS = {t: f"id_{t}" for t in EIT_IDENTITY_TYPE.values() if t}

# tables written (the notebook reads them)
DAILY_TABLE = "migration_daily"
USERS_TABLE = "migration_users"
SUMMARY_TABLE = "migration_summary"
PLANS_TABLE = "migration_plans"
VALIDATION_TABLE = "migration_validation"
VALIDATION_SUMMARY_TABLE = "migration_validation_summary"


MAX_WINDOW_DAYS = 3660  # days of one what-if window (~10 years): refused above, not run out of memory


# --------------------------------------------------------------------------- 1. persons
def _interval_case(col: str, bounds: list[datetime]) -> str:
    """SQL: index of the interval of ``col`` among the sorted ``bounds`` (0 before the first)."""
    if not bounds:
        return "0"
    return ("CASE " + " ".join(f"WHEN {col} >= {sql_ts(b)} THEN {i + 1}" for i, b in reversed(list(enumerate(bounds))))
            + " ELSE 0 END")


def prepare_pipeline(*, bounds: list[datetime] | None = None, shifts: list[int] | None = None,
                     window_end: datetime | None = None, tail_start: datetime | None = None) -> dict[str, Pipeline]:
    """The plan-independent steps.

    ``mig_evu``: ONE scan of ``mp_events``, grouped by (distinct_id, device, interval), where the
    intervals are cut at every instant any plan cares about (``bounds``: switches, remediation
    starts, cutoffs, the as-of time, the window end, each also shifted back by the projection
    periods). No row straddles an instant, so every later step works on these few rows exactly.
    ``mig_map`` links distinct_ids to persons, ``mig_persons`` holds one row per person with its
    identities, ``mig_act`` the activity rows (pid, interval, first/last time, events), projected
    copies included (``shifts``: days added to each copy of the activity at or after
    ``tail_start``)."""
    bounds = sorted(set(bounds or []))
    scan = Pipeline()
    scan.add("ev", f"""
        SELECT distinct_id, user_id, device_id, mparticle_user_id, time,
               {_interval_case('time', bounds)} AS u, user_id IS NOT NULL AS has_uid
        FROM mp_events
        WHERE distinct_id IS NOT NULL AND time IS NOT NULL""")
    # any_value (not min/max) of the text columns: string comparisons dominate this scan
    scan.add("evu", """
        SELECT distinct_id,
               coalesce(device_id, CASE WHEN starts_with(distinct_id, '$device:') THEN substr(distinct_id, 9) END) AS device,
               u, has_uid, min(time) AS t_min, max(time) AS t_max, count(*) AS n,
               any_value(user_id) AS user_id, any_value(mparticle_user_id) AS mup
        FROM ev GROUP BY distinct_id, device_id, u, has_uid""")

    link = Pipeline()
    link.add("prof", "SELECT DISTINCT mpid FROM mpa_profiles WHERE mpid IS NOT NULL")
    link.add("uid", """
        SELECT value, min(mpid) AS mpid FROM mpa_identities
        WHERE kind = 'user' AND value IS NOT NULL
        GROUP BY value HAVING count(DISTINCT mpid) = 1""")
    link.add("devid", """
        SELECT value, min(mpid) AS mpid FROM mpa_identities
        WHERE kind = 'device' AND value IS NOT NULL
        GROUP BY value HAVING count(DISTINCT mpid) = 1""")
    link.add("dd", """
        SELECT distinct_id, device, max(user_id) AS user_id,
               min(mup) AS mup_lo, max(mup) AS mup_hi, min(t_min) AS first_t
        FROM mig_evu GROUP BY distinct_id, device""")
    link.add("dd_m", f"""
        SELECT dd.distinct_id, dd.device, dd.first_t,
               coalesce(p1.mpid, p2.mpid, p3.mpid, u1.mpid, u2.mpid) AS mpid_direct,
               coalesce({mpid_sql('dd.mup_hi')}, {mpid_sql('dd.mup_lo')}) AS mpid_claimed
        FROM dd
        LEFT JOIN prof p1 ON p1.mpid = {mpid_sql('dd.mup_hi')}
        LEFT JOIN prof p2 ON p2.mpid = {mpid_sql('dd.mup_lo')}
        LEFT JOIN prof p3 ON p3.mpid = {mpid_sql('dd.distinct_id')}
        LEFT JOIN uid u1 ON u1.value = dd.user_id
        LEFT JOIN uid u2 ON u2.value = dd.distinct_id""")
    link.add("did", """
        SELECT distinct_id, max(mpid_direct) AS mpid_direct, max(mpid_claimed) AS mpid_claimed,
               min(device) AS device, min(first_t) AS first_t
        FROM dd_m GROUP BY distinct_id""")
    link.add("dev_link", """
        SELECT m.device, arg_min(d.mpid_direct, m.first_t) AS mpid
        FROM dd_m m JOIN did d ON d.distinct_id = m.distinct_id
        WHERE m.device IS NOT NULL AND d.mpid_direct IS NOT NULL
        GROUP BY m.device""")
    link.add("did_dev", """
        SELECT m.distinct_id, min(l.mpid) AS mpid
        FROM dd_m m JOIN dev_link l ON l.device = m.device
        GROUP BY m.distinct_id""")
    link.add("did_dvi", """
        SELECT m.distinct_id, min(v.mpid) AS mpid
        FROM dd_m m JOIN devid v ON v.value = m.device
        GROUP BY m.distinct_id""")
    link.add("did_res", """
        SELECT d.distinct_id, d.device, d.first_t,
               coalesce(d.mpid_direct, dv.mpid, dvi.mpid, d.mpid_claimed) AS mpid,
               CASE WHEN d.mpid_direct IS NOT NULL THEN 'direct'
                    WHEN dv.mpid IS NOT NULL THEN 'device_merge'
                    WHEN dvi.mpid IS NOT NULL THEN 'device_identity'
                    WHEN d.mpid_claimed IS NOT NULL THEN 'claimed'
                    ELSE 'none' END AS link
        FROM did d
        LEFT JOIN did_dev dv ON dv.distinct_id = d.distinct_id
        LEFT JOIN did_dvi dvi ON dvi.distinct_id = d.distinct_id""")
    link.add("map", """
        SELECT distinct_id, mpid, link, device, first_t,
               CASE WHEN mpid IS NULL THEN distinct_id END AS anon_id
        FROM did_res""")

    persons = Pipeline()
    persons.add("idv", "SELECT mpid, "
                + ", ".join(f"min(CASE WHEN identity_type = '{t}' THEN value END) AS {c}"
                            for t, c in IDENTITY_COLUMNS.items())
                + " FROM mpa_identities WHERE kind = 'user' GROUP BY mpid")
    persons.add("prof", "SELECT DISTINCT mpid FROM mpa_profiles WHERE mpid IS NOT NULL")
    persons.add("p0", f"""
        SELECT mpid, anon_id, min(device) AS device, min(first_t) AS first_t,
               min(CASE WHEN NOT starts_with(distinct_id, '$device:') AND NOT {is_valid_mpid_sql('distinct_id')}
                        THEN distinct_id END) AS obs_ident
        FROM mig_map GROUP BY mpid, anon_id""")
    persons.add("p1", """
        SELECT row_number() OVER (ORDER BY p0.first_t, p0.mpid, p0.anon_id) AS pid,
               p0.mpid, p0.anon_id, p0.obs_ident, prof.mpid IS NOT NULL AS mpid_exists,
               CASE WHEN p0.anon_id IS NOT NULL THEN p0.anon_id
                    WHEN p0.device IS NOT NULL THEN '$device:' || p0.device
                    ELSE '$device:mpid-' || CAST(p0.mpid AS VARCHAR) END AS device_key
        FROM p0 LEFT JOIN prof ON prof.mpid = p0.mpid""")
    persons.add("persons", "SELECT p1.*, " + ", ".join(f"idv.{c}" for c in IDENTITY_COLUMNS.values())
                + " FROM p1 LEFT JOIN idv ON idv.mpid = p1.mpid")

    act = Pipeline()
    # idmask: bit 0 = the person has an MPID, bit c = it has the identity of key code c
    idmask = " + ".join(["CASE WHEN p.mpid IS NOT NULL THEN 1 ELSE 0 END"] + [
        f"CASE WHEN coalesce(p.{c}, p.obs_ident) IS NOT NULL THEN {2 ** (i + 1)} ELSE 0 END"
        for i, c in enumerate(IDENTITY_COLUMNS.values())])
    act.add("pmap", f"""
        SELECT m.distinct_id, p.pid, p.anon_id IS NOT NULL AS anon, {idmask} AS idmask FROM mig_map m
        JOIN mig_persons p ON p.mpid IS NOT DISTINCT FROM m.mpid AND p.anon_id IS NOT DISTINCT FROM m.anon_id""")
    act.add("obs", """
        SELECT pm.pid, pm.anon, pm.idmask, e.u, e.has_uid, e.t_min, e.t_max, e.n
        FROM mig_evu e JOIN pmap pm ON pm.distinct_id = e.distinct_id""")
    parts = ["SELECT pid, anon, idmask, u, has_uid, 0 AS k, t_min, t_max, n, FALSE AS projected FROM obs"
             + (f" WHERE t_min < {sql_ts(window_end)}" if window_end is not None else "")]
    for k, days in enumerate(shifts or [], start=1):
        sh = f"INTERVAL {int(days)} DAY"
        tail = f" AND t_min >= {sql_ts(tail_start)}" if tail_start is not None else ""
        parts.append(f"SELECT pid, anon, idmask, u, has_uid, {k} AS k, t_min + {sh} AS t_min, t_max + {sh} AS t_max, n, TRUE AS projected "
                     f"FROM obs WHERE t_min + {sh} < {sql_ts(window_end)}{tail}")
    act.add("act", "\nUNION ALL\n".join(parts))
    return {"mig_evu": scan, "mig_map": link, "mig_persons": persons, "mig_act": act}


@dataclass
class Prepared:
    data_start: datetime | None
    data_end: datetime | None
    window_end: datetime | None
    period_days: int | None
    shifts: list[int]
    bounds: list[datetime]
    persons: int
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


REPEAT_DAYS = 30


def prepare(engine: Engine, plans: Iterable[MigrationPlan] = (), *, window_end: Any = None,
            project: bool = False, repeat_days: int = REPEAT_DAYS, extra_bounds: Iterable[Any] = (),
            debug: bool = False) -> Prepared:
    """Materialise ``mig_evu``, ``mig_map``, ``mig_persons`` and ``mig_act`` for ``plans``.
    With ``project``, the activity of the last ``repeat_days`` whole days of data (all of it
    when the data span fewer days) is repeated with that period up to ``window_end``: people
    active lately keep their rhythm, people who churned before stay away."""
    lo, hi = engine.query_rows("SELECT min(time), max(time) FROM mp_events")[0]
    we = parse_naive_utc(window_end) if window_end is not None else None
    instants = set()
    for p in plans:
        for t, _ in p.changes:
            instants.add(naive_utc(t))
    instants |= {parse_naive_utc(x) for x in extra_bounds if x is not None}
    if we is not None:
        instants.add(we)
    shifts: list[int] = []
    period = None
    tail_start = None
    if project and we is not None and lo is not None:
        if repeat_days < 1:
            raise ValueError("repeat_days must be at least 1")
        period = min((hi.date() - lo.date()).days + 1, int(repeat_days))
        data_end = datetime.combine(hi.date() + timedelta(days=1), datetime.min.time())
        tail_start = data_end - timedelta(days=period)
        instants.add(tail_start)
        k = 1
        while tail_start + timedelta(days=k * period) < we:
            shifts.append(k * period)
            k += 1
    bounds = sorted(instants | {b - timedelta(days=d) for b in instants for d in shifts})
    pipes = prepare_pipeline(bounds=bounds, shifts=shifts, window_end=we, tail_start=tail_start)
    counts = {}
    for table, pipe in pipes.items():
        counts[table] = pipe.run(engine, table, debug=debug, temp=True)
    n = engine.count("mig_persons")
    return Prepared(lo, hi, we, period, shifts, bounds, n, counts)


# --------------------------------------------------------------------------- 2. per plan
_ID_CODES = {t: i + 1 for i, t in enumerate(IDENTITY_COLUMNS)}  # identity type -> key code


def _key_sql(eit: str) -> tuple[str, str]:
    """(key code, row-is-identified expression) for one EIT, over ``pe`` = activity rows
    (``idmask``: which identities the person has, see prepare_pipeline). Key codes: 0 = the MPID, 1.. = an identity type (``_ID_CODES``),
    -1 = the device, -2 = the distinct_id of a person without MPID. Under ``mparticle_id``
    everyone is identified by the MPID (also before login); under an identity type a row is
    identified when it carried a ``$user_id`` and the person has that identity."""
    if eit == "mparticle_id":
        return ("0", "(pe.idmask & 1) <> 0")
    code = _ID_CODES[EIT_IDENTITY_TYPE[eit]]
    return (str(code), f"pe.has_uid AND (pe.idmask & {2 ** code}) <> 0")


def _key_text_sql() -> str:
    """distinct_id text of a key code (``k.code``) of person ``p``."""
    ids = " ".join(f"WHEN {_ID_CODES[t]} THEN coalesce(p.{c}, p.obs_ident)" for t, c in IDENTITY_COLUMNS.items())
    return (f"CASE k.code WHEN -2 THEN p.anon_id WHEN -1 THEN p.device_key WHEN 0 THEN CAST(p.mpid AS VARCHAR) "
            f"{ids} END")


def plan_keys_pipeline(plan: MigrationPlan, *, horizon: datetime | None = None,
                       observed_only: bool = False, window_end: datetime | None = None,
                       merge: str = "asof", scope: str | None = None) -> Pipeline:
    """Steps from ``mig_act`` to one row per (person, Mixpanel profile key) under ``plan``:
    first/last activity, when ``$mparticle_user_id`` arrives (remediation / event rule).

    Simplified ID Merge: anonymous activity is shown under ``$device:<device>`` until the
    person is first identified, then (retroactively) under the first identified key
    (``merge="asof"``, day by day); ``merge="export"`` shows it under the first identified key
    from the start, as exports taken later do (validation). A remediation writes
    the profile property only from identified activity (profiles exist for identified users:
    "Create Profile Only If Logged In"); the event rule puts it on every event."""
    tl = plan.eit_timeline
    rem = min((r.since for r in plan.remediation), default=None)
    cut = plan.event_identity_cutoff
    # mig_act rows never straddle a plan instant (prepare() cut them there), so comparing the
    # first time of a row with an instant decides for the whole row.
    # ``horizon`` (validation at an as-of time) limits the activity that makes profiles and
    # $mparticle_user_id; the Simplified-ID-Merge target (first identified key) is taken from
    # all loaded activity, because the exports show distinct_ids merged as of export time.
    in_h = f"t_min <= {sql_ts(horizon)}" if horizon is not None else "TRUE"
    where = []
    if window_end is not None:
        where.append(f"t_min < {sql_ts(window_end)}")
    if observed_only:
        where.append("NOT projected")
    if scope is not None:  # a table of pids: only these persons
        where.append(f"pid IN (SELECT pid FROM {scope})")
    dated = [(i, x) for i, x in enumerate(tl) if x.since is not None]
    ep = ("CASE " + " ".join(f"WHEN t_min >= {sql_ts(x.since)} THEN {i}" for i, x in reversed(dated)) + " ELSE 0 END"
          if dated else "0")
    p = Pipeline()
    p.add("act", f"SELECT pid, anon, idmask, has_uid, t_min, t_max, n, {in_h} AS in_h, " + ep + " AS ep FROM mig_act"
          + (" WHERE " + " AND ".join(where) if where else ""))
    rfix = f"min(CASE WHEN t_min >= {sql_ts(rem)} THEN t_min END)" if rem is not None else "CAST(NULL AS TIMESTAMP)"
    cfix = f"min(CASE WHEN t_min >= {sql_ts(cut)} THEN t_min END)" if cut is not None else "CAST(NULL AS TIMESTAMP)"
    p.add("pe", f"""
        SELECT pid, ep, has_uid, in_h, any_value(anon) AS anon, any_value(idmask) AS idmask,
               min(t_min) AS first_t, max(t_max) AS last_t, sum(n) AS events,
               {rfix} AS rfix_t, {cfix} AS cfix_t
        FROM act GROUP BY pid, ep, has_uid, in_h""")
    keys = [_key_sql(x.eit) for x in tl]
    if len(keys) == 1:
        idcode, ident = keys[0]
    else:
        idcode = "CASE pe.ep " + " ".join(f"WHEN {i} THEN {k}" for i, (k, _) in enumerate(keys)) + " END"
        ident = "CASE pe.ep " + " ".join(f"WHEN {i} THEN {m}" for i, (_, m) in enumerate(keys)) + " END"
    p.add("pk0", f"""
        SELECT pe.pid, pe.anon, CASE WHEN pe.anon THEN FALSE ELSE coalesce({ident}, FALSE) END AS ident,
               {idcode} AS idcode, pe.in_h, pe.first_t, pe.last_t, pe.events, pe.rfix_t, pe.cfix_t
        FROM pe""")
    p.add("pfirst", """
        SELECT pid, arg_min(idcode, first_t) AS first_code, min(first_t) AS id_t FROM pk0 WHERE ident GROUP BY pid""")
    anon_row = "NOT k.anon AND NOT k.ident AND f.id_t IS NOT NULL"
    if merge == "export":
        # the exports show anonymous activity under the first identified key, whenever it came
        p.add("pk0b", """
            SELECT k.pid, k.ident, CASE WHEN k.anon THEN -2 WHEN k.ident THEN k.idcode
                                        ELSE coalesce(f.first_code, -1) END AS code,
                   k.first_t, k.last_t, k.events, k.rfix_t, k.cfix_t, CAST(NULL AS TIMESTAMP) AS end_t
            FROM pk0 k LEFT JOIN pfirst f ON f.pid = k.pid
            WHERE k.in_h""")
    else:
        # day by day: anonymous activity is a $device: member until the person is first
        # identified (id_t), then it belongs to the identified key (from id_t on)
        p.add("pk0b", f"""
            SELECT k.pid, k.ident, CASE WHEN k.anon THEN -2 WHEN k.ident THEN k.idcode
                                        ELSE coalesce(f.first_code, -1) END AS code,
                   CASE WHEN {anon_row} THEN greatest(k.first_t, f.id_t) ELSE k.first_t END AS first_t,
                   k.last_t, k.events, k.rfix_t,
                   CASE WHEN {anon_row} AND k.cfix_t IS NOT NULL THEN greatest(k.cfix_t, f.id_t)
                        ELSE k.cfix_t END AS cfix_t,
                   CAST(NULL AS TIMESTAMP) AS end_t
            FROM pk0 k LEFT JOIN pfirst f ON f.pid = k.pid
            WHERE k.in_h
            UNION ALL
            SELECT k.pid, FALSE AS ident, -1 AS code, k.first_t, least(k.last_t, f.id_t) AS last_t, k.events,
                   CAST(NULL AS TIMESTAMP) AS rfix_t,
                   CASE WHEN k.cfix_t < f.id_t THEN k.cfix_t END AS cfix_t, f.id_t AS end_t
            FROM pk0 k JOIN pfirst f ON f.pid = k.pid
            WHERE k.in_h AND NOT k.anon AND NOT k.ident AND k.first_t < f.id_t""")
    p.add("pk1", """
        SELECT pid, code, min(first_t) AS first_t, max(last_t) AS last_t,
               CAST(sum(events) AS BIGINT) AS events,
               min(CASE WHEN ident THEN rfix_t END) AS rfix_t, min(cfix_t) AS cfix_t, max(end_t) AS end_t
        FROM pk0b GROUP BY pid, code""")
    p.add("pk", f"""
        SELECT k.pid, {_key_text_sql()} AS distinct_id, p.mpid, p.mpid_exists,
               k.code = 0 AND p.mpid IS NOT NULL AS mpid_key,
               k.first_t, k.last_t, k.events, k.rfix_t, k.cfix_t, k.end_t,
               CASE WHEN p.mpid_exists THEN least(k.rfix_t, k.cfix_t) END AS fix_t,
               CASE WHEN p.mpid_exists AND k.code = 0 THEN k.first_t END AS fb_t,
               row_number() OVER (PARTITION BY k.pid ORDER BY k.end_t IS NOT NULL, k.first_t, k.code) AS profile_rank
        FROM pk1 k JOIN mig_persons p ON p.pid = k.pid""")
    return p


def daily_pipeline(keys_table: str, start: date, end: date, fb_ok: list[bool], eits: list[str]) -> Pipeline:
    """Day grid × histogram of (first seen day, matched-from day, fallback day)."""
    n = (end - start).days + 1
    s = sql_ts(start)
    e = sql_ts(end + timedelta(days=1))

    def idx(x: str) -> str:
        return (f"CASE WHEN {x} IS NULL THEN {n} WHEN {x} < {s} THEN -1 WHEN {x} >= {e} THEN {n} "
                f"ELSE date_diff('day', CAST({s} AS DATE), CAST({x} AS DATE)) END")

    rows = ", ".join(
        f"({i}, DATE '{start + timedelta(days=i)}', {sql_ts(start + timedelta(days=i + 1))}, {sql_str(eits[i])}, {'TRUE' if fb_ok[i] else 'FALSE'})"
        for i in range(n))
    p = Pipeline()
    p.add("days", f"SELECT * FROM (VALUES {rows}) AS v(i, day, as_of, eit, fb_ok)")
    p.add("hk", f"""
        SELECT {idx('first_t')} AS e, {idx('fix_t')} AS f, {idx('fb_t')} AS b, {idx('end_t')} AS x, count(*) AS n
        FROM {keys_table} GROUP BY 1, 2, 3, 4""")
    p.add("pp", f"""
        SELECT pid, min(first_t) AS p_first,
               min(CASE WHEN profile_rank = 2 AND end_t IS NULL THEN first_t END) AS p_second,
               min(fix_t) AS p_fix, min(fb_t) AS p_fb
        FROM {keys_table} GROUP BY pid""")
    p.add("hp", f"""
        SELECT {idx('p_first')} AS a, {idx('p_second')} AS s, {idx('p_fix')} AS f, {idx('p_fb')} AS b, count(*) AS n
        FROM pp GROUP BY 1, 2, 3, 4""")
    p.add("dk", """
        SELECT d.i, CAST(sum(CASE WHEN h.e <= d.i AND d.i < h.x THEN h.n ELSE 0 END) AS BIGINT) AS members,
               CAST(sum(CASE WHEN (h.f <= d.i OR (h.b <= d.i AND d.fb_ok)) AND d.i < h.x THEN h.n ELSE 0 END)
                    AS BIGINT) AS matched
        FROM days d CROSS JOIN hk h GROUP BY d.i""")
    p.add("dp", """
        SELECT d.i, CAST(sum(CASE WHEN h.a <= d.i THEN h.n ELSE 0 END) AS BIGINT) AS people,
               CAST(sum(CASE WHEN h.f <= d.i OR (h.b <= d.i AND d.fb_ok) THEN h.n ELSE 0 END) AS BIGINT) AS matched_people,
               CAST(sum(CASE WHEN h.s <= d.i THEN h.n ELSE 0 END) AS BIGINT) AS split_profiles
        FROM days d CROSS JOIN hp h GROUP BY d.i""")
    p.add("daily", """
        SELECT d.i AS day_index, d.day, d.as_of, d.eit,
               coalesce(k.members, 0) AS members, coalesce(k.matched, 0) AS matched,
               coalesce(q.people, 0) AS people, coalesce(q.matched_people, 0) AS matched_people,
               coalesce(q.split_profiles, 0) AS split_profiles
        FROM days d LEFT JOIN dk k ON k.i = d.i LEFT JOIN dp q ON q.i = d.i""")
    return p


def status_pipeline(keys_table: str, plan: MigrationPlan, settings: SyncSettings, as_of: datetime,
                    *, inclusive: bool = False) -> Pipeline:
    """Per (person, profile) status at ``as_of`` (docs/rules.md#statuses vocabulary) and its category."""
    fb_ok = settings.fallback_applies(plan.eit_at(as_of))
    a = sql_ts(as_of)
    lt = "<=" if inclusive else "<"
    fix_instants = plan.fix_instants()
    first_fix = min(fix_instants) if fix_instants else None
    p = Pipeline()
    p.add("st", f"""
        SELECT k.*,
          k.first_t {lt} {a} AS exists_at,
          CASE WHEN k.mpid_exists AND k.rfix_t {lt} {a} THEN 'mparticle_user_id'
               WHEN k.mpid_exists AND k.cfix_t {lt} {a} THEN 'event_property'
               WHEN {'TRUE' if fb_ok else 'FALSE'} THEN 'distinct_id'
               ELSE 'none' END AS identifier_source
        FROM {keys_table} k
        WHERE k.first_t {lt} {a} AND (k.end_t IS NULL OR k.end_t {'>' if inclusive else '>='} {a})""")
    p.add("st2", f"""
        SELECT st.*,
          CASE WHEN identifier_source IN ('mparticle_user_id', 'event_property') THEN 'matched'
               WHEN identifier_source = 'distinct_id' AND mpid_exists AND mpid_key THEN 'matched'
               ELSE 'unmatched' END AS status
        FROM st""")
    p.add("st3", f"""
        SELECT st2.*,
          CASE WHEN status = 'matched' THEN NULL
               WHEN identifier_source = 'none' THEN 'fallback_disabled'
               WHEN {is_valid_mpid_sql('distinct_id')} THEN 'mpid_not_found'
               ELSE 'distinct_id_not_mpid' END AS gap_reason,
          bool_or(status = 'matched') OVER (PARTITION BY pid) AS person_matched,
          max(last_t) OVER (PARTITION BY pid) AS person_last_t,
          count(*) OVER (PARTITION BY pid) AS person_profiles
        FROM st2""")
    p.add("users", f"""
        SELECT st3.*,
          CASE WHEN status = 'matched' THEN 'matched'
               WHEN mpid IS NULL THEN 'not_in_mparticle'
               WHEN NOT mpid_exists THEN 'mparticle_profile_deleted'
               WHEN person_matched THEN 'stranded_split'
               WHEN {('person_last_t < ' + sql_ts(first_fix)) if first_fix else 'FALSE'} THEN 'never_fixable'
               ELSE 'unfixed' END AS category
        FROM st3 WHERE exists_at""")
    return p


# --------------------------------------------------------------------------- orchestration
def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _settings(settings) -> SyncSettings:
    return SyncSettings.coerce(settings)


def time_to_fraction(daily: pd.DataFrame, since: datetime | None, fraction: float) -> float | None:
    """Days from ``since`` (or the window start) until the match rate reaches ``fraction`` of its
    final value and stays there; None if the final rate is 0."""
    if daily.empty:
        return None
    d = daily.sort_values("day")
    final = float(d["match_rate"].iloc[-1])
    if not final or math.isnan(final):
        return None
    start = pd.Timestamp(since).tz_localize(None).normalize() if since is not None else pd.Timestamp(d["day"].iloc[0])
    ok = (d["match_rate"] >= fraction * final - 1e-12).to_numpy()
    # first index from which all later days are ok
    first = len(ok)
    for i in range(len(ok) - 1, -1, -1):
        if ok[i]:
            first = i
        else:
            break
    day = pd.Timestamp(d["day"].iloc[first])
    return max(0.0, float((day - start).days))


def run_plans(engine: Engine, plans: Iterable[MigrationPlan], start: Any, end: Any, *,
              settings: Any = None, activity: str = "observed", repeat_days: int = REPEAT_DAYS,
              cohort: str | None = None, store: bool = True, debug: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predict every plan over the days ``start..end`` (inclusive). Returns (daily, summary);
    with ``store`` writes ``migration_daily``, ``migration_users``, ``migration_summary``,
    ``migration_plans`` (rows of these plans replaced). ``cohort``: only the people behind the
    members of that cohort's latest snapshot (all their Mixpanel profiles), instead of everyone."""
    plans = [MigrationPlan.coerce(p) for p in plans]
    names = [p.name for p in plans]
    if len(set(names)) != len(names):
        raise ValueError(f"plan names must be unique: {names}")
    st = _settings(settings)
    d0, d1 = parse_day(start), parse_day(end)
    if d1 < d0:
        raise ValueError(f"window end {d1} is before its start {d0}")
    if (d1 - d0).days + 1 > MAX_WINDOW_DAYS:
        raise SettingsError(f"window {d0} .. {d1} is {(d1 - d0).days + 1:,} days: at most {MAX_WINDOW_DAYS:,} days "
                            "(one row per day per plan); pick a later --start or an earlier --end")
    window_end = datetime.combine(d1 + timedelta(days=1), datetime.min.time())
    if activity not in ("observed", "repeat"):
        raise ValueError("activity must be 'observed' or 'repeat'")
    prep = prepare(engine, plans, window_end=window_end, project=activity == "repeat", repeat_days=repeat_days,
                   debug=debug)
    if cohort:
        _cohort_scope(engine, cohort)
    days = _days(d0, d1)
    dailies, summaries = [], []
    for plan in plans:
        kp = plan_keys_pipeline(plan, window_end=window_end, observed_only=activity == "observed",
                                scope="mig_scope" if cohort else None)
        kp.run(engine, "mig_keys", debug=debug, temp=True)
        eits = [plan.eit_at(datetime.combine(d + timedelta(days=1), datetime.min.time()).replace(tzinfo=timezone.utc))
                for d in days]
        fb_ok = [st.fallback_applies(e) for e in eits]
        dp = daily_pipeline("mig_keys", d0, d1, fb_ok, eits)
        daily = engine.query_df(dp.sql() + " ORDER BY day_index")
        daily.insert(0, "plan", plan.name)
        daily.insert(1, "cohort", pd.Series([cohort] * len(daily), dtype="string"))
        daily["match_rate"] = (daily["matched"] / daily["members"].where(daily["members"] > 0)).astype(float)
        daily["people_match_rate"] = (daily["matched_people"] / daily["people"].where(daily["people"] > 0)).astype(float)
        daily["overcount"] = daily["members"] - daily["people"]
        daily["day"] = pd.to_datetime(daily["day"])
        users_src = "mig_users_tmp"  # every profile at the end of the window
        engine.materialise(users_src, status_pipeline("mig_keys", plan, st, window_end).sql(), temp=True)
        cat = dict(engine.query_rows(f"SELECT category, count(*) FROM {users_src} GROUP BY category"))
        never = engine.query_rows(f"""
            SELECT count(DISTINCT pid) FILTER (WHERE category = 'never_fixable'),
                   count(DISTINCT pid) FILTER (WHERE NOT person_matched),
                   count(DISTINCT pid) FILTER (WHERE person_profiles > 1)
            FROM {users_src}""")[0]
        change = plan.first_change()
        last = daily.iloc[-1] if len(daily) else None
        summaries.append({
            "plan": plan.name, "cohort": cohort,
            "start": pd.Timestamp(d0), "end": pd.Timestamp(d1),
            "first_change": pd.Timestamp(naive_utc(change)) if change else pd.NaT,
            "members_end": int(last["members"]) if last is not None else 0,
            "matched_end": int(last["matched"]) if last is not None else 0,
            "final_match_rate": float(last["match_rate"]) if last is not None else float("nan"),
            "people_end": int(last["people"]) if last is not None else 0,
            "split_profiles_end": int(last["split_profiles"]) if last is not None else 0,
            "stranded_profiles": int(cat.get("stranded_split", 0)),
            "never_fixable_users": int(never[0] or 0),
            "unmatched_users": int(never[1] or 0),
            "not_in_mparticle_profiles": int(cat.get("not_in_mparticle", 0)),
            "deleted_mparticle_profiles": int(cat.get("mparticle_profile_deleted", 0)),
            "unfixed_profiles": int(cat.get("unfixed", 0)),
            "days_to_90pct": time_to_fraction(daily, change, 0.90),
            "days_to_99pct": time_to_fraction(daily, change, 0.99),
        })
        if store:
            _replace_rows(engine, USERS_TABLE, plan.name, f"""
                SELECT {sql_str(plan.name)} AS plan, pid, mpid, distinct_id, mpid_key AS keyed_by_mpid,
                       first_t AS first_seen, last_t AS last_seen, events,
                       rfix_t AS remediation_at, cfix_t AS event_rule_at,
                       least(fix_t, fb_t) AS matchable_from, identifier_source, status, gap_reason,
                       category, person_profiles, person_matched
                FROM {users_src}""")
        dailies.append(daily)
    daily = pd.concat(dailies, ignore_index=True) if dailies else pd.DataFrame()
    summary = pd.DataFrame(summaries)
    if len(summary):
        summary["cohort"] = summary["cohort"].astype("string")
    if store:
        _store_df(engine, DAILY_TABLE, daily, names)
        _store_df(engine, SUMMARY_TABLE, summary, names)
        _store_df(engine, PLANS_TABLE, pd.DataFrame({
            "plan": names, "definition": [p.model_dump_json() for p in plans],
            "yaml": [p.to_yaml() for p in plans]}), names)
    return daily, summary


def _cohort_scope(engine: Engine, cohort: str) -> None:
    """``mig_scope(pid)``: the persons behind the members of ``cohort``'s latest snapshot."""
    n = engine.query_rows(f"SELECT count(*) FROM mp_cohort_snapshots WHERE cohort_name = {sql_str(cohort)}")[0][0]
    if not n:
        raise ValueError(f"no membership snapshot of cohort {cohort!r} is loaded")
    engine.materialise("mig_scope", f"""
        SELECT DISTINCT pm.pid
        FROM mp_cohort_members c
        JOIN mig_map m ON m.distinct_id = c.distinct_id
        JOIN mig_persons pm ON pm.mpid IS NOT DISTINCT FROM m.mpid AND pm.anon_id IS NOT DISTINCT FROM m.anon_id
        WHERE c.snapshot_id = (SELECT max(snapshot_id) FROM mp_cohort_snapshots
                               WHERE cohort_name = {sql_str(cohort)}
                                 AND as_of = (SELECT max(as_of) FROM mp_cohort_snapshots
                                              WHERE cohort_name = {sql_str(cohort)}))""", temp=True)


def _replace_rows(engine: Engine, table: str, plan: str, select_sql: str) -> None:
    if engine.table_exists(table):
        engine.execute(f"DELETE FROM {table} WHERE plan = {sql_str(plan)}")
        engine.execute(f"INSERT INTO {table} BY NAME {select_sql}")
    else:
        engine.execute(f"CREATE TABLE {table} AS {select_sql}")


def _store_df(engine: Engine, table: str, df: pd.DataFrame, plans: list[str]) -> None:
    if df.empty:
        return
    engine.register("_mig_df", df)
    try:
        if engine.table_exists(table):
            engine.execute(f"DELETE FROM {table} WHERE plan IN ({', '.join(sql_str(p) for p in plans)})")
            try:
                engine.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _mig_df")
            except Exception:  # schema changed: rebuild
                engine.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM _mig_df")
        else:
            engine.execute(f"CREATE TABLE {table} AS SELECT * FROM _mig_df")
    finally:
        getattr(engine, "con", None) and engine.con.unregister("_mig_df")


# --------------------------------------------------------------------------- 3. validation
@dataclass
class ValidationResult:
    plan: str
    cohort: str
    at: datetime
    users: pd.DataFrame          # one row per cohort member: predicted vs observed
    confusion: pd.DataFrame      # predicted × observed (matched/unmatched) counts
    observed_match_rate: float
    predicted_match_rate: float
    differ: int
    differ_explained: dict[str, int]
    verdict: str

    def __str__(self) -> str:
        return self.verdict

    @property
    def differences(self) -> pd.DataFrame:
        return self.users[self.users["differs"]]


def predict_at(engine: Engine, plan: MigrationPlan, at: Any, *, settings: Any = None,
               activity: str = "observed", repeat_days: int = REPEAT_DAYS, table: str = "mig_predicted") -> str:
    """Materialise the predicted status of every profile under ``plan`` at ``at`` (events with
    time <= at, as docs/rules.md#resolution does) into ``table``; returns the table name. ``activity="repeat"``
    projects the loaded activity up to ``at`` (a prediction made before the switch, validated
    against exports taken after it)."""
    plan = MigrationPlan.coerce(plan)
    st = _settings(settings)
    at_ = parse_naive_utc(at)
    if activity not in ("observed", "repeat"):
        raise ValueError("activity must be 'observed' or 'repeat'")
    edge = at_ + timedelta(microseconds=1)
    prepare(engine, [plan], window_end=edge if activity == "repeat" else None,
            project=activity == "repeat", repeat_days=repeat_days, extra_bounds=[edge])
    plan_keys_pipeline(plan, horizon=at_, observed_only=activity == "observed", merge="export").run(
        engine, "mig_keys_at", temp=True)
    engine.materialise(table, status_pipeline("mig_keys_at", plan, st, at_, inclusive=True).sql(), temp=True)
    return table


def validate(engine: Engine, plan: Any, observed: pd.DataFrame, cohort: str, at: Any, *,
             settings: Any = None, store: bool = True, activity: str = "observed",
             repeat_days: int = REPEAT_DAYS) -> ValidationResult:
    """Compare the prediction of ``plan`` at ``at`` with ``observed`` (the resolution table of
    ``cohort`` at ``at``: distinct_id, status, gap_reason[, identifier_source, identifier]) per
    member. ``activity="repeat"`` when the loaded events end before ``at`` (see predict_at)."""
    plan = MigrationPlan.coerce(plan)
    at_ = parse_naive_utc(at)
    predict_at(engine, plan, at_, settings=settings, activity=activity, repeat_days=repeat_days)
    obs = observed.copy()
    if "cohort_name" in obs.columns:
        obs = obs[obs["cohort_name"] == cohort] if cohort in set(obs["cohort_name"]) else obs
    keep = [c for c in ("distinct_id", "status", "gap_reason", "identifier_source", "identifier", "mpid")
            if c in obs.columns]
    obs = obs[keep].drop_duplicates("distinct_id")
    for c in keep:
        if c != "mpid":
            obs[c] = obs[c].astype("string")
    src = "obs_identifier_source" if "identifier_source" in keep else "CAST(NULL AS VARCHAR)"
    ident = "obs_identifier" if "identifier" in keep else "CAST(NULL AS VARCHAR)"
    engine.register("_mig_obs", obs.rename(columns={c: f"obs_{c}" for c in keep if c != "distinct_id"}))
    ocols = ", ".join(f"o.obs_{c}" for c in keep if c != "distinct_id")
    try:
        df = engine.query_df(f"""
            WITH later AS (
                SELECT pid, CAST(sum(n) AS BIGINT) AS events_after, min(t_min) AS next_activity
                FROM mig_act WHERE t_min > {sql_ts(at_)} AND NOT projected GROUP BY pid),
            pred AS (
                SELECT p.*, m.link FROM mig_predicted p
                LEFT JOIN mig_map m ON m.distinct_id = p.distinct_id),
            j AS (
            SELECT o.distinct_id, {ocols},
                   p.pid, p.mpid AS predicted_mpid, p.link,
                   coalesce(p.status, 'unmatched') AS predicted_status,
                   CASE WHEN p.pid IS NULL THEN 'not_predicted' ELSE p.gap_reason END AS predicted_gap_reason,
                   p.identifier_source AS predicted_identifier_source,
                   p.first_t AS first_seen, p.last_t AS last_seen, p.category AS predicted_category,
                   coalesce(l.events_after, 0) AS events_after, l.next_activity
            FROM _mig_obs o
            LEFT JOIN pred p ON p.distinct_id = o.distinct_id
            LEFT JOIN later l ON l.pid = p.pid),
            k AS (
                SELECT j.*, coalesce(j.obs_status = 'matched', FALSE) AS observed_matched,
                       j.predicted_status = 'matched' AS predicted_matched
                FROM j)
            SELECT k.*, CASE WHEN observed_matched THEN 'matched' ELSE 'unmatched' END AS observed_status,
                   predicted_matched <> observed_matched AS differs,
                   -- why prediction and observation differ (first that applies)
                   CASE WHEN predicted_matched = observed_matched THEN NULL
                        WHEN events_after > 0 THEN 'activity_after_export'
                        WHEN pid IS NULL THEN 'member_without_events'
                        WHEN {src} IN ('mparticle_user_id', 'event_property') AND {ident} IS NOT NULL
                             AND predicted_mpid IS NOT NULL AND {ident} <> CAST(predicted_mpid AS VARCHAR)
                             THEN 'bad_mparticle_user_id'
                        WHEN {src} = 'mparticle_user_id' AND NOT predicted_matched THEN 'property_written_outside_plan'
                        WHEN {src} = 'distinct_id' AND predicted_identifier_source = 'event_property'
                             THEN 'event_property_missing'
                        ELSE 'model_differs' END AS explanation
            FROM k ORDER BY distinct_id""")
    finally:
        getattr(engine, "con", None) and engine.con.unregister("_mig_obs")
    df = df.drop_duplicates("distinct_id").reset_index(drop=True)
    n = len(df)
    conf = pd.crosstab(df["predicted_matched"].map({True: "predicted matched", False: "predicted unmatched"}),
                       df["observed_matched"].map({True: "observed matched", False: "observed unmatched"}))
    conf = conf.reindex(index=["predicted matched", "predicted unmatched"],
                        columns=["observed matched", "observed unmatched"], fill_value=0)
    obs_rate = float(df["observed_matched"].mean()) if n else float("nan")
    pred_rate = float(df["predicted_matched"].mean()) if n else float("nan")
    differ = int(df["differs"].sum())
    expl = df.loc[df["differs"], "explanation"].value_counts().to_dict()
    verdict = (f"observed match rate {obs_rate:.1%}, predicted {pred_rate:.1%}; {differ:,} users differ"
               if n else "no cohort members to compare")
    if differ:
        after = int(expl.get("activity_after_export", 0))
        verdict += f", {after:,} of them activity after the export"
        rest = {k: v for k, v in expl.items() if k != "activity_after_export"}
        if rest:
            verdict += " (" + ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in sorted(rest.items())) + ")"
    res = ValidationResult(plan.name, cohort, at_, df, conf, obs_rate, pred_rate, differ,
                           {k: int(v) for k, v in expl.items()}, verdict)
    if store:
        out = df.copy()
        out.insert(0, "plan", plan.name)
        out.insert(1, "cohort_name", cohort)
        out.insert(2, "as_of", pd.Timestamp(at_))
        _store_validation(engine, VALIDATION_TABLE, out, plan.name, cohort, at_)
        summ = pd.DataFrame([{
            "plan": plan.name, "cohort_name": cohort, "as_of": pd.Timestamp(at_), "members": n,
            "observed_match_rate": obs_rate, "predicted_match_rate": pred_rate,
            "both_matched": int(conf.iloc[0, 0]), "predicted_only": int(conf.iloc[0, 1]),
            "observed_only": int(conf.iloc[1, 0]), "both_unmatched": int(conf.iloc[1, 1]),
            "differ": differ, "verdict": verdict}])
        _store_validation(engine, VALIDATION_SUMMARY_TABLE, summ, plan.name, cohort, at_)
    return res


def _store_validation(engine: Engine, table: str, df: pd.DataFrame, plan: str, cohort: str, at: datetime) -> None:
    engine.register("_mig_df", df)
    try:
        if engine.table_exists(table):
            engine.execute(f"DELETE FROM {table} WHERE plan = {sql_str(plan)} AND cohort_name = {sql_str(cohort)} "
                           f"AND as_of = {sql_ts(at)}")
            try:
                engine.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _mig_df")
            except Exception:
                engine.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM _mig_df")
        else:
            engine.execute(f"CREATE TABLE {table} AS SELECT * FROM _mig_df")
    finally:
        getattr(engine, "con", None) and engine.con.unregister("_mig_df")


def plan_events(plans: Iterable[MigrationPlan]) -> pd.DataFrame:
    """Vertical markers for the chart: (plan, date, label) of every dated change."""
    rows = []
    for p in plans:
        p = MigrationPlan.coerce(p)
        for t, label in p.changes:
            rows.append({"plan": p.name, "date": pd.Timestamp(naive_utc(t)), "label": label})
    df = pd.DataFrame(rows, columns=["plan", "date", "label"])
    return df.drop_duplicates(["date", "label"]).reset_index(drop=True)


def migration_chart(daily: pd.DataFrame, plans: Iterable[MigrationPlan] | None = None, **kw):
    """Match rate over time, one line per plan (uses ``cohortlab.charts``)."""
    from cohortlab.charts import migration_match_rate_chart

    events = plan_events(plans) if plans is not None else None
    if events is not None and len(daily):
        lo, hi = pd.to_datetime(daily["day"]).min(), pd.to_datetime(daily["day"]).max() + pd.Timedelta(days=1)
        events = events[(events["date"] >= lo) & (events["date"] <= hi)]
    return migration_match_rate_chart(daily, time="day", series="plan", events=events, **kw)


__all__ = ["run_plans", "validate", "predict_at", "prepare", "ValidationResult", "migration_chart",
           "plan_events", "time_to_fraction", "MigrationPlan"]
