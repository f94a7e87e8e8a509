"""The words the report pages write for codes (cohortlab/glossary.py): one for every code the
simulation and verify write, the same as the glossary page's "on the pages" column, and what
the charts, tables and summaries show."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cohortlab import glossary
from cohortlab.simulation.resolution import GAP_REASONS, IDENTIFIER_SOURCES
from cohortlab.simulation.verify import CAUSES

GLOSSARY_PAGE = Path(__file__).resolve().parents[1] / "docs" / "glossary.md"


def page_column(anchor: str) -> dict[str, str]:
    """{code: words} of the table under the heading ``{#anchor}``: its first column and the one
    headed "on the pages"."""
    text = GLOSSARY_PAGE.read_text(encoding="utf-8")
    section = text.split("{#" + anchor + "}", 1)[1].split("\n## ", 1)[0]
    rows = [r for r in section.splitlines() if r.startswith("|")]
    cells = [[c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", r)[1:-1]] for r in rows]
    col = cells[0].index("on the pages")
    return {row[0].strip("`"): row[col] for row in cells[2:]}


@pytest.mark.parametrize("codes, table", [
    (IDENTIFIER_SOURCES, glossary.SOURCE_WORDS),
    (GAP_REASONS, glossary.REASON_WORDS),
    (GAP_REASONS, glossary.REASON_LABELS),
    (CAUSES, glossary.CAUSE_WORDS),
])
def test_every_code_has_words_and_no_two_codes_share_them(codes, table):
    assert set(table) == set(codes)
    assert len(set(table.values())) == len(table)


@pytest.mark.parametrize("anchor, table", [
    ("identifier-sources", glossary.SOURCE_WORDS),
    ("gap-reasons", glossary.REASON_WORDS),
    ("verify-causes", glossary.CAUSE_WORDS),
])
def test_the_glossary_page_shows_the_words_the_pages_write(anchor, table):
    assert page_column(anchor) == table


def test_the_waterfall_steps_on_the_glossary_page():
    assert page_column("waterfall-steps") == {**glossary.STEP_WORDS,
                                              "unmatched:<gap_reason>": "the gap reason's words"}


def test_words_of_codes_missing_values_and_unknown_codes():
    assert glossary.reason_words("distinct_id_not_mpid") == "$distinct_id not an MPID"
    assert glossary.source_words("event_property") == "event's $mparticle_user_id"
    assert glossary.cause_words("profile_missing_in_snapshot") == "profile not in the snapshot"
    assert glossary.step_words("unmatched:mpid_not_found") == "MPID of no mParticle profile"
    assert glossary.step_words("should_be_true") == "should be true"
    assert glossary.reason_words(None) == glossary.reason_words(float("nan")) == "(none)"
    assert glossary.reason_words("a_newer_reason") == "a_newer_reason"  # shown as it is, never guessed


def test_the_engine_writes_the_same_words():
    import duckdb

    codes = [*GAP_REASONS, "a_newer_reason", None]
    con = duckdb.connect()
    con.execute("CREATE TABLE t (k INTEGER, gap_reason VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(codes)))
    got = [r[0] for r in con.execute(
        f"SELECT {glossary.words_sql(glossary.REASON_WORDS, 'gap_reason')} FROM t ORDER BY k").fetchall()]
    assert got == [glossary.reason_words(c) for c in codes]


def test_the_validation_explanations_on_the_pages_are_the_codes_in_their_order():
    """docs/glossary.md's list and docs/migration.md#validation's table name every explanation
    the comparison writes, in the order it decides them (a new one was missing from both)."""
    from cohortlab.migration.validate import EXPLANATIONS

    text = GLOSSARY_PAGE.read_text(encoding="utf-8")
    listed = text.split("`migration_validation.explanation`", 1)[1].split("(see ", 1)[0]
    assert re.findall(r"`(\w+)`", listed) == list(EXPLANATIONS)
    page = (GLOSSARY_PAGE.parent / "migration.md").read_text(encoding="utf-8")
    table = page.split("| explanation | meaning |", 1)[1].split("\n\n", 1)[0]
    assert re.findall(r"^\| `(\w+)` \|", table, re.M) == list(EXPLANATIONS)
