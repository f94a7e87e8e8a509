"""Tiny synthetic worlds shared by the synth tests (generated once per session)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cohortlab.synth import generate

USERS = 1500
SEED = 11


@pytest.fixture(scope="session")
def make_world(tmp_path_factory):
    """``make_world(name, users=..., seed=..., **params)``: generate (once per argument set)."""
    cache: dict = {}

    def make(scenario: str | None = "mid_migration", users: int = USERS, seed: int = SEED, **params):
        key = (scenario, users, seed, json.dumps(params, sort_keys=True, default=str))
        if key not in cache:
            out = tmp_path_factory.mktemp(f"world-{scenario or 'config'}")
            cache[key] = generate(out, users=users, seed=seed, scenario=scenario, **params)
        return cache[key]

    return make


@pytest.fixture(scope="session", params=["healthy", "customer_id_legacy", "mid_migration", "remediated"])
def scenario_world(request, make_world):
    return make_world(request.param)


def truth_rows(res) -> list[dict]:
    """truth.parquet as Python dicts (pyarrow: int64 stay exact Python ints)."""
    return pq.read_table(res.truth_path).to_pylist()


def mparticle_profiles(res):
    """Every mParticle Profile API object of a world (the attribute snapshot and the profiles
    outside it), in file order."""
    for f in res.manifest["files"]:
        if f["kind"] == "mparticle-profiles":
            yield from jsonl(res.out_dir / f["path"])


def jsonl(path: Path):
    import gzip

    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)
