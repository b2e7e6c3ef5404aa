r"""Backward-Euler thickness update :math:`h \leftarrow h^{n+1}` of the continuity equation (icesheet.transport).

One linear solve per step (the velocity is held fixed during it), then a node-wise clamp
:math:`h \leftarrow \max(h^{n+1}, 0)`, done by interpolating UFL's ``max_value`` (piecewise smooth, so pyadjoint
differentiates it: derivative 1 where :math:`h > 0`, 0 where the clamp acts).  The clamp only acts where the
Galerkin solution undershoots below zero; the mass it adds is returned as ``clamped_volume`` so that conservation
can be audited.  Forms, the solver and the work Functions are built once.

Linear solver.  By default GMRES with ILU(0) (icesheet.solver_options.ITERATIVE_THICKNESS_SOLVER), started from the
current thickness; ``"mumps"`` factorises the matrix anew every step (docs/solvers.md, "Thickness solve").  pyadjoint
solves the adjoint of each taped solve with the options of the solver that taped it.  Fall-back: a Krylov solve that
fails (Firedrake's ``ConvergenceError``: too many iterations, a breakdown, a zero pivot of the ILU; e.g. at Courant
numbers far above 1, or at an optimiser's absurd trial thickness) is repeated with MUMPS's LU, and this solver uses
MUMPS for the rest of its life (``fallbacks`` counts them; one warning line is logged).
"""
from __future__ import annotations

import logging

import firedrake
from firedrake.adjoint_utils.blocks import NonlinearVariationalSolveBlock
from firedrake.exceptions import ConvergenceError
from firedrake.petsc import PETSc
from pyadjoint import stop_annotating
from pyadjoint.tape import annotate_tape, get_working_tape

from icesheet.solver_options import DIRECT_SOLVER, THICKNESS_LINEAR_SOLVERS, thickness_solver_parameters
from icesheet.transport import SUPG_PARAMETERS, continuity_residual

__all__ = ["ThicknessSolver"]

logger = logging.getLogger(__name__)

_KSP_REASONS = {value: name for name, value in vars(PETSc.KSP.ConvergedReason).items() if not name.startswith("_")}


class ThicknessSolver:
    """Advances ``thickness`` in place by one backward-Euler step of :math:`\\partial_t h + \\nabla\\cdot(hu) = a`;
    ``accumulation`` :math:`a` (m/yr) is a Function or a UFL expression (e.g. surface accumulation minus sub-shelf
    melt, icesheet.model); ``supg`` names the SUPG parameter (icesheet.transport.SUPG_PARAMETERS);
    ``linear_solver`` one of icesheet.solver_options.THICKNESS_LINEAR_SOLVERS, or a PETSc options dictionary
    (benchmarks/bench_thickness.py compares variants).  ``fallbacks``: the Krylov solves that failed and were
    repeated with MUMPS (module docstring)."""

    def __init__(self, thickness, velocity, accumulation, inflow_thickness, supg: str = SUPG_PARAMETERS[0],
                 linear_solver: str | dict = THICKNESS_LINEAR_SOLVERS[0]):
        parameters = (dict(linear_solver) if isinstance(linear_solver, dict)
                      else thickness_solver_parameters(linear_solver))
        Q = thickness.function_space()
        self.thickness = thickness
        self.thickness_old = firedrake.Function(Q, name="thickness_old")
        self.thickness_new = firedrake.Function(Q, name="thickness_unclamped")
        # dt as a Function in the real space, not a Constant: pyadjoint replays a taped Constant at its current
        # value, so a tape of steps of different lengths was replayed with the last step's dt at every step
        self.timestep = firedrake.Function(firedrake.FunctionSpace(Q.mesh(), "R", 0), name="timestep").assign(1.0)
        degree = Q.ufl_element().degree()
        dx = firedrake.dx(metadata={"quadrature_degree": 3 * degree + 1})
        ds = firedrake.ds(metadata={"quadrature_degree": 3 * degree + 1})
        form = continuity_residual(firedrake.TrialFunction(Q), firedrake.TestFunction(Q), self.thickness_old,
                                   velocity, accumulation, inflow_thickness, self.timestep, dx=dx, ds=ds, supg=supg)
        self._problem = firedrake.LinearVariationalProblem(firedrake.lhs(form), firedrake.rhs(form),
                                                           self.thickness_new)
        self._solver = firedrake.LinearVariationalSolver(self._problem, solver_parameters=parameters)
        self.iterative = parameters.get("ksp_type") != "preonly"
        self.fallbacks = 0
        self._clamp = firedrake.max_value(self.thickness_new, 0.0)
        self._clamped_volume_form = (self.thickness - self.thickness_new) * firedrake.dx

    @property
    def iterations(self) -> int:
        """The Krylov iterations of the last solve (0 for MUMPS's)."""
        return self._solver.snes.getKSP().getIterationNumber() if self.iterative else 0

    def solve(self, dt: float) -> float:
        """One step of length ``dt`` years; returns the volume (m^3) added by the clamp h = max(h, 0)."""
        self.timestep.assign(dt)
        self.thickness_old.assign(self.thickness)
        self._linear_solve()
        self.thickness.interpolate(self._clamp)
        with stop_annotating():
            return float(firedrake.assemble(self._clamped_volume_form))

    def _linear_solve(self) -> None:
        # The linear solve computes a correction to the value it starts from: start from the state, so that a
        # repeated step gives the same bits (a Krylov method's iterates depend on the start).
        self.thickness_new.assign(self.thickness)
        tape_length = len(get_working_tape().get_blocks()) if annotate_tape() else None
        try:
            self._solver.solve()
        except ConvergenceError:
            if not self.iterative:
                raise
            self._fall_back(tape_length)
            self._linear_solve()  # again from the start (the failed solve left its last iterate in thickness_new)

    def _fall_back(self, tape_length: int | None) -> None:
        """After a failed Krylov solve: log it, drop its unfinished block from the tape, and switch to MUMPS."""
        ksp = self._solver.snes.getKSP()
        reason = ksp.getConvergedReason()
        self.fallbacks += 1
        logger.warning("thickness solve: %s + %s failed (%s after %d iterations); repeating it with MUMPS's LU, "
                       "which this thickness solver uses from now on", ksp.getType(), ksp.getPC().getType(),
                       _KSP_REASONS.get(reason, reason), ksp.getIterationNumber())
        if tape_length is not None:
            _drop_unfinished_solve(tape_length)
        self._solver = firedrake.LinearVariationalSolver(self._problem, solver_parameters=dict(DIRECT_SOLVER))
        self.iterative = False


def _drop_unfinished_solve(tape_length: int) -> None:
    """Remove the block of a failed annotated solve from the working tape, which held ``tape_length`` blocks before
    the attempt.  Firedrake's annotated ``NonlinearVariationalSolver.solve``
    (firedrake/adjoint_utils/variational_solver.py) adds its solve block to the tape before solving and gives it its
    output only after, so a solve that raised leaves a block without output: its adjoint would have nothing to
    propagate from and its recomputation would run the failed solver again.  The block is the tape's last one (the
    attempt taped nothing after it) and the retry tapes a block of its own with the same dependencies, so removing it
    leaves the tape as if only the retry had run (the dependencies' bookkeeping it did, saving their values and
    marking them as used in this time step, the retry does again), but for the assignment of the start that
    preceded the attempt and that the retry repeats: a block whose output nothing uses.  pyadjoint has no call to remove a block: the
    tape's ``TimeStepSequence`` is a list of the blocks plus a list of time steps, each a list of its blocks, and the
    block leaves both (the sequence forbids ``del`` but not ``pop``)."""
    blocks = get_working_tape().get_blocks()
    if len(blocks) != tape_length + 1:
        return  # the attempt taped nothing (it failed before the block was added) or more than its solve
    block = blocks[-1]
    if not isinstance(block, NonlinearVariationalSolveBlock) or block.get_outputs() or blocks.steps[-1][-1] is not block:
        return
    blocks.pop()
    blocks.steps[-1].pop()
