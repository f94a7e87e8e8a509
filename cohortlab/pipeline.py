"""Named SQL steps composed into one ``WITH ... SELECT`` (after Splink's ``CTEPipeline``).

Each step is a readable SELECT in the DuckDB dialect that may refer to earlier steps by name.
``Pipeline.sql()`` stitches them into one statement; ``Pipeline.run()`` materialises the final
step as a table. In debug mode every step is materialised as its own table
(``<output>__<step>``) and its row count is reported: "where did the users go", step by step.
The steps are also what the Spark engine transpiles and what the portability test parses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Iterable

from cohortlab.engines.base import Engine
from cohortlab.times import naive_utc


# ----------------------------------------------------------------------------- SQL literals
# The one place where Python values become SQL text. Values from data or users are always
# quoted here (or bound as parameters), never pasted into SQL some other way.
def sql_str(value: str | os.PathLike | None) -> str:
    """A string (or path) as a SQL string literal; None as NULL."""
    if value is None:
        return "NULL"
    return "'" + str(value).replace("'", "''") + "'"


def sql_ident(name: str) -> str:
    """A quoted SQL identifier (a column or table name that comes from data)."""
    return '"' + str(name).replace('"', '""') + '"'


def sql_list(values: Iterable[str | os.PathLike]) -> str:
    """A list literal of strings: ``['a', 'b']``."""
    return "[" + ", ".join(sql_str(v) for v in values) + "]"


def sql_ts(value: datetime | date | None) -> str:
    """A UTC instant as a TIMESTAMP literal (naive = UTC; a date is its midnight)."""
    if value is None:
        return "CAST(NULL AS TIMESTAMP)"
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return f"CAST('{naive_utc(value).isoformat(sep=' ')}' AS TIMESTAMP)"


def sql_bool(value: bool) -> str:
    return "TRUE" if value else "FALSE"


@dataclass
class Step:
    name: str
    sql: str


@dataclass
class Pipeline:
    steps: list[Step] = field(default_factory=list)

    def add(self, name: str, sql: str) -> "Pipeline":
        if any(s.name == name for s in self.steps):
            raise ValueError(f"duplicate pipeline step name: {name}")
        self.steps.append(Step(name, sql.strip()))
        return self

    @property
    def output(self) -> str:
        return self.steps[-1].name

    def sql(self) -> str:
        """One ``WITH step1 AS (...), ... SELECT * FROM last`` statement."""
        if not self.steps:
            raise ValueError("empty pipeline")
        ctes = ",\n".join(f"{s.name} AS (\n{s.sql}\n)" for s in self.steps)
        return f"WITH {ctes}\nSELECT * FROM {self.output}"

    def run(self, engine: Engine, table: str, *, debug: bool = False, temp: bool = False) -> dict[str, int]:
        """Materialise the pipeline into ``table``. Returns {step: row count} in debug mode."""
        if not debug:
            engine.materialise(table, self.sql(), temp=temp)
            return {}
        counts: dict[str, int] = {}
        renamed: list[Step] = []
        for s in self.steps:
            sql = s.sql
            for prev in renamed:  # point references at the materialised debug tables
                sql = _replace_identifier(sql, prev.name, f"{table}__{prev.name}")
            name = f"{table}__{s.name}"
            engine.materialise(name, sql, temp=temp)
            counts[s.name] = engine.count(name)
            renamed.append(s)
        engine.materialise(table, f"SELECT * FROM {table}__{self.output}", temp=temp)
        return counts


def _replace_identifier(sql: str, old: str, new: str) -> str:
    """Replace a table identifier using sqlglot (never a regex over SQL text)."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="duckdb")
    for t in tree.find_all(exp.Table):
        if t.name == old and not t.db:
            t.set("this", exp.to_identifier(new))
    return tree.sql(dialect="duckdb")
