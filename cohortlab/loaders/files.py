"""What a file is before it is loaded, read from its bytes alone: its compression (gzip by
content), its fingerprint and line count (one read: :func:`scan_file`), whether its line ends are
mixed, where a top-level JSON array closes, and which lines are not UTF-8.

No engine and no :class:`~cohortlab.loaders.base.LoadError` here: the helpers that sniff a
file's layout and refuse it (``head_text``, ``sniff_json_layout``, ``csv_header``, ...) stay in
:mod:`cohortlab.loaders.base`, which imports this module (never the other way round).
"""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash

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
    none), then CRLFs, so that a file whose CRs all end a CRLF counts as LF lines."""
    import numpy as np

    h = xxhash.xxh3_128()
    h.update(json.dumps({"kind": kind, "options": options}, sort_keys=True, default=str).encode())
    # one reused buffer: a fresh 8 MiB bytes object per read costs more (page faults) than the hash
    buf = bytearray(8 * 1024 * 1024)
    view = memoryview(buf)
    arr = np.frombuffer(buf, dtype=np.uint8)
    newlines = crs = crlfs = 0
    last = 0
    plain = not is_gzip(path)
    with open(path, "rb") as f:
        while n := f.readinto(buf):
            h.update(view[:n])
            if not plain:
                continue
            newlines += int(np.count_nonzero(arr[:n] == 10))
            if buf.find(b"\r", 0, n) >= 0 or last == 13:
                crs += buf.count(b"\r", 0, n)
                crlfs += buf.count(b"\r\n", 0, n) + (last == 13 and buf[0] == 10)
            last = buf[n - 1]
    if not plain:
        return FileScan(h.hexdigest())
    lines = None if crs != crlfs else newlines + (1 if last not in (0, 10) else 0)
    mixed = sum(n > 0 for n in (newlines - crlfs, crlfs, crs - crlfs)) > 1
    return FileScan(h.hexdigest(), lines, counted=True, mixed_eol=mixed)


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
        try:
            with open(path, "rb") as f:
                f.seek(-4, os.SEEK_END)
                isize = int.from_bytes(f.read(4), "little")
        except OSError:
            isize = 0
        size = max(isize, size * 64)
    return int(min(1 << 30, max(1 << 20, size + 4096)))


def invalid_utf8_lines(path: Path, limit: int = MAX_INVALID_UTF8_LINES) -> list[tuple[int, bytes]]:
    """(line number, bytes) of the lines of ``path`` (decompressed) that are not valid UTF-8, at
    most ``limit + 1``. Lines end in "\n" (or "\r" in a file without any "\n"). Blocks of 8 MiB
    are decoded whole; only a block that fails is split into lines."""
    out: list[tuple[int, bytes]] = []
    opener = gzip.open if is_gzip(path) else open
    with opener(path, "rb") as f:
        first = f.read(8 * 1024 * 1024)
        eol = b"\n" if b"\n" in first or b"\r" not in first else b"\r"
        line_no, carry, chunk = 1, b"", first
        while True:
            data = carry + chunk
            if chunk:
                cut = data.rfind(eol)
                if cut < 0:
                    carry, chunk = data, f.read(8 * 1024 * 1024)
                    continue
                block, carry = data[: cut + 1], data[cut + 1 :]
            else:
                block, carry = data, b""
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
