"""``cohortlab migrate plan|compare|validate``: the EIT migration what-if (docs/rules.md#migration)."""

from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path

import click

from cohortlab.cli.app import (
    Choice, check_output_path, check_time, db_option, fail, loaded_database, main, progress_option, read_settings,
    working,
)
from cohortlab.escaping import one_line, one_line_frame, terminal_text
from cohortlab.output_files import is_gzip_name, written_whole
from cohortlab.times import naive_utc

CHART_SUFFIXES = (".png", ".svg", ".pdf")


def _plans(paths: tuple[str, ...]):
    from cohortlab.migration.plans import PlanError, load_plans

    out = []
    try:
        for p in paths:
            out += load_plans(p)
    except PlanError as e:
        fail(str(e))
    names = [p.name for p in out]
    if len(set(names)) != len(names):
        fail(f"plan names must be unique across the files, got {names}")
    return out


def _lab(db, read_only: bool | None = None):
    """The lab of ``db``, read-only when the file cannot be written here (``loaded_database``
    says so on stderr; ``read_only``: already asked)."""
    from cohortlab.lab import Lab

    return Lab(db, read_only=loaded_database(db) if read_only is None else read_only)


def _write(df, path):
    if not path:
        return
    low = path.lower()
    if not low.endswith((".parquet", ".csv", ".csv.gz")):
        fail(f"{path}: expected a .csv, .csv.gz or .parquet file name")
    with written_whole(path) as part:  # a killed or failed write leaves no truncated file
        if low.endswith(".parquet"):
            df.to_parquet(part, index=False)
        else:
            df.to_csv(part, index=False, compression="gzip" if is_gzip_name(path) else None)
    click.echo(f"wrote {path}")


def _pct(x):
    return "—" if x is None or x != x else f"{x:.1%}"


def _days(x):
    return "—" if x is None or x != x else f"{x:g} d"


def _print_summary(summary):
    click.echo(f"{'plan':<24}{'final rate':>11}{'profiles':>10}{'matched':>10}{'split':>8}"
               f"{'never fixable':>15}{'need re-export':>16}{'to 90%':>9}{'to 99%':>9}")
    for r in summary.itertuples():
        click.echo(f"{one_line(r.plan)[:23]:<24}{_pct(r.final_match_rate):>11}{r.members_end:>10,}{r.matched_end:>10,}"
                   f"{r.split_profiles_end:>8,}{r.never_fixable_users:>15,}{r.users_needing_reexport:>16,}"
                   f"{_days(r.days_to_90pct):>9}{_days(r.days_to_99pct):>9}")


def _print_steps(run):
    """--debug: rows after every step, table by table, in the order they ran."""
    click.echo(f"\nsteps (rows after each; every step is a table <table>__<step> in {run.tables.prefix}_*):")
    for table, counts in run.step_counts.items():
        if counts:
            click.echo(f"  {table.removeprefix(run.tables.prefix + '_')}: "
                       + " → ".join(f"{step} {n:,}" for step, n in counts.items()))


def _check_outputs(out, chart=None):
    """--out and --chart: checked before any work (a missing folder, a wrong suffix)."""
    if out:
        check_output_path(out, "--out")
    if chart:
        check_output_path(chart, "--chart", CHART_SUFFIXES)


def _run(db, plans, start, end, settings_path, activity, repeat_days, out, chart, debug, cohort=None, switch=None,
         progress=False, show_personal_data=False):
    from cohortlab.migration.run import compare
    from cohortlab.privacy import Redactor

    settings = read_settings(settings_path)
    read_only = loaded_database(db)
    with _lab(db, read_only) as lab:
        try:
            with working("predicting the match rate of each plan", progress):
                observed = observed_at = None
                if cohort:  # what the exports show: every member resolved at the cohort's latest data
                    sim = lab.simulate(cohort, settings=settings.replace(resolution_time="as_of"))
                    observed, observed_at = sim.resolution, sim.at
                res = compare(lab.engine, plans, switch=switch, start=start, end=end, settings=settings,
                              activity=activity, repeat_days=repeat_days, cohort=cohort, observed=observed,
                              observed_at=observed_at, debug=debug)
        except ValueError as e:
            fail(str(e))
        # the cohort's name as `validate --out` and `simulate --members-out` show it: a name that is
        # (or holds) an email or a phone number is its pseudonym, in the --out file's cohort column and in
        # the sentences naming it (docs/reports.md#personal-data); looked up while the database is open
        redactor = Redactor.for_engine(lab.engine, show=show_personal_data).with_personal_names([res.run.cohort])
        daily = res.run.daily
        if out and res.run.cohort is not None:
            daily = daily.assign(cohort=redactor.values(daily["cohort"])).astype({"cohort": "string"})
        population = redactor.text(res.run.population)
        reconciliation = redactor.text(res.reconciliation.text) if res.reconciliation is not None else None
    run = res.run
    ends = res.window_source
    click.echo(f"window: {run.start} .. {run.end} (UTC, state at the end of each day; start from the "
               f"{ends['start']}, end from the {ends['end']})   activity: {activity}   fallback: {settings.fallback}")
    if res.switch is not None:
        click.echo(terminal_text(res.switch.text))
        from cohortlab.migration.run import timeline_not_modelled

        untold = timeline_not_modelled(settings, res.switch)  # as the report's EIT page header says it
        if untold:
            click.echo(terminal_text(f"the settings' EIT timeline: {untold}"))
    click.echo(terminal_text(f"rates count {population}"))
    _print_summary(run.summary)
    click.echo(one_line(res.verdict))  # one line naming plans, from a YAML file: data
    if reconciliation is not None:
        click.echo("")
        click.echo(terminal_text(reconciliation))
    _write(daily, out)
    if chart:
        from cohortlab.charts import migration_chart

        fig = migration_chart(run.daily, run.plans)
        with written_whole(chart) as part:
            fig.savefig(part, dpi=110, bbox_inches="tight", format=os.path.splitext(chart)[1][1:].lower())
        click.echo(f"wrote {chart}")
    if debug:
        _print_steps(run)
    if read_only:  # the tables are in memory only, gone with the command
        click.echo("not stored: the database cannot be written here (the note above)")
    else:
        click.echo("stored: migration_daily, migration_users, migration_summary, migration_plans")


_common = [
    db_option,
    click.option("--start", help="First day (UTC date). Default: the first event's day.", callback=check_time),
    click.option("--end", help="Last day (UTC date). Default: the last event's day; with --activity repeat, "
                               "--repeat-days after it.", callback=check_time),
    click.option("--settings", "settings_path", type=click.Path(dir_okay=False),
                 help="Simulation settings YAML (fallback, event rule, EIT timeline); defaults: docs/rules.md."),
    click.option("--activity", type=Choice(["observed", "repeat"]), default="observed", show_default=True,
                 help="observed: loaded events only; repeat: repeat the last --repeat-days of activity past the last event."),
    click.option("--repeat-days", default=30, show_default=True, type=click.IntRange(1),
                 help="With --activity repeat: the period (days at the end of the data) that is repeated."),
    click.option("--cohort", help="Only the people behind the members of this cohort's latest snapshot; also "
                                  "explains how the rates differ from `cohortlab simulate`'s."),
    click.option("--out", type=click.Path(dir_okay=False),
                 help="Write the daily table to .csv, .csv.gz or .parquet."),
    click.option("--chart", type=click.Path(dir_okay=False), help="Write the match-rate chart (.png, .svg or .pdf)."),
    click.option("--debug", is_flag=True, help="Keep every SQL step as a table (mig_<run>_<table>__<step>) and "
                                               "print the rows after each step."),
    click.option("--show-personal-data", is_flag=True,
                 help="Print and write a --cohort named after an email or a phone number as it is (default: its "
                      "stable pseudonym, the same as in `simulate --members-out` and the reports)."),
]


def _apply(options):
    def deco(f):
        for o in reversed(options):
            f = o(f)
        return f
    return deco


@main.group("migrate", short_help="EIT migration what-if: predict, compare plans, validate.")
def migrate_group():
    """EIT migration what-if (docs/rules.md#migration): predict the match rate under a plan,
    compare plans, validate a prediction against exports taken after the switch."""


@migrate_group.command("plan")
@_apply(_common)
@click.option("--plan", "plan_files", required=True, multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Plan YAML (one plan, or a list).")
@progress_option
def plan_cmd(db, start, end, settings_path, activity, repeat_days, cohort, out, chart, debug, show_personal_data,
             plan_files, progress):
    """Predict the daily match rate of one plan (or each plan of the file)."""
    _check_outputs(out, chart)
    _run(db, _plans(plan_files), start, end, settings_path, activity, repeat_days, out, chart, debug, cohort,
         progress=progress, show_personal_data=show_personal_data)


@migrate_group.command("compare")
@_apply(_common)
@click.option("--plan", "plan_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Plan YAML files (repeatable; a file may hold a list). Default: the standard four around the switch.")
@click.option("--switch", help="With no --plan: the switch date of the standard plans (switch only, switch + Rule, "
                               "Rule only, do nothing). Default: the settings' eit_timeline, else the first event "
                               "keyed by an existing MPID; the output says which.", callback=check_time)
@progress_option
def compare_cmd(db, start, end, settings_path, activity, repeat_days, cohort, out, chart, debug, show_personal_data,
                plan_files, switch, progress):
    """Several plans side by side on the same data: one table, one chart, the best plan or a tie."""
    if plan_files and switch:
        fail("give either --plan files or --switch (the standard plans), not both")
    _check_outputs(out, chart)
    _run(db, _plans(plan_files) if plan_files else None, start, end, settings_path, activity, repeat_days, out,
         chart, debug, cohort, switch, progress=progress, show_personal_data=show_personal_data)


@migrate_group.command("validate")
@db_option
@click.option("--plan", "plan_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The plan that was carried out (YAML, one plan).")
@click.option("--cohort", required=True, help="Cohort name whose loaded exports to compare with.")
@click.option("--at", help="As-of time, UTC. Default: the cohort's latest snapshot.", callback=check_time)
@click.option("--settings", "settings_path", type=click.Path(dir_okay=False),
              help="Simulation settings YAML.")
@click.option("--out", type=click.Path(dir_okay=False),
              help="Write the per-member comparison to .csv, .csv.gz or .parquet.")
@click.option("--show", default=20, show_default=True, type=click.IntRange(min=0),
              help="Members that differ to print.")
@click.option("--show-personal-data", is_flag=True,
              help="Print and write emails and phone numbers as they are (default: stable pseudonyms, "
                   "the same as in `simulate --members-out` and the reports).")
@click.option("--observed-db", type=click.Path(exists=True, dir_okay=False),
              help="DuckDB file of the exports taken after the switch, when --db holds those of before "
                   "(default: --db holds both).")
@click.option("--activity", type=Choice(["observed", "repeat"]), default="observed", show_default=True,
              help="With --observed-db whose exports end after --db's events: repeat: project --db's "
                   "activity up to the observed time.")
@progress_option
def validate_cmd(db, plan_file, cohort, at, settings_path, out, show, show_personal_data, observed_db, activity,
                 progress):
    """Compare the prediction of a plan with what the exports (taken after the switch) show."""
    from cohortlab.migration.plans import MigrationPlan, PlanError
    from cohortlab.privacy import Redactor

    _check_outputs(out)
    try:
        plan = MigrationPlan.from_yaml(plan_file)
    except PlanError as e:
        fail(str(e))
    settings = read_settings(settings_path)
    other = bool(observed_db) and Path(observed_db).resolve() != Path(db).resolve()
    # what the later exports show (--observed-db, opened first), as validate_migration reads its own; closed
    # once read, before --db's prediction runs (one database's memory at a time)
    with _lab(observed_db) if other else nullcontext() as obs, _lab(db) as lab:
        from cohortlab.migration.validate import validate_against

        try:  # named as the observed side lists it, not looked up again in --db (docs/migration.md#validation)
            with working(f"validating the plan against {cohort!r}", progress):
                res = validate_against(lab, lab if obs is None else obs, plan, cohort, at, settings=settings,
                                       activity=activity, observed_label="--observed-db" if other else None,
                                       close_observed=True)
        except ValueError as e:
            fail(str(e))
        if not len(res.users):  # as `simulate` says it (it printed an empty table and "no cohort members")
            fail(f"cohort {res.cohort!r} has no members at {res.at:%Y-%m-%d %H:%M:%S} UTC; try another --at")
        # redacted while the database is open (known emails/phones are looked up as needed)
        redactor = Redactor.for_engine(lab.engine, show=show_personal_data)
        d = res.differences
        cols = [c for c in ("distinct_id", "obs_status", "obs_gap_reason", "predicted_status",
                            "predicted_gap_reason", "explanation") if c in d.columns]
        differences = redactor.frame(d[cols].head(show)) if len(d) and show else None  # --show 0: none listed
        users = redactor.frame(res.users) if out else None
        verdict = redactor.text(res.verdict)
        last = lab.engine.query_rows("SELECT max(time) FROM mp_events")[0][0] if other and activity == "observed" \
            else None
    click.echo(f"plan: {one_line(res.plan)}   cohort: {one_line(res.cohort)}   as of: {res.at:%Y-%m-%d %H:%M:%S} UTC")
    click.echo(res.confusion.rename_axis(index=None, columns=None).to_string())  # no pandas axis names
    if differences is not None:
        click.echo(f"\nmembers that differ (first {min(show, len(d))} of {len(d)}):")
        click.echo(one_line_frame(differences).to_string(index=False))
    _write(users, out)
    click.echo("")
    click.echo(verdict)
    if last is not None and (gap := (naive_utc(res.at) - naive_utc(last)).days) >= 1:
        # what "activity after the export" cannot count: the observed side's events are not read
        click.echo(f"note: --db's events end {naive_utc(last):%Y-%m-%d %H:%M} UTC, {gap:,} day(s) before the "
                   "observed time: activity in between is neither in the prediction nor counted as activity after "
                   "the export (--activity repeat projects --db's activity up to it)")
