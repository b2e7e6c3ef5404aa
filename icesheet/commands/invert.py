"""``icesheet invert``: infer log-friction, log-rheology and/or the initial thickness from velocity and
surface-elevation observations, with the regularisation weight chosen by Morozov's discrepancy principle unless
``--alpha`` is given.

Observation files (``--observations``, repeatable): grids in NetCDF4/HDF5 (``.nc``, ``.h5``) or points in CSV
(``.csv``), of velocities or surface elevations; ``FILE@T`` says the data are of time ``T`` years (default 0).  If
every file holds velocities of time 0 and the controls are friction and/or rheology, the inversion is a snapshot
(one velocity solve at the scenario's geometry, or at ``--initial-state``); otherwise it is transient: a run from
that state in intervals of ``--dt`` years (observation times are multiples of it), each of ``--substeps`` model
steps (auto: the model step at most half the stable time step at the prior's initial state, icesheet/stability.py;
velocities of time ``T`` are solved in the first model step from ``T``, surfaces of time ``T`` are those of the
thickness at ``T``), through the checkpoint manager with ``--schedule`` on the platform of
``--ram-slots`` / ``--platform`` / ``--disk-dir`` (as ``icesheet gradient``), with the smoothed grounded indicator
unless ``--grounded-indicator sharp``.  Every file and option is checked before Firedrake is imported; see
docs/inversion.md.

Outputs in ``--out``: ``fields.pvd`` (VTK: recovered controls, C and A, model and observed velocity),
``result.h5`` (firedrake.CheckpointFile: mesh, controls (``thickness``: the recovered initial thickness), velocity,
grounded mask), ``fields.png``, ``history.png``,
``lcurve.png`` (serial runs), ``history.csv`` (one row per L-BFGS iterate of every solve), ``lcurve.csv`` (one row
per converged minimiser), ``summary.json``; ``state/`` holds what ``--resume`` continues from.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from icesheet.errors import InputError
from icesheet.inversion import CONTROLS, REGULARISATIONS, control_parameters, term_index
from icesheet.observations import GridNames, read_observations
from icesheet.scenarios import (DEFAULT_SCENARIO, SCENARIOS, apply_override, build_model, check_state_file,
                                config_keys, scenario_parameters)

logger = logging.getLogger(__name__)

HISTORY_COLUMNS = ("solve", "alpha", "iteration", "evaluations", "objective", "misfit", "regularisation",
                   "gradient_norm", "picard_iterations")
LCURVE_COLUMNS = ("alpha", "misfit", "regularisation", "iterations", "evaluations", "stop", "gradient_reduction")


def register(subparsers) -> None:
    parser = subparsers.add_parser("invert", help="infer friction / rheology / initial thickness from observations",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--observations", action="append", required=True, metavar="FILE[@T]",
                        help="observation file of velocities or surface elevations: grid (.nc, .nc4, .h5, .hdf5) "
                        "or points (.csv), of time T years (default 0); repeatable")
    parser.add_argument("--grid-names", default="x,y,vx,vy,vx_error,vy_error",
                        help="variable names in grid files: x,y,vx,vy,vx_error,vy_error, optionally followed by "
                        "surface,surface_error (default %(default)s,surface,surface_error)")
    parser.add_argument("--control", default="friction",
                        help="friction, rheology and/or thickness, comma-separated (log C, log A, the initial "
                        "thickness: transient mode; default %(default)s)")
    parser.add_argument("--scenario", default=DEFAULT_SCENARIO,
                        help=f"geometry and prior: one of {', '.join(sorted(SCENARIOS))} (default {DEFAULT_SCENARIO})")
    parser.add_argument("--config", type=Path, help="TOML file overriding the scenario's parameters")
    parser.add_argument("--mesh-size", type=float, help="target cell size in metres (mesh.cell_size)")
    parser.add_argument("--mesh", type=Path, help="gmsh mesh file (mesh.file)")
    parser.add_argument("--initial-state", type=Path, help="HDF5 file of IceModel.save_state: the observed geometry")
    parser.add_argument("--dt", type=float, help="interval in years of a transient inversion, each of --substeps "
                        "model steps; observation times are multiples of it (default: the scenario's time.dt)")
    parser.add_argument("--substeps", default="auto",
                        help="model steps per --dt of a transient inversion: auto (default: the model step at most "
                        "half the stable time step at the prior's initial state, icesheet/stability.py) or a number")
    parser.add_argument("--start", default="auto", choices=("auto", "prior", "snapshot"),
                        help="starting point of a transient inversion: snapshot (the snapshot inversion of the "
                        "velocities of time 0, an initialisation), prior, or auto (default: snapshot when there are "
                        "velocities of time 0 and a friction or rheology control)")
    parser.add_argument("--grounded-indicator", default="auto", choices=("auto", "sharp", "smooth"),
                        help="friction on grounded ice (physics.grounded_indicator): auto (default) is smooth in a "
                        "transient inversion, whose objective jumps with the sharp one, and the scenario's (sharp) in "
                        "a snapshot; a physics.grounded_indicator in --config is kept")
    parser.add_argument("--schedule", default="revolve", help="checkpointing schedule of a transient inversion "
                        "(a planner of icesheet gradient; default %(default)s)")
    parser.add_argument("--ram-slots", type=int, default=2, help="RAM checkpoints of a transient inversion "
                        "(default %(default)s)")
    parser.add_argument("--platform", help="storage platform: a shipped name or a TOML file, as icesheet gradient")
    parser.add_argument("--disk-dir", type=Path, action="append", default=[],
                        help="directory of a disk level (repeat per level >= 1), as icesheet gradient")
    parser.add_argument("--alpha", default="auto",
                        help="regularisation weight, or 'auto': Morozov's discrepancy principle (default)")
    parser.add_argument("--alpha-start", type=float, default=1e-2, help="first weight of the search (default 1e-2)")
    parser.add_argument("--target", type=float, default=1.0,
                        help="misfit per observation the search aims at (default 1: the noise level)")
    parser.add_argument("--target-tolerance", type=float, default=0.05,
                        help="relative tolerance on the target misfit (default 0.05)")
    parser.add_argument("--lcurve", default="",
                        help="extra weights for the L-curve, comma-separated (each a converged minimiser)")
    parser.add_argument("--regularisation", default="tikhonov", help="tikhonov (default) or tv")
    parser.add_argument("--length", type=float, default=100e3, help="regularisation length L, m (default 1e5)")
    parser.add_argument("--thickness-scale", type=float, default=100.0,
                        help="thickness scale H, m, of the initial thickness's regularisation (default 100)")
    parser.add_argument("--picard-tolerance", type=float, default=1e-2,
                        help="Picard tolerances (solver.tolerance, solver.residual_tolerance) of the velocity solves: "
                        "Picard only gives Newton its start, Newton converges to solver.newton_tolerance "
                        "(default %(default)s)")
    parser.add_argument("--max-iterations", type=int, default=200, help="L-BFGS iterations per solve (default 200)")
    parser.add_argument("--gradient-tolerance", type=float, default=1e-3,
                        help="stop when the gradient norm falls below this fraction of its value at the prior")
    parser.add_argument("--max-solves", type=int, default=10, help="minimisations of the alpha search (default 10)")
    parser.add_argument("--out", type=Path, default=Path("output/invert"),
                        help="output directory (default %(default)s)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the inversion saved in OUT/state (same options) from its last iterate")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="also print the summary as one JSON line (rank 0)")
    parser.set_defaults(handler=main)


@dataclass
class Request:
    """Validated input of one ``icesheet invert`` run (what ``--resume`` compares)."""

    observations: list
    times: list
    quantities: list
    grid_names: list
    controls: list
    scenario: str
    parameters: dict
    initial_state: str | None
    alpha: float | None
    alpha_start: float
    target: float
    target_tolerance: float
    lcurve: list
    regularisation: str
    length: float
    thickness_scale: float
    max_iterations: int
    gradient_tolerance: float
    max_solves: int
    mode: str
    dt: float
    steps: int
    substeps: int | None
    start: str
    schedule: str
    platform: dict | None
    disk_dirs: list


def _observation_argument(text: str) -> tuple[Path, float]:
    path, at, time_text = text.rpartition("@") if "@" in text else (text, "", "0")
    try:
        when = float(time_text)
    except ValueError:
        raise InputError(f"observations = {text!r}: the time after '@' must be a number of years") from None
    if not (math.isfinite(when) and when >= 0):
        raise InputError(f"observations = {text!r}: the time {when!r} must be a finite number of years >= 0")
    return Path(path), when


def _positive(name: str, value) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise InputError(f"{name} = {value!r}: must be a finite number > 0")
    return float(value)


def _floats(name: str, text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"{name} = {text!r}: give comma-separated numbers") from None
    for v in values:
        _positive(name, v)
    return values


def prepare(args):
    """Check every option and read every observation file (pure Python); returns ``(request, data)``."""
    controls = [c.strip() for c in args.control.split(",") if c.strip()]
    if not controls or any(c not in CONTROLS for c in controls) or len(set(controls)) != len(controls):
        raise InputError(f"control = {args.control!r}: choose one or more of friction, rheology, thickness "
                         "(comma-separated, each once)")
    if args.regularisation not in REGULARISATIONS:
        raise InputError(f"regularisation = {args.regularisation!r}: choose one of {', '.join(REGULARISATIONS)}")
    alpha = None if args.alpha == "auto" else _floats("alpha", args.alpha)
    if alpha is not None and len(alpha) != 1:
        raise InputError(f"alpha = {args.alpha!r}: one number > 0, or 'auto'")
    for name in ("alpha_start", "target", "target_tolerance", "length", "thickness_scale", "gradient_tolerance",
                 "picard_tolerance"):
        _positive(name, getattr(args, name))
    for name in ("max_iterations", "max_solves"):
        if getattr(args, name) < 1:
            raise InputError(f"{name} = {getattr(args, name)!r}: must be an integer >= 1")
    defaults = scenario_parameters(args.scenario)
    if defaults.get("ice", {}).get("friction", 0.0) <= 0 or "friction_parameterisation" not in defaults["solver"]:
        raise InputError(f"scenario = {args.scenario!r}: has no basal friction to invert for; use marine_ice_stream")
    overrides = {**control_parameters(controls), "solver.tolerance": args.picard_tolerance,
                 "solver.residual_tolerance": args.picard_tolerance}
    if args.mesh_size is not None:
        overrides["mesh.cell_size"] = args.mesh_size
    if args.mesh is not None:
        overrides["mesh.file"] = str(args.mesh)
    parameters = scenario_parameters(args.scenario, args.config, overrides)
    if args.initial_state is not None:
        check_state_file(args.initial_state)
    names = GridNames.parse(args.grid_names)
    files = [_observation_argument(text) for text in args.observations]
    dt = parameters["time"]["dt"] if args.dt is None else _positive("dt", args.dt)
    for path, when in files:
        if abs(when / dt - round(when / dt)) > 1e-9:
            raise InputError(f"observations = '{path}@{when:g}': the time must be a multiple of dt = {dt:g} yr")
    data = [read_observations(path, names) for path, _ in files]

    def last_term(step: float) -> int:  # the state of the last observation, with model steps of ``step``
        return max(term_index(d.quantity, when, step) for d, (_, when) in zip(data, files))

    steps = max(1, last_term(dt))
    if "thickness" not in controls and all(d.quantity == "surface" and when == 0 for d, (_, when) in zip(data, files)):
        raise InputError(f"observations = {str(files[0][0])!r}: surface elevations of time 0 depend on the initial "
                         f"thickness only, not on {', '.join(controls)}; add --control thickness, or data of later "
                         "times")
    transient = steps > 1 or "thickness" in controls or any(d.quantity != "velocity" for d in data)
    indicator = args.grounded_indicator
    if indicator == "auto":  # smooth in a transient inversion, unless the config chose one
        chosen = "grounded_indicator" in config_keys(args.config, "physics")
        indicator = "smooth" if transient and not chosen else None
    if indicator is not None:
        apply_override(parameters, "physics.grounded_indicator", indicator)
    snapshot_data = any(d.quantity == "velocity" and when == 0 for d, (_, when) in zip(data, files))
    parameters_controlled = any(c != "thickness" for c in controls)
    start = args.start
    if start == "auto":
        start = "snapshot" if transient and snapshot_data and parameters_controlled else "prior"
    elif start == "snapshot" and not (transient and snapshot_data and parameters_controlled):
        raise InputError(f"start = 'snapshot': needs a transient inversion with velocity observations of time 0 and a "
                         f"friction or rheology control (here: {'transient' if transient else 'snapshot'} mode, "
                         f"controls {', '.join(controls)})")
    substeps = None
    if args.substeps != "auto":
        try:
            substeps = int(args.substeps)
        except ValueError:
            substeps = 0
        if substeps < 1:
            raise InputError(f"substeps = {args.substeps!r}: an integer >= 1, or auto")
    platform = None
    if transient:
        from checkpointing.planners import PLANNERS
        from checkpointing.platform import storage_platform
        from icesheet.outdir import check_writable_directory

        if args.schedule not in PLANNERS:
            raise InputError(f"schedule = {args.schedule!r}: unknown; choose one of {', '.join(sorted(PLANNERS))}")
        storage = storage_platform(steps, args.platform, args.ram_slots, args.disk_dir)
        # the model's chain: known here for a given --substeps; for auto, run() checks it once the step is known
        model_steps = steps if substeps is None else last_term(dt / substeps)
        _check_schedule(args.schedule, model_steps, storage)
        platform = storage.to_dict()
        for k, directory in enumerate(args.disk_dir, start=1):
            check_writable_directory(directory, f"disk_dir (level {k})")
    request = Request([str(p) for p, _ in files], [w for _, w in files], [d.quantity for d in data],
                      list(asdict(names).values()), controls, args.scenario,
                      parameters, str(args.initial_state) if args.initial_state else None,
                      alpha[0] if alpha else None, args.alpha_start, args.target, args.target_tolerance,
                      _floats("lcurve", args.lcurve), args.regularisation, args.length, args.thickness_scale,
                      args.max_iterations, args.gradient_tolerance, args.max_solves,
                      "transient" if transient else "snapshot", dt, steps, substeps, start, args.schedule, platform,
                      [str(d) for d in args.disk_dir])
    return request, data


def _check_schedule(schedule: str, steps: int, storage) -> None:
    """InputError unless ``schedule`` fits ``steps`` model steps on the ``storage`` platform."""
    from checkpointing.emit import ScheduleDoesNotFit
    from checkpointing.planners import plan
    from checkpointing.simulator import InvalidScheduleError, simulate

    try:
        simulate(plan(schedule, steps, storage), storage, steps)
    except (ScheduleDoesNotFit, InvalidScheduleError, ValueError) as err:
        raise InputError(f"ram_slots = {storage.capacities[0]!r}: schedule {schedule!r} does not fit {steps} "
                         f"model steps on {storage.capacities}: {err}") from None


def _check_resume(request: Request, state_dir: Path, resume: bool) -> None:
    saved = state_dir / "request.json"
    if not resume:  # an earlier run's state is replaced by run(), once every check has passed
        return
    if not saved.is_file():
        raise InputError(f"resume: {str(saved)!r} does not exist; there is no inversion to continue in this --out")
    before = json.loads(saved.read_text())
    now = json.loads(json.dumps(asdict(request)))
    for key, value in now.items():
        if before.get(key) != value:
            raise InputError(f"resume: option {key} = {value!r} differs from the interrupted run's "
                             f"{before.get(key)!r}; resume with the same options")


def main(args) -> int:
    request, data = prepare(args)
    state_dir = args.out / "state"
    _check_resume(request, state_dir, args.resume)
    summary = run(request, data, args.out, resume=args.resume, progress=not args.no_progress)
    if summary["rank"] == 0:
        print(f"icesheet invert: {', '.join(request.controls)} from {summary['observation_count']} observations: "
              f"alpha = {summary['alpha']:.3g} ({summary['alpha_rule']}), misfit per observation "
              f"{summary['initial_misfit']:.3g} -> {summary['misfit']:.3g}, {summary['iterations']} iterations "
              f"({summary['stop']}), {summary['solves']} minimisations, {summary['wall_time']:.1f} s; "
              f"output in {args.out}")
        if args.json:
            print(json.dumps(summary, default=str))
    return 0


def run(request: Request, data: list, out: Path, resume: bool = False, progress: bool = True) -> dict:
    """Build the model and the observations, invert, write the outputs; returns the summary."""
    from icesheet.cli import import_firedrake

    import_firedrake()
    from pyadjoint import stop_annotating
    from tqdm.auto import tqdm

    from icesheet.inversion import (Inversion, Regularisation, SnapshotInversion, TransientInversion,
                                    discrepancy_search, evaluate_prior, model_substeps, snapshot_initialisation)
    from icesheet.observations import observations_on_mesh
    from icesheet.optimisation import LBFGSOptions

    start = time.perf_counter()
    model = build_model(request.scenario, request.parameters)
    if request.initial_state:
        model.load_state(request.initial_state)
    comm = model.mesh.comm
    observations = [observations_on_mesh(d, model.velocity, model.surface_expression) for d in data]
    regularisation = Regularisation(request.regularisation, request.length,
                                    thickness_scale=request.thickness_scale)
    stepping = {}
    if request.mode == "snapshot":
        problem = SnapshotInversion(model, observations, request.controls, regularisation)
    else:  # the model steps dt / n: below the stable time step (icesheet/stability.py)
        substeps, limit = model_substeps(model, request.dt, request.substeps)
        step = request.dt / substeps
        terms: dict = {}
        for o, when in zip(observations, request.times):
            terms.setdefault(term_index(o.quantity, when, step), []).append(o)
        steps = max(terms)
        platform = _platform(request.platform)
        _check_schedule(request.schedule, steps, platform)
        stepping = {"substeps": substeps, "model_dt": step, "model_steps": steps, "stable_dt_prior": limit.dt}
        logger.info("transient inversion: %d model steps of %.4g yr (%d per dt = %g yr); at the prior's initial "
                    "state the %s", steps, step, substeps, request.dt, limit.describe())
        problem = TransientInversion(model, terms, [step] * steps, request.controls, regularisation,
                                     request.schedule, platform, request.disk_dirs)
    state_dir = out / "state"
    if resume:
        _check_ranks(state_dir, comm.size)
    if comm.rank == 0:
        if not resume and state_dir.exists():
            logger.warning("%s: an earlier inversion's state is replaced (use --resume to continue it)", state_dir)
            shutil.rmtree(state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        (state_dir / "request.json").write_text(json.dumps(asdict(request), indent=1) + "\n")
    comm.barrier()
    options = LBFGSOptions(max_iterations=request.max_iterations, gradient_tolerance=request.gradient_tolerance)
    bar = None
    rows: list[dict] = []

    def on_iteration(row, state):
        rows.append(row)
        logger.info("solve %d alpha=%.4g iteration %d: J = %.6g, misfit %.4g, R %.4g, |g| %.3g, %d evaluations",
                    row["solve"], row["alpha"], row["iteration"], row["objective"], row["misfit"],
                    row["regularisation"], row["gradient_norm"], row["evaluations"])
        if bar is not None:
            bar.n = row["iteration"]
            bar.set_postfix(misfit=f"{row['misfit']:.3g}", gradient=f"{row['gradient_norm']:.2g}", refresh=False)
            bar.refresh()
        if comm.rank == 0:
            _write_csv(out / "history.csv", HISTORY_COLUMNS, [r for s in inversion.results for r in s.history]
                       + _current(rows, len(inversion.results)))

    reference, started = None, {"start": request.start}
    if request.start == "snapshot":  # an initialisation: the transient minimisation starts from the snapshot's
        alpha = request.alpha_start if request.alpha is None else request.alpha
        prior = evaluate_prior(problem, state_dir / "prior.json", resume)

        def log_start(row, state):
            logger.info("start (snapshot of time 0) alpha=%.4g iteration %d: J = %.6g, misfit %.4g, |g| %.3g",
                        row["alpha"], row["iteration"], row["objective"], row["misfit"], row["gradient_norm"])

        first = snapshot_initialisation(problem, state_dir / "start", alpha, options, resume, log_start)
        reference = prior["gradient_norm"]
        started.update(prior_misfit=prior["misfit"], prior_gradient_norm=reference,
                       start_snapshot=_lcurve_row(first))
    inversion = Inversion(problem, state_dir, options, resume=resume, on_iteration=on_iteration,
                          reference_gradient_norm=reference)

    def solve(alpha):
        nonlocal bar
        bar = tqdm(total=request.max_iterations, desc=f"L-BFGS alpha={alpha:.3g}", unit="it",
                   disable=not progress or comm.rank != 0)
        with bar:
            result = inversion.solve(alpha)
        bar = None
        return result

    if request.alpha is None:
        chosen, _ = discrepancy_search(solve, request.alpha_start, request.target, request.target_tolerance,
                                       max_solves=request.max_solves)
        rule = "discrepancy principle"
    else:
        chosen, rule = solve(request.alpha), "given"
    for alpha in request.lcurve:
        solve(alpha)
    # leave the chosen minimiser in the model, with its velocity at the (initial) geometry
    problem.set_vector(chosen.state.x)
    with stop_annotating():
        model.velocity.dat.data_wo[...] = chosen.velocity
        model.solve_velocity()
    if stepping:  # the bound with the recovered controls: the model step should stay below it
        from icesheet import stability

        limit = stability.time_step_limit(model)  # the velocity was just solved
        stepping["stable_dt_result"] = limit.dt
        if problem.last_result is not None:  # the schedule's footprint in the last evaluation
            counters = problem.last_result.counters
            stepping.update(peak_checkpoints=list(counters.peak), forward_steps_per_evaluation=counters.forward_steps)
        if stepping["model_dt"] > limit.dt:
            logger.warning("the model step %.3g yr is above the %s with the recovered controls: rerun with more "
                           "--substeps", stepping["model_dt"], limit.describe())
    summary = _summary(request, model, inversion, chosen, rule, observations, time.perf_counter() - start)
    summary.update(stepping, **started)
    _write_outputs(out, model, problem, inversion, chosen, summary)
    return summary


def _check_ranks(state_dir: Path, size: int) -> None:
    """Each rank saved its part of the iterates: a resumed run needs as many ranks as the interrupted one."""
    import re

    ranks = {int(m.group(1)) for p in state_dir.rglob("solve*.rank*.npz")
             if (m := re.fullmatch(r"solve\d+\.rank(\d+)\.npz", p.name))}
    if ranks and ranks != set(range(size)):
        raise InputError(f"resume: {str(state_dir)!r} was written by {max(ranks) + 1} MPI ranks, this run has {size}; "
                         f"resume with mpiexec -n {max(ranks) + 1}")


def _platform(description: dict):
    """The Platform of ``Request.platform`` (:meth:`Platform.to_dict`'s dictionary of it)."""
    from checkpointing.platform import Platform

    return Platform.from_dict(description)


def _current(rows, index):
    return [r for r in rows if r["solve"] == index]


def _summary(request, model, inversion, chosen, rule, observations, wall_time) -> dict:
    comm = model.mesh.comm
    first = inversion.results[0].history[0]
    return {
        "controls": request.controls, "scenario": request.scenario,
        "mode": request.mode, "steps": request.steps, "dt": request.dt,
        "grounded_indicator": request.parameters.get("physics", {}).get("grounded_indicator"),
        "schedule": request.schedule if request.mode == "transient" else None, "platform": request.platform,
        "observations": [{"file": o.path, "kind": o.kind, "quantity": o.quantity, "count": o.count, "time": when}
                         for o, when in zip(observations, request.times)],
        "observation_count": sum(o.count for o in observations),
        "observed_values": sum(o.size for o in observations), "alpha": chosen.alpha, "alpha_rule": rule,
        "target": request.target, "initial_misfit": first["misfit"], "misfit": chosen.misfit,
        "regularisation": chosen.regularisation, "iterations": chosen.state.iteration,
        "evaluations": chosen.state.evaluations, "stop": chosen.state.stop,
        "gradient_reduction": chosen.gradient_reduction, "solves": len(inversion.results),
        "total_evaluations": sum(r.state.evaluations for r in inversion.results),
        "lcurve": [_lcurve_row(r) for r in inversion.results], "regularisation_kind": request.regularisation,
        "length": request.length, "dofs": model.thickness_space.dim(), "rank": comm.rank, "ranks": comm.size,
        "wall_time": wall_time, "load_average": list(os.getloadavg()),
    }


def _lcurve_row(result) -> dict:
    return {"alpha": result.alpha, "misfit": result.misfit, "regularisation": result.regularisation,
            "iterations": result.state.iteration, "evaluations": result.state.evaluations, "stop": result.state.stop,
            "gradient_reduction": result.gradient_reduction}


def _write_csv(path: Path, columns, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _write_outputs(out: Path, model, problem, inversion, chosen, summary) -> None:
    import firedrake as fd
    from pyadjoint import stop_annotating

    from icesheet.output import vtk_available

    comm = model.mesh.comm
    fields = problem.recovered_fields()
    with stop_annotating():
        physical = [fd.Function(f.function_space(), name=f.name().replace("log_", "")).interpolate(fd.exp(f))
                    for f in fields if f.name().startswith("log_")]
    observed = [o.observed for o in problem.observations if o.kind == "grid"]  # on the mesh's vertices
    if vtk_available():
        fd.output.VTKFile(str(out / "fields.pvd"), comm=comm).write(*fields, *physical, model.velocity, *observed)
    else:
        logger.warning("the vtk package is not installed: no fields.pvd")
    grounded = model.output_fields()["grounded"]
    with fd.CheckpointFile(str(out / "result.h5"), "w", comm=comm) as h5:
        h5.save_mesh(model.mesh)
        for f in (*fields, model.velocity, grounded):
            h5.save_function(f)
    rows = [r for s in inversion.results for r in s.history]
    if comm.size == 1:
        _plot_fields(fields, model, out / "fields.png")
    if comm.rank == 0:
        _write_csv(out / "history.csv", HISTORY_COLUMNS, rows)
        _write_csv(out / "lcurve.csv", LCURVE_COLUMNS, summary["lcurve"])
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
        _plot_history(rows, chosen, out / "history.png")
        _plot_lcurve(summary, out / "lcurve.png")


def _plot_fields(fields, model, path: Path) -> None:
    import firedrake as fd
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from firedrake.pyplot import tripcolor
    from pyadjoint import stop_annotating

    with stop_annotating():
        speed = fd.Function(model.thickness_space, name="speed").interpolate(
            fd.sqrt(fd.inner(model.velocity, model.velocity)))
    panels = [(f, f.name()) for f in fields] + [(speed, "speed (m/yr)")]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.6 * len(panels)), sharex=True)
    for ax, (f, label) in zip(axes, panels):
        fig.colorbar(tripcolor(f, axes=ax), ax=ax, label=label)
        ax.set(ylabel="y (m)", aspect="auto")
    axes[-1].set_xlabel("x (m)")
    axes[0].set_title("recovered fields and model speed")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_history(rows, chosen, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    mine = [r for r in rows if r["solve"] == chosen.index]
    it = [r["iteration"] for r in mine]
    ax.semilogy(it, [r["objective"] for r in mine], "o-", ms=3, label="objective J")
    ax.semilogy(it, [r["misfit"] for r in mine], "s-", ms=3, label="misfit per observation E")
    ax.semilogy(it, [r["gradient_norm"] / chosen.state.initial_gradient_norm for r in mine], "k:",
                label="|gradient| / |gradient at the prior|")
    ax.axhline(1.0, color="r", lw=0.8)
    ax.set(xlabel="L-BFGS iteration", title=f"chosen minimiser, alpha = {chosen.alpha:.3g}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_lcurve(summary, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = sorted(summary["lcurve"], key=lambda r: r["alpha"])
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.loglog([p["regularisation"] for p in points], [p["misfit"] for p in points], "o-")
    for p in points:
        ax.annotate(f" {p['alpha']:.3g}", (p["regularisation"], p["misfit"]), fontsize=8)
    chosen = [p for p in points if p["alpha"] == summary["alpha"]]
    ax.loglog([p["regularisation"] for p in chosen], [p["misfit"] for p in chosen], "r*", ms=14,
              label=f"chosen ({summary['alpha_rule']})")
    ax.axhline(summary["target"], color="r", lw=0.8, ls=":", label="target misfit")
    ax.set(xlabel="regularisation R", ylabel="misfit per observation E",
           title="L-curve: each point a converged minimiser (labels: alpha)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
