"""Peak memory of an adjoint against the number of time steps l: our checkpoint manager vs vanilla pyadjoint.

Model: the toy nonlinear diffusion (tests/support/toymodel.py) on a ``cells x cells`` P1 mesh, one Newton
solve per backward-Euler step; J = sum of misfits at odd steps + int u_l^3; controls: initial state, source,
diffusivity.  Variants (each (variant, l) in its own process, so that peak RSS is that configuration's own):

- ``manager-store-all``: our manager, every state in RAM (``l`` checkpoints);
- ``manager-revolve``: our manager, Revolve with ``--slots`` RAM checkpoints (Griewank & Walther 2000);
- ``manager-hrevolve``: our manager, H-Revolve on ``--slots`` RAM slots + an unbounded disk directory (w = r = 1
  forward step), so RAM holds at most ``--slots`` states (Herrmann & Pallez 2020);
- ``pyadjoint-store-all``: vanilla pyadjoint, the whole loop on one tape;
- ``pyadjoint-revolve``: vanilla pyadjoint with ``tape.enable_checkpointing(checkpoint_schedules.Revolve(l, slots))``.

Each worker first runs a 2-step adjoint (kernel compilation, caches), then records ``ru_maxrss`` as its baseline,
then runs the configuration and reports the peak RSS above that baseline, the forward and gradient wall times,
and dJ.h for a fixed direction h (all variants must agree).  Expectation (docs/checkpointing.md, "The checkpoint manager"): vanilla
pyadjoint grows with l even under Revolve (pyadjoint#169); the manager's Revolve/H-Revolve stay flat and its
store-all grows by one state per step.

Usage:  python benchmarks/bench_manager.py [--cells 64] [--steps 20 80 320] [--slots 4] [--quick]
Prints a table and writes benchmarks/results/bench_manager.{csv,json}.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's packages; the toy model is test support

from checkpointing.memory import peak_rss_mb  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
VARIANTS = ("manager-store-all", "manager-revolve", "manager-hrevolve", "pyadjoint-store-all", "pyadjoint-revolve")
COLUMNS = ("variant", "steps", "cells", "state_mb", "peak_rss_above_baseline_mb", "states_equivalent",
           "growth_states_per_step", "forward_s", "gradient_s", "gradient_over_forward", "forward_steps",
           "directional_derivative", "agrees_with_store_all")
DT = 0.05


def _toy(cells, steps):
    import firedrake as fd
    from checkpointing.adjoint import TimeLoop
    from support.toymodel import NonlinearDiffusion, misfit_functional

    model = NonlinearDiffusion(cells)
    loop = TimeLoop(model, [DT] * steps, (model.source, model.diffusivity), misfit_functional(model, steps))
    x, y = fd.SpatialCoordinate(model.mesh)
    direction = fd.Function(model.u.function_space()).interpolate(fd.cos(2 * x) + y * y)
    return model, loop, direction


def _manager_gradient(variant, cells, steps, slots, directory):
    """(forward seconds, gradient seconds, forward steps, dJ.h) for one manager variant."""
    from checkpointing.adjoint import evaluate, gradient
    from checkpointing.platform import Platform

    model, loop, direction = _toy(cells, steps)
    spec, planner = {"manager-store-all": ("inf:0:0", "store-all"),
                     "manager-revolve": (f"{slots}:0:0", "revolve"),
                     "manager-hrevolve": (f"{slots}:0:0,inf:1:1", "hrevolve")}[variant]
    platform = Platform.from_spec(spec)
    start = time.perf_counter()
    evaluate(loop)
    forward = time.perf_counter() - start
    result = gradient(loop, planner, platform, [directory] * (platform.n_levels - 1))
    derivative = sum(g.dat.inner(direction.dat) for g in result.initial_state_gradient + result.gradient)
    return forward, result.run_time, result.counters.forward_steps, float(derivative)


def _pyadjoint_gradient(variant, cells, steps, slots):
    """The same for vanilla pyadjoint: tape the loop (with checkpoint_schedules' Revolve if asked), then
    ReducedFunctional.derivative(); the forward time is the taped run's.

    Written the way pyadjoint's checkpointing needs it: the initial-state control is a separate Function assigned
    into the state, and each term j_{i+1} is taped after step i inside the same time step.  (Taping j_i at the
    start of time step i, or using the in-place state itself as the control, gave gradients 10-30% off under
    ``Revolve`` while the un-checkpointed tape was right, pyadjoint-ad 2026.10.0.)"""
    from checkpoint_schedules import Revolve
    from firedrake.adjoint import (Control, ReducedFunctional, Tape, continue_annotation, pause_annotation,
                                   set_working_tape)

    model, loop, direction = _toy(cells, steps)
    initial = model.u.copy(deepcopy=True)
    with set_working_tape(Tape()) as tape:
        if variant == "pyadjoint-revolve":
            tape.enable_checkpointing(Revolve(steps, slots))
        continue_annotation()
        start = time.perf_counter()
        controls = [Control(initial), Control(model.source), Control(model.diffusivity)]
        model.u.assign(initial)
        J = loop.functional(0, model.state) or 0.0
        for i in tape.timestepper(iter(range(steps))):
            model.step(DT)
            term = loop.functional(i + 1, model.state)
            J = J if term is None else J + term
        pause_annotation()
        forward = time.perf_counter() - start
        start = time.perf_counter()
        derivatives = ReducedFunctional(J, controls).derivative()
        gradient = time.perf_counter() - start
    derivative = sum(g.dat.inner(direction.dat) for g in derivatives)
    forward_steps = steps if variant == "pyadjoint-store-all" else None  # not observable from outside
    return forward, gradient, forward_steps, float(derivative)


def worker(variant: str, cells: int, steps: int, slots: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-manager-") as directory:
        run = _manager_gradient if variant.startswith("manager") else _pyadjoint_gradient
        extra = (directory,) if variant.startswith("manager") else ()
        run(variant, cells, 2, min(slots, 2), *extra)  # warm-up: compile every kernel, fill the caches
        baseline = peak_rss_mb()
        forward, gradient, forward_steps, derivative = run(variant, cells, steps, slots, *extra)
        peak = peak_rss_mb() - baseline
    state_mb = (cells + 1) ** 2 * 8 / 1e6
    return {"variant": variant, "steps": steps, "cells": cells, "state_mb": round(state_mb, 4),
            "peak_rss_above_baseline_mb": round(peak, 1), "states_equivalent": round(peak / state_mb, 1),
            "forward_s": round(forward, 3), "gradient_s": round(gradient, 3),
            "gradient_over_forward": round(gradient / forward, 2), "forward_steps": forward_steps,
            "directional_derivative": derivative}


def write_and_print(rows: list[dict], cells: int, slots: int) -> None:
    """Add the derived columns (agreement with store-all's dJ.h at the same l; RSS growth per step in states,
    between this variant's smallest and largest l), write the CSV and JSON, print the table."""
    for row in rows:
        reference = next((r for r in rows if r["steps"] == row["steps"] and r["variant"] == "manager-store-all"), None)
        row["agrees_with_store_all"] = (None if reference is None else
                                        abs(row["directional_derivative"] - reference["directional_derivative"])
                                        <= 1e-8 * abs(reference["directional_derivative"]))
        same = sorted((r for r in rows if r["variant"] == row["variant"]), key=lambda r: r["steps"])
        first, last = same[0], same[-1]
        row["growth_states_per_step"] = (None if last["steps"] == first["steps"] else round(
            (last["peak_rss_above_baseline_mb"] - first["peak_rss_above_baseline_mb"])
            / (last["steps"] - first["steps"]) / row["state_mb"], 2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "bench_manager.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    (RESULTS / "bench_manager.json").write_text(json.dumps(
        {"cells": cells, "slots": slots, "dt": DT, "rows": rows}, indent=1))
    header = ("variant", "l", "peak RSS MB", "~states", "growth/step", "fwd s", "grad s", "grad/fwd", "fwd steps",
              "agrees")
    print("  ".join(f"{h:>19}" if i == 0 else f"{h:>11}" for i, h in enumerate(header)))
    for r in rows:
        values = (r["variant"], r["steps"], r["peak_rss_above_baseline_mb"], r["states_equivalent"],
                  r["growth_states_per_step"], r["forward_s"], r["gradient_s"], r["gradient_over_forward"],
                  r["forward_steps"], r["agrees_with_store_all"])
        print("  ".join(f"{str(v):>19}" if i == 0 else f"{str(v):>11}" for i, v in enumerate(values)))
    print(f"written: {RESULTS / 'bench_manager.csv'}, {RESULTS / 'bench_manager.json'}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=64)
    parser.add_argument("--steps", type=int, nargs="+", default=[20, 80, 320])
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--quick", action="store_true", help="--cells 16 --steps 10 20 (a smoke run)")
    parser.add_argument("--table-only", action="store_true",
                        help="re-derive and print the table from benchmarks/results/bench_manager.json")
    parser.add_argument("--worker", nargs=4, metavar=("VARIANT", "CELLS", "STEPS", "SLOTS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        variant, cells, steps, slots = args.worker
        print(json.dumps(worker(variant, int(cells), int(steps), int(slots))), flush=True)
        return 0
    if args.table_only:
        saved = json.loads((RESULTS / "bench_manager.json").read_text())
        write_and_print(saved["rows"], saved["cells"], saved["slots"])
        return 0
    if args.quick:
        args.cells, args.steps = 16, [10, 20]
    rows = []
    for steps in args.steps:
        for variant in args.variants:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", variant, str(args.cells), str(steps),
                   str(args.slots)]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
            if proc.returncode != 0 or not lines:
                print(f"{variant} l={steps}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            rows.append(json.loads(lines[-1]))
            print(f"done: {variant} l={steps}", file=sys.stderr, flush=True)
    write_and_print(rows, args.cells, args.slots)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
