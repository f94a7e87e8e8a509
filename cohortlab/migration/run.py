"""Running the migration what-if: :func:`run_plans` predicts every plan day by day on the same
data; :func:`compare` is what ``cohortlab migrate compare`` and the report call: the window,
the plans (or the standard four around a switch date that is never invented), the run, which
plan is best (or which tie), what the rates count, and for a cohort why ``simulate`` differs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Iterable

import pandas as pd

from cohortlab.engines.base import Engine
from cohortlab.errors import SettingsError
from cohortlab.migration.model import (REPEAT_DAYS, RunTables, daily_pipeline, fix_sql, milestones_pipeline,
                                       profile_shape, profiles_pipeline, remediation_writes, run_pipeline,
                                       status_pipeline)
from cohortlab.migration.persons import Prepared, cohort_scope_sql, latest_snapshot_sql, prepare
from cohortlab.migration.plans import MigrationPlan
from cohortlab.migration.store import DAILY_TABLE, PLANS_TABLE, SUMMARY_TABLE, USERS_TABLE, replace_rows
from cohortlab.migration.switch import (Switch, check_switch_in_window, find_switch, plans_around, settings_switch,
                                        timeline_before_switch)
from cohortlab.migration.validate import Reconciliation, check_activity, reconcile
from cohortlab.pipeline import Pipeline, sql_str, sql_ts
from cohortlab.settings import SyncSettings
from cohortlab.times import format_time, naive_utc, parse_day

if TYPE_CHECKING:  # pragma: no cover
    from cohortlab.simulation.membership import CohortRef

TIE_PP = 0.05  # plans whose final rates are within this many percentage points tie

MAX_WINDOW_DAYS = 3660  # days of one what-if window (~10 years): refused above, not run out of memory


# --------------------------------------------------------------------------- run_plans
@dataclass
class PlanRun:
    """What :func:`run_plans` returns. ``daily``: one row per plan and day; ``summary``: one row
    per plan; ``population``: what the rates count (text); ``tables``: the run's intermediate
    tables (dropped at the end of the run unless kept: ``keep_tables`` or ``debug``);
    ``step_counts``: rows per step and table in debug mode."""
    daily: pd.DataFrame
    summary: pd.DataFrame
    plans: list[MigrationPlan]
    start: date
    end: date
    activity: str
    cohort: str | None
    population: str
    tables: RunTables
    prepared: Prepared
    step_counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def drop_tables(self, engine: Engine) -> None:
        self.tables.drop(engine)


def time_to_fraction(daily: pd.DataFrame, since: datetime | None, fraction: float) -> float | None:
    """Days from ``since`` (or the window start) until the match rate reaches ``fraction`` of its
    final value and stays there; None if the final rate is 0."""
    if daily.empty:
        return None
    d = daily.sort_values("day")
    final = float(d["match_rate"].iloc[-1])
    if not final or math.isnan(final):
        return None
    start = pd.Timestamp(since).tz_localize(None).normalize() if since is not None else pd.Timestamp(d["day"].iloc[0])
    ok = (d["match_rate"] >= fraction * final - 1e-12).to_numpy()
    first = len(ok)  # first index from which all later days are ok
    for i in range(len(ok) - 1, -1, -1):
        if not ok[i]:
            break
        first = i
    day = pd.Timestamp(d["day"].iloc[first])
    return max(0.0, float((day - start).days))


def no_effect_plans(plan_summary: pd.DataFrame, daily: pd.DataFrame) -> dict[str, str]:
    """``{plan: baseline}``: the plans whose daily series (members and matched, every day) is the
    series of a plan that changes nothing (no ``first_change``, e.g. "do nothing"): in the window
    they have no effect at all, whatever their own changes (and so no days to 90% / 99%)."""
    if daily.empty or "first_change" not in plan_summary.columns:
        return {}
    baselines = plan_summary.loc[plan_summary["first_change"].isna(), "plan"].tolist()

    def series(plan: str) -> list[tuple]:
        d = daily[daily["plan"] == plan].sort_values("day")
        return list(zip(d["day"], d["members"], d["matched"]))

    base = {b: series(b) for b in baselines}
    out = {}
    for plan in plan_summary.loc[plan_summary["first_change"].notna(), "plan"]:
        same = next((b for b, s in base.items() if s and series(plan) == s), None)
        if same is not None:
            out[plan] = same
    return out


def _no_days_without_an_effect(summary: pd.DataFrame, daily: pd.DataFrame) -> pd.DataFrame:
    """Plans compared side by side (:func:`compare`, the report's EIT page): no days to 90% / 99%
    for a plan with no effect in the window (:func:`no_effect_plans`: every day the series of a
    plan without a change). A property of the comparison, not of the plan: ``run_plans`` gives a
    plan run with others what it gives alone (a plan without a change has no days there either)."""
    if summary.empty or "first_change" not in summary.columns:
        return summary
    none = summary["first_change"].isna() | summary["plan"].isin(list(no_effect_plans(summary, daily)))
    out = summary.copy()
    for c in ("days_to_90pct", "days_to_99pct"):
        if c in out.columns:
            out.loc[none, c] = float("nan")
    return out


def _midnight_after(d: date) -> datetime:
    return datetime.combine(d + timedelta(days=1), datetime.min.time())


def _daily_rates_sql(plan: MigrationPlan, cohort: str | None) -> str:
    """The last step of a plan's daily table: its name, the cohort and the rates."""
    return f"""
        SELECT {sql_str(plan.name)} AS plan, CAST({sql_str(cohort)} AS VARCHAR) AS cohort, day_index,
               CAST(day AS TIMESTAMP) AS day, as_of, eit, members, matched, people, matched_people, split_profiles,
               CAST(matched AS DOUBLE) / CASE WHEN members > 0 THEN members END AS match_rate,
               CAST(matched_people AS DOUBLE) / CASE WHEN people > 0 THEN people END AS people_match_rate,
               members - people AS overcount
        FROM daily"""


def _users_sql(users: str, plan: MigrationPlan) -> str:
    return f"""
        SELECT {sql_str(plan.name)} AS plan, pid, mpid, distinct_id, mpid_key AS keyed_by_mpid,
               first_t AS first_seen, last_t AS last_seen, events,
               rfix_t AS remediation_at, cfix_t AS event_rule_at,
               least(fix_t, fb_t) AS matchable_from, identifier_source, status, gap_reason,
               category, person_profiles, person_matched
        FROM {users}"""


def _summary_pipeline(plans: list[MigrationPlan], users: str) -> Pipeline:
    """Per plan, from its users as stored (``migration_users``): profiles per category, people
    never fixable and unmatched, and the re-export figures.

    Re-export (send-time resolution, docs/rules.md#resolution-time, on the migration model): a
    profile is sent when it first exists (it enters the cohort); a profile matched at the end
    reaches mParticle only if it was matchable when sent (``matchable_from`` at or before
    ``first_seen``: keyed by its MPID, the fallback, or its ``$mparticle_user_id`` arrived at or
    before its first event). The others are matched in Mixpanel but not in mParticle until
    re-sent: a re-export at ``reexport_at`` re-sends those whose ``$mparticle_user_id`` arrived
    by then (the earlier of ``remediation_at`` and ``event_rule_at``). Users: people (several
    profiles of one person count once), counted when no profile of theirs reaches mParticle
    without the re-export."""
    names = ", ".join(sql_str(p.name) for p in plans)
    reexport = ("CASE plan " + " ".join(f"WHEN {sql_str(p.name)} THEN {sql_ts(p.reexport_at)}" for p in plans
                                        if p.reexport_at is not None) + " END"
                if any(p.reexport_at is not None for p in plans) else "CAST(NULL AS TIMESTAMP)")
    cats = ", ".join(f"count(*) FILTER (WHERE category = {sql_str(c)}) AS {c}" for c in SUMMARY_CATEGORIES)
    p = Pipeline()
    p.add("summary_users", f"""
        SELECT plan, pid, category, person_matched, person_profiles, status = 'matched' AS matched,
               status = 'matched' AND matchable_from <= first_seen AS delivered,
               status = 'matched' AND least(remediation_at, event_rule_at) <= {reexport} AS fixed_by_reexport
        FROM {users} WHERE plan IN ({names})""")
    p.add("per_plan", f"SELECT plan, {cats} FROM summary_users GROUP BY plan")
    # a person with one profile (most of them) is that profile's row: only the persons with
    # several profiles are grouped (grouping every (plan, pid) was the costliest step of the run)
    p.add("per_person", """
        SELECT plan, pid, category = 'never_fixable' AS never_fixable, NOT person_matched AS unmatched,
               matched, delivered, fixed_by_reexport AS by_reexport
        FROM summary_users WHERE person_profiles = 1
        UNION ALL
        SELECT plan, pid, bool_or(category = 'never_fixable') AS never_fixable, bool_or(NOT person_matched) AS unmatched,
               bool_or(matched) AS matched, bool_or(delivered) AS delivered, bool_or(fixed_by_reexport) AS by_reexport
        FROM summary_users WHERE coalesce(person_profiles, 0) <> 1 GROUP BY plan, pid""")
    p.add("people", """
        SELECT plan, count(*) FILTER (WHERE never_fixable) AS never_fixable_users,
               count(*) FILTER (WHERE unmatched) AS unmatched_users,
               count(*) FILTER (WHERE matched AND NOT delivered) AS users_needing_reexport,
               count(*) FILTER (WHERE by_reexport AND NOT delivered) AS reexport_users
        FROM per_person GROUP BY plan""")
    p.add("plan_summary", """
        SELECT c.*, r.never_fixable_users, r.unmatched_users, r.users_needing_reexport, r.reexport_users
        FROM per_plan c LEFT JOIN people r ON r.plan = c.plan""")
    return p


SUMMARY_CATEGORIES = ("stranded_split", "not_in_mparticle", "mparticle_profile_deleted", "unfixed")


def _summaries(engine: Engine, plans: list[MigrationPlan], sql: str, dailies: list[pd.DataFrame],
               cohort: str | None, d0: date, d1: date) -> list[dict[str, Any]]:
    """One summary row per plan: the last day of its ``daily`` and the figures of its users
    (``sql``: :func:`_summary_pipeline`'s)."""
    got = engine.query_df(sql)
    figures = {r["plan"]: r for r in got.to_dict("records")}
    rows = []
    for plan, daily in zip(plans, dailies):
        f = figures.get(plan.name, {})

        def n(col: str) -> int:
            v = f.get(col)
            return 0 if v is None or pd.isna(v) else int(v)

        change = plan.first_change()
        last = daily.iloc[-1] if len(daily) else None
        # days from the plan's first change: none for a plan without one ("do nothing"), not days
        # from the window's start (docs/migration.md), nor for one whose first change is after the
        # window's last day (it was "0 d": nothing of it is in the window)
        in_window = change is not None and naive_utc(change) < _midnight_after(d1)
        to90, to99 = ((time_to_fraction(daily, change, 0.90), time_to_fraction(daily, change, 0.99)) if in_window
                      else (None, None))
        rows.append({
            "plan": plan.name, "cohort": cohort,
            "start": pd.Timestamp(d0), "end": pd.Timestamp(d1),
            "first_change": pd.Timestamp(naive_utc(change)) if change else pd.NaT,
            "members_end": int(last["members"]) if last is not None else 0,
            "matched_end": int(last["matched"]) if last is not None else 0,
            "final_match_rate": float(last["match_rate"]) if last is not None else float("nan"),
            "people_end": int(last["people"]) if last is not None else 0,
            "split_profiles_end": int(last["split_profiles"]) if last is not None else 0,
            "stranded_profiles": n("stranded_split"),
            "never_fixable_users": n("never_fixable_users"),
            "unmatched_users": n("unmatched_users"),
            "not_in_mparticle_profiles": n("not_in_mparticle"),
            "deleted_mparticle_profiles": n("mparticle_profile_deleted"),
            "unfixed_profiles": n("unfixed"),
            "users_needing_reexport": n("users_needing_reexport"),
            "reexport_at": pd.Timestamp(naive_utc(plan.reexport_at)) if plan.reexport_at else pd.NaT,
            "reexport_users": n("reexport_users"),
            "days_to_90pct": float("nan") if to90 is None else to90,
            "days_to_99pct": float("nan") if to99 is None else to99,
        })
    return rows


def _shapes(plans: list[MigrationPlan]) -> list[list[int]]:
    """Indices of ``plans`` grouped by :func:`profile_shape` (first appearance order)."""
    groups: dict[tuple, list[int]] = {}
    for i, p in enumerate(plans):
        groups.setdefault(profile_shape(p), []).append(i)
    return list(groups.values())


def _these(plans: list[MigrationPlan]) -> str:
    return f"plan IN ({', '.join(sql_str(p.name) for p in plans)})"


def _population(engine: Engine, t: RunTables, cohort: str | None, ref: CohortRef | None,
                summary: pd.DataFrame) -> str:
    last = summary.iloc[0] if len(summary) else None
    people = int(last["people_end"]) if last is not None else 0
    if ref is None:
        return (f"every Mixpanel profile with events (people with events: {people:,}); one person can have "
                f"several profiles after a switch. Not a cohort's members: simulate counts those (use a cohort).")
    members, as_of = engine.query_rows(f"""
        SELECT count(DISTINCT distinct_id), max(as_of) FROM mp_cohort_members
        WHERE snapshot_id = {latest_snapshot_sql(ref)}""")[0]
    return (f"the Mixpanel profiles with events of the {people:,} people behind the {members:,} members of "
            f"{cohort!r} (snapshot {format_time(as_of)}); members without events are not counted, a person "
            f"with several profiles counts each")


def run_plans(engine: Engine, plans: Iterable[Any], start: Any, end: Any, *, settings: Any = None,
              activity: str = "observed", repeat_days: int = REPEAT_DAYS, cohort: str | None = None,
              store: bool = True, debug: bool = False, keep_tables: bool = False) -> PlanRun:
    """Predict every plan over the days ``start..end`` (inclusive, state at the end of each day).
    With ``store`` the rows of these plans in ``migration_daily``, ``migration_users``,
    ``migration_summary`` and ``migration_plans`` are replaced (whole-table writes). ``cohort``:
    only the people behind the members of that cohort's latest snapshot (all their Mixpanel
    profiles), instead of everyone; found by its name, an earlier name or its id, the rows name it
    as the reports list it (``CohortRef.listed_as``). ``activity="repeat"`` projects the activity of the last
    ``repeat_days`` days past the last event; it adds nothing to a window that ends before then."""
    plans = [MigrationPlan.coerce(p) for p in plans]
    names = [p.name for p in plans]
    if len(set(names)) != len(names):
        raise SettingsError(f"plan names must be unique: {names}")
    st = SyncSettings.coerce(settings)
    d0, d1 = parse_day(start, "start"), parse_day(end, "end")
    if d1 < d0:
        raise SettingsError(f"window end {d1} is before its start {d0}")
    if (d1 - d0).days + 1 > MAX_WINDOW_DAYS:
        raise SettingsError(f"window {d0} .. {d1} is {(d1 - d0).days + 1:,} days: at most {MAX_WINDOW_DAYS:,} days "
                            "(one row per day per plan); pick a later --start or an earlier --end")
    check_activity(activity)
    # the cohort by its name, an earlier name or its id (a renamed cohort's snapshots under every name),
    # before any work: an unknown cohort, or one without membership snapshots, is refused at once
    from cohortlab.simulation.membership import find_cohort

    ref = find_cohort(engine, cohort, "snapshots") if cohort else None
    if ref is not None:  # the rows and lines name it as simulate and the reports do, however it was asked for
        cohort = ref.listed_as
    window_end = _midnight_after(d1)
    t = RunTables()
    try:
        prep = prepare(engine, t, plans, window_end=window_end, project=activity == "repeat",
                       repeat_days=repeat_days, debug=debug, keep=keep_tables)
        counts = dict(prep.counts)
        if ref is not None:
            engine.materialise(t.scope, cohort_scope_sql(t, ref), temp=not debug)
            t.created.append(t.scope)
        days = [d0 + timedelta(days=i) for i in range((d1 - d0).days + 1)]
        daily_tables, users = [t.plan(i, "daily") for i in range(len(plans))], []
        shape_of: dict[int, int] = {}  # plan index -> its shape

        def shape_profiles(g: int) -> str:  # a shape's profiles table
            return t.name(f"shape{g}_profiles")

        rfix: dict[int, str] = {}  # plan index -> its remediation column there (or a NULL timestamp)
        for g, members in enumerate(_shapes(plans)):
            # one profiles pass and one milestones pass for the plans of one shape (they differ
            # only by their remediations: one rfix_<i> column each)
            first = plans[members[0]]
            rems = list(dict.fromkeys(r for r in (remediation_writes(plans[i]) for i in members) if r is not None))
            profiles, milestones = shape_profiles(g), t.name(f"shape{g}_milestones")
            counts[profiles] = run_pipeline(engine, t, profiles_pipeline(
                first, t, window_end=window_end, observed_only=activity == "observed", scoped=bool(cohort),
                remediations=rems), profiles, debug=debug)
            for i in members:
                r = remediation_writes(plans[i])
                shape_of[i] = g
                rfix[i] = f"rfix_{rems.index(r)}" if r is not None else "CAST(NULL AS TIMESTAMP)"
            variants = sorted({rfix[i] for i in members})
            counts[milestones] = run_pipeline(engine, t, milestones_pipeline(
                profiles, [fix_sql(v) for v in variants], len({x.eit for x in first.eit_timeline})),
                milestones, debug=debug)
            for i in members:
                plan = plans[i]
                eits = [plan.eit_at(_midnight_after(d).replace(tzinfo=timezone.utc)) for d in days]
                dp = daily_pipeline(profiles, milestones, d0, d1, [st.fallback_applies(e) for e in eits], eits,
                                    fix=fix_sql(rfix[i]), p_fix=f"p_fix_{variants.index(rfix[i])}")
                dp.add("daily_rates", _daily_rates_sql(plan, cohort))
                counts[daily_tables[i]] = run_pipeline(engine, t, dp, daily_tables[i], debug=debug)
        # every plan's users as stored (migration_users), in one statement: the summary is read
        # from them (from the stored table, written once; without store straight from the steps,
        # nothing written, and without the gap reasons, which it does not read)
        kept = keep_tables or debug  # the run's tables are read afterwards: each plan's users a table
        users = Pipeline()
        for i, plan in enumerate(plans):
            sp = status_pipeline(shape_profiles(shape_of[i]), plan, st, window_end,
                                 rfix=("k." if rfix[i].startswith("rfix_") else "") + rfix[i],
                                 suffix="" if kept else f"_{i}", lookups=None if kept else f"_shape{shape_of[i]}",
                                 reasons=store or kept)
            if kept:
                counts[t.plan(i, "users")] = run_pipeline(engine, t, sp, t.plan(i, "users"), debug=debug)
            else:
                for step in sp.steps:  # the gap-reason lookups of a shape: once, for all its plans
                    if not users.has(step.name):
                        users.add(step.name, step.sql)
        users.add("plan_users", "\nUNION ALL\n".join(
            _users_sql(t.plan(i, "users") if kept else f"categories_{i}", plan) for i, plan in enumerate(plans)))
        dailies = [_read_daily(engine, d) for d in daily_tables]
        daily = pd.concat(dailies, ignore_index=True) if dailies else pd.DataFrame()
        if store:
            replace_rows(engine, USERS_TABLE, [f"({users.sql()}) AS u"], _these(plans))
            summarise = _summary_pipeline(plans, USERS_TABLE)
        else:
            summarise = users
            for step in _summary_pipeline(plans, "plan_users").steps:
                summarise.add(step.name, step.sql)
        rows = _summaries(engine, plans, summarise.sql(), dailies, cohort, d0, d1)
        summary = pd.DataFrame(rows)
        if len(summary):
            summary["cohort"] = summary["cohort"].astype("string")
        if store:
            _store(engine, t, plans, daily_tables, summary)
        population = _population(engine, t, cohort, ref, summary)
    finally:
        if not (keep_tables or debug):
            t.drop(engine)
    return PlanRun(daily, summary, plans, d0, d1, activity, cohort, population, t, prep, counts if debug else {})


def _read_daily(engine: Engine, table: str) -> pd.DataFrame:
    daily = engine.query_df(f"SELECT * FROM {table} ORDER BY day_index")
    daily["cohort"] = daily["cohort"].astype("string")
    daily["day"] = pd.to_datetime(daily["day"])
    return daily


def _store(engine: Engine, t: RunTables, plans: list[MigrationPlan], dailies: list[str],
           summary: pd.DataFrame) -> None:
    """Replace the rows of these plans in the stored daily, summary and plans tables (the users
    are written by :func:`run_plans`), each in one whole-table write."""
    these = _these(plans)
    frames = {SUMMARY_TABLE: summary, PLANS_TABLE: pd.DataFrame({
        "plan": [p.name for p in plans], "definition": [p.model_dump_json() for p in plans],
        "yaml": [p.to_yaml() for p in plans]})}
    replace_rows(engine, DAILY_TABLE, dailies, these)
    for table, frame in frames.items():
        name = t.name(f"new_{table}")
        engine.materialise_frame(name, frame, temp=True)
        t.created.append(name)
        replace_rows(engine, table, [name], these)


# --------------------------------------------------------------------------- compare
def best_plans(summary: pd.DataFrame, tie_pp: float = TIE_PP) -> list[str]:
    """The plans whose final match rate is within ``tie_pp`` percentage points of the highest
    (one name: a clear best; several: a tie; none when no plan has a rate)."""
    rates = summary.set_index("plan")["final_match_rate"].astype(float).dropna()
    if rates.empty:
        return []
    top = rates.max()
    return [p for p, r in rates.items() if (top - r) * 100 <= tie_pp + 1e-9]


@dataclass
class Comparison:
    """What :func:`compare` returns (the CLI and the report read it).

    ``run``: the :class:`PlanRun` (``daily``, ``summary``, ``population``); ``best``: the best
    plan's name, or several names on a tie (``tie``); ``switch``: where the standard plans'
    switch date came from (None when plans were given); ``window_source``: ``parameter`` or
    ``data`` for each end of the window; ``reconciliation``: for a cohort, why ``simulate``
    gives another rate (None without a cohort or an observed resolution)."""
    run: PlanRun
    best: list[str]
    switch: Switch | None
    window_source: dict[str, str]
    reconciliation: Reconciliation | None = None
    tie_pp: float = TIE_PP

    @property
    def daily(self) -> pd.DataFrame:
        return self.run.daily

    @property
    def summary(self) -> pd.DataFrame:
        return self.run.summary

    @property
    def tie(self) -> bool:
        return len(self.best) > 1

    @property
    def table(self) -> pd.DataFrame:
        """The summary with ``best`` (bool) and ``behind_best_pp`` (percentage points)."""
        s = self.summary.copy()
        top = s["final_match_rate"].max() if len(s) else float("nan")
        s["best"] = s["plan"].isin(self.best)
        s["behind_best_pp"] = (top - s["final_match_rate"]) * 100
        return s

    @property
    def verdict(self) -> str:
        s = self.summary.set_index("plan")["final_match_rate"] if len(self.summary) else pd.Series(dtype=float)
        if not self.best:
            return "no plan has a match rate (no Mixpanel profiles in the window)"
        rate = f"{s[self.best[0]]:.1%}"
        if len(s) == 1:  # nothing to be best among
            return f"{self.best[0]}: {rate} at the end of the window (one plan: nothing to compare it with)"
        if self.tie:
            tied = s[self.best]
            names = ", ".join(self.best[:-1]) + " and " + self.best[-1]
            return (f"tie: {names} end at {tied.min():.1%}–{tied.max():.1%}, within "
                    f"{self.tie_pp:g} percentage points: no single best plan")
        others = s.drop(self.best).dropna()
        ahead = f", {(s[self.best[0]] - others.max()) * 100:.2f} pp ahead of {others.idxmax()}" if len(others) else ""
        return f"best: {self.best[0]} ({rate} at the end of the window{ahead})"


def default_window(engine: Engine, start: Any = None, end: Any = None, *, activity: str = "observed",
                   repeat_days: int = REPEAT_DAYS) -> tuple[date, date, dict[str, str]]:
    """``(first day, last day, source of each)``. Defaults: the first and the last event's
    days; with ``activity="repeat"`` the end defaults to the last event's day + ``repeat_days``
    (one projected period), and a given end must be after the last event's day (else the
    projection would add nothing)."""
    check_activity(activity)
    lo, hi = engine.query_rows("SELECT min(time), max(time) FROM mp_events")[0]
    if lo is None and (start is None or end is None):
        raise SettingsError("no Mixpanel events loaded: the what-if needs events (who was active when)")
    src = {"start": "parameter" if start is not None else "data", "end": "parameter" if end is not None else "data"}
    d0 = parse_day(start, "start") if start is not None else lo.date()
    if end is None:
        d1 = hi.date() + timedelta(days=repeat_days) if activity == "repeat" else hi.date()
        src["end"] = f"data + {repeat_days} days" if activity == "repeat" else "data"
    else:
        d1 = parse_day(end, "end")
        if activity == "repeat" and hi is not None and d1 <= hi.date():
            raise SettingsError(f"activity 'repeat' projects activity after the last event ({hi.date()}); the window "
                             f"end {d1} is not after it, so it would change nothing: give a later end, or "
                             f"none (default: {hi.date() + timedelta(days=repeat_days)})")
    return d0, d1, src


def compare(engine: Engine, plans: Iterable[Any] | None = None, *, switch: Any = None, start: Any = None,
            end: Any = None, settings: Any = None, activity: str = "observed", repeat_days: int = REPEAT_DAYS,
            cohort: str | None = None, observed: pd.DataFrame | None = None, observed_at: Any = None,
            store: bool = True, debug: bool = False, tie_pp: float = TIE_PP) -> Comparison:
    """Plans side by side on the same data. ``plans`` None: the standard four around the switch
    date (``switch``, else the settings', else the data's first MPID-keyed event; never a made-up
    date). Window: see :func:`default_window`. With ``cohort`` and ``observed`` (the cohort's
    resolution at ``observed_at``, as ``simulate`` finds it), the result also reconciles the two
    rates (:func:`cohortlab.migration.validate.reconcile`)."""
    sw = None
    if plans is not None and switch is not None:
        raise ValueError("give either plans or a switch date (for the standard plans), not both")
    if plans is None:
        sw = find_switch(engine, switch, settings)
        plans = plans_around(sw, settings=settings)
    d0, d1, src = default_window(engine, start, end, activity=activity, repeat_days=repeat_days)
    if sw is not None and d1 >= d0:  # (a window that ends before its start: run_plans says so first)
        check_switch_in_window(engine, sw, d1, src["end"])
    run = run_plans(engine, plans, d0, d1, settings=settings, activity=activity, repeat_days=repeat_days,
                    cohort=cohort, store=store, debug=debug)
    run.summary = _no_days_without_an_effect(run.summary, run.daily)  # as the report's EIT page shows them
    rec = None
    if cohort and observed is not None:
        at = observed_at
        if at is None and "as_of" in observed.columns and observed["as_of"].notna().any():
            at = observed["as_of"].max()  # a resolution says its own as-of time
        if at is None:
            raise ValueError("compare needs observed_at (the as-of time of the observed resolution)")
        rec = reconcile(engine, observed, run.cohort, at, settings=settings)
    return Comparison(run, best_plans(run.summary, tie_pp), sw, src, rec, tie_pp)


def settings_used(settings: Any = None, *, plans_given: bool = False, validation: bool = False,
                  switch: Any = None, eit_from: str | None = None) -> str:
    """The settings line of the report's EIT page (docs/migration.md#settings-used): the options
    the what-if uses, then the others as "not used by the what-if". It uses ``fallback``; the
    event identity cutoff and the EIT timeline only for the standard plans (``plans_given``:
    plan files, each with its own), the cutoff also for the observed side of a ``validation``;
    never the sync's options (protection, sync type and cadence, attribute, pauses, ...). The
    header showed them all, as if the plans depended on them. The standard plans carry the
    timeline before the switch (``switch``, else the settings' own:
    :func:`cohortlab.migration.switch.timeline_before_switch`); what they do not model of it is
    said. ``eit_from``: where the timeline came from when no one gave it (the report: a synthetic
    world's manifest), said beside it."""
    from cohortlab.settings import settings_summary

    st = SyncSettings.coerce(settings)
    used, unused = [], []
    for part in settings_summary(settings).split("; "):
        if part.startswith("fallback "):
            used.append(part)
        elif part.startswith(("event cutoff", "event rule off")):
            if not plans_given:
                used.append(part)
            elif validation:
                used.append(f"{part} (the observed side of the validation; each plan has its own)")
            else:
                unused.append(f"{part} (each plan has its own)")
        elif part.startswith("EIT "):
            if plans_given:
                unused.append(f"{part} (each plan has its own)")
            else:  # said, not dropped silently
                part = f"{part} before the switch ({eit_from})" if eit_from else part
                notes = timeline_not_modelled(st, switch)
                used.append(f"{part} ({notes})" if notes else part)
        else:
            unused.append(part)
    return "; ".join(used) + ("; not used by the what-if: " + "; ".join(unused) if unused else "")


def timeline_not_modelled(settings: Any, switch: Any) -> str:
    """What of the settings' EIT timeline the standard plans around ``switch`` (else the
    settings' own switch) do not model, in words; empty when they model all of it (the report's
    header and ``migrate compare`` say it alike)."""
    st = SyncSettings.coerce(settings)
    from cohortlab.times import format_minute

    at = switch.at if isinstance(switch, Switch) else switch
    at = at if at is not None else settings_switch(st)
    if at is None:  # the switch comes from the data, not known here: only the start can be said
        first = st.eit_timeline[0] if st.eit_timeline else None
        return ("the standard plans start from customer_id" if first is not None and first.since is None
                and first.eit == "mparticle_id" else "")
    carried, dropped = timeline_before_switch(st, at)
    notes = []
    if st.eit_timeline and st.eit_timeline[0].since is None and st.eit_timeline[0].eit != carried[0].eit:
        notes.append(f"the standard plans start from {carried[0].eit}")
    if dropped:
        periods = ", ".join(f"{p.eit} from {format_minute(p.since)}" for p in dropped)
        notes.append(f"not modelled by the standard plans, which switch once, at {format_minute(at)}: the "
                     f"period{'s' if len(dropped) > 1 else ''} {periods}")
    return ", ".join(notes)


def projection_words(engine: Engine, activity: str = "observed", repeat_days: int = REPEAT_DAYS) -> str | None:
    """With ``activity="repeat"``, which days of a window are projected, in words (the report's
    EIT page says it in its header and summary: its figures after the last event were read as
    measured); None for ``observed``."""
    check_activity(activity)
    if activity != "repeat":
        return None
    last = engine.query_rows("SELECT max(time) FROM mp_events")[0][0]
    if last is None:
        return None
    return (f"days after {last.date()} (the last event's day) are projected: the last {repeat_days} days of "
            "activity repeated (activity: repeat)")


__all__ = ["PlanRun", "run_plans", "settings_used", "timeline_not_modelled", "projection_words", "time_to_fraction", "no_effect_plans", "best_plans", "Comparison", "compare", "default_window",
           "TIE_PP"]
