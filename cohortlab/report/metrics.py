"""The figures of the reports: pure aggregations over simulation results (resolution tables,
waterfalls, sync timelines, migration summaries). Numbers and small frames only: no text for
people (:mod:`.summaries`), no display (:mod:`.notebook`), no database access.

Every function takes the frames of the Python API (``lab.resolution``, ``lab.simulate``...), so a
number in a report is, by construction, the number the API gives. A resolution frame may also be
*counted* (:func:`cohortlab.report.insights.resolution_counts`): one row per value of what the
figures group members by, with the number of members in ``n``, so that a report on millions of
members never holds them in Python; every function here gives the same figures from both.
"""

from __future__ import annotations

from typing import Any, Mapping

import pandas as pd

from cohortlab.glossary import reason_words


def weights(frame: pd.DataFrame) -> pd.Series:
    """How many members each row of a resolution frame stands for: its ``n`` in a counted frame,
    else 1 (one row per member)."""
    if "n" in frame.columns:
        return frame["n"].astype("int64")
    return pd.Series(1, index=frame.index, dtype="int64")


def flags(series: pd.Series) -> pd.Series:
    """A boolean column as plain ``bool``: a missing value (None, NA, NaN) is false."""
    return series.astype("boolean").fillna(False).astype(bool)


def members(frame: pd.DataFrame) -> int:
    """The members a resolution frame (per member or counted) holds."""
    return int(weights(frame).sum())


def match_rates(resolution: pd.DataFrame, by: str = "cohort_name") -> pd.DataFrame:
    """Per ``by``: members, matched, unmatched, orphan_created and match_rate (matched/members)."""
    cols = [by, "members", "matched", "unmatched", "orphan_created", "match_rate"]
    if resolution.empty:
        return pd.DataFrame(columns=cols)
    key = resolution[by].astype(object).where(resolution[by].notna(), "(none)")
    w = weights(resolution)
    out = pd.DataFrame({"members": w.groupby(key, sort=True).sum()})
    for status in ("matched", "unmatched", "orphan_created"):
        out[status] = w.where(flags(resolution["status"].eq(status)), 0).groupby(key, sort=True).sum()
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
    out = weights(frame).groupby(s, dropna=False, sort=False).sum().rename_axis(column).reset_index(name=name)
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
    u = u.assign(active_after_cutoff=flags(u["active_after_cutoff"]),
                 _k=u[by].astype(object).where(u[by].notna(), "(none)"), _w=weights(u))
    out = u.groupby(["_k", "active_after_cutoff"])["_w"].sum().rename("users").reset_index().rename(columns={"_k": by})
    return out


def shared_mpids(resolution: pd.DataFrame, *, with_ids: bool = False) -> pd.DataFrame:
    """MPIDs that several matched members (Mixpanel profiles) of one cohort resolve to:
    ``cohort_name, mpid, profiles`` (largest first); ``with_ids`` adds the ``distinct_ids``
    (personal data when they are emails: only with show_personal_data). Needs one row per member
    (at least those of the matched members on a shared MPID:
    :func:`cohortlab.report.insights.shared_mpid_members`)."""
    m = resolution[resolution["status"] == "matched"]
    cols = ["cohort_name", "mpid", "profiles"] + (["distinct_ids"] if with_ids else [])
    if m.empty:
        return pd.DataFrame(columns=cols)
    m = m[m.duplicated(["cohort_name", "mpid"], keep=False)]  # only MPIDs claimed more than once
    if m.empty:
        return pd.DataFrame(columns=cols)
    agg = {"profiles": ("distinct_id", "size")}
    if with_ids:
        agg["distinct_ids"] = ("distinct_id", lambda s: ", ".join(sorted(map(str, s))))
    g = m.groupby(["cohort_name", "mpid"]).agg(**agg).reset_index()
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


def remedies(resolution: pd.DataFrame, values: pd.DataFrame | None = None) -> pd.DataFrame:
    """What each remedy recovers, in users (``remedy, key, users, gained, audience_before,
    audience_after, applies, note``; the most first, those that do not apply last), from ``values``: the rows of
    :func:`cohortlab.simulation.remedies.value_remedies` (``Lab.remedies``) of one or more
    cohorts (column ``cohort`` when several), each the simulation with the remedy applied against
    the one as configured. ``users`` is the sum of ``recovered`` over cohorts (the members' own
    people the remedy brings into the audience), ``gained`` the sum of ``gained`` (every profile
    it makes true, a stale one too); ``applies`` whether it was simulated for some cohort (a
    reconnect without a pause was not); the note is the cohort's own (prefixed by the cohort name
    when several).

    ``attrs``: ``never_fixable`` (unmatched, in mParticle under another identity, inactive since
    the cutoff: no remedy that waits for new data reaches them; None with the event identity rule off,
    whose members are neither active nor inactive since a cutoff) and ``not_in_mparticle``
    (unmatched, found under no identity), counted in ``resolution``."""
    cols = ["remedy", "key", "users", "gained", "audience_before", "audience_after", "applies", "note"]
    if values is None or values.empty:
        out = pd.DataFrame(columns=cols)
    else:
        several = "cohort" in values.columns and values["cohort"].nunique() > 1
        rows = []
        for key, g in values.groupby("key", sort=False):
            notes = [f"{c}: {n}" for c, n in zip(g["cohort"], g["note"])] if several else list(g["note"])
            rows.append({"remedy": g["remedy"].iloc[0], "key": key, "users": int(g["recovered"].sum()),
                         "gained": int(g["gained"].sum()),
                         "audience_before": int(g["audience_before"].sum()),
                         "audience_after": int(g["audience_after"].sum()),
                         "applies": bool(g["applies"].any()),
                         "note": "; ".join(notes)})
        # ranked: the remedy that recovers most first (a reader asked "what do we do?" found them in a
        # fixed order); ties keep it; one the settings give nothing to act on last
        out = (pd.DataFrame(rows, columns=cols)
               .sort_values(["applies", "users"], ascending=False, kind="stable").reset_index(drop=True))
    u = unmatched(resolution)
    in_mp = u["recoverable_via"].notna()
    active = flags(u["active_after_cutoff"])
    # the event identity rule off: no cutoff, no activity since it (null), so none is known to be inactive
    out.attrs["never_fixable"] = members(u[in_mp & ~active]) if activity_known(resolution) else None
    out.attrs["not_in_mparticle"] = members(u[~in_mp])
    return out


def remedies_by_cohort(values: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Each cohort's row of each remedy that applies (``cohort, remedy, users, gained,
    audience_before, audience_after``), when ``values`` (:func:`remedies`'s) hold several cohorts;
    [] for one cohort (the summed table is its own) or none simulated."""
    if values is None or values.empty or "cohort" not in values.columns or values["cohort"].nunique() < 2:
        return []
    rows = values[values["applies"].astype(bool)].rename(columns={"recovered": "users"})
    cohorts = list(dict.fromkeys(rows["cohort"]))  # each cohort's remedies ranked as the summed table's
    rows = rows.assign(_c=rows["cohort"].map(cohorts.index), _u=-rows["users"]).sort_values(["_c", "_u"], kind="stable")
    return _rows(rows[["cohort", "remedy", "users", "gained", "audience_before", "audience_after"]])


def activity_known(resolution: pd.DataFrame) -> bool:
    """Whether the unmatched members' activity since the event identity cutoff is known: not when
    the rule is off (``event_identity_cutoff: null``), where ``active_after_cutoff`` is null for every
    member (docs/rules.md#recoverable-via), which is neither active nor inactive."""
    u = unmatched(resolution)
    return u.empty or bool(u["active_after_cutoff"].notna().any())


def remedy_users(rem: pd.DataFrame, key: str) -> int:
    """``users`` of remedy ``key`` in :func:`remedies` (0 when it was not valued)."""
    hit = rem.loc[rem["key"] == key, "users"]
    return int(hit.iloc[0]) if len(hit) else 0


def audience_size(waterfall: pd.DataFrame) -> int:
    """|T|: the last total of the waterfall (profiles with the attribute true)."""
    totals = waterfall[waterfall["kind"] == "total"]
    return int(totals["count"].iloc[-1]) if len(totals) else 0


def timeline_summary(timeline: pd.DataFrame) -> dict[str, Any]:
    """Runs, failed runs, full refreshes, adds/removes sent and the final state of a timeline (a
    one-time export's observation points, where nothing is sent, are counted apart)."""
    if timeline.empty:
        return {"runs": 0}
    last = timeline.iloc[-1]
    # a one-time export's timeline goes on with observation points (nothing sent): not runs
    observed = timeline["kind"].eq("observation") if "kind" in timeline.columns else pd.Series(False, timeline.index)
    return {
        "runs": int((~observed).sum()),
        "observation_points": int(observed.sum()),
        "failed_runs": int(flags(timeline["failed"]).sum()),
        "full_refreshes": int(flags(timeline["full_refresh"]).sum()),
        # full syncs that are not refreshes: a reconnect, a re-export (they clear nothing)
        "full_syncs": int(timeline["kind"].isin(["reconnect", "reexport"]).sum()) if "kind" in timeline.columns else 0,
        "adds_sent": int(timeline["adds"].sum()),
        "removes_sent": int(timeline["removes"].sum()),
        "members": int(last["members"]),
        "true_count": int(last["true_count"]),
        "not_yet_true": int(last["not_yet_true"]),
        "stale_true": int(last["stale_true"]),
        "max_stale_true": int(timeline["stale_true"].max()),
        "first_run": str(pd.Timestamp(timeline["run_at"].iloc[0])),
        "last_run": str(pd.Timestamp(last["run_at"])),
        # true_count split: the profiles of matched members (MPIDs) and the orphans created for
        # unmatched members (create_and_update), which stale_true and not_yet_true do not count
        **({"true_linked": int(last["true_linked"]), "orphans_true": int(last["orphans_true"])}
           if {"true_linked", "orphans_true"} <= set(timeline.columns) else {}),
        # the full syncs a re-export sent (a one-time export's exports after its first)
        "reexports": ([str(pd.Timestamp(t)) for t in timeline.loc[timeline["kind"].eq("reexport"), "run_at"]]
                      if "kind" in timeline.columns else []),
    }


def paused_windows(timeline: pd.DataFrame) -> pd.DataFrame:
    """Each window of consecutive failed runs of a timeline: ``start`` (its first failed run),
    ``last_failed`` (its last failed run), ``failed_runs`` (the failed runs from the one to the
    other: the windows add up to the timeline's failed runs) and ``end``, the first successful
    run after the pause, None when the timeline ends still paused; ``end_kind``: how that run
    sent (the timeline's ``kind``: ``diff``, ``full_refresh``, ``reconnect``, ...), when known;
    ``started_before``: the window began before the first run of a timeline cut at ``since``
    (:func:`window`), so ``start`` is the first failed run shown, not the pause's first."""
    cols = ["start", "last_failed", "end", "failed_runs", "end_kind", "started_before"]
    if timeline.empty:
        return pd.DataFrame(columns=cols)
    t = pd.to_datetime(timeline["run_at"]).reset_index(drop=True)
    f = flags(timeline["failed"]).reset_index(drop=True)
    window_no = (f != f.shift(fill_value=False)).cumsum()  # a new number at every change failed / not failed
    runs = pd.DataFrame({"t": t, "window": window_no})[f]
    if runs.empty:
        return pd.DataFrame(columns=cols)
    g = runs.groupby("window", sort=True)["t"]
    out = pd.DataFrame({"start": g.min(), "last_failed": g.max(), "failed_runs": g.size().astype(int)})
    successful = t[~f]
    out["end"] = [successful[successful > last].min() if (successful > last).any() else None
                  for last in out["last_failed"]]
    kinds = dict(zip(t, timeline["kind"].astype(object))) if "kind" in timeline.columns else {}
    out["end_kind"] = [None if e is None or pd.isna(e) else kinds.get(e) for e in out["end"]]
    before = timeline.attrs.get("run_before")
    out["started_before"] = [bool(before and before["failed"] and s == t.iloc[0]) for s in out["start"]]
    return out.reset_index(drop=True)[cols]


def window(timeline: pd.DataFrame, since=None) -> pd.DataFrame:
    """Runs at or after ``since`` (ISO text or datetime; None keeps all)."""
    if since is None or timeline.empty:
        return timeline
    from cohortlab.times import naive_utc, parse_time

    t0 = pd.Timestamp(naive_utc(parse_time(since)))
    kept = pd.to_datetime(timeline["run_at"]) >= t0
    out = timeline[kept].reset_index(drop=True)
    # the last run left out: a paused window running across ``since`` started before the first run
    # shown (:func:`paused_windows` says so rather than dating its start at ``since``)
    before = timeline[~kept]
    out.attrs["run_before"] = ({"run_at": pd.Timestamp(before["run_at"].iloc[-1]), "failed": bool(flags(before["failed"]).iloc[-1])}
                               if len(before) and "failed" in before.columns else None)
    # a member (or a profile true) at a run left out: a cohort empty in the window is not one that
    # "never had a member" (:func:`cohortlab.report.summaries.never_a_member`)
    out.attrs["member_before"] = bool(len(before) and any(
        col in before.columns and int(before[col].max()) > 0 for col in ("members", "true_count")))
    return out


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


class Headline(dict):
    """The few figures of an index card, in order, each with its unit, stated where the figure is
    made, never guessed from the value: ``count`` (a number of members, profiles or runs),
    ``percent`` (a share 0..1, shown as a percentage also when it is exactly 0 or 1) or ``text``
    (a name; None shown as "—"). ``metrics.json`` holds the units beside the values
    (``headline_units``)."""

    UNITS = ("count", "percent", "text")

    def __init__(self) -> None:
        super().__init__()
        self.units: dict[str, str] = {}
        self.stable_keys: dict[str, str] = {}  # label -> its stable key (``figures`` in metrics.json, for scripts)

    def add(self, label: str, value: Any, unit: str = "count", *, key: str) -> "Headline":
        """``label``: the words a reader sees (they may change with the data: "best plan (tie)");
        ``key``: the figure's name for scripts, the same whatever the data (docs/reports.md#metrics-json)."""
        if unit not in self.UNITS:
            raise ValueError(f"headline {label!r}: unknown unit {unit!r} ({', '.join(self.UNITS)})")
        if key in self.stable_keys.values():
            raise ValueError(f"headline {label!r}: key {key!r} given twice")
        self[label] = value
        self.units[label] = unit
        self.stable_keys[label] = key
        return self


def _counts(df: pd.DataFrame, column: str) -> dict[str, int]:
    return {("null" if k is None else str(k)): int(v) for k, v in zip(df[column], df["users"])}


def sync_waiting_label(configured: str = "dynamic") -> str:
    """The headline label of the matched profiles not true after the last run: "not yet true"
    (pending: a run will send them) for a dynamic sync; "missing" for a one-time export, which no
    run sends (the words of the page's summary and of the match-rates page)."""
    return "missing (last run)" if configured == "one_time" else "not yet true (last run)"


# each cohort's runs counted (two cohorts on one 15-minute grid: twice its runs): the card said
# "sync runs 1,154" for 577 runs of two cohorts
SYNC_RUNS, FAILED_RUNS = "sync runs (summed over cohorts)", "failed runs (summed over cohorts)"
STALE_ORPHANS = "orphans of members who left, still true (last run)"


def sync_headline(stats: Mapping[str, Mapping[str, Any]], configured: str = "dynamic") -> Headline:
    s = [v for v in stats.values() if v.get("runs")]
    h = (Headline()
            .add("cohorts", len(stats), key="cohorts")
            .add(SYNC_RUNS, sum(v["runs"] for v in s), key="sync_runs")
            .add(FAILED_RUNS, sum(v["failed_runs"] for v in s), key="failed_runs")
            .add("Mixpanel members (last run)", sum(v["members"] for v in s), key="members_last_run")
            .add("attribute = true (last run)", sum(v["true_count"] for v in s), key="true_last_run")
            .add("stale true (last run)", sum(v["stale_true"] for v in s), key="stale_true_last_run"))
    # the orphans of members who left, still true (create_and_update): apart from "stale true",
    # which counts matched members' profiles only, as the page's lines say them; when there are any
    orphans = sum(v.get("stale_orphans") or 0 for v in s)
    if orphans:
        h.add(STALE_ORPHANS, orphans, key="stale_orphans_last_run")
    return h.add(sync_waiting_label(configured), sum(v["not_yet_true"] for v in s), key="not_yet_true_last_run")


# =========================================================================== the figures of a page
# Each report computes ONE JSON-ready dict of figures (written to metrics.json); its summary,
# tables and charts are then drawn from that dict only, so no page can disagree with itself.
LIMIT_OVER_TIME = 12  # snapshots per cohort in the match-rate-over-time chart
ROW_LIMIT = 20        # rows of identifier lists shown (precision loss, junk values, shared MPIDs)


def _rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for rec in df.to_dict(orient="records"):
        row = {}
        for k, v in rec.items():
            if hasattr(v, "item") and not isinstance(v, (str, bytes)):
                try:
                    v = v.item()
                except (ValueError, AttributeError):
                    pass
            if isinstance(v, pd.Timestamp):
                v = v.isoformat()
            if v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v):
                v = None
            row[str(k)] = v
        out.append(row)
    return out


def ranked_losses(waterfall: pd.DataFrame, one_time: bool = False, sent: int = 0) -> list[dict[str, Any]]:
    """Every non-zero step of a cohort's waterfall between the Mixpanel count and the audience,
    largest first: ``step, kind (minus/plus), users, share_of_members, remedy``.

    ``remedy`` is what fixes the step: for a gap reason an mParticle Rule (or SDK code) writing
    ``$mparticle_user_id`` (what it gains is valued by its own simulation on the identity-gaps page,
    :func:`remedies`: not estimated here); for shared MPIDs none is needed (one person, several
    Mixpanel profiles); pending profiles: the next successful run, or, with a one-time export
    (``one_time``), where no run will send them (missing, not pending), a new export
    (``new_export``); stale profiles: a full re-export; orphans: ``only_update`` protection (each
    of these the whole step). ``sent``: the profiles of the not-yet-true step whose members were
    already sent (:func:`cohortlab.report.insights.sent_not_true`), which no diff run sends again:
    the step's ``sent``, its ``remedy`` then says so (``full_sync``; ``next_run`` for the others)."""
    members = int(waterfall.loc[waterfall["step"] == "members", "count"].sum())
    out = []
    for step, kind, n in zip(waterfall["step"], waterfall["kind"], waterfall["count"]):
        n = int(n)
        if kind == "total" or n == 0:
            continue
        step = str(step)
        remedy = "rule" if step.startswith("unmatched:") else {
            "shared_mpid": "merge_profiles", "not_yet_true": "new_export" if one_time else "next_run",
            "stale_true": "re_export",
            "orphans_true": "only_update"}.get(step, "none")
        row = {"step": step, "kind": str(kind), "users": n,
               "share_of_members": n / members if members else None, "remedy": remedy}
        if remedy == "next_run":
            row["sent"] = min(int(sent), n)
            if row["sent"] == n:
                row["remedy"] = "full_sync"
        out.append(row)
    return sorted(out, key=lambda r: (-r["users"], r["step"]))


def match_rates_figures(sims: Mapping[str, Any], over_time: pd.DataFrame | None = None,
                        resolution: pd.DataFrame | None = None,
                        sent_not_true: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The figures of the match-rates report: totals (pooled over cohorts: matched / members),
    per cohort (counts, rate, audience, waterfall rows, ranked losses), per identifier source and
    over time. ``resolution``: the simulations' resolution frames stacked or counted
    (:func:`cohortlab.report.insights.resolution_counts`); default: read per member.
    ``sent_not_true``: per cohort, the not-yet-true profiles already sent
    (:func:`cohortlab.report.insights.sent_not_true`; default: counted here)."""
    if sent_not_true is None:  # counted in the simulations' tables
        from cohortlab.report.insights import sent_not_true as count_sent

        sent_not_true = count_sent(sims)
    if resolution is None:
        frames = [s.resolution for s in sims.values() if len(s.resolution)]
        resolution = pd.concat(frames, ignore_index=True) if frames else None
    res = resolution if resolution is not None and len(resolution) else pd.DataFrame(
        columns=["cohort_name", "identifier_source", "status", "gap_reason", "recoverable_via", "active_after_cutoff"])
    rates = match_rates(res, "cohort_name").set_index("cohort_name") if len(res) else pd.DataFrame()
    cohorts = {}
    for c, sim in sims.items():
        r = rates.loc[c] if c in rates.index else None
        cohorts[c] = {
            "members": int(r["members"]) if r is not None else 0,
            "matched": int(r["matched"]) if r is not None else 0,
            "unmatched": int(r["unmatched"] + r["orphan_created"]) if r is not None else 0,
            "orphan_created": int(r["orphan_created"]) if r is not None else 0,
            "match_rate": float(r["match_rate"]) if r is not None else None,
            "audience": audience_size(sim.waterfall),
            "as_of": simulation_as_of(sim),
            "waterfall": _rows(sim.waterfall[["step", "label", "kind", "count"]]),
            "losses": ranked_losses(sim.waterfall, one_time=getattr(getattr(sim, "settings", None), "sync_type",
                                                                    "dynamic") == "one_time",
                                    sent=sent_not_true.get(c, 0)),
        }
    members = sum(v["members"] for v in cohorts.values())
    matched = sum(v["matched"] for v in cohorts.values())
    by_source = match_rates(res, "identifier_source") if len(res) else pd.DataFrame(
        columns=["identifier_source", "members", "matched", "unmatched", "orphan_created", "match_rate"])
    steps: dict[tuple[str, str], int] = {}
    missing = set()  # steps that are a one-time export's missing profiles (remedy new_export)
    for v in cohorts.values():
        for loss in v["losses"]:
            steps[(loss["step"], loss["kind"])] = steps.get((loss["step"], loss["kind"]), 0) + loss["users"]
            if loss["remedy"] == "new_export":
                missing.add(loss["step"])
    return {
        "losses": [{"step": k[0], "kind": k[1], "users": n, **({"one_time_missing": True} if k[0] in missing else {})}
                   for k, n in sorted(steps.items(), key=lambda kv: (-kv[1], kv[0][0]))],
        "totals": {"cohorts": len(cohorts), "members": members, "matched": matched,
                   "unmatched": members - matched, "match_rate": matched / members if members else None,
                   "audience": sum(v["audience"] for v in cohorts.values())},
        "cohorts": cohorts,
        "by_identifier_source": _rows(by_source[["identifier_source", "members", "matched", "match_rate"]]),
        "over_time": _rows(over_time) if over_time is not None and len(over_time) else [],
        "over_time_limit": LIMIT_OVER_TIME,
    }


def simulation_as_of(sim) -> str | None:
    """The as-of time of a simulation (its ``at``, the ``as_of`` of every row of its resolution
    table), in the resolution's naive UTC spelling; None for a simulation without members."""
    from cohortlab.times import naive_utc

    if getattr(sim, "at", None) is None:  # not a SimulationResult: its own as_of, if any
        t = getattr(sim, "as_of", None)
    elif not getattr(sim, "counts", {}).get("members", 1):
        return None
    else:
        t = naive_utc(sim.at)
    return None if t is None or pd.isna(t) else pd.Timestamp(t).isoformat()


def loss_words(loss: Mapping[str, Any]) -> str:
    """A waterfall step of the pooled losses in words (:func:`cohortlab.glossary.step_words`), but
    "missing (one-time export)" for a one-time export's matched profiles not true, which no run
    sends (the sync-timeline page's word)."""
    from cohortlab.glossary import step_words

    return "missing (one-time export)" if loss.get("one_time_missing") else step_words(loss["step"])


def figures_headline_match_rates(f: Mapping[str, Any]) -> Headline:
    t = f["totals"]
    out = (Headline()
           .add("Mixpanel cohort members", t["members"], key="members")
           .add("reach an mParticle profile", t["matched"], key="matched")
           .add("match rate (of all members)", t["match_rate"], "percent", key="match_rate")
           .add("mParticle audience, simulated (attribute = true)", t["audience"], key="audience_simulated"))  # the observed one: the card's note
    if f["losses"]:
        top = f["losses"][0]
        what = "largest addition" if top["kind"] == "plus" else "largest loss"  # the sign in words, not "(−) 30"
        out.add(f"{what}, all cohorts: {loss_words(top)}", top["users"], key="largest_step")
    return out


def identity_gaps_figures(resolution: pd.DataFrame, shared: pd.DataFrame, *, redact=None,
                          remedy_values: pd.DataFrame | None = None,
                          before_first_profile: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The figures of the identity-gaps report. ``redact(frame)`` makes identifier lists safe to
    show (personal data) before they are stored. ``remedy_values``: the remedies valued by
    simulation (``Lab.remedies`` of each cohort, stacked with a ``cohort`` column).
    ``before_first_profile``: {cohort: members sent before their first profile version}
    (:func:`cohortlab.report.insights.sent_before_first_profile`)."""
    redact = redact or (lambda df: df)
    u = unmatched(resolution)
    rem = remedies(resolution, remedy_values)
    in_mp = members(u[u["recoverable_via"].notna()])
    known = activity_known(resolution)  # not with the event identity rule off: then None, never "inactive"
    active = members(u[flags(u["active_after_cutoff"])]) if known else None
    n_members, n_unmatched = members(resolution), members(u)
    per_cohort = {}
    for c, g in resolution.groupby("cohort_name", sort=True):
        gu = unmatched(g)
        per_cohort[str(c)] = {"members": members(g), "unmatched": members(gu),
                              "by_gap_reason": _counts(count_by(gu, "gap_reason"), "gap_reason")}
    precision = precision_loss(resolution)
    junk = junk_values(resolution, ROW_LIMIT)
    shared_show = shared.head(ROW_LIMIT).copy()
    if len(shared_show):
        shared_show["mpid"] = shared_show["mpid"].map(lambda v: str(int(v)))
    return {
        "members": n_members,
        "unmatched": n_unmatched,
        "unmatched_share": n_unmatched / n_members if n_members else None,
        "in_mparticle": in_mp,
        "active_after_cutoff": active,
        "inactive_since_cutoff": None if active is None else n_unmatched - active,
        "by_gap_reason": _rows(gaps_by_reason(resolution)),
        "by_recoverable_via": _rows(gaps_by_recoverable(resolution)),
        "activity": _rows(activity(resolution, "gap_reason")) if known else [],
        # members sent before their first profile version (one with its own as-of time): no profile then
        # (None when not counted: no value, never a 0; a member of two cohorts counts in each)
        "sent_before_first_profile": None if before_first_profile is None else sum(before_first_profile.values()),
        "sent_before_first_profile_by_cohort": None if before_first_profile is None else dict(
            sorted(before_first_profile.items())),
        "precision_loss": members(resolution[resolution["gap_reason"] == "mpid_precision_loss"]),
        # the same Mixpanel profile in several cohorts is a member of each: counted once here
        "precision_loss_profiles": int(resolution.loc[resolution["gap_reason"] == "mpid_precision_loss",
                                                      "distinct_id"].nunique()),
        "precision_loss_rows": _rows(redact(precision.head(ROW_LIMIT))),
        "malformed_mparticle_user_id": members(resolution[resolution["gap_reason"] == "malformed_mparticle_user_id"]),
        "junk_rows": _rows(redact(junk)),
        "shared_mpids": int(len(shared)),  # (cohort, MPID) pairs: an MPID shared in two cohorts counts twice
        "shared_mpids_distinct": int(shared["mpid"].nunique()) if len(shared) else 0,
        "profiles_on_shared_mpids": int(shared["profiles"].sum()) if len(shared) else 0,
        "shared_distribution": _rows(shared_mpid_distribution(shared)),
        "shared_rows": _rows(redact(shared_show)),
        "remedies": _rows(rem),
        # each cohort's own (the table above sums them): what an analyst asked about one cohort
        # needs, which only `cohortlab remedies --cohort` gave
        "remedies_by_cohort": remedies_by_cohort(remedy_values),
        # None when the remedies were not simulated (the Spark engine): no value, never a 0
        "rule_fixable": None if remedy_values is None else remedy_users(rem, "rule_reexport"),
        "rule_next_sends": None if remedy_values is None else remedy_users(rem, "rule"),
        # what a re-export recovers without any identifier fixed (pending members sent again):
        # beside the Rule + re-export's figure, the Rule's own share can be read
        "reexport_alone": None if remedy_values is None else remedy_users(rem, "reexport"),
        "remedies_since": None if remedy_values is None else remedy_values.attrs.get("since"),
        # {cohort: why} of the cohorts whose re-export does not happen (the export paused at the
        # as-of time): their "then re-export" remedies are the next sends only
        "no_reexport": None if remedy_values is None else dict(remedy_values.attrs.get("no_reexport") or {}),
        "remedy_cohorts": 0 if remedy_values is None or "cohort" not in remedy_values else int(
            remedy_values["cohort"].nunique()),
        "never_fixable": None if rem.attrs["never_fixable"] is None else int(rem.attrs["never_fixable"]),
        "not_in_mparticle": int(rem.attrs["not_in_mparticle"]),
        "cohorts": per_cohort,
        "row_limit": ROW_LIMIT,
    }


def rule_headline_label(f: Mapping[str, Any]) -> str:
    """The index card's label of the Rule remedy: "+ re-export" only when a re-export happens for
    every cohort; none does when the export is paused at the as-of time (its last run fails), and
    the figure is then the next sends only; for some cohorts only, it says so."""
    missing, cohorts = f.get("no_reexport") or {}, f.get("remedy_cohorts") or 0
    if not missing:
        return "recovered by a Rule + re-export (simulated)"
    if len(missing) >= cohorts:
        return "recovered by a Rule, next sends only: no re-export (simulated)"
    return f"recovered by a Rule + re-export, none for {len(missing):,} of {cohorts:,} cohorts (simulated)"


def top_gap_reasons(f: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The rows of ``f["by_gap_reason"]`` with the most unmatched members: one, or several tied
    (in the order of the figures: by name); [] without an unmatched member."""
    rows = f["by_gap_reason"]
    return [r for r in rows if r["users"] == rows[0]["users"]] if rows else []


def figures_headline_identity_gaps(f: Mapping[str, Any]) -> Headline:
    # in words, as the pages write them; several when tied (one of them picked would mislead)
    top = " / ".join(reason_words(r["gap_reason"]) for r in top_gap_reasons(f)) or None  # None: none unmatched
    return (Headline()
            .add("unmatched members", f["unmatched"], key="unmatched")
            .add("unmatched (of all members)", f["unmatched_share"], "percent", key="unmatched_share")
            .add("in mParticle under another identity", f["in_mparticle"], key="in_mparticle")
            .add("most frequent gap reason", top, "text", key="top_gap_reason")
            .add(rule_headline_label(f), f["rule_fixable"], key="rule_recovered")
            .add("by a re-export alone, no identifier fixed (simulated)", f.get("reexport_alone"), key="reexport_alone")
            .add("never fixable (cohort members in mParticle, inactive since the cutoff)", f["never_fixable"], key="never_fixable"))


def timeline_rows(timeline: pd.DataFrame) -> list[dict[str, Any]]:
    cols = ["run_at", "members", "adds", "removes", "failed", "full_refresh", "true_count", "not_yet_true",
            "stale_true", "kind"]  # kind: how the run sent (diff, full_refresh, reconnect, reexport, ...)
    return _rows(timeline[[c for c in cols if c in timeline.columns]])


def sync_figures(timelines: Mapping[str, pd.DataFrame], one_time: Mapping[str, pd.DataFrame],
                 configured: str = "dynamic", sent_not_true: Mapping[str, int] | None = None,
                 stale_orphans: Mapping[str, Mapping[str, int]] | None = None) -> dict[str, Any]:
    """The figures of the sync report: per cohort the stats and the runs of a dynamic sync and of
    a one-time export, and the totals over cohorts after the last run of the sync the settings
    configure (``configured``: ``dynamic`` or ``one_time``, the other shown beside it), so that
    they are the figures the other pages simulate. ``sent_not_true``: per cohort, the dynamic
    sync's profiles not yet true after the last run whose members were already sent
    (:func:`cohortlab.report.insights.sent_not_true`), which no diff run sends again: the dynamic
    stats' ``sent_not_true``. ``stale_orphans``: per cohort, ``{"dynamic": n, "one_time": n}``, the
    orphan profiles true after the last run whose member left the cohort
    (:func:`cohortlab.report.insights.stale_orphans`): each stats' ``stale_orphans``, apart from
    ``stale_true``, which counts the profiles of matched members only."""
    cohorts = {}
    for c, tl in timelines.items():
        ot = one_time[c]
        dyn, one = timeline_summary(tl), timeline_summary(ot)
        if sent_not_true is not None and dyn.get("runs"):
            dyn["sent_not_true"] = min(int(sent_not_true.get(c, 0)), int(dyn["not_yet_true"]))
        for kind, st in (("dynamic", dyn), ("one_time", one)):
            if stale_orphans is not None and st.get("runs") and "orphans_true" in st:
                st["stale_orphans"] = min(int((stale_orphans.get(c) or {}).get(kind, 0)), st["orphans_true"])
        cohorts[c] = {"dynamic": dyn, "one_time": one,
                      # with since: a member (or a profile true) at a run before the window, dynamic
                      # sync or one-time export (:func:`window`)
                      "member_before_window": any(bool(x.attrs.get("member_before")) for x in (tl, ot)),
                      "paused_windows": _rows(paused_windows(tl)),
                      "runs": timeline_rows(tl), "one_time_runs": timeline_rows(ot)}
    stats = {c: v[configured] for c, v in cohorts.items()}
    return {"totals": sync_headline(stats, configured), "cohorts": cohorts, "configured": configured}


def best_plans(summary: pd.DataFrame) -> list[str]:
    """The plans with the highest final match rate (to 0.1 point, what a page shows); several
    when they tie."""
    if summary.empty:
        return []
    rates = summary["final_match_rate"].astype(float).round(3)
    return summary.loc[rates == rates.max(), "plan"].tolist()


def no_effect_plans(plan_summary: pd.DataFrame, daily: pd.DataFrame) -> dict[str, str]:
    """``{plan: baseline}``: the plans with no effect in the window
    (:func:`cohortlab.migration.run.no_effect_plans`, the one rule the CLI uses too)."""
    from cohortlab.migration.run import no_effect_plans as rule

    return rule(plan_summary, daily)


def plan_changes(plans) -> dict[str, list[dict[str, Any]]]:
    """``{plan: [{"at", "what"}]}``: each plan's actions in time order (an EIT switch, a Rule or SDK
    code writing ``$mparticle_user_id``, a re-export; not the event identity cutoff, which every
    plan has), from :attr:`cohortlab.migration.plans.MigrationPlan.changes`."""
    return {p.name: [{"at": pd.Timestamp(t).isoformat(), "what": str(what)} for t, what in p.changes
                     if not str(what).startswith("event rule")]
            for p in plans or []}


def migration_figures(plan_summary: pd.DataFrame, daily: pd.DataFrame, validation=None, *, switch=None,
                      switch_source: str = "", start=None, end=None, plan_list=None) -> dict[str, Any]:
    """The figures of the EIT-migration report: the switch studied and where it comes from, per
    plan the end state (rates over all Mixpanel profiles with events in the window), its changes
    (``plan_list``: the :class:`~cohortlab.migration.plans.MigrationPlan` objects) and whether it has
    no effect in the window (:func:`no_effect_plans`: then no days to 90% / 99%), the best
    plan(s) (ties kept), the daily rates and the validation, per cohort."""
    cols = ["plan", "first_change", "members_end", "matched_end", "final_match_rate", "split_profiles_end",
            "never_fixable_users", "stranded_profiles", "unmatched_users", "not_in_mparticle_profiles",
            "deleted_mparticle_profiles", "unfixed_profiles", "users_needing_reexport", "reexport_users",
            "days_to_90pct", "days_to_99pct"]
    plans = plan_summary[[c for c in cols if c in plan_summary.columns]].copy()
    same_as = no_effect_plans(plan_summary, daily)
    plans["no_effect_as"] = [same_as.get(p) for p in plans["plan"]]  # the plan it equals every day, if any
    no_change = plans["first_change"].isna() if "first_change" in plans.columns else pd.Series(False, plans.index)
    no_change = no_change | plans["no_effect_as"].notna()
    for c in ("days_to_90pct", "days_to_99pct"):  # whole days after the plan's first change; none without an effect
        if c in plans.columns:
            plans[c] = [None if nc or v is None or pd.isna(v) else int(round(float(v)))
                        for v, nc in zip(plans[c], no_change)]
    changes = plan_changes(plan_list)
    plans["changes"] = [changes.get(p, []) for p in plans["plan"]]
    d = daily[["day", "plan", "members", "matched", "match_rate", "split_profiles"]].copy() if len(daily) else \
        pd.DataFrame(columns=["day", "plan", "members", "matched", "match_rate", "split_profiles"])
    d["split_share"] = (d["split_profiles"] / d["members"].where(d["members"] > 0)).astype(float)
    out = {
        "switch": None if switch is None else pd.Timestamp(switch).isoformat(),
        "switch_source": switch_source,
        "start": None if start is None else str(start), "end": None if end is None else str(end),
        "threshold_pcts": [90, 99],  # "days to 90% / 99% of the final rate"
        "plans": _rows(plans),
        "best": best_plans(plan_summary),
        "daily": _rows(d),
        "validation": None,
    }
    if validation is not None and len(validation.summary):
        # per cohort, as MigrationValidation.summary counts them; no figure pooled over the cohorts:
        # a member of two cohorts would count twice, and the rates are of different members
        out["validation"] = {
            "plan": validation.plan, "cohorts": _rows(validation.summary),
            "verdicts": {c: str(r.verdict) for c, r in validation.results.items()},
        }
    return out


def _as_predicted(c: Mapping[str, Any]) -> bool:
    """A validated cohort's prediction agrees exactly with what was observed: the same members
    matched (the same count, and no member predicted one way and observed the other)."""
    return c["predicted_matched"] == c["observed_matched"] and not c.get("users_differ")


def figures_headline_migration(f: Mapping[str, Any]) -> Headline:
    if not f["plans"]:
        return Headline().add("plans", 0, key="plans")
    best = next(p for p in f["plans"] if p["plan"] == f["best"][0])
    out = (Headline()
           .add("plans compared", len(f["plans"]), key="plans")
           .add("best plan" + (" (tie)" if len(f["best"]) > 1 else ""), " = ".join(f["best"]), "text", key="best_plan")
           .add("its final match rate (of Mixpanel profiles)", best["final_match_rate"], "percent", key="best_final_match_rate")
           .add("its split profiles (among everyone with events, at the window's end)", best["split_profiles_end"],
                key="best_split_profiles")
           .add("its users never fixable (among everyone with events: inactive after the plan's change)",
                best["never_fixable_users"], key="best_never_fixable"))
    rows = [c for c in (f["validation"] or {}).get("cohorts") or [] if c["members"]]
    if len(rows) > 1 and all(_as_predicted(c) for c in rows):  # none is farther than another: said so
        out.add("validated cohorts, each exactly as predicted (no member differs)", len(rows),
                key="validated_cohorts_as_predicted")
    elif rows:  # one cohort's figures, never pooled over cohorts; its name is a value (labels hold no data text)
        far = max(rows, key=lambda c: (abs(c["predicted_match_rate"] - c["observed_match_rate"]),
                                       c.get("users_differ") or 0))
        out.add("validated cohort farthest from its prediction" if len(rows) > 1 else "validated cohort",
                far["cohort_name"], "text", key="validated_cohort")
        out.add("its observed match rate (of its members)", far["observed_match_rate"], "percent", key="validated_observed_match_rate")
        out.add("its predicted match rate (of its members)", far["predicted_match_rate"], "percent", key="validated_predicted_match_rate")
    return out


# =========================================================================== observed vs simulated
# docs/rules.md#observed-state: the mParticle snapshot's cohort attribute against the simulation
# (``Lab.verify``), in the match-rates report and on its index card.
def verify_figures(results: Mapping[str, Any], *, redact=None, row_limit: int = ROW_LIMIT) -> dict[str, Any]:
    """The observed-vs-simulated figures of several cohorts, from ``{cohort: VerifyResult or None}``
    (None: no loaded mParticle profile carries the cohort's attribute). Per observed cohort: the
    snapshot and simulation times, the audience observed vs simulated, the confusion table
    (rows simulated, columns observed), the disagreements by cause (every cause, zero included),
    the top cause, the attribute names seen and the first ``row_limit`` disagreements (MPID,
    values, cause, detail; ``redact(frame)`` makes them safe to show). ``totals`` pools the
    observed cohorts: ``agreement`` = 1 - disagreements / profiles compared. Each also gives
    ``with_attribute`` (the compared profiles where either side has the attribute: all but
    absent / absent) and ``agreement_with_attribute`` = 1 - disagreements / with_attribute, which
    a snapshot of mostly unrelated profiles does not inflate."""
    from cohortlab.simulation.verify import CAUSES

    redact = redact or (lambda df: df)
    cohorts: dict[str, Any] = {}
    for c, v in results.items():
        if v is None:
            cohorts[c] = {"observed": False}
            continue
        aud = v.audience.set_index("audience")
        by_cause = {str(k): int(n) for k, n in zip(v.causes["cause"], v.causes["profiles"])}
        conf = v.confusion
        dis = v.disagreements
        listed = dis[["mpid", "simulated", "observed", "cause", "evidence", "detail"]].head(row_limit).copy()
        listed["mpid"] = listed["mpid"].map(lambda x: str(int(x)))
        names = v.names[v.names["profiles"] > 0][["attribute", "how", "profiles", "true", "false"]]
        both_absent = int(conf.loc["absent", "absent"]) if {"absent"} <= set(conf.index) & set(conf.columns) else 0
        with_attribute = int(v.compared) - both_absent  # either side has the attribute
        cohorts[c] = {
            "observed": True,
            "attribute": v.attribute,
            "snapshot_at": pd.Timestamp(v.snapshot_at).isoformat(),
            "snapshot_at_from": v.snapshot_at_from,
            "at": pd.Timestamp(v.at).isoformat(),
            "compared": int(v.compared),
            "disagreements": int(len(dis)),
            "agreement": float(v.agreement),
            "with_attribute": with_attribute,
            "agreement_with_attribute": _agreement(len(dis), with_attribute),
            "observed_true": int(aud.loc["= true", "observed"]),
            "simulated_true": int(aud.loc["= true", "simulated"]),
            "observed_false": int(aud.loc["= false", "observed"]),
            "simulated_false": int(aud.loc["= false", "simulated"]),
            "audience": _rows(v.audience),
            "confusion": [{"simulated": str(s), **{str(o): int(conf.loc[s, o]) for o in conf.columns}}
                          for s in conf.index],
            "by_cause": by_cause,
            "top_cause": _top_cause(by_cause),
            "names": _rows(names),
            "disagreement_rows": _rows(redact(listed)),
            "notes": list(v.notes),
            "orphans": int(getattr(v, "orphans_written", 0) or 0),  # written, no known MPID: not compared
        }
    observed = {c: v for c, v in cohorts.items() if v["observed"]}
    by_cause = {cause: sum(v["by_cause"].get(cause, 0) for v in observed.values()) for cause in CAUSES}
    compared = sum(v["compared"] for v in observed.values())
    with_attribute = sum(v["with_attribute"] for v in observed.values())
    disagreements = sum(v["disagreements"] for v in observed.values())
    totals = {
        "cohorts": len(cohorts),
        "cohorts_observed": len(observed),
        "observed_true": sum(v["observed_true"] for v in observed.values()),
        "simulated_true": sum(v["simulated_true"] for v in observed.values()),
        "compared": compared,
        "disagreements": disagreements,
        "agreement": _agreement(disagreements, compared) if observed else None,
        "with_attribute": with_attribute,
        "agreement_with_attribute": _agreement(disagreements, with_attribute) if observed else None,
        "by_cause": by_cause,
        "top_cause": _top_cause(by_cause),
        "orphans": sum(v.get("orphans", 0) for v in observed.values()),
    }
    return {"observed": bool(observed), "totals": totals, "cohorts": cohorts, "row_limit": row_limit}


def _agreement(disagreements: int, profiles: int) -> float:
    """The share of ``profiles`` that agree (1.0 when none was compared: nothing disagrees)."""
    return 1.0 - disagreements / profiles if profiles else 1.0


def _top_cause(by_cause: Mapping[str, int]) -> dict[str, Any] | None:
    """The cause with the most disagreements (the first in rule order on a tie), or None."""
    best = max(by_cause.items(), key=lambda kv: kv[1], default=(None, 0))  # max keeps the first of equals
    return {"cause": best[0], "profiles": int(best[1])} if best[1] else None


def verify_causes(v: Mapping[str, Any]) -> pd.DataFrame:
    """``cause, profiles`` of :func:`verify_figures` (a cohort's or the totals), the causes with
    disagreements only, in rule order: for the chart and the table."""
    rows = [(c, n) for c, n in v["by_cause"].items() if n]
    return pd.DataFrame(rows, columns=["cause", "profiles"])


def verify_audiences(f: Mapping[str, Any]) -> pd.DataFrame:
    """``cohort_name, observed, simulated`` (profiles with the attribute true) of the observed
    cohorts of :func:`verify_figures`: for the chart."""
    rows = [(c, v["observed_true"], v["simulated_true"]) for c, v in f["cohorts"].items() if v["observed"]]
    return pd.DataFrame(rows, columns=["cohort_name", "observed", "simulated"])
