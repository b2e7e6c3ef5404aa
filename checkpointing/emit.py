"""Turning a plan tree into a flat list of actions.

Every planner here describes a schedule as a tree: a node "reverse the sub-chain starting at ``x_a`` of length
``n``" expands into actions and smaller nodes (Griewank & Walther 2000; Herrmann & Pallez 2020, section 3).
:func:`expand` walks that tree depth first with an explicit stack, so chains of any length are planned without
hitting Python's recursion limit.
"""
from __future__ import annotations

from typing import Callable

from .actions import Advance, Backward, Read

__all__ = ["ScheduleDoesNotFit", "expand", "recompute_all_actions"]


class ScheduleDoesNotFit(ValueError):
    """The platform has too few slots for the requested algorithm; the message names capacity and length."""

    exit_status = 3  # checkpointing/exits.py


def expand(root: tuple, rule: Callable[[tuple], list]) -> list:
    """Expand the plan tree rooted at the node ``root`` (a tuple) into a list of actions.

    ``rule(node)`` returns the node's children in execution order: actions and further nodes (tuples).
    """
    out = []
    stack = [root]
    while stack:
        item = stack.pop()
        if type(item) is tuple:
            stack.extend(reversed(rule(item)))
        else:
            out.append(item)
    return out


def recompute_all_actions(a: int, n: int, level: int) -> list:
    """Reverse ``x_a .. x_{a+n}`` with only ``x_a`` stored (on ``level``) and held as the working state:
    for ``i = n .. 0``: read ``x_a`` (except the first time), advance to ``x_{a+i}``, run ``Fbar_{a+i}``.
    Costs ``(n+1) ub + n(n+1)/2 uf + n r_level`` (Herrmann & Pallez 2020, eq. for Optbar_0(l, 1))."""
    out = []
    for i in range(n, -1, -1):
        if i < n:
            out.append(Read(a, level))
        if i > 0:
            out.append(Advance(a, a + i))
        out.append(Backward(a + i))
    return out
