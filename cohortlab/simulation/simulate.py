"""One entry for the whole simulation: :func:`simulate` (membership, resolution, sync, waterfall).

Each call gets a run id; every table it writes is named ``sim_<run id>_<name>`` (see
:mod:`cohortlab.simulation.sync` for the list and columns) and is temporary (connection-scoped),
so two simulations on one database never collide. The result object knows its tables and
reads them on demand (after Splink's ``SplinkDataFrame``)::

    result = simulate(engine, "Power Users")
    result.tables["timeline"].table_name      # 'sim_3f9c01ab_timeline'
    result.tables["resolution"].count()       # rows, without fetching them
    result.timeline                           # pandas, read once and cached
    result.publish()                          # also store as resolution, timeline, waterfall, ...

Result tables (``SimulationResult.tables``): ``resolution`` (one row per member at ``at``,
columns in :mod:`cohortlab.simulation.resolution`), ``timeline`` and ``attribute_state``
(:mod:`cohortlab.simulation.sync`), ``waterfall`` and ``gap_summary``
(:mod:`cohortlab.simulation.waterfall`). The intermediate tables of the run are in
``SimulationResult.table_names`` too (e.g. ``decisions``, ``resolved``, ``sends``, ``runs``).

:func:`assumption_ranges` runs the simulation under each value of every assumption that may
change the audience and reports the audience per value with its minimum and maximum.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from cohortlab.engines.base import Engine
from cohortlab.errors import CohortlabError
from cohortlab.settings import SyncSettings
from cohortlab.simulation.membership import CohortRef, Source
from cohortlab.simulation.resolution import RESOLUTION_COLUMNS
from cohortlab.simulation.sync import ATTRIBUTE_STATE_COLUMNS, TIMELINE_COLUMNS, Names, run_sync
from cohortlab.times import format_instant, parse_time
from cohortlab.pipeline import Pipeline, sql_ts
from cohortlab.simulation.waterfall import (
    GAP_SUMMARY_ORDER,
    WATERFALL_COLUMNS,
    compute_gap_summary,
    store_waterfall,
    waterfall_counts,
    waterfall_frame,
    waterfall_rows,
)

if TYPE_CHECKING:  # pandas is imported when a frame is asked for (``cohortlab simulate`` never does)
    import pandas as pd

PUBLISHED = ("resolution", "timeline", "attribute_state", "waterfall", "gap_summary")

_ORDER = {
    "resolution": ("distinct_id", RESOLUTION_COLUMNS),
    "timeline": ("run", TIMELINE_COLUMNS),
    "attribute_state": ("is_orphan, mpid, orphan_identifier", ATTRIBUTE_STATE_COLUMNS),
    "waterfall": ("position", None),
    "gap_summary": (GAP_SUMMARY_ORDER, None),
}


class DroppedTableError(CohortlabError, RuntimeError):
    """The tables of a simulation were dropped (e.g. evicted from the Lab's cache)."""


@dataclass
class SimTable:
    """A table of one simulation, read on demand: ``as_pandas()``, ``as_arrow()``, ``count()``,
    ``table_name``; ``columns``/``order_by`` fix what ``as_pandas`` returns."""

    engine: Engine
    table_name: str
    columns: list[str] | None = None
    order_by: str | None = None
    dropped: bool = False

    def _check(self) -> None:
        if self.dropped:
            raise DroppedTableError(f"table {self.table_name} was dropped; run the simulation again")

    def sql(self) -> str:
        cols = ", ".join(self.columns) if self.columns else "*"
        order = f" ORDER BY {self.order_by}" if self.order_by else ""
        return f"SELECT {cols} FROM {self.table_name}{order}"

    def as_pandas(self, limit: int | None = None) -> pd.DataFrame:
        self._check()
        return self.engine.query_df(self.sql() + (f" LIMIT {int(limit)}" if limit is not None else ""))

    def as_arrow(self):
        self._check()
        fetch = getattr(self.engine, "query_arrow", None)
        if fetch is not None:
            return fetch(self.sql())
        import pyarrow as pa

        return pa.Table.from_pandas(self.as_pandas(), preserve_index=False)

    def count(self) -> int:
        self._check()
        return self.engine.count(self.table_name)

    def __repr__(self) -> str:
        return f"SimTable({self.table_name!r})"


@dataclass(eq=False)
class SimulationResult:
    """Everything the simulation says about one cohort at one time. The tables stay in the
    database; the pandas attributes (``resolution``, ``timeline``, ``waterfall``,
    ``attribute_state``, ``gap_summary``) read them on first use and keep them."""

    engine: Engine = field(repr=False)
    cohort: str
    at: datetime
    settings: SyncSettings
    attribute: str
    t0: datetime
    source: str
    run_id: str
    tables: dict[str, SimTable] = field(repr=False)
    table_names: dict[str, str] = field(repr=False)
    counts: dict[str, int] = field(repr=False)
    step_counts: dict[str, dict[str, int]] = field(default_factory=dict, repr=False)
    _waterfall: pd.DataFrame | None = field(default=None, repr=False)
    waterfall_rows: list[tuple[str, str, str, int]] | None = field(default=None, repr=False)  # (step, label, kind, count)
    stored: bool = False  # read from the database's stored simulations (cohortlab.simulation.store)
    store_event: str | None = field(default=None, repr=False)  # Lab.simulate: "read" (stored), "written"
    # the cohort as find_cohort resolved it (its ids, the names its data carries, how the reports list
    # it): what later steps on this simulation read instead of looking the cohort up again by ``cohort``,
    # a name another cohort may hold now too (docs/rules.md#renamed-cohorts); a stored simulation
    # gets it from Lab.simulate
    ref: CohortRef | None = field(default=None, repr=False)

    @property
    def listed_as(self) -> str:
        """How the reports list the cohort (``CohortRef.listed_as``): its current name, or its id
        when another cohort holds that name now."""
        return self.ref.listed_as if self.ref is not None else self.cohort

    @cached_property
    def resolution(self) -> pd.DataFrame:
        """One row per member at ``at``: ``cohort_name, distinct_id, identifier_source,
        identifier, mpid, status, gap_reason, ...`` (docs/simulate.md#tables); ``mpid`` int64
        (``Int64`` when a member has none)."""
        return self.tables["resolution"].as_pandas()

    @cached_property
    def timeline(self) -> pd.DataFrame:
        """One row per sync run up to ``at``: ``run_at, members, adds, removes, failed,
        full_refresh, true_count, not_yet_true, stale_true, run, kind, ...``."""
        return self.tables["timeline"].as_pandas()

    @cached_property
    def attribute_state(self) -> pd.DataFrame:
        """One row per profile ever written: ``cohort_name, attribute_name, mpid,
        orphan_identifier, is_orphan, value, last_write_at, writes, as_of, changed_at``."""
        return self.tables["attribute_state"].as_pandas()

    @cached_property
    def gap_summary(self) -> pd.DataFrame:
        """Members by ``status`` x ``gap_reason`` x ``recoverable_via``, and by
        ``identifier_source`` (column ``breakdown``), with ``members`` and ``share``."""
        return self.tables["gap_summary"].as_pandas()

    @property
    def waterfall(self) -> pd.DataFrame:
        """The discrepancy waterfall: ``step, label, kind (total, minus, plus), count``."""
        if self._waterfall is None:
            if self.waterfall_rows is not None:
                self._waterfall = waterfall_frame(self.waterfall_rows)
            else:
                self._waterfall = self.tables["waterfall"].as_pandas()[WATERFALL_COLUMNS]
        return self._waterfall

    @property
    def audience(self) -> int:
        """Profiles with ``<attribute> = true`` (the audience size)."""
        return int(self.counts["true_linked"] + self.counts["orphans_true"])

    @property
    def audience_false(self) -> int:
        """Profiles with ``<attribute> = false`` (an audience on ``= false``)."""
        return int(self.counts["audience_false"])

    def __repr__(self) -> str:
        # the figures in one line, not the settings and tables (a cell's value in a notebook)
        members = int(self.counts.get("members", 0))
        if members:
            figures = f"{members:,} member(s), audience {self.audience:,}"
        elif self.at < self.t0:  # `cohortlab simulate` refuses it; here the empty result is the answer
            figures = f"no members: before the sync's first run ({format_instant(self.t0)} UTC)"
        else:
            figures = "no members at this time"
        return (f"<SimulationResult of {self.cohort!r} at {format_instant(self.at)} UTC ({self.source}"
                f"{', stored' if self.stored else ''}): {figures}; .waterfall, .timeline, .resolution, "
                f".attribute_state, .gap_summary, .summary()>")

    def summary(self) -> dict[str, Any]:
        """The waterfall as {step: count} plus a few headline numbers."""
        out = {"cohort": self.cohort, "at": self.at, "attribute": self.attribute}
        out.update(dict(zip(self.waterfall.step, self.waterfall["count"])))
        out["audience_false"] = self.audience_false
        return out

    def publish(self, names: dict[str, str] | None = None) -> dict[str, str]:
        """Store the result tables under their documented names (``resolution``, ``timeline``,
        ``attribute_state``, ``waterfall``, ``gap_summary``) or under ``names`` ({table: name}),
        as persistent tables, in one transaction: an interruption (Ctrl-C, a killed process) leaves
        the five tables of the earlier run, never some of each. Returns {table: stored name}."""
        out = {}
        for t in PUBLISHED:
            self.tables[t]._check()
        with self.engine.transaction():
            for t in PUBLISHED:
                name = (names or {}).get(t, t)
                self.engine.materialise(name, f"SELECT * FROM {self.tables[t].table_name}")
                out[t] = name
        return out

    def drop(self) -> None:
        """Drop every table of this run (its result object then refuses to read them). A stored
        simulation's tables stay (:mod:`cohortlab.simulation.store` owns them)."""
        if self.stored:
            return
        for name in self.table_names.values():
            self.engine.execute(f"DROP TABLE IF EXISTS {name}")
        for t in self.tables.values():
            t.dropped = True


def drop_published(engine: Engine) -> None:
    """Drop the result tables published under their documented names (:data:`PUBLISHED`), in one
    transaction: after a load that changed the data they describe the data as it was, and SQL
    reading ``resolution`` would read yesterday's results without a sign (docs/simulate.md#tables)."""
    with engine.transaction():
        for t in PUBLISHED:
            engine.execute(f"DROP TABLE IF EXISTS {t}")


def table_spec(table: str) -> tuple[list[str] | None, str]:
    """(columns, order by) that a result table's :class:`SimTable` reads (``PUBLISHED`` names)."""
    order_by, columns = _ORDER[table]
    return (list(columns) if columns else None), order_by


def new_run_id() -> str:
    return uuid.uuid4().hex[:8]


def simulate(
    engine: Engine,
    cohort: str | CohortRef,
    at: datetime | str | None = None,
    settings: SyncSettings | dict | str | None = None,
    *,
    source: Source = "auto",
    debug: bool = False,
    run_id: str | None = None,
    publish: bool = False,
) -> SimulationResult:
    """Resolution, sync over time, waterfall and gap summary for ``cohort`` at ``at`` (default:
    its latest snapshot / webhook). Tables ``sim_<run id>_*`` (temporary); ``publish=True`` also
    stores the results under their documented names."""
    settings = SyncSettings.coerce(settings)
    rid = run_id or new_run_id()
    n = Names(f"sim_{rid}_")
    run = run_sync(engine, cohort, at, settings, source=source, debug=debug, names=n)
    result = result_of_run(engine, run, rid, debug=debug)
    if publish:
        result.publish()
    return result


def simulated_timeline(engine: Engine, cohort: str | CohortRef, at: datetime | str | None = None,
                       settings: SyncSettings | dict | str | None = None, *, source: Source = "auto") -> pd.DataFrame:
    """The timeline :func:`simulate` gives (``SimulationResult.timeline``: one row per sync run),
    without the rest of the simulation: the members' resolution, the attribute state, the waterfall
    and the gap summary, which the timeline does not read, are not made, and the run's tables are
    dropped. For a page that shows only a sync's timeline (the report's one-time export beside
    the dynamic sync): at 1M users under a report's memory share, 0.5-0.7 s less per cohort."""
    settings = SyncSettings.coerce(settings)
    n = Names(f"sim_{new_run_id()}_")
    run = run_sync(engine, cohort, at, settings, source=source, names=n, skip=("resolution", "attribute_state"))
    try:
        return SimTable(engine, n.timeline, *table_spec("timeline")).as_pandas()
    finally:
        for step in run.step_counts:
            engine.drop(f"{n.prefix}{step}")


def result_of_run(engine: Engine, run, rid: str, *, debug: bool = False) -> SimulationResult:
    """The :class:`SimulationResult` of a played sync ``run`` (:func:`run_sync`, or a simulation
    derived from a later one, :mod:`cohortlab.simulation.earlier`): its waterfall and gap summary
    made, its tables listed."""
    n = run.names
    counts = waterfall_counts(engine, n.resolution, n.attribute_state)
    wf = waterfall_rows(counts, run.attribute, one_time=run.settings.sync_type == "one_time")
    store_waterfall(engine, wf, n.waterfall, attribute=run.attribute, resolution=n.resolution, temp=True)
    compute_gap_summary(engine, n.resolution, n.gap_summary, temp=True, fetch=False)
    table_names = {step: f"{n.prefix}{step}" for step in run.step_counts}
    table_names.update(waterfall=n.waterfall, gap_summary=n.gap_summary)
    if debug:  # the per-step debug tables belong to the run as well
        for stage, steps in run.step_counts.items():
            table_names.update({f"{stage}__{s}": f"{n.prefix}{stage}__{s}" for s in steps})
    tables = {t: SimTable(engine, table_names[t], *table_spec(t)) for t in PUBLISHED}
    return SimulationResult(
        engine=engine, cohort=run.cohort.name, at=run.at, settings=run.settings, attribute=run.attribute,
        t0=run.t0, source=run.cohort.source, run_id=rid, tables=tables, table_names=table_names,
        counts=counts, step_counts=run.step_counts, waterfall_rows=wf, ref=run.cohort,
    )


# ----------------------------------------------------------------------------- earlier snapshots
class _RunTables(Names):
    """The table names of one result (computed: ``sim_<run id>_*``; stored: ``simstore_*``)."""

    def __init__(self, table_names: dict[str, str]) -> None:
        super().__init__("")
        self._tables = table_names

    def __getattr__(self, step: str) -> str:
        if step.startswith("_"):
            raise AttributeError(step)
        return self._tables[step]


def outcome_counts_at(result: SimulationResult, times) -> pd.DataFrame:
    """``as_of, members, matched`` at each of ``times`` (at or before ``result.at``): the member
    count and the matched count that ``simulate(cohort, t, settings)`` gives at ``t``, read from
    this simulation's own tables instead of simulating again up to each ``t``.

    Exact for snapshot membership: everything the simulation at ``t`` computes is a prefix of
    this one (the versions at or before ``t`` keep their numbers and transitions, the runs at or
    before ``t`` their kind, sends and decisions: a run never looks ahead), so the members at
    ``t`` are those whose transitions up to ``t`` sum to 1; a member mParticle holds at ``t`` (in
    the membership of the last successful run at or before ``t``) keeps its latest send at or
    before ``t``, any other (never sent, left since, entered during a pause) is resolved at ``t``,
    as the simulation at ``t`` does; and the outcome is a function of (member, resolve time). One pass over the transitions and decisions serves every time, and
    only the requests this simulation did not resolve are resolved (one pass for all ``times``).
    Webhook membership is refused (a message may straddle ``t``)."""
    from cohortlab.simulation.resolution import add_resolve_steps, profile_history_kind
    from cohortlab.simulation.sync import RunGrid
    from cohortlab.times import naive_utc

    import pandas as pd

    cols = ["as_of", "members", "matched"]
    times = [parse_time(t) for t in times]
    if not times:
        return pd.DataFrame(columns=cols)
    if result.source != "snapshots":
        raise ValueError("outcome_counts_at needs snapshot membership (webhook messages may straddle a time)")
    late = [t for t in times if naive_utc(t) > naive_utc(result.at)]
    if late:
        raise ValueError(f"outcome_counts_at: {late[0]} is after the simulation's as-of time {result.at}")
    engine, s = result.engine, result.settings
    n = _RunTables(result.table_names)
    for t in PUBLISHED:
        result.tables[t]._check()
    q = Names(f"sim_{result.run_id}_before_")
    # one pass for every time: the times in order (their last version and last run grow with
    # them), each transition and decision in the first time that sees it (its bucket), the
    # member's running sum and latest decision over its buckets, held until its next bucket
    order = sorted(range(len(times)), key=lambda i: naive_utc(times[i]))
    lasts = [int(RunGrid(result.t0, times[i], s).last) for i in order]
    # per time, in one query: the last membership version at or before it, and the membership
    # version of the last successful run at or before it: a member mParticle holds then keeps
    # what it was last sent with; any other member (never sent, left since, or entered during a
    # pause: a provisional decision only) is resolved at the time, as final_members_stage does
    # (docs/rules.md#resolution-time)
    cut_versions = engine.query_rows("SELECT " + ", ".join(
        [f"(SELECT coalesce(max(v.version), 0) FROM {n.versions} v WHERE v.at_time <= {sql_ts(times[i])})"
         for i in order]
        + [f"(SELECT max(r.version) FROM {n.runs} r WHERE r.sent AND r.k <= {k})" for k in lasts]))[0]
    versions, sent_versions = cut_versions[:len(order)], cut_versions[len(order):]

    def bucket(col: str, cuts) -> str:
        whens = " ".join(f"WHEN {col} <= {int(c)} THEN {j}" for j, c in enumerate(cuts) if c is not None)
        return f"CASE {whens} END" if whens else "CAST(NULL AS INTEGER)"

    cuts = ", ".join(f"({j}, {i}, {sql_ts(times[i])})" for j, i in enumerate(order))
    resolve_time = "coalesce(CASE WHEN r.held = 1 THEN r.dec.t END, c.at_time)" if s.resolution_time == "send" else "c.at_time"
    members_sql = f"""
        WITH x AS (
            SELECT t.distinct_id, {bucket('t.version', versions)} AS b, t.delta, 0 AS held_delta,
                   CAST(NULL AS STRUCT(k BIGINT, t TIMESTAMP)) AS dec
            FROM {n.transitions} t
            UNION ALL
            SELECT t.distinct_id, {bucket('t.version', sent_versions)} AS b, 0 AS delta, t.delta AS held_delta,
                   CAST(NULL AS STRUCT(k BIGINT, t TIMESTAMP)) AS dec
            FROM {n.transitions} t
            UNION ALL
            SELECT d.distinct_id, {bucket('d.k', lasts)} AS b, 0 AS delta, 0 AS held_delta,
                   struct_pack(k := CAST(d.k AS BIGINT), t := CAST(d.resolve_time AS TIMESTAMP)) AS dec
            FROM {n.decisions} d
            WHERE d.is_send
        ),
        per_bucket AS (
            SELECT distinct_id, b, sum(delta) AS delta, sum(held_delta) AS held_delta, max(dec) AS dec
            FROM x WHERE b IS NOT NULL GROUP BY distinct_id, b
        ),
        running AS (
            SELECT distinct_id, b, sum(delta) OVER w AS member, sum(held_delta) OVER w AS held, max(dec) OVER w AS dec,
                   coalesce(lead(b) OVER (PARTITION BY distinct_id ORDER BY b), {len(order)}) AS next_b
            FROM per_bucket
            WINDOW w AS (PARTITION BY distinct_id ORDER BY b ROWS UNBOUNDED PRECEDING)
        )
        SELECT c.i, r.distinct_id, {resolve_time} AS resolve_time
        FROM running r JOIN (VALUES {cuts}) c(j, i, at_time) ON c.j >= r.b AND c.j < r.next_b
        WHERE r.member = 1
        """
    try:
        engine.materialise(q.members, members_sql, temp=True)
        engine.materialise(q.requests, f"""
            SELECT DISTINCT m.distinct_id, m.resolve_time
            FROM {q.members} m
            LEFT JOIN {n.resolved} r ON r.distinct_id = m.distinct_id AND r.resolve_time = m.resolve_time
            WHERE r.distinct_id IS NULL
            """, temp=True)
        extra = Pipeline().add("reqs", f"SELECT distinct_id, resolve_time FROM {q.requests}")
        if engine.count(q.requests):  # members not sent by a run up to t: resolved at t
            add_resolve_steps(extra, "reqs", s, profile_history_kind(engine))
        else:
            extra.add("resolved", "SELECT distinct_id, resolve_time, CAST(NULL AS VARCHAR) AS status FROM reqs")
        extra.run(engine, q.resolved, temp=True)
        rows = engine.query_rows(
            f"""
            SELECT m.i, count(*) AS members, count(CASE WHEN r.status = 'matched' THEN 1 END) AS matched
            FROM {q.members} m
            JOIN (SELECT distinct_id, resolve_time, status FROM {n.resolved}
                  UNION ALL SELECT distinct_id, resolve_time, status FROM {q.resolved}) r
              ON r.distinct_id = m.distinct_id AND r.resolve_time = m.resolve_time
            GROUP BY m.i
            """
        )
    finally:
        for name in (q.members, q.requests, q.resolved):
            engine.execute(f"DROP TABLE IF EXISTS {name}")
    got = {int(i): (int(members), int(matched)) for i, members, matched in rows}
    return pd.DataFrame([(t, *got.get(i, (0, 0))) for i, t in enumerate(times)], columns=cols)


# ----------------------------------------------------------------------------- assumption ranges
def assumption_values(settings: SyncSettings) -> dict[str, list[Any]]:
    """The values tried for each assumption (docs/rules.md, assumptions); the current value of
    ``settings`` is always among them."""
    cutoff = settings.event_identity_cutoff or SyncSettings().event_identity_cutoff
    ttls = [timedelta(days=1), timedelta(days=3), timedelta(days=7)]
    if settings.snapshot_ttl not in ttls:
        ttls.append(settings.snapshot_ttl)
    return {
        "fallback": ["data", "strict"],
        "event_identity_cutoff": [cutoff, None],
        "protection": ["only_update", "create_and_update"],
        "apply_order": ["removes_then_adds", "adds_then_removes"],
        "snapshot_ttl": sorted(ttls),
        "refresh_clears_stale": [True, False],
        "resolution_time": ["send", "as_of"],
    }


def _label(option: str, value: Any) -> str:
    if value is None:
        return "off"
    if isinstance(value, timedelta):
        from cohortlab.times import format_duration

        return format_duration(value)
    if isinstance(value, datetime):
        return "on" if option == "event_identity_cutoff" else value.isoformat()
    return str(value).lower() if isinstance(value, bool) else str(value)


def assumption_ranges(
    engine: Engine,
    cohort: str,
    at: datetime | str | None = None,
    settings: SyncSettings | dict | str | None = None,
    *,
    source: Source = "auto",
    simulate_fn=None,
) -> pd.DataFrame:
    """The audience (``= true``, and ``= false``) under each value of every assumption, the
    others as in ``settings``: one row per (assumption, value) with ``is_current``, and per
    assumption ``min_audience``, ``max_audience`` and ``changes`` (min differs from max).
    ``simulate_fn(cohort, at, settings, source)`` defaults to :func:`simulate` (a ``Lab``
    passes its cached one)."""
    import pandas as pd

    base = SyncSettings.coerce(settings)
    run = simulate_fn or (lambda c, a, s, src: simulate(engine, c, a, s, source=src))
    rows = []
    for option, values in assumption_values(base).items():
        for value in values:
            s = base.replace(**{option: value})
            r = run(cohort, at, s, source)
            rows.append({
                "assumption": option, "value": _label(option, value),
                "is_current": getattr(base, option) == value,
                "audience": r.audience, "audience_false": r.audience_false,
                "should_be_true": int(r.counts["should_be_true"]),
            })
    df = pd.DataFrame(rows)
    g = df.groupby("assumption", sort=False)["audience"]
    df["min_audience"] = g.transform("min")
    df["max_audience"] = g.transform("max")
    df["changes"] = df.min_audience != df.max_audience
    return df


def assumption_ranges_wide(df: pd.DataFrame) -> pd.DataFrame:
    """One row per assumption: ``values`` ("value=audience, ...", the current one marked *),
    ``min``, ``max``, ``changes``."""
    import pandas as pd

    out = []
    for option, g in df.groupby("assumption", sort=False):
        text = ", ".join(f"{v}{'*' if c else ''}={a:,}" for v, c, a in zip(g.value, g.is_current, g.audience))
        out.append({"assumption": option, "values": text, "min": int(g.audience.min()), "max": int(g.audience.max()),
                    "changes": bool(g.changes.iloc[0])})
    return pd.DataFrame(out)


def reexport_value(
    engine: Engine,
    cohort: str,
    when: datetime | str | None = None,
    at: datetime | str | None = None,
    settings: SyncSettings | dict | str | None = None,
    *,
    source: Source = "auto",
    simulate_fn=None,
) -> dict[str, Any]:
    """The remedy *re-export* valued in users: the audience at ``at`` as simulated, and with a
    re-export (a full sync re-sending every member with the identifier of that time) at
    ``when`` (default: the last run at or before ``at``, as the ``reexport`` row of
    :func:`cohortlab.simulation.remedies.value_remedies` values it; ``at`` itself when no run is
    due by then). ``gained`` = the difference."""
    from cohortlab.simulation.remedies import last_run_time

    base = SyncSettings.coerce(settings)
    run = simulate_fn or (lambda c, a, s, src: simulate(engine, c, a, s, source=src))
    before = run(cohort, at, base, source)
    # a re-export takes effect at the first successful run at or after its time: `at` itself,
    # between two runs, re-exported at no run up to `at` and was worth 0
    t = parse_time(when, "when") if when is not None else (last_run_time(before.settings, before.t0, before.at) or before.at)
    after = run(cohort, before.at, base.replace(reexport_at=[*base.reexport_at, t]), source)
    return {"cohort": before.cohort, "at": before.at, "reexport_at": t,
            "audience": before.audience, "audience_after_reexport": after.audience,
            "gained": after.audience - before.audience}


__all__ = [
    "DroppedTableError",
    "PUBLISHED",
    "drop_published",
    "SimTable",
    "SimulationResult",
    "assumption_ranges",
    "assumption_ranges_wide",
    "assumption_values",
    "new_run_id",
    "outcome_counts_at",
    "reexport_value",
    "simulate",
    "simulated_timeline",
]
