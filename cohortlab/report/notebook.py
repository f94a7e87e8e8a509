"""Helpers of the report notebooks: open the data, display charts and tables for people,
hide personal data, write ``metrics.json``.

Personal data (emails, phone numbers) is never displayed unless ``show_personal_data``: the
notebook registers one :class:`cohortlab.privacy.Redactor` (:func:`redactor`), and every table,
Markdown text, caption and ``metrics.json`` goes through it: personal columns are dropped and
personal values become stable pseudonyms (``anon-3f9a...``, the same as in ``--members-out``
files of the same database, so rows can be joined). :mod:`cohortlab.privacy` alone decides what
is personal.

Text from data is escaped (:mod:`cohortlab.escaping`): Markdown shown by :func:`md` and
:func:`show` has every ``& < >`` as an entity (no raw HTML from any source), tables are escaped by
pandas, and values put inside Markdown go through :func:`text` (no formatting, no links).
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from cohortlab.escaping import md_html, md_text, unescape_md
from cohortlab.privacy import Redactor

_REDACTOR: Redactor | None = None  # registered by redactor(); None: nothing known yet


def open_lab(db: str | None = None, data: str | None = None, *, engine: str = "duckdb",
             spark_master: str | None = None, read_only: bool = True):
    """The notebook's data: :func:`cohortlab.lab.open_lab` (a database file, or a folder of
    exports loaded in memory). ``engine`` is a notebook parameter, set by
    ``cohortlab report --engine``. A database file is opened read-only: the user's file is
    never written (results of the simulation stay in memory), so a failing notebook leaves no
    ``.wal`` behind."""
    from cohortlab.lab import open_lab as _open

    return _open(db, data, engine=engine, spark_master=spark_master, read_only=read_only)


def redactor(lab, show_personal_data: bool = False) -> Redactor:
    """The notebook's :class:`~cohortlab.privacy.Redactor` (the database's pseudonym key and its
    known emails/phones), registered for :func:`table`, :func:`md`, :func:`show` and
    :func:`write_metrics`."""
    global _REDACTOR
    _REDACTOR = Redactor.for_engine(lab.engine, show=show_personal_data)
    return _REDACTOR


def _current(show_personal_data: bool | None = None) -> Redactor:
    global _REDACTOR
    if show_personal_data:
        return Redactor(show=True)
    if _REDACTOR is None:  # no lab registered: pattern-only, with a process-wide key
        _REDACTOR = Redactor()
    return _REDACTOR


def redact(df: pd.DataFrame, show_personal_data: bool = False, known=None) -> pd.DataFrame:
    """A copy safe to display: without personal columns and with personal identifier values
    replaced by pseudonyms, unless ``show_personal_data``."""
    r = _current(show_personal_data)
    if known and not r.show and not set(map(str, known)) <= r.known:
        r = Redactor(key=r.key, known=frozenset(r.known) | frozenset(map(str, known)))
    return r.frame(df)


def text(value: Any) -> str:
    """A value from data (cohort, plan, identifier, file name) as literal Markdown text,
    pseudonymised when personal."""
    return md_text(_current().value(value))


def _escape_dollars(text: str) -> str:
    """``$`` outside code spans becomes ``\\$``: two dollars in one line (``$mparticle_user_id``
    ... ``$distinct_id``) must not be typeset as TeX by JupyterLab."""
    parts = text.split("`")
    return "`".join(p if i % 2 else re.sub(r"(?<!\\)\$", r"\\$", p) for i, p in enumerate(parts))


def _markdown(text: str) -> str:
    """What :func:`md` displays: personal values replaced, no raw HTML, no TeX."""
    return md_html(_escape_dollars(_current().text(text)))


def show(fig, caption: str | None = None) -> None:
    """Display a chart as an embedded PNG (works offline and in HTML without code) with a
    one-line explanation under it."""
    from IPython.display import Image, Markdown, display

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    display(Image(data=buf.getvalue(), format="png"))
    if caption:
        display(Markdown(f"*{_markdown(caption)}*"))


def md(text: str) -> None:
    from IPython.display import Markdown, display

    display(Markdown(_markdown(text)))


def table(df: pd.DataFrame, *, show_personal_data: bool = False, known=None, max_rows: int = 30) -> None:
    """Display a (redacted) DataFrame as an HTML table without the index (cells and headers
    HTML-escaped)."""
    from IPython.display import HTML, Markdown, display

    safe = redact(df, show_personal_data, known).head(max_rows)
    display(HTML(safe.to_html(index=False, na_rep="—", float_format=lambda x: f"{x:,.3f}",
                              formatters=_int_formatters(safe), escape=True)))
    if len(df) > max_rows:
        display(Markdown(f"*… {len(df) - max_rows:,} more rows*"))


def _int_formatters(df: pd.DataFrame) -> dict[str, Any]:
    return {c: (lambda v: f"{v:,}") for c in df.columns if pd.api.types.is_integer_dtype(df[c])
            and c not in ("mpid",)}


def waterfall_table(waterfall: pd.DataFrame) -> pd.DataFrame:
    """The waterfall as a readable table with signed counts."""
    sign = {"total": "=", "minus": "−", "plus": "+"}
    w = waterfall.copy()
    w["change"] = [f"{sign.get(k, '')} {c:,}" for k, c in zip(w["kind"], w["count"])]
    return w[["step", "label", "change"]]


def _jsonable(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set)):
        return [_jsonable(x) for x in v]
    if isinstance(v, pd.DataFrame):
        return [_jsonable(r) for r in v.to_dict(orient="records")]
    if isinstance(v, (pd.Timestamp, _dt.datetime, _dt.date)):
        return v.isoformat()
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):  # numpy scalar
        try:
            v = v.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(v, float) and math.isnan(v):
        return None
    if v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, str):
        return _current().text(_current().value(v))
    return v


def write_metrics(output_dir: str | os.PathLike | None, notebook: str, *, title: str, summary: str = "",
                  headline: Mapping[str, Any] | None = None, parameters: Mapping[str, Any] | None = None,
                  **metrics: Any) -> Path | None:
    """Write ``output_dir/metrics.json``: ``notebook, title, generated_at, summary (plain text),
    headline (the few numbers of the index page), parameters, metrics``. ``output_dir=None``
    (a notebook opened interactively) writes nothing."""
    if output_dir is None:
        return None
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    doc = {
        "notebook": notebook,
        "title": title,
        "generated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "summary": _current().text(unescape_md(re.sub(r"(?<!\\)[*_`]", "", summary.split("\n")[0]))) if summary else "",
        "headline": _jsonable(headline or {}),
        "parameters": _jsonable(parameters or {}),
        "metrics": _jsonable(metrics),
    }
    path = Path(output_dir) / "metrics.json"
    path.write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
    return path
