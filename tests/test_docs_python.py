"""The Python examples of the README and docs/ run as printed, on a small generated world: each
page's ``python`` code blocks in order, in one namespace (a page's later blocks use what its
earlier ones made), with ``lab`` open on the world's database, as the pages assume. An example
that names an attribute, a method or an argument the package does not have fails here."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)

# pages whose examples run here, and the ones that cannot, with why
RUN = ["README.md", "docs/simulate.md", "docs/loading.md", "docs/migration.md", "docs/settings.md", "docs/synth.md"]
NOT_RUN = {
    "docs/spark.md": "needs a SparkSession: tests/spark runs the same API on Spark",
    "docs/reports.md": "an Airflow DAG (Airflow is not a dependency)",
}
COHORT_WITH_EMAILS = "Power Users"


def python_blocks(page: str) -> list[str]:
    return PYTHON_BLOCK.findall((ROOT / page).read_text(encoding="utf-8"))


def test_every_page_with_python_examples_is_run_or_says_why_not():
    pages = {str(p.relative_to(ROOT)) for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")] if python_blocks(
        str(p.relative_to(ROOT)))}
    assert pages == set(RUN) | set(NOT_RUN)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A small mid-migration world, loaded once: (world folder, database, an email of a member
    of COHORT_WITH_EMAILS for the explain example)."""
    from cohortlab import Lab
    from cohortlab.loaders.folder import load_world
    from cohortlab.synth import generate

    root = tmp_path_factory.mktemp("docs_world")
    generate(root / "world", users=1500, seed=7, scenario="mid_migration")
    with Lab(root / "project.duckdb") as lab:
        load_world(lab, root / "world")
        (email,) = lab.engine.query_rows(
            "SELECT min(p.email) FROM mp_profiles p JOIN mp_cohort_members m USING (distinct_id) "
            "WHERE m.cohort_name = ? AND p.email IS NOT NULL", [COHORT_WITH_EMAILS])[0]
    return root / "world", root / "project.duckdb", email


def _settings_yaml() -> str:
    """The settings file docs/settings.md shows (the ```yaml block that starts ``# settings.yaml``)."""
    text = (ROOT / "docs/settings.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"^```yaml\n(.*?)^```", text, re.S | re.M) if b.startswith("# settings.yaml")]
    return block


def _lab_open(lab) -> bool:
    try:
        lab.engine.query_rows("SELECT 1")
        return True
    except Exception:  # noqa: BLE001 - a closed connection
        return False


@pytest.mark.parametrize("page", RUN)
def test_the_python_examples_of_a_page_run(page, world, tmp_path, monkeypatch):
    from cohortlab import Lab

    folder, db, email = world
    monkeypatch.chdir(tmp_path)
    # the files the examples name, as the pages' own earlier steps make them
    shutil.copy(db, "project.duckdb")
    shutil.copy(db, "lab.duckdb")
    shutil.copy(next((folder / "mixpanel" / "profiles").iterdir()), "profiles.jsonl")
    shutil.copytree(ROOT / "data" / "plans", "data/plans")
    Path("settings.yaml").write_text(_settings_yaml())
    blocks = python_blocks(page)
    assert blocks, f"{page} has no python example"
    ns: dict = {"lab": Lab("project.duckdb")}
    try:
        for i, block in enumerate(blocks):
            # the README's world is the one `cohortlab synth` wrote to world/ (it was /tmp/world:
            # a predictable name in a folder every user writes to); explain's user is one of the
            # cohort's members
            code = block.replace('"world/', f'"{folder}/').replace("bob@example.com", email)
            if not _lab_open(ns["lab"]):  # an example closed it; the next one assumes it open
                ns["lab"] = Lab("project.duckdb")
            exec(compile(code, f"{page} python block {i + 1}", "exec"), ns)  # noqa: S102 - the docs' own code
    finally:
        for v in list(ns.values()):
            if isinstance(v, Lab):
                v.close()
