"""Report parameters: a declared schema, checked before any notebook runs.

Parameters reach a notebook as data: each has a name and a type declared here; a value given
on the command line (``-p KEY=VALUE``, read as YAML) or in a ``--params`` YAML file must be a
plain YAML value (text, number, boolean, null, or a list of those) of that type. Anything else
(a ``!!binary`` value, a ``!!python/...`` tag, a nested mapping) is refused, so no value can turn
into code in the notebook's injected-parameters cell. An unknown name is an error naming the
parameters the chosen notebooks declare, with the nearest match (``asof`` → ``as_of``).

Read from a ``--params`` file (:func:`load_params`) or ``-p`` items (:func:`parse_param_items`),
checked against what the chosen notebooks declare (:func:`check_parameters`), and their paths
made absolute (:func:`absolute_paths`) before they reach a notebook.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, get_args

from cohortlab.engines import ENGINES
from cohortlab.errors import CohortlabError, ReportError
from cohortlab.settings import EitType


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


def time_text(v: Any, what: str) -> str:
    """A time parameter (ISO text, or the date or datetime YAML reads) as the notebooks get it:
    ISO UTC text (``2026-02-28T00:00:00Z``); a value that is no time raises the error of
    :func:`cohortlab.times.parse_time` naming ``what``. ``cohortlab report`` checks its parameters
    so, and a notebook's setup cell when papermill runs it (:func:`cohortlab.report.notebook.time_parameter`)."""
    from cohortlab.times import format_time, parse_time

    if isinstance(v, (_dt.datetime, _dt.date)):
        v = v.isoformat()
    return format_time(parse_time(v, what))


def _time(name: str, v: Any) -> str:
    if not isinstance(v, (_dt.datetime, _dt.date)):
        _text(name, v)
    try:
        return time_text(v, f"parameter {name}")
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


def _cohorts(name: str, v: Any) -> str | list[str]:
    """One cohort or a list: a name, or an id, which YAML reads as a number (``-p cohorts=1000``:
    its text, as the notebooks take one id; a float or a boolean is no id)."""
    def one(n: str, x: Any) -> str:
        return str(x) if isinstance(x, int) and not isinstance(x, bool) else _text(n, x)

    if isinstance(v, list):
        return [one(f"{name}[{i}]", x) for i, x in enumerate(v)]
    return one(name, v)


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
    Parameter("cohorts", _optional(_cohorts), "a cohort name or id, or a list of them; none: every cohort"),
    Parameter("as_of", _optional(_time), "ISO time; none: each cohort's latest data"),
    Parameter("settings", _optional(_text), "SyncSettings YAML file"),
    Parameter("output_dir", _optional(_text), "folder for metrics.json (set by cohortlab report)"),
    Parameter("show_personal_data", _bool, "show emails and phone numbers"),
    Parameter("engine", _choice(*ENGINES), "the engine that runs the SQL"),
    Parameter("spark_master", _optional(_text), "Spark master URL (engine spark)"),
    Parameter("timezone", _optional(_text), "the Mixpanel project's time zone of the raw events of a folder "
              "the notebook loads (data, observed_data; a project created before 2023)"),
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
    Parameter("simulations", _optional(_text), "DuckDB file of the simulations the notebooks share "
              "(set by cohortlab report)"),
    Parameter("data_switch", _optional(_time), "the data's EIT switch as the report read it before the "
              "EIT page ran (set by cohortlab report)"),
    Parameter("switch_from", _optional(_choice("manifest")), "where the report found the switch it gave the EIT "
              "page: manifest, a synthetic world's manifest.json (set by cohortlab report)"),
    Parameter("world_eit", _optional(_choice(*get_args(EitType))), "the EIT a synthetic world's manifest gives "
              "before its switch, when not customer_id and no settings were given (set by cohortlab report)"),
]}

# the parameters that hold paths: made absolute before they reach a notebook (whose folder differs)
PATH_PARAMETERS = ("db", "data", "settings", "output_dir", "plans", "observed_db", "observed_data", "simulations")


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


# ------------------------------------------------------------------- reading and checking them
def load_params(path: str | os.PathLike | None) -> dict[str, Any]:
    """Notebook parameters from a YAML (or JSON) mapping; ``None`` gives ``{}``."""
    if path is None:
        return {}
    from cohortlab.errors import read_yaml_file

    data = read_yaml_file(path, ReportError, "the parameters file", mapping="parameter: value")
    return {str(k): _iso_dates(v) for k, v in data.items()}


def parse_param_items(items: Iterable[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings into parameters; VALUE is read as YAML (``[a, b]``, ``true``, ``3``)."""
    import yaml

    from cohortlab.errors import YamlTooLarge, YamlValueError, yaml_data

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ReportError(f"expected KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = _iso_dates(yaml_data(value, unique_keys=False)) if value.strip() else None
        except (YamlTooLarge, YamlValueError) as e:  # -p as_of=2026-02-30 was a traceback
            raise ReportError(f"-p {key.strip()}: not a usable YAML value ({e})") from None
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def _iso_dates(v: Any) -> Any:
    """YAML may give dates/datetimes; notebooks get ISO strings (papermill writes literals)."""
    if isinstance(v, (_dt.datetime, _dt.date)):
        return v.isoformat()
    if isinstance(v, list):
        return [_iso_dates(x) for x in v]
    if isinstance(v, dict):
        return {k: _iso_dates(x) for k, x in v.items()}
    return v


def check_parameters(params: Mapping[str, Any], sources: Iterable[str | os.PathLike]) -> dict[str, Any]:
    """``params`` checked against what the ``sources`` notebooks declare and the type each parameter
    has in :mod:`cohortlab.report.parameters` (a plain YAML value; ``!!binary``, ``!!python/...``,
    mappings refused; an unknown name is an error naming the nearest declared one)."""
    declared: set[str] = set()
    for src in sources:
        declared |= set(declared_parameters(src))
    declared.discard("output_dir")  # set by the runner, never by the user
    declared.discard("simulations")
    declared.discard("data_switch")
    declared.discard("switch_from")
    declared.discard("world_eit")
    try:
        return validate(params, declared)
    except ParameterError as e:
        raise ReportError(str(e)) from None


def declared_parameters(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The parameters a notebook declares in its ``parameters`` cell (papermill's inspection)."""
    import papermill

    from cohortlab.report.kernels import papermill_local_files_without_chdir

    papermill_local_files_without_chdir()  # papermill's own reader changes this process's folder to read
    return papermill.inspect_notebook(str(path))


def absolute_paths(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with every path parameter (:data:`PATH_PARAMETERS`) absolute: a notebook runs
    in its own folder, so a relative path would be read from there."""
    def absolute(v: Any) -> Any:
        if isinstance(v, (str, os.PathLike)) and str(v) != "":
            return str(Path(v).expanduser().resolve())
        if isinstance(v, list):
            return [absolute(x) for x in v]
        return v

    out = dict(params)
    for k in PATH_PARAMETERS:
        if k in out:
            out[k] = absolute(out[k])
    return out
