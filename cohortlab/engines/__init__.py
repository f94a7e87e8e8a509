"""Engines run cohortlab's SQL. DuckDB is the default; Spark is the optional scale-out engine.

The names are imported on first use: ``Engine`` (:mod:`cohortlab.engines.base`, no third-party
import), ``DuckDBEngine`` (:mod:`cohortlab.engines.duckdb`, imports DuckDB) and ``SparkEngine``
(needs PySpark), so that ``import cohortlab.engines.base`` (what the loaders and the simulation
import) pays for neither DuckDB nor pandas, and ``import cohortlab`` works without PySpark.
"""

from importlib import import_module

__all__ = ["ENGINES", "Engine", "DuckDBEngine", "SparkEngine"]

# the engines a command, a notebook or a report parameter may name (``--engine``, ``engine``)
ENGINES = ("duckdb", "spark")

_HOMES = {"Engine": "cohortlab.engines.base", "DuckDBEngine": "cohortlab.engines.duckdb"}


def __getattr__(name: str):
    if name in _HOMES:
        value = getattr(import_module(_HOMES[name]), name)
        globals()[name] = value
        return value
    if name == "SparkEngine":
        try:
            from cohortlab.engines.spark import SparkEngine
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError(
                "SparkEngine needs PySpark: pip install 'cohortlab[spark]' (and a Java 17 runtime)"
            ) from e
        return SparkEngine
    raise AttributeError(name)


def __dir__():
    return sorted(set(globals()) | set(__all__))
