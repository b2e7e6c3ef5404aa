"""Validate a checkpointing schedule on a platform and measure its cost.

The simulator interprets the five actions of :mod:`checkpointing.actions` on an abstract machine -- one working
state plus the checkpoints held on each storage level -- and knows nothing about how a schedule was planned, so it
is an independent check of every planner.  A schedule for a chain of ``l`` steps is valid when
(Griewank & Walther 2000; Herrmann & Pallez 2020, section 2):

* every ``Advance``/``Write``/``Backward`` finds the state it needs in the working state and every ``Read`` and
  ``Discard`` finds its checkpoint on the named level;
* no level ever holds more than ``c_k`` checkpoints (the working state is not counted);
* the backward steps ``Fbar_l, ..., Fbar_0`` each run exactly once, in that order.

Its makespan is the cost model of Herrmann & Pallez (2020):

    makespan = sum_forward uf_i + sum_backward ub_i + sum_k (w_k * writes_k + r_k * reads_k),

with ``uf_i = uf`` and ``ub_i = ub`` unless per-step costs are given (``forward_costs[i]`` for ``F_i``,
``i < l``; ``backward_costs[i]`` for ``Fbar_i``, ``i <= l``).

:func:`simulate_timeline` also returns the time elapsed after each action, and :func:`rest_makespan` the cost of
what follows the first forward sweep (:func:`first_sweep_end`): once a run's first sweep has reached ``x_l``, every
forward step's cost has been seen once, and the rest of the run can be predicted from those costs
(checkpointing/adjoint/calibration.py, ``forecast_rest``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .actions import Advance, Backward, Discard, Read, Write
from .platform import Platform

__all__ = ["check_steps", "simulate", "simulate_timeline", "first_sweep_end", "first_sweep_split", "rest_makespan", "Report", "InvalidScheduleError",
           "StorageLevels", "check_step_costs"]


class InvalidScheduleError(ValueError):
    """A schedule breaks a rule of the chain model; the message names the position and the action."""


@dataclass
class Report:
    """What running a schedule costs: makespan (platform time units), step counts, and per level the number of
    reads, writes and the peak number of checkpoints held at once."""

    makespan: float
    forward_steps: int
    backward_steps: int
    reads: list[int]
    writes: list[int]
    peak: list[int]

    def to_dict(self) -> dict:
        return asdict(self)


def check_step_costs(name: str, costs, length: int) -> np.ndarray:
    """Return ``costs`` as a float array of ``length`` finite non-negative entries, or raise ``ValueError``."""
    arr = np.asarray(costs, dtype=float)
    if arr.ndim != 1 or arr.shape[0] != length:
        raise ValueError(f"{name} has shape {arr.shape}: expected {length} per-step costs")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} = {arr.tolist()}: per-step costs must be finite numbers >= 0")
    return arr


def check_steps(steps) -> int:
    """``steps`` (the chain length l) as an int; one line naming the value unless it is an integer >= 0."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps = {steps!r}: the chain length must be an integer >= 0")
    return int(steps)


def _fail(pos: int, action, why: str):
    raise InvalidScheduleError(f"action {pos} ({action!r}): {why}")


class StorageLevels:
    """The checkpoints held on each level of ``platform`` while a schedule is simulated: the ``Write``/``Read``/
    ``Discard`` rules and their bookkeeping, shared by the chain simulator (:func:`simulate`) and the join-graph one
    (:func:`checkpointing.joingraph.simulate_join`).  A state is any hashable label (a chain's index ``i``, a join
    graph's ``(branch, i)``), named in messages by ``name(state)``.  Counts per level: ``reads``, ``writes``,
    ``peak`` (most checkpoints held at once); ``time``: the I/O cost ``sum_k w_k writes_k + r_k reads_k``.

    :meth:`apply` raises :class:`InvalidScheduleError` naming the position, the action and the rule it breaks."""

    def __init__(self, platform: Platform, name=lambda state: f"x{state}"):
        self.capacities = platform.capacities
        self.write_costs, self.read_costs = platform.write_costs, platform.read_costs
        self.name = name
        n = platform.n_levels
        self.stored = [set() for _ in range(n)]
        self.reads, self.writes, self.peak = [0] * n, [0] * n, [0] * n
        self.time = 0.0

    def need(self, pos: int, action, state, working) -> None:
        """InvalidScheduleError unless ``state`` is the working state ``working`` (None: none)."""
        if working != state:
            have = "no working state" if working is None else f"the working state is {self.name(working)}"
            _fail(pos, action, f"needs {self.name(state)} as working state but {have}")

    def _holding(self, k: int) -> str:
        return "[" + ", ".join(self.name(s) for s in sorted(self.stored[k], key=repr)) + "]"

    def apply(self, pos: int, action, state, working):
        """Carry out ``action`` (a Write, Read or Discard on ``action.level``, at position ``pos`` of the schedule)
        on ``state``, with ``working`` the working state (None: none); return the working state after it.  A write
        needs ``state`` as working state, room on the level and ``state`` not stored there yet; a read or discard
        needs it stored there; a read makes it the working state."""
        def fail(why):
            _fail(pos, action, why)

        k, n = action.level, len(self.stored)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < n:
            fail(f"level {k!r} does not exist; the platform has levels 0..{n - 1}")
        kind = type(action)
        if kind is Write:
            self.need(pos, action, state, working)
            if state in self.stored[k]:
                fail(f"{self.name(state)} is already stored on level {k}")
            if len(self.stored[k]) >= self.capacities[k]:
                fail(f"level {k} is full (capacity {self.capacities[k]}, holding {self._holding(k)})")
            self.stored[k].add(state)
            self.writes[k] += 1
            self.time += self.write_costs[k]
            self.peak[k] = max(self.peak[k], len(self.stored[k]))
            return working
        if state not in self.stored[k]:
            fail(f"{self.name(state)} is not stored on level {k} (it holds {self._holding(k)})")
        if kind is Read:
            self.reads[k] += 1
            self.time += self.read_costs[k]
            return state
        self.stored[k].remove(state)  # a Discard: the callers pass only Write, Read and Discard
        return working


def simulate(schedule, platform: Platform, steps: int, *, forward_costs=None, backward_costs=None) -> Report:
    """Run ``schedule`` (a sequence of actions) for a chain of ``steps`` forward steps on ``platform``.

    Returns a :class:`Report`; raises :class:`InvalidScheduleError` at the first action that breaks a rule,
    naming its position in the schedule and the action.
    """
    return simulate_timeline(schedule, platform, steps, forward_costs=forward_costs,
                             backward_costs=backward_costs)[0]


def simulate_timeline(schedule, platform: Platform, steps: int, *, forward_costs=None,
                      backward_costs=None) -> tuple[Report, np.ndarray]:
    """:func:`simulate`, and ``elapsed``: ``elapsed[k]`` is the cost of ``schedule[:k + 1]`` (so
    ``elapsed[-1]`` is the makespan)."""
    l = check_steps(steps)
    fwd = None if forward_costs is None else check_step_costs("forward_costs", forward_costs, l)
    bwd = None if backward_costs is None else check_step_costs("backward_costs", backward_costs, l + 1)
    fwd_prefix = None if fwd is None else np.concatenate(([0.0], np.cumsum(fwd)))
    levels = StorageLevels(platform)
    working: int | None = 0
    next_backward = l
    forward_steps = 0
    time_forward = 0.0
    time_backward = 0.0
    elapsed = []

    for pos, action in enumerate(schedule):
        kind = type(action)
        if getattr(action, "branch", None) is not None:
            _fail(pos, action, "names a branch, but a chain has none (join graphs: checkpointing.joingraph.simulate_join)")
        if kind is Advance:
            a, b = action.start, action.end
            levels.need(pos, action, a, working)
            if not a < b <= l:
                _fail(pos, action, f"needs start < end <= l = {l}")
            forward_steps += b - a
            time_forward += (b - a) * platform.uf if fwd_prefix is None else fwd_prefix[b] - fwd_prefix[a]
            working = b
        elif kind in (Write, Read, Discard):
            working = levels.apply(pos, action, action.index, working)
        elif kind is Backward:
            i = action.index
            if next_backward < 0:
                _fail(pos, action, "all backward steps l..0 have already run")
            if i != next_backward:
                _fail(pos, action, f"the next backward step must be {next_backward}")
            levels.need(pos, action, i, working)
            time_backward += platform.ub if bwd is None else bwd[i]
            next_backward -= 1
            working = None
        else:
            _fail(pos, action, "not an action (expected Advance, Write, Read, Discard or Backward)")
        elapsed.append(time_forward + time_backward + levels.time)
    if next_backward >= 0:
        raise InvalidScheduleError(f"end of schedule after {len(schedule)} actions: backward steps "
                                   f"{next_backward}..0 never ran")
    report = Report(float(time_forward + time_backward + levels.time), forward_steps, l + 1, levels.reads,
                    levels.writes, levels.peak)
    return report, np.array(elapsed, dtype=float)


def first_sweep_end(schedule, steps: int) -> int:
    """The number of actions up to and including the ``Advance`` with which the first forward sweep reaches
    ``x_l`` (``l = steps``; 0 for ``l = 0``).  Raises ``ValueError`` if the schedule reads a checkpoint or runs a
    backward step before: then the forward steps it has run when it first reads are not ``F_0 .. F_{l-1}`` once
    each.  (Every offline planner here and the online checkpointer advance to ``x_l`` first.)"""
    l = check_steps(steps)
    if l == 0:
        return 0
    for pos, action in enumerate(schedule):
        if type(action) in (Read, Backward):
            raise ValueError(f"action {pos} ({action!r}) comes before the first forward sweep reaches x{l}: "
                             "the rest of the run cannot be told apart from its first sweep")
        if type(action) is Advance and action.end == l:
            return pos + 1
    raise ValueError(f"the schedule ({len(schedule)} actions) never advances to x{l}")


def first_sweep_split(schedule, platform: Platform, steps: int, *, forward_costs=None,
                      backward_costs=None) -> tuple[float, float]:
    """``(first, rest)``: the time elapsed when the first forward sweep reaches ``x_l``
    (:func:`first_sweep_end`) and the makespan minus it, with the costs of :func:`simulate`."""
    end = first_sweep_end(schedule, steps)
    report, elapsed = simulate_timeline(schedule, platform, steps, forward_costs=forward_costs,
                                        backward_costs=backward_costs)
    first = float(elapsed[end - 1]) if end else 0.0
    return first, report.makespan - first


def rest_makespan(schedule, platform: Platform, steps: int, *, forward_costs=None, backward_costs=None) -> float:
    """The cost of ``schedule[first_sweep_end(schedule, steps):]``: the recomputations, the backward steps, all
    reads and the writes after the first forward sweep reaches ``x_l``, with the costs of :func:`simulate`."""
    return first_sweep_split(schedule, platform, steps, forward_costs=forward_costs,
                             backward_costs=backward_costs)[1]
