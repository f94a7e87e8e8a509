"""Where the EIT switch date of the standard plans comes from. It is never invented: a parameter,
the settings' ``eit_timeline``, or the data (the first event keyed by an existing MPID);
:class:`Switch` says which, so every result can state it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cohortlab.engines.base import Engine
from cohortlab.identifiers import mpid_sql
from cohortlab.migration.plans import MigrationPlan, standard_plans
from cohortlab.settings import SyncSettings
from cohortlab.times import format_time, parse_time

SOURCES = ("parameter", "settings", "data")


@dataclass(frozen=True)
class Switch:
    """The instant the Mixpanel output switches to ``mparticle_id`` (UTC) and its ``source``:
    ``parameter`` (given), ``settings`` (the first dated switch to ``mparticle_id`` in the
    settings' ``eit_timeline``) or ``data`` (the first event whose distinct_id is the MPID of
    an existing mParticle profile)."""
    at: datetime
    source: str

    @property
    def text(self) -> str:
        how = {"parameter": "given as a parameter",
               "settings": "from the settings' eit_timeline",
               "data": "from the data: the first event keyed by an existing MPID"}[self.source]
        return f"switch to mparticle_id at {format_time(self.at)} ({how})"


def first_mpid_keyed_event(engine: Engine) -> datetime | None:
    """Time of the first event whose distinct_id is a valid MPID of an existing profile (UTC)."""
    t = engine.query_rows(f"""
        SELECT min(e.time) FROM mp_events e
        JOIN (SELECT DISTINCT mpid FROM mpa_profiles WHERE mpid IS NOT NULL) p
          ON p.mpid = {mpid_sql('e.distinct_id')}""")[0][0]
    return parse_time(t) if t is not None else None


def find_switch(engine: Engine, switch: Any = None, settings: Any = None) -> Switch:
    """The switch date: ``switch`` when given, else the settings' first dated switch to
    ``mparticle_id``, else the data's first MPID-keyed event. Raises ``ValueError`` when none
    of them has one."""
    if switch is not None:
        return Switch(parse_time(switch, "switch"), "parameter")
    st = SyncSettings.coerce(settings)
    for p in st.eit_timeline:
        if p.since is not None and p.eit == "mparticle_id":
            return Switch(p.since, "settings")
    first = first_mpid_keyed_event(engine)
    if first is None:
        raise ValueError("no switch date: no event's distinct_id is the MPID of an existing mParticle profile and "
                         "the settings' eit_timeline has no switch to mparticle_id; give the switch date "
                         "(--switch DATE, or switch=...)")
    return Switch(first, "data")


def plans_around(switch: Switch, *, rule: Any = None, settings: Any = None) -> list[MigrationPlan]:
    """The standard four plans (switch only, switch + Rule, Rule only, do nothing) around
    ``switch``, with the settings' event rule and EIT before the switch."""
    st = SyncSettings.coerce(settings)
    before = st.eit_timeline[0].eit if st.eit_timeline and st.eit_timeline[0].eit != "mparticle_id" else "customer_id"
    return standard_plans(switch.at, rule=rule, current_eit=before, event_identity_cutoff=st.event_identity_cutoff)


__all__ = ["Switch", "SOURCES", "find_switch", "first_mpid_keyed_event", "plans_around"]
