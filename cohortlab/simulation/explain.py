"""Explain one user: every fact on both sides, and the rule that decided each step.

``explain(engine, cohort, user)`` finds the user by distinct_id, email or MPID (also by an
mParticle user identity such as a customer id) and lists, in order:

1. how the id was found (``lookup``);
2. per distinct_id of the user: the Mixpanel profile (``$mparticle_user_id``, ``$email``,
   ``$last_seen``), the events carrying ``$mparticle_user_id`` (and whether the event identity
   rule counts them), the cohort membership over time, and the resolution (identifier, status,
   gap reason, recovery) — docs/rules.md#choosing-the-identifier, #event-identity-rule,
   #membership, #gap-reasons;
3. each run that sent the member, and what it sent and wrote (#dynamic-sync,
   #pauses-and-refresh, #one-time-export);
4. per mParticle profile reached: its identities, the simulated attribute (value, last write,
   number of writes, other members sharing it — counted, never named) and the observed
   attribute with the verify cause when an mParticle snapshot carries it (#observed-state).

The result is an :class:`Explanation`: ``steps`` (a list of :class:`Step`: kind, time, text,
rule, data) and ``to_text()``. Other users' identifiers never appear (shared profiles are
counted), and every email and phone number (the user's own too, and a distinct_id that is one)
is replaced by its pseudonym (:mod:`cohortlab.privacy`) unless ``show_personal_data``; only the
value the user was asked about by is shown as given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

import pandas as pd

from cohortlab.engines.base import Engine
from cohortlab.errors import CohortlabError
from cohortlab.escaping import one_line
from cohortlab.identifiers import is_valid_mpid, mpid_sql
from cohortlab.pipeline import sql_str, sql_ts
from cohortlab.settings import SyncSettings
from cohortlab.simulation.membership import webhook_pages_sql
from cohortlab.simulation.resolution import (
    RESOLUTION_COLUMNS,
    profile_versions_sql,
    version_order_sql,
    version_read_sql,
)
from cohortlab.simulation.sync import FULL_KINDS
from cohortlab.times import format_instant, naive_utc, to_utc

R = "docs/rules.md#"
RULES = {
    "lookup": None,
    "mixpanel_profile": R + "choosing-the-identifier",
    "events": R + "event-identity-rule",
    "membership": R + "membership",
    "resolution": R + "gap-reasons",
    "recovery": R + "recoverable-via",
    "send": R + "dynamic-sync",
    "mparticle_profile": R + "statuses",
    "attribute": R + "cohort-attribute",
    "observed": R + "observed-state",
}
MAX_EVENTS = 10


class ExplainError(CohortlabError, ValueError):
    """The user is not found for this cohort."""


@dataclass
class Step:
    kind: str
    text: str
    rule: str | None = None
    time: datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Explanation:
    cohort: str
    user: str
    at: datetime
    attribute: str
    distinct_ids: list[str]
    mpids: list[int]
    steps: list[Step]
    # the simulation read: "stored" (in the database), "cached" (a full one the caller held),
    # "computed" (simulate_fn), "related" (only the members that matter to this user)
    simulation: str = "related"

    def __repr__(self) -> str:
        # not the user nor its distinct_ids (an email is a distinct_id too): to_text() tells the story
        return (f"<Explanation of one user of {self.cohort!r} as of {_fmt(self.at)} UTC: {len(self.steps)} steps, "
                f"{len(self.distinct_ids)} distinct_id(s), {len(self.mpids)} MPID(s); .to_text(), .to_frame()>")

    def to_text(self) -> str:
        lines = [f"user {_safe(self.user)} in cohort {self.cohort!r} (attribute {self.attribute!r}), "
                 f"as of {_fmt(self.at)} UTC"]
        for s in self.steps:
            when = f"{_fmt(s.time)}  " if s.time is not None else ""
            rule = f"   [{s.rule}]" if s.rule else ""
            lines.append(f"- {s.kind}: {when}{s.text}{rule}")
        return "\n".join(lines)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"kind": s.kind, "time": s.time, "text": s.text, "rule": s.rule} for s in self.steps])


_safe = one_line
_fmt = format_instant


def _q(engine: Engine, sql: str, params: list) -> list[tuple]:
    return engine.query_rows(sql, params)


# ----------------------------------------------------------------------------- lookup
def user_text(engine: Engine, user: Any) -> str:
    """The text explain looks ``user`` up by: as given when a distinct_id, an email or an
    mParticle user identity is spelled exactly so (a distinct_id may start or end with a space,
    docs/loading.md#mixpanel-members), else without its surrounding spaces (an id pasted with
    them). Only a value with surrounding spaces is looked up here. A float is refused: it names
    no id exactly (an MPID above 2^53 has lost its last digits: docs/rules.md#exact-numbers)."""
    if isinstance(user, float) or type(user).__module__ == "numpy" and getattr(user, "dtype", None) is not None \
            and user.dtype.kind == "f":
        raise ExplainError(f"user {user!r} is a float, which names no MPID or id exactly (an MPID above 2^53 has "
                           "lost its last digits): give the id as text or an int")
    if user is None or isinstance(user, bool) or not isinstance(user, (str, int)) and not (
            type(user).__module__ == "numpy" and getattr(user, "dtype", None) is not None and user.dtype.kind in "iu"):
        # None, a list, a dict... was looked up as its text ("None" found a distinct_id "None")
        raise ExplainError(f"user: one distinct_id, email, MPID or identity (text or an int), "
                           f"not {type(user).__name__}")
    text = str(user)
    stripped = text.strip()
    if stripped == text:
        return text
    return text if _names_something(engine, text) else stripped


def unpseudonymised(engine: Engine, user: str) -> str | None:
    """The value whose pseudonym ``user`` is (``anon-`` and 12 hex digits, as reports and
    ``--members-out`` show an email or a phone number), among the values explain looks users up
    by, when ``user`` is spelled like a pseudonym and names nothing as given; else None."""
    from cohortlab.privacy import PSEUDONYM_RE, database_key, pseudonym_sql

    if not PSEUDONYM_RE.fullmatch(user) or _names_something(engine, user):
        return None
    rows = _q(engine, f"""
        WITH candidates AS (
            SELECT distinct_id AS v FROM mp_profiles UNION SELECT email FROM mp_profiles
            UNION SELECT distinct_id FROM mp_profile_history UNION SELECT email FROM mp_profile_history
            UNION SELECT distinct_id FROM mp_cohort_members
            UNION SELECT distinct_id FROM mp_webhook_members UNION SELECT email FROM mp_webhook_members
            UNION SELECT value FROM mpa_identities WHERE kind = 'user'
            UNION SELECT distinct_id FROM mp_events)
        SELECT v FROM candidates
        WHERE v IS NOT NULL AND {pseudonym_sql('v', database_key(engine))} = ?
        ORDER BY v LIMIT 2""", [user])
    return rows[0][0] if len(rows) == 1 else None


def _names_something(engine: Engine, text: str) -> bool:
    """Whether ``text`` is, exactly, a distinct_id, an email or an mParticle user identity."""
    return bool(_q(engine, """
        SELECT 1 FROM mp_profiles WHERE distinct_id = ? OR email = ?
        UNION ALL SELECT 1 FROM mp_cohort_members WHERE distinct_id = ?
        UNION ALL SELECT 1 FROM mp_webhook_members WHERE distinct_id = ? OR email = ?
        UNION ALL SELECT 1 FROM mpa_identities WHERE value = ? AND kind = 'user' LIMIT 1""", [text] * 6)
        or _q(engine, "SELECT 1 FROM mp_events WHERE distinct_id = ? LIMIT 1", [text]))


def _direct_lookup(engine: Engine, user: str) -> tuple[dict[str, str], dict[int, str], int | None]:
    """The distinct_ids and MPIDs a user id names without the simulation (module docstring)."""
    dids: dict[str, str] = {}
    mpids: dict[int, str] = {}
    known = bool(_q(engine, """
        SELECT 1 FROM mp_profiles WHERE distinct_id = ?
        UNION ALL SELECT 1 FROM mp_cohort_members WHERE distinct_id = ?
        UNION ALL SELECT 1 FROM mp_webhook_members WHERE distinct_id = ? LIMIT 1""", [user] * 3))
    if not known:  # only then the events (the largest table)
        known = bool(_q(engine, "SELECT 1 FROM mp_events WHERE distinct_id = ? LIMIT 1", [user]))
    if known:
        dids[user] = "the distinct_id of a Mixpanel profile or cohort member"
    for (d,) in _q(engine, """SELECT distinct_id FROM mp_profiles WHERE email = ?
                             UNION SELECT distinct_id FROM mp_webhook_members WHERE email = ?""", [user, user]):
        dids.setdefault(d, "the Mixpanel profile (or webhook member) with this email")
    mpid = int(user) if is_valid_mpid(user) else None
    if mpid is not None:
        if _q(engine, "SELECT 1 FROM mpa_profiles WHERE mpid = ?", [mpid]):
            mpids[mpid] = "an mParticle profile with this MPID"
        for (d,) in _q(engine, "SELECT distinct_id FROM mp_profiles WHERE mparticle_user_id = ?", [user]):
            dids.setdefault(d, "the Mixpanel profile whose $mparticle_user_id is this MPID")
    return dids, mpids, mpid


def _member_lookup(engine: Engine, user: str, dids: dict[str, str], mpids: dict[int, str], mpid: int | None,
                   resolution: str) -> None:
    """The rest of the lookup, from the members' resolution (table ``resolution``)."""
    if mpid is not None:
        for (d,) in _q(engine, f"SELECT distinct_id FROM {resolution} WHERE mpid = ? ORDER BY distinct_id", [mpid]):
            dids.setdefault(str(d), "a cohort member that resolves to this MPID")
    for (m, t) in _q(engine, "SELECT DISTINCT mpid, identity_type FROM mpa_identities WHERE value = ? AND kind = 'user' "
                     "ORDER BY mpid, identity_type",
                     [user]):
        mpids.setdefault(int(m), f"the mParticle profile whose {t} is this id")
    if dids:
        got = dict(_q(engine, f"SELECT distinct_id, mpid FROM {resolution} WHERE mpid IS NOT NULL AND distinct_id IN "
                              f"({', '.join('?' * len(dids))})", list(dids)))
        for d in list(dids):
            if got.get(d) is not None:
                mpids.setdefault(int(got[d]), f"the profile member {d} resolves to")


def find_user(engine: Engine, user: str, members: pd.DataFrame | str) -> tuple[list[str], list[int], list[str]]:
    """(distinct_ids, MPIDs, how each was found). ``members``: the resolution of current members
    (a DataFrame, or the name of a resolution table)."""
    user = user_text(engine, user)
    dids, mpids, mpid = _direct_lookup(engine, user)
    if isinstance(members, str):
        _member_lookup(engine, user, dids, mpids, mpid, members)
    else:
        if mpid is not None and len(members):
            for d in members.loc[members.mpid.astype("Int64") == mpid, "distinct_id"]:
                dids.setdefault(str(d), "a cohort member that resolves to this MPID")
        for (m, t) in _q(engine, "SELECT DISTINCT mpid, identity_type FROM mpa_identities WHERE value = ? "
                                 "AND kind = 'user' ORDER BY mpid, identity_type", [user]):
            mpids.setdefault(int(m), f"the mParticle profile whose {t} is this id")
        for d in list(dids):
            if len(members):
                for m in members.loc[members.distinct_id == d, "mpid"].dropna():
                    mpids.setdefault(int(m), f"the profile member {d} resolves to")
    how = [f"distinct_id {_safe(d)}: {h}" for d, h in dids.items()] + [f"MPID {m}: {h}" for m, h in mpids.items()]
    return list(dids), list(mpids), how


# ----------------------------------------------------------------------------- the members that matter
_ONLY = "_explain_members"


def _related_members_sql(dids: list[str], mpids: list[int]) -> str:
    """The distinct_ids whose simulation decides everything explain shows about the user
    (module docstring): the user's distinct_ids; every distinct_id whose identifier could ever
    be one of the candidate MPIDs (the user's MPIDs, and every MPID an identifier of the user's
    distinct_ids could denote: its profiles' ``$mparticle_user_id``, its events', itself); and
    every distinct_id that holds a user identity of a candidate (as its id or an email)."""
    did_list = ", ".join(sql_str(d) for d in dids) or "NULL"
    given = " UNION ALL ".join(f"SELECT CAST({int(m)} AS BIGINT)" for m in mpids) or "SELECT CAST(NULL AS BIGINT)"
    mp = mpid_sql
    return f"""
    WITH
    own_ids AS (
        SELECT mparticle_user_id AS v FROM mp_profiles WHERE distinct_id IN ({did_list})
        UNION SELECT mparticle_user_id FROM mp_profile_history WHERE distinct_id IN ({did_list})
        UNION SELECT mparticle_user_id FROM mp_events WHERE distinct_id IN ({did_list}) AND mparticle_user_id IS NOT NULL
        UNION SELECT distinct_id FROM mp_profiles WHERE distinct_id IN ({did_list})
        UNION SELECT * FROM (VALUES {', '.join(f'({sql_str(d)})' for d in dids) or '(NULL)'}) x(v)
    ),
    cands AS (
        SELECT {mp('v')} AS mpid FROM own_ids WHERE {mp('v')} IS NOT NULL
        UNION {given}
    ),
    identity_values AS (
        SELECT i.value FROM mpa_identities i JOIN cands c ON c.mpid = i.mpid
        WHERE coalesce(i.kind, 'user') = 'user' AND i.value IS NOT NULL
    )
    SELECT distinct_id FROM (VALUES {', '.join(f'({sql_str(d)})' for d in dids) or '(NULL)'}) x(distinct_id)
    UNION SELECT p.distinct_id FROM mp_profiles p JOIN cands c ON c.mpid = {mp('p.mparticle_user_id')}
    UNION SELECT h.distinct_id FROM mp_profile_history h JOIN cands c ON c.mpid = {mp('h.mparticle_user_id')}
    UNION SELECT e.distinct_id FROM mp_events e JOIN cands c ON c.mpid = {mp('e.mparticle_user_id')}
          WHERE e.mparticle_user_id IS NOT NULL
    UNION SELECT m.distinct_id FROM mp_cohort_members m JOIN cands c ON c.mpid = {mp('m.distinct_id')}
    UNION SELECT w.distinct_id FROM mp_webhook_members w JOIN cands c ON c.mpid = {mp('w.distinct_id')}
    UNION SELECT value FROM identity_values
    UNION SELECT p.distinct_id FROM mp_profiles p JOIN identity_values iv ON iv.value = p.email
    UNION SELECT h.distinct_id FROM mp_profile_history h JOIN identity_values iv ON iv.value = h.email
    UNION SELECT w.distinct_id FROM mp_webhook_members w JOIN identity_values iv ON iv.value = w.email
    """


@dataclass
class _Table:
    table_name: str


@dataclass
class _Restricted:
    """The simulation of the members that matter to one user (same shape as the parts of a
    :class:`cohortlab.simulation.simulate.SimulationResult` explain and verify read)."""

    at: datetime
    attribute: str
    tables: dict[str, _Table]
    table_names: dict[str, str]


def _simulate_related(engine: Engine, ref, at, settings: SyncSettings, dids: list[str], mpids: list[int]) -> _Restricted:
    from cohortlab.simulation.simulate import new_run_id
    from cohortlab.simulation.sync import Names, run_sync

    engine.materialise(_ONLY, _related_members_sql(dids, mpids), temp=True)
    n = Names(f"sim_{new_run_id()}_x_")
    run = run_sync(engine, ref, at, settings, names=n, only=_ONLY)
    names = {step: f"{n.prefix}{step}" for step in run.step_counts}
    return _Restricted(at=run.at, attribute=run.attribute,
                       tables={t: _Table(names[t]) for t in ("resolution", "attribute_state", "timeline")},
                       table_names=names)


# ----------------------------------------------------------------------------- membership of one member
def presence(engine: Engine, ref, distinct_id: str, at: datetime) -> list[tuple[datetime, bool]]:
    """(version time, present after it) for every membership version of the cohort up to ``at``."""
    at_ = naive_utc(at)
    if ref.source == "snapshots":
        # one snapshot per as_of time, the one loaded last, as the simulation reads them
        rows = _q(engine, f"""
            SELECT v.as_of, count(m.distinct_id) > 0
            FROM ({ref.snapshots_sql('?')}) v
            LEFT JOIN mp_cohort_members m ON m.snapshot_id = v.snapshot_id AND m.distinct_id = ?
            GROUP BY v.as_of ORDER BY v.as_of""", [at_, distinct_id])
        return [(to_utc(t), bool(p)) for t, p in rows]
    # the cohort's pages (of its ids, or of its names without an id), as the simulation reads them
    rows = _q(engine, f"""
        WITH pages AS ({webhook_pages_sql(ref.webhook_filter("s"), "?")}),
        msgs AS (SELECT msg_key, action, min(received_at) AS at_time, min(seq) AS first_seq FROM pages GROUP BY ALL),
        hits AS (SELECT DISTINCT p.msg_key, p.action FROM pages p JOIN mp_webhook_members w ON w.seq = p.seq
                 WHERE w.distinct_id = ?)
        SELECT m.at_time, m.action, h.msg_key IS NOT NULL AS listed
        FROM msgs m LEFT JOIN hits h ON h.msg_key = m.msg_key AND h.action = m.action
        ORDER BY m.at_time, m.first_seq""", [at_, distinct_id])
    out, present = [], False
    for t, action, listed in rows:
        if action == "members":
            present = bool(listed)
        elif listed:
            present = action == "add_members"
        out.append((to_utc(t), present))
    return out


def _present_at(versions: list[tuple[datetime, bool]], t) -> bool:
    if t is None or pd.isna(t):
        return False
    t = to_utc(pd.Timestamp(t).to_pydatetime())
    p = False
    for vt, present in versions:
        if vt <= t:
            p = present
        else:
            break
    return p


def sends(timeline: pd.DataFrame, versions: list[tuple[datetime, bool]]) -> list[dict[str, Any]]:
    """The runs that sent this member: (run_at, kind, action add|remove|full) and failed runs
    while a change was pending."""
    out: list[dict[str, Any]] = []
    last_sent_present = False
    pending_noted = False
    for r in timeline.itertuples(index=False):
        now = _present_at(versions, r.membership_as_of)
        if r.kind == "failed":
            if now != last_sent_present and not pending_noted:
                out.append({"run_at": r.run_at, "kind": r.kind, "action": "pending"})
                pending_noted = True
            continue
        if not r.sent:
            continue
        if r.kind in FULL_KINDS:  # every member is sent (also by a re-export or a reconnect)
            if now:
                out.append({"run_at": r.run_at, "kind": r.kind, "action": "full"})
            elif last_sent_present and r.kind == "full_refresh":
                out.append({"run_at": r.run_at, "kind": r.kind, "action": "left"})
        elif now != last_sent_present:
            out.append({"run_at": r.run_at, "kind": r.kind, "action": "add" if now else "remove"})
        last_sent_present = now
        pending_noted = False
    return out


# ----------------------------------------------------------------------------- facts
def _profile_at(engine: Engine, d: str, at: datetime) -> tuple | None:
    """``(mparticle_user_id, email, last_seen, has_key, valid_from, is_read)``: the version of
    ``d``'s Mixpanel profile that the simulation reads at ``at`` (docs/rules.md#resolution-time:
    the latest at or before it, else the first known one, which stands in only when it has no
    as-of time of its own: ``is_read`` False when it has one), or None without a history."""
    when = sql_ts(naive_utc(at))
    rows = _q(engine, f"""
        SELECT mparticle_user_id, email, last_seen, mpuid_type IS NOT NULL AS has_key, valid_from,
               {version_read_sql("valid_from", "timed", when)} AS is_read
        FROM ({profile_versions_sql("multi")}) WHERE distinct_id = ?
        ORDER BY {version_order_sql("valid_from", when, "seq")}
        LIMIT 1""", [d])
    return rows[0] if rows else None


def _profile_step(engine: Engine, d: str, at: datetime | None = None, as_of: datetime | None = None) -> Step:
    """``d``'s Mixpanel profile as the simulation reads it at ``at`` (the time its identifier was
    decided, its send): its version at that time when profiles are kept as versions (a profile
    export taken later does not change it), else the loaded profile. ``as_of``: the simulation's
    as-of time, when later than ``at``: a version read then with another ``$mparticle_user_id``
    (or none read at ``at``) is said too, as it reaches mParticle only when the member is sent
    again (docs/rules.md#resolution-time)."""
    step = _profile_version_step(engine, d, at)
    if as_of is None or at is None or naive_utc(as_of) <= naive_utc(at):
        return step
    now = _profile_version_step(engine, d, as_of)
    if (now.data.get("exists"), now.data.get("mparticle_user_id")) == \
            (step.data.get("exists"), step.data.get("mparticle_user_id")):
        return step
    later = ("its profile has " + (
        f"$mparticle_user_id = {_safe(now.data['mparticle_user_id'])!r}" if now.data.get("mparticle_user_id")
        is not None else "no $mparticle_user_id") if now.data.get("exists") else "it still has no profile")
    return Step(step.kind, f"{step.text}; {_fmt(at)} is when its identifier was decided; at the as-of time "
                f"{_fmt(as_of)} {later}, which reaches mParticle only when the member is sent again",
                step.rule, step.time,
                {**step.data, "at_as_of": {k: now.data.get(k) for k in ("exists", "mparticle_user_id")}})


def _profile_version_step(engine: Engine, d: str, at: datetime | None = None) -> Step:
    """``d``'s Mixpanel profile as the simulation reads it at ``at`` (:func:`_profile_step`)."""
    version = _profile_at(engine, d, at) if at is not None else None
    note = ""
    if version is not None and not version[5]:
        return Step("mixpanel_profile", f"{_safe(d)}: no Mixpanel profile at {_fmt(at)}: its first known version is "
                    f"of {_fmt(version[4])}, a profile export with its own as-of time, which is not known before it",
                    RULES["mixpanel_profile"], data={"distinct_id": d, "exists": False, "first_version": version[4]})
    if version is not None:
        mpuid, email, last_seen, has_key, valid_from, _ = version
        # the same words whatever was loaded after the as-of time
        which = "known from the start" if valid_from is None else f"of {_fmt(valid_from)}"
        note = (f" (the version {which}: the latest at or before {_fmt(at)})"
                if valid_from is None or valid_from <= naive_utc(at) else
                f" (the version {which}, loaded without an as-of time: none is at or before {_fmt(at)}, "
                "so the first stands in)")
    else:
        rows = _q(engine, "SELECT mparticle_user_id, email, last_seen, properties FROM mp_profiles WHERE distinct_id = ?",
                  [d])
        if not rows:
            return Step("mixpanel_profile", f"{_safe(d)}: no Mixpanel profile is loaded", RULES["mixpanel_profile"],
                        data={"distinct_id": d, "exists": False})
        mpuid, email, last_seen, props = rows[0]
        has_key = props is not None and '"$mparticle_user_id"' in str(props)
    if mpuid is not None:
        prop = f"$mparticle_user_id = {_safe(mpuid)!r} (the primary identifier)"
    elif has_key:
        prop = "$mparticle_user_id is null (counts as absent)"
    else:
        prop = "no $mparticle_user_id"
    text = f"{_safe(d)}: Mixpanel profile with {prop}; $email {_safe(email) if email else 'absent'}; " \
           f"$last_seen {_fmt(last_seen)}{note}"
    return Step("mixpanel_profile", text, RULES["mixpanel_profile"],
                data={"distinct_id": d, "exists": True, "mparticle_user_id": mpuid, "email": email,
                      "last_seen": last_seen})


def _events_of(engine: Engine, dids: list[str]) -> dict[str, list[tuple]]:
    """{distinct_id: [(time, $mparticle_user_id), ...] latest first} of the events carrying
    ``$mparticle_user_id``: one pass over the events for all of the user's distinct_ids. Events
    of the same time come in the order the simulation takes the latest of them (its
    ``max(struct_pack(t := time, v := value))``: the largest value first), so that "the latest
    says" names the value the resolution used."""
    out: dict[str, list[tuple]] = {d: [] for d in dids}
    if dids:
        for d, t, v in _q(engine, f"""SELECT distinct_id, time, mparticle_user_id FROM mp_events
                                       WHERE distinct_id IN ({', '.join('?' * len(dids))})
                                         AND mparticle_user_id IS NOT NULL
                                       ORDER BY distinct_id, time DESC, mparticle_user_id DESC""", list(dids)):
            out[d].append((t, v))
    return out


def _events_step(d: str, settings: SyncSettings, at: datetime, profile_has_id: bool, rows: list[tuple]) -> Step:
    """The event identity rule for ``d`` from ``rows``: its events' (time, $mparticle_user_id),
    latest first (:func:`_events_of`), as of ``at``: an event after it (a later day's export,
    loaded since) is not yet known then."""
    cutoff = settings.event_identity_cutoff
    at_ = naive_utc(at)
    cut = naive_utc(cutoff) if cutoff else None
    rows = [(t, v) for t, v in rows if t <= at_]
    counted = [(t, v) for t, v in rows if cut is not None and cut <= t <= at_]
    if not rows:
        text = f"{_safe(d)}: no event carries $mparticle_user_id"
    else:
        text = f"{_safe(d)}: {len(rows)} event(s) carry $mparticle_user_id; "
        if cut is None:
            text += "the event identity rule is off (event_identity_cutoff = None)"
        elif counted:
            text += (f"{len(counted)} at or after the cutoff {_fmt(cut)} and not after {_fmt(at_)} count; "
                     f"the latest ({_fmt(counted[0][0])}) says {_safe(counted[0][1])!r}")
        else:
            text += f"none at or after the cutoff {_fmt(cut)} and not after {_fmt(at_)}: the rule does not apply"
    if rows and profile_has_id:
        text += " (not used: the profile's $mparticle_user_id comes first)"
    shown = [{"time": t, "mparticle_user_id": v, "counts": (t, v) in counted} for t, v in rows[:MAX_EVENTS]]
    return Step("events", text, RULES["events"], data={"distinct_id": d, "events": shown, "total": len(rows)})


def _resolution_step(row: pd.Series | None, d: str) -> list[Step]:
    if row is None:
        return [Step("resolution", f"{_safe(d)}: not a member at the as-of time, so not in the resolution table",
                     RULES["resolution"], data={"distinct_id": d})]
    src, ident = row.identifier_source, row.identifier
    if row.status == "matched":
        text = f"{_safe(d)}: identifier {_safe(ident)!r} from {src} is MPID {int(row.mpid)} of an existing profile: matched"
    else:
        text = (f"{_safe(d)}: identifier {_safe(ident)!r} from {src}: {row.status}, gap reason {row.gap_reason}")
    steps = [Step("resolution", text, RULES["resolution"],
                  data={k: (None if pd.isna(v) else v) for k, v in row.items() if k != "email"})]
    rv = row.get("recoverable_via")
    if row.status != "matched" and rv is not None and not pd.isna(rv):
        steps.append(Step("recovery", f"{_safe(d)}: the user IS in mParticle, found through its {rv}",
                          RULES["recovery"], data={"recoverable_via": rv}))
    return steps


def _mparticle_step(engine: Engine, mpid: int, own_ids: set[str], show_personal_data: bool) -> Step:
    from cohortlab.privacy import Redactor, database_key

    p = _q(engine, "SELECT last_stored_at, source FROM mpa_profiles WHERE mpid = ?", [mpid])
    if not p:
        return Step("mparticle_profile", f"MPID {mpid}: no mParticle profile is loaded (deleted, another workspace, or a wrong value)",
                    RULES["mparticle_profile"], data={"mpid": mpid, "exists": False})
    ids = _q(engine, "SELECT kind, identity_type, value FROM mpa_identities WHERE mpid = ? ORDER BY kind DESC, identity_type",
             [mpid])
    personal = {v for _, t, v in ids if t in ("email", "mobile_number", "phone_number_2", "phone_number_3")}
    redactor = Redactor(key=database_key(engine), known=frozenset(personal), show=show_personal_data)
    shown = []
    for kind, t, v in ids:
        value = v if v in own_ids else redactor.value(v)
        shown.append(f"{t}={_safe(value)}")
    text = (f"MPID {mpid}: mParticle profile (source {p[0][1]}, last stored {_fmt(p[0][0])}); identities: "
            + (", ".join(shown) if shown else "none"))
    return Step("mparticle_profile", text, RULES["mparticle_profile"],
                data={"mpid": mpid, "exists": True, "identities": [(k, t) for k, t, _ in ids]})


def _former_members(engine: Engine, ref, result, settings: SyncSettings, dids: list[str]) -> dict[str, pd.Series]:
    """The resolution of members who left before the as-of time (the simulation resolves everyone
    ever a member; see docs/rules.md#resolution-as-of)."""
    if not dids:
        return {}
    resolved = result.table_names.get("resolved")
    if resolved is None:  # pragma: no cover - a simulation without per-send resolutions
        return {}
    df = engine.query_df(
        f"SELECT * FROM {resolved} WHERE distinct_id IN ({', '.join('?' * len(dids))}) "
        "QUALIFY row_number() OVER (PARTITION BY distinct_id ORDER BY resolve_time DESC) = 1", dids)
    return {str(r.distinct_id): r for _, r in df.iterrows()}


# ----------------------------------------------------------------------------- entry point
def explain(
    engine: Engine,
    cohort: str,
    user: Any,
    at: datetime | str | None = None,
    settings: SyncSettings | dict | str | None = None,
    *,
    source: str = "auto",
    snapshot_at: datetime | str | None = None,
    show_personal_data: bool = False,
    simulate_fn=None,
    cached_fn=None,
) -> Explanation:
    """See the module docstring. ``at``: the simulation time (default: the snapshot time when an
    mParticle snapshot carries the attribute, else the cohort's latest time).

    The simulation: ``cached_fn(cohort, at, settings, source)`` (a cached full simulation, or
    None), else ``simulate_fn(cohort, at, settings, source)`` (a full one; ``cohort``: the
    ``CohortRef`` found here, as verify passes it), else the simulation
    of only the members that matter to this user (:func:`_related_members_sql`), which gives the
    same facts as the full one."""
    from cohortlab.simulation.membership import find_cohort, resolve_at
    from cohortlab.simulation.verify import VerifyError, observed_times, verify

    settings = SyncSettings.coerce(settings)
    ref = find_cohort(engine, cohort, source)
    try:  # the snapshot time is detected once here and handed to verify
        sim_at, snapshot_at = observed_times(engine, ref, at, settings, snapshot_at=snapshot_at, source=source)
        observed = True
    except VerifyError:
        sim_at, observed = at, False
    user_s = user_text(engine, user)
    # a pseudonym (from a report or --members-out) finds its value, which stays hidden: the
    # output shows the pseudonym, as the file the user took it from did
    hidden = unpseudonymised(engine, user_s)
    if hidden is not None:
        user_s = hidden
    dids0, mpids0, mpid0 = _direct_lookup(engine, user_s)
    own_table = None
    result = cached_fn(ref, sim_at, settings, source) if cached_fn is not None else None
    used = "related"
    if result is not None:
        used = "stored" if getattr(result, "stored", False) else "cached"
    elif simulate_fn is not None:
        result = simulate_fn(ref, sim_at, settings, source)
        used = "computed"
    if result is None:
        given = list(mpids0) + ([mpid0] if mpid0 is not None else [])
        given += [int(m) for (m,) in _q(engine, "SELECT DISTINCT mpid FROM mpa_identities WHERE value = ? "
                                                "AND kind = 'user'", [user_s])]
        result = _simulate_related(engine, ref, resolve_at(ref, sim_at), settings, list(dids0), given)
        own_table = result
    try:
        x = _explain(engine, ref, user, user_s, settings, result, observed, sim_at, snapshot_at, source,
                     show_personal_data, dids0, mpids0, mpid0, verify, clear=hidden is None)
        x.simulation = used
        return x
    finally:
        if own_table is not None:
            for name in own_table.table_names.values():
                engine.execute(f"DROP TABLE IF EXISTS {name}")
            engine.execute(f"DROP TABLE IF EXISTS {_ONLY}")


def _explain(engine, ref, user, user_s, settings, result, observed, sim_at, snapshot_at, source, show_personal_data,
             dids0, mpids0, mpid0, verify, clear: bool = True) -> Explanation:
    res_t = result.tables["resolution"].table_name
    state_t = result.tables["attribute_state"].table_name
    dids_d, mpids_d = dict(dids0), dict(mpids0)
    _member_lookup(engine, user_s, dids_d, mpids_d, mpid0, res_t)
    dids = list(dids_d)
    cols = ", ".join(RESOLUTION_COLUMNS)
    res = engine.query_df(
        f"SELECT {cols} FROM {res_t} WHERE distinct_id IN ({', '.join('?' * len(dids))}) ORDER BY distinct_id", dids
    ) if dids else pd.DataFrame(columns=RESOLUTION_COLUMNS)
    # members who left before the as-of time: their sends wrote to the profile their latest
    # resolution names, which is explained beside any profile the id itself names (an identity)
    current = set(res.distinct_id)
    former = _former_members(engine, ref, result, settings, [d for d in dids if d not in current])
    for d, row in former.items():
        if not pd.isna(row.mpid):
            mpids_d.setdefault(int(row.mpid), f"the profile former member {d}'s sends wrote to")
    mpids = list(mpids_d)
    how = [f"distinct_id {_safe(d)}: {h}" for d, h in dids_d.items()] + [f"MPID {m}: {h}" for m, h in mpids_d.items()]
    if not dids and not mpids:
        raise ExplainError(f"user {_safe(user)!r} not found: no distinct_id, email, MPID or mParticle identity "
                           f"with this value is loaded")
    v = None
    if observed:
        v = verify(engine, ref, sim_at, settings, snapshot_at=snapshot_at, source=source,
                   show_personal_data=show_personal_data, simulate_fn=lambda *a: result, only_mpids=mpids)
    steps = [Step("lookup", h) for h in how]
    own_ids = {user_s} if clear else set()  # shown as given; every other personal value: a pseudonym (_redacted)

    timeline = engine.query_df(
        f"SELECT run_at, kind, sent, membership_as_of FROM {result.tables['timeline'].table_name} ORDER BY run")
    events = _events_of(engine, dids)
    for d in dids:
        own = res.loc[res.distinct_id == d]
        row = own.iloc[0] if len(own) else None
        # the profile and events the identifier was decided from: at its decision (its send)
        decided = None if row is None or pd.isna(row.get("resolved_at")) else pd.Timestamp(row.resolved_at)
        when = decided.to_pydatetime() if decided is not None else result.at
        prof = _profile_step(engine, d, when, as_of=result.at)
        steps.append(prof)
        steps.append(_events_step(d, settings, when, prof.data.get("mparticle_user_id") is not None,
                                  events[d]))
        versions = presence(engine, ref, d, result.at)
        changes, prev = [], False
        for t, p in versions:
            if p != prev:
                changes.append((t, p))
            prev = p
        if not changes:
            steps.append(Step("membership", f"{_safe(d)}: never a member of {ref.name!r} up to {_fmt(result.at)} "
                                            f"({ref.source})", RULES["membership"], data={"distinct_id": d}))
        for t, p in changes:
            steps.append(Step("membership", f"{_safe(d)} {'enters' if p else 'leaves'} the cohort ({ref.source})",
                              RULES["membership"], time=t, data={"distinct_id": d, "present": p}))
        steps += _resolution_step(row, d)
        if row is None and d in former:
            row = former[d]
            steps += [Step(s.kind, s.text.replace(_safe(d) + ":", f"{_safe(d)} (former member, as the simulation "
                                                   "resolves it):", 1), s.rule, s.time, s.data)
                      for s in _resolution_step(row, d)]
        target = None if row is None or pd.isna(row.mpid) else int(row.mpid)
        orphan = row is not None and row.status == "orphan_created"
        for s in sends(timeline, versions):
            if s["action"] == "pending":
                text = f"{_safe(d)}: the run fails (pause); the change waits for the next successful run"
                rule = R + "pauses-and-refresh"
            else:
                sent = {"full": "sent as a member", "add": "sent as added", "remove": "sent as removed",
                        "left": "not in the refresh"}[s["action"]]
                value = "false" if s["action"] in ("remove", "left") else "true"
                if target is not None:
                    effect = f"writes {value} on MPID {target}"
                elif orphan:
                    effect = f"writes {value} on the orphan profile of its identifier"
                else:
                    effect = "writes nothing (no matched profile)"
                if s["action"] == "left":
                    effect = (f"a profile that is true and not a target becomes false (refresh_clears_stale="
                              f"{settings.refresh_clears_stale})")
                text = f"{_safe(d)}: {s['kind']} run, {sent}; {effect}"
                rule = R + ("one-time-export" if s["kind"] == "one_time" else
                            "pauses-and-refresh" if s["kind"] in ("full_refresh", "reconnect") else
                            "re-export" if s["kind"] == "reexport" else "dynamic-sync")
            steps.append(Step("send", text, rule, time=s["run_at"], data={"distinct_id": d, **s}))

    not_user = f" AND distinct_id NOT IN ({', '.join('?' * len(dids))})" if dids else ""
    for m in mpids:
        steps.append(_mparticle_step(engine, m, own_ids, show_personal_data))
        st = engine.query_df(f"SELECT value, writes, last_write_at, changed_at FROM {state_t} "
                             "WHERE NOT is_orphan AND mpid = ?", [m])
        sharing = int(_q(engine, f"SELECT count(*) FROM {res_t} WHERE mpid = ?{not_user}", [m, *dids])[0][0])
        share = f"; {sharing} other current member(s) resolve to it (shared MPID)" if sharing else ""
        if len(st):
            r = st.iloc[0]
            # the value since the run that last changed it (what verify compares the capture time with)
            since = "" if r.changed_at == r.last_write_at else f" ({str(bool(r.value)).lower()} since {_fmt(r.changed_at)})"
            text = (f"MPID {m}: simulated {result.attribute!r} = {str(bool(r.value)).lower()} after "
                    f"{int(r.writes)} write(s), the last at {_fmt(r.last_write_at)}{since}{share}")
            data = {"mpid": m, "value": bool(r.value), "writes": int(r.writes), "last_write_at": r.last_write_at,
                    "changed_at": r.changed_at, "other_members": sharing}
        else:
            text = f"MPID {m}: no run wrote {result.attribute!r} on this profile{share}"
            data = {"mpid": m, "value": None, "other_members": sharing}
        steps.append(Step("attribute", text, RULES["attribute"], data=data))
        if v is not None:
            r = v.profile(m)
            if r is not None:
                text = f"MPID {m}: observed {r.observed}, simulated {r.simulated}"
                text += ": agree" if r.agree else f": {r.cause} ({_safe(r.detail)})"
                data = {"mpid": m, "observed": r.observed, "simulated": r.simulated,
                        "cause": r.cause if isinstance(r.cause, str) else None}
            else:
                text = f"MPID {m}: observed absent, simulated absent: agree"
                data = {"mpid": m, "observed": "absent", "simulated": "absent", "cause": None}
            text += f" (mParticle snapshot of {_fmt(v.snapshot_at)})"
            steps.append(Step("observed", text, RULES["observed"], data=data))
    return Explanation(cohort=ref.name, user=str(user), at=to_utc(result.at), attribute=result.attribute,
                       distinct_ids=dids, mpids=mpids,
                       steps=_redacted(engine, steps, user_s if clear else None, show_personal_data,
                                       ids=[*dids, *res["identifier"].dropna()]))


def _redacted(engine: Engine, steps: list[Step], user_s: str | None, show_personal_data: bool,
              ids: Iterable[Any] = ()) -> list[Step]:
    """The steps with every email and phone number in their texts (by pattern, or known to the
    database: also the user's own, and a distinct_id that is one) replaced by its pseudonym, but
    the value the user was asked about by (``user_s``; None when it was asked by its pseudonym);
    the ``email`` in their data likewise. ``ids``: the
    identifiers the steps name (distinct_ids, identifiers sent): one that looks personal as a
    whole value (a phone number as a distinct_id) is replaced where it is shown, as
    ``--members-out`` replaces it; inside sentences only the database's phones are looked for."""
    if show_personal_data or not steps:
        return steps
    from dataclasses import replace

    from cohortlab.privacy import Redactor, looks_personal, pseudonym

    from cohortlab.cohort_names import all_cohort_names

    # the cohorts' names known: a personal one is its own pseudonym in a sentence, as verify and
    # the reports show it ('Mixpanel - anon-…'), not its email's or phone's inside it
    redactor = Redactor.for_engine(engine).with_personal_names(all_cohort_names(engine))
    joined = "\n".join(s.text for s in steps)
    for v in sorted({str(v) for v in ids if v is not None and str(v) != user_s and looks_personal(v)},
                    key=len, reverse=True):  # the longest first: one never replaces part of another
        joined = joined.replace(_safe(v), pseudonym(v, redactor.key))
    # one look-up for all texts (each is one line)
    texts = redactor.text(joined)
    if user_s is not None:
        texts = texts.replace(pseudonym(user_s, redactor.key), user_s)
    return [replace(s, text=t, data={k: redactor.value(v) if k == "email" and v else v for k, v in s.data.items()})
            for s, t in zip(steps, texts.split("\n"))]


__all__ = ["ExplainError", "Explanation", "Step", "explain", "find_user", "presence", "sends"]
