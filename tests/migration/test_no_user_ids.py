"""Data whose events carry no ``$user_id`` at all: Original ID Merge, the legacy API,
mParticle's Mixpanel output without Simplified ID Merge. An identified user's events are keyed by
the user's id (a customer id, the MPID after the switch), anonymous ones by a device id, a
``$device:`` one or a bare one. Logged in is then an event keyed by no device id
(:func:`cohortlab.identifiers.logged_in_rule`), one rule for the what-if, the identity-gaps
page's remedies and the switch detection. Before, a Rule and SDK code reached no one on such
data on both pages, the what-if keyed every customer-id period event by a device (no customer-id
profile, no split), and an anonymous ``$device:`` event before the first MPID-keyed one made a
switch of a world keyed by MPID from its start."""

from __future__ import annotations

import pytest

from cohortlab import Lab
from cohortlab.loaders.folder import load_world
from cohortlab.migration.run import run_plans
from cohortlab.migration.switch import find_switch, first_mpid_keyed_event, plans_around

from .conftest import insert_events, insert_profiles
from .no_user_id_world import AT, SETTINGS, SINCE, SWITCH, write_world


def _pages(tmp_path, user_ids: bool) -> dict:
    """What the switch detection, the what-if (the standard four plans, the cohort's people) and
    the remedies say on the world of :mod:`.no_user_id_world`."""
    with Lab() as lab:
        load_world(lab, write_world(tmp_path / str(user_ids), user_ids=user_ids))
        sw = find_switch(lab.engine, settings=SETTINGS)
        run = run_plans(lab.engine, plans_around(SWITCH, rule=SINCE, settings=SETTINGS), "2026-02-01",
                        "2026-03-08", settings=SETTINGS, cohort="Buyers")
        users = lab.engine.query_df("SELECT plan, distinct_id, status FROM migration_users")
        summary = run.summary.set_index("plan")
        run.drop_tables(lab.engine)
        rem = lab.remedies("Buyers", at=AT, settings=SETTINGS, since=SINCE).set_index("key")
        return {"switch": (str(sw.at), sw.source),
                "matched": {p: sorted(g.loc[g["status"] == "matched", "distinct_id"])
                            for p, g in users.groupby("plan")},
                "summary": summary[["members_end", "matched_end", "split_profiles_end", "stranded_profiles",
                                    "never_fixable_users", "unfixed_profiles"]].to_dict("index"),
                "recovered": dict(rem["recovered"]), "people_after": dict(rem["people_after"]),
                "notes": dict(rem["note"])}


def test_without_user_ids_a_rule_reaches_the_members_logged_in_since_its_start_on_both_pages(tmp_path):
    """The world without any ``$user_id``: a Rule from 02-15 reaches cust-1 (the app), cust-3
    (logged in after being anonymous as $device:d-3) and cust-4 (server-side); SDK code cust-1
    and cust-3 (events with a $device_id); not cust-2 (inactive since), d-5 (a bare device id,
    an mParticle device identity), $device:d-3, cust-6 (only anonymous since, as $device:d-6).
    Before: 0 on both pages ("none is known to be logged in") and, in the what-if, no customer-id
    profile at all (members 8 instead of 10, no split)."""
    got = _pages(tmp_path, user_ids=False)
    assert got["switch"] == ("2026-03-02 10:00:00+00:00", "data")
    assert got["matched"] == {"do nothing": [], "switch only": ["1001", "1003", "1008"],
                              "switch + Rule": ["1001", "1003", "1008", "cust-1", "cust-3", "cust-4"],
                              "Rule only": ["cust-1", "cust-3", "cust-4", "cust-8"]}
    s = got["summary"]
    assert s["switch only"] == {"members_end": 10, "matched_end": 3, "split_profiles_end": 2, "stranded_profiles": 2,
                                "never_fixable_users": 3, "unfixed_profiles": 0}
    assert (s["switch + Rule"]["matched_end"], s["Rule only"]["matched_end"], s["do nothing"]["members_end"]) == (6, 4, 8)
    assert got["recovered"] == {"rule": 3, "rule_reexport": 3, "sdk_code": 2, "sdk_reexport": 2, "switch_eit": 4,
                                "reexport": 0, "reconnect": 0}
    assert got["people_after"]["rule"] == 4  # 1008 (matched by the fallback) and the three written
    note = got["notes"]["rule"]
    assert note.startswith("writes $mparticle_user_id from 2026-02-15T00:00:00Z on 3 unmatched members with a "
                           "logged-in event since then and a known MPID (no event of the data carries a $user_id, "
                           "as under Original ID Merge or an output without Simplified ID Merge: an event counts "
                           "as logged in when its distinct_id is no device id")
    assert "on 2 unmatched members with a logged-in event from the app" in got["notes"]["sdk_code"]


def test_the_same_world_with_user_ids_says_the_same_on_every_page(tmp_path):
    """With a ``$user_id`` on every event keyed by a user's id (Simplified ID Merge) the pages
    say what they say without any: the rule without ``$user_id`` reads the same events as
    logged in on this world. Only the remedies' note differs (it names the assumption)."""
    without, with_ids = _pages(tmp_path, user_ids=False), _pages(tmp_path, user_ids=True)
    assert "no event of the data carries a $user_id" not in with_ids["notes"]["rule"]
    for k in ("switch", "matched", "summary", "recovered", "people_after"):
        assert without[k] == with_ids[k], k


def test_without_user_ids_anonymous_events_before_the_first_mpid_keyed_one_show_no_switch():
    """A world keyed by MPID from its start whose users were anonymous first (a ``$device:`` id,
    a bare device id that is the event's ``$device_id``, or an mParticle device identity) has no
    switch: before, with no ``$user_id`` in the data, every event counted and the anonymous
    events before the first MPID-keyed one made a "switch" there."""
    with Lab() as lab:
        insert_profiles(lab, {55: [("device", "android_uuid", "srv-9")], 66: []})
        insert_events(lab, [("$device:d1", "2026-01-01 00:00:00", None, "d1"),
                            ("d2", "2026-01-01 01:00:00", None, "d2"),
                            ("srv-9", "2026-01-01 02:00:00", None, None),
                            ("55", "2026-01-03 00:00:00", None, "d1"), ("66", "2026-01-04 00:00:00", None, "d2")])
        assert first_mpid_keyed_event(lab.engine) is None
        with pytest.raises(ValueError, match="no switch date"):
            find_switch(lab.engine)
        # an event keyed by a customer id before it is a switch
        insert_events(lab, [("c-x", "2026-01-02 00:00:00", None, "d3")])
        sw = find_switch(lab.engine)
        assert (str(sw.at), sw.identified) == ("2026-01-03 00:00:00+00:00", False)
