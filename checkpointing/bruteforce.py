"""Exhaustive search over all valid schedules of a small chain: the reference the planners are tested against.

A* shortest path (Dijkstra guided by an admissible lower bound, reopening states) over the states of the simulator's machine -- (working state, next backward step, set of
stored ``(index, level)`` pairs) -- with one edge per action: one forward step, a write, a read, the next backward
step.  Edge weights are the action costs of :mod:`checkpointing.simulator`; a multi-step ``Advance`` is a path of
one-step edges of the same total cost.  Reductions that keep the search exact: discards are free and only matter
when a slot is needed, so a discard is only taken together with the write into a full level (delaying a discard
never costs anything); a stored ``x_i`` with ``i`` at or above the next backward step can never be used again and
is discarded at once; the working state is never advanced beyond the next backward step, and a state is never
read over itself.  Nothing here knows about Revolve or H-Revolve.

The number of states grows like ``l * prod_k C(l + 1, c_k)``: use it for ``l <= 8`` and a few slots.
"""
from __future__ import annotations

import heapq
import itertools

from .actions import Advance, Backward, Discard, Read, Write
from .platform import Platform
from .simulator import check_step_costs

__all__ = ["exhaustive_search"]


def exhaustive_search(steps: int, platform: Platform, *, forward_costs=None, backward_costs=None,
                      max_states: int = 2_000_000) -> tuple[float, list]:
    """The least makespan over all valid schedules, and one schedule achieving it."""
    l = steps
    uf = [platform.uf] * l if forward_costs is None else list(check_step_costs("forward_costs", forward_costs, l))
    ub = [platform.ub] * (l + 1) if backward_costs is None else list(
        check_step_costs("backward_costs", backward_costs, l + 1))
    caps = [min(c, l + 1) for c in platform.capacities]
    wcost, rcost = platform.write_costs, platform.read_costs
    K = platform.n_levels

    # A* lower bound on the cost still to pay: the backward steps nb..0, one read before each of Fbar_{nb-1..0},
    # and the forward steps from the nearest usable state up to x_nb.
    backward_left = [sum(ub[:i + 1]) for i in range(l + 1)]
    prefix = [0.0]
    for cost in uf:
        prefix.append(prefix[-1] + cost)
    usable_reads = [rc for rc, c in zip(rcost, caps) if c >= 1]
    cheapest_read = min(usable_reads) if usable_reads else 0.0

    def still_to_pay(working, nb, stored):
        if nb < 0:
            return 0.0
        reach = [prefix[nb] - prefix[working]] if working is not None else []
        reach += [rcost[k] + prefix[nb] - prefix[i] for i, k in stored]
        return backward_left[nb] + nb * cheapest_read + min(reach, default=0.0)

    start = (0, l, frozenset())
    dist = {start: 0.0}
    parent = {start: None}
    tie = itertools.count()
    heap = [(still_to_pay(*start), next(tie), 0.0, start)]
    while heap:
        _, _, d, state = heapq.heappop(heap)
        if d > dist[state]:
            continue
        working, nb, stored = state
        if nb < 0:
            return d, _path(parent, state)
        if len(dist) > max_states:
            raise RuntimeError(f"exhaustive_search: more than {max_states} states; use a smaller instance")
        moves = []
        if working is not None:
            if working < nb:
                moves.append((uf[working], [Advance(working, working + 1)], (working + 1, nb, stored)))
            if working == nb:
                dropped = sorted(p for p in stored if p[0] >= nb)
                moves.append((ub[nb], [Backward(nb)] + [Discard(i, k) for i, k in dropped],
                               (None, nb - 1, stored.difference(dropped))))
            for k in range(K):
                if (working, k) in stored:
                    continue
                held = [p for p in stored if p[1] == k]
                if len(held) < caps[k]:
                    moves.append((wcost[k], [Write(working, k)], (working, nb, stored | {(working, k)})))
                else:  # a full level: free one of its slots first
                    for p in held:
                        moves.append((wcost[k], [Discard(*p), Write(working, k)],
                                      (working, nb, (stored - {p}) | {(working, k)})))
        for i, k in stored:
            if i != working:
                moves.append((rcost[k], [Read(i, k)], (i, nb, stored)))
        for cost, actions, nxt in moves:
            nd = d + cost
            if nd < dist.get(nxt, float("inf")):
                dist[nxt] = nd
                parent[nxt] = (state, actions)
                heapq.heappush(heap, (nd + still_to_pay(*nxt), next(tie), nd, nxt))
    raise RuntimeError(f"exhaustive_search: no valid schedule for l = {l} on capacities {platform.capacities}")


def _path(parent, state) -> list:
    pieces = []
    while parent[state] is not None:
        state, actions = parent[state]
        pieces.append(actions)
    return [action for actions in reversed(pieces) for action in actions]
