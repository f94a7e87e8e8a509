"""Personal data: which values are personal, and how they are shown when they must not be.

Emails and phone numbers never appear in cohortlab's outputs (reports, ``--members-out`` files,
validation tables, ``explain``/``verify`` text) unless the user asks for them
(``--show-personal-data``). This also holds when they ARE the identifiers: with External
Identity Type ``email`` the Mixpanel ``distinct_id`` is an email address.

A personal value is replaced by a **pseudonym** such as ``anon-3f9a1c0b2d4e``: the same value
gives the same pseudonym everywhere in one database, so rows of two outputs can still be joined,
but the value cannot be read back. The pseudonym is a keyed hash (SHA-256 of a random key kept
in the database's ``cohortlab_meta`` table, then the value): without the key, guessing an
address and hashing it does not reveal whether it is in the data.

A value is personal when it looks like an email (``x@y``) or an international phone number
(``+`` and at least six digits or separators), or when it is one of the emails and phone numbers
the database itself holds (Mixpanel ``$email``/``$phone``, mParticle email and phone identities),
which catches phone numbers written without ``+``.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from cohortlab.engines.base import Engine

# Columns that hold nothing but personal data: dropped from outputs unless asked for.
PERSONAL_COLUMNS = ("email", "phone", "$email", "$phone", "mobile_number")
# Columns whose values are identifiers that may be personal (an email as distinct_id).
ID_COLUMNS = ("distinct_id", "distinct_ids", "identifier", "value", "user", "orphan_identifier")

EMAIL_PATTERN = r"[^@\s]+@[^@\s]+"
PHONE_PATTERN = r"\+[\d\s().-]{6,}"
_EMAIL_RE = re.compile(EMAIL_PATTERN)
_PHONE_RE = re.compile(PHONE_PATTERN)
_WORD_RE = re.compile(r"[^\s,;:()\[\]{}<>\"'`*|]+")  # a value inside a sentence (Markdown marks excluded)

PSEUDONYM_PREFIX = "anon-"
META_TABLE = "cohortlab_meta"
KEY_NAME = "pseudonym_key"

def _known_personal_sql(condition: str) -> str:
    """The personal values of the database (column ``v``) whose value meets ``condition``."""
    return f"""
    SELECT email AS v FROM mp_profiles WHERE email {condition}
    UNION SELECT phone FROM mp_profiles WHERE phone {condition}
    UNION SELECT email FROM mp_webhook_members WHERE email {condition}
    UNION SELECT value FROM mpa_identities
          WHERE identity_type IN ('email', 'mobile_number', 'phone_number_2', 'phone_number_3')
            AND value {condition}
"""


KNOWN_PERSONAL_SQL = _known_personal_sql("IS NOT NULL")


def known_personal_among_sql(values: str) -> str:
    """The rows of :data:`KNOWN_PERSONAL_SQL` (column ``v``) among the values of ``values`` (a
    table or a parenthesised query with one column): a semi-join per source, so that only the
    values about to be shown are looked up, not every personal value of the database."""
    return _known_personal_sql(f"IN (SELECT * FROM {values})")


def looks_personal(value: Any) -> bool:
    """An email- or phone-looking text (without looking at the database)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    s = str(value).strip()
    return bool(_EMAIL_RE.search(s) or _PHONE_RE.fullmatch(s))


def looks_personal_sql(expr: str) -> str:
    """SQL predicate: ``expr`` (text) looks like an email or a phone number."""
    return (f"(regexp_matches({expr}, '{EMAIL_PATTERN}') "
            f"OR regexp_full_match(trim({expr}), '{PHONE_PATTERN}'))")


def pseudonym(value: str, key: str) -> str:
    """The pseudonym of ``value`` under ``key`` (same as :meth:`Redactor.sql`)."""
    return PSEUDONYM_PREFIX + hashlib.sha256((key + str(value)).encode("utf-8")).hexdigest()[:12]


def ensure_key(engine: "Engine") -> None:
    """Give the database its pseudonym key once (a whole-table write, as every engine takes it)."""
    if not engine.table_exists(META_TABLE):
        engine.materialise(META_TABLE, f"SELECT '{KEY_NAME}' AS name, '{secrets.token_hex(16)}' AS value")


def database_key(engine: "Engine") -> str:
    """The database's pseudonym key; a fresh random one (pseudonyms stable within this process
    only) when the database has none and cannot get one (read-only, older database)."""
    try:
        if engine.table_exists(META_TABLE):
            rows = engine.query_rows(f"SELECT value FROM {META_TABLE} WHERE name = '{KEY_NAME}'")
            if rows:
                return str(rows[0][0])
    except Exception:  # pragma: no cover - an engine without the table
        pass
    return secrets.token_hex(16)


def known_personal_values(engine: "Engine") -> set[str]:
    """Emails and phone numbers the database holds (values never to show)."""
    return {str(r[0]) for r in engine.query_rows(KNOWN_PERSONAL_SQL)}


@dataclass
class Redactor:
    """Replaces personal values by pseudonyms (or does nothing when ``show`` is True).

    >>> r = Redactor.for_engine(lab.engine)          # doctest: +SKIP
    >>> r.value("ann@example.com")                    # doctest: +SKIP
    'anon-1c2b...'
    """

    key: str = field(default_factory=lambda: secrets.token_hex(16))
    known: frozenset[str] = frozenset()
    show: bool = False

    @classmethod
    def for_engine(cls, engine: "Engine", show: bool = False) -> "Redactor":
        if show:
            return cls(show=True)
        return cls(key=database_key(engine), known=frozenset(known_personal_values(engine)))

    def is_personal(self, value: Any) -> bool:
        return value is not None and (str(value) in self.known or looks_personal(value))

    def value(self, value: Any) -> Any:
        if self.show or not self.is_personal(value):
            return value
        return pseudonym(str(value), self.key)

    def values(self, values: Iterable[Any]) -> list[Any]:
        return [self.value(v) for v in values]

    def text(self, text: str) -> str:
        """A sentence with every personal value in it replaced (emails/phones found by pattern,
        and the database's known values)."""
        if self.show or not text:
            return text
        out = _EMAIL_RE.sub(lambda m: pseudonym(m.group(0), self.key), text)
        if not self.known:
            return out
        # one pass over the words (a database may know a million values), then the few known
        # values that are not one word ("07700 900123")
        out = _WORD_RE.sub(lambda m: pseudonym(m.group(0), self.key) if m.group(0) in self.known else m.group(0), out)
        for v in self._multiword_known():
            if v in out:
                out = out.replace(v, pseudonym(v, self.key))
        return out

    def _multiword_known(self) -> tuple[str, ...]:
        cached = self.__dict__.get("_multiword")
        if cached is None or cached[0] is not self.known:
            values = tuple(sorted((v for v in self.known if v and not _WORD_RE.fullmatch(v)), key=len, reverse=True))
            cached = (self.known, values)
            self.__dict__["_multiword"] = cached
        return cached[1]

    def frame(self, df: "pd.DataFrame", id_columns: Iterable[str] = ID_COLUMNS) -> "pd.DataFrame":
        """A copy without personal columns and with personal identifier values replaced."""
        if self.show:
            return df
        out = df.drop(columns=[c for c in df.columns if c in PERSONAL_COLUMNS])
        ids = set(id_columns)
        for c in out.columns:
            if c in ids or out[c].dtype == object:
                out[c] = out[c].map(lambda v: self.value(v) if isinstance(v, str) else v)
        return out

    def sql(self, expr: str, known_table: str | None = None) -> str:
        """SQL expression: ``expr`` (text) or its pseudonym. ``known_table``: a table/view with
        the database's personal values in column ``v`` (e.g. from :data:`KNOWN_PERSONAL_SQL`)."""
        if self.show:
            return expr
        from cohortlab.pipeline import sql_str

        cond = looks_personal_sql(expr)
        if known_table:
            cond = f"({cond} OR {expr} IN (SELECT v FROM {known_table}))"
        return (f"CASE WHEN {expr} IS NOT NULL AND {cond} "
                f"THEN '{PSEUDONYM_PREFIX}' || left(sha256({sql_str(self.key)} || {expr}), 12) ELSE {expr} END")
