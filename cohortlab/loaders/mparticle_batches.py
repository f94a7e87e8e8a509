"""mParticle Events API batches → updates of the profile snapshot (kind ``mparticle-batches``).

Input: Events API batches (docs/loading.md#mparticle-batches): one batch per file (pretty-printed OK), a bulk array
of batches, or JSONL; gzip detected by content. Keys read: ``mpid`` (JSON integer or string,
exact int64), ``user_identities`` (object map ``{type: value}``, or a list of
``{identity_type, identity}`` as in forwarded JSON), ``device_info`` (its device-id keys such as
``ios_idfv``, ``android_uuid``; an identity written as a JSON float keeps the file's token),
``user_attributes``, ``deleted_user_attributes`` (string[]), ``environment``, ``timestamp_unixtime_ms`` (else the latest ``events[].data.timestamp_unixtime_ms``),
``source_request_id``. Other keys (``events``, ``source_info``, ``context``, …) are tolerated.

Batches apply IN THE ORDER OF THEIR OWN TIME (``timestamp_unixtime_ms``, else the latest event
time; a batch without any time sits after the timed batches above it in the file, and a later load
comes after an earlier one), all set-based. ``mpa_batch_times`` keeps, per MPID and identity or
attribute, the time of the latest timed batch that touched it (an untimed one keeps it): an older
batch loaded later does not overwrite it. Nor does a batch at or before the as-of time of the
snapshot holding its profile (``_mparticle.snapshot_newer_sql``; a load warning counts them).
``mpa_batch_keys`` keeps the batches applied: a batch loaded again (the same
``source_request_id``, or the same content and time, e.g. a gzip copy of a file under another
name) is a replay, counted as deduplicated, and changes nothing; a batch with neither a time nor a
request id is no replay by its content (the same update sent again is a new write).

* a batch for an MPID without a profile creates it (``source = 'batches'``, ``created_at`` = its
  earliest batch time, also when an older batch arrives in a later load); an existing profile keeps its row, with ``last_stored_at`` moved to the latest
  batch time and ``environment`` set from the latest batch (in time order, also across loads:
  ``mpa_batch_times`` item ``environment``) that has one;
* identities: per (MPID, type) the latest value wins and replaces the stored one; an identity
  sent as JSON ``null`` removes that identity (assumption); one sent as ``""`` is none, neither set
  nor removed (the JSON reference's iOS sample writes ``"android_uuid": ""``); a batch giving one type in two
  spellings (``{"Email": …, "email": …}``) applies the one given last, with a load warning naming
  the line and the type, never the values;
* ``user_attributes`` set (latest wins, value kept as JSON, ``value_bool`` as for profiles);
  ``deleted_user_attributes`` remove the attribute. Inside one batch a delete is applied after
  the sets (a name in both ends deleted).

A record holding a key only a Profile API answer has (``device_identities``,
``audience_memberships``, ``created_timestamp_ms``, ``last_stored_timestamp_ms``) is no batch: it
is quarantined ``profile_api_answer`` (a folder of downloads mixing both kinds), not applied. Nor
is a Firehose request (the JSON mParticle sends a Firehose partner, which a partner's Lambda may
have stored: a ``firehose_version`` key): its identities may be hashed (``"encoding": "md5"``),
and its times and device ids are not under a batch's keys; it is quarantined ``firehose_request``.

Counts: every applied batch is ``loaded``; a batch repeating the ``source_request_id`` of an earlier
batch of the same file is ``deduplicated`` (mParticle drops it); quarantined: ``firehose_request``,
``idsync_response`` (an IDSync answer: ``matched_identities``), ``profile_api_answer``,
``malformed_json``, ``not_an_object``, ``missing_mpid``, ``invalid_mpid``, ``invalid_timestamp``,
``invalid_identities`` (also a ``device_info`` device id key holding ``true``/``false``, an object
or a list), ``invalid_user_attributes``, ``invalid_deleted_attributes``.
"""

from __future__ import annotations

from cohortlab.loaders._mparticle import (
    DEVICE_IDENTITY_TYPES,
    OTHER_MESSAGE_CHECKS,
    OTHER_MESSAGE_FIELDS,
    Temp,
    absent_sql,
    attributes_sql,
    bad_epoch_ms_sql,
    clean_identity_type_sql,
    count,
    create_stage,
    epoch_ms_sql,
    hashed_identity_warnings,
    identities_sql,
    identity_type_sql,
    map_entries_sql,
    recover_identity_float_tokens,
    reject_with_raw,
    repeated_identity_warnings,
    snapshot_newer_sql,
    time_warnings,
)
from cohortlab.loaders.base import FileContext, FileResult, Loader

_SCALARS = [
    ("mpid_text", "$.mpid"),
    ("environment", "$.environment"),
    ("ts_ms", "$.timestamp_unixtime_ms"),
    ("srid", "$.source_request_id"),
]
_CONTAINERS = [
    ("uid", "$.user_identities"),
    ("attrs", "$.user_attributes"),
    ("del", "$.deleted_user_attributes"),
    ("device_info", "$.device_info"),
    # keys only a Profile API answer has (never a batch, inbound or forwarded): such a record is
    # quarantined, not applied as a batch (device_identities and audiences unread, created lost)
    ("pa_device_ids", "$.device_identities"),
    ("pa_audiences", "$.audience_memberships"),
    ("pa_created", "$.created_timestamp_ms"),
    ("pa_stored", "$.last_stored_timestamp_ms"),
    *OTHER_MESSAGE_FIELDS,  # a Firehose request, an IDSync answer: quarantined (OTHER_MESSAGE_CHECKS)
]
# the latest events[].data.timestamp_unixtime_ms, read only when the batch has no top-level time
_EVENT_MS = (
    ", CASE WHEN is_obj AND s[3] IS NULL THEN list_max(TRY_CAST("
    "json_extract_string(j, '$.events[*].data.timestamp_unixtime_ms') AS DOUBLE[])) END AS event_ms"
)
_CHECKS = [
    *OTHER_MESSAGE_CHECKS,
    (" OR ".join(f"NOT {absent_sql(c)}" for c in ("pa_device_ids", "pa_audiences", "pa_created", "pa_stored")),
     "profile_api_answer"),
    (bad_epoch_ms_sql("ts_ms"), "invalid_timestamp"),
    (f"NOT {absent_sql('uid')} AND uid_t NOT IN ('OBJECT', 'ARRAY')", "invalid_identities"),
    (f"NOT {absent_sql('attrs')} AND attrs_t <> 'OBJECT'", "invalid_user_attributes"),
    (
        f"NOT {absent_sql('del')} AND (del_t <> 'ARRAY' OR "
        "list_bool_or(list_transform(json_extract(del, '$[*]'), lambda x: left(x, 1) <> '\"')))",
        "invalid_deleted_attributes",
    ),
]


def _identity_item(a: str) -> str:
    """SQL: the ``mpa_batch_times.item`` of an identity row aliased ``a``."""
    return f"'identity:' || {a}.kind || ':' || {a}.identity_type"


def _attribute_item(a: str) -> str:
    return f"'attribute:' || {a}.name"


def _environment_item(a: str) -> str:
    return "'environment'"


def _newer_stored(alias: str, item) -> str:
    """SQL BOOLEAN: a batch newer than row ``alias`` (its ``okey``) already set or removed the
    same item (``item(alias)``) of the same MPID (no time on either side: load order, the new
    one applies). (A batch older than the snapshot holding its profile is ``blocked`` in ``kept``.)"""
    return (f"EXISTS (SELECT 1 FROM mpa_batch_times t WHERE t.mpid = {alias}.mpid AND t.item = {item(alias)} "
            f"AND t.batch_time > {alias}.okey)")


def _record_times(ex, ops: str, item, params: list) -> None:
    """Store the order time of the batch that last touched each item of ``ops``. A batch without
    a time keeps the item's stored time: it sits after the earlier loads, and a batch older than
    that time, loaded later still, does not overwrite it."""
    ex(f"UPDATE mpa_batch_times SET batch_time = coalesce(o.okey, mpa_batch_times.batch_time), "
       f"load_id = ?::BIGINT, source_file = ?::VARCHAR, line = o.line FROM {ops} o "
       f"WHERE mpa_batch_times.mpid = o.mpid AND mpa_batch_times.item = {item('o')}", params)
    ex(f"INSERT INTO mpa_batch_times SELECT o.mpid, {item('o')}, o.okey, ?::BIGINT, ?::VARCHAR, o.line FROM {ops} o "
       f"WHERE NOT EXISTS (SELECT 1 FROM mpa_batch_times t WHERE t.mpid = o.mpid AND t.item = {item('o')})",
       params)


def _older_than_snapshot_warning(ctx, kept: str) -> list[str]:
    """A load warning for the batches timed at or before the as-of time of the snapshot that holds
    their profile (``blocked``): they change nothing of it (docs/loading.md#mparticle-batches)."""
    n, line = ctx.engine.query_rows(f"SELECT count(*), min(line) FROM {kept} WHERE blocked")[0]
    if not n:
        return []
    return [f"{ctx.path}: {n:,} batch(es) are timed at or before the as_of time of the mParticle snapshot that "
            f"holds their profile (first: line {line}): they change nothing of it, the snapshot holds the profile "
            "as it was then"]


class MParticleBatchesLoader(Loader):
    kind = "mparticle-batches"
    description = "Events API batches (one, a bulk array, or JSONL)"

    def all_quarantined_note(self, result: FileResult, first: str | None) -> str:
        """Every batch quarantined ``missing_mpid``: batches as sent to mParticle's Events API,
        which names the user by ``user_identities`` only (its docs: ``mpid`` optional)."""
        if set(result.quarantined) != {"missing_mpid"}:
            return ""
        return (" (no batch carries an mpid: a batch sent to mParticle's Events API may name its user by "
                "user_identities only, and mParticle finds or assigns the MPID; cohortlab applies batches to "
                "profiles by MPID, as mParticle's event outputs (S3, GCS) forward them with it)")

    def load_file(self, ctx: FileContext) -> FileResult:
        tmp = Temp(ctx)
        result = self._load(ctx, tmp)
        tmp.drop_all()  # on error the load's transaction rolls back, temp tables included
        return result

    def _load(self, ctx: FileContext, tmp: Temp) -> FileResult:
        ex = ctx.engine.execute
        params = [ctx.load_id, str(ctx.path)]
        stage = create_stage(ctx, tmp, _SCALARS, _CONTAINERS, _CHECKS, _EVENT_MS)
        device_types = ", ".join(f"'{t}'" for t in DEVICE_IDENTITY_TYPES)
        ids = tmp.create(
            "ids",
            f"""
            {identities_sql(stage, 'uid', 'user')}
            UNION ALL
            SELECT line, pos, mpid, 'device' AS kind, identity_type, value, bad,
                   coalesce(key <> identity_type, FALSE) AS respelled,
                   CASE WHEN value_t = 'DOUBLE' THEN key END AS float_key, FALSE AS hashed FROM (
              SELECT line, 0 AS pos, mpid, {identity_type_sql('clean_type')} AS identity_type, value, key, value_t,
                     -- a device id key holding true/false, an object or a list: as in user_identities
                     value IS NULL AS bad
              FROM (
                SELECT line, mpid, key, {clean_identity_type_sql('key')} AS clean_type,
                       CASE WHEN value_t IN ('VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE')
                            THEN json_extract_string(value, '$') END AS value, value_t
                FROM ({map_entries_sql(f"(SELECT * FROM {stage} WHERE reason0 IS NULL)", 'device_info')})
                WHERE value_t <> 'NULL'  -- "ios_idfv": null: no id of that kind, nothing changes
              ) WHERE value IS DISTINCT FROM ''  -- no device id: "android_uuid": "" in an iOS device's device_info
            ) WHERE identity_type IN ({device_types})""",
        )
        recover_identity_float_tokens(ctx, ids)
        checked = tmp.create(
            "checked",
            f"""
            SELECT s.line, s.mpid, s.attrs, s.attrs_t, s.del, s.del_t, s.environment, s.ts_ms, s.srid, s.event_ms,
                   -- what makes a replay: the request id, else the batch's content (minified JSON)
                   coalesce('srid:' || s.srid,
                            'content:' || hash(s.mpid, s.ts_ms, s.event_ms, s.environment, s.uid::VARCHAR,
                                               s.attrs::VARCHAR, s.del::VARCHAR, s.device_info::VARCHAR)::VARCHAR) AS bkey,
                   coalesce(s.reason0,
                     CASE WHEN s.line IN (SELECT line FROM {ids} WHERE bad) THEN 'invalid_identities' END
                   ) AS reason
            FROM {stage} s""",
        )
        quarantined = reject_with_raw(ctx, checked)
        # kept: the batches applied (not a repeat of an earlier batch of the file, not a replay of
        # a batch of an earlier load). A batch with neither a time nor a request id is no replay
        # by its content: the same update sent again later (a user entering a cohort again) is a
        # new write. `okey` orders them: their own time, else (no time) the time of the latest
        # timed batch above them in the file; ties (and NULL) by line. `blocked`: the batch's own
        # time is at or before the as-of time of the snapshot holding its profile, which already
        # holds what it set (a batch without a time of its own is never so: its age is unknown).
        kept = tmp.create(
            "kept",
            f"""
            SELECT * EXCLUDE (srid), coalesce(ts, max(ts) OVER (ORDER BY line ROWS UNBOUNDED PRECEDING)) AS okey,
                   coalesce({snapshot_newer_sql('b.mpid', 'b.ts')}, FALSE) AS blocked
            FROM (
              SELECT line, mpid, attrs, attrs_t, del, del_t, environment, bkey, srid,
                     coalesce({epoch_ms_sql('ts_ms')}, {epoch_ms_sql('event_ms')}) AS ts
              FROM (
                SELECT *, row_number() OVER (PARTITION BY srid ORDER BY line) AS n
                FROM {checked} WHERE reason IS NULL
              ) WHERE srid IS NULL OR n = 1
            ) b WHERE (srid IS NULL AND ts IS NULL) OR bkey NOT IN (SELECT batch_key FROM mpa_batch_keys)""",
        )
        ex(f"INSERT INTO mpa_batch_keys SELECT bkey, mpid, ts, ?::BIGINT, ?::VARCHAR, line FROM {kept} "
           f"WHERE bkey NOT IN (SELECT batch_key FROM mpa_batch_keys)", params)
        older = _older_than_snapshot_warning(ctx, kept)

        # -- profiles: update the existing ones, create the unknown ones
        agg = tmp.create(
            "agg",
            f"""
            SELECT mpid, min(ts) AS first_ts, max(ts) AS last_ts, min(line) AS first_line
            FROM {kept} WHERE NOT blocked GROUP BY mpid""",
        )
        # the environment of the latest batch (in time order, as everything else) that has one,
        # unless a newer batch of an earlier load set it
        env = tmp.create(
            "env",
            f"""
            SELECT mpid, environment, line, okey FROM (
              SELECT mpid, environment, line, okey,
                     row_number() OVER (PARTITION BY mpid ORDER BY okey DESC NULLS LAST, line DESC) AS rn
              FROM {kept} WHERE environment IS NOT NULL AND NOT blocked
            ) l WHERE rn = 1 AND NOT {_newer_stored("l", _environment_item)}""",
        )
        _record_times(ex, env, _environment_item, params)
        ex(
            f"""
            UPDATE mpa_profiles SET
              -- a profile a batch created is created at its earliest batch, whatever the load
              -- order (an older batch may arrive in a later load); a Profile API row keeps its own
              created_at = CASE WHEN mpa_profiles.source = 'batches' THEN least(mpa_profiles.created_at, a.first_ts)
                                ELSE mpa_profiles.created_at END,
              last_stored_at = CASE WHEN a.last_ts IS NULL THEN mpa_profiles.last_stored_at
                                    ELSE greatest(mpa_profiles.last_stored_at, a.last_ts) END
            FROM {agg} a WHERE mpa_profiles.mpid = a.mpid"""
        )
        ex(
            f"""
            INSERT INTO mpa_profiles
            SELECT a.mpid, a.first_ts, a.last_ts, NULL, NULL, 'batches', ?::BIGINT, ?::VARCHAR,
                   a.first_line
            FROM {agg} a WHERE NOT EXISTS (SELECT 1 FROM mpa_profiles p WHERE p.mpid = a.mpid)""",
            params,
        )
        ex(f"UPDATE mpa_profiles SET environment = e.environment FROM {env} e WHERE mpa_profiles.mpid = e.mpid")

        # -- identities: per (mpid, kind, type) the latest value replaces the stored one
        latest_ids = tmp.create(
            "latest_ids",
            f"""
            SELECT mpid, kind, identity_type, value, line, okey FROM (
              SELECT i.*, k.okey, row_number() OVER (PARTITION BY i.mpid, i.kind, i.identity_type
                                                     ORDER BY k.okey DESC NULLS LAST, i.line DESC, i.pos DESC) AS rn
              FROM {ids} i JOIN {kept} k ON k.line = i.line
              WHERE NOT i.hashed AND NOT k.blocked  -- a hash is not the identity: neither set nor removed
            ) l WHERE rn = 1 AND NOT {_newer_stored("l", _identity_item)}""",
        )
        _record_times(ex, latest_ids, _identity_item, params)
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
            SELECT mpid, name, op, value, value_bool, line, okey FROM (
              SELECT o.*, k.okey,
                     row_number() OVER (PARTITION BY o.mpid, o.name ORDER BY k.okey DESC NULLS LAST, o.line DESC, o.sub DESC) AS rn
              FROM (
                SELECT mpid, name, 'set' AS op, value, value_bool, line, 0 AS sub
                FROM ({attributes_sql(kept, 'attrs')})
                UNION ALL
                SELECT mpid, unnest(json_extract_string(del, '$[*]')) AS name, 'delete' AS op,
                       NULL::JSON AS value, NULL::BOOLEAN AS value_bool, line, 1 AS sub
                FROM {kept} WHERE del_t = 'ARRAY'
              ) o JOIN {kept} k ON k.line = o.line WHERE NOT k.blocked
            ) l WHERE rn = 1 AND NOT {_newer_stored("l", _attribute_item)}""",
        )
        _record_times(ex, last_ops, _attribute_item, params)
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

        rows_read = count(ctx, f"SELECT 1 FROM {stage}")
        loaded = count(ctx, f"SELECT 1 FROM {kept}")
        valid = count(ctx, f"SELECT 1 FROM {checked} WHERE reason IS NULL")
        warnings = older + time_warnings(ctx, checked, {"ts_ms": "timestamp_unixtime_ms",
                                                "event_ms": "events[].data.timestamp_unixtime_ms"},
                                 where="reason IS NULL")
        warnings += hashed_identity_warnings(ctx, ids, f"line IN (SELECT line FROM {kept})")
        warnings += repeated_identity_warnings(  # a null value counts: it removes the identity
            ctx, ids, "TRUE", "the value given last is applied (of device_info keys, one of them)")
        return FileResult(rows_read=rows_read, loaded=loaded, deduplicated=valid - loaded,
                          quarantined=quarantined, warnings=warnings)
