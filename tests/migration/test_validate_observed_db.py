"""``cohortlab migrate validate --observed-db``: the engineer's before → after check from the
command line. The exports taken before the flip are in one database, those taken after it in
another; the command compares the plan's prediction (from the first) with what the second shows,
as the report's EIT page does with ``observed_db`` (the command could only compare
within one database)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cohortlab import Lab
from cohortlab.cli import main
from cohortlab.migration.plans import MigrationPlan
from cohortlab.report import insights
from tests.worlds import small_loaded_world

PLAN = "name: switch only\neit_timeline:\n  - {since: null, eit: customer_id}\n  - {since: 2026-02-01, eit: mparticle_id}\n"


@pytest.fixture(scope="module")
def _loaded(tmp_path_factory):
    """{scenario: a database file of its 600-user world (seed 1)}, generated and loaded once per
    module (each of the three tests loaded mid_migration again); tests copy it before use."""
    cache = {}

    def get(scenario: str) -> Path:
        if scenario not in cache:
            folder = tmp_path_factory.mktemp(f"observed-{scenario}")
            cache[scenario] = Path(small_loaded_world(folder, users=600, seed=1, scenario=scenario))
        return cache[scenario]

    return get


@pytest.fixture
def _db(_loaded):
    """``_db(tmp_path, scenario)``: a copy of the scenario's loaded database in ``tmp_path``
    (the commands store their results in --db: nothing written reaches another test)."""
    def copy(tmp_path, scenario: str) -> Path:
        db = tmp_path / f"{scenario}.duckdb"
        shutil.copyfile(_loaded(scenario), db)
        return db

    return copy


def test_validate_against_the_exports_of_after_the_flip_in_another_database(tmp_path, _db):
    before, after = _db(tmp_path, "customer_id_legacy"), _db(tmp_path, "mid_migration")  # the same people
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    r = CliRunner().invoke(main, ["migrate", "validate", "--db", str(before), "--observed-db", str(after),
                                  "--plan", str(plan), "--cohort", "Power Users"])
    assert r.exit_code == 0, r.output
    with Lab(str(before), read_only=True) as lab:  # what the report's page computes
        v = insights.migration_validation(lab, [MigrationPlan.from_yaml(plan)], None, ["Power Users"],
                                          observed_db=str(after)).results["Power Users"]
    assert v.users["distinct_id"].nunique() > 0
    assert r.output.strip().splitlines()[-1] == v.verdict
    assert f"as of: {v.at:%Y-%m-%d %H:%M:%S} UTC" in r.output.splitlines()[0]

    # within one database (the default), the same command compares with --db's own exports
    alone = CliRunner().invoke(main, ["migrate", "validate", "--db", str(before), "--plan", str(plan),
                                      "--cohort", "Power Users"])
    assert alone.exit_code == 0 and alone.output.strip().splitlines()[-1] != v.verdict

    # a cohort the later exports do not have is one line naming the option
    r = CliRunner().invoke(main, ["migrate", "validate", "--db", str(before), "--observed-db", str(after),
                                  "--plan", str(plan), "--cohort", "Nope"])
    assert r.exit_code == 1 and r.stderr.strip().startswith("error: --observed-db: unknown cohort 'Nope'")


def test_validate_says_when_db_s_events_end_well_before_the_observation(tmp_path, _db):
    """--db's events cut a month before the observed exports: "0 of them with activity after the
    export" read as if no member had been active since, while the observed side's events (not
    read) showed them active (a review of migration validation). The command says what it cannot count."""
    after = _db(tmp_path, "mid_migration")
    before = tmp_path / "before.duckdb"
    shutil.copy(after, before)
    with Lab(str(before)) as lab:
        lab.engine.execute("DELETE FROM mp_events WHERE time > TIMESTAMP '2026-01-28'")
        last = lab.engine.query_rows("SELECT max(time) FROM mp_events")[0][0]
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    args = ["migrate", "validate", "--db", str(before), "--observed-db", str(after), "--plan", str(plan),
            "--cohort", "Power Users"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    note = r.output.strip().splitlines()[-1]
    assert note.startswith(f"note: --db's events end {last:%Y-%m-%d %H:%M} UTC, ") and \
        note.endswith("day(s) before the observed time: activity in between is neither in the prediction nor counted "
                      "as activity after the export (--activity repeat projects --db's activity up to it)")
    repeat = CliRunner().invoke(main, args + ["--activity", "repeat"])  # projected: nothing to say
    assert repeat.exit_code == 0 and "note:" not in repeat.output


def test_validate_show_limits_the_members_listed_and_0_lists_none(tmp_path, _db):
    """``--show N`` prints the first N members that differ; ``--show 0`` prints none, not a heading
    "first 0 of N" over pandas' "Empty DataFrame" text."""
    db = _db(tmp_path, "mid_migration")
    plan = tmp_path / "plan.yaml"
    plan.write_text("name: do nothing\neit_timeline:\n  - {since: null, eit: customer_id}\n")
    args = ["migrate", "validate", "--db", str(db), "--plan", str(plan), "--cohort", "Power Users"]
    two = CliRunner().invoke(main, [*args, "--show", "2"])
    assert two.exit_code == 0, two.output
    heading = [line for line in two.output.splitlines() if line.startswith("members that differ")]
    assert len(heading) == 1 and heading[0].startswith("members that differ (first 2 of ")
    none = CliRunner().invoke(main, [*args, "--show", "0"])
    assert none.exit_code == 0, none.output
    assert "members that differ" not in none.output and "Empty DataFrame" not in none.output
    assert none.output.strip().splitlines()[-1] == two.output.strip().splitlines()[-1]  # the same verdict
