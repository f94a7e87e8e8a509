"""Charts: one matplotlib function per chart.

Every function takes a small, already aggregated DataFrame (the metrics layer computes it),
returns a :class:`matplotlib.figure.Figure` and never touches pyplot's global state, so it is
safe under the Agg backend, in a notebook (``display(fig)``) and in a long-running process.

    >>> from cohortlab import charts
    >>> fig = charts.waterfall_chart(sim.waterfall, title="Power Users at 2026-03-01")
    >>> fig.savefig("waterfall.png")

Conventions: titles on every figure, labelled axes, counts written on bars, sizes readable in an
HTML report (about 9 x 4.5 inches at 100 dpi). Colours: matched/true = blue, lost = red,
added = green.
"""

from __future__ import annotations

from typing import Iterable, Sequence

# Figures are built with ``Figure()`` directly (no pyplot), so no backend is selected or needed.
import matplotlib
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

__all__ = [
    "waterfall_chart",
    "match_rate_chart",
    "match_rate_over_time_chart",
    "gaps_by_reason_chart",
    "gaps_by_recoverable_chart",
    "activity_chart",
    "timeline_chart",
    "sync_runs_chart",
    "staleness_chart",
    "sync_types_chart",
    "migration_match_rate_chart",
    "predicted_vs_observed_chart",
    "shared_mpid_chart",
    "remedies_chart",
    "observed_vs_simulated_chart",
    "FIGSIZE",
]

FIGSIZE = (9.0, 4.5)
DPI = 100

BLUE = "#3b6ea5"
RED = "#c8553d"
GREEN = "#5a9e5a"
GREY = "#9a9a9a"
ORANGE = "#e39b3b"
PAUSE = "#f2c7c0"

# Labels are data (cohort, plan, identifier names): never parsed as TeX. "$x$" in a cohort name is
# drawn as written, and an unbalanced "$" cannot make a chart fail (docs/reports.md#escaping).
matplotlib.rcParams["text.parse_math"] = False

_THOUSANDS = FuncFormatter(lambda v, _pos: f"{v:,.0f}")


# --------------------------------------------------------------------------- helpers
def _figure(figsize: tuple[float, float] = FIGSIZE, nrows: int = 1, **gridspec) -> tuple[Figure, list]:
    fig = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, 1, squeeze=False, **({"gridspec_kw": gridspec} if gridspec else {}))
    return fig, [a[0] for a in axes]


def _require(df: pd.DataFrame, columns: Iterable[str], chart: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{chart}: missing column(s) {', '.join(missing)}; got {list(df.columns)}")


def _empty(ax, message: str = "no data") -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color=GREY, fontsize=12)
    ax.set_xticks([])
    ax.set_yticks([])


def _count_axis(axis) -> None:
    """A count axis: integer ticks only (never 25, 26, 26, 26, 27), with thousands separators."""
    axis.set_major_locator(MaxNLocator(integer=True, nbins=6, min_n_ticks=2))
    axis.set_major_formatter(_THOUSANDS)


def _fmt(v: float) -> str:
    return f"{v:,.0f}"


def _hbar(
    df: pd.DataFrame,
    category: str,
    value: str,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    color: str | Sequence[str] = RED,
    sort: bool = True,
    labels: Sequence[str] | None = None,
) -> Figure:
    _require(df, [category, value], title)
    data = df[[category, value]].copy()
    data[category] = data[category].astype(object).where(data[category].notna(), "(none)").astype(str)
    if labels is not None:
        data["_label"] = list(labels)
    else:
        data["_label"] = data[category]
    if sort:
        data = data.sort_values(value, ascending=True, kind="stable")
    height = max(2.5, 0.45 * len(data) + 1.4)
    fig, (ax,) = _figure((FIGSIZE[0], min(height, 12)))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if data.empty:
        _empty(ax)
        return fig
    bars = ax.barh(data["_label"], data[value].astype(float), color=color)
    ax.bar_label(bars, labels=[_fmt(v) for v in data[value]], padding=3)
    _count_axis(ax.xaxis)
    ax.margins(x=0.15)
    return fig


# --------------------------------------------------------------------------- docs/rules.md#waterfall
def waterfall_chart(
    waterfall: pd.DataFrame, *, title: str = "Where the users went", hide_zero: bool = False
) -> Figure:
    """The discrepancy waterfall (docs/rules.md#waterfall).

    ``waterfall`` has one row per step, in order, with ``label``, ``kind`` (``total`` | ``minus`` |
    ``plus``) and ``count`` (a positive number of users); when a textual ``step`` key is present
    (``members``, ``unmatched:<gap_reason>``, ``shared_mpid``...) the bars are named by it (short),
    else by ``label``. A ``total`` bar stands on zero; a ``minus`` bar hangs down from the
    running level, a ``plus`` bar rises from it. Bar heights equal ``count``. ``hide_zero`` leaves
    out minus/plus steps of 0 users.
    """
    _require(waterfall, ["label", "kind", "count"], "waterfall_chart")
    if hide_zero:
        waterfall = waterfall[(waterfall["kind"] == "total") | (waterfall["count"] != 0)]
    waterfall = waterfall.reset_index(drop=True)
    fig, (ax,) = _figure((10.0, 5.0))
    ax.set_title(title)
    ax.set_ylabel("users (Mixpanel members / mParticle profiles)")
    ax.set_xlabel("step")
    if waterfall.empty:
        _empty(ax)
        return fig
    level = 0.0
    bottoms, heights, colors = [], [], []
    for kind, count in zip(waterfall["kind"], waterfall["count"].astype(float)):
        if kind == "total":
            bottoms.append(0.0)
            level = count
            colors.append(BLUE)
        elif kind == "minus":
            level -= count
            bottoms.append(level)
            colors.append(RED)
        elif kind == "plus":
            bottoms.append(level)
            level += count
            colors.append(GREEN)
        else:
            raise ValueError(f"waterfall_chart: unknown kind {kind!r} (expected total, minus, plus)")
        heights.append(count)
    x = np.arange(len(waterfall))
    bars = ax.bar(x, heights, bottom=bottoms, color=colors, edgecolor="white", width=0.7)
    signs = {"total": "", "minus": "−", "plus": "+"}
    ax.bar_label(
        bars,
        labels=[f"{signs[k]}{_fmt(c)}" for k, c in zip(waterfall["kind"], waterfall["count"])],
        label_type="edge",
        padding=2,
        fontsize=9,
    )
    # a step too small to see as a bar (a few users out of thousands) gets a thick tick at its level
    top = max(heights) if heights else 0
    for xi, b, h, c in zip(x, bottoms, heights, colors):
        if 0 < h < 0.015 * top:
            ax.hlines(b + h / 2, xi - 0.35, xi + 0.35, color=c, lw=4)
    # connectors between consecutive bars at the running level
    running = [b + h if k != "minus" else b for b, h, k in zip(bottoms, heights, waterfall["kind"])]
    for i in range(len(x) - 1):
        ax.plot([x[i] + 0.35, x[i + 1] - 0.35], [running[i]] * 2, color=GREY, lw=0.8, ls=":")
    names = (
        [_short_step(str(s)) for s in waterfall["step"]]
        if "step" in waterfall.columns and waterfall["step"].map(lambda v: isinstance(v, str)).all()
        else [str(s) for s in waterfall["label"]]
    )
    ax.set_xticks(x, [_wrap(n, 13) for n in names], fontsize=8)
    _count_axis(ax.yaxis)
    ax.margins(y=0.12)
    _count_axis(ax.yaxis)
    fig.legend(  # outside the axes: never over a bar or its value
        handles=[Patch(color=BLUE, label="total"), Patch(color=RED, label="lost"), Patch(color=GREEN, label="added")],
        loc="outside lower center",
        ncol=3,
        fontsize=8,
    )
    return fig


_STEP_NAMES = {
    "members": "Mixpanel members",
    "shared_mpid": "shared MPID",
    "should_be_true": "should be true",
    "not_yet_true": "not yet true",
    "stale_true": "stale true",
    "orphans_true": "orphans true",
    "audience": "mParticle audience",
}


def _short_step(step: str) -> str:
    if step in _STEP_NAMES:
        return _STEP_NAMES[step]
    if ":" in step:
        return step.split(":", 1)[1]
    return step


def _wrap(text: str, width: int) -> str:
    words, lines, line = text.replace("_", " ").split(), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    lines.append(line)
    return "\n".join(lines)


# --------------------------------------------------------------------------- match rates
def match_rate_chart(
    rates: pd.DataFrame, *, by: str = "cohort_name", title: str | None = None
) -> Figure:
    """Match rate per group (``by``: ``cohort_name`` or ``identifier_source``).

    ``rates`` has columns ``by``, ``members``, ``matched`` and ``match_rate`` (0..1). Bars are the
    match rate in percent; each is annotated with ``matched / members``.
    """
    _require(rates, [by, "members", "matched", "match_rate"], "match_rate_chart")
    title = title or f"Match rate by {by.replace('_', ' ')}"
    data = rates.copy()
    data[by] = data[by].astype(object).where(data[by].notna(), "(none)").astype(str)
    height = max(2.5, 0.5 * len(data) + 1.4)
    fig, (ax,) = _figure((FIGSIZE[0], min(height, 12)))
    ax.set_title(title)
    ax.set_xlabel("members matched to an mParticle profile (%)")
    ax.set_ylabel(by.replace("_", " "))
    if data.empty:
        _empty(ax)
        return fig
    bars = ax.barh(data[by], data["match_rate"].astype(float) * 100, color=BLUE)
    ax.bar_label(
        bars,
        labels=[
            f"{r * 100:.1f}%  ({_fmt(m)} / {_fmt(n)})"
            for r, m, n in zip(data["match_rate"], data["matched"], data["members"])
        ],
        padding=3,
        fontsize=9,
    )
    ax.set_xlim(0, 130)
    ax.xaxis.set_major_formatter(PercentFormatter(100))
    ax.set_xticks([0, 25, 50, 75, 100])
    ax.invert_yaxis()
    return fig


def match_rate_over_time_chart(
    rates: pd.DataFrame,
    *,
    time: str = "as_of",
    series: str = "cohort_name",
    title: str = "Match rate over time",
    ylabel: str = "match rate (%)",
) -> Figure:
    """One line per ``series`` (cohort, plan...) of ``match_rate`` (0..1, or any share: name it
    with ``ylabel``) against ``time``."""
    _require(rates, [time, series, "match_rate"], "match_rate_over_time_chart")
    fig, (ax,) = _figure()
    ax.set_title(title)
    ax.set_xlabel("date (UTC)")
    ax.set_ylabel(ylabel)
    if rates.empty:
        _empty(ax)
        return fig
    styles = ["-", "--", ":", "-."]  # overlapping series stay distinguishable
    for i, (name, g) in enumerate(rates.sort_values(time).groupby(series, sort=True)):
        ax.plot(pd.to_datetime(g[time]), g["match_rate"].astype(float) * 100, marker="o" if len(g) < 30 else None,
                ms=3, lw=1.8, ls=styles[i % len(styles)], label=str(name))
    ax.set_ylim(0, 105)
    ax.yaxis.set_major_formatter(PercentFormatter(100))
    _date_axis(ax)
    ax.legend(fontsize=8, loc="best")
    return fig


# --------------------------------------------------------------------------- gaps
def gaps_by_reason_chart(gaps: pd.DataFrame, *, title: str = "Unmatched members by gap reason") -> Figure:
    """Unmatched members per ``gap_reason`` (columns ``gap_reason``, ``users``)."""
    return _hbar(gaps, "gap_reason", "users", title=title, xlabel="unmatched members", ylabel="gap reason")


def gaps_by_recoverable_chart(
    gaps: pd.DataFrame, *, title: str = "Unmatched members that ARE in mParticle, by identity type"
) -> Figure:
    """Unmatched members per ``recoverable_via`` (columns ``recoverable_via``, ``users``); ``None``
    (not found under any identity) is shown as "(not in mParticle)"."""
    _require(gaps, ["recoverable_via", "users"], "gaps_by_recoverable_chart")
    data = gaps.copy()
    data["recoverable_via"] = data["recoverable_via"].astype(object).where(
        data["recoverable_via"].notna(), "(not in mParticle)"
    )
    colors = [GREY if v == "(not in mParticle)" else ORANGE for v in data.sort_values("users", kind="stable")["recoverable_via"]]
    return _hbar(
        data, "recoverable_via", "users", title=title, xlabel="unmatched members",
        ylabel="found through identity", color=colors,
    )


def activity_chart(
    activity: pd.DataFrame,
    *,
    by: str = "gap_reason",
    cutoff_label: str = "the cutoff",
    title: str | None = None,
) -> Figure:
    """Stacked bars per ``by`` of members active after the cutoff vs only before.

    ``activity`` columns: ``by``, ``active_after_cutoff`` (bool) and ``users``.
    """
    _require(activity, [by, "active_after_cutoff", "users"], "activity_chart")
    title = title or f"Last activity of unmatched members, before/after {cutoff_label}"
    data = activity.copy()
    data[by] = data[by].astype(object).where(data[by].notna(), "(none)").astype(str)
    data["active_after_cutoff"] = data["active_after_cutoff"].fillna(False).astype(bool)
    wide = data.pivot_table(index=by, columns="active_after_cutoff", values="users", aggfunc="sum", fill_value=0)
    for col in (True, False):
        if col not in wide.columns:
            wide[col] = 0
    wide = wide.loc[(wide[True] + wide[False]).sort_values(kind="stable").index]
    height = max(2.5, 0.45 * len(wide) + 1.6)
    fig, (ax,) = _figure((FIGSIZE[0], min(height, 12)))
    ax.set_title(title)
    ax.set_xlabel("members")
    ax.set_ylabel(by.replace("_", " "))
    if wide.empty:
        _empty(ax)
        return fig
    before = ax.barh(wide.index, wide[False], color=GREY, label=f"last active before {cutoff_label}")
    after = ax.barh(wide.index, wide[True], left=wide[False], color=BLUE, label=f"active on/after {cutoff_label}")
    ax.bar_label(before, labels=[_fmt(v) if v else "" for v in wide[False]], label_type="center", fontsize=8)
    ax.bar_label(after, labels=[_fmt(v) if v else "" for v in wide[True]], label_type="center", fontsize=8, color="white")
    _count_axis(ax.xaxis)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def shared_mpid_chart(
    shared: pd.DataFrame, *, title: str = "mParticle profiles claimed by several Mixpanel profiles"
) -> Figure:
    """Distribution of Mixpanel profiles per MPID (columns ``profiles_per_mpid``, ``mpids``)."""
    _require(shared, ["profiles_per_mpid", "mpids"], "shared_mpid_chart")
    fig, (ax,) = _figure((FIGSIZE[0], 3.5))
    ax.set_title(title)
    ax.set_xlabel("Mixpanel profiles resolving to the same MPID")
    ax.set_ylabel("MPIDs")
    if shared.empty:
        _empty(ax, "no shared MPIDs")
        return fig
    bars = ax.bar(shared["profiles_per_mpid"].astype(str), shared["mpids"].astype(float), color=ORANGE, width=0.6)
    ax.bar_label(bars, labels=[_fmt(v) for v in shared["mpids"]], padding=2)
    _count_axis(ax.yaxis)
    ax.margins(y=0.15)
    ax.set_xlim(-0.5 - max(0, 3 - len(shared)) / 2, len(shared) - 0.5 + max(0, 3 - len(shared)) / 2)  # one bar: not wall to wall
    return fig


def remedies_chart(remedies: pd.DataFrame, *, title: str = "Audience each remedy would gain (simulated)") -> Figure:
    """Audience gained per remedy (columns ``remedy``, ``users``), each from its own simulation."""
    return _hbar(remedies, "remedy", "users", title=title, xlabel="profiles gained", ylabel="remedy",
                 color=GREEN, sort=False)


# --------------------------------------------------------------------------- docs/rules.md#observed-state
def observed_vs_simulated_chart(
    audiences: pd.DataFrame,
    causes: pd.DataFrame,
    *,
    title: str = "mParticle audience: observed vs simulated",
) -> Figure:
    """Left: per cohort, the profiles with the attribute true in the mParticle snapshot
    (``observed``) and in the simulation (``simulated``), paired bars (``audiences``:
    ``cohort_name, observed, simulated``). Right: the profiles that disagree, by cause
    (``causes``: ``cause, profiles``, in rule order)."""
    _require(audiences, ["cohort_name", "observed", "simulated"], "observed_vs_simulated_chart")
    _require(causes, ["cause", "profiles"], "observed_vs_simulated_chart")
    n = max(len(audiences), len(causes), 1)
    fig = Figure(figsize=(FIGSIZE[0] + 1.5, max(2.8, 0.55 * n + 1.8)), dpi=DPI, layout="constrained")
    fig.suptitle(title)
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.15, 1]})
    left.set_title("profiles with the attribute true", fontsize=10)
    left.set_xlabel("profiles")
    if audiences.empty:
        _empty(left, "no cohort with observed data")
    else:
        a = audiences.iloc[::-1].reset_index(drop=True)  # first cohort on top
        pos = np.arange(len(a))
        b1 = left.barh(pos + 0.2, a["simulated"].astype(float), height=0.4, color=BLUE, label="simulated")
        b2 = left.barh(pos - 0.2, a["observed"].astype(float), height=0.4, color=ORANGE, label="observed")
        left.bar_label(b1, labels=[_fmt(v) for v in a["simulated"]], padding=3, fontsize=8)
        left.bar_label(b2, labels=[_fmt(v) for v in a["observed"]], padding=3, fontsize=8)
        left.set_yticks(pos, [_wrap(str(v), 18) for v in a["cohort_name"]], fontsize=8)
        _count_axis(left.xaxis)
        left.margins(x=0.18)
        left.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2, frameon=False)
    right.set_title("profiles that disagree, by cause", fontsize=10)
    right.set_xlabel("profiles")
    c = causes[causes["profiles"] > 0]
    if c.empty:
        _empty(right, "every profile agrees")
    else:
        c = c.iloc[::-1].reset_index(drop=True)
        bars = right.barh([_wrap(str(v), 18) for v in c["cause"]], c["profiles"].astype(float), color=RED)
        right.bar_label(bars, labels=[_fmt(v) for v in c["profiles"]], padding=3, fontsize=8)
        right.tick_params(axis="y", labelsize=8)
        _count_axis(right.xaxis)
        right.margins(x=0.18)
    return fig


# --------------------------------------------------------------------------- sync over time (docs/rules.md#sync-over-time)
def _date_axis(ax) -> None:
    """Dates that say their month and day at every tick (``Feb 23``), with the hour when the axis
    spans less than three days; ticks never repeat a label."""
    lo, hi = ax.get_xlim()
    short = (hi - lo) < 3
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    if not short:
        locator = mdates.DayLocator(interval=max(1, int(np.ceil((hi - lo) / 8)))) if (hi - lo) <= 62 else \
            mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d %H:%M" if short else "%b %d"))


def failed_windows(times: pd.Series, failed: pd.Series) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Contiguous runs of failed syncs as (start, end) windows; the end is the next run (or the
    last failed run when the timeline ends paused)."""
    windows: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    start = None
    t = list(pd.to_datetime(times))
    f = [bool(x) for x in failed.fillna(False)]
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


def timeline_chart(
    timeline: pd.DataFrame, *, title: str = "Mixpanel cohort vs mParticle audience over time"
) -> Figure:
    """Mixpanel members and mParticle profiles with ``<attribute> = true`` after each run, paused
    windows shaded, full refreshes marked.

    ``timeline`` columns: ``run_at``, ``members``, ``true_count``; optional ``failed``,
    ``full_refresh``.
    """
    _require(timeline, ["run_at", "members", "true_count"], "timeline_chart")
    fig, (ax,) = _figure()
    ax.set_title(title)
    ax.set_xlabel("sync run (UTC)")
    ax.set_ylabel("users")
    if timeline.empty:
        _empty(ax)
        return fig
    t = pd.to_datetime(timeline["run_at"])
    _shade_pauses(ax, timeline)
    # members drawn wide and light underneath: visible even where the audience equals the cohort
    ax.step(t, timeline["members"], where="post", color=GREY, lw=5, alpha=0.45, label="Mixpanel cohort members")
    ax.step(t, timeline["true_count"], where="post", color=BLUE, lw=1.8, label="mParticle attribute = true")
    if "full_refresh" in timeline.columns:
        fr = timeline["full_refresh"].fillna(False).astype(bool)
        if fr.any():
            ax.scatter(t[fr], timeline.loc[fr, "true_count"], marker="v", color=ORANGE, zorder=3, label="full refresh")
    _count_axis(ax.yaxis)
    _date_axis(ax)
    ax.legend(fontsize=8, loc="best")
    return fig


def sync_runs_chart(timeline: pd.DataFrame, *, title: str = "Adds and removes sent per sync run") -> Figure:
    """Adds (up) and removes (down) sent per run; failed runs shaded. Columns ``run_at``,
    ``adds``, ``removes``; optional ``failed``."""
    _require(timeline, ["run_at", "adds", "removes"], "sync_runs_chart")
    fig, (ax,) = _figure()
    ax.set_title(title)
    ax.set_xlabel("sync run (UTC)")
    ax.set_ylabel("members sent (adds up, removes down)")
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
    ax.legend(fontsize=8, loc="best")
    return fig


def _many_bars(ax, t: pd.Series, heights: pd.Series, *, width: float, color: str, label: str):
    """One bar per run (centred on its time, ``width`` days wide, from 0 to its height), drawn as
    ONE collection of rectangles: the same rectangles ``ax.bar`` draws, but thousands of bar
    patches took a second to render per chart and the collection takes a few milliseconds.
    Returns the :class:`~matplotlib.collections.PolyCollection` (its ``get_paths()``: one
    rectangle per run, in order; :func:`bar_heights` reads them back)."""
    from matplotlib.collections import PolyCollection

    ax.xaxis_date()
    x = mdates.date2num(pd.to_datetime(t).to_numpy())
    h = np.asarray(heights, dtype=float)
    x0, x1, zero = x - width / 2, x + width / 2, np.zeros_like(h)
    verts = np.stack([np.column_stack(p) for p in ((x0, zero), (x0, h), (x1, h), (x1, zero))], axis=1)
    bars = PolyCollection(verts, facecolors=color, edgecolors="none", linewidths=0, label=label)
    ax.add_collection(bars, autolim=False)
    ax.update_datalim(np.column_stack([np.concatenate([x0, x1]),
                                       np.concatenate([np.minimum(h, 0), np.maximum(h, 0)])]))
    ax.autoscale_view()
    return bars


def bar_heights(bars) -> list[float]:
    """The height of each bar of a :func:`_many_bars` collection (negative: drawn downwards)."""
    return [float(p.vertices[1, 1] - p.vertices[0, 1]) for p in bars.get_paths()]


def _bar_width(t: pd.Series) -> float:
    """A bar width in days: 80% of the smallest gap between runs (matplotlib dates are days), but
    at least 1/200 of the time span, so a bar is never a 1-pixel line on a long timeline."""
    if len(t) < 2:
        return 1 / 96
    num = np.sort(mdates.date2num(t.to_numpy()))
    gaps = np.diff(num)
    gaps = gaps[gaps > 0]
    width = float(gaps.min() * 0.8) if len(gaps) else 1 / 96
    return max(width, float(num[-1] - num[0]) / 200)


def staleness_chart(timeline: pd.DataFrame, *, title: str = "Audience errors after each run") -> Figure:
    """Profiles still ``true`` that left the cohort (``stale_true``) and matched members not yet
    ``true`` (``not_yet_true``), per run; paused windows shaded."""
    _require(timeline, ["run_at", "stale_true", "not_yet_true"], "staleness_chart")
    fig, (ax,) = _figure()
    ax.set_title(title)
    ax.set_xlabel("sync run (UTC)")
    ax.set_ylabel("profiles")
    if timeline.empty:
        _empty(ax)
        return fig
    t = pd.to_datetime(timeline["run_at"])
    _shade_pauses(ax, timeline)
    ax.step(t, timeline["stale_true"], where="post", color=ORANGE, lw=1.8, label="stale true (left the cohort, still true)")
    ax.step(t, timeline["not_yet_true"], where="post", color=RED, lw=1.8, label="not yet true (should be true)")
    _count_axis(ax.yaxis)
    top = float(max(timeline["stale_true"].max(), timeline["not_yet_true"].max(), 0))
    ax.set_ylim(0, max(top * 1.1, 1.0))
    _date_axis(ax)
    ax.legend(fontsize=8, loc="best")
    return fig


def sync_types_chart(
    timelines: pd.DataFrame, *, title: str = "Audience size: dynamic sync vs one-time export"
) -> Figure:
    """``true_count`` over time per ``sync_type`` (long frame: ``run_at``, ``sync_type``,
    ``true_count``, optional ``members``: the Mixpanel cohort size, drawn once in grey)."""
    _require(timelines, ["run_at", "sync_type", "true_count"], "sync_types_chart")
    fig, (ax,) = _figure()
    ax.set_title(title)
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("users")
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
    _date_axis(ax)
    ax.legend(fontsize=8, loc="best")
    return fig


# --------------------------------------------------------------------------- migration (docs/rules.md#migration)
def migration_match_rate_chart(
    rates: pd.DataFrame,
    *,
    time: str = "date",
    series: str = "plan",
    events: pd.DataFrame | None = None,
    title: str = "Predicted match rate per migration plan",
) -> Figure:
    """Predicted match rate (0..1) over time, one line per plan. ``events`` (optional) has
    ``date`` and ``label`` columns drawn as vertical markers (EIT switch, Rule start...)."""
    _require(rates, [time, series, "match_rate"], "migration_match_rate_chart")
    fig = match_rate_over_time_chart(rates, time=time, series=series, title=title)
    ax = fig.axes[0]
    if events is not None and not events.empty and not rates.empty:
        _require(events, ["date", "label"], "migration_match_rate_chart events")
        lo, hi = ax.get_xlim()
        for i, (d, lab) in enumerate(zip(pd.to_datetime(events["date"]), events["label"])):
            ax.axvline(d, color=GREY, ls="--", lw=1)
            # a label right of its line in the left half of the axes, left of it in the right half:
            # it stays inside the axes and does not run across a later marker
            right_half = mdates.date2num(d) > (lo + hi) / 2
            ax.text(d, 102 - 7 * (i % 3), f"{lab} " if right_half else f" {lab}", fontsize=8, color="#555555",
                    va="top", ha="right" if right_half else "left")
        ax.set_xlim(lo, hi)
    return fig


def migration_chart(daily: pd.DataFrame, plans=None, **kw) -> Figure:
    """The what-if's match rate per plan and day (``PlanRun.daily``), with the plans' dated
    changes (switch, Rule start, event rule) marked where they fall inside the window."""
    from cohortlab.migration.plans import plan_events

    events = plan_events(plans) if plans is not None else None
    if events is not None and len(daily):
        days = pd.to_datetime(daily["day"])
        lo, hi = days.min(), days.max() + pd.Timedelta(days=1)
        events = events[(events["date"] >= lo) & (events["date"] <= hi)]
    return migration_match_rate_chart(daily, time="day", series="plan", events=events, **kw)


def predicted_vs_observed_chart(
    comparison: pd.DataFrame,
    *,
    x: str = "date",
    title: str = "Predicted vs observed",
    ylabel: str = "match rate (%)",
    percent: bool = True,
) -> Figure:
    """``predicted`` against ``observed``. Over time (``x`` is a date column): two lines.
    Otherwise (``x`` is a category, e.g. a metric or cohort): paired bars. With ``percent`` the
    values are fractions shown as percent."""
    _require(comparison, [x, "predicted", "observed"], "predicted_vs_observed_chart")
    fig, (ax,) = _figure()
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if comparison.empty:
        ax.set_xlabel(x.replace("_", " "))
        _empty(ax)
        return fig
    scale = 100.0 if percent else 1.0
    pred = comparison["predicted"].astype(float) * scale
    obs = comparison["observed"].astype(float) * scale
    if pd.api.types.is_datetime64_any_dtype(comparison[x]):
        ax.set_xlabel("date (UTC)")
        t = pd.to_datetime(comparison[x])
        ax.plot(t, pred, color=BLUE, ls="--", marker="o", ms=3, label="predicted")
        ax.plot(t, obs, color=ORANGE, marker="s", ms=3, label="observed")
        _date_axis(ax)
    else:
        ax.set_xlabel(x.replace("_", " "))
        pos = np.arange(len(comparison))
        b1 = ax.bar(pos - 0.2, pred, width=0.4, color=BLUE, label="predicted")
        b2 = ax.bar(pos + 0.2, obs, width=0.4, color=ORANGE, label="observed")
        fmt = (lambda v: f"{v:.1f}%") if percent else _fmt
        ax.bar_label(b1, labels=[fmt(v) for v in pred], padding=2, fontsize=8)
        ax.bar_label(b2, labels=[fmt(v) for v in obs], padding=2, fontsize=8)
        ax.set_xticks(pos, [_wrap(str(v), 16) for v in comparison[x]], fontsize=8)
        ax.margins(y=0.15)
    if percent:
        ax.yaxis.set_major_formatter(PercentFormatter(100))
    else:
        _count_axis(ax.yaxis)
    ax.legend(fontsize=8, loc="best")
    return fig
