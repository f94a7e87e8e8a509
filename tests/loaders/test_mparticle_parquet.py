"""mparticle-parquet: mParticle profile tables saved as Parquet (flat identity/attribute columns,
or Profile API columns), through the mparticle-profiles staging: exact int64 MPIDs (a float MPID
column is never trusted), quarantine, snapshot replacement, idempotence, all-or-nothing."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from cohortlab.loaders import LoadError

# the Parquet loader has neither a parallel nor a fast path:
# its tests run once per path it has (conftest.parse_path checks it)
PARSE_PATHS = ("whole",)

KIND = "mparticle-parquet"
BIG = 9080350317581165123


def parquet(path, sql: str):
    con = duckdb.connect()
    con.execute(f"COPY ({sql}) TO '{path}' (FORMAT PARQUET)")
    con.close()
    return path


FLAT = f"""
    SELECT * FROM (VALUES
      ({BIG}::BIGINT, 'cust-2', 'bob@example.com', NULL, 'pro', 'true'),
      (-1, 'cust-4', '', 'F3B5D1C', NULL, 'False'),
      (NULL, 'cust-9', NULL, NULL, NULL, NULL),
      (-1, 'cust-4b', NULL, NULL, 'free', NULL)
    ) t(mpid, customerid, email, ios_idfv, plan, "Power Users")"""


def test_flat_profile_table(lab, q, tmp_path, balanced):
    p = parquet(tmp_path / "profiles.parquet", FLAT)
    r = balanced(lab.load(KIND, p))
    assert (r.rows_read, r.loaded, r.deduplicated) == (4, 2, 1)  # the last row of MPID -1 wins
    assert dict(r.quarantined) == {"missing_mpid": 1}
    assert q("SELECT mpid, source, line FROM mpa_profiles") == [(-1, "parquet", 4), (BIG, "parquet", 1)]
    assert q("SELECT mpid, kind, identity_type, value FROM mpa_identities") == [
        (-1, "user", "customer_id", "cust-4b"),
        (BIG, "user", "customer_id", "cust-2"),  # IDSync spelling normalised
        (BIG, "user", "email", "bob@example.com"),
    ]
    assert q("SELECT mpid, name, value_bool FROM mpa_attributes") == [
        (-1, "plan", None), (BIG, "Power Users", True), (BIG, "plan", None)]
    assert q("SELECT source_file, line, reason FROM rejects") == [(str(p), 3, "missing_mpid")]


def test_profile_api_columns(lab, q, tmp_path):
    p = parquet(tmp_path / "api.parquet", f"""
        SELECT '{BIG}' AS mparticle_user_id,
               TIMESTAMP '2025-01-01 12:00:00' AS created_timestamp_ms,
               1772323200000 AS last_stored_timestamp_ms,
               false AS is_opted_out,
               [{{'type': 'customer_id', 'value': 'cust-2'}}, {{'type': 'other2', 'value': 'legacy'}}] AS user_identities,
               MAP {{'android_id': '8789c459016a94b0'}} AS device_identities,
               '{{"Power Users": true, "ltv": "342.1"}}' AS user_attributes,
               [{{'audience_id': 17802, 'audience_name': 'Decor', 'expiration_timestamp_ms': NULL::BIGINT}}] AS audience_memberships""")
    lab.load(KIND, p)
    assert q("SELECT mpid, created_at, last_stored_at, is_opted_out FROM mpa_profiles") == [
        (BIG, datetime(2025, 1, 1, 12), datetime(2026, 3, 1), False)]
    assert q("SELECT kind, identity_type, value FROM mpa_identities") == [
        ("device", "android_uuid", "8789c459016a94b0"), ("user", "customer_id", "cust-2"), ("user", "other_id_2", "legacy")]
    assert q("SELECT name, value_bool FROM mpa_attributes") == [("Power Users", True), ("ltv", None)]
    assert q("SELECT audience_id, audience_name FROM mpa_audiences") == [(17802, "Decor")]


def test_an_mpid_that_went_through_a_float_is_never_an_mpid(lab, q, tmp_path):
    p = parquet(tmp_path / "float.parquet",
                f"SELECT {BIG}::DOUBLE AS mpid, 'cust-2' AS customer_id UNION ALL SELECT 42::DOUBLE, 'x'")
    r = lab.load(KIND, p)
    assert dict(r.quarantined) == {"invalid_mpid": 2}
    assert q("SELECT count(*) FROM mpa_profiles") == [(0,)]


@pytest.mark.other_kinds_first
def test_snapshot_replaces_and_second_load_is_a_no_op(lab, q, tmp_path):
    api = tmp_path / "p.json"
    api.write_text(f'{{"mpid": {BIG}, "user_identities": {{"customer_id": "old"}}, "user_attributes": {{"x": "1"}}}}')
    lab.load("mparticle-profiles", api)
    p = parquet(tmp_path / "profiles.parquet", FLAT)
    lab.load(KIND, p)
    assert q("SELECT value FROM mpa_identities WHERE mpid = ? AND identity_type = 'customer_id'", [BIG]) == [("cust-2",)]
    assert q("SELECT count(*) FROM mpa_attributes WHERE name = 'x'") == [(0,)]
    before = q("SELECT * FROM mpa_identities")
    r = lab.load(KIND, p)
    assert r.skipped == [str(p)] and q("SELECT * FROM mpa_identities") == before


def test_errors_name_the_file_and_change_nothing(lab, tmp_path, write, table_snapshot):
    good = parquet(tmp_path / "a.parquet", FLAT)
    no_mpid = parquet(tmp_path / "b.parquet", "SELECT 'cust-1' AS customer_id")
    before = table_snapshot()
    with pytest.raises(LoadError, match=r"b.parquet: no MPID column \(mpid / mparticle_user_id / mparticle_id"):
        lab.load(KIND, [good, no_mpid])
    assert table_snapshot() == before
    with pytest.raises(LoadError, match="not a Parquet file"):
        lab.load(KIND, write("c.json", '{"mpid": 1}'))
    r = lab.load(KIND, parquet(tmp_path / "d.parquet", "SELECT 7 AS user_id, 'a' AS customer_id"), mpid_column="USER_ID")
    assert r.loaded == 1


def test_column_names_are_trimmed_and_a_repeated_one_is_ignored_with_a_warning(lab, q, tmp_path):
    # as mparticle-csv reads its header: an attribute column is named without the spaces around
    # it, and a column repeating an earlier one's identity type (in any case: DuckDB reads `Email`
    # after `email` as `Email_1`) or attribute name (in its case) is ignored: the first column of
    # each name is read, with a warning naming the repeats (`Email_1`
    # and `Power Users ` loaded as attributes of their own). Attribute names are case-sensitive:
    # `PLAN` beside `plan` is an attribute of its own (it was ignored as a repeat)
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    columns = {"mpid": [7, 8], "email": ["a@x", None], "Email": ["b@x", "c@x"], "Power Users": ["true", None],
               "Power Users ": ["false", "TRUE"], " plan": ["pro", "free"], "PLAN": ["x", "y"],
               "MPID": [9, 9], "user_attributes": ['{"tier": "gold"}', None]}
    p = tmp_path / "profiles.parquet"
    pq.write_table(pa.table(columns), p)
    r = lab.load(KIND, p)
    assert (r.loaded, r.n_quarantined) == (2, 0)
    assert q("SELECT mpid, identity_type, value FROM mpa_identities") == [(7, "email", "a@x")]
    # a user_attributes column: the other columns are no attributes (as before)
    assert q("SELECT mpid, name, value::VARCHAR FROM mpa_attributes") == [(7, "tier", '"gold"')]
    assert r.warnings == [f"{p}: the file's schema repeats 'Email' (column 3), 'MPID' (column 8): the first "
                          "column of each name is read, the repeated one ignored"]
    del columns["user_attributes"]
    p2 = tmp_path / "flat.parquet"
    pq.write_table(pa.table(columns), p2)
    r = lab.load(KIND, p2)
    assert q("SELECT mpid, name, value::VARCHAR, value_bool FROM mpa_attributes ORDER BY ALL") == [
        (7, "PLAN", '"x"', None), (7, "Power Users", '"true"', True), (7, "plan", '"pro"', None),
        (8, "PLAN", '"y"', None), (8, "plan", '"free"', None)]
    assert r.warnings == [f"{p2}: the file's schema repeats 'Email' (column 3), 'Power Users ' (column 5), 'MPID' "
                          "(column 8): the first column of each name is read, the repeated one ignored"]
    with pytest.raises(Exception, match="repeats"):  # --strict
        lab.load(KIND, parquet(tmp_path / "s.parquet", "SELECT 1 AS mpid, 'a' AS \"plan\", 'b' AS \"plan \""),
                 strict=True)
    # names without repeats do not warn
    assert lab.load(KIND, parquet(tmp_path / "ok.parquet", "SELECT 2 AS mpid, 'a' AS plan")).warnings == []


def test_a_cohort_renamed_in_case_only_is_two_attributes(lab, q, tmp_path):
    """A cohort renamed `Heavy Users` -> `heavy users` leaves both attributes on mParticle's
    profiles (attribute names are case-sensitive): a Parquet snapshot carries both columns, which
    DuckDB reads as `Heavy Users` and `heavy users_1`. Each is read under its own name; the second
    was ignored as a repeat and its values lost (the renames differential test, seed 20)."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    p = tmp_path / "renamed.parquet"
    pq.write_table(pa.table({"mpid": [1, 2, 3], "Heavy Users": [True, None, False], "heavy users": [None, False, True]}), p)
    r = lab.load(KIND, p, as_of="2026-03-01T00:00:00Z")
    assert (r.loaded, r.n_quarantined, r.warnings) == (3, 0, [])
    assert q("SELECT mpid, name, value_bool FROM mpa_attributes ORDER BY ALL") == [
        (1, "Heavy Users", True), (2, "heavy users", False), (3, "Heavy Users", False), (3, "heavy users", True)]


def test_hive_partition_folders_are_no_columns(lab, q, tmp_path):
    """A partitioned warehouse unload writes its Parquet parts under ``key=value`` folders. DuckDB
    would add those folder names as columns, which loaded as attributes the table never had."""
    p = tmp_path / "unload" / "year=2026" / "month=03" / "0000_part_00.parquet"
    p.parent.mkdir(parents=True)
    parquet(p, f"SELECT {BIG}::BIGINT AS mpid, 'a@example.com' AS email, 'pro' AS plan")
    r = lab.load(KIND, tmp_path / "unload")
    assert (r.rows_read, r.loaded, r.n_quarantined) == (1, 1, 0)
    assert q("SELECT mpid, name, value FROM mpa_attributes") == [(BIG, "plan", '"pro"')]
    assert q("SELECT identity_type, value FROM mpa_identities") == [("email", "a@example.com")]


def test_a_decimal_mpid_column_with_a_scale_is_exact(lab, q, tmp_path):
    """BigQuery's NUMERIC is DECIMAL(38,9) in Parquet: exact, not a float. A whole value is that
    MPID (all were quarantined invalid_mpid); a fraction is no MPID."""
    p = parquet(tmp_path / "numeric.parquet", f"""
        SELECT * FROM (VALUES ({BIG}::DECIMAL(38,9), 'cust-1'), (-9223372036854775808::DECIMAL(38,9), 'cust-2'),
                              (42.5::DECIMAL(38,9), 'cust-3')) t(mpid, customer_id)""")
    r = lab.load(KIND, p)
    assert (r.rows_read, r.loaded, dict(r.quarantined)) == (3, 2, {"invalid_mpid": 1})
    assert q("SELECT mpid, value FROM mpa_identities") == [(-9223372036854775808, "cust-2"), (BIG, "cust-1")]
    assert q("SELECT raw FROM rejects") == [('{"mpid":42.5,"customer_id":"cust-3"}',)]


def test_a_databricks_folder_skips_its_transaction_markers(lab, q, tmp_path):
    """Databricks writes _started_<id> (empty) and _committed_<id> (JSON naming the parts) beside
    the part files of a write, with _SUCCESS: loading the folder skips them as the completion
    markers are skipped (a _committed_ file was refused as "not a Parquet file", failing the
    folder). A file that only starts like one (_committed.parquet) is data."""
    d = tmp_path / "unload"
    d.mkdir()
    part = "part-00000-tid-5151-0c1f-c000.snappy.parquet"
    parquet(d / part, f"SELECT {BIG}::BIGINT AS mpid, 'a@example.com' AS email")
    (d / "_started_5151").write_text("")
    (d / "_committed_5151").write_text('{"added":["%s"],"removed":[]}' % part)
    (d / "_committed_vacuum5152").write_text('{"added":[],"removed":["part-old.snappy.parquet"]}')
    (d / "_SUCCESS").write_text("")
    parquet(d / "_committed.parquet", "SELECT -1::BIGINT AS mpid, 'b@example.com' AS email")
    r = lab.load(KIND, d, strict=True)
    assert (r.rows_read, r.loaded, len(r.files)) == (2, 2, 2)
    assert q("SELECT mpid FROM mpa_profiles") == [(-1,), (BIG,)]
