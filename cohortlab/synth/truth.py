"""The ground truth: docs/rules.md#resolution for every cohort member at the last snapshot, default settings
(``fallback="data"``, ``event_identity_cutoff`` 2026-01-15, ``protection="only_update"``).

This is the generator's OWN implementation of the resolution rules, written against the world
it generated (what it wrote into the Mixpanel and mParticle files), independent of
``cohortlab``'s resolution code, so that a test can compare the two row for row.

Rules, per member distinct_id ``d`` of a cohort at ``as_of``:

1. identifier: the profile's ``$mparticle_user_id`` when the profile of ``d`` has the property
   and it is not JSON null (``mparticle_user_id``); otherwise the value on the latest event of
   ``d`` at or after the cutoff and not after ``as_of`` that carries a non-null
   ``$mparticle_user_id`` (``event_property``); otherwise ``d`` itself (``distinct_id``).
2. a valid MPID is ``-?[0-9]+`` within int64; ``matched`` when it is the MPID of a profile in
   the mParticle snapshot, else ``unmatched`` with the first gap that applies:
   ``malformed_mparticle_user_id`` (a `$mparticle_user_id` that is not a valid MPID),
   ``distinct_id_not_mpid``, ``mpid_precision_loss`` (equals ``int(float(m))`` of an existing
   MPID ``m``), ``mpid_not_found``.
3. ``recoverable_via`` (unmatched only): the mParticle user identity type whose value equals
   ``d`` (alphabetically first type if several), else ``email`` when the member's Mixpanel
   profile ``$email`` is an email identity of an existing mParticle profile; else NULL.
   Device identities are not considered.
4. ``mpid`` is the matched MPID (NULL when unmatched); ``true_mpid`` is the person's real MPID
   (whether or not its mParticle profile still exists).
"""

from __future__ import annotations

TRUTH_CUTOFF = 1768435200  # 2026-01-15T00:00:00Z

TRUTH_COLUMNS = (
    "cohort_name", "cohort_id", "as_of", "distinct_id", "person_id", "true_mpid",
    "identifier_source", "identifier", "mpid", "status", "gap_reason", "recoverable_via",
    "has_profile", "last_activity", "active_after_cutoff",
)


def truth_pre_sql(last_si: int) -> str:
    """Per chunk: the identifier of each member at the last snapshot (rule 1), from the chunk's
    tables ``c_mem`` (ci, si, pid, dk), ``c_mi`` (member distinct_ids), ``ps`` (people),
    ``c_pf`` (Mixpanel profiles), ``c_er`` (latest event value since the cutoff), ``c_dk``."""
    return f"""
    SELECT m.ci, m.pid, m.dk, mi.distinct_id, p.mpid AS true_mpid, mi.has_profile,
      CASE WHEN pf.mpuid IS NOT NULL THEN 'mparticle_user_id'
           WHEN er.mk_last IS NOT NULL THEN 'event_property'
           ELSE 'distinct_id' END AS identifier_source,
      coalesce(pf.mpuid, CASE er.mk_last WHEN 1 THEN p.mpid_txt WHEN 2 THEN p.sdk_value END,
               mi.distinct_id) AS identifier,
      pf.email AS prof_email, ds.last_t
    FROM c_mem m
    JOIN c_mi mi ON mi.pid = m.pid AND mi.dk = m.dk
    JOIN ps p ON p.pid = m.pid
    LEFT JOIN c_pf pf ON pf.pid = m.pid AND pf.uk = m.dk
    LEFT JOIN c_er er ON er.pid = m.pid AND er.dk = m.dk
    LEFT JOIN c_dk ds ON ds.pid = m.pid AND ds.dk = m.dk
    WHERE m.si = {last_si}
    """


def truth_sql(as_of: int, cohorts_values: str) -> str:
    """Rules 2-4 over ``g_tpre`` (all chunks), ``g_mpa`` (existing MPIDs) and ``g_idents``
    (type, value) of existing mParticle profiles: their user identities, and their device
    identities as the ``$device:<id>`` distinct_id Mixpanel gives that device (recovery through
    a device identity, docs/rules.md#recovery-order)."""
    return f"""
    WITH c AS (SELECT * FROM (VALUES {cohorts_values}) v(ci, cohort_name, cohort_id)),
    fl AS (SELECT DISTINCT TRY_CAST(CAST(mpid AS DOUBLE) AS BIGINT) AS f FROM g_mpa),
    idv AS (SELECT value, min(type) AS type FROM g_idents GROUP BY value),
    em AS (SELECT DISTINCT value FROM g_idents WHERE type = 'email'),
    v AS (
      SELECT *, CASE WHEN regexp_full_match(identifier, '-?[0-9]+')
                     THEN TRY_CAST(identifier AS BIGINT) END AS id_mpid
      FROM g_tpre
    ),
    r AS (
      SELECT v.*, (id_mpid IN (SELECT mpid FROM g_mpa)) IS TRUE AS found,
             (id_mpid IN (SELECT f FROM fl)) IS TRUE AS float_hit
      FROM v
    )
    SELECT c.cohort_name, c.cohort_id,
      make_timestamp({as_of}::BIGINT * 1000000) AS as_of,
      r.distinct_id, r.pid AS person_id, r.true_mpid, r.identifier_source, r.identifier,
      CASE WHEN found THEN id_mpid END AS mpid,
      CASE WHEN found THEN 'matched' ELSE 'unmatched' END AS status,
      CASE WHEN found THEN NULL
           WHEN id_mpid IS NULL AND identifier_source <> 'distinct_id' THEN 'malformed_mparticle_user_id'
           WHEN id_mpid IS NULL THEN 'distinct_id_not_mpid'
           WHEN float_hit THEN 'mpid_precision_loss'
           ELSE 'mpid_not_found' END AS gap_reason,
      CASE WHEN found THEN NULL
           ELSE coalesce(idv.type, CASE WHEN em.value IS NOT NULL THEN 'email' END) END AS recoverable_via,
      r.has_profile,
      make_timestamp(r.last_t::BIGINT * 1000000) AS last_activity,
      r.last_t >= {TRUTH_CUTOFF} AS active_after_cutoff
    FROM r JOIN c ON c.ci = r.ci
    LEFT JOIN idv ON idv.value = r.distinct_id
    LEFT JOIN em ON em.value = r.prof_email
    """
