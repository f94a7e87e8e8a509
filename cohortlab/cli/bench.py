"""``cohortlab bench``: time cohortlab's steps against the hand-written DuckDB and pandas baselines."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import click

from cohortlab.cli.app import check_memory_limit, fail, main


def _check_scenario(ctx, param, value):
    """--scenario: one of the generator's scenarios (read when the command runs, not at start-up:
    ``cohortlab.synth`` imports DuckDB and NumPy)."""
    from cohortlab.synth.scenarios import SCENARIOS

    if value not in SCENARIOS:
        fail(f"--scenario {value}: unknown scenario; expected one of {', '.join(SCENARIOS)}")
    return value


@main.command("bench", short_help="Benchmark cohortlab against hand-written DuckDB and pandas.")
@click.option("--users", type=click.IntRange(min=100), default=1_000_000, show_default=True,
              help="People in the generated world.")
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True,
              help="Repeats of every step (interleaved); the table shows medians.")
@click.option("--scenario", default="mid_migration", show_default=True, callback=_check_scenario,
              help="Generator scenario: healthy, customer_id_legacy, mid_migration, remediated or demo.")
@click.option("--seed", type=click.IntRange(min=0, max=2**63 - 1), default=1, show_default=True,
              help="Generator seed.")
@click.option("--data", type=click.Path(file_okay=False, exists=True),
              help="Reuse this world (a `cohortlab synth` folder) instead of generating one.")
@click.option("--steps", default=None,
              help="Comma-separated subset of: load, resolve, simulate, classify, timeline, migration, report_db, "
                   "report, demo, duckdb, pandas (default: all).")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the results as JSON to this file.")
@click.option("--keep", type=click.Path(file_okay=False),
              help="Work in this folder and keep it (world, database, logs); default: a temporary folder.")
@click.option("--gzip/--no-gzip", "gzip", default=None, help="Gzip the generated JSONL exports.")
@click.option("--force-pandas", is_flag=True,
              help="Run the pandas baseline even above 2M users (it needs more memory than the machine).")
@click.option("--memory-limit", default=None, callback=check_memory_limit,
              help="DuckDB memory_limit (e.g. 1.5GB) for cohortlab's load/resolve/timeline/migration steps and the "
                   "DuckDB baselines (the CLI steps use COHORTLAB_MEMORY_LIMIT). Default: cohortlab's own, "
                   "min(1.5 GB, 25% of RAM); the baselines then run with DuckDB's (80% of RAM).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="DuckDB threads for the same steps (default: all cores).")
def bench_cmd(users, repeat, scenario, seed, data, steps, out, keep, gzip, force_pandas, memory_limit, threads):
    """Benchmark cohortlab (load, resolution + waterfall, 30-day timeline, migration what-if, report,
    demo) against hand-written DuckDB and pandas baselines on the same generated files.

    Every step runs in a fresh subprocess (wall time and peak RSS including children). Exits
    non-zero when a step fails or a baseline's member outcomes disagree with cohortlab's."""
    harness = _harness()
    BenchError, run_bench = harness.BenchError, harness.run_bench
    step_list = [s.strip() for s in steps.split(",") if s.strip()] if steps else None
    try:
        run_bench(users=users, repeat=repeat, scenario=scenario, seed=seed, steps=step_list, data=data,
                  keep=keep, out=out, force_pandas=force_pandas, gzip=gzip,
                  memory_limit=memory_limit, threads=threads,
                  say=lambda m: click.echo(m, err=False))
    except BenchError as e:
        fail(str(e))


def checkout_root(start: Path) -> Path | None:
    """The source checkout holding ``bench/harness.py``: ``start`` or one of its parents up to
    the git root (the first folder with a ``.git``); None when there is none. (Outside a git
    checkout only ``start`` itself is looked at.)"""
    start = start.resolve()
    chain = [start, *start.parents]
    git_root = next((i for i, d in enumerate(chain) if (d / ".git").exists()), 0)
    return next((d for d in chain[: git_root + 1] if (d / "bench" / "harness.py").is_file()), None)


def _harness() -> ModuleType:
    """``bench.harness``, from the source checkout the command runs in: the console script does
    not put the current folder on ``sys.path`` (``python -m`` does), so when the import fails and
    the current folder or a parent up to the git root holds ``bench/harness.py``, that folder goes
    on ``sys.path`` and the import is tried again. Fails with a clear error otherwise."""
    try:
        return importlib.import_module("bench.harness")
    except ImportError:
        root = checkout_root(Path.cwd())
        if root is not None:
            sys.path.insert(0, str(root))
            sys.modules.pop("bench", None)  # another package named bench may have been imported
            try:
                return importlib.import_module("bench.harness")
            except ImportError as e:
                fail(f"{root / 'bench' / 'harness.py'}: cannot import the benchmark harness: {e}")
        fail("cohortlab bench runs from a source checkout (it needs bench/ with the baseline scripts): "
             "cd into the repository and run `make bench` or `python -m bench`")
