"""``cohortlab synth``: write a synthetic world with its ground truth."""

from __future__ import annotations

import click

from cohortlab.cli.app import fail, machine_problem, main, progress_option


@main.command("synth", short_help="Generate a synthetic world with known answers.")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--users", type=click.IntRange(min=1), default=10_000, show_default=True, help="Number of people.")
@click.option("--seed", type=click.IntRange(min=0, max=2**63 - 1), default=0, show_default=True,
              help="Random seed: the same seed and parameters give the same bytes.")
@click.option("--scenario", default=None,
              help="Named scenario: healthy, customer_id_legacy, mid_migration (default), remediated, demo.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True), default=None,
              help="YAML file of WorldConfig parameters applied on top of the scenario "
                   "(the file may name its scenario: `scenario: NAME`).")
@click.option("--gzip/--no-gzip", "gzip", default=None, help="Gzip the JSONL exports (events, profiles).")
@click.option("--force", "--overwrite", "force", is_flag=True,
              help="Replace a world previously generated in OUT_DIR (--overwrite, as report, demo and export spell it).")
@progress_option
@click.option("--list-scenarios", is_flag=True, is_eager=True, expose_value=False,
              callback=lambda ctx, p, v: _list_scenarios(ctx) if v else None,
              help="List the scenarios and exit.")
def synth_cmd(out_dir, users, seed, scenario, config_path, gzip, force, progress):
    """Generate a synthetic Mixpanel + mParticle world with known truth into OUT_DIR."""
    from pydantic import ValidationError

    from cohortlab.synth import generate

    _tune_malloc()
    try:
        res = generate(out_dir, users=users, seed=seed, scenario=scenario, config=config_path,
                       progress=progress, force=force, gzip=gzip)
    except (ValueError, FileExistsError, ValidationError, OSError) as e:
        fail((machine_problem(e) if isinstance(e, OSError) else None) or str(e))
    m = res.manifest
    c = m["counts"]
    click.echo(f"wrote {out_dir} in {res.seconds:.1f}s: scenario {m['scenario'] or '(config)'}, seed {seed}")
    parts = [f"{f['records']:,} in {f['path']}" for f in m["files"] if f["kind"] == "mparticle-profiles"]
    click.echo(f"  people {c['people']:,}  events {c['events']:,}  Mixpanel profiles {c['mixpanel_profiles']:,}  "
               f"mParticle profiles {c['mparticle_profiles']:,}" + (f" ({', '.join(parts)})" if len(parts) > 1 else ""))
    for name, e in m["expected"].items():
        rate = "-" if e["match_rate"] is None else f"{100 * e['match_rate']:.1f}%"
        gaps = ", ".join(f"{k} {v:,}" for k, v in e["gap_reason"].items() if k != "null")
        click.echo(f"  {name}: {e['members']:,} members at {m['as_of']}, matched {rate}" + (f" ({gaps})" if gaps else ""))
    click.echo("  truth: truth.parquet; parameters and expected counts: manifest.json")


def _tune_malloc() -> None:
    """This process only generates: let glibc keep freed memory for the next range of people
    instead of returning it to the OS and faulting it back in (about 15% less CPU time at 1M
    users). Harmless where glibc is absent."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 256 * 1024 * 1024)  # M_MMAP_THRESHOLD: big arrays from the heap
        libc.mallopt(-1, 512 * 1024 * 1024)  # M_TRIM_THRESHOLD: keep up to 512 MB of free heap
    except (OSError, AttributeError):
        pass


def _list_scenarios(ctx) -> None:
    from cohortlab.synth import DEFAULT_SCENARIO, SCENARIOS

    for s in SCENARIOS.values():
        click.echo(f"{s.name}{' (default)' if s.name == DEFAULT_SCENARIO else ''}: {s.description}")
    ctx.exit(0)
