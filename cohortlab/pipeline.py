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
    materialise: bool = False


@dataclass
class Pipeline:
    steps: list[Step] = field(default_factory=list)

    def add(self, name: str, sql: str, *, materialise: bool = False) -> "Pipeline":
        """Add a step. ``materialise``: :meth:`run` writes it as its own (temporary) table before
        the steps after it run, so that one statement does not hold every step's hash tables and
        aggregates at once (a statement that cannot spill enough fails under a memory limit)."""
        if any(s.name == name for s in self.steps):
            raise ValueError(f"duplicate pipeline step name: {name}")
        self.steps.append(Step(name, sql.strip(), materialise))
        return self

    def has(self, name: str) -> bool:
        """Whether a step of that name was added."""
        return any(s.name == name for s in self.steps)

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
        if not debug and not any(s.materialise for s in self.steps[:-1]):
            engine.materialise(table, self.sql(), temp=temp)
            return {}
        return self._run_in_parts(engine, table, temp, debug=debug)

    def _run_in_parts(self, engine: Engine, table: str, temp: bool, *, debug: bool = False) -> dict[str, int]:
        """Each step marked ``materialise`` as its own table (``<table>__<step>``, dropped at the
        end), then the output; each statement holds, as CTEs, the steps it needs that are not
        materialised (a step needed on both sides of a materialised one is computed in both).
        ``debug``: every step is its own table, kept, and counted ({step: rows})."""
        refs = {s.name: _table_names(s.sql) for s in self.steps}
        done: dict[str, str] = {}  # materialised step -> its table
        counts: dict[str, int] = {}
        try:
            for i, s in enumerate(self.steps):
                last = i == len(self.steps) - 1
                if not (debug or s.materialise or last):
                    continue
                needed, todo = set(), [s.name]
                while todo:  # the steps this one reads, through those not materialised
                    for r in refs[todo.pop()]:
                        if r in refs and r not in done and r not in needed:
                            needed.add(r)
                            todo.append(r)
                part = Pipeline([Step(x.name, _rename_tables(x.sql, done)) for x in self.steps[:i]
                                 if x.name in needed] + [Step(s.name, _rename_tables(s.sql, done))])
                out = table if last and not debug else f"{table}__{s.name}"
                engine.materialise(out, part.sql(), temp=temp)
                if out != table:
                    done[s.name] = out
                if debug:
                    counts[s.name] = engine.count(out)
            if debug:
                engine.materialise(table, f"SELECT * FROM {done[self.output]}", temp=temp)
        finally:
            if not debug:  # debug keeps every step's table
                for name in done.values():
                    engine.drop(name)
        return counts


def _table_names(sql: str) -> set[str]:
    """The unqualified table names a step's SQL reads (sqlglot)."""
    import sqlglot
    from sqlglot import exp

    return {t.name for t in sqlglot.parse_one(sql, read="duckdb").find_all(exp.Table) if not t.db}


def _rename_tables(sql: str, names: dict[str, str]) -> str:
    """``sql`` reading each table of ``names`` under its new name (unchanged when none is read)."""
    for old, new in names.items():
        if old in _table_names(sql):
            sql = _replace_identifier(sql, old, new)
    return sql


def _replace_identifier(sql: str, old: str, new: str) -> str:
    """Replace a table identifier using sqlglot (never a regex over SQL text)."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="duckdb")
    for t in tree.find_all(exp.Table):
        if t.name == old and not t.db:
            t.set("this", exp.to_identifier(new))
    return tree.sql(dialect="duckdb")
