"""docs/rules.md#waterfall: the discrepancy waterfall, from the Mixpanel cohort count to the mParticle audience.

At a time t, with S = the MPIDs that current members resolve to (``matched``) and T = the
targets whose attribute is ``true`` after the last run at or before t::

    members                                   total   rows of `resolution` (members at t)
    - unmatched:<gap_reason>  (one per reason) minus   status unmatched or orphan_created
    - shared_mpid                              minus   matched members - |S|
    = should_be_true                           total   |S|
    - not_yet_true                             minus   |S \\ T|
    + stale_true                               plus    |T \\ S| among linked profiles
    + orphans_true                             plus    orphan profiles that are true
    = audience                                 total   |T|

The steps add up exactly: :func:`compute_waterfall` checks both equalities and raises
:class:`ReconciliationError` otherwise. Inputs are the ``resolution`` and ``attribute_state``
tables written by :mod:`cohortlab.simulation.sync` (their names per run: the result object's
``table_names``). The audience (docs/rules.md#audience) counts the profiles, orphans included,
whose attribute is ``true``. Beside the audience on ``<attribute> = true`` the guide allows audiences on
``= false``: :func:`waterfall_counts` gives ``audience_false``, the profiles (orphans included)
whose attribute is ``false`` (docs/rules.md#audiences-on-false); it is not a step of the waterfall.

Stored tables: ``waterfall(step, label, kind, count, position, cohort_name, attribute_name,
as_of)`` and ``gap_summary(breakdown, identifier_source, status, gap_reason, recoverable_via,
members, share)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cohortlab.engines.base import Engine
from cohortlab.glossary import REASON_LABELS
from cohortlab.pipeline import sql_str
from cohortlab.simulation.resolution import GAP_REASONS

if TYPE_CHECKING:
    import pandas as pd

WATERFALL_COLUMNS = ["step", "label", "kind", "count"]

GAP_LABELS = REASON_LABELS  # each unmatched step's label (cohortlab/glossary.py)


class ReconciliationError(AssertionError):
    """The waterfall steps do not add up (a defect, never expected)."""


def waterfall_counts(engine: Engine, resolution: str = "resolution", attribute_state: str = "attribute_state") -> dict:
    """The numbers behind the waterfall, computed in SQL."""
    row = engine.query_rows(
        f"""
        WITH s AS (SELECT DISTINCT mpid FROM {resolution} WHERE status = 'matched'),
             t AS (SELECT mpid, is_orphan FROM {attribute_state} WHERE value)
        SELECT
            (SELECT count(*) FROM {resolution}) AS members,
            (SELECT count(*) FROM {resolution} WHERE status = 'matched') AS matched,
            (SELECT count(*) FROM s) AS s,
            (SELECT count(*) FROM t WHERE NOT is_orphan) AS t_linked,
            (SELECT count(*) FROM t WHERE is_orphan) AS t_orphans,
            (SELECT count(*) FROM s JOIN t ON t.mpid = s.mpid AND NOT t.is_orphan) AS s_and_t,
            (SELECT count(*) FROM {attribute_state} WHERE NOT value) AS f
        """
    )[0]
    members, matched, s, t_linked, t_orphans, s_and_t, f = (int(x) for x in row)
    gaps = dict(
        engine.query_rows(
            f"SELECT gap_reason, count(*) FROM {resolution} WHERE status <> 'matched' GROUP BY gap_reason"
        )
    )
    return {
        "members": members,
        "matched": matched,
        "gaps": {k: int(v) for k, v in gaps.items()},
        "should_be_true": s,
        "true_linked": t_linked,
        "orphans_true": t_orphans,
        "true_and_should": s_and_t,
        "audience_false": f,
    }


NOT_YET_TRUE_LABEL = "not (yet) true: pending next run, failed run, or false written by a duplicate's remove"
# a one-time export sends once: the matched profiles it did not set true are missing, no run is pending
MISSING_ONE_TIME_LABEL = "missing: the one-time export did not send them, and no run will (a new export would)"


def waterfall_rows(c: dict, attribute: str | None = None, *, one_time: bool = False) -> list[tuple[str, str, str, int]]:
    """The waterfall as rows ``(step, label, kind, count)`` from :func:`waterfall_counts`
    (no pandas: what ``cohortlab simulate`` prints); checks that the steps add up. ``one_time``:
    the sync is a one-time export, whose ``not_yet_true`` profiles are missing, not pending."""
    attr = attribute or "<attribute>"
    rows = [("members", "Mixpanel cohort members", "total", c["members"])]
    unknown = set(c["gaps"]) - set(GAP_REASONS)
    if unknown:
        raise ReconciliationError(f"unexpected gap_reason values {sorted(map(str, unknown))}")
    for reason in GAP_REASONS:
        n = c["gaps"].get(reason, 0)
        if n > 0:
            rows.append((f"unmatched:{reason}", f"unmatched: {GAP_LABELS[reason]}", "minus", n))
    shared = c["matched"] - c["should_be_true"]
    s, t_linked, both = c["should_be_true"], c["true_linked"], c["true_and_should"]
    audience = t_linked + c["orphans_true"]
    rows += [
        ("shared_mpid", "matched members beyond the first on each MPID (several Mixpanel profiles, one person)",
         "minus", shared),
        ("should_be_true", "mParticle profiles that should be true", "total", s),
        ("not_yet_true", MISSING_ONE_TIME_LABEL if one_time else NOT_YET_TRUE_LABEL, "minus", s - both),
        ("stale_true", "stale true: no longer a member, still true", "plus", t_linked - both),
        ("orphans_true", "orphan profiles created by the feed and true", "plus", c["orphans_true"]),
        ("audience", f"mParticle audience: {attr} = true", "total", audience),
    ]
    rows = [(step, label, kind, int(n)) for step, label, kind, n in rows]
    _check_steps([(step, kind, n) for step, _, kind, n in rows], lambda: _rows_text(rows))
    return rows


def waterfall_frame(rows: list[tuple[str, str, str, int]]) -> pd.DataFrame:
    """:func:`waterfall_rows` as a DataFrame (columns ``WATERFALL_COLUMNS``)."""
    import pandas as pd

    return pd.DataFrame(rows, columns=WATERFALL_COLUMNS)


def build_waterfall(c: dict, attribute: str | None = None) -> pd.DataFrame:
    """The waterfall rows from :func:`waterfall_counts` as a DataFrame; checks that the steps add up."""
    return waterfall_frame(waterfall_rows(c, attribute))


def _rows_text(rows) -> str:
    return "\n".join(" ".join(str(v) for v in r) for r in rows)


def _check_steps(steps, shown) -> None:
    """``steps``: (step, kind, count) in order; ``shown()``: the waterfall as text for the error."""
    if any(n < 0 for _, _, n in steps):
        raise ReconciliationError(f"negative step in the waterfall:\n{shown()}")
    running = None
    for step, kind, n in steps:
        if kind == "total":
            if running is not None and running != n:
                raise ReconciliationError(f"waterfall does not add up at {step}: steps give {running}, total is {n}\n{shown()}")
            running = n
        elif kind == "minus":
            running -= n
        elif kind == "plus":
            running += n
        else:
            raise ReconciliationError(f"unknown step kind {kind!r}")


def check_waterfall(df: pd.DataFrame) -> None:
    """Every total equals the running sum of the steps before it; counts are non-negative."""
    _check_steps(list(zip(df.step, df.kind, df["count"])), lambda: str(df))


def store_waterfall(
    engine: Engine, rows: list[tuple[str, str, str, int]], table: str, *, attribute: str | None,
    resolution: str = "resolution", temp: bool = False,
) -> None:
    """Write :func:`waterfall_rows` as ``table``: ``step, label, kind, count, position,
    cohort_name, attribute_name, as_of`` (the last three from the ``resolution`` table), in one
    statement (no frame registered)."""
    values = ",\n".join(
        f"({sql_str(step)}, {sql_str(label)}, {sql_str(kind)}, CAST({int(n)} AS BIGINT), CAST({i} AS BIGINT))"
        for i, (step, label, kind, n) in enumerate(rows, start=1)
    )
    engine.materialise(table, f"""
        SELECT w.step, w.label, w.kind, w.count, w.position, m.cohort_name,
               CAST({sql_str(attribute)} AS VARCHAR) AS attribute_name, m.as_of
        FROM (VALUES {values}) w(step, label, kind, count, position)
        CROSS JOIN (SELECT any_value(cohort_name) AS cohort_name, max(as_of) AS as_of FROM {resolution}) m
        """, temp=temp)  # readers order by position (no ORDER BY inside a step: docs/DEVELOPING.md#portable-sql)


def compute_waterfall(
    engine: Engine,
    *,
    attribute: str | None = None,
    resolution: str = "resolution",
    attribute_state: str = "attribute_state",
    table: str | None = "waterfall",
    temp: bool = False,
) -> pd.DataFrame:
    """docs/rules.md#waterfall from the ``resolution`` and ``attribute_state`` tables; stored as ``table``
    (with cohort_name, attribute_name and as_of) unless ``table`` is None."""
    rows = waterfall_rows(waterfall_counts(engine, resolution, attribute_state), attribute)
    if table:
        store_waterfall(engine, rows, table, attribute=attribute, resolution=resolution, temp=temp)
    return waterfall_frame(rows)


GAP_SUMMARY_ORDER = "breakdown, members DESC, identifier_source, status, gap_reason, recoverable_via"


def compute_gap_summary(
    engine: Engine, resolution: str = "resolution", table: str | None = "gap_summary", *, temp: bool = False,
    fetch: bool = True,
) -> pd.DataFrame | None:
    """Members by status x gap_reason x recoverable_via (breakdown ``gap_reason``, unmatched and
    orphan_created members only) and by identifier_source x status (breakdown
    ``identifier_source``, all members), with the share of all members."""
    sql = f"""
        WITH total AS (SELECT count(*) AS n FROM {resolution})
        SELECT breakdown, identifier_source, status, gap_reason, recoverable_via, members,
               CAST(members AS DOUBLE) / nullif((SELECT n FROM total), 0) AS share
        FROM (
            SELECT 'gap_reason' AS breakdown, CAST(NULL AS VARCHAR) AS identifier_source, status, gap_reason,
                   recoverable_via, count(*) AS members
            FROM {resolution} WHERE status <> 'matched' GROUP BY status, gap_reason, recoverable_via
            UNION ALL
            SELECT 'identifier_source', identifier_source, status, CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR), count(*)
            FROM {resolution} GROUP BY identifier_source, status
        ) x
    """
    if table:
        engine.materialise(table, sql, temp=temp)
        sql = f"SELECT * FROM {table}"
    if not fetch:
        return None
    return engine.query_df(f"SELECT * FROM ({sql}) g ORDER BY {GAP_SUMMARY_ORDER}")


__all__ = [
    "GAP_LABELS",
    "GAP_SUMMARY_ORDER",
    "ReconciliationError",
    "WATERFALL_COLUMNS",
    "build_waterfall",
    "check_waterfall",
    "compute_gap_summary",
    "compute_waterfall",
    "store_waterfall",
    "waterfall_counts",
    "waterfall_frame",
    "waterfall_rows",
]
