"""The portable subset (docs/DEVELOPING.md#portable-sql), checked without a JVM.

:func:`check_sql` parses one DuckDB-dialect statement with sqlglot, translates it for Spark with
unsupported constructs raised (exactly what :class:`~cohortlab.engines.spark.SparkEngine` does),
and reports the constructs the core SQL must not use:

``list_function``
    ``list_*`` / ``array_*`` functions: DuckDB and Spark disagree on NULL elements
    (``list_distinct([1, 1, NULL, 2])`` is ``[2, 1]`` in DuckDB, ``[1, NULL, 2]`` in Spark).
``table_function``
    DuckDB table functions in ``FROM``/``JOIN``: ``range``, ``generate_series``, ``read_*``,
    ``json_each``, ``unnest`` of anything but a literal list.
``macro``
    ``CREATE MACRO`` / ``CREATE FUNCTION``.
``order_by``
    ``ORDER BY`` inside a step, except in a window specification or an ordered aggregate
    (``string_agg(x, ',' ORDER BY x)``, ``first(x ORDER BY t)``). Results are sorted at the edges:
    for an *edge* query (``edge=True``: what ``query_df``/``query_rows`` return) the outermost
    ``ORDER BY`` is allowed.
``quoted_identifier``
    ``"Quoted"`` identifiers (snake_case only; a quoted string in ``FROM`` also reads a file).
``unknown_function``
    A function in the *translated* Spark SQL that is not on the allowlist :data:`SPARK_FUNCTIONS`
    (Spark built-ins cohortlab relies on, each checked against Spark's ``SHOW FUNCTIONS`` by
    ``tests/spark/test_dialect.py``). sqlglot passes functions it models but cannot translate
    through by name (``regexp_full_match(x, p)`` reached Spark verbatim and failed with
    UNRESOLVED_ROUTINE), so the check reads what Spark would receive: a DuckDB-only function
    either gets a translation in :mod:`cohortlab.engines.spark.dialect` (and disappears from the
    Spark SQL) or fails here, naming the function and the pipeline step.
``duckdb_only``
    DuckDB syntax that sqlglot passes through to Spark unchanged (so Spark fails or differs)
    although it does not raise: functions sqlglot does not know (``epoch_us(...)`` is emitted
    verbatim), ``ASOF``/``POSITIONAL`` joins, ``* EXCLUDE/REPLACE``, ``COLUMNS(...)``, ``PIVOT``,
    ``USING SAMPLE``.
``parse`` / ``transpile``
    sqlglot cannot parse the statement as DuckDB, or cannot generate it for Spark faithfully.

:class:`RecordingEngine` wraps any engine and records every SQL statement the simulation sends
through the Engine interface; the portability test runs the public API through it and checks
every recorded statement.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import pandas as pd
import sqlglot
from sqlglot import exp
from sqlglot.tokens import TokenType

from cohortlab.engines.base import Engine
from cohortlab.engines.spark.dialect import expression_to_spark, plan_query

RULES = (
    "parse", "transpile", "list_function", "table_function", "macro", "order_by", "quoted_identifier",
    "unknown_function", "duckdb_only",
)

# Spark built-in functions the translated SQL may call (lower case, as Spark names them). Adding a
# name here says: Spark has it and it means what the DuckDB function it comes from means (the
# Spark equivalence tests compare the results). A DuckDB function Spark lacks gets a translation
# in cohortlab/engines/spark/dialect.py instead (docs/spark.md#allowlist).
SPARK_FUNCTIONS: frozenset[str] = frozenset({
    # aggregates and windows
    "any_value", "avg", "bit_or", "bool_and", "bool_or", "collect_list", "count", "first", "last", "lag",
    "lead", "max", "max_by", "min", "min_by", "row_number", "sum",
    # conditionals and comparison
    "coalesce", "greatest", "if", "least", "nullif",
    # numbers and bits
    "abs", "ceil", "floor", "round", "shiftleft", "shiftright",
    # text, regular expressions (patterns rewritten by dialect.java_regex), JSON text
    "concat", "concat_ws", "contains", "get_json_object", "left", "length", "listagg", "lower", "regexp_extract", "regexp_replace",
    "replace", "sha2", "startswith", "substring", "translate", "trim", "upper",
    # time (DuckDB epoch_ms/to_timestamp/date_diff/strftime translate to these)
    "date_format", "datediff", "timestamp_micros", "timestamp_millis", "timestamp_seconds", "unix_micros",
    "unix_millis", "unix_seconds",
    # structures (list functions are refused by the list_function rule)
    "array", "array_join", "explode", "sequence", "struct",
})

# words Spark's grammar puts before "(" that are not function calls
SPARK_SYNTAX: frozenset[str] = frozenset({
    "and", "as", "cast", "else", "exists", "filter", "from", "group", "in", "is", "join", "not", "on", "or",
    "over", "select", "then", "try_cast", "union", "using", "values", "when", "where", "within",
})

# functions sqlglot does not model (exp.Anonymous) that exist in both engines with the same meaning
KNOWN_PORTABLE_FUNCTIONS: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Violation:
    rule: str
    detail: str
    sql: str
    step: str = ""  # the pipeline step (CTE or materialised table) the construct is in

    def __str__(self) -> str:
        one_line = " ".join(self.sql.split())
        where = f" in step {self.step}" if self.step else ""
        return f"[{self.rule}] {self.detail}{where}\n    in: {one_line[:400]}"


def _is_literal_list(e: exp.Expression | None) -> bool:
    return isinstance(e, exp.Array) and all(
        isinstance(x, (exp.Literal, exp.Null, exp.Boolean)) or (isinstance(x, exp.Neg) and isinstance(x.this, exp.Literal))
        for x in e.expressions
    )


def _function_name_tokens(sql: str) -> list[str]:
    """Names written in call position (``name(``), as written, via sqlglot's tokenizer."""
    tokens = sqlglot.tokenize(sql, read="duckdb")
    out = []
    for a, b in zip(tokens, tokens[1:]):
        if b.token_type == TokenType.L_PAREN and a.token_type not in (TokenType.STRING,):
            out.append(a.text.lower())
    return out


def spark_function_calls(spark_sql: str, known: frozenset[str] = frozenset()) -> set[str]:
    """Lower-case names of the functions a Spark SQL statement calls (``name(`` that is neither
    grammar nor a table, view or alias with a column list such as ``v(n)``), ``known`` left out."""
    tokens = sqlglot.tokenize(spark_sql, read="spark")
    names = {
        a.text.lower()
        for a, b in zip(tokens, tokens[1:])
        if b.token_type == TokenType.L_PAREN and a.token_type != TokenType.STRING and a.text.replace("_", "a").isalnum()
    }
    # no built-in function starts with "_"; sqlglot's generated aliases do (`EXPLODE(..., _u(t))`)
    names = {n for n in names if not n.startswith("_")} - SPARK_SYNTAX - known
    if names:  # only then parse, to tell a table or alias `v(n)` from a call
        for tree in sqlglot.parse(spark_sql, read="spark"):
            if tree is None:
                continue
            # tables, and table functions (the table_function rule's business)
            names -= {(t.name or getattr(t.this, "name", "")).lower() for t in tree.find_all(exp.Table)}
            names -= {a.name.lower() for a in tree.find_all(exp.TableAlias)}
            names -= {c.alias.lower() for c in tree.find_all(exp.CTE)}
    return names


def _unknown_functions(spark_sql: str) -> list[str]:
    return [
        f"{name}(): not a Spark function on the allowlist (lint.SPARK_FUNCTIONS) and not translated by "
        "the Spark dialect (engines/spark/dialect.py)"
        for name in sorted(spark_function_calls(spark_sql, SPARK_FUNCTIONS))
    ]


def _spark_steps(tree: exp.Expression, name: str | None) -> list[tuple[str, str]]:
    """(step, Spark SQL) of each statement the engine would run for ``tree``: a query's CTE
    steps one by one (as temp views), then the final SELECT."""
    table = name or "statement"
    if isinstance(tree, exp.Query):
        plan = plan_query(tree)
        steps = [(f"{view.split('_', 3)[-1]} of {table}", sql) for view, sql, _ in plan.views]
        return steps + [(table if not plan.views else f"final SELECT of {table}", plan.final)]
    return [(table, expression_to_spark(tree))]


def _order_allowed(order: exp.Order, root: exp.Expression, edge: bool) -> bool:
    node = order.parent
    while node is not None:
        if isinstance(node, (exp.Window, exp.WithinGroup, exp.AggFunc)):
            return True
        if isinstance(node, exp.Query):
            # the ORDER BY clause of a query: allowed only on the outermost query of an edge read
            return edge and node is root and root.args.get("order") is order
        node = node.parent
    return False


def _duckdb_only(tree: exp.Expression) -> list[str]:
    found = []
    for n in tree.walk():
        if isinstance(n, exp.Anonymous) and n.name.lower() not in KNOWN_PORTABLE_FUNCTIONS:
            found.append(f"{n.name}(): not known to sqlglot, emitted verbatim for Spark")
        elif isinstance(n, exp.Join) and (n.args.get("method") or "").upper() in ("ASOF", "POSITIONAL"):
            found.append(f"{n.args['method']} JOIN")
        elif isinstance(n, exp.Star) and any(n.args.get(k) for k in ("except", "except_", "replace", "rename")):
            found.append("* EXCLUDE/REPLACE/RENAME")
        elif isinstance(n, exp.Slice):
            found.append(f"list slice [{n.sql('duckdb')}]: emitted verbatim, Spark has no slice syntax")
        elif isinstance(n, exp.Bracket) and not all(isinstance(i, exp.Literal) for i in n.expressions):
            # DuckDB lists start at 1, Spark arrays at 0: sqlglot shifts a literal index only
            found.append(f"list index by an expression [{', '.join(i.sql('duckdb') for i in n.expressions)}]: "
                         "DuckDB counts from 1, Spark from 0 (write a CASE)")
        elif isinstance(n, exp.ArrayAgg) and isinstance(n.this, exp.Order):
            found.append("list(x ORDER BY ...): Spark's collect_list drops the order (use string_agg or a window)")
        elif type(n).__name__ in ("Columns", "TableSample", "Pivot", "Unpivot"):
            found.append(f"{type(n).__name__.upper()}")
    return found


def check_sql(sql: str, *, edge: bool = False, name: str | None = None) -> list[Violation]:
    """All portability violations of one or more DuckDB-dialect statements (empty = portable).
    ``name``: the table the statement materialises, to name the step in messages."""
    try:
        trees = [t for t in sqlglot.parse(sql, read="duckdb") if t is not None]
    except sqlglot.errors.ParseError as e:
        return [Violation("parse", str(e).splitlines()[0], sql)]
    out: list[Violation] = []
    called = _function_name_tokens(sql)
    for tree in trees:
        text = tree.sql(dialect="duckdb")
        try:  # exactly what SparkEngine runs: a query's CTE steps one by one, else the statement
            steps = _spark_steps(tree, name)
        except Exception as e:  # sqlglot UnsupportedError and friends
            out.append(Violation("transpile", f"{type(e).__name__}: {str(e).splitlines()[0]}", text, name or ""))
            steps = []
        for step, spark_sql in steps:
            out += [Violation("unknown_function", d, text, step) for d in _unknown_functions(spark_sql)]
        for name in called:
            if name.startswith(("list_", "array_")):
                out.append(Violation("list_function", f"{name}(): NULL elements differ between DuckDB and Spark", text))
        if isinstance(tree, exp.Create) and (tree.args.get("kind") or "").upper() in ("MACRO", "FUNCTION"):
            out.append(Violation("macro", "CREATE MACRO/FUNCTION is DuckDB-only", text))
        for t in tree.find_all(exp.Table):
            if not isinstance(t.this, exp.Identifier):
                out.append(Violation("table_function", f"table function {t.this.sql('duckdb')[:80]} in FROM", text))
        for u in tree.find_all(exp.Unnest):
            in_from = isinstance(u.parent, (exp.From, exp.Join)) or u.find_ancestor(exp.From, exp.Join) is not None
            if in_from and not all(_is_literal_list(x) for x in u.expressions):
                out.append(Violation("table_function", f"{u.sql('duckdb')[:80]}: UNNEST of a non-literal list in FROM", text))
        for o in tree.find_all(exp.Order):
            if not _order_allowed(o, tree, edge):
                out.append(Violation("order_by", "ORDER BY inside a step (sort at the edge)", text))
        out += [Violation("duckdb_only", d, text) for d in _duckdb_only(tree)]
        for i in tree.find_all(exp.Identifier):
            # a quoted output column name (``count(*) AS "true"``) is fine: Spark gets `true`
            if i.quoted and not (isinstance(i.parent, exp.Alias) and i.parent.args.get("alias") is i):
                out.append(Violation("quoted_identifier", f'quoted identifier "{i.this}"', text))
    return out


# ---------------------------------------------------------------------- recording
@dataclass
class Statement:
    kind: str  # execute | materialise | query
    sql: str
    params: list[Any] | None = None
    name: str | None = None  # the table a materialise writes

    @property
    def edge(self) -> bool:
        return self.kind == "query"

    def violations(self) -> list[Violation]:
        return check_sql(self.sql, edge=self.edge, name=self.name)


# the 8 hex digits of a run's id in a table name (cohortlab.simulation.simulate.new_run_id, the
# migration model's run_id, the re-export and remedy prefixes)
_RUN_ID = re.compile(r"_[0-9a-f]{8}(?=_|\b)")


@dataclass
class RecordingEngine(Engine):
    """Delegates to ``inner`` and records every statement while :attr:`recording` is on.

    ``materialise`` is recorded as the SELECT it materialises (its ``CREATE OR REPLACE TABLE``
    wrapper is the engine's business, not the core's).
    """

    inner: Engine
    recording: bool = True
    statements: list[Statement] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.name = f"recording({self.inner.name})"

    def __getattr__(self, name: str):  # database, con, close, ... of the inner engine
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _rec(self, kind: str, sql: str, params: list[Any] | None, name: str | None = None) -> None:
        if self.recording:
            self.statements.append(Statement(kind, sql, params, name))

    def execute(self, sql: str, params: list[Any] | None = None) -> None:
        self._rec("execute", sql, params)
        self.inner.execute(sql, params)

    def query_df(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        self._rec("query", sql, params)
        return self.inner.query_df(sql, params)

    def query_rows(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        self._rec("query", sql, params)
        return self.inner.query_rows(sql, params)

    def register(self, name: str, df: pd.DataFrame) -> None:
        self.inner.register(name, df)

    def table_exists(self, name: str) -> bool:
        return self.inner.table_exists(name)

    def drop(self, name: str) -> None:
        self.inner.drop(name)

    def materialise(self, name: str, sql: str, temp: bool = False) -> None:
        self._rec("materialise", sql, None, name)
        self.inner.materialise(name, sql, temp=temp)

    def count(self, name: str) -> int:
        return self.inner.count(name)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.inner.transaction():
            yield

    @contextmanager
    def paused(self) -> Iterator[None]:
        was, self.recording = self.recording, False
        try:
            yield
        finally:
            self.recording = was

    def violations(self) -> list[Violation]:
        """The violations of the statements recorded, each statement checked once: statements
        that differ only by a run's id in their table names (``sim_43aa42d5_resolved``; each
        simulation draws one) are the same SQL to the rules, so the first of them is checked."""
        seen: set[tuple[str, str, str | None]] = set()
        out: list[Violation] = []
        for s in self.statements:
            key = (s.kind, _RUN_ID.sub("_<run>", s.sql), s.name and _RUN_ID.sub("_<run>", s.name))
            if key in seen:
                continue
            seen.add(key)
            out += s.violations()
        return out

