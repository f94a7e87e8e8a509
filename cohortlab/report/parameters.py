"""Report parameters: a declared schema, checked before any notebook runs.

Parameters reach a notebook as data: each has a name and a type declared here; a value given
on the command line (``-p KEY=VALUE``, read as YAML) or in a ``--params`` YAML file must be a
plain YAML value (text, number, boolean, null, or a list of those) of that type. Anything else
(a ``!!binary`` value, a ``!!python/...`` tag, a nested mapping) is refused, so no value can turn
into code in the notebook's injected-parameters cell. An unknown name is an error naming the
parameters the chosen notebooks declare, with the nearest match (``asof`` → ``as_of``).
"""

from __future__ import annotations

import datetime as _dt
import difflib
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from cohortlab.errors import CohortlabError


class ParameterError(CohortlabError, ValueError):
    """A report parameter is unknown or its value has the wrong type."""


def _text(name: str, v: Any) -> str:
    if not isinstance(v, str):
        raise ParameterError(f"parameter {name}: expected text, got {_kind(v)}")
    return v


def _optional(check: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
    def inner(name: str, v: Any) -> Any:
        return None if v is None else check(name, v)

    return inner


def _bool(name: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ParameterError(f"parameter {name}: expected true or false, got {_kind(v)}")
    return v


def _time(name: str, v: Any) -> str:
    from cohortlab.times import format_time, parse_time

    if isinstance(v, (_dt.datetime, _dt.date)):
        v = v.isoformat()
    text = _text(name, v)
    try:
        return format_time(parse_time(text, f"parameter {name}"))
    except ValueError as e:
        raise ParameterError(str(e)) from None


def _day(name: str, v: Any) -> str:
    from cohortlab.times import parse_day

    if isinstance(v, (_dt.datetime, _dt.date)):
        v = v.isoformat()
    try:
        return parse_day(_text(name, v), f"parameter {name}").isoformat()
    except ValueError as e:
        raise ParameterError(str(e)) from None


def _texts(name: str, v: Any) -> str | list[str]:
    """One text or a list of texts."""
    if isinstance(v, list):
        return [_text(f"{name}[{i}]", x) for i, x in enumerate(v)]
    return _text(name, v)


def _choice(*allowed: str) -> Callable[[str, Any], str]:
    def inner(name: str, v: Any) -> str:
        if v not in allowed:
            raise ParameterError(f"parameter {name}: expected one of {', '.join(allowed)}, got {v!r}")
        return v

    return inner


@dataclass(frozen=True)
class Parameter:
    name: str
    check: Callable[[str, Any], Any]
    help: str


PARAMETERS: dict[str, Parameter] = {p.name: p for p in [
    Parameter("db", _optional(_text), "DuckDB file with the loaded exports"),
    Parameter("data", _optional(_text), "folder of exports, loaded in memory (db wins)"),
    Parameter("cohorts", _optional(_texts), "a cohort name or a list of names; none: every cohort"),
    Parameter("as_of", _optional(_time), "ISO time; none: each cohort's latest data"),
    Parameter("settings", _optional(_text), "SyncSettings YAML file"),
    Parameter("output_dir", _optional(_text), "folder for metrics.json (set by cohortlab report)"),
    Parameter("show_personal_data", _bool, "show emails and phone numbers"),
    Parameter("engine", _choice("duckdb", "spark"), "the engine that runs the SQL"),
    Parameter("spark_master", _optional(_text), "Spark master URL (engine spark)"),
    Parameter("since", _optional(_time), "sync timeline: show runs from this time on"),
    Parameter("snapshot_at", _optional(_time), "match rates: when the mParticle snapshot was taken; none: detected"),
    Parameter("plans", _optional(_texts), "migration plan YAML file(s)"),
    Parameter("switch", _optional(_time), "EIT switch time of the standard plans"),
    Parameter("start", _optional(_day), "first day of the migration prediction"),
    Parameter("end", _optional(_day), "last day of the migration prediction"),
    Parameter("activity", _choice("observed", "repeat"), "migration activity model"),
    Parameter("observed_db", _optional(_text), "DuckDB file of exports taken after the switch"),
    Parameter("observed_data", _optional(_text), "folder of exports taken after the switch"),
    Parameter("validate_plan", _optional(_text), "plan to validate"),
    Parameter("previous_metrics", _optional(_text), "metrics.json of the previous run (trend)"),
    Parameter("simulations", _optional(_text), "DuckDB file of the simulations the notebooks share "
              "(set by cohortlab report)"),
]}

PATH_PARAMETERS = ("db", "data", "settings", "output_dir", "plans", "observed_db", "observed_data",
                   "previous_metrics", "simulations")


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bytes):
        return "a binary value (YAML !!binary)"
    return f"a {type(v).__name__} value"


def plain(value: Any, name: str) -> Any:
    """``value`` if it is a plain YAML scalar or a list of them (dates become ISO text);
    :class:`ParameterError` otherwise."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ParameterError(f"parameter {name}: {value!r} is not a finite number")
        return value
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, list):
        return [plain(x, f"{name}[{i}]") for i, x in enumerate(value)]
    raise ParameterError(f"parameter {name}: {_kind(value)} is not allowed "
                         "(text, numbers, true/false, null or a list of those only)")


def near(name: str, known: Iterable[str]) -> str:
    """`` (did you mean as_of?)`` or ``""``."""
    match = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else ""


def validate(params: Mapping[str, Any], declared: Iterable[str]) -> dict[str, Any]:
    """Checked, normalised parameters. ``declared``: the names the chosen notebooks declare."""
    declared = set(declared)
    out: dict[str, Any] = {}
    for name, value in params.items():
        if name not in declared:
            raise ParameterError(f"unknown parameter {name!r}{near(name, declared)}; "
                                 f"the notebooks take: {', '.join(sorted(declared))}")
        spec = PARAMETERS.get(name)
        if spec is None:  # declared by a notebook but not in the schema: refuse rather than guess
            raise ParameterError(f"parameter {name!r} has no declared type in cohortlab.report.parameters")
        out[name] = spec.check(name, plain(value, name))
    return out
