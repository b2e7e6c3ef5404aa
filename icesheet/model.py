r"""The shallow-stream ice-flow model: fields, one time step, the time loop and diagnostics.

One step of length :math:`\delta t` (years), as in the seed talk's algorithm:

1. velocity :math:`u^n` from the SSA momentum balance at thickness :math:`h^n` (icesheet.velocity_solver: Picard
   iterations from the previous velocity, optional Newton finish);
2. thickness :math:`h^{n+1}` from :math:`(h^{n+1} - h^n)/\delta t + \nabla\cdot(h^{n+1}u^n) = a` (backward Euler,
   icesheet.thickness_solver), clamped at zero.

The time-loop state (docs/model.md, section 1) is ``state = (thickness, velocity)``: the velocity is the next Picard
initial guess, so restoring both repeats a step (bit for bit from a restored state; a step that continued the time
loop with the velocity solver's kept factorisation, to the solve's tolerance: docs/solvers.md).  ``step`` reads and
overwrites these two Functions in place; ``step(dt, hint=...)``, the hint taken by ``retape_hint()`` on the state the
step produces, re-runs a step whose result is known, skipping its Picard loop in the fixed-point adjoint mode (for
re-taping by the checkpoint manager).  Control fields appear directly in the forms: ``friction`` (Weertman C, MPa
m^-1/3 yr^1/3) or ``log_friction`` (theta, C = exp(theta)), ``rate_factor`` (A, MPa^-3 yr^-1) or ``log_rate_factor``,
``accumulation`` (a, m/yr), ``melt_factor`` (f, dimensionless; only when the model has a sub-shelf melt term) and the
initial thickness.  With a melt term :math:`m(h, b)` (icesheet.melt) the continuity equation's source is
:math:`a - f\,m(h^n, b)`, the melt evaluated at the thickness at the start of the step, so the thickness update stays
one linear solve; with the ``"no-partial"`` treatment of the grounding line (icesheet.melt) the melt is switched off in
cells with a grounded vertex at :math:`h^n`.  All Functions, forms and solvers are built in the constructor and reused.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import firedrake
import numpy as np
import ufl
from pyadjoint import stop_annotating

from icesheet import constants, physics
from icesheet.errors import InvalidFieldError
from icesheet.melt import GROUNDING_LINE_MELT, FloatingCells, no_partial_melt, sub_element_melt
from icesheet.solver_options import THICKNESS_LINEAR_SOLVERS
from icesheet.thickness_solver import ThicknessSolver
from icesheet.timeloop import StepInfo, check_field, run_steps
from icesheet.transport import SUPG_PARAMETERS
from icesheet.velocity_solver import ADJOINT_MODES, PicardOptions, VelocitySolver

__all__ = ["IceModel", "StepInfo", "Boundaries", "InvalidFieldError", "PARAMETERISATIONS"]

PARAMETERISATIONS = ("linear", "log")


@dataclass(frozen=True)
class Boundaries:
    """Boundary ids of the mesh: Dirichlet inflow, free-slip side walls (parallel to x), calving front."""

    inflow: tuple[int, ...]
    calving_front: tuple[int, ...] = ()
    side_walls: tuple[int, ...] = ()


class IceModel:
    """Shallow-stream model on ``mesh`` with continuous Lagrange elements of ``degree`` for thickness and velocity.

    Field arguments are UFL expressions or numbers, interpolated into Functions that the model owns:
    ``thickness`` h (m, >= 0), ``bed`` b (m, sea level z = 0), ``friction`` C (>= 0; > 0 for the log
    parameterisation), ``rate_factor`` A (> 0), ``accumulation`` a (m/yr), ``inflow_velocity`` (vector, m/yr, imposed
    on ``boundaries.inflow``), ``inflow_thickness`` (m, the thickness of ice entering through inflow boundaries),
    ``velocity`` (initial Picard guess, default zero).  ``water_density`` in model units (constants).  ``melt``:
    optionally a sub-shelf melt rate, a function ``melt(thickness, bed, rho_water=...)`` returning a UFL expression in
    m/yr (e.g. :func:`icesheet.melt.mismip_melt_rate`), multiplied by the field ``melt_factor`` (>= 0).
    ``grounding_width``: None (default) for the sharp grounded indicator in the friction term, or a width in metres of
    height above flotation for the smoothed one (icesheet.physics.smooth_grounded_indicator); the diagnostics
    (grounded area and mask) and the sub-shelf melt keep the sharp indicator.  ``melt_at_grounding_line``: how the
    melt treats cells the grounding line crosses, ``"sub-element"`` (default) or ``"no-partial"`` (no melt in a cell
    with a grounded vertex; icesheet.melt, after Seroussi & Morlighem 2018).  ``supg_parameter``: the thickness
    update's SUPG parameter, ``"transient"`` (default) or ``"steady"`` (icesheet.transport);
    ``thickness_linear_solver`` its linear solver, ``"gmres-ilu"`` (default) or ``"mumps"``
    (icesheet.thickness_solver, icesheet.solver_options.THICKNESS_LINEAR_SOLVERS).
    """

    def __init__(self, mesh, *, thickness, bed, friction, rate_factor, accumulation, inflow_velocity,
                 inflow_thickness, boundaries: Boundaries, velocity=None, degree: int = 1,
                 water_density: float = constants.water_density, melt=None, melt_factor=1.0,
                 friction_parameterisation: str = "linear",
                 rate_factor_parameterisation: str = "linear", adjoint_mode: str = "fixed-point",
                 picard: PicardOptions = PicardOptions(), grounding_width: float | None = None,
                 melt_at_grounding_line: str = GROUNDING_LINE_MELT[0], supg_parameter: str = SUPG_PARAMETERS[0],
                 thickness_linear_solver: str = THICKNESS_LINEAR_SOLVERS[0]):
        for name, value, allowed in (("friction_parameterisation", friction_parameterisation, PARAMETERISATIONS),
                                     ("melt_at_grounding_line", melt_at_grounding_line, GROUNDING_LINE_MELT),
                                     ("supg_parameter", supg_parameter, SUPG_PARAMETERS),
                                     ("thickness_linear_solver", thickness_linear_solver, THICKNESS_LINEAR_SOLVERS),
                                     ("rate_factor_parameterisation", rate_factor_parameterisation,
                                      PARAMETERISATIONS),
                                     ("adjoint_mode", adjoint_mode, ADJOINT_MODES)):
            if value not in allowed:
                raise ValueError(f"{name} = {value!r}: allowed values are {allowed}")
        if grounding_width is not None and not (isinstance(grounding_width, (int, float)) and
                                                math.isfinite(grounding_width) and grounding_width > 0):
            raise ValueError(f"grounding_width = {grounding_width!r}: a width in metres > 0, or None (sharp)")
        if isinstance(degree, bool) or not isinstance(degree, int) or degree < 1:
            raise ValueError(f"degree = {degree!r}: must be an integer >= 1")
        self.mesh = mesh
        self.boundaries = boundaries
        self.water_density = water_density
        self.adjoint_mode = adjoint_mode
        self.supg_parameter = supg_parameter
        self.thickness_linear_solver = thickness_linear_solver
        self.grounding_width = None if grounding_width is None else float(grounding_width)
        self.time = 0.0
        Q = firedrake.FunctionSpace(mesh, "CG", degree)
        V = firedrake.VectorFunctionSpace(mesh, "CG", degree)
        self.thickness_space, self.velocity_space = Q, V

        def field_in(space, name, value):
            if not isinstance(value, ufl.core.expr.Expr):
                value = firedrake.Constant(value)
            return firedrake.Function(space, name=name).interpolate(value)

        with stop_annotating():
            self.thickness = field_in(Q, "thickness", thickness)
            self.velocity = firedrake.Function(V, name="velocity")
            if velocity is not None:
                self.velocity.interpolate(velocity)
            self.bed = field_in(Q, "bed", bed)
            self.accumulation = field_in(Q, "accumulation", accumulation)
            self.inflow_velocity = field_in(V, "inflow_velocity", inflow_velocity)
            self.inflow_thickness = field_in(Q, "inflow_thickness", inflow_thickness)
            friction_values = field_in(Q, "friction", friction)
            rate_factor_values = field_in(Q, "rate_factor", rate_factor)
            self.melt_factor = field_in(Q, "melt_factor", melt_factor) if melt is not None else None
        check_field("thickness", self.thickness, minimum=0.0)
        check_field("velocity", self.velocity)
        check_field("bed", self.bed)
        check_field("accumulation", self.accumulation)
        check_field("inflow_velocity", self.inflow_velocity)
        check_field("inflow_thickness", self.inflow_thickness, minimum=0.0)
        check_field("friction", friction_values, minimum=0.0, strict=friction_parameterisation == "log")
        check_field("rate_factor", rate_factor_values, minimum=0.0, strict=True)
        if self.melt_factor is not None:
            check_field("melt_factor", self.melt_factor, minimum=0.0)

        self.log_friction = self.log_rate_factor = None
        if friction_parameterisation == "log":
            with stop_annotating():
                self.log_friction = field_in(Q, "log_friction", firedrake.ln(friction_values))
            self.friction = firedrake.exp(self.log_friction)
        else:
            self.friction = friction_values
        if rate_factor_parameterisation == "log":
            with stop_annotating():
                self.log_rate_factor = field_in(Q, "log_rate_factor", firedrake.ln(rate_factor_values))
            self.rate_factor = firedrake.exp(self.log_rate_factor)
        else:
            self.rate_factor = rate_factor_values

        #: the sub-shelf melt f m(h, b) (UFL, m/yr) or None
        self.melt_at_grounding_line = melt_at_grounding_line
        self.floating_cells = None
        if melt is None:
            self.melt_rate = None
        else:
            rate = melt(self.thickness, self.bed, rho_water=water_density)
            if melt_at_grounding_line == "no-partial":
                with stop_annotating():
                    self.floating_cells = FloatingCells(self.thickness, self.bed, rho_water=water_density)
                rate = no_partial_melt(rate, self.floating_cells.cells)
            else:
                rate = sub_element_melt(rate)
            self.melt_rate = self.melt_factor * rate
        self._mass_balance = self.accumulation if melt is None else self.accumulation - self.melt_rate
        self.reset_solvers(picard)

        self.surface = firedrake.Function(Q, name="surface")
        self.grounded = firedrake.Function(Q, name="grounded")
        #: the surface elevation s(h) of the current thickness (UFL, m; icesheet.physics.surface): the model's
        #: observation operator of surface-elevation data (icesheet.observations)
        self.surface_expression = physics.surface(self.thickness, self.bed, rho_water=water_density)
        self._grounded_expr = physics.grounded_indicator(self.thickness, self.bed, rho_water=water_density)
        self._grounded_area_form = self._grounded_expr * firedrake.dx
        self._volume_form = self.thickness * firedrake.dx
        self._vaf_form = physics.thickness_above_flotation(self.thickness, self.bed,
                                                           rho_water=water_density) * firedrake.dx

    # -- the contract ----------------------------------------------------------------------------------------------
    @property
    def state(self) -> tuple:
        """The time-loop state ``(thickness, velocity)``; ``step`` overwrites these Functions in place."""
        return (self.thickness, self.velocity)

    def controls(self) -> dict:
        """The control Functions by name: friction (or log_friction), rate_factor (or log_rate_factor),
        accumulation, melt_factor (with a melt term), and thickness (the initial thickness is the state's thickness
        before the first step)."""
        controls = {}
        controls.update({"log_friction": self.log_friction} if self.log_friction is not None
                        else {"friction": self.friction})
        controls.update({"log_rate_factor": self.log_rate_factor} if self.log_rate_factor is not None
                        else {"rate_factor": self.rate_factor})
        controls.update(accumulation=self.accumulation)
        if self.melt_factor is not None:
            controls.update(melt_factor=self.melt_factor)
        controls.update(thickness=self.thickness)
        return controls

    def solve_velocity(self):
        """The velocity for the current thickness (in place); returns the solver's VelocitySolveInfo."""
        return self.velocity_solver.solve()

    def step(self, dt: float, hint=None) -> StepInfo:
        """Advance by ``dt`` years: velocity solve at the current thickness, then the thickness update.

        ``hint``: optionally what :meth:`retape_hint` returned on the state this step produces from the current one
        (the checkpoint manager re-taping a step it ran before).  It is the converged velocity of this step; in the
        fixed-point adjoint mode the Picard loop is then skipped and only the taped Newton solve runs, started from
        it (``picard_iterations == 0``; icesheet.velocity_solver).  The result is the same to the Newton tolerance;
        the unrolled mode ignores the hint."""
        if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
            raise ValueError(f"dt = {dt!r}: the time step must be a finite number of years > 0")
        start = time.perf_counter()
        self.update_floating_cells()
        velocity_info = self.velocity_solver.solve(converged=hint)
        clamped = self.thickness_solver.solve(float(dt))
        with stop_annotating():  # only for melt_rate between steps: the next step recomputes it, taped, first
            self.update_floating_cells()
        self.time += float(dt)
        return StepInfo(dt=float(dt), picard_iterations=velocity_info.picard_iterations,
                        picard_changes=velocity_info.changes, residual_history=velocity_info.residuals,
                        newton_iterations=velocity_info.newton_iterations,
                        chord_iterations=velocity_info.chord_iterations,
                        final_residual=velocity_info.final_residual, clamped_volume=clamped,
                        wall_time=time.perf_counter() - start)

    def update_floating_cells(self) -> None:
        """With the ``"no-partial"`` melt treatment, recompute its cell indicator from the current thickness.  Every
        step does it first (the melt of a step is that of the thickness it starts from, whatever wrote that
        thickness) and last, and so do ``set_state_arrays`` and ``load_state``: call it after writing the thickness
        in another way before evaluating ``melt_rate``.  Taped like the step (icesheet.melt.FloatingCells)."""
        if self.floating_cells is not None:
            self.floating_cells.update()

    def reset_solvers(self, picard: PicardOptions | None = None) -> None:
        """Build the velocity solver (with ``picard``, by default the current solver's options) and the thickness
        solver on the model's fields; the constructor builds them here.  After a failed solve (e.g. a factorisation
        of a matrix from an absurd trial thickness) PETSc's direct solvers can be left in a state where every later
        solve fails (MUMPS: ``INFOG(1) = -3``); an optimiser that tries such points calls this before going on."""
        picard = self.velocity_solver.options if picard is None else picard
        self.velocity_solver = VelocitySolver.for_model(self, picard, self.adjoint_mode)
        self.thickness_solver = self.thickness_solver_for()

    def thickness_solver_for(self, mass_balance=None, linear_solver=None) -> ThicknessSolver:
        """A thickness solver on the model's fields, its inflow and SUPG parameter, with ``mass_balance`` (m/yr, a UFL
        expression; by default the model's accumulation minus melt) and ``linear_solver`` (by default the model's
        ``thickness_linear_solver``; a name or a PETSc options dictionary: icesheet.thickness_solver)."""
        mass_balance = self._mass_balance if mass_balance is None else mass_balance
        linear_solver = self.thickness_linear_solver if linear_solver is None else linear_solver
        return ThicknessSolver(self.thickness, self.velocity, mass_balance, self.inflow_thickness,
                               supg=self.supg_parameter, linear_solver=linear_solver)

    def retape_hint(self):
        """A copy of this rank's velocity values: on a state ``x_{i+1}`` produced by a step, the velocity that step
        converged to, which ``step(dt, hint=...)`` from ``x_i`` can start from instead of iterating (one velocity
        field of memory)."""
        return self.velocity.dat.data_ro.copy()

    # -- diagnostics -----------------------------------------------------------------------------------------------
    def volume(self) -> float:
        r"""Ice volume :math:`\int_\Omega h\,dx`, m^3."""
        with stop_annotating():
            return float(firedrake.assemble(self._volume_form))

    def volume_above_flotation(self) -> float:
        """Volume above flotation (docs/model.md, section 3), m^3."""
        with stop_annotating():
            return float(firedrake.assemble(self._vaf_form))

    def grounded_area(self) -> float:
        r"""Area where the ice is grounded, :math:`\int_\Omega \chi_g\,dx` (m^2; icesheet.physics.grounded_indicator)."""
        with stop_annotating():
            return float(firedrake.assemble(self._grounded_area_form))

    def output_fields(self) -> dict:
        """Thickness, surface elevation, velocity and grounded mask (1 grounded, 0 afloat), for plots and VTK."""
        with stop_annotating():
            self.surface.interpolate(self.surface_expression)
            self.grounded.interpolate(self._grounded_expr)
        return {"thickness": self.thickness, "surface": self.surface, "velocity": self.velocity,
                "grounded": self.grounded}

    def run(self, n_steps: int, dt: float, progress: bool = True, on_step=None, stable: bool = True,
            guard=None) -> list[dict]:
        """``n_steps`` steps of ``dt`` years (see :func:`run_steps`)."""
        return run_steps(self, n_steps, dt, progress=progress, on_step=on_step, stable=stable, guard=guard)

    # -- state copies ----------------------------------------------------------------------------------------------
    def state_arrays(self) -> tuple[np.ndarray, ...]:
        """Copies of this rank's values of the state Functions (for in-memory checkpoints)."""
        return tuple(f.dat.data_ro.copy() for f in self.state)

    def set_state_arrays(self, arrays) -> None:
        """Write arrays from ``state_arrays`` back into the state Functions (not annotated)."""
        with stop_annotating():
            for f, values in zip(self.state, arrays, strict=True):
                f.dat.data_wo[...] = values
            self.update_floating_cells()

    def save_state(self, path) -> None:
        """Write the mesh and the state Functions to a firedrake.CheckpointFile (HDF5)."""
        with firedrake.CheckpointFile(str(path), "w", comm=self.mesh.comm) as out:
            out.save_mesh(self.mesh)
            for f in self.state:
                out.save_function(f)

    def load_state(self, path) -> None:
        """Read thickness and velocity saved by ``save_state`` (on this mesh or another covering the domain) into
        the state, interpolating onto this model's mesh; checks that the thickness is finite and >= 0."""
        try:
            with firedrake.CheckpointFile(str(path), "r", comm=self.mesh.comm) as src:
                mesh = src.load_mesh()
                loaded = [src.load_function(mesh, f.name()) for f in self.state]
        except Exception as err:  # h5py and PETSc raise their own errors for a garbage or foreign file
            raise InvalidFieldError(f"initial state {str(path)!r}: not a state file written by IceModel.save_state "
                                    f"({type(err).__name__}: {' '.join(str(err).split())[:200]})") from err
        with stop_annotating():
            for f, g in zip(self.state, loaded):
                f.interpolate(g)
        check_field("thickness", self.thickness, minimum=0.0, source=str(path))
        check_field("velocity", self.velocity, source=str(path))
        with stop_annotating():
            self.update_floating_cells()
