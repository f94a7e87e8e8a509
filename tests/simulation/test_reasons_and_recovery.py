"""Reasons and recovery (docs/rules.md): distinct_id_is_identity, recoverable_via through the MPID
itself, user and device identities, ambiguity, precision loss in float spellings, audiences on
``= false`` and the assumption ranges. Tiny hand-built worlds, expected values written out."""

import pandas as pd
import pytest

C = "Power Users"
BIG = 9080350317581165123  # above 2^53: float(BIG) = 9.080350317581166e+18 = 9080350317581165568.0


def outcomes(result):
    df = result.resolution.set_index("distinct_id")
    cols = ["gap_reason", "precision_loss_form", "recoverable_via", "recoverable_profiles"]
    return {d: tuple(None if pd.isna(v) else v for v in row) for d, row in df[cols].iterrows()}


def add_device(data, mpid, identity_type, value):
    data.engine.execute("INSERT INTO mpa_identities (mpid, kind, identity_type, value) VALUES (?, 'device', ?, ?)",
                        [mpid, identity_type, value])


@pytest.fixture
def world(data):
    data.mpa(7, customer_id="12345")
    data.mpa(101)
    data.mpa(BIG)
    data.mpa(8, email="shared@example.com").mpa(9, email="shared@example.com")
    data.mpa(10)
    add_device(data, 10, "ios_idfv", "ABC-DEF")
    data.mpa(11).mpa(12)
    add_device(data, 11, "android_uuid", "DUP")
    add_device(data, 12, "android_uuid", "DUP")
    data.profile("12345")  # a numeric customer id used as distinct_id (EIT customer_id)
    data.profile("99999")  # a numeric distinct_id that is nothing in mParticle
    data.profile("quoted", mparticle_user_id='"101"')  # junk whose digits name profile 101
    data.profile("float_text", mparticle_user_id="9.080350317581166e+18", history=True)
    data.profile("float_point", mparticle_user_id="9080350317581165568.0", history=True)
    data.profile("json_float", mparticle_user_id="9.080350317581166e+18", history=True,
                 mparticle_user_id_type="DOUBLE")
    data.profile("int_text", mparticle_user_id="9080350317581165568", history=True)
    data.profile("shared", mparticle_user_id="undefined", email="shared@example.com", history=True)
    for d in ("12345", "99999", "quoted"):  # keep one history for every profile
        data.profile(d, mparticle_user_id=None if d != "quoted" else '"101"', history=True)
    data.snapshot(C, "2026-03-01", ["12345", "99999", "quoted", "float_text", "float_point", "json_float",
                                    "int_text", "shared", "$device:ABC-DEF", "$device:DUP"])
    return data


def test_gap_reasons_forms_and_recovery(world):
    r = world.lab.simulate(C)
    assert outcomes(r) == {
        # gap_reason, precision_loss_form, recoverable_via, recoverable_profiles
        "12345": ("distinct_id_is_identity", None, "customer_id", 1),
        "99999": ("mpid_not_found", None, None, None),
        "quoted": ("malformed_mparticle_user_id", None, "mparticle_id", 1),
        "float_text": ("mpid_precision_loss", "float_text", "mparticle_id", 1),
        "float_point": ("mpid_precision_loss", "float_text", "mparticle_id", 1),
        "json_float": ("mpid_precision_loss", "json_float", "mparticle_id", 1),
        "int_text": ("mpid_precision_loss", "integer_text", None, None),  # its digits name no profile
        "shared": ("malformed_mparticle_user_id", None, None, 2),  # the email is held by two profiles
        "$device:ABC-DEF": ("distinct_id_not_mpid", None, "ios_idfv", 1),
        "$device:DUP": ("distinct_id_not_mpid", None, None, 2),
    }
    # the profile each recovery leads to, when one (the mParticle user behind the member)
    assert {d: (None if pd.isna(m) else int(m)) for d, m in zip(r.resolution.distinct_id, r.resolution.recoverable_mpid)} == {
        "12345": 7, "99999": None, "quoted": 101, "float_text": BIG, "float_point": BIG, "json_float": BIG,
        "int_text": None, "shared": None, "$device:ABC-DEF": 10, "$device:DUP": None}
    steps = dict(zip(r.waterfall.step, r.waterfall["count"]))
    assert steps["unmatched:distinct_id_is_identity"] == 1 and steps["unmatched:mpid_precision_loss"] == 4
    gaps = r.gap_summary[r.gap_summary.breakdown == "gap_reason"]
    assert int(gaps[gaps.recoverable_via == "mparticle_id"].members.sum()) == 4


def test_a_float_spelling_that_names_one_mpid_exactly_recovers_it_though_another_has_its_double(data):
    """BIG and BIG + 1 are one double. `9080350317581165123.0` spells BIG exactly: recovered
    through the MPID itself, one profile (it was null, 2 profiles, by its value as a double, while
    the junk `id:9080350317581165123` was recovered). `9.080350317581166e+18` names no MPID
    exactly: its double is held by both, so it names neither. Still precision loss, both."""
    data.mpa(BIG).mpa(BIG + 1)
    data.profile("exact", mparticle_user_id=f"{BIG}.0", history=True)
    data.profile("double", mparticle_user_id="9.080350317581166e+18", history=True)
    data.profile("junk", mparticle_user_id=f"id:{BIG}", history=True)
    data.snapshot(C, "2026-03-01", ["exact", "double", "junk"])
    r = data.lab.simulate(C)
    assert outcomes(r) == {
        "exact": ("mpid_precision_loss", "float_text", "mparticle_id", 1),
        "double": ("mpid_precision_loss", "float_text", None, 2),
        "junk": ("malformed_mparticle_user_id", None, "mparticle_id", 1)}
    # the remedies find the same user behind each (the profile a fix of $mparticle_user_id would reach)
    from cohortlab.simulation.remedies import persons_sql

    assert dict(data.engine.query_rows(persons_sql(r))) == {"exact": BIG, "double": None, "junk": BIG}


def test_the_remedies_reach_the_profile_the_recovery_finds_through_the_digits_of_a_float_spelling(data):
    """`12.5` names no MPID as a double, but its digits name MPID 125: recovered through the MPID
    itself, one profile. The remedies' person behind the member is that profile (they worked out
    the MPID again, by the double alone, and found nobody); `101.0` is MPID 101 by its double."""
    data.mpa(125).mpa(101)
    data.profile("f", mparticle_user_id="12.5", history=True)
    data.profile("g", mparticle_user_id="101.0", history=True)
    data.snapshot(C, "2026-03-01", ["f", "g"])
    r = data.lab.simulate(C)
    rec = r.resolution.set_index("distinct_id")
    assert rec.loc["f", "recoverable_via"] == "mparticle_id" and rec.loc["f", "recoverable_mpid"] == 125
    assert rec.loc["g", "recoverable_via"] == "mparticle_id" and rec.loc["g", "recoverable_mpid"] == 101
    from cohortlab.simulation.remedies import persons_sql

    assert dict(data.engine.query_rows(persons_sql(r))) == {"f": 125, "g": 101}


def test_a_device_id_is_one_identity_whatever_type_holds_it(data):
    """`$device:X` where X is the ios_idfv of profile 5 and the android_uuid of profile 1: the
    device id is held by two profiles, so it names neither (it was recovered through android_uuid,
    the first type by name, as if that type alone counted). A device id one profile holds under
    two types names it, by the first type's name."""
    data.mpa(5).mpa(1).mpa(3)
    add_device(data, 5, "ios_idfv", "X")
    add_device(data, 1, "android_uuid", "X")
    add_device(data, 3, "ios_idfv", "Y")
    add_device(data, 3, "android_uuid", "Y")
    for d in ("$device:X", "$device:Y"):
        data.profile(d)
    data.snapshot(C, "2026-03-01", ["$device:X", "$device:Y"])
    assert outcomes(data.lab.simulate(C)) == {"$device:X": ("distinct_id_not_mpid", None, None, 2),
                                              "$device:Y": ("distinct_id_not_mpid", None, "android_uuid", 1)}


def test_a_user_identity_recovers_before_a_device_identity_and_the_mpid_first(data):
    data.mpa(5, customer_id="$device:X")  # an odd customer id that looks like a device id
    data.mpa(6)
    add_device(data, 6, "ios_idfa", "X")
    data.profile("$device:X")
    data.snapshot(C, "2026-03-01", ["$device:X"])
    assert outcomes(data.lab.simulate(C)) == {"$device:X": ("distinct_id_not_mpid", None, "customer_id", 1)}


def test_audiences_on_false_are_reported_beside_true(data):
    for d, mpid in {"a": 1, "b": 2, "c": 3}.items():
        data.mpa(mpid)
        data.profile(d, mparticle_user_id=str(mpid))
    data.snapshot(C, "2026-03-01T00:00", ["a", "b", "c"])
    data.snapshot(C, "2026-03-01T00:10", ["c"])  # a and b leave: false is written on 1 and 2
    r = data.lab.simulate(C, at="2026-03-01T00:15")
    assert (r.audience, r.audience_false) == (1, 2)
    assert r.summary()["audience"] == 1 and r.summary()["audience_false"] == 2
    assert r.timeline.false_count.tolist() == [0, 2]


def test_assumption_ranges_show_the_audience_under_each_value(data):
    """One member reached only through the $distinct_id fallback (42), one through a property (a)."""
    data.mpa(42).mpa(1)
    data.profile("42")
    data.profile("a", mparticle_user_id="1")
    data.snapshot(C, "2026-03-01", ["42", "a"])
    df = data.lab.assumption_ranges(C)
    got = {(x.assumption, x.value): (x.audience, bool(x.is_current)) for x in df.itertuples()}
    assert got[("fallback", "data")] == (2, True)
    assert got[("fallback", "strict")] == (1, False)  # EIT customer_id: the fallback is refused
    assert got[("protection", "create_and_update")] == (2, False)
    assert got[("snapshot_ttl", "3d")] == (2, True) and got[("snapshot_ttl", "1d")] == (2, False)
    assert set(df.assumption) == {"fallback", "event_identity_cutoff", "protection", "apply_order", "snapshot_ttl",
                                  "refresh_clears_stale", "resolution_time"}
    changes = df.groupby("assumption").changes.first().to_dict()
    assert changes["fallback"] and not changes["apply_order"] and not changes["resolution_time"]
    fb = df[df.assumption == "fallback"].iloc[0]
    assert (fb.min_audience, fb.max_audience) == (1, 2)


@pytest.mark.parametrize("properties", ["none", "all"])
@pytest.mark.parametrize("layout", ["jsonl", "array"])
def test_a_json_float_on_an_event_is_json_float_whichever_properties_option(tmp_path, properties, layout):
    """Loaded from files: the loader keeps the JSON type of an event's $mparticle_user_id even
    when the properties are not stored (properties=none), so the form is json_float, as on a
    profile; a float spelled as a string stays float_text."""
    from cohortlab import Lab

    (tmp_path / "mpa.jsonl").write_text('{"mpid": %d, "user_identities": [], "user_attributes": {}}\n' % BIG)
    (tmp_path / "profiles.jsonl").write_text('{"$distinct_id": "ev_json"}\n{"$distinct_id": "ev_text"}\n')
    events = ['{"event": "e", "properties": {"time": 1771000000, "distinct_id": "ev_json", '
              '"$mparticle_user_id": 9.080350317581166e+18}}',
              '{"event": "e", "properties": {"time": 1771000000, "distinct_id": "ev_text", '
              '"$mparticle_user_id": "9.080350317581166e+18"}}']
    (tmp_path / "events.json").write_text("\n".join(events) + "\n" if layout == "jsonl" else "[" + ",".join(events) + "]")
    (tmp_path / "members.jsonl").write_text('{"$distinct_id": "ev_json"}\n{"$distinct_id": "ev_text"}\n')
    with Lab() as lab:
        lab.load("mparticle-profiles", tmp_path / "mpa.jsonl")
        lab.load("mixpanel-profiles", tmp_path / "profiles.jsonl")
        lab.load("mixpanel-events", tmp_path / "events.json", properties=properties)
        lab.load("mixpanel-members", tmp_path / "members.jsonl", cohort=C, as_of="2026-03-01T00:00:00Z")
        got = outcomes(lab.simulate(C))
    assert got == {"ev_json": ("mpid_precision_loss", "json_float", "mparticle_id", 1),
                   "ev_text": ("mpid_precision_loss", "float_text", "mparticle_id", 1)}


@pytest.mark.parametrize("schematized", [False, True], ids=["json_pipeline", "schematized"])
@pytest.mark.parametrize("layout", ["jsonl", "array"])
def test_data_pipelines_exports_keep_json_float_tokens_and_their_json_type(tmp_path, schematized, layout):
    """Data Pipelines exports, in the JSON-pipeline layout (``properties``) and in the schematized
    one (``mp_mparticle_user_id`` columns): a JSON-float $mparticle_user_id keeps its exported
    token and is json_float on an event and on a profile, also beside a nested key of another
    value; a distinct_id written as a JSON float keeps its token, so two spellings of one
    number stay two members."""
    from cohortlab import Lab

    def mpuid(value: str) -> str:  # where the layout writes $mparticle_user_id
        return f'"mp_mparticle_user_id": {value}' if schematized else f'"properties": {{"$mparticle_user_id": {value}, "x": {{"$mparticle_user_id": 5}}}}'

    def doc(records: list[str]) -> str:
        return "\n".join(records) + "\n" if layout == "jsonl" else "[\n" + ",\n".join(records) + "\n]"

    (tmp_path / "mpa.jsonl").write_text('{"mpid": %d, "user_identities": [], "user_attributes": {}}\n' % BIG)
    (tmp_path / "people.json").write_text(doc([
        '{"distinct_id": "prof", %s}' % mpuid("9.080350317581166e+18"),
        '{"distinct_id": "ev"}',
        '{"distinct_id": 9080350317581165123.0}', '{"distinct_id": 9.080350317581165123e18}']))
    (tmp_path / "events.json").write_text(doc([
        '{"event_name": "e", "time": 1771000000, "distinct_id": "ev", %s}' % mpuid("9080350317581165568.0")]))
    (tmp_path / "members.jsonl").write_text("".join(
        '{"$distinct_id": "%s"}\n' % d for d in ["prof", "ev", "9080350317581165123.0", "9.080350317581165123e18"]))
    with Lab() as lab:
        lab.load("mparticle-profiles", tmp_path / "mpa.jsonl")
        lab.load("mixpanel-pipeline-profiles", tmp_path / "people.json")
        lab.load("mixpanel-pipeline-events", tmp_path / "events.json")
        lab.load("mixpanel-members", tmp_path / "members.jsonl", cohort=C, as_of="2026-03-01T00:00:00Z")
        res = lab.simulate(C).resolution.set_index("distinct_id")
        got = outcomes(lab.simulate(C))
    assert res.loc["prof", "identifier"] == "9.080350317581166e+18"
    assert res.loc["ev", "identifier"] == "9080350317581165568.0"
    assert got == {"prof": ("mpid_precision_loss", "json_float", "mparticle_id", 1),
                   "ev": ("mpid_precision_loss", "json_float", "mparticle_id", 1),
                   # float-spelled distinct_ids: two members, each sent as its exported text
                   "9080350317581165123.0": ("mpid_precision_loss", "float_text", "mparticle_id", 1),
                   "9.080350317581165123e18": ("mpid_precision_loss", "float_text", "mparticle_id", 1)}


def test_a_float_spelling_that_lost_no_precision_is_recovered_through_its_digits(data):
    """'10.1' is float-spelled but no MPID's float: it is malformed (as $mparticle_user_id) or
    not an MPID (as the distinct_id), and its digits name MPID 101: recoverable through the MPID
    itself, as '"101"' with its quotes is; a float spelling that is float(mpid) is matched by
    value first (above)."""
    data.mpa(101)
    data.profile("p", mparticle_user_id="10.1")
    data.profile("10.1")
    data.snapshot(C, "2026-03-01", ["p", "10.1"])
    assert outcomes(data.lab.simulate(C)) == {
        "p": ("malformed_mparticle_user_id", None, "mparticle_id", 1),
        "10.1": ("distinct_id_not_mpid", None, "mparticle_id", 1),
    }


# ---------------------------------------------------------------- order of reasons and of recovery (mutation review)
def test_precision_loss_comes_before_distinct_id_is_identity(data):
    """docs/rules.md#gap-reasons: the first reason that applies. The distinct_id
    9080350317581165568 is int(float(BIG)) AND a customer_id of profile 5: mpid_precision_loss
    (integer_text), listed before distinct_id_is_identity; the identity still recovers it."""
    data.mpa(BIG)
    data.mpa(5, customer_id="9080350317581165568")
    data.profile("9080350317581165568")
    data.snapshot(C, "2026-03-01", ["9080350317581165568"])
    assert outcomes(data.lab.simulate(C)) == {
        "9080350317581165568": ("mpid_precision_loss", "integer_text", "customer_id", 1),
    }


def test_an_exponent_without_a_point_is_a_float_spelling(data):
    """docs/rules.md#float-spelled-precision-loss: a float spelling has a decimal point OR an
    exponent; '3e+18' (no point) is float(3000000000000000005), so precision loss, not malformed."""
    data.mpa(3000000000000000005)  # float(...) == 3e18 exactly
    data.profile("u", mparticle_user_id="3e+18")
    data.snapshot(C, "2026-03-01", ["u"])
    assert outcomes(data.lab.simulate(C)) == {"u": ("mpid_precision_loss", "float_text", "mparticle_id", 1)}


def test_a_float_spelled_distinct_id_alone_is_recovered_through_its_digits(data):
    """docs/rules.md#recovery-order: the MPID itself recovers a malformed or float-spelled
    identifier whose digits name an existing profile, also when the identifier is the distinct_id (sent by the fallback)
    and no $mparticle_user_id of another member spells it (the test above has one)."""
    data.mpa(101)
    data.profile("10.1")
    data.snapshot(C, "2026-03-01", ["10.1"])
    assert outcomes(data.lab.simulate(C)) == {"10.1": ("distinct_id_not_mpid", None, "mparticle_id", 1)}


@pytest.mark.parametrize("first, second, want", [
    ("customer_id", "email", "customer_id"),
    ("other", "other_id_2", "other"),
    ("other_id_2", "other_id_3", "other_id_2"),
    ("other_id_3", "other_id_4", "other_id_3"),
    ("other_id_4", "facebook", "other_id_4"),  # the ranked types before the others (by name)
], ids=lambda x: x if isinstance(x, str) else None)
def test_identity_types_recover_in_the_documented_order(data, first, second, want):
    """docs/rules.md#recovery-order: customer_id > email > other > other_id_2 .. other_id_4, then
    by name. The distinct_id is a `first` identity of profile 1 and a `second` one of profile 2,
    so each pair is decided by the rank alone (in either insertion order)."""
    value = "ann@x.com" if "email" in (first, second) else "zed"
    data.mpa(2, **{second: value})
    data.mpa(1, **{first: value})
    data.profile(value)
    data.snapshot(C, "2026-03-01", [value])
    assert outcomes(data.lab.simulate(C)) == {value: ("distinct_id_not_mpid", None, want, 1)}


def test_the_distinct_ids_identities_recover_before_the_emails(data):
    """docs/rules.md#recovery-order: the user identities of the distinct_id, THEN those of the
    member's email, whatever their types: `other` (of the distinct_id) before `email` (of the
    email), though email ranks before other among one key's identities."""
    data.mpa(1, other="zed")
    data.mpa(2, email="zed@example.com")
    data.profile("zed", email="zed@example.com")
    data.snapshot(C, "2026-03-01", ["zed"])
    assert outcomes(data.lab.simulate(C)) == {"zed": ("distinct_id_not_mpid", None, "other", 1)}


def test_the_emails_identities_recover_before_the_device_identities(data):
    """docs/rules.md#recovery-order: user identities (of the distinct_id, then of the email) before
    device identities of a $device: id."""
    data.mpa(1, email="dev@example.com")
    data.mpa(2)
    add_device(data, 2, "ios_idfv", "D1")
    data.profile("$device:D1", email="dev@example.com")
    data.snapshot(C, "2026-03-01", ["$device:D1"])
    assert outcomes(data.lab.simulate(C)) == {"$device:D1": ("distinct_id_not_mpid", None, "email", 1)}


def test_one_profile_listing_an_identity_twice_is_one_profile(data, tmp_path):
    """One mParticle profile whose user_identities spell one customer_id twice (customer_id and
    CustomerID): the loader keeps both rows, and recovery counts profiles, not rows: unambiguous."""
    path = tmp_path / "mpa.jsonl"
    path.write_text('{"mpid": 1, "user_identities": [{"type": "customer_id", "encoding": "none", "value": "x"}, '
                    '{"type": "CustomerID", "encoding": "none", "value": "x"}]}\n')
    data.lab.load("mparticle-profiles", path)
    assert data.lab.sql("SELECT count(*) AS n FROM mpa_identities WHERE value = 'x'").n[0] == 2
    data.profile("x")
    data.snapshot(C, "2026-03-01", ["x"])
    assert outcomes(data.lab.simulate(C)) == {"x": ("distinct_id_not_mpid", None, "customer_id", 1)}
