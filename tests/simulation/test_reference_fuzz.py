"""Differential check, seeded: small random worlds, written as the export files cohortlab loads
(docs/loading.md) and loaded with ``Lab.load``, simulated under random settings drawn over the
documented options (docs/settings.md), and compared member by member and profile by profile with
a compact reference written from docs/rules.md alone (no cohortlab code): the identifier and its
outcome (identifiers at send time, the event identity rule, the strict fallback under an EIT
timeline, precision loss in integer and float spellings), the sync run by run (first sync, diffs
in `apply_order`, pauses that resume or reconnect, full refreshes after `snapshot_ttl`,
re-exports, one-time exports, orphans), the timeline's should-be-true columns run by run (a member
not sent counted with the identifier of that run: seed 8 of a deep run caught rows that kept the
one of its first run) and the waterfall; and the report's member and matched
counts at earlier times (``outcome_counts_at``, read from the same simulation), against the
reference at each time (seed 6 caught a member that left and came back counted with
its earlier stint's identifier), and the remedies' re-export at the last run, derived from the
simulation, against the reference with that re-export (a re-export landing on a full
refresh).

A fuller fuzzer (more options, recovery, replayed webhooks) would be the same idea at a larger
scale.
"""

from __future__ import annotations

import json
import random
import re
from datetime import datetime, timedelta

import pandas as pd
import pytest

from cohortlab import Lab
from cohortlab.simulation.simulate import outcome_counts_at
from tests.depth import seeds

pytestmark = pytest.mark.all_cores  # tests/conftest.py

T0 = datetime(2026, 3, 1)
BIG = 9080350317581165123
POOL = [101, 102, -103, 555, BIG, BIG + 1, 4611686018427387904]
CUTOFF = datetime(2026, 1, 15)
C = "Power Users"


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------- the reference
def valid_mpid(text):
    return re.fullmatch(r"-?[0-9]+", text) is not None and -(2**63) <= int(text) < 2**63


def float_spelled(text):
    """A float written as text: a decimal point or an exponent (docs/rules.md#float-spelled-precision-loss);
    integer text beyond int64 is no float spelling."""
    return re.fullmatch(r"-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", text) is not None and not re.fullmatch(r"-?[0-9]+", text)


class Reference:
    def __init__(self, w, s):
        self.w, self.s, self.mpids = w, s, set(w["mpa"])

    def decide(self, d, t):
        """docs/rules.md#choosing-the-identifier, #gap-reasons, #resolution-time."""
        vs = sorted(self.w["versions"].get(d, []), key=lambda v: v[0])
        # before the first version with its own as-of time there is no profile (rules.md#resolution-time); a
        # profile loaded without one (counted from its load time, after every time of the world)
        # stands in before it
        prop = self.w.get("untimed", {}).get(d)
        for as_of, p in vs:
            if as_of <= t:
                prop = p
        cutoff = self.s["cutoff"]
        evs = sorted((et, raw) for dd, et, raw in self.w["events"]
                     if dd == d and raw is not None and cutoff is not None and cutoff <= et <= t)
        eit = "customer_id"
        for since, e in sorted(self.s["eit"]):
            if since <= t:
                eit = e
        if prop is not None:
            source, (text, form) = "mparticle_user_id", prop
        elif evs:
            source, (text, form) = "event_property", evs[-1][1]
        elif self.s["fallback"] == "strict" and eit != "mparticle_id":
            return dict(source="none", identifier=None, mpid=None, status="unmatched", gap="fallback_disabled",
                        form=None, target=None, resolved_at=t)
        else:
            source, text, form = "distinct_id", d, "str"
        out = dict(source=source, identifier=text, mpid=None, status="unmatched", gap=None, form=None, target=None,
                   resolved_at=t)
        if valid_mpid(text) and int(text) in self.mpids:
            return dict(out, status="matched", mpid=int(text), target=int(text))
        if float_spelled(text) and any(float(text) == float(m) for m in self.mpids):
            out.update(gap="mpid_precision_loss", form="json_float" if form == "float" else "float_text")
        elif not valid_mpid(text):
            out["gap"] = "distinct_id_not_mpid" if source == "distinct_id" else "malformed_mparticle_user_id"
        elif any(int(text) == int(float(m)) for m in self.mpids):
            out.update(gap="mpid_precision_loss", form="integer_text")
        elif source == "distinct_id" and any(text in ids for ids in self.w["mpa"].values()):
            out["gap"] = "distinct_id_is_identity"
        else:
            out["gap"] = "mpid_not_found"
        if self.s["protection"] == "create_and_update":
            out.update(status="orphan_created", target="orphan:" + text)
        return out

    def refreshed(self, last_ok, t):
        """A full list sent again since the last successful run (replayed webhooks: a `members` message)."""
        return False

    def members(self, t):
        cur = set()
        for as_of, m in self.w["snapshots"]:
            if as_of <= t:
                cur = set(m)
        return cur

    def simulate(self, at):
        """docs/rules.md#sync-over-time, one loop iteration per run."""
        s = self.s
        decide = (lambda d, t: self.decide(d, at)) if s["resolution_time"] == "as_of" else self.decide
        state, held, prev, last_ok, runs, t = {}, {}, None, None, [], s["start"] or self.w["snapshots"][0][0]
        # the run that last wrote each profile, and the one that last changed its value: its value after
        # the run differs from the one before (none at first; docs/rules.md#observed-state); history:
        # each profile's changes in order, (run, value after it), for its value at a capture time
        exported, self.last_write, self.changed, self.history = set(), {}, {}, {}

        def write(pairs):
            for k, v in pairs:
                state[k], self.last_write[k] = v, t

        while t <= at:
            before = dict(state)
            M = self.members(t)
            row = dict(run_at=t, members=len(M), adds=0, removes=0)
            due = [r for r in s["reexport_at"] if r <= t and r not in exported]
            if s["sync_type"] == "one_time" and (last_ok is None or due):
                exported |= set(due)
                row.update(kind="one_time" if last_ok is None else "reexport", adds=len(M), sends={d: "full" for d in M})
                held = {d: dict(decide(d, t), sent_at=t) for d in M}
                write((x["target"], True) for x in held.values() if x["target"] is not None)
                last_ok = t
            elif s["sync_type"] == "one_time":
                row["kind"] = "observation"
            elif any(p["start"] <= t < p["end"] for p in s["pauses"]):
                row["kind"] = "failed"
            else:
                if prev is None:
                    kind = "first"
                elif t - last_ok > s["ttl"] or self.refreshed(last_ok, t):
                    kind = "full_refresh"
                elif any(p["reconnect"] and last_ok < p["start"] <= t for p in s["pauses"]):
                    kind = "reconnect"
                elif any(last_ok < r <= t for r in s["reexport_at"]):
                    kind = "reexport"
                else:
                    kind = "diff"
                if kind != "diff":
                    row["sends"] = {d: "full" for d in M} | ({d: "left" for d in prev - M} if kind == "full_refresh" else {})
                    held = {d: dict(decide(d, t), sent_at=t) for d in M}
                    targets = {x["target"] for x in held.values() if x["target"] is not None}
                    write((k, True) for k in targets)
                    if kind == "full_refresh" and s["clears"]:
                        write([(k, False) for k, v in state.items() if v and k not in targets])
                    row["adds"] = len(M)
                else:
                    removed, added = sorted(prev - M), sorted(M - prev)
                    row["sends"] = {d: "remove" for d in removed} | {d: "add" for d in added}
                    writes = [(held.pop(d)["target"], False) for d in removed]
                    for d in added:
                        held[d] = dict(decide(d, t), sent_at=t)
                    adds = [(held[d]["target"], True) for d in added]
                    writes = adds + writes if s["order"] == "adds_then_removes" else writes + adds
                    write((k, v) for k, v in writes if k is not None)
                    row.update(adds=len(added), removes=len(removed))
                row["kind"] = kind
                prev, last_ok = M, t
            for k, v in state.items():
                if before.get(k) != v:
                    self.changed[k] = t
                    self.history.setdefault(k, []).append((t, v))
            row["true_count"], row["false_count"] = sum(state.values()), sum(not v for v in state.values())
            # S after the run: each member's identifier as mParticle holds it, or, for one it does not
            # hold (entered in a pause, after a one-time export), the one it would be sent with now
            now = {d: held[d] if d in held else decide(d, t) for d in M}
            S = {x["mpid"] for x in now.values() if x["status"] == "matched"}
            T = {k for k, v in state.items() if v and not str(k).startswith("orphan:")}
            row.update(should_be_true=len(S), not_yet_true=len(S - T), stale_true=len(T - S))
            runs.append(row)
            t += s["cadence"]
        res = {d: held[d] if d in held else dict(self.decide(d, at), sent_at=None) for d in self.members(at)}
        S = {x["mpid"] for x in res.values() if x["status"] == "matched"}
        T = {k for k, v in state.items() if v and not str(k).startswith("orphan:")}
        wf = {"members": len(res), "shared_mpid": sum(x["status"] == "matched" for x in res.values()) - len(S),
              "should_be_true": len(S), "not_yet_true": len(S - T), "stale_true": len(T - S),
              "orphans_true": sum(v for k, v in state.items() if str(k).startswith("orphan:"))}
        wf["audience"] = len(T) + wf["orphans_true"]
        for x in res.values():
            if x["status"] != "matched":
                wf["unmatched:" + x["gap"]] = wf.get("unmatched:" + x["gap"], 0) + 1
        return res, state, runs, wf


# ----------------------------------------------------------------------------- random worlds and settings
def world(rng):
    mpa = {m: [v for v in (f"cust-{rng.randint(0, 6)}", "12345") if rng.random() < 0.4]
           for m in rng.sample(POOL, rng.randint(2, len(POOL)))}
    junk = [(repr(float(BIG)), "float"), (repr(float(BIG)), "str"), (str(int(float(BIG))), "int"),
            ("9080350317581165000", "str"), ("101.0", "str"), ("undefined", "str"), ("", "str"), ("id:101", "str")]

    def raw():
        m = rng.choice(POOL + [999])
        return rng.choice([None, None, (str(m), "str"), (str(m), "int"), rng.choice(junk)])

    forms = [lambda: f"cust-{rng.randint(0, 6)}", lambda: f"$device:d{rng.randint(0, 6)}", lambda: "12345",
             lambda: str(rng.choice(POOL + [999])), lambda: str(int(float(BIG))), lambda: repr(float(BIG))]
    people = sorted({rng.choice(forms)() for _ in range(rng.randint(6, 16))})
    versions = {d: [(T0 + timedelta(minutes=m), raw()) for m in sorted(rng.sample(range(-60, 120, 5), rng.choice([1, 1, 2])))]
                for d in people if rng.random() < 0.8}
    events = [(d, T0 + timedelta(minutes=m), raw()) for d in people for m in {rng.randrange(-90, 120, 7) for _ in range(rng.randint(0, 2))}]
    events.append((people[0], datetime(2026, 1, 1), (str(POOL[0]), "str")))  # before the cutoff: never counts
    snapshots, cur = [], set(rng.sample(people, rng.randint(1, len(people))))
    for m in sorted({0, *rng.sample(range(5, 120, 5), rng.randint(0, 4))}):
        cur ^= {d for d in people if m and rng.random() < 0.2}
        snapshots.append((T0 + timedelta(minutes=m), sorted(cur)))
    # profiles loaded without an as-of time (of people without a timed version): drawn last, so
    # that the rest of each seed's world is what it was
    untimed = {d: raw() for d in people if d not in versions and rng.random() < 0.5}
    return dict(mpa=mpa, versions=versions, events=events, snapshots=snapshots, untimed=untimed)


def settings(rng):
    opts, s = {}, {}
    s["fallback"] = opts["fallback"] = rng.choice(["data", "strict"])
    s["cutoff"] = rng.choice([CUTOFF, None, T0 + timedelta(minutes=30)])
    opts["event_identity_cutoff"] = s["cutoff"] and iso(s["cutoff"])
    s["protection"] = opts["protection"] = rng.choice(["only_update", "create_and_update"])
    s["order"] = opts["apply_order"] = rng.choice(["removes_then_adds", "adds_then_removes"])
    cad, ttl = rng.choice([5, 10, 15, 30]), rng.choice([10, 20, 45, 4320])
    opts["cadence"], opts["snapshot_ttl"] = f"{cad}m", f"{ttl}m"
    s["cadence"], s["ttl"] = timedelta(minutes=cad), timedelta(minutes=ttl)
    s["clears"] = opts["refresh_clears_stale"] = rng.random() < 0.5
    s["sync_type"] = opts["sync_type"] = rng.choice(["dynamic", "dynamic", "one_time"])
    s["resolution_time"] = opts["resolution_time"] = rng.choice(["send", "as_of"])
    s["start"] = rng.choice([None, None, T0 - timedelta(minutes=10), T0 + timedelta(minutes=7)])
    if s["start"]:
        opts["start"] = iso(s["start"])
    s["pauses"], opts["pauses"] = [], []
    for _ in range(rng.choice([0, 1, 1, 2])):
        a, b = rng.randrange(-10, 110, 5), rng.randrange(5, 90, 5)
        reconnect = rng.random() < 0.5
        s["pauses"].append(dict(start=T0 + timedelta(minutes=a), end=T0 + timedelta(minutes=a + b), reconnect=reconnect))
        opts["pauses"].append(dict(start=iso(s["pauses"][-1]["start"]), end=iso(s["pauses"][-1]["end"]),
                                   ends_with="reconnect" if reconnect else "resume"))
    s["eit"] = [(T0 + timedelta(minutes=rng.randrange(-20, 120, 5)), rng.choice(["mparticle_id", "email"]))] if rng.random() < 0.5 else []
    opts["eit_timeline"] = [{"since": None, "eit": "customer_id"}] + [{"since": iso(a), "eit": e} for a, e in s["eit"]]
    s["reexport_at"] = sorted({T0 + timedelta(minutes=rng.randrange(-5, 130, 5))}) if rng.random() < 0.3 else []
    opts["reexport_at"] = [iso(r) for r in s["reexport_at"]]
    return opts, s


def token(raw):
    text, form = raw
    return json.dumps(text) if form == "str" else text  # an "int" or "float" is written as a JSON number token


def load_profiles_and_events(lab, w, tmp):
    """The world's Mixpanel profiles (each version with its as_of) and events (docs/loading.md#mixpanel)."""
    by_time = {}
    for d, vs in w["versions"].items():
        for as_of, raw in vs:
            props = "" if raw is None else '"$mparticle_user_id": ' + token(raw)
            by_time.setdefault(as_of, []).append('{"$distinct_id": %s, "$properties": {%s}}\n' % (json.dumps(d), props))
    for i, (as_of, lines) in enumerate(sorted(by_time.items())):
        (tmp / f"profiles{i}.jsonl").write_text("".join(lines))
        lab.load("mixpanel-profiles", [str(tmp / f"profiles{i}.jsonl")], as_of=iso(as_of))
    if w.get("untimed"):  # no as_of: the load time counts
        (tmp / "profiles_untimed.jsonl").write_text("".join(
            '{"$distinct_id": %s, "$properties": {%s}}\n' % (
                json.dumps(d), "" if raw is None else '"$mparticle_user_id": ' + token(raw))
            for d, raw in w["untimed"].items()))
        lab.load("mixpanel-profiles", [str(tmp / "profiles_untimed.jsonl")])
    (tmp / "events.jsonl").write_text("".join(
        '{"event": "E", "properties": {"time": %d, "distinct_id": %s, "$insert_id": "e%d"%s}}\n' % (
            (t - datetime(1970, 1, 1)).total_seconds(), json.dumps(d), i,
            "" if raw is None else ', "$mparticle_user_id": ' + token(raw))
        for i, (d, t, raw) in enumerate(w["events"])))
    lab.load("mixpanel-events", [str(tmp / "events.jsonl")])


def load(lab, w, tmp):
    (tmp / "mpa.jsonl").write_text("".join(json.dumps(
        {"mpid": m, "user_identities": [{"type": "customer_id" if v != "12345" else "other", "value": v} for v in ids]}) + "\n"
        for m, ids in w["mpa"].items()))
    lab.load("mparticle-profiles", [str(tmp / "mpa.jsonl")])
    load_profiles_and_events(lab, w, tmp)
    for i, (as_of, members) in enumerate(w["snapshots"]):
        (tmp / f"members{i}.jsonl").write_text("".join(json.dumps({"$distinct_id": d}) + "\n" for d in members)
                                             or '{"page": 0, "status": "ok", "results": []}')  # no member: an empty page
        lab.load("mixpanel-members", [str(tmp / f"members{i}.jsonl")], cohort=C, as_of=iso(as_of))


def na(v):
    return None if pd.isna(v) else v


@pytest.mark.parametrize("seed", seeds(6, 150, keep=(8, 17)))  # 8: a pending member's timeline rows; 17: the re-export lands on a full refresh
def test_simulation_agrees_with_a_reference_written_from_the_rules(seed, tmp_path):
    rng = random.Random(seed)
    w = world(rng)
    with Lab() as lab:
        load(lab, w, tmp_path)
        for _ in range(3):
            opts, s = settings(rng)
            at = w["snapshots"][-1][0] + timedelta(minutes=rng.choice([0, 12, 40]))
            res, state, runs, wf = Reference(w, s).simulate(at)
            r = lab.simulate(C, at=iso(at), settings=opts)
            where = f"seed {seed}, settings {opts}"
            got = {x["distinct_id"]: x for x in r.resolution.to_dict("records")}
            assert set(got) == set(res), where
            for d, e in res.items():
                g = got[d]
                have = (g["identifier_source"], na(g["identifier"]), na(g["mpid"]), g["status"], na(g["gap_reason"]),
                        na(g["precision_loss_form"]), na(g["resolved_at"]), na(g["sent_at"]))
                want = (e["source"], e["identifier"], e["mpid"], e["status"], e["gap"], e["form"], e["resolved_at"],
                        e["sent_at"])
                assert have == want, f"{where}, member {d!r}"
            have_state = {(f"orphan:{x['orphan_identifier']}" if x["is_orphan"] else int(x["mpid"])): bool(x["value"])
                          for x in r.attribute_state.to_dict("records")}
            assert have_state == state, where
            cols = ["run_at", "members", "adds", "removes", "kind", "true_count", "should_be_true", "not_yet_true",
                    "stale_true"]
            assert [tuple(x) for x in r.timeline[cols].itertuples(index=False)] == [tuple(x[c] for c in cols) for x in runs], where
            have_wf = {k: v for k, v in zip(r.waterfall.step, r.waterfall["count"]) if v or k in wf}
            assert have_wf == {k: v for k, v in wf.items() if v or k in have_wf}, where
            # the report's match rate at earlier times, read from this simulation's tables
            # (outcome_counts_at): the members and matched members of the reference at each time
            t0 = s["start"] or w["snapshots"][0][0]
            times = sorted({t for t, _ in w["snapshots"] if t0 <= t <= at} | {at - timedelta(minutes=m) for m in (3, 8, 13)})
            times = [t for t in times if t0 <= t <= at]
            got = outcome_counts_at(r, [iso(t) for t in times])
            for t, members, matched in zip(times, got["members"], got["matched"]):
                res_t = Reference(w, s).simulate(t)[0]
                assert (members, matched) == (len(res_t), sum(x["status"] == "matched" for x in res_t.values())), f"{where}, at {t}"
            # the remedies' re-export at the last run (derived from this simulation, last_run_reexport):
            # the reference with that re-export added
            if at >= t0:
                last_run = t0 + (at - t0) // s["cadence"] * s["cadence"]
                row = lab.remedies(C, at=iso(at), settings=opts).set_index("key").loc["reexport"]
                want = Reference(w, dict(s, reexport_at=sorted({*s["reexport_at"], last_run}))).simulate(at)[3]["audience"]
                assert row.audience_after == want, f"{where}, re-export at {last_run}"
