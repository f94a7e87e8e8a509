"""The report's folder: dated (``reports/<YYYY-MM-DD>[-N]``), claimed by its marker file so that
two runs never write into one, replaced only with ``overwrite`` and only when a report wrote it,
removed when a run fails before any notebook ran; and each notebook's HTML page without code.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import functools
import os
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cohortlab.errors import ReportError
from cohortlab.report.pages import MARKER

REPORTS_ROOT = "reports"


def dated_output_dir(
    root: str | os.PathLike = REPORTS_ROOT, today: _dt.date | None = None, prefix: str = ""
) -> Path:
    """``root/<prefix><YYYY-MM-DD>``, or ``-2``, ``-3``... when that run already exists (never reused)."""
    today = today or _dt.datetime.now(_dt.timezone.utc).date()
    name = f"{prefix}{today.isoformat()}"
    base = Path(root) / name
    if not os.path.lexists(base):  # a link to nothing is taken too: the next name
        return base
    n = 2
    while os.path.lexists(Path(root) / f"{name}-{n}"):
        n += 1
    return Path(root) / f"{name}-{n}"


# The JupyterLab HTML template without its CDN scripts (MathJax, Mermaid, require.js): the report
# is self-contained and works offline, and "$mparticle_user_id ... $distinct_id" in text is never
# typeset as TeX.
_OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def export_html(ipynb: str | os.PathLike, out: str | os.PathLike) -> Path:
    """HTML without code (inputs and prompts hidden); images stay embedded and no script is
    loaded from the network, so it works offline. Cells tagged ``remove-cell`` disappear,
    ``remove-output`` keep no output."""
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    from traitlets.config import Config

    c = Config()
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_cell_tags = {"remove-cell"}
    c.TagRemovePreprocessor.remove_all_outputs_tags = {"remove-output"}
    c.HTMLExporter.exclude_input = True
    c.HTMLExporter.exclude_input_prompt = True
    c.HTMLExporter.exclude_output_prompt = True
    exporter = HTMLExporter(config=c, extra_loaders=[DictLoader({"cohortlab_offline.html.j2": _OFFLINE_TEMPLATE})],
                            template_file="cohortlab_offline.html.j2")
    exporter.register_preprocessor(TagRemovePreprocessor(config=c), enabled=True)
    nb = nbformat.read(str(ipynb), as_version=4)
    body, _ = exporter.from_notebook_node(nb)
    out = Path(out)
    out.write_text(body, encoding="utf-8")
    return out


def prepare_output_dir(out: str | os.PathLike | None, *, overwrite: bool, root: str | os.PathLike = REPORTS_ROOT,
                       inputs: Mapping[str, Any] | None = None, hold: bool = False) -> Path:
    """The run's folder: ``out`` or the dated folder. An existing, non-empty ``out`` is refused
    unless ``overwrite`` (then its previous content is removed; with ``hold``, set aside until
    the run ends: :func:`releasing_claims` removes it, or puts it back when the run wrote no
    report), and also then when one of
    ``inputs`` (``{what: path}``: the database, data folder or settings the run reads) lies
    inside it: removing the folder would remove what the report is about to read (a report's
    own ``data.duckdb`` given as ``--db``). The folder is claimed by creating its marker file:
    of two runs started at once into one ``out``, the second is refused; into the dated folder,
    it takes the next one. ``hold``: the run keeps the marker locked until it ends
    (:func:`releasing_claims`), and a folder a running report holds is refused, also with
    ``overwrite``."""
    for _attempt in range(100):
        try:
            return _claim_output_dir(out, overwrite=overwrite, root=root, inputs=inputs or {}, hold=hold)
        except _Claimed as e:
            if out is not None or overwrite:
                raise ReportError(f"{e.target} already exists: another report is being written into it "
                                  "(choose another --out)") from None
    raise ReportError(f"no free dated folder under {root}")


class _Claims(threading.local):
    """This thread's runs' report folders: ``held``, the markers they hold (file descriptors: a
    run keeps its marker locked, flock, until it ends, so that another run, in any process, sees
    it is running); ``replaced``, the folders they replace, each with where its previous content
    waits."""

    def __init__(self) -> None:
        self.held: dict[Path, int] = {}
        self.replaced: dict[Path, Path] = {}


_CLAIMS = _Claims()


def _hold(target: Path) -> None:
    fd = os.open(target / MARKER, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise
    _CLAIMS.held[target] = fd


def in_use(target: Path) -> bool:
    """Whether a running report (in any process) holds ``target``'s marker."""
    try:
        fd = os.open(target / MARKER, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    except OSError:  # a file system without locks: nothing to tell
        return False
    finally:
        os.close(fd)  # (releases the lock taken to test)


def release_claims(keep: set[Path] | frozenset[Path] = frozenset()) -> None:
    """Release the report folders this thread's runs hold (at the end of a run), but ``keep``."""
    fds = _CLAIMS.held
    for target in [t for t in fds if t not in keep]:
        os.close(fds.pop(target))


def replaced_run(target: str | os.PathLike) -> Path | None:
    """Where the previous run in ``target``, which this thread's run replaces (``overwrite``),
    waits, hidden beside it, until the run ends; None when the run replaces none. The index
    compares with it (:func:`cohortlab.report.pages.write_index`)."""
    want = Path(target).resolve()
    for t, aside in _CLAIMS.replaced.items():
        if t.resolve() == want and aside.is_dir() and not aside.is_symlink():
            return aside
    return None


def _settle_replaced(keep: set[Path], wrote: bool) -> None:
    """The previous content of each folder a run replaced (but ``keep``'s): removed when the run
    wrote its report, else put back (a run that stopped before: a bad parameter, data that did
    not load, Ctrl-C), so that --overwrite never leaves less than there was."""
    moved = _CLAIMS.replaced
    for target in [t for t in moved if t not in keep]:
        aside = moved.pop(target)
        if wrote or (target / "index.html").exists():
            shutil.rmtree(aside, ignore_errors=True)
            continue
        shutil.rmtree(target, ignore_errors=True)
        try:
            aside.rename(target)
        except OSError:  # the folder was taken meanwhile: the previous report stays beside it
            pass


def releasing_claims(fn):
    """``fn`` (a report run) with the folders it claims released when it ends, however it ends,
    and the folders it replaces settled (:func:`_settle_replaced`)."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        before, moved = set(_CLAIMS.held), set(_CLAIMS.replaced)
        wrote = False
        try:
            result = fn(*args, **kwargs)
            wrote = True
            return result
        finally:
            _settle_replaced(moved, wrote)
            release_claims(keep=before)
    return run


class _Claimed(Exception):
    def __init__(self, target: Path):
        self.target = target


def _inside(path: Any, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies inside it (after following links)."""
    try:
        return Path(path).resolve().is_relative_to(folder.resolve())
    except (OSError, ValueError, TypeError):
        return False


def _claim_output_dir(out, *, overwrite: bool, root, inputs: Mapping[str, Any], hold: bool = False) -> Path:
    if out is None:
        if overwrite:
            target = Path(root) / _dt.datetime.now(_dt.timezone.utc).date().isoformat()
        else:
            target = dated_output_dir(root)
    else:
        target = Path(out)
    if target.is_symlink() and not target.exists():
        raise ReportError(f"{target} is a symbolic link to nothing: not writing where it points (choose another --out)")
    if target.is_dir() and (target / MARKER).exists() and in_use(target):
        # never replaced, nor reported on again, while a run writes it ("use --overwrite" was the
        # advice, and --overwrite removed the folder under the running report)
        raise ReportError(f"{target} is being written by a report that is still running: wait for it to end, "
                          "or choose another --out")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        if not overwrite:
            raise ReportError(f"{target} already exists: not overwriting a previous run (use --overwrite)")
        if not (target.is_dir() and (target / MARKER).exists()):
            raise ReportError(f"{target} exists and was not written by cohortlab report: not removing it, "
                              "even with --overwrite (choose another --out)")
        if target.is_symlink():  # the run it points to may be anyone's, anywhere
            raise ReportError(f"{target} is a symbolic link: not removing the folder it points to, even with "
                              "--overwrite (choose another --out)")
        for what, path in inputs.items():
            if path and _inside(path, target):
                raise ReportError(f"{what} {path} is inside {target}, which --overwrite would remove before the "
                                  "report reads it: copy it elsewhere first, or choose another --out")
        if hold:  # set aside until the run ends: removed once it wrote its report, else put back
            aside = target.parent / f".{target.name}.replaced-{os.getpid()}-{threading.get_ident()}"
            shutil.rmtree(aside, ignore_errors=True)
            target.rename(aside)
            _CLAIMS.replaced[target] = aside
        else:
            shutil.rmtree(target)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except (NotADirectoryError, FileExistsError):  # a file where a folder of the path must be: one line, no traceback
        raise ReportError(_not_a_folder(target)) from None
    try:  # created, never replaced: of two runs started at once into one folder, the second stops here
        with open(target / MARKER, "x", encoding="utf-8") as f:
            f.write("written by cohortlab report; --overwrite may replace this folder\n")
    except FileExistsError:
        raise _Claimed(target) from None
    if hold:
        try:
            _hold(target)  # until the run ends (releasing_claims)
        except OSError:  # a file system without locks: the marker still claims the folder
            pass
    return target


def _not_a_folder(target: Path) -> str:
    """The error line for a report folder ``target`` that cannot be made because a file stands
    where it, or a folder above it, must be (``--out afile/x``: NotADirectoryError)."""
    for p in (target, *target.parents):
        if os.path.lexists(p) and not p.is_dir():
            return f"{target}: {p} is a file, not a folder: cannot make the report folder there (choose another --out)"
    return f"{target}: a file is where a folder is needed: cannot make the report folder there (choose another --out)"


def remove_unused_output(out_dir: Path, db_path: Path) -> None:
    """After a report that failed before any notebook ran: remove the database loaded into the
    report folder (``keep_data``), then the folder itself when nothing else is in it (only the
    marker of :func:`prepare_output_dir`)."""
    for path in (db_path, Path(f"{db_path}.wal"), Path(f"{db_path}.tmp")):
        if path.parent == out_dir:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                path.unlink()
    if out_dir.is_dir() and {p.name for p in out_dir.iterdir()} <= {MARKER}:
        shutil.rmtree(out_dir, ignore_errors=True)


__all__ = ["REPORTS_ROOT", "dated_output_dir", "export_html", "in_use", "prepare_output_dir", "release_claims",
           "releasing_claims", "remove_unused_output"]
