"""SQL building blocks shared by the Mixpanel loaders (DuckDB dialect).

* :func:`id_text_sql` / :func:`raw_text_sql`: a JSON value as identifier text, never through a
  float (DuckDB keeps the exact text of JSON integers, even above 2^53: docs/rules.md#exact-numbers).
* :func:`recover_float_tokens` / :func:`inline_float_token_sql`: DuckDB re-serialises JSON
  *floats* (``1.2e18`` becomes ``1200000000000000000.0``). For the few rows whose
  ``$mparticle_user_id`` or distinct_id is a JSON float the exact token is read back from the
  file text with a regular expression (matched by value), so an identifier stays its exported
  text (``9080350317581165123.0`` and ``9.080350317581165123e18`` stay two identifiers).
* :func:`upsert_profiles`: the "upsert Mixpanel profiles from a relation" step used by the
  profiles loader and by the members loader (Engage pages carry ``$properties``).
* :func:`stage_engage_results`: Engage response pages and/or bare result objects, one row per
  profile, numbered in document order (shared by the profiles and members loaders).

Everything is set-based; nothing loops over records in Python.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from cohortlab.pipeline import sql_list, sql_str
from cohortlab.loaders import fast
from cohortlab.times import parse_naive_utc

from cohortlab.errors import LoadError
from cohortlab.loaders.connectors import connector_hint
from cohortlab.loaders.base import FileContext, container_type_sql, nonblank_sql
from cohortlab.loaders.files import sniff_json_layout

NUMERIC_JSON_TYPES = "('BIGINT', 'UBIGINT', 'HUGEINT', 'DOUBLE')"

MPUID_KEY = "$mparticle_user_id"


def float_token_re(key: str = MPUID_KEY) -> str:
    """A regular expression that matches every ``"<key>": <value>`` in a JSON text and captures
    the numeric token (empty for a non-numeric value). ``key`` may come from data (an mParticle
    identity type as a file writes it): in SQL the pattern is a literal quoted by ``sql_str``."""
    return '"' + re.escape(key) + r'"\s*:\s*(-?[0-9.eE+\-]*)'


def float_typed_token_sql(tok: str) -> str:
    """SQL BOOLEAN: the number token ``tok`` is one DuckDB's JSON reader types as a float
    (``DOUBLE``): written with a fraction or an exponent, or an integer beyond the 64-bit
    integers. An integer token of the same value (``9080350317581165123`` beside the float
    ``9.080350317581166e+18``, the MPID beside its damaged copy) is never a float's own token."""
    return (f"(regexp_matches({tok}, '[.eE]') OR "
            f"(TRY_CAST({tok} AS BIGINT) IS NULL AND TRY_CAST({tok} AS UBIGINT) IS NULL))")


def inline_float_token_sql(raw: str, text: str, key: str = MPUID_KEY, any_case: str | None = None) -> str:
    """The exact token of a JSON-float value of ``key`` (``$mparticle_user_id``, ``distinct_id``,
    ...) whose DuckDB text is ``text``, from ``raw``, the text of the one record holding it: the
    number written after a ``"<key>"`` key whose value is the same, when ``raw`` spells that
    value one way only (other keys, nested or with other values, do not count); else ``text``.
    ``any_case`` (SQL BOOLEAN): where true, the key is matched in any case (a warehouse unload's
    ``"DISTINCT_ID"``, read as ``distinct_id``: :func:`cohortlab.loaders._warehouse.records_sql`)."""
    pattern = sql_str(float_token_re(key))
    if any_case is not None:
        pattern = f"(CASE WHEN {any_case} THEN '(?i)' ELSE '' END || {pattern})"
    toks = (f"list_distinct(list_filter(regexp_extract_all({raw}, {pattern}, 1), "
            f"lambda x: TRY_CAST(x AS DOUBLE) = TRY_CAST({text} AS DOUBLE) AND {float_typed_token_sql('x')}))")
    return f"coalesce(CASE WHEN len({toks}) = 1 THEN {toks}[1] END, {text})"


def exact_id_sql(v: str, raw: str, key: str, any_case: str | None = None) -> str:
    """:func:`id_text_sql` of JSON value ``v`` (the value of ``key`` in the record whose text is
    ``raw``), a JSON float as its exact token in ``raw`` (:func:`inline_float_token_sql`, with
    ``any_case``)."""
    return (f"CASE WHEN json_type({v}) = 'DOUBLE' THEN {inline_float_token_sql(raw, f'{v}::VARCHAR', key, any_case)} "
            f"ELSE {id_text_sql(v)} END")


def properties_kept_sql(properties: str, mp_type: str, mpuid: str) -> str:
    """A record's ``properties`` as stored (``mp_events.properties``, ``mp_profiles.properties``):
    the staged object (loader option ``properties=all``), or NULL (``properties=none``), except
    for a record whose ``$mparticle_user_id`` is a JSON float (``mp_type`` = 'DOUBLE') and whose
    properties do not hold it as a JSON number under that key (not kept, or a schematized
    pipeline row that names it ``mp_mparticle_user_id``): they get
    ``{"$mparticle_user_id": <its exact token>}``, whose JSON type tells the resolution that the
    number was a JSON float (``precision_loss_form`` json_float, not float_text). Alone, the JSON
    text is kept as written, so the token's digits stay."""
    token = f"('{{\"$mparticle_user_id\": ' || {mpuid} || '}}')::JSON"
    return (f"CASE WHEN {mp_type} = 'DOUBLE' AND json_type({properties}, '$.\"$mparticle_user_id\"') "
            f"IS DISTINCT FROM 'DOUBLE' THEN CASE WHEN {properties} IS NULL THEN {token} "
            f"ELSE json_merge_patch({properties}, {token}) END ELSE {properties} END")


def id_text_sql(v: str) -> str:
    """Identifier text of JSON value ``v``: a string as is, a number as its exact JSON text;
    NULL for absent, JSON null, the empty string, booleans, objects and arrays."""
    return (
        f"CASE json_type({v}) WHEN 'VARCHAR' THEN nullif(json_extract_string({v}, '$'), '') "
        f"WHEN 'BIGINT' THEN {v}::VARCHAR WHEN 'UBIGINT' THEN {v}::VARCHAR "
        f"WHEN 'HUGEINT' THEN {v}::VARCHAR WHEN 'DOUBLE' THEN {v}::VARCHAR END"
    )


def cohort_id_sql(v: str) -> str:
    """A cohort id's text (:func:`id_text_sql`), except that a whole JSON float below 2**53
    (``1002.0``, ``1.002e3``: a cohorts list or a payload passed through a pandas round trip;
    Mixpanel's cohort ids are integers) is that integer's text, ``1002``, so that it names the
    same cohort as the ``1002`` or ``"1002"`` of another file. A fraction, or a float too large
    to be exact, stays as written."""
    d = f"TRY_CAST({v} AS DOUBLE)"
    return (f"CASE WHEN json_type({v}) = 'DOUBLE' AND abs({d}) < 9007199254740992 AND {d} = trunc({d}) "
            f"THEN CAST({d} AS BIGINT)::VARCHAR ELSE {id_text_sql(v)} END")


def raw_text_sql(v: str) -> str:
    """Text of JSON value ``v`` "as exported": a string as is (also ``""``), anything else as its
    JSON text (``true``, ``{}``, numbers); NULL only for absent or JSON null."""
    return (
        f"CASE json_type({v}) WHEN 'VARCHAR' THEN json_extract_string({v}, '$') "
        f"WHEN 'NULL' THEN NULL ELSE {v}::VARCHAR END"
    )


def text_time_sql(text: str) -> str:
    """TIMESTAMP (UTC) of the time text ``text`` (an SQL VARCHAR): ISO-8601 or SQL (no zone =
    UTC; an offset or a zone name is honoured, also after a space, as warehouses write it:
    BigQuery's ``2026-03-01 00:00:00 UTC``, Snowflake's ``2026-03-01 00:00:00.000 -0800``);
    NULL for text that is no time."""
    return (f"timezone('UTC', TRY_CAST(regexp_replace(trim({text}), ' ([+-][0-9]{{2}}(:?[0-9]{{2}})?)$', '\\1') "
            f"AS TIMESTAMPTZ))")


def utc_timestamp_sql(v: str) -> str:
    """TIMESTAMP (UTC) from a JSON value holding an ISO-8601 string (no zone = UTC; an offset is
    honoured: :func:`text_time_sql`). Other types and unparsable strings give NULL."""
    leaf = f"json_extract_string({v}, '$')"
    return f"CASE WHEN json_type({v}) = 'VARCHAR' THEN {text_time_sql(leaf)} END"


def profile_time_sql(v: str) -> str:
    """TIMESTAMP (UTC) of a profile date (``$created``, ``$last_seen``) from its JSON value ``v``:
    an ISO-8601 string (no zone = UTC; an offset is honoured), or an epoch number in seconds or
    milliseconds (read as an event's ``time``: above 1e11 is milliseconds), which imported
    profiles carry; NULL for anything else."""
    leaf = f"json_extract_string({v}, '$')"
    return (
        f"CASE WHEN json_type({v}) IN {NUMERIC_JSON_TYPES} "
        f"THEN {epoch_to_timestamp_sql(f'TRY_CAST({v}::VARCHAR AS DOUBLE)')} "
        f"ELSE {text_time_sql(leaf)} END"
    )


TIME_UNITS = ("auto", "s", "ms")  # of an event's epoch `time` (auto: above 1e11 is milliseconds)


def pop_time_unit(kind: str, opts: dict[str, Any]) -> str:
    """The loader option ``time_unit`` taken out of ``opts`` (default ``auto``); ValueError
    naming the loader ``kind`` for any other value."""
    unit = str(opts.pop("time_unit", "auto")).strip().lower()
    if unit not in TIME_UNITS:
        raise ValueError(f"{kind}: time_unit must be one of {', '.join(TIME_UNITS)}, got {unit!r}")
    return unit


def epoch_to_timestamp_sql(num: str, unit: str = "auto") -> str:
    """TIMESTAMP (UTC) from a DOUBLE epoch ``num`` in seconds, milliseconds or auto (> 1e11 = ms);
    NULL when not finite or outside the TIMESTAMP range."""
    mult = {"s": "1e6", "ms": "1e3"}.get(unit, f"(CASE WHEN abs({num}) > 1e11 THEN 1e3 ELSE 1e6 END)")
    micros = f"round({num} * {mult})"
    return (
        f"CASE WHEN {micros} BETWEEN -62135596800e6 AND 253402300799e6 "
        f"THEN make_timestamp(CAST({micros} AS BIGINT)) END"
    )


# Mixpanel does not accept an event time before 1971-01-01: an exported event earlier than that
# holds a wrong number (negative, or seconds read as milliseconds with -o time_unit=ms). Such an
# event is loaded as read, with a load warning (docs/loading.md#warnings); a time beyond the year
# 9999 is no TIMESTAMP and already quarantined (`bad_time`).
EARLY_EVENT_TIME = "1971-01-01"


def event_time_warnings(ctx: FileContext, table: str, field: str, value_sql, where: str = "reason IS NULL") -> list[str]:
    """The load warning (naming the file) for the events of ``table`` (``where``) whose ``time``
    is before :data:`EARLY_EVENT_TIME`: how many, and the first one's line, value and time as read.
    One query on the staged ``time`` and ``line`` columns, so the fast and the exact path, which
    stage the same rows, give the same warning; only when there is one, ``value_sql(line)`` (SQL:
    one VARCHAR, the field's JSON text in that record) reads the value back from the file."""
    early = f"time < TIMESTAMP '{EARLY_EVENT_TIME}'"
    n, line, first = ctx.engine.query_rows(
        f"SELECT count(*) FILTER (WHERE {early}), min(line) FILTER (WHERE {early}), "
        f"arg_min(time, line) FILTER (WHERE {early}) FROM {table} WHERE {where}")[0]
    if not n:
        return []
    value = ctx.engine.query_rows(value_sql(int(line)))
    shown = f"{value[0][0]}, " if value and value[0][0] is not None else ""
    return [f"{ctx.path}: {n:,} event(s) give {field} before {EARLY_EVENT_TIME} (line {line}: {shown}read as "
            f"{first.isoformat(sep=' ')}); Mixpanel does not accept such times: is the time wrong "
            "(a negative number, or seconds read as milliseconds)? Loaded as read"]


def profile_time_warnings(ctx: FileContext, relation: str) -> list[str]:
    """The load warnings (each naming the file) for the profiles of ``relation`` (rows of an
    :func:`upsert_profiles` relation: line, properties, created, last_seen) whose ``$created`` or
    ``$last_seen`` is read as a time before :data:`EARLY_EVENT_TIME`, as events are warned about:
    an epoch number below 31,536,000 seconds (``0``, a negative one) or a date Mixpanel renders from
    one (``"1970-01-01T00:00:00"``) is no real date of a profile, and a ``$last_seen`` read so makes
    its user look inactive since 1970 (its events are not read instead). Loaded as read; each
    warning gives the number of profiles and the first one's line, value (from ``properties``,
    the same whichever path read it) and time as read."""
    counts = ", ".join(
        f"count(*) FILTER (WHERE {c} < TIMESTAMP '{EARLY_EVENT_TIME}'), "
        f"min(line) FILTER (WHERE {c} < TIMESTAMP '{EARLY_EVENT_TIME}')" for c in ("created", "last_seen"))
    row = ctx.engine.query_rows(f"SELECT {counts} FROM ({relation})")[0]  # one scan of two columns
    out = []
    for (col, key), n, line in zip((("created", "$created"), ("last_seen", "$last_seen")), row[0::2], row[1::2]):
        if not n:
            continue
        # the first one's value and time, read for its line only
        # the property, or a schematized table's column (``mp_created``: docs/loading.md#warehouse)
        forms = ", ".join(f"json_extract(properties, {sql_str('$.' + json.dumps(k))})"
                          for k in (key, "mp_" + key[1:]))
        value, first = ctx.engine.query_rows(
            f"SELECT coalesce({forms})::VARCHAR, {col} "
            f"FROM ({relation}) WHERE line = {int(line)} AND {col} < TIMESTAMP '{EARLY_EVENT_TIME}' LIMIT 1")[0]
        shown = f"{value}, " if value is not None else ""  # a Parquet TIMESTAMP column has no JSON text: the time
        out.append(f"{ctx.path}: {n:,} profile(s) give {key} before {EARLY_EVENT_TIME} (line {line}: "
                   f"{shown}read as {first.isoformat(sep=' ')}): no real date of a profile (0, a negative "
                   f"number, a number in another unit than seconds or milliseconds?); loaded as read")
    return out


def record_value_sql(ctx: FileContext, path: str):
    """``value_sql`` for :func:`event_time_warnings`: the JSON text at ``path`` of the record of
    line ``line`` of a JSON file, read again (JSONL: that line's text alone is parsed)."""
    def sql(line: int) -> str:
        if sniff_json_layout(ctx.text_path()) == "jsonl":
            return f"SELECT json_extract(raw, {sql_str(path)})::VARCHAR FROM ({ctx.lines_sql()}) WHERE line = {line}"
        return f"SELECT json_extract(j, {sql_str(path)})::VARCHAR FROM ({ctx.json_records_sql()}) WHERE line = {line}"
    return sql


def json_number_sql(v: str) -> str:
    """DOUBLE from a JSON number or a numeric string; NULL otherwise."""
    return (
        f"CASE WHEN json_type({v}) IN {NUMERIC_JSON_TYPES} THEN TRY_CAST({v}::VARCHAR AS DOUBLE) "
        f"WHEN json_type({v}) = 'VARCHAR' THEN TRY_CAST(trim(json_extract_string({v}, '$')) AS DOUBLE) END"
    )


def parse_utc(value: Any, what: str) -> datetime:
    """A time option (ISO-8601, datetime, epoch s/ms) -> naive UTC; see :func:`cohortlab.times.parse_time`."""
    return parse_naive_utc(value, what, epoch=True)


# --------------------------------------------------------------------------- exact float tokens
def doc_texts_sql(ctx: FileContext, layout: str) -> str:
    """SELECT (doc_no, text): the exact text of each document of the file. For JSONL a document
    is a line (doc_no = line); for a JSON array file the whole array is document 1."""
    if layout == "jsonl":
        return f"SELECT line AS doc_no, raw AS text FROM ({ctx.lines_sql()})"
    return (
        "SELECT row_number() OVER () AS doc_no, json::VARCHAR AS text FROM read_json_objects("
        f"{ctx.text_sql}, format='unstructured', compression='{ctx.text_compression}', "
        f"maximum_object_size={ctx.document_buffer()})"
    )


def doc_no_sql(layout: str, line: str = "line") -> str:
    """The doc_no (see :func:`doc_texts_sql`) of a record of ``ctx.json_records_sql()``."""
    return "1" if layout == "array" else line


def recover_float_tokens(ctx: FileContext, layout: str, stage: str, *, key: str, doc_no: str,
                         ord_: str, typ: str, text: str, json_key: str = MPUID_KEY) -> int:
    """Replace ``stage.text`` by the exact JSON token for rows whose value of ``json_key``
    (``$mparticle_user_id``, ``$distinct_id``, ...) is a JSON float (``typ = 'DOUBLE'``).
    Returns the number of rows fixed.

    ``stage`` must hold the records of the file with the columns named by ``key`` (unique row
    key), ``doc_no`` (document holding the record), ``typ`` (json_type of the value) and
    ``text`` (``ord_``, the order of the records in a document, is not needed: tokens are
    matched by value). A record takes the float token (:func:`float_typed_token_sql`) written
    after a ``"<json_key>"`` key in its document whose value is its own (an integer of the same
    value, the MPID beside its damaged copy, is another value); when its document spells it in two ways
    (``1.2e18`` and ``1.20e18``), which one is its own is unknown and DuckDB's text is kept.
    Keys elsewhere in the document (a nested ``{"$mparticle_user_id": "4"}``, a string value)
    do not disturb the match."""
    del ord_
    eng = ctx.engine
    if not eng.query_rows(f"SELECT 1 FROM {stage} WHERE {typ} = 'DOUBLE' LIMIT 1"):
        return 0
    fix = f"_mp_fix_{ctx.load_id}"
    eng.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {fix} AS
        WITH floats AS (SELECT {key} AS k, {doc_no} AS doc_no, TRY_CAST({text} AS DOUBLE) AS val
                        FROM {stage} WHERE {typ} = 'DOUBLE'),
        toks AS (
            SELECT doc_no, tok, TRY_CAST(tok AS DOUBLE) AS val
            FROM (SELECT d.doc_no, unnest(regexp_extract_all(d.text, {sql_str(float_token_re(json_key))}, 1)) AS tok
                  FROM ({doc_texts_sql(ctx, layout)}) d WHERE d.doc_no IN (SELECT doc_no FROM floats))
            WHERE {float_typed_token_sql('tok')}
        )
        SELECT f.k, min(t.tok) AS token
        FROM floats f JOIN toks t ON t.doc_no = f.doc_no AND t.val = f.val
        GROUP BY f.k HAVING count(DISTINCT t.tok) = 1
        """
    )
    n = int(eng.query_rows(f"SELECT count(*) FROM {fix}")[0][0])
    if n:
        eng.execute(f"UPDATE {stage} SET {text} = f.token FROM {fix} f WHERE {stage}.{key} = f.k")
    eng.execute(f"DROP TABLE {fix}")
    return n


# --------------------------------------------------------------------------- Engage results
# JSON paths of an Engage result object; the profile columns are extracted in the same parse.
_RESULT_PATHS = (
    '$."$distinct_id"', '$."$properties"', '$."$properties"."$mparticle_user_id"',
    '$."$properties"."$email"', '$."$properties"."$phone"', '$."$properties"."$created"',
    '$."$properties"."$last_seen"',
)

# the operations of a profile update sent to Mixpanel's /engage (``{"$token", "$distinct_id",
# "$set": {...}}``: what a connector or mParticle's Mixpanel output sends, an import file of
# profiles): a change to some properties, not an exported profile (its ``$properties``)
ENGAGE_OPERATIONS = ("$set", "$set_once", "$add", "$append", "$union", "$remove", "$unset", "$delete")


def _own_keys_sql(idv: str, pv: str, raw: str) -> str:
    """SQL VARCHAR[]: the distinct top-level keys of a result without ``$properties`` (``pv``
    absent; ``idv``: its ``$distinct_id``), from its JSON text ``raw``; NULL for any other record.
    Read once, for the two checks below: it parses the record again."""
    return f"CASE WHEN {idv} IS NOT NULL AND {pv} IS NULL THEN list_distinct(json_keys({raw}::JSON)) END"


def engage_update_sql(keys: str) -> str:
    """SQL BOOLEAN: a result's own keys (:func:`_own_keys_sql`) hold one of
    :data:`ENGAGE_OPERATIONS`: a profile update sent to /engage."""
    return f"list_has_any({keys}, {sql_list(ENGAGE_OPERATIONS)})"


def engage_flattened_sql(keys: str) -> str:
    """SQL BOOLEAN: a result's own keys (:func:`_own_keys_sql`) hold a key other than
    ``$distinct_id``: an Engage result whose ``$properties`` were spread into the record
    (``{"$distinct_id": …, "$email": …, "plan": …}``, as ak--47/mixpanel-import's profile stream
    writes it), not a bare id."""
    return f"coalesce(len({keys}) > list_contains({keys}, '$distinct_id')::INTEGER, FALSE)"


def _paths_sql(paths) -> str:
    return sql_list(paths)


def parsed_lines_sql(lines: str, paths) -> str:
    """SELECT (line, raw, malformed, is_obj, v) of JSONL ``lines`` (line, raw; ``line`` NULL for a
    blank line, which is neither parsed nor malformed): ``v`` = ``json_extract(raw, paths)`` (a
    JSON list) from one parse of the line's text (``try``: NULL when the line is not valid JSON,
    the same validity as ``TRY_CAST(raw AS JSON)``), with no JSON copy of the whole line."""
    return (
        f"SELECT line, raw, line IS NOT NULL AND v IS NULL AS malformed, "
        f"v IS NOT NULL AND starts_with(ltrim(raw, ' \t\r\n'), '{{') AS is_obj, v "
        f"FROM (SELECT line, raw, CASE WHEN line IS NOT NULL THEN try(json_extract(raw, {_paths_sql(paths)})) END AS v "
        f"FROM ({lines}))"
    )


def parsed_records_sql(ctx: FileContext, layout: str, paths) -> str:
    """SELECT (line, raw, malformed, is_obj, v): the records of ``ctx.json_records_sql()`` with
    ``v`` = ``json_extract(record, paths)`` (a JSON list); a JSONL line is parsed once, straight
    from its text (:func:`parsed_lines_sql`)."""
    if layout == "jsonl":
        return parsed_lines_sql(f"SELECT line, raw FROM ({ctx.lines_sql()}) WHERE {nonblank_sql('raw')}", paths)
    return (
        f"SELECT line, raw, j IS NULL AS malformed, coalesce(json_type(j) = 'OBJECT', FALSE) AS is_obj, "
        f"json_extract(j, {_paths_sql(paths)}) AS v FROM ({ctx.json_records_sql()})"
    )


# the JSON paths engage_page_sql reads, first in a record's list of extracted values
PAGE_PATHS = "['$.results', '$.\"$distinct_id\"']"


def engage_page_sql(v: str = "v") -> str:
    """Whether a record is an Engage page, from ``v`` = its values of :data:`PAGE_PATHS` (and
    maybe more): its ``results`` is a list; also when ``results`` is null and the record has no
    ``$distinct_id`` (a page of no results written as null: as ``[]``, no profiles)."""
    return f"coalesce(json_type({v}[1]) = 'ARRAY' OR (json_type({v}[1]) = 'NULL' AND {v}[2] IS NULL), FALSE)"


_IS_PAGE = engage_page_sql()


def _engage_items_sql(records: str, order: str) -> str:
    """(line, rec_line, raw, is_page_item, f, kind): one row per bare record of ``records``
    (line, raw, malformed, is_obj, v = the values of ``["$.results"] + _RESULT_PATHS``) and one
    per result of a page (none for an empty page); ``f`` = the values of ``_RESULT_PATHS``."""
    return f"""
        WITH rec AS (
            SELECT *, CASE WHEN is_page THEN json_array_length(v[1])::BIGINT ELSE 0 END AS n
            FROM (SELECT *, {_IS_PAGE} AS is_page FROM ({records}))
        ),
        flat AS (
            -- a single pass: `before` (results of the pages above) is a running sum in file
            -- order, and rec is read once (a CTE read twice would be materialised)
            SELECT line, raw, malformed, is_obj, is_page, v,
                   sum(n) OVER ({order}ROWS UNBOUNDED PRECEDING) - n AS before,
                   unnest(CASE WHEN is_page THEN json_extract(v[1], '$[*]') ELSE [NULL::JSON] END) AS value,
                   unnest(CASE WHEN is_page THEN range(1, n + 1) ELSE [0] END) AS k
            FROM rec
        )
        SELECT CASE WHEN is_page THEN (before + k)::BIGINT ELSE line END AS line, line AS rec_line,
               CASE WHEN is_page THEN value::VARCHAR ELSE raw END AS raw, is_page AS is_page_item, f,
               CASE WHEN is_page THEN
                        CASE WHEN f[1] IS NOT NULL OR f[2] IS NOT NULL OR json_type(value) = 'OBJECT'
                             THEN 'result' ELSE 'not_an_object' END
                    ELSE {_bare_kind_sql('f[1]')} END AS kind
        FROM (SELECT *, CASE WHEN is_page THEN json_extract(value, {_paths_sql(_RESULT_PATHS)})
                             ELSE v[2:] END AS f
              FROM flat)"""


def _bare_kind_sql(idv: str) -> str:
    return (
        f"CASE WHEN malformed THEN 'malformed_json' WHEN {idv} IS NOT NULL THEN 'result' "
        f"WHEN NOT is_obj THEN 'not_an_object' ELSE 'unrecognised' END"
    )


def _engage_columns_sql(items: str, doc_no: str, keep: str = "") -> str:
    """The stage columns (see :func:`stage_engage_results`) of ``items`` (line, rec_line, raw,
    is_page_item, f, kind [, ``keep`` columns passed through]). A bare record's JSON-float
    ``$mparticle_user_id`` or ``$distinct_id`` takes its exact token from its own text
    (:func:`inline_float_token_sql`); a page's are recovered from the document
    (:func:`recover_engage_float_tokens`)."""
    fields = "f[1] AS idv, f[2] AS pv, f[3] AS m, f[4] AS e, f[5] AS ph, f[6] AS cr, f[7] AS ls"
    mp_text = "CASE WHEN json_type(m) <> 'NULL' THEN json_extract_string(m, '$') END"
    return f"""
        SELECT line, doc_no, reason, kind, CASE WHEN reason IS NOT NULL OR flat THEN raw END AS raw, flat,
               CASE WHEN id_type = 'DOUBLE' AND NOT is_page_item
                    THEN {inline_float_token_sql('raw', 'distinct_id', '$distinct_id')}
                    ELSE distinct_id END AS distinct_id, id_type,
               CASE WHEN props_type = 'OBJECT' THEN pv ELSE '{{}}'::JSON END AS properties,
               coalesce(props_type = 'OBJECT' AND pv::VARCHAR <> '{{}}', FALSE) AS has_properties,
               mp_type,
               CASE WHEN mp_type = 'DOUBLE' AND NOT is_page_item THEN {inline_float_token_sql('raw', 'mp_text')}
                    ELSE mp_text END AS mparticle_user_id,
               -- strings as is; other types as JSON text; dates: ISO strings or epoch numbers
               json_extract_string(e, '$') AS email, json_extract_string(ph, '$') AS phone,
               {profile_time_sql('cr')} AS created, {profile_time_sql('ls')} AS last_seen {keep}
        FROM (
        SELECT *, CASE WHEN reason IS NULL AND props_type IS NULL THEN {engage_flattened_sql('own_keys')} ELSE FALSE END AS flat
        FROM (
            SELECT *, CASE WHEN kind IN ('malformed_json', 'not_an_object') THEN kind
                           WHEN distinct_id IS NOT NULL THEN
                               CASE WHEN props_type IS NOT NULL AND props_type NOT IN ('OBJECT', 'NULL')
                                    THEN 'bad_properties'
                                    WHEN props_type IS NULL AND {engage_update_sql('own_keys')} THEN 'profile_update' END
                           WHEN id_type IN ('BOOLEAN', 'OBJECT', 'ARRAY') THEN 'bad_distinct_id'
                           ELSE 'missing_distinct_id' END AS reason
            FROM (
                SELECT *, {id_text_sql('idv')} AS distinct_id, json_type(idv) AS id_type,
                       {container_type_sql('pv')} AS props_type, json_type(m) AS mp_type, {mp_text} AS mp_text,
                       {_own_keys_sql('idv', 'pv', 'raw')} AS own_keys
                FROM (SELECT *, {doc_no}::BIGINT AS doc_no, {fields} FROM ({items}))
            )
        ))"""


# the fields of a bare Engage result the fast path reads (``results`` / ``status``: only to decline
# a page, or a record with a status, which the exact path reads as a page)
_FAST_ENGAGE_COLUMNS = {"$distinct_id": "JSON", "$properties": "JSON", "results": "JSON", "status": "JSON"}
_FAST_PROPERTY_PATHS = ['$."$mparticle_user_id"', '$."$email"', '$."$phone"', '$."$created"', '$."$last_seen"']


def _fast_engage_sql(ctx: FileContext, flattened: bool = False) -> str:
    """The typed fast path's rows of a JSONL file of bare Engage results (one per line): the
    columns of :func:`_engage_columns_sql` for a good result, and ``ok``: FALSE for a record the
    fast path cannot take exactly (a page, a ``status`` key, no usable ``$distinct_id``, a
    ``$distinct_id`` that is not a string or an integer, ``$properties`` neither an object nor
    null, a JSON-float ``$mparticle_user_id`` whose token the exact path reads back from the
    line). ``$distinct_id`` is typed by the first character of its JSON text; the ``$properties``
    fields by the exact path's expressions, from one parse of the object; a canonical ISO time
    (``"2026-02-18T07:42:23"``) is read by ``strptime`` (:func:`fast.iso_utc_sql`)."""
    def ts(i: int) -> str:
        exact = profile_time_sql(f"f[{i}]")
        return fast.iso_utc_sql(f"t{i}", f"p{i}", exact)

    # a record without $properties: with `flattened`, every one goes to the exact path (a bare id,
    # or a flattened result: it tells them apart); else a bare id is taken here, and the operation
    # keys are read to leave a profile update to the exact path, which quarantines it
    columns, op = dict(_FAST_ENGAGE_COLUMNS), "FALSE"
    if not flattened:
        columns.update({o: "JSON" for o in ENGAGE_OPERATIONS})
        op = '"$properties" IS NULL AND coalesce(' + ", ".join(f'"{o}"' for o in ENGAGE_OPERATIONS) + ") IS NOT NULL"
    return f"""
        WITH leaves AS (
            SELECT "$distinct_id"::VARCHAR AS id, "$properties" AS pv,
                   results IS NOT NULL OR status IS NOT NULL AS paged, {op} AS op
            FROM {fast.read_json_sql(ctx, columns)}
        ),
        fields AS (
            SELECT *, {fast.leaf_kind_sql('id')} AS id_k, {container_type_sql('pv')} AS props_type,
                   CASE WHEN left(pv, 1) = '{{' THEN json_extract(pv, {_paths_sql(_FAST_PROPERTY_PATHS)}) END AS f
            FROM leaves
        ),
        typed AS (
            SELECT *, CASE id_k WHEN 's' THEN nullif({fast.leaf_string_sql('id')}, '') WHEN 'i' THEN id END AS distinct_id,
                   json_type(f[1]) AS mp_type, f[4]::VARCHAR AS t4, f[5]::VARCHAR AS t5,
                   {fast.iso_parsed_sql('f[4]::VARCHAR')} AS p4, {fast.iso_parsed_sql('f[5]::VARCHAR')} AS p5
            FROM fields
        )
        SELECT 0::BIGINT AS line, distinct_id,
               CASE WHEN props_type = 'OBJECT' THEN pv ELSE '{{}}'::JSON END AS properties,
               coalesce(props_type = 'OBJECT' AND pv::VARCHAR <> '{{}}', FALSE) AS has_properties,
               mp_type, CASE WHEN mp_type <> 'NULL' THEN json_extract_string(f[1], '$') END AS mparticle_user_id,
               json_extract_string(f[2], '$') AS email, json_extract_string(f[3], '$') AS phone,
               {ts(4)} AS created, {ts(5)} AS last_seen,
               FALSE AS is_page, NULL::JSON[] AS page_keys, NULL::BIGINT AS n, paged,
               coalesce(NOT paged AND NOT op AND distinct_id IS NOT NULL
                        AND (props_type IN ('OBJECT', 'NULL') OR {'FALSE' if flattened else 'props_type IS NULL'})
                        AND mp_type IS DISTINCT FROM 'DOUBLE', FALSE) AS ok
        FROM typed"""


def _stage_engage_fast(ctx: FileContext, st: str, flattened: bool = False) -> bool:
    """The typed fast path of :func:`stage_engage_results` for JSONL of bare results: table
    ``{st}_rows`` (:func:`_fast_engage_sql`, numbered by :func:`fast.numbered_rows`) and view
    ``st`` over it. The few lines the fast path cannot take exactly (a JSON-float
    ``$mparticle_user_id``, a record to quarantine) are read again from their text by the exact
    path's SQL, into ``{st}_pages`` (the name :func:`drop_engage_stage` drops), and take the
    place of their fast rows. The whole file goes to the exact path (False, nothing left behind)
    when the rows are not one per line, a line is a page or carries a ``status``, or more than
    100 lines and a tenth of the file need the exact path."""
    eng = ctx.engine
    rows, fix = f"{st}_rows", f"{st}_pages"
    if str(eng.query_rows("SELECT current_setting('TimeZone')")[0][0]) != "UTC":
        fast.declined(ctx, rows, "the session time zone is not UTC")
        return False
    line = fast.accepted(ctx, rows, _fast_engage_sql(ctx, flattened), rejected="paged", why="a page or a status key", take=False)
    if line is None:
        return False
    n, n_bad = eng.query_rows(f"SELECT count(*), count(*) FILTER (WHERE NOT ok) FROM {rows}")[0]
    if n_bad > 100 and n_bad * 10 > n:
        fast.declined(ctx, rows, "many records the typed read cannot take")
        return False
    cols = "distinct_id, properties, has_properties, mp_type, mparticle_user_id, email, phone, created, last_seen"
    view = (f"SELECT {line} AS line, {line} AS doc_no, NULL::VARCHAR AS reason, 'result' AS kind, "
            f"NULL::VARCHAR AS raw, FALSE AS flat, {cols} FROM {rows}")
    if n_bad:
        # those lines by the exact path's SQL (as JSONL is read there: one record per line, a
        # float's token from the line's text)
        paths = ("$.results",) + _RESULT_PATHS + ("$.as_of", "$.filter_by_cohort", "$.status", "$.error")
        lines = f"SELECT line, raw FROM ({ctx.lines_sql()}) WHERE line IN (SELECT {line} FROM {rows} WHERE NOT ok)"
        records = (f"SELECT *, {_IS_PAGE} AS is_page "
                   f"FROM ({parsed_lines_sql(lines, paths)})")
        items = (f"SELECT line, line AS rec_line, raw, FALSE AS is_page_item, v[2:] AS f, "
                 f"{_bare_kind_sql('v[2]')} AS kind, is_page, v[11] AS status_json FROM ({records})")
        eng.execute(f"CREATE OR REPLACE TEMP TABLE {fix} AS "
                    + _engage_columns_sql(items, "rec_line", ", is_page, status_json"))
        if eng.query_rows(f"SELECT 1 FROM {fix} WHERE is_page OR status_json IS NOT NULL LIMIT 1"):
            eng.execute(f"DROP TABLE {fix}")
            fast.declined(ctx, rows, "a page or a status key")
            return False
        view += f" WHERE ok UNION ALL SELECT line, doc_no, reason, kind, raw, flat, {cols} FROM {fix}"
    eng.execute(f"CREATE OR REPLACE TEMP VIEW {st} AS {view}")
    _check_engage_stage(ctx, st)
    fast.taken(ctx, f"{n_bad:,} line(s) by the exact path" if n_bad else "")
    return True


def stage_engage_results(ctx: FileContext, st: str, flattened: bool = False) -> str:
    """Create temp table (or view) ``st`` with one row per Engage result of the file, parsing each
    record once: (line, doc_no, reason, kind, raw, flat, distinct_id, properties, has_properties,
    mp_type, mparticle_user_id, email, phone, created, last_seen). Returns the layout. Drop it
    with :func:`drop_engage_stage`. ``flat``: a result without ``$properties`` whose other keys
    are its properties spread into the record (:func:`engage_flattened_sql`; its ``raw`` is kept):
    ``mixpanel-profiles`` quarantines it, a members snapshot counts its member. ``flattened``: the
    caller reads ``flat``, so the fast path leaves every record without ``$properties`` to the
    exact path, which tells a bare id from a flattened result (members, whose bare ids are
    common, keep them on the fast path: ``flat`` is FALSE there).

    Records may be Engage response pages (``{"results": [...]}``; each element is a result) or
    bare result objects (``{"$distinct_id": ..., "$properties": {...}}``). ``line`` is the record's
    line for a bare result, and the 1-based position across the file (document order, counting
    the results of pages only) for a page's result. ``raw`` is kept for rejected rows only.
    The profile columns follow :func:`upsert_profiles` (a JSON-float ``$mparticle_user_id``
    keeps its exact token from the file text).
    Raises LoadError for a page with a ``status`` other than ``"ok"``, and for a file with JSON
    objects none of which is a page or a result object.

    JSONL is parsed in parallel (:meth:`FileContext.numbered_table`): every line once, bare
    results classified on the way, into ``{st}_rows`` (pages keep their results, ``n`` = their
    number, and ``page_keys`` = [as_of, filter_by_cohort, status, error, session_id, page,
    page_size, total] JSON values); the page lines are then expanded
    into ``{st}_pages``, and ``st`` is a view over both."""
    layout = sniff_json_layout(ctx.text_path())
    paths = ("$.results",) + _RESULT_PATHS
    eng = ctx.engine
    if layout == "jsonl":
        if fast.enabled() and _stage_engage_fast(ctx, st, flattened):
            return layout
        # + the page-level keys of members pages, kept for pages:
        # page_keys = [as_of, filter_by_cohort, status, error, session_id, page, page_size, total]
        paths += ("$.as_of", "$.filter_by_cohort", "$.status", "$.error", "$.session_id", "$.page",
                  "$.page_size", "$.total")
        rows = f"{st}_rows"
        # the line number is a placeholder (0; NULL for a blank line) until the rows are numbered
        records = (
            f"SELECT *, {_IS_PAGE} AS is_page "
            f"FROM ({parsed_lines_sql(ctx.unnumbered_lines_sql(), paths)})"
        )
        items = (
            f"SELECT line, line AS rec_line, CASE WHEN NOT is_page THEN raw END AS raw, FALSE AS is_page_item, v[2:] AS f, "
            f"{_bare_kind_sql('v[2]')} AS kind, is_page, CASE WHEN is_page THEN v[1] END AS results, "
            f"CASE WHEN is_page THEN json_array_length(v[1])::BIGINT END AS n, "
            f"CASE WHEN is_page THEN v[9:16] END AS page_keys "
            f"FROM ({records})"
        )
        line = ctx.numbered_table(rows, _engage_columns_sql(items, "rec_line", ", is_page, results, n, page_keys"))
        if line is not None:
            cols = ("line, doc_no, reason, kind, raw, flat, distinct_id, properties, has_properties, mp_type, "
                    "mparticle_user_id, email, phone, created, last_seen")
            bare = (f"SELECT {line} AS line, {line} AS doc_no, * EXCLUDE (line, doc_no, is_page, results, n, page_keys, id_type) "
                    f"FROM {rows} WHERE line IS NOT NULL AND NOT is_page")
            if eng.query_rows(f"SELECT 1 FROM {rows} WHERE is_page LIMIT 1"):
                pages = f"{st}_pages"
                # `before` (results of the pages above) from the page sizes alone, then each page's
                # results are split out and parsed once each
                page_items = f"""
                    SELECT (p.before + k)::BIGINT AS line, p.line AS rec_line, value::VARCHAR AS raw,
                           TRUE AS is_page_item, f,
                           CASE WHEN f[1] IS NOT NULL OR f[2] IS NOT NULL OR json_type(value) = 'OBJECT'
                                THEN 'result' ELSE 'not_an_object' END AS kind
                    FROM (
                        SELECT *, json_extract(value, {_paths_sql(_RESULT_PATHS)}) AS f
                        FROM (SELECT line, unnest(elems) AS value, generate_subscripts(elems, 1) AS k
                              FROM (SELECT {line} AS line, json_extract(results, '$[*]') AS elems
                                    FROM {rows} WHERE is_page AND n > 0))
                    ) e
                    JOIN (SELECT {line} AS line, sum(n) OVER (ORDER BY {line} ROWS UNBOUNDED PRECEDING) - n AS before
                          FROM {rows} WHERE is_page) p ON p.line = e.line"""
                eng.execute(f"CREATE OR REPLACE TEMP TABLE {pages} AS " + _engage_columns_sql(page_items, "rec_line"))
                recover_engage_float_tokens(ctx, layout, pages)
                bare += f" UNION ALL SELECT {cols} FROM {pages}"
            eng.execute(f"CREATE OR REPLACE TEMP VIEW {st} AS SELECT {cols} FROM ({bare})")
            _check_page_status(ctx, f"SELECT {line} AS line, page_keys[3] AS status, page_keys[4] AS error "
                                    f"FROM {rows} WHERE is_page")
            _check_engage_stage(ctx, st)
            return layout
    # records of an array or documents (or JSONL numbered by row_number): one statement
    records = parsed_records_sql(ctx, layout, paths)
    order = "" if layout == "jsonl" else "ORDER BY line "  # JSONL lines arrive in order
    doc_no = "1" if layout == "array" else "rec_line"
    eng.execute(f"CREATE OR REPLACE TEMP TABLE {st} AS " + _engage_columns_sql(_engage_items_sql(records, order), doc_no))
    _check_page_status(ctx, f"SELECT line, v[1] AS status, v[2] AS error "
                            f"FROM ({parsed_records_sql(ctx, layout, ('$.status', '$.error'))})")
    _check_engage_stage(ctx, st)
    recover_engage_float_tokens(ctx, layout, st)
    return layout


def recover_engage_float_tokens(ctx: FileContext, layout: str, stage: str) -> None:
    """The exported tokens of JSON-float ``$mparticle_user_id`` and ``$distinct_id`` values of
    the Engage results staged in ``stage`` (:func:`recover_float_tokens`)."""
    recover_float_tokens(ctx, layout, stage, key="line", doc_no="doc_no", ord_="line",
                         typ="mp_type", text="mparticle_user_id")
    recover_float_tokens(ctx, layout, stage, key="line", doc_no="doc_no", ord_="line",
                         typ="id_type", text="distinct_id", json_key="$distinct_id")


def drop_engage_stage(ctx: FileContext, st: str) -> None:
    """Drop what :func:`stage_engage_results` created (or a table ``st``)."""
    eng = ctx.engine
    if eng.query_rows("SELECT 1 FROM duckdb_views() WHERE view_name = ? AND temporary", [st]):
        eng.execute(f"DROP VIEW {st}")
        eng.execute(f"DROP TABLE IF EXISTS {st}_pages")
        eng.execute(f"DROP TABLE IF EXISTS {st}_rows")
    else:
        eng.execute(f"DROP TABLE IF EXISTS {st}")


def has_engage_page(ctx: FileContext) -> bool:
    """Whether the file holds an Engage response page (:func:`engage_page_sql`): a file of pages
    whose results are all empty (the last page when the total is a multiple of ``page_size``, a
    project or cohort without profiles) is a valid answer with no records, not an empty file.
    (Read only when a file gave no records; a page whose status is not ``"ok"`` failed earlier.)"""
    if sniff_json_layout(ctx.text_path()) == "jsonl":
        records = (f"SELECT try(json_extract(raw, {PAGE_PATHS})) AS v "
                   f"FROM ({ctx.lines_sql()}) WHERE raw IS NOT NULL AND trim(raw) <> ''")
    else:
        records = f"SELECT json_extract(j, {PAGE_PATHS}) AS v FROM ({ctx.json_records_sql()})"
    return bool(ctx.engine.query_rows(f"SELECT 1 FROM ({records}) WHERE {_IS_PAGE} LIMIT 1"))


def _check_page_status(ctx: FileContext, records: str) -> None:
    """Raise LoadError for the first record of ``records`` (line, status JSON, error JSON) whose
    ``status`` is a string other than ``"ok"``, or the number 0 / ``false`` (Mixpanel's failure
    status in its numeric convention, ``{"error": "...", "status": 0}``): an Engage error response
    (usually with ``"results": []``) is not an empty cohort, it is a failed request."""
    bad = ctx.engine.query_rows(
        f"""
        SELECT line, CASE WHEN json_type(status) = 'VARCHAR' THEN json_extract_string(status, '$')
                          ELSE status::VARCHAR END,
               coalesce(json_extract_string(error, '$'), '')
        FROM ({records})
        WHERE json_type(status) = 'VARCHAR' AND lower(json_extract_string(status, '$')) <> 'ok'
           OR json_type(status) IN ('UBIGINT', 'BIGINT', 'DOUBLE') AND TRY_CAST(status::VARCHAR AS DOUBLE) = 0
           OR json_type(status) = 'BOOLEAN' AND NOT status::VARCHAR::BOOLEAN
        ORDER BY line LIMIT 1
        """
    )
    if bad:
        line, status, error = bad[0]
        raise LoadError(ctx.path, f"Engage response with status {status!r}: {error}".rstrip(": ")
                        + " (the request failed: this is not an empty result)", line=int(line))


def _check_engage_stage(ctx: FileContext, st: str) -> None:
    eng = ctx.engine
    recognised, unrecognised = eng.query_rows(
        f"SELECT count(*) FILTER (WHERE kind = 'result'), count(*) FILTER (WHERE kind = 'unrecognised') FROM {st}"
    )[0]
    if not unrecognised:
        return
    bad = eng.query_rows(
        f"""
        SELECT line, json_extract_string(raw, '$.status'), coalesce(json_extract_string(raw, '$.error'), '')
        FROM {st}
        WHERE kind = 'unrecognised' AND json_type(raw, '$.status') = 'VARCHAR'
          AND json_extract_string(raw, '$.status') <> 'ok'
        ORDER BY line LIMIT 1
        """
    )
    if bad:
        line, status, error = bad[0]
        raise LoadError(ctx.path, f"Engage response with status {status!r}: {error}".rstrip(": "), line=int(line))
    if not recognised:
        first = eng.query_rows(f"SELECT raw FROM {st} WHERE kind = 'unrecognised' ORDER BY line LIMIT 1")
        raise LoadError(
            ctx.path,
            f"unrecognised format for {ctx.kind}: expected Engage response pages "
            '({"results": [...]}) or result objects ({"$distinct_id": ..., "$properties": {...}})'
            + connector_hint(first[0][0] if first else None, ctx.kind),
        )


# --------------------------------------------------------------------------- profile upsert
def upsert_profiles(ctx: FileContext, relation: str, as_of=None) -> tuple[int, int]:
    """Upsert Mixpanel profiles from ``relation`` = (line, distinct_id, properties,
    mparticle_user_id, email, phone, created, last_seen), e.g. rows of a
    :func:`stage_engage_results` table.

    Within the relation the last row of a distinct_id (highest ``line``) wins. The rows are
    inserted; the rows they replace (same distinct_id, earlier load) are removed once per
    ``load()`` call by :class:`ProfileUpserts` (one pass, not one per file: a directory of
    thousands of Engage pages would otherwise rescan ``mp_profiles`` for every page).
    The derived columns: ``$mparticle_user_id`` (text as exported; a JSON float keeps its exact
    token), ``$email``, ``$phone``, ``$created``, ``$last_seen`` (ISO strings, UTC, or epoch
    numbers; other types → NULL). Returns (loaded, deduplicated): distinct profiles written, and rows superseded within
    the relation. Every row written is also appended to ``mp_profile_history`` with ``as_of``
    (the argument, else the load's ``as_of`` option, else NULL: the load time counts)."""
    eng = ctx.engine
    total, distinct = eng.query_rows(f"SELECT count(*), count(DISTINCT distinct_id) FROM ({relation})")[0]
    src, tmp = f"({relation})", None
    if total != distinct:  # the last row of a distinct_id wins
        tmp = f"_mp_prof_{ctx.load_id}"
        eng.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {tmp} AS
            SELECT * FROM ({relation}) QUALIFY row_number() OVER (PARTITION BY distinct_id ORDER BY line DESC) = 1
            """
        )
        src = tmp
    eng.execute(
        f"""
        INSERT INTO mp_profiles (distinct_id, mparticle_user_id, email, phone, created, last_seen,
                                 properties, load_id, source_file, line)
        SELECT distinct_id, mparticle_user_id, email, phone, created, last_seen, properties,
               ?, ?, line
        FROM {src}
        """,
        [ctx.load_id, str(ctx.path)],
    )
    # the profile history (send-time resolution): every loaded profile with its as-of time
    as_of = as_of if as_of is not None else ctx.options.get("as_of")
    eng.execute(
        f"""
        INSERT INTO mp_profile_history (distinct_id, mparticle_user_id, mparticle_user_id_type, email, last_seen,
                                        as_of, load_id, source_file, line)
        SELECT distinct_id, mparticle_user_id, mp_type, email, last_seen, CAST(? AS TIMESTAMP), ?, ?, line
        FROM {src}
        """,
        [None if as_of is None else parse_utc(as_of, "as_of").replace(tzinfo=None), ctx.load_id, str(ctx.path)],
    )
    if tmp:
        eng.execute(f"DROP TABLE {tmp}")
    return int(distinct), int(total) - int(distinct)


class ProfileUpserts:
    """Mixin for loaders calling :func:`upsert_profiles`: after the last file of a ``load()``,
    each distinct_id keeps only its row of the latest load (a later load replaces the earlier
    row), exactly as if every file had deleted the rows it replaces. Skipped when nothing can
    repeat: ``mp_profiles`` was empty and a single file wrote profiles."""

    def begin(self, engine) -> None:
        super().begin(engine)  # type: ignore[misc]
        self._profiles_before = bool(engine.query_rows("SELECT 1 FROM mp_profiles LIMIT 1"))

    def finish(self, engine, load_ids: list[int]) -> list[str] | None:
        warnings = super().finish(engine, load_ids)  # type: ignore[misc]
        ids = ", ".join(str(int(i)) for i in load_ids)
        writers = int(engine.query_rows(
            f"SELECT count(DISTINCT load_id) FROM mp_profiles WHERE load_id IN ({ids})")[0][0])
        if writers == 0 or (writers == 1 and not getattr(self, "_profiles_before", True)):
            return warnings
        engine.execute(
            f"""
            DELETE FROM mp_profiles WHERE rowid IN (
                SELECT rowid FROM mp_profiles
                WHERE distinct_id IN (SELECT distinct_id FROM mp_profiles WHERE load_id IN ({ids}))
                QUALIFY row_number() OVER (PARTITION BY distinct_id ORDER BY load_id DESC) > 1
            )
            """
        )
        return warnings


def register_cohorts(ctx: FileContext, relation: str) -> int:
    """Insert into mp_cohorts the cohorts of ``relation`` = (cohort_id, name, description,
    project_id, line) that are unknown: no row with the same name, nor with the same non-null id.
    Returns the number registered."""
    eng = ctx.engine
    before = int(eng.query_rows("SELECT count(*) FROM mp_cohorts")[0][0])
    eng.execute(
        f"""
        INSERT INTO mp_cohorts (cohort_id, name, description, count, created, is_visible,
                                project_id, load_id, source_file, line)
        SELECT cohort_id, name, description, NULL, NULL, NULL, project_id, ?, ?, line
        FROM ({relation}) r
        WHERE r.name IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM mp_cohorts c
                          WHERE c.name = r.name OR (r.cohort_id IS NOT NULL AND c.cohort_id = r.cohort_id))
        QUALIFY row_number() OVER (PARTITION BY r.name ORDER BY r.line) = 1
        """,
        [ctx.load_id, str(ctx.path)],
    )
    return int(eng.query_rows("SELECT count(*) FROM mp_cohorts")[0][0]) - before


def _spans_text(spans) -> str:
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def number_ranges(numbers) -> str:
    """Page numbers as a warning writes them, in ranges: ``0-1, 3, 5-9``."""
    spans: list[list[int]] = []
    for p in sorted(set(numbers)):
        if spans and p == spans[-1][1] + 1:
            spans[-1][1] = p
        else:
            spans.append([p, p])
    return _spans_text(spans)


def missing_ranges(seen, first: int, last: int) -> str:
    """The numbers from ``first`` to ``last`` that ``seen`` leaves out, in ranges (:func:`number_ranges`),
    without listing them one by one (a page number may be large); "" when none."""
    spans, nxt = [], first
    for p in sorted(x for x in set(seen) if first <= x <= last):
        if p > nxt:
            spans.append((nxt, p - 1))
        nxt = p + 1
    if nxt <= last:
        spans.append((nxt, last))
    return _spans_text(spans)


def layout_of(ctx: FileContext) -> str:
    return sniff_json_layout(ctx.text_path())


__all__ = [
    "id_text_sql",
    "cohort_id_sql",
    "raw_text_sql",
    "utc_timestamp_sql",
    "epoch_to_timestamp_sql",
    "event_time_warnings",
    "record_value_sql",
    "json_number_sql",
    "parse_utc",
    "parsed_lines_sql",
    "parsed_records_sql",
    "exact_id_sql",
    "float_token_re",
    "inline_float_token_sql",
    "recover_float_tokens",
    "stage_engage_results",
    "drop_engage_stage",
    "upsert_profiles",
    "ProfileUpserts",
    "register_cohorts",
    "layout_of",
    "number_ranges",
    "missing_ranges",
]
