"""Identifiers at the time they are sent (docs/rules.md): tiny hand-built worlds with a profile
history, the event rule at each send, re-export and reconnect, each expected value written out."""

import pandas as pd
import pytest

C = "Power Users"
DAILY = {"cadence": "1d"}


def wf(result):
    return dict(zip(result.waterfall.step, result.waterfall["count"]))


def by_member(result, *cols):
    df = result.resolution.set_index("distinct_id")
    return {d: tuple(None if pd.isna(v) else v for v in row) for d, row in df[list(cols)].iterrows()}


@pytest.fixture
def fixed_later(data):
    """u1 is a member from Mar 1 and its $mparticle_user_id is set on Mar 5 (a fix); u2 enters on
    Mar 6, after the fix. Daily runs from Mar 1 to Mar 7."""
    data.mpa(101).mpa(102)
    data.profile("u1", history=True)  # first version: no property (known from the beginning)
    data.profile("u1", mparticle_user_id="101", as_of="2026-03-05")
    data.profile("u2", history=True)
    data.profile("u2", mparticle_user_id="102", as_of="2026-03-05")
    data.snapshot(C, "2026-03-01", ["u1"])
    data.snapshot(C, "2026-03-06", ["u1", "u2"])
    return data


def test_a_fix_reaches_mparticle_only_for_members_sent_after_it(fixed_later):
    r = fixed_later.lab.simulate(C, at="2026-03-07", settings=DAILY)
    # u1 was sent on Mar 1 with its distinct_id (no property then) and is not sent again;
    # u2 is sent when it enters on Mar 6, with the fixed property
    assert by_member(r, "identifier_source", "identifier", "status", "gap_reason", "resolved_at", "sent_at") == {
        "u1": ("distinct_id", "u1", "unmatched", "distinct_id_not_mpid",
               pd.Timestamp("2026-03-01"), pd.Timestamp("2026-03-01")),
        "u2": ("mparticle_user_id", "102", "matched", None, pd.Timestamp("2026-03-06"), pd.Timestamp("2026-03-06")),
    }
    assert wf(r)["audience"] == 1
    assert r.timeline.true_count.tolist() == [0, 0, 0, 0, 0, 1, 1]


def test_as_of_resolution_makes_the_fix_retroactive(fixed_later):
    r = fixed_later.lab.simulate(C, at="2026-03-07", settings={**DAILY, "resolution_time": "as_of"})
    assert by_member(r, "identifier", "status", "sent_at") == {
        "u1": ("101", "matched", pd.Timestamp("2026-03-01")),
        "u2": ("102", "matched", pd.Timestamp("2026-03-06")),
    }
    assert r.timeline.true_count.tolist() == [1, 1, 1, 1, 1, 2, 2]  # u1 true from Mar 1


def test_a_re_export_after_the_fix_re_sends_every_member(fixed_later):
    r = fixed_later.lab.simulate(C, at="2026-03-07", settings={**DAILY, "reexport_at": ["2026-03-05T12:00:00Z"]})
    assert r.timeline.kind.tolist() == ["first", "diff", "diff", "diff", "diff", "reexport", "diff"]
    row = r.timeline.set_index("run_at").loc[pd.Timestamp("2026-03-06")]
    assert (row.adds, row.removes, row.true_count) == (2, 0, 2)  # a full sync: both sent, both true
    assert by_member(r, "status", "sent_at") == {
        "u1": ("matched", pd.Timestamp("2026-03-06")), "u2": ("matched", pd.Timestamp("2026-03-06"))}
    assert wf(r)["audience"] == 2


def test_the_re_export_remedy_is_valued_in_users(fixed_later):
    v = fixed_later.lab.reexport_value(C, when="2026-03-05T12:00:00Z", at="2026-03-07", settings=DAILY)
    assert (v["audience"], v["audience_after_reexport"], v["gained"]) == (1, 2, 1)
    before_fix = fixed_later.lab.reexport_value(C, when="2026-03-03", at="2026-03-07", settings=DAILY)
    assert before_fix["gained"] == 0  # re-sent before the fix: still the old identifier


def test_a_re_export_by_default_lands_on_the_last_run_as_the_remedies_row_says(fixed_later):
    """Between two runs, a re-export "now" takes effect at the next run, after `at`: by default it
    is valued at the last run at or before `at`, as the `reexport` row of remedies is (it was 0
    where that row said 1)."""
    at = "2026-03-07T12:00:00Z"  # daily runs: the last at 2026-03-07 00:00
    v = fixed_later.lab.reexport_value(C, at=at, settings=DAILY)
    assert v["reexport_at"] == pd.Timestamp("2026-03-07T00:00:00Z").to_pydatetime()
    assert (v["audience"], v["audience_after_reexport"], v["gained"]) == (1, 2, 1)
    row = fixed_later.lab.remedies(C, at=at, settings=DAILY).set_index("key").loc["reexport"]
    assert row["gained"] == v["gained"]


def test_a_one_time_export_re_exported_later(fixed_later):
    s = {**DAILY, "sync_type": "one_time", "reexport_at": ["2026-03-06"]}
    r = fixed_later.lab.simulate(C, at="2026-03-07", settings=s)
    assert r.timeline.kind.tolist() == ["one_time"] + ["observation"] * 4 + ["reexport", "observation"]
    assert r.timeline.true_count.tolist() == [0, 0, 0, 0, 0, 2, 2]


def test_the_event_rule_is_evaluated_at_each_send(data):
    """u3's profile never has the property; from Mar 3 its events carry it. It is sent on Mar 1
    (fallback: unmatched); a full refresh after a pause longer than snapshot_ttl re-sends it."""
    data.mpa(103)
    data.profile("u3")
    data.event("u3", "2026-03-03", mparticle_user_id="103")
    data.snapshot(C, "2026-03-01", ["u3"])
    r = data.lab.simulate(C, at="2026-03-07", settings=DAILY)
    assert by_member(r, "identifier_source", "status") == {"u3": ("distinct_id", "unmatched")}
    paused = {**DAILY, "snapshot_ttl": "2d", "pauses": [{"start": "2026-03-02", "end": "2026-03-05"}]}
    r = data.lab.simulate(C, at="2026-03-07", settings=paused)
    assert r.timeline.kind.tolist() == ["first", "failed", "failed", "failed", "full_refresh", "diff", "diff"]
    assert by_member(r, "identifier_source", "identifier", "status", "sent_at") == {
        "u3": ("event_property", "103", "matched", pd.Timestamp("2026-03-05"))}
    assert r.timeline.true_count.tolist() == [0, 0, 0, 0, 1, 1, 1]


def test_a_member_sent_unmatched_stays_unmatched_until_sent_again(data):
    """v's property breaks on Mar 3 (set to junk): v was sent on Mar 1 with the good value and
    stays true; w enters on Mar 4 and is sent with the junk value."""
    data.mpa(7)
    data.profile("v", mparticle_user_id="7", history=True)
    data.profile("v", mparticle_user_id="undefined", as_of="2026-03-03")
    data.profile("w", mparticle_user_id="7", history=True)
    data.profile("w", mparticle_user_id="undefined", as_of="2026-03-03")
    data.snapshot(C, "2026-03-01", ["v"])
    data.snapshot(C, "2026-03-04", ["v", "w"])
    r = data.lab.simulate(C, at="2026-03-05", settings=DAILY)
    assert by_member(r, "identifier", "status", "gap_reason") == {
        "v": ("7", "matched", None), "w": ("undefined", "unmatched", "malformed_mparticle_user_id")}
    assert wf(r)["audience"] == 1


def _engage_loaded_at(data, tmp_path, name, rows, loaded_at=None, **as_of):
    """An Engage export of ``rows`` ({distinct_id: $mparticle_user_id, None: no such property}),
    loaded as the loader does; ``loaded_at``: the time its load is recorded at (a load without an
    as-of time counts from it)."""
    import json

    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps({"$distinct_id": d, "$properties": {} if v is None else
                                        {"$mparticle_user_id": v}}) + "\n" for d, v in rows.items()))
    data.lab.load("mixpanel-profiles", [str(path)], **as_of)
    if loaded_at is not None:
        data.lab.engine.execute(f"UPDATE loads SET loaded_at = TIMESTAMP '{loaded_at}' "
                                "WHERE load_id = (SELECT max(load_id) FROM loads)")


def _engage(data, tmp_path, name, **as_of):
    """One Engage export of p ($mparticle_user_id 5) and q (none), loaded as the loader does."""
    _engage_loaded_at(data, tmp_path, name, {"p": "5", "q": None}, **as_of)


def test_before_a_profile_version_with_its_own_time_there_is_no_profile(data, tmp_path):
    """docs/rules.md#resolution-time: at a send time, the profile is the latest version at or before it. The only Engage
    export is as of Mar 10; the send on Mar 1 knows no profile, so p is sent with its distinct_id
    (cohortlab let that later version stand in until this reading followed the letter). At the
    re-export on Mar 11 the version is known: p is sent again with its MPID."""
    data.mpa(5)
    _engage(data, tmp_path, "mar10", as_of="2026-03-10T00:00:00Z")
    data.snapshot(C, "2026-03-01", ["p", "q"])
    r = data.lab.simulate(C, at="2026-03-12", settings=DAILY)
    assert by_member(r, "identifier_source", "identifier", "status", "gap_reason", "resolved_at") == {
        "p": ("distinct_id", "p", "unmatched", "distinct_id_not_mpid", pd.Timestamp("2026-03-01")),
        "q": ("distinct_id", "q", "unmatched", "distinct_id_not_mpid", pd.Timestamp("2026-03-01"))}
    assert wf(r)["audience"] == 0
    again = data.lab.simulate(C, at="2026-03-12", settings={**DAILY, "reexport_at": ["2026-03-11T00:00:00Z"]})
    assert by_member(again, "identifier", "status", "resolved_at") == {
        "p": ("5", "matched", pd.Timestamp("2026-03-11")), "q": ("q", "unmatched", pd.Timestamp("2026-03-11"))}
    assert wf(again)["audience"] == 1
    # the as-of reading resolves once at the as-of time: on Mar 5 nothing is known either, on Mar 12 it is
    early = data.lab.simulate(C, at="2026-03-05", settings={**DAILY, "resolution_time": "as_of"})
    late = data.lab.simulate(C, at="2026-03-12", settings={**DAILY, "resolution_time": "as_of"})
    assert by_member(early, "status")["p"] == ("unmatched",) and by_member(late, "status")["p"] == ("matched",)
    step = next(s for s in data.lab.explain(C, "p", at="2026-03-05").steps if s.kind == "mixpanel_profile")
    # read when its identifier was decided (its send on Mar 1); nothing else to say: none at Mar 5 either
    assert step.text == ("p: no Mixpanel profile at 2026-03-01 00:00:00: its first known version is of 2026-03-10 "
                         "00:00:00, a profile export with its own as-of time, which is not known before it")
    # explain read the profile at the as-of time: the profile of Mar 10 with MPID 5, beside a
    # resolution that sent p's distinct_id on Mar 1 (a red team): now the one read at the send, and the later one
    step = next(s for s in data.lab.explain(C, "p", at="2026-03-12", settings=DAILY).steps
                if s.kind == "mixpanel_profile")
    assert step.text.startswith("p: no Mixpanel profile at 2026-03-01 00:00:00: its first known version is of ")
    assert step.text.endswith("not known before it; 2026-03-01 00:00:00 is when its identifier was decided; at the "
                              "as-of time 2026-03-12 00:00:00 its profile has $mparticle_user_id = '5', which reaches "
                              "mParticle only when the member is sent again")
    assert step.data["at_as_of"] == {"exists": True, "mparticle_user_id": "5"}


def test_a_profile_export_loaded_without_an_as_of_time_stands_in_before_its_load(data, tmp_path):
    """A load without an as-of time counts from its load time (today), which says nothing of when
    the profile was so: as a distinct_id's first version it stands in for the sends before it, so
    an Engage export loaded today without -o as_of serves the syncs of the past weeks."""
    data.mpa(5)
    _engage(data, tmp_path, "today")
    data.snapshot(C, "2026-03-01", ["p", "q"])
    r = data.lab.simulate(C, at="2026-03-02", settings=DAILY)
    assert by_member(r, "identifier", "status", "resolved_at") == {
        "p": ("5", "matched", pd.Timestamp("2026-03-01")), "q": ("q", "unmatched", pd.Timestamp("2026-03-01"))}
    step = next(s for s in data.lab.explain(C, "p", at="2026-03-02").steps if s.kind == "mixpanel_profile")
    assert "loaded without an as-of time" in step.text and "so the first stands in" in step.text
    # a later export with its own time, before the send: that one is read (the latest at or before it)
    (tmp_path / "feb20.jsonl").write_text('{"$distinct_id": "p", "$properties": {"$mparticle_user_id": "77"}}\n')
    data.lab.load("mixpanel-profiles", [str(tmp_path / "feb20.jsonl")], as_of="2026-02-20T00:00:00Z")
    r = data.lab.simulate(C, at="2026-03-02", settings=DAILY)
    assert by_member(r, "identifier", "gap_reason")["p"] == ("77", "mpid_not_found")


# --------------------------------------------------------------------------- a member's stints
HOURLY = {"cadence": "1h"}


@pytest.fixture
def fixed_at_2(data):
    """c1's $mparticle_user_id is junk until 02:00, then fixed to 101 (MPID 101 exists)."""
    data.mpa(101)
    data.profile("c1", mparticle_user_id="undefined", as_of="2026-03-01T00:00", history=True)
    data.profile("c1", mparticle_user_id="101", as_of="2026-03-01T02:00")
    return data


def test_a_member_re_entering_during_a_pause_is_pending_with_the_identifier_of_its_new_stint(fixed_at_2):
    """c1 was sent (junk) at 00:00 and removed at 01:00; it re-enters at 03:00, during a pause
    until 06:00. Its new stint is decided provisionally at 03:00 (the fixed 101), so it is
    pending (not_yet_true), not a malformed gap inherited from its first stint; once the pause
    ends it is sent with 101."""
    data = fixed_at_2
    data.snapshot(C, "2026-03-01T00:00", ["c1"])
    data.snapshot(C, "2026-03-01T01:00", [])
    data.snapshot(C, "2026-03-01T03:00", ["c1"])
    s = {**HOURLY, "pauses": [{"start": "2026-03-01T03:00", "end": "2026-03-01T06:00"}]}
    r = data.lab.simulate(C, at="2026-03-01T05:00", settings=s)
    assert by_member(r, "identifier", "status", "gap_reason", "resolved_at", "sent_at") == {
        "c1": ("101", "matched", None, pd.Timestamp("2026-03-01T05:00"), None)}  # not sent: resolved at `at`
    assert (wf(r)["should_be_true"], wf(r)["not_yet_true"], wf(r)["audience"]) == (1, 1, 0)
    t = r.timeline.set_index("run_at")
    assert t.loc["2026-03-01T03:00":, "should_be_true"].tolist() == [1, 1, 1]  # the provisional decision
    assert t.loc["2026-03-01T03:00":, "not_yet_true"].tolist() == [1, 1, 1]
    r = data.lab.simulate(C, at="2026-03-01T06:00", settings=s)
    assert by_member(r, "identifier", "status", "sent_at") == {"c1": ("101", "matched", pd.Timestamp("2026-03-01T06:00"))}
    assert wf(r)["audience"] == 1


@pytest.mark.parametrize("sync", ["paused", "one_time"])
def test_a_pending_member_s_timeline_rows_follow_its_identifier_until_it_is_sent(fixed_at_2, sync):
    """c1 enters at 01:00, in a pause until 06:00 (or after a one-time export at 00:00): not sent.
    Its $mparticle_user_id is fixed at 02:00. Every timeline row counts it in the should-be-true
    set with the identifier it would be sent with at that run, as the waterfall at that run's time
    does: unmatched (junk) at 01:00, 101 from 02:00. Decided once at its first run, the rows from
    02:00 on said should_be_true 0 where the waterfall at the same time said 1 (an independent
    check of the rules found it)."""
    data = fixed_at_2
    data.snapshot(C, "2026-03-01T00:00", [])
    data.snapshot(C, "2026-03-01T01:00", ["c1"])
    s = ({**HOURLY, "pauses": [{"start": "2026-03-01T01:00", "end": "2026-03-01T06:00"}]} if sync == "paused"
         else {**HOURLY, "sync_type": "one_time"})
    r = data.lab.simulate(C, at="2026-03-01T05:00", settings=s)
    t = r.timeline.set_index("run_at")
    assert t.loc["2026-03-01T01:00":, "should_be_true"].tolist() == [0, 1, 1, 1, 1]
    assert t.loc["2026-03-01T01:00":, "not_yet_true"].tolist() == [0, 1, 1, 1, 1]
    for at, should in (("2026-03-01T01:00", 0), ("2026-03-01T04:00", 1)):  # the waterfall at each run's time
        w = wf(data.lab.simulate(C, at=at, settings=s))
        assert (w["should_be_true"], w["not_yet_true"]) == (should, should), at


@pytest.mark.parametrize("late", [False, True])
def test_a_pending_member_s_event_counts_from_the_first_run_at_or_after_it_to_the_microsecond(data, late):
    """c1 enters after a one-time export and is never sent; an event carrying its MPID comes at
    02:00 exactly (the run at 02:00 counts it) or 1 µs later (the run at 03:00 does)."""
    data.mpa(101)
    data.profile("c1")
    data.event("c1", "2026-03-01T02:00:00.000001" if late else "2026-03-01T02:00", mparticle_user_id="101")
    data.snapshot(C, "2026-03-01T00:00", [])
    data.snapshot(C, "2026-03-01T01:00", ["c1"])
    r = data.lab.simulate(C, at="2026-03-01T04:00", settings={
        **HOURLY, "sync_type": "one_time", "event_identity_cutoff": "2026-03-01T00:00"})
    t = r.timeline.set_index("run_at")
    assert t.loc["2026-03-01T01:00":, "should_be_true"].tolist() == ([0, 0, 1, 1] if late else [0, 1, 1, 1])


def test_the_run_of_a_change_in_sql_is_the_grid_s_first_run_at_or_after_it(lab):
    """The SQL that maps a change's time to its run (no join of each change to every later run)
    gives the Python grid's run, at, around and between run times, before the first run and past
    the last, to the microsecond, with a first run off the whole second."""
    from datetime import datetime, timedelta

    from cohortlab.settings import SyncSettings
    from cohortlab.simulation.sync import RunGrid

    us = timedelta(microseconds=1)
    t0 = datetime(2026, 3, 1, 0, 0, 0, 250_000)
    grid = RunGrid(t0, t0 + timedelta(hours=2), SyncSettings(cadence="15m"))
    times = [t0 - timedelta(days=400), t0 - us, t0, t0 + us, t0 + timedelta(minutes=15) - us,
             t0 + timedelta(minutes=15), t0 + timedelta(minutes=15) + us, t0 + timedelta(minutes=29),
             t0 + timedelta(hours=2), t0 + timedelta(hours=2) + us, t0 + timedelta(days=30)]
    got = [lab.engine.query_rows(f"SELECT {grid.k_at_or_after_sql('t')} FROM (SELECT CAST(? AS TIMESTAMP) AS t)", [t])[0][0] for t in times]
    assert got == [grid.k_at_or_after(t) for t in times] == [0, 0, 0, 1, 1, 1, 2, 2, 8, 9, 2880]


def test_a_stint_no_run_has_seen_is_resolved_at_the_as_of_time(fixed_at_2):
    """c1's first stint (00:00) was never sent (paused until 02:00) and left at 01:30; its
    current stint starts at 03:30, after the last run (03:00). Nothing of the first stint
    carries over: c1 is resolved at the as-of time, as if the first stint had not been."""
    data = fixed_at_2
    data.snapshot(C, "2026-03-01T00:00", ["c1"])
    data.snapshot(C, "2026-03-01T01:30", [])
    data.snapshot(C, "2026-03-01T03:30", ["c1"])
    r = data.lab.simulate(C, settings={**HOURLY, "pauses": [{"start": "2026-03-01T00:00", "end": "2026-03-01T02:00"}]})
    assert by_member(r, "identifier", "status", "resolved_at", "sent_at") == {
        "c1": ("101", "matched", pd.Timestamp("2026-03-01T03:30"), None)}
    assert (wf(r)["should_be_true"], wf(r)["not_yet_true"]) == (1, 1)


def test_a_remove_writes_to_what_was_sent_not_to_a_provisional_decision(data):
    """d was sent as 101 at 00:00; its profile moves to 102 at 01:30. It leaves at 01:00 (not yet
    sent: paused), is back at 02:00 (seen by the failed run at 02:00: provisionally 102) and
    leaves again at 03:00. When the pause ends at 04:00 the diff removes it: false is written on
    101, the profile mParticle holds, not on 102, which was never written."""
    data.mpa(101).mpa(102)
    data.profile("d", mparticle_user_id="101", as_of="2026-03-01T00:00", history=True)
    data.profile("d", mparticle_user_id="102", as_of="2026-03-01T01:30")
    for t, members in (("00:00", ["d", "e"]), ("01:00", ["e"]), ("02:00", ["d", "e"]), ("03:00", ["e"])):
        data.snapshot(C, f"2026-03-01T{t}", members)
    s = {**HOURLY, "pauses": [{"start": "2026-03-01T01:00", "end": "2026-03-01T04:00"}]}
    r = data.lab.simulate(C, at="2026-03-01T04:00", settings=s)
    assert r.timeline.set_index("run_at").loc[pd.Timestamp("2026-03-01T04:00"), "removes"] == 1
    assert {int(x.mpid): bool(x.value) for x in r.attribute_state.itertuples() if not pd.isna(x.mpid)} == {101: False}


# --------------------------------------------------------------------------- pauses
@pytest.fixture
def paused(data):
    for d, mpid in {"a": 1, "b": 2}.items():
        data.mpa(mpid)
        data.profile(d, mparticle_user_id=str(mpid))
    data.snapshot(C, "2026-03-01T00:00", ["a", "b"])
    data.snapshot(C, "2026-03-01T12:00", ["b"])  # a leaves during the pause
    return data


@pytest.mark.parametrize("ends_with, kind, adds, removes, state", [
    ("resume", "diff", 0, 1, {1: False, 2: True}),  # the diff removes a
    ("reconnect", "reconnect", 1, 0, {1: True, 2: True}),  # a new export sends b; a stays true (stale)
])
def test_a_pause_ends_by_itself_or_with_a_reconnect(paused, ends_with, kind, adds, removes, state):
    s = {"cadence": "6h", "pauses": [{"start": "2026-03-01T05:00", "end": "2026-03-02T05:00", "ends_with": ends_with}]}
    r = paused.lab.simulate(C, at="2026-03-02T12:00", settings=s)
    row = r.timeline.set_index("run_at").loc[pd.Timestamp("2026-03-02T06:00")]
    assert (row.kind, row.adds, row.removes) == (kind, adds, removes)
    assert {int(x.mpid): bool(x.value) for x in r.attribute_state.itertuples()} == state
    assert wf(r)["stale_true"] == (1 if ends_with == "reconnect" else 0)


@pytest.mark.parametrize("extra", [{}, {"ends_with": "reconnect"}, {"reexport": True}])
def test_after_a_gap_longer_than_the_ttl_the_run_is_a_full_refresh_whatever_lands_on_it(data, extra):
    """docs/rules.md#pauses-and-refresh: the first successful run after a gap longer than snapshot_ttl is a full refresh,
    stale values cleared. A reconnect or a re-export landing on it changes nothing: 102 left the
    cohort during the pause and is cleared either way, and no remedy is credited with it."""
    data.mpa(101).mpa(102)
    data.profile("101").profile("102")
    data.snapshot(C, "2026-03-01T00:00", ["101", "102"])
    data.snapshot(C, "2026-03-01T02:00", ["101"])
    pause = {"start": "2026-03-01T01:00", "end": "2026-03-01T05:00", **{k: v for k, v in extra.items() if k != "reexport"}}
    s = {"cadence": "1h", "snapshot_ttl": "2h", "pauses": [pause],
         **({"reexport_at": ["2026-03-01T05:00"]} if extra.get("reexport") else {})}
    r = data.lab.simulate(C, at="2026-03-01T05:00", settings=s)
    assert r.timeline.kind.tolist() == ["first", "failed", "failed", "failed", "failed", "full_refresh"]
    assert {int(x.mpid): bool(x.value) for x in r.attribute_state.itertuples()} == {101: True, 102: False}
    assert (wf(r)["stale_true"], wf(r)["audience"]) == (0, 1)
    if not extra:
        v = data.lab.reexport_value(C, when="2026-03-01T05:00", at="2026-03-01T05:00", settings=s)
        assert (v["audience"], v["audience_after_reexport"], v["gained"]) == (1, 1, 0)


# --------------------------------------------------------------------------- profile history storage
def test_engage_loads_are_kept_as_a_history_with_their_as_of(lab, tmp_path):
    """Two Engage loads of the same profile: mp_profiles keeps the latest, mp_profile_history
    both, and a send before the second load's as-of time uses the first."""
    first, second = tmp_path / "p1.jsonl", tmp_path / "p2.jsonl"
    first.write_text('{"$distinct_id": "u", "$properties": {"$mparticle_user_id": "undefined"}}\n')
    second.write_text('{"$distinct_id": "u", "$properties": {"$mparticle_user_id": 42}}\n')
    lab.load("mixpanel-profiles", first, as_of="2026-03-01T00:00:00Z")
    lab.load("mixpanel-profiles", second, as_of="2026-03-03T00:00:00Z")
    assert lab.sql("SELECT mparticle_user_id FROM mp_profiles").mparticle_user_id.tolist() == ["42"]
    hist = lab.sql("SELECT mparticle_user_id, mparticle_user_id_type, as_of FROM mp_profile_history ORDER BY as_of")
    assert hist.values.tolist() == [["undefined", "VARCHAR", pd.Timestamp("2026-03-01")],
                                    ["42", "UBIGINT", pd.Timestamp("2026-03-03")]]
    lab.engine.execute("INSERT INTO mpa_profiles (mpid) VALUES (42)")
    lab.engine.execute("INSERT INTO mp_cohort_snapshots (snapshot_id, cohort_name, as_of) VALUES (9001, 'K', '2026-03-02')")
    lab.engine.execute("INSERT INTO mp_cohort_members (snapshot_id, cohort_name, as_of, distinct_id) "
                       "VALUES (9001, 'K', '2026-03-02', 'u')")
    sent_early = lab.simulate("K", at="2026-03-04", settings=DAILY).resolution
    assert sent_early[["identifier", "status"]].values.tolist() == [["undefined", "unmatched"]]
    as_of = lab.simulate("K", at="2026-03-04", settings={**DAILY, "resolution_time": "as_of"}).resolution
    assert as_of[["identifier", "status"]].values.tolist() == [["42", "matched"]]


def test_the_strict_fallback_follows_the_eit_in_force_at_each_send(data):
    """EIT customer_id until Mar 5, mparticle_id after. "42" (an MPID as distinct_id) is sent on
    Mar 1, when the strict fallback is refused; "43" enters on Mar 6 and is matched."""
    data.mpa(42).mpa(43)
    data.profile("42").profile("43")
    data.snapshot(C, "2026-03-01", ["42"])
    data.snapshot(C, "2026-03-06", ["42", "43"])
    s = {**DAILY, "fallback": "strict",
         "eit_timeline": [{"since": None, "eit": "customer_id"}, {"since": "2026-03-05", "eit": "mparticle_id"}]}
    r = data.lab.simulate(C, at="2026-03-07", settings=s)
    assert by_member(r, "identifier_source", "status", "gap_reason") == {
        "42": ("none", "unmatched", "fallback_disabled"), "43": ("distinct_id", "matched", None)}
    r = data.lab.simulate(C, at="2026-03-07", settings={**s, "resolution_time": "as_of"})
    assert by_member(r, "status") == {"42": ("matched",), "43": ("matched",)}


@pytest.mark.parametrize("as_of", ["2026-03-10T00:00:00Z", None])
def test_simulate_says_when_members_were_sent_before_their_first_profile_version(tmp_path, as_of):
    """The literal reading turns a profile export taken after the sends (with its as-of time) into
    distinct_id fallbacks: `cohortlab simulate` says how many members it concerns and what to do.
    An export loaded without an as-of time stands in: no note."""
    from click.testing import CliRunner

    from cohortlab import Lab
    from cohortlab.cli import main

    from .conftest import Data

    db = tmp_path / "x.duckdb"
    with Lab(str(db)) as lab:
        data = Data(lab)
        data.mpa(5)
        _engage(data, tmp_path, "engage", **({"as_of": as_of} if as_of else {}))
        data.snapshot(C, "2026-03-01", ["p", "q"])
    res = CliRunner().invoke(main, ["simulate", "--db", str(db), "--cohort", C, "--at", "2026-03-12"])
    assert res.exit_code == 0, res.output
    notes = [line for line in res.output.splitlines() if "first Mixpanel profile version" in line]
    if as_of is None:
        assert notes == []
        return
    assert notes == ["note: 2 members were sent before their first Mixpanel profile version (the earliest as of "
                     "2026-03-10 00:00 UTC): no profile was known then, so no $mparticle_user_id from it "
                     "(docs/rules.md#resolution-time; load an earlier profile export with -o as_of, or use "
                     "resolution_time: as_of)"]
    (tmp_path / "s.yaml").write_text("resolution_time: as_of\n")
    res = CliRunner().invoke(main, ["simulate", "--db", str(db), "--cohort", C, "--at", "2026-03-12",
                                    "--settings", str(tmp_path / "s.yaml")])
    assert res.exit_code == 0 and "first Mixpanel profile version" not in res.output, res.output


@pytest.mark.parametrize("later", ["timed", "untimed"])
def test_two_first_versions_of_one_time_the_later_load_is_read_everywhere(data, tmp_path, later):
    """Of two versions of one time the later load is read. A red team found the remedies' first
    version picked by the earlier load (the rule remedy gained a member never sent again, and its
    full and subset paths disagreed) and simulate's note blind to such ties."""
    from cohortlab.simulation.remedies import value_remedies
    from cohortlab.simulation.resolution import sent_before_first_profile

    data.mpa(5, customer_id="p")
    untimed = lambda: _engage_loaded_at(data, tmp_path, "untimed", {"p": "5"}, loaded_at="2026-03-10 00:00:00")  # noqa: E731
    timed = lambda: _engage_loaded_at(data, tmp_path, "timed", {"p": "junk"}, as_of="2026-03-10T00:00:00Z")  # noqa: E731
    for load in ((untimed, timed) if later == "timed" else (timed, untimed)):
        load()
    data.snapshot(C, "2026-03-01", ["p"])
    data.event("p", "2026-03-03T10:00")
    r = data.lab.simulate(C, at="2026-03-05", settings=DAILY)
    read = later == "untimed"  # the untimed version, read: it stands in; the timed one: no profile on Mar 1
    assert by_member(r, "identifier", "status")["p"] == (("5", "matched") if read else ("p", "unmatched"))
    assert sent_before_first_profile(data.lab.engine, r.tables["resolution"].table_name)[0] == (0 if read else 1)
    for full in (False, True):
        rule = value_remedies(data.lab.engine, C, "2026-03-05", DAILY, since="2026-03-02", _full=full)
        rule = rule.set_index("key").loc["rule"]
        # the Rule writes p's MPID from Mar 3; p is not sent again, so the audience does not change
        assert (rule.audience_before, rule.audience_after, rule.gained) == ((1, 1, 0) if read else (0, 0, 0)), full


def test_the_note_counts_only_members_sent_without_their_profile(data, tmp_path):
    """q enters between two daily runs and is not sent by the as-of time: not counted (it was
    counted, resolved at the as-of time). u has an earlier version: not counted. v's only version
    has no time at all (known from the start): not counted."""
    from cohortlab.simulation.resolution import sent_before_first_profile

    data.mpa(5)
    _engage_loaded_at(data, tmp_path, "mar10", {"p": "5", "q": "5", "u": "5"}, as_of="2026-03-10T00:00:00Z")
    _engage_loaded_at(data, tmp_path, "feb", {"u": "5"}, as_of="2026-02-01T00:00:00Z")
    data.profile("v", mparticle_user_id="5", history=True)
    data.snapshot(C, "2026-03-01", ["p", "u", "v"])
    data.snapshot(C, "2026-03-01T06:00", ["p", "q", "u", "v"])
    r = data.lab.simulate(C, at="2026-03-01T12:00", settings=DAILY)
    assert by_member(r, "identifier", "sent_at") == {
        "p": ("p", pd.Timestamp("2026-03-01")), "q": ("q", None), "u": ("5", pd.Timestamp("2026-03-01")),
        "v": ("5", pd.Timestamp("2026-03-01"))}
    table = r.tables["resolution"].table_name
    assert sent_before_first_profile(data.lab.engine, table) == (1, pd.Timestamp("2026-03-10").to_pydatetime())
    assert sent_before_first_profile(data.lab.engine, table, sent_only=False)[0] == 2  # q too, resolved at the as-of time
