"""Named SQL steps composed into one ``WITH ... SELECT`` (after Splink's ``CTEPipeline``).

Each step is a readable SELECT in the DuckDB dialect that may refer to earlier steps by name.
``Pipeline.sql()`` stitches them into one statement; ``Pipeline.run()`` materialises the final
step as a table. In debug mode every step is materialised as its own table
(``<output>__<step>``) and its row count is reported: "where did the users go", step by step.
The steps are also what the Spark engine transpiles and what the portability test parses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cohortlab.engines.base import Engine


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
