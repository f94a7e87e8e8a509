"""Report parameters are data of a declared type, never code."""

import base64

import pytest
import yaml

from cohortlab.report.parameters import PARAMETERS, ParameterError, validate

DECLARED = ["db", "data", "cohorts", "as_of", "settings", "output_dir", "show_personal_data"]


def yaml_value(text: str):
    return yaml.safe_load(text)


def test_plain_values_pass_and_are_normalised():
    got = validate({"as_of": yaml_value("2026-03-01"), "cohorts": yaml_value("[Power Users, 'a\"b']"),
                    "show_personal_data": True, "db": "x.duckdb"}, DECLARED)
    assert got == {"as_of": "2026-03-01T00:00:00Z", "cohorts": ["Power Users", 'a"b'],
                   "show_personal_data": True, "db": "x.duckdb"}


def test_a_cohort_may_be_given_by_its_id_which_yaml_reads_as_a_number():
    """`cohortlab report -p cohorts=1000` said "expected text, got a int value", where papermill's
    `-p cohorts 1000` ran (the docs give a cohort by one id; a review of scheduled reports)."""
    assert validate({"cohorts": yaml_value("1000")}, DECLARED) == {"cohorts": "1000"}
    assert validate({"cohorts": yaml_value("[1000, Power Users]")}, DECLARED) == {"cohorts": ["1000", "Power Users"]}
    for text in ("1000.5", "true", "[true]"):
        with pytest.raises(ParameterError, match="cohorts.*: expected text"):
            validate({"cohorts": yaml_value(text)}, DECLARED)


def test_a_binary_yaml_value_is_refused():
    payload = base64.b64encode(b'"; import os; os.system("id"); _x="').decode()
    with pytest.raises(ParameterError, match="as_of: a binary value"):
        validate({"as_of": yaml_value(f"!!binary {payload}")}, DECLARED)


@pytest.mark.parametrize("text", ["{a: 1}", "[[1]]", ".nan", "[{a: 1}]"])
def test_non_plain_values_are_refused(text):
    with pytest.raises(ParameterError):
        validate({"cohorts": yaml_value(text)}, DECLARED)


def test_unknown_parameter_names_the_known_ones_and_the_nearest():
    with pytest.raises(ParameterError, match=r"unknown parameter 'asof' \(did you mean as_of\?\).*cohorts"):
        validate({"asof": "2026-03-01"}, DECLARED)


def test_types_are_checked():
    with pytest.raises(ParameterError, match="show_personal_data: expected true or false"):
        validate({"show_personal_data": "yes please"}, DECLARED)
    with pytest.raises(ParameterError, match="as_of"):
        validate({"as_of": "next tuesday"}, DECLARED)
    with pytest.raises(ParameterError, match="db: expected text"):
        validate({"db": 3}, DECLARED)


def test_every_notebook_parameter_has_a_declared_type():
    import papermill

    from cohortlab.report.runner import NOTEBOOKS_DIR

    for nb in sorted(NOTEBOOKS_DIR.glob("*.ipynb")):
        for name in papermill.inspect_notebook(str(nb)):
            assert name in PARAMETERS, f"{nb.name}: parameter {name} has no type in report/parameters.py"


def test_a_notebook_run_by_papermill_takes_a_time_as_cohortlab_report_gives_it():
    """papermill -f p.yaml with `as_of: 2026-02-28` (a YAML date) showed "2026-02-28" in the page's
    context, where `cohortlab report` showed "2026-02-28 00:00 UTC" (a review of scheduled reports):
    the setup cell reads a time into the report's form."""
    import datetime as dt

    from cohortlab.errors import SettingsError
    from cohortlab.report.notebook import time_parameter

    report_form = validate({"as_of": yaml_value("2026-02-28")}, DECLARED)["as_of"]
    assert time_parameter(dt.date(2026, 2, 28), "as_of") == time_parameter("2026-02-28", "as_of") == report_form
    assert time_parameter("2026-03-01T05:00:00+02:00", "as_of") == "2026-03-01T03:00:00Z"
    assert time_parameter(None, "since") is None
    with pytest.raises(SettingsError, match="since"):
        time_parameter("next tuesday", "since")
