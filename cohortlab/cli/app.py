"""The root click group and shared CLI helpers."""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager

import click

from cohortlab import __version__
from cohortlab.engines import ENGINES
from cohortlab.errors import INTERRUPTED_EXIT, CohortlabError, is_interrupt
from cohortlab.escaping import terminal_text


class _Group(click.Group):
    """The root group: a user-facing error (:class:`~cohortlab.errors.CohortlabError`, which
    includes every loader's ``LoadError``) from any command is printed as one line on stderr,
    without a traceback, with exit status 1. Ctrl-C (also when it interrupts a DuckDB query) is
    one line ``error: interrupted``, exit status 130."""

    def invoke(self, ctx):
        wait = os.environ.get("COHORTLAB_LOCK_WAIT")  # --wait sets it for this command only
        env_limit = os.environ.get("COHORTLAB_MEMORY_LIMIT")
        if env_limit:  # every DuckDB engine reads it: a bad value is one line here, not a traceback later
            from cohortlab.engines.duckdb import memory_limit_problem

            problem = memory_limit_problem(env_limit)
            if problem:
                fail(f"COHORTLAB_MEMORY_LIMIT={env_limit!r}: {problem}")
        env_threads = os.environ.get("COHORTLAB_THREADS")
        if env_threads:  # the same for the threads: a word or 0 was a ValueError traceback
            from cohortlab.engines.duckdb import threads_problem

            problem = threads_problem(env_threads)
            if problem:
                fail(f"COHORTLAB_THREADS={env_threads!r}: {problem}")
        for name, problem in _env_option_problems():  # click would blame --engine / --wait, not given
            fail(f"{name}={os.environ[name]!r}: {problem}")
        env_min = os.environ.get("COHORTLAB_PARALLEL_MIN_BYTES")
        if env_min:  # read when the loaders are imported: a word there was a traceback of every command
            from cohortlab.loaders.base import parallel_min_bytes_problem

            problem = parallel_min_bytes_problem(env_min)
            if problem:
                fail(f"COHORTLAB_PARALLEL_MIN_BYTES={env_min!r}: {problem}")
        try:  # a pseudonym key too short to keep pseudonyms unguessable: before any output, not after
            from cohortlab.privacy import configured_key

            configured_key()
        except CohortlabError as e:
            fail(_one_line(str(e)))
        try:
            with terminate_as_ctrl_c():
                return super().invoke(ctx)
        except CohortlabError as e:
            fail(_one_line(str(e)))
        except BrokenPipeError:  # stdout closed early (`cohortlab info ... | head -1`): as a pipe's reader wants
            quiet_broken_pipe()
        except (KeyboardInterrupt, Exception) as e:  # noqa: BLE001 - re-raised unless the machine's or Ctrl-C
            if is_interrupt(e):
                fail("interrupted", INTERRUPTED_EXIT)
            problem = machine_problem(e)
            if problem is None:
                raise
            fail(problem)
        finally:
            if wait is None:
                os.environ.pop("COHORTLAB_LOCK_WAIT", None)
            else:
                os.environ["COHORTLAB_LOCK_WAIT"] = wait


def _env_option_problems() -> list[tuple[str, str]]:
    """The variables that stand for an option (``COHORTLAB_ENGINE`` for ``--engine``,
    ``COHORTLAB_LOCK_WAIT`` for ``--wait``) holding a value the option refuses: click's message
    named the option, which the user never gave, with a usage exit (2)."""
    out = []
    engine = os.environ.get("COHORTLAB_ENGINE")
    if engine and engine not in ENGINES:
        out.append(("COHORTLAB_ENGINE", "expected duckdb or spark"))
    wait = os.environ.get("COHORTLAB_LOCK_WAIT")
    if wait:
        try:
            ok = 0 <= float(wait) <= 24 * 3600
        except ValueError:
            ok = False
        if not ok:
            out.append(("COHORTLAB_LOCK_WAIT", "expected seconds to wait for a database in use, 0 to 86400"))
    return out


@contextmanager
def terminate_as_ctrl_c():
    """SIGTERM and SIGHUP (``kill PID``, a supervisor such as Airflow stopping a task, a closed
    terminal) stop every command as Ctrl-C does: its clean-up runs (a report's kernels and folder,
    a synth's working files), ``--json`` still prints its object, and the exit status is 130 with
    ``error: interrupted``. Python's default for them ends the process on the spot (status 143 or
    129, no JSON, half-written output left behind)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _stop(signum, frame):
        raise KeyboardInterrupt

    old = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def quiet_broken_pipe() -> None:
    """Exit as a command whose reader stopped reading does (status 141, 128 + SIGPIPE), without a
    message: `cohortlab info | head -1` exited 1 with nothing said. stdout goes to /dev/null so
    that Python's flush at exit does not complain."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(141)


def machine_problem(error: BaseException) -> str | None:
    """One line for an error of the machine rather than of cohortlab or the input: a full disk
    (Python's or DuckDB's), DuckDB out of memory, no writable temporary folder, a file or folder
    this user may not write or read. None for any other error (a bug keeps its traceback)."""
    import errno
    import re

    from cohortlab.tempdirs import no_temp_dir_problem

    text = str(error).strip()
    if problem := no_temp_dir_problem(error):
        return problem
    from cohortlab.errors import is_disk_full

    if is_disk_full(error):
        path = getattr(error, "filename", None)
        m = re.search(r'(?:write|open|create) file \\?"([^"\\]+)\\?"', text)  # in DuckDB's JSON too
        where = f"{path or (m.group(1) if m else None)}: " if (path or m) else ""
        if (isinstance(error, OSError) and error.errno == errno.EFBIG) or "File too large" in text:
            return f"{where}file too large for this process's limit on file size (ulimit -f): raise it, or write elsewhere"
        return f"{where}no space left on the device: free some space, or write elsewhere"
    if isinstance(error, PermissionError) or (isinstance(error, OSError) and error.errno == errno.EROFS):
        # an --out folder this user may not write (export, report, demo), an input it may not read
        path = getattr(error, "filename", None)
        what = (error.strerror or "permission denied").lower()
        return f"{path + ': ' if path else ''}{what}: check its permissions (and its folder's), or use another path"
    if isinstance(error, NotADirectoryError):  # `--out afile/x` (export, ...): a file where a folder must be
        path = getattr(error, "filename", None)
        return (f"{path + ': ' if path else ''}not a directory: a file is where a folder of this path is needed, "
                "use another path")
    m = re.search(r'Could not read enough bytes from file "([^"]+)"', text)
    if type(error).__name__ == "IOException" and m:  # a database file cut short, found on a read
        return f"{m.group(1)}: {TRUNCATED}"
    from cohortlab.errors import is_out_of_memory, more_memory_advice

    if is_out_of_memory(error):
        first = text.splitlines()[0] if text else type(error).__name__

        return f"{first} {more_memory_advice()}"
    return None


TRUNCATED = ("the database file is truncated or damaged (a copy that did not finish?): restore it from a "
             "whole copy, or load the exports into a new database file")


def refuse_truncated(db: str) -> None:
    """Fail with one line, before any work, when the DuckDB file ``db`` is cut short
    (:func:`truncated`)."""
    problem = truncated(db)
    if problem:
        fail(problem)


def truncated(db: str) -> str | None:
    """The error line's text when the DuckDB file ``db`` ends before a block its tables use (a
    copy cut short, a full disk during a copy): DuckDB opens such a file and fails only when a
    command reads a missing block, a traceback half-way through the command, and a load into it
    succeeded. Compares the file's size with the blocks its header counts; only a file shorter
    than those has its tables' storage metadata read, to tell a missing block a table uses from
    free blocks at the end. None when the file is whole, or cannot be read now (the command's
    own open says why)."""
    import duckdb

    from cohortlab.engines.untrusted import builtins_only, objects_that_run_sql, read_only_look

    if not os.path.isfile(db):
        return None
    # the size its header counts is read with DuckDB's own function, which nothing in the file can
    # stand in for; the file is checked for objects that run SQL (views, macros) only when it is
    # short, before its tables are read: a whole file, nearly always, is checked once, by the
    # command's own open (each check lists DuckDB's functions: milliseconds on every command)
    con = read_only_look(db, checked=False)
    if con is None:
        return None
    try:
        with builtins_only(con):
            block_size, total = con.execute("SELECT block_size, total_blocks FROM pragma_database_size()").fetchone()
        if os.path.getsize(db) >= 3 * 4096 + int(total) * int(block_size):
            return None  # every block the file counts is there (every block id is below total_blocks)
        if objects_that_run_sql(con):
            return None  # the command's own open refuses the file and says why
        last = -1
        for (table,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
                                    "AND schema_name = 'main'").fetchall():
            (block,) = con.execute("SELECT max(block_id) FROM pragma_storage_info(?) WHERE persistent",
                                   [table]).fetchone()
            last = max(last, -1 if block is None else int(block))
    except duckdb.Error:
        return None
    finally:
        con.close()
    size = os.path.getsize(db)
    # block i of a DuckDB file starts after its three 4 KiB headers, at 12288 + i * block_size
    needed = 3 * 4096 + (last + 1) * int(block_size)
    if last >= 0 and size < needed:
        return f"{db}: {TRUNCATED} ({size:,} bytes; its tables use {needed:,})"
    return None


def _one_line(message: str) -> str:
    return " ".join(message.split("\n")).strip() or "failed"  # fail() escapes what remains


def error_json(error: BaseException) -> dict[str, str]:
    """``{"kind", "message"}`` of an error as the command line reports it (the ``error`` object a
    ``--json`` command prints on stdout when it fails; the same message is the ``error:`` line on
    stderr): ``interrupted``; a :class:`CohortlabError` by its class (``LoadError`` -> ``load``,
    ``StrictLoadError`` -> ``strict_load``, ``FetchError`` -> ``fetch``, ...); ``machine`` (a full
    disk, out of memory: :func:`machine_problem`); ``internal`` for anything else (a bug: its
    traceback follows on stderr)."""
    import re

    if is_interrupt(error):
        return {"kind": "interrupted", "message": "interrupted"}
    if isinstance(error, CohortlabError):
        name = re.sub(r"Error$", "", type(error).__name__) or "Cohortlab"
        return {"kind": re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower(), "message": _one_line(str(error))}
    problem = machine_problem(error)
    if problem is not None:
        return {"kind": "machine", "message": problem}
    return {"kind": "internal", "message": _one_line(f"{type(error).__name__}: {error}")}


class JsonCommand(click.Command):
    """A command with a ``--json`` flag, whose stdout a scheduled job parses: an argument click
    itself refuses (a usage error: an unknown option, ``--concurrency abc``, a missing argument;
    exit status 2, its message on stderr as always) also prints the command's JSON object on
    stdout, with ``"error": {"kind": "usage", "message"}``. :meth:`usage_json` builds it (the
    command's own shape: override it)."""

    def usage_json(self, args: list[str], message: str) -> dict:
        return {"ok": False, "error": {"kind": "usage", "message": message}}

    def make_context(self, info_name, args, parent=None, **extra):
        given = list(args)
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as e:
            flags = given[:given.index("--")] if "--" in given else given
            if "--json" in flags:
                click.echo(json.dumps(self.usage_json(given, _one_line(e.format_message())), indent=2))
            raise


class Choice(click.Choice):
    """click's Choice, whose refusal also names the nearest choice ("Did you mean
    'mixpanel-events'?"), as click does for a misspelt option or command."""

    def convert(self, value, param, ctx):
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as e:
            import difflib

            close = difflib.get_close_matches(str(value), [str(c) for c in self.choices], n=1)
            if not close:
                raise
            self.fail(f"{e.message} Did you mean {close[0]!r}?", param, ctx)


def option_value(args: list[str], *names: str) -> str | None:
    """The value given to an option in raw ``args`` (``--out X`` or ``--out=X``; the last wins),
    for a usage error's JSON object, before click parsed them."""
    found = None
    for i, arg in enumerate(args):
        if arg == "--":
            break
        for name in names:
            if arg == name and i + 1 < len(args):
                found = args[i + 1]
            elif arg.startswith(name + "="):
                found = arg[len(name) + 1:]
    return found


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cohortlab")
def main() -> None:
    """cohortlab: explain why a Mixpanel cohort and its mParticle audience disagree."""


def fail(message: str, code: int = 1) -> None:
    """Print an error on stderr and exit non-zero."""
    click.echo(f"error: {terminal_text(message)}", err=True)  # names from data may hold escape sequences
    sys.exit(code)


def check_output_path(path: str, option: str, suffixes=(".csv", ".csv.gz", ".parquet")) -> None:
    """Fail now (before any work) when ``path`` cannot be written: a wrong suffix, a folder,
    a parent folder that does not exist or is not writable."""
    if not path.lower().endswith(tuple(suffixes)):
        names = f"{', '.join(suffixes[:-1])} or {suffixes[-1]}" if len(suffixes) > 1 else suffixes[0]
        fail(f"{option} {path}: expected a {names} file name")
    if os.path.isdir(path):
        fail(f"{option} {path}: is a folder")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        fail(f"{option} {path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        fail(f"{option} {path}: not writable")


def read_settings(path: str | None):
    """The ``--settings`` file's :class:`~cohortlab.settings.SyncSettings` (the defaults without
    one), or one error line ``bad settings file: ...``: the same for every command that takes it."""
    from cohortlab.settings import SettingsError, SyncSettings

    try:
        return SyncSettings.from_yaml(path) if path else SyncSettings()
    except SettingsError as e:
        fail(f"bad settings file: {e}")


def check_memory_limit(ctx, param, value):
    """Click callback of a ``--memory-limit`` option: a value DuckDB refuses is one error line, now."""
    from cohortlab.engines.duckdb import memory_limit_problem

    if value is not None:
        problem = memory_limit_problem(value)
        if problem:
            fail(f"{param.opts[0] if param is not None else '--memory-limit'} {value}: {problem}")
    return value


def _set_lock_wait(ctx, param, value):
    if value is not None:
        os.environ["COHORTLAB_LOCK_WAIT"] = str(value)
    return value


DB_HELP = "DuckDB database file, written by `cohortlab load`."
# the commands with --engine spark also read a folder written by `cohortlab export` (docs/spark.md)
DB_OR_EXPORT_HELP = DB_HELP + " With --engine spark, also a folder written by `cohortlab export`."


def db_option(f=None, *, help: str = DB_HELP, folder: bool = False):
    """``--db FILE`` (parameter ``db``) and ``--wait SECONDS`` (how long to wait when another
    process holds the database; not passed to the command: it sets ``$COHORTLAB_LOCK_WAIT``).
    ``folder``: a folder is taken too (an export, for --engine spark)."""

    def deco(f):
        f = click.option(
            "--wait", "lock_wait", type=click.FloatRange(min=0, max=24 * 3600), default=None, expose_value=False,
            callback=_set_lock_wait, envvar="COHORTLAB_LOCK_WAIT",
            help="Seconds to wait when another process is using the database (default 5).",
        )(f)
        return click.option("--db", "db", required=True, type=click.Path(dir_okay=folder), help=help)(f)

    return deco(f) if f is not None else deco


def check_time(ctx, param, value):
    """Click callback of a time option (``--at``, ``--since``): a value that is not a time is one
    line naming the option (``error: --at: not a time: 'yesterday' (expected ISO-8601, ...)``)
    before any work; the value goes on as given."""
    if value is not None:
        from cohortlab.errors import SettingsError
        from cohortlab.times import parse_time

        try:
            parse_time(value, param.opts[0])
        except SettingsError as e:
            fail(str(e))
    return value


SETTINGS_HELP = "Simulation settings YAML (see SyncSettings)."
SOURCE_HELP = "Membership from snapshots or replayed webhooks."


def cohort_options(*, at: str, settings: str = SETTINGS_HELP, source: str | None = SOURCE_HELP,
                   export_folder: bool = False):
    """The options of a command that simulates one cohort of the database: ``--db`` and ``--wait``
    (:func:`db_option`), ``--cohort``, ``--at``, ``--settings`` (parameter ``settings_path``) and
    ``--source``, in that order. The command gives the help of ``--at`` (what the time is to it),
    and of ``--settings`` / ``--source`` where it says more (None: no help). ``export_folder``:
    ``--db`` may be a folder written by ``cohortlab export`` (the commands with ``--engine``)."""

    def deco(f):
        f = click.option("--source", type=Choice(["auto", "snapshots", "webhooks"]), default="auto",
                         show_default=True, help=source)(f)
        f = click.option("--settings", "settings_path", type=click.Path(dir_okay=False), help=settings)(f)
        f = click.option("--at", "at", help=at, callback=check_time)(f)
        f = click.option("--cohort", required=True, help="Cohort name (or id).")(f)
        return db_option(f, folder=export_folder, help=DB_OR_EXPORT_HELP if export_folder else DB_HELP)

    return deco


# --------------------------------------------------------------------------- engine choice
# (Spark scale-out, docs/spark.md) Commands that run the simulation take `--engine duckdb|spark` and
# `--spark-master`; they open their Lab with `open_lab(...)`.
def engine_options(f):
    """Add ``--engine`` and ``--spark-master`` to a command (parameters ``engine``, ``spark_master``)."""
    f = click.option(
        "--spark-master", "spark_master", default=None, envvar="COHORTLAB_SPARK_MASTER",
        help="Spark master URL for --engine spark (default: $COHORTLAB_SPARK_MASTER or local[2]).",
    )(f)
    f = click.option(
        "--engine", "engine", type=Choice(list(ENGINES)), default="duckdb", show_default=True,
        envvar="COHORTLAB_ENGINE",
        help="Run the simulation on DuckDB, or on Spark (needs cohortlab[spark] and Java 17; "
             "--db is then a DuckDB file or a folder written by `cohortlab export`).",
    )(f)
    return f


def open_lab(db: str, engine: str = "duckdb", spark_master: str | None = None, *, read_only: bool = False):
    """:func:`cohortlab.lab.open_lab` for a command: a missing engine or database is one error line."""
    from cohortlab.lab import open_lab as _open

    if engine == "spark":  # before any session (a JVM's stack trace, then a Python one)
        from cohortlab.engines.spark.engine import master_problem, resolved_master

        problem = master_problem(resolved_master(spark_master))
        if problem:
            fail(problem)
    try:
        return _open(db, engine=engine, spark_master=spark_master, read_only=read_only)
    except (ImportError, FileNotFoundError) as e:
        from cohortlab.tempdirs import no_temp_dir_problem

        fail(no_temp_dir_problem(e) or str(e))
    except (TypeError, ValueError) as e:
        if engine != "spark":
            raise
        # an export folder the Spark engine cannot read as it must (an MPID column of doubles, an
        # id column missing): one line, not a traceback
        fail(str(e).strip().splitlines()[0])
    except Exception as e:
        if engine != "spark" or "pyspark" not in type(e).__module__.lower():
            raise
        fail(f"spark: could not start a session: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}")


def loaded_database(db: str) -> bool:
    """The checks of a command that reads a loaded database (``info``, ``simulate``, ``verify``,
    ``explain``, ``remedies``, ``migrate``), before any work. One error line when ``db`` does
    not exist, holds no table (an empty DuckDB file: ``info`` wrote the schema into it), or is
    another program's DuckDB file (tables, none of them cohortlab's: it is never written into).
    Returns whether to open it read-only: when the file or its folder cannot be written
    (permissions, a read-only mount), the command computes in memory and stores nothing, and a
    note on stderr says so."""
    from cohortlab import schema

    if not os.path.exists(db):
        fail(f"{db}: no such database (load data first with `cohortlab load --db {db} ...`)")
    if os.path.isdir(db):
        return False  # an export folder (--engine spark), or one error line from the open
    if problem := schema.not_loaded_problem(db):  # another program's tables, or none: never written into
        fail(problem)
    refuse_truncated(db)
    folder = os.path.dirname(os.path.abspath(db))
    if os.access(db, os.W_OK) and os.access(folder, os.W_OK):
        return False
    click.echo(f"note: {terminal_text(db)} cannot be written here: results are computed in memory and "
               "not stored in it", err=True)
    return True


def _progress_default(ctx, param, value):
    return sys.stderr.isatty() if value is None else value


progress_option = click.option(
    "--progress/--no-progress", default=None, callback=_progress_default,
    help="Show a progress bar (default: only when stderr is a terminal, so cron logs stay clean).",
)


def working(description: str, enabled: bool):
    """The progress line of a long command while the block runs (:mod:`cohortlab.progress`: the
    steps done, the time, the step running), its description escaped for the terminal (it names
    a cohort as typed). Ended before the command prints: the line is on stderr, the results on
    stdout, one screen."""
    from cohortlab import progress

    return progress.shown(terminal_text(description), enabled)
