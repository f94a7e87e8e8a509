"""DuckDB engine: runs the core SQL as written. In-memory or a ``.duckdb`` file.

Memory-safe by default (every command, notebook and script that opens a lab):

* ``memory_limit``: ``$COHORTLAB_MEMORY_LIMIT`` when set, else the smaller of 1.5 GB and 25% of
  the machine's memory (DuckDB's own default, 80% of RAM, let a 10M-user load use 20 GiB as
  cache). Work beyond it spills to ``temp_directory``.
* ``threads``: ``$COHORTLAB_THREADS`` when set, else the cores this process may run on.
* ``temp_directory``: next to the database file (``<file>.tmp``; spill files a killed process left
  there are removed when the file is next opened for writing), or a private folder (mode 0700:
  DuckDB would make its spill files readable by every user) under the system temp folder for an
  in-memory or read-only database (removed at close; DuckDB's default would be ``.tmp`` in the
  current directory).

Inputs that cannot spill (one JSON document, which DuckDB reads whole) are refused with a
message when they do not fit the limit (:meth:`cohortlab.loaders.base.FileContext.document_buffer`).

Opening a database file another process holds (DuckDB allows one process per file) waits up to
``lock_wait`` seconds (default ``$COHORTLAB_LOCK_WAIT``, else :data:`DEFAULT_LOCK_WAIT`), then
raises :class:`~cohortlab.errors.DatabaseLockedError` naming the holder's PID. A file that is not
a DuckDB database, or a folder that cannot be created, raises
:class:`~cohortlab.errors.DatabaseError`: one line each, for the command line to print."""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

if TYPE_CHECKING:  # query_df's frames come from DuckDB (which imports pandas when asked for one)
    import pandas as pd

from cohortlab.engines.base import Engine
from cohortlab.engines.untrusted import check_database, no_network_installs
from cohortlab.errors import DatabaseError, DatabaseLockedError, is_interrupt
from cohortlab.tempdirs import make_private_dir

DEFAULT_LOCK_WAIT = 5.0  # seconds a command waits for another process to release the database


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def lock_wait_seconds() -> float:
    """``$COHORTLAB_LOCK_WAIT`` (seconds, set by the CLI's ``--wait``) or DEFAULT_LOCK_WAIT."""
    raw = os.environ.get("COHORTLAB_LOCK_WAIT")
    try:
        return max(0.0, float(raw)) if raw not in (None, "") else DEFAULT_LOCK_WAIT
    except ValueError:
        return DEFAULT_LOCK_WAIT


# the first bytes of files DuckDB would open through an extension of its own, which it downloads
# (a SQLite file named .duckdb: 6 s offline, then "Failed to download extension sqlite_scanner")
_OTHER_FORMATS = {b"SQLite format 3\x00": "a SQLite database"}


def folder_problem(path) -> str:
    """The error of a folder given as a database: with the hint for a folder ``cohortlab export``
    wrote (its ``cohortlab_meta.parquet``), which the Spark engine reads."""
    hint = (" (a folder written by `cohortlab export`: the Spark engine reads it, --engine spark)"
            if (Path(path) / "cohortlab_meta.parquet").exists() else "")
    return f"{path}: is a folder, not a DuckDB database file{hint}"


# a DuckDB database file holds this at bytes 8-11 of its first block
_DUCKDB_MAGIC = b"DUCK"


def other_format_problem(database: str) -> str | None:
    """One line when the existing file ``database`` is another program's format DuckDB would
    read through an extension (a SQLite database), or a data file DuckDB 2 would open as a
    database of views over it (a JSON or CSV export given as ``--db``: its arguments swapped),
    else None."""
    try:
        with open(database, "rb") as f:
            head = f.read(64)
    except OSError:
        return None
    for magic, what in _OTHER_FORMATS.items():
        if head.startswith(magic):
            return f"{database}: {what}, not a DuckDB database file"
    if head and head[8:12] != _DUCKDB_MAGIC:
        start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
        try:
            decoded = head.decode("utf-8")
            text = decoded.isprintable() or "\n" in decoded
        except UnicodeDecodeError:
            text = False
        what = ("a JSON file" if start in (b"{", b"[") else "a Parquet file" if head.startswith(b"PAR1")
                else "a gzip file" if head.startswith(b"\x1f\x8b") else "a text file" if text else None)
        if what is None:
            return f"{database}: not a DuckDB database file"
        return (f"{database}: {what}, not a DuckDB database file (an export is loaded into one: "
                f"cohortlab load --db lab.duckdb KIND {database})")
    return None


def connect(database: str, *, read_only: bool = False, lock_wait: float | None = None) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` with the errors a user can act on turned into a one-line
    :class:`DatabaseError`; waits up to ``lock_wait`` seconds for a lock held elsewhere."""
    if problem := other_format_problem(database):
        raise DatabaseError(problem)
    wait = lock_wait_seconds() if lock_wait is None else lock_wait
    try:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DatabaseError(f"{database}: cannot create its folder ({e.strerror or e})") from None
    if Path(database).is_dir():
        raise DatabaseError(folder_problem(database))
    con = open_waiting(database, lambda: duckdb.connect(database, read_only=read_only), wait)
    try:
        no_network_installs(con)
        check_database(con, None, database)
    except BaseException:
        con.close()
        raise
    return con


def open_waiting(database: str, open_fn, wait: float, how: str = "open the database"):
    """``open_fn()``, retried while another process holds ``database``'s lock (up to ``wait``
    seconds), with DuckDB's errors turned into one-line :class:`DatabaseError` messages."""
    deadline, delay = time.monotonic() + wait, 0.1
    while True:
        try:
            return open_fn()
        except duckdb.Error as e:
            msg = str(e)
            if "Could not set lock" in msg or "Conflicting lock" in msg:
                if time.monotonic() < deadline:
                    time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                    delay = min(delay * 2, 1.0)
                    continue
                pid = re.search(r"PID (\d+)", msg)
                who = f" (PID {pid.group(1)})" if pid else ""
                raise DatabaseLockedError(
                    f"{database}: the database is in use by another process{who}; waited {wait:g} s "
                    "(--wait SECONDS to wait longer)"
                ) from None
            if "not a valid DuckDB database file" in msg:
                raise DatabaseError(f"{database}: not a DuckDB database file") from None
            if "Unique file handle conflict" in msg:  # open in this very process, in another mode
                raise DatabaseError(
                    f"{database}: already open in this process by another Lab (read-only and writable at once "
                    "are refused): close it first (lab.close(), or open both in the same mode); in a notebook "
                    "an earlier cell's Lab, or `_`, may still hold it") from None
            first = msg.strip().splitlines()[0] if msg.strip() else type(e).__name__
            raise DatabaseError(f"{database}: cannot {how} ({first})") from None


class _Closed:
    """The connection of a closed engine: any use raises one line saying so (DuckDB's own error
    is ``ConnectionException: Connection Error: Connection already closed!``)."""

    def __init__(self, database: str | None) -> None:
        self.database = database

    def __getattr__(self, name: str):
        raise DatabaseError(f"{self.database or 'the in-memory database'}: this lab was closed "
                            "(lab.close() or the end of a `with` block): open a new Lab")


# integer types DuckDB converts to float64 for pandas (DuckDB 2.0.1): see DuckDBEngine.query_df
_WIDE_INTEGER = re.compile(r"U?HUGEINT|DECIMAL\((1[6-9]|[23][0-9]),0\)")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _exact_integers(col: pd.Series) -> pd.Series:
    """Decimal texts (None for NULL) as ``Int64`` when all fit int64, else as Python ints."""
    import pandas as pd

    values = [None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else int(v) for v in col]
    if all(v is None or -(2 ** 63) <= v < 2 ** 63 for v in values):
        return pd.Series(pd.array(values, dtype="Int64"), index=col.index, name=col.name)
    return pd.Series(values, index=col.index, name=col.name, dtype=object)


READ_ONLY_CATALOG = "source"  # the user's database in read-only mode (see DuckDBEngine._attach_read_only)


def memory_limit_problem(value: str, con: "duckdb.DuckDBPyConnection | None" = None) -> str | None:
    """What is wrong with a DuckDB ``memory_limit`` (``1.5GB``, ``800MiB``, ``50%``), or None when
    DuckDB takes it. DuckDB itself is asked: ``con`` gets the limit set (an engine's own
    connection), else a throwaway in-memory connection is asked (the CLI's check of an option)."""
    text = str(value).strip()
    if not text or "'" in text:
        return "not a memory size (e.g. 1.5GB, 800MB, 2GiB)"
    own = con is None
    con = duckdb.connect(":memory:") if own else con
    try:
        con.execute(f"SET memory_limit = '{text}'")
    except duckdb.Error as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return f"not a memory size (e.g. 1.5GB, 800MB, 2GiB): {first.removeprefix('Parser Error: ')}"
    finally:
        if own:
            con.close()
    return None


class DuckDBEngine(Engine):
    """The default engine: one DuckDB connection, to a file or in memory (module docstring:
    memory limit, threads, temporary folder, a database another process holds)."""

    name = "duckdb"

    def __init__(
        self,
        database: str | os.PathLike | None = None,
        *,
        connection: duckdb.DuckDBPyConnection | None = None,
        memory_limit: str | None = None,
        threads: int | None = None,
        read_only: bool = False,
    ) -> None:
        """``database``: a file (its folder created when missing) or None / ``":memory:"``;
        ``connection``: an open DuckDB connection to use instead; ``memory_limit`` (``"1.5GB"``)
        and ``threads``: defaults from ``$COHORTLAB_MEMORY_LIMIT`` / ``$COHORTLAB_THREADS``, else
        the machine's; ``read_only``: the file is attached read-only and never written."""
        if threads is not None and (isinstance(threads, bool) or threads_problem(threads)):
            # checked before the file is opened: a word or 0 was a ValueError from int() after it
            from cohortlab.errors import SettingsError

            raise SettingsError(f"threads={threads!r}: not a number of threads (a whole number, at least 1, e.g. 2)")
        if connection is not None:
            self.con = connection
            self.database = None
        else:
            self.database = str(database) if database not in (None, ":memory:") else None
            if self.database and read_only:
                self.con = self._attach_read_only(self.database)
            elif self.database:
                self.con = connect(self.database, read_only=read_only)
            else:
                self.con = duckdb.connect(":memory:", read_only=read_only)
                no_network_installs(self.con)
        self._interrupted = False
        self._session_settings()
        memory_limit_arg = memory_limit
        memory_limit = memory_limit or os.environ.get("COHORTLAB_MEMORY_LIMIT") or default_memory_limit()
        threads = threads or env_threads() or default_threads()
        self._own_temp = None
        if connection is None:
            if self.database and not read_only:
                temp = self.database + ".tmp"
                _remove_stale_spill(temp)
            else:  # nothing written next to a read-only database; a folder only its owner reads; removed at close
                temp = self._own_temp = make_private_dir("duckdb")
                # also removed when the engine is never closed (a notebook's kernel ends with its
                # labs open): at garbage collection or the end of the process
                self._remove_own_temp = weakref.finalize(self, _remove_folder_of, temp, os.getpid())
            self.execute(f"SET temp_directory = '{temp.replace(chr(39), chr(39) * 2)}'")
        if memory_limit:
            # set on this connection; a value DuckDB refuses (Lab(memory_limit="lots")) is one line naming it
            problem = memory_limit_problem(memory_limit, self.con)
            if problem:
                from cohortlab.errors import SettingsError

                if connection is None:
                    self.close()  # the file is not left open (locked) behind the error
                given = "memory_limit" if memory_limit_arg else "COHORTLAB_MEMORY_LIMIT"
                raise SettingsError(f"{given}={memory_limit!r}: {problem}")
        if threads:
            self.execute(f"SET threads = {int(threads)}")

    def _session_settings(self) -> None:
        """The settings of this connection alone (a second connection, :meth:`cursor`, sets them
        again; the memory limit, threads and temporary folder are the database's, shared)."""
        self.execute("SET TimeZone = 'UTC'")
        if not _stderr_is_terminal():  # DuckDB's own progress bar: no \r noise in cron logs
            try:
                self.execute("SET enable_progress_bar = false")
            except duckdb.Error:
                # inside a Jupyter kernel DuckDB refuses to touch the setting without ipywidgets
                # (and draws no text bar there anyway)
                pass

    def cursor(self) -> "DuckDBEngine":
        """An engine on a second connection to the same database, for work in another thread
        beside this engine's (``load_world`` loads a folder's Mixpanel events so): its own
        transactions and temporary tables, the database's memory limit, threads and temporary
        folder. Closing it leaves this engine open."""
        other = object.__new__(type(self))
        other.con = self.con.cursor()
        other.database = self.database
        other._own_temp = None
        other._interrupted = False
        other._session_settings()
        return other

    def interrupt(self) -> None:
        """From another thread: stop the statement this connection runs, and refuse every later
        one but a ``ROLLBACK`` (each raises ``KeyboardInterrupt``), so that a load running on it
        stops and rolls back whether or not a statement was running at that moment."""
        self._interrupted = True
        self.con.interrupt()

    @staticmethod
    def _attach_read_only(path: str) -> duckdb.DuckDBPyConnection:
        """Read-only mode: the user's file is ATTACHed ``READ_ONLY`` as catalog ``source``
        into an in-memory database. Unqualified names resolve in memory first, then in the file
        (``search_path``); everything written (simulation results, temp tables) goes to memory.
        Results of earlier commands stored in the file stay readable until this run writes its
        own (into memory). The file is never written: no ``.wal`` is left behind, and replacing it between two runs is
        harmless."""
        if Path(path).is_dir():
            raise DatabaseError(folder_problem(path))
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such database")
        if problem := other_format_problem(path):
            raise DatabaseError(problem)
        from cohortlab.pipeline import sql_str

        con = duckdb.connect(":memory:")
        try:
            no_network_installs(con)
            open_waiting(path, lambda: con.execute(f"ATTACH {sql_str(path)} AS {READ_ONLY_CATALOG} (READ_ONLY)"),
                         lock_wait_seconds(), "open the database read-only")
            check_database(con, READ_ONLY_CATALOG, path)
            con.execute(f"SET search_path = 'memory.main,{READ_ONLY_CATALOG}.main'")
            # results of earlier commands stored in the file (resolution, migration_daily, ...) stay
            # readable; this run's results are written whole (CREATE OR REPLACE ... AS) into memory,
            # where they shadow the stored ones
        except BaseException:
            con.close()
            raise
        return con

    def _run(self, sql: str, params: list[Any] | None, fetch=None):
        """The statement run (and its result fetched by ``fetch``); Ctrl-C during either is
        Python's ``KeyboardInterrupt`` (DuckDB 2 raises a plain ``RuntimeError("Query
        interrupted")`` on SIGINT, ``InterruptException`` on ``interrupt()``, which an API
        user's ``except KeyboardInterrupt`` would miss)."""
        if self._interrupted and sql.lstrip()[:8].upper() != "ROLLBACK":
            raise KeyboardInterrupt(f"{self.database or 'the database'}: interrupted")
        try:
            rel = self.con.execute(sql, params) if params is not None else self.con.execute(sql)
            return fetch(rel) if fetch else None
        except Exception as e:  # noqa: BLE001 (re-raised as it is unless an interrupt)
            if is_interrupt(e):
                raise KeyboardInterrupt from e
            raise

    def execute(self, sql: str, params: list[Any] | None = None) -> None:
        self._run(sql, params)

    def query_df(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """The result as a DataFrame. Integers wider than BIGINT (``HUGEINT``, ``UHUGEINT``, a
        ``DECIMAL`` without decimals of more than 15 digits), which DuckDB gives pandas as float64
        (an MPID cast to one lost its last digits: docs/rules.md#exact-numbers), are exact: ``Int64``
        when every value fits int64, else Python ints. Such a result is fetched once as Arrow
        (exact decimals) and read as text from there: the statement never runs twice."""

        def fetch(rel):
            described = rel.description or ()
            wide = [str(d[0]) for d in described if _WIDE_INTEGER.fullmatch(str(d[1]))]
            if not wide or len({str(d[0]) for d in described}) < len(described):  # two columns of one name: as is
                return rel.df()
            import warnings

            with warnings.catch_warnings():  # "an extra copy of the rows": a rare result, read once
                warnings.simplefilter("ignore", UserWarning)
                fetched = rel.to_arrow_table()
            as_text = ", ".join(f"CAST({_quoted(c)} AS VARCHAR) AS {_quoted(c)}" for c in wide)
            df = self.con.from_arrow(fetched).project(f"* REPLACE ({as_text})").df()
            for c in wide:
                df[c] = _exact_integers(df[c])
            return df

        return self._run(sql, params, fetch)

    def query_rows(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        return self._run(sql, params, lambda rel: rel.fetchall())

    def register(self, name: str, df: pd.DataFrame) -> None:
        self.con.register(name, df)

    def table_exists(self, name: str) -> bool:
        """Whether a table or view called ``name`` exists (any schema of this connection)."""
        rows = self.query_rows(
            "SELECT 1 FROM information_schema.tables WHERE table_name = ? LIMIT 1", [name]
        )
        return bool(rows)

    def drop(self, name: str) -> None:
        self.con.unregister(name)  # a registered frame (no-op otherwise)
        rows = self.query_rows("SELECT table_type FROM information_schema.tables WHERE table_name = ?", [name])
        for (kind,) in rows:
            self.execute(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} IF EXISTS {name}")

    def close(self) -> None:
        """Close the connection and remove this engine's own temporary folder (again: nothing);
        using the engine afterwards raises :class:`DatabaseError`."""
        if isinstance(self.con, _Closed):
            return
        self.con.close()
        self.con = _Closed(self.database)
        if self._own_temp:
            self._remove_own_temp()


def _remove_folder_of(folder: str, pid: int) -> None:
    """Remove ``folder``, made by process ``pid``, if this is that process (not a forked child)."""
    if os.getpid() == pid:
        shutil.rmtree(folder, ignore_errors=True)


def _remove_stale_spill(temp: str) -> None:
    """Remove the spill files that a killed process left in a database's ``<file>.tmp`` (DuckDB
    removes its own at close, never another process's: after a SIGKILL or a crash they stayed
    for good, as large as the data spilled, personal data included). Safe: this process holds the
    database's write lock, so no other process has the file open, nor spills next to it."""
    try:
        stale = [p for p in Path(temp).iterdir() if p.name.startswith("duckdb_temp_")]
    except OSError:  # no folder (nothing ever spilled), or not readable: nothing to do
        return
    for p in stale:
        try:
            p.unlink()
        except OSError:
            pass


def physical_memory() -> int | None:
    """Bytes of memory of the machine (None when the platform does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


DEFAULT_MEMORY_CAP = 1_500_000_000  # 1.5 GB: with Python and the result sets, a step stays under 2 GiB


def default_memory_limit() -> str | None:
    """DuckDB memory_limit when none is given: min(1.5 GB, 25% of the machine's memory), in MB."""
    total = physical_memory()
    limit = DEFAULT_MEMORY_CAP if total is None else min(DEFAULT_MEMORY_CAP, total // 4)
    return f"{max(limit // 1_000_000, 100)}MB"


def threads_problem(value: str) -> str | None:
    """What is wrong with a ``$COHORTLAB_THREADS`` value, or None when it is a whole number >= 1."""
    try:
        ok = int(str(value).strip()) >= 1
    except ValueError:
        ok = False
    return None if ok else "not a number of threads (a whole number, at least 1, e.g. 2)"


def env_threads() -> int | None:
    """``$COHORTLAB_THREADS`` as a number (None when unset or empty); a value that is not a whole
    number >= 1 raises :class:`~cohortlab.errors.SettingsError` naming the variable."""
    raw = os.environ.get("COHORTLAB_THREADS")
    if not raw:
        return None
    problem = threads_problem(raw)
    if problem:
        from cohortlab.errors import SettingsError

        raise SettingsError(f"COHORTLAB_THREADS={raw!r}: {problem}")
    return int(raw.strip())


def default_threads() -> int:
    """DuckDB threads when none is given: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
