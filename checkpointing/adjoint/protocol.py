"""What the checkpoint manager needs from a time-stepping model: the chain ``x_{i+1} = F_i(x_i)`` and ``J``.

A :class:`TimeLoop` describes the chain of Griewank & Walther (2000) on a Firedrake model:

- ``model.state``: the Functions holding ``x_i`` (docs/model.md states the contract); ``model.step(dt)`` runs ``F_i``,
  reading and overwriting exactly these Functions in place, through pyadjoint-overloaded operations only;
- ``timesteps``: ``dt_i`` for ``F_i``, ``i = 0 .. l-1`` (so ``l = len(timesteps)``);
- ``controls``: parameter Functions ``p`` that appear in the model's forms (coefficients, sources, ...);
  the initial state ``x_0`` is always a control too (its gradient is ``xbar_0``);
- ``functional(i, state)``: ``j_i(x_i)``, an AdjFloat (from ``firedrake.assemble``) or ``None`` (no term),
  called for ``i = 0 .. l`` on the state Functions holding ``x_i``; ``J = sum_i j_i(x_i)``.  A term may also
  depend on the controls (a regularisation, say, returned at one index only).

Optional: ``model.retape_hint()`` returns a copy of whatever the model can reuse, from the state ``x_{i+1}`` it
holds, when ``F_i`` is re-run from ``x_i`` (e.g. the converged solution of an iterative solve); the manager then re-tapes ``F_i``
as ``model.step(dt_i, hint=h)`` with ``h`` taken on ``x_{i+1}`` (manager.py).  The step must give the same
``x_{i+1}`` with or without ``h`` (up to its solver tolerance); only its cost may differ.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import firedrake as fd

__all__ = ["SteppedModel", "TimeLoop"]


class SteppedModel(Protocol):
    """The model contract: a fixed tuple of state Functions and an in-place, annotatable step."""

    @property
    def state(self) -> tuple: ...

    def step(self, dt: float) -> Any: ...


@dataclass(frozen=True)
class TimeLoop:
    """The chain to reverse: ``model``, ``timesteps`` (``dt_i``, length ``l``), ``controls``, ``functional``."""

    model: SteppedModel
    timesteps: Sequence[float]
    controls: tuple
    functional: Callable[[int, tuple], Any]

    def __post_init__(self):
        state = tuple(self.model.state)
        if not state or not all(isinstance(f, fd.Function) for f in state):
            raise TypeError(f"model.state = {state!r}: expected a non-empty tuple of firedrake.Function")
        if not callable(getattr(self.model, "step", None)):
            raise TypeError(f"model = {self.model!r}: expected a step(dt) method")
        dts = tuple(self.timesteps)
        if not dts:
            raise ValueError("timesteps = []: the time loop needs at least one step")
        for i, dt in enumerate(dts):
            if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not math.isfinite(dt) or dt <= 0:
                raise ValueError(f"timesteps[{i}] = {dt!r}: a time step must be a finite number > 0")
        object.__setattr__(self, "timesteps", tuple(float(dt) for dt in dts))
        controls = tuple(self.controls)
        for k, c in enumerate(controls):
            if not isinstance(c, fd.Function):
                raise TypeError(f"controls[{k}] = {c!r}: a control must be a firedrake.Function")
            if any(c is f for f in state):
                raise ValueError(f"controls[{k}] = {c.name()!r} is a state Function; the initial state is "
                                 "always a control (its gradient is xbar_0), list parameters only")
        object.__setattr__(self, "controls", controls)
        if not callable(self.functional):
            raise TypeError(f"functional = {self.functional!r}: expected a callable (index, state) -> AdjFloat | None")

    @property
    def steps(self) -> int:
        """``l``, the number of forward steps."""
        return len(self.timesteps)

    @property
    def state(self) -> tuple:
        return tuple(self.model.state)
