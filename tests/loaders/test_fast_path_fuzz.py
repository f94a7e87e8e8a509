"""The typed fast path against the exact path on random files: small seeded files of
every loader kind with a fast path (mixpanel-events, mixpanel-profiles, mixpanel-members JSONL and
CSV, mparticle-profiles), with odd values in every field the loaders read (integers around 2^53,
2^63 and beyond 64 bits, -0, JSON floats in every spelling, numbers as strings, booleans, null,
containers where a scalar is expected, empty strings, escapes and raw control characters,
surrogate pairs, long strings, duplicate, missing and extra keys, times in s/ms/fractions/strings/
ISO, lenient JSON), and file-level quirks (CRLF, CR, mixed line ends, BOM, blank and malformed
lines, gzip). Each file is loaded into two fresh labs, one with the fast path, one without: the
canonical tables (load times left out), the rejects, the counts and any error must be the same.

The values are written as raw JSON tokens, so each spelling reaches the loaders as written.
Deterministic (fixed seeds); for a bigger run, raise N_FILES (a few hundred files per kind
were compared when it was written, with the exact path in parallel too)."""

from __future__ import annotations

import gzip
import json
import logging
import random

import pytest

from cohortlab.lab import Lab
from cohortlab.loaders import fast

from .test_fast_paths_all_loaders import _snapshot  # every canonical table's rows, sorted

pytestmark = pytest.mark.all_cores  # tests/conftest.py

N_FILES = 8  # per kind (about 3 s each on this machine)
# the seeds of each kind: the first N_FILES, and for events two whose files hold an integer
# identifier beyond 64 bits, which the fast path took while the exact path read it as a JSON float
SEEDS = {"mixpanel-events": [*range(N_FILES - 2), 25, 28]}


@pytest.fixture(autouse=True)
def _once(run_once):
    """These tests choose the path themselves: once, not once per parse path."""


# ------------------------------------------------------------------ value tokens (raw JSON text)
INTS = ["0", "-0", "1", "-1", "7", "123", "9007199254740992", "9007199254740993", "-9007199254740993",
        "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
        "18446744073709551615", "18446744073709551616", "100000000000000000000000000000",
        "4611686018427387904", "-7346244611012968789", "9080350317581165123"]
FLOATS = ["1e18", "9.08e+18", "123.0", "1E3", "-0.0", "1.5", "9080350317581165123.0", "9.080350317581165123e18",
          "1e400", "-1e400", "0.1", "1.0", "1e-7", "12.5", "2E+2", "-1.2e18", "1.2e18"]
STRS = ['""', '" "', '" 7"', '"007"', '"+5"', '"1e18"', '"123.0"', '"abc"', '"U1"', '" U1 "', '"\\u0000"',
        '"a\\u0000b"', '"\\u2028"', '"\\ud83d\\ude00"', '"\U0001F600"', '"a\\"b"', '"\\\\"', '"\\/x"', '"tab\\there"',
        '"true"', '"null"', '"undefined"', '"9223372036854775808"', '"-9223372036854775808"',
        '"9080350317581165123"', '"-1"', '"\\u00e9"', '"é"', '"\\n"', '"\\r"', '"x' + "y" * 3000 + '"',
        '"\\u0041\\u0042"', '" 1772000000 "', '"NaN"', '"inf"']
# lenient JSON some parsers take: bare NaN/Infinity, raw control characters inside strings
LENIENT = ["NaN", "Infinity", "-Infinity", "nan", "'x'", '"raw\ttab"', '"raw\x01ctl"', '"raw\u2028ls"',
           '"raw\x85nel"', '"raw\x7fdel"', '"\\x41"', '"bad\\qescape"', '"\\ud800"', '"\\udc00x"', "0x10", ".5", "1.",
           "+1", "01"]
OTHERS = ["true", "false", "null", "{}", '{"a":1}', "[]", "[1]", '["x"]', '[{"a":null}]']
TIMES_ODD = ['"1772000000\\t"', '"2026-03-01T00:00:00"', '"2026-03-01T00:00:00Z"', '"2026-02-30T00:00:00"', "253402300800",
             "-62135596801", "1e400", "true", "null", '""', "{}", "[1772000000]"]
TIMES = ["1772000000", "1772000000123", "1772000000.5", "1772000000.123456", '"1772000000"', '" 1772000000 "',
         '"1772000000123"', "1e11", "100000000001", "-1", "0", "-0", "1.772e9", "1772000000.0", '"1.772e9"',
         '"+1772000000"', "1772000000e0", '"\\u0031772000000"']
ISO = ['"2026-02-18T07:42:23"', '"2026-02-18T07:42:23Z"', '"2026-02-18 07:42:23"', '"2026-02-18T07:42:23+02:00"',
       '" 2026-02-18T07:42:23 "', '"2026-02-18"', '"2026-02-30T00:00:00"', '"2026-2-18T7:42:23"',
       '"2026-02-18T07:42:23.123"', '"yesterday"', "1772000000", "1772000000123", "1.7e9", '"1772000000"']


class Gen:
    def __init__(self, seed: int):
        self.r = random.Random(seed)
        # how odd this file is: the chance that a value is anything at all (most files take
        # the fast path only when nearly nothing is odd enough to send them to the exact path)
        self.level = self.r.choice([0.0, 0.0, 0.02, 0.05, 0.15, 0.5, 1.0])

    def pick(self, *pools):
        pool = self.r.choice(pools)
        return self.r.choice(pool)

    def scalar(self, p_odd=0.5, good=None, wild=True):
        """A value token: ``good`` (a list of usual tokens) most of the time, else anything."""
        if good is not None and self.r.random() > p_odd * self.level:
            # usual values, or odd ones every path reads (strings, integers)
            return self.r.choice(good) if not wild or self.r.random() < 0.6 else self.pick(INTS, STRS)
        if self.r.random() < 0.08:
            return self.r.choice(LENIENT)
        return self.pick(INTS, FLOATS, STRS, OTHERS)

    def obj(self, items: list[tuple[str, str | None]], extra=True) -> str:
        """A JSON object's text from (key, token) pairs (token None: key left out); sometimes
        duplicates a key, adds extra keys, shuffles."""
        items = [(k, v) for k, v in items if v is not None]
        r = self.r
        if extra and r.random() < 0.3:
            items.append((r.choice(["mp_lib", "x", "$city", "nested", "é", "time2", "Time", "Distinct_Id", "EVENT",
                                    "Properties", "MPID", "$Distinct_Id", "$PROPERTIES", "User_Attributes", "$EMAIL",
                                    "$Mparticle_User_Id", "$Created", "Results", "STATUS"]), self.scalar(1)))
        if items and r.random() < 0.12 * (self.level > 0):  # a duplicate key
            k, _ = r.choice(items)
            items.insert(r.randrange(len(items) + 1), (k, self.scalar(0.5, ['"DUP"', "1"])))
        if r.random() < 0.3:
            r.shuffle(items)
        sep = r.choice([",", ", ", " ,\t"])
        colon = r.choice([":", ": ", " : "])
        tail = ""
        if r.random() < 0.03 * self.level:
            tail = r.choice([",", " /* c */", ",]"])
        return "{" + sep.join(json.dumps(k, ensure_ascii=r.random() < 0.5) + colon + v for k, v in items) + tail + "}"

    def maybe(self, tok, p_missing=0.1, needed=False):
        return None if self.r.random() < p_missing * (self.level if needed else 1) else tok

    # ------------------------------------------------------------------ records per kind
    def event(self) -> str:
        r = self.r
        props = [
            ("time", self.maybe(self.r.choice(TIMES_ODD) if self.r.random() < 0.15 * self.level else self.r.choice(TIMES),
                                0.05, needed=True)),
            ("distinct_id", self.maybe(self.scalar(0.35, ['"U1"', '"U2"', '"u-3"', "42", "9080350317581165123"]), 0.2, True)),
            ("$user_id", self.maybe(self.scalar(0.3, ['"cust-1"', '"cust-2"', "7"]), 0.5)),
            ("$device_id", self.maybe(self.scalar(0.3, ['"dev-1"', '"8f2c-01"']), 0.5)),
            ("$insert_id", self.maybe(self.scalar(0.3, ['"i1"', '"i2"', '"i3"', "17"]), 0.3)),
            ("$mparticle_user_id", self.maybe(self.scalar(0.4, ['"-7346244611012968789"', "9080350317581165123",
                                                                '"undefined"', '""', "null"]), 0.3)),
        ]
        props_tok = self.obj(props) if r.random() > 0.05 * self.level else self.scalar(1)
        ev = self.scalar(0.15, wild=False, good=['"Sign In"', '"Page View"', '"Open"', '"é \\" q"'] + STRS[2:])
        return self.obj([("event", self.maybe(ev, 0.04, True)), ("properties", self.maybe(props_tok, 0.03, True))])

    def engage_result(self) -> str:
        r = self.r
        props = [
            ("$mparticle_user_id", self.maybe(self.scalar(0.4, ['"-7346244611012968789"', "9080350317581165123", '"7"']), 0.3)),
            ("$email", self.maybe(self.scalar(0.3, ['"a@example.com"', '"B@x.org "']), 0.4)),
            ("$phone", self.maybe(self.scalar(0.3, ['"+15550100"', "15550100"]), 0.6)),
            ("$created", self.maybe(self.scalar(0.3, ISO, wild=False), 0.4)),
            ("$last_seen", self.maybe(self.scalar(0.3, ISO, wild=False), 0.4)),
        ]
        props_tok = self.obj(props) if r.random() > 0.07 * self.level else self.scalar(1)
        did = self.scalar(0.3, ['"U1"', '"U2"', '"U3"', "42", "4611686018427387904", '"é"'])
        return self.obj([("$distinct_id", self.maybe(did, 0.05, True)), ("$properties", self.maybe(props_tok, 0.05))])

    def identities(self, kinds) -> str:
        r = self.r
        if r.random() < 0.05:
            return self.scalar(1)
        entries = []
        for _ in range(r.randrange(0, 3)):
            t = r.choice(kinds) if r.random() > 0.1 * self.level else r.choice(["", " ", "Customer ID", "x-y"])
            v = self.scalar(0.3, ['"a@example.com"', '"cust-1"', "123", '"9080350317581165123"'])
            if r.random() < 0.5:
                entries.append((t, v))
            else:
                entries.append((t, v))
        if r.random() < 0.5:  # an object map
            return self.obj([(json.dumps(t)[1:-1], v) for t, v in entries], extra=False)
        items = []
        for t, v in entries:
            if r.random() < 0.8:
                items.append(self.obj([("type", json.dumps(t)), ("encoding", '"raw"'), ("value", v)], extra=False))
            else:
                items.append(self.obj([("identity_type", json.dumps(t)), ("identity", v)], extra=False))
        if r.random() < 0.05:
            items.append(self.scalar(1))
        return "[" + ",".join(items) + "]"

    def mparticle_profile(self) -> str:
        r = self.r
        mpid = self.scalar(0.3, ["-7346244611012968789", "9080350317581165123", '"123"', "4611686018427387904", "5",
                                 "-0", '"-0"', "9223372036854775807", "-9223372036854775808", '"\\u0031\\u0032"',
                                 "0", '"007"'], wild=False)
        attrs = self.obj([(r.choice(["plan", "Power Users", "x", "é"]), self.scalar(0.5, ['"pro"', "true", '"True"', "null"]))
                          for _ in range(r.randrange(0, 3))], extra=False) if r.random() < 0.95 else self.scalar(1)
        aud = "[" + ",".join(self.obj([("audience_id", self.scalar(0.3, ["1", '"2"', "-0", '"9223372036854775807"'], wild=False)),
                                       ("audience_name", self.scalar(0.3, ['"Power"'])),
                                       ("expiration_timestamp_ms", self.maybe(self.scalar(0.3, ["1772000000123", "-1", '"17"', "1.5e3"], wild=False), 0.5))],
                                      extra=False) for _ in range(r.randrange(0, 2))) + "]"
        if r.random() < 0.05:
            aud = self.scalar(1)
        return self.obj([
            ("mpid", self.maybe(mpid, 0.04, True)),
            ("created_timestamp_ms", self.maybe(self.scalar(0.2, ["1772000000123", '"1772000000123"', "1.772e12", "1E12",
                                                                 '" 1772000000123 "', "-0", "1e400", "0.5", '"+1"', "9223372036854775808",
                                                                 "1772000000123.0", '"1.772e12"'], wild=False), 0.3)),
            ("last_stored_timestamp_ms", self.maybe(self.scalar(0.2, ["1772000000999", "1772000000999.5", "1e20", "-1"],
                                                                wild=False), 0.3)),
            ("is_opted_out", self.maybe(self.scalar(0.3, ["true", "false", '"True"']), 0.5)),
            ("environment", self.maybe(self.scalar(0.3, ['"production"', '"development"']), 0.5)),
            ("user_identities", self.maybe(self.identities(["customer_id", "email", "customerid", "other2", "Customer ID"]), 0.2)),
            ("device_identities", self.maybe(self.identities(["ios_idfv", "android_uuid", "ios_idfa"]), 0.5)),
            ("user_attributes", self.maybe(attrs, 0.3)),
            ("audience_memberships", self.maybe(aud, 0.5)),
        ])

    # ------------------------------------------------------------------ files
    def lines_file(self, make, n=None) -> tuple[list[str], dict]:
        r = self.r
        n = n or r.randrange(1, 9)
        lines = [make() for _ in range(n)]
        if r.random() < 0.3 and lines:  # a repeated record (de-duplication)
            lines.insert(r.randrange(len(lines) + 1), r.choice(lines))
        if self.level == 0:
            return lines, {}
        if r.random() < 0.1:
            lines.insert(r.randrange(len(lines) + 1), "")  # a blank line
        if r.random() < 0.1:
            lines.insert(r.randrange(len(lines) + 1), r.choice(['{"event":', "[1, 2]", "7", '"x"', "null",
                                                                 "{} {}", "not json", "terminated", "{}"]))
        if r.random() < 0.05:
            lines.insert(r.randrange(len(lines) + 1), "   ")
        if r.random() < 0.1:
            i = r.randrange(len(lines))
            lines[i] = r.choice([" ", "\t"]) + lines[i] + r.choice([" ", "\t", ""])
        return lines, {}

    def encode(self, lines: list[str], csv=False) -> tuple[bytes, dict]:
        r = self.r
        eol = r.choice(["\n"] * 6 + ["\r\n", "\r", "mixed"])
        if eol == "mixed":
            text = "".join(ln + r.choice(["\n", "\r\n", "\r"]) for ln in lines)
        else:
            text = eol.join(lines) + (eol if r.random() < 0.85 else "")
        data = text.encode("utf-8")
        flags = {"eol": repr(eol)}
        if r.random() < 0.1:
            data = b"\xef\xbb\xbf" + data
            flags["bom"] = True
        if r.random() < 0.12:
            data = gzip.compress(data, mtime=0)
            flags["gz"] = True
        return data, flags


def mixpanel_events_file(g: Gen):
    lines, _ = g.lines_file(g.event)
    layout = g.r.choice(["jsonl"] * 8 + ["array", "pretty"])
    opts = {}
    if g.r.random() < 0.3:
        opts["time_unit"] = g.r.choice(["s", "ms", "auto"])
    if layout != "jsonl":
        recs = [ln for ln in lines if ln.strip()]
        data, flags = (("[" + ",\n".join(recs) + "]") if layout == "array" else "\n".join(recs)).encode(), {}
        return data, {"layout": layout}, opts
    data, flags = g.encode(lines)
    return data, flags, opts


def engage_jsonl(g: Gen):
    lines, _ = g.lines_file(g.engage_result)
    return g.encode(lines)


def mixpanel_profiles_file(g: Gen):
    data, flags = engage_jsonl(g)
    return data, flags, {}


def mixpanel_members_file(g: Gen):
    data, flags = engage_jsonl(g)
    return data, flags, {"cohort": "Fuzz", "as_of": "2026-03-01T00:00:00Z"}


def mixpanel_members_csv(g: Gen):
    r = g.r
    header = r.choice(["distinct_id", "distinct_id,as_of", "$distinct_id,x", "x;distinct_id", "distinct_id\tplan",
                       '"distinct_id",as_of'])
    delim = ";" if ";" in header else ("\t" if "\t" in header else ",")
    ncols = len(header.split(delim))
    vals = ["U1", " U2 ", '"U3"', '" U4 "', "", "  ", "42", "9080350317581165123", "1e18", "é", "a|b",
            '"a,b"', '"x""y"', '"line\nbreak"', "U1", "\\u0000", "😀", "-0", "+5", "007"]
    rows = [header]
    for _ in range(r.randrange(1, 8)):
        cells = [r.choice(vals) for _ in range(ncols)]
        if "as_of" in header:
            cells[1] = r.choice(["2026-03-01T00:00:00Z", " 2026-03-01T00:00:00Z", ""]) if r.random() < 0.9 else "2026-03-02"
        rows.append(delim.join(cells))
    opts = {"cohort": "Fuzz"}
    if "as_of" not in header or r.random() < 0.3:
        opts["as_of"] = "2026-03-01T00:00:00Z"
    data, flags = g.encode(rows)
    return data, flags, opts


def mparticle_profiles_file(g: Gen):
    lines, _ = g.lines_file(g.mparticle_profile)
    data, flags = g.encode(lines)
    opts = {"as_of": "2026-03-08T05:00:00Z"} if g.r.random() < 0.2 else {}
    return data, flags, opts


KINDS = {
    "mixpanel-events": mixpanel_events_file,
    "mixpanel-profiles": mixpanel_profiles_file,
    "mixpanel-members": mixpanel_members_file,
    "mixpanel-members-csv": mixpanel_members_csv,
    "mparticle-profiles": mparticle_profiles_file,
}


def _load(path, kind, opts, *, use_fast, caplog):
    """(summary or error, snapshot, whether the file took the fast path) of a load in a fresh lab."""
    before, fast.ENABLED = fast.ENABLED, use_fast
    caplog.clear()
    try:
        with caplog.at_level(logging.DEBUG, logger="cohortlab.loaders.fast"), Lab() as lab:
            try:
                r = lab.load(kind, path, **opts)
            except Exception as e:  # noqa: BLE001 - the same error either way
                return ("error", type(e).__name__, str(e)), None, False
            summary = (r.rows_read, r.loaded, r.deduplicated, dict(r.quarantined), list(r.warnings))
            return summary, _snapshot(lab), any(m.endswith(": fast path") or ": fast path (" in m
                                                for m in caplog.messages)
    finally:
        fast.ENABLED = before


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_random_files_load_the_same_by_the_fast_and_the_exact_path(tmp_path, caplog, kind):
    real = "mixpanel-members" if kind == "mixpanel-members-csv" else kind
    took_fast = 0
    seeds = SEEDS.get(kind, range(N_FILES))
    for seed in seeds:
        g = Gen(seed * 1000 + sum(map(ord, kind)))
        data, flags, opts = KINDS[kind](g)
        p = tmp_path / f"{seed}.{'csv' if 'csv' in kind else 'jsonl'}"
        p.write_bytes(data)
        got_fast = _load(p, real, opts, use_fast=True, caplog=caplog)
        got_exact = _load(p, real, opts, use_fast=False, caplog=caplog)
        assert got_fast[:2] == got_exact[:2], (seed, flags, data[:2000])
        took_fast += got_fast[2]
    assert took_fast >= len(seeds) // 5  # the fuzz reaches the fast path, not only its refusals
