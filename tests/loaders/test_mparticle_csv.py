"""mparticle-csv: a CSV profile snapshot (mpid column, identity columns by type, attribute columns)."""

from __future__ import annotations

import csv
import io

import pytest

from cohortlab.loaders import LoadError

# the CSV loader has neither a parallel nor a fast path:
# its tests run once per path it has (conftest.parse_path checks it)
PARSE_PATHS = ("whole",)

KIND = "mparticle-csv"


def test_sample_csv(lab, q, mparticle_data_dir):
    path = mparticle_data_dir / "profiles.csv"
    r = lab.load(KIND, path)
    assert (r.rows_read, r.loaded, r.deduplicated, r.n_quarantined) == (8, 8, 0, 0)
    assert q("SELECT mpid, created_at, last_stored_at, is_opted_out, environment, source, line FROM mpa_profiles") == sorted(
        [
            (-7346244611012968789, None, None, None, None, "csv", 2),
            (9080350317581165123, None, None, None, None, "csv", 3),
            (4611686018427387904, None, None, None, None, "csv", 4),
            (-1, None, None, None, None, "csv", 5),
            (123456789012345678, None, None, None, None, "csv", 6),
            (7000000000000000001, None, None, None, None, "csv", 7),
            (3141592653589793238, None, None, None, None, "csv", 8),
            (-4242424242424242424, None, None, None, None, "csv", 9),
        ],
        key=repr,
    )
    assert q("SELECT mpid, kind, identity_type, value FROM mpa_identities") == sorted(
        [
            (-7346244611012968789, "user", "customer_id", "cust-1"),
            (-7346244611012968789, "user", "email", "ann@example.com"),
            (-7346244611012968789, "device", "android_uuid", "8789c459016a94b0"),
            (9080350317581165123, "user", "customer_id", "cust-2"),
            (9080350317581165123, "user", "email", "bob@example.com"),
            (9080350317581165123, "device", "ios_idfv", "6B29FC40-CA47-1067-B31D-00DD010662DA"),
            (4611686018427387904, "user", "customer_id", "cust-3"),
            (4611686018427387904, "user", "other_id_2", "legacy-3"),
            (-1, "user", "customer_id", "cust-4"),
            (-1, "user", "email", "dee@example.com"),
            (123456789012345678, "user", "customer_id", "cust-5"),
            (123456789012345678, "user", "email", "eve@example.com"),
            (123456789012345678, "user", "mobile_number", "+15555550105"),
            (7000000000000000001, "user", "customer_id", "cust-6"),
            (3141592653589793238, "device", "ios_idfv", "A1B2C3D4-0000-4000-8000-000000000007"),
            (-4242424242424242424, "device", "android_uuid", "f00dfeedcafe0008"),
        ],
        key=repr,
    )
    assert q("SELECT mpid, name, value::VARCHAR, value_bool FROM mpa_attributes") == sorted(
        [
            (-7346244611012968789, "Power Users", '"true"', True),
            (9080350317581165123, "Power Users", '"true"', True),
            (4611686018427387904, "plan", '"pro"', None),
            (4611686018427387904, "Power Users", '"False"', False),
            (-1, "plan", '"free"', None),
            (123456789012345678, "plan", '"free"', None),
            (7000000000000000001, "plan", '"enterprise"', None),
        ],
        key=repr,
    )


def test_identity_column_spellings_and_device_columns(lab, q, write):
    p = write("p.csv", "MPID,CustomerID,other2,Other,mobilenumber,phonenumber2,ios_idfa,push_token,Nickname\n"
                       "5,c5,o2,o1,+1,+2,IDFA,TOK,Five\n")
    lab.load(KIND, p)
    assert q("SELECT kind, identity_type, value FROM mpa_identities") == sorted(
        [
            ("user", "customer_id", "c5"), ("user", "other_id_2", "o2"), ("user", "other", "o1"),
            ("user", "mobile_number", "+1"), ("user", "phone_number_2", "+2"),
            ("device", "ios_advertising_id", "IDFA"), ("device", "push_token", "TOK"),
        ],
        key=repr,
    )
    assert q("SELECT name, value::VARCHAR FROM mpa_attributes") == [("Nickname", '"Five"')]


def test_values_read_as_text_exactly(lab, q, write):
    p = write("p.csv", 'mpid,customer_id,zip,flag,score\n'
                       '"0042",00123,02134,TRUE,1.50\n')
    lab.load(KIND, p)
    assert q("SELECT mpid FROM mpa_profiles") == [(42,)]
    assert q("SELECT value FROM mpa_identities") == [("00123",)]
    assert q("SELECT name, value::VARCHAR, value_bool FROM mpa_attributes") == [
        ("flag", '"TRUE"', True), ("score", '"1.50"', None), ("zip", '"02134"', None)
    ]


def test_a_header_with_spaces_after_its_commas_names_attributes_without_them(lab, q, write):
    """A hand-written "mpid, email, Power Users" header: the attribute is "Power Users", as the
    identity column is "email" (it was " Power Users", which no cohort attribute matches, and
    " true" was no boolean). Values keep their text."""
    p = write("p.csv", "mpid, email, Power Users\n1,a@x, true\n")
    lab.load(KIND, p, attributes="Power Users")
    assert q("SELECT name, value::VARCHAR, value_bool FROM mpa_attributes") == [("Power Users", '" true"', True)]
    assert q("SELECT identity_type, value FROM mpa_identities") == [("email", "a@x")]


def test_bad_rows_quarantined_with_line_numbers(lab, q, write):
    p = write("p.csv", "mpid,email\n"        # line 1: header
                       "1,a@x\n"             # 2
                       ",b@x\n"              # 3 missing
                       "1.5,c@x\n"           # 4
                       "abc,d@x\n"           # 5
                       "9223372036854775808,e@x\n"  # 6
                       '" 7",f@x\n'          # 7 space
                       "9.08e18,g@x\n"       # 8
                       "-9223372036854775808,h@x\n")  # 9 ok
    r = lab.load(KIND, p)
    assert (r.rows_read, r.loaded, r.deduplicated, r.n_quarantined) == (8, 2, 0, 6)
    assert q("SELECT line, reason FROM rejects") == [
        (3, "missing_mpid"), (4, "invalid_mpid"), (5, "invalid_mpid"), (6, "invalid_mpid"),
        (7, "invalid_mpid"), (8, "invalid_mpid"),
    ]
    assert q("SELECT raw FROM rejects WHERE line = 4") == [('{"mpid":"1.5","email":"c@x"}',)]
    assert q("SELECT mpid, line FROM mpa_profiles") == [(-9223372036854775808, 9), (1, 2)]


def test_no_mpid_column_is_a_load_error_naming_file_and_columns(lab, write):
    p = write("p.csv", "id,email\n1,a@x\n")
    with pytest.raises(LoadError) as e:
        lab.load(KIND, p)
    msg = str(e.value)
    assert str(p) in msg and "'mpid'" in msg and "id, email" in msg


def test_mpid_column_option(lab, q, write):
    p = write("p.csv", "mParticle ID,email\n-5,a@x\n")
    lab.load(KIND, p, mpid_column="mParticle ID")
    assert q("SELECT mpid FROM mpa_profiles") == [(-5,)]
    assert q("SELECT identity_type, value FROM mpa_identities") == [("email", "a@x")]


def test_attributes_option_restricts(lab, q, write):
    p = write("p.csv", "mpid,email,plan,Power Users,internal_note\n1,a@x,pro,true,secret\n")
    lab.load(KIND, p, attributes="Power Users, plan")
    assert q("SELECT name FROM mpa_attributes") == [("Power Users",), ("plan",)]
    assert q("SELECT identity_type FROM mpa_identities") == [("email",)]


def test_attributes_option_empty_loads_none(lab, q, write):
    lab.load(KIND, write("p.csv", "mpid,email,plan\n1,a@x,pro\n"), attributes="")
    assert q("SELECT count(*) FROM mpa_attributes") == [(0,)]
    assert q("SELECT count(*) FROM mpa_identities") == [(1,)]


def test_attributes_option_unknown_column_is_a_load_error(lab, write):
    p = write("p.csv", "mpid,plan\n1,pro\n")
    with pytest.raises(LoadError, match="Power Users"):
        lab.load(KIND, p, attributes=["Power Users"])


def test_unknown_option_is_refused(lab, write):
    with pytest.raises(ValueError, match="unknown option"):
        lab.load(KIND, write("p.csv", "mpid\n1\n"), delimiter=";")


def test_duplicates_last_wins_and_later_load_replaces(lab, q, write):
    a = write("a.csv", "mpid,customer_id,plan\n1,c1,free\n2,c2,free\n1,c1b,pro\n")
    r = lab.load(KIND, a)
    assert (r.rows_read, r.loaded, r.deduplicated) == (3, 2, 1)
    assert q("SELECT mpid, value, line FROM mpa_identities") == [(1, "c1b", 4), (2, "c2", 3)]
    # a later snapshot replaces MPID 1 entirely (empty cells: no identity, no attribute)
    b = write("b.csv", "mpid,customer_id,email,plan\n1,,x@y,\n")
    lab.load(KIND, b)
    assert q("SELECT mpid, identity_type, value FROM mpa_identities") == [(1, "email", "x@y"), (2, "customer_id", "c2")]
    assert q("SELECT mpid, name, value::VARCHAR FROM mpa_attributes") == [(2, "plan", '"free"')]
    assert q("SELECT mpid, source_file FROM mpa_profiles") == [(1, str(b)), (2, str(a))]


@pytest.mark.other_kinds_first
def test_a_snapshot_taken_earlier_loaded_later_keeps_the_newer_rows(lab, q, write):
    # snapshots delivered out of order: per MPID the newest capture time wins, and a JSON
    # snapshot and a CSV one are compared alike (docs/loading.md#mparticle-profiles)
    newer = write("mar01.csv", "mpid,customer_id,Power Users\n1,c1,true\n")
    older = write("feb15.csv", "mpid,customer_id,Power Users\n1,c1-old,false\n2,c2,true\n")
    lab.load(KIND, newer, as_of="2026-03-01")
    r = lab.load(KIND, older, as_of="2026-02-15")
    assert (r.rows_read, r.loaded, r.deduplicated) == (2, 1, 1)
    assert q("SELECT mpid, value FROM mpa_identities") == [(1, "c1"), (2, "c2")]
    assert q("SELECT mpid, value_bool FROM mpa_attributes") == [(1, True), (2, True)]
    older_json = write("feb20.jsonl", '{"mpid": 1, "user_attributes": {"Power Users": "false"}}\n')
    r = lab.load("mparticle-profiles", older_json, as_of="2026-02-20")
    assert (r.loaded, r.deduplicated) == (0, 1)
    assert q("SELECT mpid, value_bool FROM mpa_attributes WHERE mpid = 1") == [(1, True)]


def test_only_a_header_is_a_load_error(lab, write):
    p = write("p.csv", "mpid,email\n")
    with pytest.raises(LoadError, match="empty") as e:
        lab.load(KIND, p)
    assert str(p) in str(e.value)


def test_gzip_csv(lab, q, write):
    p = write("p.csv.gz", "mpid,email\n1,a@x\n", gz=True)
    assert lab.load(KIND, p).loaded == 1


def test_mpid_round_trip(lab, q, write, mparticle_data_dir):
    text = (mparticle_data_dir / "profiles.csv").read_text()
    expected = {int(row["mpid"]) for row in csv.DictReader(io.StringIO(text))}
    edge = [-9223372036854775808, 9223372036854775807, 9080350317581165123, 9007199254740993]
    extra = write("edge.csv", "mpid\n" + "".join(f"{m}\n" for m in edge))
    lab.load(KIND, [mparticle_data_dir / "profiles.csv", extra])
    assert {m for (m,) in q("SELECT mpid FROM mpa_profiles")} == expected | set(edge)


def test_a_header_that_repeats_a_column_reads_its_first_column_and_warns(lab, q, write):
    # a spreadsheet export with a column pasted twice (the same name, or the same identity type /
    # attribute name once normalised): one value per name, the first column's, and a warning;
    # reading both stored the last column's value twice and lost the first
    p = write(
        "p.csv",
        "mpid,Power Users,email,Power Users,Email,plan ,plan,mpid\n"
        "7,true,a@x,false,b@x,pro,free,8\n",
    )
    r = lab.load(KIND, p)
    assert (r.rows_read, r.loaded, r.n_quarantined) == (1, 1, 0)
    assert q("SELECT mpid, identity_type, value FROM mpa_identities") == [(7, "email", "a@x")]
    assert q("SELECT mpid, name, value::VARCHAR, value_bool FROM mpa_attributes") == [
        (7, "Power Users", '"true"', True),
        (7, "plan", '"pro"', None),
    ]
    assert q("SELECT mpid FROM mpa_profiles") == [(7,)]
    assert len(r.warnings) == 1
    for shown in ("'Power Users' (column 4)", "'Email' (column 5)", "'plan' (column 7)", "'mpid' (column 8)"):
        assert shown in r.warnings[0]
    # a header without repeats does not warn
    assert lab.load(KIND, write("q.csv", "mpid,email,plan\n9,c@x,free\n")).warnings == []


def test_a_warehouse_unloads_null_spelling_is_no_value(lab, q, write):
    """A warehouse unload writes NULL as \\N (Snowflake's default, Hive, Spark text tables): such a
    cell is no identity and no attribute, as an empty one; an MPID \\N is missing. Read as text it
    gave every profile without a customer_id the customer_id \\N. Other spellings stay data."""
    p = write("unload.csv", "MPID,CUSTOMER_ID,EMAIL,POWER_USERS,PLAN\n"
                            "42,cust-1,\\N,true,\\N\n"
                            "43,\\N,b@example.com,\\N,NULL\n"
                            "\\N,cust-3,c@example.com,false,free\n"
                            '44,"\\N ",N,\\n,\\\\N\n')
    r = lab.load(KIND, p)
    assert (r.rows_read, r.loaded, r.n_quarantined) == (4, 3, 1)
    assert q("SELECT line, reason FROM rejects") == [(4, "missing_mpid")]
    assert q("SELECT mpid, identity_type, value FROM mpa_identities") == [
        (42, "customer_id", "cust-1"), (43, "email", "b@example.com"),
        (44, "customer_id", "\\N "), (44, "email", "N")]
    assert q("SELECT mpid, name, value FROM mpa_attributes") == [
        (42, "POWER_USERS", '"true"'), (43, "PLAN", '"NULL"'),
        (44, "PLAN", '"\\\\\\\\N"'), (44, "POWER_USERS", '"\\\\n"')]


def test_a_header_repeated_where_joined_parts_began_is_skipped_with_a_warning(lab, q, write):
    """CSV files unloaded in parts and joined (cat part_*.csv) repeat the header where each part
    began (with the spaces, quotes or byte order mark the part wrote): such a row is no record,
    skipped (neither read nor quarantined) with one warning naming the file and the first line;
    --strict refuses the file. A row that only starts like the header is a record."""
    from cohortlab.errors import StrictLoadError

    text = ("mpid;email;Power Users\n"
            "7;a@example.com;true\n"
            '\ufeffmpid; "email" ;Power Users\n'
            "8;b@example.com;false\n"
            "mpid;email;Power Users\n"
            "mpid;email;plan\n")
    p = write("joined.csv", text)
    r = lab.load(KIND, p)
    assert (r.rows_read, r.loaded, r.n_quarantined) == (3, 2, 1)
    assert q("SELECT mpid, line FROM mpa_profiles") == [(7, 2), (8, 4)]
    assert q("SELECT line, reason FROM rejects") == [(6, "invalid_mpid")]
    assert len(r.warnings) == 1
    assert "joined.csv" in r.warnings[0] and "repeats on 2 line(s), first on line 3" in r.warnings[0]
    with pytest.raises(StrictLoadError, match="header line repeats"):
        lab.load(KIND, write("again.csv", text.replace("7;", "9;")), strict=True)


def test_an_excel_sep_line_before_the_header_names_the_delimiter(lab, q, write):
    """Excel's hint line "sep=X" (the whole first line, X one character) is skipped and X is the
    delimiter; rows keep their physical line (the header is line 2). Without the hint the header
    would be read as the columns "sep=" and "" and the file refused (no mpid column)."""
    p = write("excel.csv", "sep=;\nmpid;email;Plan, tier\n7;a@example.com;pro, 1\n\\N;b@example.com;free\n")
    r = lab.load(KIND, p)
    assert (r.rows_read, r.loaded, r.n_quarantined, r.warnings) == (2, 1, 1, [])
    assert q("SELECT mpid, line FROM mpa_profiles") == [(7, 3)]
    assert q("SELECT mpid, identity_type, value FROM mpa_identities") == [(7, "email", "a@example.com")]
    assert q("SELECT name, value FROM mpa_attributes") == [("Plan, tier", '"pro, 1"')]
    assert q("SELECT line, reason FROM rejects") == [(4, "missing_mpid")]


def test_a_byte_order_mark_after_the_sep_line_is_no_part_of_the_first_name(lab, q, write):
    """A BOM right after the "sep=" hint line is dropped like one at the start of the file: the
    first column is "mpid" and the file loads."""
    r = lab.load(KIND, write("bom.csv", "sep=;\n\ufeffmpid;email\n7;a@example.com\n"))
    assert (r.loaded, r.n_quarantined, r.warnings) == (1, 0, [])
    assert q("SELECT mpid, line FROM mpa_profiles") == [(7, 3)]


def test_identity_cells_written_as_the_text_null_load_with_a_warning(lab, q, write):
    """Some exports write an SQL NULL as the text NULL (SQL Server Management Studio; a
    NULL_IF=('NULL') unload): read exactly, every profile without a customer_id held the identity
    customer_id NULL, without a word. The cells still load as written (identities are
    exact), now with a warning naming the identity types, the count and the first line, never a
    value; an attribute NULL is a value like any other (no warning); --strict refuses the file."""
    from cohortlab.errors import StrictLoadError

    text = "mpid,customer_id,email,plan\n1,NULL,a@example.com,NULL\n2,c2,null,pro\n3,NULL,b@example.com,free\n"
    r = lab.load(KIND, write("p.csv", text))
    assert q("SELECT mpid, identity_type, value FROM mpa_identities") == [
        (1, "customer_id", "NULL"), (1, "email", "a@example.com"), (2, "customer_id", "c2"), (2, "email", "null"),
        (3, "customer_id", "NULL"), (3, "email", "b@example.com")]
    assert [w.split(": ", 1)[1] for w in r.warnings] == [
        "3 identity cell(s) are the text NULL (customer_id, email; line 2): an SQL NULL written as text? Loaded "
        "as written, so each such profile holds that identity; export with NULL as an empty field or \\N, which "
        "are no value"]
    with pytest.raises(StrictLoadError, match="the text NULL"):
        lab.load(KIND, write("s.csv", text.replace("pro", "max")), strict=True)
    assert lab.load(KIND, write("a.csv", "mpid,customer_id,plan\n4,c4,NULL\n")).warnings == []


def test_a_quote_never_closed_is_refused_naming_the_line_it_opened_on(lab, write, table_snapshot):
    before = table_snapshot()
    for text, line in (("mpid,email,plan\n1,a@example.com,pro\n123,\"abc\n", 3),
                       ("sep=,\nmpid,email,plan\n1,a@example.com,pro\n123,\"abc,free\n2,b@example.com,free\n", 4)):
        f = write("profiles.csv", text)
        with pytest.raises(LoadError) as e:
            lab.load(KIND, f)
        assert str(e.value) == (f'{f}: line {line}: a quote (") opened on this line is never closed, so everything '
                                'after it, to the end of the file, was read as one field; close it, or write a '
                                'quote inside a quoted value as ""')
    assert table_snapshot() == before
    f = write("profiles.csv", 'sep=,\nmpid,"email\n1,a@example.com\n')  # in the header (after Excel's line)
    with pytest.raises(LoadError) as e:
        lab.load(KIND, f)
    assert str(e.value) == (f'{f}:2: the header line: a quote (") opened on this line is never closed, so '
                            'everything after it, to the end of the file, was read as one field; close it, or '
                            'write a quote inside a quoted value as ""')
    assert table_snapshot() == before


def test_a_quote_inside_a_header_name_is_a_character_not_a_quote_never_closed(lab, q, write, balanced):
    """A quote opens a quoted field only at the start of a field (DuckDB, RFC 4180): the attribute
    size (in") loads as written (it was refused as a quote never closed in the header line); a
    quoted name spanning lines, and a quote never closed opening a name, are as before."""
    r = balanced(lab.load(KIND, write("h.csv", 'mpid,customer_id,size (in")\n1,c1,5\n2,c2,"6"\n')))
    assert (r.rows_read, r.loaded) == (2, 2)
    assert q("SELECT mpid, name, value::VARCHAR FROM mpa_attributes") == [(1, 'size (in")', '"5"'),
                                                                         (2, 'size (in")', '"6"')]
    lab.load(KIND, write("m.csv", 'mpid,"size\n(in "")"\n3,7\n'))
    assert q("SELECT name FROM mpa_attributes WHERE mpid = 3") == [('size\n(in ")',)]
    f = write("bad.csv", 'mpid,size (in"),"plan\n4,5,pro\n')
    with pytest.raises(LoadError) as e:
        lab.load(KIND, f)
    assert str(e.value).startswith(f'{f}:1: the header line: a quote (") opened on this line is never closed')


def test_a_header_name_quoted_after_one_space_is_one_column_as_duckdb_reads_it(lab, q, write):
    """mpid, "Plan, tier": DuckDB opens the quote after one space (CsvQuotes); csv.reader split
    the header into 3 names (a ragged row) and kept ' "x"' for a quoted name with no comma."""
    p = write("p.csv", 'mpid, "Plan, tier", "x"\n1,pro,y\n')
    lab.load(KIND, p)
    assert q("SELECT name, value::VARCHAR FROM mpa_attributes") == [("Plan, tier", '"pro"'), ("x", '"y"')]


def test_the_delimiter_is_counted_outside_quoted_names(lab, q, write):
    """mpid,"Plan; tier; level": the ; inside the quoted name outnumbered the one , and the file
    was read as a ; file ("no 'mpid' column"; red team); DuckDB reads it as a , file."""
    lab.load(KIND, write("d.csv", 'mpid,"Plan; tier; level"\n123,pro\n'))
    assert q("SELECT mpid, name, value::VARCHAR FROM mpa_attributes") == [(123, "Plan; tier; level", '"pro"')]


def test_a_parquet_or_json_file_is_named_for_what_it_is(lab, write, tmp_path, table_snapshot):
    """A Parquet or JSON file given to mparticle-csv: its bytes were read as a CSV header
    ("no 'mpid' column; columns found: PAR1..." or "columns found: ["); the error says what the
    file is and which kind reads it, and nothing is loaded."""
    import pandas as pd

    before = table_snapshot()
    parquet = tmp_path / "p.parquet"
    pd.DataFrame({"mpid": [5]}).to_parquet(parquet)
    with pytest.raises(LoadError, match=r"p\.parquet: a Parquet file \(PAR1 header\), not a CSV: load it with "
                                        r"mparticle-parquet"):
        lab.load(KIND, parquet)
    with pytest.raises(LoadError, match=r"a\.json: JSON, not a CSV \(the file starts with '\['\): load Profile API "
                                        r"answers with mparticle-profiles, Events API batches with mparticle-batches"):
        lab.load(KIND, write("a.json", '\ufeff [{"mpid": 5}]'))
    gz = tmp_path / "p.parquet.gz"  # gzip is detected by content: the Parquet inside is named too
    gz.write_bytes(__import__("gzip").compress(parquet.read_bytes()))
    with pytest.raises(LoadError, match=r"p\.parquet\.gz: a Parquet file \(PAR1 header\), not a CSV"):
        lab.load(KIND, gz)
    assert table_snapshot() == before
    # a CSV header that begins with a bracket is a CSV header
    r = lab.load(KIND, write("brackets.csv", "[mpid],email\n5,a@x.io\n"), mpid_column="[mpid]")
    assert r.loaded == 1
