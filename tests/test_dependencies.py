"""The versions pyproject.toml allows are versions cohortlab works with.

DuckDB 1.x is not: its ``read_json`` refuses ``compression='none'``, so every JSON load fails
(checked with 1.1.3, 1.2.2, 1.3.2, 1.4.5 and 1.5.6), and DuckDB 1.1's ``.df()`` turns a BIGINT
column with a NULL into float64: a resolution's ``mpid`` (NULL for an unmatched member) came back
as floats, 9007199254740993 as 9007199254740992.0 (1.2 and later give pandas ``Int64``)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lower_bound(package: str) -> tuple[int, ...]:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    (spec,) = re.findall(rf'^\s*"{package}>=([0-9.]+)', text, re.M)
    return tuple(int(x) for x in spec.split("."))


def test_duckdb_lower_bound_is_a_version_that_keeps_mpids_exact():
    import duckdb

    assert _lower_bound("duckdb") >= (2, 0)
    installed = tuple(int(x) for x in re.findall(r"\d+", duckdb.__version__)[:2])
    assert installed >= _lower_bound("duckdb")[:2]
    # what the bound is for: a nullable BIGINT comes back exact, as pandas Int64
    df = duckdb.connect().execute("SELECT * FROM (VALUES (NULL::BIGINT), (9007199254740993)) t(mpid)").df()
    assert str(df["mpid"].dtype) == "Int64" and df["mpid"].iloc[1] == 9007199254740993


def test_the_build_backend_bound_is_a_setuptools_that_reads_the_licence_as_written():
    """``license = "MIT"`` is a PEP 639 licence expression: setuptools before 77 stops
    the build at it (``project.license must be valid exactly by one definition``), and
    ``requires = ["setuptools>=68"]`` let a build without isolation (``pip install
    --no-build-isolation``, a distribution's packaging) use one of those."""
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert isinstance(data["project"]["license"], str)
    (req,) = [r for r in data["build-system"]["requires"] if re.match(r"setuptools\b", r)]
    bound = tuple(int(x) for x in re.search(r">=\s*([0-9.]+)", req).group(1).split("."))
    assert bound >= (77,)
