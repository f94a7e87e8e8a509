"""Migration plans (docs/rules.md#migration): an External Identity Type timeline, optional remediations and the
event identity cutoff, as a validated pydantic model that reads from and writes to YAML.

    name: switch + Rule
    description: switch the Mixpanel output to mParticle ID on Feb 1, add a Rule the same day
    eit_timeline:
      - {since: null, eit: customer_id}
      - {since: 2026-02-01, eit: mparticle_id}
    remediation:
      - {kind: rule, since: 2026-02-01}
    reexport_at: 2026-02-15                # optional: re-export the cohort after fixing identifiers
    event_identity_cutoff: 2026-01-15      # default; null turns the rule off

``eit_timeline`` also accepts a single EIT name (``eit_timeline: customer_id``: no change).
``remediation`` accepts one mapping or a list. Dates without a time mean 00:00 UTC.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer, field_validator

from cohortlab.errors import CohortlabError, SettingsError
from cohortlab.settings import EitPeriod, SyncSettings
from cohortlab.times import format_time, naive_utc, parse_time, to_utc

DEFAULT_CUTOFF = SyncSettings.model_fields["event_identity_cutoff"].default

# EIT name (SyncSettings spelling) -> mParticle identity type (Events API spelling, as in mpa_identities)
EIT_IDENTITY_TYPE: dict[str, str | None] = {
    "mparticle_id": None,
    "customer_id": "customer_id",
    "email": "email",
    "other": "other",
    "other2": "other_id_2",
    "other3": "other_id_3",
    "other4": "other_id_4",
}
_EIT_ALIASES = {
    "mpid": "mparticle_id", "mparticleid": "mparticle_id", "mparticle id": "mparticle_id",
    "customerid": "customer_id", "customer id": "customer_id",
    "other_id_2": "other2", "other_id_3": "other3", "other_id_4": "other4",
}


class PlanError(CohortlabError, ValueError):
    """A migration plan is invalid or cannot be read."""


def _time(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, date) and not isinstance(v, datetime):
        return datetime(v.year, v.month, v.day, tzinfo=timezone.utc)
    if isinstance(v, str) and len(v.strip()) == 10:
        return parse_time(v.strip() + "T00:00:00Z")
    try:
        return parse_time(v)
    except SettingsError as e:
        raise ValueError(str(e)) from None


def _eit_name(v: Any) -> Any:
    if isinstance(v, str):
        s = v.strip().lower()
        return _EIT_ALIASES.get(s, s)
    return v


class Remediation(BaseModel):
    """Something that writes ``$mparticle_user_id`` onto the Mixpanel profile from ``since`` on,
    for every user active (logged in) at or after ``since``: an mParticle Rule on the Mixpanel
    output (``rule``: from every such event) or SDK code setting the user attribute (``sdk``:
    only from the events an app sends, with a ``$device_id``, as the identity-gaps page's
    ``sdk_code`` remedy: :func:`cohortlab.identifiers.app_event_sql`)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["rule", "sdk"] = "rule"
    since: datetime

    @field_validator("since", mode="before")
    @classmethod
    def _t(cls, v):
        return _time(v)

    @field_serializer("since")
    def _ser(self, v):
        return format_time(v)


class MigrationPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    eit_timeline: list[EitPeriod] = Field(default_factory=lambda: [EitPeriod(since=None, eit="customer_id")])
    remediation: list[Remediation] = Field(default_factory=list)
    reexport_at: datetime | None = None  # re-export the cohort (a full sync) after fixing identifiers
    event_identity_cutoff: datetime | None = DEFAULT_CUTOFF
    # the EIT periods dated before this instant are the settings' timeline (what the output held),
    # not a change the plan makes: the standard plans carry it (migration.switch.plans_around)
    changes_from: datetime | None = None

    @field_validator("eit_timeline", mode="before")
    @classmethod
    def _timeline_in(cls, v):
        if isinstance(v, str):
            v = [{"since": None, "eit": v}]
        if isinstance(v, dict):  # {since: eit} or one period
            v = [v] if "eit" in v else [{"since": k, "eit": e} for k, e in v.items()]
        if v is None:
            return []
        if not isinstance(v, (list, tuple)):
            return v  # a number, a boolean: pydantic says "eit_timeline: Input should be a valid list"
        out = []
        for p in v:
            if isinstance(p, (list, tuple)) and len(p) == 2:
                p = {"since": p[0], "eit": p[1]}
            if not isinstance(p, dict):  # an EitPeriod, or a wrong type pydantic names (eit_timeline.N)
                out.append(p)
                continue
            p = dict(p)
            if "from" in p and "since" not in p:
                p["since"] = p.pop("from")
            p["since"] = _time(p.get("since"))
            p["eit"] = _eit_name(p.get("eit"))
            out.append(p)
        return out

    @field_validator("eit_timeline", mode="after")
    @classmethod
    def _timeline(cls, v):
        if not v:
            raise ValueError("eit_timeline needs at least one period")
        out = SyncSettings.model_validate({"eit_timeline": v}).eit_timeline
        if out[0].since is not None:
            # before the first dated period: customer_id, mParticle's default (SyncSettings.eit_at);
            # the model keyed that activity by the first dated period's EIT, eit_at by customer_id
            out = [EitPeriod(since=None, eit="customer_id"), *out]
        return out

    @field_validator("remediation", mode="before")
    @classmethod
    def _rem_in(cls, v):
        if v is None:
            return []
        if isinstance(v, (dict, Remediation)):
            return [v]
        return v

    @field_validator("event_identity_cutoff", "reexport_at", "changes_from", mode="before")
    @classmethod
    def _cut(cls, v):
        return _time(v)

    @field_serializer("event_identity_cutoff", "reexport_at", "changes_from")
    def _ser(self, v):
        return format_time(v)

    # ------------------------------------------------------------------ helpers
    def eit_at(self, t: datetime | None) -> str:
        eit = "customer_id"
        t = to_utc(t)
        for p in self.eit_timeline:
            if p.since is None or (t is not None and p.since <= t):
                eit = p.eit
        return eit

    def _settings_period(self, p: EitPeriod) -> bool:
        """Whether ``p`` is a period of the settings' timeline the plan carries (dated before
        ``changes_from``), not a change of its own."""
        return p.since is not None and self.changes_from is not None and p.since < self.changes_from

    @property
    def changes(self) -> list[tuple[datetime, str]]:
        """Dated changes of the plan: EIT switches (a period of the settings' timeline it carries
        says so), remediation starts, and the cutoff."""
        out = [(p.since, f"EIT → {p.eit}" + (" (the settings' timeline)" if self._settings_period(p) else ""))
               for p in self.eit_timeline if p.since is not None]
        out += [(r.since, f"{r.kind} writes $mparticle_user_id") for r in self.remediation]
        if self.reexport_at is not None:
            out.append((self.reexport_at, "re-export the cohort"))
        if self.event_identity_cutoff is not None:
            out.append((self.event_identity_cutoff, "event rule ($mparticle_user_id on events)"))
        return sorted(out, key=lambda x: x[0])

    def fix_instants(self, as_of: datetime | None = None) -> list[datetime]:
        """Instants after which activity can make a user matchable at ``as_of`` (None: after
        the timeline's last change): the start of the mparticle_id EIT in force then (1970 when
        the timeline starts with it), a remediation start, the event identity cutoff. An
        mparticle_id period that has ended by ``as_of`` is no fix then: what it keyed by the MPID
        is matched by the fallback without it (``data``) or not at all (``strict``), and activity
        after it is keyed by the later EIT (docs/migration.md#model)."""
        out: list[datetime] = []
        start = None  # the start of the mparticle_id stretch in force at as_of
        for p in self.eit_timeline:
            if as_of is not None and p.since is not None and to_utc(p.since) > to_utc(as_of):
                break
            if p.eit != "mparticle_id":
                start = None
            elif start is None:
                start = p.since or datetime(1970, 1, 1, tzinfo=timezone.utc)
        if start is not None:
            out.append(start)
        out += [r.since for r in self.remediation]
        if self.event_identity_cutoff is not None:
            out.append(self.event_identity_cutoff)
        return out

    def first_change(self) -> datetime | None:
        """The first *plan action* (EIT switch or remediation start); None for 'do nothing'. The
        periods of the settings' timeline it carries (before ``changes_from``) are no action."""
        out = ([p.since for p in self.eit_timeline if p.since is not None and not self._settings_period(p)]
               + [r.since for r in self.remediation])
        return min(out) if out else None

    def to_dict(self) -> dict[str, Any]:
        out = self.model_dump(mode="json")
        if out.get("changes_from") is None:  # a plan of a file: every period is its own
            out.pop("changes_from", None)
        return out

    def to_yaml(self, path: str | Path | None = None) -> str:
        import yaml

        text = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None, allow_unicode=True)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def coerce(cls, value: "MigrationPlan | dict | str | Path") -> "MigrationPlan":
        if isinstance(value, cls):
            return value
        if isinstance(value, (str, Path)):
            return cls.from_yaml(value)
        if isinstance(value, dict):
            try:
                return cls.model_validate(value)
            except ValidationError as e:
                raise PlanError(f"invalid migration plan: {_explain(e)}") from None
        raise PlanError(f"a plan must be a MigrationPlan, a dict or a YAML path, not {type(value).__name__}")

    @classmethod
    def from_yaml(cls, path: str | Path) -> "MigrationPlan":
        plans = load_plans(path)
        if len(plans) != 1:
            raise PlanError(f"{path}: holds {len(plans)} plans ({', '.join(p.name for p in plans)}); one is needed "
                            "here: put it in a file of its own (load_plans() reads them all)")
        return plans[0]


def _explain(e: ValidationError) -> str:
    """One part per problem, ``where: message``; a misspelt key gets a "did you mean" among the
    keys of its mapping (a plan's, a remediation's, an EIT period's), as a settings file's does."""
    from cohortlab.errors import unknown_key, validator_message
    from cohortlab.settings import EitPeriod

    parts = []
    for err in e.errors():
        msg = validator_message(err)
        if err["type"] == "extra_forbidden":
            near, known = unknown_key(err["loc"], MigrationPlan, {"remediation": Remediation, "eit_timeline": EitPeriod})
            msg = f"unknown key{f' (did you mean {near!r}?)' if near else ''}; the keys: {', '.join(known)}"
        parts.append(f"{'.'.join(str(x) for x in err['loc']) or 'plan'}: {msg}")
    return "; ".join(parts)


def _read_yaml(path: str | Path) -> Any:
    from cohortlab.errors import read_yaml_file

    return read_yaml_file(Path(path), PlanError, "plan file", mapping=None)  # one plan or a list


def _one(path) -> MigrationPlan:
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise PlanError(f"{path}: expected a mapping (one plan) or a list of plans")
    data.setdefault("name", Path(path).stem)
    try:
        return MigrationPlan.model_validate(data)
    except ValidationError as e:
        raise PlanError(f"{path}: invalid migration plan: {_explain(e)}") from None


def load_plans(path: str | Path) -> list[MigrationPlan]:
    """All plans of a YAML file: one plan (a mapping), a list of plans, or ``{plans: [...]}``."""
    data = _read_yaml(path)
    if isinstance(data, dict) and "plans" in data:
        data = data["plans"]
    if isinstance(data, dict):
        return [_one(path)]
    if not isinstance(data, list):
        raise PlanError(f"{path}: expected a plan mapping or a list of plans")
    out = []
    for i, item in enumerate(data):
        try:
            out.append(MigrationPlan.model_validate(item))
        except ValidationError as e:
            raise PlanError(f"{path}: plan #{i + 1}: {_explain(e)}") from None
    names = [p.name for p in out]
    if len(set(names)) != len(names):
        raise PlanError(f"{path}: plan names must be unique, got {names}")
    return out


def plan_events(plans) -> "pd.DataFrame":
    """Vertical markers for a chart: (plan, date, label) of every dated change of ``plans``."""
    import pandas as pd

    rows = [{"plan": p.name, "date": pd.Timestamp(naive_utc(t)), "label": label}
            for p in map(MigrationPlan.coerce, plans) for t, label in p.changes]
    df = pd.DataFrame(rows, columns=["plan", "date", "label"])
    return df.drop_duplicates(["date", "label"]).reset_index(drop=True)


def standard_plans(switch: Any, *, rule: Any | None = None, current_eit: str | list = "customer_id",
                   event_identity_cutoff: Any = DEFAULT_CUTOFF) -> list[MigrationPlan]:
    """The four usual options: switch only; switch + Rule; Rule only; do nothing.
    ``rule`` defaults to the switch date. ``current_eit``: the EIT before the switch, or the
    timeline before it (periods, the settings' ones dated before the switch: every plan carries
    them, and they are no change of the plan: ``changes_from`` is the switch)."""
    rule = switch if rule is None else rule
    before = MigrationPlan(name="before", eit_timeline=current_eit).eit_timeline
    dated = [p for p in before if p.since is not None]
    at = _time(switch)
    if dated and at is not None and max(p.since for p in dated) >= at:
        raise PlanError(f"the timeline before the switch ({format_time(at)}) has a period from "
                        f"{format_time(max(p.since for p in dated))}, not before it")
    base = {"event_identity_cutoff": event_identity_cutoff, "changes_from": switch if dated else None}
    tl_switch = [*before, EitPeriod(since=at, eit="mparticle_id")]
    return [
        MigrationPlan(name="switch only", eit_timeline=tl_switch, **base),
        MigrationPlan(name="switch + Rule", eit_timeline=tl_switch, remediation=[{"kind": "rule", "since": rule}], **base),
        MigrationPlan(name="Rule only", eit_timeline=before, remediation=[{"kind": "rule", "since": rule}], **base),
        MigrationPlan(name="do nothing", eit_timeline=before, **base),
    ]


__all__ = ["MigrationPlan", "Remediation", "PlanError", "load_plans", "standard_plans", "plan_events", "EIT_IDENTITY_TYPE", "DEFAULT_CUTOFF"]
