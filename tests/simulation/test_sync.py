"""docs/rules.md#sync-over-time: the sync played forward in time. Small hand-built cohorts; the expected attribute
values, timeline rows and waterfall counts are written out by hand."""

import pandas as pd
import pytest

from cohortlab.settings import SyncSettings
from cohortlab.simulation.simulate import PUBLISHED

C = "Power Users"


def timeline(result, *cols):
    cols = cols or ("kind", "members", "adds", "removes", "true_count", "not_yet_true", "stale_true")
    return [tuple(r) for r in result.timeline[list(cols)].itertuples(index=False)]


def state(result):
    """{mpid or 'orphan:<identifier>': value}"""
    out = {}
    for r in result.attribute_state.itertuples():
        key = f"orphan:{r.orphan_identifier}" if r.is_orphan else int(r.mpid)
        out[key] = bool(r.value)
    return out


def wf(result):
    return dict(zip(result.waterfall.step, result.waterfall["count"]))


def linked(data, pairs):
    """pairs: {distinct_id: mpid}: an mParticle profile and a Mixpanel profile carrying it."""
    for d, mpid in pairs.items():
        data.mpa(mpid)
        data.profile(d, mparticle_user_id=str(mpid))


# --------------------------------------------------------------------------- dynamic sync
def test_first_run_is_a_full_sync_then_diffs(data):
    linked(data, {"a": 1, "b": 2, "c": 3})
    data.snapshot(C, "2026-03-01T00:00", ["a", "b", "x"])  # x: no profile, not an MPID
    data.snapshot(C, "2026-03-01T00:20", ["b", "c", "x"])
    r = data.lab.simulate(C, at="2026-03-01T00:45")
    assert timeline(r) == [
        # kind, members, adds, removes, |T|, not_yet_true, stale_true
        ("first", 3, 3, 0, 2, 0, 0),  # 00:00 all members sent; a, b -> true
        ("diff", 3, 0, 0, 2, 0, 0),  # 00:15 nothing changed yet
        ("diff", 3, 1, 1, 2, 0, 0),  # 00:30 sees 00:20: remove a, add c
        ("diff", 3, 0, 0, 2, 0, 0),  # 00:45
    ]
    assert r.timeline.run_at.tolist() == list(pd.date_range("2026-03-01", periods=4, freq="15min"))
    assert state(r) == {1: False, 2: True, 3: True}  # false is written, never deleted
    assert wf(r) == {
        "members": 3, "unmatched:distinct_id_not_mpid": 1, "shared_mpid": 0, "should_be_true": 2,
        "not_yet_true": 0, "stale_true": 0, "orphans_true": 0, "audience": 2,
    }
    last = r.attribute_state.set_index("mpid").loc[1]
    assert last.last_write_at == pd.Timestamp("2026-03-01T00:30") and last.writes == 2


def test_a_change_is_pending_until_the_next_run(data):
    linked(data, {"a": 1, "b": 2})
    data.snapshot(C, "2026-03-01T00:00", ["a"])
    data.snapshot(C, "2026-03-01T00:20", ["a", "b"])
    # at 00:25 the last run (00:15) has not seen b yet
    r = data.lab.simulate(C, at="2026-03-01T00:25")
    assert wf(r)["should_be_true"] == 2 and wf(r)["not_yet_true"] == 1 and wf(r)["audience"] == 1
    assert state(r) == {1: True}


def test_cadence_option(data):
    linked(data, {"a": 1, "b": 2})
    data.snapshot(C, "2026-03-01T00:00", ["a"])
    data.snapshot(C, "2026-03-01T00:20", ["a", "b"])
    r = data.lab.simulate(C, at="2026-03-01T02:00", settings={"cadence": "1h"})
    assert r.timeline.run_at.tolist() == list(pd.date_range("2026-03-01", periods=3, freq="1h"))
    assert timeline(r, "adds", "true_count") == [(1, 1), (1, 2), (0, 2)]


def test_start_option_moves_t0(data):
    linked(data, {"a": 1})
    data.snapshot(C, "2026-03-01T00:00", ["a"])
    r = data.lab.simulate(C, at="2026-03-01T01:00", settings={"start": "2026-03-01T00:30:00Z"})
    assert r.t0 == pd.Timestamp("2026-03-01T00:30", tz="UTC")
    assert timeline(r, "run_at", "kind") == [
        (pd.Timestamp("2026-03-01T00:30"), "first"), (pd.Timestamp("2026-03-01T00:45"), "diff"),
        (pd.Timestamp("2026-03-01T01:00"), "diff"),
    ]
    # t0 before any snapshot: the first run sends an empty cohort, the next one the diff
    r = data.lab.simulate(C, at="2026-03-01T00:15", settings={"start": "2026-02-28T23:50:00Z"})
    # runs at 23:50 and 00:05
    assert timeline(r, "kind", "members", "adds", "true_count") == [("first", 0, 0, 0), ("diff", 1, 1, 1)]


# --------------------------------------------------------------------------- duplicates
@pytest.fixture
def duplicates(data):
    """Two Mixpanel profiles of one person (a, b) resolve to the same MPID 1; they take turns."""
    data.mpa(1)
    data.profile("a", mparticle_user_id="1")
    data.profile("b", mparticle_user_id="1")
    data.snapshot(C, "2026-03-01T00:00", ["a"])
    data.snapshot(C, "2026-03-01T00:15", ["b"])  # a leaves, b joins in the same run
    data.snapshot(C, "2026-03-01T00:30", ["a"])  # and back
    data.snapshot(C, "2026-03-01T00:45", ["a", "b"])  # both
    data.snapshot(C, "2026-03-01T01:00", ["b"])  # a leaves: its remove writes false on MPID 1
    return data


def test_duplicates_sharing_an_mpid_removes_then_adds(duplicates):
    r = duplicates.lab.simulate(C)
    assert timeline(r, "adds", "removes", "true_count", "not_yet_true") == [
        (1, 0, 1, 0), (1, 1, 1, 0), (1, 1, 1, 0), (1, 0, 1, 0), (0, 1, 0, 1),
    ]
    assert wf(r) == {
        "members": 1, "shared_mpid": 0, "should_be_true": 1, "not_yet_true": 1,
        "stale_true": 0, "orphans_true": 0, "audience": 0,
    }


def test_duplicates_sharing_an_mpid_adds_then_removes_flaps(duplicates):
    r = duplicates.lab.simulate(C, settings={"apply_order": "adds_then_removes"})
    # a run that both removes and adds the MPID ends false
    assert timeline(r, "true_count", "not_yet_true") == [(1, 0), (0, 1), (0, 1), (1, 0), (0, 1)]
    assert state(r) == {1: False}
    assert r.attribute_state.writes.tolist() == [5]


def test_shared_mpid_step_counts_members_minus_distinct_mpids(data):
    data.mpa(1)
    data.profile("a", mparticle_user_id="1")
    data.profile("b", mparticle_user_id="1")
    data.profile("1")  # distinct_id fallback to the same MPID
    data.snapshot(C, "2026-03-01", ["a", "b", "1"])
    assert wf(data.lab.simulate(C)) == {
        "members": 3, "shared_mpid": 2, "should_be_true": 1, "not_yet_true": 0,
        "stale_true": 0, "orphans_true": 0, "audience": 1,
    }


# --------------------------------------------------------------------------- pauses
@pytest.fixture
def paused(data):
    linked(data, {"a": 1, "b": 2, "c": 3})
    data.snapshot(C, "2026-03-01T00:00", ["a", "b"])
    data.snapshot(C, "2026-03-01T12:00", ["b", "c"])  # during the pause: a leaves, c joins
    return data


def test_pause_shorter_than_snapshot_ttl_resumes_with_a_diff(paused):
    s = {"cadence": "6h", "pauses": [{"start": "2026-03-01T05:00", "end": "2026-03-02T05:00"}]}
    r = paused.lab.simulate(C, at="2026-03-02T12:00", settings=s)
    assert timeline(r, "run_at", "kind", "failed", "adds", "removes", "true_count", "not_yet_true", "stale_true") == [
        (pd.Timestamp("2026-03-01T00:00"), "first", False, 2, 0, 2, 0, 0),
        (pd.Timestamp("2026-03-01T06:00"), "failed", True, 0, 0, 2, 0, 0),
        (pd.Timestamp("2026-03-01T12:00"), "failed", True, 0, 0, 2, 1, 1),  # c pending, a stale
        (pd.Timestamp("2026-03-01T18:00"), "failed", True, 0, 0, 2, 1, 1),
        (pd.Timestamp("2026-03-02T00:00"), "failed", True, 0, 0, 2, 1, 1),
        (pd.Timestamp("2026-03-02T06:00"), "diff", False, 1, 1, 2, 0, 0),  # diff vs the last success
        (pd.Timestamp("2026-03-02T12:00"), "diff", False, 0, 0, 2, 0, 0),
    ]
    assert not r.timeline.full_refresh.any()
    assert state(r) == {1: False, 2: True, 3: True}


def test_pause_longer_than_snapshot_ttl_ends_with_a_full_refresh(paused):
    s = {"cadence": "6h", "snapshot_ttl": "1d", "pauses": [{"start": "2026-03-01T05:00", "end": "2026-03-02T05:00"}]}
    r = paused.lab.simulate(C, at="2026-03-02T12:00", settings=s)
    refresh = r.timeline[r.timeline.run_at == pd.Timestamp("2026-03-02T06:00")].iloc[0]
    assert (refresh.kind, bool(refresh.full_refresh), refresh.adds, refresh.removes) == ("full_refresh", True, 2, 0)
    # refresh_clears_stale (default): a is true but no longer a member -> false
    assert (refresh.true_count, refresh.stale_true) == (2, 0)
    assert state(r) == {1: False, 2: True, 3: True}
    # without clearing, a stays true: stale
    r = paused.lab.simulate(C, at="2026-03-02T12:00", settings={**s, "refresh_clears_stale": False})
    assert state(r) == {1: True, 2: True, 3: True}
    assert wf(r)["stale_true"] == 1 and wf(r)["audience"] == 3


def test_full_refresh_repairs_a_false_written_by_a_duplicate(data):
    data.mpa(1)
    data.profile("a", mparticle_user_id="1")
    data.profile("b", mparticle_user_id="1")
    data.snapshot(C, "2026-03-01T00:00", ["a", "b"])
    data.snapshot(C, "2026-03-01T01:00", ["b"])  # a's remove writes false on the shared MPID
    s = {"cadence": "1h", "snapshot_ttl": "2h", "pauses": [{"start": "2026-03-01T02:00", "end": "2026-03-01T05:00"}]}
    r = data.lab.simulate(C, at="2026-03-01T05:00", settings=s)
    assert timeline(r, "kind", "true_count", "not_yet_true") == [
        ("first", 1, 0), ("diff", 0, 1), ("failed", 0, 1), ("failed", 0, 1), ("failed", 0, 1),
        ("full_refresh", 1, 0),  # 4h since the last success > 2h: refresh sends b again
    ]


# --------------------------------------------------------------------------- webhooks
def test_sync_from_replayed_webhooks_with_an_idempotent_replayed_add(data):
    linked(data, {"a": 1, "b": 2, "c": 3})
    data.webhook(C, "members", "2026-03-01T00:00", ["a"], session_id="s1", page=1, total_pages=2)
    data.webhook(C, "members", "2026-03-01T00:00:02", ["b"], session_id="s1", page=2, total_pages=2)
    data.webhook(C, "add_members", "2026-03-01T00:30", ["c"], session_id="s2")
    data.webhook(C, "add_members", "2026-03-01T00:31", ["c"], session_id="s2-retry")  # replayed: no change
    data.webhook(C, "add_members", "2026-03-01T00:31", ["c"], session_id="s2-retry")  # same page twice
    data.webhook(C, "remove_members", "2026-03-01T01:00", ["a"], session_id="s3")
    r = data.lab.simulate(C, at="2026-03-01T01:15")
    assert r.source == "webhooks"
    assert timeline(r, "members", "adds", "removes", "true_count") == [
        (2, 2, 0, 2),  # 00:00 (the message is effective from its first page)
        (2, 0, 0, 2),
        (3, 1, 0, 3),  # 00:30: c once, though sent three times
        (3, 0, 0, 3),
        (2, 0, 1, 2),  # 01:00: remove a
        (2, 0, 0, 2),
    ]
    assert state(r) == {1: False, 2: True, 3: True}


def test_an_as_of_time_between_the_pages_of_one_message_sees_the_whole_message(data):
    """docs/rules.md#membership: a message takes effect at its first page's receive time. Pages
    were cut at the as-of time one by one before being grouped into messages, so an as-of time
    between the pages of one message saw only its first pages (found by fuzzing; the
    same in explain and in the remedies' count)."""
    linked(data, {"a": 1, "b": 2})
    data.webhook(C, "members", "2026-03-01T00:00", ["a"], session_id="s1", page=1, total_pages=2)
    data.webhook(C, "members", "2026-03-01T00:00:02", ["b"], session_id="s1", page=2, total_pages=2)
    r = data.lab.simulate(C, at="2026-03-01T00:00")
    assert timeline(r, "members", "adds", "true_count") == [(2, 2, 2)]
    assert sorted(r.resolution.distinct_id) == ["a", "b"]
    assert wf(r)["members"] == 2 and wf(r)["audience"] == 2
    x = data.lab.explain(C, "b", at="2026-03-01T00:00")
    assert [s.data["present"] for s in x.steps if s.kind == "membership"] == [True]  # b: on the message's page 2


def test_members_message_replaces_the_list(data):
    linked(data, {"a": 1, "b": 2, "c": 3})
    data.webhook(C, "members", "2026-03-01T00:00", ["a", "b"])
    data.webhook(C, "add_members", "2026-03-01T00:10", ["c"])
    data.webhook(C, "members", "2026-03-01T00:20", ["c"])  # a full refresh from Mixpanel
    r = data.lab.simulate(C, at="2026-03-01T00:30")
    # docs/rules.md: a replayed `members` payload is a full refresh of the writes, not a diff:
    # the run at 00:30 sends c (1 add, no removes) and clears a and b (refresh_clears_stale)
    assert timeline(r, "kind", "members", "adds", "removes") == [
        ("first", 2, 2, 0), ("diff", 3, 1, 0), ("full_refresh", 1, 1, 0)]
    assert state(r) == {1: False, 2: False, 3: True}
    # without clearing, the refresh leaves a and b true: stale
    r = data.lab.simulate(C, at="2026-03-01T00:30", settings={"refresh_clears_stale": False})
    assert state(r) == {1: True, 2: True, 3: True}
    assert wf(r)["stale_true"] == 2


# --------------------------------------------------------------------------- one-time export
def test_one_time_export_goes_stale(data):
    linked(data, {"a": 1, "b": 2, "c": 3})
    data.snapshot(C, "2026-03-01T00:00", ["a", "b"])
    data.snapshot(C, "2026-03-02T00:00", ["b", "c"])
    r = data.lab.simulate(C, settings={"sync_type": "one_time", "cadence": "12h"})
    assert timeline(r, "kind", "sent", "members", "adds", "true_count", "not_yet_true", "stale_true") == [
        ("one_time", True, 2, 2, 2, 0, 0),
        ("observation", False, 2, 0, 2, 0, 0),
        ("observation", False, 2, 0, 2, 1, 1),  # nothing is ever sent again
    ]
    assert state(r) == {1: True, 2: True}
    assert wf(r) == {
        "members": 2, "shared_mpid": 0, "should_be_true": 2, "not_yet_true": 1,
        "stale_true": 1, "orphans_true": 0, "audience": 2,
    }
    # its profiles not true are missing, not "pending next run": no run will send them (the
    # summary said so, the waterfall's label and bar did not)
    labels = dict(zip(r.waterfall.step, r.waterfall.label))
    assert labels["not_yet_true"] == ("missing: the one-time export did not send them, and no run will "
                                      "(a new export would)")
    from cohortlab import charts

    ax = charts.waterfall_chart(r.waterfall).axes[0]
    assert "missing\n(one-time\nexport)" in [t.get_text() for t in ax.get_xticklabels()]
    dynamic = data.lab.simulate(C, settings={"cadence": "12h"})
    assert dict(zip(dynamic.waterfall.step, dynamic.waterfall.label))["not_yet_true"].startswith(
        "not (yet) true: pending next run")


# --------------------------------------------------------------------------- orphans
def test_create_and_update_creates_one_orphan_per_distinct_identifier(data):
    linked(data, {"a": 1})
    data.profile("j1", mparticle_user_id="undefined")
    data.profile("j2", mparticle_user_id="undefined")  # same junk value: the same orphan
    data.profile("g", mparticle_user_id="424242")  # no such MPID
    data.snapshot(C, "2026-03-01T00:00", ["a", "j1", "j2", "g", "$device:x"])
    data.snapshot(C, "2026-03-01T00:15", ["a", "j2", "$device:x"])
    s = {"protection": "create_and_update"}
    r = data.lab.simulate(C, at="2026-03-01T00:15", settings=s)
    assert state(r) == {1: True, "orphan:undefined": False, "orphan:424242": False, "orphan:$device:x": True}
    # j1 left: its remove writes false on the orphan that j2 shares
    assert timeline(r, "true_count", "should_be_true") == [(4, 1), (2, 1)]
    assert r.timeline.orphans_true.tolist() == [3, 1]
    assert wf(r) == {
        "members": 3, "unmatched:malformed_mparticle_user_id": 1, "unmatched:distinct_id_not_mpid": 1,
        "shared_mpid": 0, "should_be_true": 1, "not_yet_true": 0, "stale_true": 0, "orphans_true": 1,
        "audience": 2,
    }
    assert (r.resolution.status == "orphan_created").sum() == 2
    # only_update (default): nothing is created
    r = data.lab.simulate(C, at="2026-03-01T00:15")
    assert state(r) == {1: True} and wf(r)["audience"] == 1


# --------------------------------------------------------------------------- MPIDs
def test_mpids_below_zero_and_above_2_53_stay_exact(data):
    big, neg = 9080350317581165123, -7346244611012968789
    data.mpa(big).mpa(neg)
    data.profile("a", mparticle_user_id=str(big))
    data.profile(str(neg))
    data.snapshot(C, "2026-03-01", ["a", str(neg)])
    r = data.lab.simulate(C)
    assert sorted(int(m) for m in r.attribute_state.mpid) == [neg, big]
    table = r.tables["attribute_state"].table_name
    assert data.lab.sql(f"SELECT typeof(mpid) AS t FROM {table}").t.unique().tolist() == ["BIGINT"]


# --------------------------------------------------------------------------- attribute name
def test_attribute_template_names_the_attribute(data):
    linked(data, {"a": 1})
    data.snapshot(C, "2026-03-01", ["a"])
    r = data.lab.simulate(C, settings={"attribute_template": "Mixpanel - {cohort_name}"})
    assert r.attribute == "Mixpanel - Power Users"
    assert r.attribute_state.attribute_name.tolist() == ["Mixpanel - Power Users"]
    assert r.waterfall.label.iloc[-1] == "mParticle audience: Mixpanel - Power Users = true"


def test_a_cohort_name_too_long_for_an_attribute_is_rejected(data):
    name = "x" * 257
    data.snapshot(name, "2026-03-01", ["a"])
    with pytest.raises(ValueError, match="257 characters; mParticle allows at most 256"):
        data.lab.simulate(name)
    with pytest.raises(ValueError, match="at most 256"):
        data.lab.resolution(name)


# --------------------------------------------------------------------------- results & debug
def test_results_are_stored_for_notebooks_when_asked(data):
    linked(data, {"a": 1})
    data.snapshot(C, "2026-03-01", ["a"])
    r = data.lab.simulate(C)
    for table in ("resolution", "timeline", "waterfall", "attribute_state", "gap_summary"):
        assert not data.lab.engine.table_exists(table), table  # only the run's own tables
        assert r.tables[table].table_name == f"sim_{r.run_id}_{table}"
        assert r.tables[table].count() > 0, table
    assert r.publish() == {t: t for t in ("resolution", "timeline", "attribute_state", "waterfall", "gap_summary")}
    for table in ("resolution", "timeline", "waterfall", "attribute_state", "gap_summary"):
        assert data.lab.engine.count(table) > 0, table
    stored = data.lab.sql("SELECT step, count, cohort_name, attribute_name FROM waterfall ORDER BY position")
    assert stored.step.tolist()[0] == "members" and stored.cohort_name.unique().tolist() == [C]


def test_an_interrupted_publish_leaves_the_earlier_tables_whole(data):
    """Ctrl-C (or a killed process) while the five tables are written: all five stay those of the
    earlier run (they were: resolution of the new run beside the waterfall of the old one)."""
    linked(data, {"a": 1, "b": 2})
    data.snapshot(C, "2026-03-01", ["a"])
    data.snapshot("Other", "2026-03-01", ["a", "b"])
    data.lab.simulate(C).publish()
    engine = data.lab.engine
    before = {t: engine.query_rows(f"SELECT * FROM {t}") for t in PUBLISHED}
    r = data.lab.simulate("Other")
    materialise, written = engine.materialise, []

    def interrupted_on_the_third(name, sql, temp=False):
        written.append(name)
        if len(written) == 3:
            raise KeyboardInterrupt
        return materialise(name, sql, temp)

    engine.materialise = interrupted_on_the_third
    try:
        with pytest.raises(KeyboardInterrupt):
            r.publish()
    finally:
        engine.materialise = materialise
    assert {t: engine.query_rows(f"SELECT * FROM {t}") for t in PUBLISHED} == before
    r.publish()
    assert engine.query_rows("SELECT DISTINCT cohort_name FROM waterfall") == [("Other",)]


def test_a_load_that_changes_the_data_drops_the_published_tables(data, tmp_path):
    """The published tables describe the data as it was: after a load that wrote rows, SQL
    reading `resolution` would read yesterday's results without a sign, so they go, as the
    stored simulations do; a load that writes nothing (the same file again) keeps them."""
    linked(data, {"a": 1})
    data.snapshot(C, "2026-03-01", ["a"])
    data.lab.simulate(C).publish()
    members = tmp_path / "members.csv"
    members.write_text("distinct_id\na\nb\n")
    data.lab.load("mixpanel-members", members, cohort=C, as_of="2026-03-02")
    assert [t for t in PUBLISHED if data.lab.engine.table_exists(t)] == []
    data.lab.simulate(C).publish()
    assert data.lab.engine.count("resolution") == 2
    report = data.lab.load("mixpanel-members", members, cohort=C, as_of="2026-03-02")
    assert report.skipped == [str(members)] and data.lab.engine.count("resolution") == 2


def test_lab_shortcuts_reuse_one_simulation(data):
    linked(data, {"a": 1})
    data.snapshot(C, "2026-03-01", ["a"])
    assert data.lab.waterfall(C).step.tolist()[-1] == "audience"
    assert len(data.lab.timeline(C)) == 1
    assert "breakdown" in data.lab.gap_summary(C).columns
    assert data.lab.resolution(C).distinct_id.tolist() == ["a"]
    assert len(data.lab._sim_cache()) == 1  # one simulation behind the four shortcuts
    first = data.lab.simulate(C)
    assert data.lab.simulate(C, at=first.at, settings={}) is first  # same key, same result
    other = data.lab.simulate(C, settings={"cadence": "1h"})
    assert other is not first and other.run_id != first.run_id


def test_two_simulations_on_one_database_do_not_collide(data):
    linked(data, {"a": 1, "b": 2})
    data.snapshot(C, "2026-03-01T00:00", ["a"])
    data.snapshot(C, "2026-03-01T01:00", ["a", "b"])
    early = data.lab.simulate(C, at="2026-03-01T00:30")
    late = data.lab.simulate(C, at="2026-03-01T01:00")
    assert early.tables["timeline"].table_name != late.tables["timeline"].table_name
    assert (early.audience, late.audience) == (1, 2)
    assert len(early.timeline) == 3 and len(late.timeline) == 5  # both still readable
    assert early.tables["resolution"].count() == 1 and late.tables["resolution"].count() == 2
    assert early.tables["resolution"].as_arrow().num_rows == 1


def test_a_result_reads_its_tables_on_demand_and_loading_data_clears_the_cache(data, tmp_path):
    linked(data, {"a": 1})
    data.snapshot(C, "2026-03-01", ["a"])
    r = data.lab.simulate(C)
    assert "timeline" not in r.__dict__  # not read yet
    assert len(r.timeline) == 1 and "timeline" in r.__dict__
    assert not hasattr(r.resolution, "attrs") or not r.resolution.attrs
    f = tmp_path / "p.jsonl"
    f.write_text('{"$distinct_id": "b", "$properties": {}}\n')
    data.lab.load("mixpanel-profiles", f)
    assert len(data.lab._sim_cache()) == 0
    from cohortlab.simulation.simulate import DroppedTableError

    with pytest.raises(DroppedTableError):
        r.tables["timeline"].as_pandas()


def test_a_result_evicted_from_the_cache_stays_readable_while_held_and_is_dropped_when_released(data):
    import gc

    linked(data, {"a": 1})
    data.snapshot(C, "2026-03-01T00:00", ["a"])
    held = data.lab.simulate(C, at="2026-03-01T00:00")
    name = held.tables["timeline"].table_name
    for minute in range(1, data.lab._SIM_CACHE_SIZE + 2):  # push it out of the cache
        data.lab.simulate(C, at=f"2026-03-01T00:{minute:02d}")
    assert all(r is not held for r in data.lab._sim_cache().values())
    assert len(held.timeline) == 1  # still ours: its tables were kept
    del held
    gc.collect()
    assert not data.lab.engine.table_exists(name)  # released: its tables are gone


def test_simulation_debug_mode_reports_rows_per_step(data):
    linked(data, {"a": 1, "b": 2})
    data.snapshot(C, "2026-03-01T00:00", ["a"])
    data.snapshot(C, "2026-03-01T00:15", ["a", "b"])
    r = data.lab.simulate(C, debug=True)
    assert r.step_counts["transitions"]["transitions"] == 2
    assert r.step_counts["runs"]["runs"] == 2
    assert r.step_counts["timeline"]["timeline"] == 2
    assert data.lab.engine.count(r.table_names["sends__diff_sends"]) == 1


def test_every_sync_step_stays_in_the_portable_subset(data):
    from cohortlab.simulation.resolution import find_cohort
    from cohortlab.times import parse_time
    from cohortlab.simulation.sync import stages

    from .conftest import assert_portable

    data.snapshot(C, "2026-03-01", ["a"])
    data.webhook(C, "members", "2026-03-01", ["a"])
    for source in ("snapshots", "webhooks"):
        ref = find_cohort(data.engine, C, source)
        for sync_type in ("dynamic", "one_time"):
            s = SyncSettings(sync_type=sync_type, pauses=[{"start": "2026-03-02", "end": "2026-03-03"}])
            for history in ("none", "single", "multi"):
                for _, pipeline in stages(ref, parse_time("2026-03-05"), ref.first_time, s, C, history=history):
                    assert_portable(pipeline)


# --------------------------------------------------------------------------- boundaries of the rules
def test_a_full_refresh_does_not_write_a_profile_already_false(data):
    """docs/rules.md#pauses-and-refresh: a full refresh (with refresh_clears_stale) sets false on
    the profiles that are *true* but no longer in S. MPID 1 was written true at 00:00 and false at
    01:00 (a left); the 05:00 run after the pause (4 h since the last success > the 2 h ttl) is a
    full refresh of an empty cohort, which finds 1 false already: no third write, and its last
    write stays the 01:00 run."""
    linked(data, {"a": 1})
    data.snapshot(C, "2026-03-01T00:00", ["a"])
    data.snapshot(C, "2026-03-01T01:00", [])
    s = {"cadence": "1h", "snapshot_ttl": "2h", "pauses": [{"start": "2026-03-01T02:00", "end": "2026-03-01T05:00"}]}
    r = data.lab.simulate(C, at="2026-03-01T05:00", settings=s)
    assert timeline(r, "kind", "true_count") == [
        ("first", 1), ("diff", 0), ("failed", 0), ("failed", 0), ("failed", 0), ("full_refresh", 0)]
    one = r.attribute_state.set_index("mpid").loc[1]
    assert (bool(one.value), one.writes, one.last_write_at) == (False, 2, pd.Timestamp("2026-03-01T01:00"))
    assert one.changed_at == pd.Timestamp("2026-03-01T01:00")


def test_an_orphan_and_an_mpid_of_the_same_number_are_two_profiles_of_one_member(data):
    """docs/rules.md#orphans with identifiers decided at send time: A is sent at 00:00 with
    $mparticle_user_id 999 (no such profile: create_and_update makes an orphan), removed at
    01:00 (false on the orphan, the target it was sent to), and sent again at 02:00 after its
    profile was fixed to 1 at 01:30 (true on MPID 1). A's two targets are an orphan and a linked
    profile: the orphan is false and out of the audience, MPID 1 true and in S, whatever number
    the orphan is stored under (orphans are numbered like MPIDs, from 1)."""
    data.mpa(1)
    data.profile("A", mparticle_user_id="999", as_of="2026-03-01T00:00")
    data.profile("A", mparticle_user_id="1", as_of="2026-03-01T01:30")
    data.snapshot(C, "2026-03-01T00:00", ["A"])
    data.snapshot(C, "2026-03-01T01:00", [])
    data.snapshot(C, "2026-03-01T02:00", ["A"])
    r = data.lab.simulate(C, at="2026-03-01T02:00", settings={"cadence": "1h", "protection": "create_and_update"})
    assert state(r) == {"orphan:999": False, 1: True}
    assert timeline(r, "kind", "should_be_true", "true_count", "not_yet_true", "stale_true", "orphans_true") == [
        ("first", 0, 1, 0, 0, 1),  # the orphan 999 is true; no linked profile should be
        ("diff", 0, 0, 0, 0, 0),  # A removed: false on the orphan
        ("diff", 1, 1, 0, 0, 0),  # A back, sent as 1
    ]
    assert wf(r) == {"members": 1, "shared_mpid": 0, "should_be_true": 1, "not_yet_true": 0,
                     "stale_true": 0, "orphans_true": 0, "audience": 1}


@pytest.fixture
def hourly(data):
    """Cadence 1 h from 00:00, snapshot_ttl 2 h; a is a member from 00:00, b enters at 01:30."""
    linked(data, {"a": 1, "b": 2})
    data.snapshot(C, "2026-03-01T00:00", ["a"])
    data.snapshot(C, "2026-03-01T01:30", ["a", "b"])
    return data


def test_a_pause_ends_before_its_end_time_and_a_gap_of_exactly_the_ttl_resumes_with_a_diff(hourly):
    """docs/rules.md#pauses-and-refresh: a pause is [start, end): the run at its end time succeeds.
    Paused [01:00, 02:00): the 02:00 run is 2 h after the last success (00:00), exactly the ttl,
    which is not *longer* than it: a diff, sending b alone. (The SQL that marks failed runs and the
    run grid's own reckoning of the first successful run, which places reconnects and re-exports,
    are two readings of the same window: both are checked.)"""
    s = {"cadence": "1h", "snapshot_ttl": "2h", "pauses": [{"start": "2026-03-01T01:00", "end": "2026-03-01T02:00"}]}
    r = hourly.lab.simulate(C, at="2026-03-01T03:00", settings=s)
    assert timeline(r, "run_at", "kind", "failed", "full_refresh", "adds", "true_count") == [
        (pd.Timestamp("2026-03-01T00:00"), "first", False, False, 1, 1),
        (pd.Timestamp("2026-03-01T01:00"), "failed", True, False, 0, 1),
        (pd.Timestamp("2026-03-01T02:00"), "diff", False, False, 1, 2),
        (pd.Timestamp("2026-03-01T03:00"), "diff", False, False, 0, 2),
    ]
    # the run a reconnect or a re-export lands on is the first *successful* one at or after its
    # time (docs/rules.md#re-export): the 02:00 run, the pause's end, not the 03:00 one
    reconnect = {**s, "pauses": [{**s["pauses"][0], "ends_with": "reconnect"}]}
    reexport = {**s, "reexport_at": ["2026-03-01T01:30"]}  # inside the pause
    for settings, kind in ((reconnect, "reconnect"), (reexport, "reexport")):
        r = hourly.lab.simulate(C, at="2026-03-01T03:00", settings=settings)
        assert timeline(r, "kind", "adds", "true_count") == [
            ("first", 1, 1), ("failed", 0, 1), (kind, 2, 2), ("diff", 0, 2)]  # a full sync: a and b sent


def test_a_gap_longer_than_the_ttl_ends_with_a_full_refresh_at_the_pause_end(hourly):
    """The same world paused [01:00, 03:00): the 03:00 run (3 h since the last success, longer
    than the 2 h ttl) is a full refresh, sending every member."""
    s = {"cadence": "1h", "snapshot_ttl": "2h", "pauses": [{"start": "2026-03-01T01:00", "end": "2026-03-01T03:00"}]}
    r = hourly.lab.simulate(C, at="2026-03-01T03:00", settings=s)
    assert timeline(r, "run_at", "kind", "failed", "full_refresh", "adds", "true_count") == [
        (pd.Timestamp("2026-03-01T00:00"), "first", False, False, 1, 1),
        (pd.Timestamp("2026-03-01T01:00"), "failed", True, False, 0, 1),
        (pd.Timestamp("2026-03-01T02:00"), "failed", True, False, 0, 1),
        (pd.Timestamp("2026-03-01T03:00"), "full_refresh", False, True, 2, 2),
    ]
