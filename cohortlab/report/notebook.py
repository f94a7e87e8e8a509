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
from typing import Any, Iterator, Mapping

import pandas as pd

from cohortlab.escaping import html_text, md_html, md_text, unescape_md
from cohortlab.privacy import Redactor, masked_text

_REDACTOR: Redactor | None = None  # registered by redactor(); None: nothing known yet


def open_lab(db: str | None = None, data: str | None = None, *, engine: str = "duckdb",
             spark_master: str | None = None, read_only: bool = True, names: tuple[str, str] = ("db", "data"),
             timezone: str | None = None):
    """The notebook's data: :func:`cohortlab.lab.open_lab` (a database file, or a folder of
    exports loaded in memory). ``engine`` is a notebook parameter, set by
    ``cohortlab report --engine``. A database file is opened read-only: the user's file is
    never written (results of the simulation stay in memory), so a failing notebook leaves no
    ``.wal`` behind. ``names``: the parameters ``db`` and ``data`` are called in the messages
    (``observed_db``, ``observed_data`` for the validation's). ``timezone``: the project's time
    zone of ``data``'s raw events; unused when ``db`` is given (the database wins over the folder,
    whose default is the sample exports, and holds its events as they were loaded)."""
    import warnings

    from cohortlab.errors import LoadWarning
    from cohortlab.lab import open_lab as _open

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lab = _open(db, data, engine=engine, spark_master=spark_master, read_only=read_only, names=names,
                    timezone=None if db else timezone)
    for w in caught:
        text = str(w.message)
        if issubclass(w.category, LoadWarning) and data:
            # a load warning of the folder, kept in the executed notebook: its files named from
            # the folder's parameter, not this machine's path, and no email or phone number in a
            # file's name (a subject-access export named after its subject)
            for prefix in sorted({str(Path(data).resolve()), str(data)}, key=len, reverse=True):
                text = text.replace(prefix + os.sep, f"{names[1]}/")
            text = masked_text(text)
        warnings.warn(text, w.category, stacklevel=2)
    return lab


def share_simulations(lab, simulations: str | None = None) -> bool:
    """Read the simulations ``cohortlab report`` computed once for every notebook (the parameter
    ``simulations``: a scratch DuckDB file, :mod:`cohortlab.report.shared`) instead of computing
    them again. False (nothing to read) when the parameter is None or the lab is not a
    read-only DuckDB lab."""
    from cohortlab.report.shared import attach

    return attach(lab.engine, simulations)


def flag(value: Any, name: str) -> bool:
    """A yes/no parameter as papermill hands it: ``-p show_personal_data false`` is the text
    ``"false"`` (papermill reads only ``True``/``False`` as booleans), which as a truth value showed
    every email. ``true/false``, ``yes/no``, ``on/off``, ``1/0`` in any case; None is False;
    anything else is a :class:`~cohortlab.errors.SettingsError` naming the parameter."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    from cohortlab.errors import SettingsError

    raise SettingsError(f"{name}: expected True or False, got {value!r}")


def time_parameter(value: Any, name: str) -> Any:
    """``value`` as ``cohortlab report`` gives it (ISO UTC text, ``2026-02-28T00:00:00Z``), once it
    reads as a time (None stays None): a papermill run's ``2026-02-28`` (a YAML date) was shown
    as written where the report's showed "2026-02-28 00:00 UTC". A time that is no time is a
    :class:`~cohortlab.errors.SettingsError` naming the parameter, in the setup cell (``since``
    failed after both simulations, as "time: not a time"; ``as_of`` was named "at")."""
    from cohortlab.report.parameters import time_text

    return None if value is None else time_text(value, name)


def redactor(lab, show_personal_data: bool = False) -> Redactor:
    """The notebook's :class:`~cohortlab.privacy.Redactor` (the database's pseudonym key; its
    known emails/phones are looked up for the values shown, not fetched; the cohort names that are
    personal known, so that a note naming one shows the name's pseudonym), registered for
    :func:`table`, :func:`md`, :func:`show` and :func:`write_metrics`."""
    global _REDACTOR
    from cohortlab.cohort_names import all_cohort_names

    _REDACTOR = Redactor.for_engine(lab.engine, show=show_personal_data).with_personal_names(all_cohort_names(lab.engine))
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
    replaced by pseudonyms, unless ``show_personal_data``. ``known``: more values to treat as
    personal, besides the patterns and the database's (:func:`redactor`)."""
    r = _current(show_personal_data)
    if known:
        r = r.with_known(known)
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


def nothing(what: str) -> None:
    """Say there is nothing to show instead of drawing an empty or all-zero chart."""
    md(f"*Nothing to show: {what}.*")


def show_if(fig_or_make, caption: str | None, *, has_data: bool, nothing_to_show: str) -> None:
    """:func:`show` the chart when ``has_data``, else :func:`nothing` (``fig_or_make`` may be a
    callable, so an empty chart is not even drawn)."""
    if not has_data:
        nothing(nothing_to_show)
        return
    show(fig_or_make() if callable(fig_or_make) else fig_or_make, caption)


def _is_identifier(column: str) -> bool:
    c = column.lower()
    return c in ("mpid", "identifier", "distinct_id", "distinct_ids") or c.endswith("_id")


def _minus(number: str) -> str:
    """A negative number with the minus sign the pages write everywhere (``−2``, not ``-2``)."""
    return "−" + number[1:] if number.startswith("-") else number


def _kind(column: str, values: pd.Series) -> str:
    c = column.lower()
    if _is_identifier(column):
        return "text"
    if c.startswith("days") or c.endswith("_days"):
        return "days"
    if "rate" in c or "share" in c:
        return "pct"
    if pd.api.types.is_bool_dtype(values):
        return "bool"
    if pd.api.types.is_numeric_dtype(values):
        return "int" if all(float(v).is_integer() for v in values.dropna()) else "num"
    if pd.api.types.is_datetime64_any_dtype(values):
        return "time"
    return "text"


def format_for_people(df: pd.DataFrame) -> pd.DataFrame:
    """A copy with every cell as text a person reads: thousands separators, percentages with one
    decimal (never 0.0% or 100.0% for a share strictly between), negative numbers with "−", days
    as whole numbers, times to the minute as the sentences write them (``2026-01-15 00:00 UTC``,
    also inside text), ``—`` for missing values, and column names in words.
    Identifiers (MPID, distinct id...) are shown as they are."""
    from cohortlab.glossary import pct  # a share between 0 and 1 is never 0.0% or 100.0%
    from cohortlab.report.summaries import readable_times
    from cohortlab.times import format_minute

    out = pd.DataFrame(index=df.index)
    for c in df.columns:
        s = df[c]
        kind = _kind(str(c), s)
        words = kind == "text" and not _is_identifier(str(c))  # identifiers are shown as they are

        def fmt(v, kind=kind, words=words):
            if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT:
                return "—"
            if kind == "int":
                return _minus(f"{int(v):,}")
            if kind == "num":
                return _minus(f"{float(v):,.2f}")
            if kind == "pct":
                return pct(float(v))
            if kind == "days":
                return f"{int(round(float(v))):,}"
            if kind == "bool":
                return "yes" if bool(v) else "no"
            if kind == "time" or isinstance(v, (pd.Timestamp, _dt.datetime)):
                return format_minute(v)
            return readable_times(v) if words else str(v)

        out[str(c).replace("_", " ")] = [fmt(v) for v in s]
    return out


def _html_table(df: pd.DataFrame) -> str:
    """An HTML table for people: numbers right-aligned, text left-aligned, every cell escaped."""
    kinds = [_kind(str(c), df[c]) for c in df.columns]
    cells = format_for_people(df)
    align = ["right" if k in ("int", "num", "pct", "days") else "left" for k in kinds]
    head = "".join(f'<th style="text-align:{a}">{html_text(c)}</th>' for c, a in zip(cells.columns, align))
    body = "".join("<tr>" + "".join(f'<td style="text-align:{a}">{html_text(v)}</td>'
                                    for v, a in zip(row, align)) + "</tr>" for row in cells.itertuples(index=False))
    return f'<table class="cl-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def table(df: pd.DataFrame | list, *, show_personal_data: bool = False, known=None,
          max_rows: int = 30, columns: Mapping[str, str] | None = None) -> None:
    """Display a (redacted) table for people (:func:`format_for_people`) without the index.
    ``df`` may be the rows of a ``metrics.json`` figure; ``columns`` picks and renames columns."""
    from IPython.display import HTML, Markdown, display

    if isinstance(df, list):
        df = frame(df)
    if columns:
        df = df[[c for c in columns if c in df.columns]].rename(columns=dict(columns))
    safe = redact(df.head(max_rows), show_personal_data, known)  # only the rows shown are looked up
    display(HTML(_html_table(safe)))
    if len(df) > max_rows:
        display(Markdown(f"*… {len(df) - max_rows:,} more rows*"))


TIME_COLUMNS = ("run_at", "as_of", "day", "start", "end", "first_change", "date", "first_run", "last_run",
                "last_failed")


def frame(rows) -> pd.DataFrame:
    """The rows of a ``metrics.json`` figure as a DataFrame (time columns parsed), for a chart or
    a table."""
    df = pd.DataFrame(rows) if not isinstance(rows, pd.DataFrame) else rows.copy()
    for c in df.columns:
        if c in TIME_COLUMNS:
            df[c] = pd.to_datetime(df[c], errors="coerce")
    return df


def waterfall_table(waterfall) -> pd.DataFrame:
    """The waterfall (a frame or its ``metrics.json`` rows) as a table for people: the step in
    words and the signed change."""
    from cohortlab.glossary import step_words

    w = frame(waterfall)
    sign = {"total": "=", "minus": "−", "plus": "+"}
    return pd.DataFrame({
        "step": [step_words(s) for s in w["step"]],
        "what it is": w["label"],
        "users": [f"{sign.get(k, '')} {int(c):,}" for k, c in zip(w["kind"], w["count"])],
    })


def paused_windows_table(windows, last_run=None) -> pd.DataFrame:
    """A cohort's paused windows (:func:`cohortlab.report.metrics.paused_windows`, a frame or its
    ``metrics.json`` rows) as a table for people: the first and last failed run, the failed runs
    between them, and the first successful run after the pause, or that the sync was still paused
    at the last run (``last_run``)."""
    w = frame(windows)

    def when(t) -> str:
        return pd.Timestamp(t).strftime("%Y-%m-%d %H:%M")

    still = "none: still paused at the last run" + (f" ({when(last_run)})" if last_run is not None else "")
    how = {"reconnect": "a reconnect: full sync", "reexport": "a re-export: full sync", "full_refresh": "full refresh",
           "diff": "diff", "first": "first run: full sync"}
    kinds = w["end_kind"] if "end_kind" in w.columns else [None] * len(w)

    def after(t, kind) -> str:
        if pd.isna(t):
            return still
        return when(t) + (f" ({how.get(str(kind), str(kind))})" if isinstance(kind, str) and kind else "")

    before = w["started_before"] if "started_before" in w.columns else [False] * len(w)
    return pd.DataFrame({
        # a window cut by ``since``: its first failed run is earlier than the first run shown
        "first failed run": [f"before {when(t)} (the first run shown)" if b in (True,) else when(t)
                             for t, b in zip(w["start"], before)],
        "last failed run": [when(t) for t in w["last_failed"]],
        "failed runs": [int(n) for n in w["failed_runs"]],
        "first successful run after the pause": [after(t, k) for t, k in zip(w["end"], kinds)],
    })


def _to_json(v: Any) -> Any:
    """``v`` as plain JSON values (dicts, lists, str, numbers, bool, None): frames become lists of
    records, times ISO texts, numpy scalars Python ones, NaN/NA/NaT None. Texts are not redacted
    yet (:func:`_redacted`), so that every text is known before the one lookup of the Redactor."""
    if isinstance(v, Mapping):
        return {str(k): _to_json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set)):
        return [_to_json(x) for x in v]
    if isinstance(v, pd.DataFrame):
        return [_to_json(r) for r in v.to_dict(orient="records")]
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


def _texts(v: Any) -> Iterator[str]:
    """The texts among the keys and values of plain JSON ``v``."""
    if isinstance(v, str):
        yield v
    elif isinstance(v, dict):
        for k, x in v.items():
            if isinstance(k, str):
                yield k
            yield from _texts(x)
    elif isinstance(v, list):
        for x in v:
            yield from _texts(x)


def _redacted(v: Any) -> Any:
    """Plain JSON ``v`` with every text, value or key, made safe to show by the current Redactor
    (:func:`_safe`): a key that is personal as a whole (a cohort name that is an email:
    ``figures["cohorts"]`` is keyed by name) is its pseudonym, as the page's headings show it
    (the charts and tables read their names from these keys), and an email inside a key (a
    headline label naming a cohort) is one too."""
    if isinstance(v, str):
        return _safe(v)
    if isinstance(v, dict):
        return {(_safe(k) if isinstance(k, str) else k): _redacted(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_redacted(x) for x in v]
    return v


def _safe(text: str) -> str:
    """A text from the figures as it may be shown: every personal value in it replaced, a personal
    cohort name whole (:meth:`~cohortlab.privacy.Redactor.in_text`)."""
    return _current().in_text(text)


def context(cohorts, figures_as_of=None, *, db=None, data=None, as_of=None, settings=None,
            population: str | None = None, left_out=()) -> dict[str, Any]:
    """What a page is about, for its header and the index: cohorts, as-of time(s), data source
    and the settings in one line. ``population``: what the page's figures count when it is not
    the cohorts' members (the EIT page's plans count every Mixpanel profile with events: its
    cohorts are those of the validation); the header then says both. ``data_time``: the time the
    figures are as of, ISO UTC (:func:`~cohortlab.times.latest_time_iso`), when there is one.
    ``left_out``: ``(cohort, why)`` of the cohorts a report of every cohort does not cover
    (:func:`cohortlab.report.insights.left_out_cohorts`), for the index and the terminal."""
    from cohortlab.report.summaries import readable_times
    from cohortlab.settings import settings_summary
    from cohortlab.times import latest_time_iso

    if as_of:
        when = readable_times(str(as_of))
    elif figures_as_of:
        times = sorted({str(t) for t in figures_as_of if t})
        when = ", ".join(readable_times(t) for t in times) + " (each cohort's latest data)" if times else None
    else:
        when = None
    out = {"cohorts": list(cohorts), "as_of": when or "each cohort's latest data",
           "source": str(db or data or ""), "settings": settings_summary(settings)}
    data_time = latest_time_iso(as_of, figures_as_of)
    if data_time:  # the index orders the runs of a reports folder by it (pages.comparable_runs)
        out["data_time"] = data_time
    if population:
        out["population"] = str(population)
    if left_out:
        out["left_out"] = [{"cohort": str(c), "why": str(why)} for c, why in left_out]
    return out


def publish(output_dir: str | os.PathLike | None, notebook: str, *, title: str, figures: Mapping[str, Any],
            headline: Mapping[str, Any], summary: str = "", context: Mapping[str, Any] | None = None,
            parameters: Mapping[str, Any] | None = None, card: list[str] | None = None) -> dict[str, Any]:
    """Write ``metrics.json`` (:func:`write_metrics`) and return its content as read back: the
    page then shows these figures and no others. Paths in ``context`` and ``parameters`` (data
    source, settings) are written as the report shows them (:func:`_shown_paths`). ``card``: Markdown lines the index card shows
    under the summary (as plain text), e.g. the observed-vs-simulated line."""
    report_dir = None if output_dir is None else Path(output_dir).parent
    doc = _document(notebook, title=title, summary=summary, headline=headline,
                    parameters=_shown_paths(parameters, report_dir),
                    context=_shown_paths(context, report_dir, keys=("source",)),
                    metrics=figures, card=card)
    if output_dir is not None:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        (Path(output_dir) / "metrics.json").write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
    return json.loads(json.dumps(doc, default=str))


METRICS_SCHEMA_VERSION = 1  # metrics.json's layout (docs/reports.md#metrics-json)

_SHOWN_PATHS = ("db", "data", "settings", "observed_db", "observed_data")  # the path parameters a page may show


def _shown_paths(values: Mapping[str, Any] | None, report_dir, keys=_SHOWN_PATHS) -> dict[str, Any] | None:
    """``values`` (a page's context or parameters) with the paths as a report shows them
    (:func:`cohortlab.report.pages.shown_path`: relative to the report folder, else the name),
    never this machine's absolute paths."""
    from cohortlab.report.pages import shown_path

    if values is None:
        return None
    return {k: shown_path(v, report_dir) if k in keys and isinstance(v, (str, os.PathLike)) and v else v
            for k, v in values.items()}


# the marks of emphasis and code spans: ``*`` and backticks, and ``_`` unless inside a word (an
# intraword ``_`` is no emphasis in Markdown: ``$distinct_id`` is shown as written on the page)
_MD_MARKS = re.compile(r"(?<!\\)(?:[*`]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")


def _plain(markdown: str) -> str:
    """The first line of a Markdown text as plain text (no emphasis marks, escapes undone,
    personal values pseudonymised): what ``index.html`` shows, through :func:`html_text`."""
    return _current().text(unescape_md(_MD_MARKS.sub("", markdown.split("\n")[0]))) if markdown else ""


def _document(notebook: str, *, title: str, summary: str = "", headline=None, parameters=None, context=None,
              metrics=None, card=None) -> dict[str, Any]:
    parts = {"headline": _to_json(headline or {}), "context": _to_json(context or {}),
             "parameters": _to_json(parameters or {}), "metrics": _to_json(metrics or {})}
    _current().prime(_texts(list(parts.values())))  # one lookup, not one per value
    shown = {name: _redacted(part) for name, part in parts.items()}
    shown_headline = shown.pop("headline")
    return {
        # the layout's version: raised when a key a script may read is renamed, removed or changes
        # meaning (docs/reports.md#metrics-json); new keys do not raise it
        "schema_version": METRICS_SCHEMA_VERSION,
        "notebook": notebook,
        "title": title,
        "generated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "summary": _plain(summary),
        "card": [_plain(line) for line in card or [] if line],
        "headline": shown_headline,
        # each headline figure's unit (metrics.Headline), for the index page: never guessed from the value
        # (its keys are the headline's labels, shown as the headline's are)
        "headline_units": {_safe(k): u for k, u in (getattr(headline, "units", None) or {}).items()},
        # the same figures by stable keys, for scripts: a label may change with the data ("best plan
        # (tie)", "missing (last run)"), its key does not (docs/reports.md#metrics-json)
        "figures": {key: shown_headline.get(_safe(label))
                    for label, key in (getattr(headline, "stable_keys", None) or {}).items()},
        **shown,
    }


def write_metrics(output_dir: str | os.PathLike | None, notebook: str, *, title: str, summary: str = "",
                  headline: Mapping[str, Any] | None = None, parameters: Mapping[str, Any] | None = None,
                  **metrics: Any) -> Path | None:
    """Write ``output_dir/metrics.json``: ``schema_version, notebook, title, generated_at, summary (plain text),
    headline (the few numbers of the index page; a :class:`cohortlab.report.metrics.Headline`
    gives their units, ``headline_units``), parameters, metrics``. ``output_dir=None``
    (a notebook opened interactively) writes nothing."""
    if output_dir is None:
        return None
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    doc = _document(notebook, title=title, summary=summary, headline=headline, parameters=parameters,
                    metrics=metrics)
    path = Path(output_dir) / "metrics.json"
    path.write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
    return path
