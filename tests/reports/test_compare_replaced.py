"""The change since the previous run when a run replaces it (``--overwrite`` into a fixed
folder, the scheduler's ``--out reports/latest``): the index compares with the run it replaces,
also on a night a notebook fails, and keeps its figures for the next run; and the change of a
figure is never "no change" when the values differ."""

import json
from pathlib import Path

from cohortlab.report.output import prepare_output_dir, releasing_claims
from cohortlab.report.pages import _fmt_change, _fmt_value, write_index
from cohortlab.report.runner import NotebookResult

CONTEXT = {"cohorts": ["C"], "settings": "fallback data"}


def _as_pages_say() -> dict:
    """The context of a page of the default settings, as a failed run's index finds them alone."""
    from cohortlab.settings import settings_summary

    return {"cohorts": ["C"], "settings": settings_summary(None)}


def _result(out: Path, name: str, headline: dict | None, units: dict | None = None) -> NotebookResult:
    """A notebook that wrote ``headline`` in its metrics.json; None: one that failed."""
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    if headline is None:
        return NotebookResult(name=name, source=Path(f"{name}.ipynb"), ipynb=folder / f"{name}.ipynb",
                              error="failed in cell 3")
    doc = {"title": name.upper(), "headline": headline, "headline_units": units or {}, "context": CONTEXT}
    (folder / "metrics.json").write_text(json.dumps(doc), encoding="utf-8")
    return NotebookResult(name=name, source=Path(f"{name}.ipynb"), ipynb=folder / f"{name}.ipynb",
                          metrics_path=folder / "metrics.json", metrics=doc)


@releasing_claims  # as run_report: the replaced run waits aside until the run ends, then is removed
def _run(out: Path, figures: dict, as_of: str, source: Path, overwrite: bool = True, settings: dict | None = None,
         context: dict | None = None, cohorts: list | None = None) -> str:
    out = prepare_output_dir(out, overwrite=overwrite, hold=True)
    results = [_result(out, name, headline, {"rate": "percent"}) for name, headline in figures.items()]
    if context is not None:
        for r in results:
            if r.metrics:
                r.metrics["context"] = context
    return write_index(out, results, {"source": str(source), "as_of": as_of, "settings": settings,
                                      "cohorts": cohorts}).read_text()


def _cards(index: str) -> dict[str, str]:
    return {card.split("<h2>")[1].split("</h2>")[0]: card for card in index.split('<div class="card')[1:]}


def test_a_change_the_shown_values_make_visible_is_never_no_change():
    """A change under 0.05 points read "no change" while the shown values differed (HTML: ``&lt;``)."""
    assert _fmt_change(0.92855, 0.92845, "percent") == "+&lt;0.1 pts"  # 92.8% -> 92.9%
    assert _fmt_change(0.0, 0.0004, "percent") == "−&lt;0.1 pts"  # <0.1% -> 0.0%
    assert _fmt_change(0.928451, 0.928450, "percent") == "+&lt;0.1 pts"  # a change, however small
    assert _fmt_change(0.5, 0.5, "percent") == "no change"
    assert _fmt_change(0.9, 0.8, "percent") == "+10.0 pts" and _fmt_change(0.8, 0.9, "percent") == "−10.0 pts"
    assert _fmt_change(1.004, 1.0) == "+&lt;0.01" and _fmt_change(2.5, 1.25) == "+1.25"
    assert _fmt_change(45, 40) == "+5" and _fmt_change(40, 40) == "no change" and _fmt_change(3, None) == "new"


def test_overwrite_compares_with_the_run_it_replaces(tmp_path):
    """``--out reports/latest`` on day 1, then ``--overwrite`` on day 2: the index said "No
    previous run in this folder to compare with." (the replaced run hidden while the new one is
    written, and only sibling folders looked at)."""
    reports, world = tmp_path / "reports", tmp_path / "world"
    latest = reports / "latest"
    _run(latest, {"m": {"members": 40, "rate": 0.92845}}, "2026-02-26", world, overwrite=False)
    index = _run(latest, {"m": {"members": 45, "rate": 0.92855}}, "2026-02-27", world)
    assert "No previous run" not in index
    assert "Compared with the run this one replaced (figures as of 2026-02-26 00:00 UTC)" in index
    assert "change since the run this one replaced</th>" in index
    assert '<td class="d">+5</td>' in index and '<td class="d">+&lt;0.1 pts</td>' in index
    assert [p.name for p in reports.iterdir()] == ["latest"]  # the replaced run is gone, its figures kept
    kept = json.loads((latest / "replaced" / "m" / "metrics.json").read_text())
    assert kept["headline"] == {"members": 40, "rate": 0.92845}
    assert json.loads((latest / "replaced" / "run.json").read_text())["data_time"] == "2026-02-26T00:00:00"
    # the next day compares with day 2, not with the figures day 2 kept
    day3 = _run(latest, {"m": {"members": 47, "rate": 0.92855}}, "2026-02-28", world)
    assert "figures as of 2026-02-27 00:00 UTC" in day3 and '<td class="d">+2</td>' in day3
    assert json.loads((latest / "replaced" / "m" / "metrics.json").read_text())["headline"]["members"] == 45
    assert not (latest / "replaced" / "replaced").exists()  # nothing older is needed
    # a run of other settings replacing it is not compared with it, by the siblings' rule
    other = _run(latest, {"m": {"members": 1}}, "2026-03-01", world, settings={"snapshot_ttl": "1d"})
    assert "change since" not in other and not (latest / "replaced").exists()
    assert ("No comparable previous run in this folder: the run this one replaced reported on another data "
            "source") in other  # not "the 1 other run": it is removed once this run ends


def test_a_failed_night_keeps_the_replaced_runs_figures_for_the_reader_and_the_next_night(tmp_path):
    """Day 2's "m" fails and its report still replaces day 1's: its index compares "g" with day
    1, and the failed card shows day 1's figures of "m"; day 3 compares "m" with day 1's figures
    (kept by day 2), "g" with day 2's."""
    reports, world = tmp_path / "reports", tmp_path / "world"
    latest = reports / "latest"
    _run(latest, {"m": {"members": 40}, "g": {"unmatched": 7}}, "2026-02-26", world, overwrite=False)
    night2 = _cards(_run(latest, {"m": None, "g": {"unmatched": 9}}, "2026-02-27", world))
    assert "change since the run this one replaced</th>" in night2["G"] and '<td class="d">+2</td>' in night2["G"]
    assert "FAILED" in night2["M"] and "<td>members</td><td class=v>—</td><td class=\"d\">was 40</td>" in night2["M"]
    night3 = _cards(_run(latest, {"m": {"members": 45}, "g": {"unmatched": 8}}, "2026-02-28", world))
    assert ("change since the run before the one this one replaced (the run this one replaced has no figures "
            "of this report)") in night3["M"] and '<td class="d">+5</td>' in night3["M"]
    assert "change since the run this one replaced</th>" in night3["G"] and '<td class="d">−1</td>' in night3["G"]
    # day 3 keeps day 2's figures, and day 1's of "m" only, which day 2 has none of
    assert json.loads((latest / "replaced" / "g" / "metrics.json").read_text())["headline"] == {"unmatched": 9}
    assert not (latest / "replaced" / "m").exists()
    assert sorted(p.name for p in (latest / "replaced" / "replaced").iterdir()) == ["m", "run.json"]
    night4 = _cards(_run(latest, {"m": {"members": 46}, "g": {"unmatched": 8}}, "2026-03-01", world))
    assert "change since the run this one replaced</th>" in night4["M"] and '<td class="d">+1</td>' in night4["M"]
    assert not (latest / "replaced" / "replaced").exists()


def test_a_report_run_with_overwrite_compares_with_the_run_it_replaced(tmp_path):
    """The scheduler's case end to end (tiny notebooks): a run with --overwrite into a fixed
    folder, one notebook failing, compares with the run it replaced."""
    import nbformat

    from cohortlab import Lab
    from cohortlab.report.runner import run_report
    from tests.reports.test_runner import BROKEN, GOOD, _notebook

    db = tmp_path / "x.duckdb"
    with Lab(str(db)):
        pass
    good, broken = _notebook(tmp_path / "good.ipynb", GOOD), _notebook(tmp_path / "broken.ipynb", BROKEN)
    latest = tmp_path / "reports" / "latest"
    assert run_report([good], db=db, out=latest).ok
    res = run_report([good, broken], db=db, out=latest, overwrite=True)
    assert not res.ok
    index = (latest / "index.html").read_text()
    assert "Compared with the run this one replaced" in index and '<td class="d">no change</td>' in index
    assert json.loads((latest / "replaced" / "good" / "metrics.json").read_text())["headline"]["members"] == 42
    assert [p.name for p in latest.parent.iterdir()] == ["latest"]
    assert nbformat.read(str(latest / "good" / "good.ipynb"), as_version=4)


def test_a_night_every_notebook_failed_with_every_cohort_compares_with_and_keeps_the_replaced_run(tmp_path):
    """No page said which cohorts "all" meant (every notebook failed, no context): run.json
    recorded cohorts "all" against the replaced run's resolved list, so the night compared with
    nothing, kept nothing, and counted the replaced run as "1 other run"; the next night had
    nothing to compare with."""
    reports, world = tmp_path / "reports", tmp_path / "world"
    latest = reports / "latest"
    ctx = _as_pages_say()
    _run(latest, {"m": {"members": 40}}, "2026-02-26", world, overwrite=False, context=ctx)  # "all": ["C"]
    night2 = _run(latest, {"m": None}, "2026-02-27", world, context=ctx)
    assert "Compared with the run this one replaced" in night2 and '<td class="d">was 40</td>' in night2
    assert "other run" not in night2
    record = json.loads((latest / "run.json").read_text())
    assert record["cohorts"] == "all" and record["cohorts_given"] == "all"
    assert json.loads((latest / "replaced" / "m" / "metrics.json").read_text())["headline"] == {"members": 40}
    night3 = _cards(_run(latest, {"m": {"members": 45}}, "2026-02-28", world, context=ctx))
    assert '<td class="d">+5</td>' in night3["M"] and "the run before the one this one replaced" in night3["M"]
    # cohorts asked by name are not "all": a failed night of other cohorts is not compared with
    _run(latest, {"m": None}, "2026-03-01", world, cohorts=["D"])
    assert not (latest / "replaced").exists()
    # a run.json of an earlier version (no cohorts_given) with a resolved list: not known to be "all"
    (latest / "run.json").write_text(json.dumps({**record, "cohorts": ["C"], "cohorts_given": None}))
    old = json.loads((latest / "run.json").read_text())
    old.pop("cohorts_given")
    (latest / "run.json").write_text(json.dumps(old))
    assert "Compared with" not in _run(latest, {"m": None}, "2026-03-02", world)


def test_overwrite_with_fewer_notebooks_keeps_the_others_figures(tmp_path):
    """Night 2 ran one notebook of two: its replaced/ kept only that one, so night 3 called every
    figure of the other "new"; and a level with no figures wrote a run.json alone."""
    reports, world = tmp_path / "reports", tmp_path / "world"
    latest = reports / "latest"
    _run(latest, {"m": {"members": 40}, "g": {"unmatched": 7}}, "2026-02-26", world, overwrite=False)
    _run(latest, {"m": {"members": 41}}, "2026-02-27", world)
    assert json.loads((latest / "replaced" / "g" / "metrics.json").read_text())["headline"] == {"unmatched": 7}
    assert not (latest / "replaced" / "replaced").exists()  # no run.json without figures
    _run(latest, {"m": {"members": 42}}, "2026-02-28", world)  # g not run again: kept from deeper
    assert json.loads((latest / "replaced" / "replaced" / "g" / "metrics.json").read_text())["headline"] == \
        {"unmatched": 7}
    assert sorted(p.name for p in (latest / "replaced" / "replaced").iterdir()) == ["g", "run.json"]
    night4 = _cards(_run(latest, {"m": {"members": 43}, "g": {"unmatched": 9}}, "2026-03-01", world))
    assert '<td class="d">+2</td>' in night4["G"] and "new" not in night4["G"]


def test_an_unreadable_number_of_a_previous_run_is_ignored(tmp_path):
    """10**400 crashed the index (OverflowError); NaN and the infinities showed as "−nan", "+inf pts"."""
    huge = 10 ** 400
    for before in (huge, float("nan"), float("inf"), float("-inf")):
        assert _fmt_change(5, before) == "new" and _fmt_change(0.5, before, "percent") == "new"
        assert _fmt_change(None, before, "percent") == ""
        assert _fmt_change(before, 5) == "" and _fmt_value(before, "percent") == "—" and _fmt_value(before) == "—"
    assert _fmt_change(1e308, -1e308) == ""  # a difference out of range
    reports, world = tmp_path / "reports", tmp_path / "world"
    latest = reports / "latest"
    ctx = _as_pages_say()
    _run(latest, {"m": {"members": 40, "rate": 0.5, "n": 3}}, "2026-02-26", world, overwrite=False, context=ctx)
    aside = latest / "m" / "metrics.json"
    aside.write_text(aside.read_text().replace('"members": 40', f'"members": {huge}')
                     .replace('"rate": 0.5', '"rate": NaN'))
    index = _cards(_run(latest, {"m": {"members": 45, "rate": 0.6, "n": 4}}, "2026-02-27", world, context=ctx))["M"]
    assert index.count('<td class="d">new</td>') == 2 and '<td class="d">+1</td>' in index
    assert "nan" not in index.lower() and "inf" not in index
    failed = _cards(_run(latest, {"m": None}, "2026-02-28", world))["M"]
    assert "was 4" in failed
