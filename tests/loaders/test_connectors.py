"""Airbyte's record envelope (cohortlab.loaders.connectors, docs/loading.md#airbyte).

An Airbyte Mixpanel source's streams, written by a file destination without flattening or kept
in a raw warehouse table, come wrapped: ``{"_airbyte_ab_id", "_airbyte_emitted_at",
"_airbyte_data": {...}}`` (Destinations V2: ``_airbyte_raw_id``, ``_airbyte_extracted_at``,
``_airbyte_meta``, ``_airbyte_generation_id``). The kinds that read what those streams hold
(mixpanel-pipeline-events: export, mixpanel-pipeline-profiles: engage, mixpanel-cohorts: cohorts)
read each record inside it, as if it had been written bare; the other kinds say what the file is.
Before, every wrapped record was quarantined with no word on why."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from cohortlab.loaders import LoadError

EVENTS, PROFILES, COHORTS = "mixpanel-pipeline-events", "mixpanel-pipeline-profiles", "mixpanel-cohorts"
MPID = "-7346244611012968789"

# records as Airbyte's source-mixpanel writes them: the export stream flattens an event's
# properties into the record and drops their "$"; engage does the same to a profile
EXPORT = [
    {"event": "Viewed Page", "distinct_id": "u-1", "time": "2021-06-16T16:28:00+00:00", "insert_id": "a-1",
     "browser": "Chrome", "device_id": "d-1"},
    {"event": "Purchase", "distinct_id": "u-2", "time": 1623861000, "insert_id": "a-2", "user_id": "u-2",
     "amount": 5},
]
ENGAGE = [{"distinct_id": "u-1", "email": "ann@example.com", "plan": "pro"},
          {"distinct_id": "u-2", "plan": "free"}]
COHORT_LIST = [{"id": 1001, "name": "Power Users", "count": 2, "is_visible": 1, "project_id": 7,
                "created": "2021-06-01 10:00:00", "description": ""}]


def v1(record) -> dict:
    """The envelope of Airbyte's file destinations before Destinations V2."""
    return {"_airbyte_ab_id": "26d73cde-7eb1-4e1e-b7db-a4c03b4cf206", "_airbyte_emitted_at": 1622135805000,
            "_airbyte_data": record}


def v2(record) -> dict:
    """The envelope of Destinations V2 (file destinations and raw tables)."""
    return {"_airbyte_raw_id": "0a61de1b-9cdd-4455-a739-93572c9a5f20", "_airbyte_extracted_at": "2024-05-01T00:00:00Z",
            "_airbyte_meta": {"changes": [], "sync_id": 12}, "_airbyte_generation_id": 0, "_airbyte_data": record}


def raw_table_unloaded(record) -> dict:
    """A raw table's row unloaded from Snowflake: names in upper case, the data column as text."""
    return {"_AIRBYTE_RAW_ID": "5ce60e70", "_AIRBYTE_EXTRACTED_AT": "2024-05-01 00:00:00.000",
            "_AIRBYTE_DATA": json.dumps(record)}


WRAPPINGS = {"v1": v1, "v2": v2, "raw_table_unloaded": raw_table_unloaded}


def jsonl(records) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def mp_events(q):
    return q("SELECT event, time, distinct_id, insert_id, device_id, user_id, mparticle_user_id, line, "
             "properties->>'browser', properties->>'amount' FROM mp_events")


@pytest.mark.parametrize("wrap", WRAPPINGS)
def test_a_wrapped_export_stream_loads_the_rows_of_the_bare_one(lab, q, write, balanced, run_once, wrap):
    bare = balanced(lab.load(EVENTS, write("bare.jsonl", jsonl(EXPORT))))
    expected = mp_events(q)
    assert len(expected) == 2 and expected[0][:4] == ("Purchase", datetime(2021, 6, 16, 16, 30), "u-2", "a-2")
    lab.sql("DELETE FROM mp_events")
    wrapped = balanced(lab.load(EVENTS, write(f"{wrap}.jsonl", jsonl(WRAPPINGS[wrap](r) for r in EXPORT))))
    assert (wrapped.rows_read, wrapped.loaded, wrapped.n_quarantined) == (2, 2, 0)
    assert wrapped.warnings == bare.warnings == []
    assert mp_events(q) == expected


@pytest.mark.parametrize("wrap", WRAPPINGS)
def test_a_wrapped_float_identifier_keeps_its_exported_token(lab, q, write, run_once, wrap):
    """An id written as a JSON float is read as its token, as in a bare record: from the
    envelope's text, or from the data's own text when a raw table unloaded it as a string."""
    token = "1.2345678901234567e+18"
    text = jsonl([WRAPPINGS[wrap]({**EXPORT[0], "distinct_id": 0.0})]).replace('"distinct_id": 0.0',
                                                                             f'"distinct_id": {token}')
    if wrap == "raw_table_unloaded":  # the token sits inside the data's text, its quotes escaped
        text = text.replace('\\"distinct_id\\": 0.0', f'\\"distinct_id\\": {token}')
    assert token in text
    lab.load(EVENTS, write("float.jsonl", text))
    assert q("SELECT distinct_id FROM mp_events") == [(token,)]


def test_a_wrapped_engage_stream_loads_as_the_bare_one_and_warns_alike(lab, q, write, run_once):
    bare = lab.load(PROFILES, write("engage.jsonl", jsonl(ENGAGE)))
    rows = q("SELECT distinct_id, properties->>'plan', properties->>'email' FROM mp_profiles")
    assert rows == [("u-1", "pro", "ann@example.com"), ("u-2", "free", None)]
    lab.sql("DELETE FROM mp_profiles")
    wrapped = lab.load(PROFILES, write("engage_v2.jsonl", jsonl(v2(r) for r in ENGAGE)))
    assert (wrapped.loaded, wrapped.n_quarantined) == (2, 0)
    assert q("SELECT distinct_id, properties->>'plan', properties->>'email' FROM mp_profiles") == rows
    # the engage stream drops the "$": the same warning, naming the file loaded
    assert len(bare.warnings) == len(wrapped.warnings) == 1
    assert wrapped.warnings[0].split(": ", 1)[1] == bare.warnings[0].split(": ", 1)[1]
    assert "email" in wrapped.warnings[0] and "ann@example.com" not in wrapped.warnings[0]


def test_a_wrapped_cohorts_stream_loads_as_the_cohorts_list(lab, q, write, run_once):
    lab.load(COHORTS, write("cohorts.jsonl", jsonl(v1(c) for c in COHORT_LIST)))
    assert q("SELECT cohort_id, name, count, is_visible, project_id FROM mp_cohorts") == [
        ("1001", "Power Users", 2, True, "7")]


def test_an_envelope_without_a_record_is_quarantined_whole_on_its_line(lab, q, write, balanced, run_once):
    empty = {"_airbyte_ab_id": "x", "_airbyte_emitted_at": 1, "_airbyte_data": None}
    listed = {"_airbyte_ab_id": "y", "_airbyte_emitted_at": 1, "_airbyte_data": [EXPORT[0]]}
    r = balanced(lab.load(EVENTS, write("part.jsonl", jsonl([v1(EXPORT[0]), empty, listed]))))
    assert (r.loaded, dict(r.quarantined)) == (1, {"missing_event": 2})
    assert q("SELECT line, raw::JSON->>'_airbyte_ab_id' FROM rejects") == [(2, "x"), (3, "y")]


def test_a_record_with_its_own_keys_beside_airbyte_data_is_not_an_envelope(lab, q, write, run_once):
    """Root-level flattening writes the record's fields beside the ``_airbyte_`` columns: such a
    row is the record, whatever its columns are named."""
    row = {**EXPORT[0], "_airbyte_ab_id": "z", "_airbyte_data": {"event": "Other", "distinct_id": "u-9"}}
    lab.load(EVENTS, write("flat.jsonl", jsonl([row])))
    assert q("SELECT event, distinct_id, properties->>'_airbyte_ab_id' FROM mp_events") == [("Viewed Page", "u-1", "z")]


# --------------------------------------------------------------------------- the other kinds
def test_another_kind_says_the_records_are_in_airbytes_envelope(lab, write):
    p = write("export.jsonl", jsonl(v1(r) for r in EXPORT))
    r = lab.load("mixpanel-events", p)
    assert r.loaded == 0 and len(r.warnings) == 1
    assert r.warnings[0].startswith(f"{p}: every record was quarantined (2: missing_event 2); "
                                    "is this a mixpanel-events file? (the records are in Airbyte's envelope")
    assert "load with mixpanel-pipeline-events, mixpanel-pipeline-profiles and mixpanel-cohorts" in r.warnings[0]
    with pytest.raises(LoadError, match=r"unrecognised format for mixpanel-profiles: .*Airbyte's envelope"):
        lab.load("mixpanel-profiles", write("engage.jsonl", jsonl(v2(r) for r in ENGAGE)))


def test_a_file_of_the_wrong_kind_says_nothing_of_connectors(lab, write):
    """A raw export given as profiles, Engage results as events: nothing a connector wrote."""
    raw_export = [{"event": "Viewed Page", "properties": {"time": 1623861000, "distinct_id": "u-1"}}]
    engage = [{"$distinct_id": "u-1", "$properties": {"$email": "ann@example.com"}}]
    r = lab.load("mixpanel-events", write("engage.jsonl", jsonl(engage)))
    assert len(r.warnings) == 1 and r.warnings[0].endswith("is this a mixpanel-events file?")
    with pytest.raises(LoadError) as e:
        lab.load("mixpanel-profiles", write("export.jsonl", jsonl(raw_export)))
    assert str(e.value).endswith('({"$distinct_id": ..., "$properties": {...}})')


# Data Pipelines' layouts (event_name at the top; a people table keyed distinct_id) and a
# connector's flattened export, given to the kinds that read the raw export and Engage
PIPELINE_EVENT = {"event_name": "Signed up", "time": "2026-01-01T10:00:00Z", "distinct_id": "c-1",
                  "properties": {"plan": "pro"}}
PEOPLE_ROW = {"distinct_id": "c-1", "properties": {"$email": "ann@example.com"}}
EVENTS_HINT = "(the records are events with their fields at the top, as a Data Pipelines export or a connector"
PROFILES_HINT = "(the records are keyed distinct_id, as a Data Pipelines people table or a connector"


@pytest.mark.parametrize("records", [[PIPELINE_EVENT], EXPORT], ids=["data_pipelines", "airbyte_flattened"])
def test_events_with_their_fields_at_the_top_are_named_for_mixpanel_pipeline_events(lab, write, records):
    r = lab.load("mixpanel-events", write("events.jsonl", jsonl(records)))
    assert len(r.warnings) == 1 and "is this a mixpanel-events file? " + EVENTS_HINT in r.warnings[0]
    assert r.warnings[0].endswith("mixpanel-pipeline-events reads them)")
    with pytest.raises(LoadError, match=r"unrecognised format for mixpanel-profiles: .*events with their fields"):
        lab.load("mixpanel-profiles", write("events.jsonl", jsonl(records)))


def test_a_people_table_given_as_engage_profiles_is_named_for_mixpanel_pipeline_profiles(lab, write):
    with pytest.raises(LoadError) as e:
        lab.load("mixpanel-profiles", write("people.jsonl", jsonl([PEOPLE_ROW])))
    assert PROFILES_HINT in str(e.value) and str(e.value).endswith("mixpanel-pipeline-profiles reads them)")
    assert "ann@example.com" not in str(e.value)


# JQL's Events() result (Mixpanel's JQL docs, "Event Object Specification"; embulk-input-mixpanel's fixture)
JQL_EVENT = {"name": "pageview", "distinct_id": "02a99746-0f52", "labels": [], "time": 1452027552000,
             "sampling_factor": 1, "dataset": "$mixpanel", "properties": {"$email": "ann@example.com"}}
JQL_HINT = ("(the records are results of JQL's Events(): name, and time in milliseconds in the project's time "
            "zone; JQL results are not read: export the raw events (cohortlab fetch, or the /export API) and load "
            "them with mixpanel-events)")


@pytest.mark.parametrize("kind", ["mixpanel-events", "mixpanel-pipeline-events"])
def test_jql_events_are_named_so_and_the_raw_export_advised(lab, write, kind):
    f = write("jql.json", json.dumps([JQL_EVENT, {**JQL_EVENT, "name": "signup"}]))
    r = lab.load(kind, f)
    assert (r.loaded, dict(r.quarantined)) == (0, {"missing_event": 2})
    assert r.warnings == [f"{f}: every record was quarantined (2: missing_event 2); is this a {kind} file? {JQL_HINT}"]


COHORTS_LIST = [{"count": 59, "is_visible": 1, "description": "10 events", "created": "2025-10-18 09:00:00",
                 "project_id": 2201475, "id": 1000, "name": "Power Users"}]
COHORTS_HINT = "(the records are a Mixpanel cohorts list, /cohorts/list: id, name, count: mixpanel-cohorts reads it)"


@pytest.mark.parametrize("kind, reason", [("mparticle-profiles", "missing_mpid"), ("mixpanel-events", "missing_event")])
def test_a_cohorts_list_given_as_another_kind_names_mixpanel_cohorts(lab, write, kind, reason):
    """A newcomer loaded cohorts.json as mparticle-profiles: "is this a mparticle-profiles
    file?" and nothing of what it is."""
    f = write("cohorts.json", json.dumps(COHORTS_LIST, indent=2))
    r = lab.load(kind, f)
    assert r.warnings == [f"{f}: every record was quarantined (1: {reason} 1); is this a {kind} file? {COHORTS_HINT}"]
    with pytest.raises(LoadError) as e:
        lab.load("mixpanel-profiles", f)
    assert str(e.value).endswith(COHORTS_HINT)
    assert lab.load("mixpanel-cohorts", f).loaded == 1


# a third party's answer wrapping Mixpanel's (Adobe Experience Platform's Mixpanel source; Prismatic)
RAW_EVENT = {"event": "Viewed Page", "properties": {"time": 1623861000, "distinct_id": "u-1", "$insert_id": "i1"}}


@pytest.mark.parametrize("note", [10, 5000], ids=["parsed", "cut short"])
def test_records_wrapped_in_one_object_are_named_so(lab, write, note, run_once):
    """The hint reads the first record's stored text: parsed, or, past the 2,000 characters
    kept, from its start. The wrapper's key is named when it is a plain name, never otherwise."""
    events = [{**RAW_EVENT, "properties": {**RAW_EVENT["properties"], "note": "x" * note}}] * 3
    f = write("explore.json", json.dumps({"computed_at": "2024-01-01", "data": events}))
    r = lab.load("mixpanel-events", f)
    assert r.warnings[0].endswith('is this a mixpanel-events file? (the file is one object holding the records '
                                  'under "data": save that as the file, the records one per line or as an array)')
    page = {"status": "ok", "results": [{"$distinct_id": "u-1", "$properties": {"$email": "ann@example.com"}}]}
    with pytest.raises(LoadError) as e:
        lab.load("mixpanel-profiles", write("query.json", json.dumps({"data": page})))
    assert str(e.value).endswith('(the file is one object holding an Engage page under "data": save that as the '
                                 'file, as it is)')
    with pytest.raises(LoadError) as e:
        lab.load("mixpanel-profiles", write("personal.json", json.dumps({"ann@example.com": page})))
    assert str(e.value).endswith("holding an Engage page under one of its keys: save that as the file, as it is)")
    assert "ann@example.com" not in str(e.value).split(": ", 1)[1]


def test_records_flattened_into_dotted_keys_are_named_so(lab, write):
    """pandas' json_normalize of a raw export writes properties.time, properties.distinct_id, …
    (its to_json keeps the dots): every record is quarantined missing_time, and the warning says
    why. Members JSON keyed distinct_id (a hand-made list) is refused naming the CSV that loads."""
    flat = {"event": "Viewed Page", "properties.time": 1623861000, "properties.distinct_id": "u-1",
            "properties.$mparticle_user_id": "9080350317581165123"}
    f = write("normalized.jsonl", jsonl([flat]))
    r = lab.load("mixpanel-events", f)
    assert r.warnings == [f"{f}: every record was quarantined (1: missing_time 1); is this a mixpanel-events file? "
                          "(the records' keys are dotted paths (properties.…): flattened, as pandas' json_normalize "
                          "does; load the export as Mixpanel wrote it, its properties an object)"]
    with pytest.raises(LoadError) as e:
        lab.load("mixpanel-members", write("ids.jsonl", jsonl([{"distinct_id": "u-1"}, {"distinct_id": "u-2"}])),
                 cohort="C", as_of="2026-03-01")
    assert str(e.value).endswith("(the records are keyed distinct_id, not $distinct_id: a members file's JSON "
                                 "records are Engage results; save the ids as a CSV with a distinct_id column)")


# Airbyte's cohort_members stream: Engage results of every cohort, flattened, with the cohort's id
COHORT_MEMBERS = [{"distinct_id": "u-1", "cohort_id": 1001, "email": "ann@example.com"},
                  {"distinct_id": "u-2", "cohort_id": 1001},
                  {"distinct_id": "u-3", "cohort_id": 1002}]


@pytest.mark.parametrize("wrap", [None, "v2"])
def test_airbytes_cohort_members_are_no_snapshot_and_the_error_says_what_to_load(lab, q, write, wrap):
    records = COHORT_MEMBERS if wrap is None else [WRAPPINGS[wrap](r) for r in COHORT_MEMBERS]
    with pytest.raises(LoadError) as e:
        lab.load("mixpanel-members", write("cohort_members.jsonl", jsonl(records)), cohort="Power Users",
                 as_of="2026-01-01")
    message = str(e.value)
    assert "records with distinct_id and cohort_id, as Airbyte's cohort_members stream writes them" in message
    assert "ann@example.com" not in message and "u-1" not in message
    assert q("SELECT count(*) FROM mp_cohort_members") == [(0,)]
    # what it advises: one cohort's distinct_ids as a CSV, named by the cohorts stream's id
    lab.load(COHORTS, write("cohorts.jsonl", jsonl(v1(c) for c in COHORT_LIST)))
    one = "distinct_id\n" + "".join(f"{r['distinct_id']}\n" for r in COHORT_MEMBERS if r["cohort_id"] == 1001)
    lab.load("mixpanel-members", write("cohort_1001.csv", one), cohort="1001", as_of="2026-01-01")
    assert q("SELECT c.name, m.distinct_id FROM mp_cohort_members m JOIN mp_cohort_snapshots s USING (snapshot_id) "
             "JOIN mp_cohorts c USING (cohort_id)") == [("Power Users", "u-1"), ("Power Users", "u-2")]


def test_a_record_nested_deeper_than_python_parses_is_quarantined_without_a_hint(lab, write):
    """The hint read from the first quarantined record parses it with Python's json: a record
    nested 100,000 deep raised RecursionError there, a traceback instead of the load's report."""
    deep = '{"x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    r = lab.load("mixpanel-events", write("deep.jsonl", deep + "\n"))
    assert (r.rows_read, r.loaded, dict(r.quarantined)) == (1, 0, {"missing_event": 1})
    assert any("every record was quarantined (1: missing_event 1); is this a mixpanel-events file?" in w
               for w in r.warnings)
