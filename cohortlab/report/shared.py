"""Simulations shared by the report's notebooks (docs/reports.md#shared-simulations).

Three notebooks (``match_rates``, ``identity_gaps``, ``sync_timeline``) start from the same
simulation of every cohort (as configured, at ``as_of``); each is its own kernel, so each used
to compute it again. :func:`share_simulations` computes them once, in the runner, into a
**scratch** DuckDB file (never the user's database): the scratch file is the main catalog, the
user's database is attached ``READ_ONLY``, and the results are stored there exactly as
``cohortlab simulate`` stores them in a writable database
(:mod:`cohortlab.simulation.store`: tables ``simstore_*`` and the catalogue ``sim_store``, keyed
by cohort, source, as-of time and settings, valid for the data's fingerprint).

A notebook given that file (parameter ``simulations``) attaches it ``READ_ONLY`` too
(:func:`attach`), between its in-memory catalog and the user's file in the ``search_path``, so
``Lab.simulate`` finds the shared simulation in the store and reads it instead of computing it:
the same tables, so the same figures. The simulations already stored in the user's database
for its current data are listed in the scratch catalogue as well (their tables still resolve in
the user's file), so attaching it hides none of them.

The scratch file holds member-level results (personal data): the runner keeps it in a
temporary folder, removed when the report ends.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from cohortlab.pipeline import sql_ident, sql_str

# the notebook parameter that names the scratch file (None: every notebook simulates on its own)
PARAMETER = "simulations"
SCRATCH_NAME = "simulations.duckdb"
DATA_CATALOG = "report_data"   # the user's file, attached read-only while sharing
SHARED_CATALOG = "shared_simulations"  # the scratch file, attached read-only by a notebook
# stored simulations kept in the scratch file: one per cohort, never trimmed while sharing
_NO_TRIM = 1_000_000


@dataclass
class Shared:
    """What :func:`share_simulations` wrote: the scratch file, the cohorts simulated (those
    already stored in the user's database are listed in ``reused``) and the seconds it took."""

    path: Path
    simulated: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _connect(db: str | os.PathLike, scratch: str | os.PathLike):
    """A DuckDB engine whose main catalog is ``scratch`` (written) and which reads ``db``
    (attached READ_ONLY; unqualified names resolve in the scratch file first, then in ``db``)."""
    import duckdb

    from cohortlab.engines.duckdb import DuckDBEngine, lock_wait_seconds, open_waiting
    from cohortlab.engines.untrusted import check_database, no_network_installs

    con = duckdb.connect(str(scratch))
    try:
        no_network_installs(con)
        open_waiting(str(db), lambda: con.execute(f"ATTACH {sql_str(str(db))} AS {DATA_CATALOG} (READ_ONLY)"),
                     lock_wait_seconds(), "open the database read-only")
        check_database(con, DATA_CATALOG, str(db))
        main = sql_ident(con.execute("SELECT current_database()").fetchone()[0])  # the file's name: any text
        con.execute(f"SET search_path = {sql_str(f'{main}.main,{DATA_CATALOG}.main')}")
    except BaseException:
        con.close()
        raise
    return DuckDBEngine(connection=con)


def _seed_catalogue(engine) -> None:
    """The scratch catalogue, listing the simulations stored in the user's database for its
    current data (their tables resolve in the user's file through the ``search_path``)."""
    from cohortlab.simulation import store

    main = sql_ident(engine.query_rows("SELECT current_database()")[0][0])
    user_has = engine.query_rows(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND table_name = ?",
        [DATA_CATALOG, store.CATALOGUE])[0][0]
    cols = ", ".join(f"{name} {kind}" for name, kind, _ in store.CATALOGUE_COLUMNS)
    engine.execute(f"CREATE TABLE IF NOT EXISTS {main}.main.{store.CATALOGUE} ({cols})")
    if user_has:
        names = ", ".join(name for name, _, _ in store.CATALOGUE_COLUMNS)
        engine.execute(
            f"INSERT INTO {main}.main.{store.CATALOGUE} SELECT {names} FROM {DATA_CATALOG}.main.{store.CATALOGUE} "
            "WHERE fingerprint = ?", [store.data_fingerprint(engine)])


def share_simulations(db: str | os.PathLike, scratch: str | os.PathLike, *, cohorts: Any = None, as_of: Any = None,
                      settings: Any = None) -> Shared:
    """Simulate every cohort of ``cohorts`` (a name, names, or None for every cohort, as the
    notebooks choose them) at ``as_of`` with ``settings``, as the notebooks ask for it, once, and
    store the results in the new DuckDB file ``scratch``; ``db`` is only read."""
    from cohortlab.lab import Lab
    from cohortlab.report.insights import cohort_names
    from cohortlab.settings import SyncSettings
    from cohortlab.simulation import store
    from cohortlab.simulation.membership import find_cohort

    t0 = time.monotonic()
    scratch = Path(scratch)
    if scratch.exists():
        raise FileExistsError(f"{scratch}: the scratch file of shared simulations exists already")
    shared = Shared(path=scratch)
    engine = _connect(db, scratch)
    try:
        lab = Lab(engine=engine, read_only=True)  # read_only: no schema in the scratch file
        _seed_catalogue(engine)
        s = SyncSettings.coerce(settings)
        for cohort in cohort_names(lab, cohorts, s):
            ref = find_cohort(engine, cohort, "auto")
            key = store.store_key(*store.key_parts(ref, as_of, s))  # the key Lab.simulate looks up
            result = lab.simulate(ref, at=as_of, settings=s)  # the cohort found, not looked up again
            if result.stored:  # stored in the user's database for this data: listed already
                shared.reused.append(cohort)
                continue
            store.save(engine, key, result, max_stored=_NO_TRIM)
            shared.simulated.append(cohort)
        lab.clear_simulations()
        engine.execute("CHECKPOINT")
    finally:
        engine.close()
    shared.seconds = time.monotonic() - t0
    return shared


def share_in_subprocess(db: str | os.PathLike, scratch: str | os.PathLike, *, cohorts: Any = None, as_of: Any = None,
                        settings: Any = None, env: Mapping[str, str] | None = None) -> Shared:
    """:func:`share_simulations` in a child process (``python -m cohortlab.report.shared``), so
    that the memory it takes is given back before the notebooks that read it start; ``env``:
    variables it starts with on top of this process's environment (its memory share). Raises
    :class:`RuntimeError` with the child's last error line when it fails."""
    import json
    import subprocess
    import sys

    import cohortlab

    args = json.dumps({"db": str(db), "scratch": str(scratch), "cohorts": cohorts, "as_of": as_of,
                       "settings": settings})
    # the child imports this very cohortlab, whatever the current directory (papermill changes
    # the process's while a notebook runs)
    root = str(Path(cohortlab.__file__).resolve().parents[1])
    env = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run([sys.executable, "-m", "cohortlab.report.shared", args], capture_output=True, text=True,
                          env=env, cwd=str(Path(scratch).resolve().parent))
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or "").splitlines() if ln.strip()]
        raise RuntimeError(lines[-1] if lines else f"exit {proc.returncode}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return Shared(path=Path(out["path"]), simulated=out["simulated"], reused=out["reused"], seconds=out["seconds"])


def _main(argv: list[str]) -> int:
    import json

    a = json.loads(argv[0])
    done = share_simulations(a["db"], a["scratch"], cohorts=a["cohorts"], as_of=a["as_of"], settings=a["settings"])
    print(json.dumps({"path": str(done.path), "simulated": done.simulated, "reused": done.reused,
                      "seconds": done.seconds}))
    return 0


def attach(engine, path: str | os.PathLike | None) -> bool:
    """Attach the shared simulations ``path`` (READ_ONLY) to a notebook's read-only DuckDB
    engine, read after its in-memory catalog and before the user's file. False (nothing done)
    without a path or on another engine."""
    if not path or getattr(engine, "name", None) != "duckdb":
        return False
    from cohortlab.engines.duckdb import READ_ONLY_CATALOG

    attached = {r[0] for r in engine.query_rows("SELECT database_name FROM duckdb_databases()")}
    if READ_ONLY_CATALOG not in attached:  # not a read-only lab: its names resolve otherwise
        return False
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such file of shared simulations")
    engine.execute(f"ATTACH {sql_str(str(path))} AS {SHARED_CATALOG} (READ_ONLY)")
    from cohortlab.engines.untrusted import check_database

    check_database(engine.con, SHARED_CATALOG, str(path))
    engine.execute(f"SET search_path = 'memory.main,{SHARED_CATALOG}.main,{READ_ONLY_CATALOG}.main'")
    return True


__all__ = ["PARAMETER", "SCRATCH_NAME", "Shared", "attach", "share_in_subprocess", "share_simulations"]

if __name__ == "__main__":  # the runner's child process (share_in_subprocess)
    import sys

    sys.exit(_main(sys.argv[1:]))
