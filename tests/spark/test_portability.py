"""The portable subset of SQL (docs/DEVELOPING.md#portable-sql), enforced without a JVM (runs in the default suite).

Every SQL statement the public API sends through the Engine interface (resolution, sync,
waterfall, gap summary, migration; loaders excluded) is recorded on a small DuckDB world,
parsed as DuckDB, translated for Spark with unsupported constructs raised, and checked for the
forbidden constructs. The checker itself is tested on each construct.
"""

from __future__ import annotations

from collections import Counter

import pytest

from cohortlab import Lab
from cohortlab.engines.spark.lint import RULES, RecordingEngine, check_sql
from cohortlab.pipeline import Pipeline

from .world import api_calls, build_world, lint_only_calls

# --------------------------------------------------------------------------- the checker


@pytest.mark.parametrize(
    "rule, sql",
    [
        ("list_function", "SELECT list_distinct(ids) AS ids FROM t"),
        ("list_function", "SELECT list_contains(ids, 1) FROM t"),
        ("list_function", "SELECT array_distinct(ids) FROM t"),
        ("list_function", "SELECT list_filter(ids, x -> x > 1) FROM t"),
        ("table_function", "SELECT * FROM range(10) t(n)"),
        ("table_function", "SELECT * FROM generate_series(1, 3) g(x)"),
        ("table_function", "SELECT * FROM read_csv('members.csv')"),
        ("table_function", "SELECT * FROM read_parquet('x.parquet')"),
        ("table_function", "SELECT * FROM read_json_objects('x.jsonl')"),
        ("table_function", "SELECT j.key FROM t, json_each(t.properties) j"),
        ("table_function", "SELECT u.x FROM t CROSS JOIN unnest(t.ids) u(x)"),
        ("macro", "CREATE MACRO is_mpid(x) AS regexp_matches(x, '^-?[0-9]+$')"),
        ("macro", "CREATE OR REPLACE FUNCTION f(a) AS a + 1"),
        ("order_by", "SELECT a FROM t ORDER BY a"),
        ("order_by", "SELECT * FROM (SELECT a FROM t ORDER BY a) x"),
        ("order_by", "WITH s AS (SELECT a FROM t ORDER BY a LIMIT 3) SELECT * FROM s"),
        ("quoted_identifier", 'SELECT "Distinct ID" FROM t'),
        ("quoted_identifier", "SELECT * FROM 'export.parquet'"),
        ("parse", "SELECT FROM WHERE ("),
    ],
)
def test_checker_catches_each_forbidden_construct(rule, sql):
    assert rule in RULES
    assert rule in {v.rule for v in check_sql(sql)}, check_sql(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT epoch_us(ts) FROM t",  # sqlglot emits it verbatim: Spark has no such function
        "SELECT * FROM t ASOF JOIN u ON t.at >= u.at",
        "SELECT * FROM t POSITIONAL JOIN u",
        "SELECT * EXCLUDE (properties) FROM mp_events",
        "SELECT * REPLACE (lower(email) AS email) FROM mp_profiles",
        "SELECT COLUMNS('id_.*') FROM t",
        "SELECT a FROM t USING SAMPLE 10%",
        "SELECT ['other', 'false', 'true'][code + 1] FROM t",  # 1-based in DuckDB, 0-based on Spark
    ],
)
def test_checker_catches_duckdb_only_syntax_that_sqlglot_passes_through(sql):
    assert "duckdb_only" in {v.rule for v in check_sql(sql)}


def test_a_transpile_error_is_reported(monkeypatch):
    """sqlglot's own 'unsupported' diagnostics (ErrorLevel.RAISE) surface as a violation."""
    from sqlglot import exp

    from cohortlab.engines.spark import dialect as spark_dialect
    from cohortlab.engines.spark.dialect import CohortSpark

    class Refusing(CohortSpark):
        class Generator(CohortSpark.Generator):
            TRANSFORMS = {
                **CohortSpark.Generator.TRANSFORMS,
                exp.Greatest: lambda self, e: self.unsupported("GREATEST refused") or "GREATEST()",
            }

    monkeypatch.setattr(spark_dialect, "CohortSpark", Refusing)
    assert {v.rule for v in check_sql("SELECT greatest(a, b) FROM t")} == {"transpile"}
    assert check_sql("SELECT least(a, b) FROM t") == []


# --------------------------------------------------------------------------- functions Spark lacks


def test_a_duckdb_only_function_fails_naming_the_function_and_the_step(lab):
    """``list_reduce`` runs on DuckDB; Spark has no such function. sqlglot passes it through."""
    rec = RecordingEngine(lab.engine)
    p = Pipeline().add("ids", "SELECT * FROM (VALUES (1), (2)) v(n)")
    p.add("summed", "SELECT n, list_reduce([n, 2, 3], lambda a, b: a + b) AS s FROM ids")
    p.run(rec, "sums")
    assert rec.query_rows("SELECT s FROM sums ORDER BY n") == [(6,), (7,)]
    unknown = [v for v in rec.violations() if v.rule == "unknown_function"]
    assert [(v.step, v.detail.split("(")[0]) for v in unknown] == [("summed of sums", "list_reduce")]
    assert "list_reduce(): not a Spark function" in str(unknown[0]) and "in step summed of sums" in str(unknown[0])


@pytest.mark.parametrize("sql, name", [
    ("SELECT epoch_ns(t) AS n FROM t", "epoch_ns"),  # unknown to sqlglot: emitted verbatim
    ("SELECT list_reduce(l, (a, b) -> a + b) AS s FROM t", "list_reduce"),
    ("SELECT jaro_winkler_similarity(a, b) AS s FROM t", "jarowinkler_similarity"),  # known to sqlglot (named as Spark gets it)
    ("SELECT x FROM t WHERE regexp_full_match(x, '[0-9]+') AND md5_number(x) > 0", "md5_number"),
])
def test_functions_outside_the_allowlist_fail(sql, name):
    found = [v for v in check_sql(sql) if v.rule == "unknown_function"]
    assert [v.detail.split("(")[0] for v in found] == [name], check_sql(sql)


def test_regexp_full_match_without_its_translation_fails_in_the_resolution_steps(monkeypatch):
    """Last round's bug: the send-time resolution's ``regexp_full_match`` reached Spark verbatim
    (UNRESOLVED_ROUTINE). Without the dialect's translation the lint names it and the step."""
    from sqlglot import exp

    from cohortlab.engines.spark import dialect as spark_dialect
    from cohortlab.engines.spark.dialect import CohortSpark

    class Untranslated(CohortSpark):
        class Generator(CohortSpark.Generator):
            TRANSFORMS = {k: v for k, v in CohortSpark.Generator.TRANSFORMS.items() if k is not exp.RegexpFullMatch}

    assert check_sql("SELECT regexp_full_match(x, '[0-9]+') AS ok FROM t") == []
    monkeypatch.setattr(spark_dialect, "CohortSpark", Untranslated)
    with Lab() as lab:
        build_world(lab.engine)
        rec = RecordingEngine(lab.engine)
        Lab(engine=rec).simulate("Power Users", debug=True)
    unknown = [v for v in rec.violations() if v.rule == "unknown_function"]
    assert unknown and {v.detail.split("(")[0] for v in unknown} == {"regexp_full_match"}
    assert all(v.step for v in unknown), [str(v) for v in unknown]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT a, row_number() OVER (PARTITION BY b ORDER BY c DESC) AS rn FROM t",
        "SELECT a FROM t QUALIFY row_number() OVER (PARTITION BY a ORDER BY b) = 1",
        "SELECT string_agg(s, ',' ORDER BY s) AS ss, first(a ORDER BY b) AS f FROM t",
        "SELECT arg_max(a, b), max(t) FILTER (WHERE a IS NOT NULL) FROM t GROUP BY c",
        "SELECT x FROM unnest(['a', 'b']) u(x)",
        "SELECT CASE WHEN regexp_matches(x, '^-?[0-9]+$') THEN TRY_CAST(x AS BIGINT) END FROM t",
        "SELECT * FROM (VALUES (1, 'a'), (2, 'b')) v(n, s)",
    ],
)
def test_checker_accepts_the_portable_subset(sql):
    assert check_sql(sql) == []


def test_order_by_is_allowed_only_at_the_edge():
    sql = "SELECT a, count(*) AS n FROM t GROUP BY a ORDER BY a"
    assert check_sql(sql, edge=True) == []
    assert {v.rule for v in check_sql(sql)} == {"order_by"}
    nested = "SELECT * FROM (SELECT a FROM t ORDER BY a) x ORDER BY a"
    assert {v.rule for v in check_sql(nested, edge=True)} == {"order_by"}


# --------------------------------------------------------------------------- pipelines


def test_recording_engine_checks_pipeline_steps(lab):
    rec = RecordingEngine(lab.engine)
    good = Pipeline().add("nums", "SELECT * FROM (VALUES (1), (2), (3), (4)) v(n)")
    good.add("evens", "SELECT n FROM nums WHERE n % 2 = 0")
    good.add("ranked", "SELECT n, row_number() OVER (ORDER BY n DESC) AS r FROM evens")
    good.run(rec, "out")
    good.run(rec, "out_dbg", debug=True)
    assert rec.query_rows("SELECT n FROM out ORDER BY n") == [(2,), (4,)]
    assert [s.kind for s in rec.statements].count("materialise") == 1 + 3 + 1
    assert rec.violations() == []

    bad = Pipeline().add("nums", "SELECT * FROM range(10) t(n)")
    bad.add("sorted", "SELECT n FROM nums ORDER BY n")
    bad.run(rec, "bad")
    rules = Counter(v.rule for v in rec.violations())
    assert rules == {"table_function": 1, "order_by": 1}


# --------------------------------------------------------------------------- the public API


@pytest.fixture(scope="module")
def recorded():
    with Lab() as lab:
        build_world(lab.engine)  # fixture inserts: not core SQL, not recorded
        rec = RecordingEngine(lab.engine, recording=False)
        rlab = Lab(engine=rec)
        rec.recording = True
        ran = []
        for name, call in api_calls() + lint_only_calls():
            call(rlab)
            ran.append(name)
        yield rec, ran


def test_every_core_statement_of_the_public_api_is_portable(recorded):
    rec, ran = recorded
    assert {"resolution_snap_debug", "simulate_snap_default", "simulate_hook_strict_debug", "verify_snap",
            "explain_snap", "assumption_ranges_snap", "report_insights", "migration_validate"} <= set(ran)
    kinds = Counter(s.kind for s in rec.statements)
    assert kinds["materialise"] >= 20 and kinds["query"] >= 10, kinds
    violations = rec.violations()
    assert not violations, "non-portable core SQL:\n" + "\n".join(map(str, violations))


def test_the_public_api_covers_every_result_table(recorded):
    rec, _ = recorded
    written = {t for t in ("resolution", "timeline", "attribute_state", "waterfall", "gap_summary") if rec.table_exists(t)}
    assert written == {"resolution", "timeline", "attribute_state", "waterfall", "gap_summary"}


def test_statements_that_differ_only_by_a_run_id_are_checked_once(monkeypatch):
    """Each simulation names its tables with its own run id: the same SQL under another id is not
    checked again, SQL that differs otherwise is (a forbidden construct in either is found)."""
    from cohortlab.engines.spark import lint

    checked = []
    monkeypatch.setattr(lint, "check_sql", lambda sql, **kw: checked.append(sql) or [])
    with Lab() as lab:
        rec = RecordingEngine(lab.engine)
        for run in ("43aa42d5", "10bc6d78"):
            rec.materialise(f"sim_{run}_resolved", "SELECT 1 AS a")
            rec.query_rows(f"SELECT a FROM sim_{run}_resolved")
        rec.query_rows("SELECT a FROM sim_10bc6d78_resolved ORDER BY a")
        assert rec.violations() == []
    assert checked == ["SELECT 1 AS a", "SELECT a FROM sim_43aa42d5_resolved",
                       "SELECT a FROM sim_10bc6d78_resolved ORDER BY a"]


def test_a_forbidden_construct_added_to_a_core_step_fails(monkeypatch):
    """If someone adds a non-portable step to the resolution steps, the harness reports it."""
    import cohortlab.simulation.sync as sync

    original = sync.add_resolve_steps

    def patched(p, *a, **kw):
        original(p, *a, **kw)
        p.add("extra", "SELECT r.*, list_distinct([1, 1, NULL]) AS l FROM resolved r ORDER BY r.distinct_id")

    monkeypatch.setattr(sync, "add_resolve_steps", patched)
    with Lab() as lab:
        build_world(lab.engine)
        rec = RecordingEngine(lab.engine)
        Lab(engine=rec).resolution("Power Users")
    assert {v.rule for v in rec.violations()} >= {"list_function", "order_by"}


def test_the_what_if_and_the_switch_on_data_without_user_ids_are_portable(tmp_path):
    """Data without any $user_id tell a logged-in event by a LEFT JOIN to mParticle's device
    identities (cohortlab.identifiers.LoggedIn): the what-if's scan and the switch
    detection then send SQL the world above never makes (its events carry $user_ids)."""
    from cohortlab.loaders.folder import load_world
    from cohortlab.migration.run import compare

    from tests.migration.no_user_id_world import SETTINGS, write_world

    with Lab() as lab:
        load_world(lab, write_world(tmp_path, user_ids=False))
        rec = RecordingEngine(lab.engine)
        c = compare(rec, settings=SETTINGS)
        assert c.summary["matched_end"].tolist() == [3, 3, 3, 0]
        joined = [s for s in rec.statements if "device_identity" in s.sql]
        assert len(joined) >= 3  # the scan and the switch's queries
        violations = rec.violations()
        assert not violations, "non-portable core SQL:\n" + "\n".join(map(str, violations))
