"""``Lab``: the one object an analyst holds. A DuckDB database (in memory or a file) with the
canonical tables, the loaders, and (added by the simulation modules) resolution, sync and
reconciliation results.

    >>> from cohortlab import Lab
    >>> lab = Lab("lab.duckdb")
    >>> lab.load("mixpanel-profiles", "exports/engage/")
"""

from __future__ import annotations

import os
import warnings
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from cohortlab import schema
from cohortlab.engines import ENGINES
from cohortlab.engines.base import Engine
from cohortlab.engines.duckdb import DuckDBEngine
from cohortlab.errors import DatabaseError, InputNotFoundError, LoadWarning, SettingsError
from cohortlab.escaping import one_line
from cohortlab.loaders import LoadReport, loader_class

if TYPE_CHECKING:  # pandas is imported where a frame is made (a simulation's command need not)
    import pandas as pd

    from cohortlab.simulation.membership import CohortRef


def _drop_quietly(engine: Engine, tables: list[str]) -> None:
    """Drop a simulation's temporary tables (called when its result is garbage collected)."""
    for name in tables:
        try:
            engine.execute(f"DROP TABLE IF EXISTS {name}")
        except Exception:  # the connection may be closed already (interpreter exit)
            return


class Lab:
    """A DuckDB database (a file, or in memory) with the canonical tables, and every analysis on
    it: :meth:`load` exports, :meth:`simulate` a cohort (``resolution``, ``timeline``,
    ``waterfall``, ``gap_summary``), :meth:`verify` against mParticle, :meth:`explain` one user,
    the remedies and the EIT migration what-if, :meth:`sql` and :meth:`table` to look.

    Frames are pandas; MPIDs in them are 64-bit integers (``int64``, or ``Int64`` when a value is
    missing), never floats; distinct_ids and identifiers are text as exported. A user mistake
    (unknown cohort, bad time or setting) raises a :class:`cohortlab.errors.CohortlabError`.
    Use it as a context manager (``with Lab("x.duckdb") as lab:``) or :meth:`close` it: DuckDB
    lets one process at a time write a database file."""

    def __init__(
        self,
        database: str | os.PathLike | None = None,
        *,
        engine: Engine | None = None,
        read_only: bool = False,
        use_stored: bool = True,
        memory_limit: str | None = None,
        threads: int | None = None,
    ) -> None:
        """``database``: a DuckDB file (created, with its folder, when missing), or None for an
        in-memory database. ``read_only=True``: the file is never written (results go to
        memory). ``use_stored=False``: always simulate, never read
        a simulation stored in the database. ``engine``: an engine instead of a DuckDB database
        (e.g. :class:`cohortlab.engines.SparkEngine`). ``memory_limit`` (``"1.5GB"``) and
        ``threads``: DuckDB's (defaults: docs/settings.md#engine-settings); a misspelt option is
        Python's ``TypeError`` naming ``Lab`` and the option."""
        if database is not None and not isinstance(database, (str, os.PathLike)):  # Lab(5) made a file "5"
            raise SettingsError(f"Lab: database is a DuckDB file's path (or None for memory), not "
                                f"{type(database).__name__}")
        if engine is not None and (memory_limit is not None or threads is not None):
            raise SettingsError("Lab: memory_limit and threads are DuckDB's: set them on the engine given")
        self.engine = engine or DuckDBEngine(database, read_only=read_only, memory_limit=memory_limit, threads=threads)
        self.read_only = read_only and engine is None  # with an engine given: only no schema is made
        # read simulations stored in the database (cohortlab.simulation.store); False: always compute
        self.use_stored = use_stored
        if engine is None and database not in (None, ":memory:"):
            # tables of an older cohortlab: one line naming the file, not a binder error later
            # (naming an input file as the problem, or a traceback)
            try:
                schema.check_current(self.engine.query_rows, database)
            except DatabaseError:
                self.engine.close()
                raise
        if not read_only:
            schema.create_all(self.engine.execute)
            from cohortlab.privacy import ensure_key

            ensure_key(self.engine)

    # ------------------------------------------------------------------ loading
    def load(self, kind: str, paths, *, progress: bool = False, strict: bool = False, **options: Any) -> LoadReport:
        """Load one or more files (file, directory or glob) of ``kind``; see ``cohortlab.loaders``.
        The report's ``warnings`` list what to look at; ``strict=True`` turns them into an error
        (nothing loaded)."""
        if self.read_only:  # DuckDB's refusal named the load's id sequence and an attached "source"
            raise DatabaseError(f"cannot load into {self.engine.database or 'the database'}: this Lab opened it "
                                f"read-only (Lab(..., read_only=True)); open it without read_only to load")
        self.clear_simulations()  # cached simulations describe the data as it was
        report = loader_class(kind)(**options).load(self.engine, paths, progress=progress, strict=strict)
        self._data_changed(report)
        return report

    def _data_changed(self, report: LoadReport) -> None:
        """After a load through this lab's database (``report``): when it loaded anything, the
        stored and published simulations describe the data as it was, and are dropped (the
        cached ones went before the load: :meth:`load` and ``load_world`` clear them first)."""
        if report.load_ids:
            from cohortlab.simulation import store
            from cohortlab.simulation.simulate import drop_published

            store.drop_all(self.engine)
            drop_published(self.engine)

    def fetch(self, out: str | os.PathLike, **options: Any):
        """Download the Mixpanel and mParticle exports into the folder ``out`` and load them into
        this lab; returns a :class:`cohortlab.fetch.FetchSummary`. Options: see
        :func:`cohortlab.fetch.fetch` (credentials come from the environment or a config file)."""
        from cohortlab.fetch import fetch

        return fetch(out, lab=self, **options)

    # ------------------------------------------------------------------ looking
    def sql(self, query: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run any SQL against the database and return a DataFrame."""
        return self.engine.query_df(query, params)

    def table(self, name: str) -> pd.DataFrame:
        """The whole table ``name`` (a canonical table, ``cohortlab info --schema``, or one this
        lab or a command wrote: ``resolution``, ``migration_daily``, ...) as a DataFrame; an
        unknown name raises :class:`cohortlab.errors.SettingsError`."""
        if name not in schema.TABLES and not self.engine.table_exists(name):
            raise SettingsError(f"no table {name!r} (lab.info()['tables'] lists the canonical tables)")
        return self.engine.query_df(f"SELECT * FROM {name}")

    def info(self) -> dict[str, Any]:
        """Row counts of the canonical tables, the cohorts and their snapshots (one row per cohort
        id: a renamed cohort once, under its current name, docs/loading.md#info), the Mixpanel
        profile snapshots (``profile_snapshots``: the time each profile load counts from, and
        whether it is its ``as_of`` or its load time), time ranges, and the time zones raw event
        files were read in (``events_time_zones``: zone -> files; docs/loading.md#project-time-zone)."""
        q = self.engine.query_rows
        counts = {t: int(q(f"SELECT count(*) FROM {t}")[0][0]) for t in schema.TABLES}
        cohorts = self._cohorts_info()
        # the times send-time resolution reads each Mixpanel profile load by (docs/rules.md#resolution-time)
        profile_snapshots = self.engine.query_df(
            """
            SELECT coalesce(h.as_of, l.loaded_at) AS counts_from,
                   CASE WHEN h.as_of IS NULL THEN 'load time' ELSE 'as_of' END AS dated_by,
                   count(DISTINCT h.load_id) AS files, count(*) AS profiles
            FROM mp_profile_history h JOIN loads l ON l.load_id = h.load_id
            GROUP BY 1, 2 ORDER BY 1, 2
            """
        )
        ev = q("SELECT min(time), max(time) FROM mp_events")[0]
        zones = dict(q("SELECT coalesce(options->>'timezone', 'UTC'), count(*) FROM loads "
                       "WHERE kind = 'mixpanel-events' GROUP BY 1 ORDER BY 1"))
        wh = q("SELECT min(received_at), max(received_at) FROM mp_webhook_pages")[0]
        return {
            "database": getattr(self.engine, "database", None) or ":memory:",
            "tables": counts,
            "cohorts": cohorts,
            "profile_snapshots": profile_snapshots,
            "events_time_range": ev,
            "events_time_zones": zones,
            "webhooks_time_range": wh,
        }

    def _cohorts_info(self) -> "pd.DataFrame":
        """``info()["cohorts"]``: one row per cohort of the cohort list or the snapshots, keyed by
        its id (docs/rules.md#renamed-cohorts): its current name, and its snapshots under every
        name it had (those recorded without an id under a name that is the cohort's, as
        :func:`~cohortlab.simulation.membership.find_cohort` reads them); a name without any id
        is a row of its own."""
        import pandas as pd

        from cohortlab.cohort_names import cohort_names_by_id, ids_of_name

        by_id = cohort_names_by_id(self.engine)
        rows = self.engine.query_rows(
            """
            SELECT cohort_id, cohort_name, count(snapshot_id), min(as_of), max(as_of), max(member_count)
            FROM (SELECT cohort_id, cohort_name, snapshot_id, as_of, member_count FROM mp_cohort_snapshots
                  UNION ALL SELECT cohort_id, name, NULL, NULL, NULL FROM mp_cohorts) x
            WHERE cohort_id IS NOT NULL OR cohort_name IS NOT NULL
            GROUP BY cohort_id, cohort_name
            """
        )

        def either(a, b, pick):  # pick(a, b) of the two known values (None: unknown)
            return b if a is None else a if b is None else pick(a, b)

        merged: dict[tuple, list] = {}
        for cid, name, n, first, last, most in rows:
            if cid is None:
                ids = ids_of_name(by_id, name)
                cid = ids[0] if len(ids) == 1 else None
            key = (by_id[cid][0], cid) if cid is not None else (name, None)
            m = merged.get(key, [0, None, None, None])
            merged[key] = [m[0] + int(n), either(m[1], first, min), either(m[2], last, max), either(m[3], most, max)]
        out = [(name, cid, *m) for (name, cid), m in merged.items()]
        out.sort(key=lambda r: (r[0] is None, r[0] or "", r[1] or ""))
        df = pd.DataFrame(out, columns=["cohort_name", "cohort_id", "snapshots", "first_as_of", "last_as_of",
                                        "max_members"])
        for c in ("first_as_of", "last_as_of"):
            df[c] = pd.to_datetime(df[c])
        df["max_members"] = df["max_members"].astype("Int64")
        return df

    # ================================================================== simulation (docs/rules.md#resolution, #sync-over-time)
    # Resolution of cohort members, the sync simulation over time and the discrepancy waterfall,
    # through the one entry cohortlab.simulation.simulate. Each simulation writes its own tables
    # (sim_<run id>_*, temporary); the shortcuts below reuse one cached simulation per
    # (cohort, at, settings, source). Loading data clears the cache. A simulation stored in the
    # database (cohortlab.simulation.store, tables simstore_*) is read instead of computed, by
    # any Lab on that file (also a read-only one) while the data is unchanged.
    _SIM_CACHE_SIZE = 8

    def _sim_cache(self) -> "OrderedDict[tuple, Any]":
        cache = self.__dict__.get("_sims")
        if cache is None:
            cache = self.__dict__["_sims"] = OrderedDict()
        return cache

    def clear_simulations(self) -> None:
        """Forget the cached simulations and drop their tables (the data they describe changed).
        Stored simulations stay (they are dropped when a load changes the data)."""
        cache = self._sim_cache()
        while cache:
            _, result = cache.popitem(last=False)
            result.drop()

    def simulate(self, cohort: str, at: Any = None, settings: Any = None, *, source: str = "auto",
                 debug: bool = False, publish: bool = False, store: bool = False):
        """Resolution, sync over time, waterfall, attribute state and gap summary at ``at``, as a
        :class:`cohortlab.simulation.simulate.SimulationResult` whose tables are read on demand
        (``result.tables[name].table_name``, ``.as_pandas()``, ``.count()``). ``settings``: a
        :class:`SyncSettings`, a dict of options or a YAML path. ``publish=True`` also stores the
        results as tables ``resolution``, ``timeline``, ``waterfall``, ``attribute_state`` and
        ``gap_summary``. ``debug=True`` materialises every step; row counts in
        ``result.step_counts``. The same call again returns the cached result. ``cohort``: its name,
        an earlier name or its id, or the ``CohortRef`` found already on this data (``result.ref``:
        the cohort as found, which steps after a simulation read instead of its name).

        Where the result comes from: this Lab's cache, else a simulation stored in the database
        for the same call on the same data (``result.stored`` is then True;
        :mod:`cohortlab.simulation.store`), else cut from a simulation of the same cohort and
        settings at a later time, held here or the latest one stored (DuckDB;
        :mod:`cohortlab.simulation.earlier`), else it is computed. ``store=True`` also stores it in
        the database (DuckDB, writable), so that later processes reuse it
        (``result.store_event``: ``"read"``, ``"written"`` or None)."""
        from cohortlab.settings import SyncSettings
        from cohortlab.simulation import store as sim_store
        from cohortlab.simulation.membership import find_cohort
        from cohortlab.simulation.simulate import simulate

        s = SyncSettings.coerce(settings)
        ref = find_cohort(self.engine, cohort, source)
        key = self._sim_key(ref, at, s, debug)
        if store and debug:
            raise sim_store.StoreError("a debug simulation is not stored (simulate without debug to store it)")
        if store and not sim_store.supported(self.engine):
            raise sim_store.StoreError(f"the {self.engine.name} engine does not store simulations "
                                       "(only a DuckDB database does): simulate without storing")
        cache = self._sim_cache()
        result = cache.get(key)
        if result is None and not debug:
            result = self._stored_simulation(key, ref)
        if result is None:
            # cut from a later one when it can be, else simulated in full
            result = None if debug else self._earlier_of_held(key, ref, s)
            result = result or simulate(self.engine, ref, at, s, debug=debug)
            # the tables go when nothing holds the result any more (evicted and not in use)
            weakref.finalize(result, _drop_quietly, self.engine, list(result.table_names.values()))
        if key in cache:
            cache.move_to_end(key)
        else:
            cache[key] = result
        while len(cache) > self._SIM_CACHE_SIZE:
            cache.popitem(last=False)  # a caller may still hold it: its tables stay until then
        if store and not result.stored:
            sim_store.save(self.engine, sim_store.store_key(*key[:4]), result)
            result.store_event = "written"
        if publish:
            result.publish()
        self.last_step_counts = result.step_counts
        return result

    def _earlier_of_held(self, key: tuple, ref, settings):
        """The simulation of ``key`` (cohort ``ref``, ``settings``) cut from one of the same cohort
        and settings at a later time (:mod:`cohortlab.simulation.earlier`): one in this Lab's
        cache, else the cohort's latest one stored in the database (``verify`` at the mParticle
        snapshot after ``simulate`` of the latest snapshot); None when there is none to cut."""
        from cohortlab.simulation.earlier import simulate_earlier

        cache = self._sim_cache()
        same = (*key[:2], key[3], False)  # cohort, source, settings; not a debug run
        for k, base in reversed(cache.items()):  # the most recently used first
            if (*k[:2], k[3], k[4]) == same and (cut := simulate_earlier(base, key[2])) is not None:
                return cut
        latest = self._sim_key(ref, None, settings)
        base = None if latest == key or latest in cache else self._stored_simulation(latest, ref)
        if base is None:
            return None
        cache[latest] = base  # read once: later calls find it here
        return simulate_earlier(base, key[2])

    def _stored_simulation(self, key: tuple, ref):
        """The simulation stored in the database under ``key`` (valid for the data), or None; it
        carries ``ref``, the cohort as found for this call (``SimulationResult.ref``)."""
        if not self.use_stored:
            return None
        from cohortlab.simulation import store as sim_store

        result = sim_store.lookup(self.engine, sim_store.store_key(*key[:4]))
        if result is not None:
            result.store_event = "read"
            result.ref = ref
        return result

    def _sim_key(self, ref, at: Any, settings, debug: bool = False) -> tuple:
        from cohortlab.simulation.store import key_parts

        return (*key_parts(ref, at, settings), debug)

    def cached_simulation(self, cohort: str | CohortRef, at: Any = None, settings: Any = None, *, source: str = "auto"):
        """The result of ``simulate(cohort, at, settings, source)`` when it needs no computing (cached
        in this Lab, or stored in the database), else None (runs nothing)."""
        from cohortlab.settings import SyncSettings
        from cohortlab.simulation.membership import find_cohort

        ref = find_cohort(self.engine, cohort, source)
        key = self._sim_key(ref, at, SyncSettings.coerce(settings))
        cache = self._sim_cache()
        result = cache.get(key)
        if result is None:
            result = self._stored_simulation(key, ref)
            if result is not None:
                cache[key] = result
                while len(cache) > self._SIM_CACHE_SIZE:
                    cache.popitem(last=False)
        return result

    def stored_simulations(self) -> pd.DataFrame:
        """The simulations stored in the database (table ``sim_store``), oldest first: one row per
        simulation with ``key, run_id, cohort, source, as_of, settings, t0, attribute, tables,
        counts, step_counts, fingerprint, version, created_at``
        (:data:`cohortlab.simulation.store.CATALOGUE_COLUMNS`); those columns also when none is
        stored."""
        import pandas as pd

        from cohortlab.simulation import store as sim_store

        columns = [name for name, _, _ in sim_store.CATALOGUE_COLUMNS]
        return pd.DataFrame(sim_store.stored(self.engine), columns=columns)

    def drop_stored_simulations(self) -> int:
        """Drop every simulation stored in the database (and their tables); returns how many."""
        from cohortlab.simulation import store as sim_store

        cache = self._sim_cache()
        for key in [k for k, r in cache.items() if r.stored]:
            for t in cache.pop(key).tables.values():
                t.dropped = True  # its holders now get DroppedTableError
        return sim_store.drop_all(self.engine)

    def resolution(self, cohort: str, at: Any = None, settings: Any = None, *, source: str = "auto",
                   debug: bool = False) -> pd.DataFrame:
        """One row per member of ``cohort`` at ``at`` (default: the cohort's latest
        snapshot/webhook time) with the outcome of the identifier it was last sent with
        (``resolution_time="send"``, default) or resolved at ``at`` (``"as_of"``): ``cohort_name,
        distinct_id, identifier_source, identifier, mpid`` (``Int64``: missing when unmatched),
        ``status, gap_reason, last_seen, active_after_cutoff, recoverable_via, email`` (the
        Mixpanel profile's ``$email``, as loaded: personal data, shown as it is), ``as_of, recoverable_profiles, precision_loss_form, resolved_at,
        sent_at, recoverable_mpid`` (docs/glossary.md). From the cached simulation
        (``lab.simulate(...).tables["resolution"]``)."""
        return self.simulate(cohort, at, settings, source=source, debug=debug).resolution

    def timeline(self, cohort: str, at: Any = None, settings: Any = None, *, source: str = "auto") -> pd.DataFrame:
        """One row per run up to ``at`` (from the cached simulation): ``run_at, members, adds,
        removes, failed, full_refresh, true_count, not_yet_true, stale_true, run, kind, sent,
        should_be_true, true_linked, orphans_true, membership_as_of, false_count``
        (docs/rules.md#sync-over-time)."""
        return self.simulate(cohort, at, settings, source=source).timeline

    def waterfall(self, cohort: str, at: Any = None, settings: Any = None, *, source: str = "auto") -> pd.DataFrame:
        """The discrepancy waterfall at ``at``: ``step, label, kind`` (``total``, ``minus``,
        ``plus``), ``count`` (steps add up exactly; from the cached simulation;
        ``charts.waterfall_chart`` draws it as it is)."""
        return self.simulate(cohort, at, settings, source=source).waterfall

    def gap_summary(self, cohort: str, at: Any = None, settings: Any = None, *, source: str = "auto") -> pd.DataFrame:
        """Member counts by status x gap_reason x recoverable_via, and by identifier_source:
        ``breakdown`` (``gap_reason`` or ``identifier_source``: which of the two a row counts),
        ``identifier_source, status, gap_reason, recoverable_via, members, share`` (of the
        members)."""
        return self.simulate(cohort, at, settings, source=source).gap_summary

    def assumption_ranges(self, cohort: str, at: Any = None, settings: Any = None, *, source: str = "auto") -> pd.DataFrame:
        """The audience under each value of every assumption (fallback, event_identity_cutoff,
        protection, apply_order, snapshot_ttl, refresh_clears_stale, resolution_time), the
        others as in ``settings``: one row per (assumption, value) with min/max per assumption
        (:func:`cohortlab.simulation.simulate.assumption_ranges`)."""
        from cohortlab.simulation.simulate import assumption_ranges

        return assumption_ranges(self.engine, cohort, at, settings, source=source,
                                 simulate_fn=lambda c, a, s, src: self.simulate(c, a, s, source=src))

    def reexport_value(self, cohort: str, at: Any = None, settings: Any = None, *, when: Any = None,
                       source: str = "auto") -> dict[str, Any]:
        """The remedy re-export valued in users: audience at ``at`` with and without a re-export
        (full sync with the identifiers of that time) at ``when`` (default: the last run at or
        before ``at``, as the ``reexport`` row of :meth:`remedies`)."""
        from cohortlab.simulation.simulate import reexport_value

        return reexport_value(self.engine, cohort, when, at, settings, source=source,
                              simulate_fn=lambda c, a, s, src: self.simulate(c, a, s, source=src))

    def remedies(self, cohort: str, at: Any = None, settings: Any = None, *, since: Any = None,
                 source: str = "auto") -> pd.DataFrame:
        """Every remedy (Rule, SDK code, each with and without a re-export, EIT switch,
        re-export, reconnect after a pause) valued by its own simulation: one row per remedy with
        ``remedy, key, audience_before, audience_after, gained, people_before, people_after,
        recovered, applies, note`` at ``at``, the remedy
        applied from ``since`` (default: the event identity cutoff when at or before ``at``, else the first run)
        (:func:`cohortlab.simulation.remedies.value_remedies`)."""
        from cohortlab.simulation.remedies import value_remedies

        return value_remedies(self.engine, cohort, at, settings, since=since, source=source,
                              simulate_fn=lambda c, a, s, src: self.simulate(c, a, s, source=src))

    # ================================================================== end of simulation

    # ================================================================== migration (docs/rules.md#migration)
    # EIT migration what-if, plan comparison and validation. Implemented in cohortlab.migration
    # (plans, model, run, validate); results are stored in the database (tables migration_daily,
    # migration_users, migration_summary, migration_plans, migration_validation,
    # migration_validation_summary).
    def migration_plan(self, plan: Any, start: Any, end: Any, settings: Any = None, *,
                       activity: str = "observed", repeat_days: int = 30, cohort: str | None = None,
                       debug: bool = False) -> pd.DataFrame:
        """docs/rules.md#migration: what-if of one plan (a ``MigrationPlan``, a dict or a YAML path): one row per
        day ``start..end`` (state at the end of the day) with members, matched, match_rate,
        people, matched_people, split_profiles, overcount. The plan's summary (final rate,
        never-fixable users, days to 90%/99% of the final rate) is ``lab.last_migration_summary``."""
        return self.compare_plans([plan], start, end, settings=settings, activity=activity,
                                  repeat_days=repeat_days, cohort=cohort, debug=debug)

    def compare_plans(self, plans: Any, start: Any, end: Any, settings: Any = None, *,
                      activity: str = "observed", repeat_days: int = 30, cohort: str | None = None,
                      debug: bool = False) -> pd.DataFrame:
        """Several plans on the same data, one table (plan, day, match_rate, matched, members,
        split_profiles, ...). ``plans``: a list of plans/dicts/YAML paths, one plan (a
        ``MigrationPlan`` or a dict), or one YAML file holding a list. ``activity="repeat"`` projects the activity of the last ``repeat_days``
        days of data past the last event (repeated with that period). ``cohort``: only the people
        behind the members of that cohort's latest snapshot (default: everyone with events).
        The per-plan summary is ``lab.last_migration_summary`` (and table ``migration_summary``,
        :meth:`migration_summary`); it is not kept in the frame's ``attrs``: pandas compares and
        serialises ``attrs`` (a frame there broke ``repr``, ``pd.concat`` and ``to_parquet``)."""
        from cohortlab.migration.plans import MigrationPlan, PlanError, load_plans
        from cohortlab.migration.run import run_plans

        if isinstance(plans, (str, os.PathLike)):
            plans = load_plans(plans)
        elif isinstance(plans, (dict, MigrationPlan)):  # one plan (a dict's keys are no plans)
            plans = [plans]
        elif not isinstance(plans, (list, tuple)):
            raise PlanError(f"plans must be a list of plans (MigrationPlan, dict or YAML path) or a YAML file, "
                            f"not {type(plans).__name__}")
        run = run_plans(self.engine, list(plans), start, end, settings=settings,
                        activity=activity, repeat_days=repeat_days, cohort=cohort, debug=debug)
        self.last_migration_summary = run.summary
        return run.daily

    def migration_summary(self) -> pd.DataFrame:
        """The stored per-plan summary (table ``migration_summary``)."""
        if self.engine.table_exists("migration_summary"):
            return self.table("migration_summary")
        import pandas as pd

        return pd.DataFrame()

    def validate_migration(self, plan: Any, cohort: str, at: Any = None, settings: Any = None, *,
                           observed: pd.DataFrame | None = None, activity: str = "observed",
                           repeat_days: int = 30):
        """Compare the prediction of ``plan`` with what the loaded exports show for ``cohort`` at
        ``at`` (default: the cohort's latest snapshot), per member: a
        :class:`cohortlab.migration.validate.ValidationResult` (confusion table, users that differ with
        their gap reasons and an explanation, verdict line). ``observed`` defaults to
        the members resolved at ``at`` (``lab.resolution(cohort, at, settings)`` with
        ``resolution_time="as_of"``; or give the resolution of another lab holding the
        later exports, with ``activity="repeat"`` when this lab's events end before ``at``; its ``mpid``
        integers or their text, never floats; without ``at``, the frame's own ``as_of``:
        docs/migration.md#validation)."""
        from cohortlab.migration.validate import validate, validate_against
        from cohortlab.simulation.membership import CohortError, find_cohort

        # named as the reports list it, however asked for (a renamed cohort: its id, an earlier name)
        if observed is None:  # what the exports show: every member resolved at `at`, the cohort as found
            return validate_against(self, self, plan, cohort, at, settings=settings, activity=activity,
                                    repeat_days=repeat_days)
        try:  # as this lab lists it when it knows it (docs/migration.md#validation)
            cohort = find_cohort(self.engine, str(cohort)).listed_as
        except CohortError:
            pass
        if at is None:
            at = _observed_time(observed, cohort)
        return validate(self.engine, plan, observed, cohort, at, settings=settings, activity=activity,
                        repeat_days=repeat_days)

    # ================================================================== end of migration

    # ================================================================== observed state (docs/rules.md#observed-state)
    # Verify the simulation against what mParticle holds, and explain one user. Implemented in
    # cohortlab.simulation.verify and cohortlab.simulation.explain (on top of Lab.simulate).
    def verify(self, cohort: str, at: Any = None, settings: Any = None, *, snapshot_at: Any = None,
               source: str = "auto", show_personal_data: bool = False, store: bool = False):
        """Per profile, the simulated cohort attribute (after the last run at or before ``at``,
        default: the snapshot time) against the observed one in the loaded mParticle snapshot
        (``mpa_attributes``; taken at ``snapshot_at``, default: detected): a
        :class:`cohortlab.simulation.verify.VerifyResult` with the confusion table, the audience
        observed vs simulated and each disagreement with its cause. The simulation is
        :meth:`simulate`'s (cached, or stored in the database); ``store=True`` stores it."""
        from cohortlab.simulation.verify import verify

        return verify(self.engine, cohort, at, settings, snapshot_at=snapshot_at, source=source,
                      show_personal_data=show_personal_data,
                      simulate_fn=lambda c, a, s, src: self.simulate(c, a, s, source=src, store=store))

    def explain(self, cohort: str, user: Any, at: Any = None, settings: Any = None, *, source: str = "auto",
                snapshot_at: Any = None, show_personal_data: bool = False):
        """Every fact about one user (``user``: distinct_id, email, MPID or mParticle user identity,
        looked up as spelled; spaces around it are dropped when it names nothing as given) on both sides and the
        rule that decided each step: a :class:`cohortlab.simulation.explain.Explanation`
        (``.steps``: list of steps; ``.to_text()``). Reads the full simulation when this lab
        holds it or the database stores it (:meth:`cached_simulation`), else simulates only the
        members that matter to the user (``.simulation`` says which)."""
        from cohortlab.simulation.explain import explain

        return explain(self.engine, cohort, user, at, settings, source=source, snapshot_at=snapshot_at,
                       show_personal_data=show_personal_data,
                       cached_fn=lambda c, a, s, src: self.cached_simulation(c, a, s, source=src))

    # ================================================================== end of observed state

    def close(self) -> None:
        """Close the database (a file's lock is released; the lab cannot be used after)."""
        close = getattr(self.engine, "close", None)
        if close:
            close()

    def __repr__(self) -> str:
        where = getattr(self.engine, "database", None)
        shown = repr(str(where)) if where else f"in memory ({type(self.engine).__name__})"
        return f"<Lab {shown}{' read-only' if self.read_only else ''}>"

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_lab(
    db: str | os.PathLike | None = None,
    data: str | os.PathLike | None = None,
    *,
    engine: str = "duckdb",
    spark_master: str | None = None,
    read_only: bool = False,
    progress: bool = False,
    names: tuple[str, str] = ("db", "data"),
    timezone: str | None = None,
) -> Lab:
    """The one way commands and notebooks open their data.

    ``db``: a DuckDB file (must exist; or, with ``engine="spark"``, also a folder written by
    ``cohortlab export``). Else ``data``: a folder of exports, loaded into an in-memory lab
    (:func:`cohortlab.loaders.folder.load_world`). ``engine``: ``duckdb`` or ``spark``. A missing
    file or folder is an :class:`~cohortlab.errors.InputNotFoundError` naming the parameter to set
    (``names``: what the caller calls ``db`` and ``data``, e.g. a notebook's ``observed_db``).
    ``timezone``: with ``data``, the Mixpanel project's time zone its raw events are written in
    (a project created before 2023: docs/loading.md#project-time-zone)."""
    if engine not in ENGINES:
        raise SettingsError(f"unknown engine {engine!r} (duckdb or spark)")
    if timezone is not None and (db or not data):
        raise SettingsError(f"timezone={timezone!r} applies to the raw events of a data folder, loaded now; "
                            f"a database holds its events as they were loaded (cohortlab load -o timezone)")
    if db:
        if not os.path.exists(db):
            raise InputNotFoundError(f"{db}: no such database{_where(db)}: set {names[0]} to a DuckDB file "
                                     f"(`cohortlab load`), or {names[0]} = None and {names[1]} to a folder of exports")
        if engine == "spark":
            from cohortlab.engines.spark.readers import open_spark_engine

            return Lab(engine=open_spark_engine(db, master=spark_master))
        return Lab(db, read_only=read_only)
    if data:
        from cohortlab.loaders.folder import load_world

        if not os.path.isdir(data):  # a notebook's relative path is seen from the notebook's folder: say which
            raise InputNotFoundError(f"{data}: no such folder{_where(data)}: set {names[1]} to a folder of exports "
                                     f"(mixpanel/..., mparticle/...), or {names[0]} to a DuckDB file")
        lab = Lab()
        try:
            world = load_world(lab, data, progress=progress, timezone=timezone)
        except BaseException:  # a file that does not load, a name that is no time zone: no lab left open
            lab.close()
            raise
        for w in world.warnings:  # each names a file, whose name is data: one line, escaped
            warnings.warn(one_line(w), LoadWarning, stacklevel=2)
        return lab
    raise SettingsError(f"set {names[0]} (a DuckDB file) or {names[1]} (a folder of exports)")


def _where(path: str | os.PathLike) -> str:
    """`` (/abs/path)`` for a relative path (a notebook's is relative to the notebook's folder), else ""."""
    return "" if os.path.isabs(path) else f" ({os.path.abspath(path)})"


def _observed_time(observed: pd.DataFrame, cohort: str) -> Any:
    """The time of an ``observed`` resolution given to :meth:`Lab.validate_migration` without
    ``at``: its ``as_of`` column (a resolution's, a ``--members-out`` file's), when the cohort's
    rows hold one time; else the error that asks for ``at``."""
    if "as_of" not in observed.columns:
        raise SettingsError("validate_migration needs `at` when `observed` has no as_of column")
    rows = observed
    if "cohort_name" in observed.columns and (observed["cohort_name"].astype(str) == str(cohort)).any():
        rows = observed[observed["cohort_name"].astype(str) == str(cohort)]
    times = rows["as_of"].dropna().unique()
    if len(times) != 1:
        raise SettingsError(f"validate_migration needs `at`: the observed frame's as_of holds {len(times)} times "
                            f"({', '.join(map(str, sorted(times)[:3]))}{', ...' if len(times) > 3 else ''})")
    return times[0]
