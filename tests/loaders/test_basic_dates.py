"""An as-of time written as ISO-8601's basic date (`20260301`) is that date in every option and
file field that also takes epoch seconds (it was read as the second 20,260,301 after 1970)."""

from __future__ import annotations

import json
from datetime import datetime


def test_members_and_profiles_as_of_options_and_a_pages_as_of(lab, write):
    lab.load("mixpanel-members", write("m.csv", "distinct_id\nu1\n"), cohort="K", as_of="20260301")
    page = {"page": 0, "page_size": 1000, "session_id": "s", "status": "ok", "total": 1, "as_of": "20260302",
            "filter_by_cohort": '{"id": 7, "name": "L"}', "results": [{"$distinct_id": "u2", "$properties": {}}]}
    lab.load("mixpanel-members", write("page.json", json.dumps(page)))
    lab.load("mixpanel-profiles", write("p.jsonl", json.dumps({"$distinct_id": "u1", "$properties": {}}) + "\n"),
             as_of=20260303)  # a Python int as a number option
    assert lab.engine.query_rows("SELECT cohort_name, as_of FROM mp_cohort_snapshots ORDER BY as_of") == [
        ("K", datetime(2026, 3, 1)), ("L", datetime(2026, 3, 2))]
    assert lab.engine.query_rows("SELECT DISTINCT as_of FROM mp_profile_history") == [(datetime(2026, 3, 3),)]
