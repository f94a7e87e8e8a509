"""Shared fixtures of the Spark suite.

One SparkSession per test run, created lazily (only when a ``spark`` test asks for it), so
``pytest`` without ``-m spark`` never starts a JVM. Each test gets a fresh :class:`SparkEngine`
over that session; its temp views are dropped afterwards.
"""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def spark_session(tmp_path_factory):
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("no Java runtime on PATH")
    from cohortlab.engines.spark.engine import local_session

    scratch = tmp_path_factory.mktemp("spark")
    # Tiny data: compiling generated code for each new query costs more than it saves
    # (measured: a simulate() call 51 s -> 21 s on the loaded 2-core machine). For the same reason
    # the JVM compiles with its quick compiler only and collects garbage on one thread (the suite's
    # JVM: 358 -> 329 CPU-s).
    spark = local_session(
        "local[2]",
        scratch_dir=scratch,
        shuffle_partitions=1,
        conf={"spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN",
              "spark.driver.extraJavaOptions": f"-Dderby.system.home={scratch / 'derby'} "
                                               "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"},
    )
    yield spark
    spark.stop()


def temp_views(spark) -> set[str]:
    """Names of the session's temporary views (``SHOW VIEWS``: ``catalog.listTables()`` fails to
    decode rows in PySpark 4.3 once some views exist)."""
    return {r["viewName"] for r in spark.sql("SHOW VIEWS").collect() if r["isTemporary"]}


@pytest.fixture
def clean_views(spark_session):
    """Drop every temp view a test left in the shared session."""
    yield spark_session
    for name in temp_views(spark_session):
        spark_session.catalog.dropTempView(name)


@pytest.fixture
def spark_engine(spark_session, tmp_path):
    from cohortlab.engines.spark.engine import SparkEngine

    engine = SparkEngine(spark_session, scratch_dir=tmp_path / "scratch")
    yield engine
    engine.close()
    for name in temp_views(spark_session):
        spark_session.catalog.dropTempView(name)
