import os

import pytest

from cohortlab import Lab
from cohortlab.report.kernels import without_iri_format_checks
from cohortlab.report.scheduling import cores_share

# the test processes import jsonschema (through nbformat and papermill) as `cohortlab report` does:
# without rfc3987_syntax's 38 Lark grammars, which cost each pytest process 1-2 s of its start
without_iri_format_checks()


_WORKER_THREADS: str | None = None  # what pytest_configure set, if anything


def pytest_configure(config):
    """Each pytest-xdist worker's DuckDB gets its share of the cores, as each notebook kernel of a
    report gets its share (cohortlab.report.scheduling): two workers on two cores each ran DuckDB
    on both, and their threads only waited for each other (measured: four simulation and loader
    modules took 15% more CPU-seconds with two threads than with one; the whole DuckDB suite, alone
    on the machine, 667 CPU-s before and 629 after). A value the user set is kept; a run without
    -n uses every core."""
    global _WORKER_THREADS
    workers = getattr(config, "workerinput", {}).get("workercount")
    if workers and not os.environ.get("COHORTLAB_THREADS"):
        _WORKER_THREADS = str(cores_share(int(workers)))
        os.environ["COHORTLAB_THREADS"] = _WORKER_THREADS


@pytest.fixture(autouse=True)
def _all_cores(request, monkeypatch):
    """Tests marked ``all_cores`` (the random-world tests: a row order that only threads vary
    shows there) run DuckDB on every core, also in a pytest-xdist worker."""
    if request.node.get_closest_marker("all_cores") and _WORKER_THREADS is not None:
        monkeypatch.delenv("COHORTLAB_THREADS", raising=False)


@pytest.fixture
def lab():
    """A fresh in-memory lab with the canonical tables."""
    with Lab() as lab:
        yield lab


@pytest.fixture
def computed(monkeypatch):
    """The cohorts (names) of the simulations actually computed, not read from a cache, the
    store or shared simulations: every call of ``cohortlab.simulation.simulate.simulate``."""
    from cohortlab.simulation import simulate as simulate_module

    calls: list[str] = []
    real = simulate_module.simulate

    def counting(*args, **kwargs):
        calls.append(getattr(args[1], "name", args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(simulate_module, "simulate", counting)
    return calls
