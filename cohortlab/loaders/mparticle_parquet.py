"""mParticle profile tables saved as Parquet (a warehouse table of profiles, e.g. an export of a
Profile API snapshot or a profile view) → ``mpa_profiles``, ``mpa_identities``,
``mpa_attributes``, ``mpa_audiences`` (kind ``mparticle-parquet``).

One row per profile. Columns (names matched case-insensitively):

* the MPID: ``mpid`` (else ``mparticle_user_id``, ``mparticle_id``; option ``mpid_column``).
  An integer column is exact (a DECIMAL too: a whole value is that integer); a text column is
  validated as int64; a floating-point column (an MPID that went through a double) is never an
  MPID: its rows are quarantined ``invalid_mpid``.
* Profile API columns, read exactly as the ``mparticle-profiles`` loader reads the JSON fields:
  ``user_identities``, ``device_identities`` (a list of ``{type, value}`` or a map
  ``{type: value}``), ``user_attributes`` (a map/struct, or JSON text), ``audience_memberships``,
  ``created_timestamp_ms``, ``last_stored_timestamp_ms`` (epoch ms, or a TIMESTAMP column),
  ``is_opted_out``, ``environment``.
* otherwise, as for ``mparticle-csv``: columns named by identity type (``customer_id``, ``email``,
  ``other_id_2``, ``ios_idfv``, ``android_uuid`` …; any known spelling) are identities, and, when
  there is no ``user_attributes`` column, every other column is a user attribute (NULL = absent),
  named without the spaces around it. A column repeating an earlier one (the same identity type or
  attribute name once normalised, also in another case: ``email``, ``Email``, which DuckDB reads
  as ``Email_1``) is ignored with a warning, as ``mparticle-csv`` does (``_mparticle.profile_columns``).

Rows are converted to Profile API records in SQL and go through the ``mparticle-profiles``
staging: the same quarantine reasons, the same snapshot semantics (a later snapshot replaces
every row of the same MPID; within a file the last row of an MPID wins). ``source`` = ``parquet``.
"""

from __future__ import annotations

import re
from typing import Any

import dataclasses

from cohortlab.loaders._mparticle import Temp, profile_columns, repeated_columns_warning, stage_sql
from cohortlab.loaders._warehouse import (
    FILE_ROW, is_parquet, is_scaled_decimal, parquet_columns, records_sql, whole_decimal_json,
)
from cohortlab.errors import LoadError
from cohortlab.loaders.base import FileContext, pop_as_of, sql_str
from cohortlab.loaders.mparticle_profiles import _CHECKS, _CONTAINERS, _SCALARS, MParticleProfilesLoader

MPID_NAMES = ("mpid", "mparticle_user_id", "mparticle_id")
PROFILE_COLUMNS = ("user_identities", "device_identities", "user_attributes", "audience_memberships",
                   "created_timestamp_ms", "last_stored_timestamp_ms", "is_opted_out", "environment")
_TIME_COLUMNS = ("created_timestamp_ms", "last_stored_timestamp_ms")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class MParticleParquetLoader(MParticleProfilesLoader):
    kind = "mparticle-parquet"
    description = "a Parquet table of mParticle profiles"
    source = "parquet"

    def validate_options(self, options: dict[str, Any]) -> dict[str, Any]:
        opts = dict(options)
        col = opts.pop("mpid_column", None)
        as_of = pop_as_of(opts, self.kind)
        if opts:
            raise ValueError(f"{self.kind}: unknown option(s) {sorted(opts)}; known: mpid_column, as_of")
        return {**({"mpid_column": str(col).strip()} if col not in (None, "") else {}), **as_of}

    def _stage(self, ctx: FileContext, tmp: Temp) -> tuple[str, list[str], list[str]]:
        if not is_parquet(ctx.path):
            raise LoadError(ctx.path, "not a Parquet file (no PAR1 header): mparticle-parquet reads Parquet; "
                                      "use mparticle-profiles for JSON or mparticle-csv for CSV")
        types = dict(parquet_columns(ctx))
        lower = {name.lower(): name for name in types}
        want = ctx.options.get("mpid_column")
        mpid = (next((n for n in types if n == want), None) or lower.get(want.lower())) if want else \
            next((lower[n] for n in MPID_NAMES if n in lower), None)
        if mpid is None:
            raise LoadError(ctx.path, f"no MPID column ({want or ' / '.join(MPID_NAMES)}; option mpid_column); "
                                      f"columns found: {', '.join(types)}")
        fields: list[str] = [sql_str("mpid"), _mpid_json(mpid, types[mpid])]
        profile_cols = {lower[c]: c for c in PROFILE_COLUMNS if c in lower}
        for real, key in profile_cols.items():
            fields += [sql_str(key), _value_json(real, types[real], key)]
        # identity and attribute columns as mparticle-csv reads its header (profile_columns), by
        # the names the file gives (DuckDB reads a column whose name differs from an earlier one
        # only in case as `Name_1`, and the SQL reads it by that name): attribute names without
        # the spaces around them, in their case (`Power Users` and `power users` are two
        # attributes), and a column repeating an earlier one's identity type or attribute name
        # ignored with a warning
        read = list(types)
        real = _file_column_names(ctx, read)
        ids, attr_cols, ignored = profile_columns(
            real, real[read.index(mpid)], fold_case=True, skip={read.index(n) for n in profile_cols})
        # (identity or attribute columns beside a Profile API column of theirs are not read at all)
        unread = {k for k, col in (("user", "user_identities"), ("device", "device_identities"),
                                   (None, "user_attributes")) if col in profile_cols.values()}
        warnings = repeated_columns_warning(ctx, [x for x in ignored if x[2] not in unread], "file's schema")
        users = [(read[i], t) for i, _, kind, t in ids if kind == "user"]
        devices = [(read[i], t) for i, _, kind, t in ids if kind == "device"]
        attrs = [(read[i], name) for i, _, name in attr_cols]
        if users and "user_identities" not in profile_cols.values():
            fields += [sql_str("user_identities"), _map_json([(t, f"nullif({_q(n)}::VARCHAR, '')") for n, t in users])]
        if devices and "device_identities" not in profile_cols.values():
            fields += [sql_str("device_identities"), _map_json([(t, f"nullif({_q(n)}::VARCHAR, '')") for n, t in devices])]
        columns = []  # attribute columns: the file carries them also where no row has a value
        if attrs and "user_attributes" not in profile_cols.values():
            fields += [sql_str("user_attributes"), _map_json([(name, _q(n)) for n, name in attrs])]
            columns = [name for _, name in attrs]
        records = (
            f"SELECT {FILE_ROW} + 1 AS line, json_object({', '.join(fields)}) AS j "
            f"FROM read_parquet({ctx.file_sql}, file_row_number=true, hive_partitioning=false)"
        )
        return tmp.create("stage", stage_sql(records, _SCALARS, _CONTAINERS, _CHECKS)), warnings, columns

    def load_file(self, ctx: FileContext):
        # quarantined rows read their raw text back through ctx.json_records_sql(): the Parquet rows
        return super().load_file(_ParquetContext(**{f.name: getattr(ctx, f.name) for f in dataclasses.fields(ctx)}))


class _ParquetContext(FileContext):
    def json_records_sql(self) -> str:
        return records_sql(self)


def _file_column_names(ctx: FileContext, read: list[str]) -> list[str]:
    """The top-level column names as the file's schema writes them (``parquet_schema``), in the
    order ``read_parquet`` gives ``read`` (its names: a name differing from an earlier one only
    in case comes back renamed, ``Email`` as ``Email_1``); ``read`` itself if they do not match."""
    rows = ctx.engine.query_rows(f"SELECT name, num_children FROM parquet_schema({ctx.file_sql})")
    names, i = [], 1  # rows[0] is the schema's root; a nested column's children follow it

    def skip(j: int) -> int:
        n = rows[j][1] or 0
        j += 1
        for _ in range(n):
            j = skip(j)
        return j

    while i < len(rows):
        names.append(rows[i][0])
        i = skip(i)
    ok = len(names) == len(read) and all(a == b or re.fullmatch(re.escape(a) + r"_[0-9]+", b)
                                         for a, b in zip(names, read))
    return names if ok else read


def _mpid_json(col: str, typ: str = "") -> str:
    """The MPID as JSON: integers exact, text as a JSON string (validated later), a DECIMAL with a
    scale (BigQuery's NUMERIC, DECIMAL(38,9): exact, not a float) whose value is whole as that
    integer, anything else (a float) as its JSON number text, which is not an MPID."""
    c = _q(col)
    return whole_decimal_json(c, f"to_json({c})") if is_scaled_decimal(typ) else f"to_json({c})"


def _value_json(col: str, typ: str, key: str) -> str:
    c = _q(col)
    if key in _TIME_COLUMNS and typ.startswith("TIMESTAMP"):
        return f"to_json(epoch_ms({c}::TIMESTAMP))"
    if typ in ("VARCHAR", "JSON") and key not in ("environment", *_TIME_COLUMNS, "is_opted_out"):
        # JSON text of a nested field; text that is not JSON stays a string (and is quarantined
        # by the field's check, e.g. invalid_user_attributes)
        return f"coalesce(TRY_CAST({c} AS JSON), to_json({c}))"
    return f"to_json({c})"


def _map_json(pairs: list[tuple[str, str]]) -> str:
    """A JSON object of the non-null ``(key, SQL value)`` pairs."""
    entries = ", ".join(f"struct_pack(k := {sql_str(k)}, v := to_json({v}))" for k, v in pairs)
    return (f"to_json(map_from_entries(list_filter([{entries}], "
            f"lambda e: e.v IS NOT NULL AND e.v::VARCHAR <> 'null')))")


__all__ = ["MParticleParquetLoader"]
