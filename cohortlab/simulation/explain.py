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
rule, data) and ``to_text()``. The user asked about by id may see their own identifiers; other
users' identifiers never appear (shared profiles are counted), and other emails / phone numbers
are replaced by pseudonyms (:mod:`cohortlab.privacy`) unless ``show_personal_data``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from cohortlab.engines.base import Engine
from cohortlab.escaping import one_line
from cohortlab.identifiers import is_valid_mpid
from cohortlab.settings import SyncSettings
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


class ExplainError(ValueError):
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
def find_user(engine: Engine, user: str, members: pd.DataFrame) -> tuple[list[str], list[int], list[str]]:
    """(distinct_ids, MPIDs, how each was found). ``members``: the resolution of current members."""
    user = str(user).strip()
    dids: dict[str, str] = {}
    mpids: dict[int, str] = {}
    known = {r[0] for r in _q(engine, """
        SELECT distinct_id FROM mp_profiles WHERE distinct_id = ?
        UNION SELECT distinct_id FROM mp_cohort_members WHERE distinct_id = ?
        UNION SELECT distinct_id FROM mp_webhook_members WHERE distinct_id = ?
        UNION SELECT distinct_id FROM (SELECT distinct_id FROM mp_events WHERE distinct_id = ? LIMIT 1)""",
        [user] * 4)}
    if user in known:
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
        if len(members):
            for d in members.loc[members.mpid.astype("Int64") == mpid, "distinct_id"]:
                dids.setdefault(str(d), "a cohort member that resolves to this MPID")
    for (m, t) in _q(engine, "SELECT DISTINCT mpid, identity_type FROM mpa_identities WHERE value = ? AND kind = 'user'",
                     [user]):
        mpids.setdefault(int(m), f"the mParticle profile whose {t} is this id")
    for d in list(dids):
        if len(members):
            for m in members.loc[members.distinct_id == d, "mpid"].dropna():
                mpids.setdefault(int(m), f"the profile member {d} resolves to")
    how = [f"distinct_id {_safe(d)}: {h}" for d, h in dids.items()] + [f"MPID {m}: {h}" for m, h in mpids.items()]
    return list(dids), list(mpids), how


# ----------------------------------------------------------------------------- membership of one member
def presence(engine: Engine, ref, distinct_id: str, at: datetime) -> list[tuple[datetime, bool]]:
    """(version time, present after it) for every membership version of the cohort up to ``at``."""
    at_ = naive_utc(at)
    names = [ref.name]
    ids = list(ref.ids)
    cond_s = "(s.cohort_name = ?" + (" OR s.cohort_id IN (" + ", ".join("?" * len(ids)) + "))" if ids else ")")
    if ref.source == "snapshots":
        rows = _q(engine, f"""
            SELECT s.as_of, max(CASE WHEN m.distinct_id IS NOT NULL THEN 1 ELSE 0 END) = 1
            FROM mp_cohort_snapshots s
            LEFT JOIN mp_cohort_members m ON m.snapshot_id = s.snapshot_id AND m.distinct_id = ?
            WHERE {cond_s} AND s.as_of <= ?
            GROUP BY s.as_of ORDER BY s.as_of""", [distinct_id, *names, *ids, at_])
        return [(to_utc(t), bool(p)) for t, p in rows]
    rows = _q(engine, f"""
        WITH pages AS (
            SELECT s.seq, s.received_at, s.action, coalesce(s.session_id, 'seq:' || CAST(s.seq AS VARCHAR)) AS msg_key
            FROM mp_webhook_pages s
            WHERE {cond_s} AND s.received_at <= ? AND s.action IN ('members', 'add_members', 'remove_members')),
        msgs AS (SELECT msg_key, action, min(received_at) AS at_time, min(seq) AS first_seq FROM pages GROUP BY ALL),
        hits AS (SELECT DISTINCT p.msg_key, p.action FROM pages p JOIN mp_webhook_members w ON w.seq = p.seq
                 WHERE w.distinct_id = ?)
        SELECT m.at_time, m.action, h.msg_key IS NOT NULL AS listed
        FROM msgs m LEFT JOIN hits h ON h.msg_key = m.msg_key AND h.action = m.action
        ORDER BY m.at_time, m.first_seq""", [*names, *ids, at_, distinct_id])
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
        if r.kind in ("first", "one_time", "full_refresh"):
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
def _profile_step(engine: Engine, d: str) -> Step:
    rows = _q(engine, "SELECT mparticle_user_id, email, last_seen, properties FROM mp_profiles WHERE distinct_id = ?", [d])
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
           f"$last_seen {_fmt(last_seen)}"
    return Step("mixpanel_profile", text, RULES["mixpanel_profile"],
                data={"distinct_id": d, "exists": True, "mparticle_user_id": mpuid, "email": email,
                      "last_seen": last_seen})


def _events_step(engine: Engine, d: str, settings: SyncSettings, at: datetime, profile_has_id: bool) -> Step:
    rows = _q(engine, """SELECT time, mparticle_user_id FROM mp_events
                         WHERE distinct_id = ? AND mparticle_user_id IS NOT NULL ORDER BY time DESC""", [d])
    cutoff = settings.event_identity_cutoff
    at_ = naive_utc(at)
    cut = naive_utc(cutoff) if cutoff else None
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
        return Step("mparticle_profile", f"MPID {mpid}: no mParticle profile is loaded (deleted, or another workspace)",
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
) -> Explanation:
    """See the module docstring. ``at``: the simulation time (default: the snapshot time when an
    mParticle snapshot carries the attribute, else the cohort's latest time)."""
    from cohortlab.simulation.resolution import find_cohort
    from cohortlab.simulation.verify import VerifyError, verify

    settings = SyncSettings.coerce(settings)
    ref = find_cohort(engine, cohort, source)
    if simulate_fn is None:
        from cohortlab.simulation.sync import simulate

        def simulate_fn(c, a, s, src):
            return simulate(engine, c, a, s, source=src)

    v = None
    try:
        v = verify(engine, ref.name, at, settings, snapshot_at=snapshot_at, source=source,
                   show_personal_data=show_personal_data, simulate_fn=simulate_fn)
        result = v.simulation
    except VerifyError:
        result = simulate_fn(ref.name, at, settings, source)
    res = result.resolution
    dids, mpids, how = find_user(engine, str(user), res)
    if not dids and not mpids:
        raise ExplainError(f"user {_safe(user)!r} not found: no distinct_id, email, MPID or mParticle identity "
                           f"with this value is loaded")
    steps = [Step("lookup", h) for h in how]
    own_ids = {str(user), *dids}
    for d in dids:
        own = res.loc[res.distinct_id == d]
        row = own.iloc[0] if len(own) else None
        if row is not None and row.get("email") is not None and not pd.isna(row.get("email")):
            own_ids.add(str(row["email"]))
    for (e,) in _q(engine, f"SELECT email FROM mp_profiles WHERE distinct_id IN ({', '.join('?' * len(dids))}) "
                           "AND email IS NOT NULL", dids) if dids else []:
        own_ids.add(str(e))

    former = _former_members(engine, ref, result, settings, [d for d in dids if not (res.distinct_id == d).any()])
    timeline = result.timeline
    for d in dids:
        prof = _profile_step(engine, d)
        steps.append(prof)
        steps.append(_events_step(engine, d, settings, result.at, prof.data.get("mparticle_user_id") is not None))
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
        own = res.loc[res.distinct_id == d]
        row = own.iloc[0] if len(own) else None
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
                            "pauses-and-refresh" if s["kind"] == "full_refresh" else "dynamic-sync")
            steps.append(Step("send", text, rule, time=s["run_at"], data={"distinct_id": d, **s}))

    state = result.attribute_state
    for m in mpids:
        steps.append(_mparticle_step(engine, m, own_ids, show_personal_data))
        st = state.loc[(~state.is_orphan.astype(bool)) & (state.mpid.astype("Int64") == m)] if len(state) else state
        sharing = int(((res.mpid.astype("Int64") == m) & ~res.distinct_id.isin(dids)).sum()) if len(res) else 0
        share = f"; {sharing} other current member(s) resolve to it (shared MPID)" if sharing else ""
        if len(st):
            r = st.iloc[0]
            text = (f"MPID {m}: simulated {result.attribute!r} = {str(bool(r.value)).lower()} after "
                    f"{int(r.writes)} write(s), the last at {_fmt(r.last_write_at)}{share}")
            data = {"mpid": m, "value": bool(r.value), "writes": int(r.writes), "last_write_at": r.last_write_at,
                    "other_members": sharing}
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
                       distinct_ids=dids, mpids=mpids, steps=steps)


__all__ = ["ExplainError", "Explanation", "Step", "explain", "find_user", "presence", "sends"]
