"""Differential check of what the other references leave out (renamed cohorts, webhooks), seeded: small random worlds written as the
export files cohortlab loads (docs/loading.md), loaded with ``Lab.load``, and compared member by
member and profile by profile with a compact reference written from the docs alone (no cohortlab
code):

- a **renamed cohort** (docs/rules.md#renamed-cohorts): one cohort id whose snapshots or webhook
  pages carry the name of their time (renamed once, or renamed and back), asked for by its id, its
  current name or an earlier one; another cohort that holds one of its earlier names now, with
  members of its own that must never mix in; the attribute is named after the current name, and
  verify reports the earlier names beside it (docs/simulate.md#verify);
- **webhook membership** (docs/rules.md#membership, docs/loading.md#mixpanel-webhooks): `members`,
  `add_members` and `remove_members` messages of one or two pages (one `mixpanel_session_id`, a
  later page received after another message or a run), identical replays, a page delivered
  again later, pages written out of order, adds of members already in and removes of members not
  in; a later `members` message makes the next successful run a full refresh;
- membership snapshots as Engage pages with their `filter_by_cohort` (two of one time: the later
  load wins);
- **Parquet mParticle snapshots** (docs/loading.md#warehouse, written with pyarrow) beside
  Profile API JSONL, each with its capture time;
- **explain** (docs/simulate.md#explain) for a few members per round, before any full
  simulation (the related members only): its steps' data (membership changes, sends, the
  resolution, each MPID's simulated attribute and the observed comparison) against the reference.

The sync itself is the reference of test_reference_fuzz.py (identifiers at send time, runs,
pauses, refreshes); the observed state follows test_reference_recovery_observed.py's reading of
docs/rules.md#observed-state, with every name of the cohort.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cohortlab import Lab
from tests.depth import seeds
from tests.simulation.test_reference_fuzz import Reference, iso, na
from tests.simulation.test_reference_fuzz import load_profiles_and_events
from tests.simulation.test_reference_fuzz import settings as sync_settings
from tests.simulation.test_reference_recovery_observed import check_verify, expected_verify
from tests.simulation.test_reference_fuzz import world as fuzz_world

pytestmark = pytest.mark.all_cores  # tests/conftest.py

CID, OTHER_ID = "7", "8"
T0m = datetime(2026, 3, 1)
OLD = "Mixpanel - {cohort_name}"
RENAMES = [["Power Users"], ["Heavy Users", "Power Users"], ["Power Users", "Heavy Users", "Power Users"],
           ["heavy users", "Heavy Users"]]  # a rename back; a rename that only changes case


# ----------------------------------------------------------------------------- the reference: membership
class WebhookReference(Reference):
    """Membership from replayed webhook messages (docs/rules.md#membership): a message is the pages
    of one session and action, effective at its first page's receive time with every page's
    members; `members` replaces the list, `add_members` / `remove_members` change it. A later
    `members` message makes the next successful run a full refresh."""

    def refreshed(self, last_ok, t):
        return any(m["action"] == "members" and last_ok < m["at"] <= t for m in self.w["messages"])


def messages_to_versions(messages):
    """[(message time, members after it)] in message order."""
    cur, out = set(), []
    for m in sorted(messages, key=lambda m: m["at"]):
        ids = set().union(*m["pages"]) if m["pages"] else set()
        cur = ids if m["action"] == "members" else (cur | ids if m["action"] == "add_members" else cur - ids)
        out.append((m["at"], sorted(cur)))
    return out


def presence_changes(versions, d, at):
    """(time, present) where the member's presence changes, versions up to ``at`` (docs/simulate.md#explain)."""
    by_time = {}
    for t, members in versions:  # two versions of one time: the later one
        if t <= at:
            by_time[t] = d in members
    out, prev = [], False
    for t in sorted(by_time):
        if by_time[t] != prev:
            out.append((t, by_time[t]))
        prev = by_time[t]
    return out


# ----------------------------------------------------------------------------- the reference: names, the observed state
def current_name(items):
    """docs/rules.md#renamed-cohorts: the name of the latest snapshot or webhook page (the later load on a tie)."""
    return max(enumerate(items), key=lambda x: (x[1]["time"], x[0]))[1]["name"]


# ----------------------------------------------------------------------------- random worlds
def membership(rng, w):
    """Turn the fuzz world's member lists into the cohort's data: snapshots (Engage pages carrying
    their cohort) or webhook messages of one or two pages; each item named by the cohort's name at
    its time. Returns (source, items, messages, renames)."""
    names = rng.choice(RENAMES)
    span = [t for t, _ in w["snapshots"]]
    cuts = sorted(rng.sample(range(1, 130), len(names) - 1))  # rename times, minutes after T0

    def name_at(t):
        return names[sum(t >= span[0] + timedelta(minutes=c) for c in cuts)]

    if rng.random() < 0.5:
        items = []
        for t, members in w["snapshots"]:
            items.append(dict(time=t, name=name_at(t), members=members))
            if rng.random() < 0.15:  # a second snapshot of that time, loaded later: it wins
                items.append(dict(time=t, name=name_at(t), members=sorted(rng.sample(w["people"], rng.randint(0, min(3, len(w["people"])))))))
        return "snapshots", items, None, names
    messages, cur = [], set()
    for i, (t, members) in enumerate(w["snapshots"]):
        new = set(members)
        if i == 0 or rng.random() < 0.2:
            msgs = [("members", sorted(new))]
        else:
            noise_add = {d for d in sorted(cur) if rng.random() < 0.15}  # already in: no change
            noise_rm = {d for d in w["people"] if d not in cur and d not in new and rng.random() < 0.1}
            msgs = [("add_members", sorted((new - cur) | noise_add)), ("remove_members", sorted((cur - new) | noise_rm))]
            msgs = [x for x in msgs if x[1]]
            rng.shuffle(msgs)
        for j, (action, ids) in enumerate(msgs):
            at = t + timedelta(minutes=j * rng.choice([1, 3]))
            cut = rng.randint(0, len(ids)) if len(ids) > 1 and rng.random() < 0.5 else len(ids)
            pages = [ids[:cut], ids[cut:]] if cut < len(ids) else [ids]
            messages.append(dict(at=at, action=action, pages=pages, session=f"s{i}-{j}",
                                 times=[at] + [at + timedelta(minutes=rng.choice([1, 4, 12, 40]))
                                               for _ in pages[1:]]))
        cur = new
    messages.sort(key=lambda m: m["at"])
    for m in messages:  # every page of one export carries the name of its time
        m["name"] = name_at(m["at"])
    return "webhooks", [dict(time=m["at"], name=m["name"]) for m in messages], messages, names


def webhook_pages(rng, messages, cohort_id):
    """Page records (docs/loading.md#mixpanel-webhooks), replays and late redeliveries included, in file order."""
    pages = []
    for m in messages:
        for k, (ids, t) in enumerate(zip(m["pages"], m["times"])):
            pages.append({"action": m["action"], "received_at": iso(t), "parameters": {
                "mixpanel_cohort_id": rng.choice([cohort_id, int(cohort_id)]), "mixpanel_cohort_name": m["name"],
                "mixpanel_session_id": m["session"], "page_info": {"total_pages": len(m["pages"]), "page_count": k + 1},
                "members": [{"mixpanel_distinct_id": d, "email": None} for d in ids]}})
    out = []
    for p in pages:
        out.append(p)
        if rng.random() < 0.2:
            out.append(json.loads(json.dumps(p)))  # an identical replay: de-duplicated
    return out


def mparticle_loads(rng, w, names, expected, state, snap):
    """The base load (identities, a day before T0) and one or two snapshot loads (JSONL or Parquet, each
    with its as_of) holding the attribute under the expected name, an earlier name's forms, or none."""
    others = sorted({f.format(cohort_name=n) for n in names for f in ("{cohort_name}", OLD)} - {expected})
    snaps = sorted({snap, *(snap - timedelta(minutes=rng.choice([5, 20, 45])) for _ in range(rng.randint(0, 1)))})
    loads = [dict(as_of=T0m - timedelta(days=1), fmt="jsonl", recs={m: {} for m in w["mpa"]})]
    loads += [dict(as_of=t, fmt=rng.choice(["jsonl", "parquet", "parquet"]), recs={}) for t in snaps]
    for m in w["mpa"]:
        if rng.random() < 0.3:
            continue
        for x in rng.sample(loads[1:], 2 if len(loads) == 3 and rng.random() < 0.3 else 1):
            attrs, sim = {}, state.get(m)
            if rng.random() < 0.6 and sim is not None:
                attrs[expected] = sim if rng.random() < 0.7 else not sim
            elif rng.random() < 0.5:
                attrs[expected] = rng.choice([True, False, "true", "yes"])
            for n in others + ["Other Cohort"]:
                if rng.random() < 0.25:
                    attrs[n] = rng.choice([True, False])
            x["recs"][m] = attrs
    return [loads[0], *rng.sample(loads[1:], len(loads) - 1)]


def write_mparticle(lab, w, loads, tmp):
    for i, x in enumerate(loads):
        if not x["recs"]:
            continue
        ids = {m: [{"type": "customer_id" if v != "12345" else "other", "value": v} for v in w["mpa"][m]] for m in x["recs"]}
        if x["fmt"] == "parquet":  # a BOOLEAN column, or VARCHAR when a value is text
            cols = sorted({k for a in x["recs"].values() for k in a})
            rows = [{"mpid": m, **{t: next((e["value"] for e in ids[m] if e["type"] == t), None) for t in ("customer_id", "other")},
                     **{c: a.get(c) for c in cols}} for m, a in x["recs"].items()]
            frame = pd.DataFrame(rows)
            frame["mpid"] = frame["mpid"].astype("int64")
            frame[["customer_id", "other"]] = frame[["customer_id", "other"]].astype("string")
            for c in cols:
                text = any(isinstance(v, str) for v in frame[c])
                frame[c] = frame[c].map(lambda v: None if v is None else (json.dumps(v) if isinstance(v, bool) else v)
                                        ) if text else frame[c].astype("boolean")
            path = tmp / f"mpa{i}.parquet"
            # pyarrow, not DuckDB's COPY: DuckDB writes a column named like an earlier one but for
            # case (a cohort renamed in case only: `Heavy Users`, `heavy users`) as `heavy users_1`
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
            lab.load("mparticle-parquet", [str(path)], as_of=iso(x["as_of"]))
            continue
        path = tmp / f"mpa{i}.jsonl"
        path.write_text("".join(json.dumps({"mpid": m, "user_identities": ids[m], "user_attributes": a}) + "\n"
                                for m, a in x["recs"].items()))
        lab.load("mparticle-profiles", [str(path)], as_of=iso(x["as_of"]))


def write_membership(lab, w, source, items, messages, other, tmp, rng):
    if source == "snapshots":
        for i, it in enumerate(items + other):
            page = {"page": 0, "page_size": 1000, "session_id": f"e{i}", "status": "ok", "as_of": iso(it["time"]),
                    "filter_by_cohort": {"id": it.get("id", CID), "name": it["name"]},
                    "results": [{"$distinct_id": d, "$properties": {}} for d in it["members"]]}
            (tmp / f"members{i}.json").write_text(json.dumps(page))
            lab.load("mixpanel-members", [str(tmp / f"members{i}.json")])
        return
    pages = webhook_pages(rng, messages, CID) + (webhook_pages(rng, other, OTHER_ID) if other else [])
    late = [json.loads(json.dumps(p)) for p in pages if rng.random() < 0.1]  # delivered again later: the same page
    for p in late:
        p["received_at"] = iso(datetime.fromisoformat(p["received_at"][:-1]) + timedelta(minutes=rng.choice([7, 30])))
    pages += late
    rng.shuffle(pages)  # the files in another order than the receive times
    cut = rng.randint(0, len(pages))
    for i, part in enumerate([pages[:cut], pages[cut:]]):
        if part:
            (tmp / f"webhooks{i}.jsonl").write_text("".join(json.dumps(p) + "\n" for p in part))
            lab.load("mixpanel-webhooks", [str(tmp / f"webhooks{i}.jsonl")])


def val(v):
    if v is None or (not isinstance(v, str) and pd.isna(v)) or v == "absent":
        return None
    return {"true": True, "false": False}.get(str(v).lower(), v)


COUNTS = {"seeds": 0, "rounds": 0, "members": 0, "profiles": 0, "explained": 0, "sends": 0, "source": {}, "asked": {},
          "renamed": 0, "collisions": 0, "disagreements": {}}


def tally(kind, key):
    COUNTS[kind][key] = COUNTS[kind].get(key, 0) + 1


def check_explain(lab, asked, d, at, opts, snapshot_at, ref, versions, res, runs, state, want, attribute, where):
    """docs/simulate.md#explain: the facts of one member against the reference."""
    x = lab.explain(asked, d, at=iso(at), settings=opts, snapshot_at=snapshot_at and iso(snapshot_at))
    assert x.attribute == attribute and x.simulation == "related", where
    steps = [s for s in x.steps if s.data.get("distinct_id", d) == d]
    got = [(s.time.replace(tzinfo=None), s.data["present"]) for s in steps if s.kind == "membership" and "present" in s.data]
    assert got == presence_changes(versions, d, at), f"{where}, explain {d!r} membership"
    got = [(pd.Timestamp(s.data["run_at"]).to_pydatetime(), s.data["kind"], s.data["action"]) for s in steps
           if s.kind == "send" and s.data["action"] != "pending"]
    assert got == [(r["run_at"], r["kind"], r["sends"][d]) for r in runs if d in r.get("sends", {})], f"{where}, explain {d!r} sends"
    COUNTS["sends"] += len(got)
    row = next((s.data for s in steps if s.kind == "resolution" and "status" in s.data), None)
    if d in res:
        e = res[d]
        assert (row["identifier_source"], row["identifier"], na(row["mpid"]), row["status"], row["gap_reason"]) == (
            e["source"], e["identifier"], e["mpid"], e["status"], e["gap"]), f"{where}, explain {d!r} resolution"
        if e["mpid"] is not None:
            assert e["mpid"] in x.mpids, where
    for s in x.steps:
        if s.kind == "attribute":
            m = s.data["mpid"]
            have = (s.data["value"], s.data.get("last_write_at"), s.data.get("changed_at"))
            wanted = (state.get(m), *((ref.last_write.get(m), ref.changed.get(m)) if m in state else (None, None)))
            assert (have[0], *(None if h is None else pd.Timestamp(h).to_pydatetime() for h in have[1:])) == wanted, \
                f"{where}, explain {d!r} attribute of {m}"
        if s.kind == "observed":
            m = s.data["mpid"]
            sim, obs, cause, _ = want.get(m, (None, None, None, False))
            assert (val(s.data["simulated"]), val(s.data["observed"]), s.data["cause"]) == (sim, obs, cause), \
                f"{where}, explain {d!r} observed {m}"
    COUNTS["explained"] += 1


@pytest.mark.parametrize("seed", seeds(8, 120, keep=(5,)))  # 5: a webhook page delivered again
def test_renames_webhooks_parquet_and_explain_agree_with_a_reference_written_from_the_docs(seed, tmp_path):
    rng = random.Random(2000 + seed)
    w = fuzz_world(rng)
    w["people"] = sorted({d for _, ms in w["snapshots"] for d in ms} | set(w["versions"]))
    source, items, messages, names = membership(rng, w)
    span0 = w["snapshots"][0][0]
    current = current_name(items)
    if source == "webhooks":
        w = dict(w, messages=messages, snapshots=messages_to_versions(messages))
    else:
        w = dict(w, snapshots=[(it["time"], it["members"]) for it in items])
    names = sorted({it["name"] for it in items})  # the names the cohort's data carries
    # another cohort that holds an earlier name now (docs/rules.md#renamed-cohorts): never part of this one
    earlier = [n for n in names if n != current]
    other = []
    if earlier and rng.random() < 0.5 and w["people"]:  # (a world of fewer than 3 people: seed 310)
        t = span0 + timedelta(minutes=rng.randrange(2, 120, 7))
        ids = sorted(rng.sample(w["people"], rng.randint(1, min(3, len(w["people"])))))
        other = ([dict(time=t, name=earlier[0], members=ids, id=OTHER_ID)] if source == "snapshots" else
                 [dict(at=t, action="members", pages=[ids], session="other", times=[t], name=earlier[0])])
    with Lab() as lab:
        load_profiles_and_events(lab, w, tmp_path)
        write_membership(lab, w, source, items, messages, other, tmp_path, rng)
        if rng.random() < 0.5:  # the cohort list names the cohorts as they are now
            (tmp_path / "cohorts.json").write_text(json.dumps([{"id": int(CID), "name": current, "count": 0}]))
            lab.load("mixpanel-cohorts", [str(tmp_path / "cohorts.json")])
        held_by_other = {o["name"] for o in other}
        choices = [current, CID] + sorted(set(names) - {current} - held_by_other)
        COUNTS["renamed"] += len(set(names)) > 1
        COUNTS["collisions"] += bool(other)
        tally("source", source)
        snap = w["snapshots"][-1][0] + timedelta(minutes=rng.choice([0, 10, 25]))
        loads = None
        for rnd in range(2):
            opts, s = sync_settings(rng)
            opts["attribute_template"] = rng.choice(["{cohort_name}", OLD])
            expected = opts["attribute_template"].format(cohort_name=current)
            ref = (WebhookReference if source == "webhooks" else Reference)(w, s)
            # round 1: verify --at may be later than the snapshot: compared with the state at --at
            # (docs/simulate.md#verify), the profiles written since captured before their last run
            at = snap if rnd == 0 else snap + timedelta(minutes=rng.choice([0, 20]))
            res, state, runs, wf = ref.simulate(at)
            if loads is None:
                loads = mparticle_loads(rng, w, set(names), expected, state, snap)
                write_mparticle(lab, w, loads, tmp_path)
            asked = rng.choice(choices)
            tally("asked", "id" if asked == CID else "current" if asked == current else "earlier")
            where = f"seed {seed} round {rnd} ({source}, names {names}, asked {asked!r}, other {bool(other)}), settings {opts}"
            all_names = {f.format(cohort_name=n) for n in names for f in (opts["attribute_template"], OLD, "{cohort_name}")}
            linked = {k: x for k, x in state.items() if not str(k).startswith("orphan:")}
            want = expected_verify(w, loads, opts["attribute_template"], linked, dict(ref.history), current, all_names,
                                   snap)
            carrying = any(all_names & set(a) for x in loads for a in x["recs"].values())
            snapshot_at = snap
            # explain first: the simulation of the members that matter to the user only
            if rnd == 0 and carrying and w["people"]:
                for d in rng.sample(w["people"], min(2, len(w["people"]))):
                    check_explain(lab, asked, d, snap, opts, snapshot_at, ref, w["snapshots"], res, runs, linked, want,
                                  expected, where)
            r = lab.simulate(asked, at=iso(at), settings=opts)
            assert (r.attribute, r.source) == (expected, source), where
            got = {x["distinct_id"]: x for x in r.resolution.to_dict("records")}
            assert set(got) == set(res), where
            for d, e in res.items():
                g = got[d]
                assert (g["identifier_source"], na(g["identifier"]), na(g["mpid"]), g["status"], na(g["gap_reason"]),
                        na(g["sent_at"])) == (e["source"], e["identifier"], e["mpid"], e["status"], e["gap"],
                                              e["sent_at"]), f"{where}, member {d!r}"
                COUNTS["members"] += 1
            have_state = {(f"orphan:{x['orphan_identifier']}" if x["is_orphan"] else int(x["mpid"])): bool(x["value"])
                          for x in r.attribute_state.to_dict("records")}
            assert have_state == state, where
            cols = ["run_at", "members", "adds", "removes", "kind", "true_count", "false_count"]
            assert [tuple(x) for x in r.timeline[cols].itertuples(index=False)] == [tuple(x[c] for c in cols) for x in runs], where
            if not carrying:
                continue
            v = lab.verify(asked, snapshot_at=iso(snapshot_at), at=iso(at), settings=opts)
            assert v.attribute == expected, where
            how = dict(zip(v.names.attribute, v.names.how))
            for n in set(names) - {current}:
                assert how[opts["attribute_template"].format(cohort_name=n)].endswith(f"of the earlier name {n!r}"), where
            check_verify(v, want, where)
            for m, (_, _, cause, _) in want.items():
                COUNTS["profiles"] += 1
                if cause:
                    tally("disagreements", cause)
            COUNTS["rounds"] += 1
    COUNTS["seeds"] += 1
