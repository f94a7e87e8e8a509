"""A re-export at the last run, derived from the simulation without it (docs/simulate.md#remedies-subset).

``simulate(cohort, at, settings + reexport_at=[t])`` where ``t`` lands on the last run R at or
before ``at`` differs from ``simulate(cohort, at, settings)`` only at R, and R is the last run:

* the runs before R, their sends and decisions are the same (a run never looks ahead);
* R becomes a ``reexport`` run (unless it is already a full run that takes precedence:
  ``first``, ``full_refresh``, ``reconnect``, ``reexport``, ``one_time``: then nothing changes). A re-export sends
  every member of M(R) (the membership R sees) as an add, decided at R, and writes ``true`` on
  each one's target; it removes nothing and clears nothing (only a ``full_refresh`` clears);
* so after R a profile is ``true`` when a member of M(R) resolves to it at R (W), else it has
  the value it had after the runs before R in the simulation without the re-export.

:func:`derive_last_run_reexport` computes that from the baseline's tables, resolving only the
members of M(R) the baseline did not resolve at R's decision time. What it returns has what the
remedies read of a simulation: ``audience`` and the tables ``targets``, ``resolved`` (the
baseline's requests plus those at R) and ``attribute_state`` (the profiles ``true`` at ``at``:
``is_orphan, mpid, orphan_identifier, value``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cohortlab.engines.base import Engine
from cohortlab.pipeline import Pipeline, sql_ts
from cohortlab.settings import SyncSettings
from cohortlab.simulation.resolution import ProfileHistory, add_resolve_steps
from cohortlab.simulation.sync import RunGrid
from cohortlab.times import to_utc

# kinds a re-export does not change: they take precedence over it, or are one already; a
# full refresh comes before a re-export too (docs/rules.md#pauses-and-refresh: it sends the same
# members with the same identifiers and clears the stale values all the same)
UNCHANGED_KINDS = ("first", "one_time", "full_refresh", "reconnect", "reexport")
CHANGED_KINDS = ("diff", "observation")


@dataclass
class DerivedReexport:
    """The parts of a :class:`cohortlab.simulation.simulate.SimulationResult` the remedies read."""

    engine: Engine = field(repr=False)
    audience: int
    table_names: dict[str, str]
    own: list[str] = field(default_factory=list, repr=False)  # tables made here (drop())

    def drop(self) -> None:
        for t in self.own:
            self.engine.drop(t)


def profile_key(alias: str, id_column: str = "target") -> str:
    """A profile as text: the MPID of a linked target, the identifier of an orphan (the orphan's
    number differs between two simulations; its identifier does not)."""
    return f"CASE WHEN {alias}.is_orphan THEN {alias}.orphan_identifier ELSE CAST({alias}.{id_column} AS VARCHAR) END"


def derive_last_run_reexport(engine: Engine, base: Any, settings: SyncSettings, reexport_time: datetime,
                             history: ProfileHistory) -> Any | None:
    """The simulation with ``reexport_time`` added to ``settings.reexport_at``, from ``base`` (the
    simulation with ``settings``; a SimulationResult with its intermediate tables). ``base``
    itself when the re-export changes nothing; None when the re-export does not land on the last
    run (the caller simulates it)."""
    t0, at = to_utc(base.t0), to_utc(base.at)
    grid = RunGrid(t0, at, settings.replace(reexport_at=[*settings.reexport_at, reexport_time]))
    k = grid.first_sent_at_or_after(reexport_time)
    if k is None:  # paused until after `at`: no re-export happens
        return base
    if k != grid.last:
        return None
    n = base.table_names
    rows = engine.query_rows(f"SELECT kind FROM {n['runs']} WHERE k = {int(k)}")
    if not rows or rows[0][0] in UNCHANGED_KINDS:
        return base
    if rows[0][0] not in CHANGED_KINDS:
        return None
    when = sql_ts(t0 + k * settings.cadence if settings.resolution_time == "send" else at)
    p = f"_reexport_{uuid.uuid4().hex[:8]}_"
    out = DerivedReexport(engine, 0, {}, [])
    try:
        members, new_reqs, new_res = f"{p}members", f"{p}requests", f"{p}new_resolved"
        resolved, targets, state = f"{p}resolved", f"{p}targets", f"{p}attribute_state"
        out.own += [state, targets, resolved, members, new_reqs, new_res]  # views before their tables
        # M(R), each decided at R
        engine.materialise(members, f"""
            SELECT t.distinct_id, {when} AS resolve_time
            FROM {n['transitions']} t
            WHERE t.version <= (SELECT version FROM {n['runs']} WHERE k = {int(k)})
            GROUP BY t.distinct_id HAVING sum(t.delta) = 1
            """, temp=True)
        engine.materialise(new_reqs, f"""
            SELECT distinct_id, resolve_time FROM {members}
            EXCEPT SELECT distinct_id, resolve_time FROM {n['resolved']}
            """, temp=True)
        pipe = Pipeline().add("reqs", f"SELECT distinct_id, resolve_time FROM {new_reqs}")
        add_resolve_steps(pipe, "reqs", settings, history)
        pipe.run(engine, new_res, temp=True)
        # the baseline's rows plus the new ones: views (read once or twice, never copied)
        engine.execute(f"""CREATE TEMP VIEW {resolved} AS
            SELECT distinct_id, resolve_time, status, mpid, identifier FROM {n['resolved']}
            UNION ALL
            SELECT distinct_id, resolve_time, status, mpid, identifier FROM {new_res}
            """)
        engine.execute(f"""CREATE TEMP VIEW {targets} AS
            SELECT distinct_id, resolve_time, is_orphan, target, orphan_identifier FROM {n['targets']}
            UNION ALL
            SELECT distinct_id, resolve_time, status = 'orphan_created' AS is_orphan,
                   CAST(mpid AS BIGINT) AS target,
                   CASE WHEN status = 'orphan_created' THEN identifier END AS orphan_identifier
            FROM {new_res} WHERE status IN ('matched', 'orphan_created')
            """)
        # true after R: written true at R (W), else true after the runs before R
        engine.materialise(state, f"""
            WITH orphan_names AS (
                SELECT DISTINCT target, orphan_identifier FROM {n['targets']} WHERE is_orphan
            ),
            before AS (
                SELECT is_orphan, target, arg_max(is_true, k) AS is_true
                FROM {n['state']} WHERE k < {int(k)}
                GROUP BY is_orphan, target
            ),
            true_keys AS (
                SELECT b.is_orphan, CASE WHEN b.is_orphan THEN o.orphan_identifier ELSE CAST(b.target AS VARCHAR) END
                       AS pkey
                FROM before b LEFT JOIN orphan_names o ON b.is_orphan AND o.target = b.target
                WHERE b.is_true = 1
                UNION
                SELECT t.is_orphan, {profile_key('t')} AS pkey
                FROM {targets} t
                JOIN {members} m ON m.distinct_id = t.distinct_id AND m.resolve_time = t.resolve_time
            )
            SELECT is_orphan, CASE WHEN NOT is_orphan THEN CAST(pkey AS BIGINT) END AS mpid,
                   CASE WHEN is_orphan THEN pkey END AS orphan_identifier, TRUE AS value
            FROM true_keys
            """, temp=True)
        out.audience = engine.count(state)
        out.table_names = {"targets": targets, "resolved": resolved, "attribute_state": state}
        return out
    except BaseException:
        out.drop()
        raise


__all__ = ["CHANGED_KINDS", "DerivedReexport", "UNCHANGED_KINDS", "derive_last_run_reexport"]
