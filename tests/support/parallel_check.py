"""Run a few steps of a small scenario and print a JSON line of volumes and norms (for the 1-vs-2-rank test).

``mpiexec -n 2 python -m support.parallel_check --steps 3`` (tests/ on PYTHONPATH) prints, on rank 0, the volume and VAF after each step,
the L2 norms of the final thickness and velocity, and the Picard iterations per step; the same numbers computed
serially must agree to round-off (up to the direct solver's parallel ordering).
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", default="marine_ice_stream")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--cell-size", type=float, default=40e3)
    args = parser.parse_args()
    from icesheet.cli import import_firedrake

    import_firedrake()
    result = fingerprint(args.scenario, args.steps, args.cell_size)
    from mpi4py import MPI

    if MPI.COMM_WORLD.rank == 0:
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
