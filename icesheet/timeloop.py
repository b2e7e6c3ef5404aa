"""The time loop shared by the ice models (``IceModel``, ``SIAModel``): what a step reports, field checks, and
``run_steps``, the loop with a progress bar, a log line and a diagnostics record per step.

A model for :func:`run_steps` has ``mesh``, ``time`` (years), ``step(dt) -> StepInfo``, ``volume()`` and
``volume_above_flotation()`` (m^3); the checkpoint manager needs less (``state`` and ``step``: docs/model.md).
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from icesheet.errors import InvalidFieldError

__all__ = ["StepInfo", "check_field", "run_steps", "timestep_function"]

logger = logging.getLogger(__name__)


@dataclass
class StepInfo:
    """What one model step did: Picard iterations with the relative change and relative residual after each
    (``residual_history[0]`` is that of the initial guess), Newton iterations (of the SSA's finish, or the SIA's
    solve, which has no Picard loop), chord iterations (strategy ``picard-chord``), the final relative residual, the
    volume added by the thickness bound (m^3) and the wall time (s)."""

    dt: float
    picard_iterations: int
    picard_changes: list[float] = field(default_factory=list)
    residual_history: list[float] = field(default_factory=list)
    newton_iterations: int = 0
    chord_iterations: int = 0
    final_residual: float = float("nan")
    clamped_volume: float = 0.0
    wall_time: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def timestep_function(mesh):
    """The time step (years) of a model's taped forms, as a Function in the real space of ``mesh``, not a Constant:
    pyadjoint replays a taped Constant at its current value, so a tape of steps of different lengths would replay
    every step with the last dt (tests/icesheet/test_tape_replay.py)."""
    import firedrake

    return firedrake.Function(firedrake.FunctionSpace(mesh, "R", 0), name="timestep").assign(1.0)


def check_field(name: str, function, minimum: float | None = None, strict: bool = False, source: str = "") -> None:
    """Raise InvalidFieldError naming ``name`` if ``function`` has NaN/inf values or values below ``minimum``
    (``<= minimum`` when ``strict``)."""
    comm = function.function_space().mesh().comm
    values = function.dat.data_ro
    where = f" (from {source})" if source else ""
    bad = int(comm.allreduce(int(np.count_nonzero(~np.isfinite(values)))))
    if bad:
        raise InvalidFieldError(f"{name}{where}: {bad} values are NaN or infinite; it must be finite everywhere")
    if minimum is None:
        return
    from mpi4py import MPI  # (here: this module imports no MPI at load)

    local_min = float(values.min()) if values.size else math.inf
    lowest = comm.allreduce(local_min, op=MPI.MIN)
    if lowest < minimum or (strict and lowest <= minimum):
        relation = ">" if strict else ">="
        raise InvalidFieldError(f"{name}{where}: minimum value {lowest:g}; it must be {relation} {minimum:g} "
                                "everywhere")


def run_steps(model, n_steps: int, dt: float, progress: bool = True, on_step=None, stable: bool = True,
              guard=None) -> list[dict]:
    """The time loop shared by the models (``IceModel``, ``SIAModel``): ``n_steps`` steps of ``dt`` years with a
    progress bar on rank 0 and a log line per step.  Returns one record per step and one for the initial state
    (step 0, with the iterations of the initial velocity solve): step, time, volume, vaf, picard_iterations, newton_iterations, final_residual, clamped_volume,
    substeps, wall_time.  ``on_step(model, record)`` is called after each step (and for step 0).

    ``stable`` (icesheet/stability.py): the velocity is solved at the initial thickness first (models with
    ``solve_velocity``), and before every step the stable time step is evaluated at the current state; a step longer
    than it is split into equal sub-steps (a warning when the count changes; the record sums them; more than
    ``stability.MAX_SUBSTEPS`` raise InputError).  After every step ``guard`` (default ``stability.Guard()``;
    ``False`` for none) checks the clamp, volume, thickness and speed and raises PhysicsGuardError, after
    ``on_step`` has seen the step.  A failing step (the initial velocity solve included: step 0) raises
    ModelStepError naming it."""
    from tqdm.auto import tqdm

    from icesheet import stability

    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 0:
        raise ValueError(f"n_steps = {n_steps!r}: must be an integer >= 0")
    guard = stability.Guard() if guard is None else guard
    initial = None
    if stable and hasattr(model, "solve_velocity"):
        from icesheet.errors import ModelStepError

        start = time.perf_counter()
        try:
            solve = model.solve_velocity()
        except Exception as exc:
            raise ModelStepError(f"step 0, the velocity solve at the initial state (t = {model.time:g} yr), failed: "
                                 f"{type(exc).__name__}: {' '.join(str(exc).split())}; check the initial state and "
                                 "the [solver] options (max_iterations, tolerance, strategy)") from exc
        initial = StepInfo(dt=0.0, picard_iterations=solve.picard_iterations, newton_iterations=solve.newton_iterations,
                           chord_iterations=solve.chord_iterations, final_residual=solve.final_residual,
                           wall_time=time.perf_counter() - start)
    records = [_step_record(model, 0, initial)]
    if on_step is not None:
        on_step(model, records[-1])
    show = progress and model.mesh.comm.rank == 0
    count = 1
    with tqdm(total=n_steps, disable=not show, desc="time steps", unit="step") as bar:
        for k in range(1, n_steps + 1):
            if stable:
                limit = stability.time_step_limit(model)
                count, previous = stability.substeps(dt, limit.dt, stability.MAX_SUBSTEPS), count
                if count != previous and model.mesh.comm.rank == 0:
                    logger.warning("step %d: dt = %g yr is split into %d sub-steps of %.3g yr: %s", k, dt, count,
                                   dt / count, limit.describe())
            info = _substeps(model, k, dt, count)
            records.append(_step_record(model, k, info, count))
            logger.info("step %d t=%.4g yr: volume %.6e m^3, VAF %.6e m^3, %d Picard + %d Newton + %d chord "
                        "iterations, %d sub-steps, %.2f s", k, model.time, records[-1]["volume"], records[-1]["vaf"],
                        info.picard_iterations, info.newton_iterations, info.chord_iterations, count, info.wall_time)
            bar.set_postfix(picard=info.picard_iterations, vaf=f"{records[-1]['vaf']:.4e}")
            bar.update()
            if on_step is not None:
                on_step(model, records[-1])
            if guard:
                guard.check_step(model, k, records[-1]["volume"], info.clamped_volume)
    return records


def _substeps(model, k: int, dt: float, count: int) -> StepInfo:
    """``count`` steps of ``dt / count``, as one StepInfo (iterations, clamped volume and wall time summed)."""
    from icesheet.errors import ModelStepError

    from checkpointing.rundirs import check_terminated

    infos = []
    for _ in range(count):
        check_terminated()
        try:
            infos.append(model.step(dt / count))
        except Exception as exc:
            raise ModelStepError(f"step {k} (t = {model.time:g} yr, dt = {dt / count:g} yr) failed: "
                                 f"{type(exc).__name__}: {' '.join(str(exc).split())}; try a smaller --dt") from exc
    return StepInfo(dt=dt, picard_iterations=sum(i.picard_iterations for i in infos),
                    picard_changes=[c for i in infos for c in i.picard_changes],
                    residual_history=[r for i in infos for r in i.residual_history],
                    newton_iterations=sum(i.newton_iterations for i in infos),
                    chord_iterations=sum(i.chord_iterations for i in infos),
                    final_residual=infos[-1].final_residual, clamped_volume=sum(i.clamped_volume for i in infos),
                    wall_time=sum(i.wall_time for i in infos))


def _step_record(model, step: int, info: StepInfo | None, substeps: int = 0) -> dict:
    return {"step": step, "time": model.time, "volume": model.volume(), "vaf": model.volume_above_flotation(),
            "picard_iterations": info.picard_iterations if info else 0,
            "newton_iterations": info.newton_iterations if info else 0,
            "chord_iterations": info.chord_iterations if info else 0,
            "final_residual": info.final_residual if info else float("nan"),
            "clamped_volume": info.clamped_volume if info else 0.0, "substeps": substeps,
            "wall_time": info.wall_time if info else 0.0}
