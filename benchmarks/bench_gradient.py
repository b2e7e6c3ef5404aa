"""Cost of a gradient relative to a forward run, fixed-point vs unrolled adjoint of the Picard loop.

Model: the marine ice stream (MISMIP+ bed, ``--cell-size``), ``--steps`` steps of 10 years, J = volume above
flotation at the end, control: log friction (theta = log C).  For each adjoint mode of the velocity solver
(docs/model.md, section 6):

- ``forward_s``: one untaped forward sweep (``checkpointing.adjoint.evaluate``);
- ``manager_s``: the gradient users get (``icesheet.controls.compute_gradient``, store-all: the manager re-tapes each
  step inside its backward step; in the fixed-point mode the re-tape starts from the converged velocity kept from
  the next backward step and skips the Picard loop, in the unrolled mode it repeats it), and its backward phase
  alone (``manager_backward_wall_s``: backward steps, reads and discards);
- ``pyadjoint_*``: vanilla pyadjoint store-all, the whole run on one tape: taped forward, then ``compute_gradient``
  (``pyadjoint_adjoint_s``: the adjoint sweep alone).

Times are CPU times of this process (``time.process_time``: other processes sharing the cores inflate them less
than wall times; with one thread per process they equal wall times on an idle machine); the manager's backward
phase is taken from its wall-time counters, and every wall time is in the JSON file.  Ratios to ``forward_s`` are
printed side by side.  The goal "gradient / forward <= 1" can only hold for the adjoint
sweep itself (a gradient includes a forward run): in the fixed-point mode that sweep is one linear solve per
velocity solve instead of one per Picard iteration (Christianson 1994).  Each mode first runs a one-step gradient
so that kernel compilation is not timed.

Usage:  python benchmarks/bench_gradient.py [--cell-size 10000] [--steps 10] [--quick]
Prints a table and writes benchmarks/results/bench_gradient.{csv,json}.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
DT = 10.0
MODES = ("fixed-point", "unrolled")
COLUMNS = ("adjoint_mode", "dofs", "steps", "picard_per_step", "forward_s", "manager_s", "manager_over_forward",
           "manager_backward_wall_s", "manager_backward_over_forward_wall", "pyadjoint_taped_forward_s",
           "pyadjoint_adjoint_s", "pyadjoint_over_forward", "pyadjoint_adjoint_over_forward", "tape_blocks",
           "gradient_agreement")


def build(mode: str, cell_size: float, steps: int):
    from icesheet.functionals import build_functional
    from icesheet.scenarios import build_model, scenario_parameters

    parameters = scenario_parameters("marine_ice_stream", overrides={"mesh.cell_size": cell_size})
    model = build_model("marine_ice_stream", parameters, adjoint_mode=mode, friction_parameterisation="log")
    return model, build_functional(model, "vaf", steps, "final")


class Timer:
    """CPU and wall time of a block: ``cpu`` and ``wall`` (s) after it ends."""

    def __enter__(self):
        self._cpu, self._wall = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.cpu, self.wall = time.process_time() - self._cpu, time.perf_counter() - self._wall


def pyadjoint_gradient(model, functional, steps: int) -> dict:
    """Vanilla pyadjoint: the whole run on one tape, then its adjoint; the state is restored afterwards."""
    from firedrake.adjoint import (Control, Tape, compute_derivative, continue_annotation, pause_annotation,
                                   set_working_tape, stop_annotating)

    saved = [f.copy(deepcopy=True) for f in model.state]
    tape = Tape()
    try:
        with set_working_tape(tape):
            for f in model.state + (model.log_friction,):
                f.clear_block_variable()
            control = Control(model.log_friction)
            continue_annotation()
            with Timer() as taped:
                for _ in range(steps):
                    model.step(DT)
                value = functional(steps, model.state)
            pause_annotation()
            with Timer() as adjoint:
                derivative = compute_derivative(value, control)
            blocks = len(tape.get_blocks())
    finally:
        pause_annotation()
        with stop_annotating():
            for f, s in zip(model.state, saved):
                f.assign(s)
        for f in model.state + (model.log_friction,):
            f.clear_block_variable()
    return {"taped": taped, "adjoint": adjoint, "blocks": blocks, "derivative": derivative.dat.data_ro.copy()}


def measure(mode: str, cell_size: float, steps: int) -> dict:
    import numpy as np

    from checkpointing.adjoint import evaluate
    from icesheet.controls import compute_gradient, time_loop

    warm_model, warm_functional = build(mode, cell_size, 1)
    compute_gradient(warm_model, warm_functional, [DT], ("friction",))
    pyadjoint_gradient(warm_model, warm_functional, 1)

    model, functional = build(mode, cell_size, steps)
    picard = []
    loop = time_loop(model, functional, [DT] * steps, ("friction",),
                     on_step=lambda info, taped, seconds: picard.append(info.picard_iterations))
    with Timer() as forward:
        evaluate(loop)
    with Timer() as manager:
        gradient = compute_gradient(model, functional, [DT] * steps, ("friction",))
    spent = gradient.result.counters.wall_time
    backward_wall = spent["backward"] + spent["read"] + spent["discard"]
    vanilla = pyadjoint_gradient(model, functional, steps)
    taped, adjoint = vanilla["taped"], vanilla["adjoint"]
    ours = gradient.derivative["friction"].dat.data_ro
    return {"adjoint_mode": mode, "dofs": model.thickness.function_space().dim(), "steps": steps,
            "picard_per_step": float(np.mean(picard)), "forward_s": forward.cpu, "manager_s": manager.cpu,
            "manager_over_forward": manager.cpu / forward.cpu, "manager_backward_wall_s": backward_wall,
            "manager_backward_over_forward_wall": backward_wall / forward.wall,
            "pyadjoint_taped_forward_s": taped.cpu, "pyadjoint_adjoint_s": adjoint.cpu,
            "pyadjoint_over_forward": (taped.cpu + adjoint.cpu) / forward.cpu,
            "pyadjoint_adjoint_over_forward": adjoint.cpu / forward.cpu, "tape_blocks": vanilla["blocks"],
            "gradient_agreement": float(np.linalg.norm(ours - vanilla["derivative"]) / np.linalg.norm(ours)),
            "wall_s": {"forward": forward.wall, "manager": manager.wall, "pyadjoint_taped_forward": taped.wall,
                       "pyadjoint_adjoint": adjoint.wall}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cell-size", type=float, default=10000.0, help="mesh cell size, m (default 10000)")
    parser.add_argument("--steps", type=int, default=10, help="time steps (default 10)")
    parser.add_argument("--quick", action="store_true", help="40 km cells, 3 steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.cell_size, args.steps = 40000.0, 3
    del sys.argv[1:]  # Firedrake hands sys.argv to PETSc
    rows = [measure(mode, args.cell_size, args.steps) for mode in MODES]
    header = " ".join(f"{c:>14.14}" for c in COLUMNS)
    print(header)
    for row in rows:
        print(" ".join(f"{row[c]:>14.4g}" if isinstance(row[c], float) else f"{row[c]:>14}" for c in COLUMNS))
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "bench_gradient.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    (RESULTS / "bench_gradient.json").write_text(json.dumps(
        {"cell_size": args.cell_size, "steps": args.steps, "dt": DT, "load_average": os.getloadavg(),
         "rows": rows}, indent=2) + "\n")
    print(f"written: {RESULTS / 'bench_gradient.csv'}, {RESULTS / 'bench_gradient.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
