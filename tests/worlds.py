"""Small loaded worlds that several test modules build the same way."""

from __future__ import annotations

from pathlib import Path


def small_loaded_world(folder: Path, *, users: int = 200, seed: int = 3, scenario: str = "mid_migration") -> str:
    """A 200-user mid-migration world (cohorts Power Users, Recent Purchasers; an mParticle
    snapshot; events around an EIT switch), or another ``users``/``seed``/``scenario`` of the
    generator, generated in ``folder/world`` and loaded into ``folder/lab.duckdb``: that file's
    path."""
    from cohortlab import Lab
    from cohortlab.loaders.folder import load_world
    from cohortlab.synth import generate

    generate(folder / "world", users=users, seed=seed, scenario=scenario)
    path = folder / "lab.duckdb"
    with Lab(str(path)) as lab:
        load_world(lab, folder / "world")
    return str(path)
