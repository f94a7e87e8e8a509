"""Scheduled reports: run the notebooks with papermill, export HTML without code, write an index.

    >>> from cohortlab.report.runner import run_report
    >>> result = run_report(db="project.duckdb", params={"cohorts": ["Power Users"]})
    >>> result.index_html                       # reports/2026-03-01/index.html

Layout of one run (``reports/<YYYY-MM-DD>[-N]`` unless ``out`` is given)::

    index.html                        links + headline numbers of every notebook, with the change
                                      since the previous run of the same data source, cohorts and
                                      settings in the same folder (:mod:`.pages`)
    run.json                          what the run reported on, for the next run's comparison
    data.duckdb                       only with ``data=`` and ``keep_data=True``: the exports loaded once
                                      (else that database is a temporary file, removed after the run)
    <notebook>/<notebook>.ipynb       the executed notebook (kept for audit)
    <notebook>/<notebook>.html        the same without code (charts embedded as PNG: works offline),
                                      with a header: cohorts, as of, source, settings, generated
    <notebook>/metrics.json           key figures, written by the notebook itself

A previous run is never overwritten unless ``overwrite=True``. A failing notebook does not stop
the others; :attr:`ReportResult.ok` is False and :attr:`NotebookResult.error` names the cell, the
failing line and the error message (also shown at the top of the notebook's page).
"""

from __future__ import annotations

import datetime as _dt
import importlib.resources
import json
import os
import re
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from cohortlab.report.pages import MARKER, decorate_page, write_index
from cohortlab.tempdirs import make_temp_dir, no_temp_dir_problem, require_temp_dir

NOTEBOOKS_DIR = Path(str(importlib.resources.files("cohortlab") / "notebooks"))  # package data
DEFAULT_NOTEBOOKS = ("match_rates", "identity_gaps", "sync_timeline", "eit_migration")
KERNEL_NAME = "cohortlab"
REPORTS_ROOT = "reports"
DB_NAME = "data.duckdb"

# parameters that hold paths: made absolute before they reach a notebook (whose cwd differs)
PATH_PARAMETERS = ("db", "data", "settings", "output_dir", "observed_db", "observed_data", "plans", "simulations")


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
    # why a notebook run by default was not run: it does not apply to the data (its card says so)
    skipped: str | None = None
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
def without_iri_format_checks() -> None:
    """For cohortlab's own processes (the ``report`` and ``demo`` commands): import jsonschema, which
    papermill reads notebooks with (through nbformat), without its checker of the ``iri`` formats.
    That checker, rfc3987_syntax, builds 38 Lark parsers when imported: about 1 s of a report's
    start, single-threaded, before any notebook can start (docs/benchmarks.md#session-20). The
    notebook schema uses no such format. A later ``import rfc3987_syntax`` works as before; only
    jsonschema's format checker lacks ``iri``/``iri-reference`` in this process. Nothing when
    jsonschema is already imported (a user's process: left as it is)."""
    import sys

    if "jsonschema" in sys.modules or "rfc3987_syntax" in sys.modules:
        return
    sys.modules["rfc3987_syntax"] = None  # an import of it raises ImportError, which jsonschema skips
    try:
        import jsonschema  # noqa: F401
    finally:
        if sys.modules.get("rfc3987_syntax", 0) is None:
            del sys.modules["rfc3987_syntax"]


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
    if not os.path.lexists(base):  # a link to nothing is taken too: the next name
        return base
    n = 2
    while os.path.lexists(Path(root) / f"{name}-{n}"):
        n += 1
    return Path(root) / f"{name}-{n}"


def load_params(path: str | os.PathLike | None) -> dict[str, Any]:
    """Notebook parameters from a YAML (or JSON) mapping; ``None`` gives ``{}``."""
    if path is None:
        return {}
    from cohortlab.errors import read_yaml_file

    data = read_yaml_file(path, ReportError, "the parameters file", mapping="parameter: value")
    return {str(k): _plain(v) for k, v in data.items()}


def parse_param_items(items: Iterable[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings into parameters; VALUE is read as YAML (``[a, b]``, ``true``, ``3``)."""
    import yaml

    from cohortlab.errors import YamlTooLarge, YamlValueError, yaml_data

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ReportError(f"expected KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = _plain(yaml_data(value, unique_keys=False)) if value.strip() else None
        except (YamlTooLarge, YamlValueError) as e:  # -p as_of=2026-02-30 was a traceback
            raise ReportError(f"-p {key.strip()}: not a usable YAML value ({e})") from None
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


def check_parameters(params: Mapping[str, Any], sources: Iterable[str | os.PathLike]) -> dict[str, Any]:
    """``params`` checked against what the ``sources`` notebooks declare and the type each parameter
    has in :mod:`cohortlab.report.parameters` (a plain YAML value; ``!!binary``, ``!!python/...``,
    mappings refused; an unknown name is an error naming the nearest declared one)."""
    from cohortlab.report.parameters import ParameterError, validate

    declared: set[str] = set()
    for src in sources:
        declared |= set(declared_parameters(src))
    declared.discard("output_dir")  # set by the runner, never by the user
    declared.discard("simulations")
    try:
        return validate(params, declared)
    except ParameterError as e:
        raise ReportError(str(e)) from None


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


_LOCAL_FILES_INSTALLED = False


def _papermill_local_files_without_chdir() -> None:
    """Replace papermill's local file handler with one that never changes this process's folder.
    Papermill's reads and writes run in ``chdir(<its folder>)``, from whichever thread runs a
    notebook, and the folder is one process-wide value that each run sets and restores: with two
    notebooks at once, each restored the other's, and the process could end in a stale folder.
    This one joins a relative path to that folder instead (the report's paths are absolute)."""
    global _LOCAL_FILES_INSTALLED
    if _LOCAL_FILES_INSTALLED:
        return
    import json as _json

    from papermill.iorw import LocalHandler, papermill_io

    class LocalFiles(LocalHandler):
        def _at(self, path: str) -> str:
            return path if os.path.isabs(path) or not self._cwd else os.path.join(self._cwd, path)

        def read(self, path):
            try:
                with open(self._at(path), encoding="utf-8") as f:
                    return f.read()
            except OSError:
                try:  # a notebook given as a JSON string, as papermill's own handler allows
                    _json.loads(path)
                    return path
                except ValueError:
                    raise

        def listdir(self, path):
            return [os.path.join(path, fn) for fn in os.listdir(self._at(path))]

        def write(self, buf, path):
            target = self._at(path)
            folder = os.path.dirname(target)
            if folder and not os.path.exists(folder):
                raise FileNotFoundError(f"output folder {folder} doesn't exist.")
            with open(target, "w", encoding="utf-8") as f:
                f.write(buf)

    # in place of papermill's own: get_handler falls back to the last "local" handler listed, so
    # registering another one in front would not be used for plain paths
    handlers = getattr(papermill_io, "_handlers", None)
    if isinstance(handlers, list) and any(scheme == "local" for scheme, _ in handlers):
        papermill_io._handlers = [(scheme, LocalFiles() if scheme == "local" else h) for scheme, h in handlers]
    _LOCAL_FILES_INSTALLED = True


def run_notebook(
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    parameters: Mapping[str, Any] | None = None,
    *,
    kernel: str | None = None,
    html: bool = True,
    timeout: int | None = None,
    page_source: str | None = None,
    env: Mapping[str, str] | None = None,
) -> NotebookResult:
    """Execute one notebook into ``out_dir/<name>/`` (``<name>.ipynb``, ``<name>.html``,
    ``metrics.json`` written by the notebook). Parameters the notebook does not declare are
    dropped; ``output_dir`` is always set to the notebook's folder. ``env``: variables its kernel
    starts with, on top of this process's environment (which is not changed)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    _papermill_local_files_without_chdir()

    source = Path(source).resolve()
    name = source.stem
    nb_dir = (Path(out_dir) / name).resolve()
    nb_dir.mkdir(parents=True, exist_ok=True)
    declared = declared_parameters(source)
    from cohortlab.report.parameters import plain

    # plain values only (checked again here for callers of run_notebook): papermill writes them as
    # Python literals into the injected cell, and anything else (bytes...) would become code text
    params = {k: plain(v, k) for k, v in _absolute(parameters or {}).items() if k in declared}
    if "output_dir" in declared:
        params["output_dir"] = str(nb_dir.resolve())
    result = NotebookResult(name=name, source=source, ipynb=nb_dir / f"{name}.ipynb")
    t0 = time.monotonic()
    for attempt in range(1 + KERNEL_START_RETRIES):
        try:
            papermill.execute_notebook(
                str(source),
                str(result.ipynb),
                parameters=params,
                kernel_name=kernel or kernel_name(),
                progress_bar=False,
                # the kernel starts in the notebook's folder; papermill's cwd= would chdir this
                # whole process from a pool thread, and two notebooks at once restore each
                # other's folder: the process ended in a report folder (deleted when interrupted)
                execution_timeout=timeout,
                extra_arguments=["--IPKernelApp.log_level=CRITICAL"],  # no kernel start-up chatter
                kernel_manager_class=_kernel_manager_with(env or {}, cwd=nb_dir),
            )
        except PapermillExecutionError as e:
            result.error, result.cell_index, result.ename, result.failing_line = _describe_failure(e)
            result.evalue = str(e.evalue)
        except Exception as e:  # kernel died, notebook unreadable, ...
            if kernel_did_not_start(e) and attempt < KERNEL_START_RETRIES:
                # two kernels starting at once can pick the same free port (jupyter_client picks
                # ports, then the kernel binds them): the loser dies before kernel_info; a new
                # kernel picks new ports. No cell has run, so nothing is repeated.
                time.sleep(0.5 * (attempt + 1))
                continue
            result.error = f"{type(e).__name__}: {e}"
        break
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


KERNEL_START_RETRIES = 2  # kernels that die before their first reply are started again this often


def kernel_did_not_start(error: BaseException) -> bool:
    """A kernel that died before replying to ``kernel_info`` (no cell ran): nbclient raises a
    RuntimeError saying so (e.g. after its ports were taken by a kernel started at the same time)."""
    return isinstance(error, RuntimeError) and "before replying to kernel_info" in str(error)


# the kernels of the notebooks running now, stopped by stop_kernels() when the run is interrupted
# (Ctrl-C): they run in sessions of their own, so the terminal's SIGINT never reaches them
_KERNELS: set = set()
_KERNELS_LOCK = threading.Lock()
_STOPPING = threading.Event()


def _kill_kernel(km) -> None:
    pid = getattr(getattr(km, "provisioner", None), "pid", None)
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)  # it only reads the database (read-only): nothing to save
        except (ProcessLookupError, PermissionError):
            pass


def stop_kernels() -> None:
    """Kill the kernel of every notebook running now, and of any that starts from now on (its
    notebook then fails at once): what an interrupted report does before it exits."""
    import logging

    _STOPPING.set()
    logging.getLogger("papermill").disabled = True  # no "Kernel died while waiting for execute reply." per notebook
    with _KERNELS_LOCK:
        kernels = list(_KERNELS)
        _KERNELS.clear()  # a killed kernel is not shut down by its manager: forget it here
    for km in kernels:
        _kill_kernel(km)


def _kernel_manager_with(env: Mapping[str, str], cwd: str | os.PathLike | None = None) -> type:
    """A kernel manager class (nbclient's default, ``AsyncKernelManager``) whose kernels start
    with ``env`` on top of this process's environment, in the folder ``cwd`` (this process's own
    working directory is never changed), known to :func:`stop_kernels` while they run."""
    from jupyter_client import AsyncKernelManager

    extra = dict(env)
    folder = None if cwd is None else str(cwd)

    class KernelManagerWithEnv(AsyncKernelManager):
        async def start_kernel(self, **kw):
            kw["env"] = {**os.environ, **(kw.get("env") or {}), **extra}
            if folder is not None:
                kw["cwd"] = folder
            out = await super().start_kernel(**kw)
            with _KERNELS_LOCK:  # (stop_kernels sets _STOPPING, then takes the lock)
                stopping = _STOPPING.is_set()
                if not stopping:
                    _KERNELS.add(self)
            if stopping:  # started while the run was being stopped
                _kill_kernel(self)
            return out

        async def shutdown_kernel(self, *args, **kw):
            with _KERNELS_LOCK:
                _KERNELS.discard(self)
            return await super().shutdown_kernel(*args, **kw)

    return KernelManagerWithEnv


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
    unless ``overwrite`` (then its previous content is removed). The folder is claimed by creating
    its marker file: of two runs started at once into one ``out``, the second is refused; into
    the dated folder, it takes the next one."""
    for _attempt in range(100):
        try:
            return _claim_output_dir(out, overwrite=overwrite, root=root)
        except _Claimed as e:
            if out is not None or overwrite:
                raise ReportError(f"{e.target} already exists: another report is being written into it "
                                  "(choose another --out)") from None
    raise ReportError(f"no free dated folder under {root}")


class _Claimed(Exception):
    def __init__(self, target: Path):
        self.target = target


def _claim_output_dir(out, *, overwrite: bool, root) -> Path:
    if out is None:
        if overwrite:
            target = Path(root) / _dt.datetime.now(_dt.timezone.utc).date().isoformat()
        else:
            target = dated_output_dir(root)
    else:
        target = Path(out)
    if target.is_symlink() and not target.exists():
        raise ReportError(f"{target} is a symbolic link to nothing: not writing where it points (choose another --out)")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        if not overwrite:
            raise ReportError(f"{target} already exists: not overwriting a previous run (use --overwrite)")
        if not (target.is_dir() and (target / MARKER).exists()):
            raise ReportError(f"{target} exists and was not written by cohortlab report: not removing it, "
                              "even with --overwrite (choose another --out)")
        if target.is_symlink():  # the run it points to may be anyone's, anywhere
            raise ReportError(f"{target} is a symbolic link: not removing the folder it points to, even with "
                              "--overwrite (choose another --out)")
        shutil.rmtree(target)
    target.mkdir(parents=True, exist_ok=True)
    try:  # created, never replaced: of two runs started at once into one folder, the second stops here
        with open(target / MARKER, "x", encoding="utf-8") as f:
            f.write("written by cohortlab report; --overwrite may replace this folder\n")
    except FileExistsError:
        raise _Claimed(target) from None
    return target


def _remove_unused_output(out_dir: Path, db_path: Path) -> None:
    """After a report that failed before any notebook ran: remove the database loaded into the
    report folder (``keep_data``), then the folder itself when nothing else is in it (only the
    marker of :func:`prepare_output_dir`)."""
    for path in (db_path, Path(f"{db_path}.wal"), Path(f"{db_path}.tmp")):
        if path.parent == out_dir:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                path.unlink()
    if out_dir.is_dir() and {p.name for p in out_dir.iterdir()} <= {MARKER}:
        shutil.rmtree(out_dir, ignore_errors=True)


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
    engine: str | None = None,
    spark_master: str | None = None,
    keep_data: bool = False,
    share_simulations: bool = True,
) -> ReportResult:
    """Run the notebooks (default: the four of ``notebooks/``) on ``db`` or a ``data`` folder.

    ``data`` is loaded once (``cohortlab.loaders.folder.load_world``) into a temporary database
    which the notebooks then read (``<out>/data.duckdb`` with ``keep_data``). ``params`` are
    checked first (:func:`check_parameters`): a value that is not plain data, or a name that no
    chosen notebook declares, is a :class:`ReportError` and nothing runs. ``params`` are notebook parameters (e.g. from a YAML file); ``db``,
    ``data`` and ``show_personal_data`` given here win over ``params``.

    ``share_simulations`` (DuckDB): the simulation of every cohort that several notebooks start
    from is computed once, before they run, into a scratch file they read
    (:mod:`cohortlab.report.shared`; the user's database is only read); False: each notebook
    simulates on its own.
    """
    say = progress or (lambda _m: None)
    sources = [notebook_path(n) for n in (notebooks or DEFAULT_NOTEBOOKS)]
    params = check_parameters(params or {}, sources)  # data, never code: before anything runs
    if engine is not None:
        if engine not in ("duckdb", "spark"):
            raise ReportError(f"unknown engine {engine!r} (duckdb or spark)")
        params["engine"] = engine
    if spark_master:
        params["spark_master"] = spark_master
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
    try:  # the kernels, the data loaded from --data and the shared simulations need one: before any folder
        require_temp_dir()
    except FileNotFoundError as e:
        raise ReportError(no_temp_dir_problem(e) or str(e)) from None
    seen = [s.stem for s in sources]
    twice = sorted({n for n in seen if seen.count(n) > 1})
    if twice:
        raise ReportError(f"notebook(s) {', '.join(twice)} asked for more than once (each writes one folder)")
    # the settings and cohorts the package's notebooks read must be readable and exist (another
    # notebook may read these parameters otherwise)
    ours = all(Path(s).resolve().parent == NOTEBOOKS_DIR.resolve() for s in sources)
    if ours:
        _check_settings(params.get("settings"))
    cohorts = params.get("cohorts") if ours else None
    if params.get("db") and params.get("engine", "duckdb") == "duckdb":  # before any folder or kernel
        check_database(params["db"], cohorts)
        if ours and "eit_migration" in seen:
            check_migration_window(params["db"], params)
    kernel = kernel or kernel_name()
    out_dir = prepare_output_dir(out, overwrite=overwrite, root=root)
    say(f"report folder: {out_dir}")
    # the notebooks that read the shared simulations (by position); shared when two or more do
    readers = {j for j, src in enumerate(sources) if _reads_shared(Path(src))}
    share = share_simulations and params.get("engine", "duckdb") == "duckdb" and len(readers) >= 2
    if params.get("db") and params.get("engine", "duckdb") == "duckdb" and not share:
        hint = stored_simulations_hint(params["db"])
        if hint:
            say(hint)
    source = str(Path(params.get("data") or params.get("db")).expanduser().resolve())  # as the pages show it: pages.shown_path
    return _run_all(sources, out_dir, params, source, kernel, say, keep_data, readers if share else set(),
                    optional=notebooks is None, cohorts=cohorts)


def _reads_shared(src: Path) -> bool:
    """Whether the notebook ``src`` reads the shared simulations (declares the parameter)."""
    from cohortlab.report.shared import PARAMETER

    return PARAMETER in declared_parameters(src)


def stored_simulations_hint(db: str | os.PathLike) -> str | None:
    """A line for the user when the database ``db`` holds no simulation stored for its current
    data (docs/simulate.md#stored-simulations): each notebook then simulates on its own, and
    ``cohortlab simulate`` / ``cohortlab verify`` would store what the next report reuses.
    None when one is stored, or when the file cannot be opened here (the notebooks say why)."""
    from cohortlab.lab import Lab
    from cohortlab.simulation import store

    try:
        with Lab(str(db), read_only=True) as lab:
            if store.current(lab.engine):
                return None
    except Exception:  # a locked or foreign file: the notebooks report it
        return None
    return (f"no simulation is stored in {db} for its current data: each notebook simulates on its own; "
            f"`cohortlab simulate --db {db} --cohort NAME` (and `cohortlab verify`) store theirs, "
            "which the next report reuses (docs/simulate.md#stored-simulations)")


def parallel_notebooks() -> int:
    """How many notebooks run at once: ``$COHORTLAB_REPORT_PARALLEL`` when set, else the cores
    this process may run on, at most 2 (each notebook is a kernel process with its own DuckDB)."""
    raw = os.environ.get("COHORTLAB_REPORT_PARALLEL")
    if raw:
        try:
            return max(1, int(raw))
        except ValueError:
            raise ReportError(f"COHORTLAB_REPORT_PARALLEL={raw!r}: expected a whole number of notebooks") from None
    from cohortlab.engines.duckdb import default_threads

    return max(1, min(2, default_threads()))


# the default notebooks, longest first on a loaded 1M-user world (one DuckDB thread each, the
# cohorts' simulations shared): eit_migration (which reads no shared simulation) starts at once,
# beside the shared simulations, and is about as long as them and identity_gaps together, so the
# two halves end together (docs/reports.md#shared-simulations)
_LONGEST_FIRST = {"eit_migration": 0, "identity_gaps": 1, "match_rates": 2, "sync_timeline": 3}


# While several notebooks run at once, the default DuckDB memory limit (what one cohortlab process
# may give DuckDB) is the budget of all of them: every further process at once costs what it holds
# beyond its DuckDB limit (the kernel, pandas, matplotlib, result frames and DuckDB's own overshoot:
# 260-420 MB measured at 10M users), taken from the budget, and the rest is split by weight so that
# any of them running together stay within it. The migration what-if takes the same time with 680
# as with 750 MB at 1M; the other notebooks and the shared simulations take 0.1-0.5 s more with
# 450 MB than with 750 MB (docs/benchmarks.md#report-shares).
_PYTHON_MB = 400
_MEMORY_WEIGHT = {"eit_migration": 5}
_DEFAULT_WEIGHT = 3
SHARED_SIMULATIONS = "shared simulations"  # the key of the process that simulates for the readers


def kernel_settings(names: Iterable[str], workers: int) -> dict[str, dict[str, str]]:
    """The environment each of ``names`` (notebooks, and :data:`SHARED_SIMULATIONS` when the
    runner simulates for them) is started with while ``workers`` run at once:
    ``COHORTLAB_MEMORY_LIMIT``, its share of the default limit (the budget less ``_PYTHON_MB`` for
    every process beyond the first, split by ``_MEMORY_WEIGHT``: a share is what is left when every
    other process at once has the largest weight among the others), and ``COHORTLAB_THREADS``, its
    share of the cores (at least 1): two kernels each running as many threads as there are cores
    spend a fifth more CPU time on the same queries. One at a time: nothing. A limit or a thread
    count the user set is left alone."""
    names = list(names)
    if workers <= 1:
        return {n: {} for n in names}
    from cohortlab.engines.duckdb import default_memory_limit, default_threads

    budget = int(default_memory_limit()[:-2]) - _PYTHON_MB * (workers - 1)
    weight = {n: _MEMORY_WEIGHT.get(n, _DEFAULT_WEIGHT) for n in names}
    out: dict[str, dict[str, str]] = {}
    for n in names:
        env = {}
        if not os.environ.get("COHORTLAB_MEMORY_LIMIT"):
            others = max((w for m, w in weight.items() if m != n), default=weight[n])
            env["COHORTLAB_MEMORY_LIMIT"] = f"{max(budget * weight[n] // (weight[n] + (workers - 1) * others), 100)}MB"
        if not os.environ.get("COHORTLAB_THREADS"):
            env["COHORTLAB_THREADS"] = str(max(1, default_threads() // workers))
        out[n] = env
    return out


def _check_settings(settings: Any) -> None:
    """The ``settings`` parameter (a YAML path or a mapping) read as the notebooks will read it."""
    if settings is None:
        return
    from cohortlab.errors import SettingsError
    from cohortlab.settings import SyncSettings

    try:
        SyncSettings.coerce(settings)
    except SettingsError as e:
        raise ReportError(f"settings: {e}") from None


def check_database(db: str | os.PathLike, cohorts: Any = None) -> None:
    """A ReportError, before any notebook runs, when ``db`` is not a DuckDB database (a folder,
    another file), holds none or only some of the canonical tables, or a cohort of ``cohorts``
    (a name or a list; None: every cohort) has no membership data in it."""
    from cohortlab.errors import CohortlabError, DatabaseError
    from cohortlab.lab import Lab
    from cohortlab.simulation.membership import find_cohort

    from cohortlab import schema

    try:
        with Lab(str(db), read_only=True) as lab:
            missing = [t for t in schema.TABLES if not lab.engine.table_exists(t)]
            if len(missing) == len(schema.TABLES):  # every notebook would fail on it
                raise ReportError(schema.not_cohortlab_message(db))
            if missing:
                raise ReportError(f"{db}: no table {', '.join(missing)}: written by an older cohortlab "
                                  f"(`cohortlab info --db {db}` adds the missing tables)")
            if cohorts is None:
                return
            for name in [cohorts] if isinstance(cohorts, str) else list(cohorts):
                try:
                    find_cohort(lab.engine, str(name))
                except (CohortlabError, ValueError) as e:
                    raise ReportError(f"cohorts: {e}") from None
    except DatabaseError as e:
        raise ReportError(str(e)) from None


def check_migration_window(db: str | os.PathLike, params: Mapping[str, Any]) -> None:
    """A ReportError, before any notebook runs, when the EIT page would refuse its window or its
    switch, as ``migrate compare`` refuses them: with ``activity: repeat``, an ``end`` not after
    the last event's day (the projection would add nothing;
    :func:`cohortlab.migration.run.default_window`); for the standard plans, a switch before the
    first event or after the window's last day (the four plans would be the same every day;
    :func:`cohortlab.migration.switch.check_switch_in_window`). A switch found in the data lies
    inside it: it is checked only against a given ``end`` (finding it reads every event)."""
    from cohortlab.migration.switch import settings_switch

    repeat_end = params.get("activity") == "repeat" and bool(params.get("end"))
    standard = not params.get("plans")
    given = params.get("switch") is not None or settings_switch(params.get("settings")) is not None
    if not repeat_end and not (standard and (given or params.get("end"))):
        return
    from cohortlab.errors import CohortlabError
    from cohortlab.lab import Lab
    from cohortlab.report import insights

    with Lab(str(db), read_only=True) as lab:  # as the EIT page reads them
        try:
            _, end_day = insights.migration_window(lab, params.get("start"), params.get("end"),
                                                   activity=params.get("activity") or "observed")
        except (CohortlabError, ValueError) as e:
            raise ReportError(f"end: {e}" if repeat_end else f"eit_migration: {e}") from None
        if not standard:
            return
        try:  # (no switch at all: the page is not run, or says why)
            insights.switch_in_window(lab, params.get("settings"), params.get("switch"), end_day=end_day,
                                      end_given=bool(params.get("end")))
        except (CohortlabError, ValueError) as e:
            raise ReportError(f"eit_migration: {e}") from None


def not_applicable(name: str, params: Mapping[str, Any]) -> str | None:
    """Why the notebook ``name`` does not apply to the database ``params["db"]``, or None. The
    migration what-if needs a switch to study: the parameters ``switch`` or ``plans``, the
    settings' ``eit_timeline``, or one the data shows (:func:`cohortlab.migration.switch.find_switch`)."""
    if name != "eit_migration" or params.get("plans") or params.get("switch") \
            or params.get("engine", "duckdb") != "duckdb":
        return None
    from cohortlab.lab import Lab
    from cohortlab.migration.switch import NO_SWITCH, has_mpid_keyed_event, settings_switch

    if settings_switch(params.get("settings")) is not None:
        return None
    with Lab(str(params["db"]), read_only=True) as lab:
        if has_mpid_keyed_event(lab.engine):
            return None
    return (f"no EIT switch to study: {NO_SWITCH}. Give -p switch=YYYY-MM-DD (the day to study) "
            "or -p plans=PLANS.yaml")


def _run_all(sources, out_dir: Path, params: dict[str, Any], source: str, kernel: str, say,
             keep_data: bool, readers: set[int] = frozenset(), *, optional: bool = False,
             cohorts: Any = None) -> ReportResult:
    """Run the notebooks ``sources``; those at the positions ``readers`` read the simulations
    shared by the runner (none: every notebook simulates on its own). ``optional``: the
    notebooks were not asked for by name, so one that does not apply to the data
    (:func:`not_applicable`) is not run; its card says why. ``cohorts``: the cohorts that must
    exist in the data loaded from ``params["data"]`` (:func:`check_database`)."""
    # papermill's ``cwd=`` changes the directory of the whole process while a notebook runs, and two
    # run at once: every path is made absolute here, before any notebook starts
    out_dir = Path(out_dir).resolve()
    sources = [Path(s).resolve() for s in sources]
    params = _absolute(params)
    scratch = None
    if params.get("data"):
        from cohortlab.lab import Lab
        from cohortlab.loaders import LoadError
        from cohortlab.loaders.folder import load_world, world_hints

        if keep_data:
            db_path = out_dir / DB_NAME
        else:  # all the raw data (personal data included): never left next to index.html
            scratch = make_temp_dir("report")
            db_path = Path(scratch.name) / DB_NAME
        t0 = time.monotonic()
        say(f"loading {params['data']} into {db_path} ...")
        try:
            try:
                with Lab(str(db_path)) as lab:
                    load_world(lab, params["data"], progress=False)
            except (OSError, ValueError, LoadError) as e:
                raise ReportError(f"cannot load {params['data']}: {e}") from e
            say(f"  loaded in {time.monotonic() - t0:.1f} s")
            if cohorts is not None and params.get("engine", "duckdb") == "duckdb":
                check_database(db_path, cohorts)
            if any(s.stem == "eit_migration" and s.parent == NOTEBOOKS_DIR.resolve() for s in sources):
                check_migration_window(db_path, params)
        except BaseException:  # a ReportError, Ctrl-C: no report, no folder (nor half-loaded data) left behind
            _remove_unused_output(out_dir, db_path)
            raise
        params["db"] = str(db_path)
        hints = world_hints(params.pop("data"))
        if hints.get("switch") and "plans" not in params:
            # a world that already switched its EIT: study that switch, and validate the
            # prediction of "switch only" against the world's own (later) exports
            params.setdefault("switch", hints["switch"])
            if hints.get("as_of") and str(hints["switch"]) < str(hints["as_of"]):
                params.setdefault("observed_db", str(db_path))
                params.setdefault("validate_plan", "switch only")

    skipped: dict[int, NotebookResult] = {}
    if optional:
        for j, src in enumerate(sources):
            why = not_applicable(src.stem, params)
            if why:
                say(f"[{j + 1}/{len(sources)}] {src.stem}: not run: {why}")
                skipped[j] = NotebookResult(name=src.stem, source=src, ipynb=out_dir / src.stem / src.name,
                                            skipped=why)
        readers = {j for j in readers if j not in skipped}

    def one(i: int, src: Path, extra: Mapping[str, Any] | None = None) -> NotebookResult:
        say(f"[{i}/{len(sources)}] {src.stem} ...")
        r = run_notebook(src, out_dir, {**params, **(extra or {})}, kernel=kernel, page_source=source,
                         env=env.get(src.stem))
        if _STOPPING.is_set():  # interrupted: its kernel was stopped, not a failure to report
            return r
        if r.ok:
            say(f"[{i}/{len(sources)}] {src.stem}: ok ({r.seconds:.1f} s)")
        else:
            say(f"[{i}/{len(sources)}] {src.stem}: FAILED in {r.error}")
        return r

    sims_dir = None

    def shared() -> dict[str, Any]:
        """The shared simulations, computed while the notebooks that do not read them run:
        ``{"simulations": path}`` for the others, or ``{}`` (each simulates on its own)."""
        nonlocal sims_dir
        from cohortlab.report.shared import PARAMETER, SCRATCH_NAME, share_in_subprocess

        sims_dir = make_temp_dir("report-sims")  # member data: never kept
        say("simulating each cohort once for the notebooks that start from it ...")
        try:
            done = share_in_subprocess(params["db"], Path(sims_dir.name) / SCRATCH_NAME, cohorts=params.get("cohorts"),
                                       as_of=params.get("as_of"), settings=params.get("settings"),
                                       env=env.get(SHARED_SIMULATIONS))
        except Exception as e:  # noqa: BLE001 - the notebooks then simulate (and report any problem) on their own
            say(f"  not shared ({type(e).__name__}: {e}): each notebook simulates on its own")
            return {}
        parts = [f"{len(done.simulated)} simulated"] + ([f"{len(done.reused)} stored in the database"]
                                                        if done.reused else [])
        say(f"  {', '.join(parts)} in {done.seconds:.1f} s")
        return {PARAMETER: str(done.path)}

    # two Spark sessions at once would compete for the same local cores and memory
    run = [j for j in range(len(sources)) if j not in skipped]
    workers = 1 if params.get("engine") == "spark" else max(1, min(parallel_notebooks(), len(run)))
    # each process's memory share and threads, given to it alone (this process's environment is
    # left as it is: two kernels start from it at once)
    env = kernel_settings([sources[j].stem for j in run] + ([SHARED_SIMULATIONS] if readers else []), workers)
    # two at a time: the longest notebook starts first, so that it overlaps the others rather than
    # running alone at the end; the notebooks that read the shared simulations start once they exist
    order = sorted(run, key=lambda j: (j in readers, _LONGEST_FIRST.get(sources[j].stem, len(_LONGEST_FIRST))))
    try:
        if workers <= 1:
            extra = shared() if readers else {}
            results = {j: one(j + 1, sources[j], extra if j in readers else None) for j in run}
        else:  # each notebook is its own kernel process reading the database read-only
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(max_workers=workers)
            try:
                futures = {j: pool.submit(one, j + 1, sources[j]) for j in order if j not in readers}
                if readers:  # meanwhile, in this process
                    extra = shared()
                    futures.update({j: pool.submit(one, j + 1, sources[j], extra) for j in order if j in readers})
                results = {j: f.result() for j, f in futures.items()}
            except BaseException:  # Ctrl-C: no notebook starts any more, the running ones stop
                pool.shutdown(wait=False, cancel_futures=True)
                stop_kernels()
                pool.shutdown(wait=True)  # their threads end as soon as their kernel is gone
                raise
            pool.shutdown()
        results = [results[j] if j in results else skipped[j] for j in range(len(sources))]  # in the order asked for
    except BaseException as e:
        from cohortlab.errors import is_interrupt

        if is_interrupt(e):
            stop_kernels()  # (one notebook at a time: nbclient stops its kernel itself, normally)
            if (out_dir / MARKER).exists():  # an interrupted report: no half of one left
                shutil.rmtree(out_dir, ignore_errors=True)
        raise
    finally:
        if _STOPPING.is_set():
            import logging

            _STOPPING.clear()
            logging.getLogger("papermill").disabled = False
        if scratch is not None:
            scratch.cleanup()
        if sims_dir is not None:
            sims_dir.cleanup()
    index = write_index(out_dir, results, {**params, "source": source})
    return ReportResult(out_dir=out_dir, index_html=index, notebooks=results)
