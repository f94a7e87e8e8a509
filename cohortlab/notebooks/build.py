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
# Parameters (papermill / `cohortlab report` inject new values after this cell). Run by hand, set db
# (or data) to your data; a relative path is read from the kernel's folder: this notebook's in
# JupyterLab (cohortlab/notebooks/), the current one of a papermill run without --cwd.
db = None                    # DuckDB file with the loaded exports (`cohortlab load`, `report --data`)
data = "../sample_data"      # or: a folder of exports (mixpanel/..., mparticle/...), loaded in memory; db wins
                             # (default: the sample exports shipped with cohortlab)
cohorts = None               # a cohort name, a list of names, or None for every cohort
as_of = None                 # ISO time such as "2026-03-01T00:00:00Z"; None: each cohort's latest data
settings = None              # SyncSettings YAML file (fallback, cutoff, cadence, pauses...); None: defaults
output_dir = None            # folder for metrics.json (`cohortlab report` sets it); None: not written
show_personal_data = False   # emails and phone numbers are hidden unless True
engine = "duckdb"            # "duckdb", or "spark" (`cohortlab report --engine spark`)
spark_master = None          # Spark master URL when engine is "spark"; None: local
timezone = None              # a project created before 2023: its time zone (e.g. "Europe/Paris"), whose
                             # wall clock the raw events of a folder loaded here (data, observed_data) are
                             # written in; None: the folder's fetch.json record, else UTC'''

SHARED_PARAMETER = '''
simulations = None           # DuckDB file of the simulations the notebooks share (`cohortlab report` sets it)'''

SETUP = '''\
from cohortlab import charts
from cohortlab.report import insights, metrics, summaries
from cohortlab.report import notebook as ui

show_personal_data = ui.flag(show_personal_data, "show_personal_data")  # -p ... false is the text "false"
as_of = ui.time_parameter(as_of, "as_of")
lab = ui.open_lab(db, data, engine=engine, spark_master=spark_master, timezone=timezone)  # read-only: the file is never written
left_out = insights.left_out_cohorts(lab, cohorts, settings)  # named on the index page
names = insights.cohort_names(lab, cohorts, settings, left_out)
privacy = ui.redactor(lab, show_personal_data)  # emails/phones become stable pseudonyms in every output'''
# the notebooks that start from the simulation of every cohort read the one the runner shares
SHARED_SETUP = SETUP.replace("""  # read-only: the file is never written
""", """  # read-only: the file is never written
ui.share_simulations(lab, simulations)  # simulated once by `cohortlab report` for these notebooks
""")


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
    code(COMMON_PARAMETERS + SHARED_PARAMETER + '''
snapshot_at = None           # when the mParticle snapshot (observed attributes) was taken; None: detected''',
         "parameters"),
    code(SHARED_SETUP + '''
sims = insights.simulate_all(lab, names, at=as_of, settings=settings)
over_time = insights.match_rates_over_time(lab, names, settings=settings, until=as_of,
                                           limit=metrics.LIMIT_OVER_TIME)
figures = metrics.match_rates_figures(sims, over_time, insights.resolution_counts(sims), insights.sent_not_true(sims))
verified = insights.verify_all(lab, names, at=as_of, settings=settings, snapshot_at=snapshot_at,
                               show_personal_data=show_personal_data)
figures["verify"] = metrics.verify_figures(verified, redact=lambda df: ui.redact(df, show_personal_data))
summary = summaries.match_rates_summary(figures)
doc = ui.publish(output_dir, "match_rates", title="Match rates", figures=figures, summary=summary,
                 headline=metrics.figures_headline_match_rates(figures),
                 card=[summaries.verify_line(figures["verify"])] if figures["verify"]["observed"] else None,
                 context=ui.context(names, [v["as_of"] for v in figures["cohorts"].values()], db=db, data=data,
                                    as_of=as_of, left_out=left_out, settings=settings),
                 parameters={"cohorts": names, "as_of": as_of, "settings": settings, "snapshot_at": snapshot_at})
f = doc["metrics"]  # from here on, every figure shown is read from metrics.json''', "remove-cell"),
    md("## Summary"),
    code('ui.md(summaries.match_rates_summary(f))'),
    md("## Match rate per cohort"),
    code("""\
rates = ui.frame([{"cohort_name": c, **{k: v[k] for k in ("members", "matched", "unmatched", "match_rate", "audience")}}
                  for c, v in f["cohorts"].items()])
ui.show_if(lambda: charts.match_rate_chart(rates, by="cohort_name"),
           "Share of each cohort's Mixpanel members whose identifier reaches an existing mParticle profile "
           "(matched / members).", has_data=bool(len(rates)) and int(rates["members"].sum()) > 0,
           nothing_to_show="no cohort has members")
ui.table(rates, columns={"cohort_name": "cohort", "members": "Mixpanel members", "matched": "matched",
                         "unmatched": "not matched", "match_rate": "match rate (of members)",
                         "audience": "mParticle audience"})"""),
    md("## Match rate per identifier source"),
    code("""\
by_source = ui.frame(f["by_identifier_source"])
if len(by_source):  # the identifier sources in words (docs/glossary.md#identifier-sources)
    by_source["identifier_source"] = [charts.source_words(v) for v in by_source["identifier_source"]]
ui.show_if(lambda: charts.match_rate_chart(by_source, by="identifier_source"),
           "Which identifier Mixpanel sent: the profile's `$mparticle_user_id`, the event property (events "
           f"since {summaries.cutoff_text(settings)}), the `$distinct_id` fallback, or none.",
           has_data=len(by_source) > 0, nothing_to_show="no cohort has members")
ui.table(by_source, columns={"identifier_source": "identifier sent", "members": "members", "matched": "matched",
                             "match_rate": "match rate (of these members)"})"""),
    md("""
## Where the users went: the discrepancy waterfall

The summary says what fixes each step. What a Rule or SDK code would recover is valued on the
identity-gaps page (*What each remedy would recover*), each remedy by its own simulation: it is not
estimated again here.
"""),
    code("""\
for cohort, v in f["cohorts"].items():
    ui.md(f"### {ui.text(cohort)}")
    ui.show_if(lambda: charts.waterfall_chart(ui.frame(v["waterfall"]), hide_zero=True,
                                              title=f"{cohort}: from Mixpanel members to the mParticle audience"),
               "Start from the Mixpanel cohort, subtract the members lost per gap reason and the extra profiles of "
               "shared MPIDs, then the matched profiles not yet true; add the stale profiles and the orphans the feed "
               "set true: the last bar is the audience size in mParticle.",
               has_data=v["members"] > 0, nothing_to_show="the cohort has no members")
    ui.table(ui.waterfall_table(v["waterfall"]))"""),
    md("""
## Observed in mParticle vs simulated

When a loaded mParticle snapshot carries the cohort attribute, each profile's observed value (true,
false or absent) is compared with the simulated one (docs/rules.md#observed-state), and each
disagreement gets the first cause that applies.
"""),
    code("""\
v = f["verify"]
ui.md(summaries.verify_summary(v))
if v["observed"]:
    ui.show(charts.observed_vs_simulated_chart(metrics.verify_audiences(v), metrics.verify_causes(v["totals"])),
            "Left: profiles with the attribute true in the mParticle snapshot (observed) and in the simulation; "
            "right: the profiles whose observed value differs from the simulated one, by cause, all cohorts.")
    ui.md("**Disagreements by cause** (first that applies) and what to do:\\n\\n" + summaries.verify_causes_text(v["totals"], insights.sync_type_of(settings)))
for cohort, c in v["cohorts"].items():
    if not c["observed"]:
        continue
    ui.md(f"### {ui.text(cohort)}: observed vs simulated")
    ui.md(summaries.verify_times(c))
    ui.table(c["audience"], columns={"audience": "audience", "observed": "observed in mParticle",
                                     "simulated": "simulated", "difference": "observed − simulated"})
    ui.table(c["confusion"], columns={"simulated": "simulated ↓ · observed →", "true": "true", "false": "false",
                                      "absent": "absent", "other": "other value"})
    if c["disagreements"]:
        ui.md(summaries.verify_causes_counts(c))
        shown = len(c["disagreement_rows"])
        ui.md(f"The {'first ' + format(shown, ',') + ' of the ' if c['disagreements'] > shown else ''}"
              f"{summaries.counted(c['disagreements'], 'profile')} that "
              f"{'disagrees' if c['disagreements'] == 1 else 'disagree'}:")
        rows = ui.frame(c["disagreement_rows"])
        ui.table(rows.assign(cause=[summaries.cause_words(x) for x in rows["cause"]]),
                 show_personal_data=show_personal_data, max_rows=v["row_limit"],
                 columns={"mpid": "MPID", "simulated": "simulated", "observed": "observed", "cause": "cause",
                          "detail": "what the data shows"})
    for note in c["notes"]:
        ui.md(f"Note: {ui.text(note)}.")"""),
    md("## Match rate over time"),
    code("""\
over = ui.frame(f["over_time"])
ui.show_if(lambda: charts.match_rate_over_time_chart(over),
           f"Match rate (matched / members) at each membership snapshot, the latest {f['over_time_limit']:,} "
           "per cohort.", has_data=len(over) > 0 and bool(over["match_rate"].notna().any()),
           nothing_to_show="no cohort has a member at any of its membership snapshots: no match rate to draw"
           if len(over) else "no cohort has two membership snapshots (one known from webhook payloads has none), "
           "so there is no trend")"""),
])

# =========================================================================== identity_gaps
IDENTITY_GAPS = notebook([
    md("""
# Identity gaps: why cohort members do not reach mParticle

The members that are lost between Mixpanel and mParticle, by reason (docs/rules.md#gap-reasons),
whether they are in mParticle under another identity (`recoverable_via`), when they were last
active, the precision-loss and junk identifiers behind the losses, MPIDs shared by several Mixpanel
profiles, and what each remedy would recover, each valued by its own simulation.
"""),
    code(COMMON_PARAMETERS + SHARED_PARAMETER, "parameters"),
    code(SHARED_SETUP + '''
sims = insights.simulate_all(lab, names, at=as_of, settings=settings)
resolution = insights.resolution_counts(sims)  # members counted in the database, not fetched one by one
shared = metrics.shared_mpids(insights.shared_mpid_members(sims), with_ids=show_personal_data)
remedy_values = insights.remedies_all(lab, names, at=as_of, settings=settings)  # one simulation per remedy
figures = metrics.identity_gaps_figures(resolution, shared, remedy_values=remedy_values,
                                        redact=lambda df: ui.redact(df, show_personal_data),
                                        before_first_profile=insights.sent_before_first_profile(sims))
summary = summaries.identity_gaps_summary(figures, settings)
doc = ui.publish(output_dir, "identity_gaps", title="Identity gaps", figures=figures, summary=summary,
                 headline=metrics.figures_headline_identity_gaps(figures),
                 context=ui.context(names, [metrics.simulation_as_of(s) for s in sims.values()], db=db, data=data,
                                    as_of=as_of, left_out=left_out, settings=settings),
                 parameters={"cohorts": names, "as_of": as_of, "settings": settings})
f = doc["metrics"]  # from here on, every figure shown is read from metrics.json
cutoff = summaries.cutoff_text(settings)''', "remove-cell"),
    md("## Summary"),
    code('ui.md(summaries.identity_gaps_summary(f, settings))'),
    md("## Unmatched members by gap reason"),
    code("""\
gaps = ui.frame(f["by_gap_reason"])
ui.show_if(lambda: charts.gaps_by_reason_chart(gaps),
           "Why each unmatched member's identifier does not reach an mParticle profile (first reason that applies).",
           has_data=f["unmatched"] > 0, nothing_to_show="every member reaches an mParticle profile")
if f["unmatched"]:
    ui.table(gaps.assign(gap_reason=[charts.reason_words(v) for v in gaps["gap_reason"]]),
             columns={"gap_reason": "gap reason", "users": "unmatched members"})"""),
    md("## Are they in mParticle after all?"),
    code("""\
recoverable = ui.frame(f["by_recoverable_via"]).fillna({"recoverable_via": charts.NONE_FOUND})
ui.show_if(lambda: charts.gaps_by_recoverable_chart(recoverable),
           "The mParticle identity through which an unmatched member's distinct_id or email finds an existing "
           "profile (orange: the user is there, only the identifier Mixpanel sends is wrong); grey: no identity "
           "finds one profile (none does, or several profiles hold it).",
           has_data=f["unmatched"] > 0, nothing_to_show="no unmatched members")
if f["unmatched"]:
    ui.table(recoverable, columns={"recoverable_via": "found in mParticle through", "users": "unmatched members"})"""),
    md("## Last activity: before or after the event-identity cutoff"),
    code("""\
ui.show_if(lambda: charts.activity_chart(ui.frame(f["activity"]), cutoff_label=summaries.cutoff_label(settings)),
           "Members active since the cutoff send new data, which a fix can reach (a Rule or SDK code only through "
           "logged-in events: docs/rules.md#remediations); the others cannot be fixed retroactively.", has_data=f["unmatched"] > 0 and f["active_after_cutoff"] is not None,
           nothing_to_show="no unmatched members" if not f["unmatched"] else
           "the event identity rule is off in these settings: there is no cutoff to compare the last activity with")"""),
    md("## Precision loss"),
    code("""\
ui.md(f"{summaries.precision_loss_words(f)} an identifier that is an MPID rounded through a float "
      "(a JavaScript number or a pandas float column upstream).")
if f["precision_loss"]:
    if f["precision_loss"] > len(f["precision_loss_rows"]):
        ui.md(f"The first {len(f['precision_loss_rows']):,} of them:")
    rows = ui.frame(f["precision_loss_rows"])
    rows["identifier_source"] = [charts.source_words(v) for v in rows["identifier_source"]]
    ui.table(rows, show_personal_data=show_personal_data,
             max_rows=f["row_limit"],
             columns={"cohort_name": "cohort", "distinct_id": "distinct id", "identifier_source": "identifier sent",
                      "identifier": "value sent"})"""),
    md("## Junk `$mparticle_user_id` values"),
    code("""\
if not f["junk_rows"]:
    ui.md("No malformed `$mparticle_user_id` values.")
else:
    n = f["malformed_mparticle_user_id"]
    ui.md(f"{summaries.counted(n, 'member', bold=True)} {'sends' if n == 1 else 'send'} a `$mparticle_user_id` "
          "that is not a valid "
          "MPID (it blocks the `$distinct_id` fallback); the most frequent values:")
    ui.table(f["junk_rows"], show_personal_data=show_personal_data,
             columns={"identifier": "value sent", "users": "members"})"""),
    md("## MPIDs shared by several Mixpanel profiles"),
    code("""\
per_cohort = f["shared_mpids"] > f["shared_mpids_distinct"]  # an MPID shared in several cohorts: one bar each
ui.show_if(lambda: charts.shared_mpid_chart(ui.frame(f["shared_distribution"]),
                                            ylabel="MPIDs (counted once per cohort)" if per_cohort else "MPIDs"),
           "One person with several Mixpanel profiles in the cohort: counted once in mParticle.",
           has_data=f["shared_mpids"] > 0, nothing_to_show="no MPID is claimed by several Mixpanel profiles")
if f["shared_mpids"]:
    ui.md(summaries.shared_mpids_words(f, bold=True)
          + (f"; the first {len(f['shared_rows']):,} (cohort, MPID) pairs:" if f["shared_mpids"] > len(f["shared_rows"])
             else "."))
    ui.table(f["shared_rows"], show_personal_data=show_personal_data, max_rows=f["row_limit"],
             columns={"cohort_name": "cohort", "mpid": "MPID", "profiles": "Mixpanel profiles",
                      "distinct_ids": "distinct ids"})"""),
    md("## What each remedy would recover"),
    code("""\
remedies = ui.frame(f["remedies"])
applicable = remedies[remedies["applies"].astype(bool)] if len(remedies) else remedies  # the chart leaves out a remedy with nothing to act on
ui.show_if(lambda: charts.remedies_chart(applicable),
           "The members' users (their mParticle profiles) each remedy brings into the audience, each from its own "
           "simulation: the remedy applied from its start (the members' activity since then stands in for new "
           "data), compared with the simulation as configured (docs/simulate.md#remedies). A profile that is true "
           "without being a member's (a member who left stays true after a re-export, which removes nothing) "
           "counts in the audience's change, not here; a matched member still waiting to be sent (pending) that "
           "a re-export sends counts here, so a re-export can recover more people than are unmatched. A remedy "
           "the settings give nothing to act on (no pause to reconnect after, no run to re-export at: its note "
           "says why) is in the table below, not in the chart.",
           has_data=int(applicable["users"].clip(lower=0).sum()) > 0 if len(applicable) else False,
           nothing_to_show=summaries.no_remedy_recovers(f))
ui.table(remedies, columns={"remedy": "remedy", "users": "members' users recovered",
                            "gained": "audience change", "audience_after": "audience after",
                            "note": "how it was simulated"})
if f["remedies_by_cohort"]:  # the table sums the cohorts: each one's own, for a question about one
    ui.md("Each cohort's own figures (the table above sums them):")
    ui.table(f["remedies_by_cohort"], columns={"cohort": "cohort", "remedy": "remedy",
                                               "users": "members' users recovered", "gained": "audience change",
                                               "audience_before": "audience as simulated",
                                               "audience_after": "audience after"}, max_rows=100)
ui.md((f"Not recoverable by a remedy that waits for new data: {summaries.counted(f['never_fixable'], 'member', bold=True)} "
       f"in mParticle but inactive since the cutoff. " if f["never_fixable"] is not None else
       "The event identity rule is off in these settings: no member is counted as inactive since a cutoff. ")
      + f"Found under none of their identities: "
      f"{summaries.counted(f['not_in_mparticle'], 'member', bold=True)} (`recoverable_via` empty; "
      f"{summaries.HIDDEN_MPID_NOTE}).")"""),
])

# =========================================================================== sync_timeline
SYNC_TIMELINE = notebook([
    md("""
# Sync timeline: the Mixpanel cohort against the mParticle audience over time

The cohort sync replayed run by run (docs/rules.md#sync-over-time): Mixpanel's member count
against the number of mParticle profiles with `<attribute> = true`, the adds and removes each run
sends, paused windows (failed runs), and the staleness they leave behind, for a dynamic sync and a
one-time export.
"""),
    code(COMMON_PARAMETERS + SHARED_PARAMETER + '''
since = None                 # show runs from this ISO time on; None: from the first run''', "parameters"),
    code(SHARED_SETUP + '''
since = ui.time_parameter(since, "since")
dynamic = insights.simulate_all(lab, names, at=as_of, settings=insights.with_sync_type(settings, "dynamic"))
insights.check_since([s.timeline for s in dynamic.values()], since)  # no run after it: nothing to show
one_time = insights.timelines_all(lab, names, at=as_of, settings=insights.with_sync_type(settings, "one_time"))
figures = metrics.sync_figures({c: metrics.window(s.timeline, since) for c, s in dynamic.items()},
                               {c: metrics.window(timeline, since) for c, timeline in one_time.items()},
                               configured=insights.sync_type_of(settings),
                               sent_not_true=insights.sent_not_true(dynamic),
                               stale_orphans=insights.stale_orphans(lab, dynamic, one_time, at=as_of, settings=settings))
summary = summaries.sync_report_summary(figures)
doc = ui.publish(output_dir, "sync_timeline", title="Sync timeline", figures=figures, summary=summary,
                 headline=figures["totals"],
                 context=ui.context(names, [metrics.simulation_as_of(s) for s in dynamic.values()], db=db, data=data,
                                    as_of=as_of, left_out=left_out, settings=settings),
                 parameters={"cohorts": names, "as_of": as_of, "settings": settings, "since": since})
f = doc["metrics"]  # from here on, every figure shown is read from metrics.json''', "remove-cell"),
    md("## Summary"),
    code('ui.md(summaries.sync_report_summary(f))'),
    code('''\
suffix, prefix = summaries.dynamic_replay_words(f.get("configured", "dynamic"))  # the charts replay a dynamic sync
within = prefix[:1].lower() + prefix[1:]  # after "Nothing to show: "
for cohort, v in f["cohorts"].items():
    tl, ot = ui.frame(v["runs"]), ui.frame(v["one_time_runs"])
    ui.md(f"## {ui.text(cohort)}")
    has_runs = len(tl) > 0
    # a cohort without a member at any run shown: its four charts would be empty (two of them drawn
    # on a 0-1 axis), so one line says why, in place of all four ("never" only when no run before
    # since had one either)
    empty = summaries.never_a_member(v["dynamic"], tl, ot, before_window=v.get("member_before_window", False))
    if empty:
        ui.nothing(empty)
    else:
        ui.show_if(lambda: charts.timeline_chart(tl, title=f"{cohort}: Mixpanel cohort vs mParticle audience{suffix}"),
                   prefix + summaries.timeline_caption(v["dynamic"]), has_data=has_runs,
                   nothing_to_show="no sync runs in the window")
        sent = has_runs and int(tl["adds"].sum() + tl["removes"].sum()) > 0
        ui.show_if(lambda: charts.sync_runs_chart(tl, title=f"{cohort}: adds and removes per run{suffix}"),
                   prefix + "Members each run sends: adds (up) and removes (down); nothing is sent while paused.",
                   has_data=sent, nothing_to_show=within + "no run sent any add or remove")
        errors = has_runs and int(tl["stale_true"].sum() + tl["not_yet_true"].sum()) > 0
        ui.show_if(lambda: charts.staleness_chart(tl, title=f"{cohort}: stale and pending profiles{suffix}"),
                   prefix + "Stale: profiles still true although the member left; pending: matched members not yet "
                   "true.", has_data=errors, nothing_to_show=within + summaries.no_staleness(v["dynamic"]))
        ui.show_if(lambda: charts.sync_types_chart(metrics.sync_types(tl, ot),
                                                   title=f"{cohort}: dynamic sync vs one-time export"),
                   "A one-time export is never updated: it drifts away from the cohort as members come and go.",
                   has_data=has_runs, nothing_to_show="no sync runs in the window")
    if v["paused_windows"]:
        ui.md("Paused windows:")
        ui.table(ui.paused_windows_table(v["paused_windows"], v["dynamic"].get("last_run")))'''),
])

# =========================================================================== eit_migration
EIT_MIGRATION = notebook([
    md("""
# External Identity Type migration: predicted match rate, split profiles, validation

What switching the mParticle → Mixpanel output's External Identity Type (EIT) does over time
(docs/rules.md#migration), for each migration plan and remediation (an mParticle Rule or SDK
code that writes the MPID into `$mparticle_user_id`): the predicted match rate day by day, the
split profiles a switch creates (one person, two distinct_ids), the users who can never be fixed
(not active after the change), and, given exports taken after the switch, the prediction against
what was observed.
"""),
    code(COMMON_PARAMETERS + '''
plans = None                 # migration plan YAML file(s) (a path or a list); None: the standard plans
switch = None                # EIT switch date of the standard plans; None: from settings, else from the data
start = None                 # first day of the prediction (ISO date); None: the first event day
end = None                   # last day; None: the last event day (activity "repeat": 30 days after it)
activity = "observed"        # "observed": loaded events only; "repeat": project the observed activity forward
observed_db = None           # DuckDB file of exports taken after the switch, for validation (or:)
observed_data = None         # a folder of such exports; both None: no validation
validate_plan = None         # plan name to validate; None: the first plan
data_switch = None           # set by cohortlab report: the data's switch as it read it before the page ran
switch_from = None           # set by cohortlab report: "manifest" when switch is a synthetic world's, not given
world_eit = None             # set by cohortlab report: a synthetic world's EIT before its switch (not customer_id)''', "parameters"),
    code(SETUP + '''
given_settings, settings = settings, insights.with_world_eit(settings, world_eit)  # a world's EIT before its switch
world_eit = world_eit if settings is not given_settings else None  # the one the page uses: none when settings give theirs
insights.check_plan_parameters(plans, switch, validate_plan)  # before any plan runs
start_day, end_day = insights.migration_window(lab, start, end, activity=activity)
# the standard plans around a switch outside the data or after the window are all the same: refused
switch_at, switch_source = (insights.switch_in_window(lab, settings, switch, end_day=end_day, end_given=bool(end),
                                                     found=data_switch, switch_from=switch_from)
                            if plans is None else (None, "the plans"))
plan_list = insights.migration_plans(plans, switch_at=switch_at, settings=settings)
daily, plan_summary = insights.run_migration(lab, plan_list, start_day, end_day, settings=settings, activity=activity)
validation = insights.migration_validation(lab, plan_list, validate_plan, names, observed_db=observed_db,
                                           observed_data=observed_data, settings=settings, at=as_of,
                                           activity=activity, timezone=timezone)
figures = metrics.migration_figures(plan_summary, daily, validation, switch=switch_at, switch_source=switch_source,
                                    start=start_day, end=end_day, plan_list=plan_list)
summary = summaries.migration_summary(figures, settings)
# the plans count every Mixpanel profile with events; the cohorts are the validation's
context = ui.context(names if validation is not None else [], None, db=db, data=data, settings=settings,
                     as_of=summaries.migration_as_of(as_of, start_day, end_day),
                     population="every Mixpanel profile with events")
from cohortlab.migration.run import projection_words, settings_used

# the header says which settings the what-if uses, and which it does not (the sync's options)
context["settings"] = settings_used(settings, plans_given=plans is not None, validation=validation is not None,
                                    switch=switch_at, eit_from=insights.WORLD_EIT_FROM if world_eit else None)
projection = projection_words(lab.engine, activity)  # None, or which days are projected (activity: repeat)
if projection:
    context["as_of"] += f"; {projection}"
doc = ui.publish(output_dir, "eit_migration", title="EIT migration", figures=figures, summary=summary,
                 headline=metrics.figures_headline_migration(figures), context=context,
                 parameters={"plans": [p.name for p in plan_list], "start": start_day, "end": end_day,
                             "activity": activity, "settings": given_settings, "switch": switch_at,
                             # where that switch came from: "manifest" when the report read it from a
                             # synthetic world's manifest.json (no -p switch), so that it is not read as one given
                             "switch_from": switch_from, "projection": projection,
                             # the EIT before the switch the report read from the same manifest (not the settings')
                             "world_eit": world_eit})
f = doc["metrics"]  # from here on, every figure shown is read from metrics.json''', "remove-cell"),
    md("## Summary"),
    code("""\
ui.md(summaries.migration_summary(f, settings))
if doc["parameters"]["projection"]:  # activity: repeat: the figures after the last event are projected
    ui.md(f"The {ui.text(doc['parameters']['projection'])}.")"""),
    md("## Predicted match rate per plan"),
    code("""\
daily_f = ui.frame(f["daily"])
ui.show_if(lambda: insights.migration_chart(daily_f, plan_list),
           "Share of Mixpanel profiles that reach an mParticle profile (matched / Mixpanel profiles with events), "
           "day by day, under each plan; dashed lines mark the EIT switch and remediation starts.",
           has_data=len(daily_f) > 0, nothing_to_show="no days in the window")
ui.table(f["plans"], columns={"plan": "plan", "first_change": "first change", "members_end": "Mixpanel profiles",
                              "matched_end": "matched", "final_match_rate": "match rate (of profiles)",
                              "days_to_90pct": "days to 90% of final", "days_to_99pct": "days to 99% of final"})"""),
    md("## Split profiles and users who can never be fixed"),
    code("""\
ui.show_if(lambda: charts.match_rate_over_time_chart(daily_f.assign(match_rate=daily_f["split_share"]),
                                                     time="day", series="plan",
                                                     title="Split profiles per plan (share of Mixpanel profiles)",
                                                     ylabel="split profiles (% of Mixpanel profiles)",
                                                     order=[p["plan"] for p in f["plans"]]),  # as the table
           "A person active before and after a switch has two Mixpanel profiles: the old one cannot be matched "
           "unless a remediation reached it.",
           has_data=len(daily_f) > 0 and int(daily_f["split_profiles"].sum()) > 0,
           nothing_to_show="no plan creates split profiles in this window")
ui.table(f["plans"], columns={"plan": "plan", "split_profiles_end": "split profiles",
                              "stranded_profiles": "stranded profiles", "never_fixable_users": "never fixable users",
                              "unmatched_users": "unmatched users",
                              "not_in_mparticle_profiles": "not in mParticle",
                              "deleted_mparticle_profiles": "deleted in mParticle",
                              "users_needing_reexport": "matchable only after being sent (need a re-export)",
                              "reexport_users": "re-sent by the plan's re-export"})"""),
    md("## Predicted against observed"),
    code("""\
v = f["validation"]
if v is None:
    ui.md("No exports from after the switch were given (`observed_db` / `observed_data`): nothing to validate.")
else:
    comparison = ui.frame(v["cohorts"]).rename(columns={"predicted_match_rate": "predicted",
                                                        "observed_match_rate": "observed"})
    ui.show(charts.predicted_vs_observed_chart(comparison, x="cohort_name",
                                               title=f"Plan {v['plan']}: predicted vs observed match rate"),
            "Predicted (model) against observed (the exports taken after the switch): matched / cohort members. "
            "Observed is each member's identifier as the exports show it at the as-of time; the match-rates page "
            "counts the identifier each member was last sent with (docs/rules.md#resolution-time), so the two "
            "can differ by the members whose identifier changed after their last send.")
    # one row per cohort: a member of several cohorts is in each row (nothing is pooled)
    ui.table(v["cohorts"], columns={"cohort_name": "cohort", "as_of": "as of", "members": "members",
                                    "predicted_matched": "predicted to match",
                                    "predicted_match_rate": "predicted match rate (of members)",
                                    "observed_matched": "observed matched (identifier at the as-of time)",
                                    "observed_match_rate": "observed match rate (of members)",
                                    "users_differ": "members that differ"})
    ui.md("\\n".join(f"- **{ui.text(c)}**: {ui.text(text)}" for c, text in v["verdicts"].items()))"""),
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
