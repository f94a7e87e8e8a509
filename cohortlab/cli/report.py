"""``cohortlab report``, ``cohortlab demo`` and ``cohortlab lab``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from cohortlab.cli.app import engine_options, fail, main  # engine_options: issue 7


def _say(message: str) -> None:
    click.echo(message, err=True)


def _finish(result) -> None:
    click.echo(str(result.index_html))
    if not result.ok:
        for r in result.failed:
            click.echo(f"error: notebook {r.name}.ipynb failed in {r.error}", err=True)
            click.echo(f"       executed notebook with the traceback: {r.ipynb}", err=True)
        sys.exit(1)


@main.command("report")
@click.option("--db", type=click.Path(dir_okay=False), help="DuckDB database with loaded exports.")
@click.option("--data", type=click.Path(file_okay=False),
              help="Folder of exports (mixpanel/..., mparticle/...), e.g. a `cohortlab synth` world; loaded once.")
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
              help="Show emails/phones in the reports (hidden by default).")
@click.option("--kernel", default=None, help="Jupyter kernel (default: cohortlab if installed, else python3).")
@engine_options  # --engine duckdb|spark, --spark-master (issue 7)
def report_cmd(db, data, params_file, param_items, notebooks, out, overwrite, show_personal_data, kernel,
               engine, spark_master):
    """Run the notebooks with papermill into HTML reports (no code), metrics.json and index.html.

    Exits non-zero, naming the notebook and the cell, when a notebook fails.
    """
    from cohortlab.report.runner import ReportError, load_params, parse_param_items, run_report

    names = [n.strip() for item in notebooks for n in item.split(",") if n.strip()] or None
    try:
        params = {**load_params(params_file), **parse_param_items(param_items)}
        params["engine"] = engine  # a notebook parameter, like every other input of the notebooks
        if spark_master:
            params["spark_master"] = spark_master
        result = run_report(
            names, db=db, data=data, params=params, out=out, overwrite=overwrite,
            show_personal_data=show_personal_data, kernel=kernel, progress=_say,
        )
    except ReportError as e:
        fail(str(e))
    _finish(result)


@main.command("demo")
@click.option("--users", default=1000, show_default=True, help="Users in the synthetic world.")
@click.option("--seed", default=7, show_default=True, help="Random seed of the world.")
@click.option("--out", type=click.Path(file_okay=False),
              help="Output folder (the world goes to OUT/world, the report to OUT/report). "
                   "Default: reports/demo-<YYYY-MM-DD>[-N].")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
def demo_cmd(users, seed, out, overwrite):
    """Generate a small mid-migration world, load it, run the report; print index.html's path."""
    from cohortlab.report.runner import ReportError, dated_output_dir, prepare_output_dir, run_report

    t0 = time.monotonic()
    try:
        base = prepare_output_dir(out or dated_output_dir(prefix="demo-"), overwrite=overwrite)
    except ReportError as e:
        fail(str(e))
    world = base / "world"
    _say(f"generating a mid_migration world of {users:,} users into {world} ...")
    try:
        from cohortlab.synth import generate
    except ImportError:
        fail("the synthetic data generator (cohortlab.synth) is not available in this install")
    generate(str(world), users=users, seed=seed, scenario="mid_migration")
    _say(f"  generated in {time.monotonic() - t0:.1f} s")
    try:
        result = run_report(data=world, out=base / "report", progress=_say)
    except ReportError as e:
        fail(str(e))
    _say(f"demo finished in {time.monotonic() - t0:.1f} s")
    _finish(result)


@main.command("lab", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--notebooks-dir", type=click.Path(file_okay=False), default=None,
              help="Folder to open (default: the project's notebooks/).")
@click.argument("jupyter_args", nargs=-1, type=click.UNPROCESSED)
def lab_cmd(notebooks_dir, jupyter_args):
    """Open JupyterLab on the notebooks (they use the project's `cohortlab` kernel). Other
    options go to `jupyter lab` as they are (--no-browser, --port 8899, --ip 0.0.0.0, ...).
    Stopping cohortlab lab (Ctrl-C, SIGTERM) stops the server it started."""
    from cohortlab.report.runner import NOTEBOOKS_DIR

    folder = Path(notebooks_dir) if notebooks_dir else NOTEBOOKS_DIR
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
        fail(f"{cmd[0]}: not found (install JupyterLab: pip install 'cohortlab[notebooks]')")

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
