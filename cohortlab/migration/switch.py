"""Where the EIT switch date of the standard plans comes from. It is never invented: a parameter,
the settings' ``eit_timeline``, or the data (the first MPID-keyed activity); :class:`Switch` says
which, so every result can state it.

MPID-keyed activity in the data: an *identified* event (a logged-in one,
:func:`cohortlab.identifiers.logged_in_rule`: one with a ``$user_id``) whose distinct_id is the
MPID of an existing mParticle profile. Anonymous events do not count: with Simplified ID Merge an
export taken after the switch shows a person's earlier anonymous events under the identity they
later got, the MPID, so they carry MPIDs from before the switch. When no event has a ``$user_id``
at all, an event is identified when its distinct_id is no device id (the rule the what-if and the
remedies read too): an anonymous ``$device:`` event before the first MPID-keyed one is no switch.

A switch is a change: the data shows one only when an identified event before that first
MPID-keyed one is keyed by something else than an MPID (a customer id, an email; a numeric one
when it is a user identity of a loaded profile). Otherwise the data is keyed by MPID from its
start (the output's EIT was mParticle ID before the data begins) and shows no switch. Studying
one at its first event told a story of a world that never had it (a "do nothing" plan keyed by
customer ids). The events before it may be keyed by the MPID of a profile deleted since
(mParticle deletes inactive ones): a healthy world whose first user's profile was deleted showed
a "switch" at its second event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cohortlab.engines.base import Engine
from cohortlab.errors import SettingsError
from cohortlab.identifiers import is_valid_mpid_sql, logged_in_rule, mpid_sql
from cohortlab.migration.plans import MigrationPlan, standard_plans
from cohortlab.pipeline import sql_ts
from cohortlab.settings import EitPeriod, SyncSettings
from cohortlab.times import format_time, naive_utc, parse_day, parse_time

SOURCES = ("parameter", "settings", "data")


@dataclass(frozen=True)
class Switch:
    """The instant the Mixpanel output switches to ``mparticle_id`` (UTC) and its ``source``:
    ``parameter`` (given), ``settings`` (the first dated switch to ``mparticle_id`` in the
    settings' ``eit_timeline``) or ``data`` (the first identified event whose distinct_id is the
    MPID of an existing mParticle profile; ``identified``: told by its ``$user_id``, as when the
    data has events with one, else by its distinct_id being no device id)."""
    at: datetime
    source: str
    identified: bool = True

    @property
    def text(self) -> str:
        data = ("from the data: the first identified event keyed by an existing MPID" if self.identified else
                "from the data: the first identified event keyed by an existing MPID; no event has a "
                "$user_id: identified is keyed by no device id")
        how = {"parameter": "given as a parameter",
               "settings": "from the settings' eit_timeline",
               "data": data}[self.source]
        return f"switch to mparticle_id at {format_time(self.at)} ({how})"


# why the data shows no switch (first_mpid_keyed_event found none)
NO_SWITCH = ("no identified event (one with a $user_id; one keyed by no device id when none has one) has the "
             "MPID of an "
             "existing mParticle profile as its distinct_id after one that has not (the data is keyed by "
             "MPID from its first such event, or never), and the settings' eit_timeline has no switch "
             "to mparticle_id")

_EXISTING = "(SELECT DISTINCT mpid FROM mpa_profiles WHERE mpid IS NOT NULL)"


def _counted(engine: Engine) -> tuple[str, str, bool]:
    """``(join, condition, by user id)``: the events of ``mp_events e`` a switch is read from,
    the identified ones (:func:`cohortlab.identifiers.logged_in_rule`): the SQL to append to the
    ``FROM`` and the condition, and whether the data tells them by ``$user_id``."""
    rule = logged_in_rule(engine)
    return (rule.join("e.distinct_id"), rule.sql(user="e.user_id", distinct="e.distinct_id", device="e.device_id"),
            rule.user_ids)


def _not_mpid_keyed() -> str:
    """SQL condition on ``mp_events e``: its distinct_id is no MPID: a text that is no valid MPID
    (a customer id such as ``cust-1``, an email, a ``$device:`` id), or a numeric one that is a
    user identity of a loaded profile (a numeric customer id). A numeric distinct_id that is
    neither an existing MPID nor a known identity counts as an MPID: that of a profile deleted
    since (mParticle deletes inactive ones)."""
    return (f"(NOT {is_valid_mpid_sql('e.distinct_id')} OR e.distinct_id IN "
            "(SELECT value FROM mpa_identities WHERE kind = 'user' AND value IS NOT NULL))")


def first_mpid_keyed_event(engine: Engine) -> datetime | None:
    """Time (UTC) of the first identified event whose distinct_id is a valid MPID of an existing
    profile (of any event when no event has a ``$user_id``); None when there is none, or when no
    identified event before it is keyed by something else than an MPID (:func:`_not_mpid_keyed`:
    the data is keyed by MPID from its start, no switch)."""
    join, counted, _ = _counted(engine)
    keyed = engine.query_rows(f"""
        SELECT min(e.time) FROM mp_events e JOIN {_EXISTING} p ON p.mpid = {mpid_sql('e.distinct_id')}{join}
        WHERE {counted}""")[0][0]
    if keyed is None or not engine.query_rows(f"""
            SELECT 1 FROM mp_events e{join} WHERE {counted} AND e.time < {sql_ts(keyed)}
              AND {_not_mpid_keyed()} LIMIT 1"""):
        return None
    return parse_time(keyed)


def settings_switch(settings: Any = None) -> datetime | None:
    """The settings' first dated switch to ``mparticle_id`` (their ``eit_timeline``), or None."""
    for p in SyncSettings.coerce(settings).eit_timeline:
        if p.since is not None and p.eit == "mparticle_id":
            return p.since
    return None


def data_switch(engine: Engine) -> datetime | None:
    """:func:`first_mpid_keyed_event`, asked as existence first: on data without any event keyed
    by an existing MPID the scan stops at once, without reading every event."""
    join, counted, _ = _counted(engine)
    keyed = f"SELECT 1 FROM mp_events e SEMI JOIN {_EXISTING} p ON p.mpid = {mpid_sql('e.distinct_id')}{join}"
    if not engine.query_rows(f"{keyed} WHERE {counted} LIMIT 1"):
        return None
    return first_mpid_keyed_event(engine)


def has_mpid_keyed_event(engine: Engine) -> bool:
    """Whether :func:`first_mpid_keyed_event` finds one (:func:`data_switch`)."""
    return data_switch(engine) is not None


def find_switch(engine: Engine, switch: Any = None, settings: Any = None, *, found: Any = None) -> Switch:
    """The switch date: ``switch`` when given, else the settings' first dated switch to
    ``mparticle_id``, else the data's first MPID-keyed event (``found``: that event's time as
    read from this same data already, e.g. by the report before its pages run; reading it again
    reads every event). Raises ``ValueError`` when none of them has one."""
    if switch is not None:
        return Switch(parse_time(switch, "switch"), "parameter")
    at = settings_switch(settings)
    if at is not None:
        return Switch(at, "settings")
    first = parse_time(found, "found") if found is not None else first_mpid_keyed_event(engine)
    if first is None:
        raise ValueError(f"no switch date: {NO_SWITCH}; give the switch date (--switch DATE, or switch=...)")
    return Switch(first, "data", _counted(engine)[2])


def check_switch_in_window(engine: Engine, switch: Switch | datetime, end_day: Any, end_source: str = "parameter",
                           *, how: str | None = None) -> None:
    """A :class:`SettingsError` (one line) when the standard plans around ``switch`` (a
    :class:`Switch`, or its time and ``how`` it was found) cannot differ: it is before the data's
    first event (all of the data would be under mParticle ID: nothing to switch from), or at or
    after the end of the window's last day ``end_day`` (``end_source``: where that end came
    from, as ``migrate compare`` says it). The four plans are then the same every day, and the
    comparison says nothing about the switch."""
    if isinstance(switch, Switch):
        at, where = naive_utc(switch.at), switch.text.removeprefix("switch to mparticle_id at ")
    else:
        at, where = naive_utc(switch), f"{format_time(switch)} ({how or 'the switch studied'})"
    first = engine.query_rows("SELECT min(time) FROM mp_events")[0][0]
    if first is not None and at < parse_time(first).replace(tzinfo=None):
        raise SettingsError(f"the switch {where} is before the first event ({format_time(first)}): the data would "
                            "all be under mParticle ID, with nothing to switch from; give a switch inside the data")
    end = parse_day(end_day, "end")
    if at >= datetime.combine(end + timedelta(days=1), datetime.min.time()):
        raise SettingsError(f"the switch {where} is after the window's last day ({end}, from the {end_source}): "
                            "the four plans are the same every day of the window; give a switch inside it, or a "
                            "window that reaches it: a later end (--end; -p end=... in a report; end= in Python), "
                            "past the last event with --activity repeat (-p activity=repeat; activity=\"repeat\")")


def history_plan(engine: Engine, settings: Any = None) -> MigrationPlan:
    """The plan the loaded data followed: the settings' EIT timeline when it has a switch to
    ``mparticle_id``, else a switch at the data's first MPID-keyed activity (if any), with the
    settings' event rule and no remediation. Its name says where the switch came from."""
    st = SyncSettings.coerce(settings)
    if settings_switch(st) is not None:
        return MigrationPlan(name="the data's history: the settings' EIT timeline", eit_timeline=list(st.eit_timeline),
                             event_identity_cutoff=st.event_identity_cutoff)
    first = first_mpid_keyed_event(engine)
    before = st.eit_timeline[0].eit
    if first is None or before == "mparticle_id":
        return MigrationPlan(name="the data's history: the settings' EIT, no switch", eit_timeline=list(st.eit_timeline),
                             event_identity_cutoff=st.event_identity_cutoff)
    return MigrationPlan(name="the data's history: a switch at its first MPID-keyed event",
                         eit_timeline=[{"since": None, "eit": before}, {"since": first, "eit": "mparticle_id"}],
                         event_identity_cutoff=st.event_identity_cutoff)


def timeline_before_switch(settings: Any, at: Any) -> tuple[list[EitPeriod], list[EitPeriod]]:
    """``(carried, not modelled)``: the settings' EIT timeline before the switch at ``at``, as
    the standard plans carry it (what Mixpanel held before the switch: a ``customer_id``, then
    ``email`` from a day), and the settings' periods they do not model. Carried: the undated
    first period (``customer_id`` when it is ``mparticle_id``, mParticle's default: the plans
    study a switch to it) and every period dated before ``at`` of another EIT than
    ``mparticle_id``. Not modelled: a period dated at or after ``at`` other than the settings'
    own switch at ``at`` (the plans keep ``mparticle_id`` from the switch on), and an
    ``mparticle_id`` period dated before a given switch (the plans study one switch)."""
    st = SyncSettings.coerce(settings)
    at = naive_utc(parse_time(at, "switch"))
    carried, dropped = [], []
    for p in st.eit_timeline:
        if p.since is None:
            carried.append(EitPeriod(since=None, eit=p.eit if p.eit != "mparticle_id" else "customer_id"))
        elif naive_utc(p.since) < at and p.eit != "mparticle_id":
            carried.append(p)
        elif not (naive_utc(p.since) == at and p.eit == "mparticle_id"):
            dropped.append(p)
    return carried or [EitPeriod(since=None, eit="customer_id")], dropped


def plans_around(switch: Switch | Any, *, rule: Any = None, settings: Any = None) -> list[MigrationPlan]:
    """The standard four plans (switch only, switch + Rule, Rule only, do nothing) around
    ``switch`` (a :class:`Switch` or its time), with the settings' event rule and their EIT
    timeline before the switch (:func:`timeline_before_switch`: every plan carries it, so a
    ``customer_id``, then ``email`` period is keyed by email as Mixpanel held it): ``migrate
    compare`` and the report's EIT page build them here alike."""
    st = SyncSettings.coerce(settings)
    at = switch.at if isinstance(switch, Switch) else switch
    before, _ = timeline_before_switch(st, at)
    return standard_plans(at, rule=rule, current_eit=before, event_identity_cutoff=st.event_identity_cutoff)


__all__ = ["Switch", "SOURCES", "check_switch_in_window", "find_switch", "first_mpid_keyed_event",
           "history_plan", "plans_around", "timeline_before_switch"]
