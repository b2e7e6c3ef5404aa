"""The compact form of a three-phase join schedule (:class:`JoinPlan`) and the chain costs planners build it from.

A join schedule (:mod:`checkpointing.joingraph`) in the three phases of Beaumont, Herrmann, Pallez & Shilova (Phil.
Trans. R. Soc. A 378: 20190049, 2020) is fixed by: the order in which the teeth are traversed forward, the forward
checkpoints of each tooth, the slots left to the handle for the turn, and the segments reversed in the backward
phase, each from one forward checkpoint with a number of slots (docs/join_graphs.md).  :class:`ChainCosts` and
:class:`DiskCosts` give the H-Revolve costs and schedules of one chain on one level with any number of slots, or on
a level-0 of any size plus an unbounded level 1 (:mod:`checkpointing.hrevolve`); the helpers below are the pieces
of a plan's cost shared by every join planner (:mod:`checkpointing.join_planners`, :mod:`checkpointing.join_optimal`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from .actions import HANDLE, Advance, Backward, Discard, Join, Read, Start, Write
from .emit import ScheduleDoesNotFit
from .hrevolve import HRevolveTables
from .joingraph import JoinGraph
from .platform import Level, Platform

__all__ = ["JoinPlan", "ChainCosts", "DiskCosts", "chain_costs", "disk_costs", "total_states", "slots_of",
           "turn_cost", "forward_cost", "sizes_to_cover", "bonus_cost", "last_candidates", "forward_order",
           "checkpoints_of", "check_level0", "on_branch", "tooth_table", "tooth_segments"]


@dataclass
class JoinPlan:
    """A three-phase schedule in compact form: the teeth in forward order (the last one's end stays the working
    state when the handle has length 0), the forward checkpoints ``(position, level)`` of each tooth, the handle's
    level-0 slots, and the segments ``(tooth, start, length, slots, level)`` in the order they are reversed
    (``slots``: the level-0 slots the segment may use, its own included when ``level`` is 0).  ``value`` is its
    makespan as the planner computed it (the simulator's cost of :meth:`schedule` must equal it)."""

    graph: JoinGraph
    platform: Platform
    order: list[int]
    checkpoints: dict
    handle_slots: int
    segments: list
    value: float
    disk: bool = False      # the handle is reversed on levels 0 and 1 (two-level optimum)
    certificate: float | None = None    # a lower bound of the optimum proving this plan optimal (not from the DP)

    @property
    def forward_checkpoints(self) -> int:
        return sum(len(v) for v in self.checkpoints.values())

    def schedule(self) -> list:
        """The list of actions (level 0 for every checkpoint)."""
        graph, platform = self.graph, self.platform
        out = []
        for b in self.order:
            out.append(Start(b))
            at = 0
            for s, level in self.checkpoints[b]:
                if s > at:
                    out.append(Advance(at, s, b))
                    at = s
                out.append(Write(s, level, b))
            if graph.teeth[b].length > at:
                out.append(Advance(at, graph.teeth[b].length, b))
            out.append(Join(b))
        h = graph.handle.length
        if h == 0:
            out.append(Backward(0, HANDLE))
            last = self.order[-1]
            out.append(Backward(graph.teeth[last].length, last))
        else:
            out.append(Start(HANDLE))
            handle = disk_costs(graph, platform, HANDLE) if self.disk else chain_costs(graph, platform, HANDLE)
            out += on_branch(handle.schedule(h, self.handle_slots), HANDLE)
        for b, a, n, m, level in self.segments:
            chain = disk_costs(graph, platform, b) if level == 1 else chain_costs(graph, platform, b)
            out += [Read(a, level, b)] + on_branch(chain.schedule(n, m, start=a, stored=True), b)
            out.append(Discard(a, level, b))
        return out


def on_branch(actions, b) -> list:
    return [replace(a, branch=b) for a in actions]


class ChainCosts:
    """Optimal costs and schedules of a chain on one level of ``c`` slots (write ``w``, read ``r``) with step costs
    ``uf``, ``ub``, for every length ``n <= steps`` and every number of slots ``m <= c``: H-Revolve's ``Opt(n, m)``
    (``x_0`` not stored yet) and ``Optbar(n, m)`` (``x_0`` stored, one of the ``m`` slots)."""

    def __init__(self, steps: int, c: int, w: float, r: float, uf: float, ub: float):
        self.steps, self.c, self.w, self.r, self.uf, self.ub = steps, c, w, r, uf, ub
        # a table of steps + 1 with capacity min(c, steps) is bounded, so it keeps one row per m (m > n is m = n)
        self._tables = HRevolveTables(steps + 1, Platform((Level(max(1, min(c, steps)), w, r),), uf, ub))
        self._level = self._tables.levels[0]
        self._schedules = {}

    def _row(self, m: int) -> int:
        return 1 if self._level.unbounded else min(m, self._level.top)

    def optbar(self, n: int, m: int) -> float:
        return math.inf if m < 1 else float(self._level.optbar[self._row(m), n])

    def opt(self, n: int, m: int) -> float:
        if n == 0:
            return self.ub
        return math.inf if m < 1 else float(self._level.opt[self._row(m), n])

    def segment_costs(self) -> np.ndarray:
        """``G[m, t] = w + r + Optbar(t - 1, m)`` for ``m = 0 .. c`` and ``t = 0 .. steps + 1`` (``inf`` for
        ``m = 0`` or ``t = 0``): writing a segment's first state in the forward phase, reading it back and reversing
        the segment's ``t`` states."""
        G = np.full((self.c + 1, self.steps + 2), np.inf)
        for m in range(1, self.c + 1):
            G[m, 1:] = self.w + self.r + self._level.optbar[self._row(m), :self.steps + 1]
        return G

    def schedule(self, n: int, m: int, *, start: int = 0, stored: bool = False) -> list:
        """An optimal schedule of the chain ``x_start .. x_{start+n}`` with ``m`` slots (with ``stored=True``,
        ``x_start`` already stored in one of them and the working state)."""
        if m not in self._schedules:
            self._schedules[m] = HRevolveTables(self.steps, Platform((Level(m, self.w, self.r),), self.uf, self.ub))
        return self._schedules[m].schedule(n, start=start, stored=stored)


@lru_cache(maxsize=64)
def _cached_costs(steps, c, w, r, uf, ub) -> ChainCosts:
    return ChainCosts(steps, c, w, r, uf, ub)


def chain_costs(graph: JoinGraph, platform: Platform, b: int) -> ChainCosts:
    """The chain costs of branch ``b`` (shared between teeth with the same costs)."""
    level = platform.levels[0]
    c = int(min(level.capacity, total_states(graph) + 1))
    uf, ub = graph.costs(b, platform)
    steps = graph.handle.length if b == HANDLE else max(graph.lengths)
    return _cached_costs(steps, c, level.write_cost, level.read_cost, uf, ub)


def total_states(graph: JoinGraph) -> int:
    return sum(l + 1 for l in graph.lengths) + graph.handle.length + 1


def slots_of(graph: JoinGraph, platform: Platform) -> int:
    return int(min(platform.capacities[0], total_states(graph) + 1))


def turn_cost(graph, platform, slots: int, disk: bool = False) -> float:
    """The handle's reversal with ``slots`` level-0 slots, and an unbounded level 1 if ``disk`` (``ub_H`` for a
    handle of length 0)."""
    h = graph.handle.length
    if h == 0:
        return graph.costs(HANDLE, platform)[1]
    return (disk_costs(graph, platform, HANDLE) if disk else chain_costs(graph, platform, HANDLE)).opt(h, slots)


def forward_cost(graph, platform) -> float:
    return sum(t.length * graph.costs(b, platform)[0] for b, t in enumerate(graph.teeth))


def sizes_to_cover(graph, last) -> list[int]:
    """States each tooth must cover with segments: ``l_b + 1``, and ``l_b`` for the tooth forwarded last when the
    handle has length 0 (its end is reversed from the working state)."""
    return [t.length + (0 if b == last and graph.handle.length == 0 else 1) for b, t in enumerate(graph.teeth)]


def bonus_cost(graph, platform, last) -> float:
    return graph.costs(last, platform)[1] if graph.handle.length == 0 else 0.0


def last_candidates(graph) -> list[int]:
    """One tooth per distinct (length, costs) to try as the one forwarded last (all equivalent otherwise)."""
    seen, out = set(), []
    for b, t in enumerate(graph.teeth):
        if (t.length, t.uf, t.ub) not in seen:
            seen.add((t.length, t.uf, t.ub))
            out.append(b)
    return out if graph.handle.length == 0 else [graph.p - 1]


def forward_order(graph, last) -> list[int]:
    return [b for b in range(graph.p) if b != last] + [last]


def checkpoints_of(segments, p) -> dict:
    cps = {b: [] for b in range(p)}
    for b, a, _, _, level in segments:
        cps[b].append((a, level))
    return {b: sorted(v) for b, v in cps.items()}


def check_level0(platform: Platform, name: str) -> int:
    c = platform.capacities[0]
    if c < 1:
        raise ScheduleDoesNotFit(f"{name}: level 0 has capacity {c}; join graphs are planned on level 0")
    return c


class DiskCosts:
    """Costs and schedules of a chain on two levels, level 0 with ``m0`` slots (for every ``m0 <= c0``) and level 1
    unbounded (H-Revolve's two-level DP, Disk-Revolve's setting): ``Optbar_1`` with the first state on level 1."""

    def __init__(self, steps: int, c0: int, level0: Level, level1: Level, uf: float, ub: float):
        self.steps, self.c0, self.w1, self.r1 = steps, c0, level1.write_cost, level1.read_cost
        self._tables = [HRevolveTables(steps, Platform((Level(m0, level0.write_cost, level0.read_cost),
                                                        Level(math.inf, level1.write_cost, level1.read_cost)),
                                                       uf, ub)) for m0 in range(c0 + 1)]

    def segment_costs(self) -> np.ndarray:
        """``Gd[m0, t] = w_1 + r_1 + Optbar_1(t - 1)`` with ``m0`` level-0 slots free: a segment whose first state
        is written to level 1 in the forward phase (``inf`` for ``t = 0``)."""
        G = np.full((self.c0 + 1, self.steps + 2), np.inf)
        for m0, tables in enumerate(self._tables):
            G[m0, 1:] = [self.w1 + self.r1 + tables.stored_value(n) for n in range(self.steps + 1)]
        return G

    def opt(self, n: int, m0: int) -> float:
        return self._tables[m0].value(n)

    def schedule(self, n: int, m0: int, *, start: int = 0, stored: bool = False) -> list:
        return self._tables[m0].schedule(n, start=start, stored=stored)


@lru_cache(maxsize=16)
def _cached_disk_costs(steps, c0, level0, level1, uf, ub) -> DiskCosts:
    return DiskCosts(steps, c0, level0, level1, uf, ub)


def disk_costs(graph, platform, b) -> DiskCosts | None:
    """The two-level costs of branch ``b``, or ``None`` on a one-level platform."""
    if platform.n_levels == 1:
        return None
    uf, ub = graph.costs(b, platform)
    steps = graph.handle.length if b == HANDLE else max(graph.lengths)
    return _cached_disk_costs(steps, slots_of(graph, platform), platform.levels[0], platform.levels[1], uf, ub)


def tooth_table(G, size: int, c: int) -> np.ndarray:
    """``W[top, k]``: least cost of covering ``size`` states of one tooth with ``k`` segments whose slots are
    ``top, top - 1, ..., top - k + 1`` from the bottom up (``inf`` where impossible)."""
    W = np.full((c + 1, c + 1), np.inf)
    if size == 0:
        W[:, 0] = 0.0
        return W
    idx = np.arange(size + 1)
    diff = idx[:, None] - idx[None, :]          # s - s'  for covered prefixes s' < s
    valid = diff >= 1
    for top in range(1, c + 1):
        cur = np.full(size + 1, np.inf)
        cur[0] = 0.0
        for k in range(1, top + 1):
            g = np.where(valid, G[top - k + 1][np.clip(diff, 0, size)], np.inf)
            cur = np.min(cur[None, :] + g, axis=1)
            W[top, k] = cur[size]
            if not np.isfinite(cur).any():
                break
    return W


def tooth_segments(G, size: int, top: int, k: int, tooth: int) -> list:
    """The segments ``(tooth, start, length, slots)`` of :func:`tooth_table`'s optimum, top segment first."""
    if size == 0:
        return []
    tables = [np.full(size + 1, np.inf)]
    tables[0][0] = 0.0
    picks = []
    for i in range(1, k + 1):
        prev, m = tables[-1], top - i + 1
        cur = np.full(size + 1, np.inf)
        pick = np.zeros(size + 1, dtype=np.int64)
        for s in range(1, size + 1):
            cand = prev[:s] + G[m][s - np.arange(s)]
            pick[s] = int(np.argmin(cand))
            cur[s] = cand[pick[s]]
        tables.append(cur)
        picks.append(pick)
    segments, s = [], size
    for i in range(k, 0, -1):
        start = int(picks[i - 1][s])
        segments.append((tooth, start, s - start - 1, top - i + 1, 0))
        s = start
    return segments
