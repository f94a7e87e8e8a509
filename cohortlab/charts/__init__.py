"""Charts: one matplotlib function per chart.

Every function takes a small, already aggregated DataFrame (the metrics layer computes it),
returns a :class:`matplotlib.figure.Figure` and never touches pyplot's global state, so it is
safe under the Agg backend, in a notebook (``display(fig)``) and in a long-running process.

    >>> from cohortlab import charts
    >>> fig = charts.waterfall_chart(sim.waterfall, title="Power Users at 2026-03-01")
    >>> fig.savefig("waterfall.png")

Conventions: titles on every figure, labelled axes, counts written on bars, sizes readable in an
HTML report (about 9 x 4.5 inches at 100 dpi). Colours: matched/true = blue, lost = red,
added = green.

One module per report notebook, every name re-exported here (``charts.<name>``):

* ``base.py``: sizes, colours, the shared figure and axis helpers; switches matplotlib's
  mathtext off on import (labels are data, docs/reports.md#escaping).
* ``match_rates.py``: the waterfall, match rate per group and over time, observed vs simulated.
* ``identity_gaps.py``: gap reasons, recoverable identities, activity, shared MPIDs, remedies.
* ``sync_timeline.py``: the cohort vs the audience over time, adds/removes, staleness, sync types.
* ``migration.py``: predicted match rate per migration plan, predicted vs observed.
"""

from __future__ import annotations

# Every function and constant of the modules, re-exported: callers use ``charts.<name>`` and
# ``from cohortlab.charts import <name>``, private helpers included (``failed_windows``: metrics); the words of the codes are
# cohortlab.glossary's (``reason_words``, ``source_words`` re-exported for the notebooks).
from cohortlab.charts.base import (
    _THOUSANDS,
    BLUE,
    DPI,
    ChartFigure,
    FIGSIZE,
    GREEN,
    GREY,
    ORANGE,
    PAUSE,
    RED,
    _bar_width,
    _count_axis,
    _date_axis,
    _empty,
    _figure,
    _fmt,
    _hbar,
    _many_bars,
    _require,
    _wrap,
    bar_heights,
    name_label,
)
from cohortlab.charts.identity_gaps import (
    NONE_FOUND,
    activity_chart,
    gaps_by_reason_chart,
    gaps_by_recoverable_chart,
    remedies_chart,
    shared_mpid_chart,
)
from cohortlab.charts.match_rates import (
    match_rate_chart,
    match_rate_over_time_chart,
    observed_vs_simulated_chart,
    waterfall_chart,
)
from cohortlab.glossary import reason_words, source_words
from cohortlab.charts.migration import (
    migration_chart,
    migration_match_rate_chart,
    predicted_vs_observed_chart,
)
from cohortlab.charts.sync_timeline import (
    _shade_pauses,
    failed_windows,
    staleness_chart,
    sync_runs_chart,
    sync_types_chart,
    timeline_chart,
)

__all__ = [
    "reason_words",
    "source_words",
    "waterfall_chart",
    "match_rate_chart",
    "match_rate_over_time_chart",
    "gaps_by_reason_chart",
    "gaps_by_recoverable_chart",
    "NONE_FOUND",
    "activity_chart",
    "timeline_chart",
    "sync_runs_chart",
    "staleness_chart",
    "sync_types_chart",
    "migration_match_rate_chart",
    "migration_chart",
    "predicted_vs_observed_chart",
    "shared_mpid_chart",
    "remedies_chart",
    "observed_vs_simulated_chart",
    "FIGSIZE",
    "name_label",
]
