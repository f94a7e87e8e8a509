"""What the notebooks show: small aggregations of the simulation's frames, the plain-language
summaries, personal-data redaction, display helpers and ``metrics.json``.

The notebooks in ``notebooks/`` call these functions and the chart functions of
:mod:`cohortlab.charts`; they hold no logic of their own beyond choosing what to show. Everything
here takes the frames of the Python API (``lab.resolution``, ``lab.simulate``...) so a number in a
report is, by construction, the number the API gives.

Personal data (emails, phone numbers) is never displayed unless ``show_personal_data``:
:func:`redact` drops personal columns and masks identifier values that look like an email or
that are a phone number known to the database.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

PERSONAL_COLUMNS = ("email", "phone", "$email", "$phone", "mobile_number")
ID_COLUMNS = ("distinct_id", "identifier", "value", "distinct_ids")
MASK = "[hidden]"
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+")
_PHONE_RE = re.compile(r"\+[\d\s().-]{6,}")


# --------------------------------------------------------------------------- opening data
def open_lab(db: str | None = None, data: str | None = None, *, read_only: bool = False):
    """A :class:`~cohortlab.lab.Lab` on a database file, or else an in-memory one loaded from a
    folder of exports (:func:`cohortlab.loaders.folder.load_world`). ``db`` wins when both are given."""
    from cohortlab.lab import Lab

    if db:
        if not Path(db).exists():
            raise FileNotFoundError(f"{db}: no such database")
        if os.environ.get("COHORTLAB_ENGINE") == "spark":  # issue 7: `cohortlab report --engine spark`
            from cohortlab.engines.spark.readers import open_spark_lab

            return open_spark_lab(db, master=os.environ.get("COHORTLAB_SPARK_MASTER"))
        return Lab(db, read_only=read_only)
    if data:
        from cohortlab.loaders.folder import load_world

        lab = Lab()
        load_world(lab, data)
        return lab
    raise ValueError("set the parameter db (a DuckDB file) or data (a folder of exports)")


def cohort_names(lab, cohorts: str | Iterable[str] | None = None) -> list[str]:
    """The cohorts to report on: the given name(s), or every cohort with membership data
    (snapshots or webhook payloads), sorted by name."""
    if isinstance(cohorts, str):
        return [cohorts]
    if cohorts is not None:
        return list(cohorts)
    df = lab.sql(
        "SELECT DISTINCT cohort_name FROM mp_cohort_snapshots WHERE cohort_name IS NOT NULL "
        "UNION SELECT DISTINCT cohort_name FROM mp_webhook_pages WHERE cohort_name IS NOT NULL"
    )
    return sorted(df["cohort_name"].tolist())


def snapshot_times(lab, cohort: str, limit: int | None = 12, until=None) -> list[pd.Timestamp]:
    """As-of times of a cohort's membership snapshots (the latest ``limit``, at or before
    ``until`` when given), oldest first."""
    df = lab.sql(
        "SELECT DISTINCT as_of FROM mp_cohort_snapshots WHERE cohort_name = ? ORDER BY as_of", [cohort]
    )
    times = list(pd.to_datetime(df["as_of"]))
    if until is not None:
        from cohortlab.times import naive_utc, parse_time

        t1 = pd.Timestamp(naive_utc(parse_time(until)))
        times = [t for t in times if t <= t1]
    return times[-limit:] if limit else times


def simulate_all(lab, cohorts: Iterable[str], *, at=None, settings=None) -> dict[str, Any]:
    """``lab.simulate`` for each cohort: ``{cohort: SimulationResult}``."""
    return {c: lab.simulate(c, at=at, settings=settings) for c in cohorts}


def all_resolution(sims: Mapping[str, Any]) -> pd.DataFrame:
    """The resolution tables of several simulations, stacked."""
    frames = [s.resolution for s in sims.values() if len(s.resolution)]
    if not frames:
        return pd.DataFrame(columns=["cohort_name", "distinct_id", "identifier_source", "identifier", "mpid",
                                     "status", "gap_reason", "last_seen", "active_after_cutoff",
                                     "recoverable_via", "email", "as_of"])
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------- aggregations
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


def waterfall_table(waterfall: pd.DataFrame) -> pd.DataFrame:
    """The waterfall as a readable table with signed counts."""
    sign = {"total": "=", "minus": "−", "plus": "+"}
    w = waterfall.copy()
    w["change"] = [f"{sign.get(k, '')} {c:,}" for k, c in zip(w["kind"], w["count"])]
    return w[["step", "label", "change"]]


def waterfall_dict(waterfall: pd.DataFrame) -> dict[str, int]:
    """``{step: count}`` in order (``step`` is the waterfall's key: members,
    unmatched:<gap_reason>, shared_mpid, should_be_true, not_yet_true, stale_true, orphans_true,
    audience)."""
    return {str(k): int(c) for k, c in zip(waterfall["step"], waterfall["count"])}


def audience_size(waterfall: pd.DataFrame) -> int:
    """|T|: the last total of the waterfall (profiles with the attribute true)."""
    totals = waterfall[waterfall["kind"] == "total"]
    return int(totals["count"].iloc[-1]) if len(totals) else 0


def match_rate_over_time(lab, cohort: str, *, settings=None, limit: int = 12, until=None) -> pd.DataFrame:
    """Match rate of ``cohort`` at each of its last ``limit`` snapshots up to ``until``
    (``as_of, cohort_name, members, matched, match_rate``); empty with fewer than two snapshots."""
    times = snapshot_times(lab, cohort, limit, until)
    if len(times) < 2:
        return pd.DataFrame(columns=["as_of", "cohort_name", "members", "matched", "match_rate"])
    rows = []
    for t in times:
        r = lab.resolution(cohort, at=t.to_pydatetime(), settings=settings)
        n = len(r)
        m = int((r["status"] == "matched").sum())
        rows.append((t, cohort, n, m, m / n if n else math.nan))
    return pd.DataFrame(rows, columns=["as_of", "cohort_name", "members", "matched", "match_rate"])


def match_rates_over_time(lab, cohorts: Iterable[str], *, settings=None, limit: int = 12, until=None) -> pd.DataFrame:
    """:func:`match_rate_over_time` of several cohorts, stacked (empty frame for none)."""
    frames = [match_rate_over_time(lab, c, settings=settings, limit=limit, until=until) for c in cohorts]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=["as_of", "cohort_name", "members", "matched", "match_rate"])
    return pd.concat(frames, ignore_index=True)


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
    from cohortlab.charts import _failed_windows

    if timeline.empty:
        return pd.DataFrame(columns=["start", "end", "failed_runs"])
    wins = _failed_windows(timeline["run_at"], timeline["failed"])
    t = pd.to_datetime(timeline["run_at"])
    f = timeline["failed"].fillna(False).astype(bool)
    rows = [(a, b, int(((t >= a) & (t <= b) & f).sum())) for a, b in wins]
    return pd.DataFrame(rows, columns=["start", "end", "failed_runs"])


def with_sync_type(settings, sync_type: str):
    """``settings`` (None, a YAML path, a dict or SyncSettings) with ``sync_type`` replaced."""
    from cohortlab.settings import SyncSettings

    return SyncSettings.coerce(settings).replace(sync_type=sync_type)


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


# --------------------------------------------------------------------------- headline / metrics
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


# --------------------------------------------------------------------------- summaries
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


def identity_gaps_summary(resolution: pd.DataFrame, rem: pd.DataFrame, shared: pd.DataFrame) -> str:
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
        f"- {active:,} were active on or after the 2026-01-15 cutoff; {len(u) - active:,} were not.",
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


# --------------------------------------------------------------------------- personal data
def known_personal_values(lab) -> set[str]:
    """Emails and phone numbers present in the database (Mixpanel profiles and webhooks,
    mParticle identities): values that must never be shown when personal data is off."""
    df = lab.sql(
        """
        SELECT email AS v FROM mp_profiles WHERE email IS NOT NULL
        UNION SELECT phone FROM mp_profiles WHERE phone IS NOT NULL
        UNION SELECT email FROM mp_webhook_members WHERE email IS NOT NULL
        UNION SELECT value FROM mpa_identities
              WHERE identity_type IN ('email', 'mobile_number', 'phone_number_2', 'phone_number_3')
                AND value IS NOT NULL
        """
    )
    return {str(v) for v in df["v"]}


def mask_value(v: Any, known: set[str] | frozenset = frozenset()) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return v
    s = str(v)
    if s in known or _EMAIL_RE.search(s) or _PHONE_RE.fullmatch(s.strip()):
        return MASK
    return v


def redact(df: pd.DataFrame, show_personal_data: bool = False, known: set[str] | frozenset = frozenset()) -> pd.DataFrame:
    """A copy safe to display: without personal columns and with email/phone-like identifier
    values masked, unless ``show_personal_data``."""
    if show_personal_data:
        return df
    out = df.drop(columns=[c for c in df.columns if c in PERSONAL_COLUMNS])
    for c in out.columns:
        if c in ID_COLUMNS or out[c].dtype == object:
            out[c] = out[c].map(lambda v: mask_value(v, known))
    return out


# --------------------------------------------------------------------------- display
def _escape_dollars(text: str) -> str:
    """``$`` outside code spans becomes ``\\$``: two dollars in one line (``$mparticle_user_id``
    ... ``$distinct_id``) must not be typeset as TeX by JupyterLab."""
    parts = text.split("`")
    return "`".join(p if i % 2 else re.sub(r"(?<!\\)\$", r"\\$", p) for i, p in enumerate(parts))


def show(fig, caption: str | None = None) -> None:
    """Display a chart as an embedded PNG (works offline and in HTML without code) with a
    one-line explanation under it."""
    from IPython.display import Image, Markdown, display

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    display(Image(data=buf.getvalue(), format="png"))
    if caption:
        display(Markdown(f"*{_escape_dollars(caption)}*"))


def md(text: str) -> None:
    from IPython.display import Markdown, display

    display(Markdown(_escape_dollars(text)))


def table(df: pd.DataFrame, *, show_personal_data: bool = False, known: set[str] | frozenset = frozenset(),
          max_rows: int = 30) -> None:
    """Display a (redacted) DataFrame as an HTML table without the index."""
    from IPython.display import HTML, Markdown, display

    safe = redact(df, show_personal_data, known).head(max_rows)
    display(HTML(safe.to_html(index=False, na_rep="—", float_format=lambda x: f"{x:,.3f}",
                              formatters=_int_formatters(safe))))
    if len(df) > max_rows:
        display(Markdown(f"*… {len(df) - max_rows:,} more rows*"))


def _int_formatters(df: pd.DataFrame) -> dict[str, Any]:
    return {c: (lambda v: f"{v:,}") for c in df.columns if pd.api.types.is_integer_dtype(df[c])
            and c not in ("mpid",)}


# --------------------------------------------------------------------------- metrics.json
def _jsonable(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set)):
        return [_jsonable(x) for x in v]
    if isinstance(v, pd.DataFrame):
        return [_jsonable(r) for r in v.to_dict(orient="records")]
    if isinstance(v, (pd.Timestamp, _dt.datetime, _dt.date)):
        return v.isoformat()
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):  # numpy scalar
        try:
            v = v.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(v, float) and math.isnan(v):
        return None
    if v is pd.NA or v is pd.NaT:
        return None
    return v


def write_metrics(output_dir: str | os.PathLike | None, notebook: str, *, title: str, summary: str = "",
                  headline: Mapping[str, Any] | None = None, parameters: Mapping[str, Any] | None = None,
                  **metrics: Any) -> Path | None:
    """Write ``output_dir/metrics.json``: ``notebook, title, generated_at, summary (plain text),
    headline (the few numbers of the index page), parameters, metrics``. ``output_dir=None``
    (a notebook opened interactively) writes nothing."""
    if output_dir is None:
        return None
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    doc = {
        "notebook": notebook,
        "title": title,
        "generated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "summary": re.sub(r"[*_`]", "", summary.split("\n")[0]) if summary else "",
        "headline": _jsonable(headline or {}),
        "parameters": _jsonable(parameters or {}),
        "metrics": _jsonable(metrics),
    }
    path = Path(output_dir) / "metrics.json"
    path.write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- migration (SPEC §6)
def _event_days(lab) -> tuple[_dt.date | None, _dt.date | None]:
    lo, hi = lab.sql("SELECT min(time) AS lo, max(time) AS hi FROM mp_events").iloc[0]
    if pd.isna(lo):
        return None, None
    return pd.Timestamp(lo).date(), pd.Timestamp(hi).date()


def default_switch(lab, settings=None) -> _dt.datetime:
    """The EIT switch to study when no plan is given: the first dated switch to ``mparticle_id``
    in the settings' ``eit_timeline``, else the middle of the events' time range."""
    from cohortlab.settings import SyncSettings

    st = SyncSettings.coerce(settings)
    for p in st.eit_timeline:
        if p.since is not None and p.eit == "mparticle_id":
            return p.since
    lo, hi = _event_days(lab)
    if lo is None:
        raise ValueError("no Mixpanel events loaded: cannot place a migration")
    mid = lo + (hi - lo) / 2
    return _dt.datetime(mid.year, mid.month, mid.day, tzinfo=_dt.timezone.utc)


def migration_plans(plans=None, *, lab=None, settings=None, switch=None) -> list:
    """Plans from YAML file(s) (a path or a list of paths), or the standard four (switch only,
    switch + Rule, Rule only, do nothing) around ``switch`` (default: :func:`default_switch`)."""
    from cohortlab.migration.plans import load_plans, standard_plans

    if plans is None:
        return standard_plans(switch or default_switch(lab, settings))
    paths = [plans] if isinstance(plans, (str, os.PathLike)) else list(plans)
    out = []
    for p in paths:
        out += load_plans(p)
    return out


def migration_window(lab, start=None, end=None) -> tuple[_dt.date, _dt.date]:
    """(first day, last day) of the prediction: given, or the events' range."""
    lo, hi = _event_days(lab)
    d0 = pd.Timestamp(start).date() if start else lo
    d1 = pd.Timestamp(end).date() if end else hi
    if d0 is None or d1 is None:
        raise ValueError("no Mixpanel events loaded and no start/end given")
    return d0, d1


def run_migration(lab, plans, start, end, *, settings=None, activity: str = "observed"):
    """``(daily, summary)`` of every plan (``lab.compare_plans``)."""
    daily = lab.compare_plans(list(plans), start, end, settings=settings, activity=activity)
    return daily, daily.attrs.get("summary", pd.DataFrame())


def migration_chart(daily: pd.DataFrame, plans):
    from cohortlab.migration import model as migration

    return migration.migration_chart(daily, plans)


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


class MigrationValidation:
    """Predicted vs observed per cohort for one plan (``comparison``: cohort_name, predicted,
    observed; ``summary``: one row per cohort; ``verdict``: text)."""

    def __init__(self, plan: str, results: Mapping[str, Any]):
        self.plan = plan
        self.results = dict(results)
        self.comparison = pd.DataFrame(
            [(c, r.predicted_match_rate, r.observed_match_rate) for c, r in self.results.items()],
            columns=["cohort_name", "predicted", "observed"],
        )
        self.summary = pd.DataFrame(
            [{"cohort_name": c, "as_of": r.at, "members": len(r.users),
              "predicted_match_rate": r.predicted_match_rate, "observed_match_rate": r.observed_match_rate,
              "users_differ": r.differ} for c, r in self.results.items()]
        )
        self.verdict = "\n".join(f"- **{c}**: {r.verdict}" for c, r in self.results.items())


def migration_validation(lab, plans, validate_plan=None, cohorts=(), *, observed_db=None, observed_data=None,
                         settings=None, at=None, activity: str = "observed") -> MigrationValidation | None:
    """Validate one plan against exports taken after the switch (``observed_db`` or
    ``observed_data``); None when neither is given."""
    if not observed_db and not observed_data:
        return None
    plan = next((p for p in plans if p.name == validate_plan), None) if validate_plan else plans[0]
    if plan is None:
        raise ValueError(f"no plan named {validate_plan!r} (plans: {[p.name for p in plans]})")
    current = getattr(lab.engine, "database", None)
    same = observed_db is not None and current not in (None, ":memory:") and (
        Path(str(observed_db)).resolve() == Path(str(current)).resolve())
    obs_lab = lab if same else open_lab(observed_db, observed_data)
    results = {}
    for c in cohort_names(obs_lab, list(cohorts) or None):
        if obs_lab is lab:
            results[c] = lab.validate_migration(plan, c, at=at, settings=settings, activity=activity)
        else:
            from cohortlab.settings import SyncSettings

            sim = obs_lab.simulate(c, at=at, settings=SyncSettings.coerce(settings).replace(resolution_time="as_of"))
            results[c] = lab.validate_migration(plan, c, at=sim.at, settings=settings,
                                                observed=sim.resolution, activity=activity)
    return MigrationValidation(plan.name, results)


def _best_plan(summary: pd.DataFrame) -> pd.Series:
    """Highest final match rate; on a tie, fewer split profiles."""
    return summary.sort_values(["final_match_rate", "split_profiles_end"], ascending=[False, True],
                               kind="stable").iloc[0]


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
