"""Errors for bad user input (pure Python, so that input can be checked before Firedrake is imported)."""
from __future__ import annotations

__all__ = ["InputError", "ScenarioError", "InvalidFieldError", "PhysicsGuardError", "ModelStepError"]


class InputError(ValueError):
    """Bad input; the message names the field, the value and what is allowed."""

    exit_status = 2  # checkpointing/exits.py


class ScenarioError(InputError):
    """Bad scenario name, config file, mesh file or parameter."""


class InvalidFieldError(InputError):
    """A field given to the model is not allowed (NaN, infinite, negative, ...)."""


class PhysicsGuardError(RuntimeError):
    """A run left physical bounds (icesheet.stability.Guard); the message names the step, the quantity, its value
    and the bound, and what to do."""

    exit_status = 6  # checkpointing/exits.py


class ModelStepError(RuntimeError):
    """A time step of a run failed (its solver did not converge); the message names the step and the time."""

    exit_status = 5  # checkpointing/exits.py
