"""One gradient of a scenario's run, as ``icesheet gradient`` asks for it: build the model and the functional,
calibrate the platform if asked, compute the gradient through the checkpoint manager with a progress bar, collect
the summary and hand the outputs to :class:`icesheet.output.GradientWriter`.

:class:`GradientRequest` is the validated input (icesheet/commands/gradient.py checks every field before Firedrake is
imported); :func:`run` does the work and returns the summary (the content of ``summary.json``).  The gradient itself
is :func:`icesheet.controls.compute_gradient`, i.e. :func:`checkpointing.adjoint.gradient`; ``--calibrate`` measures
the step and storage costs first (:mod:`checkpointing.adjoint.calibration`) and plans on the calibrated platform.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from checkpointing.planners import plan
from checkpointing.platform import Platform
from checkpointing.simulator import simulate
from icesheet.errors import InputError
from icesheet.scenarios import build_model

__all__ = ["GradientRequest", "run", "stable_dt"]

logger = logging.getLogger(__name__)


@dataclass
class GradientRequest:
    """Validated input of one gradient: scenario and its parameters, functional (and ``when``), control, ``steps``
    of ``dt`` years, planner name, storage ``platform`` with one directory per disk level, ``calibrate``, Riesz
    map, misfit ``sigma`` (m/yr), output directory and optionally the ``initial_state`` file."""

    scenario: str
    parameters: dict
    functional: str
    when: str
    control: str
    steps: int
    dt: float
    schedule_name: str
    platform: Platform
    disk_dirs: list
    calibrate: bool
    riesz: str
    sigma: float
    out: Path
    dt_given: bool = False  # dt came from --dt or the config (refused if unstable), not the scenario (divided)
    initial_state: Path | None = None  # an IceModel.save_state file, read (interpolated) before the first step


def run(request: GradientRequest, progress: bool = True) -> dict:
    """Build the model, (calibrate,) compute the gradient and write the outputs; returns the summary."""
    from icesheet.cli import import_firedrake

    import_firedrake()
    from tqdm.auto import tqdm

    from checkpointing.adjoint import tiers_for_platform
    from checkpointing.adjoint.calibration import calibrate
    from icesheet.controls import compute_gradient, control_function, time_loop
    from icesheet.functionals import build_functional, initial_velocity_observations
    from icesheet.output import GradientWriter

    model = build_model(request.scenario, request.parameters)
    if request.initial_state is not None:
        model.load_state(request.initial_state)
    comm = model.mesh.comm
    request.dt = stable_dt(model, request)
    observed = initial_velocity_observations(model) if request.functional == "misfit" else None
    functional = build_functional(model, request.functional, request.steps, request.when, observed, request.sigma)
    timesteps = [request.dt] * request.steps
    tiers = tiers_for_platform(request.platform, request.disk_dirs)
    platform, calibration = request.platform, None
    if request.calibrate:
        logger.info("calibrating: one store-all gradient and %d tier(s)", len(tiers))
        calibration = calibrate(time_loop(model, functional, timesteps, (request.control,)), tiers)
        platform = calibration.platform()
    schedule = calibration.plan(request.schedule_name) if calibration else plan(request.schedule_name,
                                                                                   request.steps, platform)
    predicted = simulate(schedule, platform, request.steps)  # before the run: the progress bar's length

    bar = tqdm(total=predicted.forward_steps + request.steps, desc="model steps", unit="step",
               disable=not progress or comm.rank != 0)

    def on_step(info, taped, seconds):
        phase = "taped, backward" if taped else "forward"
        logger.info("%s step: %d Picard + %d Newton iterations, %.3f s", phase, info.picard_iterations,
                    info.newton_iterations, seconds)
        bar.set_postfix(phase=phase.split(",")[0], picard=info.picard_iterations)
        bar.update()

    with bar:
        gradient = compute_gradient(model, functional, timesteps, (request.control,), schedule=schedule,
                                    platform=platform, storage=tiers, riesz_map=request.riesz, on_step=on_step)
    counters = gradient.result.counters
    summary = {
        "scenario": request.scenario, "functional": request.functional, "when": request.when,
        "control": request.control, "control_function": control_function(model, request.control).name(),
        "steps": request.steps, "dt": request.dt, "adjoint_mode": model.adjoint_mode,
        "initial_state": None if request.initial_state is None else str(request.initial_state),
        "schedule": request.schedule_name, "riesz_map": request.riesz, "rank": comm.rank, "ranks": comm.size,
        "dofs": model.thickness.function_space().dim(), "value": gradient.value,
        "gradient_norm": _norm(gradient.riesz[request.control], request.riesz), "wall_time": gradient.wall_time,
        "platform": platform.to_dict(), "measured": counters.to_dict(),
        "predicted": gradient.result.predicted.to_dict(),
        "peak_rss_mb": comm.allreduce(counters.peak_rss_mb, op=_mpi_max()),
    }
    if calibration is not None:
        summary["calibration"] = _calibration_summary(calibration, schedule, predicted, gradient)
    GradientWriter(request.out).write(model, gradient.riesz[request.control],
                                      control_function(model, request.control), summary)
    return summary


def _calibration_summary(calibration, schedule, predicted, gradient) -> dict:
    """The calibration and its predicted makespan (per-step and uniform costs) beside the measured one (s)."""
    measured_makespan = sum(gradient.result.counters.wall_time.values())
    per_step = calibration.predict(schedule)
    return {**calibration.to_dict(), "predicted_makespan": per_step.makespan,
            "predicted_makespan_uniform_costs": predicted.makespan,
            "measured_makespan": measured_makespan,
            "measured_over_predicted": measured_makespan / per_step.makespan,
            "predicted_run_time": per_step.makespan + calibration.run_overhead,
            "measured_run_time": gradient.wall_time}


def _norm(function, riesz_map: str) -> float:
    import firedrake as fd

    return fd.norm(function, "L2" if riesz_map == "L2" else "H1")


def _mpi_max():
    from mpi4py import MPI

    return MPI.MAX


def stable_dt(model, request: GradientRequest) -> float:
    """The time step of the chain: ``request.dt`` if within the stable time step at the initial state
    (icesheet/stability.py); else the scenario's dt divided into equal parts within it, or InputError for a dt
    the user gave (a gradient's steps are not split: the chain length l = --steps is what the schedule was planned
    for)."""
    from icesheet.stability import initial_time_step_limit, rounded_down, substeps

    limit = initial_time_step_limit(model)
    if request.dt <= limit.dt:
        return request.dt
    if request.dt_given:
        raise InputError(f"dt = {request.dt:g} yr: above the {limit.describe()} at the initial state; use "
                         f"--dt <= {rounded_down(limit.dt):.3g} (a gradient's steps are not split: l = --steps is "
                         "the chain the schedule is planned for)")
    dt = request.dt / substeps(request.dt, limit.dt)
    if model.mesh.comm.rank == 0:
        logger.warning("dt = %g yr (the scenario's %g yr is above the %s)", dt, request.dt, limit.describe())
    return dt
