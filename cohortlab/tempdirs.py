"""cohortlab's own folders in the system's temporary folder, and the sweep of those a killed
process left.

A report loaded from ``--data`` keeps its database (all the raw data, personal data included) in
``cohortlab-report-<pid>-…``, its shared simulations (member data) in
``cohortlab-report-sims-<pid>-…``, a read-only DuckDB engine spills into
``cohortlab-duckdb-<pid>-…``, and a load reads a file through a copy (mixed line ends, lone
surrogate escapes, arrays one after another: a whole export) in ``cohortlab-lines-<pid>-…``,
each readable by its owner only (0700). Each is removed when its
run ends, even on Ctrl-C or SIGTERM; a SIGKILL or a crash cannot be caught, so the next run that
makes such a folder first removes the ones whose process no longer exists (:func:`sweep_stale`,
once per process). The process id in the name says whose a folder is; a folder of a live process
(or of another user) is never touched.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

KINDS = ("report", "report-sims", "duckdb", "lines")
_NAME = re.compile(r"^cohortlab-(report-sims|report|duckdb|lines)-(\d+)-")


def make_temp_dir(kind: str) -> tempfile.TemporaryDirectory:
    """A new ``cohortlab-<kind>-<pid>-…`` folder (removed with the object)."""
    return tempfile.TemporaryDirectory(prefix=_prefix(kind))


def no_temp_dir_problem(error: BaseException) -> str | None:
    """One line for Python's ``No usable temporary directory found in [...]`` (no writable
    ``$TMPDIR``, ``/tmp``, ``/var/tmp`` nor current folder), saying what to set; None for any
    other error."""
    if isinstance(error, FileNotFoundError) and "No usable temporary directory" in str(error):
        return f"{error.strerror or error}: set TMPDIR to a folder you can write (e.g. mkdir -p ~/tmp; export TMPDIR=~/tmp)"
    return None


def require_temp_dir() -> None:
    """Raise :class:`FileNotFoundError` (see :func:`no_temp_dir_problem`) now, before any work or
    output folder, when there is no writable temporary folder."""
    tempfile.gettempdir()


def make_private_dir(kind: str) -> str:
    """A new ``cohortlab-<kind>-<pid>-…`` folder, readable by its owner only (mode 0700, whatever
    the umask), that the caller removes. A read-only engine's spill folder is made here rather
    than left to DuckDB, which made it 0755 and its spill files (rows of the user's data,
    personal data included) 0644 under the usual umask 022: readable by every user of the
    machine while the process ran."""
    return tempfile.mkdtemp(prefix=_prefix(kind))


_swept: set[str] = set()  # the temporary folders swept by this process


def _prefix(kind: str) -> str:
    """``cohortlab-<kind>-<pid>-``, after sweeping the stale folders once per process and
    temporary folder (a read-only engine is opened many times in a report: the listing of the
    temporary folder is not repeated each time; a process that ends meanwhile is swept by the next
    run)."""
    if kind not in KINDS:
        raise ValueError(f"unknown temporary folder kind {kind!r}")
    root = tempfile.gettempdir()
    if root not in _swept:
        _swept.add(root)
        sweep_stale(root)
    return f"cohortlab-{kind}-{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def sweep_stale(folder: str | os.PathLike | None = None) -> list[Path]:
    """Remove this user's ``cohortlab-*-<pid>-…`` folders in ``folder`` (default: the system's
    temporary folder) whose process has ended; returns them."""
    root = Path(folder or tempfile.gettempdir())
    removed = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    me = os.getuid() if hasattr(os, "getuid") else None
    for p in entries:
        m = _NAME.match(p.name)
        if not m or int(m.group(2)) == os.getpid():
            continue
        try:
            st = p.lstat()
        except OSError:
            continue
        if not p.is_dir() or p.is_symlink() or (me is not None and st.st_uid != me) or _alive(int(m.group(2))):
            continue
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed
