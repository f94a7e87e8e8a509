"""Time and duration values as users and exports write them, in one place.

cohortlab keeps time in UTC everywhere (docs/rules.md#time). The canonical tables store naive timestamps meaning UTC;
the Python side works with aware UTC datetimes. A naive value given by a user means UTC, an
aware one is converted.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

from cohortlab.errors import SettingsError

# The range a TIMESTAMP column (and Python's datetime) can hold; anything outside is refused.
MIN_TIME = datetime(1, 1, 1, tzinfo=timezone.utc)
MAX_TIME = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)

_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
_SHORT_DURATION = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*(?:ms|w|d|h|m|s)\s*)+$")
_SHORT_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|w|d|h|m|s)")


# ----------------------------------------------------------------------------- durations
def parse_duration(value: Any) -> Any:
    """``"15m"``/``"3d"``/``"1h30m"`` -> timedelta; other values are left to pydantic
    (ISO-8601 strings, numbers of seconds, timedelta)."""
    if isinstance(value, str) and _SHORT_DURATION.match(value):
        return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in _SHORT_PART.findall(value)))
    if isinstance(value, str) and re.fullmatch(r"\s*\d+(?:\.\d+)?\s*", value):
        return timedelta(seconds=float(value))
    return value


def format_duration(td: timedelta) -> str:
    """Shortest ``"3d"``/``"15m"``/``"1h30m"`` form (exact, round-trips through parse_duration)."""
    us = round(td / timedelta(microseconds=1))
    if us <= 0 or us % 1000:
        return f"{td.total_seconds()}s" if us > 0 else "0s"
    ms = us // 1000
    parts = []
    for unit, size in (("d", 86400000), ("h", 3600000), ("m", 60000), ("s", 1000), ("ms", 1)):
        n, ms = divmod(ms, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts)


# ----------------------------------------------------------------------------- instants
def to_utc(value: datetime | None) -> datetime | None:
    """Aware UTC datetime (naive means UTC). pandas' NaT (a datetime to Python) is refused."""
    if value is None:
        return None
    if value != value:
        raise ValueError("not a time: NaT (a missing time)")
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def naive_utc(value: datetime | None) -> datetime | None:
    """Naive datetime meaning UTC (how the canonical tables store time)."""
    v = to_utc(value)
    return None if v is None else v.replace(tzinfo=None)


def from_epoch(value: float, what: str = "time") -> datetime:
    """Epoch seconds, or milliseconds when above 1e11 (as Mixpanel exports write them) -> aware UTC."""
    v = float(value)
    if not math.isfinite(v):
        raise SettingsError(f"{what}: {value!r} is not a finite epoch time")
    secs = v / 1000 if abs(v) > 1e11 else v
    if not MIN_TIME.timestamp() <= secs <= MAX_TIME.timestamp():
        raise SettingsError(f"{what}: epoch {value!r} is outside the years 1-9999")
    return datetime.fromtimestamp(secs, tz=timezone.utc)


_BASIC_DATE = re.compile(r"[0-9]{8}")


def basic_date(text: str) -> datetime | None:
    """The day ``text`` names when it is an ISO-8601 basic date (``20260301``: eight digits that
    form a date), at 00:00 UTC; else None. Where a time may also be given as epoch seconds, such
    text is the date, not the second 20,260,301 after 1970 (August 1970)."""
    if not _BASIC_DATE.fullmatch(text):
        return None
    try:
        return datetime.strptime(text, "%Y%m%d").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


BASIC_DATE_SQL = ("CASE WHEN regexp_full_match({t}, '[0-9]{{8}}') "
                  "THEN TRY_STRPTIME({t}, '%Y%m%d') END")  # SQL twin of basic_date: a TIMESTAMP or NULL


_SPACED_ZONE = re.compile(r"(?<=\d)\s+([+-]\d{2}(?::?\d{2})?|UTC)$", re.IGNORECASE)


def parse_time(value: Any, what: str = "time", *, epoch: bool = False) -> datetime:
    """A time as a user or an export gives it -> aware UTC datetime.

    Accepts ISO-8601 text (``2026-03-01``, ``2026-03-01T12:00:00Z``, an offset is honoured, none
    means UTC; also after a space, or ``UTC`` by name, as warehouses write it: ``2026-03-01
    00:00:00 UTC``, ``2026-03-01 00:00:00.000 -0800``), a ``datetime``/``date``/pandas ``Timestamp``/NumPy ``datetime64`` (a value of
    ``df["run_at"].to_numpy()``, UTC), and with ``epoch=True`` epoch seconds or milliseconds (a
    number or numeric text; eight digits that form a date are that date, ``20260301``:
    :func:`basic_date`). Anything else raises :class:`~cohortlab.errors.SettingsError` naming
    ``what``."""
    if isinstance(value, datetime):
        if value != value:  # pandas' NaT is a datetime (of an empty cell, of max() of an empty frame)
            raise SettingsError(f"{what}: not a time: NaT (a missing time)")  # named, unlike to_utc's
        return to_utc(value)
    if type(value).__name__ == "datetime64" and type(value).__module__ == "numpy":  # numpy not imported here
        as_dt = value.astype("datetime64[us]").item()  # a naive datetime; None for NaT
        if isinstance(as_dt, datetime):
            return to_utc(as_dt)
    if hasattr(value, "to_pydatetime"):
        return to_utc(value.to_pydatetime())
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if epoch and isinstance(value, int) and not isinstance(value, bool) and (basic := basic_date(str(value))):
        return basic  # 20260301 as a number too (a JSON number, a Python int)
    if epoch and isinstance(value, (int, float)) and not isinstance(value, bool):
        return from_epoch(value, what)
    if isinstance(value, str) and value.strip():
        s = value.strip()
        if epoch and (basic := basic_date(s)) is not None:
            return basic
        if epoch:
            try:
                num = float(s)
            except ValueError:
                num = None
            if num is not None:
                return from_epoch(num, what)
        if s.endswith(("Z", "z")):
            s = s[:-1] + "+00:00"
        # as warehouses write a zone: after a space (Snowflake's "… -0800"), or UTC by name (BigQuery)
        s = _SPACED_ZONE.sub(lambda m: "+00:00" if m.group(1).upper() == "UTC" else m.group(1), s)
        try:
            return to_utc(datetime.fromisoformat(s))
        except ValueError:
            raise SettingsError(f"{what}: not a time: {value!r} (expected ISO-8601, e.g. 2026-03-01T12:00:00Z)") from None
    raise SettingsError(f"{what}: not a time: {value!r} (expected ISO-8601, e.g. 2026-03-01T12:00:00Z)")


def parse_naive_utc(value: Any, what: str = "time", *, epoch: bool = False) -> datetime | None:
    """:func:`parse_time` as a naive UTC datetime (None stays None)."""
    return None if value is None else naive_utc(parse_time(value, what, epoch=epoch))


def latest_time_iso(given: Any, times: Any = ()) -> str | None:
    """ISO text (naive UTC) of ``given`` when it is set, else of the latest of ``times``; None when
    neither holds a time (text that is not one, as the EIT page's window): the time a report's
    figures are as of, which orders the runs of a reports folder."""
    try:
        parsed = [parse_naive_utc(given)] if given else [parse_naive_utc(t) for t in times or () if t]
    except (TypeError, ValueError):
        return None
    parsed = [t for t in parsed if t is not None]
    return max(parsed).isoformat() if parsed else None


def parse_day(value: Any, what: str = "day") -> date:
    """A calendar day (UTC) from a date, a datetime or text (``2026-03-01`` or a full time)."""
    if isinstance(value, datetime):
        return naive_utc(value).date()
    if isinstance(value, date):
        return value
    return naive_utc(parse_time(value, what)).date()


def format_time(v: datetime | None) -> str | None:
    """ISO-8601 UTC text with a ``Z`` and no trailing zero fraction (None stays None)."""
    return None if v is None else to_utc(v).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".") + "Z"


def format_minute(t: Any) -> str:
    """A time as every report page writes it in words: ``2026-03-01 00:00 UTC`` (a naive time
    is UTC, an aware one is converted)."""
    import pandas as pd

    ts = pd.Timestamp(t)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%d %H:%M UTC")


def format_instant(t: Any) -> str:
    """``YYYY-MM-DD HH:MM:SS`` (UTC) for people; ``unknown`` for a missing time."""
    import pandas as pd

    if t is None or (not isinstance(t, str) and pd.isna(t)):
        return "unknown"
    return pd.Timestamp(t).strftime("%Y-%m-%d %H:%M:%S")
