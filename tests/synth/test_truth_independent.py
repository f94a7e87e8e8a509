"""docs/rules.md#resolution, re-implemented here in plain Python over the FILES the generator wrote, must give
truth.parquet row for row: the truth is what the exports imply, not what the generator meant."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

from tests.synth.conftest import jsonl, truth_rows

CUTOFF = int(datetime(2026, 1, 15, tzinfo=timezone.utc).timestamp())


def is_mpid(s) -> bool:
    return isinstance(s, str) and re.fullmatch(r"-?[0-9]+", s) is not None and -(2**63) <= int(s) < 2**63


def spec_truth_from_files(out, manifest) -> list[dict]:
    as_of = int(datetime.strptime(manifest["as_of"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())
    # mParticle snapshot: existing MPIDs, user identities, and device identities under the
    # `$device:<id>` distinct_id Mixpanel gives the device (docs/rules.md#recovery-order)
    mpids, identities = set(), {}
    files = [f["path"] for f in manifest["files"] if f["kind"] == "mparticle-profiles"]
    for o in (o for path in files for o in jsonl(out / path)):
        mpids.add(o["mpid"])
        for ui in o["user_identities"]:
            identities.setdefault(ui["value"], set()).add(ui["type"])
        for di in o.get("device_identities") or []:
            identities.setdefault("$device:" + di["value"], set()).add(di["type"])
    rounded = set()
    for m in mpids:
        f = int(float(m))
        if -(2**63) <= f < 2**63:
            rounded.add(f)
    # Mixpanel profiles (Engage pages)
    profiles = {}
    for page in sorted((out / "mixpanel/profiles").glob("page-*.json")):
        for r in json.loads(page.read_text())["results"]:
            profiles[r["$distinct_id"]] = r["$properties"]
    # the event rule: latest event at/after the cutoff, not after as_of, with a non-null value
    latest: dict[str, tuple[int, str]] = {}
    for p in sorted((out / "mixpanel/events").glob("*.jsonl")):
        for o in jsonl(p):
            pr = o["properties"]
            v = pr.get("$mparticle_user_id")
            if v is None or not (CUTOFF <= pr["time"] <= as_of):
                continue
            d = pr["distinct_id"]
            if d not in latest or (pr["time"], v) > latest[d]:
                latest[d] = (pr["time"], v)
    rows = []
    for s in manifest["snapshots"]:
        if s["as_of"] != manifest["as_of"]:
            continue
        for page in jsonl(out / s["path"]):
            for member in page["results"]:
                d = member["$distinct_id"]
                prof = profiles.get(d)
                if prof is not None and prof.get("$mparticle_user_id") is not None:
                    source, ident = "mparticle_user_id", prof["$mparticle_user_id"]
                elif d in latest:
                    source, ident = "event_property", latest[d][1]
                else:
                    source, ident = "distinct_id", d
                mpid = int(ident) if is_mpid(ident) else None
                if mpid is not None and mpid in mpids:
                    status, gap = "matched", None
                elif mpid is None:
                    status = "unmatched"
                    gap = "distinct_id_not_mpid" if source == "distinct_id" else "malformed_mparticle_user_id"
                else:
                    status = "unmatched"
                    gap = "mpid_precision_loss" if mpid in rounded else "mpid_not_found"
                rec = None
                if status != "matched":
                    if d in identities:
                        rec = min(identities[d])
                    elif prof and "email" in identities.get(prof.get("$email"), ()):
                        rec = "email"
                rows.append({"cohort_name": s["cohort"], "distinct_id": d, "identifier_source": source,
                             "identifier": ident, "mpid": mpid if status == "matched" else None,
                             "status": status, "gap_reason": gap, "recoverable_via": rec,
                             "has_profile": prof is not None})
    return sorted(rows, key=lambda r: (r["cohort_name"], r["distinct_id"]))


def test_truth_equals_spec_applied_to_the_files(scenario_world):
    res = scenario_world
    expected = spec_truth_from_files(res.out_dir, res.manifest)
    cols = list(expected[0])
    got = sorted(({c: r[c] for c in cols} for r in truth_rows(res)), key=lambda r: (r["cohort_name"], r["distinct_id"]))
    assert len(got) == len(expected) == res.manifest["truth"]["rows"]
    assert got == expected
    # and the manifest's expected counts are the truth's
    for name, e in res.manifest["expected"].items():
        mine = [r for r in expected if r["cohort_name"] == name]
        assert e["members"] == len(mine)
        assert e["matched"] == sum(r["status"] == "matched" for r in mine)
        for gap, n in e["gap_reason"].items():
            assert n == sum((r["gap_reason"] or "null") == gap for r in mine)
