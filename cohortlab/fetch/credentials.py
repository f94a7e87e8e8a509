"""Credentials for ``cohortlab fetch``: from environment variables or a YAML config file, never
from the command line. Secret values are :class:`Secret` objects: their ``repr`` and ``str`` are
``'****'``, so a secret printed by accident (a log line, a traceback's locals, a dataclass repr)
shows nothing; :meth:`Secret.reveal` is the one way to the value.

Config file (``--config PATH``, else ``$COHORTLAB_CONFIG``, else
``~/.config/cohortlab/credentials.yaml`` when it exists)::

    mixpanel:
      project_id: 12345
      service_account_username: cohortlab.1a2b3c.mp-service-account
      service_account_secret: ...
      region: eu                 # us (default) | eu | in
      workspace_id: 3456         # a project with Data Views: its global data view (Query API only)
    mparticle:
      client_id: ...
      client_secret: ...
      org_id: 1234
      account_id: 5678
      workspace_id: 9012

Environment variables override the file: ``MIXPANEL_PROJECT_ID``,
``MIXPANEL_SERVICE_ACCOUNT_USERNAME``, ``MIXPANEL_SERVICE_ACCOUNT_SECRET``, ``MIXPANEL_API_SECRET``
(legacy project secret, instead of a service account), ``MIXPANEL_REGION``,
``MIXPANEL_WORKSPACE_ID``;
``MPARTICLE_CLIENT_ID``, ``MPARTICLE_CLIENT_SECRET``, ``MPARTICLE_ORG_ID``,
``MPARTICLE_ACCOUNT_ID``, ``MPARTICLE_WORKSPACE_ID``. A config file readable by other users gets
a warning (it holds secrets).

Endpoints can be overridden (a proxy, or the tests' local server) with the config keys
``mixpanel.export_url`` / ``mixpanel.query_url`` / ``mparticle.api_url`` / ``mparticle.auth_url``
or the variables ``COHORTLAB_MIXPANEL_EXPORT_URL``, ``COHORTLAB_MIXPANEL_QUERY_URL``,
``COHORTLAB_MPARTICLE_API_URL``, ``COHORTLAB_MPARTICLE_AUTH_URL``.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from cohortlab.fetch.http import AuthError, FetchError

DEFAULT_CONFIG = Path("~/.config/cohortlab/credentials.yaml")
REGIONS = ("us", "eu", "in")


class Secret:
    """A secret string that does not show itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = str(value)

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('****')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self):  # never pickled with its value
        raise TypeError("a Secret cannot be pickled")


def _masked_repr(self) -> str:
    parts = []
    for f in fields(self):
        v = getattr(self, f.name)
        parts.append(f"{f.name}={v!r}")
    return f"{type(self).__name__}({', '.join(parts)})"


@dataclass(repr=False)
class MixpanelCredentials:
    project_id: str | None = None
    username: str | None = None  # service account user name (not secret, but not printed either)
    secret: Secret | None = None  # service account secret
    api_secret: Secret | None = None  # legacy project API secret
    region: str = "us"
    export_url: str | None = None
    query_url: str | None = None
    # a project with Data Views: the global data view's id, sent with Query API requests
    workspace_id: str | None = None

    __repr__ = _masked_repr

    def secrets(self) -> list[str]:
        return [s.reveal() for s in (self.secret, self.api_secret) if s]

    def basic_auth(self) -> tuple[str, str]:
        if self.username and self.secret:
            return (self.username, self.secret.reveal())
        if self.api_secret:
            return (self.api_secret.reveal(), "")
        raise AuthError(self.problems()[0])  # the "no credentials" line, naming what to set

    def problems(self) -> list[str]:
        """What is missing, as the variables to set (empty when the credentials are complete)."""
        if not (self.username and self.secret) and not self.api_secret:
            wanted = [env for env, v in (("MIXPANEL_SERVICE_ACCOUNT_USERNAME", self.username),
                                         ("MIXPANEL_SERVICE_ACCOUNT_SECRET", self.secret),
                                         ("MIXPANEL_PROJECT_ID", self.project_id)) if not v]
            return [f"mixpanel: no credentials: set {', '.join(wanted)} (or mixpanel.service_account_username/"
                    "_secret and project_id in the config file), or the legacy project secret MIXPANEL_API_SECRET "
                    "(mixpanel.api_secret)"]
        if self.username and self.secret and not self.project_id:
            return ["mixpanel: MIXPANEL_PROJECT_ID is required with a service account"]
        if self.project_id and not str(self.project_id).strip().isdigit():  # else every request is refused
            return [f"mixpanel: MIXPANEL_PROJECT_ID must be the project's number (Project Settings), got "
                    f"{str(self.project_id)[:40]!r}"]
        return []

    def check(self) -> None:
        problems = self.problems()
        if problems:
            raise AuthError(problems[0])
        if self.region not in REGIONS:
            raise FetchError(f"mixpanel: region must be one of {', '.join(REGIONS)}, got {self.region!r}")


@dataclass(repr=False)
class MParticleCredentials:
    client_id: str | None = None
    client_secret: Secret | None = None
    org_id: str | None = None
    account_id: str | None = None
    workspace_id: str | None = None
    api_url: str | None = None
    auth_url: str | None = None

    __repr__ = _masked_repr

    def secrets(self) -> list[str]:
        return [self.client_secret.reveal()] if self.client_secret else []

    def problems(self) -> list[str]:
        """What is missing, as the variables to set (empty when the credentials are complete)."""
        missing = [
            env for env, v in (
                ("MPARTICLE_CLIENT_ID", self.client_id), ("MPARTICLE_CLIENT_SECRET", self.client_secret),
                ("MPARTICLE_ORG_ID", self.org_id), ("MPARTICLE_ACCOUNT_ID", self.account_id),
                ("MPARTICLE_WORKSPACE_ID", self.workspace_id),
            ) if not v
        ]
        return [f"mparticle: missing credentials: set {', '.join(missing)} (or the mparticle: section of the "
                "config file)"] if missing else []

    def check(self) -> None:
        problems = self.problems()
        if problems:
            raise AuthError(problems[0])


@dataclass(repr=False)
class Credentials:
    mixpanel: MixpanelCredentials
    mparticle: MParticleCredentials
    source: str = "environment"

    __repr__ = _masked_repr


_MP_KEYS = {  # field -> (env var, config key)
    "project_id": ("MIXPANEL_PROJECT_ID", "project_id"),
    "username": ("MIXPANEL_SERVICE_ACCOUNT_USERNAME", "service_account_username"),
    "secret": ("MIXPANEL_SERVICE_ACCOUNT_SECRET", "service_account_secret"),
    "api_secret": ("MIXPANEL_API_SECRET", "api_secret"),
    "region": ("MIXPANEL_REGION", "region"),
    "export_url": ("COHORTLAB_MIXPANEL_EXPORT_URL", "export_url"),
    "query_url": ("COHORTLAB_MIXPANEL_QUERY_URL", "query_url"),
    "workspace_id": ("MIXPANEL_WORKSPACE_ID", "workspace_id"),
}
_MPA_KEYS = {
    "client_id": ("MPARTICLE_CLIENT_ID", "client_id"),
    "client_secret": ("MPARTICLE_CLIENT_SECRET", "client_secret"),
    "org_id": ("MPARTICLE_ORG_ID", "org_id"),
    "account_id": ("MPARTICLE_ACCOUNT_ID", "account_id"),
    "workspace_id": ("MPARTICLE_WORKSPACE_ID", "workspace_id"),
    "api_url": ("COHORTLAB_MPARTICLE_API_URL", "api_url"),
    "auth_url": ("COHORTLAB_MPARTICLE_AUTH_URL", "auth_url"),
}
_SECRET_FIELDS = {"secret", "api_secret", "client_secret"}


def _read_config(path: Path) -> dict[str, Any]:
    from cohortlab.errors import read_yaml_file

    # a file of secrets: its YAML error (which may quote it) is reduced to the line
    data = read_yaml_file(path, FetchError, "the config file", mapping="mixpanel: and/or mparticle: sections",
                          quote=False)
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            print(f"warning: {path} is readable by other users; it holds secrets (chmod 600 {path})",
                  file=sys.stderr)
    except OSError:
        pass
    return data


def _section(config: Mapping[str, Any], name: str, path: Path | None) -> Mapping[str, Any]:
    sec = config.get(name) or {}
    if not isinstance(sec, dict):
        raise FetchError(f"{path}: the {name}: section must be a mapping")
    return sec


def _value(env: Mapping[str, str], section: Mapping[str, Any], env_key: str, cfg_key: str) -> str | None:
    v = env.get(env_key)
    if v is None or v == "":
        v = section.get(cfg_key)
    if v is None or (isinstance(v, str) and v.strip() == ""):
        return None
    return str(v).strip()


def load_credentials(config: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> Credentials:
    """Credentials from ``env`` (default ``os.environ``) over the config file."""
    env = os.environ if env is None else env
    path: Path | None = None
    if config is not None:
        path = Path(config).expanduser()
        if not path.exists():
            raise FetchError(f"{path}: no such config file")
    elif env.get("COHORTLAB_CONFIG"):
        path = Path(env["COHORTLAB_CONFIG"]).expanduser()
        if not path.exists():
            raise FetchError(f"{path}: no such config file (from COHORTLAB_CONFIG)")
    elif DEFAULT_CONFIG.expanduser().exists():
        path = DEFAULT_CONFIG.expanduser()
    data = _read_config(path) if path else {}

    def build(cls, keys, section):
        kw = {}
        for fname, (env_key, cfg_key) in keys.items():
            v = _value(env, section, env_key, cfg_key)
            if v is not None:
                kw[fname] = Secret(v) if fname in _SECRET_FIELDS else v
        return cls(**kw)

    mp = build(MixpanelCredentials, _MP_KEYS, _section(data, "mixpanel", path))
    mp.region = (mp.region or "us").lower()
    mpa = build(MParticleCredentials, _MPA_KEYS, _section(data, "mparticle", path))
    return Credentials(mp, mpa, source=str(path) if path else "environment")
