"""What an Airbyte Mixpanel source writes (docs/loading.md#airbyte): its record envelope, read by
the loaders of its streams (``mixpanel-pipeline-events``: export, ``mixpanel-pipeline-profiles``:
engage, ``mixpanel-cohorts``: cohorts; :func:`cohortlab.loaders._warehouse.airbyte_unwrapped_sql`),
and, in the other kinds' messages, what their file holds instead (:func:`airbyte_hint`: the
envelope, or the ``cohort_members`` stream given to ``mixpanel-members``).

Airbyte's file destinations (S3, GCS, Azure Blob, local JSON) without flattening, and its raw
warehouse tables, write each record as ``{"_airbyte_ab_id", "_airbyte_emitted_at",
"_airbyte_data": {...}}``; from Destinations V2 on as ``{"_airbyte_raw_id",
"_airbyte_extracted_at", "_airbyte_meta", "_airbyte_generation_id", "_airbyte_data"}``. A raw
table's JSON column may be unloaded as text (``"_airbyte_data": "{...}"``), Snowflake's in upper
case (``_AIRBYTE_DATA``). With flattening, the record's fields are the row's own columns beside
the ``_airbyte_`` ones: no envelope, read as any flattened row.
"""

from __future__ import annotations

import json
import re

PREFIX = "_airbyte_"
DATA = "_airbyte_data"
# the kinds whose records are read inside the envelope (the others name them in their errors)
UNWRAPPING_KINDS = ("mixpanel-pipeline-events", "mixpanel-pipeline-profiles", "mixpanel-cohorts")

_ENVELOPE_START = re.compile(r'^\s*\{\s*"_airbyte_[a-z_]*"\s*:', re.IGNORECASE)


def airbyte_hint(raw: str | None, kind: str) -> str:
    """What to add to a message about a file of ``kind`` whose records the kind could not read,
    when ``raw`` (the text of its first such record, maybe cut short) is a record an Airbyte
    Mixpanel source wrote that ``kind`` does not read: which kinds read it; else ``""``. Only the
    record's keys are looked at, never shown:

    * a record of the ``cohort_members`` stream (``distinct_id`` and ``cohort_id``, bare or in
      the envelope) given to ``mixpanel-members``: it holds every cohort's members, a snapshot
      one cohort's;
    * a record in Airbyte's envelope, given to a kind that does not read inside it."""
    if not raw:
        return ""
    record = _record(raw)
    if kind == "mixpanel-members" and isinstance(record, dict) and "distinct_id" in record \
            and "cohort_id" in record and "$distinct_id" not in record:
        return (" (records with distinct_id and cohort_id, as Airbyte's cohort_members stream writes them, hold "
                "the members of every cohort; a snapshot is one cohort's: save one cohort's distinct_ids as a CSV "
                "and load that with -o cohort=<its id or name> -o as_of=<when they were read>)")
    if not _ENVELOPE_START.match(raw) or f'"{DATA}"' not in raw.lower():
        return ""
    if kind in UNWRAPPING_KINDS:  # read inside it: what the records lack is their own
        return ""
    return (" (the records are in Airbyte's envelope, _airbyte_data: an Airbyte Mixpanel source's export, "
            "engage and cohorts streams load with mixpanel-pipeline-events, mixpanel-pipeline-profiles and "
            "mixpanel-cohorts, which read it)")


def _record(raw: str):
    """The JSON value of ``raw``, the record inside it when it is in Airbyte's envelope; None when
    ``raw`` is no JSON (a text cut short)."""
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    if isinstance(value, dict) and value and all(str(k).lower().startswith(PREFIX) for k in value):
        data = next((v for k, v in value.items() if str(k).lower() == DATA), None)
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                return None
        return data
    return value
