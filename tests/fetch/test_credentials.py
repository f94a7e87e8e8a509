"""Credentials: environment over config file, secrets never shown (repr, str, errors)."""

from __future__ import annotations

import pytest

from cohortlab.fetch.credentials import Secret, load_credentials
from cohortlab.fetch.http import FetchError, mask, parse_retry_after


def test_secret_never_shows_itself():
    s = Secret("hunter2-very-secret")
    assert repr(s) == str(s) == "Secret('****')"
    assert f"{s}" == "Secret('****')"
    assert s.reveal() == "hunter2-very-secret"
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(s)


def test_environment_overrides_the_config_file(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("mixpanel:\n  project_id: 1\n  service_account_username: u\n  service_account_secret: file-secret-1\n"
                   "  region: EU\nmparticle:\n  client_id: c\n  client_secret: mpa-file-secret\n")
    cfg.chmod(0o644)
    creds = load_credentials(cfg, env={"MIXPANEL_PROJECT_ID": "2", "MIXPANEL_SERVICE_ACCOUNT_SECRET": "env-secret-2"})
    assert creds.mixpanel.project_id == "2" and creds.mixpanel.username == "u"
    assert creds.mixpanel.secret.reveal() == "env-secret-2"
    assert creds.mixpanel.region == "eu"
    assert creds.mparticle.client_secret.reveal() == "mpa-file-secret"
    text = repr(creds)
    assert "env-secret-2" not in text and "mpa-file-secret" not in text and "Secret('****')" in text
    # a world-readable secrets file is flagged
    assert "readable by other users" in capsys.readouterr().err


def test_bad_config_file_errors_do_not_quote_it(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("mixpanel:\n  service_account_secret: [oops-secret\n")
    with pytest.raises(FetchError) as e:
        load_credentials(cfg, env={})
    assert "oops-secret" not in str(e.value) and "not valid YAML" in str(e.value)
    with pytest.raises(FetchError, match="no such config file"):
        load_credentials(tmp_path / "none.yaml", env={})


def test_mask_and_retry_after():
    assert mask("user:abcd1234 failed abcd1234", ["abcd1234"]) == "user:**** failed ****"
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: now
