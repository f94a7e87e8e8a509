"""Which notebooks run at once, in what order, and with what share of the memory and the cores
(docs/reports.md#report-command, docs/benchmarks.md#report-shares).
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import Iterable, Iterator

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
# within it. Measured at 10M users (the report's peak of 2,024 MiB): the what-if's kernel
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


def memory_budget(workers: int) -> int:
    """What ``workers`` processes that run at once may give DuckDB together, in MB: the default
    memory limit less :data:`_PYTHON_MB` for every process beyond the first."""
    from cohortlab.engines.duckdb import default_memory_limit

    return int(default_memory_limit()[:-2]) - _PYTHON_MB * (workers - 1)


def kernel_settings(names: Iterable[str], workers: int) -> dict[str, dict[str, str]]:
    """The least environment each of ``names`` (notebooks, and :data:`SHARED_SIMULATIONS` when the
    runner simulates for them) is started with while ``workers`` run at once (:class:`Shares` may
    give more, from what the processes running at its start leave):
    ``COHORTLAB_MEMORY_LIMIT``, its least share of the default limit (the budget less ``_PYTHON_MB`` for
    every process beyond the first, split by ``_MEMORY_WEIGHT``: a share is what is left when every
    other process at once has the largest weight among the others), and ``COHORTLAB_THREADS``, its
    share of the cores (at least 1): two kernels each running as many threads as there are cores
    spend a fifth more CPU time on the same queries. One at a time: nothing. A limit or a thread
    count the user set is left alone."""
    names = list(names)
    if workers <= 1:
        return {n: {} for n in names}
    budget = memory_budget(workers)
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


class Shares:
    """The environment of each process of ``names`` (:func:`kernel_settings`), decided when it starts
    from what the processes running then hold: a process may take more than its least share when the
    budget left allows it, keeping for every slot still free the largest least share of the processes
    not started yet. So processes that run together stay within the budget, none gets less than its
    least share, and the notebook that starts once the migration what-if has ended (``sync_timeline``
    on the report's longest lane) takes the what-if's share instead of a third of the budget: its
    one-time export of a large cohort then does not spill (docs/benchmarks.md#dynamic-shares).

    ``with shares.held(name) as env:`` starts ``name``'s process with ``env``; its share is given back
    when the block ends. At most ``workers`` processes hold a share at once: a further one waits for
    a free slot (the report's sharing process, started from the runner's own thread beside as many
    notebooks as there are workers, would otherwise run as one process more than the budget counts).
    Thread-safe: two notebooks start at once."""

    def __init__(self, names: Iterable[str], workers: int):
        names = list(names)
        self.workers = workers
        self.least = kernel_settings(names, workers)
        self._pending = set(names)
        self._held: dict[str, int] = {}  # each process running: its memory share in MB (0: none given)
        self._free = threading.Condition()
        # computed only when some process gets a share (two at once, no limit set by the user)
        self._budget = memory_budget(workers) if any(self._mb(e) for e in self.least.values()) else 0
        self.given: dict[str, dict[str, str]] = {}  # what each was started with

    @staticmethod
    def _mb(env: dict[str, str]) -> int | None:
        limit = env.get("COHORTLAB_MEMORY_LIMIT")
        return int(limit[:-2]) if limit else None

    def take(self, name: str) -> dict[str, str]:
        with self._free:
            self._free.wait_for(lambda: len(self._held) < max(1, self.workers))
            self._pending.discard(name)
            env = dict(self.least.get(name, {}))
            least = self._mb(env)
            mb = 0
            if least is not None:
                free_slots = max(0, self.workers - 1 - len(self._held))  # besides this one
                keep = free_slots * max((self._mb(self.least[p]) or 0 for p in self._pending), default=0)
                mb = max(self._budget - sum(self._held.values()) - keep, least)
                env["COHORTLAB_MEMORY_LIMIT"] = f"{mb}MB"
            self._held[name] = mb
            self.given[name] = env
            return env

    def give_back(self, name: str) -> None:
        with self._free:
            self._held.pop(name, None)
            self._free.notify_all()

    @contextmanager
    def held(self, name: str) -> Iterator[dict[str, str]]:
        env = self.take(name)
        try:
            yield env
        finally:
            self.give_back(name)


__all__ = ["SHARED_SIMULATIONS", "Shares", "cores_share", "kernel_settings", "longest_first", "parallel_notebooks"]
