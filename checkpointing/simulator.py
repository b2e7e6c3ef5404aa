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
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .actions import Advance, Backward, Discard, Read, Write
from .platform import Platform

__all__ = ["simulate", "Report", "InvalidScheduleError", "check_step_costs"]


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


def _check_steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps = {steps!r}: the chain length must be an integer >= 0")
    return int(steps)


def simulate(schedule, platform: Platform, steps: int, *, forward_costs=None, backward_costs=None) -> Report:
    """Run ``schedule`` (a sequence of actions) for a chain of ``steps`` forward steps on ``platform``.

    Returns a :class:`Report`; raises :class:`InvalidScheduleError` at the first action that breaks a rule,
    naming its position in the schedule and the action.
    """
    l = _check_steps(steps)
    fwd = None if forward_costs is None else check_step_costs("forward_costs", forward_costs, l)
    bwd = None if backward_costs is None else check_step_costs("backward_costs", backward_costs, l + 1)
    fwd_prefix = None if fwd is None else np.concatenate(([0.0], np.cumsum(fwd)))
    n_levels = platform.n_levels
    caps = platform.capacities
    wcost, rcost = platform.write_costs, platform.read_costs

    stored = [set() for _ in range(n_levels)]
    reads, writes, peak = [0] * n_levels, [0] * n_levels, [0] * n_levels
    working: int | None = 0
    next_backward = l
    forward_steps = 0
    time_forward = 0.0
    time_backward = 0.0
    time_io = 0.0

    def fail(pos, action, why):
        raise InvalidScheduleError(f"action {pos} ({action!r}): {why}")

    def check_level(pos, action, level):
        if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or not 0 <= level < n_levels:
            fail(pos, action, f"level {level!r} does not exist; the platform has levels 0..{n_levels - 1}")

    def have(state):
        return "no working state" if state is None else f"the working state is x{state}"

    for pos, action in enumerate(schedule):
        kind = type(action)
        if getattr(action, "branch", None) is not None:
            fail(pos, action, "names a branch, but a chain has none (join graphs: checkpointing.joingraph.simulate_join)")
        if kind is Advance:
            a, b = action.start, action.end
            if working != a:
                fail(pos, action, f"needs x{a} as working state but {have(working)}")
            if not a < b <= l:
                fail(pos, action, f"needs start < end <= l = {l}")
            forward_steps += b - a
            time_forward += (b - a) * platform.uf if fwd_prefix is None else fwd_prefix[b] - fwd_prefix[a]
            working = b
        elif kind is Write:
            check_level(pos, action, action.level)
            k, i = action.level, action.index
            if working != i:
                fail(pos, action, f"needs x{i} as working state but {have(working)}")
            if i in stored[k]:
                fail(pos, action, f"x{i} is already stored on level {k}")
            if len(stored[k]) >= caps[k]:
                fail(pos, action, f"level {k} is full (capacity {caps[k]}, holding {sorted(stored[k])})")
            stored[k].add(i)
            writes[k] += 1
            time_io += wcost[k]
            peak[k] = max(peak[k], len(stored[k]))
        elif kind is Read:
            check_level(pos, action, action.level)
            k, i = action.level, action.index
            if i not in stored[k]:
                fail(pos, action, f"x{i} is not stored on level {k} (it holds {sorted(stored[k])})")
            reads[k] += 1
            time_io += rcost[k]
            working = i
        elif kind is Discard:
            check_level(pos, action, action.level)
            k, i = action.level, action.index
            if i not in stored[k]:
                fail(pos, action, f"x{i} is not stored on level {k} (it holds {sorted(stored[k])})")
            stored[k].remove(i)
        elif kind is Backward:
            i = action.index
            if next_backward < 0:
                fail(pos, action, "all backward steps l..0 have already run")
            if i != next_backward:
                fail(pos, action, f"the next backward step must be {next_backward}")
            if working != i:
                fail(pos, action, f"needs x{i} as working state but {have(working)}")
            time_backward += platform.ub if bwd is None else bwd[i]
            next_backward -= 1
            working = None
        else:
            fail(pos, action, "not an action (expected Advance, Write, Read, Discard or Backward)")
    if next_backward >= 0:
        raise InvalidScheduleError(f"end of schedule after {len(schedule)} actions: backward steps "
                                   f"{next_backward}..0 never ran")
    return Report(float(time_forward + time_backward + time_io), forward_steps, l + 1, reads, writes, peak)
