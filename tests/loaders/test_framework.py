"""The loading framework (cohortlab/loaders/base.py), exercised through the mParticle loaders:
file-level errors name the file, gzip is detected by content, file/dir/glob inputs, all or
nothing, idempotence, rows_read = loaded + deduplicated + quarantined, and the CLI."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from cohortlab import Lab
from cohortlab.cli import main
from cohortlab.loaders import LoadError

PROFILES, BATCHES, CSV = "mparticle-profiles", "mparticle-batches", "mparticle-csv"

GOOD = {
    PROFILES: ("p.jsonl", '{"mpid": 1, "user_identities": {"customer_id": "c1"}, "user_attributes": {"a": "1"}}\n'
                          '{"mpid": -2}\n'),
    BATCHES: ("b.jsonl", '{"mpid": 1, "user_attributes": {"Power Users": true}}\n{"mpid": 3}\n'),
    CSV: ("p.csv", "mpid,customer_id,plan\n1,c1,pro\n-2,c2,free\n"),
}


def big(kind: str, n: int = 3000) -> str:
    """A larger valid file of ``kind`` (so a truncated gzip of it is cut mid-stream)."""
    if kind == CSV:
        return "mpid,email\n" + "".join(f"{i},user{i}@example.com\n" for i in range(1, n + 1))
    return "".join(json.dumps({"mpid": i, "user_attributes": {"n": str(i)}}) + "\n" for i in range(1, n + 1))


def truncated_gzip(write, name: str, text: str):
    p = write(name, text, gz=True)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


# --------------------------------------------------------------------------- file-level errors
@pytest.mark.parametrize("kind", [PROFILES, BATCHES, CSV])
@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_file_is_a_load_error(lab, write, kind, content):
    p = write("empty.dat", content)
    with pytest.raises(LoadError, match="empty") as e:
        lab.load(kind, p)
    assert e.value.path == str(p) and str(p) in str(e.value)


@pytest.mark.parametrize("kind", [PROFILES, BATCHES])
def test_json_array_without_records_is_a_load_error(lab, write, kind):
    p = write("none.json", "[]")
    with pytest.raises(LoadError, match="empty") as e:
        lab.load(kind, p)
    assert str(p) in str(e.value)


@pytest.mark.parametrize("kind", [PROFILES, BATCHES])
@pytest.mark.parametrize("content", ["mpid,email\n1,a@x\n", "<html><body>403</body></html>", "\x00\x01\x02binary"])
def test_unrecognised_format_is_a_load_error(lab, write, kind, content):
    p = write("weird.json", content)
    with pytest.raises(LoadError, match="unrecognised format") as e:
        lab.load(kind, p)
    assert str(p) in str(e.value)


def test_the_opening_of_an_unrecognised_file_is_shown_without_personal_data(lab, write, run_once):
    p = write("members.csv", "ann@example.com,+15555550105,x\nbob@example.com,+44 7700 900123,y\n")
    with pytest.raises(LoadError) as e:
        lab.load("mixpanel-events", p)
    assert str(e.value).endswith("file starts with '<personal data>,<personal data>,x\\n<personal data>' (a CSV?)")
    p = write("page.json", "<html><body>403 Forbidden</body></html>")
    with pytest.raises(LoadError, match=r"file starts with '<html><body>403 Forbidden</body></html>'"):
        lab.load("mixpanel-events", p)


@pytest.mark.parametrize("content, csv", [
    ("distinct_id\nu1\nu2\n", True),  # a one-column CSV of ids: no delimiter on its header (a newcomer's walkthrough)
    ('"$distinct_id"\r\nu1\r\n', True),
    ("mpid,email\n1,a@x\n", True),
    ("hello\n", False),  # one word, no second line
    ("Traceback (most recent call last):\n  File\n", False),
])
def test_a_file_that_opens_like_a_csv_is_asked_whether_it_is_one(lab, write, content, csv, run_once):
    p = write("f.json", content)
    with pytest.raises(LoadError, match="unrecognised format") as e:
        lab.load("mixpanel-events", p)
    assert str(e.value).endswith("(a CSV?)") is csv


def test_csv_loader_on_a_json_file_names_the_file_and_what_it_is(lab, write):
    p = write("p.csv", '{"mpid": 1}\n')
    with pytest.raises(LoadError, match=r"JSON, not a CSV \(the file starts with '\{'\)") as e:
        lab.load(CSV, p)
    assert str(p) in str(e.value)


@pytest.mark.parametrize("kind", [PROFILES, BATCHES, CSV])
def test_truncated_gzip_is_a_load_error(lab, write, table_snapshot, kind):
    p = truncated_gzip(write, "cut.gz", big(kind))
    before = table_snapshot()
    with pytest.raises(LoadError) as e:
        lab.load(kind, p)
    assert str(p) in str(e.value)
    assert "gzip" in str(e.value).lower()  # the real cause, not a follow-up error
    assert table_snapshot() == before


@pytest.mark.parametrize("kind", [PROFILES, BATCHES, "mixpanel-cohorts", "mixpanel-events"])
@pytest.mark.parametrize("gz", [False, True])
def test_a_json_array_that_breaks_off_is_named_by_the_line_and_column_where_it_stops(lab, write, table_snapshot,
                                                                                     kind, gz):
    """An array cut short (a Profile API answer, a cohorts list, batches, an events array): the
    error says where the JSON stops, as for a pretty-printed page (it named the file only)."""
    p = write("cut.json", '[\n  {"mpid": 1},\n  {"mpid": 22, "user_attributes": {"k": tr', gz=gz)
    before = table_snapshot()
    with pytest.raises(LoadError) as e:
        lab.load(kind, p)
    assert str(e.value) == (f"{p}: malformed JSON at line 3, column 41: Expecting value "
                            "(the array is not closed: truncated file?)")
    assert table_snapshot() == before


@pytest.mark.parametrize("kind", [PROFILES, BATCHES, CSV])
def test_gzip_is_detected_by_content_not_name(lab, q, write, kind):
    name, text = GOOD[kind]
    p = write(name, text, gz=True)  # gzip bytes under a .jsonl / .csv name
    assert p.read_bytes()[:2] == b"\x1f\x8b"
    r = lab.load(kind, p)
    assert r.loaded == 2 and r.n_quarantined == 0


# --------------------------------------------------------------------------- inputs
def test_file_directory_and_glob_inputs(tmp_path, write):
    a = write("in/a.jsonl", '{"mpid": 1}\n')
    write("in/sub/b.jsonl", '{"mpid": 2}\n')
    write("in/c.json", '{"mpid": 3}')
    write("in/.hidden.jsonl", "not loaded: hidden\n")
    with Lab() as lab:
        assert lab.load(PROFILES, a).files == [str(a)]
    with Lab() as lab:
        r = lab.load(PROFILES, tmp_path / "in")
        assert sorted(r.files) == sorted(str(tmp_path / "in" / f) for f in ("a.jsonl", "c.json", "sub/b.jsonl"))
        assert lab.engine.count("mpa_profiles") == 3
    with Lab() as lab:
        r = lab.load(PROFILES, str(tmp_path / "in" / "**" / "*.jsonl"))
        assert sorted(r.files) == sorted([str(a), str(tmp_path / "in" / "sub" / "b.jsonl")])
    with Lab() as lab:  # a list mixing a file and a glob; the same file twice is loaded once
        r = lab.load(PROFILES, [a, str(tmp_path / "in" / "*.json*")])
        assert len(r.files) == 2


def test_missing_inputs_are_load_errors(lab, tmp_path):
    with pytest.raises(LoadError, match="no such file"):
        lab.load(PROFILES, tmp_path / "nope.json")
    with pytest.raises(LoadError, match="no file matches"):
        lab.load(PROFILES, str(tmp_path / "*.nothing"))
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(LoadError, match="no files"):
        lab.load(PROFILES, tmp_path / "empty_dir")


# --------------------------------------------------------------------------- all or nothing
BAD_SECOND = {
    PROFILES: ("2_bad.json", '{\n  "mpid": 5,\n  "user_identities": [\n'),   # broken JSON document
    BATCHES: ("2_bad.json", "id;value\n1;2\n"),                                # not JSON at all
    CSV: ("2_bad.csv", "id,email\n5,e@x\n"),                                   # no mpid column
}


@pytest.mark.parametrize("kind", [PROFILES, BATCHES, CSV])
def test_a_bad_file_rolls_back_the_whole_load(lab, write, table_snapshot, kind):
    name, text = GOOD[kind]
    lab.load(kind, write("earlier/" + name, text))  # some state before
    lab.load(BATCHES, write("earlier/b0.jsonl", '{"mpid": 1, "user_attributes": {"x": "0"}}\n'))
    before = table_snapshot()
    good_first = write("multi/1_good" + name[name.index("."):],
                       text.replace('"c1"', '"CHANGED"').replace("c1,", "CHANGED,") + ("" if kind == CSV else '{"oops\n'))
    bad_name, bad_text = BAD_SECOND[kind]
    write("multi/" + bad_name, bad_text)
    with pytest.raises(LoadError) as e:
        lab.load(kind, good_first.parent)
    assert bad_name in str(e.value)
    assert table_snapshot() == before  # every table, incl. loads and rejects


@pytest.mark.parametrize("kind", [PROFILES, BATCHES, CSV])
def test_a_truncated_gzip_second_file_rolls_back(lab, write, table_snapshot, kind):
    name, text = GOOD[kind]
    before = table_snapshot()
    write("multi/1" + name, text)
    truncated_gzip(write, "multi/2.gz", big(kind))
    with pytest.raises(LoadError, match="2.gz"):
        lab.load(kind, write("multi/1" + name, text).parent)
    assert table_snapshot() == before


# --------------------------------------------------------------------------- idempotence
@pytest.mark.parametrize("kind", [PROFILES, BATCHES, CSV])
def test_loading_the_same_file_twice_changes_nothing(lab, write, table_snapshot, kind):
    name, text = GOOD[kind]
    p = write(name, text)
    r1 = lab.load(kind, p)
    assert r1.files == [str(p)] and r1.skipped == []
    after_first = table_snapshot()
    r2 = lab.load(kind, p)
    assert r2.files == [] and r2.skipped == [str(p)]
    assert (r2.rows_read, r2.loaded, r2.deduplicated, r2.n_quarantined) == (0, 0, 0, 0)
    assert "already loaded (skipped)" in str(r2)
    assert table_snapshot() == after_first
    # the same content under another name is the same input
    copy = p.with_name("copy_of_" + p.name)
    shutil.copy(p, copy)
    assert lab.load(kind, copy).skipped == [str(copy)]
    assert table_snapshot() == after_first


def test_options_that_shape_rows_are_part_of_the_fingerprint(lab, q, write):
    p = write("p.csv", "mpid,plan,Power Users\n1,pro,true\n")
    lab.load(CSV, p, attributes="plan")
    assert q("SELECT name FROM mpa_attributes") == [("plan",)]
    r = lab.load(CSV, p)  # all attributes: a different load, not skipped
    assert r.skipped == [] and r.loaded == 1
    assert q("SELECT name FROM mpa_attributes") == [("Power Users",), ("plan",)]


# --------------------------------------------------------------------------- rows_read balance
def all_fixtures(write, mparticle_data_dir):
    out = [(k, mparticle_data_dir / f) for k, f in [
        (PROFILES, "profiles.json"), (PROFILES, "profiles.jsonl"), (BATCHES, "batches.json"), (CSV, "profiles.csv")
    ]]
    out += [(k, write(f"good/{k}/{n}", t)) for k, (n, t) in GOOD.items()]
    out += [
        (PROFILES, write("mixed/p.jsonl", '{"mpid": 1}\n{"mpid": 1}\n{"mpid": 1.5}\n{bad\n\n{"x": 1}\n[2]\n')),
        (PROFILES, write("mixed/p.json", json.dumps([{"mpid": 1}, {"mpid": "1"}, 7, {"mpid": None}]))),
        (BATCHES, write("mixed/b.jsonl", '{"mpid": 1, "source_request_id": "r"}\n{"mpid": 1, "source_request_id": "r"}\n'
                                         '{"mpid": "x"}\n{"mpid": 2, "deleted_user_attributes": [3]}\nnope\n')),
        (CSV, write("mixed/p.csv", "mpid,email\n1,a\n1,b\n,c\nx,d\n2,e\n")),
        (CSV, write("mixed/big.csv.gz", big(CSV, 500), gz=True)),
        (PROFILES, write("mixed/big.jsonl.gz", big(PROFILES, 500), gz=True)),
    ]
    return out


def test_rows_read_is_loaded_plus_deduplicated_plus_quarantined(lab, q, write, mparticle_data_dir):
    for kind, path in all_fixtures(write, mparticle_data_dir):
        r = lab.load(kind, path)
        assert r.rows_read == r.loaded + r.deduplicated + r.n_quarantined > 0, (kind, path)
        (load_id,) = r.load_ids
        assert q("SELECT count(*) FROM rejects WHERE load_id = ?", [load_id]) == [(r.n_quarantined,)]
    assert q("SELECT count(*) FROM loads WHERE rows_read <> loaded + deduplicated + quarantined") == [(0,)]
    assert q("SELECT sum(deduplicated) > 0, sum(quarantined) > 0 FROM loads") == [(True, True)]


# --------------------------------------------------------------------------- CLI
def run(*args):
    return CliRunner().invoke(main, list(map(str, args)))


def test_cli_load_and_info(tmp_path, mparticle_data_dir):
    db = tmp_path / "lab.duckdb"
    res = run("load", "--db", db, "--no-progress", PROFILES, mparticle_data_dir / "profiles.json",
              mparticle_data_dir / "profiles.jsonl")
    assert res.exit_code == 0, res.output
    assert "mparticle-profiles: 2 file(s) loaded" in res.stdout
    res = run("load", "--db", db, "--no-progress", "--json", BATCHES, mparticle_data_dir / "batches.json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {
        "ok": True, "kind": BATCHES, "files": [str(mparticle_data_dir / "batches.json")], "skipped": [],
        "rows_read": 7, "loaded": 7, "deduplicated": 0, "quarantined": {}, "warnings": [],
        "not_read": [],
    }
    res = run("load", "--db", db, "--no-progress", PROFILES, mparticle_data_dir / "profiles.json")
    assert res.exit_code == 0 and "already loaded (skipped)" in res.stdout
    res = run("info", "--db", db)
    assert res.exit_code == 0, res.output
    lines = {ln.split()[0]: ln.split()[-1] for ln in res.stdout.splitlines() if ln.startswith("  ")}
    assert lines["mpa_profiles"] == "9" and lines["loads"] == "3" and lines["rejects"] == "0"


def test_info_says_from_which_time_each_mixpanel_profile_load_counts(tmp_path, write):
    """Send-time resolution reads a profile load by its as_of, else by its load time (a fetched
    folder's profiles take fetch.json's time): `info` shows which, per time, so that a load that
    forgot -o as_of is seen before it dates the profiles wrongly."""
    db = tmp_path / "lab.duckdb"
    first = write("p1.jsonl", '{"$distinct_id": "u1", "$properties": {"$mparticle_user_id": "1"}}\n'
                              '{"$distinct_id": "u2", "$properties": {}}\n')
    later = write("p2.jsonl", '{"$distinct_id": "u1", "$properties": {"$mparticle_user_id": "2"}}\n')
    assert run("load", "--db", db, "--no-progress", "mixpanel-profiles", first, "-o", "as_of=2026-03-01T05:00:00Z"
               ).exit_code == 0
    assert run("load", "--db", db, "--no-progress", "mixpanel-profiles", later).exit_code == 0
    with Lab(db) as lab:
        loaded_at = lab.engine.query_rows("SELECT loaded_at FROM loads WHERE source_file = ?", [str(later)])[0][0]
        snaps = lab.info()["profile_snapshots"]
    assert snaps[["dated_by", "files", "profiles"]].values.tolist() == [["as_of", 1, 2], ["load time", 1, 1]]
    assert [str(t) for t in snaps["counts_from"]] == ["2026-03-01 05:00:00", str(loaded_at)]
    res = run("info", "--db", db)
    assert res.exit_code == 0, res.output
    text = res.stdout.split("Mixpanel profile snapshots (send-time resolution reads each from this time):\n")[1]
    assert text.splitlines()[1].split() == ["2026-03-01", "05:00:00", "as_of", "1", "2"]
    assert text.splitlines()[2].split()[2:] == ["load", "time", "1", "1"]


def test_cli_csv_options(tmp_path, write):
    db = tmp_path / "lab.duckdb"
    p = write("p.csv", "id,email,plan,note\n7,a@x,pro,n\n")
    res = run("load", "--db", db, "--no-progress", CSV, p, "-o", "mpid_column=id", "-o", "attributes=plan")
    assert res.exit_code == 0, res.output
    with Lab(db) as lab:
        assert lab.engine.query_rows("SELECT mpid, name FROM mpa_attributes") == [(7, "plan")]


def test_cli_errors_exit_non_zero_with_message_on_stderr(tmp_path, write):
    db = tmp_path / "lab.duckdb"
    bad = write("bad.csv", "id,email\n1,a\n")
    res = run("load", "--db", db, "--no-progress", CSV, bad)
    assert res.exit_code != 0
    assert "error:" in res.stderr and str(bad) in res.stderr and "columns found: id, email" in res.stderr
    assert res.stdout == ""

    empty = write("empty.json", "")
    res = run("load", "--db", db, "--no-progress", PROFILES, empty)
    assert res.exit_code != 0 and str(empty) in res.stderr and "empty" in res.stderr

    cut = truncated_gzip(write, "cut.jsonl", big(PROFILES))
    res = run("load", "--db", db, "--no-progress", PROFILES, cut)
    assert res.exit_code != 0 and str(cut) in res.stderr

    res = run("load", "--db", db, "--no-progress", PROFILES, tmp_path / "missing.json")
    assert res.exit_code != 0 and "no such file" in res.stderr

    res = run("load", "--db", db, "--no-progress", PROFILES, bad, "-o", "bogus=1")
    assert res.exit_code != 0 and "unknown option" in res.stderr

    res = run("info", "--db", tmp_path / "nothing.duckdb")
    assert res.exit_code != 0 and "no such database" in res.stderr
    # nothing was loaded by the failed commands
    with Lab(db) as lab:
        assert lab.engine.count("loads") == 0


def test_a_load_out_of_memory_names_the_limit_in_use_and_asks_for_more(monkeypatch):
    """DuckDB spills what it can: out of memory under a limit (the default one, or one the user
    set) calls for more memory, not for setting a limit already set."""
    from cohortlab.loaders.base import _clean_engine_error

    oom = RuntimeError("Out of Memory Error: failed to allocate data of size 64.0 MiB (1.3 GiB/1.4 GiB used)")
    monkeypatch.delenv("COHORTLAB_MEMORY_LIMIT", raising=False)
    assert _clean_engine_error(oom) == (
        "Out of Memory Error: failed to allocate data of size 64.0 MiB (1.3 GiB/1.4 GiB used) (with the default "
        "memory limit): give DuckDB more memory, e.g. COHORTLAB_MEMORY_LIMIT=1.5GB")
    monkeypatch.setenv("COHORTLAB_MEMORY_LIMIT", "1.4GB")
    assert _clean_engine_error(oom).endswith(
        "(with COHORTLAB_MEMORY_LIMIT=1.4GB): give DuckDB more memory, e.g. COHORTLAB_MEMORY_LIMIT=1.5GB")


def test_the_all_quarantined_warning_and_json_counts_do_not_depend_on_row_order(run_once):
    """Reasons with the same count are named in one order, whatever order the engine's GROUP BY
    gave them (the warning's text changed from run to run)."""
    from collections import Counter

    from cohortlab.loaders.base import FileResult, LoadReport

    texts = set()
    for order in (["malformed_json", "bad_properties", "not_an_object"], ["not_an_object", "bad_properties", "malformed_json"]):
        report = LoadReport("mixpanel-members")
        report.add("m.json", 1, FileResult(rows_read=3, quarantined=Counter({r: 1 for r in order})))
        texts.add((tuple(report.warnings), json.dumps(report.as_dict())))
    assert len(texts) == 1
    assert "(3: bad_properties 1, malformed_json 1, not_an_object 1)" in texts.pop()[0][0]


def test_load_help_says_what_each_kind_takes(run_once):
    """`cohortlab load --help` lists every kind with one short line saying what it takes (click's
    own help: a definition list after the command's text); the usage line names KIND instead of
    the eleven choices, which an unknown kind's error still lists."""
    from click.testing import CliRunner

    from cohortlab.cli import main
    from cohortlab.loaders import LOADERS, loader_class

    help_lines = {kind: loader_class(kind).description for kind in LOADERS}
    assert all(help_lines.values()), help_lines
    r = CliRunner().invoke(main, ["load", "--help"], terminal_width=80)
    assert r.exit_code == 0
    assert "load [OPTIONS] KIND PATHS...\n" in r.output
    lines = r.output.splitlines()
    for kind, text in help_lines.items():
        assert f"  {kind:<28}{text}" in lines, kind  # one line each at 80 columns
    assert "  mixpanel-pipeline-events    Data Pipelines events, JSON or Parquet" in lines
    r = CliRunner().invoke(main, ["load", "--db", "x.duckdb", "nope", "f.json"])
    assert r.exit_code == 2 and "'nope' is not one of" in r.output and "'mparticle-parquet'" in r.output
