"""Scheduled reports: run the notebooks with papermill, export HTML without code, write an index.

    >>> from cohortlab.report.runner import run_report
    >>> result = run_report(db="project.duckdb", params={"cohorts": ["Power Users"]})
    >>> result.index_html                       # reports/2026-03-01/index.html

Layout of one run (``reports/<YYYY-MM-DD>[-N]`` unless ``out`` is given)::

    index.html                        links + headline numbers of every notebook
    data.duckdb                       only with ``data=``: the exports loaded once for all notebooks
    <notebook>/<notebook>.ipynb       the executed notebook (kept for audit)
    <notebook>/<notebook>.html        the same without code (charts embedded as PNG: works offline)
    <notebook>/metrics.json           key figures, written by the notebook itself

A previous run is never overwritten unless ``overwrite=True``. A failing notebook does not stop
the others; :attr:`ReportResult.ok` is False and :attr:`NotebookResult.error` names the cell.
"""

from __future__ import annotations

import datetime as _dt
import html
import importlib.resources
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

NOTEBOOKS_DIR = Path(str(importlib.resources.files("cohortlab") / "notebooks"))  # package data
DEFAULT_NOTEBOOKS = ("match_rates", "identity_gaps", "sync_timeline", "eit_migration")
KERNEL_NAME = "cohortlab"
REPORTS_ROOT = "reports"
DB_NAME = "data.duckdb"
MARKER = ".cohortlab-report"  # in every folder a run writes: only such folders are ever replaced

# parameters that hold paths: made absolute before they reach a notebook (whose cwd differs)
PATH_PARAMETERS = ("db", "data", "settings", "output_dir", "observed_db", "observed_data", "plans")


class ReportError(Exception):
    """A problem before any notebook runs (bad notebook name, output folder exists, bad params)."""


@dataclass
class NotebookResult:
    name: str
    source: Path
    ipynb: Path
    html: Path | None = None
    metrics_path: Path | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None  # names the cell and line; None when the notebook ran
    cell_index: int | None = None
    ename: str | None = None
    evalue: str | None = None
    failing_line: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class ReportResult:
    out_dir: Path
    index_html: Path
    notebooks: list[NotebookResult]

    @property
    def ok(self) -> bool:
        return all(n.ok for n in self.notebooks)

    @property
    def failed(self) -> list[NotebookResult]:
        return [n for n in self.notebooks if not n.ok]


# --------------------------------------------------------------------------- locating things
def notebook_path(name: str | os.PathLike) -> Path:
    """A notebook by path, or by name (``match_rates`` / ``match_rates.ipynb``) in ``notebooks/``."""
    p = Path(name)
    if p.suffix == ".ipynb" and p.exists():
        return p.resolve()
    stem = p.stem if p.suffix == ".ipynb" else p.name
    candidate = NOTEBOOKS_DIR / f"{stem}.ipynb"
    if candidate.exists():
        return candidate
    available = ", ".join(sorted(q.stem for q in NOTEBOOKS_DIR.glob("*.ipynb"))) or "none"
    raise ReportError(f"no notebook {str(name)!r} (available in {NOTEBOOKS_DIR}: {available})")


def kernel_name() -> str:
    """The project's kernel (``make`` installs ``cohortlab`` into the venv), else ``python3``."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        specs = KernelSpecManager().find_kernel_specs()
    except Exception:  # pragma: no cover - jupyter_client always ships with papermill
        return "python3"
    return KERNEL_NAME if KERNEL_NAME in specs else "python3"


def dated_output_dir(
    root: str | os.PathLike = REPORTS_ROOT, today: _dt.date | None = None, prefix: str = ""
) -> Path:
    """``root/<prefix><YYYY-MM-DD>``, or ``-2``, ``-3``... when that run already exists (never reused)."""
    today = today or _dt.datetime.now(_dt.timezone.utc).date()
    name = f"{prefix}{today.isoformat()}"
    base = Path(root) / name
    if not base.exists():
        return base
    n = 2
    while (Path(root) / f"{name}-{n}").exists():
        n += 1
    return Path(root) / f"{name}-{n}"


def load_params(path: str | os.PathLike | None) -> dict[str, Any]:
    """Notebook parameters from a YAML (or JSON) mapping; ``None`` gives ``{}``."""
    if path is None:
        return {}
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except OSError as e:
        raise ReportError(f"{path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ReportError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: expected a mapping of parameter: value, got {type(data).__name__}")
    return {str(k): _plain(v) for k, v in data.items()}


def parse_param_items(items: Iterable[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings into parameters; VALUE is read as YAML (``[a, b]``, ``true``, ``3``)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ReportError(f"expected KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = _plain(yaml.safe_load(value)) if value.strip() else None
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def _plain(v: Any) -> Any:
    """YAML may give dates/datetimes; notebooks get ISO strings (papermill writes literals)."""
    if isinstance(v, (_dt.datetime, _dt.date)):
        return v.isoformat()
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def declared_parameters(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The parameters a notebook declares in its ``parameters`` cell (papermill's inspection)."""
    import papermill

    return papermill.inspect_notebook(str(path))


# --------------------------------------------------------------------------- running
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def failing_line(source: str, traceback: Iterable[str] | str | None) -> tuple[int | None, str]:
    """``(line number, text)`` of the line of a cell that raised, from IPython's traceback
    (``Cell In[3], line 5``); the cell's last non-blank line when the traceback does not say."""
    text = _ANSI.sub("", "\n".join(traceback) if isinstance(traceback, (list, tuple)) else str(traceback or ""))
    lines = (source or "").splitlines()
    m = re.search(r"Cell In\s*\[\d*\],\s*line (\d+)", text) or re.search(r"<ipython-input-[^>]*> in <module>[\s\S]*?-+> *(\d+)", text)
    if m and lines and 1 <= int(m.group(1)) <= len(lines):
        n = int(m.group(1))
        return n, lines[n - 1].strip()
    rest = [(i, ln.strip()) for i, ln in enumerate(lines, 1) if ln.strip() and not ln.lstrip().startswith("#")]
    return (rest[-1] if rest else (None, ""))


def _describe_failure(exc) -> tuple[str, int | None, str | None, str]:
    """``cell N, line L: Ename: evalue`` + the failing line, from PapermillExecutionError."""
    idx = getattr(exc, "cell_index", None)
    line_no, line = failing_line(getattr(exc, "source", "") or "", getattr(exc, "traceback", None))
    where = f"cell {idx}" + (f", line {line_no}" if line_no else "")
    msg = f"{where}: {exc.ename}: {exc.evalue}"
    if line:
        msg += f"\n    > {line[:160]}"
    return msg, idx, exc.ename, line


def _absolute(params: Mapping[str, Any]) -> dict[str, Any]:
    def absolute(v: Any) -> Any:
        if isinstance(v, (str, os.PathLike)) and str(v) != "":
            return str(Path(v).expanduser().resolve())
        if isinstance(v, list):
            return [absolute(x) for x in v]
        return v

    out = dict(params)
    for k in PATH_PARAMETERS:
        if k in out:
            out[k] = absolute(out[k])
    return out


def run_notebook(
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    parameters: Mapping[str, Any] | None = None,
    *,
    kernel: str | None = None,
    html: bool = True,
    timeout: int | None = None,
    page_source: str | None = None,
) -> NotebookResult:
    """Execute one notebook into ``out_dir/<name>/`` (``<name>.ipynb``, ``<name>.html``,
    ``metrics.json`` written by the notebook). Parameters the notebook does not declare are
    dropped; ``output_dir`` is always set to the notebook's folder."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    source = Path(source)
    name = source.stem
    nb_dir = Path(out_dir) / name
    nb_dir.mkdir(parents=True, exist_ok=True)
    declared = declared_parameters(source)
    params = {k: v for k, v in _absolute(parameters or {}).items() if k in declared}
    if "output_dir" in declared:
        params["output_dir"] = str(nb_dir.resolve())
    result = NotebookResult(name=name, source=source, ipynb=nb_dir / f"{name}.ipynb")
    t0 = time.monotonic()
    try:
        papermill.execute_notebook(
            str(source),
            str(result.ipynb),
            parameters=params,
            kernel_name=kernel or kernel_name(),
            progress_bar=False,
            cwd=str(nb_dir),
            execution_timeout=timeout,
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],  # no kernel start-up chatter
        )
    except PapermillExecutionError as e:
        result.error, result.cell_index, result.ename, result.failing_line = _describe_failure(e)
        result.evalue = str(e.evalue)
    except Exception as e:  # kernel died, notebook unreadable, ...
        result.error = f"{type(e).__name__}: {e}"
    result.seconds = time.monotonic() - t0
    metrics = nb_dir / "metrics.json"
    if metrics.exists():
        result.metrics_path = metrics
        try:
            result.metrics = json.loads(metrics.read_text(encoding="utf-8"))
        except ValueError:
            result.metrics = {}
    if html and result.ipynb.exists():
        result.html = export_html(result.ipynb, nb_dir / f"{name}.html")
        decorate_page(result.html, result, {**(parameters or {}), **({"source": page_source} if page_source else {})})
    return result


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
    ctx = dict((result.metrics or {}).get("context") or {})
    generated = (result.metrics or {}).get("generated_at") or _dt.datetime.now(_dt.timezone.utc).isoformat(
        timespec="seconds")
    if "settings" not in ctx:
        try:
            from cohortlab.report.summaries import settings_summary

            ctx["settings"] = settings_summary(params.get("settings"))
        except Exception as e:  # invalid settings: the notebook failed on them too
            ctx["settings"] = f"unreadable ({e})"
    cohorts = ctx.get("cohorts", params.get("cohorts"))
    as_of = ctx.get("as_of", params.get("as_of"))
    return {
        "cohorts": ", ".join(map(str, cohorts)) if isinstance(cohorts, (list, tuple)) else str(cohorts or "all"),
        "as of": str(as_of or "each cohort's latest data"),
        "data source": str(params.get("source") or ctx.get("source") or params.get("data") or params.get("db") or ""),
        "settings": str(ctx["settings"]),
        "generated": str(generated).replace("T", " ").replace("+00:00", " UTC"),
    }


def decorate_page(page: str | os.PathLike, result: "NotebookResult", params: Mapping[str, Any]) -> Path:
    """Give an exported notebook page a real ``<title>``, a header (cohorts, as-of time, data
    source, settings, generation time), a link back to the index and, when the notebook failed,
    the failing line and the error message."""
    page = Path(page)
    text = page.read_text(encoding="utf-8")
    title = str((result.metrics or {}).get("title") or result.name.replace("_", " ").capitalize())
    rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in page_context(result, params).items())
    failed = ""
    if not result.ok:
        failed = (f'<div class="cl-failed"><strong>This report failed</strong> in cell {result.cell_index}: '
                  f"<code>{html.escape(result.failing_line or '')}</code> raised "
                  f"<strong>{html.escape(str(result.ename or 'an error'))}</strong>: "
                  f"<code>{html.escape(str(result.evalue or result.error or ''))}</code>. "
                  "The traceback is at the end of this page.</div>")
    header = (f'<header class="cl-header"><a href="../index.html">&larr; all reports</a>'
              f"<dl>{rows}</dl>{failed}</header>")
    text = re.sub(r"<title>.*?</title>", lambda _m: f"<title>{html.escape(title)} · cohortlab</title>", text,
                  count=1, flags=re.S)
    text = text.replace("</head>", f"<style>{_PAGE_STYLE}</style></head>", 1)
    text = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + header, text, count=1)
    page.write_text(text, encoding="utf-8")
    return page


# The JupyterLab HTML template without its CDN scripts (MathJax, Mermaid, require.js): the report
# is self-contained and works offline, and "$mparticle_user_id ... $distinct_id" in text is never
# typeset as TeX.
_OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def export_html(ipynb: str | os.PathLike, out: str | os.PathLike) -> Path:
    """HTML without code (inputs and prompts hidden); images stay embedded and no script is
    loaded from the network, so it works offline. Cells tagged ``remove-cell`` disappear,
    ``remove-output`` keep no output."""
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    from traitlets.config import Config

    c = Config()
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_cell_tags = {"remove-cell"}
    c.TagRemovePreprocessor.remove_all_outputs_tags = {"remove-output"}
    c.HTMLExporter.exclude_input = True
    c.HTMLExporter.exclude_input_prompt = True
    c.HTMLExporter.exclude_output_prompt = True
    exporter = HTMLExporter(config=c, extra_loaders=[DictLoader({"cohortlab_offline.html.j2": _OFFLINE_TEMPLATE})],
                            template_file="cohortlab_offline.html.j2")
    exporter.register_preprocessor(TagRemovePreprocessor(config=c), enabled=True)
    nb = nbformat.read(str(ipynb), as_version=4)
    body, _ = exporter.from_notebook_node(nb)
    out = Path(out)
    out.write_text(body, encoding="utf-8")
    return out


def prepare_output_dir(out: str | os.PathLike | None, *, overwrite: bool, root: str | os.PathLike = REPORTS_ROOT) -> Path:
    """The run's folder: ``out`` or the dated folder. An existing, non-empty ``out`` is refused
    unless ``overwrite`` (then its previous content is removed)."""
    if out is None:
        if overwrite:
            target = Path(root) / _dt.datetime.now(_dt.timezone.utc).date().isoformat()
        else:
            target = dated_output_dir(root)
    else:
        target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        if not overwrite:
            raise ReportError(f"{target} already exists: not overwriting a previous run (use --overwrite)")
        if not (target.is_dir() and (target / MARKER).exists()):
            raise ReportError(f"{target} exists and was not written by cohortlab report: not removing it, "
                              "even with --overwrite (choose another --out)")
        shutil.rmtree(target)
    target.mkdir(parents=True, exist_ok=True)
    (target / MARKER).write_text("written by cohortlab report; --overwrite may replace this folder\n")
    return target


def run_report(
    notebooks: Iterable[str | os.PathLike] | None = None,
    *,
    db: str | os.PathLike | None = None,
    data: str | os.PathLike | None = None,
    params: Mapping[str, Any] | None = None,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    show_personal_data: bool | None = None,
    kernel: str | None = None,
    progress: Callable[[str], None] | None = None,
    root: str | os.PathLike = REPORTS_ROOT,
) -> ReportResult:
    """Run the notebooks (default: the four of ``notebooks/``) on ``db`` or a ``data`` folder.

    ``data`` is loaded once (``cohortlab.loaders.folder.load_world``) into ``<out>/data.duckdb`` which the
    notebooks then read. ``params`` are notebook parameters (e.g. from a YAML file); ``db``,
    ``data`` and ``show_personal_data`` given here win over ``params``.
    """
    say = progress or (lambda _m: None)
    params = dict(params or {})
    if db is not None:
        params["db"] = str(db)
    if data is not None:
        params["data"] = str(data)
    if show_personal_data is not None:
        params["show_personal_data"] = bool(show_personal_data)
    if params.get("db") and params.get("data"):
        raise ReportError("give either a database (db) or a data folder (data), not both")
    if not params.get("db") and not params.get("data"):
        raise ReportError("nothing to report on: give a database (--db) or a data folder (--data)")
    if params.get("db") and not Path(params["db"]).exists():
        raise ReportError(f"{params['db']}: no such database")
    if params.get("data") and not Path(params["data"]).is_dir():
        raise ReportError(f"{params['data']}: no such folder")
    sources = [notebook_path(n) for n in (notebooks or DEFAULT_NOTEBOOKS)]
    kernel = kernel or kernel_name()
    out_dir = prepare_output_dir(out, overwrite=overwrite, root=root)
    say(f"report folder: {out_dir}")
    source = str(params.get("data") or params.get("db"))

    if params.get("data"):
        from cohortlab.lab import Lab
        from cohortlab.loaders import LoadError
        from cohortlab.loaders.folder import load_world, world_hints

        db_path = out_dir / DB_NAME
        t0 = time.monotonic()
        say(f"loading {params['data']} into {db_path} ...")
        try:
            with Lab(str(db_path)) as lab:
                load_world(lab, params["data"], progress=False)
        except (OSError, ValueError) as e:
            raise ReportError(f"cannot load {params['data']}: {e}") from e
        except LoadError as e:
            raise ReportError(f"cannot load {params['data']}: {e}") from e
        say(f"  loaded in {time.monotonic() - t0:.1f} s")
        params["db"] = str(db_path)
        hints = world_hints(params.pop("data"))
        if hints.get("switch") and "plans" not in params:
            # a world that already switched its EIT: study that switch, and validate the
            # prediction of "switch only" against the world's own (later) exports
            params.setdefault("switch", hints["switch"])
            if hints.get("as_of") and str(hints["switch"]) < str(hints["as_of"]):
                params.setdefault("observed_db", str(db_path))
                params.setdefault("validate_plan", "switch only")

    results = []
    for i, src in enumerate(sources, 1):
        say(f"[{i}/{len(sources)}] {src.stem} ...")
        r = run_notebook(src, out_dir, params, kernel=kernel, page_source=source)
        results.append(r)
        if r.ok:
            say(f"[{i}/{len(sources)}] {src.stem}: ok ({r.seconds:.1f} s)")
        else:
            say(f"[{i}/{len(sources)}] {src.stem}: FAILED in {r.error}")
    index = write_index(out_dir, results, {**params, "source": source})
    return ReportResult(out_dir=out_dir, index_html=index, notebooks=results)


# --------------------------------------------------------------------------- index page
_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2rem auto;
       max-width: 60rem; color: #222; line-height: 1.45; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } .meta { color: #666; font-size: .9rem; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: .8rem 1.1rem; margin: 1rem 0; }
.card.failed { border-color: #c8553d; background: #fdf3f1; }
.card h2 { font-size: 1.15rem; margin: 0 0 .3rem; } .summary { margin: .3rem 0 .5rem; }
table { border-collapse: collapse; font-size: .92rem; } td, th { padding: .15rem .9rem .15rem 0; }
th { font-weight: normal; color: #666; text-align: right; } td.d { color: #555; text-align: right; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: .1rem 1rem; } dl.meta dd { margin: 0; }
td.v { font-weight: 600; text-align: right; } pre { white-space: pre-wrap; color: #8a2a17; }
a { color: #2b5c8f; }
"""


def _fmt_value(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return html.escape(str(v))
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if 0 <= v <= 1 and not float(v).is_integer():
            return f"{v * 100:.1f}%"
        return f"{v:,.2f}"
    return html.escape(str(v))


def previous_run(out_dir: str | os.PathLike) -> Path | None:
    """The latest earlier run in the same reports folder (a sibling folder written by
    ``cohortlab report`` with an ``index.html``), or None."""
    out_dir = Path(out_dir).resolve()
    runs = [d for d in out_dir.parent.iterdir()
            if d.is_dir() and d.resolve() != out_dir and (d / MARKER).exists() and (d / "index.html").exists()]
    return max(runs, key=lambda d: (d / "index.html").stat().st_mtime) if runs else None


def _previous_headline(prev: Path | None, name: str) -> dict[str, Any]:
    if prev is None:
        return {}
    try:
        return json.loads((prev / name / "metrics.json").read_text(encoding="utf-8")).get("headline") or {}
    except (OSError, ValueError):
        return {}


def _fmt_change(now: Any, before: Any) -> str:
    """``+3`` / ``−1.2 pts`` / ``no change`` / ``new``: a headline value against the previous run."""
    if isinstance(now, bool) or isinstance(before, bool):
        return ""
    if not isinstance(now, (int, float)):
        return "" if before is None or before == now else f"was {html.escape(str(before))}"
    if not isinstance(before, (int, float)):
        return "new"
    d = now - before
    if isinstance(now, float) and 0 <= now <= 1 and isinstance(before, float):
        pts = d * 100
        return "no change" if abs(pts) < 0.05 else f"{'+' if pts > 0 else '−'}{abs(pts):.1f} pts"
    if d == 0:
        return "no change"
    return f"{'+' if d > 0 else '−'}{abs(d):,}" if isinstance(d, int) else f"{'+' if d > 0 else '−'}{abs(d):,.2f}"


def write_index(out_dir: str | os.PathLike, results: list[NotebookResult], params: Mapping[str, Any] | None = None) -> Path:
    """``index.html``: one card per notebook (title, status, summary, headline numbers with their
    change since the previous run in the same reports folder, links)."""
    out_dir = Path(out_dir)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    params = dict(params or {})
    source = params.get("source") or params.get("db") or params.get("data") or ""
    prev = previous_run(out_dir)
    cards = []
    for r in results:
        m = r.metrics or {}
        before = _previous_headline(prev, r.name)
        title = html.escape(str(m.get("title") or r.name.replace("_", " ").capitalize()))
        links = []
        if r.html and r.html.exists():
            links.append(f'<a href="{html.escape(r.html.relative_to(out_dir).as_posix())}">report</a>')
        if r.ipynb.exists():
            links.append(f'<a href="{html.escape(r.ipynb.relative_to(out_dir).as_posix())}">notebook</a>')
        if r.metrics_path:
            links.append(f'<a href="{html.escape(r.metrics_path.relative_to(out_dir).as_posix())}">metrics.json</a>')
        rows = "".join(
            f"<tr><td>{html.escape(str(k))}</td><td class=v>{_fmt_value(v)}</td>"
            + (f'<td class="d">{_fmt_change(v, before.get(k))}</td>' if prev is not None else "") + "</tr>"
            for k, v in (m.get("headline") or {}).items()
        )
        head = ("<tr><th></th><th>this run</th>"
                f"<th>change since {html.escape(prev.name)}</th></tr>" if prev is not None and rows else "")
        summary = f'<p class="summary">{html.escape(str(m["summary"]))}</p>' if m.get("summary") else ""
        status = "" if r.ok else f"<pre>FAILED: {html.escape(r.error or '')}</pre>"
        cards.append(
            f'<div class="card{"" if r.ok else " failed"}"><h2>{title}</h2>{summary}'
            f'{"<table>" + head + rows + "</table>" if rows else ""}{status}'
            f'<p>{" · ".join(links)} <span class="meta">({r.seconds:.1f} s)</span></p></div>'
        )
    trend = (f'<p class="meta">Compared with the previous run in this folder: '
             f'<a href="../{html.escape(prev.name)}/index.html">{html.escape(prev.name)}</a></p>'
             if prev is not None else '<p class="meta">No previous run in this folder to compare with.</p>')
    ctx = next((r.metrics.get("context") for r in results if (r.metrics or {}).get("context")), None) or {}
    settings = ctx.get("settings")
    if settings is None:
        try:
            from cohortlab.report.summaries import settings_summary

            settings = settings_summary(params.get("settings"))
        except Exception:
            settings = str(params.get("settings") or "defaults")
    cohorts = ctx.get("cohorts") or params.get("cohorts") or "all"
    as_of = ctx.get("as_of") or params.get("as_of") or "each cohort's latest data"
    page = (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>cohortlab report · {html.escape(out_dir.name)}</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>cohortlab report</h1>"
        '<dl class="meta">'
        f"<dt>cohorts</dt><dd>{html.escape(', '.join(cohorts) if isinstance(cohorts, list) else str(cohorts))}</dd>"
        f"<dt>as of</dt><dd>{html.escape(str(as_of))}</dd>"
        f"<dt>data source</dt><dd>{html.escape(str(source))}</dd>"
        f"<dt>settings</dt><dd>{html.escape(str(settings))}</dd>"
        f"<dt>generated</dt><dd>{now}</dd></dl>"
        + trend + "".join(cards)
        + "</body></html>"
    )
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
