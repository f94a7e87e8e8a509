"""Charts of the identity-gaps notebook: unmatched members by gap reason (docs/rules.md#gap-reasons)
and by the identity that would recover them, their last activity, MPIDs shared by several
Mixpanel profiles, and the members' users each remedy would recover."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from cohortlab.charts.base import (
    BLUE, FIGSIZE, GREEN, GREY, ORANGE,
    _count_axis, _empty, _figure, _fmt, _hbar, _require,
)
from cohortlab.glossary import reason_words
from cohortlab.report import metrics


def _unmatched_by(frame: pd.DataFrame, key: str, chart: str) -> pd.DataFrame:
    """``key, users``: the frame itself when it has them (the report's aggregate), else the unmatched
    members of a result as it is counted by ``key``: a resolution (``Lab.resolution``, one row per
    member) or a gap summary (``Lab.gap_summary``: its ``gap_reason`` rows, ``members`` each)."""
    if "users" in frame.columns or "status" not in frame.columns:
        _require(frame, [key, "users"], chart)
        return frame
    if "breakdown" in frame.columns:  # a gap summary counts every member once per breakdown
        frame = frame[frame["breakdown"] == "gap_reason"].rename(columns={"members": "n"})
    return metrics.count_by(metrics.unmatched(frame), key)


def gaps_by_reason_chart(gaps: pd.DataFrame, *, title: str = "Unmatched members by gap reason") -> Figure:
    """Unmatched members per ``gap_reason`` (columns ``gap_reason``, ``users``; or a result as it is:
    ``lab.resolution(...)``, ``lab.gap_summary(...)``), each reason in words (``$distinct_id not an
    MPID``, :mod:`cohortlab.glossary`), as the waterfall names its steps."""
    gaps = _unmatched_by(gaps, "gap_reason", "gaps_by_reason_chart")
    words = [reason_words(v) for v in gaps["gap_reason"]]
    return _hbar(gaps, "gap_reason", "users", title=title, xlabel="unmatched members", ylabel="gap reason",
                 labels=words)


NONE_FOUND = "(no single profile found)"  # recoverable_via null: the label of the chart and the table


def gaps_by_recoverable_chart(
    gaps: pd.DataFrame, *, title: str = "Unmatched members by the mParticle identity that finds them"
) -> Figure:
    """Unmatched members per ``recoverable_via`` (columns ``recoverable_via``, ``users``; or a result
    as it is: ``lab.resolution(...)``, ``lab.gap_summary(...)``); ``None`` is shown as
    :data:`NONE_FOUND`: no identity of the recovery order finds one profile (none does, or several
    profiles hold it). Such a member may still be in mParticle, e.g. under an MPID equal to its
    distinct_id while a junk ``$mparticle_user_id`` is sent: "not in mParticle" would claim too much."""
    gaps = _unmatched_by(gaps, "recoverable_via", "gaps_by_recoverable_chart")
    data = gaps.copy()
    data["recoverable_via"] = data["recoverable_via"].astype(object).where(
        data["recoverable_via"].notna(), NONE_FOUND
    )
    colors = [GREY if v == NONE_FOUND else ORANGE for v in data["recoverable_via"]]
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
    data[by] = [reason_words(v) for v in data[by].astype(object).where(data[by].notna(), None)]
    data["active_after_cutoff"] = metrics.flags(data["active_after_cutoff"])
    wide = data.pivot_table(index=by, columns="active_after_cutoff", values="users", aggfunc="sum", fill_value=0)
    for col in (True, False):
        if col not in wide.columns:
            wide[col] = 0
    wide = wide.loc[(wide[True] + wide[False]).sort_values(kind="stable").index]
    height = max(2.5, 0.45 * len(wide) + 1.6)
    fig, ax = _figure(title, xlabel="members", ylabel=by.replace("_", " "), figsize=(FIGSIZE[0], min(height, 12)))
    if wide.empty:
        _empty(ax)
        return fig
    before = ax.barh(wide.index, wide[False], color=GREY, label=f"last active before {cutoff_label}")
    after = ax.barh(wide.index, wide[True], left=wide[False], color=BLUE, label=f"active on/after {cutoff_label}")
    # a count sits inside its segment when the segment is wide enough for it; the counts of the
    # narrower ones follow the bar instead (inside, they ran over the axis or the next segment)
    totals = wide[True] + wide[False]
    room = 0.08 * float(totals.max())
    ax.bar_label(before, labels=[_fmt(v) if v >= room else "" for v in wide[False]], label_type="center", fontsize=8)
    ax.bar_label(after, labels=[_fmt(v) if v >= room else "" for v in wide[True]], label_type="center", fontsize=8,
                 color="white")

    def narrow(n, when: str) -> list[str]:
        return [f"{_fmt(n)} {when}"] if 0 < n < room else []

    outside = [", ".join(narrow(b, "before") + narrow(a, "on/after")) for b, a in zip(wide[False], wide[True])]
    ax.bar_label(after, labels=outside, padding=3, fontsize=8)
    if any(outside):
        ax.set_xlim(right=float(totals.max()) * 1.3)
    _count_axis(ax.xaxis)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def shared_mpid_chart(
    shared: pd.DataFrame, *, title: str = "mParticle profiles claimed by several Mixpanel profiles",
    ylabel: str = "MPIDs",
) -> Figure:
    """Distribution of Mixpanel profiles per MPID (columns ``profiles_per_mpid``, ``mpids``);
    ``ylabel`` says how the MPIDs are counted (once per cohort when one is shared in several)."""
    _require(shared, ["profiles_per_mpid", "mpids"], "shared_mpid_chart")
    fig, ax = _figure(title, xlabel="Mixpanel profiles resolving to the same MPID", ylabel=ylabel,
                      figsize=(FIGSIZE[0], 3.5))
    if shared.empty:
        _empty(ax, "no shared MPIDs")
        return fig
    bars = ax.bar(shared["profiles_per_mpid"].astype(str), shared["mpids"].astype(float), color=ORANGE, width=0.6)
    ax.bar_label(bars, labels=[_fmt(v) for v in shared["mpids"]], padding=2)
    _count_axis(ax.yaxis)
    ax.margins(y=0.15)
    ax.set_xlim(-0.5 - max(0, 3 - len(shared)) / 2, len(shared) - 0.5 + max(0, 3 - len(shared)) / 2)  # one bar: not wall to wall
    return fig


def remedies_chart(remedies: pd.DataFrame, *, title: str = "Members' users each remedy would recover (simulated)") -> Figure:
    """Members' users recovered per remedy (columns ``remedy``, ``users``), each from its own
    simulation; or :meth:`cohortlab.Lab.remedies` as it is (its ``recovered``)."""
    if "users" not in remedies.columns and "recovered" in remedies.columns:
        remedies = remedies.rename(columns={"recovered": "users"})
    _require(remedies, ["remedy", "users"], "remedies_chart")  # named by the function, not by its title
    return _hbar(remedies, "remedy", "users", title=title, xlabel="members' users recovered", ylabel="remedy",
                 color=GREEN, sort=False)
