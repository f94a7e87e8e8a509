"""HTTP for ``cohortlab fetch``: one :class:`HttpClient` per service, on ``httpx``.

* **Retries.** 429 and 5xx answers (every 500-599, as docs/fetching.md says: a gateway's
  520-524 too) and transport errors (connection reset, timeout, a body cut short) are retried
  up to ``RetryPolicy.retries`` times. The wait is the
  answer's ``Retry-After`` (seconds or an HTTP date; capped at ``max_retry_after``, 300 s) when
  it has one it can read, else exponential backoff (``backoff * 2**attempt``, capped at
  ``max_backoff``) with jitter: an unreadable ``Retry-After`` (``NaN``) is ignored.
  ``RetryPolicy.sleep`` (and ``clock``) are injectable: the tests record the waits instead of
  sleeping. A wait of ``LONG_WAIT`` (30 s) or more is announced first through
  :attr:`HttpClient.notify`.
* **A 429 pauses the client.** The wait after a 429, or after any retried answer that carries a
  ``Retry-After`` it can read (a 503 of a service down for maintenance), is a pause of the whole
  client: no attempt of any of its threads (the Profile API's ``concurrency``) starts before it is
  over, so the other threads do not keep sending requests the server refuses (each a refusal, a
  retry used up); the requests already in flight end as they do. A 5xx without ``Retry-After``
  and a transport error wait only in their own thread: they may be one request's fault.
* **An answer that is not JSON.** A JSON endpoint's answer with status 200 whose body is not JSON
  at all (a proxy's HTML page, an empty body, a body cut short) is retried like a 5xx
  (:meth:`HttpClient.json_body`): one such page no longer stops an 18-hour run of Profile API
  calls. A body that is JSON of another shape is the caller's error, not retried.
* **A body too large.** A JSON answer is read as a stream of at most ``JSON_BODY_MAX`` (64 MiB)
  decompressed bytes, an error body of at most 64 KiB, decompressed here a bounded piece at a
  time (:func:`read_capped`; one gzip or deflate layer): a small gzip answer that decompresses
  to gigabytes (a hostile or broken server) stops the fetch with an error instead of filling the
  memory. The raw event export streams to its file and caps each line instead.
* **Auth errors.** 401 and 403 raise :class:`AuthError`: one line naming the service, the
  endpoint (path only) and what to check. Never retried.
* **Bounded concurrency.** ``rate`` (requests per second, shared by every thread of the client)
  paces requests; the callers bound the number of threads.
* **Secrets.** Every message built here goes through :func:`mask`, which replaces by ``****``
  each secret value the client knows of in every form a server may echo it back: as is,
  JSON-escaped, URL-encoded, and the base64 of the Basic credentials (``user:secret``,
  ``secret:``, ``:secret``) a reflected ``Authorization`` header shows. An error body is masked
  whole *before* it is cut short, so no part of a secret is printed. URLs in messages are
  reduced to their path (no query string), and request bodies are never shown.
"""

from __future__ import annotations

import collections
import email.utils
import math
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import httpx

from cohortlab.errors import CohortlabError

RETRY_STATUSES = frozenset({429, *range(500, 600)})  # 429 and every 5xx (docs/fetching.md#behaviour)
LONG_WAIT = 30.0  # seconds: a wait between retries at least this long is announced by a line on stderr
USER_AGENT = "cohortlab-fetch"


class FetchError(CohortlabError):
    """A fetch failed. ``str()`` is one line, safe to print: secrets masked, and an email or phone
    number a server's error text quotes (``no access to profile erin@…``) shown as ``<email>`` /
    ``<phone number>`` (:func:`cohortlab.privacy.masked_text`), as a load's errors show them."""

    def __init__(self, message: Any = "", *args: Any) -> None:
        from cohortlab.privacy import masked_text

        super().__init__(masked_text(str(message)), *args)


class AuthError(FetchError):
    """The credentials are missing (found before any folder or request), or wrong or lacking a
    permission (401/403)."""


class HttpStatusError(FetchError):
    """An error answer that is not retried (400, 404, ...): ``status`` is its HTTP status, for a
    caller that can tell what it means there (a members listing of a cohort deleted meanwhile)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class NetworkError(FetchError):
    """The service could not be reached, or its answers were cut off, on every attempt (connection
    refused, timeouts): ``--json`` reports it as kind ``network``, as documented."""


class RetryableError(FetchError):
    """A response that looked fine but was not (e.g. a truncated gzip stream): retried like a 5xx."""


@dataclass
class RetryPolicy:
    retries: int = 5
    backoff: float = 1.0  # first wait (seconds) without Retry-After
    max_backoff: float = 60.0
    max_retry_after: float = 300.0  # a Retry-After above this is capped (and the message says so)
    sleep: Callable[[float], None] = time.sleep
    jitter: bool = True
    clock: Callable[[], float] = time.monotonic  # the time the shared pause after a 429 is measured on

    max_limit_backoff: float = 900.0  # the longest wait after a 429 of an hourly limit (limit_backoff)

    def wait(self, attempt: int, retry_after: float | None, limit_backoff: float | None = None) -> float:
        """The wait before retry ``attempt`` + 1: the server's ``retry_after`` (capped), else
        exponential backoff from ``backoff`` (from ``limit_backoff`` when given: a 429 of a
        service whose limit is counted per hour, up to ``max_limit_backoff``), with jitter."""
        if retry_after is not None and math.isfinite(retry_after):
            return min(max(retry_after, 0.0), self.max_retry_after)
        if limit_backoff:
            base = min(limit_backoff * (2 ** attempt), self.max_limit_backoff)
        else:
            base = min(self.backoff * (2 ** attempt), self.max_backoff)
        return base * (0.5 + random.random() / 2) if self.jitter else base


def no_sleep_policy(retries: int = 5) -> RetryPolicy:
    """A policy that never sleeps (tests); the waits it would have made are in ``.waits``, and its
    clock moves only by them (a pause after a 429 is over once it was waited)."""
    waits: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    p = RetryPolicy(retries=retries, sleep=sleep, jitter=False, clock=lambda: now[0])
    p.waits = waits  # type: ignore[attr-defined]
    return p


def mask(text: str, secrets: Iterable[str], pairs: Iterable[tuple[str, str]] = ()) -> str:
    """``text`` with every (non-trivial) secret value replaced by ``****``, in each of the forms of
    :func:`secret_forms` (``pairs``: the Basic-auth ``(user, password)`` pairs in use)."""
    for s in secret_forms(secrets, pairs):
        text = text.replace(s, "****")
    return text


def secret_forms(secrets: Iterable[str], pairs: Iterable[tuple[str, str]] = ()) -> list[str]:
    """Every spelling of the secrets a server might echo back, longest first: the value, its
    JSON-escaped forms (``\\"``, ``\\/``, ``\\uXXXX``), its URL-encoded forms (``%2F`` /
    ``%2f``, ``+`` for a space), and the base64 (standard and URL-safe, with or without padding)
    of the value, of ``value:``, of ``:value`` and of each Basic ``user:password`` pair."""
    import base64
    import json
    from urllib.parse import quote, quote_plus

    values = [s for s in secrets if s and len(s) >= 4]
    basic = {f"{u}:{p}" for u, p in pairs if (u and len(u) >= 4) or (p and len(p) >= 4)}
    for s in values:
        basic.update((s, f"{s}:", f":{s}"))
    forms: set[str] = set()
    for s in values:
        forms.add(s)
        for ascii_only in (False, True):
            j = json.dumps(s, ensure_ascii=ascii_only)[1:-1]
            forms.update((j, j.replace("/", "\\/")))
        for q in (quote(s, safe=""), quote_plus(s, safe=""), quote(s)):
            forms.update((q, re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), q)))
    for b in basic:
        raw = b.encode("utf-8")
        for enc in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
            t = enc.decode("ascii")
            forms.update((t, t.rstrip("=")))
    return sorted((f for f in forms if len(f) >= 4), key=len, reverse=True)


_DELTA_SECONDS = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,6})?")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds (digits; a decimal fraction is
    tolerated) or an HTTP date (RFC 9110). Anything else (``NaN``, ``Infinity``, ``1e3``, ``-5``,
    ``soon``) is None: treated as absent, so the normal backoff applies."""
    if not value:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
        wait = when.timestamp() - time.time()
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    return max(wait, 0.0) if math.isfinite(wait) else None


class RateLimiter:
    """At most ``rate`` request starts per second across threads (None: unlimited)."""

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = threading.Lock()
        self._clock, self._sleep = clock, sleep

    def acquire(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self._sleep(start - now)


class HourlyBudget:
    """At most ``per_hour`` request starts in any hour (a sliding window), as Mixpanel documents
    for its raw export and its Query API (60 queries an hour each). A request that would be one
    too many waits until the oldest of the last ``per_hour`` is an hour old. ``per_second``: also
    at most that many in any second (the raw export's 3 a second: :meth:`pace`), without a word,
    the wait being under a second. For one thread at a time (Mixpanel requests are sent one at a
    time); retries count, as they do for Mixpanel."""

    WINDOW = 3600.0
    # the second of ``per_second``, with a tenth to spare: a request reaches the server a little
    # after it starts here, by a latency that varies (spaced exactly 1.0 s, 4 starts landed in one
    # second of a server's clock)
    SECOND = 1.1

    def __init__(self, per_hour: int, name: str, clock: Callable[[], float] = time.monotonic,
                 per_second: int | None = None) -> None:
        self.per_hour, self.name, self.clock, self.per_second = per_hour, name, clock, per_second
        self._starts: collections.deque[float] = collections.deque()
        self._file: Path | None = None

    def remember(self, file: Path) -> None:
        """Keep the last hour's request starts in ``file`` (JSON, wall-clock seconds), and take
        those an earlier run left there: a run started right after another one waits for the
        hour they share. The times are written after each request; unreadable content is ignored."""
        import json

        self._file = file
        try:
            starts = json.loads(file.read_text(encoding="utf-8"))
            wall, now = time.time(), self.clock()
            earlier = sorted(float(t) for t in starts if isinstance(t, (int, float)) and t == t)
        except (OSError, ValueError, TypeError, RecursionError):  # nested too deeply: unreadable too
            return
        for t in earlier[-self.per_hour:]:
            if t > wall - self.WINDOW:
                self.record(now - (wall - min(t, wall)), save=False)

    def delay(self, now: float) -> float:
        """Seconds to wait from ``now`` (the clock's time) before the next request may start."""
        while self._starts and self._starts[0] <= now - self.WINDOW:
            self._starts.popleft()
        if len(self._starts) < self.per_hour:
            return 0.0
        return self._starts[0] + self.WINDOW - now

    def pace(self, now: float) -> float:
        """Seconds to wait from ``now`` so that the next start is at most the ``per_second``-th in
        any second (0 without ``per_second``): :attr:`SECOND` after the ``per_second``-th latest
        start."""
        n = self.per_second
        if not n or len(self._starts) < n:
            return 0.0
        return max(self._starts[-n] + self.SECOND - now, 0.0)

    def record(self, start: float, save: bool = True) -> None:
        """A request starts at ``start`` (the clock's time)."""
        self._starts.append(start)
        while len(self._starts) > self.per_hour:
            self._starts.popleft()
        if save and self._file is not None:
            import json

            offset = time.time() - self.clock()  # the clock's time as wall-clock seconds
            try:
                self._file.write_text(json.dumps([round(t + offset, 3) for t in self._starts]) + "\n",
                                      encoding="utf-8")
            except OSError:  # the folder went away: the limit still holds within this run
                pass


@dataclass
class Stats:
    requests: int = 0
    retries: Counter = field(default_factory=Counter)  # by cause: "429", "503", "transport", ...

    @property
    def n_retries(self) -> int:
        return sum(self.retries.values())


class HttpClient:
    """Requests to one service with retries, pacing, masking and counted statistics."""

    def __init__(
        self,
        service: str,
        *,
        auth: httpx.Auth | tuple[str, str] | None = None,
        headers: dict[str, str] | None = None,
        secrets: Iterable[str] = (),
        policy: RetryPolicy | None = None,
        rate: float | None = None,
        timeout: float = 120.0,
        auth_hint: str = "",
        transport: httpx.BaseTransport | None = None,
        limit_backoff: float | None = None,
    ) -> None:
        self.service = service
        # the first wait after a 429 without Retry-After, for a service whose limit is counted
        # per hour (Mixpanel: 60 queries an hour, no Retry-After documented): seconds of backoff
        # would use up the retries while the hour goes on
        self.limit_backoff = limit_backoff
        self.secrets = [s for s in secrets if s]  # a token learnt later is appended
        self.basic_pairs = [tuple(auth)] if isinstance(auth, tuple) else []
        self.policy = policy or RetryPolicy()
        self.limiter = RateLimiter(rate, sleep=self.policy.sleep if rate else time.sleep)
        self.auth_hint = auth_hint
        self.stats = Stats()
        self.cancelled = threading.Event()  # set by cancel(): no new attempt, no more waiting
        self.notify: Callable[[str], None] = _to_stderr  # a line the user should see now (long waits)
        self.max_json_body = JSON_BODY_MAX  # json_body reads no more (decompressed bytes)
        self._lock = threading.Lock()
        # after a 429 no attempt of any thread starts before this time (policy.clock): the
        # threads of one client (the Profile API's --concurrency) wait out the server's limit
        # together instead of each running into it
        self._paused_until = float("-inf")
        self._client = httpx.Client(
            auth=auth,
            # the encodings read_capped reads: httpx adds br and zstd when their modules happen
            # to be installed, whose answers cohortlab would then refuse
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate", **(headers or {})},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 30.0)),
            follow_redirects=False,
            transport=transport,
        )

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "HttpClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _count(self, cause: str | None = None) -> None:
        with self._lock:
            if cause is None:
                self.stats.requests += 1
            else:
                self.stats.retries[cause] += 1

    def cancel(self) -> None:
        """Stop every request of this client at its next attempt or wait (Ctrl-C, or another
        thread's error): a wait between retries ends at once, a read in flight ends by itself
        (at most the timeout). ``cancelled.clear()`` to use the client again."""
        self.cancelled.set()

    def _check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise self.error("cancelled")

    def _pause(self, seconds: float) -> None:
        """Every thread of this client waits ``seconds`` from now before its next attempt (a 429)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self.policy.clock() + seconds)

    def _wait_for_pause(self) -> None:
        """Wait out the pause a 429 set (:meth:`_pause`), if it is not over."""
        with self._lock:
            left = self._paused_until - self.policy.clock()
        if left > 0:
            self._wait(left)

    def _wait(self, seconds: float) -> None:
        if self.policy.sleep is time.sleep:  # the real wait: ended at once by cancel()
            self.cancelled.wait(seconds)
        else:
            self.policy.sleep(seconds)
        self._check_cancelled()

    def json_body(self, resp: httpx.Response) -> bytes:
        """``consume`` for a JSON endpoint (:meth:`request`): the body as received; for status 200,
        a body that is not JSON at all (HTML, empty, cut short) raises :class:`RetryableError`
        naming the path and the body's start (masked). A body that is not UTF-8 is returned: the
        caller says so (it is no transient page)."""
        import json

        try:
            raw, whole = read_capped(resp, self.max_json_body)
        except RetryableError:
            raise
        except FetchError as e:  # an encoding it does not read: not retried
            raise self.error(str(e)) from None
        if not whole:  # a gzip bomb, or no answer a JSON endpoint gives: not retried
            raise self.error(f"the answer on {resp.request.url.path} is larger than "
                             f"{self.max_json_body // (1024 * 1024)} MiB once decompressed (HTTP {resp.status_code}): "
                             "not read further. No page of these endpoints is that large: check the URL, or a "
                             "proxy between this machine and the service")
        if resp.status_code != 200:
            return raw
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            return raw
        try:
            json.loads(text)
        except ValueError:
            what = f": {short_text(text, self.mask, 120)}" if text.strip() else " (an empty body)"
            raise RetryableError(f"HTTP 200 on {resp.request.url.path} with a body that is not JSON{what}") from None
        return raw

    def mask(self, text: str) -> str:
        """``text`` with the secrets of this client masked (:func:`mask`)."""
        return mask(text, list(self.secrets), self.basic_pairs)

    def error(self, message: str, cls: type[FetchError] = FetchError) -> FetchError:
        return cls(self.mask(f"{self.service}: {message}"))

    def status_error(self, status: int, path: str, body: str) -> HttpStatusError:
        """The error of an answer with ``status`` on ``path`` that is not retried (``body``: its
        start, masked)."""
        return HttpStatusError(self.mask(f"{self.service}: HTTP {status} on {path}" + (f": {body}" if body else "")),
                               status)

    # ------------------------------------------------------------------ requests
    def request(
        self,
        method: str,
        url: str,
        *,
        ok: Iterable[int] = (200,),
        consume: Callable[[httpx.Response], Any] | None = None,
        auth_refresh: Callable[[], bool] | None = None,
        budget: HourlyBudget | None = None,
        **kwargs: Any,
    ) -> tuple[httpx.Response, Any]:
        """Send the request, retrying as the module says. ``consume(response)`` reads the body of a
        response whose status is in ``ok`` (streamed; it may raise :class:`RetryableError`);
        returns (response, what consume returned, or the body bytes when there is no consume).
        ``auth_refresh``: called once on a 401 (e.g. an expired OAuth token); a True return
        retries the request with the new credentials. ``budget``: the :class:`HourlyBudget` of the
        endpoint; an attempt that would exceed it waits, and :attr:`notify` says so first."""
        ok = set(ok)
        path = httpx.URL(url).path
        attempt = 0
        refreshed = False
        while True:
            self._check_cancelled()
            self._wait_for_pause()  # a 429 of this request or of another thread's
            if budget is not None:
                now = budget.clock()
                wait = budget.delay(now)
                if wait > 0:
                    self.notify(f"{self.service}: {budget.per_hour} requests to {budget.name} in the last hour, "
                                f"the most Mixpanel allows: waiting {duration_text(wait)} before the next")
                wait += budget.pace(now + wait)
                if wait > 0:
                    self._wait(wait)
                budget.record(now + wait)
            self.limiter.acquire()
            self._count()
            cause: str | None = None
            retry_after: float | None = None
            try:
                with self._client.stream(method, url, **kwargs) as resp:
                    if resp.status_code in ok:
                        result = consume(resp) if consume else resp.read()
                        return resp, result
                    body = _short_body(resp, self.mask)
                    status = resp.status_code
                    if status == 401 and auth_refresh and not refreshed:
                        refreshed = True
                        if auth_refresh():
                            continue
                    if status in (401, 403):
                        raise self.error(
                            f"authentication failed (HTTP {status}) on {path}"
                            + (f": {body}" if body else "")
                            + (f". {self.auth_hint}" if self.auth_hint else ""),
                            AuthError,
                        )
                    if 300 <= status < 400 and resp.headers.get("Location"):
                        # redirects are not followed: the credentials would go to another address
                        try:
                            host = httpx.URL(url).join(resp.headers["Location"]).host or "?"
                        except (httpx.InvalidURL, ValueError):
                            host = "an address that is no URL"
                        raise self.status_error(status, path, f"a redirect to {host}, not followed (the credentials "
                                                              "were not sent there)")
                    if status not in RETRY_STATUSES:
                        raise self.status_error(status, path, body)
                    cause = str(status)
                    # mParticle's limits page spells it RetryAfter (no hyphen): either is read
                    retry_after = parse_retry_after(resp.headers.get("Retry-After") or resp.headers.get("RetryAfter"))
                    last = f"HTTP {status} on {path}" + (f": {body}" if body else "")
                    if retry_after is not None and retry_after > self.policy.max_retry_after:
                        last += (f" (the server asked to wait {retry_after:.0f} s; cohortlab waits at most "
                                 f"{self.policy.max_retry_after:.0f} s before a retry)")
            except RetryableError as e:
                cause, last = "bad_body", str(e)
            except httpx.DecodingError as e:  # a compressed body that does not decompress
                cause, last = "bad_body", f"undecodable body on {path}: {e}"
            except httpx.TransportError as e:  # connect/read errors, a body cut short, timeouts
                cause, last = "transport", f"{type(e).__name__} on {path}: {e}"
            if attempt >= self.policy.retries:
                error = self.error(f"giving up after {attempt + 1} attempt{'s' if attempt else ''}: {last}",
                                   NetworkError if cause == "transport" else FetchError)
                error.transient = True  # the service's trouble, not the request's: a later run may get through
                raise error
            self._count(cause)
            wait = self.policy.wait(attempt, retry_after, self.limit_backoff if cause == "429" else None)
            if wait >= LONG_WAIT:  # a Retry-After of minutes: said first, the run is not stuck
                self.notify(self.mask(f"{self.service}: {last}; retry {attempt + 1} of {self.policy.retries} "
                                      f"in {duration_text(wait)}"))
            if cause == "429" or retry_after is not None:
                # the host's limit, or the server said when to come back: every thread pauses,
                # this one at the loop's top
                self._pause(wait)
            else:
                self._wait(wait)
            attempt += 1


JSON_BODY_MAX = 64 * 1024 * 1024  # an Engage or members page of 1,000 profiles is a few MB


def read_capped(resp: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body, decompressed, and whether that is the whole body. The
    body is read raw and decompressed here, never more than ``limit`` + 1 bytes of output at a
    time (httpx decompresses each chunk received whole: 64 KiB of gzip may be 64 MB, two gzip
    layers gigabytes in one chunk). One ``gzip`` or ``deflate`` layer is read (``identity`` is
    none; deflate zlib-wrapped, else raw, as httpx reads it); what follows the end of a gzip
    stream is its next member, or padding, where the body ends. Stacked or other encodings raise
    :class:`FetchError` (cohortlab asks for gzip or deflate only), a stream that does not
    decompress :class:`RetryableError`."""
    import zlib

    layers = [e.strip().lower() for e in resp.headers.get("Content-Encoding", "").split(",")]
    layers = [e for e in layers if e and e != "identity"]
    if len(layers) > 1 or (layers and layers[0] not in ("gzip", "x-gzip", "deflate")):
        raise FetchError(f"the answer on {resp.request.url.path} has Content-Encoding "
                         f"{', '.join(layers)!r}, which cohortlab does not read (gzip or deflate, once)")
    gz = bool(layers) and layers[0] != "deflate"
    d = zlib.decompressobj(zlib.MAX_WBITS | 16) if gz else None
    head = b""  # deflate: its first two bytes decide zlib-wrapped or raw (_deflate_decoder)
    out = bytearray()
    path = resp.request.url.path
    try:
        for raw in resp.iter_raw():
            data = raw
            if layers and d is None:  # deflate, undecided
                head += data
                if len(head) < 2:
                    continue
                d, data, head = _deflate_decoder(head), head, b""
            while data:
                if d is None:
                    out += data[:limit + 1 - len(out)]
                    data = b""
                else:
                    out += d.decompress(data, limit + 1 - len(out))
                    data = d.unconsumed_tail
                    if d.eof and d.unused_data:
                        tail = d.unused_data
                        if not (gz and tail[:2] == b"\x1f\x8b"[:len(tail)]):
                            return bytes(out[:limit]), len(out) <= limit  # padding: the body ends
                        data, d = tail, zlib.decompressobj(zlib.MAX_WBITS | 16)  # the next gzip member
                if len(out) > limit:
                    return bytes(out[:limit]), False
    except zlib.error as e:
        raise RetryableError(f"undecodable body on {path}: {e}") from None
    if head:  # a deflate body of one byte
        d = _deflate_decoder(head)
        out += d.decompress(head)
    if d is not None and not d.eof and (gz or out or head):  # a compressed stream cut short
        raise RetryableError(f"undecodable body on {path}: the compressed stream ends before its end")
    return bytes(out), True


def _deflate_decoder(head: bytes):
    """The decompressor of a ``deflate`` body starting with ``head`` (two bytes, unless the body is
    shorter): zlib's
    when they are a zlib header (compression method 8, the check bits: RFC 1950), else raw
    deflate, which some servers send as ``deflate``."""
    import zlib

    zlib_header = len(head) >= 2 and head[0] & 0x0F == 8 and ((head[0] << 8) | head[1]) % 31 == 0
    return zlib.decompressobj() if zlib_header else zlib.decompressobj(-zlib.MAX_WBITS)


def _to_stderr(line: str) -> None:
    import sys

    from cohortlab.escaping import terminal_text

    sys.stderr.write(terminal_text(line) + "\n")
    sys.stderr.flush()


def duration_text(seconds: float) -> str:
    """``42 s``, ``7 min``, ``1 h 05 min``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def short_text(text: str, masker: Callable[[str], str], limit: int = 300) -> str:
    """``text`` as one line of at most ``limit`` characters, masked whole *before* it is cut (a
    secret straddling the cut would otherwise show its first half)."""
    text = " ".join(masker(text).split())
    text = masker(text)  # a secret holding whitespace, once the whitespace is collapsed
    return text[:limit] + ("…" if len(text) > limit else "")


def _short_body(resp: httpx.Response, masker: Callable[[str], str], limit: int = 300) -> str:
    """The error body as one short masked line (a JSON ``error`` field when there is one)."""
    import json

    try:
        raw, _ = read_capped(resp, 65536)
        text = raw.decode("utf-8", errors="replace")
    except (httpx.HTTPError, OSError, FetchError):  # also a body that does not decompress
        return ""
    text = masker(text)  # the escaped forms, before JSON decoding turns them into the value
    try:
        data = json.loads(text)
        if isinstance(data, dict):
            text = str(data.get("error") or data.get("message") or data.get("errors") or text)
    except ValueError:
        pass
    return short_text(text, masker, limit)
