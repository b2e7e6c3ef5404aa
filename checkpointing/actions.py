"""The action vocabulary of a checkpointing schedule.

A schedule reverses a chain of ``l`` forward steps ``x_{i+1} = F_i(x_i)``, ``i = 0 .. l-1``, followed by
``l + 1`` backward steps ``xbar_i = Fbar_i(x_i, xbar_{i+1})``, ``i = l .. 0`` (Griewank & Walther 2000;
Herrmann & Pallez 2020, section 2).  The executor holds one *working state* (not counted in any level's
capacity) and the checkpoints stored on each storage level.  A schedule is a sequence of the five actions below;
planners produce them, the simulator (:mod:`checkpointing.simulator`) validates and costs them, and the checkpoint
manager executes them on a real model.

Semantics (enforced by the simulator):

``Advance(start, end)``
    working state must be ``x_start``; runs ``F_start .. F_{end-1}`` untaped; working state becomes ``x_end``.
    Cost ``(end - start) * uf`` (or the sum of per-step costs).
``Write(index, level)``
    working state must be ``x_index``; stores a copy on ``level`` (one slot).  Cost ``w_level``.
``Read(index, level)``
    ``x_index`` must be stored on ``level``; working state becomes ``x_index``.  The checkpoint stays.
    Cost ``r_level``.
``Discard(index, level)``
    frees the slot holding ``x_index`` on ``level``.  Free of cost.
``Backward(index)``
    working state must be ``x_index`` and the last backward step must have been ``index + 1`` (or none, with
    ``index == l``); runs ``Fbar_index``.  Cost ``ub``.  Afterwards the working state is consumed (empty).

``x_0`` is the initial working state and is *not* stored at the start: a schedule writes it where it wants it.

**Branches (join graphs).**  Every action takes an optional ``branch`` (default ``None``: the single chain above,
whose schedules are unchanged).  In a join graph (:mod:`checkpointing.joingraph`) ``branch = b`` names tooth ``b``
(``0 <= b < p``) and ``branch = HANDLE`` the handle; indices then count states of that branch.  Two actions exist
only in join graphs: ``Start(branch)`` loads a branch's initial state into the working state, and ``Join(tooth)``
adds the tooth's end state to the join (see :mod:`checkpointing.joingraph` for their rules).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

__all__ = ["Advance", "Write", "Read", "Discard", "Backward", "Start", "Join", "HANDLE", "Action", "Schedule"]

HANDLE = -1  # the branch index of a join graph's handle (teeth are 0 .. p-1)


def _on(branch) -> str:
    """The suffix naming the branch of an action (empty for the single chain)."""
    if branch is None:
        return ""
    return " on the handle" if branch == HANDLE else f" on tooth {branch}"


@dataclass(frozen=True, slots=True)
class Advance:
    """Run forward steps ``F_start .. F_{end-1}`` without taping: ``x_start -> x_end``."""

    start: int
    end: int
    branch: int | None = None

    def __str__(self) -> str:
        return f"advance x{self.start} -> x{self.end}{_on(self.branch)}"


@dataclass(frozen=True, slots=True)
class Write:
    """Store the working state ``x_index`` on storage level ``level``."""

    index: int
    level: int
    branch: int | None = None

    def __str__(self) -> str:
        return f"write x{self.index} to level {self.level}{_on(self.branch)}"


@dataclass(frozen=True, slots=True)
class Read:
    """Load ``x_index`` from storage level ``level`` into the working state (the checkpoint is kept)."""

    index: int
    level: int
    branch: int | None = None

    def __str__(self) -> str:
        return f"read x{self.index} from level {self.level}{_on(self.branch)}"


@dataclass(frozen=True, slots=True)
class Discard:
    """Free the slot that holds ``x_index`` on storage level ``level``."""

    index: int
    level: int
    branch: int | None = None

    def __str__(self) -> str:
        return f"discard x{self.index} from level {self.level}{_on(self.branch)}"


@dataclass(frozen=True, slots=True)
class Backward:
    """Run the backward step ``Fbar_index``: ``xbar_index = Fbar_index(x_index, xbar_{index+1})``."""

    index: int
    branch: int | None = None

    def __str__(self) -> str:
        return f"backward {self.index}{_on(self.branch)}"


@dataclass(frozen=True, slots=True)
class Start:
    """Load the initial state of ``branch`` into the working state: ``x_0`` of a tooth (from the run's inputs), or
    the completed join ``y_0`` for the handle.  Join graphs only; each branch starts at most once."""

    branch: int

    def __str__(self) -> str:
        return f"start{_on(self.branch)}"


@dataclass(frozen=True, slots=True)
class Join:
    """Add the end state ``x_{l_b}`` of tooth ``branch`` (the working state) to the join ``y_0``; the working state
    is kept.  Join graphs only; each tooth joins once."""

    branch: int

    def __str__(self) -> str:
        return f"join{_on(self.branch)}"


Action = Union[Advance, Write, Read, Discard, Backward, Start, Join]
Schedule = list  # a list of Action; planners return plain lists so they can be inspected and sliced
