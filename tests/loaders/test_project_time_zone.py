"""mixpanel-events in a project's time zone: a project created before 2023 exports `time` as its
own wall clock (docs/loading.md#project-time-zone). `-o timezone=ZONE` stores those times in UTC;
without it, a load warns when a file's times look like a wall clock."""

from __future__ import annotations

import json
import random
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

UTC = timezone.utc


def _wall_epoch(utc: datetime, zone: str) -> int:
    """The epoch number a project in ``zone`` exports for the UTC instant ``utc``: its wall clock
    read as if it were UTC."""
    wall = utc.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    return int(wall.replace(tzinfo=UTC).timestamp())


def _ev(i: int, time, **props) -> str:
    return json.dumps({"event": "e", "properties": {"time": time, "distinct_id": f"U{i}", "$insert_id": f"i{i}",
                                                    **props}})


def _file(write, name: str, records: list[str], layout: str):
    if layout == "jsonl":
        return write(f"{name}.jsonl", "\n".join(records) + "\n")
    return write(f"{name}.json", "[\n" + ",\n".join(records) + "\n]")  # the exact path


def _times(lab) -> list[datetime]:
    return [r[0] for r in lab.engine.query_rows("SELECT time FROM mp_events ORDER BY line")]


@pytest.mark.parametrize("layout", ["jsonl", "array"])
def test_wall_clock_times_are_stored_in_utc(lab, write, balanced, layout):
    utc = [datetime(2026, 1, 20, 9, 15, tzinfo=UTC),   # PST, UTC-8
           datetime(2026, 7, 1, 23, 30, 5, tzinfo=UTC)]  # PDT, UTC-7
    records = [_ev(i, _wall_epoch(t, "America/Los_Angeles")) for i, t in enumerate(utc)]
    records.append(_ev(9, _wall_epoch(utc[0], "America/Los_Angeles") * 1000 + 250))  # milliseconds
    p = _file(write, "la", records, layout)
    r = balanced(lab.load("mixpanel-events", p, timezone="America/Los_Angeles"))
    assert (r.loaded, r.n_quarantined) == (3, 0)
    assert _times(lab) == [datetime(2026, 1, 20, 9, 15), datetime(2026, 7, 1, 23, 30, 5),
                           datetime(2026, 1, 20, 9, 15, 0, 250000)]


@pytest.mark.parametrize("layout", ["jsonl", "array"])
def test_a_wall_clock_shown_twice_is_the_earlier_instant(lab, write, balanced, layout):
    # 2026-11-01 in Los Angeles: 01:00-02:00 is shown twice (PDT, then PST). The earlier instant
    # is taken, as Spark's to_utc_timestamp and Python's fold=0 do (DuckDB's ICU takes the later)
    walls = ["2026-11-01 00:59:59", "2026-11-01 01:00:00", "2026-11-01 01:30:00", "2026-11-01 01:59:59",
             "2026-11-01 02:00:00", "2026-03-08 02:30:00"]  # the last is skipped by spring-forward
    records = [_ev(i, int(datetime.fromisoformat(w).replace(tzinfo=UTC).timestamp())) for i, w in enumerate(walls)]
    balanced(lab.load("mixpanel-events", _file(write, "fall", records, layout), timezone="America/Los_Angeles"))
    assert [t.isoformat(sep=" ") for t in _times(lab)] == [
        "2026-11-01 07:59:59", "2026-11-01 08:00:00", "2026-11-01 08:30:00", "2026-11-01 08:59:59",
        "2026-11-01 10:00:00", "2026-03-08 10:30:00"]


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Europe/Berlin", "Australia/Lord_Howe",
                                  "America/Santiago", "Asia/Kolkata", "Pacific/Chatham"])
def test_every_quarter_hour_around_each_transition_agrees_with_python_zoneinfo(lab, write, zone):
    # an independent reading: Python's zoneinfo (fold=0: the earlier instant of a repeated clock)
    tz = ZoneInfo(zone)
    walls = []
    for day in (datetime(2025, 3, 28), datetime(2025, 4, 4), datetime(2025, 9, 5), datetime(2025, 10, 24)):
        walls += [day + timedelta(minutes=15 * k) for k in range(4 * 24 * 10)]  # ten days, every 15 min
    records = [_ev(i, int(w.replace(tzinfo=UTC).timestamp())) for i, w in enumerate(walls)]
    lab.load("mixpanel-events", _file(write, "sweep", records, "jsonl"), timezone=zone)
    expected = [w.replace(tzinfo=tz, fold=0).astimezone(UTC).replace(tzinfo=None) for w in walls]
    got = _times(lab)
    assert len(got) == len(expected)
    wrong = [(w, g, e) for w, g, e in zip(walls, got, expected) if g != e]
    assert wrong == []


def test_the_option_is_validated_and_utc_is_no_option(lab, write):
    p = write("e.jsonl", _ev(1, 1768867200) + "\n")
    with pytest.raises(ValueError, match=r"mixpanel-events: timezone must be a time zone name .* got 'UTC-8'"):
        lab.load("mixpanel-events", p, timezone="UTC-8")
    assert lab.load("mixpanel-events", p).loaded == 1
    # UTC (any spelling) is the default: the same fingerprint, so the file is not loaded again
    for utc in ("UTC", "etc/utc", "GMT"):
        assert len(lab.load("mixpanel-events", p, timezone=utc).skipped) == 1
    # a zone name in another case is that zone; it shapes the rows, so it is another load
    assert lab.load("mixpanel-events", p, timezone="europe/berlin").loaded == 1
    assert lab.engine.query_rows("SELECT options->>'timezone' FROM loads ORDER BY load_id") == [
        (None,), ("Europe/Berlin",)]
    assert lab.engine.query_rows("SELECT time FROM mp_events ORDER BY load_id") == [
        (datetime(2026, 1, 20),), (datetime(2026, 1, 19, 23),)]


@pytest.mark.parametrize("layout", ["jsonl", "array"])
def test_a_wall_clock_next_to_the_end_of_time_is_bad_time(lab, write, balanced, layout):
    records = [_ev(1, 1768867200), _ev(2, 253402297200)]  # 9999-12-31 23:00: its UTC is in year 10000
    r = balanced(lab.load("mixpanel-events", _file(write, "edge", records, layout), timezone="America/Los_Angeles",
                          time_unit="s"))
    assert r.loaded == 1 and dict(r.quarantined) == {"bad_time": 1}


def _live(zone: str | None, n: int = 400, latency=(1, 90), start=datetime(2026, 1, 20, tzinfo=UTC), seed=0,
          step=timedelta(minutes=3)) -> list[str]:
    """n events a project in ``zone`` (None: UTC) exports, each processed ``latency`` seconds
    (a range, uniform) after it happened."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        t = start + i * step
        time = int(t.timestamp()) if zone is None else _wall_epoch(t, zone)
        out.append(_ev(i, time, mp_processing_time_ms=(int(t.timestamp()) + rnd.randint(*latency)) * 1000))
    return out


def test_a_load_warns_when_the_times_look_like_a_wall_clock(lab, write):
    p = write("la.jsonl", "\n".join(_live("America/Los_Angeles")) + "\n")
    r = lab.load("mixpanel-events", p)
    assert r.warnings == [
        f"{p}: the event times look like a local wall clock (UTC-8:00), not UTC: 400 of 400 sampled events' "
        "properties.time run about 8:00 h behind their mp_processing_time_ms (when Mixpanel processed them, in "
        "UTC). A project created before 2023 exports times in its own time zone: load the file with "
        "-o timezone=<the project's time zone>, or fetch or report its folder with --timezone (docs/loading.md#project-time-zone)"]
    # read in the right zone: no warning; in another: the gap that is left
    assert lab.load("mixpanel-events", p, timezone="America/Los_Angeles").warnings == []
    r = lab.load("mixpanel-events", p, timezone="Asia/Kolkata")
    assert r.warnings == [
        f"{p}: read as Asia/Kolkata wall-clock times, 400 of 400 sampled events' properties.time run about "
        "13:30 h behind their mp_processing_time_ms (when Mixpanel processed them, in UTC): is Asia/Kolkata "
        "the project's time zone? (docs/loading.md#project-time-zone)"]
    # east of UTC: ahead
    r = lab.load("mixpanel-events", write("in.jsonl", "\n".join(_live("Asia/Kolkata")) + "\n"))
    assert "(UTC+5:30)" in r.warnings[0] and "about 5:30 h ahead of their" in r.warnings[0]
    with pytest.raises(Exception, match="look like a local wall clock"):  # --strict: a warning fails
        lab.load("mixpanel-events", write("strict.jsonl", "\n".join(_live("Europe/Berlin")) + "\n"), strict=True)


@pytest.mark.parametrize("layout", ["array", "pretty", "document", "cut"])
def test_a_json_array_or_document_of_events_is_sampled_too(lab, write, layout):
    # only JSONL files were sampled: the same events as a JSON array (pretty-printed or not), or
    # as a pretty-printed stream of objects, loaded as UTC in silence
    records = _live("America/Los_Angeles")
    if layout == "array":
        text = "[" + ",".join(records) + "]"
    elif layout == "pretty":
        text = json.dumps([json.loads(r) for r in records], indent=2)
    elif layout == "document":
        text = "\n".join(json.dumps(json.loads(r), indent=4) for r in records)
    else:  # longer than the sample: the value cut at its end is skipped, the others count
        records = _live("America/Los_Angeles", n=6000)
        text = json.dumps([json.loads(r) for r in records], indent=1)
        assert len(text) > 512 * 1024
    r = lab.load("mixpanel-events", write(f"{layout}.json", text))
    assert r.loaded == len(records) and len(r.warnings) == 1, r.warnings
    assert "look like a local wall clock (UTC-8:00)" in r.warnings[0]
    near, n = (int(x.replace(",", "")) for x in re.search(r"([\d,]+) of ([\d,]+) sampled", r.warnings[0]).groups())
    if layout == "cut":
        assert near == n and 1000 < n < 6000
    else:
        assert near == n == 400
    utc = json.dumps([json.loads(x) for x in _live(None)], indent=2)  # times in UTC: no warning
    assert lab.load("mixpanel-events", write(f"{layout}-utc.json", utc)).warnings == []


def test_a_sample_across_a_change_of_summer_time_still_warns(lab, write):
    # 2026-03-08: Los Angeles goes from UTC-8 to UTC-7; the sample holds both
    records = _live("America/Los_Angeles", n=300, start=datetime(2026, 3, 8, 2, tzinfo=UTC), step=timedelta(minutes=5))
    r = lab.load("mixpanel-events", write("dst.jsonl", "\n".join(records) + "\n"))
    assert len(r.warnings) == 1 and "300 of 300 sampled events" in r.warnings[0]


@pytest.mark.parametrize("case", ["utc", "hourly_batches", "daily_batches", "no_processing_time", "few_events"])
def test_no_warning_for_utc_times_batches_or_too_little_to_tell(lab, write, case):
    records = {
        "utc": _live(None),
        # events imported every hour (or every day) are processed up to an hour (a day) after
        # they happened: the gaps spread, they do not cluster at an offset
        "hourly_batches": _live(None, latency=(0, 3600)),
        "daily_batches": _live(None, latency=(0, 86400)),
        "no_processing_time": [_ev(i, 1768867200 + i) for i in range(400)],
        "few_events": _live("America/Los_Angeles", n=40),
    }[case]
    r = lab.load("mixpanel-events", write(f"{case}.jsonl", "\n".join(records) + "\n"))
    assert r.loaded == len(records) and r.warnings == []


def test_info_says_which_event_files_were_read_in_a_time_zone(write, tmp_path):
    from click.testing import CliRunner

    from cohortlab import Lab
    from cohortlab.cli import main

    db = str(tmp_path / "lab.duckdb")
    with Lab(db) as lab:
        lab.load("mixpanel-events", write("a.jsonl", _ev(1, 1768867200) + "\n"), timezone="America/Los_Angeles")
        lab.load("mixpanel-events", write("b.jsonl", _ev(2, 1768867200) + "\n"), timezone="utc")
        lab.load("mixpanel-events", write("c.jsonl", _ev(3, 1768867260) + "\n"))
        assert lab.info()["events_time_zones"] == {"America/Los_Angeles": 1, "UTC": 2}
    r = CliRunner().invoke(main, ["info", "--db", db])
    assert r.exit_code == 0, r.output
    assert ("events: 2026-01-20 00:00:00 .. 2026-01-20 08:00:00 (UTC; 1 file(s) read from America/Los_Angeles "
            "wall-clock times)") in r.output


def test_a_folder_loads_its_raw_events_in_the_zone_given_over_the_one_fetch_recorded(tmp_path):
    # report --data and open_lab(data=...) of a folder exported by hand took no zone
    from cohortlab import Lab
    from cohortlab.errors import SettingsError
    from cohortlab.lab import open_lab
    from cohortlab.loaders.folder import load_world

    events = tmp_path / "world" / "mixpanel" / "events"
    events.mkdir(parents=True)
    (events / "e.jsonl").write_text(_ev(1, 1768867200) + "\n")  # 2026-01-20 00:00 on the project's clock

    def times(lab):
        return [str(t) for (t,) in lab.engine.query_rows("SELECT time FROM mp_events")]

    with Lab() as lab:
        load_world(lab, tmp_path / "world", timezone="America/Los_Angeles")
        assert times(lab) == ["2026-01-20 08:00:00"]
    # a folder fetched with --timezone: the zone given wins over the record
    (tmp_path / "world" / "fetch.json").write_text(json.dumps({"runs": [{"mixpanel_timezone": "Asia/Kolkata"}]}))
    with Lab() as lab:
        load_world(lab, tmp_path / "world")
        assert times(lab) == ["2026-01-19 18:30:00"]
    with Lab() as lab:
        load_world(lab, tmp_path / "world", timezone="europe/berlin")
        assert times(lab) == ["2026-01-19 23:00:00"]
    with open_lab(data=tmp_path / "world", timezone="UTC") as lab:
        assert times(lab) == ["2026-01-20 00:00:00"]
    with pytest.raises(SettingsError, match=r"^folder: timezone must be a time zone name .* got 'Nowhere'"):
        open_lab(data=tmp_path / "world", timezone="Nowhere")
    with Lab() as lab, pytest.raises(SettingsError, match=r"^folder: timezone must be .* got 'Nowhere'"):
        load_world(lab, tmp_path / "world", timezone="Nowhere")
    with pytest.raises(SettingsError, match=r"applies to the raw events of a data folder"):
        open_lab(db=str(tmp_path / "x.duckdb"), timezone="UTC")
