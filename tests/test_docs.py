"""The documentation: docs/ builds as an MkDocs site without a warning, nothing the project
ships (the package, the README, docs/) cites a file that the repository does not contain, and
every ``cohortlab`` command line the README and docs/ show names a command and options that
exist."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Text that the citation check reads: the whole repository (a user, a reader of the code or of
# a test); this file is left out (it plants citations on purpose).
CHECKED = ("cohortlab", "docs", "README.md", "bench", "tests", "notebooks", "data", "pyproject.toml", "Makefile",
           "mkdocs.yml", ".ci")
SELF = Path(__file__).resolve()
TEXT_SUFFIXES = {".py", ".md", ".ipynb", ".yaml", ".yml", ".txt", ".html", ".cfg", ".toml"}
SKIP_DIRS = {".git", ".venv", "__pycache__", "site", "node_modules"}

# The contract and the design notes lived outside the repository: citing them sends a reader to
# a file they cannot open. Cite docs/rules.md#<anchor> instead. So do the project's working notes:
# "audit 121 Q5", "issue 14" and "session 37" name notes and days a reader cannot open; say what
# the case is instead. The benchmark pages alone date their figures by session ("session N" is
# defined at the top of each, with where its raw figures and commits are).
BENCHMARK_PAGES = frozenset({"docs/benchmarks.md", "docs/benchmark-history.md"})
# "audit 12", "Audits 115-117", "issue #15", "issue14", "test_issue14_steps"; not a file name of
# bench/results/ such as `4m-issue14-after-r1.json` (a file the repository holds)
WORKING_NOTE = r"(?<![A-Za-z0-9/.-]){}s?\s?#?\d+"
AUDIT_OR_ISSUE = re.compile(WORKING_NOTE.format("(?:audit|issue)"), re.IGNORECASE)
SESSION = re.compile(WORKING_NOTE.format("session"), re.IGNORECASE)
FORBIDDEN = [
    (re.compile(r"\bSPEC\b"), "cites SPEC (outside the repository); cite docs/rules.md#<anchor>", frozenset()),
    (re.compile(r"\bDESIGN\b"), "cites DESIGN (outside the repository); cite docs/DEVELOPING.md", frozenset()),
    (re.compile(r"§\s*\d"), "cites a numbered section (§n) of a document; cite docs/rules.md#<anchor>", frozenset()),
    (re.compile(r"https?://(?:docs\.|help\.|developer\.|github\.com|stackoverflow\.com)"),
     "links to documentation outside the repository; say it in the project's own words", frozenset()),
    (AUDIT_OR_ISSUE, "cites an audit or issue number (a note outside the repository); say what the case is",
     frozenset()),
    (SESSION, "cites a session number (a working day outside the repository); say what changed or was "
     "measured (only the benchmark pages date figures by session)", BENCHMARK_PAGES),
]
# A file name with one of these extensions must name a file of the repository (a stem of two
# characters or more, not followed by "(": `ci.md(...)` is a call, `p.txt` a SQL column).
FILE_NAME = re.compile(r"(?<![\w/.\\-])((?:[\w-]+/)*[\w-][\w.-]*\w\.(?:md|txt))\b(?!\()")
MD_LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)\s]*)?\)")


def repo_files(root: Path) -> list[Path]:
    out = []
    for p in root.rglob("*"):
        if p.is_file() and not (SKIP_DIRS & set(p.relative_to(root).parts)):
            out.append(p)
    return out


def checked_files(root: Path, targets=CHECKED) -> list[Path]:
    files = []
    for t in targets:
        p = root / t
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            files += [f for f in repo_files(p) if f.suffix in TEXT_SUFFIXES]
    return sorted(f for f in files if f.resolve() != SELF)


def citation_problems(root: Path, targets=CHECKED) -> list[str]:
    """``path:line: what`` for every citation of something the repository at ``root`` does not
    contain: SPEC/DESIGN and §-sections, audit, issue and session numbers (the project's working
    notes and days; sessions allowed on the benchmark pages), file names (``*.md``, ``*.txt``) of no file in the
    repository (not in tests/, whose files name the scratch files they write), and relative
    Markdown links to a missing file."""
    names = {p.name for p in repo_files(root)}
    problems = []
    for f in checked_files(root, targets):
        text = f.read_text(encoding="utf-8", errors="replace")
        rel = f.relative_to(root)
        if AUDIT_OR_ISSUE.search(f.name) or SESSION.search(f.name):
            problems.append(f"{rel}: its name cites an audit, issue or session number; name it after what it holds")
        for n, line in enumerate(text.splitlines(), 1):
            for rx, what, allowed in FORBIDDEN:
                if rx.search(line) and rel.as_posix() not in allowed:
                    problems.append(f"{rel}:{n}: {what}: {line.strip()[:120]}")
            for m in FILE_NAME.finditer(line) if rel.parts[0] != "tests" else ():
                if Path(m.group(1)).name not in names:
                    problems.append(f"{rel}:{n}: cites {m.group(1)}, which is not in the repository")
            if f.suffix == ".md":
                for m in MD_LINK.finditer(line):
                    target = m.group(1)
                    if "://" in target or target.startswith("mailto:"):
                        continue
                    if not (f.parent / target).exists():
                        problems.append(f"{rel}:{n}: links to {target}, which does not exist")
    return problems


# ----------------------------------------------------------------------------- the site
def test_mkdocs_builds_strict(tmp_path):
    """Every page is in the nav, every link and anchor resolves, no warning at all."""
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--clean",
         "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    assert (tmp_path / "site" / "rules" / "index.html").exists()


def test_rules_page_has_the_anchors_the_code_cites():
    """Every docs/rules.md#anchor cited in the package or the docs exists on the page."""
    rules = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    anchors = set(re.findall(r"\{#([\w-]+)\}", rules))
    cited = set()
    for f in checked_files(ROOT):
        cited |= set(re.findall(r"rules\.md#([\w-]+)", f.read_text(encoding="utf-8", errors="replace")))
    assert cited, "nothing cites docs/rules.md"
    assert cited - anchors == set()


def _rule_map_rows(section: str):
    """``(anchors, paths)`` of each row of a table of docs/DEVELOPING.md: the rules.md and
    simulate.md anchors of its first cell, the ``cohortlab/`` or ``tests/`` paths of the second."""
    text = (ROOT / "docs" / "DEVELOPING.md").read_text(encoding="utf-8")
    table = text.split(section, 1)[1].split("\n\n", 3)[2]  # the heading, its paragraph, the table
    for line in table.splitlines():
        cells = line.split(" | ")
        if line.startswith("| [") and len(cells) >= 2:
            yield (re.findall(r"\((?:rules|simulate)\.md#([\w-]+)\)", cells[0]),
                   re.findall(r"`((?:cohortlab|tests)/[\w/]+(?:\.py)?)`", cells[1]))


def _texts(paths):
    for p in paths:
        p = ROOT / p
        yield from ([p.read_text(encoding="utf-8")] if p.is_file() else
                    (f.read_text(encoding="utf-8") for f in sorted(p.rglob("*.py"))))


def test_each_rule_of_the_rule_map_is_cited_by_its_anchor_in_a_module_its_row_names():
    """DEVELOPING's recipe, `grep -rn "rules.md#gap-reasons" cohortlab`, finds each rule's code:
    a module the row names cites the anchor (14 of 36 rules could not be found so, their
    modules citing the page by a heading's words, which had changed)."""
    rows = list(_rule_map_rows("## Where each rule lives"))
    assert len(rows) >= 30
    missing = [(a, paths) for anchors, paths in rows for a in anchors
               if not any(f"md#{a}" in t for t in _texts(paths))]
    assert missing == []


def test_each_rule_names_the_tests_that_pin_it_and_they_exist():
    """Every rule of the map has a row in "Where each rule is tested", and each test module and
    test function a row names exists (a renamed test would leave the row pointing at nothing)."""
    rows = list(_rule_map_rows("## Where each rule is tested"))
    tested = {a for anchors, _ in rows for a in anchors}
    mapped = {a for anchors, _ in _rule_map_rows("## Where each rule lives") for a in anchors}
    assert mapped - tested == set()
    assert all(paths and all((ROOT / p).is_file() for p in paths) for _, paths in rows)
    text = (ROOT / "docs" / "DEVELOPING.md").read_text(encoding="utf-8").split("## Where each rule is tested")[1]
    missing, module = [], None
    for name in re.findall(r"`((?:tests/[\w/]+\.py)|test_\w+)`", text.split("\n\n", 3)[2]):
        if name.startswith("tests/"):
            module = name
        elif not re.search(rf"def {name}\(", (ROOT / module).read_text(encoding="utf-8")):
            missing.append((module, name))
    assert missing == []


# ----------------------------------------------------------------------------- citations
def test_nothing_cites_a_file_outside_the_repository():
    problems = citation_problems(ROOT)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize(
    "planted, expected",
    [
        ("the waterfall (SPEC §4) adds up", "cites SPEC"),
        ('"""See SPEC.md for the rules."""', "cites SPEC"),
        ("# the portable subset of DESIGN.md", "cites DESIGN"),
        ("wire formats: formats.md §5", "cites formats.md"),
        ("see architecture-anchors.md", "cites architecture-anchors.md"),
        ("as the guide says (section §3.2)", "numbered section"),
        ("[the rules](missing.md#gap-reasons)", "links to missing.md"),
        ("the export API (<https://docs.mixpanel.com/reference/raw-event-export>)", "documentation outside"),
        ("# a 429 pauses every thread (audit 12)", "audit or issue number"),
        ('"""Five minutes with the command line (Audit 107)."""', "audit or issue number"),
        ("# after audits 115-117", "audit or issue number"),
        ("# --engine duckdb|spark (issue 7)", "audit or issue number"),
        ("lean report (issue #15 items 3 and 5)", "audit or issue number"),
        ("see tests/benchmarks/test_issue14_steps.py", "audit or issue number"),
        ("# measured at 10M users (session 21)", "session number"),
        ("a leftover of sessions 42-43", "session number"),
    ],
)
def test_the_citation_check_catches_a_planted_citation(tmp_path, planted, expected):
    (tmp_path / "README.md").write_text("# x\nsee [rules](docs/rules.md#gap-reasons)\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "rules.md").write_text("## Gap reasons {#gap-reasons}\n")
    pkg = tmp_path / "cohortlab"
    pkg.mkdir()
    (pkg / "clean.py").write_text('"""Gap reasons: docs/rules.md#gap-reasons."""\n')
    assert citation_problems(tmp_path) == []

    suffix = ".md" if planted.startswith("[") else ".py"
    (pkg / f"planted{suffix}").write_text(f"first line\n{planted}\n")
    problems = citation_problems(tmp_path)
    assert len(problems) >= 1
    assert all(p.startswith(f"cohortlab/planted{suffix}:2: ") for p in problems), problems
    assert any(expected in p for p in problems), problems



def test_a_session_is_cited_only_on_the_benchmark_pages_and_a_file_name_cites_no_issue(tmp_path):
    """The benchmark pages date their figures by session (and name the raw figures' files of
    bench/results/, such as ``4m-issue14-after-r1.json``); "session N" anywhere else, and a
    file named after an issue, are reported."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "benchmarks.md").write_text("# x\n7.1 s (session 37, `bench/results/4m-issue14-after-r1.json`)\n")
    (docs / "benchmark-history.md").write_text("# x\n## Session 25: the report {#session-25}\n")
    assert citation_problems(tmp_path) == []

    (docs / "simulate.md").write_text("# x\nOn the 1M world (session 8): 5.8 s\n")
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_issue14_steps.py").write_text('"""The bench steps verify, explain and timeline."""\n')
    (tests / "test_clean.py").write_text("# the quarantine of audit 12\n")
    problems = citation_problems(tmp_path)
    assert sorted(p.split(": ")[0] for p in problems) == [
        "docs/simulate.md:2", "tests/test_clean.py:1", "tests/test_issue14_steps.py"], problems
    assert any("session number" in p for p in problems)
    assert any("audit or issue number" in p for p in problems)
    assert any("its name cites" in p for p in problems)

# ----------------------------------------------------------------------------- command lines
# `cohortlab <command> ...` at the start of a shell line (after `$ `, `&&`, `;` or `|`) in a
# code block, or at the start of an inline code span
SHELL_COMMAND = re.compile(r"(?:^|\$ |&& |; |\| )cohortlab\s+(.*)")
INLINE_COMMAND = re.compile(r"`cohortlab\s+([^`]+)`")


def command_lines(text: str):
    """(line number, the text after ``cohortlab``) of every command line of a Markdown text:
    shell lines of fenced code blocks (continuations with ``\\`` joined) and inline code spans."""
    fenced = False
    pending, start = "", 0
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced, pending = not fenced, ""
            continue
        if fenced:
            if not pending:
                start = n
            pending += line.rstrip("\\") + " " if line.rstrip().endswith("\\") else line
            if line.rstrip().endswith("\\"):
                continue
            m = SHELL_COMMAND.search(pending.strip())
            if m:
                yield start, m.group(1)
            pending = ""
        else:
            for m in INLINE_COMMAND.finditer(line):
                yield n, m.group(1)


def command_problems(path: Path, text: str) -> list[str]:
    """``path:line: what`` for every command line of ``text`` that names a command or an option
    the CLI does not have (values are not checked: an example's files need not exist). A command
    that passes unknown options on (``cohortlab lab`` to Jupyter) takes any."""
    import click

    from cohortlab.cli import main

    problems = []
    for n, rest in command_lines(text):
        try:
            toks = shlex.split(rest.split(" #")[0])
        except ValueError:
            continue
        cmd, names = main, []
        while isinstance(cmd, click.Group) and toks and not toks[0].startswith("-"):
            if "|" in toks[0] and set(toks[0].split("|")) <= set(cmd.commands):  # a synopsis: `plan|compare`
                cmd = None
                break
            if toks[0] not in cmd.commands:
                if not re.fullmatch(r"\W*", toks[0]) and toks[0] not in ("COMMAND", "<command>"):
                    problems.append(f"{path}:{n}: cohortlab {' '.join(names + toks[:1])}: no such command")
                break
            names.append(toks[0])
            cmd = cmd.commands[toks.pop(0)]
        if cmd is None or isinstance(cmd, click.Group) or cmd.context_settings.get("ignore_unknown_options"):
            continue
        known = {"-h", "--help"}
        for param in cmd.params:
            known.update(param.opts + param.secondary_opts)
        for t in toks:  # `--x=1`, a synopsis' `[--flag/--no-flag]`
            for opt in t.split("=")[0].strip("[]|").split("/"):
                if opt.startswith("-") and not re.fullmatch(r"-[\d.]+|-+", opt) and opt not in known:
                    problems.append(f"{path}:{n}: cohortlab {' '.join(names)}: no option {opt}")
    return problems


def test_every_command_line_the_docs_show_exists():
    """README, docs/, and what the package and notebooks say (help, errors, hints)."""
    problems = []
    for f in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "cohortlab").rglob("*.py")),
              *sorted((ROOT / "notebooks").glob("*.ipynb"))]:
        problems += command_problems(f.relative_to(ROOT), f.read_text(encoding="utf-8"))
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("planted, expected", [
    ("```sh\ncohortlab simulate --db lab.duckdb --cohort C --members-csv out.csv\n```", "x.md:2: cohortlab simulate: no option --members-csv"),
    ("```sh\n$ cohortlab load --db x.duckdb \\\n    mixpanel-events ev/ --propertys all\n```", "x.md:2: cohortlab load: no option --propertys"),
    ("run `cohortlab simulat --db lab.duckdb` first", "x.md:1: cohortlab simulat: no such command"),
    ("```sh\nmake demo && cohortlab migrate compar --db x\n```", "x.md:2: cohortlab migrate compar: no such command"),
])
def test_the_command_check_catches_a_planted_mistake(planted, expected):
    assert command_problems(Path("x.md"), "```sh\ncohortlab simulate --db lab.duckdb --cohort C --no-store\n```") == []
    assert command_problems(Path("x.md"), planted) == [expected]


def test_the_demo_dates_the_reports_page_gives_are_the_demo_scenario_s():
    """docs/reports.md#demo describes the world `cohortlab demo` generates: the generator's `demo`
    scenario, its EIT switch and the day events start to carry `$mparticle_user_id`."""
    from cohortlab.settings import SyncSettings
    from cohortlab.synth.scenarios import SCENARIOS

    demo = (ROOT / "docs" / "reports.md").read_text(encoding="utf-8").split("## The demo", 1)[1].split("\n## ", 1)[0]
    params = SCENARIOS["demo"].params
    switch = next(e["start"] for e in params["eit"] if e["type"] == "mparticle_id")[:10]
    cutoff = SyncSettings().event_identity_cutoff.strftime("%Y-%m-%d")
    assert "`demo` scenario" in demo
    assert f"Customer ID until {switch}, then mParticle ID" in demo
    assert f"`$mparticle_user_id` on events from {params['event_mpuid_from'][:10]}" in demo
    assert f"event identity cutoff {cutoff}" in demo


def test_the_readme_s_command_line_prints_the_waterfall_the_readme_shows(tmp_path, monkeypatch):
    """README's "Five minutes with the command line", run as printed (in a temporary
    folder; the report is left out: tests/reports runs it), prints the waterfall the README shows.
    Its last load named only mparticle/profiles.jsonl, so the profiles of
    mparticle/profiles/identities-only.jsonl were missing and 11 more members were
    mpid_not_found than the README showed."""
    from click.testing import CliRunner

    from cohortlab.cli import main

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Five minutes with the command line", 1)[1]
    block = re.findall(r"^```sh\n(.*?)^```", section, re.S | re.M)[0]
    shown = section.split("\ndiscrepancy waterfall\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    out = ""
    for line in block.splitlines():
        line = line.split("   #", 1)[0]  # world/ and lab.duckdb: in tmp_path, the current folder
        if not line.startswith("cohortlab ") or line.startswith("cohortlab report "):
            continue
        r = CliRunner().invoke(main, shlex.split(line)[1:])
        assert r.exit_code == 0, f"{line}\n{r.output}"
        out = r.stdout
    printed = out.split("\ndiscrepancy waterfall\n", 1)[1].split("\n\n", 1)[0]
    def words(text: str) -> list[list[str]]:
        return [ln.split() for ln in text.strip().splitlines()]
    assert words(printed) == words(shown)
