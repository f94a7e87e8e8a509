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


NATIONAL_PHONES = ["07700 900123", "(415) 555-0123", "415-555-0123", "415.555.0123", " 0170 1234567 "]
NOT_PHONES = ["07700900123",             # plain digits: an MPID could be written so (known values catch it)
              "2026-03-01", "2026-03-01 12:00",   # dates
              "-7346244611012968789", "9080350317581165000.0", "9.08e+18",  # MPIDs and their float spellings
              "cust-1000040", "123-456", "12 34", "2f4e4d4c-3ce7-466c", "$device:ab12", "undefined", ""]


def shown_by_sql(personal: list[str], not_personal: list[str]) -> dict[str, str]:
    """Each value as ``Redactor.sql`` shows it in DuckDB (key "k"), checked: the personal ones
    as their pseudonyms, the others as they are; and Python's ``looks_personal`` agrees."""
    assert all(looks_personal(v) for v in personal)
    assert not any(looks_personal(v) for v in not_personal)
    con = duckdb.connect()
    con.execute("CREATE TABLE v AS SELECT unnest(?) AS v", [personal + not_personal])
    got = dict(con.execute(f"SELECT v, {Redactor(key='k').sql('v')} FROM v").fetchall())
    assert got == {**{v: pseudonym(v, "k") for v in personal}, **{v: v for v in not_personal}}
    return got


def test_a_whole_value_shaped_like_a_national_phone_number_is_personal_in_python_and_sql():
    """A phone typed into an identifier field (a junk $mparticle_user_id) without "+": 7 to 15
    digits with a space, dash or parentheses between them, or dotted 3.3.4; never a date, an
    MPID or its float spelling."""
    shown_by_sql(NATIONAL_PHONES, NOT_PHONES)
    r = Redactor(key="k")
    # inside a sentence only known values are replaced: dates and counts take the same shape
    assert r.text("between 2026-02-23 00:00 and 2026-03-01 12:00, 1 000 000 runs") == (
        "between 2026-02-23 00:00 and 2026-03-01 12:00, 1 000 000 runs")


def test_an_error_masks_a_north_american_national_phone_number_and_nothing_that_only_resembles_one():
    """masked_text (every error that quotes data) masked emails and "+" numbers, but printed a
    national phone number in clear ("the header has ['415-555-0123']") although the product
    counts it as personal: the 3-3-4 shape with dashes or dots, or parentheses, is masked; dates,
    times, MPIDs, counts, versions, addresses, line:column numbers and durations stay."""
    from cohortlab.privacy import masked_text

    assert masked_text("the header has ['415-555-0123', '2026-03-01T00:00:00Z']") == (
        "the header has ['<phone number>', '2026-03-01T00:00:00Z']")
    assert masked_text("call (415) 555-0123.") == "call <phone number>."
    assert masked_text("x=(415)555-0123; y=415.555.0123, z=1-415-555-0123") == (
        "x=<phone number>; y=<phone number>, z=<phone number>")
    assert masked_text("user 415-555-0123 / <email> / +14155550123") == "user <phone number> / <email> / <phone number>"
    kept = ["2026-03-01T00:00:00Z", "2026-03-01 12:34:56.789", "h.csv:12:34", "-7346244611012968789",
            "9080350317581165448", "1,234,567 bytes", "2.000.000 rows", "cohortlab 1.2.3", "10.100.200.1000",
            "3.5 s", "00:01:02.345", "8f2c1e4a-7b7d-4d0e-9c55-2a1f3b9e0c01", "555-0123", "1234-567-8901",
            "415-555-01234", "0415-555-0123", "415-555.0123", "cust-415-555-0123", "415-555-0123-9",
            "07700 900123", "415 555 0123", "2026-555-0123"]
    assert [masked_text(t) for t in kept] == kept


HOLDING_A_PHONE = ["Call back +44 7700 900123", "VIP (+1 (415) 555-0123)", "sms:+447700900124;x",
                   "list +33 6 12 34 56 78 March"]
NOT_HOLDING_ONE = ["+150000 users", "+1,234,567 members", "+12) 2026-02-15 00:00 UTC", "+5 (12.5%) since",
                   "Buyers 2026-02-15", "cust+1234567"]


def test_a_text_holding_an_international_phone_number_is_personal_in_python_and_sql():
    """A cohort named "Call back +44 7700 900123" was shown in clear everywhere the name is (only a
    name holding an email was a pseudonym, and only a phone the database knows was replaced inside
    a text): a "+" and at least 8 digits, at most two separators between two of them, not a date,
    make a text personal as a whole, and inside a sentence the number alone is replaced. Fewer
    digits are a count; a date among the digits is a time."""
    shown_by_sql(HOLDING_A_PHONE, NOT_HOLDING_ONE)
    r = Redactor(key="k")
    assert r.text("members of Call back +44 7700 900123 left; +150000 users, +12) 2026-02-15") == (
        f"members of Call back {pseudonym('+44 7700 900123', 'k')} left; +150000 users, +12) 2026-02-15")
    assert r.text("+1 (415) 555-0123.") == pseudonym("+1 (415) 555-0123", "k") + "."


SPELLED_OTHERWISE = ["+44\u00a07700\u00a0900321",      # no-break spaces
                     "+1\u2009415\u2009555\u20090142",  # thin spaces
                     "\t+44 7700 900123", "\x0b+44 7700 900124", "(415)\u202f555-0111",
                     "tel:+14155550111", "%2B447700900789", "carol%40example.com",  # a link, a URL
                     "frank\uff20example.com", "\uff0b44 7700 900125"]              # full-width @ and +


def test_other_spellings_of_emails_and_phones_are_personal_in_python_and_sql_alike():
    """Python's \\s knows every Unicode space, RE2's (SQL) only the ASCII ones: a phone written
    with no-break spaces was a pseudonym in a report and in clear in --members-out. Percent-encoded
    and tel: spellings, and full-width @/+, are the same values."""
    got = shown_by_sql(SPELLED_OTHERWISE, NOT_PHONES)
    r = Redactor(key="k")
    assert [r.value(v) for v in SPELLED_OTHERWISE] == [got[v] for v in SPELLED_OTHERWISE]


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


def test_a_phone_typed_as_mparticle_user_id_is_a_pseudonym_in_the_junk_values_table():
    """The identity-gaps page lists the most frequent junk $mparticle_user_id values: a phone
    number typed there is shown as its pseudonym, with or without "+"."""
    from cohortlab.report import metrics

    res = pd.DataFrame({"cohort_name": "A", "distinct_id": ["u1", "u2", "u3"],
                        "identifier_source": "mparticle_user_id",
                        "identifier": ["07700 900123", "+447700900456", "undefined"],
                        "gap_reason": "malformed_mparticle_user_id", "status": "unmatched"})
    junk = Redactor(key="k").frame(metrics.junk_values(res))
    assert sorted(junk["identifier"]) == sorted([pseudonym("07700 900123", "k"), pseudonym("+447700900456", "k"),
                                                 "undefined"])


def test_a_pseudonym_key_the_user_keeps_gives_the_same_pseudonyms_in_every_database(tmp_path, monkeypatch):
    # docs/reports.md#stable-pseudonyms: each `report --data` run loads a new database with a new
    # random key, so a cohort named after an email got a new pseudonym every run;
    # COHORTLAB_PSEUDONYM_KEY, when set, wins over every database's key
    import pytest

    from cohortlab.errors import SettingsError
    from cohortlab.privacy import KEY_ENV, pseudonym_sql

    key = "0123456789abcdef-kept"
    monkeypatch.setenv(KEY_ENV, key)
    seen = []
    for name in ("a.duckdb", "b.duckdb"):
        with Lab(tmp_path / name) as lab:
            seen.append(Redactor.for_engine(lab.engine).value("ann@example.com"))
            assert lab.engine.query_rows(f"SELECT {pseudonym_sql(chr(39) + 'ann@example.com' + chr(39), key)}") == [
                (seen[-1],)]
    assert seen[0] == seen[1] == pseudonym("ann@example.com", key) == Redactor().value("ann@example.com")
    monkeypatch.setenv(KEY_ENV, "")  # empty: unset, each database's own key again
    with Lab(tmp_path / "a.duckdb") as lab:
        own = Redactor.for_engine(lab.engine).value("ann@example.com")
    assert own != seen[0] and own.startswith("anon-")
    monkeypatch.setenv(KEY_ENV, "0123456789abcde")  # 15 characters: guessable, refused
    with Lab(tmp_path / "a.duckdb") as lab, pytest.raises(SettingsError, match="15 character.*at least 16"):
        Redactor.for_engine(lab.engine)


def test_a_note_naming_a_personal_cohort_shows_the_names_pseudonym_not_one_for_the_whole_note():
    """A cohort named after an email made every note that names it (a remedy's "how it was
    simulated", a waterfall step's label, an attribute "Mixpanel - NAME") one pseudonym for the
    whole sentence: the page's cells were anon-… each, unreadable and unlike the cohort's own
    pseudonym. A cell that is not an identifier now has its personal parts replaced, a personal
    cohort name whole (the notebooks' Redactor knows the names); an identifier column is still
    replaced whole, and so is a cell personal only as a whole (a national phone number)."""
    name = "VIP list of alice.smith@example.com +14155550123"
    r = Redactor(key="k" * 32).with_personal_names([name, "Power Users", None])
    assert r.known == frozenset({name})  # only the personal names
    anon = pseudonym(name, r.key)
    df = pd.DataFrame({
        "distinct_id": ["bob@example.com", "cust-1"],
        "cohort_name": [name, "Power Users"],
        "note": [f"{name}: writes $mparticle_user_id from 2026-01-15", "a remedy of bob%40example.com."],
        "label": ["07700 900123", "x"],
        "attribute": [f"Mixpanel - {name}", "Power Users"],
    })
    out = r.frame(df)
    assert out.distinct_id.tolist() == [pseudonym("bob@example.com", r.key), "cust-1"]
    assert out.cohort_name.tolist() == [anon, "Power Users"]
    assert out.note.tolist() == [f"{anon}: writes $mparticle_user_id from 2026-01-15",
                                 f"a remedy of {pseudonym('bob%40example.com', r.key)}."]  # another spelling too
    assert out.label.tolist() == [pseudonym("07700 900123", r.key), "x"]  # personal as a whole only: whole
    assert out.attribute.tolist() == [f"Mixpanel - {anon}", "Power Users"]
    assert r.in_text(f"carries 'Mixpanel - {name}' = true instead") == f"carries 'Mixpanel - {anon}' = true instead"
    # without the names known, the parts are replaced, never shown
    plain = Redactor(key=r.key).in_text(f"{name}: writes")
    assert "alice" not in plain and "4155550123" not in plain and plain.endswith(": writes")


# every separator a phone number was written with that the patterns did not know (security review):
# the dashes U+2010-U+2015 and the minus sign, a middle dot, a slash, an underscore
OTHER_SEPARATORS = ["\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2015", "\u2212", "\u00b7", "/", "_"]
# invisible characters: a soft hyphen, zero-width space, non-joiner, joiner, word joiner, byte-order mark
INVISIBLE = ["\u00ad", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]


def test_a_phone_number_with_any_separator_is_personal_and_masked_in_python_and_sql():
    """`+44–7700–900123` (an en dash) was neither personal nor masked, in a cohort's name it was in
    clear in every report file: each dash, the minus sign, a middle dot, a slash and an underscore
    separate a phone's digits as a space does, whole, inside a text, in an error and in SQL."""
    from cohortlab.privacy import masked_text

    for sep in OTHER_SEPARATORS:
        whole, named = f"+44{sep}7700{sep}900123", f"Call back +44{sep}7700{sep}900123"
        shown_by_sql([whole, named], NOT_PHONES)
        assert masked_text(f"cohort '{named}' is unknown") == "cohort 'Call back <phone number>' is unknown", sep
        assert masked_text(f"({whole})") == "(<phone number>)", sep
        r = Redactor(key="k")
        assert r.text(f"members of {named} left") == f"members of Call back {pseudonym(whole, 'k')} left", sep
    # national North-American shapes in an error, with an en dash or a minus sign as with a dash
    assert masked_text("the header has ['415\u2013555\u20130123']") == "the header has ['<phone number>']"
    assert masked_text("x=415\u2212555\u22120123.") == "x=<phone number>."


def test_a_phone_number_with_invisible_characters_is_personal_and_masked_whole():
    """`+1 415 555\\u200b0123` was masked only in part (`<phone number>\\u200b0123`), and
    `+4\\u200b4 7700 900 123` not at all: an invisible character is read as not there."""
    from cohortlab.privacy import masked_text

    for inv in INVISIBLE:
        tail, split = f"+1 415 555{inv}0123", f"+4{inv}4 7700 900 123"
        shown_by_sql([tail, split, f"ann{inv}@example.com"], NOT_PHONES)
        assert masked_text(f"user {tail} left") == "user <phone number> left", repr(inv)
        assert masked_text(f"user {split}; next") == "user <phone number>; next", repr(inv)
        r = Redactor(key="k")
        assert r.text(f"user {tail} left") == f"user {pseudonym(tail, 'k')} left", repr(inv)
        assert r.text(f"user {split}.") == f"{'user'} {pseudonym(split, 'k')}.", repr(inv)
    # invisible characters outside a number are kept as written
    assert masked_text("a\u200bb +44 7700\u200b900123 c\ufeff") == "a\u200bb <phone number> c\ufeff"


def test_an_email_with_a_quoted_local_part_is_masked_as_it_is_personal():
    """looks_personal said '"a b"@example.com' is personal, masked_text left it in clear."""
    from cohortlab.privacy import masked_text

    assert looks_personal('"a b"@example.com')
    assert masked_text('x "a b"@example.com y') == "x <email> y"
    assert masked_text('header ["a b"@example.com, "ok"]') == 'header [<email>, "ok"]'
    assert Redactor(key="k").text('x "a b"@example.com y') == f"x {pseudonym(chr(34) + 'a b' + chr(34) + '@example.com', 'k')} y"


EN_DASH_LOOKALIKES = ["2026\u201303\u201301", "2026\u201303\u201301\u20132026\u201303\u201307", "10\u201320",
                      "9080350317581165448\u20139080350317581165449", "1.2.3\u20131.2.4", "v2026\u20131",
                      "+12) 2026\u201302\u201315 00:00 UTC", "+12) 2026/02/15 00:00 UTC", "+5 2026_02_15 runs",
                      "h.csv:12\u201334", "+150000 \u2013 users"]


def test_look_alikes_written_with_en_dashes_stay_as_they_are():
    """Dates, ranges of counts or MPIDs, versions and line numbers written with an en dash (or a
    date after a '+' count with slashes or underscores) are not phone numbers: neither personal
    nor masked, and shown as written."""
    from cohortlab.privacy import masked_text

    shown_by_sql([], EN_DASH_LOOKALIKES)
    # a date is a year, a month and a day: "1512-34-56" among a phone's digits is not one
    shown_by_sql(["+49 1512-34-56789", "+49 1512/34/56789", "Ring +49 1512\u201334\u201356789"], [])
    assert [masked_text(t) for t in EN_DASH_LOOKALIKES if not t.startswith("+")] == [
        t for t in EN_DASH_LOOKALIKES if not t.startswith("+")]
    sentence = "from 2026\u201303\u201301 to 2026\u201303\u201307, 10\u201320 users, MPIDs 9080350317581165448\u20139080350317581165449"
    assert masked_text(sentence) == sentence
    assert Redactor(key="k").text(sentence) == sentence


def test_a_full_width_plus_number_with_spaces_and_an_address_literal_email_are_masked_in_errors():
    """looks_personal said both are personal; masked_text (load errors, a report's data source)
    showed them in clear: the word '＋44' alone is no number, and a domain in brackets was no
    domain (red team)."""
    from cohortlab.privacy import masked_path, masked_text

    assert looks_personal("\uff0b44 7700 900123") and looks_personal("ceo@[10.0.0.1]")
    assert masked_text("error: pf/\uff0b44 7700 900124.jsonl: unrecognised format") == (
        "error: pf/<phone number>.jsonl: unrecognised format")
    assert masked_path("data/dsar \uff0b44 7700 900123/world") == "data/dsar <phone number>/world"
    assert masked_text("warning: pf/ceo@[10.0.0.1].jsonl: every record") == "warning: pf/<email>.jsonl: every record"
    assert masked_text("to a@[IPv6:2001:db8::1], then") == "to <email>, then"
    assert masked_text("\uff0b44 users, [a, b]@x") == "\uff0b44 users, [a, b]@x"
    for not_an_email in ("x@[0]", "e.g. $.members@[0] bad", 'tags@["a","b"]', '["a@[x]"]', "http://u:pw@[::1]:3128"):
        assert masked_text(not_an_email) == not_an_email  # brackets that are no address literal (red team)
    assert Redactor(key="k").text("user \uff0b44 7700 900123 left") == (
        f"user {pseudonym(chr(0xff0b) + '44 7700 900123', 'k')} left")


def test_long_texts_are_read_in_a_time_linear_in_their_length():
    """A word of 20,000 characters took 4 s in masked_text and '1-' 10,000 times 2 s in
    looks_personal: the patterns were tried from every position of the word (red team). The
    same texts read now in milliseconds; counted by characters, not timed: 200,000 must not
    take the 400 s the square of the length would."""
    import time

    from cohortlab.privacy import masked_text

    words = ["a" * 200_000, "1" * 200_000, "1-" * 100_000, "x" * 100_000 + "%40" + "y" * 100_000,
             "a" * 200_000 + " x@y.com", "1" + " " * 200_000 + "1"]
    start = time.process_time()
    shown = [masked_text(w)[-12:] for w in words]
    personal = [looks_personal(w) for w in words]
    assert time.process_time() - start < 20  # quadratic: hours
    assert shown == ["a" * 12, "1" * 12, "1-" * 6, "<email>", "aaaa <email>", " " * 11 + "1"]
    assert personal == [False, False, False, True, True, False]
    # the same emails as the pattern tried everywhere, also where a domain stops inside a run
    assert masked_text("com@example.com.@90012312") == "<email><email>"
    assert masked_text("a@b.c.@john@doe.com") == "<email><email>@doe.com"
