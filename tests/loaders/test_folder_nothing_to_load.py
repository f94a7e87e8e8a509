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
