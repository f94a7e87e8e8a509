"""Stored migration results, written as whole tables.

A run replaces the rows of its own plans (validation: of its plan, cohort and as-of time) and
keeps the others, in one statement: ``CREATE OR REPLACE TABLE t AS SELECT <kept rows> UNION ALL
SELECT <new rows>``. No INSERT, DELETE or UPDATE, so every engine runs it as written.
"""

from __future__ import annotations

from typing import Sequence

from cohortlab.engines.base import Engine

# tables written (the report reads them)
DAILY_TABLE = "migration_daily"
USERS_TABLE = "migration_users"
SUMMARY_TABLE = "migration_summary"
PLANS_TABLE = "migration_plans"
VALIDATION_TABLE = "migration_validation"
VALIDATION_SUMMARY_TABLE = "migration_validation_summary"


def replace_rows(engine: Engine, table: str, new: Sequence[str], replaced: str) -> None:
    """``table`` := its rows where ``replaced`` is not true, then every row of the relations
    ``new`` (table names, or ``(SELECT ...) AS x``; same columns, same order). When ``table`` does not exist yet or its columns differ (written by another
    version), it becomes the new rows only."""
    if not new:
        return
    # same columns in the same order (checked), so SELECT * lines them up
    parts = [f"SELECT * FROM {n}" for n in new]
    if engine.table_exists(table) and engine.columns(table) == engine.columns(new[0]):
        parts.insert(0, f"SELECT * FROM {table} WHERE NOT coalesce({replaced}, FALSE)")
    engine.materialise(table, "\nUNION ALL\n".join(parts))
