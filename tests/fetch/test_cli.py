"""``cohortlab fetch`` on the command line: credentials from the environment or a config file
(never options), one clear error line on auth failures (no traceback, no secret), the summary,
and --db loading everything."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from cohortlab import Lab
from cohortlab.cli import main
from tests.fetch import fake_services as fs
from tests.fetch.conftest import BIG


def _run(args, env, tmp_path):
    # no retries sleep in the CLI tests: --retries 0 unless a test asks otherwise
    full = {k: v for k, v in os.environ.items() if not k.startswith(("MIXPANEL_", "MPARTICLE_", "COHORTLAB_"))}
    full.update(env)
    return CliRunner().invoke(main, ["fetch", *args], env=full, catch_exceptions=False)


def test_fetch_everything_and_load(fake, env, tmp_path):
    out, db = tmp_path / "exports", tmp_path / "lab.duckdb"
    r = _run(["--out", str(out), "--db", str(db), "--from", "2026-01-01", "--to", "2026-01-03",
              "--cohort", "Power Users", "--cohort", "1001"], env, tmp_path)
    assert r.exit_code == 0, r.output
    assert r.stderr == ""  # stderr is not a terminal: no progress bars
    assert "mixpanel cohorts list: 2 cohorts" in r.stdout
    assert "members of 'Power Users' (id 1000): 3 as of" in r.stdout
    assert "members of 'Churn Risk' (id 1001): 0 as of" in r.stdout
    assert "mparticle profiles: 4 MPIDs referenced, 3 fetched, 1 not found (404)" in r.stdout
    assert "mixpanel requests: " in r.stdout and "mparticle requests: " in r.stdout
    with Lab(str(db)) as lab:
        q = lab.engine.query_rows
        assert q("SELECT count(*) FROM mp_events")[0][0] == 5
        assert q("SELECT count(*) FROM mpa_profiles WHERE mpid = ?", [BIG])[0][0] == 1
        assert sorted(q("SELECT cohort_name, member_count FROM mp_cohort_snapshots")) == [
            ("Churn Risk", 0), ("Power Users", 3)]
    # again: nothing new fetched from mParticle, nothing doubled
    r2 = _run(["--out", str(out), "--db", str(db), "--json"], env, tmp_path)
    assert r2.exit_code == 0, r2.output
    counts = json.loads(r2.stdout)["counts"]
    assert counts["mparticle_profiles"] == 0 and counts["mparticle_missing"] == 0
    with Lab(str(db)) as lab:
        assert lab.engine.query_rows("SELECT count(*) FROM mpa_profiles")[0][0] == 3
        assert lab.engine.query_rows("SELECT count(*) FROM mp_profiles")[0][0] == 5


def test_wrong_secret_is_one_line_without_the_secret(fake, env, tmp_path):
    env = {**env, "MIXPANEL_SERVICE_ACCOUNT_SECRET": "not-the-right-secret-42"}
    r = _run(["--out", str(tmp_path / "o"), "--source", "mixpanel", "--from", "2026-01-01", "--to", "2026-01-01",
              "--no-profiles"], env, tmp_path)
    assert r.exit_code == 1
    err = r.stderr.strip()
    assert err.count("\n") == 0
    assert err.startswith("error: mixpanel: authentication failed (HTTP 401) on /api/query/cohorts/list")
    assert "Check the service account user name and secret" in err
    assert "not-the-right-secret-42" not in r.output and "Traceback" not in r.output


def test_a_refused_legacy_api_secret_is_told_to_check_that_secret(fake, env, tmp_path):
    """A 401 for the legacy project secret advised checking the service account the run did not use
    (an operator's review)."""
    env = {k: v for k, v in env.items() if not k.startswith("MIXPANEL_SERVICE_ACCOUNT")}
    env["MIXPANEL_API_SECRET"] = "not-the-right-secret-42"
    r = _run(["--out", str(tmp_path / "o"), "--source", "mixpanel", "--no-profiles"], env, tmp_path)
    assert r.exit_code == 1
    err = r.stderr.strip()
    assert err.startswith("error: mixpanel: authentication failed (HTTP 401)") and err.count("\n") == 0
    assert "Check the project's API secret (MIXPANEL_API_SECRET" in err and "service account user name" not in err
    assert "not-the-right-secret-42" not in r.output


def test_a_service_that_fails_on_every_attempt_says_what_to_do(fake, env, tmp_path):
    """"giving up after 1 attempt: HTTP 500 on ..." said what failed, not what to do (Ctrl-C's line
    says it; an operator's review). A refusal of the request itself (400) gets no such advice."""
    fake.sticky["cohorts"] = ("status", 500)
    r = _run(["--out", str(tmp_path / "o"), "--source", "mixpanel", "--no-profiles", "--retries", "0"], env, tmp_path)
    assert r.exit_code == 1
    assert r.stderr.startswith("error: mixpanel: giving up after 1 attempt: HTTP 500 on /api/query/cohorts/list")
    assert r.stderr.endswith("; what was written is kept: run the same command again later to resume\n")
    fake.sticky["cohorts"] = ("status", 400)
    r = _run(["--out", str(tmp_path / "o"), "--source", "mixpanel", "--no-profiles", "--retries", "0"], env, tmp_path)
    assert r.exit_code == 1 and "run the same command again" not in r.stderr


def test_export_error_echoing_credentials_is_masked(fake, env, tmp_path):
    from cohortlab.fetch.credentials import load_credentials
    from cohortlab.fetch.http import AuthError, no_sleep_policy
    from cohortlab.fetch.mixpanel import MixpanelClient

    creds = load_credentials(env={**env, "MIXPANEL_SERVICE_ACCOUNT_SECRET": "not-the-right-secret-42"})
    mp = MixpanelClient(creds.mixpanel, policy=no_sleep_policy())
    with pytest.raises(AuthError) as e:
        mp.export_events(tmp_path, "2026-01-01", "2026-01-01")
    msg = str(e.value)
    assert "Invalid username or secret: svc.cohortlab:****" in msg  # the server echoed it; we did not
    assert "not-the-right-secret-42" not in msg


def test_forbidden_is_an_auth_error_too(fake, env, tmp_path):
    fake.sticky["cohorts"] = ("status", 403)
    r = _run(["--out", str(tmp_path / "o"), "--source", "mixpanel", "--no-profiles"], env, tmp_path)
    assert r.exit_code == 1
    assert r.stderr.startswith("error: mixpanel: authentication failed (HTTP 403) on /api/query/cohorts/list")
    assert fake.count("cohorts") == 1  # never retried


def test_credentials_from_a_config_file(fake, env, tmp_path):
    cfg = tmp_path / "creds.yaml"
    cfg.write_text(
        "mixpanel:\n"
        f"  project_id: {fs.PROJECT}\n  service_account_username: {fs.MP_USER}\n"
        f"  service_account_secret: {fs.MP_SECRET}\n"
        f"  export_url: {fake.base}\n  query_url: {fake.base}\n"
    )
    cfg.chmod(0o600)
    r = _run(["--out", str(tmp_path / "o"), "--source", "mixpanel", "--config", str(cfg), "--no-profiles"],
             {}, tmp_path)
    assert r.exit_code == 0, r.output
    assert "mixpanel cohorts list: 2 cohorts" in r.stdout
    assert "warning" not in r.stderr


def test_missing_credentials_name_the_variables(fake, tmp_path):
    r = _run(["--out", str(tmp_path / "o"), "--source", "mparticle", "--mpids", str(_mpids(tmp_path))], {}, tmp_path)
    assert r.exit_code == 1
    assert r.stderr.strip() == ("error: mparticle: missing credentials: set MPARTICLE_CLIENT_ID, "
                                "MPARTICLE_CLIENT_SECRET, MPARTICLE_ORG_ID, MPARTICLE_ACCOUNT_ID, "
                                "MPARTICLE_WORKSPACE_ID (or the mparticle: section of the config file)")


def test_missing_mparticle_credentials_are_an_error_before_the_mixpanel_side(fake, env, tmp_path):
    # they were found only once the Mixpanel side was done (hours of Engage pages at
    # 60 requests an hour), then the run stopped
    env = {k: v for k, v in env.items() if k != "MPARTICLE_CLIENT_SECRET"}
    r = _run(["--out", str(tmp_path / "o"), "--from", "2026-01-01", "--to", "2026-01-03"], env, tmp_path)
    assert r.exit_code == 1
    assert r.stderr == ("error: mparticle: missing credentials: set MPARTICLE_CLIENT_SECRET (or the mparticle: "
                        "section of the config file)\n")
    assert fake.log == []


def test_every_missing_credential_of_both_sides_is_named_in_one_line(fake, env, tmp_path):
    """With nothing set, a run named the service account; once set, MIXPANEL_PROJECT_ID; then the
    five mParticle variables: three runs to learn them all (a review as an operator)."""
    r = _run(["--out", str(tmp_path / "o"), "--from", "2026-01-01", "--to", "2026-01-03"], {}, tmp_path)
    assert r.exit_code == 1 and not (tmp_path / "o").exists()
    assert r.stderr == (
        "error: mixpanel: no credentials: set MIXPANEL_SERVICE_ACCOUNT_USERNAME, MIXPANEL_SERVICE_ACCOUNT_SECRET, "
        "MIXPANEL_PROJECT_ID (or mixpanel.service_account_username/_secret and project_id in the config file), or "
        "the legacy project secret MIXPANEL_API_SECRET (mixpanel.api_secret); mparticle: missing credentials: set "
        "MPARTICLE_CLIENT_ID, MPARTICLE_CLIENT_SECRET, MPARTICLE_ORG_ID, MPARTICLE_ACCOUNT_ID, "
        "MPARTICLE_WORKSPACE_ID (or the mparticle: section of the config file)\n")
    partial = {k: v for k, v in env.items() if k not in ("MIXPANEL_PROJECT_ID", "MPARTICLE_ORG_ID")}
    r = _run(["--out", str(tmp_path / "o"), "--from", "2026-01-01", "--to", "2026-01-03"], partial, tmp_path)
    assert r.stderr == ("error: mixpanel: MIXPANEL_PROJECT_ID is required with a service account; mparticle: "
                        "missing credentials: set MPARTICLE_ORG_ID (or the mparticle: section of the config file)\n")
    r = _run(["--out", str(tmp_path / "o"), "--source", "mixpanel"], {**env, "MIXPANEL_PROJECT_ID": "abc"}, tmp_path)
    assert r.stderr == ("error: mixpanel: MIXPANEL_PROJECT_ID must be the project's number (Project Settings), "
                        "got 'abc'\n")
    assert fake.log == []


def _mpids(tmp_path):
    p = tmp_path / "mpids.txt"
    p.write_text(f"# MPIDs\n{BIG}\n-1\n")
    return p


def test_mpids_file_for_an_mparticle_only_fetch(fake, env, tmp_path):
    r = _run(["--out", str(tmp_path / "o"), "--source", "mparticle", "--mpids", str(_mpids(tmp_path))], env, tmp_path)
    assert r.exit_code == 0, r.output
    assert "mparticle profiles: 2 MPIDs referenced, 1 fetched, 1 not found (404)" in r.stdout
    bad = tmp_path / "bad.txt"
    bad.write_text("12\n1.5e18\n")
    r = _run(["--out", str(tmp_path / "o"), "--source", "mparticle", "--mpids", str(bad)], env, tmp_path)
    assert r.exit_code == 1 and r.stderr.strip() == f"error: {bad}:2: not an MPID (a signed 64-bit integer)"


def test_an_mpids_file_with_a_byte_order_mark_and_crlf_is_read(fake, env, tmp_path):
    # a list saved by Excel ("CSV UTF-8") or Notepad starts with a BOM: "line 1: not an MPID"
    f = tmp_path / "mpids.txt"
    f.write_bytes(b"\xef\xbb\xbf" + f"{BIG}\r\n123\r\n".encode())
    r = _run(["--out", str(tmp_path / "o"), "--source", "mparticle", "--mpids", str(f)], env, tmp_path)
    assert r.exit_code == 0, r.output
    assert "mparticle profiles: 2 MPIDs referenced, 1 fetched, 1 not found (404)" in r.stdout


def test_no_secret_options_exist():
    r = CliRunner().invoke(main, ["fetch", "--help"])
    assert r.exit_code == 0
    assert "--secret" not in r.output and "--password" not in r.output and "--token" not in r.output


def test_unreachable_service_is_one_line_after_the_retries(tmp_path):
    # a port nobody listens on (bound, then closed): connection refused, retried, then one line
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    env = fs.env_for(f"http://127.0.0.1:{port}")
    r = _run(["--out", str(tmp_path / "o"), "--source", "mixpanel", "--retries", "0"], env, tmp_path)
    assert r.exit_code == 1
    assert r.stderr.startswith("error: mixpanel: giving up after 1 attempt: ConnectError on /api/query/cohorts/list")
    assert r.stderr.count("\n") == 1
    # --json names it a network error, as documented (it was "fetch"; a review of scheduled runs)
    j = _run(["--out", str(tmp_path / "o2"), "--source", "mixpanel", "--retries", "0", "--json"], env, tmp_path)
    assert j.exit_code == 1 and json.loads(j.stdout)["error"]["kind"] == "network"


def test_a_time_zone_that_is_none_is_refused_before_the_credentials_are_read(tmp_path):
    """--timezone Mars/X was checked after the credentials: without them, the error was about the
    credentials (a review of scheduled runs)."""
    r = _run(["--out", str(tmp_path / "o"), "--source", "mixpanel", "--timezone", "Mars/X"], {}, tmp_path)
    assert r.exit_code == 1 and r.stderr.startswith("error: fetch: timezone must be a time zone name")
    assert r.stderr.count("\n") == 1 and not (tmp_path / "o").exists()


def test_a_bad_date_is_one_line(fake, env, tmp_path):
    r = _run(["--out", str(tmp_path / "o"), "--source", "mixpanel", "--from", "2026-13-01", "--to", "2026-01-02"],
             env, tmp_path)
    assert r.exit_code == 1
    assert r.stderr == "error: --from 2026-13-01: not a valid day (month must be in 1..12)\n"
    assert fake.log == []  # checked before any request (tests/fetch/test_cli_arguments.py)


@pytest.mark.parametrize("kind", ["under-a-file", "read-only"])
def test_an_out_that_cannot_be_created_is_one_line(fake, env, tmp_path, kind):
    # a traceback ending in NotADirectoryError / PermissionError
    if kind == "under-a-file":
        (tmp_path / "afile").write_text("x")
        out = tmp_path / "afile" / "exports"
        expected = f"error: {out}: cannot create the output folder: Not a directory"
    else:
        if os.geteuid() == 0:
            pytest.skip("root can write anywhere")
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        out = ro / "exports"
        expected = f"error: {out}: cannot create the output folder: Permission denied"
    r = CliRunner().invoke(main, ["fetch", "--out", str(out), "--source", "mixpanel", "--retries", "0"],
                           env={**os.environ, **env})
    assert r.exit_code == 1, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert r.stderr == expected + "\n"
    assert fake.log == []  # before any request


def test_timeout_option_bounds_each_read(fake, env, tmp_path):
    import time

    fake.hang = 6.0
    fake.sticky["cohorts"] = "hang"
    t0 = time.monotonic()
    r = _run(["--out", str(tmp_path / "o"), "--source", "mixpanel", "--no-profiles", "--retries", "0",
              "--timeout", "1"], env, tmp_path)
    assert r.exit_code == 1
    assert r.stderr.startswith("error: mixpanel: giving up after 1 attempt: ReadTimeout on /api/query/cohorts/list")
    assert time.monotonic() - t0 < 4.5  # the 1 s timeout, not the 6 s the server hangs (slack for a busy machine)


def test_mparticle_only_with_db_into_a_new_out(fake, env, tmp_path):
    # "the fetched files did not load: expected mixpanel/ and/or mparticle/" before any request
    db = tmp_path / "lab.duckdb"
    r = _run(["--out", str(tmp_path / "a"), "--db", str(db), "--source", "mparticle", "--mpids", str(_mpids(tmp_path))],
             env, tmp_path)
    assert r.exit_code == 0, r.output
    assert "mparticle profiles: 2 MPIDs referenced, 1 fetched, 1 not found (404)" in r.stdout
    # the documented way: MPIDs read from a --db that already holds the Mixpanel side
    r = _run(["--out", str(tmp_path / "mp"), "--db", str(db), "--source", "mixpanel"], env, tmp_path)
    assert r.exit_code == 0, r.output
    r = _run(["--out", str(tmp_path / "b"), "--db", str(db), "--source", "mparticle"], env, tmp_path)
    assert r.exit_code == 0, r.output
    assert "mparticle profiles: 4 MPIDs referenced, 3 fetched, 1 not found (404)" in r.stdout
    with Lab(str(db)) as lab:
        assert lab.engine.query_rows("SELECT count(*) FROM mpa_profiles")[0][0] == 3


def test_missing_mixpanel_credentials_name_both_ways_to_give_them(fake, tmp_path):
    r = _run(["--out", str(tmp_path / "o"), "--source", "mixpanel", "--no-profiles"], {}, tmp_path)
    assert r.exit_code == 1
    assert "MIXPANEL_SERVICE_ACCOUNT_USERNAME" in r.stderr and "MIXPANEL_API_SECRET" in r.stderr


def test_a_second_fetch_into_the_same_folder_is_refused_while_one_runs(fake, env, tmp_path):
    # two runs writing the same chunk state and page folders would undo each other's work: the
    # second is one error line, before any request, naming the running process
    import subprocess
    import sys

    out = tmp_path / "exports"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from cohortlab.fetch.files import run_lock\n"
         "with run_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(60)", str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        r = _run(["--out", str(out), "--source", "mixpanel", "--no-profiles", "--retries", "0"], env, tmp_path)
        assert r.exit_code == 1, r.output
        assert r.stderr == (f"error: {out}: another cohortlab fetch is writing to this folder (process {holder.pid}): "
                            "wait for it to end, or fetch into another --out\n")
        assert fake.log == []
    finally:
        holder.kill()
        holder.wait()
    # the OS released the killed process's lock: the next run goes ahead
    r = _run(["--out", str(out), "--source", "mixpanel", "--no-profiles", "--retries", "0"], env, tmp_path)
    assert r.exit_code == 0, r.output


def test_a_killed_run_leaves_no_temporary_files_behind_the_next(fake, env, tmp_path):
    # a run killed with SIGKILL cannot clean up: its .part files and half-filled page folders stay
    # in .fetch/tmp/ (never loaded: the folder is hidden) until the next run holds the folder
    out = tmp_path / "exports"
    tmp = out / ".fetch" / "tmp"
    tmp.mkdir(parents=True)
    (tmp / "cohorts.json.x1y2.part").write_text('[{"id": 1')
    (tmp / "profiles.abc").mkdir()
    (tmp / "profiles.abc" / "page-00000.json").write_text("{}")
    r = _run(["--out", str(out), "--source", "mixpanel", "--no-profiles", "--retries", "0"], env, tmp_path)
    assert r.exit_code == 0, r.output
    assert "removed 2 temporary file(s) an interrupted run left in .fetch/tmp/" in r.stdout
    assert list(tmp.iterdir()) == []
    assert json.loads((out / "mixpanel" / "cohorts.json").read_text())[0]["id"] == 1000


def test_engage_listings_show_progress_when_asked(fake, env, tmp_path):
    # an Engage listing of a large project takes hours (60 queries an hour): its bar counts the
    # profiles and members as pages arrive; a cohort name from data is one escaped line
    fake.cohorts[0]["name"] = "Power\x1b[2J Users"
    out = tmp_path / "exports"
    r = _run(["--out", str(out), "--source", "mixpanel", "--cohort", "1000", "--retries", "0", "--progress"],
             env, tmp_path)
    assert r.exit_code == 0, r.output
    final = {line.rsplit("\r", 1)[-1].split(" [")[0] for line in r.stderr.splitlines()}
    assert "Mixpanel profiles: 5 profiles" in final
    assert "members of Power\\x1b[2J Users: 3 members" in final
    assert "\x1b[2J" not in r.stderr


def test_cohort_names_and_ids_from_the_server_never_reach_the_terminal_raw(fake, env, tmp_path):
    """The cohorts list is the server's (or whoever answers as it): a cohort's name and id are
    data. The summary line names both; neither writes a control character (it printed the id
    raw: an OSC sequence retitled the terminal, a line break forged a line), and neither names a
    file outside --out."""
    evil = "\x1b]0;PWNED\x07\x1b[31m\u202e\nerror: forged"
    fake.cohorts.append({"id": 7, "name": "../../../escaped" + evil, "count": 1})
    fake.members[7] = ["cust-1"]
    # an id that is no integer is no cohort (skipped with a warning), and the warning and the
    # summary line that name it show it escaped too
    fake.cohorts.append({"id": "7" + evil + "/../../x", "name": "x", "count": 1})
    out = tmp_path / "exports"
    r = _run(["--out", str(out), "--source", "mixpanel", "--all-cohorts", "--no-profiles"], env, tmp_path)
    assert r.exit_code == 0, r.output
    assert not any(c in r.stdout + r.stderr for c in "\x1b\x07\u202e"), r.stdout
    assert "\nerror: forged" not in r.stdout + r.stderr
    assert "members of '../../../escaped\\x1b]0;PWNED\\x07" in r.stdout
    assert 'id "7\\u001b]0;PWNED\\u0007' in r.stdout and 'id "7\\u001b]0;PWNED\\u0007' in r.stderr
    assert not (tmp_path / "escaped").exists() and not list(tmp_path.glob("*x"))
    files = [p.relative_to(out).as_posix() for p in out.rglob("*.jsonl")]
    assert len(files) == 3 and all(f.startswith("mixpanel/members/") and f.count("/") == 3 for f in files), files


@pytest.mark.parametrize("planted", [".fetch/tmp", ".fetch/lock", ".fetch/mixpanel_query_requests.json", ".fetch"])
def test_a_link_planted_in_the_state_folder_is_refused_and_what_it_points_to_kept(fake, env, tmp_path, planted):
    """An --out shared with others may hold links in .fetch/ put there by someone else: fetch
    removed every file of the folder .fetch/tmp pointed to (as a killed run's leftovers),
    truncated the file .fetch/lock pointed to and overwrote the one a request record pointed to.
    Now: one error line naming the link, before any request; nothing it points to is touched."""
    out, mine = tmp_path / "exports", tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "thesis.txt").write_text("precious")
    (mine / "sub" / "notes.txt").write_text("also precious")
    (out / ".fetch").mkdir(parents=True)
    target = mine if planted in (".fetch/tmp", ".fetch") else mine / "thesis.txt"
    if planted == ".fetch":
        (out / ".fetch").rmdir()
    (out / planted).symlink_to(target)
    r = _run(["--out", str(out), "--source", "mixpanel", "--no-profiles"], env, tmp_path)
    assert r.exit_code == 1, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "is a symbolic link" in lines[0] and planted.split("/")[-1] in lines[0], r.stderr
    assert (mine / "thesis.txt").read_text() == "precious" and (mine / "sub" / "notes.txt").read_text() == "also precious"
    assert sorted(p.name for p in mine.iterdir()) == ["sub", "thesis.txt"]
    assert not [e for e in fake.log if e[0] != "token"]  # no request was made
