"""cohortlab: why a Mixpanel cohort and its mParticle audience disagree.

Public API::

    from cohortlab import Lab
    lab = Lab("project.duckdb")          # or Lab() for in-memory
    lab.load("mixpanel-events", "export/*.jsonl.gz")
"""

from cohortlab.engines import DuckDBEngine, Engine
from cohortlab.lab import Lab
from cohortlab.loaders import LoadError, LoadReport
from cohortlab.settings import SettingsError, SyncSettings
from cohortlab.simulation.simulate import SimulationResult

__version__ = "0.1.0"

__all__ = ["Lab", "Engine", "DuckDBEngine", "LoadError", "LoadReport", "SyncSettings", "SettingsError", "SimulationResult",
           "__version__"]


def __getattr__(name: str):
    if name == "SparkEngine":
        from cohortlab.engines import SparkEngine

        return SparkEngine
    raise AttributeError(name)
