"""Arrow <-> pandas for the Spark engine, exactly as DuckDB's ``.df()`` does it: integers as pandas
nullable integers (never float, also inside structs and lists), timestamps naive UTC. No PySpark
import, so it is tested without a JVM or PySpark."""

from __future__ import annotations

import datetime as _dt
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def _naive_utc(t: pa.Table) -> pa.Table:
    """Timestamps with a time zone -> naive UTC (cohortlab's convention, as DuckDB returns)."""
    cols, changed = [], False
    for i, field in enumerate(t.schema):
        col = t.column(i)
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            col = pc.cast(col, pa.timestamp(field.type.unit))
            changed = True
        cols.append(col)
    if not changed:
        return t
    return pa.Table.from_arrays(cols, names=t.column_names)


_INT_DTYPES = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
}


def arrow_to_pandas(t: pa.Table) -> pd.DataFrame:
    """Arrow -> pandas as DuckDB's ``.df()`` does it: integer columns as numpy ``int64``/``int32``,
    or pandas' nullable ``Int64``/``Int32`` when they hold a NULL (exact, never float), a boolean
    column with a NULL as nullable ``boolean``, timestamps naive UTC."""
    t = _naive_utc(t)
    df = t.to_pandas(types_mapper=_INT_DTYPES.get)
    for i, field in enumerate(t.schema):
        # pyarrow converts a struct's/list's fields through numpy, so an int64 field with a NULL
        # becomes float (9080350317581165123 -> 9.080350317581166e+18): build them from Python values
        if pa.types.is_nested(field.type):
            df.isetitem(i, pd.Series(t.column(i).to_pylist(), index=df.index, dtype=object))
        # a BOOLEAN with a NULL: pandas' nullable ``boolean``, as DuckDB's .df() gives it (pyarrow
        # gives object, where ``~col`` fails on None; ``active_after_cutoff`` with the cutoff off)
        elif pa.types.is_boolean(field.type) and t.column(i).null_count:
            df.isetitem(i, pd.Series(t.column(i).to_pylist(), index=df.index, dtype="boolean"))
        # an integer column without a NULL: numpy's int64/int32, as DuckDB's .df() gives it (Int64 is
        # for a column with a NULL); the frames of both engines then compare equal, dtypes too.
        # By position: two result columns of one name are two columns
        elif field.type in _INT_DTYPES and not t.column(i).null_count:
            df.isetitem(i, df.iloc[:, i].to_numpy(dtype=field.type.to_pandas_dtype()))
    return df


def pandas_to_arrow(df: pd.DataFrame) -> pa.Table:
    """pandas -> Arrow with an explicit type per column (exact integers)."""
    fields, arrays = [], []
    for name in df.columns:
        s = df[name]
        typ = _arrow_type(str(name), s)
        if pa.types.is_timestamp(typ) and getattr(s.dtype, "tz", None) is not None:
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        if s.dtype == object:
            arr = pa.array([None if _isnull(v) else v for v in s.tolist()], type=typ)
        else:
            arr = pa.array(s, type=typ, from_pandas=True)
        fields.append(pa.field(str(name), typ))
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _isnull(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v) or v is pd.NaT or v is pd.NA


def _arrow_type(name: str, s: pd.Series) -> pa.DataType:
    dt = s.dtype
    if pd.api.types.is_bool_dtype(dt):
        return pa.bool_()
    if pd.api.types.is_integer_dtype(dt):
        return pa.int32() if str(dt).lower() in ("int32", "int16", "int8") else pa.int64()
    if pd.api.types.is_float_dtype(dt):
        return pa.float64()
    if pd.api.types.is_datetime64_any_dtype(dt):
        return pa.timestamp("us")
    if isinstance(dt, pd.StringDtype) or pd.api.types.is_string_dtype(dt) and dt != object:
        return pa.string()
    values = [v for v in s.tolist() if not _isnull(v)]
    if all(isinstance(v, str) for v in values):
        return pa.string()
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return pa.int64()
    if all(isinstance(v, bool) for v in values):
        return pa.bool_()
    if all(isinstance(v, (_dt.datetime, pd.Timestamp)) for v in values):
        return pa.timestamp("us")
    raise TypeError(
        f"column {name!r}: cannot derive a Spark type from object values; pass schema= explicitly"
    )
