"""A small time-stepping model for testing and benchmarking the checkpoint manager: nonlinear diffusion.

    du/dt - div( kappa (1 + u^2) grad u ) = f     on the unit square, natural (no-flux) boundary,

discretised with P1 elements and backward Euler, one Newton solve per step: x_{i+1} = u^{n+1} solves

    F(u^{n+1}; u^n, f) = int (u^{n+1} - u^n)/dt v + kappa (1 + (u^{n+1})^2) grad u^{n+1} . grad v - f v dx = 0.

It follows the model contract (docs/model.md): ``state`` is ``(u,)``, ``step(dt)`` overwrites ``u`` in
place, and every Function, form and solver is built once in the constructor (new ones per step leak through
Firedrake's caches).  Controls: ``source`` (f) and ``diffusivity`` (kappa), both P1 Functions.
"""
from __future__ import annotations

import firedrake as fd

__all__ = ["NonlinearDiffusion", "misfit_functional"]


class NonlinearDiffusion:
    """Nonlinear diffusion on a ``cells x cells`` unit square (P1, backward Euler, Newton)."""

    def __init__(self, cells: int = 8, comm=None):
        mesh = fd.UnitSquareMesh(cells, cells, comm=comm or fd.COMM_WORLD)
        V = fd.FunctionSpace(mesh, "CG", 1)
        x, y = fd.SpatialCoordinate(mesh)
        self.mesh = mesh
        self.u = fd.Function(V, name="u")  # x_i, the state
        self.source = fd.Function(V, name="source").interpolate(fd.sin(3 * x) * fd.cos(2 * y))
        self.diffusivity = fd.Function(V, name="diffusivity").interpolate(0.1 + 0.05 * x * y)
        self._timestep = fd.Function(fd.FunctionSpace(mesh, "R", 0), name="dt")
        self._next = fd.Function(V, name="u_next")  # u^{n+1} being solved for
        v = fd.TestFunction(V)
        u1 = self._next
        residual = ((u1 - self.u) / self._timestep * v
                    + self.diffusivity * (1 + u1 ** 2) * fd.inner(fd.grad(u1), fd.grad(v))
                    - self.source * v) * fd.dx
        problem = fd.NonlinearVariationalProblem(residual, u1)
        self._solver = fd.NonlinearVariationalSolver(problem, solver_parameters={
            "snes_type": "newtonls", "snes_rtol": 1e-12, "snes_atol": 1e-14, "snes_max_it": 50,
            "ksp_type": "preonly", "pc_type": "lu"})
        self.u.interpolate(0.5 + 0.3 * fd.cos(fd.pi * x) * fd.cos(fd.pi * y))

    @property
    def state(self) -> tuple:
        return (self.u,)

    def step(self, dt: float) -> int:
        """Advance ``u`` by one backward-Euler step of length ``dt``; returns the Newton iteration count."""
        self._timestep.assign(dt)
        self._next.assign(self.u)  # initial guess: the previous state
        self._solver.solve()
        self.u.assign(self._next)
        return self._solver.snes.getIterationNumber()


def misfit_functional(model: NonlinearDiffusion, steps: int):
    """``j_i(x_i) = int (u_i - g)^2 dx`` for odd ``i``, plus ``j_l = int u_l^3 dx``: a functional that depends on
    many states and on the final one differently, so that every backward step has a source term to get right."""
    x, y = fd.SpatialCoordinate(model.mesh)
    target = fd.Function(model.u.function_space(), name="target").interpolate(0.4 + 0.2 * x)

    def functional(index, state):
        (u,) = state
        if index == steps:
            return fd.assemble(u ** 3 * fd.dx)
        if index % 2 == 1:
            return fd.assemble((u - target) ** 2 * fd.dx)
        return None

    return functional
