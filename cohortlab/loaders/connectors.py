"""What Mixpanel's connectors and Data Pipelines write, where another kind is given their files
(docs/loading.md#warehouse, #airbyte).

* Airbyte's record envelope is read by the loaders of its Mixpanel source's streams
  (``mixpanel-pipeline-events``: export, ``mixpanel-pipeline-profiles``: engage,
  ``mixpanel-cohorts``: cohorts; :func:`cohortlab.loaders._warehouse.airbyte_unwrapped_sql`).
* The other kinds' messages say what their file holds instead, and which kind reads it
  (:func:`connector_hint`): records in the envelope; Airbyte's ``cohort_members`` stream; events
  or profiles as Data Pipelines or a connector (Airbyte, Stitch's tap-mixpanel) write them, their
  fields at the top of the record; JQL's ``Events()`` results; a third party's answer wrapping
  the records (or an Engage page) in one object.

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


def connector_hint(raw: str | None, kind: str) -> str:
    """What to add to a message about a file of ``kind`` whose records the kind could not read,
    when ``raw`` (the text of its first such record, maybe cut short) is what a connector or Data
    Pipelines wrote for another kind: what it is and which kind reads it; else ``""``. Only the
    record's keys are looked at, never its values, and nothing of it is shown:

    * ``mixpanel-members``: a record of Airbyte's ``cohort_members`` stream (``distinct_id`` and
      ``cohort_id``, bare or in the envelope): it holds every cohort's members, a snapshot one
      cohort's;
    * a record in Airbyte's envelope, given to a kind that does not read inside it;
    * ``mixpanel-events`` (or a profiles or members kind): an event with its fields at the top
      and no ``properties`` object (a connector's flattened export), or with Data Pipelines'
      ``event_name``;
    * ``mixpanel-profiles``: a profile keyed ``distinct_id``, not ``$distinct_id`` (a Data
      Pipelines people table, a connector's engage table);
    * ``mixpanel-events``, ``mixpanel-pipeline-events``: a result of JQL's ``Events()`` (``name``,
      ``time`` in ms of the project's zone, ``sampling_factor`` or ``dataset``);
    * the raw export and Engage kinds: one object holding the records, or an Engage page, under a
      key of its own (:func:`_wrapper`); records whose properties were flattened into dotted keys
      (``properties.time``: pandas' ``json_normalize``);
    * ``mixpanel-members``: JSON records keyed ``distinct_id``, not ``$distinct_id`` (a CSV of the
      ids loads);
    * any kind but ``mixpanel-cohorts``: a Mixpanel cohorts list's records (``id``, ``name`` and
      one of its other keys: ``count``, ``project_id``, ...)."""
    if not raw:
        return ""
    record = _record(raw)
    keys = set(record) if isinstance(record, dict) else set()
    if kind == "mixpanel-members" and {"distinct_id", "cohort_id"} <= keys and "$distinct_id" not in keys:
        return (" (records with distinct_id and cohort_id, as Airbyte's cohort_members stream writes them, hold "
                "the members of every cohort; a snapshot is one cohort's: save one cohort's distinct_ids as a CSV "
                "and load that with -o cohort=<its id or name> -o as_of=<when they were read>)")
    if _ENVELOPE_START.match(raw) and f'"{DATA}"' in raw.lower() and kind not in UNWRAPPING_KINDS:
        return (" (the records are in Airbyte's envelope, _airbyte_data: an Airbyte Mixpanel source's export, "
                "engage and cohorts streams load with mixpanel-pipeline-events, mixpanel-pipeline-profiles and "
                "mixpanel-cohorts, which read it)")
    lowered = {str(k).lower() for k in keys}
    if kind != "mixpanel-cohorts" and {"id", "name"} <= keys and keys & _COHORT_LIST_KEYS \
            and not lowered & {"mpid", "event", "$distinct_id", "distinct_id", "time"}:
        return (" (the records are a Mixpanel cohorts list, /cohorts/list: id, name, count: mixpanel-cohorts "
                "reads it)")
    if kind in ("mixpanel-events", "mixpanel-pipeline-events") and {"name", "time"} <= lowered \
            and lowered & {"sampling_factor", "dataset"} and not lowered & {"event", "event_name"}:
        return (" (the records are results of JQL's Events(): name, and time in milliseconds in the project's time "
                "zone; JQL results are not read: export the raw events (cohortlab fetch, or the /export API) and "
                "load them with mixpanel-events)")
    wrapped = _wrapper(record, raw, kind)
    if wrapped:
        return wrapped
    dotted = next((k for k in ("properties.", "$properties.") if any(str(x).startswith(k) for x in keys)), None)
    if dotted and kind in ("mixpanel-events", "mixpanel-pipeline-events", "mixpanel-profiles", "mixpanel-members"):
        return (f" (the records' keys are dotted paths ({dotted}…): flattened, as pandas' json_normalize does; "
                f"load the export as Mixpanel wrote it, its {dotted[:-1]} an object)")
    events = bool(lowered & {"event_name", "mp_event_name"}) or (
        "event" in lowered and "properties" not in lowered and bool(lowered & {"distinct_id", "time"}))
    if events and kind in ("mixpanel-events", "mixpanel-profiles", "mixpanel-members"):
        return (" (the records are events with their fields at the top, as a Data Pipelines export or a connector "
                "(Airbyte, Stitch) writes them: mixpanel-pipeline-events reads them)")
    if kind == "mixpanel-profiles" and "distinct_id" in lowered and "$distinct_id" not in keys \
            and "results" not in lowered:
        return (" (the records are keyed distinct_id, as a Data Pipelines people table or a connector (Airbyte, "
                "Stitch) writes profiles: mixpanel-pipeline-profiles reads them)")
    if kind == "mixpanel-members" and "distinct_id" in lowered and "$distinct_id" not in keys \
            and "results" not in lowered:
        return (" (the records are keyed distinct_id, not $distinct_id: a members file's JSON records are Engage "
                "results; save the ids as a CSV with a distinct_id column)")
    return ""


# the keys of a record of Mixpanel's /cohorts/list beside id and name (docs/loading#mixpanel-cohorts)
_COHORT_LIST_KEYS = {"count", "project_id", "is_visible", "created", "description", "data_group_id"}

# what a kind's records hold (a raw export event, an Engage result) and an Engage page's key: a
# file that is one object holding them under a key of its own (a third party's answer wrapping
# Mixpanel's) is named so
_INNER = {"mixpanel-events": ("event", None), "mixpanel-profiles": ("$distinct_id", "results"),
          "mixpanel-members": ("$distinct_id", "results")}
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,40}")


def _wrapper(record, raw: str, kind: str) -> str:
    """The hint for a file of ``kind`` that is one object holding the kind's records (or an
    Engage page) under a key of its own: ``{"data": [{"event": …}, …]}``, ``{"data": {"results":
    [...]}}``. Read from ``record`` (the parsed first record) or, when its text was cut short
    (``record`` None), from the start of ``raw``; "" otherwise. The key is named only when it is a
    plain name, never personal data."""
    if kind not in _INNER:
        return ""
    marker, page = _INNER[kind]
    key, holds_page = None, False
    if isinstance(record, dict):
        for k, v in record.items():
            if isinstance(v, list) and v and isinstance(v[0], dict) and marker in v[0]:
                key = str(k)
                break
            if page and isinstance(v, dict) and isinstance(v.get(page), list):
                key, holds_page = str(k), True
                break
    elif record is None:
        name = r'"((?:[^"\\]|\\.)*)"\s*:\s*'
        m = re.search(name + r'\[\s*\{\s*"' + re.escape(marker) + '"', raw)
        if m is None and page:
            m = re.search(name + r'\{[^{}\[\]]*"' + page + r'"\s*:\s*\[', raw)
            holds_page = m is not None
        key = m.group(1) if m else None
    if key is None:
        return ""
    from cohortlab.privacy import looks_personal

    named = f'"{key}"' if _PLAIN_KEY.fullmatch(key) and not looks_personal(key) else "one of its keys"
    what = "an Engage page" if holds_page else "the records"
    return (f" (the file is one object holding {what} under {named}: save that as the file, "
            f"{'as it is' if holds_page else 'the records one per line or as an array'})")


def _record(raw: str):
    """The JSON value of ``raw``, the record inside it when it is in Airbyte's envelope; None when
    ``raw`` is no JSON (a text cut short)."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # nested deeper than Python parses: no hint from it
        return None
    if isinstance(value, dict) and value and all(str(k).lower().startswith(PREFIX) for k in value):
        data = next((v for k, v in value.items() if str(k).lower() == DATA), None)
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except (ValueError, RecursionError):
                return None
        return data
    return value
