"""The ``cohortlab`` command line. One module per command group; each registers its commands
on ``main`` when imported (listed in ``COMMAND_MODULES``)."""

from __future__ import annotations

from importlib import import_module

from cohortlab.cli.app import main

COMMAND_MODULES = [
    "cohortlab.cli.bench",
    "cohortlab.cli.load",
    "cohortlab.cli.migrate",
    "cohortlab.cli.export",
    "cohortlab.cli.fetch",
    "cohortlab.cli.report",
    "cohortlab.cli.simulate",
    "cohortlab.cli.synth",
    "cohortlab.cli.verify",
    "cohortlab.cli.explain",
    "cohortlab.cli.remedies",
]

for _m in COMMAND_MODULES:
    import_module(_m)

__all__ = ["main"]
