"""A JSON file of several top-level arrays one after another (``[...][...]``: mixpanel-utils
appends each backup to its ``backup_file`` as one more array, with no separator) was refused with
"record 5: malformed JSON (... at byte 1243 of the record)", a record and a byte that matched
nothing in the file. It loads now: read through a copy that is one array of all the elements,
numbered across the file, each element's text as written."""

from __future__ import annotations

import gzip
import json

import pytest

from cohortlab.loaders import LoadError, joined_arrays
from cohortlab.loaders.joined_arrays import join_arrays

BIG = 9080350317581165123


def profile(did, **props):
    return {"$distinct_id": did, "$properties": props}


def joined(tmp_path, text: str, *, gz: bool = False) -> tuple[str | None, int | None]:
    src = tmp_path / ("in.json.gz" if gz else "in.json")
    src.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    n = join_arrays(src, tmp_path / "out.json")
    return ((tmp_path / "out.json").read_text() if n else None), n


# ----------------------------------------------------------------------------- the copy
@pytest.mark.parametrize("text, expected, n", [
    ('[{"a": 1}, {"b": 2}][{"c": 3}]', '[{"a": 1}, {"b": 2},{"c": 3}]', 2),
    ('[1]\n[2, 3]\r\n  [4]\n', "[1,2, 3,4]", 3),
    ("[][1][][2][]", "[1,2]", 5),
    ('[\n  {"s": "][ \\" ]["}\n]\n[\n  {"t": "\\\\"}\n]', '[\n  {"s": "][ \\" ]["}\n,\n  {"t": "\\\\"}\n]', 2),
    ('\ufeff[[1, [2]], {"x": [3]}][[4]]', '[[1, [2]], {"x": [3]},[4]]', 2),
], ids=["two arrays", "line ends between", "empty arrays", "brackets and escapes in strings", "nested, BOM"])
def test_the_copy_is_one_array_of_every_element_as_written(tmp_path, text, expected, n):
    out, arrays = joined(tmp_path, text)
    assert (out, arrays) == (expected, n)
    json.loads(out)  # one valid JSON array


@pytest.mark.parametrize("text", ['[1]', '[1]{"a": 2}', '{"a": 1}[2]', '[1][2', '[1] x [2]', '[1]["a]'],
                         ids=["one array", "an object after", "an object first", "not closed", "junk between",
                              "a string not closed"])
def test_anything_but_arrays_one_after_another_is_not_joined(tmp_path, text):
    assert joined(tmp_path, text) == (None, None)


def test_the_copy_is_made_in_blocks_a_string_or_an_escape_across_two(tmp_path, monkeypatch):
    monkeypatch.setattr(joined_arrays, "BLOCK", 3)  # every token cut somewhere
    text = '[{"k": "a\\"][b"}, 12][ {"k": "\\\\"} ]'
    assert joined(tmp_path, text, gz=True) == ('[{"k": "a\\"][b"}, 12, {"k": "\\\\"} ]', 2)


# ----------------------------------------------------------------------------- loads
def test_a_backup_file_appended_to_twice_loads_every_profile_numbered_across_the_file(lab, q, write, balanced):
    first = [profile("4", **{"$email": "ann@example.com", "$last_seen": "2008-06-09T23:08:40"}),
             profile("u-2", **{"$mparticle_user_id": "@FLOAT@"})]
    second = [profile("u-2", **{"$mparticle_user_id": "@BIG@"}), {"$distinct_id": "u-3"}, "not a profile"]
    text = (json.dumps(first) + json.dumps(second)).replace('"@FLOAT@"', "1.2e18").replace('"@BIG@"', str(BIG))
    f = write("people_backup.json", text)
    r = balanced(lab.load("mixpanel-profiles", f, as_of="2026-03-01T00:00:00Z"))
    assert (r.rows_read, r.loaded, r.deduplicated, dict(r.quarantined)) == (5, 3, 1, {"not_an_object": 1})
    assert r.warnings == []  # a tolerated layout, no problem of the data
    # the later array's profile wins; elements are numbered across the file
    assert q("SELECT distinct_id, line, mparticle_user_id, email FROM mp_profiles") == [
        ("4", 1, None, "ann@example.com"), ("u-2", 3, str(BIG), None), ("u-3", 4, None, None)]
    assert q("SELECT line, reason FROM rejects") == [(5, "not_an_object")]
    assert lab.load("mixpanel-profiles", f, as_of="2026-03-01T00:00:00Z").skipped == [str(f)]


def test_a_float_keeps_its_token_in_a_later_array_gzip_too(lab, q, write, balanced):
    text = json.dumps([profile("a")]) + "\n" + json.dumps([profile("b", **{"$mparticle_user_id": "@F@"})]) + "\n"
    f = write("backup.json.gz", text.replace('"@F@"', "1.20e18"), gz=True)
    balanced(lab.load("mixpanel-profiles", f))
    assert q("SELECT distinct_id, mparticle_user_id FROM mp_profiles") == [("a", None), ("b", "1.20e18")]


def test_a_later_array_bigger_than_the_largest_element_is_joined_too(lab, q, write, balanced, run_once):
    """DuckDB's array reader takes a later array for one element: past its largest element size
    (16 MiB) it reports it as too big, not as malformed JSON (a 65 MB backup of two arrays was
    refused so). Joined all the same."""
    note = "x" * 1_000_000
    f = write("big_backup.json", json.dumps([profile("first")])
              + json.dumps([profile(f"u{i}", note=note) for i in range(17)]))  # 17 MB
    r = balanced(lab.load("mixpanel-profiles", f))
    assert (r.rows_read, r.loaded) == (18, 18)
    assert q("SELECT distinct_id, line FROM mp_profiles WHERE line IN (1, 2, 18)") == [
        ("first", 1), ("u0", 2), ("u16", 18)]


def test_members_and_mparticle_batches_read_such_files_too(lab, q, write, balanced, run_once):
    members = write("members.json", json.dumps([profile("m1"), profile("m2")]) + json.dumps([profile("m3")]))
    r = balanced(lab.load("mixpanel-members", members, cohort="Backup", as_of="2026-03-01T00:00:00Z"))
    assert (r.loaded, q("SELECT distinct_id FROM mp_cohort_members")) == (3, [("m1",), ("m2",), ("m3",)])
    batches = write("bulk.json", json.dumps([{"mpid": BIG, "user_attributes": {"plan": "pro"}}])
                    + json.dumps([{"mpid": -5, "user_attributes": {"plan": "free"}}]))
    r = balanced(lab.load("mparticle-batches", batches))
    assert (r.loaded, q("SELECT mpid, value::VARCHAR FROM mpa_attributes WHERE name = 'plan'")) == (
        2, [(-5, '"free"'), (BIG, '"pro"')])


def test_an_array_then_an_object_is_still_an_error_naming_the_file(lab, write, table_snapshot, run_once):
    f = write("mixed.json", json.dumps([profile("a")]) + json.dumps(profile("b")))
    before = table_snapshot()
    with pytest.raises(LoadError) as e:
        lab.load("mixpanel-profiles", f)
    assert str(f) in str(e.value) and "cohortlab-lines-" not in str(e.value)
    assert table_snapshot() == before
