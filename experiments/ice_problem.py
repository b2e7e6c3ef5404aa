"""The ice-model problems of the experiments: the marine ice stream at experiment size, and its time loop.

Imports Firedrake.  The model is the ``marine_ice_stream`` scenario (MISMIP+ bed; icesheet/data/scenarios/) on a
coarse mesh, with the Weertman coefficient parameterised as ``C = exp(theta)`` (``model.log_friction``) so that
friction stays positive during an inversion.  The chain of the checkpointing schedules is its time loop: ``l`` steps
of ``dt`` years, state ``x_i = (h_i, u_i)`` (thickness, velocity; docs/model.md).  Gradients go through
``checkpointing.adjoint.gradient`` with the loop of ``icesheet.controls.time_loop``.
"""
from __future__ import annotations

from dataclasses import dataclass

import firedrake as fd
import firedrake.adjoint  # noqa: F401  (registers pyadjoint's overloads before any annotated operation)
from pyadjoint import stop_annotating

from icesheet.scenarios import build_model, scenario_parameters

__all__ = ["IceProblem", "build_problem", "grounded_mask"]

SCENARIO = "marine_ice_stream"


@dataclass(frozen=True)
class IceProblem:
    """Sizes of a model-based experiment: mesh cell size (m), number of steps ``l`` and step ``dt`` (years)."""

    cell_size: float = 20000.0
    steps: int = 4
    dt: float = 10.0

    def __post_init__(self):
        if not (self.cell_size > 0 and self.dt > 0):
            raise ValueError(f"cell_size = {self.cell_size!r}, dt = {self.dt!r}: both must be > 0")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps = {self.steps!r}: the time loop needs an integer number of steps >= 1")

    @property
    def timesteps(self) -> list[float]:
        return [self.dt] * self.steps


def build_problem(problem: IceProblem, adjoint_mode: str = "fixed-point", **overrides):
    """The marine ice stream model at ``problem.cell_size`` with log-friction control."""
    parameters = scenario_parameters(SCENARIO, overrides={"mesh.cell_size": problem.cell_size, **overrides})
    return build_model(SCENARIO, parameters, adjoint_mode=adjoint_mode, friction_parameterisation="log")


def grounded_mask(model) -> fd.Function:
    """The grounded indicator (1 grounded, 0 afloat) at the model's current thickness, as a new Function."""
    with stop_annotating():
        return model.output_fields()["grounded"].copy(deepcopy=True)

