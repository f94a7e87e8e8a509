"""A renamed cohort (docs/simulate.md#cli, #verify): its snapshots and webhook pages carry the name
of their time under one cohort id. The cohort is found by its id, its current name or an earlier
one, always the same cohort, simulated under its current name (the attribute the feed writes
now); a name it had that another cohort holds now is the other cohort's, never a mix of the two."""

import json

import pandas as pd
import pytest

from cohortlab import Lab
from cohortlab.simulation.membership import CohortError


def page(t, action, name, session, members, cohort_id):
    return {"action": action, "received_at": t,
            "parameters": {"mixpanel_cohort_id": cohort_id, "mixpanel_cohort_name": name, "mixpanel_session_id": session,
                           "page_info": {"total_pages": 1, "page_count": 1},
                           "members": [{"mixpanel_distinct_id": d} for d in members]}}


def lab_with(tmp_path, pages, attributes=None):
    (tmp_path / "wh.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pages))
    mpids = sorted({int(d) for p in pages for d in (m["mixpanel_distinct_id"] for m in p["parameters"]["members"])})
    (tmp_path / "mpa.jsonl").write_text("".join(
        json.dumps({"mpid": m, "user_attributes": (attributes or {}).get(m, {})}) + "\n" for m in mpids))
    lab = Lab()
    lab.load("mixpanel-webhooks", [str(tmp_path / "wh.jsonl")])
    lab.load("mparticle-profiles", [str(tmp_path / "mpa.jsonl")], as_of="2026-03-01T01:00:00Z")
    return lab


def written(r):
    return {int(m): bool(v) for m, v in zip(r.attribute_state.mpid, r.attribute_state.value)}


def test_a_renamed_cohort_is_one_cohort_under_its_current_name_by_its_id_or_either_name(tmp_path):
    lab = lab_with(tmp_path, [
        page("2026-03-01T00:00:00Z", "members", "Heavy Users", "s1", ["101", "102"], "7"),
        page("2026-03-01T00:20:00Z", "add_members", "Power Users", "s2", ["103"], "7"),  # renamed
        page("2026-03-01T00:40:00Z", "remove_members", "Power Users", "s3", ["101"], "7"),
    ], {101: {"Heavy Users": True, "Power Users": False}, 102: {"Heavy Users": True}, 103: {"Power Users": True}})
    for asked in ("Power Users", "Heavy Users", "7"):
        r = lab.simulate(asked, at="2026-03-01T01:00:00Z")
        assert (r.attribute, written(r)) == ("Power Users", {101: False, 102: True, 103: True}), asked
        v = lab.verify(asked)
        assert v.attribute == "Power Users"
        how = dict(zip(v.names.attribute, v.names.how))
        assert how["Heavy Users"] == "template of the earlier name 'Heavy Users'", asked
        got = {int(x.mpid): (x.simulated, x.observed, x.cause) for x in v.profiles.itertuples()}
        assert got == {101: ("false", "false", None), 102: ("true", "absent", "attribute_name_differs"),
                       103: ("true", "true", None)}, asked


def test_an_earlier_name_another_cohort_holds_now_names_that_cohort_and_the_two_never_mix(tmp_path):
    lab = lab_with(tmp_path, [
        page("2026-03-01T00:00:00Z", "members", "A", "s1", ["101", "102"], "7"),
        page("2026-03-01T00:20:00Z", "add_members", "B", "s2", ["103"], "7"),  # 7 renamed A -> B
        page("2026-03-01T00:30:00Z", "members", "A", "s3", ["104"], "8"),  # a new cohort named A
    ])
    for asked in ("A", "8"):
        r = lab.simulate(asked, at="2026-03-01T01:00:00Z")
        assert (r.attribute, sorted(r.resolution.distinct_id), written(r)) == ("A", ["104"], {104: True}), asked
        assert r.timeline.run_at.min().isoformat() == "2026-03-01T00:30:00"  # cohort 8's first page
    for asked in ("B", "7"):
        r = lab.simulate(asked, at="2026-03-01T01:00:00Z")
        assert (r.attribute, written(r)) == ("B", {101: True, 102: True, 103: True}), asked


def test_a_name_two_cohorts_hold_is_refused_with_their_ids(tmp_path):
    lab = lab_with(tmp_path, [
        page("2026-03-01T00:00:00Z", "members", "Twins", "s1", ["101"], "7"),
        page("2026-03-01T00:10:00Z", "members", "Twins", "s2", ["102"], "8"),
    ])
    with pytest.raises(CohortError, match=r"'Twins' is the name of several cohorts \(ids 7, 8\): pass the cohort's id"):
        lab.simulate("Twins")
    assert sorted(lab.simulate("8").resolution.distinct_id) == ["102"]


def test_the_reports_list_a_renamed_cohort_once_and_a_shared_name_by_the_ids(tmp_path):
    from cohortlab.report import insights

    lab = lab_with(tmp_path, [
        page("2026-03-01T00:00:00Z", "members", "Heavy Users", "s1", ["101"], "7"),
        page("2026-03-01T00:20:00Z", "add_members", "Power Users", "s2", ["103"], "7"),  # renamed
        page("2026-03-01T00:00:00Z", "members", "Twins", "s3", ["101"], "8"),
        page("2026-03-01T00:10:00Z", "members", "Twins", "s4", ["102"], "9"),
    ])
    (tmp_path / "m.jsonl").write_text('{"$distinct_id": "101"}\n')
    lab.load("mixpanel-members", [str(tmp_path / "m.jsonl")], cohort="Plain", as_of="2026-03-01T00:00:00Z")
    assert insights.cohort_names(lab) == ["8", "9", "Plain", "Power Users"]


def test_a_page_delivered_again_after_the_rename_does_not_make_the_old_name_current(tmp_path):
    """docs/rules.md#renamed-cohorts: the current name is the one of the latest message (its first
    page's receive time); a page of an earlier message delivered again after the rename carries the
    old name, and made it the current one when a page's own receive time counted."""
    old = page("2026-03-01T00:00:00Z", "members", "Heavy Users", "s1", ["101", "102"], "7")
    again = json.loads(json.dumps(old)) | {"received_at": "2026-03-01T00:50:00Z"}
    again["parameters"]["members"] = again["parameters"]["members"][:1]  # another page of s1
    again["parameters"]["page_info"] = {"total_pages": 2, "page_count": 2}
    lab = lab_with(tmp_path, [old, page("2026-03-01T00:20:00Z", "add_members", "Power Users", "s2", ["103"], "7"), again])
    for asked in ("7", "Heavy Users", "Power Users"):
        assert lab.simulate(asked, at="2026-03-01T01:00:00Z").attribute == "Power Users", asked


def test_info_lists_a_renamed_cohort_once_by_its_id_with_every_snapshot(tmp_path):
    """lab.info() and `cohortlab info` (docs/loading.md#info): a renamed cohort is one row, its
    current name and id, counting its snapshots under every name (and one recorded without an id
    under its earlier name); it joined the cohort list and the snapshots by name, one row per name."""
    from click.testing import CliRunner

    from cohortlab.cli import main

    db = str(tmp_path / "lab.duckdb")
    with Lab(db) as lab:
        (tmp_path / "c.json").write_text('[{"id": 7, "name": "Heavy Users"}, {"id": 8, "name": "Churn Risk"}]')
        lab.load("mixpanel-cohorts", [str(tmp_path / "c.json")])
        for i, (name, cid, members) in enumerate([("Heavy Users", "7", "A\nB\n"), ("Heavy Users", None, "A\n"),
                                                  ("Power Users", "7", "A\nB\nC\n"), ("Plain", None, "A\n")]):
            (tmp_path / f"m{i}.csv").write_text("distinct_id\n" + members)
            lab.load("mixpanel-members", [str(tmp_path / f"m{i}.csv")], cohort=name, as_of=f"2026-03-0{i + 1}",
                     **({"cohort_id": cid} if cid else {}))
        got = lab.info()["cohorts"]
    assert [(r.cohort_name, r.cohort_id, r.snapshots, r.max_members) for r in got.itertuples()] == [
        ("Churn Risk", "8", 0, pd.NA), ("Plain", None, 1, 1), ("Power Users", "7", 3, 3)]
    assert (got.first_as_of[2].day, got.last_as_of[2].day) == (1, 3)
    out = CliRunner().invoke(main, ["info", "--db", db]).output
    assert [line.split() for line in out[out.index("\ncohorts:"):].splitlines()[3:]] == [
        ["Churn", "Risk", "8", "0", "NaT", "NaT", "<NA>"], ["Plain", "None", "1", "2026-03-04", "2026-03-04", "1"],
        ["Power", "Users", "7", "3", "2026-03-01", "2026-03-03", "3"]]


def test_the_reports_name_a_cohort_asked_for_by_its_id_or_an_earlier_name_as_they_list_it(tmp_path):
    """report --cohort and the notebooks' `cohorts` parameter (insights.cohort_names): a renamed
    cohort asked for by its id, its current or an earlier name is the one cohort under its current
    name (the pages named it as asked: '7', or the old name beside the attribute of the new one),
    once however often asked; by its id when another cohort is named so now, also one the cohort
    list alone names (the listing gave the name, which find_cohort then refused as ambiguous)."""
    from cohortlab.report import insights

    lab = lab_with(tmp_path, [
        page("2026-03-01T00:00:00Z", "members", "Heavy Users", "s1", ["101"], "7"),
        page("2026-03-01T00:20:00Z", "add_members", "Power Users", "s2", ["103"], "7"),  # renamed
    ])
    for asked in ("7", "Heavy Users", "Power Users", ["7", "Heavy Users", "Power Users"]):
        assert insights.cohort_names(lab, asked) == ["Power Users"], asked
    (tmp_path / "c.json").write_text('[{"id": 8, "name": "Power Users"}]')  # a second cohort of that name
    lab.load("mixpanel-cohorts", [str(tmp_path / "c.json")])
    assert insights.cohort_names(lab) == ["7"]
    for asked in ("7", "Heavy Users"):
        assert insights.cohort_names(lab, asked) == ["7"], asked
    assert lab.simulate(insights.cohort_names(lab)[0], at="2026-03-01T01:00:00Z").attribute == "Power Users"


def test_a_cohort_whose_name_another_cohort_holds_now_is_simulated_verified_and_explained_by_its_id(tmp_path):
    """Cohort 7 renamed 'Heavy Users' -> 'Power Users' while the cohort list names cohort 8 'Power
    Users' too: found by its id only (its listing). The steps after the first lookup looked it up
    again by its name, which find_cohort refuses as two cohorts': verify, explain and remedies
    failed, a simulation cut from the stored later one (verify at the mParticle snapshot time after
    `simulate`) failed, and `simulate`'s note on the snapshot time was left out. They read the cohort
    found (SimulationResult.ref) instead."""
    from click.testing import CliRunner

    from cohortlab.cli import main

    db = str(tmp_path / "lab.duckdb")
    with Lab(db) as lab:
        for i, (name, members) in enumerate([("Heavy Users", "101\n102\n"), ("Power Users", "101\n102\n103\n")]):
            (tmp_path / f"m{i}.csv").write_text("distinct_id\n" + members)
            lab.load("mixpanel-members", [str(tmp_path / f"m{i}.csv")], cohort=name, cohort_id="7",
                     as_of=f"2026-03-0{i + 1}T00:00:00Z")
        (tmp_path / "c.json").write_text('[{"id": 7, "name": "Heavy Users"}, {"id": 8, "name": "Power Users"}]')
        lab.load("mixpanel-cohorts", [str(tmp_path / "c.json")])
        (tmp_path / "mpa.jsonl").write_text("".join(
            json.dumps({"mpid": m, "user_attributes": {"Power Users": m != 102}}) + "\n" for m in (101, 102, 103)))
        lab.load("mparticle-profiles", [str(tmp_path / "mpa.jsonl")], as_of="2026-03-01T12:00:00Z")
    r = CliRunner().invoke(main, ["simulate", "--db", db, "--cohort", "7"])  # stores the latest (03-02)
    assert r.exit_code == 0, r.output
    assert "note: verify and explain simulate at the mParticle snapshot time 2026-03-01 12:00:00 UTC" in r.output
    with Lab(db) as lab:
        latest = lab.simulate("7")
        assert (latest.stored, latest.cohort, latest.listed_as) == (True, "Power Users", "7")
        cut = lab.simulate("7", at="2026-03-01T12:00:00Z")  # cut from the stored one
        assert (sorted(cut.resolution.distinct_id), cut.listed_as) == (["101", "102"], "7")
        v = lab.verify("7")
        got = {int(x.mpid): (x.simulated, x.observed) for x in v.profiles.itertuples()}
        assert (v.cohort, got) == ("Power Users", {101: ("true", "true"), 102: ("true", "false"),
                                                             103: ("absent", "true")})
        assert lab.explain("7", "102").cohort == "Power Users"
        assert lab.remedies("7").attrs["cohort"] == "Power Users"
    with Lab(db, use_stored=False) as lab:  # nothing held or read: verify simulates
        assert lab.verify("7").confusion.values.sum() == 3
    r = CliRunner().invoke(main, ["explain", "--db", db, "--cohort", "7", "--user", "101"])
    assert r.exit_code == 0, r.output


def test_the_match_rate_over_time_names_a_cohort_asked_for_by_its_id_or_an_earlier_name_as_listed(tmp_path):
    """insights.match_rate_over_time called by hand with the id or an earlier name labelled its
    rows with the name given, where the notebooks and simulate name the cohort as it is listed."""
    from cohortlab.report import insights

    lab = Lab()
    for i, (name, members) in enumerate([("Heavy Users", "101\n102\n"), ("Power Users", "101\n102\n103\n")]):
        (tmp_path / f"m{i}.csv").write_text("distinct_id\n" + members)
        lab.load("mixpanel-members", [str(tmp_path / f"m{i}.csv")], cohort=name, cohort_id="7",
                 as_of=f"2026-03-0{i + 1}T00:00:00Z")
    for asked in ("7", "Heavy Users", "Power Users"):
        got = insights.match_rate_over_time(lab, asked)
        assert (got.cohort_name.tolist(), got.members.tolist()) == (["Power Users"] * 2, [2, 3]), asked
