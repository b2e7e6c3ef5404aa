r"""Physical constants and Glen's rate factor, in one unit system: metres, years, megapascals.

The values follow icepack's conventions (docs/model.md, section 2).  Stresses are in MPa, so densities carry the
factor ``1e-6 / year**2`` that makes :math:`\rho g h` come out in MPa for :math:`g` in m yr\ :sup:`-2`; with these
units the rate factor :math:`A` is of order one (MPa\ :sup:`-3` yr\ :sup:`-1`) for typical ice temperatures.
"""
from __future__ import annotations

import math

#: seconds in a (Julian) year
year = 365.25 * 24 * 3600
#: acceleration due to gravity, m yr^-2
gravity = 9.81 * year**2
#: density of ice, MPa yr^2 m^-2 (917 kg m^-3)
ice_density = 917 / year**2 * 1.0e-6
#: density of sea water, MPa yr^2 m^-2 (1024 kg m^-3)
water_density = 1024 / year**2 * 1.0e-6
#: ideal gas constant, kJ mol^-1 K^-1
ideal_gas = 8.3144621e-3
#: Glen's flow-law exponent n
glen_flow_law = 3.0
#: Weertman sliding-law exponent m (tau_b = -C |u|^(1/m - 1) u)
weertman_sliding_law = 3.0
#: regularising strain rate in Glen's law, yr^-1
strain_rate_min = 1.0e-5
#: regularising sliding speed in Weertman's law, m yr^-1 (keeps |u|^(1/m - 1) finite at u = 0)
sliding_speed_min = 1.0e-3

#: temperature separating the cold and warm branches of the Arrhenius law, K
transition_temperature = 263.15
_A0_cold = 3.985e-13 * year * 1.0e18  # MPa^-3 yr^-1
_A0_warm = 1.916e3 * year * 1.0e18
_Q_cold = 60.0  # kJ mol^-1
_Q_warm = 139.0


def density_in_model_units(kg_per_m3: float) -> float:
    """Convert a density from kg m^-3 to the model's MPa yr^2 m^-2."""
    return kg_per_m3 / year**2 * 1.0e-6


def rate_factor(temperature: float) -> float:
    r"""Glen's rate factor :math:`A(T) = A_0 \exp(-Q / (R T))` in MPa^-3 yr^-1 for a temperature in kelvin.

    Cuffey & Paterson (2010), eq. 3.35; below 263.15 K :math:`A_0 = 3.985\times10^{-13}` Pa^-3 s^-1, Q = 60 kJ/mol,
    above it :math:`A_0 = 1.916\times10^{3}` Pa^-3 s^-1, Q = 139 kJ/mol.  A(254.15 K) is about 5.86 MPa^-3 yr^-1.
    """
    if not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature = {temperature!r}: must be a finite positive number of kelvin")
    cold = temperature < transition_temperature
    A0, Q = (_A0_cold, _Q_cold) if cold else (_A0_warm, _Q_warm)
    return A0 * math.exp(-Q / (ideal_gas * temperature))
