"""Hostile input, security half: parameters are data and never code, text from data is never
markup, personal data never leaves unless asked for, reports never write into the user's --db.

Every attempt to run code writes a marker file when it succeeds; the tests assert the marker is
never created and that the command fails with one line on stderr (no traceback)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from click.testing import CliRunner

from cohortlab.cli import main

KERNELSPEC = {"name": "cohortlab", "display_name": "cohortlab (Python 3)", "language": "python"}
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z.]+")
SCRIPT_NAME = "<script>alert(2)</script> $x$ *Power* [a](javascript:alert(1))"
TAG_NAME = "Buyers & <b>Co</b>"
PLAN_NAME = "<img src=x onerror=alert(3)> plan"
EMAIL_NAME = "QA list of alice.qa@example.com"  # a cohort name with an email in it
PHONE_NAME = "Call back +44 7700 900123"  # and one with a phone number in it
DASH_PHONE_NAME = "Ring +44\u20137700\u2013900321"  # and one written with en dashes (security review)


def cli(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(r) -> str:
    """The command failed with exactly one line on stderr and no traceback."""
    assert r.exit_code not in (0, None), r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.output
    return lines[0]


def _notebook(path: Path, cells: list[str], params: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = KERNELSPEC
    p = nbformat.v4.new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p] + [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, str(path))
    return path


# =========================================================================== a hostile world
@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """A small world whose Mixpanel distinct_ids are emails (EIT email) and whose cohort names
    are HTML, Markdown and TeX; loaded into a database."""
    from cohortlab.lab import Lab
    from cohortlab.loaders.folder import load_world
    from cohortlab.synth import generate

    d = tmp_path_factory.mktemp("hostile_world")
    cfg = d / "world.yaml"
    cfg.write_text(json.dumps({
        "scenario": "healthy", "eit": [{"type": "email"}],
        "cohorts": [{"id": 1000, "name": SCRIPT_NAME, "min_count": 3},
                    {"id": 1001, "name": TAG_NAME, "event": "Purchase"},
                    {"id": 1002, "name": EMAIL_NAME, "min_count": 2},
                    {"id": 1003, "name": PHONE_NAME, "min_count": 4},
                    {"id": 1004, "name": DASH_PHONE_NAME, "min_count": 3}],
    }))
    from cohortlab.synth.world import WorldConfig

    generate(str(d / "world"), users=200, seed=3, config=WorldConfig.model_validate(json.loads(cfg.read_text())))
    db = d / "world.duckdb"
    with Lab(str(db)) as lab:
        load_world(lab, str(d / "world"))
        emails = {r[0] for r in lab.engine.query_rows(
            "SELECT DISTINCT distinct_id FROM mp_cohort_members WHERE distinct_id LIKE '%@%'")}
    assert len(emails) > 20  # the premise: identifiers are emails
    return {"dir": d, "data": d / "world", "db": db, "emails": emails | {"alice.qa@example.com"}}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# =========================================================================== 1. parameters
@pytest.fixture(scope="module")
def echo_nb(tmp_path_factory) -> Path:
    """A notebook that writes the parameters it received into metrics.json."""
    d = tmp_path_factory.mktemp("echo")
    return _notebook(d / "echo.ipynb", [
        "import json, os\njson.dump({'title': 'Echo', 'cohorts': cohorts, 'as_of': as_of, 'settings': settings},"
        " open(os.path.join(output_dir, 'metrics.json'), 'w'))"],
        'db = None\ndata = None\ncohorts = None\nas_of = None\nsettings = None\noutput_dir = None')


def _payload(marker: Path) -> str:
    return f'"; open({str(marker)!r}, "w").write("pwned"); _x="'


def test_binary_yaml_value_in_a_parameter_is_refused_before_anything_runs(tmp_path, world, echo_nb):
    marker = tmp_path / "PWNED"
    b64 = base64.b64encode(_payload(marker).encode()).decode()
    for nb in (str(echo_nb), "match_rates"):
        out = tmp_path / f"out-{Path(nb).stem}"
        r = cli("report", "--db", world["db"], "--notebooks", nb, "--out", out, "-p", f"as_of=!!binary {b64}")
        assert "binary" in one_line_error(r)
        assert not marker.exists() and not out.exists()  # refused before the report folder exists


@pytest.mark.parametrize("yaml_text, expected", [
    ("as_of: !!binary {b64}\n", "binary"),
    ("cohorts: !!python/object/apply:os.system ['touch {marker}']\n", "not valid YAML"),
    ("cohorts: {{a: b}}\n", "dict"),
    ("cohorts: [[nested]]\n", "expected text"),
    ("asof: 2026-03-01\n", "did you mean as_of"),
    ("output_dir: /tmp/elsewhere\n", "unknown parameter"),
    ("as_of: .nan\n", "finite"),
])
def test_params_file_with_tags_or_wrong_types_is_one_line_error(tmp_path, world, echo_nb, yaml_text, expected):
    marker = tmp_path / "PWNED"
    b64 = base64.b64encode(_payload(marker).encode()).decode()
    params = tmp_path / "params.yaml"
    params.write_text(yaml_text.format(b64=b64, marker=marker))
    r = cli("report", "--db", world["db"], "--notebooks", echo_nb, "--out", tmp_path / "o", "--params", params)
    assert expected in one_line_error(r)
    assert not marker.exists() and not (tmp_path / "o").exists()


def test_typo_in_a_parameter_names_the_near_match(world, tmp_path):
    r = cli("report", "--db", world["db"], "--out", tmp_path / "o", "-p", "asof=2026-03-01T00:00:00Z")
    line = one_line_error(r)
    assert "unknown parameter 'asof'" in line and "did you mean as_of?" in line


def test_quotes_backslashes_and_newlines_in_text_arrive_as_the_same_text(tmp_path, world, echo_nb):
    marker = tmp_path / "PWNED"
    nasty = [_payload(marker), 'a\\"; import os; os.system("touch ' + str(marker) + '") #',
             "line\nbreak\"\"\"'''", "\\", "${x}{{y}}%s", "\u2028\x00end"]
    settings = tmp_path / "it's \"quoted\" \\ dir" / "s.yaml"
    out = tmp_path / "o"
    r = cli("report", "--db", world["db"], "--notebooks", echo_nb, "--out", out,
            "--params", _yaml_file(tmp_path / "p.yaml", {"cohorts": nasty}),
            "-p", f"settings={json.dumps(str(settings))}")
    assert r.exit_code == 0, r.output
    got = json.loads((out / "echo" / "metrics.json").read_text())
    assert got["cohorts"] == nasty and got["settings"] == str(settings)
    assert not marker.exists()


def _yaml_file(path: Path, data) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def test_a_value_that_is_not_yaml_stays_text(tmp_path, world, echo_nb):
    marker = tmp_path / "PWNED"
    value = f"!!python/object/apply:os.system ['touch {marker}']"
    out = tmp_path / "o"
    r = cli("report", "--db", world["db"], "--notebooks", echo_nb, "--out", out, "-p", f"cohorts={value}")
    assert r.exit_code == 0, r.output
    assert json.loads((out / "echo" / "metrics.json").read_text())["cohorts"] == value
    assert not marker.exists()


def test_settings_file_with_python_tags_is_refused(tmp_path, world):
    marker = tmp_path / "PWNED"
    evil = tmp_path / "settings.yaml"
    evil.write_text(f"fallback: !!python/object/apply:os.system ['touch {marker}']\n")
    r = cli("simulate", "--db", world["db"], "--cohort", TAG_NAME, "--settings", evil)
    assert "settings" in one_line_error(r)
    assert not marker.exists()


def _laughs(width: int = 10, depth: int = 6) -> str:
    """YAML aliases nested ``depth`` deep, ``width`` wide: a few lines, width**depth values."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, depth)]
    return "{" + ", ".join(lines) + "}"


@pytest.mark.parametrize("text, message", [
    (f"pauses: {_laughs()}\n", "once its aliases (*name) are expanded"),  # a million values (nine deep: billions)
    ("pauses: " + "[" * 50_000 + "]" * 50_000 + "\n", "nested too deeply"),
])
def test_yaml_that_expands_past_any_use_or_nests_too_deep_is_one_line(tmp_path, world, text, message):
    """Billion laughs and deep nesting: a settings file, a --params file and a -p value are
    refused when read, as one line (a settings file nested 50,000 deep was a RecursionError
    traceback; aliases were expanded by the checks, the error message's repr of the value and
    the parameters' copy: memory without bound)."""
    from cohortlab.report.parameters import load_params, parse_param_items
    from cohortlab.report.runner import ReportError

    settings = tmp_path / "settings.yaml"
    settings.write_text(text)
    r = cli("simulate", "--db", world["db"], "--cohort", TAG_NAME, "--settings", settings, "--no-store")
    assert message in one_line_error(r)
    params = tmp_path / "params.yaml"
    params.write_text(text.replace("pauses:", "cohorts:"))
    with pytest.raises(ReportError, match=re.escape(message)):
        load_params(params)
    with pytest.raises(ReportError, match=re.escape(message)):
        parse_param_items(["cohorts=" + text.removeprefix("pauses: ").strip()])
    assert parse_param_items(["cohorts=[a, *b]"]) == {"cohorts": "[a, *b]"}  # not YAML: the text, as before


def test_a_cohort_name_is_never_code(tmp_path, world):
    marker = tmp_path / "PWNED"
    r = cli("simulate", "--db", world["db"], "--cohort", _payload(marker))
    assert "cohort" in one_line_error(r).lower()
    assert not marker.exists()


# =========================================================================== 2+3. one real report
class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.scripts: list[str] = []
        self.urls: list[str] = []
        self.handlers: list[str] = []
        self.text: list[str] = []
        self._tag = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._tag = tag
        for k, v in attrs:
            if k in ("href", "src") and v:
                self.urls.append(v)
            if k.startswith("on"):
                self.handlers.append(f"{tag} {k}")

    def handle_data(self, data):
        (self.scripts if self._tag == "script" else self.text).append(data)


def parse_text(html: str) -> list[str]:
    p = _Page()
    p.feed(html)
    return p.text


def parse(path: Path) -> _Page:
    p = _Page()
    p.feed(path.read_text(encoding="utf-8"))
    return p


@pytest.fixture(scope="module")
def report(world, tmp_path_factory) -> dict:
    """All four notebooks on the hostile world (loaded from its folder with --data), with a plan
    and a settings file whose names are HTML."""
    d = tmp_path_factory.mktemp("hostile_report")
    plan = d / "plan.yaml"
    plan.write_text(f"name: {json.dumps(PLAN_NAME)}\neit_timeline: email\n")
    settings = d / "settings.yaml"
    settings.write_text('attribute_template: "<img src=y onerror=alert(4)>{cohort_name}"\n')
    out = d / "report"
    # observed_db: the EIT page's validation section, which names each cohort in a list
    observed = d / "observed.duckdb"
    shutil.copyfile(world["db"], observed)
    r = cli("report", "--data", world["data"], "--out", out, "-p", f"plans={plan}", "-p", f"settings={settings}",
            "-p", f"observed_db={observed}")
    assert r.exit_code == 0, r.output + r.stderr
    return {"out": out, "stderr": r.stderr}


def test_report_html_shows_data_text_escaped_and_runs_no_script_from_data(report):
    pages = sorted(report["out"].rglob("*.html"))
    assert {p.name for p in pages} == {"index.html", "match_rates.html", "identity_gaps.html",
                                       "sync_timeline.html", "eit_migration.html"}
    for page in pages:
        p = parse(page)
        assert not any("alert" in s for s in p.scripts), page
        assert not [u for u in p.urls if u.strip().lower().startswith("javascript:")], page
        assert not p.handlers and "b" not in p.tags, page  # no <b>, no <img onerror=...> from data
        assert "x" not in p.urls and "y" not in p.urls, page  # the src of <img> from the plan/attribute names
        assert p.tags.count("img") == len([u for u in p.urls if u.startswith("data:image/png;base64,")]), page
        assert "<script>alert(2)</script>" not in page.read_text(encoding="utf-8")
    shown = {p.name: "".join(parse(p).text) for p in pages}
    for name in ("match_rates.html", "sync_timeline.html"):  # the names, as written, as text
        assert SCRIPT_NAME in shown[name] and TAG_NAME in shown[name], name
    assert PLAN_NAME in shown["eit_migration.html"]
    assert "Predicted against observed" in shown["eit_migration.html"]
    assert f"{SCRIPT_NAME}: observed match rate" in shown["eit_migration.html"]  # the validation's list


def test_no_email_or_phone_in_any_report_file(report, world):
    """Not an email of the data, nor the phone number a cohort's name holds (it was shown in clear
    everywhere the name is: only a phone the database knows was replaced inside a text), nor one
    written with en dashes (`+44–7700–900321` was in clear in index.html, the pages, the .ipynb,
    metrics.json and run.json)."""
    files = [p for p in report["out"].rglob("*") if p.is_file()]
    assert {p.suffix for p in files} >= {".html", ".ipynb", ".json"}
    for f in files:
        text = f.read_text(encoding="utf-8", errors="replace")
        leaked = [e for e in [*world["emails"], "7700 900123", "7700\u2013900321", "\\u20139003", "900321"] if e in text]
        assert not leaked, (f, leaked[:3])
    cohorts = json.loads((report["out"] / "match_rates" / "metrics.json").read_text())["metrics"]["cohorts"]
    assert len(cohorts) == 5 and sum(c.startswith("anon-") for c in cohorts) == 3  # the three names, whole


def test_a_headline_label_holding_an_email_is_shown_as_the_headline_shows_it():
    """The index card's labels are the code's words, but one that named a cohort held its name
    (in the first version of the validation card): the headline's keys were redacted only
    when personal as a whole, and ``headline_units``, keyed by the same labels, not at all."""
    from cohortlab.report import notebook as ui
    from cohortlab.report.metrics import Headline

    h = (Headline().add("members", 3, key="members")
         .add("observed rate of Leads of carol@example.com", 0.5, "percent", key="observed_rate"))
    doc = ui._document("x", title="t", headline=h)
    assert "carol@example.com" not in json.dumps(doc)
    assert list(doc["headline"]) == list(doc["headline_units"]) and list(doc["headline"])[0] == "members"
    assert doc["headline_units"][list(doc["headline"])[1]] == "percent"
    assert doc["figures"] == {"members": 3, "observed_rate": 0.5}  # by stable keys, no label at all


def test_report_data_is_loaded_outside_the_report_folder(report):
    assert not list(report["out"].rglob("*.duckdb")) and not list(report["out"].rglob("*.wal"))


# =========================================================================== escaping helpers
def test_markdown_of_the_reports_renders_data_as_text():
    from nbconvert.filters.markdown import markdown2html

    from cohortlab.report import notebook as ui

    html = markdown2html(ui._markdown(f"## {ui.text(SCRIPT_NAME)}\n\n- **{ui.text('x')}** ok <i>raw</i>"))
    page = _Page()
    page.feed(html)
    assert "script" not in page.tags
    assert not [u for u in page.urls if u.lower().startswith("javascript")]  # [a](javascript:...) is no link
    assert "i" not in page.tags and "em" not in page.tags  # neither raw HTML nor *Power* as italics
    assert SCRIPT_NAME in "".join(page.text)


def test_tables_escape_cells_and_headers(monkeypatch):
    from cohortlab.report import notebook as ui

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    ui.table(pd.DataFrame({"<b>col</b>": ["<script>alert(1)</script>", "a&b"]}))
    page = _Page()
    page.feed(shown[0].data)
    assert "script" not in page.tags and "b" not in page.tags
    assert "<script>alert(1)</script>" in "".join(page.text) and "<b>col</b>" in "".join(page.text)


def test_a_bidi_override_in_a_name_cannot_reorder_the_figures_after_it(monkeypatch, tmp_path):
    """An RLO (U+202E) left open in a cohort name reversed the rest of its paragraph on a page:
    "362 members" after it read "263 srebmem". Every override, embedding and isolate is shown as
    its escape, in Markdown, tables and index.html, as on the terminal; an RLM mark stays."""
    from nbconvert.filters.markdown import markdown2html

    from cohortlab.report import notebook as ui
    from cohortlab.report.pages import write_index
    from cohortlab.report.runner import NotebookResult

    controls = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    name = "Power\u202e Users\u2067 \u200f"
    html = markdown2html(ui._markdown(f"**{ui.text(name)}**: 362 members in Mixpanel"))
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    ui.table(pd.DataFrame({"cohort" + controls: [name]}))
    out = tmp_path / "run"
    (out / "m").mkdir(parents=True)
    doc = {"title": "T" + controls, "summary": name + ": 362 members", "headline": {name: 362},
           "context": {"cohorts": [name], "settings": "s"}}
    (out / "m" / "metrics.json").write_text(json.dumps(doc))
    index = write_index(out, [NotebookResult(name="m", source=Path("m.ipynb"), ipynb=out / "m" / "m.ipynb",
                                             metrics_path=out / "m" / "metrics.json", metrics=doc)]).read_text()
    for page in (html, shown[0].data, index):
        assert not any(c in page for c in controls), page
        assert "Power\\u202e Users\\u2067 \u200f" in "".join(parse_text(page))


def test_a_control_character_in_a_name_is_shown_as_its_escape_not_a_box(monkeypatch, tmp_path):
    """An ESC (an escape sequence in a cohort name) or a BEL was drawn by the browser as a box that
    does not say what it is: shown as its escape, as on the terminal, in Markdown,
    tables and index.html; tabs and line breaks are whitespace, not escaped."""
    from nbconvert.filters.markdown import markdown2html

    from cohortlab.report import notebook as ui
    from cohortlab.report.pages import write_index
    from cohortlab.report.runner import NotebookResult

    name = "Power\x1b[31m Users\x07\x9b"
    html = markdown2html(ui._markdown(f"**{ui.text(name)}**: 362 members\tin Mixpanel"))
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    ui.table(pd.DataFrame({"cohort": [name]}))
    out = tmp_path / "run"
    (out / "m").mkdir(parents=True)
    doc = {"title": "T", "summary": name + ": 362 members", "headline": {"members": 362},
           "context": {"cohorts": [name], "settings": "s"}}
    (out / "m" / "metrics.json").write_text(json.dumps(doc))
    index = write_index(out, [NotebookResult(name="m", source=Path("m.ipynb"), ipynb=out / "m" / "m.ipynb",
                                             metrics_path=out / "m" / "metrics.json", metrics=doc)]).read_text()
    for page in (html, shown[0].data, index):
        assert not any(c in page for c in "\x1b\x07\x9b"), page
        assert "Power\\x1b[31m Users\\x07\\x9b" in "".join(parse_text(page))


def test_chart_labels_are_not_tex():
    from matplotlib.text import Text

    from cohortlab import charts

    rates = pd.DataFrame({"cohort_name": ["$\\frac{1}{0", "$x$"], "members": [10, 10], "matched": [5, 6],
                          "unmatched": [5, 4], "orphan_created": [0, 0], "match_rate": [0.5, 0.6]})
    fig = charts.match_rate_chart(rates, by="cohort_name")  # an unbalanced $ would fail mathtext
    fig.canvas.draw()
    labels = [t.get_text() for ax in fig.axes for t in ax.get_yticklabels() + ax.get_xticklabels()]
    assert "$x$" in labels and not any(t.get_parse_math() for t in fig.findobj(Text))


# =========================================================================== 3. personal data
def test_members_out_is_pseudonymised_and_stable_across_files(world, tmp_path):
    db = tmp_path / "copy.duckdb"
    shutil.copy(world["db"], db)
    for name in ("m.csv", "m.parquet"):
        r = cli("simulate", "--db", db, "--cohort", TAG_NAME, "--members-out", tmp_path / name, "--no-timeline")
        assert r.exit_code == 0, r.output
        assert "pseudonym" in r.stdout and "without personal data" not in r.stdout
    csv = pd.read_csv(tmp_path / "m.csv", dtype=str)
    pq = pd.read_parquet(tmp_path / "m.parquet")
    assert "email" not in csv.columns
    for f in ("m.csv", "m.parquet"):
        assert not EMAIL.search((tmp_path / f).read_bytes().decode("latin-1"))
    anon = csv["distinct_id"].str.startswith("anon-")
    assert anon.sum() > 5
    assert sorted(csv["distinct_id"]) == sorted(pq["distinct_id"])  # the same pseudonyms in both files

    r = cli("simulate", "--db", db, "--cohort", TAG_NAME, "--members-out", tmp_path / "raw.csv", "--no-timeline",
            "--show-personal-data")
    raw = pd.read_csv(tmp_path / "raw.csv", dtype=str)
    assert raw["distinct_id"].isin(world["emails"]).sum() == anon.sum()  # opt-in: the emails themselves


def test_migrate_validate_is_pseudonymised_unless_asked(world, tmp_path):
    db = tmp_path / "copy.duckdb"
    shutil.copy(world["db"], db)
    plan = tmp_path / "plan.yaml"
    plan.write_text("name: customer id\neit_timeline: customer_id\n")
    out = tmp_path / "v.csv"
    r = cli("migrate", "validate", "--db", db, "--plan", plan, "--cohort", TAG_NAME, "--out", out, "--show", "50")
    assert r.exit_code == 0, r.output
    assert not EMAIL.search(r.output) and not EMAIL.search(out.read_text())
    printed = set(re.findall(r"anon-[0-9a-f]{12}", r.output))
    written = pd.read_csv(out, dtype=str)
    assert printed and printed <= set(written["distinct_id"])
    r2 = cli("simulate", "--db", db, "--cohort", TAG_NAME, "--members-out", tmp_path / "m.csv", "--no-timeline")
    assert r2.exit_code == 0
    assert printed <= set(pd.read_csv(tmp_path / "m.csv", dtype=str)["distinct_id"])  # joinable across outputs
    r = cli("migrate", "validate", "--db", db, "--plan", plan, "--cohort", TAG_NAME, "--out", tmp_path / "raw.csv",
            "--show-personal-data")
    assert r.exit_code == 0 and EMAIL.search((tmp_path / "raw.csv").read_text())


@pytest.mark.parametrize("command", ["plan", "compare"])
def test_migrate_plan_and_compare_show_a_cohort_named_after_an_email_as_its_pseudonym(world, tmp_path, command):
    """`migrate plan|compare --cohort` name the cohort in the --out file's cohort column, in what
    the rates count and in the reconciliation with simulate: as `validate --out` and
    `simulate --members-out` do, a name holding an email is its pseudonym (it was in clear in every
    row and both sentences); --show-personal-data shows it."""
    from cohortlab.lab import Lab
    from cohortlab.privacy import Redactor

    db = tmp_path / "copy.duckdb"
    shutil.copy(world["db"], db)
    with Lab(str(db), read_only=True) as lab:
        shown = Redactor.for_engine(lab.engine).value(EMAIL_NAME)
    assert shown.startswith("anon-")
    plan = ["--plan", tmp_path / "plan.yaml"] if command == "plan" else ["--switch", "2026-02-01"]
    (tmp_path / "plan.yaml").write_text("name: customer id\neit_timeline: customer_id\n")
    out = tmp_path / "daily.csv"
    r = cli("migrate", command, "--db", db, *plan, "--cohort", EMAIL_NAME, "--out", out)
    assert r.exit_code == 0, r.output
    assert not EMAIL.search(r.output) and not EMAIL.search(out.read_text()), r.output
    assert set(pd.read_csv(out, dtype=str)["cohort"]) == {shown}
    assert re.search(rf"^rates count the Mixpanel profiles with events of the [\d,]+ people behind the [\d,]+ "
                     rf"members of '{shown}' \(snapshot ", r.output, re.M), r.output
    assert re.search(rf"^simulate counts the [\d,]+ members of '{shown}' at ", r.output, re.M), r.output
    r = cli("migrate", command, "--db", db, *plan, "--cohort", EMAIL_NAME, "--out", out, "--show-personal-data")
    assert r.exit_code == 0, r.output
    assert set(pd.read_csv(out, dtype=str)["cohort"]) == {EMAIL_NAME}
    assert f"members of '{EMAIL_NAME}' (snapshot " in r.output and shown not in r.output


# =========================================================================== 16. read-only reports
def test_read_only_lab_simulates_without_writing_the_file(world, tmp_path):
    from cohortlab.lab import Lab

    db = tmp_path / "ro.duckdb"
    shutil.copy(world["db"], db)
    plan = {"name": "email", "eit_timeline": "email"}
    with Lab(str(db)) as lab:  # results of earlier commands stored in the file
        lab.compare_plans([plan], "2026-02-01", "2026-02-10")
        stored = len(lab.table("migration_daily"))
    before = _digest(db)
    with Lab(str(db), read_only=True) as lab:
        result = lab.simulate(TAG_NAME)
        assert int(result.waterfall["count"].iloc[0]) > 0
        assert len(lab.table("migration_daily")) == stored  # earlier results stay readable
        assert len(lab.compare_plans([plan], "2026-02-01", "2026-02-03")) == 3
        assert len(lab.table("migration_daily")) == 3  # this run's, written to memory: they replace the plan's rows
        lab.engine.execute("CREATE TABLE scratch AS SELECT 1 AS x")  # writes go to memory
    assert _digest(db) == before and not Path(f"{db}.wal").exists()
    with Lab(str(db)) as lab:
        assert not lab.engine.table_exists("scratch") and len(lab.table("migration_daily")) == stored


def test_failed_notebook_leaves_no_wal_and_a_replaced_db_still_reports(world, tmp_path):
    db = tmp_path / "cron.duckdb"
    shutil.copy(world["db"], db)
    params = 'db = None\ndata = None\ncohorts = None\noutput_dir = None\nshow_personal_data = False'
    broken = _notebook(tmp_path / "broken.ipynb", [
        "from cohortlab.report import notebook as ui\nlab = ui.open_lab(db)\n"
        f"lab.simulate({TAG_NAME!r})\nraise RuntimeError('fails after simulating')"], params)
    good = _notebook(tmp_path / "good.ipynb", [
        "import json, os\nfrom cohortlab.report import notebook as ui\nlab = ui.open_lab(db)\n"
        f"w = lab.simulate({TAG_NAME!r}).waterfall\n"
        "json.dump({'title': 'ok', 'members': int(w['count'].iloc[0])}, open(os.path.join(output_dir, 'metrics.json'), 'w'))"],
        params)
    before = _digest(db)
    r = cli("report", "--db", db, "--notebooks", f"{broken},{good}", "--out", tmp_path / "r1")
    assert r.exit_code == 1 and "fails after simulating" in r.stderr
    assert _digest(db) == before and not Path(f"{db}.wal").exists()
    first = json.loads((tmp_path / "r1" / "good" / "metrics.json").read_text())["members"]

    # a cron job copies another database over the file: later reports read the new file
    import duckdb

    other = tmp_path / "other.duckdb"
    shutil.copy(world["db"], other)
    con = duckdb.connect(str(other))
    con.execute("DELETE FROM mp_cohort_members WHERE cohort_name = ? AND distinct_id IN "
                "(SELECT distinct_id FROM mp_cohort_members WHERE cohort_name = ? ORDER BY distinct_id LIMIT 40)",
                [TAG_NAME, TAG_NAME])
    con.close()
    shutil.copy(other, db)
    r = cli("report", "--db", db, "--notebooks", str(good), "--out", tmp_path / "r2")
    assert r.exit_code == 0, r.output + r.stderr
    second = json.loads((tmp_path / "r2" / "good" / "metrics.json").read_text())["members"]
    assert second < first
    shutil.copy(world["db"], db)  # and back
    r = cli("report", "--db", db, "--notebooks", str(good), "--out", tmp_path / "r3")
    assert r.exit_code == 0, r.output + r.stderr
    assert json.loads((tmp_path / "r3" / "good" / "metrics.json").read_text())["members"] == first
    assert not Path(f"{db}.wal").exists()


@pytest.mark.parametrize("cohort, personal", [(EMAIL_NAME, EMAIL), (PHONE_NAME, re.compile("7700 900123"))],
                         ids=["email", "phone"])
def test_members_out_shows_a_cohort_name_holding_an_email_or_a_phone_as_its_pseudonym(world, tmp_path, cohort,
                                                                                      personal):
    """The cohort_name column of --members-out is the name the reports show: a name that holds
    an email (or a phone number) is its pseudonym (it was in clear in the CSV and Parquet of
    DuckDB, while Spark's already gave the pseudonym); --show-personal-data keeps it."""
    from cohortlab.lab import Lab
    from cohortlab.privacy import Redactor

    db = tmp_path / "copy.duckdb"
    shutil.copy(world["db"], db)
    with Lab(str(db), read_only=True) as lab:
        shown = Redactor.for_engine(lab.engine).value(cohort)
    assert shown.startswith("anon-")
    for name in ("m.csv", "m.parquet"):
        r = cli("simulate", "--db", db, "--cohort", cohort, "--members-out", tmp_path / name, "--no-timeline")
        assert r.exit_code == 0, r.output
        assert not personal.search((tmp_path / name).read_bytes().decode("latin-1")), name
    assert set(pd.read_csv(tmp_path / "m.csv", dtype=str)["cohort_name"]) == {shown}
    assert set(pd.read_parquet(tmp_path / "m.parquet")["cohort_name"]) == {shown}
    r = cli("simulate", "--db", db, "--cohort", cohort, "--members-out", tmp_path / "raw.csv", "--no-timeline",
            "--show-personal-data")
    assert set(pd.read_csv(tmp_path / "raw.csv", dtype=str)["cohort_name"]) == {cohort}


@pytest.mark.parametrize("cohort, personal", [(EMAIL_NAME, EMAIL), (PHONE_NAME, re.compile("7700 900123"))],
                         ids=["email", "phone"])
def test_simulate_waterfall_names_a_personal_cohort_by_its_pseudonym(world, tmp_path, cohort, personal):
    """The waterfall's audience step and the `= false` line after it name the attribute, which
    is the cohort's name: a name holding an email or a phone number is its pseudonym there, as on
    the reports' waterfall (it was in clear); the header names the cohort as typed;
    --show-personal-data shows it."""
    from cohortlab.lab import Lab
    from cohortlab.privacy import Redactor

    db = tmp_path / "copy.duckdb"
    shutil.copy(world["db"], db)
    with Lab(str(db), read_only=True) as lab:
        shown = Redactor.for_engine(lab.engine).value(cohort)
    assert shown.startswith("anon-")
    r = cli("simulate", "--db", db, "--cohort", cohort, "--no-timeline")
    assert r.exit_code == 0, r.output
    head, waterfall = r.output.split("discrepancy waterfall\n")
    assert head.startswith(f"cohort: {cohort}   attribute: '{cohort}'\n")
    assert not personal.search(waterfall), waterfall
    assert re.search(rf"^ *= +audience +\d+ +mParticle audience: {shown} = true$", waterfall, re.M), waterfall
    assert re.search(rf"^audience on {shown} = false: \d+ profiles?$", waterfall, re.M), waterfall
    r = cli("simulate", "--db", db, "--cohort", cohort, "--no-timeline", "--show-personal-data")
    waterfall = r.output.split("discrepancy waterfall\n")[1]
    assert f"mParticle audience: {cohort} = true" in waterfall and f"audience on {cohort} = false: " in waterfall


def test_verify_shows_a_cohort_name_holding_an_email_as_its_pseudonym(world, tmp_path):
    """verify's text, its result and its --out file name the cohort and its attribute names (the
    expected one, the older form `Mixpanel - <name>` some profiles carry) as the reports do: a
    name that holds an email is its pseudonym (they were in clear, also in each profile's detail);
    --show-personal-data shows them."""
    from cohortlab.lab import Lab
    from cohortlab.privacy import Redactor

    db = tmp_path / "copy.duckdb"
    shutil.copy(world["db"], db)
    with Lab(str(db), read_only=True) as lab:
        shown = Redactor.for_engine(lab.engine).value(EMAIL_NAME)
    r = cli("verify", "--db", db, "--cohort", EMAIL_NAME, "--out", tmp_path / "v.csv")
    assert r.exit_code == 0, r.output
    assert not EMAIL.search(r.output), r.output
    assert f"cohort: {shown}   attribute: '{shown}'" in r.output
    assert not EMAIL.search((tmp_path / "v.csv").read_text())
    with Lab(str(db)) as lab:
        v = lab.verify(EMAIL_NAME)
        assert (v.cohort, v.attribute) == (shown, shown)
        assert not any(EMAIL.search(str(x)) for x in [*v.names["attribute"], *v.names["how"], *v.notes,
                                                       *v.profiles["detail"].dropna(), *v.profiles["other_name"].dropna()])
    r = cli("verify", "--db", db, "--cohort", EMAIL_NAME, "--show-personal-data")
    assert f"cohort: {EMAIL_NAME}   attribute: '{EMAIL_NAME}'" in r.output
