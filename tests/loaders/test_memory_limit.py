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
