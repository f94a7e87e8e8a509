"""What a file is before it is loaded, read from its bytes alone: its compression (gzip by
content), its fingerprint and line count (one read: :func:`scan_file`), its layout (JSONL, one
JSON array, or JSON documents: :func:`sniff_json_layout`; a CSV's header and delimiter:
:func:`csv_header`), where a top-level JSON array closes, and which lines are not UTF-8.
No engine here: what a load does with a file is :mod:`cohortlab.loaders.base`'s. A file that
cannot be read, or is empty, raises :class:`~cohortlab.errors.LoadError` naming it.
"""

from __future__ import annotations

import glob as _glob
import gzip
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, NamedTuple

from contextlib import contextmanager

import xxhash

from cohortlab.errors import LoadError

MAX_INVALID_UTF8_LINES = 1000  # more lines than this that are not UTF-8: the file's encoding is wrong


def is_gzip(path: Path) -> bool:
    """Gzip is detected by content (magic bytes), not by the file name."""
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def compression(path: Path) -> str:
    return "gzip" if is_gzip(path) else "none"


def array_end(path: Path, limit: int = 64 * 1024 * 1024) -> int | None:
    """Where the top-level JSON array of ``path`` closes (offset of its ``]`` in the decompressed
    text), or None when it does not close within the first ``limit`` bytes. Strings and escapes
    are followed, so brackets inside strings do not count. Only called for a file whose last
    character is not ``]`` (an error path: a truncated array, or JSON after the array)."""
    opener = gzip.open if is_gzip(path) else open
    depth, in_str, esc, pos = 0, False, False, 0
    with opener(path, "rb") as f:
        while pos < limit and (chunk := f.read(1 << 20)):
            for b in chunk:
                if in_str:
                    if esc:
                        esc = False
                    elif b == 0x5C:  # backslash
                        esc = True
                    elif b == 0x22:
                        in_str = False
                elif b == 0x22:
                    in_str = True
                elif b in (0x5B, 0x7B):
                    depth += 1
                elif b in (0x5D, 0x7D):
                    depth -= 1
                    if depth == 0:
                        return pos
                pos += 1
    return None


@dataclass(frozen=True)
class FileScan:
    """What one read of a file's bytes tells: its ``fingerprint`` (kind + options + content
    hash) and, for a plain (not gzip) file, its physical line count as the exact path counts
    them (``lines``; None when a CR that does not end a CRLF makes the count uncertain: the
    typed fast path then declines the file). ``counted`` is False for a gzip file (its lines
    are counted by DuckDB when needed)."""

    fingerprint: str
    lines: int | None = None
    counted: bool = False
    # lines end in more than one way (LF, CRLF, lone CR): read through an LF copy (line_ends)
    mixed_eol: bool = False


def scan_file(path: Path, kind: str, options: dict[str, Any]) -> FileScan:
    """Hash ``path`` and count its lines in the same pass (the file is read once here instead of
    twice: the hash for the fingerprint, then the newline counts for the fast path). Newlines
    are counted by numpy; CRs only when the block holds one (``bytes.find``: most exports have
    none), then CRLFs, so that a file whose CRs all end a CRLF counts as LF lines. A gzip file is
    decompressed in the same pass, in blocks, for its line ends alone (``mixed_eol``; its lines
    are not counted), until they are found mixed: DuckDB's CSV reader does not always refuse such
    a CSV (a quoted field, a ``sep=`` line: a false unclosed quote, or no rows at all). A gzip
    file whose text starts with ``{`` or ``[`` (JSON) is not decompressed: DuckDB refuses JSONL
    whose line ends are mixed, and the load is retried through its LF copy (Loader.load)."""
    import numpy as np

    h = xxhash.xxh3_128()
    h.update(json.dumps({"kind": kind, "options": options}, sort_keys=True, default=str).encode())
    # one reused buffer: a fresh 8 MiB bytes object per read costs more (page faults) than the hash
    buf = bytearray(8 * 1024 * 1024)
    view = memoryview(buf)
    arr = np.frombuffer(buf, dtype=np.uint8)
    plain = not is_gzip(path)
    ends = _LineEnds()
    inflate = None if plain else _Inflate()
    text = b""  # a gzip file's first character that is not blank
    with open(path, "rb") as f:
        while n := f.readinto(buf):
            h.update(view[:n])
            if plain:
                ends.feed(buf, n, int(np.count_nonzero(arr[:n] == 10)))
            elif inflate is not None:
                for out in inflate.feed(bytes(view[:n])):
                    if not text and (text := out.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]) in (b"{", b"[") \
                            and kind != "mparticle-csv":  # (a CSV kind's header may start with "[")
                        inflate.failed = True  # JSON: not scanned (see above)
                        break
                    ends.feed(out, len(out), out.count(b"\n"))
                if inflate.failed or ends.mixed:
                    inflate = None  # decided (or unreadable: the load says what is wrong)
    if inflate is not None:
        for out in inflate.end():
            ends.feed(out, len(out), out.count(b"\n"))
    if not plain:
        return FileScan(h.hexdigest(), mixed_eol=ends.mixed)
    lines = None if ends.crs != ends.crlfs else ends.newlines + (1 if ends.last not in (0, 10) else 0)
    return FileScan(h.hexdigest(), lines, counted=True, mixed_eol=ends.mixed)


class _LineEnds:
    """The LFs, CRs and CRLFs of a file's bytes, fed block by block (a CRLF across two blocks
    counted once)."""

    def __init__(self) -> None:
        self.newlines = self.crs = self.crlfs = 0
        self.last = 0

    def feed(self, buf: bytes | bytearray, n: int, newlines: int) -> None:
        """The block ``buf[:n]``, holding ``newlines`` LFs."""
        if not n:
            return
        self.newlines += newlines
        if buf.find(b"\r", 0, n) >= 0 or self.last == 13:
            self.crs += buf.count(b"\r", 0, n)
            self.crlfs += buf.count(b"\r\n", 0, n) + (self.last == 13 and buf[0] == 10)
        self.last = buf[n - 1]

    @property
    def mixed(self) -> bool:
        """Lines end in more than one way (LF, CRLF, lone CR) in the bytes fed so far (a CR at the
        end, which the next block may make a CRLF, counted as lone)."""
        return sum(n > 0 for n in (self.newlines - self.crlfs, self.crlfs, self.crs - self.crlfs)) > 1


class _Inflate:
    """A gzip file's content from its compressed blocks, in pieces of at most 8 MiB (never the
    whole file in memory, whatever it decompresses to), member after member. ``failed``: the
    bytes are not gzip from some point on (nothing more is given)."""

    PIECE = 8 * 1024 * 1024

    def __init__(self) -> None:
        import zlib

        self._zlib = zlib
        self._d = zlib.decompressobj(31)
        self.failed = False

    def feed(self, data: bytes) -> Iterable[bytes]:
        zlib = self._zlib
        while data and not self.failed:
            try:
                out = self._d.decompress(data, self.PIECE)
            except zlib.error:
                self.failed = True
                return
            if out:
                yield out
            if self._d.eof:  # the member ends: another may follow (padding after it is ignored)
                data = self._d.unused_data
                if data and not data.strip(b"\0"):
                    self.failed = True  # padding (DuckDB, gzip: ignored): nothing more to read
                    return
                # the next member, here or in the next block (a member may end with the block read:
                # the scan stopped there, and a later member's mixed line ends went unseen)
                self._d = zlib.decompressobj(31)
            else:
                data = self._d.unconsumed_tail

    def end(self) -> Iterable[bytes]:
        """What is left (a piece that did not fit in the last one) when the file ends."""
        if not self.failed:
            try:
                out = self._d.flush()
            except self._zlib.error:
                return
            if out:
                yield out


def fingerprint(path: Path, kind: str, options: dict[str, Any]) -> str:
    return scan_file(path, kind, options).fingerprint


def max_object_size(path: Path) -> int:
    """``maximum_object_size`` for reading ``path`` as whole JSON documents: enough for the whole
    (decompressed) file, and no more. DuckDB allocates a buffer of twice this size up front, so
    a fixed 1 GiB meant a 2 GiB allocation for every small document, which fails outright under
    a ``memory_limit`` below 2 GiB. Gzip: the larger of the trailer's ISIZE and 64x the
    compressed size. Between 1 MiB and 1 GiB."""
    size = path.stat().st_size
    if is_gzip(path):
        size = max(gzip_isize(path), size * 64)
    return int(min(1 << 30, max(1 << 20, size + 4096)))


def gzip_isize(path: Path) -> int:
    """The size a gzip file's trailer records for its content (ISIZE: modulo 4 GiB, and of its
    last member only, so callers take it with a floor of their own); 0 when it cannot be read."""
    try:
        with open(path, "rb") as f:
            f.seek(-4, os.SEEK_END)
            return int.from_bytes(f.read(4), "little")
    except OSError:
        return 0


class Carry:
    """The end of a block after its last line end, kept for the next block. A line longer than a
    block is kept as a list of its pieces, joined once when it ends: ``carry + chunk`` copied the
    whole line again for every block (a 1.5 GiB line: 2.5 minutes and 3 GB before the file's
    error). A line longer than the largest document the loaders read (1 GiB) is not kept."""

    LIMIT = 1 << 30

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.size = 0

    def too_long(self, chunk: bytes) -> bool:
        """Whether the line kept, with ``chunk`` after it, is longer than :attr:`LIMIT`."""
        return self.size + len(chunk) > self.LIMIT and b"\n" not in chunk and b"\r" not in chunk

    def cut(self, chunk: bytes, eol: bytes) -> bytes | None:
        """The kept line and ``chunk`` up to its last ``eol`` (everything kept, at the end of the
        file: ``chunk`` empty), the rest kept; None when ``chunk`` has no ``eol`` (kept whole)."""
        if chunk and (cut := chunk.rfind(eol) + 1) == 0:
            self.pieces.append(chunk)
            self.size += len(chunk)
            return None
        cut = cut if chunk else 0
        block = b"".join([*self.pieces, chunk[:cut]])
        rest = chunk[cut:]
        self.pieces, self.size = ([rest] if rest else []), len(rest)
        return block


def invalid_utf8_lines(path: Path, limit: int = MAX_INVALID_UTF8_LINES) -> list[tuple[int, bytes]]:
    """(line number, bytes) of the lines of ``path`` (decompressed) that are not valid UTF-8, at
    most ``limit + 1``. Lines end in "\n" (or "\r" in a file without any "\n"). Blocks of 8 MiB
    are decoded whole; only a block that fails is split into lines."""
    out: list[tuple[int, bytes]] = []
    opener = gzip.open if is_gzip(path) else open
    with opener(path, "rb") as f:
        first = f.read(8 * 1024 * 1024)
        eol = b"\n" if b"\n" in first or b"\r" not in first else b"\r"
        line_no, carry, chunk = 1, Carry(), first
        while True:
            if carry.too_long(chunk):  # no record this long is read: the file's own error stands
                return out
            block = carry.cut(chunk, eol)
            if block is None:  # inside a line longer than a block
                chunk = f.read(8 * 1024 * 1024)
                continue
            try:
                block.decode("utf-8")
            except UnicodeDecodeError:
                for i, ln in enumerate(block.split(eol)):
                    try:
                        ln.decode("utf-8")
                    except UnicodeDecodeError:
                        out.append((line_no + i, ln))
                        if len(out) > limit:
                            return out
            line_no += block.count(eol)
            if not chunk:
                return out
            chunk = f.read(8 * 1024 * 1024)


ROW_BLOCK = 8 * 1024 * 1024  # what row_start_line reads at a time


def blocks_carrying(f, size: int, trailing: bytes) -> Iterator[bytes]:
    """The bytes of the open binary file ``f``, read ``size`` at a time, in blocks that never end
    with a byte of ``trailing`` but at the end of the file: such bytes are carried to the next
    block, whose first byte decides what they are (a CR may be the first half of a CRLF, a quote
    the first of ``""`` or a field's opening one: :meth:`CsvQuotes.segments`). Reading a byte more
    at a time instead copied the whole block for each (a run of 20,000 CRs took 26 s)."""
    carry = b""
    while chunk := f.read(size):
        block = carry + chunk
        body = block.rstrip(trailing)
        carry = block[len(body):]
        if body:
            yield body
    if carry:
        yield carry


def row_start_line(path: Path, row: int, delim: str) -> int | None:
    """The line of the file (decompressed; each LF, CRLF and lone CR ends one) on which CSV row
    ``row`` begins, counting rows as DuckDB's CSV errors do (from the file's first line, a line
    end inside a quoted field being data; ``delim`` the file's delimiter, which says where a field
    starts: :class:`CsvQuotes`): the line to look at in an editor when quoted values spanning
    lines come before it. None when the file has fewer rows. Read in blocks, once."""
    if row <= 1:
        return 1
    opener = gzip.open if is_gzip(path) else open
    # latin-1: one character a byte (a UTF-8 character's bytes are never a quote, CR, LF or an
    # ASCII delimiter; a delimiter that is not ASCII is looked for as its UTF-8 bytes)
    quotes = CsvQuotes([delim.encode().decode("latin-1")])
    lines, rows, first = 1, 1, True  # the line and row the text read so far ends on
    with opener(path, "rb") as f:
        for block in blocks_carrying(f, ROW_BLOCK, b'\r"'):
            text = block.decode("latin-1")
            if first and text.startswith("\xef\xbb\xbf"):  # the BOM: no part of the first field
                text = text[3:]
            first = False
            for quoted, start, end in quotes.segments(text):
                n = _line_ends(text, start, end)
                if not quoted:
                    if rows + n >= row:  # the row begins after one of this part's line ends
                        return lines + row - rows
                    rows += n
                lines += n
    return None


def _line_ends(text: str, start: int, end: int) -> int:
    """The line ends (LF, CRLF, lone CR) in ``text[start:end]``."""
    return text.count("\n", start, end) + text.count("\r", start, end) - text.count("\r\n", start, end)


class CsvQuotes:
    """Where a CSV's quoted fields are, as DuckDB (and RFC 4180) read them: a double quote opens a
    quoted field only at the start of a field (at the start of a line, or right after a
    delimiter; DuckDB also after one space there, not two, nor a tab), and is an ordinary
    character anywhere else (``5" screen``, ``na"me``); inside a quoted field ``""`` is a quote
    and a lone ``"`` closes the field. A line end inside a quoted field is data; anywhere else it
    ends the record. ``delims``: the strings a field starts after (the file's delimiter, or, for
    a header whose delimiter is not decided yet, every candidate). The one rule of
    :func:`csv_header`, :func:`_first_line_end` and :func:`row_start_line`."""

    def __init__(self, delims: Iterable[str]) -> None:
        before = [re.escape(d) for d in delims if d] + [r"\r", r"\n"]
        self._open = re.compile("|".join(f'(?<={b}{sp})"' for b in before for sp in ("", " ")))
        self.in_quotes = False  # the text fed so far ends inside a quoted field
        self._context = "\n"  # the end of the text fed so far (a field starts after it)

    def segments(self, text: str) -> Iterable[tuple[bool, int, int]]:
        """``text`` (the file's next block) as ``(quoted, start, end)``, in order: ``text[start:end]``
        is inside a quoted field (its quotes left out, ``""`` kept as it is) or outside one. A
        block that is not the file's last must not end with a quote or a CR (read a byte more):
        either is decided by the character after it."""
        pad = len(self._context)
        s = self._context + text
        i, n = pad, len(s)
        while i < n:
            if self.in_quotes:
                j = i
                while (j := s.find('"', j)) >= 0 and s.startswith('""', j):
                    j += 2  # an escaped quote
                end = n if j < 0 else j
                yield True, i - pad, end - pad
                i = end + 1
                self.in_quotes = j < 0
            else:
                m = self._open.search(s, i)
                end = m.start() if m else n  # the opening quote
                yield False, i - pad, end - pad
                i = end + 1
                self.in_quotes = m is not None
        self._context = s[-2:]


# --------------------------------------------------------------------------- layout
MAX_LINE_SIZE = 64 * 1024 * 1024


def is_bucket_verification_file(path: Path) -> bool:
    """mParticle's S3 bucket verification file (``mParticle_Bucket_Verification_<time>.txt``,
    holding ``{}``), which mParticle writes into the bucket when the connection is saved: no data,
    and in a folder of batches it is skipped (loaded, it was a quarantined record, and a
    ``--strict`` load of the bucket always failed on it)."""
    if not path.name.startswith("mParticle_Bucket_Verification_"):
        return False
    try:
        return path.stat().st_size <= 64 and path.read_bytes().strip() in (b"{}", b"")
    except OSError:
        return False


# the files a desktop's file browser writes into a folder it shows, never an export: Windows
# Explorer's thumbnail cache and folder settings (compared in any case: Windows names are); macOS
# Finder's .DS_Store and ._NAME (AppleDouble, beside a file copied to a non-Mac disk) are hidden names
OS_CLUTTER_NAMES = frozenset({"thumbs.db", "desktop.ini"})


def is_clutter(name: str) -> bool:
    """Whether the file or folder ``name`` (one path component) is left out of a folder's loads,
    and of what ``cohortlab fetch`` checks and keeps in a fetched folder: a hidden name (``.``
    first: ``.DS_Store``, ``._engage_page_00001.json``, ``.git``, fetch's ``.fetch``) or
    :data:`OS_CLUTTER_NAMES` (``Thumbs.db``, ``desktop.ini``). The one rule of both
    (docs/loading.md#clutter); below such a folder nothing is read either."""
    return name.startswith(".") or name.lower() in OS_CLUTTER_NAMES


def hidden_words(names: Iterable[str | os.PathLike]) -> str:
    """What the files ``names`` of a folder left out by :func:`is_clutter` are, for the line that
    names them: ``hidden``, and the OS clutter by name when one of them is (or is below) such a file."""
    if any(part.lower() in OS_CLUTTER_NAMES for n in names for part in Path(n).parts):
        return "hidden files and OS clutter (Thumbs.db, desktop.ini)"
    return "hidden"


# the empty files an exporter writes beside its data to say that a folder is complete: Mixpanel's
# Data Pipelines write ``complete`` into each finished hour or day folder, Spark and Hadoop jobs
# (warehouse unloads) ``_SUCCESS``
COMPLETION_MARKERS = ("complete", "_SUCCESS")
# the transaction markers Databricks (Spark on DBIO) writes beside the part files of a write:
# ``_started_<id>`` (empty) and ``_committed_<id>`` (JSON naming the parts added and removed), and
# ``_committed_vacuum<id>``: never data, whatever they hold
TRANSACTION_MARKER = re.compile(r"_(started|committed)_\w+")


def is_completion_marker(path: Path) -> bool:
    """An empty completion marker (:data:`COMPLETION_MARKERS`), or a Databricks transaction
    marker (:data:`TRANSACTION_MARKER`, any content): no data. In a folder it is skipped (loaded,
    an empty marker was an ``empty file`` error that refused the whole folder, and a
    ``_committed_`` file a quarantined record or a refused Parquet file)."""
    if TRANSACTION_MARKER.fullmatch(path.name):
        return True
    if path.name not in COMPLETION_MARKERS:
        return False
    try:
        return path.stat().st_size == 0
    except OSError:
        return False


@contextmanager
def naming_written(path: str | os.PathLike):
    """An ``OSError`` raised while ``path`` is written (a full disk: ``write()`` names no file)
    names ``path``, so that the error says which folder filled (the temporary folder of a copy)."""
    try:
        yield
    except OSError as e:
        if e.filename is None:
            e.filename = str(path)
        raise


def leads_outside(path: Path, root: Path) -> bool:
    """Whether the file ``path`` of a folder is reached through a link that leads out of the
    folder ``root`` (resolved): a link out of a folder is not followed (docs/loading.md#links)."""
    return not path.resolve().is_relative_to(root)


def expand_paths(paths: Iterable[str | os.PathLike] | str | os.PathLike,
                 not_read: list[tuple[Path, Path]] | None = None) -> list[Path]:
    """A file (also one whose name holds ``*``, ``?`` or ``[``), a directory (all files below it, sorted, except hidden ones and OS clutter: :func:`is_clutter`, mParticle's bucket
    verification file: :func:`is_bucket_verification_file`, and empty completion markers and
    Databricks transaction markers: :func:`is_completion_marker`) or a glob, or a list of those.
    ``not_read``: a list that receives ``(folder, file)`` for each file of a folder left out."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[Path] = []
    for p in paths:
        s = str(p)
        if Path(s).is_file():  # first: a file named 'export [copy].jsonl' is that file, not a pattern
            out.append(Path(s))
        elif any(ch in s for ch in "*?[") and not Path(s).is_dir():
            matches = sorted(Path(m) for m in _glob.glob(s, recursive=True) if Path(m).is_file())
            if not matches:
                raise LoadError(s, "no file matches this pattern")
            out += matches
        elif Path(s).is_dir():
            found = sorted(f for f in Path(s).rglob("*") if f.is_file())
            root = Path(s).resolve()
            matches = [
                f for f in found
                if not any(is_clutter(part) for part in f.relative_to(s).parts)
                and not is_bucket_verification_file(f) and not is_completion_marker(f)
                and not leads_outside(f, root)
            ]
            if not matches:
                raise LoadError(s, "directory contains no files")
            out += matches
            if not_read is not None:
                kept = set(matches)
                not_read += [(Path(s), f) for f in found if f not in kept]
        else:
            if os.path.exists(s):  # a FIFO, a device (/dev/null), a socket: a load reads a file more than once
                raise LoadError(s, "not a regular file (a pipe, a device or a socket): save the export to a file first")
            raise LoadError(s, "no such file or directory")
    seen: set[Path] = set()
    return [p for p in out if not (p.resolve() in seen or seen.add(p.resolve()))]


def some_names(names: list[str], shown: int = 10) -> str:
    """The first ``shown`` of ``names`` (relative file names: each on one line, :func:`one_line`),
    comma-separated, and how many more there are. The files under a hidden folder are one name,
    the folder's, with their count (``.git/ (1,204 files)``): they would crowd out the others."""
    from cohortlab.escaping import one_line

    counts: dict[str, int] = {}
    for name in names:
        parts = Path(name).parts
        hidden = next((i for i, part in enumerate(parts[:-1]) if part.startswith(".")), None)
        key = name if hidden is None else str(Path(*parts[:hidden + 1])) + "/"
        counts[key] = counts.get(key, 0) + 1
    items = [f"{one_line(k)} ({n:,} file{'' if n == 1 else 's'})" if k.endswith("/") else one_line(k)
             for k, n in counts.items()]
    more = len(items) - shown
    return ", ".join(items[:shown]) + (f" (and {more:,} more)" if more > 0 else "")


def head_bytes(path: Path, n: int = 65536) -> bytes:
    """The first ``n`` bytes of the (decompressed) file."""
    try:
        if is_gzip(path):
            with gzip.open(path, "rb") as f:
                return f.read(n)
        with open(path, "rb") as f:
            return f.read(n)
    except (OSError, EOFError) as e:
        raise LoadError(path, f"cannot read file: {e}") from e


def json_syntax_error(path: Path, limit: int = 16 * 1024 * 1024) -> str | None:
    """Where the (decompressed) text of ``path``, JSON values one after another (one value, an
    array, JSON lines), first stops being JSON, as ``line L, column C: what``; None when every value
    parses, or when the file is over ``limit`` bytes (not read whole for an error message). DuckDB
    names a malformed record by its count and a byte in it ("record 2 ... at byte 1 of the
    record"), which a pasted fragment (objects and a stray ``]`` without the opening ``[``) does
    not make findable."""
    data = head_bytes(path, limit + 1)
    if len(data) > limit:
        return None
    text = data.decode("utf-8", errors="replace")
    decoder, space, i = json.JSONDecoder(), re.compile(r"[\ufeff \t\r\n]*"), 0
    while True:
        i = space.match(text, i).end()
        if i >= len(text):
            return None
        try:
            _, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError as e:
            what, mark = e.msg, text[e.pos:e.pos + 1]
            if what == "Unterminated string starting at":  # Python's words, which read as cut off themselves
                what = "a string starts here and is never closed (is the file cut short?)"
            if e.pos == i and i > 0 and mark in (",", "]", "}"):
                what = (f"{mark!r} after a complete JSON value, outside any array"
                        + (" (is the file's opening '[' missing?)" if mark in (",", "]") else ""))
            # a line ends at each LF, CRLF and lone CR (docs/loading.md#line-numbers)
            before = text[:e.pos]
            line = before.count("\n") + before.count("\r") - before.count("\r\n") + 1
            return f"line {line}, column {e.pos - max(before.rfind(chr(10)), before.rfind(chr(13)))}: {what}"
        except (RecursionError, ValueError):  # nested too deeply for Python's parser: DuckDB's words
            return None


def head_text(path: Path, n: int = 65536) -> str:
    """The first ``n`` characters of the (decompressed) file, for format sniffing."""
    return head_bytes(path, n).decode("utf-8", errors="replace")


def utf16_or_32(head: bytes) -> str | None:
    """``"UTF-16"`` or ``"UTF-32"`` when text starting with ``head`` is in that encoding (a byte
    order mark, or an ASCII start with every other byte NUL), else None."""
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "UTF-32"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16"
    if len(head) >= 4 and (head[1] == head[3] == 0 and head[0] and head[2]
                           or head[0] == head[2] == 0 and head[1] and head[3]):
        return "UTF-16"
    return None


def refuse_wide_text(path: Path) -> None:
    """A LoadError for a UTF-16 or UTF-32 file (exports are UTF-8; Excel and PowerShell write
    UTF-16), saying how to convert it."""
    encoding = utf16_or_32(head_bytes(path, 4))
    if encoding:
        raise LoadError(path, f"the file is {encoding} text; cohortlab reads UTF-8: convert it first "
                              f"(iconv -f {encoding} -t UTF-8 IN > OUT)")


_LINE_END = re.compile(r"\r\n|\r|\n")


def _opening(text: str, n: int = 40) -> str:
    """The first ``n`` characters of a file for an error message, an email or a phone number in
    them replaced by ``<personal data>`` (a CSV of members given as JSON starts with one)."""
    from cohortlab.privacy import looks_personal

    return re.sub(r"[^\s,;:\"'\[\]{}]+", lambda m: "<personal data>" if looks_personal(m.group(0)) else m.group(0),
                  text[:n])


NOT_JSON = "unrecognised format: expected JSON"
CSV_QUESTION = " (a CSV?)"  # ends the NOT_JSON error of a file that opens with a CSV line


# a one-column CSV's header: a column name (distinct_id, $distinct_id, mpid, "Distinct ID")
_COLUMN_NAME = re.compile(r'"?[A-Za-z_$][A-Za-z0-9_$ .-]{0,60}"?')


def _looks_like_csv(text: str) -> bool:
    """Whether ``text`` (a file's start, not JSON) opens with a line holding a CSV delimiter, or
    with a column name alone on its line followed by another line (a one-column CSV of ids)."""
    lines = _LINE_END.split(text, 2)
    if any(d in lines[0] for d in CSV_DELIMITERS):
        return True
    return len(lines) > 1 and _COLUMN_NAME.fullmatch(lines[0].strip()) is not None and bool(lines[1].strip())


def sniff_json_layout(path: Path) -> str:
    """'jsonl' (one JSON value per line), 'array' (one top-level JSON array) or 'document'
    (one or several, possibly pretty-printed, JSON values). Raises LoadError for an empty file
    or a file that is not JSON at all."""
    head = head_text(path)
    stripped = head.lstrip("\ufeff \t\r\n")
    if not stripped:
        raise LoadError(path, "empty file")
    first = stripped[0]
    if first == "[":
        return "array"
    if first != "{":
        csv = CSV_QUESTION if _looks_like_csv(stripped) else ""
        raise LoadError(path, f"{NOT_JSON}, file starts with {_opening(stripped)!r}{csv}")
    # a line ends in LF, CRLF or a lone CR (old Mac tools; a file may mix them: line_ends)
    end = _LINE_END.search(stripped)
    first_line, rest = (stripped[: end.start()], stripped[end.end():]) if end else (stripped, "")
    if not end and len(head) >= 65536:  # a first line longer than the head (a big page)
        first_line = _first_line(path).lstrip("\ufeff \t\r\n")
    try:
        json.loads(first_line.strip())
        return "jsonl"
    except RecursionError:  # nested deeper than Python parses: a complete line all the same
        return "jsonl"
    except ValueError:
        pass
    # a JSONL file whose first line is malformed: the next non-blank (complete) line is a JSON
    # object on its own, which never happens inside a pretty-printed document
    for line in _LINE_END.split(rest)[:-1]:
        if line.strip():
            try:
                if line.strip().startswith("{") and isinstance(json.loads(line), dict):
                    return "jsonl"
            except RecursionError:
                return "jsonl"
            except ValueError:
                pass
            break
    return "document"


def _first_line(path: Path) -> str:
    """The first line of the (decompressed) file, read up to MAX_LINE_SIZE bytes."""
    try:
        opener = gzip.open if is_gzip(path) else open
        with opener(path, "rb") as f:
            data = f.readline(MAX_LINE_SIZE)
    except (OSError, EOFError) as e:
        raise LoadError(path, f"cannot read file: {e}") from e
    return data.decode("utf-8", errors="replace")


def last_char(path: Path) -> str:
    """The last non-whitespace character of the (decompressed) file ('' when there is none)."""
    try:
        if is_gzip(path):
            tail = b""
            with gzip.open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    if chunk.strip():
                        tail = chunk
        else:
            with open(path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                pos, tail = size, b""
                while pos > 0 and not tail.strip():
                    step = min(pos, 1 << 16)
                    pos -= step
                    f.seek(pos)
                    tail = f.read(step) + tail
    except (OSError, EOFError) as e:
        raise LoadError(path, f"cannot read file: {e}") from e
    tail = tail.rstrip()
    return tail[-1:].decode("latin-1") if tail else ""


CSV_DELIMITERS = (",", "\t", ";", "|")


class CsvHead(NamedTuple):
    """What a CSV file's first record says of it: the column names, the delimiter and the line
    end (as DuckDB's ``new_line`` option spells it: ``\\r\\n``, ``\\n`` or ``\\r``), and
    ``skip``, the lines before the header (1 after an Excel ``sep=X`` line, else 0): the header is
    line ``skip + 1`` and a row's line is its position + ``skip + 1``."""

    columns: list[str]
    delim: str
    line_end: str
    skip: int = 0
    # False: the first record is a row, not names (``columns`` are then its cells' positions,
    # "1" … "N", and a row's line is its position + ``skip``)
    header: bool = True

    def without_header(self) -> "CsvHead":
        """The same dialect for a file whose first record is a row (``mixpanel-members -o
        header=false``): its columns named by position."""
        return self._replace(columns=[str(i + 1) for i in range(len(self.columns))], header=False)

    @property
    def first_row_line(self) -> int:
        """The line of the first row: after the lines skipped and the header, if any."""
        return self.skip + (1 if self.header else 0) + 1


# Excel's hint line: "sep=;" as the whole first line names the delimiter of the lines after it
# (some exports write it so that Excel splits the columns whatever the locale)
_SEP_LINE = re.compile(r'sep=([^"\r\n])')


# a CSV that ends inside a quoted value (DuckDB: "Value with unterminated quote found"), after
# "line N: ", N the line where the row holding the quote begins (:func:`row_start_line`)
UNCLOSED_QUOTE = ('a quote (") opened on this line is never closed, so everything after it, to the end of the '
                  'file, was read as one field; close it, or write a quote inside a quoted value as ""')


def csv_header(path: Path) -> CsvHead:
    """The header of a CSV file, its delimiter and its line end, from one read of the file's
    first MiB. The delimiter is decided from the header record alone: the most frequent of
    ``, TAB ; |`` in it outside quoted names, and none for a one-column file (so ids such as ``auth0|5f1a2b`` in the
    rows are never split). The line end is the first one outside double quotes (``\\n`` when
    there is none): DuckDB's own detection takes the first CR or LF it meets, even inside a quoted
    header name, and then reads the whole file as the header. A first line ``sep=X`` (Excel's
    hint, X one character) is skipped and X is the delimiter. The names are split as DuckDB splits
    them (:func:`split_csv_record`). Raises LoadError for an empty file, and for a quoted first
    name spanning lines right after a byte order mark (DuckDB reads that header inconsistently)."""
    raw = head_text(path, 1 << 20)
    head = raw.lstrip("\ufeff")
    bom = len(head) < len(raw)  # the header follows a byte order mark
    if not head.strip(" \t\r\n"):
        raise LoadError(path, "empty file")
    # the delimiter is not decided yet (it is read from the header record, which ends at its first
    # line end outside quotes): a quote opens a quoted field after any candidate delimiter
    end, line_end, unclosed = _first_line_end(head, CSV_DELIMITERS)
    sep = _SEP_LINE.fullmatch(head[:end])
    skip = 0
    if sep:  # Excel's "sep=X" line: skipped, X is the delimiter
        # a BOM after the hint line (a tool that writes "sep=" before an UTF-8 file's own BOM) is
        # no part of the first column's name either
        rest = head[end + len(line_end):]
        skip, head = 1, rest.lstrip("\ufeff")
        bom = len(head) < len(rest)
        end, line_end, unclosed = _first_line_end(head, (sep.group(1),))
    first = head[:end]  # the header record: line ends inside quotes are data
    # counted outside quoted names (`mpid,"Plan; tier; level"` is a "," file), as DuckDB splits it
    unquoted = "".join(first[a:b] for quoted, a, b in CsvQuotes(CSV_DELIMITERS).segments(first) if not quoted)
    counts = {d: unquoted.count(d) for d in CSV_DELIMITERS}
    delim = sep.group(1) if sep else max(CSV_DELIMITERS, key=lambda d: counts[d]) if any(counts.values()) else "\x01"
    if not sep:  # the record again, a quote opening after the delimiter only (not after a TAB in a , file)
        end, line_end, unclosed = _first_line_end(head, (delim,))
        first = head[:end]
    if unclosed:
        # a header field opening a quote never closed: the whole file would be its last column's
        # name, and a members file a snapshot of 0 members (everyone left the cohort)
        raise LoadError(path, f"the header line: {UNCLOSED_QUOTE}", line=skip + 1)
    if bom and first.startswith('"') and _LINE_END.search(first, 0, _quoted_end(first)):
        # DuckDB does not open a quoted field right after a byte order mark when it looks for the
        # header's end (it takes the first line alone, the rest of the name becoming a row) but
        # does when it names the columns: its reading is inconsistent, so the file is refused
        raise LoadError(path, "the header line: the first column's name is quoted and spans lines right after the "
                              "file's byte order mark, which DuckDB reads as two records; write the name on one "
                              "line, or save the file without the byte order mark", line=skip + 1)
    header = split_csv_record(first, delim)
    if not header or not any(c.strip() for c in header):
        raise LoadError(path, f"no header line: expected column names on line {skip + 1}", line=skip + 1)
    return CsvHead(header, delim, line_end.replace("\r", "\\r").replace("\n", "\\n"), skip)


def split_csv_record(record: str, delim: str) -> list[str]:
    """The fields of one CSV record (a header line, its line ends inside quotes included), as
    DuckDB splits and names them (:class:`CsvQuotes`' rule): split on ``delim`` outside quoted
    fields; a quoted field's quotes left out and ``""`` inside one read as ``"``; the one space
    before an opening quote dropped (`` "c,d"`` is ``c,d``); a quote anywhere else kept as it is
    (``size (in")``). Other spaces around a name are kept (DuckDB trims them; the loaders compare
    names without them)."""
    fields: list[str] = []
    cur: list[str] = []
    for quoted, start, end in CsvQuotes([delim]).segments(record):
        if quoted:
            if "".join(cur) == " ":  # the space before the opening quote
                cur = []
            cur.append(record[start:end].replace('""', '"'))
        else:
            parts = record[start:end].split(delim)
            cur.append(parts[0])
            for part in parts[1:]:
                fields.append("".join(cur))
                cur = [part]
    fields.append("".join(cur))
    return fields


def _quoted_end(record: str) -> int:
    """The end of the quoted field ``record`` starts with (its closing quote; ``len(record)`` if none)."""
    for quoted, _, end in CsvQuotes(()).segments(record):
        if quoted:
            return end
    return len(record)


def _first_line_end(head: str, delims: Iterable[str]) -> tuple[int, str, bool]:
    """(position, text) of the first line end outside quoted fields in ``head`` (:class:`CsvQuotes`,
    a field starting after any of ``delims``): ``\\r\\n``, ``\\n`` or ``\\r``; ``(len(head), "\\n")``
    when there is none; and whether ``head`` then ends inside a quoted field (a quote never
    closed, when ``head`` is the whole file)."""
    quotes = CsvQuotes(delims)
    for quoted, start, end in quotes.segments(head):
        if not quoted and (m := _LINE_END.search(head, start, end)):
            return m.start(), m.group(), False
    return len(head), "\n", quotes.in_quotes


_LINE_END = re.compile(r"\r\n|\r|\n")


def is_jsonl(path: Path) -> bool:
    """Whether the file holds one JSON value per line (False for any other layout, or none)."""
    try:
        return sniff_json_layout(path) == "jsonl"
    except LoadError:
        return False
