"""Files whose lines end in more than one way (LF, CRLF and lone CR mixed): DuckDB's CSV reader,
the line reader of every JSONL and CSV loader, refuses them ("The CSV Parser state machine
reached an invalid state"); they are read through an LF copy (cohortlab.loaders.line_ends),
numbered by the documented rule (each LF, CRLF and lone CR ends a line), with the original's
fingerprint. Runs through the three parse paths (conftest.parse_path)."""

from __future__ import annotations

import gzip
import json
import re
import tempfile

import pytest

from cohortlab.loaders import line_ends
from cohortlab.loaders.files import scan_file
from cohortlab.loaders.line_ends import normalise_line_ends

T = 1_772_000_000


def _event(i: int) -> str:
    return json.dumps({"event": "Open", "properties": {"time": T + i, "distinct_id": f"u{i}", "$insert_id": f"i{i}"}})


def _mixed(lines: list[str]) -> bytes:
    """``lines`` joined by lone CR, LF, CRLF in turn (the last one ends with an LF)."""
    ends = ["\r", "\n", "\r\n"]
    return "".join(ln + (ends[i % 3] if i < len(lines) - 1 else "\n") for i, ln in enumerate(lines)).encode()


# ----------------------------------------------------------------------------- the LF copy
def _reference_json(data: bytes) -> bytes:
    return re.sub(rb"\r\n?", b"\n", data)


def _reference_csv(data: bytes) -> bytes:
    """The copy, byte by byte: a quote opens a quoted field only at a field's start (after a
    line end or a comma), "" inside one is a quote, a lone one closes it."""
    out, quoted, start, i = bytearray(), False, True, 0
    while i < len(data):
        b = data[i : i + 1]
        if quoted:
            if b == b'"' and data[i + 1 : i + 2] == b'"':
                out += b'""'
                i += 2
                continue
            quoted = b != b'"'
        elif b == b'"' and start:
            quoted = True
        elif b == b"\r":
            out += b"\n"
            i += 2 if data[i + 1 : i + 2] == b"\n" else 1
            start = True
            continue
        start = not quoted and b in (b",", b"\n")
        out += b
        i += 1
    return bytes(out)


COPY_CASES = {
    "mixed": b'{"a":1}\r{"a":2}\n{"a":3}\r\n{"a":4}',
    "cr_then_crlf": b"x\r\ry\r\n\r\nz\r",
    "csv_quotes": b'id,v\r\n1,"a\rb"\n2,"c\r\nd"\r3,"e""\r"\r\n4,x',
    "quote_open_at_end": b'id,v\r\n1,"a\rb',
    # a quote inside an unquoted value is a character: the CR after it ends the line
    "stray_quote": b'id,v\r\n1,5" screen\r2,"a\rb"\n3,x"y\r\n4,"c""\rd"\r5,z',
    "empty": b"",
}


@pytest.mark.parametrize("name", sorted(COPY_CASES))
@pytest.mark.parametrize("csv", [False, True], ids=["jsonl", "csv"])
def test_the_copy_has_every_line_end_an_lf_across_read_blocks(tmp_path, monkeypatch, run_once, name, csv):
    data = COPY_CASES[name]
    src = tmp_path / "in"
    want = _reference_csv(data) if csv else _reference_json(data)
    lines = want.count(b"\n") + (1 if want and not want.endswith(b"\n") else 0)
    for gz in (False, True):
        src.write_bytes(gzip.compress(data) if gz else data)
        for block in (1, 2, 3, 5, 8, 1 << 20):  # every boundary: a CRLF or a quote split across reads
            monkeypatch.setattr(line_ends, "BLOCK", block)
            dst = tmp_path / "out"
            assert normalise_line_ends(src, dst, csv=csv) == lines, (gz, block)
            assert dst.read_bytes() == want, (gz, block)


def test_the_scan_tells_mixed_line_ends(tmp_path, run_once):
    cases = {b"a\nb\n": False, b"a\r\nb\r\n": False, b"a\rb\r": False, b"a\rb\n": True, b"a\r\nb\n": True,
             b"a\r\nb\rc": True, b"a\nb": False}
    for data, mixed in cases.items():
        p = tmp_path / "f"
        p.write_bytes(data)
        assert scan_file(p, "k", {}).mixed_eol is mixed, data


# ----------------------------------------------------------------------------- loads
def test_mixed_jsonl_events_load_numbered_by_the_rule(lab, tmp_path, balanced, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    lines = [_event(1), _event(2), '{"event": "Open", "prop', _event(4), "  ", _event(6), _event(7)]
    p = tmp_path / "events.jsonl"
    p.write_bytes(_mixed(lines))
    r = balanced(lab.load("mixpanel-events", [p]))
    assert (r.rows_read, r.loaded, dict(r.quarantined)) == (6, 5, {"malformed_json": 1})
    assert lab.engine.query_rows("SELECT list(line ORDER BY line) FROM mp_events")[0][0] == [1, 2, 4, 6, 7]
    assert lab.engine.query_rows("SELECT list(distinct_id ORDER BY line) FROM mp_events")[0][0] == [
        "u1", "u2", "u4", "u6", "u7"]
    assert lab.engine.query_rows("SELECT line, raw FROM rejects") == [(3, '{"event": "Open", "prop')]
    # the fingerprint is the original file's: loading it again is skipped; the copy is gone
    fp, options = lab.engine.query_rows("SELECT fingerprint, options::VARCHAR FROM loads")[0]
    assert fp == scan_file(p, "mixpanel-events", json.loads(options)).fingerprint
    assert lab.load("mixpanel-events", [p]).skipped == [str(p)]
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_gzip_file_with_mixed_line_ends_loads_the_same(lab, tmp_path, balanced):
    """A gzip JSON file is not scanned for line ends: DuckDB refuses it, and the load is retried
    through the LF copy (the failed attempt rolled back, an earlier file of the call included)."""
    lines = [_event(i) for i in range(1, 6)]
    clean = tmp_path / "a.jsonl"
    clean.write_bytes(("\n".join([_event(9)]) + "\n").encode())
    p = tmp_path / "events.jsonl.gz"
    p.write_bytes(gzip.compress(_mixed(lines)))
    r = balanced(lab.load("mixpanel-events", [clean, p]))
    assert (r.rows_read, r.loaded) == (6, 6)
    assert lab.engine.query_rows(
        "SELECT list(line ORDER BY line) FROM mp_events WHERE source_file = ?", [str(p)])[0][0] == [1, 2, 3, 4, 5]
    assert lab.engine.query_rows("SELECT count(*) FROM loads")[0][0] == 2


@pytest.mark.parametrize("text", [
    # a sep= line: DuckDB read the gzip file as 0 rows, no error (a snapshot of 0 members)
    "sep=;\rdistinct_id;c\r\nU0;sp\r\nU1;x\n",
    # a quoted field: DuckDB said a quote was never closed
    'distinct_id,c\r\n"U0","a\rb"\nU1,"x"\r\n',
], ids=["sep_line", "quoted"])
def test_a_gzip_csv_with_mixed_line_ends_is_scanned_and_loads_as_the_plain_file(lab, tmp_path, write, text, run_once):
    """The scan decompresses a gzip CSV for its line ends (DuckDB does not always refuse one)."""
    plain, gz = write("m.csv", text), write("m.csv.gz", text, gz=True)
    assert scan_file(gz, "k", {}).mixed_eol and scan_file(plain, "k", {}).mixed_eol
    for p in (plain, gz):
        lab.load("mixpanel-members", [p], cohort=p.name, as_of="2026-03-01T00:00:00", column="distinct_id")
    rows = lab.engine.query_rows("SELECT cohort_name, list(distinct_id ORDER BY line), list(line ORDER BY line) "
                                 "FROM mp_cohort_members GROUP BY 1 ORDER BY 1")
    assert [r[1:] for r in rows] == [(["U0", "U1"], rows[0][2])] * 2, rows


def test_invalid_utf8_in_a_mixed_file_is_numbered_by_the_rule(lab, tmp_path, balanced):
    lines = [_event(1), _event(2), _event(3).replace('"u3"', '"u\xff3"'), _event(4), _event(5)]
    data = _mixed(lines).replace("\xff".encode(), b"\xff")
    p = tmp_path / "events.jsonl"
    p.write_bytes(data)
    r = balanced(lab.load("mixpanel-events", [p]))
    assert (r.loaded, dict(r.quarantined)) == (4, {"invalid_utf8": 1})
    assert lab.engine.query_rows("SELECT line FROM rejects") == [(3,)]
    assert lab.engine.query_rows("SELECT list(line ORDER BY line) FROM mp_events")[0][0] == [1, 2, 4, 5]


def test_mixed_jsonl_profiles_members_and_mparticle(lab, tmp_path, balanced):
    prof = [json.dumps({"$distinct_id": f"u{i}", "$properties": {"$mparticle_user_id": str(100 + i)}})
            for i in range(1, 5)]
    p = tmp_path / "profiles.jsonl"
    p.write_bytes(_mixed(prof[:2] + ["not json"] + prof[2:]))
    r = balanced(lab.load("mixpanel-profiles", [p]))
    assert (r.loaded, dict(r.quarantined)) == (4, {"malformed_json": 1})
    assert lab.engine.query_rows("SELECT list(line ORDER BY line) FROM mp_profiles")[0][0] == [1, 2, 4, 5]

    m = tmp_path / "members.jsonl"
    m.write_bytes(_mixed(prof))
    r = balanced(lab.load("mixpanel-members", [m], cohort="Mixed", as_of="2026-03-01T00:00:00Z"))
    assert r.loaded == 4
    assert lab.engine.query_rows(
        "SELECT list(distinct_id ORDER BY distinct_id) FROM mp_cohort_members WHERE cohort_name = 'Mixed'")[0][0] == [
        "u1", "u2", "u3", "u4"]

    mpa = [json.dumps({"mpid": 5000 + i, "user_identities": [{"type": "customer_id", "value": f"c{i}"}]})
           for i in range(1, 4)]
    mpa.insert(1, '{"mpid": 9.08e18}')  # a float MPID: quarantined, with its line
    q = tmp_path / "mpa.jsonl"
    q.write_bytes(_mixed(mpa))
    r = balanced(lab.load("mparticle-profiles", [q]))
    assert (r.loaded, dict(r.quarantined)) == (3, {"invalid_mpid": 1})
    assert lab.engine.query_rows("SELECT line FROM rejects WHERE kind = 'mparticle-profiles'") == [(2,)]
    assert lab.engine.query_rows("SELECT list(mpid ORDER BY line), list(line ORDER BY line) FROM mpa_profiles")[0] == (
        [5001, 5002, 5003], [1, 3, 4])


def test_a_mixed_csv_with_a_quote_inside_a_value_loads_line_by_line(lab, tmp_path, balanced):
    """The copy flipped its quote state on every quote: after `5" screen` the CRs that end lines
    stayed CRs and the rows ran together (and a quoted value's CR became a line end)."""
    m = tmp_path / "m.csv"
    m.write_bytes(b'distinct_id,note\r\nu1,5" screen\ru2,"a\rb"\nu3,z\r\n')
    r = balanced(lab.load("mixpanel-members", [m], cohort="Mixed", as_of="2026-03-01T00:00:00Z"))
    assert r.loaded == 3
    assert lab.engine.query_rows(
        "SELECT list(distinct_id ORDER BY distinct_id) FROM mp_cohort_members")[0][0] == ["u1", "u2", "u3"]


def test_mixed_csv_keeps_line_ends_inside_quotes(lab, tmp_path, balanced):
    p = tmp_path / "p.csv"
    p.write_bytes(b'mpid,plan\r\n1,"a\rb"\nx,b\r3,"c\r\nd"\r\n4,e')
    r = balanced(lab.load("mparticle-csv", [p]))
    assert (r.loaded, dict(r.quarantined)) == (3, {"invalid_mpid": 1})
    assert lab.engine.query_rows("SELECT line FROM rejects") == [(3,)]  # the header is line 1
    assert lab.engine.query_rows("SELECT mpid, value->>'$' FROM mpa_attributes ORDER BY mpid") == [
        (1, "a\rb"), (3, "c\r\nd"), (4, "e")]

    m = tmp_path / "m.csv"
    m.write_bytes(b'distinct_id,note\r\nu1,"x\ry"\nu2,z\ru3,w\r\n')
    r = balanced(lab.load("mixpanel-members", [m], cohort="Mixed", as_of="2026-03-01T00:00:00Z"))
    assert r.loaded == 3
    assert lab.engine.query_rows(
        "SELECT list(distinct_id ORDER BY distinct_id) FROM mp_cohort_members")[0][0] == ["u1", "u2", "u3"]


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_a_line_end_inside_a_quoted_header_name_is_part_of_the_name(lab, tmp_path, balanced, end):
    # DuckDB's own detection takes the first CR it meets as the file's line end, even one inside a
    # quoted header name, and then read the whole file as its header: "empty file: no records"
    p = tmp_path / "p.csv"
    p.write_bytes(f'mpid,"Power\rUsers",plan{end}1,true,free{end}2,false,"a\rb"{end}'.encode())
    r = balanced(lab.load("mparticle-csv", [p]))
    assert r.loaded == 2
    assert lab.engine.query_rows("SELECT mpid, name, value->>'$' FROM mpa_attributes ORDER BY mpid, name") == [
        (1, "Power\rUsers", "true"), (1, "plan", "free"), (2, "Power\rUsers", "false"), (2, "plan", "a\rb")]
    assert lab.engine.query_rows("SELECT mpid, line FROM mpa_profiles ORDER BY mpid") == [(1, 2), (2, 3)]

    m = tmp_path / "m.csv"
    m.write_bytes(f'"distinct\nid note",distinct_id{end}x,u1{end}y,u2{end}'.encode())
    r = balanced(lab.load("mixpanel-members", [m], cohort="Quoted", as_of="2026-03-01T00:00:00Z"))
    assert r.loaded == 2
    assert lab.engine.query_rows("SELECT list(distinct_id ORDER BY distinct_id) FROM mp_cohort_members")[0][0] == [
        "u1", "u2"]


@pytest.mark.parametrize("kind, text", [
    ("mixpanel-events", "not json\r\n" + "{}\n"),
    ("mixpanel-events", "\r\n\n\r"),
    ("mparticle-profiles", "# a comment\n" + json.dumps({"mpid": 1}) + "\r\n"),
])
def test_a_refused_mixed_file_is_named_not_its_copy(lab, tmp_path, kind, text):
    """A file read through its LF copy and refused (not JSON, blank) names the file itself, as
    every error does (the copy is a temporary file the user never sees)."""
    from cohortlab.errors import LoadError

    p = tmp_path / "export.jsonl"
    p.write_bytes(text.encode())
    with pytest.raises(LoadError) as e:
        lab.load(kind, [p])
    assert e.value.path == str(p) and str(e.value).startswith(f"{p}: ")
    assert "cohortlab-lines-" not in str(e.value)


# ----------------------------------------------------------------------------- row_start_line
def test_row_start_line_carries_a_run_of_crs_or_quotes_to_the_next_block(tmp_path, monkeypatch, run_once):
    """A block ending in CRs or quotes was grown a byte at a time, copying the whole block each
    time (a run of 20,000 CRs across the 8 MiB boundary: 26 s); the run is carried instead, in
    as few reads as blocks, with the same lines."""
    import builtins

    from cohortlab.loaders import files

    reads = []

    class Counting:
        def __init__(self, f):
            self.f = f

        def read(self, n):
            reads.append(n)
            return self.f.read(n)

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

    monkeypatch.setattr(files, "ROW_BLOCK", 16)
    monkeypatch.setattr(files, "open", lambda p, m: Counting(builtins.open(p, m)), raising=False)
    p = tmp_path / "f.csv"
    # rows 3..501 are the empty lines of 499 lone CRs; row 502 a quoted value over lines 502-503
    p.write_bytes(b"id,v\n1,x" + b"\r" * 500 + b'2,"a\r\n' + b'"' * 300 + b'b"\n3,y\n')
    got = [files.row_start_line(p, r, ",") for r in (2, 3, 502, 503, 504, 505)]
    assert got == [2, 3, 502, 504, 505, None]
    reads.clear()
    assert files.row_start_line(p, 10**6, ",") is None
    assert len(reads) <= 1 + p.stat().st_size // 16 + 2, reads  # 1: is_gzip's


def test_a_gzip_member_ending_with_the_block_read_does_not_end_the_scan(tmp_path, run_once):
    """A member that ended exactly where a read block ended left zlib nothing after it, which the
    scan took for padding: the next member's CRLFs went unseen (red team: a member of exactly
    8 MiB), and a CSV of mixed line ends was read as DuckDB misreads it."""
    from cohortlab.loaders.files import _Inflate

    first, second = gzip.compress(b"id,v\n1,a\n", mtime=0), gzip.compress(b"2,b\r\n3,c\r\n", mtime=0)
    inflate = _Inflate()
    out = b"".join(inflate.feed(first)) + b"".join(inflate.feed(second)) + b"".join(inflate.end())
    assert out == b"id,v\n1,a\n2,b\r\n3,c\r\n" and not inflate.failed
    inflate = _Inflate()  # padding after a member still ends the file, as gzip and DuckDB read it
    assert b"".join(inflate.feed(first + bytes(64) + second)) == b"id,v\n1,a\n" and inflate.failed
    # an mParticle CSV whose header starts with "[" is no JSON: scanned
    src = tmp_path / "p.csv.gz"
    src.write_bytes(gzip.compress(b"[mpid],plan\n1,a\r\n2,b\n"))
    assert scan_file(src, "mparticle-csv", {}).mixed_eol
