r"""Velocity solve of the SSA momentum balance :math:`F(u) = 0`: the Picard loop, accelerated, and Newton's method.

:math:`F(u; v) = \int_\Omega h M(u):\dot\varepsilon(v) + \chi_g\beta(u)\,u\cdot v\,dx - \langle\tau_d, v\rangle` (terms
in icesheet.physics; MacAyeal 1989, J. Geophys. Res. 94(B4)), Dirichlet inflow, free-slip side walls.  Residual
norms are Euclidean norms of the assembled residual with Dirichlet rows removed, divided by :math:`\|\tau_d\|`, the
norm of the load (driving plus front stress: the residual at :math:`u = 0`).  Strategies (``PicardOptions.strategy``;
docs/solvers.md compares them on the marine ice stream):

``"picard"`` (the seed's loop, the reference)
    :math:`u_{k+1} = G(u_k)`, the solution of the *linear* problem :math:`A\{\mu(u_k), \beta(u_k)\}\,u_{k+1} = \tau_d`
    with viscosity and friction coefficient frozen at the iterate, until the relative change
    :math:`\|u_{k+1} - u_k\| / \|u_{k+1}\| \le` ``tolerance`` and the relative residual
    :math:`r_{k+1} \le` ``residual_tolerance`` :math:`\cdot\max(r_0, 1)`; then, in the fixed-point adjoint mode, a
    Newton finish (below) to ``newton_tolerance``.
``"anderson"``
    The same loop with Anderson mixing of depth ``anderson_depth`` of the Picard iterates (Walker & Ni 2011, SIAM J.
    Numer. Anal. 49; icesheet.anderson); the change is the fixed-point residual :math:`\|G(u_k) - u_k\|/\|G(u_k)\|`.
``"picard-newton"`` (the default with block Jacobi, multigrid or ILU preconditioners), ``"anderson-newton"``
    Picard (or Anderson-Picard) iterations only until :math:`r_k \le` ``newton_switch``, i.e. into Newton's basin,
    then Newton's method to ``newton_tolerance`` (no Picard iteration when the initial guess is already there). If
    Newton fails there, the loop resumes to the full Picard tolerances and Newton is tried once more.
``"newton"``
    Newton's method from the initial guess.
``"picard-chord"`` (the default, on one rank and on several: ``solver_options.default_chord``)
    Picard iterations until ``newton_switch`` as above, then Anderson-accelerated chord iterations
    :math:`u \leftarrow u - P^{-1}F(u)`, :math:`P` a factorisation of an earlier Jacobian, refactorised when the
    iteration slows down (:meth:`VelocitySolver._chord_solve`), to ``newton_tolerance``; Newton's method if the
    chord gives up.  :math:`P` is Newton's preconditioner: an exact factorisation (one rank by default; its chord
    steps are Newton steps with an old Jacobian), or on several ranks additive Schwarz or block Jacobi with a
    Cholesky factorisation of each rank's subdomain (``asm-cholesky``, ``bjacobi-cholesky``; Smith, Bjørstad &
    Gropp 1996, *Domain Decomposition*, Cambridge UP), an inexact operator with its own rule
    (``chord_rebuild_inexact``, ``chord_depth_inexact``).  Multigrid and ILU preconditioners are refused.

Newton's method is PETSc's ``newtonls`` (SNES) on the residual divided by :math:`\|\tau_d\|`, with a line search
(``line_search``, backtracking ``"bt"`` by default) and, with a Krylov linear solver, Eisenstat-Walker forcing terms
(Eisenstat & Walker 1996, SIAM J. Sci. Comput. 17) capped at ``newton_linear_tolerance``: the linear solves are
only as accurate as the nonlinear residual needs.  Linear solvers (icesheet.solver_options; the operators are
symmetric positive definite): by default CG preconditioned by a Cholesky factorisation of the Jacobian (on several
ranks, one of each rank's overlapping subdomain: ``preconditioner = "auto"``) that Newton builds at the first Jacobian
of a solve (or keeps from the previous one: below) and keeps while CG converges in at most ``rebuild_iterations``
iterations (``preconditioner_lag = 0``, the adaptive lag: a Newton-Krylov method whose linear solves are CG
iterations with the factorisation of an earlier Jacobian; Kelley 2003, *Solving Nonlinear Equations with Newton's
Method*, SIAM), so that a warm-started solve factorises once or twice instead of at every Newton
iteration; or a direct Cholesky or MUMPS LU solve of every system; or CG / GMRES with a factorisation rebuilt every
``preconditioner_lag`` Jacobians, GAMG (with the rigid-body modes as near-nullspace), ILU or ASM.  The Picard matrix
and the Jacobian keep their sparsity pattern, so PETSc reuses each symbolic factorisation across iterations and steps
and only refactors numerically.

Kept factorisation (``keep_factorisation``, on by default; the adaptive lag and the chord).  In a time loop the
Jacobian changes little from one step to the next, so the factorisation a solve used last is a good preconditioner
(or chord operator) for the next one: a solve that continues the loop starts with it and factorises only when the
iteration says it has gone stale (a slow CG solve, a slow chord step).  "Continues the loop" is tested, not assumed:
the warm start must be, bit for bit, the velocity the previous solve converged to (a CRC-32 of each rank's values
is kept, not the field; tested before a re-taping hint overwrites it), and no adjoint solve may have refactorised
Newton's preconditioner since.  Restoring the bits of the last converged velocity therefore counts as continuing the
loop; a solve from any other restored state (a checkpoint, a repeated step) factorises at its first Jacobian and
repeats its bits.  A recomputed step can thus differ from the forward run's, which continued the loop, but only
within the solve's tolerance, and so can a checkpointed gradient from the store-all one (not to round-off:
tests/adjoint/test_ice_manager.py asserts Revolve's gradient equal to store-all's to 1e-10 relative).

Adjoint modes.  ``"unrolled"`` tapes every Picard linear solve, as a classical AD tool would; it is defined for the
``"picard"`` strategy only (an Anderson step's mixing weights and a line search's step length depend on the iterates
in ways the tape would not see).  ``"fixed-point"`` (every strategy) runs the iterations with annotation off and tapes
one Newton solve of :math:`F(u) = 0` started at the root: its adjoint is a single linear solve with
:math:`(\partial F/\partial u)^T` at the converged velocity (Christianson 1994, Optim. Methods Softw. 3), so tape
memory and adjoint cost do not depend on the iterations, and the gradient does not depend on the strategy.  The root
enters the tape as the Newton initial guess (one taped assignment), so that replays of the tape with other control
values start Newton close to their root; no derivative flows through an initial guess.  With the default adaptive
lag the adjoint solve refactorises Newton's preconditioner in place instead of owning one
(:class:`SharedFactorisation`).

Re-taping a solved step (the checkpoint manager's backward steps).  ``solve(converged=u*)``, with ``u*`` the velocity
this solve produced before at the same thickness and controls, skips the Picard loop in the fixed-point mode: Newton
starts from ``u*`` and stops after 0 (at most a few) iterations.  The result is the root of :math:`F` to the Newton
tolerance whatever ``u*`` is, so a hint only changes the cost.  The unrolled mode and a fixed-point Picard solver
without Newton finish ignore it.

The solvers, their forms, assemblers and the iterate Function are built once and reused; only values are assigned.
"""
from __future__ import annotations

import ctypes
import functools
import zlib
from dataclasses import dataclass, field

import firedrake
from firedrake.assemble import get_assembler
from firedrake.exceptions import ConvergenceError
from firedrake.petsc import PETSc
from mpi4py import MPI
import numpy as np
from pyadjoint import stop_annotating
from pyadjoint.tape import annotate_tape

from icesheet import physics
from icesheet.anderson import AndersonMixing
from icesheet.solver_options import (ADAPTIVE_LAG, ADJOINT_MODES, DEFAULT_STRATEGY, DIRECT_SOLVER, STRATEGIES,
                                     PicardOptions, exact_factorisation, linear_solver_parameters)

__all__ = ["PicardOptions", "PicardConvergenceError", "VelocitySolveInfo", "VelocitySolver", "ADJOINT_MODES",
           "STRATEGIES", "DEFAULT_STRATEGY", "DIRECT_SOLVER"]

#: exponent of the Eisenstat-Walker forcing terms (choice 2; PETSc's default, ``snes_ksp_ew_alpha``)
_EW_ALPHA = (1 + np.sqrt(5)) / 2

_PICARD_PHASE = {"picard": "picard", "anderson": "anderson", "picard-newton": "picard",
                 "anderson-newton": "anderson", "newton": None, "picard-chord": "picard"}


@dataclass
class VelocitySolveInfo:
    """What one velocity solve did: the strategy, Picard (or Anderson) iterations, the relative change and relative
    residual after each one (``residuals[0]`` is that of the initial guess), Newton iterations (0 if none), Krylov
    iterations of all linear solves (0 with MUMPS), whether Newton failed and the Picard loop was resumed."""

    strategy: str = ""
    picard_iterations: int = 0
    changes: list[float] = field(default_factory=list)
    residuals: list[float] = field(default_factory=list)
    newton_iterations: int = 0
    chord_iterations: int = 0
    chord_factorisations: int = 0
    chord_damped_steps: int = 0
    krylov_iterations: int = 0
    fallback: bool = False
    final_residual: float = float("nan")

    @property
    def linear_solves(self) -> int:
        """Linear systems solved: one per Picard, Newton or chord iteration (a chord iteration solves with the
        factorisation of an earlier Jacobian: one triangular-solve pair)."""
        return self.picard_iterations + self.newton_iterations + self.chord_iterations


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
    pressure condition.  Friction acts on grounded ice: the sharp :func:`icesheet.physics.grounded_indicator`, or,
    with ``grounding_width`` :math:`w` (m), :func:`icesheet.physics.smooth_grounded_indicator`.
    """

    def __init__(self, velocity, thickness, bed, friction, rate_factor, *, inflow_velocity, inflow_ids,
                 side_wall_ids, calving_front_ids, rho_water, options: PicardOptions, adjoint_mode="fixed-point",
                 grounding_width=None):
        if adjoint_mode not in ADJOINT_MODES:
            raise ValueError(f"adjoint_mode = {adjoint_mode!r}: allowed values are {ADJOINT_MODES}")
        ranks = velocity.function_space().mesh().comm.size
        self.strategy = options.resolved_strategy(adjoint_mode, ranks=ranks)
        if adjoint_mode == "unrolled" and self.strategy != "picard":
            raise ValueError(f"strategy = {self.strategy!r} with adjoint_mode = 'unrolled': the unrolled adjoint "
                             f"is defined for strategy 'picard' only (use adjoint_mode 'fixed-point')")
        # The chord's operator: an exact factorisation, or (several ranks, subdomain factorisations) a Schwarz one,
        # with its own refactorisation threshold and Anderson depth (VelocitySolver._chord_solve).
        self._chord_exact = exact_factorisation(options.linear_solver, options.preconditioner, ranks)
        self._chord_rebuild, chord_depth = ((options.chord_rebuild, options.chord_depth) if self._chord_exact
                                            else (options.chord_rebuild_inexact, options.chord_depth_inexact))
        self.velocity = velocity
        self.options = options
        self.adjoint_mode = adjoint_mode
        self.picard_phase = _PICARD_PHASE[self.strategy]
        finish = (adjoint_mode == "fixed-point") if options.newton_finish is None else options.newton_finish
        self.newton = finish or self.picard_phase != self.strategy

        V = velocity.function_space()
        self.iterate = firedrake.Function(V, name="picard_iterate")
        self.residual_scale = firedrake.Constant(1.0)
        degree_u = V.ufl_element().degree()
        degree_h = thickness.function_space().ufl_element().degree()
        # Quadrature: icepack's degree 3 (p_u - 1) + 2 p_h (icepack/models/ice_shelf.py, ``quadrature_degree``) for the
        # friction and the loads; p_h + 2 (p_u - 1) for the membrane term h M(u) : eps(v), a polynomial of that
        # degree where the viscosity is constant on a cell (P1 velocity, a rate factor constant on the cell), which
        # that rule integrates exactly (docs/solvers.md: a fifth less Jacobian assembly time).
        self.quadrature_degree = 3 * (degree_u - 1) + 2 * degree_h
        self.membrane_quadrature_degree = degree_h + 2 * (degree_u - 1)
        quadrature = {"quadrature_degree": self.quadrature_degree}
        dx = firedrake.dx(metadata=quadrature)
        dx_membrane = firedrake.dx(metadata={"quadrature_degree": self.membrane_quadrature_degree})

        self.bcs = [firedrake.DirichletBC(V, inflow_velocity, tuple(inflow_ids))]
        if side_wall_ids:
            self.bcs.append(firedrake.DirichletBC(V.sub(1), 0.0, tuple(side_wall_ids)))
        self._bc_mask = _dirichlet_mask(V, self.bcs)

        test, trial = firedrake.TestFunction(V), firedrake.TrialFunction(V)
        grounded = (physics.grounded_indicator(thickness, bed, rho_water=rho_water) if grounding_width is None
                    else physics.smooth_grounded_indicator(thickness, bed, grounding_width, rho_water=rho_water))

        def operator(u, u_coefficients):
            mu = physics.viscosity(u_coefficients, rate_factor)
            beta = physics.sliding_coefficient(u_coefficients, friction)
            return (physics.membrane_term(u, test, thickness, mu) * dx_membrane
                    + physics.friction_term(u, test, beta, grounded) * dx)

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

        krylov = options.linear_solver in ("cg", "gmres")
        cholmod = PETSc.Sys.hasExternalPackage("cholmod")
        package = {"cholesky_package": "cholmod" if cholmod and ranks == 1 else "mumps",
                   "local_cholesky_package": "cholmod" if cholmod else "petsc", "ranks": ranks}
        linear = linear_solver_parameters(options.linear_solver, options.preconditioner, options.linear_tolerance,
                                          **package)
        adjoint_parameters = {**linear, "ksp_rtol": 1.0e-12} if krylov else linear
        self._anderson = AndersonMixing(options.anderson_depth, comm=V.mesh().comm)
        self._anderson_chord = AndersonMixing(chord_depth, comm=V.mesh().comm)

        picard_problem = firedrake.LinearVariationalProblem(operator(trial, self.iterate), load, velocity, self.bcs)
        near_nullspace = rigid_body_modes(V) if krylov and options.preconditioner == "gamg" else None
        self._picard_solver = firedrake.LinearVariationalSolver(picard_problem, solver_parameters=linear,
                                                                near_nullspace=near_nullspace)

        scaled_residual = (1 / self.residual_scale) * self._residual_form
        newton_problem = firedrake.NonlinearVariationalProblem(scaled_residual, velocity, self.bcs)
        newton_parameters = {"snes_type": "newtonls", "snes_linesearch_type": options.line_search,
                             "snes_atol": options.newton_tolerance, "snes_rtol": 1.0e-14, "snes_stol": 0.0,
                             "snes_max_it": options.newton_max_iterations, **linear}
        adaptive = krylov and options.preconditioner_lag == ADAPTIVE_LAG
        if krylov:
            newton_parameters.update(snes_lag_preconditioner=-2 if adaptive else options.preconditioner_lag)
        if options.linear_solver == "cg":
            # The forcing terms bound the unpreconditioned linear residual ||J s + F|| (Eisenstat & Walker 1996);
            # PETSc's CG then also tests convergence before, not after, applying the preconditioner: one triangular
            # solve pair fewer per Newton step with a factorisation.
            newton_parameters["ksp_norm_type"] = "unpreconditioned"
        self._newton_solver = firedrake.NonlinearVariationalSolver(newton_problem, solver_parameters=newton_parameters,
                                                                   near_nullspace=near_nullspace)
        self._krylov = krylov
        self._adjoint_kwargs = {"solver_parameters": adjoint_parameters}
        self._shared_factorisation = None
        self._adaptive_lag = adaptive
        self._last_norm = self._last_forcing = float("nan")  # r_{k-1} and eta_{k-1} of the Newton solve under way
        # The factorisation kept from the previous solve (module docstring, "Kept factorisation"): the fingerprint of
        # the velocity that solve converged to, and whether this solve may still start with that factorisation.
        self._keep = options.keep_factorisation and (adaptive or self.strategy == "picard-chord")
        self._kept_velocity: int | None = None
        self._use_kept = False
        # Whether a Newton iteration or a chord factorisation has run since construction (the preconditioner then holds
        # a factorisation worth keeping; a solve with neither, e.g. plain Picard, leaves nothing to keep).
        self._has_factorisation = False
        self._newton_solver.snes.setUpdate(self._before_newton_iteration)
        if adaptive:
            # The taped adjoint solve (module docstring) by CG preconditioned with Newton's own factorisation.
            self._shared_factorisation = SharedFactorisation(self._newton_solver.snes, on_prepare=self._forget_kept,
                                                             options=self._newton_solver.inserted_options)
            krylov_only = {k: v for k, v in adjoint_parameters.items() if not k.startswith(("pc_", "sub_"))}
            self._adjoint_kwargs = {
                "solver_parameters": {**krylov_only, "pc_type": "python",
                                      "pc_python_type": f"{__name__}.SharedFactorisationPC"},
                "appctx": {"shared_factorisation": self._shared_factorisation}}
        if krylov:
            # An inexact solve (multigrid or Schwarz preconditioners) leaves small corrections on the Dirichlet rows,
            # which drift the boundary values and which Newton did not correct in our runs; zero them in every step.
            dirichlet_rows = np.flatnonzero(self._bc_mask.reshape(-1))

            def keep_dirichlet_values(x, step):
                step.array[dirichlet_rows] = 0.0
                return True

            self._newton_solver.snes.setLineSearchPreCheck(keep_dirichlet_values)

    @classmethod
    def for_model(cls, model, options: PicardOptions, adjoint_mode: str = "fixed-point") -> "VelocitySolver":
        """A solver of ``model``'s (an IceModel's) velocity in place, on its fields and boundaries, with
        ``options``."""
        b = model.boundaries
        return cls(model.velocity, model.thickness, model.bed, model.friction, model.rate_factor,
                   inflow_velocity=model.inflow_velocity, inflow_ids=b.inflow, side_wall_ids=b.side_walls,
                   calving_front_ids=b.calving_front, rho_water=model.water_density, options=options,
                   adjoint_mode=adjoint_mode, grounding_width=model.grounding_width)

    def _before_newton_iteration(self, snes, iteration: int) -> None:
        r"""Called by SNES before each Newton iteration ``k`` (before its Jacobian), with :math:`r_k` the relative
        residual of the iterate:

        - *forcing term* of the Krylov solve (Eisenstat & Walker 1996, SIAM J. Sci. Comput. 17, choice 2 with
          PETSc's constants :math:`\gamma = 1`, :math:`\alpha = (1 + \sqrt 5)/2`, and their safeguard
          :math:`\eta_k \ge \eta_{k-1}^\alpha` when that exceeds 0.1), capped at ``newton_linear_tolerance``
          and, with ``forcing_floor``, at least :math:`\tfrac12` ``newton_tolerance`` :math:`/ r_k` (Kelley 1995,
          *Iterative Methods for Linear and Nonlinear Equations*, SIAM, eq. 6.20: no solve more accurate than the
          nonlinear tolerance needs, which saves most of the Krylov iterations of the last step);
        - the *adaptive preconditioner lag* (``preconditioner_lag = 0``): rebuild the preconditioner at the first
          Jacobian of a solve and after a linear solve that took more than ``rebuild_iterations`` Krylov iterations
          or failed; otherwise keep it (the Newton systems are then solved by CG preconditioned with the
          factorisation of an earlier Jacobian of this solve)."""
        opts = self.options
        residual = snes.getFunctionNorm()
        ksp = snes.getKSP()
        if self._krylov:
            cap = opts.newton_linear_tolerance
            if iteration == 0:
                eta = cap
            else:
                eta = (residual / self._last_norm) ** _EW_ALPHA
                safeguard = self._last_forcing ** _EW_ALPHA
                if safeguard > 0.1:
                    eta = max(eta, safeguard)
                eta = min(eta, cap)
            if opts.forcing_floor:
                eta = max(eta, 0.5 * opts.newton_tolerance / max(residual, np.finfo(float).tiny))
            self._last_forcing = eta
            ksp.setTolerances(rtol=eta)
        self._last_norm = residual
        if self._adaptive_lag:
            if iteration == 0:
                rebuild = not self._take_kept()
            else:
                rebuild = ksp.getIterationNumber() > opts.rebuild_iterations or ksp.getConvergedReason() < 0
            if rebuild:
                _set_lag_preconditioner(snes, -2)  # rebuild at the next Jacobian, then keep (-1)
        self._has_factorisation = True

    # -- norms -----------------------------------------------------------------------------------------------------
    def _norm(self, array) -> float:
        comm = self.velocity.function_space().mesh().comm
        return float(np.sqrt(comm.allreduce(float(np.sum(array * array)))))

    def _fingerprint(self) -> int:
        """A checksum of this rank's velocity values (CRC-32): the solver continues the time loop it left if the warm
        start has the bits of the last converged velocity on every rank (restoring those bits counts as continuing:
        tests/icesheet/test_adjoint_modes.py relies on it)."""
        return zlib.crc32(np.ascontiguousarray(self.velocity.dat.data_ro))

    def _forget_kept(self) -> None:
        """The next solve builds its factorisation anew (called when the adjoint refactorises Newton's
        preconditioner, and at the start of every solve until it has converged)."""
        self._kept_velocity = None

    def _take_kept(self) -> bool:
        """Whether the first Jacobian of this solve's Newton or chord phase may use the kept factorisation (once per
        solve: a Newton solve after a failed chord, or after the Picard fallback, builds its own)."""
        use, self._use_kept = self._use_kept, False
        return use

    def load_norm(self) -> float:
        r""":math:`\|\tau_d\|`: Euclidean norm of the assembled load (driving + front stress), Dirichlet rows
        removed."""
        with stop_annotating():
            self._load_assembler.assemble(tensor=self._load_vector)
            return self._norm(np.where(self._bc_mask, 0.0, self._load_vector.dat.data_ro))

    def relative_residual(self) -> float:
        r""":math:`\|F(u)\| / \|\tau_d\|` at the current velocity, Dirichlet rows removed."""
        return self._scaled_residual()[1]

    def _scaled_residual(self, assemble: bool = True) -> tuple[np.ndarray, float]:
        r"""This rank's entries of :math:`F(u)/\|\tau_d\|` (flat, Dirichlet rows zero) and their global norm, the
        relative residual; ``assemble=False`` reuses the residual vector assembled last."""
        if assemble:
            with stop_annotating():
                self._residual_assembler.assemble(tensor=self._residual_vector)
        residual = np.where(self._bc_mask, 0.0, self._residual_vector.dat.data_ro).reshape(-1)
        residual /= float(self.residual_scale)
        return residual, self._norm(residual)

    # -- the solve -------------------------------------------------------------------------------------------------
    def solve(self, converged=None) -> VelocitySolveInfo:
        """One velocity solve from the current velocity by the strategy (module docstring); returns the history.

        ``converged``: optionally this rank's owned values (``velocity.dat.data_ro``) of the velocity an earlier
        solve at the same thickness and controls converged to; in the fixed-point mode with a Newton phase the
        Picard loop is then skipped and Newton starts from it (module docstring), otherwise it is ignored."""
        hinted = converged is not None and self.adjoint_mode == "fixed-point" and self.newton
        if hinted and np.shape(converged) != self.velocity.dat.data_ro.shape:
            raise ValueError(f"converged: shape {np.shape(converged)}; the owned velocity values have shape "
                             f"{self.velocity.dat.data_ro.shape}")
        # The warm start is tested before a hint overwrites it (module docstring, "Kept factorisation"); every rank
        # takes part in the reduction, whatever its own answer.
        self._use_kept = False
        if self._keep:  # (the same on every rank: the reduction stays matched)
            comm = self.velocity.function_space().mesh().comm
            kept = self._kept_velocity is not None and self._kept_velocity == self._fingerprint()
            self._use_kept = bool(comm.allreduce(int(kept), op=MPI.MIN))
        self._forget_kept()  # until this solve has converged
        with stop_annotating():
            self.residual_scale.assign(max(self.load_norm(), np.finfo(float).tiny))
            if hinted:
                self.velocity.dat.data_wo[...] = converged
        info = VelocitySolveInfo(strategy=self.strategy, residuals=[self.relative_residual()])
        if self.adjoint_mode == "unrolled":
            self._picard_loop(info, to_switch=False)  # taped
            if self.newton:
                self._newton_solve(info)  # taped: the adjoint of the last stretch is that of a Newton solve
        else:
            with stop_annotating():
                self._untaped_iterations(info, hinted)
            if self.newton and annotate_tape():
                self._tape_root(info)
        if not self.newton:  # (Newton and the chord iterations leave their last relative residual in info)
            info.final_residual = self.relative_residual()
        self._use_kept = False
        if self._keep and self._has_factorisation:
            self._kept_velocity = self._fingerprint()
        return info

    def _untaped_iterations(self, info: VelocitySolveInfo, hinted: bool) -> None:
        """The strategy's iterations (Newton's only if ``hinted``), with the fall-back to the full Picard loop when
        Newton fails after a switch."""
        if self.picard_phase is not None and not hinted:
            self._picard_loop(info, to_switch=self.strategy != self.picard_phase)
        if not self.newton:
            return
        start = self.velocity.dat.data_ro.copy()
        try:
            if self.strategy == "picard-chord":
                try:
                    self._chord_solve(info)
                except ConvergenceError:  # Newton, with its line search, from the chord's last iterate
                    self._newton_solve(info)
            else:
                self._newton_solve(info)
        except ConvergenceError:
            if self.strategy == self.picard_phase:
                raise  # a Newton finish after the full Picard loop: nothing left to try
            info.fallback = True
            self.velocity.dat.data_wo[...] = start
            self._picard_loop(info, to_switch=False)
            self._newton_solve(info)

    def _tape_root(self, info: VelocitySolveInfo) -> None:
        """Tape the converged velocity as the Newton initial guess (an assignment from a copy) and one Newton solve
        from it, whose adjoint is the fixed-point adjoint (module docstring); the solve itself takes 0 iterations."""
        with stop_annotating():
            self.iterate.assign(self.velocity)
        self.velocity.assign(self.iterate)
        # The taped adjoint of this solve is linear: solve it to a tight tolerance, not with the Newton options.
        self._newton_solve(info, adj_kwargs=self._adjoint_kwargs)

    def _newton_solve(self, info: VelocitySolveInfo, **taping) -> None:
        snes = self._newton_solver.snes
        try:
            self._newton_solver.solve(**taping)
        finally:
            info.newton_iterations += snes.getIterationNumber()
            info.krylov_iterations += snes.getLinearSolveIterations()
            # SNES's norm of its last residual is the relative residual (the scaled residual, whose Dirichlet rows
            # u - g vanish): no assembly of a residual Newton has just computed.
            info.final_residual = snes.getFunctionNorm()

    def _chord_solve(self, info: VelocitySolveInfo) -> None:
        r"""Anderson-accelerated chord iterations from the current velocity to ``newton_tolerance`` (untaped).

        The chord map :math:`G(u) = u - P^{-1} F(u)` keeps the operator :math:`P` built from the Jacobian at an
        earlier iterate :math:`u_j` (Newton's preconditioner, built in place: one application and one residual per
        iteration, no Jacobian); its iterates are Anderson-mixed (Walker & Ni 2011; the chord method and its Anderson
        acceleration: Kelley 2018, Acta Numerica 27, sections 2 and 5).  On the linear part the mixing with unlimited
        depth is GMRES on :math:`P^{-1}J` (Walker & Ni 2011, Theorem 2.2), which converges for any :math:`P` that is
        not too far from :math:`J`; at depth :math:`m` it is a windowed variant (a least-squares fit over the last
        :math:`m` differences only, restarted at every new operator), for which the theorem gives no such guarantee.
        The rules differ with what :math:`P` is.

        *Exact* (a Cholesky or LU factorisation of :math:`J(u_j)`; depth ``chord_depth``): the Jacobian is assembled
        and factorised again at the current iterate, and the mixing restarted, when a step reduces the relative
        residual by less than the factor ``chord_rebuild``; a step that increases it is undone first.  The first step
        with a new factorisation is a Newton step; if it increases the residual it is halved twice.

        *Schwarz* (additive Schwarz or block Jacobi with a factorisation of each rank's subdomain, on several ranks;
        depth ``chord_depth_inexact``): :math:`P^{-1}J` is not close to the identity even at :math:`u_j` (basic
        additive Schwarz with two overlapping subdomains: eigenvalues in (0, 2]; Smith, Bjørstad & Gropp 1996), so
        slow steps and increases of :math:`\|F\|` come from the decomposition, not from a stale Jacobian.  The
        operator is rebuilt (and the mixing restarted) after a step that increases the residual, undone first, and
        after a step whose ratio exceeds ``chord_rebuild_inexact`` (1 by default: never for a slow step).  The first
        step with a new operator is not a Newton step: it is kept even if it increases the residual (rebuilding at the
        same iterate would repeat it), as long as the residual stays below the one the chord started from.

        Raises ConvergenceError, at the last accepted iterate, when the first step with a new operator fails (a
        damped Newton step that increases the residual; a Schwarz step above the chord's initial residual), after
        ``newton_max_iterations`` factorisations or after ``max_iterations`` chord steps; the caller then runs
        Newton's method with its line search from there.  Expects the residual vector to hold the residual at the
        current velocity (as every caller leaves it)."""
        opts = self.options
        ctx = self._newton_solver._ctx
        jacobian = ctx._jac.petscmat
        pc = self._newton_solver.snes.getKSP().getPC()
        rhs, step = jacobian.createVecs()
        shape = self.velocity.dat.data_ro.shape

        def factorise() -> None:
            ctx._assemble_jac(ctx._jac)  # at the current velocity (the solver's solution Function)
            pc.setOperators(jacobian, jacobian)
            _refactorise(pc, self._newton_solver.inserted_options)
            pc.setReusePreconditioner(True)  # SNES sets the flag again at its next Jacobian
            info.chord_factorisations += 1
            self._has_factorisation = True
            self._anderson_chord.reset()

        # The residual vector holds F at the current velocity: the last relative residual in info was assembled there.
        residual, norm = self._scaled_residual(assemble=False)
        start_norm = norm
        exact = self._chord_exact
        factorise_now = not self._take_kept()
        try:
            while norm > opts.newton_tolerance:
                if info.chord_iterations >= opts.max_iterations:  # stagnation at a ratio <= the rebuild threshold
                    raise ConvergenceError(f"chord iteration: relative residual {norm:.3e} after "
                                           f"{info.chord_iterations} chord steps (max_iterations)")
                fresh = factorise_now  # the first step with a new operator: a Newton step if the operator is exact
                newton_step = fresh and exact
                if factorise_now:
                    if info.chord_factorisations >= opts.newton_max_iterations:
                        raise ConvergenceError(f"chord iteration: relative residual {norm:.3e} after "
                                               f"{info.chord_factorisations} factorisations")
                    factorise()
                    factorise_now = False
                rhs.array[:] = -residual
                pc.apply(rhs, step)
                u = self.velocity.dat.data_ro.reshape(-1).copy()
                self.velocity.dat.data_wo[...] = self._anderson_chord.mix(u, u + step.array_r).reshape(shape)
                info.chord_iterations += 1
                new_residual, new_norm = self._scaled_residual()
                for damping in (0.5, 0.25) if newton_step else ():
                    if new_norm <= norm:
                        break
                    # A full Newton step (far from the root) that increased the residual: backtrack along it.
                    info.chord_damped_steps += 1
                    self.velocity.dat.data_wo[...] = (u + damping * step.array_r).reshape(shape)
                    new_residual, new_norm = self._scaled_residual()
                # A Schwarz operator's first step is kept while the residual stays below the chord's initial one:
                # rebuilding at the same iterate would repeat it, and the mixing needs it.
                kept_increase = fresh and not exact and new_norm <= start_norm
                if new_norm > norm and not kept_increase:
                    self.velocity.dat.data_wo[...] = u.reshape(shape)  # undo
                    if newton_step:
                        raise ConvergenceError(f"chord iteration: a damped Newton step increased the relative "
                                               f"residual from {norm:.3e} to {new_norm:.3e}")
                    if fresh:
                        raise ConvergenceError(f"chord iteration: the first step with a new Schwarz operator "
                                               f"increased the relative residual from {norm:.3e} to {new_norm:.3e}, "
                                               f"above the chord's initial {start_norm:.3e}")
                    factorise_now = True
                    continue
                factorise_now = new_norm > self._chord_rebuild * norm and not kept_increase
                residual, norm = new_residual, new_norm
                info.residuals.append(norm)
            info.final_residual = norm
        finally:
            self._anderson_chord.reset()  # no history (2 chord_depth vectors) held between solves

    def _picard_loop(self, info: VelocitySolveInfo, to_switch: bool) -> None:
        """Picard iterations (Anderson-mixed in the ``anderson*`` strategies) from the current velocity until the
        Picard tolerances are met or, if ``to_switch``, until the relative residual is at most ``newton_switch``;
        taped only in the unrolled mode.  Appends to ``info``."""
        opts = self.options
        anderson = self.picard_phase == "anderson"
        threshold = opts.residual_tolerance * max(info.residuals[0], 1.0)
        if to_switch and info.residuals[-1] <= opts.newton_switch:
            return
        self._anderson.reset()
        for _ in range(opts.max_iterations):
            self.iterate.assign(self.velocity)
            self._picard_solver.solve()
            if self._krylov:  # an inexact solve may leave the Dirichlet values slightly off (see above)
                for bc in self.bcs:
                    bc.apply(self.velocity)
            info.picard_iterations += 1
            info.krylov_iterations += self._picard_solver.snes.ksp.getIterationNumber()
            u, g = self.iterate.dat.data_ro, self.velocity.dat.data_ro
            info.changes.append(self._norm(g - u) / max(self._norm(g), np.finfo(float).tiny))
            residual = None
            if anderson:
                picard_iterate = g.copy()
                self.velocity.dat.data_wo[...] = self._anderson.mix(u.reshape(-1), g.reshape(-1)).reshape(g.shape)
                residual = self.relative_residual()
                if residual > info.residuals[-1]:
                    # Safeguard (ours): mixing made the residual grow (AA is not globally convergent and can stagnate
                    # far from the root): restart the mixing from the plain Picard iterate.
                    self._anderson.reset()
                    self.velocity.dat.data_wo[...] = picard_iterate
                    residual = None
            info.residuals.append(self.relative_residual() if residual is None else residual)
            if to_switch and info.residuals[-1] <= opts.newton_switch:
                return
            if info.changes[-1] <= opts.tolerance and info.residuals[-1] <= threshold:
                return
        raise PicardConvergenceError(
            f"Picard iteration for the velocity did not converge in max_iterations = {opts.max_iterations}: "
            f"last relative change {info.changes[-1]:.3e} (tolerance {opts.tolerance:g}), relative residual "
            f"{info.residuals[-1]:.3e} (needed <= {threshold:.3e})", info)


class SharedFactorisation:
    r"""Newton's preconditioner (with the adaptive lag), lent to the taped adjoint solve
    :math:`(\partial F/\partial u)^T\lambda = \partial J/\partial u` at the root, so that the adjoint owns no
    factorisation of its own (docs/solvers.md, "The adjoint solve with Newton's factorisation").

    By the symmetry of the Jacobian the adjoint operator is the Newton Jacobian at the root.  At every adjoint set-up
    the operator is copied into Newton's Jacobian matrix (same sparsity pattern) and Newton's preconditioner is rebuilt
    from it in place (a numeric refactorisation; the symbolic one is kept); the adjoint solve is CG to a relative
    tolerance of 1e-12 with it (one iteration).  Preconditioning the adjoint with the factorisation Newton last built
    instead (an earlier iterate's or the neighbouring time step's Jacobian) took 12-16 CG iterations at 2 km, cost as
    much as the refactorisation, and left the gradient depending on the schedule at 6e-9 relative (which factorisation
    a backward step finds depends on the recomputations before it); refactorising removes that dependence from the
    adjoint solve (checkpointed gradients still differ from store-all's within the forward solve's tolerance, where a
    recomputed step factorised afresh: module docstring, "Kept factorisation").  Every set-up calls ``on_prepare``
    (the solver then forgets its kept factorisation), so that the next forward solve factorises at its first Jacobian
    and never depends on what the adjoint left.  ``options``: a context manager that puts Newton's PETSc options in
    the database (the solver's ``inserted_options``), under which the preconditioner is set up: a Schwarz
    preconditioner set up there for the first time reads its subdomain solver from them."""

    def __init__(self, snes, on_prepare, options):
        self.snes = snes
        self.on_prepare = on_prepare  #: called at every adjoint set-up (the solver forgets its kept factorisation)
        self.options = options
        self.applications = 0  #: preconditioner applications since the last adjoint set-up (CG iterations + 1)
        self.refactorisations = 0  #: factorisations of an adjoint operator (a count for tests and benchmarks)

    def prepare(self, operator) -> None:
        """Called when an adjoint solve sets up with a new ``operator`` (a PETSc Mat)."""
        jacobian = self.snes.getJacobian()[0]
        operator.copy(jacobian, structure=PETSc.Mat.Structure.SAME_NONZERO_PATTERN)
        ksp = self.snes.getKSP()
        ksp.setOperators(jacobian, jacobian)
        _refactorise(ksp.getPC(), self.options)  # (SNES sets the reuse flag again at its next Jacobian)
        self.refactorisations += 1
        self.applications = 0
        self.on_prepare()

    def apply(self, x, y) -> None:
        self.applications += 1
        self.snes.getKSP().getPC().apply(x, y)


class SharedFactorisationPC(firedrake.PCBase):
    """PETSc Python preconditioner of the taped adjoint solve: applies :class:`SharedFactorisation` (found in the
    solver's application context under ``"shared_factorisation"``)."""

    def initialize(self, pc):
        self.shared = self.get_appctx(pc)["shared_factorisation"]
        self.update(pc)

    def update(self, pc):
        self.shared.prepare(pc.getOperators()[1])

    def apply(self, pc, x, y):
        self.shared.apply(x, y)

    def applyTranspose(self, pc, x, y):  # the operator is symmetric
        self.shared.apply(x, y)


def _refactorise(pc, options) -> None:
    """Factorise ``pc`` anew from its operator (numerically; the symbolic factorisation is kept), with the solver's
    PETSc options in the database (``options``, the solver's ``inserted_options``): a Schwarz or block-Jacobi
    preconditioner set up for the first time reads its subdomain solver (``sub_pc_type``...) from them, else it would
    factorise its subdomains by ILU(0)."""
    pc.setReusePreconditioner(False)
    with options():
        pc.setUp()


def rigid_body_modes(V):
    r"""The rigid-body modes of the plane, :math:`(1, 0)`, :math:`(0, 1)` and :math:`(-y, x)`, orthonormalised, as a
    near-nullspace for smoothed-aggregation multigrid (PETSc's GAMG, ``MatSetNearNullSpace``; Vaněk, Mandel & Brezina
    1996, Computing 56): the SSA membrane operator is that of 2-D linear elasticity with a varying modulus, whose
    kernel without boundary conditions is spanned by these modes (friction and boundary conditions make them only
    nearly singular)."""
    x, y = firedrake.SpatialCoordinate(V.mesh())
    modes = [firedrake.Function(V).interpolate(firedrake.as_vector(mode)) for mode in ((1.0, 0.0), (0.0, 1.0), (-y, x))]
    basis = firedrake.VectorSpaceBasis(modes)
    basis.orthonormalize()
    return basis


def _set_lag_preconditioner(snes, lag: int) -> None:
    """PETSc's ``SNESSetLagPreconditioner(snes, lag)`` (PETSc manual page of that name; petsc4py 3.26 does not wrap
    it): ``-2`` rebuilds the preconditioner at the next Jacobian and then never (lag ``-1``)."""
    integer = ctypes.c_int64 if np.dtype(PETSc.IntType).itemsize == 8 else ctypes.c_int32
    error = _petsc_library().SNESSetLagPreconditioner(ctypes.c_void_p(snes.handle), integer(lag))
    if error:
        raise RuntimeError(f"SNESSetLagPreconditioner(lag = {lag}) failed: PETSc error code {error}")


@functools.cache
def _petsc_library() -> ctypes.CDLL:
    """The petsc4py extension module as a shared library: the libpetsc it links holds PETSc's C functions."""
    return ctypes.CDLL(PETSc.__file__)


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
