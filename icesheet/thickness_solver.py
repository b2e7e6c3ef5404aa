r"""Backward-Euler thickness update :math:`h \leftarrow h^{n+1}` of the continuity equation (icesheet.transport).

One linear solve per step (the velocity is held fixed during it), then a node-wise clamp
:math:`h \leftarrow \max(h^{n+1}, 0)`, done by interpolating UFL's ``max_value`` (piecewise smooth, so pyadjoint
differentiates it: derivative 1 where :math:`h > 0`, 0 where the clamp acts).  The clamp only acts where the
Galerkin solution undershoots below zero; the mass it adds is returned as ``clamped_volume`` so that conservation
can be audited.  Forms, the solver and the work Functions are built once.
"""
from __future__ import annotations

import firedrake
from pyadjoint import stop_annotating

from icesheet.transport import SUPG_PARAMETERS, continuity_residual
from icesheet.velocity_solver import DIRECT_SOLVER

__all__ = ["ThicknessSolver"]


class ThicknessSolver:
    """Advances ``thickness`` in place by one backward-Euler step of :math:`\\partial_t h + \\nabla\\cdot(hu) = a`;
    ``accumulation`` :math:`a` (m/yr) is a Function or a UFL expression (e.g. surface accumulation minus sub-shelf
    melt, icesheet.model); ``supg`` names the SUPG parameter (icesheet.transport.SUPG_PARAMETERS)."""

    def __init__(self, thickness, velocity, accumulation, inflow_thickness, supg: str = SUPG_PARAMETERS[0]):
        Q = thickness.function_space()
        self.thickness = thickness
        self.thickness_old = firedrake.Function(Q, name="thickness_old")
        self.thickness_new = firedrake.Function(Q, name="thickness_unclamped")
        self.timestep = firedrake.Constant(1.0)
        degree = Q.ufl_element().degree()
        dx = firedrake.dx(metadata={"quadrature_degree": 3 * degree + 1})
        ds = firedrake.ds(metadata={"quadrature_degree": 3 * degree + 1})
        form = continuity_residual(firedrake.TrialFunction(Q), firedrake.TestFunction(Q), self.thickness_old,
                                   velocity, accumulation, inflow_thickness, self.timestep, dx=dx, ds=ds, supg=supg)
        problem = firedrake.LinearVariationalProblem(firedrake.lhs(form), firedrake.rhs(form), self.thickness_new)
        self._solver = firedrake.LinearVariationalSolver(problem, solver_parameters=DIRECT_SOLVER)
        self._clamp = firedrake.max_value(self.thickness_new, 0.0)
        self._clamped_volume_form = (self.thickness - self.thickness_new) * firedrake.dx

    def solve(self, dt: float) -> float:
        """One step of length ``dt`` years; returns the volume (m^3) added by the clamp h = max(h, 0)."""
        self.timestep.assign(dt)
        self.thickness_old.assign(self.thickness)
        # The linear solve computes a correction to the value it starts from: start from the state, so that a
        # repeated step gives the same bits.
        self.thickness_new.assign(self.thickness)
        self._solver.solve()
        self.thickness.interpolate(self._clamp)
        with stop_annotating():
            return float(firedrake.assemble(self._clamped_volume_form))
