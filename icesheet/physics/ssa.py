r"""UFL terms of the shallow-shelf / shallow-stream approximation (SSA), one small function per physical term.

Units: metres, years, MPa (icesheet.constants).  The momentum balance of the depth-integrated SSA is
(MacAyeal 1989, J. Geophys. Res. 94(B4); Greve & Blatter 2009, Dynamics of Ice Sheets and Glaciers, ch. 6)

.. math::
    \nabla\cdot(h M) + \tau_b - \rho_I g h \nabla s = 0,\qquad
    M = 2\mu(\dot\varepsilon + \mathrm{tr}(\dot\varepsilon) I),

with the calving-front condition :math:`h M\nu = (\tfrac12\rho_I g h^2 - \tfrac12\rho_W g d^2)\nu` where :math:`d` is
the depth of the ice base below sea level (z = 0).  Multiplying by a test function :math:`v` and integrating by parts
gives the weak residual assembled from the terms below:

.. math::
    F(u; v) = \int_\Omega h M(u):\dot\varepsilon(v) + \beta\,u\cdot v + \rho_I g h\nabla s\cdot v\,dx
              - \int_{\Gamma_\mathrm{front}} (\tfrac12\rho_I g h^2 - \tfrac12\rho_W g d^2)\,v\cdot\nu\,ds .

The viscosity :math:`\mu` and the linearised friction coefficient :math:`\beta` take the velocity they are evaluated
at as an argument separately from the velocity they multiply: the Picard method evaluates them at the previous
iterate and the full residual at the unknown itself (icesheet.velocity_solver).
"""
from __future__ import annotations

import ufl
from ufl import Identity, dot, grad, inner, min_value, sqrt, sym, tr

from icesheet import constants
from icesheet.physics.geometry import surface

__all__ = [
    "strain_rate", "effective_strain_rate", "viscosity", "membrane_stress", "membrane_term",
    "sliding_coefficient", "friction_term", "driving_stress_term", "terminus_term",
]


def strain_rate(u):
    r"""Depth-averaged horizontal strain rate :math:`\dot\varepsilon = \tfrac12(\nabla u + \nabla u^T)`, yr^-1."""
    return sym(grad(u))


def effective_strain_rate(u, strain_rate_min=constants.strain_rate_min):
    r""":math:`\dot\varepsilon_e = \sqrt{(\dot\varepsilon:\dot\varepsilon + \mathrm{tr}(\dot\varepsilon)^2
    + \dot\varepsilon_\mathrm{min}^2)/2}`, the second invariant of the 3-D strain rate of a plug flow
    (incompressibility gives :math:`\dot\varepsilon_{zz} = -\mathrm{tr}\dot\varepsilon`), regularised by
    :math:`\dot\varepsilon_\mathrm{min}` (docs/model.md, section 4)."""
    eps = strain_rate(u)
    return sqrt((inner(eps, eps) + tr(eps) ** 2 + strain_rate_min**2) / 2)


def viscosity(u, rate_factor, n=constants.glen_flow_law):
    r"""Glen's-law viscosity :math:`\mu = \tfrac12 A^{-1/n}\dot\varepsilon_e^{1/n - 1}` (MPa yr) at velocity ``u``."""
    return 0.5 * rate_factor ** (-1 / n) * effective_strain_rate(u) ** (1 / n - 1)


def membrane_stress(u, mu):
    r"""Membrane stress :math:`M = 2\mu(\dot\varepsilon(u) + \mathrm{tr}(\dot\varepsilon(u)) I)`, MPa."""
    eps = strain_rate(u)
    return 2 * mu * (eps + tr(eps) * Identity(eps.ufl_shape[0]))


def membrane_term(u, v, thickness, mu):
    r"""Integrand :math:`h M(u):\dot\varepsilon(v)` of the membrane (viscous) stress divergence."""
    return thickness * inner(membrane_stress(u, mu), strain_rate(v))


def sliding_coefficient(u, friction, m=constants.weertman_sliding_law, speed_min=constants.sliding_speed_min):
    r"""Weertman law :math:`\tau_b = -\beta u` with :math:`\beta = C (|u|^2 + u_\mathrm{min}^2)^{(1/m - 1)/2}`,
    i.e. :math:`\tau_b = -C|u|^{1/m - 1}u` (docs/model.md, section 4) regularised at zero speed."""
    return friction * (inner(u, u) + speed_min**2) ** ((1 / m - 1) / 2)


def friction_term(u, v, beta, grounded):
    r"""Integrand :math:`\chi_g \beta\, u\cdot v` of basal friction; :math:`\chi_g` is 1 where grounded, 0 afloat."""
    return grounded * beta * inner(u, v)


def driving_stress_term(v, thickness, bed, rho_ice=constants.ice_density, rho_water=constants.water_density,
                        g=constants.gravity):
    r"""Integrand :math:`\rho_I g h \nabla s\cdot v` of the gravitational driving stress :math:`\tau_d = -\rho_I g h
    \nabla s`.

    With :math:`s` from :func:`surface` this is the grounded form where the ice is grounded and the floating form
    :math:`\rho_I(1 - \rho_I/\rho_W) g h\nabla h = \nabla(\tfrac12\rho' g h^2)` where it floats (icepack's ice-shelf
    gravity term), switching where :math:`b + h = (1 - \rho_I/\rho_W) h`, i.e. at flotation."""
    return rho_ice * g * thickness * inner(grad(surface(thickness, bed, rho_ice, rho_water)), v)


def terminus_term(v, thickness, bed, rho_ice=constants.ice_density, rho_water=constants.water_density,
                  g=constants.gravity):
    r"""Facet integrand :math:`(\tfrac12\rho_I g h^2 - \tfrac12\rho_W g d^2)\,v\cdot\nu` of the calving-front stress
    (ice overburden minus sea-water pressure, both depth-integrated), :math:`d = \min(s - h, 0)` the ice base's
    elevation where it is below sea level (Greve & Blatter 2009, ch. 6; icepack's ``terminus``)."""
    nu = ufl.FacetNormal(ufl.domain.extract_unique_domain(v))
    base = min_value(surface(thickness, bed, rho_ice, rho_water) - thickness, 0.0)
    stress = 0.5 * g * (rho_ice * thickness**2 - rho_water * base**2)
    return stress * dot(v, nu)
