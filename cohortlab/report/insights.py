"""What the notebooks gather from a :class:`~cohortlab.lab.Lab`: the cohorts, one simulation per
cohort, the match rate at past snapshots, and the EIT-migration runs (through the migration
package's public API: plan loading, ``run_plans`` (what ``Lab.compare_plans`` runs, not stored) and
``Lab.validate_migration`` (``validate``)). The figures themselves are computed by
:mod:`.metrics`; this module only fetches."""

from __future__ import annotations

import datetime as _dt
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from cohortlab.report.notebook import open_lab
from cohortlab.simulation.remedies import REMEDY_COLUMNS


def cohort_names(lab, cohorts: str | Iterable[str] | None = None, settings=None,
                 left_out: list[tuple[str, str]] | None = None) -> list[str]:
    """The cohorts to report on: the given name(s) or id(s), each as the cohort is listed (its
    current name, or its id when another cohort holds that name now; a cohort asked twice
    once), or every cohort with membership data (snapshots or webhook payloads), sorted by
    name, but those :func:`left_out_cohorts` leaves out under ``settings`` (``left_out``: what it
    gave, when the caller has it already). A given name that
    names no cohort raises :class:`~cohortlab.simulation.membership.CohortError` (the known
    cohorts listed), as ``cohortlab report`` checks before it runs a notebook: a notebook run by
    hand that uses its cohorts only for an optional step (the migration what-if's validation)
    said nothing of a typo."""
    if isinstance(cohorts, str) or cohorts is not None:
        from cohortlab.simulation.membership import find_cohort

        # one name or id (papermill's -p cohorts 1000 gives an int), or a list of them
        names = [cohorts] if isinstance(cohorts, (str, int)) else list(cohorts)
        # each as the reports list it (CohortRef.listed_as), once: a renamed cohort asked for by its
        # id or an earlier name is shown under its current name, as the simulation names it
        return list(dict.fromkeys(find_cohort(lab.engine, str(name)).listed_as for name in names))
    from cohortlab.simulation.membership import cohorts_with_membership

    left = {c for c, _ in (left_out_cohorts(lab, cohorts, settings) if left_out is None else left_out)}
    return [c for c in cohorts_with_membership(lab.engine) if c not in left]  # a renamed cohort once


NO_MEMBER_DATA = "no member data: load a members snapshot or webhook payloads of it"
NAME_TOO_LONG = "its attribute name would be over 256 characters, which mParticle refuses"


def left_out_cohorts(lab, cohorts: str | Iterable[str] | None = None, settings=None) -> list[tuple[str, str]]:
    """``(cohort, why)`` of the cohorts a report of every cohort (``cohorts`` None) leaves out, by
    name: those of the cohorts list without membership data (``NO_MEMBER_DATA``), and those whose
    attribute name under ``settings`` is longer than mParticle allows (``NAME_TOO_LONG``: one such
    name failed every notebook). Pages and the index name them: a report of "every cohort" said
    nothing of a cohort it did not cover. None is left out when cohorts are given (each is
    reported, or fails)."""
    if isinstance(cohorts, str) or cohorts is not None:
        return []
    from cohortlab.cohort_names import cohort_names_by_id
    from cohortlab.settings import SettingsError, SyncSettings
    from cohortlab.simulation.membership import cohorts_with_membership

    s = SyncSettings.coerce(settings)
    with_members = cohorts_with_membership(lab.engine)
    by_id = cohort_names_by_id(lab.engine)
    have = {r[0] for r in lab.engine.query_rows(
        "SELECT DISTINCT cohort_id FROM mp_cohort_snapshots WHERE cohort_id IS NOT NULL "
        "UNION SELECT DISTINCT cohort_id FROM mp_webhook_pages WHERE cohort_id IS NOT NULL")}
    out = [(name, NO_MEMBER_DATA) for i, (name, _) in sorted(by_id.items(), key=lambda kv: str(kv[1][0]))
           if i not in have and name is not None and name not in with_members]
    for name in with_members:
        try:
            s.attribute_name(name)
        except SettingsError:
            out.append((name, NAME_TOO_LONG))
    return out


def snapshot_times(lab, cohort: str, limit: int | None = 12, until=None) -> list[pd.Timestamp]:
    """As-of times of a cohort's membership snapshots (the latest ``limit``, at or before
    ``until`` when given), oldest first."""
    from cohortlab.simulation.membership import CohortError, find_cohort

    try:  # the cohort's snapshots under every name it had (a renamed cohort)
        mine = find_cohort(lab.engine, cohort, "snapshots").snapshot_filter("s")
    except CohortError:  # no snapshots (webhook payloads only)
        return []
    df = lab.sql(f"SELECT DISTINCT as_of FROM mp_cohort_snapshots s WHERE {mine} ORDER BY as_of")
    times = list(pd.to_datetime(df["as_of"]))
    if until is not None:
        from cohortlab.times import naive_utc, parse_time

        t1 = pd.Timestamp(naive_utc(parse_time(until)))
        times = [t for t in times if t <= t1]
    return times[-limit:] if limit else times


def simulate_all(lab, cohorts: Iterable[str], *, at=None, settings=None) -> dict[str, Any]:
    """``lab.simulate`` for each cohort: ``{cohort: SimulationResult}``."""
    return {c: lab.simulate(c, at=at, settings=settings) for c in cohorts}


def timelines_all(lab, cohorts: Iterable[str], *, at=None, settings=None) -> dict[str, pd.DataFrame]:
    """The sync timeline of each cohort, ``{cohort: frame}``: what ``simulate_all(...)[c].timeline``
    gives, read from the simulation when ``lab`` holds it or the database stores it
    (:meth:`~cohortlab.lab.Lab.cached_simulation`: ``cohortlab simulate --store`` of the same
    settings), else played without the rest of a simulation
    (:func:`cohortlab.simulation.simulate.simulated_timeline`)."""
    from cohortlab.simulation.membership import find_cohort
    from cohortlab.simulation.simulate import simulated_timeline

    out = {}
    for c in cohorts:
        ref = find_cohort(lab.engine, c)  # looked up once, for the stored simulation and the replay
        held = lab.cached_simulation(ref, at, settings)
        out[c] = held.timeline if held is not None else simulated_timeline(lab.engine, ref, at, settings)
    return out


def remedies_all(lab, cohorts: Iterable[str], *, at=None, settings=None, since=None) -> pd.DataFrame | None:
    """``lab.remedies`` for each cohort, stacked with a ``cohort`` column; ``attrs["since"]``:
    when the remedies start (ISO text; the first cohort's); ``attrs["no_reexport"]``: ``{cohort:
    why}`` for each cohort whose re-export does not happen (no run at or before ``at``, or its last
    run fails in a pause that lasts to ``at``): its "then re-export" remedies are the next sends
    only. None on an engine that cannot simulate them (the report then says the remedies were not
    simulated)."""
    frames, starts, no_reexport = [], [], {}
    for c in cohorts:
        try:
            df = lab.remedies(c, at=at, since=since, settings=settings)
        except NotImplementedError:
            return None
        starts.append(df.attrs.get("since"))
        if df.attrs.get("no_reexport"):
            no_reexport[c] = df.attrs["no_reexport"]
        frames.append(df.assign(cohort=c))
    if not frames:
        return pd.DataFrame(columns=["cohort", *REMEDY_COLUMNS])
    out = pd.concat(frames, ignore_index=True)
    out.attrs = {"since": None if starts[0] is None else pd.Timestamp(starts[0]).isoformat(),
                 "no_reexport": no_reexport}
    return out


# what the report's figures group members by (cohortlab.report.metrics)
_COUNTED_BY = ["cohort_name", "identifier_source", "status", "gap_reason", "recoverable_via", "active_after_cutoff"]


def _stacked_resolution(sims: Mapping[str, Any]) -> str | None:
    """SQL of the simulations' resolution tables stacked (each has its cohort_name); None when
    there is none. The simulations are those of one Lab: their tables are in one engine."""
    for s in sims.values():
        s.tables["resolution"]._check()
    cols = ", ".join(["distinct_id", "identifier", "mpid", *_COUNTED_BY])
    parts = [f"SELECT {cols} FROM {s.tables['resolution'].table_name}" for s in sims.values()]
    return " UNION ALL ".join(parts) if parts else None


def resolution_counts(sims: Mapping[str, Any]) -> pd.DataFrame:
    """The members of the simulations' resolution tables counted in the engine (``n``) per value of
    what the report's figures group them by (``_COUNTED_BY``), and, for the members a figure lists,
    their identifiers: the malformed ``$mparticle_user_id`` values (``identifier``) and the members
    whose MPID lost precision (``identifier``, ``distinct_id``: one row each, in cohort and
    distinct_id order). The metrics take it as they take :func:`all_resolution` and give the same
    figures, but no per-member row reaches Python: a few hundred rows whatever the cohorts' size."""
    sql = _stacked_resolution(sims)
    if sql is None:
        return pd.DataFrame(columns=[*_COUNTED_BY, "identifier", "distinct_id", "n"])
    keys = ", ".join(_COUNTED_BY)
    engine = next(iter(sims.values())).engine
    return engine.query_df(f"""
        SELECT {keys}, identifier, distinct_id, count(*) AS n
        FROM (SELECT {keys},
                     CASE WHEN gap_reason IN ('malformed_mparticle_user_id', 'mpid_precision_loss')
                          THEN identifier END AS identifier,
                     CASE WHEN gap_reason = 'mpid_precision_loss' THEN distinct_id END AS distinct_id
              FROM ({sql}) r) c
        GROUP BY {keys}, identifier, distinct_id
        ORDER BY cohort_name, distinct_id NULLS FIRST, {keys}, identifier""")


def shared_mpid_members(sims: Mapping[str, Any]) -> pd.DataFrame:
    """The matched members of an MPID that several matched members of their cohort resolve to
    (``cohort_name, distinct_id, mpid, status``), found in the engine: what
    :func:`cohortlab.report.metrics.shared_mpids` needs of the resolution tables."""
    sql = _stacked_resolution(sims)
    if sql is None:
        return pd.DataFrame(columns=["cohort_name", "distinct_id", "mpid", "status"])
    engine = next(iter(sims.values())).engine
    return engine.query_df(f"""
        WITH matched AS (SELECT cohort_name, distinct_id, mpid, status FROM ({sql}) r WHERE status = 'matched'),
             shared AS (SELECT cohort_name, mpid FROM matched GROUP BY cohort_name, mpid HAVING count(*) > 1)
        SELECT m.* FROM matched m JOIN shared s ON s.cohort_name = m.cohort_name AND s.mpid = m.mpid
        ORDER BY m.cohort_name, m.mpid, m.distinct_id""")


def sent_before_first_profile(sims: Mapping[str, Any]) -> dict[str, int]:
    """Per cohort (only those with any), the members sent before their first Mixpanel profile
    version, a version with its own as-of time, so without a profile then
    (:func:`cohortlab.simulation.resolution.sent_before_first_profile`, what `cohortlab simulate`'s
    note counts; resolved then, under ``resolution_time: as_of``)."""
    from cohortlab.simulation.resolution import sent_before_first_profile as count

    out = {}
    for c, s in sims.items():
        s.tables["resolution"]._check()
        n, _ = count(s.engine, s.tables["resolution"].table_name, sent_only=s.settings.resolution_time == "send")
        if n:
            out[c] = n
    return out


def sent_not_true(sims: Mapping[str, Any]) -> dict[str, int]:
    """Per cohort, the profiles of the waterfall's ``not_yet_true`` step (an MPID a matched member
    resolves to, not true after the last run) whose matched members mParticle already holds: each
    was sent (``sent_at``: in the last successful run's membership), so no diff run sends it again.
    A remove sent for another Mixpanel profile of the same MPID wrote false over it, or its profile
    did not exist yet when it was sent; only a full sync (a re-export, a reconnect, a full refresh)
    sets it true. The other profiles of the step are pending: the next successful run sends them."""
    out = {}
    for c, s in sims.items():
        res, state = s.tables["resolution"].table_name, s.tables["attribute_state"].table_name
        out[c] = int(s.engine.query_rows(f"""
            WITH m AS (SELECT mpid, min(CASE WHEN sent_at IS NULL THEN 0 ELSE 1 END) AS sent
                       FROM {res} WHERE status = 'matched' GROUP BY mpid),
                 t AS (SELECT DISTINCT mpid FROM {state} WHERE value AND NOT is_orphan)
            SELECT count(*) FROM m LEFT JOIN t ON t.mpid = m.mpid
            WHERE m.sent = 1 AND t.mpid IS NULL""")[0][0])  # plain SQL: the Spark engine runs it too
    return out


def orphans_left(sim) -> int:
    """The orphan profiles true after the last run of a simulation whose member left the cohort:
    no member at the as-of time resolves to its identifier (the resolution's ``orphan_created``
    rows). A stale profile the timeline's ``stale_true`` does not count (it counts the profiles of
    matched members only): a one-time export leaves the orphan of a member who left as true as a
    matched member's profile."""
    res, state = sim.tables["resolution"].table_name, sim.tables["attribute_state"].table_name
    return int(sim.engine.query_rows(f"""
        SELECT count(*) FROM (SELECT DISTINCT orphan_identifier FROM {state} WHERE value AND is_orphan) o
        WHERE NOT EXISTS (SELECT 1 FROM {res} r WHERE r.status = 'orphan_created'
                          AND r.identifier = o.orphan_identifier)""")[0][0])  # plain SQL: Spark runs it too


def stale_orphans(lab, dynamic: Mapping[str, Any], one_time: Mapping[str, pd.DataFrame], *, at=None,
                  settings=None) -> dict[str, dict[str, int]]:
    """Per cohort, ``{"dynamic": n, "one_time": n}``: :func:`orphans_left` of the dynamic sync's
    simulation (``dynamic``) and of the one-time export's, simulated in full only when its timeline
    (``one_time``) ends with an orphan true (else none can be stale)."""
    out = {}
    for c, sim in dynamic.items():
        tl = one_time.get(c)
        has_orphan = tl is not None and len(tl) and "orphans_true" in tl.columns and int(tl["orphans_true"].iloc[-1]) > 0
        once = (orphans_left(lab.simulate(sim.ref or c, at=at, settings=with_sync_type(settings, "one_time")))
                if has_orphan else 0)
        out[c] = {"dynamic": orphans_left(sim) if len(sim.timeline) and int(sim.timeline["orphans_true"].iloc[-1]) else 0,
                  "one_time": once}
    return out


def all_resolution(sims: Mapping[str, Any]) -> pd.DataFrame:
    """The resolution tables of several simulations, stacked."""
    frames = [s.resolution for s in sims.values() if len(s.resolution)]
    if not frames:
        return pd.DataFrame(columns=["cohort_name", "distinct_id", "identifier_source", "identifier", "mpid",
                                     "status", "gap_reason", "last_seen", "active_after_cutoff",
                                     "recoverable_via", "email", "as_of"])
    return pd.concat(frames, ignore_index=True)


def verify_all(lab, cohorts: Iterable[str], *, at=None, settings=None, snapshot_at=None,
               show_personal_data: bool = False) -> dict[str, Any]:
    """``lab.verify`` for each cohort (docs/rules.md#observed-state): ``{cohort: VerifyResult}``,
    None for a cohort whose attribute no loaded mParticle profile carries (nothing observed)."""
    from cohortlab.simulation.verify import VerifyError

    out: dict[str, Any] = {}
    for c in cohorts:
        try:
            out[c] = lab.verify(c, at=at, settings=settings, snapshot_at=snapshot_at,
                                show_personal_data=show_personal_data)
        except VerifyError:  # raised only when nothing is observed for the cohort
            out[c] = None
    return out


def match_rate_over_time(lab, cohort: str, *, settings=None, limit: int = 12, until=None) -> pd.DataFrame:
    """Match rate of ``cohort`` at each of its last ``limit`` snapshots up to ``until``
    (``as_of, cohort_name, members, matched, match_rate``); empty with fewer than two snapshots.
    ``cohort_name`` is the cohort as the reports list it (its current name, or its id when another
    cohort holds that name now: :func:`cohort_names`), however it was asked for."""
    times = snapshot_times(lab, cohort, limit, until)
    if len(times) < 2:
        return pd.DataFrame(columns=["as_of", "cohort_name", "members", "matched", "match_rate"])
    # one simulation up to the latest of the times (the report's own, cached); the earlier
    # snapshots are read from its tables (exactly what simulating up to each of them gives)
    latest = lab.simulate(cohort, at=times[-1].to_pydatetime(), settings=settings)
    if latest.source == "snapshots":
        from cohortlab.simulation.simulate import outcome_counts_at

        counts = outcome_counts_at(latest, [t.to_pydatetime() for t in times])
        pairs = zip(counts["members"], counts["matched"])
    else:  # webhook membership: one simulation per time, counted in the database
        pairs = []
        for t in times:
            table = lab.simulate(latest.ref or cohort, at=t.to_pydatetime(),
                                 settings=settings).tables["resolution"].table_name
            pairs.append(lab.engine.query_rows(
                f"SELECT count(*), count(CASE WHEN status = 'matched' THEN 1 END) FROM {table}")[0])
    # named as the simulation found the cohort (a renamed one asked for by its id or an earlier name)
    rows = [(t, latest.listed_as, int(n), int(m), int(m) / int(n) if n else math.nan) for t, (n, m) in zip(times, pairs)]
    return pd.DataFrame(rows, columns=["as_of", "cohort_name", "members", "matched", "match_rate"])


def match_rates_over_time(lab, cohorts: Iterable[str], *, settings=None, limit: int = 12, until=None) -> pd.DataFrame:
    """:func:`match_rate_over_time` of several cohorts, stacked (empty frame for none)."""
    frames = [match_rate_over_time(lab, c, settings=settings, limit=limit, until=until) for c in cohorts]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=["as_of", "cohort_name", "members", "matched", "match_rate"])
    return pd.concat(frames, ignore_index=True)


def sync_type_of(settings) -> str:
    """The sync type the settings configure (``dynamic`` or ``one_time``)."""
    from cohortlab.settings import SyncSettings

    return SyncSettings.coerce(settings).sync_type


def with_sync_type(settings, sync_type: str):
    """``settings`` (None, a YAML path, a dict or SyncSettings) with ``sync_type`` replaced."""
    from cohortlab.settings import SyncSettings

    return SyncSettings.coerce(settings).replace(sync_type=sync_type)


def with_world_eit(settings, eit: str | None):
    """``settings`` whose EIT timeline is ``eit`` from the start, when ``eit`` is given (a synthetic
    world's EIT before its switch, from its manifest) and the settings' timeline is the default
    one (``customer_id``): settings that give a timeline keep it."""
    from cohortlab.settings import EitPeriod, SyncSettings

    if eit is None:
        return settings
    st = SyncSettings.coerce(settings)
    if st.eit_timeline != SyncSettings().eit_timeline:
        return settings
    return st.replace(eit_timeline=[EitPeriod(since=None, eit=eit)])


# where the EIT page's timeline came from when :func:`with_world_eit` gave it (its header says so)
WORLD_EIT_FROM = "the synthetic world's manifest"


def find_switch(lab, settings=None, switch=None, *, found=None,
                switch_from: str | None = None) -> tuple[_dt.datetime | None, str]:
    """The EIT switch to study and where it comes from, never invented
    (:func:`cohortlab.migration.switch.find_switch`: the ``switch`` parameter, else the settings'
    ``eit_timeline``, else the data's first MPID-keyed activity, ``found`` when the report read it
    already). ``switch_from``: where the report found the ``switch`` it gave the page
    (``"manifest"``: a synthetic world's manifest.json, :func:`cohortlab.loaders.folder.world_hints`),
    said instead of "the switch parameter", which no one gave. ``(None, "none")`` when none of
    them gives one."""
    from cohortlab.migration.switch import find_switch as _find

    try:
        sw = _find(lab.engine, switch, settings, found=found)
    except ValueError:
        return None, "none"
    if sw.source == "parameter" and switch_from in SWITCH_SOURCES:
        return sw.at, SWITCH_SOURCES[switch_from]
    # from data without any $user_id identified is keyed by no device id, as migrate compare says (Switch.text)
    return sw.at, SWITCH_SOURCES[sw.source if sw.identified else "data_any"]


SWITCH_SOURCES = {"parameter": "the switch parameter",
                  "manifest": "the synthetic world's manifest (manifest.json: its EIT step to mparticle_id)",
                  "settings": "the settings' eit_timeline",
                  "data": "the data: the first identified event keyed by an existing MPID",
                  "data_any": ("the data: the first identified event keyed by an existing MPID; no event has a "
                               "$user_id: identified is keyed by no device id")}


def migration_plans(plans=None, *, switch_at=None, settings=None) -> list:
    """Plans from YAML file(s) (a path or a list of paths), or the standard four (switch only,
    switch + Rule, Rule only, do nothing) around ``switch_at`` (see :func:`find_switch`), with the
    settings' event identity cutoff and EIT before the switch, as ``migrate compare`` builds them
    (:func:`cohortlab.migration.switch.plans_around`)."""
    from cohortlab.migration.plans import load_plans
    from cohortlab.migration.switch import plans_around

    if plans is None:
        if switch_at is None:
            from cohortlab.migration.switch import NO_SWITCH

            raise ValueError(f"no EIT switch to study: {NO_SWITCH}; give the parameter switch (the day to "
                             "study) or plans")
        return plans_around(switch_at, settings=settings)
    paths = [plans] if isinstance(plans, (str, os.PathLike)) else list(plans)
    out = []
    for p in paths:
        out += load_plans(p)
    return out


def migration_window(lab, start=None, end=None, activity: str = "observed") -> tuple[_dt.date, _dt.date]:
    """(first day, last day) of the prediction: given, or the events' range; with ``activity``
    ``repeat`` the end defaults to one projected period past the last event, and a given end must
    be after it, as ``migrate compare`` decides (:func:`cohortlab.migration.run.default_window`)."""
    from cohortlab.migration.run import default_window

    d0, d1, _ = default_window(lab.engine, start or None, end or None, activity=activity)
    return d0, d1


def switch_in_window(lab, settings=None, switch=None, *, end_day, end_given: bool,
                     found=None, switch_from: str | None = None) -> tuple[_dt.datetime | None, str]:
    """:func:`find_switch` (``found``: the data's switch as the report read it already), refused (a ``SettingsError``, one line) when the standard plans around
    it cannot differ in the window ending on ``end_day`` (``end_given``: the parameter ``end``,
    else the data's): a switch before the first event or after the window's last day
    (:func:`cohortlab.migration.switch.check_switch_in_window`). The EIT page and the report's
    check before any page runs read it alike."""
    from cohortlab.migration.switch import check_switch_in_window

    switch_at, source = find_switch(lab, settings, switch, found=found, switch_from=switch_from)
    if switch_at is not None:
        check_switch_in_window(lab.engine, switch_at, end_day, "parameter" if end_given else "data",
                               how=f"from {source}")
    return switch_at, source


def check_since(timelines: Iterable[Any], since: Any) -> None:
    """The sync page's ``since`` against the runs simulated (each cohort's timeline): after the
    last run of every cohort there is no run to show, and the page showed 0 members and 0
    profiles true after "the last run" (a :class:`~cohortlab.errors.SettingsError` instead)."""
    if since is None:
        return
    import pandas as pd

    from cohortlab.errors import SettingsError
    from cohortlab.times import format_minute, naive_utc, parse_time

    last = [pd.Timestamp(t["run_at"].max()) for t in timelines if len(t)]
    t0 = pd.Timestamp(naive_utc(parse_time(since, "since")))
    if last and t0 > max(last):
        raise SettingsError(f"since: {format_minute(t0)} is after the last run ({format_minute(max(last))}): "
                            "no run to show; give an earlier time, or none")


def check_plan_parameters(plans: Any = None, switch: Any = None, validate_plan: Any = None) -> None:
    """The EIT page's plan parameters, before any plan runs (``cohortlab report`` asks before any
    folder or kernel, the page's setup cell when run by hand): ``plans`` with ``switch`` (the plans'
    own EIT timelines decide the switch, which the page ignored), ``plans`` that do not read, and a
    ``validate_plan`` naming none of the plans (of the four standard ones without ``plans``; a typo
    failed after every plan had been simulated). A :class:`~cohortlab.errors.SettingsError` naming
    the parameter."""
    from cohortlab.errors import SettingsError, close_names
    from cohortlab.migration.plans import standard_plans

    if plans and switch:
        raise SettingsError("plans and switch both given: the plans' own EIT timelines decide the switch; give "
                            "plans, or switch alone for the four standard plans switching then")
    names = [p.name for p in standard_plans("2026-01-01")]  # their names, whatever the switch
    if plans:
        try:
            names = [p.name for p in migration_plans(plans)]
        except (OSError, ValueError) as e:  # PlanError is a ValueError
            raise SettingsError(f"plans: {e}") from None
    if validate_plan is not None and str(validate_plan) not in names:
        near = close_names(str(validate_plan), names, n=1, cutoff=0.6)
        raise SettingsError(f"validate_plan: no plan named {str(validate_plan)!r}"
                            + (f" (did you mean {near[0]!r}?)" if near else "")
                            + f"; the plans: {', '.join(names)}")


def run_migration(lab, plans, start, end, *, settings=None, activity: str = "observed"):
    """``(daily, summary)`` of every plan (``run_plans``, as ``lab.compare_plans`` runs it, but
    nothing is stored: the report reads the returned frames, and writing every plan's users as
    ``migration_users`` into the read-only lab's memory was a fifth of the run)."""
    from cohortlab.migration.run import run_plans

    run = run_plans(lab.engine, list(plans), start, end, settings=settings, activity=activity, store=False)
    return run.daily, run.summary


def plan_markers(plans, daily: pd.DataFrame | None = None) -> pd.DataFrame:
    """``plan, date, label`` of every dated change of the plans (EIT switches, remediation starts),
    inside the days of ``daily`` when given: the dashed lines of the migration chart."""
    from cohortlab.times import naive_utc

    rows = [{"plan": p.name, "date": pd.Timestamp(naive_utc(t)), "label": label}
            for p in plans for t, label in p.changes]
    events = pd.DataFrame(rows, columns=["plan", "date", "label"]).drop_duplicates(["date", "label"])
    if daily is not None and len(daily):
        lo = pd.to_datetime(daily["day"]).min()
        hi = pd.to_datetime(daily["day"]).max() + pd.Timedelta(days=1)
        events = events[(events["date"] >= lo) & (events["date"] <= hi)]
    return events.reset_index(drop=True)


def migration_chart(daily: pd.DataFrame, plans):
    """Predicted match rate per plan over time, with the plans' changes marked."""
    from cohortlab.charts import migration_match_rate_chart

    return migration_match_rate_chart(daily, time="day", series="plan", events=plan_markers(plans, daily))


class MigrationValidation:
    """Predicted vs observed per cohort for one plan (``comparison``: cohort_name, predicted,
    observed; ``summary``: one row per cohort, its counts and rates as each
    :class:`~cohortlab.migration.validate.ValidationResult` gives them; ``verdict``: text)."""

    def __init__(self, plan: str, results: Mapping[str, Any]):
        self.plan = plan
        self.results = dict(results)
        self.comparison = pd.DataFrame(
            [(c, r.predicted_match_rate, r.observed_match_rate) for c, r in self.results.items()],
            columns=["cohort_name", "predicted", "observed"],
        )
        # one row per cohort, never pooled: a member of two cohorts is a member of each, and the
        # cohorts' rates are of different members (docs/reports.md: the EIT page's validation)
        self.summary = pd.DataFrame(
            [{"cohort_name": c, "as_of": r.at, "members": r.members, "predicted_matched": r.predicted_matched,
              "observed_matched": r.observed_matched, "predicted_match_rate": r.predicted_match_rate,
              "observed_match_rate": r.observed_match_rate, "users_differ": r.differ}
             for c, r in self.results.items()],
            columns=["cohort_name", "as_of", "members", "predicted_matched", "observed_matched",
                     "predicted_match_rate", "observed_match_rate", "users_differ"],
        )
        self.verdict = "\n".join(f"- **{c}**: {r.verdict}" for c, r in self.results.items())


def migration_validation(lab, plans, validate_plan=None, cohorts=(), *, observed_db=None, observed_data=None,
                         settings=None, at=None, activity: str = "observed",
                         timezone: str | None = None) -> MigrationValidation | None:
    """Validate one plan against exports taken after the switch (``observed_db`` or
    ``observed_data``); None when neither is given. ``timezone``: the project's time zone of
    ``observed_data``'s raw events (unused with ``observed_db``, which wins)."""
    if not observed_db and not observed_data:
        return None
    plan = next((p for p in plans if p.name == validate_plan), None) if validate_plan else plans[0]
    if plan is None:
        raise ValueError(f"no plan named {validate_plan!r} (plans: {[p.name for p in plans]})")
    current = getattr(lab.engine, "database", None)
    same = observed_db is not None and current not in (None, ":memory:") and (
        Path(str(observed_db)).resolve() == Path(str(current)).resolve())
    obs_lab = lab if same else open_lab(observed_db, observed_data, names=("observed_db", "observed_data"),
                                        timezone=None if observed_db else timezone)
    from cohortlab.migration.validate import validate_against

    results = {}
    try:
        for c in cohort_names(obs_lab, list(cohorts) or None):
            # named as the observed database lists it (c), not looked up again in this one
            results[c] = validate_against(lab, obs_lab, plan, c, at, settings=settings, activity=activity)
    finally:  # the observed data opened here, and its simulations, are given back once read
        if obs_lab is not lab:
            obs_lab.close()
    return MigrationValidation(plan.name, results)
