"""Text from data, shown safely: the one place that decides how a cohort name, an identifier, a
plan name, a file name or an error message is written into HTML, Markdown or a chart label.

Data text is never markup: ``<script>alert(2)</script>`` as a cohort name is shown as those
characters, ``*Power*`` is not italic, ``[a](javascript:...)`` is not a link, and ``$x$`` is not
typeset as TeX.

* :func:`html_text`: for HTML (``index.html``, tables): ``& < > " '`` become entities.
* :func:`md_text`: a value put inside Markdown (``ui.md(f"## {md_text(cohort)}")``): Markdown
  punctuation gets a backslash, line breaks become spaces. HTML characters are left to
  :func:`md_html` (below), which every Markdown output of the reports goes through.
* :func:`md_html`: a whole Markdown text before display: ``& < >`` become entities, so no raw
  HTML from any source survives in the rendered page.
* Both write a bidirectional override, embedding or isolate (U+202E...) and a control character
  (ESC...) as its escape (:func:`visible_controls`): a name cannot reverse the figures shown after
  it, nor show as a box.
* Chart labels: :mod:`cohortlab.charts` switches matplotlib's mathtext off
  (``text.parse_math``), so a ``$`` in a label is drawn as a dollar sign.
"""

from __future__ import annotations

import html
import re

# CommonMark: any ASCII punctuation may be backslash-escaped. ``& < >`` are handled by md_html.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$=:\"'])")


# Unicode's bidirectional embeddings, overrides and isolates (LRE RLE PDF LRO RLO, LRI RLI FSI PDI):
# one left open in a name reorders the rest of its line or paragraph on a page (an RLO in a cohort
# name showed the "362 members" after it as "263 srebmem"); and the C0 and C1 control characters
# but tab and line breaks (ESC, BEL, ...), which a browser draws as a box that does not say what
# it is. Shown as their escapes, as the terminal shows them (``\x1b``, ``\u202e``); the marks
# LRM / RLM / ALM, which reorder nothing, stay.
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def visible_controls(text: str) -> str:
    """``text`` with every control character (but tab and line breaks) and every bidirectional
    embedding, override or isolate written as its escape (``\\x1b``, ``\\u202e``): text from data
    cannot reorder what a page shows after it, nor show as a box."""
    return _CONTROLS.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


def html_text(value: object) -> str:
    """``value`` as HTML text (quotes escaped too: safe inside an attribute; bidirectional
    controls visible: :func:`visible_controls`)."""
    return html.escape(visible_controls("" if value is None else str(value)), quote=True)


def md_text(value: object) -> str:
    """``value`` as literal text inside Markdown (one line)."""
    text = "" if value is None else str(value)
    text = re.sub(r"[\r\n\t\v\f]+", " ", text)
    return _MD_SPECIAL.sub(r"\\\1", text)


def md_html(markdown: str) -> str:
    """A Markdown text with every ``& < >`` as an entity: no raw HTML reaches the page (inside a
    code span an entity shows as written, so code spans of the reports carry no ``<&>``)."""
    return html.escape(visible_controls(markdown), quote=False)


def unescape_md(text: str) -> str:
    """Plain text from :func:`md_text` output (``metrics.json`` summaries, shown by index.html
    through :func:`html_text`)."""
    return re.sub(r"\\(.)", r"\1", text)


def one_line(value) -> str:
    """Text from data shown on one line of terminal output: every character that is not printable
    (control characters, line breaks, escape sequences, no-break and other special spaces) written
    as its escape (``\\x1b``, ``\\n``), the others as they are (``Café``), so a name from data
    can neither move the cursor, recolour, retitle the terminal nor start a line of its own."""
    s = str(value)
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in s)


def one_line_frame(df):
    """A copy of a DataFrame whose text cells (and column names) are :func:`one_line`, for
    printing with ``to_string`` (pandas escapes only tabs and line breaks)."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object or str(out[c].dtype) == "string":
            out[c] = out[c].map(lambda v: one_line(v) if isinstance(v, str) else v)
    out.columns = [one_line(c) if isinstance(c, str) else c for c in out.columns]
    return out


def terminal_text(message: str) -> str:
    """A message (possibly several lines) for the terminal: each line :func:`one_line`."""
    return "\n".join(one_line(line) for line in str(message).split("\n"))
