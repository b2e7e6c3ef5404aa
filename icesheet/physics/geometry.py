r"""Geometry of ice resting on a bed or floating in sea water (sea level z = 0): the surface elevation, where the ice
is grounded, and the thickness above flotation.  Shared by the shallow-stream and shallow-ice models.

Units: metres; densities in model units (icesheet.constants).  Flotation: ice of thickness :math:`h` over a bed at
:math:`b < 0` floats when :math:`\rho_I h < -\rho_W b` (Archimedes; Greve & Blatter 2009, ch. 6; docs/model.md).
"""
from __future__ import annotations

from ufl import conditional, gt, lt, max_value

from icesheet import constants

__all__ = ["surface", "grounded_indicator", "thickness_above_flotation"]


def surface(thickness, bed, rho_ice=constants.ice_density, rho_water=constants.water_density):
    r"""Surface elevation :math:`s = \max(b + h, (1 - \rho_I/\rho_W) h)`: grounded ice rests on the bed, floating ice
    is in hydrostatic equilibrium with sea level at z = 0."""
    return max_value(bed + thickness, (1 - rho_ice / rho_water) * thickness)


def grounded_indicator(thickness, bed, rho_ice=constants.ice_density, rho_water=constants.water_density):
    r""":math:`\chi_g = 1` where the ice is thicker than flotation, :math:`\rho_I h + \rho_W b > 0`, else 0.

    A sharp switch evaluated at quadrature points, so the grounding line may cross a cell (a sub-element treatment
    of friction in the spirit of Seroussi et al. 2014, The Cryosphere 8).  It depends on the thickness only, so the
    momentum residual stays smooth in the velocity."""
    return conditional(gt(rho_ice * thickness + rho_water * bed, 0), 1.0, 0.0)


def thickness_above_flotation(thickness, bed, rho_ice=constants.ice_density, rho_water=constants.water_density):
    r"""Thickness above flotation per unit area: :math:`\max(h + (\rho_W/\rho_I) b, 0)` where :math:`b < 0`, else
    :math:`h` (docs/model.md, section 3); its integral is the volume above flotation (VAF)."""
    return conditional(lt(bed, 0), max_value(thickness + rho_water / rho_ice * bed, 0.0), thickness)
