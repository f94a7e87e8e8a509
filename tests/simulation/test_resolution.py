"""docs/rules.md#resolution: the outcome of each cohort member. Every identifier_source, every status, every
gap_reason, on hand-built rows with the expected values written out."""


import pandas as pd
import pytest

from cohortlab.simulation.membership import CohortError, find_cohort
from cohortlab.simulation.resolution import resolution_pipeline
from cohortlab.settings import SyncSettings
from cohortlab.times import parse_time

from .conftest import assert_portable

COHORT = "Power Users"
AT = "2026-03-01T00:00:00Z"


def rows(df):
    """{distinct_id: (identifier_source, identifier, mpid, status, gap_reason)}"""
    out = {}
    for r in df.itertuples():
        mpid = None if pd.isna(r.mpid) else int(r.mpid)
        gap = None if pd.isna(r.gap_reason) else r.gap_reason
        ident = None if pd.isna(r.identifier) else r.identifier
        out[r.distinct_id] = (r.identifier_source, ident, mpid, r.status, gap)
    return out


@pytest.fixture
def world(data):
    """One member per identifier source and per gap reason."""
    data.mpa(101, customer_id="C-101", email="ann@example.com")
    data.mpa(202)
    data.mpa(-7346244611012968789)  # MPIDs may be negative
    data.mpa(9080350317581165123)  # above 2^53: its float rounding is ...568
    data.mpa(303, customer_id="cust-303")
    # profile property
    data.profile("u_profile", mparticle_user_id="101")
    # profile property that is junk: still sent, no fallback
    data.profile("u_junk", mparticle_user_id="undefined", email="ann@example.com")
    # event rule: no profile property, event after cutoff carries it
    data.profile("u_event")
    data.event("u_event", "2026-01-10", mparticle_user_id="999")  # before the cutoff: ignored
    data.event("u_event", "2026-01-20", mparticle_user_id="202")
    data.event("u_event", "2026-02-01", mparticle_user_id=None)  # no property: not a candidate
    data.event("u_event", "2026-03-05", mparticle_user_id="404")  # after the as-of time: ignored
    # fallback to $distinct_id
    data.profile("-7346244611012968789")  # a distinct_id that is an MPID (EIT = mparticle_id)
    data.profile("cust-303")  # a customer id: not an MPID, but recoverable via customer_id
    # precision loss: 9080350317581165123 passed through a float
    data.profile("u_float", mparticle_user_id="9080350317581165568")
    # valid int64, no such profile
    data.profile("u_gone", mparticle_user_id="5555")
    # a member without any Mixpanel profile: $device: id
    data.snapshot(
        COHORT,
        "2026-03-01",
        ["u_profile", "u_junk", "u_event", "-7346244611012968789", "cust-303", "u_float", "u_gone", "$device:abc"],
    )
    return data


def test_every_identifier_source_and_gap_reason(world):
    df = world.lab.resolution(COHORT)
    assert rows(df) == {
        "u_profile": ("mparticle_user_id", "101", 101, "matched", None),
        "u_junk": ("mparticle_user_id", "undefined", None, "unmatched", "malformed_mparticle_user_id"),
        "u_event": ("event_property", "202", 202, "matched", None),
        "-7346244611012968789": ("distinct_id", "-7346244611012968789", -7346244611012968789, "matched", None),
        "cust-303": ("distinct_id", "cust-303", None, "unmatched", "distinct_id_not_mpid"),
        "u_float": ("mparticle_user_id", "9080350317581165568", None, "unmatched", "mpid_precision_loss"),
        "u_gone": ("mparticle_user_id", "5555", None, "unmatched", "mpid_not_found"),
        "$device:abc": ("distinct_id", "$device:abc", None, "unmatched", "distinct_id_not_mpid"),
    }
    assert list(df.columns) == [
        "cohort_name", "distinct_id", "identifier_source", "identifier", "mpid", "status", "gap_reason",
        "last_seen", "active_after_cutoff", "recoverable_via", "email", "as_of",
        "recoverable_profiles", "precision_loss_form", "resolved_at", "sent_at", "recoverable_mpid",
    ]
    # sent by the first (full) run at the as-of time, with the identifier of that time
    assert (df.sent_at == pd.Timestamp("2026-03-01")).all() and (df.resolved_at == pd.Timestamp("2026-03-01")).all()
    assert df.set_index("distinct_id").precision_loss_form.dropna().to_dict() == {"u_float": "integer_text"}
    assert (df.cohort_name == COHORT).all()
    assert (df.as_of == pd.Timestamp("2026-03-01")).all()


def test_recoverable_via_and_activity(world):
    df = world.lab.resolution(COHORT).set_index("distinct_id")
    # the customer id is a customer_id identity of profile 303
    assert df.loc["cust-303", "recoverable_via"] == "customer_id"
    # junk property, but the profile email is an email identity of profile 101
    assert df.loc["u_junk", "recoverable_via"] == "email"
    assert df.loc["u_junk", "email"] == "ann@example.com"
    assert pd.isna(df.loc["u_gone", "recoverable_via"])
    assert pd.isna(df.loc["u_profile", "recoverable_via"])  # matched: nothing to recover
    # last_seen = latest event not after the as-of time; active after the 2026-01-15 cutoff
    assert df.loc["u_event", "last_seen"] == pd.Timestamp("2026-02-01")
    assert bool(df.loc["u_event", "active_after_cutoff"]) is True
    assert bool(df.loc["u_gone", "active_after_cutoff"]) is False


def test_mpid_column_is_bigint_and_exact(world):
    table = world.lab.simulate(COHORT).tables["resolution"].table_name
    assert world.lab.sql(f"SELECT typeof(mpid) AS t FROM {table} LIMIT 1").t[0] == "BIGINT"
    got = world.lab.sql(f"SELECT mpid FROM {table} WHERE distinct_id = '-7346244611012968789'").mpid[0]
    assert int(got) == -7346244611012968789


def test_precision_loss_against_mpid_above_2_53(data):
    data.mpa(9080350317581165123)
    data.profile("u", mparticle_user_id="9080350317581165568")
    data.profile("v", mparticle_user_id="9080350317581165123")
    data.snapshot(COHORT, AT, ["u", "v"])
    got = rows(data.lab.resolution(COHORT))
    assert got["u"][3:] == ("unmatched", "mpid_precision_loss")
    assert got["v"][2:] == (9080350317581165123, "matched", None)


def test_strict_fallback_follows_the_eit_in_force_at_the_as_of_time(data):
    data.mpa(42)
    data.profile("42")
    data.profile("u_prop", mparticle_user_id="42")
    data.snapshot(COHORT, "2026-03-01", ["42", "u_prop"])
    strict_customer = SyncSettings(fallback="strict")  # default EIT: customer_id throughout
    assert rows(data.lab.resolution(COHORT, settings=strict_customer)) == {
        "42": ("none", None, None, "unmatched", "fallback_disabled"),
        "u_prop": ("mparticle_user_id", "42", 42, "matched", None),
    }
    migrated = SyncSettings(
        fallback="strict",
        eit_timeline=[{"since": None, "eit": "customer_id"}, {"since": "2026-02-01", "eit": "mparticle_id"}],
    )
    assert rows(data.lab.resolution(COHORT, settings=migrated))["42"] == ("distinct_id", "42", 42, "matched", None)
    # the same settings, as of a time before the migration: refused
    data.snapshot(COHORT, "2026-01-20", ["42"])
    assert rows(data.lab.resolution(COHORT, at="2026-01-20", settings=migrated))["42"][4] == "fallback_disabled"
    # fallback="data" (default): matches whenever the distinct_id is an existing MPID
    assert rows(data.lab.resolution(COHORT))["42"][3] == "matched"


def test_event_identity_cutoff_none_turns_the_event_rule_off(data):
    data.mpa(202)
    data.profile("u")
    data.event("u", "2026-02-01", mparticle_user_id="202")
    data.snapshot(COHORT, AT, ["u"])
    assert rows(data.lab.resolution(COHORT))["u"] == ("event_property", "202", 202, "matched", None)
    off = SyncSettings(event_identity_cutoff=None)
    assert rows(data.lab.resolution(COHORT, settings=off))["u"] == ("distinct_id", "u", None, "unmatched", "distinct_id_not_mpid")
    later = SyncSettings(event_identity_cutoff="2026-02-02")
    assert rows(data.lab.resolution(COHORT, settings=later))["u"][0] == "distinct_id"


def test_junk_event_property_is_sent_without_fallback(data):
    data.mpa(77)
    data.profile("77")  # its distinct_id IS an MPID, but the event property wins
    data.event("77", "2026-02-01", mparticle_user_id="1.2e18")
    data.snapshot(COHORT, AT, ["77"])
    assert rows(data.lab.resolution(COHORT))["77"] == (
        "event_property", "1.2e18", None, "unmatched", "malformed_mparticle_user_id"
    )


def test_create_and_update_creates_orphans_and_keeps_the_gap_reason(world):
    df = world.lab.resolution(COHORT, settings=SyncSettings(protection="create_and_update"))
    got = rows(df)
    assert got["u_gone"][3:] == ("orphan_created", "mpid_not_found")
    assert got["cust-303"][3:] == ("orphan_created", "distinct_id_not_mpid")
    assert got["u_profile"][3:] == ("matched", None)
    assert sorted(df.status.unique()) == ["matched", "orphan_created"]


def test_strict_refusal_sends_nothing_so_creates_no_orphan(data):
    data.profile("u")
    data.snapshot(COHORT, AT, ["u"])
    s = SyncSettings(fallback="strict", protection="create_and_update")
    assert rows(data.lab.resolution(COHORT, settings=s))["u"] == ("none", None, None, "unmatched", "fallback_disabled")


def test_members_at_a_time_are_the_latest_snapshot_at_or_before_it(data):
    data.snapshot(COHORT, "2026-03-01", ["a", "b"])
    data.snapshot(COHORT, "2026-03-02", ["b", "c"])
    assert sorted(data.lab.resolution(COHORT).distinct_id) == ["b", "c"]  # at=None: latest
    assert sorted(data.lab.resolution(COHORT, at="2026-03-01T12:00").distinct_id) == ["a", "b"]
    assert sorted(data.lab.resolution(COHORT, at="2026-03-02").distinct_id) == ["b", "c"]


def test_members_replayed_from_webhooks(data):
    data.webhook(COHORT, "members", "2026-03-01T00:00", ["a", "b"], session_id="s1", page=1, total_pages=2)
    data.webhook(COHORT, "members", "2026-03-01T00:00:01", ["c"], session_id="s1", page=2, total_pages=2)
    data.webhook(COHORT, "add_members", "2026-03-01T00:15", ["d"], session_id="s2")
    data.webhook(COHORT, "remove_members", "2026-03-01T00:15", ["a"], session_id="s2")
    data.webhook(COHORT, "add_members", "2026-03-01T00:30", ["d"], session_id="s3")  # replayed add: no change
    members = lambda at: sorted(data.lab.resolution(COHORT, at=at).distinct_id)
    assert members("2026-03-01T00:10") == ["a", "b", "c"]  # both pages of s1 form one message
    assert members("2026-03-01T00:20") == ["b", "c", "d"]
    assert members(None) == ["b", "c", "d"]
    # `members` replaces the whole list
    data.webhook(COHORT, "members", "2026-03-01T01:00", ["b", "e"], session_id="s4")
    assert members(None) == ["b", "e"]
    # the source is chosen automatically (no snapshots) or explicitly
    assert sorted(data.lab.resolution(COHORT, source="webhooks").distinct_id) == ["b", "e"]


def test_webhook_email_is_used_for_recoverable_via(data):
    data.mpa(5, email="zoe@example.com")
    data.webhook(COHORT, "members", "2026-03-01", ["zoe-uuid"], emails={"zoe-uuid": "zoe@example.com"})
    df = data.lab.resolution(COHORT)
    assert df.recoverable_via.tolist() == ["email"]
    assert df.email.tolist() == ["zoe@example.com"]


def test_unknown_cohort_lists_the_known_ones(data):
    data.snapshot(COHORT, AT, ["a"])
    with pytest.raises(CohortError, match="unknown cohort 'Nope'; known cohorts: 'Power Users'"):
        data.lab.resolution("Nope")


def test_cohort_without_membership_in_the_chosen_source(data):
    """The source asked for has none, the other has some: said so (it was "has no membership
    data", of a cohort known from webhook payloads asked with --source snapshots)."""
    data.snapshot(COHORT, AT, ["a"])
    with pytest.raises(CohortError, match=r"^cohort 'Power Users' has no webhook payloads, only snapshots: use "
                                          r"--source snapshots or auto \(source='snapshots' in Python\)$"):
        data.lab.resolution(COHORT, source="webhooks")


def test_cohort_without_any_membership_names_both_sources(data):
    """With --source auto (the default) and neither snapshots nor webhook payloads, the error names
    both, not only the webhooks auto fell back to (docs/troubleshooting.md#simulating)."""
    data.mpa(1)
    data.lab.sql("INSERT INTO mp_cohorts (cohort_id, name) VALUES ('7', 'Listed Only')")
    with pytest.raises(CohortError, match=r"cohort 'Listed Only' has no membership data: no snapshots "
                                          r"\(load mixpanel-members\) and no webhook payloads"):
        data.lab.resolution("Listed Only")


def test_debug_mode_materialises_each_step_with_row_counts(world):
    r = world.lab.simulate(COHORT, debug=True)
    counts = r.step_counts
    assert counts["final_members"]["final_members"] == 8
    assert counts["resolved"]["req_event_ids"] == 1  # u_event
    assert counts["resolved"]["int_rounded"] == 1  # 9080350317581165568
    assert counts["resolution"]["resolution"] == 8
    assert world.lab.engine.count(r.table_names["resolved__resolved"]) == 8
    assert list(counts["resolution"])[-1] == "resolution"
    assert world.lab.last_step_counts is counts


@pytest.mark.parametrize("source", ["snapshots", "webhooks"])
@pytest.mark.parametrize("history", ["none", "single", "multi"])
def test_every_step_stays_in_the_portable_subset(data, source, history):
    data.snapshot(COHORT, AT, ["a"])
    data.webhook(COHORT, "members", AT, ["a"])
    ref = find_cohort(data.engine, COHORT, source)
    s = SyncSettings(fallback="strict", eit_timeline=[{"since": None, "eit": "customer_id"},
                                                      {"since": "2026-02-01", "eit": "mparticle_id"}])
    assert_portable(resolution_pipeline(ref, parse_time(AT), s, history=history))


def test_two_snapshots_with_the_same_as_of_the_later_load_wins(data):
    data.snapshot(COHORT, AT, ["a"])
    data.snapshot(COHORT, AT, ["b"])  # loaded later: higher snapshot_id
    assert data.lab.resolution(COHORT).distinct_id.tolist() == ["b"]


def test_an_empty_snapshot_empties_the_cohort(data):
    data.snapshot(COHORT, "2026-03-01", ["a"])
    data.snapshot(COHORT, "2026-03-02", [])
    assert data.lab.resolution(COHORT, at="2026-03-01T12:00").distinct_id.tolist() == ["a"]
    assert data.lab.resolution(COHORT).distinct_id.tolist() == []
    r = data.lab.simulate(COHORT, settings={"cadence": "1d"})
    assert r.timeline[["members", "adds", "removes"]].values.tolist() == [[1, 1, 0], [0, 0, 1]]


def test_membership_over_more_than_61_snapshots(data):
    """Presence is kept as 61-version bitmasks: crossing a block boundary changes nothing."""
    for day in range(130):
        members = ["always"] + (["odd"] if day % 2 else []) + (["late"] if day >= 61 else [])
        data.snapshot(COHORT, (pd.Timestamp("2026-01-01") + pd.Timedelta(days=day)).isoformat(), members)
    r = data.lab.simulate(COHORT, settings={"cadence": "1d"})
    tl = r.timeline
    assert len(tl) == 130
    assert tl.members.tolist() == [1 + (d % 2) + (d >= 61) for d in range(130)]
    assert tl.adds.tolist() == [1] + [(d % 2) + (d == 61) for d in range(1, 130)]
    assert tl.removes.tolist() == [0] + [1 - (d % 2) for d in range(1, 130)]


def test_recoverable_via_is_deterministic_when_several_identities_match(data):
    data.mpa(1, other="zed")  # the distinct_id is an `other` identity here ...
    data.mpa(2, customer_id="zed")  # ... and a customer_id there: customer_id first
    data.mpa(3, email="zed@example.com")  # the email also matches, but the distinct_id comes first
    data.profile("zed", email="zed@example.com")
    data.profile("solo", email="zed@example.com")  # only the email matches
    data.snapshot(COHORT, AT, ["zed", "solo"])
    df = data.lab.resolution(COHORT).set_index("distinct_id")
    assert df.recoverable_via.to_dict() == {"solo": "email", "zed": "customer_id"}


# ---------------------------------------------------------------- boundaries and ties (mutation review)
def test_an_event_at_exactly_the_cutoff_counts(data):
    """docs/rules.md#event-identity-rule: events 'at or after the cutoff' (2026-01-15T00:00Z)."""
    data.mpa(202)
    data.profile("u")
    data.event("u", "2026-01-15T00:00", mparticle_user_id="202")
    data.snapshot(COHORT, AT, ["u"])
    assert rows(data.lab.resolution(COHORT))["u"] == ("event_property", "202", 202, "matched", None)


def test_an_event_at_exactly_the_resolution_time_counts(data):
    """docs/rules.md#event-identity-rule: events 'not after the time the member is resolved'; the
    first (full) run sends at the as-of time, and an event at that instant is at or before it."""
    data.mpa(202)
    data.profile("u")
    data.event("u", AT, mparticle_user_id="202")
    data.snapshot(COHORT, AT, ["u"])
    assert rows(data.lab.resolution(COHORT))["u"] == ("event_property", "202", 202, "matched", None)


def test_the_latest_event_wins_not_the_greatest_value(data):
    """docs/rules.md#event-identity-rule: the property of the latest qualifying event; the greater
    value only breaks a tie of one instant. Here the later event carries the smaller value."""
    data.mpa(202).mpa(303)
    data.profile("u")
    data.event("u", "2026-01-20", mparticle_user_id="303")
    data.event("u", "2026-02-01", mparticle_user_id="202")
    data.snapshot(COHORT, AT, ["u"])
    assert rows(data.lab.resolution(COHORT))["u"] == ("event_property", "202", 202, "matched", None)


def test_strict_fallback_at_exactly_the_start_of_an_eit_period(data):
    """An EIT period is in force from its `since` on, that instant included (settings.eit_at:
    since <= t): resolved at exactly 2026-02-01 the EIT is mparticle_id and the fallback applies."""
    data.mpa(42)
    data.profile("42")
    data.snapshot(COHORT, "2026-02-01", ["42"])
    migrated = SyncSettings(
        fallback="strict",
        eit_timeline=[{"since": None, "eit": "customer_id"}, {"since": "2026-02-01", "eit": "mparticle_id"}],
    )
    assert rows(data.lab.resolution(COHORT, at="2026-02-01", settings=migrated))["42"] == (
        "distinct_id", "42", 42, "matched", None
    )


def test_strict_fallback_follows_the_latest_eit_period_of_several(data):
    """customer_id, then mparticle_id from 2026-02-01, then customer_id again from 2026-02-15: at
    2026-03-01 the last period (customer_id) is in force, so the fallback is refused, though the
    mparticle_id period's start is also before the resolution time."""
    data.mpa(42)
    data.profile("42")
    data.snapshot(COHORT, AT, ["42"])
    back_and_forth = SyncSettings(
        fallback="strict",
        eit_timeline=[{"since": None, "eit": "customer_id"}, {"since": "2026-02-01", "eit": "mparticle_id"},
                      {"since": "2026-02-15", "eit": "customer_id"}],
    )
    assert rows(data.lab.resolution(COHORT, settings=back_and_forth))["42"] == (
        "none", None, None, "unmatched", "fallback_disabled"
    )
    # between the two switches the fallback applies
    data.snapshot(COHORT, "2026-02-10", ["42"])
    assert rows(data.lab.resolution(COHORT, at="2026-02-10", settings=back_and_forth))["42"][3] == "matched"


def test_last_seen_at_exactly_the_cutoff_is_active_after_it(data):
    """docs/rules.md#recoverable-via: active_after_cutoff is last_seen 'at or after' the cutoff."""
    data.profile("u", last_seen="2026-01-15T00:00")
    data.snapshot(COHORT, AT, ["u"])
    df = data.lab.resolution(COHORT).set_index("distinct_id")
    assert df.loc["u", "last_seen"] == pd.Timestamp("2026-01-15")
    assert bool(df.loc["u", "active_after_cutoff"]) is True


def test_last_seen_from_an_event_at_exactly_the_as_of_time(data):
    """Without $last_seen, last_seen is the latest event at or before the as-of time: an event at
    that instant counts."""
    data.profile("u")
    data.event("u", "2026-02-01")
    data.event("u", AT)
    data.event("u", "2026-03-01T00:00:01")  # after the as-of time: ignored
    data.snapshot(COHORT, AT, ["u"])
    df = data.lab.resolution(COHORT).set_index("distinct_id")
    assert df.loc["u", "last_seen"] == pd.Timestamp("2026-03-01")


def test_a_profile_version_as_of_exactly_the_resolution_time_is_in_force(data):
    """docs/rules.md#resolution-time: the profile is the latest version at or before the time the
    member is resolved; a version as of exactly that instant counts."""
    data.mpa(101)
    data.profile("u", as_of="2026-02-01")
    data.profile("u", mparticle_user_id="101", as_of=AT)
    data.snapshot(COHORT, AT, ["u"])
    assert rows(data.lab.resolution(COHORT))["u"] == ("mparticle_user_id", "101", 101, "matched", None)
