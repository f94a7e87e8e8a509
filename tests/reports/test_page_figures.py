"""What the report pages say, on hand-built figures: each number in the words and tables a reader
sees (paused windows, agreement, shared MPIDs, migration plans, wording)."""

import pandas as pd

from cohortlab.report import metrics, summaries
from cohortlab.report import notebook as ui


def _timeline(runs: list[tuple[str, bool]]) -> pd.DataFrame:
    """A dynamic sync's timeline: ``(run time, failed)`` per run, in order."""
    return pd.DataFrame({"run_at": pd.to_datetime([t for t, _ in runs]), "failed": [f for _, f in runs]})


# the demo's two pauses: one ends with a successful run, the other still runs at the last run
DEMO_LIKE = _timeline([
    ("2026-02-24 04:00", False), ("2026-02-24 06:00", True), ("2026-02-24 08:00", True),
    ("2026-02-27 18:00", False), ("2026-02-28 18:00", False),
    ("2026-02-28 20:00", True), ("2026-02-28 22:00", True), ("2026-03-01 00:00", True),
])


def test_a_paused_window_names_its_first_successful_run_after_the_pause_or_that_it_still_runs():
    w = metrics.paused_windows(DEMO_LIKE)
    assert w["start"].tolist() == list(pd.to_datetime(["2026-02-24 06:00", "2026-02-28 20:00"]))
    assert w["last_failed"].tolist() == list(pd.to_datetime(["2026-02-24 08:00", "2026-03-01 00:00"]))
    assert w["end"].iloc[0] == pd.Timestamp("2026-02-27 18:00") and pd.isna(w["end"].iloc[1])
    # only failed runs are counted, in every row: the windows add up to the timeline's failed runs
    assert w["failed_runs"].tolist() == [2, 3]
    assert int(w["failed_runs"].sum()) == metrics.timeline_summary(DEMO_LIKE.assign(
        full_refresh=False, adds=0, removes=0, members=0, true_count=0, not_yet_true=0, stale_true=0))["failed_runs"]


def test_the_paused_windows_table_says_when_the_sync_is_still_paused_at_the_last_run():
    rows = metrics._rows(metrics.paused_windows(DEMO_LIKE))
    table = ui.paused_windows_table(rows, last_run="2026-03-01T00:00:00")
    assert table.to_dict(orient="records") == [
        {"first failed run": "2026-02-24 06:00", "last failed run": "2026-02-24 08:00", "failed runs": 2,
         "first successful run after the pause": "2026-02-27 18:00"},
        {"first failed run": "2026-02-28 20:00", "last failed run": "2026-03-01 00:00", "failed runs": 3,
         "first successful run after the pause": "none: still paused at the last run (2026-03-01 00:00)"},
    ]


def test_a_timeline_without_failed_runs_has_no_paused_window():
    assert metrics.paused_windows(_timeline([("2026-03-01", False), ("2026-03-02", False)])).empty
