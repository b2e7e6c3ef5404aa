"""Builders of the SIA scenarios (icesheet.scenarios): validated parameters -> SIAModel."""
from __future__ import annotations

import math

import firedrake

from icesheet import constants
from icesheet.sia import SIAModel
from icesheet.sia_exact import HalfarDome

__all__ = ["halfar_dome", "halfar_dome_exact"]


def halfar_dome_exact(parameters: dict) -> HalfarDome:
    """The exact solution (Bueler et al. 2005, Test B) for the ``[ice]`` table of ``halfar_dome.toml``."""
    ice = parameters["ice"]
    return HalfarDome(dome_thickness=ice["dome_thickness"], dome_radius=ice["dome_radius"],
                      rate_factor=ice["rate_factor"], density=constants.density_in_model_units(ice["density"]))


def halfar_dome(parameters: dict, **model_options) -> SIAModel:
    """Quarter of a Halfar dome on [0, length]^2 (centre at the origin), starting from the exact thickness at
    t0 (``model.time`` = t0, years)."""
    mesh_p = parameters["mesh"]
    exact = halfar_dome_exact(parameters)
    cells = max(1, math.ceil(mesh_p["length"] / mesh_p["cell_size"] - 1e-9))
    mesh = firedrake.SquareMesh(cells, cells, mesh_p["length"])
    x, y = firedrake.SpatialCoordinate(mesh)
    space = firedrake.FunctionSpace(mesh, "CG", 1)
    thickness = firedrake.Function(space).interpolate(exact.thickness(exact.characteristic_time,
                                                                      firedrake.sqrt(x**2 + y**2)))
    model = SIAModel(thickness, bed=0.0, accumulation=0.0, rate_factor=exact.rate_factor, density=exact.density,
                     **model_options)
    model.time = exact.characteristic_time
    return model
