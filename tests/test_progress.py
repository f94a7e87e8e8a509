"""The progress line of long commands (cohortlab/progress.py): on stderr with --progress (the
default on a terminal), counting the tables written; nothing otherwise, and never in the results."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cohortlab import progress
from cohortlab.cli import main
from tests.worlds import small_loaded_world


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return small_loaded_world(tmp_path_factory.mktemp("progress"))


def _lines(stderr: str) -> list[str]:
    """The states the progress line went through (tqdm rewrites one line with carriage returns)."""
    return [s.strip() for s in stderr.replace("\r", "\n").splitlines() if s.strip()]


@pytest.mark.parametrize("table, label", [
    ("sim_3db5b63b_resolution", "resolution"),
    ("temp.main.sim_3db5b63b_runs", "runs"),
    ("_remedy_persons_9f0c1a2b", "remedy_persons"),
    ("migration_daily", "migration_daily"),
    ("verify_compared", "verify_compared"),
])
def test_a_step_is_named_after_its_table_without_the_runs_random_id(table, label):
    assert progress.step_label(table) == label


def test_steps_are_counted_only_while_a_line_is_shown(capsys):
    progress.step("sim_00000000_before")  # no line: nothing happens
    with progress.shown("working", enabled=False):
        progress.step("sim_00000000_hidden")
    assert capsys.readouterr().err == ""
    with progress.shown("simulating 'Power Users'"):
        progress.step("sim_3db5b63b_versions")
        progress.step("sim_3db5b63b_resolution")
    progress.step("sim_00000000_after")
    states = _lines(capsys.readouterr().err)
    assert "simulating 'Power Users': 2 steps [00:00], resolution" in states
    assert not any("after" in s or "hidden" in s for s in states)


def test_every_table_an_engine_writes_is_a_step(db, capsys):
    from cohortlab import Lab

    with Lab(db, read_only=True) as lab, progress.shown("simulating"):
        lab.simulate("Power Users")
    states = _lines(capsys.readouterr().err)
    counts = [int(s.split(": ")[1].split(" steps")[0]) for s in states]
    assert max(counts) >= 15  # a simulation writes some twenty tables
    assert any(s.endswith(", waterfall") for s in states)


@pytest.mark.parametrize("args, description", [
    (["simulate", "--cohort", "Power Users", "--no-store"], "simulating 'Power Users'"),
    (["verify", "--cohort", "Power Users", "--no-store"], "verifying 'Power Users'"),
    (["remedies", "--cohort", "Power Users"], "valuing the remedies of 'Power Users'"),
    (["migrate", "compare"], "predicting the match rate of each plan"),
    (["export", "--out", "OUT", "--overwrite"], "exporting DB"),
    (["explain", "--cohort", "Power Users", "--user", "MEMBER"], "explaining a member of 'Power Users'"),
])
def test_long_commands_show_progress_on_stderr_and_the_same_results_on_stdout(db, tmp_path, args, description):
    args = [str(tmp_path / "out") if a == "OUT" else _member(db) if a == "MEMBER" else a for a in args]
    description = description.replace("DB", db)
    argv = (args[:2] + ["--db", db] + args[2:]) if args[0] == "migrate" else ([args[0], "--db", db] + args[1:])
    shown = CliRunner().invoke(main, argv + ["--progress"])
    quiet = CliRunner().invoke(main, argv + ["--no-progress"])
    default = CliRunner().invoke(main, argv)  # stderr is no terminal here, as in a cron job
    assert shown.exit_code == quiet.exit_code == default.exit_code == 0, (shown.output, quiet.output)
    states = _lines(shown.stderr)
    assert states and all(s.startswith(f"{description}: ") for s in states), states
    assert max(int(s.split(": ")[1].split(" steps")[0]) for s in states) >= 5
    assert description not in quiet.stderr and description not in default.stderr
    if "--user" in args:  # an email or a phone number may be the user: the line names the cohort only
        assert args[args.index("--user") + 1] not in shown.stderr
    # the results are the same, without a trace of the line (migrate writes tables: same text)
    assert shown.stdout == quiet.stdout


def _member(db: str) -> str:
    """A distinct_id of the cohort's latest snapshot (the line of ``explain`` never names the user)."""
    from cohortlab import Lab

    with Lab(db, read_only=True) as lab:
        return lab.engine.query_rows(
            "SELECT min(m.distinct_id) FROM mp_cohort_members m JOIN mp_cohort_snapshots s USING (snapshot_id) "
            "JOIN mp_cohorts c USING (cohort_id) WHERE c.name = 'Power Users'")[0][0]


def test_a_cohort_name_reaches_the_progress_line_escaped(db):
    """The line names the cohort as typed: an escape sequence in it is shown, not run."""
    r = CliRunner().invoke(main, ["simulate", "--db", db, "--cohort", "Power\x1b]0;PWNED\x07Users", "--progress"])
    assert r.exit_code != 0  # no such cohort
    assert "\x1b" not in r.stderr and "\x07" not in r.stderr
    assert "simulating 'Power\\x1b]0;PWNED\\x07Users'" in r.stderr
