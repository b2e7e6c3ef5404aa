"""Exhaustive search over all valid schedules of a small join graph: the reference the join planners are tested
against.

A* (Dijkstra guided by an admissible bound) over the states of :func:`checkpointing.joingraph.simulate_join`'s
machine -- working state, next backward step of every branch, which branches have started and joined, whether
``y_0`` is still in the accumulator, the set of stored ``(branch, index, level)`` -- with one edge per action
(``Start``, ``Join``, one forward step, a write, a read, a backward step).  It knows nothing of phases, segments or
Revolve.  Exact reductions, as in :mod:`checkpointing.bruteforce`: discards only together with a write into a full
level; a stored state at or above its branch's next backward step is dropped once that step ran; the working state
never advances beyond its branch's next backward step; a state is never read over itself.  Use it for a few teeth of
a few steps and a few slots.
"""
from __future__ import annotations

import heapq
import itertools

from .actions import HANDLE, Advance, Backward, Discard, Join, Read, Start, Write
from .bruteforce import _path
from .joingraph import JoinGraph
from .platform import Platform

__all__ = ["exhaustive_join_search"]


def exhaustive_join_search(graph: JoinGraph, platform: Platform, *, max_states: int = 3_000_000) -> tuple[float, list]:
    """The least makespan over all valid schedules of ``graph`` on ``platform``, and one schedule achieving it."""
    p = graph.p
    branches = list(range(p)) + [HANDLE]
    col = {b: i for i, b in enumerate(branches)}           # position of a branch in the tuples below
    length = [graph.branch(b).length for b in branches]
    uf = [graph.costs(b, platform)[0] for b in branches]
    ub = [graph.costs(b, platform)[1] for b in branches]
    K = platform.n_levels
    caps = [min(c, sum(length) + len(length)) for c in platform.capacities]
    wcost, rcost = platform.write_costs, platform.read_costs
    H = col[HANDLE]
    all_joined = (1 << p) - 1

    def bound(state):
        working, nb, started, joined, acc, stored = state
        rest = sum(ub[i] * (nb[i] + 1) for i in range(len(branches)))
        for b in range(p):                                # forward steps still needed to join
            if not joined >> b & 1:
                have = [i for (bb, i, _) in stored if bb == b]
                if working is not None and working[0] == b:
                    have.append(working[1])
                rest += uf[b] * (length[b] - max(have, default=0))
        return rest

    start = (None, tuple(length), 0, 0, False, frozenset())
    dist = {start: 0.0}
    parent = {start: None}
    tie = itertools.count()
    heap = [(bound(start), next(tie), 0.0, start)]
    while heap:
        _, _, d, state = heapq.heappop(heap)
        if d > dist[state]:
            continue
        working, nb, started, joined, acc, stored = state
        if all(x < 0 for x in nb):
            return d, _path(parent, state)
        if len(dist) > max_states:
            raise RuntimeError(f"exhaustive_join_search: more than {max_states} states; use a smaller instance")
        moves = []
        for b in branches:
            i = col[b]
            if started >> i & 1:
                continue
            if b != HANDLE:
                moves.append((0.0, [Start(b)], ((i, 0), nb, started | 1 << i, joined, acc, stored)))
            elif joined == all_joined and acc:
                moves.append((0.0, [Start(HANDLE)], ((H, 0), nb, started | 1 << H, joined, False, stored)))
        if working is not None:
            i, x = working
            b = branches[i]
            if b != HANDLE and x == length[i] and not joined >> i & 1:
                done = joined | 1 << i
                moves.append((0.0, [Join(b)], (working, nb, started, done, done == all_joined, stored)))
            if x < nb[i]:
                moves.append((uf[i], [Advance(x, x + 1, b)], ((i, x + 1), nb, started, joined, acc, stored)))
            if x == nb[i] and (b == HANDLE or nb[H] < 0) and (b != HANDLE or joined == all_joined):
                moves.append(_backward(b, i, x, nb, started, joined, acc, stored, ub))
            for k in range(K):
                if (i, x, k) in stored:
                    continue
                held = [s for s in stored if s[2] == k]
                if len(held) < caps[k]:
                    moves.append((wcost[k], [Write(x, k, b)], (working, nb, started, joined, acc,
                                                                stored | {(i, x, k)})))
                else:
                    for s in held:
                        moves.append((wcost[k], [Discard(s[1], k, branches[s[0]]), Write(x, k, b)],
                                      (working, nb, started, joined, acc, (stored - {s}) | {(i, x, k)})))
        if length[H] == 0 and acc and nb[H] == 0:          # the functional of the join reads the accumulator
            moves.append((ub[H], [Backward(0, HANDLE)], (working, _dec(nb, H), started, joined, False, stored)))
        for (i, x, k) in stored:
            if working != (i, x):
                moves.append((rcost[k], [Read(x, k, branches[i])], ((i, x), nb, started, joined, acc, stored)))
        for cost, actions, nxt in moves:
            nd = d + cost
            if nd < dist.get(nxt, float("inf")):
                dist[nxt] = nd
                parent[nxt] = (state, actions)
                heapq.heappush(heap, (nd + bound(nxt), next(tie), nd, nxt))
    raise RuntimeError(f"exhaustive_join_search: no valid schedule of {graph.describe()} on capacities "
                       f"{platform.capacities}")


def _dec(nb, i):
    return nb[:i] + (nb[i] - 1,) + nb[i + 1:]


def _backward(b, i, x, nb, started, joined, acc, stored, ub):
    """``Backward(x)`` on branch ``b`` (column ``i``) from the working state; states at or above ``x`` of that
    branch are useless afterwards and dropped."""
    dropped = sorted(s for s in stored if s[0] == i and s[1] >= x)
    actions = [Backward(x, b)] + [Discard(s[1], s[2], b) for s in dropped]
    return ub[i], actions, (None, _dec(nb, i), started, joined, acc, stored.difference(dropped))
