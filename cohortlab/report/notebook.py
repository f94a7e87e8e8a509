"""Helpers of the report notebooks: open the data, display charts and tables for people,
redact personal data, write ``metrics.json``.

Personal data (emails, phone numbers) is never displayed unless ``show_personal_data``:
:func:`redact` drops personal columns and masks identifier values that look like an email or
that are a phone number known to the database.
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


PERSONAL_COLUMNS = ("email", "phone", "$email", "$phone", "mobile_number")


ID_COLUMNS = ("distinct_id", "identifier", "value", "distinct_ids")


MASK = "[hidden]"


_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+")


_PHONE_RE = re.compile(r"\+[\d\s().-]{6,}")


def open_lab(db: str | None = None, data: str | None = None, *, engine: str = "duckdb",
             spark_master: str | None = None, read_only: bool = False):
    """The notebook's data: :func:`cohortlab.lab.open_lab` (a database file, or a folder of
    exports loaded in memory). ``engine`` is a notebook parameter, set by
    ``cohortlab report --engine``."""
    from cohortlab.lab import open_lab as _open

    return _open(db, data, engine=engine, spark_master=spark_master, read_only=read_only)


def known_personal_values(lab) -> set[str]:
    """Emails and phone numbers present in the database (Mixpanel profiles and webhooks,
    mParticle identities): values that must never be shown when personal data is off."""
    df = lab.sql(
        """
        SELECT email AS v FROM mp_profiles WHERE email IS NOT NULL
        UNION SELECT phone FROM mp_profiles WHERE phone IS NOT NULL
        UNION SELECT email FROM mp_webhook_members WHERE email IS NOT NULL
        UNION SELECT value FROM mpa_identities
              WHERE identity_type IN ('email', 'mobile_number', 'phone_number_2', 'phone_number_3')
                AND value IS NOT NULL
        """
    )
    return {str(v) for v in df["v"]}


def mask_value(v: Any, known: set[str] | frozenset = frozenset()) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return v
    s = str(v)
    if s in known or _EMAIL_RE.search(s) or _PHONE_RE.fullmatch(s.strip()):
        return MASK
    return v


def redact(df: pd.DataFrame, show_personal_data: bool = False, known: set[str] | frozenset = frozenset()) -> pd.DataFrame:
    """A copy safe to display: without personal columns and with email/phone-like identifier
    values masked, unless ``show_personal_data``."""
    if show_personal_data:
        return df
    out = df.drop(columns=[c for c in df.columns if c in PERSONAL_COLUMNS])
    for c in out.columns:
        if c in ID_COLUMNS or out[c].dtype == object:
            out[c] = out[c].map(lambda v: mask_value(v, known))
    return out


def _escape_dollars(text: str) -> str:
    """``$`` outside code spans becomes ``\\$``: two dollars in one line (``$mparticle_user_id``
    ... ``$distinct_id``) must not be typeset as TeX by JupyterLab."""
    parts = text.split("`")
    return "`".join(p if i % 2 else re.sub(r"(?<!\\)\$", r"\\$", p) for i, p in enumerate(parts))


def show(fig, caption: str | None = None) -> None:
    """Display a chart as an embedded PNG (works offline and in HTML without code) with a
    one-line explanation under it."""
    from IPython.display import Image, Markdown, display

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    display(Image(data=buf.getvalue(), format="png"))
    if caption:
        display(Markdown(f"*{_escape_dollars(caption)}*"))


def md(text: str) -> None:
    from IPython.display import Markdown, display

    display(Markdown(_escape_dollars(text)))


def table(df: pd.DataFrame, *, show_personal_data: bool = False, known: set[str] | frozenset = frozenset(),
          max_rows: int = 30) -> None:
    """Display a (redacted) DataFrame as an HTML table without the index."""
    from IPython.display import HTML, Markdown, display

    safe = redact(df, show_personal_data, known).head(max_rows)
    display(HTML(safe.to_html(index=False, na_rep="—", float_format=lambda x: f"{x:,.3f}",
                              formatters=_int_formatters(safe))))
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
        "summary": re.sub(r"[*_`]", "", summary.split("\n")[0]) if summary else "",
        "headline": _jsonable(headline or {}),
        "parameters": _jsonable(parameters or {}),
        "metrics": _jsonable(metrics),
    }
    path = Path(output_dir) / "metrics.json"
    path.write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
    return path
