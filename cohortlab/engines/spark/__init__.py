"""The Spark engine: the same core SQL, translated by sqlglot (:mod:`.dialect`), run on a
Spark session (:mod:`.engine`), with readers of the canonical tables (:mod:`.readers`) and the
portability lint that keeps core SQL translatable (:mod:`.lint`).

Only :mod:`.engine` needs PySpark; the dialect, the lint and the exporter work without it."""

__all__ = ["SparkEngine"]


def __getattr__(name: str):
    if name == "SparkEngine":
        from cohortlab.engines.spark.engine import SparkEngine

        return SparkEngine
    raise AttributeError(name)
