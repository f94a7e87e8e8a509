"""Atomic writes for ``cohortlab fetch``: a file appears complete or not at all.

Every output is written to a temporary name in ``<out>/.fetch/tmp/`` (same file system) and
renamed into place; a folder of pages is assembled in a temporary folder and swapped in. The
folder loader ignores hidden folders, so ``.fetch/`` (temporary files, the list of MPIDs the
Profile API does not know) is never loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Callable, Iterator


def state_dir(out: Path) -> Path:
    d = out / ".fetch"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _tmp_dir(out: Path) -> Path:
    d = state_dir(out) / "tmp"
    d.mkdir(parents=True, exist_ok=True)
    return d


@contextmanager
def atomic_file(out: Path, target: Path | Callable[[], Path], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file; on a clean exit it is fsynced and renamed to ``target`` (a path, or
    a function giving it then, for a name known only once the file is written); on an exception
    it is removed and ``target`` is left as it was."""
    name = target.name if isinstance(target, Path) else "file"
    fd, tmp = tempfile.mkstemp(dir=_tmp_dir(out), prefix=name + ".", suffix=".part")
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
    with atomic_file(out, target, "w") as f:
        json.dump(data, f, indent=indent, ensure_ascii=False)
        f.write("\n")


@contextmanager
def atomic_dir(out: Path, target: Path) -> Iterator[Path]:
    """A temporary folder to fill; on a clean exit it replaces ``target`` (the old folder, if
    any, is removed only after the new one is in place)."""
    work = Path(tempfile.mkdtemp(dir=_tmp_dir(out), prefix=target.name + "."))
    try:
        yield work
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    target.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=_tmp_dir(out), prefix=target.name + ".old."))
        os.replace(target, old / "x")
    os.replace(work, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
