"""Simulation settings: every assumption (docs/rules.md#assumptions) as a named, validated option.

``SyncSettings`` holds the options of docs/rules.md#assumptions plus the sync type, the start time t0,
pause windows and an External Identity Type (EIT) timeline (docs/rules.md#external-identity-type). It is a pydantic v2 model with
``extra="forbid"``: an unknown option is an error, never silently ignored.

Durations accept ``"15m"``, ``"3d"``, ``"1h30m"``, ISO-8601 (``"PT15M"``, ``"P3D"``), a number of
seconds, or a ``timedelta``. Datetimes are UTC: a naive datetime or string means UTC, an aware
one is converted to UTC. Settings round-trip through YAML (``to_yaml`` / ``from_yaml``) so a
scheduled report can pass them as a file::

    fallback: strict
    cadence: 15m
    snapshot_ttl: 3d
    pauses:
      - {start: 2026-03-02T00:00:00Z, end: 2026-03-06T00:00:00Z}
    eit_timeline:
      - {since: null, eit: customer_id}
      - {since: 2026-02-01T00:00:00Z, eit: mparticle_id}
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from cohortlab.errors import SettingsError
from cohortlab.glossary import counted
from cohortlab.times import (format_duration, format_minute, format_time, from_epoch, naive_utc, parse_duration,
                             parse_time, to_utc)

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_serializer, field_validator, model_validator

MAX_ATTRIBUTE_NAME = 256  # mParticle's limit on a user attribute name (docs/rules.md#cohort-attribute)
# Limits that keep one simulation within a laptop's memory and time (refused with a message):
MAX_RUNS = 1_000_000  # runs of one simulation (t0 .. as-of every cadence); 15 min: ~28 years
MAX_DURATION = timedelta(days=3660)  # cadence and snapshot_ttl: at most ~10 years

EitType = Literal["mparticle_id", "customer_id", "email", "other", "other2", "other3", "other4"]


class _SettingsMeta(type(BaseModel)):
    """Calling a settings class (``SyncSettings(fallback="strick")``) raises a
    :class:`SettingsError` (a ``CohortlabError`` and a ``ValueError``) with one line per problem,
    as a settings file does: pydantic's ``ValidationError`` escaped a notebook's ``except
    CohortlabError``. (On the class's call, not in ``__init__``: pydantic calls an overridden
    ``__init__`` for nested models too, and would wrap the error once per level.)"""

    def __call__(cls, *args: Any, **kwargs: Any):
        try:
            return super().__call__(*args, **kwargs)
        except ValidationError as e:
            raise SettingsError(_explain(e)) from None


class _Model(BaseModel, metaclass=_SettingsMeta):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _epoch_as_loaded(v: Any) -> Any:
    """A time given as a number is epoch seconds, or milliseconds above 1e11, as the loaders and
    ``-o as_of`` read it (:func:`cohortlab.times.from_epoch`); pydantic's own reading (milliseconds
    above 2e10) gave the same number another time in a settings file."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        try:
            return from_epoch(v)
        except SettingsError as e:
            raise ValueError(str(e)) from None
    return v


Time = Annotated[datetime, BeforeValidator(_epoch_as_loaded)]  # a settings time: ISO text, a datetime or an epoch


class Pause(_Model):
    """A window ``[start, end)`` of failed runs (the guide's *Export is Paused*). It ends by
    itself (``ends_with="resume"``: the next successful run is a diff, or a full refresh after a
    gap longer than ``snapshot_ttl``) or with a reconnect (``ends_with="reconnect"``: the export is
    disconnected and connected again, a new export whose first successful run at or after the
    pause's start is a full sync)."""

    start: Time
    end: Time
    ends_with: Literal["resume", "reconnect"] = "resume"

    @field_validator("start", "end", mode="after")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return to_utc(v)

    @model_validator(mode="after")
    def _ordered(self) -> "Pause":
        if self.end <= self.start:
            raise ValueError(f"pause end {format_time(self.end)} is not after its start {format_time(self.start)}")
        return self

    @field_serializer("start", "end")
    def _ser(self, v: datetime) -> str:
        return format_time(v)


class EitPeriod(_Model):
    """From ``since`` (``None`` = the beginning of time) the Mixpanel event output's External
    Identity Type is ``eit``."""

    since: Time | None = None
    eit: EitType

    @field_validator("since", mode="after")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        return to_utc(v)

    @field_serializer("since")
    def _ser(self, v: datetime | None) -> str | None:
        return format_time(v)


class SyncSettings(_Model):
    """Every option of the simulation, with the defaults of docs/rules.md#assumptions. See the module docstring."""

    fallback: Literal["data", "strict"] = Field(
        "data",
        description="'data': the $distinct_id fallback matches whenever it is the decimal MPID of an existing "
        "profile. 'strict': the fallback is used only when the EIT in force at the time the member is resolved "
        "(its send time, or the as-of time with resolution_time='as_of') is mparticle_id.",
    )
    event_identity_cutoff: Time | None = Field(
        datetime(2026, 1, 15, tzinfo=timezone.utc),
        description="From this instant every event carries $mparticle_user_id; None turns the rule off.",
    )
    protection: Literal["only_update", "create_and_update"] = Field(
        "only_update", description="mParticle Input Protection Level of the feed."
    )
    attribute_template: str = Field("{cohort_name}", description="Name of the user attribute set by the feed.")
    cadence: timedelta = Field(timedelta(minutes=15), description="Dynamic sync period.")
    apply_order: Literal["removes_then_adds", "adds_then_removes"] = Field(
        "removes_then_adds", description="Order inside one run when several members share an MPID (last write wins)."
    )
    snapshot_ttl: timedelta = Field(
        timedelta(days=3), description="A gap longer than this since the last successful run makes the next one a full refresh."
    )
    refresh_clears_stale: bool = Field(
        True, description="A full refresh sets false on profiles that are true but no longer members."
    )
    sync_type: Literal["dynamic", "one_time"] = Field("dynamic", description="Dynamic (recurring) sync or one-time export.")
    start: Time | None = Field(None, description="t0: first run / the one-time export. Default: first snapshot or webhook.")
    pauses: list[Pause] = Field(default_factory=list, description="Windows [start, end) of failed runs.")
    eit_timeline: list[EitPeriod] = Field(
        default_factory=lambda: [EitPeriod(since=None, eit="customer_id")],
        description="External Identity Type over time (used by fallback='strict').",
    )
    resolution_time: Literal["send", "as_of"] = Field(
        "send",
        description="'send': a member's identifier is decided when the member is sent (first full sync, entering, "
        "full refresh, re-export, reconnect) from the profiles and events known at that time, and kept until sent again. "
        "'as_of': one resolution at the as-of time applied to every run (the earlier reading).",
    )
    reexport_at: list[Time] = Field(
        default_factory=list,
        description="Remedy re-export: at each time, the first successful run at or after it is a full sync that "
        "re-sends every member with the identifier of that time (disconnect and reconnect, or a new one-time export).",
    )

    # ------------------------------------------------------------------ validation
    @field_validator("cadence", "snapshot_ttl", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        try:
            return parse_duration(v)
        except OverflowError:
            raise ValueError(f"{v!r} is too long: at most {MAX_DURATION.days} days") from None

    @field_validator("cadence", "snapshot_ttl", mode="after")
    @classmethod
    def _positive(cls, v: timedelta, info) -> timedelta:
        if v <= timedelta(0):
            raise ValueError(f"{info.field_name} must be positive")
        if info.field_name == "cadence" and v < timedelta(seconds=1):
            raise ValueError("cadence must be at least 1 second")
        if v > MAX_DURATION:
            raise ValueError(f"{info.field_name} must be at most {MAX_DURATION.days} days")
        return v

    @field_validator("event_identity_cutoff", "start", mode="after")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        return to_utc(v)

    @field_validator("reexport_at", mode="after")
    @classmethod
    def _utc_list(cls, v: list[datetime]) -> list[datetime]:
        return sorted({to_utc(t) for t in v})

    @field_serializer("reexport_at")
    def _ser_times(self, v: list[datetime]) -> list[str]:
        return [format_time(t) for t in v]

    @field_validator("attribute_template", mode="after")
    @classmethod
    def _template(cls, v: str) -> str:
        # only the plain placeholder: a format spec ({cohort_name:>100000000000}) or conversion
        # could exhaust memory or run code paths the feed never has
        import string

        bad = f"attribute_template {v!r} is not a valid template: only the placeholder {{cohort_name}} is allowed"
        if len(v) > MAX_ATTRIBUTE_NAME:
            raise ValueError(f"{bad} (and the template is longer than {MAX_ATTRIBUTE_NAME} characters)")
        try:
            parts = list(string.Formatter().parse(v))
        except ValueError as e:
            raise ValueError(f"{bad} ({e})") from None
        for _, field, spec, conversion in parts:
            if field is not None and (field != "cohort_name" or spec or conversion):
                raise ValueError(bad)
        return v

    @field_validator("eit_timeline", mode="after")
    @classmethod
    def _timeline(cls, v: list[EitPeriod]) -> list[EitPeriod]:
        sinces = [p.since for p in v]
        if sinces.count(None) > 1:
            raise ValueError("eit_timeline: at most one period may have since = null")
        dated = [s for s in sinces if s is not None]
        if len(set(dated)) != len(dated):
            raise ValueError("eit_timeline: two periods start at the same time")
        return sorted(v, key=lambda p: (p.since is not None, p.since or datetime.min.replace(tzinfo=timezone.utc)))

    @field_serializer("event_identity_cutoff", "start")
    def _ser_time(self, v: datetime | None) -> str | None:
        return format_time(v)

    @field_serializer("cadence", "snapshot_ttl")
    def _ser_duration(self, v: timedelta) -> str:
        return format_duration(v)

    # ------------------------------------------------------------------ helpers
    def check_runs(self, t0: datetime, at: datetime) -> int:
        """The number of runs from ``t0`` to ``at`` every ``cadence``; raises SettingsError above
        MAX_RUNS (e.g. ``start: 0001-01-01`` with a 15-minute cadence)."""
        n = 0 if at < t0 else int((at - t0) // self.cadence) + 1
        if n > MAX_RUNS:
            raise SettingsError(
                f"{n:,} sync runs from {format_time(t0)} to {format_time(at)} every {format_duration(self.cadence)}: "
                f"at most {MAX_RUNS:,} runs per simulation; set a later start or a longer cadence"
            )
        return n

    def attribute_name(self, cohort_name: str) -> str:
        """The mParticle user attribute the feed sets for ``cohort_name`` (docs/rules.md#cohort-attribute).
        Raises :class:`SettingsError` when it exceeds 256 characters (never truncated)."""
        name = self.attribute_template.format(cohort_name=cohort_name)
        if len(name) > MAX_ATTRIBUTE_NAME:
            from cohortlab.privacy import masked_text

            # the name's start, with an email or phone number in it masked before it is cut (a
            # report shows this error on its pages and in the index)
            raise SettingsError(
                f"attribute name for cohort {masked_text(cohort_name)[:40]!r}... is {len(name)} characters; mParticle allows at "
                f"most {MAX_ATTRIBUTE_NAME} (attribute_template={self.attribute_template!r}). It is rejected, not truncated."
            )
        return name

    def eit_at(self, t: datetime | None) -> str:
        """The External Identity Type in force at ``t`` (the latest period with since <= t).
        Before the first dated period, with no undated one: customer_id (mParticle's default)."""
        t = to_utc(t)
        eit = "customer_id"
        for p in self.eit_timeline:  # sorted by since, undated first
            if p.since is None or (t is not None and p.since <= t):
                eit = p.eit
        return eit

    def fallback_applies(self, eit: str) -> bool:
        """The ``$distinct_id`` fallback rule (docs/rules.md#choosing-the-identifier): with
        ``fallback="data"`` it always applies; with ``"strict"`` only while the External
        Identity Type in force is ``mparticle_id``. ``eit``: the EIT in force at that time
        (``self.eit_at(t)``, or a migration plan's)."""
        return self.fallback == "data" or eit == "mparticle_id"

    def replace(self, **changes: Any) -> "SyncSettings":
        """A validated copy with some options changed."""
        return self.coerce({**self.model_dump(), **changes})

    @classmethod
    def coerce(cls, value: "SyncSettings | dict | str | Path | None") -> "SyncSettings":
        """Settings from an object, a dict, a YAML file path, or None (defaults)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, (str, Path)):
            return cls.from_yaml(value)
        if isinstance(value, dict):
            try:
                return cls.model_validate(value)
            except ValidationError as e:
                raise SettingsError(_explain(e)) from None
        raise SettingsError(f"settings must be SyncSettings, a dict or a YAML path, not {type(value).__name__}")

    # ------------------------------------------------------------------ YAML
    def to_dict(self) -> dict[str, Any]:
        """Every option as plain JSON values (times as ISO text, durations as ``15m``)."""
        return self.model_dump(mode="json")

    def to_yaml(self, path: str | Path | None = None) -> str:
        """The settings as YAML text (every option), also written to ``path`` when given;
        :meth:`from_yaml` reads it back."""
        import yaml

        text = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def from_yaml(cls, path: str | Path) -> "SyncSettings":
        """Settings from a YAML file of ``option: value`` (docs/settings.md); an unreadable
        file, an unknown option or a bad value raises :class:`SettingsError` naming the file."""
        from cohortlab.errors import read_yaml_file

        p = Path(path)
        data = read_yaml_file(p, SettingsError, "settings file")
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise SettingsError(f"{p}: {_explain(e)}") from None


def _explain(e: ValidationError) -> str:
    """One line per problem: ``option: message``; unknown options list the known ones."""
    from cohortlab.errors import unknown_key, validator_message

    lines = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "settings"
        if err["type"] == "extra_forbidden":  # the options of its mapping: a pause's, an EIT period's, the settings'
            near, known = unknown_key(err["loc"], SyncSettings, {"pauses": Pause, "eit_timeline": EitPeriod})
            mean = f"did you mean {near!r}? " if near else ""
            lines.append(f"{loc}: unknown option ({mean}known options: {', '.join(known)})")
        else:
            lines.append(f"{loc}: {validator_message(err)} (got {err.get('input')!r})")
    return "invalid settings: " + "; ".join(lines)


def settings_summary(settings=None) -> str:
    """The simulation settings in one line, for the header of every page."""
    st = SyncSettings.coerce(settings)
    default = SyncSettings()
    minutes = st.cadence.total_seconds() / 60
    start = f" from {format_minute(st.start)}" if st.start else ""
    parts = [
        f"fallback {st.fallback}",
        "event rule off" if st.event_identity_cutoff is None else f"event cutoff {format_minute(st.event_identity_cutoff)}",
        f"protection {st.protection}",
        # a one-time export runs once: it has no cadence
        (f"one-time export at {format_minute(st.start)}" if st.start else "one-time export at the first run")
        if st.sync_type == "one_time" else f"dynamic sync every {minutes:g} min{start}",
        f"attribute \"{st.attribute_template}\"",
    ]
    if st.pauses:
        parts.append("paused " + ", ".join(f"{format_minute(p.start)} to {format_minute(p.end)}"
                                           + (" (then a reconnect)" if p.ends_with == "reconnect" else "")
                                           for p in st.pauses))
    else:
        parts.append("no pauses")
    # the options that change the story when not at their default: two runs with different
    # settings never show the same line
    if st.eit_timeline != default.eit_timeline:
        parts.append("EIT " + ", then ".join(p.eit if p.since is None else f"{p.eit} from {format_minute(p.since)}"
                                             for p in st.eit_timeline))
    if st.resolution_time != default.resolution_time:
        parts.append("identifiers resolved once, at the as-of time")
    if st.reexport_at:
        parts.append("re-export at " + ", ".join(format_minute(t) for t in st.reexport_at))
    if st.apply_order != default.apply_order:
        parts.append(f"apply order {st.apply_order.replace('_', ' ')}")
    if st.snapshot_ttl != default.snapshot_ttl:
        parts.append(f"full refresh after a gap of {_duration(st.snapshot_ttl)}")
    if st.refresh_clears_stale != default.refresh_clears_stale:
        parts.append("a full refresh leaves stale profiles true")
    return "; ".join(parts)


def _duration(d) -> str:
    """A duration in words: ``3 days``, ``12 hours``, ``90 minutes``, ``45 seconds``."""
    secs = d.total_seconds()
    for unit, n in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if secs >= n and secs % n == 0:
            return counted(int(secs // n), unit)
    return f"{secs:g} seconds"


__all__ = [
    "settings_summary",
    "SyncSettings",
    "Pause",
    "EitPeriod",
    "SettingsError",
    "MAX_ATTRIBUTE_NAME",
    "parse_duration",
    "format_duration",
    "parse_time",
    "naive_utc",
]
