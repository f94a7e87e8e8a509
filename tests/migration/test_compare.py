"""``compare``: what the rates count, why ``simulate`` differs, where the switch date comes from,
ties, the projection window, and runs that share a database.

The reconciliation world (``shop``), event rule from 2026-01-06, EIT customer_id throughout:

| member | MPID | events (UTC)                       | Mixpanel profile          | simulate  | what-if   |
|--------|------|------------------------------------|---------------------------|-----------|-----------|
| c-ann  | 101  | 2026-01-08 with $mparticle_user_id | no property               | matched   | matched   |
| c-bob  | 102  | 2026-01-09 with $mparticle_user_id | "undefined" (by app code) | unmatched | matched   |
| c-cat  | 103  | 2025-12-01 only                    | no property               | unmatched | unmatched |
| c-ivy  | —    | none                               | no property               | unmatched | (absent)  |

So the what-if counts 3 profiles (Ivy has no events), 2 matched: 66.7%; over the 4 members
it gives 2/4 = 50%; ``simulate`` finds 1/4 = 25%: Ivy explains the first step, Bob's
app-written property the second.
"""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from cohortlab import Lab
from cohortlab.cli import main
from cohortlab.migration.plans import MigrationPlan
from cohortlab.migration.run import best_plans, compare, run_plans
from cohortlab.migration.switch import find_switch, first_mpid_keyed_event, has_mpid_keyed_event
from cohortlab.migration.validate import predict_at
from cohortlab.simulation.remedies import value_remedies

from .conftest import EVENTS, PROFILES, insert_events, insert_profiles

SETTINGS = {"event_identity_cutoff": "2026-01-06T00:00:00Z"}
COHORT = "Buyers"


def add_cohort(lab, members, as_of="2026-01-11"):
    lab.engine.execute("INSERT INTO mp_cohort_snapshots (snapshot_id, cohort_name, as_of, member_count) "
                       "VALUES (1, ?, CAST(? AS TIMESTAMP), ?)", [COHORT, as_of, len(members)])
    for d in members:
        lab.engine.execute("INSERT INTO mp_cohort_members (snapshot_id, cohort_name, as_of, distinct_id) "
                           "VALUES (1, ?, CAST(? AS TIMESTAMP), ?)", [COHORT, as_of, d])


def build_shop(lab):
    insert_events(lab, [("c-ann", "2026-01-08 10:00:00", "c-ann", "dev-ann", "101"),
                        ("c-bob", "2026-01-09 10:00:00", "c-bob", "dev-bob", "102"),
                        ("c-cat", "2025-12-01 10:00:00", "c-cat", "dev-cat")])
    insert_profiles(lab, {m: [("user", "customer_id", c)] for m, c in ((101, "c-ann"), (102, "c-bob"), (103, "c-cat"))})
    for did, mup in (("c-ann", None), ("c-bob", "undefined"), ("c-cat", None), ("c-ivy", None)):
        lab.engine.execute("INSERT INTO mp_profiles (distinct_id, mparticle_user_id) VALUES (?, ?)", [did, mup])
    add_cohort(lab, ["c-ann", "c-bob", "c-cat", "c-ivy"])


def plans():
    cut = SETTINGS["event_identity_cutoff"]
    return [MigrationPlan(name="Rule only", remediation={"kind": "rule", "since": "2026-01-07"}, event_identity_cutoff=cut),
            MigrationPlan(name="do nothing", event_identity_cutoff=cut)]


@pytest.fixture
def shop(lab):
    build_shop(lab)
    return lab


# --------------------------------------------------------------------------- compare vs simulate
def test_compare_explains_why_simulate_finds_a_lower_rate_for_the_same_cohort(shop):
    observed = shop.resolution(COHORT, settings=SETTINGS)
    assert (observed["status"] == "matched").sum() == 1                     # simulate: 1 of 4
    c = compare(shop.engine, plans(), start="2025-12-01", end="2026-01-10", settings=SETTINGS, cohort=COHORT,
                observed=observed)
    s = c.summary.set_index("plan")
    assert s.loc["do nothing", ["members_end", "matched_end"]].tolist() == [3, 2]
    assert s.loc["do nothing", "final_match_rate"] == pytest.approx(2 / 3)
    assert "3 people behind the 4 members of 'Buyers'" in c.run.population
    assert "members without events are not counted" in c.run.population
    r = c.reconciliation
    assert (r.members, r.members_without_events) == (4, 1)                  # Ivy
    assert (r.members_rate, r.simulate_rate) == (pytest.approx(0.5), pytest.approx(0.25))
    assert r.differences == {"bad_mparticle_user_id": 1}                    # Bob
    assert r.plan == "the data's history: the settings' EIT, no switch"
    assert "1 member differs: $mparticle_user_id written by app code is not their MPID" in r.text
    # without a cohort the rates count every profile with events, and say so
    everyone = compare(shop.engine, plans(), start="2025-12-01", end="2026-01-10", settings=SETTINGS)
    assert everyone.reconciliation is None and "Not a cohort's members" in everyone.run.population


# --------------------------------------------------------------------------- ties
def test_plans_within_five_hundredths_of_a_point_tie():
    summary = pd.DataFrame({"plan": ["a", "b", "c", "d"], "final_match_rate": [0.7231, 0.72306, 0.7225, float("nan")]})
    assert best_plans(summary) == ["a", "b"]                                 # 0.004 pp apart; c is 0.06 pp behind
    assert best_plans(summary.iloc[[0, 2]]) == ["a"]
    assert best_plans(summary.iloc[[3]]) == []


def test_compare_calls_a_tie_a_tie(shop):
    # the Rule (from 01-07) reaches Ann and Bob, whom the event rule already matched: same end
    c = compare(shop.engine, plans(), start="2025-12-01", end="2026-01-10", settings=SETTINGS)
    assert c.best == ["Rule only", "do nothing"] and c.tie
    assert c.verdict == "tie: Rule only and do nothing end at 66.7%–66.7%, within 0.05 percentage points: no single best plan"
    assert c.table["best"].tolist() == [True, True]
    late = [plans()[0], MigrationPlan(name="no event rule", event_identity_cutoff=None)]
    c = compare(shop.engine, late, start="2025-12-01", end="2026-01-10", settings=SETTINGS)
    assert c.best == ["Rule only"] and not c.tie
    assert c.verdict == "best: Rule only (66.7% at the end of the window, 66.67 pp ahead of no event rule)"
    one = compare(shop.engine, plans()[:1], start="2025-12-01", end="2026-01-10", settings=SETTINGS)
    assert one.verdict == "Rule only: 66.7% at the end of the window (one plan: nothing to compare it with)"


def test_a_plan_without_a_change_or_without_an_effect_has_no_days_to_90_percent(shop, tmp_path):
    # "do nothing" has no change to count days from; "Rule only" equals it every day (the event
    # rule already matched Ann and Bob): no effect, so no days either, in the CLI as on the report's
    # page (`migrate compare` printed "1 d" and "107 d" where the page shows "—")
    c = compare(shop.engine, plans(), start="2025-12-01", end="2026-01-10", settings=SETTINGS)
    s = c.summary.set_index("plan")
    assert s[["days_to_90pct", "days_to_99pct"]].isna().all().all()
    late = [plans()[0], MigrationPlan(name="no event rule", event_identity_cutoff=None)]
    s = compare(shop.engine, late, start="2025-12-01", end="2026-01-10", settings=SETTINGS).summary.set_index("plan")
    assert s.loc["Rule only", "days_to_90pct"] == 2                         # from 01-07, 2 days to 01-09 (Bob)
    assert pd.isna(s.loc["no event rule", "days_to_90pct"])                 # no change: no days
    # a plan whose first change is after the window's last day: nothing of it is in the window (it was "0 d")
    late_rule = MigrationPlan(name="too late", remediation={"kind": "rule", "since": "2027-02-01"},
                              event_identity_cutoff=SETTINGS["event_identity_cutoff"])
    s = run_plans(shop.engine, [late_rule], "2025-12-01", "2026-01-10", settings=SETTINGS).summary.set_index("plan")
    assert s.loc["too late", "final_match_rate"] > 0  # a rate to reach: its days were 0
    assert s[["days_to_90pct", "days_to_99pct"]].isna().all().all()
    db = str(tmp_path / "shop.duckdb")
    with Lab(db) as lab:
        build_shop(lab)
    settings = tmp_path / "s.yaml"
    settings.write_text("event_identity_cutoff: 2026-01-06T00:00:00Z\n")
    r = cli("migrate", "compare", "--db", db, "--settings", str(settings), "--start", "2025-12-01",
            "--end", "2026-01-10", "--switch", "2026-01-09")
    assert r.exit_code == 0, r.output
    rows = {line[:24].strip(): line.split()[-2:] for line in r.output.splitlines()
            if line.startswith(("Rule only", "do nothing"))}
    assert rows == {"Rule only": ["—", "—"], "do nothing": ["—", "—"]}, r.output
    # the count the rates divide by is of Mixpanel profiles, as the page's "Mixpanel profiles"
    # column and the line above the table say ("Not a cohort's members"), not "members"
    header = next(line for line in r.output.splitlines() if line.startswith("plan "))
    assert header.split()[:5] == ["plan", "final", "rate", "profiles", "matched"], header


# --------------------------------------------------------------------------- switch date
def test_switch_date_comes_from_a_parameter_the_settings_or_the_data(world):
    assert find_switch(world.engine, "2026-01-05").source == "parameter"
    st = {"eit_timeline": [{"since": None, "eit": "customer_id"}, {"since": "2026-01-04T00:00:00Z", "eit": "mparticle_id"}]}
    sw = find_switch(world.engine, settings=st)
    assert (sw.source, sw.at.isoformat()) == ("settings", "2026-01-04T00:00:00+00:00")
    # no event is keyed by an MPID yet: nothing to find, and nothing is made up
    with pytest.raises(ValueError, match="no switch date"):
        find_switch(world.engine)
    assert not has_mpid_keyed_event(world.engine)
    # Cat's anonymous event under her MPID (merged retroactively) does not count; her first
    # identified MPID-keyed event does
    insert_events(world, [("103", "2026-01-06 08:00:00", None, "dev-cat")])
    assert not has_mpid_keyed_event(world.engine) and first_mpid_keyed_event(world.engine) is None
    insert_events(world, [("103", "2026-01-07 12:30:00", "c-cat", "dev-cat")])
    assert has_mpid_keyed_event(world.engine)
    sw = find_switch(world.engine)
    assert (sw.source, sw.at.isoformat()) == ("data", "2026-01-07T12:30:00+00:00")
    assert sw.text == ("switch to mparticle_id at 2026-01-07T12:30:00Z (from the data: the first identified event "
                       "keyed by an existing MPID)")
    c = compare(world.engine, settings={"event_identity_cutoff": None})
    assert c.switch == sw and c.summary["plan"].tolist() == ["switch only", "switch + Rule", "Rule only", "do nothing"]
    assert c.summary["first_change"].iloc[0] == pd.Timestamp("2026-01-07 12:30:00")


def test_without_user_ids_the_first_mpid_keyed_event_keyed_by_no_device_id_counts(lab):
    insert_events(lab, [("c-x", "2026-01-01 00:00:00", None, "d1"), ("55", "2026-01-03 00:00:00", None, "d1")])
    assert not has_mpid_keyed_event(lab.engine)
    insert_profiles(lab, {55: []})
    assert str(first_mpid_keyed_event(lab.engine)) == "2026-01-03 00:00:00+00:00"
    assert has_mpid_keyed_event(lab.engine)
    # the output does not call that event identified
    assert find_switch(lab.engine).text == ("switch to mparticle_id at 2026-01-03T00:00:00Z (from the data: the first "
                                            "identified event keyed by an existing MPID; no event has a $user_id: "
                                            "identified is keyed by no device id)")


def test_the_report_page_names_a_switch_of_data_without_user_ids_as_migrate_compare_does(lab):
    """From data without any $user_id the EIT page said "the first identified event
    keyed by an existing MPID", where migrate compare says the event is of any kind."""
    from cohortlab.report import insights

    insert_events(lab, [("c-x", "2026-01-01 00:00:00", None, "d1"), ("55", "2026-01-03 00:00:00", None, "d1")])
    insert_profiles(lab, {55: []})
    at, source = insights.find_switch(lab)
    assert str(at) == "2026-01-03 00:00:00+00:00"
    assert source == ("the data: the first identified event keyed by an existing MPID; no event has a $user_id: "
                      "identified is keyed by no device id")
    assert f"(from {source})" in find_switch(lab.engine).text
    # the report's runner gives the page the switch it read (found=): the same words
    assert insights.find_switch(lab, found="2026-01-03T00:00:00Z")[1] == source
    # with a $user_id the event is an identified one, as before
    insert_events(lab, [("c-y", "2026-01-02 00:00:00", "c-y", "d2"), ("55", "2026-01-04 00:00:00", "u55", "d1")])
    assert insights.find_switch(lab)[1] == "the data: the first identified event keyed by an existing MPID"


def test_data_keyed_by_mpid_from_its_first_event_shows_no_switch(lab):
    """The EIT was mParticle ID before the data begins (a healthy world): its first identified
    event is already keyed by an existing MPID. That is no switch; studying one there compared
    plans with a "do nothing" keyed by customer ids this world never had."""
    insert_profiles(lab, {55: [], 66: []})
    insert_events(lab, [("55", "2026-01-01 00:00:00", "u-55", "d1"), ("66", "2026-01-02 00:00:00", "u-66", "d2"),
                        ("c-x", "2026-01-03 00:00:00", "c-x", "d3")])
    assert first_mpid_keyed_event(lab.engine) is None and not has_mpid_keyed_event(lab.engine)
    with pytest.raises(ValueError, match="keyed by MPID from its first such event"):
        find_switch(lab.engine)
    # an identified event keyed by a customer id before it: the data shows the switch
    insert_events(lab, [("c-y", "2025-12-31 00:00:00", "c-y", "d4")])
    assert str(first_mpid_keyed_event(lab.engine)) == "2026-01-01 00:00:00+00:00"
    assert has_mpid_keyed_event(lab.engine)


def test_data_keyed_by_the_mpid_of_a_deleted_profile_from_its_first_event_shows_no_switch(lab):
    """A healthy world whose first user's profile was deleted since (mParticle deletes inactive
    ones): its first identified event is keyed by an MPID that no loaded profile has. Still MPID
    from the start: a "switch" at the second event was found (synth healthy seed 7)."""
    insert_profiles(lab, {66: []})
    insert_events(lab, [("55", "2026-01-01 00:00:00", "u-55", "d1"), ("66", "2026-01-02 00:00:00", "u-66", "d2")])
    assert first_mpid_keyed_event(lab.engine) is None and not has_mpid_keyed_event(lab.engine)
    with pytest.raises(ValueError, match="no switch date"):
        find_switch(lab.engine)


def test_without_user_ids_events_keyed_by_mpid_from_the_first_show_no_switch(lab):
    insert_profiles(lab, {55: []})
    insert_events(lab, [("55", "2026-01-01 00:00:00", None, "d1"), ("c-x", "2026-01-03 00:00:00", None, "d2")])
    assert first_mpid_keyed_event(lab.engine) is None and not has_mpid_keyed_event(lab.engine)


# --------------------------------------------------------------------------- projection window
def test_repeat_without_an_end_projects_one_period_past_the_last_event(world):
    # the data end on 2026-01-10; 30 days of repeated activity: the window ends 2026-02-09
    switch = MigrationPlan(name="switch after the data", event_identity_cutoff=None,
                           eit_timeline=[{"since": None, "eit": "customer_id"}, {"since": "2026-01-20", "eit": "mparticle_id"}])
    c = compare(world.engine, [switch], activity="repeat")
    assert (str(c.run.start), str(c.run.end)) == ("2025-12-01", "2026-02-09")
    assert c.window_source == {"start": "data", "end": "data + 30 days"}
    # Cat's 01-07 visit comes back on 02-06, Bob's 01-10 visit on 02-09: both now have an MPID
    # profile (matched through the $distinct_id fallback) beside their customer-id profile
    s = c.summary.iloc[0]
    assert (s.matched_end, s.split_profiles_end) == (2, 2)
    assert compare(world.engine, [switch], activity="repeat", repeat_days=7).run.end.isoformat() == "2026-01-17"


def test_a_switch_outside_the_data_or_after_the_window_is_one_error_line(world, tmp_path):
    """The standard plans around a switch after the window's last day, or before the first event,
    are the same four series: compare ran them and called a four-way tie."""
    after = ("the switch 2026-01-20T00:00:00Z (given as a parameter) is after the window's last day (2026-01-10, "
             "from the data): the four plans are the same every day of the window; give a switch inside it, or a "
             "window that reaches it: a later end (--end; -p end=... in a report; end= in Python), past the last "
             'event with --activity repeat (-p activity=repeat; activity="repeat")')
    with pytest.raises(ValueError) as e:
        compare(world.engine, switch="2026-01-20")
    assert str(e.value) == after
    with pytest.raises(ValueError, match=r"is after the window's last day \(2026-01-04, from the parameter\)"):
        compare(world.engine, switch="2026-01-05", end="2026-01-04")
    with pytest.raises(ValueError, match=r"^the switch 2025-11-01T00:00:00Z \(given as a parameter\) is before the "
                                         r"first event \(2025-12-01T10:00:00Z\)"):
        compare(world.engine, switch="2025-11-01")
    st = {"eit_timeline": [{"since": None, "eit": "customer_id"}, {"since": "2026-02-01T00:00:00Z", "eit": "mparticle_id"}]}
    with pytest.raises(ValueError, match=r"2026-02-01T00:00:00Z \(from the settings' eit_timeline\) is after"):
        compare(world.engine, settings=st)
    with pytest.raises(ValueError, match=r"^window end 2026-01-01 is before its start 2026-01-03$"):  # said first
        compare(world.engine, switch="2026-01-05", start="2026-01-03", end="2026-01-01")
    # inside the window: the last instant of its last day, or a projected one
    assert compare(world.engine, switch="2026-01-10T23:59:59Z").switch.source == "parameter"
    assert str(compare(world.engine, switch="2026-01-20", activity="repeat").run.end) == "2026-02-09"
    db = str(tmp_path / "w.duckdb")
    with Lab(db) as lab:
        insert_events(lab, EVENTS)
        insert_profiles(lab, PROFILES)
    r = CliRunner().invoke(main, ["migrate", "compare", "--db", db, "--switch", "2026-01-20"])
    assert r.exit_code == 1 and r.stderr.strip() == f"error: {after}"


def test_repeat_with_an_end_inside_the_data_is_an_error(world):
    with pytest.raises(ValueError, match=r"after the last event \(2026-01-10\); the window end 2026-01-10 is not"):
        compare(world.engine, plans(), end="2026-01-10", activity="repeat")


# --------------------------------------------------------------------------- tables of a run
def mig_tables(lab):
    return {r[0] for r in lab.engine.query_rows("SELECT table_name FROM information_schema.tables")
            if r[0].startswith("mig_")}


def test_two_runs_in_one_database_do_not_collide(world):
    a = run_plans(world.engine, plans()[:1], "2025-12-01", "2026-01-14", keep_tables=True)
    b = run_plans(world.engine, [MigrationPlan(name="other", eit_timeline="mparticle_id")], "2025-12-01",
                  "2026-01-14", keep_tables=True)
    assert a.tables.prefix != b.tables.prefix
    assert world.engine.count(a.tables.persons) == world.engine.count(b.tables.persons) == 5
    assert world.engine.count(a.tables.plan(0, "users")) == 5                 # customer-id keys, untouched by b
    a.drop_tables(world.engine)
    assert not any(n.startswith(a.tables.prefix) for n in mig_tables(world))
    assert any(n.startswith(b.tables.prefix) for n in mig_tables(world))
    b.drop_tables(world.engine)
    run_plans(world.engine, plans(), "2025-12-01", "2026-01-14")             # default: nothing left behind
    assert mig_tables(world) == set()


def test_a_run_replaces_the_stored_rows_of_its_plans_and_keeps_the_others(world):
    run_plans(world.engine, plans(), "2025-12-01", "2026-01-14")
    run_plans(world.engine, plans()[1:], "2026-01-01", "2026-01-14")
    n = dict(world.engine.query_rows("SELECT plan, count(*) FROM migration_daily GROUP BY plan"))
    assert n == {"Rule only": 45, "do nothing": 14}
    s = dict(world.engine.query_rows("SELECT plan, count(*) FROM migration_summary GROUP BY plan"))
    assert s == {"Rule only": 1, "do nothing": 1}
    assert world.engine.count("migration_plans") == 2


def test_predict_at_writes_the_table_it_is_given(world):
    plan = MigrationPlan(name="switch", eit_timeline=[{"since": None, "eit": "customer_id"},
                                                      {"since": "2026-01-05", "eit": "mparticle_id"}],
                         event_identity_cutoff=None)
    assert predict_at(world.engine, plan, "2026-01-08T00:00:00Z", table="my_prediction") == "my_prediction"
    rows = dict(world.engine.query_rows("SELECT distinct_id, status FROM my_prediction"))
    assert rows["103"] == "matched" and rows["c-ann"] == "unmatched"


def test_duckdb_drop_removes_tables_views_and_frames_and_ignores_the_rest(lab):
    lab.engine.materialise_frame("f", pd.DataFrame({"a": [1, 2]}))
    assert lab.engine.columns("f") == ["a"] and lab.engine.count("f") == 2
    lab.engine.execute("CREATE VIEW v AS SELECT 1 AS x")
    lab.engine.register("r", pd.DataFrame({"x": [1]}))
    for name in ("f", "v", "r", "nothing"):
        lab.engine.drop(name)
        assert not lab.engine.table_exists(name)


# --------------------------------------------------------------------------- the command
def cli(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_cli_compare_states_the_switch_the_population_the_tie_and_the_reconciliation(tmp_path):
    db = str(tmp_path / "shop.duckdb")
    with Lab(db) as lab:
        build_shop(lab)
        insert_events(lab, [("101", "2026-01-10 09:00:00", "c-ann", "dev-ann", "101")])
    settings = tmp_path / "s.yaml"
    settings.write_text("event_identity_cutoff: 2026-01-06T00:00:00Z\n")
    r = cli("migrate", "compare", "--db", db, "--settings", str(settings), "--cohort", COHORT, "--debug")
    assert r.exit_code == 0, r.output
    out = r.output
    assert ("switch to mparticle_id at 2026-01-10T09:00:00Z (from the data: the first identified event keyed by an "
            "existing MPID)") in out
    assert "rates count the Mixpanel profiles with events of the 3 people behind the 4 members of 'Buyers'" in out
    # Ann's MPID profile (the 01-10 event) is a fourth profile: 3 of 4 with a switch, 2 of 3 without
    assert "tie: switch only and switch + Rule end at 75.0%–75.0%, within 0.05 percentage points" in out
    assert "simulate counts the 4 members of 'Buyers' at 2026-01-11T00:00:00Z: 25.0% matched" in out
    assert "1 member has no loaded events" in out
    # --debug: the steps read as a story, with their row counts
    assert "links: existing_mpids 3 → unique_user_identities 3" in out
    assert "person_links 4" in out and "plan0_users: profiles_at" in out
    r = cli("migrate", "compare", "--db", db, "--activity", "repeat", "--end", "2026-01-05")
    assert r.exit_code == 1 and "is not after it, so it would change nothing" in r.output


def test_a_reconciliation_where_most_members_lack_the_event_property_says_the_plans_assume_it():
    """A world whose events never carry $mparticle_user_id: every plan predicted 100% where simulate
    found 5.0%, 75 of 80 members event_property_missing, and nothing said that the plans' rates rest
    on the event rule (a review as an engineer validating a switch)."""
    from cohortlab.migration.validate import Reconciliation

    def text(missing: int) -> str:
        return Reconciliation("Power Users", pd.Timestamp("2026-03-01"), "the data's history: the settings' EIT, "
                              "no switch", 80, 0, 1.0, 0.05, {"event_property_missing": missing}).text

    assert text(75).splitlines()[-1] == (
        "note: most members lack the event rule's $mparticle_user_id, which every plan assumes on each event at or "
        "after the event identity cutoff; if these exports' events never carry it, compare the plans with "
        "`event_identity_cutoff: null` in the settings (--settings)")
    assert "note:" not in text(40)  # half is not most


# --------------------------------------------------------------------------- chart
def test_migration_chart_draws_each_plan_and_marks_the_changes_inside_the_window(world):
    from matplotlib.figure import Figure

    from cohortlab.charts import migration_chart

    switch = MigrationPlan(name="switch", eit_timeline=[{"since": None, "eit": "customer_id"},
                                                        {"since": "2026-01-05", "eit": "mparticle_id"}])
    r = run_plans(world.engine, [switch, plans()[1]], "2025-12-01", "2026-01-14", store=False)
    fig = migration_chart(r.daily, r.plans)
    ax = fig.axes[0]
    assert isinstance(fig, Figure)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["switch", "do nothing"]  # the plans' order, as the table
    # marked: the switch (01-05), do nothing's event rule (01-06) and the switch plan's default
    # one (01-15 00:00, the end of the window's last day)
    marks = sorted(t.get_text().strip() for t in ax.texts)
    assert marks == ["EIT → mparticle_id", "event rule ($mparticle_user_id on events)",
                     "event rule ($mparticle_user_id on events)"]


# --------------------------------------------------------------------------- the report's settings line
def test_the_eit_page_settings_line_separates_what_the_what_if_uses_from_the_sync_settings():
    """The EIT page's header showed protection, sync type, attribute and pauses as if the plans
    depended on them: the what-if uses the fallback, and the event cutoff and EIT
    timeline only for the standard plans (plan files carry their own)."""
    from cohortlab.migration.run import settings_used

    st = {"pauses": [{"start": "2026-02-24", "end": "2026-02-25"}], "sync_type": "one_time",
          "eit_timeline": [{"since": None, "eit": "email"}, {"since": "2026-02-10", "eit": "mparticle_id"}]}
    assert settings_used(st) == (
        "fallback data; event cutoff 2026-01-15 00:00 UTC; EIT email, then mparticle_id from 2026-02-10 00:00 UTC; "
        "not used by the what-if: protection only_update; one-time export at the first run; attribute "
        '"{cohort_name}"; paused 2026-02-24 00:00 UTC to 2026-02-25 00:00 UTC')
    files = settings_used(st, plans_given=True)
    assert files.startswith("fallback data; not used by the what-if: event cutoff 2026-01-15 00:00 UTC (each plan "
                            "has its own); protection only_update")
    assert files.endswith("; EIT email, then mparticle_id from 2026-02-10 00:00 UTC (each plan has its own)")
    # the standard plans carry the settings' timeline before the switch: an email
    # period before it is modelled, nothing to say; a period after it, or a given switch after
    # the settings' own, is not, and the line says which
    later = {"eit_timeline": [{"since": None, "eit": "customer_id"}, {"since": "2026-01-10", "eit": "email"},
                              {"since": "2026-02-10", "eit": "mparticle_id"}]}
    assert settings_used(later).split("; ")[2] == (
        "EIT customer_id, then email from 2026-01-10 00:00 UTC, then mparticle_id from 2026-02-10 00:00 UTC")
    back = {"eit_timeline": [*later["eit_timeline"], {"since": "2026-03-01", "eit": "customer_id"}]}
    assert settings_used(back).split("; ")[2].endswith(
        "(not modelled by the standard plans, which switch once, at 2026-02-10 00:00 UTC: the period customer_id "
        "from 2026-03-01 00:00 UTC)")
    assert settings_used(later, switch="2026-02-20").split("; ")[2].endswith(
        "(not modelled by the standard plans, which switch once, at 2026-02-20 00:00 UTC: the period mparticle_id "
        "from 2026-02-10 00:00 UTC)")
    assert settings_used({"eit_timeline": [{"since": None, "eit": "mparticle_id"}]}, switch="2026-02-20").split("; ")[2] == (
        "EIT mparticle_id (the standard plans start from customer_id)")
    assert "not modelled" not in settings_used(back, plans_given=True)
    assert settings_used(None, plans_given=True, validation=True).startswith(
        "fallback data; event cutoff 2026-01-15 00:00 UTC (the observed side of the validation; each plan has its own)"
        "; not used by the what-if: protection")


def test_cli_validate_at_a_time_without_members_is_one_error_line(tmp_path):
    """`migrate validate --at` before the cohort's first snapshot printed an empty confusion table
    and "no cohort members to compare", exit 0; `simulate` refuses it in one line."""
    db = str(tmp_path / "shop.duckdb")
    with Lab(db) as lab:
        build_shop(lab)
    plan = tmp_path / "p.yaml"
    plan.write_text("name: do nothing\n")
    r = CliRunner().invoke(main, ["migrate", "validate", "--db", db, "--plan", str(plan), "--cohort", COHORT,
                                  "--at", "2025-01-01T00:00:00Z"])
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr == "error: cohort 'Buyers' has no members at 2025-01-01 00:00:00 UTC; try another --at\n"
    r = CliRunner().invoke(main, ["migrate", "validate", "--db", db, "--plan", str(plan), "--cohort", COHORT])
    assert r.exit_code == 0 and "observed match rate" in r.output


def test_numeric_customer_ids_before_the_first_mpid_keyed_event_show_the_switch(lab):
    """Customer ids that are numbers (a database id) are valid MPID texts: a numeric key counts as
    a customer id when it is a user identity of a loaded profile, so the data shows its switch;
    one that is no known identity nor an existing MPID counts as a deleted profile's MPID."""
    insert_profiles(lab, {55: [("user", "customer_id", "1001")], 66: [("user", "customer_id", "1002")]})
    insert_events(lab, [("1001", "2026-01-01 00:00:00", "1001", "d1"), ("66", "2026-01-05 00:00:00", "1002", "d2")])
    assert str(first_mpid_keyed_event(lab.engine)) == "2026-01-05 00:00:00+00:00" and has_mpid_keyed_event(lab.engine)
    # the same history, the first key no known identity (a deleted profile's MPID): no switch
    lab.engine.execute("DELETE FROM mpa_identities WHERE value = '1001'")
    assert first_mpid_keyed_event(lab.engine) is None and not has_mpid_keyed_event(lab.engine)


def test_the_report_page_says_one_profile_and_one_user_in_the_singular():
    """The EIT page's summary wrote "1 split profiles; 1 users can never be fixed; 1 users
    become matchable" (the report's other pages count in the right number: summaries.counted)."""
    from cohortlab.escaping import unescape_md
    from cohortlab.migration.plans import standard_plans
    from cohortlab.report import metrics, summaries

    plans = standard_plans("2026-02-15T00:00:00Z")[:1]
    days = pd.to_datetime(["2026-02-14", "2026-02-15", "2026-02-16"])
    daily = pd.DataFrame([{"day": d, "plan": "switch only", "members": 1, "matched": m, "match_rate": float(m),
                           "split_profiles": 1} for d, m in zip(days, [0, 1, 1])])
    summary = pd.DataFrame({"plan": ["switch only"], "first_change": [pd.Timestamp("2026-02-15")], "members_end": [1],
                            "matched_end": [1], "final_match_rate": [1.0], "split_profiles_end": [1],
                            "never_fixable_users": [1], "users_needing_reexport": [1], "reexport_users": [0],
                            "days_to_90pct": [1.0], "days_to_99pct": [1.0]})
    f = metrics.migration_figures(summary, daily, switch="2026-02-15T00:00:00Z", switch_source="the switch parameter",
                                  start="2026-02-14", end="2026-02-16", plan_list=plans)
    text = unescape_md(summaries.migration_summary(f))
    assert ("- **switch only**: 100.0% of 1 Mixpanel profile at the end; 1 split profile; 1 user can never be fixed "
            "(inactive after the plan's change); 1 user becomes matchable only after they were sent (they reach "
            "mParticle with a re-export); reaches 90% of its final rate 1 day after its first change") in text


# --------------------------------------------------------------------------- the settings' timeline
# customer_id, then email from 2025-12-15, then mparticle_id from 2026-01-15
TIMELINE = {"event_identity_cutoff": None,
            "eit_timeline": [{"since": None, "eit": "customer_id"}, {"since": "2025-12-15", "eit": "email"},
                             {"since": "2026-01-15", "eit": "mparticle_id"}]}
TIMELINE_EVENTS = [  # as Mixpanel holds them under that timeline
    ("c-ann", "2025-12-01 10:00:00", "c-ann", "dev-ann"),
    ("ann@x.io", "2025-12-20 10:00:00", "ann@x.io", "dev-ann"),
    ("101", "2026-01-20 10:00:00", "101", "dev-ann"),
    ("c-bob", "2025-12-02 10:00:00", "c-bob", "dev-bob"),
    ("bob@x.io", "2025-12-21 10:00:00", "bob@x.io", "dev-bob"),
]
TIMELINE_PROFILES = {101: [("user", "customer_id", "c-ann"), ("user", "email", "ann@x.io")],
                     102: [("user", "customer_id", "c-bob"), ("user", "email", "bob@x.io")]}


def test_the_standard_plans_carry_the_settings_timeline_before_the_switch():
    """The standard plans took only the first EIT of the settings' timeline: customer_id, then
    email from a day, then mparticle_id was predicted as if customer_id held until the switch
    (Ann's and Bob's email profiles missing, 4 profiles where Mixpanel holds 5).
    They carry the timeline before the switch; it is no change of theirs ("do nothing" stays the
    plan without a change, days to 90% count from the switch)."""
    from cohortlab.migration.switch import plans_around
    from cohortlab.report import insights

    with Lab() as lab:
        insert_events(lab, TIMELINE_EVENTS)
        insert_profiles(lab, TIMELINE_PROFILES)
        c = compare(lab.engine, settings=TIMELINE, store=False)
        s = c.summary.set_index("plan")
        # as Mixpanel holds them: c-ann, ann@x.io, 101, c-bob, bob@x.io
        assert s.loc["switch only", "members_end"] == 5 and s.loc["switch only", "matched_end"] == 1
        assert s.loc["do nothing", "members_end"] == 4 and s.loc["Rule only", "members_end"] == 4
        assert s.loc["switch only", "split_profiles_end"] == 2
        assert pd.isna(s.loc["do nothing", "first_change"]) and pd.isna(s.loc["do nothing", "days_to_90pct"])
        assert s.loc["switch only", "first_change"] == pd.Timestamp("2026-01-15")
        # the stored users of the plan: every distinct_id Mixpanel holds
        run = run_plans(lab.engine, c.run.plans[:1], "2025-12-01", "2026-01-20", settings=TIMELINE)
        keys = set(lab.engine.query_df("SELECT distinct_id FROM migration_users")["distinct_id"])
        assert keys == {"c-ann", "ann@x.io", "101", "c-bob", "bob@x.io"}
        run.drop_tables(lab.engine)
        # the report's EIT page builds the same plans
        at = c.switch.at
        assert insights.migration_plans(None, switch_at=at, settings=TIMELINE) == plans_around(at, settings=TIMELINE)
        assert [p.eit_at(pd.Timestamp("2025-12-20", tz="UTC").to_pydatetime()) for p in c.run.plans] == ["email"] * 4


def test_migrate_compare_says_what_of_the_settings_timeline_the_standard_plans_do_not_model(tmp_path):
    """`migrate compare --settings` states what the report's EIT header states: nothing when the
    standard plans model the whole timeline, else the periods they do not."""
    import yaml

    db = str(tmp_path / "t.duckdb")
    with Lab(db) as lab:
        insert_events(lab, TIMELINE_EVENTS)
        insert_profiles(lab, TIMELINE_PROFILES)
    st = tmp_path / "settings.yaml"
    st.write_text(yaml.safe_dump(TIMELINE))
    r = CliRunner().invoke(main, ["migrate", "compare", "--db", db, "--settings", str(st)])
    assert r.exit_code == 0, r.output
    assert "the settings' EIT timeline" not in r.output
    assert [ln.split()[3] for ln in r.output.splitlines() if ln.startswith("switch only")] == ["5"]  # profiles
    back = {**TIMELINE, "eit_timeline": [*TIMELINE["eit_timeline"], {"since": "2026-01-19", "eit": "customer_id"}]}
    st.write_text(yaml.safe_dump(back))
    r = CliRunner().invoke(main, ["migrate", "compare", "--db", db, "--settings", str(st)])
    assert r.exit_code == 0, r.output
    from cohortlab.migration.run import settings_used

    note = ("the settings' EIT timeline: not modelled by the standard plans, which switch once, at 2026-01-15 00:00 "
            "UTC: the period customer_id from 2026-01-19 00:00 UTC")
    assert note in r.output.splitlines()
    assert note.removeprefix("the settings' EIT timeline: ") in settings_used(back)


# --------------------------------------------------------------------------- validation over several cohorts
def test_a_validation_over_two_cohorts_is_said_per_cohort_from_the_counts_of_its_table():
    """The EIT page's summary line and its index card pooled the validation of every cohort into
    one figure: "of 6 cohort members" for 4 people (c-ann and c-bob, members of both cohorts,
    counted twice) and one rate mixing the two cohorts' rates, its counts rebuilt as rate ×
    members. Each cohort is said on its own, from the counts of the page's table
    (those of its ValidationResult), a member of both cohorts in each."""
    from cohortlab.report import insights, metrics, summaries

    with Lab() as lab:
        build_shop(lab)
        lab.engine.execute("INSERT INTO mp_cohort_snapshots (snapshot_id, cohort_name, as_of, member_count) "
                           "VALUES (2, 'Regulars', CAST('2026-01-11' AS TIMESTAMP), 2)")
        for d in ("c-ann", "c-cat"):
            lab.engine.execute("INSERT INTO mp_cohort_members (snapshot_id, cohort_name, as_of, distinct_id) "
                               "VALUES (2, 'Regulars', CAST('2026-01-11' AS TIMESTAMP), ?)", [d])
        ps = plans()
        c = compare(lab.engine, ps, start="2025-12-01", end="2026-01-10", settings=SETTINGS, store=False)
        results = {n: lab.validate_migration(ps[0], n, settings=SETTINGS) for n in (COHORT, "Regulars")}
    v = insights.MigrationValidation(ps[0].name, results)
    f = metrics.migration_figures(c.summary, c.daily, v, start="2025-12-01", end="2026-01-10", plan_list=ps)
    val = f["validation"]
    assert not {"members", "predicted_matched", "observed_matched", "predicted_match_rate"} & set(val)  # no pool
    rows = {r["cohort_name"]: r for r in val["cohorts"]}
    for name, r in results.items():
        assert (rows[name]["members"], rows[name]["predicted_matched"], rows[name]["observed_matched"]) == (
            r.members, r.predicted_matched, r.observed_matched)
        assert r.predicted_matched == int(r.users["predicted_matched"].sum())
        assert r.observed_matched == int(r.users["observed_matched"].sum())
    assert (rows[COHORT]["members"], rows["Regulars"]["members"]) == (4, 2)
    line = summaries.migration_summary(f).splitlines()[-1]
    words = [summaries._validation_words(rows[n]) for n in (COHORT, "Regulars")]
    assert line == ("Validation of **Rule only** against the exports taken after the switch, per cohort (a member of "
                    f"several is a member of each): {words[0]}; {words[1]}.")
    b = rows[COHORT]
    assert words[0] == (f"**{COHORT}**: of 4 members, {b['predicted_matched']} "
                        f"({summaries.pct(b['predicted_match_rate'])} of its members) predicted to match, "
                        f"{b['observed_matched']} ({summaries.pct(b['observed_match_rate'])}) observed")
    # the index card: the cohort farthest from its prediction, its own two rates (a cohort's name is a
    # value, never in a label: labels are not pseudonymised)
    head = metrics.figures_headline_migration(f)
    far = max(rows.values(), key=lambda r: abs(r["predicted_match_rate"] - r["observed_match_rate"]))
    assert head["validated cohort farthest from its prediction"] == far["cohort_name"]
    assert (head["its observed match rate (of its members)"], head["its predicted match rate (of its members)"]) == (
        far["observed_match_rate"], far["predicted_match_rate"])
    assert not any(k.endswith("(of cohort members)") for k in head)


# --------------------------------------------------------------------------- SDK code: the app's events only
def test_a_sdk_plan_writes_only_from_app_events_as_the_identity_gaps_sdk_code_remedy_does():
    """The what-if's SDK code wrote ``$mparticle_user_id`` from every logged-in event, the
    identity-gaps page's ``sdk_code`` remedy only from events an app sends (a ``$device_id``):
    one report told two stories of one remedy (C1, active only server-side, was
    matched by a ``kind: sdk`` plan and recovered by no SDK code on the other page). One rule
    (``cohortlab.identifiers.app_event_sql``) for both; a Rule writes from every logged-in event."""
    from cohortlab.migration.plans import MigrationPlan

    with Lab() as lab:
        insert_events(lab, [("C1", "2026-03-03 10:00:00", "C1", None),      # server-side: no $device_id
                            ("C2", "2026-03-03 10:00:00", "C2", "dev-2"),   # from the app
                            ("C3", "2026-03-01 10:00:00", "C3", "dev-3"),   # from the app, before the start
                            ("C3", "2026-03-04 10:00:00", "C3", "")])       # server-side (an empty $device_id)
        insert_profiles(lab, {101: [("user", "customer_id", "C1")], 102: [("user", "customer_id", "C2")],
                              103: [("user", "customer_id", "C3")]})
        for d in ("C1", "C2", "C3"):
            lab.engine.execute("INSERT INTO mp_profiles (distinct_id) VALUES (?)", [d])
        lab.engine.execute("INSERT INTO mp_cohort_snapshots (snapshot_id, cohort_name, as_of, member_count) "
                           "VALUES (1, 'Buyers', CAST('2026-03-05' AS TIMESTAMP), 3)")
        for d in ("C1", "C2", "C3"):
            lab.engine.execute("INSERT INTO mp_cohort_members (snapshot_id, cohort_name, as_of, distinct_id) "
                               "VALUES (1, 'Buyers', CAST('2026-03-05' AS TIMESTAMP), ?)", [d])
        since = "2026-03-02T00:00:00Z"
        ps = [MigrationPlan(name=k, eit_timeline="customer_id", remediation={"kind": k, "since": since},
                            event_identity_cutoff=None) for k in ("sdk", "rule")]
        ps.append(MigrationPlan(name="sdk after the rule", eit_timeline="customer_id", event_identity_cutoff=None,
                                remediation=[{"kind": "rule", "since": since}, {"kind": "sdk", "since": "2026-03-03"}]))
        run = run_plans(lab.engine, ps, "2026-03-01", "2026-03-05")
        users = lab.engine.query_df("SELECT plan, distinct_id, status FROM migration_users")
        run.drop_tables(lab.engine)
        matched = {p: set(g.loc[g["status"] == "matched", "distinct_id"]) for p, g in users.groupby("plan")}
        assert matched == {"sdk": {"C2"}, "rule": {"C1", "C2", "C3"}, "sdk after the rule": {"C1", "C2", "C3"}}
        # the identity-gaps page's remedies, on the same events: SDK code reaches C2 alone, a Rule all three
        rem = lab.remedies("Buyers", at="2026-03-05", settings={"cadence": "1d", "event_identity_cutoff": None},
                           since=since).set_index("key")
        assert "on 1 unmatched member with a logged-in event from the app" in rem.loc["sdk_code", "note"]
        assert "on 3 unmatched members with a logged-in event since then" in rem.loc["rule", "note"]


# --------------------------------------------------------------------------- the Rule: one rule on both pages
RULE_EVENTS = [  # distinct_id, time, $user_id, $device_id
    ("cA", "2026-03-01 08:00:00", "cA", "dA"),           # A logs in before the Rule's start
    ("cA", "2026-03-03 10:00:00", None, "dA"),           # ...then only anonymous (merged under cA: no $user_id)
    ("$device:dB", "2026-03-03 10:00:00", None, "dB"),   # B: anonymous only; MPID 202 holds the device dB
    ("cC", "2026-03-03 10:00:00", "cC", None),           # C: logged in, server-side (no $device_id)
    ("cD", "2026-03-03 10:00:00", "cD", "dD"),           # D: logged in, from the app
]
RULE_PROFILES = {201: [("user", "customer_id", "cA")], 202: [("device", "android_uuid", "dB")],
                 203: [("user", "customer_id", "cC")], 204: [("user", "customer_id", "cD")]}


def test_the_rule_writes_from_logged_in_events_and_never_on_a_device_profile_on_both_pages():
    """The identity-gaps page's ``rule`` remedy wrote ``$mparticle_user_id`` from any event of a
    member, ``$device:`` members linked by a device identity included, while the what-if's Rule
    plans write from logged-in events only (a ``$user_id``) and never on a ``$device:`` profile:
    on this world the report said "the Rule brings 4" on one page and 2 on the other. mParticle forwards a user's profile data to Mixpanel only for a logged-in
    user ("Create Profile Only If Logged In", docs/rules.md#remediations): one rule
    (``cohortlab.identifiers.remediation_event_sql``) for both. C (server-side) and D (the app)
    are reached by a Rule, D alone by SDK code; A (anonymous since the start) and B (a
    ``$device:`` profile) by neither."""
    since = "2026-03-02T00:00:00Z"
    members = ["cA", "$device:dB", "cC", "cD"]
    with Lab() as lab:
        insert_events(lab, RULE_EVENTS)
        insert_profiles(lab, RULE_PROFILES)
        for d in members:
            lab.engine.execute("INSERT INTO mp_profiles (distinct_id) VALUES (?)", [d])
        lab.engine.execute("INSERT INTO mp_cohort_snapshots (snapshot_id, cohort_name, as_of, member_count) "
                           "VALUES (1, 'Buyers', CAST('2026-03-01' AS TIMESTAMP), 4)")
        for d in members:
            lab.engine.execute("INSERT INTO mp_cohort_members (snapshot_id, cohort_name, as_of, distinct_id) "
                               "VALUES (1, 'Buyers', CAST('2026-03-01' AS TIMESTAMP), ?)", [d])
        ps = [MigrationPlan(name=k, eit_timeline="customer_id", event_identity_cutoff=None,
                            remediation=[] if k == "nothing" else {"kind": k, "since": since})
              for k in ("rule", "sdk", "nothing")]
        run = run_plans(lab.engine, ps, "2026-03-01", "2026-03-07")
        users = lab.engine.query_df("SELECT plan, distinct_id, status FROM migration_users")
        last = run.daily[run.daily["day"] == run.daily["day"].max()].set_index("plan")
        run.drop_tables(lab.engine)
        matched = {p: set(g.loc[g["status"] == "matched", "distinct_id"]) for p, g in users.groupby("plan")}
        assert matched == {"rule": {"cC", "cD"}, "sdk": {"cD"}, "nothing": set()}
        assert (last.loc["rule", "matched_people"], last.loc["sdk", "matched_people"]) == (2, 1)
        # the identity-gaps page: the members' users each remedy brings into the audience
        rem = lab.remedies("Buyers", at="2026-03-07", settings={"cadence": "1d", "event_identity_cutoff": None},
                           since=since).set_index("key")
        assert dict(rem.recovered) == {"rule": 0, "rule_reexport": 2, "sdk_code": 0, "sdk_reexport": 1,
                                       "switch_eit": 0, "reexport": 0, "reconnect": 0}
        assert rem.loc["rule_reexport", "people_after"] == 2  # 203 (C) and 204 (D)
        assert "on 2 unmatched members with a logged-in event since then" in rem.loc["rule", "note"]
        full = value_remedies(lab.engine, "Buyers", "2026-03-07", {"cadence": "1d", "event_identity_cutoff": None},
                              since=since, _full=True).set_index("key")
        assert dict(full.recovered) == dict(rem.recovered)
        # data without any $user_id: an event keyed by no device id counts as logged in, so
        # A's anonymous event shown under cA cannot be told from a logged-in one (the assumption the
        # note names): A, C and D on both pages; B (a $device: profile) on neither
        lab.engine.execute("UPDATE mp_events SET user_id = NULL")
        rem = lab.remedies("Buyers", at="2026-03-07", settings={"cadence": "1d", "event_identity_cutoff": None},
                           since=since).set_index("key")
        assert rem.loc["rule_reexport", "recovered"] == 3
        assert ("on 3 unmatched members with a logged-in event since then and a known MPID (no event of the data "
                "carries a $user_id, as under Original ID Merge") in rem.loc["rule", "note"]
        run = run_plans(lab.engine, ps, "2026-03-01", "2026-03-07")
        users = lab.engine.query_df("SELECT plan, distinct_id, status FROM migration_users")
        run.drop_tables(lab.engine)
        matched = {p: set(g.loc[g["status"] == "matched", "distinct_id"]) for p, g in users.groupby("plan")}
        assert matched == {"rule": {"cA", "cC", "cD"}, "sdk": {"cA", "cD"}, "nothing": set()}
