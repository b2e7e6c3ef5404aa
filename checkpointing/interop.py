"""Translate schedules between this package and checkpoint_schedules 1.0.4 (the peer library pyadjoint executes).

The two vocabularies describe the same chain (Griewank & Walther 2000; Herrmann & Pallez 2020) with an offset of
one in the step count.  Ours has ``l`` forward steps ``F_0 .. F_{l-1}`` and ``l + 1`` backward steps
``Fbar_l .. Fbar_0``, where ``Fbar_i`` re-runs ``F_i`` on a tape inside its cost ``ub``.  checkpoint_schedules has
``max_n = l + 1`` model steps; its adjoint of step ``i`` is an explicit taped ``Forward(i, i + 1, write_adj_deps=True)``
followed by ``Reverse(i + 1, i)``.  Dictionary (``S`` a storage, ``k`` the level it stands for):

==========================================  ====================================================================
ours                                        checkpoint_schedules
==========================================  ====================================================================
``Write(a, k)``, ``Advance(a, b)``          ``Forward(a, b, write_ics=True, write_adj_deps=False, S)``
``Advance(a, b)``                           ``Forward(a, b, False, False, WORK)``
``Backward(i)`` (working state ``x_i``)     ``Forward(i, i + 1, False, True, WORK)``, ``Reverse(i + 1, i, True)``
``Read(i, k)``                              ``Copy(i, S, WORK)``
``Read(i, k)`` ... ``Discard(i, k)``        ``Move(i, S, WORK)`` at the last read
==========================================  ====================================================================

plus ``EndForward()`` right after the first taped step ``l`` and ``EndReverse()`` at the end.  Because the peer
executes each backward step as an explicit taped forward step plus a reverse step, a Revolve-family schedule that
tapes every step once costs ``ours + (l + 1) * uf`` in the peer's ``Sequence.makespan`` convention
(docs/checkpointing.md, "Makespan conventions").

Importing goes the other way and also covers the peer's schedules that keep taped data ("adjoint dependencies",
``write_adj_deps=True``) instead of restart data: keeping the tape of step ``i`` on storage ``S`` is modelled as
keeping ``x_i`` on the level of ``S`` (``WORK`` counts as level ``work_level``), since in our chain model a stored
``x_i`` is exactly what ``Fbar_i`` needs.  Such schedules do not re-tape those steps, so for them the
``(l + 1) * uf`` offset does not hold.
"""
from __future__ import annotations

import logging

from checkpoint_schedules import (CheckpointSchedule, Copy, DiskRevolve, EndForward, EndReverse, Forward, HRevolve,
                                  Move, MultistageCheckpointSchedule, PeriodicDiskRevolve, Reverse, Revolve,
                                  StorageType)

from .actions import Advance, Backward, Discard, Read, Write
from .platform import INF, Level, Platform
from .simulator import simulate

__all__ = ["TranslationError", "ExportedSchedule", "to_peer_actions", "from_peer", "peer_schedules", "PEER_LEVELS"]

log = logging.getLogger(__name__)

#: level -> peer storage for exports; the peer has two checkpoint storages, RAM and DISK
PEER_LEVELS = (StorageType.RAM, StorageType.DISK)


class TranslationError(ValueError):
    """A schedule cannot be expressed in the other vocabulary; the message names the action and why."""


# ------------------------------------------------------------------------------------------------ export
def to_peer_actions(schedule, steps: int, *, explicit_deletes: bool = False) -> list:
    """Translate ``schedule`` (ours, for a chain of ``steps`` steps, at most two levels) into the list of
    checkpoint_schedules actions described in the module docstring, ending with ``EndReverse()``.

    A ``Discard`` that cannot become a ``Move`` at the state's last read (the state is never read again after
    being written, as in online checkpointing) is dropped by default: pyadjoint 2026.10 cannot execute a delete
    while it records the forward model, and keeping the state longer changes only memory.  With
    ``explicit_deletes=True`` it becomes the peer's delete, ``Move(i, S, StorageType.NONE)``, which is exact in
    the peer's vocabulary (and round-trips) but is not executable by pyadjoint.

    The schedule is first validated by the simulator on two unbounded levels.  Raises :class:`TranslationError`
    for what the peer cannot express: more than two levels, a read before the forward sweep has reached ``x_l``
    (pyadjoint records the forward in one sweep), or a state written and then used by ``Backward`` without an
    ``Advance`` (the peer writes restart data only as part of a ``Forward``).
    """
    schedule = list(schedule)
    used_levels = {a.level for a in schedule if isinstance(a, (Write, Read, Discard))}
    if used_levels - set(range(len(PEER_LEVELS))):
        raise TranslationError(f"levels = {sorted(used_levels)}: checkpoint_schedules has two checkpoint "
                               f"storages (RAM = level 0, DISK = level 1)")
    simulate(schedule, Platform((Level(INF, name="ram"), Level(INF, name="disk"))), steps)

    # the peer (and pyadjoint) keep one copy of each state: only the last read of x_i before x_i is written
    # again may become a Move
    last_read_positions = set()
    read_later: dict[int, bool] = {}
    for pos in range(len(schedule) - 1, -1, -1):
        action = schedule[pos]
        if isinstance(action, Read):
            if not read_later.get(action.index, False):
                last_read_positions.add(pos)
            read_later[action.index] = True
        elif isinstance(action, Write):
            read_later[action.index] = False

    out: list = []
    pending: list[int] = []          # levels the working state was written to since the last Advance
    last_copy: dict[tuple, tuple] = {}  # (index, level) -> (position in schedule, position in out) of its last read
    recording = True                 # pyadjoint's first, recorded forward sweep (until Backward(l))

    for pos, action in enumerate(schedule):
        kind = type(action)
        if kind is Write:
            pending.append(action.level)
        elif kind is Advance:
            for level in pending[1:]:  # extra copies of the same state: zero-length forwards
                out.append(Forward(action.start, action.start, True, False, PEER_LEVELS[level]))
            if pending:
                out.append(Forward(action.start, action.end, True, False, PEER_LEVELS[pending[0]]))
            else:
                out.append(Forward(action.start, action.end, False, False, StorageType.WORK))
            pending = []
        elif kind is Backward:
            if pending:
                raise TranslationError(f"action {pos} ({action}): x{action.index} was written and then used by a "
                                       f"backward step without advancing; checkpoint_schedules writes restart data "
                                       f"only inside a Forward")
            i = action.index
            out.append(Forward(i, i + 1, False, True, StorageType.WORK))
            if recording:
                out.append(EndForward())
                recording = False
            out.append(Reverse(i + 1, i, True))
        elif kind is Read:
            if recording:
                raise TranslationError(f"action {pos} ({action}): a read before the first backward step; pyadjoint "
                                       f"records the forward model in a single sweep 0 -> l")
            if pending:
                raise TranslationError(f"action {pos} ({action}): the state written just before is never advanced")
            last_copy[(action.index, action.level)] = (pos, len(out))
            out.append(Copy(action.index, PEER_LEVELS[action.level], StorageType.WORK))
        else:  # Discard: becomes a Move at the last read, when that read is the state's last one
            read_pos, at = last_copy.pop((action.index, action.level), (None, None))
            if read_pos in last_read_positions:
                out[at] = Move(action.index, PEER_LEVELS[action.level], StorageType.WORK)
            elif explicit_deletes:
                out.append(Move(action.index, PEER_LEVELS[action.level], StorageType.NONE))
            else:
                log.debug("action %d (%s) has no checkpoint_schedules counterpart; dropped", pos, action)
    out.append(EndReverse())
    return out


class ExportedSchedule(CheckpointSchedule):
    """One of our schedules as a ``checkpoint_schedules.CheckpointSchedule``, so that pyadjoint can run it with
    ``tape.enable_checkpointing(ExportedSchedule(schedule, steps))``.  ``steps`` is ``l``: the model has ``l + 1``
    time steps (``max_n``).  Offline; one adjoint calculation.  ``explicit_deletes``: see :func:`to_peer_actions`."""

    def __init__(self, schedule, steps: int, *, explicit_deletes: bool = False):
        actions = to_peer_actions(schedule, steps, explicit_deletes=explicit_deletes)
        super().__init__(max_n=steps + 1)
        self._actions = tuple(actions)
        self._storages = {a.storage for a in actions if isinstance(a, Forward) and a.write_ics}
        self._exhausted = False

    def _iterator(self):
        for action in self._actions:
            if isinstance(action, Forward):
                self._n = action.n1
            elif isinstance(action, Reverse):
                self._r += action.n1 - action.n0
            elif isinstance(action, (Copy, Move)):
                self._n = action.n
            elif isinstance(action, EndReverse):
                self._exhausted = True
            yield action

    @property
    def is_exhausted(self) -> bool:
        return self._exhausted

    def uses_storage_type(self, storage_type) -> bool:
        return storage_type in self._storages


# ------------------------------------------------------------------------------------------------ import
def _peer_actions(peer: CheckpointSchedule, steps: int | None) -> tuple[list, int]:
    """The peer's actions up to its first ``EndReverse``, and ``max_n``.  Online schedules (no ``max_n``) are
    finalized with ``steps + 1`` once their forward has passed that step."""
    max_n = peer.max_n
    if max_n is None:
        if steps is None:
            raise TranslationError(f"{type(peer).__name__} has no max_n: pass steps = l (max_n = l + 1)")
        max_n = steps + 1
    elif steps is not None and steps + 1 != max_n:
        raise TranslationError(f"steps = {steps}: {type(peer).__name__} was built for max_n = {max_n}, "
                               f"i.e. steps = {max_n - 1}")
    actions = []
    for action in peer:
        if isinstance(action, Forward) and action.n1 > max_n:
            action = Forward(action.n0, max_n, *action.args[2:])
        actions.append(action)
        if peer.max_n is None and isinstance(action, Forward) and action.n1 >= max_n:
            peer.finalize(max_n)
        if isinstance(action, EndReverse):
            return actions, max_n
        if len(actions) > 100 * max_n * max_n + 100:
            raise TranslationError(f"{type(peer).__name__} yielded {len(actions)} actions without an EndReverse")
    raise TranslationError(f"{type(peer).__name__} ended without an EndReverse")


class _Importer:
    """Replays peer actions on our abstract machine: one working state ``x_working`` whose tape may already be
    recorded (``taped``), and checkpoints ``stored[(index, level)] = "ics" | "adj"``."""

    def __init__(self, levels: dict, work_level: int):
        self.levels = levels
        self.work_level = work_level
        self.out: list = []
        self.working: int | None = 0
        self.taped: int | None = None  # x_taped is the working state and its step is on the tape
        self.tape_level = work_level   # where the taped state goes if it has to be kept
        self.stored: dict[tuple[int, int], str] = {}

    def level(self, storage, action) -> int:
        if storage is StorageType.WORK:
            return self.work_level
        try:
            return self.levels[storage]
        except KeyError:
            raise TranslationError(f"{action!r}: storage {storage!r} has no level; levels = {self.levels}") from None

    def write(self, index: int, level: int, kind: str, action):
        if (index, level) in self.stored:
            raise TranslationError(f"{action!r}: x{index} is already stored on level {level}")
        self.stored[(index, level)] = kind
        self.out.append(Write(index, level))

    def flush_tape(self, action, continue_forward: bool):
        """The taped working state is not reversed next: keep it as a checkpoint (and advance past it)."""
        i = self.taped
        self.taped = None
        self.write(i, self.tape_level, "adj", action)
        if continue_forward:
            self.out.append(Advance(i, i + 1))
            self.working = i + 1

    def forward(self, a: Forward, last: int):
        if self.taped is not None:
            self.flush_tape(a, continue_forward=True)
        if self.working != a.n0:
            where = "has no working state" if self.working is None else f"is at x{self.working}"
            raise TranslationError(f"{a!r}: the forward {where}, not at x{a.n0}")
        if a.write_ics and a.write_adj_deps:
            raise TranslationError(f"{a!r}: writing restart data and taped data at once is not supported")
        if a.write_ics:
            self.write(a.n0, self.level(a.storage, a), "ics", a)
        if a.n1 == a.n0:
            return
        if not a.write_adj_deps:
            if a.n1 > last:
                raise TranslationError(f"{a!r}: advances over the last step {last} without taping it")
            self.out.append(Advance(a.n0, a.n1))
            self.working = a.n1
            return
        level = self.level(a.storage, a)
        for i in range(a.n0, a.n1 - 1):
            self.write(i, level, "adj", a)
            self.out.append(Advance(i, i + 1))
        self.working = self.taped = a.n1 - 1
        self.tape_level = level

    def reverse(self, a: Reverse):
        for i in range(a.n1 - 1, a.n0 - 1, -1):
            lev = self._adj_level(i)
            if self.taped == i:
                self.taped = None
            elif lev is not None:
                self.out.append(Read(i, lev))
                if a.clear_adj_deps:
                    del self.stored[(i, lev)]
                    self.out.append(Discard(i, lev))
            else:
                raise TranslationError(f"{a!r}: the forward data of step {i} is neither taped nor stored")
            self.out.append(Backward(i))
        self.working = None

    def _adj_level(self, i: int):
        return next((lev for (j, lev), kind in self.stored.items() if j == i and kind == "adj"), None)

    def load(self, a, move: bool):
        if self.taped is not None:
            self.flush_tape(a, continue_forward=False)
        src = self.level(a.from_storage, a)
        kind = self.stored.get((a.n, src))
        if kind is None:
            raise TranslationError(f"{a!r}: x{a.n} is not stored on level {src}")
        to = a.to_storage
        if to is StorageType.NONE:
            if not move:
                raise TranslationError(f"{a!r}: a copy to StorageType.NONE means nothing")
        else:
            self.out.append(Read(a.n, src))
            self.working = a.n
            if to is not StorageType.WORK:
                self.write(a.n, self.level(to, a), kind, a)
                self.working = None  # the peer's forward position is unchanged; ours now holds x_n
            elif kind == "adj":
                self.taped = a.n
                self.tape_level = src
        if move:
            del self.stored[(a.n, src)]
            self.out.append(Discard(a.n, src))


def from_peer(peer: CheckpointSchedule, steps: int | None = None, *,
              levels: dict | None = None, work_level: int = 0) -> list:
    """Translate a checkpoint_schedules schedule into our actions for a chain of ``l = max_n - 1`` steps.

    ``levels`` maps the peer's storages to our levels (default RAM -> 0, DISK -> 1); taped data kept in ``WORK``
    counts as a checkpoint on ``work_level``.  ``steps`` is needed only for online schedules without ``max_n``
    (e.g. ``SingleMemoryStorageSchedule``).  The result is meant to be checked and costed by
    :func:`checkpointing.simulator.simulate`; raises :class:`TranslationError` for what has no counterpart.
    """
    levels = dict(levels) if levels is not None else {StorageType.RAM: 0, StorageType.DISK: 1}
    actions, max_n = _peer_actions(peer, steps)
    imp = _Importer(levels, work_level)
    for pos, action in enumerate(actions):
        if isinstance(action, Forward):
            imp.forward(action, last=max_n - 1)
        elif isinstance(action, Reverse):
            imp.reverse(action)
        elif isinstance(action, (Copy, Move)):
            imp.load(action, move=isinstance(action, Move))
        elif not isinstance(action, (EndForward, EndReverse)):
            raise TranslationError(f"action {pos} ({action!r}) is not a checkpoint_schedules action")
    log.debug("imported %s: %d peer actions -> %d actions", type(peer).__name__, len(actions), len(imp.out))
    return imp.out


def peer_schedules(steps: int, platform: Platform) -> dict:
    """The peer's offline planners configured for ``platform`` (one or two levels, level 0 free as the peer
    assumes): ``{name: zero-argument constructor}``.  Unbounded capacities are passed as ``l + 1``.  Disk-Revolve and
    Periodic-Disk-Revolve assume an unbounded disk and are listed only when level 1 is."""
    if platform.n_levels > 2:
        raise TranslationError(f"levels = {platform.n_levels}: checkpoint_schedules plans for RAM and DISK only")
    max_n = steps + 1
    ram = int(min(platform.capacities[0], max_n))
    uf, ub = platform.uf, platform.ub
    makers = {"peer:Revolve": lambda: Revolve(max_n, ram, uf=uf, ub=ub)}
    if platform.n_levels == 2:
        disk = int(min(platform.capacities[1], max_n))
        wd, rd = platform.write_costs[1], platform.read_costs[1]
        makers["peer:HRevolve"] = lambda: HRevolve(max_n, ram, disk, uf=uf, ub=ub, wd=wd, rd=rd)
        makers["peer:Multistage"] = lambda: MultistageCheckpointSchedule(max_n, ram, disk)
        if disk == max_n:
            makers["peer:DiskRevolve"] = lambda: DiskRevolve(max_n, ram, uf=uf, ub=ub, wd=wd, rd=rd)
            makers["peer:PeriodicDiskRevolve"] = lambda: PeriodicDiskRevolve(max_n, ram, uf=uf, ub=ub, wd=wd, rd=rd)
    return makers
