"""Velocity-solve strategies side by side on warm-started states of the marine ice stream, against a Newton solve
configured as icepack configures it.

States: the ``marine_ice_stream`` scenario at each ``--cell-sizes`` (default 4, 2, 1 km) run for ``--steps`` steps
(default 3) of ``dt = cell size / 1 km`` years (the scenario's 10 years is unstable at 2 km and finer) with the
default strategy: state n = (thickness h_n, velocity u_{n-1} of the previous step); then one more step of the tight
reference: state n + 1 = (h_{n+1}, u_n).  Every timed solve is the velocity solve at state n + 1, the warm-started
solve a time loop makes at every step.  By default (*sequence* mode) each candidate first solves at state n,
untimed, and the thickness h_{n+1} is written, so that the timed solve starts from the velocity the candidate
converged to and with the factorisation its solve at state n left (``keep_factorisation``: a time loop's step, not
the same state twice); ``--restart`` times every solve from the stored state n + 1 instead, as a solve after a
restored checkpoint (the kept factorisation then not used).

Candidates, each its own VelocitySolver on the model's fields (icesheet.velocity_solver, docs/solvers.md; the
default, ``picard-chord`` on any rank count, is labelled ``(default)``): every strategy
with the default linear solver (CG preconditioned by a Cholesky factorisation that Newton builds at the first
Jacobian of a solve or keeps from the previous one, and rebuilds after a slow CG solve; the chord iteration solves
with that factorisation directly), the seed's Picard loop and Newton with MUMPS LU, variants (the factorisation not
kept from one solve to the next, chord rebuild threshold and Anderson depth (``inexact``: those of the chord with
additive Schwarz on several ranks), Newton's rebuild threshold and forcing
floor, switch threshold, line search, a direct Cholesky solve of every Jacobian, the factorisation rebuilt every 3
Jacobians, the chord with MUMPS's distributed Cholesky on several ranks) and other Krylov solvers (CG + GAMG, GMRES +
ILU / ASM), plus ``snes-icepack``: one PETSc SNES solve of the same residual F(u) = 0
configured as icepack's flow solver by default (icepack/solvers/flow_solver.py, icepack/utilities.py: ``newtonls``,
``nleqerr`` line search, GMRES + LU by MUMPS; PETSc's default tolerances rtol 1e-8, stol 1e-8).  The tight reference
is the Picard loop finished by Newton to a relative residual of 1e-12.

Each candidate first solves once untimed (kernels compiled, PETSc objects and symbolic factorisations set up, as in a
time loop after its first step; its symbolic factorisations are counted, to show that the counter sees them); then
``--repeats`` rounds, in each of which every candidate makes its timed solve once (interleaved: the
machine is shared and its load changes), give the wall time and the CPU time of this process per solve (the minimum;
the medians are kept in the JSON; on a busy machine the CPU time is the steadier measure), the linear solves (Picard + Newton iterations), Krylov iterations, symbolic and
numeric factorisations (LU, Cholesky and ILU; PETSc log events) per solve (chord steps count as linear solves and
are also given apart), the final relative residual ||F(u)|| /
||tau_d|| and the relative l2 distance of the velocity to the tight reference. ``ratio_to_snes`` = wall per solve /
that of ``snes-icepack`` on the same state in the same run, ``cpu_ratio_to_snes`` the same for CPU time.

Usage:  python benchmarks/bench_velocity.py [--cell-sizes 4000 2000 1000] [--steps 3] [--repeats 3] [--quick]
                                           [--candidates NAME ...] [--restart] [--append]
Prints a table, writes benchmarks/results/bench_velocity.{csv,json} and docs/figures/solver_strategies.png;
``--append`` keeps the saved rows of other cell sizes (e.g. 1 km run with fewer candidates, separately).
Under ``mpiexec -n R`` every solve is distributed over R ranks: times are the slowest rank's (wall and CPU; Open MPI's
busy waiting counts as CPU time), factorisations are counted on rank 0 (one per rank for the subdomain
preconditioners), the figure shows the one-rank rows only, and ``--append`` keeps the rows of other rank counts.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.petsc_events import (NUMERIC_FACTORISATION_EVENTS, SYMBOLIC_FACTORISATION_EVENTS,  # noqa: E402
                                     event_count)
RESULTS = ROOT / "benchmarks" / "results"
FIGURE = ROOT / "docs" / "figures" / "solver_strategies.png"
#: name -> PicardOptions keywords over the defaults (None: the PETSc SNES solve configured as icepack's); the
#: candidate that is the resolved default strategy alone (``PicardOptions().resolved_strategy``: "picard-chord" with
#: the default preconditioner on any rank count) is marked in the ``default`` column.  The ``inexact`` variants set
#: options of the chord with a Schwarz operator only (the defaults, rebuild 1 and depth 10, are ``picard-chord``'s):
#: on one rank, where the chord operator is exact, they would repeat ``picard-chord`` and are not run
#: (:data:`INEXACT_ONLY`)
CANDIDATES = {
    "picard mumps (seed)": {"strategy": "picard", "linear_solver": "mumps"},
    "picard": {"strategy": "picard"},
    "anderson": {"strategy": "anderson"},
    "picard-newton": {"strategy": "picard-newton"},
    "picard-newton not kept": {"strategy": "picard-newton", "keep_factorisation": False},
    "picard-newton rebuild 12": {"strategy": "picard-newton", "rebuild_iterations": 12},
    "picard-newton no forcing floor": {"strategy": "picard-newton", "forcing_floor": False},
    "picard-chord": {"strategy": "picard-chord"},
    "picard-chord not kept": {"strategy": "picard-chord", "keep_factorisation": False},
    "picard-chord cg+cholesky": {"strategy": "picard-chord", "preconditioner": "cholesky"},
    "picard-chord rebuild 0.5": {"strategy": "picard-chord", "chord_rebuild": 0.5},
    "picard-chord rebuild 0.7": {"strategy": "picard-chord", "chord_rebuild": 0.7},
    "picard-chord rebuild 0.8": {"strategy": "picard-chord", "chord_rebuild": 0.8},
    "picard-chord depth 10": {"strategy": "picard-chord", "chord_depth": 10},
    "picard-chord inexact rebuild 0.9": {"strategy": "picard-chord", "chord_rebuild_inexact": 0.9},
    "picard-chord inexact rebuild 0.95": {"strategy": "picard-chord", "chord_rebuild_inexact": 0.95},
    "picard-chord inexact depth 5": {"strategy": "picard-chord", "chord_depth_inexact": 5},
    "picard-chord inexact depth 20": {"strategy": "picard-chord", "chord_depth_inexact": 20},
    "picard-chord cg+bjacobi-cholesky": {"strategy": "picard-chord", "preconditioner": "bjacobi-cholesky"},
    "picard-newton switch 1e-2": {"strategy": "picard-newton", "newton_switch": 1e-2},
    "picard-newton l2": {"strategy": "picard-newton", "line_search": "l2"},
    "anderson-newton": {"strategy": "anderson-newton"},
    "newton": {"strategy": "newton"},
    "newton mumps": {"strategy": "newton", "linear_solver": "mumps"},
    "picard-newton direct cholesky": {"strategy": "picard-newton", "linear_solver": "cholesky"},
    "picard-newton lag 3": {"strategy": "picard-newton", "preconditioner_lag": 3},
    "picard-newton cg+cholesky": {"strategy": "picard-newton", "preconditioner": "cholesky"},
    "picard-newton cg+asm-cholesky": {"strategy": "picard-newton", "preconditioner": "asm-cholesky"},
    "picard-newton cg+gamg": {"strategy": "picard-newton", "linear_solver": "cg", "preconditioner": "gamg"},
    "picard-newton gmres+ilu": {"strategy": "picard-newton", "linear_solver": "gmres", "preconditioner": "ilu"},
    "picard-newton gmres+asm": {"strategy": "picard-newton", "linear_solver": "gmres", "preconditioner": "asm"},
    "picard-newton cg+bjacobi-cholesky": {"strategy": "picard-newton", "preconditioner": "bjacobi-cholesky"},
    "snes-icepack": None,
}
INEXACT_ONLY = ("chord_rebuild_inexact", "chord_depth_inexact")
ICEPACK_SNES = {"snes_type": "newtonls", "snes_linesearch_type": "nleqerr", "ksp_type": "gmres", "pc_type": "lu",
                "pc_factor_mat_solver_type": "mumps"}
REFERENCE = {"strategy": "picard", "newton_finish": True, "newton_tolerance": 1e-12, "newton_max_iterations": 50}
COLUMNS = ("cell_size", "ranks", "dofs", "mode", "candidate", "default", "wall_per_solve", "ratio_to_snes",
           "cpu_per_solve", "cpu_ratio_to_snes", "linear_solves", "picard", "newton", "chord", "krylov",
           "symbolic_factorisations", "numeric_factorisations", "symbolic_first_solve", "final_residual",
           "difference_to_reference", "fallback", "load", "error")
EVENTS = {"symbolic_factorisations": SYMBOLIC_FACTORISATION_EVENTS,
          "numeric_factorisations": NUMERIC_FACTORISATION_EVENTS}


@dataclass
class States:
    """Copies of the state arrays (thickness, velocity) of two consecutive steps: ``previous`` = state n =
    (h_n, u_{n-1}) and ``current`` = state n + 1 = (h_{n+1}, u_n), u_n the tight reference's velocity at state n."""

    previous: tuple
    current: tuple


def make_states(cell_size: float, steps: int, reference_solver_for):
    """The model after ``steps`` steps of ``cell_size / 1000`` years (state n), the state n + 1 after one more step
    of the tight reference (``reference_solver_for(model)``) from there, and that reference solver."""
    from icesheet.scenarios import build_model, scenario_parameters

    parameters = scenario_parameters("marine_ice_stream", overrides={"mesh.cell_size": cell_size})
    model = build_model("marine_ice_stream", parameters)
    dt = cell_size / 1000.0
    for _ in range(steps):
        model.step(dt)
    # The state after a step holds u_{n-1}, the converged velocity at the previous thickness: the warm start.
    previous = model.state_arrays()
    reference_solver = reference_solver_for(model)
    reference_solver.solve()
    model.thickness_solver.solve(dt)
    return model, States(previous, model.state_arrays()), dt, reference_solver


def velocity_solver(model, **options):
    from icesheet.velocity_solver import PicardOptions, VelocitySolver

    return VelocitySolver.for_model(model, PicardOptions(**options))


class IcepackNewton:
    """One SNES solve of the model's residual with icepack's default options; ``solve()`` mimics VelocitySolver's."""

    def __init__(self, model, reference_solver):
        import firedrake

        problem = firedrake.NonlinearVariationalProblem(reference_solver._residual_form, model.velocity,
                                                        reference_solver.bcs)
        self.solver = firedrake.NonlinearVariationalSolver(problem, solver_parameters=ICEPACK_SNES)

    def solve(self):
        from icesheet.velocity_solver import VelocitySolveInfo

        self.solver.solve()
        snes = self.solver.snes
        return VelocitySolveInfo(strategy="snes-icepack", newton_iterations=snes.getIterationNumber(),
                                 krylov_iterations=snes.getLinearSolveIterations())


def timed_solve(model, states, solver, reference, reference_solver, sequence: bool) -> dict:
    """One solve at the state n + 1 of ``states`` (a States): wall time, counts and accuracy.  With ``sequence``
    the solver first solves (untimed) at state n and the thickness h_{n+1} is then written, so that the timed solve
    starts from the velocity it converged to at state n and with what it kept from there (a time loop's step);
    otherwise it starts from the stored state n + 1 (the velocity of the reference at state n).  The residual is
    measured by ``reference_solver`` (the same residual and scale for every candidate)."""
    import numpy as np

    if sequence:
        model.set_state_arrays(states.previous)
        solver.solve()
        model.set_state_arrays((states.current[0], model.velocity.dat.data_ro.copy()))
    else:
        model.set_state_arrays(states.current)
    before = {key: event_count(names) for key, names in EVENTS.items()}
    start, cpu_start = time.perf_counter(), time.process_time()
    info = solver.solve()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    comm = model.mesh.comm
    u = model.velocity.dat.data_ro
    difference, size = (np.sqrt(comm.allreduce(float(np.sum(a * a)))) for a in (u - reference, reference))
    return {"wall": comm.allreduce(wall, op=_mpi_max()), "cpu": comm.allreduce(cpu, op=_mpi_max()),
            "cpu_ranks": comm.allgather(cpu), "linear_solves": info.linear_solves, "picard": info.picard_iterations,
            "newton": info.newton_iterations, "chord": info.chord_iterations, "krylov": info.krylov_iterations,
            "fallback": info.fallback,
            **{key: event_count(names) - before[key] for key, names in EVENTS.items()},
            "final_residual": reference_solver.relative_residual(),
            "difference_to_reference": float(difference / size)}


def _mpi_max():
    from mpi4py import MPI

    return MPI.MAX


def run_size(cell_size: float, steps: int, repeats: int, candidates: list[str], sequence: bool) -> list[dict]:
    """Every candidate on the state at ``cell_size``: a warm-up solve each, then ``repeats`` rounds in which every
    candidate solves once (interleaved, so that a change of the machine's load hits all candidates alike);
    ``sequence``: each timed solve after an untimed one at the previous step's state (:func:`timed_solve`)."""
    from icesheet.solver_options import PicardOptions

    model, states, dt, reference_solver = make_states(cell_size, steps, lambda m: velocity_solver(m, **REFERENCE))
    dofs = model.velocity_space.dim()
    ranks = model.mesh.comm.size
    default = {"strategy": PicardOptions().resolved_strategy("fixed-point", ranks)}
    model.set_state_arrays(states.current)
    reference_info = reference_solver.solve()
    reference = model.velocity.dat.data_ro.copy()
    print(f"# {cell_size:.0f} m, {dofs} velocity dofs, dt {dt:g} yr: reference {reference_info.picard_iterations} "
          f"Picard + {reference_info.newton_iterations} Newton, residual {reference_info.final_residual:.1e}",
          flush=True)
    rows, solvers, walls, cpus = {}, {}, {}, {}
    if ranks == 1:  # the options of the chord with a Schwarz operator play no part on one rank (CANDIDATES)
        candidates = [n for n in candidates if not set(CANDIDATES[n] or {}) & set(INEXACT_ONLY)]
    for name in candidates:
        options = CANDIDATES[name]
        rows[name] = {"cell_size": cell_size, "ranks": ranks, "dofs": dofs, "candidate": name, "dt": dt,
                      "default": options == default, "mode": "sequence" if sequence else "restart"}
        try:
            solvers[name] = (IcepackNewton(model, reference_solver) if options is None
                             else velocity_solver(model, **options))
            warm_up = timed_solve(model, states, solvers[name], reference, reference_solver, sequence)
            rows[name]["symbolic_first_solve"] = warm_up["symbolic_factorisations"]
            walls[name], cpus[name] = [], []
        except Exception as error:  # a candidate that fails is reported, not fatal
            rows[name]["error"] = f"{type(error).__name__}: {str(error).splitlines()[0]}"
    for _ in range(repeats):
        for name in walls:
            result = timed_solve(model, states, solvers[name], reference, reference_solver, sequence)
            walls[name].append(result.pop("wall"))
            cpus[name].append(result.pop("cpu"))
            rows[name].update(result, load=os.getloadavg()[0])
    for name, times in walls.items():
        rows[name].update(wall_per_solve=min(times), wall_median=statistics.median(times),
                          cpu_per_solve=min(cpus[name]), cpu_median=statistics.median(cpus[name]))
    snes = rows.get("snes-icepack", {})
    for row in rows.values():
        if "wall_per_solve" in snes and "error" not in row:
            row["ratio_to_snes"] = row["wall_per_solve"] / snes["wall_per_solve"]
            row["cpu_ratio_to_snes"] = row["cpu_per_solve"] / snes["cpu_per_solve"]
        print_row(row)
    return list(rows.values())


def print_row(r: dict) -> None:
    if "error" in r:
        print(f"{r['cell_size']:>7.0f} {r['ranks']}r {r['candidate']:<34} failed: {r['error']}", flush=True)
        return
    name = r["candidate"] + (" (default)" if r.get("default") else "")
    print(f"{r['cell_size']:>7.0f} {r['ranks']}r {name:<34} {r['wall_per_solve']:>8.3f} s "
          f"(cpu {r['cpu_per_solve']:.3f} s, "
          f"ratio {r.get('cpu_ratio_to_snes', float('nan')):.2f}) {r['linear_solves']:>4} solves "
          f"({r['picard']} Picard + {r['newton']} Newton + {r.get('chord', 0)} chord, {r['krylov']} Krylov) factorisations sym/num "
          f"{r['symbolic_factorisations']}/{r['numeric_factorisations']}  "
          f"wall ratio {r.get('ratio_to_snes', float('nan')):.2f}  residual {r['final_residual']:.1e}  "
          f"diff {r['difference_to_reference']:.1e}{'  FALLBACK' if r['fallback'] else ''}", flush=True)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [r for r in rows if r.get("ranks", 1) == 1]
    if not rows:
        return  # a run on several ranks alone: the figure keeps the one-rank rows of an earlier run
    sizes = sorted({r["cell_size"] for r in rows}, reverse=True)
    names = [n for n in CANDIDATES if any(r["candidate"] == n and "error" not in r for r in rows)]
    fig, (ax_time, ax_solves) = plt.subplots(1, 2, figsize=(13, 4.8))
    width = 0.8 / len(sizes)
    for k, size in enumerate(sizes):
        found = {r["candidate"]: r for r in rows if r["cell_size"] == size and "error" not in r}
        x = np.arange(len(names)) + (k - (len(sizes) - 1) / 2) * width
        ax_time.bar(x, [found[n].get("cpu_ratio_to_snes", np.nan) if n in found else np.nan for n in names], width,
                    label=f"{size / 1000:g} km")
        ax_solves.bar(x, [found[n]["linear_solves"] if n in found else np.nan for n in names], width)
    for ax, label in ((ax_time, "CPU time per solve / SNES Newton (icepack)"),
                      (ax_solves, "linear solves per solve")):
        ax.set_xticks(np.arange(len(names)))
        ax.set_xticklabels(names, rotation=40, ha="right", fontsize=8)
        ax.set_ylabel(label)
    ax_time.set_yscale("log")
    ax_time.axhline(1.0, color="k", lw=0.8)
    ax_time.axhline(0.4, color="k", lw=0.8, ls="--")  # the goal of issue 9
    ax_solves.axhline(6, color="k", lw=0.8, ls="--")
    ax_time.legend(title="cell size")
    fig.suptitle("Velocity solve strategies on the marine ice stream (warm start after a few steps)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cell-sizes", type=float, nargs="+", default=[4000.0, 2000.0, 1000.0])
    parser.add_argument("--steps", type=int, default=3, help="steps before the measured state (default 3)")
    parser.add_argument("--repeats", type=int, default=3, help="timed solves per candidate (default 3)")
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--quick", action="store_true", help="10 and 5 km cells, 1 repeat")
    parser.add_argument("--restart", action="store_true",
                        help="time every solve from the stored state n + 1, not after a solve at state n")
    parser.add_argument("--append", action="store_true",
                        help="keep the saved rows of the cell sizes not run now (one table from several runs)")
    args = parser.parse_args(argv)
    if args.quick:
        args.cell_sizes, args.repeats = [10000.0, 5000.0], 1
    for name in ("steps", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} = {getattr(args, name)}: must be >= 1")
    if any(size <= 0 for size in args.cell_sizes):
        parser.error(f"--cell-sizes = {args.cell_sizes}: every cell size must be > 0 (metres)")
    os.environ.setdefault("PETSC_OPTIONS", "-options_left no")  # PETSc would list our argv as unused options
    from firedrake.petsc import PETSc

    PETSc.Log.begin()
    if PETSc.COMM_WORLD.rank != 0:
        sys.stdout = open(os.devnull, "w")
    load_before = os.getloadavg()
    rows = []
    for size in args.cell_sizes:
        rows += run_size(size, args.steps, args.repeats, args.candidates, sequence=not args.restart)
    load_after = os.getloadavg()
    if PETSc.COMM_WORLD.rank != 0:  # rank 0 alone reads and writes the saved table
        return
    runs = [{"ranks": PETSc.COMM_WORLD.size, "cell_sizes": args.cell_sizes, "candidates": args.candidates,
             "mode": "restart" if args.restart else "sequence",
             "load_average_before": load_before, "load_average_after": load_after, "repeats": args.repeats,
             "steps": args.steps}]
    if args.append and (RESULTS / "bench_velocity.json").is_file():
        saved = json.loads((RESULTS / "bench_velocity.json").read_text())
        ranks, mode = PETSc.COMM_WORLD.size, runs[0]["mode"]
        # A row is replaced by this run's row of the same (cell size, ranks, mode); rows of older tables without a
        # mode were sequence runs.
        rows = [r for r in saved["rows"] if r["cell_size"] not in args.cell_sizes or r.get("ranks", 1) != ranks
                or r.get("mode", "sequence") != mode] + rows
        runs = saved.get("runs", []) + runs
        rows.sort(key=lambda r: (r.get("ranks", 1), r.get("mode", "sequence"), -r["cell_size"]))
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} CPUs, shared "
          "machine: ratios from one run are comparable, absolute times move with the load)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "bench_velocity.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    with open(RESULTS / "bench_velocity.json", "w") as f:
        json.dump({"columns": COLUMNS, "rows": rows, "cpus": os.cpu_count(), "runs": runs}, f, indent=2)
    plot(rows, FIGURE)
    print(f"written {RESULTS / 'bench_velocity.csv'}, {RESULTS / 'bench_velocity.json'} and {FIGURE}")


if __name__ == "__main__":
    main()
