"""One read of a file for its fingerprint and its line count (cohortlab.loaders.files.scan_file):
the fingerprint is the one loads have always stored (a file loaded before is still skipped), and
the line count is the one the fast path used to count in a pass of its own (LF, CRLF, a CR
that does not end a CRLF: uncertain, so None), also across the 8 MiB read blocks.

(A file mixing line ends, which DuckDB's CSV reader refuses, is read through an LF copy:
tests/loaders/test_line_ends.py.)"""

from __future__ import annotations

import gzip
import json

import pytest
import xxhash

from cohortlab.lab import Lab
from cohortlab.loaders import fast
from cohortlab.loaders.files import fingerprint, scan_file

BLOCK = 8 * 1024 * 1024  # scan_file's read size


@pytest.fixture(autouse=True)
def _once(run_once):
    """Nothing here depends on the parse path."""


def _reference_lines(data: bytes) -> int | None:
    """The line count as fast.physical_lines counted it before scan_file (whole-buffer counts)."""
    if data.count(b"\r") != data.count(b"\r\n"):
        return None
    return data.count(b"\n") + (1 if data and data[-1:] != b"\n" else 0)


def _reference_fingerprint(data: bytes, kind: str, options: dict) -> str:
    h = xxhash.xxh3_128()
    h.update(json.dumps({"kind": kind, "options": options}, sort_keys=True, default=str).encode())
    h.update(data)
    return h.hexdigest()


CASES = {
    "lf": b'{"a":1}\n{"a":2}\n',
    "no_final_newline": b'{"a":1}\n{"a":2}',
    "blank_lines": b'{"a":1}\n\n{"a":2}\n\n',
    "crlf": b'{"a":1}\r\n{"a":2}\r\n',
    "crlf_no_final": b'{"a":1}\r\n{"a":2}',
    "lone_cr": b'{"a":1}\r{"a":2}\n',
    "cr_only": b'{"a":1}\r{"a":2}\r',
    "empty": b"",
    "one_char": b"x",
    # a CRLF split across two read blocks counts as one line end; a CR ending one block and
    # followed by something else in the next is a lone CR
    "crlf_across_blocks": b"x" * (BLOCK - 1) + b"\r\n" + b"y\n",
    "cr_across_blocks": b"x" * (BLOCK - 1) + b"\r" + b"y\n",
    "lf_at_block_end": b"x" * (BLOCK - 1) + b"\n" + b"y",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_line_count_and_fingerprint_match_the_separate_passes(tmp_path, name):
    data = CASES[name]
    p = tmp_path / "f.jsonl"
    p.write_bytes(data)
    scan = scan_file(p, "mixpanel-events", {"time_unit": "auto"})
    assert scan.counted
    assert scan.lines == _reference_lines(data)
    assert scan.fingerprint == _reference_fingerprint(data, "mixpanel-events", {"time_unit": "auto"})
    assert fingerprint(p, "mixpanel-events", {"time_unit": "auto"}) == scan.fingerprint


def test_expected_counts_of_a_few_cases(tmp_path):
    expected = {"lf": 2, "no_final_newline": 2, "blank_lines": 4, "crlf": 2, "lone_cr": None, "cr_only": None,
                "empty": 0, "crlf_across_blocks": 2, "cr_across_blocks": None, "lf_at_block_end": 2}
    for name, n in expected.items():
        p = tmp_path / f"{name}.jsonl"
        p.write_bytes(CASES[name])
        assert scan_file(p, "k", {}).lines == n, name


def test_a_gzip_file_is_hashed_but_not_counted(tmp_path):
    data = b'{"a":1}\n{"a":2}\n'
    p = tmp_path / "f.jsonl.gz"
    p.write_bytes(gzip.compress(data))
    scan = scan_file(p, "k", {})
    assert not scan.counted and scan.lines is None
    assert scan.fingerprint == _reference_fingerprint(p.read_bytes(), "k", {})


def test_a_load_uses_the_scan_and_a_lone_cr_still_declines_the_fast_path(tmp_path, caplog, monkeypatch):
    """The fast path reads the count from the load's scan: a clean file takes it, a file with a
    lone CR goes to the exact path (and loads the same events)."""
    import logging

    good = tmp_path / "good.jsonl"
    lines = [json.dumps({"event": "E", "properties": {"time": 1768867200 + i, "distinct_id": f"u{i}"}}) for i in range(3)]
    good.write_bytes(("\n".join(lines) + "\n").encode())
    cr = tmp_path / "cr.jsonl"
    cr.write_bytes(("\r".join(lines) + "\r").encode())  # CR line ends only (old Mac tools)
    monkeypatch.setattr(fast, "ENABLED", True)
    with caplog.at_level(logging.DEBUG, logger="cohortlab.loaders.fast"), Lab() as lab:
        r = lab.load("mixpanel-events", [good])
        assert r.loaded == 3
        assert any("good.jsonl: fast path" in m for m in caplog.messages)
        assert lab.engine.query_rows("SELECT list(line ORDER BY line) FROM mp_events")[0][0] == [1, 2, 3]
        caplog.clear()
        r = lab.load("mixpanel-events", [cr])
        assert any("cr.jsonl: exact path" in m for m in caplog.messages)
        # the same events, already stored: read line by line, nothing new is loaded
        assert (r.rows_read, r.loaded, r.deduplicated) == (3, 0, 3)


def test_a_file_whose_name_holds_glob_characters_is_that_file(tmp_path):
    """`export [copy].jsonl` was read as a pattern that matched nothing ('no file matches this
    pattern'), with no way to name the file; a pattern that names no file is still a pattern."""
    from cohortlab.loaders.files import expand_paths

    odd = tmp_path / "export [copy] *1?.jsonl"
    odd.write_text('{"event":"A","properties":{"time":1772000000,"distinct_id":"u1","$insert_id":"i1"}}\n')
    (tmp_path / "c.jsonl").write_text("{}\n")
    assert expand_paths(str(odd)) == [odd]
    assert expand_paths(str(tmp_path / "[c].jsonl")) == [tmp_path / "c.jsonl"]  # no such file: a pattern
    with Lab() as lab:
        assert lab.load("mixpanel-events", str(odd)).loaded == 1


def test_a_pipe_or_a_device_is_named_for_what_it_is(tmp_path):
    """A FIFO (`<(zcat export.gz)`) or /dev/null was 'no such file or directory', which it is not:
    a load reads a file more than once (its fingerprint, then its rows), so it needs a file."""
    import os

    from cohortlab.errors import LoadError
    from cohortlab.loaders.files import expand_paths

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/null"):
        with pytest.raises(LoadError, match="not a regular file \\(a pipe, a device or a socket\\)"):
            expand_paths(str(path))
    with pytest.raises(LoadError, match="no such file or directory"):
        expand_paths(str(tmp_path / "missing.jsonl"))
