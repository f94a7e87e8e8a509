"""The errors cohortlab raises for a user's mistake (bad input, bad setting, unknown cohort).

Each carries a message meant to be shown as it is: the command line prints it on one line,
without a traceback, and exits non-zero."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from typing import Any


class CohortlabError(Exception):
    """Base of every error whose message is for the user."""

    def _render_traceback_(self) -> list[str]:
        """What IPython (a notebook, JupyterLab) shows for this error: the traceback of the
        notebook's own code only (its cell and line, ``Cell In[3], line 5``), then the one-line
        message, without the frames inside cohortlab, which say nothing to the user that the message
        does not (``%xmode Verbose`` shows them all). Outside IPython it is never called."""
        import types

        head = f"{type(self).__name__}: {self}"
        try:
            from IPython import get_ipython

            shell = get_ipython()
            package = os.path.dirname(os.path.abspath(__file__)) + os.sep
            frames, tb = [], self.__traceback__
            while tb is not None and not os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(package):
                frames.append(tb)
                tb = tb.tb_next
            if shell is None:
                raise LookupError
            if tb is None or len(frames) < 2 or getattr(shell.InteractiveTB, "mode", "") == "Verbose":
                # no cohortlab frame to leave out, or every frame asked for (%xmode Verbose)
                return shell.InteractiveTB.structured_traceback(type(self), self, self.__traceback__)
            short = None
            for t in reversed(frames):  # the same frames, the last of them before cohortlab ending the chain
                short = types.TracebackType(short, t.tb_frame, t.tb_lasti, t.tb_lineno)
            stb = shell.InteractiveTB.structured_traceback(type(self), self, short)
            return [*stb, "(the frames inside cohortlab are left out: %xmode Verbose shows them)"]
        except Exception:  # noqa: BLE001 - whatever went wrong here, the message is shown
            return [head]


class SettingsError(CohortlabError, ValueError):
    """A setting or parameter is unknown, has a bad value, or a settings file cannot be read."""


class ReportError(CohortlabError):
    """A report cannot run, found before any notebook runs: a bad notebook name or parameter, an
    output folder that exists, a database without the tables or cohorts the notebooks read."""


class DatabaseError(CohortlabError):
    """The database cannot be opened: in use by another process, not a DuckDB file, or its
    folder cannot be created."""


class DatabaseLockedError(DatabaseError):
    """Another process holds the database's lock (DuckDB allows one writer process)."""


class InputNotFoundError(CohortlabError, FileNotFoundError):
    """The database file or the folder of exports a notebook (or :func:`cohortlab.lab.open_lab`) was
    given does not exist."""


class LoadError(CohortlabError):
    """A file-level problem. The message names the file (and the line/record when known)."""

    def __init__(self, path: str | os.PathLike, reason: str, line: int | None = None):
        from cohortlab.privacy import masked_text  # a reason may quote a record: no email or phone in it

        self.path = str(path)
        self.reason = reason = masked_text(reason)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


class TooBigError(LoadError):
    """A file beyond a size limit of the loaders (a JSON document the memory limit cannot hold):
    no copy of it reads better, so no load is tried again through one (each such retry reads the
    whole file first: a 1.5 MB gzip holding one 1.5 GiB line took minutes before its error)."""


class StrictLoadError(CohortlabError):
    """A load with ``strict=True`` had warnings; it was rolled back."""


class LoadWarning(UserWarning):
    """A warning of a folder of exports loaded by :func:`cohortlab.lab.open_lab` (a notebook's
    ``data``): what ``cohortlab load`` prints as ``warning: ...`` (docs/loading.md#warnings)."""


INTERRUPTED_EXIT = 130  # the exit status of a command stopped by Ctrl-C (128 + SIGINT), as a shell's


def is_interrupt(error: BaseException) -> bool:
    """Ctrl-C: Python's ``KeyboardInterrupt``, or a DuckDB query that the signal interrupted
    (DuckDB 2 raises a plain ``RuntimeError("Query interrupted")``, older versions
    ``duckdb.InterruptException``). Not a problem of the data: never reported as one."""
    if isinstance(error, KeyboardInterrupt):
        return True
    if type(error).__name__ == "InterruptException":
        return True
    return isinstance(error, RuntimeError) and str(error).strip() == "Query interrupted"


def is_disk_full(error: BaseException) -> bool:
    """No room to write: a full disk (``ENOSPC``, DuckDB's "No space left on device") or a file
    size limit (``EFBIG``, ``ulimit -f``: "File too large"). An error of the machine, not of the
    input being loaded."""
    import errno

    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EFBIG):
        return True
    # DuckDB's own I/O errors only, the system's words right after the file it names ('Could not
    # write file "x.wal": No space left on device'): a CSV error quotes the line it could not read,
    # and a path may hold the words ("File too large/cohorts.json"), which are data
    import re

    text = str(error).strip()
    io_error = type(error).__name__ == "IOException" or text.startswith("IO Error")
    return io_error and re.search(r'"\\?:\s*(?:No space left on device|File too large)', text) is not None


def is_out_of_memory(error: BaseException) -> bool:
    """DuckDB ran out of its memory limit: its ``OutOfMemoryException`` (recognised by name, as
    DuckDB is imported only where it runs), or an error whose text starts as that one's does."""
    return type(error).__name__ == "OutOfMemoryException" or str(error).strip().startswith("Out of Memory Error")


def read_text_file(path: str | os.PathLike, error: type[Exception] = CohortlabError, what: str = "the file") -> str:
    """The text of a UTF-8 file. A file that cannot be read, or is not UTF-8 text (a binary file,
    another encoding), raises ``error`` with one line naming the file: ``s.yaml: not UTF-8 text
    (invalid byte at offset 0): save it as UTF-8``. ``what`` names the file in the message of a
    read error: ``s.yaml: cannot read {what} (No such file or directory)``."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise error(f"{path}: cannot read {what} ({e.strerror or e})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8 text (invalid byte at offset {e.start}): save it as UTF-8") from None


def read_yaml_file(path: str | os.PathLike, error: type[Exception] = CohortlabError, what: str = "the file", *,
                   mapping: str | None = "option: value", quote: bool = True) -> Any:
    """A YAML file's content (:func:`read_text_file`, then ``yaml.safe_load``: data, never code),
    each problem one line naming the file, raised as ``error``: ``FILE: not valid YAML (line 3,
    column 10: ...)``. ``mapping``: the content must be a mapping (empty: ``{}``), described
    as ``FILE: expected a mapping of {mapping}, got list``; None: any YAML value. ``quote``:
    False for a file of secrets, whose YAML error (which may quote the file) is reduced to its
    line."""
    import yaml

    text = read_text_file(path, error, what)
    try:
        data = yaml_data(text)
    except YamlTooLarge as e:
        raise error(f"{path}: not valid YAML ({e})") from None
    except yaml.YAMLError as e:
        if quote:
            raise error(f"{path}: not valid YAML ({yaml_problem(e)})") from None
        mark = getattr(e, "problem_mark", None)
        raise error(f"{path}: not valid YAML" + (f" (line {mark.line + 1})" if mark is not None else "")) from None
    except YamlValueError as e:  # 2026-02-30, an integer of 5,000 digits: no YAMLError
        raise error(f"{path}: not valid YAML ({e})") from None
    if mapping is None:
        return data
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping of {mapping}, got {type(data).__name__}")
    return data


MAX_YAML_VALUES = 100_000  # values in a YAML document once its aliases are expanded


class YamlTooLarge(ValueError):
    """A YAML document nested too deeply, or of more than :data:`MAX_YAML_VALUES` values once its
    aliases are expanded (``&a [*b, *b, ...]`` nine deep: a few lines, billions of values)."""


class YamlValueError(ValueError):
    """A scalar YAML reads but Python refuses: a date that does not exist (``2026-02-30``), an
    integer of more digits than Python converts (4,300), a bad ``!!binary``."""


def _refused_scalar(e: ValueError) -> str:
    import sys

    text = str(e)
    if "integer string conversion" in text:
        return f"a number of more than {sys.get_int_max_str_digits():,} digits"
    if "out of range" in text or "must be in" in text:
        return f"an impossible date: {text}"
    return f"a value Python cannot read: {text}"


def yaml_data(text: str, unique_keys: bool = True) -> Any:
    """``text`` read as YAML by a SafeLoader (data, never code; with ``unique_keys`` a key given
    twice is an error), bounded: :class:`YamlTooLarge` for a document nested too deeply for the parser or that
    expands to more than :data:`MAX_YAML_VALUES` values (every later step, the checks, their
    error messages and the notebooks' parameters, would otherwise expand it in memory);
    :class:`YamlValueError` for a scalar Python refuses (``2026-02-30``)."""
    import yaml

    try:
        data = yaml.load(text, Loader=_unique_keys_loader() if unique_keys else yaml.SafeLoader)  # noqa: S506
    except RecursionError:
        raise YamlTooLarge("nested too deeply") from None
    except ValueError as e:  # not a YAMLError: 2026-02-30 read as a date, an integer of 5,000 digits
        raise YamlValueError(_refused_scalar(e)) from None
    todo, n = [data], 0
    while todo:  # counted without recursion, each alias as often as it is used
        v = todo.pop()
        n += 1
        if n > MAX_YAML_VALUES:
            raise YamlTooLarge(f"more than {MAX_YAML_VALUES:,} values once its aliases (*name) are expanded")
        if isinstance(v, dict):
            todo.extend(v.keys())
            todo.extend(v.values())
        elif isinstance(v, (list, tuple, set)):
            todo.extend(v)
    return data


@functools.cache
def _unique_keys_loader():
    """PyYAML's SafeLoader (data, never code) that refuses a mapping with the same key twice
    (plain PyYAML keeps the last one silently: a settings file with ``fallback:`` twice would run
    with whichever came last). Keys merged in with ``<<:`` may still be overridden."""
    import yaml

    class UniqueKeysLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:  # an unhashable key: SafeLoader's own error says so
                    break
                if duplicate:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeysLoader


def yaml_problem(e: Exception) -> str:
    """A PyYAML error on one line: ``line 3, column 10: could not determine a constructor for the
    tag '...python/object/apply:os.system'`` (PyYAML's own message spans several lines)."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    problem = getattr(e, "problem", None) or getattr(e, "context", None) or str(e)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return " ".join(f"{where}{problem}".split())


def more_memory_advice() -> str:
    """What to do about DuckDB running out of memory, for the end of an error line: the limit in
    use (``COHORTLAB_MEMORY_LIMIT`` when set, else the default) and how to give more."""
    import os

    limit = os.environ.get("COHORTLAB_MEMORY_LIMIT")
    now = f"COHORTLAB_MEMORY_LIMIT={limit}" if limit else "the default memory limit"
    return f"(with {now}): give DuckDB more memory, e.g. COHORTLAB_MEMORY_LIMIT=1.5GB"


def validator_message(err: Mapping[str, Any]) -> str:
    """The message of one of pydantic's errors as a file's reader should see it: a validator's own
    text, without the ``Value error, `` or ``Assertion failed, `` pydantic puts before it."""
    return str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")


def unknown_key(loc: Sequence[Any], root: Any, nested: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    """For a key pydantic refused as unknown (``extra_forbidden`` at ``loc``): the known key
    nearest to it (None when none is near) and the known keys of the mapping it is in: the model
    ``nested[loc[0]]`` when the key is inside that field (a pause, a remediation), else ``root``.
    The "did you mean" of a settings or a plan file."""
    model = nested.get(str(loc[0]), root) if len(loc) > 1 else root
    known = list(model.model_fields)
    near = close_names(str(loc[-1]), known, n=1, cutoff=0.6)
    return (near[0] if near else None), known


def close_names(name: str, known: list[str], n: int = 3, cutoff: float = 0.75) -> list[str]:
    """The names of ``known`` close to ``name`` (difflib; case and surrounding spaces ignored),
    closest first: what "did you mean" offers for a mistyped cohort name."""
    import difflib

    by_key = {k.strip().lower(): k for k in known}
    return [by_key[k] for k in difflib.get_close_matches(str(name).strip().lower(), list(by_key), n=n, cutoff=cutoff)]
