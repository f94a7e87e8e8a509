"""Step 1 of the migration model (:mod:`.model`): who is who, and when they were active.

Every Mixpanel ``distinct_id`` with events is linked to a person (an mParticle MPID, or itself
when it links to nothing), and the activity is cut at every instant a plan cares about, so the
per-plan steps work on few rows exactly. Shared by every plan of a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Iterable

from cohortlab.engines.base import Engine
from cohortlab.identifiers import LoggedIn, app_event_sql, logged_in_rule, mpid_sql
from cohortlab.migration.model import IDENTITY_COLUMNS, REPEAT_DAYS, RunTables, run_pipeline
from cohortlab.migration.plans import MigrationPlan
from cohortlab.pipeline import Pipeline, sql_ts
from cohortlab.times import naive_utc, parse_naive_utc

if TYPE_CHECKING:  # pragma: no cover
    from cohortlab.simulation.membership import CohortRef


# the events the what-if reads
_EVENT_ROWS = "distinct_id IS NOT NULL AND time IS NOT NULL"
# a Mixpanel device: the event's $device_id, else the id in a "$device:<id>" distinct_id
_DEVICE_SQL = "coalesce(device_id, CASE WHEN starts_with(distinct_id, '$device:') THEN substr(distinct_id, 9) END)"


def interval_case(col: str, bounds: list[datetime]) -> str:
    """SQL: index of the interval of ``col`` among the sorted ``bounds`` (0 before the first)."""
    if not bounds:
        return "0"
    return ("CASE " + " ".join(f"WHEN {col} >= {sql_ts(b)} THEN {i + 1}" for i, b in reversed(list(enumerate(bounds))))
            + " ELSE 0 END")


def activity_pipelines(t: RunTables, *, bounds: list[datetime] | None = None, shifts: list[int] | None = None,
                       window_end: datetime | None = None, tail_start: datetime | None = None,
                       app: bool = True, logged_in: LoggedIn = LoggedIn(True)) -> dict[str, Pipeline]:
    """The plan-independent steps, {table: pipeline} in the order to run them.

    ``intervals``: ONE scan of ``mp_events``, grouped by (distinct_id, device, interval), where
    the intervals are cut at every instant any plan cares about (``bounds``: switches,
    remediation starts, cutoffs, the as-of time, the window end, each also shifted back by the
    projection periods). No row straddles an instant, so every later step works on these few
    rows exactly. ``links`` ties distinct_ids to persons, ``persons`` holds one row per person
    with its identities, ``activity`` the activity rows (pid, interval, first/last time,
    events), projected copies included (``shifts``: days added to each copy of the activity at
    or after ``tail_start``). ``app``: whether the activity rows say which events an app sent
    (``app``, read by SDK code only: :func:`cohortlab.identifiers.app_event_sql`); without a plan
    that has SDK code the column is FALSE throughout, and costs nothing. ``logged_in``: how the
    data tells a logged-in event (``has_uid``; :func:`cohortlab.identifiers.logged_in_rule`: a
    ``$user_id``, or without any in the data a distinct_id that is no device id)."""
    bounds = sorted(set(bounds or []))
    scan = Pipeline()
    scan.add("events", f"""
        SELECT distinct_id, user_id, device_id, mparticle_user_id, time,
               {interval_case('time', bounds)} AS u,
               {logged_in.sql(user='user_id', distinct='distinct_id', device='device_id')} AS has_uid
        FROM mp_events{logged_in.join('distinct_id')}
        WHERE {_EVENT_ROWS}""")
    # no text aggregate here (a text state makes this aggregate spill under the report's memory
    # share: 2.8 s instead of 1.1 at 1M): only whether an event's $user_id / $mparticle_user_id is
    # the distinct_id itself; the values that differ from it are aggregated apart (links, "claims")
    scan.add("activity_by_interval", f"""
        SELECT distinct_id, {_DEVICE_SQL} AS device,
               u, has_uid, min(time) AS t_min, max(time) AS t_max, count(*) AS n,
               bool_or(user_id = distinct_id) AS uid_is_did, bool_or(mparticle_user_id = distinct_id) AS mup_is_did,
               -- sent by an app (a $device_id): SDK code writes only from these (the rows are
               -- grouped by device_id, so it is one value per group)
               {app_event_sql('device_id') if app else 'FALSE'} AS app
        FROM events GROUP BY distinct_id, device_id, u, has_uid""")

    # three steps are written as tables of their own (materialise): as one statement the links held
    # every join's hash table and aggregate at once, and at 10M users failed under the report's
    # 750 MB share (out of memory after 90 s); in four statements they spill and complete (136 s),
    # for ~0.5 s more at 1M
    link = Pipeline()
    link.add("existing_mpids", "SELECT DISTINCT mpid FROM mpa_profiles WHERE mpid IS NOT NULL")
    # held by exactly one profile (min = max: one distinct MPID)
    link.add("unique_user_identities", """
        SELECT value, min(mpid) AS mpid FROM mpa_identities
        WHERE kind = 'user' AND value IS NOT NULL
        GROUP BY value HAVING min(mpid) = max(mpid)""")
    link.add("unique_device_identities", """
        SELECT value, min(mpid) AS mpid FROM mpa_identities
        WHERE kind = 'device' AND value IS NOT NULL
        GROUP BY value HAVING min(mpid) = max(mpid)""")
    # per distinct_id, over all its events (every device): the largest $user_id and the smallest
    # and largest $mparticle_user_id (text order), so the first rule that applies is decided on
    # all of them. Most equal the distinct_id itself (the intervals say whether one does); the
    # others are aggregated over the few events that carry them
    link.add("claims_other_than_distinct_id", f"""
        SELECT distinct_id,
               max(user_id) FILTER (WHERE user_id <> distinct_id) AS uid_other,
               min(mparticle_user_id) FILTER (WHERE mparticle_user_id <> distinct_id) AS mup_lo_other,
               max(mparticle_user_id) FILTER (WHERE mparticle_user_id <> distinct_id) AS mup_hi_other
        FROM mp_events
        WHERE {_EVENT_ROWS}
          AND (user_id <> distinct_id OR mparticle_user_id <> distinct_id)
        GROUP BY distinct_id""")
    link.add("distinct_id_devices", materialise=True, sql=f"""
        SELECT distinct_id, device, bool_or(uid_is_did) AS uid_is_did, bool_or(mup_is_did) AS mup_is_did,
               min(t_min) AS first_t
        FROM {t.intervals} GROUP BY distinct_id, device""")
    link.add("claims_per_distinct_id", """
        SELECT i.distinct_id, i.devices,
               greatest(c.uid_other, CASE WHEN i.uid_is_did THEN i.distinct_id END) AS user_id,
               least(c.mup_lo_other, CASE WHEN i.mup_is_did THEN i.distinct_id END) AS mup_lo,
               greatest(c.mup_hi_other, CASE WHEN i.mup_is_did THEN i.distinct_id END) AS mup_hi
        FROM (SELECT distinct_id, bool_or(uid_is_did) AS uid_is_did, bool_or(mup_is_did) AS mup_is_did,
                     count(*) AS devices
              FROM distinct_id_devices GROUP BY distinct_id) i
        LEFT JOIN claims_other_than_distinct_id c ON c.distinct_id = i.distinct_id""")
    link.add("mpid_candidates", f"""
        SELECT distinct_id, devices, user_id, {mpid_sql('mup_hi')} AS mpid_hi, {mpid_sql('mup_lo')} AS mpid_lo,
               {mpid_sql('distinct_id')} AS mpid_did
        FROM claims_per_distinct_id""")
    # rules a (largest $mparticle_user_id first), b, c; and f's candidate (a deleted profile)
    link.add("direct_links", materialise=True, sql="""
        SELECT dd.distinct_id, dd.devices, dd.mpid_did IS NOT NULL AS is_mpid,
               coalesce(p1.mpid, p2.mpid, p3.mpid, u1.mpid, u2.mpid) AS mpid_direct,
               coalesce(dd.mpid_hi, dd.mpid_lo) AS mpid_claimed
        FROM mpid_candidates dd
        LEFT JOIN existing_mpids p1 ON p1.mpid = dd.mpid_hi
        LEFT JOIN existing_mpids p2 ON p2.mpid = dd.mpid_lo
        LEFT JOIN existing_mpids p3 ON p3.mpid = dd.mpid_did
        LEFT JOIN unique_user_identities u1 ON u1.value = dd.user_id
        LEFT JOIN unique_user_identities u2 ON u2.value = dd.distinct_id""")
    # Simplified ID Merge: the first user seen on the device that is linked by its own ids, also
    # through a $mparticle_user_id of no existing profile (a deleted one: still that user's device;
    # that user itself is not merged into its own claim: it takes its own rules, in order)
    link.add("device_first_user", """
        SELECT m.device, arg_min(coalesce(d.mpid_direct, d.mpid_claimed), m.first_t) AS mpid
        FROM distinct_id_devices m JOIN direct_links d ON d.distinct_id = m.distinct_id
        WHERE m.device IS NOT NULL AND coalesce(d.mpid_direct, d.mpid_claimed) IS NOT NULL
        GROUP BY m.device""")
    # every way a distinct_id links: its devices' first user and device identity, then its own
    # ids (one row per distinct_id). A distinct_id seen with one device (most) is that device's
    # row; only those seen with several are aggregated (the device tables have one row per
    # device, so nothing is counted twice): a text aggregate over every distinct_id spilled under
    # the what-if's memory share (0.84 s of 1.9 s at 1M users)
    device_links = """
        FROM distinct_id_devices m JOIN direct_links d ON d.distinct_id = m.distinct_id
        LEFT JOIN device_first_user l ON l.device = m.device
        LEFT JOIN unique_device_identities v ON v.value = m.device"""
    own_claim_out = "CASE WHEN l.mpid IS DISTINCT FROM d.mpid_claimed THEN l.mpid END"
    link.add("links_per_distinct_id", materialise=True, sql=f"""
        SELECT m.distinct_id, d.mpid_direct, d.mpid_claimed, m.device, m.first_t, d.is_mpid,
               {own_claim_out} AS mpid_device_merge, v.mpid AS mpid_device_identity
        {device_links}
        WHERE d.devices = 1
        UNION ALL
        SELECT m.distinct_id, any_value(d.mpid_direct), any_value(d.mpid_claimed), min(m.device), min(m.first_t),
               any_value(d.is_mpid), min({own_claim_out}), min(v.mpid)
        {device_links}
        WHERE d.devices > 1
        GROUP BY m.distinct_id""")
    link.add("first_link_that_applies", """
        SELECT distinct_id, device, first_t, is_mpid,
               coalesce(mpid_direct, mpid_device_merge, mpid_device_identity, mpid_claimed) AS mpid,
               CASE WHEN mpid_direct IS NOT NULL THEN 'direct'
                    WHEN mpid_device_merge IS NOT NULL THEN 'device_merge'
                    WHEN mpid_device_identity IS NOT NULL THEN 'device_identity'
                    WHEN mpid_claimed IS NOT NULL THEN 'claimed'
                    ELSE 'none' END AS link
        FROM links_per_distinct_id""")
    link.add("person_links", """
        SELECT distinct_id, mpid, link, device, first_t,
               CASE WHEN mpid IS NULL THEN distinct_id END AS anon_id,
               is_mpid AS distinct_id_is_mpid
        FROM first_link_that_applies""")

    persons = Pipeline()
    persons.add("identities_by_type", "SELECT mpid, "
                + ", ".join(f"min(CASE WHEN identity_type = '{typ}' THEN value END) AS {c}"
                            for typ, c in IDENTITY_COLUMNS.items())
                + " FROM mpa_identities WHERE kind = 'user' GROUP BY mpid")
    persons.add("existing_mpids", "SELECT DISTINCT mpid FROM mpa_profiles WHERE mpid IS NOT NULL")
    obs_ident = "CASE WHEN NOT starts_with(distinct_id, '$device:') AND NOT distinct_id_is_mpid THEN distinct_id END"
    # a person is an MPID (all its distinct_ids) or one distinct_id linked to nothing (anon_id)
    persons.add("people", f"""
        SELECT mpid, CAST(NULL AS VARCHAR) AS anon_id, min(device) AS device, min(first_t) AS first_t,
               min({obs_ident}) AS obs_ident
        FROM {t.links} WHERE mpid IS NOT NULL GROUP BY mpid
        UNION ALL
        SELECT CAST(NULL AS BIGINT) AS mpid, anon_id, device, first_t, {obs_ident} AS obs_ident
        FROM {t.links} WHERE mpid IS NULL""")
    persons.add("numbered_people", """
        SELECT row_number() OVER (ORDER BY p.first_t, p.mpid, p.anon_id) AS pid,
               p.mpid, p.anon_id, p.obs_ident, e.mpid IS NOT NULL AS mpid_exists,
               CASE WHEN p.anon_id IS NOT NULL THEN p.anon_id
                    WHEN p.device IS NOT NULL THEN '$device:' || p.device
                    ELSE '$device:mpid-' || CAST(p.mpid AS VARCHAR) END AS device_key
        FROM people p LEFT JOIN existing_mpids e ON e.mpid = p.mpid""")
    # a person's key under an identity EIT is that identity (docs/rules.md#external-identity-type),
    # else a device id. One exception: a deleted profile (its MPID is in no loaded profile, so its
    # identities are unknown) keeps its observed distinct_id as its customer id, what the
    # customer_id-keyed exports show; never as an email or other identity
    observed_cid = "CASE WHEN p.mpid IS NOT NULL AND NOT p.mpid_exists THEN p.obs_ident END"
    persons.add("persons_with_identities", "SELECT p.*, " + ", ".join(
        f"coalesce(i.{c}, {observed_cid}) AS {c}" if typ == "customer_id" else f"i.{c}"
        for typ, c in IDENTITY_COLUMNS.items())
                + " FROM numbered_people p LEFT JOIN identities_by_type i ON i.mpid = p.mpid")

    act = Pipeline()
    # idmask: bit 0 = the person has an MPID, bit c = it has the identity of key code c
    idmask = " + ".join(["CASE WHEN p.mpid IS NOT NULL THEN 1 ELSE 0 END"] + [
        f"CASE WHEN p.{c} IS NOT NULL THEN {2 ** (i + 1)} ELSE 0 END"
        for i, c in enumerate(IDENTITY_COLUMNS.values())])
    act.add("person_of_distinct_id", f"""
        SELECT m.distinct_id, p.pid, FALSE AS anon, {idmask} AS idmask
        FROM {t.links} m JOIN {t.persons} p ON p.mpid = m.mpid
        UNION ALL
        SELECT m.distinct_id, p.pid, TRUE AS anon, {idmask} AS idmask
        FROM {t.links} m JOIN {t.persons} p ON p.anon_id = m.anon_id""")
    act.add("observed_activity", f"""
        SELECT pm.pid, pm.anon, pm.idmask, e.u, e.has_uid, e.app, e.t_min, e.t_max, e.n
        FROM {t.intervals} e JOIN person_of_distinct_id pm ON pm.distinct_id = e.distinct_id""")
    parts = ["SELECT pid, anon, idmask, u, has_uid, app, 0 AS k, t_min, t_max, n, FALSE AS projected FROM observed_activity"
             + (f" WHERE t_min < {sql_ts(window_end)}" if window_end is not None else "")]
    for k, days in enumerate(shifts or [], start=1):
        sh = f"INTERVAL {int(days)} DAY"
        tail = f" AND t_min >= {sql_ts(tail_start)}" if tail_start is not None else ""
        parts.append(f"SELECT pid, anon, idmask, u, has_uid, app, {k} AS k, t_min + {sh} AS t_min, t_max + {sh} AS t_max, "
                     f"n, TRUE AS projected FROM observed_activity WHERE t_min + {sh} < {sql_ts(window_end)}{tail}")
    act.add("observed_and_projected_activity", "\nUNION ALL\n".join(parts))
    return {t.intervals: scan, t.links: link, t.persons: persons, t.activity: act}


@dataclass
class Prepared:
    """What :func:`prepare` made: the data's time range, the projection and the step counts."""
    tables: RunTables
    data_start: datetime | None
    data_end: datetime | None
    window_end: datetime | None
    period_days: int | None
    shifts: list[int]
    bounds: list[datetime]
    persons: int
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


def prepare(engine: Engine, tables: RunTables, plans: Iterable[MigrationPlan] = (), *, window_end: Any = None,
            project: bool = False, repeat_days: int = REPEAT_DAYS, extra_bounds: Iterable[Any] = (),
            debug: bool = False, keep: bool = False) -> Prepared:
    """Materialise the intervals, links, persons and activity tables of ``tables`` for ``plans``.
    With ``project``, the activity of the last ``repeat_days`` whole days of data (all of it
    when the data span fewer days: the days before the first event count as empty) is repeated
    with the period ``repeat_days`` up to ``window_end``. The intervals, which only the links and
    the activity read, are dropped once the activity is made, unless ``keep`` or ``debug`` (the
    tables are read after the run): under a report's memory share they took memory the plans'
    steps then spilled for."""
    plans = list(plans)
    lo, hi = engine.query_rows("SELECT min(time), max(time) FROM mp_events")[0]
    we = parse_naive_utc(window_end) if window_end is not None else None
    instants = {naive_utc(t) for p in plans for t, _ in p.changes}
    instants |= {parse_naive_utc(x) for x in extra_bounds if x is not None}
    if we is not None:
        instants.add(we)
    shifts: list[int] = []
    period = None
    tail_start = None
    if project and we is not None and lo is not None:
        if repeat_days < 1:
            from cohortlab.errors import SettingsError

            raise SettingsError(f"repeat_days must be at least 1, not {repeat_days!r}")
        # the period is repeat_days even when the data span fewer days (a shorter period would
        # repeat a monthly visitor every 10 days when 10 days are loaded: a made-up rhythm)
        period = int(repeat_days)
        data_end = datetime.combine(hi.date() + timedelta(days=1), datetime.min.time())
        tail_start = data_end - timedelta(days=period)
        instants.add(tail_start)
        k = 1
        while tail_start + timedelta(days=k * period) < we:
            shifts.append(k * period)
            k += 1
    bounds = sorted(instants | {b - timedelta(days=d) for b in instants for d in shifts})
    counts = {}
    sdk = any(r.kind == "sdk" for p in plans for r in p.remediation)  # only SDK code reads `app`
    for table, pipe in activity_pipelines(tables, bounds=bounds, shifts=shifts, window_end=we,
                                          tail_start=tail_start, app=sdk, logged_in=logged_in_rule(engine)).items():
        counts[table] = run_pipeline(engine, tables, pipe, table, debug=debug)
    if not (keep or debug):
        engine.drop(tables.intervals)
        tables.created.remove(tables.intervals)
    return Prepared(tables, lo, hi, we, period, shifts, bounds, engine.count(tables.persons), counts)


def latest_snapshot_sql(cohort: "CohortRef") -> str:
    """SQL: the ``snapshot_id`` of ``cohort``'s latest membership snapshot (the later load of two
    of one as-of time), among its rows under every name it had (a renamed cohort's). ``cohort``:
    found with ``source="snapshots"``
    (:func:`cohortlab.simulation.membership.find_cohort`), whose ``last_time`` is that snapshot's
    as-of time."""
    return cohort.latest_snapshot_sql(sql_ts(cohort.last_time))


def cohort_scope_sql(t: RunTables, cohort: "CohortRef") -> str:
    """SQL of the persons (pid) behind the members of ``cohort``'s latest snapshot."""
    return f"""
        SELECT DISTINCT pm.pid
        FROM mp_cohort_members m
        JOIN {t.links} l ON l.distinct_id = m.distinct_id
        JOIN {t.persons} pm ON pm.mpid IS NOT DISTINCT FROM l.mpid AND pm.anon_id IS NOT DISTINCT FROM l.anon_id
        WHERE m.snapshot_id = {latest_snapshot_sql(cohort)}"""


__all__ = ["activity_pipelines", "Prepared", "prepare", "cohort_scope_sql", "latest_snapshot_sql", "interval_case"]
