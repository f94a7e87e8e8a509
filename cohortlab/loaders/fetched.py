"""The capture times ``cohortlab fetch`` recorded for the files it wrote (docs/loading.md#fetched).

A folder written by ``cohortlab fetch`` holds ``fetch.json``: ``{"runs": [{"fetched_at", "items":
[{"kind", "path", "as_of", ...}]}]}``, oldest run first. The profile exports carry no time of
their own, so a loader of profiles (``mixpanel-profiles``, ``mparticle-profiles``) given no
``as_of`` option takes the time recorded for the file:

* ``mixpanel/profiles/engage_page_NNNNN.json`` (Engage pages): the ``as_of`` of the newest
  ``mixpanel-profiles`` item, the time the listing's first page was requested (each listing
  replaces the whole folder, and fetch refuses a folder holding anything else but hidden names
  and OS clutter, which no load reads: ``files.is_clutter``). Another file
  there (a page added by hand after the listing) is no page of the listing: no time here;
* ``mparticle/profiles/<part>``: the newest ``mparticle-profiles`` item listing the part, its
  ``file_times[<part>]`` (the first request whose answer is in the part), else its ``as_of`` (a
  fetch.json written before file_times existed: the run's start); a part no run lists (a run
  killed before recording it) takes the time in its name, ``part-<YYYYMMDDTHHMMSSZ>-NNNNN.jsonl``,
  which is the same time.

A run of ``cohortlab fetch --timezone ZONE`` records the Mixpanel project's time zone
(``"mixpanel_timezone"``): the raw events under ``mixpanel/events/`` (of any run) are read as that
zone's wall clock (``mixpanel-events`` given no ``timezone`` option; docs/loading.md#project-time-zone);
the newest run that names one wins.

Other files, and files outside a fetched folder, get no time here (the load time counts, as
before). A ``fetch.json`` that cannot be read is a :class:`LoadError` naming it and what is wrong:
falling back to the load time would date every profile wrongly without a word.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cohortlab.errors import LoadError
from cohortlab.loaders.time_zone import pop_timezone

RECORD = "fetch.json"
TOP_FOLDERS = ("mixpanel", "mparticle")
# the pages an Engage listing of `cohortlab fetch` writes in mixpanel/profiles/ (nothing else is there)
ENGAGE_PAGE_NAME = re.compile(r"engage_page_[0-9]+\.json")
_PART_STAMP = re.compile(r"^part-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-\d+\.jsonl$")


@dataclass
class CaptureTimes:
    """The capture times of one fetched folder: ``time_of(relative path)`` → ISO time or None."""

    folder: Path
    profiles: str | None = None  # the as_of of the newest mixpanel-profiles listing
    profiles_path: str | None = None  # and its folder
    parts: dict[str, str] = field(default_factory=dict)  # "mparticle/profiles/part-…" -> as_of
    mixpanel_timezone: str | None = None  # the project's time zone the newest run naming one recorded
    runs: list[Any] = field(default_factory=list, repr=False)  # the runs as recorded (fetch appends to them)

    def timezone_of(self, rel: str) -> str | None:
        """The time zone whose wall clock the raw events file ``rel`` is written in, or None."""
        return self.mixpanel_timezone if rel.startswith("mixpanel/events/") else None

    def time_of(self, rel: str) -> str | None:
        if self.profiles_path is not None and rel.startswith(self.profiles_path.rstrip("/") + "/"):
            # only the listing's own pages: a file added by hand since keeps the load time
            return self.profiles if ENGAGE_PAGE_NAME.fullmatch(rel.rpartition("/")[2]) else None
        if rel in self.parts:
            return self.parts[rel]
        parent, _, name = rel.rpartition("/")
        m = _PART_STAMP.match(name)
        if parent == "mparticle/profiles" and m:  # a part no run recorded: its name holds the time
            y, mo, d, h, mi, s = m.groups()
            try:
                return _iso(f"{y}-{mo}-{d}T{h}:{mi}:{s}Z", self.folder / RECORD, name)
            except LoadError:  # not a date after all (month 13): no time
                return None
        return None


def _iso(value: Any, record: Path | str, where: str) -> str:
    """``value`` as the ISO text ``-o as_of`` gives (naive UTC): the same time, the same fingerprint."""
    from cohortlab.errors import CohortlabError
    from cohortlab.times import parse_naive_utc

    if not isinstance(value, str):
        raise LoadError(record, f"{where}: as_of {value!r} is not a time (expected ISO-8601 text)")
    try:
        return parse_naive_utc(value, "as_of").isoformat()
    except (CohortlabError, ValueError):
        raise LoadError(record, f"{where}: as_of {value!r} is not a time (expected ISO-8601, "
                                "e.g. 2026-03-01T12:00:00Z)") from None


def parse_record(path: Path) -> CaptureTimes:
    """Read ``fetch.json`` at ``path`` (a :class:`LoadError` naming it when it is malformed)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise LoadError(path, "not UTF-8 text: the capture times of the fetched files cannot be read; "
                              "restore it or remove it (the profiles then take -o as_of or the load time)") from None
    except ValueError as e:
        raise LoadError(path, f"not valid JSON ({e}): the capture times of the fetched files cannot be read; "
                              "fix or remove it (the profiles then take -o as_of or the load time)") from None
    except RecursionError:  # JSON nested beyond Python's recursion limit: nothing fetch writes
        raise LoadError(path, "not valid JSON (nested too deeply): the capture times of the fetched files cannot "
                              "be read; fix or remove it (the profiles then take -o as_of or the load time)") from None
    runs = data.get("runs") if isinstance(data, dict) else None
    if not isinstance(runs, list):
        raise LoadError(path, 'expected an object with a "runs" list (what cohortlab fetch writes): the capture '
                              "times of the fetched files cannot be read; fix or remove it")
    out = CaptureTimes(path.parent, runs=runs)
    for r, run in enumerate(runs, 1):
        items = run.get("items", []) if isinstance(run, dict) else None
        if not isinstance(items, list):
            raise LoadError(path, f'run {r}: expected an object with an "items" list')
        if run.get("mixpanel_timezone") is not None:  # the newest run naming one wins
            try:
                out.mixpanel_timezone = pop_timezone("fetch.json", {"timezone": run["mixpanel_timezone"]})
            except ValueError as e:
                raise LoadError(path, f"run {r}: mixpanel_timezone: {e}") from None
        for i, item in enumerate(items, 1):
            if not isinstance(item, dict):
                raise LoadError(path, f"run {r}, item {i}: expected an object")
            kind = item.get("kind")
            where = f"run {r}, item {i} ({kind})"
            if kind not in ("mixpanel-profiles", "mparticle-profiles"):
                continue  # events, cohorts, members (which carry their as_of): no time needed here
            folder = item.get("path")
            if not isinstance(folder, str) or not folder:
                raise LoadError(path, f'{where}: expected a "path"')
            folder = folder.strip("/")
            if kind == "mixpanel-profiles":  # a later listing replaces the folder: the newest wins
                out.profiles_path, out.profiles = folder, _iso(item.get("as_of"), path, where)
                continue
            files, times = item.get("files", []), item.get("file_times", {})
            if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
                raise LoadError(path, f'{where}: "files" must be a list of file names')
            if not isinstance(times, dict):
                raise LoadError(path, f'{where}: "file_times" must be an object of file name -> time')
            # the run's time: a fetch.json written before file_times existed has only this one
            as_of = _iso(item["as_of"], path, where) if item.get("as_of") is not None else None
            for name in dict.fromkeys([*files, *times]):  # a later run's record of a part wins
                t = times.get(name)
                if t is None and as_of is None:
                    raise LoadError(path, f"{where}: no as_of for {name}")
                out.parts[f"{folder}/{name}"] = as_of if t is None else _iso(t, path, f"{where}, {name}")
    return out


_CACHE: dict[tuple[str, int, int, int], CaptureTimes] = {}


def record_times(record: Path) -> CaptureTimes:
    """:func:`parse_record`, read once per version of the file (a folder of a thousand pages
    reads it once)."""
    st = record.stat()
    key = (str(record.resolve()), st.st_ino, st.st_mtime_ns, st.st_size)  # fetch replaces it: a new inode
    if key not in _CACHE:
        if len(_CACHE) > 32:
            _CACHE.clear()
        _CACHE[key] = parse_record(record)
    return _CACHE[key]


def folder_record(folder: Path) -> Path | None:
    """``<folder>/fetch.json`` when ``folder`` was written by ``cohortlab fetch``."""
    f = folder / RECORD
    return f if f.is_file() else None


def _recorded(path: str | Path) -> tuple[CaptureTimes, str] | None:
    """(the record of the fetched folder holding ``path``, the file's path in it), or None. The
    fetched folder is the parent of the nearest ``mixpanel/`` or ``mparticle/`` folder above the
    file (through a symlinked folder too); it must hold ``fetch.json``."""
    path = Path(path)
    seen: set[Path] = set()
    for start in (path, path.resolve()):  # as given first: an error names the record as the user would
        for top in start.parents:
            if top.name not in TOP_FOLDERS or top.parent.resolve() in seen:
                continue
            seen.add(top.parent.resolve())
            record = folder_record(top.parent)
            if record is not None:
                return record_times(record), start.relative_to(top.parent).as_posix()
    return None


def capture_time(path: str | Path) -> str | None:
    """The time ``cohortlab fetch`` recorded for the file ``path`` (ISO, naive UTC), or None."""
    found = _recorded(path)
    return found[0].time_of(found[1]) if found else None


def recorded_timezone(path: str | Path) -> str | None:
    """The Mixpanel project's time zone ``cohortlab fetch --timezone`` recorded for the raw
    events file ``path`` (``UTC`` or a zone name), or None."""
    found = _recorded(path)
    return found[0].timezone_of(found[1]) if found else None


__all__ = ["ENGAGE_PAGE_NAME", "CaptureTimes", "capture_time", "folder_record", "parse_record", "record_times", "recorded_timezone",
           "RECORD"]
