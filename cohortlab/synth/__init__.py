"""``cohortlab synth``: a deterministic synthetic world (Mixpanel + mParticle exports in their real
wire formats) with its ground truth, from 1,000 to 10M users.

    >>> from cohortlab.synth import generate
    >>> res = generate("out/world", users=10_000, seed=7, scenario="mid_migration")
    >>> res.manifest["expected"]["Power Users"]["match_rate"]

Same ``users``, ``seed`` and parameters give the same bytes. The model and every parameter are in
``cohortlab.synth.world`` (``WorldConfig``); the named scenarios in ``cohortlab.synth.scenarios``;
the truth rules in ``cohortlab.synth.truth``.

Layout of ``OUT_DIR``::

    manifest.json                        parameters, seed, counts, files, expected outcome counts
    truth.parquet                        outcome (docs/rules.md#resolution) per (cohort, member) at the last snapshot
    mixpanel/events/part-NNNNN.jsonl[.gz]  raw event export (JSONL), split by ranges of people
    mixpanel/profiles/page-NNNNN.json    Engage pages, 1000 results each   (worlds <= 200k users)
    mixpanel/profiles/profiles.jsonl[.gz] Engage result objects, one a line (bigger worlds)
    mixpanel/cohorts.json                /cohorts/list response
    mixpanel/members/<cohort>/<YYYY-MM-DDTHH-MM-SSZ>.json
                                         one snapshot per file: Engage pages (one a line) with
                                         "as_of" and "filter_by_cohort"   (worlds <= 200k users)
    mixpanel/members/<cohort>/<...>.csv  distinct_id,as_of               (bigger worlds)
    mixpanel/webhooks/<cohort>.jsonl     cohort-sync payloads in replay order, each with
                                         "received_at": `members` at the first snapshot, then
                                         `remove_members` and `add_members` per later snapshot,
                                         1000 members per page (an empty diff is one empty page)
    mparticle/profiles.jsonl[.gz]        Profile API objects (mpid as an exact JSON number): the
                                         attribute snapshot, taken at manifest "observed_at"
                                         (cohort attributes as the feed left them; see
                                         ``cohortlab.synth.observed``)
    mparticle/profiles/identities-only.jsonl[.gz]
                                         the profiles missing from that snapshot (no cohort attribute)
    truth_verify.parquet                 what ``cohortlab verify`` should say per (cohort, profile)

``truth.parquet`` columns: cohort_name, cohort_id, as_of, distinct_id, person_id, true_mpid,
identifier_source, identifier, mpid, status, gap_reason, recoverable_via, has_profile,
last_activity, active_after_cutoff.

``truth_verify.parquet`` columns: cohort_name, mpid, person_id, simulated, observed, cause,
in_snapshot, other_name, other_value, last_write_si, changed_si, at_capture (see
``cohortlab.synth.observed``); the
manifest's ``expected_verify`` holds its confusion table and cause counts per cohort and the
``snapshot_at`` / ``at`` to verify with (``"refused": "no observed state"`` for a cohort no profile
of the snapshot carries, which verify refuses).
"""

from cohortlab.synth.build import SynthResult, generate
from cohortlab.synth.scenarios import DEFAULT_SCENARIO, SCENARIOS
from cohortlab.synth.world import WorldConfig, build_config

__all__ = ["generate", "SynthResult", "WorldConfig", "build_config", "SCENARIOS", "DEFAULT_SCENARIO"]
