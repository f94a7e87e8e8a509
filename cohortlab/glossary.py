"""The words the reports write for the codes of the data, one table per kind of code: identifier
sources, gap reasons, verify causes and the waterfall's steps. The pages (charts, tables,
summaries) show these words; ``metrics.json``, the tables in the database and the command line
keep the codes, which docs/glossary.md defines. Its tables show these words in their "on the
pages" column (tests/test_glossary.py keeps the two the same).

A code no table knows is shown as it is (a newer code, or data of another kind); a missing value
as ``(none)``."""

from __future__ import annotations

import math
from typing import Any, Mapping

# resolution.identifier_source (docs/glossary.md#identifier-sources)
SOURCE_WORDS = {
    "mparticle_user_id": "profile's $mparticle_user_id",
    "event_property": "event's $mparticle_user_id",
    "distinct_id": "$distinct_id (fallback)",
    "none": "none (strict fallback)",
}

# resolution.gap_reason (docs/glossary.md#gap-reasons): short, for chart labels and table rows
REASON_WORDS = {
    "fallback_disabled": "no $mparticle_user_id, fallback off",
    "malformed_mparticle_user_id": "$mparticle_user_id not an MPID",
    "distinct_id_not_mpid": "$distinct_id not an MPID",
    "mpid_precision_loss": "MPID rounded through a float",
    "distinct_id_is_identity": "$distinct_id is an identity",
    "mpid_not_found": "MPID of no mParticle profile",
}

# resolution.gap_reason in a sentence: the label of the waterfall's ``unmatched:<gap_reason>`` steps
REASON_LABELS = {
    "fallback_disabled": "no $mparticle_user_id and the $distinct_id fallback is off (EIT not mparticle_id)",
    "malformed_mparticle_user_id": "$mparticle_user_id is not a valid MPID",
    "distinct_id_not_mpid": "$distinct_id is not an MPID (customer id, email, device id)",
    "mpid_precision_loss": "MPID lost precision through a float",
    "distinct_id_is_identity": "$distinct_id is a user identity (e.g. a numeric customer id), not an MPID",
    "mpid_not_found": "MPID of no existing mParticle profile",
}

# verify's cause of a disagreement (docs/glossary.md#verify-causes)
CAUSE_WORDS = {
    "snapshot_before_last_run": "snapshot before the last run",
    "attribute_name_differs": "attribute under another name",
    "profile_missing_in_snapshot": "profile not in the snapshot",
    "pause_not_modelled": "pause not modelled",
    "unexplained": "unexplained",
}

# the waterfall's steps (docs/glossary.md#waterfall-steps); ``unmatched:<gap_reason>`` is the reason's words
STEP_WORDS = {
    "members": "Mixpanel members",
    "shared_mpid": "shared MPID",
    "should_be_true": "should be true",
    "not_yet_true": "not yet true",
    "stale_true": "stale true",
    "orphans_true": "orphans true",
    "audience": "mParticle audience",
}


def _missing(code: Any) -> bool:
    return code is None or (isinstance(code, float) and code != code)


def words(table: Mapping[str, str], code: Any) -> str:
    """``code`` as the pages write it: its words in ``table``, else the code as it is;
    ``(none)`` for a missing value."""
    if _missing(code):
        return "(none)"
    return table.get(str(code), str(code))


def words_sql(table: Mapping[str, str], expr: str) -> str:
    """SQL: the words of the code ``expr`` in ``table`` (:func:`words` in the engine), for text
    built in a query."""
    from cohortlab.pipeline import sql_str

    cases = " ".join(f"WHEN {sql_str(k)} THEN {sql_str(v)}" for k, v in table.items())
    return f"CASE {expr} {cases} ELSE coalesce({expr}, '(none)') END"


def source_words(code: Any) -> str:
    """An identifier source in words: ``event_property`` -> ``event's $mparticle_user_id``."""
    return words(SOURCE_WORDS, code)


def reason_words(code: Any) -> str:
    """A gap reason in words: ``distinct_id_not_mpid`` -> ``$distinct_id not an MPID``."""
    return words(REASON_WORDS, code)


def cause_words(code: Any) -> str:
    """A verify cause in words: ``profile_missing_in_snapshot`` -> ``profile not in the snapshot``."""
    return words(CAUSE_WORDS, code)


def step_words(step: Any) -> str:
    """A waterfall step in words: ``unmatched:mpid_not_found`` -> ``MPID of no mParticle profile``,
    ``should_be_true`` -> ``should be true``."""
    if _missing(step):
        return "(none)"
    step = str(step)
    if step in STEP_WORDS:
        return STEP_WORDS[step]
    if step.startswith("unmatched:"):
        return reason_words(step.split(":", 1)[1])
    return step


def pct(x: float | None) -> str:
    """A share 0..1 as a percentage with one decimal; a share strictly between 0 and 1 is never
    rounded to 0.0% or 100.0% (``<0.1%``, ``>99.9%``): 1 disagreement in 3,374 profiles is not
    100.0% agreement."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    text = f"{x * 100:.1f}%"
    if text == "100.0%" and x < 1:
        return ">99.9%"
    if text in ("0.0%", "-0.0%") and x > 0:
        return "<0.1%"
    return text


__all__ = ["pct", "CAUSE_WORDS", "REASON_LABELS", "REASON_WORDS", "SOURCE_WORDS", "STEP_WORDS", "cause_words", "counted",
           "reason_words", "source_words", "step_words", "words", "words_sql"]


def counted(n: int, noun: str, plural: str | None = None, bold: bool = False) -> str:
    """``n`` with its noun in the right number: "1 member", "2 members", "1,200 members"
    (``bold``: the number in Markdown bold); the reports' sentences and the CLI's lines."""
    num = f"**{n:,}**" if bold else f"{n:,}"
    return f"{num} {noun if n == 1 else (plural or noun + 's')}"
