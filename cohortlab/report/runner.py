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

import importlib.resources
import json
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from cohortlab.engines import ENGINES
from cohortlab.errors import ReportError, is_disk_full, is_interrupt
from cohortlab.privacy import masked_text
from cohortlab.report import QUOTED_LINE
from cohortlab.report.kernels import (
    _STOPPING,
    KERNEL_START_RETRIES,
    kernel_did_not_start,
    kernel_manager_with,
    kernel_name,
    papermill_local_files_without_chdir,
    stop_kernels,
)
from cohortlab.report.output import (REPORTS_ROOT, export_html, prepare_output_dir, releasing_claims,
                                     remove_unused_output)
from cohortlab.report.pages import MARKER, decorate_page, left_out_cohorts, write_index
from cohortlab.report.parameters import absolute_paths, check_parameters, declared_parameters
from cohortlab.report.scheduling import SHARED_SIMULATIONS, Shares, longest_first, parallel_notebooks
from cohortlab.tempdirs import make_temp_dir, no_temp_dir_problem, require_temp_dir

NOTEBOOKS_DIR = Path(str(importlib.resources.files("cohortlab") / "notebooks"))  # package data
DEFAULT_NOTEBOOKS = ("match_rates", "identity_gaps", "sync_timeline", "eit_migration")
DB_NAME = "data.duckdb"

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
        msg += f"{QUOTED_LINE}{line[:160]}"
    return msg, idx, exc.ename, line


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
    shown_values: Mapping[str, str] | None = None,
) -> NotebookResult:
    """Execute one notebook into ``out_dir/<name>/`` (``<name>.ipynb``, ``<name>.html``,
    ``metrics.json`` written by the notebook). Parameters the notebook does not declare are
    dropped; ``output_dir`` is always set to the notebook's folder. ``env``: variables its kernel
    starts with, on top of this process's environment (which is not changed). ``shown_values``:
    the parameters' texts that are personal data, each with the pseudonym the pages show
    (:func:`shown_parameter_values`), written so into the executed notebook's parameters."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    papermill_local_files_without_chdir()

    source = Path(source).resolve()
    name = source.stem
    nb_dir = (Path(out_dir) / name).resolve()
    nb_dir.mkdir(parents=True, exist_ok=True)
    declared = declared_parameters(source)
    from cohortlab.report.parameters import plain

    # plain values only (checked again here for callers of run_notebook): papermill writes them as
    # Python literals into the injected cell, and anything else (bytes...) would become code text
    params = {k: plain(v, k) for k, v in absolute_paths(parameters or {}).items() if k in declared}
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
                kernel_manager_class=kernel_manager_with(env or {}, cwd=nb_dir),
            )
        except PapermillExecutionError as e:
            # shown on the page's header, the index and the terminal: an email or phone number an
            # error quotes is masked there too (cohortlab's own errors mask them where raised)
            result.error, result.cell_index, result.ename, result.failing_line = _describe_failure(e)
            result.error, result.evalue = masked_text(result.error), masked_text(str(e.evalue))
        except Exception as e:  # kernel died, notebook unreadable, ...
            if is_disk_full(e):  # the executed notebook could not be saved (cut off): stops the report
                raise
            if kernel_did_not_start(e) and attempt < KERNEL_START_RETRIES:
                # two kernels starting at once can pick the same free port (jupyter_client picks
                # ports, then the kernel binds them): the loser dies before kernel_info; a new
                # kernel picks new ports. No cell has run, so nothing is repeated.
                time.sleep(0.5 * (attempt + 1))
                continue
            result.error = masked_text(f"{type(e).__name__}: {e}")
        break
    result.seconds = time.monotonic() - t0
    # the paths as the pages show their names: an email or a phone number in them masked (docs/reports.md#shown-paths)
    show = bool((parameters or {}).get("show_personal_data"))
    shown_paths = {} if show else masked_path_values(params)
    if (shown_values or shown_paths) and result.ipynb.exists():
        _redact_parameters(result.ipynb, {**(shown_values or {}), **shown_paths}, paths=not show)
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


def _without_unselected(params: dict[str, Any], sources: list[Path], say: Callable[[str], None]) -> dict[str, Any]:
    """``params`` without those only a package notebook this run does not run takes, each said: a
    parameters file shared by scheduled runs of different notebooks (``since`` for sync_timeline)
    made a run of the others fail with "unknown parameter". Only when every notebook of the run
    is the package's (another one may take any parameter)."""
    chosen = {Path(s).stem for s in sources}
    taken: set[str] = set()
    for s in sources:
        taken |= set(declared_parameters(s))
    unknown = sorted(set(params) - taken)
    rest = {n: set(declared_parameters(notebook_path(n))) for n in DEFAULT_NOTEBOOKS if n not in chosen and unknown}
    for name in unknown:
        others = [n for n, declared in rest.items() if name in declared]
        if others:
            params.pop(name)
            say(f"parameter {name} is taken by {' and '.join(others)} only, which this run does not run: not used")
    return params


def shown_parameter_values(params: Mapping[str, Any]) -> dict[str, str]:
    """``{text: pseudonym}`` for the texts among the parameters' values (a cohort named after an
    email, ``-p cohorts=[...]``) that are personal data, as the pages show them (the database's
    pseudonyms; none with ``show_personal_data``, nor for the paths). Their executed notebooks
    kept them in clear in the injected parameters cell while every page showed the pseudonym."""
    from cohortlab.lab import Lab
    from cohortlab.privacy import Redactor
    from cohortlab.report.notebook import _SHOWN_PATHS

    if params.get("show_personal_data") or not params.get("db") or params.get("engine", "duckdb") != "duckdb":
        return {}
    texts: set[str] = set()

    def walk(v: Any) -> None:
        if isinstance(v, str):
            texts.add(v)
        elif isinstance(v, Mapping):
            for x in v.values():
                walk(x)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)

    for k, v in params.items():
        if k not in _SHOWN_PATHS and k not in ("db", "data", "output_dir", "simulations"):
            walk(v)
    if not texts:
        return {}
    with Lab(str(params["db"]), read_only=True) as lab:
        redactor = Redactor.for_engine(lab.engine)
        redactor.prime(texts)
        shown = {t: str(redactor.value(t)) for t in texts}
    return {t: v for t, v in shown.items() if v != t}


def masked_path_values(params: Mapping[str, Any]) -> dict[str, str]:
    """``{path: as shown}`` for the path parameters (:data:`PATH_PARAMETERS`, as the notebook
    gets them: absolute) that hold an email or a phone number, each with these masked as the
    pages show a path (:func:`cohortlab.privacy.masked_path`:
    ``/srv/<email>/lab <phone number>.duckdb``). The executed notebook kept them in clear in
    its injected parameters cell and papermill's record, while the page header masked them; the
    rest of the absolute path is kept, so that a notebook whose paths hold nobody's data can be
    run again as it ran (docs/reports.md#shown-paths)."""
    from cohortlab.privacy import masked_path
    from cohortlab.report.parameters import PATH_PARAMETERS

    out: dict[str, str] = {}

    def walk(v: Any) -> None:
        if isinstance(v, str) and v:
            shown = masked_path(v)
            if shown != v:
                out[v] = shown
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)

    for k in PATH_PARAMETERS:
        walk(params.get(k))
    return out


def _redact_parameters(ipynb: Path, shown: Mapping[str, str], *, paths: bool = False) -> None:
    """Write ``shown``'s pseudonyms (or masked paths) over the personal texts of the executed
    notebook's injected parameters cell and of papermill's record of its parameters; ``paths``:
    also mask the paths papermill records (``input_path``, ``output_path``), as
    :func:`masked_path_values` masks a path parameter."""
    import nbformat
    from papermill.translators import PythonTranslator

    from cohortlab.privacy import masked_path

    nb = nbformat.read(str(ipynb), as_version=4)

    def swap(v: Any) -> Any:
        if isinstance(v, str):
            return shown.get(v, v)
        if isinstance(v, list):
            return [swap(x) for x in v]
        if isinstance(v, dict):
            return {k: swap(x) for k, x in v.items()}
        return v

    longest_first = sorted(shown, key=len, reverse=True)
    for cell in nb.cells:
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            for text in longest_first:  # as papermill writes a str (its escapes: "+44\u20137700"), a repr, JSON
                for spelled in (PythonTranslator.translate_str(text), repr(text), json.dumps(text)):
                    cell.source = cell.source.replace(spelled, json.dumps(shown[text]))
    record = nb.metadata.get("papermill", {})
    if "parameters" in record:
        record["parameters"] = swap(record["parameters"])
    for key in ("input_path", "output_path") if paths else ():
        if isinstance(record.get(key), str):
            record[key] = masked_path(record[key])
    nbformat.write(nb, str(ipynb))


@releasing_claims  # the folder this run claims, held until it ends
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
    timezone: str | None = None,
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

    ``timezone`` (with ``data``, or the parameter ``observed_data``): the Mixpanel project's time
    zone, whose wall clock the folders' raw events are written in (a project created before 2023:
    docs/loading.md#project-time-zone); the parameter ``timezone`` is the same.
    """
    say = progress or (lambda _m: None)
    sources = [notebook_path(n) for n in (notebooks or DEFAULT_NOTEBOOKS)]
    # the package's notebooks only: their parameters are known, and they read settings, cohorts and plans
    ours = all(Path(s).resolve().parent == NOTEBOOKS_DIR.resolve() for s in sources)
    params = _without_unselected(dict(params or {}), sources, say) if ours else dict(params or {})
    params = check_parameters(params, sources)  # data, never code: before anything runs
    if engine is not None:
        if engine not in ENGINES:
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
        raise ReportError("give either a database (--db, parameter db) or a folder of exports (--data, parameter "
                          "data), not both")
    if not params.get("db") and not params.get("data"):
        raise ReportError("nothing to report on: give a database (--db) or a data folder (--data)")
    if params.get("db") and not Path(params["db"]).exists():
        raise ReportError(f"{params['db']}: no such database (load data first with `cohortlab load --db "
                          f"{params['db']} ...`, or give --data, a folder of exports)")
    if params.get("data") and not Path(params["data"]).is_dir():
        raise ReportError(f"{params['data']}: no such folder")
    for key, what in (("observed_db", "database"), ("observed_data", "folder")):  # the EIT page's validation
        given = params.get(key)
        if isinstance(given, (str, os.PathLike)) and given and not (
                Path(given).exists() if key == "observed_db" else Path(given).is_dir()):
            raise ReportError(f"{key}: {given}: no such {what} (the exports taken after the switch, which the "
                              "EIT page validates the plan against)")
        if key == "observed_db" and isinstance(given, (str, os.PathLike)) and given:
            # opened as the page will open it, before any notebook: a file that is no DuckDB database,
            # or one holding a view (docs/loading.md#untrusted-database), failed the EIT page half-way
            from cohortlab.errors import DatabaseError
            from cohortlab.lab import Lab

            try:
                Lab(str(given), read_only=True).close()
            except DatabaseError as e:
                raise ReportError(f"observed_db: {e}") from None
    if timezone is None:  # -p timezone=ZONE, or a parameters file's
        timezone = params.get("timezone")
    if timezone is not None:
        if not params.get("data") and not params.get("observed_data"):
            raise ReportError("--timezone is the time zone of a data folder's raw events (--data, or the EIT "
                              "page's -p observed_data=DIR); a database holds its events as they were loaded "
                              "(cohortlab load -o timezone=ZONE)")
        from cohortlab.loaders.time_zone import pop_timezone

        try:
            timezone = pop_timezone("--timezone", {"timezone": timezone})
        except ValueError as e:
            raise ReportError(str(e)) from None
        params["timezone"] = timezone  # the notebooks load observed_data with it (db wins over data there)
    try:  # a key the kernels would each refuse (COHORTLAB_PSEUDONYM_KEY): said once, before any folder
        from cohortlab.privacy import configured_key

        configured_key()
    except ValueError as e:
        raise ReportError(str(e)) from None
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
    if ours:
        _check_settings(params.get("settings"))
        if "eit_migration" in seen:
            _check_plans(params)
    cohorts = params.get("cohorts") if ours else None
    if params.get("db") and params.get("engine", "duckdb") == "duckdb":  # before any folder or kernel
        check_database(params["db"], cohorts)
        if ours:
            late = check_times(params["db"], params, cohorts)
            if late:
                say(late)
        if ours and "eit_migration" in seen:
            check_migration_window(params["db"], params)
    kernel = kernel or kernel_name()
    # what the run reads: never inside the folder --overwrite removes (a report's own data.duckdb)
    inputs = {what: params.get(key) for what, key in (("--db", "db"), ("--data", "data"), ("observed_db", "observed_db"),
                                                       ("observed_data", "observed_data"), ("settings", "settings"))
              if isinstance(params.get(key), (str, os.PathLike))}
    inputs.update({f"notebook {Path(src).name}": src for src in sources})
    out_dir = prepare_output_dir(out, overwrite=overwrite, root=root, inputs=inputs, hold=True)
    say(f"report folder: {out_dir}")
    # the notebooks that read the shared simulations (by position); shared when two or more do
    readers = {j for j, src in enumerate(sources) if _reads_shared(Path(src))}
    share = share_simulations and params.get("engine", "duckdb") == "duckdb" and len(readers) >= 2
    # asked not to share (docs/reports.md#report-command): say when nothing stored stands in for it;
    # a single notebook simulating on its own is the normal case, not news for every cron log
    if params.get("db") and params.get("engine", "duckdb") == "duckdb" and not share_simulations and len(readers) >= 2:
        hint = stored_simulations_hint(params["db"])
        if hint:
            say(hint)
    source = str(Path(params.get("data") or params.get("db")).expanduser().resolve())  # as the pages show it: pages.shown_path
    return _run_all(sources, out_dir, params, source, kernel, say, keep_data, readers if share else set(),
                    optional=notebooks is None, cohorts=cohorts, timezone=timezone)


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


def _eit_before_is_not_default(timeline: Any) -> bool:
    """Whether a world's EIT ``timeline`` (:func:`cohortlab.loaders.folder.world_hints`) starts with
    another EIT than the settings' default (mParticle's, ``customer_id``)."""
    from cohortlab.settings import SyncSettings

    default = SyncSettings().eit_timeline[0].eit
    return bool(timeline) and timeline[0].get("since") is None and timeline[0].get("eit") != default


def _check_plans(params: Mapping[str, Any]) -> None:
    """The EIT page's plan parameters (:func:`cohortlab.report.insights.check_plan_parameters`),
    before any folder or kernel: a typo made a folder and then failed inside the notebook."""
    from cohortlab.errors import SettingsError
    from cohortlab.report.insights import check_plan_parameters

    try:
        check_plan_parameters(params.get("plans"), params.get("switch"), params.get("validate_plan"))
    except SettingsError as e:
        raise ReportError(str(e)) from None


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


def check_times(db: str | os.PathLike, params: Mapping[str, Any], cohorts: Any = None) -> str | None:
    """A ReportError, before any notebook runs, for the times the pages would show nothing at: an
    ``as_of`` before the first membership data of every cohort of the report (each page said "no
    cohort members" and the run exited 0), and a ``since`` after the ``as_of`` (else after the
    cohorts' latest data), when no sync run can follow it (the sync page failed after the others
    had run; with ``--overwrite``, its failed card replaced a good report). The sync page checks
    ``since`` against its last run exactly (:func:`cohortlab.report.insights.check_since`).
    Returns a ``note:`` line for an ``as_of`` after every cohort's latest data (the pages show
    that data's figures under the later time: a scheduler passing a wrong date is told), else None."""
    as_of, since = params.get("as_of"), params.get("since")
    if as_of is None and since is None:
        return None
    from cohortlab.errors import CohortlabError
    from cohortlab.lab import Lab
    from cohortlab.simulation.membership import cohorts_with_membership, find_cohort
    from cohortlab.times import format_minute, naive_utc, parse_time

    try:
        at = naive_utc(parse_time(as_of, "as_of")) if as_of is not None else None
        t0 = naive_utc(parse_time(since, "since")) if since is not None else None
        with Lab(str(db), read_only=True) as lab:
            names = ([cohorts] if isinstance(cohorts, str) else list(cohorts)) if cohorts else \
                cohorts_with_membership(lab.engine)
            refs = [find_cohort(lab.engine, str(n)) for n in names]
    except (CohortlabError, ValueError):  # a time or a cohort the parameter checks let by: the notebooks say it
        return None
    firsts = [naive_utc(r.first_time) for r in refs if r.first_time is not None]
    lasts = [naive_utc(r.last_time) for r in refs if r.last_time is not None]
    if at is not None and firsts and at < min(firsts):
        raise ReportError(f"as_of: {format_minute(at)} is before the first membership data of every cohort "
                          f"(the earliest: {format_minute(min(firsts))}): no cohort has members then; give a later "
                          "time, or none (each cohort's latest data)")
    end, what = (at, "as_of") if at is not None else (max(lasts) if lasts else None, "the cohorts' latest data")
    if t0 is not None and end is not None and t0 > end:
        raise ReportError(f"since: {format_minute(t0)} is after {what} ({format_minute(end)}): no sync run to "
                          "show; give an earlier time, or none")
    if at is not None and lasts and at > max(lasts):
        return (f"note: as_of {format_minute(at)} is after the cohorts' latest data ({format_minute(max(lasts))}): "
                "the pages show that data's figures, as of the later time")
    return None


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
    return _applies(name, params)[0]


def _applies(name: str, params: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """:func:`not_applicable`, and the parameters the runner gives the notebook from what it read
    to decide: the data's switch (``data_switch``, ISO text), which the EIT page would otherwise
    read again from every event (0.6 s of its kernel at 1M users, on the report's longest path)."""
    if name != "eit_migration" or params.get("plans") or params.get("switch") \
            or params.get("engine", "duckdb") != "duckdb":
        return None, {}
    from cohortlab.lab import Lab
    from cohortlab.migration.switch import NO_SWITCH, data_switch, settings_switch

    if settings_switch(params.get("settings")) is not None:
        return None, {}
    with Lab(str(params["db"]), read_only=True) as lab:
        found = data_switch(lab.engine)
    if found is not None:
        return None, {"data_switch": found.isoformat()}
    return (f"no EIT switch to study: {NO_SWITCH}. Give -p switch=YYYY-MM-DD (the day to study) "
            "or -p plans=PLANS.yaml"), {}


def _remove_stopped(out_dir: Path) -> None:
    """The folder of a report stopped by Ctrl-C or a full disk (a notebook, its page or
    ``index.html`` cut off): no half of a report is left, which the next run into the same
    ``--out`` refused ("already exists"); with ``--overwrite`` the previous one is put back
    (:func:`~cohortlab.report.output.releasing_claims`)."""
    if (out_dir / MARKER).exists():
        shutil.rmtree(out_dir, ignore_errors=True)


def _closing_event_loop(fn, *args):
    """``fn(*args)`` in a worker thread, then the thread's event loop closed: the kernel client
    of a notebook (nbclient, through jupyter_core's ``run_sync``) makes one loop per thread and
    never closes it, so each report left two loops and their selectors' file descriptors to the
    garbage collector (and a ResourceWarning wherever it ran). The next notebook in the thread
    gets a new loop."""
    import asyncio

    try:
        return fn(*args)
    finally:
        try:  # the thread's current loop (a worker thread without one: RuntimeError, no warning)
            loop = asyncio.get_event_loop()
        except RuntimeError:  # this thread never made one
            loop = None
        if loop is not None and not loop.is_running() and not loop.is_closed():
            loop.close()
            asyncio.set_event_loop(None)


def _run_all(*args, **kwargs) -> ReportResult:
    """:func:`_run_notebooks`, and the temporary folders it makes (the loaded copy of a data
    folder, the shared simulations: member data) removed on every way out, before an error
    reaches the caller: not when the error is collected (in JupyterLab the last error, and with
    it the frames that hold the folders, lives on until the next one)."""
    temps: list = []
    try:
        return _run_notebooks(*args, temps=temps, **kwargs)
    finally:
        for temp in temps:
            temp.cleanup()


def _run_notebooks(sources, out_dir: Path, params: dict[str, Any], source: str, kernel: str, say,
                   keep_data: bool, readers: set[int] = frozenset(), *, optional: bool = False,
                   cohorts: Any = None, temps: list, timezone: str | None = None) -> ReportResult:
    """Run the notebooks ``sources``; those at the positions ``readers`` read the simulations
    shared by the runner (none: every notebook simulates on its own). ``optional``: the
    notebooks were not asked for by name, so one that does not apply to the data
    (:func:`not_applicable`) is not run; its card says why. ``cohorts``: the cohorts that must
    exist in the data loaded from ``params["data"]`` (:func:`check_database`); ``timezone``: the zone
    of its raw events (:func:`~cohortlab.loaders.folder.load_world`). Each temporary
    folder made is added to ``temps`` as soon as it exists (:func:`_run_all` removes them)."""
    # papermill's ``cwd=`` changes the directory of the whole process while a notebook runs, and two
    # run at once: every path is made absolute here, before any notebook starts
    out_dir = Path(out_dir).resolve()
    sources = [Path(s).resolve() for s in sources]
    params = absolute_paths(params)
    scratch = None
    if params.get("data"):
        from cohortlab.lab import Lab
        from cohortlab.loaders import LoadError
        from cohortlab.loaders.folder import load_world, world_hints

        if keep_data:
            db_path = out_dir / DB_NAME
        else:  # all the raw data (personal data included): never left next to index.html
            scratch = make_temp_dir("report")
            temps.append(scratch)
            db_path = Path(scratch.name) / DB_NAME
        t0 = time.monotonic()
        say(f"loading {params['data']} into {db_path} ...")
        try:
            try:
                with Lab(str(db_path)) as lab:
                    world = load_world(lab, params["data"], progress=False, timezone=timezone)
            except (OSError, ValueError, LoadError) as e:
                raise ReportError(f"cannot load {params['data']}: {e}") from e
            say(f"  loaded in {time.monotonic() - t0:.1f} s")
            if world.ignored or world.linked_outside:  # files no loader read: said, not skipped silently
                for line in world.ignored_text().splitlines():
                    say(line)
            for w in world.warnings:  # what the loads warned about (cohortlab load prints them too)
                say(f"  warning: {w}")
            if cohorts is not None and params.get("engine", "duckdb") == "duckdb":
                check_database(db_path, cohorts)
            if any(s.stem == "eit_migration" and s.parent == NOTEBOOKS_DIR.resolve() for s in sources):
                check_migration_window(db_path, params)
        except BaseException:  # a ReportError, Ctrl-C: no report, no folder (nor half-loaded data) left behind
            remove_unused_output(out_dir, db_path)
            raise
        params["db"] = str(db_path)
        hints = world_hints(params.pop("data"))
        if hints.get("switch") and "plans" not in params:
            # a world that already switched its EIT: study that switch, and validate the
            # prediction of "switch only" against the world's own (later) exports
            if params.get("switch") is None:  # the page says where it came from: not a parameter given
                params["switch"], params["switch_from"] = hints["switch"], "manifest"
            # the world's EIT before the switch when it is not the default (customer_id): the
            # standard plans key the activity before it as the world's Mixpanel held it (an
            # email-keyed world read as customer_id-keyed predicted 60.8% where it observed 85.1%)
            if params.get("settings") is None and _eit_before_is_not_default(hints.get("eit_timeline")):
                params["world_eit"] = hints["eit_timeline"][0]["eit"]
            if hints.get("as_of") and str(hints["switch"]) < str(hints["as_of"]):
                params.setdefault("observed_db", str(db_path))
                params.setdefault("validate_plan", "switch only")

    skipped: dict[int, NotebookResult] = {}
    given: dict[int, dict[str, Any]] = {}  # parameters the runner found for a notebook while deciding
    # [k/n]: k notebooks done (run or not), in the order they finish; the longest starts first
    finished, finished_lock = iter(range(1, len(sources) + 1)), threading.Lock()

    def counted(text: str) -> str:
        with finished_lock:
            return f"[{next(finished)}/{len(sources)}] {text}"

    if optional:
        for j, src in enumerate(sources):
            why, given[j] = _applies(src.stem, params)
            if why:
                say(counted(f"{src.stem}: not run: {why}"))
                skipped[j] = NotebookResult(name=src.stem, source=src, ipynb=out_dir / src.stem / src.name,
                                            skipped=why)
        readers = {j for j in readers if j not in skipped}

    shown_values = shown_parameter_values(params)  # the personal texts among them, as the pages show them

    def one(j: int, extra: Mapping[str, Any] | None = None) -> NotebookResult:
        src = sources[j]
        say(f"{src.stem} ...")
        with shares.held(src.stem) as env:  # its memory share: what the processes running now leave
            r = run_notebook(src, out_dir, {**params, **given.get(j, {}), **(extra or {})}, kernel=kernel,
                             page_source=source, env=env, shown_values=shown_values)
        if _STOPPING.is_set():  # interrupted: its kernel was stopped, not a failure to report
            return r
        if r.ok:
            say(counted(f"{src.stem}: ok ({r.seconds:.1f} s)"))
        else:
            say(counted(f"{src.stem}: FAILED in {str(r.error).partition(QUOTED_LINE)[0]}"))  # quoted: at the end
        return r

    sims_dir = None

    def shared() -> dict[str, Any]:
        """The shared simulations, computed while the notebooks that do not read them run:
        ``{"simulations": path}`` for the others, or ``{}`` (each simulates on its own)."""
        nonlocal sims_dir
        from cohortlab.report.shared import PARAMETER, SCRATCH_NAME, share_in_subprocess

        sims_dir = make_temp_dir("report-sims")  # member data: never kept
        temps.append(sims_dir)
        say("simulating each cohort once for the notebooks that start from it ...")
        try:
            with shares.held(SHARED_SIMULATIONS) as env:
                done = share_in_subprocess(params["db"], Path(sims_dir.name) / SCRATCH_NAME,
                                           cohorts=params.get("cohorts"), as_of=params.get("as_of"),
                                           settings=params.get("settings"), env=env)
        except Exception as e:  # noqa: BLE001 - the notebooks then simulate (and report any problem) on their own
            say(f"shared simulations: not shared ({type(e).__name__}: {e}): each notebook simulates on its own")
            return {}
        parts = [f"{len(done.simulated)} simulated"] + ([f"{len(done.reused)} stored in the database"]
                                                        if done.reused else [])
        # named: a notebook's start line may come between this and the line that announced it
        say(f"shared simulations: {', '.join(parts)} in {done.seconds:.1f} s")
        return {PARAMETER: str(done.path)}

    # two Spark sessions at once would compete for the same local cores and memory
    run = [j for j in range(len(sources)) if j not in skipped]
    workers = 1 if params.get("engine") == "spark" else max(1, min(parallel_notebooks(), len(run)))
    # each process's memory share and threads, given to it alone when it starts (this process's
    # environment is left as it is: two kernels start from it at once); the sharing process, run from
    # this thread beside the notebooks that do not read it, waits for a free slot as they do
    shares = Shares([sources[j].stem for j in run] + ([SHARED_SIMULATIONS] if readers else []), workers)
    # two at a time: the longest notebook starts first, so that it overlaps the others rather than
    # running alone at the end; the notebooks that read the shared simulations start once they exist
    order = sorted(run, key=lambda j: (j in readers, longest_first(sources[j].stem)))
    try:
        if workers <= 1:
            extra = shared() if readers else {}
            results = {j: one(j, extra if j in readers else None) for j in run}
        else:  # each notebook is its own kernel process reading the database read-only
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(max_workers=workers)
            try:
                futures = {j: pool.submit(_closing_event_loop, one, j) for j in order if j not in readers}
                if readers:  # meanwhile, in this process
                    extra = shared()
                    futures.update({j: pool.submit(_closing_event_loop, one, j, extra) for j in order if j in readers})
                results = {j: f.result() for j, f in futures.items()}
            except BaseException:  # Ctrl-C: no notebook starts any more, the running ones stop
                pool.shutdown(wait=False, cancel_futures=True)
                stop_kernels()
                pool.shutdown(wait=True)  # their threads end as soon as their kernel is gone
                raise
            pool.shutdown()
        results = [results[j] if j in results else skipped[j] for j in range(len(sources))]  # in the order asked for
    except BaseException as e:
        if is_interrupt(e) or is_disk_full(e):
            stop_kernels()  # (one notebook at a time: nbclient stops its kernel itself, normally)
            _remove_stopped(out_dir)
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
    try:
        index = write_index(out_dir, results, {**params, "source": source})
    except BaseException as e:
        if is_interrupt(e) or is_disk_full(e):
            _remove_stopped(out_dir)
        raise
    left_out = left_out_cohorts(results)
    if left_out:  # said, as on the index page: a report of every cohort that covers fewer
        say("not in the report: " + "; ".join(f"{c} ({why})" for c, why in left_out))
    return ReportResult(out_dir=out_dir, index_html=index, notebooks=results)
