"""``cohortlab explain``: every fact about one user on both sides, and the rule behind each step."""

from __future__ import annotations

import click

from cohortlab.cli.app import (
    check_time, cohort_options, fail, loaded_database, main, open_lab, progress_option, read_settings, working,
)


@main.command("explain", short_help="Explain one user end to end, from Mixpanel to mParticle.")
@cohort_options(at="Simulation time, UTC. Default: the mParticle snapshot time, else the cohort's latest.", source=None)
@click.option("--user", "user", required=True, help="The user: a distinct_id, an email, an MPID or mParticle identity, or the "
                   "anon-... pseudonym a report or --members-out shows for an email or phone number.")
@click.option("--snapshot-at", "snapshot_at", help="When the mParticle snapshot was taken, UTC (default: detected).",
              callback=check_time)
@click.option("--show-personal-data", is_flag=True,
              help="Show emails and phone numbers as they are (default: pseudonyms; the --user value is "
                   "shown as given).")
@progress_option
def explain_cmd(db, cohort, user, at, snapshot_at, settings_path, source, show_personal_data, progress):
    """Explain one user: Mixpanel profile, events that set $mparticle_user_id, membership,
    resolution, each run that sent the member, the writes to its mParticle profile and the
    observed attribute, each with the rule (docs/rules.md) that decided it."""
    from cohortlab.errors import CohortlabError
    from cohortlab.simulation.explain import ExplainError
    from cohortlab.simulation.membership import CohortError

    read_only = loaded_database(db)
    settings = read_settings(settings_path)
    with open_lab(db, read_only=read_only) as lab:
        try:
            with working(f"explaining a member of {cohort!r}", progress):
                x = lab.explain(cohort, user, at=at, settings=settings, source=source, snapshot_at=snapshot_at,
                                show_personal_data=show_personal_data)
        except (CohortError, ExplainError, CohortlabError, ValueError) as e:
            fail(str(e))
        click.echo(x.to_text())
        click.echo("\nsimulation: " + {
            "stored": "read from the database (stored earlier on the same data)",
            "cached": "the full simulation",
        }.get(x.simulation, "only the members that matter to this user (no stored simulation: "
                            "`cohortlab verify` or `cohortlab simulate --at ...` stores one)"))
