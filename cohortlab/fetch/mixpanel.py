"""Mixpanel exports for ``cohortlab fetch`` (request/response contracts: docs/fetching.md).

* **Raw event export** — ``GET https://{data|data-eu|data-in}.mixpanel.com/api/2.0/export`` with
  ``from_date``/``to_date`` (inclusive, ``YYYY-MM-DD``), optional ``event`` (JSON array) and
  ``where``, ``project_id``; ``Accept-Encoding: gzip``. The range is fetched in chunks of
  ``chunk_days`` days, one file per chunk (``mixpanel/events/<from>_<to>.jsonl[.gz]``, the gzip
  body kept as is). A chunk whose file exists is not fetched again (``refresh`` to force).
  A truncated or corrupt gzip stream, or a plain body whose last line is cut, is retried; so is
  an HTTP 200 whose first line is not an event (an error object such as ``{"error": …,
  "status": "error"}``), or whose last line is such an error object after events: it is never
  saved as a fetched chunk. Events are the lines that are JSON objects with a non-empty string
  ``event`` and an object ``properties`` (:func:`is_event`; blank lines are not counted; other
  lines are counted apart, ``not_events``: the loader quarantines them); a body without a line
  that is not blank is an empty chunk. A chunk fetched again that comes back empty keeps the file fetched
  before (with a warning).
* **Engage** — ``POST https://{mixpanel|eu.mixpanel|in.mixpanel}.com/api/query/engage`` (form
  body), paged with ``session_id`` + ``page`` while a page has ``page_size`` results. When the
  session expires (HTTP 400 naming the session) or the results shift under us (a later page
  answers with another ``session_id`` or ``page``), the listing restarts from page 0 (at most
  ``max_restarts`` times): pages of two sessions are never mixed in one file.
  Profiles go to ``mixpanel/profiles/`` (one page per file, the whole folder swapped in
  atomically). A folder holding anything but ``engage_page_*.json`` files is refused before
  any request (:func:`check_profiles_folder`): the listing would remove those files. Hidden
  names and OS clutter (``.DS_Store``, ``Thumbs.db``: ``cohortlab.loaders.files.is_clutter``,
  which the loader leaves out too) are not looked at, and are kept in the new folder.
  Pages are written as they arrive (memory holds one page, whatever the number of profiles),
  each exactly as Engage sent it: numbers keep their spelling (``1.0e18``), escapes stay
  escapes (``cohortlab.fetch.jsontext``).
* **Cohort members** — Engage with ``filter_by_cohort={"id": N}``; one snapshot per fetch,
  ``mixpanel/members/<cohort>-<id>/<as_of>.jsonl``: one page per line, each page carrying ``as_of``
  (UTC time the first page was requested) and ``filter_by_cohort`` ``{"id", "name"}``: the
  layout the ``mixpanel-members`` loader reads.
* **Cohorts list** — ``POST …/api/query/cohorts/list`` → ``mixpanel/cohorts.json``.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import httpx

from cohortlab.fetch.credentials import MixpanelCredentials
from cohortlab.fetch.files import atomic_dir, atomic_file, state_dir, write_json
from cohortlab.fetch.http import (FetchError, HourlyBudget, HttpClient, RetryableError, RetryPolicy, duration_text,
                                  short_text)
from cohortlab.fetch.jsontext import build_object, escape_surrogates, object_members
from cohortlab.loaders.fetched import ENGAGE_PAGE_NAME
from cohortlab.loaders.files import is_clutter

QUERIES_PER_HOUR = 60  # Mixpanel's documented limit, for the raw export and for the Query API each
EXPORT_QUERIES_PER_SECOND = 3  # and the raw export's per second (a quiet day's chunk answers in milliseconds)

HOSTS = {  # region -> (export host, query host)
    "us": ("https://data.mixpanel.com", "https://mixpanel.com"),
    "eu": ("https://data-eu.mixpanel.com", "https://eu.mixpanel.com"),
    "in": ("https://data-in.mixpanel.com", "https://in.mixpanel.com"),
}
# a 429 without Retry-After (Mixpanel documents none): another client used up the hour's queries;
# retried after 1, 2, 4, 8 then 15 minutes (the default 5 retries: half an hour in all), each wait said first
LIMIT_BACKOFF = 60.0
AUTH_HINT = ("Check the service account user name and secret, MIXPANEL_PROJECT_ID, the region "
             "(--region / MIXPANEL_REGION), and that the service account has a role on the project")
# the run authenticates with the legacy project secret (no service account): what to check then
LEGACY_AUTH_HINT = ("Check the project's API secret (MIXPANEL_API_SECRET, mixpanel.api_secret: Project Settings), "
                    "the region (--region / MIXPANEL_REGION), and that the project still accepts its API secret "
                    "(Mixpanel recommends a service account)")


DEFAULT_TIMEOUT = 120.0  # seconds one read (or connect) may wait; the export streams, so it is per read


class _Restart(Exception):
    """The Engage listing must start again from page 0."""


@dataclass
class EventsChunk:
    from_date: date
    to_date: date
    file: Path | None
    events: int  # lines that are events (:func:`is_event`)
    skipped: bool = False  # already fetched by an earlier run
    not_events: int = 0  # lines that are not blank and not an event (the loader quarantines them)
    kept: bool = False  # came back empty: the file an earlier run fetched is kept (``file``, ``events``)


@dataclass
class EngageListing:
    """One Engage listing (its pages are written as they arrive, not held here)."""

    page_results: list[int]  # the number of results of each page
    restarts: int = 0
    as_of: datetime | None = None

    @property
    def pages(self) -> int:
        return len(self.page_results)

    @property
    def results(self) -> int:
        return sum(self.page_results)


@dataclass
class MembersSnapshot:
    cohort_id: str
    name: str
    file: Path
    members: int
    as_of: datetime
    restarts: int = 0


def parse_day(value: Any, what: str) -> date:
    """A UTC day (``cohortlab.times.parse_day``); a bad value is a :class:`FetchError`."""
    from cohortlab.errors import CohortlabError
    from cohortlab.times import parse_day as _parse_day

    try:
        return _parse_day(value, what)
    except (CohortlabError, ValueError) as e:
        raise FetchError(str(e)) from None


def date_chunks(start: date, end: date, days: int) -> list[tuple[date, date]]:
    if end < start:
        raise FetchError(f"the date range is empty: {start} is after {end}")
    if days < 1:
        raise FetchError("chunk_days must be at least 1")
    out = []
    d = start
    while d <= end:
        e = min(d + timedelta(days=days - 1), end)
        out.append((d, e))
        d = e + timedelta(days=1)
    return out


def slug(name: str) -> str:
    """A cohort name (or id) as a folder name (docs/fetching.md): ``cohort`` for a name that holds
    an email or a phone number, which the folder would keep, and every summary print, in clear."""
    from cohortlab.privacy import looks_personal

    if looks_personal(name):
        return "cohort"
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")
    return s[:100] or "cohort"


_ID_DIGITS = re.compile(r"-?[0-9]+")  # a cohort id written as a string (ASCII digits only)


def cohort_id_text(value: Any) -> str | None:
    """A cohorts list entry's id as the text that names the cohort (``1000``), as the cohorts
    loader reads it: an integer, a whole number written as a float (``4000.0``) or a string of
    digits with an optional leading minus (``"-6"``; ``"0042"`` kept as written, as the loader
    keeps it); None for anything else (``true``, ``null``, ``"abc"``, ``1.5``): no cohort id."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53:
        return str(int(value))
    if isinstance(value, str) and _ID_DIGITS.fullmatch(value):
        return value
    return None


def same_cohort_id(given: str, listed: str) -> bool:
    """Whether the id ``given`` (a ``--cohort``) and the listed id ``listed`` (:func:`cohort_id_text`)
    are the same integer (``42`` and ``"0042"``, ``-06`` and ``-6``): the same Mixpanel cohort,
    asked for by that integer."""
    return bool(_ID_DIGITS.fullmatch(given) and _ID_DIGITS.fullmatch(listed)) and int(given) == int(listed)


def cohort_name_text(value: Any) -> str | None:
    """A cohorts list entry's name as the cohorts loader keeps it: a string as is, another JSON
    value as its JSON text; None for a missing, null or empty name (the loader quarantines the
    entry as ``missing_name``)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _chunk_state(path: Path) -> dict[str, list[str]]:
    """The chunks an earlier run found empty or still open (``.fetch/mixpanel_chunks.json``);
    unreadable or of another shape = none (those chunks are fetched again, which is safe)."""
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(state, dict):
        return {}
    return {k: [x for x in v if isinstance(x, str)] for k in ("empty", "open")
            if isinstance(v := state.get(k), list)}


def filter_tag(events: list[str], where: str | None) -> str:
    """The part of a chunk's file name that says which events it holds: empty for every event,
    else ``_filter-<hash>`` of the ``event`` list and the ``where`` expression. A chunk fetched
    with a filter is then never taken for the whole chunk by a later run without it (or with
    another filter): each is its own file, and loading several is safe (the loader drops the
    events it already has)."""
    if not events and not where:
        return ""
    key = json.dumps({"event": sorted(events), "where": where or ""}, sort_keys=True)
    return "_filter-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]


class MixpanelClient:
    def __init__(self, creds: MixpanelCredentials, *, policy: RetryPolicy | None = None,
                 max_restarts: int = 3, max_pages: int = 100_000, timeout: float = DEFAULT_TIMEOUT) -> None:
        creds.check()
        export_host, query_host = HOSTS[creds.region]
        self.export_url = (creds.export_url or export_host).rstrip("/")
        self.query_url = (creds.query_url or query_host).rstrip("/")
        self.project_id = creds.project_id
        self.workspace_id = creds.workspace_id
        self.max_restarts = max_restarts
        self.max_pages = max_pages
        self.http = HttpClient("mixpanel", auth=creds.basic_auth(), secrets=creds.secrets(),
                               policy=policy, timeout=timeout, limit_backoff=LIMIT_BACKOFF,
                               auth_hint=AUTH_HINT if creds.username and creds.secret else LEGACY_AUTH_HINT)
        # Mixpanel documents 60 queries an hour for the raw export and for the Query API
        # (Engage, cohorts/list), and 3 a second for the raw export: requests wait rather than
        # run into HTTP 429. On the retry policy's clock, which its waits move
        clock = self.http.policy.clock
        self.export_budget = HourlyBudget(QUERIES_PER_HOUR, "/api/2.0/export", clock=clock,
                                          per_second=EXPORT_QUERIES_PER_SECOND)
        self.query_budget = HourlyBudget(QUERIES_PER_HOUR, "/api/query", clock=clock)

    def close(self) -> None:
        self.http.close()

    def remember_budgets(self, folder: Path) -> None:
        """Keep the hourly budgets' request times in ``folder`` (the output's ``.fetch/``), so that
        a run started within the hour of another one counts that run's requests too."""
        self.export_budget.remember(folder / "mixpanel_export_requests.json")
        self.query_budget.remember(folder / "mixpanel_query_requests.json")

    def _project(self) -> dict[str, str]:
        return {"project_id": self.project_id} if self.project_id else {}

    def _query_project(self) -> dict[str, str]:
        """The Query API's project parameters: ``project_id`` and, for a project with Data Views,
        the global data view's ``workspace_id`` (MIXPANEL_WORKSPACE_ID), which Mixpanel asks the
        Query API's callers to send; the raw export takes ``project_id`` only."""
        return {**self._project(), **({"workspace_id": self.workspace_id} if self.workspace_id else {})}

    # ------------------------------------------------------------------ raw events
    def export_events(self, out: Path, from_date: Any, to_date: Any, *, events: Iterable[str] = (),
                      where: str | None = None, chunk_days: int = 7, refresh: bool = False,
                      progress=None, on_chunk: Callable[[list[EventsChunk]], None] | None = None
                      ) -> list[EventsChunk]:
        start, end = parse_day(from_date, "from_date"), parse_day(to_date, "to_date")
        folder = out / "mixpanel" / "events"
        state_file = state_dir(out) / "mixpanel_chunks.json"
        state = _chunk_state(state_file)
        empty, open_ = set(state.get("empty", [])), set(state.get("open", []))
        # a chunk reaching yesterday (UTC) or later may still grow (late events): fetched again
        # by the next run (the loader drops the events it already has)
        recent = datetime.now(timezone.utc).date() - timedelta(days=1)
        events = list(events)
        tag = filter_tag(events, where)
        chunks: list[EventsChunk] = []
        for a, b in date_chunks(start, end, chunk_days):
            stem = f"{a.isoformat()}_{b.isoformat()}{tag}"
            existing = [p for p in (folder / f"{stem}.jsonl.gz", folder / f"{stem}.jsonl") if p.exists()]
            # a file of blank lines only (an earlier version saved one; the loader refuses it as an
            # empty file) is no fetched chunk: fetched again, and removed if it comes back empty
            fetched = [p for p in existing if not _blank_file(p)]
            if not refresh and stem not in open_ and (fetched or stem in empty):
                chunks.append(EventsChunk(a, b, fetched[0] if fetched else None, 0, skipped=True))
                if on_chunk is not None:
                    on_chunk(chunks)
                continue
            before = {p: _count_file(p) for p in fetched}  # the events each file fetched before holds
            had = max(before.values(), default=0)
            chunk = self._export_chunk(out, folder, stem, a, b, events, where)
            if chunk.file is None and had:
                # the chunk came back empty where an earlier run got events: exported events do not
                # disappear (a deletion upstream, a filter gone wrong, a server's bad answer)
                keep = max(before, key=lambda p: before[p])
                self.http.notify(f"mixpanel: warning: chunk {stem} came back empty; the {had:,} event(s) "
                                 f"fetched before are kept ({keep.name})")
                chunk = EventsChunk(a, b, keep, had, kept=True)
            elif chunk.file is not None and chunk.events < had:
                self.http.notify(f"mixpanel: warning: chunk {stem} came back with {chunk.events:,} event(s), "
                                 f"{had:,} before: the new answer replaces the file (the events already "
                                 "loaded into a database stay there)")
            for p in existing:
                if p != chunk.file:
                    p.unlink()
            (empty.add if chunk.events == 0 else empty.discard)(stem)
            (open_.add if b >= recent else open_.discard)(stem)
            write_json(out, state_file, {"empty": sorted(empty), "open": sorted(open_)})
            chunks.append(chunk)
            if on_chunk is not None:  # the chunks so far, as each is in place (a run may stop at the next)
                on_chunk(chunks)
            if progress is not None:
                progress.update(1)
        return chunks

    def _export_chunk(self, out: Path, folder: Path, stem: str, a: date, b: date,
                      events: Iterable[str], where: str | None) -> EventsChunk:
        params: dict[str, str] = {"from_date": a.isoformat(), "to_date": b.isoformat(), **self._project()}
        events = list(events)
        if events:
            params["event"] = json.dumps(events)
        if where:
            params["where"] = where

        def consume(resp: httpx.Response) -> tuple[Path | None, int]:
            gz = resp.headers.get("Content-Encoding", "").lower() == "gzip"
            target = folder / f"{stem}.jsonl{'.gz' if gz else ''}"
            counter = _LineCounter(gz)
            with atomic_file(out, target) as f:
                for chunk in resp.iter_raw():
                    counter.feed(chunk)
                    f.write(chunk)
                if counter.terminated_early():  # not retried: the same range would stop again
                    raise FetchError(f"Mixpanel stopped the export of {a.isoformat()}..{b.isoformat()} before "
                                     "its end (the body ends with 'terminated early'): fetch again with a smaller "
                                     "--chunk-days (the chunk is not kept)")
                counter.finish()  # a truncated stream: RetryableError, the file is not kept
                # an error body, or events then an error object: retried, not kept
                _check_events(counter.first, self.http.mask, chunk_name)
                _check_last(counter, self.http.mask, chunk_name)
                if counter.lines == 0:  # no line that is not blank: an empty chunk, no file
                    raise _Empty()
            return target, counter.events, counter.not_events

        chunk_name = f"{a.isoformat()}..{b.isoformat()}"
        try:
            _, (target, n, not_events) = self.http.request(
                "GET", f"{self.export_url}/api/2.0/export", params=params,
                headers={"Accept-Encoding": "gzip"}, consume=consume, budget=self.export_budget,
            )
        except _Empty:
            return EventsChunk(a, b, None, 0)
        return EventsChunk(a, b, target, n, not_events=not_events)

    # ------------------------------------------------------------------ engage
    def _post_engage(self, form: dict[str, str]) -> tuple[bytes, dict[str, Any]]:
        """One Engage page: (the body as received, the body parsed)."""
        resp, body = self.http.request(
            "POST", f"{self.query_url}/api/query/engage", params=self._query_project(), data=form, ok=(200, 400),
            budget=self.query_budget, consume=self.http.json_body,
        )
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if resp.status_code == 400:
            err = str(data.get("error", "")) if isinstance(data, dict) else body.decode("utf-8", "replace")
            err = short_text(err, self.http.mask)  # masked before it is cut
            if "session" in err.lower() and form.get("session_id"):
                raise _Restart(f"session expired: {err}")
            raise self.http.status_error(400, "/api/query/engage", err)
        # the status first: an error answer (200, {"status": "error", "error": "..."}) has no
        # results list, and its message is what the user needs
        if isinstance(data, dict) and data.get("status", "ok") != "ok":
            raise self.http.error(f"Engage answered status {data.get('status')!r}: "
                                  f"{short_text(str(data.get('error', '')), self.http.mask)}")
        if not isinstance(data, dict) or not isinstance(data.get("results"), list):
            raise self.http.error("unexpected Engage answer: expected a JSON object with a results list")
        return body, data

    def engage(self, form: dict[str, str], start: Callable[[datetime], None],
               page: Callable[[int, bytes, dict[str, Any]], None], progress=None) -> EngageListing:
        """All pages of one Engage query (``form``: where, output_properties, filter_by_cohort, ...),
        from one session; restarts from page 0 when the session expires or the pages shift.
        Each page is handed over as it arrives, ``page(number, body as received, body parsed)``,
        and not kept: ``start(as_of)`` is called before page 0 of each attempt (a restart must
        drop the pages handed over before it). ``progress``: a tqdm bar counting the results
        (reset when the listing restarts)."""
        restarts = 0

        def counted(i: int, raw: bytes, data: dict[str, Any]) -> None:
            page(i, raw, data)
            if progress is not None:
                progress.update(len(data["results"]))

        while True:
            as_of = datetime.now(timezone.utc).replace(microsecond=0)
            start(as_of)
            if progress is not None:
                progress.reset()
            try:
                counts = self._engage_once(form, counted)
            except _Restart as why:
                restarts += 1
                if restarts > self.max_restarts:
                    raise self.http.error(f"Engage paging restarted {self.max_restarts} times and still "
                                          f"failed ({why}); try again later") from None
                continue
            return EngageListing(counts, restarts, as_of)

    def _engage_once(self, form: dict[str, str], on_page: Callable[[int, bytes, dict[str, Any]], None]) -> list[int]:
        counts: list[int] = []
        session_id: str | None = None
        page = 0
        while True:
            req = dict(form)
            if page > 0:
                req.update(session_id=str(session_id), page=str(page))
            raw, data = self._post_engage(req)
            if page == 0:
                session_id = data.get("session_id")
                self._say_how_long(data)
            elif data.get("session_id") != session_id or _int(data.get("page"), page) != page:
                raise _Restart(f"page {page} answered session {data.get('session_id')!r} page {data.get('page')!r}")
            n = len(data["results"])
            page_size = _int(data.get("page_size"), 1000)
            on_page(page, raw, data)
            counts.append(n)
            del raw, data  # one page in memory at a time
            if n == 0 or n < page_size:
                return counts
            if session_id is None:
                raise self.http.error("Engage answered a full page without a session_id: cannot page")
            page += 1
            if page >= self.max_pages:
                raise self.http.error(f"more than {self.max_pages} Engage pages: stopping")

    def _say_how_long(self, page0: dict[str, Any]) -> None:
        """When page 0 says the listing needs more pages than Mixpanel answers in an hour, say how
        long it will take, now (only when ``total`` is clearly the listing's size: larger than the
        page; Mixpanel's own docs disagree on what it counts)."""
        n, total = len(page0["results"]), _int(page0.get("total"), 0)
        size = _int(page0.get("page_size"), 1000) or 1000
        pages = -(-total // size)
        per_hour = self.query_budget.per_hour
        if n and total > n and pages > per_hour:
            self.http.notify(
                f"mixpanel: Engage lists {total:,} profiles in {pages:,} pages; at {per_hour} queries an hour "
                f"(Mixpanel's limit) this takes about {duration_text(pages * HourlyBudget.WINDOW / per_hour)}. For a project this "
                "size a Data Pipelines export is faster (docs/fetching.md#mixpanel-data-pipelines)")

    def profiles(self, out: Path, *, where: str | None = None,
                 output_properties: Iterable[str] | None = None, progress=None) -> tuple[EngageListing, Path]:
        """Every profile, one page per file (``engage_page_NNNNN.json``), each file the body exactly
        as Engage sent it (numbers and escapes as written). The pages are written as they arrive
        into a temporary folder that replaces the whole ``mixpanel/profiles/`` once the listing is
        whole; the old folder's hidden names and OS clutter (``.DS_Store``: :func:`is_clutter`) are
        moved into the new one. A folder holding other files is refused first
        (:func:`check_profiles_folder`)."""
        form: dict[str, str] = {}
        if where:
            form["where"] = where
        if output_properties:
            form["output_properties"] = json.dumps(list(output_properties))
        target = out / "mixpanel" / "profiles"
        check_profiles_folder(target)  # before any request
        with atomic_dir(out, target, keep=is_clutter) as work:
            def start(_as_of: datetime) -> None:
                for old in work.iterdir():
                    old.unlink()

            def page(i: int, raw: bytes, _data: dict[str, Any]) -> None:
                (work / f"engage_page_{i:05d}.json").write_bytes(raw if raw.endswith(b"\n") else raw + b"\n")

            listing = self.engage(form, start, page, progress)
        return listing, target

    # ------------------------------------------------------------------ cohorts
    def cohorts(self, out: Path) -> list[dict[str, Any]]:
        """The cohorts list, written to ``mixpanel/cohorts.json`` as Mixpanel sent it (numbers and
        escapes as written, as the Engage pages are)."""
        data, body = self._cohorts_answer()
        with atomic_file(out, out / "mixpanel" / "cohorts.json", "wb") as f:
            f.write(body if body.endswith(b"\n") else body + b"\n")
        return data

    def list_cohorts(self) -> list[dict[str, Any]]:
        """The cohorts list as Mixpanel answers it now (nothing written)."""
        return self._cohorts_answer()[0]

    def _cohorts_answer(self) -> tuple[list[dict[str, Any]], bytes]:
        resp, body = self.http.request("POST", f"{self.query_url}/api/query/cohorts/list", params=self._query_project(),
                                       budget=self.query_budget, consume=self.http.json_body)
        try:
            data = json.loads(body)
        except ValueError:
            raise self.http.error("cohorts/list answered something that is not JSON") from None
        if not isinstance(data, list):
            raise self.http.error("unexpected cohorts/list answer: expected a JSON array")
        return data, body

    def still_listed(self, cohort_id: str) -> bool:
        """Whether the cohorts list, asked for again now, still has the cohort ``cohort_id``."""
        return any(isinstance(c, dict) and cohort_id_text(c.get("id")) == str(cohort_id) for c in self.list_cohorts())

    def members(self, out: Path, cohort_id: str, name: str, progress=None) -> MembersSnapshot:
        """A members snapshot: one line per Engage page, each the page as Engage sent it (numbers
        and escapes as written) with ``as_of`` and ``filter_by_cohort`` added first. Lines are
        written as the pages arrive."""
        text = str(cohort_id)
        # asked for by its integer; the pages' filter_by_cohort names the id as the cohorts list
        # wrote it (the cohorts loader keeps "0042" as that text: 42 would name no listed cohort)
        fbc = {"id": int(text)} if _ID_DIGITS.fullmatch(text) else {"id": cohort_id}
        written = fbc if str(fbc["id"]) == text else {"id": text}
        # the cohort id makes the folder unique: names differing only in characters outside
        # [A-Za-z0-9._-] (日本のユーザー and Пользователи, A/B and A B) reduce to the same slug
        folder = out / "mixpanel" / "members" / f"{slug(name)}-{slug(str(cohort_id))}"
        stamp: list[str] = []
        with atomic_file(out, lambda: folder / f"{stamp[0]}.jsonl", "w") as f:
            def start(as_of: datetime) -> None:
                f.seek(0)
                f.truncate()
                stamp[:] = [as_of.strftime("%Y-%m-%dT%H-%M-%SZ"), as_of.strftime("%Y-%m-%dT%H:%M:%SZ")]

            def page(_i: int, raw: bytes, _data: dict[str, Any]) -> None:
                ours = [("as_of", json.dumps(stamp[1])),
                        ("filter_by_cohort", escape_surrogates(json.dumps({**written, "name": name}, ensure_ascii=False)))]
                try:  # a UTF-8 byte order mark is no part of the page (json.loads skips it too)
                    members = object_members(raw.decode("utf-8-sig"))
                except ValueError:  # also UnicodeDecodeError: bytes json.loads let through
                    raise self.http.error(f"an Engage page of the members of cohort {cohort_id} is not "
                                          "a JSON object in UTF-8") from None
                theirs = {key for key, _, _ in members}  # a key Engage sent itself wins, as it always did
                f.write(build_object([kv for kv in ours if kv[0] not in theirs], members) + "\n")

            listing = self.engage({"filter_by_cohort": json.dumps(fbc)}, start, page, progress)
        as_of = listing.as_of or datetime.now(timezone.utc)
        return MembersSnapshot(str(cohort_id), name, folder / f"{stamp[0]}.jsonl", listing.results, as_of,
                               listing.restarts)


def check_profiles_folder(folder: Path) -> None:
    """A :class:`FetchError` when ``folder`` (``mixpanel/profiles/``) holds anything but the
    ``engage_page_*.json`` files a listing writes (a page fetched by hand, a subfolder, a link, a
    fifo): the next listing replaces the whole folder, which would remove them. A hidden name or
    OS clutter (:func:`~cohortlab.loaders.files.is_clutter`: ``.DS_Store``, ``._NAME``,
    ``Thumbs.db``, ``desktop.ini``), which the loader never reads, is no such entry: the listing
    keeps it (:meth:`MixpanelClient.profiles`). Refused rather than
    removed with a warning: a hand-kept file is never deleted behind the user's back, and the error
    comes before any request (the listing may run for hours). The names are masked as any name
    quoted in a message (an email in a file name)."""
    from cohortlab.escaping import one_line
    from cohortlab.privacy import masked_text

    try:
        entries = sorted(folder.iterdir()) if folder.is_dir() else []
    except OSError as e:
        raise FetchError(f"mixpanel: {folder}: cannot read the profiles folder: {e.strerror or e}") from None
    others = [e.name for e in entries if not is_clutter(e.name)
              and not (ENGAGE_PAGE_NAME.fullmatch(e.name) and e.is_file() and not e.is_symlink())]
    if others:
        shown = ", ".join(masked_text(one_line(n)) for n in others[:5]) + (
            f" and {len(others) - 5} more" if len(others) > 5 else "")
        raise FetchError(
            f"mixpanel: {folder} holds {len(others)} entr{'y' if len(others) == 1 else 'ies'} that "
            f"{'is' if len(others) == 1 else 'are'} not an Engage page (engage_page_*.json): {shown}. The Engage "
            "listing replaces the whole folder and would remove them: move them out (keep pages fetched by "
            "hand in another folder and load them from there), or fetch with --no-profiles")


def is_event(obj: Any) -> bool:
    """Whether a parsed export line is an event as the events loader takes one at first sight: a
    JSON object with a non-empty string ``event`` and an object ``properties`` (``{}``,
    ``{"event": null}``, ``[1]`` or ``"text"`` is quarantined: not_an_object, missing_event,
    bad_event, bad_properties). Its other checks (the time, the distinct_id) are not repeated."""
    return (isinstance(obj, dict) and isinstance(obj.get("event"), str) and obj["event"] != ""
            and isinstance(obj.get("properties"), dict))


class _Empty(Exception):
    """An export chunk with no events (no file is written)."""


class _LineCounter:
    """Reads the lines of a (gzip) body as it streams: counts the events (:func:`is_event`) and
    the lines that are not blank but no event (the loader quarantines them);
    blank lines are no line of the export. Checks at the end that the gzip stream is complete and
    the last line is whole. Keeps the first line that is not blank (up to 1 MB) for
    :func:`_check_events` and the last one for :func:`_check_last`."""

    FIRST_MAX = 1024 * 1024
    LINE_MAX = 64 * 1024 * 1024  # a longer line is not parsed (no event is that long): not an event

    def __init__(self, gz: bool) -> None:
        self._d = zlib.decompressobj(zlib.MAX_WBITS | 16) if gz else None
        self.events = 0  # lines that are events (:func:`is_event`)
        self.not_events = 0  # lines that are not blank and not an event
        self._partial = b""  # the line under way (no line break yet)
        self._giant = False  # the line under way is longer than LINE_MAX: dropped
        self.first = b""  # the start of the body's first line that is not blank
        self._first_done = False
        self.last = b""  # the body's last line that is not blank (b"" when longer than FIRST_MAX)
        self.end = b""  # the body's last 64 bytes

    @property
    def lines(self) -> int:
        """The lines that are not blank."""
        return self.events + self.not_events

    def terminated_early(self) -> bool:
        """Whether the body ends with Mixpanel's ``terminated early``: it stopped the export
        before the end of the range (the lines before are a part of it). The words come on a
        line of their own, or appended to the record cut off (no line break between); a line
        ending with them is no JSON record (a record ends with ``}``)."""
        last = self.end.rstrip().rsplit(b"\n", 1)[-1]
        return last.strip().lower().endswith(b"terminated early")

    def _line(self, line: bytes) -> None:
        """One whole line (without its line break)."""
        text = line.strip()
        if not text:
            return
        if not self._first_done:
            self.first, self._first_done = text[:self.FIRST_MAX + 1], True
        self.last = text if len(text) <= self.FIRST_MAX else b""
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError):  # also UnicodeDecodeError
            obj = None
        if is_event(obj):
            self.events += 1
        else:
            self.not_events += 1

    def feed(self, chunk: bytes) -> None:
        if self._d is not None:
            data, chunk = chunk, b""
            try:
                while data:
                    chunk += self._d.decompress(data)
                    data = b""
                    if self._d.eof and self._d.unused_data:  # the next member of a multi-member gzip
                        data = self._d.unused_data
                        self._d = zlib.decompressobj(zlib.MAX_WBITS | 16)
            except zlib.error as e:
                raise RetryableError(f"corrupt gzip stream: {e}") from None
        if not chunk:
            return
        self.end = (self.end + chunk)[-64:]
        parts = chunk.split(b"\n")
        if len(parts) == 1:
            self._grow(chunk)
            return
        head = parts[0]
        if self._giant:
            self.not_events += 1
            self._giant = False
        else:
            self._line(self._partial + head)
        for line in parts[1:-1]:
            self._line(line)
        self._partial = b""
        self._grow(parts[-1])

    def _grow(self, data: bytes) -> None:
        if self._giant:
            return
        self._partial += data
        if len(self._partial) > self.LINE_MAX:
            self._partial, self._giant = b"", True
            self._first_done = True  # a giant first line: not checked

    def finish(self) -> None:
        if self._d is not None and not self._d.eof:
            raise RetryableError("truncated gzip stream (the body ended before the end of the gzip data)")
        if self._giant:  # a giant last line: not checked
            self.not_events += 1
            return
        tail = self._partial.strip()
        if not tail:
            return
        try:
            json.loads(tail)
        except (ValueError, RecursionError):
            raise RetryableError("the export body ends in the middle of a line (truncated)") from None
        self._line(tail)  # a complete last line without a line break
        self._partial = b""


BLANK_MAX = 64 * 1024 * 1024  # _blank_file: more blank bytes than this (decompressed): not blank


def _file_blocks(path: Path, size: int = 1024 * 1024) -> Iterable[bytes]:
    """The bytes of a chunk file fetched before, in blocks of at most about ``size``: a gzip file
    decompressed whole (every member of a multi-member gzip), a plain file as it is. A file that
    cannot be read, or a corrupt gzip stream, ends the blocks early (OSError / zlib.error)."""
    with open(path, "rb") as f:
        block = f.read(size)
        if block[:2] != b"\x1f\x8b":
            while block:
                yield block
                block = f.read(size)
            return
        d = zlib.decompressobj(zlib.MAX_WBITS | 16)
        while block:
            data = block
            while data:
                got = d.decompress(data, size)  # at most ``size`` at a time: a gzip bomb stays small
                data = d.unconsumed_tail
                if d.eof:  # the member is whole: what follows (unused_data) is the next member's
                    data = d.unused_data
                    if data:
                        d = zlib.decompressobj(zlib.MAX_WBITS | 16)
                if got:
                    yield got
            block = f.read(size)


def _blank_file(path: Path) -> bool:
    """Whether the chunk file ``path`` holds nothing but blank lines, read whole (every gzip
    member); more than :data:`BLANK_MAX` bytes, unreadable or corrupt: not blank (kept)."""
    seen = 0
    try:
        for block in _file_blocks(path):
            seen += len(block)
            if block.strip() or seen > BLANK_MAX:
                return False
    except (OSError, zlib.error):
        return False
    return True


def _count_file(path: Path) -> int:
    """The events of a chunk file fetched before (read as :func:`_blank_file` reads it); those
    up to an unreadable or corrupt part when there is one."""
    counter = _LineCounter(False)
    try:
        for block in _file_blocks(path):
            counter.feed(block)
    except (OSError, zlib.error):
        pass
    try:
        counter.finish()  # a last line without a line break counts; a cut one is no event
    except RetryableError:
        pass
    return counter.events


def _check_last(counter: _LineCounter, masker, chunk: str) -> None:
    """The export's last line that is not blank may be an error object (Mixpanel failing midway:
    ``{"error": "...", "status": "error"}`` after some events): the body is retried like a
    truncated one, never saved as the chunk."""
    if counter.events < 1 or not counter.last:  # no event before it: the first line's check
        return
    try:
        obj = json.loads(counter.last)
    except (ValueError, RecursionError):
        return
    if isinstance(obj, dict) and "event" not in obj and (obj.get("error") or obj.get("status") == "error"):
        raise RetryableError(f"the export of chunk {chunk} ended with an error instead of its last events "
                             f"(after {counter.events:,} event{'' if counter.events == 1 else 's'}): "
                             f"{short_text(str(obj.get('error') or obj.get('status')), masker)}")


def _check_events(first_line: bytes, masker, chunk: str = "") -> None:
    """The export's first line must be an event (a JSON object with an ``event``). Mixpanel may
    answer HTTP 200 with an error object instead (``{"error": "...", "status": "error"}``): that
    body is not kept as a fetched chunk but retried like a 5xx."""
    text = first_line.strip()
    if not text or len(first_line) > _LineCounter.FIRST_MAX:
        return
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    if isinstance(obj, dict) and "event" in obj:
        return
    if isinstance(obj, dict) and obj.get("error"):
        what = f"an error instead of events: {short_text(str(obj['error']), masker)}"
    else:
        what = f"something that is not JSONL events: {short_text(text.decode('utf-8', 'replace'), masker, 100)}"
    raise RetryableError(f"the export{f' of chunk {chunk}' if chunk else ''} answered HTTP 200 with {what}")


def _int(v: Any, default: int) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return default
