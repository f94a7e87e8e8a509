"""Every remedy valued by its own simulation (docs/simulate.md#remedies).

:func:`value_remedies` runs the sync simulation (:func:`cohortlab.simulation.simulate.simulate`)
once as configured and once per remedy, with the remedy applied from ``since`` (default: the
event identity cutoff when it is at or before the as-of time, else the first run): the members' own activity between ``since`` and ``at`` stands in for "sends data after
the remedy starts". Each row is the audience (profiles with ``<attribute> = true``) at ``at``
without and with the remedy (``gained`` is the difference), and the cohort's own people in it:
``people_before`` / ``people_after`` count the MPIDs of the members' users (below) whose
attribute is ``true``, and ``recovered`` is their difference. ``gained`` counts every profile
that becomes ``true``; ``recovered`` only the members' own: a re-export removes nothing, so a
member who left since the previous run stays ``true`` and is gained, not recovered.

* ``rule`` — an mParticle Rule on the Mixpanel output writes ``$mparticle_user_id`` = the
  user's MPID on the member's Mixpanel profile at the member's first logged-in event (one with a
  ``$user_id``) at or after ``since``, never on a ``$device:`` profile: the rule of the migration
  model's remediation too (:func:`cohortlab.identifiers.remediation_event_sql`,
  docs/rules.md#remediations). The Mixpanel profile history
  gains that version; what reaches mParticle then follows send-time resolution: the fix reaches
  mParticle only for members sent after it (an add, a full refresh).
* ``rule_reexport`` — the same Rule, then a re-export at the last run at or before ``at``: every
  member is re-sent with the fixed identifier (the remedy "re-export the cohort after fixing
  identifiers").
* ``sdk_code`` / ``sdk_reexport`` — the same write made by app code, so only from logged-in events
  the app sends: events that carry a ``$device_id`` (Mixpanel's client SDKs set it; server-side
  events usually do not). Assumption: a user whose events after ``since`` carry a device id runs the
  updated app from that event on.
* ``switch_eit`` — the Mixpanel event output's External Identity Type switched to
  ``mparticle_id`` at ``since``: the user's events from then on go to a new Mixpanel profile whose
  distinct_id is the MPID, created at the first event at or after ``since``. Assumption: the new
  profile is in the cohort whenever the old one is (same behaviour), from its creation; the old
  profile stays in the cohort (a *split profile*, counted in the note). The new profile is matched
  by the ``$distinct_id`` fallback (the EIT timeline gains the switch, for ``fallback="strict"``).
* ``reexport`` — a re-export (full sync) at the last run at or before ``at``, nothing fixed
  (:func:`cohortlab.simulation.simulate.reexport_value`).
* ``reconnect`` — the last pause of the settings that started at or before ``at`` ends with a
  reconnect (a new export: full sync) instead of as configured; a pause still running at ``at``
  ends at the last run at or before ``at``. Without a pause the row says so (gained 0).

The user's MPID is the MPID a matched member resolves to, else its distinct_id when that is an
existing MPID (a junk ``$mparticle_user_id`` hides it), else the one the resolution's recovery finds
(``recoverable_mpid``, docs/rules.md#recovery-order) when exactly one profile holds that identity.
Members not in mParticle, or ambiguous, cannot be fixed by any remedy.

Rule, SDK code and the EIT switch change the inputs of the simulation: for their run the
canonical table (``mp_profile_history``, or the cohort's ``mp_cohort_members`` /
``mp_webhook_members``) is shadowed by a temporary table of the same name holding the remedied
rows, dropped right after (DuckDB engine). The remedied simulations bypass the ``Lab``'s cache.

Rule, SDK code and the EIT switch simulate only the members the remedy may make write elsewhere
and the members sharing a profile with them, on those members' rows (:class:`SubsetWorld`, in
:mod:`cohortlab.simulation.subset_world`; exact, docs/simulate.md#remedies-subset); the re-export
at the last run is derived from the baseline (:mod:`cohortlab.simulation.last_run_reexport`).
``value_remedies(..., _full=True)`` simulates every member for every remedy instead (the
reference the tests compare with).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

import pandas as pd

from cohortlab.engines.base import Engine
from cohortlab.identifiers import (LoggedIn, app_event_sql, logged_in_rule, mpid_sql,
                                   remediation_event_sql, remediation_profile_sql)
from cohortlab.pipeline import sql_ts
from cohortlab.settings import EitPeriod, Pause, SettingsError, SyncSettings
from cohortlab.simulation.last_run_reexport import DerivedReexport, derive_last_run_reexport
from cohortlab.simulation.membership import CohortRef, Source, find_cohort, webhook_pages_sql
from cohortlab.simulation.resolution import (
    ProfileHistory,
    profile_history_kind,
    version_order_sql,
    version_read_sql,
)
from cohortlab.simulation.simulate import SimulationResult, simulate
from cohortlab.simulation.subset_world import (DERIVE_TABLES, SubsetWorld, Valued, people_true_sql, shadowed,
                                               share_world, subset_ready, temp_name)
from cohortlab.simulation.sync import RunGrid
from cohortlab.times import format_time, parse_time, to_utc

REMEDY_COLUMNS = ["remedy", "key", "audience_before", "audience_after", "gained", "people_before", "people_after",
                  "recovered", "applies", "note"]
REMEDIES = {
    "rule": "mParticle Rule: copy the MPID into $mparticle_user_id (next sends only)",
    "rule_reexport": "mParticle Rule, then re-export the cohort",
    "sdk_code": "SDK code: set $mparticle_user_id in the app (next sends only)",
    "sdk_reexport": "SDK code, then re-export the cohort",
    "switch_eit": "Switch External Identity Type to mParticle ID",
    "reexport": "Re-export the cohort (no identifier fixed)",
    "reconnect": "Reconnect the export after the pause",
}
SimulateFn = Callable[[str, Any, SyncSettings, str], SimulationResult]


@dataclass
class RemedyContext:
    """What every remedy needs: the baseline simulation, ``since``, the re-export time and the
    table of users' MPIDs (``persons``: distinct_id, mpid of the members at ``at``)."""

    engine: Engine
    ref: CohortRef
    settings: SyncSettings
    base: SimulationResult
    since: datetime
    reexport_time: datetime | None
    persons: str
    simulate_fn: SimulateFn
    history: ProfileHistory = "none"
    full: bool = False  # every remedy by a simulation of every member (the reference the tests compare with)
    reexported: Any = None  # the baseline with the re-export (fast path; a SimulationResult or DerivedReexport)
    world: "SubsetWorld | None" = None  # the subset simulations (fast path)
    logged_in: LoggedIn = LoggedIn(True)  # how the data tells a logged-in event (identifiers.logged_in_rule)
    _people: dict[str, int] = field(default_factory=dict, repr=False)  # by attribute_state table

    @property
    def at(self) -> datetime:
        return self.base.at

    @property
    def reexport_paused(self) -> bool:
        """The re-export time falls in a pause that lasts to ``at``: no successful run sends it."""
        if self.reexport_time is None:
            return False
        grid = RunGrid(to_utc(self.base.t0), to_utc(self.at), self.reexport_settings)
        return grid.first_sent_at_or_after(self.reexport_time) is None

    @property
    def no_reexport_reason(self) -> str | None:
        """Why no re-export happens (None when one does): the words of the notes and of the
        identity-gaps summary, whose "then re-export" remedies are then the next sends only."""
        if self.reexport_time is None:
            return "no run at or before the as-of time to re-export at"
        if self.reexport_paused:
            return (f"the last run ({format_time(self.reexport_time)}) fails, the export being paused until after "
                    "the as-of time")
        return None

    def reexport_words(self) -> str:
        """What the re-export does, for a note."""
        why = self.no_reexport_reason
        if why is None:
            return f"re-export at {format_time(self.reexport_time)} re-sends every member"
        return f"no re-export: {why}"

    @property
    def reexport_settings(self) -> SyncSettings | None:
        if self.reexport_time is None:
            return None
        return self.settings.replace(reexport_at=[*self.settings.reexport_at, self.reexport_time])

    def people(self, sim: Any) -> int:
        """The members' users in the audience of ``sim`` (a simulation's ``attribute_state``),
        counted once per simulation (every row reads the baseline's)."""
        state = sim.table_names["attribute_state"]
        if state not in self._people:
            self._people[state] = int(self.engine.query_rows(people_true_sql(state, self.persons))[0][0])
        return self._people[state]

    def valued(self, sim: Any) -> Valued:
        """:class:`Valued` of a whole simulation (a SimulationResult or a derived re-export)."""
        return Valued(int(sim.audience), self.people(sim))

    def row(self, key: str, after: Valued | None, note: str, *, applies: bool = True) -> dict[str, Any]:
        """``after`` None: nothing changes (the figures of the simulation as configured).
        ``applies=False``: the settings give the remedy nothing to act on (no pause to reconnect
        after, no run to re-export at); the note says why."""
        before = self.valued(self.base)
        after = before if after is None else after
        return {"remedy": REMEDIES[key], "key": key, "audience_before": before.audience,
                "audience_after": after.audience, "gained": after.audience - before.audience,
                "people_before": before.people, "people_after": after.people,
                "recovered": after.people - before.people, "applies": applies, "note": note}


def default_since(settings: SyncSettings, t0: datetime, at: datetime) -> datetime:
    """The event identity cutoff when it is at or before ``at`` (the members active since then are
    the ones a remedy reaches: the activity the cutoff stands for), else the first run."""
    cut = settings.event_identity_cutoff
    if cut is not None and cut <= to_utc(at):
        return cut
    return to_utc(t0)


def last_run_time(settings: SyncSettings, t0: datetime, at: datetime) -> datetime | None:
    """The time of the last run at or before ``at`` (None: no run yet)."""
    grid = RunGrid(to_utc(t0), to_utc(at), settings)
    return None if grid.last < 0 else to_utc(t0) + grid.last * settings.cadence


# ----------------------------------------------------------------------------- the user's MPID
def persons_sql(base: SimulationResult) -> str:
    """``distinct_id, mpid``: per member at ``at`` the MPID of the mParticle user behind it, when
    known without ambiguity (module docstring): a matched member's MPID; else its distinct_id when
    that is itself an existing MPID; else the profile its recovery leads to (``recoverable_mpid``,
    docs/rules.md#recovery-order: the resolution's own answer, so the two cannot differ). Reads
    the result table ``resolution`` only."""
    res = base.tables["resolution"].table_name
    return f"""
        SELECT r.distinct_id,
               CAST(CASE WHEN r.status = 'matched' THEN r.mpid
                         WHEN own.mpid IS NOT NULL THEN own.mpid
                         ELSE r.recoverable_mpid END AS BIGINT) AS mpid
        FROM {res} r
        LEFT JOIN mpa_profiles own ON r.status <> 'matched' AND own.mpid = {mpid_sql('r.distinct_id')}
    """


# ----------------------------------------------------------------------------- a whole simulation (_full)
def _run_once(ctx: RemedyContext, settings: SyncSettings) -> Valued:
    """The audience at ``at`` of a simulation on the (possibly shadowed) inputs, and the people in
    it; its tables are dropped at once (never cached: the inputs differ from the stored ones)."""
    r = simulate(ctx.engine, ctx.ref, ctx.at, settings)
    try:
        return ctx.valued(r)
    finally:
        r.drop()


# ----------------------------------------------------------------------------- Rule / SDK code
def _remedy_event_sql(ctx: RemedyContext, kind: str) -> str:
    """SQL condition on ``mp_events e`` (joined by ``ctx.logged_in.join('e.distinct_id')``): a
    Rule (``kind="rule"``) or SDK code (``"sdk"``) writes from it
    (:func:`cohortlab.identifiers.remediation_event_sql`, the what-if's rule too; logged in as the
    data tells it, :func:`cohortlab.identifiers.logged_in_rule`)."""
    logged_in = ctx.logged_in.sql(user="e.user_id", distinct="e.distinct_id", device="e.device_id")
    return remediation_event_sql(kind, logged_in=logged_in, app=app_event_sql("e.device_id"))


def _writes_sql(ctx: RemedyContext, app_only: bool) -> str:
    """``distinct_id, mpid, write_at``: the members a Rule (or SDK code) reaches and when: the
    first logged-in event at or after ``since`` (and at or before ``at``) of a member whose MPID
    is known and who is not a ``$device:`` profile; with ``app_only`` the first such event an app
    sent (:func:`cohortlab.identifiers.remediation_event_sql`)."""
    return f"""
        SELECT p.distinct_id, p.mpid, min(e.time) AS write_at
        FROM {ctx.persons} p JOIN mp_events e ON e.distinct_id = p.distinct_id{ctx.logged_in.join('e.distinct_id')}
        WHERE p.mpid IS NOT NULL AND {remediation_profile_sql('p.distinct_id')}
          AND e.time >= {sql_ts(ctx.since)} AND e.time <= {sql_ts(ctx.at)}
          AND {_remedy_event_sql(ctx, 'sdk' if app_only else 'rule')}
        GROUP BY p.distinct_id, p.mpid
    """


def _history_with_writes_sql(kind: ProfileHistory, writes: str, tables: dict[str, str] | None = None) -> str:
    """The Mixpanel profile history with the remedy's writes (``writes``: distinct_id, mpid,
    write_at): from ``write_at`` on the profile holds ``$mparticle_user_id`` = the MPID.

    Rows: every stored version (its time kept, as the simulation reads it: its own as-of time,
    or its load's, or NULL for a single version without one: known at every time), the property
    replaced on versions from ``write_at`` on; a NULL-time copy of a written profile's first
    version when that one has no as-of time of its own (what stands in before any version is
    known: :func:`~cohortlab.simulation.resolution.version_read_sql`); a blank NULL-time row for a
    written member without a profile; and the written version at ``write_at`` (the version in
    force then, with the MPID; blank when none is read then).
    ``kind``: how the stored history is known (:func:`profile_history_kind`); ``tables``: where
    to read ``mp_profile_history`` / ``mp_profiles`` ({name: table}; the subset world's).

    With at least one write the result is a ``multi`` history (a written member has its stored
    or blank row and the written version): :func:`written_history_kind`."""
    history = (tables or {}).get("mp_profile_history", "mp_profile_history")
    profiles = (tables or {}).get("mp_profiles", "mp_profiles")
    if kind == "none":
        stored = f"""SELECT distinct_id, mparticle_user_id, json_type(properties, '$."$mparticle_user_id"') AS mpuid_type,
                           email, last_seen, CAST(NULL AS TIMESTAMP) AS valid_from, CAST(NULL AS BIGINT) AS load_id,
                           FALSE AS timed
                    FROM {profiles}"""
    elif kind == "single":  # one version per profile, known at every time unless it has its own as-of time
        stored = f"""SELECT distinct_id, mparticle_user_id, mparticle_user_id_type AS mpuid_type, email, last_seen,
                           as_of AS valid_from, CAST(NULL AS BIGINT) AS load_id, as_of IS NOT NULL AS timed
                    FROM {history}"""
    else:
        stored = f"""SELECT h.distinct_id, h.mparticle_user_id, h.mparticle_user_id_type AS mpuid_type, h.email,
                           h.last_seen, coalesce(h.as_of, l.loaded_at) AS valid_from, h.load_id,
                           h.as_of IS NOT NULL AS timed
                    FROM {history} h LEFT JOIN loads l ON l.load_id = h.load_id"""
    return f"""
        WITH stored AS ({stored}),
        w AS (SELECT * FROM {writes}),
        firsts AS (
            -- the first version: the one the simulation's order puts first before any time
            SELECT s.*, row_number() OVER (
                       PARTITION BY s.distinct_id
                       ORDER BY {version_order_sql("s.valid_from", "CAST('-infinity' AS TIMESTAMP)",
                                                   "coalesce(s.load_id, 0)")}) AS pick
            FROM stored s JOIN w ON w.distinct_id = s.distinct_id
        ),
        in_force AS (
            SELECT s.distinct_id, s.email, s.last_seen,
                   {version_read_sql("s.valid_from", "s.timed", "w.write_at")} AS is_read,
                   row_number() OVER (PARTITION BY s.distinct_id
                                      ORDER BY {version_order_sql("s.valid_from", "w.write_at", "s.load_id")}) AS pick
            FROM stored s JOIN w ON w.distinct_id = s.distinct_id
        )
        SELECT s.distinct_id,
               CASE WHEN w.distinct_id IS NOT NULL AND s.valid_from >= w.write_at
                    THEN CAST(w.mpid AS VARCHAR) ELSE s.mparticle_user_id END AS mparticle_user_id,
               CASE WHEN w.distinct_id IS NOT NULL AND s.valid_from >= w.write_at
                    THEN 'VARCHAR' ELSE s.mpuid_type END AS mparticle_user_id_type,
               -- a version counted from its load time stays so (its load_id gives the time back)
               s.email, s.last_seen, CASE WHEN s.timed OR s.load_id IS NULL THEN s.valid_from END AS as_of, s.load_id
        FROM stored s LEFT JOIN w ON w.distinct_id = s.distinct_id
        UNION ALL
        SELECT distinct_id, mparticle_user_id, mpuid_type, email, last_seen, CAST(NULL AS TIMESTAMP), CAST(NULL AS BIGINT)
        FROM firsts WHERE pick = 1 AND valid_from IS NOT NULL AND NOT timed
        UNION ALL
        SELECT w.distinct_id, CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR),
               CAST(NULL AS TIMESTAMP), CAST(NULL AS TIMESTAMP), CAST(NULL AS BIGINT)
        FROM w WHERE w.distinct_id NOT IN (SELECT distinct_id FROM stored)
        UNION ALL
        SELECT w.distinct_id, CAST(w.mpid AS VARCHAR), 'VARCHAR', f.email, f.last_seen, w.write_at, CAST(NULL AS BIGINT)
        FROM w LEFT JOIN in_force f ON f.distinct_id = w.distinct_id AND f.pick = 1 AND f.is_read
    """


def _written_changed_sql(ctx: RemedyContext, writes: str) -> str:
    """The written members the write may make write elsewhere (``distinct_id``): those with a
    request at or after ``write_at`` not matched to the written MPID in a baseline (the
    simulation as configured, and with the re-export). From ``write_at`` on a written member's
    identifier is its MPID, matched when that profile exists; before, its profile is the stored
    one. A member already matched to that MPID at every request from ``write_at`` on has the
    same target at every request with the write as without: it writes where it wrote."""
    bases = [b for b in (ctx.base, ctx.reexported) if b is not None]
    return " UNION ".join(
        f"SELECT w.distinct_id FROM {writes} w JOIN {b.table_names['resolved']} r ON r.distinct_id = w.distinct_id "
        "WHERE r.resolve_time >= w.write_at AND (r.status <> 'matched' OR r.mpid IS DISTINCT FROM w.mpid)"
        for b in bases)


def written_history_kind(kind: ProfileHistory, writes: int) -> ProfileHistory:
    """What :func:`profile_history_kind` says of the history with ``writes`` written members:
    unchanged without writes, else ``multi`` (module docstring of _history_with_writes_sql)."""
    return kind if writes == 0 else "multi"


def _unmatched_written(ctx: RemedyContext, writes: str) -> int:
    res = ctx.base.tables["resolution"].table_name
    return int(ctx.engine.query_rows(
        f"SELECT count(*) FROM {writes} w JOIN {res} r ON r.distinct_id = w.distinct_id WHERE r.status <> 'matched'"
    )[0][0])


def _same_rows(engine: Engine, a: str, b: str) -> bool:
    return int(engine.query_rows(
        f"SELECT count(*) FROM ((SELECT * FROM {a} EXCEPT SELECT * FROM {b}) "
        f"UNION ALL (SELECT * FROM {b} EXCEPT SELECT * FROM {a})) x")[0][0]) == 0


def profile_fix_values(ctx: RemedyContext, kind: str = "rule", *, earlier: dict[str, Any] | None = None,
                       writes: str | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Two rows for a Rule (``kind="rule"``) or SDK code (``"sdk"``): with the next sends only,
    and with a re-export at the last run at or before ``at``; and what they were computed from
    (``writes`` table, ``audiences``). ``earlier``: that of another kind: when its writes are
    the same rows, its audiences are reused (the same inputs: the same simulation). The caller
    drops the ``writes`` tables; ``writes``: the table of :func:`_writes_sql`, made already."""
    app_only = kind == "sdk"
    if writes is not None:
        return _profile_fix_rows(ctx, app_only, writes, earlier)
    writes = temp_name("writes")
    ctx.engine.materialise(writes, _writes_sql(ctx, app_only), temp=True)
    try:
        return _profile_fix_rows(ctx, app_only, writes, earlier)
    except BaseException:
        ctx.engine.drop(writes)
        raise


def _profile_fix_rows(ctx: RemedyContext, app_only: bool, writes: str,
                      earlier: dict[str, Any] | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    reached = _unmatched_written(ctx, writes)
    since = format_time(ctx.since)
    one = reached == 1
    event = ("a logged-in event from the app (it carries a device id: the updated app; assumption)" if app_only
             else "a logged-in event")
    base_note = (f"writes $mparticle_user_id from {since} on {reached:,} unmatched member{'' if one else 's'} with "
                 f"{event} since then and a known MPID")
    if not ctx.logged_in.user_ids:
        # data without any $user_id (an output without Simplified ID Merge): say how logged in was told
        base_note += f" ({ctx.logged_in.note})"
    keys = ("sdk_code", "sdk_reexport") if app_only else ("rule", "rule_reexport")
    if ctx.engine.count(writes) == 0:
        audiences: tuple[Valued | None, Valued | None] = (None, None)
    elif earlier is not None and _same_rows(ctx.engine, writes, earlier["writes"]):
        audiences = earlier["audiences"]
    elif ctx.full:
        with shadowed(ctx.engine, "mp_profile_history", _history_with_writes_sql(ctx.history, writes)):
            next_sends = _run_once(ctx, ctx.settings)
            with_reexport = None if ctx.reexport_time is None else _run_once(ctx, ctx.reexport_settings)
        audiences = (next_sends, with_reexport)
    else:  # the written members and the members sharing a profile with them (SubsetWorld)
        world = ctx.world
        assert world is not None
        kind = written_history_kind(ctx.history, ctx.engine.count(writes))
        members = _written_changed_sql(ctx, writes)

        def remedied() -> dict[str, str]:  # the world's rows, the writes of its members
            tables = {t: world.table(t) for t in ("mp_profile_history", "mp_profiles") if t in world.world}
            mine = f"(SELECT * FROM {writes} WHERE distinct_id IN (SELECT distinct_id FROM {world.rel}))"
            return {"mp_profile_history": _history_with_writes_sql(ctx.history, mine, tables)}

        next_sends = world.value(ctx.base, ctx.settings, members, kind, remedied)
        with_reexport = None if ctx.reexported is None else world.value(
            ctx.reexported, ctx.reexport_settings, members, kind, remedied)
        audiences = (next_sends, with_reexport)
    re_note = f"{base_note}; {ctx.reexport_words()}"
    rows = [ctx.row(keys[0], audiences[0], f"{base_note}; a fix reaches mParticle only when the member is sent again"),
            ctx.row(keys[1], audiences[1], re_note)]
    return rows, {"writes": writes, "audiences": audiences}


# ----------------------------------------------------------------------------- EIT switch
def _new_profiles_sql(ctx: RemedyContext) -> str:
    """``old_id, new_id, created_at``: the Mixpanel profile keyed by the MPID that a switch at
    ``since`` creates for each member with a known MPID (not already keyed by it) and an event
    at or after ``since``."""
    return f"""
        SELECT p.distinct_id AS old_id, CAST(p.mpid AS VARCHAR) AS new_id, min(e.time) AS created_at
        FROM {ctx.persons} p JOIN mp_events e ON e.distinct_id = p.distinct_id
        WHERE p.mpid IS NOT NULL AND p.distinct_id <> CAST(p.mpid AS VARCHAR)
          AND e.time >= {sql_ts(ctx.since)} AND e.time <= {sql_ts(ctx.at)}
        GROUP BY p.distinct_id, p.mpid
    """


def _members_with_new_profiles_sql(ctx: RemedyContext, new: str, world: SubsetWorld | None = None) -> tuple[str, str]:
    """(table, rows): the cohort's membership rows plus, for each row of an old profile at or after
    the new profile's creation, the same row for the new profile (once per snapshot / page).
    ``world``: read its rows, and keep those of its members (REL) only."""
    ref = ctx.ref
    if ref.source == "snapshots":
        table, key, when = "mp_cohort_members", "snapshot_id", "m.as_of"
        mine = f"m.snapshot_id IN (SELECT snapshot_id FROM mp_cohort_snapshots s WHERE {ref.snapshot_filter('s')})"
        copy = "m.* REPLACE (n.new_id AS distinct_id)"
        pages = ""
    else:
        table, key, when = "mp_webhook_members", "seq", "g.received_at"
        mine = f"m.seq IN (SELECT seq FROM mp_webhook_pages s WHERE {ref.webhook_filter('s')})"
        copy = "m.* REPLACE (n.new_id AS distinct_id, CAST(NULL AS VARCHAR) AS email)"
        pages = "JOIN mp_webhook_pages g ON g.seq = m.seq"
    source, out = table, ""
    if world is not None:  # the world holds the rows of REL and of the old profiles (kept)
        source, out = world.table(table), f" WHERE distinct_id IN (SELECT distinct_id FROM {world.rel})"
    return table, f"""
        WITH mine AS (SELECT m.* FROM {source} m WHERE {mine}),
        added AS (
            SELECT {copy}
            FROM mine m JOIN {new} n ON n.old_id = m.distinct_id {pages}
            WHERE {when} >= n.created_at
            QUALIFY row_number() OVER (PARTITION BY m.{key}, n.new_id ORDER BY m.distinct_id) = 1
        )
        SELECT * FROM (
            SELECT * FROM mine
            UNION ALL
            SELECT a.* FROM added a
            WHERE NOT EXISTS (SELECT 1 FROM mine x WHERE x.{key} = a.{key} AND x.distinct_id = a.distinct_id)
        ) x{out}
    """


def switch_eit_value(ctx: RemedyContext, new: str | None = None) -> dict[str, Any]:
    """The audience at ``at`` had the EIT been switched to ``mparticle_id`` at ``since``.
    ``new``: the table of :func:`_new_profiles_sql`, made already (the caller drops it)."""
    timeline = ctx.settings.eit_timeline
    if ctx.settings.eit_at(ctx.since) == "mparticle_id" and all(
            p.eit == "mparticle_id" for p in timeline if p.since is not None and ctx.since < p.since <= to_utc(ctx.at)):
        since = max((p.since for p in timeline if p.since is not None and p.since <= ctx.since), default=None)
        when = f"from {format_time(since)}" if since is not None else "from the start"
        return ctx.row("switch_eit", None, f"the settings' External Identity Type is mParticle ID already, {when}: "
                                           "nothing to switch", applies=False)
    made = new is None
    if new is None:
        new = temp_name("newprofiles")
        ctx.engine.materialise(new, _new_profiles_sql(ctx), temp=True)
    try:
        table, rows = _members_with_new_profiles_sql(ctx, new)
        _check_columns(ctx.engine, table, rows)
        eits = [p for p in ctx.settings.eit_timeline if p.since is None or p.since < ctx.since]
        settings = ctx.settings.replace(eit_timeline=[*eits, EitPeriod(since=ctx.since, eit="mparticle_id")])
        if ctx.full:
            with shadowed(ctx.engine, table, rows):
                after = _run_once(ctx, settings)
                split = int(ctx.engine.query_rows(_split_sql(ctx, table, new))[0][0])
        else:  # the new profiles and the members sharing a profile with them (SubsetWorld)
            world = ctx.world
            assert world is not None
            got: list[int] = []
            after = world.value(
                ctx.base, settings, _switch_changed_sql(ctx, new), ctx.history,
                lambda: {table: _members_with_new_profiles_sql(ctx, new, world)[1]},
                # every new profile is in REL: its rows there are all its rows
                inside=lambda: got.append(int(ctx.engine.query_rows(_split_sql(ctx, table, new))[0][0])))
            split = got[-1] if got else 0  # no changed member: no new profile
    finally:
        if made:
            ctx.engine.drop(new)
    profiles = "split profile" if split == 1 else "split profiles"
    note = (f"events from {format_time(ctx.since)} go to a new Mixpanel profile keyed by the MPID, in the cohort "
            f"whenever the old one is (assumption): {split:,} {profiles} at {format_time(ctx.at)} "
            "(the old profiles stay in the cohort)")
    configured = [p.since for p in timeline if p.eit == "mparticle_id" and p.since is not None
                  and ctx.since < p.since <= to_utc(ctx.at)]
    if configured:  # the settings switch later: the remedy is the same switch made earlier
        note += f"; the settings switch on {format_time(configured[0])}, this from {format_time(ctx.since)}"
    return ctx.row("switch_eit", after, note)


def _switch_changed_sql(ctx: RemedyContext, new: str) -> str:
    """The members the switch may make write elsewhere: the new profiles (their membership rows
    are new); with ``fallback="strict"`` also every member resolved at or after ``since`` without
    an identifier in the baseline (``identifier_source = 'none'``: no Mixpanel or event
    ``$mparticle_user_id``, and the $distinct_id fallback off) whose distinct_id the fallback
    now in force would make a target: an existing MPID, or any distinct_id with
    ``protection="create_and_update"`` (an orphan). A member resolved with 'none' whose
    distinct_id names no profile stays unmatched: it writes nowhere, with or without the
    switch. The old profiles keep their rows and profiles."""
    changed = f"SELECT new_id AS distinct_id FROM {new}"
    if ctx.settings.fallback == "strict":
        res = ctx.base.table_names["resolved"]
        target = ("TRUE" if ctx.settings.protection == "create_and_update" else
                  f"EXISTS (SELECT 1 FROM mpa_profiles mp WHERE mp.mpid = {mpid_sql('r.distinct_id')})")
        changed += (f" UNION SELECT DISTINCT r.distinct_id FROM {res} r WHERE r.identifier_source = 'none' "
                    f"AND r.resolve_time >= {sql_ts(ctx.since)} AND {target}")
    return changed


def _split_sql(ctx: RemedyContext, table: str, new: str) -> str:
    """New profiles that are members at ``at`` (their old profile stays: one person, two profiles)."""
    ref, at = ctx.ref, sql_ts(ctx.at)
    if ref.source == "snapshots":
        return (f"SELECT count(DISTINCT m.distinct_id) FROM {table} m JOIN (SELECT DISTINCT new_id FROM {new}) n "
                f"ON n.new_id = m.distinct_id WHERE m.snapshot_id = {ref.latest_snapshot_sql(at)}")
    # webhooks: the new profile's last message that took effect at or before `at` added it
    return f"""
        SELECT count(*) FROM (
            SELECT w.distinct_id, arg_max(g.action, g.msg_at) AS last_action
            FROM {table} w JOIN ({webhook_pages_sql(ref.webhook_filter('g'), at, 'g')}) g ON g.seq = w.seq
            JOIN (SELECT DISTINCT new_id FROM {new}) n ON n.new_id = w.distinct_id
            GROUP BY w.distinct_id
        ) x WHERE last_action <> 'remove_members'
    """


def _check_columns(engine: Engine, table: str, rows: str) -> None:
    """The shadow table has the stored table's columns, in order (a schema change fails here)."""
    stored = engine.columns(table)
    got = list(engine.query_df(f"SELECT * FROM ({rows}) x LIMIT 0").columns)
    if got != stored:
        raise RuntimeError(f"remedies: the rows replacing {table} have columns {got}, expected {stored}")


# ----------------------------------------------------------------------------- re-export, reconnect
def reexport_row(ctx: RemedyContext, source: Source) -> dict[str, Any]:
    if ctx.reexport_time is None:
        return ctx.row("reexport", None, "no run at or before the as-of time to re-export at", applies=False)
    if ctx.reexport_paused:
        return ctx.row("reexport", None, ctx.reexport_words(), applies=False)
    if ctx.reexported is not None:  # the same audience as reexport_value's simulation (exact derivation)
        after = ctx.valued(ctx.reexported)
    else:  # what reexport_value simulates
        after = ctx.valued(ctx.simulate_fn(ctx.ref, ctx.at, ctx.reexport_settings, source))
    return ctx.row("reexport", after,
                   f"a full sync at {format_time(ctx.reexport_time)} re-sends every member with the identifier of "
                   "that time (clears nothing: a re-export writes true only)")


def reconnect_value(ctx: RemedyContext, source: Source) -> dict[str, Any]:
    """The last pause that started at or before ``at`` ends with a reconnect (module docstring)."""
    s = ctx.settings
    if s.sync_type != "dynamic" or not s.pauses:
        return ctx.row("reconnect", None, "no pause in the settings", applies=False)
    started = [(i, p) for i, p in enumerate(s.pauses) if p.start <= to_utc(ctx.at)]
    if not started:
        return ctx.row("reconnect", None, f"no pause started by {format_time(ctx.at)}", applies=False)
    i, pause = max(started, key=lambda ip: ip[1].start)
    if pause.ends_with == "reconnect":
        return ctx.row("reconnect", None, f"the pause from {format_time(pause.start)} already ends with a reconnect",
                       applies=False)
    end = pause.end
    if end > to_utc(ctx.at):  # still paused: reconnect at the last run
        end = ctx.reexport_time if ctx.reexport_time is not None and ctx.reexport_time > pause.start else None
        if end is None:
            return ctx.row("reconnect", None, f"the pause from {format_time(pause.start)} leaves no run to reconnect at",
                           applies=False)
    pauses = list(s.pauses)
    pauses[i] = Pause(start=pause.start, end=end, ends_with="reconnect")
    after = ctx.simulate_fn(ctx.ref, ctx.at, s.replace(pauses=[p.model_dump() for p in pauses]), source)
    return ctx.row("reconnect", ctx.valued(after),
                   f"the pause from {format_time(pause.start)} ends at {format_time(end)} with a reconnect "
                   "(a new export: full sync) instead of "
                   + ("resuming" if pause.end <= to_utc(ctx.at) else "running on"))


# ----------------------------------------------------------------------------- entry
def _fast_values(ctx: RemedyContext, made: list[str]) -> tuple[list[dict[str, Any]], dict[str, Any],
                                                               list[dict[str, Any]], dict[str, Any]]:
    """Rule, SDK code and the EIT switch by subset simulations (:class:`SubsetWorld`; every
    changed member registered first, the stored rows copied once). Tables made go to ``made``."""
    e = ctx.engine
    firsts, new = temp_name("firsts"), temp_name("newprofiles")
    rule_w, sdk_w = temp_name("writes"), temp_name("writes")
    made += [firsts, rule_w, sdk_w, new]
    # the rows of _writes_sql (both kinds) and _new_profiles_sql from one pass over the events:
    # the switch's new profile from any event, the writes from the events _writes_sql reads
    writable = remediation_profile_sql("p.distinct_id")
    e.materialise(firsts, f"""
        SELECT p.distinct_id, p.mpid, min(e.time) AS first_at,
               min(CASE WHEN {writable} AND {_remedy_event_sql(ctx, 'rule')} THEN e.time END) AS write_at,
               min(CASE WHEN {writable} AND {_remedy_event_sql(ctx, 'sdk')} THEN e.time END) AS app_write_at
        FROM {ctx.persons} p JOIN mp_events e ON e.distinct_id = p.distinct_id{ctx.logged_in.join('e.distinct_id')}
        WHERE p.mpid IS NOT NULL AND e.time >= {sql_ts(ctx.since)} AND e.time <= {sql_ts(ctx.at)}
        GROUP BY p.distinct_id, p.mpid
        """, temp=True)
    e.materialise(rule_w, f"SELECT distinct_id, mpid, write_at FROM {firsts} WHERE write_at IS NOT NULL", temp=True)
    e.materialise(sdk_w, f"SELECT distinct_id, mpid, app_write_at AS write_at FROM {firsts} "
                         "WHERE app_write_at IS NOT NULL", temp=True)
    e.materialise(new, f"SELECT distinct_id AS old_id, CAST(mpid AS VARCHAR) AS new_id, first_at AS created_at "
                       f"FROM {firsts} WHERE distinct_id <> CAST(mpid AS VARCHAR)", temp=True)
    # the Rule and SDK code: one subset (SDK code usually writes a subset of the Rule's members);
    # the switch: its own (its changed members have nothing to do with the Rule's); one copy of
    # the stored rows for both
    fixes = SubsetWorld(ctx, [b for b in (ctx.base, ctx.reexported) if b is not None])
    switch_world = SubsetWorld(ctx, [ctx.base])
    try:
        for w in (rule_w, sdk_w):
            changed = _written_changed_sql(ctx, w)
            fixes.add(changed, f"SELECT FALSE AS is_orphan, CAST(mpid AS VARCHAR) AS pkey FROM {w} "
                               f"WHERE distinct_id IN ({changed})")
        switch_world.add(_switch_changed_sql(ctx, new), f"SELECT FALSE AS is_orphan, new_id AS pkey FROM {new}",
                         keep_sql=f"SELECT old_id AS distinct_id FROM {new}")
        share_world([fixes, switch_world])
        ctx.world = fixes
        rule, done = profile_fix_values(ctx, "rule", writes=rule_w)
        sdk, done = profile_fix_values(ctx, "sdk", earlier=done, writes=sdk_w)
        ctx.world = switch_world
        switch = switch_eit_value(ctx, new=new)
    finally:
        ctx.world = None
        switch_world.drop()
        fixes.drop()
    return rule, done, sdk, switch


def value_remedies(
    engine: Engine,
    cohort: str | CohortRef,
    at: datetime | str | None = None,
    settings: SyncSettings | dict | str | None = None,
    *,
    since: datetime | str | None = None,
    source: Source = "auto",
    simulate_fn: SimulateFn | None = None,
    _full: bool = False,
) -> pd.DataFrame:
    """One row per remedy (``REMEDY_COLUMNS``): the audience at ``at`` as simulated, with the
    remedy applied from ``since``, the profiles gained and the members' users recovered. ``simulate_fn(cohort, at, settings,
    source)`` runs the unchanged-input simulations (a ``Lab`` passes its cached one; ``cohort``: the
    ``CohortRef`` found, never looked up again by its name, which may be another cohort's now too).
    ``out.attrs``: ``cohort``, ``at``, ``since``, ``reexport_at``, ``no_reexport`` (why no re-export
    happens, None when one does).

    Rule, SDK code and the EIT switch simulate only the members whose inputs they change and
    the members sharing a profile with them (:class:`SubsetWorld`; exact).
    ``_full=True``: simulate every member for every remedy (the reference, for the tests)."""
    if getattr(engine, "name", "duckdb") != "duckdb":  # before any work: the shadow tables need DuckDB
        raise NotImplementedError(f"remedies are simulated on the DuckDB engine, not on {engine.name}")
    s = SyncSettings.coerce(settings)
    ref = cohort if isinstance(cohort, CohortRef) else find_cohort(engine, cohort, source)
    run = simulate_fn or (lambda c, a, st, src: simulate(engine, c, a, st, source=src))
    base = run(ref, at, s, ref.source)
    since_t = default_since(s, base.t0, base.at) if since is None else to_utc(parse_time(since, "since"))
    if since is not None and since_t > to_utc(base.at):  # a given start after it: every remedy "recovers 0"
        raise SettingsError(f"since {format_time(since_t)} is after the as-of time {format_time(base.at)}: a remedy "
                            "started then changes nothing by that time; give an earlier --since or a later --at")
    persons = temp_name("persons")
    engine.materialise(persons, persons_sql(base), temp=True)
    ctx = RemedyContext(engine, ref, s, base, since_t, last_run_time(s, base.t0, base.at), persons, run,
                        history=profile_history_kind(engine), full=_full or not subset_ready(base, DERIVE_TABLES),
                        logged_in=logged_in_rule(engine))
    if not ctx.full and ctx.reexport_time is not None:  # before any table is shadowed
        ctx.reexported = derive_last_run_reexport(engine, base, s, ctx.reexport_time, ctx.history)
        if ctx.reexported is None:  # not at the last run: simulated
            ctx.reexported = run(ref, base.at, ctx.reexport_settings, ref.source)
        if not subset_ready(ctx.reexported):
            ctx.full, ctx.reexported = True, None
    made = [persons]
    try:
        if ctx.full:
            rule, done = profile_fix_values(ctx, "rule")
            made.append(done["writes"])
            sdk, done = profile_fix_values(ctx, "sdk", earlier=done)
            made.append(done["writes"])
            switch = switch_eit_value(ctx)
        else:
            rule, done, sdk, switch = _fast_values(ctx, made)
        rows = [*rule, *sdk, switch, reexport_row(ctx, ref.source), reconnect_value(ctx, ref.source)]
    finally:
        if isinstance(ctx.reexported, DerivedReexport):
            ctx.reexported.drop()
        for t in made:
            engine.drop(t)
    out = pd.DataFrame(rows, columns=REMEDY_COLUMNS)
    # the re-export's time, None when no re-export applies (no run yet, or the last run fails in a
    # pause that lasts to `at`: a header naming a time then announced a re-export that never happens)
    out.attrs.update(cohort=base.cohort, at=base.at, since=since_t,
                     reexport_at=None if ctx.reexport_paused else ctx.reexport_time,
                     no_reexport=ctx.no_reexport_reason)
    return out


__all__ = ["REMEDIES", "REMEDY_COLUMNS", "default_since", "last_run_time", "persons_sql", "value_remedies"]
