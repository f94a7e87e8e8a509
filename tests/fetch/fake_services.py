"""A local stand-in for the Mixpanel and mParticle endpoints ``cohortlab fetch`` calls, on
127.0.0.1, implementing their documented request/response contracts (docs/fetching.md):

* ``GET /api/2.0/export`` — Basic auth, ``project_id``, ``from_date``/``to_date`` (inclusive UTC
  days), optional ``event`` (JSON array); JSONL, gzip when the client accepts it.
* ``POST /api/query/engage`` — form body; ``filter_by_cohort``; paging by ``session_id`` + ``page``
  over a snapshot taken at page 0 (``page_size`` results per page).
* ``POST /api/query/cohorts/list`` — a bare JSON array.
* ``POST /oauth/token`` — mParticle client credentials → Bearer token.
* ``GET /userprofile/v1/<org>/<account>/<workspace>/<mpid>?fields=…`` — Bearer auth; 404 for an
  unknown MPID.

Faults are scripted per endpoint (``fake.faults[name]`` is a list consumed in order, or
``fake.sticky[name]`` applied to every request): ``("status", code, retry_after)``,
``("echo", code, template)`` (a plain-text body reflecting ``{auth}`` (the Authorization header),
``{body}`` (the request body) and ``{query}`` (the query string), as some gateways do),
``"hang"`` (no answer for ``fake.hang`` seconds), ``"truncate_gzip"``, ``"cut_line"``, ``"error_200"``,
``("body", bytes)`` / ``("body_gz", bytes)`` (the export answers this body, plain or gzip),
``"html_200"`` (the export), ``("raw", code, body, content_type)`` (any endpoint), ``"proxy_page"`` and ``"empty_200"`` (any endpoint), ``"expire_session"``, ``"shift"``, ``"bom"`` (a UTF-8 byte order mark in front of an Engage
page), ``"expire_token"``; ``fake.delete_after_list`` deletes cohorts once the list is answered; and for one MPID ``fake.profile_faults[mpid]`` (also ``"bom"`` and ``"utf16"``). Every request is recorded in ``fake.log``.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

MP_USER, MP_SECRET, PROJECT = "svc.cohortlab", "mp-secret-0123456789", "4242"
MPA_CLIENT, MPA_SECRET = "mpa-client", "mpa-secret-ABCDEFGHIJ"
ORG, ACCOUNT, WORKSPACE = "11", "22", "33"


class Raw(str):
    """A profile (or member) the fake serves as this exact JSON text: numbers and escapes as
    written (``1.0e18``, a lone surrogate ``\\ud83d``), which ``json.dumps`` cannot produce."""


def _item(x: Any) -> str:
    return x if isinstance(x, Raw) else json.dumps(x)


class Fake:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.log: list[tuple[str, str, dict[str, Any]]] = []  # (endpoint, method, params)
        self.faults: dict[str, list[Any]] = defaultdict(list)
        self.sticky: dict[str, Any] = {}
        self.profile_faults: dict[int, list[Any]] = defaultdict(list)
        self.events: list[dict[str, Any]] = []
        self.profiles: list[dict[str, Any]] = []
        self.cohorts: list[dict[str, Any]] = []
        self.cohorts_text: str | None = None  # served as the cohorts list's body, when set
        self.members: dict[int, list[str]] = {}
        self.page_size = 2
        self.sessions: dict[str, list[dict[str, Any]]] = {}
        self.n_sessions = 0
        self.mpa_profiles: dict[int, dict[str, Any]] = {}
        self.tokens = {"tok-1"}
        self.n_tokens = 0
        self.token_expires_in: Any = 28800  # the token answer's expires_in (seconds; mParticle's 8 hours)
        self.inflight = 0
        self.max_inflight = 0
        self.profile_delay = 0.0
        self.hang = 1.0
        self.engage_bodies: list[bytes] = []  # every Engage 200 body, as sent
        # Engage's total: the page's results (as the Query API's openapi describes it), or the
        # whole listing's size
        self.total_is_listing = False
        # cohorts deleted right after the cohorts list is answered: {id: status}; their members
        # request is then answered with that status and a JSON error body, and they are no longer
        # in the list (Mixpanel does not document the status: 400 or 404)
        self.delete_after_list: dict[Any, int] = {}
        self.deleted: dict[Any, int] = {}
        # the profiles of other mParticle workspaces the same credentials reach: {"org/account/workspace": {mpid: profile}}
        self.other_workspaces: dict[str, dict[int, Any]] = {}
        self.profile_times: list[tuple[float, float, Any]] = []  # Profile API requests, time.monotonic()

    def count(self, endpoint: str) -> int:
        return sum(1 for e, _, _ in self.log if e == endpoint)

    def next_fault(self, endpoint: str):
        with self.lock:
            if self.faults[endpoint]:
                return self.faults[endpoint].pop(0)
            return self.sticky.get(endpoint)


class Handler(BaseHTTPRequestHandler):
    fake: Fake
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    # ------------------------------------------------------------------ helpers
    def _send(self, code: int, body: bytes = b"", ctype: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, code: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send(code, json.dumps(data).encode(), headers=headers)

    def _fault(self, f) -> bool:
        """Answer a status fault; True when answered."""
        if f == "hang":  # accept the request, answer nothing for fake.hang seconds, then drop it
            time.sleep(self.fake.hang)
            self.close_connection = True
            return True
        if isinstance(f, tuple) and f[0] == "echo":  # ("echo", code, template): a body reflecting the request
            body = f[2].format(auth=self.headers.get("Authorization", ""), body=getattr(self, "raw_body", b"").decode(),
                               query=urlparse(self.path).query)
            self._send(f[1], body.encode(), "text/plain")
            return True
        if f == "proxy_page":  # any endpoint: a proxy's HTML page with status 200
            self._send(200, b"<!DOCTYPE html>\n<html><body>Service unavailable</body></html>\n", "text/html")
            return True
        if f == "empty_200":  # any endpoint: status 200 and nothing
            self._send(200, b"", "text/plain")
            return True
        if isinstance(f, tuple) and f[0] == "status":
            # ("status", code[, retry_after[, header name]]): mParticle's limits page spells it RetryAfter
            code, retry_after = f[1], f[2] if len(f) > 2 else None
            header = f[3] if len(f) > 3 else "Retry-After"
            self._json(code, {"error": f"fault {code}"}, {header: str(retry_after)} if retry_after is not None else None)
            return True
        if isinstance(f, tuple) and f[0] == "redirect":  # a 302 to another host, a token in its query
            self._send(302, b"", "text/plain", {"Location": "https://elsewhere.example/x?token=s3cr3t-token"})
            return True
        if isinstance(f, tuple) and f[0] == "raw":  # ("raw", code, body bytes, content type): this answer
            self._send(f[1], f[2], f[3])
            return True
        if isinstance(f, tuple) and f[0] == "json_200":  # ("json_200", body): status 200 with this JSON body
            self._json(200, f[1])
            return True
        return False

    def _basic_ok(self) -> bool:
        h = self.headers.get("Authorization", "")
        if not h.startswith("Basic "):
            return False
        user, _, pw = base64.b64decode(h[6:]).decode().partition(":")
        return (user, pw) == (MP_USER, MP_SECRET)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    # ------------------------------------------------------------------ routes
    def do_GET(self) -> None:
        u = urlparse(self.path)
        q = {k: v[-1] for k, v in parse_qs(u.query).items()}
        if u.path == "/api/2.0/export":
            return self._export(q)
        if u.path.startswith("/userprofile/v1/"):
            return self._profile(u.path, q)
        self._json(404, {"error": "no such endpoint"})

    def do_POST(self) -> None:
        u = urlparse(self.path)
        q = {k: v[-1] for k, v in parse_qs(u.query).items()}
        body = self.raw_body = self._body()
        if u.path == "/api/query/engage":
            form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
            return self._engage(q, form)
        if u.path == "/api/query/cohorts/list":
            return self._cohorts(q)
        if u.path == "/oauth/token":
            return self._token(json.loads(body or b"{}"))
        self._json(404, {"error": "no such endpoint"})

    # ------------------------------------------------------------------ Mixpanel
    def _export(self, q: dict[str, str]) -> None:
        fake = self.fake
        fake.log.append(("export", "GET", q))
        f = fake.next_fault("export")
        if self._fault(f):
            return
        if not self._basic_ok():
            # an error body that (badly) echoes the credentials sent: the client must mask them
            sent = base64.b64decode(self.headers.get("Authorization", "Basic ")[6:] or b"").decode(errors="replace")
            return self._json(401, {"error": f"Invalid username or secret: {sent}"})
        if q.get("project_id") != PROJECT:
            return self._json(400, {"error": "project_id is required"})
        a, b = q["from_date"], q["to_date"]
        names = json.loads(q["event"]) if "event" in q else None
        lines = []
        for e in fake.events:
            day = datetime.fromtimestamp(e["properties"]["time"], tz=timezone.utc).date().isoformat()
            if a <= day <= b and (names is None or e["event"] in names):
                lines.append(json.dumps(e))
        body = "".join(line + "\n" for line in lines).encode()
        if f == "terminated_early":  # Mixpanel stopped the export before its end: part of it, then this line
            body = "".join(line + "\n" for line in lines[:2]).encode() + b"terminated early\n"
        if f == "terminated_glued":  # the same words appended to the record cut off, no line break
            body = (lines[0] + "\n" + lines[1][:30] + "terminated early\n").encode()
        if isinstance(f, tuple) and f[0] in ("body", "body_gz"):  # ("body", bytes): status 200, this body
            if f[0] == "body_gz":  # gzip, as sent to a client that accepts it
                return self._send(200, gzip.compress(f[1]), "text/plain", {"Content-Encoding": "gzip"})
            return self._send(200, f[1], "text/plain")
        if f == "error_200":  # an error object with status 200, instead of the JSONL events
            return self._json(200, {"error": "Internal error while exporting, please retry", "status": "error"})
        if f == "html_200":  # a proxy's HTML page with status 200, starting with a line break
            return self._send(200, b"\r\n<!DOCTYPE html>\n<html><body>Service unavailable</body></html>\n", "text/html")
        if f == "cut_line" and body:
            return self._send(200, body[: len(body) - 7], "text/plain")
        if "gzip" in self.headers.get("Accept-Encoding", "") and body:
            gz = gzip.compress(body)
            if f == "truncate_gzip":
                gz = gz[: len(gz) // 2]
            return self._send(200, gz, "text/plain", {"Content-Encoding": "gzip"})
        self._send(200, body, "text/plain")

    def _cohorts(self, q: dict[str, str]) -> None:
        self.fake.log.append(("cohorts", "POST", q))
        if self._fault(self.fake.next_fault("cohorts")):
            return
        if not self._basic_ok():
            return self._json(401, {"error": "Unauthorized"})
        fake = self.fake
        if fake.cohorts_text is not None:
            self._send(200, fake.cohorts_text.encode())
        else:
            self._json(200, fake.cohorts)
        with fake.lock:
            for cid, status in list(fake.delete_after_list.items()):
                fake.cohorts = [c for c in fake.cohorts if c.get("id") != cid]
                fake.members.pop(cid, None)
                fake.deleted[cid] = status
            fake.delete_after_list.clear()

    def _engage(self, q: dict[str, str], form: dict[str, str]) -> None:
        fake = self.fake
        fake.log.append(("engage", "POST", {**q, **form}))
        f = fake.next_fault("engage")
        if self._fault(f):
            return
        if not self._basic_ok():
            return self._json(401, {"error": "Unauthorized"})
        page = int(form.get("page", 0))
        if page > 0 and "session_id" not in form:
            return self._json(400, {"error": "session_id is required when page > 0"})
        if "filter_by_cohort" in form and (gone := fake.deleted.get(json.loads(form["filter_by_cohort"])["id"])):
            cid = json.loads(form["filter_by_cohort"])["id"]
            return self._json(gone, {"request": "/api/query/engage", "error": f"cohort {cid} does not exist"})
        if page == 0:
            if "filter_by_cohort" in form:
                cid = json.loads(form["filter_by_cohort"])["id"]
                snap = [d if isinstance(d, Raw) else {"$distinct_id": d, "$properties": {}}
                        for d in fake.members.get(cid, [])]
            else:
                snap = [p if isinstance(p, Raw) else dict(p) for p in fake.profiles]
            with fake.lock:
                fake.n_sessions += 1
                sid = f"s{fake.n_sessions}"
                fake.sessions[sid] = snap
        else:
            sid = form["session_id"]
            if f == "expire_session" or sid not in fake.sessions:
                fake.sessions.pop(sid, None)
                return self._json(400, {"error": f"session_id {sid} has expired, please restart the query"})
            if f == "shift":  # the server lost the session and started a new one under us
                with fake.lock:
                    fake.n_sessions += 1
                    sid = f"s{fake.n_sessions}"
                    fake.sessions[sid] = [p if isinstance(p, Raw) else dict(p) for p in fake.profiles]
        snap = fake.sessions[sid]
        ps = fake.page_size
        results = snap[page * ps:(page + 1) * ps]
        total = len(snap) if fake.total_is_listing else len(results)
        head = json.dumps({"page": page, "page_size": ps, "session_id": sid, "status": "ok", "total": total})
        body = (head[:-1] + ', "results": [' + ", ".join(_item(r) for r in results) + "]}").encode()
        if f == "bom":  # a UTF-8 byte order mark in front, as some gateways add
            body = b"\xef\xbb\xbf" + body
        fake.engage_bodies.append(body)
        self._send(200, body)

    # ------------------------------------------------------------------ mParticle
    def _token(self, body: dict[str, Any]) -> None:
        fake = self.fake
        fake.log.append(("token", "POST", {k: v for k, v in body.items() if k != "client_secret"}))
        if self._fault(fake.next_fault("token")):
            return
        if (body.get("client_id"), body.get("client_secret")) != (MPA_CLIENT, MPA_SECRET) or \
                body.get("grant_type") != "client_credentials" or body.get("audience") != "https://api.mparticle.com":
            return self._json(401, {"error": "invalid_client"})
        with fake.lock:
            fake.n_tokens += 1
            tok = f"tok-{fake.n_tokens}"
            fake.tokens = {tok}
        self._json(200, {"access_token": tok, "expires_in": fake.token_expires_in, "token_type": "Bearer"})

    def _profile(self, path: str, q: dict[str, str]) -> None:
        fake = self.fake
        parts = path.split("/")
        fake.log.append(("profile", "GET", {"path": path, **q}))
        arrived = time.monotonic()
        with fake.lock:
            fake.inflight += 1
            fake.max_inflight = max(fake.max_inflight, fake.inflight)
        try:
            if fake.profile_delay:
                time.sleep(fake.profile_delay)
            f = fake.next_fault("profile")
            with fake.lock:  # (when the request arrived, when it was answered, the fault answered)
                fake.profile_times.append((arrived, time.monotonic(), f))
            if self._fault(f):
                return
            if f == "expire_token":
                fake.tokens = set()
            tok = self.headers.get("Authorization", "")[7:]
            if tok not in fake.tokens:
                return self._json(401, {"error": "token expired"})
            workspace = fake.mpa_profiles if parts[3:6] == [ORG, ACCOUNT, WORKSPACE] else \
                fake.other_workspaces.get("/".join(parts[3:6]))
            if workspace is None or "fields" not in q:
                return self._json(400, {"error": "bad request"})
            mpid = int(parts[6])
            with fake.lock:
                pf = fake.profile_faults[mpid].pop(0) if fake.profile_faults[mpid] else None
            if self._fault(pf):
                return
            prof = workspace.get(mpid)
            if prof is None:
                return self._json(404, {"errors": "profile not found"})
            # the MPID as an exact JSON integer (json.dumps of a Python int), or a Raw text as is
            body = prof.encode() if isinstance(prof, Raw) else json.dumps(prof).encode()
            if pf == "bom":  # a UTF-8 byte order mark in front, as some gateways add
                body = b"\xef\xbb\xbf" + body
            elif pf == "utf16":  # JSON in UTF-16 (json.loads of bytes reads it; RFC 8259 says UTF-8)
                body = body.decode().encode("utf-16")
            self._send(200, body)
        finally:
            with fake.lock:
                fake.inflight -= 1


def start(fake: Fake) -> tuple[ThreadingHTTPServer, str]:
    handler = type("BoundHandler", (Handler,), {"fake": fake})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def env_for(base: str) -> dict[str, str]:
    """Environment variables pointing ``cohortlab fetch`` at the fake services."""
    return {
        "MIXPANEL_PROJECT_ID": PROJECT,
        "MIXPANEL_SERVICE_ACCOUNT_USERNAME": MP_USER,
        "MIXPANEL_SERVICE_ACCOUNT_SECRET": MP_SECRET,
        "MPARTICLE_CLIENT_ID": MPA_CLIENT,
        "MPARTICLE_CLIENT_SECRET": MPA_SECRET,
        "MPARTICLE_ORG_ID": ORG,
        "MPARTICLE_ACCOUNT_ID": ACCOUNT,
        "MPARTICLE_WORKSPACE_ID": WORKSPACE,
        "COHORTLAB_MIXPANEL_EXPORT_URL": base,
        "COHORTLAB_MIXPANEL_QUERY_URL": base,
        "COHORTLAB_MPARTICLE_API_URL": base,
        "COHORTLAB_MPARTICLE_AUTH_URL": base + "/oauth/token",
    }


def Counts(fake: Fake) -> Counter:
    return Counter(e for e, _, _ in fake.log)
