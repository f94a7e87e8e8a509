"""Files a command writes for the user (``--members-out``, ``verify --out``, ``migrate --out``
and ``--chart``, ``export``): written whole or not at all.

Each is written under a hidden name beside it (``.<name>.part``) and renamed over the target once
complete, so a killed command, a full disk or an error never leaves a truncated file that looks
complete where the user asked for one (an older file of that name stays as it was). A part file
left by a process killed mid-write is replaced by the next write; the part file is made anew by
cohortlab (never written through a link another user put there). Writers are given the part
path, so the format must be named explicitly (not inferred from the suffix, which the part
name does not end with).
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator


def part_path(path: str | os.PathLike) -> Path:
    """The hidden temporary name ``path`` is written under: ``<folder>/.<name>.part``."""
    p = Path(path)
    return p.with_name(f".{p.name}.part")


@contextmanager
def written_whole(path: str | os.PathLike) -> Iterator[Path]:
    """Yield the part path to write; on a clean exit it replaces ``path``; on any exception
    (Ctrl-C included) it is removed and ``path`` is left as it was."""
    part = part_path(path)
    part.unlink(missing_ok=True)  # of a write killed earlier
    try:
        # made here, as a new file of this user's (O_EXCL: never through a link), before the writer
        # opens it by name: in a folder every user writes to (/tmp), another user could otherwise
        # put a link there between the unlink and the writer's open, and the output would be
        # written through it, over a file of this user's it points to (in a sticky folder nobody
        # else can then remove or replace the file made here)
        os.close(os.open(part, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    except FileExistsError:
        from cohortlab.errors import CohortlabError

        raise CohortlabError(f"{part}: made by another process just as this one was to write it (a folder other "
                             "users can write to?): nothing written; write the output elsewhere") from None
    try:
        yield part
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def is_gzip_name(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(".gz")


def copy_format(path: str | os.PathLike) -> str:
    """DuckDB ``COPY ... TO`` options for an output named ``path`` (``.parquet``, ``.csv`` or
    ``.csv.gz``), named explicitly: the part file it is written under has no such suffix."""
    if str(path).lower().endswith(".parquet"):
        return "FORMAT PARQUET"
    return "FORMAT CSV, HEADER TRUE" + (", COMPRESSION gzip" if is_gzip_name(path) else "")


def remove_written(folder: Path, names: Iterable[str], *, made: bool) -> None:
    """After a run that wrote into ``folder`` stopped (Ctrl-C, SIGTERM) or failed: remove the
    entries ``names`` it writes (a folder whole, a link or file as itself), and ``folder`` when the
    run ``made`` it and nothing else is left. A file another process put there meanwhile stays, and
    so the next run (a cron job's retry) is not refused for a half-made output ("not empty").
    Nothing to do when ``folder`` is no folder (the run stopped before making it, or could not:
    a file where a folder of its path goes), and the run's own error stands."""
    if not folder.is_dir():
        return
    for name in names:
        p = folder / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    if made and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
