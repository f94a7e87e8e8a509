"""cohortlab: why a Mixpanel cohort and its mParticle audience disagree.

Public API::

    from cohortlab import Lab
    lab = Lab("lab.duckdb")              # or Lab() for in-memory
    lab.load("mixpanel-events", "export/*.jsonl.gz")

The names below are imported on first use, so that a command that needs only part of the
package (``cohortlab report``, ``cohortlab --version``) does not pay for the rest at start-up.
``SparkEngine`` is one of them but not in ``__all__``: it needs the ``spark`` extra (PySpark),
so ``from cohortlab import *`` works without it. docs/simulate.md#api lists the public API.
"""

from importlib import import_module

__version__ = "0.1.0"

_HOMES = {
    "Lab": "cohortlab.lab",
    "Engine": "cohortlab.engines",
    "DuckDBEngine": "cohortlab.engines",
    "SparkEngine": "cohortlab.engines",
    "LoadError": "cohortlab.loaders",
    "LoadReport": "cohortlab.loaders",
    "SyncSettings": "cohortlab.settings",
    "SettingsError": "cohortlab.settings",
    "SimulationResult": "cohortlab.simulation.simulate",
    "CohortlabError": "cohortlab.errors",
}

__all__ = ["Lab", "Engine", "DuckDBEngine", "LoadError", "LoadReport", "SyncSettings", "SettingsError", "SimulationResult",
           "CohortlabError", "__version__"]


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'cohortlab' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    if name != "SparkEngine":  # SparkEngine stays lazy (it needs PySpark)
        globals()[name] = value
    return value


def __dir__():
    return sorted(set(__all__) | set(_HOMES))  # the public names, not this module's helpers
