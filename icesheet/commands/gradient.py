"""``icesheet gradient``: the gradient of a functional of a scenario's run with respect to a control field, through
the checkpoint manager with a chosen checkpointing schedule.

This module only handles the arguments; icesheet/gradient_run.py computes the gradient and icesheet/output.py
(``GradientWriter``) writes to ``--out``: ``gradient.pvd`` (VTK: the gradient's L2 or H1 Riesz representative and the
control field), ``gradient.png`` (map of the gradient; serial runs), ``gradient.h5`` (firedrake.CheckpointFile: mesh
and gradient Function, for reuse), ``summary.json`` and ``summary.csv`` (J, timings, forward and backward steps,
reads, writes and peak occupancy per storage tier beside the simulator's prediction, peak RSS).

The storage platform is ``--platform FILE|NAME`` (a TOML file, or a shipped platform by name, as for
``checkpointing``: ``checkpointing platforms`` lists them) or one RAM level with ``--ram-slots`` slots
(default: one per step) plus one unbounded disk level per ``--disk-dir``; ``--ram-slots`` overrides level 0's
capacity of a platform file.  ``--calibrate`` first measures the step and storage costs on this model and machine
(one store-all gradient: checkpointing.adjoint.calibration), plans H-Revolve (unless ``--schedule`` is given; the
``nonuniform`` planner then uses the per-step costs) on the calibrated platform and reports its predicted makespan
against the measured time of the run.

All input is checked before Firedrake is imported: an unknown functional, control or schedule, steps < 1, RAM slots
that cannot hold the schedule, an unwritable --disk-dir or --out, an --out holding an earlier gradient (without
--overwrite), a non-finite --sigma or a missing platform file fails with one line naming it.  A --dt above the
stable time step at the initial state (icesheet/stability.py) is refused once the model is built, before any step;
the scenario's default dt is divided instead.  ``--initial-state`` (as for ``icesheet run``) must be an HDF5 file;
its thickness is checked (finite, >= 0) when it is read, before any step.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from checkpointing.emit import ScheduleDoesNotFit
from checkpointing.planners import PLANNERS, plan
from checkpointing.platform import storage_platform
from checkpointing.simulator import InvalidScheduleError, simulate
from icesheet import gradient_run
from icesheet.controls import CONTROLS, RIESZ_MAPS
from icesheet.errors import InputError
from icesheet.functionals import DEFAULT_SIGMA, FUNCTIONALS, WHEN
from icesheet.gradient_run import GradientRequest
from icesheet.outdir import check_output_directory, check_writable_directory
from icesheet.output import GRADIENT_FILES
from icesheet.scenarios import DEFAULT_SCENARIO, SCENARIOS, check_state_file, config_keys, scenario_parameters


def register(subparsers) -> None:
    parser = subparsers.add_parser("gradient", help="gradient of a functional with respect to a control field",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default=DEFAULT_SCENARIO,
                        help=f"one of {', '.join(_shallow_stream_scenarios())} (default {DEFAULT_SCENARIO})")
    parser.add_argument("--config", type=Path, help="TOML file overriding the scenario's parameters")
    parser.add_argument("--functional", required=True,
                        help=f"one of {', '.join(FUNCTIONALS)} (misfit: to the velocity solved at the initial "
                        "state, a synthetic survey at t = 0, with error --sigma)")
    parser.add_argument("--when", default="final",
                        help="'final' (J = j(x_l)) or 'sum' (J = sum of j(x_i), i = 1..l); default final")
    parser.add_argument("--control", required=True, help=f"one of {', '.join(CONTROLS)}")
    parser.add_argument("--steps", type=int, help="number of time steps l (default: the scenario's time.steps)")
    parser.add_argument("--dt", type=float, help="time step in years (default: the scenario's time.dt)")
    parser.add_argument("--mesh-size", type=float, help="target cell size in metres (mesh.cell_size)")
    parser.add_argument("--initial-state", type=Path,
                        help="HDF5 file written by IceModel.save_state: initial thickness and velocity "
                        "(interpolated onto the mesh)")
    parser.add_argument("--schedule", help=f"one of {', '.join(sorted(PLANNERS))} (default store-all, or hrevolve "
                        "with --calibrate)")
    parser.add_argument("--ram-slots", type=int, help="checkpoints held in RAM (level 0)")
    parser.add_argument("--disk-dir", type=Path, action="append", default=[],
                        help="directory of a disk level (repeat for several levels, fastest first)")
    parser.add_argument("--platform", help="platform TOML file (levels, costs), or the name of a shipped one "
                        "(checkpointing platforms lists them)")
    parser.add_argument("--adjoint-mode", default=None, help="fixed-point or unrolled (default: the scenario's)")
    parser.add_argument("--friction", dest="friction_parameterisation",
                        help="friction control: 'log' (theta = log C; the default where the scenario has basal "
                        "friction) or 'linear' (C; the default for ice shelves)")
    parser.add_argument("--riesz", default="L2", help="Riesz map of the gradient: L2 (mass matrix) or H1")
    parser.add_argument("--sigma", type=float, default=DEFAULT_SIGMA, help="observation error of the misfit, m/yr")
    parser.add_argument("--calibrate", action="store_true",
                        help="measure uf, ub, w_k, r_k first; plan H-Revolve on the calibrated platform")
    parser.add_argument("--out", type=Path, default=Path("out/gradient"),
                        help="output directory (default %(default)s); it must not hold the output of an earlier "
                        "gradient unless --overwrite is given")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the output of an earlier gradient in --out (only the files it writes)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="also print the summary as one JSON line (rank 0)")
    parser.set_defaults(handler=main)


def _choice(field: str, value, allowed) -> None:
    if value not in allowed:
        raise InputError(f"{field} = {value!r}: unknown; choose one of {', '.join(allowed)}")


def _shallow_stream_scenarios() -> list[str]:
    return [name for name in sorted(SCENARIOS)
            if "friction_parameterisation" in scenario_parameters(name).get("solver", {})]


def prepare(args) -> GradientRequest:
    """Check every input (pure Python, before Firedrake is imported); raises InputError naming the field."""
    _choice("functional", args.functional, FUNCTIONALS)
    _choice("when", args.when, WHEN)
    _choice("control", args.control, CONTROLS)
    _choice("riesz", args.riesz, RIESZ_MAPS)
    schedule_name = args.schedule or ("hrevolve" if args.calibrate else "store-all")
    _choice("schedule", schedule_name, sorted(PLANNERS))
    if not (math.isfinite(args.sigma) and args.sigma > 0):
        raise InputError(f"sigma = {args.sigma!r}: the observation error must be a finite number > 0 (m/yr)")
    defaults = scenario_parameters(args.scenario)
    if "friction_parameterisation" not in defaults.get("solver", {}):
        raise InputError(f"scenario = {args.scenario!r}: not a shallow-stream scenario with friction and rheology "
                         f"controls; choose one of {', '.join(_shallow_stream_scenarios())}")
    grounded = defaults.get("ice", {}).get("friction", 0.0) > 0
    friction = args.friction_parameterisation or ("log" if grounded else "linear")
    if friction == "log" and not grounded:
        raise InputError(f"friction = 'log': scenario {args.scenario!r} has no basal friction (C = 0, an ice shelf), "
                         "so log C is undefined; use --friction linear")
    overrides = {"solver.friction_parameterisation": friction}
    if args.control == "rheology":
        overrides["solver.rate_factor_parameterisation"] = "log"
    for key, value in (("time.dt", args.dt), ("time.steps", args.steps), ("mesh.cell_size", args.mesh_size),
                       ("solver.adjoint_mode", args.adjoint_mode)):
        if value is not None:
            overrides[key] = value
    parameters = scenario_parameters(args.scenario, args.config, overrides)
    if args.initial_state is not None:
        check_state_file(args.initial_state)
    steps, dt = parameters["time"]["steps"], parameters["time"]["dt"]
    if steps < 1:
        raise InputError(f"steps = {steps!r}: a gradient needs at least one time step (steps >= 1)")
    platform = storage_platform(steps, args.platform, args.ram_slots, args.disk_dir)
    for k, directory in enumerate(args.disk_dir, start=1):  # created by the disk tier, removed again if empty
        check_writable_directory(directory, f"disk_dir (level {k})")
    check_output_directory(args.out, GRADIENT_FILES, args.overwrite)
    try:
        schedule = plan(schedule_name, steps, platform)
        simulate(schedule, platform, steps)
    except (ScheduleDoesNotFit, InvalidScheduleError, ValueError) as err:
        raise InputError(f"ram_slots = {platform.capacities[0]!r} (capacities {platform.capacities}): schedule "
                         f"{schedule_name!r} does not fit l = {steps} steps: {err}") from None
    return GradientRequest(args.scenario, parameters, args.functional, args.when, args.control, steps, dt,
                           schedule_name, platform, list(args.disk_dir), args.calibrate, args.riesz, args.sigma,
                           args.out, dt_given=args.dt is not None or "dt" in config_keys(args.config, "time"),
                           initial_state=args.initial_state)


def main(args) -> int:
    request = prepare(args)
    summary = gradient_run.run(request, progress=not args.no_progress)
    if summary["rank"] == 0:
        measured = summary["measured"]
        line = (f"icesheet gradient: d{request.functional}/d{request.control}, {request.steps} steps, "
                f"{summary['schedule']}: J = {summary['value']:.6e}, {measured['forward_steps']} forward + "
                f"{measured['backward_steps']} backward steps, {summary['wall_time']:.1f} s")
        if request.calibrate:
            line += (f", makespan predicted {summary['calibration']['predicted_makespan']:.2f} s, measured "
                     f"{summary['calibration']['measured_makespan']:.2f} s")
        print(line + f"; output in {request.out}")
        if args.json:
            print(json.dumps(summary, default=str))
    return 0
