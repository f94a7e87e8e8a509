"""Load a whole folder of exports in one call, choosing the loader kind (and options) per file.

    >>> from cohortlab import Lab
    >>> from cohortlab.loaders.folder import load_world
    >>> lab = Lab("world.duckdb")
    >>> load_world(lab, "out/world")          # a `cohortlab synth` world, or real exports

The folder is organised as ``cohortlab synth`` writes it (the layout also suits real exports)::

    mixpanel/cohorts.json                  /cohorts/list response            mixpanel-cohorts
    mixpanel/profiles/ | profiles*.json*   Engage pages / result JSONL        mixpanel-profiles
    mixpanel/events/   | events*.json*     raw event export (JSONL, gzip)     mixpanel-events
    mixpanel/members/<cohort>/<file>       one membership snapshot per file   mixpanel-members
    mixpanel/webhooks/                     cohort-sync payloads (replayed)    mixpanel-webhooks
    mparticle/profiles.jsonl | profiles/   Profile API JSON                   mparticle-profiles
    mparticle/batches/                     Events API batches                 mparticle-batches
    mparticle/*.csv | csv/                 profile snapshot CSV               mparticle-csv

Anything else (``truth.parquet``, ``manifest.json``, READMEs) is not an export and is not loaded;
every such file but what synth and fetch write at the top (:data:`OWN_FILES`) is listed in
:attr:`WorldReport.ignored` and named in its text (never left out silently).
Order: mParticle first, then Mixpanel cohorts, profiles, events, members, webhooks; members
snapshots and webhook pages in file-name order (the replay order). When DuckDB runs two threads
or more, the Mixpanel events load beside the others, through a second connection (:func:`load_parallel`,
docs/loading.md#folder-parallel).

A folder written by ``cohortlab fetch`` holds ``fetch.json``: its profile exports take the capture
times it records (:mod:`cohortlab.loaders.fetched`, docs/loading.md#fetched); one that cannot be
read is a :class:`LoadError` before anything is loaded.

A members file without an ``as_of`` inside takes it from ``manifest.json`` (a ``snapshots`` list
of ``{path, as_of, cohort}``) or from a timestamp in its file name (``2026-03-01T12-00-00Z.json``,
``20260301T120000Z.json``, ``2026-03-01.json``; an offset after the seconds is converted to UTC).
Its cohort, when the file does not name one,
is the folder name (or the manifest's ``cohort``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cohortlab.errors import SettingsError
from cohortlab.escaping import one_line
from cohortlab.loaders import LoadError, LoadReport
from cohortlab.loaders.base import memory_limit_bytes
from cohortlab.loaders.fetched import folder_record, record_times
from cohortlab.loaders.files import (hidden_words, is_bucket_verification_file, is_clutter, is_completion_marker,
                                     leads_outside, some_names)
from cohortlab.loaders.time_zone import pop_timezone

IGNORED_SUFFIXES = (".parquet", ".md", ".txt", ".yaml", ".yml", ".py", ".png", ".html")
IGNORED_NAMES = ("manifest.json", "truth.json")
# what cohortlab synth and cohortlab fetch write at the top of the folder beside the exports (read
# for hints and capture times, or the synthetic world's answers): not listed as files not loaded
OWN_FILES = IGNORED_NAMES + ("truth.parquet", "truth_verify.parquet", "fetch.json")
# files beside exports that hold none: the ignored suffixes but the data formats the layout does
# not place (a Parquet table, .txt batches elsewhere), which count as exports found
_NOT_DATA = tuple(s for s in IGNORED_SUFFIXES if s not in (".parquet", ".txt"))


@dataclass
class WorldReport:
    """What :func:`load_world` loaded: one :class:`LoadReport` per (kind, call)."""

    folder: Path
    reports: list[LoadReport] = field(default_factory=list)
    # every file under the folder that no load read (but :data:`OWN_FILES` at its top): outside
    # the places the layout reads, hidden, or a marker holding no data
    ignored: list[Path] = field(default_factory=list)
    # files in export places that are links to files outside the folder: not followed (a folder of
    # exports may come from someone else; a link to ~/.aws/credentials had its first bytes quoted
    # in an error, and a JSON one was stored whole in `rejects`)
    linked_outside: list[Path] = field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        """Every load's warnings (each names its file; docs/loading.md#warnings), in load order."""
        return [w for r in self.reports for w in r.warnings]

    def by_kind(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for r in self.reports:
            d = out.setdefault(r.kind, {"files": 0, "loaded": 0, "quarantined": 0, "skipped": 0})
            d["files"] += len(r.files)
            d["loaded"] += r.loaded
            d["quarantined"] += r.n_quarantined
            d["skipped"] += len(r.skipped)
        return out

    def __str__(self) -> str:
        return self.text()

    def text(self, warnings: bool = True) -> str:
        """A line per kind (its files, rows, quarantined and already loaded), the files not
        loaded, then each warning (``warnings=False``: without them, as ``cohortlab load folder``
        prints them on stderr)."""
        lines = [f"loaded {self.folder}:"]
        for kind, d in self.by_kind().items():
            lines.append(
                f"  {kind:<20}{d['files']:>5} file(s) {d['loaded']:>12,} rows"
                + (f"  ({d['quarantined']:,} quarantined)" if d["quarantined"] else "")
                + (f"  ({d['skipped']} already loaded)" if d["skipped"] else "")
            )
        if self.ignored or self.linked_outside:
            lines.append(self.ignored_text())
        if warnings:
            lines += [f"  warning: {one_line(w)}" for w in self.warnings]  # a file name is data: one line each
        return "\n".join(lines)

    def shown_names(self, files: list[Path]) -> list[str]:
        """``files`` named relative to the folder, an email or a phone number in a name masked."""
        from cohortlab.privacy import masked_path

        return [masked_path(p.relative_to(self.folder).as_posix() if p.is_relative_to(self.folder) else str(p))
                for p in files]

    def ignored_text(self) -> str:
        """One line naming the files not loaded (relative to the folder, the first 10 and how
        many), '' when there are none. A file name is data: an email or a phone number in it shows
        as ``<email>`` / ``<phone number>`` (``call <phone number>.txt``), as in the warnings (they were
        in clear on this line, masked on the next)."""
        lines = []
        if self.ignored:
            names = self.shown_names(self.ignored)
            lines.append(f"  not loaded: {len(names):,} file(s) outside the places a folder of exports keeps them "
                         f"(docs/loading.md#folder), {hidden_words(self.ignored)}, or holding no data: {some_names(names)}")
        if self.linked_outside:
            names = self.shown_names(self.linked_outside)
            lines.append(f"  not loaded: {len(names):,} link(s) to a file outside the folder, not followed "
                         f"(docs/loading.md#links; load such a file by its own path): {some_names(names)}")
        return "\n".join(lines)


def _is_export(p: Path, txt: bool = False) -> bool:
    """``txt``: a ``.txt`` file is an export too (mParticle's S3 output names its batch files
    ``<name>.txt``), except mParticle's bucket verification file."""
    name = p.name.lower()
    return (
        p.is_file()
        and not is_clutter(p.name)
        and p.name not in IGNORED_NAMES
        and (not name.endswith(IGNORED_SUFFIXES)
             or (txt and name.endswith(".txt") and not is_bucket_verification_file(p)))
        and not is_completion_marker(p)
    )


def _files(path: Path, txt: bool = False) -> list[Path]:
    if path.is_file():
        return [path] if _is_export(path, txt) else []
    if path.is_dir():
        return sorted(
            f for f in path.rglob("*")
            if _is_export(f, txt) and not any(is_clutter(part) for part in f.relative_to(path).parts)
        )
    return []


def _first(*candidates: Path, txt: bool = False) -> list[Path]:
    for c in candidates:
        files = _files(c, txt)
        if files:
            return files
    return []


def _glob(folder: Path, *patterns: str) -> list[Path]:
    out: list[Path] = []
    for pat in patterns:
        out += [p for p in sorted(folder.glob(pat)) if _is_export(p)]
    return out


_TS_PATTERNS = [
    # 2026-03-01T12-00-00Z, 2026-03-01T12:00:00Z, 2026-03-01_12-00, 20260301T120000Z, 2026-03-01,
    # 2026-03-01T17:30:00+05:30, 20260301T120000-0500, 2026-03-01T17-30-00+05-30: a run of digits
    # of its own (not the middle of a longer number, as an epoch or an id:
    # cohort-1234567-2026-03-01.json holds 2026-03-01); an offset after the seconds (hours up to
    # 14, minutes 00/15/30/45, so a page number -0001 is none) is honoured; a fraction is dropped
    re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})"
               r"(?:[T_ ](\d{2})[-:]?(\d{2})(?:[-:]?(\d{2})(?:\.\d+)?(Z|[+-](?:0\d|1[0-4])[:-]?(?:00|15|30|45))?)?)?(?!\d)"),
]


def as_of_from_name(name: str) -> str | None:
    """A UTC ISO timestamp read from a file name, or None. The first timestamp that is a real
    time counts (``2026-13-01`` is none); no zone means UTC, an offset is converted."""
    from datetime import datetime, timezone

    for pat in _TS_PATTERNS:
        m = pat.search(name)
        while m:
            y, mo, d, h, mi, s, zone = m.groups()
            zone = "+00:00" if zone in (None, "Z") else zone[:3] + ":" + zone[-2:]
            try:
                t = datetime.fromisoformat(f"{y}-{mo}-{d}T{h or '00'}:{mi or '00'}:{s or '00'}{zone}")
            except ValueError:  # not a date after all (month 13, hour 25): look further on
                m = pat.search(name, m.start() + 1)
                continue
            return t.astimezone(timezone.utc).isoformat()
    return None


def _manifest_snapshots(folder: Path) -> dict[Path, dict[str, Any]]:
    """``manifest.json`` entries describing members files, keyed by resolved path (best effort)."""
    mf = folder / "manifest.json"
    if not mf.exists():
        return {}
    try:
        manifest = json.loads(mf.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # nested too deeply: no manifest either
        return {}
    out: dict[Path, dict[str, Any]] = {}

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            path = node.get("path") or node.get("file")
            if isinstance(path, str) and ("as_of" in node or "cohort" in node or "cohort_name" in node):
                out[(folder / path).resolve()] = node
            for v in node.values():
                visit(v)
        elif isinstance(node, list):
            for v in node:
                visit(v)

    try:
        visit(manifest)
    except RecursionError:
        return {}
    return out


def _norm(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum())


def _cohort_from(lab, hint: str | None) -> str | None:
    """A known cohort (``mp_cohorts``) whose name matches ``hint`` ignoring case and punctuation
    (``power_users`` / ``power-users`` → ``Power Users``); else ``hint`` itself."""
    if not hint:
        return None
    for (name,) in lab.engine.query_rows("SELECT DISTINCT name FROM mp_cohorts WHERE name IS NOT NULL"):
        if _norm(name) == _norm(hint):
            return name
    return hint


def _name_hint(path: Path) -> str | None:
    """The cohort part of a file name: ``churn_risk_2026-03-01.csv`` → ``churn_risk``."""
    stem = path.name.split(".")[0]
    m = _TS_PATTERNS[0].search(stem)
    hint = (stem[: m.start()] if m else stem).strip("_- ")
    return hint or None


def _load_members_file(lab, path: Path, cohort_dir: Path | None, manifest: dict[Path, dict[str, Any]]) -> LoadReport:
    entry = manifest.get(path.resolve(), {})
    # the file (an Engage page with as_of and filter_by_cohort) knows best, and loaded as
    # `cohortlab load mixpanel-members FILE` loads it, it has that load's fingerprint: loaded both
    # ways, it is loaded once (with the manifest's options it was a second snapshot at the same time)
    try:
        return lab.load("mixpanel-members", [str(path)])
    except (LoadError, ValueError) as e:
        if "as_of" not in str(e) and "cohort" not in str(e):
            raise
    options: dict[str, Any] = {}
    as_of = entry.get("as_of") or as_of_from_name(path.name)
    if as_of:
        options["as_of"] = as_of
    hint = entry.get("cohort") or entry.get("cohort_name") or (cohort_dir.name if cohort_dir else _name_hint(path))
    cohort = _cohort_from(lab, hint)
    if cohort:
        options["cohort"] = cohort
    try:
        return lab.load("mixpanel-members", [str(path)], **options)
    except LoadError as e:
        if "as_of" in options and "as_of" in str(e):
            raise
        # the file's own as_of / cohort conflicts with ours? let the file's win for what it has
        raise


def world_hints(folder: str | os.PathLike) -> dict[str, Any]:
    """Report parameters a ``cohortlab synth`` world's ``manifest.json`` suggests: ``switch`` (the
    EIT switch to ``mparticle_id``), ``eit_timeline`` (the world's EIT steps as the settings'
    ``eit_timeline``: ``[{"since": None, "eit": "email"}, {"since": <switch>, "eit": "mparticle_id"}]``)
    and ``as_of`` (the last snapshot). Empty for other folders."""
    mf = Path(folder) / "manifest.json"
    try:
        manifest = json.loads(mf.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(manifest, dict):  # not one cohortlab synth wrote
        return {}
    hints: dict[str, Any] = {}
    params = manifest.get("parameters")
    steps = (params.get("eit") if isinstance(params, dict) else None) or []
    timeline = []
    for step in steps if isinstance(steps, list) else []:
        if not isinstance(step, dict) or not isinstance(step.get("type"), str):
            timeline = None  # not a list of steps cohortlab synth writes: no timeline
            continue
        if timeline is not None:
            timeline.append({"since": step.get("start") or None, "eit": step["type"]})
        if step.get("type") == "mparticle_id" and step.get("start") and "switch" not in hints:
            hints["switch"] = step["start"]
    if timeline:
        hints["eit_timeline"] = timeline
    if isinstance(manifest.get("as_of"), str):
        hints["as_of"] = manifest["as_of"]
    return hints


@dataclass
class _Load:
    """One load of :func:`load_world`: ``kind`` of ``files`` with ``options``; ``members``: a
    members file's (path, cohort folder, manifest), whose cohort and as_of are found when it loads."""

    kind: str
    files: list[str]
    options: dict[str, Any]
    members: tuple[Path, Path | None, dict[Path, dict[str, Any]]] | None = None

    def run(self, lab, progress: bool) -> LoadReport:
        if self.members is not None:
            return _load_members_file(lab, *self.members)
        return lab.load(self.kind, self.files, progress=progress, **self.options)


# loaded beside the folder's other exports, on a second connection: the largest load of a folder
# (5.3M raw events at 1M users), which reads no other table and no other load reads
BESIDE = "mixpanel-events"
LOAD_PARALLEL_ENV = "COHORTLAB_LOAD_PARALLEL"


def load_parallel(engine=None) -> int:
    """How many loads of a folder run at once (:func:`load_world`): ``$COHORTLAB_LOAD_PARALLEL``
    when set (1: one after the other; 2 or more: the Mixpanel events beside the rest), else 2 when
    DuckDB runs two threads or more (``engine``'s, else ``COHORTLAB_THREADS`` or the cores), 1 with
    one: a user who gives DuckDB one thread gets one core. A value that is not a whole number is a
    :class:`SettingsError`."""
    raw = os.environ.get(LOAD_PARALLEL_ENV)
    if raw:
        try:
            return max(1, int(raw))
        except ValueError:
            raise SettingsError(f"{LOAD_PARALLEL_ENV}={raw!r}: expected a whole number of loads at once "
                                "(1: one after the other)") from None
    if engine is not None:
        threads = int(engine.query_rows("SELECT current_setting('threads')")[0][0])
    else:
        from cohortlab.engines.duckdb import default_threads, env_threads

        threads = env_threads() or default_threads()
    return max(1, min(2, threads))


def _run_loads(lab, loads: list[_Load], progress: bool) -> list[LoadReport]:
    """Run ``loads`` (in the folder's order) and return their reports in that order. On a DuckDB
    database with two threads or more (:func:`load_parallel`) and files small next to the memory
    limit (:func:`_fit_beside`), the Mixpanel events load in another thread, through a second
    connection, while the others load one after the other in this one: the two share the cores,
    the memory limit and the database (each load is its own transaction, all or nothing, as it is
    alone). A load that runs out of memory beside the other loads again alone once the other has
    ended. When a load fails otherwise, the one running beside it finishes (or fails) and no other
    starts; the error of the first failed load in the folder's order is raised. Interrupted
    (Ctrl-C), the events load stops and rolls back too (docs/loading.md#folder-parallel). The
    raised exception's ``committed`` lists the reports of the loads that ended, which stay loaded."""
    from cohortlab.engines.duckdb import DuckDBEngine

    beside = [i for i, ld in enumerate(loads) if ld.kind == BESIDE]
    if (not beside or len(loads) < 2 or type(lab.engine) is not DuckDBEngine or load_parallel(lab.engine) < 2
            or not _fit_beside(lab.engine, loads, beside[0])):
        done: list[LoadReport] = []
        try:
            for ld in loads:
                done.append(ld.run(lab, progress))
        except BaseException as e:
            e.committed = done  # the loads that stay loaded (a folder is all or nothing per load)
            raise
        return done
    import threading

    from cohortlab.loaders import loader_class

    (j,) = beside  # one events load: all the folder's event files, in one transaction
    side = loads[j]
    reports: dict[int, LoadReport] = {}
    errors: dict[int, BaseException] = {}
    # the events ran out of memory beside the others (again, alone, below); the others are done
    ran_out, others_done = threading.Event(), threading.Event()
    lab.clear_simulations()  # as Lab.load does first (the events' report drops the stored ones below)
    engine = lab.engine.cursor()

    def events() -> None:
        try:
            reports[j] = loader_class(side.kind)(**side.options).load(engine, side.files, progress=progress)
        except BaseException as e:  # noqa: BLE001 - raised in the caller's thread below
            if _out_of_memory(e) and not others_done.is_set():
                ran_out.set()
            else:
                errors[j] = e

    def run(ld: _Load) -> LoadReport:
        try:
            return ld.run(lab, progress)
        except Exception as e:
            if not (_out_of_memory(e) and thread.is_alive()):
                raise
        thread.join()  # out of memory beside the events: again once they have ended, alone
        return ld.run(lab, progress)

    thread = threading.Thread(target=events, name="cohortlab-load-events", daemon=True)
    thread.start()
    try:
        for i, ld in enumerate(loads):
            if i == j:
                continue
            if j in errors:  # the events failed: no other load starts
                break
            try:
                reports[i] = run(ld)
            except Exception as e:  # noqa: BLE001 - the events load finishes first
                errors[i] = e
                break
        others_done.set()
        thread.join()
    except BaseException as e:  # Ctrl-C: the events load stops too, rolled back
        engine.interrupt()
        thread.join()
        e.committed = [reports[i] for i in sorted(reports)]
        raise
    finally:
        engine.close()
    if j in reports:
        lab._data_changed(reports[j])  # here: its simulations are this connection's to drop
    elif ran_out.is_set() and not errors:
        try:
            reports[j] = side.run(lab, progress)
        except Exception as e:  # noqa: BLE001 - raised below, as any other
            errors[j] = e
    if errors:
        first = errors[min(errors)]
        first.committed = [reports[i] for i in sorted(reports)]  # they stay loaded
        raise first
    return [reports[i] for i in range(len(loads))]


def _out_of_memory(e: BaseException) -> bool:
    """``e`` (a :class:`LoadError`, or what DuckDB raised) comes from DuckDB running out of its
    memory limit (:func:`cohortlab.errors.is_out_of_memory`, through the errors that wrap it)."""
    from cohortlab.errors import is_out_of_memory

    while e is not None:
        if is_out_of_memory(e):
            return True
        e = e.__cause__
    return False


def _fit_beside(engine, loads: list[_Load], j: int) -> bool:
    """Whether the files of the loads but ``loads[j]`` are small beside the memory limit: each,
    decompressed, at most half of it (a gzip file counts as the larger of its trailer's size and 4
    times its own). A load of larger files needs the memory that the events load would take: at
    10M users, both at once ran out of the default 1.5 GB, where one after the other never does."""
    limit = memory_limit_bytes(engine)
    if limit is None:
        return False
    for ld in loads[:j] + loads[j + 1:]:
        for f in ld.files:
            if _decompressed_size(Path(f)) > limit / 2:
                return False
    return True


def _decompressed_size(path: Path) -> int:
    """The size of ``path``'s content (see :func:`_fit_beside`)."""
    from cohortlab.loaders.files import gzip_isize, is_gzip

    try:
        size = path.stat().st_size
    except OSError:  # the load names the file and what is wrong with it
        return 0
    return max(gzip_isize(path), 4 * size) if is_gzip(path) else size


def load_world(lab, folder: str | os.PathLike, *, progress: bool = False, timezone: str | None = None,
               links_within: str | os.PathLike | None = None) -> WorldReport:
    """Load every export under ``folder`` into ``lab`` with the right kind and options.

    ``timezone``: the Mixpanel project's time zone, for a project created before 2023 whose raw
    export writes times as that zone's wall clock (docs/loading.md#project-time-zone): the
    folder's raw events are loaded with ``-o timezone=ZONE``, over what a ``fetch.json`` records.
    A name that is no time zone is a :class:`~cohortlab.errors.SettingsError` (a ``ValueError``)
    before anything is loaded.

    A link to a file outside ``folder`` is not read (docs/loading.md#links); ``links_within``: the
    folder links may point into instead (fetch's view of the ``mixpanel/`` part of its own folder).

    Raises ``FileNotFoundError`` when the folder has neither ``mixpanel/`` nor ``mparticle/``
    exports, :class:`LoadError` (naming the file) when a file does not load, and
    :class:`LoadError` naming the folder when it holds files but none where this layout reads
    exports (nothing would be loaded: a Data Pipelines bucket, a Parquet table).
    """
    folder = Path(folder)
    try:
        zone = pop_timezone("folder", {"timezone": timezone})  # as `load ... folder -o timezone=` names it
    except ValueError as e:  # an argument of the call, as fetch's is a FetchError
        raise SettingsError(str(e)) from None
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    record = folder_record(folder)
    if record is not None:  # a fetch.json that cannot be read: one error before anything is loaded
        record_times(record)
    mp, mpa = folder / "mixpanel", folder / "mparticle"
    report = WorldReport(folder=folder)
    loads: list[_Load] = []  # in the folder's order (module docstring)

    root = Path(links_within or folder).resolve()

    def inside(files: list[Path]) -> list[Path]:
        """``files`` but the links to a file outside the folder (listed in the report, not read)."""
        outside = [f for f in files if leads_outside(f, root)]
        report.linked_outside += [f for f in outside if f not in report.linked_outside]
        return [f for f in files if f not in outside]

    def load(kind: str, files: list[Path], **options: Any) -> None:
        files = inside(files)
        if files:
            loads.append(_Load(kind, [str(f) for f in files], options))

    # ---- mParticle: the profiles that exist (and their identities/attributes)
    claimed: set[Path] = set()
    mpa_profiles = _first(mpa / "profiles") + _glob(mpa, "profiles*.json", "profiles*.jsonl", "profiles*.json.gz",
                                                     "profiles*.jsonl.gz")
    mpa_batches = _first(mpa / "batches", txt=True) + _glob(mpa, "batches*.json", "batches*.jsonl", "batches*.json.gz",
                                                   "batches*.jsonl.gz")
    mpa_csv = _first(mpa / "csv") + _glob(mpa, "*.csv", "*.csv.gz")
    load("mparticle-profiles", mpa_profiles)
    load("mparticle-csv", mpa_csv)
    load("mparticle-batches", mpa_batches)
    claimed.update(mpa_profiles + mpa_batches + mpa_csv)

    # ---- Mixpanel
    cohorts = _glob(mp, "cohorts.json", "cohorts*.json", "cohorts.json.gz")
    cohorts = list(dict.fromkeys(cohorts))
    profiles = _first(mp / "profiles") + _glob(mp, "profiles*.json", "profiles*.jsonl", "profiles*.json.gz",
                                               "profiles*.jsonl.gz", "engage*.json", "engage*.jsonl")
    events = _first(mp / "events") + _glob(mp, "events*.json", "events*.jsonl", "events*.json.gz",
                                           "events*.jsonl.gz", "export*.jsonl", "export*.jsonl.gz")
    load("mixpanel-cohorts", cohorts)
    load("mixpanel-profiles", profiles)
    load("mixpanel-events", events, **({"timezone": zone} if zone else {}))
    claimed.update(cohorts + profiles + events)

    manifest = _manifest_snapshots(folder)
    members_root = mp / "members"
    if members_root.is_dir():
        for f in inside(_files(members_root)):
            cohort_dir = f.parent if f.parent != members_root else None
            # its cohort and as_of are looked up when it loads: after the cohort list
            loads.append(_Load("mixpanel-members", [str(f)], {}, members=(f, cohort_dir, manifest)))
            claimed.add(f)
    webhooks = _first(mp / "webhooks")
    load("mixpanel-webhooks", webhooks)
    claimed.update(webhooks)

    if not (mp.is_dir() or mpa.is_dir()):
        raise FileNotFoundError(f"{folder}: expected mixpanel/ and/or mparticle/ export folders")
    report.reports = _run_loads(lab, loads, progress)
    claimed_resolved = {p.resolve() for p in claimed}
    # every other file is said (WorldReport.__str__, report --data), never skipped silently
    report.linked_outside.sort()
    report.ignored = sorted(p for p in folder.rglob("*") if p.is_file() and p.resolve() not in claimed_resolved
                            and p not in report.linked_outside
                            and not (p.parent == folder and p.name in OWN_FILES))
    if not report.reports:
        # files, none where this layout reads exports (a Data Pipelines bucket, a Parquet table):
        # an empty database would read as a project without users
        found = sorted(p for top in (mp, mpa) if top.is_dir() for p in top.rglob("*")
                       if p.is_file() and not is_completion_marker(p) and not is_bucket_verification_file(p)
                       and p.name not in IGNORED_NAMES and not p.name.lower().endswith(_NOT_DATA)
                       and not any(is_clutter(part) for part in p.relative_to(folder).parts))
        if report.linked_outside:  # the files are where the layout reads them, but links out of the folder
            names = report.shown_names(report.linked_outside)
            raise LoadError(folder, f"nothing to load: its {len(names):,} export file(s) are links to files outside "
                                    f"the folder, which are not followed (docs/loading.md#links): "
                                    f"{some_names(names)}; copy the files into the folder, or load each by its own path")
        if found:
            shown = ", ".join(str(p.relative_to(folder)) for p in found[:3]) + (", ..." if len(found) > 3 else "")
            raise LoadError(folder, f"nothing to load: none of its {len(found)} file(s) is where a folder of "
                                    f"exports keeps them (mixpanel/events/, mparticle/profiles/, ...: "
                                    f"docs/loading.md#folder): {shown}; load them with cohortlab load KIND "
                                    f"PATH (mixpanel-pipeline-events, mparticle-parquet, ...)")
    return report
