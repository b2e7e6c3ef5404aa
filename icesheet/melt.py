r"""Sub-shelf melt rates, as UFL expressions (m/yr of ice), a sink in the continuity equation on floating ice.

MISMIP+ (Asay-Davis et al. 2016, GMD 9, 2471): the melt parameterisation of experiments Ice1r, Ice1ra and Ice1rr,

.. math::
    m = \Omega\,\tanh(H_c / H_{c0})\,\max(z_0 - z_d, 0),\qquad H_c = z_d - b,

with :math:`z_d` the elevation of the ice base (the draft, negative below sea level), :math:`b` the bed,
:math:`H_c` the thickness of the water column under the shelf, :math:`\Omega = 0.2` a\ :sup:`-1`,
:math:`H_{c0} = 75` m and :math:`z_0 = -100` m: no melt above 100 m depth, melt growing linearly with depth below it
and tapering to zero where the water column closes at the grounding line.  The melt applies only where the ice
floats (:func:`icesheet.physics.grounded_indicator` is 0); the model multiplies it by a melt-rate factor field
(a control, ``IceModel.melt_factor``, 1 in MISMIP+).
"""
from __future__ import annotations

from ufl import max_value, tanh

from icesheet import constants, physics

__all__ = ["MISMIP_MELT_RATE", "MISMIP_WATER_COLUMN_SCALE", "MISMIP_MELT_DEPTH", "mismip_melt_rate"]

#: :math:`\Omega`, yr^-1
MISMIP_MELT_RATE = 0.2
#: :math:`H_{c0}`, m
MISMIP_WATER_COLUMN_SCALE = 75.0
#: :math:`z_0`, m (sea level is z = 0)
MISMIP_MELT_DEPTH = -100.0


def mismip_melt_rate(thickness, bed, rate=MISMIP_MELT_RATE, water_column_scale=MISMIP_WATER_COLUMN_SCALE,
                     depth=MISMIP_MELT_DEPTH, rho_ice=constants.ice_density, rho_water=constants.water_density):
    r"""The MISMIP+ Ice1 melt rate :math:`m` (module docstring), m/yr, at thickness ``thickness`` over ``bed``:
    zero where the ice is grounded.  The draft is :math:`z_d = s - h` with :math:`s` from
    :func:`icesheet.physics.surface` (:math:`z_d = -(\rho_I/\rho_W) h` afloat); :math:`H_c` is clipped at 0."""
    draft = physics.surface(thickness, bed, rho_ice, rho_water) - thickness
    water_column = max_value(draft - bed, 0.0)
    floating = 1 - physics.grounded_indicator(thickness, bed, rho_ice, rho_water)
    return floating * rate * tanh(water_column / water_column_scale) * max_value(depth - draft, 0.0)
