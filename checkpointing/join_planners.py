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

Only level 0 of the platform is used (one level of ``c`` slots, write and read costs ``w``, ``r``).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from .actions import HANDLE, Advance, Backward, Discard, Join, Read, Start, Write
from .emit import ScheduleDoesNotFit
from .hrevolve import HRevolveTables
from .joingraph import JoinGraph
from .platform import Level, Platform

__all__ = ["JoinPlan", "JOIN_PLANNERS", "plan_join", "join_plan", "optimal_join_plan", "sequential_join_plan",
           "one_after_another_plan", "even_split_plan", "ChainCosts"]

MAX_ENTRIES = 30_000_000


@dataclass
class JoinPlan:
    """A three-phase schedule in compact form: the teeth in forward order (the last one's end stays the working
    state when the handle has length 0), the forward checkpoints of each tooth, the handle's slots, and the
    segments ``(tooth, start, length, slots)`` in the order they are reversed.  ``value`` is its makespan as the
    planner computed it (the simulator's cost of :meth:`schedule` must equal it)."""

    graph: JoinGraph
    platform: Platform
    order: list[int]
    checkpoints: dict
    handle_slots: int
    segments: list
    value: float

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
            for s in self.checkpoints[b]:
                if s > at:
                    out.append(Advance(at, s, b))
                    at = s
                out.append(Write(s, 0, b))
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
            out += _on_branch(_costs(graph, platform, HANDLE).schedule(h, self.handle_slots), HANDLE)
        for b, a, n, m in self.segments:
            chain = _costs(graph, platform, b)
            out += [Read(a, 0, b)] + _on_branch(chain.schedule(n, m, start=a, stored=True), b) + [Discard(a, 0, b)]
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
        """``G[m, t] = r + Optbar(t - 1, m)`` for ``m = 0 .. c`` and ``t = 0 .. steps + 1`` (``inf`` for ``m = 0``
        or ``t = 0``): the cost of reading a segment's first state and reversing its ``t`` states."""
        G = np.full((self.c + 1, self.steps + 2), np.inf)
        for m in range(1, self.c + 1):
            G[m, 1:] = self.r + self._level.optbar[self._row(m), :self.steps + 1]
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


def _turn(graph, platform, slots: int) -> float:
    """The handle's reversal with ``slots`` slots (``ub_H`` for a handle of length 0)."""
    h = graph.handle.length
    if h == 0:
        return graph.costs(HANDLE, platform)[1]
    return _costs(graph, platform, HANDLE).opt(h, slots)


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
    for b, a, _, _ in segments:
        cps[b].append(a)
    return {b: sorted(v) for b, v in cps.items()}


def _check_platform(platform: Platform, name: str) -> int:
    c = platform.capacities[0]
    if c < 1:
        raise ScheduleDoesNotFit(f"{name}: level 0 has capacity {c}; join graphs are planned on level 0")
    return c


# ---------------------------------------------------------------------------------------------- the optimum ---
def optimal_join_plan(graph: JoinGraph, platform: Platform, max_entries: int = MAX_ENTRIES) -> JoinPlan:
    """The optimal three-phase schedule (module docstring): the label DP over covered prefixes of all teeth."""
    _check_platform(platform, "join optimum")
    c = _slots(graph, platform)
    w = platform.write_costs[0]
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
        D = np.full(shape, np.inf)
        D[(0,) * graph.p] = 0.0
        choices = []
        base = _forward_cost(graph, platform) + _bonus(graph, platform, last)
        target = tuple(sizes)
        for j in range(c + 1):
            K = j
            total = base + K * w + _turn(graph, platform, c - K) + D[target]
            if math.isfinite(total) and (best is None or total < best[0] - 1e-12):
                best = (total, last, sizes, K, list(choices))
            if j == c or not np.isfinite(D).any():
                break
            new, pick_b, pick_t = _label_step(D, G, c - j, sizes)
            choices.append((pick_b, pick_t))
            D = new
    if best is None:
        raise ScheduleDoesNotFit(f"join optimum: no schedule of {graph.describe()} fits {c} slots")
    total, last, sizes, K, choices = best
    segments = []
    s = list(sizes)
    for j in range(K - 1, -1, -1):
        pick_b, pick_t = choices[j]
        b, t = int(pick_b[tuple(s)]), int(pick_t[tuple(s)])
        s[b] -= t
        segments.append((b, s[b], t - 1, c - j))
    # segments were collected from label K-1 (reversed first) to 0 (reversed last): already in reversal order
    return JoinPlan(graph, platform, _forward_order(graph, last), _checkpoints_of(segments, graph.p), c - K,
                    segments, total)


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
        segments.append((tooth, start, s - start - 1, top - i + 1))
        s = start
    return segments


def sequential_join_plan(graph: JoinGraph, platform: Platform) -> JoinPlan:
    """The optimum over three-phase schedules that reverse the teeth one after another (module docstring)."""
    _check_platform(platform, "join sequential")
    c = _slots(graph, platform)
    w = platform.write_costs[0]
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
            total = base + K * w + _turn(graph, platform, c - K) + val
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
             + len(segments) * platform.write_costs[0] + _turn(graph, platform, handle_slots)
             + sum(_costs(graph, platform, b).segment_costs()[m, n + 1] for b, _, n, m in segments))
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
    segments = [(b, 0, sizes[b] - 1, c - K + 1 + i) for i, b in enumerate(reversed(teeth))]
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
