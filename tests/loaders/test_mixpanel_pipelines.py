"""mixpanel-pipeline-events / mixpanel-pipeline-profiles: Mixpanel Data Pipelines exports (JSON
pipeline layout and the schematized layout; JSONL, gzip and Parquet) into mp_events and
mp_profiles, with the loaders' guarantees: exact identifiers, quarantine, de-duplication,
all-or-nothing, loading twice changes nothing, identity mappings resolve distinct_ids."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb
import pytest

from cohortlab.loaders import LoadError

# the pipeline (warehouse) loaders have neither a parallel nor a fast path:
# its tests run once per path it has (conftest.parse_path checks it)
PARSE_PATHS = ("whole",)

EVENTS, PROFILES = "mixpanel-pipeline-events", "mixpanel-pipeline-profiles"
BIG = 9080350317581165123


def jsonl(*records) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


def parquet(path, sql: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"COPY ({sql}) TO '{path}' (FORMAT PARQUET)")
    con.close()
    return path


# the JSON-pipeline layout of mp_master_event, as written to object storage
PIPELINE_EVENTS = [
    {"event_name": "Signed up", "time": "2026-01-01T10:00:00Z", "distinct_id": "cust-1", "device_id": "d1",
     "user_id": "cust-1", "insert_id": "i1", "properties": {"$mparticle_user_id": BIG, "plan": "pro"}},
    {"event_name": "Purchase", "time": 1767261600, "distinct_id": "$device:d9", "device_id": "d9", "user_id": None,
     "insert_id": "i2", "properties": {"$mparticle_user_id": "-7346244611012968789"}},
    # JSON text in the properties column (a warehouse JSON column saved as text)
    {"event_name": "Purchase", "time": 1767261600000, "distinct_id": "cust-3", "insert_id": "i3",
     "properties": json.dumps({"$mparticle_user_id": 1.2e18, "amount": 5})},
]


def test_json_pipeline_events(lab, q, write, balanced):
    p = write("mp_master_event/2026/01/01/part-0.json.gz", jsonl(*PIPELINE_EVENTS), gz=True)
    r = balanced(lab.load(EVENTS, p))
    assert (r.rows_read, r.loaded, r.deduplicated, r.n_quarantined) == (3, 3, 0, 0)
    assert q("SELECT event, time, distinct_id, insert_id, device_id, user_id, mparticle_user_id, line FROM mp_events") == sorted([
        ("Signed up", datetime(2026, 1, 1, 10), "cust-1", "i1", "d1", "cust-1", str(BIG), 1),
        ("Purchase", datetime(2026, 1, 1, 10), "$device:d9", "i2", "d9", None, "-7346244611012968789", 2),
        ("Purchase", datetime(2026, 1, 1, 10), "cust-3", "i3", None, None, "1.2e+18", 3),  # exact token kept
    ], key=repr)
    assert q("SELECT properties->>'amount' FROM mp_events WHERE insert_id = 'i3'") == [("5",)]


def test_pipeline_events_without_properties_keep_the_json_type_of_a_float_mpid(lab, q, write, balanced):
    p = write("part-0.json", jsonl(*PIPELINE_EVENTS))
    balanced(lab.load(EVENTS, p, properties="none"))
    assert q("SELECT insert_id, mparticle_user_id, properties::VARCHAR, "
             "json_type(properties, '$.\"$mparticle_user_id\"') FROM mp_events") == [
        ("i1", str(BIG), None, None), ("i2", "-7346244611012968789", None, None),
        ("i3", "1.2e+18", '{"$mparticle_user_id": 1.2e+18}', "DOUBLE")]


def test_parquet_pipeline_events_with_timestamp_and_json_columns(lab, q, tmp_path, balanced):
    p = parquet(tmp_path / "events.parquet", f"""
        SELECT * FROM (VALUES
          ('Purchase', TIMESTAMP '2026-01-02 08:30:00', 'cust-1', 'd1', 'cust-1', 'a1',
           '{{"$mparticle_user_id": {BIG}, "amount": 9}}'::JSON),
          ('Purchase', TIMESTAMP '2026-01-02 08:30:00', 'cust-1', 'd1', 'cust-1', 'a1', '{{}}'::JSON),
          ('Page View', NULL, 'cust-1', NULL, NULL, 'a2', '{{}}'::JSON),
          (NULL, TIMESTAMP '2026-01-02 09:00:00', 'cust-1', NULL, NULL, 'a3', '{{}}'::JSON)
        ) t(event_name, time, distinct_id, device_id, user_id, insert_id, properties)""")
    r = balanced(lab.load(EVENTS, p))
    assert (r.rows_read, r.loaded, r.deduplicated) == (4, 1, 1)
    assert dict(r.quarantined) == {"missing_time": 1, "missing_event": 1}
    assert q("SELECT time, mparticle_user_id, line FROM mp_events") == [(datetime(2026, 1, 2, 8, 30), str(BIG), 1)]
    assert q("SELECT source_file, line, reason FROM rejects") == [(str(p), 3, "missing_time"), (str(p), 4, "missing_event")]


def test_schematized_layout(lab, q, write):
    rows = [{"mp_event_name": "Purchase", "time": 1767261600, "distinct_id": "cust-1", "mp_insert_id": "s1",
             "mp_mparticle_user_id": "-1", "amount": 3}]
    lab.load(EVENTS, write("mp_master_event.json", jsonl(*rows)))
    assert q("SELECT event, distinct_id, mparticle_user_id, properties->>'amount' FROM mp_events") == [
        ("Purchase", "cust-1", "-1", "3")]


def test_schematized_layout_reads_the_mp_columns_of_dollar_properties(lab, q, write, tmp_path):
    # a schematized row names the column of a `$` property `mp_<name>`: `mp_insert_id`, `mp_user_id`,
    # `mp_device_id` are the event's ids (two adds to cart in one second were one event when the
    # insert id was not read), and a string `$mparticle_user_id` in a column that held numbers is
    # written to `mp_mparticle_user_id_string` (the pipeline's type-conflict rule)
    rows = [
        {"mp_event_name": "Add to cart", "time": 1767261600, "distinct_id": "cust-1", "mp_insert_id": "s1",
         "mp_mparticle_user_id": -7346244611012968789},
        {"mp_event_name": "Add to cart", "time": 1767261600, "distinct_id": "cust-1", "mp_insert_id": "s2",
         "mp_mparticle_user_id": None, "mp_mparticle_user_id_string": "4611686018427387905"},
        {"mp_event_name": "Page View", "time": 1767261601, "mp_user_id": "cust-2", "mp_device_id": "d2",
         "mp_insert_id": "s3"},
    ]
    r = lab.load(EVENTS, write("mp_master_event.json", jsonl(*rows)))
    assert (r.rows_read, r.loaded, r.deduplicated) == (3, 3, 0)
    assert q("SELECT insert_id, distinct_id, user_id, device_id, mparticle_user_id FROM mp_events") == [
        ("s1", "cust-1", None, None, "-7346244611012968789"),
        ("s2", "cust-1", None, None, "4611686018427387905"),
        ("s3", "cust-2", "cust-2", "d2", None),
    ]
    # the same names inside a JSON pipeline's properties are ordinary properties
    lab.load(EVENTS, write("json.jsonl", jsonl({"event_name": "E", "time": 1767261602, "distinct_id": "c3",
                                                "properties": {"mp_insert_id": "x", "mp_mparticle_user_id_string": "5"}})))
    assert q("SELECT insert_id, mparticle_user_id FROM mp_events WHERE distinct_id = 'c3'") == [(None, None)]
    # profiles: the type-conflict column too
    pq = parquet(tmp_path / "mp_people_data.parquet",
                 "SELECT * FROM (VALUES ('cust-1', -7346244611012968789::BIGINT, NULL), ('cust-2', NULL, '4611686018427387905')) "
                 "t(distinct_id, mp_mparticle_user_id, mp_mparticle_user_id_string)")
    lab.load(PROFILES, pq)
    assert q("SELECT distinct_id, mparticle_user_id FROM mp_profiles") == [
        ("cust-1", "-7346244611012968789"), ("cust-2", "4611686018427387905")]


def test_quarantine_reasons_and_fallbacks(lab, q, write, balanced):
    p = write("e.jsonl", jsonl(
        "{not json",
        {"time": 1767261600, "distinct_id": "a", "properties": {}},                      # missing_event
        [1, 2],
        {"event_name": "E", "time": 1767261600, "distinct_id": "a", "properties": "oops"},  # bad_properties
        {"event_name": "E", "distinct_id": "a", "properties": {}},                        # missing_time
        {"event_name": "E", "time": "yesterday", "distinct_id": "a", "properties": {}},   # bad_time
        {"event_name": "E", "time": 1767261600, "properties": {}},                        # missing_distinct_id
        # fallbacks into properties: time, $insert_id, and the Simplified ID Merge distinct_id
        {"event_name": "F", "properties": {"time": 1767261600, "$device_id": "dev", "$insert_id": "k"}},
    ))
    r = balanced(lab.load(EVENTS, p))
    assert dict(r.quarantined) == {"malformed_json": 1, "not_an_object": 1, "missing_event": 1, "bad_properties": 1,
                                   "missing_time": 1, "bad_time": 1, "missing_distinct_id": 1}
    assert q("SELECT line, reason FROM rejects ORDER BY line")[0] == (1, "malformed_json")
    assert q("SELECT event, distinct_id, insert_id, device_id FROM mp_events") == [("F", "$device:dev", "k", "dev")]


def test_identity_mappings_resolve_distinct_ids(lab, q, write):
    mappings = write("mp_identity_mappings_data/part-0.json", jsonl(
        {"distinct_id": "$device:d9", "resolved_distinct_id": "cust-9"},
        {"distinct_id": "cust-1", "resolved_distinct_id": None},
    ))
    p = write("e.json", jsonl(*PIPELINE_EVENTS))
    lab.load(EVENTS, p, identity_mappings=str(mappings.parent))
    assert q("SELECT insert_id, distinct_id FROM mp_events") == [("i1", "cust-1"), ("i2", "cust-9"), ("i3", "cust-3")]


def test_conflicting_identity_mappings_are_a_load_error(lab, write, table_snapshot):
    m = write("m.json", jsonl({"distinct_id": "x", "resolved_distinct_id": "a"},
                              {"distinct_id": "x", "resolved_distinct_id": "b"}))
    before = table_snapshot()
    with pytest.raises(LoadError, match="1 distinct_id\\(s\\) map to several resolved_distinct_id values"):
        lab.load(EVENTS, write("e.json", jsonl(*PIPELINE_EVENTS)), identity_mappings=str(m))
    assert table_snapshot() == before


@pytest.mark.parametrize("records, message", [
    (['{"distinct_id": "$device:d9", "resolved_distinct_id": "cust-9"}', "not json"],
     r"m\.json:2: identity mappings: 1 record\(s\) are not a mapping of a distinct_id to a resolved_distinct_id "
     r"\(the first: not an object\)"),
    (['{"distinct_id": "8", "resolved_distinct_id": 9080350317581165123.0}'],  # would be 9080350317581166000.0
     r"m\.json:1: .*the first: resolved_distinct_id is a JSON number that is no exact integer"),
    (['{"distinct_id": "7", "resolved_distinct_id": ""}', '{"distinct_id": "9", "resolved_distinct_id": true}'],
     r"m\.json:1: identity mappings: 2 record\(s\) .*\(the first: resolved_distinct_id is not an id \(empty\)\)"),
    (['{"foo": 1}'], r"m\.json: identity mappings: no record maps a distinct_id to a resolved_distinct_id"),
])
def test_a_mappings_file_with_records_that_are_no_mapping_is_refused(lab, write, table_snapshot, records, message):
    """Records that were no mapping were skipped, and a file of none ({"foo": 1}) loaded with nothing
    remapped and nothing said; a float-spelled resolved_distinct_id lost its last digits (a review of
    the warehouse loaders). A null or absent value is still no mapping of its record."""
    m = write("m.json", "\n".join(records) + "\n")
    before = table_snapshot()
    with pytest.raises(LoadError, match=message):
        lab.load(EVENTS, write("e.json", jsonl(*PIPELINE_EVENTS)), identity_mappings=str(m))
    assert table_snapshot() == before


def test_bad_event_names_and_distinct_ids_are_quarantined_as_the_raw_export_quarantines_them(lab, q, write, balanced):
    """A pipeline row with `distinct_id: true` was loaded under its user_id, an event named 123 as
    '123', an array distinct_id was missing_distinct_id; mixpanel-events quarantines each (a review
    of the warehouse loaders): the same records give the reasons of mixpanel-events."""
    base = {"time": 1772323200, "properties": {}}
    records = [{**base, "event_name": "A", "distinct_id": True, "user_id": "U1", "insert_id": "i1"},
               {**base, "event_name": "A", "distinct_id": ["x"], "insert_id": "i2"},
               {**base, "event_name": 123, "distinct_id": "U1", "insert_id": "i3"},
               {**base, "event_name": "A", "distinct_id": None, "user_id": "U2", "insert_id": "i4"},  # derived: loaded
               {**base, "event_name": "A", "distinct_id": 7, "insert_id": "i5"}]
    r = balanced(lab.load(EVENTS, write("pl.json", jsonl(*records))))
    assert dict(r.quarantined) == {"bad_distinct_id": 2, "bad_event": 1}
    # (mixpanel-events' own reasons: tests/loaders/test_mixpanel_events.py)
    assert q("SELECT distinct_id, insert_id FROM mp_events") == [("7", "i5"), ("U2", "i4")]
    people = balanced(lab.load(PROFILES, write("people.json", jsonl({"distinct_id": True, "properties": {}},
                                                                    {"distinct_id": "p1", "properties": {}}))))
    assert dict(people.quarantined) == {"bad_distinct_id": 1}


def test_an_events_table_given_as_people_is_refused(lab, write, table_snapshot):
    """mixpanel-pipeline-profiles made one profile per event of an events table, the events'
    $mparticle_user_id as the profiles', and said nothing (mixpanel-profiles names such a file)."""
    before = table_snapshot()
    with pytest.raises(LoadError, match=r"e\.json: 3 of its 3 records name an event and its time \(event_name or "
                                        r"event, and time\): the file is an events table, not people; "
                                        r"mixpanel-pipeline-events reads it"):
        lab.load(PROFILES, write("e.json", jsonl(*PIPELINE_EVENTS)))
    assert table_snapshot() == before
    # a people table whose profiles have a property named event_name (a column, null in most rows):
    # people (the first version refused it: a red team)
    people = parquet(write("people.json", "").parent / "people.parquet",
                     "SELECT * FROM (VALUES ('p1', 'a@example.com', NULL), ('p2', NULL, 'signup'), "
                     "('p3', NULL, NULL)) t(distinct_id, mp_email, event_name)")
    assert lab.load(PROFILES, people).loaded == 3


def test_an_early_profile_time_of_a_schematized_table_is_warned_with_its_value(lab, write):
    """A schematized people table (mp_created a TIMESTAMP column) warned "line 2: None, read as
    1960-01-01 00:00:00" (a review of the warehouse loaders): the value is the column's."""
    people = parquet(write("x.json", "").parent / "people_schem.parquet",
                     "SELECT * FROM (VALUES ('p1', TIMESTAMP '2025-01-01'), ('p2', TIMESTAMP '1960-01-01')) "
                     "t(distinct_id, mp_created)")
    r = lab.load(PROFILES, people)
    assert r.warnings == [f"{people}: 1 profile(s) give $created before 1971-01-01 (line 2: \"1960-01-01 00:00:00\", "
                          "read as 1960-01-01 00:00:00): no real date of a profile (0, a negative number, a number in "
                          "another unit than seconds or milliseconds?); loaded as read"]


def test_loading_twice_and_overlapping_files_double_nothing(lab, q, write):
    a = write("a.json", jsonl(*PIPELINE_EVENTS))
    b = write("b.json", jsonl(PIPELINE_EVENTS[0], {**PIPELINE_EVENTS[0], "insert_id": "new"}))
    lab.load(EVENTS, a)
    r = lab.load(EVENTS, [a, b])
    assert r.skipped == [str(a)] and (r.loaded, r.deduplicated) == (1, 1)
    assert q("SELECT count(*) FROM mp_events") == [(4,)]


def test_all_or_nothing(lab, tmp_path, write, table_snapshot):
    good = write("a.json", jsonl(*PIPELINE_EVENTS))
    bad = tmp_path / "b.parquet"
    bad.write_bytes(b"PAR1 this is not really parquet")
    before = table_snapshot()
    with pytest.raises(LoadError, match="b.parquet"):
        lab.load(EVENTS, [good, bad])
    assert table_snapshot() == before


def test_pipeline_profiles_json_and_parquet(lab, q, write, tmp_path, balanced):
    people = write("mp_people_data/part-0.json.gz", jsonl(
        {"distinct_id": "cust-1", "properties": {"$email": "ann@example.com", "$mparticle_user_id": BIG,
                                                 "$last_seen": "2026-01-20T23:08:40", "$created": "2025-12-12T11:20:47"}},
        {"distinct_id": 4611686018427387904, "properties": {}},
        {"distinct_id": "cust-1", "properties": {"$email": "ann@example.org", "$mparticle_user_id": BIG}},
        {"properties": {}},
        {"distinct_id": "cust-5", "properties": "[1]"},
    ), gz=True)
    r = balanced(lab.load(PROFILES, people))
    assert (r.rows_read, r.loaded, r.deduplicated) == (5, 2, 1)
    assert dict(r.quarantined) == {"missing_distinct_id": 1, "bad_properties": 1}
    assert q("SELECT distinct_id, mparticle_user_id, email FROM mp_profiles") == [
        ("4611686018427387904", None, None), ("cust-1", str(BIG), "ann@example.org")]

    pq = parquet(tmp_path / "people.parquet", """
        SELECT * FROM (VALUES ('cust-1', '{"$mparticle_user_id": "-7346244611012968789", "$last_seen": "2026-02-01T00:00:00"}'),
                              ('cust-7', '{"$email": "g@example.com"}')) t(distinct_id, properties)""")
    balanced(lab.load(PROFILES, pq))
    # a later load replaces the same distinct_id
    assert q("SELECT distinct_id, mparticle_user_id, last_seen, source_file FROM mp_profiles WHERE distinct_id <> '4611686018427387904'") == [
        ("cust-1", "-7346244611012968789", datetime(2026, 2, 1), str(pq)), ("cust-7", None, None, str(pq))]
    assert lab.load(PROFILES, pq).skipped == [str(pq)]


def test_flattened_engage_records_loaded_as_pipeline_profiles_warn(lab, q, write, balanced):
    """A connector's flattened Engage records (``email``, ``last_seen`` without "$", no
    "properties") are not a Data Pipelines people table: they load, but nothing they hold is read
    as an email, a last seen or an MPID, so the load warns naming the keys (never the values).
    A file where some record holds a property the kind reads does not warn."""
    flat = write("engage.jsonl", jsonl(
        {"distinct_id": "u1", "email": "ann@example.com", "last_seen": "2026-01-20T23:08:40", "city": "Oslo"},
        {"distinct_id": "u2", "mparticle_user_id": "123", "name": "Bo"}))
    r = balanced(lab.load(PROFILES, flat))
    assert (r.rows_read, r.loaded) == (2, 2)
    assert q("SELECT distinct_id, email, last_seen, mparticle_user_id FROM mp_profiles ORDER BY 1") == [
        ("u1", None, None, None), ("u2", None, None, None)]
    assert len(r.warnings) == 1
    assert r.warnings[0].startswith(f"{flat}: no record holds a profile property this kind reads")
    assert "records hold email, last_seen, mparticle_user_id without the prefix" in r.warnings[0]
    assert r.warnings[0].endswith(
        "load the file into a new database with -o unprefixed=reserved to read them as Mixpanel's")
    said = r.warnings[0][len(str(flat)):]  # after the file's name, which holds pytest's folder number
    assert "ann@example.com" not in said and "123" not in said
    mixed = write("mixed.jsonl", jsonl(
        {"distinct_id": "u3", "email": "x@example.com"},
        {"distinct_id": "u4", "properties": {"$email": "y@example.com"}}))
    assert balanced(lab.load(PROFILES, mixed)).warnings == []


def test_connector_flattened_records_keep_their_ids_and_properties(lab, q, write, balanced):
    """Mixpanel connectors flatten an event's properties into the row (no ``properties`` column):
    Singer's tap-mixpanel (Stitch) renames ``$x`` ``mp_reserved_x``, Airbyte drops the "$"
    (singer-io/tap-mixpanel transform.py; airbytehq/airbyte source-mixpanel export.py, applied to
    its own unit-test export record). Such a row is its own properties, as a schematized row is
    (they were dropped: NULL with the default properties=all); tap-mixpanel's ``mp_reserved_``
    columns are read as the ``$`` properties (two events of one user in one second were one,
    de-duplicated without their insert ids, and their MPID was lost), in profiles too; Airbyte's
    ``mparticle_user_id`` is not read as the MPID (a custom property may be so named) but warned
    about, as flattened Engage records are, the warning naming ``-o unprefixed=reserved``."""
    mpid = "-7346244611012968789"
    stitch = {"event": "Viewed E-commerce Page", "time": "2021-06-16T16:28:00.000000Z",
              "distinct_id": "1d694fd9-31a5-4b99-9eef-ae63112063ed", "mp_reserved_browser": "Chrome",
              "mp_reserved_insert_id": "c5eed127-c747-59c8-a5ed-d766f48e39a4", "mp_lib": "Segment: analytics-wordpress",
              "mp_processing_time_ms": 1623886083321, "mp_reserved_mparticle_user_id": mpid}
    p = write("stitch_export.jsonl", jsonl(stitch, {**stitch, "mp_reserved_insert_id": "c5eed127-2",
                                                    "mp_reserved_mparticle_user_id": -1.5e18}))
    r = balanced(lab.load(EVENTS, p))
    assert (r.rows_read, r.loaded, r.deduplicated, r.warnings) == (2, 2, 0, [])
    assert q("SELECT time, insert_id, mparticle_user_id, properties->>'mp_lib' FROM mp_events") == [
        (datetime(2021, 6, 16, 16, 28), "c5eed127-2", "-1.5e+18", "Segment: analytics-wordpress"),
        (datetime(2021, 6, 16, 16, 28), "c5eed127-c747-59c8-a5ed-d766f48e39a4", mpid, "Segment: analytics-wordpress")]
    airbyte = {"event": "Viewed E-commerce Page", "browser": "Chrome", "insert_id": "a-1", "mparticle_user_id": mpid,
               "distinct_id": "u-2", "mp_processing_time_ms": "1623886083321", "time": "2021-06-16T16:28:00+00:00"}
    a = write("airbyte_export.jsonl", jsonl(airbyte))
    r = balanced(lab.load(EVENTS, a))
    assert q("SELECT insert_id, mparticle_user_id, properties->>'browser' FROM mp_events WHERE distinct_id = 'u-2'") == [
        ("a-1", None, "Chrome")]
    assert len(r.warnings) == 1 and r.warnings[0].startswith(f"{a}: no event holds $mparticle_user_id")
    assert "1 event(s) without a properties column hold mparticle_user_id (the first on line 1)" in r.warnings[0]
    assert "load the file again into a new database with -o unprefixed=reserved" in r.warnings[0]
    assert mpid not in r.warnings[0]
    engage = write("stitch_engage.jsonl", jsonl(
        {"distinct_id": "48342", "mp_reserved_email": "ann@example.com", "mp_reserved_last_seen": "2022-09-01T10:00:00",
         "mp_reserved_mparticle_user_id": mpid, "plan": "pro"}))
    r = balanced(lab.load(PROFILES, engage))
    assert r.warnings == []
    assert q("SELECT distinct_id, email, last_seen, mparticle_user_id FROM mp_profiles") == [
        ("48342", "ann@example.com", datetime(2022, 9, 1, 10), mpid)]


def test_unprefixed_reserved_reads_airbytes_names_as_mixpanels_own(lab, q, write, balanced):
    """Airbyte drops the "$" of Mixpanel's own properties (its export stream also writes every
    value as Python text, a null as ``None``; its engage stream keeps the values' JSON types).
    With ``-o unprefixed=reserved`` the names without "$" of a row without ``properties`` are read
    as those properties where no other form of them holds a value: ``mparticle_user_id`` as the
    MPID (exact, a JSON float with its token), ``email``, ``phone``, ``created``, ``last_seen``;
    ``None`` is no value; no warning. A row with a ``properties`` object is read as before."""
    mpid = "-7346244611012968789"
    row = {"event": "Browse", "time": "2021-06-16T16:28:00+00:00", "browser": "Chrome"}
    events = write("airbyte_export.jsonl", jsonl(
        {**row, "distinct_id": "u-1", "insert_id": "a-1", "mparticle_user_id": mpid},
        {**row, "distinct_id": "u-2", "insert_id": "a-2", "mparticle_user_id": "None"},
        # the custom property beside the reserved one: Airbyte names the custom one _mparticle_user_id
        {**row, "distinct_id": "u-3", "insert_id": "a-3", "mparticle_user_id": "42", "_mparticle_user_id": "7"},
        {**row, "distinct_id": "u-4", "insert_id": "a-4", "mp_reserved_mparticle_user_id": "5", "mparticle_user_id": "6"},
        {"event_name": "Browse", "time": 1767261600, "distinct_id": "u-5", "insert_id": "a-5",
         "properties": {"mparticle_user_id": "8"}},
        '{"event": "Browse", "time": 1767261600, "distinct_id": "u-6", "insert_id": "a-6", "mparticle_user_id": 1.20e18}'))
    r = balanced(lab.load(EVENTS, events, unprefixed="reserved"))
    assert (r.loaded, r.warnings) == (6, [])
    assert q("SELECT distinct_id, mparticle_user_id FROM mp_events ORDER BY 1") == [
        ("u-1", mpid), ("u-2", None), ("u-3", "42"), ("u-4", "5"), ("u-5", None), ("u-6", "1.20e18")]
    assert q("SELECT json_type(properties, '$.\"$mparticle_user_id\"') FROM mp_events WHERE distinct_id = 'u-6'") == [
        ("DOUBLE",)]  # a JSON float stays one: precision_loss_form json_float
    people = write("airbyte_engage.jsonl", jsonl(
        {"distinct_id": "p-1", "email": "ann@example.com", "last_seen": "2023-01-01T10:00:00+00:00",
         "created": "2022-05-01T00:00:00", "phone": "+4799999999", "mparticle_user_id": BIG, "name": "Ann"},
        {"distinct_id": "p-2", "mp_reserved_email": "bo@example.com", "email": "other@example.com"},
        {"distinct_id": "p-3", "properties": {"email": "cy@example.com", "mparticle_user_id": "9"}}))
    r = balanced(lab.load(PROFILES, people, unprefixed="reserved"))
    assert r.warnings == []
    assert q("SELECT distinct_id, email, phone, created, last_seen, mparticle_user_id FROM mp_profiles ORDER BY 1") == [
        ("p-1", "ann@example.com", "+4799999999", datetime(2022, 5, 1), datetime(2023, 1, 1, 10), str(BIG)),
        ("p-2", "bo@example.com", None, None, None, None),
        ("p-3", None, None, None, None, None)]


def test_unprefixed_is_custom_or_reserved_and_custom_is_the_default(lab, write):
    """The default (``custom``) reads as before the option existed: said or not, the same
    fingerprint, so the file is not loaded twice; ``reserved`` shapes other rows: loaded again."""
    people = write("engage.jsonl", jsonl({"distinct_id": "p-1", "email": "ann@example.com"}))
    assert lab.load(PROFILES, people).loaded == 1
    assert lab.load(PROFILES, people, unprefixed="custom").skipped == [str(people)]
    assert lab.load(PROFILES, people, unprefixed="Reserved").loaded == 1
    for kind in (EVENTS, PROFILES):
        with pytest.raises(ValueError, match=f"{kind}: unprefixed must be custom or reserved, got 'yes'"):
            lab.load(kind, people, unprefixed="yes")
    with pytest.raises(ValueError, match="known: as_of, unprefixed"):
        lab.load(PROFILES, people, asof="2026-02-01")


def test_warehouse_time_spellings_are_times(lab, q, write, balanced):
    """Warehouses write a time's zone after a space (Snowflake's default output: "… -0800") or
    by name (BigQuery: "… UTC"): such a time was quarantined bad_time (Snowflake's) although it
    is one; every spelling of one instant gives the same UTC time, in events and profiles."""
    spellings = ["2026-02-10 00:00:01.000 -0800", "2026-02-10 00:00:01 -08:00", "2026-02-10T00:00:01-0800",
                 "2026-02-10 08:00:01.000 +0000", "2026-02-10 08:00:01 UTC", "2026-02-10T08:00:01Z"]
    f = write("events.jsonl", jsonl(*({"event_name": "A", "time": t, "distinct_id": f"u{i}", "insert_id": f"i{i}"}
                                      for i, t in enumerate(spellings))))
    r = balanced(lab.load(EVENTS, f))
    assert (r.loaded, r.n_quarantined) == (6, 0)
    assert q("SELECT DISTINCT time FROM mp_events") == [(datetime(2026, 2, 10, 8, 0, 1),)]
    people = write("people.jsonl", jsonl({"distinct_id": "p", "properties": {"$last_seen": spellings[0],
                                                                             "$created": "2026-01-01 00:00:00 UTC"}}))
    balanced(lab.load(PROFILES, people))
    assert q("SELECT last_seen, created FROM mp_profiles") == [(datetime(2026, 2, 10, 8, 0, 1), datetime(2026, 1, 1))]


def test_pipeline_profiles_take_the_export_time_as_of(lab, q, write):
    """A Data Pipelines profile export is a snapshot taken at a time: ``-o as_of`` dates the
    versions it adds to mp_profile_history, which send-time resolution reads, as for
    mixpanel-profiles (docs/loading.md#warehouse; the option was refused)."""
    people = write("mp_people_data/part-0.json", jsonl({"distinct_id": "cust-1", "properties": {"$mparticle_user_id": BIG}}))
    lab.load(PROFILES, people, as_of="2026-02-01T06:00:00+01:00")
    assert q("SELECT distinct_id, mparticle_user_id, as_of FROM mp_profile_history") == [
        ("cust-1", str(BIG), datetime(2026, 2, 1, 5))]
    with pytest.raises(ValueError, match="mixpanel-pipeline-profiles: unknown option"):
        lab.load(PROFILES, people, asof="2026-02-01")


def test_schematized_profiles(lab, q, tmp_path):
    pq = parquet(tmp_path / "mp_people_data.parquet",
                 f"SELECT 'cust-2' AS distinct_id, {BIG}::BIGINT AS mp_mparticle_user_id, 'b@example.com' AS mp_email")
    lab.load(PROFILES, pq)
    assert q("SELECT distinct_id, mparticle_user_id, email FROM mp_profiles") == [("cust-2", str(BIG), "b@example.com")]


def test_an_event_time_before_1971_loads_as_read_with_a_warning(lab, q, write, tmp_path):
    # as for mixpanel-events: an event time before 1971-01-01 (a negative epoch, an early ISO
    # string, a TIMESTAMP column) is loaded as read, with a warning naming the file, the field,
    # the count and the first event's line and time
    p = write("part-0.json", jsonl(
        {"event_name": "A", "time": 1767261600, "distinct_id": "U1"},
        {"event_name": "A", "time": "1965-01-01T00:00:00Z", "distinct_id": "U2"},
        {"event_name": "A", "distinct_id": "U3", "properties": {"time": -86400}},
    ))
    r = lab.load(EVENTS, p)
    assert (r.loaded, r.n_quarantined) == (3, 0)
    assert q("SELECT distinct_id, time FROM mp_events") == [
        ("U1", datetime(2026, 1, 1, 10)), ("U2", datetime(1965, 1, 1)), ("U3", datetime(1969, 12, 31))]
    assert r.warnings == [
        f"{p}: 2 event(s) give time before 1971-01-01 (line 2: \"1965-01-01T00:00:00Z\", read as 1965-01-01 "
        "00:00:00); Mixpanel does not accept such times: is the time wrong (a negative number, or seconds read "
        "as milliseconds)? Loaded as read"]
    pq = parquet(tmp_path / "part-1.parquet",
                 "SELECT 'B' AS event_name, TIMESTAMP '1969-07-20 20:17:00' AS time, 'U4' AS distinct_id")
    r = lab.load(EVENTS, pq)
    assert len(r.warnings) == 1 and "read as 1969-07-20 20:17:00)" in r.warnings[0]
    with pytest.raises(Exception, match="before 1971-01-01"):
        lab.load(EVENTS, write("part-2.json", jsonl({"event_name": "C", "time": -1, "distinct_id": "U5"})),
                 strict=True)


@pytest.mark.other_kinds_first
def test_a_bucket_folder_with_empty_completion_markers_loads(lab, q, write):
    """A pipeline writes an empty ``complete`` file into each finished hour or day folder (and a
    Spark or Hadoop unload an empty ``_SUCCESS``): loading the bucket folder skips them, where each
    was an ``empty file`` error that refused the whole folder. A marker that is not empty is data."""
    write("bucket/4242/2026/03/01/full_day/part-0.json.gz", jsonl(
        {"event": "Opened", "properties": {"time": 1772323200, "distinct_id": "u1", "$insert_id": "a"}}), gz=True)
    write("bucket/4242/2026/03/01/full_day/complete", "")
    write("bucket/4242/2026/03/02/13/part-0.json.gz", jsonl(
        {"event": "Opened", "properties": {"time": 1772456400, "distinct_id": "u2", "$insert_id": "b"}}), gz=True)
    write("bucket/4242/2026/03/02/13/complete", "")
    marker = write("bucket/4242/2026/03/02/13/_SUCCESS", "")
    for kind, loaded in ((EVENTS, 2), ("mixpanel-events", 0)):  # the second: the same events again
        r = lab.load(kind, marker.parents[4], strict=True)
        assert (r.rows_read, r.loaded, r.n_quarantined, len(r.files)) == (2, loaded, 0, 2)
    assert q("SELECT DISTINCT distinct_id FROM mp_events") == [("u1",), ("u2",)]
    with pytest.raises(LoadError, match="empty file"):  # named on its own it is a file as any other
        lab.load(EVENTS, marker)
    marker.write_text(jsonl({"event": "Closed", "properties": {"time": 1772456400, "distinct_id": "u3"}}))
    assert lab.load(EVENTS, marker.parents[4]).loaded == 1  # not empty: part of the folder


def test_a_databricks_folder_skips_its_transaction_markers(lab, q, write):
    """A Databricks write leaves _started_<id> (empty) and _committed_<id> (JSON: the parts added
    and removed) beside its part files: loading the folder skips them (the _committed_ record was
    quarantined, and the every-record warning made a --strict load fail)."""
    write("unload/part-00000-tid-77-c000.json", jsonl({"event_name": "Opened", "time": 1772323200,
                                                       "distinct_id": "u1", "insert_id": "a"}))
    write("unload/_started_77", "")
    marker = write("unload/_committed_77", '{"added":["part-00000-tid-77-c000.json"],"removed":[]}\n')
    r = lab.load(EVENTS, marker.parent, strict=True)
    assert (r.rows_read, r.loaded, r.n_quarantined, len(r.files)) == (1, 1, 0, 1)
    assert q("SELECT distinct_id FROM mp_events") == [("u1",)]


def test_hive_partition_folders_are_no_columns_of_parquet_rows(lab, q, tmp_path):
    """Parquet parts under ``key=value`` folders (a partitioned warehouse unload): the folder names
    are not columns of the rows, so they are not properties of the schematized events or profiles."""
    ev = parquet(tmp_path / "ev" / "dt=2026-03-01" / "part-0.parquet",
                 "SELECT 'Opened' AS mp_event_name, 1772323200 AS time, 'u1' AS distinct_id, 'a' AS mp_insert_id")
    pr = parquet(tmp_path / "pr" / "dt=2026-03-01" / "part-0.parquet",
                 "SELECT 'u1' AS distinct_id, 'a@example.com' AS mp_email")
    lab.load(EVENTS, tmp_path / "ev")
    lab.load(PROFILES, tmp_path / "pr")
    assert q("SELECT distinct_id, insert_id, json_keys(properties) FROM mp_events") == [
        ("u1", "a", ["mp_event_name", "time", "distinct_id", "mp_insert_id"])]
    assert q("SELECT distinct_id, email, json_keys(properties) FROM mp_profiles") == [
        ("u1", "a@example.com", ["mp_email"])]


def test_parquet_column_names_in_upper_case_are_read(lab, q, tmp_path):
    """A warehouse that folds unquoted names to upper case (Snowflake) unloads the pipeline tables
    as EVENT_NAME, DISTINCT_ID, PROPERTIES, ...: their Parquet columns are read in lower case (every
    record was quarantined missing_event / missing_distinct_id). Keys inside PROPERTIES keep theirs."""
    ev = parquet(tmp_path / "ev.parquet", f"""
        SELECT 'Purchase' AS EVENT_NAME, TIMESTAMP '2026-03-01 05:00:00.123' AS "TIME", 'u1' AS DISTINCT_ID,
               'd1' AS DEVICE_ID, 'i1' AS INSERT_ID, '{{"$mparticle_user_id": "{BIG}", "Plan": "pro"}}' AS PROPERTIES""")
    pr = parquet(tmp_path / "pr.parquet",
                 "SELECT 'u1' AS DISTINCT_ID, '{\"$email\": \"u1@example.com\"}' AS PROPERTIES")
    mp = parquet(tmp_path / "map.parquet", "SELECT 'u1' AS DISTINCT_ID, 'cust-1' AS RESOLVED_DISTINCT_ID")
    # a file whose names would collide once in lower case keeps them as they are
    both = parquet(tmp_path / "both.parquet", "SELECT 'Open' AS event_name, 'x' AS EVENT_NAME, "
                                              "1772323200 AS time, 'u2' AS distinct_id, 'i2' AS insert_id")
    r = lab.load(EVENTS, [ev, both], identity_mappings=str(mp))
    assert (r.rows_read, r.loaded, r.n_quarantined) == (2, 2, 0)
    assert q("SELECT event, time, distinct_id, device_id, insert_id, mparticle_user_id, properties->>'Plan' "
             "FROM mp_events") == [
        ("Open", datetime(2026, 3, 1), "u2", None, "i2", None, None),
        ("Purchase", datetime(2026, 3, 1, 5, 0, 0, 123000), "cust-1", "d1", "i1", str(BIG), "pro")]
    r = lab.load(PROFILES, pr)
    assert (r.loaded, r.n_quarantined) == (1, 0)
    assert q("SELECT distinct_id, email FROM mp_profiles") == [("u1", "u1@example.com")]


def test_parquet_decimal_columns_never_pass_through_a_double(lab, q, tmp_path):
    """A DECIMAL column with a scale (BigQuery's NUMERIC: DECIMAL(38,9)) holding the MPID: the row's
    JSON was re-serialised, its decimal token read as a double, so mparticle_user_id became
    '9080350317581166000.0', a different number. A whole value is its integer; any other is a
    number."""
    ev = parquet(tmp_path / "ev.parquet", f"""
        SELECT 'Purchase' AS mp_event_name, 1772323200 AS time, 'u1' AS distinct_id, 'i1' AS mp_insert_id,
               {BIG}::DECIMAL(38,9) AS mp_mparticle_user_id, 5.25::DECIMAL(38,9) AS amount""")
    pr = parquet(tmp_path / "pr.parquet",
                 f"SELECT 'u1' AS distinct_id, -7346244611012968789::DECIMAL(38,9) AS mp_mparticle_user_id")
    lab.load(EVENTS, ev)
    lab.load(PROFILES, pr)
    assert q("SELECT mparticle_user_id, properties->>'amount' FROM mp_events") == [(str(BIG), "5.25")]
    assert q("SELECT mparticle_user_id FROM mp_profiles") == [("-7346244611012968789",)]


# a Snowflake unload of the pipeline tables as JSON: COPY INTO @stage FROM (SELECT OBJECT_CONSTRUCT(*)
# FROM mp_master_event) FILE_FORMAT=(TYPE=JSON) writes the column names folded to upper case
SNOWFLAKE_EVENTS = [
    '{"EVENT_NAME":"Purchase","TIME":"2026-03-01 05:00:00.123","DISTINCT_ID":"u1","USER_ID":"u1","DEVICE_ID":"d1",'
    '"INSERT_ID":"i1","PROPERTIES":{"$mparticle_user_id":"-7346244611012968789","Plan":"pro"}}',
    # identifiers as JSON floats keep their exact tokens, also inside PROPERTIES exported as JSON text
    '{"EVENT_NAME":"Open","TIME":1772323200,"DISTINCT_ID":9.080350317581165123e18,"INSERT_ID":"i2",'
    '"PROPERTIES":"{\\"$mparticle_user_id\\": 9.080350317581165123e18, \\"Plan\\": \\"x\\"}"}',
    # a record whose keys would collide once in lower case keeps them as written (as a Parquet file's
    # columns): event_name is read, DISTINCT_ID is not
    '{"Event_Name":"Open","event_name":"Close","DISTINCT_ID":"u3","time":1772323200,"insert_id":"i3"}',
]


def test_json_keys_in_upper_case_are_read_as_parquet_columns_are(lab, q, write, balanced):
    """A JSON unload whose top-level keys a warehouse folded to upper case (Snowflake's OBJECT_CONSTRUCT)
    was quarantined whole (missing_event, missing_distinct_id), whereas the same table as Parquet
    loaded: the pipeline kinds read a JSON record's top-level keys in lower case, unless two of
    them would then be one; keys inside PROPERTIES keep their case."""
    ev = write("ev/0_0_0.json.gz", jsonl(*SNOWFLAKE_EVENTS), gz=True)
    mp = write("map/0_0_0.json", jsonl({"DISTINCT_ID": "u1", "RESOLVED_DISTINCT_ID": "cust-1"}))
    r = balanced(lab.load(EVENTS, ev, identity_mappings=str(mp)))
    assert (r.rows_read, r.loaded, dict(r.quarantined)) == (3, 2, {"missing_distinct_id": 1})
    assert q("SELECT line, event, time, distinct_id, user_id, device_id, insert_id, mparticle_user_id, "
             "properties->>'Plan', json_keys(properties) FROM mp_events") == [
        (1, "Purchase", datetime(2026, 3, 1, 5, 0, 0, 123000), "cust-1", "u1", "d1", "i1", "-7346244611012968789",
         "pro", ["$mparticle_user_id", "Plan"]),
        (2, "Open", datetime(2026, 3, 1), "9.080350317581165123e18", None, None, "i2", "9.080350317581165123e18",
         "x", ["$mparticle_user_id", "Plan"]),
    ]
    # the schematized layout: the row is the properties, its columns read as a Parquet file's
    sch = write("sch.json", jsonl({"MP_EVENT_NAME": "Add to cart", "TIME": 1772323200, "DISTINCT_ID": "u9",
                                   "MP_INSERT_ID": "s1", "MP_MPARTICLE_USER_ID": 1.5e18}))
    r = balanced(lab.load(EVENTS, sch))
    assert (r.loaded, r.n_quarantined) == (1, 0)
    assert q("SELECT event, distinct_id, insert_id, mparticle_user_id FROM mp_events WHERE distinct_id = 'u9'") == [
        ("Add to cart", "u9", "s1", "1.5e+18")]
    pr = write("people/0_0_0.json", jsonl(
        {"DISTINCT_ID": "p1", "PROPERTIES": {"$email": "p1@example.com", "$mparticle_user_id": BIG,
                                             "$last_seen": "2026-03-01T00:00:00"}},
        '{"DISTINCT_ID":1.5e18,"PROPERTIES":"{\\"$mparticle_user_id\\": 1.50e18}"}'))
    r = balanced(lab.load(PROFILES, pr))
    assert (r.loaded, r.n_quarantined, r.warnings) == (2, 0, [])
    assert q("SELECT distinct_id, email, mparticle_user_id, last_seen FROM mp_profiles") == [
        ("1.5e18", None, "1.50e18", None), ("p1", "p1@example.com", str(BIG), datetime(2026, 3, 1))]


@pytest.mark.other_kinds_first
def test_upper_case_keys_are_read_so_only_by_the_pipeline_kinds(lab, q, write):
    """The raw export's and Engage's keys are Mixpanel's own, in lower case: an upper-case record
    is not theirs and stays quarantined."""
    ev = write("ev.jsonl", jsonl({"EVENT": "Open", "PROPERTIES": {"time": 1772323200, "distinct_id": "u1"}}))
    pr = write("pr.jsonl", jsonl({"$DISTINCT_ID": "u1", "$PROPERTIES": {}}))
    assert dict(lab.load("mixpanel-events", ev).quarantined) == {"missing_event": 1}
    with pytest.raises(LoadError):  # no record of the file is a profile
        lab.load("mixpanel-profiles", pr)
