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
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

__all__ = ["Advance", "Write", "Read", "Discard", "Backward", "Action", "Schedule"]


@dataclass(frozen=True, slots=True)
class Advance:
    """Run forward steps ``F_start .. F_{end-1}`` without taping: ``x_start -> x_end``."""

    start: int
    end: int

    def __str__(self) -> str:
        return f"advance x{self.start} -> x{self.end}"


@dataclass(frozen=True, slots=True)
class Write:
    """Store the working state ``x_index`` on storage level ``level``."""

    index: int
    level: int

    def __str__(self) -> str:
        return f"write x{self.index} to level {self.level}"


@dataclass(frozen=True, slots=True)
class Read:
    """Load ``x_index`` from storage level ``level`` into the working state (the checkpoint is kept)."""

    index: int
    level: int

    def __str__(self) -> str:
        return f"read x{self.index} from level {self.level}"


@dataclass(frozen=True, slots=True)
class Discard:
    """Free the slot that holds ``x_index`` on storage level ``level``."""

    index: int
    level: int

    def __str__(self) -> str:
        return f"discard x{self.index} from level {self.level}"


@dataclass(frozen=True, slots=True)
class Backward:
    """Run the backward step ``Fbar_index``: ``xbar_index = Fbar_index(x_index, xbar_{index+1})``."""

    index: int

    def __str__(self) -> str:
        return f"backward {self.index}"


Action = Union[Advance, Write, Read, Discard, Backward]
Schedule = list  # a list of Action; planners return plain lists so they can be inspected and sliced
