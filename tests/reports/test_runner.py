"""The report runner on tiny self-contained notebooks (no data needed): files written, never
overwriting, failures named by notebook and cell, HTML without code."""

import json
import re
import shutil
import time
from pathlib import Path

import nbformat
import pytest

from cohortlab import Lab
from click.testing import CliRunner

from cohortlab.cli import main
from cohortlab.report.output import dated_output_dir, prepare_output_dir
from cohortlab.report.parameters import declared_parameters, load_params, parse_param_items
from cohortlab.report.runner import ReportError, check_migration_window, run_report

ROOT = Path(__file__).resolve().parents[2]
KERNELSPEC = {"name": "cohortlab", "display_name": "cohortlab (Python 3)", "language": "python"}


def _notebook(path: Path, cells: list[str], *, title: str = "Tiny") -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = KERNELSPEC
    nb.cells.append(nbformat.v4.new_markdown_cell(f"# {title}"))
    params = nbformat.v4.new_code_cell(
        'db = None\ndata = None\ncohorts = None\nas_of = None\noutput_dir = "."\nshow_personal_data = False'
    )
    params.metadata["tags"] = ["parameters"]
    nb.cells.append(params)
    nb.cells.extend(nbformat.v4.new_code_cell(c) for c in cells)
    nbformat.write(nb, str(path))
    return path


GOOD = [
    "SECRET_SOURCE_MARKER = 'this code must not appear in the HTML'\nimport json, os",
    "print('members: 42')",
    "json.dump({'title': 'Tiny report', 'summary': '42 members', 'headline': {'members': 42, 'match rate': 0.5},"
    " 'headline_units': {'match rate': 'percent'}, 'db': db}, open(os.path.join(output_dir, 'metrics.json'), 'w'))",
]
BROKEN = ["x = 1", "raise ValueError('deliberately broken')", "print('never')"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("nbs")
    db = d / "x.duckdb"
    with Lab(str(db)):  # an empty cohortlab database: the tiny notebooks read nothing
        pass
    return {
        "good": _notebook(d / "good.ipynb", GOOD, title="Good"),
        "broken": _notebook(d / "broken.ipynb", BROKEN, title="Broken"),
        "db": db,
    }


@pytest.fixture(scope="module")
def small_world(tmp_path_factory) -> Path:
    """A 60-user synthetic world (seed 1), for the tests that need some data folder: they only
    read it (a report of it, refused before or after its load, and loads of it)."""
    from cohortlab.synth import generate

    world = tmp_path_factory.mktemp("small") / "world"
    generate(world, users=60, seed=1)
    return world


@pytest.fixture(scope="module")
def email_world(tmp_path_factory) -> dict:
    """A 200-user world whose cohort Power Users is named after an email (ann@example.com), and its
    first weekly report: `report --data WORLD --notebooks match_rates`, with a pseudonym key of its
    own (no COHORTLAB_PSEUDONYM_KEY). Read by the tests of repeated `report --data` runs, which
    copy that report into a reports folder of their own before writing beside or over it."""
    from cohortlab.privacy import KEY_ENV

    d = tmp_path_factory.mktemp("email")
    world = d / "world"
    assert CliRunner().invoke(main, ["synth", "--users", "200", str(world)]).exit_code == 0
    for f in (world / "mixpanel" / "cohorts.json", world / "mixpanel" / "webhooks" / "power-users.jsonl",
              world / "mparticle" / "profiles.jsonl"):
        f.write_text(f.read_text().replace("Power Users", "ann@example.com"))
    first = d / "reports" / "1-own-key"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(KEY_ENV, raising=False)
        r = CliRunner().invoke(main, ["report", "--data", str(world), "--notebooks", "match_rates",
                                      "--out", str(first)])
    assert r.exit_code == 0, r.output
    return {"world": world, "first": first}


def _copy_report(report: Path, to: Path) -> Path:
    """A copy of a report folder, its files' times kept (the index finds the previous run by them)."""
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(report, to, symlinks=True)
    return to


def test_declared_parameters(tiny):
    assert set(declared_parameters(tiny["good"])) == {"db", "data", "cohorts", "as_of", "output_dir", "show_personal_data"}


def test_report_writes_every_file(tiny, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ReportError, match="unknown parameter 'undeclared'"):  # a typo is never ignored
        run_report([tiny["good"]], db=tiny["db"], out=out, params={"cohorts": ["A"], "undeclared": 1})
    assert not out.exists()
    res = run_report([tiny["good"]], db=tiny["db"], out=out, params={"cohorts": ["A"]})
    assert res.ok
    nb_dir = out / "good"
    assert (nb_dir / "good.ipynb").exists() and (nb_dir / "good.html").exists()
    metrics = json.loads((nb_dir / "metrics.json").read_text())
    assert metrics["headline"]["members"] == 42
    assert metrics["db"] == str(Path(tiny["db"]).resolve())  # paths reach the notebook absolute
    html = (nb_dir / "good.html").read_text()
    assert "members: 42" in html
    assert "SECRET_SOURCE_MARKER" not in html  # no code in the HTML
    assert 'src="http' not in html and "mathjax" not in html.lower()  # nothing from the network
    index = (out / "index.html").read_text()
    assert 'href="good/good.html"' in index and "Tiny report" in index and "50.0%" in index
    executed = nbformat.read(str(nb_dir / "good.ipynb"), as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and 'cohorts = ["A"]' in injected[0].source


def test_a_personal_parameter_is_its_pseudonym_in_the_executed_notebook(tiny, tmp_path):
    """-p cohorts=[a cohort named after an email]: every page showed its pseudonym, while the
    executed notebook kept it in clear in its parameters cell and papermill's record (a
    red-team run). Both now hold the pseudonym; with show_personal_data, the name as given."""
    name = "Leads of alice.qa@example.com"
    out = tmp_path / "run"
    assert run_report([tiny["good"]], db=tiny["db"], out=out, params={"cohorts": [name, "A"]}).ok
    executed = nbformat.read(str(out / "good" / "good.ipynb"), as_version=4)
    injected = next(c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", []))
    text = json.dumps(executed)
    assert "alice" not in text
    assert re.search(r'cohorts = \["anon-[0-9a-f]{12}", "A"\]', injected.source), injected.source
    assert executed.metadata["papermill"]["parameters"]["cohorts"][1] == "A"
    shown = run_report([tiny["good"]], db=tiny["db"], out=tmp_path / "shown", params={"cohorts": [name]},
                       show_personal_data=True)
    assert name in json.dumps(nbformat.read(str(shown.out_dir / "good" / "good.ipynb"), as_version=4))


def test_never_overwrites_unless_told(tiny, tmp_path):
    out = tmp_path / "run"
    run_report([tiny["good"]], db=tiny["db"], out=out)
    with pytest.raises(ReportError, match="already exists"):
        run_report([tiny["good"]], db=tiny["db"], out=out)
    (out / "stale.txt").write_text("old")
    res = run_report([tiny["good"]], db=tiny["db"], out=out, overwrite=True)
    assert res.ok and not (out / "stale.txt").exists()
    foreign = tmp_path / "not-a-report"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    with pytest.raises(ReportError, match="not written by cohortlab report"):
        run_report([tiny["good"]], db=tiny["db"], out=foreign, overwrite=True)
    assert (foreign / "precious.txt").read_text() == "keep me"


def test_overwrite_never_removes_what_the_report_reads(tiny, tmp_path):
    """A report's own data.duckdb (kept with --keep-data) given as --db of a report into the same
    folder with --overwrite: the folder, and so the database, was removed before any notebook
    read it (a red-team run). Refused, and the database is kept; the same for a settings file."""
    out = tmp_path / "run"
    run_report([tiny["good"]], db=tiny["db"], out=out)
    inside = out / "data.duckdb"
    shutil.copy(tiny["db"], inside)
    with pytest.raises(ReportError, match=r"^--db .*data\.duckdb is inside .*run, which --overwrite would remove"):
        run_report([tiny["good"]], db=inside, out=out, overwrite=True)
    assert inside.is_file() and (out / "good" / "good.html").is_file()  # nothing removed
    settings = out / "settings.yaml"
    settings.write_text("fallback: strict\n")
    with pytest.raises(ReportError, match=r"^settings .*settings\.yaml is inside"):
        prepare_output_dir(out, overwrite=True, inputs={"settings": settings, "--db": tiny["db"]})
    assert settings.is_file()
    assert run_report([tiny["good"]], db=tiny["db"], out=out, overwrite=True).ok  # an input elsewhere: replaced


def test_overwrite_keeps_the_previous_report_when_the_run_stops_before_writing_one(email_world, tmp_path):
    """report --data --overwrite with a cohort the data does not have removed the previous good
    report, then stopped (a review of scheduled runs): the previous report is put back; a run
    that writes its report replaces it, and no copy of it is left beside.

    The previous good report: the module's first `report --data WORLD --notebooks match_rates`
    (it exited 0), copied into this test's reports folder, which this test alone writes."""
    world = email_world["world"]
    out = _copy_report(email_world["first"], tmp_path / "reports" / "weekly")
    assert (out / "match_rates" / "metrics.json").is_file() and (out / "index.html").is_file()
    before = (out / "match_rates" / "metrics.json").read_text()
    with pytest.raises(ReportError, match="unknown cohort 'Nope'"):
        run_report(["match_rates"], data=world, out=out, overwrite=True, params={"cohorts": ["Nope"]})
    assert (out / "match_rates" / "metrics.json").read_text() == before and (out / "index.html").exists()
    assert [d.name for d in out.parent.iterdir()] == ["weekly"]  # nothing set aside is left
    res = run_report(["match_rates"], data=world, out=out, overwrite=True, params={"as_of": "2026-02-27"})
    assert res.ok and (out / "match_rates" / "metrics.json").read_text() != before
    assert [d.name for d in out.parent.iterdir()] == ["weekly"]


def test_a_folder_a_running_report_writes_is_never_replaced(tiny, tmp_path):
    """A second run with --overwrite removed the folder under a running report (which then failed
    on its missing folder), and without --overwrite was told to use it (a review of scheduled
    runs). A run holds its folder until it ends; in the meantime any other run is refused."""
    from cohortlab.report.output import in_use, release_claims

    out = tmp_path / "run"
    assert run_report([tiny["good"]], db=tiny["db"], out=out).ok
    assert not in_use(out)  # ended: released
    prepare_output_dir(out, overwrite=True, hold=True)  # a run that has claimed it and is running
    try:
        assert in_use(out)
        for overwrite in (True, False):
            with pytest.raises(ReportError, match=r"run is being written by a report that is still running: wait "
                                                  r"for it to end, or choose another --out$"):
                run_report([tiny["good"]], db=tiny["db"], out=out, overwrite=overwrite)
        assert (out / ".cohortlab-report").exists()  # nothing removed
    finally:
        release_claims()
    assert run_report([tiny["good"]], db=tiny["db"], out=out, overwrite=True).ok


def test_dated_folders_get_a_suffix(tmp_path):
    import datetime as dt

    day = dt.date(2026, 3, 1)
    assert dated_output_dir(tmp_path, day) == tmp_path / "2026-03-01"
    (tmp_path / "2026-03-01").mkdir()
    (tmp_path / "2026-03-01-2").mkdir()
    assert dated_output_dir(tmp_path, day) == tmp_path / "2026-03-01-3"
    first = prepare_output_dir(None, overwrite=False, root=tmp_path / "r")
    (first / "index.html").write_text("x")
    second = prepare_output_dir(None, overwrite=False, root=tmp_path / "r")
    assert second != first and second.name.startswith(first.name + "-")


def test_an_out_that_is_a_symbolic_link_is_one_clear_error_and_removes_nothing(tmp_path):
    """A shared reports folder may hold links planted by others: a link to nothing (--out, or
    today's dated folder) and a link to another run with --overwrite raised FileExistsError /
    OSError with a traceback. Now: a link to nothing is refused as --out and skipped as a dated
    folder; with --overwrite a link is refused and the run it points to is kept."""
    import datetime as dt

    import cohortlab.report.runner as runner

    reports, elsewhere = tmp_path / "reports", tmp_path / "elsewhere" / "run"
    elsewhere.mkdir(parents=True)
    (elsewhere / runner.MARKER).write_text("someone's run")
    (elsewhere / "index.html").write_text("theirs")
    reports.mkdir()
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    (reports / "dangling").symlink_to(tmp_path / "nothing")
    (reports / "linked").symlink_to(elsewhere)
    with pytest.raises(ReportError, match="is a symbolic link to nothing"):
        prepare_output_dir(reports / "dangling", overwrite=False)
    with pytest.raises(ReportError, match="is a symbolic link: not removing"):
        prepare_output_dir(reports / "linked", overwrite=True)
    assert (elsewhere / "index.html").read_text() == "theirs"
    (reports / today).symlink_to(tmp_path / "nothing")
    assert prepare_output_dir(None, overwrite=False, root=reports) == reports / f"{today}-2"
    assert not (tmp_path / "nothing").exists()
    (reports / today).unlink()
    (reports / today).symlink_to(elsewhere)
    with pytest.raises(ReportError, match="is a symbolic link: not removing"):
        prepare_output_dir(None, overwrite=True, root=reports)
    assert (elsewhere / "index.html").read_text() == "theirs"


def test_a_folder_claimed_by_another_run_is_refused_or_skipped(tmp_path, monkeypatch):
    """Two runs started at once both found the folder free and wrote into one: the folder is claimed by creating its marker, which only one run can. Here the other
    run claims it between the check and the claim."""
    import cohortlab.report.runner as runner

    real_mkdir = Path.mkdir

    def other_run_first(self, *a, **k):  # the other run creates the folder and its marker first
        real_mkdir(self, *a, **k)
        if not (self / runner.MARKER).exists():
            (self / runner.MARKER).write_text("the other run")

    monkeypatch.setattr(Path, "mkdir", other_run_first)
    with pytest.raises(ReportError, match="another report is being written into it"):
        prepare_output_dir(tmp_path / "out", overwrite=False)
    assert (tmp_path / "out" / runner.MARKER).read_text() == "the other run"
    monkeypatch.undo()
    calls = []

    def other_run_once(self, *a, **k):  # a dated folder taken by the other run: the next one is used
        real_mkdir(self, *a, **k)
        if self.parent == tmp_path / "r" and not calls:
            calls.append(self)
            (self / runner.MARKER).write_text("the other run")

    monkeypatch.setattr(Path, "mkdir", other_run_once)
    mine = prepare_output_dir(None, overwrite=False, root=tmp_path / "r")
    assert mine != calls[0] and mine.name.startswith(calls[0].name + "-")
    assert (mine / runner.MARKER).read_text().startswith("written by cohortlab report")


def test_failure_names_notebook_and_cell_and_other_notebooks_still_run(tiny, tmp_path):
    res = run_report([tiny["broken"], tiny["good"]], db=tiny["db"], out=tmp_path / "run")
    assert not res.ok
    broken, good = res.notebooks
    assert good.ok
    assert broken.ename == "ValueError"
    assert "deliberately broken" in broken.error and "cell" in broken.error
    assert broken.cell_index is not None
    assert broken.ipynb.exists() and broken.html.exists()  # the traceback is kept for audit
    assert "FAILED" in (tmp_path / "run" / "index.html").read_text()


def test_cli_report_exit_codes(tiny, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli"
    r = runner.invoke(main, ["report", "--db", str(tiny["db"]), "--notebooks", str(tiny["good"]), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip().endswith("index.html")
    assert "[1/1] good: ok" in r.stderr
    r = runner.invoke(main, ["report", "--db", str(tiny["db"]), "--notebooks", str(tiny["good"]), "--out", str(out)])
    assert r.exit_code != 0 and "already exists" in r.stderr
    r = runner.invoke(main, ["report", "--db", str(tiny["db"]), "--notebooks", str(tiny["broken"]),
                             "--out", str(tmp_path / "cli2")])
    assert r.exit_code == 1
    assert "broken.ipynb" in r.stderr and "cell" in r.stderr and "ValueError: deliberately broken" in r.stderr


def test_cli_needs_a_source_and_known_notebooks(tiny, tmp_path):
    runner = CliRunner()
    r = runner.invoke(main, ["report", "--out", str(tmp_path / "x")])
    assert r.exit_code != 0 and "--db" in r.stderr
    r = runner.invoke(main, ["report", "--db", str(tiny["db"]), "--notebooks", "nope", "--out", str(tmp_path / "y")])
    assert r.exit_code != 0 and "no notebook 'nope'" in r.stderr


def test_cli_data_folder_that_is_not_exports(tmp_path):
    (tmp_path / "empty").mkdir()
    r = CliRunner().invoke(main, ["report", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 1 and "expected mixpanel/" in r.stderr
    assert not (tmp_path / "o").exists()  # no report, no folder


@pytest.mark.parametrize("keep", [False, True])
def test_an_unknown_cohort_in_a_data_folder_leaves_no_report_folder(small_world, tmp_path, keep):
    out = tmp_path / "o"
    r = CliRunner().invoke(main, ["report", "--data", str(small_world), "--out", str(out),
                                  "-p", "cohorts=[Nope]", *(["--keep-data"] if keep else [])])
    assert r.exit_code == 1 and "unknown cohort 'Nope'" in r.stderr, r.stderr
    assert not out.exists()  # neither the folder nor, with --keep-data, the loaded database


def test_params_yaml(tmp_path, tiny):
    p = tmp_path / "params.yaml"
    p.write_text("cohorts: [Power Users]\nas_of: 2026-03-01T00:00:00Z\nshow_personal_data: false\n")
    params = load_params(p)
    assert params["cohorts"] == ["Power Users"] and params["as_of"].startswith("2026-03-01T00:00:00")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ReportError, match="mapping"):
        load_params(bad)


def test_param_items_are_yaml_values():
    assert parse_param_items(["cohorts=[Power Users, Churn Risk]", "as_of=2026-03-01", "show_personal_data=true",
                              "settings=s.yaml", "since="]) == {
        "cohorts": ["Power Users", "Churn Risk"], "as_of": "2026-03-01", "show_personal_data": True,
        "settings": "s.yaml", "since": None}
    with pytest.raises(ReportError, match="KEY=VALUE"):
        parse_param_items(["oops"])


def test_cli_param_reaches_the_notebook(tiny, tmp_path):
    out = tmp_path / "p"
    r = CliRunner().invoke(main, ["report", "--db", str(tiny["db"]), "--notebooks", str(tiny["good"]),
                                  "-p", "cohorts=[Power Users]", "--out", str(out)])
    assert r.exit_code == 0, r.output
    executed = nbformat.read(str(out / "good" / "good.ipynb"), as_version=4)
    assert 'cohorts = ["Power Users"]' in executed.cells[2].source


def test_lab_and_demo_help():
    runner = CliRunner()
    r = runner.invoke(main, ["lab", "--help"])
    # the folder it opens by default, as it is named (it said "the project's notebooks/")
    assert r.exit_code == 0 and "cohortlab/notebooks/" in " ".join(r.output.split())
    assert runner.invoke(main, ["demo", "--help"]).exit_code == 0


def test_lab_refuses_a_missing_notebooks_folder_before_starting_jupyter(tmp_path, monkeypatch):
    import cohortlab.cli.report as cli_report

    started = []
    monkeypatch.setattr(cli_report, "run_server", lambda cmd, **kw: started.append(cmd) or 0)
    r = CliRunner().invoke(main, ["lab", "--notebooks-dir", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "Directory" in r.output and "does not exist" in r.output
    assert started == []


def test_engine_choice_reaches_the_notebook_as_a_parameter(tmp_path, tiny, monkeypatch):
    monkeypatch.delenv("COHORTLAB_ENGINE", raising=False)
    nb = _notebook(tmp_path / "engine.ipynb", [
        "import json, os\njson.dump({'title': 'Engine', 'engine': engine, "
        "'env': os.environ.get('COHORTLAB_ENGINE')}, open(os.path.join(output_dir, 'metrics.json'), 'w'))"])
    cells = nbformat.read(str(nb), as_version=4)
    cells.cells[1].source += '\nengine = "duckdb"\nspark_master = None'
    nbformat.write(cells, str(nb))
    out = tmp_path / "e"
    r = CliRunner().invoke(main, ["report", "--db", str(tiny["db"]), "--notebooks", str(nb), "--engine", "spark",
                                  "--spark-master", "local[1]", "--out", str(out)])
    assert r.exit_code == 0, r.output
    metrics = json.loads((out / "engine" / "metrics.json").read_text())
    assert metrics["engine"] == "spark" and metrics["env"] is None  # a parameter, not the environment
    executed = nbformat.read(str(out / "engine" / "engine.ipynb"), as_version=4)
    assert 'spark_master = "local[1]"' in executed.cells[2].source


def test_notebooks_are_found_as_package_data():
    import importlib.resources

    from cohortlab.report.runner import DEFAULT_NOTEBOOKS, notebook_path

    package = importlib.resources.files("cohortlab") / "notebooks"
    for name in DEFAULT_NOTEBOOKS:
        assert notebook_path(name) == Path(str(package / f"{name}.ipynb"))


LONG_CELL = ["x = 1", "a = 1\nb = 2\nraise ValueError('deliberately broken on line 3')\nprint('never')"]


def test_a_failed_page_and_the_cli_show_the_failing_line_and_the_message(tmp_path):
    nb = _notebook(tmp_path / "late.ipynb", LONG_CELL, title="Late")
    db = tmp_path / "x.duckdb"
    with Lab(str(db)):  # an empty cohortlab database
        pass
    r = CliRunner().invoke(main, ["report", "--db", str(db), "--notebooks", str(nb), "--out", str(tmp_path / "o")])
    assert r.exit_code == 1
    assert "line 3: ValueError: deliberately broken on line 3" in r.stderr
    assert "> raise ValueError('deliberately broken on line 3')" in r.stderr  # the failing line, not the first
    # on a line of its own under the error, as the docs show it (it was written as "\\n    > raise ...")
    assert "\n    > raise ValueError('deliberately broken on line 3')\n" in r.stderr and "\\n" not in r.stderr
    assert "a = 1" not in r.stderr
    page = (tmp_path / "o" / "late" / "late.html").read_text()
    header = page[page.index('<header class="cl-header">'):page.index("</header>")]
    assert "This report failed" in header and "deliberately broken on line 3" in header
    assert "raise ValueError(&#x27;deliberately broken on line 3&#x27;)" in header


def test_every_page_has_a_title_a_header_and_a_link_back(tiny, tmp_path):
    out = tmp_path / "run"
    run_report([tiny["good"]], db=tiny["db"], out=out, params={"cohorts": ["Power Users"], "as_of": "2026-03-01"})
    page = (out / "good" / "good.html").read_text()
    assert "<title>Tiny report · cohortlab</title>" in page
    header = page[page.index('<header class="cl-header">'):page.index("</header>")]
    assert 'href="../index.html"' in header
    for what in ("cohorts", "as of", "data source", "settings", "generated"):
        assert f"<dt>{what}</dt>" in header
    assert "Power Users" in header and "2026-03-01" in header
    # the data source by its name, not this machine's path (docs/reports.md#output)
    assert "<dt>data source</dt><dd>x.duckdb</dd>" in header and str(Path(tiny["db"]).parent) not in header
    assert "fallback data" in header and "event cutoff 2026-01-15 00:00 UTC" in header
    index = (out / "index.html").read_text()
    assert "<title>cohortlab report · run</title>" in index and "No previous run" in index


def test_the_index_shows_the_change_since_the_previous_run(tmp_path):
    import os
    import time

    reports = tmp_path / "reports"
    db = tmp_path / "x.duckdb"
    with Lab(str(db)):  # an empty cohortlab database
        pass
    def with_members(n):
        return _notebook(tmp_path / "m.ipynb", [
            "import json, os\njson.dump({'title': 'Members', 'headline': {'members': %d, 'match rate': %s, "
            "'main reason': 'x'}, 'headline_units': {'match rate': 'percent'}}, "
            "open(os.path.join(output_dir, 'metrics.json'), 'w'))" % (n, n / 100)])
    first = run_report([with_members(40)], db=db, out=reports / "2026-03-01")
    os.utime(first.index_html, (time.time() - 60, time.time() - 60))
    second = run_report([with_members(45)], db=db, out=reports / "2026-03-08")
    index = second.index_html.read_text()
    assert "change since 2026-03-01" in index and 'href="../2026-03-01/index.html"' in index
    assert "+5" in index and "+5.0 pts" in index


def test_a_parameter_of_a_notebook_not_run_is_not_used_and_said_so(tmp_path):
    """The documented report.yaml (with since, for sync_timeline) made a run of match_rates fail
    with "unknown parameter 'since'" (a review of scheduled runs): a parameter only a package
    notebook the run leaves out takes is said and not used; one no notebook takes stays an error."""
    db = tmp_path / "x.duckdb"
    with Lab(str(db)):
        pass
    said = []
    with pytest.raises(ReportError, match="unknown parameter 'sinse'; the notebooks take"):
        run_report(["match_rates"], db=db, out=tmp_path / "a", params={"sinse": "2026-02-20"}, progress=said.append)
    res = run_report(["match_rates"], db=db, out=tmp_path / "b", progress=said.append,
                     params={"since": "2026-02-20", "activity": "observed"})
    assert "parameter activity is taken by eit_migration only, which this run does not run: not used" in said
    assert "parameter since is taken by sync_timeline only, which this run does not run: not used" in said
    assert [r.name for r in res.notebooks] == ["match_rates"]
    with pytest.raises(ReportError, match="^plans and switch both given"):
        run_report(["eit_migration"], db=db, out=tmp_path / "c",
                   params={"plans": "data/plans/standard.yaml", "switch": "2026-02-01"})
    assert not (tmp_path / "c").exists()


def test_the_plans_and_the_plan_to_validate_are_checked_before_anything_runs(tmp_path):
    """A plans file with a typo, a missing one, a validate_plan naming no plan, or an observed_db /
    observed_data that does not exist each made the report folder, then failed inside the EIT
    notebook (reviews of migration validation and of the newcomer's path)."""
    db = tmp_path / "x.duckdb"
    with Lab(str(db)):
        pass
    typo = tmp_path / "t1.yaml"
    typo.write_text("name: t1\neit_timline: customer_id\n")
    for params, message in [
        ({"plans": str(typo)}, r"^plans: .*t1\.yaml: invalid migration plan: eit_timline"),
        ({"plans": str(tmp_path / "nosuch.yaml")}, r"^plans: .*nosuch\.yaml"),
        ({"observed_db": str(tmp_path / "after_switch.duckdb")},  # three notebooks ran, then the EIT page failed
         r"^observed_db: .*after_switch\.duckdb: no such database \(the exports taken after the switch"),
        ({"observed_data": str(tmp_path / "after_switch")}, r"^observed_data: .*after_switch: no such folder"),
        ({"switch": "2026-02-01", "validate_plan": "swich only"},
         r"^validate_plan: no plan named 'swich only' \(did you mean 'switch only'\?\); the plans: switch only, "
         r"switch \+ Rule, Rule only, do nothing$"),
    ]:
        out = tmp_path / "r"
        with pytest.raises(ReportError, match=message):
            run_report(["eit_migration"], db=db, out=out, params=params)
        assert not out.exists()


def test_runs_with_other_figure_changing_parameters_are_not_compared(tmp_path):
    """A run with -p since=... was compared with one without (sync runs "+194"), one with another
    switch with the first ("-1.1 pts"), the difference of the parameters shown as a change of
    the data (a review of scheduled runs). Such parameters are part of what makes runs comparable."""
    from cohortlab.report.pages import run_identity

    def identity(**params):
        return run_identity("/data/x.duckdb", "all", "defaults", None, {"db": "/data/x.duckdb", **params})

    plain = identity()
    assert "parameters_key" not in plain  # as earlier versions recorded it: still compared with them
    assert identity(since="2026-02-28") != plain
    assert identity(switch="2026-02-05") != identity(switch="2026-02-10")
    assert identity(switch="2026-02-05") == identity(switch="2026-02-05")
    # display parameters change no figure
    assert identity(show_personal_data=True, output_dir="/o", simulations="/s") == plain
    # a run's own data as the observed data (report --data of a world that switched) is the same
    # whatever scratch path it was loaded into
    a = run_identity("/w", "all", "defaults", None, {"db": "/tmp/a/data.duckdb", "observed_db": "/tmp/a/data.duckdb"})
    b = run_identity("/w", "all", "defaults", None, {"db": "/tmp/b/data.duckdb", "observed_db": "/tmp/b/data.duckdb"})
    assert a == b
    plans = tmp_path / "plans.yaml"
    plans.write_text("name: p\neit_timeline: customer_id\n")
    before = identity(plans=str(plans))
    plans.write_text("name: p\neit_timeline: mparticle_id\n")  # the same file, other plans
    assert identity(plans=str(plans)) != before


def test_ctrl_c_stops_the_running_notebooks_starts_no_other_and_leaves_no_folder(tiny, tmp_path, monkeypatch):
    """Ctrl-C while two notebooks run (their kernels are in sessions of their own: the terminal's
    SIGINT reaches only this process). It waited for them, then ran every queued notebook to its
    end, then left a report folder without an index."""
    import os
    import signal
    import threading

    from cohortlab.report import kernels

    started = tmp_path / "started"
    started.mkdir()
    slow = [_notebook(tmp_path / f"slow{i}.ipynb", [
        f"import pathlib, time\npathlib.Path({str(started)!r}, 'slow{i}').touch()\ntime.sleep(120)",
    ], title=f"Slow {i}") for i in range(3)]
    monkeypatch.setenv("COHORTLAB_REPORT_PARALLEL", "2")

    finished = threading.Event()

    def ctrl_c_once_two_run():
        deadline = time.monotonic() + 120
        while len(list(started.iterdir())) < 2 and time.monotonic() < deadline and not finished.is_set():
            time.sleep(0.1)
        if not finished.is_set():  # never into a later test of this process
            os.kill(os.getpid(), signal.SIGINT)  # a real signal: it wakes the main thread's wait

    # a terminal's Ctrl-C: Python's own handler, also when this process started with SIGINT
    # ignored (a command run with `&` by a shell without job control, as a CI script may run it:
    # the signal then did nothing, and the test failed after 240 s)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    threading.Thread(target=ctrl_c_once_two_run, daemon=True).start()
    t0 = time.monotonic()
    try:
        result = run_report(slow, db=tiny["db"], out=tmp_path / "r")
    except KeyboardInterrupt:
        pass
    else:  # what the notebooks did instead tells why
        pytest.fail(f"no KeyboardInterrupt after {time.monotonic() - t0:.0f} s; started "
                    f"{sorted(p.name for p in started.iterdir())}; notebooks: "
                    f"{[(r.name, r.error) for r in result.notebooks]}")
    finally:
        finished.set()
        signal.signal(signal.SIGINT, previous)
    stopped = time.monotonic()
    assert sorted(p.name for p in started.iterdir()) == ["slow0", "slow1"]  # the third never started
    assert stopped - t0 < 100  # not after the 120 s the running ones sleep
    assert not (tmp_path / "r").exists()
    assert not kernels._KERNELS and not kernels._STOPPING.is_set()


class _Terminated(Exception):
    pass


def test_sigterm_stops_a_report_as_ctrl_c_does(tiny, tmp_path, monkeypatch):
    """`kill PID` (SIGTERM) or a closed terminal (SIGHUP) ended the process on the spot: the
    temporary database of --data (all the raw data) and the report folder were left behind."""
    import os
    import signal

    from cohortlab.report import runner

    def terminated(signum, frame):  # in place of Python's default, which would end pytest
        raise _Terminated

    def run_report(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        raise AssertionError("SIGTERM did not stop the report")

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        monkeypatch.setattr(runner, "run_report", run_report)
        r = CliRunner().invoke(main, ["report", "--db", str(tiny["db"]), "--out", str(tmp_path / "r")])
        assert not isinstance(r.exception, _Terminated)
        assert r.exit_code == 130 and r.stderr.strip() == "error: interrupted", r.stderr
        assert signal.getsignal(signal.SIGTERM) is terminated  # the command's handler is gone again
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_file_that_is_not_a_duckdb_database_is_refused_before_anything_runs(tmp_path):
    db = tmp_path / "notes.duckdb"
    db.write_text("not a database\n")
    with pytest.raises(ReportError, match=r"notes\.duckdb: a text file, not a DuckDB database file"):
        run_report(db=db, out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_a_folder_or_a_database_without_cohortlab_tables_is_refused_before_anything_runs(tiny, tmp_path):
    """(They were tracebacks: FileNotFoundError "no such database" for a folder, a CatalogException
    "mp_events does not exist" from a file another program made, after the folder was made.)"""
    import duckdb

    (tmp_path / "folder.duckdb").mkdir()
    foreign = tmp_path / "foreign.duckdb"
    with duckdb.connect(str(foreign)) as con:
        con.execute("CREATE TABLE notes (x INTEGER)")
    older = tmp_path / "older.duckdb"
    older.write_bytes(Path(tiny["db"]).read_bytes())
    with duckdb.connect(str(older)) as con:
        con.execute("DROP TABLE mpa_batch_times")
    for db, message in (
        (tmp_path / "folder.duckdb", r"folder\.duckdb: is a folder, not a DuckDB database file"),
        (foreign, r"foreign\.duckdb: not a cohortlab database \(none of its tables is one that `cohortlab load` writes\)"),
        (older, r"older\.duckdb: no table mpa_batch_times: written by an older cohortlab \(`cohortlab info --db "),
    ):
        with pytest.raises(ReportError, match=message):
            run_report(db=db, out=tmp_path / "r")
        assert not (tmp_path / "r").exists()


def test_parameters_the_notebooks_would_fail_on_are_refused_before_anything_runs(tiny, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("pauses: 5\n")
    for params, notebooks, message in (  # the package's notebooks: a cohort must exist
        ({"cohorts": ["Nope"]}, ["match_rates"], r"cohorts: unknown cohort 'Nope'"),
        ({"settings": str(bad)}, ["match_rates"], r"settings: .*bad\.yaml: invalid settings: pauses"),
        ({}, [tiny["good"], tiny["good"]], r"notebook\(s\) good asked for more than once"),
    ):
        with pytest.raises(ReportError, match=message):
            run_report(notebooks, db=tiny["db"], out=tmp_path / "r", params=params)
        assert not (tmp_path / "r").exists()


def test_a_kernel_that_dies_before_its_first_reply_is_started_again(tiny, tmp_path, monkeypatch):
    """Two kernels started at once can pick the same free port; the loser dies before replying
    to kernel_info, before any cell ran. Such a start is tried again (twice at most); any other
    failure is reported at once."""
    import papermill

    from cohortlab.report import runner

    calls = []

    def flaky(source, output, **kw):
        calls.append(output)
        if len(calls) == 1:
            raise RuntimeError("Kernel died before replying to kernel_info")
        Path(output).write_text(Path(source).read_text())

    monkeypatch.setattr(papermill, "execute_notebook", flaky)
    monkeypatch.setattr(runner.time, "sleep", lambda s: None)
    r = runner.run_notebook(tiny["good"], tmp_path / "out", html=False)
    assert r.error is None and len(calls) == 2

    def always(error):  # a papermill that raises ``error`` at every start
        def run(source, output, **kw):
            calls.append(output)
            raise error
        return run

    calls.clear()
    monkeypatch.setattr(papermill, "execute_notebook", always(RuntimeError("Kernel died before replying to kernel_info")))
    r = runner.run_notebook(tiny["good"], tmp_path / "out2", html=False)
    assert len(calls) == 3 and r.error == "RuntimeError: Kernel died before replying to kernel_info"

    calls.clear()
    monkeypatch.setattr(papermill, "execute_notebook", always(ValueError("notebook unreadable")))
    r = runner.run_notebook(tiny["good"], tmp_path / "out3", html=False)
    assert len(calls) == 1 and r.error == "ValueError: notebook unreadable"


def test_a_page_whose_kernel_never_started_says_no_cell_ran(tmp_path):
    from cohortlab.report.pages import decorate_page
    from cohortlab.report.runner import NotebookResult

    page = tmp_path / "m.html"
    page.write_text("<html><head><title>x</title></head><body><h1>Match rates</h1></body></html>")
    r = NotebookResult(name="match_rates", source=tmp_path / "m.ipynb", ipynb=tmp_path / "m.ipynb",
                       error="RuntimeError: Kernel died before replying to kernel_info")
    header = decorate_page(page, r, {}).read_text()
    assert "This report failed before any cell ran" in header and "Kernel died before replying" in header
    assert "in cell None" not in header and "traceback is at the end" not in header


def test_a_repeated_activity_window_ending_inside_the_data_is_refused_before_anything_runs(sample_db, tmp_path):
    """With activity: repeat, an end not after the last event is what `migrate compare` refuses (the
    projection would add nothing); the EIT notebook failed on it after the report folder was made,
    the other pages run. The sample exports' events end on 2026-02-..."""
    params = {"activity": "repeat", "end": "2026-01-20"}
    message = (r"^end: activity 'repeat' projects activity after the last event \(2026-02-\d\d\); the window end "
               r"2026-01-20 is not after it")
    with pytest.raises(ReportError, match=message):
        run_report(["eit_migration"], data=ROOT / "data", out=tmp_path / "r", params=params)
    assert not (tmp_path / "r").exists()
    db = Path(sample_db)  # the same exports loaded into a database (once for the session, only read)
    with pytest.raises(ReportError, match=message):
        run_report(["eit_migration"], db=db, out=tmp_path / "r", params=params)
    assert not (tmp_path / "r").exists()
    check_migration_window(db, {**params, "end": "2026-04-01"})  # after the last event: fine
    check_migration_window(db, {"end": "2026-01-20"})  # observed activity: any end


def test_a_switch_the_eit_page_would_refuse_is_refused_before_anything_runs(sample_db, tmp_path):
    """A switch before the first event, or after the window's last day, makes the four standard
    plans the same every day; the EIT page refuses it, as migrate compare does, but only after
    the other pages ran. The sample exports' events run 2025-11-20 .. 2026-02-27."""
    db = Path(sample_db)  # the sample exports loaded (once for the session, only read)
    for params, message in (
        ({"switch": "2025-06-01"}, r"^eit_migration: the switch 2025-06-01T00:00:00Z \(from the switch parameter\) is "
                                   r"before the first event \(2025-11-20T08:14:05Z\)"),
        ({"switch": "2026-02-10", "end": "2026-02-01"}, r"^eit_migration: the switch 2026-02-10T00:00:00Z \(from the "
                                                        r"switch parameter\) is after the window's last day \(2026-02-01, "
                                                        r"from the parameter\)"),
    ):
        with pytest.raises(ReportError, match=message):
            run_report(["eit_migration"], db=db, out=tmp_path / "r", params=params)
        assert not (tmp_path / "r").exists()
    # a report without the EIT page is not refused for the switch it would refuse
    assert run_report(["match_rates"], db=db, out=tmp_path / "other", params={"switch": "2025-06-01"}).ok
    check_migration_window(db, {"switch": "2026-02-10"})  # inside the data and the window
    check_migration_window(db, {"switch": "2026-02-10", "plans": str(ROOT / "data" / "plans" / "standard.yaml"),
                                "end": "2026-02-01"})  # plan files carry their own dates


def test_the_report_command_starts_without_the_iri_grammar():
    """``cohortlab report`` and ``demo`` import jsonschema (papermill reads notebooks with nbformat)
    without rfc3987_syntax, whose 38 Lark parsers took ~1 s of the report's start before any
    notebook could start: notebooks are still read and validated, and rfc3987_syntax can still be
    imported later. A process that had imported jsonschema already keeps its ``iri`` checker."""
    import subprocess
    import sys

    from cohortlab.report.runner import notebook_path

    notebook = notebook_path("match_rates")
    code = f"""
import sys
from cohortlab.report.kernels import without_iri_format_checks
without_iri_format_checks()
import jsonschema, nbformat, papermill
assert "rfc3987_syntax" not in sys.modules
nb = nbformat.read({str(notebook)!r}, as_version=4)
nbformat.validate(nb)
assert papermill.inspect_notebook({str(notebook)!r})["db"]["default"] == "None"
assert "iri" not in jsonschema.FormatChecker.checkers
import rfc3987_syntax
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    before = subprocess.run([sys.executable, "-c", "import sys, jsonschema\n"
                             "from cohortlab.report.kernels import without_iri_format_checks\n"
                             "without_iri_format_checks()\n"
                             "print('iri' in jsonschema.FormatChecker.checkers)"],
                            capture_output=True, text=True, check=False)
    assert before.stdout.strip() == "True", before.stderr


def test_the_report_command_writes_progress_and_errors_as_one_line_text(monkeypatch, tmp_path):
    """A notebook's name and its error (which may quote a cohort name from the data) reach the
    terminal with their control characters as escapes: an escape sequence cannot recolour or
    retitle the terminal, nor a line break forge a line."""
    from cohortlab.report import runner
    from cohortlab.report.runner import NotebookResult, ReportResult

    hostile = "Power\x1b]0;pwned\x07 Users\nerror: forged"

    def fake_run_report(*args, progress, **kw):
        progress(f"[1/1] {hostile} ...")
        failed = NotebookResult(name="match_rates", source=tmp_path / "m.ipynb", ipynb=tmp_path / "m.ipynb",
                                error=f"cell 3, line 2: ValueError: unknown cohort {hostile!s}")
        return ReportResult(out_dir=tmp_path, index_html=tmp_path / "index.html", notebooks=[failed])

    monkeypatch.setattr(runner, "run_report", fake_run_report)
    db = tmp_path / "x.duckdb"
    with Lab(db):
        pass
    out = CliRunner().invoke(main, ["report", "--db", str(db), "--out", str(tmp_path / "r")])
    assert out.exit_code == 1
    text = out.output + (out.stderr if out.stderr_bytes is not None else "")
    assert "\x1b" not in text and "\x07" not in text
    assert "Power\\x1b]0;pwned\\x07 Users\\nerror: forged ..." in text
    assert "unknown cohort Power\\x1b]0;pwned\\x07 Users\\nerror: forged" in text
    assert not any(line.startswith("error: forged") for line in text.splitlines())


def test_lab_of_an_installed_package_opens_copies_of_its_notebooks(tmp_path, monkeypatch):
    """From an installed package (no pyproject.toml beside it) `cohortlab lab` opens copies of the
    notebooks in ./cohortlab-notebooks/notebooks/, beside a copy of the sample exports (their
    default data, ../sample_data): Jupyter writes neither checkpoints nor edits into the installed
    folder, which may be read-only. A copy already there is kept as the
    user edited it. In a checkout, the package's own notebooks are opened."""
    import cohortlab.cli.report as cli_report
    from cohortlab.report import runner

    site = tmp_path / "site-packages" / "cohortlab"
    (site / "notebooks").mkdir(parents=True)
    for name in ("match_rates.ipynb", "identity_gaps.ipynb"):
        (site / "notebooks" / name).write_text('{"cells": []}')
    (site / "sample_data" / "mixpanel").mkdir(parents=True)
    (site / "sample_data" / "mixpanel" / "cohorts.json").write_text("[]")
    before = {p: p.stat().st_mtime_ns for p in site.rglob("*")}
    monkeypatch.setattr(runner, "NOTEBOOKS_DIR", site / "notebooks")
    started = []
    monkeypatch.setattr(cli_report, "run_server", lambda cmd, **kw: started.append(cmd) or 0)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.chdir(home)

    r = CliRunner().invoke(main, ["lab", "--no-browser"])
    assert r.exit_code == 0, r.output
    work = home / "cohortlab-notebooks"
    assert started[-1][1:] == ["lab", str(work / "notebooks"), "--no-browser"]
    assert sorted(p.name for p in (work / "notebooks").iterdir()) == ["identity_gaps.ipynb", "match_rates.ipynb"]
    assert (work / "notebooks" / ".." / "sample_data" / "mixpanel" / "cohorts.json").is_file()
    assert "copied from the package: identity_gaps.ipynb, match_rates.ipynb, sample_data" in r.output

    (work / "notebooks" / "match_rates.ipynb").write_text('{"cells": ["edited"]}')
    r = CliRunner().invoke(main, ["lab"])
    assert r.exit_code == 0 and "your copies" in r.output
    assert (work / "notebooks" / "match_rates.ipynb").read_text() == '{"cells": ["edited"]}'
    assert {p: p.stat().st_mtime_ns for p in site.rglob("*")} == before  # the installed files untouched

    # a checkout opens the package's notebooks themselves (make lab, editing them in place)
    (tmp_path / "site-packages" / "pyproject.toml").write_text("[project]\nname = 'cohortlab'\n")
    r = CliRunner().invoke(main, ["lab"])
    assert r.exit_code == 0 and started[-1][2] == str(site / "notebooks")

    # a folder that cannot be written: one line that says what to do, no server started
    (tmp_path / "site-packages" / "pyproject.toml").unlink()
    monkeypatch.setattr(cli_report, "lab_workspace", lambda *a: (_ for _ in ()).throw(PermissionError(13, "Permission denied")))
    n = len(started)
    r = CliRunner().invoke(main, ["lab"])
    assert r.exit_code == 1 and "cannot make" in r.output and "--notebooks-dir" in r.output and len(started) == n


def test_a_report_error_is_one_of_cohortlabs_user_errors():
    """A notebook catches every user mistake with ``except CohortlabError`` (docs/DEVELOPING.md):
    the report's own errors too, found before anything runs."""
    from cohortlab.errors import CohortlabError

    with pytest.raises(CohortlabError, match="no notebook 'nope'"):
        run_report(["nope"], db="unused.duckdb")


def test_a_report_that_fails_while_loading_its_data_removes_the_loaded_copy_at_once(small_world, tmp_path,
                                                                                    monkeypatch):
    """The temporary database a report loads a data folder into holds all the raw data (personal
    data included). A report refused after the load (here an unknown cohort) removes it before the
    error reaches the caller, not when the error object is collected: in JupyterLab the last
    error, and the folder with it, lives on until the next one."""
    import tempfile

    from cohortlab.errors import ReportError
    from cohortlab.report.runner import run_report

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with pytest.raises(ReportError, match="unknown cohort 'Nope'") as caught:
        run_report(data=small_world, out=tmp_path / "o", params={"cohorts": ["Nope"]})
    assert caught.value.__traceback__ is not None  # the error (and its frames) still held
    assert list(scratch.iterdir()) == []


@pytest.fixture(scope="module")
def warned_world(small_world, tmp_path_factory) -> tuple[Path, Path]:
    """A copy of the 60-user world whose events file gains one event dated before 1971 (a load
    warning): (the world, its events file). Only read (loaded) by the tests."""
    world = tmp_path_factory.mktemp("warned") / "world"
    shutil.copytree(small_world, world)
    events = next((world / "mixpanel" / "events").iterdir())
    with open(events, "a", encoding="utf-8") as f:
        f.write('{"event":"Old","properties":{"time":-1,"distinct_id":"U-old","$insert_id":"old-1"}}\n')
    return world, events


def test_a_report_on_a_data_folder_says_what_its_loads_warned_about(warned_world, tmp_path):
    # report --data loaded the folder and said nothing of the loads' warnings (cohortlab load
    # prints them): a file of events dated before 1971, or in a project's time zone, went unsaid
    world, events = warned_world
    r = CliRunner().invoke(main, ["report", "--data", str(world), "--out", str(tmp_path / "o"),
                                  "-p", "cohorts=[Nope]"])  # stops after the load, before any notebook
    assert r.exit_code == 1 and "unknown cohort 'Nope'" in r.stderr
    assert (f"  warning: {events}: 1 event(s) give properties.time before 1971-01-01 (line "
            in r.stderr), r.stderr


def test_a_folder_loaded_for_a_notebook_or_by_fetch_shows_its_warnings(warned_world):
    import warnings as _warnings

    from cohortlab.errors import LoadWarning
    from cohortlab.lab import Lab, open_lab
    from cohortlab.loaders.folder import load_world

    folder, events = warned_world
    with Lab() as lab:
        world = load_world(lab, folder)
    assert len(world.warnings) == 1 and world.warnings[0].startswith(f"{events}: 1 event(s) give properties.time")
    assert f"\n  warning: {world.warnings[0]}" in str(world)  # fetch --db prints str(world)
    with _warnings.catch_warnings(record=True) as seen:
        _warnings.simplefilter("always")
        open_lab(data=str(folder)).close()  # a notebook's `data`
    assert [(w.category, str(w.message)) for w in seen] == [(LoadWarning, world.warnings[0])]


def test_a_notebook_s_folder_warning_names_its_files_from_the_parameter_without_personal_data(tmp_path):
    """observed_data's load warnings stay in the executed notebook (the setup cell's output): a
    file named after an email, under this machine's absolute path, was kept there in clear (a
    red-team run)."""
    import warnings as _warnings

    from cohortlab.errors import LoadWarning
    from cohortlab.report.notebook import open_lab

    profiles = tmp_path / "obs" / "mparticle" / "profiles"
    profiles.mkdir(parents=True)
    (profiles / "dsar-carol.white@example.com.jsonl").write_text('{"not": "a profile"}\n')
    with _warnings.catch_warnings(record=True) as seen:
        _warnings.simplefilter("always")
        open_lab(data=str(tmp_path / "obs"), names=("observed_db", "observed_data")).close()
    texts = [str(w.message) for w in seen if w.category is LoadWarning]
    assert texts and texts[0].startswith("observed_data/mparticle/profiles/<email>: every record")
    assert not any("carol" in t or str(tmp_path) in t for t in texts)


def test_a_folder_load_warning_is_one_line_in_its_text():
    # fetch prints str(world): a warning naming a file whose name holds a line break would start a
    # line of its own (the report's progress and cohortlab load write each warning as one line)
    from cohortlab.loaders import LoadReport
    from cohortlab.loaders.folder import WorldReport

    world = WorldReport(folder=Path("w"), reports=[LoadReport("mixpanel-events", warnings=["w/a\nb.jsonl: odd"])])
    assert str(world).splitlines()[-1] == "  warning: w/a\\nb.jsonl: odd"


def test_report_data_with_a_timezone_loads_the_folders_raw_events_as_that_zones_wall_clock(tiny, tmp_path):
    # a project created before 2023, exported by hand (no fetch.json): its events were read as
    # UTC by report --data, which took no zone; the load's warning pointed to -o timezone, which
    # report does not take
    events = tmp_path / "world" / "mixpanel" / "events"
    events.mkdir(parents=True)
    (events / "e.jsonl").write_text(json.dumps(
        {"event": "x", "properties": {"distinct_id": "u1", "time": 1768867200, "$insert_id": "a"}}) + "\n")
    out = tmp_path / "o"
    r = CliRunner().invoke(main, ["report", "--data", str(tmp_path / "world"), "--timezone", "america/los_angeles",
                                  "--notebooks", str(tiny["good"]), "--out", str(out), "--keep-data"])
    assert r.exit_code == 0, r.output
    with Lab(str(out / "data.duckdb"), read_only=True) as lab:  # 2026-01-20 00:00 in Los Angeles
        assert [str(t) for (t,) in lab.engine.query_rows("SELECT time FROM mp_events")] == ["2026-01-20 08:00:00"]
        assert lab.info()["events_time_zones"] == {"America/Los_Angeles": 1}


def test_report_timezone_is_refused_without_a_data_folder_or_for_no_time_zone(tiny, tmp_path):
    r = CliRunner().invoke(main, ["report", "--db", str(tiny["db"]), "--timezone", "Europe/Berlin",
                                  "--notebooks", str(tiny["good"]), "--out", str(tmp_path / "a")])
    assert r.exit_code == 1 and r.stderr.startswith("error: --timezone is the time zone of a data folder's raw events")
    (tmp_path / "w" / "mixpanel").mkdir(parents=True)
    r = CliRunner().invoke(main, ["report", "--data", str(tmp_path / "w"), "--timezone", "Mars/Olympus",
                                  "--notebooks", str(tiny["good"]), "--out", str(tmp_path / "b")])
    assert r.exit_code == 1 and "--timezone: timezone must be a time zone name" in r.stderr
    assert "'Mars/Olympus'" in r.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def _events_in_a_local_zone(folder: Path) -> Path:
    """A folder whose one raw event is 2026-01-20 00:00 on the project's wall clock (no fetch.json)."""
    events = folder / "mixpanel" / "events"
    events.mkdir(parents=True)
    (events / "e.jsonl").write_text(json.dumps(
        {"event": "x", "properties": {"distinct_id": "u1", "time": 1768867200, "$insert_id": "a"}}) + "\n")
    return folder


def test_a_notebook_run_by_hand_loads_its_data_folder_in_its_timezone_parameter(tiny, tmp_path):
    # the notebooks' `timezone` parameter reaches the load of `data`; a database wins over the
    # folder (the parameter `data` defaults to the sample exports) and keeps its events as loaded
    from cohortlab.report import notebook as ui

    world = _events_in_a_local_zone(tmp_path / "world")
    with ui.open_lab(None, str(world), timezone="america/los_angeles") as lab:
        assert [str(t) for (t,) in lab.engine.query_rows("SELECT time FROM mp_events")] == ["2026-01-20 08:00:00"]
    with ui.open_lab(None, str(world)) as lab:  # no zone: UTC
        assert [str(t) for (t,) in lab.engine.query_rows("SELECT time FROM mp_events")] == ["2026-01-20 00:00:00"]
    with ui.open_lab(str(tiny["db"]), str(world), timezone="america/los_angeles") as lab:
        assert lab.engine.query_rows("SELECT count(*) FROM mp_events") == [(0,)]


def test_the_validations_observed_data_is_loaded_in_the_timezone_parameter(tmp_path):
    # the EIT page loads observed_data itself: the zone reaches that load too (a name that is no
    # time zone is refused by it), and not an observed_db's
    from cohortlab.errors import SettingsError
    from cohortlab.report import insights

    world = _events_in_a_local_zone(tmp_path / "later")
    with Lab() as lab, pytest.raises(SettingsError, match="Mars/Olympus"):
        insights.migration_validation(lab, [object()], observed_data=str(world), timezone="Mars/Olympus")


ZONE_SEEN = ["import json, os",
             "json.dump({'title': 'Zone', 'summary': '', 'headline': {}, 'timezone': timezone, "
             "'observed_data': observed_data, 'db': db}, open(os.path.join(output_dir, 'metrics.json'), 'w'))"]


def test_report_timezone_reaches_the_notebooks_that_declare_it_for_their_observed_data(tiny, tmp_path):
    # report --db -p observed_data=DIR --timezone ZONE: the EIT page's later exports are a folder
    # of raw events the notebook loads; the zone is checked once and passed on in its canonical
    # spelling; -p timezone=ZONE is the same; a notebook that does not declare it does not get it
    nb = tmp_path / "zone.ipynb"
    _notebook(nb, ZONE_SEEN, title="Zone")
    book = nbformat.read(str(nb), as_version=4)
    book.cells[1].source += "\ntimezone = None\nobserved_data = None"
    nbformat.write(book, str(nb))
    later = _events_in_a_local_zone(tmp_path / "later")
    for how in (["--timezone", "america/los_angeles"], ["-p", "timezone=america/los_angeles"]):
        out = tmp_path / f"o{len(how[0])}"
        r = CliRunner().invoke(main, ["report", "--db", str(tiny["db"]), *how, "-p", f"observed_data={later}",
                                      "--notebooks", str(nb), "--notebooks", str(tiny["good"]), "--out", str(out)])
        assert r.exit_code == 0, r.output
        seen = json.loads((out / "zone" / "metrics.json").read_text())
        assert seen["timezone"] == "America/Los_Angeles" and seen["observed_data"] == str(later.resolve())
        assert r.exit_code == 0 and (out / "good" / "metrics.json").exists()


def test_scheduled_report_data_runs_compare_a_cohort_named_after_an_email_with_a_kept_key(email_world, tmp_path,
                                                                                          monkeypatch):
    # each `report --data` run loads a new database with a new pseudonym key: a cohort named after
    # an email got a new pseudonym every run, so a scheduled report never found a comparable
    # previous run; with COHORTLAB_PSEUDONYM_KEY the pseudonyms, so the
    # runs, compare; the email appears in no file of the report either way
    from cohortlab.privacy import KEY_ENV, pseudonym

    world = email_world["world"]  # (the synth world, its cohort renamed, is made by the fixture)
    reports = tmp_path / "reports"

    def run(name, key=None):
        if key:
            monkeypatch.setenv(KEY_ENV, key)
        else:
            monkeypatch.delenv(KEY_ENV, raising=False)
        r = CliRunner().invoke(main, ["report", "--data", str(world), "--notebooks", "match_rates",
                                      "--out", str(reports / name)])
        assert r.exit_code == 0, r.output
        return (reports / name / "index.html").read_text()

    key = "0123456789abcdef-kept"
    # run("1-own-key"): the fixture's first run, with a key of its own, copied into this folder
    _copy_report(email_world["first"], reports / "1-own-key")
    assert "No comparable previous run in this folder" in run("2-kept-key", key)
    kept = run("3-kept-key", key)
    assert 'href="../2-kept-key/index.html"' in kept and "Compared with the previous run" in kept
    run_json = json.loads((reports / "3-kept-key" / "run.json").read_text())
    assert pseudonym("ann@example.com", key) in run_json["cohorts"]
    assert not [p for p in reports.rglob("*") if p.is_file() and p.suffix in (".html", ".json", ".ipynb")
                and "ann@example.com" in p.read_text(errors="replace")]
    monkeypatch.setenv(KEY_ENV, "short")  # refused once, before any folder
    r = CliRunner().invoke(main, ["report", "--data", str(world), "--notebooks", "match_rates",
                                  "--out", str(reports / "4")])
    assert r.exit_code == 1 and "COHORTLAB_PSEUDONYM_KEY is 5 character(s) long" in r.stderr
    assert not (reports / "4").exists()


def test_times_the_pages_would_show_nothing_at_are_refused_before_anything_runs(report_run, tmp_path):
    """`-p since=2027-01-01` ran the four pages for 25 s, then the sync page failed (with
    --overwrite, its failed card replaced a good report); `-p as_of=2020-01-01` exited 0 with pages of
    "no cohort members" (a review of scheduled reports). The demo's cohorts hold data from
    2026-02-23 to 2026-03-01."""
    db = report_run["out"] / "data.duckdb"
    out = tmp_path / "r"
    for params, message in [
        ({"since": "2027-01-01"}, r"^since: 2027-01-01 00:00 UTC is after the cohorts' latest data \(2026-03-01 "
                                  r"00:00 UTC\): no sync run to show; give an earlier time, or none$"),
        ({"as_of": "2026-02-24T00:00:00Z", "since": "2026-02-26T00:00:00Z"},
         r"^since: 2026-02-26 00:00 UTC is after as_of \(2026-02-24 00:00 UTC\): no sync run to show"),
        ({"as_of": "2020-01-01"}, r"^as_of: 2020-01-01 00:00 UTC is before the first membership data of every "
                                  r"cohort \(the earliest: 2026-02-23 00:00 UTC\): no cohort has members then"),
    ]:
        with pytest.raises(ReportError, match=message):
            run_report(["sync_timeline"], db=db, out=out, params=params)
        assert not out.exists()
    from cohortlab.report.runner import check_times

    assert check_times(db, {"as_of": "2026-02-23T00:00:00Z", "since": "2026-02-23T00:00:00Z"}) is None  # fine
    # after the data: the figures are the latest data's; said (a scheduler passing a wrong date)
    assert check_times(db, {"as_of": "2030-01-01T00:00:00+02:00"}) == (
        "note: as_of 2029-12-31 22:00 UTC is after the cohorts' latest data (2026-03-01 00:00 UTC): the pages show "
        "that data's figures, as of the later time")


def test_an_email_or_phone_in_a_path_parameter_is_masked_in_the_executed_notebook(tiny, tmp_path):
    """`report --db "dsar-bob@example.com/lab +1 415 555 0123.duckdb"`: the page header masked the
    name, while the kept .ipynb wrote the path in clear in its injected parameters cell and
    papermill's record (db, output_dir, and papermill's output_path) (security review). The absolute path is kept, its personal
    parts masked as the page shows them; --show-personal-data keeps them. A cohort named with an
    en-dash phone number is its pseudonym there too."""
    folder = tmp_path / "dsar-bob@example.com"
    folder.mkdir()
    db = folder / "lab +1 415 555 0123.duckdb"
    shutil.copy(tiny["db"], db)
    out = tmp_path / "reports +44 7700 900321"
    cohort = "Call back +44\u20137700\u2013900123"
    r = CliRunner().invoke(main, ["report", "--db", str(db), "-p", f"cohorts=[{cohort}, A]",
                                  "--notebooks", str(tiny["good"]), "--out", str(out)])
    assert r.exit_code == 0, r.output
    for text in (r.output, r.stderr):  # (the report folder it names is the one given with --out)
        assert "bob@" not in text and "415 555" not in text and "900123" not in text, text
    raw = (out / "good" / "good.ipynb").read_text(encoding="utf-8")
    for personal in ("bob@", "415 555", "7700", "\\u20137700"):
        assert personal not in raw, personal
    executed = nbformat.read(str(out / "good" / "good.ipynb"), as_version=4)
    injected = next(c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", []))
    masked_db = f"{tmp_path.resolve()}/<email>/lab <phone number>.duckdb"
    assert f'db = "{masked_db}"' in injected.source, injected.source
    assert f'output_dir = "{tmp_path.resolve()}/reports <phone number>/good"' in injected.source, injected.source
    assert re.search(r'cohorts = \["anon-[0-9a-f]{12}", "A"\]', injected.source), injected.source
    record = executed.metadata["papermill"]
    assert record["parameters"]["db"] == masked_db
    assert record["output_path"] == f"{tmp_path.resolve()}/reports <phone number>/good/good.ipynb"
    # --show-personal-data: the paths (and the cohort) as given
    shown = CliRunner().invoke(main, ["report", "--db", str(db), "-p", f"cohorts=[{cohort}]", "--show-personal-data",
                                      "--notebooks", str(tiny["good"]), "--out", str(tmp_path / "shown")])
    assert shown.exit_code == 0, shown.output
    executed = nbformat.read(str(tmp_path / "shown" / "good" / "good.ipynb"), as_version=4)
    assert executed.metadata["papermill"]["parameters"]["db"] == str(db.resolve())
    assert executed.metadata["papermill"]["parameters"]["cohorts"] == [cohort]


def test_the_files_a_folder_load_leaves_are_named_without_personal_data(tmp_path):
    """`cohortlab load ... folder` and `report --data` printed `not loaded: ... notes-dan@example.com.txt`
    in clear, while the warning on the next line masked a file name (`…/<email>`)."""
    from cohortlab.loaders.folder import WorldReport

    folder = tmp_path / "world"
    (folder / "mixpanel").mkdir(parents=True)
    files = [folder / "notes-dan@example.com.txt", folder / "mixpanel" / "call +44\u20137700\u2013900123.md",
             folder / "README.md"]
    for f in files:
        f.write_text("x")
    line = WorldReport(folder=folder, reports=[], ignored=files).ignored_text()
    assert "dan@" not in line and "7700" not in line, line
    assert line.endswith("<email>, mixpanel/call <phone number>.md, README.md"), line


def test_load_folder_prints_the_files_it_leaves_as_it_prints_its_warnings(tmp_path):
    """The terminal of `cohortlab load ... folder`: the `not loaded:` line and the warning after it
    both mask a file name holding an email (the first was in clear)."""
    world = tmp_path / "w"
    (world / "mparticle" / "profiles").mkdir(parents=True)
    (world / "notes-dan@example.com.txt").write_text("x")
    (world / "mparticle" / "profiles" / "dsar-carol@example.com.jsonl").write_text('{"not": "a profile"}\n')
    r = CliRunner().invoke(main, ["load", "--db", str(tmp_path / "x.duckdb"), "folder", str(world)])
    assert r.exit_code == 0, r.output
    assert "dan@" not in r.output + r.stderr and "carol@" not in r.output + r.stderr
    assert re.search(r"^  not loaded: 1 file\(s\) .*: <email>$", r.output, re.M), r.output
    assert "profiles/<email>: every record was quarantined" in r.stderr
    r = CliRunner().invoke(main, ["load", "--db", str(tmp_path / "y.duckdb"), "--json", "folder", str(world)])
    out = json.loads(r.stdout)
    assert out["not_loaded"] == [f"{world}/<email>"] and "dan@" not in r.output, r.output


@pytest.mark.parametrize("where", ["notebook", "page", "index"])
def test_a_full_disk_stops_the_report_with_one_line_and_leaves_no_half_made_folder(tiny, tmp_path, monkeypatch, where):
    """A disk that filled while papermill saved a notebook gave a 106-line traceback (its cut-off
    .ipynb was still exported: NotJSONError), and left the folder, which the next run refused
    ("already exists"). Now, the disk full when the notebook, its page or index.html is written:
    one error line, exit 1, no folder; with --overwrite the previous report is back. No kernel:
    papermill is replaced by a copy of the notebook."""
    import errno

    import papermill

    from cohortlab.report import output, pages, runner

    full = False

    def no_space(*a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    def execute(source, output_path, **kw):
        text = Path(source).read_text()
        if full and where == "notebook":
            Path(output_path).write_text(text[: len(text) // 2])  # cut off, as a full disk leaves it
            no_space()
        Path(output_path).write_text(text)

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    write_page, write_index = output.export_html, pages.write_index
    monkeypatch.setattr(runner, "export_html", lambda *a: no_space() if full and where == "page" else write_page(*a))
    monkeypatch.setattr(runner, "write_index", lambda *a: no_space() if full and where == "index" else write_index(*a))
    cli, out = CliRunner(), tmp_path / "weekly"
    args = ["report", "--db", str(tiny["db"]), "--notebooks", str(tiny["good"]), "--out"]
    assert cli.invoke(main, [*args, str(out)]).exit_code == 0
    before = (out / "index.html").read_text()
    full = True
    for given in (tmp_path / "day1", out):
        r = cli.invoke(main, [*args, str(given)] + (["--overwrite"] if given == out else []))
        assert r.exit_code == 1, r.stderr
        assert r.stderr.splitlines()[-1] == "error: no space left on the device: free some space, or write elsewhere"
        assert "Traceback" not in r.stderr and "NotJSONError" not in r.stderr
    assert not (tmp_path / "day1").exists()  # the next run into it is not refused
    assert (out / "index.html").read_text() == before and sorted(p.name for p in tmp_path.iterdir()) == ["weekly"]


def test_an_out_under_a_file_is_one_error_line(tiny, tmp_path):
    """`--out afile/x` (report, demo, export) was a NotADirectoryError traceback from the folder's mkdir."""
    (tmp_path / "afile").write_text("")
    out = str(tmp_path / "afile" / "x")
    cli = CliRunner()
    for args in (["report", "--db", str(tiny["db"]), "--notebooks", str(tiny["good"]), "--out", out],
                 ["demo", "--out", out], ["export", "--db", str(tiny["db"]), "--out", out],
                 ["synth", out, "--users", "10", "--seed", "1"]):
        r = cli.invoke(main, args)
        assert r.exit_code == 1 and len(r.stderr.splitlines()) == 1, (args, r.stderr)
        assert r.stderr.startswith(f"error: {out}: ") and ("is a file, not a folder" in r.stderr
                                                           or "a file is where a folder" in r.stderr), r.stderr
