"""The 4 km goal case of ``icesheet invert`` (issue 11): twin inversion of log-friction from noisy velocity files
(experiments/file_inversion.py), with the weight by the discrepancy principle, timed end to end.

Variants side by side in one run: the Picard tolerance of the velocity solves, ``--picard-tolerance 1e-2`` (the
command's default: Picard only gives Newton its start) against the scenario's 1e-6.  Per variant: wall time,
minimisations, iterations and evaluations, final misfit per observation, stop, grounded-ice friction error relative
to the initial guess's, and the load average (the machine is shared: compare variants within one run).

Transient memory (``--transient``): one evaluation of the transient objective (icesheet.inversion.TransientInversion)
with observations at every one of ``l`` steps, for growing ``l`` in one process, through Revolve with 2 RAM slots
and, last, store-all: checkpoints held at the peak, forward steps, and the process's peak RSS so far (monotone: a
flat column means the memory did not grow with the number of observation times).

Grounded indicator (``--grounding``): a transient twin (observations at ``--steps`` times ``--dt`` apart, on the
vertices of a ``--cell-size`` mesh) written and inverted with the sharp grounded indicator, then with the smoothed
one (physics.grounded_indicator = "smooth"; ``--indicators`` to choose), at one fixed weight, each interval run as
``--substeps`` model steps, from ``--start`` (prior or the snapshot initialisation), Revolve on ``--ram-slots``:
iterations, evaluations, stop, final gradient norm relative to the prior's, misfit, grounded-ice friction error
relative to the uniform prior's (and the snapshot start's), seconds, CPU seconds, load.  ``--keep DIR`` keeps the
files and the saved state; ``--state-errors RUN ...`` reads the figures back from such a state, also of a run
stopped by hand (:func:`state_errors`).

Diagnosis of the transient twin (``--diagnose N1 N2 ...``): for each number ``n`` of model steps per interval
``--dt`` (twin and inversion alike), the stable time step at the initial state with the prior and with the truth,
the misfit per observation at the prior in all and per observation time, the gradient norm, the lumped-mass ratio and
the cost of one evaluation (:func:`diagnose`).

Friction and initial thickness together (``--joint``, :func:`joint`): L-BFGS with one gamma or one per control, from
the prior or from the snapshot start; iterations, misfit, both controls' errors.

Usage:  python benchmarks/bench_inversion.py [--cell-size 4000] [--variants 1e-2 1e-6]
        python benchmarks/bench_inversion.py --diagnose 1 5 10 [--cell-size 4000] [--steps 3] [--dt 10]
        python benchmarks/bench_inversion.py --joint --cell-size 40000 --steps 2 --substeps 3 --alpha 0.1 \
                                             --max-iterations 40 --ram-slots 4
        python benchmarks/bench_inversion.py --transient [--lengths 2 4 8 16]
        python benchmarks/bench_inversion.py --grounding [--cell-size 4000] [--steps 3] [--dt 10] [--alpha 0.1] \
                                             [--substeps 10] [--start snapshot] [--ram-slots 5] [--keep RUN]
        python benchmarks/bench_inversion.py --state-errors RUN ... [--cell-size 4000] [--name-suffix _x]
Writes benchmarks/results/bench_inversion.{csv,json} (or bench_inversion_transient.{csv,json},
bench_inversion_grounding.{csv,json}, bench_inversion_diagnose.{csv,json}, bench_inversion_joint.{csv,json},
bench_inversion_state<suffix>.{csv,json}).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
COLUMNS = ("cell_size", "picard_tolerance", "seconds", "solves", "iterations", "total_evaluations", "alpha",
           "misfit", "stop", "gradient_reduction", "relative_error", "goal_met", "load_before", "load_after")


TRANSIENT_COLUMNS = ("steps", "observation_times", "schedule", "ram_slots", "peak_checkpoints", "forward_steps",
                     "seconds", "peak_rss_mb", "load")


def transient_memory(lengths, cell_size: float = 20000.0, dt: float = 5.0) -> list[dict]:
    """One transient evaluation per ``l`` in ``lengths`` (Revolve, 2 slots), then store-all at the largest ``l``."""
    import time


    from checkpointing.platform import Level, Platform
    from experiments.file_inversion import write_transient_twin
    from icesheet.inversion import TransientInversion, control_parameters
    from icesheet.observations import observations_on_mesh, read_observations
    from icesheet.scenarios import build_model, scenario_parameters

    largest = max(lengths)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = write_transient_twin(Path(tmp), cell_size, dt, largest)["files"]
        overrides = {"mesh.cell_size": cell_size, "solver.tolerance": 1e-2, "solver.residual_tolerance": 1e-2,
                     "physics.grounded_indicator": "smooth", **control_parameters(["friction"])}  # the twin's
        model = build_model("marine_ice_stream", scenario_parameters("marine_ice_stream", overrides=overrides))
        data = {round(t / dt) + 1: read_observations(p) for t, p in files.items()}
        cases = [(l, "revolve", 2) for l in sorted(lengths)] + [(largest, "store-all", largest)]
        for steps, schedule, slots in cases:
            terms = {i: [observations_on_mesh(data[i], model.velocity)] for i in range(1, steps + 1)}
            problem = TransientInversion(model, terms, [dt] * steps, schedule=schedule,
                                         platform=Platform((Level(slots, name="ram"),), name=f"ram{slots}"))
            start = time.perf_counter()
            value, _ = problem.evaluate(problem.vector())
            counters = problem.last_result.counters
            rows.append({"steps": steps, "observation_times": steps, "schedule": schedule, "ram_slots": slots,
                         "peak_checkpoints": counters.peak[0], "forward_steps": counters.forward_steps,
                         "seconds": time.perf_counter() - start, "peak_rss_mb": counters.peak_rss_mb,
                         "load": os.getloadavg()[0]})
            assert np.isfinite(value)
            print(" ".join(f"{k}={rows[-1][k]}" for k in TRANSIENT_COLUMNS), flush=True)
    return rows


GROUNDING_COLUMNS = ("grounded_indicator", "start", "cell_size", "steps", "dt", "substeps", "alpha",
                     "start_iterations", "start_relative_error", "iterations", "evaluations", "stop",
                     "gradient_reduction", "prior_misfit", "initial_misfit", "misfit", "relative_error", "seconds",
                     "cpu_seconds", "load_before", "load_after")


def _start_error(out: Path, prior: float, width: float) -> float:
    """The grounded-ice friction error of a snapshot start (``out/state/start``, serial runs)."""
    return _iterate_error(out / "state" / "start" / "solve00.rank0.npz", out / "result.h5", prior, width)[0]


def _iterate_error(path: Path, mesh_source, prior: float, width: float) -> tuple[float, float]:
    """``(error, the uniform prior's error)``: the grounded-ice friction error of a saved L-BFGS iterate (``path``,
    a serial run's ``.npz``): its :math:`z = \\theta\\sqrt{m/|\\Omega|}` mapped back to :math:`\\theta` on the
    mesh of ``mesh_source``, a ``result.h5`` (with its grounded mask), or a cell size (the scenario's mesh and
    initial grounded mask)."""
    import firedrake as fd

    from experiments.file_inversion import friction_errors
    from icesheet.optimisation import load_state

    state, _, _ = load_state(path)
    if isinstance(mesh_source, (int, float)):
        from icesheet.scenarios import build_model, scenario_parameters

        model = build_model("marine_ice_stream", scenario_parameters(
            "marine_ice_stream", overrides={"mesh.cell_size": mesh_source, "physics.grounded_indicator": "smooth"}))
        mesh, grounded = model.mesh, model.output_fields()["grounded"]
    else:
        with fd.CheckpointFile(str(mesh_source), "r") as h5:
            mesh = h5.load_mesh()
            grounded = h5.load_function(mesh, "grounded")
    space = grounded.function_space()
    lumped = fd.assemble(fd.TestFunction(space) * fd.dx).dat.data_ro
    theta = fd.Function(space)
    theta.dat.data_wo[...] = state.x[:lumped.size] / np.sqrt(lumped / lumped.sum())
    return friction_errors(grounded, theta, prior, width)


STATE_COLUMNS = ("run", "cell_size", "model_dt", "model_steps", "ram_slots", "alpha", "prior_misfit",
                 "start_iterations", "start_evaluations", "start_stop", "start_misfit", "start_relative_error",
                 "iterations", "evaluations", "stop", "misfit", "gradient_reduction", "relative_error",
                 "noise_level_iteration", "noise_level_evaluations")


def state_errors(runs, cell_size: float) -> list[dict]:
    """From the saved state of ``icesheet invert`` runs of the transient twin (``RUN/invert/state`` as
    ``--grounding --keep`` leaves them, finished or stopped): the snapshot start's and the last iterate's misfit and
    grounded-ice friction error relative to the uniform prior's, the gradient reduction relative to the prior's, and
    the first iterate whose misfit is within 5 % of 1 (Morozov's target and tolerance)."""
    from icesheet.optimisation import load_state
    from icesheet.scenarios import scenario_parameters

    parameters = scenario_parameters("marine_ice_stream", overrides={"mesh.cell_size": cell_size})
    prior = float(np.log(parameters["ice"]["friction"]))
    width = parameters["mesh"]["width"]
    rows = []
    for run in runs:
        state_dir = Path(run) / "invert" / "state"
        request = json.loads((state_dir / "request.json").read_text())
        reference = json.loads((state_dir / "prior.json").read_text())
        start, _, start_meta = load_state(state_dir / "start" / "solve00.rank0.npz")
        last, _, meta = load_state(state_dir / "solve00.rank0.npz")
        history = meta["history"]
        noise = next((h for h in history if abs(h["misfit"] - 1.0) <= 0.05), None)
        start_error, last_error = (_iterate_error(state_dir / name, cell_size, prior, width)
                                   for name in ("start/solve00.rank0.npz", "solve00.rank0.npz"))
        rows.append({"run": Path(run).name, "cell_size": cell_size, "model_dt": request["dt"],
                     "model_steps": request["steps"], "ram_slots": request["platform"]["levels"][0]["capacity"],
                     "alpha": meta["alpha"], "prior_misfit": reference["misfit"],
                     "start_iterations": start.iteration, "start_evaluations": start.evaluations,
                     "start_stop": start.stop, "start_misfit": start_meta["history"][-1]["misfit"],
                     "start_relative_error": start_error[0] / start_error[1],
                     "iterations": last.iteration, "evaluations": last.evaluations, "stop": last.stop,
                     "misfit": history[-1]["misfit"],
                     "gradient_reduction": history[-1]["gradient_norm"] / reference["gradient_norm"],
                     "relative_error": last_error[0] / last_error[1],
                     "noise_level_iteration": noise["iteration"] if noise else None,
                     "noise_level_evaluations": noise["evaluations"] if noise else None})
        print(" ".join(f"{k}={rows[-1][k]}" for k in STATE_COLUMNS), flush=True)
    return rows


def grounding(cell_size: float, steps: int, dt: float, alpha: float, max_iterations: int, substeps: int,
              indicators=("sharp", "smooth"), ram_slots: int = 2, keep: Path | None = None,
              start: str = "prior") -> list[dict]:
    """The transient twin with the sharp, then the smoothed grounded indicator (module docstring), each interval of
    ``dt`` run as ``substeps`` model steps (twin and inversion alike), from ``start`` (``icesheet invert
    --start``); with the snapshot start, the friction error of that starting point too."""
    import time

    from experiments.file_inversion import grounded_errors, write_transient_twin
    from icesheet.cli import main as icesheet

    rows = []
    for indicator in indicators:
        load_before, cpu = os.getloadavg()[0], time.process_time()
        with tempfile.TemporaryDirectory() as tmp:
            tmp = keep / indicator if keep else Path(tmp)
            twin = write_transient_twin(tmp / "observations", cell_size, dt, steps,
                                        grounded_indicator=indicator, substeps=substeps)
            out = tmp / "invert"
            argv = ["invert", "--mesh-size", str(cell_size), "--dt", str(dt), "--substeps", str(substeps),
                    "--alpha", str(alpha),
                    "--grounded-indicator", indicator, "--max-iterations", str(max_iterations), "--out", str(out),
                    "--ram-slots", str(ram_slots), "--start", start, "--no-progress"]
            for t, path in twin["files"].items():
                argv += ["--observations", f"{path}@{t:g}"]
            began = time.perf_counter()
            status = icesheet(argv)
            seconds = time.perf_counter() - began
            if status != 0:
                raise RuntimeError(f"icesheet {' '.join(argv)} exited with {status}")
            summary = json.loads((out / "summary.json").read_text())
            error, initial = grounded_errors(out / "result.h5", twin["prior"], twin["width"])
            start_error = _start_error(out, twin["prior"], twin["width"]) if summary.get("start_snapshot") else None
        rows.append({"grounded_indicator": indicator, "start": start,
                     "start_relative_error": None if start_error is None else start_error / initial,
                     "prior_misfit": summary.get("prior_misfit", summary["initial_misfit"]),
                     "start_iterations": (summary.get("start_snapshot") or {}).get("iterations", 0),
                     "cell_size": cell_size, "steps": steps, "dt": dt, "substeps": substeps, "alpha": alpha,
                     **{k: summary[k] for k in ("iterations", "evaluations", "stop", "gradient_reduction",
                                                "initial_misfit", "misfit")},
                     "relative_error": error / initial, "seconds": seconds,
                     "cpu_seconds": time.process_time() - cpu, "load_before": load_before,
                     "load_after": os.getloadavg()[0]})
        print(" ".join(f"{k}={rows[-1][k]}" for k in GROUNDING_COLUMNS), flush=True)
    return rows


DIAGNOSE_COLUMNS = ("cell_size", "dt", "substeps", "model_dt", "model_steps", "stable_dt_prior", "stable_dt_truth",
                    "misfit_prior", "misfit_by_time", "gradient_norm", "lumped_mass_ratio", "forward_steps",
                    "cpu_seconds", "seconds", "load")


def diagnose(cell_size: float, steps: int, dt: float, substeps_list, ram_slots: int, alpha: float) -> list[dict]:
    """The transient twin's objective at the prior, per model step (``dt / n`` for ``n`` in ``substeps_list``, twin
    and inversion alike): the stable time step (icesheet/stability.py) at the initial state with the prior and with
    the true friction, the misfit per observation at the prior in all and per observation time, the gradient norm
    (of the L2-scaled variables L-BFGS sees) and the ratio of the largest to the smallest lumped mass (the
    difference between that geometry and the Euclidean one of the nodal values), and one evaluation's cost."""
    import time

    from pyadjoint import stop_annotating

    from checkpointing.platform import Level, Platform
    from experiments.file_inversion import write_transient_twin
    from experiments.twin_inversion import true_log_friction
    from icesheet import stability
    from icesheet.inversion import TransientInversion, control_parameters, term_index
    from icesheet.observations import observations_on_mesh, read_observations
    from icesheet.scenarios import build_model, scenario_parameters

    overrides = {"mesh.cell_size": cell_size, "solver.tolerance": 1e-2, "solver.residual_tolerance": 1e-2,
                 "physics.grounded_indicator": "smooth", **control_parameters(["friction"])}
    rows = []
    for substeps in substeps_list:
        model = build_model("marine_ice_stream", scenario_parameters("marine_ice_stream", overrides=overrides))
        prior_limit = stability.initial_time_step_limit(model).dt
        with stop_annotating():
            saved = model.log_friction.copy(deepcopy=True)
            width = model.mesh.coordinates.dat.data_ro[:, 1].max()
            model.log_friction.interpolate(true_log_friction(model.mesh, float(saved.dat.data_ro.mean()), width))
            truth_limit = stability.initial_time_step_limit(model).dt
            model.log_friction.assign(saved)
        with tempfile.TemporaryDirectory() as tmp:
            files = write_transient_twin(Path(tmp), cell_size, dt, steps, substeps=substeps)["files"]
            step = dt / substeps
            terms = {term_index("velocity", t, step): [observations_on_mesh(read_observations(path), model.velocity)]
                     for t, path in files.items()}
        problem = TransientInversion(model, terms, [step] * max(terms), schedule="revolve",
                                     platform=Platform((Level(ram_slots, name="ram"),), name=f"ram{ram_slots}"))
        problem.alpha = alpha
        by_term = {}
        functional = problem.functional

        def recording(index, state, functional=functional, by_term=by_term, problem=problem):
            value = functional(index, state)
            if index in terms:
                by_term[index] = float(value) * 2 * problem.observation_size / sum(o.size for o in terms[index])
            return value

        problem.functional = recording
        cpu, start = time.process_time(), time.perf_counter()
        _, gradient = problem.evaluate(problem.vector())
        lumped = problem._scale ** 2
        rows.append({"cell_size": cell_size, "dt": dt, "substeps": substeps, "model_dt": step,
                     "model_steps": max(terms), "stable_dt_prior": prior_limit, "stable_dt_truth": truth_limit,
                     "misfit_prior": problem.last["misfit"],
                     "misfit_by_time": " ".join(f"{(i - 1) * step:g}:{by_term[i]:.4g}" for i in sorted(by_term)),
                     "gradient_norm": float(np.linalg.norm(gradient)),
                     "lumped_mass_ratio": float(lumped.max() / lumped.min()),
                     "forward_steps": problem.last_result.counters.forward_steps,
                     "cpu_seconds": time.process_time() - cpu, "seconds": time.perf_counter() - start,
                     "load": os.getloadavg()[0]})
        print(" ".join(f"{k}={rows[-1][k]}" for k in DIAGNOSE_COLUMNS), flush=True)
    return rows


JOINT_COLUMNS = ("cell_size", "steps", "dt", "substeps", "alpha", "block_scaling", "start", "start_iterations",
                 "iterations", "evaluations", "stop", "gradient_reduction", "prior_misfit", "misfit",
                 "thickness_error", "friction_error", "cpu_seconds", "seconds", "load")


def joint(cell_size: float, steps: int, dt: float, substeps: int, alpha: float, max_iterations: int,
          ram_slots: int) -> list[dict]:
    """Friction and initial thickness together (the twin of docs/inversion.md: the truth has the friction anomaly
    and a 100 m thickness bump; velocities and surfaces at every time), with L-BFGS's initial Hessian one gamma or
    one per control, from the prior or from the snapshot start: iterations, misfit, and the errors of both controls
    relative to the prior's (thickness: Euclidean over the vertices; friction: L2 on grounded ice)."""
    import time

    from pyadjoint import stop_annotating

    from checkpointing.platform import Level, Platform
    from experiments.file_inversion import friction_errors, write_transient_twin
    from icesheet.inversion import (Inversion, TransientInversion, control_parameters, evaluate_prior,
                                    snapshot_initialisation, term_index)
    from icesheet.observations import observations_on_mesh, read_observations
    from icesheet.optimisation import LBFGSOptions
    from icesheet.scenarios import build_model, scenario_parameters

    overrides = {"mesh.cell_size": cell_size, "solver.tolerance": 1e-2, "solver.residual_tolerance": 1e-2,
                 "physics.grounded_indicator": "smooth", **control_parameters(["friction"])}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        twin = write_transient_twin(Path(tmp) / "observations", cell_size, dt, steps, surface=True,
                                    thickness_error=100.0, substeps=substeps)
        step = dt / substeps
        for block_scaling in (False, True):
            for start in ("prior", "snapshot"):
                model = build_model("marine_ice_stream", scenario_parameters("marine_ice_stream",
                                                                             overrides=overrides))
                prior_thickness = model.thickness.dat.data_ro.copy()
                terms = {}
                for files in (twin["files"], twin["surface_files"]):
                    for t, path in files.items():
                        data = read_observations(path)
                        terms.setdefault(term_index(data.quantity, t, step), []).append(
                            observations_on_mesh(data, model.velocity, model.surface_expression))
                problem = TransientInversion(model, terms, [step] * max(terms), ("friction", "thickness"),
                                             schedule="revolve",
                                             platform=Platform((Level(ram_slots, name="ram"),), name="ram"))
                options = LBFGSOptions(max_iterations=max_iterations, block_scaling=block_scaling)
                run = Path(tmp) / f"{block_scaling}-{start}"
                cpu, began = time.process_time(), time.perf_counter()
                prior = evaluate_prior(problem, run / "prior.json")
                first = (snapshot_initialisation(problem, run / "start", alpha, options) if start == "snapshot"
                         else None)
                result = Inversion(problem, run / "state", options,
                                   reference_gradient_norm=prior["gradient_norm"]).solve(alpha)
                cpu, seconds = time.process_time() - cpu, time.perf_counter() - began
                problem.set_vector(result.state.x)
                with stop_annotating():
                    error, initial = friction_errors(model.output_fields()["grounded"], model.log_friction,
                                                     twin["prior"], twin["width"])
                truth_thickness = twin["true_thickness"]
                rows.append({"cell_size": cell_size, "steps": steps, "dt": dt, "substeps": substeps, "alpha": alpha,
                             "block_scaling": block_scaling, "start": start,
                             "start_iterations": first.state.iteration if first else 0,
                             "iterations": result.state.iteration, "evaluations": result.state.evaluations,
                             "stop": result.state.stop, "gradient_reduction": result.gradient_reduction,
                             "prior_misfit": prior["misfit"], "misfit": result.misfit,
                             "thickness_error": float(np.linalg.norm(model.thickness.dat.data_ro - truth_thickness)
                                                      / np.linalg.norm(prior_thickness - truth_thickness)),
                             "friction_error": error / initial, "cpu_seconds": cpu,
                             "seconds": seconds, "load": os.getloadavg()[0]})
                print(" ".join(f"{k}={rows[-1][k]}" for k in JOINT_COLUMNS), flush=True)
    return rows


def resolve_substeps(substeps: str, cell_size: float, dt: float) -> int:
    """``--substeps`` as a number: given, or ``auto``: what ``icesheet invert --substeps auto`` chooses for an
    interval of ``dt`` years at the prior's initial state (icesheet.inversion.model_substeps), so that the twin is
    made with the model step the inversion takes."""
    if substeps != "auto":
        return int(substeps)
    from icesheet.inversion import model_substeps
    from icesheet.scenarios import build_model, scenario_parameters

    from experiments.file_inversion import SCENARIO

    model = build_model(SCENARIO, scenario_parameters(SCENARIO, overrides={
        "mesh.cell_size": cell_size, "physics.grounded_indicator": "smooth"}))
    return model_substeps(model, dt)[0]


def _save(name: str, columns, rows) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / f"{name}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    (RESULTS / f"{name}.json").write_text(json.dumps({"rows": rows}, indent=2) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell-size", type=float, default=4000.0)
    parser.add_argument("--variants", nargs="+", default=["1e-2", "1e-6"], help="Picard tolerances")
    parser.add_argument("--transient", action="store_true", help="the transient memory measurement instead")
    parser.add_argument("--lengths", nargs="+", type=int, default=[2, 4, 8, 16], help="steps (= observation times)")
    parser.add_argument("--grounding", action="store_true", help="the grounded-indicator comparison instead")
    parser.add_argument("--steps", type=int, default=3, help="--grounding: observation times")
    parser.add_argument("--dt", type=float, default=10.0, help="--grounding: years between them")
    parser.add_argument("--alpha", type=float, default=0.1, help="--grounding: the regularisation weight")
    parser.add_argument("--max-iterations", type=int, default=60, help="--grounding: L-BFGS iterations")
    parser.add_argument("--substeps", default="auto", help="--grounding, --joint: model steps per interval of --dt, "
                        "or auto (default: as icesheet invert --substeps auto, at the prior)")
    parser.add_argument("--indicators", nargs="+", default=["sharp", "smooth"], help="--grounding: indicators")
    parser.add_argument("--ram-slots", type=int, default=2, help="--grounding: Revolve's RAM checkpoints")
    parser.add_argument("--keep", type=Path, help="--grounding: keep the files and outputs under this directory")
    parser.add_argument("--name", default="bench_inversion_grounding", help="--grounding: results file name")
    parser.add_argument("--start", default="prior", choices=("prior", "snapshot"), help="--grounding: icesheet "
                        "invert --start")
    parser.add_argument("--diagnose", nargs="+", type=int, metavar="SUBSTEPS",
                        help="the transient twin's objective at the prior for these model steps per --dt instead")
    parser.add_argument("--joint", action="store_true", help="friction and initial thickness together instead "
                        "(--cell-size 40000 --steps 2 --substeps 3 --alpha 0.1 --max-iterations 40)")
    parser.add_argument("--state-errors", nargs="+", type=Path, metavar="RUN",
                        help="figures of the saved state of --grounding --keep runs (RUN/invert/state) instead")
    parser.add_argument("--name-suffix", default="", help="--state-errors: appended to the results file name")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.substeps != "auto" and not (args.substeps.isdigit() and int(args.substeps) >= 1):
        parser.error(f"--substeps = {args.substeps!r}: an integer >= 1, or auto")
    if args.grounding or args.joint:
        args.substeps = resolve_substeps(args.substeps, args.cell_size, args.dt)
    if args.state_errors:
        _save(f"bench_inversion_state{args.name_suffix}", STATE_COLUMNS, state_errors(args.state_errors,
                                                                                       args.cell_size))
        return 0
    if args.joint:
        _save("bench_inversion_joint", JOINT_COLUMNS, joint(args.cell_size, args.steps, args.dt, args.substeps,
                                                            args.alpha, args.max_iterations, args.ram_slots))
        return 0
    if args.diagnose:
        _save("bench_inversion_diagnose", DIAGNOSE_COLUMNS,
              diagnose(args.cell_size, args.steps, args.dt, args.diagnose, args.ram_slots, args.alpha))
        return 0
    if args.grounding:
        _save(args.name, GROUNDING_COLUMNS,
              grounding(args.cell_size, args.steps, args.dt, args.alpha, args.max_iterations, args.substeps,
                        args.indicators, args.ram_slots, args.keep, args.start))
        return 0
    if args.transient:
        _save("bench_inversion_transient", TRANSIENT_COLUMNS, transient_memory(args.lengths))
        return 0
    from experiments.file_inversion import ERROR_GOAL, TIME_GOAL, invert_twin

    rows = []
    for tolerance in args.variants:
        load_before = os.getloadavg()[0]
        with tempfile.TemporaryDirectory() as tmp:
            result = invert_twin(Path(tmp), args.cell_size, "--picard-tolerance", tolerance)
        row = {"cell_size": args.cell_size, "picard_tolerance": float(tolerance), "load_before": load_before,
               "load_after": os.getloadavg()[0],
               **{k: result[k] for k in ("seconds", "solves", "iterations", "total_evaluations", "alpha", "misfit",
                                         "stop", "gradient_reduction", "relative_error")}}
        row["goal_met"] = bool(result["converged"] and row["relative_error"] <= ERROR_GOAL
                               and row["seconds"] < TIME_GOAL)
        rows.append(row)
        print(" ".join(f"{k}={row[k]:.4g}" if isinstance(row[k], float) else f"{k}={row[k]}" for k in COLUMNS),
              flush=True)
    _save("bench_inversion", COLUMNS, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
