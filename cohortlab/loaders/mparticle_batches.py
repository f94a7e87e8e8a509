"""mParticle Events API batches → updates of the profile snapshot (kind ``mparticle-batches``).

Input: Events API batches (formats.md §6): one batch per file (pretty-printed OK), a bulk array
of batches, or JSONL; gzip detected by content. Keys read: ``mpid`` (JSON integer or string,
exact int64), ``user_identities`` (object map ``{type: value}``, or a list of
``{identity_type, identity}`` as in forwarded JSON), ``device_info`` (its device-id keys such as
``ios_idfv``, ``android_uuid``), ``user_attributes``, ``deleted_user_attributes`` (string[]),
``environment``, ``timestamp_unixtime_ms`` (else the latest ``events[].data.timestamp_unixtime_ms``),
``source_request_id``. Other keys (``events``, ``source_info``, ``context``, …) are tolerated.

Batches apply IN ORDER — file order inside a file, load order across loads — all set-based:

* a batch for an MPID without a profile creates it (``source = 'batches'``, ``created_at`` = its
  first batch time); an existing profile keeps its row, with ``last_stored_at`` moved to the latest
  batch time and ``environment`` set from the latest batch that has one;
* identities: per (MPID, type) the latest value wins and replaces the stored one; an identity
  sent as JSON ``null`` removes that identity (assumption);
* ``user_attributes`` set (latest wins, value kept as JSON, ``value_bool`` as for profiles);
  ``deleted_user_attributes`` remove the attribute. Inside one batch a delete is applied after
  the sets (a name in both ends deleted).

Counts: every applied batch is ``loaded``; a batch repeating the ``source_request_id`` of an
earlier batch of the same file is ``deduplicated`` (mParticle drops it); quarantined:
``malformed_json``, ``not_an_object``, ``missing_mpid``, ``invalid_mpid``, ``invalid_timestamp``,
``invalid_identities``, ``invalid_user_attributes``, ``invalid_deleted_attributes``.
"""

from __future__ import annotations

from cohortlab.identifiers import mpid_sql
from cohortlab.loaders._mparticle import (
    DEVICE_IDENTITY_TYPES,
    Temp,
    attributes_sql,
    count,
    identities_sql,
    identity_type_sql,
    json_bad_epoch_ms_sql,
    json_epoch_ms_sql,
    json_is_absent_sql,
    json_mpid_text_sql,
    mpid_reason_sql,
)
from cohortlab.loaders.base import FileContext, FileResult, Loader

_FIELDS = [
    ("mpid_j", "$.mpid"),
    ("uid", "$.user_identities"),
    ("attrs", "$.user_attributes"),
    ("del", "$.deleted_user_attributes"),
    ("env_j", "$.environment"),
    ("ts_j", "$.timestamp_unixtime_ms"),
    ("srid_j", "$.source_request_id"),
    ("device_info", "$.device_info"),
]


class MParticleBatchesLoader(Loader):
    kind = "mparticle-batches"
    description = "mParticle Events API batches (one batch, a bulk array, or JSONL), applied in order"

    def load_file(self, ctx: FileContext) -> FileResult:
        tmp = Temp(ctx)
        try:
            return self._load(ctx, tmp)
        finally:
            tmp.drop_all()

    def _load(self, ctx: FileContext, tmp: Temp) -> FileResult:
        ex = ctx.engine.execute
        params = [ctx.load_id, str(ctx.path)]
        paths = "[" + ", ".join(f"'{p}'" for _, p in _FIELDS) + "]"
        fields = ", ".join(f"f[{i + 1}] AS {name}" for i, (name, _) in enumerate(_FIELDS))
        records = tmp.create(
            "records",
            f"SELECT line, raw, j, {fields}, "
            f"  list_max(TRY_CAST(json_extract_string(j, '$.events[*].data.timestamp_unixtime_ms') AS DOUBLE[]))"
            f"    AS event_ms "
            f"FROM (SELECT line, raw, j, CASE WHEN json_type(j) = 'OBJECT' THEN json_extract(j, {paths}) END AS f"
            f"      FROM ({ctx.json_records_sql()}))",
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
                WHEN {json_bad_epoch_ms_sql('ts_j')} THEN 'invalid_timestamp'
                WHEN NOT {json_is_absent_sql('uid')} AND json_type(uid) NOT IN ('OBJECT', 'ARRAY')
                  THEN 'invalid_identities'
                WHEN NOT {json_is_absent_sql('attrs')} AND json_type(attrs) <> 'OBJECT'
                  THEN 'invalid_user_attributes'
                WHEN NOT {json_is_absent_sql('del')} AND (json_type(del) <> 'ARRAY'
                     OR list_contains(list_transform(json_extract(del, '$[*]'),
                                                     lambda x: json_type(x) <> 'VARCHAR'), TRUE))
                  THEN 'invalid_deleted_attributes'
              END AS reason0
              FROM {records}
            )""",
        )
        device_types = ", ".join(f"'{t}'" for t in DEVICE_IDENTITY_TYPES)
        ids = tmp.create(
            "ids",
            f"""
            {identities_sql(stage, 'uid', 'user')}
            UNION ALL
            SELECT line, pos, mpid, 'device' AS kind, identity_type, value, FALSE AS bad FROM (
              SELECT s.line, e.id AS pos, s.mpid, {identity_type_sql('e.key')} AS identity_type,
                     json_extract_string(e.value, '$') AS value
              FROM {stage} s, json_each(s.device_info) e
              WHERE s.mpid IS NOT NULL AND json_type(s.device_info) = 'OBJECT'
                AND json_type(e.value) IN ('VARCHAR', 'BIGINT', 'UBIGINT')
            ) WHERE identity_type IN ({device_types})""",
        )
        checked = tmp.create(
            "checked",
            f"""
            SELECT s.line, s.raw, s.mpid, s.attrs, s.del, s.env_j, s.ts_j, s.srid_j, s.event_ms,
                   coalesce(s.reason0,
                     CASE WHEN s.line IN (SELECT line FROM {ids} WHERE bad) THEN 'invalid_identities' END
                   ) AS reason
            FROM {stage} s""",
        )
        quarantined = ctx.reject(f"SELECT line, reason, raw FROM {checked} WHERE reason IS NOT NULL")
        kept = tmp.create(
            "kept",
            f"""
            SELECT line, mpid, attrs, del,
                   json_extract_string(env_j, '$') AS environment,
                   coalesce({json_epoch_ms_sql('ts_j')}, epoch_ms(CAST(event_ms AS BIGINT))) AS ts
            FROM (
              SELECT *, json_extract_string(srid_j, '$') AS srid,
                     row_number() OVER (PARTITION BY json_extract_string(srid_j, '$') ORDER BY line) AS n
              FROM {checked} WHERE reason IS NULL
            ) WHERE srid IS NULL OR n = 1""",
        )

        # -- profiles: update the existing ones, create the unknown ones
        agg = tmp.create(
            "agg",
            f"""
            SELECT mpid, min(ts) AS first_ts, max(ts) AS last_ts, min(line) AS first_line,
                   arg_max(environment, line) FILTER (WHERE environment IS NOT NULL) AS environment
            FROM {kept} GROUP BY mpid""",
        )
        ex(
            f"""
            UPDATE mpa_profiles SET
              last_stored_at = CASE WHEN a.last_ts IS NULL THEN mpa_profiles.last_stored_at
                                    ELSE greatest(mpa_profiles.last_stored_at, a.last_ts) END,
              environment = coalesce(a.environment, mpa_profiles.environment)
            FROM {agg} a WHERE mpa_profiles.mpid = a.mpid"""
        )
        ex(
            f"""
            INSERT INTO mpa_profiles
            SELECT a.mpid, a.first_ts, a.last_ts, NULL, a.environment, 'batches', ?::BIGINT, ?::VARCHAR,
                   a.first_line
            FROM {agg} a WHERE NOT EXISTS (SELECT 1 FROM mpa_profiles p WHERE p.mpid = a.mpid)""",
            params,
        )

        # -- identities: per (mpid, kind, type) the latest value replaces the stored one
        latest_ids = tmp.create(
            "latest_ids",
            f"""
            SELECT mpid, kind, identity_type, value, line FROM (
              SELECT i.*, row_number() OVER (PARTITION BY i.mpid, i.kind, i.identity_type
                                             ORDER BY i.line DESC, i.pos DESC) AS rn
              FROM {ids} i WHERE i.line IN (SELECT line FROM {kept})
            ) WHERE rn = 1""",
        )
        ex(
            f"""
            DELETE FROM mpa_identities USING {latest_ids} l
            WHERE mpa_identities.mpid = l.mpid AND mpa_identities.kind = l.kind
              AND mpa_identities.identity_type = l.identity_type"""
        )
        ex(
            f"INSERT INTO mpa_identities SELECT mpid, kind, identity_type, value, ?::BIGINT, ?::VARCHAR, line "
            f"FROM {latest_ids} WHERE value IS NOT NULL",
            params,
        )

        # -- attributes: sets and deletes in batch order; the last operation per name wins
        last_ops = tmp.create(
            "last_ops",
            f"""
            SELECT mpid, name, op, value, value_bool, line FROM (
              SELECT *, row_number() OVER (PARTITION BY mpid, name ORDER BY line DESC, sub DESC) AS rn
              FROM (
                SELECT mpid, name, 'set' AS op, value, value_bool, line, 0 AS sub
                FROM ({attributes_sql(kept, 'attrs')})
                UNION ALL
                SELECT k.mpid, json_extract_string(e.value, '$') AS name, 'delete' AS op,
                       NULL::JSON AS value, NULL::BOOLEAN AS value_bool, k.line, 1 AS sub
                FROM {kept} k, json_each(k.del) e
                WHERE json_type(k.del) = 'ARRAY'
              )
            ) WHERE rn = 1""",
        )
        ex(
            f"""
            DELETE FROM mpa_attributes USING {last_ops} l
            WHERE mpa_attributes.mpid = l.mpid AND mpa_attributes.name = l.name"""
        )
        ex(
            f"INSERT INTO mpa_attributes SELECT mpid, name, value, value_bool, ?::BIGINT, ?::VARCHAR, line "
            f"FROM {last_ops} WHERE op = 'set'",
            params,
        )

        rows_read = count(ctx, f"SELECT 1 FROM {records}")
        loaded = count(ctx, f"SELECT 1 FROM {kept}")
        valid = count(ctx, f"SELECT 1 FROM {checked} WHERE reason IS NULL")
        return FileResult(rows_read=rows_read, loaded=loaded, deduplicated=valid - loaded,
                          quarantined=quarantined)
