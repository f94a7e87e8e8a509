"""Builds the report notebooks (``*.ipynb``, without outputs) from the cell texts below, so that
they stay reviewable as Python. Run after editing: ``.venv/bin/python notebooks/build.py``
(``--check`` exits non-zero when a committed notebook differs from what this script builds).

Conventions (docs/reports.md#editing): one cell tagged ``parameters``; a kernelspec
(``cohortlab``, falling back to ``python3`` in ``cohortlab report``); the notebook only calls
the package (``cohortlab.report``: ``insights`` gathers, ``metrics`` computes, ``summaries`` words,
``notebook`` displays; ``cohortlab.charts`` draws) and
chooses what to show; it begins with a plain-language summary whose numbers come from code; each
chart has a one-line explanation; the last cell writes ``metrics.json`` into ``output_dir``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
KERNELSPEC = {"name": "cohortlab", "display_name": "cohortlab (Python 3)", "language": "python"}

COMMON_PARAMETERS = '''\
# Parameters (papermill / `cohortlab report` inject new values after this cell)
db = None                    # DuckDB file with the loaded exports (`cohortlab load`, `report --data`)
data = "../data"             # or: a folder of exports (mixpanel/..., mparticle/...), loaded in memory; db wins
cohorts = None               # a cohort name, a list of names, or None for every cohort
as_of = None                 # ISO time such as "2026-03-01T00:00:00Z"; None: each cohort's latest data
settings = None              # SyncSettings YAML file (fallback, cutoff, cadence, pauses...); None: defaults
output_dir = None            # folder for metrics.json (`cohortlab report` sets it); None: not written
show_personal_data = False   # emails and phone numbers are hidden unless True
engine = "duckdb"            # "duckdb", or "spark" (`cohortlab report --engine spark`)
spark_master = None          # Spark master URL when engine is "spark"; None: local'''

SETUP = '''\
from cohortlab import charts
from cohortlab.report import insights, metrics, summaries
from cohortlab.report import notebook as ui

lab = ui.open_lab(db, data, engine=engine, spark_master=spark_master)
names = insights.cohort_names(lab, cohorts)
known = set() if show_personal_data else ui.known_personal_values(lab)  # values never to display'''


def md(text: str):
    return nbformat.v4.new_markdown_cell(text.strip("\n"))


def code(text: str, *tags: str):
    c = nbformat.v4.new_code_cell(text.strip("\n"))
    if tags:
        c.metadata["tags"] = list(tags)
    return c


def notebook(cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = KERNELSPEC
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = cells
    for i, c in enumerate(nb.cells):  # stable ids: clean diffs
        c["id"] = f"cell-{i:02d}"
    return nb


# =========================================================================== match_rates
MATCH_RATES = notebook([
    md("""
# Match rates: how many Mixpanel cohort members reach mParticle

For each cohort: the share of its Mixpanel members whose identifier (the profile's
`$mparticle_user_id`, the same property on recent events, or the `$distinct_id` fallback) is the
MPID of an existing mParticle profile, and the discrepancy waterfall from the Mixpanel cohort
count to the mParticle audience size (docs/rules.md#waterfall).
"""),
    code(COMMON_PARAMETERS, "parameters"),
    code(SETUP + '''
sims = insights.simulate_all(lab, names, at=as_of, settings=settings)
resolution = insights.all_resolution(sims)
rates = metrics.match_rates(resolution, "cohort_name")
rates_by_source = metrics.match_rates(resolution, "identifier_source")
gaps = metrics.gaps_by_reason(resolution)
waterfalls = {c: s.waterfall for c, s in sims.items()}''', "remove-cell"),
    md("## Summary"),
    code('summary = summaries.match_rates_summary(rates, waterfalls, gaps)\nui.md(summary)'),
    md("## Match rate per cohort"),
    code('''\
ui.show(charts.match_rate_chart(rates, by="cohort_name"),
        "Share of each cohort's Mixpanel members whose identifier reaches an existing mParticle profile.")
ui.table(rates)'''),
    md("## Match rate per identifier source"),
    code('''\
ui.show(charts.match_rate_chart(rates_by_source, by="identifier_source"),
        "Which identifier Mixpanel sent: the profile's `$mparticle_user_id`, the event property (events "
        f"since {summaries.cutoff_text(settings)}), the `$distinct_id` fallback, or none.")
ui.table(rates_by_source)'''),
    md("## Where the users went: the discrepancy waterfall"),
    code('''\
for cohort, sim in sims.items():
    ui.md(f"### {cohort}")
    ui.show(charts.waterfall_chart(sim.waterfall, title=f"{cohort}: from Mixpanel members to the mParticle audience",
                                     hide_zero=True),
            "Start from the Mixpanel cohort, subtract members lost per gap reason and duplicates, then the "
            "sync's pending and stale profiles: the last bar is the audience size in mParticle.")
    ui.table(ui.waterfall_table(sim.waterfall))'''),
    md("## Match rate over time"),
    code('''\
over_time = insights.match_rates_over_time(lab, names, settings=settings, until=as_of)
if over_time.empty:
    ui.md("Each cohort has a single membership snapshot: no trend to show.")
else:
    ui.show(charts.match_rate_over_time_chart(over_time),
            "Match rate at each membership snapshot (the latest 12 per cohort).")'''),
    code('''\
metrics_file = ui.write_metrics(output_dir, "match_rates", title="Match rates", summary=summary,
                                headline=metrics.match_rates_headline(rates, waterfalls),
                                parameters={"cohorts": names, "as_of": as_of, "settings": settings},
                                **metrics.match_rates_metrics(rates, rates_by_source, sims, over_time))''', "remove-cell"),
])

# =========================================================================== identity_gaps
IDENTITY_GAPS = notebook([
    md("""
# Identity gaps: why cohort members do not reach mParticle

The members that are lost between Mixpanel and mParticle, by reason (docs/rules.md#gap-reasons), whether they are
in mParticle under another identity (`recoverable_via`), when they were last active, the
precision-loss and junk identifiers behind the losses, MPIDs shared by several Mixpanel profiles,
and what each remedy would recover.
"""),
    code(COMMON_PARAMETERS, "parameters"),
    code(SETUP + '''
sims = insights.simulate_all(lab, names, at=as_of, settings=settings)
resolution = insights.all_resolution(sims)
gaps = metrics.gaps_by_reason(resolution)
recoverable = metrics.gaps_by_recoverable(resolution)
activity = metrics.activity(resolution, "gap_reason")
shared = metrics.shared_mpids(resolution, with_ids=show_personal_data)
remedies = metrics.remedies(resolution)''', "remove-cell"),
    md("## Summary"),
    code('summary = summaries.identity_gaps_summary(resolution, remedies, shared, settings)\nui.md(summary)'),
    md("## Unmatched members by gap reason"),
    code('''\
ui.show(charts.gaps_by_reason_chart(gaps),
        "Why each unmatched member's identifier does not reach an mParticle profile (first reason that applies).")
ui.table(gaps)'''),
    md("## Are they in mParticle after all?"),
    code('''\
ui.show(charts.gaps_by_recoverable_chart(recoverable),
        "The mParticle identity through which an unmatched member's distinct_id or email finds an existing "
        "profile: the user is there, only the identifier Mixpanel sends is wrong.")
ui.table(recoverable)'''),
    md("## Last activity: before or after the event-identity cutoff"),
    code('''\
ui.show(charts.activity_chart(activity, cutoff_label=summaries.cutoff_text(settings).removeprefix("the ")),
        "Members active since the cutoff will send new data (a fix reaches them); the others cannot be fixed "
        "retroactively.")'''),
    md("## Precision loss"),
    code('''\
precision = metrics.precision_loss(resolution)
ui.md(f"**{len(precision):,}** members send an identifier that is an MPID rounded through a float "
      "(a JavaScript number or a pandas float column upstream).")
if len(precision):
    ui.table(precision, show_personal_data=show_personal_data, known=known, max_rows=20)'''),
    md("## Junk `$mparticle_user_id` values"),
    code('''\
junk = metrics.junk_values(resolution)
if junk.empty:
    ui.md("No malformed `$mparticle_user_id` values.")
else:
    ui.md("The most frequent values that are not a valid MPID (they block the `$distinct_id` fallback):")
    ui.table(junk, show_personal_data=show_personal_data, known=known)'''),
    md("## MPIDs shared by several Mixpanel profiles"),
    code('''\
ui.show(charts.shared_mpid_chart(metrics.shared_mpid_distribution(shared)),
        "One person with several Mixpanel profiles in the cohort: counted once in mParticle.")
if len(shared):
    ui.table(shared, show_personal_data=show_personal_data, known=known, max_rows=20)'''),
    md("## What each remedy would recover"),
    code('''\
ui.show(charts.remedies_chart(remedies),
        "Members recovered by each remedy, assuming those active since the cutoff send data again.")
ui.table(remedies)
ui.md(f"Not recoverable by any remedy: **{remedies.attrs['never_fixable']:,}** members in mParticle but inactive "
      f"since the cutoff, and **{remedies.attrs['not_in_mparticle']:,}** members not found in mParticle at all.")'''),
    code('''\
metrics_file = ui.write_metrics(output_dir, "identity_gaps", title="Identity gaps", summary=summary,
                                headline=metrics.identity_gaps_headline(resolution, remedies),
                                parameters={"cohorts": names, "as_of": as_of, "settings": settings},
                                **metrics.identity_gaps_metrics(resolution, remedies, shared))''', "remove-cell"),
])

# =========================================================================== sync_timeline
SYNC_TIMELINE = notebook([
    md("""
# Sync timeline: the Mixpanel cohort against the mParticle audience over time

The cohort sync replayed run by run (docs/rules.md#sync-over-time): Mixpanel's member count against the number of
mParticle profiles with `<attribute> = true`, the adds and removes each run sends, paused windows
(failed runs), and the staleness they leave behind, for a dynamic sync and a one-time export.
"""),
    code(COMMON_PARAMETERS + '''
since = None                 # show runs from this ISO time on; None: from the first run''', "parameters"),
    code(SETUP + '''
dynamic = insights.simulate_all(lab, names, at=as_of, settings=insights.with_sync_type(settings, "dynamic"))
one_time = insights.simulate_all(lab, names, at=as_of, settings=insights.with_sync_type(settings, "one_time"))
timelines = {c: metrics.window(s.timeline, since) for c, s in dynamic.items()}
one_time_timelines = {c: metrics.window(s.timeline, since) for c, s in one_time.items()}
stats = {c: metrics.timeline_summary(t) for c, t in timelines.items()}
one_time_stats = {c: metrics.timeline_summary(t) for c, t in one_time_timelines.items()}''', "remove-cell"),
    md("## Summary"),
    code('''\
summary = "\\n\\n".join([summaries.sync_overview(stats)] + [summaries.sync_summary(c, stats[c], one_time_stats[c]) for c in names])
ui.md(summary)'''),
    code('''\
for cohort in names:
    tl = timelines[cohort]
    ui.md(f"## {cohort}")
    ui.show(charts.timeline_chart(tl, title=f"{cohort}: Mixpanel cohort vs mParticle audience"),
            "Grey: members in the Mixpanel cohort; blue: mParticle profiles with the attribute true after each "
            "run; shaded: paused (failed runs); triangles: full refreshes.")
    ui.show(charts.sync_runs_chart(tl, title=f"{cohort}: adds and removes per run"),
            "Members each run sends: adds (up) and removes (down); nothing is sent while paused.")
    ui.show(charts.staleness_chart(tl, title=f"{cohort}: stale and pending profiles"),
            "Stale: profiles still true although the member left; pending: matched members not yet true.")
    ui.show(charts.sync_types_chart(metrics.sync_types(tl, one_time_timelines[cohort]),
                                    title=f"{cohort}: dynamic sync vs one-time export"),
            "A one-time export is never updated: it drifts away from the cohort as members come and go.")
    pauses = metrics.paused_windows(tl)
    if len(pauses):
        ui.md("Paused windows:")
        ui.table(pauses)'''),
    code('''\
metrics_file = ui.write_metrics(output_dir, "sync_timeline", title="Sync timeline", summary=summary,
                                headline=metrics.sync_headline(stats),
                                parameters={"cohorts": names, "as_of": as_of, "settings": settings, "since": since},
                                cohorts={c: {"dynamic": stats[c], "one_time": one_time_stats[c]} for c in names})''',
         "remove-cell"),
])

# =========================================================================== eit_migration
EIT_MIGRATION = notebook([
    md("""
# External Identity Type migration: predicted match rate, split profiles, validation

What switching the mParticle → Mixpanel output's External Identity Type (EIT) does over time
(docs/rules.md#migration), for each migration plan and remediation (an mParticle Rule or SDK code that writes the
MPID into `$mparticle_user_id`): the predicted match rate day by day, the split profiles a
switch creates (one person, two distinct_ids), the users who can never be fixed (not active after
the change), and, given exports taken after the switch, the prediction against what was observed.
"""),
    code(COMMON_PARAMETERS + '''
plans = None                 # migration plan YAML file(s) (a path or a list); None: the standard plans
switch = None                # EIT switch date of the standard plans; None: from settings, else mid-window
start = None                 # first day of the prediction (ISO date); None: the first event day
end = None                   # last day; None: the last event day
activity = "observed"        # "observed": loaded events only; "repeat": project the observed activity forward
observed_db = None           # DuckDB file (or:)
observed_data = None         # folder of exports taken after the switch, for validation; None: skip
validate_plan = None         # plan name to validate; None: the first plan''', "parameters"),
    code(SETUP + '''
plan_list = insights.migration_plans(plans, lab=lab, settings=settings, switch=switch)
start_day, end_day = insights.migration_window(lab, start, end)
daily, plan_summary = insights.run_migration(lab, plan_list, start_day, end_day, settings=settings, activity=activity)
validation = insights.migration_validation(lab, plan_list, validate_plan, names, observed_db=observed_db,
                                     observed_data=observed_data, settings=settings, at=as_of, activity=activity)''', "remove-cell"),
    md("## Summary"),
    code('summary = summaries.migration_summary(plan_summary, validation)\nui.md(summary)'),
    md("## Predicted match rate per plan"),
    code('''\
ui.show(insights.migration_chart(daily, plan_list),
        "Share of Mixpanel profiles that reach an mParticle profile, day by day, under each plan; dashed lines "
        "mark the EIT switch and remediation starts.")
ui.table(metrics.plan_table(plan_summary))'''),
    md("## Split profiles and users who can never be fixed"),
    code('''\
ui.show(charts.match_rate_over_time_chart(metrics.split_share(daily), time="day", series="plan",
                                          title="Split profiles per plan (share of Mixpanel profiles)",
                                          ylabel="split profiles (% of Mixpanel profiles)"),
        "A person active before and after a switch has two Mixpanel profiles: the old one cannot be matched "
        "unless a remediation reached it.")
ui.table(metrics.fixability_table(plan_summary))'''),
    md("## Predicted against observed"),
    code('''\
if validation is None:
    ui.md("No exports from after the switch were given (`observed_db` / `observed_data`): nothing to validate.")
else:
    ui.show(charts.predicted_vs_observed_chart(validation.comparison, x="cohort_name",
                                               title=f"Plan {validation.plan}: predicted vs observed match rate"),
            "Predicted (model) against observed (the exports taken after the switch) per cohort.")
    ui.table(validation.summary)
    ui.md(validation.verdict)'''),
    code('''\
metrics_file = ui.write_metrics(output_dir, "eit_migration", title="EIT migration", summary=summary,
                                headline=metrics.migration_headline(plan_summary, validation),
                                parameters={"plans": [p.name for p in plan_list], "start": start_day, "end": end_day,
                                            "activity": activity, "settings": settings},
                                plans=plan_summary, validation=None if validation is None else validation.summary)''',
         "remove-cell"),
])

NOTEBOOKS = {
    "match_rates": MATCH_RATES,
    "identity_gaps": IDENTITY_GAPS,
    "sync_timeline": SYNC_TIMELINE,
    "eit_migration": EIT_MIGRATION,
}


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, nb in NOTEBOOKS.items():
        path = HERE / f"{name}.ipynb"
        text = nbformat.writes(nb) + "\n"
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print("out of date (run notebooks/build.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
