"""Shared pieces of every chart: sizes and colours, the figure and axis helpers (count axes,
date axes, horizontal bars, many bars as one collection), label wrapping; and the one
matplotlib setting the charts need (mathtext off: labels are data, docs/reports.md#escaping)."""

from __future__ import annotations

import io
from typing import Iterable, Sequence

# Figures are built with ``Figure()`` directly (no pyplot), so no backend is selected or needed.
import matplotlib
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

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


class ChartFigure(Figure):
    """A chart's :class:`~matplotlib.figure.Figure`, which a notebook shows as its picture when it is
    a cell's last value or given to ``display(fig)``. The charts make their figures without pyplot,
    so no inline backend is behind them, and a plain Figure showed as the text
    ``<Figure size 900x450 with 1 Axes>``. With pyplot's inline backend active its own PNG is shown
    (once: IPython's formatter for Figure comes first)."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=self.dpi)
        return buf.getvalue()

    def draw(self, renderer) -> None:
        """Drawn without matplotlib's warning for a character of a label (a name from the data)
        that the font lacks: a control character (no font has one; the warning quoted it raw on
        stderr, where an escape sequence reaches the terminal), an emoji or
        a script the font lacks. The character is drawn as an empty box; the warning named
        cohortlab's installed file and showed in a report as a red error block beside the chart
        (a cohort named with an emoji), while the name itself is shown as text beside it."""
        import warnings

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_MISSING_GLYPH, category=UserWarning)
            super().draw(renderer)


# matplotlib's "Glyph 27 (\x1b) missing from font(s) DejaVu Sans."
_MISSING_GLYPH = r"Glyph [0-9]+ \(.*\) missing from font"


TITLE_CHARS = 90  # a title longer than this wraps: at 9 inches wide it would not fit on one line


def _figure(title: str, *, xlabel: str | None = None, ylabel: str | None = None,
            figsize: tuple[float, float] = FIGSIZE) -> tuple[Figure, Axes]:
    """A chart's figure and its one axes, titled and labelled (every chart has one axes). The
    title is the figure's (``suptitle``), centred on the whole figure and wrapped when long: an
    axes title is centred over the axes, which long tick labels push to the right, and ran past
    the figure's edge, cut off in the PNG."""
    import textwrap

    fig = ChartFigure(figsize=figsize, dpi=DPI, layout="constrained")
    ax = fig.subplots()
    fig.suptitle(textwrap.fill(title, TITLE_CHARS), fontsize="large")
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    return fig, ax


def _require(df: pd.DataFrame, columns: Iterable[str], chart: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{chart}: missing column(s) {', '.join(missing)}; got {list(df.columns)}")


def _empty(ax, message: str = "no data") -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color=GREY, fontsize=12)
    ax.set_xticks([])
    ax.set_yticks([])


def _count_axis(axis) -> None:
    """A count axis: integer ticks only (never 25, 26, 26, 26, 27), with thousands separators.
    Called after the data is drawn: a flat series (a cohort that never had a member: every count
    0) spans less than one unit, where integer ticks cannot be found and the axis read
    ``0, 0, 0, -0, -0``; it gets the whole numbers around its value (never below 0 for a series
    at or above 0)."""
    axis.set_major_locator(MaxNLocator(integer=True, nbins=6, min_n_ticks=2))
    axis.set_major_formatter(_THOUSANDS)
    ax = axis.axes
    get, put = (ax.get_ylim, ax.set_ylim) if axis is ax.yaxis else (ax.get_xlim, ax.set_xlim)
    lo, hi = get()
    if abs(hi - lo) < 2:
        flipped = lo > hi  # an inverted axis stays inverted
        lo, hi = min(lo, hi), max(lo, hi)
        mid = round((lo + hi) / 2)
        new = (mid - 1 if mid >= 1 else min(lo, 0), max(hi, mid + 1))
        put(*(new[::-1] if flipped else new))


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
    data["_label"] = [name_label(v) for v in (data[category] if labels is None else labels)]
    if not isinstance(color, str):  # one colour per row of ``df``: kept with its row
        data["_color"] = list(color)
    # barh draws the first row at the bottom: the rows are reversed so that the chart reads top-down
    # in its table's order (``sort``: largest first, ties in the table's order)
    if sort:
        data = data.sort_values(value, ascending=False, kind="stable")
    data = data.iloc[::-1]
    if "_color" in data.columns:
        color = list(data["_color"])
    height = max(2.5, 0.45 * len(data) + 1.4)
    fig, ax = _figure(title, xlabel=xlabel, ylabel=ylabel, figsize=(FIGSIZE[0], min(height, 12)))
    if data.empty:
        _empty(ax)
        return fig
    pos = np.arange(len(data))  # by position: two names cut to the same label stay two bars
    bars = ax.barh(pos, data[value].astype(float), color=color)
    ax.set_yticks(pos, list(data["_label"]))
    ax.bar_label(bars, labels=[_fmt(v) for v in data[value]], padding=3)
    _count_axis(ax.xaxis)
    ax.margins(x=0.15)
    return fig


LABEL_CHARS, LABEL_LINES = 32, 3  # a name as a tick or legend label: at most 3 lines of 32 characters


def name_label(text: object, width: int = LABEL_CHARS, lines: int = LABEL_LINES) -> str:
    """A name from the data (a cohort, a remedy) as a chart's tick or legend label: wrapped at
    spaces to ``width`` characters (a longer word is broken, a pseudonym never), at most ``lines`` lines, the rest
    cut with "…"; the table beside the chart has the whole name. A 130-character cohort name was
    one tick label wider than the figure: the bars' axes collapsed to nothing (matplotlib's
    "constrained_layout not applied" warning, printed on the page), the labels ran off its left
    edge, and in a legend it pushed the axes to half the figure."""
    import textwrap

    from cohortlab.privacy import PSEUDONYM_RE

    # a pseudonym (anon- and 12 hex digits, 17 characters) is never cut: "anon-8f5a033e906 / f"
    width = max([width] + [len(m.group(0)) for m in PSEUDONYM_RE.finditer(str(text))])
    parts = textwrap.wrap(str(text), width, break_long_words=True, break_on_hyphens=False) or [""]
    if len(parts) > lines:
        parts = parts[:lines]
        parts[-1] = parts[-1][:width - 1].rstrip() + "…"
    return "\n".join(parts)


def _wrap(text: str, width: int) -> str:
    words, lines, line = text.split(), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    lines.append(line)
    return "\n".join(lines)


def _date_axis(ax) -> None:
    """Dates that say their month and day at every tick (``Feb 23``), with the hour when the axis
    spans less than three days and the year when it spans more than 300; ticks never repeat a
    label. A chart of one instant (a cohort's one run) spans the day before and the day after it:
    matplotlib widened it to years, whose ticks all read ``Jan 01``."""
    data_lo, data_hi = ax.dataLim.intervalx
    if np.isfinite(data_lo) and data_lo == data_hi:
        ax.set_xlim(data_lo - 1, data_hi + 1)
    lo, hi = ax.get_xlim()
    short = (hi - lo) < 3
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    if not short:
        locator = mdates.DayLocator(interval=max(1, int(np.ceil((hi - lo) / 8)))) if (hi - lo) <= 62 else \
            mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.DateFormatter(
        "%b %d %H:%M" if short else "%b %d %Y" if (hi - lo) > 300 else "%b %d"))


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
