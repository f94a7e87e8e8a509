"""A JSON file holding several top-level arrays one after another: ``[{...}, {...}][{...}]``.
A tool that appends each export to the same file writes it so (mixpanel-utils' ``backup_file``:
each ``people_set`` or ``people_delete`` appends the profiles it changed, as one more array, with
no separator). DuckDB reads one top-level array per file and refuses the second one.

Such a file is read through a copy that is one array of all their elements, in file order:
``[{...}, {...}, {...}]``. Each element's text is copied as it is (a JSON float keeps its token),
only the brackets between the arrays and the space around them are replaced by a comma (none
beside an empty array), so an element's number is its position across the whole file. The copy
is made only after a load of the file failed on malformed JSON (``Loader.load`` retries, as for
mixed line ends and lone surrogates): a file of one array costs nothing more. A file whose
top-level values are not all arrays is not joined (its error stands).
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from cohortlab.loaders.files import is_gzip, naming_written
from cohortlab.loaders.line_ends import BLOCK

_WS = b" \t\r\n"
# inside a string: its end or an escape; outside: a string's start or a bracket
_IN_STRING = re.compile(rb'["\\]')
_STRUCTURE = re.compile(rb'["\[\]{}]')


def join_arrays(src: Path, dst: Path) -> int | None:
    """Write the elements of the top-level arrays of ``src`` (gzip or plain) to ``dst`` as one
    array (see the module); return the number of arrays joined, or None (``dst`` then holds
    nothing useful) when ``src`` is not two or more arrays one after another: a top-level value
    that is not an array, an array not closed, or a single array."""
    opener = gzip.open if is_gzip(src) else open
    depth, in_str, esc = 0, False, False
    arrays, written, start_of_array = 0, False, False
    with naming_written(dst), opener(src, "rb") as f, open(dst, "wb") as out:
        out.write(b"[")
        first = True
        while chunk := f.read(BLOCK):
            if first and chunk.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark
                chunk = chunk[3:]
            first = False
            i, n, keep = 0, len(chunk), 0  # chunk[keep:i] is copied as it is
            while i < n:
                if in_str:
                    if esc:
                        esc, i = False, i + 1
                        continue
                    m = _IN_STRING.search(chunk, i)
                    if m is None:
                        i = n
                        break
                    i = m.end()
                    if m.group() == b"\\":
                        esc = True
                    else:
                        in_str = False
                    continue
                if depth == 0:  # between the arrays: white space, then "[" or the end
                    b = chunk[i]
                    if b in _WS:
                        i += 1
                        keep = i
                        continue
                    if b != 0x5B:  # "[" - anything else: not arrays one after another
                        return None
                    depth, arrays, start_of_array = 1, arrays + 1, True
                    i += 1
                    keep = i
                    continue
                if start_of_array:  # the first element, if any: a comma before it when one was written
                    b = chunk[i]
                    if b in _WS:
                        i += 1
                        continue
                    start_of_array = False
                    if b != 0x5D:  # "]": an empty array
                        if written:
                            out.write(b",")
                        written = True
                m = _STRUCTURE.search(chunk, i)
                if m is None:
                    i = n
                    break
                i = m.end()
                c = m.group()
                if c == b'"':
                    in_str = True
                elif c in (b"[", b"{"):
                    depth += 1
                else:
                    depth -= 1
                    if depth == 0:  # the top-level array closes: its "]" is not copied
                        out.write(chunk[keep:i - 1])
                        keep = i
            if depth > 0:
                out.write(chunk[keep:n])
        out.write(b"]")
    if depth != 0 or in_str or arrays < 2:
        return None
    return arrays


__all__ = ["join_arrays"]
