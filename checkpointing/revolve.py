"""Binomial checkpointing (Revolve) on one storage level: closed forms and the optimal schedule.

Griewank & Walther, "Algorithm 799: revolve", ACM TOMS 26(1), 2000.  With ``s`` checkpoints (counting the one
holding ``x_0``) and repetition number ``r`` (no step is recomputed more than ``r`` times) at most

    beta(s, r) = C(s + r, s)

steps can be reversed.  The least number of repeated forward steps to reverse ``L`` steps is

    t(L, s) = r L - beta(s + 1, r - 1),   r = min{r : beta(s, r) >= L},

and the total forward-step count of Griewank & Walther's convention is ``L + t(L, s)`` (their ``L`` forward
steps are each taped once more inside the reverse sweep).

**Mapping to this package's chain.**  Our chain of length ``l`` has ``l + 1`` backward steps ``Fbar_l .. Fbar_0``;
it is Griewank & Walther's chain of ``L = l + 1`` steps (``Fbar_l`` plays their last step, whose state ``x_l`` is
reached by the first sweep).  The untaped forward steps of an optimal schedule, as the simulator counts them, are

    forward_steps(l, s) = t(l + 1, s) = revolve_forward_steps(l + 1, s) - (l + 1),

which is the ``(l + 1) uf`` difference between our makespan and checkpoint_schedules'
(docs/checkpointing.md, "Makespan conventions").

**Optimal split.**  Reversing ``x_a .. x_{a+n}`` with ``x_a`` stored and ``s >= 2`` slots: advance ``j`` steps,
store ``x_{a+j}``, reverse the right part (``n - j`` steps, ``s - 1`` slots), then the left part (``j - 1`` steps,
``s`` slots).  In Griewank & Walther's lengths the parts are ``L_l = j`` and ``L_r = L - j``, and the split is
optimal exactly when the right part uses repetition number ``r`` and the left part ``r - 1``:

    beta(s, r-2) <= L_l <= beta(s, r-1)   and   beta(s-1, r-1) <= L_r <= beta(s-1, r)

(Pascal's rule then gives ``t(L, s) = L_l + t(L_r, s-1) + t(L_l, s)``).  We take the smallest such ``j``.
Planning costs O(number of actions) = O(l r) time.
"""
from __future__ import annotations

from math import comb

from .actions import Advance, Backward, Discard, Read, Write
from .emit import ScheduleDoesNotFit, expand, recompute_all_actions

__all__ = ["beta", "repetition_number", "extra_forward_steps", "revolve_forward_steps", "revolve_schedule"]


def beta(s: int, r: int) -> int:
    """``C(s + r, s)``: the most steps ``s`` checkpoints reverse with repetition number ``r`` (0 if ``r < 0``)."""
    return comb(s + r, s) if r >= 0 else 0


def repetition_number(steps: int, s: int) -> int:
    """``r = min{r >= 0 : beta(s, r) >= steps}`` for ``s >= 1`` checkpoints."""
    if s < 1:
        raise ValueError(f"s = {s}: Revolve needs at least one checkpoint slot")
    r, b = 0, 1
    while b < steps:
        r += 1
        b = b * (s + r) // r
    return r


def extra_forward_steps(steps: int, s: int) -> int:
    """Griewank & Walther's ``t(L, s) = r L - beta(s + 1, r - 1)`` for ``L = steps`` (0 for ``L <= 1``)."""
    if steps <= 1:
        return 0
    r = repetition_number(steps, s)
    return r * steps - beta(s + 1, r - 1)


def revolve_forward_steps(steps: int, s: int) -> int:
    """Griewank & Walther's total forward steps ``L + t(L, s)`` for ``L = steps``."""
    return steps + extra_forward_steps(steps, s)


def _split(n: int, s: int) -> int:
    """The smallest optimal advance ``j`` for a sub-chain of length ``n >= 2`` with ``s >= 2`` slots."""
    L = n + 1
    r = repetition_number(L, s)
    return max(1, beta(s, r - 2), L - beta(s - 1, r))


def revolve_schedule(steps: int, slots: int, level: int = 0) -> list:
    """The binomial schedule for a chain of ``steps`` steps with ``slots`` checkpoints on ``level`` (the slot
    holding ``x_0`` included).  It minimises the number of forward steps; with free reads and writes it minimises
    the makespan too."""
    if steps == 0:
        return [Backward(0)]
    if slots < 1:
        raise ScheduleDoesNotFit(f"revolve: level {level} has capacity {slots}; a chain of l = {steps} steps needs "
                                 "at least one slot for x_0")
    slots = min(slots, steps)

    def rule(node):
        kind, a, n, s = node
        if kind == "opt":
            return [Write(a, level), ("optbar", a, n, s), Discard(a, level)]
        if s == 1 or n <= 1:
            return recompute_all_actions(a, n, level)
        j = _split(n, s)
        return [Advance(a, a + j), ("opt", a + j, n - j, s - 1), Read(a, level), ("optbar", a, j - 1, s)]

    return expand(("opt", 0, steps, slots), rule)
