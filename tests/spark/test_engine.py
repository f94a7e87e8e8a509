"""SparkEngine behind the Engine interface: exact BIGINTs, UTC, tables as temp views."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from cohortlab import Lab, schema

pytestmark = pytest.mark.spark

BIG = 9080350317581165123


def test_session_time_zone_is_pinned_to_utc(spark_engine):
    assert spark_engine.spark.conf.get("spark.sql.session.timeZone") == "UTC"
    # a naive TIMESTAMP literal means UTC: epoch seconds come out unshifted
    rows = spark_engine.query_rows(
        "SELECT epoch_ms(TIMESTAMP '2026-01-15 00:00:00') AS ms, TIMESTAMP '2026-01-15 00:00:00' AS t"
    )
    assert rows == [(1768435200000, dt.datetime(2026, 1, 15))]


def test_nullable_bigint_comes_back_exact_never_float(spark_engine):
    spark_engine.execute("CREATE TABLE ids AS SELECT * FROM (VALUES (9080350317581165123), (NULL), (-1)) v(mpid)")
    df = spark_engine.query_df("SELECT mpid FROM ids")
    assert str(df["mpid"].dtype) == "Int64"
    assert sorted(df["mpid"].dropna().tolist()) == [-1, BIG]
    assert df["mpid"].isna().sum() == 1
    assert sorted(spark_engine.query_rows("SELECT mpid FROM ids"), key=str) == sorted([(BIG,), (None,), (-1,)], key=str)


def test_register_uses_an_explicit_exact_schema(spark_engine):
    pdf = pd.DataFrame(
        {
            "mpid": pd.array([BIG, None, 7], dtype="Int64"),
            "raw": pd.Series([BIG, None, 7], dtype=object),  # object column of Python ints: BIGINT, not float
            "name": ["a", None, "c"],
            "at": pd.to_datetime(["2026-01-01 00:00:00", None, "2026-01-02 12:00:00"]),
        }
    )
    spark_engine.register("p", pdf)
    types = dict(spark_engine.sql_df("SELECT * FROM p").dtypes)
    assert types["mpid"] == "bigint" and types["raw"] == "bigint"
    rows = spark_engine.query_rows("SELECT mpid, raw, name, at FROM p WHERE mpid = ?", [BIG])
    assert rows == [(BIG, BIG, "a", dt.datetime(2026, 1, 1))]
    spark_engine.register("q", pd.DataFrame({"v": ["1"]}), schema="v BIGINT")
    assert spark_engine.query_rows("SELECT v + 1 FROM q") == [(2,)]


def test_parameters_are_bound_as_literals(spark_engine):
    rows = spark_engine.query_rows(
        "SELECT CAST(? AS BIGINT) AS a, ? AS b, ? AS c, ? AS d",
        [BIG, "x'y", dt.datetime(2026, 3, 1, 12, tzinfo=dt.timezone.utc), None],
    )
    assert rows == [(BIG, "x'y", dt.datetime(2026, 3, 1, 12), None)]


def test_lab_creates_canonical_tables_and_whole_tables_are_written(spark_engine):
    lab = Lab(engine=spark_engine)  # schema.create_all through execute: empty typed views
    for name in schema.TABLES:
        assert spark_engine.table_exists(name)
    assert spark_engine.count("mpa_profiles") == 0
    Lab(engine=spark_engine)  # idempotent (IF NOT EXISTS)
    # the core writes whole tables only: row-level DML is refused, naming what to do instead
    for dml in ("INSERT INTO mpa_identities (mpid, identity_type, value) VALUES (1, 'customer_id', 'c1')",
                "DELETE FROM mpa_identities WHERE value = 'c1'",
                "UPDATE mpa_identities SET value = 'c2'"):
        with pytest.raises(NotImplementedError, match="whole tables only"):
            spark_engine.execute(dml)
    spark_engine.materialise(
        "mpa_identities", f"SELECT * FROM (VALUES (CAST({BIG} AS BIGINT), 'c1'), (CAST(2 AS BIGINT), NULL)) AS v(mpid, value)")
    assert sorted(spark_engine.query_rows("SELECT mpid, value FROM mpa_identities"), key=str) == sorted(
        [(BIG, "c1"), (2, None)], key=str)
    # CREATE OR REPLACE over itself (lineage broken, old view released): how results keep rows
    spark_engine.materialise("mpa_identities", "SELECT mpid + 1 AS mpid FROM mpa_identities WHERE value IS NULL "
                                               "UNION ALL SELECT 7 AS mpid")
    assert sorted(spark_engine.query_rows("SELECT mpid FROM mpa_identities")) == [(3,), (7,)]
    # a small frame as a whole table, then dropped (registered frame and table alike)
    spark_engine.materialise_frame("t_frame", pd.DataFrame({"mpid": [BIG]}))
    assert spark_engine.query_rows("SELECT mpid FROM t_frame") == [(BIG,)] and spark_engine.columns("t_frame") == ["mpid"]
    spark_engine.drop("t_frame")
    spark_engine.drop("t_frame")  # nothing to drop: no error
    assert not spark_engine.table_exists("t_frame")
    with spark_engine.transaction():
        spark_engine.execute("DROP TABLE IF EXISTS mpa_identities")
    assert not spark_engine.table_exists("mpa_identities")
    assert lab.engine is spark_engine


def test_lineage_methods(spark_engine):
    for method in ("persist", "parquet", "checkpoint", "local_checkpoint"):
        spark_engine.lineage = method
        spark_engine.materialise("m", "SELECT 9080350317581165123 AS x")
        assert spark_engine.query_rows("SELECT x FROM m") == [(BIG,)]


def test_the_redactor_looks_up_known_values_on_spark(spark_engine):
    """privacy.KnownPersonal through the Engine API only (a registered frame, no table written):
    kept (one query) and one by one (fetch_limit=0), a phone known only to the database."""
    from cohortlab.privacy import KnownPersonal, Redactor, pseudonym

    Lab(engine=spark_engine)
    spark_engine.materialise("mp_profiles", "SELECT * FROM (VALUES ('p1', 'ann@x.com', '07700900999'), "
                                            "('p2', CAST(NULL AS STRING), '07700 900123')) AS t(distinct_id, email, phone)")
    for limit in (20_000, 0):
        r = Redactor(key="k", database=KnownPersonal(spark_engine, fetch_limit=limit))
        df = r.frame(pd.DataFrame({"distinct_id": ["07700900999", "p2", "ann@x.com"]}))
        assert df.distinct_id.tolist() == [pseudonym("07700900999", "k"), "p2", pseudonym("ann@x.com", "k")]
        assert r.text("call 07700 900123 or 07700900999, p1") == (
            f"call {pseudonym('07700 900123', 'k')} or {pseudonym('07700900999', 'k')}, p1")


def test_personal_values_spelled_otherwise_get_the_same_pseudonym_on_spark(spark_engine):
    """privacy.Redactor.sql (normalised spaces, full-width @/+, %40/%2B/tel:, a "+" phone inside a
    text) means on Spark what it means on DuckDB and in Python."""
    from cohortlab.privacy import Redactor, pseudonym

    from tests.privacy.test_privacy import HOLDING_A_PHONE, NATIONAL_PHONES, NOT_HOLDING_ONE, NOT_PHONES, SPELLED_OTHERWISE

    personal, not_personal = SPELLED_OTHERWISE + NATIONAL_PHONES + HOLDING_A_PHONE, NOT_PHONES + NOT_HOLDING_ONE
    values = personal + not_personal
    spark_engine.register("vals", pd.DataFrame({"i": range(len(values)), "v": pd.Series(values, dtype=object)}))
    r = Redactor(key="k")
    from cohortlab.engines.spark.lint import check_sql

    assert check_sql(f"SELECT {r.sql('v')} AS x FROM vals") == []  # every function on the allowlist
    got = [row[0] for row in spark_engine.query_rows(f"SELECT {r.sql('v')} FROM vals ORDER BY i")]
    assert got == [pseudonym(v, "k") for v in personal] + not_personal


def test_floating_point_mpids_are_refused_not_cast(spark_engine, tmp_path):
    """An MPID column stored as a double already lost its last digits (9080350317581165123 is
    9080350317581165568 as a double): read_canonical and register refuse it, naming the table and
    the column, where a cast would pass the wrong MPID on as exact (docs/spark.md#existing-session)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "canonical"
    out.mkdir()
    pq.write_table(pa.table({"mpid": pa.array([float(BIG)]), "kind": ["user"], "identity_type": ["email"],
                             "value": ["a@x.com"]}), out / "mpa_identities.parquet")
    with pytest.raises(TypeError, match=r"mpa_identities\.mpid: a double column"):
        spark_engine.read_canonical(out)
    with pytest.raises(TypeError, match=r"q\.v: a double column"):
        spark_engine.register("q", pd.DataFrame({"v": [float(BIG)]}), schema="v BIGINT")


def test_read_canonical_refuses_a_table_without_its_identifier_column(spark_engine, tmp_path):
    """A Parquet table whose MPID column has another name would read as all-NULL MPIDs (every
    profile lost): it is refused, naming the table, the column and the columns found; a missing
    column that is not an identifier (here the provenance) still reads as NULL
    (docs/spark.md#existing-session)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "canonical"
    out.mkdir()
    pq.write_table(pa.table({"mParticle_ID": pa.array([BIG], pa.int64()), "kind": ["user"],
                             "identity_type": ["email"], "value": ["a@x.com"]}), out / "mpa_identities.parquet")
    with pytest.raises(ValueError, match=r"mpa_identities: no column mpid in .*mpa_identities\.parquet "
                                         r"\(its columns: mParticle_ID, kind, identity_type, value\)"):
        spark_engine.read_canonical(out)
    pq.write_table(pa.table({"MPID": pa.array([BIG], pa.int64()), "kind": ["user"], "identity_type": ["email"],
                             "value": ["a@x.com"]}), out / "mpa_identities.parquet")
    assert spark_engine.read_canonical(out) == ["mpa_identities"]  # column names match in any case
    assert spark_engine.query_rows("SELECT mpid, load_id FROM mpa_identities") == [(BIG, None)]


def test_read_canonical_of_a_folder_without_tables_says_so(spark_engine, tmp_path):
    """A wrong folder (the export's parent) is an error naming it, not an empty lab whose cohorts
    are then "not found"."""
    (tmp_path / "export").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no canonical table in this folder.*cohortlab export"):
        spark_engine.read_canonical(tmp_path)
