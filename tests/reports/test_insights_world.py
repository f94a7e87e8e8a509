"""report metrics (aggregations), notebook helpers (redaction, metrics.json) on hand-built frames, and load_world on the
repository's sample exports (data/)."""

import json
from pathlib import Path

import pandas as pd
import pytest

from cohortlab import Lab
from cohortlab.report import metrics
from cohortlab.report import notebook as ui
from cohortlab.loaders.folder import as_of_from_name, load_world

DATA = Path(__file__).resolve().parents[2] / "data"


def _res(rows):
    cols = ["cohort_name", "distinct_id", "identifier_source", "identifier", "mpid", "status", "gap_reason",
            "last_seen", "active_after_cutoff", "recoverable_via", "email", "as_of"]
    return pd.DataFrame([dict(zip(cols, r)) for r in rows], columns=cols)


RES = _res([
    ("A", "u1", "mparticle_user_id", "1", 1, "matched", None, None, True, None, "a@x.com", None),
    ("A", "u2", "mparticle_user_id", "1", 1, "matched", None, None, True, None, None, None),
    ("A", "u3", "distinct_id", "c-3", None, "unmatched", "distinct_id_not_mpid", None, True, "customer_id", None, None),
    ("A", "bob@x.com", "distinct_id", "bob@x.com", None, "unmatched", "distinct_id_not_mpid", None, False, "email",
     "bob@x.com", None),
    ("A", "u5", "mparticle_user_id", "undefined", None, "unmatched", "malformed_mparticle_user_id", None, True, None,
     None, None),
    ("B", "u1", "mparticle_user_id", "1", 1, "matched", None, None, True, None, None, None),
    ("B", "u6", "event_property", "7000000000000000000", None, "unmatched", "mpid_precision_loss", None, None,
     "customer_id", None, None),
])


def test_match_rates_by_cohort_and_source():
    r = metrics.match_rates(RES).set_index("cohort_name")
    assert r.loc["A", ["members", "matched", "unmatched"]].tolist() == [5, 2, 3]
    assert r.loc["B", "match_rate"] == 0.5
    s = metrics.match_rates(RES, "identifier_source").set_index("identifier_source")
    assert s.loc["distinct_id", "matched"] == 0 and s.loc["mparticle_user_id", "members"] == 4


def test_gap_counts_activity_shared_and_junk():
    assert metrics.gaps_by_reason(RES).values.tolist() == [
        ["distinct_id_not_mpid", 2], ["malformed_mparticle_user_id", 1], ["mpid_precision_loss", 1]]
    rec = metrics.gaps_by_recoverable(RES)
    assert dict(zip(rec["recoverable_via"], rec["users"])) == {"customer_id": 2, "email": 1, None: 1}
    act = metrics.activity(RES)
    assert act["users"].sum() == 4
    assert act[(act.gap_reason == "mpid_precision_loss")]["active_after_cutoff"].tolist() == [False]  # None = False
    shared = metrics.shared_mpids(RES, with_ids=True)
    assert shared.values.tolist() == [["A", 1, 2, "u1, u2"]]
    assert metrics.shared_mpid_distribution(shared).values.tolist() == [[2, 1]]
    assert metrics.junk_values(RES).values.tolist() == [["undefined", 1]]
    assert metrics.precision_loss(RES)["distinct_id"].tolist() == ["u6"]


def test_remedies_count_active_users_in_mparticle():
    rem = metrics.remedies(RES).set_index("key")
    assert rem.loc["mparticle_rule", "users"] == 1  # u3: in mParticle and active
    assert rem.loc["switch_eit", "users"] == 1 and "split" in rem.loc["switch_eit", "note"]
    assert metrics.remedies(RES).attrs == {"never_fixable": 2, "not_in_mparticle": 1}


def test_redact_drops_personal_columns_and_masks_values():
    out = ui.redact(RES, known={"+15551234567"})
    assert "email" not in out.columns
    assert "bob@x.com" not in out.to_string()
    assert out.loc[3, "distinct_id"] == ui.MASK and out.loc[0, "distinct_id"] == "u1"
    phones = ui.redact(pd.DataFrame({"identifier": ["+15551234567", "5551234567", "-42"]}),
                             known={"5551234567"})
    assert phones["identifier"].tolist() == [ui.MASK, ui.MASK, "-42"]
    assert ui.redact(RES, show_personal_data=True) is RES


def test_write_metrics_is_plain_json(tmp_path):
    p = ui.write_metrics(tmp_path, "x", title="T", summary="**12** users\nmore",
                               headline={"n": pd.Series([3]).iloc[0], "rate": float("nan")},
                               frame=pd.DataFrame({"t": pd.to_datetime(["2026-03-01"]), "v": [1]}))
    doc = json.loads(p.read_text())
    assert doc["summary"] == "12 users" and doc["headline"] == {"n": 3, "rate": None}
    assert doc["metrics"]["frame"] == [{"t": "2026-03-01T00:00:00", "v": 1}]


def test_as_of_from_file_names():
    assert as_of_from_name("power_users_2026-03-08.jsonl") == "2026-03-08T00:00:00+00:00"
    assert as_of_from_name("2026-03-01T12-30-00Z.json") == "2026-03-01T12:30:00+00:00"
    assert as_of_from_name("20260301T120000Z.csv") == "2026-03-01T12:00:00+00:00"
    assert as_of_from_name("members.json") is None


@pytest.mark.skipif(not (DATA / "mixpanel" / "members").is_dir(), reason="sample data not present")
def test_load_world_on_the_sample_exports():
    with Lab() as lab:
        report = load_world(lab, DATA)
        kinds = report.by_kind()
        assert {"mparticle-profiles", "mixpanel-events", "mixpanel-profiles", "mixpanel-members",
                "mixpanel-webhooks", "mixpanel-cohorts"} <= set(kinds)
        snaps = lab.sql("SELECT cohort_name, as_of FROM mp_cohort_snapshots ORDER BY 1, 2")
        # the CSV has as_of inside, the JSONL takes it from its name; cohorts from the file names
        assert set(snaps["cohort_name"]) == {"Power Users", "Churn Risk"}
        assert len(snaps) == 3
        assert pd.Timestamp("2026-03-08") in set(pd.to_datetime(snaps["as_of"]))
        assert all(p.name == "README.md" for p in report.ignored)
        assert "loaded" in str(report)


def test_load_world_needs_export_folders(tmp_path):
    with Lab() as lab, pytest.raises(FileNotFoundError, match="mixpanel"):
        load_world(lab, tmp_path)


def test_dollars_outside_code_are_escaped_for_markdown():
    from cohortlab.report.notebook import _escape_dollars

    assert _escape_dollars("the $a and $b") == r"the \$a and \$b"
    assert _escape_dollars("code `$a` and $b") == r"code `$a` and \$b"
    assert _escape_dollars(r"already \$x") == r"already \$x"


def test_the_cutoff_in_the_findings_comes_from_the_settings():
    from cohortlab.report import summaries

    rem = metrics.remedies(RES)
    shared = metrics.shared_mpids(RES)
    default = summaries.identity_gaps_summary(RES, rem, shared)
    moved = summaries.identity_gaps_summary(RES, rem, shared, {"event_identity_cutoff": "2026-02-20T06:00:00Z"})
    off = summaries.identity_gaps_summary(RES, rem, shared, {"event_identity_cutoff": None})
    assert "2026-01-15 00:00 UTC cutoff" in default
    assert "2026-02-20 06:00 UTC cutoff" in moved and "2026-01-15" not in moved
    assert "2026-01-15" not in off and "off in these settings" in off
