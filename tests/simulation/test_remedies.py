"""Every remedy valued by its own simulation (docs/simulate.md#remedies), on hand-built worlds
whose answer is written here.

The main world (cadence 1 day, runs Mar 1 .. Mar 7, the event rule off, remedies from Mar 2):

* ``C1`` (customer id of MPID 101) is a member from Mar 1: sent unmatched on Mar 1, active on
  Mar 3 (an event without a device id: server-side);
* ``C2`` (customer id of MPID 102) enters on Mar 5, active on Mar 3 from the app (device id);
* ``M`` has ``$mparticle_user_id`` = 104 (matched from the start) and is active on Mar 3;
* ``105`` is keyed by its MPID but its profile holds a junk ``$mparticle_user_id`` (no fallback),
  a member from Mar 1, active on Mar 3;
* ``X`` is not in mParticle at all.
"""

from __future__ import annotations

import pandas as pd
import pytest

from cohortlab.simulation.remedies import REMEDY_COLUMNS, value_remedies

from .conftest import ts

C = "Buyers"
DAILY = {"cadence": "1d", "event_identity_cutoff": None}


def app_event(data, distinct_id, time, device_id):
    data.engine.execute(
        "INSERT INTO mp_events (event, time, distinct_id, insert_id, device_id, user_id) VALUES ('Open', ?, ?, ?, ?, ?)",
        [ts(time), distinct_id, f"app-{distinct_id}-{time}", device_id, distinct_id])


@pytest.fixture
def world(data):
    data.mpa(101, customer_id="C1").mpa(102, customer_id="C2").mpa(104, customer_id="C4")
    data.mpa(105)
    data.profile("C1").profile("C2").profile("M", mparticle_user_id="104").profile("X")
    data.profile("105", mparticle_user_id="undefined")
    data.event("105", "2026-03-03")
    data.event("C1", "2026-03-03")
    app_event(data, "C2", "2026-03-03T10:00", "dev-2")
    data.event("M", "2026-03-03")
    data.event("X", "2026-03-03")
    data.snapshot(C, "2026-03-01", ["C1", "M", "X", "105"])
    data.snapshot(C, "2026-03-05", ["C1", "C2", "M", "X", "105"])
    return data


def gained(df):
    return dict(zip(df.key, df.gained))


def test_each_remedy_is_valued_by_its_own_simulation(world):
    df = world.lab.remedies(C, at="2026-03-07", settings=DAILY, since="2026-03-02")
    assert list(df.columns) == REMEDY_COLUMNS
    assert set(df.audience_before) == {1}  # M only
    assert gained(df) == {
        "rule": 1,           # C2 is sent (enters Mar 5) after its fix (Mar 3); C1 and 105 were sent before theirs
        "rule_reexport": 3,  # the re-export on Mar 7 re-sends C1 and 105 with the fixed identifier
        "sdk_code": 1,       # only C2's events come from the app
        "sdk_reexport": 1,   # C1 and 105 never run the app: the re-export cannot help them
        "switch_eit": 2,     # new profiles 101 and 102 enter on Mar 5; 105 is keyed by its MPID already: still junk
        "reexport": 0,       # nothing fixed: the same identifiers again
        "reconnect": 0,      # no pause
    }
    notes = dict(zip(df.key, df.note))
    assert "on 3 unmatched members with a logged-in event since then" in notes["rule"]  # C1, C2 and 105
    assert "on 1 unmatched member with a logged-in event from the app" in notes["sdk_code"]  # C2, in the singular
    assert "3 split profiles" in notes["switch_eit"]  # 101, 102 and 104 (M's new profile)
    assert notes["reconnect"] == "no pause in the settings"
    # only the reconnect has nothing to act on: it alone was not simulated
    assert dict(zip(df.key, df.applies)) == {k: k != "reconnect" for k in df.key}
    assert "re-export at 2026-03-07T00:00:00Z" in notes["rule_reexport"]
    assert df.attrs["since"] == pd.Timestamp("2026-03-02", tz="UTC")


def test_recovered_counts_the_members_own_people_and_gained_every_profile(world):
    """``recovered``: the members' users (their MPIDs) whose attribute is true, after minus
    before; here every profile gained is a member's (M's 104 is in the audience before)."""
    df = world.lab.remedies(C, at="2026-03-07", settings=DAILY, since="2026-03-02").set_index("key")
    assert set(df.people_before) == {1}  # 104 (M)
    assert (df.recovered == df.gained).all()
    assert df.loc["rule_reexport", "people_after"] == 4  # 101, 102, 104, 105


def test_a_member_who_leaves_at_the_reexport_run_is_gained_but_not_recovered(data):
    """A re-export removes nothing (docs/rules.md#re-export): a member who leaves the cohort at
    the run the re-export replaces stays true. The audience grows by that stale profile
    (``gained`` 1) while no member's user is added (``recovered`` 0)."""
    data.mpa(201).mpa(202)
    data.profile("A", mparticle_user_id="201").profile("B", mparticle_user_id="202")
    data.snapshot(C, "2026-03-01", ["A", "B"])
    data.snapshot(C, "2026-03-07", ["A"])  # B leaves on the last day: the Mar 7 run removes it
    df = data.lab.remedies(C, at="2026-03-07", settings=DAILY, since="2026-03-02").set_index("key")
    row = df.loc["reexport"]
    assert (row.audience_before, row.audience_after, row.gained) == (1, 2, 1)  # 202 stays true
    assert (row.people_before, row.people_after, row.recovered) == (1, 1, 0)  # only A is a member's user
    full = value_remedies(data.engine, C, "2026-03-07", DAILY, since="2026-03-02", _full=True).set_index("key")
    assert (full.loc["reexport", "gained"], full.loc["reexport", "recovered"]) == (1, 0)


@pytest.mark.parametrize("how", ["snapshot_ttl shorter than the cadence", "a members message"])
def test_a_reexport_landing_on_a_full_refresh_changes_nothing(data, how):
    """docs/rules.md#pauses-and-refresh: a re-export that lands on a full refresh sends the same
    members with the same identifiers and the stale values are cleared all the same. The
    reexport row, derived from the baseline (last_run_reexport.py), treated the refresh as a
    re-export that clears nothing, so B, cleared by the refresh, stayed true: gained 1 where
    Lab.reexport_value and a simulation with reexport_at give 0."""
    data.mpa(201).mpa(202)
    data.profile("A", mparticle_user_id="201").profile("B", mparticle_user_id="202")
    if how == "a members message":
        settings = {"cadence": "1h"}
        data.webhook(C, "members", "2026-03-01T00:00", ["A", "B"])
        data.webhook(C, "members", "2026-03-01T00:30", ["A"])  # the whole list again: the 01:00 run refreshes
    else:
        settings = {"cadence": "1h", "snapshot_ttl": "10m"}  # every run after the first is a full refresh
        data.snapshot(C, "2026-03-01T00:00", ["A", "B"])
        data.snapshot(C, "2026-03-01T00:30", ["A"])
    at = "2026-03-01T01:10"
    base = data.lab.simulate(C, at=at, settings=settings)
    assert list(base.timeline.kind) == ["first", "full_refresh"] and base.audience == 1  # 202 cleared
    row = data.lab.remedies(C, at=at, settings=settings).set_index("key").loc["reexport"]
    value = data.lab.reexport_value(C, at=at, settings=settings)
    assert (row.audience_before, row.audience_after, row.gained) == (1, 1, 0)
    assert value["audience_after_reexport"] == 1
    full = value_remedies(data.engine, C, at, settings, _full=True).set_index("key")
    assert full.loc["reexport", "audience_after"] == 1


def test_the_inputs_are_unchanged_after_valuing(world):
    before = world.lab.simulate(C, at="2026-03-07", settings=DAILY)
    audience = before.audience
    world.lab.clear_simulations()
    value_remedies(world.engine, C, "2026-03-07", DAILY, since="2026-03-02")
    assert world.engine.count("mp_cohort_members") == 9
    assert world.engine.count("mp_profiles") == 5
    assert world.lab.simulate(C, at="2026-03-07", settings=DAILY).audience == audience == 1
    from cohortlab import schema

    temp = [t for (t,) in world.engine.query_rows(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'temp'")]
    assert [t for t in temp if t.startswith("_remedy_") or t in schema.TABLES] == []


def test_a_remedy_starting_after_the_activity_recovers_no_one(world):
    df = world.lab.remedies(C, at="2026-03-07", settings=DAILY, since="2026-03-04")
    assert gained(df)["rule_reexport"] == 0 and gained(df)["switch_eit"] == 0


def test_reconnect_after_a_pause_re_sends_the_fixed_identifier(data):
    """C1 is sent unmatched on Mar 1; its profile gets $mparticle_user_id on Mar 3, during a pause
    (Mar 2 - Mar 4). Resuming sends a diff (C1 not re-sent); a reconnect is a full sync."""
    data.mpa(101, customer_id="C1").mpa(105)
    data.profile("C1", history=True)
    data.profile("C1", mparticle_user_id="101", as_of="2026-03-03")
    data.snapshot(C, "2026-03-01", ["C1", "105"])
    paused = {**DAILY, "pauses": [{"start": "2026-03-02", "end": "2026-03-04"}]}
    df = data.lab.remedies(C, at="2026-03-06", settings=paused)
    row = df.set_index("key").loc["reconnect"]
    assert (row.audience_before, row.audience_after, row.gained) == (1, 2, 1)
    assert "ends at 2026-03-04T00:00:00Z with a reconnect" in row.note
    assert row.applies


def test_reconnect_ends_a_pause_still_running(data):
    """Paused from Mar 2 on: b and c (entered Mar 3) never reach mParticle; reconnecting at the
    last run (Mar 5) sends them."""
    for m in (1, 2, 3):
        data.mpa(m)
    data.snapshot(C, "2026-03-01", ["1"])
    data.snapshot(C, "2026-03-03", ["1", "2", "3"])
    paused = {**DAILY, "pauses": [{"start": "2026-03-02", "end": "2026-03-20"}]}
    row = data.lab.remedies(C, at="2026-03-05", settings=paused).set_index("key").loc["reconnect"]
    assert (row.audience_before, row.audience_after, row.gained) == (1, 3, 2)
    # the re-export would land on the last run, which fails: none is sent, and the notes say so
    df = data.lab.remedies(C, at="2026-03-05", settings=paused).set_index("key")
    assert df.loc["reexport", "gained"] == 0 and df.loc["reexport", "recovered"] == 0
    assert not df.loc["reexport", "applies"] and df.loc["rule_reexport", "applies"]  # the Rule still writes
    assert df.loc["reexport", "note"] == ("no re-export: the last run (2026-03-05T00:00:00Z) fails, the export being "
                                          "paused until after the as-of time")
    assert "re-sends every member" not in df.loc["rule_reexport", "note"]
    # and no re-export time is announced (the CLI's header named one)
    assert df.attrs["reexport_at"] is None
    assert data.lab.remedies(C, at="2026-03-05", settings=DAILY).attrs["reexport_at"] == \
        pd.Timestamp("2026-03-05T00:00:00Z").to_pydatetime()
    already = {**DAILY, "pauses": [{"start": "2026-03-02", "end": "2026-03-20", "ends_with": "reconnect"}]}
    row = data.lab.remedies(C, at="2026-03-05", settings=already).set_index("key").loc["reconnect"]
    assert row.gained == 0 and "already ends with a reconnect" in row.note and not row.applies


def test_the_switch_with_webhooks(data):
    """Membership replayed from webhooks: the new profile follows the old one's messages from its
    creation (Mar 3): it enters with the Mar 4 add and leaves with the Mar 6 remove."""
    data.mpa(101, customer_id="C1")
    data.event("C1", "2026-03-03")
    data.webhook(C, "members", "2026-03-01", ["C1"])
    data.webhook(C, "add_members", "2026-03-04", ["C1"])
    row = data.lab.remedies(C, at="2026-03-05", settings=DAILY, since="2026-03-02").set_index("key").loc["switch_eit"]
    assert (row.audience_before, row.gained) == (0, 1)
    assert "1 split profile at" in row.note  # one, in the singular


def test_the_cli_prints_every_remedy(world, tmp_path):
    from click.testing import CliRunner

    from cohortlab.cli import main

    db = tmp_path / "w.duckdb"
    world.engine.execute(f"ATTACH '{db}' AS f")
    world.engine.execute("COPY FROM DATABASE memory TO f")
    world.engine.execute("DETACH f")
    settings = tmp_path / "s.yaml"
    settings.write_text("cadence: 1d\nevent_identity_cutoff: null\n")
    out = CliRunner().invoke(main, ["remedies", "--db", str(db), "--cohort", C, "--at", "2026-03-07",
                                    "--since", "2026-03-02", "--settings", str(settings)])
    assert out.exit_code == 0, out.output
    lines = {ln.split()[0]: ln.split()[1:3] for ln in out.output.splitlines()
             if ln.split() and ln.split()[0] in ("rule", "rule_reexport", "switch_eit", "reconnect")}
    assert lines == {"rule": ["2", "1"], "rule_reexport": ["4", "3"], "switch_eit": ["3", "2"], "reconnect": ["1", "0"]}
    assert "audience as simulated: 1" in out.output
    bad = CliRunner().invoke(main, ["remedies", "--db", str(db), "--cohort", C, "--since", "yesterday-ish"])
    assert bad.exit_code == 1 and "--since" in bad.output and bad.output.count("\n") == 1
    # a start after the as-of time (a typo in the year) valued every remedy at 0 without a word
    late = CliRunner().invoke(main, ["remedies", "--db", str(db), "--cohort", C, "--at", "2026-03-07",
                                     "--since", "2027-03-02", "--settings", str(settings)])
    assert late.exit_code == 1 and late.output == (
        "error: since 2027-03-02T00:00:00Z is after the as-of time 2026-03-07T00:00:00Z: a remedy started then "
        "changes nothing by that time; give an earlier --since or a later --at\n")


def test_the_rule_write_stays_on_later_profile_versions_and_is_not_retroactive(data):
    """C1's profile is known from the start and again from an export of Mar 6 (without the
    property: the Rule's write of Mar 3 must still be there). Sent on Mar 1, before the write:
    without a re-export it stays unmatched; the re-export on Mar 7 reads the Mar 6 version."""
    data.mpa(101, customer_id="C1")
    data.profile("C1", history=True)
    data.profile("C1", as_of="2026-03-06")
    data.event("C1", "2026-03-03")
    data.snapshot(C, "2026-03-01", ["C1"])
    df = data.lab.remedies(C, at="2026-03-07", settings=DAILY, since="2026-03-02")
    assert gained(df)["rule"] == 0 and gained(df)["rule_reexport"] == 1
    assert data.engine.count("mp_profile_history") == 2  # the stored history is untouched


def test_a_member_recoverable_through_the_mpid_itself(data):
    """J's $mparticle_user_id is '"106"' (quotes: malformed), K's is a float spelling of 107's
    MPID: recoverable through the MPID itself, so the Rule writes 106 and 107."""
    big = 7340993254993012745
    data.mpa(106).mpa(big)
    data.profile("J", mparticle_user_id='"106"')
    data.profile("K", mparticle_user_id=repr(float(big)))  # 7.340993254993013e+18
    data.event("J", "2026-03-03").event("K", "2026-03-03")
    data.snapshot(C, "2026-03-01", ["J", "K"])
    base = data.lab.resolution(C, at="2026-03-07", settings=DAILY).set_index("distinct_id")
    assert base.recoverable_via.tolist() == ["mparticle_id", "mparticle_id"]
    df = data.lab.remedies(C, at="2026-03-07", settings=DAILY, since="2026-03-02")
    assert gained(df)["rule"] == 0 and gained(df)["rule_reexport"] == 2


def test_a_reexport_at_the_last_run_keeps_a_profile_set_false_before_it_false(data):
    """docs/rules.md#re-export: a re-export at the last run writes true on the members' profiles and
    leaves every other profile as the runs before left it. Cadence 1 h: B leaves at 01:00 (the
    01:00 run writes 202 false); a re-export at 02:00, the last run, re-sends A alone: 201 true,
    202 still false, audience 1. The re-export row, derived from the baseline
    (last_run_reexport.py), counts the same as a simulation with reexport_at."""
    hourly = {"cadence": "1h"}
    data.mpa(201).mpa(202)
    data.profile("A", mparticle_user_id="201").profile("B", mparticle_user_id="202")
    data.snapshot(C, "2026-03-01T00:00", ["A", "B"])
    data.snapshot(C, "2026-03-01T01:00", ["A"])
    at = "2026-03-01T02:00"
    base = data.lab.simulate(C, at=at, settings=hourly)
    assert list(base.timeline.kind) == ["first", "diff", "diff"] and base.audience == 1
    reexported = data.lab.simulate(C, at=at, settings={**hourly, "reexport_at": [at]})
    assert list(reexported.timeline.kind) == ["first", "diff", "reexport"]
    assert dict(zip(reexported.attribute_state.mpid, reexported.attribute_state.value)) == {201: True, 202: False}
    row = data.lab.remedies(C, at=at, settings=hourly).set_index("key").loc["reexport"]
    assert (row.audience_before, row.audience_after, row.gained) == (1, 1, 0)
    full = value_remedies(data.engine, C, at, hourly, _full=True).set_index("key")
    assert (full.loc["reexport", "audience_after"], full.loc["reexport", "gained"]) == (1, 0)


def test_the_switch_when_the_settings_switch_already(world):
    """The settings' EIT is mParticle ID already from before ``since`` to ``at``: the switch has
    nothing to act on (it was valued as if the events were keyed otherwise, with a note that never
    named the configured switch). A configured switch after ``since`` is named in the note: the
    remedy is that switch made earlier."""
    already = {**DAILY, "eit_timeline": [{"since": None, "eit": "customer_id"},
                                         {"since": "2026-02-01", "eit": "mparticle_id"}]}
    row = world.lab.remedies(C, at="2026-03-07", settings=already, since="2026-03-02").set_index("key").loc["switch_eit"]
    assert (row.gained, row.applies) == (0, False)
    assert row.note == "the settings' External Identity Type is mParticle ID already, from 2026-02-01T00:00:00Z: nothing to switch"
    later = {**DAILY, "eit_timeline": [{"since": None, "eit": "customer_id"},
                                       {"since": "2026-03-06", "eit": "mparticle_id"}]}
    row = world.lab.remedies(C, at="2026-03-07", settings=later, since="2026-03-02").set_index("key").loc["switch_eit"]
    assert row.applies
    assert row.note.endswith("; the settings switch on 2026-03-06T00:00:00Z, this from 2026-03-02T00:00:00Z")
