"""Chart functions: each builds a titled, labelled Figure whose bars/lines carry the data."""

import io
import re

import matplotlib.dates as mdates
import pandas as pd
import pytest
from matplotlib.figure import Figure

from cohortlab import charts


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _check_basics(fig, title_part, xlabel_part=None, ylabel_part=None):
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert title_part.lower() in fig.get_suptitle().lower()
    if xlabel_part:
        assert xlabel_part.lower() in ax.get_xlabel().lower()
    if ylabel_part:
        assert ylabel_part.lower() in ax.get_ylabel().lower()
    assert _png(fig).startswith(b"\x89PNG")
    return ax


def _bar_heights(ax):
    return [p.get_height() for p in ax.patches]


def _bar_widths(ax):
    return [p.get_width() for p in ax.patches]


WATERFALL = pd.DataFrame(
    {
        "step": [0, 1, 2, 3, 4, 5, 6],
        "label": ["Mixpanel members", "distinct_id_not_mpid", "mpid_not_found", "shared_mpid",
                  "should be true", "not_yet_true", "stale_true"],
        "kind": ["total", "minus", "minus", "minus", "total", "minus", "plus"],
        "count": [100, 20, 5, 3, 72, 2, 10],
    }
)


def test_waterfall_bars_equal_counts_and_float_at_running_level():
    fig = charts.waterfall_chart(WATERFALL, title="Power Users at 2026-03-01")
    ax = _check_basics(fig, "Power Users", "step", "users")
    bars = ax.patches[: len(WATERFALL)]
    assert [b.get_height() for b in bars] == [100, 20, 5, 3, 72, 2, 10]
    # minus bars hang from the running level, plus bars rise from it
    assert [b.get_y() for b in bars] == [0, 80, 75, 72, 0, 70, 70]
    # without step codes, the labels are drawn as written (a label is data: its underscores stay)
    assert [t.get_text().replace("\n", " ") for t in ax.get_xticklabels()][1] == "distinct_id_not_mpid"


def test_the_waterfall_legend_names_only_the_kinds_of_bar_drawn():
    # "added" was in the legend of a waterfall without any addition
    def legend(df):
        return [t.get_text() for t in charts.waterfall_chart(df).legends[0].get_texts()]

    assert legend(WATERFALL) == ["total", "lost", "added"]
    assert legend(WATERFALL.assign(count=[100, 20, 5, 3, 72, 2, 0])) == ["total", "lost"]
    assert legend(WATERFALL.assign(count=[72, 0, 0, 0, 72, 0, 10])) == ["total", "added"]


def test_waterfall_rejects_unknown_kind():
    bad = WATERFALL.assign(kind=["total", "oops", "minus", "minus", "total", "minus", "plus"])
    with pytest.raises(ValueError, match="oops"):
        charts.waterfall_chart(bad)


def test_waterfall_missing_column_is_a_clear_error():
    with pytest.raises(ValueError, match="count"):
        charts.waterfall_chart(WATERFALL.drop(columns="count"))


def test_match_rate_chart_bars_are_percent():
    rates = pd.DataFrame(
        {"identifier_source": ["mparticle_user_id", "event_property", "distinct_id"],
         "members": [50, 30, 20], "matched": [45, 30, 5], "match_rate": [0.9, 1.0, 0.25]}
    )
    fig = charts.match_rate_chart(rates, by="identifier_source")
    ax = _check_basics(fig, "identifier source", "%", "identifier source")
    assert _bar_widths(ax) == pytest.approx([90, 100, 25])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["mparticle_user_id", "event_property", "distinct_id"]
    texts = [t.get_text() for t in ax.texts]
    assert "90.0%  (45 / 50)" in texts


def test_match_rate_labels_stay_inside_the_frame_and_never_round_to_100_percent():
    rates = pd.DataFrame({"cohort_name": ['<b>x</b> "&\' Power', "Buyers <script>alert(1)</script> & $x$ *em*", "Few"],
                          "members": [216, 3374, 100], "matched": [216, 3373, 20],
                          "match_rate": [1.0, 3373 / 3374, 0.2]})
    fig = charts.match_rate_chart(rates, by="cohort_name")
    _png(fig)  # laid out and drawn
    ax = fig.axes[0]
    frame = ax.get_window_extent()
    labels = [t for t in ax.texts if t.get_text()]
    assert sorted(t.get_text() for t in labels) == ["100.0%  (216 / 216)", "20.0%  (20 / 100)",
                                                    ">99.9%  (3,373 / 3,374)"]
    for t in labels:
        box = t.get_window_extent()
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1, t.get_text()


def test_source_words_follow_the_glossary():
    assert [charts.source_words(v) for v in ["mparticle_user_id", "event_property", "distinct_id", "none", None,
                                              "other"]] == [
        "profile's $mparticle_user_id", "event's $mparticle_user_id", "$distinct_id (fallback)",
        "none (strict fallback)", "(none)", "other"]


def test_match_rate_over_time_has_a_line_per_cohort():
    df = pd.DataFrame({
        "as_of": pd.to_datetime(["2026-02-01", "2026-02-02", "2026-02-01", "2026-02-02"]),
        "cohort_name": ["A", "A", "B", "B"], "match_rate": [0.5, 0.6, 0.7, 0.8],
    })
    ax = _check_basics(charts.match_rate_over_time_chart(df), "over time", "date", "match rate")
    assert len(ax.lines) == 2
    assert list(ax.lines[0].get_ydata()) == pytest.approx([50, 60])


def test_a_cohort_without_a_rate_is_named_in_the_legend_without_a_line():
    """A cohort that never has a member has no match rate: its legend entry said so only by a line
    that was nowhere on the chart."""
    df = pd.DataFrame({
        "as_of": pd.to_datetime(["2026-02-01", "2026-02-02", "2026-02-01", "2026-02-02"]),
        "cohort_name": ["A", "A", "Empty", "Empty"], "match_rate": [0.5, 0.6, None, None],
    })
    ax = charts.match_rate_over_time_chart(df).axes[0]
    assert [len(line.get_xdata()) for line in ax.lines] == [2, 0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["A", "Empty: no rate (nobody to match)"]


def test_gaps_by_reason_sorted_bars_equal_users():
    gaps = pd.DataFrame({"gap_reason": ["mpid_not_found", "distinct_id_not_mpid", "malformed_mparticle_user_id"],
                         "users": [7, 30, 2]})
    ax = _check_basics(charts.gaps_by_reason_chart(gaps), "gap reason", "unmatched", "gap reason")
    assert _bar_widths(ax) == [2, 7, 30]
    assert [t.get_text() for t in ax.get_yticklabels()] == [  # in words, as the waterfall names them
        "$mparticle_user_id not an MPID", "MPID of no mParticle profile", "$distinct_id not an MPID"]


def test_gaps_by_recoverable_names_none_as_no_single_profile_found():
    gaps = pd.DataFrame({"recoverable_via": ["customer_id", None, "email"], "users": [12, 5, 3]})
    ax = _check_basics(charts.gaps_by_recoverable_chart(gaps), "mparticle", "unmatched", "identity")
    assert _bar_widths(ax) == [3, 5, 12]
    # null: no identity finds one profile; not "(not in mParticle)": such a member may be there, under
    # an MPID equal to its distinct_id while a junk $mparticle_user_id is sent
    assert "(no single profile found)" in [t.get_text() for t in ax.get_yticklabels()]
    assert not any("not in mParticle" in t.get_text() for t in ax.get_yticklabels())
    # the title covers every bar, the grey one too: it does not say they ARE in mParticle
    assert ax.figure.get_suptitle() == "Unmatched members by the mParticle identity that finds them"


def test_activity_chart_stacks_before_and_after():
    act = pd.DataFrame({"gap_reason": ["mpid_not_found", "mpid_not_found", "distinct_id_not_mpid"],
                        "active_after_cutoff": [True, False, False], "users": [4, 6, 9]})
    ax = _check_basics(charts.activity_chart(act), "before/after", "members", "gap reason")
    # rows sorted by total: mpid_not_found (10) then distinct_id_not_mpid (9)... ascending: 9, 10
    widths = _bar_widths(ax)
    assert widths == [9, 6, 0, 4]  # before-bars (dist, mpid), then after-bars (dist, mpid)
    assert ax.patches[3].get_x() == 6  # after stacked on before


def test_activity_chart_puts_the_counts_of_narrow_segments_after_the_bar():
    act = pd.DataFrame({"gap_reason": ["distinct_id_not_mpid", "distinct_id_not_mpid", "mpid_not_found", "mpid_not_found"],
                        "active_after_cutoff": [False, True, False, True], "users": [10283, 164, 306, 5752]})
    ax = charts.activity_chart(act).axes[0]
    texts = [t.get_text() for t in ax.texts]
    # inside the segments: only those wide enough for their count
    assert sorted(t for t in texts if t and "before" not in t and "after" not in t) == ["10,283", "5,752"]
    assert "306 before" in texts and "164 on/after" in texts
    assert ax.get_xlim()[1] >= 1.3 * 10447 - 1  # room for them


def test_a_title_is_whole_inside_the_figure_however_long_the_labels():
    """Long bar labels push the axes to the right: the title still lies inside the PNG."""
    rem = pd.DataFrame({"remedy": ["mParticle Rule: copy the MPID into $mparticle_user_id (next sends only)",
                                   "SDK code: set $mparticle_user_id in the app (next sends only)",
                                   "Reconnect the export after the pause"], "users": [13, 13, 2]})
    fig = charts.remedies_chart(rem)
    _png(fig)  # laid out and drawn
    box = fig.get_suptitle() and fig._suptitle.get_window_extent()
    width, _ = fig.get_size_inches() * fig.dpi
    assert fig.get_suptitle() == "Members' users each remedy would recover (simulated)"
    assert 0 <= box.x0 and box.x1 <= width
    long = charts.gaps_by_reason_chart(pd.DataFrame({"gap_reason": ["x"], "users": [1]}), title="word " * 40)
    _png(long)
    assert long.get_suptitle().count("\n") == 2 and long._suptitle.get_window_extent().x1 <= width


def test_shared_mpid_and_remedies_charts():
    ax = _check_basics(charts.shared_mpid_chart(pd.DataFrame({"profiles_per_mpid": [2, 3], "mpids": [10, 1]})),
                       "several", "Mixpanel profiles", "MPIDs")
    assert _bar_heights(ax) == [10, 1]
    rem = pd.DataFrame({"remedy": ["mParticle Rule", "SDK code", "EIT = mparticle_id"], "users": [40, 35, 20]})
    ax = _check_basics(charts.remedies_chart(rem), "recover", "recovered", "remedy")
    assert _bar_widths(ax) == [20, 35, 40]  # drawn bottom-up: the table's first remedy on top


def test_a_frame_without_the_columns_is_named_by_the_chart_function():
    """lab.remedies() has `recovered`, the chart `users`: the error named the chart's title ("Members'
    users each remedy would recover (simulated): missing column(s) users"), not the function."""
    import pytest

    rem = pd.DataFrame({"remedy": ["mParticle Rule"], "gained": [3]})
    with pytest.raises(ValueError, match=r"^remedies_chart: missing column\(s\) users; got \['remedy', 'gained'\]"):
        charts.remedies_chart(rem)
    with pytest.raises(ValueError, match=r"^gaps_by_reason_chart: missing column\(s\) users"):
        charts.gaps_by_reason_chart(pd.DataFrame({"gap_reason": ["mpid_not_found"], "members": [2]}))
    # every chart function the package exports is in __all__ (`from cohortlab.charts import *`)
    public = {n for n in dir(charts) if n.endswith("_chart") and not n.startswith("_")}
    assert public <= set(charts.__all__), public - set(charts.__all__)


TIMELINE = pd.DataFrame({
    "run_at": pd.date_range("2026-03-01", periods=6, freq="15min"),
    "members": [100, 102, 102, 105, 104, 104],
    "adds": [100, 3, 0, 0, 6, 0],
    "removes": [0, 1, 0, 0, 4, 0],
    "failed": [False, False, True, True, False, False],
    "full_refresh": [True, False, False, False, False, False],
    "true_count": [90, 92, 92, 92, 93, 93],
    "not_yet_true": [0, 0, 2, 5, 0, 0],
    "stale_true": [0, 1, 1, 1, 2, 2],
})


def test_timeline_chart_lines_and_paused_window():
    ax = _check_basics(charts.timeline_chart(TIMELINE), "over time", "run", "users")
    ys = [list(line.get_ydata()) for line in ax.lines]
    assert list(TIMELINE["members"]) in ys and list(TIMELINE["true_count"]) in ys
    spans = [p for p in ax.patches if p.get_label() == "paused (failed runs)"]
    assert len(spans) == 1
    x0, x1 = spans[0].get_x(), spans[0].get_x() + spans[0].get_width()
    assert mdates.num2date(x0).replace(tzinfo=None) == TIMELINE["run_at"][2]
    assert mdates.num2date(x1).replace(tzinfo=None) == TIMELINE["run_at"][4]


@pytest.mark.parametrize("make, top", [
    (lambda: charts.timeline_chart(TIMELINE), 120),  # the data up to 105: ticks every 20
    (lambda: charts.staleness_chart(TIMELINE), 6),  # up to 5: ticks every 1
    (lambda: charts.sync_types_chart(pd.concat([TIMELINE.assign(sync_type="dynamic"),
                                                TIMELINE.assign(sync_type="one_time", true_count=90)])), 120),
], ids=["timeline", "staleness", "sync_types"])
def test_count_axes_start_at_zero_and_end_on_a_tick(make, top):
    """90 profiles against 100 members is drawn as 90 against 100, not on an axis from 89 that
    makes the audience look a fraction of the cohort."""
    assert make().axes[0].get_ylim() == (0, top)


def test_failed_windows_end_paused():
    t = pd.Series(pd.date_range("2026-03-01", periods=3, freq="15min"))
    assert charts.failed_windows(t, pd.Series([False, True, True])) == [(t[1], t[2])]
    assert charts.failed_windows(t, pd.Series([True, False, True])) == [(t[0], t[1]), (t[2], t[2])]


def _run_bars(ax) -> dict:
    """{label: the collection of one bar per run} of a sync-runs chart."""
    from matplotlib.collections import PolyCollection

    return {c.get_label(): c for c in ax.collections if isinstance(c, PolyCollection)}


def test_sync_runs_chart_adds_up_removes_down():
    ax = _check_basics(charts.sync_runs_chart(TIMELINE), "adds and removes", "run", "members")
    bars = _run_bars(ax)
    assert set(bars) == {"adds", "removes"}
    assert charts.bar_heights(bars["adds"]) == [100, 3, 0, 0, 6, 0]
    assert charts.bar_heights(bars["removes"]) == [0, -1, 0, 0, -4, 0]
    # one bar per run, centred on its time
    centres = [float(p.vertices[:, 0].mean()) for p in bars["adds"].get_paths()]
    assert centres == pytest.approx(list(mdates.date2num(pd.to_datetime(TIMELINE["run_at"]).to_numpy())))
    assert [t.get_text() for t in ax.get_legend().get_texts()][-2:] == ["adds", "removes"]
    lo, hi = ax.get_ylim()
    assert lo <= -4 and hi >= 100  # the axis holds every bar


def test_staleness_chart():
    ax = _check_basics(charts.staleness_chart(TIMELINE), "errors", "run", "profiles")
    ys = [list(line.get_ydata()) for line in ax.lines]
    assert list(TIMELINE["stale_true"]) in ys and list(TIMELINE["not_yet_true"]) in ys


def test_sync_types_chart_one_line_per_type_plus_members():
    long = pd.concat([TIMELINE.assign(sync_type="dynamic"),
                      TIMELINE.assign(sync_type="one_time", true_count=90)])
    ax = _check_basics(charts.sync_types_chart(long), "one-time", "time", "users")
    ys = [list(line.get_ydata()) for line in ax.lines]
    assert ys == [list(TIMELINE["members"]), list(TIMELINE["true_count"]), [90] * 6]


def test_migration_match_rate_chart_with_events():
    df = pd.DataFrame({"date": pd.to_datetime(["2026-01-01", "2026-02-01"] * 2),
                       "plan": ["switch only", "switch only", "switch + rule", "switch + rule"],
                       "match_rate": [0.4, 0.2, 0.4, 0.8]})
    ev = pd.DataFrame({"date": pd.to_datetime(["2026-01-15"]), "label": ["EIT → mparticle_id"]})
    ax = _check_basics(charts.migration_match_rate_chart(df, events=ev), "plan", "date", "match rate")
    data_lines = [line for line in ax.lines if len(line.get_xdata()) == 2 and line.get_label() in ("switch only", "switch + rule")]
    assert sorted(list(line.get_ydata()) for line in data_lines) == [[40, 20], [40, 80]]
    assert any("EIT" in t.get_text() for t in ax.texts)


def test_plans_that_tie_say_so_in_the_legend_in_the_tables_order():
    """Two plans with the same rate every day drew one line over the other (the page's tie: the
    chart showed two lines and a legend of four); the legend was by name, the table by plan. A
    plan whose line is one drawn before says whose; the legend follows the plans' order."""
    days = list(pd.date_range("2026-01-01", periods=3))
    df = pd.DataFrame({"day": days * 4,
                       "plan": ["switch only"] * 3 + ["switch + Rule"] * 3 + ["Rule only"] * 3 + ["do nothing"] * 3,
                       "match_rate": [0.5, 0.6, 0.7] * 2 + [0.4, 0.4, 0.4] * 2})
    legend = [t.get_text() for t in charts.migration_chart(df).axes[0].get_legend().get_texts()]
    assert legend == ["switch only", "switch + Rule (= switch only)", "Rule only", "do nothing (= Rule only)"]


def test_migration_markers_are_labelled_on_the_side_that_keeps_them_inside_the_axes():
    df = pd.DataFrame({"date": pd.to_datetime(["2026-01-01", "2026-03-01"]), "plan": ["p", "p"],
                       "match_rate": [0.1, 0.9]})
    ev = pd.DataFrame({"date": pd.to_datetime(["2026-01-10", "2026-02-25"]), "label": ["early", "late"]})
    ax = charts.migration_match_rate_chart(df, events=ev).axes[0]
    sides = {t.get_text().strip(): t.get_horizontalalignment() for t in ax.texts}
    assert sides == {"early": "left", "late": "right"}  # right of the early line, left of the late one


def test_predicted_vs_observed_over_time_and_by_category():
    over_time = pd.DataFrame({"date": pd.to_datetime(["2026-03-01", "2026-03-02"]),
                              "predicted": [0.5, 0.6], "observed": [0.45, 0.61]})
    ax = _check_basics(charts.predicted_vs_observed_chart(over_time), "predicted", "date", "match rate")
    assert [list(line.get_ydata()) for line in ax.lines] == [pytest.approx([50, 60]), pytest.approx([45, 61])]
    by_metric = pd.DataFrame({"metric": ["matched", "split profiles"], "predicted": [120, 30], "observed": [118, 33]})
    ax = _check_basics(charts.predicted_vs_observed_chart(by_metric, x="metric", percent=False, ylabel="users"),
                       "predicted", "metric", "users")
    assert _bar_heights(ax) == [120, 30, 118, 33]


@pytest.mark.parametrize("fn,cols", [
    (charts.waterfall_chart, ["label", "kind", "count"]),
    (charts.gaps_by_reason_chart, ["gap_reason", "users"]),
    (charts.timeline_chart, ["run_at", "members", "true_count"]),
    (charts.staleness_chart, ["run_at", "stale_true", "not_yet_true"]),
    (charts.sync_runs_chart, ["run_at", "adds", "removes"]),
    (charts.match_rate_chart, ["cohort_name", "members", "matched", "match_rate"]),
])
def test_empty_frames_give_a_no_data_figure(fn, cols):
    fig = fn(pd.DataFrame({c: [] for c in cols}))
    assert any("no data" in t.get_text() for t in fig.axes[0].texts)
    assert _png(fig).startswith(b"\x89PNG")


# --------------------------------------------------------------------------- readable at a glance
def _drawn_tick_labels(fig, axis: str) -> list[str]:
    fig.canvas.draw()  # tick labels are computed when the figure is drawn
    ax = fig.axes[0]
    ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    lo, hi = (ax.get_xlim() if axis == "x" else ax.get_ylim())
    return [t.get_text() for t in ticks if t.get_text() and min(lo, hi) <= (t.get_position()[0 if axis == "x" else 1])
            <= max(lo, hi)]


def _runs(n: int, members: int = 25, start: str = "2026-02-23") -> pd.DataFrame:
    t = pd.date_range(start, periods=n, freq="15min")
    return pd.DataFrame({"run_at": t, "members": [members + (i % 3 == 0) for i in range(n)],
                         "true_count": [members] * n, "adds": [1 if i % 96 == 0 else 0 for i in range(n)],
                         "removes": [0] * n, "failed": [False] * n, "full_refresh": [False] * n,
                         "stale_true": [i % 2 for i in range(n)], "not_yet_true": [0] * n})


@pytest.mark.parametrize("make", [
    lambda tl: charts.timeline_chart(tl),
    lambda tl: charts.sync_runs_chart(tl),
    lambda tl: charts.staleness_chart(tl),
])
def test_count_axes_have_integer_ticks_without_repeats(make):
    fig = make(_runs(577))
    labels = _drawn_tick_labels(fig, "y")
    assert len(labels) >= 2
    assert len(labels) == len(set(labels)), labels  # never 25, 26, 26, 26, 27
    for label in labels:
        assert "." not in label and label.replace(",", "").lstrip("−-").isdigit(), labels


@pytest.mark.parametrize("members", [0, 7])
@pytest.mark.parametrize("make", [
    lambda tl: charts.timeline_chart(tl),
    lambda tl: charts.sync_types_chart(pd.concat([tl.assign(sync_type="dynamic"), tl.assign(sync_type="one_time")])),
])
def test_a_flat_count_axis_has_whole_distinct_ticks(make, members):
    """A cohort that never has a member (every count 0) drew its counts on an axis reading
    0, 0, 0, -0, -0; a flat non-zero series one reading 7, 7, 7. The axis runs from 0 to a
    whole tick above the value."""
    tl = _runs(577, members=members).assign(members=members, true_count=members)
    labels = _drawn_tick_labels(make(tl), "y")
    assert len(labels) >= 2 and len(labels) == len(set(labels)), labels
    assert all(label.isdigit() for label in labels), labels  # no "-0", no fraction
    assert labels[0] == "0" and int(labels[-1]) > members


def test_predicted_vs_observed_bar_labels_never_round_a_rate_with_an_unmatched_member_to_100_percent():
    """The validation chart of the EIT-migration page labelled 2,999 of 3,000 members "100.0%"."""
    by_cohort = pd.DataFrame({"cohort_name": ["Power Users"], "predicted": [1.0], "observed": [2999 / 3000]})
    ax = charts.predicted_vs_observed_chart(by_cohort, x="cohort_name").axes[0]
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["100.0%", ">99.9%"], labels


def test_date_axes_name_the_right_month_on_every_tick():
    fig = charts.timeline_chart(_runs(577, start="2026-02-23"))  # Feb 23 .. Mar 1
    labels = _drawn_tick_labels(fig, "x")
    assert len(labels) >= 3 and len(labels) == len(set(labels)), labels
    ax = fig.axes[0]
    for tick, label in zip(ax.get_xticks(), [t.get_text() for t in ax.get_xticklabels()]):
        if label:
            assert label == mdates.num2date(tick).strftime("%b %d"), (label, mdates.num2date(tick))
    assert {lab[:3] for lab in labels} <= {"Feb", "Mar"} and any(lab.startswith("Feb") for lab in labels)


def test_a_chart_of_one_run_spans_its_day_and_a_long_one_says_the_year():
    """A cohort with one sync run (0 members: the first run sent nothing) drew a date axis that
    matplotlib widened to years, every tick reading "Jan 01"; its axis is now the day before and
    after the run. Over more than 300 days the ticks say the year (Jan 01 of two years differ)."""
    one = pd.DataFrame({"run_at": pd.to_datetime(["2026-03-01 00:00"]), "members": [0], "true_count": [0]})
    types = pd.DataFrame({"run_at": pd.to_datetime(["2026-03-01 00:00"] * 2), "sync_type": ["dynamic", "one_time"],
                          "true_count": [0, 0], "members": [0, 0]})
    for fig in (charts.timeline_chart(one), charts.sync_types_chart(types)):
        labels = _drawn_tick_labels(fig, "x")
        assert len(labels) >= 3 and len(labels) == len(set(labels)), labels
        assert {lab[:6] for lab in labels} <= {"Feb 28", "Mar 01", "Mar 02"} and "Mar 01 00:00" in labels
    long = pd.DataFrame({"run_at": pd.to_datetime(["2025-01-31 13:00", "2026-03-01 00:00"]), "members": [1, 2],
                         "true_count": [0, 1]})
    labels = _drawn_tick_labels(charts.timeline_chart(long), "x")
    assert len(labels) == len(set(labels)) and {"Jan 01 2026", "Mar 01 2026"} <= set(labels), labels


def test_a_small_waterfall_step_is_labelled_and_visible():
    w = pd.DataFrame({"step": ["members", "unmatched:mpid_not_found", "shared_mpid", "audience"],
                      "label": ["m", "nf", "s", "a"], "kind": ["total", "minus", "minus", "total"],
                      "count": [5000, 1, 400, 4599]})
    fig = charts.waterfall_chart(w)
    ax = fig.axes[0]
    assert "−1" in [t.get_text() for t in ax.texts]
    # the 1-user bar is 0.02% of the axis: a thick tick marks it at its level
    marks = [c for c in ax.collections if c.get_linewidth()[0] >= 4]
    assert len(marks) == 1
    # the legend sits outside the axes, so no value label is under it
    assert fig.legends and not ax.get_legend()


def _tick_edges_px(fig, mark):
    """The display y of the top and bottom edges of a thick tick (a one-segment LineCollection)."""
    fig.canvas.draw()
    (seg,) = mark.get_segments()
    y = mark.get_transform().transform(seg)[0][1]
    half = mark.get_linewidth()[0] / 2 * fig.dpi / 72
    return y - half, y + half


def test_a_small_loss_is_marked_under_the_level_it_is_taken_from_and_an_addition_over_it():
    w = pd.DataFrame({"step": ["members", "unmatched:malformed", "shared_mpid", "should_be_true",
                               "stale_true", "audience"],
                      "label": list("mnstxa"), "kind": ["total", "minus", "minus", "total", "plus", "total"],
                      "count": [236, 1, 20, 215, 1, 216]})
    fig = charts.waterfall_chart(w)
    ax = fig.axes[0]
    marks = [c for c in ax.collections if c.get_linewidth()[0] >= 4]
    assert len(marks) == 2
    to_px = ax.transData.transform
    loss_low, loss_high = _tick_edges_px(fig, marks[0])
    level_236 = to_px((1, 236))[1]
    # the loss of 1 hangs from 236: its tick ends at 236 and lies under it, never over the total
    assert loss_high == pytest.approx(level_236, abs=0.5) and loss_low < level_236
    add_low, add_high = _tick_edges_px(fig, marks[1])
    level_215 = to_px((4, 215))[1]
    # the addition of 1 rises from 215: its tick starts there
    assert add_low == pytest.approx(level_215, abs=0.5) and add_high > level_215


def test_bars_of_a_long_timeline_are_wider_than_a_pixel():
    fig = charts.sync_runs_chart(_runs(577))
    fig.canvas.draw()
    ax = fig.axes[0]
    x = _run_bars(ax)["adds"].get_paths()[0].vertices[:, 0]
    width_px = ax.transData.transform((x.max(), 0))[0] - ax.transData.transform((x.min(), 0))[0]
    assert width_px >= 2.5


def test_no_chart_of_a_report_is_empty(report_run):
    """Every chart embedded in the demo report is a real picture: no 'no data' placeholder, and
    an empty or all-zero chart is replaced by a sentence saying there is nothing to show."""
    import base64

    from PIL import Image

    for page in report_run["out"].glob("*/*.html"):
        text = page.read_text()
        assert "no data" not in text
        images = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
        assert images, page.name
        for data in images:
            img = Image.open(io.BytesIO(base64.b64decode(data))).convert("L")
            lo, hi = img.getextrema()
            assert hi - lo > 100, f"{page.name}: a blank chart"
            colours = len(img.getcolors(256) or range(257))  # None: more than 256 grey levels
            assert colours > 20, f"{page.name}: a chart with almost nothing drawn"


def test_observed_vs_simulated_chart_pairs_the_audiences_and_counts_the_causes():
    audiences = pd.DataFrame({"cohort_name": ["A", "B"], "observed": [43, 108], "simulated": [44, 112]})
    causes = pd.DataFrame({"cause": ["attribute_name_differs", "pause_not_modelled"], "profiles": [1, 2]})
    fig = charts.observed_vs_simulated_chart(audiences, causes)
    left, right = fig.axes
    assert "observed vs simulated" in fig.get_suptitle()
    # B then A from the bottom (first cohort on top); simulated bars first, then observed
    assert _bar_widths(left) == [112, 44, 108, 43]
    assert [t.get_text() for t in left.get_yticklabels()] == ["B", "A"]
    assert _bar_widths(right) == [2, 1]
    assert [t.get_text() for t in right.get_yticklabels()] == ["pause not modelled", "attribute under\nanother name"]
    assert _png(fig).startswith(b"\x89PNG")


def test_a_cohort_name_is_drawn_as_written_underscores_included():
    """A name is data: wrapping a long one breaks it at spaces and never turns its underscores into
    spaces (``power_users_v2`` was drawn as ``power users v2``)."""
    audiences = pd.DataFrame({"cohort_name": ["power_users_v2", "x_y"], "observed": [3, 4], "simulated": [3, 4]})
    fig = charts.observed_vs_simulated_chart(audiences, pd.DataFrame({"cause": [], "profiles": []}))
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["x_y", "power_users_v2"]


def test_observed_vs_simulated_chart_without_disagreements_says_so():
    audiences = pd.DataFrame({"cohort_name": ["A"], "observed": [5], "simulated": [5]})
    fig = charts.observed_vs_simulated_chart(audiences, pd.DataFrame({"cause": [], "profiles": []}))
    assert any("every profile agrees" in t.get_text() for t in fig.axes[1].texts)
    assert _png(fig).startswith(b"\x89PNG")


def test_a_cohort_without_members_has_no_rate_and_says_so():
    """At a time before every snapshot a cohort has no members, so no match rate (None): the
    chart draws no bar for it and says "no members" (it raised a TypeError)."""
    rates = pd.DataFrame({"cohort_name": ["Power Users", "Buyers"], "members": [0, 4], "matched": [0, 3],
                          "match_rate": [None, 0.75]})
    ax = charts.match_rate_chart(rates, by="cohort_name").axes[0]
    assert _bar_widths(ax) == [0, 75]
    shown = [t.get_text() for t in ax.texts]
    assert "no members" in shown and "75.0%  (3 / 4)" in shown


def test_horizontal_bars_read_top_down_in_their_tables_order():
    """The remedies chart (not sorted) drew its table's first remedy at the bottom, the last on top;
    sorted bars of equal length came in the reverse of the table's order; a colour per row stays
    with its row."""
    remedies = pd.DataFrame({"remedy": ["Rule", "Rule, then re-export", "Re-export"], "users": [29, 30, 1]})
    ax = charts.remedies_chart(remedies).axes[0]
    top_down = [t.get_text() for t in ax.get_yticklabels()][::-1]
    assert top_down == ["Rule", "Rule, then re-export", "Re-export"]
    gaps = pd.DataFrame({"gap_reason": ["distinct_id_not_mpid", "malformed_mparticle_user_id", "mpid_not_found"],
                         "users": [53, 4, 4]})  # the table's order: largest first, ties by name
    ax = charts.gaps_by_reason_chart(gaps).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()][::-1] == [
        "$distinct_id not an MPID", "$mparticle_user_id not an MPID", "MPID of no mParticle profile"]
    rec = pd.DataFrame({"recoverable_via": ["customer_id", None, "email"], "users": [23, 23, 3]})
    ax = charts.gaps_by_recoverable_chart(rec).axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()][::-1]
    assert labels == ["customer_id", "(no single profile found)", "email"]
    colours = {label: bar.get_facecolor() for label, bar in zip([t.get_text() for t in ax.get_yticklabels()],
                                                                 ax.patches)}
    assert colours["(no single profile found)"] != colours["customer_id"] == colours["email"]


def test_a_chart_shows_as_its_picture_in_a_notebook():
    """As a cell's last value or with display(fig) (the charts' docstring), a chart showed as the text
    "<Figure size 900x450 with 1 Axes>": made without pyplot, no inline backend formats it. A chart
    figure has its PNG for IPython, the same picture savefig writes."""
    from IPython.core.formatters import DisplayFormatter

    wf = pd.DataFrame({"step": ["members", "audience"], "label": ["members", "audience"],
                       "kind": ["total", "total"], "count": [10, 8]})
    audiences = pd.DataFrame({"cohort_name": ["A"], "observed": [5], "simulated": [6]})
    causes = pd.DataFrame({"cause": ["unexplained"], "profiles": [1]})
    for fig in (charts.waterfall_chart(wf), charts.observed_vs_simulated_chart(audiences, causes)):
        data, _ = DisplayFormatter().format(fig)
        assert "image/png" in data and data["image/png"][:8] == b"\x89PNG\r\n\x1a\n"
        assert isinstance(fig, Figure) and isinstance(fig, charts.ChartFigure)


def test_charts_take_the_lab_results_as_they_are(report_run, world_lab):
    """lab.resolution / lab.gap_summary, lab.remedies and lab.verify go into their charts as they
    are, and draw the same bars as the report's own aggregates (cohortlab.report.metrics) of the
    same results (each wanted a renamed or recounted frame)."""
    from cohortlab.report import metrics

    cohort = world_lab.sql("SELECT min(cohort_name) AS c FROM mp_cohort_members")["c"][0]
    res = world_lab.resolution(cohort)
    expected = metrics.gaps_by_reason(res)
    assert expected["users"].sum() == int((res["status"] != "matched").sum()) > 0
    for frame in (res, world_lab.gap_summary(cohort), expected):
        assert sorted(_bar_widths(charts.gaps_by_reason_chart(frame).axes[0])) == sorted(expected["users"])
    by_identity = metrics.gaps_by_recoverable(res)
    for frame in (res, world_lab.gap_summary(cohort)):
        assert sorted(_bar_widths(charts.gaps_by_recoverable_chart(frame).axes[0])) == sorted(by_identity["users"])

    rem = world_lab.remedies(cohort)
    assert _bar_widths(charts.remedies_chart(rem).axes[0]) == list(rem["recovered"][::-1])

    v = world_lab.verify(cohort)
    fig = charts.observed_vs_simulated_chart(v)
    aud = v.audience.set_index("audience").loc["= true"]
    assert sorted(_bar_widths(fig.axes[0])) == sorted([aud["simulated"], aud["observed"]])
    disagree = v.causes[v.causes["profiles"] > 0]
    assert sorted(_bar_widths(fig.axes[1])) == sorted(disagree["profiles"])
    assert _bar_widths(charts.observed_vs_simulated_chart({cohort: v}).axes[0]) == _bar_widths(fig.axes[0])


@pytest.mark.parametrize("names", [["Power\x1b]0;x\x07Users", "Buyers\x9b"], ["🎉 Clientes VIP", "日本"]],
                         ids=["control characters", "an emoji, CJK"])
def test_a_character_the_font_lacks_draws_without_a_warning(names):
    """matplotlib warned "Glyph 27 (\\x1b) missing from font(s)" with the raw character on stderr
    for a cohort name holding an escape sequence; for an emoji or a
    script the font lacks, its warning named cohortlab's installed file and showed in a report as
    a red error block beside the chart. Such a character draws as a box, without a warning."""
    import warnings

    df = pd.DataFrame({
        "as_of": pd.to_datetime(["2026-02-01", "2026-02-02"] * 2),
        "cohort_name": [names[0]] * 2 + [names[1]] * 2, "match_rate": [0.5, 0.6, 0.7, 0.8],
    })
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _png(charts.match_rate_over_time_chart(df)).startswith(b"\x89PNG")


LONG = ("Very long cohort name for the quarterly re-engagement campaign targeting lapsed premium subscribers "
        "in EMEA and APAC regions v2")


def _axes_share(fig, ax) -> float:
    """The axes' width as a share of the figure's, once drawn."""
    fig.canvas.draw()
    return ax.get_position().width


def test_a_long_cohort_name_does_not_collapse_the_match_rate_chart():
    """A cohort name of 130 characters was one tick label wider than the figure: the axes collapsed
    to nothing (matplotlib warned "constrained_layout not applied", which the page printed), and
    the labels ran off the left edge. Each is now at most 3 lines of 32 characters, cut with "…";
    two names cut to the same label stay two bars."""
    import warnings

    rates = pd.DataFrame({"cohort_name": [LONG, LONG + " (copy)", "Nobody"], "members": [371, 10, 0],
                          "matched": [371, 9, 0], "match_rate": [1.0, 0.9, None]})
    fig = charts.match_rate_chart(rates, by="cohort_name")
    ax = fig.axes[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _png(fig)
        share = _axes_share(fig, ax)
    assert share > 0.5
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == labels[1] == ("Very long cohort name for the\nquarterly re-engagement campaign\n"
                                      "targeting lapsed premium…")
    assert labels[2] == "Nobody" and _bar_widths(ax) == [100, 90, 0]
    # every name-labelled horizontal bar chart alike (the remedies' and gaps' charts)
    ax = charts.remedies_chart(pd.DataFrame({"remedy": [LONG, "Rule"], "users": [3, 2]})).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()][::-1] == [labels[0], "Rule"]
    assert charts.name_label("x" * 70) == "x" * 32 + "\n" + "x" * 32 + "\n" + "x" * 6
    # a pseudonym (a cohort named after an email) is never cut, also in the EIT chart's 16 characters
    assert charts.name_label("anon-8f5a033e906f", 16) == "anon-8f5a033e906f"
    assert charts.name_label("x anon-8f5a033e906f", 16) == "x\nanon-8f5a033e906f"


def test_a_long_cohort_name_in_the_match_rate_over_time_legend_keeps_the_axes_wide():
    """The legend wrote a 130-character name on one line: wider than the axes, it pushed them to
    half the figure and stuck out of the frame."""
    import warnings

    df = pd.DataFrame({"as_of": pd.to_datetime(["2026-02-27", "2026-02-28"] * 2),
                       "cohort_name": [LONG, LONG, "A", "A"], "match_rate": [1.0, 1.0, 0.5, 0.6]})
    fig = charts.match_rate_over_time_chart(df)
    ax = fig.axes[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        share = _axes_share(fig, ax)
    assert share > 0.7  # as with short names (0.775)
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [
        "A", "Very long cohort name for the quarterly\nre-engagement campaign targeting lapsed premium…"]
    assert legend.get_window_extent().x1 <= ax.get_window_extent().x1


def test_a_long_cohort_name_is_cut_on_the_predicted_vs_observed_chart_too():
    """The EIT page's validation chart wrapped a cohort's name whole: 10 lines for 130 characters,
    the axes squeezed to half the figure (a 256-character name, the longest an attribute takes,
    collapsed them); it is cut as on every other chart that names a cohort."""
    df = pd.DataFrame({"cohort_name": [LONG, "A"], "predicted": [0.9, 0.5], "observed": [0.8, 0.6]})
    ax = charts.predicted_vs_observed_chart(df, x="cohort_name").axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [charts.name_label(LONG, 16), "A"]
    assert charts.name_label(LONG, 16).count("\n") == 2
    ax.figure.canvas.draw()
    assert ax.get_position().height > 0.7  # as with short names (0.77)


def test_match_rate_over_time_without_any_rate_says_so_not_1970():
    """Cohorts that never had a member have no rate at any snapshot: the chart drew an empty date
    axis over matplotlib's default range, "Dec 31 23:00 ... Jan 01 01:00" (1970)."""
    df = pd.DataFrame({"as_of": pd.to_datetime(["2026-02-27", "2026-02-28"]), "cohort_name": ["Nobody"] * 2,
                       "match_rate": [None, None]})
    ax = charts.match_rate_over_time_chart(df).axes[0]
    assert [t.get_text() for t in ax.texts] == ["no rate at any time: nobody to match"]
    assert ax.get_xticks().size == 0 and _png(ax.figure).startswith(b"\x89PNG")


def test_the_timeline_marks_the_full_syncs_of_a_reconnect_or_a_re_export():
    """The summary counted "2 full syncs after a reconnect or a re-export", the chart showed their
    spikes of adds with no mark (only full refreshes had one), and its caption named "triangles:
    full refreshes" on a chart without any."""
    from cohortlab.report import metrics, summaries

    tl = pd.DataFrame({"run_at": pd.date_range("2026-02-25", periods=5, freq="6h"),
                       "members": [10, 10, 11, 11, 12], "true_count": [8, 8, 10, 10, 11],
                       "adds": [10, 0, 11, 0, 12], "removes": 0, "failed": [False, True, False, False, False],
                       "full_refresh": False, "not_yet_true": 0, "stale_true": 0,
                       "kind": ["first", "diff", "reconnect", "diff", "reexport"]})
    runs = pd.DataFrame(metrics.timeline_rows(tl))  # what metrics.json keeps, and the page draws
    ax = charts.timeline_chart(runs).axes[0]
    marks = [c for c in ax.collections if c.get_label() == "full sync (reconnect, re-export)"]
    assert len(marks) == 1 and marks[0].get_offsets().shape[0] == 2
    assert "full refresh" not in [c.get_label() for c in ax.collections]
    caption = summaries.timeline_caption(metrics.timeline_summary(tl))
    assert caption == ("Grey: members in the Mixpanel cohort; blue: mParticle profiles with the attribute true after "
                       "each run; shaded: paused (failed runs); ▲: full syncs after a reconnect or a re-export.")
    assert summaries.timeline_caption(metrics.timeline_summary(tl.assign(failed=False, kind="diff"))) == (
        "Grey: members in the Mixpanel cohort; blue: mParticle profiles with the attribute true after each run.")
