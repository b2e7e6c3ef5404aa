"""Peak memory of an ice-model adjoint against the number of time steps l: our checkpoint manager vs vanilla pyadjoint.

The toy-model comparison (benchmarks/bench_manager.py) has a 0.034 MB state, so constant overheads dominate; this one
runs the real model: the ``marine_ice_stream`` scenario (icesheet.scenarios.build_model; MISMIP+ bed) on a
``--cell-size`` mesh, log friction (theta = log C), steps of ``--dt`` years (default 2: at 2.5 km cells the
scenario's 10-year step fails to converge after 9 steps), J = volume above flotation at step l, control
theta.  One state x_i = (thickness h, velocity u): 3 P1 fields, ``state_mb`` below.  To make steps cheaper the Picard
loop stops at ``solver.tolerance = solver.residual_tolerance = --tolerance`` (default 1e-2) and Newton always
finishes the solve (``solver.newton_finish = "on"``, to ``newton_tolerance = 1e-10``), so every variant
differentiates the same converged velocity.

Variants, each (variant, l) in its own process (subprocess):

- ``forward-only``: l untaped steps (``checkpointing.adjoint.evaluate``): the baseline;
- ``manager-store-all``: our manager, every state in RAM;
- ``manager-revolve``: our manager, Revolve with ``--slots`` RAM checkpoints (Griewank & Walther 2000);
- ``manager-hrevolve``: our manager, H-Revolve on ``--slots`` RAM slots + an unbounded disk directory in a temporary
  directory (w = r = 1 forward step) (Herrmann & Pallez 2020);
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
that / ``state_mb``.  ``growth_states_per_step`` is
the least-squares slope of ``above_forward_states`` against l.  Goal (issue 5) for the bounded schedules
(manager-revolve, manager-hrevolve): flat in l and at most slots + 3 states above the forward-only run;
``flat`` says whether the slope is < 0.05 states per step, ``goal_met`` whether it is flat and the largest value over
l is <= slots + 3 states.  Every variant's dJ/dtheta . h for a fixed h must agree with manager-store-all's to 1e-8
(relative).

Measured (benchmarks/results/bench_memory_ice.*; 2.5 km, 0.2 MB per state, l = 10, 40, 120, 4 slots): the manager's
store-all grows 0.97 states per step; its Revolve and H-Revolve stay within 35.0-37.5 MB above the forward-only run
at every l (slopes 0.078 and 0.025 states per step), but that is ~175-185 states, not <= 7: a constant adjoint
overhead (vanilla pyadjoint store-all at l = 10 is at 42 MB too), so the goal is not met at this state size.
Vanilla pyadjoint grows 4.2 states per step (store-all) and 3.7 (Revolve(l, 4)), and with checkpointing its gradient
is wrong on this model: dJ.h 4-12% off store-all's, also with Revolve(4, 4) at 10 km (0.84%, independent of the
tolerance), while its replayed J agrees to 1e-15 and ``SingleMemoryStorageSchedule`` agrees exactly
(benchmarks/bench_pyadjoint_checkpointing_bug.py reproduces this on a 1-D model and traces its cause).

Usage:  python benchmarks/bench_memory_ice.py [--cell-size 2500] [--dt 2] [--steps 10 40 120] [--slots 4] [--jobs 2]
        [--quick]
Prints a table and writes benchmarks/results/bench_memory_ice.{csv,json}.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
VARIANTS = ("forward-only", "manager-store-all", "manager-revolve", "manager-hrevolve", "pyadjoint-store-all",
            "pyadjoint-revolve")
BOUNDED = ("manager-revolve", "manager-hrevolve")
COLUMNS = ("variant", "steps", "cell_size", "state_mb", "start_mb", "peak_mb", "above_start_mb", "above_forward_mb",
           "above_forward_states", "growth_states_per_step", "flat", "goal_met", "run_s", "forward_steps",
           "directional_derivative", "relative_difference", "agrees_with_store_all")
WARMUP_CELL_SIZE = 10000.0  # m: the warm-up compiles the same kernels on a coarse mesh
FLAT_SLOPE = 0.05  # states per step: below this a variant counts as flat in l


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _build(cell_size: float, tolerance: float, steps: int):
    """(model, functional, direction h) for a run of ``steps`` steps."""
    import firedrake as fd

    from icesheet.functionals import build_functional
    from icesheet.scenarios import build_model, scenario_parameters

    parameters = scenario_parameters("marine_ice_stream", overrides={
        "mesh.cell_size": cell_size, "solver.tolerance": tolerance, "solver.residual_tolerance": tolerance,
        "solver.newton_finish": "on"})
    model = build_model("marine_ice_stream", parameters, friction_parameterisation="log")
    x, y = fd.SpatialCoordinate(model.mesh)
    direction = fd.Function(model.log_friction.function_space()).interpolate(
        fd.sin(x / 1.0e5) + fd.cos(y / 2.0e4))
    return model, build_functional(model, "vaf", steps, "final"), direction


def _manager(variant: str, model, functional, dt: float, steps: int, slots: int, directory: str):
    """(forward steps, dJ/dtheta) from one manager run (for forward-only: one untaped sweep, no derivative)."""
    from checkpointing.adjoint import evaluate, gradient
    from checkpointing.platform import Platform
    from icesheet.controls import time_loop

    loop = time_loop(model, functional, [dt] * steps, ("friction",))
    spec, planner = {"forward-only": ("inf:0:0", None),
                     "manager-store-all": ("inf:0:0", "store-all"),
                     "manager-revolve": (f"{slots}:0:0", "revolve"),
                     "manager-hrevolve": (f"{slots}:0:0,inf:1:1", "hrevolve")}[variant]
    if planner is None:
        evaluate(loop)
        return steps, None
    platform = Platform.from_spec(spec)
    result = gradient(loop, planner, platform, [directory] * (platform.n_levels - 1))
    return result.counters.forward_steps, result.gradient[0]


def _pyadjoint(variant: str, model, functional, dt: float, steps: int, slots: int):
    """The same with vanilla pyadjoint (forward steps of its checkpointed recomputation are not observable)."""
    from checkpoint_schedules import Revolve
    from firedrake.adjoint import (Control, ReducedFunctional, Tape, continue_annotation, pause_annotation,
                                   set_working_tape)

    initial = [f.copy(deepcopy=True) for f in model.state]
    with set_working_tape(Tape()) as tape:
        if variant == "pyadjoint-revolve":
            tape.enable_checkpointing(Revolve(steps, slots))
        continue_annotation()
        control = Control(model.log_friction)
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


def worker(variant: str, cell_size: float, tolerance: float, dt: float, steps: int, slots: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-memory-ice-") as directory:
        warm_models = []  # kept alive: memory they freed could be reused unseen by ru_maxrss
        for warm in ("manager-store-all", "pyadjoint-store-all"):  # the same warm-up in every process
            model, functional, _ = _build(max(cell_size, WARMUP_CELL_SIZE), tolerance, 2)
            if warm.startswith("manager"):
                _manager(warm, model, functional, dt, 2, slots, directory)
            else:
                _pyadjoint(warm, model, functional, dt, 2, slots)
            warm_models.append((model, functional))
        start_mb = _rss_mb()
        model, functional, direction = _build(cell_size, tolerance, steps)
        start = time.perf_counter()
        if variant.startswith("pyadjoint"):
            forward_steps, derivative = _pyadjoint(variant, model, functional, dt, steps, slots)
        else:
            forward_steps, derivative = _manager(variant, model, functional, dt, steps, slots, directory)
        run_s = time.perf_counter() - start
        peak_mb = _rss_mb()
    state_mb = sum(f.dat.data_ro.nbytes for f in model.state) / 1e6
    return {"variant": variant, "steps": steps, "cell_size": cell_size, "state_mb": round(state_mb, 4),
            "start_mb": round(start_mb, 1), "peak_mb": round(peak_mb, 1),
            "above_start_mb": round(peak_mb - start_mb, 1), "run_s": round(run_s, 2), "forward_steps": forward_steps,
            "directional_derivative": None if derivative is None else float(derivative.dat.inner(direction.dat))}


def derive(rows: list[dict], slots: int) -> None:
    """Add the columns relative to the forward-only run at the same l, the slope over l and the goal (in place)."""
    import numpy as np

    by = {(r["variant"], r["steps"]): r for r in rows}
    for r in rows:
        baseline = by.get(("forward-only", r["steps"]))
        r["above_forward_mb"] = (None if baseline is None else
                                 round(r["above_start_mb"] - baseline["above_start_mb"], 1))
        r["above_forward_states"] = (None if baseline is None else
                                     round(r["above_forward_mb"] / r["state_mb"], 1))
        reference = by.get(("manager-store-all", r["steps"]))
        if r["directional_derivative"] is None or reference is None:
            r["relative_difference"] = r["agrees_with_store_all"] = None
        else:
            difference = (abs(r["directional_derivative"] - reference["directional_derivative"])
                          / abs(reference["directional_derivative"]))
            r["relative_difference"] = float(f"{difference:.2e}")
            r["agrees_with_store_all"] = difference <= 1e-8
    for variant in {r["variant"] for r in rows}:
        same = sorted((r for r in rows if r["variant"] == variant and r["above_forward_states"] is not None),
                      key=lambda r: r["steps"])
        slope = (None if len(same) < 2 else round(float(np.polyfit(
            [r["steps"] for r in same], [r["above_forward_states"] for r in same], 1)[0]), 3))
        flat = None if variant not in BOUNDED or slope is None else bool(slope < FLAT_SLOPE)
        goal = None if flat is None else bool(flat and max(r["above_forward_states"] for r in same) <= slots + 3)
        for r in rows:
            if r["variant"] == variant:
                r["growth_states_per_step"], r["flat"], r["goal_met"] = slope, flat, goal


def write_and_print(rows: list[dict], settings: dict) -> None:
    derive(rows, settings["slots"])
    rows.sort(key=lambda r: (r["steps"], VARIANTS.index(r["variant"])))
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "bench_memory_ice.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    (RESULTS / "bench_memory_ice.json").write_text(json.dumps({**settings, "rows": rows}, indent=1))
    header = ("variant", "l", "peak MB", "+start MB", "+fwd MB", "+fwd states", "growth/step", "flat", "goal", "run s",
              "fwd steps", "rel. diff dJ.h")
    keys = ("variant", "steps", "peak_mb", "above_start_mb", "above_forward_mb", "above_forward_states",
            "growth_states_per_step", "flat", "goal_met", "run_s", "forward_steps", "relative_difference")
    print(f"state = {rows[0]['state_mb']} MB (cell size {settings['cell_size']:g} m), slots = {settings['slots']}, "
          f"dt = {settings['dt']:g} yr, tolerance = {settings['tolerance']:g} + Newton")
    print("  ".join(f"{h:>19}" if i == 0 else f"{h:>11}" for i, h in enumerate(header)))
    for r in rows:
        print("  ".join(f"{str(r[k]):>19}" if i == 0 else f"{str(r[k]):>11}" for i, k in enumerate(keys)))
    print(f"written: {RESULTS / 'bench_memory_ice.csv'}, {RESULTS / 'bench_memory_ice.json'}")


def _run_worker(variant: str, args, steps: int):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", variant, str(args.cell_size),
           str(args.tolerance), str(args.dt), str(steps), str(args.slots)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        print(f"{variant} l={steps}: failed\n{proc.stderr[-3000:]}", file=sys.stderr, flush=True)
        return None
    print(f"done: {variant} l={steps}", file=sys.stderr, flush=True)
    return json.loads(lines[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell-size", type=float, default=2500.0, help="m")
    parser.add_argument("--tolerance", type=float, default=1e-2, help="Picard tolerance (Newton finishes)")
    parser.add_argument("--dt", type=float, default=2.0, help="time step, years")
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 40, 120])
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=2, help="worker processes run at the same time")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--quick", action="store_true", help="--cell-size 10000 --steps 4 8 (a smoke run)")
    parser.add_argument("--table-only", action="store_true",
                        help="re-derive and print the table from benchmarks/results/bench_memory_ice.json")
    parser.add_argument("--worker", nargs=6, metavar=("VARIANT", "CELL_SIZE", "TOLERANCE", "DT", "STEPS", "SLOTS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        variant, cell_size, tolerance, dt, steps, slots = args.worker
        print(json.dumps(worker(variant, float(cell_size), float(tolerance), float(dt), int(steps), int(slots))),
              flush=True)
        return 0
    if args.table_only:
        saved = json.loads((RESULTS / "bench_memory_ice.json").read_text())
        write_and_print(saved.pop("rows"), saved)
        return 0
    if args.quick:
        args.cell_size, args.steps = 10000.0, [4, 8]
    for name in ("cell_size", "tolerance", "dt"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} = {getattr(args, name)}: must be > 0")
    if min(args.steps) < 2 or args.slots < 1 or args.jobs < 1:
        parser.error(f"--steps {args.steps} (each >= 2), --slots {args.slots} and --jobs {args.jobs} (>= 1)")
    configurations = [(v, s) for s in sorted(args.steps, reverse=True) for v in args.variants]
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = [r for r in pool.map(lambda c: _run_worker(c[0], args, c[1]), configurations) if r is not None]
    write_and_print(rows, {"cell_size": args.cell_size, "tolerance": args.tolerance, "dt": args.dt,
                           "slots": args.slots, "jobs": args.jobs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
