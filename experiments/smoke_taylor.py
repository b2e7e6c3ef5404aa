"""Smoke run of the Firedrake + pyadjoint stack: a nonlinear PDE, its gradient, and a Taylor test.

Solves  -div((1 + u^2) grad u) = f  on the unit square with u = 0 on the boundary (P1, Newton), takes
J(f) = int u^2 dx, computes dJ/df with pyadjoint and checks it with ``taylor_test``: the remainder
|J(f + eps h) - J(f) - eps dJ.h| must fall as eps^2 (order about 2).
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

log = logging.getLogger("smoke")


def taylor_order(n_cells: int = 16) -> dict:
    """Return the Taylor-test order and the functional value for the nonlinear Poisson problem."""
    import firedrake as fd
    import firedrake.adjoint as fa  # registers Firedrake's overloads (AdjFloat from assemble, numpy ops)

    fa.set_working_tape(fa.Tape())
    fa.continue_annotation()
    mesh = fd.UnitSquareMesh(n_cells, n_cells)
    V = fd.FunctionSpace(mesh, "CG", 1)
    x, y = fd.SpatialCoordinate(mesh)
    f = fd.Function(V, name="source").interpolate(fd.sin(fd.pi * x) * fd.sin(fd.pi * y) * 10)
    u = fd.Function(V, name="u")
    v = fd.TestFunction(V)
    F = (1 + u**2) * fd.inner(fd.grad(u), fd.grad(v)) * fd.dx - f * v * fd.dx
    fd.solve(F == 0, u, bcs=fd.DirichletBC(V, 0, "on_boundary"),
             solver_parameters={"snes_rtol": 1e-12, "ksp_type": "preonly", "pc_type": "lu"})
    J = fd.assemble(u**2 * fd.dx)
    rf = fa.ReducedFunctional(J, fa.Control(f))
    fa.pause_annotation()
    h = fd.Function(V).interpolate(x * (1 - x) * y * (1 - y) * 10)
    order = fa.taylor_test(rf, f, h)
    return {"J": float(J), "taylor_order": float(order), "dofs": V.dim(), "ranks": mesh.comm.size}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=16, help="cells per side (>= 2)")
    parser.add_argument("--out", type=Path, default=None, help="directory for smoke.json")
    args = parser.parse_args(argv)
    if args.cells < 2:
        parser.error(f"--cells {args.cells}: must be an integer >= 2")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    result = taylor_order(args.cells)
    from mpi4py import MPI

    if MPI.COMM_WORLD.rank == 0:
        print(json.dumps(result))
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "smoke.json").write_text(json.dumps(result, indent=2))
    return 0 if result["taylor_order"] > 1.95 else 1


if __name__ == "__main__":
    raise SystemExit(main())
