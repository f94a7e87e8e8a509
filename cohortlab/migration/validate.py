"""Validation (docs/rules.md#migration): a plan's prediction against what exports taken after
the migration show, member by member, with the reason of every difference.

:func:`predict_at` writes the predicted status of every Mixpanel profile at an instant;
:func:`validate` joins it with the observed resolution of a cohort; :func:`reconcile` explains
why ``migrate compare`` and ``simulate`` give different rates for one cohort on one database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from cohortlab.engines.base import Engine
from cohortlab.errors import SettingsError
from cohortlab.identifiers import is_valid_mpid
from cohortlab.migration.model import REPEAT_DAYS, RunTables, profiles_pipeline, run_pipeline, status_pipeline
from cohortlab.migration.persons import prepare
from cohortlab.migration.plans import MigrationPlan
from cohortlab.migration.switch import history_plan
from cohortlab.migration.store import VALIDATION_SUMMARY_TABLE, VALIDATION_TABLE, replace_rows
from cohortlab.pipeline import sql_str, sql_ts
from cohortlab.settings import SyncSettings
from cohortlab.times import format_time, parse_naive_utc

ACTIVITIES = ("observed", "repeat")
# why a prediction and an observation differ, in plain words (in the order they are decided)
EXPLANATIONS = {
    "profile_deleted_since": "the exports send the predicted MPID, but its mParticle profile, in the prediction's "
                             "profiles, is gone from the observed ones: deleted since (no deletions projected)",
    "activity_after_export": "active after the export (the prediction counts activity up to its time)",
    "member_without_events": "no loaded event under this distinct_id (outside the model)",
    "not_keyed_by_plan": "events loaded under this distinct_id, but the plan keys this person's activity "
                         "under other distinct_ids (the exports followed another EIT timeline, or kept "
                         "a $device: profile the model merges into the person at their first identification)",
    "bad_mparticle_user_id": "$mparticle_user_id written by app code is not their MPID (no plan writes it)",
    "property_written_outside_plan": "$mparticle_user_id on the profile that the plan does not write",
    "remediation_not_in_exports": "the plan writes $mparticle_user_id (a Rule or SDK code), the exports do not "
                                  "have it: no such remediation ran",
    "event_property_missing": "the event rule's $mparticle_user_id is missing from their events",
    "event_property_not_predicted": "matched through an event's $mparticle_user_id (their MPID) that the prediction "
                                    "does not have: no event of the prediction's (--db's, as the plan keys them) "
                                    "under this distinct_id at or after the event identity cutoff; the exports "
                                    "hold events --db does not, or the plan's cutoff is later or off",
    "model_differs": "the model differs (no known cause)",
}


@dataclass
class ValidationResult:
    plan: str
    cohort: str
    at: datetime
    users: pd.DataFrame          # one row per cohort member: predicted vs observed
    confusion: pd.DataFrame      # predicted × observed (matched/unmatched) counts
    observed_match_rate: float
    predicted_match_rate: float
    differ: int
    differ_explained: dict[str, int]
    verdict: str

    def __str__(self) -> str:
        return self.verdict

    def __repr__(self) -> str:
        # the figures, not the members (a dataclass repr printed users' distinct_ids, emails among them)
        return (f"<ValidationResult of plan {self.plan!r} for {self.cohort!r} at {format_time(self.at)}: "
                f"{self.verdict}; .users, .differences, .confusion>")

    @property
    def differences(self) -> pd.DataFrame:
        return self.users[self.users["differs"]]

    @property
    def members(self) -> int:
        """The cohort's members compared (one row each in ``users``)."""
        return len(self.users)

    @property
    def predicted_matched(self) -> int:
        """Members predicted to match (the confusion table's first row): the count behind
        ``predicted_match_rate``, which every page and line reads, never a rate times members."""
        return int(self.confusion.loc["predicted matched"].sum())

    @property
    def observed_matched(self) -> int:
        """Members the exports show matched (the confusion table's first column)."""
        return int(self.confusion["observed matched"].sum())


def check_activity(activity: str) -> None:
    if activity not in ACTIVITIES:
        raise SettingsError(f"activity must be one of {', '.join(ACTIVITIES)}, not {activity!r}")


def predict_at(engine: Engine, plan: Any, at: Any, *, settings: Any = None, activity: str = "observed",
               repeat_days: int = REPEAT_DAYS, table: str | None = None, tables: RunTables | None = None) -> str:
    """Materialise the predicted status of every profile under ``plan`` at ``at`` (events with
    time <= at, as the resolution does) into ``table`` (default: the run's ``predicted``
    table); returns its name. ``activity="repeat"`` projects the loaded activity up to ``at``
    (a prediction made before the switch, validated against exports taken after it).
    ``tables``: the run whose intermediate tables to build and keep (default: a run of its own,
    whose tables are dropped once the prediction is written)."""
    plan = MigrationPlan.coerce(plan)
    st = SyncSettings.coerce(settings)
    at_ = parse_naive_utc(at)
    check_activity(activity)
    t = tables or RunTables()
    edge = at_ + timedelta(microseconds=1)
    out = table or t.name("predicted")
    try:
        prepare(engine, t, [plan], window_end=edge if activity == "repeat" else None,
                project=activity == "repeat", repeat_days=repeat_days, extra_bounds=[edge], keep=tables is not None)
        profiles = t.name("profiles_at")
        run_pipeline(engine, t, profiles_pipeline(plan, t, horizon=at_, observed_only=activity == "observed",
                                                  merge="export"), profiles)
        engine.materialise(out, status_pipeline(profiles, plan, st, at_, inclusive=True).sql(), temp=True)
    finally:
        if tables is None:  # a run of its own: only the prediction stays
            t.drop(engine)
    if tables is not None and out not in t.created:
        t.created.append(out)
    return out


def _observed_frame(observed: pd.DataFrame, cohort: str) -> tuple[pd.DataFrame, list[str]]:
    """The observed members of ``cohort``: the rows of that ``cohort_name`` when the frame has the
    column (resolutions of several cohorts stacked), every row when it holds one cohort. Several
    cohorts and none of them ``cohort`` (asked for by its id or an earlier name, where a
    resolution names a cohort by its current name) is an error, never the members of all. Not a
    DataFrame, or one without ``distinct_id`` and ``status``, is an error naming what is missing."""
    if not isinstance(observed, pd.DataFrame):
        raise SettingsError(f"observed: a DataFrame of the observed resolution (lab.resolution(...), or "
                            f"pd.read_parquet of --members-out's .parquet), not {type(observed).__name__}")
    missing = [c for c in ("distinct_id", "status") if c not in observed.columns]
    if missing:
        raise SettingsError(f"observed: the frame has no column {' or '.join(missing)} (a resolution's columns: "
                            f"distinct_id, status, gap_reason, identifier_source, identifier, mpid); it has "
                            f"{', '.join(map(str, list(observed.columns)[:8])) or 'none'}")
    obs = observed.copy()
    if "cohort_name" in obs.columns:
        names = set(obs["cohort_name"].dropna())
        if cohort in names:
            obs = obs[obs["cohort_name"] == cohort]
        elif len(names) > 1:
            shown = ", ".join(repr(n) for n in sorted(map(str, names))[:5])
            raise SettingsError(f"observed: the resolution holds several cohorts ({shown}) and none is named "
                                f"{cohort!r}: give the cohort by the name its rows carry (its current name), "
                                "or only its rows")
    keep = [c for c in ("distinct_id", "status", "gap_reason", "identifier_source", "identifier", "mpid")
            if c in obs.columns]
    obs = obs[keep].drop_duplicates("distinct_id")
    for c in keep:
        if c != "mpid":
            obs[c] = obs[c].astype("string")
    if "mpid" in keep:
        obs["mpid"] = exact_mpids(obs["mpid"])
    return obs.rename(columns={c: f"obs_{c}" for c in keep if c != "distinct_id"}), keep


def exact_mpids(col: pd.Series) -> pd.Series:
    """An observed resolution's ``mpid`` column as pandas ``Int64``, exactly: integers as they
    are, texts (a CSV read with ``dtype=str``) parsed as int64, empty or missing as NA. A
    floating-point column is refused with :class:`SettingsError`: it has already lost the last
    digits of every MPID above 2^53 (docs/rules.md#exact-numbers), and the comparison would
    report wrong MPIDs (``pd.read_csv`` makes one of an MPID column with an empty value)."""
    if pd.api.types.is_float_dtype(col):
        raise SettingsError(
            f"observed: column mpid is floating point ({col.dtype}), which cannot hold an MPID above 2^53 "
            "exactly; read it as text or Int64: pd.read_csv(path, dtype=str, keep_default_na=False), "
            "or the .parquet of --members-out")
    if pd.api.types.is_integer_dtype(col):
        return col.astype("Int64")
    values: list[Any] = []
    for v in col:
        if v is None or v is pd.NA or v == "":
            values.append(pd.NA)
        elif isinstance(v, int) and not isinstance(v, bool) or hasattr(v, "dtype") and v.dtype.kind in "iu":
            values.append(int(v))
        elif isinstance(v, str) and is_valid_mpid(v):
            values.append(int(v))
        else:
            raise SettingsError(f"observed: mpid {v!r} is not an MPID (an integer, or its decimal text)")
    return pd.Series(pd.array(values, dtype="Int64"), index=col.index, name=col.name)


def _comparison_sql(t: RunTables, predicted: str, observed: str, keep: list[str], at: datetime) -> str:
    """One row per observed member: the prediction, activity after ``at`` and why they differ."""
    src = "obs_identifier_source" if "identifier_source" in keep else "CAST(NULL AS VARCHAR)"
    ident = "obs_identifier" if "identifier" in keep else "CAST(NULL AS VARCHAR)"
    gap = "obs_gap_reason" if "gap_reason" in keep else "CAST(NULL AS VARCHAR)"
    ocols = ", ".join(f"o.obs_{c}" for c in keep if c != "distinct_id")
    return f"""
        WITH activity_after_export AS (
            SELECT pid, CAST(sum(n) AS BIGINT) AS events_after, min(t_min) AS next_activity
            FROM {t.activity} WHERE t_min > {sql_ts(at)} AND NOT projected GROUP BY pid),
        predicted AS (
            SELECT p.*, l.link FROM {predicted} p
            LEFT JOIN {t.links} l ON l.distinct_id = p.distinct_id),
        -- the member's own person, when it has loaded events (every distinct_id with events is
        -- in the links), whether or not the plan keys anything under its distinct_id
        member_persons AS (
            SELECT o.distinct_id, pm.pid
            FROM {observed} o
            JOIN {t.links} l ON l.distinct_id = o.distinct_id
            JOIN {t.persons} pm ON pm.mpid IS NOT DISTINCT FROM l.mpid AND pm.anon_id IS NOT DISTINCT FROM l.anon_id),
        member_predictions AS (
            SELECT o.distinct_id, {ocols},
                   p.pid, mp.pid IS NOT NULL AS has_events, p.mpid AS predicted_mpid, p.link,
                   coalesce(p.status, 'unmatched') AS predicted_status,
                   CASE WHEN p.pid IS NULL THEN 'not_predicted' ELSE p.gap_reason END AS predicted_gap_reason,
                   p.identifier_source AS predicted_identifier_source,
                   p.first_t AS first_seen, p.last_t AS last_seen, p.category AS predicted_category,
                   coalesce(l.events_after, 0) AS events_after, l.next_activity
            FROM {observed} o
            LEFT JOIN predicted p ON p.distinct_id = o.distinct_id
            LEFT JOIN member_persons mp ON mp.distinct_id = o.distinct_id
            LEFT JOIN activity_after_export l ON l.pid = coalesce(p.pid, mp.pid)),
        both_sides AS (
            SELECT m.*, coalesce(m.obs_status = 'matched', FALSE) AS observed_matched,
                   m.predicted_status = 'matched' AS predicted_matched
            FROM member_predictions m)
        SELECT b.*, CASE WHEN observed_matched THEN 'matched' ELSE 'unmatched' END AS observed_status,
               predicted_matched <> observed_matched AS differs,
               -- why prediction and observation differ (first that applies)
               CASE WHEN predicted_matched = observed_matched THEN NULL
                    -- the exports send the predicted MPID and find no profile of it, where the
                    -- prediction's profiles hold it: deleted in between (whatever else happened,
                    -- the member could not match)
                    WHEN predicted_matched AND {gap} = 'mpid_not_found' AND predicted_mpid IS NOT NULL
                         AND {ident} = CAST(predicted_mpid AS VARCHAR)
                         AND loaded.mpid IS NOT NULL
                         THEN 'profile_deleted_since'
                    WHEN events_after > 0 THEN 'activity_after_export'
                    WHEN pid IS NULL AND NOT has_events THEN 'member_without_events'
                    WHEN pid IS NULL THEN 'not_keyed_by_plan'
                    WHEN {src} IN ('mparticle_user_id', 'event_property') AND {ident} IS NOT NULL
                         AND predicted_mpid IS NOT NULL AND {ident} <> CAST(predicted_mpid AS VARCHAR)
                         THEN 'bad_mparticle_user_id'
                    WHEN {src} = 'mparticle_user_id' AND NOT predicted_matched THEN 'property_written_outside_plan'
                    WHEN predicted_identifier_source = 'mparticle_user_id' AND predicted_matched
                         AND {src} IS DISTINCT FROM 'mparticle_user_id' THEN 'remediation_not_in_exports'
                    WHEN {src} = 'distinct_id' AND predicted_identifier_source = 'event_property'
                         THEN 'event_property_missing'
                    -- the mirror: the exports match through the event rule's $mparticle_user_id
                    -- (the person's MPID, known to --db: another value is bad_mparticle_user_id,
                    -- above; a person without one in --db is no such case), the
                    -- prediction has no $mparticle_user_id for the profile (no event of --db's,
                    -- as the plan keys them, under it from the cutoff; or the plan's rule is off)
                    WHEN {src} = 'event_property' AND NOT predicted_matched
                         AND predicted_identifier_source IN ('distinct_id', 'none')
                         AND predicted_mpid IS NOT NULL AND {ident} = CAST(predicted_mpid AS VARCHAR)
                         THEN 'event_property_not_predicted'
                    ELSE 'model_differs' END AS explanation
        FROM both_sides b
        -- the predicted MPID among the prediction's mParticle profiles (those of this database)
        LEFT JOIN (SELECT DISTINCT mpid FROM mpa_profiles) loaded ON loaded.mpid = b.predicted_mpid
        ORDER BY b.distinct_id"""


# a verdict's count of members per reason, in words where the key's would read as code ("7 bad
# mparticle user id" for members the match-rates page calls "MPID rounded through a float")
_VERDICT_WORDS = {
    "bad_mparticle_user_id": "with a $mparticle_user_id that is not their MPID",
    "event_property_missing": "without the event rule's $mparticle_user_id",
    "event_property_not_predicted": "matched through an event's $mparticle_user_id the prediction does not have",
    "property_written_outside_plan": "with a $mparticle_user_id the plan does not write",
    "remediation_not_in_exports": "whose remediation the exports do not show",
    "profile_deleted_since": "whose mParticle profile was deleted since",
}


def _reason_words(key: str, n: int) -> str:
    """A reason key in words for ``n`` members: ``member_without_events`` → "members without
    events" (2) or "member without events" (1); the $mparticle_user_id reasons and a deleted
    profile by ``_VERDICT_WORDS``."""
    if key in _VERDICT_WORDS:
        return _VERDICT_WORDS[key]
    words = key.replace("_", " ")
    return f"members{words[len('member'):]}" if n != 1 and words.startswith("member ") else words


def _verdict(n: int, obs_rate: float, pred_rate: float, differ: int, expl: dict[str, int]) -> str:
    if not n:
        return "no cohort members to compare"
    from cohortlab.glossary import pct  # as the reports write it: never 100.0% with an unmatched member

    verdict = (f"observed match rate {pct(obs_rate)}, predicted {pct(pred_rate)}; "
               f"{differ:,} {'member differs' if differ == 1 else 'members differ'}")
    active = int(expl.get("activity_after_export", 0))
    if differ == 1:
        verdict += f", {'with' if active else 'without'} activity after the export"
    elif differ:
        verdict += f", {active:,} of them with activity after the export"
        rest = {k: v for k, v in expl.items() if k != "activity_after_export"}
        if rest:
            verdict += " (" + ", ".join(f"{v:,} {_reason_words(k, v)}" for k, v in sorted(rest.items())) + ")"
    return verdict


def observed_members(lab: Any, cohort: str, at: Any = None,
                     settings: Any = None) -> tuple[pd.DataFrame, datetime, str]:
    """The observed side of a validation: what the exports loaded in ``lab`` show for ``cohort``
    at ``at`` (default: its latest snapshot), every member resolved at that time
    (``resolution_time="as_of"``), that time, and the cohort as ``lab`` lists it (its current
    name there, or its id when another cohort holds that name now: ``SimulationResult.listed_as``,
    the cohort the simulation found, not looked up again). ``Lab.validate_migration``, the
    report's ``observed_db`` and ``migrate validate --observed-db`` read it alike."""
    sim = lab.simulate(cohort, at, SyncSettings.coerce(settings).replace(resolution_time="as_of"))
    return sim.resolution, sim.at, sim.listed_as


def validate_against(lab: Any, obs_lab: Any, plan: Any, cohort: str, at: Any = None, *, settings: Any = None,
                     activity: str = "observed", repeat_days: int = REPEAT_DAYS,
                     observed_label: str | None = None, close_observed: bool = False) -> ValidationResult:
    """:func:`validate` of ``plan``'s prediction from ``lab`` against what the exports loaded in
    ``obs_lab`` show (:func:`observed_members`; ``obs_lab`` may be ``lab`` itself), at ``at``
    (default: the cohort's latest snapshot in ``obs_lab``). The result is named as ``obs_lab``
    lists the cohort (``.cohort``; its time ``.at``), never looked up again in ``lab``
    (docs/migration.md#validation). ``observed_label`` (the command's ``--observed-db``) heads
    the message of an error of the observed side, raised as :class:`SettingsError` (the cohort
    unknown there, no members at ``at``); without it that error is raised as it is.
    ``close_observed``: close ``obs_lab`` once its members are read (a lab opened for this one
    validation, as ``migrate validate --observed-db`` opens it), so that its database and its
    simulation's tables are given back before the prediction runs in ``lab``.
    ``Lab.validate_migration``, ``migrate validate`` and the report's ``observed_db`` read it alike."""
    plan = MigrationPlan.coerce(plan)  # a file of several plans is refused now, not after the simulation
    try:
        observed, at_, listed = observed_members(obs_lab, cohort, at, settings)
    except ValueError as e:
        if observed_label is None:
            raise
        raise SettingsError(f"{observed_label}: {e}") from e
    if close_observed and obs_lab is not lab:
        obs_lab.close()
    return validate(lab.engine, plan, observed, listed, at_, settings=settings, activity=activity,
                    repeat_days=repeat_days)


def validate(engine: Engine, plan: Any, observed: pd.DataFrame, cohort: str, at: Any, *,
             settings: Any = None, store: bool = True, activity: str = "observed",
             repeat_days: int = REPEAT_DAYS, keep_tables: bool = False) -> ValidationResult:
    """Compare the prediction of ``plan`` at ``at`` with ``observed`` (the resolution table of
    ``cohort`` at ``at``: distinct_id, status, gap_reason[, identifier_source, identifier]) per
    member. ``activity="repeat"`` when the loaded events end before ``at`` (see predict_at).
    With ``store``, the rows of this (plan, cohort, at) in ``migration_validation`` and
    ``migration_validation_summary`` are replaced."""
    plan = MigrationPlan.coerce(plan)
    at_ = parse_naive_utc(at)
    t = RunTables()
    try:
        predicted = predict_at(engine, plan, at_, settings=settings, activity=activity, repeat_days=repeat_days,
                               tables=t)
        obs, keep = _observed_frame(observed, cohort)
        observed_table = t.name("observed")
        engine.materialise_frame(observed_table, obs, temp=True)
        t.created.append(observed_table)
        df = engine.query_df(_comparison_sql(t, predicted, observed_table, keep, at_))
        df = df.drop_duplicates("distinct_id").reset_index(drop=True)
        _check_same_world(engine, df, observed_table, cohort, at_)
        res = _result(plan, cohort, at_, df)
        if store:
            _store(engine, t, res)
    finally:
        if not keep_tables:
            t.drop(engine)
    return res


def _check_same_world(engine: Engine, df: pd.DataFrame, observed: str, cohort: str, at: datetime) -> None:
    """A :class:`SettingsError` when the observed members (table ``observed``) are of another
    world: none has loaded events here or is a profile the plan predicts, and none of their
    observed MPIDs is a loaded mParticle profile. The comparison then had nothing on one side: a
    predicted 0.0% against the observed rate, every member "without events"."""
    if not len(df) or (df["has_events"] | df["pid"].notna()).any() or "obs_mpid" not in df.columns:
        return
    mpids, known = engine.query_rows(f"""
        SELECT count(DISTINCT o.obs_mpid), count(DISTINCT p.mpid)
        FROM {observed} o LEFT JOIN mpa_profiles p ON p.mpid = o.obs_mpid""")[0]
    if not mpids or known:
        return
    raise SettingsError(
        f"the {len(df):,} members of {cohort!r} observed at {format_time(at)} are of another world: none has "
        f"loaded events in this database, and none of their {mpids:,} observed MPIDs is a loaded mParticle "
        "profile; check the observed exports (observed=, the report's observed_db / observed_data)")


def _result(plan: MigrationPlan, cohort: str, at: datetime, df: pd.DataFrame) -> ValidationResult:
    n = len(df)
    conf = pd.crosstab(df["predicted_matched"].map({True: "predicted matched", False: "predicted unmatched"}),
                       df["observed_matched"].map({True: "observed matched", False: "observed unmatched"}))
    conf = conf.reindex(index=["predicted matched", "predicted unmatched"],
                        columns=["observed matched", "observed unmatched"], fill_value=0)
    obs_rate = float(df["observed_matched"].mean()) if n else float("nan")
    pred_rate = float(df["predicted_matched"].mean()) if n else float("nan")
    differ = int(df["differs"].sum())
    expl = {k: int(v) for k, v in df.loc[df["differs"], "explanation"].value_counts().to_dict().items()}
    return ValidationResult(plan.name, cohort, at, df, conf, obs_rate, pred_rate, differ, expl,
                            _verdict(n, obs_rate, pred_rate, differ, expl))


def _store(engine: Engine, t: RunTables, res: ValidationResult) -> None:
    out = res.users.copy()
    out.insert(0, "plan", res.plan)
    out.insert(1, "cohort_name", res.cohort)
    out.insert(2, "as_of", pd.Timestamp(res.at))
    conf = res.confusion
    summ = pd.DataFrame([{
        "plan": res.plan, "cohort_name": res.cohort, "as_of": pd.Timestamp(res.at), "members": res.members,
        "observed_match_rate": res.observed_match_rate, "predicted_match_rate": res.predicted_match_rate,
        "both_matched": int(conf.iloc[0, 0]), "predicted_only": int(conf.iloc[0, 1]),
        "observed_only": int(conf.iloc[1, 0]), "both_unmatched": int(conf.iloc[1, 1]),
        "differ": res.differ, "verdict": res.verdict}])
    same = f"plan = {sql_str(res.plan)} AND cohort_name = {sql_str(res.cohort)} AND as_of = {sql_ts(res.at)}"
    for table, frame in ((VALIDATION_TABLE, out), (VALIDATION_SUMMARY_TABLE, summ)):
        new = t.name(f"new_{table}")
        engine.materialise_frame(new, frame, temp=True)
        t.created.append(new)
        replace_rows(engine, table, [new], same)


# --------------------------------------------------------------------------- reconcile
@dataclass
class Reconciliation:
    """Why the what-if's rate for a cohort differs from the simulation's on the same database.

    The what-if counts *Mixpanel profiles with events* of the people behind the cohort's members
    (all their profiles, split ones too) and assumes every ``$mparticle_user_id`` is written by
    the plan or the event rule, so is the person's MPID. ``simulate`` counts the *members* as
    the exports show them. The steps from one to the other:

    ``model_rate`` (profiles with events) → ``members_rate`` (the same model over the members,
    a member without events counts as unmatched) → ``simulate_rate`` (what ``simulate`` finds);
    ``members_without_events`` explains the first step, ``differences`` (reason → members:
    ``bad_mparticle_user_id`` = a value written by app code, ...) the second."""
    cohort: str
    at: datetime
    plan: str
    members: int
    members_without_events: int
    members_rate: float
    simulate_rate: float
    differences: dict[str, int] = field(default_factory=dict)
    validation: ValidationResult | None = None

    @property
    def text(self) -> str:
        lines = [f"simulate counts the {self.members:,} members of {self.cohort!r} at {format_time(self.at)}: "
                 f"{self.simulate_rate:.1%} matched; the what-if model, on {self.plan}, gives the same members "
                 f"{self.members_rate:.1%}."]
        n = self.members_without_events
        if n:
            lines.append(f"{n:,} {'member has' if n == 1 else 'members have'} no loaded events: outside the "
                         f"what-if's population (profiles with events), counted here as unmatched.")
        for k, v in sorted(self.differences.items()):
            lines.append(f"{v:,} {'member differs' if v == 1 else 'members differ'}: {EXPLANATIONS.get(k, k)} [{k}]")
        if 2 * self.differences.get("event_property_missing", 0) > self.members:  # most: the plans' rates mislead
            lines.append("note: most members lack the event rule's $mparticle_user_id, which every plan assumes on "
                         "each event at or after the event identity cutoff; if these exports' events never carry it, "
                         "compare the plans with `event_identity_cutoff: null` in the settings (--settings)")
        return "\n".join(lines)


def reconcile(engine: Engine, observed: pd.DataFrame, cohort: str, at: Any, *, settings: Any = None) -> Reconciliation:
    """Explain the difference between ``simulate``'s match rate of ``cohort`` at ``at``
    (``observed``: its resolution table) and the what-if's, member by member, under the plan the
    data followed (:func:`cohortlab.migration.switch.history_plan`); nothing is stored."""
    plan = history_plan(engine, settings)
    v = validate(engine, plan, observed, cohort, at, settings=settings, store=False)
    ids = v.users[["distinct_id"]].astype("string")
    t = RunTables()
    try:
        engine.materialise_frame(t.name("members"), ids, temp=True)
        t.created.append(t.name("members"))
        without = engine.query_rows(f"""
            SELECT count(*) FROM {t.name('members')} m
            WHERE NOT EXISTS (SELECT 1 FROM mp_events e WHERE e.distinct_id = m.distinct_id)""")[0][0]
    finally:
        t.drop(engine)
    return Reconciliation(cohort, v.at, plan.name, len(v.users), int(without), v.predicted_match_rate,
                          v.observed_match_rate, dict(v.differ_explained), v)


__all__ = ["ValidationResult", "predict_at", "observed_members", "validate", "validate_against", "Reconciliation", "reconcile", "EXPLANATIONS"]
