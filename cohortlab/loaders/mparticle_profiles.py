"""mParticle Profile API responses → ``mpa_profiles``, ``mpa_identities``, ``mpa_attributes``,
``mpa_audiences`` (kind ``mparticle-profiles``).

Input: Profile API response objects (docs/loading.md#mparticle-profiles), as one (pretty-printed) object per file,
several concatenated objects, a JSON array of them, or JSONL; gzip detected by content.

* ``mpid``: a JSON integer or a string, negative allowed, read exactly as int64 (never through a
  float). Missing/null → quarantined ``missing_mpid``; anything else that is not a valid int64
  (``1.5``, ``"abc"``, ``9223372036854775808``, ``9.08e18``) → ``invalid_mpid``.
* ``user_identities`` / ``device_identities``: a list of ``{type, encoding, value}`` (or
  ``{identity_type, identity}``) objects, or an object map ``{type: value}``. Types are
  normalised to Events API names (``customerid`` → ``customer_id``, ``other2`` → ``other_id_2``).
  An entry with a null or empty-string value is no identity; a value written as a JSON float keeps
  the file's token (:func:`_mparticle.recover_identity_float_tokens`). A record giving one type in two spellings
  (``Email``, ``email``) keeps both values under the type, with a load warning naming the line and
  the type (never the values: :func:`_mparticle.repeated_identity_warnings`).
* ``user_attributes``: ``{name: value}``; the value (string, list, null, boolean, number) is kept
  as JSON, and ``value_bool`` is TRUE for ``true``/``"true"``/``"True"``, FALSE for
  ``false``/``"false"``/…, else NULL.
* ``audience_memberships``: ``[{audience_id, audience_name, expiration_timestamp_ms}]``.
* ``created_timestamp_ms``, ``last_stored_timestamp_ms``: epoch ms → UTC TIMESTAMP; a number outside the
  years 1-9999 is no time, and it or one before 1973-03-03 (a time in seconds?) is a load warning.

JSONL is read by the typed fast path (:mod:`cohortlab.loaders.fast`: ``read_json`` of the
top-level fields) when no record has a record-level problem (a malformed line, a missing or
invalid MPID, a bad timestamp or container); any other file by the exact path, with the same rows.

A later snapshot (by its ``as_of``, else its load time) replaces every row of the same MPID in the
four tables (the file is a snapshot of the profile: ``_mparticle.replace_profiles``). Several
records of one MPID inside a file: the last one wins; the others count as ``deduplicated``. A record
holding a key only an Events API batch has (``events``, ``device_info``, ``source_request_id``,
``deleted_user_attributes``, ``timestamp_unixtime_ms``, ...: ``_mparticle.BATCH_ONLY_KEYS``) is an
Events API batch, not a Profile API answer:
quarantined ``events_api_batch`` (it would replace the profile with the few identities and
attributes a batch carries). A Firehose request (a ``firehose_version`` key: the JSON mParticle
sends a Firehose partner, its identities possibly MD5-hashed) is neither: quarantined
``firehose_request``. An IDSync answer (a ``matched_identities`` key: the request's matched
identities only, not the profile) is quarantined ``idsync_response``. Other quarantine reasons:
``malformed_json``, ``not_an_object``, ``invalid_timestamp``, ``invalid_identities`` (not a
list/map, entry without a type, non-scalar value), ``invalid_user_attributes`` (not an object),
``invalid_audiences``.
"""

from __future__ import annotations

import re

from cohortlab.identifiers import mpid_sql
from cohortlab.loaders._mparticle import (
    BATCH_ONLY_KEYS,
    OTHER_MESSAGE_CHECKS,
    OTHER_MESSAGE_FIELDS,
    Temp,
    absent_sql,
    attributes_sql,
    bad_epoch_ms_sql,
    create_stage,
    epoch_ms_sql,
    hashed_identity_warnings,
    identities_sql,
    recover_identity_float_tokens,
    reject_with_raw,
    repeated_identity_warnings,
    replace_profiles,
    text_bool_sql,
    time_warnings,
)
from cohortlab.loaders.base import AsOfOnly, FileContext, FileResult, Loader

_SCALARS = [
    ("mpid_text", "$.mpid"),
    ("created_ms", "$.created_timestamp_ms"),
    ("stored_ms", "$.last_stored_timestamp_ms"),
    ("opted", "$.is_opted_out"),
    ("environment", "$.environment"),
]
# the scalars the typed fast path reads as VARCHAR: used only as an MPID, epoch numbers or booleans
_FAST_TEXT = ("mpid_text", "created_ms", "stored_ms", "opted")
_CONTAINERS = [
    ("uid", "$.user_identities"),
    ("did", "$.device_identities"),
    ("attrs", "$.user_attributes"),
    ("aud", "$.audience_memberships"),
    # keys of an Events API batch (inbound or forwarded), never of a Profile API answer: such a
    # record is quarantined, not read as a snapshot of the profile (which it would replace)
    *((f"batch_{i}", f"$.{key}") for i, key in enumerate(BATCH_ONLY_KEYS)),
    *OTHER_MESSAGE_FIELDS,  # a Firehose request, an IDSync answer: quarantined (OTHER_MESSAGE_CHECKS)
]
_CHECKS = [
    *OTHER_MESSAGE_CHECKS,
    (" OR ".join(f"NOT {absent_sql(f'batch_{i}')}" for i in range(len(BATCH_ONLY_KEYS))), "events_api_batch"),
    (f"{bad_epoch_ms_sql('created_ms')} OR {bad_epoch_ms_sql('stored_ms')}", "invalid_timestamp"),
    (f"NOT {absent_sql('uid')} AND uid_t NOT IN ('OBJECT', 'ARRAY')", "invalid_identities"),
    (f"NOT {absent_sql('did')} AND did_t NOT IN ('OBJECT', 'ARRAY')", "invalid_identities"),
    (f"NOT {absent_sql('attrs')} AND attrs_t <> 'OBJECT'", "invalid_user_attributes"),
    (f"NOT {absent_sql('aud')} AND aud_t <> 'ARRAY'", "invalid_audiences"),
]
_AUDIENCE = '[{"audience_id": "VARCHAR", "audience_name": "VARCHAR", "expiration_timestamp_ms": "VARCHAR"}]'


_CONSUMER_PROFILES = re.compile(r'^\s*\{\s*"consumer_profiles"\s*:')


class MParticleProfilesLoader(AsOfOnly, Loader):
    kind = "mparticle-profiles"
    description = "Profile API responses (objects, array or JSONL)"
    csv_advice = "A CSV of mParticle profiles (an mpid column, identity and attribute columns) loads with mparticle-csv"

    def all_quarantined_note(self, result: FileResult, first: str | None) -> str:
        """Every record quarantined ``missing_mpid``, the first holding ``consumer_profiles``: an
        answer of mParticle's Platform API, whose profiles name their MPID ``id``."""
        if set(result.quarantined) != {"missing_mpid"} or not first or not _CONSUMER_PROFILES.search(first):
            return ""
        return (" (the records hold consumer_profiles, an answer of mParticle's Platform API whose profiles name "
                "their MPID id: this kind reads the Profile API's answers, one profile per record with its mpid)")

    def load_file(self, ctx: FileContext) -> FileResult:
        tmp = Temp(ctx)
        result = self._load(ctx, tmp)
        tmp.drop_all()  # on error the load's transaction rolls back, temp tables included
        return result

    source = "profile_api"  # mpa_profiles.source of the rows written

    def _stage(self, ctx: FileContext, tmp: Temp) -> tuple[str, list[str], list[str]]:
        """The staged records (see ``_mparticle.stage_sql``), the warnings found while staging
        them, and the attribute names the file carries as columns (none in JSON: see
        ``_mparticle.replace_profiles``); a subclass reading another file format builds them from
        its own (line, j) records."""
        return create_stage(ctx, tmp, _SCALARS, _CONTAINERS, _CHECKS, fast_text=_FAST_TEXT), [], []

    def _load(self, ctx: FileContext, tmp: Temp) -> FileResult:
        stage, warnings, columns = self._stage(ctx, tmp)
        ids = tmp.create(
            "ids",
            f"{identities_sql(stage, 'uid', 'user')} UNION ALL {identities_sql(stage, 'did', 'device')}",
        )
        if self.source == "profile_api":  # a JSON file (not mparticle-parquet's table)
            recover_identity_float_tokens(ctx, ids)
        aud = tmp.create(
            "aud",
            f"""
            SELECT line, mpid, audience_id, el.audience_name AS audience_name,
                   {epoch_ms_sql('el.expiration_timestamp_ms')} AS expiration_at,
                   (el IS NULL OR audience_id IS NULL OR {bad_epoch_ms_sql('el.expiration_timestamp_ms')}) AS bad
            FROM (
              SELECT *, {mpid_sql('el.audience_id')} AS audience_id
              FROM (
                SELECT line, mpid, unnest(json_transform(aud, '{_AUDIENCE}')) AS el
                FROM {stage} WHERE reason0 IS NULL AND aud_t = 'ARRAY'
              )
            )""",
        )
        checked = tmp.create(
            "checked",
            f"""
            SELECT s.line, s.mpid,
                   coalesce(s.reason0,
                     CASE WHEN s.line IN (SELECT line FROM {ids} WHERE bad) THEN 'invalid_identities'
                          WHEN s.line IN (SELECT line FROM {aud} WHERE bad) THEN 'invalid_audiences'
                     END) AS reason
            FROM {stage} s""",
        )
        quarantined = reject_with_raw(ctx, checked)
        rows_read, valid, distinct = ctx.engine.query_rows(
            f"SELECT count(*), count(*) FILTER (WHERE reason IS NULL), "
            f"count(DISTINCT mpid) FILTER (WHERE reason IS NULL) FROM {checked}"
        )[0]
        if valid == rows_read and distinct == valid:
            won = "TRUE"  # the common case: every record is good and its MPID's only one
        else:
            winners = tmp.create(
                "winners",
                f"""
                SELECT line FROM (
                  SELECT line, row_number() OVER (PARTITION BY mpid ORDER BY line DESC) AS rn
                  FROM {checked} WHERE reason IS NULL
                ) WHERE rn = 1""",
            )
            won = f"line IN (SELECT line FROM {winners})"
        profiles = tmp.create(
            "profiles",
            f"""
            SELECT mpid, {epoch_ms_sql('created_ms')} AS created_at, {epoch_ms_sql('stored_ms')} AS last_stored_at,
                   {text_bool_sql('opted')} AS is_opted_out, environment, '{self.source}' AS source, line
            FROM {stage} WHERE reason0 IS NULL AND {won}""",
        )
        # used once each: passed as subqueries, not materialised
        identities = (f"(SELECT mpid, kind, identity_type, value, line FROM {ids} "
                      f"WHERE value IS NOT NULL AND NOT hashed AND {won})")
        attributes = f"({attributes_sql(f'(SELECT * FROM {stage} WHERE reason0 IS NULL AND {won})', 'attrs')})"
        audiences = f"(SELECT mpid, audience_id, audience_name, expiration_at, line FROM {aud} WHERE {won})"
        superseded = replace_profiles(ctx, profiles, identities, attributes, audiences, columns=columns)
        loaded = int(distinct) - superseded  # a later snapshot's MPIDs count as de-duplicated
        warnings += time_warnings(ctx, stage, {"created_ms": "created_timestamp_ms", "stored_ms": "last_stored_timestamp_ms"},
                                 where="reason0 IS NULL")
        warnings += repeated_identity_warnings(ctx, ids, "value IS NOT NULL", "each value is kept, under that type")
        warnings += hashed_identity_warnings(ctx, ids, f"line IN (SELECT line FROM {checked} WHERE reason IS NULL)")
        return FileResult(rows_read=int(rows_read), loaded=loaded, deduplicated=int(valid) - loaded,
                          quarantined=quarantined, warnings=warnings)
