"""PySpark is optional: ``import cohortlab`` works without it, asking for Spark explains how."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> subprocess.CompletedProcess:
    block = "import sys\nsys.modules['pyspark'] = None  # as if PySpark were not installed\n"
    return subprocess.run([sys.executable, "-c", block + textwrap.dedent(code)], capture_output=True, text=True)


def test_import_cohortlab_without_pyspark():
    r = _run(
        """
        import cohortlab, cohortlab.cli
        from cohortlab.engines.spark.lint import check_sql
        from cohortlab.engines.spark.readers import export_canonical
        lab = cohortlab.Lab()
        print(lab.engine.name)
        """
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "duckdb"


def test_spark_engine_without_pyspark_gives_the_install_hint():
    r = _run(
        """
        import cohortlab
        try:
            cohortlab.SparkEngine
        except ImportError as e:
            print(e)
        """
    )
    assert r.returncode == 0, r.stderr
    assert "pip install 'cohortlab[spark]'" in r.stdout
