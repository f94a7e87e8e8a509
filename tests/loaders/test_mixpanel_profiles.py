"""mixpanel-profiles: Engage pages / result JSONL -> mp_profiles."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from cohortlab.loaders import LoadError, StrictLoadError


def _page(results, page=0, **extra):
    return {"page": page, "page_size": 1000, "session_id": "1234567890-EXAMPL", "status": "ok",
            "total": len(results or []), "results": results, **extra}


def _rows(lab, where="TRUE"):
    return lab.engine.query_rows(
        "SELECT distinct_id, mparticle_user_id, email, phone, created, last_seen, line "
        f"FROM mp_profiles WHERE {where} ORDER BY line, distinct_id")


def test_pretty_pages_known_rows(lab, write, balanced):
    p0 = _page([
        {"$distinct_id": "U1", "$properties": {"$created": "2025-12-12T11:20:47", "$email": "a@example.com",
                                               "$phone": "+15555550100", "$last_seen": "2026-01-20T23:08:40",
                                               "$mparticle_user_id": "-7346244611012968789"}},
        {"$distinct_id": "$device:D9", "$properties": {"$last_seen": "2026-01-21T10:00:00"}},
    ])
    p1 = _page([{"$distinct_id": 9080350317581165123,
                 "$properties": {"$created": 1700000000, "$last_seen": "not a date", "$email": 42,
                                 "$mparticle_user_id": 9080350317581165123}}], page=1)
    # two pretty-printed pages one after the other in one file
    f = write("engage.json", json.dumps(p0, indent=2) + "\n" + json.dumps(p1, indent=4) + "\n")
    r = balanced(lab.load("mixpanel-profiles", f))
    assert (r.rows_read, r.loaded, r.deduplicated, r.n_quarantined) == (3, 3, 0, 0)
    assert _rows(lab) == [
        ("U1", "-7346244611012968789", "a@example.com", "+15555550100",
         datetime(2025, 12, 12, 11, 20, 47), datetime(2026, 1, 20, 23, 8, 40), 1),
        ("$device:D9", None, None, None, None, datetime(2026, 1, 21, 10, 0), 2),
        # odd types: not a reject; an epoch number is a date, a string that is no date NULL; a
        # number as email keeps its text
        ("9080350317581165123", "9080350317581165123", "42", None, datetime(2023, 11, 14, 22, 13, 20), None, 3),
    ]
    props = json.loads(lab.engine.query_rows("SELECT properties FROM mp_profiles WHERE distinct_id = 'U1'")[0][0])
    assert props["$email"] == "a@example.com" and props["$phone"] == "+15555550100"


@pytest.mark.parametrize("layout", ["jsonl", "page"])
def test_profile_dates_given_as_epoch_numbers_are_dates(lab, write, balanced, layout):
    """Imported profiles can carry `$last_seen` / `$created` as epoch seconds or milliseconds: they
    were NULL without a word, which left the member's last activity unknown."""
    results = [
        {"$distinct_id": "s", "$properties": {"$last_seen": 1614853230, "$created": 1614853230.5}},
        {"$distinct_id": "ms", "$properties": {"$last_seen": 1614853230000}},
        {"$distinct_id": "iso", "$properties": {"$last_seen": "2021-03-04T10:20:30"}},
        {"$distinct_id": "text", "$properties": {"$last_seen": "1614853230", "$created": True}},
    ]
    text = ("\n".join(json.dumps(r) for r in results) + "\n" if layout == "jsonl"
            else json.dumps(_page(results)))
    balanced(lab.load("mixpanel-profiles", write("p.json", text)))
    got = {d: (c, ls) for d, _, _, _, c, ls, _ in _rows(lab)}
    assert got == {
        "s": (datetime(2021, 3, 4, 10, 20, 30, 500000), datetime(2021, 3, 4, 10, 20, 30)),
        "ms": (None, datetime(2021, 3, 4, 10, 20, 30)),
        "iso": (None, datetime(2021, 3, 4, 10, 20, 30)),
        "text": (None, None),  # a string is read as an ISO time only; true is no date
    }


@pytest.mark.parametrize("layout", ["jsonl", "page"])
def test_a_profile_date_before_1971_loads_as_read_with_a_warning(lab, write, balanced, layout):
    """A `$created` or `$last_seen` read as a time before 1971-01-01 (an epoch 0 or a small number, in
    seconds by the 1e11 rule; a date Mixpanel rendered from one) is no real date of a profile, and a
    `$last_seen` read so makes its member look inactive since 1970; it loaded without a word, where
    an event's time so early warns. Loaded as read, with a warning naming the field,
    the count, the first line, its value and the time read, whichever path read the file."""
    results = [
        {"$distinct_id": "ok", "$properties": {"$last_seen": 1772323200, "$created": 1772323200000}},
        {"$distinct_id": "zero", "$properties": {"$last_seen": 0, "$created": "2026-03-01T00:00:00"}},
        {"$distinct_id": "day", "$properties": {"$last_seen": 86400}},
        {"$distinct_id": "iso", "$properties": {"$created": "1970-01-01T00:00:00", "$last_seen": -1}},
    ]
    text = ("\n".join(json.dumps(r) for r in results) + "\n" if layout == "jsonl"
            else json.dumps(_page(results)))
    r = balanced(lab.load("mixpanel-profiles", write("p.json", text)))
    assert {d: (c, ls) for d, _, _, _, c, ls, _ in _rows(lab)} == {
        "ok": (datetime(2026, 3, 1), datetime(2026, 3, 1)),
        "zero": (datetime(2026, 3, 1), datetime(1970, 1, 1)),
        "day": (None, datetime(1970, 1, 2)),
        "iso": (datetime(1970, 1, 1), datetime(1969, 12, 31, 23, 59, 59)),
    }
    assert [w.split(": ", 1)[1] for w in r.warnings] == [
        "1 profile(s) give $created before 1971-01-01 (line 4: \"1970-01-01T00:00:00\", read as 1970-01-01 "
        "00:00:00): no real date of a profile (0, a negative number, a number in another unit than seconds or "
        "milliseconds?); loaded as read",
        "3 profile(s) give $last_seen before 1971-01-01 (line 2: 0, read as 1970-01-01 00:00:00): no real date "
        "of a profile (0, a negative number, a number in another unit than seconds or milliseconds?); loaded as read",
    ]
    with pytest.raises(StrictLoadError, match=r"\$last_seen before 1971-01-01"):
        lab.load("mixpanel-profiles", write("q.json", text.replace('"$distinct_id": "ok"', '"$distinct_id": "ok2"')), strict=True)


def test_pipeline_and_member_profiles_warn_of_a_date_before_1971(lab, write, balanced):
    """The same warning where Data Pipelines profiles and members pages carrying `$properties`
    write profiles."""
    pl = write("people.json", json.dumps({"distinct_id": "a", "properties": {"$last_seen": 0}}) + "\n")
    assert [w.split(": ", 1)[1][:46] for w in balanced(lab.load("mixpanel-pipeline-profiles", pl)).warnings] == [
        "1 profile(s) give $last_seen before 1971-01-01"]
    page = _page([{"$distinct_id": "b", "$properties": {"$created": 100}}], as_of="2026-03-01T00:00:00Z")
    r = balanced(lab.load("mixpanel-members", write("m.json", json.dumps(page)), cohort="C"))
    assert [w.split(": ", 1)[1][:44] for w in r.warnings if "1971" in w] == [
        "1 profile(s) give $created before 1971-01-01"]


def test_array_of_pages_and_position_numbering(lab, write, balanced):
    pages = [_page([{"$distinct_id": f"U{i}{k}", "$properties": {}} for k in range(3)], page=i) for i in range(3)]
    pages[1]["results"] = []  # an empty page in the middle takes no position
    f = write("pages.json", json.dumps(pages))
    r = balanced(lab.load("mixpanel-profiles", f))
    assert r.loaded == 6
    assert [(d, ln) for d, *_, ln in _rows(lab)] == [
        ("U00", 1), ("U01", 2), ("U02", 3), ("U20", 4), ("U21", 5), ("U22", 6)]


@pytest.mark.parametrize("layout", ["page", "jsonl"])
def test_a_json_float_mpid_keeps_its_token_beside_other_mpid_keys(lab, write, balanced, layout):
    """The exact token of a JSON-float $mparticle_user_id is read from the text, matched by value:
    a nested key elsewhere (a history list) does not disturb it; a value spelled two ways in one
    document (a line of JSONL; a whole page) keeps DuckDB's text, as which is its own is unknown."""
    results = [
        '{"$distinct_id": "d1", "$properties": {"$mparticle_user_id": 4611686018427387904.00}}',
        '{"$distinct_id": "d2", "$properties": {"$mparticle_user_id": 1.2e18, "history": '
        '[{"$mparticle_user_id": "4"}, {"$mparticle_user_id": 7}, {"$mparticle_user_id": 9.5e17}]}}',
        '{"$distinct_id": "d3", "$properties": {"$mparticle_user_id": 1.2e18, "old": {"$mparticle_user_id": 1.20e18}}}',
    ]
    if layout == "page":  # the page is one document: d3 (a second page) in a file of its own
        page = '{{"page": 0, "page_size": 1000, "status": "ok", "results": [\n{}]}}'.format
        balanced(lab.load("mixpanel-profiles", [write("p.json", page(",\n".join(results[:2]))),
                                                write("p2.json", page(results[2]))]))
    else:
        balanced(lab.load("mixpanel-profiles", write("p.json", "\n".join(results) + "\n")))
    assert lab.engine.query_rows("SELECT distinct_id, mparticle_user_id FROM mp_profiles ORDER BY 1") == [
        ("d1", "4611686018427387904.00"), ("d2", "1.2e18"), ("d3", "1200000000000000000.0")]


@pytest.mark.parametrize("kind", ["mixpanel-profiles", "mixpanel-members"])
@pytest.mark.parametrize("layout", ["page", "array", "jsonl"])
def test_a_json_float_distinct_id_keeps_its_exported_token(lab, write, balanced, kind, layout):
    """A $distinct_id written as a JSON float is its exported text, not a double's: two ids that
    are the same double spelled apart stay two profiles (two members) in JSONL, where each line is
    its own document; in one page or array they are one document, so the ambiguous pair keeps
    DuckDB's text (and merges), while a float spelled one way is kept exactly."""
    results = ['{"$distinct_id": 9080350317581165123.0, "$properties": {"nested": {"$distinct_id": 5}}}',
               '{"$distinct_id": 1.2e18, "$properties": {}}',
               '{"$distinct_id": "s", "$properties": {}}']
    twin = '{"$distinct_id": 9.080350317581165123e18, "$properties": {}}'
    if layout == "page":
        text = '{"page": 0, "page_size": 1000, "status": "ok", "results": [\n%s]}' % ",\n".join(results)
    elif layout == "array":
        text = "[" + ",\n".join(results) + "]"
    else:
        text = "\n".join(results + [twin]) + "\n"
    opts = {"cohort": "C", "as_of": "2026-03-01T00:00:00Z"} if kind == "mixpanel-members" else {}
    balanced(lab.load(kind, write("p.json", text), **opts))
    table = "mp_cohort_members" if kind == "mixpanel-members" else "mp_profiles"
    expected = ["1.2e18", "9080350317581165123.0", "s"] + (["9.080350317581165123e18"] if layout == "jsonl" else [])
    assert sorted(r[0] for r in lab.engine.query_rows(f"SELECT distinct_id FROM {table}")) == sorted(expected)


def test_jsonl_of_results_line_numbers_and_types(lab, write, balanced):
    text = "\n".join([
        '{"$distinct_id": 4611686018427387904, "$properties": {"$mparticle_user_id": 1.2e18}}',
        '',
        '{"$distinct_id": "U2", "$properties": {"$mparticle_user_id": "undefined", "$created": "2026-01-01T00:00:00Z"}}',
        '{"$distinct_id": "U3", "$properties": {"$mparticle_user_id": ""}}',
        '{"$distinct_id": "U4", "$properties": {"$mparticle_user_id": null}}',
        '{"$distinct_id": "U5"}',
        '{"$distinct_id": "-1", "$properties": {"$mparticle_user_id": -1, "$created": "2026-01-01T02:00:00+02:00"}}',
    ]) + "\n"
    r = balanced(lab.load("mixpanel-profiles", write("profiles.jsonl", text)))
    assert (r.rows_read, r.loaded) == (6, 6)
    assert [(d, m, c, ln) for d, m, _, _, c, _, ln in _rows(lab)] == [
        ("4611686018427387904", "1.2e18", None, 1),
        ("U2", "undefined", datetime(2026, 1, 1), 3),
        ("U3", "", None, 4),
        ("U4", None, None, 5),
        ("U5", None, None, 6),
        ("-1", "-1", datetime(2026, 1, 1), 7),
    ]
    assert lab.engine.query_rows("SELECT properties FROM mp_profiles WHERE distinct_id = 'U5'") == [("{}",)]


def test_rejects(lab, write, balanced):
    page = _page([
        {"$distinct_id": "ok", "$properties": {}},
        "not an object",
        {"$properties": {"$email": "x@example.com"}},
        {"$distinct_id": None},
        {"$distinct_id": ""},
        {"$distinct_id": {"a": 1}},
        {"$distinct_id": "U7", "$properties": [1, 2]},
    ])
    f = write("p.json", json.dumps(page, indent=1))
    r = balanced(lab.load("mixpanel-profiles", f))
    assert (r.rows_read, r.loaded) == (7, 1)
    assert lab.engine.query_rows("SELECT line, reason FROM rejects ORDER BY line") == [
        (2, "not_an_object"), (3, "missing_distinct_id"), (4, "missing_distinct_id"),
        (5, "missing_distinct_id"), (6, "bad_distinct_id"), (7, "bad_properties")]
    assert lab.engine.query_rows("SELECT raw FROM rejects WHERE line = 3") == [
        ('{"$properties":{"$email":"x@example.com"}}',)]
    j = write("p.jsonl", '{"$distinct_id":"A"}\n{"$distinct_id":\n[]\n')
    r2 = balanced(lab.load("mixpanel-profiles", j))
    assert dict(r2.quarantined) == {"malformed_json": 1, "not_an_object": 1}
    assert lab.engine.query_rows("SELECT line, reason FROM rejects WHERE source_file = ? ORDER BY line", [str(j)]) == [
        (2, "malformed_json"), (3, "not_an_object")]


def test_a_profile_update_sent_to_engage_is_quarantined_not_loaded_as_a_profile(lab, write, balanced):
    """A profile update sent to Mixpanel's /engage (``{"$token", "$distinct_id", "$set": {...}}``:
    what a connector sends, rudderlabs/rudder-transformer's Mixpanel router test data, or mParticle's
    Mixpanel output; an import file of profiles) has no ``$properties``: it loaded as a profile with
    no properties, so without the email and ``$mparticle_user_id`` it sets, silently.
    It is quarantined ``profile_update``, on every path; a result without ``$properties`` and
    without an operation still loads (``{"$distinct_id": "U5"}``)."""
    lines = [
        '{"$distinct_id": "U1", "$properties": {"$email": "a@example.com"}}',
        '{"$set":{"$email":"mickey@example.com","$mparticle_user_id":"-7346244611012968789"},'
        '"$token":"test_api_token","$distinct_id":"e6ab2c5e-2cda-44a9-a962-e2f67df78bca","$ip":"0.0.0.0","$time":1688624942}',
        '{"$append":{"$transactions":{"$time":"2023-07-06T06:29:02.402Z","$amount":18.9}},"$token":"test_api_token","$distinct_id":"userId01"}',
        '{"$distinct_id": "U5"}',
    ]
    f = write("engage_updates.jsonl", "\n".join(lines) + "\n")
    r = balanced(lab.load("mixpanel-profiles", f))
    assert (r.rows_read, r.loaded, dict(r.quarantined)) == (4, 2, {"profile_update": 2})
    assert [(d, e, ln) for d, _, e, _, _, _, ln in _rows(lab)] == [("U1", "a@example.com", 1), ("U5", None, 4)]
    assert lab.engine.query_rows("SELECT line, reason FROM rejects ORDER BY line") == [
        (2, "profile_update"), (3, "profile_update")]
    # an /engage batch body (a JSON array of updates) alone: every record quarantined, with the warning
    batch = write("engage_batch.json", "[" + lines[1] + "]")
    r = balanced(lab.load("mixpanel-profiles", batch))
    assert dict(r.quarantined) == {"profile_update": 1} and "every record was quarantined" in r.warnings[0]
    # a members file of such records holds no member
    r = balanced(lab.load("mixpanel-members", f, cohort="Power Users", as_of="2026-03-01T00:00:00Z"))
    assert dict(r.quarantined) == {"profile_update": 2}
    assert lab.engine.query_rows("SELECT distinct_id FROM mp_cohort_members ORDER BY 1") == [("U1",), ("U5",)]


def test_a_flattened_engage_result_is_quarantined_not_loaded_without_its_properties(lab, write, balanced):
    """A result whose ``$properties`` were spread into the record (``{"$distinct_id", "$email",
    "$mparticle_user_id", ...}``: ak--47/mixpanel-import's ``streamProfiles`` writes profiles so)
    loaded as a profile with no properties: no email, MPID, created or last seen, silently. It is quarantined ``flattened_profile`` on every path, in a page too; a bare id still
    loads; a members snapshot still counts the member (its id is all a member needs)."""
    flat = ('{"$distinct_id":"u1","$email":"u1@example.com","$mparticle_user_id":"9080350317581165123",'
            '"$created":"2024-01-02T03:04:05","$last_seen":"2024-02-03T04:05:06","plan":"pro"}')
    lines = ['{"$distinct_id": "U1", "$properties": {"$email": "a@example.com"}}', flat, '{"$distinct_id": "U5"}']
    f = write("streamed.jsonl", "\n".join(lines) + "\n")
    r = balanced(lab.load("mixpanel-profiles", f))
    assert (r.rows_read, r.loaded, dict(r.quarantined)) == (3, 2, {"flattened_profile": 1})
    assert [(d, e, ln) for d, _, e, _, _, _, ln in _rows(lab)] == [("U1", "a@example.com", 1), ("U5", None, 3)]
    assert lab.engine.query_rows("SELECT line, reason, raw FROM rejects") == [(2, "flattened_profile", flat)]
    page = write("page.json", '{"status": "ok", "page": 0, "results": [' + flat + "]}")
    r = balanced(lab.load("mixpanel-profiles", page))
    assert dict(r.quarantined) == {"flattened_profile": 1}
    # the warning names the kind that reads such records (stpe/mixpanel-engage-query writes them too)
    assert r.warnings == [f"{page}: every record was quarantined (1: flattened_profile 1); is this a mixpanel-profiles "
                          "file? (the records are Engage results with their properties spread into the record: "
                          "mixpanel-pipeline-profiles reads them)"]
    r = balanced(lab.load("mixpanel-pipeline-profiles", write("flat.jsonl", flat + "\n")))
    assert (r.loaded, r.warnings) == (1, [])
    r = balanced(lab.load("mixpanel-members", f, cohort="Power Users", as_of="2026-03-01T00:00:00Z"))
    assert dict(r.quarantined) == {}
    assert lab.engine.query_rows("SELECT distinct_id FROM mp_cohort_members ORDER BY 1") == [
        ("U1",), ("U5",), ("u1",)]


def test_a_csv_is_named_so_with_what_loads_profiles_and_what_loads_a_csv(lab, write, run_once):
    """A CSV given to a JSON kind (mixpanel-utils' export_people with format='csv') is refused as
    not JSON; the error says it looks like a CSV and what to do: profiles load from JSON, a CSV
    of distinct_ids is a cohort's members. The header is quoted; a row's email never is."""
    f = write("people_export.csv", "$distinct_id,$email,$created\n4,example@mixpanel.com,2008-12-12T11:20:47\n")
    with pytest.raises(LoadError) as e:
        lab.load("mixpanel-profiles", f)
    assert str(e.value) == (
        f"{f}: unrecognised format: expected JSON, file starts with '$distinct_id,$email,$created\\n4,<personal "
        "data>' (a CSV? Mixpanel profiles load from JSON: Engage pages (cohortlab fetch), or mixpanel-utils' "
        "export_people with format='json'; a CSV of a cohort's distinct_ids loads with mixpanel-members)")
    with pytest.raises(LoadError, match=r"\(a CSV\?\)$"):  # a kind without advice: the question alone
        lab.load("mixpanel-events", f)


def test_later_load_replaces_and_last_in_file_wins(lab, write, balanced):
    f1 = write("a.jsonl", '{"$distinct_id":"U1","$properties":{"$email":"old@example.com"}}\n'
                          '{"$distinct_id":"U2","$properties":{"$email":"u2@example.com"}}\n')
    balanced(lab.load("mixpanel-profiles", f1))
    f2 = write("b.jsonl", '{"$distinct_id":"U1","$properties":{"$email":"mid@example.com"}}\n'
                          '{"$distinct_id":"U1","$properties":{"$email":"new@example.com","$mparticle_user_id":"7"}}\n')
    r = balanced(lab.load("mixpanel-profiles", f2))
    assert (r.rows_read, r.loaded, r.deduplicated) == (2, 1, 1)
    assert lab.engine.query_rows(
        "SELECT distinct_id, email, mparticle_user_id, source_file, line FROM mp_profiles ORDER BY 1") == [
        ("U1", "new@example.com", "7", str(f2), 2), ("U2", "u2@example.com", None, str(f1), 2)]


def test_pages_without_results_load_no_profiles(lab, write, balanced):
    """Engage's last page is empty when the total is a multiple of page_size (fetch writes it to
    its own file); a project without profiles answers one empty page."""
    full = write("engage_page_00000.json", json.dumps(_page([{"$distinct_id": "U1", "$properties": {}}])))
    last = write("engage_page_00001.json", json.dumps(_page([])))
    r = balanced(lab.load("mixpanel-profiles", [full, last]))
    assert (r.rows_read, r.loaded) == (1, 1)
    assert lab.engine.query_rows("SELECT distinct_id FROM mp_profiles") == [("U1",)]
    only = write("none.jsonl", json.dumps(_page([])) + "\n")
    assert balanced(lab.load("mixpanel-profiles", only)).rows_read == 0
    assert lab.engine.query_rows("SELECT count(*) FROM loads WHERE source_file = ?", [str(only)]) == [(1,)]


def test_a_page_whose_results_are_null_is_a_page_of_no_profiles(lab, write, balanced):
    """`"results": null` is read as `[]`: not a result missing its $distinct_id, not an unknown
    format, and the results of the pages after it keep their positions."""
    pages = [_page([{"$distinct_id": "U1", "$properties": {}}]), _page(None, page=1),
             _page([{"$distinct_id": "U2", "$properties": {}}], page=2)]
    f = write("pages.jsonl", "".join(json.dumps(p) + "\n" for p in pages))
    r = balanced(lab.load("mixpanel-profiles", f))
    assert (r.rows_read, r.loaded, r.n_quarantined) == (2, 2, 0)
    assert [(d, ln) for d, *_, ln in _rows(lab)] == [("U1", 1), ("U2", 2)]
    for name, text in (("null.json", json.dumps(_page(None), indent=2)), ("null.jsonl", json.dumps(_page(None)))):
        only = write(name, text + "\n")
        assert balanced(lab.load("mixpanel-profiles", only)).rows_read == 0


@pytest.mark.parametrize("text, match", [
    ("", "empty file"),
    (json.dumps({"status": "error", "error": "Invalid session_id"}), "status 'error': Invalid session_id"),
    (json.dumps({"page": 0, "results": [], "status": 0, "error": "Invalid session_id"}),
     "status '0': Invalid session_id"),
    ('[{"count":1,"id":1000,"name":"Cohort One"}]', "unrecognised format"),
    ("distinct_id\nU1\n", "unrecognised format"),
])
def test_file_level_errors(lab, write, table_snapshot, text, match):
    good = write("good.jsonl", '{"$distinct_id":"U1"}\n')
    bad = write("bad.json", text)
    before = table_snapshot()
    with pytest.raises(LoadError, match=match) as e:
        lab.load("mixpanel-profiles", [good, bad])
    assert str(bad) in str(e.value)
    assert table_snapshot() == before  # the good file is rolled back too


def test_truncated_gzip(lab, write, tmp_path, table_snapshot):
    import gzip

    data = gzip.compress(("\n".join(f'{{"$distinct_id":"U{i}"}}' for i in range(5000)) + "\n").encode())
    p = tmp_path / "trunc.jsonl"
    p.write_bytes(data[:-40])
    before = table_snapshot()
    with pytest.raises(LoadError) as e:
        lab.load("mixpanel-profiles", p)
    assert str(p) in str(e.value)
    assert table_snapshot() == before


def test_loading_twice_changes_nothing(lab, mixpanel_data_dir, table_snapshot, balanced):
    balanced(lab.load("mixpanel-profiles", mixpanel_data_dir / "profiles"))
    before = table_snapshot()
    r = lab.load("mixpanel-profiles", mixpanel_data_dir / "profiles")
    assert len(r.skipped) == 3 and r.loaded == 0
    assert table_snapshot() == before


def test_sample_files(lab, mixpanel_data_dir, balanced):
    r = balanced(lab.load("mixpanel-profiles", mixpanel_data_dir / "profiles"))
    assert (r.rows_read, r.loaded, r.deduplicated, r.n_quarantined) == (13, 13, 0, 0)
    got = dict(lab.engine.query_rows("SELECT distinct_id, mparticle_user_id FROM mp_profiles"))
    assert got == {
        "cust-1": "-7346244611012968789", "cust-2": "9080350317581165123", "4611686018427387904": None,
        "cust-4": "-1", "cust-5": None, "7000000000000000001": None,
        "$device:8f2c1e4a-7b7d-4d0e-9c55-2a1f3b9e0c01": None, "cust-8": "undefined", "cust-9": "",
        "cust-10": "1.2e18", "cust-11": "7000000000000000000", "cust-12": "5555555555555555555", "cust-13": None,
    }


@pytest.mark.parametrize("layout", ["page", "jsonl"])
def test_a_json_float_mpid_keeps_its_token_beside_the_integer_it_was_rounded_from(lab, write, balanced, layout):
    """The damaged copy of an MPID (a JSON float, 9.080350317581166e+18) beside the MPID itself
    (an integer of the same float value) in one document: the integer is another value, not a
    second spelling of the float, so the float keeps its own token."""
    results = ['{"$distinct_id": "cust-42", "$properties": {"$mparticle_user_id": 9.080350317581166e+18}}',
               '{"$distinct_id": "u9", "$properties": {"$mparticle_user_id": 9080350317581165123}}']
    if layout == "page":
        text = '{"page": 0, "page_size": 1000, "status": "ok", "results": [\n' + ",\n".join(results) + "]}"
    else:
        text = '{"$distinct_id": "u0", "$properties": {"$mparticle_user_id": 9.080350317581166e+18, ' \
               '"old": {"$mparticle_user_id": 9080350317581165123}}}\n' + "\n".join(results) + "\n"
    balanced(lab.load("mixpanel-profiles", write("p.json", text)))
    rows = dict(lab.engine.query_rows("SELECT distinct_id, mparticle_user_id FROM mp_profiles"))
    assert rows["cust-42"] == "9.080350317581166e+18" and rows["u9"] == "9080350317581165123"
    if layout == "jsonl":
        assert rows["u0"] == "9.080350317581166e+18"
