"""mixpanel-cohorts: /cohorts/list -> mp_cohorts."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from cohortlab.loaders import LoadError

# the cohort-list loader has neither a parallel nor a fast path:
# its tests run once per path it has (conftest.parse_path checks it)
PARSE_PATHS = ("whole",)


def _rows(lab):
    return lab.engine.query_rows(
        "SELECT cohort_id, name, description, count, created, is_visible, project_id, line "
        "FROM mp_cohorts ORDER BY cohort_id")


def test_known_rows(lab, write, balanced):
    f = write("cohorts.json", json.dumps([
        {"count": 150, "is_visible": 1, "description": "d1", "created": "2019-03-19 23:49:51",
         "project_id": 1, "id": 1000, "name": "Cohort One"},
        {"count": "7", "is_visible": False, "description": None, "created": "garbage",
         "project_id": "2201475", "id": "5167408", "name": "Power Users", "extra": [1]},
        {"is_visible": 0, "id": 12345678901234567890, "name": "Big Id"},
    ]))
    r = balanced(lab.load("mixpanel-cohorts", f))
    assert (r.rows_read, r.loaded, r.deduplicated, r.n_quarantined) == (3, 3, 0, 0)
    assert _rows(lab) == [
        ("1000", "Cohort One", "d1", 150, datetime(2019, 3, 19, 23, 49, 51), True, "1", 1),
        ("12345678901234567890", "Big Id", None, None, None, False, None, 3),
        ("5167408", "Power Users", None, 7, None, False, "2201475", 2),
    ]


def test_replace_same_id_and_last_in_file_wins(lab, write, balanced):
    balanced(lab.load("mixpanel-cohorts", write("a.json", '[{"id":1,"name":"A","count":1},{"id":2,"name":"B"}]')))
    r = balanced(lab.load("mixpanel-cohorts", write(
        "b.json", '[{"id":"1","name":"A renamed","count":5},{"id":1,"name":"A final","count":6}]')))
    assert (r.rows_read, r.loaded, r.deduplicated) == (2, 1, 1)
    assert [(c, n, k) for c, n, _, k, *_ in _rows(lab)] == [("1", "A final", 6), ("2", "B", None)]


@pytest.mark.other_kinds_first
def test_replaces_a_name_only_registration(lab, write):
    lab.load("mixpanel-members", write("m.csv", "distinct_id\nU1\n"), cohort="Power Users", as_of="2026-03-01")
    assert lab.engine.query_rows("SELECT cohort_id, name FROM mp_cohorts") == [(None, "Power Users")]
    lab.load("mixpanel-cohorts", write("c.json", '[{"id":5167408,"name":"Power Users","count":1}]'))
    assert lab.engine.query_rows("SELECT cohort_id, name, count FROM mp_cohorts") == [("5167408", "Power Users", 1)]


def test_rejects(lab, write, balanced):
    f = write("c.jsonl", '{"id":1,"name":"A"}\n{"name":"no id"}\n{"id":2}\n{"id":3,"name":""}\n7\n{oops\n')
    r = balanced(lab.load("mixpanel-cohorts", f))
    assert r.loaded == 1
    assert lab.engine.query_rows("SELECT line, reason FROM rejects ORDER BY line") == [
        (2, "missing_id"), (3, "missing_name"), (4, "missing_name"), (5, "not_an_object"), (6, "malformed_json")]


def test_an_empty_list_is_a_project_without_cohorts(lab, write, balanced):
    r = balanced(lab.load("mixpanel-cohorts", write("cohorts.json", "[]\n")))
    assert (r.rows_read, r.loaded) == (0, 0)
    assert lab.engine.query_rows("SELECT count(*) FROM mp_cohorts") == [(0,)]


@pytest.mark.parametrize("text, match", [
    ("", "empty file"),
    ('{"page":0,"results":[]}', "unrecognised format"),
    ('[{"$distinct_id":"U1"}]', "unrecognised format"),
    ("id,name\n1,A\n", "unrecognised format"),
    ('[{"id":1,"name":"A"},', "cohorts.json"),
    # a list pasted without its opening "[" (airbyte's source-mixpanel test data, copied from its
    # Python): "record 2: malformed JSON (input length is 0 at byte 1 of the record)" before
    ('    {\n        "id": 1000,\n        "name": "Cohort One"\n    },\n    {\n        "id": 2000,\n'
     '        "name": "Cohort Two"\n    }\n]\n',
     r"cohorts\.json: malformed JSON at line 4, column 6: ',' after a complete JSON value, outside any array "
     r"\(is the file's opening '\[' missing\?\)$"),
    ('[{"id": 1, "name": "A"}, {"id": 2 "name": "B"}]',
     r"cohorts\.json: malformed JSON at line 1, column 35: Expecting ',' delimiter$"),
])
def test_file_level_errors(lab, write, table_snapshot, text, match):
    good = write("good.json", '[{"id":9,"name":"Z"}]')
    bad = write("cohorts.json", text)
    before = table_snapshot()
    with pytest.raises(LoadError, match=match) as e:
        lab.load("mixpanel-cohorts", [good, bad])
    assert str(bad) in str(e.value)
    assert table_snapshot() == before


def test_sample_file_and_loading_twice(lab, mixpanel_data_dir, table_snapshot, balanced):
    r = balanced(lab.load("mixpanel-cohorts", mixpanel_data_dir / "cohorts.json"))
    assert (r.rows_read, r.loaded) == (3, 3)
    assert lab.engine.query_rows("SELECT cohort_id, name FROM mp_cohorts ORDER BY cohort_id") == [
        ("4999001", "Old Beta Testers"), ("5167408", "Power Users"), ("5167409", "Churn Risk")]
    before = table_snapshot()
    assert lab.load("mixpanel-cohorts", mixpanel_data_dir / "cohorts.json").skipped
    assert table_snapshot() == before


def test_the_json_error_locator_counts_every_line_end_and_survives_deep_nesting(tmp_path):
    """The line of a JSON error counts LF, CRLF and lone CR line ends, as every loader does (a
    CR-only file was "line 1, column 29"); JSON nested too deeply for Python's parser gives no
    location, and the load keeps DuckDB's words (it was a RecursionError traceback)."""
    from cohortlab.loaders.files import json_syntax_error

    fragment = '    {\n        "id": 1\n    },\n    {"id": 2}\n]\n'
    for eol in ("\n", "\r\n", "\r"):
        f = tmp_path / "c.json"
        f.write_bytes(fragment.replace("\n", eol).encode())
        assert json_syntax_error(f).startswith("line 3, column 6: ',' after a complete JSON value")
    deep = tmp_path / "deep.json"
    deep.write_text('[{"id": 1, "x": ' + "[" * 50_000 + "1,]")
    assert json_syntax_error(deep) is None


def test_a_json_file_cut_inside_a_string_says_so(tmp_path):
    """A page cut short inside a string ended its message with Python's 'Unterminated string
    starting at', which read as if the message itself were cut off (a reliability review)."""
    from cohortlab.loaders.files import json_syntax_error

    f = tmp_path / "cut.json"
    f.write_text('[{"id": 1, "name": "Power Users"},\n {"id": 2, "name": "Recent Purch')
    assert json_syntax_error(f) == "line 2, column 20: a string starts here and is never closed (is the file cut short?)"
