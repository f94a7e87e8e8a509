"""Properties on random small datasets (hypothesis):

* the waterfall adds up exactly, and matched + unmatched + orphan_created = members;
* the set-based SQL sync agrees, run by run, with a plain Python replay of the sync rules of
  docs/rules.md (written here as directly as the rules read: one loop iteration per run),
  including identifiers decided at send time from a profile history, re-exports, pauses that
  end with a reconnect and replayed webhook ``members`` messages that refresh the writes.
"""

from datetime import datetime, timedelta

import pandas as pd
import hypothesis
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from cohortlab import Lab
from cohortlab.identifiers import is_valid_mpid
from cohortlab.settings import SyncSettings
from tests.depth import search

from .conftest import Data

C = "Cohort"
T0 = datetime(2026, 3, 1)
POOL = ["u0", "u1", "u2", "u3", "1", "2", "-3", "9080350317581165123"]
MPIDS = [1, 2, -3, 4, 9080350317581165123]  # 1 always exists (see datasets)
PROPS = [None, "1", "1", "1", "2", "5", "undefined", "-3", "9080350317581165568"]

minutes = st.integers(min_value=0, max_value=180)


@st.composite
def datasets(draw):
    mpids = {1} | draw(st.sets(st.sampled_from(MPIDS), min_size=2, max_size=len(MPIDS)))
    profiles = {d: draw(st.sampled_from(PROPS)) for d in POOL if draw(st.integers(0, 4))}  # most have a profile
    source = draw(st.sampled_from(["snapshots", "webhooks"]))
    if source == "snapshots":
        times = sorted(draw(st.sets(minutes, min_size=1, max_size=6)))
        msgs = [("members", t, draw(st.sets(st.sampled_from(POOL), min_size=1))) for t in times]
    else:
        n = draw(st.integers(min_value=1, max_value=7))
        times = sorted(draw(st.lists(minutes, min_size=n, max_size=n)))
        msgs = [("members", times[0], draw(st.sets(st.sampled_from(POOL))))]
        for t in times[1:]:
            action = draw(st.sampled_from(["members", "add_members", "remove_members", "add_members"]))
            msgs.append((action, t, draw(st.sets(st.sampled_from(POOL), max_size=3))))
    pause = draw(st.sampled_from([None, 1])) and draw(st.tuples(minutes, st.integers(min_value=1, max_value=120)))
    opts = {
        "cadence": draw(st.sampled_from(["10m", "15m", "30m"])),
        "apply_order": draw(st.sampled_from(["removes_then_adds", "adds_then_removes"])),
        "protection": draw(st.sampled_from(["only_update", "create_and_update"])),
        "snapshot_ttl": draw(st.sampled_from(["20m", "1h", "3d"])),
        "refresh_clears_stale": draw(st.booleans()),
        "sync_type": draw(st.sampled_from(["dynamic", "dynamic", "one_time"])),
        "fallback": draw(st.sampled_from(["data", "strict"])),
    }
    opts["resolution_time"] = draw(st.sampled_from(["send", "send", "as_of"]))
    if pause:
        opts["pauses"] = [{"start": T0 + timedelta(minutes=pause[0]), "end": T0 + timedelta(minutes=sum(pause)),
                           "ends_with": draw(st.sampled_from(["resume", "reconnect"]))}]
    if draw(st.integers(0, 3)) == 0:
        opts["reexport_at"] = [T0 + timedelta(minutes=draw(minutes))]
    # profile history: some profiles change their $mparticle_user_id at a time (a fix, or a break)
    later = {}
    for d in sorted(profiles):
        if draw(st.integers(0, 3)) == 0:
            later[d] = (draw(minutes), draw(st.sampled_from(PROPS)))
    at = max(times) + draw(st.integers(min_value=0, max_value=60))
    return mpids, (profiles, later), source, msgs, opts, at


def build(lab, mpids, profiles, source, msgs):
    data = Data(lab)
    for m in mpids:
        data.mpa(m)
    profiles, later = profiles
    for d, prop in profiles.items():
        data.profile(d, mparticle_user_id=prop, history=bool(later))
    for d, (m, prop) in later.items():
        data.profile(d, mparticle_user_id=prop, as_of=(T0 + timedelta(minutes=m)).isoformat())
    for action, t, members in msgs:
        when = T0 + timedelta(minutes=t)
        if source == "snapshots":
            data.snapshot(C, when.isoformat(), sorted(members))
        else:
            data.webhook(C, action, when.isoformat(), sorted(members))


def profile_prop(profiles, d, t):
    """$mparticle_user_id of d's profile at t: the latest version at or before t (the first
    version is known from the beginning)."""
    first, later = profiles
    if d not in first:
        return None
    if d in later and T0 + timedelta(minutes=later[d][0]) <= t:
        return later[d][1]
    return first[d]


def resolve_py(profiles, mpids, s: SyncSettings, d, t):
    """The target d's identifier reaches at t: ('mpid', n), ('orphan', identifier) or None."""
    prop = profile_prop(profiles, d, t)
    ident = prop if prop is not None else (d if s.fallback == "data" else None)
    if ident is None:
        return None
    if is_valid_mpid(ident) and int(ident) in mpids:
        return ("mpid", int(ident))
    return ("orphan", ident) if s.protection == "create_and_update" else None


def replay(source, msgs, t):
    """Members at t: latest snapshot, or webhook messages replayed in order."""
    members = set()
    for action, m, ds in msgs:
        if T0 + timedelta(minutes=m) > t:
            break
        if action == "members":
            members = set(ds)
        elif action == "add_members":
            members |= ds
        else:
            members -= ds
    return members


def reference_sync(source, msgs, resolve, s: SyncSettings, t0, at):
    """The sync run by run. resolve(d, t): the target of d's identifier decided at t."""
    value, last_write, writes, changed = {}, {}, {}, {}  # changed: the run that wrote the value after another or none
    rows = []
    conflicts = 0
    last_ok_k, last_ok_t, last_ok_members = None, None, set()
    dec = {}  # d -> target of its latest decision

    def failed_at(t):
        return s.sync_type == "dynamic" and any(p.start <= pd.Timestamp(t, tz="UTC") < p.end for p in s.pauses)

    def grid(k):
        return t0 + k * s.cadence

    def first_sent_at_or_after(when):
        k = 0
        while grid(k) <= at:
            if pd.Timestamp(grid(k), tz="UTC") >= when and (s.sync_type == "one_time" or not failed_at(grid(k))):
                return k
            k += 1
        return None

    reexport = {first_sent_at_or_after(pd.Timestamp(r)) for r in s.reexport_at} - {None}
    reconnect = set() if s.sync_type == "one_time" else (
        {first_sent_at_or_after(pd.Timestamp(p.start)) for p in s.pauses if p.ends_with == "reconnect"} - {None})
    # the times each member entered (the start of each of its stints in the cohort)
    entered, members = {}, set()
    for action, mm, ds in msgs:  # message by message, as the versions of the membership
        if action == "members":
            new = set(ds)
        elif action == "add_members":
            new = members | ds
        else:
            new = members - ds
        for d in new - members:
            entered.setdefault(d, []).append(T0 + timedelta(minutes=mm))
        members = new
    sent_dec = {}  # d -> target of the decision it was last sent with
    seen = set()  # (d, stint start) seen by a run
    k = 0
    while grid(k) <= at:
        t = grid(k)
        when = t if s.resolution_time == "send" else at
        m = replay(source, msgs, t)
        failed = failed_at(t)
        held = set(last_ok_members)  # what mParticle holds before this run: the last successful membership
        sent_now = set()
        sent = (k == 0 or k in reexport) if s.sync_type == "one_time" else not failed
        adds = removes = 0
        kind = "failed" if failed else "observation"
        if sent:
            run_writes = {}
            members_msg = source == "webhooks" and last_ok_t is not None and any(
                a == "members" and last_ok_t < T0 + timedelta(minutes=mm) <= t for a, mm, _ in msgs)
            if last_ok_k is None:
                kind = "one_time" if s.sync_type == "one_time" else "first"
            elif s.sync_type == "dynamic" and ((k - last_ok_k) * s.cadence > s.snapshot_ttl or members_msg):
                kind = "full_refresh"  # after a gap longer than the ttl or a `members` message, whatever else lands
            elif k in reconnect:
                kind = "reconnect"
            elif k in reexport:
                kind = "reexport"
            else:
                kind = "diff"
            if kind != "diff":
                adds = len(m)
                for d in m:
                    dec[d] = sent_dec[d] = resolve(d, when)
                    sent_now.add(d)
                    if dec[d] is not None:
                        run_writes[dec[d]] = True
                if kind == "full_refresh" and s.refresh_clears_stale:
                    for tg, v in value.items():
                        if v and tg not in run_writes:
                            run_writes[tg] = False
            else:
                added, removed = m - last_ok_members, last_ok_members - m
                adds, removes = len(added), len(removed)
                removed_targets = {dec[d] for d in removed if dec.get(d) is not None}
                for d in added:
                    dec[d] = sent_dec[d] = resolve(d, when)
                    sent_now.add(d)
                added_targets = {dec[d] for d in added if dec[d] is not None}
                order = [(removed_targets, False), (added_targets, True)]
                if s.apply_order == "adds_then_removes":
                    order.reverse()
                conflicts += len(removed_targets & added_targets)  # apply_order decides these
                for tgs, v in order:
                    for tg in tgs:
                        run_writes[tg] = v
            for tg, v in run_writes.items():
                if value.get(tg) != v:
                    changed[tg] = t
                value[tg] = v
                last_write[tg] = t
                writes[tg] = writes.get(tg, 0) + 1
            last_ok_k, last_ok_t, last_ok_members = k, t, m
        # the first run that sees a stint of a member mParticle does not hold, and does not send
        # it (a pause), decides it provisionally (for the should-be-true set only)
        for d in m:
            stint = (d, max(e for e in entered[d] if e <= t))
            if stint not in seen:
                seen.add(stint)
                if d not in sent_now and d not in held:
                    dec[d] = resolve(d, when)
        s_set = {dec[d] for d in m if dec.get(d) is not None and dec[d][0] == "mpid"}
        t_linked = {tg for tg, v in value.items() if v and tg[0] == "mpid"}
        t_orph = {tg for tg, v in value.items() if v and tg[0] == "orphan"}
        rows.append((t, kind, len(m), adds, removes, failed, kind == "full_refresh",
                     len(t_linked) + len(t_orph), len(s_set - t_linked), len(t_linked - s_set)))
        k += 1
    state = {tg: (value[tg], last_write[tg], writes[tg], changed[tg]) for tg in value}
    # the resolution at `at`: what mParticle holds (the last send, the member still in the last
    # successful membership); a member it does not hold is resolved at `at` (None here)
    final = {d: sent_dec[d] for d in last_ok_members if d in sent_dec}
    return rows, state, conflicts, final


@hsettings(**search(40, 400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets())
def test_sql_sync_matches_a_run_by_run_replay_and_the_waterfall_adds_up(ds):
    mpids, profiles, source, msgs, opts, at_min = ds
    s = SyncSettings(**opts)
    at = T0 + timedelta(minutes=at_min)
    with Lab() as lab:
        build(lab, mpids, profiles, source, msgs)
        r = lab.simulate(C, at=at, settings=s)

        # resolution: one row per member at `at`; statuses partition the members
        members = replay(source, msgs, at)
        assert sorted(r.resolution.distinct_id) == sorted(members)
        counts = r.resolution.status.value_counts()
        assert counts.get("matched", 0) + counts.get("unmatched", 0) + counts.get("orphan_created", 0) == len(members)

        # the waterfall adds up exactly (compute_waterfall also checks this itself)
        running = None
        for kind, n in zip(r.waterfall.kind, r.waterfall["count"]):
            assert n >= 0
            if kind == "total":
                assert running is None or running == n
                running = n
            else:
                running += n if kind == "plus" else -n
        w = dict(zip(r.waterfall.step, r.waterfall["count"]))
        assert w["members"] == len(members)
        assert w["audience"] == int(r.attribute_state.value.sum())
        assert sum(n for k, n in w.items() if k.startswith("unmatched:")) == counts.get("unmatched", 0) + counts.get(
            "orphan_created", 0
        )

        # the sync, against the plain replay (identifiers resolved in Python at each decision)
        mpid_set = set(mpids)
        rows, state, conflicts, dec = reference_sync(
            source, msgs, lambda d, t: resolve_py(profiles, mpid_set, s, d, t), s, r.t0.replace(tzinfo=None), at)
        got = [
            (x.run_at.to_pydatetime(), x.kind, x.members, x.adds, x.removes, bool(x.failed), bool(x.full_refresh),
             x.true_count, x.not_yet_true, x.stale_true)
            for x in r.timeline.itertuples()
        ]
        hypothesis.target(float(min(conflicts, 3)), label="runs where apply_order decides")
        hypothesis.event(f"full refreshes: {sum(1 for x in rows if x[6])}")
        assert got == rows
        got_state = {
            (("orphan", x.orphan_identifier) if x.is_orphan else ("mpid", int(x.mpid))): (
                bool(x.value), x.last_write_at.to_pydatetime(), x.writes, x.changed_at.to_pydatetime())
            for x in r.attribute_state.itertuples()
        }
        assert got_state == state

        # the resolution at `at`: what was last sent to a member mParticle holds; else resolved at `at`
        expected = {d: dec[d] if d in dec else resolve_py(profiles, mpid_set, s, d, at) for d in members}
        got_targets = {
            x.distinct_id: ("mpid", int(x.mpid)) if x.status == "matched" else (
                ("orphan", x.identifier) if x.status == "orphan_created" else None)
            for x in r.resolution.itertuples()
        }
        assert got_targets == expected
