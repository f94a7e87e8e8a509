"""``mixpanel-events``: the Mixpanel Raw Event Export (JSONL, gzip detected by content; a JSON
array or pretty-printed documents are tolerated) into ``mp_events``.

Per record ``{"event": ..., "properties": {...}}``:

* ``time`` = ``properties.time``, epoch seconds (fractional allowed) or milliseconds, as a UTC
  TIMESTAMP. Option ``time_unit``: ``auto`` (default; values above 1e11 are milliseconds), ``s``
  or ``ms``. Option ``timezone``: the times are the wall clock of that zone (a project created
  before 2023; :mod:`cohortlab.loaders.time_zone`, which also warns when a JSONL file's times
  look like another zone's), else the zone ``cohortlab fetch --timezone`` recorded for the file.
  A numeric string is accepted. A time before 1971-01-01 (which Mixpanel does not accept: a
  negative number, seconds read as ms) is loaded as read, with a load warning
  (:func:`~cohortlab.loaders.mixpanel_common.event_time_warnings`, the same on both paths).
* ``distinct_id`` = ``properties.distinct_id``; when absent, null or empty it is derived as
  Simplified ID Merge does: ``$user_id``, else ``"$device:" || $device_id``. A numeric id keeps
  its exact decimal text.
* ``mparticle_user_id`` = ``properties.$mparticle_user_id`` as exported text (a JSON float keeps
  its exact token, e.g. ``1.2e18``); NULL when absent or JSON null.
* ``properties`` = the whole ``properties`` object as JSON, opt-in. Option ``properties``:
  ``none`` (default: the column stays NULL; cohortlab computes with the identity columns above,
  and a 5.26M-event load takes 178 MiB of database instead of 671 MiB) or ``all`` (keep every
  event's properties, for a notebook that looks at them). With ``none``, an event whose
  ``$mparticle_user_id`` is a JSON float keeps ``{"$mparticle_user_id": <exact token>}``: the
  resolution tells a JSON float (``json_float``) from a float spelled as a string by its JSON type.
* Identities first: with ``properties=none`` a JSONL file is read by the typed fast path
  (:mod:`cohortlab.loaders.fast`: ``read_json`` of the identity fields only); a file it cannot
  take exactly (a malformed or blank line, a record to quarantine, a JSON-float identifier)
  goes through the exact line-by-line path, with the same rows as a result.
* De-duplicated on (event, distinct_id, time, insert_id) within the file and against the rows
  already in ``mp_events`` (a missing insert_id compares equal to a missing insert_id).

A line ``terminated early`` (Mixpanel's end of an export it stopped before its end), or a line that is no
JSON and ends with those words (appended to the record it cut off), is a LoadError:
the file holds only part of the range.

Quarantine reasons: malformed_json, not_an_object, missing_event, bad_event (an event name that
is not a JSON string: a number, boolean, array or object), bad_properties, missing_time,
bad_time, missing_distinct_id, bad_distinct_id (a ``distinct_id`` that is a boolean, array or
object: only an absent, null or empty one is derived).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from cohortlab.errors import LoadError
from cohortlab.loaders import fast
from cohortlab.loaders.base import FileContext, FileResult, Loader, container_type_sql
from cohortlab.loaders.time_zone import event_time_sql, pop_timezone, time_zone_warning, wall_clock
from cohortlab.loaders.mixpanel_common import (
    NUMERIC_JSON_TYPES,
    doc_no_sql,
    event_time_warnings,
    pop_time_unit,
    record_value_sql,
    exact_id_sql,
    id_text_sql,
    layout_of,
    parsed_lines_sql,
    parsed_records_sql,
    properties_kept_sql,
    raw_text_sql,
    inline_float_token_sql,
    recover_float_tokens,
)

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
    description = "the raw event export (JSONL, .gz fine)"

    def validate_options(self, options: dict[str, Any]) -> dict[str, Any]:
        opts = dict(options)
        unit = pop_time_unit(self.kind, opts)
        zone = pop_timezone(self.kind, opts)
        props = str(opts.pop("properties", "none")).strip().lower()
        if props not in PROPERTIES:
            raise ValueError(f"{self.kind}: properties must be one of {', '.join(PROPERTIES)}, got {props!r}")
        if opts:
            raise ValueError(f"{self.kind}: unknown option(s) {sorted(opts)}; known: time_unit, timezone, properties")
        return {"time_unit": unit, "properties": props} | ({"timezone": zone} if zone else {})

    def fingerprint_options(self) -> dict[str, Any]:
        # properties=none (the default since the option became opt-in) and timezone=UTC leave the
        # fingerprint as it was before the options existed: a file loaded then is not loaded again
        return {k: v for k, v in self.options.items()
                if not (k == "properties" and v == "none") and not (k == "timezone" and v == "UTC")}

    def file_options(self, path) -> dict[str, Any]:
        # a file of a folder written by `cohortlab fetch --timezone`: the project's time zone it
        # recorded, unless the load gives one (UTC included)
        if "timezone" in self.options:
            return {}
        from cohortlab.loaders.fetched import recorded_timezone

        zone = wall_clock(recorded_timezone(path))
        return {"timezone": zone} if zone else {}

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
        zone = wall_clock(ctx.options.get("timezone"))
        keep = ctx.options.get("properties", "none") == "all"
        drop = [f"DROP TABLE IF EXISTS {st}"]
        fast_drop = _stage_fast(ctx, st, unit, zone) if layout == "jsonl" and not keep and fast.enabled() else None
        if fast_drop is not None:
            drop = fast_drop
        elif layout == "jsonl":
            # every line parsed once, straight from its text, in parallel and numbered by position;
            # a JSON-float $mparticle_user_id takes its exact token from its own line
            records = parsed_lines_sql(ctx.unnumbered_lines_sql(), _PATHS)
            line = ctx.numbered_table(f"{st}_rows", _stage_sql(records, unit, zone, keep, inline_tokens=True))
            if line is not None:
                eng.execute(f"CREATE OR REPLACE TEMP VIEW {st} AS SELECT {line} AS line, * EXCLUDE (line) "
                            f"FROM {st}_rows WHERE line IS NOT NULL")
                drop = [f"DROP VIEW {st}", f"DROP TABLE {st}_rows"]
            else:
                eng.execute(f"CREATE OR REPLACE TEMP TABLE {st} AS "
                            + _stage_sql(parsed_records_sql(ctx, layout, _PATHS), unit, zone, keep, inline_tokens=True))
        else:
            eng.execute(f"CREATE OR REPLACE TEMP TABLE {st} AS "
                        + _stage_sql(parsed_records_sql(ctx, layout, _PATHS), unit, zone, keep, inline_tokens=False,
                                     doc_no=doc_no_sql(layout)))
            recover_float_tokens(ctx, layout, st, key="line", doc_no="doc_no", ord_="line",
                                 typ="mp_type", text="mparticle_user_id")
            # a JSON-float distinct_id: its exported token (before the de-duplication reads it)
            recover_float_tokens(ctx, layout, st, key="line", doc_no="doc_no", ord_="line",
                                 typ="did_type", text="distinct_id", json_key="distinct_id")
        # Mixpanel ends a raw export that it stopped before the end with "terminated early":
        # on a line of its own, or appended to the record it cut off (no line break between:
        # `{"event": ..., "$insert_interminated early`). The file is incomplete, not a file
        # with one bad record. A record (valid JSON) holding the words is data.
        cut = eng.query_rows(f"SELECT min(line) FROM {st} WHERE reason = 'malformed_json' "
                             f"AND lower(trim(raw)) LIKE '%terminated early'")[0][0]
        if cut is not None:
            raise LoadError(ctx.path, "Mixpanel stopped this export before its end (the 'terminated early' "
                                      "it ends with): the range's events are incomplete; export the range again, "
                                      "in shorter date ranges", line=int(cut))
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
        # within the file: only rows whose key hash occurs twice are candidates (a hash aggregate,
        # no sort); the window over the exact key runs on those few rows alone
        eng.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {dup} AS
            SELECT line FROM ({valid_keys})
            WHERE {KEY_HASH} IN (SELECT {KEY_HASH} FROM ({valid_keys}) GROUP BY ALL HAVING count(*) > 1)
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
                   {properties_kept_sql('properties', 'mp_type', 'mparticle_user_id')}, ?, ?, line
            FROM {st} s
            WHERE reason IS NULL{" AND line NOT IN (SELECT line FROM " + dup + ")" if n_dup else ""}
            """,
            [ctx.load_id, str(ctx.path)],
        )
        eng.execute(f"INSERT INTO {_SEEN} SELECT {KEY_HASH} FROM {st} WHERE reason IS NULL")
        warnings = event_time_warnings(ctx, st, "properties.time", record_value_sql(ctx, "$.properties.time"))
        warnings += time_zone_warning(ctx, unit, zone, layout)
        for sql in drop:
            eng.execute(sql)
        return FileResult(
            rows_read=int(rows_read),
            loaded=int(valid) - n_dup,
            deduplicated=n_dup,
            quarantined=Counter(quarantined),
            warnings=warnings,
        )


def _stage_sql(records: str, unit: str, zone: str | None, keep_properties: bool, *, inline_tokens: bool,
               doc_no: str = "line") -> str:
    """One row per record of ``records`` (line, raw, malformed, is_obj, v): the mp_events columns,
    ``reason`` (NULL for a good event), ``raw`` (rejects only), ``mp_type`` and ``doc_no``;
    ``properties`` is NULL unless ``keep_properties``; ``time`` is read in ``unit``, as the wall
    clock of ``zone`` when given (:mod:`cohortlab.loaders.time_zone`).
    ``inline_tokens``: each record is a line of its own (JSONL), so a JSON-float
    ``$mparticle_user_id`` takes its exact token from ``raw`` (:func:`inline_float_token_sql`;
    :func:`recover_float_tokens` does the same per document)."""
    mp_text = raw_text_sql("v[8]")
    mp_value = f"CASE WHEN mp_type = 'DOUBLE' THEN {inline_float_token_sql('raw', 'mp_text')} ELSE mp_text END" \
        if inline_tokens else "mp_text"

    def ident(i: int, key: str) -> str:  # a JSON-float identifier keeps its exported token
        return exact_id_sql(f"v[{i}]", "raw", key) if inline_tokens else id_text_sql(f"v[{i}]")
    return f"""
        WITH cols AS (
            -- each value typed once; `properties` (most of the line) by its first character
            SELECT line, raw, malformed, is_obj, v,
                   {raw_text_sql('v[1]')} AS event, json_type(v[1]) AS event_type,
                   {container_type_sql('v[2]')} AS props_type,
                   json_type(v[3]) AS time_type,
                   {ident(4, 'distinct_id')} AS did, json_type(v[4]) AS did_type,
                   {ident(5, '$user_id')} AS user_id,
                   {ident(6, '$device_id')} AS device_id,
                   {ident(7, '$insert_id')} AS insert_id,
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
                   {event_time_sql('time_num', unit, zone)} AS ts,
                   CASE WHEN malformed THEN 'malformed_json'
                        WHEN NOT is_obj THEN 'not_an_object'
                        WHEN event IS NULL OR event = '' THEN 'missing_event'
                        -- a number, boolean, array or object is no event name (its text would not
                        -- be the exported one: -0 -> 0, 1e18 -> 1000000000000000000.0)
                        WHEN event_type <> 'VARCHAR' THEN 'bad_event'
                        WHEN props_type IS NULL OR props_type = 'NULL' THEN 'missing_time'
                        WHEN props_type <> 'OBJECT' THEN 'bad_properties'
                        WHEN time_type IS NULL OR time_type = 'NULL' THEN 'missing_time'
                        -- only an absent, null or empty distinct_id is derived from $user_id /
                        -- $device_id: a boolean, array or object is a bad one
                        WHEN json_type(v[4]) IN ('BOOLEAN', 'OBJECT', 'ARRAY') THEN 'bad_distinct_id'
                   END AS pre_reason,
                   {mp_text} AS mp_text
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
               CASE WHEN did IS NOT NULL THEN did_type END AS did_type,
               {mp_value} AS mparticle_user_id,
               {"v[2]" if keep_properties else "NULL::JSON"} AS properties
        FROM classified"""


# the fields of an event the canonical columns need, as JSON leaves (typed by _stage_sql)
_FAST_COLUMNS = {
    "event": "JSON",
    "properties": {"time": "JSON", "distinct_id": "JSON", "$user_id": "JSON", "$device_id": "JSON",
                   "$insert_id": "JSON", "$mparticle_user_id": "JSON"},
}


def _leaf(x: str) -> str:
    """A JSON leaf read by read_json as VARCHAR text (its JSON spelling; NULL when absent)."""
    return f"CAST({x} AS VARCHAR)"


_leaf_kind_sql = fast.leaf_kind_sql
_leaf_string_sql = fast.leaf_string_sql


def _fast_stage_sql(ctx: FileContext, unit: str, zone: str | None) -> str:
    """The typed fast path's stage: the columns of :func:`_stage_sql` (``line`` a placeholder,
    ``reason`` 'not_for_fast_path' for a record the fast path cannot take exactly) from a
    ``read_json`` of the identity fields only. Each leaf is typed by the first character of its
    JSON text; a record qualifies only when its values are of the types whose reading is
    unambiguous (event: a non-empty string; ids: strings, integers or null; time: a number or a
    numeric string) and it would not be quarantined; its columns are then exactly those of the
    exact path (:func:`id_text_sql`, :func:`raw_text_sql`, the same time conversion)."""
    ids = {"ev": "event", "tm": "properties.time", "di": "properties.distinct_id",
           "us": 'properties."$user_id"', "de": 'properties."$device_id"', "ins": 'properties."$insert_id"',
           "mp": 'properties."$mparticle_user_id"'}
    texts = ", ".join(f"{_leaf(v)} AS {k}" for k, v in ids.items())
    # the time is read as a number whichever number it is: its kind needs no integer test
    kinds = ", ".join(f"{_leaf_kind_sql(k, integers=k != 'tm')} AS {k}_k" for k in ids)

    def idv(k: str, empty_is_null: bool = True) -> str:
        val = _leaf_string_sql(k)
        if empty_is_null:
            val = f"nullif({val}, '')"
        return f"CASE {k}_k WHEN 's' THEN {val} WHEN 'i' THEN {k} END"

    return f"""
        WITH leaves AS (SELECT {texts}, properties IS NOT NULL AS has_props
                        FROM {fast.read_json_sql(ctx, _FAST_COLUMNS)}),
        kinds AS (SELECT *, {kinds} FROM leaves),
        typed AS (
            SELECT *,
                   CASE WHEN ev_k = 's' THEN {_leaf_string_sql('ev')} END AS event,
                   {idv('di')} AS did, {idv('us')} AS user_id, {idv('de')} AS device_id,
                   {idv('ins')} AS insert_id, {idv('mp', empty_is_null=False)} AS mparticle_user_id,
                   CASE tm_k WHEN 'x' THEN TRY_CAST(tm AS DOUBLE)
                             WHEN 's' THEN TRY_CAST(trim({_leaf_string_sql('tm')}) AS DOUBLE) END AS time_num
            FROM kinds
        ),
        classified AS (
            SELECT *, coalesce(did, user_id, '$device:' || device_id) AS distinct_id,
                   {event_time_sql('time_num', unit, zone)} AS ts
            FROM typed
        )
        SELECT 0::BIGINT AS line, 0::BIGINT AS doc_no,
               CASE WHEN has_props AND event <> '' AND ts IS NOT NULL AND distinct_id IS NOT NULL
                         AND coalesce(tm_k IN ('s', 'x'), FALSE)
                         AND coalesce(di_k, 'n') <> 'x' AND coalesce(us_k, 'n') <> 'x'
                         AND coalesce(de_k, 'n') <> 'x' AND coalesce(ins_k, 'n') <> 'x'
                         AND coalesce(mp_k, 'n') <> 'x'
                    THEN NULL ELSE 'not_for_fast_path' END AS reason,
               NULL::VARCHAR AS raw, event, ts AS time, distinct_id, insert_id, device_id, user_id,
               NULL::VARCHAR AS mp_type, NULL::VARCHAR AS did_type, mparticle_user_id, NULL::JSON AS properties
        FROM classified"""


def _stage_fast(ctx: FileContext, st: str, unit: str, zone: str | None) -> list[str] | None:
    """The typed fast path (:mod:`cohortlab.loaders.fast`): view ``st`` with the columns of
    :func:`_stage_sql` (:func:`_fast_stage_sql`), or None (nothing left behind) when the file
    needs the exact path: a line it cannot parse, a blank line, a record that would be
    quarantined, a value of a type it does not take (a non-string event name, an identifier
    spelled as a JSON float, a boolean, an object). Returns the statements that drop what it
    created."""
    rows = f"{st}_fast"
    line = fast.accepted(ctx, rows, _fast_stage_sql(ctx, unit, zone))
    if line is None:
        return None
    ctx.engine.execute(f"CREATE OR REPLACE TEMP VIEW {st} AS SELECT {line} AS line, * EXCLUDE (line) FROM {rows}")
    return [f"DROP VIEW {st}", f"DROP TABLE {rows}"]
