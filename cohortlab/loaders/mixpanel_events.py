"""``mixpanel-events``: the Mixpanel Raw Event Export (JSONL, gzip detected by content; a JSON
array or pretty-printed documents are tolerated) into ``mp_events``.

Per record ``{"event": ..., "properties": {...}}``:

* ``time`` = ``properties.time``, epoch seconds (fractional allowed) or milliseconds, as a UTC
  TIMESTAMP. Option ``time_unit``: ``auto`` (default; values above 1e11 are milliseconds), ``s``
  or ``ms``. A numeric string is accepted.
* ``distinct_id`` = ``properties.distinct_id``; when absent, null or empty it is derived as
  Simplified ID Merge does: ``$user_id``, else ``"$device:" || $device_id``. A numeric id keeps
  its exact decimal text.
* ``mparticle_user_id`` = ``properties.$mparticle_user_id`` as exported text (a JSON float keeps
  its exact token, e.g. ``1.2e18``); NULL when absent or JSON null.
* ``properties`` = the whole ``properties`` object as JSON, opt-in. Option ``properties``:
  ``none`` (default: the column stays NULL; cohortlab computes with the identity columns above,
  and a 5.26M-event load takes 178 MiB of database instead of 671 MiB) or ``all`` (keep every
  event's properties, for a notebook that looks at them).
* Identities first: with ``properties=none`` a JSONL file is read by the typed fast path
  (:mod:`cohortlab.loaders.fast`: ``read_json`` of the identity fields only); a file it cannot
  take exactly (a malformed or blank line, a record to quarantine, a JSON-float identifier)
  goes through the exact line-by-line path, with the same rows as a result.
* De-duplicated on (event, distinct_id, time, insert_id) within the file and against the rows
  already in ``mp_events`` (a missing insert_id compares equal to a missing insert_id).

Quarantine reasons: malformed_json, not_an_object, missing_event, bad_properties, missing_time,
bad_time, missing_distinct_id.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from cohortlab.loaders import fast
from cohortlab.loaders.base import FileContext, FileResult, Loader, container_type_sql
from cohortlab.loaders.mixpanel_common import (
    MPUID_TOKEN_RE,
    NUMERIC_JSON_TYPES,
    doc_no_sql,
    epoch_to_timestamp_sql,
    id_text_sql,
    layout_of,
    parsed_lines_sql,
    parsed_records_sql,
    raw_text_sql,
    recover_float_tokens,
)

TIME_UNITS = ("auto", "s", "ms")
PROPERTIES = ("all", "none")

_PATHS = [
    "$.event",  # 1
    "$.properties",  # 2
    "$.properties.time",  # 3
    "$.properties.distinct_id",  # 4
    '$.properties."$user_id"',  # 5
    '$.properties."$device_id"',  # 6
    '$.properties."$insert_id"',  # 7
    '$.properties."$mparticle_user_id"',  # 8
]


# the de-duplication key, and its hash (see MixpanelEventsLoader.load_file)
KEY_COLS = "event, distinct_id, time, insert_id"
KEY_HASH = f"hash({KEY_COLS})"
_SEEN = "_mp_ev_seen"

class MixpanelEventsLoader(Loader):
    kind = "mixpanel-events"
    description = "Mixpanel raw event export (JSONL / gzip) -> mp_events"

    def validate_options(self, options: dict[str, Any]) -> dict[str, Any]:
        opts = dict(options)
        unit = str(opts.pop("time_unit", "auto")).strip().lower()
        if unit not in TIME_UNITS:
            raise ValueError(f"{self.kind}: time_unit must be one of {', '.join(TIME_UNITS)}, got {unit!r}")
        props = str(opts.pop("properties", "none")).strip().lower()
        if props not in PROPERTIES:
            raise ValueError(f"{self.kind}: properties must be one of {', '.join(PROPERTIES)}, got {props!r}")
        if opts:
            raise ValueError(f"{self.kind}: unknown option(s) {sorted(opts)}; known: time_unit, properties")
        return {"time_unit": unit, "properties": props}

    def fingerprint_options(self) -> dict[str, Any]:
        # properties=none (the default since the option became opt-in) leaves the fingerprint as
        # it was before the option existed: a file loaded then is not loaded again
        return {k: v for k, v in self.options.items() if not (k == "properties" and v == "none")}

    def begin(self, engine) -> None:
        super().begin(engine)
        engine.execute(f"DROP TABLE IF EXISTS {_SEEN}")
        self._seen_ready = False

    def _ensure_seen(self, engine) -> None:
        """The key hashes of the stored events, then of each file loaded by this load() call."""
        if not getattr(self, "_seen_ready", False):
            engine.execute(f"CREATE OR REPLACE TEMP TABLE {_SEEN} AS SELECT {KEY_HASH} AS h FROM mp_events")
            self._seen_ready = True

    def finish(self, engine, load_ids: list[int]) -> None:
        super().finish(engine, load_ids)
        engine.execute(f"DROP TABLE IF EXISTS {_SEEN}")

    def load_file(self, ctx: FileContext) -> FileResult:
        eng = ctx.engine
        layout = layout_of(ctx)
        st = f"_mp_ev_{ctx.load_id}"
        unit = ctx.options["time_unit"]
        keep = ctx.options.get("properties", "none") == "all"
        drop = [f"DROP TABLE IF EXISTS {st}"]
        fast_drop = _stage_fast(ctx, st, unit) if layout == "jsonl" and not keep and fast.enabled() else None
        if fast_drop is not None:
            drop = fast_drop
        elif layout == "jsonl":
            # every line parsed once, straight from its text, in parallel and numbered by position;
            # a JSON-float $mparticle_user_id takes its exact token from its own line
            records = parsed_lines_sql(ctx.unnumbered_lines_sql(), _PATHS)
            line = ctx.numbered_table(f"{st}_rows", _stage_sql(records, unit, keep, inline_tokens=True))
            if line is not None:
                eng.execute(f"CREATE OR REPLACE TEMP VIEW {st} AS SELECT {line} AS line, * EXCLUDE (line) "
                            f"FROM {st}_rows WHERE line IS NOT NULL")
                drop = [f"DROP VIEW {st}", f"DROP TABLE {st}_rows"]
            else:
                eng.execute(f"CREATE OR REPLACE TEMP TABLE {st} AS "
                            + _stage_sql(parsed_records_sql(ctx, layout, _PATHS), unit, keep, inline_tokens=True))
        else:
            eng.execute(f"CREATE OR REPLACE TEMP TABLE {st} AS "
                        + _stage_sql(parsed_records_sql(ctx, layout, _PATHS), unit, keep, inline_tokens=False,
                                     doc_no=doc_no_sql(layout)))
            recover_float_tokens(ctx, layout, st, key="line", doc_no="doc_no", ord_="line",
                                 typ="mp_type", text="mparticle_user_id")
        quarantined = ctx.reject(f"SELECT line, reason, raw FROM {st} WHERE reason IS NOT NULL")
        rows_read, valid = eng.query_rows(
            f"SELECT count(*), count(*) FILTER (WHERE reason IS NULL) FROM {st}"
        )[0]
        # keep the first occurrence within the file, and nothing already stored. The rows to
        # drop are found on the key columns alone (a window over whole rows would carry every
        # event's properties through the sort). Stored events are matched through the key
        # hashes of this load() call (_SEEN): only rows whose hash is already there (a duplicate,
        # or a rare hash collision) are compared with mp_events on the exact key, so a load of
        # many files does not rescan the stored events once per file.
        self._ensure_seen(eng)
        dup = f"{st}_dup"
        drop.append(f"DROP TABLE {dup}")
        valid_keys = f"SELECT line, {KEY_COLS} FROM {st} WHERE reason IS NULL"
        eng.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {dup} AS
            SELECT line FROM ({valid_keys})
            QUALIFY row_number() OVER (PARTITION BY {KEY_COLS} ORDER BY line) > 1
            """
        )
        eng.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {st}_cand AS
            SELECT * FROM ({valid_keys}) s WHERE {KEY_HASH} IN (SELECT h FROM {_SEEN})
            """
        )
        drop.append(f"DROP TABLE {st}_cand")
        if eng.query_rows(f"SELECT 1 FROM {st}_cand LIMIT 1"):
            eng.execute(
                f"""
                INSERT INTO {dup}
                SELECT s.line FROM {st}_cand s
                SEMI JOIN mp_events e
                  ON e.event = s.event AND e.distinct_id = s.distinct_id AND e.time = s.time
                 AND e.insert_id IS NOT DISTINCT FROM s.insert_id
                WHERE s.line NOT IN (SELECT line FROM {dup})
                """
            )
        n_dup = int(eng.query_rows(f"SELECT count(*) FROM {dup}")[0][0])
        eng.execute(
            f"""
            INSERT INTO mp_events (event, time, distinct_id, insert_id, device_id, user_id,
                                   mparticle_user_id, properties, load_id, source_file, line)
            SELECT event, time, distinct_id, insert_id, device_id, user_id, mparticle_user_id,
                   properties, ?, ?, line
            FROM {st} s
            WHERE reason IS NULL{" AND line NOT IN (SELECT line FROM " + dup + ")" if n_dup else ""}
            """,
            [ctx.load_id, str(ctx.path)],
        )
        eng.execute(f"INSERT INTO {_SEEN} SELECT {KEY_HASH} FROM {st} WHERE reason IS NULL")
        for sql in drop:
            eng.execute(sql)
        return FileResult(
            rows_read=int(rows_read),
            loaded=int(valid) - n_dup,
            deduplicated=n_dup,
            quarantined=Counter(quarantined),
        )


def _stage_sql(records: str, unit: str, keep_properties: bool, *, inline_tokens: bool, doc_no: str = "line") -> str:
    """One row per record of ``records`` (line, raw, malformed, is_obj, v): the mp_events columns,
    ``reason`` (NULL for a good event), ``raw`` (rejects only), ``mp_type`` and ``doc_no``;
    ``properties`` is NULL unless ``keep_properties``.
    ``inline_tokens``: each record is a line of its own (JSONL), so a JSON-float
    ``$mparticle_user_id`` takes its exact token from ``raw`` when the key occurs once in it."""
    mp_text = raw_text_sql("v[8]")
    if inline_tokens:
        mp_value = (
            f"CASE WHEN mp_type = 'DOUBLE' THEN coalesce(CASE WHEN len(toks) = 1 AND "
            f"TRY_CAST(toks[1] AS DOUBLE) = TRY_CAST(mp_text AS DOUBLE) THEN toks[1] END, mp_text) "
            f"ELSE mp_text END"
        )
        toks = f"CASE WHEN mp_type = 'DOUBLE' THEN regexp_extract_all(raw, '{MPUID_TOKEN_RE}', 1) END"
    else:
        mp_value, toks = "mp_text", "NULL::VARCHAR[]"
    return f"""
        WITH cols AS (
            -- each value typed once; `properties` (most of the line) by its first character
            SELECT line, raw, malformed, is_obj, v,
                   {raw_text_sql('v[1]')} AS event,
                   {container_type_sql('v[2]')} AS props_type,
                   json_type(v[3]) AS time_type,
                   {id_text_sql('v[4]')} AS did,
                   {id_text_sql('v[5]')} AS user_id,
                   {id_text_sql('v[6]')} AS device_id,
                   {id_text_sql('v[7]')} AS insert_id,
                   json_type(v[8]) AS mp_type
            FROM ({records})
        ),
        typed AS (
            SELECT *,
                   CASE WHEN time_type IN {NUMERIC_JSON_TYPES} THEN TRY_CAST(v[3]::VARCHAR AS DOUBLE)
                        WHEN time_type = 'VARCHAR' THEN TRY_CAST(trim(json_extract_string(v[3], '$')) AS DOUBLE)
                   END AS time_num,
                   -- Simplified ID Merge: distinct_id, else $user_id, else "$device:" + $device_id
                   coalesce(did, user_id, '$device:' || device_id) AS distinct_id
            FROM cols
        ),
        classified AS (
            SELECT *,
                   {epoch_to_timestamp_sql('time_num', unit)} AS ts,
                   CASE WHEN malformed THEN 'malformed_json'
                        WHEN NOT is_obj THEN 'not_an_object'
                        WHEN event IS NULL OR event = '' THEN 'missing_event'
                        WHEN props_type IS NULL OR props_type = 'NULL' THEN 'missing_time'
                        WHEN props_type <> 'OBJECT' THEN 'bad_properties'
                        WHEN time_type IS NULL OR time_type = 'NULL' THEN 'missing_time'
                   END AS pre_reason,
                   {mp_text} AS mp_text,
                   {toks} AS toks
            FROM typed
        )
        SELECT line, {doc_no}::BIGINT AS doc_no,
               CASE WHEN line IS NOT NULL THEN
                   coalesce(pre_reason, CASE WHEN ts IS NULL THEN 'bad_time'
                                             WHEN distinct_id IS NULL THEN 'missing_distinct_id' END)
               END AS reason,
               CASE WHEN line IS NOT NULL AND (pre_reason IS NOT NULL OR ts IS NULL OR distinct_id IS NULL)
                    THEN raw END AS raw,
               event, ts AS time, distinct_id, insert_id, device_id, user_id, mp_type,
               {mp_value} AS mparticle_user_id,
               {"v[2]" if keep_properties else "NULL::JSON"} AS properties
        FROM classified"""


# the fields of an event the canonical columns need, as JSON leaves (typed by _stage_sql)
_FAST_COLUMNS = {
    "event": "JSON",
    "properties": {"time": "JSON", "distinct_id": "JSON", "$user_id": "JSON", "$device_id": "JSON",
                   "$insert_id": "JSON", "$mparticle_user_id": "JSON"},
}


def _stage_fast(ctx: FileContext, st: str, unit: str) -> list[str] | None:
    """The typed fast path (:mod:`cohortlab.loaders.fast`): view ``st`` with the columns of
    :func:`_stage_sql` from a ``read_json`` of the identity fields only, or None (nothing left
    behind) when the file needs the exact path: a line it cannot parse, a blank line, a record
    that would be quarantined, a non-string event name or an identifier spelled as a JSON float.
    Returns the statements that drop what it created."""
    rows = f"{st}_fast"
    p = "properties"
    # the record as _stage_sql expects it: v = the values of _PATHS (properties itself is not
    # read: an object stands for it; a non-object gives no time, so a reject, so the exact path)
    # `malformed` here means "not for the fast path": a line read_json could not parse (a NULL
    # row), a non-string event name, or an identifier that is a JSON float
    records = f"""
        SELECT 0 AS line, NULL::VARCHAR AS raw, TRUE AS is_obj,
               [event, CASE WHEN {p} IS NOT NULL THEN '{{}}'::JSON END, {p}.time, {p}.distinct_id,
                {p}."$user_id", {p}."$device_id", {p}."$insert_id", {p}."$mparticle_user_id"] AS v,
               coalesce(json_type(event) <> 'VARCHAR', TRUE)
                 OR coalesce('DOUBLE' IN (json_type({p}.distinct_id), json_type({p}."$user_id"),
                                          json_type({p}."$device_id"), json_type({p}."$insert_id"),
                                          json_type({p}."$mparticle_user_id")), FALSE) AS malformed
        FROM {fast.read_json_sql(ctx, _FAST_COLUMNS)}"""
    line = fast.numbered_rows(ctx, rows, _stage_sql(records, unit, False, inline_tokens=False))
    if line is None:
        fast.declined(ctx, rows, "not one JSON record per line")
        return None
    bad = ctx.engine.query_rows(f"SELECT reason FROM {rows} WHERE reason IS NOT NULL LIMIT 1")
    if bad:
        fast.declined(ctx, rows, f"a record the typed read cannot take exactly ({bad[0][0]})")
        return None
    ctx.engine.execute(f"CREATE OR REPLACE TEMP VIEW {st} AS SELECT {line} AS line, * EXCLUDE (line) FROM {rows}")
    fast.taken(ctx)
    return [f"DROP VIEW {st}", f"DROP TABLE {rows}"]
