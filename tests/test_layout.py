"""The layout docs/DEVELOPING.md#layout draws: each module or package of ``cohortlab`` imports
only from those listed above it, but for the few imports the page names, each inside the one
function that needs it. A newcomer who reads the list reads how the code depends."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cohortlab"

# (importing file, imported unit): the upward imports docs/DEVELOPING.md#layout lists, with why
ALLOWED_UP = {
    ("cohortlab/errors.py", "privacy"),                # an error's reason is masked
    ("cohortlab/schema.py", "engines"),                # a file's format checked before its tables are listed
    ("cohortlab/engines/spark/readers.py", "loaders"),  # a project's time zone, as the DuckDB loader reads it
    ("cohortlab/lab.py", "fetch"),                     # Lab.fetch
    ("cohortlab/report/insights.py", "charts"),        # the migration chart
}


def layout_order() -> list[str]:
    """The units of the page's layout block, top to bottom (``engines/base`` apart from ``engines``)."""
    text = (ROOT / "docs" / "DEVELOPING.md").read_text(encoding="utf-8")
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    return [m.group(1).removesuffix(".py").rstrip("/") for line in block.splitlines()
            if (m := re.match(r"  (\w[\w/.]*)\s", line))]


def _unit(parts: tuple[str, ...]) -> str:
    if parts[:2] == ("engines", "base") or parts[:2] == ("engines", "base.py"):
        return "engines/base"
    return parts[0].removesuffix(".py")


def upward_imports(order: list[str]) -> set[tuple[str, str, int]]:
    rank = {u: i for i, u in enumerate(order)}
    found = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        me = _unit(path.relative_to(PACKAGE).parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = ([f"{node.module}.{a.name}" for a in node.names] if node.module == "cohortlab"
                         else [node.module])
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                parts = tuple(name.split("."))
                if parts[0] != "cohortlab" or len(parts) < 2:
                    continue
                unit = _unit(parts[1:])
                if unit in rank and me in rank and rank[unit] > rank[me]:
                    found.add((path.relative_to(ROOT).as_posix(), unit, node.lineno))
    return found


def test_every_module_of_the_package_is_in_the_layout():
    order = layout_order()
    units = {_unit(p.relative_to(PACKAGE).parts) for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert units - set(order) == set()


def test_each_module_imports_only_from_those_above_it_but_the_listed_few():
    found = upward_imports(layout_order())
    assert {(path, unit) for path, unit, _ in found} == ALLOWED_UP, sorted(found)


def test_the_listed_upward_imports_are_inside_a_function():
    """So that importing the lower module never imports the higher one."""
    for path, unit, line in upward_imports(layout_order()):
        tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
        top = {n.lineno for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))}
        assert line not in top, (path, unit, line)


def test_the_check_finds_an_import_that_goes_up():
    order = layout_order()
    swapped = [u for u in order if u != "errors"] + ["errors"]  # errors below everything: times imports it
    assert ("cohortlab/times.py", "errors") in {(p, u) for p, u, _ in upward_imports(swapped)}
