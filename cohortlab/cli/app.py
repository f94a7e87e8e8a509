"""The root click group and shared CLI helpers."""

from __future__ import annotations

import sys

import click

from cohortlab import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cohortlab")
def main() -> None:
    """cohortlab: explain why a Mixpanel cohort and its mParticle audience disagree."""


def fail(message: str, code: int = 1) -> None:
    """Print an error on stderr and exit non-zero."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


db_option = click.option(
    "--db", "db", required=True, type=click.Path(dir_okay=False),
    help="DuckDB database file (created if missing).",
)


# --------------------------------------------------------------------------- engine choice
# (issue 7, Spark scale-out) Commands that run the simulation take `--engine duckdb|spark` and
# `--spark-master`; they open their Lab with `open_lab(...)`.
def engine_options(f):
    """Add ``--engine`` and ``--spark-master`` to a command (parameters ``engine``, ``spark_master``)."""
    f = click.option(
        "--spark-master", "spark_master", default=None, envvar="COHORTLAB_SPARK_MASTER",
        help="Spark master URL for --engine spark (default: $COHORTLAB_SPARK_MASTER or local[2]).",
    )(f)
    f = click.option(
        "--engine", "engine", type=click.Choice(["duckdb", "spark"]), default="duckdb", show_default=True,
        envvar="COHORTLAB_ENGINE",
        help="Run the simulation on DuckDB, or on Spark (needs cohortlab[spark] and Java 17; "
             "--db is then a DuckDB file or a folder written by `cohortlab export`).",
    )(f)
    return f


def open_lab(db: str, engine: str = "duckdb", spark_master: str | None = None, *, read_only: bool = False):
    """:func:`cohortlab.lab.open_lab` for a command: a missing engine or database is one error line."""
    from cohortlab.lab import open_lab as _open

    try:
        return _open(db, engine=engine, spark_master=spark_master, read_only=read_only)
    except (ImportError, FileNotFoundError) as e:
        fail(str(e))
