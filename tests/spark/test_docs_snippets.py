"""The Python of docs/spark.md#existing-session runs as written (on a `cohortlab export` folder of
the edge-case world, in the suite's session)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cohortlab import Lab
from cohortlab.engines.spark.readers import export_canonical

from .world import build_world

pytestmark = pytest.mark.spark

DOC = Path(__file__).resolve().parents[2] / "docs" / "spark.md"


def _snippet(anchor: str) -> str:
    section = DOC.read_text().split(anchor, 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_existing_session_snippet_runs_as_written(tmp_path, spark_session, clean_views):
    duck = Lab()
    build_world(duck.engine)
    export_canonical(duck.engine, tmp_path / "canonical")
    code = _snippet("{#existing-session}").replace("dbfs:/cohortlab/canonical/", str(tmp_path / "canonical"))
    names = {"spark": spark_session}
    exec(compile(code, "docs/spark.md#existing-session", "exec"), names)
    resolution = names["engine"].sql_df("SELECT * FROM resolution")  # the snippet's last line, kept
    assert resolution.count() == len(names["sim"].resolution) > 0
    names["engine"].close()
