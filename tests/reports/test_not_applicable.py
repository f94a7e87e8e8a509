"""A notebook run by default that does not apply to the data is not run, and its card says why:
the migration what-if of data that shows no EIT switch (the bundled sample data/). Asked for by
name, it runs and fails with the same reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cohortlab import Lab
from cohortlab.report.runner import not_applicable, run_report


# sample_db: the bundled sample exports loaded once for the session (conftest.py), only read here


def test_the_migration_what_if_needs_a_switch_to_study(sample_db, report_run):
    why = not_applicable("eit_migration", {"db": sample_db})
    assert why.startswith("no EIT switch to study: no identified event") and "-p switch=YYYY-MM-DD" in why
    assert not_applicable("eit_migration", {"db": sample_db, "switch": "2026-02-01"}) is None
    assert not_applicable("eit_migration", {"db": sample_db, "plans": "plans.yaml"}) is None
    assert not_applicable("match_rates", {"db": sample_db}) is None
    # the demo world switched its EIT: the data shows it
    assert not_applicable("eit_migration", {"db": str(report_run["out"] / "data.duckdb")}) is None


def test_the_default_report_of_data_without_a_switch_runs_the_others_and_says_why(sample_db, tmp_path):
    res = run_report(db=sample_db, out=tmp_path / "r")
    assert res.ok and [(n.name, n.skipped is not None) for n in res.notebooks] == [
        ("match_rates", False), ("identity_gaps", False), ("sync_timeline", False), ("eit_migration", True)]
    assert not (tmp_path / "r" / "eit_migration").exists()
    index = res.index_html.read_text()
    assert '<div class="card skipped"><h2>EIT migration</h2><p class="summary">Not run: no EIT switch to study' in index


def test_asked_for_by_name_it_runs_and_fails_with_the_reason(sample_db, tmp_path):
    res = run_report(["eit_migration"], db=sample_db, out=tmp_path / "r")
    assert not res.ok and res.notebooks[0].skipped is None
    assert "no EIT switch to study: no identified event" in res.notebooks[0].error


def test_a_switch_in_the_settings_is_one_to_study(sample_db, tmp_path):
    settings = tmp_path / "s.yaml"
    settings.write_text('eit_timeline:\n  - {since: null, eit: customer_id}\n  - {since: "2026-02-01", eit: mparticle_id}\n')
    assert not_applicable("eit_migration", {"db": sample_db, "settings": str(settings)}) is None


def _metrics(result) -> dict:
    return {k: v for k, v in result.metrics.items() if k != "generated_at"}


def test_the_switch_read_to_decide_is_given_to_the_eit_page_which_then_reads_the_same(report_run, tmp_path,
                                                                                       monkeypatch):
    """Deciding whether the EIT page applies reads the data's switch (every event); the runner gives
    it to the page (``data_switch``), which would otherwise read it again in its kernel. The page
    says the same with it as without it: the same switch, from the data."""
    from cohortlab.migration.switch import first_mpid_keyed_event
    from cohortlab.report import runner
    from cohortlab.report.runner import NotebookResult, notebook_path, run_notebook

    db = str(report_run["out"] / "data.duckdb")
    with Lab(db, read_only=True) as lab:
        found = first_mpid_keyed_event(lab.engine)
    assert found is not None
    assert runner._applies("eit_migration", {"db": db}) == (None, {"data_switch": found.isoformat()})
    assert runner._applies("eit_migration", {"db": db, "switch": "2026-02-01"}) == (None, {})
    assert runner._applies("match_rates", {"db": db}) == (None, {})

    given: dict[str, dict] = {}

    def recorded(src, out_dir, params, **kw):  # what each notebook is given, without running it
        given[Path(src).stem] = dict(params)
        return NotebookResult(name=Path(src).stem, source=Path(src), ipynb=Path(out_dir) / "x.ipynb", error="not run")

    monkeypatch.setattr(runner, "run_notebook", recorded)
    run_report(db=db, out=tmp_path / "r", share_simulations=False)
    assert given["eit_migration"]["data_switch"] == found.isoformat()
    assert all("data_switch" not in given[n] for n in ("match_rates", "identity_gaps", "sync_timeline"))
    monkeypatch.undo()

    eit = notebook_path("eit_migration")
    told = run_notebook(eit, tmp_path / "told", {"db": db, "data_switch": found.isoformat()}, html=False)
    read = run_notebook(eit, tmp_path / "read", {"db": db}, html=False)
    assert told.ok and read.ok, (told.error, read.error)
    assert _metrics(told) == _metrics(read)
    assert _metrics(told)["metrics"]["switch_source"].startswith("the data")


def test_a_user_cannot_set_the_switch_the_runner_read(sample_db, tmp_path):
    from cohortlab.errors import ReportError

    with pytest.raises(ReportError, match="unknown parameter 'data_switch'"):
        run_report(["eit_migration"], db=sample_db, out=tmp_path / "r", params={"data_switch": "2026-02-01"})


def test_a_cohort_that_never_has_a_member_has_no_match_rate_over_time_chart(tmp_path):
    """The match-rates page of a cohort with no member at any snapshot drew "Match rate over
    time" as an empty frame dated Dec 31 1969 to Jan 01 1970; it now says there is no rate to draw.
    Its sync page drew "Mixpanel cohort vs mParticle audience" and "dynamic sync vs one-time export"
    empty on a 0-1 axis beside charts that said why they had nothing to show: one line says the
    cohort never had a member, in place of the four (the same run serves both pages)."""
    from bs4 import BeautifulSoup

    from cohortlab.synth import generate

    world = tmp_path / "w"
    generate(str(world), users=200, seed=3, config={"scenario": "healthy", "cohorts": [
        {"id": 1, "name": "Nobody", "event": "Purchase", "min_count": 500, "window_days": 7}]})
    res = run_report(["match_rates", "sync_timeline"], data=world, out=tmp_path / "r")
    assert res.ok, [n.error for n in res.notebooks]
    page = (tmp_path / "r" / "match_rates" / "match_rates.html").read_text()
    text = " ".join(BeautifulSoup(page, "html.parser").get_text(" ").split())
    assert ("Match rate over time ¶ Nothing to show: no cohort has a member at any of its membership snapshots: "
            "no match rate to draw.") in text
    assert "<img" not in page[page.index('id="Match-rate-over-time"'):]  # the last section: no chart
    sync = (tmp_path / "r" / "sync_timeline" / "sync_timeline.html").read_text()
    cohort = sync[sync.index('id="Nobody"'):]
    said = " ".join(BeautifulSoup(cohort, "html.parser").get_text(" ").split())
    runs = json.loads((tmp_path / "r" / "sync_timeline" / "metrics.json").read_text())["metrics"]["cohorts"]["Nobody"]
    never = (f"Nothing to show: the cohort never had a member (0 members at any of the "
             f"{runs['dynamic']['runs']:,} runs, no profile ever true).")
    assert said.count(never) == 1 and said.count("Nothing to show") == 1, said
    assert "<img" not in cohort


def test_a_report_of_every_cohort_names_those_it_leaves_out(tmp_path):
    """A report of every cohort covered the cohorts with member data and said nothing of the
    others (a newcomer's walkthrough); one cohort whose attribute name is longer than mParticle
    allows failed every notebook (a red-team run). Both are left out and named, on the index
    page and in the terminal; the other cohorts are reported."""
    import json

    from cohortlab.synth import generate

    long_name = "Leads " + "x" * 240  # 246 characters: 257 with the older template the settings give
    world = tmp_path / "w"
    generate(str(world), users=200, seed=3, config={"scenario": "healthy", "cohorts": [
        {"id": 1, "name": "Power Users", "min_count": 3, "window_days": 60},
        {"id": 2, "name": long_name, "min_count": 1, "window_days": 60}]})
    listed = world / "mixpanel" / "cohorts.json"
    cohorts = json.loads(listed.read_text())
    listed.write_text(json.dumps(cohorts + [{"id": 3, "name": "Churners", "count": 12, "project_id": 1}]))
    settings = tmp_path / "s.yaml"
    settings.write_text("attribute_template: 'Mixpanel - {cohort_name}'\n")
    said = []
    res = run_report(["match_rates", "identity_gaps"], data=world, out=tmp_path / "r", progress=said.append,
                     params={"settings": str(settings)})
    assert res.ok, [r.error for r in res.notebooks]
    for r in res.notebooks:
        assert r.metrics["context"]["cohorts"] == ["Power Users"]
    why = ("Churners (no member data: load a members snapshot or webhook payloads of it); "
           f"{long_name} (its attribute name would be over 256 characters, which mParticle refuses)")
    assert f"not in the report: {why}" in said
    index = (tmp_path / "r" / "index.html").read_text()
    assert f"<dt>not in the report</dt><dd>{why}</dd>" in index
