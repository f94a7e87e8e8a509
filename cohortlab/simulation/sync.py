"""docs/rules.md#sync-over-time: the Mixpanel Cohorts feed played forward in time, set-based.

What is simulated
-----------------
* **Membership over time** (:func:`cohortlab.simulation.resolution.add_membership_steps`): the cohort's
  snapshots, or its replayed webhook messages, as *versions* (the times at which membership may
  change) and *transitions* (a member enters / leaves at a version).
* **Resolution** (docs/rules.md#resolution) of everyone who was a member at any version up to the as-of time
  ``at``, computed **once, at ``at``** ("resolution uses the loaded profiles as they are; it does
  not change over time"): a member resolves to the same MPID (or orphan, or nothing) in every run.
* **Runs** at ``t0 + k·cadence`` for k = 0 .. while ``<= at`` (``t0`` = ``settings.start``, by
  default the first snapshot / first webhook). A run sees M(run) = the latest version at or
  before it. A run inside a pause window ``[start, end)`` fails: nothing is sent and the last
  successful membership stays as it was.
  - ``dynamic``: the first successful run is a full sync (``kind='first'``: every target of M(t)
    becomes ``true``). A later successful run whose gap since the last successful run is longer
    than ``snapshot_ttl`` is a full refresh (``kind='full_refresh'``: targets of M(t) become
    ``true``; with ``refresh_clears_stale`` every target that is ``true`` and not a target of
    M(t) becomes ``false``). Every other successful run (``kind='diff'``) sends the diff between
    M(t) and the membership of the last successful run: removed members' targets become
    ``false``, added members' targets ``true``, in ``apply_order`` (last write wins on a target
    shared by several members).
  - ``one_time``: one export at t0 (``kind='one_time'``): every target of M(t0) becomes
    ``true``; nothing changes afterwards. Later grid points are kept in the timeline as
    ``kind='observation'`` rows (nothing sent) so that staleness can be followed. Pauses do not
    apply to a one-time export.
* **Targets**: a ``matched`` member's MPID; with ``create_and_update``, an ``orphan_created``
  member's identifier (one orphan profile per distinct identifier, created the first time it is
  sent, then following the same true/false writes). Unmatched members are sent (they count in
  adds/removes) but write nothing.

How it stays fast
-----------------
Nothing loops over runs in Python. Membership only changes at versions, and the attribute only
at runs that send something, so: a ``runs`` table (``unnest(generate_series(0, K))``) gets the
version each run sees with one join; a transition at version v belongs to the one diff run whose
(previous version, version] range contains v, so diffs are one join + group by; full runs select
the members at their version; per target, S-membership and attribute value are followed in ONE
window pass over the runs at which the target changes (``sim_state``); the timeline's counts
are running sums of ±1 deltas per run. Snapshot membership becomes enter/leave transitions via
presence bitmasks (no window over every snapshot row). Work is proportional to members + churn
+ full runs, not to members × runs.

Columns of ``timeline``: ``run_at, members (|M(t)|), adds, removes (members sent; a full sync or
refresh counts every member as an add), failed, full_refresh (after a gap > snapshot_ttl; the
first run is ``kind='first'``, not a refresh), true_count (|T| after the run, orphans included),
not_yet_true (|S minus T|), stale_true (|T minus S| among linked profiles)``, and for context ``run``
(k), ``kind`` (first | diff | full_refresh | failed | one_time | observation), ``sent``,
``should_be_true`` (|S|), ``true_linked``, ``orphans_true``, ``membership_as_of`` (time of the
snapshot / webhook message the run saw).

Columns of ``attribute_state`` (one row per profile that was ever written):
``cohort_name, attribute_name, mpid (NULL for orphans), orphan_identifier, is_orphan, value
(after the last run <= at), last_write_at, writes, as_of``.

Tables written (stage by stage, each a :class:`cohortlab.pipeline.Pipeline` of named steps):
``sim_versions``, ``sim_transitions``, ``sim_member_emails``, ``sim_population`` (resolution of
everyone ever a member, with ``is_member``), ``resolution`` (members at ``at``), ``sim_targets``,
``sim_member_targets`` (transitions with each member's target),
``sim_runs``, ``sim_member_changes``, ``sim_writes`` (attribute writes and full-refresh clear
candidates), ``sim_state`` (per target and run: in S, true, written), ``attribute_state`` and
``timeline``. ``sim_*`` tables are temporary (connection-scoped).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd

from cohortlab.engines.base import Engine
from cohortlab.pipeline import Pipeline, sql_bool, sql_str, sql_ts
from cohortlab.simulation.resolution import (
    RESOLUTION_COLUMNS,
    CohortRef,
    Source,
    add_membership_steps,
    find_cohort,
    resolution_df,
    resolution_pipeline,
    resolve_at,
)
from cohortlab.settings import SyncSettings
from cohortlab.times import to_utc

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)

FULL_KINDS = ("first", "one_time", "full_refresh")
TIMELINE_COLUMNS = [
    "run_at", "members", "adds", "removes", "failed", "full_refresh", "true_count", "not_yet_true", "stale_true",
    # context
    "run", "kind", "sent", "should_be_true", "true_linked", "orphans_true", "membership_as_of",
]
ATTRIBUTE_STATE_COLUMNS = [
    "cohort_name", "attribute_name", "mpid", "orphan_identifier", "is_orphan", "value", "last_write_at", "writes",
    "as_of",
]


def _us(t: datetime) -> int:
    return round((to_utc(t) - _EPOCH) / _US)


def _in(values) -> str:
    return "(" + ", ".join(sql_str(v) for v in values) + ")"


# ----------------------------------------------------------------------------- stages
def membership_stage(ref: CohortRef, at: datetime, output: str) -> Pipeline:
    """The membership steps up to ``output`` (versions | transitions | member_emails)."""
    p = Pipeline()
    add_membership_steps(p, ref, at)
    names = [s.name for s in p.steps]
    return Pipeline(p.steps[: names.index(output) + 1])


def population_stage(ref: CohortRef, at: datetime, settings: SyncSettings) -> Pipeline:
    """docs/rules.md#resolution for everyone who was a member up to ``at``, reading the materialised membership."""
    p = resolution_pipeline(ref, at, settings, population="ever")
    names = [s.name for s in p.steps]
    q = Pipeline()
    q.add("versions", "SELECT version, at_time FROM sim_versions")
    q.add("transitions", "SELECT distinct_id, version, delta FROM sim_transitions")
    q.add("member_emails", "SELECT distinct_id, member_email FROM sim_member_emails")
    for s in p.steps[names.index("members"):]:
        q.add(s.name, s.sql)
    return q


def targets_stage() -> Pipeline:
    """What each resolved member writes to: ``target`` BIGINT = the MPID of a matched member, or
    the number of the orphan that an ``orphan_created`` member's identifier creates (one orphan per
    distinct identifier); ``is_orphan`` tells them apart."""
    p = Pipeline()
    p.add(
        "orphan_numbers",
        """
        SELECT identifier, row_number() OVER (ORDER BY identifier) AS orphan_no
        FROM (SELECT DISTINCT identifier FROM sim_population WHERE status = 'orphan_created') x
        """,
    )
    p.add(
        "targets",
        """
        SELECT sp.distinct_id, sp.status = 'orphan_created' AS is_orphan,
               CAST(coalesce(sp.mpid, o.orphan_no) AS BIGINT) AS target,
               CASE WHEN sp.status = 'orphan_created' THEN sp.identifier END AS orphan_identifier
        FROM sim_population sp
        LEFT JOIN orphan_numbers o ON sp.status = 'orphan_created' AND o.identifier = sp.identifier
        WHERE sp.status IN ('matched', 'orphan_created')
        """,
    )
    return p


def member_targets_stage() -> Pipeline:
    """Transitions with the target each member writes to (NULL target: the member is sent but
    writes nothing), so later stages never join on distinct_id again."""
    return Pipeline().add(
        "member_targets",
        """
        SELECT t.distinct_id, t.version, t.delta, coalesce(tg.is_orphan, FALSE) AS is_orphan, tg.target
        FROM sim_transitions t LEFT JOIN sim_targets tg ON tg.distinct_id = t.distinct_id
        """,
    )


def runs_stage(t0: datetime, at: datetime, settings: SyncSettings) -> Pipeline:
    cad = round(settings.cadence / _US)
    ttl = round(settings.snapshot_ttl / _US)
    last = -1 if at < t0 else int((_us(at) - _us(t0)) // cad)
    one_time = settings.sync_type == "one_time"
    pauses = [] if one_time else settings.pauses
    failed = " OR ".join(f"(run_at >= {sql_ts(w.start)} AND run_at < {sql_ts(w.end)})" for w in pauses) or "FALSE"
    sent = "k = 0" if one_time else f"NOT ({failed})"
    first = "'one_time'" if one_time else "'first'"
    p = Pipeline()
    p.add(
        "runs",
        f"""
        SELECT k, make_timestamp({_us(t0)} + k * {cad}) AS run_at
        FROM (SELECT unnest(generate_series(0, {last})) AS k) g
        """,
    )
    p.add(
        "run_versions",
        """
        SELECT r.k, r.run_at, coalesce(max(v.version), 0) AS version
        FROM runs r LEFT JOIN sim_versions v ON v.at_time <= r.run_at
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
    p.add(
        "sim_runs",
        f"""
        SELECT r.k, r.run_at, r.version, r.failed, r.sent, s.prev_k, s.prev_version,
               CASE WHEN NOT r.sent THEN (CASE WHEN r.failed THEN 'failed' ELSE 'observation' END)
                    WHEN s.prev_k IS NULL THEN {first}
                    WHEN (r.k - s.prev_k) * {cad} > {ttl} THEN 'full_refresh'
                    ELSE 'diff' END AS kind
        FROM run_sent r LEFT JOIN successes s ON s.k = r.k
        """,
    )
    return p


def member_changes_stage() -> Pipeline:
    """Members sent by each successful run: ``net`` +1 added, -1 removed; full runs send every
    member of M(t) (``is_full``)."""
    p = Pipeline()
    p.add(
        "diff_ranges",
        """
        SELECT v.version, r.k
        FROM sim_versions v
        JOIN sim_runs r ON r.kind = 'diff' AND v.version > r.prev_version AND v.version <= r.version
        """,
    )
    p.add(
        "diff_changes",
        """
        SELECT d.k, t.distinct_id, t.is_orphan, t.target, sum(t.delta) AS net
        FROM sim_member_targets t JOIN diff_ranges d ON d.version = t.version
        GROUP BY d.k, t.distinct_id, t.is_orphan, t.target
        HAVING sum(t.delta) <> 0
        """,
    )
    p.add(
        "full_changes",
        f"""
        SELECT r.k, t.distinct_id, t.is_orphan, t.target, 1 AS net
        FROM sim_runs r JOIN sim_member_targets t ON t.version <= r.version
        WHERE r.kind IN {_in(FULL_KINDS)}
        GROUP BY r.k, t.distinct_id, t.is_orphan, t.target
        HAVING sum(t.delta) = 1
        """,
    )
    p.add(
        "member_changes",
        """
        SELECT k, distinct_id, is_orphan, target, net, FALSE AS is_full FROM diff_changes
        UNION ALL
        SELECT k, distinct_id, is_orphan, target, net, TRUE AS is_full FROM full_changes
        """,
    )
    return p


def writes_stage(settings: SyncSettings) -> Pipeline:
    """Every attribute write: (run k, target, value), plus full-refresh clear candidates."""
    removes_first = settings.apply_order == "removes_then_adds"
    p = Pipeline()
    p.add(
        "target_changes",
        """
        SELECT k, is_full, is_orphan, target,
               max(CASE WHEN net > 0 THEN 1 ELSE 0 END) AS any_add,
               max(CASE WHEN net < 0 THEN 1 ELSE 0 END) AS any_remove
        FROM sim_member_changes
        WHERE target IS NOT NULL
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
        # candidates: every target written before the refresh and not sent by it; those that are
        # not `true` just before the refresh are no-ops, dropped in the state stage
        p.add(
            "clear_candidates",
            """
            SELECT r.k, w.is_orphan, w.target, FALSE AS value, TRUE AS is_clear
            FROM sim_runs r
            JOIN written_before w ON w.first_k < r.k
            LEFT JOIN base_writes b ON b.k = r.k AND b.is_orphan = w.is_orphan AND b.target = w.target
            WHERE r.kind = 'full_refresh' AND b.target IS NULL
            """,
        )
        p.add("writes", "SELECT * FROM base_writes UNION ALL SELECT * FROM clear_candidates")
    else:
        p.add("writes", "SELECT * FROM base_writes")
    return p


def state_stage() -> Pipeline:
    """Per target, one row per run at which it changes: S-membership count (how many current
    members resolve to it) and attribute value, in ONE window pass.

    The last write's value up to run k is ``max(2k + value)`` over writes so far, mod 2 (k grows,
    so the maximum is the last write); ``next_k`` (lead) says until which run a row's state holds.
    An S change at version v is seen by the first run (failed or not) whose membership is at
    least that recent.
    """
    w = "PARTITION BY is_orphan, target ORDER BY k"
    p = Pipeline()
    p.add(
        "version_first_run",
        "SELECT v.version, min(r.k) AS k FROM sim_versions v JOIN sim_runs r ON r.version >= v.version GROUP BY v.version",
    )
    p.add(
        "s_deltas",
        """
        SELECT t.is_orphan, t.target, f.k, sum(t.delta) AS s_delta
        FROM sim_member_targets t
        JOIN version_first_run f ON f.version = t.version
        WHERE NOT t.is_orphan AND t.target IS NOT NULL
        GROUP BY t.is_orphan, t.target, f.k
        HAVING sum(t.delta) <> 0
        """,
    )
    p.add(
        "events",
        """
        SELECT is_orphan, target, k, sum(s_delta) AS s_delta, max(w_code) AS w_code, max(is_clear) AS is_clear
        FROM (
            SELECT is_orphan, target, k, s_delta, CAST(NULL AS BIGINT) AS w_code, 0 AS is_clear FROM s_deltas
            UNION ALL
            SELECT is_orphan, target, k, 0 AS s_delta, 2 * k + CASE WHEN value THEN 1 ELSE 0 END AS w_code,
                   CASE WHEN is_clear THEN 1 ELSE 0 END AS is_clear
            FROM sim_writes
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
               CASE WHEN w_code IS NOT NULL AND NOT (is_clear = 1 AND coalesce(prev_code % 2, 0) = 0)
                    THEN 1 ELSE 0 END AS is_write
        FROM running
        """,
    )
    return p


def attribute_state_stage(ref: CohortRef, at: datetime, attribute: str) -> Pipeline:
    p = Pipeline()
    p.add(
        "per_target",
        """
        SELECT is_orphan, target, max(CASE WHEN is_write = 1 THEN k END) AS last_k, sum(is_write) AS writes,
               max(CASE WHEN next_k IS NULL THEN is_true END) = 1 AS value
        FROM sim_state
        GROUP BY is_orphan, target
        HAVING sum(is_write) > 0
        """,
    )
    p.add(
        "orphan_names",
        "SELECT DISTINCT target, orphan_identifier FROM sim_targets WHERE is_orphan",
    )
    p.add(
        "attribute_state",
        f"""
        SELECT {sql_str(ref.name)} AS cohort_name, {sql_str(attribute)} AS attribute_name,
               CASE WHEN NOT t.is_orphan THEN t.target END AS mpid,
               o.orphan_identifier, t.is_orphan, t.value, r.run_at AS last_write_at,
               CAST(t.writes AS BIGINT) AS writes, {sql_ts(at)} AS as_of
        FROM per_target t
        JOIN sim_runs r ON r.k = t.last_k
        LEFT JOIN orphan_names o ON t.is_orphan AND o.target = t.target
        """,
    )
    return p


def timeline_stage() -> Pipeline:
    running = "OVER (ORDER BY r.k ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    p = Pipeline()
    p.add(
        "version_sizes",
        """
        SELECT v.version, v.at_time,
               sum(coalesce(t.d, 0)) OVER (ORDER BY v.version ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS members
        FROM sim_versions v
        LEFT JOIN (SELECT version, sum(delta) AS d FROM sim_transitions GROUP BY version) t ON t.version = v.version
        """,
    )
    p.add(
        "sends",
        """
        SELECT k, sum(CASE WHEN net > 0 THEN 1 ELSE 0 END) AS adds, sum(CASE WHEN net < 0 THEN 1 ELSE 0 END) AS removes
        FROM sim_member_changes GROUP BY k
        """,
    )
    # a state row counts from its run k until (excluding) next_k: +1 at k, -1 at next_k
    p.add(
        "state_flags",
        """
        SELECT k, next_k, in_s,
               CASE WHEN is_orphan THEN 0 ELSE is_true END AS true_linked,
               CASE WHEN is_orphan THEN is_true ELSE 0 END AS true_orphan,
               in_s * is_true AS true_and_should
        FROM sim_state
        """,
    )
    p.add(
        "run_deltas",
        """
        SELECT k, sum(in_s) AS d_s, sum(true_linked) AS d_linked, sum(true_orphan) AS d_orphan,
               sum(true_and_should) AS d_both
        FROM (
            SELECT k, in_s, true_linked, true_orphan, true_and_should FROM state_flags
            UNION ALL
            SELECT next_k AS k, -in_s, -true_linked, -true_orphan, -true_and_should FROM state_flags
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
               sum(coalesce(rd.d_both, 0)) {running} AS true_and_should
        FROM sim_runs r
        LEFT JOIN version_sizes vs ON vs.version = r.version
        LEFT JOIN sends se ON se.k = r.k
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
               membership_as_of
        FROM counts
        """,
    )
    return p


# ----------------------------------------------------------------------------- orchestration
@dataclass
class SyncRun:
    cohort: CohortRef
    at: datetime
    t0: datetime
    settings: SyncSettings
    attribute: str
    step_counts: dict[str, dict[str, int]] = field(default_factory=dict)


def stages(ref: CohortRef, at: datetime, t0: datetime, settings: SyncSettings, attribute: str) -> list[tuple[str, Pipeline, bool]]:
    """(output table, pipeline, temporary?) in execution order."""
    return [
        ("sim_versions", membership_stage(ref, at, "versions"), True),
        ("sim_transitions", membership_stage(ref, at, "transitions"), True),
        ("sim_member_emails", membership_stage(ref, at, "member_emails"), True),
        ("sim_population", population_stage(ref, at, settings), True),
        ("sim_targets", targets_stage(), True),
        ("sim_member_targets", member_targets_stage(), True),
        ("sim_runs", runs_stage(t0, at, settings), True),
        ("sim_member_changes", member_changes_stage(), True),
        ("sim_writes", writes_stage(settings), True),
        ("sim_state", state_stage(), True),
        ("attribute_state", attribute_state_stage(ref, at, attribute), False),
        ("timeline", timeline_stage(), False),
    ]


def run_sync(
    engine: Engine,
    cohort: str | CohortRef,
    at: datetime | str | None = None,
    settings: SyncSettings | dict | str | None = None,
    *,
    source: Source = "auto",
    debug: bool = False,
) -> SyncRun:
    """Run resolution (for everyone ever a member) and the sync simulation up to ``at``.
    Writes ``resolution``, ``attribute_state`` and ``timeline`` (and the ``sim_*`` stages)."""
    settings = SyncSettings.coerce(settings)
    ref = cohort if isinstance(cohort, CohortRef) else find_cohort(engine, cohort, source)
    attribute = settings.attribute_name(ref.name)
    at_ = resolve_at(ref, at)
    t0 = settings.start or ref.first_time
    settings.check_runs(to_utc(t0), to_utc(at_))
    run = SyncRun(ref, at_, t0, settings, attribute)
    for table, pipeline, temp in stages(ref, at_, t0, settings, attribute):
        run.step_counts[table] = pipeline.run(engine, table, debug=debug, temp=temp)
        if table == "sim_population":
            cols = ", ".join(RESOLUTION_COLUMNS)
            engine.materialise("resolution", f"SELECT {cols} FROM sim_population WHERE is_member")
    return run


# ----------------------------------------------------------------------------- results
@dataclass
class SimulationResult:
    """Everything the simulation says about one cohort at one time (all pandas)."""

    cohort: str
    at: datetime
    settings: SyncSettings
    attribute: str
    t0: datetime
    source: str
    resolution: pd.DataFrame
    timeline: pd.DataFrame
    waterfall: pd.DataFrame
    attribute_state: pd.DataFrame
    gap_summary: pd.DataFrame
    step_counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The waterfall as {step: count} plus a few headline numbers."""
        out = {"cohort": self.cohort, "at": self.at, "attribute": self.attribute}
        out.update(dict(zip(self.waterfall.step, self.waterfall["count"])))
        return out


def timeline_df(engine: Engine) -> pd.DataFrame:
    return engine.query_df(f"SELECT {', '.join(TIMELINE_COLUMNS)} FROM timeline ORDER BY run")


def attribute_state_df(engine: Engine) -> pd.DataFrame:
    return engine.query_df(
        f"SELECT {', '.join(ATTRIBUTE_STATE_COLUMNS)} FROM attribute_state ORDER BY is_orphan, mpid, orphan_identifier"
    )


def simulate(
    engine: Engine,
    cohort: str,
    at: datetime | str | None = None,
    settings: SyncSettings | dict | str | None = None,
    *,
    source: Source = "auto",
    debug: bool = False,
) -> SimulationResult:
    """docs/rules.md#resolution to #sync-over-time for ``cohort`` at ``at``: resolution, sync over time, waterfall, gap summary.
    Results are stored in the database (``resolution``, ``timeline``, ``attribute_state``,
    ``waterfall``, ``gap_summary``) and returned as pandas."""
    from cohortlab.simulation.waterfall import compute_gap_summary, compute_waterfall

    run = run_sync(engine, cohort, at, settings, source=source, debug=debug)
    wf = compute_waterfall(engine, attribute=run.attribute)
    gaps = compute_gap_summary(engine)
    return SimulationResult(
        cohort=run.cohort.name,
        at=run.at,
        settings=run.settings,
        attribute=run.attribute,
        t0=run.t0,
        source=run.cohort.source,
        resolution=resolution_df(engine),
        timeline=timeline_df(engine),
        waterfall=wf,
        attribute_state=attribute_state_df(engine),
        gap_summary=gaps,
        step_counts=run.step_counts,
    )


__all__ = [
    "ATTRIBUTE_STATE_COLUMNS",
    "FULL_KINDS",
    "SimulationResult",
    "SyncRun",
    "TIMELINE_COLUMNS",
    "run_sync",
    "simulate",
    "stages",
]
