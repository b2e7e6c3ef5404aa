"""The pieces of a chord step on one and on several ranks: what the factorisations cost, how exact they are, and how
fast the Anderson-accelerated chord iteration converges with each (issue 9: why two ranks are not 1.6 times faster
than one at 1 km; docs/solvers.md, "Whole steps on 1 and 2 ranks").

A chord step of the default velocity solve (``picard-chord`` on every rank count, icesheet/velocity_solver.py)
costs one residual assembly and one application of an operator built from an earlier Jacobian (on one rank a
Cholesky factorisation: a triangular-solve pair; on several additive Schwarz), so the application is what a second
rank would have to make cheaper.  The state: the marine ice stream after ``--steps`` steps of ``cell size / 1 km``
years at ``--cell-size`` (state n), then the thickness of one more step (state n + 1, warm start u_n).  For each
operator ``P`` available on the rank count: its numeric factorisation of the Jacobian at the warm start (wall time,
the slowest rank), one application ``P^-1 b`` (the minimum over ``--repeats`` rounds of 10), whether it is an exact
solve (``||J P^-1 b - b|| / ||b||`` below 1e-8), and the Anderson-mixed chord iteration ``u <- u - P^-1 F(u)`` from
the warm start by the default solve's rules (:func:`chord`; icesheet/anderson.py): an exact operator with
``PicardOptions.chord_rebuild`` and ``chord_depth``, an inexact one with ``chord_rebuild_inexact`` and
``chord_depth_inexact`` and also with ``chord_rebuild`` (rebuilt after a slow step as well).  Reported: relative
residuals step by step, steps and factorisations to ``newton_tolerance``, or how the chord ended (``stalled``: where
the solver would hand over to Newton's method; ``factorisations``: after ``newton_max_iterations``; ``max-steps``:
after ``--max-steps``), and the wall time.  Also the Jacobian and the residual assembly.

Operators: on one rank ``cholesky`` (CHOLMOD, the default's); on several ranks ``cholesky`` (MUMPS's distributed
Cholesky), ``lu-superlu_dist`` (SuperLU_dist), ``asm-cholesky`` (additive Schwarz, overlap ``ASM_OVERLAP``, CHOLMOD on
each subdomain: Newton's preconditioner there), ``ras-cholesky`` (the same, restricted: the stationary-iteration
variant) and ``bjacobi-cholesky``.

Usage:  python benchmarks/bench_linear_algebra.py [--cell-size 1000] [--steps 2] [--repeats 3] [--max-steps 60]
        mpiexec -n 2 python benchmarks/bench_linear_algebra.py ...
Prints a table and writes benchmarks/results/bench_linear_algebra.{csv,json}; a run replaces the saved rows of its
(cell size, ranks) and keeps the others.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
FIELDS = ("cell_size", "ranks", "dofs", "operator", "exact_error", "factorisation_wall", "apply_wall_ms",
          "chord_rebuild", "chord_depth", "chord_outcome", "chord_steps", "chord_factorisations", "chord_final_residual", "chord_wall", "jacobian_assembly_ms", "residual_assembly_ms", "load")


def operators(ranks: int) -> dict[str, dict]:
    """PETSc options (``pc_``/``sub_`` keys) of each operator available on ``ranks`` ranks (module docstring): the
    solver's own (icesheet.solver_options.linear_solver_parameters), with CHOLMOD on the subdomains."""
    from icesheet.solver_options import linear_solver_parameters

    def pc(*args, **kwargs) -> dict:
        return {key: value for key, value in linear_solver_parameters(*args, **kwargs).items()
                if key.startswith(("pc_", "sub_"))}

    if ranks == 1:
        return {"cholesky": pc("cholesky", cholesky_package="cholmod")}
    schwarz = pc("cg", "asm-cholesky", local_cholesky_package="cholmod", ranks=ranks)
    return {"cholesky": pc("cholesky", cholesky_package="mumps"),
            "lu-superlu_dist": {"pc_type": "lu", "pc_factor_mat_solver_type": "superlu_dist"},
            "asm-cholesky": schwarz,
            "ras-cholesky": {**schwarz, "pc_asm_type": "restrict"},
            "bjacobi-cholesky": pc("cg", "bjacobi-cholesky", local_cholesky_package="cholmod", ranks=ranks)}


def timed(comm, function, repeats: int = 1) -> float:
    """The slowest rank's wall time of ``function()`` (the minimum over ``repeats`` calls)."""
    from mpi4py import MPI

    best = float("inf")
    for _ in range(repeats):
        comm.barrier()
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return comm.allreduce(best, op=MPI.MAX)


def measure(cell_size: float, steps: int, repeats: int, max_steps: int) -> list[dict]:
    from firedrake.petsc import PETSc

    from icesheet.anderson import AndersonMixing
    from icesheet.scenarios import build_model, scenario_parameters

    model = build_model("marine_ice_stream",
                        scenario_parameters("marine_ice_stream", overrides={"mesh.cell_size": cell_size}))
    comm = model.mesh.comm
    dt = cell_size / 1000.0
    for _ in range(steps):
        model.step(dt)
    model.velocity_solver.solve()  # u_n at h_n; then h_{n+1}: the warm start of the next step
    model.thickness_solver.solve(dt)
    solver = model.velocity_solver
    tolerance = solver.options.newton_tolerance
    warm_start = model.velocity.dat.data_ro.copy()
    context = solver._newton_solver._ctx
    jacobian = context._jac.petscmat
    jacobian_ms = 1e3 * timed(comm, lambda: context._assemble_jac(context._jac), repeats)
    solver.residual_scale.assign(solver.load_norm())
    residual_ms = 1e3 * timed(comm, solver._scaled_residual, repeats)
    dofs = model.velocity_space.dim()
    rows = []
    for name, options in operators(comm.size).items():
        model.velocity.dat.data_wo[...] = warm_start
        context._assemble_jac(context._jac)  # the Jacobian at the warm start
        prefix = f"bench_la_{name.replace('-', '_')}_"
        petsc_options = PETSc.Options(prefix)
        for key, value in options.items():
            petsc_options[key] = value
        pc = PETSc.PC().create(comm=comm)
        pc.setOptionsPrefix(prefix)
        pc.setOperators(jacobian, jacobian)
        pc.setFromOptions()
        pc.setUp()  # symbolic and numeric
        rhs, solution = jacobian.createVecs()
        rhs.setRandom()
        apply_ms = 1e3 * timed(comm, lambda: [pc.apply(rhs, solution) for _ in range(10)], repeats) / 10
        # Scaling by 2 and back (exact) marks the matrix changed; the numeric factorisation then runs in setUp or, for
        # the Schwarz and block-Jacobi subdomains, at the next application, which is timed with it and subtracted.
        setup_and_apply = timed(comm, lambda: (jacobian.scale(2.0), jacobian.scale(0.5), pc.setUp(),
                                               pc.apply(rhs, solution)), repeats)
        factorisation = setup_and_apply - apply_ms / 1e3
        check = rhs.duplicate()
        jacobian.mult(solution, check)
        check.axpy(-1.0, rhs)
        exact_error = check.norm() / rhs.norm()
        # An exact operator by the exact rule (chord_rebuild, chord_depth); an inexact one by the Schwarz rule with its
        # threshold (chord_rebuild_inexact, chord_depth_inexact) and, for comparison, with the exact rule's threshold.
        exact = exact_error < 1e-8
        opts = solver.options
        depth = opts.chord_depth if exact else opts.chord_depth_inexact
        for rebuild in (opts.chord_rebuild,) if exact else (opts.chord_rebuild_inexact, opts.chord_rebuild):
            model.velocity.dat.data_wo[...] = warm_start
            result = chord(model, pc, jacobian, exact, AndersonMixing(depth, comm=comm), rebuild, tolerance,
                           max_steps)
            history = result["residuals"]
            rows.append({"cell_size": cell_size, "ranks": comm.size, "dofs": dofs, "operator": name,
                         "exact_error": exact_error, "factorisation_wall": factorisation, "apply_wall_ms": apply_ms,
                         "chord_rebuild": rebuild, "chord_depth": depth, "chord_outcome": result["outcome"],
                         "chord_steps": result["steps"] if result["outcome"] == "converged" else None,
                         "chord_factorisations": result["factorisations"], "chord_final_residual": history[-1],
                         "chord_wall": result["wall"], "chord_residuals": history,
                         "jacobian_assembly_ms": jacobian_ms, "residual_assembly_ms": residual_ms,
                         "load": os.getloadavg()[0]})
            print_row(rows[-1])
        pc.destroy()
    return rows


def chord(model, pc, jacobian, exact: bool, anderson, rebuild: float, tolerance: float, max_steps: int) -> dict:
    """The Anderson-mixed chord iteration u <- u - P^-1 F(u) with the operator ``pc``, from the current velocity, by
    the rules of the default solve (icesheet/velocity_solver.py, ``VelocitySolver._chord_solve``) with the
    refactorisation threshold ``rebuild``.  ``pc`` is rebuilt from the Jacobian assembled at the current iterate, and
    the mixing restarted, after a step that increases the relative residual (undone first) or reduces it by less than
    the factor ``rebuild``.  The first step with a new operator: for an ``exact`` one a Newton step, halved twice if it
    increases the residual, and the chord has stalled if it still does; for an inexact (Schwarz) one it is kept while
    its residual stays at most the chord's starting one, and the chord has stalled above it.  Stops there (the solver
    would hand over to Newton's method), at ``newton_max_iterations`` factorisations, at a relative residual of at
    most ``tolerance`` or after ``max_steps`` steps.  Returns the relative residuals of the accepted iterates (the
    first: the warm start's), the steps (undone ones included), the factorisations (the one at the start included),
    the outcome (``converged``, ``stalled``, ``factorisations`` or ``max-steps``) and the slowest rank's wall time."""
    from mpi4py import MPI

    solver, comm = model.velocity_solver, model.mesh.comm
    context = solver._newton_solver._ctx
    shape = model.velocity.dat.data_ro.shape
    rhs, step = jacobian.createVecs()
    max_factorisations = solver.options.newton_max_iterations

    def factorise():
        context._assemble_jac(context._jac)  # at the current velocity
        pc.setOperators(jacobian, jacobian)
        pc.setUp()
        anderson.reset()

    comm.barrier()
    start = time.perf_counter()
    factorisations, steps, outcome, fresh = 0, 0, "max-steps", True
    residual, norm = solver._scaled_residual()
    start_norm, history = norm, [norm]
    while steps < max_steps:
        if norm <= tolerance:
            outcome = "converged"
            break
        if fresh:
            if factorisations >= max_factorisations:
                outcome = "factorisations"
                break
            factorise()
            factorisations += 1
        rhs.array[:] = -residual
        pc.apply(rhs, step)
        u = model.velocity.dat.data_ro.reshape(-1).copy()
        model.velocity.dat.data_wo[...] = anderson.mix(u, u + step.array_r).reshape(shape)
        steps += 1
        new_residual, new_norm = solver._scaled_residual()
        for damping in (0.5, 0.25) if fresh and exact else ():
            if new_norm <= norm:
                break
            model.velocity.dat.data_wo[...] = (u + damping * step.array_r).reshape(shape)
            new_residual, new_norm = solver._scaled_residual()
        kept_increase = fresh and not exact and new_norm <= start_norm
        if new_norm > norm and not kept_increase:
            model.velocity.dat.data_wo[...] = u.reshape(shape)  # undo
            if fresh:
                outcome = "stalled"
                break
            fresh = True
            continue
        fresh = new_norm > rebuild * norm and not kept_increase
        residual, norm = new_residual, new_norm
        history.append(norm)
    else:
        if norm <= tolerance:
            outcome = "converged"
    wall = time.perf_counter() - start
    anderson.reset()
    return {"residuals": history, "steps": steps, "factorisations": factorisations, "outcome": outcome,
            "wall": comm.allreduce(wall, op=MPI.MAX)}


def print_row(r: dict) -> None:
    steps = (f"{r['chord_steps']} chord steps" if r["chord_steps"] is not None
             else f"{r['chord_outcome']}: residual {r['chord_final_residual']:.1e}")
    steps += f", {r['chord_factorisations']} factorisations,"
    print(f"{r['cell_size']:>7.0f} {r['ranks']}r {r['operator']:<17} rebuild {r['chord_rebuild']:.1f} depth "
          f"{r['chord_depth']:>2} factorisation {r['factorisation_wall']:.3f} s  apply {r['apply_wall_ms']:6.1f} ms  "
          f"exact to {r['exact_error']:.1e}  {steps} in {r['chord_wall']:.3f} s  (Jacobian "
          f"{r['jacobian_assembly_ms']:.1f} ms, residual {r['residual_assembly_ms']:.1f} ms, load {r['load']:.2f})",
          flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cell-size", type=float, default=1000.0, help="metres (default 1000)")
    parser.add_argument("--steps", type=int, default=2, help="steps before the measured state (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds (default 3)")
    parser.add_argument("--max-steps", type=int, default=60, help="chord steps at most (default 60)")
    args = parser.parse_args(argv)
    if args.cell_size <= 0:
        parser.error(f"--cell-size = {args.cell_size}: must be > 0 (metres)")
    for name in ("steps", "repeats", "max_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} = {getattr(args, name)}: must be >= 1")
    os.environ.setdefault("PETSC_OPTIONS", "-options_left no")
    from firedrake.petsc import PETSc

    if PETSc.COMM_WORLD.rank != 0:
        sys.stdout = open(os.devnull, "w")
    load_before = os.getloadavg()
    rows = measure(args.cell_size, args.steps, args.repeats, args.max_steps)
    if PETSc.COMM_WORLD.rank != 0:
        return
    run = {"ranks": PETSc.COMM_WORLD.size, "cell_size": args.cell_size, "steps": args.steps,
           "repeats": args.repeats, "load_average_before": load_before, "load_average_after": os.getloadavg()}
    saved = json.loads((RESULTS / "bench_linear_algebra.json").read_text()) \
        if (RESULTS / "bench_linear_algebra.json").is_file() else {"runs": [], "rows": []}
    rows = [r for r in saved["rows"] if (r["cell_size"], r["ranks"]) != (args.cell_size, run["ranks"])] + rows
    rows.sort(key=lambda r: (-r["cell_size"], r["ranks"]))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench_linear_algebra.json").write_text(json.dumps({"runs": saved["runs"] + [run], "rows": rows},
                                                                  indent=1))
    with open(RESULTS / "bench_linear_algebra.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    print(f"load average before {load_before[0]:.2f}, after {run['load_average_after'][0]:.2f}; "
          f"wrote {RESULTS / 'bench_linear_algebra.csv'}")


if __name__ == "__main__":
    main()
