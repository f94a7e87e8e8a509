"""The Jupyter kernels the report's notebooks run in, and papermill as this process runs it.

* :func:`kernel_name`: the project's kernel (``cohortlab``) when installed, else ``python3``;
* :func:`kernel_manager_with`: a kernel started with its own environment (its memory share,
  :mod:`.scheduling`) in the notebook's folder, known to :func:`stop_kernels` while it runs;
* :func:`stop_kernels`: what an interrupted report (Ctrl-C, SIGTERM) does to the running kernels;
* :func:`kernel_did_not_start`: a kernel that died before its first reply (started again);
* :func:`papermill_local_files_without_chdir`: papermill's file handler without ``chdir``, so
  that two notebooks at once never move this process's working folder;
* :func:`without_iri_format_checks`: jsonschema (which papermill reads notebooks with) imported
  without a checker that costs a second of every report's start.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Mapping

KERNEL_NAME = "cohortlab"


def kernel_name() -> str:
    """The project's kernel (``make`` installs ``cohortlab`` into the venv), else ``python3``."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        specs = KernelSpecManager().find_kernel_specs()
    except Exception:  # pragma: no cover - jupyter_client always ships with papermill
        return "python3"
    return KERNEL_NAME if KERNEL_NAME in specs else "python3"


KERNEL_START_RETRIES = 2  # kernels that die before their first reply are started again this often


def kernel_did_not_start(error: BaseException) -> bool:
    """A kernel that died before replying to ``kernel_info`` (no cell ran): nbclient raises a
    RuntimeError saying so (e.g. after its ports were taken by a kernel started at the same time)."""
    return isinstance(error, RuntimeError) and "before replying to kernel_info" in str(error)


# the kernels of the notebooks running now, stopped by stop_kernels() when the run is interrupted
# (Ctrl-C): they run in sessions of their own, so the terminal's SIGINT never reaches them
_KERNELS: set = set()
_KERNELS_LOCK = threading.Lock()
_STOPPING = threading.Event()


def _kill_kernel(km) -> None:
    pid = getattr(getattr(km, "provisioner", None), "pid", None)
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)  # it only reads the database (read-only): nothing to save
        except (ProcessLookupError, PermissionError):
            pass


def stop_kernels() -> None:
    """Kill the kernel of every notebook running now, and of any that starts from now on (its
    notebook then fails at once): what an interrupted report does before it exits."""
    import logging

    _STOPPING.set()
    logging.getLogger("papermill").disabled = True  # no "Kernel died while waiting for execute reply." per notebook
    with _KERNELS_LOCK:
        kernels = list(_KERNELS)
        _KERNELS.clear()  # a killed kernel is not shut down by its manager: forget it here
    for km in kernels:
        _kill_kernel(km)


def kernel_manager_with(env: Mapping[str, str], cwd: str | os.PathLike | None = None) -> type:
    """A kernel manager class (nbclient's default, ``AsyncKernelManager``) whose kernels start
    with ``env`` on top of this process's environment, in the folder ``cwd`` (this process's own
    working directory is never changed), known to :func:`stop_kernels` while they run."""
    from jupyter_client import AsyncKernelManager

    extra = dict(env)
    folder = None if cwd is None else str(cwd)

    class KernelManagerWithEnv(AsyncKernelManager):
        async def start_kernel(self, **kw):
            kw["env"] = {**os.environ, **(kw.get("env") or {}), **extra}
            if folder is not None:
                kw["cwd"] = folder
            out = await super().start_kernel(**kw)
            with _KERNELS_LOCK:  # (stop_kernels sets _STOPPING, then takes the lock)
                stopping = _STOPPING.is_set()
                if not stopping:
                    _KERNELS.add(self)
            if stopping:  # started while the run was being stopped
                _kill_kernel(self)
            return out

        async def shutdown_kernel(self, *args, **kw):
            with _KERNELS_LOCK:
                _KERNELS.discard(self)
            return await super().shutdown_kernel(*args, **kw)

    return KernelManagerWithEnv


_LOCAL_FILES_INSTALLED = False


def papermill_local_files_without_chdir() -> None:
    """Replace papermill's local file handler with one that never changes this process's folder.
    Papermill's reads and writes run in ``chdir(<its folder>)``, from whichever thread runs a
    notebook, and the folder is one process-wide value that each run sets and restores: with two
    notebooks at once, each restored the other's, and the process could end in a stale folder.
    This one joins a relative path to that folder instead (the report's paths are absolute)."""
    global _LOCAL_FILES_INSTALLED
    if _LOCAL_FILES_INSTALLED:
        return
    import json as _json

    from papermill.iorw import LocalHandler, papermill_io

    class LocalFiles(LocalHandler):
        def _at(self, path: str) -> str:
            return path if os.path.isabs(path) or not self._cwd else os.path.join(self._cwd, path)

        def read(self, path):
            try:
                with open(self._at(path), encoding="utf-8") as f:
                    return f.read()
            except OSError:
                try:  # a notebook given as a JSON string, as papermill's own handler allows
                    _json.loads(path)
                    return path
                except ValueError:
                    raise

        def listdir(self, path):
            return [os.path.join(path, fn) for fn in os.listdir(self._at(path))]

        def write(self, buf, path):
            target = self._at(path)
            folder = os.path.dirname(target)
            if folder and not os.path.exists(folder):
                raise FileNotFoundError(f"output folder {folder} doesn't exist.")
            with open(target, "w", encoding="utf-8") as f:
                f.write(buf)

    # in place of papermill's own: get_handler falls back to the last "local" handler listed, so
    # registering another one in front would not be used for plain paths
    handlers = getattr(papermill_io, "_handlers", None)
    if isinstance(handlers, list) and any(scheme == "local" for scheme, _ in handlers):
        papermill_io._handlers = [(scheme, LocalFiles() if scheme == "local" else h) for scheme, h in handlers]
    _LOCAL_FILES_INSTALLED = True


def without_iri_format_checks() -> None:
    """For cohortlab's own processes (the ``report`` and ``demo`` commands): import jsonschema, which
    papermill reads notebooks with (through nbformat), without its checker of the ``iri`` formats.
    That checker, rfc3987_syntax, builds 38 Lark parsers when imported: about 1 s of a report's
    start, single-threaded, before any notebook can start (docs/benchmark-history.md#session-20). The
    notebook schema uses no such format. A later ``import rfc3987_syntax`` works as before; only
    jsonschema's format checker lacks ``iri``/``iri-reference`` in this process. Nothing when
    jsonschema is already imported (a user's process: left as it is)."""
    import sys

    if "jsonschema" in sys.modules or "rfc3987_syntax" in sys.modules:
        return
    sys.modules["rfc3987_syntax"] = None  # an import of it raises ImportError, which jsonschema skips
    try:
        import jsonschema  # noqa: F401
    finally:
        if sys.modules.get("rfc3987_syntax", 0) is None:
            del sys.modules["rfc3987_syntax"]


__all__ = ["KERNEL_NAME", "KERNEL_START_RETRIES", "kernel_did_not_start", "kernel_manager_with", "kernel_name",
           "papermill_local_files_without_chdir", "stop_kernels", "without_iri_format_checks"]
