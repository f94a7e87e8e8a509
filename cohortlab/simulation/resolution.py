"""docs/rules.md#resolution: the outcome of each cohort member, as a pipeline of named DuckDB SQL steps.

For a cohort at an as-of time ``at`` every member gets one row of the ``resolution`` table:

``cohort_name, distinct_id, identifier_source, identifier, mpid, status, gap_reason,
last_seen, active_after_cutoff, recoverable_via, email, as_of``

How each rule maps to a step (``resolution_pipeline``):

* ``members`` — who is a member at ``at`` (docs/rules.md#membership): the latest snapshot at or before ``at``
  (``mp_cohort_snapshots``/``mp_cohort_members``), or the membership replayed from webhook
  payloads (``mp_webhook_pages``/``mp_webhook_members``). See :func:`add_membership_steps`.
* ``profile_facts`` — the Mixpanel profile: ``$mparticle_user_id`` (primary identifier, docs/rules.md#choosing-the-identifier),
  ``$email``, ``$last_seen``.
* ``event_members`` / ``event_facts`` / ``event_ids`` — the event rule (docs/rules.md#event-identity-rule)
  (``event_identity_cutoff``), for members whose profile lacks the property: the latest event at
  or after the cutoff and not after ``at`` carrying a non-null ``$mparticle_user_id`` (ties at
  the same instant: the greatest value, for determinism); also the member's latest event not
  after ``at``, used for ``last_seen`` when the profile has no ``$last_seen``.
* ``last_seen`` = profile ``$last_seen``, else the latest event (docs/rules.md#recoverable-via: "``$last_seen`` or
  latest event"); ``active_after_cutoff`` = ``last_seen >= event_identity_cutoff`` (NULL when
  the cutoff is off).
* ``identified`` — ``identifier_source``: ``mparticle_user_id`` → ``event_property`` →
  ``distinct_id`` (with ``fallback="strict"`` only when the EIT in force at ``at`` is
  ``mparticle_id``, else ``none``).
* ``checked`` / ``precision_lost`` — docs/rules.md#mpid: is the identifier a valid MPID
  (:mod:`cohortlab.identifiers`), does that profile exist in ``mpa_profiles``, and if not, is it
  the float-rounded value of an existing MPID (``mpid_precision_loss``).
* ``classified`` — ``status`` and the first applicable ``gap_reason`` (docs/rules.md#gap-reasons).
  ``orphan_created`` (only with ``protection="create_and_update"``) needs an identifier to be
  sent: a member with ``identifier_source = none`` sends nothing and stays ``unmatched``.
* ``recover_keys`` / ``recover_hits`` / ``recover_best`` — ``recoverable_via``: for a member that
  is not matched (``unmatched`` or ``orphan_created``), the identity type (``customer_id``,
  ``email``, ``other``, ...) of a *user* identity in ``mpa_identities`` whose value equals the
  member's distinct_id, or else its email (profile ``$email``, or the email of a webhook payload).
  Several: distinct_id before email, then customer_id, email, other, other_id_2.., then by name.
  Identities belong to loaded profiles (the mParticle loaders write both), so the existence of
  the profile is not re-checked (a join with 10M profiles saved).
* ``resolution`` — the output columns.

Core SQL stays in the portable subset of docs/DEVELOPING.md#portable-sql (no ``list_*`` on nullable lists, no table
functions or macros, no ``ORDER BY`` outside window specifications).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import pandas as pd

from cohortlab.engines.base import Engine
from cohortlab.identifiers import float_rounded_mpid_sql, mpid_sql
from cohortlab.pipeline import Pipeline, sql_bool, sql_str, sql_ts
from cohortlab.settings import SyncSettings
from cohortlab.times import naive_utc, parse_time

Source = Literal["auto", "snapshots", "webhooks"]

IDENTIFIER_SOURCES = ("mparticle_user_id", "event_property", "distinct_id", "none")
STATUSES = ("matched", "unmatched", "orphan_created")
GAP_REASONS = (
    "fallback_disabled",
    "malformed_mparticle_user_id",
    "distinct_id_not_mpid",
    "mpid_precision_loss",
    "mpid_not_found",
)
RESOLUTION_COLUMNS = [
    "cohort_name", "distinct_id", "identifier_source", "identifier", "mpid", "status", "gap_reason",
    "last_seen", "active_after_cutoff", "recoverable_via", "email", "as_of",
]
PERSONAL_DATA_COLUMNS = ("email",)

BLOCK = 61  # snapshot versions per presence bitmask (bits 1..61 of a BIGINT, bit 0 = carry)

# preference when several identity types recover a member
_IDENTITY_RANK = {"customer_id": 1, "email": 2, "other": 3, "other_id_2": 4, "other_id_3": 5, "other_id_4": 6}


class CohortError(ValueError):
    """Unknown cohort, or a cohort without membership data."""


def fast_mpid_sql(text_expr: str) -> str:
    """Same value as :func:`cohortlab.identifiers.mpid_sql` (the MPID a text denotes, or NULL),
    cheaper on millions of rows: a text whose BIGINT cast prints back identically is canonical
    and valid; only the rare non-canonical numeric text (leading zeros, "+5", " 5") goes
    through the regular expression of docs/rules.md#valid-mpid."""
    n = f"TRY_CAST({text_expr} AS BIGINT)"
    return (
        f"CASE WHEN {n} IS NULL THEN NULL WHEN CAST({n} AS VARCHAR) = {text_expr} THEN {n} "
        f"WHEN {mpid_sql(text_expr)} IS NOT NULL THEN {n} END"
    )


# ----------------------------------------------------------------------------- cohorts
@dataclass
class CohortRef:
    """A cohort as the simulation sees it: its name, the ids it is known by, where its membership
    comes from, and the times at which that membership changes."""

    name: str
    ids: list[str] = field(default_factory=list)
    source: Literal["snapshots", "webhooks"] = "snapshots"
    first_time: datetime | None = None
    last_time: datetime | None = None

    def snapshot_filter(self, alias: str = "s") -> str:
        cond = f"{alias}.cohort_name = {sql_str(self.name)}"
        if self.ids:
            cond += f" OR {alias}.cohort_id IN ({', '.join(sql_str(i) for i in self.ids)})"
        return f"({cond})"

    webhook_filter = snapshot_filter


def known_cohorts(engine: Engine) -> list[str]:
    rows = engine.query_rows(
        """
        SELECT DISTINCT name FROM (
            SELECT cohort_name AS name FROM mp_cohort_snapshots
            UNION ALL SELECT cohort_name FROM mp_webhook_pages
            UNION ALL SELECT name FROM mp_cohorts
        ) WHERE name IS NOT NULL ORDER BY name
        """
    )
    return [r[0] for r in rows]


def find_cohort(engine: Engine, cohort: str, source: Source = "auto") -> CohortRef:
    """Resolve a cohort name (or id) and choose its membership source.

    ``source="auto"``: snapshots if any exist for that cohort, else webhooks.
    Raises :class:`CohortError` for an unknown cohort (listing the known ones) or a cohort
    without membership data in the requested source.
    """
    if source not in ("auto", "snapshots", "webhooks"):
        raise ValueError(f"source must be auto, snapshots or webhooks, not {source!r}")
    names = known_cohorts(engine)
    name = cohort
    if cohort not in names:
        by_id = engine.query_rows(
            """
            SELECT DISTINCT name FROM (
                SELECT cohort_id AS id, cohort_name AS name FROM mp_cohort_snapshots
                UNION ALL SELECT cohort_id, cohort_name FROM mp_webhook_pages
                UNION ALL SELECT cohort_id, name FROM mp_cohorts
            ) WHERE id = ? AND name IS NOT NULL
            """,
            [str(cohort)],
        )
        if len(by_id) != 1:
            shown = ", ".join(repr(n) for n in names[:50]) or "none loaded"
            more = f" (and {len(names) - 50} more)" if len(names) > 50 else ""
            raise CohortError(f"unknown cohort {cohort!r}; known cohorts: {shown}{more}")
        name = by_id[0][0]
    ids = [
        r[0]
        for r in engine.query_rows(
            """
            SELECT DISTINCT id FROM (
                SELECT cohort_id AS id, cohort_name AS name FROM mp_cohort_snapshots
                UNION ALL SELECT cohort_id, cohort_name FROM mp_webhook_pages
                UNION ALL SELECT cohort_id, name FROM mp_cohorts
            ) WHERE name = ? AND id IS NOT NULL ORDER BY id
            """,
            [name],
        )
    ]
    ref = CohortRef(name, ids)
    snap = engine.query_rows(f"SELECT min(as_of), max(as_of), count(*) FROM mp_cohort_snapshots s WHERE {ref.snapshot_filter('s')}")[0]
    hook = engine.query_rows(f"SELECT min(received_at), max(received_at), count(*) FROM mp_webhook_pages s WHERE {ref.webhook_filter('s')}")[0]
    chosen = source
    if source == "auto":
        chosen = "snapshots" if snap[2] else "webhooks"
    row = snap if chosen == "snapshots" else hook
    if not row[2]:
        what = "snapshots (load mixpanel-members)" if chosen == "snapshots" else "webhook payloads (load mixpanel-webhooks)"
        raise CohortError(f"cohort {name!r} has no membership data: no {what}")
    ref.source = chosen
    ref.first_time, ref.last_time = parse_time(row[0]), parse_time(row[1])
    return ref


# ----------------------------------------------------------------------------- membership
def add_membership_steps(p: Pipeline, ref: CohortRef, at: datetime, *, transitions: bool = True) -> None:
    """Steps describing the cohort's membership up to ``at`` as change points:

    * ``versions(version, at_time)`` — version 1, 2, ... : the times at which membership may change
      (snapshot ``as_of`` values; webhook messages). Version 0 (implicit) is the empty cohort.
    * ``transitions(distinct_id, version, delta)`` — +1 when a member enters at that version,
      -1 when it leaves. The members at version v are those whose deltas up to v sum to 1.
    * ``member_emails(distinct_id, member_email)`` — emails carried by webhook payloads.

    Snapshots: a snapshot replaces the membership; two snapshots with the same ``as_of``: the
    later load wins. Webhooks: all pages of one (``session_id``, ``action``) form one message,
    ordered by its first page (received_at, seq); ``members`` replaces the list,
    ``add_members``/``remove_members`` change it; a page replayed twice changes nothing (set
    semantics, and a message counts each member once).
    """
    AT = sql_ts(at)
    if ref.source == "snapshots":
        p.add(
            "snap_latest",
            f"""
            SELECT s.as_of AS at_time, max(s.snapshot_id) AS snapshot_id
            FROM mp_cohort_snapshots s
            WHERE {ref.snapshot_filter('s')} AND s.as_of <= {AT}
            GROUP BY s.as_of
            """,
        )
        p.add(
            "versions",
            "SELECT row_number() OVER (ORDER BY at_time) AS version, at_time, snapshot_id FROM snap_latest",
        )
        if not transitions:  # only the latest snapshot is needed
            return
        # Presence as bitmasks: one row per (member, block of 61 versions); bit j (1..61) = present
        # at version 61*block + j, bit 0 = present at the version just before the block (carry).
        # Enter/leave edges are bit operations, so no per-member window over every snapshot row.
        p.add(
            "snap_bits",
            f"""
            SELECT m.distinct_id, (v.version - 1) // {BLOCK} AS block,
                   CAST(1 AS BIGINT) << ((v.version - 1) % {BLOCK} + 1) AS bit
            FROM mp_cohort_members m JOIN versions v ON m.snapshot_id = v.snapshot_id
            WHERE m.distinct_id IS NOT NULL
            UNION ALL
            SELECT m.distinct_id, (v.version - 1) // {BLOCK} + 1 AS block, CAST(1 AS BIGINT) AS bit
            FROM mp_cohort_members m JOIN versions v ON m.snapshot_id = v.snapshot_id
            WHERE m.distinct_id IS NOT NULL AND (v.version - 1) % {BLOCK} = {BLOCK - 1}
            """,
        )
        p.add(
            "snap_edges",
            """
            SELECT distinct_id, block, mask & ~(mask << 1) & ~CAST(1 AS BIGINT) AS enters, ~mask & (mask << 1) AS exits
            FROM (SELECT distinct_id, block, bit_or(bit) AS mask FROM snap_bits GROUP BY distinct_id, block) x
            """,
        )
        p.add(
            "transitions",
            f"""
            SELECT e.distinct_id, v.version,
                   CASE WHEN (e.enters >> ((v.version - 1) % {BLOCK} + 1)) & 1 = 1 THEN 1 ELSE -1 END AS delta
            FROM snap_edges e JOIN versions v ON (v.version - 1) // {BLOCK} = e.block
            WHERE ((e.enters | e.exits) >> ((v.version - 1) % {BLOCK} + 1)) & 1 = 1
            """,
        )
        p.add(
            "member_emails",
            "SELECT CAST(NULL AS VARCHAR) AS distinct_id, CAST(NULL AS VARCHAR) AS member_email FROM versions WHERE FALSE",
        )
        return

    p.add(
        "wh_pages",
        f"""
        SELECT s.seq, s.received_at, s.action,
               coalesce(s.session_id, concat('seq:', CAST(s.seq AS VARCHAR))) AS msg_key
        FROM mp_webhook_pages s
        WHERE {ref.webhook_filter('s')} AND s.received_at <= {AT}
          AND s.action IN ('members', 'add_members', 'remove_members')
        """,
    )
    p.add(
        "wh_messages",
        "SELECT msg_key, action, min(received_at) AS at_time, min(seq) AS first_seq FROM wh_pages GROUP BY msg_key, action",
    )
    p.add(
        "versions",
        "SELECT row_number() OVER (ORDER BY at_time, first_seq) AS version, at_time, msg_key, action FROM wh_messages",
    )
    p.add(
        "wh_member_rows",
        """
        SELECT w.distinct_id, w.email, v.version, v.action
        FROM mp_webhook_members w
        JOIN wh_pages g ON w.seq = g.seq
        JOIN versions v ON v.msg_key = g.msg_key AND v.action = g.action
        WHERE w.distinct_id IS NOT NULL
        """,
    )
    p.add(
        "wh_events",
        """
        SELECT distinct_id, version, present,
               lead(version) OVER (PARTITION BY distinct_id ORDER BY version) AS next_version
        FROM (
            SELECT distinct_id, version, max(CASE WHEN action = 'remove_members' THEN 0 ELSE 1 END) AS present
            FROM wh_member_rows GROUP BY distinct_id, version
        ) x
        """,
    )
    # a `members` message that does not list a present member removes it
    p.add(
        "wh_replaced",
        """
        SELECT e.distinct_id, min(v.version) AS version, 0 AS present
        FROM wh_events e
        JOIN versions v ON v.action = 'members' AND v.version > e.version
        WHERE e.present = 1 AND (e.next_version IS NULL OR v.version < e.next_version)
        GROUP BY e.distinct_id, e.version
        """,
    )
    p.add(
        "wh_states",
        """
        SELECT distinct_id, version,
               present - coalesce(lag(present) OVER (PARTITION BY distinct_id ORDER BY version), 0) AS delta
        FROM (
            SELECT distinct_id, version, present FROM wh_events
            UNION ALL SELECT distinct_id, version, present FROM wh_replaced
        ) x
        """,
    )
    p.add("transitions", "SELECT distinct_id, version, delta FROM wh_states WHERE delta <> 0")
    p.add(
        "member_emails",
        "SELECT distinct_id, max(email) AS member_email FROM wh_member_rows WHERE email IS NOT NULL GROUP BY distinct_id",
    )


# ----------------------------------------------------------------------------- resolution
def resolution_pipeline(
    ref: CohortRef,
    at: datetime,
    settings: SyncSettings,
    *,
    population: Literal["current", "ever"] = "current",
) -> Pipeline:
    """The named steps of docs/rules.md#resolution for ``ref`` at ``at``.

    ``population="current"``: the members at ``at`` (the ``resolution`` table).
    ``population="ever"``: everyone who was a member at any version up to ``at``, with an
    ``is_member`` column (used by the sync simulation; resolution is still the one at ``at``).
    """
    p = Pipeline()
    direct = population == "current" and ref.source == "snapshots"
    add_membership_steps(p, ref, at, transitions=not direct)
    AT = sql_ts(at)
    if direct:
        members = """
            SELECT m.distinct_id, TRUE AS is_member, CAST(NULL AS VARCHAR) AS member_email
            FROM mp_cohort_members m
            WHERE m.distinct_id IS NOT NULL
              AND m.snapshot_id = (SELECT snapshot_id FROM versions WHERE version = (SELECT max(version) FROM versions))
        """
    else:
        having = "HAVING sum(t.delta) = 1" if population == "current" else ""
        members = f"""
            SELECT t.distinct_id, sum(t.delta) = 1 AS is_member, max(me.member_email) AS member_email
            FROM transitions t LEFT JOIN member_emails me ON me.distinct_id = t.distinct_id
            GROUP BY t.distinct_id {having}
        """
    p.add("members", members)
    p.add(
        "profile_facts",
        """
        SELECT m.distinct_id, m.is_member, m.member_email,
               pf.mparticle_user_id AS profile_mpuid, pf.email AS profile_email, pf.last_seen AS profile_last_seen
        FROM members m LEFT JOIN mp_profiles pf ON pf.distinct_id = m.distinct_id
        """,
    )
    cutoff = settings.event_identity_cutoff
    CUT = sql_ts(cutoff)
    # events matter only for members without the profile property (event rule) or without a
    # profile $last_seen (last activity)
    p.add(
        "event_members",
        "SELECT distinct_id FROM profile_facts WHERE profile_mpuid IS NULL OR profile_last_seen IS NULL",
    )
    rule = f"e.time >= {CUT} AND e.mparticle_user_id IS NOT NULL" if cutoff is not None else "FALSE"
    # the latest event carrying $mparticle_user_id: max over (time, value) pairs, so that two
    # events at the same instant give the greater value (deterministic)
    p.add(
        "event_facts",
        f"""
        SELECT e.distinct_id, max(e.time) AS last_event_at,
               max(CASE WHEN {rule} THEN struct_pack(t := e.time, v := e.mparticle_user_id) END) AS latest_id
        FROM mp_events e JOIN event_members m ON m.distinct_id = e.distinct_id
        WHERE e.time <= {AT}
        GROUP BY e.distinct_id
        """,
    )
    p.add(
        "event_ids",
        """
        SELECT distinct_id, last_event_at, latest_id.v AS event_mpuid FROM event_facts
        """,
    )
    fallback_ok = settings.fallback_applies(settings.eit_at(at))
    p.add(
        "identified",
        f"""
        SELECT pf.distinct_id, pf.is_member,
               coalesce(pf.profile_email, pf.member_email) AS email,
               coalesce(pf.profile_last_seen, ei.last_event_at) AS last_seen,
               CASE WHEN pf.profile_mpuid IS NOT NULL THEN 'mparticle_user_id'
                    WHEN ei.event_mpuid IS NOT NULL THEN 'event_property'
                    WHEN {sql_bool(fallback_ok)} THEN 'distinct_id'
                    ELSE 'none' END AS identifier_source,
               CASE WHEN pf.profile_mpuid IS NOT NULL THEN pf.profile_mpuid
                    WHEN ei.event_mpuid IS NOT NULL THEN ei.event_mpuid
                    WHEN {sql_bool(fallback_ok)} THEN pf.distinct_id
                    END AS identifier
        FROM profile_facts pf
        LEFT JOIN event_ids ei ON ei.distinct_id = pf.distinct_id
        """,
    )
    p.add(
        "candidates",
        f"SELECT i.*, {fast_mpid_sql('i.identifier')} AS candidate FROM identified i",
    )
    p.add(
        "checked",
        """
        SELECT c.*, mp.mpid IS NOT NULL AS profile_exists
        FROM candidates c LEFT JOIN mpa_profiles mp ON mp.mpid = c.candidate
        """,
    )
    p.add(
        "precision_lost",
        f"""
        SELECT DISTINCT c.candidate
        FROM checked c JOIN mpa_profiles mp ON {float_rounded_mpid_sql('mp.mpid')} = c.candidate
        WHERE NOT c.profile_exists AND c.candidate IS NOT NULL
        """,
    )
    creates = settings.protection == "create_and_update"
    p.add(
        "classified",
        f"""
        SELECT c.distinct_id, c.is_member, c.email, c.last_seen, c.identifier_source, c.identifier,
               CASE WHEN c.profile_exists THEN c.candidate END AS mpid,
               CASE WHEN c.profile_exists THEN 'matched'
                    WHEN {sql_bool(creates)} AND c.identifier IS NOT NULL THEN 'orphan_created'
                    ELSE 'unmatched' END AS status,
               CASE WHEN c.profile_exists THEN NULL
                    WHEN c.identifier_source = 'none' THEN 'fallback_disabled'
                    WHEN c.identifier_source IN ('mparticle_user_id', 'event_property') AND c.candidate IS NULL
                         THEN 'malformed_mparticle_user_id'
                    WHEN c.identifier_source = 'distinct_id' AND c.candidate IS NULL THEN 'distinct_id_not_mpid'
                    WHEN pl.candidate IS NOT NULL THEN 'mpid_precision_loss'
                    ELSE 'mpid_not_found' END AS gap_reason
        FROM checked c LEFT JOIN precision_lost pl ON pl.candidate = c.candidate
        """,
    )
    p.add(
        "recover_keys",
        """
        SELECT distinct_id, distinct_id AS lookup, 1 AS key_rank FROM classified WHERE status <> 'matched'
        UNION ALL
        SELECT distinct_id, email AS lookup, 2 AS key_rank FROM classified
        WHERE status <> 'matched' AND email IS NOT NULL AND email <> distinct_id
        """,
    )
    rank = " ".join(f"WHEN {sql_str(k)} THEN {v}" for k, v in _IDENTITY_RANK.items())
    p.add(
        "recover_hits",
        f"""
        SELECT k.distinct_id, i.identity_type,
               row_number() OVER (
                   PARTITION BY k.distinct_id
                   ORDER BY k.key_rank, CASE i.identity_type {rank} ELSE 99 END, i.identity_type
               ) AS pick
        FROM recover_keys k
        JOIN mpa_identities i ON i.value = k.lookup
        WHERE coalesce(i.kind, 'user') = 'user' AND i.identity_type IS NOT NULL
        """,
    )
    p.add("recover_best", "SELECT distinct_id, identity_type AS recoverable_via FROM recover_hits WHERE pick = 1")
    active = (
        f"coalesce(c.last_seen >= {CUT}, FALSE)" if cutoff is not None else "CAST(NULL AS BOOLEAN)"
    )
    member_col = ", c.is_member" if population == "ever" else ""
    p.add(
        "resolution",
        f"""
        SELECT {sql_str(ref.name)} AS cohort_name, c.distinct_id, c.identifier_source, c.identifier,
               CAST(c.mpid AS BIGINT) AS mpid, c.status, c.gap_reason, c.last_seen,
               {active} AS active_after_cutoff, rb.recoverable_via, c.email, {AT} AS as_of{member_col}
        FROM classified c LEFT JOIN recover_best rb ON rb.distinct_id = c.distinct_id
        """,
    )
    return p


@dataclass
class ResolutionRun:
    """What :func:`resolve` did: the cohort, the as-of time, and debug row counts per step."""

    cohort: CohortRef
    at: datetime
    table: str
    step_counts: dict[str, int]


def resolve_at(ref: CohortRef, at: datetime | str | None) -> datetime:
    """``at=None`` means the latest snapshot / webhook time of the cohort."""
    return ref.last_time if at is None else parse_time(at)


def resolve(
    engine: Engine,
    cohort: str | CohortRef,
    at: datetime | str | None = None,
    settings: SyncSettings | dict | str | None = None,
    *,
    source: Source = "auto",
    debug: bool = False,
    table: str = "resolution",
    population: Literal["current", "ever"] = "current",
) -> ResolutionRun:
    """Compute the resolution table (docs/rules.md#resolution) into ``table`` in the database.

    In debug mode each step is materialised as ``<table>__<step>`` and its row count returned.
    """
    settings = SyncSettings.coerce(settings)
    ref = cohort if isinstance(cohort, CohortRef) else find_cohort(engine, cohort, source)
    settings.attribute_name(ref.name)  # a too-long attribute name is an error before any work
    at_ = resolve_at(ref, at)
    counts = resolution_pipeline(ref, at_, settings, population=population).run(engine, table, debug=debug)
    return ResolutionRun(ref, at_, table, counts)


def resolution_df(engine: Engine, table: str = "resolution") -> pd.DataFrame:
    """The resolution table as pandas, in a stable order (sorted at the edge)."""
    cols = ", ".join(RESOLUTION_COLUMNS)
    return engine.query_df(f"SELECT {cols} FROM {table} ORDER BY distinct_id")


__all__ = [
    "CohortError",
    "CohortRef",
    "GAP_REASONS",
    "IDENTIFIER_SOURCES",
    "PERSONAL_DATA_COLUMNS",
    "RESOLUTION_COLUMNS",
    "STATUSES",
    "add_membership_steps",
    "fast_mpid_sql",
    "find_cohort",
    "known_cohorts",
    "resolution_df",
    "resolution_pipeline",
    "resolve",
    "resolve_at",
]
