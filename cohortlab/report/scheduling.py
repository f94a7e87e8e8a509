"""Which notebooks run at once, in what order, and with what share of the memory and the cores
(docs/reports.md#report-command, docs/benchmarks.md#report-shares).
"""

from __future__ import annotations

import os
from typing import Iterable

from cohortlab.errors import ReportError


def parallel_notebooks() -> int:
    """How many notebooks run at once: ``$COHORTLAB_REPORT_PARALLEL`` when set, else the cores
    this process may run on, at most 2 (each notebook is a kernel process with its own DuckDB)."""
    raw = os.environ.get("COHORTLAB_REPORT_PARALLEL")
    if raw:
        try:
            return max(1, int(raw))
        except ValueError:
            raise ReportError(f"COHORTLAB_REPORT_PARALLEL={raw!r}: expected a whole number of notebooks") from None
    from cohortlab.engines.duckdb import default_threads

    return max(1, min(2, default_threads()))


# the default notebooks, longest first on a loaded 1M-user world (one DuckDB thread each, the
# cohorts' simulations shared): eit_migration (which reads no shared simulation) starts at once,
# beside the shared simulations, and is about as long as them and identity_gaps together, so the
# two halves end together (docs/reports.md#shared-simulations)
_LONGEST_FIRST = {"eit_migration": 0, "identity_gaps": 1, "match_rates": 2, "sync_timeline": 3}


def longest_first(name: str) -> int:
    """The rank of the notebook ``name`` in the order notebooks start (0 first; any other notebook
    after the default four)."""
    return _LONGEST_FIRST.get(name, len(_LONGEST_FIRST))


# While several notebooks run at once, the default DuckDB memory limit (what one cohortlab process
# may give DuckDB) is the budget of all of them: every further process at once costs what it holds
# beyond its DuckDB limit (the kernel, pandas, matplotlib, result frames and DuckDB's own overshoot),
# taken from the budget, and the rest is split by weight so that any of them running together stay
# within it. Measured at 10M users (session 21, the report's peak of 2,024 MiB): the what-if's kernel
# held 422 MiB beyond its limit, the notebook beside it 276 MiB, and the report's own process 227 MiB.
# The migration what-if, on the report's longest path and the one that spills, has twice the weight
# of the others: it takes the same time with 680 as with 750 MB at 1M, while the other notebooks and
# the shared simulations, which hardly care (0.1-0.5 s more with 450 MB than with 750 MB), give up
# the margin the peak at 10M needs (docs/benchmarks.md#report-shares).
_PYTHON_MB = 470
_MEMORY_WEIGHT = {"eit_migration": 10}
_DEFAULT_WEIGHT = 5
SHARED_SIMULATIONS = "shared simulations"  # the key of the process that simulates for the readers


def cores_share(workers: int) -> int:
    """The DuckDB threads of each of ``workers`` processes that run at once: its share of the
    cores this process may run on, at least 1."""
    from cohortlab.engines.duckdb import default_threads

    return max(1, default_threads() // workers)


def kernel_settings(names: Iterable[str], workers: int) -> dict[str, dict[str, str]]:
    """The environment each of ``names`` (notebooks, and :data:`SHARED_SIMULATIONS` when the
    runner simulates for them) is started with while ``workers`` run at once:
    ``COHORTLAB_MEMORY_LIMIT``, its share of the default limit (the budget less ``_PYTHON_MB`` for
    every process beyond the first, split by ``_MEMORY_WEIGHT``: a share is what is left when every
    other process at once has the largest weight among the others), and ``COHORTLAB_THREADS``, its
    share of the cores (at least 1): two kernels each running as many threads as there are cores
    spend a fifth more CPU time on the same queries. One at a time: nothing. A limit or a thread
    count the user set is left alone."""
    names = list(names)
    if workers <= 1:
        return {n: {} for n in names}
    from cohortlab.engines.duckdb import default_memory_limit

    budget = int(default_memory_limit()[:-2]) - _PYTHON_MB * (workers - 1)
    weight = {n: _MEMORY_WEIGHT.get(n, _DEFAULT_WEIGHT) for n in names}
    out: dict[str, dict[str, str]] = {}
    for n in names:
        env = {}
        if not os.environ.get("COHORTLAB_MEMORY_LIMIT"):
            others = max((w for m, w in weight.items() if m != n), default=weight[n])
            env["COHORTLAB_MEMORY_LIMIT"] = f"{max(budget * weight[n] // (weight[n] + (workers - 1) * others), 100)}MB"
        if not os.environ.get("COHORTLAB_THREADS"):
            env["COHORTLAB_THREADS"] = str(cores_share(workers))
        out[n] = env
    return out


__all__ = ["SHARED_SIMULATIONS", "cores_share", "kernel_settings", "longest_first", "parallel_notebooks"]
