"""The truth's outcome counts are what each scenario's parameters imply."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from tests.synth.conftest import mparticle_profiles, truth_rows


def rate(e, key, value):
    return e[key].get(value, 0) / e["members"]


def test_healthy_matches_nearly_everyone(make_world):
    res = make_world("healthy")
    pu = res.manifest["expected"]["Power Users"]
    assert pu["members"] > 30
    assert pu["match_rate"] >= 0.95
    # EIT mParticle ID from the start: every member distinct_id is a decimal MPID
    for row in truth_rows(res):
        assert row["distinct_id"].lstrip("-").isdigit()
        assert row["gap_reason"] != "distinct_id_not_mpid"


def test_customer_id_legacy_matches_few_and_is_recoverable(make_world):
    res = make_world("customer_id_legacy")
    for name, e in res.manifest["expected"].items():
        assert e["match_rate"] <= 0.2, name
        assert rate(e, "gap_reason", "distinct_id_not_mpid") >= 0.7, name
    pu = res.manifest["expected"]["Power Users"]
    assert pu["recoverable_via"].get("customer_id", 0) >= 0.5 * pu["members"]
    ids = Counter(r["distinct_id"].split("-")[0].split(":")[0] for r in truth_rows(res))
    assert set(ids) <= {"cust", "$device"} | {k for k in ids if k.isdigit() or k == ""}


def test_mid_migration_splits_profiles_and_recovers_partly(make_world):
    res = make_world("mid_migration")
    m = res.manifest
    assert m["counts"]["people_with_two_profiles"] > 0
    rp = m["expected"]["Recent Purchasers"]
    assert rp["shared_mpid"] > 0  # one person, two member distinct_ids, one MPID
    assert rp["identifier_source"].get("event_property", 0) > 0  # recovered by events after 2026-01-15
    assert rp["gap_reason"].get("distinct_id_not_mpid", 0) > 0  # old customer-id profiles never recovered
    assert 0.5 < rp["match_rate"] < 1.0
    rows = [r for r in truth_rows(res) if r["gap_reason"] == "distinct_id_not_mpid"]
    assert all(not r["active_after_cutoff"] for r in rows if r["distinct_id"].startswith("cust-"))


def test_remediated_fixes_active_profiles_only(make_world):
    res = make_world("remediated")
    pu = res.manifest["expected"]["Power Users"]
    assert pu["match_rate"] >= 0.95
    with_profile = [r for r in truth_rows(res) if r["cohort_name"] == "Power Users" and r["has_profile"]]
    fixed = [r for r in with_profile if r["identifier_source"] == "mparticle_user_id"]
    assert len(fixed) >= 0.95 * len(with_profile)
    rp = res.manifest["expected"]["Recent Purchasers"]
    assert rp["unmatched"] > 0
    remediation = datetime(2026, 2, 1)
    for r in truth_rows(res):
        if r["identifier_source"] == "mparticle_user_id":
            continue
        # not fixed on the profile: no profile, or no activity on it since the Rule started
        assert not r["has_profile"] or r["last_activity"] < remediation or r["distinct_id"].startswith("$device:")


def test_precision_loss_and_junk_shares_follow_parameters(make_world):
    res = make_world("healthy", users=2000, seed=5, sdk_ok_share=0.0, float_share=0.2, junk_share=0.1,
                     null_share=0.0, other_workspace_share=0.0)
    writers = res.manifest["counts"]["mparticle_user_id_writers"]
    assert abs(writers["float"] / 2000 - 0.2) < 0.04
    assert abs((writers["junk_undefined"] + writers["junk_empty"]) / 2000 - 0.1) < 0.03
    rows = [r for r in truth_rows(res) if r["gap_reason"] != "mpid_not_found"]  # people still in mParticle
    gaps = Counter(r["gap_reason"] for r in rows)
    assert abs(gaps["mpid_precision_loss"] / len(rows) - 0.2) < 0.07
    assert abs(gaps["malformed_mparticle_user_id"] / len(rows) - 0.1) < 0.05
    for r in rows:
        if r["gap_reason"] == "mpid_precision_loss":
            assert r["identifier"] == str(int(float(r["true_mpid"]))) != str(r["true_mpid"])
        if r["gap_reason"] == "malformed_mparticle_user_id":
            assert r["identifier"] in ("undefined", "")


def test_mpid_not_found_means_deleted_or_other_workspace(make_world):
    res = make_world("healthy")
    as_of = datetime(2026, 3, 1)
    mparticle = {o["mpid"] for o in mparticle_profiles(res)}
    rows = [r for r in truth_rows(res) if r["gap_reason"] == "mpid_not_found"]
    assert rows
    for r in rows:
        if r["identifier"] == str(r["true_mpid"]):  # the right MPID, but the profile is gone
            assert r["true_mpid"] not in mparticle
            assert r["last_activity"] < as_of - timedelta(days=30)
        else:  # an MPID of another workspace
            assert int(r["identifier"]) not in mparticle
