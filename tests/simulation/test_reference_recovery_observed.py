"""Differential check of recovery and the observed state, seeded: small random worlds written as the export
files cohortlab loads (docs/loading.md), loaded with ``Lab.load``, simulated and verified, and
compared member by member and profile by profile with a compact reference written from
docs/rules.md alone (no cohortlab code).

- recovery (docs/rules.md#recoverable-via, #recovery-order, #distinct-id-is-identity,
  #float-spelled-precision-loss, #audiences-on-false): the gap reason and
  `precision_loss_form` of identifiers spelled as JSON floats, float text, integer text with
  leading zeros, a plus sign or spaces, MPIDs at the int64 limits and negative ones;
  `recoverable_via` and `recoverable_profiles` through the MPID itself, the user identities of
  the distinct_id and of the Mixpanel profile's email (identities shared by several profiles),
  and device identities of `$device:` ids; the audience on `<attribute> = false` and the
  timeline's `false_count`.
- the observed state (docs/rules.md#observed-state, docs/simulate.md#verify): mParticle snapshots (one or two
  loads, each with its capture time `as_of`, beside a load that carries no cohort attribute)
  holding the attribute under the expected name (`attribute_template`), its older form, the
  plain cohort name, another cohort's name, or not at all, with values the feed writes and
  values it never writes; per profile the observed value, the simulated one after the last run
  at or before the snapshot time, and the first cause of each disagreement.

The sync itself (runs, pauses, refreshes, identifiers at send time) is the reference of
test_reference_fuzz.py, which this file reuses (its run loop also records the run that last
changed each profile's value, for `snapshot_before_last_run`).
"""

from __future__ import annotations

import csv
import json
import random
import re
from datetime import datetime, timedelta

import pandas as pd
import pytest

from cohortlab import Lab
from cohortlab.simulation.verify import VerifyError
from tests.depth import seeds
from tests.simulation.test_reference_fuzz import BIG, C, T0, Reference, float_spelled, iso, na, valid_mpid
from tests.simulation.test_reference_fuzz import settings as sync_settings

pytestmark = pytest.mark.all_cores  # tests/conftest.py

POOL = [101, 102, -103, 7, BIG, BIG + 1, 2**63 - 1, -(2**63), 4611686018427387904, 9080000000000000000]
RANK = ["customer_id", "email", "other", "other_id_2", "other_id_3", "other_id_4"]  # then by name
USER_TYPES = ["customer_id", "email", "other", "other_id_2", "mobile_number"]
# no value under two device types (the worlds of the kept seeds stay theirs; one under two types is
# test_reasons_and_recovery's); a numeric one that a distinct_id spells (a device identity: no distinct_id_is_identity)
DEVICE_TYPES = {"ios_idfv": ["d0", "d1", "d2", "777"], "android_uuid": ["d3", "d4"]}
VALUES = ["cust-0", "cust-1", "cust-7", "12345", "777", "a@x.io", "b@x.io"]
EMAILS = ["a@x.io", "b@x.io", "c@x.io", "A@x.io"]  # compared exactly, case included
OLD = "Mixpanel - {cohort_name}"
# identifiers that are no valid MPID or no existing one: float spellings (docs/rules.md#float-spelled-precision-loss),
# integer text of a rounded MPID, leading zeros, a plus sign, spaces (docs/rules.md#valid-mpid), digits in text
SPELLINGS = [repr(float(BIG)), "9080350317581165000.0", "%.2e" % BIG, str(int(float(BIG))), "9080350317581165000",
             repr(float(2**63 - 1)), repr(float(-(2**63))), str(-(2**63)), str(2**63 - 1), str(2**63), "0101", "+101",
             " 101", "101 ", "id:101", "10.1", "101.0", "1.01e2", "id:-103", "-103", "undefined", ""]


def rank(identity_type):
    return (RANK.index(identity_type), "") if identity_type in RANK else (len(RANK), identity_type)


# ----------------------------------------------------------------------------- the reference: recovery, the observed state
def recovery(w, x, d, email):
    """(recoverable_via, recoverable_profiles, recoverable_mpid) of an unmatched member:
    docs/rules.md#recovery-order. The first step that finds any profile decides; several
    profiles: null, their count, null."""
    def found(via, hits):
        return (via if len(hits) == 1 else None), len(hits), (min(hits) if len(hits) == 1 else None)

    mpids = set(w["mpa"])
    text = x["identifier"]
    if text is not None and not valid_mpid(text):  # the MPID itself, for a malformed or float-spelled identifier
        hits = {m for m in mpids if float(text) == float(m)} if float_spelled(text) else set()
        digits = re.sub(r"[^0-9-]", "", text)  # the digits and minus signs, in order, spelling an MPID
        if not hits and valid_mpid(digits) and (x["source"] != "distinct_id" or float_spelled(text)):
            hits = {int(digits)} & mpids
        if hits:
            return found("mparticle_id", hits)
    for value in [d] + ([email] if email is not None else []):  # user identities: the distinct_id, then the email
        by_type = {}
        for m, ids in w["mpa"].items():
            for t, v in ids:
                if v == value and t not in DEVICE_TYPES:
                    by_type.setdefault(t, set()).add(m)
        if by_type:
            t = min(by_type, key=rank)
            return found(t, by_type[t])
    if d.startswith("$device:"):  # one identity whatever its type: the profiles holding it under any
        held = {(m, t) for m, ids in w["mpa"].items() for t, v in ids if t in DEVICE_TYPES and v == d[len("$device:"):]}
        mpids = {m for m, _ in held}
        if mpids:
            return found(min(t for _, t in held), mpids)
    return None, None, None


def email_at(w, d, t):
    """The email of the member's Mixpanel profile at t (its version then; none before the first,
    each version having its own as-of time)."""
    vs = sorted(w["emails"].get(d, []), key=lambda v: v[0])
    email = None
    for as_of, e in vs:
        if as_of <= t:
            email = e
    return email


def observed(value):
    """docs/rules.md#observed-state: true, false, absent (None) or `other` (a value the feed never writes)."""
    if value is True or value in ("true", "True"):
        return True
    if value is False or value in ("false", "False"):
        return False
    return "other"


def expected_verify(w, loads, template, state, history, cohort=C, names=None, snapshot_at=None):
    """Per MPID: (simulated, observed, cause or None, listed in ``profiles``), docs/rules.md#observed-state
    and docs/simulate.md#verify (each profile of the snapshot captured at its load's as_of, one it does
    not hold at ``snapshot_at``, the snapshot's time (None: verify's time, after every run); the snapshot taken last wins;
    ``history``: each profile's changes, (run, value after it), in order: the last is the run that last
    changed its value, which a run writing it again is not; a profile captured before it is a stale
    snapshot only when it shows the value of its capture time, else the next cause is judged on that value).
    ``names``: every attribute name of the cohort (default: the expected one, its older form and the plain name)."""
    expected = template.format(cohort_name=cohort)
    names = names or {expected, OLD.format(cohort_name=cohort), cohort}
    record = {}  # the record each MPID keeps, and whether its load carries one of the cohort's names
    # the snapshot taken last wins; without as_of: the batches are replaced by any snapshot, a snapshot load is taken now
    for x in sorted(loads, key=lambda x: x["as_of"] or (T0 - timedelta(days=2) if x["fmt"] == "batches" else datetime.max)):
        carries = any(names & {k for k, v in a.items() if v != ""} for a in x["recs"].values())
        for m, attrs in x["recs"].items():
            record[m] = (carries, x["as_of"], {k: (v.strip() if x["fmt"] == "csv" else v) for k, v in attrs.items() if v != ""})
    out = {}
    for m in w["mpa"]:
        sim = state.get(m)
        carries, captured, attrs = record.get(m, (False, None, {}))
        obs = observed(attrs[expected]) if expected in attrs else None
        carries_other = bool((names - {expected}) & set(attrs))
        listed = not (sim is None and obs is None) or carries_other  # absent on both sides: listed with another name
        in_snapshot = carries_other or obs is not None or carries
        if not in_snapshot:  # a load without the cohort's names captured none of its values
            captured = snapshot_at
        if sim is None and obs is None and not in_snapshot:
            continue  # neither written nor in the snapshot: not compared
        if sim == obs and obs != "other":
            out[m] = (sim, obs, None, listed)
            continue
        late = sim is not None and captured is not None and captured < history[m][-1][0]
        # the simulated value at the capture: after the last change at or before it (None: not written yet)
        at_capture = next((v for t, v in reversed(history[m]) if t <= captured), None) if late else sim
        if late and at_capture == obs:
            cause = "snapshot_before_last_run"
        elif obs is None and carries_other:
            cause = "attribute_name_differs"
        elif not in_snapshot:
            cause = "profile_missing_in_snapshot"
        elif at_capture is True and obs in (False, None):
            cause = "pause_not_modelled"
        else:
            cause = "unexplained"
        out[m] = (sim, obs, cause, listed)
    return out


# ----------------------------------------------------------------------------- random worlds
def world(rng):
    mpa = {}
    for m in rng.sample(POOL, rng.randint(3, len(POOL))):
        ids = {(t, rng.choice(VALUES)) for t in rng.sample(USER_TYPES, rng.randint(0, 3))}
        ids |= {(t, rng.choice(v)) for t, v in DEVICE_TYPES.items() if rng.random() < 0.4}
        mpa[m] = sorted(ids)

    def raw():
        m = rng.choice(POOL + [999])
        return rng.choice([None, None, (str(m), "str"), (str(m), "int"), (rng.choice(SPELLINGS), "str"),
                           (rng.choice([repr(float(BIG)), "101.0", "1.01e2", repr(float(-(2**63)))]), "float")])

    forms = [lambda: rng.choice(VALUES), lambda: rng.choice(EMAILS), lambda: f"$device:d{rng.randint(0, 5)}",
             lambda: f"d{rng.randint(0, 4)}", lambda: str(rng.choice(POOL + [999])), lambda: rng.choice(SPELLINGS[:-1])]
    people = sorted({rng.choice(forms)() for _ in range(rng.randint(8, 18))})
    versions, emails = {}, {}
    for d in people:
        if rng.random() < 0.8:
            times = sorted(rng.sample(range(-60, 120, 5), rng.choice([1, 1, 2])))
            versions[d] = [(T0 + timedelta(minutes=m), raw()) for m in times]
            emails[d] = [(T0 + timedelta(minutes=m), rng.choice([None, *EMAILS])) for m in times]
    events = [(d, T0 + timedelta(minutes=m), raw()) for d in people
              for m in {rng.randrange(-90, 120, 7) for _ in range(rng.randint(0, 2))}]
    snapshots, cur = [], set(rng.sample(people, rng.randint(1, len(people))))
    for m in sorted({0, *rng.sample(range(5, 120, 5), rng.randint(0, 4))}):
        cur ^= {d for d in people if m and rng.random() < 0.2}
        snapshots.append((T0 + timedelta(minutes=m), sorted(cur)))
    # a numeric-looking distinct_id is written as a JSON number in some worlds (its token is kept, docs/loading.md#mixpanel)
    numeric = {d for d in people if re.fullmatch(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?", d) and not d.startswith("0")
               and rng.random() < 0.5}
    return dict(mpa=mpa, versions=versions, emails=emails, events=events, snapshots=snapshots, numeric=numeric)


def mparticle_loads(rng, w, template, state, snap):
    """The base load (identities only, captured a day before T0) and one or two snapshot loads of the
    cohort attribute (JSONL or CSV, docs/loading.md#mparticle; or one JSONL without as_of, dated by its
    last_stored_at), as dicts of as_of, fmt and records
    {mpid: user_attributes as written}; in the order they are loaded (a snapshot may arrive late)."""
    expected = template.format(cohort_name=C)
    others = [n for n in (OLD.format(cohort_name=C), C, "Other Cohort", C.lower()) if n != expected]
    snaps = sorted({snap, *(snap - timedelta(minutes=rng.choice([5, 20, 45])) for _ in range(rng.randint(0, 1)))})
    # the base load: a profile snapshot, or Events API batches (no capture time: captured at the snapshot time)
    base = rng.choice(["jsonl", "batches"])
    loads = [dict(as_of=None if base == "batches" else T0 - timedelta(days=1), fmt=base,
                  recs={m: {"plan": "pro"} for m in w["mpa"]})]
    loads += [dict(as_of=t, fmt=rng.choice(["jsonl", "jsonl", "csv"]), recs={}) for t in snaps]
    if rng.random() < 0.25:  # one Profile API snapshot without as_of: its time is the latest last_stored_at
        loads[1:] = [dict(as_of=None, fmt="jsonl", recs={}, stored={})]
    for m in w["mpa"]:
        if rng.random() < 0.35:
            continue  # only in the base load
        for load in rng.sample(loads[1:], 2 if len(loads) == 3 and rng.random() < 0.3 else 1):
            attrs = {}
            sim = state.get(m)
            if rng.random() < 0.6:
                if sim is not None:
                    attrs[expected] = rng.choice([sim, str(sim).lower(), str(sim)])
            elif rng.random() < 0.7:
                attrs[expected] = rng.choice([True, False, "true", "True", "False", "yes", 1, None, " true"])
            for name in others:
                if rng.random() < 0.2:
                    attrs[name] = rng.choice([True, False, "true"])
            if load["fmt"] == "csv":  # a cell: an empty one holds no value; the spaces around it are the layout
                attrs = {k: rng.choice(["", " "]) + (json.dumps(v) if isinstance(v, bool) else str(v)) + rng.choice(["", " "])
                         for k, v in attrs.items() if v is not None and v != " true"}
            load["recs"][m] = attrs
            if "stored" in load:
                load["stored"][m] = snap - timedelta(minutes=rng.choice([0, 0, 5, 30]))
    return [loads[0], *rng.sample(loads[1:], len(loads) - 1)]


def ms(t):
    return int((t - datetime(1970, 1, 1)).total_seconds() * 1000)


def jid(d, w):
    return d if d in w["numeric"] else json.dumps(d)


def token(raw):
    text, form = raw
    return json.dumps(text) if form == "str" else text


SPELL = {"customer_id": ["customer_id", "customerid", "Customer ID"], "other_id_2": ["other_id_2", "other2"],
         "email": ["email", "Email"]}


def load(lab, w, loads, tmp, rng):
    for i, x in enumerate(loads):
        if not x["recs"]:
            continue  # an empty file is refused (docs/loading.md#mparticle-profiles); no snapshot then
        path = tmp / f"mpa{i}.{x['fmt']}"
        if x["fmt"] == "csv":
            ids = sorted({t for m in x["recs"] for t, _ in w["mpa"][m]})
            names = sorted({k for a in x["recs"].values() for k in a})
            with open(path, "w", newline="") as f:
                out = csv.writer(f)
                out.writerow(["mpid", *ids, *names])
                for m, attrs in x["recs"].items():
                    have = dict(w["mpa"][m])
                    out.writerow([m, *(have.get(t, "") for t in ids), *(attrs.get(k, "") for k in names)])
            lab.load("mparticle-csv", [str(path)], as_of=iso(x["as_of"]))
            continue
        if x["fmt"] == "batches":
            path.write_text("".join(json.dumps(
                {"mpid": m, "timestamp_unixtime_ms": ms(T0 - timedelta(days=1)),
                 "user_identities": {t: v for t, v in w["mpa"][m] if t not in DEVICE_TYPES},
                 "device_info": {t: v for t, v in w["mpa"][m] if t in DEVICE_TYPES},
                 "user_attributes": attrs, "events": []}) + "\n" for m, attrs in x["recs"].items()))
            lab.load("mparticle-batches", [str(path)])
            continue
        lines = []
        for m, attrs in x["recs"].items():
            user = [(rng.choice(SPELL.get(t, [t])), v) for t, v in w["mpa"][m] if t not in DEVICE_TYPES]
            lines.append(json.dumps({
                "mpid": rng.choice([m, str(m)]),
                "user_identities": dict(user) if rng.random() < 0.3 else [{"type": t, "value": v} for t, v in user],
                "device_identities": [{"type": t, "value": v} for t, v in w["mpa"][m] if t in DEVICE_TYPES],
                "user_attributes": attrs,
                **({"last_stored_timestamp_ms": ms(x["stored"][m])} if "stored" in x else {})}) + "\n")
        path.write_text("".join(lines))
        lab.load("mparticle-profiles", [str(path)], **({"as_of": iso(x["as_of"])} if x["as_of"] else {}))
    by_time = {}
    for d, vs in w["versions"].items():
        for (as_of, raw), (_, email) in zip(vs, w["emails"][d]):
            props = ([] if raw is None else ['"$mparticle_user_id": ' + token(raw)]) + \
                    ([] if email is None else ['"$email": ' + json.dumps(email)])
            by_time.setdefault(as_of, []).append('{"$distinct_id": %s, "$properties": {%s}}\n' % (jid(d, w), ", ".join(props)))
    for i, (as_of, lines) in enumerate(sorted(by_time.items())):
        (tmp / f"profiles{i}.jsonl").write_text("".join(lines))
        lab.load("mixpanel-profiles", [str(tmp / f"profiles{i}.jsonl")], as_of=iso(as_of))
    if w["events"]:
        (tmp / "events.jsonl").write_text("".join(
            '{"event": "E", "properties": {"time": %d, "distinct_id": %s, "$insert_id": "e%d"%s}}\n' % (
                (t - datetime(1970, 1, 1)).total_seconds(), jid(d, w), i,
                "" if raw is None else ', "$mparticle_user_id": ' + token(raw))
            for i, (d, t, raw) in enumerate(w["events"])))
        lab.load("mixpanel-events", [str(tmp / "events.jsonl")])
    for i, (as_of, members) in enumerate(w["snapshots"]):
        (tmp / f"members{i}.jsonl").write_text("".join('{"$distinct_id": %s}\n' % jid(d, w) for d in members)
                                             or '{"page": 0, "status": "ok", "results": []}')  # no member: an empty page
        lab.load("mixpanel-members", [str(tmp / f"members{i}.jsonl")], cohort=C, as_of=iso(as_of))


def val(v):
    """A verify cell (simulated / observed) as the reference writes it."""
    if v is None or (not isinstance(v, str) and pd.isna(v)) or v == "absent":
        return None
    return {"true": True, "false": False}.get(str(v).lower(), v)


COUNTS = {"seeds": 0, "rounds": 0, "members": 0, "unmatched": 0, "recovered": 0, "ambiguous": 0, "profiles": 0,
          "gaps": {}, "forms": {}, "via": {}, "disagreements": {}}  # what the seeds compared


def tally(kind, key):
    COUNTS[kind][key] = COUNTS[kind].get(key, 0) + 1


def ref_world(w):
    """The world as test_reference_fuzz's Reference reads it: each MPID with its user identities' values."""
    return w | {"mpa": {m: [v for t, v in ids if t not in DEVICE_TYPES] for m, ids in w["mpa"].items()}}


def check_verify(v, want, where):
    """A verify result against the reference's profiles (:func:`expected_verify`): each compared profile,
    whether it is listed, the causes, the confusion table and the audiences on true and false."""
    rows = {int(x["mpid"]): x for x in v.profiles.to_dict("records")}
    assert set(rows) <= set(want), where
    causes = {}
    for m, (sim, obs, cause, listed) in want.items():  # the profiles compared
        assert (m in rows) == listed, f"{where}, profile {m} listed"
        if listed:
            x = rows[m]
            assert (val(x["simulated"]), val(x["observed"]), na(x["cause"])) == (sim, obs, cause), f"{where}, profile {m}"
        if cause:
            causes[cause] = causes.get(cause, 0) + 1
            tally("disagreements", cause)
        COUNTS["profiles"] += 1
    assert {k: n for k, n in zip(v.causes["cause"], v.causes["profiles"]) if n} == causes, where
    label = {True: "true", False: "false", None: "absent", "other": "other"}
    confusion = {}
    for sim, obs, _, _ in want.values():
        confusion[label[sim], label[obs]] = confusion.get((label[sim], label[obs]), 0) + 1
    have = {(a, b): int(n) for a, row in v.confusion.iterrows() for b, n in row.items() if n}
    assert have == confusion, where
    aud = v.audience.set_index("audience")
    assert (aud.loc["= true", "observed"], aud.loc["= false", "observed"]) == (
        sum(x[1] is True for x in want.values()), sum(x[1] is False for x in want.values())), where
    assert (aud.loc["= true", "simulated"], aud.loc["= false", "simulated"]) == (
        sum(x[0] is True for x in want.values()), sum(x[0] is False for x in want.values())), where


def check_round(lab, w, loads, opts, s, snap, snapshot_at, where):
    """One simulation and one verify against the reference (docs/rules.md#recoverable-via, #observed-state)."""
    ref = Reference(ref_world(w), s)
    res, state, runs, wf = ref.simulate(snap)
    r = lab.simulate(C, at=iso(snap), settings=opts)
    # outcome, precision-loss form and recovery of every member
    got = {x["distinct_id"]: x for x in r.resolution.to_dict("records")}
    assert set(got) == set(res), where
    for d, e in res.items():
        g = got[d]
        via, n, to = (None, None, None) if e["status"] == "matched" else recovery(w, e, d, email_at(w, d, snap))
        have = (g["identifier_source"], na(g["identifier"]), na(g["mpid"]), g["status"], na(g["gap_reason"]),
                na(g["precision_loss_form"]), na(g["recoverable_via"]), na(g["recoverable_profiles"]),
                na(g["recoverable_mpid"]))
        want = (e["source"], e["identifier"], e["mpid"], e["status"], e["gap"], e["form"], via, n, to)
        assert have == want, f"{where}, member {d!r}"
        COUNTS["members"] += 1
        COUNTS["unmatched"] += e["status"] != "matched"
        COUNTS["recovered"] += via is not None
        COUNTS["ambiguous"] += via is None and n is not None
        tally("gaps", e["gap"]), tally("forms", e["form"]), tally("via", via)
    # the audience on <attribute> = false, now and run by run
    assert r.audience_false == sum(not v for v in state.values()), where
    assert list(r.timeline["false_count"]) == [x["false_count"] for x in runs], where
    # the observed state against the simulated one, and the cause of each disagreement
    names = {C, OLD.format(cohort_name=C)}
    if not any(names & {k for k, v in a.items() if v != ""} for x in loads for a in x["recs"].values()):
        with pytest.raises(VerifyError, match="no observed state"):
            lab.verify(C, snapshot_at=snapshot_at and iso(snapshot_at), settings=opts)
        return
    v = lab.verify(C, snapshot_at=snapshot_at and iso(snapshot_at), settings=opts)
    linked = {k: x for k, x in state.items() if not str(k).startswith("orphan:")}
    want = expected_verify(w, loads, opts["attribute_template"], linked, dict(ref.history))
    check_verify(v, want, where)
    COUNTS["rounds"] += 1


@pytest.mark.parametrize("seed", seeds(10, 200, keep=(12, 29)))  # 12, 29: a later load of one as-of
def test_recovery_and_observed_state_agree_with_a_reference_written_from_the_rules(seed, tmp_path):
    rng = random.Random(1000 + seed)
    w = world(rng)
    opts, s = sync_settings(rng)
    opts["attribute_template"] = rng.choice(["{cohort_name}", OLD])
    snap = w["snapshots"][-1][0] + timedelta(minutes=rng.choice([0, 10, 25]))
    # the mParticle snapshot: mostly what this first simulation writes; the other rounds read it under other settings
    loads = mparticle_loads(rng, w, opts["attribute_template"], Reference(ref_world(w), s).simulate(snap)[1], snap)
    with Lab() as lab:
        load(lab, w, loads, tmp_path, rng)
        for rnd in range(3):
            if rnd:
                opts, s = sync_settings(rng)
                opts["attribute_template"] = rng.choice(["{cohort_name}", OLD])
            # round 1 without snapshot_at: the latest capture time of a load carrying the expected name, when
            # every snapshot load carries it; round 2: a snapshot time after the captures
            expected = opts["attribute_template"].format(cohort_name=C)
            carrying = [x["as_of"] for x in loads if any(a.get(expected, "") != "" for a in x["recs"].values())]
            snapshot_at = snap + timedelta(minutes=20) if rnd == 2 else snap
            stored = loads[1].get("stored")
            if rnd == 1 and (len(carrying) == len(loads) - 1 or stored and snap in stored.values()):
                snapshot_at = None
            # (a load without as_of was captured at its latest last_stored_at, which may be before snap)
            at = snapshot_at or (max(stored.values()) if stored else max(carrying))
            check_round(lab, w, loads, opts, s, at, snapshot_at, f"seed {seed} round {rnd}, settings {opts}")
    COUNTS["seeds"] += 1
