"""Engines run cohortlab's SQL. DuckDB is the default; Spark is the optional scale-out engine.

``SparkEngine`` is imported lazily so that ``import cohortlab`` works without PySpark.
"""

from cohortlab.engines.base import Engine
from cohortlab.engines.duckdb import DuckDBEngine

__all__ = ["Engine", "DuckDBEngine", "SparkEngine"]


def __getattr__(name: str):
    if name == "SparkEngine":
        try:
            from cohortlab.engines.spark import SparkEngine
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError(
                "SparkEngine needs PySpark: pip install 'cohortlab[spark]' (and a Java 17 runtime)"
            ) from e
        return SparkEngine
    raise AttributeError(name)
