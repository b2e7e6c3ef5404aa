"""Shallow-ice approximation (SIA) for grounded ice sheets, implicit in time.

Physics: the SIA flux and mass balance of icesheet/physics/sia.py (Bueler et al. 2005; Halfar 1981), on a bed b
with thickness H, surface s = b + H, and no flux through the domain boundary.

Numerics: continuous P1 thickness, backward Euler in time. Each step solves

    F(H; H_prev, b, a, A) = int_lumped (H - H_prev)/dt phi dx - int q(H) . grad(phi) dx - int a phi dx = 0

for all P1 test functions phi, the time derivative with a lumped mass matrix (vertex quadrature, finat's "KMV"
degree-1 rule). Newton's method solves it with H >= 0 imposed as a variational inequality (PETSc SNES
``vinewtonrsls``, a reduced-space active-set Newton method, bounds 0 <= H): at nodes where the unconstrained step
would give H < 0 (net ablation on ice-free ground, or the undershoot of P1 diffusion ahead of the margin) H is held
at 0 and the node's equation dropped, which adds mass there (StepInfo.clamped_volume). With the lumped time
derivative the advancing margin of a dome does not undershoot: in the Halfar runs of the tests the bound adds no
measurable volume (|clamped volume| < 1e-12 of the volume), whereas with the consistent mass matrix it added
0.2-0.7 % of the volume over 400 years, falling only like h^0.5.

Units: metres, years, MPa (A in MPa^-n yr^-1, rho in MPa yr^2 m^-2, g in m yr^-2, a in m/yr).
"""
from __future__ import annotations

import math
import time

import firedrake as fd
from firedrake import dx
from pyadjoint import annotate_tape, stop_annotating

from icesheet import constants
from icesheet.physics import flux_coefficient, sia_mass_balance, sia_velocity, thickness_above_flotation
from icesheet.timeloop import StepInfo, check_field, run_steps, timestep_function

#: Newton with bounds (reduced-space active set), direct LU solves (MUMPS, so 1 and 2 ranks agree to round-off).
SOLVER_PARAMETERS = {
    "snes_type": "vinewtonrsls",
    "snes_linesearch_type": "bt",
    "snes_max_it": 50,
    "snes_rtol": 1e-10,
    "snes_stol": 1e-10,
    "ksp_type": "preonly",
    "pc_type": "lu",
    "pc_factor_mat_solver_type": "mumps",
}
#: Absolute Newton tolerance relative to int H_prev/dt dx, the size of the time-derivative term summed over the
#: nodes: near steady state the initial residual is small and rtol alone would ask for less than round-off.
_ROUNDOFF_RESIDUAL = 1e-12
#: Volume added by the bound, relative to dt int H_prev/dt dx, below which the bound counts as inactive.
_BOUND_INACTIVE = 1e-10
#: Upper bound handed to the variational inequality (no upper constraint in practice), m.
_NO_UPPER_BOUND = 1e20


class SIAModel:
    """Grounded ice sheet evolved by the SIA (module docstring) with backward Euler and a bounded Newton solve.

    State (the contract with the checkpoint manager): ``model.state == (thickness,)``; :meth:`step` overwrites it in
    place. Controls held as Functions in the forms: ``thickness`` (initial state), ``accumulation`` (m/yr),
    ``rate_factor`` (A, MPa^-n yr^-1); ``bed`` (m) is fixed data. Forms and the solver are built once here.

    Adjoint: Firedrake cannot differentiate a variational inequality, so the bounded Newton solve runs untaped and,
    when pyadjoint is annotating, one unconstrained Newton solve of F = 0 (a second solver, built once) is taped,
    started from the bounded solution. When the bound is inactive (it added no volume: every nodal residual is zero,
    as in the Halfar runs) that solve stops at iteration 0, so the taped step equals the untaped one and its adjoint
    is the exact one of the step. A taped step where the bound is active (e.g. net ablation on bare ground) raises
    RuntimeError instead of taping a different step.
    """

    def __init__(self, thickness, bed, accumulation, rate_factor, *, density: float = constants.ice_density,
                 gravity: float = constants.gravity, glen_exponent: float = constants.glen_flow_law,
                 solver_parameters: dict | None = None):
        space = thickness.function_space()
        element = space.ufl_element()
        if (element.family() != "Lagrange" or element.degree() != 1 or space.value_shape != ()
                or str(space.mesh().ufl_cell()) != "triangle"):
            raise ValueError(f"thickness: must be a scalar P1 Function on a triangle mesh, got a Function on "
                             f"{element}")
        for name, value in (("density", density), ("gravity", gravity)):
            if not value > 0:
                raise ValueError(f"{name}: must be positive, got {value}")
        if not glen_exponent >= 1:
            raise ValueError(f"glen_exponent: must be >= 1, got {glen_exponent}")
        self.glen_exponent = float(glen_exponent)
        self.thickness = fd.Function(space, name="thickness").assign(thickness)
        self.bed = fd.Function(space, name="bed").interpolate(bed)
        self.accumulation = fd.Function(space, name="accumulation").interpolate(accumulation)
        self.rate_factor = fd.Function(space, name="rate_factor").interpolate(rate_factor)
        check_field("thickness", self.thickness, minimum=0.0)
        check_field("bed", self.bed)
        check_field("accumulation", self.accumulation)
        check_field("rate_factor", self.rate_factor, minimum=0.0, strict=True)
        self.thickness_previous = fd.Function(space, name="thickness_previous")
        self._timestep = timestep_function(space.mesh())
        self.coefficient = flux_coefficient(self.rate_factor, density, gravity, self.glen_exponent)
        residual = sia_mass_balance(self.thickness, self.thickness_previous, self.bed, self.accumulation,
                                    self.coefficient, self.glen_exponent, self._timestep, fd.TestFunction(space))
        problem = fd.NonlinearVariationalProblem(residual, self.thickness)
        self._solver = fd.NonlinearVariationalSolver(
            problem, solver_parameters=dict(SOLVER_PARAMETERS, **(solver_parameters or {})),
            options_prefix="sia_")
        self._solver.snes.setConvergenceHistory(reset=True)
        self._taped_solver = fd.NonlinearVariationalSolver(
            problem, solver_parameters=dict(SOLVER_PARAMETERS, **{**(solver_parameters or {}), "snes_type": "newtonls"}),
            options_prefix="sia_taped_")
        self.time = 0.0
        self.surface = fd.Function(space, name="surface")
        self.grounded = fd.Function(space, name="grounded").assign(1.0)
        self.velocity_space = fd.VectorFunctionSpace(space.mesh(), "DG", 0)
        self.velocity = fd.Function(self.velocity_space, name="velocity")
        self._velocity_expression = sia_velocity(self.thickness, self.bed + self.thickness, self.coefficient,
                                                 self.glen_exponent)
        self._volume_form = self.thickness * dx
        self._vaf_form = thickness_above_flotation(self.thickness, self.bed, rho_ice=density) * dx
        self._residual_scale = self.thickness_previous / self._timestep * dx
        self._mass_defect = (self.thickness - self.thickness_previous - self._timestep * self.accumulation) * dx
        self._update_diagnostics()
        self._bounds = (fd.Function(space).assign(0.0), fd.Function(space).assign(_NO_UPPER_BOUND))

    @property
    def state(self) -> tuple[fd.Function]:
        return (self.thickness,)

    @property
    def mesh(self):
        return self.thickness.function_space().mesh()

    @property
    def thickness_space(self):
        return self.thickness.function_space()

    def step(self, dt: float) -> StepInfo:
        """Advance the thickness by one backward-Euler step of dt years (in place).

        StepInfo: ``picard_iterations`` 0 (no Picard loop), ``newton_iterations`` and ``residual_history`` (SNES
        residual norms) of the bounded Newton solve, ``clamped_volume`` the volume the bound added,
        int (H - H_prev) dx - dt int a dx (m^3; >= 0, zero when the bound is inactive).
        """
        if isinstance(dt, bool) or not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
            raise ValueError(f"dt: must be a positive number of years, got {dt!r}")
        start = time.perf_counter()
        self._timestep.assign(float(dt))
        self.thickness_previous.assign(self.thickness)
        with stop_annotating():
            residual_scale = fd.assemble(self._residual_scale)
        for solver in (self._solver, self._taped_solver):
            solver.snes.setTolerances(atol=_ROUNDOFF_RESIDUAL * residual_scale)
        with stop_annotating():
            self._solver.solve(bounds=self._bounds)
            mass_defect = fd.assemble(self._mass_defect)
        if annotate_tape():
            if abs(mass_defect) > _BOUND_INACTIVE * residual_scale * dt:
                raise RuntimeError(
                    f"SIA step with annotation: the bound H >= 0 is active (it added {mass_defect:.3e} m^3); "
                    "the adjoint of the variational inequality is not available, only steps where it is inactive "
                    "can be taped")
            self._taped_solver.solve()
        self.time += float(dt)
        self._update_diagnostics()
        snes = self._solver.snes
        residuals = [float(r) for r in snes.getConvergenceHistory()[0]]
        return StepInfo(dt=float(dt), picard_iterations=0, residual_history=residuals,
                        newton_iterations=snes.getIterationNumber(),
                        final_residual=residuals[-1] if residuals else float("nan"),
                        clamped_volume=float(mass_defect), wall_time=time.perf_counter() - start)

    def run(self, steps: int, dt: float, progress: bool = False, on_step=None) -> list[dict]:
        """``steps`` steps of ``dt`` years, with the records of IceModel.run (:func:`icesheet.timeloop.run_steps`)."""
        return run_steps(self, steps, dt, progress=progress, on_step=on_step)

    def volume(self) -> float:
        """Ice volume int H dx over the mesh (m^3)."""
        with stop_annotating():
            return float(fd.assemble(self._volume_form))

    def volume_above_flotation(self) -> float:
        """Volume above flotation (docs/model.md, section 3) with this model's ice density, m^3."""
        with stop_annotating():
            return float(fd.assemble(self._vaf_form))

    def output_fields(self) -> dict:
        """Thickness, surface b + H, depth-averaged velocity (:func:`sia_velocity`, cellwise: vector DG0) and the
        grounded mask (1 everywhere: the SIA sheet is grounded), for plots and VTK (icesheet.output)."""
        self._update_diagnostics()
        return {"thickness": self.thickness, "surface": self.surface, "velocity": self.velocity,
                "grounded": self.grounded}

    def _update_diagnostics(self) -> None:
        """Surface and velocity (diagnostic Functions, not state) for the current thickness; not taped."""
        with stop_annotating():
            self.surface.interpolate(self.bed + self.thickness)
            self.velocity.interpolate(self._velocity_expression)
