"""JSON documents load under a DuckDB memory_limit below 2 GiB.

``read_json_objects`` allocates a buffer of twice ``maximum_object_size`` up front; a fixed
1 GiB made every document-layout file (a ``/cohorts/list`` response, Engage pages, Profile API
objects) fail with "failed to allocate data of size 2.0 GiB" as soon as a memory limit was set.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from cohortlab import Lab
from cohortlab.loaders.base import max_object_size

DATA = Path(__file__).resolve().parents[2] / "data"


def test_max_object_size_fits_the_file(tmp_path):
    small = tmp_path / "a.json"
    small.write_text('{"a": 1}')
    assert max_object_size(small) == 1 << 20  # floor
    big = tmp_path / "b.json"
    big.write_bytes(b"[" + b"1," * (3 << 20) + b"1]")
    assert max_object_size(big) >= big.stat().st_size
    gz = tmp_path / "c.json.gz"
    payload = b"[" + b"0," * (4 << 20) + b"0]"  # compresses ~1000x
    gz.write_bytes(gzip.compress(payload))
    assert max_object_size(gz) >= len(payload)
    assert max_object_size(gz) <= 1 << 30


def test_documents_load_under_a_memory_limit():
    with Lab(memory_limit="1GB") as lab:
        rep = lab.load("mixpanel-cohorts", str(DATA / "mixpanel" / "cohorts.json"))
        assert rep.loaded > 0
        rep = lab.load("mparticle-profiles", str(DATA / "mparticle" / "profiles.json"))
        assert rep.loaded > 0


def test_big_webhook_pages_load_under_a_small_memory_limit(tmp_path):
    """A cohort-sync page holds up to thousands of members, and DuckDB parses 2,048 records per
    chunk, so every extra copy of a page (its text as JSON, its parameters, its members list)
    multiplies. The loader parses each page from its text and copies no page or members list
    whole: 2,100 pages x 1,000 members (140 MiB) load under 800 MB (the earlier loader needed
    more than that)."""
    import json

    members = json.dumps([{"mixpanel_distinct_id": f"user-{i:06d}", "email": f"u{i}@example.com"}
                          for i in range(1000)])
    f = tmp_path / "big.jsonl"
    f.write_text("".join(
        f'{{"action": "add_members", "received_at": {1772323200 + k}, "parameters": {{"mixpanel_cohort_id": "1", '
        f'"mixpanel_cohort_name": "Big", "mixpanel_session_id": "s{k}", '
        f'"page_info": {{"total_pages": 1, "page_count": 1}}, "members": {members}}}}}\n'
        for k in range(2100)))
    with Lab(str(tmp_path / "db.duckdb"), memory_limit="800MB", threads=2) as lab:
        rep = lab.load("mixpanel-webhooks", str(f))
        assert (rep.rows_read, rep.loaded) == (2100, 2100)
        assert lab.engine.query_rows("SELECT count(*) FROM mp_webhook_members")[0][0] == 2100 * 1000
