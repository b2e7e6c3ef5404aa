"""UFL terms of the shallow-ice approximation (SIA) for grounded ice sheets, one small function per term.

Isothermal SIA (Bueler et al. 2005, J. Glaciol. 51(173), 291-306; Halfar 1981): on a bed b, with thickness H and
surface s = b + H, the ice flux and depth-averaged velocity are

    q = -D grad s,   D = Gamma H^(n+2) |grad s|^(n-1),   u = q / H = -Gamma H^(n+1) |grad s|^(n-1) grad s,
    Gamma = 2 A (rho g)^n / (n + 2),

and mass conservation is the degenerate nonlinear diffusion problem dH/dt = div(D grad s) + a with H >= 0
(a: surface mass balance). The domain boundary carries no flux (q . nu = 0): symmetry planes of a quarter domain,
or an outer edge kept ice-free.

Units: metres, years, MPa (A in MPa^-n yr^-1, rho in MPa yr^2 m^-2, g in m yr^-2, a in m/yr).
"""
from __future__ import annotations

from ufl import dx, grad, inner

__all__ = ["flux_coefficient", "sia_velocity", "sia_flux", "sia_mass_balance"]


def _power(base, exponent: float):
    """base**exponent with an integer exponent when the value is integral (exact derivative at base = 0)."""
    return base ** (int(exponent) if float(exponent).is_integer() else exponent)


def flux_coefficient(rate_factor, density: float, gravity: float, glen_exponent: float):
    """Gamma = 2 A (rho g)^n / (n + 2) (Bueler et al. 2005); m^-n yr^-1 for A in MPa^-n yr^-1."""
    return 2 * rate_factor * (density * gravity) ** glen_exponent / (glen_exponent + 2)


def sia_velocity(thickness, surface, coefficient, glen_exponent: float):
    """Depth-averaged SIA velocity u = -Gamma H^(n+1) |grad s|^(n-1) grad s (m/yr)."""
    n = glen_exponent
    slope_squared = inner(grad(surface), grad(surface))
    return -coefficient * _power(thickness, n + 1) * _power(slope_squared, (n - 1) / 2) * grad(surface)


def sia_flux(thickness, surface, coefficient, glen_exponent: float):
    """SIA ice flux q = H u = -Gamma H^(n+2) |grad s|^(n-1) grad s (m^2/yr)."""
    return thickness * sia_velocity(thickness, surface, coefficient, glen_exponent)


def sia_mass_balance(thickness, thickness_previous, bed, accumulation, coefficient, glen_exponent: float, timestep,
                     test_function):
    """Backward-Euler weak form of dH/dt + div q = a with no boundary flux and a lumped time derivative:

    int_lumped (H - H_prev)/dt phi dx - int q . grad(phi) dx - int a phi dx, with q = sia_flux(H, b + H, Gamma, n).
    """
    flux = sia_flux(thickness, bed + thickness, coefficient, glen_exponent)
    lumped = dx(scheme="KMV", degree=1)
    return ((thickness - thickness_previous) / timestep * test_function * lumped
            - inner(flux, grad(test_function)) * dx
            - accumulation * test_function * dx)
