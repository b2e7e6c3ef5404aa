"""The optimal three-phase join schedule: a dynamic programme over segment labels (docs/join_graphs.md).

Beaumont, Herrmann, Pallez & Shilova (Phil. Trans. R. Soc. A 378: 20190049, 2020) prove that with bounded memory
and a bounded number of teeth an optimal schedule of a join graph is found in polynomial time, from properties of
the backward phase (stability, checkpoint persistence; checked by :func:`~checkpointing.joingraph.simulate_join`)
that give it three phases:

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

    G_b(m, t) = w + r + Optbar_b(t - 1, m)    (write x_a forward, read it back, then H-Revolve's Optbar).

The ``K`` segments are reversed one after the other, so the one reversed last has ``m = c`` slots, the one before
``c - 1``, ..., the first ``c - K + 1``.  Within a tooth the highest segment goes first.  Call ``j = 0 .. K-1`` the
*label* of a segment counted from the last one reversed: a tooth's labels increase from its bottom segment
upwards, and a tooth's cost depends only on the *set* of labels it gets (any lengths given to its labels can be laid
out bottom-up in label order).  So the backward phase is a dynamic programme over labels and covered prefixes
``s_b`` (states ``x^b_0 .. x^b_{s_b - 1}`` covered by segments with labels ``< j``):

    D_0(0) = 0,   D_{j+1}(s) = min_b min_{1 <= t <= s_b} D_j(s - t e_b) + G_b(c - j, t),

    makespan = sum_b l_b uf_b + min_K [ Turn(c - K) + D_K(S) ],   S_b = l_b + 1.

With a handle of length 0 the working state ``x^{b*}_{l_{b*}}`` of the tooth forwarded last survives the turn
(the join's functional reads the join accumulator), so ``Fbar^{b*}_{l_{b*}}`` runs at once for ``ub`` and that
tooth has ``S_{b*} = l_{b*}`` states left; the best ``b*`` is taken.  For one tooth this is H-Revolve's recursion
unrolled along its first forward sweep, so the optimum equals Revolve's (tests).

Cost: ``O(c * prod_b (S_b + 1) * sum_b S_b)`` time and ``O(c * prod_b (S_b + 1))`` memory: polynomial for a bounded
number of teeth, as the paper states, but ``l^p``: 2 teeth of 200 steps take a second, 4 teeth of 200 steps would
need ``2 * 10^9`` entries per label.  :func:`optimal_join_plan` refuses tables above ``max_entries``.

**Two levels**: level 0 with ``c`` slots and an unbounded level 1 whose writes and reads cost at least level 0's
(Disk-Revolve's setting).  A forward checkpoint may go to either level.  A level-1 segment holds no level-0 slot;
reversed while ``j`` level-0 checkpoints are held, it costs ``w_1 + r_1 + Optbar_1(t - 1)`` of H-Revolve's
two-level DP with ``c - j`` level-0 slots (its first state on level 1, its interior on both levels).  In the label
DP the labels count level-0 segments only, and between two labels any level-1 segments may be reversed, all with
the same ``c - j`` level-0 slots: one min-plus closure per tooth and label.  The turn is H-Revolve's two-level
``Opt(h)`` with ``c - K_0`` level-0 slots.  This is the optimum over three-phase schedules whose segments are
reversed by H-Revolve (hierarchical schedules, optimal per segment by Herrmann & Pallez 2020); that no other
schedule is cheaper is not proven, but exhaustive search over every valid schedule agreed on every two-level case
we ran (tests).
"""
from __future__ import annotations

import math

import numpy as np

from .emit import ScheduleDoesNotFit
from .hrevolve import is_hierarchical
from .join_schedule import (JoinPlan, bonus_cost, chain_costs, check_level0, checkpoints_of, disk_costs,
                            forward_cost, forward_order, last_candidates, sizes_to_cover, slots_of, tooth_table,
                            total_states, turn_cost)
from .joingraph import JoinGraph
from .platform import Platform

__all__ = ["optimal_join_plan", "join_lower_bound", "cost_unit", "DPTooLarge", "MAX_ENTRIES"]

MAX_ENTRIES = 30_000_000


class DPTooLarge(ScheduleDoesNotFit):
    """The label DP's table would exceed its limit (the message gives both)."""


def _check_levels(graph, platform) -> None:
    if platform.n_levels > 2 or (platform.n_levels == 2 and (platform.capacities[1] < total_states(graph)
                                                             or not is_hierarchical(platform))):
        raise ScheduleDoesNotFit(f"join optimum: plans on one level, or on two whose level 1 holds every state "
                                 f"(capacity >= {total_states(graph)}) and costs at least level 0's to write and "
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


def optimal_join_plan(graph: JoinGraph, platform: Platform, max_entries: int | None = None) -> JoinPlan:
    """The optimal three-phase schedule (module docstring): the label DP over covered prefixes of all teeth; on
    two levels, with level-1 segments between the labels."""
    _check_levels(graph, platform)
    if platform.n_levels == 1:
        check_level0(platform, "join optimum")
    c = slots_of(graph, platform)
    max_entries = MAX_ENTRIES if max_entries is None else max_entries
    best = None
    for last in last_candidates(graph):
        sizes = sizes_to_cover(graph, last)
        shape = tuple(s + 1 for s in sizes)
        entries = int(np.prod(shape)) * max(1, min(c, sum(sizes)))
        if entries > max_entries:
            raise DPTooLarge(f"join optimum: the DP over {graph.describe()} with c = {c} slots needs "
                                     f"{entries:.3g} table entries (limit {max_entries:.3g}); use the "
                                     "'sequential' planner")
        G = [chain_costs(graph, platform, b).segment_costs() for b in range(graph.p)]
        disk = [disk_costs(graph, platform, b) for b in range(graph.p)]
        blocks = [None if d is None else _disk_blocks(d.segment_costs()) for d in disk]
        D = np.full(shape, np.inf)
        D[(0,) * graph.p] = 0.0
        steps = []                                  # per layer j: (closure picks, label picks)
        base = forward_cost(graph, platform) + bonus_cost(graph, platform, last)
        for j in range(c + 1):
            closure = None
            if blocks[0] is not None:
                D, closure = _disk_closure(D, [C[c - j] for C, _ in blocks], sizes)
            total = base + turn_cost(graph, platform, c - j, blocks[0] is not None) + D[tuple(sizes)]
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
    return JoinPlan(graph, platform, forward_order(graph, last), checkpoints_of(segments, graph.p), c - K,
                    segments, total, disk=platform.n_levels == 2)


def _disk_closure(D, kernels, sizes):
    """Level-1 segments between two labels: along each tooth ``b``, ``min_t D(s - t e_b) + C_b(t)`` (``t = 0``:
    none), and the chosen ``t`` per state and tooth."""
    picks = []
    for b, size in enumerate(sizes):
        new = D.copy()
        pick = np.zeros(D.shape, dtype=np.int32)
        for t in range(1, size + 1):
            if math.isfinite(kernels[b][t]):
                region, better = _relax(D, new, b, t, kernels[b][t])
                pick[region][better] = t
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
            if math.isfinite(G[b][m, t]):
                region, better = _relax(D, new, b, t, G[b][m, t])
                pick_b[region][better] = b
                pick_t[region][better] = t
    return new, pick_b, pick_t


def _relax(D, target, b, t, cost):
    """``target(s) = min(target(s), D(s - t e_b) + cost)`` where ``s_b >= t``; returns the region updated (an
    index of ``target``) and where it improved there."""
    src, dst = [slice(None)] * D.ndim, [slice(None)] * D.ndim
    src[b], dst[b] = slice(0, D.shape[b] - t), slice(t, D.shape[b])
    candidate = D[tuple(src)] + cost
    view = target[tuple(dst)]
    better = candidate < view
    view[better] = candidate[better]
    return tuple(dst), better


def join_lower_bound(graph: JoinGraph, platform: Platform, upper: float | None = None, iterations: int = 150,
                     tolerance: float = 0.0) -> float:
    """A lower bound of the optimal three-phase makespan on level 0, for graphs too large for the label DP.

    For each number ``K`` of forward checkpoints (labels ``0 .. K-1``, each used by exactly one tooth) it takes the
    larger of two relaxations, then the least over ``K``:

    * *counts*: every tooth may take the best labels (``0, 1, ...``: the most slots), as if the teeth did not compete
      for them; only their number is shared: ``min_{sum k_b = K} sum_b W_b(c, k_b)`` (a knapsack; ``W_b`` the tooth
      table of :func:`~checkpointing.join_schedule.tooth_table`).  A tooth's cost with any ``k`` labels is at least
      its cost with the ``k`` best, since ``G`` does not increase with the slots;
    * *prices* (Lagrangian relaxation of "each label once"): for prices ``lambda_j``,
      ``sum_b min_M [V_b(M) + lambda(M)] - sum_j lambda_j`` is below the cost of every assignment (its penalty is 0
      there), and each tooth's minimum is a DP over labels and covered states.  The prices are raised by subgradient
      steps (Polyak's, towards ``upper``, a known makespan; without it only the first relaxation is used) until the
      bound is within ``tolerance`` of ``upper`` or ``iterations`` steps are done.

    When the bound reaches the makespan of a schedule, that schedule is optimal (:func:`~checkpointing.join_planners.
    certified_optimal_plan`).  Equal to the optimum for one tooth."""
    check_level0(platform, "join lower bound")
    c = slots_of(graph, platform)
    best = math.inf
    for last in last_candidates(graph):
        sizes = sizes_to_cover(graph, last)
        classes = {}                                # teeth with the same size and costs: (G, how many)
        counts = np.zeros(c + 1)
        counts[1:] = np.inf
        for b, size in enumerate(sizes):
            G = chain_costs(graph, platform, b).segment_costs()
            key = (size, graph.costs(b, platform))
            classes[key] = (G, classes.get(key, (G, 0))[1] + 1)
            tooth = tooth_table(G, size, c)[c]
            if size > 0:
                tooth[0] = np.inf
            counts = np.array([min(counts[K - k] + tooth[k] for k in range(K + 1)) for K in range(c + 1)])
        base = forward_cost(graph, platform) + bonus_cost(graph, platform, last)
        for K in range(c + 1):
            fixed = base + turn_cost(graph, platform, c - K)
            bound = fixed + counts[K]
            if upper is not None and K > 0 and math.isfinite(bound) and bound < upper:
                priced = [(size, G, n) for (size, _), (G, n) in classes.items() if size > 0]
                bound = max(bound, fixed + _priced_bound(priced, c, K, upper - fixed - tolerance, iterations))
            best = min(best, bound)
    return float(best)


def _priced_bound(teeth, c: int, K: int, target: float, iterations: int) -> float:
    """``max`` over the prices tried of ``sum_b min_M [V_b(M) + lambda(M)] - sum_j lambda_j`` for labels
    ``0 .. K-1``; ``teeth`` holds ``(size, G, count)`` per class of identical teeth."""
    prices = np.zeros(K)
    best, scale, stalled = -math.inf, 1.0, 0
    for _ in range(iterations):
        value, used = -prices.sum(), np.zeros(K)
        for size, G, count in teeth:
            v, u = _priced_tooth(G, size, c, prices)
            value, used = value + count * v, used + count * u
        if value > best + 1e-12:
            best, stalled = value, 0
        else:
            stalled += 1
            if stalled >= 5:
                scale, stalled = scale / 2, 0
        slope = used - 1.0                          # teeth using label j, minus the one allowed
        if best >= target or not slope.any() or not math.isfinite(value):
            break
        prices += scale * max(target - value, 1e-6) / float(slope @ slope) * slope
    return best


def _priced_tooth(G, size: int, c: int, prices):
    """``min_M [V(M) + prices(M)]`` over label sets ``M`` of ``0 .. K-1`` for one tooth of ``size`` states (a DP
    over labels: skip label ``j``, or give it the segment of ``t`` states above the covered ones), and the labels
    the minimiser uses (0/1 per label)."""
    K = len(prices)
    covered = np.full(size + 1, np.inf)
    covered[0] = 0.0
    states = np.arange(size + 1)
    diff = states[:, None] - states[None, :]
    valid = diff >= 1
    steps = []
    for j in range(K):
        options = covered[None, :] + np.where(valid, G[c - j][np.clip(diff, 0, size)], np.inf) + prices[j]
        below = np.argmin(options, axis=1)
        candidate = options[states, below]
        take = candidate < covered
        steps.append((take, below))
        covered = np.where(take, candidate, covered)
    used, s = np.zeros(K), size
    for j in range(K - 1, -1, -1):
        take, below = steps[j]
        if take[s]:
            used[j], s = 1.0, below[s]
    return covered[size], used


def cost_unit(graph: JoinGraph, platform: Platform) -> float | None:
    """The largest ``u`` in ``1, 1/2, 1/4, ..., 2^-10`` of which every step, read and write cost is a multiple (then
    every makespan is one too), or ``None``."""
    costs = [x for b in graph.branches() for x in graph.costs(b, platform)]
    costs += [x for level in platform.levels for x in (level.write_cost, level.read_cost)]
    for k in range(11):
        unit = 2.0 ** -k
        if all(abs(x / unit - round(x / unit)) < 1e-9 for x in costs):
            return unit
    return None
