"""``cohortlab remedies``: every remedy valued by its own simulation (docs/simulate.md#remedies)."""

from __future__ import annotations

import click

from cohortlab.cli.app import (
    check_time, cohort_options, fail, loaded_database, main, open_lab, progress_option, read_settings, working,
)


@main.command("remedies", short_help="What each remedy would recover, from its own simulation.")
@cohort_options(at="As-of time, UTC: the audience is compared here. Default: the cohort's latest snapshot / webhook.",
                settings="Simulation settings YAML (see SyncSettings); its pauses are what a reconnect ends.")
@click.option("--since", "since", help="When the remedies start, UTC (Rule, SDK code, EIT switch). Default: the "
                                        "event identity cutoff when it is at or before --at, else the first "
                                        "run.", callback=check_time)
@progress_option
def remedies_cmd(db, cohort, at, since, settings_path, source, progress):
    """What each remedy (mParticle Rule, SDK code, each with and without a re-export, EIT switch,
    re-export, reconnect after a pause) would recover (the members' users it brings into the audience)
    and gain in audience, each from its own simulation."""
    from cohortlab.errors import CohortlabError
    from cohortlab.simulation.membership import CohortError
    from cohortlab.times import format_time

    read_only = loaded_database(db)
    settings = read_settings(settings_path)
    with open_lab(db, read_only=read_only) as lab:
        try:
            with working(f"valuing the remedies of {cohort!r}", progress):
                df = lab.remedies(cohort, at=at, since=since, settings=settings, source=source)
        except (CohortError, CohortlabError, ValueError, NotImplementedError) as e:
            fail(str(e))
    a = df.attrs
    click.echo(f"cohort {a['cohort']!r} at {format_time(a['at'])}; remedies from {format_time(a['since'])}"
               + (f"; re-export at {format_time(a['reexport_at'])}" if a.get("reexport_at") else ""))
    click.echo(f"audience as simulated: {int(df['audience_before'].iloc[0]):,}\n")
    click.echo(df[["key", "audience_after", "gained", "recovered", "remedy"]].to_string(index=False))
    click.echo("")
    for key, note in zip(df["key"], df["note"]):
        click.echo(f"{key}: {note}")
