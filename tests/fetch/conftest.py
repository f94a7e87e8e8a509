"""Fixtures for the fetch tests: the fake services on 127.0.0.1 holding a small, coherent project,
credentials pointing at them, and a retry policy that records its waits instead of sleeping."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from cohortlab.fetch.credentials import load_credentials
from cohortlab.fetch.http import no_sleep_policy
from tests.fetch import fake_services as fs

BIG = 9080350317581165123  # above 2^53: exact only if never passed through a float
NEG = -7346244611012968789
FALLBACK = 4611686018427387904  # a distinct_id that is an MPID (the feed's fallback)
GONE = 123  # referenced by Mixpanel, unknown to mParticle (404)


def _t(day: int, hour: int = 12) -> int:
    return int(datetime(2026, 1, day, hour, tzinfo=timezone.utc).timestamp())


def _world(fake: fs.Fake) -> None:
    fake.events = [
        {"event": "Signed up", "properties": {"time": _t(1), "distinct_id": "cust-1", "$insert_id": "e1",
                                              "$mparticle_user_id": str(NEG)}},
        {"event": "Purchase", "properties": {"time": _t(1, 13), "distinct_id": "cust-2", "$insert_id": "e2",
                                             "$mparticle_user_id": BIG}},
        {"event": "Purchase", "properties": {"time": _t(2), "distinct_id": "cust-1", "$insert_id": "e3"}},
        {"event": "Page View", "properties": {"time": _t(2, 14), "distinct_id": "$device:d9", "$insert_id": "e4",
                                              "$mparticle_user_id": "undefined"}},
        {"event": "Purchase", "properties": {"time": _t(3), "distinct_id": "cust-5", "$insert_id": "e5"}},
    ]
    fake.profiles = [
        {"$distinct_id": "cust-1", "$properties": {"$mparticle_user_id": str(NEG), "$email": "ann@example.com"}},
        {"$distinct_id": "cust-2", "$properties": {"$mparticle_user_id": BIG}},
        {"$distinct_id": FALLBACK, "$properties": {"$last_seen": "2026-01-02T10:00:00"}},
        {"$distinct_id": "cust-4", "$properties": {"plan": "free"}},
        {"$distinct_id": "cust-5", "$properties": {"$mparticle_user_id": str(GONE)}},
    ]
    fake.cohorts = [
        {"count": 3, "is_visible": 1, "description": "", "created": "2025-12-01 10:00:00", "project_id": 4242,
         "id": 1000, "name": "Power Users"},
        {"count": 0, "is_visible": 1, "description": "", "created": "2025-12-02 10:00:00", "project_id": 4242,
         "id": 1001, "name": "Churn Risk"},
    ]
    fake.members = {1000: ["cust-1", "cust-2", str(FALLBACK)], 1001: []}
    fake.mpa_profiles = {
        m: {"mpid": m, "created_timestamp_ms": 1767225600000, "last_stored_timestamp_ms": 1767312000000,
            "is_opted_out": False,
            "user_identities": [{"type": "customer_id", "encoding": "none", "value": cid}],
            "device_identities": [],
            "user_attributes": {"Power Users": "true"},
            "audience_memberships": [{"audience_id": 17802, "audience_name": "Power Users audience",
                                      "expiration_timestamp_ms": None}]}
        for m, cid in ((NEG, "cust-1"), (BIG, "cust-2"), (FALLBACK, "cust-3"))
    }


@pytest.fixture
def fake():
    f = fs.Fake()
    _world(f)
    server, base = fs.start(f)
    f.base = base
    yield f
    server.shutdown()
    server.server_close()


@pytest.fixture
def env(fake):
    return fs.env_for(fake.base)


@pytest.fixture
def creds(env):
    return load_credentials(env=env)


@pytest.fixture
def policy():
    return no_sleep_policy(retries=3)
