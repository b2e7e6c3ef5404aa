"""Exact solutions of the shallow-ice approximation used to verify :mod:`icesheet.sia`.

Both are radially symmetric sheets on a flat bed with Glen exponent n = 3 (Bueler et al. 2005, J. Glaciol. 51(173),
Tests A and B). They are stated in the paper in SI units with A = 1e-16 Pa^-3 a^-1, rho = 910 kg m^-3,
g = 9.81 m s^-2; the dataclasses below hold them in the model's units (metres, years, MPa, icesheet.constants):
A [MPa^-3 yr^-1] = 1e18 A [Pa^-3 yr^-1]; rho [MPa yr^2 m^-2] = 1e-6 rho [kg m^-3] / year^2;
g [m yr^-2] = g [m s^-2] year^2, so that rho g is 1e-6 rho g [Pa/m] in MPa/m whatever the length of the year.

``r`` may be a float, a NumPy array or a UFL expression (for interpolation into a Firedrake Function).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import ufl

from icesheet import constants
from icesheet.physics.sia import flux_coefficient

GLEN_EXPONENT = 3.0
#: Bueler et al. (2005) parameters, converted to metres, years, MPa.
BUELER_RATE_FACTOR = 1e-16 * 1e18  # 1e-16 Pa^-3 a^-1 = 100 MPa^-3 yr^-1
BUELER_DENSITY = constants.density_in_model_units(910.0)  # 910 kg m^-3 in MPa yr^2 m^-2
BUELER_GRAVITY = constants.gravity  # 9.81 m s^-2 in m yr^-2


def _maximum(value, bound: float):
    """max(value, bound) for floats and arrays (NumPy) or UFL expressions."""
    if isinstance(value, (int, float, np.ndarray, np.generic)):
        return np.maximum(value, bound)
    return ufl.max_value(value, bound)


def _check_positive(parameters) -> None:
    for name, value in vars(parameters).items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} = {value!r}: must be a finite number > 0")


@dataclass(frozen=True)
class HalfarDome:
    """Halfar's (1981) similarity solution without accumulation (Bueler et al. 2005, Test B), n = 3:

        H(t, r) = H0 (t/t0)^(-1/9) [1 - ((t/t0)^(-1/18) r / R0)^(4/3)]^(3/7)   (0 where the bracket is negative),
        t0 = (1 / (18 Gamma)) (7/4)^3 R0^4 / H0^7   (about 422.45 years for the defaults).

    The margin is at R(t) = R0 (t/t0)^(1/18). The volume is conserved (the exponents satisfy alpha = 2 beta):
    V = pi R0^2 H0 (3/2) B(3/2, 10/7), with B Euler's beta function (substitute y = (r/R0)^(4/3)).
    A material column moves radially with the similarity variable r t^(-1/18) fixed, so the depth-averaged
    velocity is u = r / (18 t) inside the margin.
    """

    dome_thickness: float = 3600.0  # H0, m
    dome_radius: float = 750e3  # R0, m
    rate_factor: float = BUELER_RATE_FACTOR
    density: float = BUELER_DENSITY
    gravity: float = BUELER_GRAVITY

    def __post_init__(self):
        _check_positive(self)

    @property
    def flux_coefficient(self) -> float:
        return flux_coefficient(self.rate_factor, self.density, self.gravity, GLEN_EXPONENT)

    @property
    def characteristic_time(self) -> float:
        """t0 in years."""
        H0, R0 = self.dome_thickness, self.dome_radius
        return (7.0 / 4.0) ** 3 * R0**4 / (18.0 * self.flux_coefficient * H0**7)

    def margin_radius(self, t: float) -> float:
        return self.dome_radius * (t / self.characteristic_time) ** (1.0 / 18.0)

    def thickness(self, t: float, r):
        """H(t, r) in metres; t in years (absolute time, t > 0), r in metres."""
        tau = t / self.characteristic_time
        shape = 1.0 - (tau ** (-1.0 / 18.0) * r / self.dome_radius) ** (4.0 / 3.0)
        return self.dome_thickness * tau ** (-1.0 / 9.0) * _maximum(shape, 0.0) ** (3.0 / 7.0)

    @property
    def volume(self) -> float:
        """Total volume in m^3 (independent of t)."""
        a, b = 1.5, 10.0 / 7.0
        beta = math.gamma(a) * math.gamma(b) / math.gamma(a + b)
        return math.pi * self.dome_radius**2 * self.dome_thickness * 1.5 * beta


@dataclass(frozen=True)
class SteadyDome:
    """Bueler et al. (2005) Test A: the steady sheet under uniform accumulation M0 with the margin held at r = L:

        H(r) = (4 M0 / Gamma)^(1/8) (L^(4/3) - r^(4/3))^(3/8) for r < L, 0 beyond.
    """

    accumulation: float = 0.3  # M0, m/yr
    margin_radius: float = 750e3  # L, m
    rate_factor: float = BUELER_RATE_FACTOR
    density: float = BUELER_DENSITY
    gravity: float = BUELER_GRAVITY

    def __post_init__(self):
        _check_positive(self)

    @property
    def flux_coefficient(self) -> float:
        return flux_coefficient(self.rate_factor, self.density, self.gravity, GLEN_EXPONENT)

    def thickness(self, r):
        L = self.margin_radius
        scale = (4.0 * self.accumulation / self.flux_coefficient) ** (1.0 / 8.0)
        return scale * _maximum(L ** (4.0 / 3.0) - r ** (4.0 / 3.0), 0.0) ** (3.0 / 8.0)
