"""Hand-built inputs for the simulation tests: rows inserted straight into the canonical tables
(``cohortlab.schema``), so these tests do not depend on the loaders.

    def test_x(data):
        data.mpa(101)                                  # an mParticle profile, MPID 101
        data.profile("u1", mparticle_user_id="101")    # a Mixpanel profile
        data.snapshot("Power Users", "2026-03-01", ["u1"])
        res = data.lab.resolution("Power Users")
"""

from __future__ import annotations

import itertools
import json

import pytest

from cohortlab import Lab
from cohortlab.times import naive_utc, parse_time


LOGGED_IN = object()  # Data.event's default $user_id: the distinct_id (a logged-in event)


def ts(text):
    """'2026-03-01' or '2026-03-01T10:00' -> naive UTC datetime."""
    return None if text is None else naive_utc(parse_time(text))


class Data:
    def __init__(self, lab: Lab):
        self.lab = lab
        self.engine = lab.engine
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)

    # ---------------------------------------------------------------- Mixpanel
    def profile(self, distinct_id, mparticle_user_id=None, email=None, last_seen=None, as_of=None, history=False,
                mparticle_user_id_type="VARCHAR"):
        """A Mixpanel profile. ``as_of`` (or ``history=True``) also keeps it as a version in
        ``mp_profile_history`` (as_of None: known from the beginning); ``mp_profiles`` keeps the
        latest version, as the loaders do."""
        if as_of is not None or history:
            seq = next(self._ids)
            self.engine.execute(
                "INSERT INTO mp_profile_history (distinct_id, mparticle_user_id, mparticle_user_id_type, email, last_seen,"
                " as_of, load_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [distinct_id, mparticle_user_id, mparticle_user_id_type if mparticle_user_id is not None else None,
                 email, ts(last_seen), ts(as_of), 1_000_000 + seq],
            )
            self.engine.execute("DELETE FROM mp_profiles WHERE distinct_id = ?", [distinct_id])
        self.engine.execute(
            "INSERT INTO mp_profiles (distinct_id, mparticle_user_id, email, last_seen) VALUES (?, ?, ?, ?)",
            [distinct_id, mparticle_user_id, email, ts(last_seen)],
        )
        return self

    def event(self, distinct_id, time, mparticle_user_id=None, event="Page View", user_id=LOGGED_IN, device_id=None):
        """A Mixpanel event. ``user_id``: its ``$user_id``; by default the distinct_id (a logged-in
        event, as Simplified ID Merge keys it), none for a ``$device:`` distinct_id; None: an
        anonymous event (a Rule or SDK code writes from logged-in events only)."""
        if user_id is LOGGED_IN:
            user_id = None if distinct_id.startswith("$device:") else distinct_id
        self.engine.execute(
            "INSERT INTO mp_events (event, time, distinct_id, insert_id, mparticle_user_id, user_id, device_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [event, ts(time), distinct_id, f"i{next(self._ids)}", mparticle_user_id, user_id, device_id],
        )
        return self

    def snapshot(self, cohort, as_of, members, cohort_id=None):
        sid = next(self._ids) + 1000
        self.engine.execute(
            "INSERT INTO mp_cohort_snapshots (snapshot_id, cohort_id, cohort_name, as_of, member_count) VALUES (?, ?, ?, ?, ?)",
            [sid, cohort_id, cohort, ts(as_of), len(set(members))],
        )
        for d in members:
            self.engine.execute(
                "INSERT INTO mp_cohort_members (snapshot_id, cohort_name, as_of, distinct_id) VALUES (?, ?, ?, ?)",
                [sid, cohort, ts(as_of), d],
            )
        return sid

    def webhook(self, cohort, action, received_at, members, session_id=None, page=1, total_pages=1, emails=None):
        """One webhook page. ``members``: distinct_ids; ``emails``: {distinct_id: email}."""
        seq = next(self._seq)
        self.engine.execute(
            "INSERT INTO mp_webhook_pages (seq, received_at, action, cohort_id, cohort_name, session_id, page_count,"
            " total_pages, member_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [seq, ts(received_at), action, "c1", cohort, session_id or f"s{seq}", page, total_pages, len(members)],
        )
        for d in members:
            email = (emails or {}).get(d)
            self.engine.execute(
                "INSERT INTO mp_webhook_members (seq, distinct_id, email, properties) VALUES (?, ?, ?, ?)",
                [seq, d, email, json.dumps({"mixpanel_distinct_id": d})],
            )
        return seq

    # ---------------------------------------------------------------- mParticle
    def mpa(self, mpid, **identities):
        """An mParticle profile; keyword identities, e.g. customer_id='C1', email='a@x.com'."""
        self.engine.execute("INSERT INTO mpa_profiles (mpid, source) VALUES (?, 'test')", [mpid])
        for t, v in identities.items():
            self.engine.execute(
                "INSERT INTO mpa_identities (mpid, kind, identity_type, value) VALUES (?, 'user', ?, ?)", [mpid, t, v]
            )
        return self


def assert_portable(pipeline):
    """The portable subset (docs/DEVELOPING.md#portable-sql): every step parses, transpiles to Spark with errors raised,
    has no ORDER BY outside a window, and reads no table function."""
    import sqlglot
    from sqlglot import ErrorLevel, exp

    for step in pipeline.steps:
        tree = sqlglot.parse_one(step.sql, read="duckdb")
        for order in tree.find_all(exp.Order):
            assert order.find_ancestor(exp.Window) is not None, f"{step.name}: ORDER BY outside a window"
        for table in tree.find_all(exp.Table):
            assert isinstance(table.this, exp.Identifier), f"{step.name}: table function {table.sql()}"
        assert not list(tree.find_all(exp.Unnest)) or step.name in ("runs",), f"{step.name}: UNNEST"
        sqlglot.transpile(step.sql, read="duckdb", write="spark", unsupported_level=ErrorLevel.RAISE)


@pytest.fixture
def lab():
    with Lab() as lab:
        yield lab


@pytest.fixture
def data(lab):
    return Data(lab)


# ---------------------------------------------------------------- a small generated world
# Settings under which a simulation at an earlier time can be read from a later one
# (test_outcomes_at, test_earlier): identifiers decided at send time
SEND_TIME_SETTINGS = {
    "defaults (send time)": {},
    # runs every 7 h: snapshots fall between runs, so members enter without a decision (resolved at t)
    "off-grid cadence": {"cadence": "7h"},
    "paused export, create_and_update": {
        "protection": "create_and_update",
        "pauses": [{"start": "2026-02-24T06:00:00Z", "end": "2026-02-27T18:00:00Z"}],
    },
    "one-time export with a re-export": {"sync_type": "one_time", "reexport_at": ["2026-02-26T12:00:00Z"]},
    "start after the first snapshot, strict fallback": {"start": "2026-02-25T12:00:00Z", "fallback": "strict"},
}


@pytest.fixture(scope="module")
def world_lab(tmp_path_factory):
    """A generated world (500 users, mid_migration, seed 11), loaded into an in-memory Lab."""
    pytest.importorskip("cohortlab.synth")
    from cohortlab.loaders.folder import load_world
    from cohortlab.synth import generate

    world = tmp_path_factory.mktemp("generated") / "world"
    generate(world, users=500, seed=11, scenario="mid_migration")
    lab = Lab()
    load_world(lab, world)
    yield lab
    lab.close()
