"""The Mixpanel Cohorts feed played forward in time, set-based (docs/rules.md#sync-over-time).

What is simulated
-----------------
* **Membership over time** (:func:`cohortlab.simulation.membership.add_membership_steps`): the
  cohort's snapshots, or its replayed webhook messages, as *versions* (the times at which
  membership may change) and *transitions* (a member enters / leaves at a version).
* **Runs** at ``t0 + k·cadence`` for k = 0 .. while ``<= at`` (``t0`` = ``settings.start``, by
  default the first snapshot / first webhook). A run sees M(run) = the latest version at or
  before it. A run inside a pause window ``[start, end)`` fails: nothing is sent and the last
  successful membership stays as it was.
  - ``dynamic`` (docs/rules.md#sync-types, docs/rules.md#dynamic-sync): the first successful run
    is a full sync (``kind='first'``). A later successful
    run is, in this order: ``full_refresh`` when the gap since the last successful run is longer
    than ``snapshot_ttl`` or, with webhooks, a replayed ``members`` message arrived since the last
    successful run (that run *is* a full refresh, also when a reconnect or a re-export lands on
    it: docs/rules.md#pauses-and-refresh), ``reconnect`` (the first successful run at or after the
    start of a pause that ends with a reconnect: a new export, full sync), ``reexport``
    (docs/rules.md#re-export: the first
    successful run at or after a ``reexport_at`` time: full sync), else ``diff``: the diff between
    M(t) and the membership of the last successful run, removes and adds in ``apply_order``
    (last write wins on a target shared by several members). A full run writes ``true`` on the
    target of every member of M(t); only ``full_refresh`` with ``refresh_clears_stale`` also
    writes ``false`` on every target that is ``true`` and not written by the refresh.
  - ``one_time`` (docs/rules.md#one-time-export): one export at t0 (``kind='one_time'``); a ``reexport_at`` time adds a new
    one-time export at the first grid point at or after it (``kind='reexport'``). Other grid
    points are ``kind='observation'`` rows (nothing sent). Pauses do not apply.
* **Identifiers at the time they are sent** (``resolution_time="send"``,
  docs/rules.md#resolution-time): a member's identifier
  is decided at each run that sends it as an add or in a full run (first, one_time,
  full_refresh, reexport, reconnect), from the profiles and events known at that run's time
  (:mod:`cohortlab.simulation.resolution`), and stays until the member is sent again. A remove
  writes to the target of the member's latest decision sent. mParticle *holds* a member at a run
  when it is in the membership of the last successful run before it. A stint of a member in the
  cohort that a run sees while mParticle does not hold it, and that run does not send (it
  entered during a pause), is decided provisionally at that run, and again at each later run
  after which its identifier may differ until it is sent, for the ``should be true`` set only;
  in the resolution table a member mParticle does not hold after the last successful run
  is resolved at the as-of time. ``resolution_time="as_of"`` (docs/rules.md#resolution-as-of):
  every decision resolves at the as-of time (one resolution applied to every run).
* **Targets**: a ``matched`` decision's MPID; with ``create_and_update`` (docs/rules.md#input-protection,
  docs/rules.md#orphans), an ``orphan_created``
  decision's identifier (one orphan profile per distinct identifier, created the first time it
  is written). Unmatched members are sent (they count in adds/removes) but write nothing.

How it stays fast
-----------------
Nothing loops over runs in Python. A ``runs`` table (``unnest(generate_series(0, K))``) gets
the version each run sees with one join; a transition at version v belongs to the one diff run
whose (previous version, version] range contains v; full runs select the members at their
version; decisions are resolved once per distinct (member, time); per target, S-membership and
attribute value are followed in ONE window pass over the runs at which the target changes
(``state``); the timeline's counts are running sums of ±1 deltas per run. Work is proportional
to members × full runs + churn, not to members × runs.

Tables (each a :class:`cohortlab.pipeline.Pipeline` of named steps; ``<p>`` is the run's prefix
``sim_<run id>_``, :class:`Names`)
-------------------------------------------------------------------------------------------
``<p>versions(version, at_time[, snapshot_id | msg_key, action])``,
``<p>transitions(distinct_id, version, delta)``, ``<p>member_emails(distinct_id, member_email)``,
``<p>member_profiles`` (the Mixpanel profile versions of anyone with a transition, read once by
``resolved`` and ``resolution``: :func:`cohortlab.simulation.resolution.profile_versions_sql`),
``<p>runs(k, run_at, version, failed, sent, prev_k, prev_version, kind)``,
``<p>version_runs(version, k)`` (the first run that sees a version),
``<p>sends(k, distinct_id, net, is_full)`` (members sent by each successful run: +1 added, -1
removed; a full run sends every member of M(t)),
``<p>decisions(distinct_id, k, is_send, resolve_time)`` (a member not sent is decided again,
provisionally, at each run after which its identifier may differ: :func:`_redecided_steps`),
``<p>final_members(distinct_id, member_email, k, resolve_time, sent_at)`` (members at ``at``
with the decision mParticle holds for them; none: resolved at ``at``),
``<p>requests(distinct_id, resolve_time)``, ``<p>resolved`` (see resolution.py),
``<p>targets(distinct_id, resolve_time, is_orphan, target, orphan_identifier)``,
``<p>decision_targets(distinct_id, k, is_send, is_orphan, target)``,
``<p>member_kinds(distinct_id, simple, target, is_orphan)`` (members with one target),
``<p>s_deltas(target, k, s_delta)`` (the should-be-true set S: members of M(run) resolve to it),
``<p>writes(k, is_orphan, target, value, is_clear)``,
``<p>state(is_orphan, target, k, next_k, in_s, is_true, is_written, is_write)``,
and the results ``<p>resolution``, ``<p>attribute_state``, ``<p>timeline``.

Columns of ``timeline``: ``run_at, members (|M(t)|), adds, removes (members sent; a full run
counts every member as an add), failed, full_refresh (kind = full_refresh), true_count (|T| after
the run, orphans included), not_yet_true (|S minus T|), stale_true (|T minus S| among linked
profiles)``, and for context ``run`` (k), ``kind`` (first | diff | full_refresh | reexport |
reconnect | failed | one_time | observation), ``sent``, ``should_be_true`` (|S|),
``true_linked``, ``orphans_true``, ``membership_as_of`` (time of the snapshot / webhook message
the run saw), ``false_count`` (profiles whose attribute is ``false``: an audience on ``= false``).

Columns of ``attribute_state`` (one row per profile that was ever written):
``cohort_name, attribute_name, mpid (NULL for orphans), orphan_identifier, is_orphan, value
(after the last run <= at), last_write_at (the last run that wrote it), writes, as_of,
changed_at`` (the run that wrote ``value`` after another value or none: later runs only wrote it
again; what ``verify`` compares a profile's capture time with, docs/rules.md#observed-state).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from cohortlab.engines.base import Engine
from cohortlab.pipeline import Pipeline, sql_bool, sql_str, sql_ts
from cohortlab.settings import SyncSettings
from cohortlab.simulation.membership import CohortRef, Source, add_membership_steps, find_cohort, resolve_at
from cohortlab.simulation.resolution import (
    ProfileHistory,
    add_context_steps,
    add_resolve_steps,
    has_profile_history,
    member_history_kind,
    profile_versions_sql,
)
from cohortlab.simulation.writes import (
    attribute_state_stage,
    member_kinds_stage,
    s_deltas_stage,
    state_stage,
    timeline_stage,
    writes_stage,
)
from cohortlab.times import to_utc

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)

FULL_KINDS = ("first", "one_time", "full_refresh", "reexport", "reconnect")
TIMELINE_COLUMNS = [
    "run_at", "members", "adds", "removes", "failed", "full_refresh", "true_count", "not_yet_true", "stale_true",
    # context
    "run", "kind", "sent", "should_be_true", "true_linked", "orphans_true", "membership_as_of", "false_count",
]
ATTRIBUTE_STATE_COLUMNS = [
    "cohort_name", "attribute_name", "mpid", "orphan_identifier", "is_orphan", "value", "last_write_at", "writes",
    "as_of", "changed_at",
]


class Names:
    """Table names of one simulation run: ``Names("sim_ab12cd34_").timeline`` is
    ``sim_ab12cd34_timeline``. Two runs with different prefixes never share a table."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __getattr__(self, step: str) -> str:
        if step.startswith("__"):
            raise AttributeError(step)
        return f"{self.prefix}{step}"


def _us(t: datetime) -> int:
    return round((to_utc(t) - _EPOCH) / _US)


def _in(values) -> str:
    return "(" + ", ".join(sql_str(v) for v in values) + ")"


def _ks(values) -> str:
    return "(" + ", ".join(str(int(v)) for v in sorted(values)) + ")" if values else "(-1)"


# ----------------------------------------------------------------------------- runs
@dataclass
class RunGrid:
    """The run grid in Python terms: which runs are special full syncs (reexport, reconnect)."""

    t0: datetime
    at: datetime
    settings: SyncSettings

    @property
    def cad(self) -> int:
        return round(self.settings.cadence / _US)

    @property
    def last(self) -> int:
        return -1 if self.at < self.t0 else int((_us(self.at) - _us(self.t0)) // self.cad)

    def k_at_or_after(self, t: datetime) -> int:
        """The first run at or after ``t`` (0 for any time before the first run); it may be past
        the last run."""
        return max(0, -(-(_us(t) - _us(self.t0)) // self.cad))

    def k_at_or_after_sql(self, t: str) -> str:
        """:meth:`k_at_or_after` of the TIMESTAMP expression ``t``, in SQL (exact microseconds)."""
        d = f"date_diff('microsecond', {sql_ts(self.t0)}, {t})"
        return f"CASE WHEN {d} <= 0 THEN 0 ELSE ({d} + {self.cad - 1}) // {self.cad} END"

    def failed_ranges(self) -> list[tuple[int, int]]:
        """The runs each pause makes fail, as run numbers ``[first, end)``: the runs at or after its
        start and before its end (docs/rules.md#pauses-and-refresh). The one place a pause becomes
        runs: the SQL of :func:`runs_stage` (which runs fail) and :meth:`first_sent_at_or_after`
        (where a re-export or a reconnect lands) both read it."""
        if self.settings.sync_type != "dynamic":
            return []
        return [(self.k_at_or_after(w.start), self.k_at_or_after(w.end)) for w in self.settings.pauses]

    def _failed_until(self, k: int) -> int | None:
        """The end (as a run number) of the pause that makes run k fail, or None."""
        for first, end in self.failed_ranges():
            if first <= k < end:
                return end
        return None

    def first_sent_at_or_after(self, t: datetime) -> int | None:
        k = self.k_at_or_after(t)
        if self.settings.sync_type == "dynamic":
            while k <= self.last:
                nxt = self._failed_until(k)
                if nxt is None:
                    break
                k = max(nxt, k + 1)
        return k if k <= self.last else None

    def reexport_ks(self) -> set[int]:
        ks = {self.first_sent_at_or_after(t) for t in self.settings.reexport_at}
        return {k for k in ks if k is not None}

    def reconnect_ks(self) -> set[int]:
        if self.settings.sync_type != "dynamic":
            return set()
        ks = {self.first_sent_at_or_after(w.start) for w in self.settings.pauses if w.ends_with == "reconnect"}
        return {k for k in ks if k is not None}


def runs_stage(n: Names, grid: RunGrid, webhook: bool) -> Pipeline:
    settings = grid.settings
    cad, last = grid.cad, grid.last
    ttl = round(settings.snapshot_ttl / _US)
    one_time = settings.sync_type == "one_time"
    failed = " OR ".join(f"(k >= {first} AND k < {end})" for first, end in grid.failed_ranges()) or "FALSE"
    reexport, reconnect = grid.reexport_ks(), grid.reconnect_ks()
    sent = f"(k = 0 OR k IN {_ks(reexport)})" if one_time else f"NOT ({failed})"
    first = "'one_time'" if one_time else "'first'"
    p = Pipeline()
    p.add(
        "grid",
        f"""
        SELECT k, make_timestamp({_us(grid.t0)} + k * {cad}) AS run_at
        FROM (SELECT unnest(generate_series(0, {last})) AS k) g
        """,
    )
    p.add(
        "run_versions",
        f"""
        SELECT r.k, r.run_at, coalesce(max(v.version), 0) AS version
        FROM grid r LEFT JOIN {n.versions} v ON v.at_time <= r.run_at
        GROUP BY r.k, r.run_at
        """,
    )
    p.add(
        "run_sent",
        f"SELECT k, run_at, version, {sql_bool(not one_time)} AND ({failed}) AS failed, {sent} AS sent FROM run_versions",
    )
    p.add(
        "successes",
        """
        SELECT k, lag(k) OVER (ORDER BY k) AS prev_k, lag(version) OVER (ORDER BY k) AS prev_version
        FROM run_sent WHERE sent
        """,
    )
    if webhook:  # a replayed `members` message since the last success: the feed refreshed
        p.add(
            "members_runs",
            f"""
            SELECT DISTINCT s.k
            FROM successes s JOIN run_sent r ON r.k = s.k
            JOIN {n.versions} v ON v.action = 'members' AND v.version > s.prev_version AND v.version <= r.version
            WHERE s.prev_k IS NOT NULL
            """,
        )
    else:
        p.add("members_runs", "SELECT k FROM successes WHERE FALSE")
    p.add(
        "runs",
        f"""
        SELECT r.k, r.run_at, r.version, r.failed, r.sent, s.prev_k, s.prev_version,
               CASE WHEN NOT r.sent THEN (CASE WHEN r.failed THEN 'failed' ELSE 'observation' END)
                    WHEN s.prev_k IS NULL THEN {first}
                    -- after a gap longer than snapshot_ttl, or a replayed `members` message, the run
                    -- IS a full refresh, whatever else lands on it (docs/rules.md#pauses-and-refresh)
                    WHEN {sql_bool(not one_time)} AND ((r.k - s.prev_k) * {cad} > {ttl} OR mr.k IS NOT NULL)
                         THEN 'full_refresh'
                    WHEN r.k IN {_ks(reconnect)} THEN 'reconnect'
                    WHEN r.k IN {_ks(reexport)} THEN 'reexport'
                    ELSE 'diff' END AS kind
        FROM run_sent r LEFT JOIN successes s ON s.k = r.k LEFT JOIN members_runs mr ON mr.k = r.k
        """,
    )
    return p


def version_runs_stage(n: Names) -> Pipeline:
    """The first run (failed or not) whose membership is at least as recent as each version."""
    return Pipeline().add(
        "version_runs",
        f"SELECT v.version, min(r.k) AS k FROM {n.versions} v JOIN {n.runs} r ON r.version >= v.version GROUP BY v.version",
    )


def sends_stage(n: Names) -> Pipeline:
    """Members sent by each successful run: ``net`` +1 added, -1 removed; full runs send every
    member of M(t) (``is_full``)."""
    p = Pipeline()
    p.add(
        "diff_ranges",
        f"""
        SELECT v.version, r.k
        FROM {n.versions} v
        JOIN {n.runs} r ON r.kind = 'diff' AND v.version > r.prev_version AND v.version <= r.version
        """,
    )
    p.add(
        "diff_sends",
        f"""
        SELECT d.k, t.distinct_id, sum(t.delta) AS net
        FROM {n.transitions} t JOIN diff_ranges d ON d.version = t.version
        GROUP BY d.k, t.distinct_id
        HAVING sum(t.delta) <> 0
        """,
    )
    p.add(
        "full_sends",
        f"""
        SELECT r.k, t.distinct_id, 1 AS net
        FROM {n.runs} r JOIN {n.transitions} t ON t.version <= r.version
        WHERE r.kind IN {_in(FULL_KINDS)}
        GROUP BY r.k, t.distinct_id
        HAVING sum(t.delta) = 1
        """,
    )
    p.add(
        "sends",
        """
        SELECT k, distinct_id, net, FALSE AS is_full FROM diff_sends
        UNION ALL
        SELECT k, distinct_id, net, TRUE AS is_full FROM full_sends
        """,
    )
    return p


def seen_deltas_stage(n: Names) -> Pipeline:
    """The first half of :func:`decisions_stage`: for the first run that sees each stint of a
    member in the cohort (an enter and the leave after it), the member's transitions up to the
    last successful run before it (``distinct_id, k, delta``; one row with a NULL ``delta`` when
    there are none). Its own table, so that the join and the count per (member, run) after it
    do not hold their memory at once: as one statement they failed at 10M users under a report
    kernel's share of 412 MB (docs/benchmarks.md#report-shares)."""
    p = Pipeline()
    p.add(
        "stints",
        f"""
        SELECT distinct_id, version AS enter_version, leave_version
        FROM (
            SELECT distinct_id, version, delta,
                   lead(version) OVER (PARTITION BY distinct_id ORDER BY version) AS leave_version
            FROM {n.transitions}
        ) x
        WHERE delta > 0
        """,
    )
    p.add(
        "stint_seen",
        f"""
        SELECT s.distinct_id, vr.k
        FROM stints s
        JOIN {n.version_runs} vr ON vr.version = s.enter_version
        JOIN {n.runs} r ON r.k = vr.k
        WHERE s.leave_version IS NULL OR r.version < s.leave_version
        """,
    )
    # mParticle holds the member at run k when it is in the membership of the last successful
    # run before k (the base the feed diffs against): then nothing new is decided for it
    p.add(
        "prior_success",
        f"""
        SELECT k, max(CASE WHEN sent THEN version END)
                  OVER (ORDER BY k ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS version
        FROM {n.runs}
        """,
    )
    p.add(
        "seen_deltas",
        f"""
        SELECT f.distinct_id, f.k, t.delta
        FROM stint_seen f
        JOIN prior_success ps ON ps.k = f.k
        LEFT JOIN {n.transitions} t ON t.distinct_id = f.distinct_id AND t.version <= ps.version
        """,
    )
    return p


def decisions_stage(n: Names, grid: RunGrid) -> Pipeline:
    """When each member's identifier is decided: every run that sends it as an add or in a full
    run, and provisionally the first run that sees each of its stints in the cohort (an enter and
    the leave after it) when mParticle does not hold the member then (it is not in the membership
    of the last successful run before: :func:`seen_deltas_stage`) and that run does not send it:
    it entered during a pause (and again, provisionally, at the later runs of
    :func:`_redecided_steps`). A stint no run sees (entered and left between two runs) gets no
    decision, nor one whose member mParticle still holds (it left and came back while no run
    succeeded: nothing is sent, what was sent stays)."""
    at, settings = grid.at, grid.settings
    when = "r.run_at" if settings.resolution_time == "send" else sql_ts(at)
    p = Pipeline()
    p.add(
        "first_seen",
        f"""
        SELECT distinct_id, k
        FROM {n.seen_deltas}
        GROUP BY distinct_id, k
        HAVING coalesce(sum(delta), 0) <> 1
        """,
    )
    p.add(
        "decision_points",
        f"""
        SELECT distinct_id, k, max(is_send) AS is_send
        FROM (
            SELECT distinct_id, k, 1 AS is_send FROM {n.sends} WHERE net > 0
            UNION ALL
            SELECT distinct_id, k, 0 AS is_send FROM first_seen
        ) x
        GROUP BY distinct_id, k
        """,
    )
    if settings.resolution_time == "send":
        _redecided_steps(p, n, grid)
        points = "SELECT distinct_id, k, is_send FROM decision_points UNION ALL SELECT distinct_id, k, 0 FROM redecided"
    else:  # every decision is resolved at `at`: one per point is enough
        points = "SELECT distinct_id, k, is_send FROM decision_points"
    p.add(
        "decisions",
        f"""
        SELECT d.distinct_id, d.k, d.is_send = 1 AS is_send, {when} AS resolve_time
        FROM ({points}) d JOIN {n.runs} r ON r.k = d.k
        """,
    )
    return p


def _redecided_steps(p: Pipeline, n: Names, grid: RunGrid) -> None:
    """Step ``redecided(distinct_id, k)``: a member decided provisionally (not sent: it entered in a
    pause, or after a one-time export) is decided again, provisionally, at each later run until
    its next decision point (a send, or a new stint) after which its identifier may differ: the
    first run at or after a version of its Mixpanel profile, an event of it carrying
    ``$mparticle_user_id`` (at or after the cutoff) or a change of the EIT (strict fallback).
    So the should-be-true set of every timeline row is what the waterfall at that run's time
    counts (docs/rules.md#resolution-time); resolving at every run would give the same, at the
    cost of one resolution per pending member and run. A change's run is the grid's arithmetic
    (:meth:`RunGrid.k_at_or_after_sql`), not a join of each change to every later run, which
    grew with events × runs (a one-time export with 100k members never sent, 10 events each
    over 60 days of hourly runs: 5 s)."""
    at, settings = grid.at, grid.settings
    p.add(
        "pending",
        """
        SELECT distinct_id, k0, k_end FROM (
            SELECT distinct_id, k AS k0, is_send,
                   lead(k) OVER (PARTITION BY distinct_id ORDER BY k) AS k_end
            FROM decision_points
        ) x
        WHERE is_send = 0
        """,
    )
    changes = [f"SELECT v.distinct_id, v.valid_from AS t FROM {n.member_profiles} v "
               "WHERE v.valid_from IS NOT NULL AND v.distinct_id IN (SELECT distinct_id FROM pending)"]
    if settings.event_identity_cutoff is not None:
        changes.append(
            "SELECT e.distinct_id, e.time AS t FROM mp_events e "
            f"WHERE e.mparticle_user_id IS NOT NULL AND e.time >= {sql_ts(settings.event_identity_cutoff)} "
            f"AND e.time <= {sql_ts(at)} AND e.distinct_id IN (SELECT distinct_id FROM pending)")
    if settings.fallback == "strict":
        for since in sorted({e.since for e in settings.eit_timeline if e.since is not None}):
            changes.append(f"SELECT DISTINCT distinct_id, {sql_ts(since)} AS t FROM pending")
    p.add(
        "change_runs",
        f"""
        SELECT DISTINCT distinct_id, k
        FROM (SELECT c.distinct_id, {grid.k_at_or_after_sql("c.t")} AS k FROM ({" UNION ".join(changes)}) c) x
        WHERE k <= {grid.last}
        """,
    )
    p.add(
        "redecided",
        """
        SELECT DISTINCT w.distinct_id, c.k
        FROM pending w JOIN change_runs c ON c.distinct_id = w.distinct_id AND c.k > w.k0
        WHERE w.k_end IS NULL OR c.k < w.k_end
        """,
    )


def final_members_stage(n: Names, at: datetime) -> Pipeline:
    """Members at ``at`` with the decision mParticle holds for them and the run that sent it
    (``sent_at``): for a member of the last successful run's membership, its latest send; a member
    mParticle does not hold (not in that membership: never sent, or left since) is resolved at
    ``at`` (``k`` and ``sent_at`` NULL). One aggregation per member over its transitions, email
    and sends together."""
    dec_null = "CAST(NULL AS STRUCT(k BIGINT, t TIMESTAMP)) AS dec"
    p = Pipeline()
    p.add("last_success", f"SELECT max(version) AS version FROM {n.runs} WHERE sent")
    p.add(
        "member_facts",
        f"""
        SELECT distinct_id, sum(delta) AS member, sum(held_delta) AS held, max(member_email) AS member_email,
               max(dec) AS dec
        FROM (
            SELECT t.distinct_id, t.delta, CASE WHEN t.version <= ls.version THEN t.delta ELSE 0 END AS held_delta,
                   CAST(NULL AS VARCHAR) AS member_email, {dec_null}
            FROM {n.transitions} t CROSS JOIN last_success ls
            UNION ALL
            SELECT me.distinct_id, 0 AS delta, 0 AS held_delta, me.member_email, {dec_null}
            FROM {n.member_emails} me
            UNION ALL
            SELECT d.distinct_id, 0 AS delta, 0 AS held_delta, CAST(NULL AS VARCHAR) AS member_email,
                   struct_pack(k := CAST(d.k AS BIGINT), t := CAST(d.resolve_time AS TIMESTAMP)) AS dec
            FROM {n.decisions} d
            WHERE d.is_send
        ) x
        GROUP BY distinct_id
        HAVING sum(delta) = 1
        """,
    )
    p.add(
        "final_members",
        f"""
        SELECT c.distinct_id, c.member_email, c.cur.k AS k, coalesce(c.cur.t, {sql_ts(at)}) AS resolve_time,
               r.run_at AS sent_at
        FROM (SELECT *, CASE WHEN held = 1 THEN dec END AS cur FROM member_facts) c
        LEFT JOIN {n.runs} r ON r.k = c.cur.k
        """,
    )
    return p


def requests_stage(n: Names, settings: SyncSettings) -> Pipeline:
    """Every (member, time) to resolve, once: the decisions, and the members at ``at`` not sent in
    their current stint (resolved at ``at``)."""
    if settings.resolution_time == "send":
        # a member not sent in its current stint is resolved at `at`, which may also be the time
        # of a provisional decision (a failed run at `at`): UNION, not UNION ALL
        sql = f"""
        SELECT distinct_id, resolve_time FROM {n.decisions}
        UNION
        SELECT distinct_id, resolve_time FROM {n.final_members} WHERE k IS NULL
        """
    else:
        sql = f"""
        SELECT DISTINCT distinct_id, resolve_time FROM {n.decisions}
        UNION
        SELECT distinct_id, resolve_time FROM {n.final_members}
        """
    return Pipeline().add("requests", sql)


def member_profiles_stage(n: Names, history_table: bool) -> Pipeline:
    """The Mixpanel profile versions of the cohort's members (anyone with a transition), read
    once for the resolution at each send time and for the context at ``at``
    (:func:`cohortlab.simulation.resolution.profile_versions_sql`; ``history_table``: from
    ``mp_profile_history``, else ``mp_profiles``)."""
    return Pipeline().add(
        "member_profiles",
        profile_versions_sql("multi" if history_table else "none", only=n.transitions),
    )


def resolved_stage(n: Names, settings: SyncSettings, history: ProfileHistory) -> Pipeline:
    p = Pipeline()
    p.add("reqs", f"SELECT distinct_id, resolve_time FROM {n.requests}")
    add_resolve_steps(p, "reqs", settings, history, versions=n.member_profiles)
    return p


def targets_stage(n: Names) -> Pipeline:
    """What each resolved request writes to: ``target`` BIGINT = the MPID of a matched decision,
    or the number of the orphan that an ``orphan_created`` identifier creates (one orphan per
    distinct identifier); ``is_orphan`` tells them apart."""
    p = Pipeline()
    p.add(
        "orphan_numbers",
        f"""
        SELECT identifier, row_number() OVER (ORDER BY identifier) AS orphan_no
        FROM (SELECT DISTINCT identifier FROM {n.resolved} WHERE status = 'orphan_created') x
        """,
    )
    p.add(
        "targets",
        f"""
        SELECT r.distinct_id, r.resolve_time, r.status = 'orphan_created' AS is_orphan,
               CAST(coalesce(r.mpid, o.orphan_no) AS BIGINT) AS target,
               CASE WHEN r.status = 'orphan_created' THEN r.identifier END AS orphan_identifier
        FROM {n.resolved} r
        LEFT JOIN orphan_numbers o ON r.status = 'orphan_created' AND o.identifier = r.identifier
        WHERE r.status IN ('matched', 'orphan_created')
        """,
    )
    return p


def decision_targets_stage(n: Names) -> Pipeline:
    """Each decision with its target (NULL: the member is sent but writes nothing)."""
    return Pipeline().add(
        "decision_targets",
        f"""
        SELECT d.distinct_id, d.k, d.is_send, coalesce(t.is_orphan, FALSE) AS is_orphan, t.target
        FROM {n.decisions} d
        LEFT JOIN {n.targets} t ON t.distinct_id = d.distinct_id AND t.resolve_time = d.resolve_time
        """,
    )


def resolution_stage(n: Names, ref: CohortRef, at: datetime, settings: SyncSettings, history: ProfileHistory) -> Pipeline:
    """The members at ``at`` with the outcome of their latest decision (``resolution``)."""
    p = Pipeline()
    p.add(
        "member_outcomes",
        f"""
        SELECT f.distinct_id, f.member_email, r.identifier_source, r.identifier, r.mpid, r.status, r.gap_reason,
               r.precision_loss_form, r.self_profiles, r.self_mpid, f.resolve_time AS resolved_at, f.sent_at
        FROM {n.final_members} f
        JOIN {n.resolved} r ON r.distinct_id = f.distinct_id AND r.resolve_time = f.resolve_time
        """,
    )
    add_context_steps(p, "member_outcomes", at, settings, history, ref.name, versions=n.member_profiles)
    return p


def _membership_stage(ref: CohortRef, at: datetime, output: str, only: str | None = None) -> Pipeline:
    p = Pipeline()
    add_membership_steps(p, ref, at, only=only)
    names = [s.name for s in p.steps]
    return Pipeline(p.steps[: names.index(output) + 1])


# ----------------------------------------------------------------------------- orchestration
@dataclass
class SyncRun:
    cohort: CohortRef
    at: datetime
    t0: datetime
    settings: SyncSettings
    attribute: str
    names: Names
    step_counts: dict[str, dict[str, int]] = field(default_factory=dict)


RESULT_TABLES = ("resolution", "attribute_state", "timeline")


def membership_stages(ref: CohortRef, at: datetime, names: Names | None = None,
                      history: ProfileHistory = "none", only: str | None = None) -> list[tuple[str, Pipeline]]:
    """The first half of the plan, (output table, pipeline) in execution order: the cohort's
    membership over time and its members' Mixpanel profile versions (``member_profiles``: how
    they are versioned, :func:`member_history_kind`, decides how the second half reads them)."""
    n = names or Names("sim_")
    return [
        (n.versions, _membership_stage(ref, at, "versions")),
        (n.transitions, _membership_stage(ref, at, "transitions", only)),
        (n.member_emails, _membership_stage(ref, at, "member_emails", only)),
        (n.member_profiles, member_profiles_stage(n, history != "none")),
    ]


def sync_stages(
    ref: CohortRef, at: datetime, t0: datetime, settings: SyncSettings, attribute: str,
    names: Names | None = None, history: ProfileHistory = "none",
) -> list[tuple[str, Pipeline]]:
    """The second half of the plan: runs, sends, decisions, resolution at each decision, writes,
    attribute state and timeline, reading the members' profiles as ``history`` says."""
    n = names or Names("sim_")
    grid = RunGrid(t0, at, settings)
    return [
        (n.runs, runs_stage(n, grid, webhook=ref.source == "webhooks")),
        (n.version_runs, version_runs_stage(n)),
        (n.sends, sends_stage(n)),
        (n.seen_deltas, seen_deltas_stage(n)),
        (n.decisions, decisions_stage(n, grid)),
        (n.final_members, final_members_stage(n, at)),
        (n.requests, requests_stage(n, settings)),
        (n.resolved, resolved_stage(n, settings, history)),
        (n.targets, targets_stage(n)),
        (n.decision_targets, decision_targets_stage(n)),
        (n.member_kinds, member_kinds_stage(n)),
        (n.s_deltas, s_deltas_stage(n)),
        (n.writes, writes_stage(n, settings)),
        (n.state, state_stage(n)),
        (n.resolution, resolution_stage(n, ref, at, settings, history)),
        (n.attribute_state, attribute_state_stage(n, ref, at, attribute)),
        (n.timeline, timeline_stage(n)),
    ]


def stages(
    ref: CohortRef, at: datetime, t0: datetime, settings: SyncSettings, attribute: str,
    names: Names | None = None, history: ProfileHistory = "none", only: str | None = None,
) -> list[tuple[str, Pipeline]]:
    """(output table, pipeline) in execution order, both halves, for a known ``history``.
    ``only``: a relation of ``distinct_id``s; the simulation of just those members (see
    :func:`run_sync`)."""
    return (membership_stages(ref, at, names, history, only)
            + sync_stages(ref, at, t0, settings, attribute, names, history))


# the result tables that no later step reads: run_sync(skip=...) leaves them out
SKIPPABLE = ("resolution", "attribute_state", "timeline")


def run_sync(
    engine: Engine,
    cohort: str | CohortRef,
    at: datetime | str | None = None,
    settings: SyncSettings | dict | str | None = None,
    *,
    source: Source = "auto",
    debug: bool = False,
    names: Names | None = None,
    only: str | None = None,
    history: ProfileHistory | None = None,
    skip: tuple[str, ...] = (),
) -> SyncRun:
    """Run the sync simulation up to ``at`` into the tables of ``names`` (default prefix
    ``sim_``). Every table is temporary (connection-scoped); :class:`SimulationResult.publish`
    (cohortlab.simulation.simulate) copies the results to their documented names.

    ``only``: a relation with a ``distinct_id`` column: simulate just those members. Runs, a
    member's sends, decisions and resolution depend only on its own rows, so they equal those of
    the full simulation; the attribute state of a profile equals the full one when ``only`` holds
    every member that ever resolves to it (what :mod:`cohortlab.simulation.explain` ensures);
    the timeline's counts are those of the members simulated.

    ``history``: how Mixpanel profiles are known (:func:`profile_history_kind`), when the
    caller knows it already (one query fewer); default: read from the database. ``skip``: result
    tables not to make (``resolution``, ``attribute_state``, ``timeline``: no later table reads
    them), when the caller reads only the others (the attribute state, or the timeline)."""
    unknown = set(skip) - set(SKIPPABLE)
    if unknown:
        raise ValueError(f"run_sync: only {', '.join(SKIPPABLE)} can be skipped, not {sorted(unknown)}")
    settings = SyncSettings.coerce(settings)
    ref = cohort if isinstance(cohort, CohortRef) else find_cohort(engine, cohort, source)
    attribute = settings.attribute_name(ref.name)
    at_ = resolve_at(ref, at)
    t0 = settings.start or ref.first_time
    settings.check_runs(to_utc(t0), to_utc(at_))  # refuse a run grid that would exhaust the machine
    n = names or Names("sim_")
    run = SyncRun(ref, at_, t0, settings, attribute, n)
    known = history
    if history is None:  # "none" or not is one row away; "single" or "multi" the members' versions say
        history = "single" if has_profile_history(engine) else "none"

    def play(plan: list[tuple[str, Pipeline]]) -> None:
        for table, pipeline in plan:
            step = table[len(n.prefix):]
            if step not in skip:
                run.step_counts[step] = pipeline.run(engine, table, debug=debug, temp=True)

    play(membership_stages(ref, at_, n, history, only))
    if known is None and history != "none":  # "single" or "multi": the members' versions say which
        history = member_history_kind(engine, n.member_profiles)
    play(sync_stages(ref, at_, t0, settings, attribute, n, history))
    return run


__all__ = [
    "ATTRIBUTE_STATE_COLUMNS",
    "FULL_KINDS",
    "Names",
    "RESULT_TABLES",
    "RunGrid",
    "SyncRun",
    "TIMELINE_COLUMNS",
    "membership_stages",
    "run_sync",
    "stages",
    "sync_stages",
]
