"""``cohortlab export``: the canonical tables of a database as Parquet, for Spark (or any
Parquet reader). ``SparkEngine.read_canonical(DIR)`` reads them back under their names."""

from __future__ import annotations

import os

import click

from cohortlab.cli.app import db_option, fail, main, progress_option, refuse_truncated, working


@main.command("export", short_help="Write every canonical table of a database as Parquet.")
@db_option
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for <table>.parquet files (created if missing).")
@click.option("--table", "tables", multiple=True, help="Only these canonical tables (repeatable).")
@click.option("--overwrite", is_flag=True, help="Replace existing <table>.parquet files.")
@progress_option
def export_cmd(db, out_dir, tables, overwrite, progress):
    """Write every canonical table of --db to OUT/<table>.parquet (types kept: MPIDs stay
    BIGINT, times naive UTC, JSON as text)."""
    from cohortlab.engines.duckdb import DuckDBEngine
    from cohortlab.engines.spark.readers import export_canonical

    if not os.path.exists(db):
        fail(f"{db}: no such database (load data first with `cohortlab load --db {db} ...`)")
    refuse_truncated(db)
    from cohortlab.schema import check_current

    engine = DuckDBEngine(db, read_only=True)
    try:
        check_current(engine.query_rows, db)  # a DatabaseError: one error line
        with working(f"exporting {db}", progress):
            counts = export_canonical(engine, out_dir, tables=tables or None, overwrite=overwrite)
    except (ValueError, FileExistsError) as e:
        fail(str(e))
    finally:
        engine.close()
    for t, n in counts.items():
        click.echo(f"  {t:<22}{n:>12,}  {os.path.join(out_dir, t + '.parquet')}")
    from cohortlab.glossary import counted

    click.echo(f"exported {counted(len(counts), 'table')} to {out_dir}")
