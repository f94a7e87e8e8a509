"""The typed fast path of every loader that has one (cohortlab.loaders.fast): a clean file takes
it and gives the same canonical rows, counts and fingerprints as the exact path; a file with one
record the fast path cannot take exactly goes whole to the exact path (Engage results: that line
alone is read by the exact path's SQL), which quarantines exactly that record with its line
number. Real-export quirks (extra keys, CRLF, escapes, odd types,
pretty-printed JSON) are either taken with the exact path's rows or sent to it.

(The events fast path has its own tests in test_fast_path.py; every loader test also runs with
the fast path on and off: the `parse_path` fixture.)"""

from __future__ import annotations

import json
import logging

import pytest

from cohortlab import schema
from cohortlab.lab import Lab
from cohortlab.loaders import fast


@pytest.fixture(autouse=True)
def _once(run_once):
    """These tests choose the path themselves: once, not once per parse path."""


def _snapshot(lab) -> dict[str, list[tuple]]:
    """Every canonical table's rows, sorted (the load time left out: it differs between runs)."""
    out = {}
    for name in schema.TABLES:
        cols = [r[0] for r in lab.engine.query_rows(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
            [name])]
        sel = ", ".join(f'"{c}"' for c in cols if c != "loaded_at")
        out[name] = sorted(lab.engine.query_rows(f"SELECT {sel} FROM {name}"), key=repr)
    return out


def _load(path, kind, *, use_fast, caplog, **options):
    """Load ``path`` into a fresh lab; returns (summary, snapshot, the paths the files took)."""
    before, fast.ENABLED = fast.ENABLED, use_fast
    caplog.clear()
    try:
        with caplog.at_level(logging.DEBUG, logger="cohortlab.loaders.fast"), Lab() as lab:
            r = lab.load(kind, path, **options)
            snap = _snapshot(lab)
    finally:
        fast.ENABLED = before
    taken = [m.split(": ")[2].split(" ")[0] for m in caplog.messages if m.startswith(kind + ": ")]
    return (r.rows_read, r.loaded, r.deduplicated, dict(r.quarantined)), snap, taken


def _both(path, kind, caplog, **options):
    """The fast-path load and the exact-path load of ``path``; asserts they are identical and
    returns (summary, snapshot, paths taken by the fast-path load)."""
    summary, snap, taken = _load(path, kind, use_fast=True, caplog=caplog, **options)
    exact = _load(path, kind, use_fast=False, caplog=caplog, **options)
    assert exact[2] == []
    assert (summary, snap) == exact[:2]
    return summary, snap, taken


def _write(tmp_path, name, lines, eol="\n"):
    p = tmp_path / name
    p.write_bytes((eol.join(lines) + eol).encode())
    return p


def _j(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------- Engage results
ENGAGE_CLEAN = [
    _j({"$distinct_id": "U1", "$properties": {"$email": "a@example.com", "$created": "2026-02-18T07:42:23",
                                              "$last_seen": "2026-02-20T01:02:03",
                                              "$mparticle_user_id": "-7346244611012968789", "plan": "pro"}}),
    # an integer id, an MPID above 2^53, a time with an offset (read by the exact expression)
    '{"$distinct_id":4611686018427387904,"$properties":{"$mparticle_user_id":9080350317581165123,'
    '"$last_seen":"2026-02-20T01:02:03+02:00"}}',
    _j({"$distinct_id": 'Ü "q" \\ 8', "$properties": {}}),  # escapes, an empty object
    '{"$distinct_id":"U4","$properties":null,"extra":{"nested":[1, 2]},"$country":"DE"}',  # extra keys
    # odd values the exact path reads without quarantining: a day that does not exist, a padded
    # time, a numeric $created, a boolean and a null mParticle id
    _j({"$distinct_id": "U6", "$properties": {"$created": "2026-02-30T00:00:00", "$last_seen": " 2026-01-01T00:00:00 ",
                                              "$phone": "+1 555", "$mparticle_user_id": None}}),
    _j({"$distinct_id": "U7", "$properties": {"$created": 1771400543, "$mparticle_user_id": True,
                                              "$email": {"not": "a string"}}}),
    _j({"$distinct_id": "U1", "$properties": {"$email": "b@example.com"}}),  # U1 again: the last wins
]

# one record each that the fast path does not take: (the line, its reject reason, the path the
# file takes). "fast": the fast path reads that one line again from its text by the exact path's
# SQL; "exact": the whole file goes to the exact path.
ENGAGE_ODD = {
    "malformed line": ('{"$distinct_id":"X","$properties":{', "malformed_json", "fast"),
    "float mParticle id": ('{"$distinct_id":"X","$properties":{"$mparticle_user_id":1.2e18}}', None, "fast"),
    "boolean distinct_id": ('{"$distinct_id":true,"$properties":{}}', "bad_distinct_id", "fast"),
    "float distinct_id": ('{"$distinct_id":12.5,"$properties":{}}', None, "fast"),
    "no distinct_id": ('{"$properties":{"$email":"x@example.com"}}', "missing_distinct_id", "fast"),
    "empty distinct_id": ('{"$distinct_id":"","$properties":{}}', "missing_distinct_id", "fast"),
    "properties an array": ('{"$distinct_id":"X","$properties":[1]}', "bad_properties", "fast"),
    "not an object": ("[1, 2]", "not_an_object", "fast"),
    "a status key": ('{"$distinct_id":"X","$properties":{},"status":"ok"}', None, "exact"),
    "a page": ('{"results":[{"$distinct_id":"P"}],"status":"ok"}', None, "exact"),
    "blank line": ("", None, "exact"),
}


def test_clean_engage_results_take_the_fast_path_with_the_exact_rows(tmp_path, caplog):
    p = _write(tmp_path, "profiles.jsonl", ENGAGE_CLEAN)
    summary, snap, taken = _both(p, "mixpanel-profiles", caplog)
    assert taken == ["fast"]
    assert summary == (7, 6, 1, {})
    rows = {r[0]: r for r in snap["mp_profiles"]}
    assert rows["U1"][2] == "b@example.com" and rows["U1"][-1] == 7
    assert rows["4611686018427387904"][1] == "9080350317581165123"
    assert str(rows["4611686018427387904"][5]) == "2026-02-19 23:02:03"  # +02:00 honoured
    assert rows['Ü "q" \\ 8'][-1] == 3
    assert rows["U6"][4] is None and str(rows["U6"][5]) == "2026-01-01 00:00:00"
    assert rows["U7"][1] == "true"
    assert {r[0]: r[2] for r in snap["mp_profile_history"]}["4611686018427387904"] == "UBIGINT"


def test_crlf_line_ends_take_the_fast_path_too(tmp_path, caplog):
    p = _write(tmp_path, "profiles.jsonl", ENGAGE_CLEAN, eol="\r\n")
    _, _, taken = _both(p, "mixpanel-profiles", caplog)
    assert taken == ["fast"]


@pytest.mark.parametrize("case", sorted(ENGAGE_ODD))
def test_one_odd_engage_record_is_read_by_the_exact_path_with_its_line(tmp_path, caplog, case):
    odd, reason, path = ENGAGE_ODD[case]
    p = _write(tmp_path, "profiles.jsonl", ENGAGE_CLEAN[:3] + [odd] + ENGAGE_CLEAN[3:])
    (rows_read, loaded, dedup, quarantined), snap, taken = _both(p, "mixpanel-profiles", caplog)
    assert taken == [path]
    assert rows_read == loaded + dedup + sum(quarantined.values())
    rejects = [(r[3], r[4]) for r in snap["rejects"]]
    assert rejects == ([(4, reason)] if reason else [])
    lines = {r[-1] for r in snap["mp_profiles"]}
    assert {5, 8} <= lines  # the lines after the odd one keep their numbers


def test_a_float_mparticle_id_keeps_its_exported_token_on_the_fast_path(tmp_path, caplog):
    odd = '{"$distinct_id":"F","$properties":{"$mparticle_user_id":9.080350317581165e18,"$email":"f@example.com"}}'
    p = _write(tmp_path, "profiles.jsonl", ENGAGE_CLEAN + [odd])
    summary, snap, taken = _both(p, "mixpanel-profiles", caplog)
    assert taken == ["fast"]
    assert summary == (8, 7, 1, {})
    row = next(r for r in snap["mp_profiles"] if r[0] == "F")
    assert row[1] == "9.080350317581165e18" and row[2] == "f@example.com" and row[-1] == 8
    assert next(r for r in snap["mp_profile_history"] if r[0] == "F")[2] == "DOUBLE"


def test_a_page_among_bare_results_fails_or_loads_as_the_exact_path_says(tmp_path, caplog):
    page = '{"results":[],"status":"error","error":"rate limited"}'
    p = _write(tmp_path, "profiles.jsonl", ENGAGE_CLEAN[:2] + [page] + ENGAGE_CLEAN[2:])
    errors = []
    for use_fast in (True, False):
        with pytest.raises(Exception) as e:
            _load(p, "mixpanel-profiles", use_fast=use_fast, caplog=caplog)
        errors.append(str(e.value))
    assert errors[0] == errors[1] and "rate limited" in errors[0]


def test_members_pages_of_bare_results_take_the_fast_path(tmp_path, caplog):
    p = _write(tmp_path, "members.jsonl", ENGAGE_CLEAN)
    summary, snap, taken = _both(p, "mixpanel-members", caplog, cohort="Power Users", as_of="2026-03-01T00:00:00Z")
    assert taken == ["fast"]
    assert summary == (7, 6, 1, {})
    assert sorted(r[3] for r in snap["mp_cohort_members"])[:2] == ["4611686018427387904", "U1"]
    assert len(snap["mp_profiles"]) == 4  # the members with a non-empty $properties


def test_members_with_one_malformed_line_quarantine_exactly_it(tmp_path, caplog):
    p = _write(tmp_path, "members.jsonl", ENGAGE_CLEAN[:2] + ['{"$distinct_id":'] + ENGAGE_CLEAN[2:])
    summary, snap, taken = _both(p, "mixpanel-members", caplog, cohort="Power Users", as_of="2026-03-01T00:00:00Z")
    assert taken == ["fast"]  # that line by the exact path's SQL
    assert summary == (8, 6, 1, {"malformed_json": 1})
    assert [(r[3], r[4], r[5]) for r in snap["rejects"]] == [(3, "malformed_json", '{"$distinct_id":')]


def test_pretty_printed_engage_pages_keep_the_exact_path(tmp_path, caplog, mixpanel_data_dir):
    _, snap, taken = _both(mixpanel_data_dir / "profiles" / "engage_page_0.json", "mixpanel-profiles", caplog)
    assert taken == []  # not JSONL: the fast path is not tried
    assert snap["mp_profiles"]


# --------------------------------------------------------------------------- members CSV
CSV_CLEAN = [
    "distinct_id,$email,as_of",
    "cust-9,ivy@example.com,2026-03-01T00:00:00Z",
    '"cust,13",max@example.com,2026-03-01T00:00:00Z',  # a quoted id with the delimiter in it
    "  4611686018427387904 ,,2026-03-01T00:00:00Z",  # padded: trimmed
    "cust-9,again@example.com,2026-03-01T00:00:00Z",  # a repeat: deduplicated
    '"Ü ""q""",,',  # an empty as_of is no other value
]


@pytest.mark.parametrize("eol", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_a_clean_members_csv_takes_the_fast_path_with_the_exact_rows(tmp_path, caplog, eol):
    p = _write(tmp_path, "members.csv", CSV_CLEAN, eol=eol)
    summary, snap, taken = _both(p, "mixpanel-members", caplog, cohort="Churn Risk")
    assert taken == ["fast"]
    assert summary == (5, 4, 1, {})
    members = {r[3]: r[-1] for r in snap["mp_cohort_members"]}
    assert members == {"cust-9": 2, "cust,13": 3, "4611686018427387904": 4, 'Ü "q"': 6}
    assert str(snap["mp_cohort_snapshots"][0][3]) == "2026-03-01 00:00:00"


def test_a_members_csv_row_without_an_id_falls_back_and_is_quarantined_with_its_line(tmp_path, caplog):
    p = _write(tmp_path, "members.csv", CSV_CLEAN[:3] + [" ,nobody@example.com,2026-03-01T00:00:00Z"] + CSV_CLEAN[3:])
    summary, snap, taken = _both(p, "mixpanel-members", caplog, cohort="Churn Risk")
    assert taken == ["exact"]
    assert summary == (6, 4, 1, {"missing_distinct_id": 1})
    assert [(r[3], r[4]) for r in snap["rejects"]] == [(4, "missing_distinct_id")]


def test_a_members_csv_id_written_as_the_warehouse_null_falls_back_and_is_quarantined(tmp_path, caplog):
    """\\N (a warehouse unload's NULL) is no distinct_id on both paths: the fast path declines the
    file and the exact path quarantines the row, with the same rows as a load without the fast path."""
    p = _write(tmp_path, "members.csv", CSV_CLEAN[:2] + ["\\N,nobody@example.com,2026-03-01T00:00:00Z"] + CSV_CLEAN[2:])
    summary, snap, taken = _both(p, "mixpanel-members", caplog, cohort="Churn Risk")
    assert taken == ["exact"]
    assert summary == (6, 4, 1, {"missing_distinct_id": 1})
    assert [(r[3], r[4]) for r in snap["rejects"]] == [(3, "missing_distinct_id")]
    assert "\\N" not in {r[3] for r in snap["mp_cohort_members"]}


def test_a_members_csv_repeating_its_header_falls_back_and_skips_it(tmp_path, caplog):
    """A row whose id is the column's name may repeat the header (part files joined): the fast path
    (which reads the id column only) declines the file; the exact path skips the repeated header
    with a warning and loads a row that only names the column as its id. The same rows either way."""
    p = _write(tmp_path, "members.csv", CSV_CLEAN[:3] + [CSV_CLEAN[0], "distinct_id,,"] + CSV_CLEAN[3:])
    summary, snap, taken = _both(p, "mixpanel-members", caplog, cohort="Churn Risk")
    assert taken == ["exact"]
    assert summary == (6, 5, 1, {})
    members = {r[3]: r[-1] for r in snap["mp_cohort_members"]}
    assert members == {"cust-9": 2, "cust,13": 3, "distinct_id": 5, "4611686018427387904": 6, 'Ü "q"': 8}


@pytest.mark.parametrize("eol", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_a_members_csv_after_an_excel_sep_line_takes_the_fast_path_with_the_exact_rows(tmp_path, caplog, eol):
    """Excel's "sep=;" line before the header: both paths skip it, read ";" as the delimiter and
    number the rows by their physical line (the header is line 2)."""
    p = _write(tmp_path, "members.csv", ["sep=;", "distinct_id;$email;as_of",
                                         "cust-9;ivy@example.com;2026-03-01T00:00:00Z",
                                         "cust,13;max@example.com, max2@example.com;2026-03-01T00:00:00Z",
                                         "  4611686018427387904 ;;2026-03-01T00:00:00Z",
                                         "cust-9;again@example.com;2026-03-01T00:00:00Z",
                                         '"Ü ""q""";;'], eol=eol)
    summary, snap, taken = _both(p, "mixpanel-members", caplog, cohort="Churn Risk")
    assert taken == ["fast"]
    assert summary == (5, 4, 1, {})
    members = {r[3]: r[-1] for r in snap["mp_cohort_members"]}
    assert members == {"cust-9": 3, "cust,13": 4, "4611686018427387904": 5, 'Ü "q"': 7}


def test_a_members_csv_with_two_as_of_values_fails_the_same_way_on_both_paths(tmp_path, caplog):
    p = _write(tmp_path, "members.csv", CSV_CLEAN + ["cust-77,,2026-03-08T00:00:00Z"])
    errors = []
    for use_fast in (True, False):
        with pytest.raises(Exception) as e:
            _load(p, "mixpanel-members", use_fast=use_fast, caplog=caplog, cohort="Churn Risk")
        errors.append(str(e.value))
    assert errors[0] == errors[1] and "several values" in errors[0]


# --------------------------------------------------------------------------- mParticle profiles
MPA_CLEAN = [
    _j({"mpid": -7056362302394538316, "created_timestamp_ms": 1771400543000, "last_stored_timestamp_ms": 1771400543000,
        "is_opted_out": False, "limit_ad_tracking": None,
        "device_identities": [{"type": "device_application_stamp", "encoding": "none", "value": "6ec28fd7"}],
        "user_identities": [{"type": "customer_id", "encoding": "none", "value": "cust-1"},
                            {"type": "email", "encoding": "none", "value": "farid@example.com"}],
        "account_userattributes": None, "user_attributes": {"$firstname": "Farid", "platform": "web"},
        "audience_memberships": []}),
    # an MPID as a string above 2^53, identities as an object map, IDSync spellings, odd attributes
    _j({"mpid": "9080350317581165123", "created_timestamp_ms": "1771400543000", "is_opted_out": "True",
        "user_identities": {"customerid": "cust-2", "other2": 12345678901234567890},
        "user_attributes": {"tags": ["a", "b"], "vip": "false", "n": 1.5, "tag": None, "nested": {"x": 1}},
        "audience_memberships": [{"audience_id": 17802, "audience_name": "Power Users audience",
                                  "expiration_timestamp_ms": None}]}),
    # extra keys, a null container, an environment that is not a string, a float timestamp
    '{"mpid":17,"created_timestamp_ms":1.7714005430e12,"environment":1e3,"device_identities":null,'
    '"unknown_key":{"deep":[{"x":1}]},"user_attributes":{"é \\"q\\"":"ü"}}',
    _j({"mpid": -7056362302394538316, "user_identities": [], "is_opted_out": True}),  # again: the last wins
]

MPA_DECLINED = {
    "MPID as a JSON float": ('{"mpid":9.08e18,"user_identities":[]}', "invalid_mpid"),
    "MPID 1.0": ('{"mpid":1.0}', "invalid_mpid"),
    "MPID above int64": ('{"mpid":9223372036854775808}', "invalid_mpid"),
    "no MPID": ('{"user_identities":[]}', "missing_mpid"),
    "malformed line": ('{"mpid":5,"user_identities":[', "malformed_json"),
    "not an object": ('"just a string"', "not_an_object"),
    "bad timestamp": ('{"mpid":5,"created_timestamp_ms":"yesterday"}', "invalid_timestamp"),
    "identities a string": ('{"mpid":5,"user_identities":"cust-5"}', "invalid_identities"),
    "blank line": ("", None),
}


def test_clean_mparticle_profiles_take_the_fast_path_with_the_exact_rows(tmp_path, caplog):
    p = _write(tmp_path, "profiles.jsonl", MPA_CLEAN)
    summary, snap, taken = _both(p, "mparticle-profiles", caplog)
    assert taken == ["fast"]
    assert summary == (4, 3, 1, {})
    profiles = {r[0]: r for r in snap["mpa_profiles"]}
    assert set(profiles) == {-7056362302394538316, 9080350317581165123, 17}
    assert profiles[-7056362302394538316][3] is True and profiles[-7056362302394538316][-1] == 4
    assert profiles[17][4] == "1000.0"  # the JSON functions' spelling of 1e3, as the exact path stores it
    ids = {(r[0], r[2]): r[3] for r in snap["mpa_identities"]}
    assert ids[(9080350317581165123, "customer_id")] == "cust-2"
    assert ids[(9080350317581165123, "other_id_2")] == "12345678901234567890"


def test_an_identity_entry_to_quarantine_is_quarantined_on_the_fast_path_exactly(tmp_path, caplog):
    bad = '{"mpid":5,"user_identities":[{"type":"email","value":{"not":"scalar"}}]}'
    p = _write(tmp_path, "profiles.jsonl", MPA_CLEAN[:2] + [bad] + MPA_CLEAN[2:])
    summary, snap, taken = _both(p, "mparticle-profiles", caplog)
    assert taken == ["fast"]  # the record is whole and typed exactly: the shared steps quarantine it
    assert summary == (5, 3, 1, {"invalid_identities": 1})
    assert [(r[3], r[4], r[5]) for r in snap["rejects"]] == [(3, "invalid_identities", bad)]


@pytest.mark.parametrize("case", sorted(MPA_DECLINED))
def test_one_mparticle_record_the_fast_path_cannot_take_sends_the_file_to_the_exact_path(tmp_path, caplog, case):
    odd, reason = MPA_DECLINED[case]
    p = _write(tmp_path, "profiles.jsonl", MPA_CLEAN[:2] + [odd] + MPA_CLEAN[2:])
    (rows_read, loaded, dedup, quarantined), snap, taken = _both(p, "mparticle-profiles", caplog)
    assert taken == ["exact"]
    assert rows_read == loaded + dedup + sum(quarantined.values())
    assert [(r[3], r[4]) for r in snap["rejects"]] == ([(3, reason)] if reason else [])
    assert {r[-1] for r in snap["mpa_profiles"]} >= {2, 5}  # numbered as in the file


def test_pretty_printed_mparticle_profiles_keep_the_exact_path(tmp_path, caplog, mparticle_data_dir):
    _, snap, taken = _both(mparticle_data_dir / "profiles.json", "mparticle-profiles", caplog)
    assert taken == []
    assert snap["mpa_profiles"]


# --------------------------------------------------------------------------- the sample exports
@pytest.mark.parametrize("kind, rel, options", [
    ("mixpanel-profiles", "mixpanel/profiles", {}),
    ("mixpanel-members", "mixpanel/members/power_users_2026-03-08.jsonl",
     {"cohort": "Power Users", "as_of": "2026-03-08T00:00:00Z"}),
    ("mixpanel-members", "mixpanel/members/churn_risk_2026-03-01.csv", {"cohort": "Churn Risk"}),
    ("mparticle-profiles", "mparticle/profiles.jsonl", {}),
], ids=["engage", "members-jsonl", "members-csv", "mparticle"])
def test_sample_exports_load_the_same_either_way_and_twice_doubles_nothing(kind, rel, options, caplog, mixpanel_data_dir):
    path = mixpanel_data_dir.parent / rel

    def load(use_fast):
        before, fast.ENABLED = fast.ENABLED, use_fast
        try:
            with caplog.at_level(logging.DEBUG, logger="cohortlab.loaders.fast"), Lab() as lab:
                lab.load(kind, path, **options)
                once = _snapshot(lab)
                second = lab.load(kind, path, **options)  # the same fingerprints: skipped
                assert second.loaded == 0 and second.skipped
                assert _snapshot(lab) == once
                return once
        finally:
            fast.ENABLED = before

    caplog.clear()
    fast_snap = load(True)
    assert any(m.endswith(": fast path") for m in caplog.messages)
    assert fast_snap == load(False)


# identity lists and attribute maps with every kind of value (a tag, floats, nesting, escapes,
# an IDSync spelling, a null identity value): the fast path gives the exact path's rows. (Reading
# these containers typed by read_json, a list of structs and a MAP(VARCHAR, JSON), gives the same
# rows but costs more CPU than reading their JSON text and parsing it again: DuckDB 2.0.1, the 1M
# world's profiles, 2.5 against 1.8 CPU-s for the read and the unnesting)
MPA_CONTAINERS = [
    _j({"mpid": -7056362302394538316, "created_timestamp_ms": 1771400543000, "is_opted_out": False,
        "device_identities": [{"type": "ios_idfv", "encoding": "none", "value": "6ec28fd7"}],
        "user_identities": [{"type": "customer_id", "encoding": "none", "value": "cust-1"},
                            {"type": "Customer ID", "value": 12345678901234567890},
                            {"identity_type": "other2", "identity": "o-2"},
                            {"type": "email", "value": None}],
        "user_attributes": {"tag": None, "n": 1.5, "big": 1e18, "nested": {"x": [1, {"y": None}]},
                            "é \"q\"": "ü\n", "vip": "True", "list": ["a", 2]},
        "audience_memberships": []}),
    _j({"mpid": "9080350317581165123", "device_identities": [], "user_identities": [], "user_attributes": {}}),
    '{"mpid":17,"device_identities":[{"type":1e18,"value":-0}],"user_identities":[{"type":"email","value":"a\\u00e9"}],'
    '"user_attributes":{"a" : [ 1 , 2 ]}}',
]


def test_identity_lists_and_attribute_maps_give_the_exact_rows(tmp_path, caplog):
    p = _write(tmp_path, "profiles.jsonl", MPA_CONTAINERS)
    summary, snap, taken = _both(p, "mparticle-profiles", caplog)
    assert taken == ["fast"]
    assert summary == (3, 3, 0, {})
    attrs = {(r[0], r[1]): r[2] for r in snap["mpa_attributes"]}
    assert attrs[(-7056362302394538316, "tag")] == "null"  # a tag keeps its JSON null
    assert attrs[(-7056362302394538316, "nested")] == '{"x":[1,{"y":null}]}'
    assert attrs[(17, "a")] == "[1,2]"
    ids = sorted((r[0], r[2], r[3]) for r in snap["mpa_identities"])
    assert [i for i in ids if i[0] == -7056362302394538316] == [
        (-7056362302394538316, "customer_id", "12345678901234567890"), (-7056362302394538316, "customer_id", "cust-1"),
        (-7056362302394538316, "ios_idfv", "6ec28fd7"), (-7056362302394538316, "other_id_2", "o-2")]
    assert (17, "email", "a\u00e9") in ids  # a null identity value (the email above) is no identity


MPA_OTHER_CONTAINERS = {
    "identities absent": '{"mpid":5,"user_attributes":{"a":1},"device_identities":[]}',
    "identities null": '{"mpid":5,"user_identities":null,"device_identities":[],"user_attributes":{}}',
    "identities an object map": '{"mpid":5,"user_identities":{"email":"x@y"},"device_identities":[],"user_attributes":{}}',
    "attributes with a duplicate key": '{"mpid":5,"user_identities":[],"device_identities":[],"user_attributes":{"a":1,"a":2}}',
    "attributes absent": '{"mpid":5,"user_identities":[],"device_identities":[]}',
}


@pytest.mark.parametrize("case", sorted(MPA_OTHER_CONTAINERS))
def test_absent_null_map_and_repeated_key_containers_stay_on_the_fast_path_exactly(tmp_path, caplog, case):
    """Containers a typed read_json would give as NULL (an absent, null or object-map identity
    list, an attribute map with a repeated key) are read as JSON: the fast path, the exact rows."""
    lines = MPA_CONTAINERS[:1] + [MPA_OTHER_CONTAINERS[case]] + MPA_CONTAINERS[1:]
    p = _write(tmp_path, "profiles.jsonl", lines)
    summary, snap, taken = _both(p, "mparticle-profiles", caplog)
    assert taken == ["fast"]
    assert summary[3] == {}
    assert any(r[0] == 5 for r in snap["mpa_profiles"])
    if case == "attributes with a duplicate key":
        # one row for the key, its first value (docs/loading.md#mparticle), on both paths
        assert sorted(r[2] for r in snap["mpa_attributes"] if r[0] == 5) == ["1"]


def test_a_float_mpid_sends_the_file_to_the_exact_path_once(tmp_path, caplog, monkeypatch):
    """A float-spelled MPID: the file goes to the exact path (the MPID never passes through a
    float), which quarantines it with its line and text."""
    import logging

    from cohortlab import Lab

    monkeypatch.setattr(fast, "ENABLED", True)
    p = _write(tmp_path, "profiles.jsonl", MPA_CONTAINERS + ['{"mpid":9.08e18,"user_identities":[]}'])
    with caplog.at_level(logging.DEBUG, logger="cohortlab.loaders.fast"), Lab() as lab:
        r = lab.load("mparticle-profiles", p)
        assert dict(r.quarantined) == {"invalid_mpid": 1}
        assert lab.engine.query_rows("SELECT line, raw FROM rejects") == [(4, '{"mpid":9.08e18,"user_identities":[]}')]
    assert [m for m in caplog.messages if "profiles.jsonl" in m] == [
        f"mparticle-profiles: {p}: exact path (a record the typed read cannot take exactly)"]


@pytest.mark.parametrize("kind,lines,query,expected", [
    ("mixpanel-events",
     ['{"event":"Open","properties":{"distinct_id":"a","time":1772323200,"distinct_id":"b","$insert_id":"i1",'
      '"$mparticle_user_id":"1","$mparticle_user_id":"2"}}',
      '{"event":"Open","event":"Close","properties":{"distinct_id":"c","time":1772323200,"$insert_id":"i2"}}'],
     "SELECT event, distinct_id, mparticle_user_id FROM mp_events", [("Open", "a", "1"), ("Open", "c", None)]),
    ("mixpanel-profiles",
     ['{"$distinct_id":"a","$properties":{"$email":"x@example.com"},"$distinct_id":"b",'
      '"$properties":{"$email":"y@example.com"}}',
      '{"$distinct_id":9080350317581165123,"$distinct_id":"c","$properties":{"$mparticle_user_id":1.5e18,'
      '"$mparticle_user_id":2.5e18}}'],
     "SELECT distinct_id, email, mparticle_user_id FROM mp_profiles",
     [("9080350317581165123", None, "1.5e18"), ("a", "x@example.com", None)]),
    ("mparticle-profiles",
     ['{"mpid":1,"user_identities":{"email":"a@example.com"},"mpid":2,"user_identities":{"email":"b@example.com"}}'],
     "SELECT mpid, identity_type, value FROM mpa_identities", [(1, "email", "a@example.com")]),
])
def test_a_key_repeated_in_one_object_gives_its_first_value_on_both_paths(tmp_path, caplog, kind, lines, query,
                                                                         expected):
    """No exporter writes a key twice in one object, and JSON leaves its meaning open (Python's json
    takes the last value): cohortlab reads the first, the same on the fast and the exact path,
    without a warning (docs/loading.md#limits: a check would cost the fast path a parse of every
    line)."""
    p = _write(tmp_path, "f.jsonl", lines)
    summary, snap, taken = _both(p, kind, caplog)
    assert summary[3] == {} and taken == ["fast"]
    with Lab() as lab:
        r = lab.load(kind, p)
        assert r.warnings == []
        assert sorted(lab.engine.query_rows(query), key=repr) == expected
