r"""Controls of the ice model and the gradient :math:`dJ/dp` through the checkpoint manager.

Controls (names of the ``icesheet gradient`` command; docs/model.md):

``friction``
    the Weertman coefficient :math:`C` (``model.friction``), or :math:`\theta = \log C` (``model.log_friction``)
    when the model is built with ``friction_parameterisation="log"``;
``accumulation``
    the surface mass balance :math:`a` (m/yr);
``thickness``
    the initial thickness :math:`h_0` (m): part of the initial state :math:`x_0`, its gradient is the manager's
    :math:`\bar x_0` (``initial_state_gradient[0]``);
``rheology``
    :math:`\log A` (``model.log_rate_factor``) when the model is built with
    ``rate_factor_parameterisation="log"``, else the rate factor :math:`A` (MPa^-3 yr^-1).
``melt``
    the melt-rate factor :math:`f` (``model.melt_factor``) multiplying the sub-shelf melt rate (icesheet.melt), for
    models built with a melt term (the MISMIP+ Ice1 scenarios).

The manager returns the derivative :math:`dJ/dp` as a Cofunction (a linear form: its entries are
:math:`\partial J/\partial p_j` for the nodal values :math:`p_j`, so they scale with the cell area).  For plotting and
optimisation it is mapped to its Riesz representative :math:`g` in the control's space, the function with
:math:`(g, \phi)_X = dJ/dp\,[\phi]` for all :math:`\phi`:

- ``"L2"`` (default): :math:`M g = dJ/dp` with the mass matrix :math:`M_{jk} = \int\phi_j\phi_k\,dx` (one
  linear solve); :math:`g` is the pointwise sensitivity density, independent of the mesh;
- ``"H1"``: :math:`(M + K) g = dJ/dp` with the stiffness matrix :math:`K`, a smoother gradient (steepest descent in
  :math:`H^1`).

Firedrake (with the checkpoint manager) is imported when a gradient is computed, so that the names can be checked
before (``icesheet gradient``).
"""
from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass

from checkpointing.platform import Platform
from icesheet.errors import InputError

__all__ = ["CONTROLS", "RIESZ_MAPS", "Gradient", "available_controls", "control_function", "parameter_names",
           "riesz_representative", "time_loop", "adaptive_time_loop", "compute_gradient", "compute_online_gradient"]

CONTROLS = ("friction", "accumulation", "thickness", "rheology", "melt")
RIESZ_MAPS = ("L2", "H1")


def parameter_names(model) -> dict:
    """``{control: name in model.controls()}`` for the parameter controls (not ``thickness``)."""
    names = set(model.controls())
    return {"friction": "log_friction" if "log_friction" in names else "friction",
            "accumulation": "accumulation",
            "rheology": "log_rate_factor" if "log_rate_factor" in names else "rate_factor",
            "melt": "melt_factor"}


def available_controls(model) -> tuple:
    """The controls of :data:`CONTROLS` that ``model`` has (``melt`` only with a melt term)."""
    names = set(model.controls())
    return tuple(c for c in CONTROLS if c == "thickness" or parameter_names(model)[c] in names)


def _check_control(control: str) -> None:
    if control not in CONTROLS:
        raise ValueError(f"control = {control!r}: unknown; choose one of {', '.join(CONTROLS)}")


def control_function(model, control: str):
    """The Function the gradient of ``control`` is taken with respect to (see the module docstring)."""
    _check_control(control)
    if control == "thickness":
        return model.thickness
    return model.controls()[parameter_names(model)[control]]


@functools.lru_cache(maxsize=16)
def _riesz_map(space, riesz_map: str):
    """One firedrake.RieszMap per (dual space, inner product), built once: its form, matrix factorisation and solver
    are reused by every gradient, e.g. in an optimisation loop (new forms and solvers per call leak memory)."""
    from firedrake import RieszMap

    return RieszMap(space, riesz_map, solver_parameters={"ksp_type": "preonly", "pc_type": "lu"},
                    constant_jacobian=True)


def riesz_representative(derivative, riesz_map: str = "L2"):
    """The Riesz representative of ``derivative`` (a Cofunction) for the inner product ``riesz_map``."""
    if riesz_map not in RIESZ_MAPS:
        raise ValueError(f"riesz_map = {riesz_map!r}: choose one of {', '.join(RIESZ_MAPS)}")
    return _riesz_map(derivative.function_space(), riesz_map)(derivative)


def time_loop(model, functional, timesteps, controls=None, on_step=None, clock=None):
    """The checkpoint manager's chain (:class:`checkpointing.adjoint.TimeLoop`) for ``model``:
    ``timesteps`` (years, one per step), ``functional(i, state)`` returning ``j_i`` (an AdjFloat, or None); every
    parameter control in ``controls`` (default: all the model has, :func:`available_controls`) is a control of the
    loop (the initial thickness always is, through ``x_0``); ``on_step(info, taped, seconds)`` is called after every
    model step (:class:`checkpointing.adjoint.calibration.ObservedModel`; ``seconds`` on ``clock``, by default
    ``time.perf_counter``).

    The model's state is ``(thickness, velocity)``: the velocity is the next Picard initial guess, so a restored step
    repeats the original to its solver's tolerance (docs/model.md).  The velocity's part of the initial-state gradient
    is zero in the fixed-point adjoint mode, where the converged velocity does not depend on the Picard initial
    guess."""
    from checkpointing.adjoint import TimeLoop

    stepped, parameters = _stepped_and_parameters(model, controls, on_step, clock)
    return TimeLoop(stepped, list(timesteps), parameters, functional)


def adaptive_time_loop(model, functional_for, next_timestep, controls=None, on_step=None):
    """As :func:`time_loop` for a run whose time steps come from the state as it goes (e.g.
    :class:`icesheet.stability.AdaptiveTimesteps`): a :class:`checkpointing.adjoint.AdaptiveTimeLoop` with the rule
    ``next_timestep(i, state)`` and ``functional_for(l)`` (the functional once the number of steps ``l`` is
    known)."""
    from checkpointing.adjoint import AdaptiveTimeLoop

    stepped, parameters = _stepped_and_parameters(model, controls, on_step)
    return AdaptiveTimeLoop(stepped, next_timestep, parameters, functional_for)


def _stepped_and_parameters(model, controls, on_step, clock=None):
    """The model as the manager steps it (observed if ``on_step``) and the parameter Functions of ``controls``."""
    from checkpointing.adjoint.calibration import ObservedModel

    controls = available_controls(model) if controls is None else controls
    for control in controls:
        _check_control(control)
        if control not in available_controls(model):
            raise InputError(f"control = {control!r}: this model has no such control (a melt factor needs a "
                             f"scenario with sub-shelf melt, e.g. mismip_ice1r); its controls are "
                             f"{', '.join(available_controls(model))}")
    parameters = tuple(control_function(model, c) for c in controls if c != "thickness")
    if on_step is None:
        return model, parameters
    return ObservedModel(model, on_step, clock or time.perf_counter), parameters


@dataclass
class Gradient:
    """One gradient computation: ``value`` = J, per control name the ``derivative`` (Cofunction) and its
    ``riesz`` representative (Function named ``gradient_<control Function's name>``), the manager's ``result``
    (AdjointResult) and the wall time of the manager's run (s)."""

    value: float
    derivative: dict
    riesz: dict
    result: object
    wall_time: float


def compute_gradient(model, functional, timesteps, controls=None, schedule: str = "store-all",
                     platform: Platform | None = None, storage=(), riesz_map: str = "L2",
                     on_step=None, schedule_options=None, clock=None) -> Gradient:
    """J and dJ/dp for every control in ``controls`` (default: all the model has) from one run of the checkpoint
    manager.

    ``schedule``, ``platform`` and ``storage`` (disk directories, one per level >= 1, or one Tier per level) are
    those of :func:`checkpointing.adjoint.gradient`; ``schedule_options`` go to the planner; ``on_step`` and
    ``clock`` as for :func:`time_loop`."""
    from checkpointing.adjoint import gradient

    controls = available_controls(model) if controls is None else controls
    loop = time_loop(model, functional, timesteps, controls, on_step, clock)
    result = gradient(loop, schedule, platform, storage, planner_options=schedule_options)
    return _gradient(model, result, controls, riesz_map)


def compute_online_gradient(model, functional_for, next_timestep, controls=None, platform: Platform | None = None,
                            storage=(), level: int = 0, riesz_map: str = "L2", on_step=None) -> Gradient:
    """As :func:`compute_gradient` for adaptive time steps (:func:`adaptive_time_loop`), through the online
    checkpointer on ``level`` of ``platform`` (:func:`checkpointing.adjoint.online_gradient`; default platform:
    one RAM level of 10 slots).  The time steps run are ``.result.timesteps``."""
    from checkpointing.adjoint import online_gradient
    from checkpointing.platform import Level

    controls = available_controls(model) if controls is None else controls
    loop = adaptive_time_loop(model, functional_for, next_timestep, controls, on_step)
    platform = platform or Platform((Level(10, name="ram"),), name="ram")
    result = online_gradient(loop, platform, storage, level)
    return _gradient(model, result, controls, riesz_map)


def _gradient(model, result, controls, riesz_map: str) -> Gradient:
    """The manager's ``result`` as a :class:`Gradient`: derivatives and Riesz representatives per control."""
    derivatives = dict(zip((c for c in controls if c != "thickness"), result.gradient))
    if "thickness" in controls:
        derivatives["thickness"] = result.initial_state_gradient[0]
    derivatives = {c: derivatives[c] for c in controls}
    riesz = {c: riesz_representative(d, riesz_map) for c, d in derivatives.items()}
    for c, g in riesz.items():
        g.rename(f"gradient_{parameter_names(model).get(c, c)}")
    if not math.isfinite(result.value):
        raise FloatingPointError(f"J = {result.value}: the functional is not finite")
    return Gradient(result.value, derivatives, riesz, result, result.run_time)
