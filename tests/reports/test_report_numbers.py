"""One source of truth: every number a reader sees on index.html and on each report page (text
and tables; charts are images) is a figure of that report's metrics.json."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from cohortlab.report.runner import DEFAULT_NOTEBOOKS

# dates and times are context, not figures; "(22.3 s)" is the run time of a notebook
_NOT_FIGURES = [
    re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?(?:\+00:00)?)?(?: UTC)?"),
    re.compile(r"\(\d+(?:\.\d+)? s\)"),
]
_NUMBER = re.compile(r"(?<![\w.$:/-])[−+-]?\d[\d,]*(?:\.\d+)?%?(?![\w])")


def _figures(doc) -> tuple[set[int], list[float]]:
    """Every number in a metrics.json document: integers, floats, and the numbers written inside
    its strings (MPIDs as text, verdict sentences)."""
    ints, floats = set(), []

    def walk(v):
        if isinstance(v, bool) or v is None:
            return
        if isinstance(v, int):
            ints.add(v)
        elif isinstance(v, float):
            floats.append(v)
            if v.is_integer():
                ints.add(int(v))
        elif isinstance(v, str):
            for tok in re.findall(r"-?\d[\d,]*(?:\.\d+)?", v):
                t = tok.replace(",", "")
                (floats.append(float(t)) if "." in t else ints.add(int(t)))
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk({k: doc[k] for k in ("headline", "metrics", "summary")})
    return ints, floats


def _shown(text: str) -> list[str]:
    for pattern in _NOT_FIGURES:
        text = pattern.sub(" ", text)
    return _NUMBER.findall(text)


def _is_figure(token: str, ints: set[int], floats: list[float]) -> bool:
    t = token.replace("−", "-").replace(",", "").lstrip("+")
    if t.endswith("%"):
        p = float(t[:-1])
        return any(abs(f * 100 - p) < 0.051 for f in floats) or (p.is_integer() and int(p) in ints)
    if "." in t:
        v = float(t)
        return any(abs(f - v) < 0.0051 for f in floats)
    v = abs(int(t))
    return v in ints or -v in ints


def _page_text(path: Path) -> str:
    soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
    for tag in soup(["style", "script", "header", "title"]):
        tag.decompose()
    for tag in soup.select("dl.meta, span.meta, p.meta"):
        tag.decompose()
    return soup.get_text(" ")


def _check(text: str, docs: list[dict]) -> list[str]:
    ints, floats = set(), []
    for d in docs:
        i, f = _figures(d)
        ints |= i
        floats += f
    return [tok for tok in _shown(text) if not _is_figure(tok, ints, floats)]


@pytest.mark.parametrize("name", DEFAULT_NOTEBOOKS)
def test_every_number_on_a_report_page_is_in_its_metrics_json(report_run, name):
    out = report_run["out"]
    doc = json.loads((out / name / "metrics.json").read_text())
    text = _page_text(out / name / f"{name}.html")
    assert len(_shown(text)) > 10, "the page should show figures"
    assert _check(text, [doc]) == [], f"{name}.html shows numbers that metrics.json does not hold"


def test_every_number_on_the_index_is_in_the_metrics_json_files(report_run):
    out = report_run["out"]
    for name in DEFAULT_NOTEBOOKS:
        doc = json.loads((out / name / "metrics.json").read_text())
        soup = BeautifulSoup((out / "index.html").read_text(encoding="utf-8"), "html.parser")
        card = next(c for c in soup.select("div.card") if c.h2 and c.h2.get_text() == doc["title"])
        for tag in card.select("span.meta"):
            tag.decompose()
        text = card.get_text(" ")
        assert _shown(text), f"the {name} card should show figures"
        assert _check(text, [doc]) == [], f"the {name} card shows numbers its metrics.json does not hold"


def test_cards_and_pages_agree_on_the_shared_figures(report_run):
    """The same quantity has one value everywhere: members, matched and the match rate (pooled:
    matched / members) on the match-rates, identity-gaps and EIT pages; the audience on the
    match-rates and sync pages."""
    out = report_run["out"]
    m = {n: json.loads((out / n / "metrics.json").read_text()) for n in DEFAULT_NOTEBOOKS}
    totals = m["match_rates"]["metrics"]["totals"]
    gaps = m["identity_gaps"]["metrics"]
    sync = m["sync_timeline"]["metrics"]["totals"]
    assert gaps["members"] == totals["members"] and gaps["unmatched"] == totals["unmatched"]
    assert gaps["unmatched_share"] == pytest.approx(1 - totals["match_rate"])
    assert sync["attribute = true (last run)"] == totals["audience"]
    assert sync["Mixpanel members (last run)"] == totals["members"]
    v = m["eit_migration"]["metrics"]["validation"]
    if v:  # per cohort, as the match-rates page counts each cohort (the EIT page pools nothing)
        cohorts = m["match_rates"]["metrics"]["cohorts"]
        assert v["cohorts"] and "members" not in v
        for c in v["cohorts"]:
            mine = cohorts[c["cohort_name"]]
            assert (c["members"], c["observed_matched"]) == (mine["members"], mine["matched"])
    # every waterfall adds up, and its losses are exactly its non-zero steps, largest first
    for c, f in m["match_rates"]["metrics"]["cohorts"].items():
        steps = [s for s in f["waterfall"] if s["kind"] != "total" and s["count"]]
        assert sorted((s["step"], s["count"]) for s in steps) == sorted((x["step"], x["users"]) for x in f["losses"])
        assert [x["users"] for x in f["losses"]] == sorted((x["users"] for x in f["losses"]), reverse=True)


def test_figures_name_each_card_figure_by_a_stable_key(report_run):
    """A script read the card's figures by their labels, which change with the data ("best plan" /
    "best plan (tie)", "largest loss, all cohorts: shared MPID" / "...: MPID rounded through a
    float"; a review of scheduled reports): `figures` holds each of them by a key that does not."""
    out = report_run["out"]
    m = {n: json.loads((out / n / "metrics.json").read_text()) for n in DEFAULT_NOTEBOOKS}
    for name, doc in m.items():
        assert sorted(doc["figures"].values(), key=repr) == sorted(doc["headline"].values(), key=repr), name
        assert doc["schema_version"] == 1, name  # the layout these keys belong to
    totals = m["match_rates"]["metrics"]["totals"]
    assert {k: m["match_rates"]["figures"][k] for k in ("members", "matched", "audience_simulated")} == {
        "members": totals["members"], "matched": totals["matched"], "audience_simulated": totals["audience"]}
    assert m["match_rates"]["figures"]["largest_step"] == m["match_rates"]["metrics"]["losses"][0]["users"]
    assert m["identity_gaps"]["figures"]["unmatched"] == m["identity_gaps"]["metrics"]["unmatched"]
    assert m["sync_timeline"]["figures"]["true_last_run"] == totals["audience"]
    assert set(m["sync_timeline"]["figures"]) == {"cohorts", "sync_runs", "failed_runs", "members_last_run",
                                                  "true_last_run", "stale_true_last_run", "not_yet_true_last_run"}
    eit = m["eit_migration"]["figures"]
    assert eit["best_plan"] == " = ".join(m["eit_migration"]["metrics"]["best"]) and eit["plans"] == 4
