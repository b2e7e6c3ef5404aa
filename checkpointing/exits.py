"""One error path for the ``checkpointing`` and ``icesheet`` command lines: exit statuses and the one-line report.

Every failure a user can cause ends the program with one line on stderr, ``PROG: error: MESSAGE``, naming the thing,
its value and what is allowed or what to do, and one of these exit statuses:

====  ========================================================================================================
 0    success
 1    internal error (a bug: please report it with the traceback that ``--debug`` prints)
 2    bad input: an argument, a config, scenario, platform, mesh or state file, an output directory
 3    the schedule does not fit the storage platform (``checkpointing plan``/``compare``)
 4    storage: a checkpoint or output directory unusable or full, a corrupted checkpoint (checksum), a file
      that cannot be written
 5    a model step failed (its solver did not converge)
 6    the physics guard stopped the run (icesheet/stability.py): it went unstable
 130  interrupted (SIGINT, Ctrl-C);  143  terminated (SIGTERM).  Checkpoint files are removed in both cases.
====  ========================================================================================================

An exception class says its status with a class attribute ``exit_status`` (so this module needs to import none of
them, and the pure-Python ``checkpointing`` package stays free of Firedrake); ``OSError`` counts as storage (4).
``--debug`` adds the traceback.  Under MPI every rank usually raises the same error (storage errors are agreed
between ranks, checkpointing/adjoint/tiers.py), and only rank 0 prints it.
"""
from __future__ import annotations

import os
import sys
import traceback

from .rundirs import Terminated

__all__ = ["EXIT_INTERNAL", "EXIT_USAGE", "EXIT_DOES_NOT_FIT", "EXIT_STORAGE", "EXIT_STEP_FAILED", "EXIT_GUARD",
           "EXIT_INTERRUPTED", "exit_status", "one_line", "launcher_rank", "report_failure"]

EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_DOES_NOT_FIT = 3
EXIT_STORAGE = 4
EXIT_STEP_FAILED = 5
EXIT_GUARD = 6
EXIT_INTERRUPTED = 130


#: solver failures of classes we do not own (Firedrake's, the velocity solver's), by class name
_STEP_FAILURES = {"ConvergenceError", "PicardConvergenceError"}


def _interruption(exc: BaseException) -> BaseException | None:
    """The KeyboardInterrupt or Terminated in the chain of ``exc`` (a signal arriving in a Python callback of a
    PETSc solve comes back as a PETSc error caused by it), or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, (KeyboardInterrupt, Terminated)):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def exit_status(exc: BaseException) -> int:
    """The documented exit status of ``exc`` (see the module docstring)."""
    exc = _interruption(exc) or exc
    status = getattr(exc, "exit_status", None)
    if isinstance(status, int):
        return status
    if any(cls.__name__ in _STEP_FAILURES for cls in type(exc).__mro__):
        return EXIT_STEP_FAILED
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else EXIT_INTERNAL
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, OSError):
        return EXIT_STORAGE
    return EXIT_INTERNAL


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (an OSError names its file and the system's reason)."""
    exc = _interruption(exc) or exc
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (SIGINT)"
    if isinstance(exc, OSError) and exc.strerror and not getattr(exc, "exit_status", None):
        where = f"{exc.filename!r}: " if exc.filename else ""
        return f"{where}{exc.strerror} (errno {exc.errno}); check the path, its permissions and the free space"
    text = " ".join(str(exc).split()) or type(exc).__name__
    if exit_status(exc) == EXIT_INTERNAL:
        return f"internal error: {type(exc).__name__}: {text} (run with --debug for the traceback, and report it)"
    return text


def launcher_rank() -> int:
    """This process's MPI rank (from the launcher's environment, else mpi4py's if MPI is initialised), without
    initialising MPI."""
    for name in ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"):
        if name in os.environ:
            return int(os.environ[name])
    mpi = sys.modules.get("mpi4py.MPI")
    return mpi.COMM_WORLD.rank if mpi is not None and mpi.Is_initialized() else 0


def report_failure(prog: str, exc: BaseException, debug: bool = False, stream=None) -> int:
    """Print ``PROG: error: MESSAGE`` (rank 0 only; with ``debug`` the traceback first) and return the status."""
    stream = sys.stderr if stream is None else stream
    if launcher_rank() == 0:
        if debug:
            traceback.print_exception(exc, file=stream)
        print(f"{prog}: error: {one_line(exc)}", file=stream, flush=True)
    return exit_status(exc)
