"""Peak memory and wall time of an ice-model adjoint against the number of time steps l: our checkpoint manager vs
vanilla pyadjoint.

The toy-model comparison (benchmarks/bench_manager.py) has a 0.034 MB state, so constant overheads dominate; this one
runs the real model in one of two set-ups (``--setup``):

``stream`` (default; benchmarks/results/bench_memory_ice.*)
    the ``marine_ice_stream`` scenario (icesheet.scenarios.build_model; MISMIP+ bed) on a ``--cell-size`` mesh
    (2.5 km), log friction (theta = log C, the control), steps of ``--dt`` = 2 years (at 2.5 km the scenario's 10-year
    step fails to converge after 9 steps), J = volume above flotation (VAF) at step l.  To make steps cheaper the
    Picard loop stops at ``solver.tolerance = solver.residual_tolerance = --tolerance`` (1e-2) and Newton always
    finishes the solve (``solver.newton_finish = "on"``, to 1e-10), so every variant differentiates the same
    converged velocity.  H-Revolve's platform is uncalibrated: w = r = 1 forward step on the disk.
``mismip`` (benchmarks/results/bench_memory_mismip.*; docs/mismip.md, "Memory and time of the flagship gradient")
    the flagship gradient's configuration (issue 10, item 3): MISMIP+ Ice1r (``mismip_ice1r``) from the 4 km Ice0
    steady state ``data/mismip/ice0_4km.h5`` interpolated onto a 2 km mesh (``IceModel.load_state``), steps of
    0.1 year, J = VAF at step l, controls the Weertman coefficient C and the melt-rate factor f (icesheet.controls),
    the scenario's default velocity solver (Picard then Newton to 1e-10, fixed-point adjoint).  The platform is
    calibrated on this machine (checkpointing.adjoint.calibration, as ``icesheet gradient --calibrate`` does;
    below).

One state x_i = (thickness h, velocity u): 3 P1 fields, ``state_mb``.

Variants, each (variant, l) in its own process (subprocess), run one after the other (a concurrent run would disturb
both the peaks and the timings):

- ``forward-only``: l untaped steps (``checkpointing.adjoint.evaluate``): the baseline;
- ``manager-store-all``: our manager, every state in RAM; with calibration this run *is* the calibration
  (``calibrate``: one store-all gradient timing every step, plus a write and read of the state on each tier);
- ``manager-revolve``: our manager, Revolve with ``--slots`` RAM checkpoints (Griewank & Walther 2000);
- ``manager-hrevolve``: our manager, H-Revolve on ``--slots`` RAM slots + ``--disk-slots`` on disk in a temporary
  directory (stream: unbounded; mismip: 10 RAM + 40 disk, the flagship's) (Herrmann & Pallez 2020), planned on the
  calibrated platform when calibrated;
- ``pyadjoint-store-all``: vanilla pyadjoint, the whole loop on one tape, ``ReducedFunctional.derivative``;
- ``pyadjoint-revolve``: vanilla pyadjoint with ``tape.enable_checkpointing(checkpoint_schedules.Revolve(l, slots))``,
  written as pyadjoint's checkpointing needs (bench_manager.py): the initial state is assigned from copies on the
  tape, and the functional term is taped after the step, inside the same time step.

Every process runs the same warm-up first (a 2-step gradient with the manager and with vanilla pyadjoint on a
10 km mesh, kept alive: kernels compiled, caches filled; a warm-up on the measured mesh itself, then freed, left
~15 MB of freed heap that the measured run reused without raising ru_maxrss, so that store-all showed only ~0.46
states per step), records ``ru_maxrss`` (``start_mb``), builds the model and runs its configuration.
``above_start_mb`` = peak RSS - ``start_mb``; ``above_forward_mb`` = this process's ``above_start_mb`` minus the
forward-only process's at the same l: the memory the adjoint costs beyond running the model (subtracting increments
rather than absolute peaks removes the ~1 MB scatter of ``start_mb`` between processes); ``above_forward_states`` =
that / ``state_mb``.  ``growth_states_per_step`` is the least-squares slope of ``above_forward_states`` against l.
Every variant's dJ/dp . h for a fixed h per control must agree with manager-store-all's to 1e-8 relative (the largest
difference over the controls is ``relative_difference``).

Goals.  Issue 5 (``flat``, ``goal_met``; bounded schedules manager-revolve and manager-hrevolve): the slope is
< 0.05 states per step and the largest value over l is <= slots + 3 states.  Issue 10 (:func:`goal_check`, per
row): (a) ``within_bound``: ``above_forward_mb`` <= ``bound_mb`` = (slots + 5) x ``state_mb`` + W, where W, the
*working set of one backward step*, is measured as ``above_forward_mb`` of manager-store-all at l = 1 (one taped
step, its adjoint solves with their matrices and factorisations, the manager's bookkeeping, and the one or two states
that store-all holds at l = 1, which makes W at most 2 states generous); (b) ``below_vanilla_x`` >= 5: pyadjoint
store-all's peak RSS at the same l (measured, or where it was not run extrapolated along its least-squares line in l,
:func:`extrapolate`) over this row's; ``below_vanilla_adjoint_x`` is the same ratio of the memory above the forward
run.  The summary lines evaluate both at the set-up's target length (``Setup.target``: 1000 for mismip), where
vanilla store-all is extrapolated.  With calibration, manager-store-all's rows are the calibration's run, whose
one-step warm-up on the measured mesh frees memory (most of W) that the stored states then fill unseen by
ru_maxrss: its growth shows only once the states exceed it.

Time (calibrated set-ups).  The measured makespan (the sum of the manager's per-action wall times,
``counters.wall_time``) over the simulator's prediction for the schedule that ran, with the per-step costs measured by
the manager-store-all run at the same l (``calibration_steps`` = l); where none ran at that l, with the uniform mean
costs of the longest calibration (``calibration_steps`` < l: an extrapolation of the calibration, which the table
says).  The load average (1 minute) at the start and end of each run stands beside it.  On a shared machine the wall
times follow the share of the cores a run gets, which changes between the calibration and the run; so beside it
``cpu_ratio_over_predicted`` compares this process's CPU time (``cpu_s``, ``time.process_time`` over the run) relative
to the calibration run's with the predicted makespan relative to the calibration's measured one:
(cpu_s / cpu_s of the calibrating store-all run) / (predicted / that run's makespan).

Measured (2.5 km, 0.2 MB per state, l = 10, 40, 120, 4 slots, two runs at a time): the manager's store-all grows
0.97 states per step; its Revolve and H-Revolve stay within 35.0-37.5 MB above the forward-only run at every l
(slopes 0.078 and 0.025 states per step), but that is ~175-185 states, not <= 7: a constant adjoint overhead
(vanilla pyadjoint store-all at l = 10 is at 42 MB too), so the issue-5 goal is not met at this state size.  Vanilla
pyadjoint grows 4.2 states per step (store-all) and 3.7 (Revolve(l, 4)), and with checkpointing its gradient is wrong
on this model: dJ.h 4-12% off store-all's, also with Revolve(4, 4) at 10 km (0.84%, independent of the tolerance),
while its replayed J agrees to 1e-15 and ``SingleMemoryStorageSchedule`` agrees exactly
(benchmarks/bench_pyadjoint_checkpointing_bug.py reproduces this on a 1-D model and traces its cause).  The mismip
set-up's figures are in docs/mismip.md.

Usage:  python benchmarks/bench_memory_ice.py [--setup stream|mismip] [--cell-size M] [--dt YR] [--steps L ...]
        [--slots S] [--variants V ...] [--quick | --full] [--fresh] [--table-only] [--figure PNG] [--breakdown]
(mismip: vanilla pyadjoint runs up to l = 250; ``--full``: l = 1, 25, 50, 100, 250, 1000.)
Rows of earlier invocations with the same settings are kept (lengths can be measured in several invocations; a
(variant, l) measured again is replaced); ``--fresh`` drops them.  Prints tables and writes
benchmarks/results/<name>.{csv,json}.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from checkpointing.memory import c_heap_bytes, peak_rss_mb  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
VARIANTS = ("forward-only", "manager-store-all", "manager-revolve", "manager-hrevolve", "pyadjoint-store-all",
            "pyadjoint-revolve")
BOUNDED = ("manager-revolve", "manager-hrevolve")
COLUMNS = ("variant", "steps", "cell_size", "state_mb", "start_mb", "peak_mb", "above_start_mb", "above_forward_mb",
           "above_forward_states", "growth_states_per_step", "flat", "goal_met", "bound_mb", "within_bound",
           "below_vanilla_x", "below_vanilla_adjoint_x", "extrapolated", "run_s", "forward_steps",
           "measured_makespan_s", "predicted_makespan_s", "measured_over_predicted", "calibration_steps",
           "cpu_s", "cpu_ratio_over_predicted", "load_start", "load_end", "directional_derivative",
           "relative_difference", "agrees_with_store_all")
WARMUP_CELL_SIZE = 10000.0  # m: the warm-up compiles the same kernels on a coarse mesh
FLAT_SLOPE = 0.05  # states per step: below this a variant counts as flat in l
VANILLA = "pyadjoint-store-all"


@dataclasses.dataclass(frozen=True)
class Setup:
    """A configuration of the benchmark: its defaults and the name of its results."""

    name: str
    results: str
    cell_size: float
    dt: float
    steps: tuple
    slots: int
    calibrate: bool
    controls: tuple
    target: int  # l at which the summary compares with vanilla store-all (extrapolated if not measured)
    disk_slots: int | None = None  # H-Revolve's disk level (None: unbounded)
    full_steps: tuple = ()  # --full: the chain lengths
    vanilla_max: int | None = None  # the longest chain vanilla pyadjoint runs (longer: extrapolated)


SETUPS = {
    "stream": Setup("stream", "bench_memory_ice", 2500.0, 2.0, (10, 40, 120), 4, False, ("friction",), 120),
    "mismip": Setup("mismip", "bench_memory_mismip", 2000.0, 0.1, (1, 25, 100, 250), 10, True,
                    ("friction", "melt"), 1000, disk_slots=40, full_steps=(1, 25, 50, 100, 250, 1000),
                    vanilla_max=250),
}


# -- the model of each set-up --------------------------------------------------------------------------------------
def _build(setup: Setup, cell_size: float, tolerance: float, steps: int):
    """(model, functional, {control: direction h}) for a run of ``steps`` steps."""
    import firedrake as fd

    from icesheet.controls import control_function
    from icesheet.functionals import build_functional

    if setup.name == "stream":
        from icesheet.scenarios import build_model, scenario_parameters

        parameters = scenario_parameters("marine_ice_stream", overrides={
            "mesh.cell_size": cell_size, "solver.tolerance": tolerance, "solver.residual_tolerance": tolerance,
            "solver.newton_finish": "on"})
        model = build_model("marine_ice_stream", parameters, friction_parameterisation="log")
    else:
        from experiments.mismip import STATES, build

        model = build("mismip_ice1r", cell_size, STATES / "ice0_4km.h5")
    x, y = fd.SpatialCoordinate(model.mesh)
    directions = {c: fd.Function(control_function(model, c).function_space()).interpolate(
        fd.sin(x / 1.0e5) + fd.cos(y / 2.0e4)) for c in setup.controls}
    return model, build_functional(model, "vaf", steps, "final"), directions


def _platform_and_tiers(variant: str, slots: int, disk_slots, directory: str, calibration):
    """The platform and tiers of a manager variant (store-all: those its calibration measures); with
    ``calibration`` its measured costs, the capacities staying the variant's (RAM level only for Revolve)."""
    from checkpointing.adjoint import tiers_for_platform
    from checkpointing.platform import Platform

    disk = "inf" if disk_slots is None else disk_slots
    spec = {"manager-store-all": f"{slots}:0:0,{disk}:1:1", "manager-revolve": f"{slots}:0:0",
            "manager-hrevolve": f"{slots}:0:0,{disk}:1:1"}[variant]
    platform = Platform.from_spec(spec)
    if calibration is not None:
        levels = platform.n_levels
        calibration = dataclasses.replace(calibration, write_costs=calibration.write_costs[:levels],
                                          read_costs=calibration.read_costs[:levels],
                                          capacities=tuple(level.capacity for level in platform.levels),
                                          names=calibration.names[:levels])
        platform = calibration.platform()
    return platform, tiers_for_platform(platform, [directory] * (platform.n_levels - 1)), calibration


def resized_calibration(fields: dict, steps: int):
    """The Calibration saved as ``fields`` for a chain of ``steps``: itself when it measured that many steps, else
    its mean forward and backward costs for every step (uniform costs: an extrapolation of the calibration)."""
    from checkpointing.adjoint.calibration import Calibration

    calibration = Calibration(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
    if calibration.steps == steps:
        return calibration
    return dataclasses.replace(calibration, forward_costs=(calibration.uf,) * steps,
                               backward_costs=(calibration.ub,) * (steps + 1), taped_forward_costs=())


def _manager(variant: str, loop, slots: int, directory: str, calibrate: bool, calibration_fields,
             disk_slots=None):
    """(forward steps, dJ/dp per control, timing dict) from one manager run (forward-only: one untaped sweep)."""
    from checkpointing.adjoint import evaluate, gradient
    from checkpointing.adjoint.calibration import calibrate as measure
    from checkpointing.planners import plan

    if variant == "forward-only":
        evaluate(loop)
        return loop.steps, None, {}
    if variant == "manager-store-all":
        if not calibrate:
            result = gradient(loop, "store-all")
            return result.counters.forward_steps, result.gradient, {}
        _, tiers, _ = _platform_and_tiers(variant, slots, disk_slots, directory, None)
        calibration = measure(loop, tiers)
        fields = {f.name: getattr(calibration, f.name) for f in dataclasses.fields(calibration) if f.name != "result"}
        return (calibration.result.counters.forward_steps, calibration.result.gradient,
                {"calibration": fields,
                 "measured_makespan_s": round(sum(calibration.forward_costs + calibration.backward_costs), 2),
                 "wall_time_by_action": {"advance": round(sum(calibration.forward_costs), 2),
                                         "backward": round(sum(calibration.backward_costs), 2)}})
    calibration = None if calibration_fields is None else resized_calibration(calibration_fields, loop.steps)
    platform, tiers, calibration = _platform_and_tiers(variant, slots, disk_slots, directory, calibration)
    schedule = plan(variant.removeprefix("manager-"), loop.steps, platform)
    result = gradient(loop, schedule, platform, tiers)
    timing = {"measured_makespan_s": round(sum(result.counters.wall_time.values()), 2),
              "wall_time_by_action": {k: round(v, 2) for k, v in result.counters.wall_time.items()},
              "mismatches": result.counters.mismatches(result.predicted)}  # counts the simulator did not predict
    if calibration is not None:
        timing.update(predicted_makespan_s=round(calibration.predict(schedule).makespan, 2),
                      calibration_steps=len(calibration_fields["forward_costs"]))
    return result.counters.forward_steps, result.gradient, timing


def _pyadjoint(variant: str, model, functional, controls, dt: float, steps: int, slots: int):
    """The same with vanilla pyadjoint (forward steps of its checkpointed recomputation are not observable)."""
    from checkpoint_schedules import Revolve
    from firedrake.adjoint import (Control, ReducedFunctional, Tape, continue_annotation, pause_annotation,
                                   set_working_tape)

    initial = [f.copy(deepcopy=True) for f in model.state]
    with set_working_tape(Tape()) as tape:
        if variant == "pyadjoint-revolve":
            tape.enable_checkpointing(Revolve(steps, slots))
        continue_annotation()
        control = [Control(c) for c in controls]
        for f, f0 in zip(model.state, initial):
            f.assign(f0)
        value = 0.0
        for i in tape.timestepper(iter(range(steps))):
            model.step(dt)
            term = functional(i + 1, model.state)
            value = value if term is None else value + term
        pause_annotation()
        derivative = ReducedFunctional(value, control).derivative()
    return (steps if variant == "pyadjoint-store-all" else None), derivative


def _warm_up(settings: dict, directory: str) -> list:
    """The same warm-up in every process: a 2-step gradient with the manager and with vanilla pyadjoint on a coarse
    mesh; returns the models, to be kept alive (memory they freed could be reused unseen by ru_maxrss)."""
    from icesheet.controls import time_loop

    setup, dt = SETUPS[settings["setup"]], settings["dt"]
    models = []
    for warm in ("manager-store-all", "pyadjoint-store-all"):
        model, functional, _ = _build(setup, max(settings["cell_size"], WARMUP_CELL_SIZE), settings["tolerance"], 2)
        loop = time_loop(model, functional, [dt] * 2, setup.controls)
        if warm.startswith("manager"):
            _manager(warm, loop, settings["slots"], directory, False, None)
        else:
            _pyadjoint(warm, model, functional, loop.controls, dt, 2, settings["slots"])
        models.append((model, functional))
    return models


def breakdown(settings: dict) -> list[str]:
    """Where one backward step's working set W goes (``--breakdown``; glibc only): after the warm-up and a forward
    step, one step taped and differentiated with vanilla pyadjoint (what the manager does per backward step), with
    the C heap in use (``mallinfo2``: PETSc's matrices and factorisations, and every numpy array) and the memory
    Python allocated (``tracemalloc``: numpy arrays, the tape's saved values) after the forward step, after taping
    and after the adjoint; then the PETSc matrices the adjoint left alive and a Cholesky factorisation of the
    largest with the velocity solver's package (CHOLMOD, or MUMPS without SuiteSparse), as the adjoint's linear
    solve makes one."""
    import gc
    import tracemalloc

    from firedrake.adjoint import Control, ReducedFunctional, Tape, continue_annotation, pause_annotation, \
        set_working_tape
    from petsc4py import PETSc

    from icesheet.controls import control_function

    lines, marks = [], {}

    def mark(name):
        marks[name] = (c_heap_bytes(collect=False) / 1e6, tracemalloc.get_traced_memory()[0] / 1e6, peak_rss_mb())

    def change(a, b):
        heap, traced, peak = (y - x for x, y in zip(marks[a], marks[b]))
        return (f"C heap in use {heap:+.1f} MB, of which Python-allocated {traced:+.1f} MB; peak RSS {peak:+.1f} MB")

    setup = SETUPS[settings["setup"]]
    with tempfile.TemporaryDirectory(prefix="bench-memory-ice-") as directory:
        warm_models = _warm_up(settings, directory)  # noqa: F841 (kept alive)
    model, functional, _ = _build(setup, settings["cell_size"], settings["tolerance"], 1)
    controls = [control_function(model, c) for c in setup.controls]
    initial = [f.copy(deepcopy=True) for f in model.state]
    model.step(settings["dt"])  # the forward step's own solvers and matrices exist before the marks
    tracemalloc.start()
    matrices = {id(o) for o in gc.get_objects() if isinstance(o, PETSc.Mat)}
    mark("forward")
    with set_working_tape(Tape()) as tape:
        continue_annotation()
        for f, f0 in zip(model.state, initial):
            f.assign(f0)
        model.step(settings["dt"])
        value = functional(1, model.state)
        pause_annotation()
        mark("taped")
        ReducedFunctional(value, [Control(c) for c in controls]).derivative()
        gc.collect()
        mark("adjoint")
        blocks = len(tape.get_blocks())
    tracemalloc.stop()
    new = [o for o in gc.get_objects() if isinstance(o, PETSc.Mat) and id(o) not in matrices and o.handle]
    lines.append(f"taping one step ({blocks} blocks): {change('forward', 'taped')}")
    lines.append(f"its adjoint: {change('taped', 'adjoint')}")
    lines.append("PETSc matrices the adjoint left alive: " + ", ".join(
        f"{m.getSize()[0]}x{m.getSize()[1]} ({m.getInfo()['nz_used']:.0f} nonzeros)" for m in new))
    if new:
        largest = max(new, key=lambda m: m.getInfo()["nz_used"])
        package = "cholmod" if PETSc.Sys.hasExternalPackage("cholmod") else "mumps"  # as the velocity solver
        mark("before factor")
        ksp = PETSc.KSP().create(comm=largest.comm)
        ksp.setOperators(largest)
        ksp.setType("preonly")
        ksp.getPC().setType("cholesky")
        ksp.getPC().setFactorSolverType(package)
        ksp.setUp()
        mark("factor")
        lines.append(f"a Cholesky factorisation ({package}) of the largest: {change('before factor', 'factor')}")
        ksp.destroy()
    return lines


def worker(variant: str, settings: dict, steps: int, calibration_fields) -> dict:
    from icesheet.controls import time_loop

    setup = SETUPS[settings["setup"]]
    cell_size, dt, slots = settings["cell_size"], settings["dt"], settings["slots"]
    with tempfile.TemporaryDirectory(prefix="bench-memory-ice-") as directory:
        warm_models = _warm_up(settings, directory)  # noqa: F841 (kept alive)
        start_mb = peak_rss_mb()
        model, functional, directions = _build(setup, cell_size, settings["tolerance"], steps)
        loop = time_loop(model, functional, [dt] * steps, setup.controls)
        load_start = os.getloadavg()[0]
        start, cpu_start = time.perf_counter(), time.process_time()
        if variant.startswith("pyadjoint"):
            forward_steps, derivative = _pyadjoint(variant, model, functional, loop.controls, dt, steps, slots)
            timing = {}
        else:
            forward_steps, derivative, timing = _manager(variant, loop, slots, directory, settings["calibrate"],
                                                         calibration_fields,
                                                         settings.get("disk_slots", setup.disk_slots))
        run_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
        peak_mb = peak_rss_mb()
        load_end = os.getloadavg()[0]
    state_mb = sum(f.dat.data_ro.nbytes for f in model.state) / 1e6
    slopes = None if derivative is None else [
        float(d.dat.inner(directions[c].dat)) for c, d in zip(setup.controls, derivative)]
    return {"variant": variant, "steps": steps, "cell_size": cell_size, "state_mb": round(state_mb, 4),
            "start_mb": round(start_mb, 1), "peak_mb": round(peak_mb, 1),
            "above_start_mb": round(peak_mb - start_mb, 1), "run_s": round(run_s, 2), "cpu_s": round(cpu_s, 2),
            "forward_steps": forward_steps,
            "load_start": round(load_start, 2), "load_end": round(load_end, 2), "directional_derivative": slopes,
            **timing}


# -- the analysis (pure Python: tests/test_bench_memory.py) --------------------------------------------------------
def least_squares_line(xs, ys) -> tuple[float, float]:
    """(slope, intercept) of the least-squares line through the points (x, y); at least two distinct x."""
    import numpy as np

    xs, ys = [float(x) for x in xs], [float(y) for y in ys]
    if len(xs) != len(ys) or len(set(xs)) < 2:
        raise ValueError(f"xs = {xs}: need at least two distinct values, one y each")
    slope, intercept = np.polyfit(xs, ys, 1)
    return float(slope), float(intercept)


def extrapolate(rows: list[dict], variant: str, steps: int) -> dict | None:
    """A row of ``variant`` at ``steps`` extrapolated along the least-squares line of its measured
    ``above_forward_mb`` in l (lengths >= 2 only: at l = 1 the one-step working set is not yet a per-step growth);
    its ``peak_mb`` is the forward-only run's peak at ``steps`` (measured, else the largest measured) plus that.
    None with fewer than two measured lengths."""
    measured = [r for r in rows if r["variant"] == variant and r["steps"] >= 2 and not r.get("extrapolated")
                and r.get("above_forward_mb") is not None]
    forward = sorted((r for r in rows if r["variant"] == "forward-only" and not r.get("extrapolated")),
                     key=lambda r: (r["steps"] == steps, r["steps"]))
    if len({r["steps"] for r in measured}) < 2 or not forward:
        return None
    slope, intercept = least_squares_line([r["steps"] for r in measured], [r["above_forward_mb"] for r in measured])
    above = slope * steps + intercept
    state_mb = measured[0]["state_mb"]
    return {"variant": variant, "steps": steps, "cell_size": measured[0]["cell_size"], "state_mb": state_mb,
            "peak_mb": round(forward[-1]["peak_mb"] + above, 1), "above_forward_mb": round(above, 1),
            "above_forward_states": round(above / state_mb, 1), "extrapolated": True}


def working_set_mb(rows: list[dict]) -> float | None:
    """W: manager-store-all's memory above the forward-only run at l = 1 (module docstring); None if not run."""
    one = [r for r in rows if r["variant"] == "manager-store-all" and r["steps"] == 1 and not r.get("extrapolated")]
    return one[0]["above_forward_mb"] if one and one[0].get("above_forward_mb") is not None else None


def goal_check(rows: list[dict], slots: int) -> None:
    """Issue 10's goal per row (in place): ``bound_mb`` and ``within_bound`` for the bounded schedules,
    ``below_vanilla_x`` and ``below_vanilla_adjoint_x`` for every adjoint but vanilla store-all's own (module
    docstring); vanilla store-all at a length where it was not measured is :func:`extrapolate`'d."""
    working_set = working_set_mb(rows)
    vanilla = {}
    for r in rows:
        if r["steps"] not in vanilla:
            same = [v for v in rows if v["variant"] == VANILLA and v["steps"] == r["steps"]]
            vanilla[r["steps"]] = same[0] if same else extrapolate(rows, VANILLA, r["steps"])
    for r in rows:
        above, reference = r.get("above_forward_mb"), vanilla[r["steps"]]
        r["bound_mb"] = (None if working_set is None or above is None or r["variant"] not in BOUNDED else
                         round((slots + 5) * r["state_mb"] + working_set, 1))
        r["within_bound"] = None if r["bound_mb"] is None else bool(above <= r["bound_mb"])
        usable = reference is not None and r["variant"] not in (VANILLA, "forward-only") and above is not None
        r["below_vanilla_x"] = round(reference["peak_mb"] / r["peak_mb"], 2) if usable else None
        r["below_vanilla_adjoint_x"] = (round(reference["above_forward_mb"] / above, 1)
                                        if usable and above > 0 else None)


def derive(rows: list[dict], slots: int) -> None:
    """Add the columns relative to the forward-only run at the same l, the slopes over l, the gradients' agreement
    and the time ratio (in place; :func:`goal_check` adds the goals)."""
    by = {(r["variant"], r["steps"]): r for r in rows}
    for r in rows:
        baseline = by.get(("forward-only", r["steps"]))
        r["above_forward_mb"] = (None if baseline is None else
                                 round(r["above_start_mb"] - baseline["above_start_mb"], 1))
        r["above_forward_states"] = (None if baseline is None else
                                     round(r["above_forward_mb"] / r["state_mb"], 1))
        reference = by.get(("manager-store-all", r["steps"]))
        mine, theirs = r.get("directional_derivative"), reference and reference.get("directional_derivative")
        if isinstance(mine, float):  # rows of the single-control set-up saved before controls were lists
            mine, theirs = [mine], [theirs]
        if mine is None or theirs is None:
            r["relative_difference"] = r["agrees_with_store_all"] = None
        else:
            difference = max(abs(a - b) / abs(b) for a, b in zip(mine, theirs))
            r["relative_difference"] = float(f"{difference:.2e}")
            r["agrees_with_store_all"] = difference <= 1e-8
        predicted = r.get("predicted_makespan_s")
        r["measured_over_predicted"] = (None if not predicted or r.get("measured_makespan_s") is None else
                                        round(r["measured_makespan_s"] / predicted, 3))
        calibration = by.get(("manager-store-all", r.get("calibration_steps")))  # the run that calibrated it
        r["cpu_ratio_over_predicted"] = (round((r["cpu_s"] / calibration["cpu_s"]) / (
            predicted / calibration["measured_makespan_s"]), 3) if predicted and calibration
            and r.get("cpu_s") and calibration.get("cpu_s") else None)
    for variant in {r["variant"] for r in rows}:
        same = sorted((r for r in rows if r["variant"] == variant and r["above_forward_states"] is not None
                       and r["steps"] >= 2), key=lambda r: r["steps"])
        slope = (None if len({r["steps"] for r in same}) < 2 else round(least_squares_line(
            [r["steps"] for r in same], [r["above_forward_states"] for r in same])[0], 3))
        flat = None if variant not in BOUNDED or slope is None else bool(slope < FLAT_SLOPE)
        goal = None if flat is None else bool(flat and max(r["above_forward_states"] for r in same) <= slots + 3)
        for r in rows:
            if r["variant"] == variant:
                r["growth_states_per_step"], r["flat"], r["goal_met"] = slope, flat, goal


def summary(rows: list[dict], setup: Setup, slots: int) -> list[str]:
    """The lines that state the goals at the target length (extrapolations named)."""
    lines = []
    working_set = working_set_mb(rows)
    if working_set is not None:
        lines.append(f"W (one backward step's working set, manager-store-all at l = 1 above forward-only) = "
                     f"{working_set:g} MB; bound = (slots + 5) states + W = "
                     f"{(slots + 5) * rows[0]['state_mb'] + working_set:.1f} MB above the forward run")
    vanilla = next((r for r in rows if r["variant"] == VANILLA and r["steps"] == setup.target), None)
    vanilla = vanilla or extrapolate(rows, VANILLA, setup.target)
    for variant in BOUNDED:
        measured = sorted((r for r in rows if r["variant"] == variant and r.get("above_forward_mb") is not None),
                          key=lambda r: r["steps"])
        if not measured:
            continue
        r = measured[-1]  # the longest chain measured
        line = (f"{variant}: {', '.join(str(m['above_forward_mb']) for m in measured)} MB above forward at l = "
                f"{', '.join(str(m['steps']) for m in measured)} (bound {r['bound_mb']} MB)")
        if vanilla is not None:
            how = "extrapolated" if vanilla.get("extrapolated") else "measured"
            line += (f"; at l = {r['steps']} against vanilla store-all at l = {setup.target} ({how}: peak "
                     f"{vanilla['peak_mb']} MB, {vanilla['above_forward_mb']} MB above forward): peak RSS "
                     f"{vanilla['peak_mb'] / r['peak_mb']:.2f}x below, memory above forward "
                     f"{vanilla['above_forward_mb'] / r['above_forward_mb']:.1f}x below")
        lines.append(line)
    return lines


# -- output --------------------------------------------------------------------------------------------------------
def _print_table(rows, header, keys, width=12):
    print("  ".join(f"{h:>19}" if i == 0 else f"{h:>{width}}" for i, h in enumerate(header)))
    for r in rows:
        print("  ".join(f"{str(r.get(k)):>19}" if i == 0 else f"{str(r.get(k)):>{width}}"
                        for i, k in enumerate(keys)))


def write_and_print(rows: list[dict], settings: dict) -> list[dict]:
    """Derive, add the extrapolated rows (vanilla and our store-all at the target length when not measured), save
    and print; returns every row."""
    setup = SETUPS[settings.get("setup", "stream")]
    rows = [r for r in rows if not r.get("extrapolated")]
    derive(rows, settings["slots"])
    for variant in (VANILLA, "manager-store-all"):
        if not any(r["variant"] == variant and r["steps"] == setup.target for r in rows):
            guess = extrapolate(rows, variant, setup.target)
            if guess is not None:
                rows.append(guess)
    goal_check(rows, settings["slots"])
    rows.sort(key=lambda r: (r["steps"], VARIANTS.index(r["variant"])))
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / f"{setup.results}.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    (RESULTS / f"{setup.results}.json").write_text(json.dumps({**settings, "rows": rows}, indent=1))
    print(f"state = {rows[0]['state_mb']} MB (cell size {settings['cell_size']:g} m), slots = {settings['slots']}, "
          f"dt = {settings['dt']:g} yr, set-up {setup.name}")
    _print_table(rows, ("variant", "l", "peak MB", "+start MB", "+fwd MB", "+fwd states", "growth/step", "flat",
                        "goal 5", "bound MB", "in bound", "x vanilla", "x van. adj", "extrap.", "rel. diff dJ.h"),
                 ("variant", "steps", "peak_mb", "above_start_mb", "above_forward_mb", "above_forward_states",
                  "growth_states_per_step", "flat", "goal_met", "bound_mb", "within_bound", "below_vanilla_x",
                  "below_vanilla_adjoint_x", "extrapolated", "relative_difference"), 10)
    timed = [r for r in rows if r.get("run_s") is not None]
    print("time:")
    _print_table(timed, ("variant", "l", "run s", "cpu s", "fwd steps", "makespan s", "predicted s", "meas/pred",
                         "cpu ratio", "calib. l", "load start", "load end"),
                 ("variant", "steps", "run_s", "cpu_s", "forward_steps", "measured_makespan_s",
                  "predicted_makespan_s", "measured_over_predicted", "cpu_ratio_over_predicted", "calibration_steps",
                  "load_start", "load_end"))
    for line in summary(rows, setup, settings["slots"]):
        print(line)
    print(f"written: {RESULTS / (setup.results + '.csv')}, {RESULTS / (setup.results + '.json')}")
    return rows


def markdown(rows: list[dict]) -> str:
    """The table of docs/mismip.md: one line per (l, variant), memory, goal, gradient and time columns."""
    def cell(value, digits=None):
        if value is None:
            return ""
        if isinstance(value, bool):
            return "yes" if value else "**no**"
        return f"{value:.{digits}f}" if digits is not None and isinstance(value, float) else str(value)

    lines = ["| l | variant | peak RSS MB | above forward MB (states) | within bound | x below vanilla store-all "
             "(peak; above forward) | dJ.h vs store-all | forward steps | wall s (CPU s) | measured / predicted "
             "(CPU ratio) | load |", "|" + "---|" * 11]
    for r in rows:
        extrapolated = " (extrapolated)" if r.get("extrapolated") else ""
        above = "" if r.get("above_forward_mb") is None else (
            f"{r['above_forward_mb']:.1f} ({r['above_forward_states']:.0f})")
        ratios = ("" if r.get("below_vanilla_x") is None else
                  f"{r['below_vanilla_x']:.2f}; {cell(r.get('below_vanilla_adjoint_x'))}")
        wall = "" if r.get("run_s") is None else f"{r['run_s']:.0f}" + (
            f" ({r['cpu_s']:.0f})" if r.get("cpu_s") is not None else "")
        time_ratio = "" if r.get("measured_over_predicted") is None else (
            f"{r['measured_over_predicted']:.2f}" + (f" ({r['cpu_ratio_over_predicted']:.2f})"
                                                     if r.get("cpu_ratio_over_predicted") else "")
            + ("" if r.get("calibration_steps") == r["steps"] else f", calibrated at l = {r['calibration_steps']}"))
        load = "" if r.get("load_start") is None else f"{r['load_start']:.0f}-{r['load_end']:.0f}"
        lines.append(f"| {r['steps']} | {r['variant']}{extrapolated} | {cell(r.get('peak_mb'), 1)} | {above} | "
                     f"{cell(r.get('within_bound'))} | {ratios} | {cell(r.get('relative_difference'))} | "
                     f"{cell(r.get('forward_steps'))} | {wall} | {time_ratio} | {load} |")
    return "\n".join(lines)


def figure(rows: list[dict], settings: dict, path: Path) -> Path:
    """Memory above the forward-only run against l, one line per variant (log-x), extrapolations dashed, the goal's
    bound dotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    colours = dict(zip(VARIANTS[1:], ("tab:blue", "tab:green", "tab:orange", "tab:red", "tab:purple")))
    for variant, colour in colours.items():
        measured = sorted((r for r in rows if r["variant"] == variant and not r.get("extrapolated")
                           and r.get("above_forward_mb") is not None), key=lambda r: r["steps"])
        if not measured:
            continue
        ax.plot([r["steps"] for r in measured], [r["above_forward_mb"] for r in measured], "o-", color=colour,
                label=variant)
        guess = [r for r in rows if r["variant"] == variant and r.get("extrapolated")]
        if guess:
            ax.plot([measured[-1]["steps"], guess[0]["steps"]],
                    [measured[-1]["above_forward_mb"], guess[0]["above_forward_mb"]], "--", color=colour)
            ax.plot(guess[0]["steps"], guess[0]["above_forward_mb"], "o", mfc="none", color=colour,
                    label=f"{variant}, extrapolated")
    bound = next((r["bound_mb"] for r in rows if r.get("bound_mb") is not None), None)
    if bound is not None:  # the same at every l
        ax.axhline(bound, color="k", linestyle=":", label=f"goal: (slots + 5) states + W = {bound:g} MB")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("time steps l")
    ax.set_ylabel("peak RSS above the forward-only run (MB)")
    ax.set_title(f"adjoint memory, {settings['cell_size'] / 1000:g} km, {rows[0]['state_mb']:.2f} MB per state, "
                 f"{settings['slots']} RAM slots")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# -- driver --------------------------------------------------------------------------------------------------------
def _run_worker(variant: str, settings: dict, steps: int, calibration_fields):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump({"settings": settings, "calibration": calibration_fields}, fh)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", variant, str(steps), fh.name]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    finally:
        os.unlink(fh.name)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        print(f"{variant} l={steps}: failed\n{proc.stderr[-3000:]}", file=sys.stderr, flush=True)
        return None
    print(f"done: {variant} l={steps} ({time.strftime('%H:%M:%S')})", file=sys.stderr, flush=True)
    return json.loads(lines[-1])


def _calibration_for(rows: list[dict], steps: int):
    """The calibration measured at ``steps`` if any, else the one of the longest chain (None without any)."""
    calibrated = [r for r in rows if r.get("calibration")]
    same = [r for r in calibrated if r["steps"] == steps]
    chosen = same or sorted(calibrated, key=lambda r: r["steps"])[-1:]
    return chosen[0]["calibration"] if chosen else None


def _saved(setup: Setup, settings: dict) -> list[dict]:
    path = RESULTS / f"{setup.results}.json"
    if not path.is_file():
        return []
    saved = json.loads(path.read_text())
    same = all(saved.get(k, v) == v for k, v in settings.items())  # a setting added since counts as the same
    return [r for r in saved["rows"] if not r.get("extrapolated")] if same else []


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", choices=sorted(SETUPS), default="stream")
    parser.add_argument("--cell-size", type=float, help="m (set-up's default: stream 2500, mismip 2000)")
    parser.add_argument("--tolerance", type=float, default=1e-2, help="stream: Picard tolerance (Newton finishes)")
    parser.add_argument("--dt", type=float, help="time step, years (stream 2, mismip 0.1)")
    parser.add_argument("--steps", type=int, nargs="+", help="chain lengths (stream 10 40 120; mismip 1 25 100 250)")
    parser.add_argument("--slots", type=int, help="RAM slots of the bounded schedules (stream 4, mismip 10)")
    parser.add_argument("--disk-slots", type=int, help="H-Revolve's disk checkpoints (stream: unbounded; mismip: "
                        "40, as the flagship gradient)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--quick", action="store_true", help="--cell-size 10000 and short chains (a smoke run)")
    parser.add_argument("--full", action="store_true", help="mismip: l = 1 25 50 100 250 1000, vanilla pyadjoint "
                        "up to 250 (hours on 2 shared cores)")
    parser.add_argument("--fresh", action="store_true", help="drop the saved rows of earlier invocations")
    parser.add_argument("--table-only", action="store_true",
                        help="re-derive and print the table from the set-up's saved JSON")
    parser.add_argument("--figure", type=Path, help="also write the figure (PNG) to this path")
    parser.add_argument("--markdown", action="store_true", help="with --table-only: also the table as markdown")
    parser.add_argument("--breakdown", action="store_true",
                        help="only print where one backward step's working set goes (see breakdown())")
    parser.add_argument("--worker", nargs=3, metavar=("VARIANT", "STEPS", "JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        variant, steps, path = args.worker
        given = json.loads(Path(path).read_text())
        print(json.dumps(worker(variant, given["settings"], int(steps), given["calibration"])), flush=True)
        return 0
    setup = SETUPS[args.setup]
    if args.table_only:
        saved = json.loads((RESULTS / f"{setup.results}.json").read_text())
        saved.setdefault("setup", setup.name)
        rows = write_and_print(saved.pop("rows"), saved)
        if args.markdown:
            print(markdown(rows))
        if args.figure:
            print(f"figure: {figure(rows, saved, args.figure)}")
        return 0
    cell_size = args.cell_size or setup.cell_size
    steps = args.steps or list(setup.steps)
    if args.full and setup.full_steps:
        steps = list(setup.full_steps)
    if args.quick:
        cell_size, steps = 10000.0, [s for s in (1, 4, 8) if s > 1 or setup.name == "mismip"]
    settings = {"setup": setup.name, "cell_size": cell_size, "tolerance": args.tolerance,
                "dt": args.dt or setup.dt, "slots": args.slots or setup.slots, "calibrate": setup.calibrate,
                "disk_slots": args.disk_slots or setup.disk_slots}
    for name in ("cell_size", "tolerance", "dt"):
        if settings[name] <= 0:
            parser.error(f"--{name.replace('_', '-')} = {settings[name]}: must be > 0")
    if args.breakdown:
        print("\n".join(breakdown(settings)))
        return 0
    if min(steps) < 1 or settings["slots"] < 1:
        parser.error(f"--steps {steps} (each >= 1) and --slots {settings['slots']} (>= 1)")
    rows = [] if args.fresh else _saved(setup, settings)
    order = [v for v in VARIANTS if v in args.variants]  # store-all (the calibration) before the bounded runs
    for length in sorted(steps):
        for variant in order if length > 1 else ("forward-only", "manager-store-all"):  # l = 1: W only
            if variant not in order or (variant.startswith("pyadjoint") and setup.vanilla_max
                                        and length > setup.vanilla_max):
                continue
            row = _run_worker(variant, settings, length, _calibration_for(rows, length))
            if row is not None:
                rows = [r for r in rows if (r["variant"], r["steps"]) != (variant, length)] + [row]
                rows = write_and_print(rows, settings)  # saved after every run: a stopped benchmark keeps its rows
    if args.figure and rows:
        print(f"figure: {figure(rows, settings, args.figure)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
