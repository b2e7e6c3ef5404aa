"""Forward cost per time step against mesh size, for the shallow-stream model (scenario ``marine_ice_stream``) and
the shallow-ice model (scenario ``halfar_dome``), on 1 and 2 MPI ranks.

For each scenario and cell size the worker builds the model (default solver options of the scenario: for the
shallow-stream model the default velocity strategy, docs/solvers.md), takes ``--warmup`` steps (kernel compilation,
first velocity solve from the scenario's rough initial guess) and then times ``--steps`` steps (wall time, and the CPU
time of the busiest rank, about what the wall time would be if each rank had a core to itself: on a shared machine
the two differ by the load; Open MPI's busy waiting counts as CPU time on 2 ranks).  Time steps: the scenario's
``dt``, but at most ``cell size / 1 km`` years for the shallow-stream model (its 10 years is unstable at 2 km cells
and finer).  Per step it reports the wall time, the Picard and Newton iterations (one linear solve each), and the
split of the time given by PETSc's log events (the slowest rank, MPI max): ``assembly`` = ParLoopExecute (every
Firedrake kernel loop: residuals, Jacobians, interpolations, norms), ``linear`` = KSPSolve + PCSetUp (factorisations and triangular solves), ``other`` = the rest (Python,
UFL/form-cache look-ups, vector operations, the reduced-space bookkeeping of the SIA variational inequality).

Usage:  python benchmarks/bench_forward.py [--ranks 1 2] [--steps 3] [--quick | --cell-sizes M ...]
                                          [--scenarios NAME ...] [--append] [--set KEY=VALUE ...]
``--set`` changes a scenario parameter for every case (``--set 'solver.strategy="picard-chord"'``; rows are labelled
by their ``variant``, ``default`` without; the thickness update's MUMPS against the default GMRES + ILU(0):
``--set 'solver.thickness_linear_solver="mumps"' --append``, docs/solvers.md); the factorisations per step are PETSc's
numeric LU and Cholesky factorisations on rank 0 (the thickness solve's included: its ILU(0) counts as one, PETSc
logs it as a numeric LU factorisation).
The driver runs one worker per rank count under ``mpiexec -n R`` (a subprocess; each worker prints one JSON line per
case; a case whose solve fails is reported with its error and the others still run), prints a table and writes
benchmarks/results/bench_forward.{csv,json}.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.petsc_events import NUMERIC_FACTORISATION_EVENTS, event_count  # noqa: E402
RESULTS = ROOT / "benchmarks" / "results"
#: scenario -> target cell sizes (m); the shallow-stream domain is 640 km x 80 km, the SIA one 900 km x 900 km.
CELL_SIZES = {"marine_ice_stream": (4000.0, 2000.0, 1000.0), "halfar_dome": (50000.0, 25000.0, 12500.0)}
QUICK_CELL_SIZES = {"marine_ice_stream": (16000.0, 8000.0), "halfar_dome": (50000.0, 25000.0)}
ASSEMBLY_EVENTS = ("ParLoopExecute",)
LINEAR_EVENTS = ("KSPSolve", "PCSetUp")
COLUMNS = ("scenario", "variant", "ranks", "cell_size", "dofs", "steps", "dt", "wall_per_step", "cpu_per_step",
           "picard_per_step", "newton_per_step", "chord_per_step", "factorisations_per_step", "assembly_per_step",
           "linear_per_step", "other_per_step", "assembly_fraction", "linear_fraction")


def _event_times(names, comm) -> float:
    """Sum of the PETSc log times of ``names`` on this rank, MPI max over ranks."""
    from firedrake.petsc import PETSc

    local = sum(PETSc.Log.Event(name).getPerfInfo()["time"] for name in names)
    return comm.allreduce(local, op=_mpi_max())


def variant_name(overrides: dict) -> str:
    """``"default"``, or the overrides as ``key=value`` pairs."""
    return " ".join(f"{key}={value}" for key, value in overrides.items()) or "default"


def parse_override(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with a TOML value (``solver.strategy="picard-chord"``, ``solver.keep_factorisation=false``)."""
    import tomllib

    key, _, value = text.partition("=")
    try:
        return key.strip(), tomllib.loads(f"value = {value}")["value"]
    except tomllib.TOMLDecodeError:
        return key.strip(), value.strip()  # a bare word: a string


def override_argument(text: str) -> str:
    """``--set``'s argument, checked: ``KEY=VALUE`` (parsed by :func:`parse_override` in the workers)."""
    key, equals, _ = text.partition("=")
    if not equals or not key.strip():
        raise argparse.ArgumentTypeError(f"--set {text}: expected KEY=VALUE")
    return text


def _mpi_max():
    from mpi4py import MPI

    return MPI.MAX


def measure(scenario: str, cell_size: float, steps: int, warmup: int, overrides: dict) -> dict:
    """Time ``steps`` steps of the scenario's model at ``cell_size`` after ``warmup`` steps, with the scenario
    parameters ``overrides`` (e.g. ``{"solver.strategy": "picard-chord"}``); one result row."""
    from icesheet.scenarios import build_model, scenario_parameters

    parameters = scenario_parameters(scenario, overrides={"mesh.cell_size": cell_size, **overrides})
    dt = parameters["time"]["dt"]
    if scenario == "marine_ice_stream":
        dt = min(dt, cell_size / 1000.0)
    model = build_model(scenario, parameters)
    comm = model.mesh.comm
    dofs = model.thickness_space.dim() + (model.velocity_space.dim() if scenario != "halfar_dome" else 0)
    for _ in range(warmup):
        model.step(dt)
    assembly0, linear0 = _event_times(ASSEMBLY_EVENTS, comm), _event_times(LINEAR_EVENTS, comm)
    factorisations0 = event_count(NUMERIC_FACTORISATION_EVENTS)  # rank 0's, the thickness solve's included
    comm.barrier()
    start, cpu_start = time.perf_counter(), time.process_time()
    infos = [model.step(dt) for _ in range(steps)]
    wall = comm.allreduce(time.perf_counter() - start, op=_mpi_max())
    cpu = comm.allreduce(time.process_time() - cpu_start, op=_mpi_max())
    assembly = _event_times(ASSEMBLY_EVENTS, comm) - assembly0
    linear = _event_times(LINEAR_EVENTS, comm) - linear0
    factorisations = event_count(NUMERIC_FACTORISATION_EVENTS) - factorisations0
    return {"scenario": scenario, "variant": variant_name(overrides), "ranks": comm.size, "cell_size": cell_size,
            "dofs": dofs, "steps": steps, "dt": dt,
            "factorisations_per_step": factorisations / steps,
            "wall_per_step": wall / steps, "cpu_per_step": cpu / steps,
            "picard_per_step": sum(i.picard_iterations for i in infos) / steps,
            "newton_per_step": sum(i.newton_iterations for i in infos) / steps,
            "chord_per_step": sum(i.chord_iterations for i in infos) / steps,
            "assembly_per_step": assembly / steps, "linear_per_step": linear / steps,
            "other_per_step": (wall - assembly - linear) / steps,
            "assembly_fraction": assembly / wall, "linear_fraction": linear / wall}


def worker(args) -> None:
    from firedrake.petsc import PETSc

    PETSc.Log.begin()
    sizes = QUICK_CELL_SIZES if args.quick else CELL_SIZES
    if args.cell_sizes:
        sizes = {scenario: tuple(args.cell_sizes) for scenario in args.scenarios}
    overrides = dict(parse_override(text) for text in args.set)
    for scenario in args.scenarios:
        for cell_size in sizes[scenario]:
            try:
                row = measure(scenario, cell_size, args.steps, args.warmup, overrides)
            except Exception as error:  # a case that fails (e.g. a diverged solve) is reported, not fatal
                row = {"scenario": scenario, "variant": variant_name(overrides), "ranks": PETSc.COMM_WORLD.size,
                       "cell_size": cell_size,
                       "error": f"{type(error).__name__}: {str(error).splitlines()[0]}"}
            if PETSc.COMM_WORLD.rank == 0:
                print(json.dumps(row), flush=True)


def run_workers(args) -> list[dict]:
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        sys.exit("bench_forward: mpiexec not found (Debian's openmpi-bin; scripts/install.sh installs it)")
    rows = []
    for ranks in args.ranks:
        command = [mpiexec, "-n", str(ranks), sys.executable, str(Path(__file__).resolve()), "--worker",
                   "--steps", str(args.steps), "--warmup", str(args.warmup), "--scenarios", *args.scenarios,
                   *(f"--set={text}" for text in args.set)]
        if args.quick:
            command.append("--quick")
        if args.cell_sizes:
            command += ["--cell-sizes", *map(str, args.cell_sizes)]
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
        proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
        if proc.returncode != 0:
            sys.exit(f"bench_forward: worker on {ranks} rank(s) failed ({proc.returncode}):\n"
                     f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        rows += [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return rows


def print_table(rows: list[dict]) -> None:
    header = (f"{'scenario':<18} {'ranks':>5} {'cell (m)':>9} {'dofs':>7} {'s/step':>8} {'cpu s':>7} {'picard':>7} "
              f"{'newton':>7} {'chord':>7} {'fact.':>6} "
              f"{'assembly':>9} {'linear':>8} {'other':>8} {'asm %':>6} {'lin %':>6}")
    print(header)
    print("-" * len(header))
    for r in rows:
        if "error" in r:
            print(f"{r['scenario']:<18} {r['ranks']:>5} {r['cell_size']:>9.0f} failed: {r['error']}  "
                  f"[{r.get('variant', 'default')}]")
            continue
        print(f"{r['scenario']:<18} {r['ranks']:>5} {r['cell_size']:>9.0f} {r['dofs']:>7} {r['wall_per_step']:>8.3f} "
              f"{r['cpu_per_step']:>7.3f} "
              f"{r['picard_per_step']:>7.1f} {r['newton_per_step']:>7.1f} {r.get('chord_per_step', 0):>7.1f} "
              f"{r.get('factorisations_per_step', float('nan')):>6.1f} "
              f"{r['assembly_per_step']:>9.3f} "
              f"{r['linear_per_step']:>8.3f} {r['other_per_step']:>8.3f} {100 * r['assembly_fraction']:>6.1f} "
              f"{100 * r['linear_fraction']:>6.1f}  [{r.get('variant', 'default')}]")


def scaling_exponents(rows: list[dict]) -> list[dict]:
    """Least-squares slopes of log(seconds per step) against log(dofs), per scenario and rank count."""
    import numpy as np

    groups = {}
    for r in rows:
        if "error" not in r:
            groups.setdefault((r["scenario"], r.get("variant", "default"), r["ranks"]), []).append(r)
    exponents = []
    for (scenario, variant, ranks), group in groups.items():
        if len(group) > 1:
            log_dofs = np.log([r["dofs"] for r in group])
            exponents.append({"scenario": scenario, "variant": variant, "ranks": ranks, **{
                part: float(np.polyfit(log_dofs, np.log([max(r[f"{part}_per_step"], 1e-9) for r in group]), 1)[0])
                for part in ("wall", "assembly", "linear")}})
    return exponents


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2], help="MPI rank counts (default 1 2)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per case (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before (default 1)")
    parser.add_argument("--scenarios", nargs="+", default=list(CELL_SIZES), choices=list(CELL_SIZES))
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--quick", action="store_true", help="the two coarsest sizes only")
    sizes.add_argument("--cell-sizes", type=float, nargs="+", metavar="M",
                       help="these cell sizes (m) instead of the scenario's (e.g. --cell-sizes 4000 2000)")
    parser.add_argument("--append", action="store_true",
                        help="keep the saved rows of the (scenario, variant, ranks, cell size) cases not run now (one "
                             "table from several runs)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", type=override_argument,
                        help="a scenario parameter for every case, e.g. solver.strategy=\"picard-chord\" (repeatable; "
                             "the rows are labelled with them)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("steps", "warmup"):
        if getattr(args, name) < (1 if name == "steps" else 0):
            parser.error(f"--{name} = {getattr(args, name)}: must be >= {1 if name == 'steps' else 0}")
    if any(r < 1 for r in args.ranks):
        parser.error(f"--ranks = {args.ranks}: every rank count must be >= 1")
    if args.worker:
        worker(args)
        return
    load_before = os.getloadavg()
    rows = run_workers(args)
    print_table(rows)
    if args.append and (RESULTS / "bench_forward.json").is_file():
        def case(r):
            return r["scenario"], r.get("variant", "default"), r["ranks"], float(r["cell_size"])

        ran = {case(r) for r in rows}
        saved = json.loads((RESULTS / "bench_forward.json").read_text())["rows"]
        rows = [r for r in saved if case(r) not in ran] + rows
        rows.sort(key=lambda r: (r["scenario"], r.get("variant", "default"), r["ranks"], -r["cell_size"]))
    exponents = scaling_exponents(rows)
    for e in exponents:
        print(f"{e['scenario']} [{e['variant']}], {e['ranks']} rank(s): seconds per step ~ dofs^{e['wall']:.2f} "
              f"(assembly ~ dofs^{e['assembly']:.2f}, linear ~ dofs^{e['linear']:.2f})")
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "bench_forward.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS + ("error",))
        writer.writeheader()
        writer.writerows(rows)
    with open(RESULTS / "bench_forward.json", "w") as f:
        json.dump({"columns": COLUMNS, "rows": rows, "scaling_exponents": exponents, "steps": args.steps,
                   "warmup": args.warmup, "cpus": os.cpu_count(), "load_average_before": load_before,
                   "load_average_after": os.getloadavg()}, f, indent=2)
    print(f"machine: {os.cpu_count()} CPUs, load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after "
          "(timings on 2 ranks are only meaningful when the machine is otherwise idle)")
    print(f"written {RESULTS / 'bench_forward.csv'} and {RESULTS / 'bench_forward.json'}")


if __name__ == "__main__":
    main()
