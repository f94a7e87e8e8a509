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
        metrics.Headline().add("rate", 0.5, "pct", key="rate")


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


def _run(reports: Path, name: str, source: Path, cohorts: list[str], settings: str, members: int) -> str:
    """One run in ``reports``: a notebook with one headline figure; returns its index.html."""
    import os
    import time

    out = reports / name
    out.mkdir(parents=True)
    (out / ".cohortlab-report").write_text("written by cohortlab report\n")
    doc = {"title": "Members", "headline": {"members": members},
           "context": {"cohorts": cohorts, "settings": settings}}
    index = write_index(out, [_result(out, "m", doc)], {"source": str(source)})
    age = {"2026-03-01": 300, "2026-03-08": 200, "2026-03-15": 100}.get(name, 0)  # older runs first
    os.utime(index, (time.time() - age, time.time() - age))
    return index.read_text()


def test_the_change_is_only_against_a_previous_run_of_the_same_source_cohorts_and_settings(tmp_path):
    reports, world, other = tmp_path / "reports", tmp_path / "world", tmp_path / "legacy"
    _run(reports, "2026-03-01", world, ["Power Users"], "fallback data; no pauses", 40)
    _run(reports, "2026-03-08", other, ["Power Users"], "fallback data; no pauses", 1000)  # another world
    _run(reports, "2026-03-15", world, ["Buyers"], "fallback data; no pauses", 7)  # other cohorts
    index = _run(reports, "2026-03-22", world, ["Power Users"], "fallback data; no pauses", 45)
    assert "Compared with the previous run of the same data source, cohorts and settings" in index
    assert 'href="../2026-03-01/index.html"' in index and "change since 2026-03-01" in index
    assert '<td class="d">+5</td>' in index  # 45 against 40, not against the other world's 1,000
    assert "2026-03-08" not in index and "2026-03-15" not in index


def test_no_comparable_previous_run_says_so_and_shows_no_change(tmp_path):
    reports = tmp_path / "reports"
    _run(reports, "2026-03-01", tmp_path / "legacy", ["Power Users", "Recent Purchasers"], "fallback data", 3374)
    _run(reports, "2026-03-08", tmp_path / "esc", ["Power Users", "Recent Purchasers"], "fallback strict", 1280)
    index = _run(reports, "2026-03-15", tmp_path / "esc", ["Power Users", "Recent Purchasers"], "fallback data", 1280)
    assert ("No comparable previous run in this folder: the 2 other runs report on another data source, other "
            "cohorts or other settings, so no change is shown.") in index
    assert "change since" not in index and '<td class="d">' not in index


def test_runs_whose_settings_differ_beyond_the_summary_line_are_not_compared(tmp_path):
    """The one-line summary leaves out options (here the ttl): the whole settings decide."""
    reports, world = tmp_path / "reports", tmp_path / "world"
    doc = {"title": "Members", "headline": {"members": 40}, "context": {"cohorts": ["C"], "settings": "fallback data"}}
    for name, ttl in (("a", "3d"), ("b", "1d")):
        out = reports / name
        out.mkdir(parents=True)
        (out / ".cohortlab-report").write_text("written by cohortlab report\n")
        index = write_index(out, [_result(out, "m", doc)], {"source": str(world), "settings": {"snapshot_ttl": ttl}})
    assert "No comparable previous run" in index.read_text()
    out = reports / "c"
    out.mkdir()
    (out / ".cohortlab-report").write_text("written by cohortlab report\n")
    same = write_index(out, [_result(out, "m", doc)], {"source": str(world), "settings": {"snapshot_ttl": "1d"}})
    assert 'href="../b/index.html"' in same.read_text()


def test_a_run_records_what_it_reported_on_without_the_path(tmp_path):
    out = tmp_path / "run"
    doc = {"title": "T", "headline": {}, "context": {"cohorts": ["B", "A"], "settings": "fallback data"}}
    write_index(out, [_result(out, "t", doc)], {"source": str(tmp_path / "world")})
    run = json.loads((out / "run.json").read_text())
    assert run["cohorts"] == ["A", "B"] and run["settings"] == "fallback data"
    assert len(run["source"]) == 16 and str(tmp_path) not in (out / "run.json").read_text()


def test_the_largest_step_says_its_direction_in_words():
    """Not "shared MPID (−) 30": the sign of a step belongs to its name ("largest loss")."""
    loss = {"step": "shared_mpid", "kind": "minus", "users": 30}
    h = metrics.figures_headline_match_rates({"totals": {"members": 9, "matched": 8, "match_rate": 0.9, "audience": 7},
                                              "losses": [loss]})
    assert h["largest loss, all cohorts: shared MPID"] == 30
    h = metrics.figures_headline_match_rates({"totals": {"members": 9, "matched": 8, "match_rate": 0.9, "audience": 7},
                                              "losses": [{**loss, "step": "stale_true", "kind": "plus"}]})
    assert h["largest addition, all cohorts: stale true"] == 30


def test_a_report_that_failed_in_the_last_run_is_compared_with_the_run_before(tmp_path):
    """run2's "m" failed (no metrics.json): run3 compares "m" with run1, and says so; "g", which
    ran every time, with run2."""
    import os
    import time

    reports, world = tmp_path / "reports", tmp_path / "world"
    context = {"cohorts": ["C"], "settings": "fallback data"}

    def run(name: str, m: int | None, g: int, age: int) -> str:
        out = reports / name
        out.mkdir(parents=True)
        (out / ".cohortlab-report").write_text("written by cohortlab report\n")
        gaps = _result(out, "g", {"title": "Gaps", "headline": {"unmatched": g}, "context": context})
        members = (_result(out, "m", {"title": "Members", "headline": {"members": m}, "context": context})
                   if m is not None else
                   NotebookResult(name="m", source=Path("m.ipynb"), ipynb=out / "m" / "m.ipynb", error="failed in cell 3"))
        index = write_index(out, [members, gaps], {"source": str(world)})
        os.utime(index, (time.time() - age, time.time() - age))
        return index.read_text()

    run("run1", 40, 7, 300)
    run("run2", None, 9, 200)
    index = run("run3", 45, 8, 0)
    members_card, gaps_card = index.split('<div class="card')[1:]
    assert "change since run1 (run2 has no figures of this report)" in members_card
    assert '<td class="d">+5</td>' in members_card  # 45 against run1's 40, not "new"
    assert "change since run2</th>" in gaps_card and '<td class="d">−1</td>' in gaps_card


def test_a_backfill_compares_with_the_run_of_the_latest_earlier_data_not_the_newest_run(tmp_path):
    """Daily runs as of Feb 26 and 27, then a backfill as of Feb 24 (an orchestrator re-running a
    past interval): the backfill is no change "since" later data; the next daily run, as of Feb
    28, compares with Feb 27's, not with the newer backfill; a run as of each cohort's latest
    data is placed by its pages' data time."""
    import os
    import time

    reports, world = tmp_path / "reports", tmp_path / "world"

    def run(name: str, members: int, age: int, as_of: str | None = None, latest: str | None = None) -> str:
        out = reports / name
        out.mkdir(parents=True)
        (out / ".cohortlab-report").write_text("written by cohortlab report\n")
        ctx = ui.context(["C"], [latest] if latest else None, as_of=as_of)
        doc = {"title": "Members", "headline": {"members": members}, "context": ctx}
        index = write_index(out, [_result(out, "m", doc)], {"source": str(world), "as_of": as_of})
        os.utime(index, (time.time() - age, time.time() - age))
        return index.read_text()

    run("day26", 500, 400, as_of="2026-02-26T00:00:00Z")
    run("day27", 547, 300, latest="2026-02-27T00:00:00")  # no as_of: each cohort's latest data
    backfill = run("back24", 518, 200, as_of="2026-02-24")
    assert "No comparable previous run in this folder: the 2 runs of the same data source, cohorts and " \
           "settings have figures as of a later time than this run's, so no change is shown." in backfill
    assert "change since" not in backfill
    day28 = run("day28", 560, 0, as_of="2026-02-28T00:00:00Z")
    assert "change since day27" in day28 and '<td class="d">+13</td>' in day28
    assert "(figures as of 2026-02-27 00:00 UTC)" in day28
    assert json.loads((reports / "day28" / "run.json").read_text())["data_time"] == "2026-02-28T00:00:00"
    back25 = run("back25", 530, 0, as_of="2026-02-25")
    assert "change since back24" in back25 and '<td class="d">+12</td>' in back25


def test_a_planted_or_damaged_run_in_a_shared_reports_folder_cannot_stop_the_index(tmp_path):
    """A reports folder shared with others may hold a run whose run.json or metrics.json is any
    JSON (a list, a data_time that is a number, a value nested 100,000 deep): such a run is not
    comparable, or has no figures, and the index is written (each of these raised once every
    notebook had run: AttributeError, TypeError, RecursionError)."""
    damaged = {
        "run.json": ["[]", '{"data_time": 5}', '{"data_time": ["2026"]}', "[" * 100_000 + "]" * 100_000],
        "m/metrics.json": ["[1]", '{"headline": [1, 2]}', '{"headline": "x"}', "[" * 100_000 + "]" * 100_000],
    }
    for i, (file, texts) in enumerate(damaged.items()):
        for j, text in enumerate(texts):
            reports = tmp_path / f"reports{i}{j}"
            _run(reports, "2026-03-01", tmp_path / "world", ["Power Users"], "fallback data", 40)
            if file == "run.json" and text.startswith("{"):  # the run's own record, but for data_time
                record = json.loads((reports / "2026-03-01" / file).read_text())
                text = json.dumps({**record, **json.loads(text)})
            (reports / "2026-03-01" / file).write_text(text)
            index = _run(reports, "2026-03-22", tmp_path / "world", ["Power Users"], "fallback data", 45)
            assert "<td>members</td><td class=v>45</td>" in index, (file, text[:30])
            if file == "run.json":
                assert "No comparable previous run" in index, text[:30]
            else:
                assert 'href="../2026-03-01/index.html"' in index and '<td class="d">new</td>' in index, text[:30]
