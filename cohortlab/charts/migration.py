"""Charts of the EIT-migration notebook and `cohortlab migrate` (docs/rules.md#migration): the
predicted match rate per plan over time with the plans' dated changes marked, and predicted vs
observed."""

from __future__ import annotations

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from cohortlab.charts.base import (
    BLUE, GREY, ORANGE,
    _count_axis, _date_axis, _empty, _figure, _fmt, _require, name_label,
)
from cohortlab.charts.match_rates import match_rate_over_time_chart


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
    fig = match_rate_over_time_chart(rates, time=time, series=series, title=title,
                                     order=list(dict.fromkeys(rates[series])))  # the plans' order, as the table
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
    fig, ax = _figure(title, ylabel=ylabel)
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
        from cohortlab.glossary import pct  # never 100.0% with one member unmatched

        fmt = (lambda v: pct(v / 100) if v == v else "—") if percent else _fmt
        ax.bar_label(b1, labels=[fmt(v) for v in pred], padding=2, fontsize=8)
        ax.bar_label(b2, labels=[fmt(v) for v in obs], padding=2, fontsize=8)
        ax.set_xticks(pos, [name_label(v, 16) for v in comparison[x]], fontsize=8)  # a cohort's name: cut
        ax.margins(y=0.15)
    if percent:
        ax.yaxis.set_major_formatter(PercentFormatter(100))
    else:
        _count_axis(ax.yaxis)
    ax.legend(fontsize=8, loc="best")
    return fig
