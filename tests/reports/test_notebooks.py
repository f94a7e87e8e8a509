"""The four report notebooks: declared parameters, committed without outputs, executed by
papermill through ``cohortlab report`` on a tiny synthetic world; the numbers they record in
``metrics.json`` equal the Python API's on the same data; no personal data in the HTML."""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import re
import shutil
from pathlib import Path

import nbformat
import papermill
import pytest

from cohortlab import Lab
from cohortlab.report.runner import DEFAULT_NOTEBOOKS, NOTEBOOKS_DIR

REPO = Path(__file__).resolve().parents[2]

COMMON = {"db", "data", "cohorts", "as_of", "settings", "output_dir", "show_personal_data", "engine",
          "spark_master", "timezone"}
EXTRA = {  # simulations: the runner's shared simulations (docs/reports.md#shared-simulations); data_switch:
    # the EIT switch the runner read (docs/reports.md#parameters)
    "match_rates": {"snapshot_at", "simulations"},
    "identity_gaps": {"simulations"},
    "sync_timeline": {"since", "simulations"},
    "eit_migration": {"plans", "switch", "start", "end", "activity", "observed_db", "observed_data",
                      "validate_plan", "data_switch", "switch_from", "world_eit"},
}


# --------------------------------------------------------------------------- as committed
@pytest.mark.parametrize("name", DEFAULT_NOTEBOOKS)
def test_declared_parameters(name):
    params = papermill.inspect_notebook(str(NOTEBOOKS_DIR / f"{name}.ipynb"))
    assert set(params) == COMMON | EXTRA[name]
    assert params["show_personal_data"]["default"] == "False"
    assert params["db"]["default"] == "None" and params["cohorts"]["default"] == "None"
    assert params["data"]["default"] == "\"../sample_data\""  # runs as shipped, on the sample exports
    if "simulations" in params:  # run by hand: the notebook simulates on its own
        assert params["simulations"]["default"] == "None"


@pytest.mark.parametrize("folder", [NOTEBOOKS_DIR, NOTEBOOKS_DIR.parents[1] / "notebooks"])
def test_the_default_data_is_the_sample_exports_from_the_notebooks_folder(folder):
    """Opened as shipped (JupyterLab, `cohortlab lab`, `jupyter nbconvert --execute`), a notebook runs in
    its own folder, cohortlab/notebooks/ (notebooks/ links to it): its default ``data`` must name the
    repository's data/ from there. "../data" named cohortlab/data, which does not exist, so every
    notebook run as shipped failed in its first code cell ("../data: no such folder")."""
    default = papermill.inspect_notebook(str(NOTEBOOKS_DIR / "match_rates.ipynb"))["data"]["default"]
    data = Path(os.path.join(folder, default.strip('"')))  # as the kernel resolves it, from its folder
    assert (data / "mixpanel").is_dir() and (data / "mparticle").is_dir(), data
    assert data.resolve() == (NOTEBOOKS_DIR.parents[1] / "data").resolve()


@pytest.mark.parametrize("name", DEFAULT_NOTEBOOKS)
def test_committed_without_outputs_one_parameters_cell_and_a_kernelspec(name):
    nb = nbformat.read(str(NOTEBOOKS_DIR / f"{name}.ipynb"), as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "cohortlab"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    for c in nb.cells:
        if c.cell_type == "code":
            assert c.outputs == [] and c.execution_count is None
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")


def test_notebooks_match_their_build_script(capsys):
    spec = importlib.util.spec_from_file_location("notebooks_build", NOTEBOOKS_DIR / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert build.main(["--check"]) == 0, capsys.readouterr().out


# --------------------------------------------------------------------------- executed
def _metrics(report_run, name):
    return json.loads((report_run["out"] / name / "metrics.json").read_text())


def _settings(report_run):
    """The settings `cohortlab demo` wrote next to its report (two export pauses)."""
    return str(report_run["out"].parent / "settings.yaml")


def test_demo_prints_the_index_and_runs_every_notebook(report_run):
    assert report_run["exit_code"] == 0, report_run["stderr"]
    index = Path(report_run["stdout"].strip().splitlines()[-1])
    assert index == report_run["out"] / "index.html" and index.is_file()
    for name in DEFAULT_NOTEBOOKS:
        assert f"{name}: ok" in report_run["stderr"]
    assert report_run["seconds"] < 240  # "about a minute" on a free machine; generous under load


def test_the_demo_prints_a_command_that_gives_its_report_s_figures(report_run, tmp_path):
    """The demo's figures are those of its database under its settings (two pauses): it prints
    the command that reproduces them; without --settings a newcomer got another audience."""
    import shlex

    from click.testing import CliRunner

    from cohortlab.cli import main

    line = next(x for x in report_run["stderr"].splitlines() if x.startswith("explore it: "))
    args = shlex.split(line.removeprefix("explore it: "))
    assert args[:2] == ["cohortlab", "simulate"] and _settings(report_run) in args
    db = args.index("--db") + 1
    assert args[db] == str(report_run["out"] / "data.duckdb")
    args[db] = str(tmp_path / "copy.duckdb")  # simulate writes its tables: into a copy, not the report's
    shutil.copy(report_run["out"] / "data.duckdb", args[db])
    res = CliRunner().invoke(main, args[1:])
    assert res.exit_code == 0, res.output
    cohort = args[args.index("--cohort") + 1]
    figures = json.loads((report_run["out"] / "match_rates" / "metrics.json").read_text())["metrics"]
    audience = figures["cohorts"][cohort]["audience"]
    assert re.search(rf"= +audience +{audience} ", res.output), res.output


def test_report_writes_all_files(report_run):
    out = report_run["out"]
    index = (out / "index.html").read_text()
    for name in DEFAULT_NOTEBOOKS:
        for f in (f"{name}.ipynb", f"{name}.html", "metrics.json"):
            assert (out / name / f).is_file(), f"{name}/{f} missing"
        assert f'href="{name}/{name}.html"' in index
        m = _metrics(report_run, name)
        assert m["notebook"] == name and m["headline"], name
        html = (out / name / f"{name}.html").read_text()
        assert "data:image/png;base64" in html and 'src="http' not in html  # self-contained: works offline
        assert "ci.open_lab" not in html and "import pandas" not in html  # no code


def test_match_rates_numbers_equal_the_api(report_run, world_lab):
    m = _metrics(report_run, "match_rates")["metrics"]
    cohorts = sorted(m["cohorts"])
    assert cohorts == sorted(world_lab.sql(
        "SELECT DISTINCT cohort_name FROM mp_cohort_snapshots UNION SELECT DISTINCT cohort_name FROM mp_webhook_pages"
    )["cohort_name"])
    for c in cohorts:
        sim = world_lab.simulate(c, settings=_settings(report_run))
        res, wf = sim.resolution, sim.waterfall
        got = m["cohorts"][c]
        assert got["members"] == len(res)
        assert got["matched"] == int((res["status"] == "matched").sum())
        assert got["match_rate"] == pytest.approx((res["status"] == "matched").mean())
        assert {r["step"]: r["count"] for r in got["waterfall"]} == {
            str(s): int(n) for s, n in zip(wf["step"], wf["count"])}
        assert got["audience"] == int(wf["count"].iloc[-1])


def test_identifier_sources_are_shown_in_words(report_run):
    """The match-rates page names the identifier Mixpanel sent as docs/glossary.md does, not by
    its code (``event_property`` was a bar label and a table cell)."""
    import html as _html

    by_source = _metrics(report_run, "match_rates")["metrics"]["by_identifier_source"]
    assert {r["identifier_source"] for r in by_source} >= {"event_property"}  # metrics.json keeps the codes
    page = _html.unescape((report_run["out"] / "match_rates" / "match_rates.html").read_text())
    assert """<td style="text-align:left">event's $mparticle_user_id</td>""" in page
    assert ">event_property<" not in page


def test_identity_gaps_numbers_equal_the_api(report_run, world_lab):
    m = _metrics(report_run, "identity_gaps")["metrics"]
    for c, got in m["cohorts"].items():
        res = world_lab.resolution(c, settings=_settings(report_run))
        un = res[res["status"] != "matched"]
        assert got["members"] == len(res) and got["unmatched"] == len(un)
        assert got["by_gap_reason"] == {k: int(v) for k, v in un["gap_reason"].value_counts().items()}
    total_unmatched = sum(g["unmatched"] for g in m["cohorts"].values())
    assert m["unmatched"] == total_unmatched
    assert sum(r["users"] for r in m["by_gap_reason"]) == total_unmatched
    assert sum(r["users"] for r in m["by_recoverable_via"]) == total_unmatched
    assert m["active_after_cutoff"] + m["inactive_since_cutoff"] == total_unmatched


def test_sync_timeline_numbers_equal_the_api(report_run, world_lab):
    m = _metrics(report_run, "sync_timeline")["metrics"]
    for c, got in m["cohorts"].items():
        tl = world_lab.timeline(c, settings=_settings(report_run))
        dyn = got["dynamic"]
        assert dyn["runs"] == len(tl)
        assert dyn["failed_runs"] == int(tl["failed"].sum())
        assert dyn["adds_sent"] == int(tl["adds"].sum()) and dyn["removes_sent"] == int(tl["removes"].sum())
        last = tl.iloc[-1]
        assert (dyn["members"], dyn["true_count"], dyn["stale_true"], dyn["not_yet_true"]) == (
            int(last["members"]), int(last["true_count"]), int(last["stale_true"]), int(last["not_yet_true"]))


def test_eit_migration_numbers_equal_the_api(report_run, world_lab):
    from cohortlab.migration.plans import standard_plans

    doc = _metrics(report_run, "eit_migration")
    params = doc["parameters"]
    # the demo world switched its EIT to mparticle_id on 2026-02-15 (its manifest says so)
    plans = standard_plans("2026-02-15T00:00:00Z")
    assert [p.name for p in plans] == params["plans"]
    assert doc["metrics"]["switch"].startswith("2026-02-15T00:00:00")
    # no -p switch was given: the report read it from the world's manifest, and the page says so
    manifest = "the synthetic world's manifest (manifest.json: its EIT step to mparticle_id)"
    assert doc["metrics"]["switch_source"] == manifest
    # metrics.json's parameters say so beside the switch, which read alone looked like a -p switch
    assert params["switch"].startswith("2026-02-15T00:00:00") and params["switch_from"] == "manifest"
    from cohortlab.report import summaries

    assert (f"The EIT switch studied is **2026-02-15 00:00 UTC**, from {manifest}."
            in summaries.migration_summary(doc["metrics"]))  # what the page's summary cell writes
    # the header says which days were predicted (not "each cohort's latest data", which is another page's)
    assert doc["context"]["as_of"] == f"{params['end']} (the last day predicted, from {params['start']})"
    settings = _settings(report_run)
    # the header's settings: those the what-if uses, the sync's marked as not used (it showed them all)
    from cohortlab.migration.run import settings_used

    assert doc["context"]["settings"] == settings_used(settings, validation=True)
    assert doc["context"]["settings"].startswith("fallback data; event cutoff ")
    assert "; not used by the what-if: protection only_update; dynamic sync every " in doc["context"]["settings"]
    world_lab.compare_plans(plans, params["start"], params["end"], settings=settings)
    summary = world_lab.last_migration_summary
    got = {p["plan"]: p for p in doc["metrics"]["plans"]}
    for _, row in summary.iterrows():
        assert got[row["plan"]]["final_match_rate"] == pytest.approx(row["final_match_rate"])
        assert got[row["plan"]]["split_profiles_end"] == row["split_profiles_end"]
        assert got[row["plan"]]["never_fixable_users"] == row["never_fixable_users"]
    # validated against the world's own exports after the switch
    validation = {v["cohort_name"]: v for v in doc["metrics"]["validation"]["cohorts"]}
    assert validation
    for c, v in validation.items():
        res = world_lab.validate_migration(plans[0], c, settings=settings)  # "switch only"
        assert v["observed_match_rate"] == pytest.approx(res.observed_match_rate)
        assert v["predicted_match_rate"] == pytest.approx(res.predicted_match_rate)


# --------------------------------------------------------------------------- personal data
_EMAIL = re.compile(rb"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_PHONE_KEYS = re.compile(rb'"(?:\$phone|phone|mobile_number|phone_number_2|phone_number_3)"\s*:\s*"([^"]+)"')


def _input_personal_values(folder: Path) -> set[str]:
    values: set[str] = set()
    for f in folder.rglob("*"):
        if not f.is_file() or f.suffix == ".parquet":
            continue
        raw = f.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        values.update(v.decode() for v in _EMAIL.findall(raw))
        values.update(v.decode() for v in _PHONE_KEYS.findall(raw))
    return values


def test_no_email_or_phone_from_the_input_in_any_html(report_run, synth_world, world_lab):
    personal = _input_personal_values(synth_world)
    db_values = world_lab.sql(
        "SELECT email AS v FROM mp_profiles WHERE email IS NOT NULL UNION SELECT phone FROM mp_profiles "
        "WHERE phone IS NOT NULL UNION SELECT value FROM mpa_identities WHERE identity_type IN "
        "('email', 'mobile_number')"
    )["v"]
    personal |= set(db_values)
    assert personal, "the synthetic world should contain emails to make this test meaningful"
    pages = list(report_run["out"].rglob("*.html")) + list(report_run["out"].rglob("metrics.json"))
    assert len(pages) >= 9
    for page in pages:
        text = page.read_text()
        leaked = sorted(v for v in personal if v in text)
        assert not leaked, f"{page.name} shows personal data: {leaked[:5]}"


def test_eit_migration_says_which_days_are_projected_and_refuses_a_switch_after_the_window(report_run, tmp_path):
    """With activity: repeat the page's figures after the last event are projected; the page said
    so nowhere (its header: "as of <end> (the last day predicted)"). A switch after the window gave
    four identical plans."""
    from cohortlab.report.runner import run_report

    db = str(report_run["out"] / "data.duckdb")
    res = run_report(["eit_migration"], db=db, out=tmp_path / "r", params={"activity": "repeat"})
    assert res.ok, res.notebooks[0].error
    doc = json.loads((tmp_path / "r" / "eit_migration" / "metrics.json").read_text())
    projected = doc["parameters"]["projection"]
    assert projected.startswith("days after 2026-0") and projected.endswith(
        "(the last event's day) are projected: the last 30 days of activity repeated (activity: repeat)")
    assert doc["context"]["as_of"].endswith(f"; {projected}")
    html = (tmp_path / "r" / "eit_migration" / "eit_migration.html").read_text()
    assert f"The {projected}." in html
    # the report refuses it before any page runs; the notebook run by hand refuses it itself
    from cohortlab.report.runner import ReportError, kernel_name

    problem = "the switch 2027-01-01T00:00:00Z (from the switch parameter) is after the window's last day"
    with pytest.raises(ReportError, match=re.escape(f"eit_migration: {problem}")):
        run_report(["eit_migration"], db=db, out=tmp_path / "r2", params={"switch": "2027-01-01"})
    assert not (tmp_path / "r2").exists()
    with pytest.raises(papermill.PapermillExecutionError) as e:
        papermill.execute_notebook(str(NOTEBOOKS_DIR / "eit_migration.ipynb"), str(tmp_path / "by_hand.ipynb"),
                                   parameters={"db": db, "switch": "2027-01-01"}, cwd=str(NOTEBOOKS_DIR),
                                   kernel_name=kernel_name(), progress_bar=False)
    assert e.value.ename == "SettingsError" and e.value.evalue.startswith(problem)


@pytest.mark.parametrize("value, shown", [(True, True), (False, False), ("false", False), ("False", False),
                                          ("no", False), ("0", False), (None, False), ("true", True), ("yes", True)])
def test_a_yes_no_parameter_reads_papermills_text(value, shown):
    """`papermill -p show_personal_data false` hands the notebook the text "false" (papermill reads
    only True/False as booleans), whose truth value showed every email of the identity-gaps page."""
    from cohortlab.report import notebook as ui

    assert ui.flag(value, "show_personal_data") is shown


def test_a_yes_no_parameter_that_is_neither_is_refused_and_every_notebook_reads_it_so():
    from cohortlab.errors import SettingsError
    from cohortlab.report import notebook as ui

    with pytest.raises(SettingsError, match=r"^show_personal_data: expected True or False, got 'maybe'$"):
        ui.flag("maybe", "show_personal_data")
    for nb in sorted(NOTEBOOKS_DIR.glob("*.ipynb")):
        setup = next(c.source for c in nbformat.read(nb, as_version=4).cells
                     if c.cell_type == "code" and "ui.open_lab(" in c.source)
        assert setup.index('ui.flag(show_personal_data, "show_personal_data")') < setup.index("ui.open_lab("), nb.name


def test_pages_run_by_hand_refuse_plans_with_a_switch_and_a_since_after_the_last_run(report_run, tmp_path):
    """Run with papermill directly (not through `cohortlab report`, which checks first), the EIT page
    took plans and a switch and silently ignored the switch; the sync page with a since after the
    last run showed 0 members and 0 profiles true "after the last run". Both refuse, naming the
    parameter; a cohort given as one id (papermill's -p cohorts 1000 is an int) is taken."""
    from cohortlab.report.insights import cohort_names
    from cohortlab.report.runner import kernel_name

    db = str(report_run["out"] / "data.duckdb")

    def by_hand(name, **parameters):
        with pytest.raises(papermill.PapermillExecutionError) as e:
            papermill.execute_notebook(str(NOTEBOOKS_DIR / f"{name}.ipynb"), str(tmp_path / f"{name}.ipynb"),
                                       parameters={"db": db, **parameters}, cwd=str(NOTEBOOKS_DIR),
                                       kernel_name=kernel_name(), progress_bar=False)
        return e.value

    e = by_hand("eit_migration", plans=str(REPO / "data" / "plans" / "standard.yaml"), switch="2026-02-05")
    assert (e.ename, e.evalue) == ("SettingsError", "plans and switch both given: the plans' own EIT timelines "
                                   "decide the switch; give plans, or switch alone for the four standard plans "
                                   "switching then")
    e = by_hand("sync_timeline", since="2030-01-01T00:00:00Z")
    assert e.ename == "SettingsError" and e.evalue.startswith("since: 2030-01-01 00:00 UTC is after the last run (")
    e = by_hand("sync_timeline", since="notatime")
    assert e.ename == "SettingsError" and e.evalue.startswith("since: not a time: 'notatime'")
    with Lab(db, read_only=True) as lab:
        (cid,) = lab.engine.query_rows("SELECT cohort_id FROM mp_cohorts WHERE name = 'Power Users'")[0]
        assert cohort_names(lab, int(cid)) == ["Power Users"]
