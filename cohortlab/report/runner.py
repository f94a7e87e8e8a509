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
    error: str | None = None  # names the cell; None when the notebook ran
    cell_index: int | None = None
    ename: str | None = None

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
def _describe_failure(exc) -> tuple[str, int | None, str | None]:
    """``cell N (In [k]): Ename: evalue`` + the cell's first line, from PapermillExecutionError."""
    source = (getattr(exc, "source", "") or "").strip().splitlines()
    first = next((s for s in source if s.strip() and not s.lstrip().startswith("#")), source[0] if source else "")
    idx = getattr(exc, "cell_index", None)
    msg = f"cell {idx} (In [{getattr(exc, 'exec_count', '?')}]): {exc.ename}: {exc.evalue}"
    if first:
        msg += f"\n    > {first[:120]}"
    return msg, idx, exc.ename


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
        result.error, result.cell_index, result.ename = _describe_failure(e)
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
    return result


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
        r = run_notebook(src, out_dir, params, kernel=kernel)
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
table { border-collapse: collapse; font-size: .92rem; } td { padding: .15rem .9rem .15rem 0; }
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


def write_index(out_dir: str | os.PathLike, results: list[NotebookResult], params: Mapping[str, Any] | None = None) -> Path:
    """``index.html``: one card per notebook (title, status, summary, headline numbers, links)."""
    out_dir = Path(out_dir)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    params = dict(params or {})
    source = params.get("source") or params.get("db") or params.get("data") or ""
    cards = []
    for r in results:
        m = r.metrics or {}
        title = html.escape(str(m.get("title") or r.name.replace("_", " ").capitalize()))
        links = []
        if r.html and r.html.exists():
            links.append(f'<a href="{html.escape(r.html.relative_to(out_dir).as_posix())}">report</a>')
        if r.ipynb.exists():
            links.append(f'<a href="{html.escape(r.ipynb.relative_to(out_dir).as_posix())}">notebook</a>')
        if r.metrics_path:
            links.append(f'<a href="{html.escape(r.metrics_path.relative_to(out_dir).as_posix())}">metrics.json</a>')
        rows = "".join(
            f"<tr><td>{html.escape(str(k))}</td><td class=v>{_fmt_value(v)}</td></tr>"
            for k, v in (m.get("headline") or {}).items()
        )
        summary = f'<p class="summary">{html.escape(str(m["summary"]))}</p>' if m.get("summary") else ""
        status = "" if r.ok else f"<pre>FAILED: {html.escape(r.error or '')}</pre>"
        cards.append(
            f'<div class="card{"" if r.ok else " failed"}"><h2>{title}</h2>{summary}'
            f'{"<table>" + rows + "</table>" if rows else ""}{status}'
            f'<p>{" · ".join(links)} <span class="meta">({r.seconds:.1f} s)</span></p></div>'
        )
    page = (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        "<title>cohortlab report</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>cohortlab report</h1>"
        f'<p class="meta">Generated {now} from {html.escape(str(source))}'
        f'{" · cohorts: " + html.escape(str(params.get("cohorts"))) if params.get("cohorts") else ""}'
        f'{" · as of " + html.escape(str(params.get("as_of"))) if params.get("as_of") else ""}</p>'
        + "".join(cards)
        + "</body></html>"
    )
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
