"""The findings of the reports in words (Markdown): each function turns the figures of
:mod:`.metrics` into sentences. Settings that shape a finding (the event-identity cutoff) are read
from the settings the simulation used, never assumed."""

from __future__ import annotations

import math
from typing import Any, Mapping

import pandas as pd

from cohortlab.report.metrics import _best_plan, audience_size, count_by, sync_headline, unmatched


def pct(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x * 100:.1f}%"


def match_rates_summary(rates: pd.DataFrame, waterfalls: Mapping[str, pd.DataFrame], gaps: pd.DataFrame) -> str:
    """Markdown: the findings of the match-rates notebook."""
    if rates.empty:
        return "**No cohort members found** at the chosen time: nothing to reconcile."
    members, matched = int(rates["members"].sum()), int(rates["matched"].sum())
    lines = [
        f"**{matched:,} of {members:,} cohort members ({pct(matched / members if members else None)}) reach an "
        f"mParticle profile** across {len(rates)} cohort(s)."
    ]
    for _, r in rates.iterrows():
        w = waterfalls.get(r["cohort_name"])
        aud = audience_size(w) if w is not None else None
        lines.append(
            f"- **{r['cohort_name']}**: {int(r['members']):,} members in Mixpanel, {int(r['matched']):,} matched "
            f"({pct(r['match_rate'])})" + (f"; the mParticle audience holds **{aud:,}** profiles." if aud is not None else ".")
        )
    if not gaps.empty:
        top = gaps.iloc[0]
        lines.append(
            f"\nThe largest loss is **{top['gap_reason']}** ({int(top['users']):,} members, "
            f"{pct(int(top['users']) / members)} of all members)."
        )
    return "\n".join(lines)


def cutoff_text(settings=None) -> str:
    """The event-identity cutoff of ``settings`` in words: "the 2026-01-15 00:00 UTC cutoff", or
    a plain description when the rule is off (``event_identity_cutoff: null``)."""
    from cohortlab.settings import SyncSettings

    cutoff = SyncSettings.coerce(settings).event_identity_cutoff
    if cutoff is None:
        return "the event-identity cutoff (off in these settings)"
    return f"the {pd.Timestamp(cutoff).strftime('%Y-%m-%d %H:%M')} UTC cutoff"


def identity_gaps_summary(resolution: pd.DataFrame, rem: pd.DataFrame, shared: pd.DataFrame,
                          settings=None) -> str:
    u = unmatched(resolution)
    total = len(resolution)
    if u.empty:
        return f"**All {total:,} cohort members reach an mParticle profile.** No identity gaps."
    reasons = count_by(u, "gap_reason")
    in_mp = int(u["recoverable_via"].notna().sum())
    active = int(u["active_after_cutoff"].fillna(False).astype(bool).sum())
    lines = [
        f"**{len(u):,} of {total:,} members ({pct(len(u) / total)}) do not reach an mParticle profile.**",
        f"- Main reason: **{reasons.iloc[0]['gap_reason']}** ({int(reasons.iloc[0]['users']):,} members).",
        f"- **{in_mp:,}** of them ARE in mParticle (found through another identity): only the identifier "
        f"Mixpanel sends is wrong.",
        f"- {active:,} were active on or after {cutoff_text(settings)}; {len(u) - active:,} were not.",
        f"- A Rule or SDK code would recover about **{int(rem.loc[rem['key'] == 'mparticle_rule', 'users'].iloc[0]):,}** "
        f"members; **{rem.attrs.get('never_fixable', 0):,}** are in mParticle but inactive and cannot be fixed "
        f"retroactively.",
    ]
    if not shared.empty:
        lines.append(f"- {len(shared):,} MPIDs are claimed by several Mixpanel profiles (one person, several profiles).")
    return "\n".join(lines)


def sync_overview(stats: Mapping[str, Mapping[str, Any]]) -> str:
    """One sentence over all cohorts (the first line of the sync notebook's summary)."""
    h = sync_headline(stats)
    if not h["sync runs"]:
        return "**No sync runs** in the window."
    return (
        f"**After the last run, {h['Mixpanel members (last run)']:,} Mixpanel members face "
        f"{h['attribute = true (last run)']:,} mParticle profiles with the attribute true** across "
        f"{h['cohorts']} cohort(s): {h['stale true (last run)']:,} stale, {h['not yet true (last run)']:,} "
        f"pending; {h['failed runs']:,} of {h['sync runs']:,} runs failed."
    )


def sync_summary(cohort: str, stats: Mapping[str, Any], one_time: Mapping[str, Any] | None = None) -> str:
    if not stats.get("runs"):
        return f"**{cohort}**: no sync runs in the window."
    s = (
        f"**{cohort}**: {stats['runs']:,} dynamic sync run(s) from {stats['first_run']} to {stats['last_run']} "
        f"({stats['failed_runs']:,} failed, {stats['full_refreshes']:,} full refreshes). After the last run "
        f"Mixpanel has **{stats['members']:,}** members and mParticle **{stats['true_count']:,}** profiles "
        f"with the attribute true: {stats['not_yet_true']:,} not yet true, {stats['stale_true']:,} stale "
        f"(left the cohort, still true; at most {stats['max_stale_true']:,})."
    )
    if one_time and one_time.get("runs"):
        s += (f" A one-time export at the first run would now leave **{one_time['stale_true']:,}** stale and "
              f"**{one_time['not_yet_true']:,}** missing profiles.")
    return s


def migration_summary(summary: pd.DataFrame, validation: MigrationValidation | None = None) -> str:
    if summary.empty:
        return "No migration plans to compare."
    best = _best_plan(summary)
    lines = [f"**Best plan at the end of the window: {best['plan']}**: {pct(best['final_match_rate'])} of all "
             f"Mixpanel profiles predicted to reach an mParticle profile."]
    for _, r in summary.iterrows():
        d90 = r.get("days_to_90pct")
        lines.append(
            f"- **{r['plan']}**: {pct(r['final_match_rate'])} at the end; {int(r['split_profiles_end']):,} split "
            f"profiles; {int(r['never_fixable_users']):,} users can never be fixed"
            + (f"; 90% of its final rate {d90:.0f} days after the change." if d90 is not None and not pd.isna(d90)
               else ".")
        )
    if validation is not None and len(validation.comparison):
        c = validation.comparison
        lines.append(f"\nValidation of **{validation.plan}** against the exports taken after the switch: of the "
                     f"cohort members, {pct(c['predicted'].mean())} predicted to match, {pct(c['observed'].mean())} "
                     f"observed (mean over cohorts).")
    return "\n".join(lines)
