"""Order-insensitive, exact comparison of query results from two engines."""

from __future__ import annotations

import datetime as dt
import decimal
import math
from typing import Any

import numpy as np
import pandas as pd


def canon_value(v: Any) -> Any:
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, decimal.Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return None
        return round(float(v), 9)
    if isinstance(v, (pd.Timestamp, dt.datetime)):
        ts = pd.Timestamp(v)
        if ts.tzinfo is not None:
            ts = ts.tz_convert("UTC").tz_localize(None)
        return ts.to_pydatetime()
    if isinstance(v, np.datetime64):
        return canon_value(pd.Timestamp(v))
    if isinstance(v, (pd.Timedelta, dt.timedelta)):
        return pd.Timedelta(v).to_pytimedelta()
    if isinstance(v, (list, tuple, np.ndarray)):
        return tuple(canon_value(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, canon_value(x)) for k, x in v.items()))
    return v


def canon_rows(df: pd.DataFrame) -> list[tuple]:
    rows = [tuple(canon_value(v) for v in r) for r in df.itertuples(index=False, name=None)]
    return sorted(rows, key=repr)


def int_columns(df: pd.DataFrame) -> set[str]:
    return {str(c) for c in df.columns if pd.api.types.is_integer_dtype(df[c].dtype)}


def float_columns(df: pd.DataFrame) -> set[str]:
    return {str(c) for c in df.columns if pd.api.types.is_float_dtype(df[c].dtype)}


def diff(expected: pd.DataFrame, actual: pd.DataFrame, *, limit: int = 8) -> str | None:
    """None when both frames hold the same rows (any order), else a short explanation."""
    if [str(c) for c in expected.columns] != [str(c) for c in actual.columns]:
        return f"columns differ: {list(expected.columns)} vs {list(actual.columns)}"
    lost = int_columns(expected) & float_columns(actual)
    if lost:
        return f"integer columns came back as float: {sorted(lost)}"
    a, b = canon_rows(expected), canon_rows(actual)
    if a == b:
        return None
    sa, sb = set(a), set(b)
    only_a = [r for r in a if r not in sb][:limit]
    only_b = [r for r in b if r not in sa][:limit]
    return (
        f"{len(a)} vs {len(b)} rows; columns {list(expected.columns)}\n"
        f"  only in DuckDB: {only_a}\n  only in Spark:  {only_b}"
    )
