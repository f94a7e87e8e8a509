"""Shared fixtures for the loader tests. Helpers writing loaders ADD fixtures here; never rewrite."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def write(tmp_path):
    """write(name, text, gz=False) -> Path: a file under tmp_path (gzip-compressed when gz)."""

    def _write(name: str, text: str, gz: bool = False) -> Path:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode("utf-8")
        p.write_bytes(gzip.compress(data) if gz else data)
        return p

    return _write


@pytest.fixture
def table_snapshot(lab):
    """table_snapshot() -> dict of every canonical table's rows (sorted), to compare before/after."""
    from cohortlab import schema

    def _snap() -> dict[str, list[tuple]]:
        out = {}
        for name in schema.TABLES:
            rows = lab.engine.query_rows(f"SELECT * FROM {name}")
            out[name] = sorted(rows, key=repr)
        return out

    return _snap


@pytest.fixture
def mparticle_data_dir() -> Path:
    """The sample mParticle files in data/mparticle/."""
    return REPO / "data" / "mparticle"


@pytest.fixture
def q(lab):
    """q(sql, params=None) -> the query's rows as a sorted list of tuples."""

    def _q(sql: str, params=None) -> list[tuple]:
        return sorted(lab.engine.query_rows(sql, params), key=repr)

    return _q


@pytest.fixture
def mixpanel_data_dir() -> Path:
    """The sample Mixpanel files in data/mixpanel/."""
    return REPO / "data" / "mixpanel"


@pytest.fixture
def balanced(lab):
    """balanced(report) -> asserts rows_read = loaded + deduplicated + quarantined for the report
    and for every file it recorded in `loads`; returns the report."""

    def _check(report):
        assert report.rows_read == report.loaded + report.deduplicated + report.n_quarantined
        for load_id in report.load_ids:
            r, l, d, qn = lab.engine.query_rows(
                "SELECT rows_read, loaded, deduplicated, quarantined FROM loads WHERE load_id = ?", [load_id]
            )[0]
            assert r == l + d + qn, (load_id, r, l, d, qn)
        return report

    return _check


PARSE_PATHS = ("whole", "parallel", "fast")


@pytest.fixture(autouse=True, params=PARSE_PATHS)
def parse_path(request, monkeypatch):
    """Every loader test runs three times: files parsed in one statement (small files), through
    the parallel path big files take (FileContext.numbered_table, threshold lowered to 0 bytes),
    and through the typed fast path (cohortlab.loaders.fast: read_json / read_csv of the needed
    fields, falling back to the exact path for a file it cannot take exactly; mixpanel-events,
    mixpanel-profiles, mixpanel-members and mparticle-profiles have one). The first two run with
    the fast path off, so they test the exact path alone.

    A module whose loaders have no parallel or no fast path says so (``PARSE_PATHS = ("whole",)``):
    its tests would run the same code twice or three times. The declaration is checked: a test of
    such a module fails when its loads reach the path the module says they do not have (the
    loader gained one: remove the declaration), unless it is marked ``other_kinds_first``: it loads
    files of another loader as its set-up, which that loader's own tests run on every path."""
    from cohortlab.loaders import base, fast

    paths = getattr(request.module, "PARSE_PATHS", PARSE_PATHS)
    if request.param not in paths:
        pytest.skip(f"the same code as the whole path: this module's loaders have no {request.param} path")
    reached = []
    if request.node.get_closest_marker("other_kinds_first"):
        paths = PARSE_PATHS  # reaching another loader's paths is expected; nothing to check
    if "fast" not in paths:
        monkeypatch.setattr(fast, "enabled", lambda: reached.append("fast") or False)
    if "parallel" not in paths:
        numbered = base.FileContext.numbered_table
        monkeypatch.setattr(base.FileContext, "numbered_table",
                            lambda self, *a, **k: reached.append("parallel") or numbered(self, *a, **k))
    monkeypatch.setattr(fast, "ENABLED", request.param == "fast")
    if request.param == "parallel":
        monkeypatch.setattr(base, "PARALLEL_MIN_BYTES", 0)
    yield request.param
    assert not reached, (f"{request.module.__name__} declares PARSE_PATHS = {paths}, but its loads took the "
                         f"{sorted(set(reached))} path: remove the declaration")


@pytest.fixture
def run_once(parse_path):
    """For a test that does not depend on the parse path (or chooses it itself): run it once,
    not once per parse path."""
    if parse_path != "whole":
        pytest.skip("runs once: does not depend on the parse path")
