"""Errors for bad user input (pure Python, so that input can be checked before Firedrake is imported)."""
from __future__ import annotations

__all__ = ["InputError", "ScenarioError", "InvalidFieldError"]


class InputError(ValueError):
    """Bad input; the message names the field, the value and what is allowed."""


class ScenarioError(InputError):
    """Bad scenario name, config file, mesh file or parameter."""


class InvalidFieldError(InputError):
    """A field given to the model is not allowed (NaN, infinite, negative, ...)."""
