"""JSON text holding a lone surrogate escape: ``"Ann \\ud83d"``, half of a character outside the
Basic Multilingual Plane (an emoji cut in two by a tool that truncates strings in UTF-16 code
units). Python's ``json`` and JavaScript accept it; DuckDB's JSON reader refuses the whole
document (``no low surrogate in string``), so one such name cost every record of its Engage page
or cohorts list.

Such a file is read through a copy in which each lone surrogate escape is written as its text:
``\\ud83d`` becomes ``\\\\ud83d``, the six characters ``\\ud83d`` in the loaded string. Nothing
else changes (a pair ``\\ud83d\\ude00`` is a character and stays as it is; lines and their numbers
are the file's), and no two strings that differed become equal. The copy is made only after a
load of the file met the problem (``Loader.load`` retries, as for mixed line ends): the file
is searched for a lone escape only when the load failed or quarantined ``malformed_json``
records, so a file without either costs nothing more.
"""

from __future__ import annotations

import gzip
import re
import zlib
from pathlib import Path

from cohortlab.loaders.files import Carry, is_gzip, naming_written
from cohortlab.loaders.line_ends import BLOCK

# an escape \uD800-\uDBFF (high) not followed by an escape \uDC00-\uDFFF (low), or a low one not
# preceded by a high one; in both, the backslash is an escape's (an even number of backslashes,
# maybe none, before it: "\\ud83d" is a backslash and the text "ud83d", no escape)
_HIGH = rb"\\u[dD][89abAB][0-9a-fA-F]{2}"
_LOW = rb"\\u[dD][c-fC-F][0-9a-fA-F]{2}"
LONE = re.compile(
    rb"(?<!\\)((?:\\\\)*)(?:(" + _HIGH + rb")(?!" + _LOW + rb")|(?<!" + _HIGH + rb")(" + _LOW + rb"))"
)


def _escape(m: re.Match) -> bytes:
    """The lone escape a match of :data:`LONE` found (``\\ud83d``), without the backslashes before it."""
    return m.group(2) or m.group(3)


def _literal(m: re.Match) -> bytes:
    return m.group(1) + b"\\" + _escape(m)


def _lines(path: Path):
    opener = gzip.open if is_gzip(path) else open
    with opener(path, "rb") as f:
        yield from f  # a JSON string holds no raw line end: an escape never spans two lines


def first_lone_surrogate(path: Path) -> tuple[int, str] | None:
    """(line, escape) of the first lone surrogate escape of ``path`` (gzip or plain), or None,
    also when the file cannot be read to its end (a truncated gzip file: its own error stands).
    Read in blocks of whole lines; a block without any ``\\u`` is only counted (0.8 s for a
    364 MB events file), the others are searched line by line."""
    opener = gzip.open if is_gzip(path) else open
    line, carry = 1, Carry()
    try:
        with opener(path, "rb") as f:
            while True:
                chunk = f.read(BLOCK)
                if carry.too_long(chunk):  # no record this long is read: the file's own error stands
                    return None
                block = carry.cut(chunk, b"\n")
                if block is None:  # inside a line longer than a block
                    continue
                if b"\\u" in block:
                    for n, text in enumerate(block.split(b"\n"), start=line):
                        if b"\\u" in text and (m := LONE.search(text)):
                            return n, _escape(m).decode("ascii")
                line += block.count(b"\n")
                if not chunk:
                    return None
    except (OSError, EOFError, zlib.error):
        return None


def literal_surrogates(src: Path, dst: Path) -> tuple[int, int | None, str | None]:
    """Write ``src`` (gzip or plain) to ``dst`` (plain) with each lone surrogate escape written as
    its text; return (escapes rewritten, the first line holding one, that escape)."""
    count, first, escape = 0, None, None
    with naming_written(dst), open(dst, "wb") as out:
        for n, line in enumerate(_lines(src), start=1):
            if b"\\u" in line:
                if first is None and (m := LONE.search(line)):
                    first, escape = n, _escape(m).decode("ascii")
                line, k = LONE.subn(_literal, line)
                count += k
            out.write(line)
    return count, first, escape


__all__ = ["LONE", "first_lone_surrogate", "literal_surrogates"]
