"""A small Original-ID-Merge-style project written as real export files: raw event
export JSONL, Engage pages, a Profile API snapshot, cohort members. With ``user_ids=False`` no
event carries a ``$user_id`` (Original ID Merge, the legacy API, mParticle's output without
Simplified ID Merge); with ``user_ids=True`` every event keyed by a user's id (a customer id
before the switch, the MPID after it) carries it as its ``$user_id`` (Simplified ID Merge), the
same distinct_ids otherwise.

The output's External Identity Type is ``customer_id`` until 2026-03-01, then ``mparticle_id``.

| user | MPID | identities                  | events (distinct_id, $device_id)                                        |
|------|------|-----------------------------|-------------------------------------------------------------------------|
| U1   | 1001 | cust-1, device d-1          | 02-02 cust-1 (d-1), 02-20 cust-1 (d-1), 03-03 1001 (d-1)                 |
| U2   | 1002 | cust-2, device d-2          | 02-03 d-2 bare (d-2), 02-05 cust-2 (d-2), 02-12 cust-2 (d-2)             |
| U3   | 1003 | cust-3, device d-3          | 02-04 $device:d-3 (d-3), 02-16 cust-3 (d-3), 03-05 1003 (d-3)           |
| U4   | 1004 | cust-4                      | 02-08 cust-4 (server), 02-18 cust-4 (server)                             |
| U5   | 1005 | device d-5 only             | 02-09 d-5 bare (no $device_id), 02-19 d-5 (no $device_id)                |
| U6   | 1006 | cust-6, device d-6          | 02-01 cust-6 (d-6), 02-17 $device:d-6 (d-6)                              |
| U7   | -    | -                           | 02-20 x-7 (d-7): not in mParticle                                        |
| U8   | 1008 | cust-8                      | 03-02 1008 (d-8): new after the switch                                   |

Members of "Buyers" on 2026-03-08: cust-1, cust-2, cust-3, $device:d-3, cust-4, d-5, cust-6,
$device:d-6, x-7, 1008. No Mixpanel profile holds ``$mparticle_user_id``; no event carries it.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

SWITCH = "2026-03-01T00:00:00Z"
SINCE = "2026-02-15T00:00:00Z"   # the Rule's / SDK code's start
AT = "2026-03-08T00:00:00Z"      # the cohort's snapshot and the remedies' as-of time
SETTINGS = {"cadence": "1d", "event_identity_cutoff": None}

# distinct_id, time, $device_id, a user's id (the $user_id of the Simplified world)
EVENTS = [
    ("cust-1", "2026-02-02 10:00:00", "d-1", True),
    ("cust-1", "2026-02-20 10:00:00", "d-1", True),
    ("1001", "2026-03-03 10:00:00", "d-1", True),
    ("d-2", "2026-02-03 10:00:00", "d-2", False),
    ("cust-2", "2026-02-05 10:00:00", "d-2", True),
    ("cust-2", "2026-02-12 10:00:00", "d-2", True),
    ("$device:d-3", "2026-02-04 10:00:00", "d-3", False),
    ("cust-3", "2026-02-16 10:00:00", "d-3", True),
    ("1003", "2026-03-05 10:00:00", "d-3", True),
    ("cust-4", "2026-02-08 10:00:00", None, True),
    ("cust-4", "2026-02-18 10:00:00", None, True),
    ("d-5", "2026-02-09 10:00:00", None, False),
    ("d-5", "2026-02-19 10:00:00", None, False),
    ("cust-6", "2026-02-01 10:00:00", "d-6", True),
    ("$device:d-6", "2026-02-17 10:00:00", "d-6", False),
    ("x-7", "2026-02-20 10:00:00", "d-7", True),
    ("1008", "2026-03-02 10:00:00", "d-8", True),
]
PROFILES = {  # mpid: (customer id, device identity)
    1001: ("cust-1", "d-1"), 1002: ("cust-2", "d-2"), 1003: ("cust-3", "d-3"), 1004: ("cust-4", None),
    1005: (None, "d-5"), 1006: ("cust-6", "d-6"), 1008: ("cust-8", None),
}
MIXPANEL_PROFILES = ["cust-1", "cust-2", "cust-3", "cust-4", "cust-6", "x-7", "1001", "1003", "1008"]
MEMBERS = ["cust-1", "cust-2", "cust-3", "$device:d-3", "cust-4", "d-5", "cust-6", "$device:d-6", "x-7", "1008"]


def _epoch(t: str) -> int:
    return int(datetime.fromisoformat(t).replace(tzinfo=timezone.utc).timestamp())


def write_world(root: Path, *, user_ids: bool) -> Path:
    """Write the world's export files under ``root`` (a folder ``report --data`` / ``load_world``
    reads) and return it."""
    root = Path(root)
    (root / "mixpanel" / "events").mkdir(parents=True, exist_ok=True)
    (root / "mixpanel" / "profiles").mkdir(parents=True, exist_ok=True)
    (root / "mixpanel" / "members" / "Buyers").mkdir(parents=True, exist_ok=True)
    (root / "mparticle").mkdir(parents=True, exist_ok=True)
    with open(root / "mixpanel" / "events" / "2026-02.jsonl", "w") as f:
        for i, (did, t, dev, user) in enumerate(EVENTS):
            p = {"time": _epoch(t), "distinct_id": did, "$insert_id": f"ins{i:04d}"}
            if dev is not None:
                p["$device_id"] = dev
            if user_ids and user:
                p["$user_id"] = did
            f.write(json.dumps({"event": "Open", "properties": p}) + "\n")
    page = {"page": 0, "page_size": 1000, "session_id": "s", "status": "ok", "total": len(MIXPANEL_PROFILES),
            "results": [{"$distinct_id": d, "$properties": {"$last_seen": "2026-03-05T10:00:00"}}
                        for d in MIXPANEL_PROFILES]}
    (root / "mixpanel" / "profiles" / "engage_page_0.json").write_text(json.dumps(page))
    members = {"page": 0, "page_size": 1000, "session_id": "m", "status": "ok", "total": len(MEMBERS),
               "results": [{"$distinct_id": d, "$properties": {}} for d in MEMBERS]}
    (root / "mixpanel" / "members" / "Buyers" / "2026-03-08T00-00-00Z.json").write_text(json.dumps(members))
    with open(root / "mparticle" / "profiles.jsonl", "w") as f:
        for mpid, (cid, dev) in PROFILES.items():
            f.write(json.dumps({
                "mpid": mpid, "created_timestamp_ms": 1767225600000, "last_stored_timestamp_ms": 1772928000000,
                "is_opted_out": False,
                "device_identities": [{"type": "android_uuid", "encoding": "none", "value": dev}] if dev else [],
                "user_identities": [{"type": "customer_id", "encoding": "none", "value": cid}] if cid else [],
                "user_attributes": {}, "audience_memberships": []}) + "\n")
    return root


if __name__ == "__main__":
    import sys

    for name, flag in (("no_user_ids", False), ("user_ids", True)):
        print(write_world(Path(sys.argv[1]) / name, user_ids=flag))
