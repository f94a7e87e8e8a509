"""The sqlglot dialect cohortlab writes Spark SQL in, and the one-call translator.

cohortlab's core SQL is written in the DuckDB dialect (docs/DEVELOPING.md#portable-sql). The Spark engine translates
each statement once with sqlglot::

    sqlglot.transpile(sql, read="duckdb", write=CohortSpark, unsupported_level=ErrorLevel.RAISE)

``CohortSpark`` is sqlglot's Spark dialect plus the few fixes cohortlab needs. Every fix lives
here, as a sqlglot dialect override (type mapping or generator transform), never as a regex or a
hand-written per-dialect string (the pattern of Splink's ``CustomSpark``). Each fix names the
DuckDB behaviour it preserves and is covered by ``tests/spark``.

This module needs sqlglot only (no PySpark): the portability test uses it without a JVM.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.dialects.spark import Spark
from sqlglot.errors import ErrorLevel


def _is_temporal(e: exp.Expression) -> bool:
    if isinstance(e, exp.Cast):
        return e.to.is_type(*exp.DataType.TEMPORAL_TYPES)
    return e.type is not None and e.is_type(*exp.DataType.TEMPORAL_TYPES)


def _scale(e: exp.UnixToTime) -> int:
    scale = e.args.get("scale")
    if scale is None:
        return 0
    if isinstance(scale, exp.Literal):
        return int(scale.this) if str(scale.this).isdigit() else -1
    return {"S": 0, "MS": 3, "US": 6}.get(scale.name.upper(), -1)


def _unix_to_time_sql(self: Spark.Generator, e: exp.UnixToTime) -> str:
    """DuckDB ``epoch_ms``/``to_timestamp`` -> Spark, keeping sub-second precision.

    * ``epoch_ms(<TIMESTAMP>)`` is DuckDB's *other* overload (timestamp -> BIGINT milliseconds);
      sqlglot emits ``TIMESTAMP_MILLIS(ts)`` for it, which Spark rejects. When the argument is
      visibly a timestamp (a cast or typed literal) it becomes ``UNIX_MILLIS``.
    * ``to_timestamp(<seconds, fractional allowed>)``: sqlglot emits
      ``CAST(FROM_UNIXTIME(x) AS TIMESTAMP)``, which formats through a string with whole seconds
      and silently drops the fraction; ``TIMESTAMP_SECONDS(x)`` keeps it (microseconds), as DuckDB.
    """
    scale = _scale(e)
    if _is_temporal(e.this):
        fn = {3: "UNIX_MILLIS", 6: "UNIX_MICROS", 0: "UNIX_SECONDS"}.get(scale)
        if fn:
            return self.func(fn, e.this)
    if scale == 0 and not e.args.get("zone") and not e.args.get("format"):
        return self.func("TIMESTAMP_SECONDS", e.this)
    return _BASE_TRANSFORMS[exp.UnixToTime](self, e)


_BASE_TRANSFORMS = Spark.Generator.TRANSFORMS


def _generate_series_sql(self: Spark.Generator, e: exp.GenerateSeries) -> str:
    """DuckDB ``generate_series``/``range`` over integers yields BIGINT; Spark's ``SEQUENCE`` of
    two INT literals yields INT, and arithmetic on it then overflows under ANSI mode
    (``k * 900000000``: ARITHMETIC_OVERFLOW). Integer bounds are cast to BIGINT, as DuckDB types
    them. Temporal series (an INTERVAL step) are left alone."""
    step = e.args.get("step")
    if not isinstance(step, exp.Interval) and not any(
        _is_temporal(e.args[k]) for k in ("start", "end") if e.args.get(k) is not None
    ):
        e = e.copy()
        for k in ("start", "end", "step"):
            v = e.args.get(k)
            if v is not None and not (isinstance(v, exp.Cast) and v.to.is_type(exp.DataType.Type.BIGINT)):
                e.set(k, exp.cast(v, exp.DataType.Type.BIGINT))
    sql = _BASE_TRANSFORMS[exp.GenerateSeries](self, e)
    # DuckDB: generate_series(0, -1) is empty. Spark: SEQUENCE(0, -1) counts DOWN ([0, -1]).
    if not e.args.get("is_end_exclusive") and (step is None or (step.is_number and step.to_py() > 0)):
        start, end = e.args.get("start"), e.args.get("end")
        if start is not None and end is not None:
            return self.func("IF", exp.LT(this=end.copy(), expression=start.copy()), exp.Array(), sql)
    return sql


def _json_type_sql(self: Spark.Generator, e: exp.JSONType) -> str:
    """DuckDB's ``json_type(doc, '$."key"')`` for a top-level key, which Spark lacks: the JSON
    type told by the first character of the key's value in the document's text (``"`` text,
    a number with ``.``/``e`` a DOUBLE, other numbers BIGINT, ``n`` NULL, ``t``/``f`` BOOLEAN,
    ``{`` OBJECT, ``[`` ARRAY); NULL when the key is absent or the path is not a top-level key."""
    import re as _re

    doc = self.sql(e, "this")
    path = e.expression.name if isinstance(e.expression, exp.Literal) else None
    m = _re.fullmatch(r'\$\."?([^".\[\]]+)"?', path or "")
    if m is None:
        self.unsupported(f"json_type with path {path!r}")
        return "CAST(NULL AS STRING)"
    key = _re.escape(m.group(1)).replace("\\", "\\\\").replace("'", "\\'")
    head = f"regexp_extract({doc}, '\"{key}\"\\\\s*:\\\\s*(.)', 1)"
    num = f"regexp_extract({doc}, '\"{key}\"\\\\s*:\\\\s*(-?[0-9][0-9.eE+-]*)', 1)"
    return (f"CASE WHEN {doc} IS NULL OR {head} = '' THEN CAST(NULL AS STRING) "
            f"WHEN {head} = '\"' THEN 'VARCHAR' "
            f"WHEN {num} RLIKE '[.eE]' THEN 'DOUBLE' WHEN {num} <> '' THEN 'BIGINT' "
            f"WHEN {head} = 'n' THEN 'NULL' WHEN {head} IN ('t', 'f') THEN 'BOOLEAN' "
            f"WHEN {head} = '{{' THEN 'OBJECT' WHEN {head} = '[' THEN 'ARRAY' END")


class CohortSpark(Spark):
    """sqlglot's Spark dialect with cohortlab's fixes."""

    class Generator(Spark.Generator):
        TRANSFORMS = {
            **Spark.Generator.TRANSFORMS,
            exp.UnixToTime: _unix_to_time_sql,
            exp.GenerateSeries: _generate_series_sql,
            exp.JSONType: _json_type_sql,
        }

        TYPE_MAPPING = {
            **Spark.Generator.TYPE_MAPPING,
            # Spark has no JSON type: canonical JSON columns (properties, value) are text there,
            # which is what GET_JSON_OBJECT (json_extract_string's translation) reads.
            exp.DataType.Type.JSON: "STRING",
            # DuckDB HUGEINT / UHUGEINT / UBIGINT have no Spark integer type; sqlglot would emit
            # INT128 (invalid in Spark). DECIMAL(38, 0) holds every int64 exactly and compares
            # as an integer.
            exp.DataType.Type.INT128: "DECIMAL(38, 0)",
            exp.DataType.Type.UINT128: "DECIMAL(38, 0)",
            exp.DataType.Type.UBIGINT: "DECIMAL(20, 0)",
        }


@lru_cache(maxsize=4096)
def _transpile_cached(sql: str) -> tuple[str, ...]:
    return tuple(
        sqlglot.transpile(
            sql, read="duckdb", write=CohortSpark, unsupported_level=ErrorLevel.RAISE
        )
    )


def to_spark(sql: str) -> list[str]:
    """Translate DuckDB-dialect SQL (one or more statements) to Spark SQL; cached per string.

    Raises ``sqlglot.errors.ParseError`` / ``UnsupportedError`` when a construct cannot be
    translated faithfully.
    """
    return list(_transpile_cached(sql))


def expression_to_spark(expression: exp.Expression) -> str:
    """Generate Spark SQL for an already-parsed (DuckDB) expression, raising on unsupported."""
    return CohortSpark().generate(expression, unsupported_level=ErrorLevel.RAISE, copy=True)


def parse_duckdb(sql: str) -> list[exp.Expression]:
    return [e for e in sqlglot.parse(sql, read="duckdb") if e is not None]


def spark_type(duckdb_type: str) -> str:
    """The Spark SQL type for a DuckDB type name (``BIGINT`` -> ``BIGINT``, ``JSON`` -> ``STRING``)."""
    return exp.DataType.build(duckdb_type, dialect="duckdb").sql(dialect=CohortSpark)


# ---------------------------------------------------------------------- statement plans
@dataclass(frozen=True)
class SparkPlan:
    """One DuckDB query as Spark SQL, its top-level CTEs split out.

    Spark inlines every deterministic CTE at each reference, so a pipeline statement whose steps
    are read several times would be recomputed (and re-optimised) once per path through the step
    graph. The engine registers each step as a temp view (``views``: name, Spark SQL, and whether
    it is read more than once and so worth caching), then runs ``final``.
    """

    views: tuple[tuple[str, str, bool], ...]
    final: str


def _rename_tables(tree: exp.Expression, renamed: dict[str, str]) -> exp.Expression:
    """Point references to CTE names at their views (AST, never text). A reference without an
    alias keeps its old name as alias so qualified columns (``step.col``) still resolve."""
    if not renamed:
        return tree
    tree = tree.copy()
    for t in list(tree.find_all(exp.Table)):
        if not t.db and t.name in renamed:
            old = t.name
            t.set("this", exp.to_identifier(renamed[old]))
            if not t.alias:
                t.set("alias", exp.TableAlias(this=exp.to_identifier(old)))
    return tree


def plan_query(tree: exp.Expression) -> SparkPlan:
    """Translate a parsed DuckDB query into a :class:`SparkPlan` (raises on unsupported)."""
    key = "with_" if "with_" in tree.args else "with"
    with_ = tree.args.get(key)
    if with_ is None or with_.args.get("recursive") or not with_.expressions:
        return SparkPlan((), expression_to_spark(tree))
    tag = hashlib.sha1(tree.sql(dialect="duckdb").encode()).hexdigest()[:10]
    tree = tree.copy()
    ctes = list(tree.args[key].expressions)
    tree.set(key, None)
    bodies = [c.this for c in ctes] + [tree]
    renamed: dict[str, str] = {}
    views = []
    for i, cte in enumerate(ctes):
        alias = cte.alias_or_name
        refs = sum(1 for later in bodies[i + 1 :] for t in later.find_all(exp.Table) if t.name == alias and not t.db)
        view = f"_cl_{tag}_{alias}"
        views.append((view, expression_to_spark(_rename_tables(cte.this, renamed)), refs > 1))
        renamed[alias] = view
    return SparkPlan(tuple(views), expression_to_spark(_rename_tables(tree, renamed)))


@lru_cache(maxsize=4096)
def parse_cached(sql: str) -> tuple[exp.Expression, ...]:
    """Parsed statements of a DuckDB SQL string (shared: copy before changing them)."""
    return tuple(parse_duckdb(sql))


@lru_cache(maxsize=4096)
def plan_sql(sql: str) -> SparkPlan:
    """The cached :class:`SparkPlan` of a one-statement DuckDB query: each SQL string is
    translated once per process."""
    trees = parse_cached(sql)
    if len(trees) != 1:
        raise ValueError(f"expected one query, got {len(trees)} statements")
    return plan_query(trees[0])
