"""Shared pieces of the three mParticle loaders (Profile API JSON, Events API batches, CSV).

Everything here builds DuckDB SQL; nothing loops over records in Python.

* Identity type names are normalised to the Events API spelling, lower case
  (:func:`normalise_identity_type` / :func:`identity_type_sql`): IDSync ``customerid`` →
  ``customer_id``, ``other2`` → ``other_id_2``, ``mobilenumber`` → ``mobile_number``,
  ``phonenumber2`` → ``phone_number_2``, …; device ids to the Events API ``device_info`` names
  (``ios_idfa`` → ``ios_advertising_id``, ``android_aaid``/``google_advertising_id`` →
  ``android_advertising_id``, ``android_id`` → ``android_uuid``, …). Unknown types are kept,
  lower-cased, with spaces and hyphens turned into ``_``.
* MPIDs are read from JSON as text (``json_extract_string`` keeps the integer text exactly,
  also above 2^53) and validated by :mod:`cohortlab.identifiers`; a JSON float (``1.5``,
  ``9.08e18``, ``1.0``) is never an MPID.
* :func:`replace_profiles` writes staged profiles into the four ``mpa_*`` tables, replacing
  every row of the same MPIDs (Profile API and CSV snapshots).
"""

from __future__ import annotations

from cohortlab.identifiers import is_valid_mpid_sql
from cohortlab.loaders.base import FileContext

# --------------------------------------------------------------------------- identity types
USER_IDENTITY_TYPES: tuple[str, ...] = (
    "customer_id", "email", "facebook", "twitter", "google", "microsoft", "yahoo", "other",
    *(f"other_id_{i}" for i in range(2, 11)),
    "mobile_number", "phone_number_2", "phone_number_3", "alias", "facebook_custom_audience_id",
)

DEVICE_IDENTITY_TYPES: tuple[str, ...] = (
    "ios_advertising_id", "ios_idfv", "android_advertising_id", "android_uuid", "push_token",
    "roku_advertising_id", "roku_publisher_id", "fire_advertising_id",
    "microsoft_advertising_id", "microsoft_publisher_id", "amp_id", "device_application_stamp",
)


def _aliases() -> dict[str, str]:
    a: dict[str, str] = {
        # IDSync / Profile API / other spellings -> Events API names (user identities)
        "customerid": "customer_id",
        "customer": "customer_id",
        "mobilenumber": "mobile_number",
        "mobile": "mobile_number",
        "facebookcustomaudienceid": "facebook_custom_audience_id",
        "other_id": "other",
        "other1": "other",
        "other_1": "other",
        "other_id_1": "other",
        "otherid": "other",
        "otherid1": "other",
        # device identities: IDSync known_identities and Firehose enum -> Events API device_info
        "ios_idfa": "ios_advertising_id",
        "idfa": "ios_advertising_id",
        "ios_vendor_id": "ios_idfv",
        "idfv": "ios_idfv",
        "android_aaid": "android_advertising_id",
        "google_advertising_id": "android_advertising_id",
        "android_id": "android_uuid",
        "roku_aid": "roku_advertising_id",
        "fire_aid": "fire_advertising_id",
        "apple_push_notification_token": "push_token",
        "google_cloud_messaging_token": "push_token",
    }
    for i in range(2, 11):
        for spelling in (f"other{i}", f"other_{i}", f"otherid{i}", f"otherid_{i}", f"other_id{i}"):
            a[spelling] = f"other_id_{i}"
    for i in (2, 3):
        for spelling in (f"phonenumber{i}", f"phonenumber_{i}", f"phone_number{i}", f"phone{i}"):
            a[spelling] = f"phone_number_{i}"
    return a


IDENTITY_TYPE_ALIASES: dict[str, str] = _aliases()


def _clean(name: str) -> str:
    import re

    return re.sub(r"[\s\-]+", "_", name.strip().lower())


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


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def identity_type_sql(expr: str) -> str:
    """SQL VARCHAR: the normalised identity type of the VARCHAR ``expr``."""
    clean = f"regexp_replace(lower(trim({expr})), '[\\s\\-]+', '_', 'g')"
    whens = " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in sorted(IDENTITY_TYPE_ALIASES.items()))
    return f"(CASE {clean} {whens} ELSE {clean} END)"


# --------------------------------------------------------------------------- JSON value helpers
INT_JSON_TYPES = "('BIGINT', 'UBIGINT')"


def json_mpid_text_sql(j: str) -> str:
    """SQL VARCHAR: the MPID text of the JSON value ``j`` (a JSON integer or string), or NULL
    for any other JSON type (a float such as 1.5 or 9.08e18, a boolean, an object)."""
    return f"CASE WHEN json_type({j}) IN ('BIGINT', 'UBIGINT', 'VARCHAR') THEN json_extract_string({j}, '$') END"


def mpid_reason_sql(j: str) -> str:
    """SQL VARCHAR: 'missing_mpid' / 'invalid_mpid' for the JSON mpid value ``j``, else NULL."""
    text = json_mpid_text_sql(j)
    return (
        f"CASE WHEN {j} IS NULL OR json_type({j}) = 'NULL' THEN 'missing_mpid' "
        f"WHEN NOT {is_valid_mpid_sql(text)} THEN 'invalid_mpid' END"
    )


def json_bool_sql(j: str) -> str:
    """SQL BOOLEAN: JSON true / "true" / "True" / "TRUE" → TRUE, false / "false" / … → FALSE,
    anything else (numbers, lists, null, other strings) → NULL."""
    return (
        f"CASE json_type({j}) WHEN 'BOOLEAN' THEN json_extract_string({j}, '$') = 'true' "
        f"WHEN 'VARCHAR' THEN CASE lower(json_extract_string({j}, '$')) WHEN 'true' THEN TRUE "
        f"WHEN 'false' THEN FALSE END END"
    )


def text_bool_sql(t: str) -> str:
    """SQL BOOLEAN for a VARCHAR (CSV cell): 'true'/'True'/'TRUE' → TRUE, 'false'/… → FALSE."""
    return f"CASE lower({t}) WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END"


def json_epoch_ms_sql(j: str) -> str:
    """SQL TIMESTAMP (UTC) of a JSON epoch-milliseconds value (number or numeric string)."""
    return f"epoch_ms(TRY_CAST(TRY_CAST(json_extract_string({j}, '$') AS DOUBLE) AS BIGINT))"


def json_bad_epoch_ms_sql(j: str) -> str:
    """SQL BOOLEAN: the JSON value is present and not null but is not an epoch-ms number."""
    return (
        f"({j} IS NOT NULL AND json_type({j}) <> 'NULL' AND "
        f"(json_type({j}) NOT IN ('BIGINT', 'UBIGINT', 'DOUBLE', 'VARCHAR') "
        f"OR TRY_CAST(json_extract_string({j}, '$') AS DOUBLE) IS NULL))"
    )


def json_is_absent_sql(j: str) -> str:
    return f"({j} IS NULL OR json_type({j}) = 'NULL')"


def identities_sql(stage: str, col: str, kind: str) -> str:
    """SELECT (line, pos, mpid, kind, identity_type, value, bad) — one row per identity entry of the
    JSON column ``col`` of ``stage`` (which has ``line`` and ``mpid``).

    ``col`` is an object map ``{type: value}`` or a list of ``{type, encoding, value}`` /
    ``{identity_type, identity}`` objects. ``value`` is the identity as text, NULL when the entry's
    value is null/missing (no identity; in batches: remove that identity). ``pos`` orders the
    entries inside one record. ``bad`` flags an
    entry that is not an object, has no type, or has a non-scalar value."""
    is_map = f"json_type(s.{col}) = 'OBJECT'"
    raw_type = (
        f"CASE WHEN {is_map} THEN e.key WHEN json_type(e.value) = 'OBJECT' THEN "
        f"coalesce(json_extract_string(e.value, '$.type'), json_extract_string(e.value, '$.identity_type')) END"
    )
    value_j = (
        f"CASE WHEN {is_map} THEN e.value WHEN json_type(e.value) = 'OBJECT' THEN "
        f"CASE WHEN json_exists(e.value, '$.value') THEN json_extract(e.value, '$.value') "
        f"ELSE json_extract(e.value, '$.identity') END END"
    )
    return f"""
        SELECT line, pos, mpid, '{kind}' AS kind, {identity_type_sql('raw_type')} AS identity_type,
               CASE WHEN json_type(value_j) IN ('VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE')
                    THEN json_extract_string(value_j, '$') END AS value,
               (raw_type IS NULL OR trim(raw_type) = ''
                OR coalesce(json_type(value_j) IN ('BOOLEAN', 'OBJECT', 'ARRAY'), FALSE)) AS bad
        FROM (
            SELECT s.line, e.id AS pos, s.mpid, {raw_type} AS raw_type, {value_j} AS value_j
            FROM {stage} s, json_each(s.{col}) e
            WHERE json_type(s.{col}) IN ('OBJECT', 'ARRAY')
        )"""


def attributes_sql(stage: str, col: str) -> str:
    """SELECT (line, mpid, name, value JSON, value_bool) — one row per key of the JSON object
    ``col``. A tag (``name: null``) keeps the JSON ``null`` as its value."""
    return f"""
        SELECT s.line, s.mpid, e.key AS name, e.value AS value, {json_bool_sql('e.value')} AS value_bool
        FROM {stage} s, json_each(s.{col}) e
        WHERE json_type(s.{col}) = 'OBJECT'"""


# --------------------------------------------------------------------------- writing
class Temp:
    """Per-file temp table names (``_mpa<load_id>_<name>``), dropped by :meth:`drop_all`."""

    def __init__(self, ctx: FileContext) -> None:
        self.ctx = ctx
        self.names: list[str] = []

    def __call__(self, name: str) -> str:
        t = f"_mpa{self.ctx.load_id}_{name}"
        if t not in self.names:
            self.names.append(t)
        return t

    def create(self, name: str, sql: str) -> str:
        t = self(name)
        self.ctx.engine.execute(f"CREATE OR REPLACE TEMP TABLE {t} AS {sql}")
        return t

    def drop_all(self) -> None:
        for t in reversed(self.names):
            self.ctx.engine.execute(f"DROP TABLE IF EXISTS {t}")
        self.names.clear()


def replace_profiles(
    ctx: FileContext,
    profiles: str,
    identities: str | None,
    attributes: str | None,
    audiences: str | None,
) -> None:
    """Replace every ``mpa_*`` row of the MPIDs in ``profiles`` by the staged rows.

    ``profiles``: (mpid, created_at, last_stored_at, is_opted_out, environment, source, line);
    ``identities``: (mpid, kind, identity_type, value, line);
    ``attributes``: (mpid, name, value, value_bool, line);
    ``audiences``: (mpid, audience_id, audience_name, expiration_at, line).
    A staged table given as None means "none" (the MPID's rows are still removed)."""
    ex = ctx.engine.execute
    for t in ("mpa_profiles", "mpa_identities", "mpa_attributes", "mpa_audiences"):
        ex(f"DELETE FROM {t} WHERE mpid IN (SELECT mpid FROM {profiles})")
    prov = "?::BIGINT, ?::VARCHAR, line"
    params = [ctx.load_id, str(ctx.path)]
    ex(
        f"INSERT INTO mpa_profiles SELECT mpid, created_at, last_stored_at, is_opted_out, "
        f"environment, source, {prov} FROM {profiles}",
        params,
    )
    if identities:
        ex(f"INSERT INTO mpa_identities SELECT mpid, kind, identity_type, value, {prov} FROM {identities}", params)
    if attributes:
        ex(f"INSERT INTO mpa_attributes SELECT mpid, name, value, value_bool, {prov} FROM {attributes}", params)
    if audiences:
        ex(
            f"INSERT INTO mpa_audiences SELECT mpid, audience_id, audience_name, expiration_at, {prov} "
            f"FROM {audiences}",
            params,
        )


def count(ctx: FileContext, sql: str) -> int:
    return int(ctx.engine.query_rows(f"SELECT count(*) FROM ({sql})")[0][0])
