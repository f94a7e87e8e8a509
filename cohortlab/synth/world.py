"""The parameters of a synthetic world (``WorldConfig``) and how they are read.

Every behaviour of the generated world is one field here, with a default. A scenario
(``cohortlab.synth.scenarios``) is a named set of overrides; a YAML file can start from a
scenario (``scenario: mid_migration``) and override any field. Times are UTC; a time without a
zone means UTC.

The model, in one paragraph: ``users`` people arrive uniformly between ``start`` and ``end``;
a share churns (active for a short life, then never returns), the others stay active until the
end. Each person has an activity tier (events per 30 days) and makes that many events spread
over their active life (stratified, so event ``k`` is never before event ``k-1``, bent by a
per-person ``activity_skew`` so activity rises or fades). A share logs in (event "Sign In"),
which gives them a customer id (and, for a share of them, an email) in mParticle. The External
Identity Type in force at each event's time (``eit``) decides the event's ``$user_id``:
the MPID (``mparticle_id``: for everyone, logged in or not), the customer id / email (only once
logged in), or none (then ``distinct_id`` is ``$device:<device id>``). With
``simplified_id_merge`` the device's events are shown under the first ``$user_id`` seen with
that device (retroactively), and a second ``$user_id`` (after a migration) starts a second
profile: one person, two distinct_ids. Profiles exist for logged-in users only ("Create Profile
Only If Logged In"). ``$mparticle_user_id`` is written by app code (``sdk_*`` shares, from
``sdk_mpuid_from``, possibly corrupted: float precision loss, junk, null, another workspace's
MPID), by a ``remediation`` (an mParticle Rule copying the exact MPID, from its start; it
overrides the app's value) and, as an event property only, automatically from
``event_mpuid_from`` (the 2026-01-15 change). mParticle deletes profiles inactive for
``mparticle_ttl_days`` before ``end``.

A YAML config (``cohortlab synth OUT --config world.yaml``), for example::

    scenario: remediated              # the base; then any field below overrides it
    remediation: {start: 2026-02-15T00:00:00Z, method: sdk}
    float_share: 0.05                 # 5% of people: $mparticle_user_id written through a float
    churn_share: 0.5
    cohorts:
      - {id: 2001, name: Heavy Searchers, event: Search, min_count: 3, window_days: 14}
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

EVENT_NAMES = ("App Open", "Page View", "Search", "Add to Cart", "Purchase", "Sign In")
SIGN_IN = EVENT_NAMES.index("Sign In")
APP_OPEN = EVENT_NAMES.index("App Open")


def _utc(v: Any) -> Any:
    if isinstance(v, str):
        s = v.strip()
        if s.endswith("Z"):
            s = s[:-1] + "+00:00"
        v = datetime.fromisoformat(s)
    if isinstance(v, datetime):
        return v.replace(tzinfo=timezone.utc) if v.tzinfo is None else v.astimezone(timezone.utc)
    return v


def epoch(dt: datetime | None) -> int | None:
    return None if dt is None else int(dt.timestamp())


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EitStep(_Model):
    """External Identity Type in force from ``start`` (None = from the beginning of time)."""

    type: Literal["mparticle_id", "customer_id", "email"]
    start: datetime | None = None

    _utc = field_validator("start", mode="before")(classmethod(lambda cls, v: _utc(v)))


class Remediation(_Model):
    """Copy the exact MPID into the user attribute ``$mparticle_user_id`` from ``start``."""

    start: datetime
    method: Literal["rule", "sdk"] = "rule"

    _utc = field_validator("start", mode="before")(classmethod(lambda cls, v: _utc(v)))


class Tier(_Model):
    """An activity tier: ``share`` of people making between rate_min and rate_max events / 30 days."""

    name: str
    share: float = Field(ge=0, le=1)
    rate_min: float = Field(gt=0)
    rate_max: float = Field(gt=0)


class CohortSpec(_Model):
    """A behavioural cohort: distinct_ids with at least ``min_count`` events (of ``event``, or any
    event when None) in the ``window_days`` before each snapshot (window ``(as_of - W, as_of]``)."""

    id: int
    name: str = Field(min_length=1, max_length=256)
    description: str = ""
    event: str | None = None
    min_count: int = Field(default=1, ge=1)
    window_days: int = Field(default=30, ge=1)

    @field_validator("event")
    @classmethod
    def _known_event(cls, v):
        if v is not None and v not in EVENT_NAMES:
            raise ValueError(f"unknown event {v!r}; expected one of {', '.join(EVENT_NAMES)}")
        return v


def _default_tiers() -> list[Tier]:
    return [
        Tier(name="light", share=0.55, rate_min=0.5, rate_max=2.0),
        Tier(name="regular", share=0.35, rate_min=2.0, rate_max=6.0),
        Tier(name="heavy", share=0.10, rate_min=6.0, rate_max=24.0),
    ]


def _default_cohorts() -> list[CohortSpec]:
    return [
        CohortSpec(id=1000, name="Power Users", description="At least 10 events in the last 30 days",
                   min_count=10, window_days=30),
        CohortSpec(id=1001, name="Recent Purchasers", description="Purchased in the last 90 days",
                   event="Purchase", min_count=1, window_days=90),
    ]


class WorldConfig(_Model):
    """All parameters of a world. ``users`` and ``seed`` are given to ``generate``."""

    scenario: str | None = None
    description: str = ""
    # ---- time
    start: datetime = datetime(2025, 11, 1, tzinfo=timezone.utc)
    end: datetime = datetime(2026, 3, 1, tzinfo=timezone.utc)  # last snapshot; mParticle snapshot time
    snapshots: int = Field(default=7, ge=1)
    snapshot_every_hours: int = Field(default=24, ge=1)
    # ---- people and activity
    login_share: float = Field(default=0.7, ge=0, le=1)
    email_share: float = Field(default=0.85, ge=0, le=1)  # of logged-in people
    churn_share: float = Field(default=0.35, ge=0, le=1)
    churn_mean_days: float = Field(default=12.0, gt=0)
    tiers: list[Tier] = Field(default_factory=_default_tiers)
    activity_skew: float = Field(default=0.7, ge=0, le=3)
    max_events_per_user: int = Field(default=400, ge=1, le=100000)
    event_weights: dict[str, float] = Field(
        default_factory=lambda: {"App Open": 0.3, "Page View": 0.3, "Search": 0.15,
                                 "Add to Cart": 0.15, "Purchase": 0.1}
    )
    platform_shares: dict[str, float] = Field(default_factory=lambda: {"web": 0.4, "iphone": 0.3, "android": 0.3})
    # ---- identity
    eit: list[EitStep] = Field(default_factory=lambda: [EitStep(type="customer_id")])
    simplified_id_merge: bool = True
    remediation: Remediation | None = None
    event_mpuid_from: datetime | None = datetime(2026, 1, 15, tzinfo=timezone.utc)
    sdk_mpuid_from: datetime | None = None  # None = start
    sdk_ok_share: float = Field(default=0.0, ge=0, le=1)
    float_share: float = Field(default=0.0, ge=0, le=1)
    junk_share: float = Field(default=0.0, ge=0, le=1)
    null_share: float = Field(default=0.0, ge=0, le=1)
    other_workspace_share: float = Field(default=0.0, ge=0, le=1)
    # ---- mParticle
    mparticle_ttl_days: int = Field(default=30, ge=1)
    # ---- observed mParticle state (cohortlab.synth.observed): causes of disagreement planted
    observed_old_name_share: float = Field(default=0.02, ge=0, le=1)  # attribute under "Mixpanel - {name}"
    observed_missing_share: float = Field(default=0.01, ge=0, le=1)  # profile not in the attribute snapshot
    # ---- export quirks
    duplicate_event_share: float = Field(default=0.001, ge=0, le=0.5)
    bad_event_lines: int = Field(default=0, ge=0)
    # ---- cohorts
    project_id: int = 2201475
    cohorts: list[CohortSpec] = Field(default_factory=_default_cohorts, min_length=1)
    # ---- file layout
    page_size: int = Field(default=1000, ge=1)
    big_world_users: int = Field(default=200_000, ge=1)  # above: profiles.jsonl, members CSV
    profiles_format: Literal["auto", "pages", "jsonl"] = "auto"
    members_format: Literal["auto", "pages", "csv"] = "auto"
    users_per_event_file: int = Field(default=250_000, ge=1)
    min_event_files: int = Field(default=3, ge=1)
    gzip: bool = False

    _utc = field_validator("start", "end", "event_mpuid_from", "sdk_mpuid_from", mode="before")(
        classmethod(lambda cls, v: _utc(v))
    )

    @model_validator(mode="after")
    def _check(self) -> "WorldConfig":
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if not math.isclose(sum(t.share for t in self.tiers), 1.0, abs_tol=1e-6):
            raise ValueError("tier shares must add up to 1")
        for t in self.tiers:
            if t.rate_max < t.rate_min:
                raise ValueError(f"tier {t.name}: rate_max < rate_min")
        bad = set(self.event_weights) - set(EVENT_NAMES[:-1])
        if bad or not self.event_weights or sum(self.event_weights.values()) <= 0:
            raise ValueError(f"event_weights: names must be among {EVENT_NAMES[:-1]} with a positive total")
        bad = set(self.platform_shares) - {"web", "iphone", "android"}
        if bad or sum(self.platform_shares.values()) <= 0:
            raise ValueError("platform_shares: keys web, iphone, android with a positive total")
        if sum([self.sdk_ok_share, self.float_share, self.junk_share, self.null_share,
                self.other_workspace_share]) > 1:
            raise ValueError("sdk_ok_share + float_share + junk_share + null_share + other_workspace_share > 1")
        if self.observed_old_name_share + self.observed_missing_share > 1:
            raise ValueError("observed_old_name_share + observed_missing_share > 1")
        if not self.eit:
            raise ValueError("eit: at least one step")
        starts = [s.start for s in self.eit[1:]]
        if self.eit[0].start is not None and len(self.eit) > 1:
            raise ValueError("eit: only the first step may omit start, and it must")
        if any(s is None for s in starts) or starts != sorted(starts):
            raise ValueError("eit: steps after the first need increasing start times")
        ids = [c.id for c in self.cohorts]
        names = [c.name for c in self.cohorts]
        if len(set(ids)) != len(ids) or len(set(names)) != len(names):
            raise ValueError("cohorts: ids and names must be unique")
        first_snapshot = self.end.timestamp() - (self.snapshots - 1) * self.snapshot_every_hours * 3600
        if first_snapshot <= self.start.timestamp():
            raise ValueError("snapshots reach before start")
        return self

    # ---- derived values
    @property
    def snapshot_times(self) -> list[int]:
        e = epoch(self.end)
        step = self.snapshot_every_hours * 3600
        return [e - (self.snapshots - 1 - i) * step for i in range(self.snapshots)]

    def dump(self) -> dict[str, Any]:
        """JSON-friendly parameters (times as ISO ``...Z``)."""
        def conv(v):
            if isinstance(v, datetime):
                return v.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            if isinstance(v, list):
                return [conv(x) for x in v]
            return v

        return conv(self.model_dump())


def build_config(scenario: str | None = None, config: str | Path | dict | None = None,
                 **overrides: Any) -> WorldConfig:
    """A ``WorldConfig``: a scenario (``scenario``, else the YAML's ``scenario:`` key, else
    ``DEFAULT_SCENARIO``), then the YAML file (or dict) ``config``, then keyword overrides.
    A ``scenario`` given here and a different one in the YAML is an error."""
    from cohortlab.synth.scenarios import SCENARIOS, DEFAULT_SCENARIO

    from cohortlab.errors import SettingsError, read_yaml_file

    data: dict[str, Any] = {}
    where = ""  # "FILE: " when the parameters come from a YAML file: its errors name it
    if config is not None:
        if isinstance(config, dict):
            data = dict(config)
        else:
            where = f"{config}: "
            data = read_yaml_file(config, SettingsError, "the config file", mapping="parameters")
    base = data.pop("scenario", None)
    if scenario and base and scenario != base:
        raise ValueError(f"scenario {scenario!r} given, but {where or 'the config '}says {base!r}")
    name = scenario or base or DEFAULT_SCENARIO
    if not isinstance(name, str) or name not in SCENARIOS:
        raise ValueError(f"{where if base and not scenario else ''}unknown scenario {name!r}; "
                         f"expected one of {', '.join(SCENARIOS)}")
    params: dict[str, Any] = dict(SCENARIOS[name].params)
    params["scenario"] = name
    params["description"] = SCENARIOS[name].description
    params.update(data)
    params.update(overrides)
    if not where:
        return WorldConfig(**params)
    try:
        return WorldConfig(**params)
    except ValidationError as e:  # a file: one line naming it, `key: message` per problem
        raise SettingsError(f"{where}{explain_validation(e)}") from None


def explain_validation(e: ValidationError) -> str:
    """A ``WorldConfig`` validation error on one line: ``invalid world config: key: message (got
    VALUE); ...``; an unknown key lists the known ones (no pydantic URLs, no multi-line dump)."""
    from cohortlab.errors import validator_message

    problems = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "config"
        if err["type"] == "extra_forbidden":
            known = f" (known parameters: {', '.join(WorldConfig.model_fields)})" if len(err["loc"]) == 1 else ""
            problems.append(f"{loc}: unknown parameter{known}")
            continue
        msg = validator_message(err)
        value = err.get("input")
        got = ""
        if err["loc"] and not isinstance(value, (dict, list, BaseModel)):  # a model-level error has no loc
            text = repr(value)
            got = f" (got {text if len(text) <= 60 else text[:57] + '...'})"
        problems.append(f"{loc}: {msg}{got}")
    return "invalid world config: " + "; ".join(problems)
