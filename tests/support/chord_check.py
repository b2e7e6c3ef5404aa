"""Warm-started velocity solves of the default strategy on the ranks it runs on, against the tight reference.

``mpiexec -n 2 python -m support.chord_check`` (tests/ on PYTHONPATH) runs the marine ice stream at 20 km for a cold
step and 4 warm-started steps of 5 years with the default solver options (``picard-chord``; on 2 ranks with additive
Schwarz and a Cholesky factorisation per rank: the inexact chord operator), then solves the last state again with the
tight reference (the seed's Picard loop finished by Newton to 1e-12, another algorithm on the same equations) and
prints on rank 0 one JSON line: the preconditioner, whether the chord operator is exact, per warm step the chord steps,
Jacobian factorisations, Picard and Newton iterations and the final relative residual, the relative difference of the
last velocity to the reference, and the L2 norm of that velocity (compared with the serial run's by the test).
"""
from __future__ import annotations

import argparse
import json


def chord_counts(steps: int = 4, cell_size: float = 20e3, dt: float = 5.0) -> dict:
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
    u = model.velocity.dat.data_ro
    difference, size = (np.sqrt(comm.allreduce(float(np.sum(a * a)))) for a in (solved - u, u))
    solver = model.velocity_solver
    return {"ranks": comm.size, "strategy": solver.strategy, "exact": solver._chord_exact,
            "preconditioner": solver._newton_solver.snes.getKSP().getPC().getType(),
            "chord": [i.chord_iterations for i in infos], "factorisations": factorisations,
            "picard": [i.picard_iterations for i in infos], "newton": [i.newton_iterations for i in infos],
            "final_residual": [i.final_residual for i in infos],
            "difference_to_reference": float(difference / size), "velocity_norm": velocity_norm}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    from icesheet.cli import import_firedrake

    import_firedrake()
    result = chord_counts(args.steps)
    from mpi4py import MPI

    if MPI.COMM_WORLD.rank == 0:
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
