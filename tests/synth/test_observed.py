"""The observed mParticle state of a synth world (cohortlab.synth.observed): its planted causes of
disagreement, and ``verify`` on the loaded world equal to ``truth_verify.parquet`` row for row."""

from __future__ import annotations

import pandas as pd
import pytest

from cohortlab import Lab
from cohortlab.loaders.folder import load_world
from cohortlab.simulation.verify import CAUSES, VerifyError
from tests.synth.conftest import jsonl


@pytest.fixture(scope="module")
def world(make_world):
    return make_world("mid_migration", users=3000, seed=5)


@pytest.fixture(scope="module")
def lab(world):
    with Lab() as lab:
        load_world(lab, world.out_dir)
        yield lab


def _rows(df):
    out = df[["mpid", "simulated", "observed", "cause"]].copy()
    out["cause"] = out["cause"].astype(object).where(out["cause"].notna(), None)
    return sorted(out.itertuples(index=False, name=None))


def test_files_carry_the_planted_state(world):
    m = world.manifest
    assert m["observed_at"] == "2026-02-28T12:00:00Z"  # halfway between the last two snapshots
    ev = m["expected_verify"]
    assert (ev["snapshot_at"], ev["at"]) == ("2026-02-28T12:00:00Z", "2026-03-01T00:00:00Z")
    assert ev["pause"] == {"start": "2026-02-27T23:59:00Z", "end": "2026-02-28T13:00:00Z", "modelled": False}
    names = {"Power Users", "Recent Purchasers"}
    old = {f"Mixpanel - {n}" for n in names}
    snapshot = list(jsonl(world.out_dir / "mparticle/profiles.jsonl"))
    outside = list(jsonl(world.out_dir / "mparticle/profiles/identities-only.jsonl"))
    assert outside and all(not (set(o["user_attributes"]) & (names | old)) for o in outside)
    carried = [set(o["user_attributes"]) & (names | old) for o in snapshot]
    assert any(c & old for c in carried) and any(c & names for c in carried)
    assert not any(c & old and c & names for c in carried)  # a planted person carries only the old names
    truth = pd.read_parquet(world.out_dir / "truth_verify.parquet")
    planted = set(truth.cause.dropna())
    assert {"snapshot_before_last_run", "attribute_name_differs", "profile_missing_in_snapshot",
            "pause_not_modelled"} <= planted
    # the snapshot is older than the last run: exactly the profiles whose value that run changed and
    # that show the value the simulation held at the capture (the others: the next cause, judged on it)
    last = truth.changed_si == truth.last_write_si.max()
    differ = truth.simulated != truth.observed
    held = truth.at_capture == truth.observed
    assert (truth.cause[last & differ & held] == "snapshot_before_last_run").all()
    assert (truth.cause[~(last & held) & differ] != "snapshot_before_last_run").all()
    assert (truth.at_capture[~last] == truth.simulated[~last]).all()
    assert (last & differ & ~held).any()  # this world has one: changed at the last run, shown otherwise (missing)


def test_a_profile_the_last_run_only_wrote_again_is_no_stale_snapshot():
    """The truth's cause follows docs/rules.md#observed-state: the last snapshot's run re-writing
    true on a profile true since the first (a distinct_id of the person added while another stays
    a member) does not make the snapshot older than the run that wrote the value: the planted
    cause shows (older name, missing from the snapshot); a profile that run changed is still
    snapshot_before_last_run (on the code before, all three were). A profile the last run changed
    but that the snapshot shows otherwise than the simulation held it at the capture (made true by
    the paused run before the capture: absent in the snapshot) is pause_not_modelled, judged on its
    value at the capture (it was snapshot_before_last_run before)."""
    import duckdb

    from cohortlab.synth import observed

    con = duckdb.connect()
    con.execute("CREATE TABLE c_writes (ci INTEGER, mpid BIGINT, pid BIGINT, si INTEGER, value BOOLEAN)")
    con.execute("""INSERT INTO c_writes VALUES (0, 11, 1, 0, TRUE), (0, 11, 1, 2, TRUE),
                   (0, 12, 2, 0, TRUE), (0, 12, 2, 2, FALSE), (0, 13, 3, 0, TRUE), (0, 13, 3, 2, TRUE),
                   (0, 14, 4, 1, TRUE), (0, 14, 4, 2, FALSE)""")
    con.execute("CREATE TABLE c_plant AS SELECT * FROM (VALUES (1, 1), (2, 0), (3, 2), (4, 0)) v(pid, plant)")
    truth = con.execute(f"SELECT * FROM ({observed.verify_truth_sql(2, 0, observed.names_values(['Power Users']))}) "
                        "ORDER BY mpid").df()
    assert truth[["mpid", "simulated", "observed", "cause"]].values.tolist() == [
        [11, "true", "absent", "attribute_name_differs"],
        [12, "false", "true", "snapshot_before_last_run"],
        [13, "true", "absent", "profile_missing_in_snapshot"],
        [14, "false", "absent", "pause_not_modelled"]]
    assert truth.last_write_si.tolist() == [2, 2, 2, 2] and truth.changed_si.tolist() == [0, 2, 0, 2]
    assert truth.at_capture.tolist() == ["true", "true", "true", "true"]


def test_the_feed_sends_the_identifier_of_the_send_time():
    """The generator's feed decides a member's identifier when it sends it (docs/rules.md#resolution-time):
    at the first snapshot's run or the one it enters at, from the events at or before that run, and a
    remove writes to what the add was sent to. On the code before, every member wrote to what it
    resolved to at the last snapshot (a float-rounded $mparticle_user_id first seen after the send made
    a member sent as its MPID distinct_id never written, seed 11's MPID 8015430860074320918; an exact
    one first seen after the send made true a member sent as its customer id)."""
    import duckdb

    from cohortlab.synth import observed

    con = duckdb.connect()
    # person 1: MPID distinct_id, a float-rounded value on events from snapshot 1; person 2: customer id,
    # the exact MPID on events from snapshot 2; person 3: the same, leaves at 2 and comes back at 3 when
    # the exact MPID is on its events; person 4: MPID distinct_id, float-rounded from 1, leaves at 2
    con.execute("""CREATE TABLE ps AS SELECT * FROM (VALUES (1, 101, '101', '100', 10), (2, 202, '202', NULL, 10),
                   (3, 303, '303', NULL, 10), (4, 404, '404', '400', 10)) v(pid, mpid, mpid_txt, sdk_value, last_ev_t)""")
    con.execute("""CREATE TABLE c_mem AS SELECT 0 AS ci, si, pid, dk FROM (VALUES
                   (0, 1, 1), (1, 1, 1), (2, 1, 1), (3, 1, 1), (0, 2, 2), (1, 2, 2), (2, 2, 2), (3, 2, 2),
                   (0, 3, 2), (1, 3, 2), (3, 3, 2), (0, 4, 1), (1, 4, 1)) v(si, pid, dk)""")
    con.execute("CREATE TABLE c_pf (pid BIGINT, uk TINYINT, mpuid VARCHAR)")  # no profile has the property
    con.execute("""CREATE TABLE c_ers AS SELECT * FROM (VALUES (1, 1, 1, 2), (1, 1, 2, 2), (1, 1, 3, 2), (2, 2, 2, 1),
                   (2, 2, 3, 1), (3, 2, 3, 1), (4, 1, 1, 2), (4, 1, 2, 2), (4, 1, 3, 2)) v(pid, dk, si, mk_last)""")
    con.execute("CREATE VIEW c_er AS SELECT pid, dk, mk_last FROM c_ers WHERE si = 3")  # the as-of reading
    writes = con.execute(f"SELECT ci, mpid, pid, si, value FROM ({observed.feed_writes_sql(0, 3)}) "
                         "ORDER BY mpid, si").fetchall()
    assert writes == [(0, 101, 1, 0, True), (0, 303, 3, 3, True), (0, 404, 4, 0, True), (0, 404, 4, 2, False)]


def test_verify_equals_the_truth_row_for_row(world, lab):
    ev = world.manifest["expected_verify"]
    truth = pd.read_parquet(world.out_dir / "truth_verify.parquet")
    for cohort, expected in ev["cohorts"].items():
        v = lab.verify(cohort, at=ev["at"], snapshot_at=ev["snapshot_at"])
        assert _rows(v.profiles) == _rows(truth[truth.cohort_name == cohort])
        got = {f"{s}/{o}": int(v.confusion.loc[s, o]) for s in v.confusion.index for o in v.confusion.columns
               if v.confusion.loc[s, o]}
        assert got == expected["confusion"]
        assert {c: n for c, n in zip(v.causes.cause, v.causes.profiles) if n} == expected["causes"]


def test_with_the_pause_modelled_only_the_name_and_missing_plants_disagree(world, lab):
    ev = world.manifest["expected_verify"]
    pause = {"pauses": [{"start": ev["pause"]["start"], "end": ev["pause"]["end"]}]}
    truth = pd.read_parquet(world.out_dir / "truth_verify.parquet")
    for cohort in ev["cohorts"]:
        v = lab.verify(cohort, settings=pause, snapshot_at=ev["snapshot_at"])  # at = the snapshot time
        assert set(v.disagreements.cause) <= {"attribute_name_differs", "profile_missing_in_snapshot"}
        t = truth[truth.cohort_name == cohort]
        planted = set(t.mpid[t.other_name.notna() | ~t.in_snapshot])
        assert set(v.disagreements.mpid) <= planted and len(v.disagreements) > 0
    assert set(CAUSES) >= set(truth.cause.dropna())


def test_verify_equals_the_truth_in_every_scenario(scenario_world):
    """Every scenario's independent verify truth (identifiers from profiles, events, distinct_ids), with
    the default settings (identifiers at the time they are sent). On the code before, the truth's feed
    wrote what each member resolved to at the as-of time: at 1500 users, seed 11, MPID
    8015430860074320918 (person 281, sent at the first run as its MPID distinct_id, a float-rounded
    $mparticle_user_id on its events from the next day) differed in healthy, mid_migration (simulated
    true, observed absent) and remediated (simulated absent, observed true)."""
    ev = scenario_world.manifest["expected_verify"]
    truth = pd.read_parquet(scenario_world.out_dir / "truth_verify.parquet")
    with Lab() as lab:
        load_world(lab, scenario_world.out_dir)
        for cohort, expected in ev["cohorts"].items():
            if expected.get("refused"):
                with pytest.raises(VerifyError, match="no observed state"):
                    lab.verify(cohort, at=ev["at"], snapshot_at=ev["snapshot_at"])
                continue
            v = lab.verify(cohort, at=ev["at"], snapshot_at=ev["snapshot_at"])
            assert _rows(v.profiles) == _rows(truth[truth.cohort_name == cohort]), cohort


def test_a_cohort_no_profile_carries_is_expected_to_be_refused(make_world):
    """The manifest listed a confusion table for a cohort none of whose members matched (so no
    profile of the snapshot carries its attribute), where `verify` refuses: "no observed state".
    The manifest now says the cohort is refused, and verify refuses it; the other cohort of the
    same world still verifies to its confusion table."""
    world = make_world("customer_id_legacy", users=1776, seed=77)
    ev = world.manifest["expected_verify"]
    assert world.manifest["expected"]["Power Users"]["matched"] == 0
    assert ev["cohorts"]["Power Users"] == {"confusion": None, "causes": None, "refused": "no observed state"}
    assert ev["cohorts"]["Recent Purchasers"]["confusion"] == {"true/true": 9, "absent/absent": 1194}
    with Lab() as lab:
        load_world(lab, world.out_dir)
        with pytest.raises(VerifyError, match="no observed state for cohort 'Power Users'"):
            lab.verify("Power Users", at=ev["at"], snapshot_at=ev["snapshot_at"])
        v = lab.verify("Recent Purchasers", at=ev["at"], snapshot_at=ev["snapshot_at"])
        assert int(v.confusion.loc["true", "true"]) == 9
