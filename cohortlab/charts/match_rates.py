"""Charts of the match-rates notebook: the discrepancy waterfall (docs/rules.md#waterfall), match
rate per group and over time, and the observed vs simulated mParticle audience
(docs/rules.md#observed-state)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import PercentFormatter
from matplotlib.transforms import offset_copy

from cohortlab.glossary import cause_words, step_words
from cohortlab.report import metrics
from cohortlab.charts.base import (
    BLUE, DPI, ChartFigure, FIGSIZE, GREEN, GREY, ORANGE, RED,
    _count_axis, _date_axis, _empty, _figure, _fmt, _require, _wrap, name_label,
)


# --------------------------------------------------------------------------- docs/rules.md#waterfall
TICK_PT = 4.0  # the thickness, in points, of the tick that marks a step too small to see


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
    fig, ax = _figure(title, xlabel="step", ylabel="users (Mixpanel members / mParticle profiles)", figsize=(10.0, 5.0))
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
    # a step too small to see as a bar (a few users out of thousands) gets a thick tick on the
    # side of the running level it moves to: under it for a loss, over it for an addition, so
    # the tick never pokes past the total it is taken from
    top = max(heights) if heights else 0
    for xi, b, h, c, kind in zip(x, bottoms, heights, colors, waterfall["kind"]):
        if kind != "total" and 0 < h < 0.015 * top:
            level_before = b + h if kind == "minus" else b
            shift = -TICK_PT / 2 if kind == "minus" else TICK_PT / 2
            ax.hlines(level_before, xi - 0.35, xi + 0.35, color=c, lw=TICK_PT,
                      transform=offset_copy(ax.transData, fig=fig, y=shift, units="points"))
    # connectors between consecutive bars at the running level
    running = [b + h if k != "minus" else b for b, h, k in zip(bottoms, heights, waterfall["kind"])]
    for i in range(len(x) - 1):
        ax.plot([x[i] + 0.35, x[i + 1] - 0.35], [running[i]] * 2, color=GREY, lw=0.8, ls=":")
    names = (
        # a one-time export's profiles not true are missing, not pending (its label says so)
        ["missing (one-time export)" if s == "not_yet_true" and str(lab).startswith("missing") else step_words(s)
         for s, lab in zip(waterfall["step"], waterfall["label"])]
        if "step" in waterfall.columns and waterfall["step"].map(lambda v: isinstance(v, str)).all()
        else [str(s) for s in waterfall["label"]]
    )
    ax.set_xticks(x, [_wrap(n, 13) for n in names], fontsize=8)
    _count_axis(ax.yaxis)
    ax.margins(y=0.12)
    _count_axis(ax.yaxis)
    # the kinds of bar the chart draws (a step of 0 draws none): no "added" beside losses only
    drawn = {k for k, c in zip(waterfall["kind"], heights) if c > 0 or k == "total"}
    handles = [Patch(color=colour, label=label) for kind, colour, label in
               (("total", BLUE, "total"), ("minus", RED, "lost"), ("plus", GREEN, "added")) if kind in drawn]
    fig.legend(  # outside the axes: never over a bar or its value
        handles=handles,
        loc="outside lower center",
        ncol=max(len(handles), 1),
        fontsize=8,
    )
    return fig




# --------------------------------------------------------------------------- match rates
def match_rate_chart(
    rates: pd.DataFrame, *, by: str = "cohort_name", title: str | None = None
) -> Figure:
    """Match rate per group (``by``: ``cohort_name`` or ``identifier_source``).

    ``rates`` has columns ``by``, ``members``, ``matched`` and ``match_rate`` (0..1). Bars are the
    match rate in percent; each is annotated with ``matched / members`` (a group without members,
    whose rate is missing, with "no members").
    """
    _require(rates, [by, "members", "matched", "match_rate"], "match_rate_chart")
    title = title or f"Match rate by {by.replace('_', ' ')}"
    data = rates.copy()
    data[by] = data[by].astype(object).where(data[by].notna(), "(none)").astype(str)
    height = max(2.5, 0.5 * len(data) + 1.4)
    fig, ax = _figure(title, xlabel="members matched to an mParticle profile (%)", ylabel=by.replace("_", " "),
                      figsize=(FIGSIZE[0], min(height, 12)))
    if data.empty:
        _empty(ax)
        return fig
    from cohortlab.glossary import pct  # never 100.0% with one member unmatched

    rate = pd.to_numeric(data["match_rate"], errors="coerce")  # no rate without members (NaN)
    pos = np.arange(len(data))  # by position: two names cut to the same label stay two bars
    bars = ax.barh(pos, rate.fillna(0) * 100, color=BLUE)
    ax.set_yticks(pos, [name_label(v) for v in data[by]])
    labels = ["no members" if pd.isna(r) else f"{pct(float(r))}  ({_fmt(m)} / {_fmt(n)})"
              for r, m, n in zip(rate, data["matched"], data["members"])]
    # a long bar carries its label inside (white), a short one after its end: a label after a bar
    # near 100% ran over the frame, however wide the axes
    inside = [bool(r >= 0.6) for r in rate.fillna(0)]
    for bar, text, within in zip(bars, labels, inside):
        if within:
            ax.annotate(text, (bar.get_width(), bar.get_y() + bar.get_height() / 2), xytext=(-4, 0),
                        textcoords="offset points", ha="right", va="center", fontsize=9, color="white")
    ax.bar_label(bars, labels=["" if i else t for t, i in zip(labels, inside)], padding=3, fontsize=9)
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
    order: list | None = None,
) -> Figure:
    """One line per ``series`` (cohort, plan...) of ``match_rate`` (0..1, or any share: name it
    with ``ylabel``) against ``time``, in ``order`` (default: by name). A series whose line is the
    same as one drawn before says so in the legend ("(= switch only)"): drawn over it, it hid it."""
    _require(rates, [time, series, "match_rate"], "match_rate_over_time_chart")
    fig, ax = _figure(title, xlabel="date (UTC)", ylabel=ylabel)
    if rates.empty:
        _empty(ax)
        return fig
    if pd.to_numeric(rates["match_rate"], errors="coerce").isna().all():
        # no series has a rate (cohorts that never had a member): nothing to place on a date axis,
        # which then read "Dec 31 23:00 ... Jan 01 01:00" (1970, matplotlib's default range)
        _empty(ax, "no rate at any time: nobody to match")
        return fig
    styles = ["-", "--", ":", "-."]  # overlapping series stay distinguishable
    groups = dict(tuple(rates.sort_values(time).groupby(series, sort=True)))
    names = [n for n in (order or []) if n in groups] + [n for n in groups if n not in (order or [])]
    drawn: list[tuple[Any, pd.Series]] = []
    for i, name in enumerate(names):
        g = groups[name]
        rate = g["match_rate"].astype(float)
        if rate.isna().all():  # e.g. a cohort that never has a member: said in the legend, no line
            ax.plot([], [], ls="none", label=name_label(f"{name}: no rate (nobody to match)", 48, 2))
            continue
        line = pd.Series(rate.to_numpy(), index=pd.to_datetime(g[time]).to_numpy())
        same = next((n for n, other in drawn if other.equals(line)), None)
        drawn.append((name, line))
        label = f"{name} (= {same})" if same is not None else str(name)
        ax.plot(pd.to_datetime(g[time]), rate * 100, marker="o" if len(g) < 30 else None,
                ms=3, lw=1.8, ls=styles[i % len(styles)], label=name_label(label, 48, 2))
    ax.set_ylim(0, 105)
    ax.yaxis.set_major_formatter(PercentFormatter(100))
    _date_axis(ax)
    ax.legend(fontsize=8, loc="best")
    return fig


# --------------------------------------------------------------------------- docs/rules.md#observed-state
def observed_vs_simulated_chart(
    audiences,
    causes: pd.DataFrame | None = None,
    *,
    title: str = "mParticle audience: observed vs simulated",
) -> Figure:
    """Left: per cohort, the profiles with the attribute true in the mParticle snapshot
    (``observed``) and in the simulation (``simulated``), paired bars (``audiences``:
    ``cohort_name, observed, simulated``). Right: the profiles that disagree, by cause
    (``causes``: ``cause, profiles``, in rule order). Or the results as they are, without
    ``causes``: one ``lab.verify(...)`` or several (a list, or ``{cohort: result}``), counted as
    the report counts them (:func:`cohortlab.report.metrics.verify_figures`)."""
    if not isinstance(audiences, pd.DataFrame):
        audiences, causes = _verify_frames(audiences)
    elif causes is None:
        raise TypeError("observed_vs_simulated_chart: give causes (cause, profiles) with an audiences frame, "
                        "or pass the verify results themselves")
    _require(audiences, ["cohort_name", "observed", "simulated"], "observed_vs_simulated_chart")
    _require(causes, ["cause", "profiles"], "observed_vs_simulated_chart")
    n = max(len(audiences), len(causes), 1)
    fig = ChartFigure(figsize=(FIGSIZE[0] + 1.5, max(2.8, 0.55 * n + 1.8)), dpi=DPI, layout="constrained")
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
        left.set_yticks(pos, [name_label(v, 18) for v in a["cohort_name"]], fontsize=8)
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
        bars = right.barh([_wrap(cause_words(v), 18) for v in c["cause"]], c["profiles"].astype(float), color=RED)
        right.bar_label(bars, labels=[_fmt(v) for v in c["profiles"]], padding=3, fontsize=8)
        right.tick_params(axis="y", labelsize=8)
        _count_axis(right.xaxis)
        right.margins(x=0.18)
    return fig


def _verify_frames(results) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(audiences, causes)`` of one or several verify results, as the report counts them."""
    if hasattr(results, "causes"):  # one VerifyResult
        results = [results]
    if not isinstance(results, Mapping):
        results = {v.cohort: v for v in results}
    figures = metrics.verify_figures(results)
    return metrics.verify_audiences(figures), metrics.verify_causes(figures["totals"])
