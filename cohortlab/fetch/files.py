"""Atomic writes for ``cohortlab fetch``: a file appears complete or not at all.

Every output is written to a temporary name in ``<out>/.fetch/tmp/`` (same file system) and
renamed into place; a folder of pages is assembled in a temporary folder and swapped in. The
folder loader ignores hidden folders (``cohortlab.loaders.files.is_clutter``), so ``.fetch/``
(temporary files, the list of MPIDs the Profile API does not know) is never loaded.

One run at a time writes to a folder: :func:`run_lock` holds ``<out>/.fetch/lock`` (an OS file
lock, released by the OS when the process ends, however it ends) and removes what a killed run
left in ``.fetch/tmp/``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from cohortlab.fetch.http import FetchError


def state_dir(out: Path) -> Path:
    d = out / ".fetch"
    if d.is_symlink():  # a folder shared with others: the run would delete and write where it points
        raise FetchError(f"{d} is a symbolic link: fetch keeps its own files there (remove the link)")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _no_links(d: Path) -> None:
    """``.fetch/`` holds only what fetch writes (the lock, the temporary folder, its records):
    an entry that is a symbolic link was put there by someone else, and fetch would truncate,
    overwrite or empty what it points to (``tmp`` -> a folder of documents: every file in it
    removed as a killed run's leftovers)."""
    links = sorted(p.name for p in d.iterdir() if p.is_symlink())
    if links:
        raise FetchError(f"{d / links[0]} is a symbolic link: fetch writes only its own files in {d} "
                         "and does not follow links there (remove it)")


@contextmanager
def run_lock(out: Path) -> Iterator[int]:
    """Hold ``<out>/.fetch/lock`` for a whole run, or fail at once (:class:`FetchError`) when
    another run holds it. Once held, nobody else writes to ``.fetch/tmp/``: the temporary files and
    folders left there by a run that was killed (SIGKILL, power loss) are removed. Yields how
    many were removed. Without ``fcntl`` (Windows) there is no lock and nothing is removed."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on the platforms CI runs
        yield 0
        return
    d = state_dir(out)
    _no_links(d)
    path = d / "lock"
    with open(path, "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            pid = f.read().strip()
            raise FetchError(f"{out}: another cohortlab fetch is writing to this folder"
                             + (f" (process {pid})" if pid.isdigit() else "")
                             + ": wait for it to end, or fetch into another --out") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        removed = 0
        for leftover in tmp_dir(out).iterdir():
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
            removed += 1
        try:
            yield removed
        finally:
            f.seek(0)
            f.truncate()
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def tmp_dir(out: Path) -> Path:
    """``<out>/.fetch/tmp/``: temporary files of a run (a killed run's are removed by the next)."""
    d = state_dir(out) / "tmp"
    d.mkdir(parents=True, exist_ok=True)
    return d


@contextmanager
def atomic_file(out: Path, target: Path | Callable[[], Path], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file; on a clean exit it is fsynced and renamed to ``target`` (a path, or
    a function giving it then, for a name known only once the file is written); on an exception
    it is removed and ``target`` is left as it was."""
    name = target.name if isinstance(target, Path) else "file"
    fd, tmp = tempfile.mkstemp(dir=tmp_dir(out), prefix=name + ".", suffix=".part")
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        final = target if isinstance(target, Path) else target()
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_json(out: Path, target: Path, data: Any, indent: int | None = 2) -> None:
    """``data`` as JSON in ``target`` (atomically). A lone surrogate in a string (a cohort name
    cut inside an emoji, parsed from ``\\ud83d``) is written as its escape, as it was sent."""
    from cohortlab.fetch.jsontext import escape_surrogates

    text = escape_surrogates(json.dumps(data, indent=indent, ensure_ascii=False))
    with atomic_file(out, target, "w") as f:
        f.write(text + "\n")


@contextmanager
def atomic_dir(out: Path, target: Path, keep: Callable[[str], bool] | None = None) -> Iterator[Path]:
    """A temporary folder to fill; on a clean exit it replaces ``target`` as a whole (the old
    folder, if any, is removed only after the new one is in place). ``keep(name)``: the old
    folder's entries it is true for (and the new one has no entry of that name) are moved into the
    new folder instead of being removed (a ``.DS_Store``)."""
    work = Path(tempfile.mkdtemp(dir=tmp_dir(out), prefix=target.name + "."))
    try:
        yield work
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    target.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=tmp_dir(out), prefix=target.name + ".old."))
        os.replace(target, old / "x")
    os.replace(work, target)
    if old is not None:
        if keep is not None and (old / "x").is_dir() and not (old / "x").is_symlink():
            for entry in sorted((old / "x").iterdir()):
                if keep(entry.name) and not os.path.lexists(target / entry.name):
                    os.replace(entry, target / entry.name)  # the same file system: a rename
        shutil.rmtree(old, ignore_errors=True)
