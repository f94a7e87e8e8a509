"""A generator of bad (and unlucky) input files for every loader, each with what must happen.

``cases()`` returns :class:`Case` objects: the bytes of one input file, the loader kind and
options, and the expected outcome, either

* ``ok``: the load succeeds; ``loaded`` / ``reasons`` (quarantine counts by reason) when given
  must match exactly, and the counts balance (rows read = loaded + duplicates + quarantined); or
* ``error``: the load fails with one line on stderr containing ``message``, no traceback, and
  the database is unchanged.

The families: line endings (CRLF, CR only, the three mixed), encodings (UTF-8 BOM, UTF-16, one invalid UTF-8
byte), truncation (a JSONL line, a JSON document, a gzip stream), empty and blank files, huge
lines (3 MB, above DuckDB's 2 MB default), deep nesting (beyond Python's recursion limit), a JSON
array followed by JSON lines, values of the wrong JSON type, int64 edges of MPIDs, CSV rows with
too many fields, CSV headers named like working columns, ids containing the usual delimiters, an
Engage error response.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field

AS_OF = "2026-03-01T00:00:00Z"
T = 1_772_000_000  # epoch seconds (2026-02-25)
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    data: bytes
    expect: str = "ok"  # "ok" | "error"
    options: tuple[str, ...] = ()
    message: str | None = None  # a substring of the one-line error
    loaded: int | None = None
    reasons: dict[str, int] | None = None  # quarantined, by reason (exactly)
    quarantined: int | None = None  # quarantined in all
    name: str = "input.json"
    rows: tuple = field(default=())  # (sql, expected rows) checked after a successful load


# --------------------------------------------------------------------------- good records
def _event(i: int, **props) -> dict:
    return {"event": "Open", "properties": {"time": T + i, "distinct_id": f"u{i}", "$insert_id": f"i{i}", **props}}


def _mp_profile(i: int, **props) -> dict:
    return {"$distinct_id": f"u{i}", "$properties": {"$mparticle_user_id": str(1000 + i), **props}}


def _cohort(i: int, **extra) -> dict:
    return {"id": 100 + i, "name": f"Cohort {i}", "count": i, **extra}


def _member(i: int, **props) -> dict:
    return {"$distinct_id": f"u{i}", "$properties": dict(props)}


def _webhook(i: int, **extra) -> dict:
    return {
        "action": "add_members", "received_at": f"2026-03-01T00:00:0{i % 10}Z",
        "parameters": {"mixpanel_cohort_id": "7", "mixpanel_cohort_name": "Hooked", "mixpanel_session_id": f"s{i}",
                       "page_info": {"total_pages": 1, "page_count": 0},
                       "members": [{"mixpanel_distinct_id": f"u{i}", **extra}]},
    }


def _mpa_profile(i: int, **attrs) -> dict:
    return {"mpid": 5000 + i, "user_identities": [{"type": "customer_id", "value": f"c{i}"}],
            "user_attributes": {"plan": "pro", **attrs}}


def _batch(i: int, **attrs) -> dict:
    return {"mpid": 5000 + i, "timestamp_unixtime_ms": (T + i) * 1000, "user_attributes": {"plan": "pro", **attrs}}


# kind -> (record maker, options, where a free-form payload can go: record(i, **{key: value}))
JSON_KINDS = {
    "mixpanel-events": (_event, (), "note"),
    "mixpanel-profiles": (_mp_profile, (), "note"),
    "mixpanel-cohorts": (_cohort, (), "description"),
    "mixpanel-members": (_member, ("cohort=Hostile", f"as_of={AS_OF}"), "note"),
    "mixpanel-webhooks": (_webhook, (), "note"),
    "mparticle-profiles": (_mpa_profile, (), "note"),
    "mparticle-batches": (_batch, (), "note"),
}


def _jsonl(records, eol: str = "\n") -> bytes:
    return (eol.join(json.dumps(r) for r in records) + eol).encode("utf-8")


def _mixed_ends(records, cut: bytes) -> bytes:
    """Two records, a cut one and a third, ending in a lone CR, an LF, a CRLF and an LF (lines 1
    to 4 by the rule: each LF, CRLF and lone CR ends a line)."""
    one, two, three = (json.dumps(r).encode() for r in records[:3])
    return one + b"\r" + two + b"\n" + cut + b"\r\n" + three + b"\n"


def _dumps_deep(record: dict, key_path: list[str], depth: int) -> str:
    placeholder = "\"__DEEP__\""
    rec = json.loads(json.dumps(record))
    cur = rec
    for k in key_path[:-1]:
        cur = cur[k]
    cur[key_path[-1]] = "__DEEP__"
    return json.dumps(rec).replace(placeholder, "[" * depth + "]" * depth)


def _payload_path(kind: str, key: str) -> list[str]:
    if kind == "mixpanel-events":
        return ["properties", key]
    if kind in ("mixpanel-profiles", "mixpanel-members"):
        return ["$properties", key]
    if kind == "mixpanel-webhooks":
        return ["parameters", "members", 0, key]  # type: ignore[list-item]
    if kind in ("mparticle-profiles", "mparticle-batches"):
        return ["user_attributes", key]
    return [key]


# --------------------------------------------------------------------------- the cases
def json_cases() -> list[Case]:
    out: list[Case] = []
    for kind, (make, opts, key) in JSON_KINDS.items():
        good = [make(i) for i in range(1, 4)]
        k = kind

        out += [
            Case(f"{k}/crlf", k, _jsonl(good, "\r\n"), options=opts, loaded=3, reasons={}),
            Case(f"{k}/cr-only", k, _jsonl(good, "\r"), options=opts, loaded=3, reasons={}),
            Case(f"{k}/cr-only-pretty", k, json.dumps(good, indent=2).replace("\n", "\r").encode(),
                 options=opts, loaded=3, reasons={}),
            Case(f"{k}/mixed-line-ends", k, _mixed_ends(good, json.dumps(make(4)).encode()[:25]), options=opts,
                 loaded=3, reasons={"malformed_json": 1},
                 rows=(("SELECT line FROM rejects WHERE reason = 'malformed_json'", [(3,)]),)),
            Case(f"{k}/mixed-line-ends-gzip", k, gzip.compress(_mixed_ends(good, json.dumps(make(4)).encode()[:25])),
                 options=opts, loaded=3, reasons={"malformed_json": 1},
                 rows=(("SELECT line FROM rejects WHERE reason = 'malformed_json'", [(3,)]),)),
            Case(f"{k}/utf8-bom", k, b"\xef\xbb\xbf" + _jsonl(good), options=opts, loaded=3),
            Case(f"{k}/truncated-line", k, _jsonl(good) + json.dumps(make(4)).encode()[:25], options=opts,
                 loaded=3, reasons={"malformed_json": 1}),
            Case(f"{k}/truncated-document", k, json.dumps(good, indent=2).encode()[:-40], options=opts,
                 expect="error", message="input.json"),
            Case(f"{k}/truncated-gzip", k, gzip.compress(_jsonl(good * 50))[:-30], options=opts,
                 expect="error", message="input.json"),
            Case(f"{k}/invalid-utf8-byte", k,
                 _jsonl(good[:1]) + _jsonl([make(2)]).replace(b'"u2"', b'"u\xff2"').replace(b'"Cohort 2"', b'"Coh\xffort 2"')
                 .replace(b'"s2"', b'"s\xff2"').replace(b'5002', b'5002, "x": "\xfe"') + _jsonl(good[2:]),
                 options=opts, loaded=2, reasons={"invalid_utf8": 1},
                 rows=(("SELECT line FROM rejects WHERE reason = 'invalid_utf8'", [(2,)]),)),
            Case(f"{k}/utf16", k, "\n".join(json.dumps(r) for r in good).encode("utf-16"), options=opts,
                 expect="error", message="input.json: the file is UTF-16 text; cohortlab reads UTF-8"),
            Case(f"{k}/utf16-be-no-bom-gzip", k, gzip.compress("\n".join(json.dumps(r) for r in good).encode("utf-16-be")),
                 options=opts, expect="error", message="input.json: the file is UTF-16 text"),
            Case(f"{k}/empty", k, b"", options=opts, expect="error", message="empty file"),
            Case(f"{k}/blank", k, b"\n \r\n\t\n", options=opts, expect="error", message="empty file"),
            Case(f"{k}/array-then-jsonl", k, (json.dumps(good[:2]) + "\n").encode() + _jsonl(good[2:]),
                 options=opts, expect="error", message="more JSON after the top-level array"),
            Case(f"{k}/huge-line", k, _jsonl([make(1, **{key: "x" * 3_000_000})] + good[1:]), options=opts,
                 loaded=3, reasons={}),
            Case(f"{k}/deep-nesting", k,
                 (_dumps_deep(make(1), _payload_path(k, key), 5000) + "\n").encode() + _jsonl(good[1:]),
                 options=opts),
            Case(f"{k}/not-objects", k, _jsonl(good) + b'7\n"text"\n[1, 2]\nnull\n', options=opts, loaded=3),
        ]
    return out


def mpid_cases() -> list[Case]:
    """int64 edges of MPIDs in the three mParticle loaders: exact or quarantined, never rounded."""
    good = ["9223372036854775807", "-9223372036854775808", '"-1"']  # JSON tokens
    bad = ["9223372036854775808", "-9223372036854775809", "1e18", "1.0", '"0x10"', '"1 2"', "9223372036854775807.0",
           "true", "[1]"]
    exact = sorted([(INT64_MIN,), (-1,), (INT64_MAX,)])
    out: list[Case] = []
    for kind, maker in (("mparticle-profiles", _mpa_profile), ("mparticle-batches", _batch)):
        lines = []
        for i, token in enumerate(good + bad):
            rec = maker(i)
            rec["mpid"] = "__MPID__"
            lines.append(json.dumps(rec).replace('"__MPID__"', token))
        out.append(Case(f"{kind}/int64-edges", kind, ("\n".join(lines) + "\n").encode(), loaded=3,
                        quarantined=len(bad),
                        rows=(("SELECT mpid FROM mpa_profiles WHERE mpid < 0 OR mpid > 1000000 ORDER BY mpid", exact),)))
    cells = ["9223372036854775807", "-9223372036854775808", "-1"] + [
        "9223372036854775808", "-9223372036854775809", "1e18", "1.0", "0x10", "9223372036854775807.0", ""]
    csv = "mpid,customer_id\n" + "".join(f"{c},x{i}\n" for i, c in enumerate(cells))
    out.append(Case("mparticle-csv/int64-edges", "mparticle-csv", csv.encode(), name="p.csv", loaded=3,
                    reasons={"invalid_mpid": 6, "missing_mpid": 1},
                    rows=(("SELECT mpid FROM mpa_profiles WHERE mpid <> 77 ORDER BY mpid", exact),)))
    return out


def csv_cases() -> list[Case]:
    members = ("cohort=Hostile", f"as_of={AS_OF}")
    m = "mixpanel-members"
    p = "mparticle-csv"
    out = [
        Case("members-csv/one-column-ids-with-pipes", m, b"distinct_id\nauth0|5f1a2b\ngoogle-oauth2|1;2,3\n",
             options=members, name="m.csv", loaded=2,
             rows=(("SELECT distinct_id FROM mp_cohort_members WHERE cohort_name = 'Hostile' ORDER BY 1",
                    [("auth0|5f1a2b",), ("google-oauth2|1;2,3",)]),)),
        Case("members-csv/crlf", m, b"distinct_id\r\nu1\r\nu2\r\n", options=members, name="m.csv", loaded=2),
        Case("members-csv/cr-only", m, b"distinct_id\ru1\ru2\r", options=members, name="m.csv", loaded=2),
        Case("members-csv/bom", m, b"\xef\xbb\xbfdistinct_id\nu1\nu2\n", options=members, name="m.csv", loaded=2),
        Case("members-csv/line-over-2MB", m, b"distinct_id,note\nu1," + b"x" * 3_000_000 + b"\nu2,y\n",
             options=members, name="m.csv", loaded=2),
        Case("members-csv/ragged-row", m, b"distinct_id,x\nu1,1\nu2,1,2,3\n", options=members, name="m.csv",
             expect="error", message="line 3: more fields than the 2 of the header"),
        Case("members-csv/invalid-utf8", m, b"distinct_id\nu1\nu\xff2\n", options=members, name="m.csv",
             expect="error", message="invalid UTF-8"),
        Case("members-csv/utf16", m, "distinct_id\nu1\n".encode("utf-16"), options=members, name="m.csv",
             expect="error", message="m.csv: the file is UTF-16 text; cohortlab reads UTF-8: convert it first"),
        Case("members-csv/utf32", m, "distinct_id\nu1\n".encode("utf-32"), options=members, name="m.csv",
             expect="error", message="m.csv: the file is UTF-32 text"),
        Case("members-csv/internal-column-names", m, b"distinct_id,reason,raw,line,c1\nu1,x,y,1,2\nu2,,,,\n",
             options=members, name="m.csv", loaded=2, reasons={}),
        Case("mparticle-csv/internal-column-names", p, b"mpid,__reason,__line,__mpid,__rn,c1\n1,x,7,9,1,a\n2,,,,,\n",
             name="p.csv", loaded=2, reasons={},
             rows=(("SELECT mpid, name, value::VARCHAR FROM mpa_attributes WHERE mpid < 10 ORDER BY ALL",
                    [(1, "__line", '"7"'), (1, "__mpid", '"9"'), (1, "__reason", '"x"'), (1, "__rn", '"1"'),
                     (1, "c1", '"a"')]),)),
        Case("mparticle-csv/ragged-row", p, b"mpid,plan\n1,a\n2,b,c\n", name="p.csv",
             expect="error", message="line 3: more fields than the 2 of the header"),
        Case("members-csv/short-row", m, b"distinct_id,x\nu1,1\nu2\n", options=members, name="m.csv",
             expect="error", message="line 3: fewer fields than the 2 of the header"),
        Case("mparticle-csv/cr-only", p, b"mpid,plan\r1,a\r2,b\r", name="p.csv", loaded=2),
        Case("mparticle-csv/mixed-line-ends", p, b'mpid,plan\r\n1,"a\rb"\nx,b\r2,c\r\n', name="p.csv", loaded=2,
             reasons={"invalid_mpid": 1},
             rows=(("SELECT line FROM rejects WHERE reason = 'invalid_mpid'", [(3,)]),
                   ("SELECT mpid, value->>'$' FROM mpa_attributes WHERE mpid < 10 ORDER BY 1", [(1, "a\rb"), (2, "c")]))),
        # an Excel export: CRLF rows, LF inside a quoted cell (read as before: the LF is data)
        Case("mparticle-csv/crlf-rows-lf-in-a-cell", p, b'mpid,note\r\n1,"x\ny"\r\n2,z\r\n', name="p.csv", loaded=2,
             rows=(("SELECT mpid, value->>'$', line FROM mpa_attributes WHERE mpid < 10 ORDER BY 1",
                    [(1, "x\ny", 2), (2, "z", 3)]),)),
        Case("members-csv/mixed-line-ends", m, b"distinct_id\r\nu1\nu2\ru3\r\n", options=members, name="m.csv",
             loaded=3),
        Case("mparticle-csv/header-only", p, b"mpid,plan\n", name="p.csv", expect="error", message="empty file"),
        Case("mparticle-csv/pipe-delimited", p, b"mpid|plan\n1|a\n2|b\n", name="p.csv", loaded=2,
             rows=(("SELECT mpid, value::VARCHAR FROM mpa_attributes WHERE mpid < 10 ORDER BY 1", [(1, '"a"'), (2, '"b"')]),)),
    ]
    return out


def semantic_cases() -> list[Case]:
    """Inputs that used to load as something they are not."""
    ev = "mixpanel-events"
    return [
        Case("mixpanel-members/engage-error-response", "mixpanel-members",
             json.dumps({"status": "error", "error": "Invalid cohort id", "results": [], "page": 0}).encode(),
             options=("cohort=Hostile", f"as_of={AS_OF}"), expect="error",
             message="Engage response with status 'error': Invalid cohort id"),
        Case("mixpanel-members/engage-error-response-jsonl", "mixpanel-members",
             _jsonl([{"status": "ok", "results": [{"$distinct_id": "u1"}]},
                     {"status": "error", "error": "rate limited", "results": []}]),
             options=("cohort=Hostile", f"as_of={AS_OF}"), expect="error", message="rate limited"),
        Case(f"{ev}/event-names-not-strings", ev,
             b'{"event":-0,"properties":{"time":1772000000,"distinct_id":"a"}}\n'
             b'{"event":1e18,"properties":{"time":1772000000,"distinct_id":"b"}}\n'
             b'{"event":["x"],"properties":{"time":1772000000,"distinct_id":"c"}}\n'
             b'{"event":{"n":1},"properties":{"time":1772000000,"distinct_id":"d"}}\n'
             b'{"event":true,"properties":{"time":1772000000,"distinct_id":"e"}}\n'
             b'{"event":"-0","properties":{"time":1772000000,"distinct_id":"f"}}\n',
             loaded=1, reasons={"bad_event": 5},
             rows=(("SELECT event FROM mp_events WHERE distinct_id = 'f'", [("-0",)]),)),
        Case("mixpanel-members/as_of-1e30", "mixpanel-members", b"distinct_id\nu1\n", name="m.csv",
             options=("cohort=Hostile", "as_of=1e30"), expect="error", message="outside the years 1-9999"),
        Case("mixpanel-webhooks/received_at-inf", "mixpanel-webhooks", _jsonl([_webhook(1)]),
             options=("received_at=inf",), expect="error", message="not a finite epoch time"),
        Case("mixpanel-webhooks/received_at-nan", "mixpanel-webhooks", _jsonl([_webhook(1)]),
             options=("received_at=nan",), expect="error", message="not a finite epoch time"),
    ]


def cases() -> list[Case]:
    return json_cases() + mpid_cases() + csv_cases() + semantic_cases()
