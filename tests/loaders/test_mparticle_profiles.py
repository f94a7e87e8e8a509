"""mparticle-profiles: Profile API responses into mpa_profiles / mpa_identities / mpa_attributes /
mpa_audiences. Exact int64 MPIDs, identity type normalisation, booleans, upsert per MPID."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from cohortlab.loaders import LoadError

KIND = "mparticle-profiles"


def jsonl(*records) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


# --------------------------------------------------------------------------- sample files
def test_pretty_printed_single_object(lab, q, mparticle_data_dir):
    path = mparticle_data_dir / "profiles.json"
    r = lab.load(KIND, path)
    assert (r.rows_read, r.loaded, r.deduplicated, r.n_quarantined) == (1, 1, 0, 0)
    assert q("SELECT mpid, created_at, last_stored_at, is_opted_out, environment, source, line FROM mpa_profiles") == [
        (-7346244611012968789, datetime(2025, 1, 1, 12), datetime(2026, 3, 1), False, None, "profile_api", 1)
    ]
    assert q("SELECT mpid, kind, identity_type, value FROM mpa_identities") == sorted(
        [
            (-7346244611012968789, "device", "android_uuid", "8789c459016a94b0"),
            (-7346244611012968789, "user", "customer_id", "cust-1"),
            (-7346244611012968789, "user", "email", "ann@example.com"),
        ],
        key=repr,
    )
    assert q("SELECT name, value::VARCHAR, value_bool FROM mpa_attributes") == sorted(
        [
            ("$firstname", '"Ann"', None),
            ("ltv", '"342.1"', None),
            ("favourite_categories", '["decor","garden"]', None),
            ("vip", "null", None),
            ("Power Users", '"true"', True),
        ],
        key=repr,
    )
    assert q("SELECT mpid, audience_id, audience_name, expiration_at FROM mpa_audiences") == [
        (-7346244611012968789, 17802, "Power Users audience", None)
    ]
    assert q("SELECT DISTINCT load_id, source_file FROM mpa_attributes") == [(r.load_ids[0], str(path))]


def test_jsonl_sample(lab, q, mparticle_data_dir):
    r = lab.load(KIND, mparticle_data_dir / "profiles.jsonl")
    assert (r.rows_read, r.loaded, r.deduplicated, r.n_quarantined) == (7, 7, 0, 0)
    assert q("SELECT mpid, line FROM mpa_profiles") == sorted(
        [
            (9080350317581165123, 1),
            (4611686018427387904, 2),
            (-1, 3),
            (123456789012345678, 4),
            (7000000000000000001, 5),
            (3141592653589793238, 6),
            (-4242424242424242424, 7),
        ],
        key=repr,
    )
    # IDSync spellings and device ids normalised to Events API names
    assert q("SELECT identity_type, value FROM mpa_identities WHERE mpid = 4611686018427387904") == [
        ("customer_id", "cust-3"),
        ("other_id_2", "legacy-3"),
    ]
    assert q("SELECT kind, identity_type FROM mpa_identities WHERE mpid IN (3141592653589793238, -4242424242424242424)") == [
        ("device", "android_advertising_id"),
        ("device", "android_uuid"),
        ("device", "ios_advertising_id"),
        ("device", "ios_idfv"),
    ]
    assert q("SELECT identity_type FROM mpa_identities WHERE mpid = 123456789012345678") == [
        ("customer_id",), ("email",), ("mobile_number",)
    ]
    # the cohort attribute in its three spellings
    assert q("SELECT mpid, value::VARCHAR, value_bool FROM mpa_attributes WHERE name = 'Power Users'") == [
        (4611686018427387904, '"False"', False),
        (9080350317581165123, "true", True),
    ]
    assert q("SELECT mpid, is_opted_out FROM mpa_profiles WHERE is_opted_out") == [(7000000000000000001, True)]


# --------------------------------------------------------------------------- layouts
def test_array_and_concatenated_documents(lab, q, write):
    arr = write("arr.json", json.dumps([{"mpid": 1}, {"mpid": "2"}], indent=2))
    docs = write("docs.json", '{\n  "mpid": 3\n}\n{\n  "mpid": -4\n}\n')
    r = lab.load(KIND, [arr, docs])
    assert r.loaded == 4
    assert q("SELECT mpid, line, source_file FROM mpa_profiles") == sorted(
        [(1, 1, str(arr)), (2, 2, str(arr)), (3, 1, str(docs)), (-4, 2, str(docs))], key=repr
    )


def test_gzip_jsonl(lab, q, write):
    p = write("profiles.jsonl.gz", jsonl({"mpid": 5}, {"mpid": 6}), gz=True)
    assert lab.load(KIND, p).loaded == 2
    assert q("SELECT mpid FROM mpa_profiles") == [(5,), (6,)]


# --------------------------------------------------------------------------- identities
@pytest.mark.parametrize(
    "given,expected",
    [
        ("customer_id", "customer_id"),
        ("customerid", "customer_id"),
        ("CustomerID", "customer_id"),
        ("Customer ID", "customer_id"),
        ("email", "email"),
        ("other", "other"),
        ("other_id_1", "other"),  # `other` is Other ID 1
        ("other1", "other"),
        ("other_1", "other"),
        ("otherid", "other"),
        ("otherid1", "other"),
        ("other2", "other_id_2"),
        ("other3", "other_id_3"),
        ("other10", "other_id_10"),
        ("Other_ID_4", "other_id_4"),
        ("mobilenumber", "mobile_number"),
        ("mobile_number", "mobile_number"),
        ("phonenumber2", "phone_number_2"),
        ("phonenumber3", "phone_number_3"),
        ("facebookcustomaudienceid", "facebook_custom_audience_id"),
        ("some_new_type", "some_new_type"),
    ],
)
def test_user_identity_type_spellings(lab, q, write, given, expected):
    p = write("p.jsonl", jsonl(
        {"mpid": 1, "user_identities": [{"type": given, "encoding": "none", "value": "v1"}]},
        {"mpid": 2, "user_identities": {given: "v2"}},
        {"mpid": 3, "user_identities": [{"identity_type": given, "identity": "v3"}]},
    ))
    lab.load(KIND, p)
    assert q("SELECT mpid, kind, identity_type, value FROM mpa_identities") == [
        (1, "user", expected, "v1"), (2, "user", expected, "v2"), (3, "user", expected, "v3")
    ]


def test_identity_values_kept_exactly_and_null_skipped(lab, q, write):
    p = write("p.jsonl", jsonl({
        "mpid": 1,
        "user_identities": {"customer_id": 12345678901234567890, "email": None, "other": " Spaced "},
        "device_identities": [{"type": "push_token", "encoding": "none", "value": "tok"},
                              {"type": "ios_idfv", "encoding": "none", "value": None}],
    }))
    r = lab.load(KIND, p)
    assert r.loaded == 1
    assert q("SELECT kind, identity_type, value FROM mpa_identities") == [
        ("device", "push_token", "tok"),
        ("user", "customer_id", "12345678901234567890"),
        ("user", "other", " Spaced "),
    ]


def test_an_identity_written_as_a_json_float_keeps_the_token_the_file_spells(lab, q, write):
    """DuckDB re-writes a JSON float (9080350317581165123.0 as 9080350317581166000.0, 1E18 as
    1000000000000000000.0): an identity keeps the file's token, as a Mixpanel identifier does, in a
    list (value or identity) or a map, in JSONL and in a JSON array."""
    one = '{"mpid": 1, "user_identities": [{"type": "customer_id", "value": 9080350317581165123.0}], ' \
          '"device_identities": [{"type": "push_token", "identity": 2.5e18}]}'
    two = '{"mpid": 2, "user_identities": {"customer_id": 9.080350317581165123e18, "other": 1E18, "email": 1.5}}'
    want = [(1, "customer_id", "9080350317581165123.0"), (1, "push_token", "2.5e18"),
            (2, "customer_id", "9.080350317581165123e18"), (2, "email", "1.5"), (2, "other", "1E18")]
    lab.load(KIND, write("p.jsonl", one + "\n" + two + "\n"))
    assert q("SELECT mpid, identity_type, value FROM mpa_identities") == want
    lab.load(KIND, write("p.json", "[" + one + ",\n" + two.replace('"mpid": 2', '"mpid": 3') + "]"),
             as_of="2030-01-01")
    assert q("SELECT identity_type, value FROM mpa_identities WHERE mpid = 3") == [(t, v) for m, t, v in want if m == 2]


def test_a_float_identity_under_a_type_spelled_with_a_quote_keeps_its_token_and_runs_no_sql(lab, q, write):
    """The identity type is the file's text: its float token was searched with a pattern written
    into the SQL unquoted, and a type spelled ``cust'omer`` ended the literal (the load failed with
    a parser error; a type of SQL would have run as SQL)."""
    lab.load(KIND, write("p.jsonl", '{"mpid": 1, "user_identities": {"cust\'omer\'); DROP TABLE mpa_profiles; --": 12.50}}\n'))
    assert q("SELECT mpid, identity_type, value FROM mpa_identities") == [  # the type normalised, as any
        (1, "cust'omer');_drop_table_mpa_profiles;___", "12.50")]
    assert q("SELECT mpid FROM mpa_profiles") == [(1,)]


def test_an_events_api_batch_among_profile_answers_is_quarantined_not_a_snapshot(lab, q, write):
    """A download folder mixing Profile API answers and Events API batches (an S3 output's .txt
    files), loaded as mparticle-profiles: a batch fits the keys a profile is read from, and was
    read as a later snapshot of the profile, replacing its identities, attributes and audiences
    with the batch's few. A record with an events or device_info key is quarantined instead."""
    write("dl/a_profile.json", json.dumps({
        "mpid": 7, "created_timestamp_ms": 1735689600000, "user_identities": [{"type": "email", "value": "a@x"}],
        "user_attributes": {"plan": "pro"}, "audience_memberships": [{"audience_id": 5, "audience_name": "A"}]}))
    batches = write("dl/b_s3_output.txt", jsonl(
        {"mpid": 7, "environment": "production", "events": [], "user_attributes": {"Power Users": True}},
        {"mpid": 7, "device_info": {"ios_idfv": "v"}, "user_identities": {"customer_id": "c7"}},
        # a batch that names its user by identities alone (mParticle's JSON reference example):
        # an events_api_batch too, not missing_mpid, which said nothing of what it is
        {"source_request_id": "769D83CB", "device_info": {"ios_idfv": "0f12"},
         "user_identities": {"customer_id": "123456"}, "environment": "production"}))
    r = lab.load(KIND, batches.parent)
    assert (r.rows_read, r.loaded, dict(r.quarantined)) == (4, 1, {"events_api_batch": 3})
    assert any("b_s3_output.txt: every record was quarantined (3: events_api_batch 3)" in w for w in r.warnings)
    assert q("SELECT kind, identity_type, value FROM mpa_identities") == [("user", "email", "a@x")]
    assert q("SELECT name, value::VARCHAR FROM mpa_attributes") == [("plan", '"pro"')]
    assert q("SELECT audience_id FROM mpa_audiences") == [(5,)]


def test_a_firehose_request_is_quarantined_as_such_not_as_an_events_api_batch(lab, q, write, run_once):
    """A Firehose request (the JSON mParticle sends a Firehose partner: its events key, its
    identities possibly MD5-hashed) was quarantined events_api_batch, whose advice, to load it as
    mparticle-batches, applied it there with the hashes as identities: it is firehose_request."""
    from .test_mparticle_batches import FIREHOSE_EVENT_REQUEST

    r = lab.load(KIND, write("p.json", FIREHOSE_EVENT_REQUEST))
    assert (r.loaded, dict(r.quarantined)) == (0, {"firehose_request": 1})
    assert any("p.json: every record was quarantined (1: firehose_request 1)" in w for w in r.warnings)
    assert q("SELECT count(*) FROM mpa_identities") == [(0,)]


# an IDSync /search answer, as mParticle's HTTP API reference shapes it (developers/idsync/http-api),
# with values: what a lookup of customer ids to MPIDs saves, one answer per line
IDSYNC_ANSWERS = jsonl(
    {"context": None, "mpid": "-7346244611012968789", "matched_identities": {"customerid": "cust-15"},
     "is_ephemeral": False},
    {"context": "c2", "mpid": "4611686018427387905", "matched_identities": {"email": "b@example.com"},
     "is_ephemeral": True})


def test_an_idsync_answer_is_quarantined_not_read_as_a_snapshot_of_the_profile(lab, q, write, run_once):
    """An IDSync answer holds an mpid and only the identities of the request that matched: read
    as a Profile API answer, a later file of them replaced the stored profile with one of no
    identities, attributes or audiences. Quarantined idsync_response; the profile
    keeps what its snapshot holds. Runs once: the check is one of the record checks every path
    applies (the typed fast path sends the lines to the exact path, as for firehose_request)."""
    lab.load(KIND, write("profile.json", json.dumps(
        {"mpid": -7346244611012968789, "last_stored_timestamp_ms": 1575301484215,
         "user_identities": [{"type": "customer_id", "encoding": "none", "value": "cust-15"}],
         "user_attributes": {"Power Users": "true"}})), as_of="2026-03-01T00:00:00Z")
    r = lab.load(KIND, write("idsync.jsonl", IDSYNC_ANSWERS), as_of="2026-03-02T00:00:00Z")
    assert (r.loaded, dict(r.quarantined)) == (0, {"idsync_response": 2})
    assert q("SELECT mpid FROM mpa_profiles") == [(-7346244611012968789,)]
    assert q("SELECT identity_type, value FROM mpa_identities") == [("customer_id", "cust-15")]
    assert q("SELECT name, value_bool FROM mpa_attributes") == [("Power Users", True)]


def test_an_empty_identity_value_is_no_identity(lab, q, write):
    """An identity whose value is "" holds none, in a list or a map, as an empty CSV cell or
    Parquet value does (it was an identity '' that every such profile shared)."""
    p = write("p.jsonl", jsonl(
        {"mpid": 1, "user_identities": [{"type": "customer_id", "encoding": "none", "value": ""},
                                        {"type": "email", "encoding": "none", "value": "a@x"}],
         "device_identities": [{"type": "ios_idfv", "encoding": "none", "value": ""}]},
        {"mpid": 2, "user_identities": {"customer_id": "", "other": "o2"}},
        {"mpid": 3, "user_identities": [{"type": "", "value": ""}]},
    ))
    r = lab.load(KIND, p)
    assert (r.loaded, dict(r.quarantined)) == (2, {"invalid_identities": 1})  # no type: still quarantined
    assert q("SELECT mpid, kind, identity_type, value FROM mpa_identities") == [
        (1, "user", "email", "a@x"), (2, "user", "other", "o2")]


# --------------------------------------------------------------------------- attributes
ATTRS = {
    "b_true": (True, "true", True),
    "s_true": ("true", '"true"', True),
    "s_True": ("True", '"True"', True),
    "s_TRUE": ("TRUE", '"TRUE"', True),
    "b_false": (False, "false", False),
    "s_false": ("false", '"false"', False),
    "s_False": ("False", '"False"', False),
    "s_FALSE": ("FALSE", '"FALSE"', False),
    "s_yes": ("yes", '"yes"', None),
    "s_space": (" true", '" true"', None),
    "n_1": (1, "1", None),
    "n_float": (342.1, "342.1", None),
    "tag": (None, "null", None),
    "list": (["true", "x"], '["true","x"]', None),
    "empty": ("", '""', None),
}


def test_attribute_values_and_booleans(lab, q, write):
    p = write("p.json", json.dumps({"mpid": 1, "user_attributes": {k: v[0] for k, v in ATTRS.items()}}))
    lab.load(KIND, p)
    assert q("SELECT name, value::VARCHAR, value_bool FROM mpa_attributes") == sorted(
        [(k, v[1], v[2]) for k, v in ATTRS.items()], key=repr
    )


@pytest.mark.parametrize("layout", ["jsonl", "pretty"])
def test_an_attribute_key_given_twice_in_one_record_keeps_its_first_value(lab, q, write, layout):
    # JSON text that repeats a key inside user_attributes: one value per attribute, the first (as
    # every other field of the record is read); two rows left the observed value to chance
    rec = '{"mpid": 7, "user_attributes": {"Power Users": "true", "plan": "pro", "Power Users": "false"}}'
    text = rec + "\n" if layout == "jsonl" else rec.replace(", ", ",\n    ") + "\n"
    r = lab.load(KIND, write(f"p.{layout}.json", text))
    assert (r.rows_read, r.loaded, r.n_quarantined) == (1, 1, 0)
    assert q("SELECT mpid, name, value::VARCHAR, value_bool FROM mpa_attributes") == [
        (7, "Power Users", '"true"', True),
        (7, "plan", '"pro"', None),
    ]


def test_timestamps_are_epoch_ms_utc(lab, q, write):
    p = write("p.jsonl", jsonl(
        {"mpid": 1, "created_timestamp_ms": 1574704283462, "last_stored_timestamp_ms": "1575301484215",
         "audience_memberships": [{"audience_id": 7, "audience_name": "A", "expiration_timestamp_ms": 1767225600000}]},
        {"mpid": 2, "created_timestamp_ms": None},
    ))
    lab.load(KIND, p)
    assert q("SELECT mpid, created_at, last_stored_at FROM mpa_profiles") == [
        (1, datetime(2019, 11, 25, 17, 51, 23, 462000), datetime(2019, 12, 2, 15, 44, 44, 215000)),
        (2, None, None),
    ]
    assert q("SELECT audience_id, audience_name, expiration_at FROM mpa_audiences") == [
        (7, "A", datetime(2026, 1, 1))
    ]


# --------------------------------------------------------------------------- bad records
def test_a_timestamp_outside_the_years_1_to_9999_is_no_time(lab, q, write):
    # a time of year 10000 was stored, and every reader of the column (verify, explain) then failed
    # on it: it is no time, as a number beyond BIGINT already was (1e300); the same
    # bounds as an event's time
    p = write("far.jsonl", jsonl(
        {"mpid": 1, "created_timestamp_ms": 253402300799999, "last_stored_timestamp_ms": -62135596800000},
        {"mpid": 2, "last_stored_timestamp_ms": 253402300800000},   # year 10000
        {"mpid": 3, "created_timestamp_ms": -62135596800001},       # before year 1
        '{"mpid": 4, "created_timestamp_ms": 1e300}',
        {"mpid": 5, "created_timestamp_ms": 9223372036854775807},
    ))
    r = lab.load(KIND, p)
    assert (r.loaded, r.n_quarantined) == (5, 0)
    assert q("SELECT mpid, created_at, last_stored_at FROM mpa_profiles ORDER BY mpid") == [
        (1, datetime(9999, 12, 31, 23, 59, 59, 999000), datetime(1, 1, 1)),
        (2, None, None), (3, None, None), (4, None, None), (5, None, None)]


def test_each_bad_record_is_quarantined_with_its_line(lab, q, write):
    p = write("bad.jsonl", jsonl(
        {"mpid": 1},                                          # 1 ok
        "{not json",                                          # 2
        "[1, 2]",                                             # 3
        {"user_identities": []},                              # 4 missing mpid
        {"mpid": None},                                       # 5 missing mpid
        {"mpid": 1.5},                                        # 6
        {"mpid": "abc"},                                      # 7
        "{\"mpid\": 9223372036854775808}",                     # 8
        "{\"mpid\": 9.08e18}",                                 # 9
        {"mpid": 2, "created_timestamp_ms": "yesterday"},     # 10
        {"mpid": 3, "user_identities": "cust-3"},             # 11
        {"mpid": 4, "user_identities": [{"value": "no type"}]},  # 12
        {"mpid": 5, "device_identities": [42]},               # 13
        {"mpid": 6, "user_attributes": ["a"]},                # 14
        {"mpid": 7, "audience_memberships": {"audience_id": 1}},  # 15
        {"mpid": 8, "audience_memberships": [{"audience_name": "no id"}]},  # 16
        {"mpid": 9, "user_identities": {"email": {"nested": 1}}},  # 17
    ))
    r = lab.load(KIND, p)
    expected = [
        (2, "malformed_json"), (3, "not_an_object"), (4, "missing_mpid"), (5, "missing_mpid"),
        (6, "invalid_mpid"), (7, "invalid_mpid"), (8, "invalid_mpid"), (9, "invalid_mpid"),
        (10, "invalid_timestamp"), (11, "invalid_identities"), (12, "invalid_identities"),
        (13, "invalid_identities"), (14, "invalid_user_attributes"), (15, "invalid_audiences"),
        (16, "invalid_audiences"), (17, "invalid_identities"),
    ]
    assert q("SELECT line, reason FROM rejects") == sorted(expected, key=repr)
    assert (r.rows_read, r.loaded, r.deduplicated, r.n_quarantined) == (17, 1, 0, 16)
    assert q("SELECT mpid FROM mpa_profiles") == [(1,)]
    # nothing of a quarantined record leaks into the other tables
    assert q("SELECT count(*) FROM mpa_identities") == [(0,)]
    assert q("SELECT raw FROM rejects WHERE line = 8") == [('{"mpid": 9223372036854775808}',)]
    assert q("SELECT DISTINCT kind, source_file FROM rejects") == [(KIND, str(p))]


@pytest.mark.parametrize(
    "mpid_json,reason",
    [
        ("1.5", "invalid_mpid"),
        ("1.0", "invalid_mpid"),
        ("9.08e18", "invalid_mpid"),
        ("1e3", "invalid_mpid"),
        ('"abc"', "invalid_mpid"),
        ('""', "invalid_mpid"),
        ('" 5"', "invalid_mpid"),
        ('"+5"', "invalid_mpid"),
        ('"1.2e18"', "invalid_mpid"),
        ("9223372036854775808", "invalid_mpid"),
        ("-9223372036854775809", "invalid_mpid"),
        ("18446744073709551616", "invalid_mpid"),
        ('"9223372036854775808"', "invalid_mpid"),
        ("true", "invalid_mpid"),
        ("[1]", "invalid_mpid"),
        ("{}", "invalid_mpid"),
        ("null", "missing_mpid"),
    ],
)
def test_invalid_mpids(lab, q, write, mpid_json, reason):
    p = write("p.jsonl", '{"mpid": ' + mpid_json + "}\n" + '{"mpid": 77}\n')
    r = lab.load(KIND, p)
    assert dict(r.quarantined) == {reason: 1}
    assert q("SELECT mpid FROM mpa_profiles") == [(77,)]


# --------------------------------------------------------------------------- duplicates and upsert
def test_duplicates_in_one_file_last_wins(lab, q, write):
    p = write("p.jsonl", jsonl(
        {"mpid": 1, "user_identities": {"customer_id": "old"}, "user_attributes": {"a": "1"}},
        {"mpid": 2},
        {"mpid": "1", "user_identities": {"customer_id": "new"}, "user_attributes": {"b": "2"}},
    ))
    r = lab.load(KIND, p)
    assert (r.rows_read, r.loaded, r.deduplicated, r.n_quarantined) == (3, 2, 1, 0)
    assert q("SELECT mpid, line FROM mpa_profiles") == [(1, 3), (2, 2)]
    assert q("SELECT mpid, value, line FROM mpa_identities") == [(1, "new", 3)]
    assert q("SELECT mpid, name FROM mpa_attributes") == [(1, "b")]


def test_later_load_replaces_the_same_mpid_everywhere(lab, q, write):
    first = write("a.jsonl", jsonl(
        {"mpid": 1, "user_identities": {"customer_id": "c1", "email": "a@x"}, "user_attributes": {"x": "1"},
         "audience_memberships": [{"audience_id": 9, "audience_name": "Old"}]},
        {"mpid": 2, "user_identities": {"customer_id": "c2"}, "user_attributes": {"y": "2"}},
    ))
    second = write("b.jsonl", jsonl(
        {"mpid": 1, "user_identities": {"customer_id": "c1b"}, "user_attributes": {"z": "3"}},
    ))
    lab.load(KIND, first)
    r = lab.load(KIND, second)
    assert (r.rows_read, r.loaded, r.deduplicated) == (1, 1, 0)
    assert q("SELECT mpid, source_file FROM mpa_profiles") == [(1, str(second)), (2, str(first))]
    assert q("SELECT mpid, identity_type, value FROM mpa_identities") == [
        (1, "customer_id", "c1b"), (2, "customer_id", "c2")
    ]
    assert q("SELECT mpid, name FROM mpa_attributes") == [(1, "z"), (2, "y")]
    assert q("SELECT count(*) FROM mpa_audiences") == [(0,)]


def _snapshots(write):
    """Two snapshots of MPIDs 1 and 2 (and 3, only in the older), each with its capture time."""
    older = write("feb15.jsonl", jsonl(
        {"mpid": 1, "user_identities": {"customer_id": "c1-old"}, "user_attributes": {"Power Users": "false"}},
        {"mpid": 3, "user_attributes": {"Power Users": "true"}},
    ))
    newer = write("mar01.jsonl", jsonl(
        {"mpid": 1, "user_identities": {"customer_id": "c1"}, "user_attributes": {"Power Users": "true"}},
        {"mpid": 2, "user_attributes": {"Power Users": "true"}},
    ))
    return (older, "2026-02-15T00:00:00Z"), (newer, "2026-03-01T00:00:00Z")


TABLES = ("SELECT mpid, source_file FROM mpa_profiles",
          "SELECT mpid, identity_type, value FROM mpa_identities",
          "SELECT mpid, name, value_bool FROM mpa_attributes")


@pytest.mark.parametrize("order", ["in order", "late delivery"])
def test_a_snapshot_taken_earlier_never_replaces_a_later_one(lab, q, write, order):
    # day 5's snapshot loaded before day 4's: each MPID is as the newest snapshot has it, the
    # older file's record of it counts as de-duplicated (docs/loading.md#mparticle-profiles)
    (older, t_old), (newer, t_new) = _snapshots(write)
    loads = [(older, t_old), (newer, t_new)] if order == "in order" else [(newer, t_new), (older, t_old)]
    reports = [lab.load(KIND, path, as_of=t) for path, t in loads]
    assert q(TABLES[0]) == [(1, str(newer)), (2, str(newer)), (3, str(older))]
    assert q(TABLES[1]) == [(1, "customer_id", "c1")]
    assert q(TABLES[2]) == [(1, "Power Users", True), (2, "Power Users", True), (3, "Power Users", True)]
    last = reports[-1]
    if order == "late delivery":  # the older file: MPID 1 kept as the newer snapshot has it
        assert (last.rows_read, last.loaded, last.deduplicated) == (2, 1, 1)
    else:
        assert (last.rows_read, last.loaded, last.deduplicated) == (2, 2, 0)


def test_a_snapshot_without_as_of_counts_from_its_load_time(lab, q, write):
    # a file with no capture time was taken when loaded: it replaces a snapshot dated before,
    # and a snapshot dated after it (a capture time in the future of the load) keeps its MPIDs
    (older, t_old), (newer, _) = _snapshots(write)
    lab.load(KIND, older, as_of=t_old)
    r = lab.load(KIND, newer)
    assert (r.loaded, r.deduplicated) == (2, 0)
    assert q(TABLES[1]) == [(1, "customer_id", "c1")]
    future = write("future.jsonl", jsonl({"mpid": 2, "user_attributes": {"Power Users": "false"}}))
    lab.load(KIND, future, as_of="2999-01-01T00:00:00Z")
    r = lab.load(KIND, write("now.jsonl", jsonl({"mpid": 2}, {"mpid": 4})))
    assert (r.rows_read, r.loaded, r.deduplicated) == (2, 1, 1)
    assert q("SELECT mpid, name, value_bool FROM mpa_attributes WHERE mpid = 2") == [(2, "Power Users", False)]


def test_unknown_option_is_refused(lab, write):
    with pytest.raises(ValueError, match="unknown option"):
        lab.load(KIND, write("p.jsonl", jsonl({"mpid": 1})), bogus="x")


def test_as_of_option_is_kept_in_utc(lab, q, write):
    # the time the snapshot was taken: verify's capture time of the load's profiles (docs/simulate.md#verify)
    lab.load(KIND, write("p.jsonl", jsonl({"mpid": 1})), as_of="2026-03-01T02:00:00+02:00")
    assert q("SELECT json_extract_string(options, '$.as_of') FROM loads") == [("2026-03-01T00:00:00",)]
    with pytest.raises(ValueError, match="as_of"):
        lab.load(KIND, write("q.jsonl", jsonl({"mpid": 2})), as_of="yesterday-ish")


FIREHOSE_AUDIENCE_REQUEST = {  # mParticle's Firehose SDK example, shortened: no top-level mpid
    "type": "audience_membership_change_request", "id": "4d1f4616-27d6-4721-ae0e-78dce5dd26c4",
    "timestamp_ms": 1685499524620, "firehose_version": "2.8.1", "account": {"account_id": 123456},
    "user_profiles": [{"user_identities": [{"type": "email", "encoding": "md5",
                                            "value": "e179e95c00e7718ab4a23840f992ea63"}],
                       "mpid": "-2317578045433432839",
                       "audiences": [{"audience_id": 1234, "audience_name": "Example Audience",
                                      "action": "add"}]}]}


@pytest.mark.parametrize("kind", [KIND, "mparticle-batches"])
def test_another_apis_message_is_named_so_whatever_its_mpid(lab, q, write, kind):
    """A Firehose audience_membership_change_request has no top-level mpid, and IDSync's documented
    answer holds "mpid": "string": each was quarantined missing_mpid / invalid_mpid, as a batch
    or a profile without a valid MPID would be, and the warning said so. The messages of other
    mParticle APIs are told first (firehose_request, idsync_response), on every parse path."""
    idsync = {"context": None, "matched_identities": {"email": "ann@example.com"}, "is_ephemeral": False,
              "is_logged_in": True, "mpid": "string"}
    r = lab.load(kind, write("other_apis.jsonl", jsonl(FIREHOSE_AUDIENCE_REQUEST, idsync)))
    assert q("SELECT line, reason FROM rejects") == [(1, "firehose_request"), (2, "idsync_response")]
    assert (r.loaded, q("SELECT count(*) FROM mpa_profiles")) == (0, [(0,)])
    assert r.warnings == [f"{write('x', '').parent / 'other_apis.jsonl'}: every record was quarantined (2: "
                          f"firehose_request 1, idsync_response 1); is this a {kind} file?"]


@pytest.mark.parametrize("indent", [2, None], ids=["pretty-printed", "one line"])
def test_a_platform_api_answer_is_named_so(lab, write, indent):
    """mParticle's Platform API answers with {"consumer_profiles": [{"id": <MPID>, ...}]}: the whole
    file is one record without an mpid (missing_mpid), and the warning now says what it holds."""
    answer = {"consumer_profiles": [{"id": 7196104703087826000, "created_timestamp_ms": 1474606149094,
                                     "device_identities": [], "audience_memberships": []}]}
    f = write("platform.json", json.dumps(answer, indent=indent))
    r = lab.load(KIND, f)
    assert (r.loaded, dict(r.quarantined)) == (0, {"missing_mpid": 1})
    assert r.warnings == [f"{f}: every record was quarantined (1: missing_mpid 1); is this a mparticle-profiles "
                          "file? (the records hold consumer_profiles, an answer of mParticle's Platform API whose "
                          "profiles name their MPID id: this kind reads the Profile API's answers, one profile per "
                          "record with its mpid)"]
    r = lab.load(KIND, write("no_mpid.json", json.dumps({"user_identities": {}})))
    assert r.warnings[0].endswith("is this a mparticle-profiles file?")  # no note without consumer_profiles


def test_not_json_is_a_load_error(lab, write):
    p = write("p.json", "mpid,email\n1,a@x\n")
    with pytest.raises(LoadError, match="unrecognised format") as e:
        lab.load(KIND, p)
    assert str(p) in str(e.value)
    # a CSV of profiles: the kind that reads it
    assert str(e.value).endswith("(a CSV? A CSV of mParticle profiles (an mpid column, identity and attribute "
                                 "columns) loads with mparticle-csv)")
    with pytest.raises(LoadError) as e:
        lab.load(KIND, write("q.json", "not json at all\n"))
    assert str(e.value).endswith("file starts with 'not json at all\\n'")  # not a CSV: no advice


def test_broken_json_document_is_a_load_error(lab, write):
    p = write("p.json", '{\n  "mpid": 1,\n  "user_identities": [\n')
    with pytest.raises(LoadError) as e:
        lab.load(KIND, p)
    assert str(p) in str(e.value)
    assert lab.engine.count("mpa_profiles") == 0


# --------------------------------------------------------------------------- MPID round trip
EDGE_MPIDS = [
    -9223372036854775808, 9223372036854775807, 9080350317581165123, -7346244611012968789,
    9007199254740993, -9007199254740993, 4611686018427387904, 123456789012345678, -1, 0,
]


def test_mpid_round_trip_edge_values(lab, q, write):
    # as JSON numbers and as JSON strings, in every layout (JSONL, array, pretty-printed documents)
    nums = write("nums.jsonl", "".join(f'{{"mpid": {m}}}\n' for m in EDGE_MPIDS))
    strs = write("strs.json", json.dumps([{"mpid": str(m), "user_identities": {"other": str(m)}} for m in EDGE_MPIDS]))
    arr = write("arr.json", "[\n" + ",\n".join(f'  {{"mpid": {m}}}' for m in EDGE_MPIDS) + "\n]\n")
    docs = write("docs.json", "".join(f'{{\n  "mpid": {m}\n}}\n' for m in EDGE_MPIDS))
    for f in (nums, strs, arr, docs):  # every layout, each file a snapshot of the same MPIDs
        r = lab.load(KIND, f)
        assert r.loaded == len(EDGE_MPIDS) and r.n_quarantined == 0
        assert sorted(m for (m,) in q("SELECT mpid FROM mpa_profiles")) == sorted(EDGE_MPIDS)
    # identity values given as JSON numbers keep the exact decimal text too
    lab.load(KIND, write("strs2.json", json.dumps(
        [{"mpid": m, "user_identities": {"other": m}} for m in EDGE_MPIDS])))
    assert q("SELECT mpid::VARCHAR = value, count(*) FROM mpa_identities GROUP BY ALL") == [(True, len(EDGE_MPIDS))]


def test_mpid_round_trip_sample_files(lab, q, mparticle_data_dir):
    expected = set()
    for f in ("profiles.json", "profiles.jsonl"):
        text = (mparticle_data_dir / f).read_text()
        docs = [json.loads(text)] if f.endswith(".json") else [json.loads(line) for line in text.splitlines()]
        expected |= {int(d["mpid"]) for d in docs}  # Python's json keeps integers exact
        lab.load(KIND, mparticle_data_dir / f)
    assert {m for (m,) in q("SELECT mpid FROM mpa_profiles")} == expected
    assert {-9223372036854775808, 9223372036854775807} - expected  # covered by the edge test above
    assert 9080350317581165123 in expected


def test_identity_type_normalisation_sql_and_python_agree(lab):
    from cohortlab.loaders._mparticle import (
        IDENTITY_TYPE_ALIASES,
        clean_identity_type_sql,
        identity_type_sql,
        normalise_identity_type,
    )

    names = list(IDENTITY_TYPE_ALIASES) + ["Customer ID", " Email ", "Other-ID-3", "ios_idfv", "Something Else"]
    rows = lab.engine.query_rows(
        f"SELECT n, {identity_type_sql('c')} FROM (SELECT n, {clean_identity_type_sql('n')} AS c "
        f"FROM (SELECT unnest(?::VARCHAR[]) AS n))",
        [names],
    )
    assert {n: t for n, t in rows} == {n: normalise_identity_type(n) for n in names}
    assert normalise_identity_type("Other-ID-3") == "other_id_3"


@pytest.mark.parametrize("layout", ["jsonl", "array"])  # the typed fast path, the exact path
def test_a_time_outside_the_years_or_in_seconds_is_a_load_warning(lab, q, write, layout):
    # a number no time of the years 1-9999 holds is stored as no time, and one below 1e11 as epoch
    # milliseconds is a day before 1973-03-03 (a time written in seconds: 1772323200 is 2026-03-01 in
    # seconds, 1970-01-21 read as milliseconds): both loaded as before, each a warning naming the
    # file, the field, the first line and its value
    records = [
        {"mpid": 1, "created_timestamp_ms": 1772323200, "last_stored_timestamp_ms": 1772323200000},
        {"mpid": 2, "created_timestamp_ms": 1772323200000, "last_stored_timestamp_ms": "1772323200"},
        {"mpid": 3, "last_stored_timestamp_ms": 253402300800000},  # year 10000
        {"mpid": 4, "created_timestamp_ms": 0},                    # 1970-01-01: no warning
        '{"mpid": 5, "created_timestamp_ms": 1e300}',
    ]
    text = jsonl(*records) if layout == "jsonl" else "[\n" + ",\n".join(
        r if isinstance(r, str) else json.dumps(r, indent=2) for r in records) + "\n]"
    p = write(f"times.{'jsonl' if layout == 'jsonl' else 'json'}", text)
    r = lab.load(KIND, p)
    assert (r.loaded, r.n_quarantined) == (5, 0)
    assert q("SELECT mpid, created_at, last_stored_at FROM mpa_profiles ORDER BY mpid") == [
        (1, datetime(1970, 1, 21, 12, 18, 43, 200000), datetime(2026, 3, 1)),
        (2, datetime(2026, 3, 1), datetime(1970, 1, 21, 12, 18, 43, 200000)),
        (3, None, None), (4, datetime(1970, 1, 1), None), (5, None, None)]
    seconds = "before 1973-03-03 as epoch milliseconds (line {}: 1772323200); mParticle writes milliseconds: " \
              "is the file in seconds?"
    assert [w.removeprefix(f"{p}: ") for w in r.warnings] == [
        "1 record(s) give created_timestamp_ms outside the years 1-9999 (line 5: 1e+300): stored as no time",
        "1 record(s) give created_timestamp_ms " + seconds.format(1),
        "1 record(s) give last_stored_timestamp_ms outside the years 1-9999 (line 3: 253402300800000): "
        "stored as no time",
        "1 record(s) give last_stored_timestamp_ms " + seconds.format(2)]
    with pytest.raises(Exception, match="is the file in seconds"):  # --strict: a warning fails the load
        lab.load(KIND, write("again.jsonl", jsonl(records[0])), strict=True)


@pytest.mark.parametrize("layout", ["jsonl", "array"])  # the typed fast path, the exact path
def test_an_identity_type_given_in_two_spellings_in_one_record_keeps_both_and_warns(lab, q, write, layout):
    # as for mparticle-batches: {"Email": ..., "email": ...} or a list naming customerid and
    # customer_id keep what they kept (both values, under the normalised type) and the load warns
    # naming the file, the first record's line and the type, never a value
    records = [
        {"mpid": 1, "user_identities": {"email": "c@z"}},
        {"mpid": 55, "user_identities": {"Email": "a@x", "email": "b@y"}},
        {"mpid": 56, "user_identities": [{"type": "customerid", "value": "c1"}, {"type": "customer_id", "value": "c2"}]},
        {"mpid": 57, "user_identities": {"Email": "d@x", "email": None}},  # a null is no identity
    ]
    text = jsonl(*records) if layout == "jsonl" else json.dumps(records, indent=2)
    p = write(f"p.{'jsonl' if layout == 'jsonl' else 'json'}", text)
    r = lab.load(KIND, p)
    assert (r.loaded, r.n_quarantined) == (4, 0)
    assert q("SELECT mpid, identity_type, value FROM mpa_identities WHERE mpid > 1") == [
        (55, "email", "a@x"), (55, "email", "b@y"), (56, "customer_id", "c1"), (56, "customer_id", "c2"),
        (57, "email", "d@x")]
    assert r.warnings == [f"{p}: 2 record(s) give an identity type twice, spelled two ways (line 2: user "
                          "identity type email): each value is kept, under that type"]


@pytest.mark.parametrize("key", ["source_request_id", "deleted_user_attributes", "timestamp_unixtime_ms",
                                 "source_info", "schema_version"])
def test_a_batch_without_events_is_still_a_batch_not_a_snapshot(lab, q, write, key):
    """A feed's attribute-only batch may have no `events` (every batch key is optional), but its
    envelope has other keys a Profile API answer never has: it is quarantined events_api_batch,
    and the stored profile keeps its identities and attributes (it was replaced by the batch's)."""
    lab.load(KIND, write("p.json", json.dumps({"mpid": 5, "user_identities": [{"type": "email", "value": "a@x.io"}],
                                               "user_attributes": {"Power Users": "true", "plan": "pro"}})),
             as_of="2026-03-01T00:00:00Z")
    values = {"source_request_id": "8f0c", "deleted_user_attributes": [], "timestamp_unixtime_ms": 1772928000000,
              "source_info": {"channel": "partner"}, "schema_version": 2}
    batch = {"mpid": 5, "user_attributes": {"Churn Risk": False}, key: values[key]}
    r = lab.load(KIND, write("b.jsonl", json.dumps(batch) + "\n"))
    assert (r.loaded, dict(r.quarantined)) == (0, {"events_api_batch": 1})
    assert q("SELECT name FROM mpa_attributes WHERE mpid = 5") == [("Power Users",), ("plan",)]
    assert q("SELECT identity_type FROM mpa_identities WHERE mpid = 5") == [("email",)]


def test_a_hashed_identity_is_not_loaded_as_the_identity(lab, q, write):
    """A Profile API identity entry whose encoding is md5 or sha256 holds a hash, not the
    identity: stored as the user's email it matched nothing, silently. It is left out, with a
    warning that names the types and the line, never a value; encoding none loads as before."""
    record = {"mpid": 5, "user_identities": [
        {"type": "email", "encoding": "sha256", "value": "b5f2c1e0d7a9"},
        {"type": "customer_id", "encoding": "MD5", "value": "4a8a08f09d37b73795649038408b5f33"},
        {"type": "other", "encoding": "none", "value": "o-5"},
        {"type": "other_id_2", "encoding": "raw", "value": "r-5"}]}  # the Firehose SDK's "no encoding"
    f = write("p.jsonl", json.dumps(record) + "\n" + json.dumps({"mpid": 6}) + "\n")
    r = lab.load(KIND, f)
    assert r.loaded == 2
    assert q("SELECT mpid, identity_type, value FROM mpa_identities") == [(5, "other", "o-5"), (5, "other_id_2", "r-5")]
    assert [w for w in r.warnings if "hashed" in w] == [
        f"{f}: 2 identities are hashed (encoding md5, sha1 or sha256: "
        "user customer_id 1, user email 1; first: line 1): not loaded, a hash is not the identity "
        "(recoverable_via and distinct_id_is_identity cannot use it)"]
