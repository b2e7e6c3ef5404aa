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

A chain whose length is decided while it runs (adaptive time steps) is an :class:`AdaptiveTimeLoop`: a rule
``next_timestep(i, state)`` gives ``dt_i`` from ``x_i`` during the first forward sweep (or ``None``: the chain ends
at ``x_i``, so ``l = i``), each ``dt_i`` is recorded and reused whenever ``F_i`` is recomputed or re-taped (the time
steps are not differentiated), and ``functional_for(l)`` gives the functional once ``l`` is known.  The manager runs
it with the online checkpointer (``CheckpointManager.run_online``, manager.py).

Optional: ``model.retape_hint()`` returns a copy of whatever the model can reuse, from the state ``x_{i+1}`` it
holds, when ``F_i`` is re-run from ``x_i`` (e.g. the converged solution of an iterative solve); the manager then re-tapes ``F_i``
as ``model.step(dt_i, hint=h)`` with ``h`` taken on ``x_{i+1}`` (manager.py).  The step must give the same
``x_{i+1}`` with or without ``h`` (up to its solver tolerance); only its cost may differ.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import firedrake as fd

__all__ = ["SteppedModel", "TimeLoop", "AdaptiveTimeLoop"]


class SteppedModel(Protocol):
    """The model contract: a fixed tuple of state Functions and an in-place, annotatable step."""

    @property
    def state(self) -> tuple: ...

    def step(self, dt: float) -> Any: ...


def _is_timestep(dt) -> bool:
    """Whether ``dt`` is a finite number > 0 (not a bool)."""
    return not isinstance(dt, bool) and isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0


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
            if not _is_timestep(dt):
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


@dataclass
class AdaptiveTimeLoop:
    """A chain of unknown length (module docstring): ``model``, the rule ``next_timestep(i, state) -> dt_i | None``
    (called untaped on the state Functions holding ``x_i``, in the first forward sweep only), ``controls`` and
    ``functional_for(l) -> functional`` (as :attr:`TimeLoop.functional`).  ``timesteps`` holds the ``dt_i`` recorded
    so far (the manager appends them; ``F_i`` is always recomputed with ``timesteps[i]``)."""

    model: SteppedModel
    next_timestep: Callable[[int, tuple], Any]
    controls: tuple
    functional_for: Callable[[int], Callable[[int, tuple], Any]]
    timesteps: list = field(default_factory=list)

    def __post_init__(self):
        TimeLoop(self.model, [1.0], self.controls, lambda index, state: None)  # the same checks of model and controls
        self.controls = tuple(self.controls)
        if not callable(self.next_timestep) or not callable(self.functional_for):
            raise TypeError("next_timestep and functional_for must be callables (see AdaptiveTimeLoop)")

    @property
    def steps(self) -> int:
        """The steps recorded so far (``l`` once the chain has ended)."""
        return len(self.timesteps)

    @property
    def state(self) -> tuple:
        return tuple(self.model.state)

    def record(self) -> float | None:
        """``dt_index`` from the rule on the current state ``x_index``, ``index`` = :attr:`steps` (appended to
        :attr:`timesteps`), or ``None`` when the chain ends here; ValueError for a time step that is not a finite
        number > 0."""
        index = self.steps
        dt = self.next_timestep(index, self.state)
        if dt is None:
            return None
        if not _is_timestep(dt):
            raise ValueError(f"next_timestep({index}) = {dt!r}: a time step must be a finite number > 0, or None "
                             "to end the chain")
        self.timesteps.append(float(dt))
        return float(dt)

    def loop(self) -> TimeLoop:
        """The chain as it turned out: a TimeLoop with the recorded time steps and ``functional_for(l)``."""
        return TimeLoop(self.model, self.timesteps, self.controls, self.functional_for(self.steps))
