"""Named scenarios: sets of ``WorldConfig`` overrides, each described in one line.

All scenarios share the default calendar (people arrive 2025-11-01 .. 2026-03-01, seven daily
snapshots ending 2026-03-01T00:00:00Z) and the default cohorts ("Power Users": at least 10 events
in 30 days; "Recent Purchasers": a Purchase in 90 days).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    params: dict[str, Any] = field(default_factory=dict)


# Bad `$mparticle_user_id` written by app code, for a few people in every scenario.
_NOISE = {
    "sdk_ok_share": 0.04,
    "float_share": 0.01,
    "junk_share": 0.004,
    "null_share": 0.002,
    "other_workspace_share": 0.004,
}

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario(
            "healthy",
            "EIT mParticle ID from the start: every distinct_id is the MPID, match rate near 100% "
            "(losses: deleted inactive profiles, a little SDK corruption).",
            {"eit": [{"type": "mparticle_id"}], **_NOISE},
        ),
        Scenario(
            "customer_id_legacy",
            "EIT Customer ID, no remediation, events without the automatic $mparticle_user_id: "
            "distinct_ids are customer ids or $device: ids, low match rate, recoverable via customer_id.",
            {"eit": [{"type": "customer_id"}], "event_mpuid_from": None, **_NOISE},
        ),
        Scenario(
            "mid_migration",
            "EIT Customer ID until 2026-02-01, then mParticle ID: split profiles (customer id + MPID), "
            "old profiles recovered only through events after 2026-01-15.",
            {
                "eit": [{"type": "customer_id"}, {"type": "mparticle_id", "start": "2026-02-01T00:00:00Z"}],
                **_NOISE,
            },
        ),
        Scenario(
            "remediated",
            "EIT Customer ID with an mParticle Rule copying the MPID into $mparticle_user_id from "
            "2026-02-01: profiles active since then match, churned ones stay unmatched.",
            {
                "eit": [{"type": "customer_id"}],
                "remediation": {"start": "2026-02-01T00:00:00Z", "method": "rule"},
                **_NOISE,
            },
        ),
        Scenario(
            "demo",
            "`cohortlab demo`: mid_migration where every gap shows in both cohorts: EIT Customer ID until "
            "2026-02-15, $mparticle_user_id on events from 2026-02-01, more float-rounded ids, and "
            "\"Power Users\" counted over 60 days so customer ids, shared MPIDs and split profiles reach it.",
            {
                "eit": [{"type": "customer_id"}, {"type": "mparticle_id", "start": "2026-02-15T00:00:00Z"}],
                "event_mpuid_from": "2026-02-01T00:00:00Z",
                **_NOISE,
                "float_share": 0.03,
                "cohorts": [
                    {"id": 1000, "name": "Power Users", "description": "At least 10 events in the last 60 days",
                     "min_count": 10, "window_days": 60},
                    {"id": 1001, "name": "Recent Purchasers", "description": "Purchased in the last 90 days",
                     "event": "Purchase", "min_count": 1, "window_days": 90},
                ],
            },
        ),
    ]
}

DEFAULT_SCENARIO = "mid_migration"
