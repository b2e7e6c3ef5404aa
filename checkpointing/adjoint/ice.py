"""The ice model (``icesheet.IceModel``) as a chain for the checkpoint manager.

``IceModel`` already follows the model contract (notes/contract_model.md): ``state = (thickness, velocity)``
(the velocity is the next Picard initial guess, so a restored step repeats its Picard iterations bit for bit) and
``step(dt)`` overwrites both in place.  This adapter only chooses the parameter controls by the names of
``model.controls()`` (``"friction"`` or ``"log_friction"``, ``"rate_factor"`` or ``"log_rate_factor"``,
``"accumulation"``); the initial state is always a control of the manager, so ``"thickness"`` is not listed here:
its gradient is ``result.initial_state_gradient[0]`` (and ``[1]``, the velocity's, is zero in the fixed-point
adjoint mode, where the converged velocity does not depend on the Picard initial guess).

This module does not import ``icesheet``: it reads only the contract's attributes.  ``model.time`` (a float the
model increments per step) is not part of the state and is not restored by the manager.
"""
from __future__ import annotations

from .protocol import TimeLoop

__all__ = ["ice_time_loop"]


def ice_time_loop(model, timesteps, functional, controls=("friction",)) -> TimeLoop:
    """A :class:`TimeLoop` for an ``IceModel``: ``timesteps`` (years, one per step), ``functional(i, state)``
    returning ``j_i`` (an AdjFloat, or None), ``controls`` named as in ``model.controls()``."""
    available = {name: f for name, f in model.controls().items() if name != "thickness"}
    for name in controls:
        if name not in available:
            hint = " (the initial thickness is always a control: see result.initial_state_gradient)" \
                if name == "thickness" else ""
            raise ValueError(f"controls: {name!r} is not a control of this model; choose from "
                             f"{sorted(available)}{hint}")
    return TimeLoop(model, timesteps, tuple(available[name] for name in controls), functional)
