"""Join-graph planners (:mod:`checkpointing.joingraph`): the optimum (:mod:`checkpointing.join_optimal`), the best
schedule reversing the teeth one after another, and the heuristics the optimum is compared with.

**Teeth one after another** (``"sequential"``): the optimum over three-phase schedules whose backward phase reverses
the teeth one after the other (in the best order), which is the label DP of :mod:`checkpointing.join_optimal` with
each tooth's labels contiguous.  Per tooth and top label, a DP over the tooth's segments; then a DP over subsets of
teeth: ``O(p c^2 l^2 + 2^p p c^2)``.  It is exact for one tooth, never below the optimum, and equal to it on most
small cases (interleaving the teeth's segments gains little: see ``docs/join_graphs.md`` for the measured gaps).

**Heuristics** (what one would do without the paper):

* ``"one-after-another"``: write only ``x^b_0`` during the forward phase, reverse the handle with the ``c - p``
  slots left, then reverse the teeth one after another (last forwarded first), each by Revolve (H-Revolve, one
  level) from ``x^b_0`` with the slots left: ``c - p + 1``, ``c - p + 2``, ..., ``c``;
* ``"even-split"``: ``c`` split evenly between the teeth (and the handle if it has steps); each tooth is reversed
  optimally (Revolve) inside its own share, its first forward sweep being the forward phase; the handle gets the
  rest.

These use level 0 of the platform only (``c`` slots, write and read costs ``w``, ``r``); the optimum also plans on
two levels.
"""
from __future__ import annotations

import math

import numpy as np

from .emit import ScheduleDoesNotFit
from .join_optimal import DPTooLarge, cost_unit, join_lower_bound, optimal_join_plan
from .join_schedule import (JoinPlan, bonus_cost, chain_costs, check_level0, checkpoints_of, forward_cost,
                            forward_order, last_candidates, sizes_to_cover, slots_of, tooth_segments, tooth_table,
                            turn_cost)
from .joingraph import JoinGraph
from .platform import Platform

__all__ = ["JoinPlan", "JOIN_PLANNERS", "plan_join", "join_plan", "optimal_join_plan", "certified_optimal_plan",
           "sequential_join_plan", "one_after_another_plan", "even_split_plan"]


# ------------------------------------------------------------------------------- teeth one after another ---
def sequential_join_plan(graph: JoinGraph, platform: Platform) -> JoinPlan:
    """The optimum over three-phase schedules that reverse the teeth one after another (module docstring)."""
    check_level0(platform, "join sequential")
    c = slots_of(graph, platform)
    p = graph.p
    G = [chain_costs(graph, platform, b).segment_costs() for b in range(p)]
    best = None
    for last in last_candidates(graph):
        sizes = sizes_to_cover(graph, last)
        W = [tooth_table(G[b], sizes[b], c) for b in range(p)]
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
        base = forward_cost(graph, platform) + bonus_cost(graph, platform, last)
        for (mask, K), (val, _) in layers[-1].items():
            total = base + turn_cost(graph, platform, c - K) + val
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
        segments += tooth_segments(G[b], sizes[b], c - j, k, b)
    return JoinPlan(graph, platform, forward_order(graph, last), checkpoints_of(segments, p), c - K, segments,
                    total)


# ---------------------------------------------------------------------------------------------- heuristics ---
def _plan_from_segments(graph, platform, last, segments, handle_slots) -> JoinPlan:
    value = (forward_cost(graph, platform) + bonus_cost(graph, platform, last)
             + turn_cost(graph, platform, handle_slots)
             + sum(chain_costs(graph, platform, b).segment_costs()[m, n + 1] for b, _, n, m, _ in segments))
    if not math.isfinite(value):
        raise ScheduleDoesNotFit(f"no schedule of {graph.describe()} fits {slots_of(graph, platform)} slots with "
                                 "this heuristic")
    return JoinPlan(graph, platform, forward_order(graph, last), checkpoints_of(segments, graph.p), handle_slots,
                    segments, float(value))


def one_after_another_plan(graph: JoinGraph, platform: Platform) -> JoinPlan:
    """Only ``x^b_0`` written forward; teeth reversed last-forwarded first, each by Revolve on the slots left."""
    c = check_level0(platform, "one-after-another")
    c = slots_of(graph, platform)
    last = graph.p - 1
    sizes = sizes_to_cover(graph, last)
    teeth = [b for b in range(graph.p) if sizes[b] > 0]
    K = len(teeth)
    segments = [(b, 0, sizes[b] - 1, c - K + 1 + i, 0) for i, b in enumerate(reversed(teeth))]
    return _plan_from_segments(graph, platform, last, segments, c - K)


def even_split_plan(graph: JoinGraph, platform: Platform) -> JoinPlan:
    """Each tooth reversed optimally inside its own ``floor(c / parts)`` slots (``parts = p``, plus one for a handle
    with steps); the handle gets the slots the teeth do not hold."""
    check_level0(platform, "even-split")
    c = slots_of(graph, platform)
    parts = graph.p + (1 if graph.handle.length else 0)
    share = c // parts
    if share < 1:
        raise ScheduleDoesNotFit(f"even-split: {c} slots for {parts} parts leave each part {share}")
    last = graph.p - 1
    sizes = sizes_to_cover(graph, last)
    segments = []
    for b in reversed(range(graph.p)):
        G = chain_costs(graph, platform, b).segment_costs()
        W = tooth_table(G, sizes[b], share)
        k = int(np.argmin(W[share])) if sizes[b] else 0
        segments += tooth_segments(G, sizes[b], share, k, b)
    return _plan_from_segments(graph, platform, last, segments, c - len(segments))


def certified_optimal_plan(graph: JoinGraph, platform: Platform) -> JoinPlan:
    """The optimum: the label DP (:func:`~checkpointing.join_optimal.optimal_join_plan`) where its table fits;
    beyond, on one level, the best schedule reversing the teeth one after another when
    :func:`~checkpointing.join_optimal.join_lower_bound` proves it optimal (among three-phase schedules, the DP's
    class): the bound is within less than one cost unit of it when every cost is a multiple of that unit
    (:func:`~checkpointing.join_optimal.cost_unit`, so is every makespan), within ``1e-9`` relative otherwise.  If the bound stays below, raises
    :class:`~checkpointing.emit.ScheduleDoesNotFit` giving both numbers."""
    try:
        return optimal_join_plan(graph, platform)
    except DPTooLarge as too_large:
        if platform.n_levels != 1:
            raise
        plan = sequential_join_plan(graph, platform)
        unit = cost_unit(graph, platform)
        slack = 0.999 * unit if unit else 1e-9 * max(1.0, plan.value)
        bound = join_lower_bound(graph, platform, upper=plan.value, tolerance=0.99 * slack)
        if bound < plan.value - slack:
            raise ScheduleDoesNotFit(f"{too_large}; the teeth reversed one after another give {plan.value:g} and "
                                     f"the lower bound is {bound:g}, so that schedule is not proven optimal") from None
        plan.certificate = bound
        return plan


JOIN_PLANNERS = {
    "optimal": certified_optimal_plan,
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
