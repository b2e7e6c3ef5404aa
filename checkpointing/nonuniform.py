"""Optimal multilevel schedules when forward and backward steps have different costs.

Time steps of a nonlinear model cost different amounts (a model whose steps solve a nonlinear system
by fixed-point or Newton iterations needs more of them in some steps than in others).  With ``F_i`` costing ``uf_i`` (``i < l``) and ``Fbar_i`` costing ``ub_i`` (``i <= l``), the
H-Revolve recursion (Herrmann & Pallez 2020, section 3; :mod:`checkpointing.hrevolve`) must know *where* a
sub-chain starts, so its tables are indexed by intervals ``[a, a + n]`` instead of lengths ``n``.  With
``U(a, b) = uf_a + ... + uf_{b-1}`` (the cost of advancing ``x_a -> x_b``) and ``V(a, b) = ub_a + ... + ub_b``:

    Optbar_k(a, 0, m) = ub_a
    Optbar_k(a, n, m) = min( V(a, a+n) + sum_{i=1..n} U(a, a+i) + n r_k,                  recompute all
                             Opt_{k-1}(a, n, c_{k-1}),                                     (k > 0) copy down
                             min_{1 <= j < n} U(a, a+j) + Opt_k(a+j, n-j, m-1) + r_k + Optbar_k(a, j-1, m) )
    Opt_k(a, n, m)    = min( Opt_{k-1}(a, n, c_{k-1}), w_k + Optbar_k(a, n, m) ),   Opt_{-1} = +inf,

and the optimum is ``Opt_{K-1}(0, l, c_{K-1})`` (``ub_0`` for ``l = 0``).  With equal costs it is the uniform DP.

**When it is optimal.**  On one level the decomposition argument of Griewank & Walther / Herrmann & Pallez uses no
property of the costs except that they add up, and the tests confirm it against exhaustive search with per-step
costs.  On several levels the recursion only builds *hierarchical* schedules (a sub-chain's first state sits on a
level at least as slow as every checkpoint after it), which Herrmann & Pallez prove optimal for uniform costs.
With per-step costs that fails when level 0 is not free: for ``l = 6``, levels ``2:0.5:0.5`` and ``2:1:3``
(``c:w:r``), ``uf = (1, 3, 8, 8, 0.25, 0.25)``, ``ub = (4, 4, 0, 0, 4, 1, 0)``, exhaustive search keeps ``x_0``
in RAM and ``x_2, x_3`` on level 1 for 45.75 where the DP gives 46.25.  On hierarchical platforms with a free
level 0 (``w_0 = r_0 = 0``) it matched exhaustive search on every instance we tried (tests), without a proof.
Otherwise the value is that of the best hierarchical schedule, an upper bound.

As in :mod:`checkpointing.hrevolve`, a level with ``c_k >= l`` is unbounded (one ``m`` entry) and, on platforms
whose costs do not grow with the level, the best level order is taken.

Cost: ``O(l^3 (M_0 + ... + M_{K-1}) / 6)`` time (``l^2/2`` intervals times ``n`` splits, vectorised over the
start ``a`` and the split ``j``) and ``O(l^2 (M_0 + ... + M_{K-1}))`` memory (20 bytes per entry), with ``M_k``
as in :mod:`checkpointing.hrevolve`; meant for ``l`` up to a few hundred steps.
"""
from __future__ import annotations

import numpy as np

from .hrevolve import COPY_DOWN, RECOMPUTE_ALL, HRevolveTables, _LevelTable, in_best_level_order
from .platform import Platform
from .simulator import check_step_costs

__all__ = ["NonuniformTables", "nonuniform_tables", "nonuniform_schedule", "nonuniform_makespan", "table_bytes"]


class NonuniformTables(HRevolveTables):
    """The interval tables ``Opt_k(a, n, m)``, ``Optbar_k(a, n, m)`` for per-step costs."""

    def __init__(self, steps: int, platform: Platform, forward_costs, backward_costs, order=None):
        self.forward_prefix = np.concatenate(([0.0], np.cumsum(forward_costs)))   # U(a, b) = P[b] - P[a]
        self.backward_costs = np.asarray(backward_costs, dtype=float)
        super().__init__(steps, platform, order)

    def _key_shape(self) -> tuple:
        return (self.steps + 1, self.steps + 1)

    def _key(self, a: int, n: int) -> tuple:
        return (a, n)

    def _ub(self, a: int) -> float:
        return float(self.backward_costs[a])

    def _fill(self, down, level) -> _LevelTable:
        return _fill_intervals(self.steps, down, level.capacity, level.write_cost, level.read_cost,
                               self.forward_prefix, self.backward_costs)


def _fill_intervals(l, down, capacity, w, r, P, ub) -> _LevelTable:
    """Fill ``Opt_k[m, a, n]`` and ``Optbar_k[m, a, n]``; ``down[a, n] = Opt_{k-1}(a, n, c_{k-1})``."""
    unbounded = capacity >= l
    n_m = 2 if unbounded else int(capacity) + 1
    shape = (n_m, l + 1, l + 1)
    opt, optbar = np.full(shape, np.inf), np.full(shape, np.inf)
    choice = np.zeros(shape, dtype=np.int32)
    opt[0] = down
    table = _LevelTable(unbounded, n_m - 1, opt, optbar, choice)
    if n_m == 1:
        return table
    right = opt[1:2] if unbounded else opt[0:n_m - 1]
    B = np.concatenate(([0.0], np.cumsum(ub)))        # V(a, b) = B[b+1] - B[a]
    PP = np.concatenate(([0.0], np.cumsum(P)))        # sum_{i=1..n} P[a+i] = PP[a+n+1] - PP[a+1]
    optbar[1:, :, 0] = ub
    opt[1:, :, 0] = np.minimum(down[:, 0], w + ub)
    for n in range(1, l + 1):
        a = np.arange(0, l - n + 1)
        recompute_all = B[a + n + 1] - B[a] + PP[a + n + 1] - PP[a + 1] - n * P[a] + n * r
        best = np.broadcast_to(recompute_all, (n_m - 1, a.size)).copy()
        pick = np.full(best.shape, RECOMPUTE_ALL, dtype=np.int32)
        copy_down = down[a, n]
        better = copy_down < best
        best = np.where(better, copy_down, best)
        pick = np.where(better, COPY_DOWN, pick)
        if n >= 2:
            j = np.arange(1, n)[None, :]
            A = a[:, None]
            cand = right[:, A + j, n - j] + optbar[1:, A, j - 1] + (P[A + j] - P[A] + r)
            jbest = cand.argmin(axis=2)
            val = np.take_along_axis(cand, jbest[:, :, None], axis=2)[:, :, 0]
            better = val < best
            best = np.where(better, val, best)
            pick = np.where(better, jbest + 1, pick)
        optbar[1:, a, n] = best
        choice[1:, a, n] = pick
        opt[1:, a, n] = np.minimum(down[a, n], w + best)
    return table


MAX_TABLE_BYTES = 2**31


def table_bytes(steps: int, platform: Platform) -> int:
    """Memory of the interval tables: 20 bytes per entry ``(m, a, n)`` on every level (two float64, one int32)."""
    entries = sum(2 if c >= steps else int(c) + 1 for c in platform.capacities)
    return 20 * entries * (steps + 1) ** 2


def nonuniform_tables(steps: int, platform: Platform, forward_costs=None, backward_costs=None) -> NonuniformTables:
    """The interval tables for per-step costs (default: the platform's ``uf``/``ub`` for every step).

    Raises ``ValueError`` before allocating if they would need more than ``MAX_TABLE_BYTES``."""
    need = table_bytes(steps, platform)
    if need > MAX_TABLE_BYTES:
        raise ValueError(f"steps = {steps} with capacities {platform.capacities}: the non-uniform DP would need "
                         f"{need / 2**30:.1f} GiB of tables (limit {MAX_TABLE_BYTES / 2**30:.0f} GiB); it grows "
                         "like l^2 * sum_k min(c_k + 1, 2 if unbounded)")
    fwd = np.full(steps, platform.uf) if forward_costs is None else check_step_costs(
        "forward_costs", forward_costs, steps)
    bwd = np.full(steps + 1, platform.ub) if backward_costs is None else check_step_costs(
        "backward_costs", backward_costs, steps + 1)
    return in_best_level_order(lambda order: NonuniformTables(steps, platform, fwd, bwd, order), platform)


def nonuniform_makespan(steps: int, platform: Platform, forward_costs=None, backward_costs=None) -> float:
    """The optimal makespan ``Opt_{K-1}(0, l, c_{K-1})`` under per-step costs."""
    return nonuniform_tables(steps, platform, forward_costs, backward_costs).value()


def nonuniform_schedule(steps: int, platform: Platform, forward_costs=None, backward_costs=None) -> list:
    """An optimal schedule under per-step costs ``forward_costs[i]`` (``F_i``) and ``backward_costs[i]``
    (``Fbar_i``); simulate it with the same costs to see its makespan."""
    return nonuniform_tables(steps, platform, forward_costs, backward_costs).schedule()
