"""`cohortlab synth` on the command line, and parameters from scenarios and YAML."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from cohortlab.cli import main
from cohortlab.synth import SCENARIOS, build_config


def run(*args):
    return CliRunner().invoke(main, ["synth", *map(str, args)])


def test_cli_writes_a_world_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "w"
    r = run(out, "--users", 300, "--seed", 4, "--scenario", "healthy", "--no-progress")
    assert r.exit_code == 0, r.output
    assert "Power Users" in r.output and "matched" in r.output
    m = json.loads((out / "manifest.json").read_text())
    assert (m["scenario"], m["users"], m["seed"]) == ("healthy", 300, 4)
    before = (out / "truth.parquet").read_bytes()
    r = run(out, "--users", 300, "--seed", 4, "--no-progress")
    assert r.exit_code != 0 and "not empty" in r.stderr
    r = run(out, "--users", 300, "--seed", 4, "--scenario", "healthy", "--force", "--no-progress")
    assert r.exit_code == 0 and (out / "truth.parquet").read_bytes() == before


def test_cli_says_where_the_mparticle_profiles_it_counts_are(tmp_path):
    """The count of mParticle profiles is split by file: a newcomer counting the lines of
    profiles.jsonl found fewer (the profiles missing from the attribute snapshot are in
    identities-only.jsonl) and was puzzled."""
    out = tmp_path / "w"
    r = run(out, "--users", 2000, "--seed", 3, "--scenario", "demo", "--no-progress")
    assert r.exit_code == 0, r.output
    lines = {p: sum(1 for _ in (out / p).open()) for p in
             ("mparticle/profiles.jsonl", "mparticle/profiles/identities-only.jsonl")}
    total = json.loads((out / "manifest.json").read_text())["counts"]["mparticle_profiles"]
    assert sum(lines.values()) == total and min(lines.values()) > 0
    assert (f"mParticle profiles {total:,} ({lines['mparticle/profiles.jsonl']:,} in mparticle/profiles.jsonl, "
            f"{lines['mparticle/profiles/identities-only.jsonl']:,} in mparticle/profiles/identities-only.jsonl)"
            ) in r.output


def test_cli_force_never_deletes_foreign_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    r = run(tmp_path, "--users", 50, "--force", "--no-progress")
    assert r.exit_code != 0 and "refusing" in r.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_cli_force_replaces_only_what_synth_wrote(tmp_path):
    """A folder of real exports has a world's layout (mixpanel/, mparticle/): --force deleted it
    (a red-team run). Only the files a synth manifest lists are replaced."""
    real = tmp_path / "exports"
    (real / "mixpanel").mkdir(parents=True)
    (real / "mparticle").mkdir()
    (real / "mixpanel" / "events.jsonl").write_text('{"event": "real"}\n')
    (real / "mparticle" / "profiles.json").write_text("{}")
    r = run(real, "--users", 50, "--force", "--no-progress")
    assert r.exit_code != 0 and "mixpanel/events.jsonl, mparticle/profiles.json); refusing" in r.stderr
    assert (real / "mixpanel" / "events.jsonl").read_text() == '{"event": "real"}\n'
    world = tmp_path / "w"
    assert run(world, "--users", 50, "--no-progress").exit_code == 0
    (world / "mixpanel" / "events" / "real-export.jsonl").write_text("{}")  # a real file added to a world
    r = run(world, "--users", 50, "--force", "--no-progress")
    assert r.exit_code != 0 and "(mixpanel/events/real-export.jsonl); refusing" in r.stderr
    (world / "mixpanel" / "events" / "real-export.jsonl").unlink()
    assert run(world, "--users", 60, "--force", "--no-progress").exit_code == 0
    assert json.loads((world / "manifest.json").read_text())["users"] == 60
    # --overwrite, as report, demo and export spell it, is the same flag
    assert run(world, "--users", 70, "--overwrite", "--no-progress").exit_code == 0
    assert json.loads((world / "manifest.json").read_text())["users"] == 70


def test_cli_config_yaml_starts_from_a_scenario(tmp_path):
    cfg = tmp_path / "world.yaml"
    cfg.write_text("scenario: remediated\nremediation:\n  start: 2026-02-15T00:00:00Z\nfloat_share: 0.05\n"
                   "cohorts:\n  - {id: 7, name: Heavy Searchers, event: Search, min_count: 3, window_days: 14}\n")
    r = run(tmp_path / "w", "--users", 400, "--config", cfg, "--no-progress")
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "w" / "manifest.json").read_text())
    assert m["scenario"] == "remediated"
    assert m["parameters"]["remediation"]["start"] == "2026-02-15T00:00:00Z"
    assert m["parameters"]["float_share"] == 0.05
    assert list(m["expected"]) == ["Heavy Searchers"]
    assert (tmp_path / "w/mixpanel/members/heavy-searchers").is_dir()


def test_cli_errors_are_clear(tmp_path):
    r = run(tmp_path / "w", "--users", 10, "--scenario", "nope", "--no-progress")
    assert r.exit_code != 0 and "unknown scenario 'nope'" in r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("login_share: 2\n")
    r = run(tmp_path / "w2", "--users", 10, "--config", bad, "--no-progress")
    assert r.exit_code != 0 and "login_share" in r.stderr
    r = CliRunner().invoke(main, ["synth", "--list-scenarios"])
    assert r.exit_code == 0 and all(name in r.output for name in SCENARIOS)


def test_config_validation():
    assert build_config("healthy").eit[0].type == "mparticle_id"
    assert build_config().scenario == "mid_migration"
    with pytest.raises(ValidationError):
        build_config("healthy", unknown_parameter=1)
    with pytest.raises(ValidationError, match="tier shares"):
        build_config("healthy", tiers=[{"name": "a", "share": 0.5, "rate_min": 1, "rate_max": 2}])
    with pytest.raises(ValidationError, match="increasing"):
        build_config(eit=[{"type": "customer_id"}, {"type": "mparticle_id", "start": "2026-02-01"},
                          {"type": "email", "start": "2026-01-01"}])
    with pytest.raises(ValueError, match="config says"):
        build_config("healthy", {"scenario": "remediated"})
    with pytest.raises(ValidationError, match="at most 256"):
        build_config(cohorts=[{"id": 1, "name": "x" * 257}])


def test_a_stopped_generate_removes_its_world_and_nothing_else(tmp_path, monkeypatch):
    """A synth stopped (Ctrl-C, SIGTERM) or failing left a half-written world that the next run
    refused ("not empty", and without a manifest even with --force). It removes what a world
    holds; a file another process put into the folder meanwhile stays (a red team's notes.txt
    was deleted by the first version of this clean-up)."""
    from cohortlab.synth import build

    def stopped(self):
        (self.out / "mixpanel" / "events").mkdir(parents=True)
        (self.out / "mixpanel" / "events" / "part-00000.jsonl").write_text("{}")
        (self.out / "notes.txt").write_text("mine")  # another process's
        raise KeyboardInterrupt

    monkeypatch.setattr(build._World, "run", stopped)
    with pytest.raises(KeyboardInterrupt):
        build.generate(tmp_path / "world", users=50)
    assert [p.name for p in (tmp_path / "world").iterdir()] == ["notes.txt"]
    (tmp_path / "world" / "notes.txt").unlink()
    with pytest.raises(KeyboardInterrupt):
        build.generate(tmp_path / "world", users=50)  # an empty folder: accepted, and left empty
    (tmp_path / "world" / "notes.txt").unlink()
    (tmp_path / "world").rmdir()
    monkeypatch.setattr(build._World, "run", lambda self: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        build.generate(tmp_path / "world", users=50)
    assert not (tmp_path / "world").exists()  # made by the run: gone with it


@pytest.mark.parametrize("stop_in", ["_clear_out", "mkdtemp", "connect"])
def test_a_generate_stopped_as_it_starts_leaves_no_folder(tmp_path, monkeypatch, stop_in):
    """CI's SIGTERM test once caught synth between making its folder and entering its clean-up
    (the test signals as soon as the folder exists): `error: interrupted`, and an empty world left
    behind. A stop at any step after the refusals leaves nothing the run made; a refusal
    ("not empty") still leaves the folder as it was."""
    import tempfile

    from cohortlab.synth import build

    def stop(real):
        def call(*args, **kwargs):
            real(*args, **kwargs)  # the step is done (a folder made) when the signal comes
            raise KeyboardInterrupt
        return call

    if stop_in == "_clear_out":
        monkeypatch.setattr(build, "_clear_out", stop(build._clear_out))
    elif stop_in == "mkdtemp":
        monkeypatch.setattr(tempfile, "mkdtemp", stop(tempfile.mkdtemp))
    else:
        monkeypatch.setattr(build.duckdb, "connect", stop(build.duckdb.connect))
    with pytest.raises(KeyboardInterrupt):
        build.generate(tmp_path / "world", users=50)
    assert not (tmp_path / "world").exists()

    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        build.generate(tmp_path / "kept", users=50)
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["notes.txt"]
