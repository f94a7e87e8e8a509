"""JSON documents load under a DuckDB memory_limit below 2 GiB.

``read_json_objects`` allocates a buffer of twice ``maximum_object_size`` up front; a fixed
1 GiB made every document-layout file (a ``/cohorts/list`` response, Engage pages, Profile API
objects) fail with "failed to allocate data of size 2.0 GiB" as soon as a memory limit was set.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from cohortlab import Lab
from cohortlab.loaders.files import max_object_size

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


def test_big_webhook_pages_load_under_a_small_memory_limit(tmp_path, run_once):
    """A cohort-sync page holds up to thousands of members, and DuckDB parses 2,048 records per
    chunk, so every extra copy of a page (its text as JSON, its parameters, its members list)
    multiplies. The loader parses each page from its text and copies no page or members list
    whole: 2,100 pages x 1,000 members (140 MiB) load under 800 MB (the earlier loader needed
    more than that). Runs once: the webhooks loader has no typed fast path, and a 140 MiB file
    takes the parallel path whatever the parse-path fixture says."""
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


def test_a_document_too_big_for_the_memory_limit_is_refused_saying_why(tmp_path, run_once):
    """A JSON document is read whole and cannot spill: when it cannot fit the limit, the load is
    refused with the reason and the way out (JSONL), and nothing is loaded. A JSON array is read
    element by element instead: it loads under the same limit."""
    import pytest

    from cohortlab.loaders import LoadError

    result = '{"$distinct_id": "u%d", "$properties": {"$email": "' + "x" * 1000 + '"}}'
    doc = tmp_path / "engage.json"
    doc.write_text('{"status": "ok", "results": [' + ",\n".join(result % i for i in range(40_000)) + "]}")
    array = tmp_path / "cohorts.json"
    array.write_text("[" + ",\n".join('{"id": %d, "name": "c%d", "description": "%s"}' % (i, i, "x" * 1000)
                                       for i in range(40_000)) + "]")  # ~40 MB
    with Lab(memory_limit="64MB") as lab:
        with pytest.raises(LoadError, match=r"engage\.json: a JSON document of up to 40 MiB is read whole.*JSONL"):
            lab.load("mixpanel-profiles", str(doc))
        assert lab.engine.query_rows("SELECT count(*) FROM mp_profiles") == [(0,)]
    with Lab(str(tmp_path / "lab.duckdb"), memory_limit="160MB") as lab:  # the whole array was ~20x its size
        assert lab.load("mixpanel-cohorts", str(array)).loaded == 40_000


def test_a_document_too_big_is_refused_without_reading_the_file_again(tmp_path, monkeypatch, run_once):
    """A 1.5 MB gzip holding one 1.5 GiB line took 2.5 minutes and 3 GB before this error: the
    load searched the whole file for a lone surrogate escape, to try again through a copy (a
    red-team run). No copy reads a document too big better: the error comes at once."""
    import gzip

    import pytest

    from cohortlab.loaders import base, surrogates
    from cohortlab.loaders.files import MAX_LINE_SIZE

    searched = []
    monkeypatch.setattr(base, "first_lone_surrogate", lambda p: searched.append(p) or surrogates.first_lone_surrogate(p))
    big = tmp_path / "oneline.json.gz"
    with gzip.open(big, "wb", compresslevel=1) as f:  # one line longer than any line the loaders read
        f.write(b'{"event": "Open", "properties": {"time": 1772000000, "distinct_id": "u1", "note": "')
        f.write(b"a" * (MAX_LINE_SIZE + 1024) + b'"}}\n')
    with Lab(memory_limit="128MB") as lab:
        with pytest.raises(base.TooBigError, match=r"oneline\.json\.gz: a JSON document of up to .* is read whole"):
            lab.load("mixpanel-events", str(big))
    assert searched == []


def test_the_searches_of_a_retry_read_lines_longer_than_a_block(tmp_path, monkeypatch, run_once):
    """A line longer than a block is kept in pieces, joined once when it ends (``carry + chunk``
    copied it again for every block); a line longer than the largest document is not kept."""
    from cohortlab.loaders import files, surrogates

    path = tmp_path / "long.jsonl"
    long_line = b'{"name": "' + b"a" * (3 * surrogates.BLOCK + 5) + b'"}\n'
    path.write_bytes(long_line + b'{"ok": 1}\n' + b'{"name": "Fans \\ud83d"}\n' + b'{"bad": "\xff"}\n')
    assert surrogates.first_lone_surrogate(path) == (3, "\\ud83d")
    assert files.invalid_utf8_lines(path) == [(4, b'{"bad": "\xff"}')]
    monkeypatch.setattr(files.Carry, "LIMIT", 2 * surrogates.BLOCK)  # the first line is then too long
    assert surrogates.first_lone_surrogate(path) is None
    assert files.invalid_utf8_lines(path) == []


def test_defaults_cap_memory_and_spill_next_to_the_database(tmp_path, monkeypatch, run_once):
    from cohortlab.engines import duckdb as eng

    monkeypatch.delenv("COHORTLAB_MEMORY_LIMIT", raising=False)
    monkeypatch.delenv("COHORTLAB_THREADS", raising=False)
    setting = "SELECT current_setting('memory_limit'), current_setting('temp_directory'), current_setting('threads')"
    with Lab(str(tmp_path / "lab.duckdb")) as lab:
        limit, temp, threads = lab.engine.query_rows(setting)[0]
    assert limit == "1.3 GiB" or eng.physical_memory() < 6_000_000_000  # min(1.5 GB, 25% of RAM)
    assert temp == str(tmp_path / "lab.duckdb.tmp")
    assert threads == eng.default_threads()
    with Lab() as lab:
        temp = lab.engine.query_rows(setting)[0][1]
        lab.engine.execute("CREATE TABLE t AS SELECT 1")
    assert "cohortlab-duckdb-" in temp
    monkeypatch.setenv("COHORTLAB_MEMORY_LIMIT", "700MB")
    with Lab() as lab:
        assert lab.engine.query_rows(setting)[0][0] == "667.5 MiB"
