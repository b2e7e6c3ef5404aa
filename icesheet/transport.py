r"""Weak form of the thickness (mass-continuity) equation, backward Euler in time, continuous Galerkin with SUPG.

.. math::
    \frac{\partial h}{\partial t} + \nabla\cdot(h u) = a

Backward Euler with time step :math:`\delta t` and residual :math:`R(h) = (h - h^\mathrm{old})/\delta t + \nabla\cdot
(h u) - a` gives, for every test function :math:`\phi` of the continuous Lagrange space of :math:`h`,

.. math::
    \int_\Omega \Big(\frac{h - h^\mathrm{old}}{\delta t} - a\Big)\phi - h u\cdot\nabla\phi\,dx
    + \int_{\partial\Omega} \big(\max(u\cdot\nu, 0)\, h + \min(u\cdot\nu, 0)\, h_\mathrm{in}\big)\phi\,ds
    + \int_\Omega \tau\, (u\cdot\nabla\phi)\, R(h)\,dx = 0 .

Why this scheme.  The momentum balance needs :math:`\nabla s` inside each cell and the exact ice-shelf solutions are
polynomials, so the thickness shares the velocity's continuous Lagrange degree (as in icepack); a DG thickness would
need facet jump terms in the driving stress.  Plain Galerkin advection oscillates, so the streamline-upwind
Petrov-Galerkin term (Brooks & Hughes 1982, CMAME 32) adds diffusion along flow lines only.  Its parameter
:math:`\tau` is one of :data:`SUPG_PARAMETERS` (:func:`supg_parameter`):

``"transient"`` (the default)
    :math:`\tau = ((2/\delta t)^2 + (2|u|/\Delta x)^2)^{-1/2}` (Shakib, Hughes & Johan 1991, CMAME 89): it tends to
    :math:`\delta t/2` once the Courant number :math:`|u|\delta t/\Delta x` is small, so short steps take the
    stabilisation away (at 4 km, 500 m/yr and 0.1-year steps it is about 1/100 of the steady value);
``"steady"``
    :math:`\tau = \Delta x / (2|u|)` (Brooks & Hughes 1982, pure advection), independent of the step.

On MISMIP+ Ice1r the choice moves the grounding line's response to the melt by a factor of about two: with short
steps the ``"transient"`` parameter leaves node-to-node oscillations of the thickness where the melt cuts the shelf
next to the grounding line, grounded bumps that hold the grounding line back (docs/mismip.md, "Why Ice1r responds
slowly"); the MISMIP+ scenarios use ``"steady"``.  Backward Euler with SUPG is unconditionally stable, so Courant
numbers well above 1 are fine.

Conservation.  The constant function 1 is in the test space and the SUPG term vanishes for it
(:math:`\nabla 1 = 0`), so :math:`\int h\,dx` changes exactly by :math:`\delta t(\int a\,dx - \text{boundary flux})`:
with closed boundaries (:math:`u\cdot\nu = 0`) and no accumulation the volume is conserved to solver round-off.  The
inflow thickness :math:`h_\mathrm{in}` enters weakly through the inflow flux.

Positivity.  Continuous Galerkin is not positivity preserving: undershoots (thin ice, ablation) can make :math:`h`
negative; icesheet.thickness_solver clamps :math:`h \leftarrow \max(h, 0)` node by node afterwards, which adds the
clamped-off mass (recorded as ``StepInfo.clamped_volume``) and breaks exact conservation only where it acts.
"""
from __future__ import annotations

import ufl
from ufl import CellDiameter, FacetNormal, dot, grad, inner, max_value, min_value, sqrt

__all__ = ["SUPG_PARAMETERS", "supg_parameter", "continuity_residual"]

#: the choices of the SUPG parameter (module docstring); the first is the default
SUPG_PARAMETERS = ("transient", "steady")
#: m/yr: regularises the ``"steady"`` parameter where the ice is at rest (tau u stays bounded by Delta x / 2)
SPEED_FLOOR = 1.0


def supg_parameter(velocity, timestep, kind: str = SUPG_PARAMETERS[0]):
    r"""The SUPG parameter :math:`\tau` in years, :math:`\Delta x` the cell diameter: ``"transient"``,
    :math:`((2/\delta t)^2 + (2|u|/\Delta x)^2)^{-1/2}` (Shakib, Hughes & Johan 1991), or ``"steady"``,
    :math:`\Delta x / (2 (|u|^2 + u_0^2)^{1/2})` with :math:`u_0` = :data:`SPEED_FLOOR` (Brooks & Hughes 1982)."""
    if kind not in SUPG_PARAMETERS:
        raise ValueError(f"supg_parameter = {kind!r}: allowed values are {SUPG_PARAMETERS}")
    mesh = ufl.domain.extract_unique_domain(velocity)
    dx_cell = CellDiameter(mesh)
    if kind == "steady":
        return dx_cell / (2 * sqrt(inner(velocity, velocity) + SPEED_FLOOR**2))
    return 1 / sqrt((2 / timestep) ** 2 + 4 * inner(velocity, velocity) / dx_cell**2)


def continuity_residual(thickness, test, thickness_old, velocity, accumulation, inflow_thickness, timestep,
                        dx=ufl.dx, ds=ufl.ds, supg=SUPG_PARAMETERS[0]):
    r"""The backward-Euler SUPG weak form above, linear in ``thickness`` (which may be a TrialFunction); ``supg``
    names the SUPG parameter (:data:`SUPG_PARAMETERS`)."""
    nu = FacetNormal(ufl.domain.extract_unique_domain(velocity))
    flux = thickness * velocity
    strong_residual = (thickness - thickness_old) / timestep + ufl.div(flux) - accumulation
    u_n = dot(velocity, nu)
    galerkin = ((thickness - thickness_old) / timestep - accumulation) * test * dx - inner(flux, grad(test)) * dx
    boundary = (max_value(u_n, 0) * thickness + min_value(u_n, 0) * inflow_thickness) * test * ds
    supg = supg_parameter(velocity, timestep, supg) * dot(velocity, grad(test)) * strong_residual * dx
    return galerkin + boundary + supg
