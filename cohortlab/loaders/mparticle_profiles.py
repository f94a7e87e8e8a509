"""mParticle Profile API responses → ``mpa_profiles``, ``mpa_identities``, ``mpa_attributes``,
``mpa_audiences`` (kind ``mparticle-profiles``).

Input: Profile API response objects (formats.md §5), as one (pretty-printed) object per file,
several concatenated objects, a JSON array of them, or JSONL; gzip detected by content.

* ``mpid``: a JSON integer or a string, negative allowed, read exactly as int64 (never through a
  float). Missing/null → quarantined ``missing_mpid``; anything else that is not a valid int64
  (``1.5``, ``"abc"``, ``9223372036854775808``, ``9.08e18``) → ``invalid_mpid``.
* ``user_identities`` / ``device_identities``: a list of ``{type, encoding, value}`` (or
  ``{identity_type, identity}``) objects, or an object map ``{type: value}``. Types are
  normalised to Events API names (``customerid`` → ``customer_id``, ``other2`` → ``other_id_2``).
  An entry with a null value is no identity.
* ``user_attributes``: ``{name: value}``; the value (string, list, null, boolean, number) is kept
  as JSON, and ``value_bool`` is TRUE for ``true``/``"true"``/``"True"``, FALSE for
  ``false``/``"false"``/…, else NULL.
* ``audience_memberships``: ``[{audience_id, audience_name, expiration_timestamp_ms}]``.
* ``created_timestamp_ms``, ``last_stored_timestamp_ms``: epoch ms → UTC TIMESTAMP.

A later load replaces every row of the same MPID in the four tables (the file is a snapshot of
the profile). Several records of one MPID inside a file: the last one wins; the others count as
``deduplicated``. Other quarantine reasons: ``malformed_json``, ``not_an_object``,
``invalid_timestamp``, ``invalid_identities`` (not a list/map, entry without a type, non-scalar
value), ``invalid_user_attributes`` (not an object), ``invalid_audiences``.
"""

from __future__ import annotations

from cohortlab.identifiers import mpid_sql
from cohortlab.loaders._mparticle import (
    Temp,
    attributes_sql,
    count,
    identities_sql,
    json_bad_epoch_ms_sql,
    json_bool_sql,
    json_epoch_ms_sql,
    json_is_absent_sql,
    json_mpid_text_sql,
    mpid_reason_sql,
    replace_profiles,
)
from cohortlab.loaders.base import FileContext, FileResult, Loader

_FIELDS = [
    ("mpid_j", "$.mpid"),
    ("uid", "$.user_identities"),
    ("did", "$.device_identities"),
    ("attrs", "$.user_attributes"),
    ("aud", "$.audience_memberships"),
    ("created_j", "$.created_timestamp_ms"),
    ("stored_j", "$.last_stored_timestamp_ms"),
    ("opted_j", "$.is_opted_out"),
    ("env_j", "$.environment"),
]


class MParticleProfilesLoader(Loader):
    kind = "mparticle-profiles"
    description = "mParticle Profile API responses (JSON object(s), JSON array or JSONL)"

    def load_file(self, ctx: FileContext) -> FileResult:
        tmp = Temp(ctx)
        try:
            return self._load(ctx, tmp)
        finally:
            tmp.drop_all()

    def _load(self, ctx: FileContext, tmp: Temp) -> FileResult:
        paths = "[" + ", ".join(f"'{p}'" for _, p in _FIELDS) + "]"
        fields = ", ".join(f"f[{i + 1}] AS {name}" for i, (name, _) in enumerate(_FIELDS))
        records = tmp.create(
            "records",
            f"SELECT line, raw, j, {fields} FROM ("
            f"  SELECT line, raw, j, CASE WHEN json_type(j) = 'OBJECT' THEN json_extract(j, {paths}) END AS f"
            f"  FROM ({ctx.json_records_sql()}))",
        )
        stage = tmp.create(
            "stage",
            f"""
            SELECT *, CASE WHEN reason0 IS NULL THEN {mpid_sql(json_mpid_text_sql('mpid_j'))} END AS mpid
            FROM (
              SELECT *, CASE
                WHEN j IS NULL THEN 'malformed_json'
                WHEN json_type(j) <> 'OBJECT' THEN 'not_an_object'
                WHEN {mpid_reason_sql('mpid_j')} IS NOT NULL THEN {mpid_reason_sql('mpid_j')}
                WHEN {json_bad_epoch_ms_sql('created_j')} OR {json_bad_epoch_ms_sql('stored_j')}
                  THEN 'invalid_timestamp'
                WHEN NOT {json_is_absent_sql('uid')} AND json_type(uid) NOT IN ('OBJECT', 'ARRAY')
                  THEN 'invalid_identities'
                WHEN NOT {json_is_absent_sql('did')} AND json_type(did) NOT IN ('OBJECT', 'ARRAY')
                  THEN 'invalid_identities'
                WHEN NOT {json_is_absent_sql('attrs')} AND json_type(attrs) <> 'OBJECT'
                  THEN 'invalid_user_attributes'
                WHEN NOT {json_is_absent_sql('aud')} AND json_type(aud) <> 'ARRAY'
                  THEN 'invalid_audiences'
              END AS reason0
              FROM {records}
            )""",
        )
        ids = tmp.create(
            "ids",
            f"{identities_sql(stage, 'uid', 'user')} UNION ALL {identities_sql(stage, 'did', 'device')}",
        )
        aud = tmp.create(
            "aud",
            f"""
            SELECT line, mpid, audience_id, audience_name, expiration_at,
                   (NOT is_obj OR audience_id IS NULL OR bad_exp) AS bad
            FROM (
              SELECT s.line, s.mpid, json_type(e.value) = 'OBJECT' AS is_obj,
                     {mpid_sql(json_mpid_text_sql("json_extract(e.value, '$.audience_id')"))} AS audience_id,
                     json_extract_string(e.value, '$.audience_name') AS audience_name,
                     {json_epoch_ms_sql("json_extract(e.value, '$.expiration_timestamp_ms')")} AS expiration_at,
                     {json_bad_epoch_ms_sql("json_extract(e.value, '$.expiration_timestamp_ms')")} AS bad_exp
              FROM {stage} s, json_each(s.aud) e
              WHERE s.mpid IS NOT NULL AND json_type(s.aud) = 'ARRAY'
            )""",
        )
        checked = tmp.create(
            "checked",
            f"""
            SELECT s.line, s.raw, s.mpid, s.attrs, s.created_j, s.stored_j, s.opted_j, s.env_j,
                   coalesce(s.reason0,
                     CASE WHEN s.line IN (SELECT line FROM {ids} WHERE bad) THEN 'invalid_identities'
                          WHEN s.line IN (SELECT line FROM {aud} WHERE bad) THEN 'invalid_audiences'
                     END) AS reason
            FROM {stage} s""",
        )
        quarantined = ctx.reject(f"SELECT line, reason, raw FROM {checked} WHERE reason IS NOT NULL")
        winners = tmp.create(
            "winners",
            f"""
            SELECT * FROM (
              SELECT *, row_number() OVER (PARTITION BY mpid ORDER BY line DESC) AS rn
              FROM {checked} WHERE reason IS NULL
            ) WHERE rn = 1""",
        )
        profiles = tmp.create(
            "profiles",
            f"""
            SELECT mpid, {json_epoch_ms_sql('created_j')} AS created_at,
                   {json_epoch_ms_sql('stored_j')} AS last_stored_at,
                   {json_bool_sql('opted_j')} AS is_opted_out,
                   json_extract_string(env_j, '$') AS environment,
                   'profile_api' AS source, line
            FROM {winners}""",
        )
        identities = tmp.create(
            "identities",
            f"SELECT i.mpid, i.kind, i.identity_type, i.value, i.line FROM {ids} i "
            f"WHERE i.value IS NOT NULL AND i.line IN (SELECT line FROM {winners})",
        )
        attributes = tmp.create("attributes", attributes_sql(winners, "attrs"))
        audiences = tmp.create(
            "audiences",
            f"SELECT mpid, audience_id, audience_name, expiration_at, line FROM {aud} "
            f"WHERE line IN (SELECT line FROM {winners})",
        )
        replace_profiles(ctx, profiles, identities, attributes, audiences)

        rows_read = count(ctx, f"SELECT 1 FROM {records}")
        loaded = count(ctx, f"SELECT 1 FROM {winners}")
        valid = count(ctx, f"SELECT 1 FROM {checked} WHERE reason IS NULL")
        return FileResult(rows_read=rows_read, loaded=loaded, deduplicated=valid - loaded,
                          quarantined=quarantined)
