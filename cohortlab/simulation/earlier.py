"""A simulation at an earlier time, derived from a later one of the same cohort and settings.

``verify`` simulates a cohort at the time of the mParticle snapshot, usually a little before the
cohort's latest snapshot, which the report (and ``cohortlab simulate``) has simulated already.
The earlier simulation is the later one cut at its time, with the members at that time resolved:

* **What carries over** (snapshot membership, identifiers decided at send time): the versions
  at or before ``at`` keep their numbers and transitions (a snapshot's enters and leaves depend
  on it and the one before), the runs at or before ``at`` their kind and membership, and the
  decisions of those runs their time (a run never looks ahead: the argument of
  :func:`cohortlab.simulation.simulate.outcome_counts_at`). They are copied, cut at ``at``.
* **What is simulated again**, on those rows: the members' profile versions, the sends, the
  members at ``at`` (:func:`final_members_stage`), and every step from the targets on (writes,
  attribute state, resolution, timeline, waterfall). The resolution of each (member, time) is
  read from the later simulation when it resolved that pair (a function of the pair), and
  resolved here for the others (members never sent by a run at or before ``at``).

Not derived (``None``: simulate in full): another engine than DuckDB, webhook membership (a message may straddle ``at``),
``resolution_time = "as_of"`` (every decision resolves at the as-of time, which moves), a later
simulation that is not later, and one without the tables the cut reads (a debug run lists more,
a stored one keeps them: :data:`cohortlab.simulation.store.STORED_TABLES`). The result equals
``simulate(engine, cohort, at, settings)`` table for table (tests/simulation/test_earlier.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cohortlab.pipeline import Pipeline, sql_ts
from cohortlab.simulation.membership import find_cohort
from cohortlab.simulation.resolution import add_resolve_steps, has_profile_history, member_history_kind
from cohortlab.simulation.sync import Names, RunGrid, SyncRun, member_profiles_stage, sync_stages
from cohortlab.times import naive_utc, parse_time

if TYPE_CHECKING:
    from cohortlab.simulation.simulate import SimulationResult

# the later simulation's tables the cut reads
NEEDED = ("versions", "transitions", "member_emails", "runs", "decisions", "resolved")


def derivable(base: "SimulationResult", at: Any) -> bool:
    """Whether :func:`simulate_earlier` can derive the simulation at ``at`` from ``base``."""
    if getattr(base.engine, "name", None) != "duckdb":  # the cut's SQL: ANTI/SEMI JOIN, UNION BY NAME
        return False
    if base.source != "snapshots" or base.settings.resolution_time != "send":
        return False
    if any(t not in base.table_names for t in NEEDED) or any(t.dropped for t in base.tables.values()):
        return False
    t = naive_utc(parse_time(at, "at"))
    return naive_utc(base.t0) <= t <= naive_utc(base.at)


def simulate_earlier(base: "SimulationResult", at: Any, *, run_id: str | None = None) -> "SimulationResult | None":
    """The simulation of ``base``'s cohort with ``base``'s settings at ``at`` (at or before
    ``base.at``), from ``base``'s tables (module docstring), or None when it cannot be derived.
    Its tables are its own (temporary, ``sim_<run id>_*``): ``base`` may go afterwards."""
    from cohortlab.simulation.simulate import new_run_id, result_of_run

    if not derivable(base, at):
        return None
    engine, s, b = base.engine, base.settings, base.table_names
    at_ = parse_time(at, "at")
    # the cohort as base found it: its name may be another cohort's now too (found by its id)
    ref = base.ref or find_cohort(engine, base.cohort, "snapshots")
    rid = run_id or new_run_id()
    n = Names(f"sim_{rid}_")
    last = RunGrid(base.t0, at_, s).last
    run = SyncRun(ref, at_, base.t0, s, base.attribute, n)

    def play(table: str, pipeline: Pipeline) -> None:
        run.step_counts[table[len(n.prefix):]] = pipeline.run(engine, table, temp=True)

    def cut(step: str, where: str) -> Pipeline:
        return Pipeline().add(step, f"SELECT * FROM {b[step]} WHERE {where}")

    play(n.versions, cut("versions", f"at_time <= {sql_ts(at_)}"))
    play(n.transitions, cut("transitions", f"version <= (SELECT coalesce(max(version), 0) FROM {n.versions})"))
    play(n.member_emails, cut("member_emails", "TRUE"))  # snapshots carry no emails
    versioned = has_profile_history(engine)  # as run_sync decides it
    play(n.member_profiles, member_profiles_stage(n, versioned))
    history = member_history_kind(engine, n.member_profiles) if versioned else "none"
    for table, pipeline in sync_stages(ref, at_, base.t0, s, base.attribute, n, history):
        step = table[len(n.prefix):]
        if step == "seen_deltas":
            continue  # read only by decisions, which are cut from the later simulation's
        if step == "runs":
            pipeline = cut("runs", f"k <= {int(last)}")
        elif step == "decisions":
            pipeline = cut("decisions", f"k <= {int(last)}")
        elif step == "resolved":
            pipeline = _resolved(n, b["resolved"], s, history)
        play(table, pipeline)
    return result_of_run(engine, run, rid)


def _resolved(n: Names, known: str, settings, history) -> Pipeline:
    """``resolved`` of the requests ``n.requests``: the rows of ``known`` (the later simulation's)
    for the (member, time) pairs it resolved, the others resolved here."""
    pair = "r.distinct_id = q.distinct_id AND r.resolve_time = q.resolve_time"
    p = Pipeline().add("reqs", f"SELECT q.distinct_id, q.resolve_time FROM {n.requests} q "
                               f"ANTI JOIN {known} r ON {pair}")
    add_resolve_steps(p, "reqs", settings, history, versions=n.member_profiles)
    p.add("resolved_both", f"SELECT r.* FROM {known} r SEMI JOIN {n.requests} q ON {pair} "
                           f"UNION ALL BY NAME SELECT * FROM {p.output}")
    return p


__all__ = ["NEEDED", "derivable", "simulate_earlier"]
