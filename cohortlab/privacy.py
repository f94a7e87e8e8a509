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

A value is personal when it looks like an email (``x@y``), an international phone number
(``+`` and at least six digits or separators), holds either (an email, or a ``+`` and at least
8 digits that are not a date: a cohort named "Called +44 7700 900123") or, as a whole value, a
national one (7 to 15 digits with a space, a dash or parentheses between them, ``07700 900123``,
``(415) 555-0123``, or dotted ``415.555.0123``; not a date), or when it is one of the emails and phone numbers the
database itself holds (Mixpanel ``$email``/``$phone``, mParticle email and phone identities),
which catches phone numbers written as plain digits (``07700900123``, which an MPID could be
too). A national shape is not searched for inside sentences, where dates and counts take it (an
error's text, :func:`masked_text`, is searched for the North-American ``415-555-0123`` shapes only).
Before the patterns, a value is read with every kind of space as a space, full-width ``＠``/``＋``
as ``@``/``+``, every dash (U+2010-U+2015, the minus sign) as ``-``, a middle dot as ``.``, without
invisible characters (a soft hyphen, zero-width spaces: ``+4\\u200b4 7700 900123``), and ``%40``,
``%2B``, ``tel:`` undone (``carol%40example.com``, ``tel:+14155550111``), the same in Python and
SQL (:func:`normalised`); a ``+`` number's digits may also be separated by ``/`` or ``_``. A text
searched for values (:func:`masked_text`, :meth:`Redactor.text`) is read so too, what is not
replaced left as written (``2026–03–01`` keeps its en dashes). The database's values are looked up for the
values about to be shown (:class:`KnownPersonal`), never all brought into Python.
"""

from __future__ import annotations

import hashlib
import math
import os
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
PHONE_PATTERN = r"\+[\d\s()./_-]{6,}"  # a slash or an underscore is a separator too
# a national phone number as a whole value (with the digit count and the date check below)
NATIONAL_PHONE_PATTERN = r"\(?\d[\d\s().-]*[\s()-][\d\s().-]*\d|\d{3}\.\d{3}\.\d{4}"
_NATIONAL_PHONE_RE = re.compile(NATIONAL_PHONE_PATTERN)  # in SQL (RE2); in Python as _national_shape reads it
_NATIONAL_SHAPE_RE = re.compile(r"\(?\d[\d\s().-]*\d")
_NATIONAL_SEPARATOR_RE = re.compile(r"[\s()-]")
_NATIONAL_DOTS_RE = re.compile(r"\d{3}\.\d{3}\.\d{4}")


def _national_shape(s: str) -> bool:
    """``NATIONAL_PHONE_PATTERN.fullmatch(s)``, in a time linear in ``len(s)`` (Python's
    backtracking took 2 s for ``1-`` 10,000 times): the shape without the separator it requires
    between the first digit and the last, then that separator."""
    if _NATIONAL_SHAPE_RE.fullmatch(s) is None:
        return False
    first = 1 if s[0] == "(" else 0
    return (_NATIONAL_SEPARATOR_RE.search(s, first + 1, len(s) - 1) is not None
            or _NATIONAL_DOTS_RE.fullmatch(s) is not None)
# an international phone number inside a longer text (a cohort named "Called +44 7700 900123"):
# a "+" and at least 8 digits, at most two separators between two of them, and no date among
# them ("+12) 2026-02-15"); fewer digits are a count ("+150000 users"). A separator is a space,
# a parenthesis, a dot, a dash, a slash or an underscore, as :func:`normalised` reads the text
# (an en dash or a minus sign is a dash, a middle dot a dot, an invisible character is not there)
PHONE_INSIDE_PATTERN = r"\+[0-9](?:[\s()./_-]{0,2}[0-9]){7,}"
_PHONE_INSIDE_RE = re.compile(PHONE_INSIDE_PATTERN)
# a date among a "+" number's digits: 4-2-2 with a month and a day ("2026-02-15", "2026/02/15")
DATE_PATTERN = "[0-9]{4}[-/_][01][0-9][-/_][0-3][0-9]"
_DATE_RE = re.compile(DATE_PATTERN)
_DATE_START_RE = _DATE_RE  # a whole value that starts with a date is not a national number (as "^" DATE_PATTERN in SQL)
# a value that holds an email (as looks_personal_sql); searched from the start of a run only
_EMAIL_VALUE_RE = re.compile(r"(?<![^@\s])" + EMAIL_PATTERN)
# an email inside a sentence: the value alone, not the marks around it ("email=a@b.com," ->
# "a@b.com"; a full stop after it ends the sentence; in a path, the file's name: "obs/dsar-a@b.com.jsonl"
# -> "obs/<email>")
# (a quoted local part, '"a b"@example.com', is one email)
# (a domain may be an address literal, as an email's grammar writes one: "ceo@[10.0.0.1]",
# "a@[IPv6:2001:db8::1]"; not any brackets: "$.members@[0]", "tags@["a"]", "pw@[::1]:3128")
_EMAIL_LOCAL = r"[^\s,;:()\[\]{}<>\"'`*|=@/]"  # a character of an unquoted local part
_EMAIL_TEXT = (r"(?:\"[^\"\r\n@]*\"|START" + _EMAIL_LOCAL + r"+)@"
               r"(?:\[(?:\d{1,3}(?:\.\d{1,3}){3}|IPv6:[0-9A-Fa-f:.]+)\]|[^\s,;:()\[\]{}<>\"'`*|=@/]*[^\s,;:()\[\]{}<>\"'`*|=@./])")


class _Emails:
    """The emails of a text, as ``re.finditer``/``sub``/``search`` of the plain pattern find them
    (leftmost first, each search from the end of the last match), in a time linear in the text's
    length: the plain pattern, tried from every position of a long word, scanned the word again
    each time (4 s for 20,000 characters). An unquoted local part is tried where a run of its
    characters starts, and at the end of the last match (a domain may stop inside a run: in
    ``a@b.c.@d`` the second email starts at ``.``); a start inside a run after either fails where
    the run's start failed (the same run, the same character after it)."""

    def __init__(self) -> None:
        self.plain = re.compile(_EMAIL_TEXT.replace("START", ""))
        self._at_run = re.compile(_EMAIL_TEXT.replace("START", "(?<!" + _EMAIL_LOCAL + ")"))

    def finditer(self, text: str):
        pos = 0
        while pos <= len(text):
            m = (self.plain.match(text, pos) if pos else None) or self._at_run.search(text, pos)
            if m is None:
                return
            yield m
            pos = m.end()

    def search(self, text: str):
        return next(self.finditer(text), None)

    def sub(self, replace, text: str) -> str:
        out, at = [], 0
        for m in self.finditer(text):
            out += [text[at:m.start()], replace(m) if callable(replace) else replace]
            at = m.end()
        return "".join(out) + text[at:]


_EMAIL_RE = _Emails()
_PHONE_RE = re.compile(PHONE_PATTERN)
_WORD_RE = re.compile(r"[^\s,;:()\[\]{}<>\"'`*|]+")  # a value inside a sentence (Markdown marks excluded)

PSEUDONYM_PREFIX = "anon-"
PSEUDONYM_DIGITS = 12  # hex digits of the salted SHA-256 a pseudonym keeps
PSEUDONYM_RE = re.compile(re.escape(PSEUDONYM_PREFIX) + "[0-9a-f]{%d}" % PSEUDONYM_DIGITS)  # a whole pseudonym
META_TABLE = "cohortlab_meta"
KEY_NAME = "pseudonym_key"
# a key the user keeps (docs/reports.md#stable-pseudonyms): the same pseudonyms across databases
KEY_ENV = "COHORTLAB_PSEUDONYM_KEY"
KEY_MIN_LENGTH = 16


def configured_key() -> str | None:
    """The pseudonym key the user set in ``COHORTLAB_PSEUDONYM_KEY`` (None when unset or empty):
    it wins over every database's own key, so that outputs of several databases (each
    ``report --data`` run loads a new one) give a value the same pseudonym. A
    :class:`~cohortlab.errors.SettingsError` for a key shorter than 16 characters: whoever holds
    the key can test a guessed email against a pseudonym, so it must not be guessable itself."""
    value = os.environ.get(KEY_ENV)
    if not value:
        return None
    if len(value) < KEY_MIN_LENGTH:
        from cohortlab.errors import SettingsError

        raise SettingsError(f"{KEY_ENV} is {len(value)} character(s) long: a pseudonym key must have at least "
                            f"{KEY_MIN_LENGTH} (e.g. `python -c 'import secrets; print(secrets.token_hex(16))'`), "
                            f"and be kept as secret as a password (docs/reports.md#stable-pseudonyms)")
    return value


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


# What a value is read as before the patterns: every whitespace character Python's ``\s`` knows
# becomes a space (RE2's ``\s``, in SQL, knows only the ASCII ones: a phone written with no-break
# or thin spaces must look the same to both), a full-width ``＠``/``＋`` the ASCII one, and the
# spellings of a URL or a link (``%40``, ``%2B``, ``tel:``) are undone. In Python and SQL alike
# (:func:`normalised_sql`); the pseudonym is still that of the value as written.
_SPACES = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0\u1680" + "".join(chr(c) for c in range(0x2000, 0x200B))
           + "\u2028\u2029\u202f\u205f\u3000")
# Separators in other spellings: every dash (hyphen, en and em dash, the minus sign: "+44–7700–900123")
# is a dash, a middle dot a dot; invisible characters (a soft hyphen, zero-width spaces and joiners,
# a word joiner, a byte-order mark) are not there at all ("+4\u200b4 7700 900123" is "+44 7700 900123")
_DASHES = "".join(chr(c) for c in range(0x2010, 0x2016)) + "\u2212"
_INVISIBLE = "\u00ad\u200b\u200c\u200d\u2060\ufeff"
# translate() in SQL (DuckDB, Spark) deletes the characters of "from" past the end of "to"
_FROM = _SPACES + "\uff20\uff0b" + _DASHES + "\u00b7" + _INVISIBLE
_TO = " " * len(_SPACES) + "@+" + "-" * len(_DASHES) + "."
_TRANSLATE = {ord(a): (_TO[i] if i < len(_TO) else None) for i, a in enumerate(_FROM)}
# what a text is read as by the patterns inside a sentence, character by character (:func:`_read`)
# (a full-width ＋ or ＠ is read as + or @ there too: "＋44 7700 900123" is one number, which the
# word "＋44" alone is not)
_READ = {a: (_TO[i] if i < len(_TO) else "") for i, a in enumerate(_FROM)
         if a in "\uff20\uff0b" + _DASHES + "\u00b7" + _INVISIBLE}
_READ_RE = re.compile("[" + re.escape("".join(_READ)) + "]")
_UNDONE = (("%40", "@"), ("%2B", "+"), ("%2b", "+"), ("tel:", ""), ("TEL:", ""))


def normalised(value: str) -> str:
    """``value`` as the patterns read it (see ``_SPACES``), trimmed of spaces."""
    s = value.translate(_TRANSLATE)
    for a, b in _UNDONE:
        s = s.replace(a, b)
    return s.strip(" ")


# a text that :func:`normalised` leaves as it is (but for the trim): printable ASCII (RE2's
# ``[ -~]``, space to tilde) without ``%`` and without the other spellings of _UNDONE
_PLAIN_SQL = "[ -$&-~]*"


def normalised_sql(expr: str) -> str:
    """SQL: :func:`normalised` of ``expr`` (text). Most identifiers are plain printable ASCII: one
    pattern test sends them straight to the trim (the translation and the replacements cost ten
    times the patterns on millions of values)."""
    from cohortlab.pipeline import sql_str

    out = f"translate({expr}, {sql_str(_FROM)}, {sql_str(_TO)})"
    for a, b in _UNDONE:
        out = f"replace({out}, '{a}', '{b}')"
    plain = " AND ".join([f"regexp_full_match({expr}, '{_PLAIN_SQL}')",
                          *(f"NOT contains({expr}, '{a}')" for a, _ in _UNDONE if "%" not in a)])
    return f"CASE WHEN {plain} THEN trim({expr}) ELSE trim({out}) END"


def looks_national_phone(s: str) -> bool:
    """A whole value shaped like a national phone number (module docstring)."""
    return (_national_shape(s) and 7 <= sum(c.isdigit() for c in s) <= 15
            and _DATE_START_RE.match(s) is None)


def _is_phone_inside(span: str) -> bool:
    """A span of :data:`PHONE_INSIDE_PATTERN` is a phone number unless a date is among its digits."""
    return _DATE_RE.search(span) is None


def holds_phone(s: str) -> bool:
    """``s`` (a text as :func:`normalised` reads it) holds an international phone number
    (:data:`PHONE_INSIDE_PATTERN`; its first span decides, as in SQL)."""
    m = _PHONE_INSIDE_RE.search(s)
    return m is not None and _is_phone_inside(m.group(0))


def looks_personal(value: Any) -> bool:
    """An email- or phone-looking text (without looking at the database): it holds an email or
    an international phone number (a cohort named "Called +44 7700 900123" as one named after an
    email), or is a phone number as a whole."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    s = normalised(str(value))
    return bool(_EMAIL_VALUE_RE.search(s) or _PHONE_RE.fullmatch(s) or holds_phone(s) or looks_national_phone(s))


def looks_personal_sql(expr: str) -> str:
    """SQL predicate: ``expr`` (text) looks like an email or a phone number (:func:`looks_personal`)."""
    # a CASE: DuckDB evaluates a branch only on the rows that reach it, so the date test runs
    # only on values that hold an email or a "+" phone, the digit count only on those shaped like
    # a national phone number (few); every row meets one pattern (another one for a "+" phone
    # inside a text cost 40% more CPU over 3M distinct_ids, as each use of t computes it again)
    t = normalised_sql(expr)
    whole = f"{EMAIL_PATTERN}|^(?:{PHONE_PATTERN})$"
    return (f"(CASE WHEN regexp_matches({t}, '{whole}|{PHONE_INSIDE_PATTERN}') "  # one pattern for every row
            f"THEN regexp_matches({t}, '{whole}') OR NOT regexp_matches("
            f"regexp_extract({t}, '{PHONE_INSIDE_PATTERN}', 0), '{DATE_PATTERN}') "
            f"WHEN regexp_full_match({t}, '{NATIONAL_PHONE_PATTERN}') "
            f"THEN length(regexp_replace({t}, '[^0-9]', '', 'g')) BETWEEN 7 AND 15 "
            f"AND NOT regexp_matches({t}, '^{DATE_PATTERN}') ELSE FALSE END)")


def masked_text(text: str) -> str:
    """An error message that quotes data (a header taken for a record, a value that is not a time,
    a server's error text) with every email and ``+`` phone number in it replaced by ``<email>`` /
    ``<phone number>``: an error names what is wrong, never whose record it is. A ``load`` has no
    database key yet and an error needs no join, hence no pseudonym. A word in another spelling
    (``alice%40example.com``, ``carol＠example.com``, ``%2B447700900123``) is read as
    :func:`normalised` reads it, as the reports do: a header quoted in an error showed those in clear.
    A national phone number is ``<phone number>`` too in its North-American shapes only
    (:data:`NATIONAL_PHONE_INSIDE_PATTERN`: ``415-555-0123``, ``415.555.0123``, ``(415) 555-0123``),
    which no date, time, MPID, count, usual version or ``line:column`` takes (any other text of
    that shape, a path part ``a/415-555-0123.json``, is masked too: an error may hide it, never a
    phone number); other national shapes (``07700 900123``) are left, as a sentence is not
    searched for them (module docstring)."""
    return _masked(_OTHER_SPELLING_RE.sub(_masked_spelling, str(text)))


def masked_path(path: str | os.PathLike) -> str:
    """``path`` with each email and phone number in its parts shown as ``<email>`` / ``<phone
    number>`` (:func:`masked_text` of each part between two ``/``: a phone
    number may be written with a slash, a path part never holds one), the rest as written:
    ``/srv/dsar-bob@example.com/lab +1 415 555 0123.duckdb`` is
    ``/srv/<email>/lab <phone number>.duckdb`` (a part that holds an email is ``<email>``, as in
    a load's warning)."""
    return "/".join(masked_text(part) for part in str(path).split("/"))


# a national phone number inside a text, in the North-American 3-3-4 shape only: three digits,
# three, four, with the same dash or dot between them (``415-555-0123``, ``415.555.0123``), or the
# first three in parentheses (``(415) 555-0123``, ``(415)555.0123``), optionally after a ``1``
# (``1-415-555-0123``); not part of a longer run of digits, dashes or dots (a date is 4-2-2, an
# MPID has no separator, a version or an IP address has shorter groups)
NATIONAL_PHONE_INSIDE_PATTERN = (r"(?<![\w.-])(?<!\d[.-])(?:1[-. ])?"
                                 r"(?:\(\d{3}\) ?\d{3}[-.]\d{4}|\d{3}([-.])\d{3}\1\d{4})(?![\w]|[.-]\d)")
_NATIONAL_PHONE_INSIDE_RE = re.compile(NATIONAL_PHONE_INSIDE_PATTERN)


def _masked(text: str) -> str:
    """``text`` with each email, ``+`` phone number and North-American national one replaced by
    its placeholder, found in the text as the patterns read it (:func:`_read`: "+44–7700–900123",
    "+1 415 555\\u200b0123"); the rest as written."""
    return _rewritten(text, ((_EMAIL_RE, lambda read, written: "<email>"),
                             (_PHONE_MASK_RE, lambda read, written: "<phone number>"),
                             (_NATIONAL_PHONE_INSIDE_RE, lambda read, written: "<phone number>")))


# a "+" phone number of masked_text: PHONE_PATTERN's span up to its last digit (the marks after it
# are not the number's: "(+44 7700 900123)" keeps its ")")
_PHONE_MASK_RE = re.compile(r"\+(?=[\d\s()./_-]{6,})[\d\s()./_-]*\d")


def _read(text: str) -> tuple[str, list[int]]:
    """``text`` as the patterns read it inside a sentence (its dashes as ``-``, a middle dot as
    ``.``, without invisible characters; see ``_DASHES``), and where each of its characters is in
    ``text``."""
    chars: list[str] = []
    at: list[int] = []
    for i, c in enumerate(text):
        r = _READ.get(c, c)
        if r:
            chars.append(r)
            at.append(i)
    return "".join(chars), at


def _rewritten(text: str, steps: Iterable[tuple[re.Pattern, Any]]) -> str:
    """``text`` with each step's pattern replaced in turn, in the text as :func:`_read` reads it:
    ``replace(read, written)`` gets a span as read and as written, and returns what shows in its
    place (None: the span as written). What no pattern takes stays as written (the en dashes of
    "2026–03–01" stay en dashes)."""
    if _READ_RE.search(text) is None:  # nearly every text: the patterns read it as it is
        for regex, replace in steps:
            text = regex.sub(lambda m: _or(replace(m.group(0), m.group(0)), m.group(0)), text)
        return text
    read, at = _read(text)
    head = text[:at[0]] if at else text  # invisible characters before the first one read
    # the text as pieces (as read, as written): a character with the invisible ones after it, or a replacement
    pieces = [(read[j], text[i:at[j + 1] if j + 1 < len(at) else len(text)]) for j, i in enumerate(at)]
    for regex, replace in steps:
        starts: dict[int, int] = {}  # where a piece starts in the joined text -> the piece
        n = 0
        for x, (r, _) in enumerate(pieces):
            starts[n] = x
            n += len(r)
        starts[n] = len(pieces)
        out: list[tuple[str, str]] = []
        k = 0
        for m in regex.finditer("".join(r for r, _ in pieces)):
            a, b = starts.get(m.start()), starts.get(m.end())
            if a is None or b is None or a >= b or a < k:  # inside a replacement: left as it is
                continue
            written = "".join(w for _, w in pieces[a:b])
            value = written.rstrip(_INVISIBLE)
            new = replace(m.group(0), value)
            if new is None:
                continue
            out += pieces[k:a]
            out.append((new, new + written[len(value):]))
            k = b
        pieces = out + pieces[k:]
    return head + "".join(w for _, w in pieces)


def _or(value: Any, default: str) -> str:
    return default if value is None else value


# a word holding a spelling :func:`normalised` undoes (full-width @ or +, %40, %2B, tel:)
# (tried at the start of a word only: from every position of a long word it took a time growing
# with the square of its length, 4 s for a word of 20,000 characters)
_OTHER_SPELLING_RE = re.compile(r"(?<!\S)\S*(?:\uff20|\uff0b|%40|%2[Bb]|tel:|TEL:)\S*")


def _masked_spelling(m: re.Match) -> str:
    """The word of ``m`` with its email or ``+`` phone number masked, when :func:`normalised`
    shows one in it; else the word as written."""
    word = m.group(0)
    plain = normalised(word)
    if _EMAIL_RE.search(plain) is None and _PHONE_RE.search(plain) is None:
        return word
    return _masked(plain)


def pseudonym(value: str, key: str) -> str:
    """The pseudonym of ``value`` under ``key`` (same as :func:`pseudonym_sql`)."""
    return PSEUDONYM_PREFIX + hashlib.sha256((key + str(value)).encode("utf-8")).hexdigest()[:PSEUDONYM_DIGITS]


def pseudonym_sql(expr: str, key: str) -> str:
    """SQL expression: the pseudonym of the text ``expr`` under ``key`` (same as :func:`pseudonym`)."""
    from cohortlab.pipeline import sql_str

    return f"'{PSEUDONYM_PREFIX}' || left(sha256({sql_str(key)} || {expr}), {PSEUDONYM_DIGITS})"


def ensure_key(engine: "Engine") -> None:
    """Give the database its pseudonym key once (a whole-table write, as every engine takes it)."""
    if not engine.table_exists(META_TABLE):
        engine.materialise(META_TABLE, f"SELECT '{KEY_NAME}' AS name, '{secrets.token_hex(16)}' AS value")


def database_key(engine: "Engine") -> str:
    """The database's pseudonym key; a fresh random one (pseudonyms stable within this process
    only) when the database has none and cannot get one (read-only, older database).
    ``COHORTLAB_PSEUDONYM_KEY`` wins over both (:func:`configured_key`)."""
    configured = configured_key()
    if configured:
        return configured
    try:
        if engine.table_exists(META_TABLE):
            rows = engine.query_rows(f"SELECT value FROM {META_TABLE} WHERE name = '{KEY_NAME}'")
            if rows:
                return str(rows[0][0])
    except Exception:  # pragma: no cover - an engine without the table
        pass
    return secrets.token_hex(16)


def known_personal_values(engine: "Engine") -> set[str]:
    """Every email and phone number the database holds. Millions of values on a large database:
    for checks and tests on small data only (a :class:`Redactor` looks values up as it meets
    them, :class:`KnownPersonal`)."""
    return {str(r[0]) for r in engine.query_rows(KNOWN_PERSONAL_SQL)}


# Known values that a Redactor can be sure of without the database: one word (no separator of
# _WORD_RE) of printable ASCII (where Python's and SQL's patterns agree) that looks like an email
# (a non-"@" on both sides of an "@") or, whole, like a phone number. Every other known value is
# either missed by the patterns (a phone without "+") or not one word ("07700 900123", which a
# sentence shows as several words): those are the few the Redactor needs to know.
_W = r"!#$%&+\-./0-9=?@A-Z\\^_a-z~"  # printable ASCII without whitespace and _WORD_RE's separators
_N = _W.replace("@", "")
_SURE_SQL = rf"[{_W}]*[{_N}]@[{_N}][{_W}]*|\+[0-9.\-]{{6,}}"
_KNOWN_ALL_SQL = KNOWN_PERSONAL_SQL.replace("UNION SELECT", "UNION ALL SELECT")

# At most this many such values are held in Python; above it, values are looked up as they come.
FETCH_LIMIT = 20_000


class KnownPersonal:
    """The personal values of one database, as far as a :class:`Redactor` needs them, without
    bringing every email and phone number of the database into Python.

    The first question runs one query returning the known values the patterns alone would not
    catch (``_SURE_SQL``: none on a database whose phones all start with ``+``). When there are at
    most :data:`FETCH_LIMIT` of them they are kept, and no other query runs. Otherwise single
    values are looked up as they come, in one query per batch for the values not asked about
    before (:func:`known_personal_among_sql` over a registered frame; answers cached), and the
    known values that are not one word are fetched once (or, when they too are too many, looked up
    in each sentence). Every engine answers these (``register``, ``query_rows``, ``drop``);
    nothing is written to the database.

    ``prefetch=False``: values are always looked up as they come, never fetched: for a few values
    asked about once (a cohort's names: one lookup of ~0.03 s at 1M users, where the fetch reads
    every known value, ~0.2-0.3 s).
    """

    def __init__(self, engine: "Engine", fetch_limit: int = FETCH_LIMIT, *, prefetch: bool = True):
        self.engine = engine
        self.fetch_limit = fetch_limit
        self.prefetch = prefetch
        self.queries = 0           # queries run, and rows they returned (tests, benchmarks)
        self.rows_fetched = 0
        self._missed: frozenset[str] | None = None      # known, not caught by the patterns
        self._multiword: tuple[str, ...] | None = None  # known, not one word (longest first)
        self._seen: dict[str, bool] = {}                # looked up one by one (when _missed is None)
        self._asked = False

    def _rows(self, sql: str) -> list[tuple]:
        rows = self.engine.query_rows(sql)
        self.queries += 1
        self.rows_fetched += len(rows)
        return rows

    def _limited(self, condition: str) -> list[str] | None:
        """The known values meeting ``condition`` (on ``v``), or None when there are too many."""
        rows = self._rows(f"SELECT DISTINCT v FROM ({_KNOWN_ALL_SQL}) k WHERE {condition} "
                          f"LIMIT {self.fetch_limit + 1}")
        return [str(r[0]) for r in rows] if len(rows) <= self.fetch_limit else None

    @staticmethod
    def _longest_first(values: Iterable[str]) -> tuple[str, ...]:
        return tuple(sorted({v for v in values if v and not _WORD_RE.fullmatch(v)}, key=len, reverse=True))

    def _fetch(self) -> None:
        if self._asked:
            return
        self._asked = True
        if not self.prefetch:  # _missed and _multiword stay None: every value is looked up
            return
        values = self._limited(f"NOT regexp_full_match(v, '{_SURE_SQL}')")
        if values is not None:
            self._missed = frozenset(v for v in values if not looks_personal(v))
            self._multiword = self._longest_first(values)
            return
        words = self._limited(f"NOT regexp_full_match(v, '[{_W}]+')")  # not one word (or not ASCII)
        self._multiword = None if words is None else self._longest_first(words)

    def among(self, values: Iterable[str]) -> set[str]:
        """The values (texts that do not look personal) that the database knows as personal: at
        most one query, for the values not asked about before."""
        values = set(values)
        if not values:
            return set()
        self._fetch()
        if self._missed is not None:
            return values & self._missed
        return self._lookup(values)

    def known_words(self, words: Iterable[str]) -> set[str]:
        """The words of a sentence that the database knows as personal: as :meth:`among`, and
        those that look like a phone number looked up too (a sentence may say "+150000 users";
        only a known phone becomes a pseudonym)."""
        words = set(words)
        phones = {w for w in words if looks_personal(w)}
        return self.among(words - phones) | (self._lookup(phones) if phones else set())

    def _lookup(self, values: set[str]) -> set[str]:
        """One query for the values not asked about before (answers cached)."""
        new = [v for v in values if v not in self._seen]
        if new:
            import pandas as pd

            name = "_cohortlab_lookup_" + secrets.token_hex(4)
            self.engine.register(name, pd.DataFrame({"v": pd.Series(new, dtype=object)}))
            try:
                found = {str(r[0]) for r in self._rows(known_personal_among_sql(name))}
            finally:
                self.engine.drop(name)
            self._seen.update((v, v in found) for v in new)
        return {v for v in values if self._seen[v]}

    def multiword_in(self, text: str) -> tuple[str, ...]:
        """The known values that are not one word and appear in ``text``, longest first (a query
        only when the database has too many such values to keep)."""
        self._fetch()
        if self._multiword is not None:
            return tuple(v for v in self._multiword if v in text)
        from cohortlab.pipeline import sql_str

        found = self._rows(f"SELECT DISTINCT v FROM ({_KNOWN_ALL_SQL}) k "
                           f"WHERE v <> '' AND instr({sql_str(text)}, v) > 0")
        return self._longest_first(str(r[0]) for r in found)


@dataclass
class Redactor:
    """Replaces personal values by pseudonyms (or does nothing when ``show`` is True).

    A value is personal when it looks like one (:func:`looks_personal`), is in ``known`` (values
    given by hand), or is one the database knows (``database``, a :class:`KnownPersonal`, looked
    up only for the values about to be shown).

    >>> r = Redactor.for_engine(lab.engine)          # doctest: +SKIP
    >>> r.value("ann@example.com")                    # doctest: +SKIP
    'anon-1c2b...'
    """

    key: str = field(default_factory=lambda: configured_key() or secrets.token_hex(16))
    known: frozenset[str] = frozenset()
    show: bool = False
    database: KnownPersonal | None = field(default=None, repr=False, compare=False)

    @classmethod
    def for_engine(cls, engine: "Engine", show: bool = False) -> "Redactor":
        """The database's key; its known values are looked up when needed (the engine must stay
        open while the Redactor is used)."""
        if show:
            return cls(show=True)
        return cls(key=database_key(engine), database=KnownPersonal(engine))

    def with_known(self, values: Iterable[Any]) -> "Redactor":
        """The same Redactor (key, database) with more values known as personal."""
        extra = frozenset(map(str, values))
        if self.show or extra <= self.known:
            return self
        return Redactor(key=self.key, known=self.known | extra, show=False, database=self.database)

    def _personal(self, values: Iterable[str]) -> set[str]:
        """The personal ones among ``values`` (texts): one lookup for those the patterns and
        ``known`` leave open."""
        out: set[str] = set()
        rest: set[str] = set()
        for v in set(values):
            (out if v in self.known or looks_personal(v) else rest).add(v)
        if rest and self.database is not None:
            out |= self.database.among(rest)
        return out

    def prime(self, values: Iterable[Any]) -> None:
        """Look up at once the values (and the words of the texts) about to be shown one by one
        with :meth:`value` and :meth:`text`, so that these run no query each."""
        texts = {str(v) for v in values if isinstance(v, str)}
        if not self.show and self.database is not None and texts:
            self._personal(texts | {w for t in texts for w in _WORD_RE.findall(t)})

    def is_personal(self, value: Any) -> bool:
        return value is not None and bool(self._personal([str(value)]))

    def value(self, value: Any) -> Any:
        if self.show or not self.is_personal(value):
            return value
        return pseudonym(str(value), self.key)

    def values(self, values: Iterable[Any]) -> list[Any]:
        values = list(values)
        if self.show:
            return values
        personal = self._personal(str(v) for v in values if v is not None)
        return [pseudonym(str(v), self.key) if v is not None and str(v) in personal else v for v in values]

    def text(self, text: str) -> str:
        """A sentence with every personal value in it replaced: emails and international phone
        numbers found by pattern (:func:`holds_phone`), the words that are known values
        (``known``, the database's), and the known values that are not one word ("07700 900123")."""
        if self.show or not text:
            return text
        # the values given as known first, each whole, longest first: a cohort named
        # "VIP alice@x.com" in a note becomes the name's pseudonym, as the name shown alone, not
        # "VIP anon-…"; then the patterns, then the database's values in what is left
        out = text
        for v in sorted((v for v in self.known if v and not _WORD_RE.fullmatch(v) and v in text), key=len, reverse=True):
            if v in out:
                out = out.replace(v, pseudonym(v, self.key))
        if self.known:  # a word, or a word that ends a sentence ("... carol%40example.com.")
            out = _WORD_RE.sub(lambda m: self._known_word(m.group(0)), out)
        # a word in another spelling (carol%40example.com, carol＠example.com, tel:+44...): whole,
        # as the reports read it (:func:`normalised`); the patterns below see only the plain ones
        if _OTHER_SPELLING_RE.search(out):  # rare: every word of every sentence was looked at
            out = _WORD_RE.sub(lambda m: self._other_spelling(m.group(0)), out)
        # in the text as the patterns read it ("+44–7700–900123"); the pseudonym of the value as written
        out = _rewritten(out, ((_EMAIL_RE, lambda read, written: pseudonym(written, self.key)),
                               (_PHONE_INSIDE_RE, lambda read, written: pseudonym(written, self.key)
                                if _is_phone_inside(read) else None)))
        if self.database is not None:  # the words left, but the pseudonyms just written
            personal = self.database.known_words({w for w in _WORD_RE.findall(out) if not PSEUDONYM_RE.fullmatch(w)})
            if personal:
                out = _WORD_RE.sub(lambda m: pseudonym(m.group(0), self.key) if m.group(0) in personal
                                   else m.group(0), out)
            for v in self.database.multiword_in(out):
                if v in out:
                    out = out.replace(v, pseudonym(v, self.key))
        return out

    def _known_word(self, word: str) -> str:
        """``word``'s pseudonym when it is a known value, also followed by a sentence's mark."""
        if word in self.known:
            return pseudonym(word, self.key)
        bare = word.rstrip(".!?")
        return pseudonym(bare, self.key) + word[len(bare):] if bare != word and bare in self.known else word

    def _other_spelling(self, word: str) -> str:
        """``word``'s pseudonym (without a sentence's mark after it) when it holds an email or a
        phone number only in another spelling (:data:`_OTHER_SPELLING_RE`), else ``word``."""
        if not _OTHER_SPELLING_RE.search(word):
            return word
        bare = word.rstrip(".!?")
        return pseudonym(bare, self.key) + word[len(bare):] if looks_personal(bare) else word

    def in_text(self, value: Any) -> Any:
        """A text shown whole (a table cell, a note of the figures): :meth:`text`'s, its personal
        parts replaced, so that a note naming a personal cohort stays readable; when what is left
        still looks personal (a spelling or a national phone number that sentences are not searched
        for), the whole value's pseudonym, as :meth:`value` gives it. Not a text: as it is."""
        if self.show or not isinstance(value, str) or not value:
            return value
        if _WORD_RE.fullmatch(value):  # one word: personal as a whole, or not at all
            return self.value(value)
        out = self.text(value)
        return pseudonym(value, self.key) if self.is_personal(out) else out

    def with_personal_names(self, names: Iterable[Any]) -> "Redactor":
        """The same Redactor knowing the ``names`` (cohort names) that are personal as a whole,
        so that :meth:`text` replaces each of them whole inside a sentence (``Mixpanel - NAME``)."""
        if self.show:
            return self
        names = {str(n) for n in names if n is not None}
        return self.with_known(self._personal(names)) if names else self

    def frame(self, df: "pd.DataFrame", id_columns: Iterable[str] = ID_COLUMNS) -> "pd.DataFrame":
        """A copy without personal columns and with personal identifier values replaced (the
        values of all columns looked up at once)."""
        if self.show:
            return df
        out = df.drop(columns=[c for c in df.columns if c in PERSONAL_COLUMNS])
        ids = set(id_columns)
        cols = [c for c in out.columns if c in ids or out[c].dtype == object]
        texts = {v for c in cols for v in out[c] if isinstance(v, str)}
        personal = self._personal(texts)
        for c in cols:  # an identifier whole; another text (a note, a label) its personal parts
            shown = (lambda v: pseudonym(v, self.key)) if c in ids else self.in_text
            out[c] = out[c].map(lambda v: shown(v) if isinstance(v, str) and v in personal else v)
        return out

    def sql(self, expr: str, known_table: str | None = None, otherwise: str | None = None) -> str:
        """SQL expression: ``expr`` (text) or its pseudonym. ``known_table``: a table/view with
        the database's personal values in column ``v`` (e.g. from :data:`KNOWN_PERSONAL_SQL`).
        ``otherwise``: what to show when ``expr`` is not personal (default ``expr`` itself; e.g.
        the JSON text a string value was taken out of)."""
        otherwise = expr if otherwise is None else otherwise
        if self.show:
            return otherwise
        cond = looks_personal_sql(expr)
        if known_table:
            cond = f"({cond} OR {expr} IN (SELECT v FROM {known_table}))"
        return f"CASE WHEN {expr} IS NOT NULL AND {cond} THEN {pseudonym_sql(expr, self.key)} ELSE {otherwise} END"
