"""``cohortlab simulate``: resolve a cohort's members, play the sync forward, print the waterfall."""

from __future__ import annotations

import click

from cohortlab.cli.app import (  # engine choice: DuckDB or Spark
    Choice, check_output_path, cohort_options, engine_options, fail, loaded_database, main, open_lab, progress_option,
    read_settings, working,
)
from cohortlab.cli.tables import text_table
from cohortlab.escaping import one_line, one_line_frame
from cohortlab.glossary import counted
from cohortlab.output_files import copy_format, written_whole
from cohortlab.pipeline import sql_str


# identifiers that may be emails or phone numbers, and the cohort name (one that holds an email is its
# pseudonym, as in the reports: docs/reports.md#personal-data)
PSEUDONYMISED_COLUMNS = ("distinct_id", "identifier", "cohort_name")


def _members_select(engine, table: str, show_personal_data: bool) -> str:
    """The ``--members-out`` query: without the email column, and with every identifier that is
    an email or a phone number (by pattern, or known to the database) replaced by its stable
    pseudonym (:mod:`cohortlab.privacy`), unless ``show_personal_data``."""
    from cohortlab.privacy import KNOWN_PERSONAL_SQL, Redactor
    from cohortlab.simulation.resolution import PERSONAL_DATA_COLUMNS, RESOLUTION_COLUMNS

    cols = [c for c in RESOLUTION_COLUMNS if show_personal_data or c not in PERSONAL_DATA_COLUMNS]
    if show_personal_data:
        return f"SELECT {', '.join(cols)} FROM {table} ORDER BY distinct_id"
    redactor = Redactor.for_engine(engine)
    engine.execute(f"CREATE OR REPLACE TEMP VIEW cohortlab_personal_values AS {KNOWN_PERSONAL_SQL}")
    exprs = [f"{redactor.sql(f'CAST({c} AS VARCHAR)', 'cohortlab_personal_values')} AS {c}"
             if c in PSEUDONYMISED_COLUMNS else c for c in cols]
    return f"SELECT {', '.join(exprs)} FROM {table} ORDER BY distinct_id"


def _write_parquet(engine, sql: str, path: str) -> None:
    """Write the result of ``sql`` as Parquet with pandas metadata: BIGINT columns (``mpid``)
    are nullable ``Int64``, so ``pd.read_parquet`` gives exact MPIDs (never float64)."""
    import pandas as pd
    import pyarrow as pa

    if hasattr(engine, "query_arrow"):
        table = engine.query_arrow(sql)
    else:
        rel = engine.con.sql(sql)
        table = rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()
    df = table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    df.to_parquet(path, index=False)


def _copy_members(engine, table: str, path: str, show_personal_data: bool) -> None:
    check_output_path(path, "--members-out")
    with written_whole(path) as part:  # a killed or failed write leaves no truncated file
        _write_members(engine, table, str(part), path, show_personal_data)


def _write_members(engine, table: str, part: str, path: str, show_personal_data: bool) -> None:
    """The members into ``part``, in the format ``path`` names."""
    parquet = path.lower().endswith(".parquet")
    if parquet and engine.name != "spark":
        _write_parquet(engine, _members_select(engine, table, show_personal_data), part)
        return
    fmt = copy_format(path)
    target = sql_str(part)
    if engine.name == "spark":  # Spark: fetch the (small) table, write it with DuckDB's COPY as below
        import duckdb

        from cohortlab.privacy import Redactor
        from cohortlab.simulation.resolution import PERSONAL_DATA_COLUMNS, RESOLUTION_COLUMNS

        cols = [c for c in RESOLUTION_COLUMNS if show_personal_data or c not in PERSONAL_DATA_COLUMNS]
        df = engine.query_df(f"SELECT {', '.join(cols)} FROM {table}")
        df = Redactor.for_engine(engine, show=show_personal_data).frame(df, id_columns=PSEUDONYMISED_COLUMNS)
        if parquet:  # exact MPIDs for every reader: nullable Int64 with pandas metadata
            df.astype({"mpid": "Int64"}).sort_values("distinct_id").to_parquet(part, index=False)
            return
        con = duckdb.connect()
        con.register("resolution", df)
        con.execute(f"COPY (SELECT * FROM resolution ORDER BY distinct_id) TO {target} ({fmt})")
        con.close()
        return
    engine.execute(f"COPY ({_members_select(engine, table, show_personal_data)}) TO {target} ({fmt})")


def settings_lines(s) -> list[str]:
    """Every option of ``s`` that the cohort and as-of lines do not show, as ``key=value`` (the
    sync type, its start and cadence are on the as-of line, the attribute on the cohort line): a
    settings file's cutoff, EIT timeline or re-export is visible in the output, as the defaults are."""
    j = s.model_dump(mode="json")
    eit = ",".join(p["eit"] if p["since"] is None else f"{p['eit']}@{p['since']}" for p in j["eit_timeline"])
    times = j["reexport_at"]
    reexports = ",".join(times[:3]) + (f",+{len(times) - 3} more" if len(times) > 3 else "") if times else "none"
    return [
        f"settings: fallback={s.fallback} protection={s.protection} apply_order={s.apply_order} "
        f"snapshot_ttl={j['snapshot_ttl']} refresh_clears_stale={s.refresh_clears_stale} "
        f"pauses={len(s.pauses)} resolution_time={s.resolution_time}",
        f"          event_identity_cutoff={j['event_identity_cutoff'] or 'none (rule off)'} eit_timeline={eit} "
        f"reexport_at={reexports}",
    ]


def after_as_of(s, at) -> str | None:
    """A ``note:`` line naming the settings dated after the as-of time ``at`` (pauses that start
    later, re-exports at later times): they cannot change this simulation, which the waterfall
    alone did not say (docs/settings.md's example file, run on data of an earlier month); None
    when there is none."""
    from cohortlab.times import format_minute, naive_utc

    at = naive_utc(at)
    pauses = [p for p in s.pauses if naive_utc(p.start) > at]
    reexports = [t for t in s.reexport_at if naive_utc(t) > at]
    parts = ([f"{counted(len(pauses), 'pause')} from {format_minute(naive_utc(min(p.start for p in pauses)))}"]
             if pauses else []) + \
        ([f"reexport_at {', '.join(format_minute(naive_utc(t)) for t in reexports[:3])}"
          + (f" (+{len(reexports) - 3} more)" if len(reexports) > 3 else "")] if reexports else [])
    if not parts:
        return None
    return (f"note: after the as-of time ({format_minute(at)}), so without effect on this simulation: "
            f"{'; '.join(parts)} (give a later --at, with data of that time)")


def before_first_profile(result) -> str | None:
    """A ``note:`` line when members were sent before their first Mixpanel profile version, a
    version with its own as-of time (``-o as_of``, a fetched folder): they had no profile then
    and were sent with their distinct_id or an event's value (docs/rules.md#resolution-time),
    which a profile export taken after the sends easily causes; None when there is none."""
    from cohortlab.simulation.resolution import sent_before_first_profile
    from cohortlab.times import format_minute, naive_utc

    table = getattr(result.tables.get("resolution"), "table_name", None)
    if table is None:
        return None
    when = "sent" if result.settings.resolution_time == "send" else "resolved"
    n, first = sent_before_first_profile(result.engine, table, sent_only=when == "sent")
    if not n:
        return None
    other = ", or use resolution_time: as_of" if when == "sent" else ""
    return (f"note: {counted(n, 'member')} {'was' if n == 1 else 'were'} {when} before {'its' if n == 1 else 'their'} "
            f"first Mixpanel profile version (the earliest as of {format_minute(naive_utc(first))}): no profile "
            f"was known then, so no $mparticle_user_id from it (docs/rules.md#resolution-time; load an earlier "
            f"profile export with -o as_of{other})")


def _store_line(lab, result, store: bool, debug: bool, engine: str, at, read_only: bool = False) -> str:
    """Where the simulation came from and whether it was stored (docs/simulate.md#stored-simulations),
    and the time verify / explain simulate at when it is another one."""
    if result.store_event == "read":
        line = "simulation: read from the database (stored earlier on the same data; not computed again)"
    elif result.store_event == "written":
        line = "simulation: stored in the database; verify, explain and the report reuse it while the data is unchanged"
    elif engine != "duckdb":
        line = f"simulation: not stored (the {engine} engine does not store simulations)"
    elif debug:
        line = "simulation: not stored (--debug)"
    elif read_only:
        line = "simulation: not stored (the database cannot be written here)"
    else:
        line = "simulation: not stored (--no-store)"
    if at is None and result.store_event is not None:  # stored: is it the one verify and explain read?
        from cohortlab.simulation.verify import VerifyError, observed_times

        try:
            _, snap = observed_times(lab.engine, result.ref or result.cohort, None, result.settings,
                                     source=result.source)  # the cohort found: its name may be another's now too
        except (VerifyError, ValueError):
            snap = None
        if snap is not None and snap != result.at:
            line += (f"\nnote: verify and explain simulate at the mParticle snapshot time {snap:%Y-%m-%d %H:%M:%S} UTC; "
                     f"`cohortlab simulate --at {snap:%Y-%m-%dT%H:%M:%SZ}` (or the first verify) stores that one")
    return line


def _table(df, columns=None) -> str:
    return one_line_frame(df).to_string(index=False, columns=columns)


_SIGNS = {"total": "=", "minus": "-", "plus": "+"}
TIMELINE_SHOWN = ["run_at", "kind", "members", "adds", "removes", "true_count", "not_yet_true", "stale_true"]
# runs that sent changes, failed or refreshed; a one-time export's observation points send nothing
# and are not runs (docs/simulate.md#tables): listed, they pushed the export itself out of the last 20
_CHANGED = "kind NOT IN ('diff', 'observation') OR adds > 0 OR removes > 0"


def _waterfall_text(result, redactor=None) -> str:
    """The waterfall as ``sign step count label`` (the rows the simulation kept, else its frame),
    each label as ``redactor`` shows it (the audience step names the attribute: a cohort named
    after an email is its pseudonym there, as in the reports; None: as they are)."""
    if redactor is None:
        from cohortlab.privacy import Redactor

        redactor = Redactor(show=True)
    rows = result.waterfall_rows
    if rows is not None:
        text = text_table(["sign", "step", "count", "label"],
                          [(_SIGNS.get(kind), step, n, redactor.text(label)) for step, label, kind, n in rows])
        if text is not None:
            return text
    wf = result.waterfall.copy()
    wf["sign"] = wf.kind.map(_SIGNS)
    wf["label"] = wf["label"].map(lambda v: redactor.text(v) if isinstance(v, str) else v)
    return _table(wf, ["sign", "step", "count", "label"])


def _timeline_lines(engine, table: str) -> list[str]:
    """The timeline summary (docs/simulate.md#cli-cost): one line of totals, then the runs that sent
    changes, failed or refreshed (the last 20 when there are more). Two small queries on the
    timeline table (a run's ``run_at`` grows with its number), no frame."""
    n, first, last, obs, obs_last, failed, refreshes, adds, removes = engine.query_rows(f"""
        SELECT count(*) FILTER (WHERE kind <> 'observation'), min(run_at) FILTER (WHERE kind <> 'observation'),
               max(run_at) FILTER (WHERE kind <> 'observation'), count(*) FILTER (WHERE kind = 'observation'),
               max(run_at), sum(CASE WHEN failed THEN 1 ELSE 0 END),
               sum(CASE WHEN full_refresh THEN 1 ELSE 0 END), sum(CASE WHEN sent THEN adds ELSE 0 END),
               sum(CASE WHEN sent THEN removes ELSE 0 END)
        FROM {table}
        """)[0]
    if not n and not obs:
        return []
    # a one-time export runs once (and at each re-export); its timeline goes on with observation
    # points where nothing is sent: they are not runs
    runs = f"1 run at {first} UTC" if n == 1 else f"{n} runs from {first} to {last} UTC"
    if obs:
        runs += f", then {counted(obs, 'observation point')} to {obs_last} UTC (nothing sent)"
    lines = [f"timeline: {runs}; {int(failed)} failed, {counted(int(refreshes), 'full refresh', 'full refreshes')}, "
             f"{counted(int(adds), 'add')} and {counted(int(removes), 'remove')} sent"]
    rows = engine.query_rows(f"SELECT {', '.join(TIMELINE_SHOWN)} FROM {table} WHERE {_CHANGED} ORDER BY run")
    if len(rows) > 20:
        rows = rows[-20:]
        lines.append("last 20 runs that sent changes, failed or refreshed:")
    text = text_table(TIMELINE_SHOWN, rows)
    if text is None:  # a value text_table does not write exactly like pandas: print through pandas
        tl = engine.query_df(f"SELECT {', '.join(TIMELINE_SHOWN)} FROM {table} WHERE {_CHANGED} ORDER BY run")
        text = _table(tl.tail(20), TIMELINE_SHOWN)
    lines.append(text)
    return lines


@main.command("simulate", short_help="Explain a cohort's count vs its mParticle audience.")
@cohort_options(export_folder=True,
                at="As-of time, UTC (e.g. 2026-03-01T12:00:00Z). Default: the cohort's latest snapshot/webhook.",
                settings="Simulation settings YAML (see SyncSettings); defaults: docs/rules.md#assumptions.",
                source="Membership from snapshots or replayed webhooks (auto: snapshots if any).")
@click.option("--members-out", type=click.Path(dir_okay=False),
              help="Write the resolution table (one row per member) to a .csv, .csv.gz or .parquet file.")
@click.option("--show-personal-data", is_flag=True,
              help="Write emails and phone numbers in --members-out, and a cohort so named in the "
                   "waterfall, as they are (default: stable pseudonyms, no email column).")
@click.option("--timeline/--no-timeline", "show_timeline", default=True, help="Print the timeline summary.")
@click.option("--debug", is_flag=True, help="Materialise every SQL step and print its row count.")
@click.option("--assumptions", type=Choice(["all"]), default=None,
              help="Also print the audience under each value of every assumption that changes it (min and max).")
@click.option("--store/--no-store", "store", default=True, show_default=True,
              help="Store the simulation in the database (tables simstore_*, catalogue sim_store), so that "
                   "verify, explain and the report reuse it while the data is unchanged (DuckDB only). "
                   "--no-store: neither read a stored one nor store.")
@engine_options  # --engine duckdb|spark, --spark-master (Spark scale-out)
@progress_option
def simulate_cmd(db, cohort, settings_path, at, source, members_out, show_personal_data, show_timeline, debug,
                 assumptions, store, engine, spark_master, progress):
    """Explain a cohort's Mixpanel count vs its mParticle audience: print the discrepancy
    waterfall (docs/rules.md#waterfall) and the sync timeline (docs/rules.md#timeline) and write the
    per-member resolution. The results are stored in the database as tables resolution, timeline,
    attribute_state, waterfall and gap_summary; the simulation itself is stored too (unless
    --no-store, --debug or --engine spark) and reused by later commands on the same data."""
    from cohortlab.privacy import Redactor
    from cohortlab.simulation.membership import CohortError
    from cohortlab.settings import SettingsError

    read_only = loaded_database(db)
    if members_out:  # checked before the simulation runs, not after
        check_output_path(members_out, "--members-out")
    settings = read_settings(settings_path)
    with open_lab(db, engine, spark_master, read_only=read_only) as lab:  # DuckDB (default) or Spark
        keep = store and not debug and engine == "duckdb" and not read_only
        if engine == "duckdb":
            lab.use_stored = store  # --no-store: neither reads a stored simulation nor stores one
        try:
            with working(f"simulating {cohort!r}", progress):
                result = lab.simulate(cohort, at=at, settings=settings, source=source, debug=debug, publish=True,
                                      store=keep)
        except (CohortError, SettingsError) as e:
            fail(str(e))
        members = int(result.counts["members"])
        if members == 0:
            fail(
                f"cohort {result.cohort!r} has no members at {result.at:%Y-%m-%d %H:%M:%S} UTC "
                f"(source: {result.source}); try another --at"
            )
        s = result.settings
        click.echo(f"cohort: {one_line(result.cohort)}   attribute: {result.attribute!r}")
        click.echo(
            f"as of: {result.at:%Y-%m-%d %H:%M:%S} UTC   membership: {result.source}   sync: {s.sync_type} "
            f"from {result.t0:%Y-%m-%d %H:%M:%S} UTC every {s.model_dump(mode='json')['cadence']}"
        )
        for line in settings_lines(s):
            click.echo(line)
        late = after_as_of(s, result.at)
        if late:
            click.echo(late)
        early = before_first_profile(result)
        if early:
            click.echo(early)
        click.echo(_store_line(lab, result, store, debug, engine, at, read_only))
        click.echo("")
        # the header above names the cohort as typed (docs/reports.md#personal-data); the waterfall's
        # audience step and the line after it name it as the reports do: a personal name is its pseudonym
        redactor = Redactor.for_engine(lab.engine, show=show_personal_data).with_personal_names([result.cohort])
        click.echo("discrepancy waterfall")
        click.echo(_waterfall_text(result, redactor))
        click.echo(f"audience on {one_line(redactor.text(result.attribute))} = false: "
                   f"{counted(result.audience_false, 'profile')}")
        if show_timeline:
            lines = _timeline_lines(lab.engine, result.tables["timeline"].table_name)
            if lines:
                click.echo("")
                for line in lines:
                    click.echo(line)
        if debug:
            click.echo("")
            click.echo("rows per step (debug)")
            names = [(f"{stage}.{step}", n) for stage, counts in result.step_counts.items() for step, n in counts.items()]
            width = max((len(name) for name, _ in names), default=0)  # one column of counts
            for name, n in names:
                click.echo(f"  {name:<{width}}{n:>12,}")
        if assumptions:
            from cohortlab.simulation.simulate import assumption_ranges_wide

            with working(f"simulating {cohort!r} under each assumption", progress):
                wide = assumption_ranges_wide(lab.assumption_ranges(cohort, at=at, settings=settings, source=source))
            click.echo("")
            click.echo("audience under each value of every assumption (* = current settings)")
            moving = wide[wide.changes]
            if len(moving):
                click.echo(_table(moving, ["assumption", "min", "max", "values"]))
            still = wide[~wide.changes].assumption.tolist()
            if still:
                click.echo(f"no change in the audience: {', '.join(still)}")
        if members_out:
            with working(f"writing {members_out}", progress):
                _copy_members(lab.engine, result.tables["resolution"].table_name, members_out, show_personal_data)
            note = (" (with personal data: emails and phone numbers as they are)" if show_personal_data else
                    " (emails and phone numbers replaced by stable pseudonyms; --show-personal-data to keep them)")
            click.echo(f"\nwrote {members:,} members to {members_out}{note}")
