"""A database's Redactor looks up only the values it is about to show (docs/reports.md#personal-data):
it never brings every known email/phone into Python, and still pseudonymises a value the database
alone knows as personal (a phone written without "+"), in frames, values and sentences."""

import pandas as pd
import pytest

from cohortlab import Lab
from cohortlab.lab import open_lab
from cohortlab.privacy import KnownPersonal, Redactor, ensure_key, known_personal_values, pseudonym

SPACED = "07700 900123"      # not one word: a sentence shows it as two
BARE = "07700900999"         # one word, but the phone pattern needs a "+"
PLUS = "+447700900555"       # caught by the pattern alone
EMAILS = [f"user{i}@example.com" for i in range(300)]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("known") / "known.duckdb"
    with Lab(path) as lab:
        rows = [(f"d{i}", e, None) for i, e in enumerate(EMAILS)]
        rows += [("p1", None, SPACED), ("p2", None, BARE), ("p3", None, PLUS)]
        lab.engine.con.executemany("INSERT INTO mp_profiles (distinct_id, email, phone) VALUES (?, ?, ?)", rows)
        lab.engine.con.execute("INSERT INTO mpa_identities (mpid, kind, identity_type, value) "
                               "VALUES (7, 'user', 'mobile_number', '5551234567')")
        ensure_key(lab.engine)  # the key exists before the database is opened read-only
    return path


FRAME = pd.DataFrame({"distinct_id": [BARE, "cust-1", EMAILS[3], SPACED, "5551234567", None],
                      "note": ["x", PLUS, "y", "z", "w", "v"]})
TEXT = f"members {BARE}, {SPACED}, {PLUS} and 5551234567 (also {EMAILS[5]}) left; cust-1 stayed; +150000 users"


def _hand_built(lab) -> Redactor:
    """What the Redactor was before: every known value in Python (the reference)."""
    r = Redactor.for_engine(lab.engine)
    return Redactor(key=r.key, known=frozenset(known_personal_values(lab.engine)))


@pytest.mark.parametrize("fetch_limit, prefetch", [(20_000, True), (0, True), (20_000, False)],
                         ids=["kept", "one-by-one", "looked-up-only"])
def test_database_values_are_pseudonymised_without_fetching_them_all(db, fetch_limit, prefetch):
    with open_lab(str(db), read_only=True) as lab:  # read-only: lookups create no table
        reference = _hand_built(lab)
        r = Redactor.for_engine(lab.engine)
        assert r.database.queries == 0  # for_engine reads the key, not the known values
        r = Redactor(key=r.key, database=KnownPersonal(lab.engine, fetch_limit=fetch_limit, prefetch=prefetch))

        out = r.frame(FRAME)
        assert out.equals(reference.frame(FRAME))
        assert out.distinct_id.tolist() == [pseudonym(BARE, r.key), "cust-1", pseudonym(EMAILS[3], r.key),
                                            pseudonym(SPACED, r.key), pseudonym("5551234567", r.key), None]
        assert out.note.tolist()[1] == pseudonym(PLUS, r.key)
        assert r.value(BARE) == pseudonym(BARE, r.key) and r.value("cust-1") == "cust-1"
        assert r.values([SPACED, "5551234567", 42, None]) == [pseudonym(SPACED, r.key),
                                                               pseudonym("5551234567", r.key), 42, None]
        shown = r.text(TEXT)
        assert shown == reference.text(TEXT)
        for personal in (BARE, SPACED, PLUS, "5551234567", EMAILS[5], "07700"):
            assert personal not in shown
        assert pseudonym(SPACED, r.key) in shown and "cust-1 stayed" in shown
        assert shown.endswith("; +150000 users")  # looks like a phone, but no known one: a number

        known = len(known_personal_values(lab.engine))
        assert known == 304
        if not prefetch:  # only lookups of the values asked about: one-by-one's queries without the
            # two that find the known values too many to keep (LIMIT fetch_limit + 1)
            assert (r.database.queries, r.database.rows_fetched) == (5, 3)
        # (the sentence's "+" phone is replaced by its pattern before any lookup: no row finds it)
        elif fetch_limit:  # the 3 values the patterns miss, then the sentence's "+150000" (no row)
            assert (r.database.queries, r.database.rows_fetched) == (2, 3)
        else:  # a few small lookups, one per batch of new values (answers cached): their rows are
            # values asked about or found in the sentence, never all 304 known values
            assert (r.database.queries, r.database.rows_fetched) == (7, 5)  # with the LIMIT queries' 1 + 1
            before = r.database.queries
            r.frame(FRAME), r.value(BARE), r.values(["cust-1"])
            assert r.database.queries == before  # already classified: no query


def test_notebook_redaction_uses_the_database_lookups(db):
    from cohortlab.report import notebook as ui

    with open_lab(str(db), read_only=True) as lab:
        privacy = ui.redactor(lab)
        out = ui.redact(FRAME)
        assert out.distinct_id[0] == pseudonym(BARE, privacy.key)
        extra = ui.redact(pd.DataFrame({"identifier": ["cust-1", BARE]}), known={"cust-1"})
        assert extra.identifier.tolist() == [pseudonym("cust-1", privacy.key), pseudonym(BARE, privacy.key)]
        assert BARE not in ui._markdown(f"member {BARE}") and SPACED not in ui._markdown(f"phone {SPACED}")
        assert privacy.database.rows_fetched == 3
    ui._REDACTOR = None
