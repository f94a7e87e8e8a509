"""bench/timing.py: the statement timer the profilers share (profile_load.py, profile_sim.py)."""

from __future__ import annotations

from bench.timing import StatementTimer
from cohortlab.engines.duckdb import DuckDBEngine


def test_timer_groups_statements_explains_one_in_place_and_restores_the_engine():
    before = (DuckDBEngine.execute, DuckDBEngine.query_rows, DuckDBEngine.query_df)
    eng = DuckDBEngine()
    try:
        with StatementTimer(width=30, explain=lambda key: key.startswith("CREATE TABLE t")) as timer:
            timer.label = "setup"
            eng.execute("CREATE TABLE t AS\n   SELECT range AS x FROM range(5)")
            eng.execute("CREATE TABLE t2 AS SELECT 1 AS y")  # accepted too, but only the first is explained
            timer.label = "read"
            for _ in range(3):
                eng.query_rows("SELECT count(*) FROM t WHERE x >= 0  -- the same group, three times")
            eng.query_df("SELECT 1")  # query_df is not timed unless asked for
        assert (DuckDBEngine.execute, DuckDBEngine.query_rows, DuckDBEngine.query_df) == before
        # the explained statement ran once, under EXPLAIN ANALYZE: its table holds its rows once
        assert eng.query_rows("SELECT count(*) FROM t")[0][0] == 5
        assert len(timer.explained) == 1 and "CREATE_TABLE_AS" in timer.explained[0].upper().replace(" ", "_")
        assert timer.counts == {"CREATE TABLE t AS SELECT range": 1, "CREATE TABLE t2 AS SELECT 1 AS": 1,
                                "SELECT count(*) FROM t WHERE x": 3}
        assert timer.calls == 5 and set(timer.by_label) == {"setup", "read"}
        assert abs(sum(timer.by_label.values()) - timer.seconds) < 1e-9
        top = timer.top(5)  # every group, slowest first
        assert {k: n for k, _, n in top} == timer.counts
        assert [s for _, s, _ in top] == sorted(timer.totals.values(), reverse=True)
    finally:
        eng.close()
