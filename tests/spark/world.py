"""A small edge-case world and the public API calls run on it, shared by the portability test
(no JVM) and the Spark equivalence tests.

The world is inserted straight into the canonical tables (through the engine, in DuckDB SQL),
so it does not depend on the loaders. It holds, on purpose:

* MPIDs above 2^53 (9080350317581165123), negative MPIDs, and a pair that collide through a
  float (9007199254740993 exists, a member carries 9007199254740992: precision loss);
* junk ``$mparticle_user_id`` (``undefined``, ``""``, ``1.2e18``, ``" 101"``), a NULL one,
  an unknown MPID, ``$device:`` and customer-id distinct_ids, an email recoverable member;
* two members sharing one MPID, a member matched only through an event after the cutoff,
  events before/after the cutoff and at the same instant;
* a snapshot cohort with members entering and leaving across 4 snapshots (one duplicate
  ``as_of``), its attribute observed on five mParticle profiles (one stale), and a webhook cohort with ``members``/``add_members``/``remove_members``, a
  multi-page message and a replayed page.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import pandas as pd

from cohortlab.engines.base import Engine

BIG = 9080350317581165123
PREC_EXISTS = 9007199254740993  # not representable as a double
PREC_ROUNDED = 9007199254740992  # what it becomes after a float

SNAP_COHORT = "Power Users"
HOOK_COHORT = "Web Cohort"


def _ins(engine: Engine, table: str, rows: list[dict[str, Any]]) -> None:
    for r in rows:
        cols = ", ".join(r)
        marks = ", ".join("?" for _ in r)
        engine.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", list(r.values()))


def _t(s: str | None):
    return None if s is None else pd.Timestamp(s).to_pydatetime()


def build_world(engine: Engine) -> None:
    """Insert the edge-case world into an engine whose canonical tables exist (``Lab``)."""
    mpids = [101, 102, 103, BIG, -5, PREC_EXISTS, 300, -9223372036854775808, 9223372036854775807]
    _ins(engine, "mpa_profiles", [{"mpid": m, "source": "test", "created_at": _t("2025-12-01")} for m in mpids])
    _ins(
        engine,
        "mpa_identities",
        [
            {"mpid": 102, "kind": "user", "identity_type": "customer_id", "value": "C2"},
            {"mpid": 102, "kind": "user", "identity_type": "email", "value": "b@x.com"},
            {"mpid": 300, "kind": "user", "identity_type": "email", "value": "e@x.com"},
            {"mpid": 300, "kind": "user", "identity_type": "other", "value": "C9"},
            {"mpid": 103, "kind": "device", "identity_type": "ios_idfv", "value": "dev-1"},
            {"mpid": BIG, "kind": "user", "identity_type": "customer_id", "value": "C7"},
        ],
    )
    # the observed mParticle state (verify): the cohort attribute on some profiles, one of them stale
    _ins(engine, "mpa_attributes", [
        {"mpid": m, "name": SNAP_COHORT, "value": json.dumps(v), "value_bool": v}
        for m, v in [(101, True), (102, True), (BIG, True), (103, False), (300, True)]]
        # and under the older template, each kind of value (verify's other_value: a list index
        # read one place off on Spark)
        + [{"mpid": m, "name": f"Mixpanel - {SNAP_COHORT}", "value": json.dumps(v),
            "value_bool": v if isinstance(v, bool) else None}
           for m, v in [(103, True), (102, "maybe"), (300, False)]])
    profiles = [
        ("u1", "101", "a@x.com", "2026-02-20"),
        ("u1b", "101", None, "2026-01-01"),  # shares MPID 101 with u1
        ("C2", None, "b@x.com", "2026-02-01"),  # customer id as distinct_id: recoverable
        (str(BIG), None, None, "2026-02-25"),  # MPID above 2^53 as distinct_id: fallback
        ("-5", None, None, None),
        ("u_junk", "undefined", None, "2026-02-10"),
        ("u_empty", "", None, None),
        ("u_exp", "1.2e18", None, None),
        ("u_space", " 101", None, None),
        ("u_prec", str(PREC_ROUNDED), None, "2026-02-02"),
        ("u_gone", "555", "e@x.com", "2025-12-24"),  # unknown MPID, recoverable by email
        ("$device:abc", None, None, "2026-01-20"),
        ("u_event", None, None, None),  # matched through an event after the cutoff
        ("u_old_event", None, None, None),  # event before the cutoff only
        ("C7", None, None, None),
        ("u_max", "9223372036854775807", None, None),
        ("u_over", "9223372036854775808", None, None),  # int64 overflow: malformed
    ]
    _ins(
        engine,
        "mp_profiles",
        [
            {"distinct_id": d, "mparticle_user_id": m, "email": e, "last_seen": _t(ls)}
            for d, m, e, ls in profiles
        ],
    )
    events = [
        ("u_event", "2026-01-10", "999"),  # before the cutoff: ignored
        ("u_event", "2026-01-20", "102"),
        ("u_event", "2026-01-20", "103"),  # same instant: greatest wins
        ("u_event", "2026-02-28T12:00:00.123", None),
        ("u_old_event", "2026-01-05", "103"),
        ("C7", "2026-02-01", f"{BIG}"),
        ("u1", "2026-02-15T08:30:00.5", None),
        ("u_gone", "2026-03-10", "101"),  # after every as-of used
        ("$device:abc", "2026-02-03", "1.0e3"),
    ]
    _ins(
        engine,
        "mp_events",
        [
            {"event": "Page View", "time": _t(t), "distinct_id": d, "insert_id": f"i{i}", "mparticle_user_id": m,
             "device_id": "dev-1" if d == "$device:abc" else None,
             "user_id": d if d.startswith("C") else None}
            for i, (d, t, m) in enumerate(events)
        ],
    )
    snapshots = [
        (1, "2026-02-26", ["u1", "C2", "u_junk", "u_prec", "-5", "u_event"]),
        (2, "2026-02-27", ["u1", "u1b", "C2", str(BIG), "u_junk", "u_empty", "u_exp", "u_gone", "u_event"]),
        (3, "2026-02-27", ["u1", "u1b", "C2", str(BIG), "u_junk", "u_empty", "u_exp", "u_gone", "u_event", "C7"]),
        (4, "2026-03-01", ["u1", "u1b", str(BIG), "u_space", "u_prec", "u_gone", "$device:abc", "u_event",
                           "u_old_event", "C7", "u_max", "u_over", "nobody"]),
    ]
    _ins(engine, "mp_cohorts", [{"cohort_id": "42", "name": SNAP_COHORT, "count": 13}])
    for sid, as_of, members in snapshots:
        _ins(engine, "mp_cohort_snapshots", [
            {"snapshot_id": sid, "cohort_id": "42", "cohort_name": SNAP_COHORT, "as_of": _t(as_of),
             "member_count": len(members)}])
        _ins(engine, "mp_cohort_members", [
            {"snapshot_id": sid, "cohort_name": SNAP_COHORT, "as_of": _t(as_of), "distinct_id": d} for d in members])
    pages = [
        # seq, received_at, action, session, page, total, members
        (1, "2026-02-26T00:00", "members", "s1", 1, 2, ["u1", "C2"]),
        (2, "2026-02-26T00:01", "members", "s1", 2, 2, [str(BIG), "u_junk"]),
        (3, "2026-02-26T06:00", "add_members", "s2", 1, 1, ["u1b", "u_gone"]),
        (4, "2026-02-26T06:00", "add_members", "s2", 1, 1, ["u1b", "u_gone"]),  # replayed page
        (5, "2026-02-27T00:00", "remove_members", "s3", 1, 1, ["C2"]),
        (6, "2026-02-28T00:00", "members", "s4", 1, 1, ["u1", str(BIG), "u_event", "u_prec"]),
        (7, "2026-02-28T09:00", "add_members", "s5", 1, 1, ["C2"]),
    ]
    for seq, at, action, session, page, total, members in pages:
        _ins(engine, "mp_webhook_pages", [
            {"seq": seq, "received_at": _t(at), "action": action, "cohort_id": "77", "cohort_name": HOOK_COHORT,
             "session_id": session, "page_count": page, "total_pages": total, "member_count": len(members)}])
        _ins(engine, "mp_webhook_members", [
            {"seq": seq, "distinct_id": d, "email": "e@x.com" if d == "u_junk" else None,
             "properties": json.dumps({"mixpanel_distinct_id": d})} for d in members])


# ---------------------------------------------------------------------- the public API
SETTINGS: dict[str, dict[str, Any]] = {
    "default": {},
    # each Spark simulation costs seconds of CI, so the settings that do not exclude each other
    # share a run: every non-default value of each setting is still simulated on both engines
    "strict_create_paused": {
        "fallback": "strict",
        "protection": "create_and_update",
        "eit_timeline": [{"since": None, "eit": "customer_id"}, {"since": "2026-02-27T00:00:00Z", "eit": "mparticle_id"}],
        "apply_order": "adds_then_removes",
        "cadence": "1h",
        "pauses": [{"start": "2026-02-26T03:00:00Z", "end": "2026-02-27T12:00:00Z"}],
        "snapshot_ttl": "1d",
        "event_identity_cutoff": None,
    },
    "one_time_as_of": {"sync_type": "one_time", "resolution_time": "as_of"},
}


def api_calls() -> list[tuple[str, Callable[[Any], dict[str, pd.DataFrame]]]]:
    """(name, call(lab) -> {result name: DataFrame}) for every public result."""

    def simulate(cohort: str, settings: str, at: str | None = None, debug: bool = False):
        def call(lab):
            r = lab.simulate(cohort, at=at, settings=SETTINGS[settings], debug=debug, publish=True)
            out = {
                "resolution": r.resolution,
                "timeline": r.timeline,
                "waterfall": r.waterfall,
                "attribute_state": r.attribute_state,
                "gap_summary": r.gap_summary,
            }
            return out

        return call

    def resolution(cohort: str, at: str | None, debug: bool):
        def call(lab):
            return {"resolution": lab.resolution(cohort, at=at, debug=debug)}

        return call

    def info(lab):
        i = lab.info()
        counts = pd.DataFrame({"table": list(i["tables"]), "rows": list(i["tables"].values())})
        ranges = pd.DataFrame({"events": list(i["events_time_range"]), "webhooks": list(i["webhooks_time_range"])})
        return {"info_tables": counts, "info_cohorts": i["cohorts"], "info_ranges": ranges}

    calls: list[tuple[str, Callable]] = [
        ("info", info),
        ("resolution_snap_debug", resolution(SNAP_COHORT, None, True)),
        ("resolution_hook_at", resolution(HOOK_COHORT, "2026-02-27T12:00:00Z", False)),
    ]
    for s in SETTINGS:
        calls.append((f"simulate_snap_{s}", simulate(SNAP_COHORT, s)))
    calls.append(("simulate_hook_default", simulate(HOOK_COHORT, "default", at="2026-03-01T00:00:00Z")))
    calls.append(("simulate_hook_strict_debug", simulate(HOOK_COHORT, "strict_create_paused", debug=True)))
    calls += observed_calls()
    calls += migration_calls()
    return calls


def observed_calls() -> list[tuple[str, Callable]]:
    """verify, explain, the assumption ranges and the re-export value (personal data shown: the
    pseudonym key differs between two databases, the identifiers do not)."""

    def verify(lab):
        v = lab.verify(SNAP_COHORT, show_personal_data=True)
        return {"verify_confusion": v.confusion.reset_index(), "verify_audience": v.audience,
                "verify_causes": v.causes, "verify_names": v.names, "verify_disagreements": v.disagreements,
                "verify_profiles": v.profiles}

    def explain(lab):
        # three users, three paths (distinct_id, MPID, device id): each explain is a simulation on Spark
        users = ["u1", str(BIG), "$device:abc"]
        text = [lab.explain(SNAP_COHORT, u, show_personal_data=True).to_text() for u in users]
        return {"explain": pd.DataFrame({"user": users, "text": text})}

    def reexport(lab):
        v = lab.reexport_value(SNAP_COHORT, when="2026-02-27T00:00:00Z")
        return {"reexport_value": pd.DataFrame({"key": list(v), "value": [str(x) for x in v.values()]})}

    return [("verify_snap", verify), ("explain_snap", explain), ("reexport_value_snap", reexport)]


def lint_only_calls() -> list[tuple[str, Callable]]:
    """Calls whose SQL the portability lint checks but the Spark suite does not run (each is a
    dozen simulations with settings the Spark suite already runs one by one)."""
    def report(lab):  # what the report notebooks send besides the calls above
        from cohortlab.privacy import KnownPersonal, Redactor
        from cohortlab.report import insights

        names = insights.cohort_names(lab)
        rates = insights.match_rates_over_time(lab, names, limit=2)
        switch, _ = insights.find_switch(lab)
        start, end = insights.migration_window(lab)
        # the Redactor's lookups of known values, kept (fetch once) and one by one (fetch_limit=0)
        shown = {}
        for limit in (20_000, 0):
            r = Redactor(key="k", database=KnownPersonal(lab.engine, fetch_limit=limit))
            shown[f"limit_{limit}"] = r.values(["b@x.com", "u_gone", "555", None]) + [r.text("u_gone (e@x.com) 555")]
        return {"report_rates": rates, "report_window": pd.DataFrame({"start": [start], "end": [end],
                                                                      "switch": [switch]}),
                "report_redacted": pd.DataFrame(shown)}

    return [("assumption_ranges_snap", lambda lab: {"assumption_ranges": lab.assumption_ranges(SNAP_COHORT)}),
            ("report_insights", report)]


def migration_calls() -> list[tuple[str, Callable]]:
    from cohortlab.migration.plans import standard_plans
    from cohortlab.migration.run import run_plans
    from cohortlab.migration.validate import validate as validate_plan

    def plans(lab):
        r = run_plans(lab.engine, standard_plans("2026-02-01T00:00:00Z", rule="2026-01-25T00:00:00Z"),
                      "2026-01-01", "2026-03-05")
        return {"migration_daily": r.daily, "migration_summary": r.summary}

    def plans_again(lab):
        # two of the plans again over another window: their stored rows are replaced, the others kept
        r = run_plans(lab.engine, standard_plans("2026-02-01T00:00:00Z", rule="2026-01-25T00:00:00Z")[2:],
                      "2026-02-01", "2026-03-05")
        stored = lab.sql("SELECT plan, count(*) AS days FROM migration_daily GROUP BY plan")
        return {"migration_daily": r.daily, "migration_summary": r.summary, "stored_days": stored}

    def plans_repeat(lab):
        r = run_plans(lab.engine, standard_plans("2026-02-27T00:00:00Z"), "2026-02-20", "2026-03-10",
                      activity="repeat", settings={"fallback": "strict"}, store=False)
        return {"migration_daily": r.daily, "migration_summary": r.summary}

    def validate(lab):
        observed = lab.resolution(SNAP_COHORT)
        plan = standard_plans("2026-02-01T00:00:00Z")[0]
        v = validate_plan(lab.engine, plan, observed, SNAP_COHORT, "2026-03-01T00:00:00Z")
        return {"validation_users": v.users, "validation_confusion": v.confusion}

    return [("migration_plans", plans), ("migration_plans_again", plans_again), ("migration_repeat_strict", plans_repeat),
            ("migration_validate", validate)]
