import pytest

from cohortlab import Lab


@pytest.fixture
def lab():
    """A fresh in-memory lab with the canonical tables."""
    with Lab() as lab:
        yield lab
