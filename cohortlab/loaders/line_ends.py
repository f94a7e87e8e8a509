"""Files whose lines end in more than one way (LF, CRLF and lone CR mixed), which DuckDB's CSV
reader, the line reader of every JSONL and CSV loader, refuses ("The CSV Parser state machine
reached an invalid state"): such a file is read through a copy whose line ends are all LF.

The rule (docs/loading.md#line-numbers): each LF, each CRLF and each CR not followed by an LF
ends a line, so the copy has the same lines, numbered the same, as the file read that way. The
copy is made on demand, by the first reader that needs the file's lines
(:meth:`cohortlab.loaders.base.FileContext.text_path`), in blocks (never the whole file in
memory), decompressing a gzip file, and removed when the ``load()`` call ends. The file's
fingerprint is the original's (the copy is only read).

A CSV keeps the CRs and LFs inside its quoted fields (a value such as ``"line one\\rline two"``
is data, and DuckDB reads it as such); a JSONL line cannot hold a raw CR or LF inside a JSON
string, so every one of them ends a line there (a line cut by one is malformed JSON, and
quarantined as such, with its number).
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

from cohortlab.loaders.files import (CSV_DELIMITERS, CsvQuotes, blocks_carrying, csv_header, is_gzip,
                                     naming_written)
from cohortlab.errors import LoadError
from cohortlab.tempdirs import make_private_dir

BLOCK = 8 * 1024 * 1024


def _to_lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def _csv_to_lf(text: str, quotes: CsvQuotes) -> str:
    """A block of a CSV (as latin-1 text: one character per byte, the quotes, delimiters and line
    ends being ASCII in UTF-8) with the line ends outside quoted fields made LF, the quoted fields
    and their quotes as they are (:class:`~cohortlab.loaders.files.CsvQuotes`' rule)."""
    out, at = [], 0
    for quoted, a, b in quotes.segments(text):
        out.append(text[at:a])  # the quotes between two segments
        out.append(text[a:b] if quoted else text[a:b].replace("\r\n", "\n").replace("\r", "\n"))
        at = b
    out.append(text[at:])
    return "".join(out)


def _csv_delimiter(src: Path) -> list[str]:
    """The delimiter a field starts after, as the CSV loaders will read it from the header (its
    line end read outside quotes whatever the file's mix); every candidate when the header does
    not read (the loader then names what is wrong)."""
    try:
        return [csv_header(src).delim]
    except (LoadError, OSError, UnicodeDecodeError):
        return list(CSV_DELIMITERS)


def normalise_line_ends(src: Path, dst: Path, *, csv: bool = False) -> int:
    """Write ``src`` (gzip or plain) to ``dst`` (plain) with every line end an LF; return the
    number of lines of the copy (the last one counted when it has no line end). ``csv``: line
    ends inside quoted fields are kept as they are; a quote opens one only at the start of a field
    (:class:`~cohortlab.loaders.files.CsvQuotes`, as the CSV reader reads it: ``5" screen`` holds
    no quoted field)."""
    opener = gzip.open if is_gzip(src) else open
    quotes = CsvQuotes(_csv_delimiter(src)) if csv else None
    lines = 0
    last = b""
    with naming_written(dst), opener(src, "rb") as f, open(dst, "wb") as out:
        # a CR at the end of a block may be the first half of a CRLF, and a quote the first of ""
        # or a field's opening one: decided with the next block
        for data in blocks_carrying(f, BLOCK, b'\r"' if csv else b"\r"):
            if quotes is not None:
                data = _csv_to_lf(data.decode("latin-1"), quotes).encode("latin-1")
            else:
                data = _to_lf(data)
            out.write(data)
            lines += data.count(b"\n")
            last = data[-1:]
    return lines + (1 if last not in (b"", b"\n") else 0)


class TextCopies:
    """The copies of one ``load()`` call's files that the readers read instead of them: LF
    copies (:func:`normalise_line_ends`), copies with lone surrogate escapes written as text
    (:func:`cohortlab.loaders.surrogates.literal_surrogates`) and copies whose top-level arrays
    are one (:func:`cohortlab.loaders.joined_arrays.join_arrays`), made on demand in a temporary
    folder that :meth:`close` removes."""

    def __init__(self) -> None:
        self._dir: Path | None = None
        self._copies: dict[tuple[Path, bool], tuple[Path, int]] = {}
        # source (the file, or its LF copy) -> (copy, escapes rewritten, first line and escape)
        self._literal: dict[Path, tuple[Path, int, int | None, str | None]] = {}
        # source (the file, or one of these copies) -> (copy, arrays joined or None)
        self._joined: dict[Path, tuple[Path, int | None]] = {}

    def _new(self, suffix: str) -> Path:
        if self._dir is None:
            # cohortlab-lines-<pid>-...: a killed load's copies are swept by the next run (tempdirs)
            self._dir = Path(make_private_dir("lines"))
        return self._dir / f"{len(self._copies) + len(self._literal) + len(self._joined)}{suffix}"

    def get(self, path: Path, *, csv: bool = False) -> tuple[Path, int]:
        """The copy of ``path`` (made now if not yet) and its line count."""
        key = (Path(path), csv)
        if key not in self._copies:
            dst = self._new(".csv" if csv else ".jsonl")
            self._copies[key] = (dst, normalise_line_ends(Path(path), dst, csv=csv))
        return self._copies[key]

    def literal(self, path: Path) -> tuple[Path, int, int | None, str | None]:
        """The copy of ``path`` (a file, or one of these copies) with its lone surrogate escapes
        written as text (made now if not yet), the number of escapes rewritten, the first line
        holding one and that escape."""
        from cohortlab.loaders.surrogates import literal_surrogates

        path = Path(path)
        if path not in self._literal:
            dst = self._new(".json")
            self._literal[path] = (dst, *literal_surrogates(path, dst))
        return self._literal[path]

    def joined(self, path: Path) -> tuple[Path, int | None]:
        """The copy of ``path`` (a file, or one of these copies) whose top-level arrays are one
        (made now if not yet), and the number of arrays joined: None when ``path`` is not
        several arrays one after another (:func:`cohortlab.loaders.joined_arrays.join_arrays`)."""
        from cohortlab.loaders.joined_arrays import join_arrays

        path = Path(path)
        if path not in self._joined:
            dst = self._new(".json")
            self._joined[path] = (dst, join_arrays(path, dst))
        return self._joined[path]

    def existing(self, path: Path, *, csv: bool = False) -> Path | None:
        """The LF copy of ``path`` when one was made, else None."""
        hit = self._copies.get((Path(path), csv))
        return hit[0] if hit else None

    def names(self, path: Path) -> list[str]:
        """The names of every copy made of ``path`` (an error names ``path``, not them)."""
        lf = [c for c in (self.existing(path), self.existing(path, csv=True)) if c is not None]
        literal = [self._literal[s][0] for s in [Path(path), *lf] if s in self._literal]
        joined = [self._joined[s][0] for s in [Path(path), *lf, *literal] if s in self._joined]
        return [str(c) for c in lf + literal + joined]

    def close(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None
        self._copies.clear()
        self._literal.clear()
        self._joined.clear()
