"""mixpanel-events: raw event export JSONL -> mp_events."""

from __future__ import annotations

import gzip
import json
from datetime import datetime

import pytest

from cohortlab.loaders import LoadError

T0 = 1768867200  # 2026-01-20T00:00:00Z


def _ev(event, **props):
    return json.dumps({"event": event, "properties": props}, separators=(",", ":"))


def _rows(lab, cols="event, time, distinct_id, insert_id, device_id, user_id, mparticle_user_id, line"):
    return lab.engine.query_rows(f"SELECT {cols} FROM mp_events ORDER BY line")


def test_known_rows(lab, write, balanced):
    lines = [
        _ev("Signed up", time=T0, distinct_id="U1", **{"$insert_id": "i1", "$user_id": "U1", "$device_id": "D1",
                                                       "$mparticle_user_id": "-7346244611012968789"}),
        # no distinct_id: Simplified ID Merge derives it from $user_id, else "$device:" + $device_id
        _ev("Page View", time=T0 + 0.25, **{"$insert_id": "i2", "$user_id": "cust-2",
                                            "$mparticle_user_id": 9080350317581165123}),
        _ev("Page View", time=T0 + 1, distinct_id="", **{"$insert_id": "i3", "$device_id": "8f2c-01"}),
        # numeric distinct_id keeps its exact decimal text; ms time auto-detected
        '{"event":"Open","properties":{"time":1768867202500,"distinct_id":4611686018427387904,'
        '"$insert_id":"i4","$mparticle_user_id":1.2e18}}',
        _ev("Open", time=T0 + 3, distinct_id="U5", **{"$mparticle_user_id": None}),
        _ev("Open", time=T0 + 4, distinct_id="U6", **{"$mparticle_user_id": "undefined"}),
        _ev("Open", time=T0 + 5, distinct_id="U7", **{"$mparticle_user_id": ""}),
    ]
    p = write("events.jsonl", "\n".join(lines) + "\n")
    r = balanced(lab.load("mixpanel-events", p, properties="all"))
    assert (r.rows_read, r.loaded, r.deduplicated, r.n_quarantined) == (7, 7, 0, 0)
    t = lambda s: datetime.fromisoformat(s)  # noqa: E731
    assert _rows(lab) == [
        ("Signed up", t("2026-01-20 00:00:00"), "U1", "i1", "D1", "U1", "-7346244611012968789", 1),
        ("Page View", t("2026-01-20 00:00:00.250"), "cust-2", "i2", None, "cust-2", "9080350317581165123", 2),
        ("Page View", t("2026-01-20 00:00:01"), "$device:8f2c-01", "i3", "8f2c-01", None, None, 3),
        ("Open", t("2026-01-20 00:00:02.500"), "4611686018427387904", "i4", None, None, "1.2e18", 4),
        ("Open", t("2026-01-20 00:00:03"), "U5", None, None, None, None, 5),
        ("Open", t("2026-01-20 00:00:04"), "U6", None, None, None, "undefined", 6),
        ("Open", t("2026-01-20 00:00:05"), "U7", None, None, None, "", 7),
    ]
    props = json.loads(lab.engine.query_rows("SELECT properties FROM mp_events WHERE line = 1")[0][0])
    assert props["$insert_id"] == "i1" and props["time"] == T0
    assert lab.engine.query_rows("SELECT DISTINCT source_file FROM mp_events") == [(str(p),)]


def test_time_unit_option(lab, write):
    p = write("ms.jsonl", _ev("a", time=1768867200123, distinct_id="U") + "\n"
              + _ev("b", time=1768867, distinct_id="U") + "\n")
    lab.load("mixpanel-events", p, time_unit="ms")
    assert [r[0] for r in _rows(lab, "time")] == [
        datetime(2026, 1, 20, 0, 0, 0, 123000), datetime(1970, 1, 1, 0, 29, 28, 867000)]
    p2 = write("s.jsonl", _ev("c", time=1768867200, distinct_id="U") + "\n"
               + _ev("d", time=1768867200123, distinct_id="U") + "\n")
    r = lab.load("mixpanel-events", p2, time_unit="s")
    # 1.7e12 seconds is beyond year 9999: bad_time, not a silent wrong date
    assert r.loaded == 1 and dict(r.quarantined) == {"bad_time": 1}
    with pytest.raises(ValueError, match="time_unit"):
        lab.load("mixpanel-events", p2, time_unit="minutes")
    with pytest.raises(ValueError, match="unknown option"):
        lab.load("mixpanel-events", p2, cohort="x")


@pytest.mark.parametrize("layout", ["jsonl", "array"])
def test_a_json_float_mpid_keeps_its_token_beside_other_mpid_keys(lab, write, balanced, layout):
    records = [
        '{"event": "a", "properties": {"time": %d, "distinct_id": "d1", "$mparticle_user_id": 1.2e18, '
        '"history": [{"$mparticle_user_id": "4"}, {"$mparticle_user_id": 7}]}}' % T0,
        '{"event": "a", "properties": {"time": %d, "distinct_id": "d2", "$mparticle_user_id": 9.08e+18}}' % T0,
        '{"event": "a", "properties": {"time": %d, "distinct_id": "d3", "$mparticle_user_id": 1.2e18, '
        '"x": {"$mparticle_user_id": 1.20e18}}}' % T0,
    ]
    if layout == "jsonl":  # each line is a document
        balanced(lab.load("mixpanel-events", write("ev.json", "\n".join(records) + "\n")))
        expected = [("d1", "1.2e18"), ("d2", "9.08e+18"), ("d3", "1200000000000000000.0")]
    else:  # the array is one document: d3's two spellings of 1.2e18 would make d1's unknown too
        balanced(lab.load("mixpanel-events", write("ev.json", "[" + ",\n".join(records[:2]) + "]")))
        expected = [("d1", "1.2e18"), ("d2", "9.08e+18")]
    assert _rows(lab, "distinct_id, mparticle_user_id") == expected


@pytest.mark.parametrize("layout", ["jsonl", "array"])
def test_a_json_float_identifier_keeps_its_exported_token(lab, write, balanced, layout):
    """distinct_id (and in JSONL $user_id, $device_id, $insert_id) written as a JSON float is its
    exported text: two events whose distinct_ids are the same double spelled apart are two events
    of two users, not one event and a duplicate (JSONL: each line is its own document)."""
    records = ['{"event": "a", "properties": {"time": %d, "distinct_id": 9080350317581165123.0, "$insert_id": "i"}}' % T0,
               '{"event": "a", "properties": {"time": %d, "distinct_id": 1.2e18, "$insert_id": "i", '
               '"nested": {"distinct_id": 7}}}' % T0,
               '{"event": "a", "properties": {"time": %d, "$user_id": 1.5e3, "$insert_id": 2.50}}' % T0]
    twin = '{"event": "a", "properties": {"time": %d, "distinct_id": 9.080350317581165123e18, "$insert_id": "i"}}' % T0
    if layout == "jsonl":
        r = balanced(lab.load("mixpanel-events", write("ev.json", "\n".join(records + [twin]) + "\n")))
        assert (r.loaded, r.deduplicated) == (4, 0)
        assert _rows(lab, "distinct_id, user_id, insert_id") == [
            ("9080350317581165123.0", None, "i"), ("1.2e18", None, "i"), ("1.5e3", "1.5e3", "2.50"),
            ("9.080350317581165123e18", None, "i")]
    else:  # one document: distinct_id recovered by value (user_id, insert_id keep DuckDB's text)
        balanced(lab.load("mixpanel-events", write("ev.json", "[" + ",\n".join(records) + "]")))
        assert [r[0] for r in _rows(lab, "distinct_id")] == ["9080350317581165123.0", "1.2e18", "1500.0"]


def test_properties_are_opt_in_and_none_keeps_every_other_column(lab, write, balanced):
    lines = [_ev("a", time=T0, distinct_id="U1", mp_lib="web", **{"$insert_id": "i1", "$mparticle_user_id": 1.2e18}),
             _ev("a", time=T0, distinct_id="U1", mp_lib="web", **{"$insert_id": "i1"}),  # duplicate
             "{not json", _ev("b", time=T0 + 1, distinct_id="U2")]
    p = write("ev.jsonl", "\n".join(lines) + "\n")
    r = balanced(lab.load("mixpanel-events", p))  # the default: properties=none
    assert (r.rows_read, r.loaded, r.deduplicated, r.quarantined) == (4, 2, 1, {"malformed_json": 1})
    assert _rows(lab, "event, distinct_id, insert_id, mparticle_user_id, properties, line") == [
        # the exact token json.dumps wrote; a JSON-float $mparticle_user_id keeps its JSON type
        ("a", "U1", "i1", "1.2e+18", '{"$mparticle_user_id": 1.2e+18}', 1), ("b", "U2", None, None, None, 4)]
    assert _rows(lab, "json_type(properties, '$.\"$mparticle_user_id\"')") == [("DOUBLE",), (None,)]
    # another option value is another fingerprint: the same file loads again, every row a duplicate
    assert lab.load("mixpanel-events", p, properties="none").skipped == [str(p)]
    again = balanced(lab.load("mixpanel-events", p, properties="all"))
    assert (again.loaded, again.deduplicated, again.skipped) == (0, 3, [])
    with pytest.raises(ValueError, match="properties must be one of all, none"):
        lab.load("mixpanel-events", p, properties="some")


def test_rejects_name_line_and_reason(lab, write, balanced):
    text = "\n".join([
        _ev("ok", time=T0, distinct_id="U1"),
        '{"event":"broken","properties":{"time":',  # 2 malformed
        '[1, 2]',  # 3 not an object
        '',  # 4 blank: not a record
        json.dumps({"properties": {"time": T0, "distinct_id": "U"}}),  # 5
        json.dumps({"event": "x", "properties": {"distinct_id": "U"}}),  # 6
        json.dumps({"event": "x", "properties": {"time": "yesterday", "distinct_id": "U"}}),  # 7
        json.dumps({"event": "x", "properties": {"time": T0}}),  # 8
        json.dumps({"event": "x", "properties": {"time": T0, "distinct_id": None, "$device_id": None}}),  # 9
        json.dumps({"event": "x", "properties": "not an object"}),  # 10
        json.dumps({"event": "x", "properties": {"time": 1e300, "distinct_id": "U"}}),  # 11
        json.dumps({"event": "", "properties": {"time": T0, "distinct_id": "U"}}),  # 12
        json.dumps({"event": "x"}),  # 13 no properties: no time
        json.dumps({"event": "x", "properties": None}),  # 14
        json.dumps({"event": "x", "properties": [{"time": T0, "distinct_id": "U"}]}),  # 15
        # a distinct_id that is no identifier is not replaced by $user_id / $device_id
        json.dumps({"event": "x", "properties": {"time": T0, "distinct_id": {"id": "U"}, "$user_id": "u1"}}),  # 16
        json.dumps({"event": "x", "properties": {"time": T0, "distinct_id": True, "$device_id": "d2"}}),  # 17
        json.dumps({"event": "x", "properties": {"time": T0, "distinct_id": ["U"], "$user_id": "u3"}}),  # 18
    ]) + "\n"
    p = write("bad.jsonl", text)
    r = balanced(lab.load("mixpanel-events", p))
    assert r.rows_read == 17 and r.loaded == 1
    rejects = lab.engine.query_rows("SELECT source_file, line, reason, kind FROM rejects ORDER BY line")
    assert [(ln, reason) for _, ln, reason, _ in rejects] == [
        (2, "malformed_json"), (3, "not_an_object"), (5, "missing_event"), (6, "missing_time"),
        (7, "bad_time"), (8, "missing_distinct_id"), (9, "missing_distinct_id"), (10, "bad_properties"),
        (11, "bad_time"), (12, "missing_event"), (13, "missing_time"), (14, "missing_time"),
        (15, "bad_properties"), (16, "bad_distinct_id"), (17, "bad_distinct_id"), (18, "bad_distinct_id"),
    ]
    assert {s for s, _, _, _ in rejects} == {str(p)} and {k for *_, k in rejects} == {"mixpanel-events"}
    raw = lab.engine.query_rows("SELECT raw FROM rejects WHERE line = 2")[0][0]
    assert raw == '{"event":"broken","properties":{"time":'


def test_dedup_within_file_and_against_db(lab, write, balanced):
    a = _ev("Open", time=T0, distinct_id="U1", **{"$insert_id": "x1"})
    b = _ev("Open", time=T0, distinct_id="U1", **{"$insert_id": "x2"})  # other insert_id: kept
    c = _ev("Open", time=T0, distinct_id="U1")  # no insert_id
    r1 = balanced(lab.load("mixpanel-events", write("a.jsonl", "\n".join([a, a, b, c, c]) + "\n")))
    assert (r1.rows_read, r1.loaded, r1.deduplicated) == (5, 3, 2)
    # a later export overlapping the first: the overlap is deduplicated against mp_events
    d = _ev("Open", time=T0 + 60, distinct_id="U1", **{"$insert_id": "x3"})
    r2 = balanced(lab.load("mixpanel-events", write("b.jsonl", "\n".join([b, c, d, d]) + "\n")))
    assert (r2.rows_read, r2.loaded, r2.deduplicated) == (4, 1, 3)
    assert lab.engine.query_rows("SELECT count(*) FROM mp_events")[0][0] == 4
    # the same time written as ms is the same event
    e = _ev("Open", time=(T0 + 60) * 1000, distinct_id="U1", **{"$insert_id": "x3"})
    r3 = lab.load("mixpanel-events", write("c.jsonl", e + "\n"))
    assert (r3.loaded, r3.deduplicated) == (0, 1)


@pytest.mark.parametrize("key_hash", ["real", "every_row_collides"])
def test_dedup_across_the_files_of_one_load(lab, write, balanced, monkeypatch, key_hash):
    """Stored events are matched through key hashes, then on the exact key: with a hash that is
    the same for every row (all collide) the counts must not change."""
    from cohortlab.loaders import mixpanel_events

    if key_hash == "every_row_collides":
        monkeypatch.setattr(mixpanel_events, "KEY_HASH", "0::UBIGINT")
    a, b, c = (_ev("Open", time=T0 + i, distinct_id="U1", **{"$insert_id": f"x{i}"}) for i in range(3))
    lab.load("mixpanel-events", write("old.jsonl", a + "\n"))
    write("dir/1.jsonl", "\n".join([a, b, b]) + "\n")   # a: stored before; b twice in the file
    write("dir/2.jsonl", "\n".join([b, c]) + "\n")      # b: loaded by the file before, same call
    r = balanced(lab.load("mixpanel-events", write("dir/1.jsonl", "\n".join([a, b, b]) + "\n").parent))
    assert (r.rows_read, r.loaded, r.deduplicated) == (5, 2, 3)
    per_file = lab.engine.query_rows(
        "SELECT loaded, deduplicated FROM loads WHERE load_id IN ({}) ORDER BY load_id".format(
            ", ".join(map(str, r.load_ids))))
    assert per_file == [(1, 2), (1, 1)]
    assert sorted(x[0] for x in lab.engine.query_rows("SELECT insert_id FROM mp_events")) == ["x0", "x1", "x2"]


def test_gzip_detected_by_content(lab, write, balanced):
    text = _ev("a", time=T0, distinct_id="U1") + "\n" + _ev("b", time=T0, distinct_id="U2") + "\n"
    r = balanced(lab.load("mixpanel-events", write("export.jsonl", text, gz=True)))  # no .gz suffix
    assert r.loaded == 2
    r2 = lab.load("mixpanel-events", write("plain.jsonl.gz", text.replace("U1", "U3")))  # not gzip
    assert (r2.loaded, r2.deduplicated) == (1, 1)  # U2's event was in the first file
    assert lab.engine.query_rows("SELECT count(*) FROM mp_events")[0][0] == 3


def test_truncated_gzip_is_a_load_error_and_changes_nothing(lab, write, tmp_path, table_snapshot):
    good = write("good.jsonl", _ev("a", time=T0, distinct_id="U1") + "\n")
    data = gzip.compress(("\n".join(_ev("e", time=T0 + i, distinct_id=f"U{i}") for i in range(2000)) + "\n").encode())
    bad = tmp_path / "trunc.jsonl.gz"
    bad.write_bytes(data[: len(data) // 2])
    before = table_snapshot()
    with pytest.raises(LoadError) as e:
        lab.load("mixpanel-events", [good, bad])
    assert str(bad) in str(e.value)
    assert table_snapshot() == before


@pytest.mark.parametrize("text, match", [
    ("", "empty file"),
    ("\n\n  \n", "empty file"),
    ("event,time\nx,1\n", "unrecognised format"),
    ('{"event": "x",\n "properties": {"time": ', "not valid JSON|Malformed|malformed|parse"),
])
def test_file_level_errors(lab, write, text, match):
    p = write("f.jsonl", text)
    with pytest.raises(LoadError, match=match) as e:
        lab.load("mixpanel-events", p)
    assert str(p) in str(e.value)
    assert lab.engine.query_rows("SELECT count(*) FROM loads")[0][0] == 0


@pytest.mark.parametrize("layout", ["array", "documents"])
@pytest.mark.parametrize("bad_at", [1, 3, 5])
def test_a_malformed_record_of_a_json_document_is_named_by_its_line_and_column(lab, write, layout, bad_at):
    """DuckDB names the record by its count and a byte inside it; the error names the line and
    column of the file where the JSON breaks (a pasted fragment: see test_mixpanel_cohorts)."""
    records = [json.dumps({"event": "a", "properties": {"time": T0, "distinct_id": f"U{i}"}}, indent=1)
               for i in range(1, 6)]  # pretty-printed: 7 lines each
    records[bad_at - 1] = '{"event": "a",\n "properties": {"time": 1, "distinct_id" "U"}}'
    text = "[" + ",\n".join(records) + "]" if layout == "array" else "\n\n".join(records)
    p = write("f.json", text)
    line = 1 + (7 if layout == "array" else 8) * (bad_at - 1) + 1  # the bad record's second line
    with pytest.raises(LoadError, match=rf"f\.json: malformed JSON at line {line}, column 42: Expecting ':' delimiter$"):
        lab.load("mixpanel-events", p)
    assert lab.engine.query_rows("SELECT count(*) FROM mp_events")[0][0] == 0


def test_all_or_nothing(lab, write, table_snapshot):
    lab.load("mixpanel-events", write("first.jsonl", _ev("a", time=T0, distinct_id="U0") + "\n"))
    good = write("good.jsonl", _ev("a", time=T0, distinct_id="U1") + "\n")
    empty = write("empty.jsonl", "")
    before = table_snapshot()
    with pytest.raises(LoadError, match="empty"):
        lab.load("mixpanel-events", [good, empty])
    assert table_snapshot() == before


def test_loading_twice_changes_nothing(lab, write, table_snapshot, balanced):
    p = write("e.jsonl", _ev("a", time=T0, distinct_id="U1") + "\n" + "{bad\n")
    balanced(lab.load("mixpanel-events", p))
    before = table_snapshot()
    r = lab.load("mixpanel-events", p)
    assert r.skipped == [str(p)] and r.files == []
    assert table_snapshot() == before


def test_json_array_and_pretty_documents(lab, write, balanced):
    arr = write("arr.json", "[\n" + ",\n".join([
        _ev("a", time=T0, distinct_id="U1", **{"$mparticle_user_id": 1.5e18}),
        _ev("b", time=T0, distinct_id="U2", **{"$mparticle_user_id": -9223372036854775808}),
        '{"event":"c","properties":{"time":1768867200,"distinct_id":"U3","$mparticle_user_id":2.5E+18}}',
    ]) + "\n]\n")
    r = balanced(lab.load("mixpanel-events", arr))
    assert r.loaded == 3
    assert _rows(lab, "distinct_id, mparticle_user_id, line") == [
        ("U1", "1.5e+18", 1), ("U2", "-9223372036854775808", 2), ("U3", "2.5E+18", 3)]
    docs = write("docs.json", json.dumps({"event": "d", "properties": {"time": T0, "distinct_id": "U4"}}, indent=2)
                 + "\n" + json.dumps({"event": "e", "properties": {"time": T0, "distinct_id": "U5"}}, indent=2))
    balanced(lab.load("mixpanel-events", docs))
    assert lab.engine.query_rows("SELECT distinct_id, line FROM mp_events WHERE source_file = ? ORDER BY line",
                                 [str(docs)]) == [("U4", 1), ("U5", 2)]


def test_float_token_recovered_from_the_line(lab, write):
    # DuckDB would print 1200000000000000000.0; the loader keeps the exported token
    lines = [
        '{"event":"a","properties":{"time":1768867200,"distinct_id":"U1","$mparticle_user_id":1.2e18}}',
        '{"event":"a","properties":{"time":1768867200,"distinct_id":"U2","$mparticle_user_id":-7.3462446110129688e18}}',
        '{"event":"a","properties":{"time":1768867200,"distinct_id":"U3","$mparticle_user_id":12.50}}',
        '{"event":"a","properties":{"time":1768867200,"distinct_id":"U4","$mparticle_user_id":18446744073709551616}}',
    ]
    lab.load("mixpanel-events", write("f.jsonl", "\n".join(lines) + "\n"))
    assert _rows(lab, "mparticle_user_id") == [
        ("1.2e18",), ("-7.3462446110129688e18",), ("12.50",), ("18446744073709551616",)]


def test_sample_files(lab, mixpanel_data_dir, balanced):
    r = balanced(lab.load("mixpanel-events", mixpanel_data_dir / "events"))
    assert (r.rows_read, r.loaded, r.deduplicated, r.n_quarantined) == (15, 14, 1, 0)
    q = lab.engine.query_rows
    assert q("SELECT distinct_id FROM mp_events WHERE event = 'App Open'") == [
        ("$device:8f2c1e4a-7b7d-4d0e-9c55-2a1f3b9e0c01",)]
    assert q("SELECT mparticle_user_id FROM mp_events WHERE distinct_id = 'cust-10'") == [("1.2e18",)]
    assert q("SELECT time FROM mp_events WHERE insert_id = '7c0e9b2d4f6a48e1a001'") == [
        (datetime(2026, 2, 24, 0, 0, 0, 123000),)]
    assert q("SELECT distinct_id, mparticle_user_id FROM mp_events WHERE insert_id = '7c0e9b2d4f6a48e1a004'") == [
        ("cust-5", "123456789012345678")]


def test_malformed_first_line_is_a_reject_not_a_file_error(lab, write, balanced):
    p = write("f.jsonl", '{"event":"a","properties":{"time":\n' + _ev("b", time=T0, distinct_id="U1") + "\n")
    r = balanced(lab.load("mixpanel-events", p))
    assert (r.loaded, dict(r.quarantined)) == (1, {"malformed_json": 1})
    assert lab.engine.query_rows("SELECT line, reason FROM rejects") == [(1, "malformed_json")]


@pytest.mark.parametrize("gz", [False, True])
def test_an_export_that_mixpanel_cut_short_is_a_load_error(lab, write, table_snapshot, gz):
    """The raw export ends a response it stopped before the end with a plain line "terminated
    early": the file holds only part of the range's events. That is a failed export, not an
    export with one bad record: the load stops, names the line, and changes nothing."""
    good = write("good.jsonl", _ev("a", time=T0, distinct_id="U0") + "\n")
    lines = [_ev("a", time=T0, distinct_id="U1", **{"$insert_id": "i1"}), _ev("b", time=T0 + 1, distinct_id="U2"),
             "terminated early"]
    cut = write("cut.jsonl", "\n".join(lines) + "\n", gz=gz)
    before = table_snapshot()
    with pytest.raises(LoadError, match="terminated early") as e:
        lab.load("mixpanel-events", [good, cut])
    assert f"{cut}:3" in str(e.value)
    assert table_snapshot() == before
    # Mixpanel may also append the words to the record it cut off, with no line break between
    # (mixpanel-import's exporter, ak--47/mixpanel-import components/exporters.js, guards
    # against it): that line is the end of a cut export too, not one malformed record
    glued = write("glued.jsonl", lines[0] + "\n" + lines[1][:40] + "terminated early\n", gz=gz)
    with pytest.raises(LoadError, match="terminated early") as e:
        lab.load("mixpanel-events", [good, glued])
    assert f"{glued}:2" in str(e.value)
    assert table_snapshot() == before
    # the same words inside a record are data
    ok = write("ok.jsonl", _ev("terminated early", time=T0, distinct_id="U3") + "\n")
    assert lab.load("mixpanel-events", ok).loaded == 1


def test_a_lone_surrogate_escape_is_read_as_its_text_an_escaped_pair_loads(lab, write, balanced):
    """docs/loading.md#limits: DuckDB's JSON parser refuses a lone surrogate (a string cut in the
    middle of an emoji); the file is read again with that escape as its text (the six characters
    \\ud83d), with a warning, and every record loads. An escaped pair is an emoji like any other.
    (Until loaders version 6 the record was quarantined as malformed_json.)"""
    lines = [
        '{"event":"Open","properties":{"time":1768867200,"distinct_id":"U1","$insert_id":"i1","title":"cut \\ud83d"}}',
        '{"event":"Open","properties":{"time":1768867201,"distinct_id":"U2","$insert_id":"i2","title":"ok \\ud83d\\ude00"}}',
    ]
    r = balanced(lab.load("mixpanel-events", write("events.jsonl", "\n".join(lines) + "\n"), properties="all"))
    assert (r.loaded, dict(r.quarantined), len(r.warnings)) == (2, {}, 1)
    assert "1 lone surrogate escape(s)" in r.warnings[0] and "first on line 1: \\ud83d" in r.warnings[0]
    assert lab.engine.query_rows("SELECT distinct_id, properties->>'title' FROM mp_events ORDER BY line") == [
        ("U1", "cut \\ud83d"), ("U2", "ok \U0001F600")]


@pytest.mark.parametrize("layout", ["jsonl", "array"])  # the typed fast path (JSONL), the exact path
def test_an_event_time_before_1971_loads_as_read_with_a_warning(lab, write, balanced, layout):
    # Mixpanel does not accept event times before 1971-01-01: such a time in an export is a wrong
    # number (negative, seconds read as milliseconds). It loads as read, as before, and the load
    # warns naming the file, the field, the count and the first event's line and time
    # (`time: -1` loaded as 1969-12-31 without a word)
    records = [
        _ev("a", time=T0, distinct_id="U1"),
        _ev("b", time=-1, distinct_id="U2"),
        _ev("c", time="86400.5", distinct_id="U3"),
        _ev("d", time=31536000, distinct_id="U4"),  # 1971-01-01T00:00:00: no warning
    ]
    text = "\n".join(records) + "\n" if layout == "jsonl" else "[\n" + ",\n".join(records) + "\n]"
    p = write(f"early.{'jsonl' if layout == 'jsonl' else 'json'}", text)
    r = balanced(lab.load("mixpanel-events", p))
    assert (r.loaded, r.n_quarantined) == (4, 0)
    assert [row[0] for row in _rows(lab, "time")] == [
        datetime(2026, 1, 20), datetime(1969, 12, 31, 23, 59, 59), datetime(1970, 1, 2, 0, 0, 0, 500000),
        datetime(1971, 1, 1)]
    assert r.warnings == [
        f"{p}: 2 event(s) give properties.time before 1971-01-01 (line 2: -1, read as 1969-12-31 "
        "23:59:59); Mixpanel does not accept such times: is the time wrong (a negative number, or seconds "
        "read as milliseconds)? Loaded as read"]
    # seconds read as milliseconds (-o time_unit=ms): 1970-01-21
    r = lab.load("mixpanel-events", write("ms.jsonl", _ev("e", time=1772323200, distinct_id="U5") + "\n"),
                 time_unit="ms")
    assert len(r.warnings) == 1 and "(line 1: 1772323200, read as 1970-01-21 12:18:43.200000)" in r.warnings[0]
    with pytest.raises(Exception, match="before 1971-01-01"):  # --strict: a warning fails the load
        lab.load("mixpanel-events", write("strict.jsonl", records[1] + "\n"), strict=True)
    assert lab.load("mixpanel-events", write("fine.jsonl", records[0] + "\n")).warnings == []


@pytest.mark.parametrize("layout", ["jsonl", "array"])
def test_a_json_float_mpid_keeps_its_token_beside_an_integer_of_the_same_float_value(lab, write, balanced, layout):
    """A nested integer MPID whose float value equals the event's JSON-float $mparticle_user_id
    is another value, not a second spelling of the float: the float keeps the file's token."""
    records = [
        '{"event": "a", "properties": {"time": %d, "distinct_id": "d1", "$insert_id": "i1", '
        '"ctx": {"$mparticle_user_id": 9080350317581165124}, "$mparticle_user_id": 9080350317581165123.0}}' % T0,
        '{"event": "a", "properties": {"time": %d, "distinct_id": "d2", "$insert_id": "i2", '
        '"$mparticle_user_id": 9080350317581165125}}' % T0,
    ]
    text = "\n".join(records) + "\n" if layout == "jsonl" else "[" + ",\n".join(records) + "]"
    balanced(lab.load("mixpanel-events", write("ev.json", text)))
    assert _rows(lab, "distinct_id, mparticle_user_id") == [("d1", "9080350317581165123.0"),
                                                             ("d2", "9080350317581165125")]
