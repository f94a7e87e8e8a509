"""Who is a member of a cohort, and when (docs/rules.md#membership; a renamed cohort: docs/rules.md#renamed-cohorts).

* :func:`find_cohort` resolves a cohort name or id to a :class:`CohortRef` and chooses its
  membership source: snapshots (``mp_cohort_snapshots``/``mp_cohort_members``) or replayed
  webhook payloads (``mp_webhook_pages``/``mp_webhook_members``).
* :func:`add_membership_steps` adds the steps that describe membership up to a time as change
  points: ``versions(version, at_time[, snapshot_id | msg_key, action])``,
  ``transitions(distinct_id, version, delta)`` and ``member_emails(distinct_id, member_email)``.
  For webhooks ``versions.action`` is the message's action (``members`` | ``add_members`` |
  ``remove_members``): a later ``members`` message is a full refresh of the feed's writes
  (:mod:`cohortlab.simulation.sync`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from cohortlab.cohort_names import cohort_names_by_id, ids_of_name
from cohortlab.engines.base import Engine
from cohortlab.errors import CohortlabError, SettingsError, close_names
from cohortlab.pipeline import Pipeline, sql_str, sql_ts
from cohortlab.times import parse_time

Source = Literal["auto", "snapshots", "webhooks"]

BLOCK = 61  # snapshot versions per presence bitmask (bits 1..61 of a BIGINT, bit 0 = carry)


class CohortError(CohortlabError, ValueError):
    """Unknown cohort, or a cohort without membership data."""


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
    # the names under which data without an id belongs to the cohort (default: its name)
    plain_names: list[str] = field(default_factory=list)
    # how the reports list the cohort (cohorts_with_membership): its name, or its id when another
    # cohort holds that name now (default: its name)
    listed_as: str = ""

    def __post_init__(self) -> None:
        self.listed_as = self.listed_as or self.name

    def snapshot_filter(self, alias: str = "s") -> str:
        """SQL: the rows (of ``mp_cohort_snapshots`` or ``mp_webhook_pages`` as ``alias``) of this
        cohort: those of its ids, and those without an id under one of its plain names."""
        names = ", ".join(sql_str(n) for n in (self.plain_names or [self.name]))
        cond = f"{alias}.cohort_id IS NULL AND {alias}.cohort_name IN ({names})"
        if self.ids:
            cond += f" OR {alias}.cohort_id IN ({', '.join(sql_str(i) for i in self.ids)})"
        return f"({cond})"

    webhook_filter = snapshot_filter

    def snapshots_sql(self, up_to: str) -> str:
        """SQL: this cohort's membership snapshots with an as-of time at or before ``up_to`` (SQL:
        a timestamp literal, or ``?``), one row per as-of time: ``as_of, snapshot_id``. Of two
        snapshots of one as-of time the one loaded last counts (the larger ``snapshot_id``;
        docs/rules.md#membership): the one place of that rule, read by the simulation, explain,
        the remedies and the what-if."""
        return (f"SELECT s.as_of, max(s.snapshot_id) AS snapshot_id FROM mp_cohort_snapshots s "
                f"WHERE {self.snapshot_filter('s')} AND s.as_of <= {up_to} GROUP BY s.as_of")

    def latest_snapshot_sql(self, up_to: str) -> str:
        """SQL, a scalar subquery: the ``snapshot_id`` of the latest of :meth:`snapshots_sql`
        (NULL when the cohort has none up to then)."""
        return f"(SELECT arg_max(v.snapshot_id, v.as_of) FROM ({self.snapshots_sql(up_to)}) v)"


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


def cohorts_with_membership(engine: Engine) -> list[str]:
    """One entry per cohort with membership data (snapshots or webhook pages), sorted: its current
    name, or its id when another cohort holds that name now (:func:`find_cohort` takes either;
    ``CohortRef.listed_as`` is the entry of a cohort found). A
    renamed cohort is listed once; data without an id under a name no cohort with an id had is a
    cohort of its own."""
    by_id = cohort_names_by_id(engine)
    rows = engine.query_rows(
        "SELECT DISTINCT cohort_id, cohort_name FROM mp_cohort_snapshots "
        "UNION SELECT DISTINCT cohort_id, cohort_name FROM mp_webhook_pages"
    )
    current: dict[str, list[str]] = {}
    for i in sorted({r[0] for r in rows if r[0] is not None}):
        if by_id[i][0] is not None:
            current.setdefault(by_id[i][0], []).append(i)
    had = {n for _, ns in by_id.values() for n in ns}
    # by its id when its name is another cohort's current name too (also one without membership data,
    # named so in the cohort list: find_cohort refuses the name then)
    out = {n if len(ids_of_name(by_id, n)) == 1 else i for n, ids in current.items() for i in ids}
    out |= {r[1] for r in rows if r[0] is None and r[1] is not None and r[1] not in had}
    return sorted(out)


def find_cohort(engine: Engine, cohort: str | CohortRef, source: Source = "auto") -> CohortRef:
    """Resolve a cohort name (or id) and choose its membership source.

    A cohort with an id is that id's data: its snapshots and webhook pages under every name it had
    (a renamed cohort), never another cohort's; it is named by its current name
    (:func:`cohort_names_by_id`), which names the attribute. ``cohort`` may be its current name, an
    earlier one, or its id; a name that is the current name of one cohort is that cohort's (a
    renamed cohort's old name, since given to another cohort, names the other one); a name several
    cohorts hold now, or several had and none holds now, is an error that lists their ids. Data
    that records a name without an id belongs to the cohort of that name.

    ``source="auto"``: snapshots if any exist for that cohort, else webhooks.
    Raises :class:`CohortError` for an unknown cohort (listing the known ones) or a cohort
    without membership data in the requested source.

    ``cohort`` may also be a :class:`CohortRef` found earlier on the same data (a step that
    simulates, verifies or explains the cohort it found): returned as it is when ``source`` is
    ``"auto"`` or its own, else found again by its id. Its name is never looked up again: it may
    be another cohort's current name too (the cohort then found only by its id).
    """
    if source not in ("auto", "snapshots", "webhooks"):
        raise SettingsError(f"source must be auto, snapshots or webhooks, not {source!r}")
    if isinstance(cohort, CohortRef):
        if source in ("auto", cohort.source):
            return cohort
        cohort = cohort.ids[0] if cohort.ids else cohort.name
    names = known_cohorts(engine)
    by_id = cohort_names_by_id(engine)
    if cohort in names:
        ids = ids_of_name(by_id, cohort)
        if len(ids) > 1:
            how = "is the name of" if by_id[ids[0]][0] == cohort else "was a name of"
            raise CohortError(f"cohort name {cohort!r} {how} several cohorts (ids {', '.join(ids)}): "
                              f"pass the cohort's id instead")
    elif str(cohort) in by_id:
        ids = [str(cohort)]
        if by_id[ids[0]][0] is None:
            raise CohortError(
                f"cohort id {str(cohort)!r} has membership data but no name, and the feed names the "
                f"attribute after the cohort: load the cohort list (cohortlab load mixpanel-cohorts "
                f"cohorts.json), or the payloads or snapshots with the cohort's name"
            )
    else:
        shown = ", ".join(repr(n) for n in names[:50]) or "none loaded"
        more = f" (and {len(names) - 50} more)" if len(names) > 50 else ""
        near = close_names(str(cohort), names, n=1, cutoff=0.6)
        guess = f" (did you mean {near[0]!r}?)" if near else ""
        raise CohortError(f"unknown cohort {cohort!r}{guess}; known cohorts: {shown}{more}")
    name = by_id[ids[0]][0] if ids else cohort
    # data without an id: under the cohort's name, or an earlier name no other cohort had
    others = {n for i, (_, ns) in by_id.items() if i not in ids for n in ns}
    plain = sorted({name} | {n for i in ids for n in by_id[i][1] if n not in others})
    shared = len(ids_of_name(by_id, name)) > 1 if ids else False  # another cohort is named so now too
    ref = CohortRef(name, ids, plain_names=plain, listed_as=ids[0] if shared else name)
    snap = engine.query_rows(f"SELECT min(as_of), max(as_of), count(*) FROM mp_cohort_snapshots s WHERE {ref.snapshot_filter('s')}")[0]
    hook = engine.query_rows(f"SELECT min(received_at), max(received_at), count(*) FROM mp_webhook_pages s WHERE {ref.webhook_filter('s')}")[0]
    chosen = source
    if source == "auto":
        chosen = "snapshots" if snap[2] else "webhooks"
    row = snap if chosen == "snapshots" else hook
    if not row[2]:
        what = "snapshots (load mixpanel-members)" if chosen == "snapshots" else "webhook payloads (load mixpanel-webhooks)"
        if source == "auto":  # neither source has any: name both, not only the one auto fell back to
            what = "snapshots (load mixpanel-members) and no webhook payloads (load mixpanel-webhooks)"
        other = hook if chosen == "snapshots" else snap
        if other[2]:  # the other source has it: say so ("no membership data" it has was misleading)
            has = "webhook payloads" if chosen == "snapshots" else "snapshots"
            raise CohortError(f"cohort {name!r} has no {what.split(' (')[0]}, only {has}: use --source "
                              f"{'webhooks' if chosen == 'snapshots' else 'snapshots'} or auto "
                              f"(source={'webhooks' if chosen == 'snapshots' else 'snapshots'!r} in Python)")
        raise CohortError(f"cohort {name!r} has no membership data: no {what}")
    ref.source = chosen
    ref.first_time, ref.last_time = parse_time(row[0]), parse_time(row[1])
    return ref


# ----------------------------------------------------------------------------- membership
WEBHOOK_ACTIONS = "('members', 'add_members', 'remove_members')"


def webhook_pages_sql(where: str, at: str, alias: str = "s") -> str:
    """SQL: the webhook pages (``seq, received_at, action, msg_key, msg_at``) of the messages that
    took effect at or before ``at``, among the pages ``where`` keeps (a condition on
    ``mp_webhook_pages`` as ``alias``). The pages of one ``mixpanel_session_id`` and action are
    one message, which takes effect at its first page's receive time (``msg_at``;
    docs/rules.md#membership): a page received after ``at`` belongs to a message that began before
    it and counts (a filter on each page's own time cut such a message in two)."""
    a = alias
    return f"""
        SELECT seq, received_at, action, msg_key, msg_at FROM (
            SELECT seq, received_at, action, msg_key,
                   min(received_at) OVER (PARTITION BY msg_key, action) AS msg_at
            FROM (
                SELECT {a}.seq, {a}.received_at, {a}.action,
                       coalesce({a}.session_id, concat('seq:', CAST({a}.seq AS VARCHAR))) AS msg_key
                FROM mp_webhook_pages {a}
                WHERE {where} AND {a}.action IN {WEBHOOK_ACTIONS}
            ) pages
        ) messages
        WHERE msg_at <= {at}"""


def add_membership_steps(p: Pipeline, ref: CohortRef, at: datetime, *, transitions: bool = True,
                         only: str | None = None) -> None:
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

    ``only``: a relation with a ``distinct_id`` column; the transitions and emails of just those
    members (a member's transitions depend only on its own rows and the versions).
    """
    AT = sql_ts(at)
    mine = f" AND m.distinct_id IN (SELECT distinct_id FROM {only})" if only else ""
    mine_w = f" AND w.distinct_id IN (SELECT distinct_id FROM {only})" if only else ""
    if ref.source == "snapshots":
        p.add(
            "snap_latest",
            f"""
            SELECT v.as_of AS at_time, v.snapshot_id FROM ({ref.snapshots_sql(AT)}) v
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
            WHERE m.distinct_id IS NOT NULL{mine}
            UNION ALL
            SELECT m.distinct_id, (v.version - 1) // {BLOCK} + 1 AS block, CAST(1 AS BIGINT) AS bit
            FROM mp_cohort_members m JOIN versions v ON m.snapshot_id = v.snapshot_id
            WHERE m.distinct_id IS NOT NULL AND (v.version - 1) % {BLOCK} = {BLOCK - 1}{mine}
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

    p.add("wh_pages", webhook_pages_sql(ref.webhook_filter("s"), AT))
    p.add(
        "wh_messages",
        "SELECT msg_key, action, min(msg_at) AS at_time, min(seq) AS first_seq FROM wh_pages GROUP BY msg_key, action",  # msg_at: one per message
    )
    p.add(
        "versions",
        "SELECT row_number() OVER (ORDER BY at_time, first_seq) AS version, at_time, msg_key, action FROM wh_messages",
    )
    p.add(
        "wh_member_rows",
        f"""
        SELECT w.distinct_id, w.email, v.version, v.action
        FROM mp_webhook_members w
        JOIN wh_pages g ON w.seq = g.seq
        JOIN versions v ON v.msg_key = g.msg_key AND v.action = g.action
        WHERE w.distinct_id IS NOT NULL{mine_w}
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


def resolve_at(ref: CohortRef, at: datetime | str | None) -> datetime:
    """``at=None`` means the latest snapshot / webhook time of the cohort."""
    return ref.last_time if at is None else parse_time(at, "at")


__all__ = ["BLOCK", "CohortError", "CohortRef", "Source", "add_membership_steps", "cohort_names_by_id",
           "cohorts_with_membership", "find_cohort", "known_cohorts", "resolve_at"]
