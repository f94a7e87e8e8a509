"""``cohortlab fetch``: download the Mixpanel and mParticle exports (and load them with --db).

Credentials come from environment variables or a config file, never from the command line
(see ``cohortlab.fetch.credentials`` and docs/fetching.md)."""

from __future__ import annotations

import json
import re
from datetime import date

import click

from cohortlab.cli.app import Choice, JsonCommand, error_json, fail, main, option_value


class _Refused(Exception):
    """An argument refused before any request (a day, the MPIDs file): one ``error:`` line."""


def _check_days(from_date: str | None, to_date: str | None) -> None:
    """--from / --to: both or neither, each a day YYYY-MM-DD, --from not after --to. Checked before
    the credentials are read, any folder is created or any request is made."""
    days = {}
    for option, value in (("--from", from_date), ("--to", to_date)):
        if value is None:
            continue
        text = value.strip()
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise _Refused(f"{option} {value or repr(value)}: not a day (expected YYYY-MM-DD, e.g. 2026-01-31)")
        try:
            days[option] = date.fromisoformat(text)
        except ValueError as e:
            raise _Refused(f"{option} {value}: not a valid day ({e})")
    if (from_date is None) != (to_date is None):
        given, missing = ("--from", "--to") if to_date is None else ("--to", "--from")
        raise _Refused(f"{given} without {missing}: give both (the days of the raw event export, inclusive) or neither")
    if days and days["--from"] > days["--to"]:
        raise _Refused(f"--from {from_date} is after --to {to_date}: the range of days is empty")


def _read_mpids(path: str) -> list[int]:
    from cohortlab.errors import read_text_file
    from cohortlab.identifiers import is_valid_mpid

    out, bad = [], []
    # a UTF-8 byte order mark (a list saved by Excel as "CSV UTF-8", or by Notepad) is no part of line 1
    text = read_text_file(path, what="the MPIDs file").removeprefix("\ufeff")
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        (out.append(int(s)) if is_valid_mpid(s) else bad.append(n))
    if bad:
        raise _Refused(f"{path}:{bad[0]}: not an MPID (a signed 64-bit integer)"
             + (f" ({len(bad)} such lines)" if len(bad) > 1 else ""))
    return out


class _FetchCommand(JsonCommand):
    def usage_json(self, args: list[str], message: str) -> dict:
        return _doc(option_value(args, "--out"), None, {"kind": "usage", "message": message})


@main.command("fetch", cls=_FetchCommand, short_help="Download Mixpanel and mParticle exports.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Folder for the exports (the folder layout `cohortlab report --data` reads); created if missing.")
@click.option("--db", "db", default=None, type=click.Path(dir_okay=False),
              help="Also load what was fetched into this DuckDB database.")
@click.option("--source", "sources", multiple=True, type=Choice(["mixpanel", "mparticle"]),
              help="Only this side (repeatable; default both).")
@click.option("--from", "from_date", default=None, help="Raw events from this day (YYYY-MM-DD, inclusive).")
@click.option("--to", "to_date", default=None, help="Raw events up to this day (YYYY-MM-DD, inclusive).")
@click.option("--event", "events", multiple=True, help="Only these event names (repeatable).")
@click.option("--where", default=None, help="Mixpanel `where` expression for the event export.")
@click.option("--chunk-days", default=7, show_default=True, type=click.IntRange(1, 366),
              help="Days per event-export request (one file each).")
@click.option("--profiles/--no-profiles", default=True, show_default=True, help="Fetch the Engage profiles.")
@click.option("--cohort", "cohorts", multiple=True,
              help="Fetch a members snapshot of this cohort (id or name; repeatable).")
@click.option("--all-cohorts", is_flag=True, help="A members snapshot of every cohort in the list.")
@click.option("--mpids", "mpids_file", default=None, type=click.Path(exists=True, dir_okay=False),
              help="mParticle: fetch these MPIDs (one per line) instead of those Mixpanel refers to.")
@click.option("--concurrency", default=4, show_default=True, type=click.IntRange(1, 32),
              help="mParticle Profile API requests in flight.")
@click.option("--rate", default=15.0, show_default=True, type=click.FloatRange(0.1, 1000),
              help="mParticle Profile API requests per second (the documented limit starts at 15).")
@click.option("--retry-missing", is_flag=True, help="Ask again for MPIDs an earlier run found missing (404).")
@click.option("--refresh", is_flag=True, help="Fetch event chunks again even when their file exists.")
@click.option("--timezone", default=None, metavar="ZONE",
              help="The Mixpanel project's time zone (e.g. America/Los_Angeles), for a project created before "
                   "2023: its raw export writes times as that zone's wall clock. Recorded in fetch.json: the "
                   "folder's events then load as UTC times (docs/loading.md#project-time-zone).")
@click.option("--region", type=Choice(["us", "eu", "in"]), default=None,
              help="Mixpanel data residency (default: MIXPANEL_REGION or the config file, else us).")
@click.option("--config", "config", default=None, type=click.Path(dir_okay=False),
              help="Credentials file (YAML); default $COHORTLAB_CONFIG or ~/.config/cohortlab/credentials.yaml.")
@click.option("--retries", default=5, show_default=True, type=click.IntRange(0, 20),
              help="Retries of a request answered 429/5xx or cut short.")
@click.option("--timeout", default=None, type=click.FloatRange(1, 3600), metavar="SECONDS",
              help="Seconds one read from a server may wait before the request is retried "
                   "(default: 120 for Mixpanel, 60 for mParticle).")
@click.option("--progress/--no-progress", "progress", default=None,
              help="Progress bars (default: only when stderr is a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary counts as JSON.")
def fetch_cmd(out, db, sources, from_date, to_date, events, where, chunk_days, profiles, cohorts, all_cohorts,
              mpids_file, concurrency, rate, retry_missing, refresh, timezone, region, config, retries, timeout, progress,
              as_json):
    """Download Mixpanel exports (raw events, Engage profiles, cohorts, cohort members) and
    mParticle profiles (Profile API, for the MPIDs the Mixpanel side refers to) into --out, then
    load them into --db. A second run fetches only what is missing.

    Exit status 0 when everything asked for was fetched; 1 on an error (one `error:` line), also
    when the run went on without part of it (a cohort deleted during the run); 130 on Ctrl-C.
    With --json, stdout is one JSON object in every case, with "ok", "complete" and, on an
    error, "error": {"kind", "message"} beside what was fetched so far."""
    secrets: list[str] = []  # masked out of a message no client built (an unexpected error)
    summary = None

    def failed(error: BaseException, message: str, kind: str, code: int = 1) -> None:
        if as_json:
            got = getattr(error, "fetch_summary", None) or summary
            click.echo(_json(out, got, {"kind": kind, "message": _mask(message, secrets)}))
        fail(_mask(message, secrets), code=code)

    from cohortlab.errors import CohortlabError

    try:
        _check_days(from_date, to_date)
        mpids = _read_mpids(mpids_file) if mpids_file else None
        if timezone is not None:  # before the credentials: a typo needs no account to be told
            from cohortlab.loaders.time_zone import pop_timezone

            pop_timezone("fetch", {"timezone": timezone})
    except (_Refused, CohortlabError, ValueError) as e:  # CohortlabError: an MPIDs file that cannot be read
        failed(e, str(e), "usage")
    import httpx  # here, not at start-up: only this command talks to the network

    from cohortlab.fetch import AuthError, RetryPolicy, fetch, load_credentials

    try:
        creds = load_credentials(config)
        secrets = [*creds.mixpanel.secrets(), *creds.mparticle.secrets()]
        if region:
            creds.mixpanel.region = region
        policy = RetryPolicy(retries=retries)
        options = dict(sources=sources or ("mixpanel", "mparticle"), from_date=from_date, to_date=to_date,
                       events=events, where=where, chunk_days=chunk_days, profiles=profiles, cohorts=cohorts,
                       all_cohorts=all_cohorts, mpids=mpids, concurrency=concurrency, rate=rate,
                       retry_missing=retry_missing, refresh=refresh, timezone=timezone, credentials=creds,
                       policy=policy, timeout=timeout, progress=progress)
        if db:
            from cohortlab.lab import Lab

            with Lab(db) as lab:
                summary = fetch(out, lab=lab, **options)
        else:
            summary = fetch(out, **options)
    except AuthError as e:
        failed(e, str(e), "auth")
    except CohortlabError as e:  # FetchError and the other user errors: one line
        # the service failed on every attempt (unreachable, 5xx, cut answers): what to do next
        again = getattr(e, "transient", False)
        failed(e, str(e) + ("; what was written is kept: run the same command again later to resume" if again else ""),
               error_json(e)["kind"])
    except httpx.HTTPError as e:  # not expected past the client's own handling; still one line
        failed(e, f"network error: {type(e).__name__}: {e}", "network")
    except OSError as e:  # a file that cannot be written (disk full, permissions): one line
        failed(e, f"{e.filename or out}: {e.strerror or e}", "file")
    except KeyboardInterrupt as e:
        failed(e, "interrupted: what was written is complete; run the same command again to resume", "interrupted",
               code=130)
    except Exception as e:  # a bug, or the machine's (DuckDB out of memory): --json still prints its object
        if as_json:
            click.echo(_json(out, getattr(e, "fetch_summary", None), {**error_json(e), "message": _mask(
                error_json(e)["message"], secrets)}))
        raise  # the root group prints its line (and a bug's traceback)
    if summary.complete:
        click.echo(_json(out, summary) if as_json else str(summary))
        return
    # the run went on without part of what was asked (a cohort deleted meanwhile): the summary
    # says what, and the exit status says the run is incomplete
    if not as_json:
        click.echo(str(summary))
    from cohortlab.fetch import shown_name

    what = "; ".join(f"{s['kind']}: {shown_name(s['cohort'])!r} (id {s['cohort_id']})" for s in summary.skipped)
    failed(_Refused(), f"incomplete: {len(summary.skipped)} item(s) skipped ({what}); the rest was fetched",
           "incomplete")


def _json(out, summary, error: dict | None = None) -> str:
    return json.dumps(_doc(out, summary, error), indent=2)  # ASCII: a name's control or bidi character is an escape


def _doc(out, summary, error: dict | None = None) -> dict:
    """The --json object: the counts and requests of ``summary`` (None: nothing fetched yet),
    ``ok``/``complete``, what was skipped, and ``error`` when the command failed (``out`` None:
    a usage error before ``--out`` was read)."""
    counts = summary.counts if summary is not None else {}
    stats = ({k: {"requests": v.requests, "retries": dict(v.retries)} for k, v in summary.stats.items()}
             if summary is not None else {})
    from cohortlab.fetch import shown_name  # a cohort's name as the summary prints it (no email or phone)

    skipped = [{**s, "cohort": shown_name(s["cohort"])} if "cohort" in s else s
               for s in (summary.skipped if summary is not None else [])]
    doc = {"ok": error is None, "complete": error is None and not skipped, "out": None if out is None else str(out),
           "counts": counts, "http": stats, "skipped": skipped}
    if error is not None:
        doc["error"] = error
    return doc


def _mask(text: str, secrets: list[str]) -> str:
    from cohortlab.fetch.http import mask

    return mask(text, secrets)
