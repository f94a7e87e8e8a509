"""Secrets echoed back by a server never reach a message, in any spelling: the value itself, the
base64 of the Basic credentials a reflected ``Authorization`` header shows, the JSON-escaped and
URL-encoded forms, and never half of one where an error body is cut short."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

import pytest

from cohortlab.fetch.credentials import Secret, load_credentials
from cohortlab.fetch.http import AuthError, FetchError, mask
from cohortlab.fetch.mixpanel import MixpanelClient
from cohortlab.fetch.mparticle import MParticleClient
from tests.fetch import fake_services as fs

ODD = 'MPASECRET-zyx/987-"quoted"-\\654 é'  # JSON escapes ", \ (and / for some encoders)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _leaks(msg: str, secret: str, user: str | None = None) -> list[str]:
    """The spellings of ``secret`` (and of ``user:secret``) found in ``msg``."""
    forms = {"value": secret, "json": json.dumps(secret)[1:-1], "json-ascii": json.dumps(secret, ensure_ascii=True)[1:-1],
             "json-slash": json.dumps(secret)[1:-1].replace("/", "\\/"), "url": quote(secret, safe=""),
             "url-plus": quote_plus(secret), "url-lower": quote(secret, safe="").lower(),
             "b64": _b64(secret), "b64-user": _b64(f"{secret}:"), "b64-pass": _b64(f":{secret}")}
    if user:
        forms["b64-basic"] = _b64(f"{user}:{secret}")
        forms["b64-basic-nopad"] = _b64(f"{user}:{secret}").rstrip("=")
    return [k for k, v in forms.items() if v in msg]


def test_mask_covers_every_spelling():
    user = "svc.audit.mp-service-account"
    for name, text in [("plain", ODD), ("json", json.dumps({"s": ODD})), ("json-ascii", json.dumps({"s": ODD}, ensure_ascii=True)),
                       ("json-slash", json.dumps({"s": ODD}).replace("/", "\\/")),
                       ("url", "client_secret=" + quote(ODD, safe="")), ("url-plus", "s=" + quote_plus(ODD)),
                       ("basic", "Basic " + _b64(f"{user}:{ODD}")), ("legacy", "Basic " + _b64(f"{ODD}:")),
                       ("pass-only", _b64(f":{ODD}"))]:
        masked = mask(f"echo: {text} :end", [ODD], [(user, ODD)])
        assert "****" in masked, name
        assert _leaks(masked, ODD, user) == [], (name, masked)
        assert masked.startswith("echo: ") and masked.endswith(" :end")


def test_reflected_authorization_header_is_masked(fake, env, tmp_path, policy):
    fake.sticky["cohorts"] = ("echo", 401, "bad Authorization header: {auth}")
    creds = load_credentials(env=env)
    mp = MixpanelClient(creds.mixpanel, policy=policy)
    with pytest.raises(AuthError) as e:
        mp.cohorts(tmp_path)
    msg = str(e.value)
    assert "bad Authorization header: Basic ****" in msg
    assert _leaks(msg, fs.MP_SECRET, fs.MP_USER) == []
    mp.close()


def test_reflected_legacy_api_secret_is_masked(fake, env, tmp_path, policy):
    # the legacy project secret is the Basic user name, with an empty password: base64("secret:")
    env = {k: v for k, v in env.items() if not k.startswith("MIXPANEL_SERVICE_ACCOUNT")}
    env["MIXPANEL_API_SECRET"] = "legacy-api-secret-0042"
    fake.sticky["cohorts"] = ("echo", 401, "rejected {auth}")
    mp = MixpanelClient(load_credentials(env=env).mixpanel, policy=policy)
    with pytest.raises(AuthError) as e:
        mp.cohorts(tmp_path)
    assert "rejected Basic ****" in str(e.value)
    assert _leaks(str(e.value), "legacy-api-secret-0042") == []
    mp.close()


@pytest.mark.parametrize("template", ['{{"error": "bad request: {body}"}}', "received {body}"])
def test_token_endpoint_quoting_the_request_json_is_masked(fake, env, tmp_path, policy, template):
    # the quoted request holds the client secret JSON-escaped (\" and \\ here)
    creds = load_credentials(env={**env, "MPARTICLE_CLIENT_SECRET": ODD})
    fake.sticky["token"] = ("echo", 400, template)
    mpa = MParticleClient(creds.mparticle, policy=policy)
    with pytest.raises(FetchError) as e:
        mpa.fetch_profiles(tmp_path, [1], progress=False)
    msg = str(e.value)
    assert '"client_secret": "****"' in msg or '"client_secret":"****"' in msg or "client_secret" in msg
    assert _leaks(msg, ODD) == [], msg
    assert "zyx" not in msg
    mpa.close()


def test_a_secret_at_the_cut_of_a_long_error_body_shows_no_part_of_it(fake, env, tmp_path, policy):
    # the body is cut to 300 characters; the secret starts at character 285 of it
    creds = load_credentials(env=env)
    creds.mixpanel.secret = Secret("MPSECRET-s3cr3t+/=value-9f8e7d")
    mp = MixpanelClient(creds.mixpanel, policy=policy)
    fake.sticky["cohorts"] = ("echo", 401, "x" * 250 + f" received user/secret: {fs.MP_USER}:MPSECRET-s3cr3t+/=value-9f8e7d")
    with pytest.raises(AuthError) as e:
        mp.cohorts(tmp_path)
    msg = str(e.value)
    assert "MPSECRET" not in msg and "s3cr3t" not in msg
    assert f"received user/secret: {fs.MP_USER}:**" in msg  # masked, then cut
    mp.close()


def test_url_encoded_echo_is_masked(fake, env, tmp_path, policy):
    env = {**env, "MIXPANEL_SERVICE_ACCOUNT_SECRET": "sec ret/with+odd&chars"}
    fake.sticky["cohorts"] = ("echo", 401, "you sent password=" + quote_plus("sec ret/with+odd&chars")
                              + " or " + quote("sec ret/with+odd&chars", safe=""))
    mp = MixpanelClient(load_credentials(env=env).mixpanel, policy=policy)
    with pytest.raises(AuthError) as e:
        mp.cohorts(tmp_path)
    assert "you sent password=**** or ****" in str(e.value)
    mp.close()
