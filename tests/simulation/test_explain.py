"""Explain one user: every fact on both sides and the rule behind each step (hand-built world)."""

import pytest
from click.testing import CliRunner

from cohortlab import Lab

from .conftest import Data

C = "Power Users"


def world(data):
    data.mpa(101, customer_id="cust-1", email="ann@example.com")
    data.mpa(202)
    data.profile("cust-1", mparticle_user_id=None, email="ann@example.com")
    data.event("cust-1", "2026-01-10", mparticle_user_id="999")  # before the cutoff: does not count
    data.event("cust-1", "2026-02-01", mparticle_user_id="101")  # counts
    data.profile("other@example.com", mparticle_user_id="101")  # another person on the same MPID
    data.profile("x", mparticle_user_id="202")
    data.snapshot(C, "2026-03-01T00:00", ["cust-1", "other@example.com", "x"])
    data.snapshot(C, "2026-03-01T01:00", ["other@example.com", "x"])  # cust-1 leaves
    data.engine.execute("INSERT INTO loads (load_id, kind, source_file) VALUES (1, 'mparticle-profiles', 's')")
    data.engine.execute("UPDATE mpa_profiles SET load_id = 1, last_stored_at = '2026-03-01 02:00:00'")
    data.engine.execute("INSERT INTO mpa_attributes (mpid, name, value, value_bool, load_id) VALUES "
                        "(101, 'Power Users', 'true', TRUE, 1), (202, 'Power Users', 'true', TRUE, 1)")


def kinds(x):
    return [s.kind for s in x.steps]


def test_explain_by_distinct_id_lists_every_fact_with_its_rule(data):
    world(data)
    x = data.lab.explain(C, "cust-1")
    assert x.distinct_ids == ["cust-1"] and x.mpids == [101]
    assert kinds(x) == ["lookup", "lookup", "mixpanel_profile", "events", "membership", "membership",
                        "resolution", "resolution", "send", "send", "mparticle_profile", "attribute", "observed"]
    by = {}
    for s in x.steps:
        by.setdefault(s.kind, []).append(s)
    assert by["events"][0].rule == "docs/rules.md#event-identity-rule"
    assert "2 event(s) carry $mparticle_user_id; 1 at or after the cutoff" in by["events"][0].text
    assert "says '101'" in by["events"][0].text
    assert [s.data["present"] for s in by["membership"]] == [True, False]
    assert by["resolution"][0].text == "cust-1: not a member at the as-of time, so not in the resolution table"
    assert by["resolution"][1].text == ("cust-1 (former member, as the simulation resolves it): identifier '101' "
                                        "from event_property is MPID 101 of an existing profile: matched")
    sends = [(str(s.time), s.data["kind"], s.data["action"]) for s in by["send"]]
    assert sends == [("2026-03-01 00:00:00", "first", "full"), ("2026-03-01 01:00:00", "diff", "remove")]
    assert "writes false on MPID 101" in by["send"][1].text and by["send"][1].rule == "docs/rules.md#dynamic-sync"
    assert by["attribute"][0].data == {"mpid": 101, "value": False, "writes": 2,
                                       "last_write_at": by["attribute"][0].data["last_write_at"],
                                       "changed_at": by["attribute"][0].data["last_write_at"], "other_members": 1}
    assert "1 other current member(s) resolve to it" in by["attribute"][0].text
    assert by["observed"][0].text.startswith("MPID 101: observed true, simulated false: unexplained")
    text = x.to_text()
    assert "other@example.com" not in text  # another user's personal data never appears
    # nor the user's own email: a pseudonym, the same one wherever it is shown, unless asked for
    assert "ann@example.com" not in text and "$email anon-" in text
    assert "ann@example.com" not in str([s.data for s in x.steps])
    shown = data.lab.explain(C, "cust-1", show_personal_data=True).to_text()
    assert "$email ann@example.com;" in shown and "other@example.com" not in shown


def test_a_former_members_profile_is_explained_beside_the_one_its_id_names(data):
    """cust-2 left the cohort; its sends wrote true, then false, on MPID 202 (its
    $mparticle_user_id), while cust-2 is the customer_id of another profile, 303. Only 303 was
    explained (its attribute, its observed value): the profile the sends wrote to was not. Both
    are now, each with its own lookup line."""
    data.mpa(202)
    data.mpa(303, customer_id="cust-2")
    data.profile("cust-2", mparticle_user_id="202")
    data.profile("x", mparticle_user_id="303")
    data.snapshot(C, "2026-03-01T00:00", ["cust-2", "x"])
    data.snapshot(C, "2026-03-01T01:00", ["x"])  # cust-2 leaves
    x = data.lab.explain(C, "cust-2")
    assert x.mpids == [303, 202]
    lookups = [s.text for s in x.steps if s.kind == "lookup"]
    assert lookups[-2:] == ["MPID 303: the mParticle profile whose customer_id is this id",
                            "MPID 202: the profile former member cust-2's sends wrote to"]
    attribute = {s.data["mpid"]: s.data["value"] for s in x.steps if s.kind == "attribute"}
    assert attribute == {303: True, 202: False}  # x's true on 303; cust-2's false on 202


def test_explain_by_email_shows_that_email_as_given(data):
    world(data)
    text = data.lab.explain(C, "ann@example.com").to_text()
    assert text.startswith("user ann@example.com in cohort") and "$email ann@example.com;" in text
    assert "other@example.com" not in text


def test_explain_by_email_and_by_mpid_find_the_same_user(data):
    world(data)
    by_email = data.lab.explain(C, "ann@example.com")
    assert by_email.distinct_ids == ["cust-1"] and 101 in by_email.mpids
    by_mpid = data.lab.explain(C, "202")
    assert by_mpid.distinct_ids == ["x"] and by_mpid.mpids == [202]
    assert [s.text for s in by_mpid.steps if s.kind == "observed"] == [
        "MPID 202: observed true, simulated true: agree (mParticle snapshot of 2026-03-01 02:00:00)"]


def test_explain_unknown_user_and_cli(tmp_path):
    db = str(tmp_path / "lab.duckdb")
    with Lab(db) as lab:
        world(Data(lab))
    from cohortlab.cli import main

    r = CliRunner().invoke(main, ["explain", "--db", db, "--cohort", C, "--user", "x"])
    assert r.exit_code == 0, r.output
    assert "- send: 2026-03-01 00:00:00  x: first run, sent as a member; writes true on MPID 202" in r.output
    bad = CliRunner().invoke(main, ["explain", "--db", db, "--cohort", C, "--user", "nobody"])
    assert bad.exit_code == 1 and "user 'nobody' not found" in bad.output


def test_a_re_export_is_one_of_the_runs_that_sent_the_user(data):
    data.mpa(7)
    data.profile("u", mparticle_user_id="7")
    data.snapshot(C, "2026-03-01T00:00", ["u"])
    x = data.lab.explain(C, "u", at="2026-03-03T00:00",
                         settings={"cadence": "1d", "reexport_at": ["2026-03-02T00:00:00Z"]})
    sends = [(str(s.time), s.data["kind"], s.data["action"], s.rule) for s in x.steps if s.kind == "send"]
    assert sends == [("2026-03-01 00:00:00", "first", "full", "docs/rules.md#dynamic-sync"),
                     ("2026-03-02 00:00:00", "reexport", "full", "docs/rules.md#re-export")]


def test_phone_numbers_as_other_members_distinct_ids_are_pseudonyms_as_in_members_out(data):
    """Four Mixpanel profiles claim MPID 101 with phone numbers as distinct_ids (one with no-break
    spaces): explaining the MPID names each, as the pseudonym --members-out gives it, never the
    number."""
    from cohortlab.privacy import Redactor

    phones = ["+447700900555", "+44 7700 900556", "(415) 555-0111", "+44\u00a07700\u00a0900557"]
    data.mpa(101, customer_id="cust-1")
    data.profile("cust-1", mparticle_user_id="101")
    for p in phones:
        data.profile(p, mparticle_user_id="101")
    data.snapshot(C, "2026-03-01T00:00", ["cust-1", *phones])
    text = data.lab.explain(C, "101").to_text()
    r = Redactor.for_engine(data.engine)
    for p in phones:
        assert p not in text and p.encode("unicode_escape").decode() not in text, p
        assert f"distinct_id {r.value(p)}: " in text  # the same pseudonym as every other output
    assert "cust-1" in text
    # the phone the user asks about is shown as given
    assert "+44 7700 900556" in data.lab.explain(C, "+44 7700 900556").to_text()


@pytest.mark.parametrize("name", ["carol%40example.com", "carol\uff20example.com", "VIP tel:+44 7700 900123 list"])
def test_a_cohort_named_after_an_email_in_another_spelling_is_its_pseudonym_in_the_story(data, name):
    """explain's story names the cohort ("simulated 'NAME' = true"): a name spelled carol%40example.com
    or with a full-width ＠ was shown in clear (the patterns in sentences saw only a plain @), and
    one holding a phone showed the phone's pseudonym inside it, where verify shows the name's."""
    from cohortlab.privacy import Redactor

    data.mpa(101, customer_id="cust-1")
    data.profile("cust-1", mparticle_user_id="101")
    data.snapshot(name, "2026-03-01T00:00", ["cust-1"])
    header, *story = data.lab.explain(name, "cust-1").to_text().splitlines()
    assert name in header  # the header names the cohort as asked for (docs/reports.md#personal-data)
    text = "\n".join(story)
    shown = Redactor.for_engine(data.engine).value(name)
    assert shown != name and f"'{shown}'" in text
    assert "carol" not in text and "7700" not in text


def test_explain_finds_a_distinct_id_with_surrounding_spaces_as_spelled(data):
    """A distinct_id may start with a space (the JSON loaders keep it: docs/loading.md): explain
    finds it by its exact spelling, and still forgives spaces pasted around another id. MPIDs at
    the int64 limits are found exactly, in both directions."""
    top, bottom = 2**63 - 1, -(2**63)
    data.mpa(top, customer_id="007")
    data.mpa(bottom)
    data.profile(" 12", mparticle_user_id=str(top))
    data.profile("12", mparticle_user_id=str(bottom))  # the same text without the space: someone else
    data.snapshot(C, "2026-03-01T00:00", [" 12", "12"])
    x = data.lab.explain(C, " 12")
    assert x.distinct_ids == [" 12"] and x.mpids == [top]
    assert data.lab.explain(C, "12").mpids == [bottom]
    assert data.lab.explain(C, str(bottom)).distinct_ids == ["12"]
    # spaces pasted around an id that has none: the id itself
    assert data.lab.explain(C, " 007 ").mpids == [top]
    assert data.lab.explain(C, f" {top}\n").distinct_ids == [" 12"]


def test_explain_refuses_a_float_user(data):
    """A float (an MPID read from a float column) names no id exactly: refused with the reason,
    not 'not found'."""
    import numpy as np
    import pytest

    from cohortlab.simulation.explain import ExplainError

    data.mpa(9007199254740993)
    data.profile("u", mparticle_user_id="9007199254740993")
    data.snapshot(C, "2026-03-01T00:00", ["u"])
    for user in (9007199254740993.0, np.float64(9007199254740993)):
        with pytest.raises(ExplainError, match="is a float, which names no MPID or id exactly"):
            data.lab.explain(C, user)
    assert data.lab.explain(C, np.int64(9007199254740993)).distinct_ids == ["u"]


def test_explain_refuses_a_user_that_is_not_one_id(data):
    """None, a list or a dict was looked up as its text: explain(C, None) said "user 'None' not
    found", and would have found a distinct_id spelled "None". Refused, naming what a user is."""
    import pytest

    from cohortlab.simulation.explain import ExplainError

    data.profile("None")
    data.snapshot(C, "2026-03-01T00:00", ["None"])
    for user, kind in ((None, "NoneType"), (["u"], "list"), ({"id": 1}, "dict"), (True, "bool")):
        with pytest.raises(ExplainError, match=f"user: one distinct_id, email, MPID or identity .*, not {kind}$"):
            data.lab.explain(C, user)
    assert data.lab.explain(C, "None").distinct_ids == ["None"]


def test_a_pseudonym_from_a_report_finds_its_user_and_stays_a_pseudonym(data, tmp_path):
    """An analyst sees ``anon-…`` in a report or in --members-out for an email or a phone that is a
    distinct_id, and asks explain about it: the user is found, and shown by that pseudonym (the
    value is never printed, since the analyst did not have it)."""
    from cohortlab.privacy import Redactor

    world(data)
    data.profile("+447700900555", mparticle_user_id="202")
    data.snapshot(C, "2026-03-01T02:00", ["other@example.com", "x", "+447700900555"])
    r = Redactor.for_engine(data.engine)
    for value, did in (("other@example.com", "other@example.com"), ("+447700900555", "+447700900555"),
                       ("ann@example.com", "cust-1")):  # an email that is no distinct_id finds its profile's
        x = data.lab.explain(C, r.value(value))
        assert did in x.distinct_ids, value
        text = x.to_text()  # what the command prints
        assert value not in text and r.value(value) in text and x.user == r.value(value)
        assert text.startswith(f"user {r.value(value)} in cohort")
    # a pseudonym of nothing loaded, and one spelled wrongly, are not found
    for bad in ("anon-000000000000", r.value("other@example.com")[:-1]):
        try:
            data.lab.explain(C, bad)
        except Exception as e:
            assert f"user {bad!r} not found" in str(e)
        else:
            raise AssertionError(bad)


def test_the_profile_shown_is_the_version_the_simulation_read_when_it_decided_the_identifier(data):
    # loading day by day: a profile export taken after the as-of time (here the fix of
    # $mparticle_user_id) changes neither the resolution at that time nor the profile shown
    data.mpa(101, customer_id="cust-1")
    data.profile("cust-1", mparticle_user_id="999", as_of="2026-02-01T00:00")
    data.snapshot(C, "2026-03-01T00:00", ["cust-1"])
    by = {}
    for s in data.lab.explain(C, "cust-1", at="2026-03-01T00:00").steps:
        by.setdefault(s.kind, []).append(s)
    before = (by["mixpanel_profile"][0].text, by["resolution"][0].text)
    assert "$mparticle_user_id = '999'" in before[0] and "identifier '999'" in before[1]
    data.profile("cust-1", mparticle_user_id="101", as_of="2026-03-05T00:00")  # the next export
    data.lab.clear_simulations()
    by = {}
    for s in data.lab.explain(C, "cust-1", at="2026-03-01T00:00").steps:
        by.setdefault(s.kind, []).append(s)
    assert by["resolution"][0].text == before[1]
    assert by["mixpanel_profile"][0].text == before[0]  # the same words, the same version
    assert before[0].endswith("(the version of 2026-02-01 00:00:00: the latest at or before 2026-03-01 00:00:00)")
    assert by["mixpanel_profile"][0].data["mparticle_user_id"] == "999"
    # at a later time the identifier is still the one sent on Mar 1 (not sent again): the version read
    # then is shown, and the later one beside it (explain showed only the later one: a red team)
    later = [s for s in data.lab.explain(C, "cust-1", at="2026-03-06T00:00").steps if s.kind == "mixpanel_profile"]
    assert later[0].text == (
        before[0] + "; 2026-03-01 00:00:00 is when its identifier was decided; at the as-of time 2026-03-06 00:00:00 "
        "its profile has $mparticle_user_id = '101', which reaches mParticle only when the member is sent again")


def test_events_after_the_as_of_time_are_not_counted(data):
    # a later day's events, loaded since, do not change what explain says at an earlier time
    data.mpa(101, customer_id="cust-1")
    data.profile("cust-1")
    data.event("cust-1", "2026-02-01", mparticle_user_id="101")
    data.snapshot(C, "2026-03-01T00:00", ["cust-1"])
    before = [s.text for s in data.lab.explain(C, "cust-1", at="2026-03-01T00:00").steps if s.kind == "events"]
    assert "1 event(s) carry $mparticle_user_id; 1 at or after the cutoff" in before[0]
    data.event("cust-1", "2026-03-02", mparticle_user_id="202")
    data.lab.clear_simulations()
    after = [s for s in data.lab.explain(C, "cust-1", at="2026-03-01T00:00").steps if s.kind == "events"]
    assert [s.text for s in after] == before and after[0].data["total"] == 1


def test_of_two_events_of_the_same_time_the_latest_shown_is_the_one_the_resolution_used(data):
    # events of one second (an export in whole seconds) carrying two values: explain named the
    # one loaded first, the resolution took the other
    data.mpa(111)
    data.mpa(999)
    data.profile("u1")
    data.event("u1", "2026-02-25T06:13:20", mparticle_user_id="111")
    data.event("u1", "2026-02-25T06:13:20", mparticle_user_id="999")
    data.snapshot(C, "2026-03-01T00:00", ["u1"])
    resolved = data.lab.resolution(C, at="2026-03-01T00:00")
    used = resolved.loc[resolved["distinct_id"] == "u1", "identifier"].iloc[0]
    steps = {s.kind: s for s in data.lab.explain(C, "u1", at="2026-03-01T00:00").steps}
    assert f"the latest (2026-02-25 06:13:20) says {used!r}" in steps["events"].text
    assert f"identifier {used!r} from event_property" in steps["resolution"].text


def test_two_snapshots_of_one_time_the_later_load_wins_in_explain_as_in_the_simulation(tmp_path):
    """docs/rules.md#membership: two snapshots with the same as-of time, the later load wins.
    explain counted a member present when either held it: it said 101 enters at 00:40 and is sent
    as added at 00:45, where the simulation has it out of the cohort, false."""
    import json

    lab = Lab()
    (tmp_path / "mpa.jsonl").write_text('{"mpid": 101}\n{"mpid": 102}\n')
    lab.load("mparticle-profiles", [str(tmp_path / "mpa.jsonl")])
    for i, (as_of, ids) in enumerate([("00:00", ["101", "102"]), ("00:20", ["102"]), ("00:40", ["101", "102"]),
                                      ("00:40", ["102"])]):  # the last: the same time, loaded later
        (tmp_path / f"m{i}.jsonl").write_text("".join(json.dumps({"$distinct_id": d}) + "\n" for d in ids))
        lab.load("mixpanel-members", [str(tmp_path / f"m{i}.jsonl")], cohort=C, as_of=f"2026-03-01T{as_of}:00Z")
    x = lab.explain(C, "101", at="2026-03-01T01:00:00Z")
    assert [(s.time.strftime("%H:%M"), s.data["present"]) for s in x.steps if s.kind == "membership"] == [
        ("00:00", True), ("00:20", False)]
    assert [(s.time.strftime("%H:%M"), s.data["action"]) for s in x.steps if s.kind == "send"] == [
        ("00:00", "full"), ("00:30", "remove")]
    assert "101" not in set(lab.simulate(C, at="2026-03-01T01:00:00Z").resolution.distinct_id)
