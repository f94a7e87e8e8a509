"""The loading framework shared by every loader.

What every load guarantees (the contract tested in ``tests/loaders``):

* **All or nothing.** All files of one ``load()`` call are loaded inside one DuckDB
  transaction. Any :class:`LoadError` (or engine error) rolls everything back.
* **Idempotent.** Each file gets a fingerprint (kind + options that shape rows + content hash).
  A file whose fingerprint is already in ``loads`` is skipped and reported as such.
* **Nothing silently dropped.** Record-level problems go to ``rejects``
  ``(load_id, kind, source_file, line, reason, raw)``; file-level problems (empty file,
  unrecognised format, truncated gzip, missing CSV column) raise :class:`LoadError` naming the
  file. For every file ``rows_read = loaded + deduplicated + quarantined``.
* **Streaming.** Records are read and parsed by DuckDB (``read_csv`` for lines, JSON functions
  for parsing); Python never loops over records.

The same limits in every loader (a file beyond them fails with one line naming the file and line):

* a line (JSONL record, CSV row) is at most ``MAX_LINE_SIZE`` (64 MiB); a JSON document (a
  pretty-printed file, a JSON array) at most 1 GiB;
* text is UTF-8 (a BOM is ignored). A JSONL line with bytes that are not UTF-8 is quarantined
  ``invalid_utf8`` and the rest of the file loads, numbered as in the file; a file with more than
  ``MAX_INVALID_UTF8_LINES`` (1000) such lines, and a CSV with any, is refused as not UTF-8
  (UTF-16 is refused: convert it);
* lines end in LF, CRLF or CR (a file with CR only is read line by line too; a file mixing them
  is read through an LF copy, :mod:`cohortlab.loaders.line_ends`, each of them ending a line);
* JSON may nest to any depth DuckDB parses (no Python recursion limit applies);
* a JSON array file holds one array: more JSON after it is refused;
* CSV: the delimiter is read from the header line (the most frequent of ``, TAB ; |``; none in a
  one-column file, so ids such as ``auth0|5f1a2b`` stay whole) or from an Excel ``sep=X`` first
  line (skipped), quotes are ``"``, and a row with more or fewer fields than the header is
  refused naming its line.

A load also warns (``LoadReport.warnings``; ``strict=True`` / ``--strict`` makes a warning an
error that loads nothing) when every record of a file was quarantined (probably the wrong kind).

A concrete loader subclasses :class:`Loader`, sets ``kind`` and implements ``load_file``.
"""

from __future__ import annotations

import json
import os
import re
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable

from cohortlab.engines.base import Engine
from cohortlab.errors import LoadError, SettingsError, StrictLoadError, TooBigError, is_disk_full, is_interrupt, more_memory_advice
from cohortlab.loaders.connectors import connector_hint
from cohortlab.loaders.files import (
    UNCLOSED_QUOTE,
    MAX_INVALID_UTF8_LINES,
    CSV_QUESTION,
    MAX_LINE_SIZE,
    NOT_JSON,
    CsvHead,
    FileScan,
    array_end,
    compression,
    csv_header,
    expand_paths,
    hidden_words,
    invalid_utf8_lines,
    is_jsonl,
    json_syntax_error,
    row_start_line,
    last_char,
    max_object_size,
    refuse_wide_text,
    scan_file,
    sniff_json_layout,
    some_names,
)
from cohortlab.loaders.line_ends import TextCopies
from cohortlab.loaders.surrogates import first_lone_surrogate
from cohortlab.pipeline import sql_str
from cohortlab.schema import LOADER_VERSION

# the message of a file that starts with a JSON array and goes on with more JSON after it
ARRAY_THEN_MORE = ("more JSON after the top-level array (an array followed by JSON lines?): expected JSON "
                   "arrays, one or several one after another, or one JSON value per line")
RAW_LIMIT = 2000  # characters of a rejected record kept in `rejects.raw`
# the largest element of a JSON array file (a record); DuckDB's buffer is twice this
ARRAY_ELEMENT_MAX = 16 * 1024 * 1024
# files at least this big are parsed in parallel (FileContext.numbered_table); smaller ones in
# one statement (fewer statements: a directory of small page files loads faster). The env var
# lets the test suite run every loader through both paths.
PARALLEL_MIN_BYTES_DEFAULT = 16 * 1024 * 1024


def parallel_min_bytes_problem(value: str) -> str | None:
    """What is wrong with ``COHORTLAB_PARALLEL_MIN_BYTES=value`` (a whole number of bytes, 0 or
    more), or None. The CLI says it in one line before any work; an import never fails on it."""
    return None if value.strip().isdigit() else "expected a whole number of bytes (0: every file in parallel)"


_env_min = os.environ.get("COHORTLAB_PARALLEL_MIN_BYTES", "")
PARALLEL_MIN_BYTES = int(_env_min) if _env_min.strip() and not parallel_min_bytes_problem(_env_min) \
    else PARALLEL_MIN_BYTES_DEFAULT


@dataclass
class FileResult:
    """Counts of one file. ``quarantined`` is by reason."""

    rows_read: int = 0
    loaded: int = 0
    deduplicated: int = 0
    quarantined: Counter = field(default_factory=Counter)
    # a loader sets this when a file with no records is still a meaningful input (e.g. a cohort
    # snapshot whose Engage page has "results": [], i.e. a cohort with 0 members)
    allow_empty: bool = False
    # a loader sets this when every record of the file was quarantined and the file is still what
    # the kind reads (a cohort sync export whose rows all remove a member): no "is this a ... file?"
    all_quarantined_is_expected: bool = False
    # what the records are when every one was quarantined (:func:`_all_quarantined_hint`),
    # said in the report's "is this a ... file?" warning
    all_quarantined_hint: str = ""
    # what the user should look at although the file loaded (each names the file); with
    # ``strict`` a warning fails the load
    warnings: list[str] = field(default_factory=list)

    @property
    def n_quarantined(self) -> int:
        return sum(self.quarantined.values())

    @property
    def all_quarantined(self) -> bool:
        """Records were read and every one was quarantined (none loaded, none a duplicate), and
        the kind does not expect that (:attr:`all_quarantined_is_expected`): the "is this a ...
        file?" warning."""
        return bool(self.rows_read) and not (self.loaded or self.deduplicated or self.all_quarantined_is_expected)

    def balanced(self) -> bool:
        return self.rows_read == self.loaded + self.deduplicated + self.n_quarantined


@dataclass
class LoadReport:
    """What one ``load()`` call did. ``str(report)`` is the printed summary."""

    kind: str
    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already loaded (same fingerprint)
    rows_read: int = 0
    loaded: int = 0
    deduplicated: int = 0
    quarantined: Counter = field(default_factory=Counter)
    load_ids: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # files of the folders given that were left out (hidden, completion or transaction markers,
    # mParticle's bucket verification file), named relative to their folder
    not_read: list[str] = field(default_factory=list)

    def add(self, path: str, load_id: int, r: FileResult) -> None:
        """Count one loaded file (its load id and :class:`FileResult`) into the report. Its warnings
        are masked here, as an error's reason is (:func:`cohortlab.privacy.masked_text`): a warning
        quotes data too (a cohort or attribute name, a stored name it suggests), and every output
        of a warning (stderr, ``--json``, ``--strict``'s error, Python's ``LoadWarning``, a report's
        log) reads this list."""
        warnings = list(r.warnings)
        if r.all_quarantined:
            # the most frequent first, ties by name: the same text whatever order the rows came in
            top = sorted(r.quarantined.items(), key=lambda rn: (-rn[1], rn[0]))[:3]
            reasons = ", ".join(f"{reason} {n:,}" for reason, n in top)
            warnings.append(
                f"{path}: every record was quarantined ({r.n_quarantined:,}: {reasons}); "
                f"is this a {self.kind} file?{r.all_quarantined_hint}"
            )
        self.warn(warnings)
        self.files.append(path)
        self.load_ids.append(load_id)
        self.rows_read += r.rows_read
        self.loaded += r.loaded
        self.deduplicated += r.deduplicated
        self.quarantined.update(r.quarantined)

    def warn(self, warnings: Iterable[str]) -> None:
        """Add ``warnings`` (each naming its file or files) to :attr:`warnings`, masked
        (:func:`cohortlab.privacy.masked_text`): a file's (:meth:`add`) and those
        :meth:`Loader.finish` returns."""
        from cohortlab.privacy import masked_text

        self.warnings += [masked_text(w) for w in warnings]

    @property
    def n_quarantined(self) -> int:
        """Records quarantined, all reasons together (per reason: ``quarantined``)."""
        return sum(self.quarantined.values())

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON values (what ``cohortlab load --json`` prints)."""
        return {
            "kind": self.kind,
            "files": self.files,
            "skipped": self.skipped,
            "rows_read": self.rows_read,
            "loaded": self.loaded,
            "deduplicated": self.deduplicated,
            "quarantined": dict(sorted(self.quarantined.items())),
            "warnings": list(self.warnings),
            "not_read": list(self.not_read),
        }

    def __repr__(self) -> str:
        skipped = f" ({len(self.skipped)} already loaded, skipped)" if self.skipped else ""
        return (f"<LoadReport {self.kind}: {len(self.files)} file(s){skipped}, {self.loaded:,} loaded, "
                f"{self.n_quarantined:,} quarantined; print() for the summary>")

    def __str__(self) -> str:
        lines = [
            f"{self.kind}: {len(self.files)} file(s) loaded"
            + (f", {len(self.skipped)} already loaded (skipped)" if self.skipped else ""),
            f"  rows read     {self.rows_read:>12,}",
            f"  loaded        {self.loaded:>12,}",
            f"  deduplicated  {self.deduplicated:>12,}",
            f"  quarantined   {self.n_quarantined:>12,}",
        ]
        for reason, n in sorted(self.quarantined.items()):
            lines.append(f"    {reason:<26}{n:>10,}")
        if self.not_read:
            lines.append(f"  not read      {len(self.not_read):>12,} file(s) of the folder: {hidden_words(self.not_read)}, "
                         f"markers holding no data, or links to a file outside it: {some_names(self.not_read)}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- options
def pop_as_of(opts: dict[str, Any], kind: str) -> dict[str, str]:
    """Take the option ``as_of`` (the time an export or snapshot was taken: ISO-8601, a datetime
    or epoch seconds / milliseconds) out of ``opts``: ``{"as_of": <ISO-8601 UTC>}``, or ``{}``
    without it. A bad value is a ValueError naming ``kind``."""
    from cohortlab.times import parse_naive_utc

    value = opts.pop("as_of", None)
    if value in (None, ""):
        return {}
    return {"as_of": parse_naive_utc(value, f"{kind}: as_of", epoch=True).isoformat()}


class AsOfOnly:
    """For a loader (before :class:`Loader` in its bases) whose one option is ``as_of``, the time
    its export was taken (:func:`pop_as_of`). Without the option, a file of a folder written by
    ``cohortlab fetch`` takes the capture time its ``fetch.json`` records
    (:func:`cohortlab.loaders.fetched.capture_time`); else the load time counts."""

    kind: str
    options: dict[str, Any]

    def validate_options(self, options: dict[str, Any]) -> dict[str, Any]:
        opts = dict(options)
        as_of = pop_as_of(opts, self.kind)
        if opts:
            raise ValueError(f"{self.kind}: unknown option(s) {sorted(opts)}; known: as_of")
        return as_of

    def file_options(self, path: Path) -> dict[str, Any]:
        if "as_of" in self.options:  # the user's as_of wins
            return {}
        from cohortlab.loaders.fetched import capture_time

        as_of = capture_time(path)
        return {"as_of": as_of} if as_of else {}


# --------------------------------------------------------------------------- file helpers
def csv_read_sql(ctx: "FileContext", head: "CsvHead") -> str:
    """``read_csv`` of a CSV file with a header (or, ``head.header`` false, without one), every
    column VARCHAR and named by position (``c1`` … ``cN``: a header named like a working column
    cannot clash), the dialect given, not guessed (:func:`~cohortlab.loaders.files.csv_header`:
    the delimiter and the line end; the lines before the header, an Excel ``sep=`` line,
    skipped). A row with more or fewer fields than the header fails the load with its line."""
    cols = "{" + ", ".join(f"'c{i + 1}': 'VARCHAR'" for i in range(len(head.columns))) + "}"
    text = ctx.text_path(csv=True)
    return (
        f"read_csv({sql_str(text)}, header={str(head.header).lower()}, auto_detect=false, columns={cols}, "
        f"skip={int(head.skip)}, "
        f"delim={sql_str(head.delim)}, quote='\"', escape='\"', new_line={sql_str(head.line_end)}, "
        f"compression='{compression(text)}', "
        f"max_line_size={MAX_LINE_SIZE}{ctx._buffer_option()})"
    )


def _header_cell_sql(cell: str) -> str:
    """SQL: a CSV cell (or header name) as a header name is compared: without the spaces and the
    byte order mark around it (:func:`~cohortlab.loaders.files.csv_header` drops the file's BOM;
    a part file joined after the first may bring its own); an empty cell is ''."""
    return f"trim(coalesce({cell}, ''), ' \ufeff')"


def repeated_header_sql(head: "CsvHead", alias: str = "") -> str:
    """SQL BOOLEAN: the row of :func:`csv_read_sql` (columns ``c1`` … ``cN``, ``alias`` their
    table's name and a dot, or '') repeats the header: each cell is the header's name of its
    column (:func:`_header_cell_sql` on both). Files unloaded in parts and joined one after the
    other (``cat part_*.csv``) repeat it where each part began; such a row is no record. (A CASE,
    so that a row's later cells are compared only when its first ones matched, and a cell is
    trimmed only when it holds the name: a third of the cost of comparing every cell.)"""
    conds = []
    for i, name in enumerate(head.columns):
        cell, bare = f"{alias}c{i + 1}", name.strip(" \ufeff")
        full = header_cell_is_name_sql(cell, name)
        conds.append(f"contains({cell}, {sql_str(bare)}) AND {full}" if bare else full)
    return "(CASE WHEN " + " AND ".join(f"({c})" for c in conds) + " THEN TRUE ELSE FALSE END)"


def header_cell_is_name_sql(cell: str, name: str) -> str:
    """SQL BOOLEAN: the cell ``cell`` is the header name ``name`` as :func:`repeated_header_sql`
    compares them (for a fast path that reads one column: it declines a file where that column
    repeats its name, and the exact path then tells a repeated header from a record)."""
    return f"{_header_cell_sql(cell)} = {_header_cell_sql(sql_str(name))}"


def repeated_header_warning(ctx: "FileContext", n: int, first_line: int) -> list[str]:
    """The warning for ``n`` rows of a CSV that repeat its header (skipped: no record, neither
    loaded nor quarantined nor counted as read), naming the file and the first one's line."""
    if not n:
        return []
    return [f"{ctx.path}: the header line repeats on {n} line(s), first on line {first_line} (CSV files "
            f"joined one after another, each with its header?): skipped, not read as records"]


def nonblank_sql(col: str = "raw") -> str:
    """SQL BOOLEAN: the line ``col`` is not blank (``trim(col) <> ''``). A line starting with a
    printable ASCII character other than a space is not blank: ``trim`` (a string copy per line)
    only runs for the others."""
    return (
        f"({col} IS NOT NULL AND CASE WHEN ascii({col}) BETWEEN 1 AND 127 AND ascii({col}) <> 32 "
        f"THEN TRUE ELSE trim({col}) <> '' END)"
    )


def container_type_sql(c: str) -> str:
    """SQL VARCHAR: 'OBJECT' / 'ARRAY' / 'NULL' / 'SCALAR' of a JSON value produced by
    ``json_extract`` (minified, so its first character tells the type), NULL when absent. Unlike
    ``json_type`` it never parses the value again (a whole ``properties`` object, just to tell
    that it is one)."""
    return (
        f"CASE WHEN {c} IS NULL THEN NULL WHEN left({c}, 1) = '{{' THEN 'OBJECT' "
        f"WHEN left({c}, 1) = '[' THEN 'ARRAY' WHEN {c} = 'null' THEN 'NULL' ELSE 'SCALAR' END"
    )


_UNITS = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
          "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}


def memory_limit_bytes(engine: Engine) -> float | None:
    """The engine's DuckDB ``memory_limit`` in bytes (None when it cannot be read)."""
    try:
        limit = str(engine.query_rows("SELECT current_setting('memory_limit')")[0][0]).strip()
        num, unit = limit.split()
        return float(num) * _UNITS[unit]
    except (ValueError, KeyError, IndexError):
        return None


# --------------------------------------------------------------------------- per-file context
@dataclass
class FileContext:
    """Handed to ``Loader.load_file``: the file, its load id, and SQL helpers."""

    engine: Engine
    path: Path
    load_id: int
    kind: str
    options: dict[str, Any]
    # physical line numbers (1-based) that are not valid UTF-8: the line readers skip them and
    # number the others as in the file (the loader quarantines them as invalid_utf8)
    skip_lines: list[int] = field(default_factory=list)
    # the fingerprint pass over the file's bytes, with its line count (fast.physical_lines)
    scan: FileScan | None = None
    # read the file's text through an LF copy (its line ends are mixed: line_ends), kept in
    # ``copies`` (one per load() call)
    normalise: bool = False
    copies: TextCopies = field(default_factory=TextCopies)
    # read the file's text through a copy whose lone surrogate escapes are written as text
    # (:mod:`cohortlab.loaders.surrogates`): a first attempt met one
    literal_surrogates: bool = False
    # read the file's text through a copy whose top-level arrays are one
    # (:mod:`cohortlab.loaders.joined_arrays`): a first attempt met several, one after another
    joined_arrays: bool = False

    def line_sql(self, k: str) -> str:
        """SQL: the physical line number of the k-th line read (``k`` an SQL expression),
        ``k`` itself unless lines were skipped (:attr:`skip_lines`)."""
        if not self.skip_lines:
            return k
        shifted = ", ".join(str(r - j) for j, r in enumerate(sorted(self.skip_lines), start=1))
        return f"({k} + len(list_filter([{shifted}], lambda x: x < {k})))"

    @property
    def file_sql(self) -> str:
        """The file as it is (a Parquet file; text readers use :attr:`text_sql`)."""
        return sql_str(self.path)

    @property
    def compression(self) -> str:
        return compression(self.path)

    def text_path(self, csv: bool = False) -> Path:
        """The file whose lines the readers read: the file itself, or, when its line ends are
        mixed (:attr:`normalise`), its LF copy (:mod:`cohortlab.loaders.line_ends`; ``csv``:
        line ends inside quoted fields kept), read through its copies with lone surrogates as
        text (:attr:`literal_surrogates`) and with its arrays joined (:attr:`joined_arrays`).
        Names in tables and errors stay :attr:`path`."""
        path = self._lines_path(csv)
        if csv:
            return path
        if self.literal_surrogates:
            path = self.copies.literal(path)[0]
        return self.copies.joined(path)[0] if self.joined_arrays else path

    def _lines_path(self, csv: bool = False) -> Path:
        """The file, or its LF copy when its line ends are mixed: what a lone surrogates copy is
        made from (:meth:`text_path`)."""
        return self.copies.get(self.path, csv=csv)[0] if self.normalise else self.path

    def text_lines(self) -> int | None:
        """The line count of the LF copy (None when the file is read as it is)."""
        return self.copies.get(self.path)[1] if self.normalise else None

    @property
    def text_sql(self) -> str:
        return sql_str(self.text_path())

    @property
    def text_compression(self) -> str:
        return compression(self.text_path())

    def raw_lines_sql(self) -> str:
        """SELECT (raw VARCHAR) — every physical line of the file, in file order, unnumbered (a
        query on it runs in parallel; see :meth:`numbered_table`)."""
        return (
            f"SELECT raw FROM read_csv("
            f"{self.text_sql}, columns={{'raw': 'VARCHAR'}}, delim='\\x01', quote='', escape='', "
            f"header=false, auto_detect=false, compression='{self.text_compression}', "
            f"max_line_size={MAX_LINE_SIZE}{self._buffer_option()}"
            f"{', ignore_errors=true' if self.skip_lines else ''})"
        )

    def _buffer_option(self) -> str:
        """read_csv's buffer is by default 16 x max_line_size: 1 GiB blocks, out of memory under
        a small memory_limit (1.5 GB). Then the buffer is max_line_size; not otherwise (an
        explicit buffer_size costs ~1 s more per 1M lines, at close)."""
        limit_bytes = memory_limit_bytes(self.engine)
        if limit_bytes is None:
            return ""
        return f", buffer_size={MAX_LINE_SIZE}" if limit_bytes < 8 * 16 * MAX_LINE_SIZE else ""

    def document_buffer(self) -> int:
        """``maximum_object_size`` for reading the file as whole JSON documents
        (:func:`max_object_size`), or a LoadError saying why when that cannot fit the engine's
        memory limit: DuckDB holds a JSON document whole, in a buffer of twice that size, and
        cannot spill it."""
        size = max_object_size(self.text_path())
        limit = memory_limit_bytes(self.engine)
        if limit is not None and 2 * size > 0.9 * limit:
            raise TooBigError(
                self.path,
                f"a JSON document of up to {size / 2**20:,.0f} MiB is read whole (DuckDB holds a document in "
                f"memory, in a buffer of twice its size, and cannot spill it): more than the memory limit of "
                f"{limit / 2**20:,.0f} MiB allows. Write it as JSONL, one record per line (e.g. jq -c '.[]' for "
                f"an array, jq -c '.results[]' for Engage pages), which is read in pieces, or raise "
                f"COHORTLAB_MEMORY_LIMIT",
            )
        return size

    def lines_sql(self) -> str:
        """SELECT (line BIGINT, raw VARCHAR) — every physical line of the file, 1-based.

        Blank lines come back with ``raw`` NULL (callers skip them; they are not records).
        (``row_number() OVER ()`` keeps the whole query single-threaded: for the heavy pass over
        a big file prefer :meth:`numbered_table`.)"""
        if self.skip_lines:
            return (f"SELECT {self.line_sql('n')} AS line, raw FROM "
                    f"(SELECT row_number() OVER () AS n, raw FROM ({self.raw_lines_sql()}))")
        return f"SELECT row_number() OVER () AS line, raw FROM ({self.raw_lines_sql()})"

    def unnumbered_lines_sql(self) -> str:
        """SELECT (line, raw) — every physical line of the file, in file order, ``line`` a
        placeholder: 0 for a line holding a record, NULL for a blank one. The input of a
        :meth:`numbered_table` stage, which gives the real numbers (positions)."""
        return f"SELECT CASE WHEN {nonblank_sql('raw')} THEN 0 END AS line, raw FROM ({self.raw_lines_sql()})"

    def numbered_table(self, table: str, select_sql: str) -> str | None:
        """Create temp table ``table`` from ``select_sql`` (one row per row of
        :meth:`raw_lines_sql`, in file order, e.g. ``SELECT f(raw) AS x FROM (raw_lines_sql)``),
        computed in parallel, and return the SQL expression of a row's line number in it: its
        position, from ``rowid`` (CREATE TABLE AS keeps the insertion order; inside a
        transaction rowids start at an offset). Returns None, creating nothing, for a file smaller
        than PARALLEL_MIN_BYTES or when positions cannot be trusted (insertion order not
        preserved): the caller then numbers lines with :meth:`lines_sql`."""
        eng = self.engine
        if self.path.stat().st_size < PARALLEL_MIN_BYTES:
            return None
        kept = eng.query_rows("SELECT current_setting('preserve_insertion_order')")[0][0]
        if str(kept).lower() not in ("true", "1"):
            return None
        eng.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {select_sql}")
        first, last, n = eng.query_rows(f"SELECT min(rowid), max(rowid), count(*) FROM {table}")[0]
        if n and last - first + 1 != n:  # not contiguous: do not guess
            eng.execute(f"DROP TABLE {table}")
            return None
        return self.line_sql(f"(rowid - {int(first or 0)} + 1)")

    def json_records_sql(self) -> str:
        """SELECT (line BIGINT, raw VARCHAR, j JSON) — one row per top-level JSON record.

        * JSONL: one record per non-blank line; ``line`` is the line number; ``j`` is NULL when
          the line is not valid JSON (the caller quarantines it as ``malformed_json``).
        * A JSON array document: one record per element; ``line`` is the 1-based element number.
        * One or several (pretty-printed) JSON documents: one record per document.
        A document that is not valid JSON raises a LoadError (nothing of the file is loaded)."""
        text = self.text_path()
        layout = sniff_json_layout(text)
        if layout == "jsonl":
            return (
                f"SELECT line, raw, TRY_CAST(raw AS JSON) AS j "
                f"FROM ({self.lines_sql()}) WHERE {nonblank_sql('raw')}"
            )
        if layout == "array":
            # element by element, never the whole array in memory (it cannot spill); raw minified.
            # read_json_objects reports every malformed array but one cut after a comma
            if last_char(text) != "]":
                if array_end(text) is not None:
                    raise LoadError(self.path, ARRAY_THEN_MORE)
                where = json_syntax_error(self.path)  # where it stops: a line and column (None past 16 MiB)
                raise LoadError(self.path, f"malformed JSON at {where} (the array is not closed: truncated file?)"
                                if where else "malformed JSON: the array is not closed (truncated file?)")
            return (
                "SELECT row_number() OVER () AS line, json(json)::VARCHAR AS raw, json AS j FROM read_json_objects("
                f"{self.text_sql}, format='array', compression='{self.text_compression}', "
                f"maximum_object_size={ARRAY_ELEMENT_MAX})"
            )
        docs = (
            f"SELECT row_number() OVER () AS doc_no, json AS doc FROM read_json_objects("
            f"{self.text_sql}, format='unstructured', compression='{self.text_compression}', "
            f"maximum_object_size={self.document_buffer()})"
        )
        return f"SELECT doc_no AS line, doc::VARCHAR AS raw, doc AS j FROM ({docs})"

    def reject(self, select_sql: str) -> Counter:
        """Insert rejects from ``select_sql`` returning (line, reason, raw); returns counts by reason."""
        self.engine.execute(
            "INSERT INTO rejects SELECT ?, ?, ?, line, reason, left(raw, ?) FROM (" + select_sql + ")",
            [self.load_id, self.kind, str(self.path), RAW_LIMIT],
        )
        rows = self.engine.query_rows(
            "SELECT reason, count(*) FROM rejects WHERE load_id = ? GROUP BY reason", [self.load_id]
        )
        return Counter({r: int(n) for r, n in rows})


# --------------------------------------------------------------------------- the loader base
class Loader(ABC):
    """Subclass per input kind. ``load_file`` writes canonical tables and rejects for one file."""

    kind: ClassVar[str]
    description: ClassVar[str] = ""  # what the kind takes, in one short line (`cohortlab load --help`)
    # what to do with a CSV given to this JSON kind, added to its "expected JSON" error
    csv_advice: ClassVar[str] = ""

    def __init__(self, **options: Any) -> None:
        try:
            self.options = self.validate_options(options)
        except LoadError:
            raise
        except ValueError as e:  # an unknown option or a bad value: the user's mistake, one line
            raise SettingsError(str(e)) from None

    def validate_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Check and normalise options; raise ValueError with a clear message. Default: none allowed."""
        if options:
            raise ValueError(f"{self.kind}: unknown option(s) {sorted(options)}")
        return {}

    def fingerprint_options(self) -> dict[str, Any]:
        """Options that change the rows a file produces (part of the fingerprint)."""
        return self.options

    def file_options(self, path: Path) -> dict[str, Any]:
        """Options of one file added to the load's (default: none): part of its fingerprint, of
        its ``loads.options`` and of ``FileContext.options``."""
        return {}

    @abstractmethod
    def load_file(self, ctx: FileContext) -> FileResult: ...

    def all_quarantined_note(self, result: FileResult, first: str | None) -> str:
        """What this kind adds to the "every record was quarantined" warning of a file, told by
        its quarantine reasons (``result.quarantined``) and the stored text of its first record
        (``first``, cut at ``RAW_LIMIT``; never shown); "" (the default) leaves it to what a
        connector's records are (:func:`_all_quarantined_hint`)."""
        return ""

    def begin(self, engine: Engine) -> None:
        """Called inside the load's transaction before the first file (default: nothing)."""

    def finish(self, engine: Engine, load_ids: list[int]) -> list[str] | None:
        """Called inside the load's transaction after the last file, with the load ids written
        (default: nothing). For work done once per ``load()`` rather than once per file, and for
        warnings only the whole call can tell (pages of one message in several files): it may
        return warnings (each naming its file or files), which the load adds to the report's,
        masked as a file's are, before ``strict`` is applied (so ``--strict`` fails on them
        too); None is no warning (an override that only cleans up may return None). A mixin's override
        returns what ``super().finish`` returned, with its own: a loader's may come after it."""
        return None

    def load(self, engine: Engine, paths, *, progress: bool = False, strict: bool = False) -> LoadReport:
        """Load ``paths`` (see the module docstring). ``strict``: a warning (every record of a
        file quarantined, a members file naming a new cohort close to a known one) fails the
        load (:class:`StrictLoadError`), which then changes nothing."""
        left_out: list[tuple[Path, Path]] = []
        files = expand_paths(paths, not_read=left_out)
        reads = _Reads()
        try:
            report = self._load_retrying(engine, files, progress, strict, reads)
        finally:
            reads.copies.close()
        # said, never silently: named relative to their folder (to the folder given, when several)
        several = len({d for d, _ in left_out}) > 1
        report.not_read = [str(f.relative_to(d.parent if several else d)) for d, f in left_out]
        return report

    def _load_retrying(self, engine: Engine, files: list[Path], progress: bool, strict: bool,
                       reads: _Reads) -> LoadReport:
        while True:
            try:
                return self._load_once(engine, files, progress, strict, reads)
            except _MixedLineEnds as e:
                # DuckDB's line reader refused the file (a gzip file whose line ends are mixed:
                # the scan counts only plain files): load again (the failed attempt was rolled
                # back) reading it through its LF copy; refused again, the file is unreadable
                if e.file in reads.mixed:
                    raise LoadError(e.path, "its lines cannot be read, even with every line end made an LF "
                                            "(DuckDB's CSV reader: \"the CSV Parser state machine reached "
                                            "an invalid state\")") from None
                reads.mixed.add(e.file)
            except _LoneSurrogates as e:
                # a lone surrogate escape (DuckDB refuses the document, or its JSONL line): load
                # again (the failed attempt was rolled back) reading the file through a copy with
                # those escapes written as text; refused again, the error stands
                if e.file in reads.literal:
                    raise LoadError(e.path, e.reason) from None
                reads.literal.add(e.file)
            except _InvalidUtf8 as e:
                # a JSONL file with invalid UTF-8 (DuckDB refuses the whole file): find those
                # lines, and load again (the failed attempt was rolled back) quarantining them
                text = reads.copies.existing(e.file) or e.file  # numbered as the loader reads the lines
                if e.file in reads.bad_lines or not is_jsonl(text):
                    raise LoadError(e.path, e.reason) from None
                found = invalid_utf8_lines(text)
                if not found:
                    raise LoadError(e.path, e.reason) from None
                if len(found) > MAX_INVALID_UTF8_LINES:
                    raise LoadError(e.path, f"{len(found):,}+ lines are not valid UTF-8 (first: line {found[0][0]}): "
                                            "the file is not UTF-8 encoded; convert it (e.g. iconv -f latin1 -t utf-8)") from None
                reads.bad_lines[e.file] = found
            except _JoinedArrays as e:
                # several top-level arrays one after another, which DuckDB refuses: load again
                # (the failed attempt was rolled back) reading the file through a copy that is
                # one array of their elements (made when the error was met)
                reads.joined.add(e.file)

    def _load_once(self, engine: Engine, files: list[Path], progress: bool, strict: bool,
                   reads: _Reads) -> LoadReport:
        report = LoadReport(self.kind)
        iterator: Iterable[Path] = files
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(files, desc=f"loading {self.kind}", unit="file", leave=False)
        fopts = self.fingerprint_options()
        with engine.transaction():
            self.begin(engine)
            for path in iterator:
                refuse_wide_text(path)  # before anything reads it as UTF-8
                extra = self.file_options(path)  # e.g. the capture time fetch.json records
                file_fopts = {**fopts, **extra}
                scan = scan_file(path, self.kind, file_fopts)
                fp = scan.fingerprint
                if engine.query_rows("SELECT 1 FROM loads WHERE fingerprint = ? LIMIT 1", [fp]):
                    report.skipped.append(str(path))
                    continue
                load_id = int(engine.query_rows("SELECT nextval('load_id_seq')")[0][0])
                bad = reads.bad_lines.get(path, [])
                ctx = FileContext(engine, path, load_id, self.kind, {**self.options, **extra},
                                  [n for n, _ in bad], scan,
                                  normalise=scan.mixed_eol or path in reads.mixed, copies=reads.copies,
                                  literal_surrogates=path in reads.literal, joined_arrays=path in reads.joined)
                try:
                    result = self.load_file(ctx)
                except LoadError as e:
                    if type(e) is LoadError and path not in reads.literal and first_lone_surrogate(ctx.text_path()):
                        # a record the loader could not read for a lone surrogate escape (a
                        # page's filter_by_cohort): again, read with those escapes as text
                        raise _LoneSurrogates(path, e.reason) from None
                    # an error found in the file's LF copy names the file (docs/loading#line-numbers)
                    if type(e) is LoadError and e.path in _copy_names(reads.copies, path):
                        raise LoadError(path, e.reason, line=e.line) from None
                    if type(e) is LoadError and self.csv_advice and e.reason.startswith(NOT_JSON) \
                            and e.reason.endswith(CSV_QUESTION):  # "(a CSV? <what to do>)"
                        raise LoadError(path, f"{e.reason[:-1]} {self.csv_advice})", line=e.line) from None
                    raise
                except Exception as e:  # engine errors: name the file
                    if is_interrupt(e) or is_disk_full(e):  # Ctrl-C, a full disk: not a problem of the file
                        raise
                    message = _clean_engine_error(e)
                    for copy in _copy_names(reads.copies, path):
                        message = message.replace(copy, str(path))
                    if "invalid UTF-8" in message:
                        raise _InvalidUtf8(path, message) from e
                    if "state machine reached an invalid state" in message:
                        raise _MixedLineEnds(path, message) from e
                    if "surrogate" in message and path not in reads.literal:
                        raise _LoneSurrogates(path, message) from e
                    # DuckDB's array reader meets the second array as a malformed element, or, when
                    # it is bigger than the largest element (16 MiB), as one element too big
                    if ("malformed JSON" in message or "maximum_object_size" in message) \
                            and path not in reads.joined and _arrays_one_after_another(ctx):
                        raise _JoinedArrays(path, message) from e
                    if message.endswith(UNCLOSED_QUOTE) and \
                            (line := _unclosed_quote_line(path, int(message.split()[1].rstrip(":")))):
                        # DuckDB's line is the row's number: a quoted value spanning lines above it
                        # moves it off the line of the file where the row (and its quote) begins
                        message = f"line {line}: {UNCLOSED_QUOTE}"
                    if message.startswith("record ") and "malformed JSON" in message:
                        where = json_syntax_error(path)  # a line and column, not DuckDB's record count
                        message = f"malformed JSON at {where}" if where else message
                    raise LoadError(path, message) from e
                if result.quarantined.get("malformed_json") and path not in reads.literal \
                        and first_lone_surrogate(ctx.text_path()) is not None:
                    # JSONL lines refused for a lone surrogate escape (each quarantined): again, read so
                    raise _LoneSurrogates(path, "a lone surrogate escape")
                if path in reads.literal:
                    result.warnings.append(_literal_warning(ctx))
                if bad:
                    _quarantine_invalid_utf8(ctx, bad, result)
                if result.rows_read == 0 and not result.allow_empty:
                    raise LoadError(path, "empty file: no records")
                if not result.balanced():
                    raise AssertionError(f"{path}: load counts do not add up: {result}")
                if result.all_quarantined:
                    result.all_quarantined_hint = _all_quarantined_hint(self, engine, load_id, result)
                engine.execute(
                    "INSERT INTO loads VALUES (?, ?, ?, ?, ?::JSON, now()::TIMESTAMP, ?, ?, ?, ?, ?)",
                    [load_id, self.kind, str(path), fp, json.dumps(file_fopts, default=str),
                     result.rows_read, result.loaded, result.deduplicated, result.n_quarantined,
                     LOADER_VERSION],
                )
                report.add(str(path), load_id, result)
            if report.load_ids:
                report.warn(self.finish(engine, report.load_ids) or [])
            if strict and report.warnings:
                raise StrictLoadError("; ".join(report.warnings) + " (--strict: nothing was loaded)")
        return report


def _all_quarantined_hint(loader: Loader, engine: Engine, load_id: int, result: FileResult) -> str:
    """What to add to the "every record was quarantined" warning of load ``load_id``, from its
    first quarantined record's stored text: the loader's own note (:meth:`Loader.all_quarantined_note`),
    else, when the records are what a connector or Data Pipelines wrote for another kind, that
    (:func:`cohortlab.loaders.connectors.connector_hint`); else nothing."""
    rows = engine.query_rows("SELECT raw FROM rejects WHERE load_id = ? ORDER BY line LIMIT 1", [load_id])
    first = rows[0][0] if rows else None
    return loader.all_quarantined_note(result, first) or connector_hint(first, loader.kind)


def _literal_warning(ctx: FileContext) -> str:
    """The warning of a file read with its lone surrogate escapes written as text."""
    _, count, first, escape = ctx.copies.literal(ctx._lines_path())
    return (f"{ctx.path}: {count:,} lone surrogate escape(s) (half of a character such as an emoji, cut "
            f"in two; first on line {first}: {escape}) read as their text, the six characters "
            f"{escape}: DuckDB reads no JSON string holding one")


def _copy_names(copies: TextCopies, path: Path) -> list[str]:
    """The names of the copies made of ``path`` (:mod:`cohortlab.loaders.line_ends`), which an
    error must not name: it names ``path``."""
    return copies.names(path)


class _InvalidUtf8(LoadError):
    """DuckDB refused a file for a byte sequence that is not UTF-8 (internal: Loader.load
    retries with those lines quarantined)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(path, reason)
        self.file = path


class _LoneSurrogates(LoadError):
    """A JSON file holds a lone surrogate escape, which DuckDB's JSON reader refuses (internal:
    Loader.load retries reading it through a copy with those escapes written as text)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(path, reason)
        self.file = path


class _JoinedArrays(LoadError):
    """A JSON file holds several top-level arrays one after another, which DuckDB's JSON reader
    refuses (internal: Loader.load retries reading it through a copy that is one array:
    :mod:`cohortlab.loaders.joined_arrays`)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(path, reason)
        self.file = path


def _arrays_one_after_another(ctx: FileContext) -> bool:
    """Whether the text ``ctx`` reads is several top-level JSON arrays one after another (asked
    after a malformed-JSON error only): its copy with them joined is then made, for the retry."""
    text = ctx.text_path()
    try:
        if sniff_json_layout(text) != "array":
            return False
    except LoadError:
        return False
    return ctx.copies.joined(text)[1] is not None


@dataclass
class _Reads:
    """How each file of one ``load()`` call is read, learnt from failed attempts (each retried,
    the attempt rolled back), and the copies read instead of files (:class:`TextCopies`)."""

    # lines that are not UTF-8, by file (quarantined invalid_utf8)
    bad_lines: dict[Path, list[tuple[int, bytes]]] = field(default_factory=dict)
    mixed: set[Path] = field(default_factory=set)  # read through an LF copy although the scan did not say so (gzip)
    literal: set[Path] = field(default_factory=set)  # read with their lone surrogate escapes written as text
    joined: set[Path] = field(default_factory=set)  # read with their top-level arrays joined into one
    copies: TextCopies = field(default_factory=TextCopies)


class _MixedLineEnds(LoadError):
    """DuckDB's line reader refused a file, as it refuses one whose lines end in more than one
    way (internal: Loader.load retries reading it through an LF copy)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(path, reason)
        self.file = path


def _quarantine_invalid_utf8(ctx: FileContext, bad: list[tuple[int, bytes]], result: FileResult) -> None:
    """Quarantine the lines that are not UTF-8 (``invalid_utf8``, the raw text with U+FFFD for
    the bad bytes) and count them in ``result``."""
    rows = [(ln, raw.rstrip(b"\r\n").decode("utf-8", errors="replace")[:RAW_LIMIT]) for ln, raw in bad]
    ctx.engine.execute(
        "INSERT INTO rejects SELECT ?, ?, ?, unnest(?::BIGINT[]), 'invalid_utf8', unnest(?::VARCHAR[])",
        [ctx.load_id, ctx.kind, str(ctx.path), [r[0] for r in rows], [r[1] for r in rows]],
    )
    result.rows_read += len(rows)
    result.quarantined["invalid_utf8"] += len(rows)


def _unclosed_quote_line(path: Path, row: int) -> int | None:
    """The line of the file where DuckDB's CSV row ``row`` begins (:func:`row_start_line`, with
    the delimiter the load read the file with), or None."""
    try:
        delim = csv_header(path).delim
    except LoadError:
        return None
    return row_start_line(path, row, delim)


_MALFORMED_JSON = re.compile(r'Malformed JSON in file ".*", at byte (\d+) in record/value (\d+): (.*)$')


def _clean_engine_error(e: Exception) -> str:
    """One line for an engine error. DuckDB's CSV errors (several lines with a dump of the
    dialect) become what was wrong on which line."""
    text = str(e).strip()
    msg = text.splitlines()
    if not msg:
        return type(e).__name__
    if ARRAY_THEN_MORE in text:
        return ARRAY_THEN_MORE
    m = re.search(r"CSV Error on Line: (\d+)", text)
    if m:
        line = m.group(1)
        cols = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
        if cols:
            expected, found = int(cols.group(1)), int(cols.group(2))
            more = "more" if found > expected else "fewer"
            return f"line {line}: {more} fields than the {expected} of the header (a ragged row)"
        if "Invalid unicode" in text or "not utf-8 encoded" in text:
            return f"line {line}: invalid UTF-8 (the file must be UTF-8 encoded)"
        if "unterminated quote" in text:
            return f"line {line}: {UNCLOSED_QUOTE}"
        if "Maximum line size" in text:
            return f"line {line}: longer than the maximum line size of {MAX_LINE_SIZE // (1024 * 1024)} MiB"
        detail = next((x.strip() for x in msg[1:] if x.strip() and not x.startswith("Original Line")), "")
        return f"line {line}: not a readable CSV/JSON line" + (f" ({detail})" if detail else "")
    m = _MALFORMED_JSON.search(msg[0])
    if m:  # DuckDB 2.0's record/value count is one more than the 1-based record (tests/loaders)
        byte, record, what = int(m.group(1)), int(m.group(2)) - 1, m.group(3).rstrip(". ")
        return f"record {record}: malformed JSON ({what} at byte {byte} of the record)"
    if "maximum recursion depth" in text or "nesting depth" in text.lower():
        return "JSON nested too deeply to read"
    first = re.sub(r"^(Invalid Input|Conversion|IO) Error: ", "", msg[0])
    if "Out of Memory Error" in first:
        return f"{first} {more_memory_advice()}"
    return first
