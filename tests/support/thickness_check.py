"""The thickness update with GMRES + ILU(0) against MUMPS's LU on a few steps of a coarse scenario (for
tests/icesheet/test_thickness_solver.py, on one rank in-process and under ``mpiexec -n 2``).

``mpiexec -n 2 python -m support.thickness_check`` (tests/ on PYTHONPATH) prints, on rank 0, a JSON line: per step the
relative l2 difference of the two thicknesses, the relative change of MUMPS's thickness from step to step, the Krylov
iterations of the last solve, the fall-backs to MUMPS and the rank count.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

#: scenario -> (overrides, steps, dt in years): a coarse marine ice stream and a coarse MISMIP+ Ice0 (a thin initial
#: slab thickening under the accumulation)
CASES = {"marine_ice_stream": ({"mesh.cell_size": 20000.0}, 3, 10.0),
         "mismip_ice0": ({"mesh.cell_size": 20000.0, "ice.initial_thickness": 500.0}, 3, 2.0)}


def thickness_history(scenario: str, linear_solver: str) -> tuple[list, object]:
    """The thickness after each step of the case ``scenario`` with the thickness update's ``linear_solver``, and the
    model."""
    from icesheet.scenarios import build_model, scenario_parameters

    overrides, steps, dt = CASES[scenario]
    parameters = scenario_parameters(scenario, overrides={**overrides, "solver.thickness_linear_solver": linear_solver})
    model = build_model(scenario, parameters)
    history = []
    for _ in range(steps):
        model.step(dt)
        history.append(model.thickness.dat.data_ro.copy())
    return history, model


def _norm(values, comm) -> float:
    return float(np.sqrt(comm.allreduce(float(np.sum(values**2)))))


def compare(scenario: str = "marine_ice_stream") -> dict:
    """Both runs of ``scenario`` side by side (the module docstring's quantities)."""
    krylov, model = thickness_history(scenario, "gmres-ilu")
    direct, _ = thickness_history(scenario, "mumps")
    comm = model.mesh.comm
    return {"differences": [_norm(a - b, comm) / _norm(b, comm) for a, b in zip(krylov, direct)],
            "changes": [_norm(b - a, comm) / _norm(a, comm) for a, b in zip(direct, direct[1:])],
            "iterations": model.thickness_solver.iterations, "fallbacks": model.thickness_solver.fallbacks,
            "ranks": comm.size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", default="marine_ice_stream", choices=list(CASES))
    args = parser.parse_args()
    from icesheet.cli import import_firedrake

    import_firedrake()
    result = compare(args.scenario)
    from mpi4py import MPI

    if MPI.COMM_WORLD.rank == 0:
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
