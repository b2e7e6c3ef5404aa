r"""Geometry of ice resting on a bed or floating in sea water (sea level z = 0): the surface elevation, where the ice
is grounded, and the thickness above flotation.  Shared by the shallow-stream and shallow-ice models.

Units: metres; densities in model units (icesheet.constants).  Flotation: ice of thickness :math:`h` over a bed at
:math:`b < 0` floats when :math:`\rho_I h < -\rho_W b` (Archimedes; Greve & Blatter 2009, ch. 6; docs/model.md).
"""
from __future__ import annotations

from ufl import conditional, gt, lt, max_value, tanh

from icesheet import constants

__all__ = ["surface", "grounded_indicator", "smooth_grounded_indicator", "height_above_flotation",
           "thickness_above_flotation"]


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


def height_above_flotation(thickness, bed, rho_ice=constants.ice_density, rho_water=constants.water_density):
    r"""The signed height above flotation :math:`h_f = h + (\rho_W/\rho_I)\,b` (m): positive where the ice is
    grounded (:func:`grounded_indicator` is 1 exactly where :math:`h_f > 0`), the ice thickness that could be
    removed before it floats; negative afloat, where :math:`-h_f` is the thickness missing to reach the bed."""
    return thickness + rho_water / rho_ice * bed


def smooth_grounded_indicator(thickness, bed, width, rho_ice=constants.ice_density,
                              rho_water=constants.water_density):
    r"""A smoothed grounded indicator, :math:`\chi_w = \tfrac12\,(1 + \tanh(h_f / w))` with :math:`h_f` the
    height above flotation (:func:`height_above_flotation`) and ``width`` :math:`w` (m).

    :math:`\chi_w \to` :func:`grounded_indicator` as :math:`w \to 0`; it is 0.5 on the flotation line and within
    0.02 of 0 or 1 where :math:`|h_f| > 2w`.  It is the regularised Heaviside function of level-set methods applied to
    the flotation criterion, a smooth counterpart of the sub-element grounded fraction that Seroussi et al. 2014 (The
    Cryosphere 8, their SEP2 scheme) compute from the linear interpolation of the flotation criterion inside a cell:
    friction fades over a band of :math:`h_f` instead of being cut where the criterion changes sign.  Because it is
    smooth in the thickness, the friction term (and an objective of a run through time) no longer jumps when the
    thickness at a quadrature point crosses flotation (docs/inversion.md)."""
    return 0.5 * (1 + tanh(height_above_flotation(thickness, bed, rho_ice, rho_water) / width))


def thickness_above_flotation(thickness, bed, rho_ice=constants.ice_density, rho_water=constants.water_density):
    r"""Thickness above flotation per unit area: :math:`\max(h + (\rho_W/\rho_I) b, 0)` where :math:`b < 0`, else
    :math:`h` (docs/model.md, section 3); its integral is the volume above flotation (VAF)."""
    return conditional(lt(bed, 0), max_value(thickness + rho_water / rho_ice * bed, 0.0), thickness)
