"""How many random worlds the seeded and property-based tests explore.

``make test`` (CI) runs the ``ci`` number of each: enough to exercise every branch the generators
can take, in the time CI has. ``make test-deep`` (``COHORTLAB_TEST_DEPTH=deep``) runs the ``deep``
number, which is what finds the defect a rare world holds: run it after changing a rule, a loader
or a generator, and before a release (docs/DEVELOPING.md#test-depth).

A seed that once found a defect stays in the CI list for good (``keep``): it is that defect's
regression test on the differential side. The property-based tests draw the same examples on
every CI run (:func:`search`) and new ones on every deep run.
"""

from __future__ import annotations

import os

DEPTH = os.environ.get("COHORTLAB_TEST_DEPTH", "ci")
if DEPTH not in ("ci", "deep"):
    raise ValueError(f"COHORTLAB_TEST_DEPTH={DEPTH!r}: use 'ci' (the default) or 'deep'")
DEEP = DEPTH == "deep"


def seeds(ci: int, deep: int, keep: tuple[int, ...] = ()) -> list[int]:
    """The seeds to run: ``range(ci)`` (or ``range(deep)``) and the ``keep`` seeds."""
    n = deep if DEEP else ci
    return sorted({*range(n), *keep})


def examples(ci: int, deep: int) -> int:
    """hypothesis' ``max_examples``."""
    return deep if DEEP else ci


def search(ci: int, deep: int) -> dict:
    """hypothesis' settings for a property-based test: ``max_examples`` (:func:`examples`) and
    ``derandomize``: in CI the same examples on every run, so that CI fails for a change and
    never for a draw; ``make test-deep`` draws new ones each run, which is what explores."""
    return {"max_examples": examples(ci, deep), "derandomize": not DEEP}


def spread(items: list, ci: int = 3) -> list:
    """The items a test checks one by one (each costs a simulation or more): every one with
    ``make test-deep``; in CI ``ci`` of them spread evenly, the first and the last included."""
    items = list(items)
    if DEEP or len(items) <= ci:
        return items
    picks = sorted({round(i * (len(items) - 1) / (ci - 1)) for i in range(ci)})
    return [items[i] for i in picks]
