"""Shared pieces of the three mParticle loaders (Profile API JSON, Events API batches, CSV).

Everything here builds DuckDB SQL; nothing loops over records in Python.

* Identity type names are normalised to the Events API spelling, lower case
  (:func:`normalise_identity_type` / :func:`identity_type_sql`): IDSync ``customerid`` →
  ``customer_id``, ``other2`` → ``other_id_2``, ``mobilenumber`` → ``mobile_number``,
  ``phonenumber2`` → ``phone_number_2``, …; device ids to the Events API ``device_info`` names
  (``ios_idfa`` → ``ios_advertising_id``, ``android_aaid``/``google_advertising_id`` →
  ``android_advertising_id``, ``android_id`` → ``android_uuid``, …). Unknown types are kept,
  lower-cased and trimmed, with spaces and hyphens turned into ``_``.
* MPIDs are read from JSON as text (``json_extract_string`` keeps the integer text exactly,
  also above 2^53: docs/rules.md#exact-numbers) and validated by :mod:`cohortlab.identifiers`; a JSON float (``1.5``,
  ``9.08e18``, ``1.0``) is never an MPID.
* :func:`replace_profiles` writes staged profiles into the four ``mpa_*`` tables, replacing
  every row of the same MPIDs (Profile API, CSV and Parquet snapshots) unless a snapshot taken
  later holds them, and the attribute names the file carries into ``mpa_snapshot_names``
  (those of the records it does not keep too).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from cohortlab.identifiers import mpid_sql
from cohortlab.pipeline import sql_list, sql_str
from cohortlab.loaders import fast
from cohortlab.loaders.base import FileContext, container_type_sql, nonblank_sql
from cohortlab.loaders.files import sniff_json_layout

from cohortlab.identity_types import DEVICE_IDENTITY_TYPES, IDENTITY_TYPE_ALIASES, USER_IDENTITY_TYPES


def _clean(name: str) -> str:
    """Python twin of :func:`clean_identity_type_sql`."""
    return name.strip(" ").lower().replace(" ", "_").replace("-", "_")


def normalise_identity_type(name: str) -> str:
    """Python twin of :func:`identity_type_sql` (used for CSV column names)."""
    c = _clean(name)
    return IDENTITY_TYPE_ALIASES.get(c, c)


def identity_kind(name: str) -> str | None:
    """'user' / 'device' when ``name`` (any spelling) is a known identity type, else None."""
    t = normalise_identity_type(name)
    if t in USER_IDENTITY_TYPES:
        return "user"
    if t in DEVICE_IDENTITY_TYPES:
        return "device"
    return None




def profile_columns(columns: list[str], mpid_col: str | None, fold_case: bool = False, skip=()):
    """The identity and attribute columns of a profile table's ``columns`` (mparticle-csv's
    header, mparticle-parquet's columns), each name once: ``(identities, attributes, ignored)``,
    ``identities`` as ``(position, column, kind, normalised type)``, ``attributes`` as
    ``(position, column, name)`` (the name without the spaces around it), ``ignored`` the repeats
    as ``(position, column, kind)`` (kind: "user", "device", "mpid" or None, an attribute). A
    column repeats an earlier one when it names the same identity type once normalised (``email,
    Email``), the same attribute without the spaces around it (``plan , plan``: attribute names
    are case-sensitive, so ``Power Users`` and ``power users`` are two attributes), or is
    ``mpid_col`` again: the first column of each name is read, the later ones ignored, with a
    warning (:func:`repeated_columns_warning`). ``fold_case``: ``mpid_col`` is found in any case
    (Parquet). ``skip``: positions of other columns (Parquet's Profile API columns), neither read
    nor a repeat."""
    identities, attributes, ignored, seen = [], [], [], set()
    fold = (lambda x: x.strip().casefold()) if fold_case else (lambda x: x)
    for i, c in enumerate(columns):
        if i in skip:
            continue
        kind = "mpid" if mpid_col is not None and fold(c) == fold(mpid_col) else identity_kind(c)
        name = c.strip()
        key = ("mpid",) if kind == "mpid" else (kind, normalise_identity_type(c) if kind else name)
        if key in seen:
            ignored.append((i, c, kind))
            continue
        seen.add(key)
        if kind == "mpid":
            continue
        if kind:
            identities.append((i, c, kind, key[1]))
        else:
            attributes.append((i, c, name))
    return identities, attributes, ignored


def repeated_columns_warning(ctx, ignored: list[tuple], where: str = "header") -> list[str]:
    """The load warning for the repeated columns :func:`profile_columns` ignored (none: [])."""
    shown = ", ".join(f"{c!r} (column {i + 1})" for i, c, _ in ignored)
    return [f"{ctx.path}: the {where} repeats {shown}: the first column of each name is read, "
            f"the repeated one ignored"] if ignored else []


def clean_identity_type_sql(expr: str) -> str:
    """SQL VARCHAR: ``expr`` lower-cased and trimmed, spaces and hyphens turned into ``_``."""
    return f"replace(replace(lower(trim({expr})), ' ', '_'), '-', '_')"


def identity_type_sql(col: str) -> str:
    """SQL VARCHAR: the normalised identity type of ``col``, a column already cleaned by
    :func:`clean_identity_type_sql` (a column, so the alias CASE does not re-evaluate it)."""
    whens = " ".join(f"WHEN {sql_str(k)} THEN {sql_str(v)}" for k, v in sorted(IDENTITY_TYPE_ALIASES.items()))
    return f"(CASE {col} {whens} ELSE {col} END)"


# --------------------------------------------------------------------------- JSON staging
#
# A staged table (built by ``stage_sql``) has one row per record: ``line``, ``reason0`` (the
# record-level quarantine reason, NULL = good), ``mpid``, every scalar field as text
# (``json_extract_string``: a JSON string unquoted, a number as its exact text, absent or null
# as SQL NULL) and every container field as JSON with ``<name>_t`` ∈ 'OBJECT' | 'ARRAY' | 'NULL'
# | 'SCALAR' (SQL NULL when absent), so later steps never re-parse a field to learn its type.
# JSON is parsed as few times as possible: these loaders must read 10M profiles quickly.


def records_sql(ctx: FileContext) -> str:
    """SELECT (line, j) — like ``ctx.json_records_sql()`` (same records, same line numbers), but
    a JSONL line stays VARCHAR, not validated here: :func:`stage_sql` parses it once with
    ``try(json_extract(...))`` (NULL = not valid JSON, the validity of ``json_valid``)."""
    if sniff_json_layout(ctx.text_path()) == "jsonl":
        return f"SELECT line, raw AS j FROM ({ctx.lines_sql()}) WHERE {nonblank_sql('raw')}"
    return f"SELECT line, j FROM ({ctx.json_records_sql()})"


def absent_sql(col: str) -> str:
    """SQL BOOLEAN: the staged container field ``col`` is absent or JSON null."""
    return f"({col}_t IS NULL OR {col}_t = 'NULL')"


# A Firehose request (the JSON mParticle sends a Firehose partner, which a partner's Lambda may
# have stored) carries an mpid, user_identities and user_attributes, but is neither a Profile API
# answer nor an Events API batch: its identities may be hashed (encoding md5, sha256) and its
# times and device ids are not under their keys. Every Firehose message has `firehose_version`:
# both JSON loaders stage that field and quarantine the record on it, before their other checks.
FIREHOSE_FIELD = ("firehose", "$.firehose_version")
FIREHOSE_CHECK = (f"NOT {absent_sql('firehose')}", "firehose_request")

# An IDSync answer (identify, search, login, logout: ``{"context", "mpid", "matched_identities",
# "is_ephemeral"}``, as a lookup of customer ids to MPIDs saves them) names a profile, but its
# identities are only those of the request that matched ("not a complete list of all identities
# associated with the user profile", mParticle's HTTP API reference): read as a Profile API answer
# it replaced the stored profile with one of no identities, attributes or audiences, and as a
# batch it applied nothing but the MPID. Both JSON loaders quarantine it on `matched_identities`.
IDSYNC_FIELD = ("idsync", "$.matched_identities")
IDSYNC_CHECK = (f"NOT {absent_sql('idsync')}", "idsync_response")

# The keys of an Events API batch (inbound, or forwarded by an event output) that a Profile API
# answer never has (docs/loading.md#mparticle-profiles): a record holding one is a batch, which
# mparticle-profiles quarantines (events_api_batch) instead of replacing the profile with the few
# identities and attributes it carries. Every batch key is optional, so an attribute-only update
# of a feed may have no `events`, but its envelope has some of the others.
BATCH_ONLY_KEYS = ("events", "device_info", "application_info", "deleted_user_attributes", "source_request_id",
                   "source_info", "schema_version", "timestamp_unixtime_ms", "batch_id", "message_id",
                   "message_type")

# the messages of other mParticle APIs both JSON loaders quarantine: the fields they stage (beside
# their own containers) and the checks on them, first of their checks
OTHER_MESSAGE_FIELDS = [FIREHOSE_FIELD, IDSYNC_FIELD]
OTHER_MESSAGE_CHECKS = [FIREHOSE_CHECK, IDSYNC_CHECK]
# ...tried before the MPID rules: such a record is what it is, whatever its mpid (a Firehose
# audience_membership_change_request has no top-level mpid, IDSync's documented example holds
# "mpid": "string"), not a profile or a batch without a valid MPID; so is an Events API batch
# read as profiles (mparticle-profiles: a batch names its user by identities alone, often
# without an mpid, and was quarantined missing_mpid without a word of what it is)
_BEFORE_MPID = {reason for _, reason in OTHER_MESSAGE_CHECKS} | {"events_api_batch"}


def _reason_sql(checks: list[tuple[str, str]], parsed: bool = True) -> str:
    """SQL: a staged record's quarantine reason (NULL: none). ``parsed``: the record went through
    the JSON functions (``malformed``, ``is_obj``), not the typed fast path. The checks of
    :data:`OTHER_MESSAGE_CHECKS` come before the MPID rules, the others after them, in order."""
    def whens(cs) -> str:
        return " ".join(f"WHEN {cond} THEN {sql_str(reason)}" for cond, reason in cs)

    head = "WHEN malformed THEN 'malformed_json' WHEN NOT is_obj THEN 'not_an_object' " if parsed else ""
    return (f"CASE {head}{whens(c for c in checks if c[1] in _BEFORE_MPID)} "
            f"WHEN mpid_text IS NULL THEN 'missing_mpid' WHEN mpid IS NULL THEN 'invalid_mpid' "
            f"{whens(c for c in checks if c[1] not in _BEFORE_MPID)} END")


# the epoch milliseconds a TIMESTAMP (and Python's datetime) can hold: years 1 to 9999
# (cohortlab.times.MIN_TIME / MAX_TIME, as an event's `time` is bounded)
_MS_RANGE = "BETWEEN -62135596800000 AND 253402300799999"


def epoch_ms_sql(text: str) -> str:
    """SQL TIMESTAMP (UTC) of an epoch-milliseconds value given as text (number or numeric string);
    NULL for a number no TIMESTAMP of the years 1-9999 holds (``1e400``, ``1e20``, year 10000),
    as for one beyond BIGINT: a later reader of the column could not hold it."""
    ms = f"TRY_CAST(TRY_CAST({text} AS DOUBLE) AS BIGINT)"
    return f"CASE WHEN {ms} {_MS_RANGE} THEN epoch_ms({ms}) END"


# An epoch-milliseconds time below this is before 1973-03-03: what a time written in seconds reads
# as (2026-03-01 is 1,772,323,200 s, read as milliseconds 1970-01-21). mParticle writes milliseconds,
# so the loaders keep reading milliseconds, and warn (the 1e11 rule of the Mixpanel loaders, the
# settings and -o as_of: seconds below it, milliseconds above).
SECONDS_LIKE_MS = 100_000_000_000


def time_warnings(ctx, table: str, fields: dict[str, str], where: str = "TRUE") -> list[str]:
    """The load warnings (each names the file) for the records of ``table`` (``where``) whose
    epoch-ms time ``fields`` ({column: field name}, text or number) is a number that is no time of
    the years 1-9999 (stored as no time: :func:`epoch_ms_sql`), or above 0 and below
    :data:`SECONDS_LIKE_MS` (before 1973-03-03: a time in seconds?). One query for every field;
    each warning gives the first such record's line and value."""
    parts = []
    for col in fields:
        ms = f"TRY_CAST({col} AS DOUBLE)"
        outside = f"{ms} IS NOT NULL AND {epoch_ms_sql(col)} IS NULL"
        early = f"{ms} > 0 AND {ms} < {SECONDS_LIKE_MS}"
        # the number as the same text whichever path read it (the fast path reads 1e300 as 1e+300)
        shown = f"coalesce(CAST(TRY_CAST({col} AS BIGINT) AS VARCHAR), printf('%.6g', {ms}))"
        for cond in (outside, early):
            parts.append(f"count(*) FILTER (WHERE {cond}), min(line) FILTER (WHERE {cond}), "
                         f"arg_min({shown}, line) FILTER (WHERE {cond})")
    row = ctx.engine.query_rows(f"SELECT {', '.join(parts)} FROM {table} WHERE {where}")[0]
    out = []
    for i, field_name in enumerate(fields.values()):
        (n_out, l_out, v_out), (n_early, l_early, v_early) = row[6 * i:6 * i + 3], row[6 * i + 3:6 * i + 6]
        if n_out:
            out.append(f"{ctx.path}: {n_out:,} record(s) give {field_name} outside the years 1-9999 "
                       f"(line {l_out}: {v_out}): stored as no time")
        if n_early:
            out.append(f"{ctx.path}: {n_early:,} record(s) give {field_name} before 1973-03-03 as epoch "
                       f"milliseconds (line {l_early}: {v_early}); mParticle writes milliseconds: is the file "
                       "in seconds?")
    return out


def bad_epoch_ms_sql(text: str) -> str:
    """SQL BOOLEAN: the text is present (not absent/null) but not an epoch-ms number."""
    return f"({text} IS NOT NULL AND TRY_CAST({text} AS DOUBLE) IS NULL)"


def json_bool_sql(j: str, jtype: str | None = None) -> str:
    """SQL BOOLEAN: JSON true / "true" / "True" / "TRUE" → TRUE, false / "false" / … → FALSE,
    anything else (numbers, lists, null, other strings) → NULL. ``jtype``: its JSON type if known."""
    jt = jtype or f"json_type({j})"
    return (
        f"CASE {jt} WHEN 'BOOLEAN' THEN json_extract_string({j}, '$') = 'true' "
        f"WHEN 'VARCHAR' THEN CASE lower(json_extract_string({j}, '$')) WHEN 'true' THEN TRUE "
        f"WHEN 'false' THEN FALSE END END"
    )


def text_bool_sql(t: str) -> str:
    """SQL BOOLEAN for text: 'true'/'True'/'TRUE' → TRUE, 'false'/… → FALSE, else NULL."""
    return f"CASE lower({t}) WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END"


def stage_sql(
    records: str,
    scalars: list[tuple[str, str]],
    containers: list[tuple[str, str]],
    checks: list[tuple[str, str]],
    extra: str = "",
) -> str:
    """SELECT (line, reason0, mpid, <scalar>…, <container>…, <container>_t…) in one pass.

    ``records`` returns (line, j) (:func:`records_sql`); ``scalars`` and ``containers`` are
    (name, JSON path) pairs; ``scalars`` must include ``("mpid_text", "$.mpid")``. The MPID is
    its exact text (a JSON integer or string; ``1.5``, ``9.08e18``, ``true`` are text that
    :mod:`cohortlab.identifiers` rejects). ``checks`` are (SQL condition, reason) tried in order
    after the MPID rules, those of :data:`OTHER_MESSAGE_CHECKS` before them (:func:`_reason_sql`). ``extra``: more select expressions on ``j`` (e.g. ``, expr AS name``).
    The raw text is not kept (see :func:`reject_with_raw`)."""
    paths = sql_list(p for _, p in scalars + containers)
    # scalars as text (a string unquoted, a number as its exact text, null -> NULL)
    sp = "[" + ", ".join(f"json_extract_string(v[{i + 1}], '$')" for i in range(len(scalars))) + "]"
    scols = ", ".join(f"s[{i + 1}] AS {n}" for i, (n, _) in enumerate(scalars))
    ccols = ", ".join(
        f"c[{i + 1}] AS {n}, {container_type_sql(f'c[{i + 1}]')} AS {n}_t" for i, (n, _) in enumerate(containers)
    )
    return f"""
        SELECT * EXCLUDE (malformed, is_obj), {_reason_sql(checks)} AS reason0
        FROM (
          SELECT *, {mpid_sql('mpid_text')} AS mpid
          FROM (
            SELECT line, malformed, is_obj, {scols}, {ccols} {extra}
            FROM (
              SELECT line, j, malformed, is_obj,
                     CASE WHEN is_obj THEN {sp} END AS s,
                     CASE WHEN is_obj THEN v[{len(scalars) + 1}:] END AS c
              FROM (
                -- one JSON parse per record: every field at once (NULL: not valid JSON)
                SELECT line, j, v, v IS NULL AS malformed,
                       v IS NOT NULL AND (ascii(j::VARCHAR) = 123 OR starts_with(ltrim(j::VARCHAR, ' \t\r\n'), '{{')) AS is_obj
                FROM (SELECT line, j, try(json_extract(j, {paths})) AS v FROM ({records}))
              )
            )
          )
        )"""


def create_stage(
    ctx: FileContext,
    tmp: "Temp",
    scalars: list[tuple[str, str]],
    containers: list[tuple[str, str]],
    checks: list[tuple[str, str]],
    extra: str = "",
    fast_text: tuple[str, ...] | None = None,
) -> str:
    """The staged records of :func:`stage_sql` for the file, as a temp table (or view); returns
    its name. A JSONL file is parsed in parallel: its lines are staged unnumbered, blank ones
    included (``line`` NULL), and the view ``stage`` numbers them by position
    (:meth:`FileContext.numbered_table`).

    ``fast_text`` (not None): JSONL may take the typed fast path (:func:`_fast_stage`), which
    reads these scalars as ``VARCHAR`` straight from ``read_json`` (only scalars used as numbers,
    booleans or an MPID may be named: ``read_json`` spells a float ``1e+18`` where the JSON
    functions spell it ``1000000000000000000.0``, which neither a number nor an MPID tells
    apart)."""
    if sniff_json_layout(ctx.text_path()) == "jsonl":
        if fast_text is not None and fast.enabled() and not extra:
            staged = _fast_stage(ctx, tmp, scalars, containers, checks, fast_text)
            if staged is not None:
                return staged
        rows = tmp("stage_rows")
        lines = f"SELECT line, raw AS j FROM ({ctx.unnumbered_lines_sql()})"
        line = ctx.numbered_table(rows, stage_sql(lines, scalars, containers, checks, extra))
        if line is not None:
            return tmp.view("stage", f"SELECT {line} AS line, * EXCLUDE (line) FROM {rows} WHERE line IS NOT NULL")
    return tmp.create("stage", stage_sql(records_sql(ctx), scalars, containers, checks, extra))


_TOP_KEY = re.compile(r"\$\.([A-Za-z_][A-Za-z0-9_]*)")


def _fast_stage(
    ctx: FileContext,
    tmp: "Temp",
    scalars: list[tuple[str, str]],
    containers: list[tuple[str, str]],
    checks: list[tuple[str, str]],
    fast_text: tuple[str, ...],
) -> str | None:
    """The typed fast path (:mod:`cohortlab.loaders.fast`) of :func:`create_stage` for JSONL:
    the same columns from a ``read_json`` of the top-level fields only (scalars in ``fast_text``
    as ``VARCHAR``, the others as JSON leaves typed by ``json_extract_string`` as in
    :func:`stage_sql`, containers as JSON), numbered by position. Returns the view's name, or
    None (nothing left behind) when the file needs the exact path: not one record per line, or a
    record with a record-level reason (a malformed line, a missing or invalid MPID such as a JSON
    float, a bad timestamp or container), which the exact path quarantines with its raw text."""
    keys = [(n, _TOP_KEY.fullmatch(p)) for n, p in scalars + containers]
    if any(m is None for _, m in keys):
        return None
    column = {n: m.group(1) for n, m in keys}
    types = {column[n]: ("VARCHAR" if n in fast_text else "JSON") for n, _ in scalars}
    types.update({column[n]: "JSON" for n, _ in containers})
    if len(types) != len(keys):  # one key read twice: leave it to the exact path
        return None

    def src(n: str) -> str:
        return '"' + column[n].replace('"', '""') + '"'

    scols = ", ".join(
        (f"{src(n)}::VARCHAR AS {n}" if n in fast_text else f"json_extract_string({src(n)}, '$') AS {n}")
        for n, _ in scalars
    )
    ccols = ", ".join(f"{src(n)} AS {n}, {container_type_sql(src(n))} AS {n}_t" for n, _ in containers)
    select = f"""
        SELECT *, {_reason_sql(checks, parsed=False)} AS reason0
        FROM (SELECT *, {mpid_sql('mpid_text')} AS mpid
              FROM (SELECT 0::BIGINT AS line, {scols}, {ccols} FROM {fast.read_json_sql(ctx, types)}))"""
    rows = tmp("fast_rows")
    line = fast.accepted(ctx, rows, select, rejected="reason0 IS NOT NULL")
    if line is None:
        return None
    return tmp.view("stage", f"SELECT {line} AS line, * EXCLUDE (line) FROM {rows}")


def reject_with_raw(ctx: FileContext, checked: str) -> Counter:
    """Quarantine the records of ``checked`` (line, reason) whose reason is not NULL, reading
    their raw text back from the file (only when there are any: the common path never keeps
    raw record text around)."""
    bad = f"SELECT line, reason FROM {checked} WHERE reason IS NOT NULL"
    if not ctx.engine.query_rows(f"SELECT 1 FROM ({bad}) LIMIT 1"):
        return Counter()
    return ctx.reject(
        f"SELECT r.line, b.reason, r.raw FROM ({ctx.json_records_sql()}) r JOIN ({bad}) b ON r.line = b.line"
    )


_IDENTITY_ENTRY = ('[{"type": "VARCHAR", "identity_type": "VARCHAR", "value": "JSON", "identity": "JSON", '
                   '"encoding": "VARCHAR"}]')


def identities_sql(stage: str, col: str, kind: str) -> str:
    """SELECT (line, pos, mpid, kind, identity_type, value, bad, respelled, float_key, hashed) — one row
    per identity entry of the staged JSON field ``col`` of the good records (``reason0 IS NULL``)
    of ``stage``.

    ``col`` is an object map ``{type: value}`` or a list of ``{type, encoding, value}`` /
    ``{identity_type, identity}`` objects. ``value`` is the identity as text, NULL when the entry's
    value is null/missing (no identity; in batches: remove that identity). An entry whose value is
    the empty string gives no row (unless it is ``bad``): it holds no identity, as an empty CSV cell
    or Parquet value does, neither set nor, in a batch, removed (mParticle's own JSON writes
    ``"android_uuid": ""`` in an iOS device's ``device_info``). ``pos`` orders the
    entries inside one record. ``bad`` flags an entry that is not an object, has no type, or has
    a non-scalar value; ``respelled`` one whose type is not spelled as its normalised name
    (``Email``, ``customerid``: :func:`repeated_identity_warnings`). ``float_key``, for a value
    written as a JSON float only, is the key it is written under (a map's type as written, a list
    entry's ``value`` or ``identity``), for :func:`recover_identity_float_tokens`. ``hashed`` flags a
    list entry whose ``encoding`` names a hash (``md5``, ``sha1``, ``sha256``; not ``none``, nor
    ``raw``, the Firehose SDK's name for no encoding): its value is a hash of the identity, not the
    identity (:func:`hashed_identity_warnings`). (Lists are
    unnested, not joined with ``json_each``: several times faster.)"""
    return f"""
      SELECT * FROM (
        SELECT line, pos, mpid, '{kind}' AS kind,
               CASE WHEN known IS NOT NULL THEN known ELSE {identity_type_sql('clean_type')} END AS identity_type,
               CASE WHEN value_t IN ('VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE')
                    THEN json_extract_string(value_j, '$') END AS value,
               ((known IS NULL AND (clean_type IS NULL OR clean_type = ''))
                OR coalesce(value_t IN ('BOOLEAN', 'OBJECT', 'ARRAY'), FALSE)) AS bad,
               coalesce(raw_type <> identity_type, FALSE) AS respelled,  -- (the alias above)
               CASE WHEN value_t = 'DOUBLE' THEN value_key END AS float_key,
               coalesce(regexp_full_match(lower(trim(encoding)), 'md5|sha-?[0-9]+'), FALSE) AS hashed
        FROM (
          -- a type spelled exactly as a known one (nearly all) is looked up (a join with a small
          -- table); only the others are cleaned and normalised row by row
          SELECT e.*, t.known, CASE WHEN t.known IS NULL THEN {clean_identity_type_sql('raw_type')} END AS clean_type,
                 json_type(value_j) AS value_t
          FROM (
            SELECT line, mpid, pos, coalesce(el.type, el.identity_type) AS raw_type,
                   CASE WHEN el.value IS NOT NULL THEN el.value ELSE el.identity END AS value_j,
                   CASE WHEN el.value IS NOT NULL THEN 'value' ELSE 'identity' END AS value_key,
                   el.encoding AS encoding
            FROM (
              SELECT line, mpid, unnest(range(1, len(x) + 1)) AS pos, unnest(x) AS el
              FROM (SELECT line, mpid, json_transform({col}, '{_IDENTITY_ENTRY}') AS x
                    FROM {stage} WHERE reason0 IS NULL AND {col}_t = 'ARRAY')
            )
            UNION ALL
            SELECT line, mpid, unnest(range(1, len(k) + 1)) AS pos, unnest(k) AS raw_type, unnest(v) AS value_j,
                   unnest(k) AS value_key, NULL::VARCHAR AS encoding
            FROM (SELECT line, mpid, json_keys({col}) AS k, json_extract({col}, '$.*') AS v
                  FROM {stage} WHERE reason0 IS NULL AND {col}_t = 'OBJECT')
          ) e LEFT JOIN ({_KNOWN_TYPES_SQL}) t ON t.spelling = e.raw_type
        )
      ) WHERE value IS DISTINCT FROM '' OR bad"""


def recover_identity_float_tokens(ctx: FileContext, ids: str) -> None:
    """Give the identities of ``ids`` (rows of :func:`identities_sql`: (line, kind, pos, float_key)
    tells an entry) whose value is a JSON float (``"customer_id": 9080350317581165123.0``,
    ``1e18``) the token the file spells, as the Mixpanel loaders keep a float-spelled identifier: DuckDB re-writes such a
    number (``9080350317581166000.0``, ``1000000000000000000.0``), and the identity would then match
    neither its own spelling elsewhere nor anything else. Matched by value among the tokens written
    under the value's key in the record's document
    (:func:`cohortlab.loaders.mixpanel_common.recover_float_tokens`); a document spelling that
    value two ways keeps DuckDB's text. Only a JSON file's identities; nothing is read when no
    value is a float (one scan of ``float_key``, NULL for any other)."""
    from cohortlab.loaders.mixpanel_common import doc_no_sql, recover_float_tokens

    eng = ctx.engine
    if not eng.query_rows(f"SELECT 1 FROM {ids} WHERE float_key IS NOT NULL LIMIT 1"):
        return
    floats = f"{ids}_floats"  # the few float entries, each with one key
    eng.execute(f"CREATE OR REPLACE TEMP TABLE {floats} AS SELECT line, kind, pos, float_key, value, "
                f"concat_ws(':', line, kind, pos, float_key) AS ekey FROM {ids} WHERE float_key IS NOT NULL")
    layout = sniff_json_layout(ctx.text_path())
    for (key,) in eng.query_rows(f"SELECT DISTINCT float_key FROM {floats} ORDER BY 1"):
        recover_float_tokens(ctx, layout, floats, key="ekey", doc_no=doc_no_sql(layout), ord_="pos",
                             typ=f"CASE WHEN float_key = {sql_str(key)} THEN 'DOUBLE' END", text="value",
                             json_key=key)
    eng.execute(f"UPDATE {ids} SET value = f.value FROM {floats} f WHERE {ids}.line = f.line AND {ids}.kind = f.kind "
                f"AND {ids}.pos = f.pos AND {ids}.float_key = f.float_key AND {ids}.value <> f.value")
    eng.execute(f"DROP TABLE {floats}")


def hashed_identity_warnings(ctx, ids: str, where: str = "TRUE") -> list[str]:
    """The load warning (naming the file) for the identities of ``ids`` (rows of
    :func:`identities_sql`, ``where`` choosing the entries that count) whose ``encoding`` says
    they are hashed: not loaded, a hash is not the identity (stored as the user's email it would
    match nothing, and ``recoverable_via`` and ``distinct_id_is_identity`` would quietly miss).
    Names the count per identity type and the first one's line, never a value."""
    rows = ctx.engine.query_rows(
        f"SELECT kind || ' ' || identity_type, count(*), min(line) FROM {ids} WHERE hashed AND NOT bad AND {where} "
        f"GROUP BY ALL ORDER BY 3, 1")
    if not rows:
        return []
    types = ", ".join(f"{t} {n:,}" for t, n, _ in rows)
    n, line = sum(r[1] for r in rows), min(r[2] for r in rows)
    return [f"{ctx.path}: {n:,} identit{'y is' if n == 1 else 'ies are'} hashed (encoding md5, sha1 or sha256: "
            f"{types}; first: line {line}): not loaded, a hash is not the identity (recoverable_via and "
            "distinct_id_is_identity cannot use it)"]


def repeated_identity_warnings(ctx, ids: str, where: str, kept: str) -> list[str]:
    """The load warning (naming the file) for the records whose identities (``ids``: rows of
    :func:`identities_sql`, ``where`` choosing the entries that count) give one identity type in two
    spellings equal once normalised (``{"Email": …, "email": …}``, ``customerid`` and
    ``customer_id``). ``kept`` says which value the loader keeps. The warning names the first such
    record's line and the normalised type, never a value (identities are personal data).

    Cheap in the common case, as the fast path must stay: such a record holds a type spelled
    otherwise than its normalised name (``respelled``) beside the type spelled as that name, so
    only the types a file spells both ways are grouped by record (found by a scan of ``ids``'
    boolean ``respelled``, usually none, then of the rows of the types it names). Both paths
    stage the same rows, so they agree. Not found: a record whose two spellings of a type are both
    other than its name (``EMAIL`` and ``Email``) in a file that never spells it as its name."""
    def types(cond: str) -> str:
        rows = ctx.engine.query_rows(f"SELECT DISTINCT kind, identity_type FROM {ids} WHERE {cond} AND {where}")
        return " OR ".join(f"(kind = '{k}' AND identity_type = {sql_str(t)})" for k, t in rows)

    respelled = types("respelled")  # usually none: one scan of a boolean column
    pairs = respelled and types(f"NOT respelled AND ({respelled})")
    if not pairs:
        return []
    n, line, shown = ctx.engine.query_rows(
        f"SELECT count(DISTINCT line), min(line), arg_min(kind || ' identity type ' || identity_type, line) "
        f"FROM (SELECT line, kind, identity_type FROM {ids} WHERE ({pairs}) AND {where} "
        f"AND line NOT IN (SELECT line FROM {ids} WHERE bad) "  # a quarantined record
        f"GROUP BY ALL HAVING count(*) > 1 AND bool_or(respelled))")[0]
    if not n:
        return []
    return [f"{ctx.path}: {n:,} record(s) give an identity type twice, spelled two ways (line {line}: "
            f"{shown}): {kept}"]


def _known_types_sql() -> str:
    """VALUES (spelling, known): every identity type name and alias, spelled as normalised."""
    pairs = {t: t for t in USER_IDENTITY_TYPES + DEVICE_IDENTITY_TYPES}
    pairs.update(IDENTITY_TYPE_ALIASES)
    rows = ", ".join(f"({sql_str(k)}, {sql_str(v)})" for k, v in sorted(pairs.items()))
    return f"SELECT * FROM (VALUES {rows}) v(spelling, known)"


_KNOWN_TYPES_SQL = _known_types_sql()


def map_entries_sql(stage: str, col: str) -> str:
    """SELECT (line, mpid, key, value JSON, value_t) — one row per key of the staged JSON object
    ``col`` (records whose ``col`` is not an object give none). An object that repeats a key
    (``{"A": "1", "A": "2"}``) gives one row for it, its first value, as ``$.A`` reads every other
    field (two rows made the attribute's value depend on which one a query met first). Only such
    an object has its keys' first positions (``p``) computed: ``list_unique`` is the one extra cost
    per record."""
    return f"""
        SELECT line, mpid, key, value, json_type(value) AS value_t FROM (
          SELECT line, mpid,
                 unnest(CASE WHEN p IS NULL THEN k ELSE list_transform(p, lambda i: k[i]) END) AS key,
                 unnest(CASE WHEN p IS NULL THEN v ELSE list_transform(p, lambda i: v[i]) END) AS value
          FROM (
            SELECT line, mpid, k, v,
                   CASE WHEN list_unique(k) < len(k)
                        THEN list_filter(range(1, len(k) + 1), lambda i: list_position(k, k[i]) = i) END AS p
            FROM (SELECT line, mpid, json_keys({col}) AS k, json_extract({col}, '$.*') AS v
                  FROM {stage} WHERE {col}_t = 'OBJECT')
          )
        )"""


def attributes_sql(stage: str, col: str) -> str:
    """SELECT (line, mpid, name, value JSON, value_bool) — one row per key of the staged JSON
    object ``col``. A tag (``name: null``) keeps the JSON ``null`` as its value."""
    return f"""
        SELECT line, mpid, key AS name, value, {json_bool_sql('value', 'value_t')} AS value_bool
        FROM ({map_entries_sql(stage, col)})"""


# --------------------------------------------------------------------------- writing
class Temp:
    """Per-file temp table names (``_mpa<load_id>_<name>``), dropped by :meth:`drop_all` after a
    successful file. Not in a ``finally``: after an engine error the transaction is aborted (any
    statement fails and would hide the real error); the rollback removes the temp tables anyway."""

    def __init__(self, ctx: FileContext) -> None:
        self.ctx = ctx
        self.names: list[str] = []
        self.views: list[str] = []

    def __call__(self, name: str) -> str:
        t = f"_mpa{self.ctx.load_id}_{name}"
        if t not in self.names:
            self.names.append(t)
        return t

    def create(self, name: str, sql: str) -> str:
        t = self(name)
        self.ctx.engine.execute(f"CREATE OR REPLACE TEMP TABLE {t} AS {sql}")
        return t

    def view(self, name: str, sql: str) -> str:
        t = self(name)
        self.views.append(t)
        self.ctx.engine.execute(f"CREATE OR REPLACE TEMP VIEW {t} AS {sql}")
        return t

    def drop_all(self) -> None:
        for t in reversed(self.names):
            kind = "VIEW" if t in self.views else "TABLE"
            self.ctx.engine.execute(f"DROP {kind} IF EXISTS {t}")
        self.names.clear()
        self.views.clear()


# the capture time of the stored snapshot rows: their load's as_of, else its load time
_SNAPSHOT_KINDS = ("mparticle-profiles", "mparticle-csv", "mparticle-parquet")
_AS_OF_SQL = "TRY_CAST(json_extract_string(l.options, '$.as_of') AS TIMESTAMP)"
_CAPTURED_SQL = f"coalesce({_AS_OF_SQL}, l.loaded_at)"


def snapshot_newer_sql(mpid: str, time: str) -> str:
    """SQL BOOLEAN: the stored profile of MPID ``mpid`` is a snapshot (Profile API, CSV, Parquet)
    taken at or after ``time`` by its own as-of time (``-o as_of`` or a fetched folder's): it
    already holds what happened at ``time`` (at the same instant the snapshot wins, as
    :func:`replace_profiles` keeps only what batches wrote after its as-of time). A snapshot
    without an as-of time is no such evidence (its load time says nothing of when it was taken)."""
    return (f"EXISTS (SELECT 1 FROM mpa_profiles p JOIN loads l ON l.load_id = p.load_id "
            f"WHERE p.mpid = {mpid} AND p.source <> 'batches' AND {_AS_OF_SQL} >= {time})")


def replace_profiles(
    ctx: FileContext,
    profiles: str,
    identities: str | None,
    attributes: str | None,
    audiences: str | None,
    columns: Sequence[str] = (),
    header_line: int = 1,
) -> int:
    """Replace every ``mpa_*`` row of the MPIDs in ``profiles`` by the staged rows, unless a
    snapshot taken later holds the MPID: returns how many staged MPIDs that kept (superseded).
    ``columns``: the attribute names the file carries as columns (a CSV header, a Parquet
    schema, at ``header_line``): the file carries them also when no row has a value (a cohort
    attribute the feed wrote on no profile is observed absent on each).

    The file's capture time is its ``as_of`` (option or ``fetch.json``), else the load time; a
    stored row's is its load's. A snapshot delivered late (day 4 after day 5) so leaves each
    MPID as the newest snapshot has it, whatever the order of the loads
    (docs/loading.md#mparticle-profiles). What an Events API batch newer than the file's own as_of
    set or removed (``mpa_batch_times``) stays as it left it, in any load order; without an as_of
    the snapshot replaces what batches wrote.

    ``profiles``: (mpid, created_at, last_stored_at, is_opted_out, environment, source, line);
    ``identities``: (mpid, kind, identity_type, value, line);
    ``attributes``: (mpid, name, value, value_bool, line);
    ``audiences``: (mpid, audience_id, audience_name, expiration_at, line).
    A staged table given as None means "none" (the MPID's rows are still removed)."""
    ex = ctx.engine.execute
    superseded = 0
    as_of = ctx.options.get("as_of")
    captured = f"TIMESTAMP {sql_str(as_of)}" if as_of else "now()::TIMESTAMP"
    newer = f"_mpa_newer_{ctx.load_id}"
    # a stored snapshot can be newer only if some earlier load was captured after this file:
    # a look at the few rows of `loads` spares the join of every stored profile otherwise
    if ctx.engine.query_rows(
        f"SELECT 1 FROM loads l WHERE list_contains({sql_list(_SNAPSHOT_KINDS)}, l.kind) AND {_CAPTURED_SQL} > {captured} LIMIT 1"
    ):
        ex(f"""CREATE OR REPLACE TEMP TABLE {newer} AS
               SELECT p.mpid FROM mpa_profiles p JOIN loads l ON l.load_id = p.load_id
               WHERE p.source <> 'batches' AND {_CAPTURED_SQL} > {captured}
                 AND p.mpid IN (SELECT mpid FROM {profiles})""")
        superseded = int(ctx.engine.query_rows(f"SELECT count(*) FROM {newer}")[0][0])
    read_attributes = attributes
    if superseded:
        def kept(staged: str | None) -> str | None:
            return staged and f"(SELECT * FROM {staged} WHERE mpid NOT IN (SELECT mpid FROM {newer}))"

        profiles, identities, attributes, audiences = map(kept, (profiles, identities, attributes, audiences))
    # what Events API batches set or removed after the snapshot's own as-of time stays as they left
    # it (mpa_batch_times): the snapshot, taken before them, does not undo them, whatever the load
    # order (docs/loading.md#mparticle-batches). A snapshot without an as-of time replaces all.
    later = f"_mpa_later_{ctx.load_id}"
    has_later = bool(as_of) and bool(ctx.engine.query_rows(
        f"SELECT 1 FROM mpa_batch_keys WHERE batch_time > {captured} LIMIT 1"))
    if has_later:
        # the items later batches touched (mpa_batch_times), and every later batch applied
        # (mpa_batch_keys: also one that changed nothing) for the profile's last store
        ex(f"""CREATE OR REPLACE TEMP TABLE {later} AS
               SELECT t.mpid, t.item, t.batch_time, p.environment FROM mpa_batch_times t
               LEFT JOIN mpa_profiles p ON p.mpid = t.mpid
               WHERE t.batch_time > {captured} AND t.mpid IN (SELECT mpid FROM {profiles})
               UNION ALL
               SELECT k.mpid, NULL, k.batch_time, NULL FROM mpa_batch_keys k
               WHERE k.batch_time > {captured} AND k.mpid IN (SELECT mpid FROM {profiles})""")

    def not_later(alias: str, item: str) -> str:
        return (f" AND NOT EXISTS (SELECT 1 FROM {later} x WHERE x.mpid = {alias}.mpid AND x.item = {item})"
                if has_later else "")

    id_item = "'identity:' || {a}.kind || ':' || {a}.identity_type"
    attr_item = "'attribute:' || {a}.name"
    for t, item in (("mpa_profiles", None), ("mpa_identities", id_item), ("mpa_attributes", attr_item),
                    ("mpa_audiences", None)):
        ex(f"DELETE FROM {t} WHERE mpid IN (SELECT mpid FROM {profiles})"
           + (not_later(t, item.format(a=t)) if item else ""))
    prov = "?::BIGINT, ?::VARCHAR, line"
    params = [ctx.load_id, str(ctx.path)]
    ex(
        f"INSERT INTO mpa_profiles SELECT mpid, created_at, last_stored_at, is_opted_out, "
        f"environment, source, {prov} FROM {profiles}",
        params,
    )
    if identities:
        ex(f"INSERT INTO mpa_identities SELECT mpid, kind, identity_type, value, {prov} FROM {identities} s "
           f"WHERE TRUE{not_later('s', id_item.format(a='s'))}", params)
    if attributes:
        ex(f"INSERT INTO mpa_attributes SELECT mpid, name, value, value_bool, {prov} FROM {attributes} s "
           f"WHERE TRUE{not_later('s', attr_item.format(a='s'))}", params)
    if has_later:  # the later batches' environment, and their time as the profile's last store
        ex(f"""UPDATE mpa_profiles SET
                 environment = CASE WHEN x.env_later THEN x.environment ELSE mpa_profiles.environment END,
                 last_stored_at = greatest(coalesce(mpa_profiles.last_stored_at, x.last_at), x.last_at)
               FROM (SELECT mpid, coalesce(bool_or(item = 'environment'), FALSE) AS env_later,
                            any_value(environment) FILTER (WHERE item = 'environment') AS environment,
                            max(batch_time) AS last_at
                     FROM {later} GROUP BY mpid) x
               WHERE mpa_profiles.mpid = x.mpid AND mpa_profiles.load_id = {int(ctx.load_id)}""")
        ex(f"DROP TABLE {later}")
    if read_attributes or columns:
        # every name the file carries, also on records a newer snapshot keeps: the snapshot still
        # carries the attribute and observed its other profiles without it (docs/simulate.md#verify)
        carried = [f"SELECT name, line FROM {read_attributes}"] if read_attributes else []
        carried += [f"SELECT {sql_str(name)} AS name, {int(header_line)} AS line" for name in dict.fromkeys(columns)]
        ex(f"INSERT INTO mpa_snapshot_names SELECT name, {prov} FROM "
           f"(SELECT name, min(line) AS line FROM ({' UNION ALL '.join(carried)}) GROUP BY name)", params)
    if audiences:
        ex(
            f"INSERT INTO mpa_audiences SELECT mpid, audience_id, audience_name, expiration_at, {prov} "
            f"FROM {audiences}",
            params,
        )
    ex(f"DROP TABLE IF EXISTS {newer}")
    return superseded


def count(ctx: FileContext, sql: str) -> int:
    return int(ctx.engine.query_rows(f"SELECT count(*) FROM ({sql})")[0][0])
