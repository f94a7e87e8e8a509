"""What the feed writes and what the timeline counts (docs/rules.md#sync-over-time):
the stages of :mod:`cohortlab.simulation.sync` after the sends and decisions are known.

* :func:`member_kinds_stage` — ``<p>member_kinds(distinct_id, simple, target, is_orphan)``:
  members whose decisions all reach one target;
* :func:`s_deltas_stage` — ``<p>s_deltas(target, k, s_delta)``: S, the profiles that should be
  true, from each member's membership and latest decision;
* :func:`writes_stage` — ``<p>writes(k, is_orphan, target, value, is_clear)``: every attribute
  write (adds and full runs to the target decided at that run, removes to the target of the
  member's latest earlier decision, ``apply_order``: docs/rules.md#dynamic-sync; a one-time
  export's one write: docs/rules.md#one-time-export), plus full-refresh clear candidates;
* :func:`state_stage` — ``<p>state(is_orphan, target, k, next_k, in_s, is_true, is_written,
  is_write, is_change)``: per target (an orphan profile too: docs/rules.md#orphans), one row per
  run at which it changes;
* :func:`attribute_state_stage` and :func:`timeline_stage` — the result tables (columns in
  :mod:`cohortlab.simulation.sync`; docs/rules.md#timeline, with the profiles set ``false``:
  docs/rules.md#audiences-on-false).

``n`` is the run's :class:`cohortlab.simulation.sync.Names` (table prefix ``sim_<run id>_``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from cohortlab.pipeline import Pipeline, sql_str, sql_ts
from cohortlab.settings import SyncSettings
from cohortlab.simulation.membership import CohortRef

if TYPE_CHECKING:
    from cohortlab.simulation.sync import Names


def member_kinds_stage(n: Names) -> Pipeline:
    """Per member: ``simple`` when every decision has the same target (always so with
    ``resolution_time="as_of"``, and for most members with ``"send"``), and that target. Simple
    members need no per-member window in the later stages."""
    return Pipeline().add(
        "member_kinds",
        f"""
        SELECT distinct_id,
               count(target) = 0 OR (count(target) = count(*) AND min(target) = max(target)
                                     AND bool_and(is_orphan) = bool_or(is_orphan)) AS simple,
               max(target) AS target, bool_or(is_orphan) AS is_orphan
        FROM {n.decision_targets}
        GROUP BY distinct_id
        """,
    )


def s_deltas_stage(n: Names) -> Pipeline:
    """S, the profiles that should be true: at run k, the linked targets of the latest decisions
    of the members of M(k). A simple member (one target) adds its membership changes (at the
    first run that sees them) to its target; for the others one window pass per member over
    membership changes and decisions: each change of its S target gives -1 / +1."""
    w = "PARTITION BY distinct_id ORDER BY k"
    p = Pipeline()
    p.add(
        "simple_deltas",
        f"""
        SELECT mk.target, vr.k, t.delta AS d
        FROM {n.transitions} t
        JOIN {n.version_runs} vr ON vr.version = t.version
        JOIN {n.member_kinds} mk ON mk.distinct_id = t.distinct_id
        WHERE mk.simple AND mk.target IS NOT NULL AND NOT mk.is_orphan
        """,
    )
    p.add(
        "member_points",
        f"""
        SELECT distinct_id, k, sum(delta) AS delta, max(dec) AS dec
        FROM (
            SELECT t.distinct_id, vr.k, t.delta,
                   CAST(NULL AS STRUCT(k BIGINT, is_orphan BOOLEAN, target BIGINT)) AS dec
            FROM {n.transitions} t
            JOIN {n.version_runs} vr ON vr.version = t.version
            JOIN {n.member_kinds} mk ON mk.distinct_id = t.distinct_id AND NOT mk.simple
            UNION ALL
            SELECT dt.distinct_id, dt.k, 0 AS delta,
                   struct_pack(k := CAST(dt.k AS BIGINT), is_orphan := dt.is_orphan, target := dt.target) AS dec
            FROM {n.decision_targets} dt
            JOIN {n.member_kinds} mk ON mk.distinct_id = dt.distinct_id AND NOT mk.simple
        ) x
        GROUP BY distinct_id, k
        """,
    )
    p.add(
        "member_running",
        f"""
        SELECT distinct_id, k,
               sum(delta) OVER ({w} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS member,
               max(dec) OVER ({w} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS dec
        FROM member_points
        """,
    )
    p.add(
        "member_s",
        f"""
        SELECT distinct_id, k, s_target,
               lag(s_target) OVER ({w}) AS prev_target
        FROM (
            SELECT distinct_id, k,
                   CASE WHEN member > 0 AND NOT dec.is_orphan THEN dec.target END AS s_target
            FROM member_running
        ) x
        """,
    )
    p.add(
        "s_deltas",
        """
        SELECT target, k, sum(d) AS s_delta
        FROM (
            SELECT s_target AS target, k, 1 AS d FROM member_s
            WHERE s_target IS NOT NULL AND (prev_target IS NULL OR prev_target <> s_target)
            UNION ALL
            SELECT prev_target AS target, k, -1 AS d FROM member_s
            WHERE prev_target IS NOT NULL AND (s_target IS NULL OR prev_target <> s_target)
            UNION ALL
            SELECT target, k, d FROM simple_deltas
        ) x
        GROUP BY target, k
        HAVING sum(d) <> 0
        """,
    )
    return p


def writes_stage(n: Names, settings: SyncSettings) -> Pipeline:
    """Every attribute write: (run k, target, value), plus full-refresh clear candidates.
    An add or a full run writes to the target decided at that run; a remove to the target of
    the member's latest earlier decision sent (not a provisional one: what mParticle holds)."""
    removes_first = settings.apply_order == "removes_then_adds"
    p = Pipeline()
    p.add(
        "add_targets",
        f"""
        SELECT s.k, s.is_full, dt.is_orphan, dt.target, s.net
        FROM {n.sends} s JOIN {n.decision_targets} dt ON dt.distinct_id = s.distinct_id AND dt.k = s.k
        WHERE s.net > 0 AND dt.target IS NOT NULL
        """,
    )
    p.add(
        "remove_targets",
        f"""
        SELECT s.k, FALSE AS is_full, mk.is_orphan, mk.target, -1 AS net
        FROM {n.sends} s JOIN {n.member_kinds} mk ON mk.distinct_id = s.distinct_id
        WHERE s.net < 0 AND mk.simple AND mk.target IS NOT NULL
        UNION ALL
        SELECT x.k, FALSE AS is_full, x.dec.is_orphan AS is_orphan, x.dec.target AS target, -1 AS net
        FROM (
            SELECT s.k, s.distinct_id,
                   max(struct_pack(k := dt.k, is_orphan := dt.is_orphan, target := dt.target)) AS dec
            FROM {n.sends} s
            JOIN {n.member_kinds} mk ON mk.distinct_id = s.distinct_id AND NOT mk.simple
            JOIN {n.decision_targets} dt ON dt.distinct_id = s.distinct_id AND dt.k < s.k AND dt.is_send
            WHERE s.net < 0
            GROUP BY s.k, s.distinct_id
        ) x
        WHERE x.dec.target IS NOT NULL
        """,
    )
    p.add(
        "target_changes",
        """
        SELECT k, is_full, is_orphan, target,
               max(CASE WHEN net > 0 THEN 1 ELSE 0 END) AS any_add,
               max(CASE WHEN net < 0 THEN 1 ELSE 0 END) AS any_remove
        FROM (SELECT * FROM add_targets UNION ALL SELECT * FROM remove_targets) x
        GROUP BY k, is_full, is_orphan, target
        """,
    )
    # last write wins inside a run: removes then adds -> true if any add; adds then removes ->
    # false if any remove
    last_write = "any_add = 1" if removes_first else "any_remove = 0"
    p.add(
        "base_writes",
        f"""
        SELECT k, is_orphan, target, CASE WHEN is_full THEN TRUE ELSE {last_write} END AS value, FALSE AS is_clear
        FROM target_changes
        """,
    )
    if settings.refresh_clears_stale and settings.sync_type == "dynamic":
        p.add(
            "written_before",
            "SELECT is_orphan, target, min(k) AS first_k FROM base_writes GROUP BY is_orphan, target",
        )
        # candidates: every target written before the refresh and not written by it; those that
        # are not `true` just before the refresh are no-ops, dropped in the state stage
        p.add(
            "clear_candidates",
            f"""
            SELECT r.k, w.is_orphan, w.target, FALSE AS value, TRUE AS is_clear
            FROM {n.runs} r
            JOIN written_before w ON w.first_k < r.k
            LEFT JOIN base_writes b ON b.k = r.k AND b.is_orphan = w.is_orphan AND b.target = w.target
            WHERE r.kind = 'full_refresh' AND b.target IS NULL
            """,
        )
        p.add("writes", "SELECT * FROM base_writes UNION ALL SELECT * FROM clear_candidates")
    else:
        p.add("writes", "SELECT * FROM base_writes")
    return p


def state_stage(n: Names) -> Pipeline:
    """Per target, one row per run at which it changes: S-membership count and attribute value,
    in ONE window pass. The last write's value up to run k is ``max(2k + value)`` over writes so
    far, mod 2 (k grows, so the maximum is the last write); ``next_k`` (lead) says until which
    run a row's state holds. ``is_write``: the run wrote the target (a clear of a value that is
    not ``true`` is none); ``is_change``: that write changed its value (the first write, or one of
    the other value than the write before: a run re-writing the value it had, a refresh writing
    ``true`` again, is a write but no change; docs/rules.md#observed-state)."""
    w = "PARTITION BY is_orphan, target ORDER BY k"
    p = Pipeline()
    p.add(
        "events",
        f"""
        SELECT is_orphan, target, k, sum(s_delta) AS s_delta, max(w_code) AS w_code, max(is_clear) AS is_clear
        FROM (
            SELECT FALSE AS is_orphan, target, k, s_delta, CAST(NULL AS BIGINT) AS w_code, 0 AS is_clear
            FROM {n.s_deltas}
            UNION ALL
            SELECT is_orphan, target, k, 0 AS s_delta, 2 * k + CASE WHEN value THEN 1 ELSE 0 END AS w_code,
                   CASE WHEN is_clear THEN 1 ELSE 0 END AS is_clear
            FROM {n.writes}
        ) x
        GROUP BY is_orphan, target, k
        """,
    )
    p.add(
        "running",
        f"""
        SELECT is_orphan, target, k, w_code, is_clear,
               sum(s_delta) OVER ({w} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS s_count,
               max(w_code) OVER ({w} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS last_code,
               max(w_code) OVER ({w} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_code,
               lead(k) OVER ({w}) AS next_k
        FROM events
        """,
    )
    p.add(
        "state",
        """
        SELECT is_orphan, target, k, next_k,
               CASE WHEN s_count > 0 THEN 1 ELSE 0 END AS in_s,
               CASE WHEN last_code % 2 = 1 THEN 1 ELSE 0 END AS is_true,
               CASE WHEN last_code IS NOT NULL THEN 1 ELSE 0 END AS is_written,
               CASE WHEN w_code IS NOT NULL AND NOT (is_clear = 1 AND coalesce(prev_code % 2, 0) = 0)
                    THEN 1 ELSE 0 END AS is_write,
               CASE WHEN w_code IS NOT NULL AND (prev_code IS NULL OR prev_code % 2 <> w_code % 2)
                    THEN 1 ELSE 0 END AS is_change
        FROM running
        """,
    )
    return p


def attribute_state_stage(n: Names, ref: CohortRef, at: datetime, attribute: str) -> Pipeline:
    """One row per profile ever written: its value after the last run, the last run that wrote it
    (``last_write_at``) and the one that wrote that value first after another
    (``changed_at``: from then on it was not changed, only perhaps written again)."""
    p = Pipeline()
    p.add(
        "per_target",
        f"""
        SELECT is_orphan, target, max(CASE WHEN is_write = 1 THEN k END) AS last_k, sum(is_write) AS writes,
               max(CASE WHEN is_change = 1 THEN k END) AS changed_k,
               max(CASE WHEN next_k IS NULL THEN is_true END) = 1 AS value
        FROM {n.state}
        GROUP BY is_orphan, target
        HAVING sum(is_write) > 0
        """,
    )
    p.add(
        "orphan_names",
        f"SELECT DISTINCT target, orphan_identifier FROM {n.targets} WHERE is_orphan",
    )
    p.add(
        "attribute_state",
        f"""
        SELECT {sql_str(ref.name)} AS cohort_name, {sql_str(attribute)} AS attribute_name,
               CASE WHEN NOT t.is_orphan THEN t.target END AS mpid,
               o.orphan_identifier, t.is_orphan, t.value, r.run_at AS last_write_at,
               CAST(t.writes AS BIGINT) AS writes, {sql_ts(at)} AS as_of, c.run_at AS changed_at
        FROM per_target t
        JOIN {n.runs} r ON r.k = t.last_k
        LEFT JOIN {n.runs} c ON c.k = t.changed_k
        LEFT JOIN orphan_names o ON t.is_orphan AND o.target = t.target
        """,
    )
    return p


def timeline_stage(n: Names) -> Pipeline:
    running = "OVER (ORDER BY r.k ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    p = Pipeline()
    p.add(
        "version_sizes",
        f"""
        SELECT v.version, v.at_time,
               sum(coalesce(t.d, 0)) OVER (ORDER BY v.version ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS members
        FROM {n.versions} v
        LEFT JOIN (SELECT version, sum(delta) AS d FROM {n.transitions} GROUP BY version) t ON t.version = v.version
        """,
    )
    p.add(
        "send_counts",
        f"""
        SELECT k, sum(CASE WHEN net > 0 THEN 1 ELSE 0 END) AS adds, sum(CASE WHEN net < 0 THEN 1 ELSE 0 END) AS removes
        FROM {n.sends} GROUP BY k
        """,
    )
    # a state row counts from its run k until (excluding) next_k: +1 at k, -1 at next_k
    p.add(
        "state_flags",
        f"""
        SELECT k, next_k, in_s,
               CASE WHEN is_orphan THEN 0 ELSE is_true END AS true_linked,
               CASE WHEN is_orphan THEN is_true ELSE 0 END AS true_orphan,
               in_s * is_true AS true_and_should,
               is_written - is_true AS is_false
        FROM {n.state}
        """,
    )
    p.add(
        "run_deltas",
        """
        SELECT k, sum(in_s) AS d_s, sum(true_linked) AS d_linked, sum(true_orphan) AS d_orphan,
               sum(true_and_should) AS d_both, sum(is_false) AS d_false
        FROM (
            SELECT k, in_s, true_linked, true_orphan, true_and_should, is_false FROM state_flags
            UNION ALL
            SELECT next_k AS k, -in_s, -true_linked, -true_orphan, -true_and_should, -is_false FROM state_flags
            WHERE next_k IS NOT NULL
        ) x
        GROUP BY k
        """,
    )
    p.add(
        "counts",
        f"""
        SELECT r.k, r.run_at, r.kind, r.sent, r.failed, coalesce(vs.members, 0) AS members, vs.at_time AS membership_as_of,
               coalesce(se.adds, 0) AS adds, coalesce(se.removes, 0) AS removes,
               sum(coalesce(rd.d_linked, 0)) {running} AS true_linked,
               sum(coalesce(rd.d_orphan, 0)) {running} AS orphans_true,
               sum(coalesce(rd.d_s, 0)) {running} AS should_be_true,
               sum(coalesce(rd.d_both, 0)) {running} AS true_and_should,
               sum(coalesce(rd.d_false, 0)) {running} AS false_count
        FROM {n.runs} r
        LEFT JOIN version_sizes vs ON vs.version = r.version
        LEFT JOIN send_counts se ON se.k = r.k
        LEFT JOIN run_deltas rd ON rd.k = r.k
        """,
    )
    p.add(
        "timeline",
        """
        SELECT run_at, CAST(members AS BIGINT) AS members, CAST(adds AS BIGINT) AS adds,
               CAST(removes AS BIGINT) AS removes, failed, kind = 'full_refresh' AS full_refresh,
               CAST(true_linked + orphans_true AS BIGINT) AS true_count,
               CAST(should_be_true - true_and_should AS BIGINT) AS not_yet_true,
               CAST(true_linked - true_and_should AS BIGINT) AS stale_true,
               k AS run, kind, sent, CAST(should_be_true AS BIGINT) AS should_be_true,
               CAST(true_linked AS BIGINT) AS true_linked, CAST(orphans_true AS BIGINT) AS orphans_true,
               membership_as_of, CAST(false_count AS BIGINT) AS false_count
        FROM counts
        """,
    )
    return p


__all__ = ["attribute_state_stage", "member_kinds_stage", "s_deltas_stage", "state_stage", "timeline_stage", "writes_stage"]
