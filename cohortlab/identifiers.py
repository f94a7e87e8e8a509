"""The rules for an MPID (docs/rules.md#mpid), as SQL expression builders (DuckDB dialect).

A valid MPID (docs/rules.md#valid-mpid) is a signed 64-bit integer written as text: optional ``-``, decimal digits, no
spaces, no exponent, no decimal point, within int64 range. Nothing else is an MPID.
These builders are shared by the loaders (mParticle side: an invalid MPID is quarantined) and
by the resolution step (Mixpanel side: an invalid identifier is classified, never dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

MPID_PATTERN = r"^-?[0-9]+$"


def is_valid_mpid_sql(text_expr: str) -> str:
    """SQL boolean: ``text_expr`` (VARCHAR) is a valid MPID. NULL input gives FALSE.

    A text whose BIGINT cast prints back identically is canonical and valid; only the rare
    non-canonical numeric text (leading zeros, ``+5``, `` 5``, ``-0``), which the cast forgives,
    is matched against :data:`MPID_PATTERN`. Written as a ``CASE`` because DuckDB evaluates
    a ``CASE`` branch only on the rows that reach it (an ``AND`` evaluates both sides): a third
    of the time of the pattern on every row, on a mix of ids."""
    n = f"TRY_CAST({text_expr} AS BIGINT)"
    return (
        f"CASE WHEN {n} IS NULL THEN FALSE WHEN CAST({n} AS VARCHAR) = {text_expr} THEN TRUE "
        f"ELSE regexp_matches({text_expr}, '{MPID_PATTERN}') END"
    )


def mpid_sql(text_expr: str) -> str:
    """SQL BIGINT: the MPID that ``text_expr`` denotes, or NULL when it is not a valid MPID
    (the test of :func:`is_valid_mpid_sql`, in the same order)."""
    n = f"TRY_CAST({text_expr} AS BIGINT)"
    return (
        f"CASE WHEN {n} IS NULL THEN NULL WHEN CAST({n} AS VARCHAR) = {text_expr} THEN {n} "
        f"WHEN regexp_matches({text_expr}, '{MPID_PATTERN}') THEN {n} END"
    )


def exact_float_mpid_sql(text_expr: str) -> str:
    """SQL BIGINT: the MPID a float spelling without an exponent names exactly, its fraction all
    zeros (``9080350317581165123.0``: that MPID, which several MPIDs share as a double), else NULL
    (docs/rules.md#recovery-order)."""
    return mpid_sql(f"regexp_extract({text_expr}, '^(-?[0-9]+)[.]0*$', 1)")


def float_rounded_mpid_sql(bigint_expr: str) -> str:
    """SQL BIGINT: ``int(float(mpid))`` — what an MPID becomes after passing through a double.

    Used for precision loss (docs/rules.md#precision-loss): an identifier that is a valid int64, is not an existing
    MPID, but equals this value for an existing MPID. Values that round to 2^63 (outside int64)
    give NULL.
    """
    return f"TRY_CAST(CAST({bigint_expr} AS DOUBLE) AS BIGINT)"


def app_event_sql(device_expr: str) -> str:
    """SQL condition: an event the app sends, the only ones SDK code (app code setting
    ``$mparticle_user_id``) can write from: it carries a ``$device_id`` (``device_expr``), which
    Mixpanel's client SDKs set and server-side events usually lack. One rule for the
    identity-gaps page's ``sdk_code`` remedy and the what-if's ``kind: sdk`` plans
    (docs/simulate.md#remedies, docs/migration.md#model)."""
    return f"({device_expr} IS NOT NULL AND {device_expr} <> '')"


DEVICE_PREFIX = "$device:"


def logged_in_event_sql(user_expr: str) -> str:
    """SQL condition: an event of a logged-in user: it carries a ``$user_id`` (``user_expr``).
    Under Simplified ID Merge an event's distinct_id is its ``$user_id`` when it has one, else
    ``$device:<device>``; an anonymous event merged later shows under the user's distinct_id
    but still has no ``$user_id`` (docs/rules.md#remediations). An empty ``$user_id`` is none, as
    an empty ``$device_id`` is no device (:func:`app_event_sql`)."""
    return f"({user_expr} IS NOT NULL AND {user_expr} <> '')"


# the values of mParticle's device identities (a bare device id as distinct_id: under an identity
# EIT mParticle forwards "a device ID mapped to the Distinct ID" before the user has that identity)
_DEVICE_IDENTITIES = ("SELECT DISTINCT value AS device_identity FROM mpa_identities "
                      "WHERE kind = 'device' AND value IS NOT NULL")
HAS_USER_ID_SQL = f"SELECT 1 FROM mp_events WHERE {logged_in_event_sql('user_id')} LIMIT 1"


@dataclass(frozen=True)
class LoggedIn:
    """How the loaded data tells a logged-in event, decided once for the whole data
    (:func:`logged_in_rule`; docs/rules.md#remediations, #no-user-id). ``user_ids``: some event
    carries a ``$user_id``, and logged in is an event that carries one
    (:func:`logged_in_event_sql`). Without any (Original ID Merge, the legacy API, an output
    without Simplified ID Merge: the distinct_id of an identified user's event is the user's id,
    of an anonymous one a device id) an event is logged in when its distinct_id is no device id
    (:func:`device_keyed_event_sql`). One rule for the what-if (``has_uid``), the identity-gaps
    page's ``rule`` / ``sdk_code`` remedies and the switch detection."""
    user_ids: bool

    def join(self, distinct_expr: str, alias: str = "dv") -> str:
        """SQL to append to a ``FROM`` that reads events: a LEFT JOIN to mParticle's device
        identities on ``distinct_expr`` (``alias.device_identity``), which :meth:`sql` reads;
        nothing when the data has ``$user_id``s (the SQL of such data is unchanged)."""
        if self.user_ids:
            return ""
        return f" LEFT JOIN ({_DEVICE_IDENTITIES}) {alias} ON {alias}.device_identity = {distinct_expr}"

    def sql(self, *, user: str, distinct: str, device: str, alias: str = "dv") -> str:
        """SQL condition: the event is logged in (its ``$user_id`` ``user``, distinct_id
        ``distinct``, ``$device_id`` ``device``; ``alias``: that of :meth:`join`)."""
        if self.user_ids:
            return logged_in_event_sql(user)
        return f"(NOT {device_keyed_event_sql(distinct, device, f'{alias}.device_identity')})"

    @property
    def note(self) -> str:
        """How logged in was told, in words (empty when by ``$user_id``)."""
        if self.user_ids:
            return ""
        return ("no event of the data carries a $user_id, as under Original ID Merge or an output without "
                "Simplified ID Merge: an event counts as logged in when its distinct_id is no device id (not "
                "$device:, not its $device_id, no mParticle device identity); assumption")


def device_keyed_event_sql(distinct_expr: str, device_expr: str, device_identity_expr: str) -> str:
    """SQL condition: an event's distinct_id (``distinct_expr``) is a device id: a ``$device:``
    id, the event's own ``$device_id`` (``device_expr``; Mixpanel's SDKs key an anonymous user by
    it), or the value of an mParticle device identity (``device_identity_expr``: the matching
    value of :class:`LoggedIn`'s join, NULL when none; mParticle forwards a device id when the
    user lacks the EIT's identity). An empty or missing distinct_id is no user's either."""
    return (f"({distinct_expr} IS NULL OR {distinct_expr} = '' OR starts_with({distinct_expr}, '{DEVICE_PREFIX}') "
            f"OR coalesce({distinct_expr} = {device_expr}, FALSE) OR {device_identity_expr} IS NOT NULL)")


def logged_in_rule(engine: Any) -> LoggedIn:
    """:class:`LoggedIn` of the data loaded in ``engine``: by ``$user_id`` when some event
    carries one, else by the distinct_id."""
    return LoggedIn(bool(engine.query_rows(HAS_USER_ID_SQL)))


def remediation_event_sql(kind: str, *, logged_in: str, app: str) -> str:
    """SQL condition: an event from which a remediation writes ``$mparticle_user_id`` onto the
    Mixpanel profile the event goes to (docs/rules.md#remediations). ``logged_in``, ``app``: the
    event's :func:`logged_in_event_sql` and :func:`app_event_sql` (expressions, or columns holding
    them). A Rule (``kind="rule"``) writes from every logged-in event, an app's or a server's;
    SDK code (``"sdk"``) only from a logged-in event an app sent. Never onto a ``$device:``
    profile (:func:`remediation_profile_sql`). One rule for the what-if's ``kind: rule | sdk``
    plans and the identity-gaps page's ``rule`` / ``sdk_code`` remedies."""
    if kind == "rule":
        return f"({logged_in})"
    if kind == "sdk":
        return f"({logged_in} AND {app})"
    raise ValueError(f"remediation kind {kind!r}: expected 'rule' or 'sdk'")


def remediation_profile_sql(distinct_expr: str) -> str:
    """SQL condition: a remediation can write onto the Mixpanel profile keyed ``distinct_expr``:
    not a ``$device:`` profile (an anonymous one; "Create Profile Only If Logged In", and a
    batch without a customer id forwards no profile data: docs/rules.md#remediations)."""
    return f"NOT starts_with({distinct_expr}, '{DEVICE_PREFIX}')"


def is_valid_mpid(text: str | None) -> bool:
    """Python twin of :func:`is_valid_mpid_sql`, for validation of single values."""
    if text is None or not isinstance(text, str):
        return False
    body = text[1:] if text.startswith("-") else text
    if not body or not body.isascii() or not body.isdigit():
        return False
    return INT64_MIN <= int(text) <= INT64_MAX
