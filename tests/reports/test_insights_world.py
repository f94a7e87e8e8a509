"""report metrics (aggregations), notebook helpers (redaction, metrics.json) on hand-built frames, and load_world on the
repository's sample exports (data/)."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from cohortlab import Lab
from cohortlab.report import metrics
from cohortlab.report import notebook as ui
from cohortlab.loaders.folder import as_of_from_name, load_world
from cohortlab.simulation.remedies import REMEDY_COLUMNS

DATA = Path(__file__).resolve().parents[2] / "data"


def _res(rows):
    cols = ["cohort_name", "distinct_id", "identifier_source", "identifier", "mpid", "status", "gap_reason",
            "last_seen", "active_after_cutoff", "recoverable_via", "email", "as_of"]
    return pd.DataFrame([dict(zip(cols, r)) for r in rows], columns=cols)


RES = _res([
    ("A", "u1", "mparticle_user_id", "1", 1, "matched", None, None, True, None, "a@x.com", None),
    ("A", "u2", "mparticle_user_id", "1", 1, "matched", None, None, True, None, None, None),
    ("A", "u3", "distinct_id", "c-3", None, "unmatched", "distinct_id_not_mpid", None, True, "customer_id", None, None),
    ("A", "bob@x.com", "distinct_id", "bob@x.com", None, "unmatched", "distinct_id_not_mpid", None, False, "email",
     "bob@x.com", None),
    ("A", "u5", "mparticle_user_id", "undefined", None, "unmatched", "malformed_mparticle_user_id", None, True, None,
     None, None),
    ("B", "u1", "mparticle_user_id", "1", 1, "matched", None, None, True, None, None, None),
    ("B", "u6", "event_property", "7000000000000000000", None, "unmatched", "mpid_precision_loss", None, None,
     "customer_id", None, None),
])


def test_match_rates_by_cohort_and_source():
    r = metrics.match_rates(RES).set_index("cohort_name")
    assert r.loc["A", ["members", "matched", "unmatched"]].tolist() == [5, 2, 3]
    assert r.loc["B", "match_rate"] == 0.5
    s = metrics.match_rates(RES, "identifier_source").set_index("identifier_source")
    assert s.loc["distinct_id", "matched"] == 0 and s.loc["mparticle_user_id", "members"] == 4


def test_gap_counts_activity_shared_and_junk():
    assert metrics.gaps_by_reason(RES).values.tolist() == [
        ["distinct_id_not_mpid", 2], ["malformed_mparticle_user_id", 1], ["mpid_precision_loss", 1]]
    rec = metrics.gaps_by_recoverable(RES)
    assert dict(zip(rec["recoverable_via"], rec["users"])) == {"customer_id": 2, "email": 1, None: 1}
    act = metrics.activity(RES)
    assert act["users"].sum() == 4
    assert act[(act.gap_reason == "mpid_precision_loss")]["active_after_cutoff"].tolist() == [False]  # None = False
    shared = metrics.shared_mpids(RES, with_ids=True)
    assert shared.values.tolist() == [["A", 1, 2, "u1, u2"]]
    assert metrics.shared_mpid_distribution(shared).values.tolist() == [[2, 1]]
    assert metrics.junk_values(RES).values.tolist() == [["undefined", 1]]
    assert metrics.precision_loss(RES)["distinct_id"].tolist() == ["u6"]


def remedy_rows(rows):
    """value_remedies rows from (cohort, remedy, key, audience_before, audience_after, recovered,
    note[, gained[, applies]]); the people before are the audience before, nothing stale, unless
    ``gained`` differs; a remedy applies unless told."""
    out = []
    for c, remedy, key, before, after, recovered, note, *rest in rows:
        g = rest[0] if rest and rest[0] is not None else after - before
        applies = rest[1] if len(rest) > 1 else True
        out.append((c, remedy, key, before, after, g, before, before + recovered, recovered, applies, note))
    return pd.DataFrame(out, columns=["cohort", *REMEDY_COLUMNS])


def test_remedies_sum_the_simulated_recoveries_over_cohorts():
    values = remedy_rows([
        ("A", "mParticle Rule, then re-export the cohort", "rule_reexport", 3, 5, 2, "writes on 2"),
        ("B", "mParticle Rule, then re-export the cohort", "rule_reexport", 1, 3, 1, "writes on 1", 2),  # 1 stale
        ("A", "Switch External Identity Type to mParticle ID", "switch_eit", 3, 4, 1, "1 split profiles"),
        ("B", "Switch External Identity Type to mParticle ID", "switch_eit", 1, 1, 0, "0 split profiles"),
    ])
    rem = metrics.remedies(RES, values).set_index("key")
    # users: the members' users recovered; gained: every profile made true (a stale one too)
    assert rem.loc["rule_reexport", ["users", "gained", "audience_before", "audience_after"]].tolist() == [3, 4, 4, 8]
    assert rem.loc["switch_eit", "note"] == "A: 1 split profiles; B: 0 split profiles"
    assert metrics.remedies(RES, values).attrs == {"never_fixable": 2, "not_in_mparticle": 1}
    assert metrics.remedies(RES).empty  # not simulated: no value at all, never a proxy
    f = metrics.identity_gaps_figures(RES, metrics.shared_mpids(RES), remedy_values=values)
    assert (f["rule_fixable"], f["rule_next_sends"], f["reexport_alone"]) == (3, 0, 0)
    # the card shows the re-export's own recovery beside the Rule + re-export's: a reader took the
    # Rule for the cause of what a re-export alone recovers (pending members sent again)
    with_reexport = metrics.identity_gaps_figures(RES, metrics.shared_mpids(RES), remedy_values=pd.concat([
        values, remedy_rows([("A", "Re-export the cohort (no identifier fixed)", "reexport", 3, 4, 1, "re-sends")])]))
    card = metrics.figures_headline_identity_gaps(with_reexport)
    # each cohort's own rows beside the sums (an analyst asked about one cohort), the remedies
    # that apply; none for one cohort, whose table is its own
    assert [(r["cohort"], r["users"], r["gained"]) for r in f["remedies_by_cohort"]
            if r["remedy"] == "mParticle Rule, then re-export the cohort"] == [("A", 2, 2), ("B", 1, 2)]
    assert metrics.remedies_by_cohort(values[values["cohort"] == "A"]) == []
    assert (card["recovered by a Rule + re-export (simulated)"],
            card["by a re-export alone, no identifier fixed (simulated)"]) == (3, 1)


def test_remedies_not_simulated_give_no_figure_not_a_zero():
    """On the Spark engine the remedies are not simulated: the headline's "recovered by a Rule +
    re-export (simulated)" has no value (it said 0, and the index showed −2 against a DuckDB run)."""
    f = metrics.identity_gaps_figures(RES, metrics.shared_mpids(RES), remedy_values=None)
    assert (f["rule_fixable"], f["rule_next_sends"], f["reexport_alone"]) == (None, None, None)
    assert metrics.figures_headline_identity_gaps(f)["recovered by a Rule + re-export (simulated)"] is None
    assert metrics.figures_headline_identity_gaps(f)["by a re-export alone, no identifier fixed (simulated)"] is None


def test_a_remedy_applies_when_it_was_simulated_for_some_cohort():
    values = remedy_rows([
        ("A", "Reconnect the export after the pause", "reconnect", 3, 3, 0, "no pause in the settings", None, False),
        ("B", "Reconnect the export after the pause", "reconnect", 1, 1, 0, "no pause in the settings", None, False),
        ("A", "Re-export the cohort", "reexport", 3, 3, 0, "no run at or before the as-of time", None, False),
        ("B", "Re-export the cohort", "reexport", 1, 2, 1, "re-export at ... re-sends every member"),
    ])
    rem = metrics.remedies(RES, values).set_index("key")
    assert rem["applies"].to_dict() == {"reconnect": False, "reexport": True}
    assert rem.loc["reexport", "users"] == 1


def test_redact_drops_personal_columns_and_pseudonymises_values():
    out = ui.redact(RES, known={"+15551234567"})
    assert "email" not in out.columns
    assert "bob@x.com" not in out.to_string()
    assert out.loc[3, "distinct_id"].startswith("anon-") and out.loc[0, "distinct_id"] == "u1"
    assert ui.redact(RES).loc[3, "distinct_id"] == out.loc[3, "distinct_id"]  # stable: rows can be joined
    phones = ui.redact(pd.DataFrame({"identifier": ["+15551234567", "5551234567", "-42"]}),
                       known={"5551234567"})
    assert [v[:5] for v in phones["identifier"]] == ["anon-", "anon-", "-42"]
    assert len(set(phones["identifier"][:2])) == 2
    assert ui.redact(RES, show_personal_data=True) is RES


def test_write_metrics_is_plain_json(tmp_path):
    p = ui.write_metrics(tmp_path, "x", title="T", summary="**12** users\nmore",
                               headline={"n": pd.Series([3]).iloc[0], "rate": float("nan")},
                               frame=pd.DataFrame({"t": pd.to_datetime(["2026-03-01"]), "v": [1]}))
    doc = json.loads(p.read_text())
    assert doc["summary"] == "12 users" and doc["headline"] == {"n": 3, "rate": None}
    assert doc["metrics"]["frame"] == [{"t": "2026-03-01T00:00:00", "v": 1}]


def test_as_of_from_file_names():
    assert as_of_from_name("power_users_2026-03-08.jsonl") == "2026-03-08T00:00:00+00:00"
    assert as_of_from_name("2026-03-01T12-30-00Z.json") == "2026-03-01T12:30:00+00:00"
    assert as_of_from_name("20260301T120000Z.csv") == "2026-03-01T12:00:00+00:00"
    assert as_of_from_name("members.json") is None


def test_as_of_from_file_names_honours_an_offset_and_skips_other_digits():
    # a time with an offset is that instant, not the same wall time in UTC
    assert as_of_from_name("2026-03-01T05:30:00+05:30.json") == "2026-03-01T00:00:00+00:00"
    assert as_of_from_name("2026-03-01T05-30-00+05-30.csv") == "2026-03-01T00:00:00+00:00"
    assert as_of_from_name("20260228T190000-0500.json") == "2026-03-01T00:00:00+00:00"
    # a page number after the time is no offset
    assert as_of_from_name("2026-03-01T00-00-00-0001.json") == "2026-03-01T00:00:00+00:00"
    # digits of an id or an epoch are no date: the date further on is the snapshot's
    assert as_of_from_name("cohort-1234567-2026-03-01.json") == "2026-03-01T00:00:00+00:00"
    assert as_of_from_name("members_1772323200.json") is None
    assert as_of_from_name("2026-13-01_2026-03-01.json") == "2026-03-01T00:00:00+00:00"


def test_load_world_reads_the_snapshot_time_of_a_file_name_with_an_id_and_an_offset(tmp_path):
    members = tmp_path / "mixpanel" / "members" / "power-users"
    members.mkdir(parents=True)
    page = {"page": 0, "status": "ok", "results": [{"$distinct_id": "u1", "$properties": {}}]}
    (members / "cohort-1234567-2026-03-01.json").write_text(json.dumps(page))
    (members / "2026-03-02T05:30:00+05:30.json").write_text(json.dumps(page))
    with Lab() as lab:
        load_world(lab, tmp_path)
        snaps = lab.sql("SELECT as_of FROM mp_cohort_snapshots ORDER BY 1")
        assert list(pd.to_datetime(snaps["as_of"])) == [pd.Timestamp("2026-03-01"), pd.Timestamp("2026-03-02")]


@pytest.mark.skipif(not (DATA / "mixpanel" / "members").is_dir(), reason="sample data not present")
def test_load_world_on_the_sample_exports():
    with Lab() as lab:
        report = load_world(lab, DATA)
        kinds = report.by_kind()
        assert {"mparticle-profiles", "mixpanel-events", "mixpanel-profiles", "mixpanel-members",
                "mixpanel-webhooks", "mixpanel-cohorts"} <= set(kinds)
        snaps = lab.sql("SELECT cohort_name, as_of FROM mp_cohort_snapshots ORDER BY 1, 2")
        # the CSV has as_of inside, the JSONL takes it from its name; cohorts from the file names
        assert set(snaps["cohort_name"]) == {"Power Users", "Churn Risk"}
        assert len(snaps) == 3
        assert pd.Timestamp("2026-03-08") in set(pd.to_datetime(snaps["as_of"]))
        # the READMEs and the remediation plans beside the exports are not loaded, and said so
        assert {p.name for p in report.ignored if p.suffix != ".yaml"} == {"README.md"}
        assert "loaded" in str(report) and "not loaded:" in str(report) and "README.md" in str(report)


def test_load_world_needs_export_folders(tmp_path):
    with Lab() as lab, pytest.raises(FileNotFoundError, match="mixpanel"):
        load_world(lab, tmp_path)


def test_dollars_outside_code_are_escaped_for_markdown():
    from cohortlab.report.notebook import _escape_dollars

    assert _escape_dollars("the $a and $b") == r"the \$a and \$b"
    assert _escape_dollars("code `$a` and $b") == r"code `$a` and \$b"
    assert _escape_dollars(r"already \$x") == r"already \$x"


def test_the_cutoff_in_the_findings_comes_from_the_settings():
    from cohortlab.report import summaries

    f = metrics.identity_gaps_figures(RES, metrics.shared_mpids(RES))
    default = summaries.identity_gaps_summary(f)
    moved = summaries.identity_gaps_summary(f, {"event_identity_cutoff": "2026-02-20T06:00:00Z"})
    off = summaries.identity_gaps_summary(f, {"event_identity_cutoff": None})
    assert "2026-01-15 00:00 UTC cutoff" in default
    assert "2026-02-20 06:00 UTC cutoff" in moved and "2026-01-15" not in moved
    assert "2026-01-15" not in off and "off in these settings" in off


def test_findings_rank_every_waterfall_step_by_size_with_what_fixes_it():
    from cohortlab.report import summaries

    waterfall = pd.DataFrame([
        ("members", "Mixpanel cohort members", "total", 5),
        ("unmatched:distinct_id_not_mpid", "x", "minus", 2),
        ("unmatched:malformed_mparticle_user_id", "x", "minus", 1),
        ("shared_mpid", "x", "minus", 1),
        ("should_be_true", "x", "total", 1),
        ("not_yet_true", "x", "minus", 0),
        ("stale_true", "x", "plus", 3),
        ("audience", "x", "total", 4),
    ], columns=["step", "label", "kind", "count"])
    losses = metrics.ranked_losses(waterfall)
    assert [(x["step"], x["users"]) for x in losses] == [
        ("stale_true", 3), ("unmatched:distinct_id_not_mpid", 2), ("shared_mpid", 1),
        ("unmatched:malformed_mparticle_user_id", 1)]
    # what fixes each step; what a Rule gains is the identity-gaps page's simulated figure, not
    # estimated here (a figure shown in two places is computed once)
    assert {x["step"]: x["remedy"] for x in losses} == {
        "stale_true": "re_export", "unmatched:distinct_id_not_mpid": "rule", "shared_mpid": "merge_profiles",
        "unmatched:malformed_mparticle_user_id": "rule"}
    assert all("remedy_users" not in x for x in losses)
    assert losses[0]["share_of_members"] == 0.6

    class Sim:
        resolution = RES[RES["cohort_name"] == "A"]
        as_of = None

    Sim.waterfall = waterfall
    text = summaries.match_rates_summary(metrics.match_rates_figures({"A": Sim()}, sent_not_true={}))
    lines = [ln for ln in text.splitlines() if ln.startswith("- ")]
    assert lines[0].startswith("- +3 (60.0% of members): profiles still true although their member left")
    assert "sends the removes that set these **3** profiles false" in lines[0]
    assert lines[1].startswith("- −2 (40.0% of members)")
    assert lines[1].endswith("logged in since the cutoff, `$device:` profiles excepted (†).")
    # the pointer to the simulated figure stands once, below the list, not in every line
    assert text.count("simulated on the identity-gaps page (What each remedy would recover)") == 1
    assert text.splitlines()[-1].startswith("(†) What a Rule or SDK code recovers")
    assert re.findall(r"\d[\d,.]*", lines[1]) == ["2", "40.0"]  # the step's own numbers, no estimate
    assert "shared" not in lines[0] and "no person is lost" in lines[2]
    assert "2 of 5 Mixpanel cohort members (40.0% of members)" in text


def test_tables_for_people():
    df = pd.DataFrame({"members": [1234567, 3], "match_rate": [0.9227, None], "days_to_90pct": [11.0, 2.4],
                       "mpid": [9080350317581164903, -5], "as_of": pd.to_datetime(["2026-03-01 00:00", "2026-03-02 06:30"]),
                       "failed": [True, False]})
    out = ui.format_for_people(df)
    assert out["members"].tolist() == ["1,234,567", "3"]
    assert out["match rate"].tolist() == ["92.3%", "—"]
    assert out["days to 90pct"].tolist() == ["11", "2"]
    assert out["mpid"].tolist() == ["9080350317581164903", "-5"]  # identifiers keep their digits
    assert out["as of"].tolist() == ["2026-03-01 00:00 UTC", "2026-03-02 06:30 UTC"]  # as the sentences write them
    assert out["failed"].tolist() == ["yes", "no"]


def test_the_eit_report_calls_ties_ties():
    from cohortlab.report import summaries

    plans = pd.DataFrame({"plan": ["switch only", "Rule only", "do nothing"], "first_change": [None] * 3,
                          "members_end": [10, 10, 10], "matched_end": [7, 7, 6],
                          "final_match_rate": [0.7, 0.7000001, 0.6], "split_profiles_end": [2, 0, 0],
                          "never_fixable_users": [1, 1, 1], "days_to_90pct": [None] * 3})
    f = metrics.migration_figures(plans, pd.DataFrame(), switch="2026-02-15T00:00:00Z",
                                  switch_source="the data: the first day most events are keyed by an MPID")
    assert f["best"] == ["switch only", "Rule only"]
    text = summaries.migration_summary(f)
    assert text.startswith("**Tie at the end of the window: switch only and Rule only**")
    assert "2026-02-15 00:00 UTC**, from the data" in text
    assert metrics.figures_headline_migration(f)["best plan (tie)"] == "switch only = Rule only"


def test_a_plan_without_changes_makes_nobody_fixed():
    """Users whose identifier matches only after they were sent are "matchable", also under the
    plan that changes nothing (they owe it to the event identity rule): "781 users are fixed only
    after they were sent" read as if doing nothing fixed them."""
    from cohortlab.report import summaries

    text = summaries.migration_summary({"plans": [{
        "plan": "do nothing", "final_match_rate": 0.6, "members_end": 10, "split_profiles_end": 0,
        "never_fixable_users": 1, "users_needing_reexport": 3, "reexport_users": 0}], "best": ["do nothing"],
        "switch": None})
    assert "; 3 users become matchable only after they were sent (they reach mParticle with a re-export)" in text
    assert "fixed only" not in text


def test_the_findings_state_the_simulated_rule_or_that_nothing_was_simulated():
    from cohortlab.report import summaries

    values = remedy_rows([
        ("A", "mParticle Rule: copy the MPID", "rule", 3, 4, 1, "n"),
        ("A", "mParticle Rule, then re-export the cohort", "rule_reexport", 3, 7, 3, "n", 4),  # 1 stale
    ])
    values.attrs["since"] = "2026-01-15T00:00:00+00:00"
    f = metrics.identity_gaps_figures(RES, metrics.shared_mpids(RES), remedy_values=values)
    text = summaries.identity_gaps_summary(f)
    assert "from 2026-01-15 00:00 UTC followed by a re-export brings **3** more of the members' users" in text
    assert "without the re-export **1**" in text
    # RES: 2 unmatched members in mParticle but inactive, 1 not in mParticle (each verb in its number)
    assert "**2** unmatched members are in mParticle but inactive" in text
    assert "; 1 is found under none of their identities" in text
    # a float-rounded $mparticle_user_id hides a real MPID as a junk one does
    assert "hidden by a junk or float-rounded `$mparticle_user_id`, counts here, yet a Rule reaches it" in text
    none = summaries.identity_gaps_summary(metrics.identity_gaps_figures(RES, metrics.shared_mpids(RES)))
    assert "brings" not in none
    assert ("- Remedies were not simulated: each is a simulation of a world of its own, which only the DuckDB "
            "engine makes (`cohortlab remedies --db FILE --cohort NAME` values them).") in none  # why (on Spark)


def test_a_count_takes_its_noun_in_the_right_number():
    from cohortlab.report import summaries

    assert summaries.counted(1, "member") == "1 member"
    assert summaries.counted(0, "member") == "0 members"
    assert summaries.counted(1200, "member", bold=True) == "**1,200** members"
    assert summaries.counted(2, "MPID", "MPIDs") == "2 MPIDs"


PAUSED = "the last run (2026-03-01T00:00:00Z) fails, the export being paused until after the as-of time"


def _rule_values(no_reexport):
    values = remedy_rows([
        ("A", "mParticle Rule, then re-export the cohort", "rule_reexport", 3, 5, 2, "writes on 2"),
        ("B", "mParticle Rule, then re-export the cohort", "rule_reexport", 1, 2, 1, "writes on 1"),
        ("A", "mParticle Rule: copy the MPID into $mparticle_user_id (next sends only)", "rule", 3, 5, 2, "writes"),
        ("B", "mParticle Rule: copy the MPID into $mparticle_user_id (next sends only)", "rule", 1, 2, 1, "writes"),
    ])
    values.attrs = {"since": "2026-01-15T00:00:00", "no_reexport": no_reexport}
    return values


def test_the_rule_remedy_is_not_said_to_be_followed_by_a_reexport_the_paused_export_never_sends():
    """With the export paused at the as-of time (the demo: its last run fails) no re-export
    happens, and each "then re-export" row's note says so; the summary said "followed by a
    re-export brings 13 ...; without the re-export 13" and the card "recovered by a Rule +
    re-export (simulated)", announcing a re-send the simulation does not make."""
    from cohortlab.report import summaries

    f = metrics.identity_gaps_figures(RES, metrics.shared_mpids(RES),
                                      remedy_values=_rule_values({"A": PAUSED, "B": PAUSED}))
    text = summaries.identity_gaps_summary(f)
    assert "followed by a re-export" not in text and "without the re-export" not in text
    assert ("- Simulated, an mParticle Rule writing the MPID into `$mparticle_user_id` from 2026-01-15 00:00 UTC "
            "brings **3** more of the members' users into the audience with the next sends only (a fix reaches "
            "mParticle only when the member is sent again); no re-export is simulated: the last run (2026-03-01 "
            "00:00 UTC) fails, the export being paused until after the as-of time. As on the EIT page, one rule for "
            "a Rule and SDK code: they write from logged-in events only (a `$user_id`; in data without any, an event "
            "keyed by no device id), never onto a `$device:` profile.") in text
    assert list(metrics.figures_headline_identity_gaps(f))[4] == \
        "recovered by a Rule, next sends only: no re-export (simulated)"

    # one cohort without a re-export: the sentence keeps both values and names it
    f = metrics.identity_gaps_figures(RES, metrics.shared_mpids(RES), remedy_values=_rule_values({"A": PAUSED}))
    text = summaries.identity_gaps_summary(f)
    assert ("followed by a re-export (none for A: the last run (2026-03-01 00:00 UTC) fails, the export being "
            "paused until after the as-of time) brings **3** more") in text
    assert list(metrics.figures_headline_identity_gaps(f))[4] == \
        "recovered by a Rule + re-export, none for 1 of 2 cohorts (simulated)"

    # every cohort re-exported: as before
    f = metrics.identity_gaps_figures(RES, metrics.shared_mpids(RES), remedy_values=_rule_values({}))
    assert "followed by a re-export brings **3** more" in summaries.identity_gaps_summary(f)
    assert "recovered by a Rule + re-export (simulated)" in metrics.figures_headline_identity_gaps(f)


def test_the_demo_identity_gaps_page_says_no_reexport_is_simulated(report_run):
    """The demo's export is paused from 2026-02-28 20:00 UTC past its as-of time: the page, its
    card and the remedies table agree that the Rule's figure is the next sends only."""
    from bs4 import BeautifulSoup

    out = report_run["out"]
    doc = json.loads((out / "identity_gaps" / "metrics.json").read_text())
    assert set(doc["metrics"]["no_reexport"]) == {"Power Users", "Recent Purchasers"}
    page = BeautifulSoup((out / "identity_gaps" / "identity_gaps.html").read_text(), "html.parser").get_text(" ")
    page = re.sub(r"\s+", " ", page)
    assert "followed by a re-export" not in page
    assert ("no re-export is simulated: the last run (2026-03-01 00:00 UTC) fails, the export being paused "
            "until after the as-of time") in page
    index = re.sub(r"\s+", " ", BeautifulSoup((out / "index.html").read_text(), "html.parser").get_text(" "))
    assert "recovered by a Rule, next sends only: no re-export (simulated)" in index
    assert "Rule + re-export" not in index


def test_the_not_yet_true_profiles_of_a_sync_without_pauses_were_sent_and_written_false(tmp_path):
    """With every run successful and the last one at the as-of time, every member was sent: a
    matched profile not true was written true, then false (a remove sent for another Mixpanel
    profile of its MPID, a split profile of the migration); none is pending."""
    from cohortlab.report import insights
    from cohortlab.synth import generate

    generate(str(tmp_path / "w"), users=1500, seed=3, config={"scenario": "mid_migration", "cohorts": [
        {"id": 1, "name": "Searchers", "event": "Search", "min_count": 2, "window_days": 30},
        {"id": 2, "name": "Active", "min_count": 5, "window_days": 30}]})
    with Lab(str(tmp_path / "db.duckdb")) as lab:
        load_world(lab, str(tmp_path / "w"), progress=False)
        sims = insights.simulate_all(lab, ["Searchers", "Active"])
        sent = insights.sent_not_true(sims)
        for c, sim in sims.items():
            step = int(sim.waterfall.set_index("step").loc["not_yet_true", "count"])
            assert sent[c] == step
            t = sim.table_names
            rows = lab.engine.query_rows(f"""
                SELECT a.value, a.writes FROM {t['resolution']} r JOIN {t['attribute_state']} a ON a.mpid = r.mpid
                WHERE r.status = 'matched' AND NOT a.value""")
            assert bool(rows) == bool(step) and all(value is False and writes >= 2 for value, writes in rows)
        assert sum(sent.values()) > 0
        f = metrics.match_rates_figures(sims)  # counted by default too
        assert [x.get("sent") for v in f["cohorts"].values() for x in v["losses"] if x["step"] == "not_yet_true"] \
            == [sent[c] for c in sims if sent[c]]


def test_the_remedies_are_ranked_by_what_they_recover():
    """A reader asking "what do we do?" found the remedies in a fixed order (a re-export recovering
    0 above a reconnect recovering 2; a stakeholder's review): the most recovered first, ties in
    the fixed order, a remedy with nothing to act on last."""
    values = pd.DataFrame([
        {"remedy": "Rule", "key": "rule", "recovered": 13, "gained": 13, "audience_before": 232,
         "audience_after": 245, "applies": True, "note": ""},
        {"remedy": "Re-export", "key": "reexport", "recovered": 0, "gained": 0, "audience_before": 232,
         "audience_after": 232, "applies": True, "note": ""},
        {"remedy": "Reconnect", "key": "reconnect", "recovered": 0, "gained": 0, "audience_before": 232,
         "audience_after": 232, "applies": False, "note": "no pause"},
        {"remedy": "Switch", "key": "switch", "recovered": 2, "gained": 2, "audience_before": 232,
         "audience_after": 234, "applies": True, "note": ""},
        {"remedy": "SDK", "key": "sdk", "recovered": 13, "gained": 13, "audience_before": 232,
         "audience_after": 245, "applies": True, "note": ""},
    ])
    assert metrics.remedies(RES, values)["key"].tolist() == ["rule", "sdk", "switch", "reexport", "reconnect"]
    two = pd.concat([values.assign(cohort="B"), values.assign(cohort="A", recovered=[1, 5, 0, 0, 0])])
    rows = metrics.remedies_by_cohort(two)
    assert [(r["cohort"], r["users"]) for r in rows] == [("B", 13), ("B", 13), ("B", 2), ("B", 0),
                                                          ("A", 5), ("A", 1), ("A", 0), ("A", 0)]
