"""``icesheet gradient``: the gradient of a functional of a scenario's run with respect to a control field, through
the checkpoint manager with a chosen checkpointing schedule.

Writes to ``--out``: ``gradient.pvd`` (VTK: the gradient's L2 or H1 Riesz representative and the control field),
``gradient.png`` (map of the gradient; serial runs), ``gradient.h5`` (firedrake.CheckpointFile: mesh and gradient
Function, for reuse), ``summary.json`` and ``summary.csv`` (J, timings, forward and backward steps, reads, writes and
peak occupancy per storage tier beside the simulator's prediction, peak RSS).

The storage platform is ``--platform FILE`` (TOML, data/platforms/) or one RAM level with ``--ram-slots`` slots
(default: one per step) plus one unbounded disk level per ``--disk-dir``; ``--ram-slots`` overrides level 0's
capacity of a platform file.  ``--calibrate`` first measures the step and storage costs on this model and machine
(one store-all gradient: checkpointing.adjoint.calibration), plans H-Revolve (unless ``--schedule`` is given; the
``nonuniform`` planner then uses the per-step costs) on the calibrated platform and reports its predicted makespan
against the measured time of the run.

All input is checked before Firedrake is imported: an unknown functional, control or schedule, steps < 1, RAM slots
that cannot hold the schedule, an unwritable --disk-dir or a missing platform file fails with one line naming it.
"""
from __future__ import annotations

import argparse
import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from checkpointing.emit import ScheduleDoesNotFit
from checkpointing.planners import PLANNERS, plan
from checkpointing.platform import INF, Level, Platform, PlatformError
from checkpointing.simulator import InvalidScheduleError, simulate
from icesheet.controls import CONTROLS, RIESZ_MAPS
from icesheet.errors import InputError
from icesheet.functionals import DEFAULT_SIGMA, FUNCTIONALS, WHEN
from icesheet.scenarios import DEFAULT_SCENARIO, SCENARIOS, build_model, scenario_parameters

logger = logging.getLogger(__name__)


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
    parser.add_argument("--schedule", help=f"one of {', '.join(sorted(PLANNERS))} (default store-all, or hrevolve "
                        "with --calibrate)")
    parser.add_argument("--ram-slots", type=int, help="checkpoints held in RAM (level 0)")
    parser.add_argument("--disk-dir", type=Path, action="append", default=[],
                        help="directory of a disk level (repeat for several levels, fastest first)")
    parser.add_argument("--platform", type=Path, help="platform TOML file (levels, costs)")
    parser.add_argument("--adjoint-mode", default=None, help="fixed-point or unrolled (default: the scenario's)")
    parser.add_argument("--friction", dest="friction_parameterisation",
                        help="friction control: 'log' (theta = log C; the default where the scenario has basal "
                        "friction) or 'linear' (C; the default for ice shelves)")
    parser.add_argument("--riesz", default="L2", help="Riesz map of the gradient: L2 (mass matrix) or H1")
    parser.add_argument("--sigma", type=float, default=DEFAULT_SIGMA, help="observation error of the misfit, m/yr")
    parser.add_argument("--calibrate", action="store_true",
                        help="measure uf, ub, w_k, r_k first; plan H-Revolve on the calibrated platform")
    parser.add_argument("--out", type=Path, default=Path("output/gradient"),
                        help="output directory (default %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="also print the summary as one JSON line (rank 0)")
    parser.set_defaults(handler=main)


@dataclass
class Request:
    """Validated input of one ``icesheet gradient`` run."""

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


def _choice(field: str, value, allowed) -> None:
    if value not in allowed:
        raise InputError(f"{field} = {value!r}: unknown; choose one of {', '.join(allowed)}")


def _check_directory(field: str, path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path):
            pass
    except OSError as err:
        raise InputError(f"{field} = {str(path)!r}: not a writable directory ({err.strerror or err})") from None


def storage_platform(args, steps: int) -> Platform:
    """The platform of ``--platform`` / ``--ram-slots`` / ``--disk-dir`` (see the module docstring)."""
    if args.ram_slots is not None and (isinstance(args.ram_slots, bool) or args.ram_slots < 0):
        raise InputError(f"ram_slots = {args.ram_slots!r}: must be an integer >= 0")
    if args.platform is not None:
        if not args.platform.is_file():
            raise InputError(f"platform = {str(args.platform)!r}: no such file")
        try:
            base = Platform.from_toml(args.platform)
        except PlatformError as err:
            raise InputError(f"platform: {err}") from None
        levels = list(base.levels)
        if len(args.disk_dir) != len(levels) - 1:
            raise InputError(f"disk_dir = {[str(d) for d in args.disk_dir]}: platform {base.name!r} has "
                             f"{len(levels)} levels, so give --disk-dir {len(levels) - 1} times (level 0 is RAM)")
        uf, ub, name = base.uf, base.ub, base.name
    else:
        levels = [Level(steps, name="ram")] + [Level(INF, name=f"disk{k}") for k in range(1, len(args.disk_dir) + 1)]
        uf, ub, name = 1.0, 1.0, "ram" + "".join(f"+disk{k}" for k in range(1, len(args.disk_dir) + 1))
    if args.ram_slots is not None:
        ram = levels[0]
        levels[0] = Level(args.ram_slots, ram.write_cost, ram.read_cost, ram.name)
    try:
        return Platform(tuple(levels), uf, ub, name)
    except PlatformError as err:
        raise InputError(f"ram_slots = {args.ram_slots!r}: {err}") from None


def _shallow_stream_scenarios() -> list[str]:
    return [name for name in sorted(SCENARIOS)
            if "friction_parameterisation" in scenario_parameters(name).get("solver", {})]


def prepare(args) -> Request:
    """Check every input (pure Python, before Firedrake is imported); raises InputError naming the field."""
    _choice("functional", args.functional, FUNCTIONALS)
    _choice("when", args.when, WHEN)
    _choice("control", args.control, CONTROLS)
    _choice("riesz", args.riesz, RIESZ_MAPS)
    schedule_name = args.schedule or ("hrevolve" if args.calibrate else "store-all")
    _choice("schedule", schedule_name, sorted(PLANNERS))
    if not (args.sigma > 0):
        raise InputError(f"sigma = {args.sigma!r}: the observation error must be > 0 (m/yr)")
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
    steps, dt = parameters["time"]["steps"], parameters["time"]["dt"]
    if steps < 1:
        raise InputError(f"steps = {steps!r}: a gradient needs at least one time step (steps >= 1)")
    platform = storage_platform(args, steps)
    for k, directory in enumerate(args.disk_dir, start=1):
        _check_directory(f"disk_dir (level {k})", directory)
    try:
        schedule = plan(schedule_name, steps, platform)
        simulate(schedule, platform, steps)
    except (ScheduleDoesNotFit, InvalidScheduleError, ValueError) as err:
        raise InputError(f"ram_slots = {platform.capacities[0]!r} (capacities {platform.capacities}): schedule "
                         f"{schedule_name!r} does not fit l = {steps} steps: {err}") from None
    return Request(args.scenario, parameters, args.functional, args.when, args.control, steps, dt, schedule_name,
                   platform, list(args.disk_dir), args.calibrate, args.riesz, args.sigma, args.out)


def main(args) -> int:
    request = prepare(args)
    summary = run(request, progress=not args.no_progress)
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


def run(request: Request, progress: bool = True) -> dict:
    """Build the model, (calibrate,) compute the gradient and write the outputs; returns the summary."""
    from icesheet.cli import import_firedrake

    import_firedrake()
    from tqdm.auto import tqdm

    from checkpointing.adjoint import tiers_for_platform
    from checkpointing.adjoint.calibration import calibrate
    from icesheet.controls import compute_gradient, control_function, time_loop
    from icesheet.functionals import build_functional, initial_velocity_observations

    model = build_model(request.scenario, request.parameters)
    comm = model.mesh.comm
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
    measured_makespan = sum(counters.wall_time.values())
    summary = {
        "scenario": request.scenario, "functional": request.functional, "when": request.when,
        "control": request.control, "control_function": control_function(model, request.control).name(),
        "steps": request.steps, "dt": request.dt, "adjoint_mode": model.adjoint_mode,
        "schedule": request.schedule_name, "riesz_map": request.riesz, "rank": comm.rank, "ranks": comm.size,
        "dofs": model.thickness.function_space().dim(), "value": gradient.value,
        "gradient_norm": _norm(gradient.riesz[request.control], request.riesz), "wall_time": gradient.wall_time,
        "platform": _platform_dict(platform), "measured": counters.to_dict(),
        "predicted": gradient.result.predicted.to_dict(),
        "peak_rss_mb": comm.allreduce(counters.peak_rss_mb, op=_mpi_max()),
    }
    if calibration is not None:
        per_step = calibration.predict(schedule)
        summary["calibration"] = {**calibration.to_dict(), "predicted_makespan": per_step.makespan,
                                  "predicted_makespan_uniform_costs": predicted.makespan,
                                  "measured_makespan": measured_makespan,
                                  "measured_over_predicted": measured_makespan / per_step.makespan,
                                  "predicted_run_time": per_step.makespan + calibration.run_overhead,
                                  "measured_run_time": gradient.wall_time}
    write_outputs(request, model, gradient, summary)
    return summary


def _norm(function, riesz_map: str) -> float:
    import firedrake as fd

    return fd.norm(function, "L2" if riesz_map == "L2" else "H1")


def _mpi_max():
    from mpi4py import MPI

    return MPI.MAX


def _platform_dict(platform: Platform) -> dict:
    return {"name": platform.name, "uf": platform.uf, "ub": platform.ub,
            "levels": [{"name": lev.name, "capacity": "inf" if lev.capacity == INF else lev.capacity,
                        "write": lev.write_cost, "read": lev.read_cost} for lev in platform.levels]}


CSV_COLUMNS = ("quantity", "measured", "predicted")


def summary_rows(summary: dict) -> list[tuple]:
    """Rows ``(quantity, measured, predicted)`` of summary.csv: step counts, per-tier reads/writes/peak, times."""
    measured, predicted = summary["measured"], summary["predicted"]
    rows = [("forward_steps", measured["forward_steps"], predicted["forward_steps"]),
            ("backward_steps", measured["backward_steps"], predicted["backward_steps"])]
    for k, level in enumerate(summary["platform"]["levels"]):
        for what in ("reads", "writes", "peak"):
            rows.append((f"{what}[{level['name']}]", measured[what][k], predicted[what][k]))
    calibration = summary.get("calibration")
    rows.append(("makespan_s", sum(measured["wall_time"].values()),
                 calibration["predicted_makespan"] if calibration else ""))
    rows += [(f"wall_time_{kind}_s", seconds, "") for kind, seconds in measured["wall_time"].items()]
    rows += [("run_wall_time_s", summary["wall_time"], calibration["predicted_run_time"] if calibration else ""),
             ("peak_rss_mb", summary["peak_rss_mb"], "")]
    return rows


def write_outputs(request: Request, model, gradient, summary: dict) -> None:
    """gradient.pvd, gradient.png (serial), gradient.h5, summary.json, summary.csv in ``request.out``."""
    import csv

    import firedrake as fd

    from icesheet.controls import control_function
    from icesheet.output import vtk_available

    comm = model.mesh.comm
    out = request.out
    if comm.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    comm.barrier()
    field = gradient.riesz[request.control]
    if vtk_available():
        fd.output.VTKFile(str(out / "gradient.pvd"), comm=comm).write(field, control_function(model, request.control))
    else:
        logger.warning("the vtk package is not installed: no gradient.pvd")
    with fd.CheckpointFile(str(out / "gradient.h5"), "w", comm=comm) as h5:
        h5.save_mesh(model.mesh)
        h5.save_function(field)
    if comm.size == 1:
        _plot(field, summary, out / "gradient.png")
    if comm.rank == 0:
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
        with open(out / "summary.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(CSV_COLUMNS)
            writer.writerows(summary_rows(summary))


def _plot(field, summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from firedrake.pyplot import tripcolor

    fig, ax = plt.subplots(figsize=(10, 3))
    values = field.dat.data_ro
    limit = float(abs(values).max()) or 1.0
    colours = tripcolor(field, axes=ax, cmap="RdBu_r", vmin=-limit, vmax=limit)
    fig.colorbar(colours, ax=ax, label=f"{summary['riesz_map']} gradient")
    ax.set(xlabel="x (m)", ylabel="y (m)", aspect="equal",
           title=f"d {summary['functional']} ({summary['when']}) / d {summary['control_function']}, "
                 f"{summary['steps']} steps of {summary['dt']:g} yr")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
