"""The Spark dialect's own translations (cohortlab/engines/spark/dialect.py).

The translation tests need sqlglot only (no JVM, default suite). The ``spark`` tests run each
translated expression on Spark and the original on DuckDB, on inputs where RE2 and
java.util.regex disagree, and check Spark knows every function on the lint's allowlist.
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from cohortlab.engines.spark.dialect import RegexTranslationError, java_regex, to_spark
from cohortlab.engines.spark.lint import SPARK_FUNCTIONS, SPARK_SYNTAX, check_sql
from cohortlab.privacy import DATE_PATTERN, EMAIL_PATTERN, PHONE_INSIDE_PATTERN, PHONE_PATTERN
from cohortlab.simulation.resolution import _FLOAT_SPELLING

# --------------------------------------------------------------------------- RE2 -> Java patterns


@pytest.mark.parametrize(
    "re2, full, java",
    [
        ("-?[0-9]+", True, r"(?d)\A(?:-?[0-9]+)\z"),
        ("^-?[0-9]+$", False, r"(?d)^-?[0-9]+\z"),  # Java's $ also matches before a final \n
        ("a|b", True, r"(?d)\A(?:a|b)\z"),  # the alternation stays inside the anchors
        (r"\+[\d\s().-]{6,}", False, r"(?d)\+[\d\t\n\f\r ().-]{6,}"),  # Java's \s adds \x0B
        (r"[^@\s]+@[^@\s]+", False, r"(?d)[^@\t\n\f\r ]+@[^@\t\n\f\r ]+"),
        (r"a\sb", False, r"(?d)a[\t\n\f\r ]b"),
        (r"[a&&b]", False, r"(?d)[a\&\&b]"),  # && is an intersection in a Java class
        (r"[][]", False, r"(?d)[\]\[]"),  # a leading ] is literal; [ in a class nests in Java
        (r"\$[0-9]", False, r"(?d)\$[0-9]"),  # an escaped $ stays a dollar sign
        (r"[$]", False, r"(?d)[$]"),
        (r"(?P<n>x)", False, r"(?d)(?<n>x)"),
        (r"\Q$.\E$", False, r"(?d)\Q$.\E\z"),
        (r"a\vb", False, r"(?d)a\x0Bb"),
    ],
)
def test_re2_patterns_get_their_java_spelling(re2, full, java):
    assert java_regex(re2, full=full) == java


def test_the_case_insensitive_option_becomes_an_inline_flag():
    assert java_regex("ab", options="i") == "(?di)ab"
    assert java_regex("ab", options="gc") == "(?d)ab"


@pytest.mark.parametrize("re2, options", [("[[:digit:]]+", ""), (r"\C", ""), ("(?m)^a$", ""), ("(?U)a+", ""),
                                          ("a", "m"), ("a", "s"), ("[a", ""), ("a\\", "")])
def test_patterns_without_a_faithful_java_spelling_are_refused(re2, options):
    with pytest.raises(RegexTranslationError):
        java_regex(re2, options=options)


def test_the_patterns_cohortlab_uses_translate():
    for p in (_FLOAT_SPELLING, EMAIL_PATTERN, PHONE_PATTERN, PHONE_INSIDE_PATTERN, DATE_PATTERN):
        assert java_regex(p, full=True).startswith("(?d)\\A(?:")


# --------------------------------------------------------------------------- SQL


def test_regexp_full_match_becomes_an_anchored_rlike():
    (sql,) = to_spark("SELECT regexp_full_match(x, '-?[0-9]+') AS ok FROM t")
    assert sql == r"SELECT x RLIKE '(?d)\\A(?:-?[0-9]+)\\z' AS ok FROM t"


def test_regexp_replace_needs_the_global_option():
    (sql,) = to_spark("SELECT regexp_replace(x, '[^0-9-]', '', 'g') AS d FROM t")
    assert sql == "SELECT REGEXP_REPLACE(x, '(?d)[^0-9-]', '') AS d FROM t"
    # without 'g' DuckDB replaces the first match only; Spark would replace every match
    assert {v.rule for v in check_sql("SELECT regexp_replace(x, 'a', 'b') AS d FROM t")} == {"transpile"}
    # back-references are spelled \1 in DuckDB and $1 in Java
    assert {v.rule for v in check_sql(r"SELECT regexp_replace(x, '(a)', '\1\1', 'g') AS d FROM t")} == {"transpile"}


def test_a_regexp_with_a_computed_pattern_is_refused():
    assert {v.rule for v in check_sql("SELECT regexp_full_match(x, p) AS ok FROM t")} == {"transpile"}
    assert {v.rule for v in check_sql("SELECT regexp_matches(x, '[[:alpha:]]') AS ok FROM t")} == {"transpile"}


def test_the_allowlist_and_the_grammar_words_do_not_overlap():
    assert not SPARK_FUNCTIONS & SPARK_SYNTAX
    assert all(n == n.lower() for n in SPARK_FUNCTIONS | SPARK_SYNTAX)


# --------------------------------------------------------------------------- on Spark

# (DuckDB expression over x, inputs): each input where RE2 and Java regex would disagree unless translated
REGEX_CASES = [
    ("regexp_full_match(x, '-?[0-9]+')", ["12", "-3", "12\n", "1 2", "", "x12"]),
    ("regexp_matches(x, '^-?[0-9]+$')", ["12", "12\n", "\n12", "a"]),
    ("regexp_full_match(x, 'a.b')", ["a.b", "a\rb", "a\nb", "a\u2028b", "ab"]),
    ("regexp_full_match(x, 'a\\sb')", ["a b", "a\tb", "a\x0bb", "ab"]),
    ("regexp_full_match(x, '[a&&b]+')", ["ab&", "a", "&&"]),
    ("regexp_full_match(x, 'x|yz')", ["x", "yz", "xyz"]),
    ("regexp_matches(x, 'AB', 'i')", ["xaby", "XABY", "a b"]),
    (f"regexp_full_match(trim(x), '{PHONE_PATTERN}')", ["+1 (555) 010-0000", "+44\x0b20 7946", "555-0100"]),
    (f"regexp_extract(x, '{PHONE_INSIDE_PATTERN}', 0)", ["Call +44 7700 900123", "+44\x0b7700 900123 x", "+150000 users",
                                                        "+12) 2026-02-15 00", "x"]),
    (f"regexp_full_match(x, '{_FLOAT_SPELLING}')", ["1.0", "1e5", ".5", "1", "1.2e18", "1.0\n", "-2.5E-3"]),
    ("regexp_replace(x, '[^0-9-]', '', 'g')", ["a1-2b3", "x", "1.2e18"]),
    ("regexp_extract(x, '([0-9]+)\\s*$', 1)", ["ab 12", "ab 12\n", "12 x"]),
]


@pytest.mark.spark
@pytest.mark.parametrize("expr, inputs", REGEX_CASES, ids=[c[0][:40] for c in REGEX_CASES])
def test_translated_regexps_give_duckdb_results_on_spark(spark_engine, expr, inputs):
    import pandas as pd

    spark_engine.register("regex_inputs", pd.DataFrame({"i": range(len(inputs)), "x": inputs}))
    sql = f"SELECT i, {expr} AS r FROM regex_inputs"
    con = duckdb.connect()
    con.register("regex_inputs", pd.DataFrame({"i": range(len(inputs)), "x": inputs}))
    want = dict(con.execute(sql).fetchall())
    got = dict(spark_engine.query_rows(sql))
    assert got == want, {inputs[i]: (want[i], got[i]) for i in want if want[i] != got[i]}


@pytest.mark.spark
def test_spark_has_every_function_on_the_lint_allowlist(spark_session):
    builtin = {r["function"] for r in spark_session.sql("SHOW FUNCTIONS").collect()}
    assert not SPARK_FUNCTIONS - builtin


def test_nested_bigints_come_back_exact_from_arrow():
    """A struct field holding an MPID, NULL in another row (pyarrow alone turns that field into
    floats: 9.080350317581166e+18). No JVM needed."""
    import pyarrow as pa

    from cohortlab.engines.spark.arrow import arrow_to_pandas

    typ = pa.struct([("k", pa.int64()), ("target", pa.int64())])
    rows = [{"k": 192, "target": 9080350317581165123}, None, {"k": None, "target": None}]
    df = arrow_to_pandas(pa.table({"dec": pa.array(rows, type=typ)}))
    got = df["dec"].tolist()
    assert got == rows
    assert isinstance(got[0]["target"], int) and isinstance(got[0]["k"], int)


def test_a_boolean_with_nulls_comes_back_as_duckdb_gives_it():
    """A BOOLEAN column with a NULL (``active_after_cutoff`` with ``event_identity_cutoff: null``)
    is pandas' nullable ``boolean`` from DuckDB's ``.df()``; pyarrow alone gives ``object``, where
    ``~col`` fails on None. No JVM needed."""
    import duckdb
    import pyarrow as pa

    from cohortlab.engines.spark.arrow import arrow_to_pandas

    sql = "SELECT * FROM (VALUES (true, true), (NULL, false)) v(a, b)"
    want = duckdb.connect().execute(sql).df()
    got = arrow_to_pandas(pa.table({"a": pa.array([True, None]), "b": pa.array([True, False])}))
    assert {c: str(t) for c, t in got.dtypes.items()} == {c: str(t) for c, t in want.dtypes.items()} == {
        "a": "boolean", "b": "bool"}
    assert got["a"].isna().tolist() == [False, True] and not (~got["a"]).iloc[0]  # ~ works


def test_integer_columns_have_duckdbs_dtypes_and_two_columns_of_one_name_stay_two():
    """A Spark result gave Int64 where DuckDB gives int64 (a column without a NULL: timeline counts,
    day_index; a review as a Spark user), so frames of the two engines did not compare equal. Two
    result columns of one name are converted by position (the red team: by name, the second
    overwrote the first). No JVM needed."""
    import duckdb
    import pyarrow as pa

    from cohortlab.engines.spark.arrow import arrow_to_pandas

    sql = "SELECT * FROM (VALUES (1::BIGINT, 1::INTEGER, NULL::BIGINT), (2, 2, 3)) v(a, b, c)"
    want = duckdb.connect().execute(sql).df()
    got = arrow_to_pandas(pa.table({"a": pa.array([1, 2], pa.int64()), "b": pa.array([1, 2], pa.int32()),
                                    "c": pa.array([None, 3], pa.int64())}))
    assert {c: str(t) for c, t in got.dtypes.items()} == {c: str(t) for c, t in want.dtypes.items()} == {
        "a": "int64", "b": "int32", "c": "Int64"}
    pd.testing.assert_frame_equal(got, want)
    twice = arrow_to_pandas(pa.Table.from_arrays([pa.array([1, None], pa.int64()), pa.array([5, 6], pa.int64())],
                                                 names=["x", "x"]))
    assert twice.iloc[:, 0].tolist()[0] == 1 and twice.iloc[:, 0].isna().tolist() == [False, True]
    assert twice.iloc[:, 1].tolist() == [5, 6] and [str(t) for t in twice.dtypes] == ["Int64", "int64"]


# json_type of a top-level key (the translation's documented scope), every JSON type and DuckDB's
# integer ranges: UBIGINT from 0 to 2^64-1, BIGINT when negative within int64, else DOUBLE
JSON_TYPE_INPUTS = [
    '{"$mparticle_user_id": 1.2e18}', '{"$mparticle_user_id": "1.2e18"}', '{"$mparticle_user_id": -1.5E+18}',
    '{"$mparticle_user_id": 123}', '{"$mparticle_user_id": 0}', '{"$mparticle_user_id": -0}',
    '{"$mparticle_user_id": -9223372036854775808}', '{"$mparticle_user_id": -9223372036854775809}',
    '{"$mparticle_user_id": 18446744073709551615}', '{"$mparticle_user_id": 18446744073709551616}',
    '{"$mparticle_user_id": 99999999999999999999999}', '{"$mparticle_user_id" : null}',
    '{"$mparticle_user_id": true}', '{"$mparticle_user_id": {"a": 1}}', '{"$mparticle_user_id": [1]}',
    '{"a": 1}', None,
]


@pytest.mark.spark
def test_json_type_gives_duckdb_results_on_spark(spark_engine):
    import pandas as pd

    frame = pd.DataFrame({"i": range(len(JSON_TYPE_INPUTS)), "x": JSON_TYPE_INPUTS})
    spark_engine.register("json_inputs", frame)
    sql = "SELECT i, json_type(x, '$.\"$mparticle_user_id\"') AS t FROM json_inputs"
    con = duckdb.connect()
    con.register("json_inputs", frame)
    want = dict(con.execute(sql).fetchall())
    got = dict(spark_engine.query_rows(sql))
    assert got == want, {JSON_TYPE_INPUTS[i]: (want[i], got[i]) for i in want if want[i] != got[i]}
