"""User errors whose fix is in the library readers (settings, migration plans, report
parameters): a file that is not UTF-8 text is one error naming the file for the library too (and
for `report --params`); a plan value of the wrong type names the file and the key."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cohortlab.cli import main

BINARY = b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary, not YAML"
NOT_UTF8 = "not UTF-8 text (invalid byte at offset 0): save it as UTF-8"


def error_line(r) -> str:
    assert r.exit_code not in (0, None), r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


@pytest.fixture
def binary(tmp_path):
    p = tmp_path / "binary.yaml"
    p.write_bytes(BINARY)
    return str(p)


def test_library_readers_name_a_binary_file(binary):
    from cohortlab.migration.plans import MigrationPlan, PlanError, load_plans
    from cohortlab.report.parameters import load_params
    from cohortlab.report.runner import ReportError
    from cohortlab.settings import SettingsError, SyncSettings

    for call, error in ((SyncSettings.from_yaml, SettingsError), (SyncSettings.coerce, SettingsError),
                        (load_plans, PlanError), (MigrationPlan.from_yaml, PlanError), (load_params, ReportError)):
        with pytest.raises(error) as e:
            call(binary)
        assert str(e.value) == f"{binary}: {NOT_UTF8}", call


def test_report_params_binary_is_one_line(binary, tmp_path):
    db = tmp_path / "lab.duckdb"
    db.write_bytes(b"")
    r = CliRunner().invoke(main, ["report", "--db", str(db), "--params", binary, "--out", str(tmp_path / "r")])
    assert error_line(r) == f"error: {binary}: {NOT_UTF8}"
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("value, problem", [
    ("5", "eit_timeline: Input should be a valid list"),
    ("true", "eit_timeline: Input should be a valid list"),
    ("[5]", "eit_timeline.0: Input should be a valid dictionary or instance of EitPeriod"),
    ("[[1, 2, 3]]", "eit_timeline.0: Input should be a valid dictionary or instance of EitPeriod"),
])
def test_a_plan_value_of_the_wrong_type_names_the_file_and_key(tmp_path, value, problem):
    from cohortlab.migration.plans import PlanError, load_plans

    plan = tmp_path / "p.yaml"
    plan.write_text(f"name: p\neit_timeline: {value}\n")
    with pytest.raises(PlanError) as e:
        load_plans(plan)
    assert str(e.value) == f"{plan}: invalid migration plan: {problem}"
    db = tmp_path / "lab.duckdb"
    db.write_bytes(b"")
    r = CliRunner().invoke(main, ["migrate", "plan", "--db", str(db), "--plan", str(plan)])
    assert error_line(r) == f"error: {plan}: invalid migration plan: {problem}"


def test_every_yaml_reader_refuses_a_key_given_twice(tmp_path):
    """PyYAML alone keeps the last of two equal keys; a settings file with `fallback:` twice
    would then run with whichever came last, silently."""
    from cohortlab.migration.plans import MigrationPlan, PlanError, load_plans
    from cohortlab.report.parameters import load_params
    from cohortlab.report.runner import ReportError
    from cohortlab.settings import SettingsError, SyncSettings

    p = tmp_path / "twice.yaml"
    p.write_text("fallback: data\ncadence: 15m\nfallback: strict\n")
    for call, error in ((SyncSettings.from_yaml, SettingsError), (SyncSettings.coerce, SettingsError),
                        (load_plans, PlanError), (MigrationPlan.from_yaml, PlanError), (load_params, ReportError)):
        with pytest.raises(error) as e:
            call(str(p))
        assert str(e.value) == f"{p}: not valid YAML (line 3, column 1: duplicate key 'fallback')", call


def test_a_key_given_twice_inside_a_list_is_refused_with_its_line(tmp_path):
    from cohortlab.settings import SettingsError, SyncSettings

    p = tmp_path / "pauses.yaml"
    p.write_text("pauses:\n  - start: 2026-03-01\n    end: 2026-03-02\n    start: 2026-03-03\n")
    with pytest.raises(SettingsError, match=r"line 4, column 5: duplicate key 'start'"):
        SyncSettings.from_yaml(str(p))


def test_yaml_merge_keys_may_still_be_overridden(tmp_path):
    from cohortlab.errors import read_yaml_file

    p = tmp_path / "merge.yaml"
    p.write_text("base: &b {fallback: data, cadence: 1h}\nstrict:\n  <<: *b\n  fallback: strict\n")
    assert read_yaml_file(p)["strict"] == {"fallback": "strict", "cadence": "1h"}


def test_an_impossible_date_in_a_plan_or_a_migrate_settings_file_is_one_line_naming_the_file(tmp_path):
    """YAML reads `2026-02-30` as a date and Python refuses it with a ValueError, which is no
    YAMLError: `migrate plan --plan` printed a traceback."""
    from cohortlab.migration.plans import MigrationPlan, PlanError, load_plans

    plan = tmp_path / "p.yaml"
    plan.write_text("name: p\neit_timeline:\n  - {since: null, eit: customer_id}\n"
                    "  - {since: 2026-02-30, eit: mparticle_id}\n")
    problem = f"{plan}: not valid YAML (an impossible date: day is out of range for month)"
    for call in (load_plans, MigrationPlan.from_yaml):
        with pytest.raises(PlanError) as e:
            call(plan)
        assert str(e.value) == problem
    db = tmp_path / "lab.duckdb"
    db.write_bytes(b"")
    for cmd in (["migrate", "plan", "--db", str(db), "--plan", str(plan)],
                ["migrate", "validate", "--db", str(db), "--plan", str(plan), "--cohort", "c"]):
        assert error_line(CliRunner().invoke(main, cmd)) == f"error: {problem}"
    settings = tmp_path / "s.yaml"
    settings.write_text("event_identity_cutoff: 2026-02-30\n")
    good = tmp_path / "good.yaml"
    good.write_text("name: good\n")
    r = CliRunner().invoke(main, ["migrate", "plan", "--db", str(db), "--plan", str(good), "--settings", str(settings)])
    assert error_line(r) == (f"error: bad settings file: {settings}: not valid YAML (an impossible date: day is out "
                             "of range for month)")


def test_an_impossible_date_is_one_line_naming_the_file_in_every_yaml_file(tmp_path):
    """The same for every YAML file cohortlab reads (read_yaml_file): `simulate --settings` with
    2026-02-30 printed a traceback, and so did the report's --params."""
    settings = tmp_path / "s.yaml"
    settings.write_text("event_identity_cutoff: 2026-02-30\n")
    problem = f"{settings}: not valid YAML (an impossible date: day is out of range for month)"
    from cohortlab.errors import CohortlabError, read_yaml_file
    from cohortlab.settings import SettingsError, SyncSettings

    with pytest.raises(SettingsError) as e:
        SyncSettings.from_yaml(settings)
    assert str(e.value) == problem
    with pytest.raises(CohortlabError) as e:
        read_yaml_file(settings)
    assert str(e.value) == problem
    db = tmp_path / "lab.duckdb"
    db.write_bytes(b"")
    r = CliRunner().invoke(main, ["simulate", "--db", str(db), "--cohort", "c", "--settings", str(settings)])
    assert error_line(r) == f"error: bad settings file: {problem}"
    r = CliRunner().invoke(main, ["report", "--db", str(db), "--params", str(settings)])
    assert error_line(r).startswith("error: ") and "an impossible date: day is out of range for month" in error_line(r)


def test_an_impossible_date_or_a_5000_digit_number_in_a_report_parameter_is_one_line(tmp_path):
    """`report -p as_of=2026-02-30` printed a traceback (YAML reads a date, Python refuses it: a
    ValueError, no YAMLError), and a number of 5,000 digits in a settings file or a -p value was
    called "an impossible date" (Python refuses to convert an integer of over 4,300 digits). Each is one line naming the parameter or the file."""
    db = tmp_path / "lab.duckdb"
    db.write_bytes(b"")
    r = CliRunner().invoke(main, ["report", "--db", str(db), "-p", "as_of=2026-02-30"])
    assert error_line(r) == ("error: -p as_of: not a usable YAML value (an impossible date: day is out of range "
                             "for month)")
    r = CliRunner().invoke(main, ["report", "--db", str(db), "-p", "as_of=" + "9" * 5000])
    assert error_line(r) == "error: -p as_of: not a usable YAML value (a number of more than 4,300 digits)"
    settings = tmp_path / "s.yaml"
    settings.write_text("sync:\n  start: " + "9" * 5000 + "\n")
    r = CliRunner().invoke(main, ["simulate", "--db", str(db), "--cohort", "c", "--settings", str(settings)])
    assert error_line(r) == f"error: bad settings file: {settings}: not valid YAML (a number of more than 4,300 digits)"
