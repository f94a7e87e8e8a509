"""``cohortlab fetch``: download the Mixpanel and mParticle exports into a folder in the layout
``cohortlab.loaders.folder.load_world`` (and ``cohortlab report --data``) reads, then load them
when a lab is given.

    >>> from cohortlab import Lab
    >>> lab = Lab("project.duckdb")
    >>> summary = lab.fetch("exports/", from_date="2026-01-01", to_date="2026-03-01",
    ...                     cohorts=["Power Users"])
    >>> print(summary)

Modules: ``http`` (retries, pacing, masking), ``credentials`` (environment / config file),
``files`` (atomic writes), ``mixpanel`` (raw export, Engage, cohorts, members), ``mparticle``
(Profile API). How to get each export by hand, and the permissions needed: docs/fetching.md.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

from cohortlab.escaping import one_line, terminal_text
from cohortlab.fetch.credentials import Credentials, load_credentials
from cohortlab.fetch.files import run_lock, state_dir, write_json
from cohortlab.fetch.http import AuthError, FetchError, HttpStatusError, RetryPolicy, Stats
from cohortlab.loaders.time_zone import pop_timezone
from cohortlab.privacy import looks_personal, masked_text

SOURCES = ("mixpanel", "mparticle")


@dataclass
class FetchSummary:
    """What one fetch did; ``str()`` is the printed summary (no personal data, no secrets)."""

    out: Path
    lines: list[str] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Stats] = field(default_factory=dict)
    loads: list[Any] = field(default_factory=list)  # WorldReport / LoadReport of each load
    # what the run had to leave out and went on without (a cohort deleted during the run): one
    # dict each, {"kind", "cohort", "cohort_id", "reason"}; the run is then not complete
    skipped: list[dict[str, Any]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether the run fetched everything it was asked for (nothing skipped)."""
        return not self.skipped

    def add(self, key: str, value: Any, line: str) -> None:
        self.counts[key] = value
        self.lines.append(line)

    def __str__(self) -> str:
        out = [f"fetched into {self.out}:"] + [f"  {line}" for line in self.lines]
        for service, st in self.stats.items():
            retries = ", ".join(f"{k}: {v}" for k, v in sorted(st.retries.items()))
            out.append(f"  {service} requests: {st.requests}, retries: {st.n_retries}"
                       + (f" ({retries})" if retries else ""))
        out += [str(r) for r in self.loads]
        # cohort names and ids come from the server's cohorts list: no control character of
        # theirs reaches the terminal (docs/reports.md#escaping), nor an email or phone number in
        # a name ("Leads of dana@…")
        return terminal_text(masked_text("\n".join(out)))


def shown_name(name: str) -> str:
    """A cohort's name as the summary, the ``--json`` counts and skipped items, and the progress
    bar show it: each email and phone number in it masked (:func:`~cohortlab.privacy.masked_text`),
    and a name that is still personal as a whole (a national phone number such as
    ``07700 900123``, for which :func:`~cohortlab.fetch.mixpanel.slug` names no folder either)
    ``<phone number>``."""
    masked = masked_text(name)
    return "<phone number>" if looks_personal(masked) else masked


def members_key(name: str, cohort_id: Any) -> str:
    """The ``counts`` key of a cohort's members: ``members:NAME``; ``members:<email> (id 7)`` for a
    name that is masked (:func:`shown_name`), whose id keeps two such cohorts apart."""
    shown = shown_name(name)
    return f"members:{name}" if shown == name else f"members:{shown} (id {one_line(str(cohort_id))})"


# the options of one side only (the command line's spelling): given for a run that does not
# fetch that side, they would be ignored silently
_SIDE_OPTIONS = {
    "from_date": ("mixpanel", "--from"), "to_date": ("mixpanel", "--to"), "events": ("mixpanel", "--event"),
    "where": ("mixpanel", "--where"), "cohorts": ("mixpanel", "--cohort"), "all_cohorts": ("mixpanel", "--all-cohorts"),
    "refresh": ("mixpanel", "--refresh"), "mpids": ("mparticle", "--mpids"),
    "retry_missing": ("mparticle", "--retry-missing"), "timezone": ("mixpanel", "--timezone"),
    "chunk_days": ("mixpanel", "--chunk-days"), "profiles": ("mixpanel", "--no-profiles"),
}


def _refuse_other_side(sources: tuple[str, ...], **given: bool) -> None:
    """A FetchError naming the options given for a side this run does not fetch (``--cohort``
    with ``--source mparticle``): they would do nothing, and the run would not be the one asked for."""
    idle = [name for name, on in given.items() if on and _SIDE_OPTIONS[name][0] not in sources]
    if idle:
        sides = sorted({_SIDE_OPTIONS[name][0] for name in idle})
        names = ", ".join(f"{name} ({_SIDE_OPTIONS[name][1]})" for name in idle)
        raise FetchError(f"{names}: for the {' and '.join(sides)} side, which this run does not fetch "
                         f"(sources: {', '.join(sources)}); add it to the sources or leave them out")


def fetch(
    out: str | os.PathLike,
    *,
    lab=None,
    sources: Iterable[str] = SOURCES,
    from_date: Any = None,
    to_date: Any = None,
    events: Iterable[str] = (),
    where: str | None = None,
    chunk_days: int = 7,
    profiles: bool = True,
    cohorts: Iterable[str] = (),
    all_cohorts: bool = False,
    mpids: Iterable[int] | None = None,
    concurrency: int = 4,
    rate: float | None = 15.0,
    part_size: int = 1000,
    retry_missing: bool = False,
    refresh: bool = False,
    timezone: str | None = None,
    config: str | os.PathLike | None = None,
    credentials: Credentials | None = None,
    policy: RetryPolicy | None = None,
    timeout: float | None = None,
    progress: bool | None = None,
    load: bool = True,
) -> FetchSummary:
    """Fetch into ``out``; with ``lab``, load what was fetched (``load=False`` to skip).

    Mixpanel: raw events when ``from_date``/``to_date`` are given; Engage profiles unless
    ``profiles=False``; the cohorts list always (it names the cohorts); one members snapshot per
    cohort in ``cohorts`` (ids or names) or every cohort with ``all_cohorts``.
    mParticle: one Profile API call per MPID in ``mpids``, or else per MPID the Mixpanel side
    refers to (read from ``lab`` after loading, or from the fetched Mixpanel files).
    ``timeout``: seconds one read from a server may wait (then the request is retried like a
    dropped connection); None: 120 s for Mixpanel, 60 s for mParticle.
    ``progress``: None = a progress bar only when stderr is a terminal.
    ``timezone``: the Mixpanel project's time zone (a project created before 2023 exports times
    as its wall clock), recorded in ``fetch.json``: the folder's raw events load as that zone's
    times (docs/loading.md#project-time-zone).

    A cohort deleted during the run (its members listing refused, the cohorts list asked again
    without it) is skipped and the run goes on: the summary's ``skipped`` names it and its
    ``complete`` is False. An exception raised once the run started carries what the run did
    before it as ``fetch_summary`` (a :class:`FetchSummary`)."""
    from cohortlab.fetch.mixpanel import date_chunks, parse_day

    sources = tuple(sources)
    unknown = set(sources) - set(SOURCES)
    if unknown or not sources:
        raise FetchError(f"sources must be among {', '.join(SOURCES)}, got {sorted(unknown) or 'none'}")
    events, cohorts = tuple(events), tuple(cohorts)
    _refuse_other_side(sources, from_date=from_date is not None, to_date=to_date is not None, events=bool(events),
                       where=where is not None, cohorts=bool(cohorts), all_cohorts=all_cohorts, refresh=refresh,
                       mpids=mpids is not None, retry_missing=retry_missing, timezone=timezone is not None,
                       chunk_days=chunk_days != 7, profiles=not profiles)  # given: not the default
    try:
        zone = pop_timezone("fetch", {"timezone": timezone})
    except ValueError as e:
        raise FetchError(str(e)) from None
    n_chunks = 0
    if "mixpanel" in sources:  # the days are checked before any folder or request
        if (from_date is None) != (to_date is None):
            raise FetchError("give both from_date and to_date for the event export (or neither)")
        if from_date is not None:
            n_chunks = len(date_chunks(parse_day(from_date, "from_date"), parse_day(to_date, "to_date"), chunk_days))
    creds = credentials or load_credentials(config)
    # every side's credentials, before any folder or request (the Mixpanel side may take hours; a run
    # without them made its folder all the same), every missing one in one line (one group a run
    # took three runs to name them all)
    missing = [problem for side in sources for problem in getattr(creds, side).problems()]
    if missing:
        raise AuthError("; ".join(missing))
    for side in sources:
        getattr(creds, side).check()  # what is not a credential (a region that is none)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        state_dir(out)  # a folder that exists but is not writable fails here, before any request
    except OSError as e:
        raise FetchError(f"{out}: cannot create the output folder: {e.strerror or e}") from None
    with run_lock(out) as removed:  # one run per folder; what a killed run left is removed
        earlier = _earlier_runs(out)  # a malformed fetch.json: an error before any request
        run = _Run(out, creds, policy, timeout, sys.stderr.isatty() if progress is None else progress, earlier)
        if zone is not None:  # the project's: every later load of the folder's raw events reads it
            run.manifest["mixpanel_timezone"] = zone
        if "mparticle" in sources:
            _refuse_other_workspace(run)
        if removed:
            run.summary.add("leftovers_removed", removed,
                            f"removed {removed} temporary file(s) an interrupted run left in .fetch/tmp/")
        # fetch.json is written as each item is in place (also when the run stops on an error):
        # the loads below, and any later one, read the capture times from it
        try:
            if "mparticle" in sources and "mixpanel" in sources:
                # its token first, one cheap request: a wrong mParticle secret was found only after
                # the Mixpanel side's hours (at 60 Engage queries an hour), which a re-run repeated
                from cohortlab.fetch.mparticle import MParticleClient

                run.mparticle = MParticleClient(run.creds.mparticle, rate=rate, **run.client_options())
                run.summary.stats["mparticle"] = run.mparticle.http.stats
                run.mparticle.authenticate()
            if "mixpanel" in sources:
                _fetch_mixpanel(run, from_date, to_date, n_chunks, events=events, where=where,
                                chunk_days=chunk_days, refresh=refresh, profiles=profiles,
                                cohorts=[str(c) for c in cohorts], all_cohorts=all_cohorts)
            # the folder is loaded when it holds something (a --source mparticle run into a new folder
            # has nothing yet: its MPIDs come from the lab, its profiles are loaded below)
            if lab is not None and load and any((out / d).is_dir() for d in SOURCES):
                run.summary.loads.append(_load(lab, out, run.show))
            if "mparticle" in sources:
                _fetch_mparticle(run, lab if load else None, mpids, lab_without_load=lab is not None and not load,
                                 concurrency=concurrency, rate=rate, part_size=part_size,
                                 retry_missing=retry_missing)
            run.manifest["complete"] = run.summary.complete
        except BaseException as e:
            # what the run did before the error, for a caller that reports it (--json)
            e.fetch_summary = run.summary  # type: ignore[attr-defined]
            raise
        finally:
            if run.mparticle is not None:
                run.mparticle.close()
            if run.manifest["items"] or run.manifest["complete"]:
                run.save()
        return run.summary


@dataclass
class _Run:
    """One fetch under way: its folder, credentials and request options, and what it has done so
    far (the printed summary and the manifest written at the end)."""

    out: Path
    creds: Credentials
    policy: RetryPolicy | None
    timeout: float | None
    show: bool  # progress bars
    earlier: list[Any] = field(default_factory=list)  # the runs fetch.json already recorded
    summary: FetchSummary = field(init=False)
    manifest: dict[str, Any] = field(init=False)
    mparticle: Any = None  # the mParticle client, when made (and its token asked) before the Mixpanel side

    def __post_init__(self) -> None:
        self.summary = FetchSummary(self.out)
        self.manifest = {"fetched_at": _now(), "complete": False, "items": []}

    def client_options(self) -> dict[str, Any]:
        return {"policy": self.policy, **({"timeout": self.timeout} if self.timeout else {})}

    def item(self, **entry: Any) -> dict[str, Any]:
        """Record what was fetched, in fetch.json at once (the files are in place)."""
        self.manifest["items"].append(entry)
        self.save()
        return entry

    def save(self) -> None:
        _record(self.out, self.earlier, self.manifest)


def _fetch_mixpanel(run: _Run, from_date: Any, to_date: Any, n_chunks: int, *, events: Iterable[str],
                    where: str | None, chunk_days: int, refresh: bool, profiles: bool, cohorts: list[str],
                    all_cohorts: bool) -> None:
    """The Mixpanel side: the cohorts list, the raw events of ``from_date``..``to_date`` (when
    given), the Engage profiles (``profiles``) and the members of the cohorts asked for."""
    from cohortlab.fetch.mixpanel import MixpanelClient, check_profiles_folder

    out, summary = run.out, run.summary
    if profiles:  # a profiles folder the listing would wipe: refused before the run's first request
        check_profiles_folder(out / "mixpanel" / "profiles")
    mp = MixpanelClient(run.creds.mixpanel, **run.client_options())
    mp.remember_budgets(state_dir(out))  # the folder is ours (run_lock): earlier runs' requests count
    summary.stats["mixpanel"] = mp.http.stats
    try:
        listed = mp.cohorts(out)
        summary.add("cohorts", len(listed), f"mixpanel cohorts list: {len(listed)} cohorts -> mixpanel/cohorts.json")
        run.item(kind="mixpanel-cohorts", path="mixpanel/cohorts.json", as_of=_now())
        # a --cohort the list does not have (a typo) or names ambiguously is an error now, before
        # the event chunks and the Engage listing, which take hours at 60 requests an hour
        picked = _pick_cohorts(listed, cohorts, all_cohorts)
        unusable = _unusable_cohorts(listed)
        if unusable and all_cohorts:
            for cid, why in unusable:
                mp.http.notify(masked_text(f"mixpanel: warning: the cohorts list entry with id {_entry_text(cid)} "
                                           f"is skipped: {why}"))
            summary.add("cohorts_unusable", len(unusable),
                        f"{len(unusable)} cohorts list entr{'y' if len(unusable) == 1 else 'ies'} skipped by "
                        "--all-cohorts: " + "; ".join(f"id {_entry_text(cid)}: {why}" for cid, why in unusable))
        if from_date is not None:
            item: dict[str, Any] = {}  # this run's record of its chunks, in fetch.json

            def on_chunk(so_far: list[Any]) -> None:
                """Record the chunks in place at once (a run stopped at a later chunk keeps the record)."""
                got = [c for c in so_far if not c.skipped and not c.kept]
                kept = [c for c in so_far if c.kept]
                if not item:
                    run.manifest["items"].append(item)
                item.update(kind="mixpanel-events", path="mixpanel/events", from_date=str(from_date),
                            to_date=str(to_date), as_of=_now(), events=sum(c.events for c in got),
                            lines_not_events=sum(c.not_events for c in got),
                            files=[c.file.relative_to(out).as_posix() for c in got if c.file],
                            empty_chunks=[f"{c.from_date}_{c.to_date}" for c in got if not c.file],
                            already_fetched=len(so_far) - len(got) - len(kept))
                if kept:  # came back empty: the earlier files are kept (not fetched by this run)
                    item["kept_after_empty_answer"] = [c.file.relative_to(out).as_posix() for c in kept]
                run.save()
                summary.counts["events"] = item["events"]  # so far: a run that stops says what it got

            with _bar(run.show, n_chunks, "Mixpanel events", "chunk") as bar:
                chunks = mp.export_events(out, from_date, to_date, events=events, where=where,
                                          chunk_days=chunk_days, refresh=refresh, progress=bar, on_chunk=on_chunk)
            got = [c for c in chunks if not c.skipped and not c.kept]
            kept = [c for c in chunks if c.kept]
            n = sum(c.events for c in got)
            skipped = len(chunks) - len(got) - len(kept)
            summary.add("events", n,
                        f"mixpanel events {from_date}..{to_date}: {n:,} events in "
                        f"{sum(1 for c in got if c.file)} file(s)"
                        + (f", {skipped} chunk(s) already fetched" if skipped else "")
                        + (f", {sum(1 for c in got if not c.file)} empty chunk(s)" if any(not c.file for c in got) else ""))
            not_events = sum(c.not_events for c in got)
            if not_events:
                summary.add("lines_not_events", not_events,
                            f"{not_events:,} line{' is not an event' if not_events == 1 else 's are not events'}: "
                            f"the loader will quarantine {'it' if not_events == 1 else 'them'}")
            if kept:
                summary.add("chunks_kept", len(kept),
                            f"{len(kept)} chunk(s) came back empty; the events fetched before are kept: "
                            + ", ".join(f"{c.file.name} ({c.events:,} events)" for c in kept))
        if profiles:
            with _bar(run.show, None, "Mixpanel profiles", " profiles") as bar:
                listing, _ = mp.profiles(out, progress=bar)
            summary.add("profiles", listing.results,
                        f"mixpanel profiles: {listing.results:,} in {listing.pages} page(s) -> mixpanel/profiles/"
                        + (f" (paging restarted {listing.restarts}x)" if listing.restarts else ""))
            # as_of: the time the listing's first page was requested (as members snapshots are
            # dated); completed_at: when its last page was in (docs/fetching.md#capture-times)
            run.item(kind="mixpanel-profiles", path="mixpanel/profiles", as_of=_iso(listing.as_of),
                     completed_at=_now(), profiles=listing.results, pages=listing.pages)
        for cid, name in picked:
            try:
                with _bar(run.show, None, f"members of {one_line(shown_name(name))}", " members") as bar:
                    snap = mp.members(out, cid, name, progress=bar)
            except HttpStatusError as e:
                # a cohort deleted since the cohorts list: Mixpanel refuses its members listing
                # (400 or 404; undocumented). Only a cohort that the list, asked again, no longer
                # has is skipped: any other refusal stops the run as before
                if e.status not in (400, 404, 410) or mp.still_listed(cid):
                    raise
                _skip_deleted_cohort(run, cid, name, asked=not all_cohorts, answer=str(e), notify=mp.http.notify)
                continue
            rel = snap.file.relative_to(out).as_posix()
            summary.add(members_key(name, cid), snap.members,
                        f"members of {shown_name(name)!r} (id {one_line(cid)}): {snap.members:,} as of {_iso(snap.as_of)} -> {rel}"
                        + (f" (paging restarted {snap.restarts}x)" if snap.restarts else ""))
            run.item(kind="mixpanel-members", path=rel, cohort=name, cohort_id=cid, as_of=_iso(snap.as_of))
    finally:
        mp.close()


def _skip_deleted_cohort(run: _Run, cid: str, name: str, *, asked: bool, answer: str,
                         notify: Any) -> None:
    """Record a cohort deleted since the cohorts list (its members listing refused, the list asked
    again without it): a line on stderr now (the run may go on for hours), a line of the summary,
    an item of fetch.json; the run goes on and is not complete. ``asked``: named with --cohort
    (a later run naming it stops at the cohorts list), rather than found by listing."""
    answer = answer.removeprefix("mixpanel: ")
    why = ("deleted during the run: the cohorts list, asked again, no longer has it "
           f"(the members listing answered {answer})")
    line = (f"members of {shown_name(name)!r} (id {one_line(cid)}): skipped, {why}"
            + ("; it was asked for by --cohort: drop it from the next run's options" if asked else ""))
    notify(masked_text(f"mixpanel: warning: {line}"))
    run.summary.skipped.append({"kind": "cohort-deleted", "cohort": name, "cohort_id": cid, "reason": why})
    run.summary.add("cohorts_skipped", len(run.summary.skipped), line)
    run.item(kind="mixpanel-members-skipped", cohort=name, cohort_id=cid, reason=why, as_of=_now())


def _fetch_mparticle(run: _Run, lab, mpids: Iterable[int] | None, *, lab_without_load: bool, concurrency: int,
                     rate: float | None, part_size: int, retry_missing: bool) -> None:
    """The mParticle side: one Profile API call per MPID of ``mpids``, or else per MPID the
    Mixpanel side refers to (read from ``lab``, which the Mixpanel side was loaded into, or from
    the fetched Mixpanel files); the profiles fetched are loaded into ``lab`` when given."""
    from cohortlab.fetch.mparticle import MParticleClient, referenced_mpids

    out, summary = run.out, run.summary
    if mpids is None:
        if lab_without_load:
            raise FetchError("mparticle: with load=False give the MPIDs to fetch (mpids=...)")
        mpids = referenced_mpids(lab.engine) if lab is not None else _mpids_from_files(out)
    mpids = list(mpids)
    mpa = run.mparticle or MParticleClient(run.creds.mparticle, rate=rate, **run.client_options())
    summary.stats["mparticle"] = mpa.http.stats
    item: dict[str, Any] = {}  # this run's record of its part files, in fetch.json
    fetched = [0]  # the profiles in this run's parts so far

    def on_part(part: Path, as_of: datetime, started: datetime, profiles: int) -> None:
        """A part is in place: recorded at once (also when the run then stops on an error) with
        the time of the first request whose answer it holds; ``as_of`` of the item: the run's
        start, as fetch.json had it before file_times."""
        if not item:
            item.update(kind="mparticle-profiles", path="mparticle/profiles", as_of=_iso(started), files=[],
                        file_times={}, workspace=mpa.workspace())
            run.manifest["items"].append(item)
        item["files"].append(part.name)
        item["file_times"][part.name] = _iso(as_of)
        run.save()
        fetched[0] += profiles
        summary.counts["mparticle_profiles"] = fetched[0]  # so far: a run that stops says what it got

    try:
        res = mpa.fetch_profiles(out, mpids, concurrency=concurrency, part_size=part_size,
                                 retry_missing=retry_missing, progress=run.show, on_part=on_part)
    finally:
        mpa.close()
    summary.add("mparticle_profiles", res.fetched,
                f"mparticle profiles: {res.requested:,} MPIDs referenced, {res.fetched:,} fetched, "
                f"{res.missing:,} not found (404), {res.skipped - res.known_missing:,} already fetched"
                # not "already fetched": an earlier run found no such profile, and they stay
                # unasked until --retry-missing (after a run with a wrong workspace id, if the
                # Profile API answers it with 404s, that is every MPID)
                + (f", {res.known_missing:,} not found by an earlier run, not asked again (--retry-missing asks)"
                   if res.known_missing else "")
                + (f", {res.mismatched} answered another or an inexact mpid (kept as mpid_returned)"
                   if res.mismatched else "")
                + (f"; {res.unscoped_missing:,} of those asked had been found missing by an earlier version, "
                   "which did not record the workspace: asked again" if res.unscoped_missing else ""))
    summary.counts["mparticle_missing"] = res.missing
    summary.counts["mparticle_known_missing"] = res.known_missing
    if lab is not None and res.files:
        from cohortlab.loaders import LoadError

        try:
            summary.loads.append(lab.load("mparticle-profiles", [str(p) for p in res.files], progress=run.show))
        except (LoadError, ValueError) as e:
            raise FetchError(f"the fetched mParticle profiles did not load: {e}") from e


def _refuse_other_workspace(run: _Run) -> None:
    """A FetchError, before any Profile API request, when ``mparticle/profiles/`` holds part files
    that an earlier run fetched from another workspace (fetch.json records the workspace of each
    run's parts): this run would skip their MPIDs as fetched, and the folder would be loaded as
    one workspace holding both. Parts recorded without a workspace (earlier versions) or removed
    since are not counted."""
    from cohortlab.fetch.mparticle import workspace_of

    workspace = workspace_of(run.creds.mparticle)
    folder = run.out / "mparticle" / "profiles"
    for r in reversed(run.earlier):
        for i in (r.get("items") or []) if isinstance(r, dict) else []:
            ws = i.get("workspace") if isinstance(i, dict) and i.get("kind") == "mparticle-profiles" else None
            if not isinstance(ws, dict) or ws == workspace:
                continue
            kept = [f for f in i.get("files") or [] if isinstance(f, str) and (folder / f).is_file()]
            if kept:
                def name(w: dict[str, Any]) -> str:
                    return f"{w.get('org_id')}/{w.get('account_id')}/{w.get('workspace_id')} at {w.get('api_url')}"

                raise FetchError(
                    f"mparticle: {folder} holds {len(kept)} part file(s) fetched from workspace {name(ws)}; this "
                    f"run's credentials name workspace {name(workspace)}. A folder holds one workspace's "
                    "profiles: fetch into another --out (or remove those parts to fetch them again)")


def _unusable_cohorts(listed: list[Any]) -> list[tuple[Any, str]]:
    """The cohorts list entries no members snapshot can be fetched for: (the entry's id as sent,
    why), for an id that is no integer and for a missing name."""
    from cohortlab.fetch.mixpanel import cohort_id_text, cohort_name_text

    out: list[tuple[Any, str]] = []
    for c in listed:
        if not isinstance(c, dict):
            continue
        if cohort_id_text(c.get("id")) is None:
            out.append((c.get("id"), "its id is not an integer"))
        elif cohort_name_text(c.get("name")) is None:
            out.append((c.get("id"), "it has no name (the cohorts loader quarantines it as missing_name, and "
                                     "its members could not be loaded)"))
    return out


def _entry_text(cid: Any) -> str:
    import json

    try:
        text = json.dumps(cid, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(cid)
    return one_line(text if len(text) <= 60 else text[:60] + "…")


def _listed_ids(wanted: str, ids: Iterable[str]) -> list[str]:
    """The listed ids (:func:`~cohortlab.fetch.mixpanel.cohort_id_text`) that ``wanted`` (a
    ``--cohort``) names as an id: the one written the same (``0042`` names ``"0042"``), else
    those of the same integer (``42`` names ``"0042"``: Mixpanel's id is the integer, which the
    members request sends)."""
    from cohortlab.fetch.mixpanel import same_cohort_id

    ids = list(ids)
    return [wanted] if wanted in ids else [cid for cid in ids if same_cohort_id(wanted, cid)]


def _pick_cohorts(listed: list[dict[str, Any]], wanted: list[str], every: bool) -> list[tuple[str, str]]:
    """The (id as listed, name) of each cohort ``wanted`` names: the id written the same, else by
    the id of the same integer (:func:`_listed_ids`: the listed text is kept, so the snapshot joins
    the listed cohort) or by name; when those two name different cohorts (``42``: the integer of
    ``"0042"``, and the name of another), an ambiguity error naming both."""
    from cohortlab.fetch.mixpanel import cohort_id_text, cohort_name_text

    by_id: dict[str, str] = {}
    for c in listed:
        if isinstance(c, dict):
            cid, name = cohort_id_text(c.get("id")), cohort_name_text(c.get("name"))
            if cid is not None and name is not None:
                by_id[cid] = name
    if every:
        return sorted(by_id.items(), key=lambda kv: kv[1])
    out: list[tuple[str, str]] = []
    for w in wanted:
        ids = _listed_ids(w, by_id)
        hits = [cid for cid, name in by_id.items() if name == w]
        if ids and hits and w not in by_id and set(ids) | set(hits) != {ids[0]}:
            # not written as listed: the integer of one entry's id and the name of another
            every_id = sorted(set(ids) | set(hits))
            raise FetchError(
                f"cohort {w!r} is ambiguous: it is the integer of the listed id{'s' if len(ids) > 1 else ''} "
                + ", ".join(f"{cid} ({by_id[cid]!r})" for cid in sorted(ids))
                + f" and the name of the cohort{'s' if len(hits) > 1 else ''} with id{'s' if len(hits) > 1 else ''} "
                + ", ".join(sorted(hits)) + f": give the id as listed ({' or '.join(every_id)})")
        if len(ids) > 1:
            raise FetchError(f"cohort id {w!r} is ambiguous: the cohorts list has it as {', '.join(sorted(ids))}: "
                             "give the id as listed")
        if ids:
            if (ids[0], by_id[ids[0]]) not in out:  # the same cohort by id and by name: one snapshot
                out.append((ids[0], by_id[ids[0]]))
            continue
        if len(hits) == 1:
            if (hits[0], w) not in out:
                out.append((hits[0], w))
        elif hits:
            raise FetchError(f"cohort name {w!r} is ambiguous (ids {', '.join(hits)}): give the id")
        elif bad := [why for cid, why in _unusable_cohorts(listed)
                     if w == str(cid) or _listed_ids(w, [t for t in [cohort_id_text(cid)] if t is not None])]:
            raise FetchError(f"cohort {w!r} is in the project's cohorts list, but {bad[0]}: its members "
                             "cannot be fetched")
        else:
            raise FetchError(f"no cohort {w!r} in the project's cohorts list (by id or name)")
    return out


def _mpids_from_files(out: Path) -> list[int]:
    """The referenced MPIDs of the fetched Mixpanel files, loaded by the loaders (exactly as a
    load reads them) into a temporary database *file* in ``.fetch/tmp/``: its tables are on disk,
    not in memory (an in-memory database held the whole export's tables: about 490 MB peak
    for a 193 MB folder, 920 MB for 509 MB; on disk about 385 and 655 MB). A killed run's file is removed by the
    next run (:func:`run_lock`)."""
    import tempfile

    from cohortlab.fetch.files import tmp_dir
    from cohortlab.fetch.mparticle import referenced_mpids
    from cohortlab.lab import Lab

    mp = out / "mixpanel"
    if not mp.is_dir():
        raise FetchError(f"mparticle: no Mixpanel files under {mp} to read MPIDs from: fetch Mixpanel "
                         "first, give --db with loaded data, or --mpids FILE")
    with tempfile.TemporaryDirectory(dir=tmp_dir(out), prefix="mpids.") as d:
        with Lab(Path(d) / "mpids.duckdb") as tmp:
            _load(tmp, out, False, only_mixpanel=True)
            return referenced_mpids(tmp.engine)


def _load(lab, out: Path, progress: bool, only_mixpanel: bool = False):
    from cohortlab.loaders import LoadError
    from cohortlab.loaders.folder import load_world

    try:
        if only_mixpanel:
            import tempfile

            # load_world reads a folder: point it at one holding only the mixpanel/ part
            with tempfile.TemporaryDirectory() as d:
                os.symlink((out / "mixpanel").resolve(), Path(d) / "mixpanel")
                return load_world(lab, d, progress=progress, links_within=out)
        return load_world(lab, out, progress=progress)
    except (LoadError, ValueError, FileNotFoundError) as e:
        raise FetchError(f"the fetched files did not load: {e}") from e


MAX_RUNS = 100  # fetch.json keeps the last runs (and the newest Engage listing's, however old)


def _earlier_runs(out: Path) -> list[Any]:
    """The runs ``<out>/fetch.json`` records. One that cannot be read is a :class:`FetchError`
    naming it (before any request): it dates the fetched profiles (docs/loading.md#fetched), so
    it is not replaced behind the user's back."""
    from cohortlab.loaders import LoadError
    from cohortlab.loaders.fetched import RECORD, parse_record

    path = out / RECORD
    if not path.exists():
        return []
    try:
        return list(parse_record(path).runs)
    except LoadError as e:
        raise FetchError(f"{e}; fetch does not overwrite it: it dates the files already fetched") from None


def _record(out: Path, earlier: list[Any], manifest: dict[str, Any]) -> None:
    """``<out>/fetch.json``: what each run fetched and as of when (appended, newest last). The
    last :data:`MAX_RUNS` runs are kept, and the newest run that listed the Engage profiles
    (the time of the profiles in ``mixpanel/profiles/``) when it is older."""
    runs = [*earlier, manifest]
    kept = runs[-MAX_RUNS:]
    if not any(_lists_profiles(r) for r in kept):
        older = [r for r in runs[:-MAX_RUNS] if _lists_profiles(r)]
        kept = older[-1:] + runs[-(MAX_RUNS - len(older[-1:])):]
    write_json(out, out / "fetch.json", {"runs": kept})


def _lists_profiles(run: Any) -> bool:
    return isinstance(run, dict) and any(isinstance(i, dict) and i.get("kind") == "mixpanel-profiles"
                                         for i in run.get("items") or [])


@contextmanager
def _bar(show: bool, total: int | None, desc: str, unit: str) -> Iterator[Any]:
    """A tqdm bar on stderr while the block runs, when ``show``; else None (``total`` None: a
    count, as for Engage listings, whose size is known only at their last page)."""
    if not show:
        yield None
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=desc, unit=unit, file=sys.stderr) as bar:
        yield bar


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso(dt: datetime | None) -> str | None:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if dt else None


__all__ = ["fetch", "FetchSummary", "FetchError", "AuthError", "RetryPolicy", "load_credentials"]
