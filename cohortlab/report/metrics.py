"""The figures of the reports: pure aggregations over simulation results (resolution tables,
waterfalls, sync timelines, migration summaries). Numbers and small frames only: no text for
people (:mod:`.summaries`), no display (:mod:`.notebook`), no database access.

Every function takes the frames of the Python API (``lab.resolution``, ``lab.simulate``...), so a
number in a report is, by construction, the number the API gives.
"""

from __future__ import annotations

from typing import Any, Mapping

import pandas as pd


def match_rates(resolution: pd.DataFrame, by: str = "cohort_name") -> pd.DataFrame:
    """Per ``by``: members, matched, unmatched, orphan_created and match_rate (matched/members)."""
    cols = [by, "members", "matched", "unmatched", "orphan_created", "match_rate"]
    if resolution.empty:
        return pd.DataFrame(columns=cols)
    r = resolution.assign(_key=resolution[by].astype(object).where(resolution[by].notna(), "(none)"))
    g = r.groupby("_key", sort=True)["status"]
    out = pd.DataFrame({
        "members": g.size(),
        "matched": g.apply(lambda s: int((s == "matched").sum())),
        "unmatched": g.apply(lambda s: int((s == "unmatched").sum())),
        "orphan_created": g.apply(lambda s: int((s == "orphan_created").sum())),
    })
    out["match_rate"] = out["matched"] / out["members"]
    out = out.rename_axis(by).reset_index()
    return out[cols].astype({"members": int, "matched": int, "unmatched": int, "orphan_created": int})


def unmatched(resolution: pd.DataFrame) -> pd.DataFrame:
    """Members that do not reach an mParticle profile (``unmatched`` and ``orphan_created``)."""
    return resolution[resolution["status"] != "matched"]


def count_by(frame: pd.DataFrame, column: str, *, name: str = "users") -> pd.DataFrame:
    """Rows per value of ``column`` (nulls kept as None), largest first."""
    if frame.empty:
        return pd.DataFrame({column: pd.Series(dtype=object), name: pd.Series(dtype=int)})
    s = frame[column].astype(object).where(frame[column].notna(), None)
    out = s.value_counts(dropna=False).rename_axis(column).reset_index(name=name)
    out[column] = out[column].astype(object).where(out[column].notna(), None)
    return out.sort_values([name, column], ascending=[False, True], key=lambda c: c if c.name == name else c.astype(str),
                           kind="stable").reset_index(drop=True)


def gaps_by_reason(resolution: pd.DataFrame) -> pd.DataFrame:
    return count_by(unmatched(resolution), "gap_reason")


def gaps_by_recoverable(resolution: pd.DataFrame) -> pd.DataFrame:
    return count_by(unmatched(resolution), "recoverable_via")


def activity(resolution: pd.DataFrame, by: str = "gap_reason") -> pd.DataFrame:
    """Unmatched members per ``by`` and ``active_after_cutoff`` (True/False)."""
    u = unmatched(resolution)
    if u.empty:
        return pd.DataFrame(columns=[by, "active_after_cutoff", "users"])
    u = u.assign(active_after_cutoff=u["active_after_cutoff"].fillna(False).astype(bool),
                 _k=u[by].astype(object).where(u[by].notna(), "(none)"))
    out = u.groupby(["_k", "active_after_cutoff"]).size().rename("users").reset_index().rename(columns={"_k": by})
    return out


def shared_mpids(resolution: pd.DataFrame, *, with_ids: bool = False) -> pd.DataFrame:
    """MPIDs that several matched members (Mixpanel profiles) of one cohort resolve to:
    ``cohort_name, mpid, profiles`` (largest first); ``with_ids`` adds the ``distinct_ids``
    (personal data when they are emails: only with show_personal_data)."""
    m = resolution[resolution["status"] == "matched"]
    cols = ["cohort_name", "mpid", "profiles"] + (["distinct_ids"] if with_ids else [])
    if m.empty:
        return pd.DataFrame(columns=cols)
    g = m.groupby(["cohort_name", "mpid"]).agg(
        profiles=("distinct_id", "size"),
        distinct_ids=("distinct_id", lambda s: ", ".join(sorted(map(str, s)))),
    ).reset_index()
    g = g[g["profiles"] > 1]
    g = g.sort_values(["profiles", "cohort_name", "mpid"], ascending=[False, True, True]).reset_index(drop=True)
    return g[cols]


def shared_mpid_distribution(shared: pd.DataFrame) -> pd.DataFrame:
    """``profiles_per_mpid, mpids`` from :func:`shared_mpids`."""
    if shared.empty:
        return pd.DataFrame(columns=["profiles_per_mpid", "mpids"])
    return shared.groupby("profiles").size().rename("mpids").rename_axis("profiles_per_mpid").reset_index()


def junk_values(resolution: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The most frequent malformed ``$mparticle_user_id`` values (``identifier, users``)."""
    j = resolution[resolution["gap_reason"] == "malformed_mparticle_user_id"]
    out = count_by(j, "identifier")
    out["identifier"] = out["identifier"].map(lambda v: "(empty string)" if v == "" else v)
    return out.head(n)


def precision_loss(resolution: pd.DataFrame) -> pd.DataFrame:
    """Members whose identifier is a float-rounded MPID (``cohort_name, distinct_id,
    identifier_source, identifier``)."""
    p = resolution[resolution["gap_reason"] == "mpid_precision_loss"]
    return p[["cohort_name", "distinct_id", "identifier_source", "identifier"]].reset_index(drop=True)


REMEDIES = {
    "mparticle_rule": "mParticle Rule: copy the MPID into $mparticle_user_id",
    "sdk_code": "SDK code: set $mparticle_user_id in the app",
    "switch_eit": "Switch External Identity Type to mParticle ID",
}


def remedies(resolution: pd.DataFrame) -> pd.DataFrame:
    """What each remedy would recover, in users (``remedy, key, users, note``).

    A remedy only changes what Mixpanel holds for users who send data after it starts, and only
    helps members who ARE in mParticle (``recoverable_via`` set). Activity after the
    ``event_identity_cutoff`` stands in for "will send data again".

    * Rule / SDK code write ``$mparticle_user_id`` = the MPID on the member's own Mixpanel
      profile: they recover unmatched members in mParticle and still active (the SDK count is an
      upper bound: only users on an updated app).
    * Switching the EIT to ``mparticle_id`` re-keys new events to the MPID: the same active users
      reach mParticle, but through a second Mixpanel profile (distinct_id = MPID, matched by the
      fallback); their old profile stays in the cohort unmatched (a split profile, counted twice).
    * Members in mParticle but inactive since the cutoff cannot be fixed retroactively.
    """
    u = unmatched(resolution)
    in_mp = u["recoverable_via"].notna()
    active = u["active_after_cutoff"].fillna(False).astype(bool)
    fixable = int((in_mp & active).sum())
    rows = [
        ("mparticle_rule", REMEDIES["mparticle_rule"], fixable,
         "unmatched, in mParticle, active since the cutoff"),
        ("sdk_code", REMEDIES["sdk_code"], fixable,
         "same users, once they run the updated app (upper bound)"),
        ("switch_eit", REMEDIES["switch_eit"], fixable,
         f"through a new profile: {fixable:,} split profiles, the old ones stay unmatched in the cohort"),
    ]
    out = pd.DataFrame(rows, columns=["key", "remedy", "users", "note"])
    out.attrs["never_fixable"] = int((in_mp & ~active).sum())
    out.attrs["not_in_mparticle"] = int((~in_mp).sum())
    return out[["remedy", "key", "users", "note"]]


def waterfall_dict(waterfall: pd.DataFrame) -> dict[str, int]:
    """``{step: count}`` in order (``step`` is the waterfall's key: members,
    unmatched:<gap_reason>, shared_mpid, should_be_true, not_yet_true, stale_true, orphans_true,
    audience)."""
    return {str(k): int(c) for k, c in zip(waterfall["step"], waterfall["count"])}


def audience_size(waterfall: pd.DataFrame) -> int:
    """|T|: the last total of the waterfall (profiles with the attribute true)."""
    totals = waterfall[waterfall["kind"] == "total"]
    return int(totals["count"].iloc[-1]) if len(totals) else 0


def timeline_summary(timeline: pd.DataFrame) -> dict[str, Any]:
    """Runs, failed runs, full refreshes, adds/removes sent and the final state of a timeline."""
    if timeline.empty:
        return {"runs": 0}
    last = timeline.iloc[-1]
    return {
        "runs": int(len(timeline)),
        "failed_runs": int(timeline["failed"].fillna(False).astype(bool).sum()),
        "full_refreshes": int(timeline["full_refresh"].fillna(False).astype(bool).sum()),
        "adds_sent": int(timeline["adds"].sum()),
        "removes_sent": int(timeline["removes"].sum()),
        "members": int(last["members"]),
        "true_count": int(last["true_count"]),
        "not_yet_true": int(last["not_yet_true"]),
        "stale_true": int(last["stale_true"]),
        "max_stale_true": int(timeline["stale_true"].max()),
        "first_run": str(pd.Timestamp(timeline["run_at"].iloc[0])),
        "last_run": str(pd.Timestamp(last["run_at"])),
    }


def paused_windows(timeline: pd.DataFrame) -> pd.DataFrame:
    """Contiguous windows of failed runs: ``start, end, failed_runs``."""
    from cohortlab.charts import failed_windows

    if timeline.empty:
        return pd.DataFrame(columns=["start", "end", "failed_runs"])
    wins = failed_windows(timeline["run_at"], timeline["failed"])
    t = pd.to_datetime(timeline["run_at"])
    f = timeline["failed"].fillna(False).astype(bool)
    rows = [(a, b, int(((t >= a) & (t <= b) & f).sum())) for a, b in wins]
    return pd.DataFrame(rows, columns=["start", "end", "failed_runs"])


def window(timeline: pd.DataFrame, since=None) -> pd.DataFrame:
    """Runs at or after ``since`` (ISO text or datetime; None keeps all)."""
    if since is None or timeline.empty:
        return timeline
    from cohortlab.times import naive_utc, parse_time

    t0 = pd.Timestamp(naive_utc(parse_time(since)))
    return timeline[pd.to_datetime(timeline["run_at"]) >= t0].reset_index(drop=True)


def sync_types(dynamic: pd.DataFrame, one_time: pd.DataFrame) -> pd.DataFrame:
    """Long frame ``run_at, sync_type, true_count, members`` for :func:`charts.sync_types_chart`.
    A one-time export is held flat until the end of the dynamic timeline."""
    cols = ["run_at", "true_count", "members"]
    d = dynamic[cols].assign(sync_type="dynamic")
    o = one_time[cols].assign(sync_type="one_time")
    if len(o) and len(d) and pd.Timestamp(d["run_at"].max()) > pd.Timestamp(o["run_at"].max()):
        last = o.iloc[[-1]].assign(run_at=d["run_at"].max())
        o = pd.concat([o, last], ignore_index=True)
    return pd.concat([d, o], ignore_index=True)[["run_at", "sync_type", "true_count", "members"]]


def match_rates_headline(rates: pd.DataFrame, waterfalls: Mapping[str, pd.DataFrame]) -> dict[str, Any]:
    members, matched = int(rates["members"].sum()), int(rates["matched"].sum())
    return {
        "cohorts": int(len(rates)),
        "Mixpanel members": members,
        "matched to mParticle": matched,
        "match rate": matched / members if members else None,
        "mParticle audience (attribute = true)": sum(audience_size(w) for w in waterfalls.values()),
    }


def match_rates_metrics(rates: pd.DataFrame, rates_by_source: pd.DataFrame, sims: Mapping[str, Any],
                        over_time: pd.DataFrame | None = None) -> dict[str, Any]:
    cohorts = {}
    for _, r in rates.iterrows():
        sim = sims[r["cohort_name"]]
        cohorts[r["cohort_name"]] = {
            "members": int(r["members"]), "matched": int(r["matched"]), "unmatched": int(r["unmatched"]),
            "orphan_created": int(r["orphan_created"]), "match_rate": float(r["match_rate"]),
            "audience": audience_size(sim.waterfall), "waterfall": waterfall_dict(sim.waterfall),
        }
    return {
        "cohorts": cohorts,
        "by_identifier_source": {
            str(r["identifier_source"]): {"members": int(r["members"]), "matched": int(r["matched"]),
                                          "match_rate": float(r["match_rate"])}
            for _, r in rates_by_source.iterrows()
        },
        "over_time": over_time if over_time is not None else [],
    }


def _counts(df: pd.DataFrame, column: str) -> dict[str, int]:
    return {("null" if k is None else str(k)): int(v) for k, v in zip(df[column], df["users"])}


def identity_gaps_headline(resolution: pd.DataFrame, rem: pd.DataFrame) -> dict[str, Any]:
    u = unmatched(resolution)
    reasons = gaps_by_reason(resolution)
    return {
        "unmatched members": int(len(u)),
        "share of members": len(u) / len(resolution) if len(resolution) else None,
        "in mParticle under another identity": int(u["recoverable_via"].notna().sum()),
        "main gap reason": reasons.iloc[0]["gap_reason"] if len(reasons) else None,
        "recoverable by a Rule": int(rem.loc[rem["key"] == "mparticle_rule", "users"].iloc[0]),
        "never fixable": int(rem.attrs.get("never_fixable", 0)),
    }


def identity_gaps_metrics(resolution: pd.DataFrame, rem: pd.DataFrame, shared: pd.DataFrame) -> dict[str, Any]:
    u = unmatched(resolution)
    act = u["active_after_cutoff"].fillna(False).astype(bool)
    per_cohort = {}
    for c, g in resolution.groupby("cohort_name", sort=True):
        gu = unmatched(g)
        per_cohort[str(c)] = {
            "members": int(len(g)), "unmatched": int(len(gu)),
            "by_gap_reason": _counts(count_by(gu, "gap_reason"), "gap_reason"),
        }
    return {
        "members": int(len(resolution)),
        "unmatched": int(len(u)),
        "by_gap_reason": _counts(gaps_by_reason(resolution), "gap_reason"),
        "by_recoverable_via": _counts(gaps_by_recoverable(resolution), "recoverable_via"),
        "active_after_cutoff": int(act.sum()),
        "inactive_since_cutoff": int((~act).sum()),
        "precision_loss": int((resolution["gap_reason"] == "mpid_precision_loss").sum()),
        "malformed_mparticle_user_id": int((resolution["gap_reason"] == "malformed_mparticle_user_id").sum()),
        "shared_mpids": int(len(shared)),
        "profiles_on_shared_mpids": int(shared["profiles"].sum()) if len(shared) else 0,
        "remedies": {k: int(v) for k, v in zip(rem["key"], rem["users"])},
        "never_fixable": int(rem.attrs.get("never_fixable", 0)),
        "not_in_mparticle": int(rem.attrs.get("not_in_mparticle", 0)),
        "cohorts": per_cohort,
    }


def sync_headline(stats: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    s = [v for v in stats.values() if v.get("runs")]
    return {
        "cohorts": len(stats),
        "sync runs": sum(v["runs"] for v in s),
        "failed runs": sum(v["failed_runs"] for v in s),
        "Mixpanel members (last run)": sum(v["members"] for v in s),
        "attribute = true (last run)": sum(v["true_count"] for v in s),
        "stale true (last run)": sum(v["stale_true"] for v in s),
        "not yet true (last run)": sum(v["not_yet_true"] for v in s),
    }


def split_share(daily: pd.DataFrame) -> pd.DataFrame:
    """``day, plan, match_rate`` where match_rate is the share of split profiles (for the
    over-time chart)."""
    d = daily[["day", "plan"]].copy()
    d["match_rate"] = (daily["split_profiles"] / daily["members"].where(daily["members"] > 0)).astype(float)
    return d


def plan_table(summary: pd.DataFrame) -> pd.DataFrame:
    cols = ["plan", "first_change", "members_end", "matched_end", "final_match_rate", "days_to_90pct",
            "days_to_99pct"]
    return summary[[c for c in cols if c in summary.columns]]


def fixability_table(summary: pd.DataFrame) -> pd.DataFrame:
    cols = ["plan", "split_profiles_end", "stranded_profiles", "never_fixable_users", "unmatched_users",
            "not_in_mparticle_profiles", "deleted_mparticle_profiles", "unfixed_profiles"]
    return summary[[c for c in cols if c in summary.columns]]


def _best_plan(summary: pd.DataFrame) -> pd.Series:
    """Highest final match rate; on a tie, fewer split profiles."""
    return summary.sort_values(["final_match_rate", "split_profiles_end"], ascending=[False, True],
                               kind="stable").iloc[0]


def migration_headline(summary: pd.DataFrame, validation: MigrationValidation | None = None) -> dict[str, Any]:
    if summary.empty:
        return {"plans": 0}
    best = _best_plan(summary)
    out = {
        "plans": int(len(summary)),
        "best plan": best["plan"],
        "best final match rate": float(best["final_match_rate"]),
        "split profiles (best plan)": int(best["split_profiles_end"]),
        "never fixable users (best plan)": int(best["never_fixable_users"]),
    }
    if validation is not None and len(validation.comparison):
        out["observed match rate"] = float(validation.comparison["observed"].mean())
        out["predicted match rate"] = float(validation.comparison["predicted"].mean())
    return out
