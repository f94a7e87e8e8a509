"""Stored simulations: one simulation kept in the DuckDB file, so that the next process
(``cohortlab verify``, ``cohortlab explain``, the report notebooks) reads it instead of
simulating again (docs/simulate.md#stored-simulations).

A stored simulation is

- its tables, copied to persistent tables ``simstore_<run id>_<name>``: the published ones
  (:data:`cohortlab.simulation.simulate.PUBLISHED`) and the run tables that readers of a result
  use (:data:`STORED_TABLES`: ``resolved`` and ``decisions`` for explain and
  :func:`~cohortlab.simulation.simulate.outcome_counts_at`, ``runs``, ``transitions``,
  ``versions`` and ``member_emails``, and ``targets`` and ``state`` that the remedies derive
  from a baseline); the other intermediate tables of a run are not kept (copying them would double
  the cost of storing for tables nothing reads later);
- one row of the catalogue table ``sim_store`` (:data:`CATALOGUE_COLUMNS`): the key (cohort
  name, membership source, resolved as-of time, settings as JSON: what ``Lab`` caches by), the
  run id, the result's scalars and counts, the table names, and the **data fingerprint**.

The data fingerprint (:func:`data_fingerprint`) is made of :data:`STORE_VERSION`, the
cohortlab version, and the ``loads`` table (count, last load id, rows loaded, and a hash of
every load's id, content fingerprint and row count): every load that changes the canonical
tables adds a row to ``loads``, so any change of the data changes the fingerprint. A stored
simulation whose fingerprint differs from the database's is never used: on a writable database
every stored simulation is then dropped with its tables (they all describe the same, older,
data); on a read-only one it is ignored. ``Lab.load`` drops them at once after a load that
wrote rows. At most :data:`MAX_STORED` simulations are kept (the oldest go first).

Only the DuckDB engine stores simulations (:func:`lookup` returns None on another engine, and
:func:`save` raises :class:`StoreError`). Debug simulations are never stored.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from cohortlab.engines.base import Engine
from cohortlab.errors import CohortlabError
from cohortlab.times import naive_utc, to_utc

CATALOGUE = "sim_store"
TABLE_PREFIX = "simstore_"
MAX_STORED = 8
# bump when what a simulation writes (tables, columns, meaning) changes: every stored
# simulation of an earlier version is then stale
STORE_VERSION = "6"  # 2: decisions follow what mParticle holds; 3: a webhook message counts whole at an as-of time between its pages; 4: attribute_state.changed_at, state.is_change; 5: resolved.self_profiles of a float spelling that names an MPID exactly; 6: resolution.recoverable_mpid
# run tables kept besides the published ones: what explain (resolved), outcome_counts_at
# (decisions, runs, transitions, versions, member_emails) and the remedies' derived simulations
# (targets, state, resolved, runs, transitions) read from a baseline
STORED_TABLES = ("resolved", "decisions", "runs", "transitions", "versions", "member_emails", "targets", "state")
CATALOGUE_COLUMNS = (
    ("key", "VARCHAR", "JSON [cohort, source, at, settings]: what the simulation was asked"),
    ("run_id", "VARCHAR", "the run id of the simulation (tables simstore_<run id>_<name>)"),
    ("cohort", "VARCHAR", "cohort name"),
    ("source", "VARCHAR", "membership source: snapshots or webhooks"),
    ("as_of", "TIMESTAMP", "as-of time, UTC"),
    ("settings", "JSON", "SyncSettings as JSON"),
    ("t0", "TIMESTAMP", "time of the first run, UTC"),
    ("attribute", "VARCHAR", "the cohort attribute name"),
    ("tables", "JSON", "{name: stored table}"),
    ("counts", "JSON", "the waterfall counts of the result"),
    ("step_counts", "JSON", "rows per step of the run"),
    ("fingerprint", "VARCHAR", "the data fingerprint when stored (data_fingerprint)"),
    ("version", "VARCHAR", "cohortlab version and STORE_VERSION"),
    ("created_at", "TIMESTAMP", "wall-clock UTC time of storing"),
)


class StoreError(CohortlabError):
    """A simulation cannot be stored (another engine, a read-only database)."""


# ----------------------------------------------------------------------------- keys and fingerprints
def key_parts(ref, at: Any, settings) -> tuple[str, str, datetime, str]:
    """What tells one simulation from another: the cohort (``ref``, a ``CohortRef``), its source,
    the snapshot time ``at`` resolves to, and the settings (a ``SyncSettings``) as JSON. ``Lab``'s
    in-memory cache key is these and ``debug``; the catalogue key is :func:`store_key` of them."""
    from cohortlab.simulation.membership import resolve_at

    return (ref.name, ref.source, resolve_at(ref, at), settings.model_dump_json())


def store_key(cohort: str, source: str, at: datetime, settings_json: str) -> str:
    """The catalogue key of a simulation, from its :func:`key_parts`."""
    return json.dumps([cohort, source, naive_utc(at).isoformat(), json.loads(settings_json)],
                      sort_keys=True, separators=(",", ":"))


def version() -> str:
    from cohortlab import __version__

    return f"{__version__}/store-{STORE_VERSION}"


def data_fingerprint(engine: Engine) -> str:
    """What the stored simulations were computed from: the code version and the ``loads`` table
    (count, last load id, rows loaded, md5 of every load's id, fingerprint and rows loaded)."""
    n, last, loaded, digest = engine.query_rows(
        """
        SELECT count(*), coalesce(max(load_id), 0), coalesce(sum(loaded), 0),
               md5(coalesce(string_agg(CAST(load_id AS VARCHAR) || ':' || coalesce(fingerprint, '') || ':'
                                       || coalesce(CAST(loaded AS VARCHAR), ''), ',' ORDER BY load_id), ''))
        FROM loads
        """
    )[0]
    return f"{version()}|loads={int(n)}|last={int(last)}|rows={int(loaded)}|{digest}"


# ----------------------------------------------------------------------------- engine facts
def supported(engine: Engine) -> bool:
    """Stored simulations live in a DuckDB file (or an in-memory DuckDB database)."""
    return getattr(engine, "name", None) == "duckdb"


def writable(engine: Engine) -> bool:
    """False when the user's database is opened read-only (attached as a read-only catalog)."""
    from cohortlab.engines.duckdb import READ_ONLY_CATALOG

    if not supported(engine):
        return False
    rows = engine.query_rows(
        "SELECT count(*) FROM duckdb_databases() WHERE database_name = ? AND readonly", [READ_ONLY_CATALOG])
    return not rows[0][0]


def _catalogue_exists(engine: Engine) -> bool:
    return engine.table_exists(CATALOGUE)


def _create_catalogue(engine: Engine) -> None:
    cols = ", ".join(f"{name} {kind}" for name, kind, _ in CATALOGUE_COLUMNS)
    engine.execute(f"CREATE TABLE IF NOT EXISTS {CATALOGUE} ({cols})")


def _entries(engine: Engine, where: str = "TRUE", params: list | None = None) -> list[dict[str, Any]]:
    names = [c for c, _, _ in CATALOGUE_COLUMNS]
    rows = engine.query_rows(f"SELECT {', '.join(names)} FROM {CATALOGUE} WHERE {where} ORDER BY created_at",
                             params)
    return [dict(zip(names, r)) for r in rows]


def _drop_entry(engine: Engine, entry: dict[str, Any]) -> None:
    for name in json.loads(entry["tables"]).values():
        engine.execute(f"DROP TABLE IF EXISTS {name}")
    engine.execute(f"DELETE FROM {CATALOGUE} WHERE run_id = ?", [entry["run_id"]])


# ----------------------------------------------------------------------------- the API
def stored(engine: Engine) -> list[dict[str, Any]]:
    """The catalogue: one dict per stored simulation, oldest first (empty when none)."""
    if not supported(engine) or not _catalogue_exists(engine):
        return []
    return _entries(engine)


def current(engine: Engine) -> list[dict[str, Any]]:
    """The stored simulations that describe the data as it is now (their fingerprint is the
    database's), oldest first; the others are never read (:func:`lookup`)."""
    entries = stored(engine)
    if not entries:
        return []
    fp = data_fingerprint(engine)
    return [e for e in entries if e["fingerprint"] == fp]


def drop_all(engine: Engine) -> int:
    """Drop every stored simulation and its tables (writable databases); returns how many."""
    if not supported(engine) or not writable(engine) or not _catalogue_exists(engine):
        return 0
    entries = _entries(engine)
    with engine.transaction():
        for e in entries:
            _drop_entry(engine, e)
    return len(entries)


def lookup(engine: Engine, key: str, *, fingerprint: str | None = None):
    """The stored simulation under ``key`` as a :class:`SimulationResult` whose tables are the
    stored ones (never dropped by the result), or None: nothing stored under ``key``, another
    engine, or stale data (then, on a writable database, every stored simulation is dropped)."""
    if not supported(engine) or not _catalogue_exists(engine):
        return None
    found = _entries(engine, "key = ?", [key])
    if not found:
        return None
    entry = found[-1]
    fp = fingerprint or data_fingerprint(engine)
    if entry["fingerprint"] != fp:
        if writable(engine):  # every stored simulation describes the older data
            drop_all(engine)
        return None
    tables = json.loads(entry["tables"])
    if not all(engine.table_exists(t) for t in tables.values()):  # dropped by hand: unusable
        if writable(engine):
            with engine.transaction():
                _drop_entry(engine, entry)
        return None
    return _result(engine, entry, tables)


def _result(engine: Engine, entry: dict[str, Any], tables: dict[str, str]):
    from cohortlab.settings import SyncSettings
    from cohortlab.simulation.simulate import PUBLISHED, SimulationResult, SimTable, table_spec

    sim_tables = {}
    for t in PUBLISHED:
        columns, order_by = table_spec(t)
        sim_tables[t] = SimTable(engine, tables[t], columns, order_by)
    return SimulationResult(
        engine=engine, cohort=entry["cohort"], at=to_utc(entry["as_of"]),
        settings=SyncSettings.model_validate_json(entry["settings"]), attribute=entry["attribute"],
        t0=to_utc(entry["t0"]), source=entry["source"], run_id=entry["run_id"], tables=sim_tables,
        table_names=dict(tables), counts=json.loads(entry["counts"]),
        step_counts=json.loads(entry["step_counts"]), stored=True,
    )


def save(engine: Engine, key: str, result, *, max_stored: int | None = None) -> dict[str, str]:
    """Copy ``result``'s tables to ``simstore_<run id>_<name>`` and catalogue them under ``key``
    (replacing what was stored under it, and anything stored from other data); keeps at most
    ``max_stored`` (default :data:`MAX_STORED`; the oldest dropped).
    Returns {name: stored table}. A result read from the store is already stored."""
    if not supported(engine):
        raise StoreError(f"the {getattr(engine, 'name', '?')} engine does not store simulations "
                         "(only a DuckDB database does); run without storing")
    if not writable(engine):
        raise StoreError("the database is open read-only: a simulation cannot be stored in it")
    if getattr(result, "stored", False):
        return dict(result.table_names)
    fp = data_fingerprint(engine)
    if _catalogue_exists(engine):  # this very run stored already (on this data): nothing to do
        same = _entries(engine, "key = ? AND run_id = ? AND fingerprint = ?", [key, result.run_id, fp])
        if same and all(engine.table_exists(t) for t in json.loads(same[-1]["tables"]).values()):
            return json.loads(same[-1]["tables"])
    from cohortlab.simulation.simulate import PUBLISHED

    wanted = [t for t in (*PUBLISHED, *STORED_TABLES) if t in result.table_names]
    tables = {t: f"{TABLE_PREFIX}{result.run_id}_{t}" for t in wanted}
    _create_catalogue(engine)
    with engine.transaction():
        for entry in _entries(engine, "key = ? OR fingerprint <> ?", [key, fp]):
            _drop_entry(engine, entry)
        for t, name in tables.items():
            if t in result.tables:
                result.tables[t]._check()  # a dropped result cannot be stored
            engine.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {result.table_names[t]}")
        engine.execute(
            f"INSERT INTO {CATALOGUE} VALUES (?, ?, ?, ?, ?, ?::JSON, ?, ?, ?::JSON, ?::JSON, ?::JSON, ?, ?, "
            "now()::TIMESTAMP)",
            [key, result.run_id, result.cohort, result.source, naive_utc(result.at),
             result.settings.model_dump_json(), naive_utc(result.t0), result.attribute, json.dumps(tables),
             json.dumps(result.counts, default=int), json.dumps(result.step_counts, default=int), fp,
             version()],
        )
        keep = MAX_STORED if max_stored is None else max_stored
        entries = _entries(engine)
        for entry in entries[: max(0, len(entries) - keep)]:
            _drop_entry(engine, entry)
    return tables


__all__ = ["CATALOGUE", "MAX_STORED", "STORED_TABLES", "STORE_VERSION", "StoreError", "current", "data_fingerprint",
           "drop_all", "lookup", "save", "store_key", "stored", "supported", "writable"]
