"""Mixpanel Data Pipelines exports (object storage or a warehouse table saved as files), JSON
(JSONL, gzip detected by content) or Parquet. A Parquet file's column names and a JSON record's
top-level keys are read in lower case, as a warehouse that folds names to upper case unloads them
(``EVENT_NAME`` is ``event_name``; Snowflake's ``OBJECT_CONSTRUCT(*)`` JSON too), unless two would
then be one (:func:`cohortlab.loaders._warehouse.records_sql`; docs/loading.md#warehouse):

* ``mixpanel-pipeline-events`` → ``mp_events``. The JSON-pipeline layout (``mp_master_event``):
  ``event_name``, ``time``, ``distinct_id``, ``device_id``, ``user_id``, ``insert_id``,
  ``properties`` (a JSON object, or JSON text as some warehouses export it). The older
  schematized layout is accepted too: ``mp_event_name`` and one column per property, where a
  ``$`` property is prefixed ``mp_`` (``mp_mparticle_user_id``, ``mp_insert_id``, ``mp_user_id``,
  ``mp_device_id``: read as those ids); the whole row is then the properties, as it is of any row
  without a ``properties`` column (a connector's flattened record: tap-mixpanel's ``mp_reserved_x``
  columns are read as ``$x`` where ``mp_x`` is absent, in profiles too; Airbyte's
  ``mparticle_user_id`` is not read, and warned about, unless the option ``unprefixed=reserved``
  says that names without "$" are Mixpanel's own: both kinds, docs/loading.md#unprefixed). A string MPID in a
  column that held numbers goes to ``mp_mparticle_user_id_string`` (the pipeline's type-conflict
  rule), read when ``mp_mparticle_user_id`` holds no value. ``time`` is a TIMESTAMP (Parquet), an ISO string (no zone = UTC) or epoch
  seconds/milliseconds (option ``time_unit`` = auto | s | ms, as for ``mixpanel-events``; a time
  before 1971-01-01 is loaded with a load warning, as there);
  missing top-level fields fall back to ``properties`` (``time``, ``distinct_id``, ``$user_id``,
  ``$device_id``, ``$insert_id``), and a missing distinct_id is derived as Simplified ID Merge
  does (``$user_id``, else ``"$device:" || $device_id``).
  **Identity.** A pipeline exports events as ingested, *not* with the resolved (canonical)
  distinct_id of the raw export API. Option ``identity_mappings`` (a file, folder or glob of the
  ``mp_identity_mappings_data`` export: ``distinct_id``, ``resolved_distinct_id``) replaces each
  distinct_id by its resolved one, as Mixpanel's docs prescribe; without it the ids are kept as
  exported. ``$mparticle_user_id`` = ``properties.$mparticle_user_id`` (schematized:
  ``mp_mparticle_user_id``) as exported text. A JSON float (that MPID, ``distinct_id``,
  ``user_id``, ``device_id``, ``insert_id``) keeps its exact token, read from the record's text
  (or from ``properties`` exported as JSON text), and a float ``$mparticle_user_id`` keeps its
  JSON type in ``properties`` (docs/loading.md#mixpanel). De-duplicated as ``mixpanel-events`` does
  on (event, distinct_id, time, insert_id), within the file and against stored events.
  Option ``properties`` = all | none.
  Quarantine: malformed_json, not_an_object, missing_event, bad_event, bad_properties,
  missing_time, bad_time, bad_distinct_id, missing_distinct_id (the reasons of
  ``mixpanel-events``, read the same way).
* ``mixpanel-pipeline-profiles`` → ``mp_profiles`` (``mp_people_data``: ``distinct_id``,
  ``properties``; schematized: ``distinct_id`` + one column per property, ``$`` → ``mp_``: the
  whole row is the properties and ``mp_mparticle_user_id``, ``mp_email``, ... are read). The
  same upsert as ``mixpanel-profiles`` (a later load replaces the same distinct_id; within a file
  the last row wins). Quarantine: malformed_json, not_an_object, bad_distinct_id,
  missing_distinct_id, bad_properties.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from cohortlab.errors import LoadError
from cohortlab.loaders.base import AsOfOnly, FileContext, FileResult, Loader, sql_str
from cohortlab.pipeline import sql_list
from cohortlab.loaders.files import expand_paths
from cohortlab.loaders.files import fingerprint
from cohortlab.loaders.mixpanel_common import (
    EARLY_EVENT_TIME,
    MPUID_KEY,
    NUMERIC_JSON_TYPES,
    ProfileUpserts,
    epoch_to_timestamp_sql,
    event_time_warnings,
    pop_time_unit,
    profile_time_sql,
    profile_time_warnings,
    exact_id_sql,
    id_text_sql,
    inline_float_token_sql,
    properties_kept_sql,
    raw_text_sql,
    text_time_sql,
    upsert_profiles,
)
from cohortlab.loaders._warehouse import is_parquet, json_object_sql, present_sql, records_sql

_MAP = "_mp_pl_idmap"
KEY = "event, distinct_id, time, insert_id"


def _names_event_sql() -> str:
    """SQL BOOLEAN on a record ``j``: it names an event and its time at the top (``event_name``,
    ``mp_event_name`` or ``event``, and ``time`` or ``mp_time``), neither null (a people table's
    Parquet column is in every row, null where a profile has no such property; a profile with a
    property "event_name" alone was refused by the first version, found by a red team)."""
    def given(key: str) -> str:
        return f"coalesce(json_type(j, '$.{key}') NOT IN ('NULL'), FALSE)"

    return (f"(({given('event_name')} OR {given('mp_event_name')} OR {given('event')}) "
            f"AND ({given('time')} OR {given('mp_time')}))")


def _refuse_events_as_profiles(ctx: FileContext, staged: str) -> None:
    """A LoadError for a people file whose records are events (most name an event and its time:
    :func:`_names_event_sql`, the staged file's ``names_event``): read as profiles, an events table
    made one profile per event, the events' properties (their $mparticle_user_id too) as the
    profile's, with no word (``mixpanel-profiles`` names such a file; a review of the warehouse
    loaders)."""
    (events, objects) = ctx.engine.query_rows(f"""
        SELECT count(*) FILTER (WHERE names_event),
               count(*) FILTER (WHERE reason IS NULL OR reason NOT IN ('malformed_json', 'not_an_object'))
        FROM {staged}""")[0]
    if objects and 2 * events > objects:
        raise LoadError(ctx.path, f"{events:,} of its {objects:,} records name an event and its time (event_name or "
                                  "event, and time): the file is an events table, not people; "
                                  "mixpanel-pipeline-events reads it")


_EXACT_ID_TYPES = ("'VARCHAR'", "'BIGINT'", "'UBIGINT'", "'HUGEINT'")


def _refuse_bad_mappings(engine, staged: str, path) -> None:
    """A LoadError naming the mappings file and its first record that is not a mapping: not an
    object, or a ``distinct_id`` / ``resolved_distinct_id`` that is not an id (empty, a boolean,
    an object, or a JSON float, whose digits are not exact); and one naming a file that holds no
    mapping at all (``{"foo": 1}``). Such records were skipped, and such a file loaded with nothing
    remapped. A null or absent value (a warehouse's JSON export leaves a NULL column out) is no
    mapping of that record, as before."""
    exact = ", ".join(_EXACT_ID_TYPES)

    def not_an_id(t: str, text: str) -> str:
        return f"({t} IS NOT NULL AND {t} <> 'NULL' AND ({t} NOT IN ({exact}) OR {text} IS NULL))"

    rows = engine.query_rows(f"""
        SELECT count(*) OVER (), line,
               CASE WHEN NOT is_object THEN 'not an object'
                    WHEN t_id = 'DOUBLE' THEN 'distinct_id is a JSON number that is no exact integer (a fraction, an exponent, or beyond 64 bits)'
                    WHEN t_resolved = 'DOUBLE' THEN 'resolved_distinct_id is a JSON number that is no exact integer (a fraction, an exponent, or beyond 64 bits)'
                    WHEN {not_an_id('t_id', 'distinct_id')} THEN 'distinct_id is not an id (' || CASE WHEN t_id = 'VARCHAR' THEN 'empty' ELSE lower(t_id) END || ')'
                    ELSE 'resolved_distinct_id is not an id (' || CASE WHEN t_resolved = 'VARCHAR' THEN 'empty' ELSE lower(t_resolved) END || ')' END
        FROM {staged}
        WHERE NOT is_object OR {not_an_id('t_id', 'distinct_id')} OR {not_an_id('t_resolved', 'resolved')}
        ORDER BY line LIMIT 1""")
    if rows:
        n, line, what = rows[0]
        raise LoadError(path, f"identity mappings: {n:,} record(s) are not a mapping of a distinct_id to a "
                              f"resolved_distinct_id (the first: {what}); Mixpanel's mp_identity_mappings_data "
                              "export has both, as text", line=int(line))
    (mapped,) = engine.query_rows(f"SELECT count(*) FROM {staged} WHERE distinct_id IS NOT NULL AND resolved IS NOT NULL")[0]
    if not mapped:
        raise LoadError(path, "identity mappings: no record maps a distinct_id to a resolved_distinct_id (is it "
                              "Mixpanel's mp_identity_mappings_data export?)")


def _first(*exprs: str) -> str:
    return f"coalesce({', '.join(exprs)})"


def _prop(p: str, key: str) -> str:
    """JSON value of property ``key`` of the properties object ``p``."""
    return f"json_extract({p}, {sql_str('$.' + json.dumps(key))})"


def _ident(top: str, top_key: str, p: str, prop_key: str, schematized: bool = True) -> str:
    """Identifier text of the top-level value ``top`` (key ``top_key``), else of property
    ``prop_key``, else, in a schematized row (no ``properties`` column: ``has_props`` false), of
    its column ``mp_<name>`` (``$insert_id`` -> ``mp_insert_id``); a JSON float keeps its exported
    token (:func:`exact_id_sql`), read from the record's own text (``src``: the text as written in
    every JSON layout, where a top-level key may be spelled in upper case, ``folded``) or from the
    properties' text when a warehouse exported them as a JSON string (``props_text``)."""
    exprs = [exact_id_sql(top, "src", top_key, "folded"), exact_id_sql(_prop(p, prop_key), _PROPS_TEXT, prop_key)]
    if schematized and prop_key.startswith("$"):
        for col in (_schematized(prop_key), _reserved(prop_key)):
            exprs.append(f"CASE WHEN NOT has_props THEN {exact_id_sql(_prop(p, col), 'src', col, 'folded')} END")
    return _first(*exprs)


def _schematized(key: str) -> str:
    """The schematized export's column of property ``key`` (``$x`` -> ``mp_x``)."""
    return "mp_" + key[1:] if key.startswith("$") else key


def _reserved(key: str) -> str:
    """The column of property ``key`` in a record of Singer's tap-mixpanel (Stitch), which flattens
    the properties into the record and renames ``$x`` ``mp_reserved_x`` (``$insert_id`` ->
    ``mp_reserved_insert_id``): read where the schematized column ``mp_x`` is absent."""
    return "mp_reserved_" + key[1:] if key.startswith("$") else key


# the schematized column a string ``$mparticle_user_id`` goes to once the column holds numbers
# (the pipeline's type-conflict rule appends the new type to the name: ``x`` -> ``x_string``)
_MPUID_STRING_COL = "mp_mparticle_user_id_string"


def _mpuid_value_sql(first: str, p: str, plain: str = "FALSE") -> str:
    """The JSON value of ``$mparticle_user_id``: ``first`` (the property or its schematized
    column) when it holds a value, else, in a schematized row, the type-conflict column
    ``mp_mparticle_user_id_string``, else tap-mixpanel's ``mp_reserved_mparticle_user_id``
    (:func:`_reserved`), else, when ``plain`` (:func:`_mpuid_plain_sql`) holds, the column
    ``mparticle_user_id`` (option ``unprefixed=reserved``)."""
    alt, res = _prop(p, _MPUID_STRING_COL), _prop(p, _reserved(MPUID_KEY))
    return (f"CASE WHEN NOT {present_sql(first)} AND NOT has_props AND {present_sql(alt)} THEN {alt} "
            f"WHEN {_mpuid_reserved_sql(first, p)} THEN {res} "
            f"WHEN {plain} THEN {_prop(p, _UNPREFIXED_MPUID)} ELSE {first} END")


def _flattened_without_mpuid_sql(first: str, p: str) -> str:
    """SQL BOOLEAN: a row without a ``properties`` column whose ``first`` (the property or its
    schematized column) and type-conflict column hold no ``$mparticle_user_id``: where a
    connector's column of it is read (:func:`_mpuid_reserved_sql`, :func:`_mpuid_plain_sql`)."""
    return f"NOT {present_sql(first)} AND NOT has_props AND NOT {present_sql(_prop(p, _MPUID_STRING_COL))}"


def _mpuid_reserved_sql(first: str, p: str) -> str:
    """SQL BOOLEAN: ``$mparticle_user_id`` is read from tap-mixpanel's column (a row without a
    ``properties`` column, whose ``first`` and type-conflict column hold no value)."""
    return f"({_flattened_without_mpuid_sql(first, p)} AND {present_sql(_prop(p, _reserved(MPUID_KEY)))})"


# the name a connector that drops the "$" of Mixpanel's own properties (Airbyte) gives $mparticle_user_id
_UNPREFIXED_MPUID = MPUID_KEY[1:]


def _mpuid_plain_sql(first: str, p: str, ctx: FileContext, *, none_is_null: bool = False) -> str:
    """SQL BOOLEAN: ``$mparticle_user_id`` is read from the column ``mparticle_user_id``, the
    name Airbyte gives it: only with the option ``unprefixed=reserved`` (else ``FALSE``), in a
    row without a ``properties`` column where no other form of the property holds a value.
    ``none_is_null``: Airbyte's export stream writes every property as Python text, a null as
    ``None``, which is then no value."""
    if ctx.options.get("unprefixed") != "reserved":
        return "FALSE"
    v = _prop(p, _UNPREFIXED_MPUID)
    none = (f" AND NOT coalesce(json_type({v}) = 'VARCHAR' AND json_extract_string({v}, '$') = 'None', FALSE)"
            if none_is_null else "")
    return (f"({_flattened_without_mpuid_sql(first, p)} AND NOT {present_sql(_prop(p, _reserved(MPUID_KEY)))} "
            f"AND {present_sql(v)}{none})")


# where a property's JSON-float token is written: the properties' own text when they are a JSON
# string (the escaped copy in the record does not match), else the record's text
_PROPS_TEXT = "coalesce(props_text, src)"


def _mpuid_sql(prop: str, typ: str, text: str) -> str:
    """``$mparticle_user_id`` as exported text: a JSON float as its exact token, written either
    as the property ``$mparticle_user_id`` (``prop`` present), as the schematized column
    ``mp_mparticle_user_id``, as tap-mixpanel's ``mp_reserved_mparticle_user_id`` (the
    staged boolean ``mp_reserved``: :func:`_mpuid_value_sql`) or as Airbyte's ``mparticle_user_id``
    (``mp_plain``: :func:`_mpuid_plain_sql`)."""
    return (f"CASE WHEN {typ} <> 'DOUBLE' THEN {text} "
            f"WHEN {present_sql(prop)} THEN {inline_float_token_sql(_PROPS_TEXT, text, MPUID_KEY)} "
            f"WHEN mp_reserved THEN {inline_float_token_sql('src', text, _reserved(MPUID_KEY), 'folded')} "
            f"WHEN mp_plain THEN {inline_float_token_sql('src', text, _UNPREFIXED_MPUID, 'folded')} "
            f"ELSE {inline_float_token_sql('src', text, 'mp_mparticle_user_id', 'folded')} END")


def _time_sql(tv: str, unit: str) -> str:
    """TIMESTAMP (UTC) of a JSON time value: a number or numeric string = epoch (``unit``), any
    other string = an ISO-8601 / SQL timestamp (no zone = UTC)."""
    num = (f"CASE WHEN json_type({tv}) IN {NUMERIC_JSON_TYPES} THEN TRY_CAST({tv}::VARCHAR AS DOUBLE) "
           f"WHEN json_type({tv}) = 'VARCHAR' THEN TRY_CAST(trim(json_extract_string({tv}, '$')) AS DOUBLE) END")
    text = text_time_sql(f"json_extract_string({tv}, '$')")
    return (f"CASE WHEN ({num}) IS NOT NULL THEN {epoch_to_timestamp_sql(f'({num})', unit)} "
            f"WHEN json_type({tv}) = 'VARCHAR' THEN {text} END")


UNPREFIXED = ("custom", "reserved")


def _pop_unprefixed(kind: str, opts: dict[str, Any]) -> dict[str, str]:
    """The option ``unprefixed`` taken out of ``opts``: what a property name without "$" is in a
    row without a ``properties`` column. ``custom`` (the default): a custom property, kept as
    such. ``reserved``: also Mixpanel's own property of that name where no other form of it holds
    a value, as Airbyte writes them (it drops the "$"). {} for the default, so that the
    fingerprints of files loaded before the option existed stay theirs."""
    value = str(opts.pop("unprefixed", "custom")).strip().lower()
    if value not in UNPREFIXED:
        raise ValueError(f"{kind}: unprefixed must be custom or reserved, got {value!r}")
    return {"unprefixed": value} if value == "reserved" else {}


class MixpanelPipelineEventsLoader(Loader):
    kind = "mixpanel-pipeline-events"
    description = "Data Pipelines events, JSON or Parquet"

    def validate_options(self, options: dict[str, Any]) -> dict[str, Any]:
        opts = dict(options)
        unit = pop_time_unit(self.kind, opts)
        props = str(opts.pop("properties", "all")).strip().lower()
        if props not in ("all", "none"):
            raise ValueError(f"{self.kind}: properties must be all or none, got {props!r}")
        mappings = opts.pop("identity_mappings", None)
        unprefixed = _pop_unprefixed(self.kind, opts)
        if opts:
            raise ValueError(f"{self.kind}: unknown option(s) {sorted(opts)}; known: time_unit, properties, "
                             "identity_mappings, unprefixed")
        out: dict[str, Any] = {"time_unit": unit, "properties": props, **unprefixed}
        if mappings not in (None, ""):
            files = expand_paths(mappings)
            out["identity_mappings"] = [str(p) for p in files]
        return out

    def fingerprint_options(self) -> dict[str, Any]:
        fp = {k: v for k, v in self.options.items() if k != "identity_mappings"}
        if "identity_mappings" in self.options:  # the mappings' content, not their names, shapes rows
            fp["identity_mappings"] = sorted(
                fingerprint(Path(p), "mixpanel-identity-mappings", {}) for p in self.options["identity_mappings"])
        return fp

    # ------------------------------------------------------------------ identity mappings
    def begin(self, engine) -> None:
        super().begin(engine)
        engine.execute(f"DROP TABLE IF EXISTS {_MAP}")
        files = self.options.get("identity_mappings")
        if not files:
            return
        engine.execute(f"CREATE TEMP TABLE {_MAP} (distinct_id VARCHAR, resolved VARCHAR)")
        staged = f"{_MAP}_file"
        for f in files:
            ctx = FileContext(engine, Path(f), 0, "mixpanel-identity-mappings", {})
            try:
                engine.execute(
                    f"""CREATE OR REPLACE TEMP TABLE {staged} AS
                    SELECT line, coalesce(json_type(j) = 'OBJECT', FALSE) AS is_object,
                           json_type(v[1]) AS t_id, json_type(v[2]) AS t_resolved,
                           {id_text_sql('v[1]')} AS distinct_id, {id_text_sql('v[2]')} AS resolved
                    FROM (SELECT line, j, json_extract(j, ['$.distinct_id', '$.resolved_distinct_id']) AS v
                          FROM ({records_sql(ctx, lower_names=True)}))"""
                )
            except LoadError:
                raise
            except Exception as e:  # noqa: BLE001 - engine error: name the mappings file
                raise LoadError(f, f"identity mappings: {str(e).strip().splitlines()[0]}") from e
            _refuse_bad_mappings(engine, staged, f)
            engine.execute(f"INSERT INTO {_MAP} SELECT distinct_id, resolved FROM {staged}")
            engine.execute(f"DROP TABLE {staged}")
        (conflicts,) = engine.query_rows(
            f"SELECT count(*) FILTER (WHERE k > 1) FROM "
            f"(SELECT distinct_id, count(DISTINCT resolved) AS k FROM {_MAP} WHERE distinct_id IS NOT NULL "
            f"AND resolved IS NOT NULL GROUP BY 1)")[0]
        if conflicts:
            raise LoadError(files[0], f"identity mappings: {conflicts} distinct_id(s) map to several "
                                      "resolved_distinct_id values")
        engine.execute(f"DELETE FROM {_MAP} WHERE distinct_id IS NULL OR resolved IS NULL")

    def finish(self, engine, load_ids: list[int]) -> None:
        super().finish(engine, load_ids)
        engine.execute(f"DROP TABLE IF EXISTS {_MAP}")

    # ------------------------------------------------------------------ per file
    def load_file(self, ctx: FileContext) -> FileResult:
        eng = ctx.engine
        st = f"_mp_pl_ev_{ctx.load_id}"
        keep = ctx.options["properties"] == "all"
        eng.execute(f"CREATE OR REPLACE TEMP TABLE {st} AS {self._stage_sql(ctx, keep)}")
        if self.options.get("identity_mappings"):
            eng.execute(f"UPDATE {st} SET distinct_id = m.resolved FROM {_MAP} m WHERE {st}.distinct_id = m.distinct_id")
        quarantined = ctx.reject(f"SELECT line, reason, raw FROM {st} WHERE reason IS NOT NULL")
        rows_read, valid = eng.query_rows(f"SELECT count(*), count(*) FILTER (WHERE reason IS NULL) FROM {st}")[0]
        dup = f"{st}_dup"
        eng.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {dup} AS
            SELECT line FROM (SELECT line, {KEY} FROM {st} WHERE reason IS NULL)
            QUALIFY row_number() OVER (PARTITION BY {KEY} ORDER BY line) > 1
            UNION
            SELECT s.line FROM {st} s SEMI JOIN mp_events e
              ON e.event = s.event AND e.distinct_id = s.distinct_id AND e.time = s.time
             AND e.insert_id IS NOT DISTINCT FROM s.insert_id
            WHERE s.reason IS NULL
            """
        )
        n_dup = int(eng.query_rows(f"SELECT count(*) FROM {dup}")[0][0])
        eng.execute(
            f"""
            INSERT INTO mp_events (event, time, distinct_id, insert_id, device_id, user_id,
                                   mparticle_user_id, properties, load_id, source_file, line)
            SELECT event, time, distinct_id, insert_id, device_id, user_id, mparticle_user_id,
                   {properties_kept_sql('properties', 'mp_type', 'mparticle_user_id')}, ?, ?, line
            FROM {st} WHERE reason IS NULL AND line NOT IN (SELECT line FROM {dup})
            """,
            [ctx.load_id, str(ctx.path)],
        )
        warnings = event_time_warnings(
            ctx, st, "time", lambda line: f"SELECT time_value FROM {st} WHERE line = {line}")
        warnings += _unprefixed_mpuid_warning(ctx, st)
        eng.execute(f"DROP TABLE {dup}")
        eng.execute(f"DROP TABLE {st}")
        return FileResult(rows_read=int(rows_read), loaded=int(valid) - n_dup, deduplicated=n_dup,
                          quarantined=Counter(quarantined), warnings=warnings)

    def _stage_sql(self, ctx: FileContext, keep_properties: bool) -> str:
        unit = ctx.options["time_unit"]
        paths = ["$.event_name", "$.mp_event_name", "$.event", "$.properties", "$.time", "$.distinct_id",
                 "$.user_id", "$.device_id", "$.insert_id", "$.mp_mparticle_user_id"]
        p = "props"
        tv = f"CASE WHEN {present_sql('v[5]')} THEN v[5] ELSE {_prop(p, 'time')} END"
        mp_first = f"CASE WHEN {present_sql(_prop(p, '$mparticle_user_id'))} THEN {_prop(p, '$mparticle_user_id')} ELSE v[10] END"
        plain = _mpuid_plain_sql(mp_first, p, ctx, none_is_null=True)
        mp_v = _mpuid_value_sql(mp_first, p, plain)
        return f"""
            WITH rec AS (
                SELECT line, raw, j, src, folded, j IS NULL AS malformed,
                       coalesce(json_type(j) = 'OBJECT', FALSE) AS is_obj
                FROM ({records_sql(ctx, lower_names=True)})
            ),
            v AS (
                SELECT *, CASE WHEN is_obj THEN json_extract(j, {sql_list(paths)}) END AS v FROM rec
            ),
            p AS (
                SELECT *,
                       -- the properties object; a row without a properties column (schematized, or a
                       -- connector's flattened record: tap-mixpanel, Airbyte) is its own properties
                       CASE WHEN {present_sql('v[4]')} THEN {json_object_sql('v[4]')}
                            WHEN is_obj THEN j END AS props,
                       {present_sql('v[4]')} AS has_props,
                       CASE WHEN json_type(v[4]) = 'VARCHAR' THEN json_extract_string(v[4], '$') END AS props_text
                FROM v
            ),
            f AS (
                SELECT *,
                       {_first(raw_text_sql('v[1]'), raw_text_sql('v[2]'), raw_text_sql('v[3]'))} AS event,
                       -- the type of the event name and the distinct_id given, as mixpanel-events reads them
                       CASE WHEN {present_sql('v[1]')} THEN json_type(v[1]) WHEN {present_sql('v[2]')} THEN json_type(v[2])
                            WHEN {present_sql('v[3]')} THEN json_type(v[3]) END AS event_type,
                       CASE WHEN {present_sql('v[6]')} THEN json_type(v[6])
                            ELSE json_type({_prop(p, 'distinct_id')}) END AS did_type,
                       {tv} AS tv,
                       {_ident('v[7]', 'user_id', p, '$user_id')} AS user_id,
                       {_ident('v[8]', 'device_id', p, '$device_id')} AS device_id,
                       {_ident('v[9]', 'insert_id', p, '$insert_id')} AS insert_id,
                       {_ident('v[6]', 'distinct_id', p, 'distinct_id')} AS did,
                       {mp_v} AS mp_v, {_prop(p, '$mparticle_user_id')} AS mp_prop,
                       {_mpuid_reserved_sql(mp_first, p)} AS mp_reserved, {plain} AS mp_plain,
                       -- Airbyte's flattened export names $mparticle_user_id so (its warning)
                       NOT has_props AND {present_sql(_prop(p, _UNPREFIXED_MPUID))} AS mp_unprefixed
                FROM p
            ),
            g AS (
                SELECT *, {_time_sql('tv', unit)} AS ts,
                       coalesce(did, user_id, '$device:' || device_id) AS distinct_id,
                       json_type(mp_v) AS mp_type, {raw_text_sql('mp_v')} AS mp_text
                FROM f
            )
            SELECT line,
                   CASE WHEN malformed THEN 'malformed_json'
                        WHEN NOT is_obj THEN 'not_an_object'
                        WHEN event IS NULL OR event = '' THEN 'missing_event'
                        -- a number, boolean, array or object is no event name (its text would not be
                        -- the exported one), as in mixpanel-events
                        WHEN event_type <> 'VARCHAR' THEN 'bad_event'
                        WHEN has_props AND props IS NULL THEN 'bad_properties'
                        WHEN tv IS NULL OR json_type(tv) = 'NULL' THEN 'missing_time'
                        WHEN ts IS NULL THEN 'bad_time'
                        -- only an absent, null or empty distinct_id is derived from user_id / device_id:
                        -- a boolean, array or object is a bad one, as in mixpanel-events
                        WHEN did_type IN ('BOOLEAN', 'OBJECT', 'ARRAY') THEN 'bad_distinct_id'
                        WHEN distinct_id IS NULL THEN 'missing_distinct_id'
                   END AS reason,
                   raw, event, ts AS time, distinct_id, insert_id, device_id, user_id,
                   -- an early time's JSON text, for its warning (mixpanel_common.event_time_warnings)
                   CASE WHEN ts < TIMESTAMP '{EARLY_EVENT_TIME}' THEN tv::VARCHAR END AS time_value,
                   {_mpuid_sql('mp_prop', 'mp_type', 'mp_text')} AS mparticle_user_id, mp_type, mp_unprefixed,
                   {"props" if keep_properties else "NULL::JSON"} AS properties
            FROM g"""


def _unprefixed_mpuid_warning(ctx: FileContext, st: str) -> list[str]:
    """A warning when no loaded event of the staged file ``st`` has a ``$mparticle_user_id``
    (nor its ``mp_`` column) but rows without a ``properties`` column hold ``mparticle_user_id``:
    an Airbyte Mixpanel export, which flattens the properties into the row and drops their "$"
    (a custom ``mparticle_user_id`` property would be ``_mparticle_user_id`` there). Its value is
    not read as the event's MPID (unless the option ``unprefixed=reserved`` says so: no warning
    then), so the event identity rule finds none; the name only, never values."""
    if ctx.options.get("unprefixed") == "reserved":
        return []
    (n, first), = ctx.engine.query_rows(
        f"SELECT count(*) FILTER (WHERE mp_unprefixed), min(line) FILTER (WHERE mp_unprefixed) FROM {st} "
        f"WHERE reason IS NULL AND NOT EXISTS (SELECT 1 FROM {st} WHERE reason IS NULL AND mp_type IS NOT NULL)")
    if not n:
        return []
    return [f"{ctx.path}: no event holds $mparticle_user_id (or mp_mparticle_user_id), but {n:,} event(s) "
            f"without a properties column hold mparticle_user_id (the first on line {first}): a connector's "
            f"flattened export (Airbyte drops the \"$\" of Mixpanel's own properties)? It is kept as a plain "
            f"property, so these events carry no MPID for the event identity rule; if the project has no custom "
            f"property of that name, load the file again into a new database with -o unprefixed=reserved to "
            f"read it as $mparticle_user_id"]


class MixpanelPipelineProfilesLoader(ProfileUpserts, AsOfOnly, Loader):
    # as_of: when the export was taken, the time of the profile versions it adds to
    # mp_profile_history (else the load time), as for mixpanel-profiles (docs/loading.md#warehouse)
    kind = "mixpanel-pipeline-profiles"
    description = "Data Pipelines profiles, JSON or Parquet"

    def validate_options(self, options: dict[str, Any]) -> dict[str, Any]:
        opts = dict(options)
        unprefixed = _pop_unprefixed(self.kind, opts)
        unknown = sorted(set(opts) - {"as_of"})
        if unknown:
            raise ValueError(f"{self.kind}: unknown option(s) {unknown}; known: as_of, unprefixed")
        return {**super().validate_options(opts), **unprefixed}

    def load_file(self, ctx: FileContext) -> FileResult:
        eng = ctx.engine
        st = f"_mp_pl_pr_{ctx.load_id}"
        p = "props"
        plain_names = ctx.options.get("unprefixed") == "reserved"

        def prop(key: str) -> str:
            """The property, or its schematized column (``$x`` -> ``mp_x``), or tap-mixpanel's, or
            (``unprefixed=reserved``, a row without ``properties``) its name without "$"."""
            forms = [_prop(p, key), _prop(p, _schematized(key)), _prop(p, _reserved(key))]
            if plain_names:
                forms.append(f"CASE WHEN NOT has_props THEN {_prop(p, key[1:])} END")
            return f"coalesce({', '.join(forms)})"

        # ``$mparticle_user_id`` or its schematized column, before the others
        mp_first = f"coalesce({_prop(p, MPUID_KEY)}, {_prop(p, _schematized(MPUID_KEY))})"
        plain = _mpuid_plain_sql(mp_first, p, ctx)

        eng.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {st} AS
            WITH rec AS (
                SELECT line, raw, j, src, folded, j IS NULL AS malformed,
                       coalesce(json_type(j) = 'OBJECT', FALSE) AS is_obj
                FROM ({records_sql(ctx, lower_names=True)})
            ),
            v AS (SELECT *, CASE WHEN is_obj THEN json_extract(j, ['$.distinct_id', '$.properties', '$."$distinct_id"']) END AS v
                  FROM rec),
            p AS (
                SELECT *, {present_sql('v[2]')} AS has_props,
                       CASE WHEN {present_sql('v[2]')} THEN {json_object_sql('v[2]')}
                            WHEN is_obj THEN json_remove(j, '$.distinct_id') END AS props,
                       CASE WHEN json_type(v[2]) = 'VARCHAR' THEN json_extract_string(v[2], '$') END AS props_text,
                       coalesce({exact_id_sql('v[1]', 'src', 'distinct_id', 'folded')},
                                {exact_id_sql('v[3]', 'src', '$distinct_id', 'folded')}) AS distinct_id
                FROM v
            ),
            f AS (
                SELECT *, {_mpuid_value_sql(mp_first, p, plain)} AS mp_v,
                       {_mpuid_reserved_sql(mp_first, p)} AS mp_reserved, {plain} AS mp_plain,
                       {_prop(p, '$mparticle_user_id')} AS mp_prop FROM p
            ),
            g AS (
                SELECT *, json_type(mp_v) AS mp_type, {raw_text_sql('mp_v')} AS mp_text FROM f
            ),
            m AS (
                SELECT *, {_mpuid_sql('mp_prop', 'mp_type', 'mp_text')} AS mparticle_user_id FROM g
            )
            SELECT line,
                   CASE WHEN malformed THEN 'malformed_json' WHEN NOT is_obj THEN 'not_an_object'
                        -- a boolean, array or object is a bad distinct_id, as in mixpanel-profiles
                        WHEN distinct_id IS NULL AND (json_type(v[1]) IN ('BOOLEAN', 'OBJECT', 'ARRAY')
                             OR json_type(v[3]) IN ('BOOLEAN', 'OBJECT', 'ARRAY')) THEN 'bad_distinct_id'
                        WHEN distinct_id IS NULL THEN 'missing_distinct_id'
                        WHEN has_props AND props IS NULL THEN 'bad_properties' END AS reason,
                   raw, distinct_id,
                   {properties_kept_sql("coalesce(props, '{}'::JSON)", 'mp_type', 'mparticle_user_id')} AS properties,
                   mparticle_user_id, mp_type,
                   json_extract_string({prop('$email')}, '$') AS email,
                   json_extract_string({prop('$phone')}, '$') AS phone,
                   {profile_time_sql(prop('$created'))} AS created,
                   {profile_time_sql(prop('$last_seen'))} AS last_seen,
                   {_names_event_sql()} AS names_event
            FROM m
            """
        )
        _refuse_events_as_profiles(ctx, st)  # from the staged rows: the file is read once
        quarantined = ctx.reject(f"SELECT line, reason, raw FROM {st} WHERE reason IS NOT NULL")
        warnings = _unprefixed_warning(ctx, st) + profile_time_warnings(ctx, f"SELECT * FROM {st} WHERE reason IS NULL")
        loaded, dedup = upsert_profiles(ctx, f"SELECT * FROM {st} WHERE reason IS NULL")
        rows_read = int(eng.query_rows(f"SELECT count(*) FROM {st}")[0][0])
        eng.execute(f"DROP TABLE {st}")
        return FileResult(rows_read=rows_read, loaded=loaded, deduplicated=dedup, quarantined=Counter(quarantined),
                          warnings=warnings)


# the profile properties this kind reads, by their names without "$" (or "mp_"): a flattened
# Engage record (a connector's `email`, `last_seen`) holds them under these names, which are
# not Mixpanel's, so nothing would be read from it
_UNPREFIXED = ("email", "phone", "created", "last_seen", "mparticle_user_id")


def _unprefixed_warning(ctx: FileContext, st: str) -> list[str]:
    """A warning when no loaded record of the staged file ``st`` has any profile property this
    kind reads (``$email``, ``$phone``, ``$created``, ``$last_seen``, ``$mparticle_user_id`` or
    their ``mp_`` columns) but some hold them without the prefix: the file is not a Data
    Pipelines people table (a connector's flattened Engage records?), and those values stay
    plain properties (no email, last seen or MPID), unless the option ``unprefixed=reserved``
    reads them (no warning then); names only, never values."""
    if ctx.options.get("unprefixed") == "reserved":
        return []
    read_any = ctx.engine.query_rows(
        f"SELECT EXISTS (SELECT 1 FROM {st} WHERE reason IS NULL AND (coalesce(email, phone) IS NOT NULL "
        f"OR created IS NOT NULL OR last_seen IS NOT NULL OR mp_type IS NOT NULL))")[0][0]
    if read_any:  # the common case: one scan that stops at the first such record
        return []
    keys = [k for k, in ctx.engine.query_rows(
        f"SELECT DISTINCT k FROM (SELECT unnest(json_keys(properties)) AS k FROM {st} WHERE reason IS NULL) "
        f"WHERE list_contains({sql_list(_UNPREFIXED)}, k) ORDER BY k")]
    if not keys:
        return []
    return [f"{ctx.path}: no record holds a profile property this kind reads ($email, $last_seen, "
            f"$mparticle_user_id, … or their mp_ columns), but records hold {', '.join(keys)} without "
            f"the prefix: kept as plain properties, so these profiles have no email, last seen or MPID "
            f"(a connector's flattened Engage records? Airbyte drops the \"$\" of Mixpanel's own properties); "
            f"if the project has no custom property of these names, load the file into a new database with "
            f"-o unprefixed=reserved to read them as Mixpanel's"]


__all__ = ["MixpanelPipelineEventsLoader", "MixpanelPipelineProfilesLoader", "is_parquet"]
