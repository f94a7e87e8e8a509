"""The engine seam (in the manner of Splink's ``DatabaseAPI``).

The core SQL (resolution, sync, metrics) is written in the DuckDB dialect as named steps
(:class:`cohortlab.pipeline.Pipeline`). An engine executes such pipelines, materialises
tables, and hands results back as pandas / Arrow. Reading raw files is engine-specific and
lives with the engine's loaders.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

from cohortlab import progress

if TYPE_CHECKING:  # pandas is imported by the engines that return frames, when they do
    import pandas as pd


class Engine(ABC):
    """Minimal interface every engine implements."""

    name: str = "abstract"

    @abstractmethod
    def execute(self, sql: str, params: list[Any] | None = None) -> None:
        """Run one statement for its side effect."""

    @abstractmethod
    def query_df(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run a query and return a pandas DataFrame (use for small results only)."""

    @abstractmethod
    def query_rows(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        """Run a query and return its rows as tuples (use for small results only)."""

    @abstractmethod
    def register(self, name: str, df: pd.DataFrame) -> None:
        """Expose a (small) pandas DataFrame as a table/view called ``name``."""

    @abstractmethod
    def table_exists(self, name: str) -> bool:
        """Whether a table or view called ``name`` exists."""

    @abstractmethod
    def drop(self, name: str) -> None:
        """Remove table, view or registered frame ``name``; nothing happens when there is none."""

    def materialise(self, name: str, sql: str, temp: bool = False) -> None:
        """``CREATE OR REPLACE [TEMP] TABLE name AS sql`` (a step of a command's progress line:
        :mod:`cohortlab.progress`)."""
        progress.step(name)
        kind = "TEMP TABLE" if temp else "TABLE"
        self.execute(f"CREATE OR REPLACE {kind} {name} AS {sql}")

    def materialise_frame(self, name: str, df: pd.DataFrame, temp: bool = False) -> None:
        """Write a (small) pandas DataFrame as table ``name``, replacing it: a whole-table write
        (``register`` under a scratch name, ``materialise``, then drop the scratch name)."""
        scratch = f"_frame_{name}"
        self.register(scratch, df)
        try:
            self.materialise(name, f"SELECT * FROM {scratch}", temp=temp)
        finally:
            self.drop(scratch)

    def columns(self, name: str) -> list[str]:
        """Column names of table ``name``, in order."""
        return list(self.query_df(f"SELECT * FROM {name} LIMIT 0").columns)

    def count(self, name: str) -> int:
        """Rows of table ``name``."""
        return int(self.query_rows(f"SELECT count(*) FROM {name}")[0][0])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing block. Engines without transactions may override with a no-op."""
        self.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.execute("ROLLBACK")
            raise
        else:
            self.execute("COMMIT")
