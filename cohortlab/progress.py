"""Progress of a long command: a line on stderr that counts the tables it has written so far.

``simulate``, ``verify``, ``remedies``, ``explain`` and ``migrate`` write dozens of tables (about
25 for a simulation or the four standard migration plans, a hundred for the remedies), and
``export`` a Parquet file per table, for seconds at 1M users and minutes at 10M. With ``--progress`` (the default when stderr is a terminal) they show,
while they run, what they are doing, how many steps are done, the time spent and the step
running now::

    simulating 'Power Users': 14 steps [00:07], transitions

The steps are counted where every engine writes a table (:meth:`Engine.materialise`; ``export``
counts each Parquet file): the count needs no change in the code that simulates, and a Python
caller (a notebook, :class:`Lab`) sees nothing unless it asks (:func:`shown`). The line goes
when the command ends; a cron job's log, where stderr is no terminal, gets none.
"""

from __future__ import annotations

import re
import sys
import threading
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator

_current: ContextVar[Callable[[str], None] | None] = ContextVar("cohortlab_progress", default=None)

# the random part of a scratch table's name (``sim_3db5b63b_resolution``, ``_remedy_persons_9f0c1a2b``)
_RUN_ID = re.compile(r"(^|_)[0-9a-f]{8}(?=_|$)")


def step_label(table: str) -> str:
    """What the progress line shows for a table being written: its name without the run's random
    id, the ``sim_`` of a simulation's tables and leading underscores (``sim_3db5b63b_resolution``
    -> ``resolution``, ``_remedy_persons_9f0c1a2b`` -> ``remedy_persons``)."""
    name = _RUN_ID.sub("", str(table).rsplit(".", 1)[-1]).strip("_")
    return name[4:] if name.startswith("sim_") else name


def step(table: str) -> None:
    """Count one step (a table being written) on the progress line shown, if any."""
    show = _current.get()
    if show is not None:
        show(step_label(table))


@contextmanager
def shown(description: str, enabled: bool = True) -> Iterator[None]:
    """While the block runs, a progress line on stderr (``description`` first: text from data must
    come escaped for the terminal), counting :func:`step` calls; removed when the block ends, also
    on an error or Ctrl-C. ``enabled=False``: nothing is shown."""
    if not enabled:
        yield
        return
    from tqdm.auto import tqdm

    # every step is drawn (mininterval 0): a step is a whole SQL statement, never a tight loop
    bar = tqdm(desc=description, unit="step", file=sys.stderr, leave=False, dynamic_ncols=True, mininterval=0,
               bar_format="{desc}: {n_fmt} steps [{elapsed}]{postfix}")

    def show(label: str) -> None:
        bar.set_postfix_str(label, refresh=False)
        bar.update()

    # the time goes on during a long step (a migration's day table: minutes at 10M users)
    stop = threading.Event()
    clock = threading.Thread(target=lambda: _tick(bar, stop), name="cohortlab-progress", daemon=True)
    token = _current.set(show)
    clock.start()
    try:
        yield
    finally:
        stop.set()
        clock.join()
        _current.reset(token)
        bar.close()


def _tick(bar, stop: threading.Event, every: float = 1.0) -> None:
    while not stop.wait(every):
        bar.refresh()


__all__ = ["shown", "step", "step_label"]
