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
numbers far above 1, or at an optimiser's absurd trial thickness) is repeated with MUMPS's LU, by a direct solver built
on the same problem at the first fall-back; the next solve is a Krylov solve again (``fallbacks`` counts the
fall-backs; one warning line is logged per fall-back).  The fall-back is per solve so that a step's result is a
function of the state and ``dt`` alone, not of the solver's history: a step recomputed from a checkpoint gives the same
bits whether or not another step fell back in between, and a failing step falls back the same way when repeated.
"""
from __future__ import annotations

import logging

import firedrake
from firedrake.adjoint_utils.blocks import FunctionAssignBlock, NonlinearVariationalSolveBlock
from firedrake.exceptions import ConvergenceError
from firedrake.petsc import PETSc
from pyadjoint import stop_annotating
from pyadjoint.tape import annotate_tape, get_working_tape

from icesheet.solver_options import DIRECT_SOLVER, THICKNESS_LINEAR_SOLVERS, thickness_solver_parameters
from icesheet.timeloop import timestep_function
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
    repeated with MUMPS, each one solve only (module docstring)."""

    def __init__(self, thickness, velocity, accumulation, inflow_thickness, supg: str = SUPG_PARAMETERS[0],
                 linear_solver: str | dict = THICKNESS_LINEAR_SOLVERS[0]):
        parameters = (dict(linear_solver) if isinstance(linear_solver, dict)
                      else thickness_solver_parameters(linear_solver))
        Q = thickness.function_space()
        self.thickness = thickness
        self.thickness_old = firedrake.Function(Q, name="thickness_old")
        self.thickness_new = firedrake.Function(Q, name="thickness_unclamped")
        self.timestep = timestep_function(Q.mesh())
        degree = Q.ufl_element().degree()
        dx = firedrake.dx(metadata={"quadrature_degree": 3 * degree + 1})
        ds = firedrake.ds(metadata={"quadrature_degree": 3 * degree + 1})
        form = continuity_residual(firedrake.TrialFunction(Q), firedrake.TestFunction(Q), self.thickness_old,
                                   velocity, accumulation, inflow_thickness, self.timestep, dx=dx, ds=ds, supg=supg)
        self._problem = firedrake.LinearVariationalProblem(firedrake.lhs(form), firedrake.rhs(form),
                                                           self.thickness_new)
        self._solver = firedrake.LinearVariationalSolver(self._problem, solver_parameters=parameters)
        self._direct = None  # MUMPS on the same problem, built at the first fall-back
        self.iterative = parameters.get("ksp_type", "preonly") != "preonly"
        self.fallbacks = 0
        self._fell_back = False
        self._clamp = firedrake.max_value(self.thickness_new, 0.0)
        self._clamped_volume_form = (self.thickness - self.thickness_new) * firedrake.dx

    @property
    def iterations(self) -> int:
        """The Krylov iterations of the last solve (0 for MUMPS's, also when the last solve fell back to it)."""
        return self._solver.snes.getKSP().getIterationNumber() if self.iterative and not self._fell_back else 0

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
        # repeated step gives the same bits (a Krylov method's iterates depend on the start).  The tape's length is
        # read before the start's assignment, so that a failed attempt's assignment leaves the tape with its solve.
        tape_length = len(get_working_tape().get_blocks()) if annotate_tape() else None
        self.thickness_new.assign(self.thickness)
        self._fell_back = False
        try:
            self._solver.solve()
        except ConvergenceError:
            if not self.iterative:
                raise
            self._fall_back(tape_length)
            self.thickness_new.assign(self.thickness)  # the failed solve left its last iterate in thickness_new
            self._direct.solve()

    def _fall_back(self, tape_length: int | None) -> None:
        """After a failed Krylov solve: log it, drop its start's assignment and its unfinished block from the tape,
        and build the MUMPS solver of this one solve if this is the first fall-back."""
        ksp = self._solver.snes.getKSP()
        reason = ksp.getConvergedReason()
        self.fallbacks += 1
        self._fell_back = True
        logger.warning("thickness solve: %s + %s failed (%s after %d iterations); repeating it with MUMPS's LU",
                       ksp.getType(), ksp.getPC().getType(), _KSP_REASONS.get(reason, reason),
                       ksp.getIterationNumber())
        if tape_length is not None:
            _drop_unfinished_solve(tape_length)
        if self._direct is None:
            self._direct = firedrake.LinearVariationalSolver(self._problem, solver_parameters=dict(DIRECT_SOLVER))


def _drop_unfinished_solve(tape_length: int) -> None:
    """Remove a failed annotated solve, and the assignment of its start, from the working tape, which held
    ``tape_length`` blocks before them.  Firedrake's annotated ``NonlinearVariationalSolver.solve``
    (firedrake/adjoint_utils/variational_solver.py) adds its solve block to the tape before solving and gives it its
    output only after, so a solve that raised leaves a block without output, and the assignment of its start leaves a
    block whose output nothing uses.  Neither changes a replay or a gradient (pyadjoint's ``Block.recompute`` and
    ``Block.evaluate_adj`` skip a block without outputs, and nothing reads the orphan assignment's output), but they
    would make the tape hold blocks that no solve of the model produced: the retry tapes both again (the assignment,
    then a solve block of its own with the same dependencies), so removing them leaves the tape as if only the retry
    had run, one assignment and one solve block per thickness solve.  Only that exact tail is removed (an assignment
    of a Function, then a solve block without output, both the last blocks of the current time step); any other tail
    is left as it is.  pyadjoint has no call to remove a block: the tape's ``TimeStepSequence`` is a list of the
    blocks plus a list of time steps, each a list of its blocks, and a block leaves both (the sequence forbids ``del``
    but not ``pop``)."""
    blocks = get_working_tape().get_blocks()
    tail = blocks[tape_length:]
    if not (len(tail) == 2 and isinstance(tail[0], FunctionAssignBlock)
            and isinstance(tail[1], NonlinearVariationalSolveBlock) and not tail[1].get_outputs()
            and blocks.steps[-1][-2:] == tail):
        return  # the attempt taped something else (e.g. it failed before its block was added): leave the tape
    for _ in tail:
        blocks.pop()
        blocks.steps[-1].pop()
