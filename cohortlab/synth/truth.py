"""The ground truth: SPEC §3 for every cohort member at the last snapshot, default settings
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


def truth_sql(last_si: int, as_of: int, cohorts_values: str) -> str:
    """SELECT of the truth rows. Needs tables ``members``, ``persons``, ``mp_prof``, ``evrule``,
    ``dk_stats`` and ``mpa`` (existing MPIDs) and ``mpa_idents`` (type, value)."""
    return f"""
    WITH m AS (SELECT ci, pid, dk FROM members WHERE si = {last_si}),
    c AS (SELECT * FROM (VALUES {cohorts_values}) v(ci, cohort_name, cohort_id)),
    fl AS (SELECT DISTINCT TRY_CAST(CAST(mpid AS DOUBLE) AS BIGINT) AS f FROM mpa),
    idv AS (SELECT value, min(type) AS type FROM mpa_idents GROUP BY value),
    em AS (SELECT DISTINCT value FROM mpa_idents WHERE type = 'email'),
    b AS (
      SELECT m.ci, m.pid, m.dk,
        CASE m.dk WHEN 1 THEN p.mpid_txt WHEN 2 THEN p.customer_id WHEN 3 THEN p.email
                  ELSE '$device:' || p.device END AS distinct_id,
        p.mpid AS true_mpid,
        pr.pid IS NOT NULL AS has_profile,
        pr.mpuid AS prof_mpuid, pr.email AS prof_email, pr.last_seen AS prof_last_seen,
        CASE er.mk_last WHEN 1 THEN p.mpid_txt WHEN 2 THEN p.sdk_value END AS ev_mpuid,
        ds.last_t, ds.last_t >= {TRUTH_CUTOFF} AS active_after_cutoff
      FROM m JOIN persons p ON p.pid = m.pid
      LEFT JOIN mp_prof pr ON pr.pid = m.pid AND pr.uk = m.dk
      LEFT JOIN evrule er ON er.pid = m.pid AND er.dk = m.dk
      LEFT JOIN dk_stats ds ON ds.pid = m.pid AND ds.dk = m.dk
    ),
    s AS (
      SELECT *,
        CASE WHEN prof_mpuid IS NOT NULL THEN 'mparticle_user_id'
             WHEN ev_mpuid IS NOT NULL THEN 'event_property'
             ELSE 'distinct_id' END AS identifier_source,
        coalesce(prof_mpuid, ev_mpuid, distinct_id) AS identifier
      FROM b
    ),
    v AS (
      SELECT *,
        CASE WHEN regexp_full_match(identifier, '-?[0-9]+')
             THEN TRY_CAST(identifier AS BIGINT) END AS id_mpid
      FROM s
    ),
    r AS (
      SELECT v.*, (id_mpid IN (SELECT mpid FROM mpa)) IS TRUE AS found,
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
      make_timestamp(greatest(coalesce(r.prof_last_seen, r.last_t), r.last_t)::BIGINT * 1000000) AS last_activity,
      r.active_after_cutoff
    FROM r JOIN c ON c.ci = r.ci
    LEFT JOIN idv ON idv.value = r.distinct_id
    LEFT JOIN em ON em.value = r.prof_email
    ORDER BY c.cohort_name, r.distinct_id
    """
