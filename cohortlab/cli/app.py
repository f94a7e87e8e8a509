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
