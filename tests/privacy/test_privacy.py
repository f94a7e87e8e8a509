"""Personal data is replaced by stable pseudonyms, the same in Python and in SQL."""

import duckdb
import pandas as pd

from cohortlab import Lab
from cohortlab.privacy import Redactor, looks_personal, pseudonym


def test_what_counts_as_personal():
    assert looks_personal("ann@example.com")
    assert looks_personal("+44 20 7946 0958")
    assert not looks_personal("9080350317581165448")      # an MPID
    assert not looks_personal("-7340000000000000000")
    assert not looks_personal("cust-123")
    assert not looks_personal("$device:ab12")
    assert not looks_personal(None)


def test_pseudonyms_are_stable_keyed_and_unreadable():
    r = Redactor(key="k1")
    a = r.value("ann@example.com")
    assert a == r.value("ann@example.com") == pseudonym("ann@example.com", "k1")
    assert a.startswith("anon-") and "ann" not in a
    assert Redactor(key="k2").value("ann@example.com") != a      # keyed: another database, another name
    assert r.value("9080350317581165448") == "9080350317581165448"
    assert Redactor(key="k1", show=True).value("ann@example.com") == "ann@example.com"


def test_known_values_catch_phones_without_plus():
    r = Redactor(key="k", known=frozenset({"07700900123"}))
    assert r.value("07700900123").startswith("anon-")
    assert r.text("user 07700900123 and bob@x.org left") == (
        f"user {pseudonym('07700900123', 'k')} and {pseudonym('bob@x.org', 'k')} left")


def test_sql_and_python_give_the_same_pseudonym():
    r = Redactor(key="secret", known=frozenset({"07700900123"}))
    con = duckdb.connect()
    con.execute("CREATE TABLE ids AS SELECT * FROM (VALUES ('ann@example.com'), ('07700900123'), ('123'), (NULL)) t(v)")
    con.execute("CREATE TABLE known AS SELECT '07700900123' AS v")
    got = [row[0] for row in con.execute(f"SELECT {r.sql('v', 'known')} FROM ids").fetchall()]
    assert got == [r.value("ann@example.com"), r.value("07700900123"), "123", None]


def test_frame_drops_personal_columns_and_masks_ids():
    r = Redactor(key="k")
    df = pd.DataFrame({"distinct_id": ["ann@example.com", "42"], "email": ["ann@example.com", None],
                       "mpid": pd.array([1, 2], dtype="Int64")})
    out = r.frame(df)
    assert list(out.columns) == ["distinct_id", "mpid"]
    assert out.distinct_id.tolist() == [pseudonym("ann@example.com", "k"), "42"]
    assert out.mpid.dtype == "Int64"


def test_a_database_keeps_its_key(tmp_path):
    db = tmp_path / "x.duckdb"
    with Lab(db) as lab:
        first = Redactor.for_engine(lab.engine).value("ann@example.com")
    with Lab(db) as lab:
        assert Redactor.for_engine(lab.engine).value("ann@example.com") == first
    with Lab(tmp_path / "other.duckdb") as lab:
        assert Redactor.for_engine(lab.engine).value("ann@example.com") != first
