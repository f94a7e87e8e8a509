"""DuckDB engine: runs the core SQL as written. In-memory or a ``.duckdb`` file.

``memory_limit`` / ``threads`` default to ``$COHORTLAB_MEMORY_LIMIT`` / ``$COHORTLAB_THREADS``
when set (so every command and notebook of a scheduled job can be capped at once), else to
DuckDB's own defaults (80% of RAM, all cores)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from cohortlab.engines.base import Engine


READ_ONLY_CATALOG = "source"  # the user's database in read-only mode (see DuckDBEngine._attach_read_only)


class DuckDBEngine(Engine):
    name = "duckdb"

    def __init__(
        self,
        database: str | os.PathLike | None = None,
        *,
        connection: duckdb.DuckDBPyConnection | None = None,
        memory_limit: str | None = None,
        threads: int | None = None,
        read_only: bool = False,
    ) -> None:
        if connection is not None:
            self.con = connection
            self.database = None
        else:
            self.database = str(database) if database not in (None, ":memory:") else None
            if self.database and not read_only:
                Path(self.database).parent.mkdir(parents=True, exist_ok=True)
            if read_only and self.database:
                self.con = self._attach_read_only(self.database)
            else:
                self.con = duckdb.connect(self.database or ":memory:", read_only=read_only)
        self.execute("SET TimeZone = 'UTC'")
        memory_limit = memory_limit or os.environ.get("COHORTLAB_MEMORY_LIMIT") or None
        threads = threads or (int(os.environ["COHORTLAB_THREADS"]) if os.environ.get("COHORTLAB_THREADS") else None)
        if memory_limit:
            self.execute(f"SET memory_limit = '{memory_limit}'")
        if threads:
            self.execute(f"SET threads = {int(threads)}")

    @staticmethod
    def _attach_read_only(path: str) -> duckdb.DuckDBPyConnection:
        """Read-only mode: the user's file is ATTACHed ``READ_ONLY`` as catalog ``source``
        into an in-memory database. Unqualified names resolve in memory first, then in the file
        (``search_path``); everything written (simulation results, temp tables) goes to memory.
        Tables that are not inputs (results of earlier commands) start empty in memory. The file
        is never written: no ``.wal`` is left behind, and replacing it between two runs is
        harmless."""
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such database")
        from cohortlab.pipeline import sql_str

        con = duckdb.connect(":memory:")
        try:
            con.execute(f"ATTACH {sql_str(path)} AS {READ_ONLY_CATALOG} (READ_ONLY)")
            con.execute(f"SET search_path = 'memory.main,{READ_ONLY_CATALOG}.main'")
            # results of earlier commands stored in the file (resolution, migration_daily, ...) are
            # shadowed by empty tables of the same shape: this run's results replace them in memory
            # (DELETE/INSERT would otherwise reach the read-only file)
            from cohortlab import schema
            from cohortlab.privacy import META_TABLE

            inputs = set(schema.TABLES) | {META_TABLE}
            for (name,) in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main'",
                [READ_ONLY_CATALOG],
            ).fetchall():
                if name not in inputs:
                    q = '"' + name.replace('"', '""') + '"'
                    con.execute(f"CREATE TABLE memory.main.{q} AS SELECT * FROM {READ_ONLY_CATALOG}.main.{q} LIMIT 0")
        except BaseException:
            con.close()
            raise
        return con

    def execute(self, sql: str, params: list[Any] | None = None) -> None:
        self.con.execute(sql, params) if params is not None else self.con.execute(sql)

    def query_df(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        rel = self.con.execute(sql, params) if params is not None else self.con.execute(sql)
        return rel.df()

    def query_rows(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        rel = self.con.execute(sql, params) if params is not None else self.con.execute(sql)
        return rel.fetchall()

    def register(self, name: str, df: pd.DataFrame) -> None:
        self.con.register(name, df)

    def table_exists(self, name: str) -> bool:
        rows = self.query_rows(
            "SELECT 1 FROM information_schema.tables WHERE table_name = ? LIMIT 1", [name]
        )
        return bool(rows)

    def close(self) -> None:
        self.con.close()
