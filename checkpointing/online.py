"""Online checkpointing: the chain length ``l`` is not known while the forward sweep runs (adaptive time stepping).

Forward sweep: the dynamic checkpointing rule of Wang, Moin & Iaccarino, "Minimal repetition dynamic
checkpointing algorithm for unsteady adjoint calculation", SIAM J. Sci. Comput. 31(4), 2009, on one storage level
with ``c`` slots, as we implement it.  Every checkpoint carries a *level* (``x_0``: infinity); a checkpoint is
*dispensable* when a later checkpoint has a higher level.  Before advancing from ``x_i``:

1. if a slot is free, store ``x_i`` with level 0;
2. else, if some checkpoint is dispensable, discard the one with the lowest level (the oldest among equals) and
   store ``x_i`` with level 0;
3. else discard the latest checkpoint, of level ``L``, and store ``x_i`` with level ``L + 1``.

(With a single slot only ``x_0`` is kept.)

Levels grow with how often a stretch will be recomputed, so older, finer-spaced checkpoints are given up first.
We did not reproduce the paper's optimality results for this rule; ``benchmarks/bench_online.py`` measures its
makespan against the offline optimum (within 12 % for ``c <= 20``, ``l <= 3000`` there).

Reversal, once ``l`` is known (the working state is ``x_l``): run ``Fbar_l``; then for the kept checkpoints
``p_q > ... > p_0 = 0``, read ``x_{p_i}``, reverse ``x_{p_i} .. x_{p_{i+1}-1}`` optimally with ``x_{p_i}``
stored and the level's free slots (the DP of :mod:`checkpointing.hrevolve` on that one level, ``Optbar``), and
discard ``x_{p_i}``.  The result is a valid schedule, so its makespan is never below the offline optimum
(``benchmarks/bench_planners.py`` reports the ratio).
"""
from __future__ import annotations

import math
from dataclasses import replace

from .actions import Advance, Backward, Discard, Read, Write
from .emit import ScheduleDoesNotFit
from .hrevolve import HRevolveTables
from .platform import Level, Platform

__all__ = ["OnlineCheckpointing", "online_schedule"]


class OnlineCheckpointing:
    """Feed forward steps one at a time with :meth:`step`; call :meth:`finish` when the chain has ended.

    Both return the actions to execute now; :attr:`actions` holds everything emitted so far.
    """

    def __init__(self, platform: Platform, level: int = 0):
        if not 0 <= level < platform.n_levels:
            raise ValueError(f"level = {level!r}: the platform has levels 0..{platform.n_levels - 1}")
        slots = platform.capacities[level]
        if slots < 1:
            raise ScheduleDoesNotFit(f"online: level {level} has capacity {slots}; at least one slot is needed")
        self.platform = platform
        self.level = level
        self.slots = slots
        self.position = 0                   # index of the working state x_i
        self.kept: list[tuple[int, float]] = []   # (index, level) of the checkpoints, oldest first
        self.actions: list = []
        self.finished = False

    def _keep_current(self) -> list:
        i, out = self.position, []
        if not self.kept:
            rank = math.inf
        elif self.slots == 1:
            return out                      # the only slot holds x_0
        elif len(self.kept) < self.slots:
            rank = 0
        else:
            dispensable = [p for p in range(len(self.kept) - 1)
                           if any(later[1] > self.kept[p][1] for later in self.kept[p + 1:])]
            if dispensable:
                victim = min(dispensable, key=lambda p: (self.kept[p][1], p))
                rank = 0
            else:
                victim = len(self.kept) - 1
                rank = self.kept[victim][1] + 1
            out.append(Discard(self.kept[victim][0], self.level))
            del self.kept[victim]
        self.kept.append((i, rank))
        out.append(Write(i, self.level))
        return out

    def step(self) -> list:
        """Decide whether to keep the working state ``x_i``, then advance to ``x_{i+1}``."""
        if self.finished:
            raise RuntimeError("online: step() after finish()")
        out = self._keep_current() + [Advance(self.position, self.position + 1)]
        self.position += 1
        self.actions += out
        return out

    def finish(self) -> list:
        """The chain ends at the working state ``x_l`` (``l`` = steps taken): reverse it."""
        if self.finished:
            raise RuntimeError("online: finish() called twice")
        self.finished = True
        l = self.position
        out = [Backward(l)]
        ends = [p for p, _ in self.kept[1:]] + [l]
        # segment q: x_{p_q} .. x_{p_{q+1}-1} with x_{p_q} stored and the slots not held by x_{p_0..p_{q-1}};
        # more than n slots never help a segment of length n (see checkpointing.hrevolve)
        segments = []
        for q in range(len(self.kept) - 1, -1, -1):
            start, n = self.kept[q][0], ends[q] - 1 - self.kept[q][0]
            segments.append((start, n, int(max(1, min(self.slots - q, n)))))
        lev = self.platform.levels[self.level]
        tables = {}
        for slots in {m for _, _, m in segments}:
            longest = max(n for _, n, m in segments if m == slots)
            tables[slots] = HRevolveTables(longest, Platform((Level(slots, lev.write_cost, lev.read_cost),),
                                                             self.platform.uf, self.platform.ub))
        for start, n, slots in segments:
            reversal = [replace(a, level=self.level) if isinstance(a, (Write, Read, Discard)) else a
                        for a in tables[slots].schedule(n, start=start, stored=True)]  # planned on one level, 0
            out += [Read(start, self.level)] + reversal + [Discard(start, self.level)]
        self.actions += out
        return out


def online_schedule(steps: int, platform: Platform, level: int = 0) -> list:
    """The schedule the online checkpointer produces when the chain turns out to have ``steps`` steps."""
    online = OnlineCheckpointing(platform, level)
    for _ in range(steps):
        online.step()
    online.finish()
    return online.actions
