"""The EIT migration model (docs/rules.md#migration) as named SQL steps.

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
   when the person has none (an unlinked person keeps its own distinct_id; a deleted profile
   its observed distinct_id as its customer id). One Mixpanel
   profile per (person, key text): a person active before and after a switch has two (a
   *split*); two periods that give the same text (customer id = email, or = the MPID) one.
   A profile exists from its first event.
3. **$mparticle_user_id.** A remediation (Rule or SDK) writes it on the profile the event goes
   to, for every logged-in event (one with a ``$user_id``) at or after its start, under
   ``mparticle_id`` too (SDK code only for one an app sent: ``$device_id``,
   :func:`cohortlab.identifiers.app_event_sql`); never on a ``$device:`` profile; the event rule (``event_identity_cutoff``)
   puts it on every event at or after the cutoff. Either way the value is the person's MPID.
   Values that app code wrote outside any plan (junk, float-rounded MPIDs) are not modelled:
   validation names them (``bad_mparticle_user_id``).
4. **Matching** (the given settings): a profile matches at time T when its person's MPID exists
   and (it got ``$mparticle_user_id`` from an event at or after a remediation start or the
   cutoff, before T) or (its key is the MPID and ``SyncSettings.fallback_applies`` the EIT of
   the plan at T).
5. **Members** are all profiles that exist at T. A daily value is the state at the end of the
   day (as-of = next midnight UTC).
6. **Future activity.** ``project`` repeats the activity of the last ``repeat_days`` whole days
   of data forward with that period, up to the window end: people active lately keep their
   rhythm, people who churned earlier stay away.

Every table of one run is named ``mig_<run id>_<what>`` (:class:`RunTables`), so two runs in
one database never collide; with ``debug`` every step is a table ``<that name>__<step>``.
Step 1 (persons and their activity, shared by every plan) is in :mod:`.persons`; steps 2-5
(one plan's profiles, days and statuses) are here.
The per-day numbers come from a histogram of (first seen, matched from) days joined to the day
grid, never from one query per day.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from cohortlab.engines.base import Engine
from cohortlab.identifiers import is_valid_mpid_sql, mpid_sql, remediation_event_sql
from cohortlab.migration.plans import EIT_IDENTITY_TYPE, MigrationPlan
from cohortlab.pipeline import Pipeline, sql_bool, sql_str, sql_ts
from cohortlab.settings import SyncSettings
from cohortlab.simulation.resolution import identity_ids_sql, int_rounded_sql
from cohortlab.times import naive_utc

IDENTITY_COLUMNS = {t: f"id_{t}" for t in EIT_IDENTITY_TYPE.values() if t}
_ID_CODES = {t: i + 1 for i, t in enumerate(IDENTITY_COLUMNS)}  # identity type -> key code
REPEAT_DAYS = 30


# --------------------------------------------------------------------------- table names
class RunTables:
    """The intermediate tables of one run: ``mig_<run id>_<what>``.

    ``intervals`` (activity grouped by distinct_id, device and interval between plan instants),
    ``links`` (distinct_id → person), ``persons``, ``activity`` (per person, projected copies
    included), ``scope`` (the persons behind a cohort's members), and per plan ``plan(i, what)``.
    """

    def __init__(self, run_id: str | None = None) -> None:
        self.run_id = run_id or uuid.uuid4().hex[:8]
        self.prefix = f"mig_{self.run_id}"
        self.intervals = self.name("intervals")
        self.links = self.name("links")
        self.persons = self.name("persons")
        self.activity = self.name("activity")
        self.scope = self.name("scope")
        self.created: list[str] = []

    def name(self, what: str) -> str:
        return f"{self.prefix}_{what}"

    def plan(self, index: int, what: str) -> str:
        return self.name(f"plan{index}_{what}")

    def drop(self, engine: Engine) -> None:
        """Drop every table of this run (debug step tables included)."""
        for name in reversed(self.created):
            engine.drop(name)
        self.created.clear()


def run_pipeline(engine: Engine, tables: RunTables, pipe: Pipeline, table: str, *, debug: bool = False,
                 temp: bool = True) -> dict[str, int]:
    """Materialise ``pipe`` as ``table`` and remember every table made (for :meth:`RunTables.drop`).
    Debug tables are permanent (to be read after the run), the others temporary."""
    counts = pipe.run(engine, table, debug=debug, temp=temp and not debug)
    tables.created += [f"{table}__{s.name}" for s in pipe.steps] if debug else []
    tables.created.append(table)
    return counts


# --------------------------------------------------------------------------- 2. per plan
def _key_sql(eit: str) -> tuple[str, str]:
    """(key code, row-is-identified expression) for one EIT, over ``a`` = activity rows
    (``idmask``: which identities the person has). Key codes: 0 = the MPID, 1.. = an identity
    type (``_ID_CODES``), -1 = the device, -2 = the distinct_id of a person without MPID. Under
    ``mparticle_id`` everyone is identified by the MPID (also before login); under an identity
    type a row is identified when it carried a ``$user_id`` and the person has that identity."""
    if eit == "mparticle_id":
        return ("0", "(a.idmask & 1) <> 0")
    code = _ID_CODES[EIT_IDENTITY_TYPE[eit]]
    return (str(code), f"a.has_uid AND (a.idmask & {2 ** code}) <> 0")


def _key_text_sql() -> str:
    """distinct_id text of a key code (``k.code``) of person ``p``."""
    ids = " ".join(f"WHEN {_ID_CODES[typ]} THEN p.{c}" for typ, c in IDENTITY_COLUMNS.items())
    return (f"CASE k.code WHEN -2 THEN p.anon_id WHEN -1 THEN p.device_key WHEN 0 THEN CAST(p.mpid AS VARCHAR) "
            f"{ids} END")


def remediation_writes(plan: MigrationPlan) -> tuple[datetime | None, datetime | None] | None:
    """When the plan's remediations start writing ``$mparticle_user_id``: ``(the first Rule's
    start, the first SDK code's start)``, None without a remediation. A Rule writes from every
    logged-in event from its start; SDK code only from those an app sends (they carry a
    ``$device_id``: :func:`cohortlab.identifiers.app_event_sql`, the identity-gaps page's
    ``sdk_code`` rule). SDK code starting at or after a Rule adds nothing (the Rule writes from
    those events already): it is dropped, so plans that write alike share a column."""
    rule = min((r.since for r in plan.remediation if r.kind == "rule"), default=None)
    sdk = min((r.since for r in plan.remediation if r.kind == "sdk"), default=None)
    if rule is not None and sdk is not None and sdk >= rule:
        sdk = None
    return None if rule is None and sdk is None else (rule, sdk)


def _writes_sql(writes: tuple[datetime | None, datetime | None]) -> str:
    """SQL condition on a ``plan_activity`` row (``has_uid``, ``app``, ``t_min``): a remediation
    of :func:`remediation_writes` writes from it, by the rule both pages follow
    (:func:`cohortlab.identifiers.remediation_event_sql`: logged-in events, an app's for SDK
    code; the rows are grouped by ``has_uid`` and ``app``, so this is exact)."""
    rule, sdk = writes
    parts = [f"({remediation_event_sql(kind, logged_in='has_uid', app='app')} AND t_min >= {sql_ts(since)})"
             for kind, since in (("rule", rule), ("sdk", sdk)) if since is not None]
    return f"({' OR '.join(parts)})"


def profile_shape(plan: MigrationPlan) -> tuple:
    """What a plan's Mixpanel profiles depend on besides the remediation start: its EIT timeline
    and its event identity cutoff. Plans of one shape share one profiles pass
    (:func:`profiles_pipeline` with ``remediations``)."""
    return (tuple((x.since, x.eit) for x in plan.eit_timeline), plan.event_identity_cutoff)


def plan_profiles_sql(profiles: str, rfix: str) -> str:
    """One plan's profiles from a shared profiles table (:func:`profiles_pipeline` with
    ``remediations``): ``rfix`` is the plan's ``rfix_<i>`` column (or a NULL timestamp when the
    plan has no remediation); ``fix_t``: when ``$mparticle_user_id`` first arrives (remediation or
    event rule), for an existing MPID."""
    return f"""
        SELECT pid, distinct_id, mpid, mpid_exists, mpid_key, first_t, last_t, events,
               {rfix} AS rfix_t, cfix_t, end_t,
               CASE WHEN mpid_exists THEN least({rfix}, cfix_t) END AS fix_t, fb_t
        FROM {profiles}"""


def profiles_pipeline(plan: MigrationPlan, t: RunTables, *, horizon: datetime | None = None,
                      observed_only: bool = False, window_end: datetime | None = None,
                      merge: str = "asof", scoped: bool = False,
                      remediations: list[tuple[datetime | None, datetime | None]] | None = None) -> Pipeline:
    """Steps from the activity table to one row per (person, Mixpanel profile key) under
    ``plan``: first/last activity, when ``$mparticle_user_id`` arrives (remediation / event rule).

    Simplified ID Merge: anonymous activity is shown under ``$device:<device>`` until the
    person is first identified, then (retroactively) under the first identified key
    (``merge="asof"``, day by day); ``merge="export"`` shows it under the first identified key
    from the start, as exports taken later do (validation). A remediation writes the profile
    property only from logged-in activity (events with a ``$user_id``, also under
    ``mparticle_id``) on an identified profile (profiles exist for identified users: "Create
    Profile Only If Logged In"); the event rule puts it on every event. ``scoped``: only the persons of
    the scope table.

    ``remediations``: one pass for every plan of ``plan``'s :func:`profile_shape`, which differ
    only by their remediations (:func:`remediation_writes`): the output has a column ``rfix_<i>``
    per one (when ``remediations[i]`` reaches the profile) and neither ``rfix_t`` nor
    ``fix_t``; :func:`plan_profiles_sql` gives one plan's profiles from it. Without it, the
    output is ``plan``'s profiles (``rfix_t``, ``fix_t``)."""
    tl = plan.eit_timeline
    rems = [remediation_writes(plan)] if remediations is None else list(remediations)
    rcols = [f"rfix_{i}" for i in range(len(rems))]
    cut = plan.event_identity_cutoff
    # activity rows never straddle a plan instant (prepare() cut them there), so comparing the
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
    if scoped:
        where.append(f"pid IN (SELECT pid FROM {t.scope})")
    dated = [(i, x) for i, x in enumerate(tl) if x.since is not None]
    period = ("CASE " + " ".join(f"WHEN t_min >= {sql_ts(x.since)} THEN {i}" for i, x in reversed(dated)) + " ELSE 0 END"
              if dated else "0")
    p = Pipeline()
    p.add("plan_activity", f"SELECT pid, anon, idmask, has_uid, app, t_min, t_max, n, {in_h} AS in_h, {period} AS ep "
          f"FROM {t.activity}" + (" WHERE " + " AND ".join(where) if where else ""))
    # a remediation writes for logged-in activity only: the first event with a $user_id at or
    # after its start, sent by an app for SDK code (_writes_sql)
    rfix = ", ".join((f"min(CASE WHEN {_writes_sql(r)} THEN t_min END)" if r is not None
                      else "CAST(NULL AS TIMESTAMP)") + f" AS {c}" for r, c in zip(rems, rcols))
    cfix = f"min(CASE WHEN t_min >= {sql_ts(cut)} THEN t_min END)" if cut is not None else "CAST(NULL AS TIMESTAMP)"

    def cols(prefix: str) -> str:  # the rfix columns, each followed by a comma
        return "".join(f"{prefix}{c}, " for c in rcols)

    p.add("activity_per_eit_period", f"""
        SELECT pid, ep, has_uid, in_h, any_value(anon) AS anon, any_value(idmask) AS idmask,
               min(t_min) AS first_t, max(t_max) AS last_t, sum(n) AS events,
               {rfix + ', ' if rfix else ''}{cfix} AS cfix_t
        FROM plan_activity GROUP BY pid, ep, has_uid, in_h""")
    keys = [_key_sql(x.eit) for x in tl]
    if len(keys) == 1:
        idcode, ident = keys[0]
    else:
        idcode = "CASE a.ep " + " ".join(f"WHEN {i} THEN {k}" for i, (k, _) in enumerate(keys)) + " END"
        ident = "CASE a.ep " + " ".join(f"WHEN {i} THEN {m}" for i, (_, m) in enumerate(keys)) + " END"
    # keyed_activity and activity_after_id_merge are tables of their own (three statements, not
    # one): as one statement its three aggregates and two joins failed at 10M users under the
    # report's share for the what-if (687 MB; docs/benchmarks.md#report-shares)
    p.add("keyed_activity", f"""
        SELECT a.pid, a.anon, CASE WHEN a.anon THEN FALSE ELSE coalesce({ident}, FALSE) END AS ident,
               {idcode} AS idcode, a.in_h, a.first_t, a.last_t, a.events, {cols('a.')}a.cfix_t
        FROM activity_per_eit_period a""", materialise=True)
    p.add("first_identified_key", """
        SELECT pid, arg_min(idcode, first_t) AS first_code, min(first_t) AS id_t
        FROM keyed_activity WHERE ident GROUP BY pid""")
    anon_row = "NOT k.anon AND NOT k.ident AND f.id_t IS NOT NULL"

    # the remediation reaches an identified profile: by its own identified rows, or by logged-in
    # rows that go to the first identified key after it (a $user_id the EIT cannot key); never a
    # $device: profile, nor activity merged retroactively into the identified key
    written = f"k.ident OR ({anon_row} AND k.first_t >= f.id_t)"

    def written_cols(prefix: str) -> str:  # the rfix columns where the remediation writes, each + comma
        return "".join(f"CASE WHEN {written} THEN {prefix}{c} END AS {c}, " for c in rcols)

    key_code = "CASE WHEN k.anon THEN -2 WHEN k.ident THEN k.idcode ELSE coalesce(f.first_code, -1) END AS code"
    if merge == "export":
        # the exports show anonymous activity under the first identified key, whenever it came
        p.add("activity_after_id_merge", f"""
            SELECT k.pid, k.ident, {key_code},
                   k.first_t, k.last_t, k.events, {written_cols('k.')}k.cfix_t, CAST(NULL AS TIMESTAMP) AS end_t
            FROM keyed_activity k LEFT JOIN first_identified_key f ON f.pid = k.pid
            WHERE k.in_h""", materialise=True)
    else:
        # day by day: anonymous activity is a $device: member until the person is first
        # identified (id_t), then it belongs to the identified key (from id_t on)
        p.add("activity_after_id_merge", f"""
            SELECT k.pid, k.ident, {key_code},
                   CASE WHEN {anon_row} THEN greatest(k.first_t, f.id_t) ELSE k.first_t END AS first_t,
                   k.last_t, k.events, {written_cols('k.')}
                   CASE WHEN {anon_row} AND k.cfix_t IS NOT NULL THEN greatest(k.cfix_t, f.id_t)
                        ELSE k.cfix_t END AS cfix_t,
                   CAST(NULL AS TIMESTAMP) AS end_t
            FROM keyed_activity k LEFT JOIN first_identified_key f ON f.pid = k.pid
            WHERE k.in_h
            UNION ALL
            SELECT k.pid, FALSE AS ident, -1 AS code, k.first_t, least(k.last_t, f.id_t) AS last_t, k.events,
                   {"".join(f"CAST(NULL AS TIMESTAMP) AS {c}, " for c in rcols)}
                   CASE WHEN k.cfix_t < f.id_t THEN k.cfix_t END AS cfix_t, f.id_t AS end_t
            FROM keyed_activity k JOIN first_identified_key f ON f.pid = k.pid
            WHERE k.in_h AND NOT k.anon AND NOT k.ident AND k.first_t < f.id_t""", materialise=True)
    # one Mixpanel profile per (person, distinct_id): two EIT periods that give the same text
    # (a customer id that is also the email, or the person's own MPID) give one profile. Only
    # the $device: profile of activity before the first identification ends (at id_t)
    p.add("activity_per_profile", f"""
        SELECT k.pid, {_key_text_sql()} AS distinct_id, any_value(p.mpid) AS mpid,
               any_value(p.mpid_exists) AS mpid_exists, min(k.first_t) AS first_t, max(k.last_t) AS last_t,
               CAST(sum(k.events) AS BIGINT) AS events,
               {"".join(f"min(k.{c}) AS {c}, " for c in rcols)}
               min(k.cfix_t) AS cfix_t, CASE WHEN bool_and(k.end_t IS NOT NULL) THEN max(k.end_t) END AS end_t
        FROM activity_after_id_merge k JOIN {t.persons} p ON p.pid = k.pid
        GROUP BY ALL""")
    # keyed by its MPID: the key is the MPID's text (under mparticle_id, or an identity that
    # happens to be that text); the fallback matches it from its first event. So it does a key
    # that is the MPID of another existing profile (a numeric customer id equal to someone
    # else's MPID), as the resolution would: to the wrong person (docs/migration.md#model). Only
    # the keys that are not the person's own MPID are looked up, in one pass (no second reader)
    own_mpid = "a.distinct_id = CAST(a.mpid AS VARCHAR)"
    p.add("mixpanel_profiles", f"""
        SELECT a.pid, a.distinct_id, a.mpid, a.mpid_exists, coalesce({own_mpid}, FALSE) AS mpid_key,
               a.first_t, a.last_t, a.events, {cols('a.')}a.cfix_t, a.end_t,
               CASE WHEN (a.mpid_exists AND {own_mpid}) OR other.mpid IS NOT NULL THEN a.first_t END AS fb_t
        FROM activity_per_profile a
        LEFT JOIN mpa_profiles other
          ON other.mpid = CASE WHEN NOT coalesce({own_mpid}, FALSE) THEN {mpid_sql('a.distinct_id')} END""")
    if remediations is None:
        p.add("plan_profiles", plan_profiles_sql("mixpanel_profiles", rcols[0]))
    return p


def fix_sql(rfix: str) -> str:
    """A plan's ``fix_t`` over a profiles table, from its remediation column ``rfix`` (see
    :func:`plan_profiles_sql`)."""
    return f"CASE WHEN mpid_exists THEN least({rfix}, cfix_t) END"


def milestones_pipeline(profiles: str, fixes: list[str], eits: int) -> Pipeline:
    """One row per person of ``profiles``: when it was first seen (``p_first``), when its second
    current Mixpanel profile appeared (``p_second``: a split), when it first became matchable by
    the fallback (``p_fb``) and, for each expression of ``fixes`` (a plan's ``fix_t``), when
    ``$mparticle_user_id`` first reached one of its profiles (``p_fix_<i>``). Shared by the plans
    of one profiles table.

    ``p_second`` is the second smallest ``first_t`` among the person's profiles that never end
    (``end_t`` NULL; the ``$device:`` profile of activity before the first identification ends).
    A person has at most one such profile per distinct EIT of the timeline (``eits``), or one
    when never identified: with two EITs it is the later of the two, else it is found in a
    second pass."""
    fix_cols = "".join(f", min({f}) AS p_fix_{i}" for i, f in enumerate(fixes))
    p = Pipeline()
    if eits <= 2:
        p.add("person_milestones", f"""
            SELECT pid, min(first_t) AS p_first,
                   CASE WHEN count(*) FILTER (WHERE end_t IS NULL) >= 2
                        THEN max(first_t) FILTER (WHERE end_t IS NULL) END AS p_second,
                   min(fb_t) AS p_fb{fix_cols}
            FROM {profiles} GROUP BY pid""")
        return p
    p.add("first_current_profile", f"""
        SELECT pid, min(first_t) AS m1 FROM {profiles} WHERE end_t IS NULL GROUP BY pid""")
    p.add("second_current_profile", f"""
        SELECT k.pid, CASE WHEN count(*) FILTER (WHERE k.first_t = c.m1) >= 2 THEN min(c.m1)
                           ELSE min(CASE WHEN k.first_t > c.m1 THEN k.first_t END) END AS p_second
        FROM {profiles} k JOIN first_current_profile c ON c.pid = k.pid
        WHERE k.end_t IS NULL GROUP BY k.pid""")
    p.add("person_firsts", f"""
        SELECT pid, min(first_t) AS p_first, min(fb_t) AS p_fb{fix_cols}
        FROM {profiles} GROUP BY pid""")
    p.add("person_milestones", f"""
        SELECT f.pid, f.p_first, s.p_second, f.p_fb{"".join(f", f.p_fix_{i}" for i in range(len(fixes)))}
        FROM person_firsts f LEFT JOIN second_current_profile s ON s.pid = f.pid""")
    return p


def daily_pipeline(profiles: str, milestones: str, start: date, end: date, fb_ok: list[bool], eits: list[str], *,
                   fix: str = "fix_t", p_fix: str = "p_fix_0") -> Pipeline:
    """Day grid × histogram of (first seen day, matched-from day, fallback day) of one plan's
    ``profiles`` (``fix``: its ``fix_t``) and of its persons (``milestones``, from
    :func:`milestones_pipeline`; ``p_fix``: the plan's column)."""
    n = (end - start).days + 1
    s = sql_ts(start)
    e = sql_ts(end + timedelta(days=1))

    def idx(x: str) -> str:
        return (f"CASE WHEN {x} IS NULL THEN {n} WHEN {x} < {s} THEN -1 WHEN {x} >= {e} THEN {n} "
                f"ELSE date_diff('day', CAST({s} AS DATE), CAST({x} AS DATE)) END")

    rows = ", ".join(
        f"({i}, DATE '{start + timedelta(days=i)}', {sql_ts(start + timedelta(days=i + 1))}, {sql_str(eits[i])}, "
        f"{sql_bool(fb_ok[i])})" for i in range(n))
    p = Pipeline()
    p.add("days", f"SELECT * FROM (VALUES {rows}) AS v(i, day, as_of, eit, fb_ok)")
    p.add("profiles_by_day_index", f"""
        SELECT {idx('first_t')} AS e, {idx(fix)} AS f, {idx('fb_t')} AS b, {idx('end_t')} AS x, count(*) AS n
        FROM {profiles} GROUP BY 1, 2, 3, 4""")
    p.add("persons_by_day_index", f"""
        SELECT {idx('p_first')} AS a, {idx('p_second')} AS s, {idx(p_fix)} AS f, {idx('p_fb')} AS b, count(*) AS n
        FROM {milestones} GROUP BY 1, 2, 3, 4""")
    p.add("profiles_per_day", """
        SELECT d.i, CAST(sum(CASE WHEN h.e <= d.i AND d.i < h.x THEN h.n ELSE 0 END) AS BIGINT) AS members,
               CAST(sum(CASE WHEN (h.f <= d.i OR (h.b <= d.i AND d.fb_ok)) AND d.i < h.x THEN h.n ELSE 0 END)
                    AS BIGINT) AS matched
        FROM days d CROSS JOIN profiles_by_day_index h GROUP BY d.i""")
    p.add("persons_per_day", """
        SELECT d.i, CAST(sum(CASE WHEN h.a <= d.i THEN h.n ELSE 0 END) AS BIGINT) AS people,
               CAST(sum(CASE WHEN h.f <= d.i OR (h.b <= d.i AND d.fb_ok) THEN h.n ELSE 0 END) AS BIGINT) AS matched_people,
               CAST(sum(CASE WHEN h.s <= d.i THEN h.n ELSE 0 END) AS BIGINT) AS split_profiles
        FROM days d CROSS JOIN persons_by_day_index h GROUP BY d.i""")
    p.add("daily", """
        SELECT d.i AS day_index, d.day, d.as_of, d.eit,
               coalesce(k.members, 0) AS members, coalesce(k.matched, 0) AS matched,
               coalesce(q.people, 0) AS people, coalesce(q.matched_people, 0) AS matched_people,
               coalesce(q.split_profiles, 0) AS split_profiles
        FROM days d LEFT JOIN profiles_per_day k ON k.i = d.i LEFT JOIN persons_per_day q ON q.i = d.i""")
    return p


def status_pipeline(profiles: str, plan: MigrationPlan, settings: SyncSettings, as_of: datetime,
                    *, inclusive: bool = False, rfix: str = "k.rfix_t", suffix: str = "",
                    lookups: str | None = None, reasons: bool = True) -> Pipeline:
    """Per (person, profile) status at ``as_of`` (the resolution's vocabulary) and its category.
    ``rfix``: the plan's remediation column of ``profiles`` as ``k.<column>`` (see
    :func:`plan_profiles_sql`); ``suffix``: added to every step name (several plans' steps in
    one statement); ``lookups``: added to the names of the gap-reason lookups instead (they
    read only ``profiles``: plans of one shape share them in one statement, when their steps
    of the same name are added once); ``reasons``: without, ``gap_reason`` is NULL and its
    lookups are not made (a summary of the categories reads none)."""
    lk = suffix if lookups is None else lookups
    fb_ok = settings.fallback_applies(plan.eit_at(as_of))
    a = sql_ts(as_of)
    lt = "<=" if inclusive else "<"
    fix_instants = plan.fix_instants(as_of)
    first_fix = min(fix_instants) if fix_instants else None
    if first_fix is not None and naive_utc(first_fix) >= naive_utc(as_of):
        # the first fix has not come yet at as_of (a window that ends before it): nobody is
        # "never fixable" yet, only unfixed (every unmatched person in mParticle was counted so)
        first_fix = None
    p = Pipeline()
    p.add(f"profiles_at{suffix}", f"""
        SELECT k.pid, k.distinct_id, k.mpid, k.mpid_exists, k.mpid_key, k.first_t, k.last_t, k.events,
          {rfix} AS rfix_t, k.cfix_t, k.end_t, CASE WHEN k.mpid_exists THEN least({rfix}, k.cfix_t) END AS fix_t,
          k.fb_t,
          k.first_t {lt} {a} AS exists_at,
          CASE WHEN k.mpid_exists AND {rfix} {lt} {a} THEN 'mparticle_user_id'
               WHEN k.mpid_exists AND k.cfix_t {lt} {a} THEN 'event_property'
               WHEN {sql_bool(fb_ok)} THEN 'distinct_id'
               ELSE 'none' END AS matching_source,
          -- the $mparticle_user_id a profile holds when it names no loaded profile (a deleted one,
          -- or int(float(mpid)) on the events): sent instead of the distinct_id, it matches nothing
          CASE WHEN k.mpid IS NOT NULL AND NOT coalesce(k.mpid_exists, FALSE) THEN
               CASE WHEN {rfix} {lt} {a} THEN 'mparticle_user_id' WHEN k.cfix_t {lt} {a} THEN 'event_property' END
               END AS property_source
        FROM {profiles} k
        WHERE k.first_t {lt} {a} AND (k.end_t IS NULL OR k.end_t {'>' if inclusive else '>='} {a})""")
    # an unmatched profile holding a $mparticle_user_id of no loaded profile is sent with it (its
    # status is the same either way: the daily series counts it so)
    p.add(f"match_status{suffix}", f"""
        SELECT m.*, CASE WHEN status = 'unmatched' AND property_source IS NOT NULL THEN property_source
                         ELSE matching_source END AS identifier_source
        FROM (
          SELECT p.*,
            CASE WHEN matching_source IN ('mparticle_user_id', 'event_property') THEN 'matched'
                 WHEN matching_source = 'distinct_id' AND fb_t IS NOT NULL THEN 'matched'
                 ELSE 'unmatched' END AS status
          FROM profiles_at{suffix} p
        ) m""")
    # the person's figures over the plain profiles, read once: DuckDB turns these windows into
    # one aggregate and a join (over the joins of the gap reasons it sorts: 1M profiles, 0.1 s
    # against 1.2 s per plan)
    p.add(f"person_facts{suffix}", f"""
        SELECT s.*,
          bool_or(status = 'matched') OVER (PARTITION BY pid) AS person_matched,
          max(last_t) OVER (PARTITION BY pid) AS person_last_t,
          count(*) OVER (PARTITION BY pid) AS person_profiles
        FROM match_status{suffix} s""")
    # the gap reasons of the resolution (docs/rules.md#gap-reasons), with its own lookups: the
    # identifier of an unmatched profile is a $mparticle_user_id of no loaded profile (a
    # float-rounded MPID, else not found), its distinct_id (the fallback) or nothing; a valid
    # int64 distinct_id that names no profile is a float-rounded MPID, else a user identity, else
    # not found. The lookups are functions of the key: they read the keys of the plan's profiles
    # (a stored table), not the steps above, which DuckDB would then have to keep (a second
    # reader), spilling under a report's memory share; the few keys found are looked up with IN
    # (a hash table of the keys, never of the profiles)
    if not reasons:
        p.add(f"gap_reasons{suffix}", f"SELECT s.*, CAST(NULL AS VARCHAR) AS gap_reason FROM person_facts{suffix} s")
    else:
        p.add(f"unmatched_int64_keys{lk}", f"""
            SELECT DISTINCT k.distinct_id AS identifier, {mpid_sql('k.distinct_id')} AS candidate
            FROM {profiles} k LEFT JOIN mpa_profiles mp ON mp.mpid = {mpid_sql('k.distinct_id')}
            WHERE NOT coalesce(k.mpid_key AND k.mpid_exists, FALSE)  -- keyed by its own, existing MPID: cheap first
              AND {is_valid_mpid_sql('k.distinct_id')} AND mp.mpid IS NULL""")
        p.add(f"int_rounded{lk}", int_rounded_sql(f"SELECT candidate FROM unmatched_int64_keys{lk}"))
        p.add(f"identity_ids{lk}", identity_ids_sql(f"SELECT identifier FROM unmatched_int64_keys{lk}"))
        # the MPIDs of no loaded profile a $mparticle_user_id may hold: int(float(mpid)) of one?
        p.add(f"property_rounded{lk}", int_rounded_sql(f"""
            SELECT DISTINCT k.mpid AS candidate FROM {profiles} k
            WHERE k.mpid IS NOT NULL AND NOT coalesce(k.mpid_exists, FALSE)"""))
        p.add(f"gap_reasons{suffix}", f"""
            SELECT s.*,
              CASE WHEN status = 'matched' THEN NULL
                   WHEN identifier_source IN ('mparticle_user_id', 'event_property') THEN
                        CASE WHEN s.mpid IN (SELECT candidate FROM property_rounded{lk}) THEN 'mpid_precision_loss'
                             ELSE 'mpid_not_found' END
                   WHEN identifier_source = 'none' THEN 'fallback_disabled'
                   WHEN NOT {is_valid_mpid_sql('s.distinct_id')} THEN 'distinct_id_not_mpid'
                   WHEN s.distinct_id IN (SELECT u.identifier FROM unmatched_int64_keys{lk} u
                                          JOIN int_rounded{lk} ir ON ir.candidate = u.candidate)
                        THEN 'mpid_precision_loss'
                   WHEN s.distinct_id IN (SELECT identifier FROM identity_ids{lk}) THEN 'distinct_id_is_identity'
                   ELSE 'mpid_not_found' END AS gap_reason
            FROM person_facts{suffix} s""")
    p.add(f"categories{suffix}", f"""
        SELECT g.*,
          CASE WHEN status = 'matched' THEN 'matched'
               WHEN mpid IS NULL THEN 'not_in_mparticle'
               WHEN NOT mpid_exists THEN 'mparticle_profile_deleted'
               WHEN person_matched THEN 'stranded_split'
               WHEN {('person_last_t < ' + sql_ts(first_fix)) if first_fix else 'FALSE'} THEN 'never_fixable'
               ELSE 'unfixed' END AS category
        FROM gap_reasons{suffix} g WHERE exists_at""")
    return p


__all__ = ["RunTables", "run_pipeline", "profiles_pipeline", "plan_profiles_sql", "profile_shape", "remediation_writes",
           "fix_sql", "milestones_pipeline", "daily_pipeline", "status_pipeline", "IDENTITY_COLUMNS", "REPEAT_DAYS"]
