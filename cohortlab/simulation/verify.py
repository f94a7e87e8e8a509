"""Verify the simulation against what mParticle holds (docs/rules.md#observed-state).

An mParticle snapshot (Profile API JSON, CSV, Events API batches: table ``mpa_attributes``)
may carry the cohort attribute. For every profile, the **observed** value (``true`` / ``false``
/ ``absent``) of the attribute named by ``attribute_template`` is compared with the
**simulated** value after the last run at or before ``at`` (:func:`cohortlab.simulation.sync.simulate`).

Which profiles are compared: every profile the simulation wrote, and every profile of the
snapshot that carries the attribute under one of the cohort's known names. A profile that holds
neither value is an agreement (``absent`` / ``absent``).

Which profiles are *in the snapshot*: those with a row in ``mpa_attributes`` under a known name
of the cohort, and every profile whose record (``mpa_profiles.load_id``) comes from a load that
carries such an attribute for some profile (so a snapshot profile without the attribute is
observed ``absent``): a snapshot file that held it (``mpa_snapshot_names``), also when a newer
snapshot replaced every profile that held it there, or a load whose kept rows hold it. A profile
loaded only from inputs without the attribute (an identity CSV, say) is not in the snapshot.

Known names of the cohort: its name and every other name recorded for its id (a renamed cohort:
``mp_cohorts``, ``mp_cohort_snapshots``, ``mp_webhook_pages``), each through the template and in
the older form ``Mixpanel - {cohort_name}``. The observed value is the one under the expected
name (what an audience on ``<attribute> = true`` counts); values under the other names are
reported beside it.

The snapshot time (``snapshot_at``): given, else the latest ``as_of`` option of the loads that
carry the attribute, else the latest ``last_stored_at`` of the snapshot's profiles (the export
is at least as recent as its most recently stored profile), else the cohort's latest time. A
profile of the snapshot whose load records its own ``as_of`` was captured then; one the snapshot
does not hold (loaded only from other inputs) at the snapshot time. ``at`` (the simulation time)
defaults to the snapshot time.

Each disagreement gets the first cause that applies:

``snapshot_before_last_run``
    the profile was captured (``captured_at``) before the run that wrote the simulated value
    (``changed_at``: the run that last changed the profile's value; a later run that wrote the
    same value again, a refresh writing ``true`` again, is not it: the snapshot already had to
    show that value), and it shows the value the simulation held at its capture (after the last
    run at or before ``captured_at``, read from the run's ``state`` and ``runs`` tables). One that
    shows another disagreed at its capture too: the next causes are judged on the value at the
    capture (``pause_not_modelled`` when that was ``true``).
``attribute_name_differs``
    the profile has no value under the expected name but one under another known name.
``profile_missing_in_snapshot``
    the profile is not in the snapshot.
``pause_not_modelled``
    simulated ``true`` (at the capture time, for a profile captured before the run that last
    changed it), observed ``false`` or absent: a run should have written ``true``.
``unexplained``
    none of the above.

The comparison is stored as table ``verify_profiles`` (one row per compared profile,
:data:`PROFILE_COLUMNS`; the next ``verify`` replaces it): counts come from it in SQL, and only the
disagreements are fetched into pandas, so a million profiles stay cheap.

``detail`` says what the data shows, and ``evidence`` names two facts when the data shows them:
``identity_changed`` (a current member holds one of the profile's user identities, as its
distinct_id or email, but resolves elsewhere) and ``profile_deleted`` (no mParticle profile with
that MPID is loaded). Identifiers that are personal data (emails, phone numbers) are replaced by
their pseudonyms (:mod:`cohortlab.privacy`) unless ``show_personal_data``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from cohortlab.engines.base import Engine
from cohortlab.errors import CohortlabError
from cohortlab.escaping import one_line
from cohortlab.glossary import REASON_WORDS, words_sql
from cohortlab.pipeline import sql_str, sql_ts
from cohortlab.settings import SyncSettings
from cohortlab.times import format_instant, naive_utc, parse_time, to_utc

if TYPE_CHECKING:
    from cohortlab.simulation.membership import CohortRef

VALUES = ("true", "false", "absent")
CAUSES = (
    "snapshot_before_last_run",
    "attribute_name_differs",
    "profile_missing_in_snapshot",
    "pause_not_modelled",
    "unexplained",
)
EVIDENCE = ("identity_changed", "profile_deleted")
OLD_TEMPLATE = "Mixpanel - {cohort_name}"
PROFILE_COLUMNS = [
    "mpid", "simulated", "observed", "agree", "cause", "evidence", "detail", "in_snapshot",
    "other_name", "other_value", "last_write_at", "captured_at", "last_stored_at", "changed_at",
]
RULE = "docs/rules.md#observed-state"

_SIM = "_verify_simulated"
_NAMES = "_verify_names"
_MEMBERS = "_verify_members"
_HISTORY = "_verify_history"  # each linked profile's changes: (mpid, run_at, is_true, is_write, is_change)
# the loads that carry one of the cohort's names: a snapshot file that held it (mpa_snapshot_names:
# also on records that a newer snapshot of the same MPID replaced, so the file's other profiles are
# still observed without it), or any load whose kept rows hold it (Events API batches)
_OBS_LOADS = f"""SELECT a.load_id FROM mpa_attributes a JOIN {_NAMES} n ON n.name = a.name
        UNION SELECT s.load_id FROM mpa_snapshot_names s JOIN {_NAMES} n ON n.name = s.name"""


class VerifyError(CohortlabError, ValueError):
    """Nothing to verify (no observed attribute), or a bad parameter."""


@dataclass
class VerifyResult:
    """Observed vs simulated for one cohort. The counts are pandas; ``disagreements`` (the profiles
    that differ, with cause, evidence and detail) is fetched at once; ``profiles`` (every compared
    profile, :data:`PROFILE_COLUMNS`) is read on first use from the table ``verify_profiles``,
    which the next ``verify`` on the same database replaces."""

    cohort: str
    attribute: str
    snapshot_at: datetime
    snapshot_at_from: str
    at: datetime
    confusion: pd.DataFrame
    audience: pd.DataFrame
    causes: pd.DataFrame
    names: pd.DataFrame
    disagreements: pd.DataFrame
    listed: int
    both_absent: int
    orphans_written: int
    simulation: Any = None
    notes: list[str] = field(default_factory=list)
    engine: Any = field(default=None, repr=False)
    table: str = field(default="verify_profiles", repr=False)
    _profiles: pd.DataFrame | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        # the figures, not the frames (the disagreements' detail names members)
        n = int(self.causes["profiles"].sum()) if "profiles" in self.causes else len(self.disagreements)
        return (f"<VerifyResult of {self.cohort!r} (attribute {self.attribute!r}), snapshot at "
                f"{_fmt(self.snapshot_at)} UTC: {n:,} profile(s) disagree; .confusion, .audience, .causes, "
                f".disagreements, .profiles>")

    @property
    def profiles(self) -> pd.DataFrame:
        if self._profiles is None:
            self._profiles = _fetch(self.engine, "TRUE", self.table)
        return self._profiles

    def profile(self, mpid: int) -> pd.Series | None:
        """The compared row of one profile (None when not listed: absent on both sides, no cohort name)."""
        if self._profiles is not None:
            rows = self._profiles[self._profiles.mpid == int(mpid)]
        else:
            rows = _fetch(self.engine, f"mpid = {int(mpid)}", self.table)
        return rows.iloc[0] if len(rows) else None

    @property
    def compared(self) -> int:
        """Profiles compared: those listed (simulated or observed) and those absent on both sides."""
        return self.listed + self.both_absent

    @property
    def agreement(self) -> float:
        n = self.compared
        return 1.0 if n == 0 else 1.0 - len(self.disagreements) / n

    def summary(self) -> dict[str, Any]:
        aud = self.audience.set_index("audience")
        return {
            "cohort": self.cohort,
            "attribute": self.attribute,
            "snapshot_at": self.snapshot_at,
            "at": self.at,
            "compared": self.compared,
            "disagreements": len(self.disagreements),
            "agreement": round(self.agreement, 6),
            "observed_true": int(aud.loc["= true", "observed"]),
            "simulated_true": int(aud.loc["= true", "simulated"]),
            **{f"cause:{c}": int(n) for c, n in zip(self.causes.cause, self.causes.profiles)},
        }

    def to_text(self, limit: int = 20) -> str:
        return format_verify(self, limit)


def _fetch(engine: Engine, where: str, table: str = "verify_profiles") -> pd.DataFrame:
    order = " ".join(f"WHEN {sql_str(c)} THEN {i}" for i, c in enumerate(CAUSES))
    df = engine.query_df(
        f"SELECT {', '.join(PROFILE_COLUMNS)} FROM {table} WHERE {where} "
        f"ORDER BY agree, CASE cause {order} END, mpid"
    )
    df["mpid"] = df["mpid"].astype("int64")
    return df


# ----------------------------------------------------------------------------- names
def known_names(engine: Engine, cohort: str, ids: list[str]) -> list[str]:
    """The cohort's name first, then every other name recorded for one of its ids."""
    others: list[str] = []
    if ids:
        id_list = ", ".join(sql_str(i) for i in ids)
        rows = engine.query_rows(
            f"""
            SELECT name, min(first_seen) AS first_seen FROM (
                SELECT name, created AS first_seen FROM mp_cohorts WHERE cohort_id IN ({id_list})
                UNION ALL SELECT cohort_name, as_of FROM mp_cohort_snapshots WHERE cohort_id IN ({id_list})
                UNION ALL SELECT cohort_name, received_at FROM mp_webhook_pages WHERE cohort_id IN ({id_list})
            ) WHERE name IS NOT NULL GROUP BY name ORDER BY first_seen NULLS LAST, name
            """
        )
        others = [r[0] for r in rows if r[0] != cohort]
    return [cohort] + others


def attribute_names(settings: SyncSettings, names: list[str]) -> list[tuple[str, str]]:
    """(attribute name, how it relates) — the expected one first, then the others, no repeats."""
    expected = settings.attribute_name(names[0])
    out: dict[str, str] = {expected: "expected"}
    for i, n in enumerate(names):
        for template, how in ((settings.attribute_template, "template"), (OLD_TEMPLATE, "older form"), ("{cohort_name}", "name")):
            a = template.format(cohort_name=n)
            if a not in out and len(a) <= 256:
                out[a] = how if i == 0 else f"{how} of the earlier name {n!r}"
    return list(out.items())


# ----------------------------------------------------------------------------- snapshot time
def detect_snapshot_at(engine: Engine, fallback: datetime | None) -> tuple[datetime | None, str]:
    """(time, where it came from) of the observed snapshot; reads the registered names table."""
    row = engine.query_rows(
        f"""
        WITH obs_loads AS ({_OBS_LOADS})
        SELECT
          (SELECT max(TRY_CAST(json_extract_string(l.options, '$.as_of') AS TIMESTAMP))
             FROM loads l JOIN obs_loads o ON o.load_id = l.load_id),
          (SELECT max(p.last_stored_at) FROM mpa_profiles p
             WHERE p.load_id IN (SELECT load_id FROM obs_loads)
                OR p.mpid IN (SELECT a.mpid FROM mpa_attributes a JOIN {_NAMES} n ON n.name = a.name))
        """
    )[0]
    if row[0] is not None:
        return to_utc(row[0]), "the as_of of the mParticle load"
    if row[1] is not None:
        return to_utc(row[1]), "the latest last_stored_at of the snapshot's profiles"
    return fallback, "unknown: the cohort's latest snapshot/webhook time is assumed"


# ----------------------------------------------------------------------------- comparison
def _only(column: str, mpids: list[int] | None) -> str:
    """SQL condition: ``column`` is one of ``mpids`` (TRUE when the comparison is not restricted)."""
    if mpids is None:
        return "TRUE"
    return f"{column} IN ({', '.join(str(int(m)) for m in mpids)})" if mpids else "FALSE"


def _profiles_sql(snapshot_at: datetime, only: list[int] | None = None, history: bool = True) -> str:
    """One row per compared profile (see the module docstring for every rule); ``only``: just
    these MPIDs (explain one user). ``history``: ``_HISTORY`` holds the simulation's changes per
    profile, which give the simulated value at a capture time before the last change (without it,
    a stand-in simulation: the value at ``at`` is taken for it)."""
    if history:  # the profiles captured before the run that last changed them: their value at the capture
        at_capture = f"""
    late AS (SELECT mpid, captured_at FROM joined WHERE changed_at > captured_at),
    at_capture AS (
        -- the state after the last run at or before the capture (state rows: the runs that wrote or
        -- changed the profile's membership); absent until its first write
        SELECT l.mpid, CASE WHEN sum(h.is_write) > 0 THEN arg_max(h.is_true, h.run_at) = 1 END AS cap_value,
               max(CASE WHEN h.is_change = 1 THEN h.run_at END) AS cap_changed_at
        FROM late l JOIN {_HISTORY} h ON h.mpid = l.mpid AND h.run_at <= l.captured_at
        GROUP BY l.mpid
    ),"""
        cap_join = "LEFT JOIN at_capture c ON c.mpid = j.mpid"
        cap_cols = ("CASE WHEN j.changed_at > j.captured_at THEN c.cap_value ELSE j.sim_value END AS cap_value, "
                    "CASE WHEN j.changed_at > j.captured_at THEN c.cap_changed_at ELSE j.changed_at END AS cap_changed_at")
    else:
        at_capture, cap_join = "", ""
        cap_cols = "j.sim_value AS cap_value, j.changed_at AS cap_changed_at"
    return f"""
    WITH
    obs AS (
        -- the last value of each (profile, known name); a later load or line wins.
        -- code: 2 true, 1 false, 0 another value (kept as text)
        SELECT a.mpid, a.name, any_value(n.expected) AS expected, any_value(n.pos) AS pos,
               arg_max(CASE WHEN a.value_bool THEN 2 WHEN NOT a.value_bool THEN 1 ELSE 0 END,
                       coalesce(a.load_id, 0) * 4294967296 + coalesce(a.line, 0)) AS code,
               max(CASE WHEN a.value_bool IS NULL THEN CAST(a.value AS VARCHAR) END) AS other_text
        FROM mpa_attributes a JOIN {_NAMES} n ON n.name = a.name
        WHERE {_only('a.mpid', only)}
        GROUP BY a.mpid, a.name
    ),
    observed AS (
        SELECT mpid,
               bool_or(expected) AS has_expected,
               max(CASE WHEN expected THEN code END) AS expected_code,
               max(CASE WHEN expected AND code = 0 THEN other_text END) AS value_text,
               arg_min(CASE WHEN NOT expected THEN name END, CASE WHEN NOT expected THEN pos END) AS other_name,
               -- a CASE, not a list index: DuckDB lists start at 1, Spark arrays at 0, and sqlglot
               -- shifts only literal indexes
               arg_min(CASE WHEN NOT expected THEN CASE code WHEN 2 THEN 'true' WHEN 1 THEN 'false' ELSE 'other' END END,
                       CASE WHEN NOT expected THEN pos END) AS other_value
        FROM obs GROUP BY mpid
    ),
    obs_loads AS ({_OBS_LOADS}),
    load_times AS (
        SELECT l.load_id, l.load_id IN (SELECT load_id FROM obs_loads) AS carries,
               TRY_CAST(json_extract_string(l.options, '$.as_of') AS TIMESTAMP) AS load_as_of
        FROM loads l
    ),
    joined AS (
        -- a profile the snapshot does not hold (loaded only from other inputs) was not captured
        -- by it: the snapshot's time, never the time of the load it came from
        SELECT *, CASE WHEN in_snapshot THEN coalesce(load_as_of, {sql_ts(snapshot_at)})
                       ELSE {sql_ts(snapshot_at)} END AS captured_at
        FROM (
            SELECT coalesce(s.mpid, o.mpid) AS mpid, s.value AS sim_value, s.last_write_at, s.changed_at,
                   p.mpid IS NOT NULL AS profile_loaded, p.last_stored_at,
                   p.mpid IS NOT NULL AND (coalesce(ol.carries, FALSE) OR o.mpid IS NOT NULL) AS in_snapshot,
                   ol.load_as_of, coalesce(o.has_expected, FALSE) AS has_expected, o.expected_code, o.value_text,
                   o.other_name, o.other_value
            FROM (SELECT * FROM {_SIM} WHERE {_only('mpid', only)}) s
            FULL OUTER JOIN observed o ON o.mpid = s.mpid
            LEFT JOIN mpa_profiles p ON p.mpid = coalesce(s.mpid, o.mpid)
            LEFT JOIN load_times ol ON ol.load_id = p.load_id
        ) x
    ),{at_capture}
    valued AS (
        SELECT *,
               CASE WHEN sim_value IS NULL THEN 'absent' WHEN sim_value THEN 'true' ELSE 'false' END AS simulated,
               CASE WHEN cap_value IS NULL THEN 'absent' WHEN cap_value THEN 'true' ELSE 'false' END AS at_capture,
               CASE WHEN NOT in_snapshot OR NOT has_expected THEN 'absent'
                    WHEN expected_code = 2 THEN 'true' WHEN expected_code = 1 THEN 'false' ELSE 'other' END AS observed
        FROM (SELECT j.*, {cap_cols} FROM joined j {cap_join}) x
    )
    -- a profile captured before the run that last changed it: the snapshot explains the disagreement
    -- only when the simulation held the observed value at the capture; else the next cause, judged on
    -- the value at the capture (at_capture; the simulated one for every other profile)
    SELECT mpid, simulated, observed, simulated = observed AS agree,
           CASE WHEN simulated = observed THEN NULL
                WHEN changed_at > captured_at AND at_capture = observed THEN 'snapshot_before_last_run'
                WHEN in_snapshot AND NOT has_expected AND other_name IS NOT NULL THEN 'attribute_name_differs'
                WHEN NOT in_snapshot THEN 'profile_missing_in_snapshot'
                WHEN at_capture = 'true' AND observed IN ('false', 'absent') THEN 'pause_not_modelled'
                ELSE 'unexplained' END AS cause,
           in_snapshot, profile_loaded, other_name, other_value, value_text, last_write_at, captured_at,
           last_stored_at, changed_at, at_capture, cap_changed_at
    FROM valued
    """


def _both_absent_sql() -> str:
    """Snapshot profiles with no value on either side (agreements not listed one by one)."""
    return f"""
    WITH obs_loads AS ({_OBS_LOADS})
    SELECT count(*) FROM mpa_profiles p
    WHERE p.load_id IN (SELECT load_id FROM obs_loads)
      AND p.mpid NOT IN (SELECT mpid FROM {_SIM})
      AND p.mpid NOT IN (SELECT a.mpid FROM mpa_attributes a JOIN {_NAMES} n ON n.name = a.name)
    """


def _unregister(engine: Engine, name: str) -> None:
    """Forget ``name``: a registered frame or a temporary view."""
    con = getattr(engine, "con", None)
    if con is not None and hasattr(con, "unregister"):
        try:
            con.unregister(name)
        except Exception:  # pragma: no cover - already gone
            pass
    try:
        engine.execute(f"DROP VIEW IF EXISTS {name}")
    except Exception:  # pragma: no cover - a registered frame of another kind
        pass


def _database_key(engine: Engine) -> str:
    from cohortlab.privacy import database_key

    return database_key(engine)


_safe = one_line
_fmt = format_instant


def _details_sql(engine: Engine, show_personal_data: bool, shown: "_ShownNames", key: str) -> str:
    """``verify_compared`` (the comparison) with ``detail`` and ``evidence`` for each disagreement:
    what the data shows for its cause, and the identity-changed evidence (at most three members
    named per profile; personal values replaced by pseudonyms, :mod:`cohortlab.privacy`, unless
    ``show_personal_data``; the attribute names of ``shown``, :func:`_shown_names`, too). ``key``:
    the database's pseudonym key (read once by the caller for both)."""
    from cohortlab.privacy import Redactor, known_personal_among_sql

    other_name = shown.sql("c.other_name")

    def ts(col: str) -> str:
        return f"coalesce(strftime({col}, '%Y-%m-%d %H:%M:%S'), 'unknown')"

    redactor = Redactor(show=show_personal_data, key=key)
    shown = redactor.sql("m.member", "known_personal")
    quote = "''''"  # one quote character, as a SQL literal

    def shown_value(col: str) -> str:
        """An observed attribute value (JSON text: a string in its quotes), its pseudonym when the
        value inside the quotes is an email or a phone number."""
        return redactor.sql(f"regexp_replace({col}, '^\"|\"$', '', 'g')", otherwise=col)

    return f"""
    WITH
    disagreeing AS (SELECT mpid FROM verify_compared WHERE NOT agree),
    ids AS (
        SELECT i.mpid, i.identity_type, i.value FROM mpa_identities i
        WHERE i.kind = 'user' AND i.mpid IN (SELECT mpid FROM disagreeing)
    ),
    holders AS (
        SELECT ids.mpid, ids.identity_type, m.distinct_id AS member, m.email AS member_email, m.mpid AS now_mpid,
               m.status, m.gap_reason
        FROM ids JOIN {_MEMBERS} m ON m.distinct_id = ids.value
        UNION
        SELECT ids.mpid, ids.identity_type, m.distinct_id, m.email, m.mpid, m.status, m.gap_reason
        FROM ids JOIN {_MEMBERS} m ON m.email = ids.value
    ),
    known_personal AS (  -- the database's personal values among the members named (not all of them)
        {known_personal_among_sql("(SELECT member FROM holders)")}
    ),
    notes AS (  -- the first three notes (one per member, naming every identity it holds) of each profile
        SELECT mpid, count(*) AS n, string_agg(note, '; ' ORDER BY k) FILTER (WHERE k <= 3) AS text
        FROM (
            SELECT mpid, note, row_number() OVER (PARTITION BY mpid ORDER BY member, note) AS k
            FROM (
                SELECT m.mpid, m.member,
                       'identity changed: member ' || {shown} || ' holds this profile' || {quote} || 's '
                       || string_agg(DISTINCT m.identity_type, ' and ' ORDER BY m.identity_type)
                       || ' but now resolves to '
                       || CASE WHEN m.now_mpid IS NOT NULL THEN 'MPID ' || CAST(m.now_mpid AS VARCHAR)
                               ELSE 'nothing (' || m.status || ': '
                                    || {words_sql(REASON_WORDS, 'm.gap_reason')} || ')' END AS note
                FROM holders m WHERE m.now_mpid IS NULL OR m.now_mpid <> m.mpid
                GROUP BY m.mpid, m.member, m.now_mpid, m.status, m.gap_reason
            ) x
        ) y GROUP BY mpid
    )
    SELECT c.mpid, c.simulated, c.observed, c.agree, c.cause,
           nullif(concat_ws(',', CASE WHEN c.cause = 'profile_missing_in_snapshot' AND NOT c.profile_loaded
                                      THEN 'profile_deleted' END,
                                 CASE WHEN n.mpid IS NOT NULL THEN 'identity_changed' END), '') AS evidence,
           CASE WHEN c.agree THEN NULL ELSE
             CASE c.cause
               WHEN 'snapshot_before_last_run' THEN
                 'the run at ' || {ts('c.changed_at')} || ' wrote ' || c.simulated
                 || '; this profile was captured at ' || {ts('c.captured_at')}
               WHEN 'attribute_name_differs' THEN
                 'carries ' || {quote} || {other_name} || {quote} || ' = ' || c.other_value
                 || ' instead (simulated ' || c.simulated || ')'
               WHEN 'profile_missing_in_snapshot' THEN
                 CASE WHEN NOT c.profile_loaded
                      THEN 'no mParticle profile with this MPID is loaded (deleted, another workspace, or a wrong value)'
                      ELSE 'the profile is loaded only from inputs without the cohort attribute, not from the snapshot'
                 END
               WHEN 'pause_not_modelled' THEN
                 'the run at ' || {ts('c.cap_changed_at')} || ' should have written true; observed ' || c.observed
                 || CASE WHEN c.last_stored_at < c.cap_changed_at
                         THEN '; mParticle last stored this profile at ' || {ts('c.last_stored_at')}
                              || ', before that run'
                         ELSE '' END
               ELSE
                 CASE WHEN c.observed = 'other'
                      THEN 'observed the non-boolean value ' || {shown_value('c.value_text')}
                           || '; simulated ' || c.simulated
                      WHEN c.changed_at > c.captured_at  -- captured before the last change: its value then
                      THEN 'observed ' || c.observed || '; '
                           || CASE WHEN c.at_capture = 'absent' THEN 'no run of the simulation wrote this profile by'
                                   ELSE 'the run at ' || {ts('c.cap_changed_at')} || ' wrote ' || c.at_capture
                                        || ', held at' END
                           || ' its capture at ' || {ts('c.captured_at')}
                      WHEN c.simulated = 'absent'
                      THEN 'observed ' || c.observed || '; no run of the simulation wrote this profile'
                      ELSE 'observed ' || c.observed || '; the run at ' || {ts('c.changed_at')}
                           || ' wrote ' || c.simulated
                 END
             END
             -- captured before the run that last changed the value, but the snapshot does not explain it
             || CASE WHEN c.cause <> 'snapshot_before_last_run' AND c.changed_at > c.captured_at
                     THEN '; the run at ' || {ts('c.changed_at')} || ', after the capture, wrote ' || c.simulated
                     ELSE '' END
             || CASE WHEN n.mpid IS NULL THEN ''
                     ELSE '; ' || n.text
                          || CASE WHEN n.n > 3 THEN ' (+' || CAST(n.n - 3 AS VARCHAR) || ' more)' ELSE '' END
                END
           END AS detail,
           c.in_snapshot, {other_name} AS other_name, c.other_value, c.last_write_at, c.captured_at, c.last_stored_at,
           c.changed_at
    FROM verify_compared c LEFT JOIN notes n ON n.mpid = c.mpid
    """


def _names_table(engine: Engine, names: list[tuple[str, str]], only: list[int] | None = None) -> pd.DataFrame:
    """Profiles (and values) per known attribute name; ``only``: among these MPIDs."""
    df = engine.query_df(
        f"""
        SELECT n.name AS attribute, n.how, count(DISTINCT a.mpid) AS profiles,
               count(*) FILTER (WHERE a.value_bool) AS "true",
               count(*) FILTER (WHERE NOT a.value_bool) AS "false",
               count(a.mpid) FILTER (WHERE a.value_bool IS NULL) AS other
        FROM {_NAMES} n LEFT JOIN (SELECT * FROM mpa_attributes WHERE {_only('mpid', only)}) a ON a.name = n.name
        GROUP BY n.name, n.how, n.pos ORDER BY n.pos
        """
    )
    return df


# ----------------------------------------------------------------------------- entry point
def verify(
    engine: Engine,
    cohort: str,
    at: datetime | str | None = None,
    settings: SyncSettings | dict | str | None = None,
    *,
    snapshot_at: datetime | str | None = None,
    source: str = "auto",
    show_personal_data: bool = False,
    simulate_fn=None,
    only_mpids: list[int] | None = None,
) -> VerifyResult:
    """Compare the simulated attribute of ``cohort`` with the observed one (module docstring).

    ``at``: the simulation time (default: the snapshot time). ``snapshot_at``: when the mParticle
    snapshot was taken (default: detected). ``simulate_fn(cohort, at, settings, source)`` runs the
    simulation (default: :func:`cohortlab.simulation.sync.simulate` on ``engine``); ``cohort`` is
    the :class:`~cohortlab.simulation.membership.CohortRef` found here (its name may be another
    cohort's now too: never looked up again by it).
    ``only_mpids``: compare just these profiles (what :func:`cohortlab.simulation.explain.explain`
    needs for one user): the rows are those of the full comparison, kept in a temporary table
    instead of ``verify_profiles``, and the counts (and ``names``) cover only them."""
    from cohortlab.simulation.membership import find_cohort

    settings = SyncSettings.coerce(settings)
    ref = find_cohort(engine, cohort, source)
    names = attribute_names(settings, known_names(engine, ref.name, ref.ids))
    _register_names(engine, names)
    try:
        return _verify(engine, ref, names, at, settings, snapshot_at, source, show_personal_data, simulate_fn,
                       only_mpids)
    finally:
        for t in (_NAMES, _SIM, _MEMBERS, _HISTORY):
            _unregister(engine, t)


def _register_names(engine: Engine, names: list[tuple[str, str]]) -> None:
    engine.register(
        _NAMES,
        pd.DataFrame({"name": [n for n, _ in names], "how": [h for _, h in names],
                      "expected": [i == 0 for i in range(len(names))], "pos": list(range(len(names)))}),
    )


def observed_times(engine: Engine, cohort: str | CohortRef, at: datetime | str | None = None,
                   settings: SyncSettings | dict | str | None = None, *, snapshot_at: datetime | str | None = None,
                   source: str = "auto") -> tuple[datetime, datetime]:
    """(simulation time, snapshot time) that :func:`verify` would use, without simulating;
    raises :class:`VerifyError` when no loaded profile carries the cohort attribute. ``cohort``: a
    name, an id, or the ``CohortRef`` found already (``SimulationResult.ref``)."""
    from cohortlab.simulation.membership import find_cohort

    settings = SyncSettings.coerce(settings)
    ref = find_cohort(engine, cohort, source)
    names = attribute_names(settings, known_names(engine, ref.name, ref.ids))
    _register_names(engine, names)
    try:
        snap, _ = _snapshot(engine, ref, names, snapshot_at)
    finally:
        _unregister(engine, _NAMES)
    return (parse_time(at, "at") if at is not None else snap), snap


def _snapshot(engine: Engine, ref, names, snapshot_at, show_personal_data: bool = False) -> tuple[datetime, str]:
    observed_any = engine.query_rows(
        f"SELECT EXISTS ({_OBS_LOADS})"
    )[0][0]
    if not observed_any:
        # the names as verify's text shows them: a cohort named after an email by its pseudonym
        shown = _shown_names(engine, [ref.name, *(n for n, _ in names[:6])], show_personal_data,
                             _database_key(engine))
        attributes = ", ".join(repr(shown.text(n)) for n, _ in names[:6])
        raise VerifyError(
            f"no observed state for cohort {shown.text(ref.name)!r}: no loaded mParticle profile carries the "
            f"attribute {attributes} (load an mParticle snapshot, e.g. `cohortlab load mparticle-profiles ...`)"
        )
    if snapshot_at is not None:
        return parse_time(snapshot_at, "snapshot_at"), "given"
    return detect_snapshot_at(engine, ref.last_time)


def _simulated_relations(engine: Engine, result) -> tuple[int, bool]:
    """Make ``_SIM`` (mpid, value, last_write_at, changed_at of the linked profiles the simulation wrote),
    ``_MEMBERS`` (the members' resolution) and ``_HISTORY`` (each linked profile's state after each
    run that wrote it or changed its membership, from the run's tables ``state`` and ``runs``)
    readable in SQL; returns (the orphans written, whether ``_HISTORY`` is there). A simulation
    whose tables are in ``engine`` is read in place (views); another one (a stand-in with pandas
    frames) is registered, without a history."""
    tables = getattr(result, "tables", None)
    if tables and "attribute_state" in tables and "resolution" in tables:
        state, res = tables["attribute_state"].table_name, tables["resolution"].table_name
        for t in (_SIM, _MEMBERS, _HISTORY):
            _unregister(engine, t)
        run_tables = getattr(result, "table_names", None) or {}
        history = "state" in run_tables and "runs" in run_tables
        if history:
            engine.execute(
                f"CREATE OR REPLACE TEMP VIEW {_HISTORY} AS SELECT CAST(h.target AS BIGINT) AS mpid, r.run_at, "
                f"h.is_true, h.is_write, h.is_change FROM {run_tables['state']} h "
                f"JOIN {run_tables['runs']} r ON r.k = h.k WHERE NOT h.is_orphan"
            )
        engine.execute(
            f"CREATE OR REPLACE TEMP VIEW {_SIM} AS SELECT CAST(mpid AS BIGINT) AS mpid, CAST(value AS BOOLEAN) AS value, "
            f"last_write_at, changed_at FROM {state} WHERE NOT is_orphan"
        )
        engine.execute(
            f"CREATE OR REPLACE TEMP VIEW {_MEMBERS} AS SELECT CAST(distinct_id AS VARCHAR) AS distinct_id, "
            f"CAST(email AS VARCHAR) AS email, CAST(mpid AS BIGINT) AS mpid, CAST(status AS VARCHAR) AS status, "
            f"CAST(gap_reason AS VARCHAR) AS gap_reason FROM {res}"
        )
        return int(engine.query_rows(f"SELECT count(*) FROM {state} WHERE is_orphan")[0][0]), history
    state = result.attribute_state
    orphans = int(state.is_orphan.sum()) if len(state) else 0
    sim = state.loc[~state.is_orphan.astype(bool), ["mpid", "value", "last_write_at", "changed_at"]].copy()
    sim["mpid"] = sim["mpid"].astype("int64")
    sim["value"] = sim["value"].astype(bool)
    engine.register(_SIM, sim)
    res = result.resolution
    engine.register(_MEMBERS, pd.DataFrame({
        "distinct_id": res["distinct_id"].astype("string"),
        "email": res["email"].astype("string") if "email" in res else pd.Series(pd.NA, index=res.index, dtype="string"),
        "mpid": res["mpid"].astype("Int64"),
        "status": res["status"].astype("string"),
        "gap_reason": res["gap_reason"].astype("string"),
    }))
    return orphans, False


def _verify(engine, ref, names, at, settings, snapshot_at, source, show_personal_data, simulate_fn,
            only_mpids=None) -> VerifyResult:
    attribute = names[0][0]
    snap, snap_from = _snapshot(engine, ref, names, snapshot_at, show_personal_data)
    at_ = parse_time(at, "at") if at is not None else snap
    if simulate_fn is None:
        from cohortlab.simulation.simulate import simulate

        def simulate_fn(c, a, s, src):
            return simulate(engine, c, a, s, source=src)

    result = simulate_fn(ref, at_, settings, source)  # the cohort found, never looked up again by its name
    orphans, history = _simulated_relations(engine, result)
    table = "verify_profiles" if only_mpids is None else "_verify_profiles_of"
    engine.materialise("verify_compared", _profiles_sql(naive_utc(snap), only_mpids, history), temp=True)
    # the cohort's names as the reports show them, in the text, the fields and each profile's detail
    # (one key for both: a read-only database without one gets a new random key at every read)
    key = _database_key(engine)
    shown = _shown_names(engine, [ref.name, *(n for n, _ in names)], show_personal_data, key)
    engine.materialise(table, _details_sql(engine, show_personal_data, shown, key), temp=only_mpids is not None)
    engine.execute("DROP TABLE IF EXISTS verify_compared")
    both_absent = 0 if only_mpids is not None else int(engine.query_rows(_both_absent_sql())[0][0])

    counts = engine.query_rows(f"SELECT simulated, observed, cause, count(*) FROM {table} GROUP BY ALL")
    cats = list(VALUES) + (["other"] if any(o == "other" for _, o, _, _ in counts) else [])
    confusion = pd.DataFrame(0, index=pd.Index(list(VALUES), name="simulated"),
                             columns=pd.Index(cats, name="observed"), dtype="int64")
    by_cause = dict.fromkeys(CAUSES, 0)
    for s, o, cause, n in counts:
        confusion.loc[s, o] += int(n)
        if cause is not None:
            by_cause[cause] += int(n)
    listed = int(confusion.values.sum())
    confusion.loc["absent", "absent"] += both_absent
    audience = pd.DataFrame({
        "audience": ["= true", "= false"],
        "observed": [int(confusion["true"].sum()), int(confusion["false"].sum())],
        "simulated": [int(confusion.loc["true"].sum()), int(confusion.loc["false"].sum())],
    })
    audience["difference"] = audience.observed - audience.simulated
    causes = pd.DataFrame({"cause": list(CAUSES), "profiles": [by_cause[c] for c in CAUSES], "rule": RULE})
    notes: list[str] = []
    names_df = _names_table(engine, names, only_mpids)
    names_df["attribute"] = [shown.text(a) for a in names_df["attribute"]]
    names_df["how"] = [shown.text(h) for h in names_df["how"]]
    if only_mpids is None and int(names_df.profiles.iloc[0]) == 0:
        other = names_df[names_df.profiles > 0]
        if len(other):
            notes.append(
                f"no profile carries {attribute!r}; the snapshot uses {other.attribute.iloc[0]!r} "
                f"({other.how.iloc[0]}): set attribute_template accordingly if that is the feed's name"
            )
    if orphans:
        notes.append(f"{orphans:,} orphan profile(s) created by the feed have no known MPID and cannot be compared")
    if snap_from.startswith("unknown"):
        notes.append("the snapshot time is unknown; pass --snapshot-at (snapshot_at=) for a sound comparison")
    notes = [shown.text(n) for n in notes]
    return VerifyResult(
        cohort=shown.text(ref.name), attribute=shown.text(attribute), snapshot_at=to_utc(snap), snapshot_at_from=snap_from,
        at=to_utc(result.at), confusion=confusion, audience=audience, causes=causes, names=names_df,
        disagreements=_fetch(engine, "NOT agree", table), listed=listed, both_absent=both_absent,
        orphans_written=orphans, simulation=result, notes=notes, engine=engine, table=table,
    )


@dataclass
class _ShownNames:
    """The cohort and attribute names that hold personal data (a cohort named after an email),
    each with its pseudonym, the longest first (``Mixpanel - <name>`` before ``<name>``)."""

    pairs: list[tuple[str, str]]

    def text(self, text: Any) -> Any:
        if not isinstance(text, str):
            return text
        for name, shown in self.pairs:
            text = text.replace(name, shown)
        return text

    def sql(self, col: str) -> str:
        for name, shown in self.pairs:
            col = f"replace({col}, {sql_str(name)}, {sql_str(shown)})"
        return col


def _shown_names(engine: Engine, names: list[str], show_personal_data: bool, key: str) -> _ShownNames:
    """:class:`_ShownNames` of ``names`` (none with ``show_personal_data``): a name that holds an
    email or a phone is shown as its pseudonym, as the reports show it
    (docs/reports.md#personal-data), in the text, the result's fields and every profile's detail;
    ``key``: the database's pseudonym key."""
    if show_personal_data:
        return _ShownNames([])
    from cohortlab.privacy import KnownPersonal, Redactor, pseudonym

    names = [n for n in dict.fromkeys(names) if n]
    redactor = Redactor(key=key, database=KnownPersonal(engine, prefetch=False))
    personal = [n for n, v in zip(names, redactor.values(names)) if v != n]  # one lookup of these names
    pairs = []
    for n in personal:  # an attribute "Mixpanel - <name>" shows the name's pseudonym in it, as the
        # reports do, unless something personal is left besides: then its own
        shown = n
        for inner in sorted((m for m in personal if m != n and m in n), key=len, reverse=True):
            shown = shown.replace(inner, pseudonym(inner, key))
        pairs.append((n, shown if shown != n and not redactor.is_personal(shown) else pseudonym(n, key)))
    return _ShownNames(sorted(pairs, key=lambda p: len(p[0]), reverse=True))


# ----------------------------------------------------------------------------- text
def format_verify(v: VerifyResult, limit: int = 20) -> str:
    lines = [
        f"cohort: {_safe(v.cohort)}   attribute: {v.attribute!r}",
        f"mParticle snapshot: {_fmt(v.snapshot_at)} UTC ({v.snapshot_at_from})",
        f"simulated: after the last run at or before {_fmt(v.at)} UTC",
        "",
        "audience            observed  simulated  difference",
    ]
    for r in v.audience.itertuples(index=False):
        lines.append(f"  {r.audience:<16}{r.observed:>10,}{r.simulated:>11,}{r.difference:>+12,}")
    lines += ["", "profiles (rows: simulated, columns: observed)"]
    conf = v.confusion
    lines.append("  " + " " * 10 + "".join(f"{c:>10}" for c in conf.columns))
    for idx, row in conf.iterrows():
        lines.append(f"  {idx:<10}" + "".join(f"{int(x):>10,}" for x in row))
    dis = v.disagreements
    from cohortlab.glossary import counted, pct  # as the reports write it: never 100.0% with a disagreement

    lines += ["", f"agreement: {pct(v.agreement)} of {v.compared:,} profiles; {len(dis):,} disagree"]
    if len(dis):
        lines.append(f"disagreements by cause (first that applies, {RULE})")
        for r in v.causes.itertuples(index=False):
            if r.profiles:
                lines.append(f"  {r.cause:<30}{r.profiles:>10,}")
        if limit > 0:
            lines += ["", f"disagreements{' (first %d)' % limit if len(dis) > limit else ''}"]
            for r in dis.head(limit).itertuples(index=False):
                lines.append(f"  MPID {r.mpid}: simulated {r.simulated}, observed {r.observed} -> {r.cause}: {_safe(r.detail)}")
    shown = v.names[v.names.profiles > 0]
    if len(shown):
        lines += ["", "attribute names in the snapshot"]
        for r in shown.itertuples(index=False):
            lines.append(f"  {r.attribute!r} ({r.how}): {counted(r.profiles, 'profile')}, {r.true:,} true, {r.false:,} false")
    for n in v.notes:
        lines.append(f"note: {n}")
    return "\n".join(lines)


__all__ = ["CAUSES", "EVIDENCE", "PROFILE_COLUMNS", "VerifyError", "VerifyResult", "attribute_names",
           "format_verify", "known_names", "observed_times", "verify"]
