"""``cohortlab verify``: the simulated cohort attribute against the one an mParticle snapshot holds
(docs/rules.md#observed-state)."""

from __future__ import annotations

import click

from cohortlab.cli.app import (
    check_output_path, check_time, cohort_options, fail, loaded_database, main, open_lab, progress_option,
    read_settings, working,
)


@main.command("verify", short_help="Compare the simulated cohort attribute with mParticle's.")
@cohort_options(at="Simulation time, UTC: compare with the attribute after the last run at or before it. "
                   "Default: the snapshot time.")
@click.option("--snapshot-at", "snapshot_at",
              help="When the mParticle snapshot was taken, UTC. Default: the load's as_of, else the latest "
                   "last_stored_at of its profiles.", callback=check_time)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=0),
              help="Disagreements listed one by one.")
@click.option("--out", "out", type=click.Path(dir_okay=False),
              help="Write every compared profile (mpid, simulated, observed, cause, detail, ...) to .csv, .csv.gz "
                   "or .parquet.")
@click.option("--show-personal-data", is_flag=True, help="Show emails / phone numbers used as ids (masked by default).")
@click.option("--store/--no-store", "store", default=True, show_default=True,
              help="Read the simulation stored in the database when there is one, else store the one computed "
                   "(explain and later verifies then reuse it while the data is unchanged). --no-store: "
                   "simulate afresh and store nothing.")
@progress_option
def verify_cmd(db, cohort, at, snapshot_at, settings_path, source, limit, out, show_personal_data, store, progress):
    """Compare the simulated cohort attribute with the observed one, profile by profile: confusion
    table, audience observed vs simulated, and the cause of each disagreement."""
    from cohortlab.errors import CohortlabError
    from cohortlab.simulation.membership import CohortError
    from cohortlab.simulation.verify import VerifyError

    read_only = loaded_database(db)
    if out:  # checked before the simulation runs, not after
        check_output_path(out, "--out")
    settings = read_settings(settings_path)
    with open_lab(db, read_only=read_only) as lab:
        lab.use_stored = store
        try:
            with working(f"verifying {cohort!r}", progress):
                v = lab.verify(cohort, at=at, settings=settings, snapshot_at=snapshot_at, source=source,
                               show_personal_data=show_personal_data, store=store and not read_only)
        except (CohortError, VerifyError, CohortlabError, ValueError) as e:
            fail(str(e))
        click.echo(v.to_text(limit=limit))
        event = getattr(v.simulation, "store_event", None)
        click.echo("\nsimulation: " + {"read": "read from the database (stored earlier on the same data)",
                                        "written": "computed and stored in the database (explain and later "
                                                   "verifies reuse it)"}.get(event, "computed (not stored)"))
        if out:
            from cohortlab.output_files import copy_format, written_whole
            from cohortlab.pipeline import sql_str
            from cohortlab.simulation.verify import PROFILE_COLUMNS

            with written_whole(out) as part:  # a killed or failed write leaves no truncated file
                lab.engine.execute(f"COPY (SELECT {', '.join(PROFILE_COLUMNS)} FROM verify_profiles "
                                   f"ORDER BY agree, mpid) TO {sql_str(part)} ({copy_format(out)})")
            from cohortlab.glossary import counted

            click.echo(f"\nwrote {counted(v.listed, 'profile')} to {out}")
