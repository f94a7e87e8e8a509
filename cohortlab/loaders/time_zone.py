"""Event times written in a project's time zone (docs/loading.md#project-time-zone).

Mixpanel's raw event export writes ``properties.time`` as stored: in UTC for projects created
since 2023, in the **project's time zone** for older ones (the epoch number of the local wall
clock). Read as UTC, such times are off by the zone's offset, hours that move every event
against the cutoff, the profile snapshots and the sync's runs.

* The ``mixpanel-events`` option ``timezone`` (an IANA name, e.g. ``America/Los_Angeles``) reads
  the times as that zone's wall clock and stores them in UTC (:func:`local_to_utc_sql`). In the
  hour a fall-back repeats, a wall-clock time names two instants: the earlier is taken (as
  ``java.time`` and Python's ``fold=0`` do), one hour early for the events of the later one.
* Without it, a load warns when a file's times look like a wall clock
  (:func:`time_zone_warning`): ``mp_processing_time_ms``, which Mixpanel writes in UTC
  milliseconds when it processes an event (seconds to minutes after a live event), is then a
  whole number of quarter hours away from ``time`` for most events. With the option, the same
  check warns when the zone given does not remove the gap.
"""

from __future__ import annotations

import json
import zoneinfo
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from cohortlab.loaders.files import head_bytes
from cohortlab.loaders.mixpanel_common import epoch_to_timestamp_sql
from cohortlab.pipeline import sql_str

# names of UTC itself: no conversion, and the file's fingerprint stays that of a load without
# the option
_UTC_NAMES = {"utc", "etc/utc", "uct", "etc/uct", "gmt", "etc/gmt", "zulu", "etc/zulu", "universal",
              "etc/universal", "z"}

# the sample a file's times are checked on: its first lines, up to this many bytes (a few hundred
# to a few thousand events)
SAMPLE_BYTES = 512 * 1024
# a verdict needs this many sampled events within 15 hours of their processing time
MIN_SAMPLE = 50
# ... of which this share within 10 minutes of the median gap, or of the median gap +- 1 hour
# (a sample that spans a change to or from summer time): live events are processed within
# seconds to minutes, events imported in hourly or daily batches spread over the hour or day
SHARE_NEAR = 0.6
NEAR_S = 600
WINDOW_S = 15 * 3600
# the smallest offset that is warned about (every zone's offset is a multiple of 15 minutes)
MIN_OFFSET_S = 1800


# the wall clocks converted: within a day of the TIMESTAMP range's ends the UTC time may fall
# outside it (no time: bad_time); the DuckDB loader and Spark's reader both read this
WALL_CLOCK_RANGE = ("0001-01-02", "9999-12-30")


@lru_cache(maxsize=1)
def _zones() -> dict[str, str]:
    return {z.lower(): z for z in zoneinfo.available_timezones()}


def pop_timezone(kind: str, opts: dict[str, Any]) -> str | None:
    """The option ``timezone`` taken out of ``opts``: None when absent, ``UTC`` for a name of UTC
    (``utc``, ``Etc/UTC``, ``GMT``, ...), else an IANA time zone name in its canonical spelling
    (matched in any case). ValueError naming ``kind`` (a loader, a command) for a name that is
    not a time zone."""
    raw = opts.pop("timezone", None)
    if raw is None:
        return None
    name = str(raw).strip()
    if name.lower() in _UTC_NAMES:
        return "UTC"
    zone = _zones().get(name.lower())
    if zone is None:
        raise ValueError(
            f"{kind}: timezone must be a time zone name such as America/Los_Angeles or Europe/Berlin "
            f"(the project's time zone, as its settings show it), got {name!r}")
    return zone


@lru_cache(maxsize=8)
def _fall_backs(zone: str) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(months, hours, minutes) of the wall-clock intervals that ``zone`` repeats (its fall-back
    transitions from 1970 to 2100): the months and hours they fall in, and by how many minutes
    the clock went back. Empty for a zone without one. Found by a daily scan of the UTC offset,
    each change then bisected to the second (0.1 s, once per zone)."""
    tz = zoneinfo.ZoneInfo(zone)
    utc = timezone.utc

    def off(t: int) -> int:
        return int(datetime.fromtimestamp(t, utc).astimezone(tz).utcoffset().total_seconds())
    months, hours, minutes = set(), set(), set()
    t, stop = int(datetime(1970, 1, 1, tzinfo=utc).timestamp()), int(datetime(2101, 1, 1, tzinfo=utc).timestamp())
    o = off(t)
    while t < stop:
        n = t + 86400
        if off(n) != o:
            lo, hi = t, n  # the offset changes in (lo, hi]
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if off(mid) == o else (lo, mid)
            o2 = off(hi)
            if o2 < o:  # fall-back: wall clocks [hi + o2, hi + o) are shown twice
                first = datetime.fromtimestamp(hi + o2, utc)
                last = datetime.fromtimestamp(hi + o - 1, utc)
                months.update({first.month, last.month})
                h = first.replace(minute=0, second=0)
                while h <= last:
                    hours.add(h.hour)
                    h += timedelta(hours=1)
                minutes.add((o - o2) // 60)
            o = o2
        t = n
    return tuple(sorted(months)), tuple(sorted(hours)), tuple(sorted(minutes))


def wall_clock(zone: str | None) -> str | None:
    """The zone whose wall clock times are read in (:func:`pop_timezone`'s name), None for UTC."""
    return None if zone in (None, "UTC") else zone


def local_to_utc_sql(ts: str, zone: str) -> str:
    """TIMESTAMP (UTC) of the TIMESTAMP ``ts`` read as the wall clock of ``zone``; NULL for a
    wall clock within a day of the TIMESTAMP range's ends (its UTC time may be outside it).

    A wall clock that a fall-back shows twice names the earlier instant (summer time), as
    ``java.time`` (Spark's ``to_utc_timestamp``) and Python's ``fold=0`` do; DuckDB's ICU takes
    the later, so a wall clock in a month and hour where ``zone`` falls back (:func:`_fall_backs`)
    is checked: if the instant the clock went back before shows the same wall clock, it is that
    one. One ICU conversion per event, the check on the few others."""
    z = sql_str(zone)
    later = f"timezone('UTC', timezone({z}, {ts}))"
    months, hours, minutes = _fall_backs(zone)
    checks = ""
    if months:
        def shows(u: str) -> str:  # the wall clock of the UTC time u in zone
            return f"timezone({z}, timezone('UTC', {u}))"
        maybe = f"month({ts}) IN ({', '.join(map(str, months))}) AND hour({ts}) IN ({', '.join(map(str, hours))})"
        earlier = [f"({later} - INTERVAL {m} MINUTE)" for m in minutes]
        checks = " ".join(f"WHEN {maybe} AND {shows(e)} = {ts} THEN {e}" for e in earlier)
    inner = f"CASE {checks} ELSE {later} END" if checks else later
    lo, hi = WALL_CLOCK_RANGE
    return f"CASE WHEN {ts} BETWEEN TIMESTAMP '{lo}' AND TIMESTAMP '{hi}' THEN {inner} END"


def event_time_sql(num: str, unit: str, zone: str | None) -> str:
    """TIMESTAMP (UTC) of an event's epoch ``time`` (DOUBLE ``num`` in ``unit``), written in UTC
    (``zone`` None) or in ``zone``'s wall clock."""
    ts = epoch_to_timestamp_sql(num, unit)
    return ts if zone is None else local_to_utc_sql(ts, zone)


def _sample(path, layout: str = "jsonl") -> list[tuple[Any, Any]]:
    """(time, mp_processing_time_ms) of the records in the first :data:`SAMPLE_BYTES` of a file
    that have both: its lines (``jsonl``), or the values of a JSON array or document, also
    pretty-printed (``array``, ``document``). A value cut at the sample's end, and unparsable
    ones, are skipped: the load quarantines them."""
    head = head_bytes(path, SAMPLE_BYTES)
    if layout == "jsonl":
        lines = head.splitlines()
        records = _parsed(lines[:-1] if len(head) == SAMPLE_BYTES else lines)
    else:
        records = _values(head.decode("utf-8", errors="replace"))
    out = []
    for record in records:
        try:
            props = record.get("properties")
            t, p = props.get("time"), props.get("mp_processing_time_ms")
        except AttributeError:
            continue
        if isinstance(t, (int, float, str)) and isinstance(p, (int, float, str)) \
                and not isinstance(t, bool) and not isinstance(p, bool):
            out.append((str(t), str(p)))
    return out


def _parsed(lines):
    for line in lines:
        try:
            yield json.loads(line)
        except (ValueError, RecursionError):  # (a record nested too deeply is the load's to say)
            continue


def _values(text: str):
    """The JSON values of a document's text, one after another (the elements of a top-level
    array), up to the first that does not parse (cut at the sample's end)."""
    decoder = json.JSONDecoder()
    i = len(text) - len(text.lstrip("\ufeff \t\r\n"))
    if text[i:i + 1] == "[":
        i += 1
    while True:
        while i < len(text) and text[i] in " \t\r\n,":
            i += 1
        try:
            value, i = decoder.raw_decode(text, i)
        except (ValueError, RecursionError):
            return
        yield value


def _hours(seconds: float) -> str:
    m = round(abs(seconds) / 60)
    return f"{m // 60}:{m % 60:02d}"


def time_zone_warning(ctx, unit: str, zone: str | None, layout: str = "jsonl") -> list[str]:
    """The load warning (naming the file) when a file's event times look like a wall clock
    other than the one they are read as: most sampled events (:data:`SAMPLE_BYTES`) are a whole
    number of quarter hours, at least :data:`MIN_OFFSET_S`, away from their
    ``mp_processing_time_ms``. Files without that property, or with too few live events, give
    no warning."""
    pairs = _sample(ctx.text_path(), layout)
    if len(pairs) < MIN_SAMPLE:
        return []
    ts = event_time_sql("TRY_CAST(t AS DOUBLE)", unit, zone)
    n, med, near = ctx.engine.query_rows(
        f"""
        WITH g AS (
            SELECT TRY_CAST(p AS DOUBLE) / 1000 - epoch({ts}) AS gap
            FROM (SELECT unnest(?::VARCHAR[]) AS t, unnest(?::VARCHAR[]) AS p)
        ),
        w AS (SELECT gap FROM g WHERE abs(gap) <= {WINDOW_S}),
        m AS (SELECT median(gap) AS med FROM w)
        SELECT (SELECT count(*) FROM w), (SELECT med FROM m),
               (SELECT count(*) FROM w, m
                WHERE least(abs(gap - med), abs(gap - med - 3600), abs(gap - med + 3600)) <= {NEAR_S})
        """, [[t for t, _ in pairs], [p for _, p in pairs]])[0]
    if n < MIN_SAMPLE or near < SHARE_NEAR * n:
        return []
    # time = UTC + offset, processed `gap` later: offset = -gap, to the quarter hour
    offset = -round(med / 900) * 900
    if abs(offset) < MIN_OFFSET_S:
        return []
    ahead = "ahead of" if offset > 0 else "behind"
    seen = (f"{near:,} of {n:,} sampled events' properties.time run about {_hours(offset)} h {ahead} "
            "their mp_processing_time_ms (when Mixpanel processed them, in UTC)")
    if zone is None:
        utc = f"UTC{'+' if offset > 0 else '-'}{_hours(offset)}"
        return [f"{ctx.path}: the event times look like a local wall clock ({utc}), not UTC: "
                f"{seen}. A project created before 2023 exports times in its own time zone: load the file "
                "with -o timezone=<the project's time zone>, or fetch or report its folder with --timezone "
                "(docs/loading.md#project-time-zone)"]
    return [f"{ctx.path}: read as {zone} wall-clock times, {seen}: is {zone} the project's time zone? "
            "(docs/loading.md#project-time-zone)"]
