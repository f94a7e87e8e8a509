"""``mixpanel-cohorts``: the ``/cohorts/list`` response (a bare JSON array of
``{count, is_visible, description, created, project_id, id, name}``) into ``mp_cohorts``.
JSONL or several documents are tolerated.

Ids (``id``, ``project_id``) may be numbers or strings and are stored as text. ``created`` is
``"YYYY-MM-DD HH:MM:SS"`` in UTC (ISO with ``T``/offset also accepted; other values → NULL).
``is_visible`` accepts 0/1, booleans and "true"/"false". Airbyte's ``cohorts`` stream holds the
same objects; in Airbyte's envelope (``{"_airbyte_ab_id", ..., "_airbyte_data": {...}}``) each
is read from its ``_airbyte_data`` (:mod:`cohortlab.loaders.connectors`). A cohort already in
``mp_cohorts`` with the same id is replaced (as is a name-only row registered earlier by a
members/webhook load with the same name); within one file the last row of an id wins, the others
count as deduplicated.

Quarantine reasons: malformed_json, not_an_object, missing_id, missing_name.
A file with JSON objects none of which has an ``id`` is a LoadError (unrecognised format); an
empty array (``[]``: a project without cohorts) loads no cohorts.
"""

from __future__ import annotations

from collections import Counter

from cohortlab.errors import LoadError
from cohortlab.loaders._warehouse import airbyte_unwrapped_sql
from cohortlab.loaders.base import FileContext, FileResult, Loader
from cohortlab.loaders.files import sniff_json_layout
from cohortlab.loaders.mixpanel_common import cohort_id_sql, id_text_sql, raw_text_sql, utc_timestamp_sql


class MixpanelCohortsLoader(Loader):
    kind = "mixpanel-cohorts"
    description = "the /cohorts/list response (a JSON array)"

    def load_file(self, ctx: FileContext) -> FileResult:
        eng = ctx.engine
        records = airbyte_unwrapped_sql(ctx.json_records_sql())  # Airbyte's cohorts stream: the same objects
        st = f"_mp_coh_{ctx.load_id}"
        eng.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {st} AS
            WITH p AS (
                SELECT line, raw, json_type(j) AS jt,
                       CASE WHEN json_type(j) = 'OBJECT' THEN json_extract(j,
                           ['$.id', '$.name', '$.description', '$.count', '$.created',
                            '$.is_visible', '$.project_id']) END AS v
                FROM ({records})
            )
            SELECT line, raw,
                   CASE WHEN jt IS NULL THEN 'malformed_json'
                        WHEN jt <> 'OBJECT' THEN 'not_an_object'
                        WHEN {cohort_id_sql('v[1]')} IS NULL THEN 'missing_id'
                        WHEN nullif({raw_text_sql('v[2]')}, '') IS NULL THEN 'missing_name'
                   END AS reason,
                   jt = 'OBJECT' AND json_type(v[1]) IS NOT NULL AS has_id,
                   {cohort_id_sql('v[1]')} AS cohort_id,
                   {raw_text_sql('v[2]')} AS name,
                   {raw_text_sql('v[3]')} AS description,
                   TRY_CAST({raw_text_sql('v[4]')} AS BIGINT) AS count,
                   {utc_timestamp_sql('v[5]')} AS created,
                   CASE lower({raw_text_sql('v[6]')})
                        WHEN '1' THEN TRUE WHEN 'true' THEN TRUE
                        WHEN '0' THEN FALSE WHEN 'false' THEN FALSE END AS is_visible,
                   {id_text_sql('v[7]')} AS project_id
            FROM p
            """
        )
        n_obj, n_id = eng.query_rows(
            f"SELECT count(*) FILTER (WHERE reason IS NULL OR reason LIKE 'missing_%'), "
            f"count(*) FILTER (WHERE has_id) FROM {st}"
        )[0]
        if n_obj and not n_id:
            raise LoadError(ctx.path, "unrecognised format for mixpanel-cohorts: expected the "
                                      "/cohorts/list JSON array of {id, name, count, ...}")
        quarantined = ctx.reject(f"SELECT line, reason, raw FROM {st} WHERE reason IS NOT NULL")
        eng.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {st}_last AS
            SELECT * FROM {st} WHERE reason IS NULL
            QUALIFY row_number() OVER (PARTITION BY cohort_id ORDER BY line DESC) = 1
            """
        )
        eng.execute(
            f"DELETE FROM mp_cohorts WHERE cohort_id IN (SELECT cohort_id FROM {st}_last) "
            f"OR (cohort_id IS NULL AND name IN (SELECT name FROM {st}_last))"
        )
        eng.execute(
            f"""
            INSERT INTO mp_cohorts (cohort_id, name, description, count, created, is_visible,
                                    project_id, load_id, source_file, line)
            SELECT cohort_id, name, description, count, created, is_visible, project_id, ?, ?, line
            FROM {st}_last
            """,
            [ctx.load_id, str(ctx.path)],
        )
        rows_read, valid = eng.query_rows(
            f"SELECT count(*), count(*) FILTER (WHERE reason IS NULL) FROM {st}"
        )[0]
        loaded = int(eng.query_rows(f"SELECT count(*) FROM {st}_last")[0][0])
        eng.execute(f"DROP TABLE {st}")
        eng.execute(f"DROP TABLE {st}_last")
        # `[]` is the answer of a project without cohorts, not an empty file
        return FileResult(rows_read=int(rows_read), loaded=loaded, deduplicated=int(valid) - loaded,
                          quarantined=Counter(quarantined),
                          allow_empty=int(rows_read) == 0 and sniff_json_layout(ctx.text_path()) == "array")
