"""Getting data into Spark: `cohortlab export` + read_canonical, and the Spark-native readers,
against the DuckDB loaders on the sample exports in data/ (MPIDs exact)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cohortlab import Lab
from cohortlab.cli import main

from .compare import diff

pytestmark = pytest.mark.spark

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    db = tmp_path_factory.mktemp("readers") / "lab.duckdb"
    with Lab(db) as lab:
        lab.load("mixpanel-events", str(DATA / "mixpanel" / "events"))
        lab.load("mparticle-profiles", str(DATA / "mparticle" / "profiles.jsonl"))
    return db


def test_export_then_read_canonical_keeps_every_row_and_type(loaded, tmp_path, spark_engine):
    out = tmp_path / "canonical"
    r = CliRunner().invoke(main, ["export", "--db", str(loaded), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert (out / "mpa_profiles.parquet").exists()
    assert "mpa_profiles" in spark_engine.read_canonical(out)
    assert dict(spark_engine.sql_df("SELECT * FROM mpa_profiles").dtypes)["mpid"] == "bigint"
    with Lab(loaded, read_only=True) as duck:
        for t in ("mp_events", "mpa_profiles", "mpa_identities", "loads"):
            cols = "*" if t != "mp_events" else "event, time, distinct_id, insert_id, mparticle_user_id, properties"
            assert diff(duck.sql(f"SELECT {cols} FROM {t}"), spark_engine.query_df(f"SELECT {cols} FROM {t}")) is None, t
    again = CliRunner().invoke(main, ["export", "--db", str(loaded), "--out", str(out)])
    assert again.exit_code != 0 and "exists" in again.output
    # a URI, as docs/spark.md's dbfs:/ and s3:// examples give it: looked up through Spark's file
    # systems (it was taken for a local path: "file:/...: not a directory")
    assert spark_engine.read_canonical(out.as_uri()) == spark_engine.read_canonical(out)
    with pytest.raises(FileNotFoundError, match=r"^file:///nowhere/canonical: not a directory$"):
        spark_engine.read_canonical("file:///nowhere/canonical")


def test_spark_native_readers_match_the_duckdb_loaders(loaded, spark_engine):
    from cohortlab.engines.spark.readers import read_mixpanel_events, read_mparticle_profiles

    spark = spark_engine.spark
    events = read_mixpanel_events(spark, str(DATA / "mixpanel" / "events" / "*"))
    spark_engine.register_df("ev", events)
    prof = read_mparticle_profiles(spark, str(DATA / "mparticle" / "profiles.jsonl"))
    spark_engine.register_df("pr", prof["mpa_profiles"])
    spark_engine.register_df("id", prof["mpa_identities"])
    # upper(): Spark's JSON parser re-spells float tokens (1.2e18 -> 1.2E18), a documented gap;
    # integers above 2^53 keep every digit
    ecols = "event, time, distinct_id, insert_id, device_id, user_id, upper(mparticle_user_id) AS mparticle_user_id"
    with Lab(loaded, read_only=True) as duck:
        # the loader de-duplicates and quarantines; the reader keeps every parsable record
        assert diff(
            duck.sql(f"SELECT DISTINCT {ecols} FROM mp_events"), spark_engine.query_df(f"SELECT DISTINCT {ecols} FROM ev")
        ) is None
        pcols = "mpid, created_at, last_stored_at, is_opted_out"
        assert diff(duck.sql(f"SELECT {pcols} FROM mpa_profiles"), spark_engine.query_df(f"SELECT {pcols} FROM pr")) is None
        icols = "mpid, kind, identity_type, value"
        assert diff(duck.sql(f"SELECT {icols} FROM mpa_identities"), spark_engine.query_df(f"SELECT {icols} FROM id")) is None
    assert 9080350317581165123 in {r[0] for r in spark_engine.query_rows("SELECT mpid FROM pr")}
    assert "-7346244611012968789" in {r[0] for r in spark_engine.query_rows("SELECT mparticle_user_id FROM ev")}


def test_spark_native_readers_give_every_canonical_column(spark_engine):
    """register_df of a reader's DataFrame gives the core SQL every column it reads (verify reads
    mpa_profiles.load_id): the canonical columns in order, provenance columns NULL."""
    from cohortlab import schema
    from cohortlab.engines.spark.readers import read_mixpanel_events, read_mparticle_profiles

    frames = {"mp_events": read_mixpanel_events(spark_engine.spark, str(DATA / "mixpanel" / "events" / "*")),
              **read_mparticle_profiles(spark_engine.spark, str(DATA / "mparticle" / "profiles.jsonl"))}
    for table, df in frames.items():
        assert df.columns == [c for c, _, _ in schema.TABLES[table].columns], table
        assert dict(df.dtypes)["load_id"] == "bigint", table


def test_the_pseudonym_key_goes_with_the_export(loaded, tmp_path, spark_engine):
    """`cohortlab export` writes the database's pseudonym key and read_canonical reads it back
    (`--engine spark --db lab.duckdb` exports then reads the same way): Spark outputs get the same
    pseudonyms as the DuckDB outputs of that database (a new random key was drawn on every run)."""
    import shutil

    from cohortlab.engines.duckdb import DuckDBEngine
    from cohortlab.engines.spark.readers import export_canonical
    from cohortlab.privacy import database_key

    duck = DuckDBEngine(loaded, read_only=True)
    try:
        key = database_key(duck)
        assert "cohortlab_meta" in export_canonical(duck, tmp_path / "all")
    finally:
        duck.close()
    few = tmp_path / "few"  # two of its files: reading all fifteen tables costs 20 s here
    few.mkdir()
    for name in ("loads.parquet", "cohortlab_meta.parquet"):
        shutil.copy(tmp_path / "all" / name, few / name)
    assert spark_engine.read_canonical(few) == ["loads"]
    assert database_key(spark_engine) == key
    Lab(engine=spark_engine)  # what the commands open: it keeps the key
    assert database_key(spark_engine) == key


def test_spark_reads_a_project_time_zone_as_the_duckdb_loader(tmp_path, spark_engine):
    """read_mixpanel_events(timezone=...) stores a project's wall-clock times in UTC as the
    DuckDB loader's -o timezone does, the repeated hour of a fall-back included (the earlier
    instant on both) (docs/loading.md#project-time-zone)."""
    import json
    from datetime import datetime, timedelta, timezone

    from cohortlab.engines.spark.readers import read_mixpanel_events

    walls = [datetime(2026, 10, 31, 22) + timedelta(minutes=10 * k) for k in range(40)]  # 2026-11-01 01:00-02:00 twice
    walls += [datetime(2026, 3, 8, 1) + timedelta(minutes=20 * k) for k in range(9)]  # spring-forward
    p = tmp_path / "la.jsonl"
    p.write_text("".join(json.dumps({"event": "e", "properties": {
        "time": int(w.replace(tzinfo=timezone.utc).timestamp()), "distinct_id": f"U{i}", "$insert_id": f"i{i}"}}) + "\n"
        for i, w in enumerate(walls)))
    with Lab() as duck:
        duck.load("mixpanel-events", str(p), timezone="America/Los_Angeles")
        spark_engine.register_df("ev_la", read_mixpanel_events(spark_engine.spark, str(p), timezone="America/Los_Angeles"))
        cols = "distinct_id, time"
        assert diff(duck.sql(f"SELECT {cols} FROM mp_events"), spark_engine.query_df(f"SELECT {cols} FROM ev_la")) is None
        assert duck.engine.query_rows("SELECT time FROM mp_events WHERE distinct_id = 'U21'") == [
            (datetime(2026, 11, 1, 8, 30),)]  # 01:30, the PDT one
    with pytest.raises(ValueError, match="timezone must be a time zone name"):
        read_mixpanel_events(spark_engine.spark, str(p), timezone="PST8")
