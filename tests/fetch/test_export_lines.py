"""What a raw export chunk's body holds, line by line: events (JSON objects) counted, blank lines
not, other lines counted apart; a body of blank lines is an empty chunk; an error object as the
last line is a failed export; a chunk fetched again never loses the events fetched before."""

from __future__ import annotations

import gzip
import json
import os
import re

import pytest
from click.testing import CliRunner

from cohortlab import Lab
from cohortlab.cli import main
from cohortlab.fetch import FetchError, fetch
from cohortlab.fetch.mixpanel import MixpanelClient
from tests.fetch.conftest import _t


def _mp(creds, policy) -> MixpanelClient:
    mp = MixpanelClient(creds.mixpanel, policy=policy)
    mp.said = []  # type: ignore[attr-defined]
    mp.http.notify = mp.said.append  # the warnings the run says on stderr
    return mp


def _ev(i: int, day: int = 1) -> str:
    return json.dumps({"event": "Purchase", "properties": {"time": _t(day), "distinct_id": f"c{i}",
                                                           "$insert_id": f"x{i}"}})


A, B = _ev(1), _ev(2)


def _cli(args, env):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("MIXPANEL_", "MPARTICLE_", "COHORTLAB_"))}
    full.update(env)
    return CliRunner().invoke(main, ["fetch", *args], env=full, catch_exceptions=False)


@pytest.mark.parametrize("kind", ["body", "body_gz"])
def test_blank_lines_and_lines_not_events_are_not_counted_as_events(fake, creds, policy, tmp_path, kind):
    """The count was the number of line breaks: 6 'events' for 2 events, 3 blank lines and a line
    that is not JSON (the loader then loaded 2 and quarantined 1)."""
    body = f"{A}\n\n\nnot json here\n{B}\n\n".encode()
    fake.faults["export"] = [(kind, body)]
    chunks = _mp(creds, policy).export_events(tmp_path, "2026-01-01", "2026-01-01")
    assert [(c.events, c.not_events) for c in chunks] == [(2, 1)]
    assert chunks[0].file.name == "2026-01-01_2026-01-01.jsonl" + (".gz" if kind == "body_gz" else "")


def test_the_summary_and_fetch_json_count_events_and_lines_not_events(fake, creds, policy, tmp_path):
    fake.faults["export"] = [("body", f"{A}\n\n\nnot json here\n{B}\n\n[1, 2]\n".encode())]
    summary = fetch(tmp_path, sources=["mixpanel"], from_date="2026-01-01", to_date="2026-01-01",
                    profiles=False, credentials=creds, policy=policy, progress=False)
    assert summary.counts["events"] == 2 and summary.counts["lines_not_events"] == 2
    text = str(summary)
    assert "mixpanel events 2026-01-01..2026-01-01: 2 events in 1 file(s)" in text
    assert "2 lines are not events: the loader will quarantine them" in text
    item = [i for i in json.loads((tmp_path / "fetch.json").read_text())["runs"][-1]["items"]
            if i["kind"] == "mixpanel-events"][0]
    assert (item["events"], item["lines_not_events"]) == (2, 2)
    with Lab(str(tmp_path / "lab.duckdb")) as lab:  # the loader agrees
        r = lab.load("mixpanel-events", [str(tmp_path / "mixpanel/events/2026-01-01_2026-01-01.jsonl")])
        assert lab.engine.query_rows("SELECT count(*) FROM mp_events")[0][0] == 2
        assert sum(r.quarantined.values()) == 2


def test_only_objects_with_an_event_name_and_properties_are_events(fake, creds, policy, tmp_path):
    """Any JSON object was an event: {}, {"foo": 1}, {"event": null} were counted while the loader
    quarantines them; [1] and "str" were called 'not JSON'. The counts now agree with the loader."""
    odd = ['{}', '{"foo": 1}', '{"event": null}', '{"event": "", "properties": {}}', '{"event": "E"}',
           '{"event": "E", "properties": []}', '{"event": 7, "properties": {}}', '[1]', '"str"', 'not json']
    fake.faults["export"] = [("body", "\n".join([A, *odd, B, ""]).encode())]
    summary = fetch(tmp_path, sources=["mixpanel"], from_date="2026-01-01", to_date="2026-01-01",
                    profiles=False, credentials=creds, policy=policy, progress=False)
    assert (summary.counts["events"], summary.counts["lines_not_events"]) == (2, 10)
    assert "lines_not_json" not in summary.counts
    assert "10 lines are not events: the loader will quarantine them" in str(summary)
    item = [i for i in json.loads((tmp_path / "fetch.json").read_text())["runs"][-1]["items"]
            if i["kind"] == "mixpanel-events"][0]
    assert (item["events"], item["lines_not_events"], "lines_not_json" in item) == (2, 10, False)
    with Lab(str(tmp_path / "lab.duckdb")) as lab:  # the loader agrees
        r = lab.load("mixpanel-events", [str(tmp_path / "mixpanel/events/2026-01-01_2026-01-01.jsonl")])
        assert lab.engine.query_rows("SELECT count(*) FROM mp_events")[0][0] == 2
        assert sum(r.quarantined.values()) == 10


def test_one_line_not_an_event_in_the_json_output(fake, env, tmp_path):
    fake.faults["export"] = [("body", f"{A}\nnot json here\n".encode())]
    r = _cli(["--out", str(tmp_path / "o"), "--source", "mixpanel", "--from", "2026-01-01", "--to", "2026-01-01",
              "--no-profiles", "--retries", "0", "--json"], env)
    assert r.exit_code == 0, r.output
    counts = json.loads(r.stdout)["counts"]
    assert (counts["events"], counts["lines_not_events"]) == (1, 1)
    fake.faults["export"] = [("body", f"{A}\nnot json here\n".encode())]
    r = _cli(["--out", str(tmp_path / "o2"), "--source", "mixpanel", "--from", "2026-01-01", "--to", "2026-01-01",
              "--no-profiles", "--retries", "0"], env)
    assert "  1 line is not an event: the loader will quarantine it\n" in r.stdout


@pytest.mark.parametrize("body", [b"\n\n\n", b"\r\n\r\n", b" \n\t\n"], ids=["lf", "crlf", "spaces"])
@pytest.mark.parametrize("kind", ["body", "body_gz"])
def test_a_body_of_blank_lines_is_an_empty_chunk(fake, creds, policy, tmp_path, body, kind):
    """It was saved as the chunk's file, which the loader refuses ("empty file"), and remembered
    as fetched: the folder could never be loaded, even after a re-run."""
    fake.faults["export"] = [(kind, body)]
    mp = _mp(creds, policy)
    chunks = mp.export_events(tmp_path, "2026-01-01", "2026-01-01")
    assert [(c.file, c.events) for c in chunks] == [(None, 0)]
    assert not (tmp_path / "mixpanel" / "events").exists() or not any((tmp_path / "mixpanel" / "events").iterdir())
    state = json.loads((tmp_path / ".fetch" / "mixpanel_chunks.json").read_text())
    assert state["empty"] == ["2026-01-01_2026-01-01"]


def test_a_blank_file_an_earlier_version_saved_is_fetched_again(fake, creds, policy, tmp_path):
    folder = tmp_path / "mixpanel" / "events"
    folder.mkdir(parents=True)
    (folder / "2026-01-01_2026-01-01.jsonl.gz").write_bytes(gzip.compress(b"\r\n\r\n"))
    chunks = _mp(creds, policy).export_events(tmp_path, "2026-01-01", "2026-01-01")
    assert [(c.skipped, c.events) for c in chunks] == [(False, 2)]
    assert fake.count("export") == 1
    assert sorted(p.name for p in folder.iterdir()) == ["2026-01-01_2026-01-01.jsonl.gz"]
    assert len(gzip.decompress((folder / "2026-01-01_2026-01-01.jsonl.gz").read_bytes()).splitlines()) == 2


@pytest.mark.parametrize("content", ["2MiB_blank_first", "blank_first_member"])
def test_a_file_whose_event_comes_late_in_the_stream_is_not_blank(fake, creds, policy, tmp_path, content):
    """Only the first 1 MB after decompression (and only the first gzip member) was read: a file
    with its event after 2 MiB of blank lines, or in a second member, was judged blank, fetched
    again without --refresh, and deleted without a warning when the answer was empty."""
    from cohortlab.fetch.mixpanel import _blank_file, _count_file

    folder = tmp_path / "mixpanel" / "events"
    folder.mkdir(parents=True)
    path = folder / "2026-01-01_2026-01-01.jsonl.gz"
    if content == "2MiB_blank_first":
        data = gzip.compress(b"\n" * (2 * 1024 * 1024) + f"{A}\n".encode())
    else:
        data = gzip.compress(b"\n\n") + gzip.compress(f"{A}\n".encode())
    path.write_bytes(data)
    assert (_blank_file(path), _count_file(path)) == (False, 1)
    mp = _mp(creds, policy)
    chunks = mp.export_events(tmp_path, "2026-01-01", "2026-01-01")
    assert [(c.skipped, c.file) for c in chunks] == [(True, path)] and fake.count("export") == 0
    fake.faults["export"] = [("body", b"")]
    again = mp.export_events(tmp_path, "2026-01-01", "2026-01-01", refresh=True)
    assert [(c.file, c.events, c.kept) for c in again] == [(path, 1, True)]
    assert path.read_bytes() == data
    assert mp.said == ["mixpanel: warning: chunk 2026-01-01_2026-01-01 came back empty; the 1 event(s) "
                       "fetched before are kept (2026-01-01_2026-01-01.jsonl.gz)"]


def test_blank_files_are_read_whole_up_to_a_cap(tmp_path, monkeypatch):
    from cohortlab.fetch import mixpanel
    from cohortlab.fetch.mixpanel import _blank_file

    many = tmp_path / "many.jsonl.gz"
    many.write_bytes(gzip.compress(b"\n\n") + gzip.compress(b"\r\n" * (3 * 1024 * 1024)) + gzip.compress(b" \n"))
    assert _blank_file(many)
    monkeypatch.setattr(mixpanel, "BLANK_MAX", 1024 * 1024)  # more blank bytes than the cap: not blank
    assert not _blank_file(many)
    plain = tmp_path / "plain.jsonl"
    plain.write_bytes(b"\n" * (2 * 1024 * 1024))
    assert not _blank_file(plain)
    monkeypatch.setattr(mixpanel, "BLANK_MAX", 64 * 1024 * 1024)
    assert _blank_file(plain)


@pytest.mark.parametrize("how", ["refresh", "open"])
def test_a_chunk_fetched_again_that_comes_back_empty_keeps_the_earlier_file(fake, creds, policy, tmp_path, how):
    """The file fetched before was deleted: exported events disappeared without a word."""
    mp = _mp(creds, policy)
    first = mp.export_events(tmp_path, "2026-01-01", "2026-01-02", chunk_days=2)
    path = first[0].file
    data = path.read_bytes()
    if how == "open":  # a chunk still open (its end yesterday or later) is fetched again by each run
        (tmp_path / ".fetch" / "mixpanel_chunks.json").write_text('{"empty": [], "open": ["2026-01-01_2026-01-02"]}')
    fake.faults["export"] = [("body", b"\n")]
    again = mp.export_events(tmp_path, "2026-01-01", "2026-01-02", chunk_days=2, refresh=how == "refresh")
    assert [(c.file, c.events, c.kept) for c in again] == [(path, 4, True)]
    assert path.read_bytes() == data
    assert mp.said == ["mixpanel: warning: chunk 2026-01-01_2026-01-02 came back empty; the 4 event(s) "
                       "fetched before are kept (2026-01-01_2026-01-02.jsonl.gz)"]
    state = json.loads((tmp_path / ".fetch" / "mixpanel_chunks.json").read_text())
    assert state["empty"] == []  # not remembered as empty
    # the summary says so, and counts no events fetched by this run
    fake.faults["export"] = [("body", b"")]
    summary = fetch(tmp_path, sources=["mixpanel"], from_date="2026-01-01", to_date="2026-01-02", chunk_days=2,
                    refresh=True, profiles=False, credentials=creds, policy=policy, progress=False)
    assert path.read_bytes() == data
    assert summary.counts["events"] == 0 and summary.counts["chunks_kept"] == 1
    assert ("1 chunk(s) came back empty; the events fetched before are kept: "
            "2026-01-01_2026-01-02.jsonl.gz (4 events)") in str(summary)


def test_an_error_object_after_one_event_says_event_in_the_singular(fake, creds, policy, tmp_path):
    """It said "(after 1 events)"."""
    fake.sticky["export"] = ("body", f'{A}\n{{"error": "boom", "status": "error"}}\n'.encode())
    with pytest.raises(FetchError) as e:
        _mp(creds, policy).export_events(tmp_path, "2026-01-01", "2026-01-01")
    assert str(e.value) == ("mixpanel: giving up after 4 attempts: the export of chunk 2026-01-01..2026-01-01 ended "
                            "with an error instead of its last events (after 1 event): boom")


def test_kept_after_empty_answer_is_in_fetch_json(fake, creds, policy, tmp_path):
    first = fetch(tmp_path, sources=["mixpanel"], from_date="2026-01-01", to_date="2026-01-02", chunk_days=2,
                  profiles=False, credentials=creds, policy=policy, progress=False)
    assert first.counts["events"] == 4
    fake.faults["export"] = [("body", b"")]
    fetch(tmp_path, sources=["mixpanel"], from_date="2026-01-01", to_date="2026-01-02", chunk_days=2,
          refresh=True, profiles=False, credentials=creds, policy=policy, progress=False)
    item = [i for i in json.loads((tmp_path / "fetch.json").read_text())["runs"][-1]["items"]
            if i["kind"] == "mixpanel-events"][0]
    assert (item["kept_after_empty_answer"], item["files"], item["events"]) == (
        ["mixpanel/events/2026-01-01_2026-01-02.jsonl.gz"], [], 0)


def test_a_chunk_fetched_again_with_fewer_events_replaces_the_file_and_warns(fake, creds, policy, tmp_path):
    mp = _mp(creds, policy)
    first = mp.export_events(tmp_path, "2026-01-01", "2026-01-02", chunk_days=2)
    fake.faults["export"] = [("body", f"{A}\n".encode())]
    again = mp.export_events(tmp_path, "2026-01-01", "2026-01-02", chunk_days=2, refresh=True)
    assert [(c.file.name, c.events) for c in again] == [("2026-01-01_2026-01-02.jsonl", 1)]
    assert not first[0].file.exists()
    assert mp.said == ["mixpanel: warning: chunk 2026-01-01_2026-01-02 came back with 1 event(s), 4 before: the "
                       "new answer replaces the file (the events already loaded into a database stay there)"]


def test_an_error_object_as_the_last_line_is_retried_and_never_kept(fake, creds, policy, tmp_path):
    """It was saved as a complete chunk."""
    bad = f'{A}\n{B}\n{{"error": "export failed midway", "status": "error"}}\n'.encode()
    fake.faults["export"] = [("body", bad)]
    mp = _mp(creds, policy)
    chunks = mp.export_events(tmp_path, "2026-01-01", "2026-01-03", chunk_days=3)
    assert [c.events for c in chunks] == [5] and mp.http.stats.retries["bad_body"] == 1
    fake.sticky["export"] = ("body", bad)
    with pytest.raises(FetchError, match=re.escape(
            "mixpanel: giving up after 4 attempts: the export of chunk 2026-01-04..2026-01-04 ended with an error "
            "instead of its last events (after 2 events): export failed midway")):
        mp.export_events(tmp_path, "2026-01-04", "2026-01-04")
    assert not list((tmp_path / "mixpanel" / "events").glob("2026-01-04*"))
    assert "2026-01-04_2026-01-04" not in (tmp_path / ".fetch" / "mixpanel_chunks.json").read_text()


# --------------------------------------------------------------------------- the profiles folder
def test_a_profiles_folder_holding_other_files_is_refused_before_any_request(fake, creds, policy, tmp_path):
    """The folder's other files were carried over into the new listing's folder: a page kept by
    hand (manual_page.json) was then dated with the new listing's time and overwrote the fresh
    profiles when loaded; a fifo, or a copy that failed, threw the whole listing away with an
    error that was no FetchError. Now the listing replaces the whole folder, and a folder holding
    anything else is refused before the run's first request."""
    folder = tmp_path / "mixpanel" / "profiles"
    folder.mkdir(parents=True)
    (folder / "manual_page.json").write_text('{"results": []}\n')
    (folder / "by_hand").mkdir()
    (folder / "ann@example.com.json").write_text("{}\n")
    os.mkfifo(folder / "pipe")
    for i in range(5):  # the pages of an earlier, longer listing
        (folder / f"engage_page_{i:05d}.json").write_text('{"old": true}\n')
    want = (f"mixpanel: {folder} holds 4 entries that are not an Engage page (engage_page_*.json): "
            "<email>, by_hand, manual_page.json, pipe. The Engage listing replaces the whole folder and "
            "would remove them: move them out (keep pages fetched by hand in another folder and load them from "
            "there), or fetch with --no-profiles")
    with pytest.raises(FetchError) as e:
        fetch(tmp_path, sources=["mixpanel"], credentials=creds, policy=policy, progress=False)
    assert str(e.value) == want
    assert fake.log == []  # not even the cohorts list
    with pytest.raises(FetchError) as e:
        MixpanelClient(creds.mixpanel, policy=policy).profiles(tmp_path)
    assert str(e.value) == want and fake.count("engage") == 0
    assert len(list(folder.iterdir())) == 9  # nothing removed
    # moved out: the listing replaces the whole folder (the 5 old pages with its 3)
    for name in ("manual_page.json", "ann@example.com.json", "pipe"):
        (folder / name).unlink()
    (folder / "by_hand").rmdir()
    summary = fetch(tmp_path, sources=["mixpanel"], credentials=creds, policy=policy, progress=False)
    assert summary.counts["profiles"] == 5
    assert sorted(p.name for p in folder.iterdir()) == [
        "engage_page_00000.json", "engage_page_00001.json", "engage_page_00002.json"]
    # a listing that fails keeps every file as it was
    (folder / "engage_page_00000.json").write_text('{"old": true}\n')
    fake.sticky["engage"] = ("status", 400)
    with pytest.raises(FetchError):
        MixpanelClient(creds.mixpanel, policy=policy).profiles(tmp_path)
    assert (folder / "engage_page_00000.json").read_text() == '{"old": true}\n'
    assert not any((tmp_path / ".fetch" / "tmp").iterdir())
    # --no-profiles does not look at the folder
    (folder / "manual_page.json").write_text("{}\n")
    fetch(tmp_path, sources=["mixpanel"], profiles=False, credentials=creds, policy=policy, progress=False)


def test_os_clutter_in_the_profiles_folder_is_left_alone_as_the_loader_leaves_it(fake, creds, policy, tmp_path):
    """A .DS_Store (macOS Finder writes one on opening the folder) made fetch refuse the folder
    as holding 'entries that are not an Engage page', although the loader never reads it. Fetch
    and the loader now leave out the same names (cohortlab.loaders.files.is_clutter), and the
    listing's new folder keeps them."""
    folder = tmp_path / "mixpanel" / "profiles"
    folder.mkdir(parents=True)
    clutter = {".DS_Store": b"\x00\x00\x00\x01Bud1", "._engage_page_00001.json": b"\x00\x05\x16\x07",
               "Thumbs.db": b"\xd0\xcf\x11\xe0", "desktop.ini": b"[.ShellClassInfo]\r\n"}
    for name, data in clutter.items():
        (folder / name).write_bytes(data)
    (folder / ".hidden_dir").mkdir()
    (folder / ".hidden_dir" / "x").write_text("kept")
    for i in range(5):  # the pages of an earlier, longer listing
        (folder / f"engage_page_{i:05d}.json").write_text('{"old": true}\n')
    summary = fetch(tmp_path, sources=["mixpanel"], credentials=creds, policy=policy, progress=False)
    assert summary.counts["profiles"] == 5
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*clutter, ".hidden_dir", "engage_page_00000.json", "engage_page_00001.json", "engage_page_00002.json"])
    assert {n: (folder / n).read_bytes() for n in clutter} == clutter  # kept as they were
    assert (folder / ".hidden_dir" / "x").read_text() == "kept"
    assert not any((tmp_path / ".fetch" / "tmp").iterdir())
    # the clutter beside another file: only that file is named
    (folder / "manual_page.json").write_text("{}\n")
    with pytest.raises(FetchError, match=re.escape("holds 1 entry that is not an Engage page (engage_page_*.json): "
                                                   "manual_page.json. ")):
        fetch(tmp_path, sources=["mixpanel"], credentials=creds, policy=policy, progress=False)


def test_an_appledouble_file_beside_the_mparticle_parts_is_no_part(fake, creds, policy, tmp_path):
    """macOS's ._part-….jsonl (binary, written beside a copied part) was read as a part file for
    the MPIDs already fetched: UnicodeDecodeError, the run stopped. The loader never reads it."""
    from tests.fetch.conftest import BIG, NEG

    folder = tmp_path / "mparticle" / "profiles"
    folder.mkdir(parents=True)
    (folder / "._part-20260101T000000Z-00001.jsonl").write_bytes(b"\x00\x05\x16\x07\xff\xfe")
    summary = fetch(tmp_path, sources=["mparticle"], mpids=[NEG, BIG], credentials=creds, policy=policy,
                    progress=False)
    assert summary.counts["mparticle_profiles"] == 2


def test_a_file_added_by_hand_to_the_profiles_folder_is_not_dated_by_the_listing(fake, creds, policy, tmp_path):
    """fetch.json's listing time dated every file under mixpanel/profiles/: a page added by hand
    after the listing took the new listing's time (and overwrote its fresher profiles)."""
    from cohortlab.loaders.fetched import capture_time

    fetch(tmp_path, sources=["mixpanel"], credentials=creds, policy=policy, progress=False)
    folder = tmp_path / "mixpanel" / "profiles"
    (folder / "manual_page.json").write_text('{"results": []}\n')
    as_of = json.loads((tmp_path / "fetch.json").read_text())["runs"][-1]["items"][-1]["as_of"]
    assert capture_time(folder / "engage_page_00000.json") == as_of.rstrip("Z")
    assert capture_time(folder / "manual_page.json") is None


# --------------------------------------------------------------------------- cohorts list entries
def _listed(fake):
    fake.cohorts += [
        {"id": 2000, "name": None},  # null name: was a cohort named "None"
        {"id": 2001},  # no name
        {"id": True, "name": "Flag"},  # was cohort "True"
        {"id": 4000.0, "name": "Float id"},  # was asked for as "4000.0"
        {"id": "abc", "name": "Text id"},
    ]
    fake.members.update({2000: ["cust-1"], 2001: ["cust-1"], 4000: ["cust-2", "cust-4"]})


def test_all_cohorts_skips_entries_without_an_integer_id_or_a_name(fake, creds, policy, tmp_path, capsys):
    _listed(fake)
    summary = fetch(tmp_path, sources=["mixpanel"], all_cohorts=True, profiles=False, credentials=creds,
                    policy=policy, progress=False, lab=Lab(str(tmp_path / "lab.duckdb")))
    members = sorted(p.relative_to(tmp_path / "mixpanel" / "members").parts[0]
                     for p in (tmp_path / "mixpanel" / "members").rglob("*.jsonl"))
    assert members == ["Churn_Risk-1001", "Float_id-4000", "Power_Users-1000"]
    asked = sorted(json.loads(p["filter_by_cohort"])["id"] for e, _, p in fake.log
                   if e == "engage" and "filter_by_cohort" in p and "page" not in p)
    assert asked == [1000, 1001, 4000]  # 4000 as an integer, never "4000.0" nor true
    line = next((tmp_path / "mixpanel" / "members" / "Float_id-4000").glob("*.jsonl")).read_text()
    assert json.loads(line.splitlines()[0])["filter_by_cohort"] == {"id": 4000, "name": "Float id"}
    assert summary.counts["cohorts_unusable"] == 4
    assert ("4 cohorts list entries skipped by --all-cohorts: id 2000: it has no name (the cohorts loader "
            "quarantines it as missing_name, and its members could not be loaded); id 2001: it has no name") in str(summary)
    err = capsys.readouterr().err
    assert "mixpanel: warning: the cohorts list entry with id true is skipped: its id is not an integer\n" in err
    assert 'mixpanel: warning: the cohorts list entry with id "abc" is skipped: its id is not an integer\n' in err
    with Lab(str(tmp_path / "lab.duckdb")) as lab:
        q = lab.engine.query_rows
        assert sorted(q("SELECT cohort_name, member_count FROM mp_cohort_snapshots")) == [
            ("Churn Risk", 0), ("Float id", 2), ("Power Users", 3)]
        assert not q("SELECT * FROM mp_cohorts WHERE name IN ('None', 'True')")


@pytest.mark.parametrize("asked, why", [("2000", "it has no name"), ("True", "its id is not an integer"),
                                        ("02000", "it has no name")])
def test_a_cohort_asked_for_whose_entry_is_unusable_is_an_error(fake, creds, policy, tmp_path, asked, why):
    _listed(fake)
    with pytest.raises(FetchError, match=re.escape(f"cohort {asked!r} is in the project's cohorts list, but {why}")):
        fetch(tmp_path, sources=["mixpanel"], cohorts=[asked], profiles=False, credentials=creds, policy=policy,
              progress=False)
    assert fake.count("engage") == 0


def test_a_cohort_id_written_as_a_float_is_asked_for_by_its_integer(fake, creds, policy, tmp_path):
    _listed(fake)
    summary = fetch(tmp_path, sources=["mixpanel"], cohorts=["4000"], profiles=False, credentials=creds,
                    policy=policy, progress=False)
    assert summary.counts["members:Float id"] == 2
    assert "cohorts_unusable" not in summary.counts  # named by --cohort: the others are not looked at


def test_cohort_ids_written_as_strings_keep_their_text_and_may_be_negative(fake, creds, policy, tmp_path):
    """"-6" was skipped as no integer while -5 was taken; "0042" was fetched as 42 and written as
    42 in filter_by_cohort, which names no cohort of mp_cohorts (that holds "0042"): the snapshot
    joined no listed cohort."""
    fake.cohorts = [{"id": "0042", "name": "Zero lead"}, {"id": "-6", "name": "Negative text"},
                    {"id": -5, "name": "Negative"}]
    fake.members = {42: ["cust-1"], -6: ["cust-2"], -5: ["cust-1", "cust-2"]}
    summary = fetch(tmp_path, sources=["mixpanel"], all_cohorts=True, profiles=False, credentials=creds,
                    policy=policy, progress=False)
    assert "cohorts_unusable" not in summary.counts
    assert (summary.counts["members:Zero lead"], summary.counts["members:Negative text"],
            summary.counts["members:Negative"]) == (1, 1, 2)
    asked = sorted({e[2]["filter_by_cohort"] for e in fake.log if e[0] == "engage"})
    assert asked == ['{"id": -5}', '{"id": -6}', '{"id": 42}']  # asked by the integer
    written = {}
    for f in (tmp_path / "mixpanel" / "members").rglob("*.jsonl"):
        page = json.loads(f.read_text().splitlines()[0])
        written[page["filter_by_cohort"]["name"]] = page["filter_by_cohort"]["id"]
    assert written == {"Zero lead": "0042", "Negative text": -6, "Negative": -5}
    with Lab(str(tmp_path / "lab.duckdb")) as lab:
        from cohortlab.loaders.folder import load_world

        load_world(lab, tmp_path, progress=False)
        rows = lab.engine.query_rows(
            "SELECT s.cohort_id, c.name, s.member_count FROM mp_cohort_snapshots s "
            "JOIN mp_cohorts c USING (cohort_id) ORDER BY s.cohort_id")
        listed = lab.engine.query_rows("SELECT cohort_id FROM mp_cohorts ORDER BY cohort_id")
    assert rows == [("-5", "Negative", 2), ("-6", "Negative text", 1), ("0042", "Zero lead", 1)]
    assert listed == [("-5",), ("-6",), ("0042",)]  # no cohort "42" registered by the snapshot


# --------------------------------------------------------------------------- mParticle: a wrong URL
def _mpa_fetch(tmp_path, creds, policy, mpids):
    return fetch(tmp_path, sources=["mparticle"], mpids=mpids, credentials=creds, policy=policy, progress=False)


def test_every_mpid_answered_404_is_a_wrong_url_not_missing_profiles(fake, env, policy, tmp_path):
    """A wrong Profile API URL answered a generic 404 for every MPID: the run said ok, complete,
    every MPID 'not found', and listed them all as missing (not asked again)."""
    from cohortlab.fetch.credentials import load_credentials
    from tests.fetch.conftest import BIG, NEG

    creds = load_credentials(env={**env, "COHORTLAB_MPARTICLE_API_URL": fake.base + "/wrong"})
    with pytest.raises(FetchError) as e:
        _mpa_fetch(tmp_path, creds, policy, [NEG, BIG, 5])
    assert str(e.value) == (
        f"mparticle: every one of the 3 MPIDs asked for answered HTTP 404 (no such profile) on "
        f"{fake.base}/wrong/userprofile/v1/11/22/33/<mpid>: the Profile API URL (COHORTLAB_MPARTICLE_API_URL / "
        "mparticle.api_url: the pod's host) or the org, account or workspace id (MPARTICLE_ORG_ID, "
        "MPARTICLE_ACCOUNT_ID, MPARTICLE_WORKSPACE_ID) is likely wrong; none is recorded as missing")
    assert not (tmp_path / ".fetch" / "mparticle_missing.json").exists()
    # the --json output says it is a fetch error, not ok
    r = _cli(["--out", str(tmp_path / "o"), "--source", "mparticle", "--mpids", _mpids(tmp_path, [1, 2, 3]),
              "--json"], {**env, "COHORTLAB_MPARTICLE_API_URL": fake.base + "/wrong"})
    j = json.loads(r.stdout)
    assert (r.exit_code, j["ok"], j["complete"], j["error"]["kind"]) == (1, False, False, "fetch")
    assert "is likely wrong" in j["error"]["message"]


def _mpids(tmp_path, ids) -> str:
    f = tmp_path / "mpids.txt"
    f.write_text("".join(f"{i}\n" for i in ids))
    return str(f)


def test_a_few_missing_profiles_are_still_just_missing(fake, creds, policy, tmp_path):
    from tests.fetch.conftest import BIG

    summary = _mpa_fetch(tmp_path, creds, policy, [BIG, 5, 6])  # 2 of 3 missing: as before
    assert (summary.counts["mparticle_profiles"], summary.counts["mparticle_missing"]) == (1, 2)
    summary = _mpa_fetch(tmp_path / "b", creds, policy, [7, 8])  # fewer than 3 asked: as before
    assert summary.counts["mparticle_missing"] == 2 and summary.complete


def test_a_404_that_is_a_web_page_is_not_the_profile_api(fake, creds, policy, tmp_path):
    from tests.fetch.conftest import BIG

    fake.profile_faults[BIG] = [("raw", 404, b"<html><body><h1>404 Not Found</h1></body></html>", "text/html")]
    with pytest.raises(FetchError, match=re.escape(
            f"mparticle: HTTP 404 on {fake.base}/userprofile/v1/11/22/33/<mpid> with a body that is not JSON "
            "(<html><body><h1>404 Not Found</h1></body></html>): no Profile API answers at this URL; "
            "the Profile API URL")):
        _mpa_fetch(tmp_path, creds, policy, [BIG])
    assert not (tmp_path / ".fetch" / "mparticle_missing.json").exists()


def test_all_404_is_just_missing_once_the_workspace_answered_profiles_into_the_folder(fake, creds, policy, tmp_path):
    """A run whose MPIDs were all gone upstream was called a wrong URL after a first run had
    fetched profiles from the same workspace (run 2 asking the missing again, run 3 asking 3 new
    MPIDs deleted since): an error every time, since none was ever recorded missing."""
    from tests.fetch.conftest import BIG, FALLBACK, NEG

    missing = tmp_path / ".fetch" / "mparticle_missing.json"
    first = [NEG, BIG, FALLBACK, 11, 12, 13]
    summary = _mpa_fetch(tmp_path, creds, policy, first)
    assert (summary.counts["mparticle_profiles"], summary.counts["mparticle_missing"]) == (3, 3)
    summary = fetch(tmp_path, sources=["mparticle"], mpids=first, retry_missing=True, credentials=creds,
                    policy=policy, progress=False)
    assert (summary.counts["mparticle_profiles"], summary.counts["mparticle_missing"], summary.complete) == (0, 3, True)
    assert json.loads(missing.read_text())["lists"][0]["missing"] == [11, 12, 13]
    summary = _mpa_fetch(tmp_path, creds, policy, [*first, 21, 22, 23])
    assert (summary.counts["mparticle_profiles"], summary.counts["mparticle_missing"], summary.complete) == (0, 3, True)
    assert json.loads(missing.read_text())["lists"][0]["missing"] == [11, 12, 13, 21, 22, 23]
    # the parts removed since: fetch.json still records that the workspace answered profiles here
    for part in (tmp_path / "mparticle" / "profiles").iterdir():
        part.unlink()
    summary = _mpa_fetch(tmp_path, creds, policy, [31, 32, 33])
    assert summary.counts["mparticle_missing"] == 3
    # a 404 that is a web page is still an error
    fake.profile_faults[41] = [("raw", 404, b"<html>Not Found</html>", "text/html")]
    with pytest.raises(FetchError, match="with a body that is not JSON"):
        _mpa_fetch(tmp_path, creds, policy, [41])


def test_all_404_in_a_folder_of_another_workspace_s_missing_list_is_still_a_wrong_url(fake, env, creds, policy,
                                                                                       tmp_path):
    """Only profiles fetched from the same workspace count: a wrong URL into a folder the right one
    fetched into is still the error."""
    from cohortlab.fetch.credentials import load_credentials
    from tests.fetch.conftest import BIG

    _mpa_fetch(tmp_path, creds, policy, [BIG, 5, 6])
    wrong = load_credentials(env={**env, "COHORTLAB_MPARTICLE_API_URL": fake.base + "/wrong"})
    for part in (tmp_path / "mparticle" / "profiles").iterdir():  # else refused as another workspace's
        part.unlink()
    with pytest.raises(FetchError, match="every one of the 3 MPIDs asked for answered HTTP 404"):
        _mpa_fetch(tmp_path, wrong, policy, [7, 8, 9])


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_wrong_workspace_stops_after_the_first_answers_not_after_every_mpid(fake, env, policy, tmp_path,
                                                                              monkeypatch, concurrency):
    """A wrong workspace id answered 404 for every MPID, which the run found out only at its end,
    having asked every one (a million MPIDs at 15 a second: 18 hours)."""
    from cohortlab.fetch import mparticle
    from cohortlab.fetch.credentials import load_credentials

    monkeypatch.setattr(mparticle, "ALL_MISSING_EARLY", 5, raising=False)
    fake.other_workspaces["11/22/99"] = {}
    wrong = load_credentials(env={**env, "MPARTICLE_WORKSPACE_ID": "99"})
    with pytest.raises(FetchError) as e:
        fetch(tmp_path, sources=["mparticle"], mpids=range(1, 41), concurrency=concurrency, rate=None,
              credentials=wrong, policy=policy, progress=False)
    assert fake.count("profile") == 5  # the sample (spread across the 40), alone: nothing else was asked
    msg = str(e.value)
    assert msg.startswith(f"mparticle: every one of the 5 MPIDs asked for answered HTTP 404 (no such "
                          f"profile) on {fake.base}/userprofile/v1/11/22/99/<mpid>: the Profile API URL")
    assert msg.endswith("is likely wrong; none is recorded as missing; the run stopped there, without asking the "
                        "other 35")
    assert not (tmp_path / ".fetch" / "mparticle_missing.json").exists()
    # once that workspace answered a profile into the folder, the 39 other MPIDs answering 404 are missing profiles
    fake.other_workspaces["11/22/99"] = {7: fake.mpa_profiles[next(iter(fake.mpa_profiles))]}
    summary = fetch(tmp_path, sources=["mparticle"], mpids=[7], rate=None, credentials=wrong, policy=policy,
                    progress=False)
    assert summary.counts["mparticle_profiles"] == 1
    summary = fetch(tmp_path, sources=["mparticle"], mpids=range(1, 41), concurrency=concurrency, rate=None,
                    credentials=wrong, policy=policy, progress=False)
    assert (summary.counts["mparticle_missing"], summary.complete) == (39, True)


def test_a_run_stopped_while_its_sample_is_asked_records_no_404_as_missing(fake, env, policy, tmp_path, monkeypatch):
    """Ctrl-C (or an error) while the sample was asked wrote its 404s so far as missing, also for a
    wrong workspace, whose next run then said 'none is recorded as missing' (red team)."""
    from cohortlab.fetch import mparticle
    from cohortlab.fetch.credentials import load_credentials

    monkeypatch.setattr(mparticle, "ALL_MISSING_EARLY", 5, raising=False)
    fake.other_workspaces["11/22/99"] = {}
    wrong = load_credentials(env={**env, "MPARTICLE_WORKSPACE_ID": "99"})
    asked = mparticle.MParticleClient.profile_text
    calls = []

    def interrupted(self, mpid):
        calls.append(mpid)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return asked(self, mpid)

    monkeypatch.setattr(mparticle.MParticleClient, "profile_text", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fetch(tmp_path, sources=["mparticle"], mpids=range(1, 41), concurrency=1, rate=None,
              credentials=wrong, policy=policy, progress=False)
    assert fake.count("profile") >= 3 and not (tmp_path / ".fetch" / "mparticle_missing.json").exists()
    monkeypatch.setattr(mparticle.MParticleClient, "profile_text", asked)
    with pytest.raises(FetchError, match="every one of the 5 MPIDs asked .* none is recorded as missing; the run "
                                         "stopped there, without asking the other 35$"):
        fetch(tmp_path, sources=["mparticle"], mpids=range(1, 41), concurrency=1, rate=None,
              credentials=wrong, policy=policy, progress=False)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_right_workspace_whose_first_mpids_are_gone_is_not_refused_early(fake, creds, policy, tmp_path,
                                                                           monkeypatch, concurrency):
    """The early check looked at the first ALL_MISSING_EARLY answers of the MPIDs asked in sorted
    order: a right workspace whose MPIDs deleted upstream sort first (300 of 350 gone, the 50 left
    sorting last) was refused as a wrong URL at every run, since a stopped run records nothing as
    missing (red team). The check now looks at a sample spread across the sorted list, asked first.
    Here 10 of 12 gone, the sample 3."""
    from cohortlab.fetch import mparticle

    monkeypatch.setattr(mparticle, "ALL_MISSING_EARLY", 3, raising=False)
    gone, present = list(range(-12, -2)), [1000, 1001]
    fake.mpa_profiles = {m: {"mpid": m, "user_attributes": {}} for m in present}
    summary = fetch(tmp_path, sources=["mparticle"], mpids=gone + present, concurrency=concurrency, rate=None,
                    credentials=creds, policy=policy, progress=False)
    assert (summary.counts["mparticle_profiles"], summary.counts["mparticle_missing"], summary.complete) == (2, 10, True)
    assert fake.count("profile") == 12
    assert mparticle.read_missing(tmp_path / ".fetch" / "mparticle_missing.json") == set(gone)
    assert mparticle.fetched_mpids(tmp_path / "mparticle" / "profiles") == set(present)
    # the next run asks nothing: every MPID is fetched or known missing
    summary = fetch(tmp_path, sources=["mparticle"], mpids=gone + present, concurrency=concurrency, rate=None,
                    credentials=creds, policy=policy, progress=False)
    assert (summary.counts["mparticle_profiles"], summary.counts["mparticle_known_missing"]) == (0, 10)
    assert fake.count("profile") == 12


def test_the_mpids_are_asked_a_spread_sample_first_then_the_others_in_order():
    from cohortlab.fetch.mparticle import asking_order

    assert asking_order(list(range(10)), 3) == [1, 5, 8, 0, 2, 3, 4, 6, 7, 9]
    assert asking_order(list(range(4)), 4) == [0, 1, 2, 3]  # a run no larger than the sample: in order
    many = list(range(-5000, 5000, 7))
    order = asking_order(many, 100)
    assert sorted(order) == many and order[100:] == sorted(order[100:])
    assert min(order[:100]) < many[15] and max(order[:100]) > many[-15]  # from one end to the other


def test_a_redirect_is_refused_naming_its_host_without_the_url(fake, creds, policy, tmp_path):
    """It said only "HTTP 302 on /api/2.0/export"."""
    fake.faults["export"] = [("redirect",)]
    with pytest.raises(FetchError) as e:
        MixpanelClient(creds.mixpanel, policy=policy).export_events(tmp_path, "2026-01-01", "2026-01-01")
    assert str(e.value) == ("mixpanel: HTTP 302 on /api/2.0/export: a redirect to elsewhere.example, not followed "
                            "(the credentials were not sent there)")


def test_a_cohort_asked_for_by_its_integer_selects_the_entry_listed_as_text(fake, creds, policy, tmp_path):
    """--cohort 42 said 'no cohort '42' in the project's cohorts list' for an entry listed as
    "0042", although Mixpanel's id is the integer 42 (the request sends 42). The listed text
    stays in the files: the snapshot joins the cohort mp_cohorts holds as "0042"."""
    fake.cohorts = [{"id": "0042", "name": "Zero lead"}, {"id": 7, "name": "Seven"}]
    fake.members = {42: ["cust-1", "cust-2"], 7: ["cust-1"]}
    summary = fetch(tmp_path, sources=["mixpanel"], cohorts=["42", "007"], profiles=False, credentials=creds,
                    policy=policy, progress=False)
    assert (summary.counts["members:Zero lead"], summary.counts["members:Seven"]) == (2, 1)
    assert "members of 'Zero lead' (id 0042): 2 as of" in str(summary)
    asked = sorted({e[2]["filter_by_cohort"] for e in fake.log if e[0] == "engage"})
    assert asked == ['{"id": 42}', '{"id": 7}']  # asked by the integer
    (f,) = (tmp_path / "mixpanel" / "members" / "Zero_lead-0042").glob("*.jsonl")
    assert json.loads(f.read_text().splitlines()[0])["filter_by_cohort"] == {"id": "0042", "name": "Zero lead"}
    (g,) = (tmp_path / "mixpanel" / "members" / "Seven-7").glob("*.jsonl")
    assert json.loads(g.read_text().splitlines()[0])["filter_by_cohort"] == {"id": 7, "name": "Seven"}
    items = json.loads((tmp_path / "fetch.json").read_text())["runs"][-1]["items"]
    assert sorted(i["cohort_id"] for i in items if i["kind"] == "mixpanel-members") == ["0042", "7"]


def test_an_integer_naming_two_listed_ids_is_ambiguous_and_an_exact_id_wins(fake, creds, policy, tmp_path):
    fake.cohorts = [{"id": "0042", "name": "Zero lead"}, {"id": 42, "name": "Plain"}]
    fake.members = {42: ["cust-1"]}
    with pytest.raises(FetchError, match=re.escape("cohort id '042' is ambiguous: the cohorts list has it as "
                                                   "0042, 42: give the id as listed")):
        fetch(tmp_path, sources=["mixpanel"], cohorts=["042"], profiles=False, credentials=creds, policy=policy,
              progress=False)
    assert fake.count("engage") == 0
    summary = fetch(tmp_path, sources=["mixpanel"], cohorts=["0042"], profiles=False, credentials=creds,
                    policy=policy, progress=False)
    assert list(k for k in summary.counts if k.startswith("members:")) == ["members:Zero lead"]


def test_an_integer_that_is_one_cohort_s_id_and_another_s_name_is_ambiguous(fake, creds, policy, tmp_path):
    """--cohort 42 picked the entry listed as "0042" (the same integer) although another cohort is
    NAMED "42", which it picked before 0e8dc6f (red team): neither is written as given, so it is
    an ambiguity error naming both, masked as every error; the id as listed chooses."""
    fake.cohorts = [{"id": "0042", "name": "ann@example.com"}, {"id": 1000, "name": "42"}]
    fake.members = {42: ["cust-1"], 1000: ["cust-2"]}
    with pytest.raises(FetchError) as e:
        fetch(tmp_path, sources=["mixpanel"], cohorts=["42"], profiles=False, credentials=creds, policy=policy,
              progress=False)
    assert str(e.value) == ("cohort '42' is ambiguous: it is the integer of the listed id 0042 ('<email>') "
                            "and the name of the cohort with id 1000: give the id as listed (0042 or 1000)")
    assert fake.count("engage") == 0
    for given, picked in (("0042", "members:<email> (id 0042)"), ("1000", "members:42")):
        summary = fetch(tmp_path / given, sources=["mixpanel"], cohorts=[given], profiles=False, credentials=creds,
                        policy=policy, progress=False)
        assert [k for k in summary.counts if k.startswith("members:")] == [picked]
    # an id written as listed wins over a name; the integer and the name of one cohort are that cohort
    fake.cohorts = [{"id": 42, "name": "Plain"}, {"id": 1000, "name": "42"}, {"id": "007", "name": "7"}]
    fake.members = {42: ["cust-1"], 1000: ["cust-2"], 7: ["cust-3"]}
    summary = fetch(tmp_path / "b", sources=["mixpanel"], cohorts=["42", "7"], profiles=False, credentials=creds,
                    policy=policy, progress=False)
    assert [k for k in summary.counts if k.startswith("members:")] == ["members:Plain", "members:7"]
