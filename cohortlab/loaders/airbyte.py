"""Airbyte's record envelope, read by the loaders of what an Airbyte Mixpanel source writes
(``mixpanel-pipeline-events``: its export stream, ``mixpanel-pipeline-profiles``: engage,
``mixpanel-cohorts``: cohorts; :func:`cohortlab.loaders._warehouse.airbyte_unwrapped_sql`,
docs/loading.md#airbyte) and named in the others' messages (:func:`envelope_hint`).

Airbyte's file destinations (S3, GCS, Azure Blob, local JSON) without flattening, and its raw
warehouse tables, write each record as ``{"_airbyte_ab_id", "_airbyte_emitted_at",
"_airbyte_data": {...}}``; from Destinations V2 on as ``{"_airbyte_raw_id",
"_airbyte_extracted_at", "_airbyte_meta", "_airbyte_generation_id", "_airbyte_data"}``. A raw
table's JSON column may be unloaded as text (``"_airbyte_data": "{...}"``), Snowflake's in upper
case (``_AIRBYTE_DATA``). With flattening, the record's fields are the row's own columns beside
the ``_airbyte_`` ones: no envelope, read as any flattened row.
"""

from __future__ import annotations

import re

PREFIX = "_airbyte_"
DATA = "_airbyte_data"
# the kinds whose records are read inside the envelope (the others name them in their errors)
UNWRAPPING_KINDS = ("mixpanel-pipeline-events", "mixpanel-pipeline-profiles", "mixpanel-cohorts")

_ENVELOPE_START = re.compile(r'^\s*\{\s*"_airbyte_[a-z_]*"\s*:', re.IGNORECASE)


def envelope_hint(raw: str | None, kind: str) -> str:
    """What to add to a message about a file of ``kind`` whose records the kind could not read,
    when ``raw`` (the text of its first such record, maybe cut short) is in Airbyte's envelope:
    which kinds read it; else ``""``. The text is matched, never parsed, and never shown."""
    if not raw or not _ENVELOPE_START.match(raw) or f'"{DATA}"' not in raw.lower():
        return ""
    if kind in UNWRAPPING_KINDS:  # read inside it: what the records lack is their own
        return ""
    return (" (the records are in Airbyte's envelope, _airbyte_data: an Airbyte Mixpanel source's export, "
            "engage and cohorts streams load with mixpanel-pipeline-events, mixpanel-pipeline-profiles and "
            "mixpanel-cohorts, which read it)")
