"""What a notebook shows for a result object left as a cell's value (its ``repr``): its figures in
one line and where the rows are, never the members' identifiers (a distinct_id can be an email)
nor a dump of a frame."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import pandas as pd

from cohortlab.loaders.base import LoadReport
from cohortlab.migration.validate import ValidationResult
from cohortlab.simulation.explain import Explanation, Step
from cohortlab.simulation.verify import CAUSES, VerifyResult

AT = datetime(2026, 3, 1, tzinfo=timezone.utc)
EMAIL = "ann.lee@example.com"


def test_a_validation_shows_its_verdict_not_its_members():
    users = pd.DataFrame({"distinct_id": [EMAIL, "b"], "differs": [True, False]})
    v = ValidationResult("switch only", "Power Users", AT, users, pd.DataFrame(), 0.5, 1.0, 1, {},
                         "observed match rate 50.0%, predicted 100.0%; 1 member differs")
    assert repr(v) == ("<ValidationResult of plan 'switch only' for 'Power Users' at 2026-03-01T00:00:00Z: "
                       "observed match rate 50.0%, predicted 100.0%; 1 member differs; .users, .differences, "
                       ".confusion>")
    assert str(v) == v.verdict


def test_an_explanation_shows_its_size_not_the_user():
    e = Explanation("Power Users", EMAIL, AT, "Power Users", [EMAIL, "dev-1"], [42],
                    [Step("member", AT, f"{EMAIL} entered", None)])
    assert EMAIL not in repr(e) and "ann" not in repr(e)
    assert repr(e) == ("<Explanation of one user of 'Power Users' as of 2026-03-01 00:00:00 UTC: 1 steps, "
                       "2 distinct_id(s), 1 MPID(s); .to_text(), .to_frame()>")
    assert EMAIL in e.to_text()  # asked for: the story names the user it was asked about


def test_a_verify_result_shows_its_disagreements_count_not_their_detail():
    causes = pd.DataFrame({"cause": list(CAUSES), "profiles": [2, 0, 1, 0, 0]})
    disagreements = pd.DataFrame({"mpid": [1, 2, 3], "detail": [f"member {EMAIL} holds ..."] * 3})
    v = VerifyResult("Power Users", "Power Users", AT, "option", AT, pd.DataFrame(), pd.DataFrame(), causes,
                     pd.DataFrame(), disagreements, 3, 0, 0)
    assert EMAIL not in repr(v)
    assert repr(v).startswith("<VerifyResult of 'Power Users' (attribute 'Power Users'), snapshot at "
                              "2026-03-01 00:00:00 UTC: 3 profile(s) disagree;")


def test_a_load_report_shows_its_counts_and_prints_its_summary():
    r = LoadReport("mixpanel-events", files=["a.jsonl", "b.jsonl"], rows_read=12, loaded=10,
                   quarantined=Counter({"malformed_json": 2}))
    assert repr(r) == "<LoadReport mixpanel-events: 2 file(s), 10 loaded, 2 quarantined; print() for the summary>"
    assert str(r).startswith("mixpanel-events: 2 file(s) loaded")
    # a load of files already loaded read as "found no files" (a newcomer's walkthrough)
    again = LoadReport("mixpanel-events", skipped=["a.jsonl", "b.jsonl", "c.jsonl"])
    assert repr(again) == ("<LoadReport mixpanel-events: 0 file(s) (3 already loaded, skipped), 0 loaded, "
                           "0 quarantined; print() for the summary>")


def test_a_simulation_shows_its_figures_and_says_when_it_is_before_the_first_run():
    """Its repr was the dataclass's: every setting on one long line. An `at` before the sync's first
    run gives an empty result from Python (`cohortlab simulate` refuses it): the repr says why."""
    from pathlib import Path

    from cohortlab import Lab
    from cohortlab.loaders.folder import load_world

    with Lab() as lab:
        load_world(lab, Path(__file__).resolve().parents[1] / "data")
        r = lab.simulate("Power Users")
        n, audience = r.counts["members"], r.audience
        assert n > 0
        assert repr(r) == (f"<SimulationResult of 'Power Users' at 2026-03-08 00:00:00 UTC (snapshots): {n} member(s), "
                           f"audience {audience}; .waterfall, .timeline, .resolution, .attribute_state, "
                           ".gap_summary, .summary()>")
        early = lab.simulate("Power Users", at="2025-01-01")
        assert early.counts["members"] == 0
        assert repr(early).startswith("<SimulationResult of 'Power Users' at 2025-01-01 00:00:00 UTC (snapshots): "
                                      "no members: before the sync's first run (2026-03-01 00:00:00 UTC);")


def test_a_lab_names_its_database(tmp_path):
    """A Lab left as a cell's value showed <cohortlab.lab.Lab object at 0x…>: it names its file."""
    from cohortlab import Lab

    with Lab() as lab:
        assert repr(lab) == "<Lab in memory (DuckDBEngine)>"
    db = tmp_path / "lab.duckdb"
    with Lab(db) as lab:
        assert repr(lab) == f"<Lab {str(db)!r}>"
    with Lab(db, read_only=True) as lab:
        assert repr(lab) == f"<Lab {str(db)!r} read-only>"
