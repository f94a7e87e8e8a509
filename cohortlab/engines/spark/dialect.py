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
    a number with ``.``/``e`` a DOUBLE, an integer UBIGINT from 0 to 2^64-1, BIGINT when negative
    and within int64, else DOUBLE, as DuckDB types them; ``n`` NULL, ``t``/``f`` BOOLEAN,
    ``{`` OBJECT, ``[`` ARRAY); NULL when the key is absent or the path is not a top-level key.
    The text is searched, not parsed: the first ``"key":`` in it is read, so a nested key of the
    same name written before the top-level one, or a key spelled with escapes (``\\u0024``), is not
    told apart (docs/spark.md#translations)."""
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
            f"WHEN {num} RLIKE '[.eE]' THEN 'DOUBLE' "
            # DuckDB types an integer by its range: UBIGINT from 0, BIGINT below, else DOUBLE
            f"WHEN {num} RLIKE '^-' THEN CASE WHEN TRY_CAST({num} AS BIGINT) IS NOT NULL THEN 'BIGINT' ELSE 'DOUBLE' END "
            f"WHEN {num} <> '' THEN CASE WHEN length({num}) < 20 OR (length({num}) = 20 "
            f"AND {num} <= '18446744073709551615') THEN 'UBIGINT' ELSE 'DOUBLE' END "
            f"WHEN {head} = 'n' THEN 'NULL' WHEN {head} IN ('t', 'f') THEN 'BOOLEAN' "
            f"WHEN {head} = '{{' THEN 'OBJECT' WHEN {head} = '[' THEN 'ARRAY' END")


# ---------------------------------------------------------------------- regular expressions
# DuckDB's regexp functions use RE2; Spark's use java.util.regex. The same pattern text can mean
# different things in the two (docs/spark.md#regex), so every pattern a regexp function sends to
# Spark is rewritten by :func:`java_regex`, and what cannot be rewritten faithfully is refused.

class RegexTranslationError(ValueError):
    """An RE2 pattern (or option) with no faithful java.util.regex spelling."""


def java_regex(pattern: str, *, full: bool = False, options: str = "") -> str:
    r"""The java.util.regex pattern that matches what the RE2 ``pattern`` matches in DuckDB.

    * ``.`` matches every character but ``\n`` in RE2; Java also stops at ``\r``, ``\u0085``,
      ``\u2028``, ``\u2029`` unless UNIX_LINES: the pattern starts with ``(?d)``.
    * ``$`` (outside a class) is the end of the text in RE2; in Java it also matches before a final
      line break (``'7\n'`` would be a number): it becomes ``\z``.
    * ``\s`` is ``[\t\n\f\r ]`` in RE2; Java adds the vertical tab: spelled out.  ``\v`` is the
      vertical tab in RE2, a class of vertical whitespace in Java: ``\x0B``.
    * Inside a class, ``[`` and ``&`` are literals in RE2 but start a nested class or an
      intersection (``&&``) in Java: escaped.  ``(?P<name>`` becomes ``(?<name>``.
    * Refused: POSIX classes ``[[:alpha:]]`` (Java reads them as a set of letters), ``\C``,
      the ``m`` (multi-line) and ``U`` (ungreedy; Unicode classes in Java) flags, options other
      than ``i``/``c``/``g``.
    * ``full=True`` (``regexp_full_match``): the whole text must match, ``\A(?:pattern)\z``.
    """
    flags = ""
    for o in options:
        if o == "i":
            flags += "i"
        elif o not in "cg":
            raise RegexTranslationError(f"regex option {o!r} has no Spark translation")
    out: list[str] = []
    in_class = class_start = False
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                raise RegexTranslationError(f"pattern {pattern!r} ends with a backslash")
            d = pattern[i + 1]
            if d == "Q":  # \Q...\E: literal text in both
                end = pattern.find("\\E", i + 2)
                end = n if end < 0 else end + 2
                out.append(pattern[i:end] + ("" if pattern.endswith("\\E", 0, end) else "\\E"))
                i = end
                continue
            if d == "s":
                out.append("\\t\\n\\f\\r " if in_class else "[\\t\\n\\f\\r ]")
            elif d == "v":
                out.append("\\x0B")
            elif d == "C":
                raise RegexTranslationError(f"\\C (any byte) in pattern {pattern!r} has no Java equivalent")
            else:
                out.append(c + d)
            i += 2
            continue
        if in_class:
            if c == "[":
                if pattern.startswith("[:", i):
                    raise RegexTranslationError(f"POSIX class in pattern {pattern!r}: write it out (e.g. [0-9])")
                out.append("\\[")
            elif c == "&":
                out.append("\\&")
            elif c == "]" and not class_start:
                in_class = False
                out.append(c)
            else:
                out.append(c)
            class_start = False
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            class_start = True  # a ']' right after '[' or '[^' is a literal in RE2: escape it
            if i < n and pattern[i] == "]":
                out.append("\\]")
                i += 1
                class_start = False
            continue
        if c == "$":
            out.append("\\z")
        elif c == "(" and pattern.startswith("(?", i):
            if pattern.startswith("(?P<", i):
                out.append("(?<")
                i += 4
                continue
            j = i + 2
            while j < n and pattern[j] not in ":)":
                if pattern[j] in "mU":
                    raise RegexTranslationError(f"flag {pattern[j]!r} in pattern {pattern!r} has no Spark translation")
                j += 1
            out.append(c)
        else:
            out.append(c)
        i += 1
    if in_class:
        raise RegexTranslationError(f"unclosed character class in pattern {pattern!r}")
    body = "".join(out)
    if full:
        body = f"\\A(?:{body})\\z"
    return f"(?d{flags})" + body


def _literal_text(e: exp.Expression | None) -> str | None:
    return e.this if isinstance(e, exp.Literal) and e.is_string else None


def _with_java_pattern(self: Spark.Generator, e: exp.Expression, *, full: bool = False,
                       options_arg: str | None = None, keep_global: bool = False) -> exp.Expression | None:
    """A copy of ``e`` whose pattern (``expression``) is the Java spelling, options folded in;
    None (and ``self.unsupported``) when the pattern is not a string literal or not translatable."""
    pattern = _literal_text(e.expression)
    opts_e = e.args.get(options_arg) if options_arg else None
    opts = "" if opts_e is None else _literal_text(opts_e)
    name = e.sql_name().lower()
    if pattern is None or opts is None:
        self.unsupported(f"{name} with a pattern or options that are not string literals (RE2 -> Java cannot be checked)")
        return None
    if "g" in opts and not keep_global:
        self.unsupported(f"{name} option 'g'")
        return None
    try:
        java = java_regex(pattern, full=full, options=opts)
    except RegexTranslationError as err:
        self.unsupported(f"{name}: {err}")
        return None
    e = e.copy()
    e.set("expression", exp.Literal.string(java))
    if options_arg:
        e.set(options_arg, None)
    return e


def _regexp_like_sql(self: Spark.Generator, e: exp.RegexpLike) -> str:
    """DuckDB ``regexp_matches(x, p[, options])`` / ``x ~ p`` (a match anywhere) ->
    ``x RLIKE <p in Java>``; with ``full_match`` the whole text."""
    t = _with_java_pattern(self, e, full=bool(e.args.get("full_match")), options_arg="flag")
    if t is None:
        return "NULL"
    return self.binary(t, "RLIKE")


def _regexp_full_match_sql(self: Spark.Generator, e: exp.RegexpFullMatch) -> str:
    """DuckDB ``regexp_full_match(x, p[, options])`` (Spark has no such function) ->
    ``x RLIKE '(?d)\\A(?:p)\\z'`` with ``p`` in Java spelling (:func:`java_regex`)."""
    t = _with_java_pattern(self, e, full=True, options_arg="options")
    if t is None:
        return "NULL"
    return self.binary(t, "RLIKE")


def _regexp_replace_sql(self: Spark.Generator, e: exp.RegexpReplace) -> str:
    """DuckDB ``regexp_replace(x, p, r, 'g')`` -> Spark ``REGEXP_REPLACE`` (which always replaces
    every match). Without ``'g'`` DuckDB replaces the first match only: refused. A replacement with
    ``\\``/``$`` is refused too (back-references are ``\\1`` in DuckDB, ``$1`` in Java)."""
    mods = _literal_text(e.args.get("modifiers")) if e.args.get("modifiers") is not None else ""
    repl = e.args.get("replacement")
    repl_text = "" if repl is None else _literal_text(repl)
    if mods is None or "g" not in mods:
        self.unsupported("regexp_replace without option 'g' (DuckDB replaces the first match only, Spark every match)")
        return "NULL"
    if repl_text is None or "\\" in repl_text or "$" in repl_text:
        self.unsupported("regexp_replace with a replacement that is not a plain string literal")
        return "NULL"
    if e.args.get("position") is not None or e.args.get("occurrence") is not None:
        self.unsupported("regexp_replace with position/occurrence")
        return "NULL"
    t = _with_java_pattern(self, e, options_arg="modifiers", keep_global=True)
    if t is None:
        return "NULL"
    return self.func("REGEXP_REPLACE", t.this, t.expression, repl if repl is not None else exp.Literal.string(""))


def _regexp_extract_sql(self: Spark.Generator, e: exp.RegexpExtract) -> str:
    """DuckDB ``regexp_extract(x, p[, group])`` -> Spark ``REGEXP_EXTRACT`` with ``p`` in Java spelling."""
    if e.args.get("parameters") is not None:
        self.unsupported("regexp_extract with options")
        return "NULL"
    t = _with_java_pattern(self, e)
    if t is None:
        return "NULL"
    return _BASE_TRANSFORMS[exp.RegexpExtract](self, t)


class CohortSpark(Spark):
    """sqlglot's Spark dialect with cohortlab's fixes."""

    class Generator(Spark.Generator):
        TRANSFORMS = {
            **Spark.Generator.TRANSFORMS,
            exp.UnixToTime: _unix_to_time_sql,
            exp.GenerateSeries: _generate_series_sql,
            exp.JSONType: _json_type_sql,
            exp.RegexpLike: _regexp_like_sql,
            exp.RegexpFullMatch: _regexp_full_match_sql,
            exp.RegexpReplace: _regexp_replace_sql,
            exp.RegexpExtract: _regexp_extract_sql,
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


def expression_to_spark(expression: exp.Expression, *, copy: bool = True) -> str:
    """Generate Spark SQL for an already-parsed (DuckDB) expression, raising on unsupported.
    ``copy=False``: the generator's rewrites change ``expression`` itself (for a tree the caller
    owns and reads no more)."""
    return CohortSpark().generate(expression, unsupported_level=ErrorLevel.RAISE, copy=copy)


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
    """Point references to CTE names at their views (AST, never text), in ``tree`` itself. A
    reference without an alias keeps its old name as alias so qualified columns (``step.col``)
    still resolve."""
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
    tree = tree.copy()  # the one copy: its parts are renamed and generated in place below
    ctes = list(tree.args[key].expressions)
    tree.set(key, None)
    bodies = [c.this for c in ctes] + [tree]
    renamed: dict[str, str] = {}
    views = []
    for i, cte in enumerate(ctes):
        alias = cte.alias_or_name
        refs = sum(1 for later in bodies[i + 1 :] for t in later.find_all(exp.Table) if t.name == alias and not t.db)
        view = f"_cl_{tag}_{alias}"
        # a step's body is read by no later one (``refs`` counts in the bodies after it)
        views.append((view, expression_to_spark(_rename_tables(cte.this, renamed), copy=False), refs > 1))
        renamed[alias] = view
    return SparkPlan(tuple(views), expression_to_spark(_rename_tables(tree, renamed), copy=False))


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
