"""``cohortlab report``, ``cohortlab demo`` and ``cohortlab lab``."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import click

from cohortlab.cli.app import _set_lock_wait, engine_options, fail, main, refuse_truncated  # engine_options: --engine duckdb|spark
from cohortlab.escaping import one_line
from cohortlab.report import QUOTED_LINE
from cohortlab.report.output import releasing_claims


def _say(message: str) -> None:
    click.echo(one_line(message), err=True)  # one line each: a notebook's name or error may quote data


def _finish(result) -> None:
    click.echo(one_line(str(result.index_html)))
    if not result.ok:
        for r in result.failed:
            # the error, then the cell's failing line quoted under it ("    > ..."): each its own
            # line, escaped (one_line wrote the line break between them as "\n"); a line break
            # of the error's own text (a name from data) stays escaped: it forges no line
            error, quoted, line = str(r.error).rpartition(QUOTED_LINE) if QUOTED_LINE in str(r.error) \
                else (str(r.error), "", "")
            click.echo(one_line(f"error: notebook {r.name}.ipynb failed in {error}"), err=True)
            if quoted:
                click.echo(one_line(f"{QUOTED_LINE.lstrip(chr(10))}{line}"), err=True)
            click.echo(one_line(f"       executed notebook with the traceback: {r.ipynb}"), err=True)
        sys.exit(1)


@main.command("report", short_help="Run the notebooks into HTML reports and an index page.")
@click.option("--db", type=click.Path(), help="DuckDB database with loaded exports (with --engine spark, also a "
                                             "folder written by `cohortlab export`).")
@click.option("--data", type=click.Path(file_okay=False),
              help="Folder of exports (mixpanel/..., mparticle/...), e.g. a `cohortlab synth` world; loaded once.")
@click.option("--timezone", default=None, metavar="ZONE",
              help="With --data (or -p observed_data=DIR): the Mixpanel project's time zone (e.g. "
                   "America/Los_Angeles), for a project created before 2023, whose raw export writes times as that "
                   "zone's wall clock; over what fetch.json records (docs/loading.md#project-time-zone).")
@click.option("--params", "params_file", type=click.Path(dir_okay=False, exists=True),
              help="YAML file of notebook parameters (cohorts, as_of, settings, ...).")
@click.option("-p", "--param", "param_items", multiple=True, metavar="KEY=VALUE",
              help="One notebook parameter (repeatable; VALUE is read as YAML), over --params, e.g. "
                   "-p as_of=2026-03-01T00:00:00Z -p 'cohorts=[Power Users]'.")
@click.option("--notebooks", "notebooks", multiple=True,
              help="Notebook name or .ipynb path (repeatable, or comma-separated). Default: all four.")
@click.option("--out", type=click.Path(file_okay=False),
              help="Output folder. Default: reports/<YYYY-MM-DD>[-N] by run date.")
@click.option("--overwrite", is_flag=True, help="Replace the output folder if it already exists.")
@click.option("--show-personal-data", is_flag=True, default=None,
              help="Show emails/phone numbers in the reports (default: replaced by stable pseudonyms).")
@click.option("--keep-data", is_flag=True,
              help="With --data: keep the loaded database as data.duckdb in the report folder "
                   "(it holds all the raw data, personal data included; default: a temporary file, removed).")
@click.option("--kernel", default=None, help="Jupyter kernel (default: cohortlab if installed, else python3).")
@click.option("--share-simulations/--no-share-simulations", "share_simulations", default=True, show_default=True,
              help="Simulate each cohort once, before the notebooks that start from it run, into a temporary "
                   "file they read (the database is only read); --no-share-simulations: each notebook simulates "
                   "on its own.")
@click.option("--wait", "lock_wait", type=click.FloatRange(min=0, max=24 * 3600), default=None, expose_value=False,
              callback=_set_lock_wait, envvar="COHORTLAB_LOCK_WAIT",
              help="Seconds to wait when another process is using the database (default 5).")
@engine_options  # --engine duckdb|spark, --spark-master (Spark scale-out)
def report_cmd(db, data, timezone, params_file, param_items, notebooks, out, overwrite, show_personal_data, keep_data, kernel,
               share_simulations, engine, spark_master):
    """Run the notebooks with papermill into HTML reports (no code), metrics.json and index.html.

    Exits non-zero, naming the notebook and the cell, when a notebook fails.
    """
    from cohortlab.report.kernels import without_iri_format_checks
    from cohortlab.report.parameters import load_params, parse_param_items
    from cohortlab.report.runner import ReportError, run_report

    without_iri_format_checks()  # 1 s of start-up this process does not need

    names = [n.strip() for item in notebooks for n in item.split(",") if n.strip()] or None
    if keep_data and not data:
        fail("--keep-data keeps the database loaded from --data: give --data (a --db is never copied)")
    try:
        params = {**load_params(params_file), **parse_param_items(param_items)}
        refuse_truncated(str(db or params.get("db") or ""))  # before the report folder is made
        result = run_report(  # SIGTERM and SIGHUP stop it as Ctrl-C does (cli.app.terminate_as_ctrl_c)
            names, db=db, data=data, params=params, out=out, overwrite=overwrite,
            show_personal_data=show_personal_data, kernel=kernel, progress=_say,
            engine=engine, spark_master=spark_master,  # notebook parameters, like every other input
            keep_data=keep_data, share_simulations=share_simulations, timezone=timezone,
        )
    except ReportError as e:
        fail(str(e))
    _finish(result)


# The demo's sync story: the export is paused for three and a half days (longer than the 3-day
# snapshot TTL, so the next successful run is a full refresh), and paused again over the last
# snapshot (so the audience is behind the cohort at the as-of time: pending and stale profiles).
DEMO_SETTINGS = """\
# settings of `cohortlab demo` (SyncSettings; see docs/settings.md)
pauses:
  - {start: "2026-02-24T06:00:00Z", end: "2026-02-27T18:00:00Z"}
  - {start: "2026-02-28T20:00:00Z", end: "2026-03-01T02:00:00Z"}
"""


@main.command("demo", short_help="Generate a small world, load it and report on it.")
@click.option("--users", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Users in the synthetic world.")
@click.option("--seed", default=7, show_default=True, type=click.IntRange(min=0, max=2**63 - 1),
              help="Random seed of the world.")
@click.option("--out", type=click.Path(file_okay=False),
              help="Output folder: the world goes to OUT/world, its settings (the export's two pauses) to "
                   "OUT/settings.yaml, the report to OUT/report with the loaded database OUT/report/data.duckdb. "
                   "Default: reports/demo-<YYYY-MM-DD>[-N].")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
def demo_cmd(users, seed, out, overwrite):
    """Generate a small mid-migration world (scenario `demo`, a paused export), load it, run the
    report; print index.html's path."""
    from cohortlab.report.kernels import without_iri_format_checks
    from cohortlab.report.output import dated_output_dir
    from cohortlab.report.runner import ReportError

    without_iri_format_checks()  # 1 s of start-up this process does not need

    t0 = time.monotonic()
    try:
        result = _claimed_demo(Path(out or dated_output_dir(prefix="demo-")), overwrite, users, seed, t0)
    except ReportError as e:
        fail(str(e))
    _finish(result)  # a notebook that failed keeps the folder: the error names its executed notebook


@releasing_claims  # with --overwrite, the previous demo waits aside and is put back if this one stops
def _claimed_demo(target: Path, overwrite: bool, users: int, seed: int, t0: float):
    """The demo into ``target``, claimed (:func:`~cohortlab.report.output.prepare_output_dir`,
    held while it runs). Stopped (Ctrl-C, SIGTERM) or failed, it leaves no half-made demo folder,
    which the next run refused ("already exists ... use --overwrite"): what a demo writes goes
    (a file another process put into the folder meanwhile stays), and a demo it replaced comes
    back, as a report's does."""
    from cohortlab.report.output import prepare_output_dir

    existed = target.exists()
    base = prepare_output_dir(target, overwrite=overwrite, hold=True)
    try:
        return _demo(base, users, seed, t0)
    except BaseException:
        from cohortlab.output_files import remove_written
        from cohortlab.report.pages import MARKER

        remove_written(base, ("world", "report", "settings.yaml", MARKER), made=not existed)
        raise


def _demo(base: Path, users: int, seed: int, t0: float):
    """The demo into ``base`` (claimed): its world, settings and report; the report's result."""
    from cohortlab.report.runner import ReportError, run_report

    world = base / "world"
    _say(f"generating a demo world of {users:,} users (mid-migration, a paused export) into {world} ...")
    try:
        from cohortlab.synth import generate
    except ImportError:
        fail("the synthetic data generator (cohortlab.synth) is not available in this install")
    generated = generate(str(world), users=users, seed=seed, scenario="demo")
    _say(f"  generated in {time.monotonic() - t0:.1f} s")
    settings = base / "settings.yaml"
    settings.write_text(DEMO_SETTINGS, encoding="utf-8")
    try:
        # synthetic data whose exports already sit in OUT/world: keep the loaded database too
        # (OUT/report/data.duckdb), for exploring the demo in a notebook
        result = run_report(data=world, out=base / "report", params={"settings": str(settings)}, progress=_say,
                            keep_data=True)
    except ReportError as e:
        fail(str(e))
    _say(f"demo finished in {time.monotonic() - t0:.1f} s")
    # the report's figures come from the loaded database under the demo's settings (its pauses):
    # a simulate without them gives other counts than the report's
    _say(f"explore it: cohortlab simulate --db {shlex.quote(str(base / 'report' / 'data.duckdb'))} "
         f"--settings {shlex.quote(str(settings))} --cohort {shlex.quote(min(generated.manifest['expected']))}")
    return result


WORKSPACE = "cohortlab-notebooks"  # what `cohortlab lab` of an installed package opens, in the current folder


def in_checkout(notebooks: Path) -> bool:
    """Whether the package's notebooks folder is that of a checkout (``cohortlab/notebooks/`` beside
    the project's ``pyproject.toml``), not of an installed package."""
    return (notebooks.parent.parent / "pyproject.toml").is_file()


def lab_workspace(notebooks: Path, sample_data: Path, base: Path) -> tuple[Path, list[str]]:
    """``base/cohortlab-notebooks/notebooks/``, holding a copy of each package notebook it lacks,
    beside ``sample_data/``, a copy of the sample exports when missing (the notebooks' default
    ``data``, ``../sample_data``, then names it). A notebook already there is never replaced:
    the user's edits stay. Returns the folder and the names copied."""
    import shutil

    root = base / WORKSPACE
    folder = root / "notebooks"
    folder.mkdir(parents=True, exist_ok=True)
    copied = []
    for nb in sorted(notebooks.glob("*.ipynb")):
        if not (folder / nb.name).exists():
            shutil.copyfile(nb, folder / nb.name)
            copied.append(nb.name)
    if sample_data.is_dir() and not (root / "sample_data").exists():
        shutil.copytree(sample_data, root / "sample_data")
        copied.append("sample_data")
    return folder, copied


@main.command("lab", context_settings={"ignore_unknown_options": True, "allow_extra_args": True}, short_help="Open JupyterLab on the notebooks.")
@click.option("--notebooks-dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="Folder to open. Default: in a checkout, the package's notebooks (cohortlab/notebooks/, "
                   "which notebooks/ links to); from an installed package, copies of them in "
                   "./cohortlab-notebooks/notebooks/ (made when missing; the installed ones are never written).")
@click.argument("jupyter_args", nargs=-1, type=click.UNPROCESSED)
def lab_cmd(notebooks_dir, jupyter_args):
    """Open JupyterLab on the notebooks (they use the project's `cohortlab` kernel). Other
    options go to `jupyter lab` as they are (--no-browser, --port 8899, --ip 0.0.0.0, ...).
    Stopping cohortlab lab (Ctrl-C, SIGTERM) stops the server it started."""
    from cohortlab.report.runner import NOTEBOOKS_DIR

    if notebooks_dir:
        folder = Path(notebooks_dir)
    elif in_checkout(NOTEBOOKS_DIR):
        folder = NOTEBOOKS_DIR
    else:  # an installed package: its folder may be read-only, and is no place for a user's edits
        try:
            folder, copied = lab_workspace(NOTEBOOKS_DIR, NOTEBOOKS_DIR.parent / "sample_data", Path.cwd())
        except OSError as e:
            fail(f"cannot make {Path.cwd() / WORKSPACE} ({e.strerror or e}): run cohortlab lab from a folder "
                 "you can write to, or give --notebooks-dir")
        _say(f"opening {folder}" + (f" (copied from the package: {', '.join(copied)})" if copied
                                    else " (your copies: the package's notebooks are not copied over them)"))
    jupyter = Path(sys.executable).with_name("jupyter")
    cmd = [str(jupyter) if jupyter.exists() else "jupyter", "lab", str(folder), *jupyter_args]
    sys.exit(run_server(cmd))


def run_server(cmd: list[str], grace: float = 10.0) -> int:
    """Run ``cmd`` (a server) until it exits; when this process is interrupted (Ctrl-C) or
    terminated (SIGTERM, SIGHUP), stop the server with SIGTERM (SIGKILL after ``grace``
    seconds) instead of leaving it running. Returns its exit status."""
    import signal
    import subprocess

    try:
        proc = subprocess.Popen(cmd)
    except FileNotFoundError:
        fail(f"{cmd[0]}: not found (install JupyterLab into this environment: pip install jupyterlab)")

    def _stop(signum, frame):
        raise KeyboardInterrupt

    old = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return proc.wait()
    except KeyboardInterrupt:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return 130
    finally:
        for s, h in old.items():
            signal.signal(s, h)
