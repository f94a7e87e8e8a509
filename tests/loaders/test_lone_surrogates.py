"""A JSON string holding a lone surrogate escape ("Fans \\ud83d": half of an emoji, cut in two by a
tool that truncates strings in UTF-16 code units) is valid to Python and JavaScript but refused by
DuckDB's JSON reader, which used to cost the whole document: a cohorts list refused, every
profile of an Engage page quarantined, a members page whose cohort was "unknown". Such a file is
read again through a copy in which each lone escape is its text (the six characters
``\\ud83d``), with a warning; a pair (a whole emoji) stays the character it is."""

from __future__ import annotations

import json

import pytest

from cohortlab.loaders import LoadError, StrictLoadError

LONE = "\\ud83d"  # as written in the file: backslash, u, d, 8, 3, d
AS_OF = "2026-03-01T00:00:00Z"


def test_one_cohort_name_no_longer_refuses_the_whole_cohorts_list(lab, write, balanced):
    f = write("cohorts.json", '[{"id": 1000, "name": "Fans ' + LONE + '", "count": 1},\n'
                              ' {"id": 1002, "name": "ok \\ud83d\\ude00", "count": 5}]')
    r = balanced(lab.load("mixpanel-cohorts", f))
    assert (r.loaded, r.n_quarantined) == (2, 0)
    assert lab.engine.query_rows("SELECT cohort_id, name FROM mp_cohorts ORDER BY 1") == [
        ("1000", "Fans \\ud83d"), ("1002", "ok \U0001F600")]
    assert r.warnings == [f"{f}: 1 lone surrogate escape(s) (half of a character such as an emoji, cut in two; "
                          f"first on line 1: \\ud83d) read as their text, the six characters \\ud83d: "
                          f"DuckDB reads no JSON string holding one"]


@pytest.mark.parametrize("indent", [None, 2], ids=["one line", "pretty-printed"])
def test_one_profile_no_longer_costs_its_whole_engage_page(lab, write, balanced, indent):
    page = {"page": 0, "page_size": 1000, "session_id": "s", "status": "ok", "total": 3, "results": [
        {"$distinct_id": "x1", "$properties": {"$name": "Ann @LONE@", "$email": "ann@example.com"}},
        {"$distinct_id": "x2", "$properties": {"$name": "Bo \U0001F600"}},
        {"$distinct_id": "x3", "$properties": {}}]}
    text = json.dumps(page, indent=indent).replace("@LONE@", LONE)
    r = balanced(lab.load("mixpanel-profiles", write("page.json", text)))
    assert (r.loaded, r.n_quarantined, len(r.warnings)) == (3, 0, 1)
    names = dict(lab.engine.query_rows("SELECT distinct_id, properties->>'$.\"$name\"' FROM mp_profiles"))
    assert names == {"x1": "Ann \\ud83d", "x2": "Bo \U0001F600", "x3": None}
    assert lab.engine.query_rows("SELECT email FROM mp_profiles WHERE distinct_id = 'x1'") == [("ann@example.com",)]


def test_a_members_page_names_its_cohort_again(lab, write, balanced):
    lab.load("mixpanel-cohorts", write("cohorts.json", '[{"id": 1000, "name": "Fans ' + LONE + '"}]'))
    page = json.dumps({"as_of": AS_OF, "filter_by_cohort": {"id": 1000, "name": "Fans @LONE@"}, "page": 0,
                       "page_size": 1000, "session_id": "s", "status": "ok", "total": 1,
                       "results": [{"$distinct_id": "a", "$properties": {}}]}).replace("@LONE@", LONE)
    r = balanced(lab.load("mixpanel-members", write("m.jsonl", page + "\n")))
    assert r.loaded == 1 and "lone surrogate" in r.warnings[0]
    assert lab.engine.query_rows("SELECT cohort_id, cohort_name, member_count FROM mp_cohort_snapshots") == [
        ("1000", "Fans \\ud83d", 1)]


def test_an_event_line_with_a_lone_escape_loads_and_the_others_keep_their_lines(lab, write, balanced):
    lines = [{"event": "a", "properties": {"time": 1772323200, "distinct_id": "u1", "$insert_id": "i1",
                                            "title": "cut @LONE@", "$mparticle_user_id": "5"}},
             {"event": "b", "properties": {"time": 1772323201, "distinct_id": "u2", "$insert_id": "i2"}}]
    text = "\n".join(json.dumps(e) for e in lines).replace("@LONE@", LONE) + "\n{not json\n"
    f = write("events.jsonl", text)
    r = balanced(lab.load("mixpanel-events", f))
    assert (r.loaded, dict(r.quarantined), len(r.warnings)) == (2, {"malformed_json": 1}, 1)
    assert lab.engine.query_rows("SELECT distinct_id, mparticle_user_id, line FROM mp_events ORDER BY line") == [
        ("u1", "5", 1), ("u2", None, 2)]
    assert lab.engine.query_rows("SELECT line, reason FROM rejects") == [(3, "malformed_json")]
    again = lab.load("mixpanel-events", f)  # the file's own fingerprint: nothing loaded twice
    assert (again.skipped, again.loaded) == ([str(f)], 0)


def test_without_a_lone_escape_nothing_is_rewritten(lab, write, balanced):
    """An escaped backslash before "ud83d" is text, not an escape; a truly malformed line stays
    quarantined, and the file is read once, without a warning."""
    text = '{"event": "a", "properties": {"time": 1772323200, "distinct_id": "u1", "note": "\\\\ud83d"}}\n{cut\n'
    r = balanced(lab.load("mixpanel-events", write("events.jsonl", text), properties="all"))
    assert (r.loaded, dict(r.quarantined), r.warnings) == (1, {"malformed_json": 1}, [])
    assert lab.engine.query_rows("SELECT properties->>'note' FROM mp_events") == [("\\ud83d",)]


def test_strict_refuses_the_rewritten_file_and_a_gzip_file_is_read_the_same_way(lab, write):
    text = '[{"id": 1, "name": "Fans ' + LONE + '"}]'
    with pytest.raises(StrictLoadError, match="lone surrogate"):
        lab.load("mixpanel-cohorts", write("c.json", text), strict=True)
    assert lab.engine.query_rows("SELECT count(*) FROM mp_cohorts") == [(0,)]
    r = lab.load("mixpanel-cohorts", write("c.json.gz", text, gz=True))
    assert r.loaded == 1 and lab.engine.query_rows("SELECT name FROM mp_cohorts") == [("Fans \\ud83d",)]


def test_an_error_of_another_kind_still_names_the_file(lab, write):
    """A file that holds a lone escape and is refused for another reason: the error names the
    file itself (not the copy it was read through) and says what is wrong."""
    f = write("c.json", '[{"id": 1, "name": "Fans ' + LONE + '"},\n')
    with pytest.raises(LoadError, match="the array is not closed") as caught:
        lab.load("mixpanel-cohorts", f)
    assert str(caught.value).startswith(str(f)) and "cohortlab-lines-" not in str(caught.value)
