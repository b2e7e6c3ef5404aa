"""Storage tiers: where the checkpoint manager keeps copies of the time-loop state, one tier per platform level.

A checkpoint of ``x_i`` is the list of this rank's *owned* degrees of freedom of every state Function
(``Function.subfunctions[j].dat.data_ro``), as numpy arrays.  Level ``k`` of a
:class:`checkpointing.platform.Platform` (capacity ``c_k``, Herrmann & Pallez 2020, section 2) is served by one
tier:

:class:`RamTier`
    in-process numpy copies (level 0, ``w_0 = r_0 = 0`` in the cost model).
:class:`DiskTier`
    one file per checkpoint *and per MPI rank* in a configurable directory (an SSD, a parallel file system, a
    second slower directory for a third level, ...).

Why per-rank raw files rather than ``firedrake.CheckpointFile`` (HDF5) or a collective PETSc binary viewer:
checkpoints live only for the duration of one adjoint computation and are read back by the same ranks with the same
mesh partition, so no global renumbering is needed.  Raw per-rank files restore the state bit for bit, need no
collective I/O or mesh metadata per write, cost one ``write`` system call each, and each rank can checksum its own
bytes.  The per-rank name (``x<index>.rank<r>.bin``) keeps ranks from ever touching one another's files.

Integrity and errors:

- every disk write records the SHA-256 digest of the bytes written; every read recomputes it and raises
  :class:`ChecksumError` naming the file if the bytes (or their length) changed;
- :meth:`Tier.open` runs before the first action of a schedule: a :class:`DiskTier` creates a fresh run directory
  inside its directory, writes and reads back a probe file, and checks the free space against
  ``slots x (global state size)`` (``slots`` = the peak occupancy the schedule needs there, at most the capacity);
  a failure raises :class:`StorageUnavailableError` naming the directory and what was needed;
- every disk operation ends with an agreement between ranks (:func:`agree`, an ``allgather`` of the local error):
  if one rank fails, all ranks raise the same error, so MPI never deadlocks on a half-failed collective;
- :meth:`Tier.close` removes every file and the run directory, and the directories :meth:`DiskTier.open` created
  for it where they are empty; the manager calls it in a ``finally`` block.

Crash safety (checkpointing/rundirs.py): the run directory carries an owner record (host, pid and start time of
every rank's process), written before any checkpoint; :meth:`DiskTier.open` first removes the run directories in
its directory whose owners are dead on this host (left by a run killed with SIGKILL or a crash) and logs a warning
for each; while a disk tier is open, SIGTERM raises ``checkpointing.rundirs.Terminated`` so that the files are
removed as on SIGINT (KeyboardInterrupt).  ``checkpointing clean-checkpoints DIR`` cleans on demand.
"""
from __future__ import annotations

import hashlib
import math
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from .. import rundirs

__all__ = ["StorageError", "ChecksumError", "CapacityError", "StorageUnavailableError", "StateLayout",
           "Tier", "RamTier", "DiskTier", "agree"]


class StorageError(RuntimeError):
    """A storage tier could not store or return a checkpoint."""

    exit_status = 4  # checkpointing/exits.py


class ChecksumError(StorageError):
    """The bytes read back from a checkpoint file differ from the bytes written (the message names the file)."""


class CapacityError(StorageError):
    """A write would exceed the capacity of a tier."""


class StorageUnavailableError(StorageError):
    """A checkpoint directory is unusable (cannot be created or written, or has too little free space)."""


def agree(comm, error: Exception | None) -> None:
    """Collective: raise on every rank if ``error`` is set on any rank (the lowest failing rank's error).

    Every rank must call this the same number of times; it is what keeps a failure on one rank from leaving the
    others waiting forever in the next collective operation."""
    errors = comm.allgather(None if error is None else (type(error), str(error)))
    for rank, found in enumerate(errors):
        if found is not None:
            if error is not None and rank == comm.rank:
                raise error
            kind, message = found
            raise kind(f"{message} (raised on rank {rank})")


def _bytes(count: int) -> str:
    """``count`` bytes for a message: ``"392 B"``, ``"12.5 kB"``, ``"3.41 GB"``."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:.3g} {unit}"
    return f"{count} B"


@dataclass(frozen=True)
class StateLayout:
    """Shapes and dtypes of this rank's owned data of the state Functions, in state order."""

    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[np.dtype, ...]

    @classmethod
    def of(cls, arrays) -> "StateLayout":
        return cls(tuple(a.shape for a in arrays), tuple(a.dtype for a in arrays))

    @property
    def nbytes(self) -> int:
        return sum(math.prod(s) * d.itemsize for s, d in zip(self.shapes, self.dtypes))

    def check(self, arrays) -> None:
        if StateLayout.of(arrays) != self:
            raise StorageError(f"state arrays {StateLayout.of(arrays)} do not match the layout {self}")

    def to_bytes(self, arrays) -> bytes:
        self.check(arrays)
        return b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)

    def from_bytes(self, data: bytes) -> list[np.ndarray]:
        arrays, offset = [], 0
        for shape, dtype in zip(self.shapes, self.dtypes):
            count = math.prod(shape)
            arrays.append(np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape))
            offset += count * dtype.itemsize
        return arrays


class Tier:
    """One storage level: ``capacity`` slots (an int or ``math.inf``), keyed by the state index ``i`` of ``x_i``.

    Lifecycle per schedule run: ``open(layout, slots, comm)``, then ``write``/``read``/``discard``, then ``close()``.
    ``writes``, ``reads`` and ``peak`` count what happened since ``open``."""

    def __init__(self, capacity, name: str):
        counted = isinstance(capacity, int) and not isinstance(capacity, bool) and capacity >= 0
        if not (capacity == math.inf or counted):
            raise ValueError(f"capacity = {capacity!r}: a tier capacity must be an integer >= 0 or math.inf")
        self.capacity = capacity
        self.name = name
        self.layout: StateLayout | None = None
        self.comm = None
        self.writes = self.reads = self.peak = 0

    @property
    def occupancy(self) -> int:
        return len(self._stored())

    def stored_indices(self) -> list[int]:
        return sorted(self._stored())

    def open(self, layout: StateLayout, slots: int, comm) -> None:
        """Prepare for a run that will hold at most ``slots`` checkpoints of ``layout`` here (collective)."""
        if slots > self.capacity:
            raise CapacityError(f"tier {self.name!r}: the schedule needs {slots} slots, capacity is {self.capacity}")
        self.layout, self.comm = layout, comm
        self.writes = self.reads = self.peak = 0

    def write(self, index: int, arrays) -> None:
        if index in self._stored():
            raise StorageError(f"tier {self.name!r} already holds x_{index}")
        if self.occupancy >= self.capacity:
            raise CapacityError(f"tier {self.name!r} is full ({self.capacity} slots: "
                                f"x_{self.stored_indices()}); cannot write x_{index}")
        self._write(index, arrays)
        self.writes += 1
        self.peak = max(self.peak, self.occupancy)

    def read(self, index: int) -> list[np.ndarray]:
        if index not in self._stored():
            raise StorageError(f"tier {self.name!r} does not hold x_{index} (it holds x_{self.stored_indices()})")
        arrays = self._read(index)
        self.reads += 1
        return arrays

    def discard(self, index: int) -> None:
        if index not in self._stored():
            raise StorageError(f"tier {self.name!r} does not hold x_{index} (it holds x_{self.stored_indices()})")
        self._discard(index)

    def close(self) -> None:
        """Free every checkpoint (and, for disk tiers, remove every file).  Safe to call more than once."""
        for index in list(self._stored()):
            self._discard(index)

    # implemented by subclasses ------------------------------------------------------------------------------
    def _stored(self):
        raise NotImplementedError

    def _write(self, index, arrays):
        raise NotImplementedError

    def _read(self, index):
        raise NotImplementedError

    def _discard(self, index):
        raise NotImplementedError


class RamTier(Tier):
    """Checkpoints as in-process numpy copies."""

    def __init__(self, capacity=math.inf, name: str = "ram"):
        super().__init__(capacity, name)
        self._slots: dict[int, list[np.ndarray]] = {}

    def _stored(self):
        return self._slots

    def _write(self, index, arrays):
        self.layout.check(arrays)
        self._slots[index] = [np.array(a, copy=True) for a in arrays]

    def _read(self, index):
        return self._slots[index]

    def _discard(self, index):
        del self._slots[index]


class DiskTier(Tier):
    """Checkpoints as files ``<directory>/checkpoints-<run id>/x<index>.rank<rank>.bin``.

    ``directory`` is created if needed.  The run subdirectory is new for every run and removed by :meth:`close`.
    """

    def __init__(self, directory, capacity=math.inf, name: str = "disk"):
        super().__init__(capacity, name)
        self.directory = os.fspath(directory)
        self.run_directory: str | None = None
        self.removed_orphans: list[rundirs.RunDirectory] = []  # by the last open(), on this rank
        self._created: str | None = None  # the outermost directory open() created for self.directory
        self._digests: dict[int, str] = {}

    def path_of(self, index: int) -> str:
        """The file holding this rank's part of ``x_index`` (while it is stored)."""
        return os.path.join(self.run_directory, f"x{index}.rank{self.comm.rank}.bin")

    def open(self, layout, slots, comm):
        super().open(layout, slots, comm)
        self.removed_orphans = []
        run_id = comm.bcast(uuid.uuid4().hex[:12] if comm.rank == 0 else None, root=0)
        processes = comm.allgather(rundirs.Process.current())
        start = comm.bcast(datetime.now(timezone.utc).isoformat(timespec="seconds") if comm.rank == 0 else None)
        self.run_directory = os.path.join(self.directory, rundirs.PREFIX + run_id)
        self._created = rundirs.missing_ancestor(self.directory)
        hosts = [p.host for p in processes]
        # Rank 0 creates the run directory (a shared file system); then the first rank of every other host does
        # where it does not see it (node-local disks).  Each first rank of a host first removes orphans.
        error = None
        for creators in ([0], [r for r in range(comm.size) if r > 0 and hosts.index(hosts[r]) == r]):
            if comm.rank in creators and error is None:
                error = self._create(run_id, processes, start)
            comm.barrier()
        rundirs.hold_sigterm()
        global_bytes = comm.allreduce(layout.nbytes)
        if error is None:
            try:
                self._probe(slots * global_bytes, slots, global_bytes)
            except StorageUnavailableError as exc:
                error = exc
        try:
            agree(comm, error)
        except StorageError:
            self.close()
            raise

    def _create(self, run_id, processes, start) -> StorageUnavailableError | None:
        """Remove orphaned run directories, then create this run's with its owner record (if not there yet)."""
        try:
            os.makedirs(self.directory, exist_ok=True)
            self.removed_orphans = rundirs.remove_orphans(self.directory)
            if not os.path.isdir(self.run_directory):
                rundirs.create_run_directory(self.directory, run_id, processes, start)
        except OSError as exc:
            return StorageUnavailableError(f"checkpoint directory {self.directory!r} (tier {self.name!r}) is not "
                                           f"writable: {exc}")
        return None

    def _probe(self, needed: int, slots: int, state_bytes: int) -> None:
        where = f"checkpoint directory {self.directory!r} (tier {self.name!r})"
        try:
            if not os.path.isdir(self.run_directory):
                raise OSError(f"the run directory {self.run_directory!r} is not visible on this rank")
            probe = os.path.join(self.run_directory, f"probe.rank{self.comm.rank}")
            payload = os.urandom(64)
            with open(probe, "wb") as fh:
                fh.write(payload)
            with open(probe, "rb") as fh:
                if fh.read() != payload:
                    raise OSError("a probe file read back differently")
            os.remove(probe)
        except OSError as exc:
            raise StorageUnavailableError(f"{where} is not writable: {exc}") from None
        free = shutil.disk_usage(self.run_directory).free
        if free < needed:
            raise StorageUnavailableError(f"{where} has {_bytes(free)} free; the schedule needs {_bytes(needed)} "
                                          f"there ({slots} checkpoints of {_bytes(state_bytes)})")

    def _stored(self):
        return self._digests

    def _write(self, index, arrays):
        error = None
        try:
            data = self.layout.to_bytes(arrays)
            with open(self.path_of(index), "wb") as fh:
                fh.write(data)
            self._digests[index] = hashlib.sha256(data).hexdigest()
        except OSError as exc:
            error = StorageError(f"tier {self.name!r}: writing x_{index} to {self.path_of(index)!r} failed: {exc}")
        agree(self.comm, error)

    def _read(self, index):
        error, arrays = None, None
        path = self.path_of(index)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
            if len(data) != self.layout.nbytes or hashlib.sha256(data).hexdigest() != self._digests[index]:
                raise ChecksumError(f"checkpoint file {path!r} (x_{index}, tier {self.name!r}) is corrupted: "
                                    f"its SHA-256 checksum or length differs from what was written")
            arrays = self.layout.from_bytes(data)
        except OSError as exc:
            error = StorageError(f"tier {self.name!r}: reading x_{index} from {path!r} failed: {exc}")
        except ChecksumError as exc:
            error = exc
        agree(self.comm, error)
        return arrays

    def _discard(self, index):
        del self._digests[index]
        try:
            os.remove(self.path_of(index))
        except OSError:
            pass  # best effort, rank-local: close() removes the whole run directory anyway

    def close(self):
        if self.comm is None:
            return
        super().close()
        try:
            self._remove_run_directory()
        finally:
            rundirs.release_sigterm()
            self.comm = None

    def _remove_run_directory(self):
        if self.run_directory is None:
            return
        # Rank 0 first (a shared file system), then any rank that still sees it (node-local disks).
        self.comm.barrier()
        if self.comm.rank == 0:
            shutil.rmtree(self.run_directory, ignore_errors=True)
            rundirs.remove_created_directories(self.directory, self._created)
        self.comm.barrier()
        if os.path.exists(self.run_directory):
            shutil.rmtree(self.run_directory, ignore_errors=True)
        rundirs.remove_created_directories(self.directory, self._created)
        self.run_directory = None
