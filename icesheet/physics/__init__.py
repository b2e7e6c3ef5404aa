"""Physics of the ice models as small functions returning UFL expressions and forms (no solver, no Firedrake import).

- :mod:`.geometry`: surface elevation, grounded indicator (sharp or smoothed), height and thickness above flotation
  (both models);
- :mod:`.ssa`: the shallow-stream (SSA) momentum balance, solved by icesheet.velocity_solver for ``IceModel``;
- :mod:`.sia`: the shallow-ice (SIA) flux and mass balance, solved by ``icesheet.sia.SIAModel``.

Every term is re-exported here, so ``from icesheet import physics`` then ``physics.viscosity(...)`` reads one
namespace; the formulas and their sources are in each function's docstring and in docs/model.md.
"""
from icesheet.physics.geometry import (grounded_indicator, height_above_flotation, smooth_grounded_indicator, surface,
                                       thickness_above_flotation)
from icesheet.physics.sia import flux_coefficient, sia_flux, sia_mass_balance, sia_velocity
from icesheet.physics.ssa import (driving_stress_term, effective_strain_rate, friction_term, membrane_stress,
                                  membrane_term, sliding_coefficient, strain_rate, terminus_term, viscosity)

__all__ = ["surface", "grounded_indicator", "smooth_grounded_indicator", "height_above_flotation",
           "thickness_above_flotation", "flux_coefficient", "sia_velocity",
           "sia_flux", "sia_mass_balance", "strain_rate", "effective_strain_rate", "viscosity", "membrane_stress",
           "membrane_term", "sliding_coefficient", "friction_term", "driving_stress_term", "terminus_term"]
