"""The index page of a report (``cohortlab.report.pages.write_index``), from the ``metrics.json``
of each notebook: headline figures in their units."""

import json
from pathlib import Path

from cohortlab.report import metrics
from cohortlab.report import notebook as ui
from cohortlab.report.pages import write_index
from cohortlab.report.runner import NotebookResult


def _result(out: Path, name: str, doc: dict) -> NotebookResult:
    """A notebook that ran and wrote ``doc`` as its metrics.json."""
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(doc), encoding="utf-8")
    return NotebookResult(name=name, source=Path(f"{name}.ipynb"), ipynb=folder / f"{name}.ipynb",
                          metrics_path=folder / "metrics.json", metrics=doc)


def _cells(index: str) -> dict[str, str]:
    """``{headline label: value shown}`` of an index page."""
    import re

    return dict(re.findall(r"<tr><td>(.*?)</td><td class=v>(.*?)</td>", index))


def _healthy_gaps() -> dict:
    """The identity-gaps figures of a world where every member is matched."""
    return {"unmatched": 0, "unmatched_share": 0.0, "in_mparticle": 0, "by_gap_reason": [], "rule_fixable": 0,
            "never_fixable": 0}


def test_headline_figures_are_shown_in_their_unit_even_at_exactly_0_or_1(tmp_path):
    gaps = ui.publish(None, "identity_gaps", title="Identity gaps", figures={},
                      headline=metrics.figures_headline_identity_gaps(_healthy_gaps()))
    rates = ui.publish(None, "match_rates", title="Match rates", figures={},
                       headline=metrics.figures_headline_match_rates(
                           {"totals": {"members": 216, "matched": 216, "match_rate": 1.0, "audience": 216},
                            "losses": []}))
    assert gaps["headline_units"]["unmatched (of all members)"] == "percent"
    assert gaps["headline_units"]["most frequent gap reason"] == "text"
    index = write_index(tmp_path, [_result(tmp_path, "match_rates", rates),
                                   _result(tmp_path, "identity_gaps", gaps)]).read_text()
    shown = _cells(index)
    assert shown["match rate (of all members)"] == "100.0%"
    assert shown["unmatched (of all members)"] == "0.0%"
    assert shown["most frequent gap reason"] == "—"
    assert shown["Mixpanel cohort members"] == "216" and shown["unmatched members"] == "0"
    assert "None" not in index and "1.00" not in index and "0.00" not in index


def test_a_number_without_a_unit_is_not_guessed_to_be_a_share(tmp_path):
    doc = {"title": "Hand-made", "headline": {"ratio": 0.5, "score": 1.0, "missing": None}}
    shown = _cells(write_index(tmp_path, [_result(tmp_path, "mine", doc)]).read_text())
    assert shown == {"ratio": "0.50", "score": "1", "missing": "—"}


def test_a_headline_unit_must_be_known():
    import pytest

    with pytest.raises(ValueError, match="unknown unit 'pct'"):
        metrics.Headline().add("rate", 0.5, "pct")


def test_a_path_is_shown_relative_to_the_report_folder_or_by_its_name(tmp_path):
    from cohortlab.report.pages import shown_path

    report = tmp_path / "reports" / "2026-03-01"
    assert shown_path(report / "data.duckdb", report) == "data.duckdb"  # --keep-data: inside the report
    assert shown_path(tmp_path / "exports" / "world", report) == "world"  # elsewhere: its name only
    assert shown_path(str(tmp_path / "project.duckdb")) == "project.duckdb"
    assert shown_path(None, report) == ""


def test_metrics_json_holds_no_absolute_path_of_this_machine(tmp_path):
    out = tmp_path / "report" / "match_rates"
    settings = tmp_path / "settings.yaml"
    ui.publish(out, "match_rates", title="Match rates", figures={}, headline={},
               context={"cohorts": ["A"], "source": str(tmp_path / "report" / "data.duckdb"),
                        "settings": "fallback data; no pauses"},
               parameters={"settings": str(settings), "as_of": None})
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["context"]["source"] == "data.duckdb"
    assert doc["context"]["settings"] == "fallback data; no pauses"  # a summary, not a path: as it is
    assert doc["parameters"] == {"settings": "settings.yaml", "as_of": None}
    assert str(tmp_path) not in (out / "metrics.json").read_text()


def test_the_index_names_the_data_source_without_its_absolute_path(tmp_path):
    out = tmp_path / "reports" / "run"
    doc = {"title": "T", "headline": {}}
    index = write_index(out, [_result(out, "t", doc)], {"source": str(tmp_path / "exports")}).read_text()
    assert "<dt>data source</dt><dd>exports</dd>" in index and str(tmp_path) not in index
