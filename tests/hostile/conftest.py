"""Fixtures of the hostile-input suite: a seeded database file per test, the CLI, checksums."""

from __future__ import annotations

import shutil
from contextlib import contextmanager

import duckdb
import pytest
from click.testing import CliRunner

from cohortlab import Lab, schema
from cohortlab.cli import main


@pytest.fixture(scope="session")
def seed_db(tmp_path_factory):
    """A database with a little good data of every kind (so "unchanged" means something)."""
    folder = tmp_path_factory.mktemp("seed")
    path = folder / "seed.duckdb"
    ev = folder / "ev.jsonl"
    ev.write_text('{"event":"Seed","properties":{"time":1772000000,"distinct_id":"seed","$insert_id":"s"}}\n')
    mem = folder / "mem.csv"
    mem.write_text("distinct_id\nseed\n")
    pro = folder / "p.json"
    pro.write_text('{"mpid": 77, "user_attributes": {"Hostile": true}}\n')
    with Lab(path) as lab:
        lab.load("mixpanel-events", ev)
        lab.load("mixpanel-members", mem, cohort="Seeded", as_of="2026-02-01")
        lab.load("mparticle-profiles", pro)
    return path


@pytest.fixture(scope="session")
def seed_checksum(seed_db):
    return checksum(str(seed_db))


@pytest.fixture
def db(seed_db, tmp_path):
    """A copy of the seeded database for one test (path as text)."""
    p = tmp_path / "lab.duckdb"
    shutil.copy(seed_db, p)
    return str(p)


_CHECKSUM_SQL = " UNION ALL ".join(
    f"SELECT '{t}', count(*), coalesce(sum(hash(x::VARCHAR)::HUGEINT), 0) FROM {t} x" for t in schema.TABLES
)


def checksum(db: str, con=None) -> list[tuple]:
    """Row count and an order-free hash of every canonical table (one query), on ``con`` (an open
    read-only connection, see :func:`read_only`) or on a read-only connection of its own."""
    if con is not None:
        return sorted(con.execute(_CHECKSUM_SQL).fetchall())
    with read_only(db) as con:
        return sorted(con.execute(_CHECKSUM_SQL).fetchall())


@contextmanager
def read_only(db: str):
    """A plain read-only DuckDB connection to the test's own database file, with the session time
    zone a Lab sets. The tests only read their tables through it: opening a read-only Lab took
    four times the CPU (its checks for objects that run SQL, the attach, the settings), on each
    of the ~160 hostile loads; the command under test still opens the file as a Lab."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        yield con
    finally:
        con.close()


class Run:
    def __init__(self, result):
        self.result = result
        self.code = result.exit_code
        self.stdout = result.stdout
        self.stderr = result.stderr

    def assert_one_line_error(self, contains: str | None = None) -> str:
        r = self.result
        assert self.code != 0, f"expected a failure, got exit 0:\n{self.stdout}\n{self.stderr}"
        assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
        assert "Traceback" not in self.stdout + self.stderr
        lines = [ln for ln in self.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), self.stderr
        if contains:
            assert contains in lines[0], lines[0]
        return lines[0]


@pytest.fixture
def cli():
    """cli(*args) -> Run: the `cohortlab` command line in-process (stderr kept apart)."""

    def _run(*args) -> Run:
        return Run(CliRunner().invoke(main, [str(a) for a in args]))

    return _run
