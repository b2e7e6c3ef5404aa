r"""A stable time step by construction for the shallow-stream model, and a physics guard for runs.

The time step (icesheet/model.py) solves the velocity :math:`u^n` at the thickness :math:`h^n`, then the thickness
implicitly, :math:`(h^{n+1} - h^n)/\delta t + \nabla\cdot(h^{n+1}u^n) = a` (backward Euler with SUPG,
icesheet/transport.py).  Two limits bound :math:`\delta t`:

**Momentum-thickness coupling** (explicit, the binding one).  The advection is implicit and unconditionally stable,
but the velocity sees only the old thickness: the driving stress :math:`\rho_I g h\nabla s` is taken at
:math:`h^n`.  Robinson, Goldberg & Lipscomb (2022, The Cryosphere 16, 689-709) study exactly this coupling for
depth-integrated solvers with an explicit mass-conservation step (finding an SSA limit independent of the grid,
and an SIA-like limit quadratic in it where the flow is dominated by basal drag or vertical shear); Cheng,
Lötstedt & von Sydow (2017, J. Comput. Phys. 329, 29-47) analyse the same question for the full-Stokes surface
update.  The bound below is our own von Neumann analysis for our operators, in their manner: linearise the SSA
about a uniform state (thickness :math:`H`, speed :math:`U`, viscosity :math:`\mu`, basal drag :math:`\beta`) and
perturb the thickness by :math:`\hat h e^{ikx}`; the velocity perturbation along :math:`k` solves

.. math::
    \Big(\frac{4\mu H}{n} k^2 + \chi_g\frac{\beta}{m}\Big)\hat u = -i k\,\rho_I g H\theta\,\hat h,
    \qquad \theta = 1 \text{ grounded}, \quad \theta = 1 - \rho_I/\rho_W \text{ afloat},

(:math:`4\mu H k^2` is the membrane stress of a longitudinal perturbation, :math:`M = 2\mu(\dot\varepsilon +
\mathrm{tr}\,\dot\varepsilon I)`; the factors :math:`1/n` and :math:`1/m` are the tangents of Glen's and Weertman's
laws along the flow, :math:`\partial\tau/\partial\dot\varepsilon = \tau/(n\dot\varepsilon)`, which make the
converged nonlinear solve respond more strongly than the secant coefficients :math:`\mu, \beta`).  The mass balance
then gives :math:`\hat h^{n+1}(1 + ikU\delta t) = (1 - \lambda\delta t)\hat h^n` with the coupling rate

.. math::
    \lambda(k) = \frac{\rho_I g H^2\theta\,k^2}{4\mu H k^2/n + \chi_g\beta/m},

increasing in :math:`k`: stability for every mode needs :math:`|1 - \lambda\delta t| \le 1`, i.e.
:math:`\delta t \le 2/\lambda(k_\mathrm{max})` (ignoring the damping of the implicit advection, which only helps).
In the viscous limit :math:`\lambda \to 3\rho_I g H\theta/(4\mu)` for n = 3, independent of the mesh (as Robinson
et al. find for the SSA and DIVA); where friction dominates, :math:`\lambda \approx \rho_I g H^2\theta k^2 m/\beta`,
a diffusion limit :math:`\delta t \propto \Delta x^2` with the diffusivity :math:`\rho_I g H^2 m/\beta`, of the
same form as the explicit SIA's (its diffusivity :math:`D` is in icesheet/sia.py, after Bueler et al. 2005).  On
the mesh we take the largest resolved wavenumber :math:`k_\mathrm{max}^2 = 2\pi^2/\ell^2` (a checkerboard mode,
:math:`\ell` the shortest edge of a cell) and evaluate :math:`\lambda` cell by cell at the current thickness and
velocity: :math:`\delta t_\mathrm{coupling} = \sigma\cdot 2/\max_K \lambda_K` with :math:`\sigma` =
:data:`COUPLING_FRACTION` = 1, the linear limit itself: the tangent moduli already make it about 3 times shorter
than the secant ones would.  Measured on the marine ice stream (benchmarks/bench_stability.py): the largest
:math:`\lambda` sits next to the inflow boundary, where the imposed velocity makes the strain rate large; at 5 km
the bound is 2.2-4 yr, and the issue's dt = 10 yr run, stable for 17 steps, blew up at step 18.

**Transport** (accuracy and positivity).  Backward Euler with SUPG is stable at any Courant number, but the
undershoots that the thickness clamp :math:`h \leftarrow \max(h, 0)` removes (adding volume) grow with it, so
:math:`\delta t_\mathrm{transport} = C_\mathrm{max}\min_K \ell_K/|u|_K` (:data:`COURANT_MAX`, the CFL-type bound).

A requested time step longer than :math:`\min(\delta t_\mathrm{coupling}, \delta t_\mathrm{transport})` is split
into equal sub-steps (:func:`substeps`); the bound is re-evaluated before every step from the state at hand.
:class:`AdaptiveTimesteps` instead takes every step as a fixed fraction of the bound at the state it starts from, so
that the number of steps to reach a given time is known only once the run has reached it (the online checkpointer's
case, checkpointing/online.py).

**Physics guard** (:class:`Guard`): after every step a run stops with :class:`icesheet.errors.PhysicsGuardError`
when the clamp added more than a stated fraction of the volume, or the volume, thickness or speed left physical
bounds (non-finite, or beyond any ice on Earth).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from icesheet import constants
from icesheet.errors import InputError, PhysicsGuardError

__all__ = ["COUPLING_FRACTION", "COURANT_MAX", "MAX_SUBSTEPS", "TimeStepLimit", "rounded_down", "time_step_limit",
           "initial_time_step_limit",
           "field_maxima", "substeps", "AdaptiveTimesteps",
           "Guard"]

#: fraction of the linear stability limit 2/lambda_max taken as the coupling bound
COUPLING_FRACTION = 1.0
#: largest Courant number |u| dt / l of the transport step
COURANT_MAX = 2.0
#: a run refuses a time step that needs more sub-steps than this
MAX_SUBSTEPS = 1000


def rounded_down(value: float) -> float:
    """``value`` rounded down to 3 significant digits (a bound quoted in a message must hold as written)."""
    if not 0 < value < math.inf:
        return value
    scale = 10 ** (math.floor(math.log10(value)) - 2)
    return math.floor(value / scale) * scale


@dataclass(frozen=True)
class TimeStepLimit:
    """The time-step bounds (years) at one state: ``coupling`` and ``transport`` (``math.inf`` when the model has no
    such limit, e.g. the fully implicit SIA model or ice at rest)."""

    coupling: float
    transport: float

    @property
    def dt(self) -> float:
        return min(self.coupling, self.transport)

    def describe(self) -> str:
        which = "momentum-thickness coupling" if self.coupling <= self.transport else "transport Courant number"
        return (f"stable time step {rounded_down(self.dt):.3g} yr (coupling bound {rounded_down(self.coupling):.3g} "
                f"yr, transport bound {rounded_down(self.transport):.3g} yr; limited by the {which}; "
                "icesheet/stability.py)")


def coupling_rate(thickness, velocity, bed, friction, rate_factor, water_density):
    r"""UFL expression of the coupling rate :math:`\lambda` (yr^-1) of the module docstring at
    :math:`k_\mathrm{max}^2 = 2\pi^2/\ell^2`."""
    import ufl

    from icesheet import physics

    mesh = ufl.domain.extract_unique_domain(thickness)
    wavenumber2 = 2 * math.pi**2 / ufl.MinCellEdgeLength(mesh) ** 2
    grounded = physics.grounded_indicator(thickness, bed, rho_water=water_density)
    theta = grounded + (1 - grounded) * (1 - constants.ice_density / water_density)
    mu = physics.viscosity(velocity, rate_factor)
    beta = physics.sliding_coefficient(velocity, friction)
    stiffness = (4 * mu * thickness / constants.glen_flow_law * wavenumber2
                 + grounded * beta / constants.weertman_sliding_law)
    return constants.ice_density * constants.gravity * thickness**2 * theta * wavenumber2 / stiffness


def courant_rate(velocity):
    r""":math:`|u|/\ell` (yr^-1), the inverse of the time a cell is crossed."""
    import ufl

    mesh = ufl.domain.extract_unique_domain(velocity)
    return ufl.sqrt(ufl.inner(velocity, velocity)) / ufl.MinCellEdgeLength(mesh)


def _cell_maximum(expression, mesh) -> float:
    """Max over the cells (and ranks) of ``expression`` interpolated into piecewise constants."""
    import firedrake
    from mpi4py import MPI
    from pyadjoint import stop_annotating

    with stop_annotating():
        values = firedrake.Function(firedrake.FunctionSpace(mesh, "DG", 0)).interpolate(expression).dat.data_ro
    local = float(values.max()) if values.size else 0.0
    return mesh.comm.allreduce(local, op=MPI.MAX)


def time_step_limit(model, coupling_fraction: float = COUPLING_FRACTION,
                    courant_max: float = COURANT_MAX) -> TimeStepLimit:
    """The bounds at the model's current thickness and velocity (solve the velocity first when it is only a guess).
    Models without ``friction`` (the implicit SIA model) have no bound: both are ``math.inf``."""
    if not hasattr(model, "velocity_solver"):
        return TimeStepLimit(math.inf, math.inf)
    rate = _cell_maximum(coupling_rate(model.thickness, model.velocity, model.bed, model.friction,
                                       model.rate_factor, model.water_density), model.mesh)
    crossing = _cell_maximum(courant_rate(model.velocity), model.mesh)
    return TimeStepLimit(coupling_fraction * 2 / rate if rate > 0 else math.inf,
                         courant_max / crossing if crossing > 0 else math.inf)


def initial_time_step_limit(model, **options) -> TimeStepLimit:
    """:func:`time_step_limit` at the model's current thickness with its velocity solved, the state (velocity
    included) put back afterwards, so a checkpointed run starts from the very same ``x_0``."""
    if not hasattr(model, "solve_velocity"):
        return time_step_limit(model, **options)
    saved = model.state_arrays()
    try:
        from pyadjoint import stop_annotating

        with stop_annotating():
            model.solve_velocity()
        return time_step_limit(model, **options)
    finally:
        model.set_state_arrays(saved)


def field_maxima(model) -> tuple[float, float]:
    """The largest thickness (m) and speed (m/yr, 0 for models without a velocity) over the nodes and ranks."""
    import numpy as np

    def largest(values) -> float:
        return math.nan if not np.isfinite(values).all() else (float(values.max()) if values.size else 0.0)

    velocity = getattr(model, "velocity", None)
    speed = np.sqrt((velocity.dat.data_ro ** 2).sum(axis=1)) if velocity is not None else np.zeros(0)
    maxima = model.mesh.comm.allgather((largest(model.thickness.dat.data_ro), largest(speed)))
    return tuple(math.nan if any(math.isnan(m[i]) for m in maxima) else max(m[i] for m in maxima) for i in (0, 1))


def substeps(dt: float, limit: float, maximum: int | None = None) -> int:
    """The number of equal sub-steps of a step ``dt`` for each to be at most ``limit``; InputError if more than
    ``maximum`` would be needed."""
    if not limit < math.inf:
        return 1
    n = max(1, math.ceil(dt / limit))
    n = n - 1 if n > 1 and dt / (n - 1) <= limit * (1 + 1e-14) else n
    if maximum is not None and n > maximum:
        raise InputError(f"dt = {dt:g} yr: {n:g} sub-steps of the stable time step {limit:.3g} yr would be needed, "
                         f"at most {maximum} are allowed; use --dt <= {rounded_down(maximum * limit):.3g} "
                         "(and more --steps)")
    return n


class AdaptiveTimesteps:
    r"""The rule :math:`\delta t_i = \min(\phi\,\delta t_\mathrm{stable}(x_i),\ \delta t_\mathrm{max},\ T - t_i)`,
    :math:`t_{i+1} = t_i + \delta t_i` from :math:`t_0 = 0`, ending the run (``None``) once :math:`t_i` reaches
    :math:`T` = ``end`` (years): :math:`\delta t_\mathrm{stable}` is :func:`time_step_limit` at the model's current
    thickness and velocity (the previous step's, the next Picard guess) and :math:`\phi` = ``fraction``.  Called
    as ``rule(i, state)`` once per step, in order (checkpointing.adjoint.AdaptiveTimeLoop's ``next_timestep``);
    ``timesteps`` records the steps given."""

    def __init__(self, model, end: float, fraction: float = 1.0, dt_max: float = math.inf):
        for name, value in (("end", end), ("fraction", fraction)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} = {value!r}: must be a finite number > 0")
        if not dt_max > 0:
            raise ValueError(f"dt_max = {dt_max!r}: must be > 0")
        self.model, self.end, self.fraction, self.dt_max = model, float(end), float(fraction), float(dt_max)
        self.timesteps: list[float] = []
        self.time = 0.0

    def __call__(self, index: int, state=None) -> float | None:
        if index != len(self.timesteps):
            raise ValueError(f"index = {index}: the rule has given {len(self.timesteps)} steps; it is called once "
                             "per step, in order")
        remaining = self.end - self.time
        if remaining <= 1e-9 * self.end:
            return None
        dt = min(self.fraction * time_step_limit(self.model).dt, self.dt_max, remaining)
        self.timesteps.append(dt)
        self.time += dt
        return dt


@dataclass(frozen=True)
class Guard:
    """Physical bounds checked after every step: the volume added by the clamp at most ``max_clamp_fraction`` of
    the volume; thickness at most ``max_thickness`` m (the thickest ice on Earth is under 5 km); speed at most
    ``max_speed`` m/yr (the fastest outlet glaciers flow about 2e4 m/yr); volume and fields finite."""

    max_clamp_fraction: float = 0.01
    max_thickness: float = 1.0e4
    max_speed: float = 1.0e5

    def check_step(self, model, step: int, volume: float, clamped_volume: float) -> None:
        """:meth:`check` after step ``step`` of ``model``.  The clamp counts for the shallow-stream model only: the
        SIA model's bound H >= 0 removes ablation on ice-free ground by design (icesheet/sia.py), not undershoots."""
        clamped = clamped_volume if hasattr(model, "velocity_solver") else 0.0
        self.check(step, model.time, volume, clamped, *field_maxima(model))

    def check(self, step: int, time: float, volume: float, clamped_volume: float, max_thickness: float,
              max_speed: float) -> None:
        """Raise PhysicsGuardError naming the step, the quantity, its value and the bound."""
        where = f"step {step} (t = {time:g} yr)"
        advice = "use a smaller time step (--dt) or a coarser mesh"
        if not all(math.isfinite(v) for v in (volume, clamped_volume, max_thickness, max_speed)):
            raise PhysicsGuardError(f"{where}: the solution is not finite (volume {volume:g} m^3, max thickness "
                                    f"{max_thickness:g} m, max speed {max_speed:g} m/yr): the run is unstable; "
                                    f"{advice}")
        if volume <= 0:
            raise PhysicsGuardError(f"{where}: the ice volume is {volume:g} m^3: all ice is gone")
        if clamped_volume > self.max_clamp_fraction * volume:
            raise PhysicsGuardError(f"{where}: the thickness clamp h = max(h, 0) added {clamped_volume:.3g} m^3, "
                                    f"{clamped_volume / volume:.2%} of the volume (allowed: "
                                    f"{self.max_clamp_fraction:.2%}): the thickness update is unstable; {advice}")
        if max_thickness > self.max_thickness:
            raise PhysicsGuardError(f"{where}: the thickness reaches {max_thickness:.3g} m (allowed: "
                                    f"{self.max_thickness:g} m): the run is unstable; {advice}")
        if max_speed > self.max_speed:
            raise PhysicsGuardError(f"{where}: the speed reaches {max_speed:.3g} m/yr (allowed: "
                                    f"{self.max_speed:g} m/yr): the run is unstable; {advice}")
