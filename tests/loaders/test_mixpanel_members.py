"""mixpanel-members: cohort membership snapshots (Engage filter_by_cohort pages, JSONL, CSV)."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from cohortlab.errors import StrictLoadError
from cohortlab.loaders import LoadError

AS_OF = datetime(2026, 3, 1)


def _page(results, **extra):
    return {"page": 0, "page_size": 1000, "session_id": "S", "status": "ok", "total": len(results),
            "results": results, **extra}


def _snapshots(lab):
    return lab.engine.query_rows(
        "SELECT snapshot_id, cohort_id, cohort_name, as_of, member_count FROM mp_cohort_snapshots ORDER BY 1")


def _members(lab, snapshot_id=None):
    where = f"WHERE snapshot_id = {int(snapshot_id)}" if snapshot_id is not None else ""
    return lab.engine.query_rows(
        f"SELECT snapshot_id, cohort_name, as_of, distinct_id, line FROM mp_cohort_members {where} "
        "ORDER BY snapshot_id, line")


def test_pages_carrying_as_of_and_filter_by_cohort(lab, write, balanced):
    page = _page([
        {"$distinct_id": "cust-1", "$properties": {"$email": "ann@example.com",
                                                   "$mparticle_user_id": "-7346244611012968789"}},
        {"$distinct_id": 4611686018427387904},
        {"$distinct_id": "cust-1"},  # repeated: deduplicated
        {"$distinct_id": "$device:D9", "$properties": {}},
    ], as_of="2026-03-01T01:00:00+01:00", filter_by_cohort='{"id": 1000, "name": "Power Users"}')
    f = write("pu.json", json.dumps(page, indent=2))
    r = balanced(lab.load("mixpanel-members", f))
    assert (r.rows_read, r.loaded, r.deduplicated, r.n_quarantined) == (4, 3, 1, 0)
    sid = r.load_ids[0]
    assert _snapshots(lab) == [(sid, "1000", "Power Users", AS_OF, 3)]
    assert _members(lab) == [
        (sid, "Power Users", AS_OF, "cust-1", 1),
        (sid, "Power Users", AS_OF, "4611686018427387904", 2),
        (sid, "Power Users", AS_OF, "$device:D9", 4),
    ]
    # unknown cohort registered; the profile carried by the page is upserted (not the empty ones)
    assert lab.engine.query_rows("SELECT cohort_id, name FROM mp_cohorts") == [("1000", "Power Users")]
    assert lab.engine.query_rows("SELECT distinct_id, email, mparticle_user_id FROM mp_profiles") == [
        ("cust-1", "ann@example.com", "-7346244611012968789")]


def test_filter_by_cohort_object_and_cohort_lookup_by_id(lab, write, balanced):
    lab.load("mixpanel-cohorts", write("c.json", '[{"id": 1000, "name": "Power Users"}]'))
    page = _page([{"$distinct_id": "A"}], as_of="2026-03-01T00:00:00", filter_by_cohort={"id": 1000})
    r = balanced(lab.load("mixpanel-members", write("m.json", json.dumps(page))))
    assert _snapshots(lab) == [(r.load_ids[0], "1000", "Power Users", AS_OF, 1)]
    assert lab.engine.query_rows("SELECT count(*) FROM mp_cohorts")[0][0] == 1  # not registered twice


def test_options_override_the_file(lab, write):
    page = _page([{"$distinct_id": "A"}], as_of="2026-01-01T00:00:00Z", filter_by_cohort={"id": 1})
    f = write("m.json", json.dumps(page))
    r = lab.load("mixpanel-members", f, cohort="Churn Risk", as_of="2026-03-01T00:00:00Z")
    assert _snapshots(lab) == [(r.load_ids[0], None, "Churn Risk", AS_OF, 1)]


def test_cohort_option_id_must_exist(lab, write):
    f = write("m.csv", "distinct_id\nA\n")
    with pytest.raises(LoadError, match="no cohort has this id"):
        lab.load("mixpanel-members", f, cohort="5167408", as_of="2026-03-01")
    with pytest.raises(LoadError, match="cohort id '77' is unknown"):
        lab.load("mixpanel-members", f, cohort_id="77", as_of="2026-03-01")
    with pytest.raises(LoadError, match="cohort is unknown"):
        lab.load("mixpanel-members", f, as_of="2026-03-01")
    lab.load("mixpanel-cohorts", write("c.json", '[{"id": "5167408", "name": "Power Users"}]'))
    r = lab.load("mixpanel-members", f, cohort="5167408", as_of="2026-03-01")
    assert _snapshots(lab) == [(r.load_ids[0], "5167408", "Power Users", AS_OF, 1)]


def test_a_cohort_name_with_spaces_around_it_is_taken_as_given(lab, write):
    """A Mixpanel cohort's name may end in a space: -o cohort='Churn Risk ' was stripped to a
    cohort without an id, and the listed cohort had no snapshots (a red-team run)."""
    lab.load("mixpanel-cohorts", write("c.json", '[{"id": 7, "name": "Churn Risk "}, {"id": 8, "name": "Churn Risk"}]'))
    f = write("m.csv", "distinct_id\nA\n")
    r = lab.load("mixpanel-members", f, cohort="Churn Risk ", as_of="2026-03-01")
    assert _snapshots(lab) == [(r.load_ids[0], "7", "Churn Risk ", AS_OF, 1)]
    r2 = lab.load("mixpanel-members", write("m2.csv", "distinct_id\nB\n"), cohort="Churn Risk", as_of="2026-03-01")
    assert _snapshots(lab)[1] == (r2.load_ids[0], "8", "Churn Risk", AS_OF, 1)


def test_a_name_two_cohorts_hold_is_refused_with_their_ids(lab, write, table_snapshot):
    """Mixpanel allows two cohorts one name: -o cohort=NAME alone put the snapshot under one of
    them (the first the cohort list query returned), with no warning even under --strict.
    It is refused as simulate refuses it (docs/rules.md#renamed-cohorts); the id decides."""
    lab.load("mixpanel-cohorts", write("c.json", '[{"id": 11, "name": "Churn Risk"}, {"id": 12, "name": "Churn Risk"}]'))
    f = write("m.csv", "distinct_id\nU1\n")
    before = table_snapshot()
    with pytest.raises(LoadError, match=r"m.csv: -o cohort='Churn Risk' is the name of several cohorts "
                                        r"\(ids 11, 12\): pass the cohort's id instead \(-o cohort_id=ID\)"):
        lab.load("mixpanel-members", f, cohort="Churn Risk", as_of="2026-03-01")
    # a page naming the cohort without its id: the same
    page = _page([{"$distinct_id": "U1"}], filter_by_cohort={"name": "Churn Risk"}, as_of="2026-03-01T00:00:00Z")
    with pytest.raises(LoadError, match=r"the file's cohort 'Churn Risk' is the name of several cohorts \(ids 11, 12\)"):
        lab.load("mixpanel-members", write("p.json", json.dumps(page)))
    assert table_snapshot() == before
    r = lab.load("mixpanel-members", f, cohort="Churn Risk", cohort_id="12", as_of="2026-03-01")
    assert _snapshots(lab) == [(r.load_ids[0], "12", "Churn Risk", AS_OF, 1)]


def test_an_old_name_a_renamed_cohort_still_holds_through_its_snapshot_is_refused_with_why(lab, write):
    """Cohort 11 was 'Old' in its latest snapshot; the cohort list loaded since names it 'New' and
    gives 'Old' to cohort 12. Both hold 'Old' now (a snapshot's name is later than the list's,
    docs/rules.md#renamed-cohorts), as simulate sees it: refused, saying why, not put under 12."""
    lab.load("mixpanel-cohorts", write("c1.json", '[{"id": 11, "name": "Old"}]'))
    page = _page([{"$distinct_id": "A"}], filter_by_cohort={"id": 11, "name": "Old"}, as_of="2026-03-01T00:00:00Z")
    lab.load("mixpanel-members", write("p.json", json.dumps(page)))
    lab.load("mixpanel-cohorts", write("c2.json", '[{"id": 11, "name": "New"}, {"id": 12, "name": "Old"}]'))
    f = write("m.csv", "distinct_id\nB\n")
    with pytest.raises(LoadError, match=r"'Old' is the name of several cohorts \(ids 11, 12\).*a cohort renamed "
                                        r"since keeps its old name until data of a later time names it"):
        lab.load("mixpanel-members", f, cohort="Old", as_of="2026-03-02")
    r = lab.load("mixpanel-members", f, cohort_id="12", as_of="2026-03-02")
    assert _snapshots(lab)[-1] == (r.load_ids[0], "12", "Old", datetime(2026, 3, 2), 1)


def test_cohort_and_cohort_id_that_name_different_cohorts_are_refused(lab, write, table_snapshot):
    lab.load("mixpanel-cohorts", write("c.json", '[{"id": 5167408, "name": "Power Users"}, {"id": 7, "name": "Churn Risk"}]'))
    f = write("m.csv", "distinct_id\nA\n")
    before = table_snapshot()
    with pytest.raises(LoadError, match=r"-o cohort='Churn Risk' and -o cohort_id=5167408 name different cohorts "
                                        r"\('Churn Risk' is the name of cohort_id 7; cohort_id 5167408 is 'Power Users'\): "
                                        r"pass one of them"):
        lab.load("mixpanel-members", f, cohort="Churn Risk", cohort_id="5167408", as_of="2026-03-01")
    with pytest.raises(LoadError, match=r"\('7' is another cohort's id; cohort_id 5167408 is 'Power Users'\)"):
        lab.load("mixpanel-members", f, cohort="7", cohort_id="5167408", as_of="2026-03-01")
    with pytest.raises(LoadError, match=r"\('Power Users' is the name of cohort_id 5167408\)"):  # an unknown id
        lab.load("mixpanel-members", f, cohort="Power Users", cohort_id="99", as_of="2026-03-01")
    assert table_snapshot() == before  # another cohort's snapshot is never written
    r = lab.load("mixpanel-members", f, cohort="Power Users", cohort_id="5167408", as_of="2026-03-01")
    assert _snapshots(lab) == [(r.load_ids[0], "5167408", "Power Users", AS_OF, 1)]


def test_a_known_cohort_id_with_a_new_name_loads_as_a_rename(lab, write):
    """docs/loading.md#mixpanel-members, rules.md#renamed-cohorts: the id is the cohort; a name the
    cohort list does not know for it is its name at the snapshot's time (Mixpanel renames cohorts),
    loaded without a warning (also --strict) and without touching the cohort list. Refused before
    ('name different cohorts') while the cohort list still named the id by its earlier name."""
    from cohortlab.simulation.membership import find_cohort

    lab.load("mixpanel-cohorts", write("c.json", '[{"id": 7, "name": "Heavy Users"}, {"id": 8, "name": "Churn Risk"}]'))
    f = write("m.csv", "distinct_id\nA\nB\n")
    r = lab.load("mixpanel-members", f, cohort="Power Users", cohort_id="7", as_of="2026-03-08", strict=True)
    assert r.warnings == []
    lab.load("mixpanel-members", write("old.csv", "distinct_id\nA\n"), cohort="Heavy Users", cohort_id="7",
             as_of="2026-03-01", strict=True)  # an older snapshot under its earlier name
    assert [s[1:] for s in _snapshots(lab)] == [("7", "Power Users", datetime(2026, 3, 8), 2),
                                              ("7", "Heavy Users", AS_OF, 1)]
    assert lab.engine.query_rows("SELECT cohort_id, name FROM mp_cohorts ORDER BY 1") == [
        ("7", "Heavy Users"), ("8", "Churn Risk")]  # the cohort list as it was loaded
    for asked in ("7", "Power Users", "Heavy Users"):
        ref = find_cohort(lab.engine, asked)
        assert (ref.name, ref.ids, ref.first_time.day, ref.last_time.day) == ("Power Users", ["7"], 1, 8), asked
    # -o cohort_id alone on pages whose filter_by_cohort names that id: the pages' name, not the cohort list's
    # earlier one (which then became the current name again)
    page = _page([{"$distinct_id": "C"}], filter_by_cohort={"id": 7, "name": "Power Users"})
    r = lab.load("mixpanel-members", write("p.json", json.dumps(page)), cohort_id="7", as_of="2026-03-10")
    assert _snapshots(lab)[-1][1:3] == ("7", "Power Users")
    assert find_cohort(lab.engine, "7").name == "Power Users"
    # a name another cohort holds now stays refused, now that 7 is 'Power Users'
    with pytest.raises(LoadError, match=r"\('Churn Risk' is the name of cohort_id 8; cohort_id 7 is 'Power Users'\)"):
        lab.load("mixpanel-members", f, cohort="Churn Risk", cohort_id="7", as_of="2026-03-09")


def test_as_of_required(lab, write, table_snapshot):
    before = table_snapshot()
    f = write("m.jsonl", '{"$distinct_id": "A"}\n')
    with pytest.raises(LoadError, match="as_of is required: pass -o as_of=") as e:
        lab.load("mixpanel-members", f, cohort="X")
    assert str(f) in str(e.value)
    assert table_snapshot() == before
    with pytest.raises(ValueError, match="as_of"):
        lab.load("mixpanel-members", f, cohort="X", as_of="next tuesday")
    with pytest.raises(ValueError, match="unknown option"):
        lab.load("mixpanel-members", f, cohort="X", as_of="2026-03-01", time_unit="s")


def test_csv_default_column_and_as_of_column(lab, write, balanced):
    f = write("m.csv", "$email,$distinct_id,as_of\n"
                       "a@example.com,cust-1,2026-03-01T00:00:00Z\n"
                       ",4611686018427387904,2026-03-01T00:00:00Z\n"
                       "x@example.com,,2026-03-01T00:00:00Z\n"
                       "a@example.com, cust-1 ,2026-03-01T00:00:00Z\n")
    r = balanced(lab.load("mixpanel-members", f, cohort="Churn Risk"))
    assert (r.rows_read, r.loaded, r.deduplicated, dict(r.quarantined)) == (4, 2, 1, {"missing_distinct_id": 1})
    assert [(d, ln) for *_, d, ln in _members(lab)] == [("cust-1", 2), ("4611686018427387904", 3)]
    assert lab.engine.query_rows("SELECT line, reason, raw FROM rejects") == [
        (4, "missing_distinct_id", '{"$email":"x@example.com","$distinct_id":null,"as_of":"2026-03-01T00:00:00Z"}')]
    assert _snapshots(lab)[0][3] == AS_OF


def test_csv_column_option_and_missing_column(lab, write, table_snapshot):
    f = write("m.csv", "user,plan\nU1,pro\nU2,free\n")
    before = table_snapshot()
    with pytest.raises(LoadError, match=r"no distinct_id column.*\['user', 'plan'\]") as e:
        lab.load("mixpanel-members", f, cohort="C", as_of="2026-03-01")
    assert str(f) in str(e.value)
    with pytest.raises(LoadError, match="no column 'uid'"):
        lab.load("mixpanel-members", f, cohort="C", as_of="2026-03-01", column="uid")
    assert table_snapshot() == before
    r = lab.load("mixpanel-members", f, cohort="C", as_of="2026-03-01", column="user")
    assert r.loaded == 2


def test_a_csv_without_a_header_loads_with_header_false(lab, write, balanced, table_snapshot):
    """A list of distinct_ids one per line, no header (stpe/mixpanel-engage-query's CSV, a list
    saved by hand): its first line would be the header, a member lost. ``-o header=false`` reads
    the first line as a row: every line a member, numbered as in the file; ``column`` is then the
    id column's position (default 1). The error without it says so."""
    f = write("ids.csv", "4\nXJJMjfdRn9yK2AGaa\n\n  cust-9 \n")
    before = table_snapshot()
    with pytest.raises(LoadError) as e:
        lab.load("mixpanel-members", f, cohort="C", as_of=AS_OF)
    assert "(or pass -o column=NAME; a file without a header: -o header=false); the header has ['4']" in str(e.value)
    assert table_snapshot() == before
    r = balanced(lab.load("mixpanel-members", f, cohort="C", as_of=AS_OF, header="false"))
    assert (r.rows_read, r.loaded, dict(r.quarantined)) == (4, 3, {"missing_distinct_id": 1})
    assert [(d, ln) for *_, d, ln in _members(lab)] == [("4", 1), ("XJJMjfdRn9yK2AGaa", 2), ("cust-9", 4)]
    assert lab.engine.query_rows("SELECT line, reason, raw FROM rejects") == [(3, "missing_distinct_id", '{"1":null}')]
    assert lab.load("mixpanel-members", f, cohort="C", as_of=AS_OF, header=False).skipped == [str(f)]
    two = write("two.csv", "a@example.com;U1\nb@example.com;U2\n")
    r = balanced(lab.load("mixpanel-members", two, cohort="D", as_of=AS_OF, header="FALSE", column="2"))
    assert (r.loaded, [d for _, c, _, d, _ in _members(lab) if c == "D"]) == (2, ["U1", "U2"])
    with pytest.raises(LoadError, match="no column 3: the first row has 2 column"):
        lab.load("mixpanel-members", two, cohort="D", as_of=AS_OF, header="false", column="3")
    with pytest.raises(ValueError, match="header must be true or false, got 'no'"):
        lab.load("mixpanel-members", two, cohort="D", as_of=AS_OF, header="no")
    with pytest.raises(ValueError, match="with header=false, column is the distinct_id column's position"):
        lab.load("mixpanel-members", two, cohort="D", as_of=AS_OF, header="false", column="user")


def test_csv_columns_in_another_case_or_with_spaces_are_found(lab, write, balanced):
    """A warehouse unload folds unquoted names to upper case (DISTINCT_ID, AS_OF): the id column
    and as_of are found as written first, else whatever their case and the spaces around them;
    so is a column named with -o column."""
    f = write("unload.csv", "EMAIL,DISTINCT_ID, AS_OF \nx@example.com,U1,2026-03-01T00:00:00Z\n,U2,2026-03-01T00:00:00Z\n")
    r = balanced(lab.load("mixpanel-members", f, cohort="Power Users"))
    assert (r.rows_read, r.loaded) == (2, 2)
    assert [(d, ln) for *_, d, ln in _members(lab)] == [("U1", 2), ("U2", 3)]
    assert _snapshots(lab)[0][3] == AS_OF  # from the AS_OF column: no -o as_of needed
    g = write("two.csv", "distinct_id,Distinct_ID,User\nA,B,C\n")  # as written wins over another case
    lab.load("mixpanel-members", g, cohort="Two", as_of=AS_OF)
    lab.load("mixpanel-members", g, cohort="Three", as_of=AS_OF, column="user")
    got = {c: d for _, c, _, d, _ in _members(lab) if c in ("Two", "Three")}
    assert got == {"Two": "A", "Three": "C"}


@pytest.mark.parametrize("as_of", ["2026-03-01 00:00:00 UTC", "2026-03-01 00:00:00.000 +0000",
                                   "2026-02-28 16:00:00.000 -0800"], ids=["bigquery", "snowflake", "offset"])
def test_a_csv_as_of_column_as_a_warehouse_writes_it(lab, write, balanced, as_of):
    """A members table unloaded from BigQuery or Snowflake writes its as_of column so: it was
    refused ("as_of: not a time"); it is 2026-03-01 00:00 UTC."""
    r = balanced(lab.load("mixpanel-members", write("unload.csv", f"distinct_id,as_of\nU1,{as_of}\nU2,{as_of}\n"),
                          cohort="C"))
    assert r.loaded == 2 and _snapshots(lab)[0][3] == AS_OF


def test_csv_with_several_as_of_values_is_an_error(lab, write):
    f = write("m.csv", "distinct_id,as_of\nA,2026-03-01\nB,2026-03-02\n")
    with pytest.raises(LoadError, match="several values"):
        lab.load("mixpanel-members", f, cohort="C")


def test_pages_that_disagree(lab, write):
    pages = [_page([{"$distinct_id": "A"}], as_of="2026-03-01", filter_by_cohort={"id": 1, "name": "C"}),
             _page([{"$distinct_id": "B"}], as_of="2026-03-02", filter_by_cohort={"id": 1, "name": "C"})]
    with pytest.raises(LoadError, match="pages disagree on as_of"):
        lab.load("mixpanel-members", write("m.json", json.dumps(pages)))


def test_one_time_spelled_two_ways_is_one_snapshot_time(lab, q, write):
    # the pages (or rows) name one instant in two spellings: one snapshot, not pages that
    # disagree; two instants still are an error
    pages = [_page([{"$distinct_id": "A"}], as_of="2026-03-01T00:00:00Z", filter_by_cohort={"id": 1, "name": "C"}),
             _page([{"$distinct_id": "B"}], as_of="2026-03-01T05:30:00+05:30", filter_by_cohort={"id": 1, "name": "C"})]
    assert lab.load("mixpanel-members", write("m.json", json.dumps(pages))).loaded == 2
    f = write("m.csv", "distinct_id,as_of\nD,2026-03-02T00:00:00Z\nE,2026-03-02 00:00:00\nF,2026-03-01T19:00:00-05:00\n")
    assert lab.load("mixpanel-members", f, cohort="C").loaded == 3
    assert q("SELECT as_of, member_count FROM mp_cohort_snapshots ORDER BY 1") == [
        (datetime(2026, 3, 1), 2), (datetime(2026, 3, 2), 3)]
    f = write("n.csv", "distinct_id,as_of\nA,2026-03-03T00:00:00Z\nB,2026-03-03T00:00:00+01:00\n")
    with pytest.raises(LoadError, match="several values"):
        lab.load("mixpanel-members", f, cohort="C")


def test_empty_page_is_an_empty_snapshot(lab, write, balanced):
    f = write("m.json", json.dumps(_page([], as_of="2026-03-01", filter_by_cohort={"id": 1, "name": "C"})))
    r = balanced(lab.load("mixpanel-members", f))
    assert (r.rows_read, r.loaded) == (0, 0)
    assert _snapshots(lab) == [(r.load_ids[0], "1", "C", AS_OF, 0)]
    assert _members(lab) == []


def test_a_page_whose_results_are_null_is_an_empty_snapshot_too(lab, write, balanced):
    """Its page keys (the cohort, the as-of time) are read as an empty page's are."""
    page = _page([], as_of="2026-03-01", filter_by_cohort={"id": 1, "name": "C"}) | {"results": None}
    first = None
    for name, text in (("m.json", json.dumps(page, indent=2)), ("m.jsonl", json.dumps(page) + "\n")):
        r = balanced(lab.load("mixpanel-members", write(name, text)))
        assert (r.rows_read, r.loaded, r.n_quarantined) == (0, 0, 0)
        first = first or r.load_ids[0]
        # the second file is the same empty snapshot as other bytes: it is the first one
        assert _snapshots(lab) == [(first, "1", "C", AS_OF, 0)]
    assert _members(lab) == []


@pytest.mark.parametrize("text, match", [
    ("", "empty file"),
    ("  \n", "empty file"),
    ('[{"count": 1, "id": 1, "name": "C"}]', "unrecognised format"),
    ('{"page": 0, "status": "error", "error": "rate limited"}', "status 'error'"),
    # Mixpanel's numeric failure status: a failed request, not a cohort of 0 members
    ('{"page": 0, "results": [], "status": 0, "error": "Engage API error: bad session"}',
     "status '0': Engage API error: bad session"),
    ('{"page": 0, "results": [], "status": false}', "status 'false'"),
    ('{"page": 0, "results": []}\n{"page": 1, "results": [], "status": 0.0, "error": "x"}\n', "status '0.0': x"),
])
def test_file_level_errors(lab, write, table_snapshot, text, match):
    good = write("good.csv", "distinct_id\nA\n")
    bad = write("bad.json", text)
    before = table_snapshot()
    with pytest.raises(LoadError, match=match) as e:
        lab.load("mixpanel-members", [good, bad], cohort="C", as_of="2026-03-01")
    assert str(bad) in str(e.value)
    assert table_snapshot() == before


def test_rejects_in_pages(lab, write, balanced):
    page = _page([{"$distinct_id": "A"}, {"$distinct_id": None}, 3, {"$distinct_id": True}],
                 as_of="2026-03-01", filter_by_cohort={"name": "C"})
    r = balanced(lab.load("mixpanel-members", write("m.json", json.dumps(page))))
    assert r.loaded == 1
    assert lab.engine.query_rows("SELECT line, reason FROM rejects ORDER BY line") == [
        (2, "missing_distinct_id"), (3, "not_an_object"), (4, "bad_distinct_id")]


def test_each_file_is_one_snapshot_and_loading_twice_changes_nothing(lab, mixpanel_data_dir, table_snapshot,
                                                                     balanced):
    d = mixpanel_data_dir / "members"
    lab.load("mixpanel-cohorts", mixpanel_data_dir / "cohorts.json")
    balanced(lab.load("mixpanel-members", d / "power_users_2026-03-01.json"))
    balanced(lab.load("mixpanel-members", d / "churn_risk_2026-03-01.csv", cohort="Churn Risk"))
    balanced(lab.load("mixpanel-members", d / "power_users_2026-03-08.jsonl", cohort="Power Users",
                      as_of="2026-03-08T00:00:00Z"))
    snaps = [(c, n, a, m) for _, c, n, a, m in _snapshots(lab)]
    assert snaps == [("5167408", "Power Users", AS_OF, 11), ("5167409", "Churn Risk", AS_OF, 3),
                     ("5167408", "Power Users", datetime(2026, 3, 8), 6)]
    # the Engage page carried full profiles: they are in mp_profiles, exact identifiers kept
    assert dict(lab.engine.query_rows(
        "SELECT distinct_id, mparticle_user_id FROM mp_profiles WHERE distinct_id IN ('cust-2', 'cust-10', 'cust-11')"
    )) == {"cust-2": "9080350317581165123", "cust-10": "1.2e18", "cust-11": "7000000000000000000"}
    before = table_snapshot()
    r = lab.load("mixpanel-members", d / "power_users_2026-03-01.json")
    assert r.skipped and not r.files
    assert table_snapshot() == before
    # the same file with another as_of is another snapshot
    r2 = lab.load("mixpanel-members", d / "power_users_2026-03-01.json", as_of="2026-03-02")
    assert r2.loaded == 11 and len(_snapshots(lab)) == 4


def test_the_same_snapshot_as_other_bytes_is_not_loaded_again(lab, write, balanced, table_snapshot):
    """The fingerprint hashes a file's bytes: a gzip or CRLF copy of a snapshot, or the same CSV
    given by cohort id after its folder gave it by name, added the cohort a second snapshot at the
    same time and every member again (a reliability review: 14 snapshots became 15, 'snapshots 8'
    in `cohortlab info`). A snapshot that holds exactly the members of the cohort's snapshot at
    that time is that snapshot: its members are de-duplicated, nothing is added."""
    lab.load("mixpanel-cohorts", write("c.json", '[{"id": 1000, "name": "Power Users"}]'))
    csv = "distinct_id\nA\nB\nC\n"
    first = balanced(lab.load("mixpanel-members", write("m.csv", csv), cohort="Power Users", as_of="2026-03-01"))
    before = table_snapshot()
    copies = [write("m_crlf.csv", csv.replace("\n", "\r\n")), write("m.csv.gz", csv, gz=True),
              write("m_reordered.csv", "distinct_id\nC\nA\nB\nA\n")]
    for copy in copies:
        r = balanced(lab.load("mixpanel-members", copy, cohort_id="1000", as_of="2026-03-01T00:00:00Z"))
        assert (r.loaded, r.deduplicated, r.warnings) == (0, r.rows_read, []), copy
    assert _snapshots(lab) == [(first.load_ids[0], "1000", "Power Users", AS_OF, 3)]
    after = table_snapshot()
    assert {t: after[t] for t in ("mp_cohort_snapshots", "mp_cohort_members")} == \
        {t: before[t] for t in ("mp_cohort_snapshots", "mp_cohort_members")}


def test_another_snapshot_at_the_same_time_replaces_it_and_says_so(lab, write, balanced):
    """A partial re-download (head -3 of the CSV) at the same as-of time becomes the snapshot the
    simulation reads (the later load wins); it was silent."""
    balanced(lab.load("mixpanel-members", write("m.csv", "distinct_id\nA\nB\nC\n"), cohort="PU", as_of="2026-03-01"))
    part = write("part.csv", "distinct_id\nA\nD\n")
    r = balanced(lab.load("mixpanel-members", part, cohort="PU", as_of="2026-03-01"))
    assert r.loaded == 2 and len(_snapshots(lab)) == 2
    assert r.warnings == [f"{part}: a snapshot of 'PU' at 2026-03-01T00:00:00Z was loaded "
                          "before with other members (3; this file has 2, 1 of them new): this one replaces it "
                          "(the later load is the one simulated)"]
    # another cohort, or another time, is no replacement
    r = balanced(lab.load("mixpanel-members", write("other.csv", "distinct_id\nA\n"), cohort="Other",
                          as_of="2026-03-01"))
    assert r.loaded == 1 and r.warnings == []


def test_header_only_csv_is_an_empty_snapshot_and_gzip_csv_loads(lab, write, balanced):
    r = balanced(lab.load("mixpanel-members", write("empty.csv", "distinct_id,as_of\n"), cohort="C",
                          as_of="2026-03-01"))
    assert (r.rows_read, r.loaded) == (0, 0)
    assert [m for *_, m in _snapshots(lab)] == [0]
    r2 = balanced(lab.load("mixpanel-members", write("m.csv", "distinct_id\n-1\n9223372036854775807\n", gz=True),
                           cohort="C", as_of="2026-03-02"))
    assert r2.loaded == 2
    assert sorted(d for *_, d, _ in _members(lab, r2.load_ids[0])) == ["-1", "9223372036854775807"]


def test_a_cohort_sync_export_csv_with_an_operation_column_keeps_only_current_members(lab, write, balanced):
    """The CSV a cohort sync's export offers lists the users sent with an operation: add (entered
    the cohort), no-op (stayed) and remove (left). A removed user is not a member of the snapshot:
    the row is quarantined with its reason, not counted as a member."""
    f = write("sync.csv", "distinct_id,mparticle_user_id,operation\r\n"
                          "U1,-7346244611012968789,add\r\n"
                          "U2,9080350317581165123,remove\r\n"
                          "U3,,no-op\r\n"
                          "U4,, Remove \r\n")
    r = balanced(lab.load("mixpanel-members", f, cohort="Power Users", as_of="2026-03-01"))
    assert (r.rows_read, r.loaded, dict(r.quarantined)) == (4, 2, {"removed_member": 2})
    assert [(d, ln) for *_, d, ln in _members(lab)] == [("U1", 2), ("U3", 4)]
    assert _snapshots(lab)[0][4] == 2
    assert lab.engine.query_rows("SELECT line, reason, raw FROM rejects ORDER BY line") == [
        (3, "removed_member", '{"distinct_id":"U2","mparticle_user_id":"9080350317581165123","operation":"remove"}'),
        (5, "removed_member", '{"distinct_id":"U4","mparticle_user_id":null,"operation":" Remove "}')]


def test_a_cohort_sync_csv_row_of_another_operation_is_quarantined_not_a_member(lab, write, balanced):
    """An operation other than add, no-op and remove (an empty cell, a word the export never
    writes) does not say whether the user is a member: quarantined with its row, never counted
    as a member (it was one, as if it said add)."""
    f = write("sync.csv", "distinct_id,operation\nU1,ADD\nU2,\nU3,removed\nU4,No-Op\n")
    r = balanced(lab.load("mixpanel-members", f, cohort="Power Users", as_of="2026-03-01"))
    assert (r.loaded, dict(r.quarantined)) == (2, {"bad_operation": 2})
    assert [(d, ln) for *_, d, ln in _members(lab)] == [("U1", 2), ("U4", 5)]
    assert lab.engine.query_rows("SELECT line, reason, raw FROM rejects ORDER BY line") == [
        (3, "bad_operation", '{"distinct_id":"U2","operation":null}'),
        (4, "bad_operation", '{"distinct_id":"U3","operation":"removed"}')]


def test_engage_pages_saved_as_files_of_one_listing_are_one_snapshot(lab, write, balanced):
    """The pages of one Engage listing saved one per file (page_000.json, page_001.json: one
    session_id) and loaded in one call are one snapshot. Each file its own snapshot, at one as_of,
    gave the cohort only the last file's members. A file holding pages after the first, loaded
    without the listing's first page, warns: its snapshot holds part of the cohort."""
    first = _page([{"$distinct_id": "cust-1"}, {"$distinct_id": 9007199254740993}], session_id="1700000000-AbCd",
                  page_size=2, total=3, computed_at="2026-03-01T00:00:00.000001+00:00")
    rest = _page([{"$distinct_id": "cust-3"}, {"$distinct_id": "cust-1"}], session_id="1700000000-AbCd",
                 page=1, page_size=2, total=3)
    write("pages/page_000.json", json.dumps(first, indent=2))
    p1 = write("pages/page_001.json", json.dumps(rest) + "\n")
    other = write("other/page_000.json", json.dumps(_page([{"$distinct_id": "cust-9"}], session_id="1700000999-ZzZz")))
    r = balanced(lab.load("mixpanel-members", p1.parent, cohort="Power Users", as_of=AS_OF, strict=True))
    assert (r.rows_read, r.loaded, r.deduplicated, r.warnings) == (4, 3, 1, [])
    assert [s[2:] for s in _snapshots(lab)] == [("Power Users", AS_OF, 3)]
    assert sorted(m[3] for m in _members(lab)) == ["9007199254740993", "cust-1", "cust-3"]
    # another listing (another session) of the same cohort and time stays its own snapshot
    lab.load("mixpanel-members", other, cohort="Power Users", as_of=AS_OF)
    assert [s[4] for s in _snapshots(lab)] == [3, 1]
    # the later page alone: loaded as its own snapshot, with a warning (--strict refuses it)
    later = datetime(2026, 3, 2)
    with pytest.raises(StrictLoadError, match="not its first page"):
        lab.load("mixpanel-members", p1, cohort="Power Users", as_of=later, strict=True)
    r = lab.load("mixpanel-members", p1, cohort="Power Users", as_of=later)
    assert len(r.warnings) == 1 and "page(s) 1 " in r.warnings[0] and "page_001.json" in r.warnings[0]


def test_pages_given_later_page_first_in_one_call_are_one_snapshot_without_a_warning(lab, write, balanced):
    """Files named one by one keep the order given: page 1 before page 0 is still the whole listing
    (the warning of a listing without its page 0 was written as page 1's snapshot was, before page
    0 came, and told the user to do what they had done). Two later pages without page 0 warn once,
    naming both files."""
    first = _page([{"$distinct_id": "u1"}, {"$distinct_id": "u2"}], session_id="s-1", page_size=2, total=3)
    rest = _page([{"$distinct_id": "u3"}], session_id="s-1", page=1, page_size=2, total=3)
    p0, p1 = write("l/page_0.json", json.dumps(first)), write("l/page_1.json", json.dumps(rest))
    r = balanced(lab.load("mixpanel-members", [p1, p0], cohort="Power Users", as_of=AS_OF, strict=True))
    assert (r.loaded, r.warnings) == (3, [])
    assert [s[2:] for s in _snapshots(lab)] == [("Power Users", AS_OF, 3)]
    later = _page([{"$distinct_id": "u4"}, {"$distinct_id": "u5"}], session_id="s-2", page=1, page_size=2, total=5)
    last = _page([{"$distinct_id": "u6"}], session_id="s-2", page=2, page_size=2, total=5)
    q2, q1 = write("m/page_2.json", json.dumps(last)), write("m/page_1.json", json.dumps(later))
    r = lab.load("mixpanel-members", [q2, q1], cohort="Power Users", as_of=datetime(2026, 3, 2))
    assert r.warnings == [
        f"{q2}, {q1}: hold Engage page(s) 1-2 of a listing but not its first page (page 0): its snapshot of "
        "'Power Users' holds part of the cohort; load every page file of the listing in one call (their folder), "
        "into a database that holds none of them (a file loaded before is skipped)"]


def _without_session(page):
    return {k: v for k, v in page.items() if k != "session_id"}


@pytest.mark.parametrize("missing_on", ["last page", "first page"])
def test_a_page_saved_without_its_session_id_joins_its_listing(lab, write, balanced, missing_on):
    """Some clients leave session_id out of the last page of an Engage listing (a test fixture
    of a public Mixpanel client does). Loaded in one call with the listing's other pages (same
    cohort, same as_of), such a page is part of the listing's one snapshot, whichever file has
    the session_id, without the warning of a listing loaded without its first page (which told
    the user to do what they had done). A session-less page repeating a page number already read
    is another listing: its own snapshot."""
    first = _page([{"$distinct_id": "user_001"}], session_id="1700000000-AbCd", page_size=1, total=2)
    last = _page([{"$distinct_id": "user_002"}], session_id="1700000000-AbCd", page=1, page_size=1, total=2)
    if missing_on == "last page":
        last = _without_session(last)
    else:
        first = _without_session(first)
    write("listing/page_000.json", json.dumps(first, indent=2))
    p1 = write("listing/page_001.json", json.dumps(last, indent=2))
    r = balanced(lab.load("mixpanel-members", p1.parent, cohort="Listing", as_of=AS_OF, strict=True))
    assert (r.rows_read, r.loaded, r.warnings) == (2, 2, [])
    assert [s[2:] for s in _snapshots(lab)] == [("Listing", AS_OF, 2)]
    assert sorted(m[3] for m in _members(lab)) == ["user_001", "user_002"]
    # two session-less first pages of the same cohort and time in one call: two listings
    write("again/a.json", json.dumps(_without_session(_page([{"$distinct_id": "a"}]))))
    write("again/b.json", json.dumps(_without_session(_page([{"$distinct_id": "b"}]))))
    later = datetime(2026, 3, 2)
    lab.load("mixpanel-members", p1.parent.parent / "again", cohort="Listing", as_of=later)
    assert [s[4] for s in _snapshots(lab) if s[3] == later] == [1, 1]


def _listing(session, sizes, total="count", page_size=2):
    """The pages of one Engage listing: ``sizes`` = the number of results of each page, given by
    page number (members ``P<page>_<i>``); ``total`` = the listing's total (default: their count;
    None leaves it out)."""
    total = sum(sizes.values()) if total == "count" else total
    pages = {}
    for page, n in sizes.items():
        p = _page([{"$distinct_id": f"P{page}_{i}"} for i in range(n)], session_id=session, page=page,
                  page_size=page_size, total=total)
        if total is None:
            del p["total"]
        pages[page] = p
    return pages


def test_a_listing_with_a_page_missing_between_its_pages_warns_that_its_snapshot_is_part_of_the_cohort(
        lab, write, balanced):
    """Engage pages a listing (fetch page + 1, same session_id, while a page holds page_size
    results): pages 0 and 2 read in one call without page 1 are part of the cohort, though the
    snapshot looks whole. The load warns, once for the listing, naming its files, the cohort, the
    pages read and the pages missing, never a member; --strict refuses it. Pages in one file (a
    JSONL of pages) are checked so too."""
    pages = _listing("1700000000-AbCd", {0: 2, 1: 2, 2: 1})
    p0 = write("gap/page_000.json", json.dumps(pages[0], indent=2))
    p2 = write("gap/page_002.json", json.dumps(pages[2]))
    with pytest.raises(StrictLoadError, match="missing: page"):
        lab.load("mixpanel-members", p0.parent, cohort="Power Users", as_of=AS_OF, strict=True)
    r = balanced(lab.load("mixpanel-members", p0.parent, cohort="Power Users", as_of=AS_OF))
    assert (r.loaded, [s[4] for s in _snapshots(lab)]) == (3, [3])
    assert r.warnings == [
        f"{p0}, {p2}: the Engage listing of 'Power Users' (session_id 1700000000-AbCd) read in this load has "
        "page(s) 0, 2; missing: page(s) 1. Its snapshot holds part of the cohort: load every page file of the "
        "listing in one call (their folder), into a database that holds none of them (a file loaded before "
        "is skipped)"]
    assert not [w for w in r.warnings if "P0_" in w or "P2_" in w]  # never a member
    # one file of pages (JSONL: the parallel path reads its page keys as it stages the results)
    many = _listing("1700000001-EfGh", {0: 2, 1: 2, 2: 2, 3: 2, 4: 2, 5: 1}, total=11)
    f = write("pages.jsonl", "\n".join(json.dumps(many[k]) for k in (0, 2, 3, 5)) + "\n")
    r = balanced(lab.load("mixpanel-members", f, cohort="Power Users", as_of="2026-03-02"))
    assert r.warnings == [
        f"{f}: the Engage listing of 'Power Users' (session_id 1700000001-EfGh) read in this load has page(s) "
        "0, 2-3, 5; missing: page(s) 1, 4. Its snapshot holds part of the cohort: load every page file of the "
        "listing in one call (their folder), into a database that holds none of them (a file loaded before "
        "is skipped)"]


def test_a_listing_whose_last_page_read_is_full_warns_unless_its_pages_reach_the_total(lab, write, balanced):
    """A page of page_size results is followed by another: a listing whose highest page read is full
    and whose pages hold fewer results than its total misses its later pages (a client that saved
    page 0 only). Without a total a full last page is enough to warn (the snapshot probably holds
    part of the cohort: the page after it may have been an empty one, not saved). Pages that reach
    the total end the listing: its last page can be full (the total a multiple of page_size)."""
    pages = _listing("S9", {0: 3, 1: 3, 2: 3}, page_size=3)
    f = write("page0_only.json", json.dumps(pages[0], indent=2))
    r = balanced(lab.load("mixpanel-members", f, cohort="Power Users", as_of=AS_OF))
    assert r.warnings == [
        f"{f}: the Engage listing of 'Power Users' (session_id S9) read in this load has page(s) 0; missing: the "
        "page(s) after page 0 (it is full: 3 results, page_size 3; the pages hold 3 of the listing's total of 9 "
        "results). Its snapshot holds part of the cohort: load every page file of the listing in one call "
        "(their folder), into a database that holds none of them (a file loaded before is skipped)"]
    with pytest.raises(StrictLoadError, match="the page\\(s\\) after page 0"):
        lab.load("mixpanel-members", write("again.json", json.dumps(pages[0])), cohort="Power Users",
                 as_of="2026-03-02", strict=True)
    # a gap and a full last page short of the total by more than the gap's pages hold: one warning
    # saying both (pages 0 and 2 of four: 6 results, page 1 holds 3 more, the total is 12)
    four = _listing("S7", {0: 3, 1: 3, 2: 3, 3: 3}, page_size=3)
    write("both/page_000.json", json.dumps(four[0]))
    last = write("both/page_002.json", json.dumps(four[2]))
    r = balanced(lab.load("mixpanel-members", last.parent, cohort="Power Users", as_of="2026-03-03"))
    assert len(r.warnings) == 1 and "page(s) 0, 2; missing: page(s) 1; the page(s) after page 2 (it is full: " \
        "3 results, page_size 3; the pages hold 6 of the listing's total of 12 results)" in r.warnings[0]
    # no total: a full last page is enough
    no_total = _listing("S8", {0: 2}, total=None)
    f = write("no_total.json", json.dumps(no_total[0]))
    r = balanced(lab.load("mixpanel-members", f, cohort="Power Users", as_of="2026-03-04"))
    assert r.warnings == [
        f"{f}: the Engage listing of 'Power Users' (session_id S8) read in this load has page(s) 0; missing: the "
        "page(s) after page 0 (it is full: 2 results, page_size 2; the pages give no total; a listing ends with a "
        "page of fewer results, an empty one when the cohort's size is a multiple of page_size). Its snapshot "
        "probably holds part of the cohort: load every page file of the listing in one call (their folder), into "
        "a database that holds none of them (a file loaded before is skipped)"]


@pytest.mark.parametrize("listing", ["files", "jsonl", "last page short", "last full page reaches the total",
                                     "a page alone, short", "a quarantined record", "no total, last page short"])
def test_a_complete_listing_gives_no_warning(lab, write, balanced, listing):
    """Every page of a listing read in one call, its last page short of page_size, or full with the
    pages reaching the total (the empty page after it not saved), or a first page that is its last:
    no warning, and --strict takes it. The pages' results count, not the members: a record
    quarantined (no distinct_id) is still a result of its page. The same listing without its last
    page does warn."""
    sizes = {"last full page reaches the total": {0: 2, 1: 2}, "a page alone, short": {0: 1},
             "a quarantined record": {0: 2, 1: 2}}.get(listing, {0: 2, 1: 2, 2: 1})
    pages = _listing("S1", sizes, total=None if listing == "no total, last page short" else "count")
    quarantined = {}
    if listing == "a quarantined record":  # 3 members, 4 results: the total
        pages[0]["results"][0] = {"$properties": {}}
        quarantined = {"missing_distinct_id": 1}

    def folder(name, pages):
        if listing == "jsonl":
            return write(f"{name}/pages.jsonl", "".join(json.dumps(p) + "\n" for p in pages.values())).parent
        return [write(f"{name}/page_{k:03}.json", json.dumps(p, indent=2)) for k, p in pages.items()][0].parent

    r = balanced(lab.load("mixpanel-members", folder("all", pages), cohort="Power Users", as_of=AS_OF, strict=True))
    assert (r.warnings, dict(r.quarantined)) == ([], quarantined)
    assert [s[4] for s in _snapshots(lab)] == [sum(sizes.values()) - len(quarantined)]
    if len(pages) > 1:  # the page before the last is full: without the last page, the listing is cut short
        del pages[max(pages)]
        r = balanced(lab.load("mixpanel-members", folder("cut", pages), cohort="Power Users", as_of="2026-03-02"))
        assert len(r.warnings) == 1 and f"missing: the page(s) after page {max(pages)}" in r.warnings[0]


def test_a_csv_whose_ids_a_spreadsheet_rewrote_warns(lab, write):
    """A members CSV opened and saved in a spreadsheet has its long numeric distinct_ids in
    scientific notation (1.23457E+18; 1,23457E+18 in a European locale, with ';'): their digits are
    lost. The rows load as written, with a warning (--strict refuses the file); ids that only look
    alike (hex with one e, 2e5 without a sign) do not warn."""
    eu = write("eu.csv", "\ufeffDistinct ID;Name;;\r\nU-1;Ann;;\r\n1,23457E+18;Bo;;\r\n-9,08035E+18;Cy;;\r\n")
    r = lab.load("mixpanel-members", eu, column="Distinct ID", cohort="Power Users", as_of=AS_OF)
    assert r.loaded == 3 and len(r.warnings) == 1
    assert "2 distinct_id(s) are numbers in scientific notation" in r.warnings[0] and "eu.csv" in r.warnings[0]
    assert "a float column (pandas, a DOUBLE)" in r.warnings[0]  # pandas' to_csv of a float64 id column too
    with pytest.raises(StrictLoadError, match="scientific notation"):
        lab.load("mixpanel-members", write("us.csv", "distinct_id\n1.23457E+18\n"), cohort="Power Users",
                 as_of=AS_OF, strict=True)
    fine = write("fine.csv", "distinct_id\n4e2918\n2e5\n9080350317581165123\nE+18\n")
    # (another time: a snapshot at AS_OF with other members would warn that it replaces the one above)
    assert lab.load("mixpanel-members", fine, cohort="Power Users", as_of="2026-03-02", strict=True).loaded == 4


def test_a_csv_distinct_id_written_as_the_warehouse_null_is_no_member(lab, write, balanced):
    """A warehouse unload writes a NULL cell as \\N (Snowflake's default, Hive, Spark): a row whose
    distinct_id is \\N has no id, as an empty cell, and is quarantined missing_distinct_id, not
    counted as a member named "\\N" (as mparticle-csv reads \\N). NULL and \\n stay ids (text)."""
    f = write("unload.csv", "DISTINCT_ID,PLAN\nU1,pro\n\\N,free\n \\N ,\\N\nNULL,pro\n\\n,pro\n,pro\n")
    r = balanced(lab.load("mixpanel-members", f, column="DISTINCT_ID", cohort="Power Users", as_of=AS_OF))
    assert (r.rows_read, r.loaded, dict(r.quarantined)) == (6, 3, {"missing_distinct_id": 3})
    assert [(d, ln) for *_, d, ln in _members(lab)] == [("U1", 2), ("NULL", 5), ("\\n", 6)]
    assert _snapshots(lab)[0][4] == 3
    assert lab.engine.query_rows("SELECT line, reason, raw FROM rejects ORDER BY line") == [
        (3, "missing_distinct_id", '{"DISTINCT_ID":"\\\\N","PLAN":"free"}'),
        (4, "missing_distinct_id", '{"DISTINCT_ID":" \\\\N ","PLAN":"\\\\N"}'),
        (7, "missing_distinct_id", '{"DISTINCT_ID":null,"PLAN":"pro"}')]


def test_a_file_none_of_whose_records_names_a_member_writes_no_snapshot(lab, write, balanced):
    """Records that are all quarantined for a reason other than leaving the cohort say nothing of
    the membership: no snapshot is written (a snapshot of 0 members would remove every member of
    the cohort at that time), the records are quarantined and the load warns. A sync export whose
    rows are all removes is a cohort that everyone left: that one is a snapshot of 0 members."""
    balanced(lab.load("mixpanel-members", write("before.csv", "distinct_id\nU1\nU2\n"), cohort="C", as_of=AS_OF))
    r = balanced(lab.load("mixpanel-members", write("bad.csv", "distinct_id\n\\N\n\n"), cohort="C",
                          as_of="2026-03-02"))
    assert (r.rows_read, r.loaded, dict(r.quarantined)) == (2, 0, {"missing_distinct_id": 2})
    assert [(n, m) for _, _, n, _, m in _snapshots(lab)] == [("C", 2)]
    assert any("bad.csv: none of its 2 records names a member (see the quarantine): it writes no snapshot of 'C'"
               in w for w in r.warnings)
    assert lab.engine.query_rows("SELECT count(*) FROM rejects WHERE source_file LIKE '%bad.csv'") == [(2,)]
    bad_pages = write("bad.json", json.dumps(_page([{"$properties": {}}, {"$distinct_id": None}])))
    r = balanced(lab.load("mixpanel-members", bad_pages, cohort="C", as_of="2026-03-03"))
    assert r.loaded == 0 and sum(r.quarantined.values()) == 2 and len(_snapshots(lab)) == 1
    r = balanced(lab.load("mixpanel-members", write("left.csv", "distinct_id,operation\nU1,remove\nU2,remove\n"),
                          cohort="C", as_of="2026-03-04"))
    assert dict(r.quarantined) == {"removed_member": 2} and r.warnings == []  # no "is this a ... file?"
    assert [(m, as_of.day) for _, _, _, as_of, m in _snapshots(lab)] == [(2, 1), (0, 4)]
    # so --strict takes it
    r = balanced(lab.load("mixpanel-members", write("left2.csv", "distinct_id,operation\nU1,remove\n"),
                          cohort="C", as_of="2026-03-05", strict=True))
    assert [m for *_, m in _snapshots(lab)] == [2, 0, 0]


def test_a_listing_whose_first_page_names_no_member_is_the_snapshot_of_its_later_pages(lab, write, balanced):
    """The first page file of an Engage listing whose records are all quarantined writes no
    snapshot; the listing's later pages, loaded in the same call, are its snapshot, without the
    warning of a listing loaded without its first page."""
    write("pages/page_000.json", json.dumps(_page([{"$properties": {}}], session_id="S1", page_size=1, total=2)))
    later = write("pages/page_001.json", json.dumps(_page([{"$distinct_id": "U2"}], session_id="S1", page=1,
                                                          page_size=1, total=2)))
    r = balanced(lab.load("mixpanel-members", later.parent, cohort="C", as_of=AS_OF))
    assert (r.loaded, dict(r.quarantined)) == (1, {"missing_distinct_id": 1})
    assert [(n, m) for _, _, n, _, m in _snapshots(lab)] == [("C", 1)]
    assert [w for w in r.warnings if "page_000.json" in w] and not [w for w in r.warnings if "first page" in w]


def test_a_csv_header_repeated_where_joined_parts_began_is_skipped_with_a_warning(lab, write, balanced):
    """A members CSV unloaded in parts and joined (cat part_*.csv) repeats its header where each
    part began: such a row is no member named "distinct_id" (nor an as_of "as_of"), but skipped,
    not counted, with a warning naming the file and the first line (--strict refuses the file). A
    row whose id only is the column's name is a record as any other."""
    text = ("distinct_id,as_of\r\n"
            "U1,2026-03-01T00:00:00Z\r\n"
            " distinct_id , as_of \r\n"
            "U2,2026-03-01T00:00:00Z\r\n"
            '"distinct_id","as_of"\r\n'
            ",2026-03-01T00:00:00Z\r\n"
            "distinct_id,\r\n")
    r = balanced(lab.load("mixpanel-members", write("joined.csv", text), cohort="Power Users"))
    assert (r.rows_read, r.loaded, dict(r.quarantined)) == (4, 3, {"missing_distinct_id": 1})
    assert [(d, ln) for *_, d, ln in _members(lab)] == [("U1", 2), ("U2", 4), ("distinct_id", 7)]
    assert _snapshots(lab)[0][3:] == (datetime(2026, 3, 1), 3)
    assert lab.engine.query_rows("SELECT line, reason FROM rejects") == [(6, "missing_distinct_id")]
    assert len(r.warnings) == 1
    assert "joined.csv" in r.warnings[0] and "repeats on 2 line(s), first on line 3" in r.warnings[0]
    with pytest.raises(StrictLoadError, match="header line repeats"):
        lab.load("mixpanel-members", write("again.csv", text.replace("U1", "U9")), cohort="Power Users", strict=True)


def test_an_excel_sep_line_before_the_header_names_the_delimiter(lab, write, balanced):
    """Excel's hint line "sep=;" (the whole first line) before the header is skipped and names the
    delimiter (here one the header alone would not pick: "," is more frequent in it); the header
    is then line 2 and each row keeps its physical line. A ragged row is refused naming its line."""
    text = "sep=;\r\nDistinct ID;Name, first;as_of\r\nU1;Ann, B;2026-03-01\r\n;x;\r\nU2;Bo, C;\r\n"
    r = balanced(lab.load("mixpanel-members", write("excel.csv", text), column="Distinct ID", cohort="Power Users"))
    assert (r.rows_read, r.loaded, dict(r.quarantined), r.warnings) == (3, 2, {"missing_distinct_id": 1}, [])
    assert [(d, ln) for *_, d, ln in _members(lab)] == [("U1", 3), ("U2", 5)]
    assert _snapshots(lab)[0][3] == datetime(2026, 3, 1)
    assert lab.engine.query_rows("SELECT line, raw FROM rejects") == [
        (4, '{"Distinct ID":null,"Name, first":"x","as_of":null}')]
    with pytest.raises(LoadError, match=r"ragged.csv:.*line 4: more fields"):
        lab.load("mixpanel-members", write("ragged.csv", "sep=,\ndistinct_id\nU1\nU2,x\n"), cohort="C", as_of=AS_OF)
    with pytest.raises(LoadError, match=r"no_column.csv:2: no column 'id'"):
        lab.load("mixpanel-members", write("no_column.csv", "sep=|\ndistinct_id|x\nU1|y\n"), column="id", cohort="C",
                 as_of=AS_OF)
    # only "sep=X" as the whole first line is the hint: anything else is the header
    r = lab.load("mixpanel-members", write("not_a_hint.csv", "sep=;;distinct_id\nx;;U3\n"), cohort="C", as_of=AS_OF)
    assert [d for *_, d, _ in _members(lab, r.load_ids[0])] == ["U3"]


def test_a_byte_order_mark_after_the_sep_line_is_no_part_of_the_first_name(lab, write, balanced):
    """A BOM right after the "sep=" hint line (a tool that writes the hint before an UTF-8 file's
    own BOM) is dropped like a BOM at the start of the file: the first column is "distinct_id",
    found without -o column, and the raw text of a rejected row names it without the mark."""
    text = "sep=;\n\ufeffdistinct_id;plan\nU1;pro\n;free\n"
    r = balanced(lab.load("mixpanel-members", write("bom.csv", text), cohort="Power Users", as_of=AS_OF))
    assert (r.loaded, dict(r.quarantined)) == (1, {"missing_distinct_id": 1})
    assert [(d, ln) for *_, d, ln in _members(lab)] == [("U1", 3)]
    assert lab.engine.query_rows("SELECT line, raw FROM rejects") == [(4, '{"distinct_id":null,"plan":"free"}')]


def test_a_cohort_id_written_as_a_whole_float_is_that_integer(lab, write, balanced):
    """A cohort id written as a whole JSON float (``1000.0``: a list or a page passed through a
    pandas round trip) is the cohort ``1000``, in the cohorts list and in a page's
    filter_by_cohort alike: the page finds the cohort and its name, and no second cohort is
    registered. A fraction stays as written (no such id exists; it is not rounded)."""
    lab.load("mixpanel-cohorts", write("c.json", '[{"id": 1000.0, "name": "Power Users"}, {"id": 7.5, "name": "Odd"}]'))
    assert lab.engine.query_rows("SELECT cohort_id, name FROM mp_cohorts ORDER BY 1") == [
        ("1000", "Power Users"), ("7.5", "Odd")]
    page = _page([{"$distinct_id": "A"}], as_of="2026-03-01T00:00:00", filter_by_cohort={"id": 1.0e3})
    r = balanced(lab.load("mixpanel-members", write("m.json", json.dumps(page).replace("1000.0", "1.0e3"))))
    assert _snapshots(lab) == [(r.load_ids[0], "1000", "Power Users", AS_OF, 1)]
    assert lab.engine.query_rows("SELECT count(*) FROM mp_cohorts")[0][0] == 2  # not registered again


def test_a_csv_distinct_id_written_as_the_text_null_loads_with_a_warning(lab, write, balanced):
    """Some exports write an SQL NULL as the text NULL (SQL Server Management Studio; a
    NULL_IF=('NULL') unload). A distinct_id is free text, so such a row stays a member of that id
    (exact about identifiers), but it loaded without a word: now with a warning naming
    the file, the number of such ids and the first line; --strict refuses the file."""
    text = "distinct_id,as_of\nU1,2026-03-01T00:00:00Z\nNULL,2026-03-01T00:00:00Z\n null ,2026-03-01T00:00:00Z\n"
    r = balanced(lab.load("mixpanel-members", write("m.csv", text), cohort="Power Users"))
    assert [d for *_, d, _ in _members(lab)] == ["U1", "NULL", "null"]
    assert [w.split(": ", 1)[1] for w in r.warnings] == [
        "2 distinct_id(s) are the text NULL (line 3): an SQL NULL written as text? Loaded as members of that id "
        "(probably no user's); export the cohort with NULL as an empty field or \\N, which are no id"]
    with pytest.raises(StrictLoadError, match="the text NULL"):
        lab.load("mixpanel-members", write("n.csv", text.replace("U1", "U2")), cohort="Power Users", strict=True)
    # JSON has its own null: a string "NULL" is a value the source wrote, read as any id, no warning
    page = {"results": [{"$distinct_id": "NULL"}], "status": "ok", "as_of": "2026-03-02T00:00:00Z"}
    assert lab.load("mixpanel-members", write("p.json", json.dumps(page)), cohort="Power Users").warnings == []


def test_an_empty_snapshot_at_the_time_of_one_with_members_says_it_replaces_it(lab, write, balanced):
    """A header-only CSV at the as-of time of a snapshot with members replaced it silently (every
    member gone), while a smaller change warned (a red team on the day's changes); the same empty
    snapshot again is that snapshot."""
    balanced(lab.load("mixpanel-members", write("m.csv", "distinct_id\nA\nB\n"), cohort="PU", as_of="2026-03-01"))
    empty = write("empty.csv", "distinct_id\n")
    r = balanced(lab.load("mixpanel-members", empty, cohort="PU", as_of="2026-03-01"))
    assert r.warnings == [f"{empty}: a snapshot of 'PU' at 2026-03-01T00:00:00Z was loaded before with other members "
                          "(2; this file has 0, 0 of them new): this one replaces it (the later load is the one simulated)"]
    r = balanced(lab.load("mixpanel-members", write("empty_crlf.csv", "distinct_id\r\n"), cohort="PU",
                          as_of="2026-03-01"))
    assert r.warnings == [] and len(_snapshots(lab)) == 2


def test_the_same_engage_page_as_other_bytes_adds_no_profile_history(lab, write, balanced):
    """A gzip copy of a members page joined its snapshot but stored the page's profiles again:
    `mp_profile_history` grew by every profile per copy, and `info` counted 3 files and 778
    profiles for 376 (an analyst's check of the day's build)."""
    page = _page([{"$distinct_id": "A", "$properties": {"$email": "a@example.com"}},
                  {"$distinct_id": "B", "$properties": {"$email": "b@example.com"}}],
                 as_of="2026-03-01", filter_by_cohort={"id": 1, "name": "C"})
    text = json.dumps(page)
    balanced(lab.load("mixpanel-members", write("m.json", text)))
    before = lab.engine.query_rows("SELECT count(*) FROM mp_profile_history")
    r = balanced(lab.load("mixpanel-members", write("m.json.gz", text, gz=True)))
    assert (r.loaded, r.deduplicated) == (0, 2)
    assert lab.engine.query_rows("SELECT count(*) FROM mp_profile_history") == before


UNCLOSED = ('a quote (") opened on this line is never closed, so everything after it, to the end of the file, '
            'was read as one field; close it, or write a quote inside a quoted value as ""')


@pytest.mark.parametrize("text, line", [
    ("distinct_id,email\nU1,a@example.com\n123,\"abc\n", 3),  # the last line
    # the middle, quoted values after it (the last quote of the file is on line 4)
    ("distinct_id,email\nU1,a@example.com\n123,\"abc\nU2,\"b@example.com\"\nU3,c@example.com\n", 3),
    # a quoted value spanning lines above: the line of the file, not the row's number (3)
    ("distinct_id,email\r\n\"U\r\n1\",a@example.com\r\nU2,\"b@example.com\r\nU3,c\r\n", 4),
])
def test_a_quote_never_closed_is_refused_naming_the_line_it_opened_on(lab, write, table_snapshot, text, line):
    good = write("good.csv", "distinct_id\nA\n")
    bad = write("members.csv", text, gz=line == 4)
    before = table_snapshot()
    with pytest.raises(LoadError) as e:
        lab.load("mixpanel-members", [good, bad], cohort="C", as_of=AS_OF)
    assert str(e.value) == f"{bad}: line {line}: {UNCLOSED}"
    assert table_snapshot() == before


def test_a_quote_never_closed_in_the_header_is_refused_not_read_as_a_snapshot_of_0_members(lab, write, table_snapshot):
    """The whole file was the header's last column name: a snapshot of nobody, which empties the
    cohort, loaded without a word."""
    before = table_snapshot()
    f = write("members.csv", 'distinct_id,"email\nU1,a@example.com\nU2,b@example.com\n')
    with pytest.raises(LoadError) as e:
        lab.load("mixpanel-members", f, cohort="C", as_of=AS_OF)
    assert str(e.value) == f"{f}:1: the header line: {UNCLOSED}"
    assert table_snapshot() == before
@pytest.mark.parametrize("text, line", [
    # a quote inside an unquoted value is a character (5" screen), not an opening quote: the
    # quote never closed is on line 4 (it was line 6 of a file of 5)
    ('distinct_id,note\nU1,5" screen\nU2,ok\nU3,"bad\nU4,z\n', 4),
    # after one and a value spanning lines 3 and 4 (it was 6)
    ('distinct_id,note\nU1,x"y\nU2,"a\nb"\nU3,"bad\nU4,z\n', 5),
    # two such quotes, on two lines: the line of the file, not DuckDB's row number (5)
    ('distinct_id,note\nU1,5" screen\nU2,6" screen\nU3,"a\nb"\nU4,"bad\nU5,z\n', 6),
])
def test_a_quote_never_closed_after_a_quote_inside_an_unquoted_value_names_its_line(lab, write, table_snapshot,
                                                                                  text, line):
    before = table_snapshot()
    f = write("members.csv", text)
    with pytest.raises(LoadError) as e:
        lab.load("mixpanel-members", f, cohort="C", as_of=AS_OF)
    assert str(e.value) == f"{f}: line {line}: {UNCLOSED}"
    assert table_snapshot() == before


@pytest.mark.parametrize("header, name", [('distinct_id,na"me', 'na"me'), ('distinct_id,size (in")', 'size (in")'),
                                          ('distinct_id;size (in")', 'size (in")')])
def test_a_quote_inside_a_header_name_is_a_character_not_a_quote_never_closed(lab, write, balanced, header, name):
    """A quote opens a quoted field only at the start of a field (DuckDB, RFC 4180): a header
    name such as size (in") is read as written, also when quoted values follow (it was refused
    as a quote never closed)."""
    d = ";" if ";" in header else ","
    f = write("members.csv", f'{header}\nU1{d}5\nU2{d}"6"\n"U\n3"{d}7\n')
    r = balanced(lab.load("mixpanel-members", f, cohort="C", as_of=AS_OF, column="distinct_id"))
    assert (r.rows_read, r.loaded) == (3, 3)
    assert [(m, ln) for *_, m, ln in _members(lab)] == [("U1", 2), ("U2", 3), ("U\n3", 4)]
    g = write("by_name.csv", f'{header}\nU1{d}5\n')
    assert lab.load("mixpanel-members", g, cohort="D", as_of=AS_OF, column=name).loaded == 1
    assert [m for _, c, _, m, _ in _members(lab) if c == "D"] == ["5"]




@pytest.mark.parametrize("text, name", [('distinct_id, "c,d"\nU0,x\nU1,y\n', "c,d"),
                                        ('distinct_id; "a""b"\nU0;x\nU1;y\n', 'a"b'),
                                        ('distinct_id\t "c\td"\nU0\tx\nU1\ty\n', "c\td")])
def test_a_header_name_quoted_after_one_space_is_split_as_duckdb_reads_it(lab, write, balanced, text, name):
    """A quote after the delimiter and one space opens a quoted name (CsvQuotes, DuckDB's rule):
    the header was split by csv.reader, which did not open it (3 columns: a ragged row)."""
    f = write("members.csv", text)
    r = balanced(lab.load("mixpanel-members", f, cohort="C", as_of=AS_OF))
    assert (r.rows_read, r.loaded) == (2, 2)
    g = write("by_name.csv", text)
    assert lab.load("mixpanel-members", g, cohort="D", as_of=AS_OF, column=name).loaded == 2
    assert sorted(m for _, c, _, m, _ in _members(lab) if c == "D") == ["x", "y"]


def test_a_quoted_header_name_spanning_lines_right_after_a_bom_is_refused(lab, write, table_snapshot):
    """DuckDB takes only the first line as the header when a quote follows the byte order mark
    (half the name became a member); a one-line name there is read as before."""
    before = table_snapshot()
    f = write("members.csv", '\ufeff"multi\nline"\tdistinct_id\nv\tU0\n')
    with pytest.raises(LoadError, match=r"members.csv:1: the header line: .*byte order mark"):
        lab.load("mixpanel-members", f, cohort="C", as_of=AS_OF)
    assert table_snapshot() == before
    g = write("one_line.csv", '\ufeff"a b"\tdistinct_id\nv\tU0\n')
    assert lab.load("mixpanel-members", g, cohort="C", as_of=AS_OF, column="a b").loaded == 1


def test_a_gap_that_explains_the_missing_results_is_the_only_pages_missing(lab, write, balanced):
    """Pages 0-3 of 2 results each, total 8, page 1 missing: the last page read is full and the
    pages hold 6 of 8, but the gap's page accounts for the 2 missing results; the warning names
    page 1 only, not pages after page 3."""
    pages = _listing("1700000002-IjKl", {0: 2, 1: 2, 2: 2, 3: 2})
    f = write("pages.jsonl", "\n".join(json.dumps(pages[k]) for k in (0, 2, 3)) + "\n")
    r = balanced(lab.load("mixpanel-members", f, cohort="Power Users", as_of=AS_OF))
    assert r.warnings == [
        f"{f}: the Engage listing of 'Power Users' (session_id 1700000002-IjKl) read in this load has page(s) "
        "0, 2-3; missing: page(s) 1. Its snapshot holds part of the cohort: load every page file of the "
        "listing in one call (their folder), into a database that holds none of them (a file loaded before "
        "is skipped)"]
