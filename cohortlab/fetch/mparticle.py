"""mParticle Profile API for ``cohortlab fetch`` (contract: docs/fetching.md).

* **Token** — ``POST https://sso.auth.mparticle.com/oauth/token`` with ``client_id``,
  ``client_secret``, ``audience: "https://api.mparticle.com"``, ``grant_type:
  "client_credentials"`` → a Bearer ``access_token`` (8 h). A 401 during the run fetches a new
  token once and repeats the request.
* **Profile by MPID** — ``GET https://api.mparticle.com/userprofile/v1/<org>/<account>/<workspace>/<mpid>
  ?fields=device_identities,user_identities,user_attributes,audience_memberships,attribution``;
  404 = no such profile (the MPID is listed in ``.fetch/mparticle_missing.json``, under the
  workspace asked: :func:`read_missing`), unless every MPID a run asks (3 or more) answers 404
  while no profile was ever fetched into the folder from that workspace (:func:`fetched_before`),
  or a 404's body is not JSON (a web server's page): the URL is wrong, an error, nothing listed.
  A run asking more than :data:`ALL_MISSING_EARLY` asks first a sample of that many MPIDs spread
  evenly across its sorted list (:func:`asking_order`), alone, and stops with that error when
  every one answered 404, without asking the rest. The answer's
  ``user_attributes`` and ``audience_memberships`` are the attribute and audience snapshot of
  the profile at fetch time (the Profile API offers no other audience listing).
* **Concurrency** — ``concurrency`` threads (default 4) share a pacer of ``rate`` requests per
  second (default 15, the documented starting limit); 429/5xx are retried honouring
  ``Retry-After``.
* **Resumable** — profiles are written in parts (``mparticle/profiles/part-<stamp>-<n>.jsonl``,
  one Profile API answer per line, each part written atomically every ``part_size`` profiles;
  ``<stamp>``: the part's capture time, the first request whose answer it holds, UTC).
  A later run skips the MPIDs already in a part or in the missing list, so an interrupted run
  continues where it stopped; ``retry_missing`` asks for the missing ones again.
* **Exact MPIDs** — the answers are parsed with Python's ``json`` (integers exact at any size) and
  each line written carries the MPID that was asked for as a JSON integer, then the answer's
  other members as sent (numbers and escapes as written: ``cohortlab.fetch.jsontext``). An
  answer whose ``mpid`` is not exactly that MPID (another integer, or a JSON float, even one
  equal in value, e.g. rounded through a double upstream) keeps its own value, as sent, in
  ``mpid_returned`` and is counted.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import httpx

from cohortlab.fetch.credentials import MParticleCredentials
from cohortlab.fetch.files import atomic_file, state_dir, write_json
from cohortlab.fetch.http import HttpClient, RetryPolicy, short_text
from cohortlab.fetch.jsontext import build_object, object_members
from cohortlab.identifiers import is_valid_mpid

API_URL = "https://api.mparticle.com"
# this many MPIDs asked or more, all answered 404, and no profile ever fetched into the folder from
# that workspace: the URL (or a workspace id) is wrong, not the MPIDs
ALL_MISSING_MIN = 3
# ... and a run asking more stops as soon as a sample of this many, spread evenly across its sorted
# MPIDs and asked first (asking_order), all answered 404, instead of asking every MPID (a million
# at 15 a second: 18 hours). Not the first ones in sorted order: the MPIDs deleted upstream
# (mParticle deletes inactive profiles) may sort first, and a right workspace would then be refused
# at every run (a stopped run records nothing as missing, so the next one asks the same). Not 3: a
# right workspace where most MPIDs are gone would be refused too often; 100 spread answers all 404
# from a workspace that has the profiles takes one where almost all of them are gone (at 15 a
# second, 7 seconds)
ALL_MISSING_EARLY = 100
WRONG_URL_HINT = ("the Profile API URL (COHORTLAB_MPARTICLE_API_URL / mparticle.api_url: the pod's host) or the "
                  "org, account or workspace id (MPARTICLE_ORG_ID, MPARTICLE_ACCOUNT_ID, MPARTICLE_WORKSPACE_ID) "
                  "is likely wrong")
AUTH_URL = "https://sso.auth.mparticle.com/oauth/token"
DEFAULT_TIMEOUT = 60.0  # seconds one read (or connect) may wait
FIELDS = "device_identities,user_identities,user_attributes,audience_memberships,attribution"
AUTH_HINT = ("Check MPARTICLE_CLIENT_ID / MPARTICLE_CLIENT_SECRET and the org/account/workspace ids; "
             "the credentials must be Platform API credentials with access to the Profile API")


def workspace_of(creds: MParticleCredentials) -> dict[str, str]:
    """The workspace ``creds`` ask the Profile API about: the API host (the pod) and the org,
    account and workspace ids; no credential. The MPIDs it answers 404 for are listed under it,
    and fetch.json records it with the part files."""
    return {"api_url": (creds.api_url or API_URL).rstrip("/"), "org_id": str(creds.org_id),
            "account_id": str(creds.account_id), "workspace_id": str(creds.workspace_id)}


class _Bearer(httpx.Auth):
    def __init__(self) -> None:
        self.token: str | None = None
        # when to ask for a new token before the next request (time.monotonic; None: never):
        # five minutes before it expires, by the answer's expires_in (8 hours, mParticle's docs)
        self.renew_at: float | None = None

    def auth_flow(self, request):
        if self.token:
            request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


def _renew_at(expires_in) -> float | None:
    """When to renew a token that expires in ``expires_in`` seconds (the token answer's field;
    None when it says nothing usable): five minutes before, or half-way for a short one."""
    try:
        seconds = float(expires_in)
    except (TypeError, ValueError):
        return None
    if not seconds > 0 or seconds == float("inf"):
        return None
    return time.monotonic() + max(seconds - 300, seconds / 2)


@dataclass
class ProfilesResult:
    requested: int = 0
    fetched: int = 0
    missing: int = 0  # 404: no such profile
    skipped: int = 0  # already fetched (or known missing) by an earlier run
    known_missing: int = 0  # of those skipped: found missing (404) by an earlier run, not asked again
    unscoped_missing: int = 0  # asked although listed missing by an earlier version, which named no workspace
    mismatched: int = 0  # answers whose mpid differs from the one asked for
    files: list[Path] = field(default_factory=list)
    fetched_at: datetime | None = None


class MParticleClient:
    def __init__(self, creds: MParticleCredentials, *, policy: RetryPolicy | None = None,
                 rate: float | None = 15.0, timeout: float = DEFAULT_TIMEOUT) -> None:
        creds.check()
        self.creds = creds
        self.api_url = (creds.api_url or API_URL).rstrip("/")
        self.auth_url = creds.auth_url or AUTH_URL
        self._auth = _Bearer()
        self._token_lock = threading.Lock()
        self.http = HttpClient("mparticle", auth=self._auth, secrets=creds.secrets(), policy=policy,
                               rate=rate, auth_hint=AUTH_HINT, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    # ------------------------------------------------------------------ token
    def authenticate(self, stale: str | None = None) -> bool:
        """Get a Bearer token. ``stale``: the token a request was refused with; when another
        thread has already replaced it, nothing is asked (threads hitting an expired token
        together renew it once)."""
        with self._token_lock:
            if stale is not None and self._auth.token is not None and self._auth.token != stale:
                return True
            body = {
                "client_id": self.creds.client_id,
                "client_secret": self.creds.client_secret.reveal() if self.creds.client_secret else "",
                "audience": "https://api.mparticle.com",
                "grant_type": "client_credentials",
            }
            # auth=None: the token request carries no (old) Bearer token
            # consume: an answer that is not JSON (a proxy's HTML page, a body cut short) is retried
            # and named by its start, as the other JSON endpoints' (it was one "without an access_token")
            _, raw = self.http.request("POST", self.auth_url, json=body, auth=None, consume=self.http.json_body)
            try:
                answer = json.loads(raw)
                token, expires_in = answer.get("access_token"), answer.get("expires_in")
            except (ValueError, AttributeError):
                answer, token, expires_in = None, None, None
            if not token:
                keys = ", ".join(sorted(map(str, answer))[:5]) if isinstance(answer, dict) else ""
                raise self.http.error("the token endpoint answered without an access_token"
                                      + (f" (its keys: {keys})" if keys else ""))
            self._auth.token = str(token)
            self.http.secrets.append(self._auth.token)
            self._auth.renew_at = _renew_at(expires_in)
            return True

    def _fresh_token(self) -> str | None:
        """The token to send: renewed first when it is about to expire (a run of a million
        MPIDs outlasts one token: mParticle's expire after 8 hours, and what an expired one
        answers is not documented, so it is not waited for)."""
        used = self._auth.token
        if used is not None and self._auth.renew_at is not None and time.monotonic() >= self._auth.renew_at:
            self.authenticate(stale=used)
        return self._auth.token

    # ------------------------------------------------------------------ profiles
    def profile_url(self, mpid: int) -> str:
        c = self.creds
        return f"{self.api_url}/userprofile/v1/{c.org_id}/{c.account_id}/{c.workspace_id}/{int(mpid)}"

    def profile_path_shown(self) -> str:
        """The Profile API URL asked, for a message: no query string, no user info, ``<mpid>``."""
        url = httpx.URL(self.api_url)
        base = f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "") + url.path.rstrip("/")
        c = self.creds
        return f"{base}/userprofile/v1/{c.org_id}/{c.account_id}/{c.workspace_id}/<mpid>"

    def workspace(self) -> dict[str, str]:
        """The workspace the Profile API is asked about (:func:`workspace_of`)."""
        return workspace_of(self.creds)

    def profile(self, mpid: int) -> dict[str, Any] | None:
        """The Profile API answer for ``mpid``, or None when there is no such profile (404)."""
        got = self.profile_text(mpid)
        return None if got is None else got[0]

    def profile_text(self, mpid: int) -> tuple[dict[str, Any], str] | None:
        """(the answer parsed, the answer's text as sent) for ``mpid``; None on a 404."""
        used = self._fresh_token()
        resp, raw = self.http.request("GET", self.profile_url(mpid), params={"fields": FIELDS}, ok=(200, 404),
                                      auth_refresh=lambda: self.authenticate(stale=used), consume=self.http.json_body)
        if resp.status_code == 404:
            text = raw.decode("utf-8", "replace").strip()
            if text:
                try:
                    json.loads(text)
                except ValueError:  # an HTML page: a web server's own 404, not the Profile API's answer
                    raise self.http.error(
                        f"HTTP 404 on {self.profile_path_shown()} with a body that is not JSON "
                        f"({short_text(text, self.http.mask, 80)}): no Profile API answers at this URL; "
                        f"{WRONG_URL_HINT}") from None
            return None
        try:
            text = raw.decode("utf-8-sig")  # a UTF-8 byte order mark is no part of the answer
            data = json.loads(text)
        except ValueError:  # also UnicodeDecodeError: JSON between systems is UTF-8 (RFC 8259)
            raise self.http.error(f"the profile of MPID {mpid} is not JSON in UTF-8") from None
        if not isinstance(data, dict):
            raise self.http.error(f"the profile of MPID {mpid} is not a JSON object")
        return data, text

    def fetch_profiles(self, out: Path, mpids: Iterable[int], *, concurrency: int = 4, part_size: int = 1000,
                       retry_missing: bool = False, progress: bool | None = None,
                       on_part: Callable[[Path, datetime, datetime, int], None] | None = None) -> ProfilesResult:
        """Fetch the profiles of ``mpids`` not fetched yet into part files. ``on_part(path,
        as_of, started, profiles)`` is called as each part is in place: ``as_of`` is the time of the
        first request whose answer the part holds (its capture time, also in its name), ``started``
        the run's start (``ProfilesResult.fetched_at``), ``profiles`` the profiles (lines) it holds."""
        folder = out / "mparticle" / "profiles"
        missing_file = state_dir(out) / "mparticle_missing.json"
        have = fetched_mpids(folder)
        workspace = self.workspace()
        # only this workspace's list: an MPID another workspace (or pod) does not know may be
        # one this one knows (a folder fetched again with other credentials)
        missing = read_missing(missing_file, workspace)
        unscoped = read_missing(missing_file, UNSCOPED)  # an earlier version's list: no workspace named
        # a workspace that answered a profile into this folder before is the right one: a run whose
        # MPIDs are all gone upstream (asked again by retry_missing, or new ones deleted since) is
        # just missing profiles, not a wrong URL
        known_workspace = bool(have) or fetched_before(out, workspace)
        wanted = sorted({int(m) for m in mpids})
        skip = have | (set() if retry_missing else missing)
        todo = [m for m in wanted if m not in skip]
        res = ProfilesResult(requested=len(wanted), skipped=len(wanted) - len(todo),
                             known_missing=0 if retry_missing else sum(1 for m in wanted if m in missing and m not in have),
                             unscoped_missing=sum(1 for m in todo if m in unscoped),
                             fetched_at=datetime.now(timezone.utc).replace(microsecond=0))
        if not todo:
            return res

        # a sample spread across the sorted list (every MPID of a run of ALL_MISSING_EARLY or
        # fewer) is asked first, alone, then the rest: the threads wait for the sample's last answers
        # once per run, so that a wrong URL is found having asked the sample and nothing else
        todo = asking_order(todo, ALL_MISSING_EARLY)
        sample, rest = todo[:ALL_MISSING_EARLY], todo[ALL_MISSING_EARLY:]  # rest: None once asked

        def looks_wrong() -> bool:
            """Once the sample is answered (and nothing else asked): every answer is a 404 (3 or
            more), the URL or a workspace id is wrong (not for a workspace that answered profiles
            into the folder)."""
            return (not known_workspace and res.fetched == 0 and res.missing >= ALL_MISSING_MIN
                    and res.missing == len(sample))

        if self._auth.token is None:
            self.authenticate()
        buffer: list[tuple[datetime, str]] = []  # (when its request was sent, the line)
        new_missing: set[int] = set()
        lock = threading.Lock()

        def flush() -> None:
            with lock:
                lines, buffer[:] = list(buffer), []
                gone = set(new_missing)
            if lines:
                # the part's capture time: the first request whose answer it holds (the answers
                # are snapshots taken from then on, as an Engage listing is dated by its first page)
                as_of = min(t for t, _ in lines)
                stamp = as_of.strftime("%Y%m%dT%H%M%SZ")
                n = len(res.files) + 1
                while (target := folder / f"part-{stamp}-{n:05d}.jsonl").exists():  # never overwrite a part
                    n += 1
                with atomic_file(out, target, "w") as f:
                    f.writelines(line for _, line in lines)
                res.files.append(target)
                if on_part is not None:
                    on_part(target, as_of, res.fetched_at, len(lines))
            # while the sample is asked and no profile came back, a 404 may be a wrong URL's: a run
            # stopped then (Ctrl-C, an error) records none, as the wrong-URL check would not
            undecided = rest is not None and res.fetched == 0 and not known_workspace
            if (gone or retry_missing) and not wrong_url and not undecided:
                all_missing = (missing - (set(todo) if retry_missing else set())) | gone
                write_missing(out, missing_file, workspace, all_missing)

        def one(mpid: int) -> None:
            sent = datetime.now(timezone.utc).replace(microsecond=0)
            got = self.profile_text(mpid)
            if got is None:
                with lock:
                    new_missing.add(mpid)
                    res.missing += 1
                return
            data, text = got
            line, mismatched = profile_line(mpid, data, text)
            with lock:
                buffer.append((sent, line))
                res.fetched += 1
                res.mismatched += mismatched

        wrong_url: list[bool] = []  # every MPID asked answered 404: nothing is recorded as missing
        bar = None
        show = sys.stderr.isatty() if progress is None else progress
        if show:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc="mParticle profiles", unit="profile", file=sys.stderr)
        self.http.cancelled.clear()
        pool = ThreadPoolExecutor(max_workers=max(1, concurrency))
        try:
            pending = {pool.submit(one, m) for m in sample}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    if fut.exception() is not None:
                        raise fut.exception()  # type: ignore[misc]
                if bar is not None:
                    bar.update(len(done))
                if not pending and rest is not None:  # the sample is answered, nothing else asked
                    with lock:
                        wrong = looks_wrong()
                    if wrong:  # the rest is not asked
                        wrong_url.append(True)
                        break
                    pending, rest = {pool.submit(one, m) for m in rest}, None
                if len(buffer) >= part_size:
                    flush()
        except BaseException:
            # an error or Ctrl-C: the requests in flight stop at their next retry or wait instead
            # of running their whole retry loop (a read in flight ends within the timeout)
            self.http.cancel()
            raise
        finally:
            # on an error or Ctrl-C the queued requests are dropped (the ones in flight end);
            # what was fetched stays fetched: the next run resumes from here
            pool.shutdown(wait=True, cancel_futures=True)
            flush()
            if bar is not None:
                bar.close()
        if wrong_url:
            answered = res.missing  # the sample's
            rest = len(todo) - answered
            raise self.http.error(
                f"every one of the {answered:,} MPIDs asked for answered HTTP 404 (no such profile) on "
                f"{self.profile_path_shown()}: {WRONG_URL_HINT}; none is recorded as missing"
                + (f"; the run stopped there, without asking the other {rest:,}" if rest > 0 else ""))
        return res


def asking_order(mpids: list[int], sample: int) -> list[int]:
    """The order in which a run asks ``mpids`` (sorted, distinct): when there are more than
    ``sample``, first ``sample`` of them spread evenly across the list (the middle one of each of
    ``sample`` equal slices, in order), then the others in order; else the list as it is.
    Deterministic, so an interrupted run's next one asks the same sample of what is left. The
    wrong-URL check (:data:`ALL_MISSING_EARLY`) looks at that sample: the MPIDs that sort first
    may all be gone from a right workspace."""
    n = len(mpids)
    if n <= sample or sample < 1:
        return list(mpids)
    picked = [(2 * i + 1) * n // (2 * sample) for i in range(sample)]  # distinct: n > sample
    chosen = set(picked)
    return [mpids[i] for i in picked] + [m for i, m in enumerate(mpids) if i not in chosen]


def profile_line(mpid: int, data: dict[str, Any], text: str) -> tuple[str, bool]:
    """The part-file line of one Profile API answer: ``{"mpid": <the MPID asked for>, ...}`` then
    the answer's other members exactly as sent (numbers and escapes as written). An answer whose
    ``mpid`` is not exactly the MPID asked for (another integer, or a JSON float, even one equal
    in value, since a float cannot be trusted to name one int64) keeps it, as sent, in
    ``mpid_returned``; True is returned for those."""
    returned = data.get("mpid")
    if isinstance(returned, str) and is_valid_mpid(returned.strip()):
        returned = int(returned.strip())
    exact = type(returned) is int and returned == mpid
    members = object_members(text)
    first = [("mpid", str(int(mpid)))]
    mismatched = returned is not None and not exact
    if mismatched:
        first.append(("mpid_returned", next(v for k, _, v in reversed(members) if k == "mpid")))
    return build_object(first, members, skip={"mpid", "mpid_returned"}) + "\n", mismatched


_LEADING_MPID = re.compile(r'^\{"mpid": (-?[0-9]{1,19})[,}]')


def fetched_mpids(folder: Path) -> set[int]:
    """MPIDs already written in ``folder``'s part files (tolerant: a bad line is skipped). A hidden
    name or OS clutter (macOS's ``._part-….jsonl`` beside a copied part: :func:`is_clutter`) is no
    part: the loader does not read it either."""
    from cohortlab.loaders.files import is_clutter

    out: set[int] = set()
    if not folder.is_dir():
        return out
    for p in sorted(f for f in folder.glob("*.jsonl") if not is_clutter(f.name)):
        with open(p, encoding="utf-8") as f:
            for line in f:
                fast = _LEADING_MPID.match(line)
                if fast:
                    out.add(int(fast.group(1)))
                    continue
                try:
                    m = json.loads(line).get("mpid")
                except (ValueError, AttributeError):
                    continue
                if isinstance(m, int) and not isinstance(m, bool):
                    out.add(m)
                elif isinstance(m, str) and is_valid_mpid(m):
                    out.add(int(m))
    return out


def fetched_before(out: Path, workspace: dict[str, str]) -> bool:
    """Whether ``out/fetch.json`` records a part file fetched from ``workspace`` (:func:`workspace_of`)
    by an earlier run, even one removed since: that workspace answered profiles here, so its URL
    and ids are right. Unreadable or missing fetch.json: False."""
    try:
        runs = json.loads((out / "fetch.json").read_text(encoding="utf-8")).get("runs")
    except (OSError, ValueError, RecursionError, AttributeError):
        return False
    for run in runs if isinstance(runs, list) else []:
        for i in (run.get("items") or []) if isinstance(run, dict) else []:
            if (isinstance(i, dict) and i.get("kind") == "mparticle-profiles" and i.get("workspace") == workspace
                    and i.get("files")):
                return True
    return False


UNSCOPED = "unscoped"  # read_missing: the list an earlier version wrote, which names no workspace


def _missing_lists(path: Path) -> list[tuple[dict[str, str] | None, set[int]]]:
    """The lists of ``.fetch/mparticle_missing.json``: ``{"lists": [{"workspace": {api_url, org_id,
    account_id, workspace_id}, "missing": [MPID, ...]}, ...]}``, one per workspace asked. A bare
    JSON list (what earlier versions wrote) is one list whose workspace is None: it is
    not known which workspace found those MPIDs missing. Unreadable content = no list."""
    def ids(values: Any) -> set[int]:
        return {m for m in values if isinstance(m, int) and not isinstance(m, bool)} if isinstance(values, list) else set()

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return []
    if isinstance(data, list):
        return [(None, ids(data))]
    lists = data.get("lists") if isinstance(data, dict) else None
    out: list[tuple[dict[str, str] | None, set[int]]] = []
    for entry in lists if isinstance(lists, list) else []:
        if isinstance(entry, dict):
            ws = entry.get("workspace")
            out.append((ws if isinstance(ws, dict) else None, ids(entry.get("missing"))))
    return out


def read_missing(path: Path, workspace: dict[str, str] | str | None = None) -> set[int]:
    """The MPIDs an earlier run found missing (404) in ``workspace`` (:meth:`MParticleClient.workspace`);
    :data:`UNSCOPED`: those of a list naming no workspace; None: every list's."""
    out: set[int] = set()
    for ws, ids in _missing_lists(path):
        if workspace is None or ws == workspace or (workspace == UNSCOPED and ws is None):
            out |= ids
    return out


def write_missing(out_dir: Path, path: Path, workspace: dict[str, str], mpids: set[int]) -> None:
    """``mpids`` as the list of ``workspace`` in ``path``; the other workspaces' lists are kept."""
    lists = [{"workspace": ws, "missing": sorted(ids)} for ws, ids in _missing_lists(path) if ws != workspace]
    lists.append({"workspace": workspace, "missing": sorted(mpids)})
    write_json(out_dir, path, {"lists": lists}, indent=None)


def referenced_mpids(engine) -> list[int]:
    """MPIDs the loaded Mixpanel data refers to: ``$mparticle_user_id`` of profiles and events, and
    the distinct_ids of profiles, cohort members and webhook members that are valid MPIDs (the
    feed's fallback). Exact int64, never through a float."""
    from cohortlab.identifiers import mpid_sql

    ids = """
        SELECT mparticle_user_id AS x FROM mp_profiles
        UNION SELECT mparticle_user_id FROM mp_events WHERE mparticle_user_id IS NOT NULL
        UNION SELECT distinct_id FROM mp_profiles
        UNION SELECT distinct_id FROM mp_cohort_members
        UNION SELECT distinct_id FROM mp_webhook_members
    """
    rows = engine.query_rows(f"SELECT DISTINCT m FROM (SELECT {mpid_sql('x')} AS m FROM ({ids})) WHERE m IS NOT NULL ORDER BY m")
    return [int(r[0]) for r in rows]
