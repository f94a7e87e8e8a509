"""The typed fast path (cohortlab.loaders.fast): it takes a file only when it gives the same rows
as the exact path, and hands every other file to the exact path whole.

(Every other loader test also runs with the fast path on and off: the `parse_path` fixture.)"""

from __future__ import annotations

import gzip
import json
import logging

import pytest

from cohortlab.lab import Lab
from cohortlab.loaders import fast

T0 = 1768867200  # 2026-01-20T00:00:00Z
COLS = "event, time, distinct_id, insert_id, device_id, user_id, mparticle_user_id, properties, source_file, line"


@pytest.fixture(autouse=True)
def _once(run_once):
    """These tests choose the path themselves: once, not once per parse path."""


def _ev(event, **props):
    return json.dumps({"event": event, "properties": props}, separators=(",", ":"))


CLEAN = [
    _ev("Sign In", time=T0, distinct_id="U1", mp_lib="web", **{"$insert_id": "i1", "$user_id": "U1",
                                                              "$device_id": "D1", "$mparticle_user_id": "-7346244611012968789"}),
    _ev("Page View", time=T0 + 0.25, **{"$insert_id": "i2", "$user_id": "cust-2", "$mparticle_user_id": 9080350317581165123}),
    _ev("Page View", time=T0 + 1, distinct_id="", **{"$insert_id": "i3", "$device_id": "8f2c-01"}),
    '{"event":"Open","properties":{"time":1768867202500,"distinct_id":4611686018427387904,"$insert_id":"i4"}}',
    _ev("Open", time=str(T0 + 3), distinct_id="U5", **{"$mparticle_user_id": None, "$insert_id": 17}),
    _ev("Open", time=T0 + 4, distinct_id="U6", **{"$mparticle_user_id": "undefined"}),
    _ev("Open", time=T0 + 5, distinct_id="U7", **{"$mparticle_user_id": ""}),
    _ev("Sign In", time=T0, distinct_id="U1", **{"$insert_id": "i1"}),  # a duplicate of line 1
    _ev('Quote " and é', time=T0 + 6, distinct_id="Ü \\ 8"),
]

# one line each that the fast path cannot take exactly: the whole file goes to the exact path
DECLINED = {
    "blank line": "",
    "malformed line": '{"event":"broken","properties":{"time":',
    "float identifier": '{"event":"x","properties":{"time":1768867200,"distinct_id":"U","$mparticle_user_id":1.2e18}}',
    "float distinct_id": '{"event":"x","properties":{"time":1768867200,"distinct_id":12.5}}',
    # an integer beyond uint64 is a JSON float to DuckDB's JSON functions: the exact path keeps
    # {"$mparticle_user_id": <token>} in properties (json_float), as for 1.2e18
    "integer beyond uint64 identifier":
        '{"event":"x","properties":{"time":1768867200,"distinct_id":"U","$mparticle_user_id":100000000000000000000000000000}}',
    "integer below int64 identifier": '{"event":"x","properties":{"time":1768867200,"distinct_id":-9223372036854775809}}',
    "missing time": _ev("x", distinct_id="U"),
    "bad time": _ev("x", time="yesterday", distinct_id="U"),
    "missing distinct_id": _ev("x", time=T0),
    "numeric event name": '{"event":7,"properties":{"time":1768867200,"distinct_id":"U"}}',
    "properties not an object": '{"event":"x","properties":"not an object"}',
    "not an object": "[1, 2]",
    "two records on a line": _ev("a", time=T0, distinct_id="U") + _ev("b", time=T0, distinct_id="U"),
    "keys are case-sensitive": '{"EVENT":"x","properties":{"Time":1768867200,"distinct_id":"U"}}',
}


def _load(tmp_path, name, text, *, use_fast, gz=False, **options):
    p = tmp_path / name
    p.write_bytes(gzip.compress(text.encode(), mtime=0) if gz else text.encode())
    fast_before = fast.ENABLED
    fast.ENABLED = use_fast
    try:
        with Lab() as lab:
            r = lab.load("mixpanel-events", p, **options)
            rows = sorted(lab.engine.query_rows(f"SELECT {COLS} FROM mp_events"), key=repr)
            rejects = sorted(lab.engine.query_rows("SELECT line, reason, raw FROM rejects"), key=repr)
            counts = lab.engine.query_rows("SELECT rows_read, loaded, deduplicated, quarantined, fingerprint FROM loads")
    finally:
        fast.ENABLED = fast_before
    return (r.rows_read, r.loaded, r.deduplicated, dict(r.quarantined)), rows, rejects, counts


def _path_taken(caplog) -> list[str]:
    return [m.rsplit(": ", 1)[-1].split(" ")[0] for m in caplog.messages if "mixpanel-events" in m]


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_a_clean_file_takes_the_fast_path_with_the_same_rows_as_the_exact_path(tmp_path, caplog, gz):
    text = "\n".join(CLEAN) + "\n"
    with caplog.at_level(logging.DEBUG, logger="cohortlab.loaders.fast"):
        got = _load(tmp_path, "ev.jsonl", text, use_fast=True, gz=gz)
    assert _path_taken(caplog) == ["fast"]
    assert got == _load(tmp_path, "ev.jsonl", text, use_fast=False, gz=gz)
    summary, rows, rejects, _ = got
    assert summary == (9, 8, 1, {})
    assert rejects == []
    by_line = {r[-1]: r for r in rows}
    assert by_line[2][2] == "cust-2" and by_line[2][6] == "9080350317581165123"  # > 2^53, every digit
    assert by_line[4][2] == "4611686018427387904" and by_line[5][3] == "17"
    assert by_line[9][0] == 'Quote " and é' and by_line[9][2] == "Ü \\ 8"
    assert all(r[7] is None for r in rows)  # properties are opt-in


def test_no_final_newline_is_still_one_record_per_line(tmp_path, caplog):
    text = "\n".join(CLEAN)
    with caplog.at_level(logging.DEBUG, logger="cohortlab.loaders.fast"):
        got = _load(tmp_path, "ev.jsonl", text, use_fast=True)
    assert _path_taken(caplog) == ["fast"]
    assert got == _load(tmp_path, "ev.jsonl", text, use_fast=False)


@pytest.mark.parametrize("case", sorted(DECLINED))
def test_a_file_the_fast_path_cannot_take_goes_whole_to_the_exact_path(tmp_path, caplog, case):
    lines = CLEAN[:3] + [DECLINED[case]] + CLEAN[3:]
    text = "\n".join(lines) + "\n"
    with caplog.at_level(logging.DEBUG, logger="cohortlab.loaders.fast"):
        got = _load(tmp_path, "ev.jsonl", text, use_fast=True)
    assert _path_taken(caplog) == ["exact"]
    assert got == _load(tmp_path, "ev.jsonl", text, use_fast=False)
    (rows_read, loaded, dedup, quarantined), rows, _, _ = got
    assert rows_read == loaded + dedup + sum(quarantined.values())
    assert {r[-1] for r in rows} >= {1, 2, 3, 5}  # lines after the odd one keep their numbers


def test_a_repeated_key_reads_as_the_exact_path_reads_it(tmp_path, caplog):
    text = "\n".join(CLEAN + [
        '{"event":"dup","properties":{"time":1768867200,"distinct_id":"first","distinct_id":"second",'
        '"$mparticle_user_id":"1","$mparticle_user_id":"2"},"event":"again"}']) + "\n"
    with caplog.at_level(logging.DEBUG, logger="cohortlab.loaders.fast"):
        got = _load(tmp_path, "ev.jsonl", text, use_fast=True)
    assert _path_taken(caplog) == ["fast"]
    assert got == _load(tmp_path, "ev.jsonl", text, use_fast=False)


def test_properties_all_keeps_the_exact_path(tmp_path, caplog):
    text = "\n".join(CLEAN) + "\n"
    with caplog.at_level(logging.DEBUG, logger="cohortlab.loaders.fast"):
        _, rows, _, _ = _load(tmp_path, "ev.jsonl", text, use_fast=True, properties="all")
    assert _path_taken(caplog) == []
    assert {json.loads(r[7])["time"] for r in rows if r[-1] == 1} == {T0}


def test_sample_exports_load_the_same_either_way(tmp_path, mixpanel_data_dir):
    def load(use_fast):
        fast_before, fast.ENABLED = fast.ENABLED, use_fast
        try:
            with Lab() as lab:
                lab.load("mixpanel-events", mixpanel_data_dir / "events")
                lab.load("mixpanel-events", mixpanel_data_dir / "events")  # twice: nothing doubles
                return (sorted(lab.engine.query_rows(f"SELECT {COLS} FROM mp_events"), key=repr),
                        sorted(lab.engine.query_rows("SELECT * EXCLUDE (loaded_at) FROM loads"), key=repr))
        finally:
            fast.ENABLED = fast_before

    fast_rows, fast_loads = load(True)
    assert len(fast_rows) > 0
    assert (fast_rows, fast_loads) == load(False)
