"""Every MPID-like identifier survives every Mixpanel loader exactly (docs/rules.md#mpid: never via a float)."""

from __future__ import annotations

import json

import pytest

IDS = [
    "-7346244611012968789",  # negative
    "9080350317581165123",  # > 2^53
    "9007199254740993",  # 2^53 + 1: the first integer a double cannot hold
    "-9223372036854775808",  # int64 min
    "9223372036854775807",  # int64 max
    "18446744073709551615",  # uint64 max: not an MPID, but kept as exported
    "123456789012345678901234567890",  # beyond any integer type
    "-1",
    "0",
]


@pytest.mark.parametrize("as_number", [True, False], ids=["json-number", "json-string"])
def test_roundtrip(lab, write, as_number):
    def v(s):
        return s if as_number else json.dumps(s)  # raw JSON token

    events = "\n".join(
        f'{{"event":"e","properties":{{"time":1768867200,"distinct_id":{v(i)},"$user_id":{v(i)},'
        f'"$mparticle_user_id":{v(i)}}}}}' for i in IDS) + "\n"
    lab.load("mixpanel-events", write("e.jsonl", events))
    assert sorted(lab.engine.query_rows("SELECT distinct_id, user_id, mparticle_user_id FROM mp_events")) == sorted(
        (i, i, i) for i in IDS)

    results = ",\n".join(f'{{"$distinct_id": {v(i)}, "$properties": {{"$mparticle_user_id": {v(i)}}}}}' for i in IDS)
    page = f'{{"page": 0, "status": "ok", "results": [\n{results}\n], "as_of": "2026-03-01", ' \
           f'"filter_by_cohort": {{"id": {v(IDS[1])}, "name": "C"}}}}'
    lab.load("mixpanel-profiles", write("p.json", page))
    assert sorted(lab.engine.query_rows("SELECT distinct_id, mparticle_user_id FROM mp_profiles")) == sorted(
        (i, i) for i in IDS)

    lab.load("mixpanel-members", write("m.json", page))
    assert sorted(r[0] for r in lab.engine.query_rows("SELECT distinct_id FROM mp_cohort_members")) == sorted(IDS)
    assert lab.engine.query_rows("SELECT cohort_id FROM mp_cohort_snapshots") == [(IDS[1],)]

    members = ",".join(f'{{"mixpanel_distinct_id": {v(i)}}}' for i in IDS)
    wh = (f'{{"received_at": "2026-03-01T00:00:00Z", "action": "members", "parameters": '
          f'{{"mixpanel_cohort_id": {v(IDS[0])}, "mixpanel_cohort_name": "W", "mixpanel_project_id": {v(IDS[2])}, '
          f'"mixpanel_session_id": {v(IDS[4])}, "page_info": {{"total_pages": 1, "page_count": 1}}, '
          f'"members": [{members}]}}}}')
    lab.load("mixpanel-webhooks", write("w.json", wh))
    assert sorted(r[0] for r in lab.engine.query_rows("SELECT distinct_id FROM mp_webhook_members")) == sorted(IDS)
    assert lab.engine.query_rows("SELECT cohort_id, session_id FROM mp_webhook_pages") == [(IDS[0], IDS[4])]
    assert lab.engine.query_rows("SELECT project_id FROM mp_cohorts WHERE name = 'W'") == [(IDS[2],)]

    lab.load("mixpanel-cohorts", write("c.json", f'[{{"id": {v(IDS[4])}, "name": "K", "project_id": {v(IDS[3])}}}]'))
    assert lab.engine.query_rows("SELECT cohort_id, project_id FROM mp_cohorts WHERE name = 'K'") == [
        (IDS[4], IDS[3])]


@pytest.mark.parametrize("token", ["1.2e18", "1.2E+18", "-7.3e18", "9080350317581165123.0", "1e400", "0.5"])
def test_float_mparticle_user_id_keeps_its_exported_token(lab, write, token):
    # inside a pretty-printed page, an array of pages, and a JSONL line
    page = {"page": 0, "status": "ok", "results": [
        {"$distinct_id": "A", "$properties": {"$mparticle_user_id": "TOKEN"}},
        {"$distinct_id": "B", "$properties": {"$mparticle_user_id": 5}},
        {"$distinct_id": "C", "$properties": {"$mparticle_user_id": "TOKEN"}},
    ]}
    pretty = json.dumps(page, indent=2).replace('"TOKEN"', token)
    lab.load("mixpanel-profiles", write("p.json", pretty))
    assert dict(lab.engine.query_rows("SELECT distinct_id, mparticle_user_id FROM mp_profiles")) == {
        "A": token, "B": "5", "C": token}
    lab.engine.execute("DELETE FROM mp_profiles")
    lab.load("mixpanel-profiles", write("arr.json", "[" + pretty + ",\n" + pretty.replace('"A"', '"D"') + "]"))
    assert dict(lab.engine.query_rows("SELECT distinct_id, mparticle_user_id FROM mp_profiles")) == {
        "A": token, "B": "5", "C": token, "D": token}
    ev = '{"event":"e","properties":{"time":1768867200,"distinct_id":"U","$mparticle_user_id":TOKEN}}'.replace(
        "TOKEN", token)
    lab.load("mixpanel-events", write("e.jsonl", ev + "\n"))
    assert lab.engine.query_rows("SELECT mparticle_user_id FROM mp_events") == [(token,)]
