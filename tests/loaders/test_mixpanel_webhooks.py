"""mixpanel-webhooks: cohort-sync webhook payloads -> mp_webhook_pages / mp_webhook_members."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from cohortlab.errors import StrictLoadError
from cohortlab.loaders import LoadError

# the webhook loader has neither a parallel nor a fast path:
# its tests run once per path it has (conftest.parse_path checks it)
PARSE_PATHS = ("whole",)


def _payload(action, members, session="s1", page=1, total=1, rx="2026-03-01T00:00:00Z", cohort_id="5167408",
             name="Power Users", **params):
    p = {"action": action, "parameters": {
        "mixpanel_project_id": "2201475", "mixpanel_cohort_id": cohort_id, "mixpanel_cohort_name": name,
        "mixpanel_cohort_description": "", "mixpanel_session_id": session,
        "page_info": {"total_pages": total, "page_count": page}, "members": members, **params}}
    if rx is not None:
        p["received_at"] = rx
    return p


def _jsonl(*payloads):
    return "\n".join(json.dumps(p) for p in payloads) + "\n"


def _pages(lab):
    return lab.engine.query_rows(
        "SELECT seq, received_at, action, cohort_id, cohort_name, session_id, page_count, total_pages, "
        "member_count, line FROM mp_webhook_pages ORDER BY seq")


def _members(lab):
    return lab.engine.query_rows("SELECT seq, distinct_id, email FROM mp_webhook_members ORDER BY seq, distinct_id")


def test_known_rows_and_replay_order(lab, write, balanced):
    f = write("wh.jsonl", _jsonl(
        _payload("members", [{"email": "a@example.com", "mixpanel_distinct_id": "U1", "first_name": "Ann"},
                             {"$distinct_id": 4611686018427387904, "$email": "b@example.com"}], page=1, total=2),
        _payload("members", [{"mixpanel_distinct_id": "U3"}], page=2, total=2, rx=1772323201),
        _payload("add_members", [{"mixpanel_distinct_id": "U4"}], session="s2", rx=1772324100000,
                 cohort_id=5167408),
        _payload("remove_members", [], session="s2", rx="2026-03-01T00:15:00"),
    ))
    r = balanced(lab.load("mixpanel-webhooks", f))
    assert (r.rows_read, r.loaded, r.deduplicated, r.n_quarantined) == (4, 4, 0, 0)
    t = datetime(2026, 3, 1)
    assert _pages(lab) == [
        (1, t, "members", "5167408", "Power Users", "s1", 1, 2, 2, 1),
        (2, datetime(2026, 3, 1, 0, 0, 1), "members", "5167408", "Power Users", "s1", 2, 2, 1, 2),
        (3, datetime(2026, 3, 1, 0, 15), "add_members", "5167408", "Power Users", "s2", 1, 1, 1, 3),
        (4, datetime(2026, 3, 1, 0, 15), "remove_members", "5167408", "Power Users", "s2", 1, 1, 0, 4),
    ]
    assert _members(lab) == [(1, "4611686018427387904", "b@example.com"), (1, "U1", "a@example.com"),
                             (2, "U3", None), (3, "U4", None)]
    props = json.loads(lab.engine.query_rows(
        "SELECT properties FROM mp_webhook_members WHERE distinct_id = 'U1'")[0][0])
    assert props == {"email": "a@example.com", "mixpanel_distinct_id": "U1", "first_name": "Ann"}
    assert lab.engine.query_rows("SELECT cohort_id, name, project_id FROM mp_cohorts") == [
        ("5167408", "Power Users", "2201475")]
    # seq continues across loads
    r2 = lab.load("mixpanel-webhooks", write("wh2.jsonl", _jsonl(_payload("add_members", [], session="s3"))))
    assert r2.loaded == 1 and _pages(lab)[-1][0] == 5


def test_a_member_listed_twice_in_a_page_is_stored_once_with_its_first_entry(lab, write, balanced):
    f = write("wh.jsonl", _jsonl(_payload("members", [
        {"mixpanel_distinct_id": "U1", "email": "first@example.com"},
        {"mixpanel_distinct_id": "U2"},
        {"mixpanel_distinct_id": "U1", "email": "second@example.com"}])))
    r = balanced(lab.load("mixpanel-webhooks", f))
    assert (r.rows_read, r.loaded) == (1, 1)
    assert _members(lab) == [(1, "U1", "first@example.com"), (1, "U2", None)]
    assert _pages(lab)[0][8] == 2  # member_count: distinct members
    # not silently: the load says how many entries it left out, and where, never whose
    assert r.warnings == [f"{f}: members listed more than once in a page (line 1): 1 repeated entry not stored; "
                          "each member is stored once, with its first entry (a page's members are a set)"]
    f2 = write("wh2.jsonl", _jsonl(
        _payload("members", [{"mixpanel_distinct_id": "U1"}], session="s9"),
        _payload("members", [{"mixpanel_distinct_id": "U7"}] * 3, session="s7"),
        _payload("add_members", [{"mixpanel_distinct_id": "U8"}, {"mixpanel_distinct_id": "U8"}], session="s8")))
    assert lab.load("mixpanel-webhooks", f2).warnings == [
        f"{f2}: members listed more than once in 2 pages (the first on line 2): 3 repeated entries not stored; "
        "each member is stored once, with its first entry (a page's members are a set)"]


def test_pages_without_a_repeated_member_load_without_a_warning(lab, write):
    r = lab.load("mixpanel-webhooks", write("wh.jsonl", _jsonl(
        _payload("members", [{"mixpanel_distinct_id": "U1"}, {"mixpanel_distinct_id": "U2"}]),
        _payload("add_members", [{"mixpanel_distinct_id": "U1"}], session="s2"))))
    assert r.loaded == 2 and r.warnings == []


def test_replayed_page_is_deduplicated(lab, write, balanced):
    a = _payload("add_members", [{"mixpanel_distinct_id": "U1"}, {"mixpanel_distinct_id": "U2"}], session="s2")
    same_set = _payload("add_members", [{"mixpanel_distinct_id": "U2", "email": "new@example.com"},
                                        {"mixpanel_distinct_id": "U1"}], session="s2", rx="2026-03-01T00:16:00Z")
    other = _payload("add_members", [{"mixpanel_distinct_id": "U1"}], session="s2", rx="2026-03-01T00:16:00Z")
    r = balanced(lab.load("mixpanel-webhooks", write("a.jsonl", _jsonl(a, same_set, other))))
    assert (r.rows_read, r.loaded, r.deduplicated) == (3, 2, 1)
    # the same page again in a later file (a retry) changes nothing
    empty = _payload("remove_members", [], session="s2")
    r2 = balanced(lab.load("mixpanel-webhooks", write("b.json", json.dumps([a, empty], indent=2))))
    assert (r2.rows_read, r2.loaded, r2.deduplicated) == (2, 1, 1)
    r3 = balanced(lab.load("mixpanel-webhooks", write("c.json", json.dumps(empty))))
    assert (r3.loaded, r3.deduplicated) == (0, 1)
    assert lab.engine.query_rows("SELECT count(*) FROM mp_webhook_pages")[0][0] == 3


def test_received_at_option_and_pretty_payload(lab, write, balanced):
    f = write("one.json", json.dumps(_payload("members", [{"$distinct_id": "U1"}], rx=None,
                                              cohort_id=5167409, name="Churn Risk"), indent=2))
    with pytest.raises(LoadError, match="no receive time") as e:
        lab.load("mixpanel-webhooks", f)
    assert f"{f}:1" in str(e.value)
    r = balanced(lab.load("mixpanel-webhooks", f, received_at="2026-03-01T06:00:00+01:00"))
    assert r.loaded == 1
    assert _pages(lab)[0][1:5] == (datetime(2026, 3, 1, 5), "members", "5167409", "Churn Risk")


def test_a_payload_without_a_receive_time_takes_the_time_in_its_files_name(lab, write, balanced, tmp_path):
    """A receiver that saves each request in a file named by its time stores no received_at in
    the payload (a Zapier processor's sample: members in "parameters", no time). Such a file
    could not be loaded by `folder`, which takes no -o received_at, and the error advised that
    option. The file's name gives the time of the records without one; a record's own key, and
    the option, still come first; a name without a time still stops the load, naming the three ways."""
    rec = lambda session, rx=None: _payload("members", [{"mixpanel_distinct_id": "U1"}], session=session, rx=rx)
    named = write("wh/payload_2026-03-01T00-15-00Z.jsonl", _jsonl(rec("a"), rec("b", rx="2026-03-01T00:20:00Z")))
    r = balanced(lab.load("mixpanel-webhooks", named))
    assert r.loaded == 2
    assert [(t, session) for _, t, _, _, _, session, *_ in _pages(lab)] == [
        (datetime(2026, 3, 1, 0, 15), "a"), (datetime(2026, 3, 1, 0, 20), "b")]
    plain = write("wh2/payload.json", json.dumps(rec("c")))
    with pytest.raises(LoadError, match=r"payload\.json:1: no receive time: pass -o received_at=.* \(one load of the "
                                        r"file\), put the time in the file's name \(payload_2026-03-01T00-15-00Z\.json: "
                                        r"also in a folder\), or add a top-level \"received_at\" key to each payload$"):
        lab.load("mixpanel-webhooks", plain)
    # the same payload in a folder's mixpanel/webhooks/, named by its time, loads with the folder
    from cohortlab import Lab
    from cohortlab.loaders.folder import load_world

    folder = tmp_path / "world"
    (folder / "mixpanel" / "webhooks").mkdir(parents=True)
    (folder / "mixpanel" / "webhooks" / "2026-03-02T08-00-00Z.json").write_text(json.dumps(rec("d")))
    with Lab() as other:
        load_world(other, folder)
        assert other.engine.query_rows("SELECT received_at, session_id FROM mp_webhook_pages") == [
            (datetime(2026, 3, 2, 8), "d")]


def test_missing_receive_time_names_the_record(lab, write, table_snapshot):
    f = write("wh.jsonl", _jsonl(_payload("members", []), _payload("members", [], session="x", rx=None)))
    before = table_snapshot()
    with pytest.raises(LoadError, match="no receive time") as e:
        lab.load("mixpanel-webhooks", f)
    assert f"{f}:2" in str(e.value)
    bad = write("wh2.jsonl", _jsonl(_payload("members", [], rx="soon")))
    with pytest.raises(LoadError, match="received_at is not"):
        lab.load("mixpanel-webhooks", bad)
    assert table_snapshot() == before


def test_rejects(lab, write, balanced):
    f = write("wh.jsonl", "\n".join([
        json.dumps(_payload("members", [{"mixpanel_distinct_id": "U1"}])),
        json.dumps(_payload("delete_members", [{"mixpanel_distinct_id": "U1"}])),
        json.dumps({"action": "members", "parameters": "x", "received_at": "2026-03-01"}),
        json.dumps(_payload("members", [], cohort_id=None, name=None)),
        json.dumps(_payload("members", {"U1": 1})),
        json.dumps(_payload("members", [{"email": "no-id@example.com"}])),
        json.dumps(_payload("members", ["U1"])),
        '{"action": "members", "parameters": {',
        '"just a string"',
    ]) + "\n")
    r = balanced(lab.load("mixpanel-webhooks", f))
    assert r.loaded == 1
    assert lab.engine.query_rows("SELECT line, reason FROM rejects ORDER BY line") == [
        (2, "bad_action"), (3, "bad_parameters"), (4, "missing_cohort"), (5, "bad_members"),
        (6, "bad_members"), (7, "bad_members"), (8, "malformed_json"), (9, "not_an_object")]
    assert lab.engine.query_rows("SELECT count(*) FROM mp_webhook_members")[0][0] == 1


@pytest.mark.parametrize("layout", ["jsonl", "array"])
def test_a_bad_members_page_says_which_members_are_wrong(lab, write, balanced, layout):
    """A page quarantined bad_members stays whole in quarantine (its valid members are not
    loaded), and the load's warning names the page's line and the wrong entries (their place in
    the array and what is wrong, first three of a page), never an id or an email."""
    thousand = [{"mixpanel_distinct_id": f"U{i}"} for i in range(1000)]
    thousand[2] = {"email": "no-id@example.com", "first_name": "Ann"}
    several = ["U1", {"mixpanel_distinct_id": "", "$email": "e@example.com"}, {"mixpanel_distinct_id": "U2"}, 7,
               {"$distinct_id": None}, {"mixpanel_distinct_id": {"id": "U3"}}]
    pages = [_payload("members", [{"mixpanel_distinct_id": "U9"}]),
             _payload("members", thousand, session="s2"),
             _payload("members", several, session="s3"),
             _payload("members", {"U1": 1}, session="s4"),
             _payload("add_members", [None], session="s5")]
    text = _jsonl(*pages) if layout == "jsonl" else json.dumps(pages, indent=2)
    f = write("wh.json", text)
    r = balanced(lab.load("mixpanel-webhooks", f))
    assert (r.rows_read, r.loaded, r.n_quarantined) == (5, 1, 4)
    assert lab.engine.query_rows("SELECT line, reason FROM rejects ORDER BY line") == [
        (2, "bad_members"), (3, "bad_members"), (4, "bad_members"), (5, "bad_members")]
    assert _members(lab) == [(1, "U9", None)]
    assert r.warnings == [
        f"{f}: 4 pages quarantined (bad_members), each whole with its valid members: "
        "line 2: member 3 of 1,000 (parameters.members[2]) has no mixpanel_distinct_id or $distinct_id; "
        "line 3: 5 of its 6 members: member 1 (parameters.members[0]) is not an object (a string), "
        "member 2 (parameters.members[1]) has an empty mixpanel_distinct_id, "
        "member 4 (parameters.members[3]) is not an object (a number), and 2 more; "
        "line 4: parameters.members is not an array (an object); "
        "and 1 more page (the first on line 5)"]


def test_a_bad_members_warning_names_a_wrapped_payloads_member_in_its_body(lab, write):
    f = write("wh.jsonl", _jsonl(
        {"received_at": "2026-03-01T00:00:00Z", "headers": {},
         "body": _payload("add_members", [{"mixpanel_distinct_id": "U5"}, True], rx=None)},
        _payload("remove_members", [{"$distinct_id": "U6"}, {"$distinct_id": {}}], session="s2")))
    r = lab.load("mixpanel-webhooks", f)
    assert r.n_quarantined == 2 and r.loaded == 0
    assert r.warnings[0] == (
        f"{f}: 2 pages quarantined (bad_members), each whole with its valid members: "
        "line 1: member 2 of 2 (body.parameters.members[1]) is not an object (true or false); "
        "line 2: member 2 of 2 (parameters.members[1]) has a $distinct_id that is an object, not a string or number")


@pytest.mark.parametrize("text, match", [
    ("", "empty file"),
    ("[]", "empty file"),
    ("action,members\nadd,U1\n", "unrecognised format"),
])
def test_file_level_errors(lab, write, table_snapshot, text, match):
    good = write("good.jsonl", _jsonl(_payload("members", [{"mixpanel_distinct_id": "U1"}])))
    bad = write("bad.json", text)
    before = table_snapshot()
    with pytest.raises(LoadError, match=match) as e:
        lab.load("mixpanel-webhooks", [good, bad])
    assert str(bad) in str(e.value)
    assert table_snapshot() == before


def test_sample_files_and_loading_twice(lab, mixpanel_data_dir, table_snapshot, balanced):
    r = balanced(lab.load("mixpanel-webhooks", mixpanel_data_dir / "webhooks"))
    assert (r.rows_read, r.loaded, r.deduplicated, r.n_quarantined) == (8, 7, 1, 0)
    pages = lab.engine.query_rows(
        "SELECT action, page_count, member_count FROM mp_webhook_pages WHERE cohort_name = 'Power Users' "
        "ORDER BY received_at, seq")
    assert pages == [("members", 1, 5), ("members", 2, 5), ("add_members", 1, 1), ("remove_members", 1, 1),
                     ("add_members", 1, 0), ("remove_members", 1, 0)]
    assert lab.engine.query_rows(
        "SELECT count(*) FROM mp_webhook_members m JOIN mp_webhook_pages p USING (seq) "
        "WHERE p.cohort_name = 'Churn Risk'")[0][0] == 3
    before = table_snapshot()
    assert len(lab.load("mixpanel-webhooks", mixpanel_data_dir / "webhooks").skipped) == 2
    assert table_snapshot() == before


@pytest.mark.parametrize("layout", ["jsonl", "array"])
def test_a_json_float_distinct_id_keeps_its_exported_token(lab, write, balanced, layout):
    """Two members whose ids are the same double, spelled apart, stay two members (a JSON float is
    read back from the file's text, not through a double)."""
    text = ('{"action": "members", "received_at": "2026-03-01T00:00:00Z", "parameters": {"mixpanel_cohort_id": "1", '
            '"mixpanel_cohort_name": "C", "mixpanel_session_id": "s", "page_info": {"total_pages": 1, "page_count": 1}, '
            '"members": [{"mixpanel_distinct_id": 9080350317581165123.0}, {"$distinct_id": 1.2e18}, '
            '{"mixpanel_distinct_id": "x", "nested": {"mixpanel_distinct_id": 5}}]}}')
    balanced(lab.load("mixpanel-webhooks", write("wh.json", text + "\n" if layout == "jsonl" else f"[{text}]")))
    assert sorted(d for _, d, _ in _members(lab)) == ["1.2e18", "9080350317581165123.0", "x"]


def test_a_cohort_named_only_by_id_says_what_to_load(lab, write):
    """A payload with mixpanel_cohort_id and no name loads; simulating that id asks for the
    cohort's name (the attribute is named after it), and works once the cohort list is loaded."""
    from cohortlab.simulation.membership import CohortError

    page = _payload("members", [{"mixpanel_distinct_id": "U1"}], cohort_id="7", name=None)
    del page["parameters"]["mixpanel_cohort_name"]
    lab.load("mixpanel-webhooks", write("wh.jsonl", _jsonl(page)))
    with pytest.raises(CohortError, match=r"cohort id '7' has membership data but no name.*mixpanel-cohorts"):
        lab.simulate("7", source="webhooks")
    lab.load("mixpanel-cohorts", write("cohorts.json", '[{"id": 7, "name": "Seven"}]'))
    r = lab.simulate("7", source="webhooks")
    assert (r.cohort, r.attribute, r.counts["members"]) == ("Seven", "Seven", 1)


@pytest.mark.parametrize("layout", ["jsonl", "pretty"])
def test_members_beside_the_parameters_are_the_pages_members(lab, write, balanced, layout):
    """A payload whose ``members`` array sits beside ``parameters`` (not inside it) keeps its
    members: it is not an empty page (for a ``members`` action that would empty the cohort). A
    payload with members in both places is ambiguous and quarantined."""
    beside = {"action": "members", "received_at": "2026-03-01T00:00:00Z",
              "parameters": {"mixpanel_cohort_id": "5167408", "mixpanel_project_id": "2201475",
                             "mixpanel_session_id": "s1", "mixpanel_cohort_name": "Power Users",
                             "mixpanel_integration_id": "0"},
              "members": [{"utm_medium": "ppc", "$distinct_id": "zoe@example.com",
                           "mixpanel_distinct_id": "zoe@example.com"},
                          {"mixpanel_distinct_id": 4611686018427387905}]}
    null_inside = dict(beside, parameters=dict(beside["parameters"], mixpanel_session_id="s2", members=None),
                       members=[{"mixpanel_distinct_id": "U7"}])
    both = dict(beside, parameters=dict(beside["parameters"], mixpanel_session_id="s3",
                                        members=[{"mixpanel_distinct_id": "U8"}]))
    pages = [beside, null_inside, both]
    text = _jsonl(*pages) if layout == "jsonl" else json.dumps(pages, indent=4)
    f = write("wh.json", text)
    r = balanced(lab.load("mixpanel-webhooks", f))
    assert (r.rows_read, r.loaded, r.n_quarantined) == (3, 2, 1)
    assert lab.engine.query_rows("SELECT line, reason FROM rejects") == [(3, "bad_members")]
    assert r.warnings == [f"{f}: a page quarantined (bad_members), whole with its valid members: "
                          "line 3: members are both in parameters and beside it"]
    assert [p[6:9] for p in _pages(lab)] == [(None, None, 2), (None, None, 1)]
    assert _members(lab) == [(1, "4611686018427387905", None), (1, "zoe@example.com", None), (2, "U7", None)]


@pytest.mark.parametrize("layout", ["jsonl", "pretty"])
def test_a_payload_a_receiver_stored_under_body_is_loaded(lab, write, balanced, layout):
    """A receiver that stored the whole request keeps the payload under "body" (an object, or the
    request's text: a JSON string holding the object), beside its own keys ("headers"): the
    payload is loaded as any other, on the wrapper's line, received at its own received_at, else
    the wrapper's; the wrapper's other keys are not read. A body that is no payload, and the flat
    shape some adapters assume (cohort keys at the top, no "parameters"), stay quarantined."""
    p1 = _payload("members", [{"mixpanel_distinct_id": "U1"}, {"mixpanel_distinct_id": 4611686018427387905}])
    p2 = _payload("add_members", [{"$distinct_id": "U2", "$email": "u2@example.com"}], rx="2026-03-01T00:10:00Z")
    records = [
        {"headers": {"Content-Type": "application/json"}, "body": p1},
        {"headers": {}, "received_at": "1999-01-01T00:00:00Z", "body": json.dumps(p2)},
        {"headers": {}, "received_at": "2026-03-01T00:00:00Z", "body": "not a payload"},
        {"headers": {}, "body": {"action": "bogus", "received_at": "2026-03-01T00:00:00Z"}},
        {"action": "members", "received_at": "2026-03-01T00:20:00Z", "cohort_id": "5167408",
         "cohort_name": "Power Users", "members": [{"mixpanel_distinct_id": "U3"}]},
    ]
    text = _jsonl(*records) if layout == "jsonl" else json.dumps(records, indent=2)
    r = balanced(lab.load("mixpanel-webhooks", write("wrapped.json", text)))
    assert (r.rows_read, r.loaded, dict(r.quarantined)) == (5, 2, {"bad_action": 2, "bad_parameters": 1})
    assert [(p[1], p[2], p[3], p[8], p[9]) for p in _pages(lab)] == [
        (datetime(2026, 3, 1), "members", "5167408", 2, 1),
        (datetime(2026, 3, 1, 0, 10), "add_members", "5167408", 1, 2)]
    assert _members(lab) == [(1, "4611686018427387905", None), (1, "U1", None), (2, "U2", "u2@example.com")]
    rejects = lab.engine.query_rows("SELECT line, reason, raw FROM rejects ORDER BY line")
    assert [(ln, why) for ln, why, _ in rejects] == [(3, "bad_action"), (4, "bad_action"), (5, "bad_parameters")]
    assert json.loads(rejects[0][2]) == records[2]  # a reject keeps the record as the file writes it
    # a payload without a receive time of its own: the wrapper's, else the load stops naming the record
    p3 = _payload("remove_members", [{"mixpanel_distinct_id": "U1"}], rx=None)
    balanced(lab.load("mixpanel-webhooks", write("outer_rx.json", _jsonl(
        {"headers": {}, "received_at": "2026-03-01T00:20:00Z", "body": json.dumps(p3)}))))
    assert [(p[1], p[2]) for p in _pages(lab)][-1] == (datetime(2026, 3, 1, 0, 20), "remove_members")
    f = write("no_rx.json", _jsonl({"headers": {}, "body": _payload("members", [], rx=None)}))
    with pytest.raises(LoadError, match=r'no_rx.json:1: no receive time.*key to each payload \(or beside the "body" that holds it\)'):
        lab.load("mixpanel-webhooks", f)


def test_a_cohort_id_written_as_a_whole_float_is_that_integer(lab, write):
    """``"mixpanel_cohort_id": 5167408.0`` (a payload re-serialised through a float) is the cohort
    ``5167408``, as the string Mixpanel sends; a fraction stays as written."""
    text = _jsonl(_payload("add_members", [{"mixpanel_distinct_id": "A"}], cohort_id=5167408.0),
                  _payload("add_members", [{"mixpanel_distinct_id": "B"}], cohort_id=7.5, name="Odd", session="s2"))
    lab.load("mixpanel-webhooks", write("w.jsonl", text))
    assert lab.engine.query_rows("SELECT DISTINCT cohort_id FROM mp_webhook_pages ORDER BY 1") == [("5167408",), ("7.5",)]


@pytest.mark.parametrize("split", [False, True])
def test_a_page_delivered_again_keeps_its_first_receive_time_whatever_the_order_it_is_loaded_in(lab, write, balanced,
                                                                                                 split):
    """docs/rules.md#membership: a message takes effect at its first page's receive time, and
    replaying a page changes nothing. A copy delivered again later but written (or loaded) before
    the original was kept, and the original dropped as its replay: the add took effect 30 minutes
    late. The earliest receive time of identical copies is kept, in a file and across loads."""
    orig = _payload("add_members", [{"mixpanel_distinct_id": "U1"}], session="s2", rx="2026-03-01T00:20:00Z")
    late = _payload("add_members", [{"mixpanel_distinct_id": "U1"}], session="s2", rx="2026-03-01T00:50:00Z")
    if split:
        balanced(lab.load("mixpanel-webhooks", write("a.jsonl", _jsonl(late))))
        r = balanced(lab.load("mixpanel-webhooks", write("b.jsonl", _jsonl(orig))))
    else:
        r = balanced(lab.load("mixpanel-webhooks", write("a.jsonl", _jsonl(late, orig))))
    assert (r.loaded, r.deduplicated) == (0 if split else 1, 1)
    assert [(seq, t) for seq, t, *_ in _pages(lab)] == [(1, datetime(2026, 3, 1, 0, 20))]
    assert lab.engine.query_rows("SELECT seq, distinct_id FROM mp_webhook_members") == [(1, "U1")]


def test_pages_without_a_session_id_are_one_page_only_when_received_at_the_same_time(lab, write, balanced):
    """Without a mixpanel_session_id a page names no message: a member removed at 01:00, added
    at 02:00 and removed again at 03:00 gives two remove pages of one content, which are two
    messages (the second was dropped as a replay, leaving the member in the cohort). The same
    page at the same time, in the file again or in a later load, is still a replay."""
    def sessionless(action, members, rx):
        p = _payload(action, members, rx=rx)
        del p["parameters"]["mixpanel_session_id"]
        return p

    pages = [sessionless("members", [{"mixpanel_distinct_id": "U1"}, {"mixpanel_distinct_id": "U2"}], "2026-03-01T00:00:00Z"),
             sessionless("remove_members", [{"mixpanel_distinct_id": "U1"}], "2026-03-01T01:00:00Z"),
             sessionless("add_members", [{"mixpanel_distinct_id": "U1"}], "2026-03-01T02:00:00Z"),
             sessionless("remove_members", [{"mixpanel_distinct_id": "U1"}], "2026-03-01T03:00:00Z")]
    r = balanced(lab.load("mixpanel-webhooks", write("wh.jsonl", _jsonl(*pages, pages[1]))))
    assert (r.rows_read, r.loaded, r.deduplicated) == (5, 4, 1)
    assert [(a, t.hour) for _, t, a, *_ in _pages(lab)] == [
        ("members", 0), ("remove_members", 1), ("add_members", 2), ("remove_members", 3)]
    r = balanced(lab.load("mixpanel-webhooks", write("again.json", json.dumps(pages[3], indent=2))))
    assert (r.rows_read, r.loaded, r.deduplicated) == (1, 0, 1)
    r = balanced(lab.load("mixpanel-webhooks", write("later.json", json.dumps(
        sessionless("remove_members", [{"mixpanel_distinct_id": "U1"}], "2026-03-01T04:00:00Z")))))
    assert (r.rows_read, r.loaded, r.deduplicated) == (1, 1, 0)


def test_an_eight_digit_receive_time_is_a_date_not_epoch_seconds(lab, write):
    """`20260301` (ISO-8601's basic date) as a receive time, in the file or as the option, is
    March 1 2026; it was read as epoch seconds (August 1970), and every run then came before it."""
    p = _payload("members", [{"mixpanel_distinct_id": "U1"}], rx="20260301")
    lab.load("mixpanel-webhooks", write("a.json", json.dumps(p)))
    q = _payload("members", [{"mixpanel_distinct_id": "U2"}], session="s2", rx=None)
    lab.load("mixpanel-webhooks", write("b.json", json.dumps(q)), received_at="20260302")
    p2 = _payload("members", [{"mixpanel_distinct_id": "U3"}], session="s3", rx=1772323200)  # epoch stays epoch
    lab.load("mixpanel-webhooks", write("c.json", json.dumps(p2)))
    p3 = _payload("members", [{"mixpanel_distinct_id": "U4"}], session="s4", rx=20260303)  # a JSON number too
    lab.load("mixpanel-webhooks", write("d.json", json.dumps(p3)))
    assert [t for _, t, *_ in _pages(lab)] == [datetime(2026, 3, 1), datetime(2026, 3, 2), datetime(2026, 3, 1),
                                               datetime(2026, 3, 3)]


def test_a_message_missing_pages_warns_what_its_missing_pages_change(lab, write, balanced):
    """The pages of one mixpanel_session_id and action are one message, page_info telling how many
    (total_pages) and which (page_count, 1-based). A members message replaces the whole member list:
    stored without some of its pages it silently shrinks the cohort. The load warns, after its last
    file, for each message it stored pages of that has fewer distinct page_count values stored than
    its total_pages: the files, the cohort, the session, the pages stored and missing and what that
    changes, never a member; --strict refuses it."""
    f = write("wh.jsonl", _jsonl(
        _payload("members", [{"mixpanel_distinct_id": "U1"}, {"mixpanel_distinct_id": "U2"}], session="s1"),
        _payload("members", [{"mixpanel_distinct_id": "U1"}], session="s2", page=1, total=3,
                 rx="2026-03-02T00:00:00Z")))
    with pytest.raises(StrictLoadError, match="missing: page"):
        lab.load("mixpanel-webhooks", f, strict=True)
    r = balanced(lab.load("mixpanel-webhooks", f))
    assert r.loaded == 2 and r.warnings == [
        f"{f}: the members message of 'Power Users' (session_id s2) has 1 of its 3 pages stored (page_count 1); "
        "missing: page(s) 2-3: a members message replaces the whole member list, so the members of the missing "
        "pages are taken as removed (the cohort shrinks). Load every page of the message (the receiver's other "
        "files, a redelivery)"]
    assert "U1" not in r.warnings[0]
    # add_members and remove_members messages: what their missing pages change
    g = write("diffs.json", json.dumps([
        _payload("add_members", [{"mixpanel_distinct_id": "U3"}], session="s3", page=2, total=4),
        _payload("remove_members", [{"mixpanel_distinct_id": "U2"}], session="s3", page=2, total=2,
                 cohort_id=None)]))
    r = balanced(lab.load("mixpanel-webhooks", g))
    assert [w.split(": ", 1)[1] for w in r.warnings] == [
        "the add_members message of 'Power Users' (session_id s3) has 1 of its 4 pages stored (page_count 2); "
        "missing: page(s) 1, 3-4: the members the missing pages add are not added. Load every page of the message "
        "(the receiver's other files, a redelivery)",
        "the remove_members message of 'Power Users' (session_id s3) has 1 of its 2 pages stored (page_count 2); "
        "missing: page(s) 1: the members the missing pages remove stay members. Load every page of the message "
        "(the receiver's other files, a redelivery)"]


def test_a_message_whose_pages_are_in_two_files_of_one_load_gives_no_warning(lab, write, balanced):
    """A receiver that writes each request to its own file: the pages of one message are in
    several files, which a load of their folder reads in one call. The message is checked once,
    after the call's last file: complete, no warning, and --strict takes it (one of the files
    alone would warn)."""
    write("hooks/a.json", json.dumps(_payload("members", [{"mixpanel_distinct_id": "U1"}], page=1, total=2)))
    b = write("hooks/b.json", json.dumps(_payload("members", [{"mixpanel_distinct_id": "U2"}], page=2, total=2)))
    r = balanced(lab.load("mixpanel-webhooks", b.parent, strict=True))
    assert (r.loaded, r.warnings) == (2, [])
    alone = write("s9.json", json.dumps(_payload("members", [{"mixpanel_distinct_id": "U2"}], session="s9",
                                                 page=2, total=2)))
    r = balanced(lab.load("mixpanel-webhooks", alone))
    assert len(r.warnings) == 1 and "(session_id s9) has 1 of its 2 pages stored" in r.warnings[0]


def test_a_message_completed_by_a_later_load_warns_only_while_it_misses_pages(lab, write, balanced):
    """Pages stored by earlier loads count: the load that stores a message's last pages completes
    it, without a warning; the one before warned (the message was incomplete then). A page loaded
    again (a replay, deduplicated) stores nothing and warns of nothing."""
    first = write("p1.json", json.dumps(_payload("members", [{"mixpanel_distinct_id": "U1"}], page=1, total=2)))
    r = balanced(lab.load("mixpanel-webhooks", first))
    assert len(r.warnings) == 1 and "has 1 of its 2 pages stored (page_count 1); missing: page(s) 2:" in r.warnings[0]
    second = write("p2.json", json.dumps(_payload("members", [{"mixpanel_distinct_id": "U2"}], page=2, total=2)))
    r = balanced(lab.load("mixpanel-webhooks", second, strict=True))
    assert (r.loaded, r.warnings) == (1, [])
    again = write("p1_again.jsonl", _jsonl(_payload("members", [{"mixpanel_distinct_id": "U1"}], page=1, total=2)))
    r = balanced(lab.load("mixpanel-webhooks", again, strict=True))
    assert (r.loaded, r.deduplicated, r.warnings) == (0, 1, [])


def test_a_page_count_beyond_total_pages_fills_no_gap(lab, write, balanced):
    """Pages 1, 3 and 4 of a message of 3 pages: three distinct page_count values, but page 2 is
    missing (page 4 is none of the message's pages)."""
    f = write("wh.jsonl", _jsonl(*(_payload("members", [{"mixpanel_distinct_id": f"U{p}"}], page=p, total=3)
                                   for p in (1, 3, 4))))
    r = balanced(lab.load("mixpanel-webhooks", f))
    assert [w.split(": ", 1)[1] for w in r.warnings] == [
        "the members message of 'Power Users' (session_id s1) has 2 of its 3 pages stored (page_count 1, 3); "
        "missing: page(s) 2: a members message replaces the whole member list, so the members of the missing "
        "pages are taken as removed (the cohort shrinks). Load every page of the message (the receiver's other "
        "files, a redelivery)"]
