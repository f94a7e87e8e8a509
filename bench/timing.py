"""Every SQL statement the DuckDB engine runs, timed: the wrapper the profilers share
(``profile_load.py``, ``profile_sim.py``).

    with StatementTimer(width=80) as timer:
        ...                                   # anything that runs SQL on a DuckDBEngine
    for key, seconds, count in timer.top(25):
        ...

While active, the engine's methods are wrapped (on the class: every engine the code opens) and
each statement's wall time is added to its group, the statement's first ``width`` characters
with white space folded (the same statement run for 40 files is one group, with its count), and
to the current ``label`` (e.g. the loader kind running; the caller sets it). ``explain`` picks
the first ``execute`` statement whose group key it accepts: that statement runs under
``explain_sql`` (``EXPLAIN ANALYZE`` by default) in place of the plain run, so its effect
happens once, and the plan text is kept in ``explained``.
"""

from __future__ import annotations

import collections
import time
from typing import Callable


class StatementTimer:
    def __init__(
        self,
        *,
        width: int = 80,
        methods: tuple[str, ...] = ("execute", "query_rows"),
        explain: Callable[[str], bool] | None = None,
        explain_sql: str = "EXPLAIN ANALYZE",
    ):
        self.width, self.methods, self.explain, self.explain_sql = width, methods, explain, explain_sql
        self.totals: collections.Counter = collections.Counter()
        self.counts: collections.Counter = collections.Counter()
        self.by_label: collections.Counter = collections.Counter()
        self.label = "-"
        self.explained: list[str] = []
        self._orig: dict = {}

    def __enter__(self) -> "StatementTimer":
        from cohortlab.engines.duckdb import DuckDBEngine

        self._orig = {m: getattr(DuckDBEngine, m) for m in {*self.methods, "query_rows"}}
        for m in self.methods:
            setattr(DuckDBEngine, m, self._timed(m))
        return self

    def __exit__(self, *exc) -> None:
        from cohortlab.engines.duckdb import DuckDBEngine

        for m, f in self._orig.items():
            setattr(DuckDBEngine, m, f)

    def _timed(self, name: str):
        f = self._orig[name]

        def run(engine, sql, params=None):
            key = " ".join(sql.split())[: self.width]
            t0 = time.perf_counter()
            if name == "execute" and self.explain and not self.explained and self.explain(key):
                self.explained.append(self._orig["query_rows"](engine, f"{self.explain_sql} {sql}", params)[0][1])
                out = None
            else:
                out = f(engine, sql, params)
            dt = time.perf_counter() - t0
            self.totals[key] += dt
            self.counts[key] += 1
            self.by_label[self.label] += dt
            return out

        return run

    @property
    def seconds(self) -> float:
        """All the statements' time."""
        return sum(self.totals.values())

    @property
    def calls(self) -> int:
        return sum(self.counts.values())

    def top(self, n: int) -> list[tuple[str, float, int]]:
        """The ``n`` groups that took longest: (key, seconds, statements)."""
        return [(key, s, self.counts[key]) for key, s in self.totals.most_common(n)]
