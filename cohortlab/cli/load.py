"""``cohortlab load`` and ``cohortlab info``."""

from __future__ import annotations

import json
import os

import click

from cohortlab.cli.app import (
    Choice, JsonCommand, db_option, error_json, fail, loaded_database, main, progress_option, truncated,
)
from cohortlab.escaping import one_line, one_line_frame
from cohortlab.loaders import LOADERS, loader_class
from cohortlab.times import format_instant

# the kind that loads a whole folder of exports, each file by its place (docs/loading.md#folder)
FOLDER = "folder"


def _parse_option(ctx, param, values):
    out = {}
    for v in values:
        if "=" not in v:
            raise click.BadParameter(f"expected KEY=VALUE, got {v!r}")
        k, val = v.split("=", 1)
        out[k.strip().replace("-", "_")] = val
    return out


def _new_paths(db: str) -> list[str]:
    """What opening ``db`` creates: the database file when it does not exist yet, then each of
    its folders that does not exist yet, innermost first (empty when the file exists). Another
    process may create the file before this one opens it: :func:`_nothing_loaded` then keeps it
    when that process loaded something."""
    path = os.path.abspath(db)
    if os.path.lexists(path):
        return []
    created = [path]
    folder = os.path.dirname(path)
    while not os.path.lexists(folder):
        created.append(folder)
        folder = os.path.dirname(folder)
    return created


def _remove_new(created: list[str]) -> None:
    """Remove what a failed first load created (:func:`_new_paths`): the database file and its
    WAL, then the folders made for it, each only if still empty."""
    if not created:
        return
    for f in (created[0], created[0] + ".wal"):
        try:
            os.remove(f)
        except OSError:  # never created (a missing folder, a file where a folder should be)
            pass
    for folder in created[1:]:
        try:
            os.rmdir(folder)
        except OSError:  # not empty: something else wrote into it meanwhile
            break


def _nothing_loaded(lab) -> bool:
    """Whether the database of ``lab`` holds no load (only the empty tables a first open makes)."""
    try:
        return lab.engine.query_rows("SELECT count(*) FROM loads")[0][0] == 0
    except Exception:  # noqa: BLE001 - cannot tell: keep the file
        return False


class _LoadCommand(JsonCommand):
    """``cohortlab load``: its help lists the kinds, each with what it takes (its loader's
    ``description``), in click's own definition list after the command's text. A usage error with
    ``--json`` prints the load's error object."""

    def usage_json(self, args: list[str], message: str) -> dict:
        # the KIND argument, when click did not refuse it
        kind = next((a for a in args if a in LOADERS or a == FOLDER), None)
        return {"ok": False, "kind": kind, "loaded": 0, "error": {"kind": "usage", "message": message}}

    def format_help_text(self, ctx, formatter):
        super().format_help_text(ctx, formatter)
        with formatter.section("Kinds (docs/loading.md)"):
            formatter.write_dl([(kind, loader_class(kind).description) for kind in LOADERS]
                               + [(FOLDER, "a whole folder of exports, each file by its place (as fetch and "
                                           "synth lay them out): one PATH, -o timezone=ZONE only")])


@main.command("load", cls=_LoadCommand, short_help="Load Mixpanel or mParticle export files into a database.")
@db_option(help="DuckDB database file (created if missing).")
@click.argument("kind", type=Choice(sorted([*LOADERS, FOLDER])), metavar="KIND")
@click.argument("paths", nargs=-1, required=True)
@click.option("-o", "--option", "options", multiple=True, callback=_parse_option,
              help="Loader option KEY=VALUE (repeatable), e.g. -o as_of=2026-03-01T00:00:00Z, "
                   "-o cohort='Power Users', -o time_unit=ms, -o received_at=..., -o column=user_id.")
@progress_option
@click.option("--json", "as_json", is_flag=True, help="Print the load report as JSON.")
@click.option("--strict", is_flag=True,
              help="Treat warnings as errors (exit 1, nothing loaded): a file whose every record is "
                   "quarantined, a members file naming a new cohort close to a known one. For scheduled jobs.")
def load_cmd(db, kind, paths, options, progress, as_json, strict):
    """Load Mixpanel or mParticle export files (file, directory or glob) of KIND into --db, or
    with KIND folder a whole folder of exports (docs/loading.md#folder).

    Exit status 0 when the files loaded, 1 on an error (nothing is loaded; one `error:` line; with
    KIND folder, the loads of other kinds that ended before it stay loaded).
    With --json, stdout is one JSON object in both cases: the load report, or on an error
    {"ok": false, "kind", "loaded": 0, "error": {"kind", "message"}} (a folder: "loaded" and
    "committed", the reports of the loads that stay loaded)."""
    try:
        if kind == FOLDER:
            report = _load_folder(db, paths, options, progress, strict)
        else:
            report = _load(db, kind, paths, options, progress, strict)
    except BaseException as e:  # noqa: BLE001 - re-raised: the root group prints the line
        # a ValueError is a loader's refusal of an option's value: one line, like a LoadError
        error = {"kind": "invalid", "message": str(e)} if isinstance(e, ValueError) else error_json(e)
        if as_json and not isinstance(e, SystemExit):
            # a folder's loads that ended before the error stay loaded (each is all or nothing):
            # said, with their warnings; "loaded": 0 after most of a folder was committed misled
            committed = getattr(e, "committed", []) if kind == FOLDER else []
            out = {"ok": False, "kind": kind, "loaded": sum(r.loaded for r in committed), "error": error}
            if kind == FOLDER:
                out["committed"] = [r.as_dict() for r in committed]
            click.echo(json.dumps(out, indent=2))
        if isinstance(e, ValueError):
            fail(error["message"])
        raise
    if kind == FOLDER:
        # the warnings follow on stderr, as for one kind
        click.echo(json.dumps({"ok": True, **_world_dict(report)}, indent=2) if as_json
                   else report.text(warnings=False))
    else:
        click.echo(json.dumps({"ok": True, **report.as_dict()}, indent=2) if as_json else str(report))
    for w in report.warnings:
        click.echo(f"warning: {one_line(w)}", err=True)  # it names a file, whose name is data


def _load(db, kind, paths, options, progress, strict):
    return _into(db, lambda lab: lab.load(kind, list(paths), progress=progress, strict=strict, **options))


def _load_folder(db, paths, options, progress, strict):
    """``load folder DIR``: :func:`cohortlab.loaders.folder.load_world` into ``db``. Each of the
    folder's loads is all or nothing, as ``report --data`` loads them; a failed one stops the rest,
    and loading the folder again skips the files already loaded (docs/loading.md#folder-parallel).
    So ``--strict``, which promises nothing loaded, is for one kind at a time."""
    from cohortlab.errors import LoadError
    from cohortlab.loaders.folder import load_world

    if strict:
        raise ValueError("--strict takes one KIND at a time (a folder's loads are each all or nothing, not "
                         "the folder): load its kinds one by one with --strict, or the folder without it")
    if len(paths) != 1:
        raise ValueError(f"folder: expected one folder of exports, got {len(paths)} paths")
    unknown = sorted(set(options) - {"timezone"})
    if unknown:
        raise ValueError(f"folder: unknown option(s) {unknown}; a folder takes only -o timezone=ZONE (each file's "
                         "kind and options come from its place: docs/loading.md#folder)")
    if not os.path.isdir(paths[0]):  # before the database is made
        raise LoadError(paths[0], "not a folder (a whole folder of exports: its mixpanel/ and mparticle/ "
                                  "folders, docs/loading.md#folder)" if os.path.exists(paths[0]) else "no such folder")

    def world(lab):
        try:
            return load_world(lab, paths[0], progress=progress, timezone=options.get("timezone"))
        except FileNotFoundError as e:  # a folder without mixpanel/ or mparticle/: one error line
            raise LoadError(paths[0], str(e).removeprefix(f"{paths[0]}: ")) from None

    return _into(db, world)


def _into(db, load):
    """``load(lab)`` on the Lab of ``db``, refusing a file cut short first; a failed (or
    interrupted) first load leaves no database (nor folder) it created."""
    from cohortlab.errors import DatabaseError
    from cohortlab.lab import Lab

    problem = truncated(db)  # loading into it succeeded, and the next command's read failed
    if problem:
        raise DatabaseError(problem)
    created = _new_paths(db)
    with Lab(db) as lab:
        try:
            return load(lab)
        except BaseException:  # a failed (or interrupted) load leaves no database it created
            if created and _nothing_loaded(lab):
                # removed while this process still holds the database (no other process is in
                # it; one that opens the path after this makes a new file)
                _remove_new(created)
            raise


def _world_dict(world) -> dict:
    """A folder's load as JSON values: the folder, each load's report (``load --json`` of one
    kind) in the folder's order, the files not loaded (an email or a phone number in a name masked,
    as in the warnings: :func:`cohortlab.privacy.masked_path`), and every warning."""
    from cohortlab.privacy import masked_path

    return {"kind": FOLDER, "folder": str(world.folder), "loads": [r.as_dict() for r in world.reports],
            "loaded": sum(r.loaded for r in world.reports),
            "not_loaded": [masked_path(str(p)) for p in world.ignored],
            "links_not_followed": [masked_path(str(p)) for p in world.linked_outside], "warnings": list(world.warnings)}


@main.command("info", short_help="Tables, row counts, cohorts and time ranges of a database.")
@db_option
@click.option("--schema", "show_schema", is_flag=True, help="Print the canonical table schema.")
def info_cmd(db, show_schema):
    """Tables, row counts, cohorts and time ranges of a database."""
    from cohortlab import schema
    from cohortlab.lab import Lab

    if show_schema:
        click.echo(schema.describe())
        return
    with Lab(db, read_only=loaded_database(db)) as lab:
        info = lab.info()
    click.echo(f"database: {info['database']}")
    click.echo("tables:")
    for t, n in info["tables"].items():
        click.echo(f"  {t:<22}{n:>12,}")
    ev = info["events_time_range"]
    if ev[0] is not None:
        # the raw event files read as a project's wall clock (docs/loading.md#project-time-zone)
        local = "".join(f"; {n:,} file(s) read from {zone} wall-clock times"
                        for zone, n in info["events_time_zones"].items() if zone != "UTC")
        click.echo(f"events: {ev[0]} .. {ev[1]} (UTC{local})")
    wh = info["webhooks_time_range"]
    if wh[0] is not None:
        click.echo(f"webhooks: {wh[0]} .. {wh[1]} (UTC)")
    if len(info["profile_snapshots"]):
        click.echo("Mixpanel profile snapshots (send-time resolution reads each from this time):")
        snaps = info["profile_snapshots"]
        when = [format_instant(t) for t in snaps["counts_from"]]
        click.echo(snaps.assign(counts_from=when).to_string(index=False, formatters={
            "files": "{:,}".format, "profiles": "{:,}".format}))
    if len(info["cohorts"]):
        click.echo("cohorts:")
        click.echo(one_line_frame(info["cohorts"]).to_string(index=False))
