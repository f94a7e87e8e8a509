"""The outcome of each cohort member (docs/rules.md#resolution), as named SQL steps.

Resolution answers, for a Mixpanel member ``distinct_id`` at a time ``t``, which identifier the
feed sends and what mParticle does with it. It works on *requests* ``(distinct_id, resolve_time)``
(:func:`add_resolve_steps`): the sync simulation asks at each send time (``resolution_time =
"send"``) or once at the as-of time (``"as_of"``); :func:`resolution_pipeline` asks once at ``at``
for the members at ``at``.

Steps of :func:`add_resolve_steps` (one row per request):

* ``<prefix>versions`` / ``<prefix>profiles`` (prefix ``req_``; :func:`add_profile_at_steps`,
  docs/rules.md#resolution-time) — the Mixpanel profile at ``resolve_time``: from ``mp_profile_history`` the
  latest version whose as-of time (``as_of``, else the load's ``loaded_at``) is at or before
  ``resolve_time``; before the first known version there is no profile, unless that version was
  loaded without an as-of time of its own: it then stands in (:func:`version_read_sql`). A
  database without history reads ``mp_profiles`` (one version per distinct_id, known from the start).
* ``req_event_ids`` — the event rule (``event_identity_cutoff``, docs/rules.md#event-identity-rule) for requests whose profile lacks
  ``$mparticle_user_id``: the latest event at or after the cutoff and at or before
  ``resolve_time`` carrying a non-null ``$mparticle_user_id`` (same instant: the greatest value).
* ``identified`` — ``identifier_source`` (docs/rules.md#choosing-the-identifier,
  docs/rules.md#identifier-sources): ``mparticle_user_id`` → ``event_property`` →
  ``distinct_id`` (``fallback="strict"``: only while the EIT in force at ``resolve_time`` is
  ``mparticle_id``, else ``none``).
* ``candidates`` / ``checked`` — is the identifier a valid MPID (:mod:`cohortlab.identifiers`,
  docs/rules.md#valid-mpid), does that profile exist in ``mpa_profiles``.
* ``int_rounded`` / ``float_rounded`` / ``digit_mpids`` / ``identity_ids`` — precision loss
  (docs/rules.md#precision-loss: a valid int64 equal to ``int(float(mpid))`` of an existing MPID;
  docs/rules.md#float-spelled-precision-loss: a float spelling such as ``9.08e+18`` or ``9080350317581165000.0`` whose value as a double equals ``float(mpid)``), the
  MPID named by the digits of a malformed identifier, and distinct_ids that are a user identity
  of an existing profile (docs/rules.md#distinct-id-is-identity).
* ``resolved`` — ``status`` (docs/rules.md#statuses; ``orphan_created`` under
  docs/rules.md#input-protection), the first applicable ``gap_reason`` (``GAP_REASONS`` order,
  docs/rules.md#gap-reasons),
  ``precision_loss_form`` (``integer_text`` | ``float_text`` | ``json_float``), and
  ``self_profiles``: how many profiles the identifier itself could lead to (a float spelling
  whose value is ``float(mpid)`` of existing profiles, else the digits of a malformed or
  float-spelled identifier: ``"101"`` with its quotes, ``12.5`` -> 125). A valid int64 that lost precision (``integer_text``) is
  not recovered through the MPID: its digits name no profile.

Columns of ``resolved``: ``distinct_id, resolve_time, identifier_source, identifier, mpid,
status, gap_reason, precision_loss_form, self_profiles, self_mpid`` (the one profile the
identifier itself leads to, when ``self_profiles`` is 1).

Steps of :func:`add_context_steps` (members at the as-of time ``at``, after their identifier is
known): ``ctx_profiles`` (profile at ``at``: ``$email``, ``$last_seen``), ``ctx_events`` (latest
event at or before ``at``), ``recover_keys`` / ``recover_hits`` / ``recover_best``:
``recoverable_via`` (docs/rules.md#recoverable-via, docs/rules.md#recovery-order) for a member that is not matched, in this order: the MPID itself
(``mparticle_id``), user identities of the distinct_id then of the email (``customer_id`` >
``email`` > ``other`` > ``other_id_2..4`` > others by name), device identities of a
``$device:<id>`` distinct_id (the identity type, e.g. ``ios_idfv``; the device id is one identity
whatever type holds it, the first type by name). When the identity found is held by several
profiles ``recoverable_via`` is NULL and ``recoverable_profiles`` is that count (1 when
unambiguous, NULL when nothing recovers the member) and ``recoverable_mpid`` that profile's MPID
(when it is 1): the mParticle user behind the member, which the remedies read.

The ``resolution`` table (one row per member at ``at``) has ``RESOLUTION_COLUMNS``:
``cohort_name, distinct_id, identifier_source, identifier, mpid, status, gap_reason, last_seen,
active_after_cutoff, recoverable_via, email, as_of, recoverable_profiles, precision_loss_form,
resolved_at`` (the time whose profiles and events decided the identifier) and ``sent_at`` (the
last run that sent the member with that identifier; NULL: not sent yet, resolved at ``at``),
``recoverable_mpid``.

Core SQL stays in the portable subset of docs/DEVELOPING.md (no ``list_*`` on nullable lists, no
table functions or macros, no ``ORDER BY`` outside window specifications).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from cohortlab.engines.base import Engine
from cohortlab.identifiers import exact_float_mpid_sql, float_rounded_mpid_sql, mpid_sql
from cohortlab.pipeline import Pipeline, sql_bool, sql_str, sql_ts
from cohortlab.settings import SyncSettings
from cohortlab.simulation.membership import (
    CohortError,
    CohortRef,
    Source,
    add_membership_steps,
    find_cohort,
    known_cohorts,
    resolve_at,
)

if TYPE_CHECKING:
    import pandas as pd

IDENTIFIER_SOURCES = ("mparticle_user_id", "event_property", "distinct_id", "none")
STATUSES = ("matched", "unmatched", "orphan_created")
GAP_REASONS = (
    "fallback_disabled",
    "malformed_mparticle_user_id",
    "distinct_id_not_mpid",
    "mpid_precision_loss",
    "distinct_id_is_identity",
    "mpid_not_found",
)
PRECISION_LOSS_FORMS = ("integer_text", "float_text", "json_float")
RESOLUTION_COLUMNS = [
    "cohort_name", "distinct_id", "identifier_source", "identifier", "mpid", "status", "gap_reason",
    "last_seen", "active_after_cutoff", "recoverable_via", "email", "as_of",
    "recoverable_profiles", "precision_loss_form", "resolved_at", "sent_at", "recoverable_mpid",
]
PERSONAL_DATA_COLUMNS = ("email",)

# preference when several identity types recover a member
_IDENTITY_RANK = {"customer_id": 1, "email": 2, "other": 3, "other_id_2": 4, "other_id_3": 5, "other_id_4": 6}
_MPUID = "'$.\"$mparticle_user_id\"'"
# a decimal float spelling (with a point or an exponent); plain integers are handled as int64 text
_FLOAT_SPELLING = r"-?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(\.[0-9]*)?[eE][+-]?[0-9]+|[0-9]*\.[0-9]+[eE][+-]?[0-9]+)"

ProfileHistory = Literal["none", "single", "multi"]


def profile_history_kind(engine: Engine) -> ProfileHistory:
    """How Mixpanel profiles are known: ``none`` (no history rows: ``mp_profiles`` only),
    ``single`` (one version per distinct_id) or ``multi`` (several versions of some)."""
    rows, ids = _version_counts(engine, "mp_profile_history")
    if not rows:
        return "none"
    return "single" if rows == ids else "multi"


def has_profile_history(engine: Engine) -> bool:
    """Whether ``mp_profile_history`` holds a row (one row read): the members' profiles are then
    read from their versions (:func:`member_history_kind` says how), else from ``mp_profiles``."""
    return bool(engine.query_rows("SELECT count(*) FROM (SELECT 1 FROM mp_profile_history LIMIT 1) x")[0][0])


def _version_counts(engine: Engine, versions: str) -> tuple[int, int]:
    """(rows, distinct distinct_ids) of a table of profile versions."""
    rows, ids = engine.query_rows(f"SELECT count(*), count(DISTINCT distinct_id) FROM {versions}")[0]
    return int(rows), int(ids)


def fallback_sql(settings: SyncSettings, time_expr: str) -> str:
    """SQL boolean: the ``$distinct_id`` fallback applies at ``time_expr``
    (:meth:`SyncSettings.fallback_applies` with the EIT in force then)."""
    if settings.fallback == "data":
        return "TRUE"
    dated = [p for p in settings.eit_timeline if p.since is not None]
    default = sql_bool(settings.fallback_applies(settings.eit_at(None)))
    if not dated:
        return default
    whens = " ".join(
        f"WHEN {time_expr} >= {sql_ts(p.since)} THEN {sql_bool(settings.fallback_applies(p.eit))}"
        for p in reversed(dated)
    )
    return f"CASE {whens} ELSE {default} END"


def _profile_versions_sql(history: ProfileHistory) -> str:
    if history == "none":
        return f"""
            SELECT distinct_id, mparticle_user_id, json_type(properties, {_MPUID}) AS mpuid_type, email, last_seen,
                   CAST(NULL AS TIMESTAMP) AS valid_from, CAST(0 AS BIGINT) AS seq, FALSE AS timed
            FROM mp_profiles"""
    if history == "single":  # one version per distinct_id: known from the start unless it has its own time
        return """
            SELECT distinct_id, mparticle_user_id, mparticle_user_id_type AS mpuid_type, email, last_seen,
                   as_of AS valid_from, coalesce(load_id, 0) AS seq, as_of IS NOT NULL AS timed
            FROM mp_profile_history"""
    return """
        SELECT h.distinct_id, h.mparticle_user_id, h.mparticle_user_id_type AS mpuid_type, h.email, h.last_seen,
               coalesce(h.as_of, l.loaded_at) AS valid_from, coalesce(h.load_id, 0) AS seq, h.as_of IS NOT NULL AS timed
        FROM mp_profile_history h LEFT JOIN loads l ON l.load_id = h.load_id"""


def profile_versions_sql(history: ProfileHistory, only: str | None = None) -> str:
    """The Mixpanel profile versions as rows ``distinct_id, mparticle_user_id, mpuid_type, email,
    last_seen, valid_from, seq, timed`` (``history`` ``none``: ``mp_profiles``, one version each;
    otherwise ``mp_profile_history``, with each version's as-of time; ``timed``: the version has
    an as-of time of its own, not its load's), of the distinct_ids of the relation ``only`` when
    given (else of everyone)."""
    sql = _profile_versions_sql(history)
    if only is None:
        return sql
    alias = "h." if history == "multi" else ""
    return f"{sql}\n        WHERE {alias}distinct_id IN (SELECT distinct_id FROM {only})"


def member_history_kind(engine: Engine, versions: str) -> ProfileHistory:
    """:func:`profile_history_kind` of the profile versions table ``versions`` (rows of
    :func:`profile_versions_sql` for some members): ``single`` when no distinct_id in it has two
    versions, else ``multi``. For those members both readings give the same profiles, so the
    cheaper one (``single``: no pick among versions) is used when it may be."""
    rows, ids = _version_counts(engine, versions)
    return "single" if rows == ids else "multi"


def version_order_sql(valid_from: str, at: str, seq: str) -> str:
    """SQL ``ORDER BY`` keys that put first the profile version read at ``at``: the latest at or
    before it (a version without a time is known from the start), else the first known one,
    which :func:`version_read_sql` says is read only when it has no time of its own; of one time,
    the later load (``seq``). ``valid_from``/``seq``: columns of :func:`profile_versions_sql`
    rows. Shared with explain's profile step and the remedies' written version (the version in
    force at the write)."""
    known = f"({valid_from} IS NULL OR {valid_from} <= {at})"
    return (f"CASE WHEN {known} THEN 0 ELSE 1 END, CASE WHEN {known} THEN {valid_from} END DESC NULLS LAST, "
            f"CASE WHEN NOT {known} THEN {valid_from} END, {seq} DESC")


def version_read_sql(valid_from: str, timed: str, at: str) -> str:
    """SQL boolean: the version :func:`version_order_sql` put first is the profile at ``at``. It
    is when it is known then (at or before ``at``, or without a time). Before a distinct_id's
    first version, that version stands in only when it was loaded without an as-of time (it
    counts from its load time, which says nothing of when the profile was so): a version with
    its own as-of time is not known before it, and the member has no profile then
    (docs/rules.md#resolution-time)."""
    return f"({valid_from} IS NULL OR {valid_from} <= {at} OR NOT {timed})"


def add_profile_at_steps(p: Pipeline, requests: str, history: ProfileHistory, prefix: str,
                         versions: str | None = None) -> str:
    """Step ``<prefix>profiles``: per request (distinct_id, resolve_time) the profile version at
    that time (see the module docstring); requests without a profile get no row. ``versions``: a
    table of :func:`profile_versions_sql` rows holding every requested distinct_id's versions
    (read instead of the whole profile table)."""
    p.add(f"{prefix}versions", f"SELECT * FROM {versions}" if versions else _profile_versions_sql(history))
    cols = "pv.mparticle_user_id, pv.mpuid_type, pv.email, pv.last_seen"
    if history != "multi":
        p.add(
            f"{prefix}profiles",
            f"""
            SELECT r.distinct_id, r.resolve_time, {cols}
            FROM {requests} r JOIN {prefix}versions pv ON pv.distinct_id = r.distinct_id
            WHERE {version_read_sql("pv.valid_from", "pv.timed", "r.resolve_time")}
            """,
        )
        return f"{prefix}profiles"
    p.add(
        f"{prefix}profile_rows",
        f"""
        SELECT r.distinct_id, r.resolve_time, {cols},
               {version_read_sql("pv.valid_from", "pv.timed", "r.resolve_time")} AS is_read,
               row_number() OVER (
                   PARTITION BY r.distinct_id, r.resolve_time
                   ORDER BY {version_order_sql("pv.valid_from", "r.resolve_time", "pv.seq")}
               ) AS pick
        FROM {requests} r JOIN {prefix}versions pv ON pv.distinct_id = r.distinct_id
        """,
    )
    p.add(
        f"{prefix}profiles",
        f"SELECT distinct_id, resolve_time, mparticle_user_id, mpuid_type, email, last_seen FROM {prefix}profile_rows "
        "WHERE pick = 1 AND is_read",
    )
    return f"{prefix}profiles"


def int_rounded_sql(candidates: str) -> str:
    """SQL: precision loss, integer spelling (docs/rules.md#precision-loss). ``candidates`` is a
    query of one column ``candidate`` (valid int64 identifiers that name no profile, without
    duplicates); the result has one row per candidate that equals ``int(float(mpid))`` of an
    existing MPID: ``candidate``, ``mpid`` (the smallest such MPID), ``profiles`` (how many).
    Shared with the migration what-if's gap reasons."""
    return f"""
        SELECT c.candidate, min(mp.mpid) AS mpid, count(DISTINCT mp.mpid) AS profiles
        FROM ({candidates}) c
        JOIN mpa_profiles mp ON {float_rounded_mpid_sql('mp.mpid')} = c.candidate
        GROUP BY c.candidate"""


def identity_ids_sql(identifiers: str) -> str:
    """SQL: the identifiers of ``identifiers`` (a query of one column ``identifier``: distinct_ids
    sent by the fallback, valid int64, no such profile) that equal a user identity of a profile
    (docs/rules.md#distinct-id-is-identity), one row each. Shared with the migration what-if's
    gap reasons."""
    return f"""
        SELECT DISTINCT c.identifier
        FROM ({identifiers}) c JOIN mpa_identities i ON i.value = c.identifier
        WHERE coalesce(i.kind, 'user') = 'user'"""


def add_resolve_steps(p: Pipeline, requests: str, settings: SyncSettings, history: ProfileHistory,
                      versions: str | None = None) -> None:
    """The steps from ``requests`` (distinct_id, resolve_time) to ``resolved`` (module docstring).
    ``versions``: see :func:`add_profile_at_steps`."""
    profiles = add_profile_at_steps(p, requests, history, "req_", versions)
    p.add(
        "req_facts",
        f"""
        SELECT r.distinct_id, r.resolve_time, pf.mparticle_user_id AS profile_mpuid, pf.mpuid_type AS profile_mpuid_type
        FROM {requests} r LEFT JOIN {profiles} pf ON pf.distinct_id = r.distinct_id AND pf.resolve_time = r.resolve_time
        """,
    )
    cutoff = settings.event_identity_cutoff
    if cutoff is not None:
        p.add(
            "req_event_latest",
            f"""
            SELECT r.distinct_id, r.resolve_time, max(struct_pack(t := e.time, v := e.mparticle_user_id)) AS latest
            FROM req_facts r JOIN mp_events e ON e.distinct_id = r.distinct_id
            WHERE r.profile_mpuid IS NULL AND e.mparticle_user_id IS NOT NULL
              AND e.time >= {sql_ts(cutoff)} AND e.time <= r.resolve_time
            GROUP BY r.distinct_id, r.resolve_time
            """,
        )
        # the JSON type of the rare float-spelled value (json_float or float_text), from its event
        p.add(
            "req_event_floats",
            f"""
            SELECT x.distinct_id, x.resolve_time, max(json_type(e.properties, {_MPUID})) AS json_type
            FROM (SELECT * FROM req_event_latest WHERE regexp_full_match(latest.v, '{_FLOAT_SPELLING}')) x
            JOIN mp_events e ON e.distinct_id = x.distinct_id AND e.time = x.latest.t AND e.mparticle_user_id = x.latest.v
            GROUP BY x.distinct_id, x.resolve_time
            """,
        )
        p.add(
            "req_event_ids",
            """
            SELECT x.distinct_id, x.resolve_time, x.latest.v AS event_mpuid, f.json_type AS event_mpuid_type
            FROM req_event_latest x
            LEFT JOIN req_event_floats f ON f.distinct_id = x.distinct_id AND f.resolve_time = x.resolve_time
            """,
        )
    else:
        p.add(
            "req_event_ids",
            "SELECT distinct_id, resolve_time, CAST(NULL AS VARCHAR) AS event_mpuid, "
            "CAST(NULL AS VARCHAR) AS event_mpuid_type FROM req_facts WHERE FALSE",
        )
    fallback = fallback_sql(settings, "f.resolve_time")
    p.add(
        "identified",
        f"""
        SELECT f.distinct_id, f.resolve_time,
               CASE WHEN f.profile_mpuid IS NOT NULL THEN 'mparticle_user_id'
                    WHEN ei.event_mpuid IS NOT NULL THEN 'event_property'
                    WHEN {fallback} THEN 'distinct_id'
                    ELSE 'none' END AS identifier_source,
               CASE WHEN f.profile_mpuid IS NOT NULL THEN f.profile_mpuid
                    WHEN ei.event_mpuid IS NOT NULL THEN ei.event_mpuid
                    WHEN {fallback} THEN f.distinct_id
                    END AS identifier,
               CASE WHEN f.profile_mpuid IS NOT NULL THEN f.profile_mpuid_type
                    WHEN ei.event_mpuid IS NOT NULL THEN ei.event_mpuid_type END AS identifier_json_type
        FROM req_facts f
        LEFT JOIN req_event_ids ei ON ei.distinct_id = f.distinct_id AND ei.resolve_time = f.resolve_time
        """,
    )
    p.add(
        "candidates",
        f"""
        SELECT i.*, {mpid_sql('i.identifier')} AS candidate,
               CASE WHEN i.identifier IS NOT NULL AND regexp_full_match(i.identifier, '{_FLOAT_SPELLING}')
                    THEN TRY_CAST(i.identifier AS DOUBLE) END AS float_value
        FROM identified i
        """,
    )
    p.add(
        "checked",
        """
        SELECT c.*, mp.mpid IS NOT NULL AS profile_exists
        FROM candidates c LEFT JOIN mpa_profiles mp ON mp.mpid = c.candidate
        """,
    )
    # precision loss, integer spelling: int(float(mpid)) of an existing MPID
    p.add(
        "int_rounded",
        int_rounded_sql("SELECT DISTINCT candidate FROM checked WHERE NOT profile_exists AND candidate IS NOT NULL"),
    )
    # precision loss, float spelling: the value as a double equals float(mpid)
    p.add(
        "float_rounded",
        """
        SELECT c.float_value, count(DISTINCT mp.mpid) AS profiles, min(mp.mpid) AS mpid
        FROM (SELECT DISTINCT float_value FROM checked WHERE candidate IS NULL AND float_value IS NOT NULL) c
        JOIN mpa_profiles mp ON CAST(mp.mpid AS DOUBLE) = c.float_value
        GROUP BY c.float_value
        """,
    )
    # the MPID a float spelling names exactly ('9080350317581165123.0'), before its value as a double,
    # which several MPIDs may share
    p.add(
        "exact_mpids",
        f"""
        SELECT d.identifier, mp.mpid
        FROM (
            SELECT DISTINCT identifier, {exact_float_mpid_sql('identifier')} AS exact_mpid FROM checked
            WHERE candidate IS NULL AND float_value IS NOT NULL
        ) d JOIN mpa_profiles mp ON mp.mpid = d.exact_mpid
        """,
    )
    # the MPID named by the digits of a malformed identifier ('"123"', 'id:123', ' 123') or of a
    # float-spelled one ('12.5' -> 125; one whose value is float(mpid) is matched by value above)
    digits = "regexp_replace(identifier, '[^0-9-]', '', 'g')"
    p.add(
        "digit_mpids",
        f"""
        SELECT d.identifier, mp.mpid
        FROM (
            SELECT DISTINCT identifier, {mpid_sql(digits)} AS digit_mpid FROM checked
            WHERE candidate IS NULL AND identifier IS NOT NULL
              AND (identifier_source IN ('mparticle_user_id', 'event_property') OR float_value IS NOT NULL)
        ) d JOIN mpa_profiles mp ON mp.mpid = d.digit_mpid
        """,
    )
    # a numeric distinct_id that is a user identity (e.g. a numeric customer id) of a profile
    p.add(
        "identity_ids",
        identity_ids_sql("""
            SELECT identifier FROM checked
            WHERE identifier_source = 'distinct_id' AND NOT profile_exists AND candidate IS NOT NULL"""),
    )
    creates = settings.protection == "create_and_update"
    p.add(
        "resolved",
        f"""
        SELECT c.distinct_id, c.resolve_time, c.identifier_source, c.identifier,
               CAST(CASE WHEN c.profile_exists THEN c.candidate END AS BIGINT) AS mpid,
               CASE WHEN c.profile_exists THEN 'matched'
                    WHEN {sql_bool(creates)} AND c.identifier IS NOT NULL THEN 'orphan_created'
                    ELSE 'unmatched' END AS status,
               CASE WHEN c.profile_exists THEN NULL
                    WHEN c.identifier_source = 'none' THEN 'fallback_disabled'
                    WHEN fr.float_value IS NOT NULL THEN 'mpid_precision_loss'
                    WHEN c.identifier_source IN ('mparticle_user_id', 'event_property') AND c.candidate IS NULL
                         THEN 'malformed_mparticle_user_id'
                    WHEN c.identifier_source = 'distinct_id' AND c.candidate IS NULL THEN 'distinct_id_not_mpid'
                    WHEN ir.candidate IS NOT NULL THEN 'mpid_precision_loss'
                    WHEN ii.identifier IS NOT NULL THEN 'distinct_id_is_identity'
                    ELSE 'mpid_not_found' END AS gap_reason,
               CASE WHEN c.profile_exists THEN NULL
                    WHEN fr.float_value IS NOT NULL
                         THEN CASE WHEN c.identifier_json_type = 'DOUBLE' THEN 'json_float' ELSE 'float_text' END
                    WHEN ir.candidate IS NOT NULL AND c.identifier_source <> 'none' THEN 'integer_text'
                    END AS precision_loss_form,
               CAST(CASE WHEN c.profile_exists THEN NULL
                         WHEN xm.mpid IS NOT NULL THEN 1
                         WHEN fr.float_value IS NOT NULL THEN fr.profiles
                         WHEN dm.mpid IS NOT NULL THEN 1 END AS BIGINT) AS self_profiles,
               CAST(CASE WHEN c.profile_exists THEN NULL
                         WHEN xm.mpid IS NOT NULL THEN xm.mpid
                         WHEN fr.float_value IS NOT NULL THEN CASE WHEN fr.profiles = 1 THEN fr.mpid END
                         WHEN dm.mpid IS NOT NULL THEN dm.mpid END AS BIGINT) AS self_mpid
        FROM checked c
        LEFT JOIN float_rounded fr ON c.candidate IS NULL AND fr.float_value = c.float_value
        LEFT JOIN int_rounded ir ON ir.candidate = c.candidate AND NOT c.profile_exists
        LEFT JOIN exact_mpids xm ON xm.identifier = c.identifier AND c.candidate IS NULL AND c.float_value IS NOT NULL
        LEFT JOIN digit_mpids dm ON dm.identifier = c.identifier AND c.candidate IS NULL
             AND (c.identifier_source IN ('mparticle_user_id', 'event_property') OR c.float_value IS NOT NULL)
        LEFT JOIN identity_ids ii ON ii.identifier = c.identifier AND c.identifier_source = 'distinct_id'
        """,
    )


def add_context_steps(
    p: Pipeline, members: str, at: datetime, settings: SyncSettings, history: ProfileHistory, cohort: str,
    versions: str | None = None,
) -> None:
    """From ``members`` (distinct_id, member_email, the ``resolved`` columns, resolved_at,
    sent_at) to the ``resolution`` output columns (module docstring). ``versions``: see
    :func:`add_profile_at_steps`."""
    AT = sql_ts(at)
    p.add("ctx_requests", f"SELECT distinct_id, {AT} AS resolve_time FROM {members}")
    profiles = add_profile_at_steps(p, "ctx_requests", history, "ctx_", versions)
    p.add(
        "ctx_events",
        f"""
        SELECT e.distinct_id, max(e.time) AS last_event_at
        FROM mp_events e
        JOIN (SELECT m.distinct_id FROM {members} m LEFT JOIN {profiles} pf ON pf.distinct_id = m.distinct_id
              WHERE pf.last_seen IS NULL) x ON x.distinct_id = e.distinct_id
        WHERE e.time <= {AT}
        GROUP BY e.distinct_id
        """,
    )
    p.add(
        "ctx_members",
        f"""
        SELECT m.*, coalesce(pf.email, m.member_email) AS email, coalesce(pf.last_seen, ev.last_event_at) AS last_seen
        FROM {members} m
        LEFT JOIN {profiles} pf ON pf.distinct_id = m.distinct_id
        LEFT JOIN ctx_events ev ON ev.distinct_id = m.distinct_id
        """,
    )
    p.add(
        "recover_keys",
        """
        SELECT distinct_id, distinct_id AS lookup, 1 AS key_rank, 'user' AS kind FROM ctx_members WHERE status <> 'matched'
        UNION ALL
        SELECT distinct_id, email AS lookup, 2 AS key_rank, 'user' AS kind FROM ctx_members
        WHERE status <> 'matched' AND email IS NOT NULL AND email <> distinct_id
        UNION ALL
        SELECT distinct_id, substr(distinct_id, 9) AS lookup, 3 AS key_rank, 'device' AS kind FROM ctx_members
        WHERE status <> 'matched' AND starts_with(distinct_id, '$device:')
        """,
    )
    rank = " ".join(f"WHEN {sql_str(k)} THEN {v}" for k, v in _IDENTITY_RANK.items())
    p.add(
        "recover_hits",
        """
        SELECT k.distinct_id, k.key_rank, i.identity_type, count(DISTINCT i.mpid) AS profiles, min(i.mpid) AS mpid
        FROM recover_keys k
        JOIN mpa_identities i ON i.value = k.lookup
        WHERE k.kind = 'user' AND coalesce(i.kind, 'user') = 'user' AND i.identity_type IS NOT NULL
        GROUP BY k.distinct_id, k.key_rank, i.identity_type
        UNION ALL
        -- a device id is one identity whatever its type: held by several profiles (an ios_idfv of one,
        -- an android_uuid of another) it names none; held by one, its type (the first by name)
        SELECT k.distinct_id, k.key_rank, min(i.identity_type) AS identity_type, count(DISTINCT i.mpid) AS profiles,
               min(i.mpid) AS mpid
        FROM recover_keys k
        JOIN mpa_identities i ON i.value = k.lookup
        WHERE k.kind = 'device' AND i.kind = 'device' AND i.identity_type IS NOT NULL
        GROUP BY k.distinct_id, k.key_rank
        UNION ALL
        SELECT distinct_id, 0 AS key_rank, 'mparticle_id' AS identity_type, self_profiles AS profiles, self_mpid AS mpid
        FROM ctx_members WHERE status <> 'matched' AND self_profiles IS NOT NULL
        """,
    )
    p.add(
        "recover_ranked",
        f"""
        SELECT distinct_id, identity_type, profiles, mpid,
               row_number() OVER (
                   PARTITION BY distinct_id
                   ORDER BY key_rank, CASE identity_type {rank} ELSE 99 END, identity_type
               ) AS pick
        FROM recover_hits
        """,
    )
    p.add(
        "recover_best",
        """
        SELECT distinct_id, CASE WHEN profiles = 1 THEN identity_type END AS recoverable_via,
               CAST(profiles AS BIGINT) AS recoverable_profiles,
               CAST(CASE WHEN profiles = 1 THEN mpid END AS BIGINT) AS recoverable_mpid
        FROM recover_ranked WHERE pick = 1
        """,
    )
    cutoff = settings.event_identity_cutoff
    active = f"coalesce(c.last_seen >= {sql_ts(cutoff)}, FALSE)" if cutoff is not None else "CAST(NULL AS BOOLEAN)"
    p.add(
        "resolution",
        f"""
        SELECT {sql_str(cohort)} AS cohort_name, c.distinct_id, c.identifier_source, c.identifier,
               CAST(c.mpid AS BIGINT) AS mpid, c.status, c.gap_reason, c.last_seen,
               {active} AS active_after_cutoff, rb.recoverable_via, c.email, {AT} AS as_of,
               rb.recoverable_profiles, c.precision_loss_form, c.resolved_at, c.sent_at, rb.recoverable_mpid
        FROM ctx_members c LEFT JOIN recover_best rb ON rb.distinct_id = c.distinct_id
        """,
    )


# ----------------------------------------------------------------------------- standalone
def resolution_pipeline(
    ref: CohortRef,
    at: datetime,
    settings: SyncSettings,
    *,
    history: ProfileHistory = "none",
) -> Pipeline:
    """The members of ``ref`` at ``at``, each resolved at ``at`` (the as-of reading, without the
    sync: ``sent_at`` is NULL). The sync simulation (:mod:`cohortlab.simulation.sync`) uses the
    same steps per send time."""
    p = Pipeline()
    direct = ref.source == "snapshots"
    add_membership_steps(p, ref, at, transitions=not direct)
    AT = sql_ts(at)
    if direct:
        members = """
            SELECT m.distinct_id, CAST(NULL AS VARCHAR) AS member_email
            FROM mp_cohort_members m
            WHERE m.distinct_id IS NOT NULL
              AND m.snapshot_id = (SELECT snapshot_id FROM versions WHERE version = (SELECT max(version) FROM versions))
        """
    else:
        members = """
            SELECT t.distinct_id, max(me.member_email) AS member_email
            FROM transitions t LEFT JOIN member_emails me ON me.distinct_id = t.distinct_id
            GROUP BY t.distinct_id HAVING sum(t.delta) = 1
        """
    p.add("members", members)
    p.add("requests", f"SELECT distinct_id, {AT} AS resolve_time FROM members")
    add_resolve_steps(p, "requests", settings, history)
    p.add(
        "member_outcomes",
        """
        SELECT m.distinct_id, m.member_email, r.identifier_source, r.identifier, r.mpid, r.status, r.gap_reason,
               r.precision_loss_form, r.self_profiles, r.self_mpid, r.resolve_time AS resolved_at,
               CAST(NULL AS TIMESTAMP) AS sent_at
        FROM members m JOIN resolved r ON r.distinct_id = m.distinct_id
        """,
    )
    add_context_steps(p, "member_outcomes", at, settings, history, ref.name)
    return p


@dataclass
class ResolutionRun:
    """What :func:`resolve` did: the cohort, the as-of time, and debug row counts per step."""

    cohort: CohortRef
    at: datetime
    table: str
    step_counts: dict[str, int]


def resolve(
    engine: Engine,
    cohort: str | CohortRef,
    at: datetime | str | None = None,
    settings: SyncSettings | dict | str | None = None,
    *,
    source: Source = "auto",
    debug: bool = False,
    table: str = "resolution",
) -> ResolutionRun:
    """The as-of resolution (every member resolved at ``at``, no sync) into ``table``. The
    send-time resolution needs the sync: :func:`cohortlab.simulation.simulate.simulate`.
    In debug mode each step is materialised as ``<table>__<step>`` and its row count returned."""
    settings = SyncSettings.coerce(settings)
    ref = cohort if isinstance(cohort, CohortRef) else find_cohort(engine, cohort, source)
    settings.attribute_name(ref.name)  # a too-long attribute name is an error before any work
    at_ = resolve_at(ref, at)
    p = resolution_pipeline(ref, at_, settings, history=profile_history_kind(engine))
    counts = p.run(engine, table, debug=debug)
    return ResolutionRun(ref, at_, table, counts)


def sent_before_first_profile(engine: Engine, table: str, *, sent_only: bool = True) -> tuple[int, datetime | None]:
    """(members, earliest such version): the members of the resolution ``table`` whose identifier
    was decided (``resolved_at``; ``sent_only``: of a member the sync sent, ``sent_at``) when the
    profile version the simulation read then was none, their first version having its own as-of
    time (:func:`version_read_sql`), with the earliest of those versions' times. The version is
    picked as the simulation picks it (:func:`version_order_sql`). (0, None) at once when no
    version has an as-of time of its own (a version loaded without one stands in)."""
    if not engine.query_rows("SELECT count(*) FROM (SELECT 1 FROM mp_profile_history WHERE as_of IS NOT NULL "
                             "LIMIT 1) x")[0][0]:
        return 0, None
    n, first = engine.query_rows(f"""
        SELECT count(*), min(valid_from) FROM (
            SELECT pv.valid_from, {version_read_sql("pv.valid_from", "pv.timed", "r.resolved_at")} AS is_read,
                   row_number() OVER (PARTITION BY r.distinct_id
                                      ORDER BY {version_order_sql("pv.valid_from", "r.resolved_at", "pv.seq")}) AS pick
            FROM {table} r JOIN ({profile_versions_sql("multi", only=table)}) pv ON pv.distinct_id = r.distinct_id
            WHERE r.resolved_at IS NOT NULL{" AND r.sent_at IS NOT NULL" if sent_only else ""}
        ) x WHERE pick = 1 AND NOT is_read""")[0]
    return int(n), first


def resolution_df(engine: Engine, table: str = "resolution") -> pd.DataFrame:
    """The resolution table as pandas, in a stable order (sorted at the edge)."""
    cols = ", ".join(RESOLUTION_COLUMNS)
    return engine.query_df(f"SELECT {cols} FROM {table} ORDER BY distinct_id")


__all__ = [
    "CohortError",
    "CohortRef",
    "GAP_REASONS",
    "IDENTIFIER_SOURCES",
    "PERSONAL_DATA_COLUMNS",
    "PRECISION_LOSS_FORMS",
    "RESOLUTION_COLUMNS",
    "STATUSES",
    "add_context_steps",
    "add_membership_steps",
    "add_resolve_steps",
    "fallback_sql",
    "find_cohort",
    "identity_ids_sql",
    "int_rounded_sql",
    "known_cohorts",
    "member_history_kind",
    "profile_history_kind",
    "profile_versions_sql",
    "resolution_df",
    "resolution_pipeline",
    "resolve",
    "resolve_at",
    "sent_before_first_profile",
    "version_order_sql",
    "version_read_sql",
]
