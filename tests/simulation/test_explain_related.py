"""Explain one user simulates only the members that matter to that user; on random small worlds
(hypothesis) every fact it shows equals the one shown from the full simulation of the cohort:
the same steps, texts and data, for every distinct_id, MPID and identity a user may be asked by."""

from datetime import timedelta

import hypothesis
from hypothesis import HealthCheck, given, strategies as st

from cohortlab import Lab
from cohortlab.settings import SyncSettings
from cohortlab.simulation.explain import ExplainError, explain
from cohortlab.simulation.simulate import simulate
from tests.depth import search

from .test_properties import C, MPIDS, POOL, T0, build, datasets


@st.composite
def worlds(draw):
    mpids, profiles, source, msgs, opts, at = draw(datasets())
    # events that carry $mparticle_user_id (the event identity rule), some after the cutoff
    events = [(d, draw(st.integers(0, 180)), draw(st.sampled_from(["1", "2", "-3", "4", "x"])))
              for d in draw(st.lists(st.sampled_from(POOL), max_size=4))]
    # user identities: a customer id that is another member's distinct_id, an email
    idents = {m: draw(st.sampled_from([None, "u1", "u2", "a@x.com"])) for m in sorted(mpids)}
    emails = {d: draw(st.sampled_from([None, "a@x.com"])) for d in POOL[:3]}
    observed = {m: draw(st.sampled_from([None, True, False])) for m in sorted(mpids)}
    return mpids, profiles, source, msgs, opts, at, events, idents, emails, observed


def facts(x):
    return [(s.kind, s.text, s.rule, str(s.time), repr(sorted((k, str(v)) for k, v in s.data.items())))
            for s in x.steps]


@hypothesis.settings(**search(3, 25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_explain_of_the_related_members_equals_explain_of_the_full_simulation(w):
    mpids, profiles, source, msgs, opts, at, events, idents, emails, observed = w
    opts = {**opts, "event_identity_cutoff": (T0 + timedelta(minutes=60)).isoformat()}
    with Lab() as lab:
        build(lab, mpids, profiles, source, msgs)
        eng = lab.engine
        for d, minute, v in events:
            eng.execute("INSERT INTO mp_events (event, time, distinct_id, insert_id, mparticle_user_id) "
                        "VALUES ('e', ?, ?, ?, ?)", [T0 + timedelta(minutes=minute), d, f"i{d}{minute}{v}", v])
        for d, e in emails.items():
            if e:
                eng.execute("UPDATE mp_profiles SET email = ? WHERE distinct_id = ?", [e, d])
        for m, v in idents.items():
            if v:
                kind = "email" if "@" in v else "customer_id"
                eng.execute("INSERT INTO mpa_identities (mpid, kind, identity_type, value) VALUES (?, 'user', ?, ?)",
                            [m, kind, v])
        if any(v is not None for v in observed.values()):
            eng.execute("INSERT INTO loads (load_id, kind, source_file) VALUES (1, 'mparticle-profiles', 's')")
            eng.execute("UPDATE mpa_profiles SET load_id = 1")
            for m, v in observed.items():
                if v is not None:
                    eng.execute("INSERT INTO mpa_attributes (mpid, name, value, value_bool, load_id) "
                                "VALUES (?, ?, ?, ?, 1)", [m, C, str(v).lower(), v])
        s = SyncSettings.coerce(opts)
        at_ = T0 + timedelta(minutes=at)
        full = {}

        def full_sim(c, a, st_, src):
            key = (getattr(c, "name", c), str(a))  # c: the cohort found (a CohortRef)
            if key not in full:
                full[key] = simulate(eng, c, a, st_, source=src)
            return full[key]

        for user in [*POOL, *(str(m) for m in MPIDS), "a@x.com"]:
            try:
                related = explain(eng, C, user, at_, s)
            except ExplainError:
                related = None
            try:
                whole = explain(eng, C, user, at_, s, simulate_fn=full_sim)
            except ExplainError:
                assert related is None, user
                continue
            assert related is not None, user
            assert related.distinct_ids == whole.distinct_ids and related.mpids == whole.mpids, user
            assert facts(related) == facts(whole), user
        # nothing of the related simulations is left behind
        left = eng.query_rows("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'sim_%_x_%' "
                              "OR table_name = '_explain_members'")[0][0]
        assert left == 0
