"""docs/rules.md#mpid: what is and is not an MPID, in SQL and in Python alike."""

import pytest

from cohortlab.identifiers import float_rounded_mpid_sql, is_valid_mpid, is_valid_mpid_sql, mpid_sql

CASES = [
    ("-7346244611012968789", -7346244611012968789),
    ("9223372036854775807", 9223372036854775807),
    ("-9223372036854775808", -9223372036854775808),
    ("9223372036854775808", None),  # above int64
    ("-9223372036854775809", None),
    ("1.2e18", None),  # exponent
    ("1200000000000000000.0", None),  # decimal point
    ("", None),
    (" 5", None),  # space
    ("+5", None),
    ("undefined", None),
    ("-", None),
    (None, None),
    # what the BIGINT cast forgives or prints differently: the SQL falls back to the pattern
    ("0", 0),
    ("-0", 0),  # valid, printed back as "0"
    ("007", 7),  # leading zeros: valid, printed back as "7"
    ("-007", -7),
    ("5 ", None),
    ("1e3", None),
    ("1.0", None),
    ("0x10", None),
    ("1_000", None),
    ("١٢", None),  # Arabic-Indic digits
    ("１２", None),  # full-width digits
    ("12\n", None),
]


@pytest.mark.parametrize("text,expected", CASES)
def test_mpid_rules_sql_and_python_agree(lab, text, expected):
    row = lab.engine.query_rows(
        f"SELECT {is_valid_mpid_sql('x')}, {mpid_sql('x')} FROM (SELECT ?::VARCHAR AS x)", [text]
    )[0]
    assert row == (expected is not None, expected)
    assert is_valid_mpid(text) == (expected is not None)


def test_float_rounding_matches_python(lab):
    mpid = 9080350317581165123
    got = lab.engine.query_rows(f"SELECT {float_rounded_mpid_sql('x')} FROM (SELECT ?::BIGINT AS x)", [mpid])
    assert got[0][0] == int(float(mpid)) == 9080350317581165568


def test_an_event_is_logged_in_and_from_an_app_by_a_non_empty_user_id_and_device_id():
    # docs/rules.md#remediations: a Rule writes from logged-in events (a $user_id), SDK code from
    # those an app sent (a $device_id); an empty value is no value for both (an empty $user_id
    # counted as logged in while an empty $device_id was no app)
    import duckdb

    from cohortlab.identifiers import app_event_sql, logged_in_event_sql, remediation_event_sql

    rows = duckdb.sql(f"""
        SELECT u, d, {logged_in_event_sql('u')}, {app_event_sql('d')},
               {remediation_event_sql('rule', logged_in=logged_in_event_sql('u'), app=app_event_sql('d'))},
               {remediation_event_sql('sdk', logged_in=logged_in_event_sql('u'), app=app_event_sql('d'))}
        FROM (VALUES ('c1', 'D1'), ('c1', NULL), ('', 'D1'), (NULL, 'D1'), ('c1', '')) t(u, d)""").fetchall()
    assert [r[2:] for r in rows] == [(True, True, True, True), (True, False, True, False),
                                     (False, True, False, False), (False, True, False, False),
                                     (True, False, True, False)]


def test_without_user_ids_an_event_is_logged_in_when_its_distinct_id_is_no_device_id():
    # docs/rules.md#no-user-id: data without any $user_id tell a logged-in event by its
    # distinct_id: not a $device: id, not its own $device_id, no mParticle device identity, not
    # empty; a customer id, an email or an MPID is a user's. Data with $user_ids keep that rule
    # and their SQL (no join)
    import duckdb

    from cohortlab.identifiers import LoggedIn, logged_in_rule

    con = duckdb.connect()
    con.execute("CREATE TABLE mpa_identities (mpid BIGINT, kind VARCHAR, identity_type VARCHAR, value VARCHAR)")
    con.execute("INSERT INTO mpa_identities VALUES (5, 'device', 'android_uuid', 'srv-9'), "
                "(5, 'user', 'customer_id', 'cust-5'), (6, 'device', 'ios_idfv', NULL)")
    con.execute("CREATE TABLE mp_events (distinct_id VARCHAR, user_id VARCHAR, device_id VARCHAR)")
    con.execute("INSERT INTO mp_events VALUES ('cust-5', NULL, 'D1'), ('$device:D1', NULL, 'D1'), ('D2', NULL, 'D2'), "
                "('srv-9', NULL, NULL), ('a@b.c', NULL, NULL), ('1001', NULL, 'D3'), ('', NULL, 'D4'), "
                "('cust-5', '', NULL)")
    rule = LoggedIn(False)
    rows = con.sql(f"SELECT e.distinct_id, {rule.sql(user='e.user_id', distinct='e.distinct_id', device='e.device_id')}"
                   f" FROM mp_events e{rule.join('e.distinct_id')} ORDER BY ALL").fetchall()
    assert rows == [("", False), ("$device:D1", False), ("1001", True), ("D2", False), ("a@b.c", True),
                    ("cust-5", True), ("cust-5", True), ("srv-9", False)]

    class Engine:
        def query_rows(self, sql):
            return con.execute(sql).fetchall()

    assert logged_in_rule(Engine()) == LoggedIn(False)  # an empty $user_id is none
    con.execute("INSERT INTO mp_events VALUES ('u1', 'u1', NULL)")
    assert logged_in_rule(Engine()) == LoggedIn(True)
    assert LoggedIn(True).join("e.distinct_id") == "" and LoggedIn(True).note == ""
    assert LoggedIn(True).sql(user="e.user_id", distinct="x", device="y") == "(e.user_id IS NOT NULL AND e.user_id <> '')"


def test_lab_sql_keeps_integers_wider_than_bigint_exact():
    """DuckDB gives pandas a HUGEINT or a DECIMAL(20,0) as float64: lab.sql of
    9007199254740993::DECIMAL(20,0) was 9007199254740992.0. Such a column is Int64 when every
    value fits int64, else Python ints; a DECIMAL with decimals stays a float, BIGINT as before."""
    from cohortlab import Lab

    with Lab() as lab:
        df = lab.sql("SELECT 9223372036854775807::HUGEINT AS h, 9007199254740993::DECIMAL(20,0) AS d, "
                     "1.5::DECIMAL(10,2) AS e, 170141183460469231731687303715884105727::HUGEINT AS big, "
                     "-9007199254740993::BIGINT AS b "
                     "UNION ALL SELECT NULL, NULL, NULL, -1, NULL")
        assert (str(df.h.dtype), str(df.d.dtype), str(df.e.dtype), str(df.big.dtype), str(df.b.dtype)) == (
            "Int64", "Int64", "float64", "object", "Int64")
        assert (df.h[0], df.d[0], df.big[0], df.b[0]) == (
            9223372036854775807, 9007199254740993, 170141183460469231731687303715884105727, -9007199254740993)
        assert df.h.isna().tolist() == [False, True] and df.big.tolist()[1] == -1
        assert lab.sql("SELECT ?::HUGEINT AS x", [9007199254740993]).x.tolist() == [9007199254740993]
        assert lab.sql("SELECT 1 AS x; ").x.tolist() == [1]
        assert lab.sql("-- a note\n(SELECT 9007199254740993::HUGEINT AS h) -- trailing").h.tolist() == [9007199254740993]
        # a statement runs once, its wide columns read from its one result: a sequence advances by
        # one, a write is done once (a red team's: nextval gave 2, a WITH ... INSERT ran then failed)
        lab.sql("CREATE SEQUENCE s")
        assert lab.sql("SELECT nextval('s')::HUGEINT AS v").v.tolist() == [1]
        lab.sql("CREATE TABLE t (x HUGEINT)")
        assert lab.sql("INSERT INTO t VALUES (9007199254740993) RETURNING x").x.tolist() == [9007199254740993]
        assert lab.sql("WITH a AS (SELECT 2::HUGEINT AS z) INSERT INTO t SELECT z FROM a RETURNING x").x.tolist() == [2]
        assert lab.sql("SELECT count(*) AS n, min(x) AS x FROM t").values.tolist() == [[2, 2]]
