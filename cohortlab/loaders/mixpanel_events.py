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
* De-duplicated on (event, distinct_id, time, insert_id) within the file and against the rows
  already in ``mp_events`` (a missing insert_id compares equal to a missing insert_id).

Quarantine reasons: malformed_json, not_an_object, missing_event, bad_properties, missing_time,
bad_time, missing_distinct_id.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from cohortlab.loaders.base import FileContext, FileResult, Loader
from cohortlab.loaders.mixpanel_common import (
    doc_no_sql,
    epoch_to_timestamp_sql,
    id_text_sql,
    json_number_sql,
    layout_of,
    raw_text_sql,
    recover_float_tokens,
)

TIME_UNITS = ("auto", "s", "ms")

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


class MixpanelEventsLoader(Loader):
    kind = "mixpanel-events"
    description = "Mixpanel raw event export (JSONL / gzip) -> mp_events"

    def validate_options(self, options: dict[str, Any]) -> dict[str, Any]:
        opts = dict(options)
        unit = str(opts.pop("time_unit", "auto")).strip().lower()
        if unit not in TIME_UNITS:
            raise ValueError(f"{self.kind}: time_unit must be one of {', '.join(TIME_UNITS)}, got {unit!r}")
        if opts:
            raise ValueError(f"{self.kind}: unknown option(s) {sorted(opts)}; known: time_unit")
        return {"time_unit": unit}

    def load_file(self, ctx: FileContext) -> FileResult:
        eng = ctx.engine
        layout = layout_of(ctx)
        records = ctx.json_records_sql()
        st = f"_mp_ev_{ctx.load_id}"
        paths = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in _PATHS) + "]"
        time_num = json_number_sql("v[3]")
        derived_id = (
            f"coalesce({id_text_sql('v[4]')}, {id_text_sql('v[5]')}, "
            f"'$device:' || {id_text_sql('v[6]')})"
        )
        eng.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {st} AS
            WITH parsed AS (
                SELECT line, raw, json_type(j) AS jt,
                       CASE WHEN json_type(j) = 'OBJECT' THEN json_extract(j, {paths}) END AS v
                FROM ({records})
            ),
            cols AS (
                SELECT line, raw, jt, v,
                       {raw_text_sql('v[1]')} AS event,
                       json_type(v[2]) AS props_type,
                       json_type(v[3]) AS time_type,
                       {time_num} AS time_num,
                       {derived_id} AS distinct_id,
                       json_type(v[8]) AS mp_type
                FROM parsed
            ),
            classified AS (
                SELECT *,
                       {epoch_to_timestamp_sql('time_num', ctx.options['time_unit'])} AS ts,
                       CASE WHEN jt IS NULL THEN 'malformed_json'
                            WHEN jt <> 'OBJECT' THEN 'not_an_object'
                            WHEN event IS NULL OR event = '' THEN 'missing_event'
                            WHEN props_type IS NULL OR props_type = 'NULL' THEN 'missing_time'
                            WHEN props_type <> 'OBJECT' THEN 'bad_properties'
                            WHEN time_type IS NULL OR time_type = 'NULL' THEN 'missing_time'
                       END AS pre_reason
                FROM cols
            )
            SELECT line, {doc_no_sql(layout)}::BIGINT AS doc_no,
                   coalesce(pre_reason,
                            CASE WHEN ts IS NULL THEN 'bad_time'
                                 WHEN distinct_id IS NULL THEN 'missing_distinct_id' END) AS reason,
                   CASE WHEN pre_reason IS NOT NULL OR ts IS NULL OR distinct_id IS NULL
                          OR mp_type = 'DOUBLE' THEN raw END AS raw,
                   event, ts AS time, distinct_id,
                   {id_text_sql('v[7]')} AS insert_id,
                   {id_text_sql('v[6]')} AS device_id,
                   {id_text_sql('v[5]')} AS user_id,
                   mp_type,
                   {raw_text_sql('v[8]')} AS mparticle_user_id,
                   v[2] AS properties
            FROM classified
            """
        )
        recover_float_tokens(ctx, layout, st, key="line", doc_no="doc_no", ord_="line",
                             typ="mp_type", text="mparticle_user_id")
        quarantined = ctx.reject(f"SELECT line, reason, raw FROM {st} WHERE reason IS NOT NULL")
        # keep the first occurrence within the file, and nothing already stored
        eng.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {st}_new AS
            SELECT * FROM (
                SELECT * FROM {st} WHERE reason IS NULL
                QUALIFY row_number() OVER (PARTITION BY event, distinct_id, time, insert_id ORDER BY line) = 1
            ) s
            WHERE NOT EXISTS (
                SELECT 1 FROM mp_events e
                WHERE e.event = s.event AND e.distinct_id = s.distinct_id AND e.time = s.time
                  AND e.insert_id IS NOT DISTINCT FROM s.insert_id
            )
            """
        )
        eng.execute(
            f"""
            INSERT INTO mp_events (event, time, distinct_id, insert_id, device_id, user_id,
                                   mparticle_user_id, properties, load_id, source_file, line)
            SELECT event, time, distinct_id, insert_id, device_id, user_id, mparticle_user_id,
                   properties, ?, ?, line
            FROM {st}_new
            """,
            [ctx.load_id, str(ctx.path)],
        )
        rows_read, valid = eng.query_rows(
            f"SELECT count(*), count(*) FILTER (WHERE reason IS NULL) FROM {st}"
        )[0]
        loaded = int(eng.query_rows(f"SELECT count(*) FROM {st}_new")[0][0])
        eng.execute(f"DROP TABLE {st}")
        eng.execute(f"DROP TABLE {st}_new")
        return FileResult(
            rows_read=int(rows_read),
            loaded=loaded,
            deduplicated=int(valid) - loaded,
            quarantined=Counter(quarantined),
        )
