"""The report's figures come from members counted in the database (insights.resolution_counts,
insights.shared_mpid_members), never from one Python row per member, and are the figures the
per-member frames of the Python API give (metrics takes both)."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from cohortlab import Lab
from cohortlab.report import insights, metrics
from cohortlab.simulation.simulate import SimulationResult


@pytest.fixture
def sims(report_run, tmp_path):
    """The demo report's database (600 users, two cohorts) simulated at each cohort's latest data."""
    path = tmp_path / "copy.duckdb"
    shutil.copy(report_run["out"] / "data.duckdb", path)
    with Lab(str(path), read_only=True) as lab:
        yield insights.simulate_all(lab, insights.cohort_names(lab))


def test_counted_members_give_the_figures_of_the_per_member_frames(sims):
    per_member = insights.all_resolution(sims).sort_values(["cohort_name", "distinct_id"], ignore_index=True)
    counted = insights.resolution_counts(sims)
    assert counted["n"].sum() == len(per_member) and len(counted) < len(per_member) / 5
    for with_ids in (False, True):
        expected = metrics.identity_gaps_figures(per_member, metrics.shared_mpids(per_member, with_ids=with_ids))
        got = metrics.identity_gaps_figures(
            counted, metrics.shared_mpids(insights.shared_mpid_members(sims), with_ids=with_ids))
        assert got == expected
    # the world has what each figure counts and lists, so the comparison compared something
    assert expected["precision_loss"] > 0 and expected["malformed_mparticle_user_id"] > 0
    assert expected["shared_mpids"] > 0 and expected["unmatched"] > 0 and expected["in_mparticle"] > 0
    assert metrics.match_rates_figures(sims, None, counted) == metrics.match_rates_figures(sims)


def test_the_notebooks_figures_fetch_no_member_row(sims, monkeypatch):
    def fetched(self):
        raise AssertionError("a resolution table was fetched member by member")

    monkeypatch.setattr(SimulationResult, "resolution", property(fetched))
    counted = insights.resolution_counts(sims)
    f = metrics.identity_gaps_figures(counted, metrics.shared_mpids(insights.shared_mpid_members(sims)))
    m = metrics.match_rates_figures(sims, None, counted)
    assert f["members"] == m["totals"]["members"] == int(counted["n"].sum())
    assert all(metrics.simulation_as_of(s) for s in sims.values())


def test_metrics_count_a_counted_frame_by_its_weights():
    counted = pd.DataFrame({
        "cohort_name": ["A", "A", "A", "B"], "identifier_source": ["mparticle_user_id", "distinct_id", "distinct_id", None],
        "status": ["matched", "unmatched", "orphan_created", "unmatched"],
        "gap_reason": [None, "distinct_id_not_mpid", "mpid_not_found", "malformed_mparticle_user_id"],
        "recoverable_via": [None, "email", None, None], "active_after_cutoff": [True, False, None, True],
        "identifier": [None, None, None, "undefined"], "distinct_id": [None] * 4, "n": [30, 5, 2, 4]})
    r = metrics.match_rates(counted).set_index("cohort_name")
    assert r.loc["A", ["members", "matched", "unmatched", "orphan_created"]].tolist() == [37, 30, 5, 2]
    assert r.loc["B", "members"] == 4 and r.loc["A", "match_rate"] == pytest.approx(30 / 37)
    assert metrics.gaps_by_reason(counted).values.tolist() == [
        ["distinct_id_not_mpid", 5], ["malformed_mparticle_user_id", 4], ["mpid_not_found", 2]]
    assert metrics.junk_values(counted).values.tolist() == [["undefined", 4]]
    a = metrics.activity(counted).set_index(["gap_reason", "active_after_cutoff"])["users"]
    assert a.to_dict() == {("distinct_id_not_mpid", False): 5, ("malformed_mparticle_user_id", True): 4,
                           ("mpid_not_found", False): 2}
    rem = metrics.remedies(counted)
    assert rem.attrs == {"never_fixable": 5, "not_in_mparticle": 6}


@pytest.mark.parametrize("column", [
    pd.Series([True, False, None, True], dtype=object),
    pd.Series([True, False, pd.NA, True], dtype="boolean"),
    pd.Series([1.0, 0.0, float("nan"), 1.0]),
])
def test_a_missing_flag_counts_as_false_whatever_the_column_type(column):
    assert metrics.flags(column).tolist() == [True, False, False, True]
    assert metrics.flags(column).dtype == bool


def test_identity_gaps_say_how_many_members_were_sent_before_their_first_profile_version(tmp_path):
    """A profile export taken after the sends, loaded with its as-of time, leaves the members sent
    earlier without a profile (docs/rules.md#resolution-time): the page says how many, per cohort,
    with the count `cohortlab simulate`'s note gives; nothing is said when none was."""
    from cohortlab.report import summaries
    from tests.simulation.conftest import Data

    (tmp_path / "engage.jsonl").write_text('{"$distinct_id": "p", "$properties": {"$mparticle_user_id": "5"}}\n'
                                           '{"$distinct_id": "q", "$properties": {"$mparticle_user_id": "5"}}\n')
    settings = {"cadence": "1d"}
    with Lab() as lab:
        data = Data(lab)
        data.mpa(5)
        lab.load("mixpanel-profiles", [str(tmp_path / "engage.jsonl")], as_of="2026-03-10T00:00:00Z")
        data.snapshot("Power Users", "2026-03-01", ["p", "q"])
        data.snapshot("Buyers", "2026-03-01", ["p"])
        data.snapshot("Buyers", "2026-03-11", ["p", "q"])  # q sent on Mar 11: its profile was known then
        data.snapshot("Later", "2026-03-11", ["q"])

        def page(at, s=settings, cohorts=("Buyers", "Power Users")):
            sims = insights.simulate_all(lab, cohorts, at=at, settings=s)
            before = insights.sent_before_first_profile(sims)
            f = metrics.identity_gaps_figures(insights.resolution_counts(sims),
                                              metrics.shared_mpids(insights.shared_mpid_members(sims)),
                                              before_first_profile=before)
            return before, f, summaries.identity_gaps_summary(f, s)

        before, f, text = page("2026-03-12")
        assert before == {"Buyers": 1, "Power Users": 2}  # p counts in each of its cohorts, as members do
        assert (f["sent_before_first_profile"], f["sent_before_first_profile_by_cohort"]) == (3, before)
        assert ("- **3** members were sent before their first Mixpanel profile version (Buyers: 1, Power Users: 2), "
                "a profile export with its own as-of time: no profile was known then") in text
        # one cohort of the page's two has them: named (a red team found the sentence naming none)
        assert "- **1** member was sent before its first Mixpanel profile version (Buyers: 1), " in \
            page("2026-03-12", cohorts=("Buyers", "Later"))[2]
        # resolved at the as-of time (Mar 5), not sent: said so (it said "sent")
        text = page("2026-03-05", {**settings, "resolution_time": "as_of"})[2]
        assert "- **3** members were resolved before their first Mixpanel profile version (Buyers: 1, Power " in text
        assert "A profile export taken before the as-of time, loaded with its as-of time" in text
        sims = insights.simulate_all(lab, ["Buyers"], at="2026-03-12", settings=settings)
        uncounted = metrics.identity_gaps_figures(insights.resolution_counts(sims),
                                                  metrics.shared_mpids(insights.shared_mpid_members(sims)))
        assert uncounted["sent_before_first_profile"] is None  # not counted: no value, never a 0
        (tmp_path / "feb.jsonl").write_text('{"$distinct_id": "p", "$properties": {"$mparticle_user_id": "5"}}\n'
                                            '{"$distinct_id": "q", "$properties": {"$mparticle_user_id": "5"}}\n')
        lab.load("mixpanel-profiles", [str(tmp_path / "feb.jsonl")], as_of="2026-02-01T00:00:00Z")
        before, f, text = page("2026-03-12")
        assert before == {} and f["sent_before_first_profile"] == 0 and "first Mixpanel profile version" not in text
