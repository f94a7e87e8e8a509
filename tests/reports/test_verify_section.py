"""Observed vs simulated in the reports (docs/reports.md#observed-vs-simulated): the match-rates
notebook's verify section and the index card's line, on worlds whose observed mParticle state is
known (the synth generator plants each cause of disagreement, docs/rules.md#observed-state), and
on one without observed attribute data."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from cohortlab.glossary import cause_words
from cohortlab.simulation.verify import CAUSES

HOSTILE = "<script>alert(2)</script> $x$ *Power* [a](javascript:alert(1))"
SECTION = "Observed in mParticle vs simulated"


# --------------------------------------------------------------------------- reading a page
class _Text(HTMLParser):
    """The visible text of a page, split at its h2 headings; tags and link targets kept apart."""

    def __init__(self):
        super().__init__()
        self.sections: dict[str, list[str]] = {"": []}
        self.tags: dict[str, list[str]] = {"": []}
        self.urls: list[str] = []
        self.scripts: list[str] = []
        self._current, self._stack, self._h2 = "", [], None

    def handle_starttag(self, tag, attrs):
        self._stack.append(tag)
        self.tags[self._current].append(tag)
        self.urls += [v for k, v in attrs if k in ("href", "src") and v and not v.startswith("data:")]
        if tag == "h2":
            self._h2 = []

    def handle_endtag(self, tag):
        if self._stack and self._stack[-1] == tag:
            self._stack.pop()
        if tag == "h2" and self._h2 is not None:
            name = "".join(self._h2).replace("¶", "").strip()
            self._current, self._h2 = name, None
            self.sections.setdefault(name, [])
            self.tags.setdefault(name, [])

    def handle_data(self, data):
        if self._stack and self._stack[-1] in ("script", "style"):
            if self._stack[-1] == "script":
                self.scripts.append(data)
            return
        if self._h2 is not None:
            self._h2.append(data)
        else:
            self.sections[self._current].append(data)


def _page(path: Path) -> _Text:
    p = _Text()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def _flat(parts: list[str]) -> str:
    return re.sub(r"\s+", " ", "".join(parts)).strip()


def _card(index: Path) -> str:
    """The text of the match-rates card of index.html (under its h2)."""
    return _flat(_page(index).sections["Match rates"])


def _expected_line(confusion: dict[str, dict[str, int]], causes: dict[str, int], when: str) -> tuple[str, str]:
    """The card's line written from the truth: observed / simulated audiences (attribute true) at
    the time ``when`` words, agreement over every compared profile, the top cause (most profiles,
    rule order on a tie). Over several cohorts a profile is compared once per cohort, and the
    line says so."""
    obs = sim = compared = agree = both_absent = 0
    for conf in confusion.values():
        for key, n in conf.items():
            s, o = key.split("/")
            obs += n if o == "true" else 0
            sim += n if s == "true" else 0
            compared += n
            agree += n if s == o else 0
            both_absent += n if s == o == "absent" else 0
    disagree = compared - agree
    with_attribute = compared - both_absent
    unit = "profiles" if len(confusion) == 1 else (
        f"profile comparisons ({len(confusion)} cohorts, a profile once per cohort)")
    line = (f"Observed {obs:,} vs simulated {sim:,} profiles with the attribute true in mParticle{when} "
            f"(agreement {(1 - disagree / compared) * 100:.1f}% of {compared:,} {unit}; "
            f"{(1 - disagree / with_attribute) * 100:.1f}% of the {with_attribute:,} where either side has the "
            f"attribute).")
    top = max(((c, causes.get(c, 0)) for c in CAUSES), key=lambda kv: kv[1])
    noun = "disagreement" if disagree == 1 else "disagreements"
    return line, f"Top cause of the {disagree:,} {noun}: {cause_words(top[0])} ({top[1]:,})."


def _when(expected: dict) -> str:
    """The time of the truth's comparison in words: the simulation's (a report as of it), and
    whether it is the snapshot's."""
    at, snapshot_at = pd.Timestamp(expected["at"]), pd.Timestamp(expected["snapshot_at"])
    return f" at {at:%Y-%m-%d %H:%M} UTC" + (", the snapshot's time" if at == snapshot_at else "")


# --------------------------------------------------------------------------- worlds
@pytest.fixture(scope="module")
def observed(tmp_path_factory) -> dict:
    """The demo scenario (observed snapshot with every planted cause) with its first cohort named
    like an attack, loaded into a database and reported on (match_rates only) at the truth's
    times: the simulation at the last snapshot, the snapshot at its planted capture time."""
    from cohortlab import Lab
    from cohortlab.loaders.folder import load_world
    from cohortlab.report.runner import run_report
    from cohortlab.synth import generate

    d = tmp_path_factory.mktemp("verify_section")
    cohorts = [
        {"id": 1000, "name": HOSTILE, "min_count": 10, "window_days": 60},
        {"id": 1001, "name": "Recent Purchasers", "event": "Purchase", "min_count": 1, "window_days": 90},
    ]
    world = generate(str(d / "world"), users=600, seed=5, scenario="demo", cohorts=cohorts)
    manifest = json.loads((d / "world" / "manifest.json").read_text())
    db = d / "world.duckdb"
    with Lab(str(db)) as lab:
        load_world(lab, str(d / "world"))
    ev = manifest["expected_verify"]
    result = run_report(["match_rates"], db=db, out=d / "report",
                        params={"as_of": ev["at"], "snapshot_at": ev["snapshot_at"]})
    assert all(r.ok for r in result.notebooks), [r.error for r in result.notebooks]
    return {"dir": d, "world": world, "db": db, "expected": ev, "out": d / "report",
            "metrics": json.loads((d / "report" / "match_rates" / "metrics.json").read_text())}


@pytest.fixture(scope="module")
def unobserved(observed) -> dict:
    """The same database without any observed cohort attribute (no mParticle snapshot carries
    one): the report runs, the section says so in one line."""
    import duckdb

    from cohortlab.report.runner import run_report

    d = observed["dir"]
    db = d / "unobserved.duckdb"
    shutil.copy(observed["db"], db)
    con = duckdb.connect(str(db))
    con.execute("DELETE FROM mpa_attributes")
    con.execute("DELETE FROM mpa_snapshot_names")  # the names the snapshot loads read
    con.close()
    result = run_report(["match_rates"], db=db, out=d / "report-unobserved")
    assert all(r.ok for r in result.notebooks), [r.error for r in result.notebooks]
    return {"out": d / "report-unobserved",
            "metrics": json.loads((d / "report-unobserved" / "match_rates" / "metrics.json").read_text())}


# --------------------------------------------------------------------------- with observed data
def test_the_figures_equal_the_planted_truth(observed):
    """Per cohort: the confusion table and the disagreements per cause of metrics.json are the
    generator's (which plays the feed independently of cohortlab.simulation)."""
    v = observed["metrics"]["metrics"]["verify"]
    assert v["observed"] and set(v["cohorts"]) == set(observed["expected"]["cohorts"])
    for cohort, expected in observed["expected"]["cohorts"].items():
        got = v["cohorts"][cohort]
        confusion = {f"{row['simulated']}/{o}": n for row in got["confusion"]
                     for o, n in row.items() if o != "simulated" and n}
        assert confusion == expected["confusion"], cohort
        assert {c: n for c, n in got["by_cause"].items() if n} == expected["causes"], cohort
    planted = {c for e in observed["expected"]["cohorts"].values() for c in e["causes"]}
    assert {"snapshot_before_last_run", "attribute_name_differs", "profile_missing_in_snapshot",
            "pause_not_modelled"} <= planted  # the premise: every cause is on the page
    totals = v["totals"]
    for cause in CAUSES:
        assert totals["by_cause"][cause] == sum(e["causes"].get(cause, 0)
                                                for e in observed["expected"]["cohorts"].values())


def test_the_section_shows_the_counts_per_cause_and_the_audiences(observed):
    page = _page(observed["out"] / "match_rates" / "match_rates.html")
    section = _flat(page.sections[SECTION])
    expected = observed["expected"]["cohorts"]
    line, top = _expected_line({c: e["confusion"] for c, e in expected.items()},
                               {k: sum(e["causes"].get(k, 0) for e in expected.values()) for k in CAUSES},
                               _when(observed["expected"]))
    assert line in section and top in section
    for cohort, e in expected.items():
        by_cause = " · ".join(f"{cause_words(c)} {e['causes'][c]:,}" for c in CAUSES if c in e["causes"])
        assert f"{cohort}: observed vs simulated" in section  # the cohort's heading, its name as text
        assert f"Disagreements by cause: {by_cause}." in section, cohort
        disagree = sum(e["causes"].values())
        assert (f"The {disagree:,} profile that disagrees:" if disagree == 1
                else f"The {disagree:,} profiles that disagree:") in section
    # one line of what to do per cause that occurs, once, in the pooled list
    for cause in CAUSES:
        occurs = any(cause in e["causes"] for e in expected.values())
        assert section.count(f"{cause_words(cause)}: ") == (1 if occurs else 0), cause
    for cause in CAUSES:  # the causes in words, in the tables as in the bullets
        assert cause not in section, cause
    assert page.tags[SECTION].count("img") == 1  # the chart
    assert page.tags[SECTION].count("table") == 3 * len(expected)  # audience, confusion, disagreements


def test_the_index_card_shows_observed_vs_simulated_and_the_top_cause(observed):
    expected = observed["expected"]["cohorts"]
    line, top = _expected_line({c: e["confusion"] for c, e in expected.items()},
                               {k: sum(e["causes"].get(k, 0) for e in expected.values()) for k in CAUSES},
                               _when(observed["expected"]))
    card = _card(observed["out"] / "index.html")
    assert f"{line} {top}" in card
    assert observed["metrics"]["card"] == [f"{line} {top}"]  # the line metrics.json holds, shown as is


def test_a_hostile_cohort_name_is_text_in_the_section(observed):
    html = (observed["out"] / "match_rates" / "match_rates.html").read_text(encoding="utf-8")
    assert "<script>alert(2)</script>" not in html
    page = _page(observed["out"] / "match_rates" / "match_rates.html")
    assert not any("alert" in s for s in page.scripts)
    assert not [u for u in page.urls if u.strip().lower().startswith("javascript:")]
    section = _flat(page.sections[SECTION])
    assert f"{HOSTILE}: observed vs simulated" in section  # as written: no markup, no emphasis, no link
    assert f"with {HOSTILE} = true" in section
    # the older attribute name of the hostile cohort (a planted disagreement) is shown as text too
    assert f"carries 'Mixpanel - {HOSTILE}'" in section or "attribute_name_differs" not in \
        observed["expected"]["cohorts"][HOSTILE]["causes"]


def test_the_figures_equal_lab_verify_of_the_demo(report_run, world_lab):
    """`cohortlab demo`'s report (its settings: two export pauses; snapshot time detected) shows
    what Lab.verify gives on the same data."""
    m = json.loads((report_run["out"] / "match_rates" / "metrics.json").read_text())["metrics"]["verify"]
    settings = str(report_run["out"].parent / "settings.yaml")
    assert m["observed"]
    for cohort, got in m["cohorts"].items():
        v = world_lab.verify(cohort, settings=settings)
        assert got["by_cause"] == {c: int(n) for c, n in zip(v.causes.cause, v.causes.profiles)}
        assert got["compared"] == v.compared and got["disagreements"] == len(v.disagreements)
        assert (got["observed_true"], got["simulated_true"]) == tuple(
            v.audience.set_index("audience").loc["= true", ["observed", "simulated"]])
        assert got["agreement"] == pytest.approx(v.agreement)
        assert [r["mpid"] for r in got["disagreement_rows"]] == [str(x) for x in v.disagreements.mpid]


# --------------------------------------------------------------------------- without observed data
def test_without_observed_data_the_section_is_one_line_and_the_card_has_none(unobserved):
    v = unobserved["metrics"]["metrics"]["verify"]
    assert v["observed"] is False and all(not c["observed"] for c in v["cohorts"].values())
    assert unobserved["metrics"]["card"] == []
    page = _page(unobserved["out"] / "match_rates" / "match_rates.html")
    section = _flat(page.sections[SECTION])
    assert section.endswith("No observed state: no loaded mParticle profile carries a cohort attribute, so the "
                            "simulated audience cannot be checked against mParticle.")
    assert "table" not in page.tags[SECTION] and "img" not in page.tags[SECTION]
    card = _card(unobserved["out"] / "index.html")
    assert "Observed" not in card and "Mixpanel cohort members" in card


# --------------------------------------------------------------------------- the words, from figures only
def _figures(by_cause: dict[str, int], cohorts_observed: int = 1, cohorts: int = 1) -> dict:
    full = {c: by_cause.get(c, 0) for c in CAUSES}
    from cohortlab.report.metrics import _top_cause

    return {"observed": True, "totals": {
        "cohorts": cohorts, "cohorts_observed": cohorts_observed, "observed_true": 7, "simulated_true": 9,
        "compared": 40, "disagreements": sum(full.values()), "agreement": 1 - sum(full.values()) / 40,
        "with_attribute": 10, "agreement_with_attribute": 1 - sum(full.values()) / 10,
        "by_cause": full, "top_cause": _top_cause(full)}, "cohorts": {}}


def test_the_top_cause_is_the_largest_and_the_first_in_rule_order_on_a_tie():
    from cohortlab.report.summaries import verify_line

    line = verify_line(_figures({"pause_not_modelled": 2, "profile_missing_in_snapshot": 2, "unexplained": 1}))
    assert line == ("**Observed 7 vs simulated 9** profiles with the attribute true in mParticle (agreement 87.5% "
                    "of 40 profiles; 50.0% of the 10 where either side has the attribute). Top cause of the 5 "
                    "disagreements: **profile not in the snapshot** (2).")
    assert verify_line(_figures({})).endswith("(agreement 100.0% of 40 profiles; 100.0% of the 10 where either side "
                                              "has the attribute). Every profile agrees.")
    assert "(1 of 3 cohorts have observed data)" in verify_line(_figures({}, 1, 3))


def test_the_line_says_the_orphans_are_not_compared_so_its_simulated_count_is_not_the_audience():
    """With ``create_and_update`` the audience beside this line on the index card counts the
    orphans the feed set true; the simulated count compared with mParticle cannot (no MPID): the
    line says so ("simulated 29 profiles with the attribute true in mParticle" beside
    "mParticle audience (attribute = true) 729", 700 of them orphans, unexplained)."""
    from cohortlab.report.summaries import verify_line

    f = _figures({"attribute_name_differs": 2})
    f["totals"]["orphans"] = 706
    assert verify_line(f).startswith(
        "**Observed 7 vs simulated 9** profiles with the attribute true in mParticle (agreement 95.0% of 40 "
        "profiles; 80.0% of the 10 where either side has the attribute; the 706 orphan profiles the feed wrote, "
        "without a known MPID, are not compared).")
    f["totals"]["orphans"] = 0
    assert "orphan" not in verify_line(f)


def test_the_line_names_the_time_of_its_counts():
    """The card shows the audience at the report's as-of time beside this line: "simulated 797"
    beside "audience 794" said nothing of why they differ (a newcomer's walkthrough). The line
    names the time its counts are of, and whether it is the snapshot's."""
    from cohortlab.report.summaries import verify_line

    same = {"observed": True, "snapshot_at": "2026-02-28T12:00:00", "at": "2026-02-28T12:00:00"}
    f = _figures({})
    f["cohorts"] = {"A": same, "B": same}
    assert verify_line(f).startswith("**Observed 7 vs simulated 9** profiles with the attribute true in mParticle "
                                     "at 2026-02-28 12:00 UTC, the snapshot's time (agreement")
    f["cohorts"] = {"A": {**same, "at": "2026-02-20T00:00:00"}}
    assert "true in mParticle at 2026-02-20 00:00 UTC (agreement" in verify_line(f)
    f["cohorts"] = {"A": same, "B": {**same, "snapshot_at": "2026-03-01T00:00:00", "at": "2026-03-01T00:00:00"},
                    "C": {"observed": False}}
    assert "true in mParticle each at its cohort's snapshot time (agreement" in verify_line(f)


def test_a_snapshot_taken_after_the_simulated_time_is_said_to_be_so():
    """A report as of 2026-02-20 (before the sync's first run) compared the snapshot of 2026-02-28
    with a simulation that had written nothing: "Observed 672 vs simulated 0 ... Top cause of the
    673 disagreements: unexplained (673)", and nothing said that the runs in between were not
    simulated."""
    from cohortlab.report.summaries import verify_line, verify_times

    later = {"observed": True, "attribute": "A", "snapshot_at": "2026-02-28T12:00:00", "snapshot_at_from": "given",
             "at": "2026-02-20T00:00:00"}
    same = {**later, "at": "2026-02-28T12:00:00"}
    f = _figures({"unexplained": 5}, 2, 2)
    f["cohorts"] = {"A": later, "B": later}
    assert verify_line(f).endswith(
        "Top cause of the 5 disagreements: **unexplained** (5). Note: the snapshot (2026-02-28 12:00 UTC) was taken "
        "after the simulated time (2026-02-20 00:00 UTC): the runs between the two are not simulated, and what they "
        "wrote is counted among the disagreements.")
    f["cohorts"] = {"A": later, "B": same}
    assert "Note: for 1 of the 2 cohorts compared the snapshot (2026-02-28 12:00 UTC) was taken after" in verify_line(f)
    f["cohorts"] = {"A": same, "B": same}
    assert "Note" not in verify_line(f)
    assert verify_times(later).endswith("The snapshot is later than the simulation: the runs between the two are not "
                                        "simulated, and what they wrote is counted among the disagreements.")
    assert "later" not in verify_times(same)


def test_no_observed_cohort_gives_one_line_and_no_totals():
    from cohortlab.report.metrics import verify_figures
    from cohortlab.report.summaries import verify_summary

    f = verify_figures({"A": None, "B": None})
    assert f["observed"] is False and f["totals"]["agreement"] is None and f["totals"]["top_cause"] is None
    assert "\n" not in verify_summary(f) and verify_summary(f).startswith("No observed state")


# --------------------------------------------------------------------------- in a browser
def test_the_section_and_the_card_render_in_chromium(observed):
    """The page as a reader sees it (headless Chromium from the system packages): the card's line,
    the section's chart loaded, the hostile name as text, no console error."""
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip("headless Chromium not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto((observed["out"] / "index.html").as_uri())
            note = page.locator(".card .note")
            assert note.count() == 1 and note.inner_text() == observed["metrics"]["card"][0]
            page.goto((observed["out"] / "match_rates" / "match_rates.html").as_uri())
            section = page.evaluate("""() => {
                const hs = [...document.querySelectorAll('h2')];
                const i = hs.findIndex(h => h.textContent.includes('Observed in mParticle vs simulated'));
                const out = {images: [], text: ''};
                for (let el = hs[i].closest('.jp-Cell') || hs[i]; el; el = el.nextElementSibling) {
                    if (el !== (hs[i].closest('.jp-Cell') || hs[i]) && el.querySelector('h2')) break;
                    out.text += el.innerText + '\\n';
                    el.querySelectorAll('img').forEach(img => out.images.push([img.complete, img.naturalWidth]));
                }
                return out;
            }""")
            assert section["images"] and all(done and width > 0 for done, width in section["images"])
            assert f"{HOSTILE}: observed vs simulated" in section["text"]
            assert problems == []
        finally:
            browser.close()
