"""The public ``Lab`` methods read their positions the same way: a method about one cohort takes
``cohort, at, settings`` (``explain``: ``cohort, user, at, settings``; the migration methods:
``plan(s), start, end, settings`` or ``plan, cohort, at, settings``) by position or by name, and
every other argument by name only. Before, ``reexport_value(cohort, when, at)`` and
``remedies(cohort, at, since)`` read their second and third positions differently, and
``simulate(cohort, at, settings, "webhooks")`` passed a source by position."""

from __future__ import annotations

import inspect

import pytest

from cohortlab import Lab

POSITIONAL = {
    "simulate": ["cohort", "at", "settings"],
    "cached_simulation": ["cohort", "at", "settings"],
    "resolution": ["cohort", "at", "settings"],
    "timeline": ["cohort", "at", "settings"],
    "waterfall": ["cohort", "at", "settings"],
    "gap_summary": ["cohort", "at", "settings"],
    "assumption_ranges": ["cohort", "at", "settings"],
    "reexport_value": ["cohort", "at", "settings"],
    "remedies": ["cohort", "at", "settings"],
    "verify": ["cohort", "at", "settings"],
    "explain": ["cohort", "user", "at", "settings"],
    "migration_plan": ["plan", "start", "end", "settings"],
    "compare_plans": ["plans", "start", "end", "settings"],
    "validate_migration": ["plan", "cohort", "at", "settings"],
}


@pytest.mark.parametrize("method", sorted(POSITIONAL))
def test_only_the_question_is_positional_the_rest_by_name(method):
    params = list(inspect.signature(getattr(Lab, method)).parameters.values())[1:]  # without self
    positional = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert positional == POSITIONAL[method]
    assert all(p.kind is p.KEYWORD_ONLY for p in params[len(positional):]), method


def test_every_public_method_about_a_cohort_is_listed():
    about_a_cohort = {name for name, fn in inspect.getmembers(Lab, inspect.isfunction)
                      if not name.startswith("_") and "cohort" in inspect.signature(fn).parameters}
    assert about_a_cohort <= set(POSITIONAL)


def test_a_since_or_when_by_position_is_refused_not_misread():
    with Lab() as lab:
        with pytest.raises(TypeError, match="positional"):
            lab.remedies("Power Users", "2026-03-07", None, "2026-03-02")
        with pytest.raises(TypeError, match="positional"):
            lab.reexport_value("Power Users", "2026-03-07", None, "2026-03-05")
        with pytest.raises(TypeError, match="positional"):
            lab.simulate("Power Users", None, None, "webhooks")
