"""The thickness update's linear solver: MUMPS's LU against Krylov methods with ILU(0), side by side on one state.

State: the ``marine_ice_stream`` scenario at each ``--cell-sizes`` (default 2 and 1 km) after ``--steps`` steps
(default 3) of ``dt = cell size / 1 km`` years (bench_forward's step), then one velocity solve.  Every candidate
(a PETSc options dictionary, icesheet.solver_options) makes the thickness update of the next step from that state,
``--repeats`` times (default 4, the first untimed: PETSc objects set up), through icesheet.thickness_solver (the
assembly of the matrix and the right-hand side included, as in a time step); the solves of the candidates are
interleaved round by round (the machine is shared and its load changes).  Per candidate: wall and CPU time per solve
(the minimum; the slowest rank's), Krylov iterations, and the relative l2 difference of the thickness to MUMPS's.
``--courant`` repeats the state's step with ``dt`` multiplied by the given factors (e.g. 10 100; column ``courant``:
max |u| dt / cell size): Courant numbers
far above the model's stable step (icesheet.stability splits such steps), where ILU(0) weakens; a candidate that fails
there is reported as failed at that factor only (the model then falls back to MUMPS for that solve,
icesheet.thickness_solver; the next solve, here the next factor's, is a Krylov solve again).

Usage:  python benchmarks/bench_thickness.py [--cell-sizes 2000 1000] [--steps 3] [--repeats 4] [--courant 1 10 100 1000]
Under ``mpiexec -n R`` the solves are distributed.  Prints a table and writes benchmarks/results/bench_thickness.{csv,json}
(with the load average before and after).
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
COLUMNS = ("cell_size", "dofs", "ranks", "courant_factor", "dt", "courant", "candidate", "wall", "cpu", "iterations",
           "difference_to_mumps", "error")


def candidates() -> dict[str, dict]:
    """MUMPS, the default (``gmres-ilu``) and variants: BiCGStab, looser tolerances, additive Schwarz."""
    from icesheet.solver_options import DIRECT_SOLVER, ITERATIVE_THICKNESS_SOLVER

    default = ITERATIVE_THICKNESS_SOLVER
    return {"mumps": dict(DIRECT_SOLVER),
            "gmres-ilu (default)": dict(default),
            "gmres-ilu rtol 1e-10": {**default, "ksp_rtol": 1e-10},
            "gmres-ilu rtol 1e-8": {**default, "ksp_rtol": 1e-8},
            "bcgs-ilu": {**default, "ksp_type": "bcgs"},
            "gmres-asm(1)-ilu": {**default, "pc_type": "asm", "pc_asm_overlap": 1}}


def measure(cell_size: float, steps: int, repeats: int, courant: list[float]) -> list[dict]:
    import numpy as np
    from mpi4py import MPI

    from icesheet.scenarios import build_model, scenario_parameters

    model = build_model("marine_ice_stream",
                        scenario_parameters("marine_ice_stream", overrides={"mesh.cell_size": cell_size}))
    comm = model.mesh.comm
    dt = cell_size / 1000.0
    model.run(steps, dt, progress=False, stable=False)
    model.solve_velocity()
    start = model.thickness.dat.data_ro.copy()
    speed = comm.allreduce(float(np.sqrt(np.sum(model.velocity.dat.data_ro**2, axis=1)).max()), op=MPI.MAX)
    solvers = {name: model.thickness_solver_for(linear_solver=parameters) for name, parameters in candidates().items()}
    rows = []
    for factor in courant:
        times = {name: [] for name in solvers}
        results, errors = {}, {}
        for _ in range(repeats):
            for name, solver in solvers.items():
                if name in errors:
                    continue
                model.thickness.dat.data_wo[...] = start
                comm.barrier()
                wall, cpu = time.perf_counter(), time.process_time()
                fallbacks = solver.fallbacks
                solver.solve(dt * factor)
                if solver.fallbacks > fallbacks:  # this Krylov solve failed (logged) and MUMPS repeated it
                    errors[name] = "fell back to MUMPS"
                    continue
                times[name].append((comm.allreduce(time.perf_counter() - wall, op=MPI.MAX),
                                    comm.allreduce(time.process_time() - cpu, op=MPI.MAX)))
                results[name] = (model.thickness.dat.data_ro.copy(), solver.iterations)
        reference = results["mumps"][0]
        norm = np.sqrt(comm.allreduce(float(np.sum(reference**2))))
        for name in solvers:
            row = {"cell_size": cell_size, "dofs": model.thickness_space.dim(), "ranks": comm.size,
                   "courant_factor": factor, "dt": dt * factor, "courant": speed * dt * factor / cell_size,
                   "candidate": name}
            if name in errors:
                rows.append({**row, "error": errors[name]})
                continue
            values, iterations = results[name]
            timed = times[name][1:] or times[name]
            rows.append({**row, "wall": min(t[0] for t in timed), "cpu": min(t[1] for t in timed),
                         "iterations": iterations,
                         "difference_to_mumps": np.sqrt(comm.allreduce(float(np.sum((values - reference)**2))))
                         / norm})
    model.thickness.dat.data_wo[...] = start
    return rows


def print_table(rows: list[dict]) -> None:
    header = (f"{'cell (m)':>8} {'ranks':>5} {'dt x':>5} {'Courant':>7} {'candidate':<22} {'wall s':>8} {'cpu s':>8} {'its':>4} "
              f"{'diff to MUMPS':>13}")
    print(header)
    print("-" * len(header))
    for r in rows:
        if r.get("error"):
            print(f"{r['cell_size']:>8.0f} {r['ranks']:>5} {r['courant_factor']:>5g} {r['courant']:>7.1f} "
                  f"{r['candidate']:<22} failed: "
                  f"{r['error']}")
            continue
        print(f"{r['cell_size']:>8.0f} {r['ranks']:>5} {r['courant_factor']:>5g} {r['courant']:>7.1f} "
              f"{r['candidate']:<22} {r['wall']:>8.4f} "
              f"{r['cpu']:>8.4f} {r['iterations']:>4} {r['difference_to_mumps']:>13.1e}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cell-sizes", type=float, nargs="+", default=[2000.0, 1000.0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--courant", type=float, nargs="+", default=[1.0, 10.0, 100.0, 1000.0],
                        help="factors of dt = cell size / 1 km years (default 1 10 100 1000)")
    args = parser.parse_args(argv)
    from icesheet.cli import import_firedrake

    import_firedrake()
    from mpi4py import MPI

    load_before = os.getloadavg()
    rows = [row for size in args.cell_sizes for row in measure(size, args.steps, args.repeats, args.courant)]
    if MPI.COMM_WORLD.rank != 0:
        return
    print_table(rows)
    print(f"load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after ({os.cpu_count()} CPUs)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "bench_thickness" if MPI.COMM_WORLD.size == 1 else f"bench_thickness_{MPI.COMM_WORLD.size}ranks"
    with open(RESULTS / f"{name}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    with open(RESULTS / f"{name}.json", "w") as f:
        json.dump({"rows": rows, "load_average_before": load_before, "load_average_after": os.getloadavg(),
                   "cpus": os.cpu_count(), "steps": args.steps, "repeats": args.repeats}, f, indent=2)
    print(f"written {RESULTS / name}.csv and .json")


if __name__ == "__main__":
    main()
