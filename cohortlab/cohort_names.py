"""The names a cohort id is recorded under, and which is its current one
(docs/rules.md#renamed-cohorts): read from the canonical tables by the simulation
(:func:`cohortlab.simulation.membership.find_cohort`), the reports, ``Lab.info`` and the members
loader (a ``-o cohort`` name that another cohort holds now)."""

from __future__ import annotations

from datetime import datetime

from cohortlab.engines.base import Engine


# every (id, name, time) the data records for a cohort: its membership data (a snapshot's as_of; a
# webhook page's message time, its first page's receive time, so that a page delivered again later
# does not make its name the latest; the later load or page breaks a tie) and the cohort list (no time)
_NAMED = """
    SELECT cohort_id AS id, cohort_name AS name, as_of AS t, snapshot_id AS k FROM mp_cohort_snapshots
    UNION ALL SELECT cohort_id, cohort_name,
                     min(received_at) OVER (PARTITION BY coalesce(session_id, concat('seq:', CAST(seq AS VARCHAR))), action),
                     seq FROM mp_webhook_pages
    UNION ALL SELECT cohort_id, name, NULL, NULL FROM mp_cohorts
"""


def cohort_names_by_id(engine: Engine) -> dict[str, tuple[str | None, list[str]]]:
    """{cohort id: (its current name, every name recorded for it)}. The current name is the one of
    its latest membership data (the latest snapshot or webhook message; a renamed cohort's pages
    and snapshots carry the name of their time), else the cohort list's (docs/rules.md#renamed-cohorts)."""
    rows = engine.query_rows(
        f"""
        WITH named AS (SELECT * FROM ({_NAMED}) x WHERE id IS NOT NULL AND name IS NOT NULL),
        latest AS (SELECT id, name, max(t) AS t FROM named GROUP BY id, name)
        SELECT l.id, l.name, l.t, max(n.k) AS k
        FROM latest l LEFT JOIN named n ON n.id = l.id AND n.name = l.name AND n.t = l.t
        GROUP BY l.id, l.name, l.t
        """
    )
    by_id: dict[str, list[tuple]] = {}
    for r in rows:
        by_id.setdefault(r[0], []).append(r)
    out: dict[str, tuple[str | None, list[str]]] = {}
    for i, mine in by_id.items():
        # the latest time (the cohort list's name, without a time, only when no data names the cohort), then the
        # later load or page
        current = max(mine, key=lambda r: (r[2] is not None, r[2] or datetime.min, r[3] if r[3] is not None else -1))[1]
        out[i] = (current, sorted(r[1] for r in mine))
    ids = engine.query_rows(f"SELECT DISTINCT id FROM ({_NAMED}) x WHERE id IS NOT NULL")
    return {i: out.get(i, (None, [])) for (i,) in ids}


def all_cohort_names(engine: Engine) -> set[str]:
    """Every name the data records for a cohort, with or without its id (a members file loaded
    with ``-o cohort=NAME`` alone): what an output that names cohorts must know to show a
    personal one by its pseudonym (:meth:`cohortlab.privacy.Redactor.with_personal_names`)."""
    return {str(r[0]) for r in engine.query_rows(f"SELECT DISTINCT name FROM ({_NAMED}) x WHERE name IS NOT NULL")}


def ids_of_name(by_id: dict[str, tuple[str | None, list[str]]], name: str) -> list[str]:
    """The ids a cohort name stands for (``by_id``: :func:`cohort_names_by_id`), sorted: the
    cohorts whose current name it is, else those that had it (none holds it now). One id: the
    name is that cohort's (also data recorded under the name without an id); several: the name is
    ambiguous; none: no cohort with an id was ever so named."""
    had = sorted(i for i, (_, ns) in by_id.items() if name in ns)
    now = [i for i in had if by_id[i][0] == name]
    return now or had


__all__ = ["cohort_names_by_id", "ids_of_name"]
