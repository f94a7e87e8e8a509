import pytest

from cohortlab import Lab


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
