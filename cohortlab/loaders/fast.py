"""The typed fast path of the loaders: DuckDB's parallel ``read_json`` with only the fields the
canonical tables need, instead of parsing every line's text with the JSON functions.

A loader asks for it first and falls back to its exact line-by-line path when the fast path
declines the file; every loader's fast path decides the same way (:func:`accepted`: rows numbered
by position, declined when they are not one per line or a row is one it cannot take exactly). Loaders with a fast path (docs/loading.md#fast-path): ``mixpanel-events``
(JSONL, ``properties=none``), ``mixpanel-profiles`` and ``mixpanel-members`` (JSONL of bare
Engage results: ``mixpanel_common._stage_engage_fast``; a members CSV:
``MixpanelMembersLoader._stage_csv_fast``), ``mparticle-profiles`` (JSONL:
``_mparticle._fast_stage``). The fast path takes a file only when it can take it *exactly* as the exact
path would:

* every identifier-bearing value is read as a JSON leaf (``JSON`` columns, never cast by
  ``read_json``), and typed by the same SQL as the exact path (``id_text_sql`` and friends), so a
  number keeps its exact text and a string stays a string;
* each physical line holds one record: ``read_json`` (``ignore_errors``) gives one row per
  non-blank line (a NULL row for a line it cannot parse) and skips blank ones, so the file is
  taken only when the number of rows equals the number of physical lines (no blank line, so a
  row's position is its line number) and no row is NULL;
* no record would be quarantined, and no identifier is spelled as a JSON float (the exact path
  reads such a token back from the line's text).

Anything else (a parse error, a value of an unexpected type, a blank line, a reject, a float
identifier, a JSON array or document instead of JSONL) and the whole file goes through the exact
path, which quarantines, numbers and types it as before. Nothing the fast path does can fail a
statement on data it declines (``ignore_errors``; every cast is a ``TRY``): DuckDB aborts the
whole load's transaction on a failed statement.

``ENABLED`` switches the fast path off (the test suite runs every loader test with and without
it; ``COHORTLAB_FAST_LOAD=0`` does the same for a process).
"""

from __future__ import annotations

import logging
import os

from cohortlab.loaders.base import FileContext
from cohortlab.loaders.files import scan_file, sniff_json_layout

log = logging.getLogger(__name__)

ENABLED = os.environ.get("COHORTLAB_FAST_LOAD", "1").strip().lower() not in ("0", "false", "no", "off")


def enabled() -> bool:
    return ENABLED


def json_leaf_struct(fields: dict[str, str | dict]) -> str:
    """A DuckDB STRUCT type of JSON leaves (nested dicts become nested structs), for the
    ``columns`` of ``read_json``: ``{"time": "JSON"}`` -> ``STRUCT("time" JSON)``."""
    parts = []
    for name, typ in fields.items():
        t = json_leaf_struct(typ) if isinstance(typ, dict) else typ
        parts.append(f'"{name}" {t}')
    return "STRUCT(" + ", ".join(parts) + ")"


def read_json_sql(ctx: FileContext, columns: dict[str, str | dict]) -> str:
    """``read_json`` of ``ctx.path`` as JSONL with only ``columns`` (name -> type, a dict for a
    struct of JSON leaves), one row per non-blank line, a NULL row for a line it cannot parse."""
    cols = ", ".join(
        f"'{name}': '{json_leaf_struct(t) if isinstance(t, dict) else t}'" for name, t in columns.items()
    )
    return (
        f"read_json({ctx.text_sql}, format='newline_delimited', ignore_errors=true, "
        f"compression='{ctx.text_compression}', columns={{{cols}}})"
    )


def physical_lines(ctx: FileContext) -> int | None:
    """The number of physical lines of the file, as the exact path counts them (blank ones too).
    A plain file is counted in Python, by the same pass that hashed it for the fingerprint
    (:func:`cohortlab.loaders.files.scan_file`: numpy counts the newlines, a tenth of what DuckDB's
    ``read_csv`` takes to split the lines), or here when the context has no scan; a file with a
    CR that does not end a CRLF (which ``read_csv`` may count as a line end) gives None (the
    caller declines it). A gzip file is counted by DuckDB."""
    if ctx.normalise:  # read through an LF copy: its lines, counted as it was written
        return ctx.text_lines()
    if ctx.compression != "none":
        return int(ctx.engine.query_rows(f"SELECT count(*) FROM ({ctx.raw_lines_sql()})")[0][0])
    scan = ctx.scan if ctx.scan is not None and ctx.scan.counted else scan_file(ctx.path, ctx.kind, {})
    return scan.lines


def numbered_rows(ctx: FileContext, table: str, select_sql: str, *, per_line: bool = True) -> str | None:
    """Create temp table ``table`` from ``select_sql`` (in file order: one row per non-blank line
    of JSONL, or with ``per_line`` False one row per row of a CSV) and return the SQL expression
    of a row's 1-based position (from ``rowid``; see :meth:`FileContext.numbered_table`), which
    is its line number for JSONL. Returns None, declining the file (:func:`declined`: the table
    dropped, the reason said), when positions cannot be trusted or, with ``per_line``, the rows
    are not one per physical line."""
    eng = ctx.engine
    kept = eng.query_rows("SELECT current_setting('preserve_insertion_order')")[0][0]
    if str(kept).lower() not in ("true", "1"):
        return declined(ctx, table, "insertion order is not preserved")
    lines = None
    if per_line:
        if not ctx.skip_lines and sniff_json_layout(ctx.text_path()) == "jsonl":
            lines = physical_lines(ctx)
        if lines is None:
            return declined(ctx, table, "not one JSON record per line")
    eng.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {select_sql}")
    first, last, n = eng.query_rows(f"SELECT min(rowid), max(rowid), count(*) FROM {table}")[0]
    if per_line and (not n or n != lines):
        return declined(ctx, table, "not one JSON record per line")
    if n and last - first + 1 != n:
        return declined(ctx, table, "row positions are not contiguous")
    return f"(rowid - {int(first or 0)} + 1)"


def accepted(
    ctx: FileContext,
    table: str,
    select_sql: str,
    *,
    rejected: str = "reason IS NOT NULL",
    why: str = "a record the typed read cannot take exactly",
    per_line: bool = True,
    take: bool = True,
) -> str | None:
    """The fast path's acceptance of a file, the same for every loader: temp table ``table`` from
    ``select_sql`` numbered by position (:func:`numbered_rows`), declined when the rows are not one
    per line (``per_line``) or their positions cannot be trusted, declined (``why``) when a row is
    ``rejected`` (an SQL condition on its columns: a record the exact path would quarantine or
    read otherwise), else taken (:func:`taken`; ``take`` False leaves that to a caller with more
    checks to make). Returns the SQL expression of a row's position, or None when the file goes
    through the exact path (nothing left behind)."""
    line = numbered_rows(ctx, table, select_sql, per_line=per_line)
    if line is None:
        return None
    if ctx.engine.query_rows(f"SELECT 1 FROM {table} WHERE {rejected} LIMIT 1"):
        return declined(ctx, table, why)
    if take:
        taken(ctx)
    return line


def declined(ctx: FileContext, table: str, why: str) -> None:
    """Drop the fast path's table and say why the file goes through the exact path (returns
    None, the fast path's answer for a declined file)."""
    ctx.engine.execute(f"DROP TABLE IF EXISTS {table}")
    log.debug("%s: %s: exact path (%s)", ctx.kind, ctx.path, why)


def taken(ctx: FileContext, note: str = "") -> None:
    """Say that the file took the fast path (``note``: e.g. how many lines the exact path read)."""
    log.debug("%s: %s: fast path%s", ctx.kind, ctx.path, f" ({note})" if note else "")


# ----------------------------------------------------------------------------- typing JSON leaves
def leaf_kind_sql(t: str, integers: bool = True) -> str:
    """'s' string, 'i' integer, 'n' JSON null, 'x' anything else (float, boolean, object, array),
    NULL when absent, from the first character of the leaf's JSON text ``t`` (never re-parsed).
    An integer is 'i' only in the range the JSON functions type as one (``BIGINT`` or
    ``UBIGINT``: -2^63 to 2^64-1); beyond it they type it ``DOUBLE``, a JSON float to the exact
    path, so it is 'x' (only a leaf of 20 digits or more is cast to tell).
    ``integers`` False: no 'i' (an integer is 'x' too), for a leaf read the same way whichever
    number it holds (no regular expression per row)."""
    integer = (f"WHEN regexp_full_match({t}, '-?[0-9]+') AND (length({t}) < 20 OR TRY_CAST({t} AS HUGEINT) "
               f"BETWEEN -9223372036854775808 AND 18446744073709551615) THEN 'i' ") if integers else ""
    return (f"CASE WHEN {t} IS NULL THEN NULL WHEN left({t}, 1) = '\"' THEN 's' WHEN {t} = 'null' THEN 'n' "
            f"{integer}ELSE 'x' END")


def leaf_string_sql(t: str) -> str:
    """The value of a JSON string leaf ``t`` (its JSON text): the text between the quotes,
    unescaped by the JSON functions only when it holds a backslash. (``substring`` with an
    explicit length: half the cost of the slice ``t[2:-2]``, the same text.)"""
    return f"CASE WHEN contains({t}, '\\') THEN json_extract_string({t}, '$') ELSE substring({t}, 2, length({t}) - 2) END"


ISO_SECONDS = '"%Y-%m-%dT%H:%M:%S"'  # a JSON string leaf holding an ISO time without a zone


def iso_parsed_sql(t: str) -> str:
    """The TIMESTAMP of a JSON string leaf ``t`` (its JSON text) spelled exactly
    ``"YYYY-MM-DDTHH:MM:SS"`` (no zone: UTC), NULL for anything else. Pair it with
    :func:`iso_utc_sql`."""
    return f"try_strptime({t}, '{ISO_SECONDS}')"


def iso_utc_sql(t: str, parsed: str, exact: str) -> str:
    """The exact path's UTC TIMESTAMP of an ISO string (``exact``: the ``TIMESTAMPTZ`` cast and
    ``timezone('UTC', ...)``, four times the cost) taken from ``parsed`` (:func:`iso_parsed_sql`
    of leaf text ``t``) when the leaf is the canonical spelling of that time (it formats back to
    the same text: no zone, two digits each, a valid date), which both read the same (the session
    time zone is UTC); ``exact`` for anything else."""
    return f"CASE WHEN strftime({parsed}, '{ISO_SECONDS}') = {t} THEN {parsed} ELSE {exact} END"
