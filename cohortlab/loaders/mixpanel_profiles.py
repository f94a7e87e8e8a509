"""``mixpanel-profiles``: Mixpanel user profiles into ``mp_profiles``.

Accepted inputs (gzip detected by content):

* Engage API response pages ``{"page", "page_size", "session_id", "status", "total",
  "results": [{"$distinct_id", "$properties"}]}`` — one page per file, several pages one after
  the other (pretty-printed or not), a JSON array of pages, or one page per line;
* JSONL (or a JSON array) of result objects ``{"$distinct_id": ..., "$properties": {...}}``.

``line`` is the JSONL line of a result object, or, for pages, the 1-based position of the result
across the file in document order. An integer ``$distinct_id`` is kept as its exact decimal text.
``$mparticle_user_id`` is kept as exported text (a JSON float keeps its exact token). Dates
(``$created``, ``$last_seen``) are ISO strings without a zone, meaning UTC, or epoch numbers
(seconds, milliseconds above 1e11); other types or unparsable strings give NULL (not a reject).
A date before 1971-01-01 is loaded as read, with a load warning (``profile_time_warnings``).

A later load replaces the earlier row of the same distinct_id; within one file the last
occurrence wins and the others count as deduplicated. Every load is also kept in
``mp_profile_history`` with its as-of time: option ``as_of`` (ISO-8601 UTC, the time the export
was taken), else, for the pages of a folder written by ``cohortlab fetch``, the time its
``fetch.json`` records (:mod:`cohortlab.loaders.fetched`), else the load time counts (send-time
resolution, docs/rules.md).

JSONL of bare result objects is read by the typed fast path (:mod:`cohortlab.loaders.fast`)
when every record can be taken exactly; any other file by the exact path, with the same rows.

Quarantine reasons: malformed_json, not_an_object, missing_distinct_id, bad_distinct_id,
bad_properties, profile_update (a record without ``$properties`` holding an /engage operation,
``$set`` ...: an update sent to Mixpanel, not an exported profile), flattened_profile (a record
without ``$properties`` with keys besides ``$distinct_id``: a result whose properties were spread
into it, as ak--47/mixpanel-import's profile stream writes them; ``mixpanel-pipeline-profiles``
reads that shape). A page with ``"status"`` other than ``"ok"``, or a file with JSON objects none of
which is a page or a result object, is a LoadError. A file of pages with empty ``results`` (the
last page when the total is a multiple of ``page_size``; a project without profiles) loads no
profiles; ``"results": null`` in a record without ``$distinct_id`` is such an empty page.
"""

from __future__ import annotations

from collections import Counter

from cohortlab.loaders.base import AsOfOnly, FileContext, FileResult, Loader
from cohortlab.loaders.mixpanel_common import (
    ProfileUpserts,
    drop_engage_stage,
    has_engage_page,
    profile_time_warnings,
    stage_engage_results,
    upsert_profiles,
)


class MixpanelProfilesLoader(ProfileUpserts, AsOfOnly, Loader):
    kind = "mixpanel-profiles"
    description = "Engage pages, or JSONL of Engage results"
    csv_advice = ("Mixpanel profiles load from JSON: Engage pages (cohortlab fetch), or mixpanel-utils' "
                  "export_people with format='json'; a CSV of a cohort's distinct_ids loads with mixpanel-members")

    def all_quarantined_note(self, result: FileResult, first: str | None) -> str:
        """Every record quarantined ``flattened_profile``: Engage results with their properties
        spread into the record, which ``mixpanel-pipeline-profiles`` reads."""
        if set(result.quarantined) != {"flattened_profile"}:
            return ""
        return (" (the records are Engage results with their properties spread into the record: "
                "mixpanel-pipeline-profiles reads them)")

    def load_file(self, ctx: FileContext) -> FileResult:
        eng = ctx.engine
        st = f"_mp_res_{ctx.load_id}"
        stage_engage_results(ctx, st, flattened=True)
        # a flattened result ($properties spread into the record) would load with no properties
        quarantined = ctx.reject(f"SELECT line, CASE WHEN flat THEN 'flattened_profile' ELSE reason END AS reason, raw "
                                 f"FROM {st} WHERE reason IS NOT NULL OR flat")
        profiles = f"SELECT * FROM {st} WHERE reason IS NULL AND NOT flat"
        loaded, dedup = upsert_profiles(ctx, profiles)
        warnings = profile_time_warnings(ctx, profiles)
        rows_read = int(eng.query_rows(f"SELECT count(*) FROM {st}")[0][0])
        drop_engage_stage(ctx, st)
        return FileResult(rows_read=rows_read, loaded=loaded, deduplicated=dedup,
                          quarantined=Counter(quarantined),
                          allow_empty=rows_read == 0 and has_engage_page(ctx), warnings=warnings)
