"""H-Revolve: optimal schedules on ``K`` storage levels by dynamic programming.

Herrmann & Pallez, "H-Revolve: a framework for adjoint computation on synchronous hierarchical platforms",
ACM TOMS 46(2), 2020, section 3; the two-level case with an unbounded disk is Disk-Revolve (Aupy, Herrmann,
Hovland & Robert, "Optimal multistage algorithm for adjoint computation", SIAM J. Sci. Comput. 38(3), 2016).

For level ``k`` with ``c_k`` slots, write cost ``w_k`` and read cost ``r_k``, and a sub-chain of length ``n``
(the paper's ``l``) starting at the working state ``x_0``:

* ``Optbar_k(n, m)``: least cost when ``x_0`` is stored on level ``k``, ``m`` slots of level ``k`` are ours
  (``x_0``'s included), every faster level is empty, and ``x_0`` is still the working state;
* ``Opt_k(n, m)``: the same before ``x_0`` has been stored anywhere.

    Optbar_k(0, m) = ub
    Optbar_k(n, m) = min( (n+1) ub + n(n+1)/2 uf + n r_k,                        recompute all from x_0
                          Opt_{k-1}(n, c_{k-1}),                                 (k > 0) copy x_0 down
                          min_{1 <= j < n} j uf + Opt_k(n-j, m-1) + r_k + Optbar_k(j-1, m) )
    Opt_k(n, m)    = min( Opt_{k-1}(n, c_{k-1}), w_k + Optbar_k(n, m) ),   Opt_k(n, 0) = Opt_{k-1}(n, c_{k-1}),
    Opt_{-1} = +inf.

The split ``j`` advances to ``x_j``, reverses ``x_j .. x_n`` with ``x_j`` stored on level ``k`` (or lower), reads
``x_0`` back and reverses ``x_0 .. x_{j-1}``.  The optimum is ``Opt_{K-1}(l, c_{K-1})`` for ``l >= 1`` and
``ub`` for ``l = 0`` (nothing to store).  With one level, ``w = r = 0``, ``uf = 1`` and ``ub = 0`` it counts
Revolve's forward steps.  The recompute-all term is the paper's ``Optbar_0(l, 1)`` formula, allowed on every level
(it is the only option on a level whose faster levels have no slots).

Optimality: the DP builds hierarchical schedules (a sub-chain's first state sits on a level at least as slow as
every checkpoint after it), which is optimal when write and read costs grow with the level (the paper's
assumption; tests: exhaustive search over all valid schedules).  For other platforms see :func:`hrevolve_tables`.
A disk checkpoint may be read several times (Disk-Revolve's 1D-Revolve segments), so with an unbounded disk the
optimum depends on ``w_d`` and ``r_d`` separately, not only on ``w_d + r_d``.

Exactness shortcuts (the tables are the same as the plain recursion's):

* ``Optbar_k(n, m) = Optbar_k(n, n)`` for ``m > n``: a sub-chain of length ``n`` never holds more than ``n``
  checkpoints on one level.  So a level with ``c_k >= l`` is *unbounded*: its tables have one ``m`` entry and the
  recursion is one-dimensional (``Opt_k(n - j, m - 1)`` is the same entry), and a bounded level keeps
  ``M_k = c_k < l`` entries.
* a bounded level is filled after its (cheap, one-dimensional) unbounded twin: for ``m`` at least the number of
  level-``k`` slots ``p(n)`` the twin's optimal schedule holds at once, that schedule fits and nothing with ``m``
  slots is cheaper, so ``Optbar_k(n, m)`` is copied; only the rows ``m < p(n)`` are minimised over ``j``;
* the inner minimum over ``j`` is one numpy reduction per row ``n``, for all those ``m`` at once.

Cost: time ``O(l^2 (M_0 + ... + M_{K-1}))`` with ``M_k = min(c_k, p_k, l)`` for bounded levels (``p_k`` the largest
peak of the twin; ``c_k`` when the level is saturated) and ``M_k = 1`` for unbounded ones; memory ``O(l (M_0 + ... + M_{K-1}))``: two float64 tables and one int32 table of argmin choices
per level are kept (20 bytes per entry), and two float64 work arrays of the same size live while a level is
filled.  Reconstruction walks the argmin tables with an explicit stack in time linear
in the number of actions, so ``l = 10000`` works without touching the recursion limit.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from .actions import Advance, Backward, Discard, Read, Write
from .emit import ScheduleDoesNotFit, expand, recompute_all_actions
from .platform import Platform

__all__ = ["HRevolveTables", "hrevolve_tables", "hrevolve_schedule", "optimal_makespan", "is_hierarchical",
           "in_best_level_order"]

RECOMPUTE_ALL = 0  # choice codes in the argmin table; a code j >= 1 is the split j
COPY_DOWN = -1


@dataclass
class _LevelTable:
    unbounded: bool
    top: int                # the m index of Opt_k(., c_k)
    opt: np.ndarray         # [m, n] Opt_k  (non-uniform costs: [m, a, n])
    optbar: np.ndarray      # [m, n] Optbar_k (inf where undefined)
    choice: np.ndarray      # [m, n] argmin of Optbar_k

    def right_slots(self, m: int) -> int:
        """The ``m`` index of ``Opt_k(., m - 1)`` (the same index on an unbounded level)."""
        return m if self.unbounded else m - 1


class HRevolveTables:
    """The H-Revolve tables ``Opt_k``, ``Optbar_k`` for all lengths ``n <= l`` on one platform, with its levels
    taken in ``order`` (a permutation of the level indices, fastest first; default: as given).

    Subclasses with per-step costs (:class:`checkpointing.nonuniform.NonuniformTables`) index the tables by the
    sub-chain's start ``a`` too; ``_key``, ``_fill`` and ``_ub`` are the only places that differ."""

    def __init__(self, steps: int, platform: Platform, order: tuple[int, ...] | None = None):
        self.steps = steps
        self.platform = platform
        self.order = tuple(range(platform.n_levels)) if order is None else tuple(order)
        self.levels: list[_LevelTable] = []
        down = np.full(self._key_shape(), np.inf)
        for index in self.order:
            table = self._fill(down, platform.levels[index])
            self.levels.append(table)
            down = table.opt[table.top]

    # what depends on uniform costs ------------------------------------------------------------
    def _key_shape(self) -> tuple:
        return (self.steps + 1,)

    def _key(self, a: int, n: int) -> tuple:
        return (n,)

    def _ub(self, a: int) -> float:
        return self.platform.ub

    def _fill(self, down, level) -> _LevelTable:
        return _fill_level(self.steps, down, level.capacity, level.write_cost, level.read_cost,
                           self.platform.uf, self.platform.ub)

    # values and schedules -----------------------------------------------------------------------
    def value(self, n: int | None = None, start: int = 0) -> float:
        """The optimal makespan of the chain ``x_start .. x_{start+n}`` (default ``n = l``) on the platform."""
        n = self.steps - start if n is None else n
        if n == 0:
            return self._ub(start)
        t = self.levels[-1]
        return float(t.opt[(t.top,) + self._key(start, n)])

    def stored_value(self, n: int | None = None, start: int = 0) -> float:
        """``Optbar_{K-1}(n, c_{K-1})``: the optimum when ``x_start`` is already stored on the last level of the
        DP's order (one of its slots) and is the working state."""
        n = self.steps - start if n is None else n
        t = self.levels[-1]
        return float(t.optbar[(t.top,) + self._key(start, n)])

    def schedule(self, n: int | None = None, *, start: int = 0, stored: bool = False) -> list:
        """An optimal schedule for the chain ``x_start .. x_{start+n}`` (default ``n = l``), rebuilt from the
        argmin tables; with ``stored=True``, for the case of :meth:`stored_value` (no write of ``x_start``)."""
        n = self.steps - start if n is None else n
        if n == 0 and not stored:
            return [Backward(start)]
        if not math.isfinite(self.stored_value(n, start) if stored else self.value(n, start)):
            raise ScheduleDoesNotFit(f"hrevolve: no valid schedule for l = {n} with capacities "
                                     f"{self.platform.capacities}")
        levels, order, key = self.levels, self.order, self._key
        write_costs = [self.platform.write_costs[i] for i in order]

        def down(k, a, n):
            return float(levels[k - 1].opt[(levels[k - 1].top,) + key(a, n)]) if k > 0 else math.inf

        def rule(node):
            kind, a, n, k, m = node
            t, level = levels[k], order[k]
            if kind == "opt":
                if m >= 1 and write_costs[k] + t.optbar[(m,) + key(a, n)] <= down(k, a, n):
                    return [Write(a, level), ("optbar", a, n, k, m), Discard(a, level)]
                return [("opt", a, n, k - 1, levels[k - 1].top)]
            if n == 0:
                return [Backward(a)]
            c = int(t.choice[(m,) + key(a, n)])
            if c == RECOMPUTE_ALL:
                return recompute_all_actions(a, n, level)
            if c == COPY_DOWN:
                return [("opt", a, n, k - 1, levels[k - 1].top)]
            return [Advance(a, a + c), ("opt", a + c, n - c, k, t.right_slots(m)), Read(a, level),
                    ("optbar", a, c - 1, k, m)]

        top = len(levels) - 1
        return expand(("optbar" if stored else "opt", start, n, top, levels[top].top), rule)


def _fill_level(l, down, capacity, w, r, uf, ub) -> _LevelTable:
    """Fill ``Opt_k`` and ``Optbar_k`` for ``n = 0..l``; ``down[n] = Opt_{k-1}(n, c_{k-1})``.

    Tables are indexed ``[m, n]`` so that the minimum over ``j`` runs along contiguous memory.  A bounded level
    is filled after its unbounded twin: where ``m`` is at least the peak ``p(n)`` of level-``k`` slots used by
    the unbounded optimal schedule (``m >= p(n)``), that schedule fits and no schedule with ``m`` slots is
    cheaper, so the entry is copied; only the rows ``m < p(n)`` are minimised over ``j``."""
    unbounded = capacity >= l
    n_m = 2 if unbounded else int(capacity) + 1      # unbounded: m = 1 stands for "m = infinity"
    opt = np.full((n_m, l + 1), np.inf)
    optbar = np.full((n_m, l + 1), np.inf)
    choice = np.zeros((n_m, l + 1), dtype=np.int32)
    opt[0] = down
    table = _LevelTable(unbounded, n_m - 1, opt, optbar, choice)
    if n_m == 1:
        return table
    if unbounded:
        peak = np.full(l + 1, 2**30)                  # never copy: this is the reference
    else:
        twin = _fill_level(l, down, math.inf, w, r, uf, ub)
        peak = _peak_slots(twin, down, w)
    # rows 1..n_m-1 hold m = 1..M; the right part of a split uses row m-1 (bounded) or m (unbounded)
    right = slice(1, 2) if unbounded else slice(0, n_m - 1)
    optbar[1:, 0] = ub
    opt[1:, 0] = min(down[0], w + ub)
    # left[m, j-1] = Optbar_k(j-1, m) + j uf + r_k, appended as soon as row j-1 is final
    left = np.full((n_m - 1, l), np.inf)
    left[:, :1] = ub + uf + r
    buffer = np.empty((n_m - 1, l))
    for n in range(1, l + 1):
        computed = int(min(n_m - 1, peak[n] - 1))     # rows m = 1..computed need the minimum over j
        best = np.empty(n_m - 1)
        pick = np.empty(n_m - 1, dtype=np.int32)
        if computed < n_m - 1:
            best[computed:] = twin.optbar[1, n]
            pick[computed:] = twin.choice[1, n]
        best[:computed] = (n + 1) * ub + n * (n + 1) / 2 * uf + n * r
        pick[:computed] = RECOMPUTE_ALL
        if computed and down[n] < best[0]:
            best[:computed] = down[n]
            pick[:computed] = COPY_DOWN
        if computed and n >= 2:
            # j = 1..n-1: right part Opt_k(n-j, .) + [left part Optbar_k(j-1, m) + j uf + r_k]
            cand = buffer[:computed, :n - 1]
            r0 = right.start
            np.add(opt[r0:r0 + computed, n - 1:0:-1], left[:computed, :n - 1], out=cand)
            j = cand.argmin(axis=1)
            val = cand[np.arange(computed), j]
            better = val < best[:computed]
            best[:computed] = np.where(better, val, best[:computed])
            pick[:computed] = np.where(better, j + 1, pick[:computed])
        optbar[1:, n] = best
        choice[1:, n] = pick
        opt[1:, n] = np.minimum(down[n], w + best)
        if n < l:
            left[:, n] = best + (n + 1) * uf + r
    return table


def _peak_slots(twin: _LevelTable, down, w) -> np.ndarray:
    """``p(n)``: slots of level ``k`` (``x_0``'s included) that the unbounded optimal schedule of ``Optbar_k(n)``
    holds at once, read off its argmin choices (the same decisions as :meth:`HRevolveTables.schedule`)."""
    l = twin.optbar.shape[1] - 1
    stored = np.ones(l + 1, dtype=np.int64)           # peak of Optbar_k(n): x_0 holds one slot
    written = np.zeros(l + 1, dtype=np.int64)         # peak of Opt_k(n): 0 if x_0 goes to a faster level
    for n in range(l + 1):
        c = int(twin.choice[1, n])
        if n >= 1 and c >= 1:
            stored[n] = max(1 + written[n - c], stored[c - 1])
        written[n] = stored[n] if w + twin.optbar[1, n] <= down[n] else 0
    return stored


def is_hierarchical(platform: Platform) -> bool:
    """True when write and read costs do not decrease from level 0 upwards (Herrmann & Pallez's assumption:
    the larger the storage, the slower the access)."""
    w, r = platform.write_costs, platform.read_costs
    return all(w[k] <= w[k + 1] and r[k] <= r[k + 1] for k in range(platform.n_levels - 1))


def hrevolve_tables(steps: int, platform: Platform) -> HRevolveTables:
    """The H-Revolve tables for chains of length ``0..steps``.

    On a hierarchical platform (:func:`is_hierarchical`) the levels are taken in the given order, and the DP is
    optimal (Herrmann & Pallez 2020).  Otherwise the DP is not: its schedules keep faster levels for later
    checkpoints, and exhaustive search finds cheaper schedules that keep ``x_0`` on a level with expensive reads
    and later checkpoints on a "slower" level with cheap reads (e.g. ``l = 6``, ``uf = 1``, ``ub = 0``,
    levels ``1:0.5:1`` and ``1:1:0`` (``c:w:r``): DP 16, optimum 15.5).  There we take the best of the DP over all
    ``K!`` orders of the levels, which matched exhaustive search on every small instance we tried (tests) but is
    not proven optimal; it multiplies the cost by ``K!``, and ``value(n)`` for ``n < steps`` then uses the order
    that is best for ``steps``.
    """
    return in_best_level_order(lambda order: HRevolveTables(steps, platform, order), platform)


def in_best_level_order(make, platform: Platform) -> HRevolveTables:
    """``make(order)`` in the given order on a hierarchical platform, else the best over all level orders."""
    if is_hierarchical(platform):
        return make(None)
    return min((make(order) for order in itertools.permutations(range(platform.n_levels))),
               key=lambda tables: tables.value())


def optimal_makespan(steps: int, platform: Platform) -> float:
    """The optimal makespan ``Opt_{K-1}(l, c_{K-1})`` (``ub`` for ``l = 0``) of Herrmann & Pallez (2020); see
    :func:`hrevolve_tables` for platforms whose costs do not grow with the level."""
    return hrevolve_tables(steps, platform).value()


def hrevolve_schedule(steps: int, platform: Platform) -> list:
    """An optimal schedule on ``platform`` (H-Revolve; Disk-Revolve on two levels with an unbounded disk)."""
    return hrevolve_tables(steps, platform).schedule()
