"""``cohortlab fetch --from/--to`` are checked before anything else: a day that is not YYYY-MM-DD,
one without the other, or --from after --to is one ``error:`` line naming the option, and no
request reaches the (fake) services and no folder is created. Without credentials the error is
still about the option (the days are checked before the credentials are read)."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from cohortlab.cli import main

CASES = [
    (["--from", "banana", "--to", "2026-01-02"], "--from banana: not a day (expected YYYY-MM-DD, e.g. 2026-01-31)"),
    (["--from", "2026-01-01", "--to", "2026-1-2"], "--to 2026-1-2: not a day (expected YYYY-MM-DD, e.g. 2026-01-31)"),
    (["--from", "2026-01-01T00:00:00Z", "--to", "2026-01-02"],
     "--from 2026-01-01T00:00:00Z: not a day (expected YYYY-MM-DD, e.g. 2026-01-31)"),
    (["--from", "2026-13-01", "--to", "2026-01-02"], "--from 2026-13-01: not a valid day (month must be in 1..12)"),
    (["--from", "2026-02-30", "--to", "2026-03-02"],
     "--from 2026-02-30: not a valid day (day is out of range for month)"),
    (["--from", "2026-02-01", "--to", "2026-01-01"],
     "--from 2026-02-01 is after --to 2026-01-01: the range of days is empty"),
    (["--from", "banana"], "--from banana: not a day (expected YYYY-MM-DD, e.g. 2026-01-31)"),
    (["--from", "2026-01-01"],
     "--from without --to: give both (the days of the raw event export, inclusive) or neither"),
    (["--to", "2026-01-01"], "--to without --from: give both (the days of the raw event export, inclusive) or neither"),
]
IDS = ["from-not-a-day", "to-not-a-day", "a-time", "month-13", "feb-30", "from-after-to", "only-bad-from",
       "only-from", "only-to"]


def _invoke(args, env, tmp_path):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("MIXPANEL_", "MPARTICLE_", "COHORTLAB_"))}
    full.update(env, HOME=str(tmp_path / "home"))  # no credentials file of the machine
    return CliRunner().invoke(main, ["fetch", *args], env=full)


def _error_line(r) -> str:
    assert r.exit_code == 1, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


@pytest.mark.parametrize("days, message", CASES, ids=IDS)
def test_bad_days_are_refused_before_any_request(fake, env, tmp_path, days, message):
    out = tmp_path / "exports"
    r = _invoke(["--out", str(out), "--retries", "0", *days], env, tmp_path)
    assert _error_line(r) == f"error: {message}"
    assert fake.log == []  # not one request
    assert not out.exists()  # no folder


@pytest.mark.parametrize("days, message", CASES[:1] + CASES[5:8], ids=IDS[:1] + IDS[5:8])
def test_bad_days_are_named_as_options_without_credentials(tmp_path, days, message):
    out = tmp_path / "exports"
    r = _invoke(["--out", str(out), *days], {}, tmp_path)
    assert _error_line(r) == f"error: {message}"
    assert not out.exists()


def test_good_days_still_fetch(fake, env, tmp_path):
    out = tmp_path / "exports"
    r = _invoke(["--out", str(out), "--source", "mixpanel", "--no-profiles", "--from", "2026-01-01",
                 "--to", "2026-01-01", "--retries", "0"], env, tmp_path)
    assert r.exit_code == 0, r.output
    assert "mixpanel events 2026-01-01..2026-01-01: 2 events" in r.stdout
    assert fake.count("export") == 1


@pytest.mark.parametrize("from_date, to_date, message", [
    ("2026-02-01", "2026-01-01", "the date range is empty: 2026-02-01 is after 2026-01-01"),
    ("banana", "2026-01-01", "from_date"),
    ("2026-01-01", None, "give both from_date and to_date"),
])
def test_the_library_checks_the_days_before_any_folder_or_request(fake, creds, policy, tmp_path, from_date, to_date,
                                                                  message):
    from cohortlab.fetch import FetchError, fetch

    out = tmp_path / "exports"
    with pytest.raises(FetchError, match=message):
        fetch(out, from_date=from_date, to_date=to_date, credentials=creds, policy=policy)
    assert fake.log == []
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--source", "mparticle", "--cohort", "Power Users"],
     "cohorts (--cohort): for the mixpanel side, which this run does not fetch (sources: mparticle)"),
    (["--source", "mparticle", "--all-cohorts", "--from", "2026-01-01", "--to", "2026-01-02"],
     "from_date (--from), to_date (--to), all_cohorts (--all-cohorts): for the mixpanel side"),
    (["--source", "mixpanel", "--retry-missing"],
     "retry_missing (--retry-missing): for the mparticle side, which this run does not fetch (sources: mixpanel)"),
    (["--source", "mparticle", "--timezone", "America/Los_Angeles"],
     "timezone (--timezone): for the mixpanel side, which this run does not fetch (sources: mparticle)"),
    (["--source", "mparticle", "--chunk-days", "3", "--no-profiles"],
     "chunk_days (--chunk-days), profiles (--no-profiles): for the mixpanel side, which this run does not fetch"),
], ids=["cohort-for-mparticle", "three-for-mparticle", "retry-missing-for-mixpanel", "timezone-for-mparticle",
        "chunk-days-and-no-profiles-for-mparticle"])
def test_an_option_of_a_side_the_run_does_not_fetch_is_refused_before_any_request(fake, env, tmp_path, args,
                                                                                  message):
    """Such an option did nothing, silently, and the run was not the one asked for."""
    out = tmp_path / "exports"
    r = _invoke(["--out", str(out), "--retries", "0", *args], env, tmp_path)
    line = _error_line(r)
    assert line.startswith(f"error: {message}") and line.endswith("add it to the sources or leave them out"), line
    assert fake.log == []
    assert not out.exists()


def test_a_timezone_that_is_no_time_zone_is_refused_before_any_request(fake, env, tmp_path):
    out = tmp_path / "exports"
    r = _invoke(["--out", str(out), "--source", "mixpanel", "--timezone", "Pacific Time"], env, tmp_path)
    assert _error_line(r) == ("error: fetch: timezone must be a time zone name such as America/Los_Angeles or "
                              "Europe/Berlin (the project's time zone, as its settings show it), got 'Pacific Time'")
    assert fake.log == [] and not out.exists()


@pytest.mark.parametrize("source, message", [
    ("mixpanel", "error: mixpanel: no credentials: set MIXPANEL_SERVICE_ACCOUNT_USERNAME"),
    ("mparticle", "error: mparticle: missing credentials: set MPARTICLE_CLIENT_ID, MPARTICLE_CLIENT_SECRET"),
])
def test_missing_credentials_are_an_auth_error_before_any_folder(tmp_path, source, message):
    """Without credentials the error's kind was "fetch" (the docs name "auth" for credentials),
    and the --out folder was made all the same: a scheduled job's next run found it."""
    import json

    out = tmp_path / "exports"
    unset = {k: None for k in os.environ if k.startswith(("MIXPANEL_", "MPARTICLE_", "COHORTLAB_CONFIG"))}
    r = _invoke(["--out", str(out), "--source", source, "--json"], unset, tmp_path)
    assert _error_line(r).startswith(message)
    assert json.loads(r.stdout)["error"]["kind"] == "auth"
    assert not out.exists()
