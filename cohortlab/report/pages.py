"""The HTML around the notebooks: the header of every report page (title, cohorts, as-of time,
data source, settings, generation time, a link back, the failing line of a failed notebook) and
the index page of a run (one card per notebook, the change since the previous comparable run)."""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from cohortlab.escaping import html_text
from cohortlab.times import format_minute

if TYPE_CHECKING:  # the runner imports this module
    from cohortlab.report.runner import NotebookResult

MARKER = ".cohortlab-report"  # in every folder a run writes: only such folders are ever replaced


# --------------------------------------------------------------------------- paths as shown
def shown_path(path: str | os.PathLike | None, report_dir: str | os.PathLike | None = None) -> str:
    """A file or folder (the data source, the settings) as a report shows it, so that a report
    can be shared without this machine's directory layout: relative to the report folder when
    inside it (``data.duckdb`` of ``--keep-data``), else its own name (``project.duckdb``,
    ``exports``). Empty for no path. An email or ``+`` phone number in the name shows as
    ``<email>`` / ``<phone number>`` (``dsar-export-<email>``,
    :func:`cohortlab.privacy.masked_path`): a report never names a person."""
    from cohortlab.privacy import masked_path

    if path is None or str(path) == "":
        return ""
    p = Path(path).expanduser().resolve()
    if report_dir is not None:
        try:
            return masked_path(p.relative_to(Path(report_dir).expanduser().resolve()).as_posix() or ".")
        except ValueError:
            pass
    return masked_path(p.name or str(path))


# --------------------------------------------------------------------------- one page
_PAGE_STYLE = """
.cl-header { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 72rem;
  margin: 1rem auto .5rem; padding: .7rem 1rem; border-bottom: 1px solid #ddd; color: #333; font-size: .92rem; }
.cl-header a { color: #2b5c8f; } .cl-header dl { display: grid; grid-template-columns: max-content auto;
  gap: .1rem 1rem; margin: .4rem 0 0; } .cl-header dt { color: #666; } .cl-header dd { margin: 0; }
.cl-failed { border: 1px solid #c8553d; background: #fdf3f1; color: #8a2a17; padding: .6rem .9rem;
  margin: .6rem 0 0; border-radius: 6px; } .cl-failed code { white-space: pre-wrap; }
"""


def page_context(result: "NotebookResult", params: Mapping[str, Any]) -> dict[str, str]:
    """What the header of a page states: cohorts, as-of time, data source, settings, generation
    time. From the notebook's ``metrics.json`` (``context``), else from the run's parameters."""
    from cohortlab.report.summaries import readable_times

    ctx = dict((result.metrics or {}).get("context") or {})
    generated = (result.metrics or {}).get("generated_at") or _dt.datetime.now(_dt.timezone.utc).isoformat(
        timespec="seconds")
    if "settings" not in ctx:
        try:
            from cohortlab.settings import settings_summary

            ctx["settings"] = settings_summary(params.get("settings"))
        except Exception as e:  # invalid settings: the notebook failed on them too
            ctx["settings"] = f"unreadable ({e})"
    cohorts = ctx.get("cohorts", params.get("cohorts"))
    as_of = ctx.get("as_of", params.get("as_of"))
    shown = ", ".join(map(str, cohorts)) if isinstance(cohorts, (list, tuple)) else str(cohorts or "all")
    population = {"population": str(ctx["population"])} if ctx.get("population") else {}
    return {
        **population,  # what the figures count, first, when it is not the cohorts' members
        "cohorts": shown if not population else (f"{shown} (the validation)" if cohorts else "none (no validation)"),
        "as of": readable_times(str(as_of or "each cohort's latest data")),
        "data source": shown_path(params.get("source") or ctx.get("source") or params.get("data") or params.get("db"),
                                  Path(result.ipynb).parent.parent),
        "settings": str(ctx["settings"]),
        "generated": readable_times(str(generated)),
    }


def decorate_page(page: str | os.PathLike, result: "NotebookResult", params: Mapping[str, Any]) -> Path:
    """Give an exported notebook page a real ``<title>``, a header (cohorts, as-of time, data
    source, settings, generation time), a link back to the index and, when the notebook failed,
    the failing line and the error message."""
    page = Path(page)
    text = page.read_text(encoding="utf-8")
    title = str((result.metrics or {}).get("title") or result.name.replace("_", " ").capitalize())
    rows = "".join(f"<dt>{html_text(k)}</dt><dd>{html_text(v)}</dd>" for k, v in page_context(result, params).items())
    failed = ""
    if not result.ok and result.cell_index is None:  # no cell ran: the kernel did not start, ...
        failed = (f'<div class="cl-failed"><strong>This report failed before any cell ran</strong>: '
                  f"<code>{html_text(str(result.error or 'an error'))}</code>. Nothing below was computed; "
                  "run the report again.</div>")
    elif not result.ok:
        failed = (f'<div class="cl-failed"><strong>This report failed</strong> in cell {result.cell_index}: '
                  f"<code>{html_text(result.failing_line or '')}</code> raised "
                  f"<strong>{html_text(str(result.ename or 'an error'))}</strong>: "
                  f"<code>{html_text(str(result.evalue or result.error or ''))}</code>. "
                  "The traceback is at the end of this page.</div>")
    header = (f'<header class="cl-header"><a href="../index.html">&larr; all reports</a>'
              f"<dl>{rows}</dl>{failed}</header>")
    text = re.sub(r"<title>.*?</title>", lambda _m: f"<title>{html_text(title)} · cohortlab</title>", text,
                  count=1, flags=re.S)
    text = text.replace("</head>", f"<style>{_PAGE_STYLE}</style></head>", 1)
    text = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + header, text, count=1)
    page.write_text(text, encoding="utf-8")
    return page


# --------------------------------------------------------------------------- index page
_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2rem auto;
       max-width: 60rem; color: #222; line-height: 1.45; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } .meta { color: #666; font-size: .9rem; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: .8rem 1.1rem; margin: 1rem 0; }
.card.failed { border-color: #c8553d; background: #fdf3f1; }
.card.skipped { border-style: dashed; color: #555; }
.card h2 { font-size: 1.15rem; margin: 0 0 .3rem; } .summary { margin: .3rem 0 .5rem; }
.note { margin: .3rem 0 .5rem; padding: .3rem .6rem; border-left: 3px solid #e39b3b; background: #fdf8f0; }
table { border-collapse: collapse; font-size: .92rem; } td, th { padding: .15rem .9rem .15rem 0; }
th { font-weight: normal; color: #666; text-align: right; } td.d { color: #555; text-align: right; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: .1rem 1rem; } dl.meta dd { margin: 0; }
td.v { font-weight: 600; text-align: right; } pre { white-space: pre-wrap; color: #8a2a17; }
a { color: #2b5c8f; }
"""


def _readable(v: Any) -> bool:
    """Whether a number can be shown and subtracted: not NaN nor an infinity, and within a
    float's range (a metrics.json of a shared folder may hold 1e400, 10**400, NaN)."""
    try:
        return math.isfinite(float(v))
    except (OverflowError, TypeError, ValueError):
        return False


def _fmt_value(v: Any, unit: str | None = None) -> str:
    """A headline value in its unit (``metrics.Headline``: count, percent, text): a percent is a
    percentage also at exactly 0 or 1, a missing value is "—". Without a unit (a notebook that
    states none) a number is shown as the number it is, never guessed to be a share."""
    from cohortlab.glossary import pct

    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)) and not _readable(v):  # unreadable: shown as missing
        return "—"
    if unit == "percent" and isinstance(v, (int, float)):
        return html_text(pct(float(v)))
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.0f}" if v.is_integer() else f"{v:,.2f}"
    return html_text(str(v))


RUN_FILE = "run.json"  # what a run reported on, for the next run to know whether it is comparable


# the parameters that do not change a run's figures (or are compared on their own: source,
# cohorts, settings, the as-of time as the data time)
_NOT_FIGURES = frozenset({"db", "data", "source", "output_dir", "simulations", "show_personal_data", "engine",
                          "spark_master", "cohorts", "settings", "as_of"})
_FILE_PARAMETERS = ("plans",)  # a file whose content changes the figures (the plans of the EIT page)


def _parameters_key(parameters: Mapping[str, Any] | None) -> str | None:
    """A hash of the parameters that change the figures (``since``, ``switch``, ``plans`` and
    its file's content, ``snapshot_at``, ``observed_db``, ...); None when none is given, so that
    a run without any compares with the runs of earlier versions, which did not record them."""
    import hashlib

    parameters = parameters or {}
    own = {str(parameters[k]) for k in ("db", "data") if parameters.get(k)}  # a run's own data (its scratch copy)
    given = {k: ("<the data>" if str(v) in own else v) for k, v in parameters.items()
             if k not in _NOT_FIGURES and v is not None}
    if not given:
        return None
    for k in _FILE_PARAMETERS:
        paths = given.get(k)
        for path in paths if isinstance(paths, (list, tuple)) else [paths]:
            if isinstance(path, (str, os.PathLike)) and Path(path).is_file():
                given[f"{k}:{path}"] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    text = json.dumps(given, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def run_identity(source: str | os.PathLike | None, cohorts: Any, settings: str,
                 settings_given: Any = None, parameters: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What makes two runs comparable: the same data source (a hash of its absolute path, so
    the shared folder does not show it), the same cohorts and the same settings: their one-line
    summary, and every option (``settings_key``, a hash of the whole settings ``settings_given``,
    a file, a dict or None for the defaults: the summary leaves out the ttl, the pauses' ends,
    ...), and the same other parameters that change the figures (``parameters_key``: a run with
    ``since`` or another ``switch`` was compared with one without, its change column showing the
    difference of the parameters as a change of the data)."""
    import hashlib

    where = str(Path(source).expanduser().resolve()) if source else ""
    names = sorted(map(str, cohorts)) if isinstance(cohorts, (list, tuple)) else str(cohorts or "all")
    try:
        from cohortlab.settings import SyncSettings

        whole = SyncSettings.coerce(settings_given).model_dump_json()
    except Exception:  # unreadable settings: the run said so on its pages; the summary stands alone
        whole = str(settings_given)
    out = {"source": hashlib.sha256(where.encode("utf-8")).hexdigest()[:16], "cohorts": names,
           "settings": str(settings), "settings_key": hashlib.sha256(whole.encode("utf-8")).hexdigest()[:16]}
    key = _parameters_key(parameters)
    if key is not None:
        out["parameters_key"] = key
    return out


def _read_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when it cannot be read or is not one (a file of a
    reports folder shared with others may hold anything: a list, a value nested 100,000 deep)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def _identity_of(run: Path) -> dict[str, Any] | None:
    """A run's ``run.json``; None for a run of an older version, no run file, or one this version
    did not write (a ``data_time`` that is not a text): not known to be comparable."""
    record = _read_object(run / RUN_FILE)
    if record is None or not isinstance(record.get("data_time"), (str, type(None))):
        return None
    return record


def earlier_runs(out_dir: str | os.PathLike) -> list[Path]:
    """The other runs in the same reports folder (sibling folders written by ``cohortlab report``
    with an ``index.html``), newest first."""
    out_dir = Path(out_dir).resolve()
    if not out_dir.parent.is_dir():
        return []
    runs = [d for d in out_dir.parent.iterdir()  # not a hidden one: a run --overwrite is replacing, set aside
            if d.is_dir() and not d.name.startswith(".") and d.resolve() != out_dir and (d / MARKER).exists()
            and (d / "index.html").exists()]
    return sorted(runs, key=lambda d: (d / "index.html").stat().st_mtime, reverse=True)


def same_runs(out_dir: str | os.PathLike, identity: Mapping[str, Any]) -> dict[Path, str | None]:
    """The earlier runs in the same reports folder of the same data source, cohorts and settings
    (:func:`run_identity`, in their ``run.json``), newest first, each with the time its figures
    are as of (``data_time``; None for a run of an earlier version): a run of other data or other
    cohorts is never compared with. Each ``run.json`` is read once."""
    out: dict[Path, str | None] = {}
    for d in earlier_runs(out_dir):
        record = _identity_of(d)
        if record is not None and same_identity(record, identity):
            out[d] = record.get("data_time")
    return out


def comparable_runs(same: Mapping[Path, str | None], data_time: str | None = None) -> list[Path]:
    """The runs of ``same`` (:func:`same_runs`) a run as of ``data_time`` (ISO UTC) compares
    with, the previous first. A run whose figures are as of a later time is left out (a backfill
    of a past day is no change "since" a later day); the others come latest data time first,
    then newest; runs that recorded no data time (earlier versions) come after them, newest
    first. Without ``data_time``: every run, newest first."""
    if data_time is None:
        return list(same)
    dated = sorted(((t, d) for d, t in same.items() if t is not None and t <= data_time),
                   key=lambda td: td[0], reverse=True)  # stable: the newest of one data time first
    return [d for _, d in dated] + [d for d, t in same.items() if t is None]


KEPT = "replaced"  # in a run that replaced one (--overwrite): the replaced run's figures, for the next run
_KEPT_DEPTH = 7  # runs kept one inside the other, while a notebook failed night after night


def replaced_runs(out_dir: str | os.PathLike, identity: Mapping[str, Any]) -> dict[Path, str | None]:
    """The run ``out_dir``'s run replaces (``--overwrite``: hidden beside it until the run ends,
    :func:`cohortlab.report.output.replaced_run`) when it is of the same data source, cohorts and
    settings (as :func:`same_runs`), with the time its figures are as of; then the runs it kept
    in its ``replaced/`` (:func:`keep_replaced`), of a notebook it has no figures of, each in
    the one before. Empty when the run replaces none."""
    out: dict[Path, str | None] = {}
    run = _replaced_run(Path(out_dir))
    for _ in range(_KEPT_DEPTH + 1):
        if run is None or not run.is_dir() or run.is_symlink():
            break
        record = _identity_of(run)
        if record is None or not same_identity(record, identity):
            break  # (a run keeps only runs of its own source, cohorts and settings)
        out[run] = record.get("data_time")
        run = run / KEPT
    return out


def keep_replaced(out_dir: Path, runs: Mapping[Path, str | None], names: list[str], until: Path | None = None) -> None:
    """Keep in ``out_dir/replaced/`` the figures (``run.json``, each notebook's headline in
    ``<name>/metrics.json``) of the replaced run ``runs`` begins with (:func:`replaced_runs`),
    of ``names`` (this run's notebooks) and of every other notebook the runs have figures of (one
    this run did not run is like one that failed), and in ``replaced/replaced/`` those of the run
    it kept, for the notebooks it has no figures of, or all when ``until`` (the run compared
    with) is deeper: the folder's previous figures outlive the replaced run, for the next run to
    compare with. A level with no figures is kept only for a deeper one (its ``run.json``)."""
    chain = list(runs)
    wanted = list(dict.fromkeys([*names, *(n for run in chain for n in _notebooks_with_figures(run))]))
    levels: list[tuple[dict[str, Any], dict[str, dict[str, Any]]]] = []
    for run in chain:
        record = _identity_of(run)
        if record is None:
            break
        kept, missing = {}, []
        for name in wanted:
            doc = _read_object(run / name / "metrics.json") or {}
            if not isinstance(doc.get("headline"), dict) or not doc["headline"]:
                missing.append(name)
                continue
            kept[name] = {k: doc[k] for k in ("title", "headline", "headline_units") if k in doc}
        levels.append((record, kept))
        deeper = until in chain and chain.index(until) > chain.index(run)  # the run compared with: kept whole
        if not missing and not deeper:
            break
        wanted = wanted if deeper else missing
    while levels and not levels[-1][1]:  # no figures, nor any deeper: nothing to keep
        levels.pop()
    dest = out_dir / KEPT
    for record, kept in levels:
        dest.mkdir(parents=True, exist_ok=True)
        (dest / RUN_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        for name, doc in kept.items():
            (dest / name).mkdir(exist_ok=True)
            (dest / name / "metrics.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        dest = dest / KEPT


def _notebooks_with_figures(run: Path) -> list[str]:
    """The notebooks of ``run`` (a run folder, or one a run kept) that wrote headline figures."""
    try:
        folders = sorted(d for d in run.iterdir() if d.is_dir() and not d.is_symlink() and d.name != KEPT)
    except OSError:
        return []
    return [d.name for d in folders if (d / "metrics.json").is_file()]


def _without_time(identity: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in identity.items() if k not in ("data_time", "cohorts_given")}


def _asked_all(record: Mapping[str, Any]) -> bool:
    """Whether a run's cohorts were asked as "all" (its ``cohorts_given``; a run.json of an
    earlier version records none: "all" only when its cohorts are "all" unresolved)."""
    return record.get("cohorts_given", record.get("cohorts")) == "all"


def same_identity(record: Mapping[str, Any], identity: Mapping[str, Any]) -> bool:
    """Whether a run's ``run.json`` ``record`` is of the same data source, cohorts, settings and
    parameters as ``identity`` (:func:`run_identity`). A run whose notebooks all failed could
    not say which cohorts "all" meant (its cohorts are "all", not the list): it is the same as a
    run of the same rest whose cohorts were asked as "all" too."""
    a, b = _without_time(record), _without_time(identity)
    if a == b:
        return True
    a_rest, b_rest = ({k: v for k, v in r.items() if k != "cohorts"} for r in (a, b))
    return (a_rest == b_rest and "all" in (a.get("cohorts"), b.get("cohorts"))
            and _asked_all(record) and _asked_all(identity))


def run_data_time(params: Mapping[str, Any], results: list["NotebookResult"]) -> str | None:
    """The time a run's figures are as of (ISO UTC): the ``as_of`` parameter, else the latest
    data time its pages recorded (``context.data_time``: each cohort's latest data)."""
    from cohortlab.times import latest_time_iso

    return latest_time_iso(params.get("as_of"),
                           [((r.metrics or {}).get("context") or {}).get("data_time") for r in results])


def previous_figures(runs: list[Path], name: str) -> tuple[Path | None, dict[str, Any]]:
    """The newest of ``runs`` whose notebook ``name`` wrote its figures, with its headline: a run
    where that notebook failed (no ``metrics.json``) is passed over, so the figures are compared
    with the last run that has them, not called new."""
    for d in runs:
        headline = _previous_headline(d, name)
        if headline:
            return d, headline
    return None, {}


def _previous_headline(prev: Path | None, name: str) -> dict[str, Any]:
    if prev is None:
        return {}
    headline = (_read_object(prev / name / "metrics.json") or {}).get("headline")
    if not isinstance(headline, dict):
        return {}
    # a number that is not finite or too large for a float is unreadable: left out like other bad content
    return {k: v for k, v in headline.items()
            if isinstance(v, bool) or not isinstance(v, (int, float)) or _readable(v)}


def _fmt_change(now: Any, before: Any, unit: str | None = None) -> str:
    """``+3`` / ``−1.2 pts`` / ``+<0.1 pts`` / ``no change`` / ``new`` (HTML, as
    :func:`_fmt_value`): a headline value against the previous run (a ``percent`` changes by
    percentage points). "no change" only when the values are equal: a change too small for the
    digits shown is ``+<0.1 pts`` (``+<0.01``), never "no change" (92.8% -> 92.9%, 0.92845 ->
    0.92855, read "no change")."""
    if isinstance(now, bool) or isinstance(before, bool):
        return ""
    if isinstance(before, (int, float)) and not _readable(before):
        before = None  # unreadable (NaN, an infinity, 10**400): as if there were none
    if not isinstance(now, (int, float)):
        return "" if before is None or before == now else f"was {_fmt_value(before, unit)}"
    if not _readable(now):
        return ""
    if not isinstance(before, (int, float)):
        return "new"
    d = now - before
    if not _readable(d):
        return ""
    if d == 0:
        return "no change"
    sign = "+" if d > 0 else "−"
    if unit == "percent":
        shown = f"{abs(d) * 100:.1f}"
        return f"{sign}{'&lt;0.1' if shown == '0.0' else shown} pts"
    if isinstance(d, int):
        return f"{sign}{abs(d):,}"
    shown = f"{abs(d):,.2f}"
    return f"{sign}{'&lt;0.01' if shown == '0.00' else shown}"


# a notebook's title when it wrote no metrics.json (failed, not run); else its own
_TITLES = {"eit_migration": "EIT migration"}


def write_index(out_dir: str | os.PathLike, results: list[NotebookResult], params: Mapping[str, Any] | None = None) -> Path:
    """``index.html``: one card per notebook (title, status, summary, headline numbers with their
    change since the previous run of the same data source, cohorts and settings in the same
    reports folder, links), and ``run.json`` (:func:`run_identity`), for the next run."""
    out_dir = Path(out_dir)
    now = format_minute(_dt.datetime.now(_dt.timezone.utc))
    from cohortlab.report.summaries import readable_times

    params = dict(params or {})
    given = params.get("source") or params.get("db") or params.get("data")
    source = shown_path(given, out_dir)
    ctx = next((r.metrics.get("context") for r in results if (r.metrics or {}).get("context")), None) or {}
    settings = ctx.get("settings")
    if settings is None:
        try:
            from cohortlab.settings import settings_summary

            settings = settings_summary(params.get("settings"))
        except Exception:
            settings = shown_path(params.get("settings"), out_dir) or "defaults"
    cohorts = ctx.get("cohorts") or params.get("cohorts") or "all"
    identity = run_identity(given, cohorts, settings, params.get("settings"), params)
    asked = params.get("cohorts")  # as given: "all" when none (the list the pages resolved is in "cohorts")
    identity["cohorts_given"] = sorted(map(str, asked)) if isinstance(asked, (list, tuple)) else str(asked or "all")
    data_time = run_data_time(params, results)
    replaced = replaced_runs(out_dir, identity)  # --overwrite: the run this one replaces, first
    same = {**replaced, **same_runs(out_dir, identity)}
    comparable = comparable_runs(same, data_time)
    prev = next(iter(comparable), None)
    label = {d: _kept_label(i) for i, d in enumerate(replaced)}
    cards = []
    for r in results:
        m = r.metrics or {}
        since, before = previous_figures(comparable, r.name)
        title = html_text(str(m.get("title") or _TITLES.get(r.name) or r.name.replace("_", " ").capitalize()))
        links = []
        if r.html and r.html.exists():
            links.append(f'<a href="{html_text(r.html.relative_to(out_dir).as_posix())}">report</a>')
        if r.ipynb.exists():
            links.append(f'<a href="{html_text(r.ipynb.relative_to(out_dir).as_posix())}">notebook</a>')
        if r.metrics_path:
            links.append(f'<a href="{html_text(r.metrics_path.relative_to(out_dir).as_posix())}">metrics.json</a>')
        units = m.get("headline_units") or {}
        shown = m.get("headline") or {}
        if not r.ok and not shown and before:  # failed: the figures it compares with, still shown
            shown, units = {k: None for k in before}, _previous_units(since, r.name)
        rows = "".join(
            f"<tr><td>{html_text(str(k))}</td><td class=v>{_fmt_value(v, units.get(k))}</td>"
            + (f'<td class="d">{_fmt_change(v, before.get(k), units.get(k))}</td>' if prev is not None else "")
            + "</tr>"
            for k, v in shown.items()
        )
        if since is not None and since != prev:  # the latest comparable run has none of this notebook's figures
            against = f"{label.get(since, since.name)} ({label.get(prev, prev.name)} has no figures of this report)"
        else:
            against = label.get(prev, prev.name) if prev is not None else ""
        head = ("<tr><th></th><th>this run</th>"
                f"<th>change since {html_text(against)}</th></tr>" if prev is not None and rows else "")
        summary = f'<p class="summary">{html_text(str(m["summary"]))}</p>' if m.get("summary") else ""
        summary += "".join(f'<p class="note">{html_text(str(line))}</p>' for line in m.get("card") or [])
        if r.skipped:  # not run: it does not apply to the data
            cards.append(f'<div class="card skipped"><h2>{title}</h2>'
                         f'<p class="summary">Not run: {html_text(r.skipped)}</p></div>')
            continue
        status = "" if r.ok else f"<pre>FAILED: {html_text(r.error or '')}</pre>"
        cards.append(
            f'<div class="card{"" if r.ok else " failed"}"><h2>{title}</h2>{summary}'
            f'{"<table>" + head + rows + "</table>" if rows else ""}{status}'
            f'<p>{" · ".join(links)} <span class="meta">({r.seconds:.1f} s)</span></p></div>'
        )
    later = len(same) - len(comparable)  # the same runs, with figures of a later time
    if replaced:
        keep_replaced(out_dir, replaced, [r.name for r in results], prev)
    kept = "/".join([KEPT] * (list(replaced).index(prev) + 1)) if prev in replaced else None
    others = len(earlier_runs(out_dir))  # not the replaced run: it is removed once this run ends
    other_replaced = not replaced and _replaced_run(out_dir) is not None
    trend = (f'<p class="meta">{_trend_line(prev, same.get(prev), others, later, label.get(prev), kept, other_replaced)}'
             '</p>')
    as_of = ctx.get("as_of") or params.get("as_of") or "each cohort's latest data"
    left_out = left_out_cohorts(results)
    not_covered = (f"<dt>not in the report</dt><dd>{html_text('; '.join(f'{c} ({why})' for c, why in left_out))}</dd>"
                   if left_out else "")
    page = (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>cohortlab report · {html_text(out_dir.name)}</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>cohortlab report</h1>"
        '<dl class="meta">'
        f"<dt>cohorts</dt><dd>{html_text(', '.join(cohorts) if isinstance(cohorts, list) else str(cohorts))}</dd>"
        + not_covered +
        f"<dt>as of</dt><dd>{html_text(readable_times(str(as_of)))}</dd>"
        f"<dt>data source</dt><dd>{html_text(str(source))}</dd>"
        f"<dt>settings</dt><dd>{html_text(str(settings))}</dd>"
        f"<dt>generated</dt><dd>{now}</dd></dl>"
        + trend + "".join(cards)
        + "</body></html>"
    )
    (out_dir / RUN_FILE).write_text(json.dumps({**identity, "data_time": data_time}, indent=2) + "\n",
                                    encoding="utf-8")
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def left_out_cohorts(results: list["NotebookResult"]) -> list[tuple[str, str]]:
    """``(cohort, why)`` of the cohorts the notebooks left out of a report of every cohort, as
    their pages' context records them (names as the pages show them: pseudonyms for personal data)."""
    for r in results:
        rows = ((r.metrics or {}).get("context") or {}).get("left_out")
        if rows:
            return [(str(x.get("cohort")), str(x.get("why"))) for x in rows if isinstance(x, dict)]
    return []


def _replaced_run(out_dir: Path) -> Path | None:
    from cohortlab.report.output import replaced_run

    return replaced_run(out_dir)


def _kept_label(depth: int) -> str:
    """How the index names a run ``--overwrite`` replaced (``depth`` 0), or one that run kept."""
    return ("the run this one replaced", "the run before the one this one replaced")[depth] if depth < 2 else \
        "an earlier run in this folder"


def _previous_units(run: Path | None, name: str) -> dict[str, Any]:
    units = (_read_object(run / name / "metrics.json") or {}).get("headline_units") if run is not None else None
    return units if isinstance(units, dict) else {}


def _trend_line(prev: Path | None, when: str | None, others: int, later: int = 0, label: str | None = None,
                kept: str | None = None, other_replaced: bool = False) -> str:
    """Which earlier run the changes are against (and ``when``, the time its figures are as of),
    or why there is none (HTML); ``later``: runs of the same data, cohorts and settings passed
    over because their figures are as of a later time; ``label``: a run ``--overwrite``
    replaced (no folder to link to: its figures are kept in this run's ``kept`` folder);
    ``other_replaced``: the run this one replaces is not comparable (not one of ``others``: it
    is removed once this run ends)."""
    from cohortlab.report.summaries import readable_times

    if prev is not None:
        as_of = f" (figures as of {html_text(readable_times(when))})" if when else ""
        if label is not None:
            return (f"Compared with {html_text(label)}{as_of}, of the same data source, cohorts and settings; "
                    f"its figures are kept in {html_text(kept or KEPT)}/.")
        return (f'Compared with the previous run of the same data source, cohorts and settings in this folder: '
                f'<a href="../{html_text(prev.name)}/index.html">{html_text(prev.name)}</a>{as_of}')
    if later:
        return (f"No comparable previous run in this folder: the {later:,} "
                f"{'run' if later == 1 else 'runs'} of the same data source, cohorts and settings "
                f"{'has' if later == 1 else 'have'} figures as of a later time than this run's, so no change is shown.")
    if others:
        return (f"No comparable previous run in this folder: the {others:,} other "
                f"{'run reports' if others == 1 else 'runs report'} on another data source, other cohorts or "
                f"other settings, so no change is shown.")
    if other_replaced:
        return ("No comparable previous run in this folder: the run this one replaced reported on another data "
                "source, other cohorts or other settings, so no change is shown.")
    return "No previous run in this folder to compare with."
