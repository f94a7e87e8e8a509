"""Shared pieces of the warehouse-export loaders (Mixpanel Data Pipelines, mParticle Parquet
profile tables): one record relation for JSON and Parquet files alike.

A Parquet file (told by its ``PAR1`` magic bytes, not its name) is read by DuckDB's
``read_parquet``, without Hive partitioning (a file under ``year=2026/month=03/``, as
partitioned unloads write them, has only its own columns: the folder names are no columns); each row becomes a JSON object (``to_json``: integers keep their exact value,
a TIMESTAMP becomes its ISO text, a STRUCT/MAP an object, a LIST an array). A JSON file (JSONL,
an array, or documents; gzip detected by content) is read as the other loaders read JSON. The
loaders then work on one relation ``(line, raw, j)`` whatever the format: ``line`` is the JSONL
line, the record number in a JSON document, or the 1-based Parquet row; ``j`` is NULL for a
record that is not valid JSON.
"""

from __future__ import annotations

from pathlib import Path

from cohortlab.loaders.connectors import DATA as AIRBYTE_DATA, PREFIX as AIRBYTE_PREFIX
from cohortlab.loaders.base import FileContext
from cohortlab.pipeline import sql_ident

FILE_ROW = "file_row_number"


def is_parquet(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"PAR1"


def parquet_columns(ctx: FileContext) -> list[tuple[str, str]]:
    """``(name, TYPE)`` of a Parquet file's own columns (no Hive partitioning: a file under
    ``year=2026/month=03/`` has no columns ``year``, ``month``), types in upper case."""
    return [(r[0], str(r[1]).upper()) for r in ctx.engine.query_rows(
        f"DESCRIBE SELECT * FROM read_parquet({ctx.file_sql}, hive_partitioning=false)")]


def records_sql(ctx: FileContext, lower_names: bool = False) -> str:
    """SELECT (line BIGINT, raw VARCHAR, j JSON) — one row per record of a JSON or Parquet file.

    ``lower_names``: a Parquet file's column names, and a JSON record's top-level keys, are read
    in lower case (``EVENT_NAME`` -> ``event_name``), unless two of them would then be one (the
    file's columns; the record's keys): a warehouse that folds unquoted names to upper case
    (Snowflake) unloads the Data Pipelines columns so, to Parquet and to JSON
    (``OBJECT_CONSTRUCT(*)``) alike. Keys inside a value (``properties``) keep their case. The
    relation then has two more columns: ``src`` (VARCHAR), the record's text as written, where a
    JSON float's exact token is read back (a folded record's ``j`` is re-serialised), and
    ``folded`` (BOOLEAN), whether its keys were lowered (``src`` then spells them in another
    case: :func:`cohortlab.loaders.mixpanel_common.inline_float_token_sql`'s ``any_case``)."""
    if is_parquet(ctx.path):
        cols = parquet_columns(ctx)
        names = [c for c, _ in cols]
        if lower_names and len({c.lower() for c in names}) == len(names):
            names = [c.lower() for c in names]
        # the row as a JSON object of its own columns (no json_remove of the row number: it
        # re-serialises every number, and a decimal's token through a double)
        row = "struct_pack(" + ", ".join(
            f"{sql_ident(name)} := {_column_json(f't.{sql_ident(c)}', typ)}"
            for name, (c, typ) in zip(names, cols)) + ")"
        extra = ", j::VARCHAR AS src, FALSE AS folded" if lower_names else ""
        return (
            f"SELECT line, j::VARCHAR AS raw, j{extra} FROM ("
            f"SELECT t.{FILE_ROW} + 1 AS line, to_json({row}) AS j "
            f"FROM read_parquet({ctx.file_sql}, file_row_number=true, hive_partitioning=false) t)"
        )
    if not lower_names:
        return ctx.json_records_sql()
    return lower_keys_sql(airbyte_unwrapped_sql(ctx.json_records_sql()))


def airbyte_unwrapped_sql(records: str) -> str:
    """SELECT (line, raw, j, src) of ``records`` (line, raw, j): a record in Airbyte's envelope (an
    object holding ``_airbyte_data``, in any case, whose keys all start with ``_airbyte_``) is the
    object its ``_airbyte_data`` holds (an object, or JSON text of one); any other record, an
    envelope whose data is no object included, is ``j`` as it was. ``line`` and ``raw`` stay the
    envelope's (a quarantined record shows it whole). ``src``: the text where the record's JSON
    floats are written as exported (:func:`cohortlab.loaders.mixpanel_common.inline_float_token_sql`):
    the envelope's own text, which holds the record as written, or the data's text when it is a
    JSON string (there the record's quotes are escaped). Records without the text
    ``_airbyte_data`` (in lower or upper case), all but such files, are not parsed again."""
    is_envelope = (
        f"(contains(raw, '{AIRBYTE_DATA}') OR contains(raw, '{AIRBYTE_DATA.upper()}')) AND json_type(j) = 'OBJECT' "
        f"AND list_bool_and(list_transform(json_keys(j), lambda k: starts_with(lower(k), '{AIRBYTE_PREFIX}')))")
    data = f"coalesce(json_extract(j, '$.{AIRBYTE_DATA}'), json_extract(j, '$.{AIRBYTE_DATA.upper()}'))"
    return (
        f"SELECT line, raw, coalesce(inner_j, j) AS j, "
        f"CASE WHEN inner_j IS NOT NULL AND inner_text IS NOT NULL THEN inner_text ELSE j::VARCHAR END AS src "
        f"FROM (SELECT *, {json_object_sql('d')} AS inner_j, "
        f"CASE WHEN json_type(d) = 'VARCHAR' THEN json_extract_string(d, '$') END AS inner_text "
        f"FROM (SELECT *, CASE WHEN {is_envelope} THEN {data} END AS d FROM ({records})))"
    )


def lower_keys_sql(records: str) -> str:
    """SELECT (line, raw, j, src, folded) of ``records`` (line, raw, j, src): ``j`` with its
    top-level keys in lower case when one of them is not and no two would then be one (as a
    Parquet file's columns are read, :func:`records_sql`); the values and the order of the keys
    stay (a key given twice stays twice, the first read, as in any record). A record whose keys are
    all in lower case, or which is no object, is ``j`` as it was. ``src``: the record's text as
    written (:func:`airbyte_unwrapped_sql`)."""
    lowered = "list_transform(keys, lambda k: lower(k))"
    # (the names compared only for a record with a key to lower: most files have none)
    fold = (f"CASE WHEN list_bool_or(list_transform(keys, lambda k: k <> lower(k))) "
            f"THEN len(list_distinct(keys)) = len(list_distinct({lowered})) ELSE FALSE END")
    rebuilt = ("('{' || array_to_string(list_transform(list_zip(keys, json_extract(j, '$.*')), "
               "lambda x: to_json(lower(x[1]))::VARCHAR || ':' || x[2]::VARCHAR), ',') || '}')::JSON")
    return (
        f"SELECT line, raw, CASE WHEN folded THEN {rebuilt} ELSE j END AS j, src, folded "
        f"FROM (SELECT *, {fold} AS folded "
        f"FROM (SELECT *, CASE WHEN json_type(j) = 'OBJECT' THEN json_keys(j) END AS keys FROM ({records})))"
    )


def is_scaled_decimal(typ: str) -> bool:
    """A DECIMAL type with a scale (BigQuery's NUMERIC is DECIMAL(38,9)): exact, not a float."""
    return typ.startswith("DECIMAL(") and not typ.endswith(",0)")


def whole_decimal_json(col: str, otherwise: str) -> str:
    """SQL JSON of a scaled DECIMAL ``col`` (:func:`is_scaled_decimal`): a whole value as its
    integer (``9080350317581165123.000000000`` is the MPID 9080350317581165123), never through a
    double; ``otherwise`` (SQL JSON) for a value with a fraction."""
    return f"CASE WHEN {col} = trunc({col}) THEN CAST(CAST({col} AS HUGEINT) AS VARCHAR)::JSON ELSE {otherwise} END"


def _column_json(col: str, typ: str) -> str:
    """A Parquet column's value for ``to_json``: as it is, except a scaled DECIMAL: a whole value
    as its integer, any other as its exact decimal text (:func:`whole_decimal_json`)."""
    return whole_decimal_json(col, f"CAST({col} AS VARCHAR)::JSON") if is_scaled_decimal(typ) else col


def json_object_sql(v: str) -> str:
    """SQL JSON: ``v`` when it is a JSON object; the JSON object a JSON *string* ``v`` holds (a
    warehouse JSON column exported as text); else NULL."""
    return (
        f"CASE json_type({v}) WHEN 'OBJECT' THEN {v} "
        f"WHEN 'VARCHAR' THEN CASE WHEN json_type(TRY_CAST(json_extract_string({v}, '$') AS JSON)) = 'OBJECT' "
        f"THEN TRY_CAST(json_extract_string({v}, '$') AS JSON) END END"
    )


def present_sql(v: str) -> str:
    """SQL BOOLEAN: the JSON value ``v`` is present and not JSON null."""
    return f"({v} IS NOT NULL AND json_type({v}) <> 'NULL')"
