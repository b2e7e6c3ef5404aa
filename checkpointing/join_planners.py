"""Schedules for join graphs (:mod:`checkpointing.joingraph`): the optimum of the three-phase structure, and the
heuristics it is compared with.

Beaumont, Herrmann, Pallez & Shilova (Phil. Trans. R. Soc. A 378: 20190049, 2020) prove that with bounded memory
and a bounded number of teeth an optimal schedule is found in polynomial time, from three properties of the backward
phase (stability, checkpoint persistence; checked by :func:`~checkpointing.joingraph.simulate_join`).  They give a
schedule three phases:

1. *forward*: each tooth ``b`` is traversed once from ``x^b_0`` to ``x^b_{l_b}``, writing checkpoints at positions
   ``0 = s_1 < s_2 < ... < s_k`` (``x^b_0`` must be one: a tooth starts only once); then it joins.  ``K`` is the
   number of checkpoints written, over all teeth;
2. *turn*: the handle is reversed with the ``c - K`` slots left, optimally (H-Revolve on one level,
   :mod:`checkpointing.hrevolve`: ``Opt(h, c - K)``; a handle of length 0 costs ``ub_H`` and no slot);
3. *backward*: repeatedly read the highest remaining checkpoint ``x^b_a`` of some tooth and reverse its *segment*
   (``x^b_a`` up to the state below the previous checkpoint of that tooth, or ``x^b_{l_b}``) with the slots not
   held by other checkpoints, then free ``x^b_a``.

Our derivation of the optimum over such schedules (the paper's text was not available to us; this follows its
three phases and is checked against exhaustive search over *all* valid schedules, ``tests/checkpointing/
test_join.py``).  A segment of ``t`` states (length ``n = t - 1``) reversed while ``j`` other checkpoints are held
has ``m = c - j`` slots (its own included) and costs

    G_b(m, t) = r + Optbar_b(t - 1, m)        (read x_a, then H-Revolve's Optbar on one level: x_a stored).

The ``K`` segments are reversed one after the other, so the one reversed last has ``m = c`` slots, the one before
``c - 1``, ..., the first ``c - K + 1``.  Within a tooth the highest segment goes first.  Call ``j = 0 .. K-1`` the
*label* of a segment counted from the last one reversed: a tooth's labels increase from its bottom segment
upwards, and a tooth's cost depends only on the *set* of labels it gets (any lengths given to its labels can be laid
out bottom-up in label order).  So the backward phase is a dynamic programme over labels and covered prefixes
``s_b`` (states ``x^b_0 .. x^b_{s_b - 1}`` covered by segments with labels ``< j``):

    D_0(0) = 0,   D_{j+1}(s) = min_b min_{1 <= t <= s_b} D_j(s - t e_b) + G_b(c - j, t),

    makespan = sum_b l_b uf_b + min_K [ K w + Turn(c - K) + D_K(S) ],   S_b = l_b + 1.

With a handle of length 0 the working state ``x^{b*}_{l_{b*}}`` of the tooth forwarded last survives the turn
(the join's functional reads the join accumulator), so ``Fbar^{b*}_{l_{b*}}`` runs at once for ``ub`` and that
tooth has ``S_{b*} = l_{b*}`` states left; the best ``b*`` is taken.  For one tooth this is H-Revolve's recursion
unrolled along its first forward sweep, so the optimum equals Revolve's (tests).

Cost: ``O(c * prod_b (S_b + 1) * sum_b S_b)`` time and ``O(c * prod_b (S_b + 1))`` memory: polynomial for a bounded
number of teeth, as the paper states, but ``l^p``: 2 teeth of 200 steps take seconds, 4 teeth of 200 steps would
need ``2 * 10^9`` entries per label.  :func:`plan_join` refuses tables above ``max_entries``.

**Teeth one after another** (``"sequential"``): the optimum over schedules whose backward phase reverses the teeth
one after the other (in the best order), which is the DP above with each tooth's labels contiguous.  Per tooth and
top label, a DP over the tooth's segments; then a DP over subsets of teeth: ``O(p c^2 l^2 + 2^p p c^2)``.  It
is exact for one tooth, never below the optimum, and equal to it on most small cases (interleaving the teeth's
segments gains little: see ``docs/join_graphs.md`` for the measured gaps).

**Heuristics** (what one would do without the paper):

* ``"one-after-another"``: write only ``x^b_0`` during the forward phase, reverse the handle with the ``c - p``
  slots left, then reverse the teeth one after another (last forwarded first), each by Revolve (H-Revolve, one
  level) from ``x^b_0`` with the slots left: ``c - p + 1``, ``c - p + 2``, ..., ``c``;
* ``"even-split"``: ``c`` split evenly between the teeth (and the handle if it has steps); each tooth is reversed
  optimally (Revolve) inside its own share, its first forward sweep being the forward phase; the handle gets the
  rest.

The sequential planner and the heuristics use level 0 of the platform only (``c`` slots, write and read costs
``w``, ``r``; ``G_b`` includes the forward phase's write).

**Two levels** (the optimum only): level 0 with ``c`` slots and an unbounded level 1 whose writes and reads cost
at least level 0's (Disk-Revolve's setting).  A forward checkpoint may go to either level.  A level-1 segment
holds no level-0 slot; reversed while ``j`` level-0 checkpoints are held, it costs
``w_1 + r_1 + Optbar_1(t - 1)`` of H-Revolve's two-level DP with ``c - j`` level-0 slots (its first state on level 1,
its interior on both levels).  In the label DP the labels count level-0 segments only, and between two labels any
level-1 segments may be reversed, all with the same ``c - j`` level-0 slots: one min-plus closure per tooth and
label.  The turn is H-Revolve's two-level ``Opt(h)`` with ``c - K_0`` level-0 slots.  This is the optimum over
three-phase schedules whose segments are reversed by H-Revolve (hierarchical schedules, optimal per segment by
Herrmann & Pallez 2020); that no other schedule is cheaper is not proven, but exhaustive search over every valid
schedule agreed on every two-level case we ran (tests).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from .actions import HANDLE, Advance, Backward, Discard, Join, Read, Start, Write
from .emit import ScheduleDoesNotFit
from .hrevolve import HRevolveTables, is_hierarchical
from .joingraph import JoinGraph
from .platform import Level, Platform

__all__ = ["JoinPlan", "JOIN_PLANNERS", "plan_join", "join_plan", "optimal_join_plan", "sequential_join_plan",
           "one_after_another_plan", "even_split_plan", "ChainCosts"]

MAX_ENTRIES = 30_000_000


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
            handle = _disk_costs(graph, platform, HANDLE) if self.disk else _costs(graph, platform, HANDLE)
            out += _on_branch(handle.schedule(h, self.handle_slots), HANDLE)
        for b, a, n, m, level in self.segments:
            chain = _disk_costs(graph, platform, b) if level == 1 else _costs(graph, platform, b)
            out += [Read(a, level, b)] + _on_branch(chain.schedule(n, m, start=a, stored=True), b)
            out.append(Discard(a, level, b))
        return out


def _on_branch(actions, b) -> list:
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


def _costs(graph: JoinGraph, platform: Platform, b: int) -> ChainCosts:
    """The chain costs of branch ``b`` (shared between teeth with the same costs)."""
    level = platform.levels[0]
    c = int(min(level.capacity, _total_states(graph) + 1))
    uf, ub = graph.costs(b, platform)
    steps = graph.handle.length if b == HANDLE else max(graph.lengths)
    return _cached_costs(steps, c, level.write_cost, level.read_cost, uf, ub)


def _total_states(graph: JoinGraph) -> int:
    return sum(l + 1 for l in graph.lengths) + graph.handle.length + 1


def _slots(graph: JoinGraph, platform: Platform) -> int:
    return int(min(platform.capacities[0], _total_states(graph) + 1))


def _turn(graph, platform, slots: int, disk: bool = False) -> float:
    """The handle's reversal with ``slots`` level-0 slots, and an unbounded level 1 if ``disk`` (``ub_H`` for a
    handle of length 0)."""
    h = graph.handle.length
    if h == 0:
        return graph.costs(HANDLE, platform)[1]
    return (_disk_costs(graph, platform, HANDLE) if disk else _costs(graph, platform, HANDLE)).opt(h, slots)


def _forward_cost(graph, platform) -> float:
    return sum(t.length * graph.costs(b, platform)[0] for b, t in enumerate(graph.teeth))


def _sizes(graph, last) -> list[int]:
    """States each tooth must cover with segments: ``l_b + 1``, and ``l_b`` for the tooth forwarded last when the
    handle has length 0 (its end is reversed from the working state)."""
    return [t.length + (0 if b == last and graph.handle.length == 0 else 1) for b, t in enumerate(graph.teeth)]


def _bonus(graph, platform, last) -> float:
    return graph.costs(last, platform)[1] if graph.handle.length == 0 else 0.0


def _last_candidates(graph) -> list[int]:
    """One tooth per distinct (length, costs) to try as the one forwarded last (all equivalent otherwise)."""
    seen, out = set(), []
    for b, t in enumerate(graph.teeth):
        if (t.length, t.uf, t.ub) not in seen:
            seen.add((t.length, t.uf, t.ub))
            out.append(b)
    return out if graph.handle.length == 0 else [graph.p - 1]


def _forward_order(graph, last) -> list[int]:
    return [b for b in range(graph.p) if b != last] + [last]


def _checkpoints_of(segments, p) -> dict:
    cps = {b: [] for b in range(p)}
    for b, a, _, _, level in segments:
        cps[b].append((a, level))
    return {b: sorted(v) for b, v in cps.items()}


def _check_platform(platform: Platform, name: str) -> int:
    c = platform.capacities[0]
    if c < 1:
        raise ScheduleDoesNotFit(f"{name}: level 0 has capacity {c}; join graphs are planned on level 0")
    return c


# ---------------------------------------------------------------------------------------------- the optimum ---
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


def _disk_costs(graph, platform, b) -> DiskCosts | None:
    """The two-level costs of branch ``b``, or ``None`` on a one-level platform."""
    if platform.n_levels == 1:
        return None
    uf, ub = graph.costs(b, platform)
    steps = graph.handle.length if b == HANDLE else max(graph.lengths)
    return _cached_disk_costs(steps, _slots(graph, platform), platform.levels[0], platform.levels[1], uf, ub)


def _check_levels(graph, platform) -> None:
    if platform.n_levels > 2 or (platform.n_levels == 2 and (platform.capacities[1] < _total_states(graph)
                                                             or not is_hierarchical(platform))):
        raise ScheduleDoesNotFit(f"join optimum: plans on one level, or on two whose level 1 holds every state "
                                 f"(capacity >= {_total_states(graph)}) and costs at least level 0's to write and "
                                 f"read; the platform has capacities {platform.capacities}, write costs "
                                 f"{platform.write_costs}, read costs {platform.read_costs}")


def _disk_blocks(G):
    """``C[m0, t]``: least cost of covering ``t`` states of a tooth with consecutive level-1 segments (``C[m0, 0]
    = 0``: none), and ``U[m0, t]``: the size of the highest of them."""
    C = np.full(G.shape, np.inf)
    U = np.zeros(G.shape, dtype=np.int64)
    C[:, 0] = 0.0
    for t in range(1, G.shape[1]):
        cand = C[:, t - 1::-1][:, :t] + G[:, 1:t + 1]      # C[t - u] + G[u], u = 1 .. t
        U[:, t] = np.argmin(cand, axis=1) + 1
        C[:, t] = cand[np.arange(G.shape[0]), U[:, t] - 1]
    return C, U


def optimal_join_plan(graph: JoinGraph, platform: Platform, max_entries: int = MAX_ENTRIES) -> JoinPlan:
    """The optimal three-phase schedule (module docstring): the label DP over covered prefixes of all teeth; on
    two levels, with level-1 segments between the labels."""
    _check_levels(graph, platform)
    if platform.n_levels == 1:
        _check_platform(platform, "join optimum")
    c = _slots(graph, platform)
    best = None
    for last in _last_candidates(graph):
        sizes = _sizes(graph, last)
        shape = tuple(s + 1 for s in sizes)
        entries = int(np.prod(shape)) * max(1, min(c, sum(sizes)))
        if entries > max_entries:
            raise ScheduleDoesNotFit(f"join optimum: the DP over {graph.describe()} with c = {c} slots needs "
                                     f"{entries:.3g} table entries (limit {max_entries:.3g}); use the "
                                     "'sequential' planner")
        G = [_costs(graph, platform, b).segment_costs() for b in range(graph.p)]
        disk = [_disk_costs(graph, platform, b) for b in range(graph.p)]
        blocks = [None if d is None else _disk_blocks(d.segment_costs()) for d in disk]
        D = np.full(shape, np.inf)
        D[(0,) * graph.p] = 0.0
        steps = []                                  # per layer j: (closure picks, label picks)
        base = _forward_cost(graph, platform) + _bonus(graph, platform, last)
        for j in range(c + 1):
            closure = None
            if blocks[0] is not None:
                D, closure = _disk_closure(D, [C[c - j] for C, _ in blocks], sizes)
            total = base + _turn(graph, platform, c - j, blocks[0] is not None) + D[tuple(sizes)]
            if math.isfinite(total) and (best is None or total < best[0] - 1e-12):
                best = (total, last, sizes, j, steps + [(closure, None)], blocks)
            if j == c or not np.isfinite(D).any():
                break
            D, pick_b, pick_t = _label_step(D, G, c - j, sizes)
            steps.append((closure, (pick_b, pick_t)))
    if best is None:
        raise ScheduleDoesNotFit(f"join optimum: no schedule of {graph.describe()} fits {c} slots")
    total, last, sizes, K, steps, blocks = best
    segments, s = [], list(sizes)
    for j in range(K, -1, -1):                     # walk back: first reversed first
        closure, label = steps[j]
        if closure is not None:
            for b in reversed(range(graph.p)):
                t = int(closure[b][tuple(s)])
                s[b] -= t
                while t > 0:                        # the block's level-1 segments, highest first
                    u = int(blocks[b][1][c - j, t])
                    segments.append((b, s[b] + t - u, u - 1, c - j, 1))
                    t -= u
        if j > 0:
            pick_b, pick_t = steps[j - 1][1]
            b, t = int(pick_b[tuple(s)]), int(pick_t[tuple(s)])
            s[b] -= t
            segments.append((b, s[b], t - 1, c - (j - 1), 0))
    return JoinPlan(graph, platform, _forward_order(graph, last), _checkpoints_of(segments, graph.p), c - K,
                    segments, total, disk=platform.n_levels == 2)


def _disk_closure(D, kernels, sizes):
    """Level-1 segments between two labels: along each tooth ``b``, ``min_t D(s - t e_b) + C_b(t)`` (``t = 0``:
    none), and the chosen ``t`` per state and tooth."""
    picks = []
    for b, size in enumerate(sizes):
        new = D.copy()
        pick = np.zeros(D.shape, dtype=np.int32)
        for t in range(1, size + 1):
            cost = kernels[b][t]
            if not math.isfinite(cost):
                continue
            src = [slice(None)] * D.ndim
            dst = [slice(None)] * D.ndim
            src[b], dst[b] = slice(0, size + 1 - t), slice(t, size + 1)
            cand = D[tuple(src)] + cost
            view = new[tuple(dst)]
            better = cand < view
            if better.any():
                view[better] = cand[better]
                pick[tuple(dst)][better] = t
        D = new
        picks.append(pick)
    return D, picks


def _label_step(D, G, m, sizes):
    """``D_{j+1}`` from ``D_j`` with memory ``m``: min over teeth ``b`` and segment sizes ``t`` of
    ``D_j(s - t e_b) + G_b(m, t)``, and the argmin."""
    new = np.full(D.shape, np.inf)
    pick_b = np.zeros(D.shape, dtype=np.int16)
    pick_t = np.zeros(D.shape, dtype=np.int32)
    for b, size in enumerate(sizes):
        for t in range(1, size + 1):
            cost = G[b][m, t]
            if not math.isfinite(cost):
                continue
            src = [slice(None)] * D.ndim
            dst = [slice(None)] * D.ndim
            src[b] = slice(0, size + 1 - t)
            dst[b] = slice(t, size + 1)
            cand = D[tuple(src)] + cost
            view = new[tuple(dst)]
            better = cand < view
            if better.any():
                view[better] = cand[better]
                pick_b[tuple(dst)][better] = b
                pick_t[tuple(dst)][better] = t
    return new, pick_b, pick_t


# ------------------------------------------------------------------------------- teeth one after another ---
def _tooth_table(G, size: int, c: int) -> np.ndarray:
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


def _tooth_segments(G, size: int, top: int, k: int, tooth: int) -> list:
    """The segments ``(tooth, start, length, slots)`` of :func:`_tooth_table`'s optimum, top segment first."""
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


def sequential_join_plan(graph: JoinGraph, platform: Platform) -> JoinPlan:
    """The optimum over three-phase schedules that reverse the teeth one after another (module docstring)."""
    _check_platform(platform, "join sequential")
    c = _slots(graph, platform)
    p = graph.p
    G = [_costs(graph, platform, b).segment_costs() for b in range(p)]
    best = None
    for last in _last_candidates(graph):
        sizes = _sizes(graph, last)
        W = [_tooth_table(G[b], sizes[b], c) for b in range(p)]
        # reverse time: the tooth reversed last takes the top labels.  layers[i][(teeth placed, labels used)] =
        # (cost, back-pointer); a tooth with nothing to cover takes no label
        layers = [{(0, 0): (0.0, None)}]
        for _ in range(p):
            nxt = {}
            for (mask, j), (val, _) in layers[-1].items():
                for b in range(p):
                    if mask >> b & 1:
                        continue
                    for k in range(0 if sizes[b] == 0 else 1, (0 if sizes[b] == 0 else c - j) + 1):
                        cost = W[b][c - j, k] if k else 0.0
                        key = (mask | 1 << b, j + k)
                        if math.isfinite(cost) and val + cost < nxt.get(key, (math.inf,))[0]:
                            nxt[key] = (val + cost, (mask, j, b, k))
            layers.append(nxt)
        base = _forward_cost(graph, platform) + _bonus(graph, platform, last)
        for (mask, K), (val, _) in layers[-1].items():
            total = base + _turn(graph, platform, c - K) + val
            if math.isfinite(total) and (best is None or total < best[0] - 1e-12):
                best = (total, last, sizes, K, layers)
    if best is None:
        raise ScheduleDoesNotFit(f"join sequential: no schedule of {graph.describe()} fits {c} slots")
    total, last, sizes, K, layers = best
    order, key = [], ((1 << p) - 1, K)
    for layer in range(p, 0, -1):               # from the tooth placed last (lowest labels)
        pmask, j, b, k = layers[layer][key][1]
        order.append((b, j, k))
        key = (pmask, j)
    segments = []
    for b, j, k in order:                       # placed last = reversed first
        segments += _tooth_segments(G[b], sizes[b], c - j, k, b)
    return JoinPlan(graph, platform, _forward_order(graph, last), _checkpoints_of(segments, p), c - K, segments,
                    total)


# ---------------------------------------------------------------------------------------------- heuristics ---
def _plan_from_segments(graph, platform, last, segments, handle_slots) -> JoinPlan:
    value = (_forward_cost(graph, platform) + _bonus(graph, platform, last)
             + _turn(graph, platform, handle_slots)
             + sum(_costs(graph, platform, b).segment_costs()[m, n + 1] for b, _, n, m, _ in segments))
    if not math.isfinite(value):
        raise ScheduleDoesNotFit(f"no schedule of {graph.describe()} fits {_slots(graph, platform)} slots with "
                                 "this heuristic")
    return JoinPlan(graph, platform, _forward_order(graph, last), _checkpoints_of(segments, graph.p), handle_slots,
                    segments, float(value))


def one_after_another_plan(graph: JoinGraph, platform: Platform) -> JoinPlan:
    """Only ``x^b_0`` written forward; teeth reversed last-forwarded first, each by Revolve on the slots left."""
    c = _check_platform(platform, "one-after-another")
    c = _slots(graph, platform)
    last = graph.p - 1
    sizes = _sizes(graph, last)
    teeth = [b for b in range(graph.p) if sizes[b] > 0]
    K = len(teeth)
    segments = [(b, 0, sizes[b] - 1, c - K + 1 + i, 0) for i, b in enumerate(reversed(teeth))]
    return _plan_from_segments(graph, platform, last, segments, c - K)


def even_split_plan(graph: JoinGraph, platform: Platform) -> JoinPlan:
    """Each tooth reversed optimally inside its own ``floor(c / parts)`` slots (``parts = p``, plus one for a handle
    with steps); the handle gets the slots the teeth do not hold."""
    _check_platform(platform, "even-split")
    c = _slots(graph, platform)
    parts = graph.p + (1 if graph.handle.length else 0)
    share = c // parts
    if share < 1:
        raise ScheduleDoesNotFit(f"even-split: {c} slots for {parts} parts leave each part {share}")
    last = graph.p - 1
    sizes = _sizes(graph, last)
    segments = []
    for b in reversed(range(graph.p)):
        G = _costs(graph, platform, b).segment_costs()
        W = _tooth_table(G, sizes[b], share)
        k = int(np.argmin(W[share])) if sizes[b] else 0
        segments += _tooth_segments(G, sizes[b], share, k, b)
    return _plan_from_segments(graph, platform, last, segments, c - len(segments))


JOIN_PLANNERS = {
    "optimal": optimal_join_plan,
    "sequential": sequential_join_plan,
    "one-after-another": one_after_another_plan,
    "even-split": even_split_plan,
}


def join_plan(name: str, graph: JoinGraph, platform: Platform) -> JoinPlan:
    """The :class:`JoinPlan` of planner ``name`` (a key of :data:`JOIN_PLANNERS`)."""
    if name not in JOIN_PLANNERS:
        raise ValueError(f"planner = {name!r}: unknown; choose one of {sorted(JOIN_PLANNERS)}")
    if not isinstance(graph, JoinGraph):
        raise ValueError(f"graph = {graph!r}: expected a checkpointing.joingraph.JoinGraph")
    if not isinstance(platform, Platform):
        raise ValueError(f"platform = {platform!r}: expected a checkpointing.Platform")
    return JOIN_PLANNERS[name](graph, platform)


def plan_join(name: str, graph: JoinGraph, platform: Platform) -> list:
    """A join-graph schedule (list of actions) by planner ``name``."""
    return join_plan(name, graph, platform).schedule()
