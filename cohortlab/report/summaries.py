"""The findings of the reports in words (Markdown): each function turns the figures of
:mod:`.metrics` into sentences. Settings that shape a finding (the event-identity cutoff) are read
from the settings the simulation used, never assumed."""

from __future__ import annotations

import re
from typing import Any, Mapping

import pandas as pd

from cohortlab.escaping import md_text  # names from data are text, never Markdown
from cohortlab.glossary import cause_words, counted, pct, reason_words
from cohortlab.report.metrics import FAILED_RUNS, STALE_ORPHANS, SYNC_RUNS, loss_words, sync_headline, sync_waiting_label, top_gap_reasons
from cohortlab.times import format_minute


def agreement_text(v: Mapping[str, Any], cohorts: int = 1) -> str:
    """The agreement of observed-vs-simulated figures (a cohort's or the totals of
    :func:`cohortlab.report.metrics.verify_figures`) over every profile compared, then over those
    where either side has the attribute: "99.9% of 3,374 profiles; 92.3% of the 39 where either
    side has the attribute". Totals over several ``cohorts`` count a profile once per cohort, and
    say so (1,392 "profiles" of two cohorts were 700 profiles of mParticle)."""
    unit = "profiles" if cohorts <= 1 else f"profile comparisons ({cohorts} cohorts, a profile once per cohort)"
    return (f"{pct(v['agreement'])} of {v['compared']:,} {unit}; {pct(v['agreement_with_attribute'])} of the "
            f"{v['with_attribute']:,} where either side has the attribute")


# a waterfall step as a sentence about its members (the summaries' bullets); its short words are
# cohortlab.glossary's
STEP_SENTENCES = {
    "unmatched:distinct_id_not_mpid": "members Mixpanel identifies only by a `$distinct_id` that is not an MPID "
                                      "(a customer id, an email or a device id)",
    "unmatched:mpid_precision_loss": "members whose identifier is an MPID rounded through a float",
    "unmatched:malformed_mparticle_user_id": "members whose `$mparticle_user_id` is not an MPID at all",
    "unmatched:mpid_not_found": "members whose MPID names no mParticle profile (deleted, another workspace, or a "
                                "wrong value)",
    "unmatched:distinct_id_is_identity": "members whose `$distinct_id` is a user identity of a profile, not its MPID",
    "unmatched:fallback_disabled": "members without `$mparticle_user_id` while the strict fallback refuses "
                                   "their `$distinct_id`",
    "shared_mpid": "extra Mixpanel profiles of people already counted (several profiles, one MPID)",
    "not_yet_true": "matched profiles not yet true in mParticle (pending until a successful run)",
    "stale_true": "profiles still true although their member left the cohort",
    "orphans_true": "orphan profiles the feed created and set true",
}
# the not-yet-true step of a one-time export: no run sends these members, so they are missing, not
# pending (as the sync-timeline page calls them)
MISSING_SENTENCE = "matched profiles missing in mParticle (the one-time export did not send them, and no run will)"
# the not-yet-true profiles already sent (metrics.ranked_losses' "sent"): no diff run sends them again
SENT_SENTENCE = ("matched profiles not true in mParticle although already sent (a remove sent for another Mixpanel "
                 "profile of the same MPID set them false, or their profile did not exist yet when they were sent)")
FULL_SYNC = "a full sync (a re-export, a reconnect, or a full refresh after a pause longer than `snapshot_ttl`)"


def _remedy_words(loss: Mapping[str, Any]) -> str:
    """What fixes a waterfall step. A Rule's worth is the identity-gaps page's figure (each remedy
    valued by its own simulation), pointed to once below the list (†), never estimated again here."""
    n = loss["users"]
    these = "this **1** profile" if n == 1 else f"these **{n:,}** profiles"
    return {
        "rule": "an mParticle Rule (or SDK code) writing the MPID into `$mparticle_user_id` reaches those of "
                "them in mParticle and logged in since the cutoff, `$device:` profiles excepted (†)",
        "merge_profiles": "no person is lost: mParticle counts each person once",
        "next_run": _next_run_words(loss, these),
        "full_sync": f"no diff run sends them again: only {FULL_SYNC} sets {these} true",
        "new_export": f"only a new export (a re-export, `reexport_at`) sets {these} true",
        "re_export": (f"a dynamic sync's next successful run sends the removes that set {these} false (a full "
                      "refresh clears them too); a one-time export never does, and a re-export removes nothing"),
        "only_update": f"Input Protection `only_update` would stop {these}",
    }.get(loss["remedy"], "no remedy")


def _next_run_words(loss: Mapping[str, Any], these: str) -> str:
    """The pending profiles: the next successful run sets them true, except those already sent
    (``sent``), which only a full sync sets true."""
    sent = loss.get("sent") or 0
    if not sent:
        return f"the next successful run sets {these} true"
    pending = loss["users"] - sent
    return (f"the next successful run sets **{pending:,}** of them true; the other **{sent:,}**, already sent (a "
            f"remove for another Mixpanel profile of the same MPID set {'it' if sent == 1 else 'them'} false, or "
            f"{'its' if sent == 1 else 'their'} profile did not exist yet when sent), only {FULL_SYNC} sets "
            f"{'it' if sent == 1 else 'them'} true")


def _step_sentence(loss: Mapping[str, Any]) -> str:
    if loss["remedy"] == "new_export":
        return MISSING_SENTENCE
    if loss["remedy"] == "full_sync":
        return SENT_SENTENCE
    return STEP_SENTENCES.get(loss["step"], loss["step"])


def match_rates_summary(f: Mapping[str, Any]) -> str:
    """Markdown: the findings of the match-rates report, from its figures only: the totals, then
    per cohort every step between the Mixpanel count and the audience, largest first, in words,
    with what fixes it (a Rule's worth: the identity-gaps page, which simulates each remedy)."""
    t = f["totals"]
    if not t["members"]:
        return "**No cohort members found** at the chosen time: nothing to reconcile."
    lines = [
        f"**{t['matched']:,} of {t['members']:,} Mixpanel cohort members ({pct(t['match_rate'])} of members) "
        f"reach an mParticle profile** across {counted(t['cohorts'], 'cohort')}; the mParticle "
        f"{'audience holds' if t['cohorts'] == 1 else 'audiences hold'} {counted(t['audience'], 'profile', bold=True)}."
        + (f" The largest step between the two: {loss_words(f['losses'][0])} "
           f"({'+' if f['losses'][0]['kind'] == 'plus' else '−'}{f['losses'][0]['users']:,})." if f.get("losses") else "")
    ]
    for c, v in f["cohorts"].items():
        if not v["members"]:  # no rate to give (the table shows "—"): never "n/a of its members"
            lines.append(f"\n**{md_text(c)}**: no members in Mixpanel at the chosen time; the audience holds "
                         f"{counted(v['audience'], 'profile', bold=True)}."
                         + (" Where they come from:" if v["losses"] else ""))
        else:
            lines.append(
                f"\n**{md_text(c)}**: {counted(v['members'], 'member')} in Mixpanel, {v['matched']:,} "
                f"{'reaches' if v['matched'] == 1 else 'reach'} a profile ({pct(v['match_rate'])} of its members); "
                f"the audience holds {counted(v['audience'], 'profile', bold=True)}. "
                + ("Where the difference goes, largest first:" if v["losses"] else "Nothing is lost on the way.")
            )
        for loss in v["losses"]:
            sign = "+" if loss["kind"] == "plus" else "−"
            share = f" ({pct(loss['share_of_members'])} of members)" if loss.get("share_of_members") is not None else ""
            lines.append(f"- {sign}{loss['users']:,}{share}: "
                         f"{_step_sentence(loss)}; "
                         f"{_remedy_words(loss)}.")
    if any(loss["remedy"] == "rule" for v in f["cohorts"].values() for loss in v["losses"]):
        lines.append("\n(†) What a Rule or SDK code recovers, with and without a re-export, is simulated on the "
                     "identity-gaps page (What each remedy would recover), each remedy by its own simulation.")
    return "\n".join(lines)


def cutoff_text(settings=None) -> str:
    """The event-identity cutoff of ``settings`` in words: "the 2026-01-15 00:00 UTC cutoff", or
    a plain description when the rule is off (``event_identity_cutoff: null``)."""
    from cohortlab.settings import SyncSettings

    cutoff = SyncSettings.coerce(settings).event_identity_cutoff
    if cutoff is None:
        return "the event-identity cutoff (off in these settings)"
    return f"the {pd.Timestamp(cutoff).strftime('%Y-%m-%d %H:%M')} UTC cutoff"


def cutoff_label(settings=None) -> str:
    """The cutoff as a short chart label: ``2026-01-15`` (or ``2026-02-20 06:00`` off midnight)."""
    from cohortlab.settings import SyncSettings

    cutoff = SyncSettings.coerce(settings).event_identity_cutoff
    if cutoff is None:
        return "the cutoff (off)"
    t = pd.Timestamp(cutoff)
    return t.strftime("%Y-%m-%d") if (t.hour, t.minute) == (0, 0) else t.strftime("%Y-%m-%d %H:%M")


# who "found under none of their identities" (recoverable_via empty) also counts: the summary and
# the identity-gaps notebook say it in these words
HIDDEN_MPID_NOTE = ("a member whose `$distinct_id` is the MPID of an existing profile, hidden by a junk or "
                    "float-rounded `$mparticle_user_id`, counts here, yet a Rule reaches it")


# what a Rule (and SDK code) writes from, in the words of both pages (docs/rules.md#remediations)
REMEDIATION_RULE = ("one rule for a Rule and SDK code: they write from logged-in events only (a `$user_id`; in data "
                    "without any, an event keyed by no device id), never onto a `$device:` profile")


_WRITES_FROM = f"As on the EIT page, {REMEDIATION_RULE}."


def _rule_words(f: Mapping[str, Any]) -> str:
    """The Rule remedy as simulated (Lab.remedies): with a re-export and with the next sends only."""
    inactive, absent = f["never_fixable"], f["not_in_mparticle"]
    found = f"found under none of their identities ({HIDDEN_MPID_NOTE})."
    if inactive is None:  # the event identity rule off: no cutoff to be inactive since
        tail = f"{counted(absent, 'unmatched member', bold=True)} {'is' if absent == 1 else 'are'} {found}"
    else:
        tail = (f"{counted(inactive, 'unmatched member', bold=True)} {'is' if inactive == 1 else 'are'} in mParticle "
                f"but inactive since the cutoff (cannot be fixed retroactively); {absent:,} "
                f"{'is' if absent == 1 else 'are'} {found}")
    if f.get("rule_fixable") is None and f.get("remedies_since") is None:  # none valued: the Spark engine
        return (f"- Remedies were not simulated: each is a simulation of a world of its own, which only the "
                f"DuckDB engine makes (`cohortlab remedies --db FILE --cohort NAME` values them). {tail}")
    if not f.get("remedies"):
        return f"- Remedies were not simulated. {tail}"
    since = f.get("remedies_since")
    start = f" from {str(since)[:16].replace('T', ' ')} UTC" if since else ""
    rule = f"- Simulated, an mParticle Rule writing the MPID into `$mparticle_user_id`{start}"
    missing = f.get("no_reexport") or {}
    if missing and len(missing) >= (f.get("remedy_cohorts") or 0):
        # no re-export happens (the export paused at the as-of time): "followed by a re-export"
        # announced a re-send the simulation does not make
        return (f"{rule} brings **{f['rule_fixable']:,}** more of the members' users into the audience with the "
                f"next sends only (a fix reaches mParticle only when the member is sent again); no re-export is "
                f"simulated: {_no_reexport_words(missing)}. {_WRITES_FROM} {tail}")
    none_for = f" (none for {_no_reexport_words(missing, named=True)})" if missing else ""
    return (f"{rule} followed by a re-export{none_for} brings **{f['rule_fixable']:,}** more of the members' users "
            f"into the audience; without the re-export **{f.get('rule_next_sends', 0):,}** (a fix reaches mParticle "
            f"only when the member is sent again). {_WRITES_FROM} {tail}")


def _no_reexport_words(missing: Mapping[str, str], named: bool = False) -> str:
    """Why no re-export happens, once when every cohort has the same reason, else per cohort
    (``named``: always per cohort)."""
    if not named and len(set(missing.values())) == 1:
        return readable_times(next(iter(missing.values())))
    return "; ".join(f"{md_text(c)}: {readable_times(why)}" for c, why in missing.items())


def _reexport_words(p: Mapping[str, Any]) -> str:
    """A plan's re-export values (docs/migration.md#model), when there is something to say."""
    need, done = p.get("users_needing_reexport") or 0, p.get("reexport_users") or 0
    if not need:
        return ""
    return (f"; {counted(need, 'user')} {'becomes' if need == 1 else 'become'} matchable only after they were sent "
            f"(they reach mParticle with a re-export"
            + (f": the plan's re-export re-sends {done:,})" if done else ")"))


def identity_gaps_summary(f: Mapping[str, Any], settings=None) -> str:
    """Markdown: the findings of the identity-gaps report, from its figures only."""
    if not f["members"]:
        return "**No cohort members found** at the chosen time: no identity gaps to explain."
    if not f["unmatched"]:
        return f"**All {f['members']:,} cohort members reach an mParticle profile.** No identity gaps."
    top = top_gap_reasons(f)
    if len(top) == 1:
        most = (f"- Most frequent gap reason among the unmatched: **{reason_words(top[0]['gap_reason'])}** "
                f"({counted(top[0]['users'], 'member')}): "
                f"{STEP_SENTENCES.get('unmatched:' + str(top[0]['gap_reason']), '')}.")
    else:  # tied: each named, none picked
        most = (f"- Most frequent gap reasons among the unmatched, tied at {counted(top[0]['users'], 'member')} each: "
                + "; ".join(f"**{reason_words(r['gap_reason'])}**: "
                            f"{STEP_SENTENCES.get('unmatched:' + str(r['gap_reason']), '')}" for r in top) + ".")
    lines = [
        f"**{f['unmatched']:,} of {f['members']:,} members ({pct(f['unmatched_share'])} of members) do not reach "
        f"an mParticle profile.**",
        most,
        f"- **{f['in_mparticle']:,}** of the {counted(f['unmatched'], 'unmatched member')} "
        f"{'is' if f['in_mparticle'] == 1 else 'are'} in mParticle after all (found through another identity): only "
        f"the identifier Mixpanel sends is wrong.",
        activity_words(f, settings),
        _rule_words(f),
    ]
    if f.get("sent_before_first_profile"):
        lines.append(before_first_profile_words(f, settings))
    if f["shared_mpids"]:
        lines.append(f"- Not a gap but a smaller audience (one person, several profiles, counted once in mParticle: "
                     f"the waterfall's shared MPID step, on the match-rates page): {shared_mpids_words(f)}.")
    return "\n".join(lines)


def before_first_profile_words(f: Mapping[str, Any], settings=None) -> str:
    """The members sent before their first Mixpanel profile version, in one list item: they went
    out without a profile, which looks like a gap of the data (docs/rules.md#resolution-time).
    Under ``resolution_time: as_of`` they are the members resolved at the as-of time before it.
    The cohorts are named when the page has several (a member of two cohorts counts in each)."""
    from cohortlab.settings import SyncSettings

    n, by = f["sent_before_first_profile"], f.get("sent_before_first_profile_by_cohort") or {}
    sent = SyncSettings.coerce(settings).resolution_time == "send"
    where = "" if len(f.get("cohorts") or {}) < 2 else \
        " (" + ", ".join(f"{md_text(c)}: {v:,}" for c, v in by.items()) + ")"
    were = "was" if n == 1 else "were"
    return (f"- **{n:,}** {'member' if n == 1 else 'members'} {were} {'sent' if sent else 'resolved'} before "
            f"{'its' if n == 1 else 'their'} first Mixpanel profile version{where}, a profile export with its own "
            "as-of time: no profile was known then, so not its `$mparticle_user_id` (docs/rules.md#resolution-time). "
            f"A profile export taken before {'those sends' if sent else 'the as-of time'}, loaded with its as-of "
            "time, shows what they had.")


def no_remedy_recovers(f: Mapping[str, Any]) -> str:
    """Why the remedies chart of the identity-gaps page has nothing to show: no remedy recovers
    anyone, because no member is unmatched, or because the unmatched are found under none of their
    identities (by no profile, or by several) or not active since the remedies start."""
    if not f.get("unmatched"):
        return "no remedy recovers anyone: every member reaches an mParticle profile"
    # (not "found under none of their identities, or inactive": with no events loaded, members
    # found in mParticle and counted active by their $last_seen got that false reason)
    return ("no remedy recovers anyone: a Rule and SDK code write from logged-in events, and no unmatched member "
            "found under one of their identities has one since the remedies start; no member waits to be re-sent")


def activity_words(f: Mapping[str, Any], settings=None) -> str:
    """The unmatched members' activity since the event identity cutoff, in one list item; with the
    rule off (``event_identity_cutoff: null``) there is no cutoff, and no one is counted as inactive."""
    if f.get("active_after_cutoff") is None:
        return ("- The event identity rule is off in these settings: there is no cutoff, so the unmatched are "
                "not split into active and inactive members, and none is counted as never fixable.")
    return (f"- {f['active_after_cutoff']:,} of the unmatched were active on or after {cutoff_text(settings)}; "
            f"{f['inactive_since_cutoff']:,} {'was' if f['inactive_since_cutoff'] == 1 else 'were'} not.")


def shared_mpids_words(f: Mapping[str, Any], bold: bool = False) -> str:
    """The MPIDs several Mixpanel profiles of a cohort resolve to, in words: distinct MPIDs, and
    when one is shared in several cohorts, the (cohort, MPID) pairs and profiles counted per
    cohort that the chart and table list."""
    b = "**" if bold else ""
    pairs, distinct, profiles = f["shared_mpids"], f.get("shared_mpids_distinct", f["shared_mpids"]), \
        f["profiles_on_shared_mpids"]
    if distinct == pairs:
        return f"{b}{pairs:,}{b} {'MPID is' if pairs == 1 else 'MPIDs are'} claimed by {b}{profiles:,}{b} Mixpanel profiles"
    return (f"{b}{distinct:,}{b} {'MPID is' if distinct == 1 else 'MPIDs are'} each claimed by several Mixpanel "
            f"profiles of a cohort (counted once per cohort, as the chart and the table list them: {b}{pairs:,}{b} "
            f"(cohort, MPID) pairs, {b}{profiles:,}{b} profiles)")


def precision_loss_words(f: Mapping[str, Any]) -> str:
    """The members whose identifier is an MPID rounded through a float, in words: members of
    each cohort, and the distinct Mixpanel profiles when one is in several cohorts."""
    n, profiles = f["precision_loss"], f.get("precision_loss_profiles", f["precision_loss"])
    if not n or profiles == n:
        return f"**{n:,}** {'member sends' if n == 1 else 'members send'}"
    return (f"**{n:,}** cohort members ({counted(profiles, 'Mixpanel profile')}, some in several cohorts, "
            f"listed with each cohort) send")


# --------------------------------------------------------------------------- observed vs simulated
# docs/rules.md#observed-state: what to do about each cause of disagreement, in one line.
CAUSE_ADVICE = {
    "snapshot_before_last_run": "the snapshot was taken before the run that wrote the simulated value: take a "
                                "newer snapshot, or set `as_of` to the snapshot time",
    "attribute_name_differs": "the profile carries the attribute under another name (a renamed cohort, or the "
                              "older `Mixpanel - {cohort_name}` form): point the audience at the name the feed "
                              "writes, or set `attribute_template` to it",
    "profile_missing_in_snapshot": "the profile is not in the snapshot (deleted, another workspace, or left out "
                                   "of the export): export the snapshot with every profile",
    "pause_not_modelled": "a run should have written true but mParticle does not show it: add the export's "
                          "failed window to the settings' `pauses`, or reconnect the export (a full sync)",
    "unexplained": "none of the known causes: look at one of these profiles with "
                   "`cohortlab explain --cohort ... --user MPID`",
}


def verify_line(f: Mapping[str, Any]) -> str:
    """Markdown, one line: observed vs simulated audience over the observed cohorts of
    :func:`cohortlab.report.metrics.verify_figures`, the agreement and the top cause; the card of
    the index page shows the same line as text. Says so when no cohort has observed data."""
    t = f["totals"]
    if not f["observed"]:
        return ("No observed state: no loaded mParticle profile carries a cohort attribute, so the simulated "
                "audience cannot be checked against mParticle.")
    some = (f" ({t['cohorts_observed']:,} of {t['cohorts']:,} cohorts have observed data)"
            if t["cohorts_observed"] < t["cohorts"] else "")
    # orphans (create_and_update) have no MPID to compare: the simulated count leaves them out, so it
    # is not the audience the same card shows beside it (which counts them)
    orphans = (f"; the {counted(t['orphans'], 'orphan profile')} the feed wrote, without a known MPID, are not "
               "compared" if t.get("orphans") else "")
    line = (f"**Observed {t['observed_true']:,} vs simulated {t['simulated_true']:,}** profiles with the attribute "
            f"true in mParticle{_compared_at_words(f)} (agreement {agreement_text(t, t['cohorts_observed'])}"
            f"{orphans}){some}.")
    top = t["top_cause"]
    if top is None:
        return line + " Every profile agrees." + _later_snapshot_words(f)
    return (line + f" Top cause of the {counted(t['disagreements'], 'disagreement')}: **{cause_words(top['cause'])}** "
            f"({top['profiles']:,})." + _later_snapshot_words(f))


def _compared_at_words(f: Mapping[str, Any]) -> str:
    """The time the observed and simulated counts are of: the card shows the audience at the
    report's as-of time beside this line, and "simulated 797" beside "audience 794" said nothing of
    why they differ (the simulation is cut at the mParticle snapshot's time)."""
    observed = [v for v in f["cohorts"].values() if v.get("observed")]
    times = {v["at"] for v in observed}
    at_snapshot = all(v["snapshot_at"] == v["at"] for v in observed)
    if len(times) == 1:
        return f" at {format_minute(next(iter(times)))}" + (", the snapshot's time" if at_snapshot else "")
    if times:
        return " each at its cohort's snapshot time" if at_snapshot else " each at its cohort's simulated time"
    return ""


def _snapshot_after(v: Mapping[str, Any]) -> bool:
    """A cohort's snapshot taken after the time of the simulation it is compared with (an as-of
    time before it): the runs in between are not simulated."""
    return bool(v.get("observed")) and pd.Timestamp(v["snapshot_at"]) > pd.Timestamp(v["at"])


def _later_snapshot_words(f: Mapping[str, Any]) -> str:
    """What the comparison cannot tell when the snapshot was taken after the simulation's time (an
    ``as_of`` before it): what the runs in between wrote shows among the disagreements (a report as
    of a time before the sync's first run said "673 disagreements: unexplained" and nothing else)."""
    later = [v for v in f["cohorts"].values() if _snapshot_after(v)]
    if not later:
        return ""
    pairs = {(v["snapshot_at"], v["at"]) for v in later}
    observed = sum(1 for v in f["cohorts"].values() if v.get("observed"))
    if len(pairs) == 1:
        snap, at = next(iter(pairs))
        when = f"the snapshot ({format_minute(snap)}) was taken after the simulated time ({format_minute(at)})"
    else:
        when = "the snapshot was taken after the simulated time"
    whom = "" if len(later) == observed else f" for {len(later):,} of the {observed:,} cohorts compared"
    return (f" Note:{whom} {when}: the runs between the two are not simulated, and what they wrote is counted "
            "among the disagreements.")


def verify_summary(f: Mapping[str, Any]) -> str:
    """Markdown: :func:`verify_line`, then one line per observed cohort."""
    lines = [verify_line(f)]
    if not f["observed"]:
        return lines[0]
    for c, v in f["cohorts"].items():
        if not v["observed"]:
            lines.append(f"- **{md_text(c)}**: no loaded mParticle profile carries its attribute.")
            continue
        top = v["top_cause"]
        lines.append(
            f"- **{md_text(c)}**: observed {v['observed_true']:,} vs simulated {v['simulated_true']:,} profiles "
            f"with {md_text(v['attribute'])} = true; {v['disagreements']:,} of {v['compared']:,} profiles disagree "
            f"(agreement {agreement_text(v)})"
            + (f", most for {cause_words(top['cause'])} ({top['profiles']:,})." if top else ".")
        )
    return "\n".join(lines)


# what "pause not modelled" means when the settings simulate a one-time export: no pause applies
# to it (docs/rules.md#one-time-export) and it never writes false, so adding a pause changes nothing
ONE_TIME_PAUSE_ADVICE = ("the settings simulate a one-time export, which no pause affects and which never "
                         "writes false: a profile it wrote true that mParticle shows false, or without the "
                         "attribute, was not left as that export wrote it, so the feed runs another sync (a "
                         "recurring one removes the members who left); simulate the sync the feed runs "
                         "(`sync_type: dynamic`, its pauses and re-exports) rather than add a pause")


def verify_causes_text(v: Mapping[str, Any], configured: str = "dynamic") -> str:
    """Markdown list: each cause with disagreements (a cohort's or the totals of
    :func:`cohortlab.report.metrics.verify_figures`), its profiles and what to do, in rule order.
    ``configured``: the sync type the settings simulate; with ``one_time`` the advice for
    ``pause_not_modelled`` is :data:`ONE_TIME_PAUSE_ADVICE` (adding a pause to the settings, the
    advice for a dynamic sync, changes nothing there: a w1 report advised it beside settings of a
    one-time export while the world ran a dynamic sync)."""
    rows = [(c, n) for c, n in v["by_cause"].items() if n]
    if not rows:
        return "No disagreements: every profile compared holds the simulated value."
    advice = {**CAUSE_ADVICE, **({"pause_not_modelled": ONE_TIME_PAUSE_ADVICE} if configured == "one_time" else {})}
    return "\n".join(f"- **{cause_words(c)}**: {counted(n, 'profile')}; {advice.get(c, '')}." for c, n in rows)


def verify_causes_counts(v: Mapping[str, Any]) -> str:
    """Markdown, one line: the causes with disagreements and their profiles, in rule order."""
    rows = [(c, n) for c, n in v["by_cause"].items() if n]
    if not rows:
        return "No disagreements."
    return "Disagreements by cause: " + " · ".join(f"**{cause_words(c)}** {n:,}" for c, n in rows) + "."


def verify_times(v: Mapping[str, Any]) -> str:
    """Markdown, one line: which attribute of which snapshot a cohort's comparison read, and the
    simulation time it was compared with."""
    source = {"given": "the snapshot_at parameter"}.get(v["snapshot_at_from"], v["snapshot_at_from"])
    return (f"Attribute **{md_text(v['attribute'])}** in the mParticle snapshot of {format_minute(v['snapshot_at'])} "
            f"(time from {md_text(source)}), against the simulation after the last run at or before "
            f"{format_minute(v['at'])}."
            + (" The snapshot is later than the simulation: the runs between the two are not simulated, and what "
               "they wrote is counted among the disagreements." if _snapshot_after({**v, "observed": True}) else ""))


def sync_overview(stats: Mapping[str, Mapping[str, Any]], configured: str = "dynamic") -> str:
    """One sentence over all cohorts (the first line of the sync notebook's summary). With a
    one-time export (``configured``) the matched members not true are missing, not pending: no run
    will send them (the per-cohort lines say "missing" too)."""
    h = sync_headline(stats, configured)
    runs, failed = h[SYNC_RUNS], h[FAILED_RUNS]
    if not runs:
        return "**No sync runs** in the window."
    waiting, n = ("missing" if configured == "one_time" else "pending"), h[sync_waiting_label(configured)]
    sent = sum(v.get("sent_not_true") or 0 for v in stats.values() if v.get("runs")) if configured != "one_time" else 0
    if sent:  # already sent: no run sends them again, they are not pending
        waiting = f"not yet true ({_how_many_sent(sent, n, 'of them ')}already sent: {_SENT_WORDS})"
    # the orphans still true of members who left: said apart from the stale matched members'
    # profiles (the headline's "stale true"), as the per-cohort lines say them, from the headline's
    # own figure (absent when there is none)
    orphans = h.get(STALE_ORPHANS) or 0
    return (
        f"**After the last run, {counted(h['Mixpanel members (last run)'], 'Mixpanel member')} "
        f"{'faces' if h['Mixpanel members (last run)'] == 1 else 'face'} "
        f"{counted(h['attribute = true (last run)'], 'mParticle profile')} with the attribute true** across "
        f"{counted(h['cohorts'], 'cohort')}: {h['stale true (last run)']:,} stale"
        + _besides_orphans(orphans)
        + f", {n:,} "
        f"{waiting}; {failed:,} of {runs:,} runs failed"
        + (f" (each cohort's runs counted: {counted(h['cohorts'], 'cohort')})." if h["cohorts"] > 1 else ".")
    )


# the sync page's words for the profiles not yet true whose members were already sent
_SENT_WORDS = "no diff run sends them again, only a full sync sets them true"


def _how_many_sent(sent: int, n: int, of: str = "") -> str:
    """"all " / "" (the one) / "3 of them " before "already sent"."""
    if sent == n:
        return "all " if n > 1 else ""
    return f"{sent:,} {of}"


def sync_summary(cohort: str, stats: Mapping[str, Any], one_time: Mapping[str, Any] | None = None,
                 configured: str = "dynamic") -> str:
    if configured == "one_time" and one_time and one_time.get("runs"):
        s = (f"**{md_text(cohort)}**: the one-time export (as configured) at {format_minute(one_time['first_run'])}"
             f"{_reexports_words(one_time)} {'leave' if one_time.get('reexports') else 'leaves'} "
             f"{_one_time_leaves(one_time)} after the last run: "
             f"{counted(one_time['true_count'], 'profile')} with the attribute true for "
             f"{counted(one_time['members'], 'Mixpanel member')}.")
        if stats.get("runs"):
            s += (f" A dynamic sync ({stats['runs']:,} runs) would leave {stats['stale_true']:,} stale"
                  f"{_besides_orphans(stats.get('stale_orphans') or 0)} and "
                  f"{stats['not_yet_true']:,} not yet true.")
        return s
    if not stats.get("runs"):
        return f"**{md_text(cohort)}**: no sync runs in the window."
    s = (
        f"**{md_text(cohort)}**: {counted(stats['runs'], 'dynamic sync run')} from {format_minute(stats['first_run'])} to {format_minute(stats['last_run'])} "
        f"({stats['failed_runs']:,} failed, {stats['full_refreshes']:,} full "
        f"{'refresh' if stats['full_refreshes'] == 1 else 'refreshes'}"
        + (f", {counted(stats['full_syncs'], 'full sync', 'full syncs')} after a reconnect or a re-export"
           if stats.get("full_syncs") else "")
        + f"). After the last run "
        f"Mixpanel has {counted(stats['members'], 'member', bold=True)} and mParticle "
        f"{counted(stats['true_count'], 'profile', bold=True)} with the attribute true"
        + _orphans_words(stats)
        + f": {stats['not_yet_true']:,} not yet true"
        + (f" ({_how_many_sent(stats['sent_not_true'], stats['not_yet_true'])}already sent: {_SENT_WORDS})"
           if stats.get("sent_not_true") else "")
        + f", {stats['stale_true']:,} stale "
        f"(left the cohort, still true; at most {stats['max_stale_true']:,})"
        + (f", besides {_orphans_left_words(stats['stale_orphans'])}, still true"
           if stats.get("stale_orphans") else "") + "."
    )
    if one_time and one_time.get("runs"):
        s += (f" A one-time export at the first run{_reexports_words(one_time)} would now leave "
              f"{_one_time_leaves(one_time)}: {counted(one_time['true_count'], 'profile')} with the attribute true "
              f"for {counted(one_time['members'], 'member')}.")
    return s


def _orphans_left_words(n: int) -> str:
    """"1 orphan of a member who left" / "3 orphans of members who left"."""
    return counted(n, "orphan of a member who left", "orphans of members who left")


def _besides_orphans(n: int) -> str:
    """`` (besides 1 orphan of a member who left, still true)`` after a count of stale profiles
    (empty for ``n`` 0): ``stale_true`` counts the profiles of matched members only (the card's
    "stale true"), the orphans of members who left (``stale_orphans``) are always said apart,
    never added to it."""
    return f" (besides {_orphans_left_words(n)}, still true)" if n else ""


def _orphans_words(stats: Mapping[str, Any]) -> str:
    """`` (1 of them an orphan created for an unmatched member)`` after a count of profiles true,
    when orphans are among them (create_and_update), which the stale and pending counts leave out."""
    orphans = stats.get("orphans_true") or 0
    if not orphans:
        return ""
    if orphans == stats["true_count"]:
        return (" (an orphan created for an unmatched member)" if orphans == 1
                else " (all orphans created for unmatched members)")
    return (" (1 of them an orphan created for an unmatched member)" if orphans == 1
            else f" ({orphans:,} of them orphans created for unmatched members)")


def _reexports_words(stats: Mapping[str, Any]) -> str:
    """`` and a re-export at <time>`` (``re-exports at <t1> and <t2>``): the exports a one-time
    export's ``reexport_at`` sent after its first (its timeline's ``reexport`` runs)."""
    times = [format_minute(t) for t in stats.get("reexports") or []]
    if not times:
        return ""
    if len(times) == 1:
        return f" and a re-export at {times[0]}"
    return f" and re-exports at {', '.join(times[:-1])} and {times[-1]}"


def _one_time_leaves(stats: Mapping[str, Any]) -> str:
    """What a one-time export leaves after the last run: its stale profiles (``stale_true``, matched
    members' profiles only, the figure of metrics.json and of the card), the orphans of members who
    left said apart (``stale_orphans``, never added to it), and its missing profiles."""
    return (f"{counted(stats['stale_true'], 'stale profile', bold=True)}{_besides_orphans(stats.get('stale_orphans') or 0)} and "
            f"{counted(stats['not_yet_true'], 'missing profile', bold=True)}")


def timeline_caption(stats: Mapping[str, Any]) -> str:
    """The caption of a cohort's timeline chart: what is drawn, and of the marks only those the
    chart has (``stats``: the cohort's dynamic :func:`cohortlab.report.metrics.timeline_summary`):
    the full syncs of a reconnect or a re-export, which the summary counts, were not marked, and
    "triangles: full refreshes" named marks a chart without any did not have."""
    parts = ["Grey: members in the Mixpanel cohort; blue: mParticle profiles with the attribute true after each run"]
    if stats.get("failed_runs"):
        parts.append("shaded: paused (failed runs)")
    if stats.get("full_refreshes"):
        parts.append("▼: full refreshes")
    if stats.get("full_syncs"):
        parts.append("▲: full syncs after a reconnect or a re-export")
    return "; ".join(parts) + "."


def dynamic_replay_words(configured: str = "dynamic") -> tuple[str, str]:
    """``(title suffix, caption prefix)`` of the sync page's per-cohort charts, which replay a
    dynamic sync: nothing when the settings configure one; with a one-time export they are not the
    audience the other pages and the summary report (a chart titled "mParticle audience" showed
    146 profiles where the configured one-time export leaves 150, and "no stale or pending
    profiles" beside a summary counting 13 stale and 9 missing)."""
    if configured != "one_time":
        return "", ""
    return (" (dynamic sync, not the one configured)",
            "What a dynamic sync would do (the settings configure a one-time export, compared in the last chart): ")


def never_a_member(stats: Mapping[str, Any], runs, one_time_runs=None, before_window: bool = False) -> str | None:
    """The "nothing to show" in place of the charts of a cohort's sync when the cohort had no member at
    any run shown and no profile was ever true (an empty cohort, "Nobody"): its timeline and its
    dynamic-vs-one-time chart were drawn empty on a 0-1 axis while the charts between them said
    why they had nothing to show (one line now says it in place of the four). ``runs``, ``one_time_runs``: the cohort's timelines as frames
    (``metrics.json``'s ``runs`` and ``one_time_runs``); ``stats``: its dynamic figures;
    ``before_window``: the cohort had a member (or a profile true) at a run before ``since``
    (``metrics.json``'s ``member_before_window``): the runs shown have none, the cohort did, so the
    line says "no member in the window", not "never". None when the cohort had a member in the
    window, or no run."""
    frames = [f for f in (runs, one_time_runs) if f is not None and len(f)]
    if not frames or any(int(f["members"].max()) or int(f["true_count"].max()) for f in frames):
        return None
    at = _any_run(stats)
    if before_window:
        return f"no member in the window (0 members at {at} in it, no profile true; the cohort had a member before it)"
    return f"the cohort never had a member (0 members at {at}, no profile ever true)"


def _any_run(stats: Mapping[str, Any]) -> str:
    """"the one run" / "any of the 577 runs": the runs of a cohort's sync (``stats``' ``runs``)."""
    n = stats.get("runs") or 0
    return "the one run" if n == 1 else f"any of the {n:,} runs"


def no_staleness(stats: Mapping[str, Any]) -> str:
    """What a cohort without stale or pending profiles after any run means (the "nothing to show"
    of its staleness chart): the audience always held exactly the matched members, which may be
    far fewer than the cohort's members. It counts profiles, not members: matched members who share
    an MPID are one profile (the waterfall's shared MPID step), so the members the match-rates page
    says are matched can be more."""
    runs = _any_run(stats)
    orphans = stats.get("orphans_true") or 0
    if not orphans:
        return (f"no stale or pending profiles after {runs} (the audience always held exactly the profiles of "
                f"the matched members: {counted(stats.get('true_count', 0), 'profile')} for the "
                f"{counted(stats.get('members', 0), 'member')} after the last run)")
    # create_and_update: orphans created for unmatched members are true too (the waterfall's
    # "orphans true" step), never the profile of a matched member, and the chart does not count them
    linked = stats.get("true_linked", stats.get("true_count", 0) - orphans)
    members = counted(stats.get("members", 0), "member")
    orphan_words = ("an orphan created for an unmatched member" if orphans == 1
                    else "orphans created for unmatched members")
    if linked:
        held = (f"{counted(linked, 'profile')} of matched members and {counted(orphans, 'orphan')} created for "
                f"unmatched members, for the {members}")
    else:
        held = (f"{counted(orphans, 'profile')}, {'' if orphans == 1 else 'all '}{orphan_words}, for the "
                f"{members}: no member matched")
    return (f"no stale or pending profiles of matched members after {runs} (the chart counts only those; "
            f"after the last run the audience holds {held})")


def _plan_changes_words(p: Mapping[str, Any]) -> str:
    """A plan's changes in words: "rule writes `$mparticle_user_id` from 2026-02-15 00:00 UTC"."""
    return "; ".join(f"{md_text(c['what'])} from {format_minute(c['at'])}" for c in p.get("changes") or [])


def _plan_effect_words(p: Mapping[str, Any]) -> str:
    """How fast a plan takes effect, or that it has none in the window."""
    if p.get("no_effect_as"):
        return (f"; **no effect** in this window: every day the same match rate as {md_text(p['no_effect_as'])}"
                + (f" (its changes: {_plan_changes_words(p)})" if p.get("changes") else "") + ".")
    d90 = p.get("days_to_90pct")
    changes = f" (its changes: {_plan_changes_words(p)})" if p.get("changes") else ""
    if d90 is not None and p.get("first_change"):
        return f"; reaches 90% of its final rate {counted(int(d90), 'day')} after its first change{changes}."
    return f"{changes}."


def migration_summary(f: Mapping[str, Any], settings=None) -> str:
    """Markdown: the findings of the EIT-migration report, from its figures only. ``settings``:
    those of the identity-gaps page, whose remedies start at their event identity cutoff (said
    here, beside the plans' own start dates)."""
    if not f["plans"]:
        return "No migration plans to compare."
    lines = []
    best = f["best"]
    rate = next(p for p in f["plans"] if p["plan"] == best[0])["final_match_rate"]
    end = f" ({f['end']})" if f.get("end") else ""
    if len(best) > 1:
        lines.append(f"**Tie at the end of the window{end}: {' and '.join(md_text(b) for b in best)}**, each with "
                     f"{pct(rate)} of the Mixpanel profiles predicted to reach an mParticle profile.")
    else:
        lines.append(f"**Best plan at the end of the window{end}: {md_text(best[0])}**: {pct(rate)} of the Mixpanel "
                     f"profiles predicted to reach an mParticle profile.")
    if f["switch"]:
        window = f" The window runs from {f['start']} to {f['end']}." if f.get("start") and f.get("end") else ""
        lines.append(f"\nThe EIT switch studied is **{format_minute(f['switch'])}**, from {f['switch_source']}.{window}\n")
    for p in f["plans"]:
        lines.append(
            f"- **{md_text(p['plan'])}**: {pct(p['final_match_rate'])} of {counted(p['members_end'], 'Mixpanel profile')} "
            f"at the end; {counted(p['split_profiles_end'], 'split profile')}; "
            f"{counted(p['never_fixable_users'], 'user')} can never be fixed "
            f"(inactive after the plan's change)"
            + _reexport_words(p)
            + _plan_effect_words(p)
        )
    if any("rule" in c["what"] or "sdk" in c["what"] for p in f["plans"] for c in p.get("changes") or []):
        lines.append(f"\nA plan's Rule or SDK code starts on the date given with the plan, and a plan counts the "
                     f"Mixpanel profiles that reach an mParticle profile. The identity-gaps page values its remedies "
                     f"from {cutoff_text(settings)} instead, and counts the cohort members' users a remedy brings into "
                     f"the audience once they are sent, so what a Rule gains there differs from these plans. Both "
                     f"pages follow {REMEDIATION_RULE}.")
    v = f.get("validation")
    if v:
        lines.append(f"\nValidation of **{md_text(v['plan'])}** against the exports taken after the switch"
                     + (", per cohort (a member of several is a member of each): " if len(v["cohorts"]) > 1 else ": ")
                     + "; ".join(_validation_words(c) for c in v["cohorts"]) + ".")
    return "\n".join(lines)


def _validation_words(c: Mapping[str, Any]) -> str:
    """One cohort's validation in words, from its row of the page's table (the same counts)."""
    if not c["members"]:
        return f"**{md_text(c['cohort_name'])}**: no members"
    return (f"**{md_text(c['cohort_name'])}**: of {counted(c['members'], 'member')}, {c['predicted_matched']:,} "
            f"({pct(c['predicted_match_rate'])} of its members) predicted to match, {c['observed_matched']:,} "
            f"({pct(c['observed_match_rate'])}) observed")


def migration_as_of(as_of, start, end) -> str:
    """The "as of" of the EIT-migration page's header: the plans are predicted day by day over the
    window (``start`` to ``end``, by default the events' range), whatever ``as_of``, which only the
    validation uses; a header saying "as of <as_of>" alone put figures of later days under it."""
    if as_of:
        return (f"{readable_times(str(as_of))} for the validation; the plans are predicted day by day from "
                f"{start} to {end}")
    return f"{end} (the last day predicted, from {start})"


_ISO_TIME = re.compile(r"\b(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(?::\d{2}(?:\.\d+)?)?"
                       r"(Z|[+-](?:0\d|1[0-4]):?(?:00|15|30|45)(?!\d)|\b)(?! UTC)")


def _readable_time(m: re.Match) -> str:
    zone = m.group(3)
    if zone and zone != "Z":  # an offset: the same instant in UTC, not the wall time called UTC
        from datetime import datetime

        return format_minute(datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}{zone[:3]}:{zone[-2:]}"))
    return f"{m.group(1)} {m.group(2)} UTC"


def readable_times(text: str) -> str:
    """``text`` with every time in it (``2026-01-15T00:00:00Z``, ``2026-02-28 00:00:00``,
    ``2026-03-01T05:30:00+05:30``) written as the pages write times (:func:`~cohortlab.times.format_minute`: ``2026-01-15
    00:00 UTC``; a time with an offset converted to UTC); dates alone stay as they are."""
    return _ISO_TIME.sub(_readable_time, str(text))


def sync_report_summary(f: Mapping[str, Any]) -> str:
    """Markdown: the findings of the sync report, from its figures only: the overview of the sync
    the settings configure, then per cohort the dynamic sync and the one-time export."""
    cohorts, configured = f["cohorts"], f.get("configured", "dynamic")
    overview = sync_overview({c: v[configured] for c, v in cohorts.items()}, configured)
    if configured == "one_time":
        overview = ("The settings configure a **one-time export**: the per-cohort lines below say what it leaves; "
                    "the charts replay a dynamic sync instead, what a recurring sync would do (the last chart of "
                    "each cohort compares the two). " + overview)
    return "\n\n".join([overview] + [sync_summary(c, v["dynamic"], v["one_time"], configured)
                                       for c, v in cohorts.items()])
