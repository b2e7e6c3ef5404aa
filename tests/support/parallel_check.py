"""Run a few steps of a small scenario and print a JSON line of volumes and norms (for the 1-vs-2-rank tests).

``mpiexec -n 2 python -m support.parallel_check --steps 3`` (tests/ on PYTHONPATH) prints, on rank 0, the volume and VAF after each step,
the L2 norms of the final thickness and velocity, and the Picard iterations per step; the same numbers computed
serially must agree to round-off (up to the direct solver's parallel ordering).  With ``--chord``, what
:func:`chord_counts` returns instead; with ``--schwarz-branches``, what :func:`schwarz_branches` returns.
"""
from __future__ import annotations

import argparse
import json


def fingerprint(scenario: str = "marine_ice_stream", steps: int = 3, cell_size: float = 40e3) -> dict:
    import firedrake
    from firedrake import dx, inner

    from icesheet.scenarios import build_model, scenario_parameters

    model = build_model(scenario, scenario_parameters(scenario, overrides={"mesh.cell_size": cell_size}))
    records = model.run(steps, scenario_parameters(scenario)["time"]["dt"], progress=False)
    return {"ranks": model.mesh.comm.size,
            "preconditioner": (model.velocity_solver._newton_solver.snes.getKSP().getPC().getType()
                               if hasattr(model, "velocity_solver") else None),  # the SIA model has none
            "volume": [r["volume"] for r in records], "vaf": [r["vaf"] for r in records],
            "picard_iterations": [r["picard_iterations"] for r in records],
            "thickness_norm": float(firedrake.assemble(model.thickness**2 * dx)) ** 0.5,
            "velocity_norm": float(firedrake.assemble(inner(model.velocity, model.velocity) * dx)) ** 0.5}


def chord_counts(steps: int = 4, cell_size: float = 20e3, dt: float = 5.0) -> dict:
    """The marine ice stream at ``cell_size`` for a cold step and ``steps`` warm-started steps of ``dt`` years with the
    default solver options (``picard-chord``; on 2 ranks with additive Schwarz and a Cholesky factorisation per rank:
    the inexact chord operator); then the last solve's state solved again by the tight reference (the seed's Picard
    loop finished by Newton to 1e-12, another algorithm on the same equations).  Returns the preconditioner, whether
    the chord operator is exact, per warm step the chord steps, velocity factorisations, Picard and Newton iterations
    and the final relative residual, the relative difference of the last velocity to the reference, the L2 norm of
    that velocity, and (``fallback``) the counts, final residual and difference to the reference of the last solve
    repeated with ``max_iterations = 3`` chord steps, after which Newton's method takes over."""
    import firedrake
    import numpy as np
    from firedrake import dx, inner
    from firedrake.petsc import PETSc

    from icesheet.scenarios import build_model, scenario_parameters
    from icesheet.velocity_solver import PicardOptions, VelocitySolver

    model = build_model("marine_ice_stream",
                        scenario_parameters("marine_ice_stream", overrides={"mesh.cell_size": cell_size}))
    # Velocity factorisations: PETSc's Cholesky events of this rank (one per factorisation of its subdomain; the
    # thickness update factorises by ILU, another event).
    PETSc.Log.begin()
    cholesky = PETSc.Log.Event("MatCholFctrNum")
    model.step(dt)  # the cold step
    infos, factorisations = [], []
    for _ in range(steps):
        last_state = model.state_arrays()
        before = cholesky.getPerfInfo()["count"]
        infos.append(model.step(dt))
        factorisations.append(cholesky.getPerfInfo()["count"] - before)
    comm = model.mesh.comm
    solved = model.velocity.dat.data_ro.copy()
    velocity_norm = float(firedrake.assemble(inner(model.velocity, model.velocity) * dx)) ** 0.5
    # The last solve's state again (its thickness and warm start), solved by the tight reference.
    model.set_state_arrays(last_state)
    reference = VelocitySolver.for_model(model, PicardOptions(strategy="picard", newton_finish=True,
                                                              newton_tolerance=1e-12, newton_max_iterations=50))
    reference.solve()
    u = model.velocity.dat.data_ro.copy()

    def distance(v):
        difference, size = (np.sqrt(comm.allreduce(float(np.sum(a * a)))) for a in (v - u, u))
        return float(difference / size)

    # The same solve by a chord that gives up after 3 steps: Newton's method takes over from its last iterate.
    model.set_state_arrays(last_state)
    fallback = VelocitySolver.for_model(model, PicardOptions(strategy="picard-chord", max_iterations=3)).solve()
    solver = model.velocity_solver
    return {"ranks": comm.size, "strategy": solver.strategy, "exact": solver._chord_exact,
            "preconditioner": solver._newton_solver.snes.getKSP().getPC().getType(),
            "chord": [i.chord_iterations for i in infos], "factorisations": factorisations,
            "picard": [i.picard_iterations for i in infos], "newton": [i.newton_iterations for i in infos],
            "final_residual": [i.final_residual for i in infos],
            "difference_to_reference": distance(solved), "velocity_norm": velocity_norm,
            "fallback": {"chord": fallback.chord_iterations, "newton": fallback.newton_iterations,
                         "final_residual": fallback.final_residual,
                         "difference_to_reference": distance(model.velocity.dat.data_ro)}}


def schwarz_branches(cell_size: float = 20e3) -> dict:
    """Cold velocity solves of the marine ice stream at ``cell_size`` (from the scenario's initial guess) by
    ``picard-chord`` with the Picard phase ended early, so that the chord starts far from the root: ``kept_rise``
    (``newton_switch`` 0.12, the Schwarz operator also rebuilt after a slow step: ``chord_rebuild_inexact`` 0.6) and
    ``handover`` (``newton_switch`` 0.3).  Returns for each the chord steps, factorisations, Newton iterations, the
    relative residuals of the chord phase (the first: the chord's start), the final relative residual and the
    relative difference to the tight reference (the seed's Picard loop finished by Newton to 1e-12)."""
    import numpy as np

    from icesheet.scenarios import build_model, scenario_parameters
    from icesheet.velocity_solver import PicardOptions, VelocitySolver

    model = build_model("marine_ice_stream",
                        scenario_parameters("marine_ice_stream", overrides={"mesh.cell_size": cell_size}))
    comm, start = model.mesh.comm, model.state_arrays()
    VelocitySolver.for_model(model, PicardOptions(strategy="picard", newton_finish=True, newton_tolerance=1e-12,
                                                  newton_max_iterations=50)).solve()
    reference = model.velocity.dat.data_ro.copy()
    result = {"ranks": comm.size}
    for name, options in (("kept_rise", {"newton_switch": 0.12, "chord_rebuild_inexact": 0.6}),
                          ("handover", {"newton_switch": 0.3})):
        model.set_state_arrays(start)
        solver = VelocitySolver.for_model(model, PicardOptions(strategy="picard-chord", **options))
        info = solver.solve()
        difference, size = (np.sqrt(comm.allreduce(float(np.sum(a * a))))
                            for a in (model.velocity.dat.data_ro - reference, reference))
        result[name] = {"exact": solver._chord_exact, "chord": info.chord_iterations,
                        "factorisations": info.chord_factorisations, "newton": info.newton_iterations,
                        "chord_residuals": info.residuals[info.picard_iterations:],
                        "final_residual": info.final_residual, "difference_to_reference": float(difference / size)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", default="marine_ice_stream")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--cell-size", type=float, default=40e3)
    parser.add_argument("--chord", action="store_true", help="print chord_counts() (default arguments) instead")
    parser.add_argument("--schwarz-branches", action="store_true",
                        help="print schwarz_branches() (default arguments) instead")
    args = parser.parse_args()
    from icesheet.cli import import_firedrake

    import_firedrake()
    result = (chord_counts() if args.chord else schwarz_branches() if args.schwarz_branches
              else fingerprint(args.scenario, args.steps, args.cell_size))
    from mpi4py import MPI

    if MPI.COMM_WORLD.rank == 0:
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
