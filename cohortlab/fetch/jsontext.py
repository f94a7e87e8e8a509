"""The text of JSON answers, kept as the server wrote it.

``cohortlab fetch`` writes what the APIs answered without re-encoding it: a number keeps its
spelling (``1.0e18`` stays ``1.0e18``, not ``1e+18``: the loaders keep the exact token of an
identifier), and an escape stays an escape (a lone surrogate ``\\ud83d`` stays those six
characters, which the loader quarantines as it does for the same answer fetched by hand, instead
of a character UTF-8 cannot encode). Where fetch adds keys to an answer (the members snapshot's
``as_of``, the Profile API line's ``mpid``), it splices the answer's top-level members, each
value copied as text.
"""

from __future__ import annotations

import json
import re
from json.decoder import scanstring

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def object_members(text: str) -> list[tuple[str, str, str]]:
    """The top-level members of the JSON object ``text`` as ``(key, key as written, value as
    written)``, in order. ``ValueError`` when ``text`` is not one JSON object."""
    ws = _WS.match
    i = ws(text, 0).end()
    if text[i:i + 1] != "{":
        raise ValueError("not a JSON object")
    i = ws(text, i + 1).end()
    members: list[tuple[str, str, str]] = []
    if text[i:i + 1] == "}":
        end = i + 1
    else:
        while True:
            if text[i:i + 1] != '"':
                raise ValueError(f"expected a key at {i}")
            key, k_end = scanstring(text, i + 1)
            raw_key = text[i:k_end]
            i = ws(text, k_end).end()
            if text[i:i + 1] != ":":
                raise ValueError(f"expected ':' at {i}")
            i = ws(text, i + 1).end()
            _, v_end = _DECODER.raw_decode(text, i)
            members.append((key, raw_key, text[i:v_end]))
            i = ws(text, v_end).end()
            c = text[i:i + 1]
            if c == ",":
                i = ws(text, i + 1).end()
                continue
            if c == "}":
                end = i + 1
                break
            raise ValueError(f"expected ',' or '}}' at {i}")
    if ws(text, end).end() != len(text):
        raise ValueError("extra data after the JSON object")
    return members


_SURROGATE = re.compile("[\ud800-\udfff]")


def escape_surrogates(text: str) -> str:
    """JSON text (``json.dumps(..., ensure_ascii=False)``) with each lone surrogate written as its
    escape: a string parsed from ``"Fans \\ud83d"`` (a name cut inside an emoji) holds one, which
    UTF-8 cannot encode; the escape is what the server sent. Outside strings JSON has none."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


def one_line(text: str) -> str:
    """Valid JSON text on one line: a line break can only be whitespace between tokens (strict
    JSON has none inside a string), so it becomes a space."""
    return text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def build_object(first: list[tuple[str, str]], members: list[tuple[str, str, str]],
                 skip: set[str] = frozenset()) -> str:
    """One line: the ``first`` members (key, value text) then ``members`` (from
    :func:`object_members`) except the keys in ``skip``, each value as written."""
    parts = [f"{json.dumps(k)}: {v}" for k, v in first]
    parts += [f"{raw_key}: {one_line(v)}" for key, raw_key, v in members if key not in skip]
    return "{" + ", ".join(parts) + "}"
