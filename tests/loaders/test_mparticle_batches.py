"""mparticle-batches: Events API batches update the profile snapshot in order (file order, then
load order): unknown MPIDs create profiles, identities merge (latest per type), attributes are
set and deleted."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

# the batch loader has no fast path:
# its tests run once per path it has (conftest.parse_path checks it)
PARSE_PATHS = ("whole", "parallel")

KIND = "mparticle-batches"


def jsonl(*records) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


def attrs(q, mpid):
    return q("SELECT name, value::VARCHAR, value_bool FROM mpa_attributes WHERE mpid = ?", [mpid])


def ids(q, mpid):
    return q("SELECT kind, identity_type, value FROM mpa_identities WHERE mpid = ?", [mpid])


# --------------------------------------------------------------------------- the sample workspace
@pytest.mark.other_kinds_first
def test_sample_batches_on_top_of_sample_profiles(lab, q, mparticle_data_dir):
    lab.load("mparticle-profiles", [mparticle_data_dir / "profiles.json", mparticle_data_dir / "profiles.jsonl"])
    r = lab.load(KIND, mparticle_data_dir / "batches.json")
    assert (r.rows_read, r.loaded, r.deduplicated, r.n_quarantined) == (7, 7, 0, 0)

    # the cohort attribute after the batches
    assert q("SELECT mpid, value::VARCHAR, value_bool FROM mpa_attributes WHERE name = 'Power Users'") == sorted(
        [
            (-7346244611012968789, '"true"', True),       # untouched by batches
            (9080350317581165123, "false", False),         # exit: set false
            (4611686018427387904, '"True"', True),         # "False" -> true -> "True"
            (123456789012345678, '"true"', True),          # forwarded-style batch
            (1234567890123456789, "true", True),           # profile created by a batch
        ],
        key=repr,
    )
    # deleted_user_attributes
    assert ("trial_ends",) not in q("SELECT name FROM mpa_attributes WHERE mpid = 9080350317581165123")
    assert ("ltv",) not in q("SELECT name FROM mpa_attributes WHERE mpid = -7346244611012968789")
    assert attrs(q, 4611686018427387904) == [("Power Users", '"True"', True)]  # plan deleted
    # identity merge: email replaced, customer_id kept, device id added
    assert ids(q, -1) == [
        ("device", "ios_idfv", "0F3B5D1C-4444-4E4E-8A8A-000000000004"),
        ("user", "customer_id", "cust-4"),
        ("user", "email", "dee@example.org"),
    ]
    assert ids(q, 123456789012345678) == [
        ("user", "customer_id", "cust-5"),
        ("user", "email", "eve@example.com"),
        ("user", "mobile_number", "+15555550105"),
        ("user", "other_id_2", "legacy-5"),
    ]
    # the created profile
    assert q("SELECT mpid, created_at, last_stored_at, is_opted_out, environment, source, line "
             "FROM mpa_profiles WHERE source = 'batches'") == [
        (1234567890123456789, datetime(2026, 3, 8, 4), datetime(2026, 3, 8, 4), None, "development", "batches", 6)
    ]
    # existing profiles keep their row (created_at, source, audiences), last_stored_at moves on
    assert q("SELECT created_at, last_stored_at, environment, source FROM mpa_profiles "
             "WHERE mpid = 9080350317581165123") == [
        (datetime(2025, 2, 1, 12), datetime(2026, 3, 8), "production", "profile_api")
    ]
    assert q("SELECT count(*) FROM mpa_audiences") == [(2,)]
    assert q("SELECT count(*) FROM mpa_profiles") == [(9,)]


# --------------------------------------------------------------------------- order
def test_batches_apply_in_file_order(lab, q, write):
    p = write("b.jsonl", jsonl(
        {"mpid": 1, "user_attributes": {"x": "1", "y": "a"}, "user_identities": {"email": "a@x"}},
        {"mpid": 1, "user_attributes": {"x": "2"}, "user_identities": {"email": "b@x", "customer_id": "c"}},
        {"mpid": 1, "deleted_user_attributes": ["x"]},
        {"mpid": 1, "user_attributes": {"x": "3"}, "user_identities": [{"identity_type": "email", "identity": "c@x"}]},
        {"mpid": 1, "deleted_user_attributes": ["y", "never_set"]},
    ))
    r = lab.load(KIND, p)
    assert (r.rows_read, r.loaded) == (5, 5)
    assert attrs(q, 1) == [("x", '"3"', None)]
    assert q("SELECT identity_type, value, line FROM mpa_identities") == [
        ("customer_id", "c", 2), ("email", "c@x", 4)
    ]


def test_a_bucket_folder_loads_without_mparticles_verification_file(lab, q, write):
    """mParticle writes mParticle_Bucket_Verification_<time>.txt holding {} into an S3 bucket when
    the output is saved. In a folder it is skipped: it was a quarantined record, so a --strict
    load of the bucket always failed. Named alone, or with other
    content, it is loaded as any file."""
    batch = write("bucket/mPTravel_20171017170911644493_34523.txt", jsonl(
        {"mpid": 7, "user_attributes": {"Power Users": True}}))
    marker = write("bucket/mParticle_Bucket_Verification_20171017-170911.txt", "{}")
    r = lab.load(KIND, batch.parent, strict=True)
    assert (r.rows_read, r.loaded, r.n_quarantined) == (1, 1, 0)
    assert attrs(q, 7) == [("Power Users", "true", True)]
    assert lab.load(KIND, marker).n_quarantined == 1  # named: loaded, and its record quarantined
    marker.write_text('{"mpid": 8}\n')  # not the verification file's content: part of the folder
    assert lab.load(KIND, batch.parent).rows_read == 1 and q("SELECT count(*) FROM mpa_profiles WHERE mpid = 8") == [(1,)]


def test_batches_apply_in_load_order(lab, q, write):
    a = write("a.jsonl", jsonl({"mpid": 1, "user_attributes": {"Power Users": True}, "user_identities": {"email": "a@x"}}))
    b = write("b.jsonl", jsonl({"mpid": 1, "user_attributes": {"Power Users": "false"}}))
    c = write("c.jsonl", jsonl({"mpid": 1, "deleted_user_attributes": ["Power Users"]}))
    lab.load(KIND, a)
    assert attrs(q, 1) == [("Power Users", "true", True)]
    lab.load(KIND, b)
    assert attrs(q, 1) == [("Power Users", '"false"', False)]
    lab.load(KIND, c)
    assert attrs(q, 1) == []
    assert ids(q, 1) == [("user", "email", "a@x")]
    assert q("SELECT count(*) FROM mpa_profiles") == [(1,)]


def test_delete_after_set_inside_one_batch(lab, q, write):
    p = write("b.json", json.dumps({"mpid": 1, "user_attributes": {"a": "1", "b": "2"}, "deleted_user_attributes": ["a"]}))
    lab.load(KIND, p)
    assert attrs(q, 1) == [("b", '"2"', None)]


@pytest.mark.other_kinds_first
def test_null_identity_removes_it(lab, q, write):
    lab.load("mparticle-profiles", write("p.json", json.dumps(
        {"mpid": 1, "user_identities": [{"type": "email", "value": "a@x"}, {"type": "customer_id", "value": "c1"}]})))
    lab.load(KIND, write("b.json", json.dumps({"mpid": 1, "user_identities": {"email": None}})))
    assert ids(q, 1) == [("user", "customer_id", "c1")]


def test_an_empty_identity_neither_sets_nor_removes_one(lab, q, write, run_once):
    """mParticle's JSON writes the device ids a device lacks as "" (the JSON reference's iOS
    sample: "android_uuid": "", "android_advertising_id": ""): no identity, as an empty CSV cell;
    it replaced the profile's Android id with ''."""
    lab.load(KIND, write("b.jsonl", jsonl(
        {"mpid": 1, "timestamp_unixtime_ms": 1772323200000, "user_identities": {"customer_id": "c1"},
         "device_info": {"platform": "Android", "android_uuid": "u1"}},
        {"mpid": 1, "timestamp_unixtime_ms": 1772409600000, "user_identities": {"customer_id": ""},
         "device_info": {"platform": "iOS", "android_uuid": "", "android_advertising_id": "", "ios_idfv": "v1"}},
    )))
    assert ids(q, 1) == [("device", "android_uuid", "u1"), ("device", "ios_idfv", "v1"), ("user", "customer_id", "c1")]


def test_an_identity_written_as_a_json_float_keeps_the_token_the_file_spells(lab, q, write, run_once):
    """A float identity kept DuckDB's re-writing (1500000000000000000.0), and a float device id in
    device_info was left out, silently: both keep the file's token, as a Mixpanel identifier does."""
    lab.load(KIND, write("b.json", '{"mpid": 1, "device_info": {"android_uuid": 1.5e18},\n'
                                   ' "user_identities": [{"identity_type": "customer_id", "identity": 9080350317581165123.0}]}'))
    assert ids(q, 1) == [("device", "android_uuid", "1.5e18"), ("user", "customer_id", "9080350317581165123.0")]


def test_a_profile_api_answer_is_quarantined_not_applied_as_a_batch(lab, q, write, run_once):
    """A Profile API answer in a folder of batches fits the keys a batch is read from, and was
    applied as one (its device identities, audiences and created time unread): quarantined."""
    r = lab.load(KIND, write("b.jsonl", jsonl(
        {"mpid": 1, "user_identities": {"customer_id": "c1"}},
        {"mpid": 2, "created_timestamp_ms": 1735689600000, "user_identities": [{"type": "email", "value": "b@x"}],
         "device_identities": [{"type": "ios_idfv", "value": "v2"}]},
        {"mpid": 3, "user_attributes": {"plan": "pro"}, "audience_memberships": []},
    )))
    assert (r.loaded, dict(r.quarantined)) == (1, {"profile_api_answer": 2})
    assert q("SELECT mpid, identity_type, value FROM mpa_identities") == [(1, "customer_id", "c1")]
    assert q("SELECT mpid FROM mpa_profiles") == [(1,)]


# the request mParticle's Firehose sends a partner (mParticle/mparticle-firehose-java-sdk,
# examples/json/EventProcessingRequest_ios.json, trimmed; keys and values as written there)
FIREHOSE_EVENT_REQUEST = """{
  "type" : "event_processing_request",
  "id" : "006d8826-a3a6-4ca9-b432-53b7810bdf67",
  "timestamp_ms" : 1685499524623,
  "firehose_version" : "2.8.1",
  "source_id" : "1a6f90d4-5d9b-4a85-9ec7-1038ca460c6b",
  "user_identities" : [ {
    "type" : "email",
    "encoding" : "md5",
    "value" : "e179e95c00e7718ab4a23840f992ea63"
  }, {
    "type" : "customer",
    "encoding" : "md5",
    "value" : "4739c5c11d833bb199c16ff95a92b267"
  } ],
  "user_attributes" : {
    "$City" : "Boca Raton"
  },
  "runtime_environment" : {
    "type" : "ios",
    "identities" : [ {
      "type" : "ios_vendor_id",
      "encoding" : "raw",
      "value" : "97b826c2-ab80-4876-a184-db36cc39b1ee"
    } ]
  },
  "events" : [ {
    "type" : "custom_event",
    "id" : "ab5849e7-61a5-4464-984b-ff48a61aac09",
    "timestamp_ms" : 1685499524623,
    "name" : "customEvent",
    "custom_event_type" : "other"
  } ],
  "mpid" : "12345"
}"""


def test_a_firehose_request_is_quarantined_not_applied_as_a_batch(lab, q, write, run_once):
    """The JSON mParticle's Firehose sends a partner (an AWS Lambda's stored requests) fits the
    keys a batch is read from (mpid, user_identities, user_attributes) and was applied as one: its
    MD5-hashed email and customer id stored as the user's email and customer_id, without a time
    (timestamp_ms is not the batch's key) and without its device ids. Quarantined instead."""
    r = lab.load(KIND, write("b.json", "[" + FIREHOSE_EVENT_REQUEST + ", " + json.dumps(
        {"mpid": 1, "user_identities": {"customer_id": "c1"}}) + "]"))
    assert (r.loaded, dict(r.quarantined)) == (1, {"firehose_request": 1})
    assert q("SELECT line, reason FROM rejects") == [(1, "firehose_request")]
    assert q("SELECT mpid, identity_type, value FROM mpa_identities") == [(1, "customer_id", "c1")]
    assert q("SELECT mpid FROM mpa_profiles") == [(1,)]


def test_an_idsync_answer_is_quarantined_not_applied_as_a_batch(lab, q, write, run_once):
    """An IDSync answer (mpid, matched_identities) was applied as a batch of nothing but its MPID
    (its identities unread): quarantined idsync_response, as by mparticle-profiles."""
    from .test_mparticle_profiles import IDSYNC_ANSWERS

    r = lab.load(KIND, write("idsync.jsonl", IDSYNC_ANSWERS))
    assert (r.loaded, dict(r.quarantined)) == (0, {"idsync_response": 2})
    assert q("SELECT count(*) FROM mpa_profiles") == [(0,)]


def test_identity_spellings_are_normalised(lab, q, write):
    lab.load(KIND, write("b.json", json.dumps([
        {"mpid": 1, "user_identities": {"customerid": "c1", "other2": "o2"}},
        {"mpid": 1, "user_identities": [{"identity_type": "customer_id", "identity": "c1b"}]},
    ])))
    assert ids(q, 1) == [("user", "customer_id", "c1b"), ("user", "other_id_2", "o2")]


def test_device_info_ids_become_device_identities(lab, q, write):
    lab.load(KIND, write("b.json", json.dumps({
        "mpid": 1,
        "device_info": {"platform": "Android", "brand": "x", "android_uuid": "u1", "android_advertising_id": "aaid",
                        "ios_idfv": None, "limit_ad_tracking": False},
    })))
    assert ids(q, 1) == [("device", "android_advertising_id", "aaid"), ("device", "android_uuid", "u1")]


def test_a_device_id_key_holding_true_or_an_object_quarantines_its_batch(lab, q, write):
    # as an identity of user_identities would: the batch is not applied, its line is named
    r = lab.load(KIND, write("b.jsonl", jsonl(
        {"mpid": 1, "device_info": {"platform": "iOS", "ios_idfv": "v1", "limit_ad_tracking": True}},
        {"mpid": 2, "device_info": {"ios_idfa": True}},
        {"mpid": 3, "device_info": {"android_uuid": {"id": "u3"}}},
        {"mpid": 4, "device_info": {"push_token": ["t4"], "ios_idfv": "v4"}},
    )))
    assert q("SELECT line, reason FROM rejects") == [(2, "invalid_identities"), (3, "invalid_identities"),
                                                     (4, "invalid_identities")]
    assert (r.loaded, r.n_quarantined) == (1, 3)
    assert q("SELECT mpid, identity_type, value FROM mpa_identities") == [(1, "ios_idfv", "v1")]


@pytest.mark.other_kinds_first
def test_existing_profile_is_updated_not_replaced(lab, q, write):
    lab.load("mparticle-profiles", write("p.json", json.dumps({
        "mpid": 1, "created_timestamp_ms": 1735689600000, "last_stored_timestamp_ms": 1767225600000,
        "is_opted_out": False, "user_identities": {"customer_id": "c1"}, "user_attributes": {"keep": "me"},
        "audience_memberships": [{"audience_id": 5, "audience_name": "A"}],
    })))
    # an older batch does not move last_stored_at back
    lab.load(KIND, write("b.jsonl", jsonl(
        {"mpid": 1, "timestamp_unixtime_ms": 1704067200000, "environment": "production", "user_attributes": {"new": 1}},
    )))
    assert q("SELECT created_at, last_stored_at, is_opted_out, environment, source FROM mpa_profiles") == [
        (datetime(2025, 1, 1), datetime(2026, 1, 1), False, "production", "profile_api")
    ]
    assert attrs(q, 1) == [("keep", '"me"', None), ("new", "1", None)]
    assert ids(q, 1) == [("user", "customer_id", "c1")]
    assert q("SELECT audience_id FROM mpa_audiences") == [(5,)]


def test_unknown_mpid_creates_a_profile(lab, q, write):
    lab.load(KIND, write("b.jsonl", jsonl(
        {"mpid": "-9223372036854775808", "events": [{"event_type": "custom_event",
                                                     "data": {"timestamp_unixtime_ms": 1767225600000}}]},
        {"mpid": "-9223372036854775808", "timestamp_unixtime_ms": 1767312000000, "environment": "development"},
        {"mpid": 9223372036854775807},
    )))
    assert q("SELECT mpid, created_at, last_stored_at, environment, source, line FROM mpa_profiles") == sorted([
        (-9223372036854775808, datetime(2026, 1, 1), datetime(2026, 1, 2), "development", "batches", 1),
        (9223372036854775807, None, None, None, "batches", 3),
    ], key=repr)


def test_created_at_is_the_earliest_batch_time_whatever_the_load_order(lab, q, write):
    # deliveries arriving out of order (day 2 before day 1): the profile a batch created is
    # created at its earliest batch's time, as when the two files load in order or together
    day1 = write("day1.jsonl", jsonl({"mpid": 1, "timestamp_unixtime_ms": 1767225600000, "user_attributes": {"a": 1}}))
    day2 = write("day2.jsonl", jsonl({"mpid": 1, "timestamp_unixtime_ms": 1767312000000, "user_attributes": {"a": 2}},
                                     {"mpid": 2}))
    lab.load(KIND, day2)
    lab.load(KIND, day1)
    assert q("SELECT mpid, created_at, last_stored_at, source FROM mpa_profiles ORDER BY mpid") == [
        (1, datetime(2026, 1, 1), datetime(2026, 1, 2), "batches"), (2, None, None, "batches")]
    assert attrs(q, 1) == [("a", "2", None)]  # the newer batch's value stays
    # a later, older batch times the untimed profile it did not create
    lab.load(KIND, write("day0.jsonl", jsonl({"mpid": 2, "timestamp_unixtime_ms": 1767139200000})))
    assert q("SELECT created_at FROM mpa_profiles WHERE mpid = 2") == [(datetime(2025, 12, 31),)]


def test_environment_is_the_latest_batch_s_in_time_order(lab, q, write):
    # batches apply in the order of their own time: the newer batch's environment stays, whether
    # it comes first in its file or in an earlier load (a late delivery of an older batch)
    lab.load(KIND, write("one.jsonl", jsonl(
        {"mpid": 1, "timestamp_unixtime_ms": 1767312000000, "environment": "production"},
        {"mpid": 1, "timestamp_unixtime_ms": 1767225600000, "environment": "development"},
        {"mpid": 2, "timestamp_unixtime_ms": 1767312000000, "environment": "production"},
    )))
    lab.load(KIND, write("late.jsonl", jsonl(
        {"mpid": 2, "timestamp_unixtime_ms": 1767225600000, "environment": "development"},
        {"mpid": 2, "timestamp_unixtime_ms": 1767225600000, "user_attributes": {"a": 1}},
    )))
    assert q("SELECT mpid, environment FROM mpa_profiles ORDER BY mpid") == [(1, "production"), (2, "production")]
    lab.load(KIND, write("newer.jsonl", jsonl({"mpid": 2, "timestamp_unixtime_ms": 1767398400000,
                                              "environment": "development"})))
    assert q("SELECT environment FROM mpa_profiles WHERE mpid = 2") == [("development",)]


# --------------------------------------------------------------------------- layouts
def test_single_batch_pretty_printed_and_gzip_jsonl(lab, q, write):
    one = write("one.json", json.dumps({"mpid": 1, "user_attributes": {"a": "1"}}, indent=2))
    gz = write("many.jsonl.gz", jsonl({"mpid": 2}, {"mpid": 3}), gz=True)
    r = lab.load(KIND, [one, gz])
    assert (r.rows_read, r.loaded) == (3, 3)
    assert q("SELECT mpid FROM mpa_profiles") == [(1,), (2,), (3,)]


# --------------------------------------------------------------------------- duplicates and bad batches
def test_repeated_source_request_id_is_deduplicated(lab, q, write):
    p = write("b.jsonl", jsonl(
        {"mpid": 1, "source_request_id": "r1", "user_attributes": {"x": "first"}},
        {"mpid": 1, "source_request_id": "r2", "user_attributes": {"y": "1"}},
        {"mpid": 1, "source_request_id": "r1", "user_attributes": {"x": "replayed"}},
        {"mpid": 1, "user_attributes": {"z": "1"}},
        {"mpid": 1, "user_attributes": {"z": "2"}},
    ))
    r = lab.load(KIND, p)
    assert (r.rows_read, r.loaded, r.deduplicated, r.n_quarantined) == (5, 4, 1, 0)
    assert attrs(q, 1) == [("x", '"first"', None), ("y", '"1"', None), ("z", '"2"', None)]


def test_bad_batches_are_quarantined(lab, q, write):
    p = write("b.jsonl", jsonl(
        {"mpid": 1, "user_attributes": {"ok": "1"}},                  # 1
        "{oops",                                                      # 2
        "42",                                                         # 3
        {"user_attributes": {"Power Users": True}},                  # 4
        {"mpid": 1.5},                                                # 5
        {"mpid": "abc"},                                              # 6
        '{"mpid": 9223372036854775808}',                              # 7
        '{"mpid": 9.08e18}',                                          # 8
        {"mpid": 2, "timestamp_unixtime_ms": "later"},                # 9
        {"mpid": 3, "user_identities": "c"},                          # 10
        {"mpid": 4, "user_identities": [{"identity": "no type"}]},   # 11
        {"mpid": 5, "user_attributes": "x"},                          # 12
        {"mpid": 6, "deleted_user_attributes": "x"},                  # 13
        {"mpid": 7, "deleted_user_attributes": ["a", 1]},             # 14
        {"mpid": 8, "source_info": {"channel": "partner"}, "extra_key": [1, 2]},  # 15 ok: extra keys tolerated
    ))
    r = lab.load(KIND, p)
    assert q("SELECT line, reason FROM rejects") == sorted([
        (2, "malformed_json"), (3, "not_an_object"), (4, "missing_mpid"), (5, "invalid_mpid"),
        (6, "invalid_mpid"), (7, "invalid_mpid"), (8, "invalid_mpid"), (9, "invalid_timestamp"),
        (10, "invalid_identities"), (11, "invalid_identities"), (12, "invalid_user_attributes"),
        (13, "invalid_deleted_attributes"), (14, "invalid_deleted_attributes"),
    ], key=repr)
    assert (r.rows_read, r.loaded, r.deduplicated, r.n_quarantined) == (15, 2, 0, 13)
    assert q("SELECT mpid FROM mpa_profiles") == [(1,), (8,)]


def test_batches_as_sent_to_the_events_api_without_an_mpid_are_named_so(lab, q, write):
    """A batch sent to mParticle's Events API may name its user by user_identities only (its JSON
    reference: mpid optional; its "Master Sample" has none): quarantined missing_mpid, and when
    every batch of the file is, the warning says why, not only "is this a mparticle-batches file?".
    A file whose batches fail for other reasons too gets no such note."""
    sent = {"events": [{"data": {"event_name": "Purchase", "timestamp_unixtime_ms": 1767225600000},
                        "event_type": "custom_event"}],
            "user_identities": {"customerid": "cust-1", "email": "ann@example.com"},
            "environment": "production", "device_info": {"ios_idfv": "07d2d1c7-1a2b"}}
    p = write("api_batches.jsonl", jsonl(sent, {**sent, "user_identities": {"customerid": "cust-2"}}))
    r = lab.load(KIND, p)
    assert (r.loaded, dict(r.quarantined)) == (0, {"missing_mpid": 2})
    assert r.warnings == [
        f"{p}: every record was quarantined (2: missing_mpid 2); is this a mparticle-batches file? (no batch "
        "carries an mpid: a batch sent to mParticle's Events API may name its user by user_identities only, and "
        "mParticle finds or assigns the MPID; cohortlab applies batches to profiles by MPID, as mParticle's event "
        "outputs (S3, GCS) forward them with it)"]
    mixed = write("mixed.jsonl", jsonl(sent, {"mpid": "abc"}))
    r = lab.load(KIND, mixed)
    assert dict(r.quarantined) == {"missing_mpid": 1, "invalid_mpid": 1}
    assert r.warnings == [f"{mixed}: every record was quarantined (2: invalid_mpid 1, missing_mpid 1); "
                          "is this a mparticle-batches file?"]


def test_a_time_outside_the_years_1_to_9999_is_no_time(lab, q, write):
    # an event time beyond BIGINT failed the whole load with a cast error, one of year 10000 was
    # stored and failed every reader of the column: such a batch has no time
    p = write("far.jsonl", jsonl(
        '{"mpid": 1, "user_attributes": {"a": 1}, "events": [{"data": {"timestamp_unixtime_ms": 1e300}}]}',
        {"mpid": 2, "events": [{"data": {"timestamp_unixtime_ms": 253402300800000}}]},
        {"mpid": 3, "timestamp_unixtime_ms": 253402300800000},
        {"mpid": 4, "events": [{"data": {"timestamp_unixtime_ms": 1767225600000}}]},
    ))
    r = lab.load(KIND, p)
    assert (r.loaded, r.n_quarantined) == (4, 0)
    assert q("SELECT mpid, created_at, last_stored_at FROM mpa_profiles ORDER BY mpid") == [
        (1, None, None), (2, None, None), (3, None, None), (4, datetime(2026, 1, 1), datetime(2026, 1, 1))]
    # each a warning naming the field, the first line and its value
    events = "events[].data.timestamp_unixtime_ms"
    assert [w.removeprefix(f"{p}: ") for w in r.warnings] == [
        "1 record(s) give timestamp_unixtime_ms outside the years 1-9999 (line 3: 253402300800000): "
        "stored as no time",
        f"2 record(s) give {events} outside the years 1-9999 (line 1: 1e+300): stored as no time"]


def test_a_batch_time_in_seconds_is_a_load_warning(lab, q, write):
    # 1772323200 is 2026-03-01 in seconds, 1970-01-21 read as the milliseconds mParticle writes:
    # loaded as milliseconds, with a warning that asks whether the file is in seconds
    p = write("seconds.jsonl", jsonl(
        {"mpid": 1, "timestamp_unixtime_ms": 1772323200, "user_attributes": {"a": 1}},
        {"mpid": 2, "events": [{"data": {"timestamp_unixtime_ms": 1772323200}}]},
        {"mpid": 3, "timestamp_unixtime_ms": 1772323200000},
    ))
    r = lab.load(KIND, p)
    assert q("SELECT mpid, created_at FROM mpa_profiles ORDER BY mpid") == [
        (1, datetime(1970, 1, 21, 12, 18, 43, 200000)), (2, datetime(1970, 1, 21, 12, 18, 43, 200000)),
        (3, datetime(2026, 3, 1))]
    assert [w.removeprefix(f"{p}: ") for w in r.warnings] == [
        f"1 record(s) give {field} before 1973-03-03 as epoch milliseconds (line {line}: 1772323200); "
        "mParticle writes milliseconds: is the file in seconds?"
        for field, line in (("timestamp_unixtime_ms", 1), ("events[].data.timestamp_unixtime_ms", 2))]


def test_unknown_option_is_refused(lab, write):
    with pytest.raises(ValueError, match="unknown option"):
        lab.load(KIND, write("b.jsonl", jsonl({"mpid": 1})), order="reverse")


# --------------------------------------------------------------------------- MPID round trip
def test_mpid_round_trip_sample_batches(lab, q, mparticle_data_dir):
    batches = json.loads((mparticle_data_dir / "batches.json").read_text())
    expected = {int(b["mpid"]) for b in batches}
    lab.load(KIND, mparticle_data_dir / "batches.json")
    assert {m for (m,) in q("SELECT mpid FROM mpa_profiles")} == expected
    assert {9080350317581165123, -7346244611012968789, -1} <= expected


def test_an_attribute_key_given_twice_in_one_batch_keeps_its_first_value(lab, q, write):
    # the same key twice in one batch's user_attributes: its first value (as every other field
    # is read), not whichever of the two a tie in the batch order happened to pick
    p = write("b.jsonl", '{"mpid": 7, "timestamp_unixtime_ms": 1700000000000, '
                         '"user_attributes": {"Power Users": "true", "Power Users": "false"}}\n')
    r = lab.load(KIND, p)
    assert (r.rows_read, r.loaded, r.n_quarantined) == (1, 1, 0)
    assert q("SELECT mpid, name, value::VARCHAR, value_bool FROM mpa_attributes") == [(7, "Power Users", '"true"', True)]


def test_an_identity_type_given_in_two_spellings_in_one_batch_keeps_the_last_and_warns(lab, q, write):
    # {"Email": ..., "email": ...} (a list naming customerid and customer_id, device_info keys
    # ios_idfa and ios_advertising_id): one value is applied, as before, the last one given, and
    # the load warns naming the file, the first batch's line and the identity type, never a value
    # (identities are personal data; one was kept silently)
    p = write("b.jsonl", jsonl(
        {"mpid": 1, "timestamp_unixtime_ms": 1700000000000, "user_identities": {"email": "c@z"}},
        {"mpid": 45, "timestamp_unixtime_ms": 1700000003000, "user_identities": {"Email": "a@x", "email": "b@y"}},
        {"mpid": 46, "timestamp_unixtime_ms": 1700000003000, "user_identities": [
            {"identity_type": "customerid", "identity": "c1"}, {"identity_type": "customer_id", "identity": "c2"}]},
        {"mpid": 47, "timestamp_unixtime_ms": 1700000003000, "device_info": {"ios_idfa": "I1"}},
    ))
    r = lab.load(KIND, p)
    assert (r.loaded, r.n_quarantined) == (4, 0)
    assert ids(q, 45) == [("user", "email", "b@y")] and ids(q, 46) == [("user", "customer_id", "c2")]
    assert r.warnings == [f"{p}: 2 record(s) give an identity type twice, spelled two ways (line 2: user "
                          "identity type email): the value given last is applied (of device_info keys, one of them)"]
    assert not any(v in r.warnings[0] for v in ("a@x", "b@y", "c1", "c2"))
    r = lab.load(KIND, write("d.jsonl", jsonl(
        {"mpid": 48, "timestamp_unixtime_ms": 1700000004000, "device_info": {"ios_advertising_id": "I2", "ios_idfa": "I3"}})))
    assert len(r.warnings) == 1 and "(line 1: device identity type ios_advertising_id)" in r.warnings[0]
    with pytest.raises(Exception, match="spelled two ways"):  # --strict
        lab.load(KIND, write("s.jsonl", jsonl({"mpid": 49, "user_identities": {"email": "x", "EMAIL": None}})),
                 strict=True)
    # one spelling per record, even two spellings in one file, does not warn
    assert lab.load(KIND, write("ok.jsonl", jsonl(
        {"mpid": 50, "user_identities": {"Email": "a"}}, {"mpid": 51, "user_identities": {"email": "b"}}))).warnings == []


# --------------------------------------------------------------------------- untimed batches across loads
def test_an_untimed_batch_sent_again_in_a_later_load_is_a_new_write_not_a_replay(lab, q, write):
    """Batches with neither a time nor a source_request_id: the user enters the cohort, leaves, and
    enters again. The third update has the first one's content, but it is a new write (as it is
    when the three are in one file), not a replay: the attribute ends true."""
    enter = {"mpid": 5, "user_attributes": {"Power Users": True}, "events": []}
    leave = {"mpid": 5, "user_attributes": {"Power Users": False}, "events": []}
    for i, b in enumerate((enter, leave, enter)):
        r = lab.load(KIND, write(f"b{i}.json", json.dumps({**b, "source_info": {"n": i}})))
        assert (r.loaded, r.deduplicated) == (1, 0)
    assert attrs(q, 5) == [("Power Users", "true", True)]
    assert q("SELECT count(*) FROM mpa_batch_keys") == [(2,)]  # each content once


def test_an_untimed_batch_keeps_the_time_of_the_newer_batch_before_it(lab, q, write):
    """A batch of Mar 8 sets true; an untimed batch of a later load sets false (load order: it
    applies); a batch of Mar 5 loaded after both is older than what the Mar 8 batch set and does
    not overwrite the untimed batch's false."""
    mar8, mar5 = 1772928000000, 1772668800000
    lab.load(KIND, write("a.json", json.dumps({"mpid": 5, "timestamp_unixtime_ms": mar8,
                                               "user_attributes": {"Power Users": True}})))
    lab.load(KIND, write("b.json", json.dumps({"mpid": 5, "user_attributes": {"Power Users": False}})))
    assert attrs(q, 5) == [("Power Users", "false", False)]
    lab.load(KIND, write("c.json", json.dumps({"mpid": 5, "timestamp_unixtime_ms": mar5,
                                               "user_attributes": {"Power Users": True}})))
    assert attrs(q, 5) == [("Power Users", "false", False)]
    assert q("SELECT batch_time FROM mpa_batch_times WHERE mpid = 5") == [(datetime(2026, 3, 8),)]


# --------------------------------------------------------------------------- batches and snapshots
@pytest.mark.other_kinds_first
def test_a_batch_older_than_the_snapshot_holding_its_profile_changes_nothing(lab, q, write):
    """A Profile API answer taken on Mar 10 (as_of), then a batch of Mar 1 loaded after it: the
    snapshot already holds what happened on Mar 1, so the batch changes nothing, with a warning.
    A batch of Mar 12 applies; so does an untimed one (load order)."""
    snap = {"mpid": 5, "user_identities": [{"type": "customer_id", "value": "new"}],
            "user_attributes": {"Power Users": "false"}}
    lab.load("mparticle-profiles", write("snap.json", json.dumps(snap)), as_of="2026-03-10T00:00:00Z")
    old = {"mpid": 5, "timestamp_unixtime_ms": 1772323200000,  # Mar 1
           "user_identities": {"customer_id": "old"}, "user_attributes": {"Power Users": True}}
    f = write("old.json", json.dumps(old))
    r = lab.load(KIND, f)
    assert ids(q, 5) == [("user", "customer_id", "new")]
    assert attrs(q, 5) == [("Power Users", '"false"', False)]
    assert r.warnings == [f"{f}: 1 batch(es) are timed at or before the as_of time of the "
                          "mParticle snapshot that holds their profile (first: line 1): they change nothing of it, "
                          "the snapshot holds the profile as it was then"]
    newer = {"mpid": 5, "timestamp_unixtime_ms": 1773273600000, "user_attributes": {"Power Users": True}}  # Mar 12
    r = lab.load(KIND, write("new.json", json.dumps(newer)))
    assert attrs(q, 5) == [("Power Users", "true", True)] and not r.warnings
    r = lab.load(KIND, write("untimed.json", json.dumps({"mpid": 5, "user_identities": {"customer_id": "x"}})))
    assert ids(q, 5) == [("user", "customer_id", "x")] and not r.warnings


@pytest.mark.other_kinds_first
def test_a_batch_after_a_snapshot_without_an_as_of_time_applies(lab, q, write):
    """A snapshot loaded without as_of says nothing of when it was taken: a batch loaded after it
    applies, whatever its time (load order)."""
    lab.load("mparticle-profiles", write("snap.json", json.dumps({"mpid": 5, "user_attributes": {"plan": "a"}})))
    lab.load(KIND, write("old.json", json.dumps({"mpid": 5, "timestamp_unixtime_ms": 1772323200000,
                                                 "user_attributes": {"plan": "b"}})))
    assert attrs(q, 5) == [("plan", '"b"', None)]


def test_a_hashed_identity_in_a_forwarded_batch_neither_sets_nor_removes_the_identity(lab, q, write):
    lab.load(KIND, write("a.json", json.dumps({"mpid": 5, "user_identities": {"email": "a@x.io"}})))
    r = lab.load(KIND, write("b.json", json.dumps({"mpid": 5, "user_identities": [
        {"identity_type": "email", "encoding": "md5", "identity": "e179e95c"}]})))
    assert ids(q, 5) == [("user", "email", "a@x.io")]
    assert any("1 identity is hashed (encoding md5, sha1 or sha256: user email 1; first: line 1)" in w
               for w in r.warnings)


@pytest.mark.other_kinds_first
@pytest.mark.parametrize("order", ["S5 S6 B7 B3", "B7 S6 B3 S5", "B3 B7 S5 S6", "S5 B7 B3 S6", "B7 B3 S6 S5"])
def test_snapshots_and_batches_give_the_same_profile_whatever_the_load_order(lab, q, write, order):
    """Two snapshots (as of Mar 5 and Mar 6) and two batches (Mar 7, Mar 3): the profile is what
    the latest of them in time left, the Mar 7 batch's value and environment, in every load order.
    A snapshot taken before a batch does not undo it (it did when loaded after the batch), and a
    batch older than the snapshot changes nothing of it."""
    inputs = {
        "S5": ("mparticle-profiles", {"mpid": 5, "user_attributes": {"X": "s5", "Y": "s5"},
                                      "user_identities": [{"type": "email", "value": "s5@x.io"}]}, "2026-03-05"),
        "S6": ("mparticle-profiles", {"mpid": 5, "user_attributes": {"X": "s6", "Y": "s6"},
                                      "user_identities": [{"type": "email", "value": "s6@x.io"}]}, "2026-03-06"),
        "B7": ("mparticle-batches", {"mpid": 5, "timestamp_unixtime_ms": 1772841600000, "environment": "development",
                                     "user_attributes": {"X": "b7"}, "user_identities": {"email": "b7@x.io"}}, None),
        "B3": ("mparticle-batches", {"mpid": 5, "timestamp_unixtime_ms": 1772496000000,
                                     "user_attributes": {"X": "b3", "Y": "b3"}}, None),
    }
    for name in order.split():
        kind, record, as_of = inputs[name]
        lab.load(kind, write(f"{name}.json", json.dumps(record)), **({"as_of": as_of} if as_of else {}))
    assert attrs(q, 5) == [("X", '"b7"', None), ("Y", '"s6"', None)]
    assert ids(q, 5) == [("user", "email", "b7@x.io")]
    assert q("SELECT environment, last_stored_at FROM mpa_profiles WHERE mpid = 5") == [
        ("development", datetime(2026, 3, 7))]


@pytest.mark.other_kinds_first
def test_a_batch_without_a_time_is_never_older_than_a_snapshot(lab, q, write):
    """A batch without a time of its own, below another user's batch of Mar 3 in its file, is not
    'older' than the Mar 5 snapshot of its profile: it applies (load order); the batch of Mar 3
    above it does not make it so."""
    lab.load("mparticle-profiles", write("s.json", json.dumps({"mpid": 5, "user_attributes": {"X": "s"}})),
             as_of="2026-03-05")
    r = lab.load(KIND, write("b.jsonl", jsonl({"mpid": 6, "timestamp_unixtime_ms": 1772496000000,
                                                "user_attributes": {"X": "six"}},
                                               {"mpid": 5, "user_attributes": {"X": "u"}})))
    assert attrs(q, 5) == [("X", '"u"', None)] and not r.warnings


@pytest.mark.other_kinds_first
def test_a_batch_older_than_the_snapshot_leaves_its_last_stored_time_too(lab, q, write):
    lab.load("mparticle-csv", write("s.csv", "mpid,X\n5,s\n"), as_of="2026-03-05")
    lab.load(KIND, write("old.json", json.dumps({"mpid": 5, "timestamp_unixtime_ms": 1772496000000,
                                                 "user_attributes": {"X": "b3"}})))
    assert q("SELECT last_stored_at FROM mpa_profiles WHERE mpid = 5") == [(None,)]
    assert attrs(q, 5) == [("X", '"s"', None)]


@pytest.mark.other_kinds_first
@pytest.mark.parametrize("snapshot_first", [True, False])
def test_a_batch_at_the_snapshots_as_of_time_and_one_that_changes_nothing(lab, q, write, snapshot_first):
    """Both load orders give one profile: a batch timed exactly at the snapshot's as-of time is
    held by the snapshot (the snapshot wins the tie, both ways); a later batch that sets nothing
    (its events only) still makes the profile's last store its time."""
    snap = write("s.json", json.dumps({"mpid": 1, "last_stored_timestamp_ms": 1772582400000,  # Mar 4
                                       "user_attributes": {"a": "s"}}))
    tie = write("tie.json", json.dumps({"mpid": 1, "timestamp_unixtime_ms": 1772668800000,  # Mar 5 00:00
                                        "user_attributes": {"a": "b"}}))
    empty = write("empty.json", json.dumps({"mpid": 1, "timestamp_unixtime_ms": 1772841600000, "events": []}))
    loads = [("mparticle-profiles", snap, {"as_of": "2026-03-05T00:00:00Z"}), (KIND, tie, {}), (KIND, empty, {})]
    for kind, path, options in (loads if snapshot_first else loads[1:] + loads[:1]):
        lab.load(kind, path, **options)
    assert attrs(q, 1) == [("a", '"s"', None)]
    assert q("SELECT last_stored_at FROM mpa_profiles WHERE mpid = 1") == [(datetime(2026, 3, 7),)]
