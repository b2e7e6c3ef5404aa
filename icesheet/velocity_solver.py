r"""Picard (fixed-point) solver for the SSA momentum balance, with an optional Newton finish.

One velocity solve (the seed talk's algorithm; MacAyeal 1989):

1. start from the velocity held in the state, :math:`u_0`;
2. for :math:`i = 0, 1, \dots`: evaluate the viscosity :math:`\mu_i = \mu(u_i)` and the linearised friction
   :math:`\beta_i = C|u_i|^{1/m - 1}` at the iterate, solve the *linear* problem :math:`A\{\mu_i, \beta_i\}\,
   u_{i+1} = \tau_d` (membrane stress + friction = driving stress + calving-front stress, Dirichlet inflow, free-slip
   side walls), and stop when both :math:`\|u_{i+1} - u_i\| / \|u_{i+1}\|` (Euclidean norms of the coefficient vectors)
   and the full nonlinear residual :math:`r_{i+1} = \|F(u_{i+1})\| / \|\tau_d\|` are small:
   :math:`r_{i+1} \le \text{residual\_tolerance}\cdot\max(r_0, 1)`, i.e. relative to the first residual, or to the load
   vector :math:`\tau_d` (driving plus front stress, the residual at :math:`u = 0`) when the start was already good.
   Residual norms are Euclidean norms of the assembled residual with Dirichlet rows removed;
3. optionally finish with Newton's method on the full residual :math:`F(u) = 0` started from the Picard iterate.

Adjoint modes (contract_model.md; references.md section 4).  ``"unrolled"`` tapes every Picard linear solve, as a
classical AD tool would.  ``"fixed-point"`` runs the Picard loop with annotation off and tapes one Newton solve of
:math:`F(u) = 0`: its adjoint is a single linear solve with :math:`(\partial F/\partial u)^T` at the converged
velocity (Christianson 1994, Optim. Methods Softw. 3), so tape memory and adjoint cost do not depend on the number
of Picard iterations.  The Newton residual is divided by the scalar :math:`\|\tau_d\|` (a Constant refreshed before
each solve), which changes neither its root nor the adjoint, so the Newton tolerance is a relative one.  The Picard
result enters the tape as the Newton initial guess (one taped assignment), so that replays of the tape with other
control values start Newton close to the root; no derivative flows through an initial guess.

Re-taping a solved step (the checkpoint manager's backward steps).  ``solve(converged=u*)``, with ``u*`` the
velocity this solve produced before at the same thickness and controls, skips the Picard loop in the fixed-point
mode: ``u*`` becomes the Newton initial guess, Newton finds the residual already below its tolerance and stops after
0 (at most a few) iterations, and the taped adjoint, one linear solve with :math:`(\partial F/\partial u)^T` at the
root, is the same.  The result is the root of :math:`F` to the Newton tolerance whatever ``u*`` is, so a hint only
changes the cost.  The unrolled mode (whose tape must hold every Picard solve) and a fixed-point solver without
Newton finish ignore it.

The linear and the Newton solver, their forms and the iterate Function are built once and reused; only values
are assigned in (memory-facts.md).
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field

import firedrake
from firedrake.assemble import get_assembler
import numpy as np
from pyadjoint import stop_annotating
from pyadjoint.tape import annotate_tape

from icesheet import physics

__all__ = ["PicardOptions", "PicardConvergenceError", "VelocitySolveInfo", "VelocitySolver", "ADJOINT_MODES"]

ADJOINT_MODES = ("fixed-point", "unrolled")

DIRECT_SOLVER = {"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"}


@dataclass(frozen=True)
class PicardOptions:
    """Stopping rules of the velocity solve.

    ``newton_finish=None`` means: a Newton finish in the fixed-point adjoint mode (where it is the taped solve),
    none in the unrolled mode."""

    tolerance: float = 1.0e-6
    residual_tolerance: float = 1.0e-6
    max_iterations: int = 100
    newton_finish: bool | None = None
    newton_tolerance: float = 1.0e-10
    newton_max_iterations: int = 20

    def __post_init__(self):
        for name in ("tolerance", "residual_tolerance", "newton_tolerance"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise ValueError(f"picard {name} = {value!r}: must be a finite number > 0")
        for name in ("max_iterations", "newton_max_iterations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"picard {name} = {value!r}: must be an integer >= 1")


@dataclass
class VelocitySolveInfo:
    """What one velocity solve did: Picard iterations, the relative change and relative residual after each one
    (``residuals[0]`` is that of the initial guess), Newton iterations of the finish (0 if none)."""

    picard_iterations: int = 0
    changes: list[float] = field(default_factory=list)
    residuals: list[float] = field(default_factory=list)
    newton_iterations: int = 0
    final_residual: float = float("nan")


class PicardConvergenceError(RuntimeError):
    """The Picard loop did not meet its tolerances within ``max_iterations``; ``info`` holds the history."""

    def __init__(self, message: str, info: VelocitySolveInfo):
        super().__init__(message)
        self.info = info


class VelocitySolver:
    """Solves the SSA momentum balance for ``velocity`` in place, given thickness, bed, friction and rate factor.

    ``friction`` and ``rate_factor`` are UFL expressions (Functions, or exp of a Function for log
    parameterisations); ``inflow_velocity`` is imposed on ``inflow_ids``, the y component is set to zero on
    ``side_wall_ids`` (free slip on walls parallel to the x axis), and ``calving_front_ids`` carry the ice-water
    pressure condition.
    """

    def __init__(self, velocity, thickness, bed, friction, rate_factor, *, inflow_velocity, inflow_ids,
                 side_wall_ids, calving_front_ids, rho_water, options: PicardOptions, adjoint_mode="fixed-point"):
        if adjoint_mode not in ADJOINT_MODES:
            raise ValueError(f"adjoint_mode = {adjoint_mode!r}: allowed values are {ADJOINT_MODES}")
        self.velocity = velocity
        self.options = options
        self.adjoint_mode = adjoint_mode
        self.newton_finish = (adjoint_mode == "fixed-point") if options.newton_finish is None else options.newton_finish

        V = velocity.function_space()
        self.iterate = firedrake.Function(V, name="picard_iterate")
        self.residual_scale = firedrake.Constant(1.0)
        degree_u = V.ufl_element().degree()
        degree_h = thickness.function_space().ufl_element().degree()
        self.quadrature_degree = 3 * (degree_u - 1) + 2 * degree_h  # as icepack: exact for the polynomial parts
        quadrature = {"quadrature_degree": self.quadrature_degree}
        dx = firedrake.dx(metadata=quadrature)

        self.bcs = [firedrake.DirichletBC(V, inflow_velocity, tuple(inflow_ids))]
        if side_wall_ids:
            self.bcs.append(firedrake.DirichletBC(V.sub(1), 0.0, tuple(side_wall_ids)))
        self._bc_mask = _dirichlet_mask(V, self.bcs)

        test, trial = firedrake.TestFunction(V), firedrake.TrialFunction(V)
        grounded = physics.grounded_indicator(thickness, bed, rho_water=rho_water)

        def operator(u, u_coefficients):
            mu = physics.viscosity(u_coefficients, rate_factor)
            beta = physics.sliding_coefficient(u_coefficients, friction)
            return (physics.membrane_term(u, test, thickness, mu)
                    + physics.friction_term(u, test, beta, grounded)) * dx

        load = -physics.driving_stress_term(test, thickness, bed, rho_water=rho_water) * dx
        if calving_front_ids:
            front = firedrake.ds(tuple(calving_front_ids), metadata=quadrature)
            load += physics.terminus_term(test, thickness, bed, rho_water=rho_water) * front
        self._load_form = load
        self._residual_form = operator(velocity, velocity) - load
        self._load_vector = firedrake.Cofunction(V.dual())
        self._residual_vector = firedrake.Cofunction(V.dual())
        # Assemblers built once: firedrake.assemble(form) would prepare the form anew at every Picard iteration
        # (most of a step's time on small meshes); an assembler reads the current values of its coefficients.
        self._load_assembler = get_assembler(self._load_form)
        self._residual_assembler = get_assembler(self._residual_form)

        picard_problem = firedrake.LinearVariationalProblem(operator(trial, self.iterate), load, velocity, self.bcs)
        self._picard_solver = firedrake.LinearVariationalSolver(picard_problem, solver_parameters=DIRECT_SOLVER)

        scaled_residual = (1 / self.residual_scale) * self._residual_form
        newton_problem = firedrake.NonlinearVariationalProblem(scaled_residual, velocity, self.bcs)
        newton_parameters = {"snes_type": "newtonls", "snes_linesearch_type": "bt",
                             "snes_atol": options.newton_tolerance, "snes_rtol": 1.0e-14, "snes_stol": 0.0,
                             "snes_max_it": options.newton_max_iterations, **DIRECT_SOLVER}
        self._newton_solver = firedrake.NonlinearVariationalSolver(newton_problem,
                                                                   solver_parameters=newton_parameters)

    # -- norms -----------------------------------------------------------------------------------------------------
    def _norm(self, array) -> float:
        comm = self.velocity.function_space().mesh().comm
        return float(np.sqrt(comm.allreduce(float(np.sum(array * array)))))

    def load_norm(self) -> float:
        r""":math:`\|\tau_d\|`: Euclidean norm of the assembled load (driving + front stress), Dirichlet rows
        removed."""
        with stop_annotating():
            self._load_assembler.assemble(tensor=self._load_vector)
            return self._norm(np.where(self._bc_mask, 0.0, self._load_vector.dat.data_ro))

    def relative_residual(self) -> float:
        r""":math:`\|F(u)\| / \|\tau_d\|` at the current velocity, Dirichlet rows removed."""
        with stop_annotating():
            self._residual_assembler.assemble(tensor=self._residual_vector)
            residual = self._norm(np.where(self._bc_mask, 0.0, self._residual_vector.dat.data_ro))
        return residual / float(self.residual_scale)

    def _relative_change(self) -> float:
        u, u_old = self.velocity.dat.data_ro, self.iterate.dat.data_ro
        return self._norm(u - u_old) / max(self._norm(u), np.finfo(float).tiny)

    # -- the solve -------------------------------------------------------------------------------------------------
    def solve(self, converged=None) -> VelocitySolveInfo:
        """Picard iterations from the current velocity, then the Newton finish if enabled; returns the history.

        ``converged``: optionally this rank's owned values (``velocity.dat.data_ro``) of the velocity an earlier
        solve at the same thickness and controls converged to; in the fixed-point mode with Newton finish the Picard
        loop is then skipped and Newton starts from it (module docstring), otherwise it is ignored."""
        hinted = converged is not None and self.adjoint_mode == "fixed-point" and self.newton_finish
        if hinted and np.shape(converged) != self.velocity.dat.data_ro.shape:
            raise ValueError(f"converged: shape {np.shape(converged)}; the owned velocity values have shape "
                             f"{self.velocity.dat.data_ro.shape}")
        with stop_annotating():
            self.residual_scale.assign(max(self.load_norm(), np.finfo(float).tiny))
        info = VelocitySolveInfo(residuals=[self.relative_residual()])
        if hinted:
            with stop_annotating():
                self.iterate.dat.data_wo[...] = converged
        else:
            self._picard(info)
        if self.newton_finish:
            if self.adjoint_mode == "fixed-point":
                # Tape the Picard result (or the hint) as the Newton initial guess (an assignment from a copy), so
                # that a replay of the tape with other controls starts Newton from it, not from the step's first guess.
                if not hinted:
                    with stop_annotating():
                        self.iterate.assign(self.velocity)
                self.velocity.assign(self.iterate)
            # The taped adjoint of this solve is linear: solve it directly, not with the Newton options above.
            taping = {"adj_kwargs": {"solver_parameters": DIRECT_SOLVER}} if annotate_tape() else {}
            self._newton_solver.solve(**taping)
            info.newton_iterations = self._newton_solver.snes.getIterationNumber()
        info.final_residual = self.relative_residual()
        return info

    def _picard(self, info: VelocitySolveInfo) -> None:
        """The Picard loop from the current velocity (taped only in the unrolled mode); appends to ``info``."""
        opts = self.options
        threshold = opts.residual_tolerance * max(info.residuals[0], 1.0)
        annotation = nullcontext() if self.adjoint_mode == "unrolled" else stop_annotating()
        with annotation:
            for _ in range(opts.max_iterations):
                self.iterate.assign(self.velocity)
                self._picard_solver.solve()
                info.picard_iterations += 1
                info.changes.append(self._relative_change())
                info.residuals.append(self.relative_residual())
                if info.changes[-1] <= opts.tolerance and info.residuals[-1] <= threshold:
                    break
            else:
                raise PicardConvergenceError(
                    f"Picard iteration for the velocity did not converge in max_iterations = {opts.max_iterations}: "
                    f"last relative change {info.changes[-1]:.3e} (tolerance {opts.tolerance:g}), relative residual "
                    f"{info.residuals[-1]:.3e} (needed <= {threshold:.3e})", info)


def _dirichlet_mask(V, bcs):
    """Boolean array shaped like ``Function(V).dat.data_ro``: True on the owned entries fixed by ``bcs``."""
    shape = firedrake.Function(V).dat.data_ro.shape
    mask = np.zeros(shape, dtype=bool)
    n_owned = shape[0]
    for bc in bcs:
        nodes = bc.nodes[bc.nodes < n_owned]
        component = bc.function_space().component
        if component is None:
            mask[nodes] = True
        else:
            mask[nodes, component] = True
    return mask
