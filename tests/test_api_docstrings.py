"""Every public name of ``cohortlab`` (``__all__``) and every public method and property of its
classes has a docstring: what a notebook's ``help()`` and ``Shift+Tab`` show an analyst."""

from __future__ import annotations

import dataclasses
import inspect

import cohortlab

# pydantic's own API on SyncSettings, dataclass and exception machinery: documented upstream
UPSTREAM = {"construct", "copy", "dict", "json", "parse_obj", "parse_raw", "parse_file", "from_orm", "schema",
            "schema_json", "update_forward_refs", "validate", "with_traceback", "add_note", "args"}


def _undocumented(cls) -> list[str]:
    missing = []
    for name, member in vars(cls).items():  # the class's own members, not inherited ones
        if name.startswith("_") and name != "__init__" or name.startswith("model_") or name in UPSTREAM:
            continue
        target = member.func if hasattr(member, "func") else member  # cached_property
        if isinstance(target, (staticmethod, classmethod)):
            target = target.__func__
        if isinstance(target, property):
            target = target.fget
        if not callable(target):
            continue
        if name == "__init__" and dataclasses.is_dataclass(cls):
            continue  # a dataclass's generated __init__: its fields are the class docstring's
        if not inspect.getdoc(target) or inspect.getdoc(target) == inspect.getdoc(object.__init__):
            missing.append(f"{cls.__name__}.{name}")
    return missing


def test_every_public_class_method_and_property_has_a_docstring():
    missing = []
    for name in cohortlab.__all__:
        if name.startswith("__"):
            continue
        obj = getattr(cohortlab, name)
        if not inspect.getdoc(obj):
            missing.append(name)
        if inspect.isclass(obj) and not issubclass(obj, Exception):
            missing += _undocumented(obj)
    assert not missing, f"no docstring: {missing}"


def test_the_public_names_are_the_ones_docs_list_and_dir_shows_no_helper():
    """``dir(cohortlab)`` (a notebook's completion) shows the public API, which
    docs/simulate.md#api lists: not the module's own helpers (``import_module``, ``_HOMES``).
    ``CohortlabError`` is public: the docs tell a notebook to catch it."""
    from pathlib import Path

    assert sorted(dir(cohortlab)) == sorted({*cohortlab.__all__, "SparkEngine"})
    from cohortlab import CohortlabError, LoadError, SettingsError

    assert issubclass(LoadError, CohortlabError) and issubclass(SettingsError, CohortlabError)
    page = (Path(__file__).resolve().parents[1] / "docs" / "simulate.md").read_text(encoding="utf-8")
    listed = page.split("### The public API", 1)[1].split("###", 1)[0]
    assert all(f"`{n}`" in listed for n in [*cohortlab.__all__, "SparkEngine"])
