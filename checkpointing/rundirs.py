"""Run directories of the disk tiers: who owns each one, and removing those whose owner has died (pure Python).

A disk tier (checkpointing/adjoint/tiers.py) keeps the checkpoints of one adjoint run in
``<directory>/checkpoints-<run id>/``.  It removes that directory when the run ends, fails, or is stopped
by SIGINT or SIGTERM (:func:`terminate_cleanly`); a process killed by SIGKILL, a crash of the interpreter or of the
machine cannot clean up, so every run directory carries an *owner record* ``owner.json``: for every MPI rank of
the run its host name, process id and process start time (plus the boot id of its host), and the wall-clock start
of the run.  The next run using the same directory, and ``checkpointing clean-checkpoints DIR``, remove every run
directory whose owner processes are all dead (:func:`remove_orphans`) and say so.

When is an owner dead?  Only processes on *this* host can be checked: a record naming another host is left alone
(reported as such).  On this host the owner is dead when its host has rebooted since (a different boot id), when no
process has its pid (``kill(pid, 0)`` fails with ``ESRCH``), or when the process with that pid started at another
time than recorded (the pid was reused).  A run directory is created under a hidden name with its owner record
written first and then renamed into place (:func:`create_run_directory`), so a visible run directory always has an
owner record; one without (left by an older version, or a hidden one left by a kill in between) is removed only
when it holds no checkpoint file and has not been modified for :data:`GRACE_SECONDS`.
"""
from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import signal
import socket
import threading
import time
from dataclasses import asdict, dataclass

__all__ = ["PREFIX", "OWNER_FILE", "GRACE_SECONDS", "Process", "RunDirectory", "create_run_directory",
           "read_owner", "scan", "remove_orphans", "missing_ancestor", "remove_created_directories",
           "Terminated", "hold_sigterm", "release_sigterm", "terminate_cleanly", "check_terminated",
           "signals_deferred"]

logger = logging.getLogger(__name__)

PREFIX = "checkpoints-"
OWNER_FILE = "owner.json"
PARTIAL_SUFFIX = ".partial"
#: a run directory without an owner record is removed only after this many seconds without modification
GRACE_SECONDS = 600.0


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return None


def _process_start(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux ``/proc/<pid>/stat`` field 22), or None
    where /proc is not available or the process does not exist."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces: count fields after its closing one
    return int(stat[stat.rindex(")") + 2:].split()[19])


@dataclass(frozen=True)
class Process:
    """One process of a run: ``host`` name, ``pid``, ``started`` (clock ticks since boot, None if unknown) and the
    ``boot_id`` of its host (None if unknown)."""

    host: str
    pid: int
    started: int | None = None
    boot_id: str | None = None

    @classmethod
    def current(cls) -> "Process":
        pid = os.getpid()
        return cls(socket.gethostname(), pid, _process_start(pid), _boot_id())

    def alive(self) -> bool | None:
        """True or False for a process on this host; None (cannot tell) for one on another host."""
        if self.host != socket.gethostname():
            return None
        if self.boot_id is not None and _boot_id() not in (None, self.boot_id):
            return False
        try:
            os.kill(self.pid, 0)
        except OSError as err:
            if err.errno == errno.ESRCH:
                return False
            # EPERM: a process of another user has this pid; fall through to the start-time check
        started = _process_start(self.pid)
        return self.started is None or started is None or started == self.started

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"


@dataclass
class RunDirectory:
    """A run directory found by :func:`scan`: its ``path``, owner ``processes`` and run ``start`` (ISO time) from
    its owner record (empty/None without one), ``status`` and the checkpoint ``files`` and ``bytes`` it holds.

    ``status``: ``"live"`` (an owner process runs), ``"dead"`` (all owners dead: an orphan), ``"other host"`` (an
    owner on another host, not checkable), ``"no owner record"`` (kept), ``"stale, no owner record"`` (a hidden,
    empty partial directory untouched for GRACE_SECONDS: removable)."""

    path: str
    processes: tuple = ()
    start: str | None = None
    status: str = "live"
    files: int = 0
    bytes: int = 0

    @property
    def removable(self) -> bool:
        return self.status in ("dead", "stale, no owner record")

    def describe(self) -> str:
        owner = (", ".join(p.describe() for p in self.processes[:3]) + (" ..." if len(self.processes) > 3 else "")
                 if self.processes else "no owner record")
        started = f", started {self.start}" if self.start else ""
        return (f"{self.path} ({owner}{started}; {self.files} files, {self.bytes} bytes): {self.status}")


def create_run_directory(directory: str, run_id: str, processes, start: str) -> str:
    """Create ``<directory>/checkpoints-<run_id>`` holding its owner record (written under a hidden name
    first, then renamed, so the visible directory always has one); returns its path.  Raises OSError."""
    final = os.path.join(directory, PREFIX + run_id)
    hidden = os.path.join(directory, "." + PREFIX + run_id + PARTIAL_SUFFIX)
    os.mkdir(hidden)
    with open(os.path.join(hidden, OWNER_FILE), "w") as fh:
        json.dump({"start": start, "processes": [asdict(p) for p in processes]}, fh)
    os.rename(hidden, final)
    return final


def read_owner(path: str) -> tuple[tuple[Process, ...], str | None] | None:
    """The owner processes and start time recorded in run directory ``path``; None without a readable record."""
    try:
        with open(os.path.join(path, OWNER_FILE)) as fh:
            record = json.load(fh)
        return tuple(Process(**p) for p in record["processes"]), record.get("start")
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _is_run_directory(name: str) -> bool:
    return name.startswith(PREFIX) or (name.startswith("." + PREFIX) and name.endswith(PARTIAL_SUFFIX))


def _status(path: str, processes) -> str:
    if processes is None:
        hidden = os.path.basename(path).startswith(".")
        stale = not os.listdir(path) and time.time() - os.stat(path).st_mtime > GRACE_SECONDS
        return "stale, no owner record" if hidden and stale else "no owner record"
    alive = [p.alive() for p in processes]
    if any(a is True for a in alive):
        return "live"
    if any(a is None for a in alive):
        return "other host"
    return "dead"


def scan(directory: str) -> list[RunDirectory]:
    """Every run directory in ``directory`` (none if it does not exist), with its owner and status."""
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        path = os.path.join(directory, name)
        if not _is_run_directory(name) or not os.path.isdir(path) or os.path.islink(path):
            continue
        try:
            owner = read_owner(path)
            entry = RunDirectory(path, *(owner or ((), None)), status=_status(path, None if owner is None
                                                                               else owner[0]))
            for root, _, files in os.walk(path):
                checkpoints = [f for f in files if f != OWNER_FILE]
                entry.files += len(checkpoints)
                entry.bytes += sum(os.lstat(os.path.join(root, f)).st_size for f in checkpoints)
        except FileNotFoundError:
            continue  # removed meanwhile (its run ended, or another cleaner was faster)
        found.append(entry)
    return found


def remove_orphans(directory: str, dry_run: bool = False) -> list[RunDirectory]:
    """Remove (unless ``dry_run``) every removable run directory in ``directory`` (owners dead on this host); log
    one warning per removed directory; returns what was (or would be) removed."""
    removed = []
    for entry in scan(directory):
        if not entry.removable:
            continue
        if not dry_run:
            shutil.rmtree(entry.path, ignore_errors=True)
            logger.warning("removed the orphaned checkpoint directory %s", entry.describe())
        removed.append(entry)
    return removed


def missing_ancestor(directory: str) -> str | None:
    """The outermost directory of ``directory``'s path that does not exist yet (None if it exists): what
    ``os.makedirs(directory)`` will create, for :func:`remove_created_directories`."""
    directory = os.path.abspath(directory)
    created = None
    while not os.path.exists(directory):
        created = directory
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return created


def remove_created_directories(directory: str, created: str | None) -> None:
    """Remove ``directory`` and its parents up to ``created`` (from :func:`missing_ancestor`) where empty."""
    if created is None:
        return
    directory = os.path.abspath(directory)
    while True:
        try:
            os.rmdir(directory)
        except OSError:
            return  # not empty (user files, another run), or already gone
        if directory == created:
            return
        directory = os.path.dirname(directory)


class Terminated(SystemExit):
    """Raised in the main thread by :func:`terminate_cleanly`'s handler when the process receives SIGTERM: unwinds
    like KeyboardInterrupt (``finally`` blocks run), exits with status 128 + 15 if uncaught."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(128 + signum)
        self.signum = signum

    def __str__(self) -> str:
        return f"terminated by {signal.Signals(self.signum).name}"


_holders = 0  # how many holds of the SIGTERM handler are open (main thread only)
_installed = False
_received: int | None = None  # the signal number, once SIGTERM arrived under a hold


def _raise_terminated(signum, frame):
    global _received
    _received = signum
    raise Terminated(signum)


def check_terminated() -> None:
    """Raise :class:`Terminated` again if SIGTERM arrived under a hold.  The handler's own exception is lost when the
    signal lands in a destructor or a weakref callback (Python prints "Exception ignored" there and goes on), so the
    loops call this at every step (icesheet/timeloop.py, checkpointing/adjoint/manager.py)."""
    if _received is not None:
        raise Terminated(_received)


def hold_sigterm() -> None:
    """Make SIGTERM raise :class:`Terminated` until the matching :func:`release_sigterm` (counted, so holds nest):
    done only in the main thread and only if SIGTERM had its default action (a handler set by the program stays)."""
    global _holders, _installed
    if threading.current_thread() is not threading.main_thread():
        return
    if _holders == 0:
        _installed = signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        if _installed:
            signal.signal(signal.SIGTERM, _raise_terminated)
    _holders += 1


def release_sigterm() -> None:
    """Undo one :func:`hold_sigterm`; the last one restores SIGTERM's default action."""
    global _holders
    if threading.current_thread() is not threading.main_thread() or _holders == 0:
        return
    _holders -= 1
    if _holders == 0 and _installed:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def signals_deferred():
    """Within this context SIGINT and SIGTERM are held back by the kernel and delivered when it ends (on the main
    thread; elsewhere nothing changes): for a few statements that must happen together, such as writing a step's
    CSV row and counting it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def terminate_cleanly():
    """Within this context SIGTERM raises :class:`Terminated` (see :func:`hold_sigterm`)."""
    hold_sigterm()
    try:
        yield
    finally:
        release_sigterm()
