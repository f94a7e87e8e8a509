"""Charts of the sync-timeline notebook (docs/rules.md#sync-over-time): the cohort vs the audience
after each run, adds and removes per run, stale and pending profiles, dynamic sync vs one-time
export; failed runs shaded as paused windows."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from cohortlab.charts.base import (
    BLUE, GREEN, GREY, ORANGE, PAUSE, RED,
    _bar_width, _count_axis, _date_axis, _empty, _figure, _many_bars, _require,
)
from cohortlab.report.metrics import flags


def failed_windows(times: pd.Series, failed: pd.Series) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Contiguous runs of failed syncs as (start, end) windows; the end is the next run (or the
    last failed run when the timeline ends paused)."""
    windows: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    start = None
    t = list(pd.to_datetime(times))
    f = list(flags(pd.Series(failed)))
    for i, (ti, fi) in enumerate(zip(t, f)):
        if fi and start is None:
            start = ti
        if start is not None and (not fi or i == len(t) - 1):
            windows.append((start, ti))
            start = None
    return windows


def _shade_pauses(ax, timeline: pd.DataFrame, label: bool = True) -> int:
    if "failed" not in timeline.columns:
        return 0
    windows = failed_windows(timeline["run_at"], timeline["failed"])
    for i, (a, b) in enumerate(windows):
        ax.axvspan(a, b, color=PAUSE, alpha=0.7, lw=0, label="paused (failed runs)" if label and i == 0 else None)
    return len(windows)


def _legend_below(ax) -> None:
    """The legend in a row under the chart: inside, it hid the lines it names (the paused windows'
    shading covers the whole height, so no corner of the axes is free of data)."""
    n = len(ax.get_legend_handles_labels()[1])
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=min(n, 4), frameon=False)


def _from_zero(ax, *counts: pd.Series) -> None:
    """Count axes start at 0: the gap between the cohort and the audience is read from the
    heights (an axis from near the smallest count made 47 against 59 look like 1 against 13)."""
    top = max([float(c.max()) for c in counts if len(c)] + [0.0])
    room = max(top * 1.05, 1.0)  # up to the first whole tick above the data, with some room
    ax.set_ylim(0, min(t for t in ax.yaxis.get_major_locator().tick_values(0, room) if t >= room))


FULL_SYNC_KINDS = ("reconnect", "reexport")  # full syncs that are not refreshes (metrics.timeline_summary)


def timeline_chart(
    timeline: pd.DataFrame, *, title: str = "Mixpanel cohort vs mParticle audience over time"
) -> Figure:
    """Mixpanel members and mParticle profiles with ``<attribute> = true`` after each run, paused
    windows shaded, full refreshes marked (▼), and the full syncs of a reconnect or a re-export (▲).

    ``timeline`` columns: ``run_at``, ``members``, ``true_count``; optional ``failed``,
    ``full_refresh``, ``kind``.
    """
    _require(timeline, ["run_at", "members", "true_count"], "timeline_chart")
    fig, ax = _figure(title, xlabel="sync run (UTC)", ylabel="users")
    if timeline.empty:
        _empty(ax)
        return fig
    t = pd.to_datetime(timeline["run_at"])
    _shade_pauses(ax, timeline)
    # members drawn wide and light underneath: visible even where the audience equals the cohort
    ax.step(t, timeline["members"], where="post", color=GREY, lw=5, alpha=0.45, label="Mixpanel cohort members")
    ax.step(t, timeline["true_count"], where="post", color=BLUE, lw=1.8, label="mParticle attribute = true")
    if "full_refresh" in timeline.columns:
        fr = flags(timeline["full_refresh"])
        if fr.any():
            ax.scatter(t[fr], timeline.loc[fr, "true_count"], marker="v", color=ORANGE, zorder=3, label="full refresh")
    if "kind" in timeline.columns:  # the other full syncs, which the summary counts beside the refreshes
        fs = timeline["kind"].isin(FULL_SYNC_KINDS).to_numpy()
        if fs.any():
            ax.scatter(t[fs], timeline.loc[fs, "true_count"], marker="^", color=GREEN, zorder=3,
                       label="full sync (reconnect, re-export)")
    _count_axis(ax.yaxis)
    _from_zero(ax, timeline["members"], timeline["true_count"])
    _date_axis(ax)
    _legend_below(ax)
    return fig


def sync_runs_chart(timeline: pd.DataFrame, *, title: str = "Adds and removes sent per sync run") -> Figure:
    """Adds (up) and removes (down) sent per run; failed runs shaded. Columns ``run_at``,
    ``adds``, ``removes``; optional ``failed``."""
    _require(timeline, ["run_at", "adds", "removes"], "sync_runs_chart")
    fig, ax = _figure(title, xlabel="sync run (UTC)", ylabel="members sent (adds up, removes down)")
    if timeline.empty:
        _empty(ax)
        return fig
    t = pd.to_datetime(timeline["run_at"])
    _shade_pauses(ax, timeline)
    width = _bar_width(t)
    _many_bars(ax, t, timeline["adds"].astype(float), width=width, color=GREEN, label="adds")
    _many_bars(ax, t, -timeline["removes"].astype(float), width=width, color=RED, label="removes")
    ax.axhline(0, color="black", lw=0.6)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{abs(v):,.0f}"))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
    _date_axis(ax)
    _legend_below(ax)
    return fig


def staleness_chart(timeline: pd.DataFrame, *, title: str = "Audience errors after each run") -> Figure:
    """Profiles still ``true`` that left the cohort (``stale_true``) and matched members not yet
    ``true`` (``not_yet_true``), per run; paused windows shaded."""
    _require(timeline, ["run_at", "stale_true", "not_yet_true"], "staleness_chart")
    fig, ax = _figure(title, xlabel="sync run (UTC)", ylabel="profiles")
    if timeline.empty:
        _empty(ax)
        return fig
    t = pd.to_datetime(timeline["run_at"])
    _shade_pauses(ax, timeline)
    ax.step(t, timeline["stale_true"], where="post", color=ORANGE, lw=1.8, label="stale true (left the cohort, still true)")
    ax.step(t, timeline["not_yet_true"], where="post", color=RED, lw=1.8, label="not yet true (should be true)")
    _count_axis(ax.yaxis)
    _from_zero(ax, timeline["stale_true"], timeline["not_yet_true"])
    _date_axis(ax)
    _legend_below(ax)
    return fig


def sync_types_chart(
    timelines: pd.DataFrame, *, title: str = "Audience size: dynamic sync vs one-time export"
) -> Figure:
    """``true_count`` over time per ``sync_type`` (long frame: ``run_at``, ``sync_type``,
    ``true_count``, optional ``members``: the Mixpanel cohort size, drawn once in grey)."""
    _require(timelines, ["run_at", "sync_type", "true_count"], "sync_types_chart")
    fig, ax = _figure(title, xlabel="time (UTC)", ylabel="users")
    if timelines.empty:
        _empty(ax)
        return fig
    if "members" in timelines.columns:
        first = timelines[timelines["sync_type"] == timelines["sync_type"].iloc[0]].sort_values("run_at")
        ax.step(pd.to_datetime(first["run_at"]), first["members"], where="post", color=GREY, lw=5, alpha=0.45,
                label="Mixpanel cohort members")
    colors = {"dynamic": BLUE, "one_time": ORANGE}
    for name, g in timelines.sort_values("run_at").groupby("sync_type", sort=True):
        ax.step(pd.to_datetime(g["run_at"]), g["true_count"], where="post", lw=1.8,
                color=colors.get(str(name)), label=f"attribute = true ({str(name).replace('_', '-')})")
    _count_axis(ax.yaxis)
    _from_zero(ax, timelines["true_count"], *([timelines["members"]] if "members" in timelines.columns else []))
    _date_axis(ax)
    _legend_below(ax)
    return fig
