"""A folder of exports (load_world, ``cohortlab report --data``) whose files are all outside the
places its layout reads (docs/loading.md#folder): a Data Pipelines bucket copied under mixpanel/,
a Parquet profile table under mparticle/. Nothing would be loaded, and an empty database reads as
a project without users, so the load fails naming the folder and some of the files."""

from __future__ import annotations

import json

import pytest

from cohortlab.loaders import LoadError
from cohortlab.loaders.folder import load_world


def test_a_folder_whose_files_are_all_elsewhere_is_an_error(lab, write, run_once):
    write("w/mixpanel/mp_master_event/2026/03/01/part-0.json.gz", json.dumps(
        {"event_name": "Opened", "time": "2026-03-01T00:00:00Z", "distinct_id": "u1", "properties": {}}) + "\n", gz=True)
    write("w/mixpanel/mp_master_event/2026/03/01/complete", "")
    folder = write("w/mparticle/profiles.parquet", "PAR1").parent.parent
    with pytest.raises(LoadError, match=r"nothing to load: none of its 2 file\(s\).*mp_master_event/2026/03/01/"
                                        r"part-0.json.gz, mparticle/profiles.parquet; load them with cohortlab load"):
        load_world(lab, folder)
    assert lab.engine.query_rows("SELECT count(*) FROM loads")[0][0] == 0
    # one file where the layout reads: it loads, the others are ignored as before
    write("w/mixpanel/events/e.jsonl", json.dumps(
        {"event": "Opened", "properties": {"time": 1772323200, "distinct_id": "u1"}}) + "\n")
    assert load_world(lab, folder).by_kind()["mixpanel-events"]["loaded"] == 1


def test_mparticle_s3_batch_files_in_the_batches_folder_load(lab, q, write, run_once):
    """mParticle's S3 output names its batch files <name>.txt: under mparticle/batches/ they are
    exports (they were ignored with every .txt, loading nothing, silently); the bucket
    verification file beside them is skipped, and a README.txt elsewhere is still ignored."""
    write("w/mparticle/batches/mPTravel_20260301050000000000_1.txt",
          json.dumps({"mpid": 7, "user_attributes": {"Power Users": True}}) + "\n")
    write("w/mparticle/batches/mParticle_Bucket_Verification_20260301-050000.txt", "{}")
    folder = write("w/mparticle/README.txt", "notes").parent.parent
    report = load_world(lab, folder)
    assert report.by_kind() == {"mparticle-batches": {"files": 1, "loaded": 1, "quarantined": 0, "skipped": 0}}
    assert q("SELECT mpid, name, value_bool FROM mpa_attributes") == [(7, "Power Users", True)]


def test_the_files_a_folder_load_leaves_out_are_said(lab, write, run_once):
    """load_world names every file of the folder that no load read (relative to the folder, the
    first 10 and how many): a Parquet table and a pipeline bucket beside the exports, a README,
    hidden files, markers. Not what cohortlab synth and fetch write at its top (manifest.json,
    truth.parquet, fetch.json). A folder whose every file loads says nothing more."""
    write("w/mixpanel/events/e.jsonl", json.dumps(
        {"event": "Opened", "properties": {"time": 1772323200, "distinct_id": "u1"}}) + "\n")
    write("w/mparticle/profiles.parquet", "PAR1")
    for hour in range(12):
        write(f"w/mixpanel/mp_master_event/2026/03/01/{hour:02d}/complete", "")
    write("w/mixpanel/README.md", "notes")
    write("w/mixpanel/events/.part-0.jsonl.crc", "")
    write("w/manifest.json", "{}")
    write("w/truth.parquet", "PAR1")
    folder = write("w/fetch.json", json.dumps({"runs": []})).parent
    report = load_world(lab, folder)
    assert report.by_kind()["mixpanel-events"]["loaded"] == 1
    names = [str(p.relative_to(folder)) for p in report.ignored]
    assert len(names) == 15 and "truth.parquet" not in names and "manifest.json" not in names
    assert names[:3] == ["mixpanel/README.md", "mixpanel/events/.part-0.jsonl.crc",
                         "mixpanel/mp_master_event/2026/03/01/00/complete"]
    text = str(report).splitlines()[-1]
    assert text.startswith("  not loaded: 15 file(s) outside the places a folder of exports keeps them")
    assert text.endswith("mixpanel/mp_master_event/2026/03/01/07/complete (and 5 more)")
    assert "mparticle/profiles.parquet" not in text  # beyond the first 10
    # every file loaded: nothing more is said
    clean = write("c/mixpanel/events/e.jsonl", json.dumps(
        {"event": "Opened", "properties": {"time": 1772323200, "distinct_id": "u2"}}) + "\n").parents[2]
    report = load_world(lab, clean)
    assert report.ignored == [] and "not loaded" not in str(report)


def test_cohortlab_load_of_a_folder_says_the_files_it_left_out(tmp_path, write, run_once):
    """cohortlab load KIND FOLDER leaves out hidden files and the markers that hold no data: its
    output names them (relative to the folder, in --json too), never silently."""
    from click.testing import CliRunner

    from cohortlab.cli import main

    write("b/2026/03/01/part-0.jsonl", json.dumps(
        {"event": "Opened", "properties": {"time": 1772323200, "distinct_id": "u1"}}) + "\n")
    write("b/2026/03/01/complete", "")
    write("b/_committed_42", '{"added": []}')
    folder = write("b/.DS_Store", "x").parent
    for i in range(12):  # a hidden folder's files are said as one name, with their count
        write(f"b/.git/objects/{i:02d}/x", "")
    db = str(tmp_path / "lab.duckdb")
    r = CliRunner().invoke(main, ["load", "--db", db, "mixpanel-events", str(folder)])
    assert r.exit_code == 0, r.output
    assert ("not read                15 file(s) of the folder: hidden, markers holding no data, or links to a "
            "file outside it: .DS_Store, "
            ".git/ (12 files), 2026/03/01/complete, _committed_42\n") in r.stdout
    r = CliRunner().invoke(main, ["load", "--db", db, "mixpanel-events", str(folder), "--json"])
    assert json.loads(r.stdout)["not_read"] == [".DS_Store", *(f".git/objects/{i:02d}/x" for i in range(12)),
                                                "2026/03/01/complete", "_committed_42"]
    # a file given by name: nothing is said
    r = CliRunner().invoke(main, ["load", "--db", db, "mixpanel-events", str(folder / "2026/03/01/part-0.jsonl")])
    assert r.exit_code == 0 and "not read" not in r.stdout


def test_report_data_says_the_files_it_did_not_load(tmp_path, run_once):
    """cohortlab report --data prints, after loading, the files of the folder that no load read
    (here the run then stops on an unknown cohort, before any notebook)."""
    from click.testing import CliRunner

    from cohortlab.cli import main
    from cohortlab.synth import generate

    generate(tmp_path / "world", users=60, seed=1)
    (tmp_path / "world" / "mparticle" / "profiles.parquet").write_bytes(b"PAR1")
    r = CliRunner().invoke(main, ["report", "--data", str(tmp_path / "world"), "--out", str(tmp_path / "o"),
                                  "-p", "cohorts=[Nope]"])
    assert r.exit_code == 1 and "unknown cohort 'Nope'" in r.stderr
    assert ("not loaded: 1 file(s) outside the places a folder of exports keeps them (docs/loading.md#folder), "
            "hidden, or holding no data: mparticle/profiles.parquet") in r.stderr
