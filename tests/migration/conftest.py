"""A small hand-built history, inserted straight into the canonical tables.

Historical External Identity Type: customer_id (events keyed by customer id, or ``$device:``
before login). Five people:

| person | MPID | customer id | events (UTC)                      | story                        |
|--------|------|-------------|-----------------------------------|------------------------------|
| Ann    | 101  | c-ann       | 2025-12-01, 2025-12-10            | never returns                |
| Bob    | 102  | c-bob       | 2025-12-02, 2026-01-10            | straddles a 2026-01-05 switch|
| Cat    | 103  | c-cat       | 2026-01-07                        | new after the switch         |
| Dan    | 104  | (none)      | 2025-12-03 as $device:dev-dan     | anonymous, never returns     |
| Eve    | —    | —           | 2025-12-04 as x-eve               | not in mParticle             |
"""

from __future__ import annotations

import pytest

from cohortlab import Lab
from cohortlab.migration.plans import MigrationPlan
from cohortlab.migration.run import run_plans

EVENTS = [
    # distinct_id, time, user_id, device_id
    ("c-ann", "2025-12-01 10:00:00", "c-ann", "dev-ann"),
    ("c-ann", "2025-12-10 10:00:00", "c-ann", "dev-ann"),
    ("c-bob", "2025-12-02 10:00:00", "c-bob", "dev-bob"),
    ("c-bob", "2026-01-10 10:00:00", "c-bob", "dev-bob"),
    ("c-cat", "2026-01-07 10:00:00", "c-cat", "dev-cat"),
    ("$device:dev-dan", "2025-12-03 10:00:00", None, "dev-dan"),
    ("x-eve", "2025-12-04 10:00:00", "x-eve", "dev-eve"),
]
# mpid -> identities (kind, type, value); Dan is known to mParticle by his device only
PROFILES = {
    101: [("user", "customer_id", "c-ann")],
    102: [("user", "customer_id", "c-bob")],
    103: [("user", "customer_id", "c-cat")],
    104: [("device", "android_uuid", "dev-dan")],
}


def insert_events(lab, rows):
    for did, t, uid, dev, *rest in rows:
        mup = rest[0] if rest else None
        lab.engine.execute(
            "INSERT INTO mp_events (event, time, distinct_id, insert_id, device_id, user_id, mparticle_user_id) "
            "VALUES ('e', CAST(? AS TIMESTAMP), ?, ?, ?, ?, ?)",
            [t, did, f"{did}-{t}", dev, uid, mup])


def insert_profiles(lab, profiles):
    for mpid, ids in profiles.items():
        lab.engine.execute("INSERT INTO mpa_profiles (mpid, source) VALUES (?, 'test')", [mpid])
        for kind, typ, value in ids:
            lab.engine.execute(
                "INSERT INTO mpa_identities (mpid, kind, identity_type, value) VALUES (?, ?, ?, ?)",
                [mpid, kind, typ, value])


@pytest.fixture
def world():
    with Lab() as lab:
        insert_events(lab, EVENTS)
        insert_profiles(lab, PROFILES)
        yield lab


@pytest.fixture
def lab():
    with Lab() as lab:
        yield lab


def plan(name="p", **kw):
    """A plan for the tests: the event rule off and customer_id throughout unless given."""
    kw.setdefault("event_identity_cutoff", None)
    kw.setdefault("eit_timeline", "customer_id")
    return MigrationPlan(name=name, **kw)


def runner(start, end):
    """``run(lab, *plans, settings=None, activity="observed", start=start, end=end)`` ->
    (daily, summary indexed by plan) over a module's window."""
    def run(lab, *plans, settings=None, activity="observed", start=start, end=end):
        r = run_plans(lab.engine, plans, start, end, settings=settings, activity=activity)
        return r.daily, r.summary.set_index("plan")
    return run
