"""Properties on random small datasets (hypothesis):

* the waterfall adds up exactly, and matched + unmatched + orphan_created = members;
* the set-based SQL sync agrees, run by run, with a plain Python replay of SPEC §5 (written
  here as directly as the spec reads: one loop iteration per run).
"""

from datetime import datetime, timedelta

import pandas as pd
import hypothesis
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from cohortlab import Lab
from cohortlab.settings import SyncSettings

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
    if pause:
        opts["pauses"] = [{"start": T0 + timedelta(minutes=pause[0]), "end": T0 + timedelta(minutes=sum(pause))}]
    at = max(times) + draw(st.integers(min_value=0, max_value=60))
    return mpids, profiles, source, msgs, opts, at


def build(lab, mpids, profiles, source, msgs):
    data = Data(lab)
    for m in mpids:
        data.mpa(m)
    for d, prop in profiles.items():
        data.profile(d, mparticle_user_id=prop)
    for action, t, members in msgs:
        when = T0 + timedelta(minutes=t)
        if source == "snapshots":
            data.snapshot(C, when.isoformat(), sorted(members))
        else:
            data.webhook(C, action, when.isoformat(), sorted(members))


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


def reference_sync(source, msgs, target, s: SyncSettings, t0, at):
    """SPEC §5 run by run. target: {distinct_id: ('mpid'|'orphan', key)} for resolved members."""
    value, last_write, writes = {}, {}, {}
    rows = []
    conflicts = 0
    last_ok_k, last_ok_members = None, set()
    k = 0
    while t0 + k * s.cadence <= at:
        t = t0 + k * s.cadence
        m = replay(source, msgs, t)
        failed = s.sync_type == "dynamic" and any(p.start <= pd.Timestamp(t, tz="UTC") < p.end for p in s.pauses)
        sent = (k == 0) if s.sync_type == "one_time" else not failed
        adds = removes = 0
        kind = "failed" if failed else "observation"
        if sent:
            run_writes = {}
            full = last_ok_k is None or (k - last_ok_k) * s.cadence > s.snapshot_ttl
            kind = ("one_time" if s.sync_type == "one_time" else "first") if last_ok_k is None else (
                "full_refresh" if full else "diff")
            if full:
                adds = len(m)
                for d in m:
                    if d in target:
                        run_writes[target[d]] = True
                if kind == "full_refresh" and s.refresh_clears_stale:
                    for tg, v in value.items():
                        if v and tg not in run_writes:
                            run_writes[tg] = False
            else:
                added, removed = m - last_ok_members, last_ok_members - m
                adds, removes = len(added), len(removed)
                order = [(removed, False), (added, True)]
                if s.apply_order == "adds_then_removes":
                    order.reverse()
                written = [{target[d] for d in ds if d in target} for ds, _ in order]
                conflicts += len(written[0] & written[1])  # apply_order decides these
                for ds, v in order:
                    for d in ds:
                        if d in target:
                            run_writes[target[d]] = v
            for tg, v in run_writes.items():
                value[tg] = v
                last_write[tg] = t
                writes[tg] = writes.get(tg, 0) + 1
            last_ok_k, last_ok_members = k, m
        s_set = {target[d] for d in m if d in target and target[d][0] == "mpid"}
        t_linked = {tg for tg, v in value.items() if v and tg[0] == "mpid"}
        t_orph = {tg for tg, v in value.items() if v and tg[0] == "orphan"}
        rows.append((t, kind, len(m), adds, removes, failed, kind == "full_refresh",
                     len(t_linked) + len(t_orph), len(s_set - t_linked), len(t_linked - s_set)))
        k += 1
    state = {tg: (value[tg], last_write[tg], writes[tg]) for tg in value}
    return rows, state, conflicts


@hsettings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
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

        # the sync, against the plain replay (targets from the resolution of everyone ever a member)
        pop = lab.sql("SELECT distinct_id, status, mpid, identifier FROM sim_population")
        target = {}
        for p in pop.itertuples():
            if p.status == "matched":
                target[p.distinct_id] = ("mpid", int(p.mpid))
            elif p.status == "orphan_created":
                target[p.distinct_id] = ("orphan", p.identifier)
        rows, state, conflicts = reference_sync(source, msgs, target, s, r.t0.replace(tzinfo=None), at)
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
                bool(x.value), x.last_write_at.to_pydatetime(), x.writes)
            for x in r.attribute_state.itertuples()
        }
        assert got_state == state
