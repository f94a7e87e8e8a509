"""docs/rules.md#observed-state: the simulated cohort attribute against an observed mParticle
snapshot. Hand-built worlds, one per cause; the expected values are written in each test."""

import json

import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from cohortlab import Lab
from cohortlab.simulation.verify import CAUSES, VerifyError
from tests.depth import search

from .conftest import Data, ts

C = "Power Users"


def observe(data, mpid, value=None, name=C, load_id=1, last_stored=None, as_of=None):
    """``mpid`` in the mParticle snapshot written by load ``load_id`` (a loads row with ``as_of``
    in its options when given), with attribute ``name`` = ``value`` (None: no attribute)."""
    e = data.engine
    if not e.query_rows("SELECT 1 FROM loads WHERE load_id = ?", [load_id]):
        opts = json.dumps({"as_of": as_of} if as_of else {})
        e.execute("INSERT INTO loads (load_id, kind, source_file, options) VALUES (?, 'mparticle-profiles', ?, ?)",
                  [load_id, f"snap{load_id}.json", opts])
    if e.query_rows("SELECT 1 FROM mpa_profiles WHERE mpid = ?", [mpid]):
        e.execute("UPDATE mpa_profiles SET load_id = ?, last_stored_at = ? WHERE mpid = ?", [load_id, ts(last_stored), mpid])
    else:
        e.execute("INSERT INTO mpa_profiles (mpid, last_stored_at, source, load_id) VALUES (?, ?, 'profile_api', ?)",
                  [mpid, ts(last_stored), load_id])
    if value is not None:
        bool_value = value if isinstance(value, bool) else None
        e.execute("INSERT INTO mpa_attributes (mpid, name, value, value_bool, load_id, line) VALUES (?, ?, ?, ?, ?, 1)",
                  [mpid, name, json.dumps(value), bool_value, load_id])
    return data


def linked(data, pairs):
    for d, mpid in pairs.items():
        data.mpa(mpid)
        data.profile(d, mparticle_user_id=str(mpid))


def rows(v):
    """{mpid: (simulated, observed, cause)}"""
    return {int(r.mpid): (r.simulated, r.observed, r.cause if isinstance(r.cause, str) else None)
            for r in v.profiles.itertuples()}


def causes(v):
    return {c: n for c, n in zip(v.causes.cause, v.causes.profiles) if n}


# --------------------------------------------------------------------------- agreement
def test_agreement_confusion_and_audience(data):
    linked(data, {"a": 1, "b": 2, "c": 3})
    data.snapshot(C, "2026-03-01T00:00", ["a", "b"])
    data.snapshot(C, "2026-03-01T00:20", ["b", "c"])  # a leaves: false at 00:30
    for mpid, value in ((1, False), (2, True), (3, True)):
        observe(data, mpid, value, last_stored="2026-03-01T00:30")
    observe(data, 4, None, last_stored="2026-03-01T00:10")  # in the snapshot, never written: absent/absent
    v = data.lab.verify(C)
    assert v.snapshot_at == pd.Timestamp("2026-03-01T00:30", tz="UTC")  # latest last_stored_at
    assert "last_stored_at" in v.snapshot_at_from
    assert rows(v) == {1: ("false", "false", None), 2: ("true", "true", None), 3: ("true", "true", None)}
    assert v.confusion.loc["true", "true"] == 2 and v.confusion.loc["false", "false"] == 1
    assert v.confusion.loc["absent", "absent"] == 1 and v.confusion.values.sum() == 4
    assert v.agreement == 1.0 and len(v.disagreements) == 0
    aud = v.audience.set_index("audience")
    assert aud.loc["= true"].tolist() == [2, 2, 0] and aud.loc["= false"].tolist() == [1, 1, 0]


def test_no_observed_attribute_is_a_clear_error(data):
    linked(data, {"a": 1})
    data.snapshot(C, "2026-03-01", ["a"])
    observe(data, 1, True, name="Something Else")
    with pytest.raises(VerifyError, match="no observed state for cohort 'Power Users'.*'Power Users'"):
        data.lab.verify(C)


def test_the_no_observed_state_error_shows_a_cohort_named_after_an_email_as_its_pseudonym(data):
    """The error names the cohort and its attribute as verify's text does (docs/reports.md#personal-data)."""
    from cohortlab.privacy import database_key, pseudonym

    linked(data, {"a": 1})
    data.snapshot("ann@example.com", "2026-03-01", ["a"])
    observe(data, 1, True, name="Something Else")
    shown = pseudonym("ann@example.com", database_key(data.engine))
    with pytest.raises(VerifyError) as hidden:
        data.lab.verify("ann@example.com")
    assert "ann@example.com" not in str(hidden.value)
    assert f"no observed state for cohort '{shown}': no loaded mParticle profile carries the attribute '{shown}'" \
        in str(hidden.value)
    with pytest.raises(VerifyError, match="cohort 'ann@example.com'.*attribute 'ann@example.com'"):
        data.lab.verify("ann@example.com", show_personal_data=True)


def test_the_text_lists_no_disagreement_with_limit_0_and_counts_one_profile_in_the_singular(data):
    from cohortlab.simulation.verify import format_verify

    linked(data, {"a": 1, "b": 2})
    data.snapshot(C, "2026-03-01", ["a", "b"])
    observe(data, 1, True, last_stored="2026-03-01T00:30")
    observe(data, 2, False, last_stored="2026-03-01T00:30")  # simulated true: one disagreement
    observe(data, 3, True, name="Mixpanel - Power Users", last_stored="2026-03-01T00:30")
    v = data.lab.verify(C)
    assert len(v.disagreements) == 1
    assert "  MPID 2: simulated true, observed false" in format_verify(v, limit=20)
    text = format_verify(v, limit=0)
    assert "disagreements (first" not in text and "MPID 2" not in text
    assert "agreement: " in text and "; 1 disagree" in text
    assert "'Mixpanel - Power Users' (" in text and "): 1 profile, 1 true, 0 false" in text
    assert "'Power Users' (expected): 2 profiles, 1 true, 1 false" in text


# --------------------------------------------------------------------------- causes, one per world
def test_snapshot_before_last_run(data):
    linked(data, {"a": 1, "b": 2})
    data.snapshot(C, "2026-03-01T00:00", ["a"])
    data.snapshot(C, "2026-03-01T01:00", ["b"])  # 01:00: a removed (false), b added (true)
    observe(data, 1, True)
    observe(data, 2, None)
    v = data.lab.verify(C, at="2026-03-01T01:00", snapshot_at="2026-03-01T00:30")
    assert v.snapshot_at_from == "given"
    assert rows(v) == {1: ("false", "true", "snapshot_before_last_run"),
                       2: ("true", "absent", "snapshot_before_last_run")}
    d = v.disagreements.set_index("mpid").loc[2, "detail"]
    assert d == "the run at 2026-03-01 01:00:00 wrote true; this profile was captured at 2026-03-01 00:30:00"
    # the same snapshot compared at its own time agrees
    assert data.lab.verify(C, snapshot_at="2026-03-01T00:30").agreement == 1.0


def test_a_run_that_writes_the_value_again_after_the_capture_is_not_the_last_run(data):
    """snapshot_before_last_run compares the capture with the run that last *changed* the value
    (docs/rules.md#observed-state): a re-export at 00:30 writing true again on a profile true since
    00:00, or an added member whose profile was true already, leaves a snapshot of 00:20 that shows
    false a real disagreement (pause_not_modelled), not a stale snapshot; a profile whose value
    changed after the capture (true, false at 00:15, true again at 00:30; or first written at 00:30)
    still is one; one first written at 00:30 is unexplained: it was never written by its capture, yet
    observed false (the snapshot's age does not explain that; below)."""
    linked(data, {"a": 1, "c": 3, "n": 5})
    data.mpa(4)
    data.profile("d1", mparticle_user_id="4").profile("d2", mparticle_user_id="4")  # one profile, two members
    data.snapshot(C, "2026-03-01T00:00", ["a", "c", "d1"])
    data.snapshot(C, "2026-03-01T00:15", ["a", "d1"])  # c leaves: false at 00:15
    data.snapshot(C, "2026-03-01T00:30", ["a", "c", "d1", "d2", "n"])  # c back, d2 joins 4, n new: true at 00:30
    for mpid in (1, 3, 4, 5):
        observe(data, mpid, False)
    reexport = {"reexport_at": ["2026-03-01T00:30:00Z"]}  # a re-export writes true again on 1 (and 4)
    v = data.lab.verify(C, at="2026-03-01T00:45", snapshot_at="2026-03-01T00:20", settings=reexport)
    assert rows(v) == {1: ("true", "false", "pause_not_modelled"), 3: ("true", "false", "snapshot_before_last_run"),
                       4: ("true", "false", "pause_not_modelled"), 5: ("true", "false", "unexplained")}
    p = v.profiles.set_index("mpid")
    assert (p.last_write_at == pd.Timestamp("2026-03-01T00:30")).all()
    assert p.changed_at.to_dict() == {m: pd.Timestamp(t) for m, t in ((1, "2026-03-01T00:00"), (3, "2026-03-01T00:30"),
                                                                       (4, "2026-03-01T00:00"), (5, "2026-03-01T00:30"))}
    assert p.loc[1, "detail"] == "the run at 2026-03-01 00:00:00 should have written true; observed false"
    assert p.loc[3, "detail"] == "the run at 2026-03-01 00:30:00 wrote true; this profile was captured at 2026-03-01 00:20:00"
    # without the re-export, 4 is written again by d2's add alone: the same causes
    assert rows(data.lab.verify(C, at="2026-03-01T00:45", snapshot_at="2026-03-01T00:20")) == rows(v)
    state = data.lab.simulate(C, at="2026-03-01T00:45", settings=reexport).attribute_state.set_index("mpid")
    assert state.loc[1, ["writes", "changed_at"]].tolist() == [2, pd.Timestamp("2026-03-01T00:00")]
    assert state.loc[3, ["writes", "changed_at"]].tolist() == [3, pd.Timestamp("2026-03-01T00:30")]
    # explain says since when the value holds, and compares as verify does
    x = data.lab.explain(C, "a", at="2026-03-01T00:45", settings=reexport)
    attribute = next(s for s in x.steps if s.kind == "attribute")
    assert attribute.text == ("MPID 1: simulated 'Power Users' = true after 2 write(s), the last at 2026-03-01 00:30:00 "
                              "(true since 2026-03-01 00:00:00)")
    assert next(s for s in x.steps if s.kind == "observed").data["cause"] == "pause_not_modelled"


def test_a_profile_captured_before_its_last_change_is_a_stale_snapshot_only_if_it_held_the_observed_value(data):
    """verify --at later than the snapshot (docs/rules.md#observed-state): a profile captured before
    the run that last changed its value is snapshot_before_last_run only when the simulation held the
    observed value at its capture (2, 3); otherwise the snapshot's age does not explain it and the
    next cause is judged on the value at the capture: 1 was true at its capture too (it changed away
    and back after it), 4 true since 00:15 (a pause before the capture: pause_not_modelled), 5 never
    written by its capture yet observed false (unexplained). All three were snapshot_before_last_run."""
    linked(data, {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5})
    data.snapshot(C, "2026-03-01T00:00", ["a", "b"])
    data.snapshot(C, "2026-03-01T00:15", ["a", "b", "d"])
    data.snapshot(C, "2026-03-01T00:30", ["c", "e"])
    data.snapshot(C, "2026-03-01T00:45", ["a", "c", "e"])
    for mpid, value in ((1, False), (2, True), (3, None), (4, None), (5, False)):
        observe(data, mpid, value)
    v = data.lab.verify(C, at="2026-03-01T01:00", snapshot_at="2026-03-01T00:20")
    assert rows(v) == {1: ("true", "false", "pause_not_modelled"), 2: ("false", "true", "snapshot_before_last_run"),
                       3: ("true", "absent", "snapshot_before_last_run"), 4: ("false", "absent", "pause_not_modelled"),
                       5: ("true", "false", "unexplained")}
    d = v.profiles.set_index("mpid").detail
    assert d[1] == ("the run at 2026-03-01 00:00:00 should have written true; observed false; "
                    "the run at 2026-03-01 00:45:00, after the capture, wrote true")
    assert d[4] == ("the run at 2026-03-01 00:15:00 should have written true; observed absent; "
                    "the run at 2026-03-01 00:30:00, after the capture, wrote false")
    assert d[5] == ("observed false; no run of the simulation wrote this profile by its capture at 2026-03-01 00:20:00; "
                    "the run at 2026-03-01 00:30:00, after the capture, wrote true")
    assert d[2] == "the run at 2026-03-01 00:30:00 wrote false; this profile was captured at 2026-03-01 00:20:00"
    # explain judges the user's profile alike (its simulation of the related members only)
    x = data.lab.explain(C, "a", at="2026-03-01T01:00", snapshot_at="2026-03-01T00:20")
    assert next(s for s in x.steps if s.kind == "observed").data["cause"] == "pause_not_modelled"


def test_a_load_as_of_is_the_capture_time_of_its_profiles(data):
    linked(data, {"a": 1, "b": 2})
    data.snapshot(C, "2026-03-01T00:00", ["a"])
    data.snapshot(C, "2026-03-01T01:00", ["a", "b"])
    observe(data, 1, True, load_id=1, as_of="2026-03-01T02:00:00+00:00")
    observe(data, 2, None, load_id=2, as_of="2026-03-01T00:45:00+00:00")  # captured before b's write
    # by a snapshot that carries the attribute (a CSV with its column, empty for 2): one without it
    # captured no cohort value (test_a_profile_loaded_only_before_the_run_from_a_file_without_...)
    data.engine.execute("INSERT INTO mpa_snapshot_names (load_id, name) VALUES (2, ?)", [C])
    v = data.lab.verify(C)
    assert v.snapshot_at == pd.Timestamp("2026-03-01T02:00", tz="UTC")
    assert rows(v) == {1: ("true", "true", None), 2: ("true", "absent", "snapshot_before_last_run")}


def test_the_as_of_option_of_an_mparticle_load_is_the_capture_time(data, tmp_path):
    # docs/simulate.md#verify: "else the as_of of the mParticle load"; the mParticle loaders
    # refused the option, so only a hand-written loads row could reach that rule
    linked(data, {"a": 1, "b": 2})
    data.snapshot(C, "2026-03-01T00:00", ["a"])
    data.snapshot(C, "2026-03-01T01:00", ["a", "b"])  # b enters: true at 01:00
    p1 = tmp_path / "p1.jsonl"
    p1.write_text(json.dumps({"mpid": 1, "user_attributes": {C: True}}) + "\n")
    p2 = tmp_path / "p2.csv"
    p2.write_text(f"mpid,{C}\n2,false\n")
    data.lab.load("mparticle-profiles", p1, as_of="2026-03-01T04:00:00+02:00")
    data.lab.load("mparticle-csv", p2, as_of="2026-03-01T00:45:00Z")  # taken before b's write
    v = data.lab.verify(C)
    assert v.snapshot_at == pd.Timestamp("2026-03-01T02:00", tz="UTC")
    assert v.snapshot_at_from == "the as_of of the mParticle load"
    # captured at 00:45, before b's first write at 01:00: never written then, yet observed false, which
    # the snapshot's age does not explain (captured at 02:00 it would be pause_not_modelled)
    assert rows(v) == {1: ("true", "true", None), 2: ("true", "false", "unexplained")}
    assert v.profiles.set_index("mpid").captured_at[2] == pd.Timestamp("2026-03-01T00:45")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_snapshot_whose_cohort_column_is_empty_everywhere_observes_it_absent(data, tmp_path, fmt):
    """A CSV or Parquet snapshot with a column for the cohort but no value in it (the feed wrote
    the attribute on no profile): the snapshot carries the attribute, so each profile is observed
    absent where a run should have written true (pause_not_modelled). It was refused as "no
    loaded mParticle profile carries the attribute", or, beside another snapshot, called
    profile_missing_in_snapshot."""
    linked(data, {"a": 1, "b": 2})
    data.snapshot(C, "2026-03-01T00:00", ["a", "b"])
    path = tmp_path / f"snap.{fmt}"
    frame = pd.DataFrame({"mpid": [1, 2], "customer_id": ["c1", "c2"], C: [None, None]}).astype({C: "string"})
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    data.lab.load(f"mparticle-{fmt}", path, as_of="2026-03-01T02:00:00Z")
    assert data.engine.query_rows("SELECT name, line FROM mpa_snapshot_names") == [(C, 1)]
    v = data.lab.verify(C)
    assert rows(v) == {1: ("true", "absent", "pause_not_modelled"), 2: ("true", "absent", "pause_not_modelled")}


def test_attribute_name_differs_older_form_and_renamed_cohort(data):
    linked(data, {"a": 1, "b": 2, "c": 3})
    data.engine.execute("INSERT INTO mp_cohorts (cohort_id, name, created) VALUES ('77', 'Heavy Users', '2025-01-01')")
    data.snapshot(C, "2026-03-01T00:00", ["a", "b", "c"], cohort_id="77")
    observe(data, 1, True)
    observe(data, 2, True, name="Mixpanel - Power Users")  # the older template
    observe(data, 3, "true", name="Heavy Users")  # the cohort's earlier name (a string "true")
    data.engine.execute("UPDATE mpa_attributes SET value_bool = TRUE WHERE mpid = 3")
    v = data.lab.verify(C, snapshot_at="2026-03-01T01:00")
    assert rows(v) == {1: ("true", "true", None), 2: ("true", "absent", "attribute_name_differs"),
                       3: ("true", "absent", "attribute_name_differs")}
    dis = v.disagreements.set_index("mpid")
    assert dis.loc[2, "detail"] == "carries 'Mixpanel - Power Users' = true instead (simulated true)"
    assert dis.loc[3, "other_name"] == "Heavy Users"
    names = v.names.set_index("attribute")
    assert names.loc["Mixpanel - Power Users", "how"] == "older form"
    assert names.loc["Heavy Users", "how"] == "template of the earlier name 'Heavy Users'"
    assert names.loc["Power Users", "profiles"] == 1


def test_a_profile_absent_on_both_sides_is_listed_when_it_carries_another_name(data):
    """docs/simulate.md#verify: the snapshot's profiles absent on both sides are counted, not
    listed, unless they carry one of the cohort's other names (listed with other_name, an
    agreement); the docs once said every such profile was left out."""
    linked(data, {"a": 1})
    data.snapshot(C, "2026-03-01T00:00", ["a"])
    observe(data, 1, True)
    observe(data, 2, None)  # in the snapshot, no cohort name: counted, not listed
    observe(data, 3, "yes", name="Mixpanel - Power Users")  # only the older name: listed
    v = data.lab.verify(C, snapshot_at="2026-03-01T01:00")
    assert rows(v) == {1: ("true", "true", None), 3: ("absent", "absent", None)}
    assert v.profiles.set_index("mpid").loc[3, "other_name"] == "Mixpanel - Power Users"
    assert v.confusion.loc["absent", "absent"] == 2 and v.agreement == 1.0


def test_profile_missing_in_snapshot(data):
    linked(data, {"a": 1, "b": 2})
    data.snapshot(C, "2026-03-01T00:00", ["a", "b"])
    observe(data, 1, True, load_id=1)
    # profile 2 comes from another load (an identity export) that carries no cohort attribute
    data.engine.execute("INSERT INTO loads (load_id, kind, source_file) VALUES (2, 'mparticle-csv', 'ids.csv')")
    data.engine.execute("UPDATE mpa_profiles SET load_id = 2 WHERE mpid = 2")
    v = data.lab.verify(C, snapshot_at="2026-03-01T01:00")
    assert rows(v) == {1: ("true", "true", None), 2: ("true", "absent", "profile_missing_in_snapshot")}
    assert v.profiles.set_index("mpid").loc[2, "in_snapshot"] == False  # noqa: E712


def test_a_profile_loaded_only_before_the_run_from_a_file_without_the_attribute_is_missing_not_stale(data, tmp_path):
    """Profile 2 comes only from a Profile API answer of 23:50 that holds no cohort attribute; the
    snapshot that carries it is of 00:05. The run at 00:00 made 2 true. The file of 23:50 captured
    none of the cohort's values, so its time is no capture time: 2 is missing from the snapshot
    (it was `snapshot_before_last_run`, by the time of a file that says nothing of the cohort)."""
    linked(data, {"a": 1, "b": 2})
    data.snapshot(C, "2026-03-01T00:00", ["a", "b"])
    carries, other = tmp_path / "carries.jsonl", tmp_path / "other.jsonl"
    carries.write_text(json.dumps({"mpid": 1, "user_attributes": {C: True}}) + "\n")
    other.write_text(json.dumps({"mpid": 2, "user_attributes": {"plan": "x"}}) + "\n")
    data.lab.load("mparticle-profiles", carries, as_of="2026-03-01T00:05:00Z")
    data.lab.load("mparticle-profiles", other, as_of="2026-02-28T23:50:00Z")
    v = data.lab.verify(C)
    assert rows(v) == {1: ("true", "true", None), 2: ("true", "absent", "profile_missing_in_snapshot")}
    got = v.profiles.set_index("mpid")
    assert not got.in_snapshot[2] and got.captured_at[2] == pd.Timestamp("2026-03-01T00:05")


@pytest.mark.parametrize("late", [False, True])
def test_a_snapshot_whose_profiles_with_the_attribute_a_later_snapshot_replaced_still_carries_it(data, tmp_path, late):
    # the export of 03-01 carries the attribute (profile 1) and shows profile 2 without it;
    # the export of 03-02 replaces profile 1 only. Profile 2 is still in a snapshot that carries the
    # attribute (docs/simulate.md#verify): observed absent, a run should have written true. Its load
    # counted as carrying the attribute only through the rows it kept, so 2 was taken for a profile
    # of no snapshot (profile_missing_in_snapshot), outside the confusion table. Either load order.
    linked(data, {"a": 1, "b": 2})
    data.snapshot(C, "2026-03-01T00:00", ["a", "b"])
    day1, day2 = tmp_path / "day1.jsonl", tmp_path / "day2.jsonl"
    day1.write_text(json.dumps({"mpid": 1, "user_attributes": {C: True}}) + "\n"
                    + json.dumps({"mpid": 2, "user_attributes": {"plan": "pro"}}) + "\n")
    day2.write_text(json.dumps({"mpid": 1, "user_attributes": {C: True}}) + "\n")
    loads = [(day1, "2026-03-01T04:00:00Z"), (day2, "2026-03-02T04:00:00Z")]
    for path, as_of in reversed(loads) if late else loads:
        data.lab.load("mparticle-profiles", path, as_of=as_of)
    v = data.lab.verify(C, snapshot_at="2026-03-02T04:00")
    assert rows(v) == {1: ("true", "true", None), 2: ("true", "absent", "pause_not_modelled")}
    assert v.profiles.set_index("mpid").loc[2, "in_snapshot"] == True  # noqa: E712
    assert v.confusion.loc["true", "absent"] == 1


def test_pause_not_modelled(data):
    linked(data, {"a": 1, "b": 2})
    data.snapshot(C, "2026-03-01T00:00", ["a"])
    data.snapshot(C, "2026-03-01T01:00", ["a", "b"])
    observe(data, 1, True, last_stored="2026-03-01T00:00")
    observe(data, 2, False, last_stored="2026-02-20T00:00")  # the feed never reached it
    v = data.lab.verify(C, snapshot_at="2026-03-01T02:00")
    assert rows(v) == {1: ("true", "true", None), 2: ("true", "false", "pause_not_modelled")}
    assert v.disagreements.detail.iloc[0] == (
        "the run at 2026-03-01 01:00:00 should have written true; observed false; mParticle last stored this "
        "profile at 2026-02-20 00:00:00, before that run")
    # the same pause, modelled in the settings, explains everything
    pause = {"pauses": [{"start": "2026-03-01T00:30:00Z", "end": "2026-03-01T02:30:00Z"}]}
    v2 = data.lab.verify(C, snapshot_at="2026-03-01T02:00", settings=pause)
    assert rows(v2)[2] == ("absent", "false", "unexplained")  # false was never written by the simulated feed


def test_unexplained_with_identity_changed_evidence_masks_other_emails(data):
    data.mpa(1)
    data.mpa(4, customer_id="ann@example.com")
    data.profile("ann@example.com", mparticle_user_id="1")  # the member now resolves to 1, not 4
    data.snapshot(C, "2026-03-01T00:00", ["ann@example.com"])
    observe(data, 1, True)
    observe(data, 4, True)  # still true from before the identity change
    v = data.lab.verify(C, snapshot_at="2026-03-01T01:00")
    assert rows(v) == {1: ("true", "true", None), 4: ("absent", "true", "unexplained")}
    r = v.disagreements.iloc[0]
    assert r.evidence == "identity_changed"
    assert "ann@example.com" not in r.detail
    assert "identity changed: member" in r.detail and "holds this profile's customer_id but now resolves to MPID 1" in r.detail
    shown = data.lab.verify(C, snapshot_at="2026-03-01T01:00", show_personal_data=True)
    assert "member ann@example.com holds" in shown.disagreements.detail.iloc[0]


def test_identity_changed_names_a_member_once_with_every_identity_it_holds(data):
    """A member holding a profile's customer_id and its other id is one note, not one per identity
    type, and a gap reason is written in words as the pages write it."""
    data.mpa(4, customer_id="cust-9", other="cust-9")
    data.profile("cust-9")  # resolves to nothing now: its distinct_id is no MPID
    data.snapshot(C, "2026-03-01T00:00", ["cust-9"])
    observe(data, 4, True)
    r = data.lab.verify(C, snapshot_at="2026-03-01T01:00").disagreements.iloc[0]
    assert r.evidence == "identity_changed"
    assert r.detail.endswith("; identity changed: member cust-9 holds this profile's customer_id and other but "
                             "now resolves to nothing (unmatched: $distinct_id not an MPID)"), r.detail


def test_every_cause_counted_in_order(data):
    """One world with every cause at once: the counts and the text name each."""
    linked(data, {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5})
    data.mpa(6)
    data.snapshot(C, "2026-03-01T00:00", ["a", "b", "c", "d"])
    data.snapshot(C, "2026-03-01T03:00", ["a", "b", "c", "d", "e"])
    observe(data, 1, True)
    observe(data, 2, True, name="Mixpanel - Power Users")
    data.engine.execute("INSERT INTO loads (load_id, kind, source_file) VALUES (2, 'mparticle-csv', 'ids.csv')")
    data.engine.execute("UPDATE mpa_profiles SET load_id = 2 WHERE mpid = 3")
    observe(data, 4, False)
    observe(data, 5, None)
    observe(data, 6, True)
    v = data.lab.verify(C, at="2026-03-01T03:00", snapshot_at="2026-03-01T02:00")
    assert rows(v) == {
        1: ("true", "true", None),
        2: ("true", "absent", "attribute_name_differs"),
        3: ("true", "absent", "profile_missing_in_snapshot"),
        4: ("true", "false", "pause_not_modelled"),
        5: ("true", "absent", "snapshot_before_last_run"),
        6: ("absent", "true", "unexplained"),
    }
    assert causes(v) == {c: 1 for c in CAUSES}
    text = v.to_text()
    for c in CAUSES:
        assert c in text
    assert "agreement: 16.7% of 6 profiles; 5 disagree" in text  # one decimal, as the report writes it
    # 5 disagreements in a million profiles: not "100.00%" (the report's own line says >99.9%)
    import dataclasses

    many = dataclasses.replace(v, both_absent=v.both_absent + 999_994)
    assert "agreement: >99.9% of 1,000,000 profiles; 5 disagree" in many.to_text()
    assert v.summary()["observed_true"] == 2 and v.summary()["simulated_true"] == 5


# --------------------------------------------------------------------------- property
members_st = st.lists(st.sets(st.sampled_from("abcdefg"), max_size=7), min_size=1, max_size=5)


@hsettings(**search(12, 150), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(snaps=members_st, shared=st.booleans(), one_time=st.booleans(), cut=st.integers(0, 4))
def test_observed_state_produced_by_the_simulation_agrees_everywhere(snaps, shared, one_time, cut):
    """Write the simulation's own attribute state as the observed snapshot: verify agrees 100%."""
    with Lab() as lab:
        data = Data(lab)
        for i, d in enumerate("abcdefg"):
            mpid = 100 + (i // 2 if shared else i)  # shared: two distinct_ids per profile
            if not lab.sql(f"SELECT 1 FROM mpa_profiles WHERE mpid = {mpid}").shape[0]:
                data.mpa(mpid)
            data.profile(d, mparticle_user_id=str(mpid) if d != "g" else "junk")
        for k, members in enumerate(snaps):
            data.snapshot(C, f"2026-03-0{k + 1}T00:00", sorted(members))
        settings = {"sync_type": "one_time"} if one_time else {}
        at = f"2026-03-0{min(cut, len(snaps) - 1) + 1}T06:00"
        sim = lab.simulate(C, at=at, settings=settings).attribute_state
        lab.engine.execute("INSERT INTO loads (load_id, kind, source_file) VALUES (1, 'mparticle-profiles', 'x')")
        lab.engine.execute("UPDATE mpa_profiles SET load_id = 1, last_stored_at = ?", [ts(at)])
        for r in sim.itertuples():
            lab.engine.execute("INSERT INTO mpa_attributes (mpid, name, value, value_bool, load_id) VALUES (?, ?, ?, ?, 1)",
                               [int(r.mpid), C, json.dumps(bool(r.value)), bool(r.value)])
        if not len(sim):
            lab.engine.execute("INSERT INTO mpa_attributes (mpid, name, value, value_bool, load_id) "
                               "VALUES (999, 'Mixpanel - Power Users', 'true', TRUE, 1)")
        v = lab.verify(C, settings=settings)
        assert v.at == pd.Timestamp(at, tz="UTC")
        assert v.agreement == 1.0, v.to_text()
        assert v.confusion.loc["true", "true"] == int(sim.value.sum())
        assert v.confusion.loc["false", "false"] == int((~sim.value.astype(bool)).sum())


# --------------------------------------------------------------------------- command line
def test_cli_verify(tmp_path):
    db = str(tmp_path / "lab.duckdb")
    with Lab(db) as lab:
        data = Data(lab)
        linked(data, {"a": 1, "b": 2})
        data.snapshot(C, "2026-03-01T00:00", ["a", "b"])
        observe(data, 1, True, last_stored="2026-03-01T01:00")
        observe(data, 2, False, last_stored="2026-02-01T00:00")
    from cohortlab.cli import main

    out = tmp_path / "profiles.csv"
    r = CliRunner().invoke(main, ["verify", "--db", db, "--cohort", C, "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "mParticle snapshot: 2026-03-01 01:00:00 UTC" in r.output
    assert "  = true                   1          2          -1" in r.output
    assert "MPID 2: simulated true, observed false -> pause_not_modelled" in r.output
    assert pd.read_csv(out).shape[0] == 2
    bad = CliRunner().invoke(main, ["verify", "--db", db, "--cohort", "Nope"])
    assert bad.exit_code == 1 and "unknown cohort 'Nope'" in bad.output


def test_a_written_profile_that_is_not_loaded_is_named_deleted(data):
    """A simulation (here a stand-in for one run elsewhere) that wrote a profile mParticle no longer has."""
    from types import SimpleNamespace

    from cohortlab.simulation.resolution import RESOLUTION_COLUMNS

    linked(data, {"a": 1})
    data.snapshot(C, "2026-03-01T00:00", ["a"])
    observe(data, 1, True)
    state = pd.DataFrame({"mpid": [1, 55], "is_orphan": [False, False], "value": [True, True],
                          "last_write_at": pd.to_datetime(["2026-03-01", "2026-03-01"]),
                          "changed_at": pd.to_datetime(["2026-03-01", "2026-03-01"])})
    fake = SimpleNamespace(attribute_state=state, resolution=pd.DataFrame(columns=RESOLUTION_COLUMNS),
                           at=pd.Timestamp("2026-03-01T01:00", tz="UTC"))
    from cohortlab.simulation.verify import verify

    v = verify(data.engine, C, snapshot_at="2026-03-01T01:00", simulate_fn=lambda *a: fake)
    assert rows(v) == {1: ("true", "true", None), 55: ("true", "absent", "profile_missing_in_snapshot")}
    r = v.disagreements.iloc[0]
    assert r.evidence == "profile_deleted"
    assert r.detail == "no mParticle profile with this MPID is loaded (deleted, another workspace, or a wrong value)"


def test_an_observed_value_that_is_an_email_or_a_phone_is_shown_as_its_pseudonym(data):
    """An attribute holding an email or a phone number: the detail gives its pseudonym, unless
    asked for (under an older name only its kind is shown: "other")."""
    from cohortlab.privacy import Redactor

    linked(data, {"a": 1, "b": 2, "c": 3})
    data.snapshot(C, "2026-03-01T00:00", ["a", "b", "c"])
    observe(data, 1, "alice.value@example.com")
    observe(data, 2, "+44 7700 900888")
    observe(data, 3, "+44 7700 900889", name="Mixpanel - Power Users")
    r = Redactor.for_engine(data.engine)
    dis = data.lab.verify(C, snapshot_at="2026-03-01T01:00").disagreements.set_index("mpid")
    assert dis.loc[1, "detail"] == f"observed the non-boolean value {r.value('alice.value@example.com')}; simulated true"
    assert dis.loc[2, "detail"] == f"observed the non-boolean value {r.value('+44 7700 900888')}; simulated true"
    assert dis.loc[3, "other_value"] == "other" and "900889" not in dis.loc[3, "detail"]
    shown = data.lab.verify(C, snapshot_at="2026-03-01T01:00", show_personal_data=True).disagreements.set_index("mpid")
    assert shown.loc[2, "detail"] == 'observed the non-boolean value "+44 7700 900888"; simulated true'


# --------------------------------------------------------------------------- the order of the causes and the capture time
def test_a_snapshot_taken_before_the_first_write_is_stale_even_when_the_profile_carries_an_older_name(data):
    """docs/rules.md#observed-state: the first cause that applies wins, and snapshot_before_last_run
    comes before attribute_name_differs. Profile 1 carries 'Mixpanel - Power Users' = true (the
    older form) and no 'Power Users' in a snapshot taken at 09:00; the sync's first run, at 10:00,
    writes 'Power Users' = true. At the capture the simulation had written nothing (absent), which
    is what the snapshot shows under the expected name: the snapshot's age explains the
    disagreement, not the other name."""
    linked(data, {"a": 1})
    data.snapshot(C, "2026-03-01T10:00", ["a"])  # t0 = 10:00: the first run writes true on 1
    observe(data, 1, True, name="Mixpanel - Power Users", as_of="2026-03-01T09:00:00Z")
    v = data.lab.verify(C, at="2026-03-01T10:00")
    assert v.snapshot_at == pd.Timestamp("2026-03-01T09:00", tz="UTC")
    assert rows(v) == {1: ("true", "absent", "snapshot_before_last_run")}
    p = v.profiles.set_index("mpid").loc[1]
    assert p.other_name == "Mixpanel - Power Users" and p.captured_at == pd.Timestamp("2026-03-01T09:00")
    assert p.detail == "the run at 2026-03-01 10:00:00 wrote true; this profile was captured at 2026-03-01 09:00:00"
    assert causes(v) == {"snapshot_before_last_run": 1}


def test_a_run_at_the_capture_time_itself_counts_as_before_the_capture(data):
    """docs/rules.md#observed-state: the value at the capture is the state after the last run at
    *or before* the snapshot time. Cadence 1 h: the run at 00:00 writes true on 1, the run at 01:00
    (a left at 01:00) false. A snapshot taken at exactly 00:00 shows true: the simulation held true
    at the capture (the 00:00 run counts), so the snapshot is merely older than the last run. Were
    the 00:00 run left out, 1 would have been absent at the capture, and the disagreement
    unexplained."""
    linked(data, {"a": 1})
    data.snapshot(C, "2026-03-01T00:00", ["a"])
    data.snapshot(C, "2026-03-01T01:00", [])
    observe(data, 1, True, as_of="2026-03-01T00:00:00Z")
    v = data.lab.verify(C, at="2026-03-01T01:00", settings={"cadence": "1h"})
    assert rows(v) == {1: ("false", "true", "snapshot_before_last_run")}
    p = v.profiles.set_index("mpid").loc[1]
    assert p.captured_at == pd.Timestamp("2026-03-01T00:00")
    assert p.detail == "the run at 2026-03-01 01:00:00 wrote false; this profile was captured at 2026-03-01 00:00:00"
