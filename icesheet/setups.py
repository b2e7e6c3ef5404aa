"""Builders of the registered scenarios (icesheet.scenarios): parameters (validated dicts) -> IceModel.

Each builder takes the parameter tables of ``icesheet/data/scenarios/<name>.toml`` and keyword overrides of IceModel's own
options (``adjoint_mode``, ``friction_parameterisation``, ``picard`` ...), which win over the ``[solver]`` table.
Meshes are structured triangle meshes of the rectangle [0, length] x [0, width] (or ``mesh.file``, a gmsh mesh with
the same boundary ids): 1 inflow (x = 0), 2 calving front (x = length), 3 and 4 side walls (y = 0, y = width).
"""
from __future__ import annotations

import dataclasses
import math

import firedrake
from firedrake import as_vector, conditional, lt, max_value, min_value

from icesheet import constants
from icesheet.errors import ScenarioError
from icesheet.model import Boundaries, IceModel
from icesheet.solver_options import PicardOptions

__all__ = ["ice_shelf_ramp", "van_der_veen_shelf", "marine_ice_stream", "mismip_plus", "rectangle_mesh",
           "model_options", "CHANNEL"]

#: boundary ids of the rectangle meshes (firedrake.RectangleMesh numbering)
CHANNEL = Boundaries(inflow=(1,), calving_front=(2,), side_walls=(3, 4))


def rectangle_mesh(mesh_parameters: dict, cells_across: int | None = None):
    """Structured triangle mesh of [0, length] x [0, width] with cells of about ``cell_size``, or ``file``."""
    if mesh_parameters.get("file"):
        try:
            return firedrake.Mesh(mesh_parameters["file"])
        except Exception as err:  # PETSc's reader raises its own errors for a garbage file
            raise ScenarioError(f"mesh.file = {mesh_parameters['file']!r}: not a readable mesh "
                                f"({type(err).__name__}: {' '.join(str(err).split())[:200]}); give a gmsh .msh "
                                "file with the scenario's boundary ids") from err
    length, width, size = mesh_parameters["length"], mesh_parameters["width"], mesh_parameters["cell_size"]
    nx = max(1, math.ceil(length / size - 1e-9))
    ny = cells_across or max(1, math.ceil(width / size - 1e-9))
    return firedrake.RectangleMesh(nx, ny, length, width)


def model_options(solver: dict, **overrides) -> dict:
    """IceModel keyword options from a ``[solver]`` table (optional: ``supg_parameter``, the thickness update's SUPG
    parameter, icesheet.transport, and ``thickness_linear_solver``, its linear solver, icesheet.thickness_solver);
    ``overrides`` (IceModel keywords) take precedence."""
    newton = {"auto": None, "on": True, "off": False}[solver["newton_finish"]]
    strategy = None if solver["strategy"] == "auto" else solver["strategy"]
    # every PicardOptions field is a [solver] key, but for the two translated above and forcing_floor (Python only)
    picard_keys = [f.name for f in dataclasses.fields(PicardOptions)
                   if f.name not in ("strategy", "newton_finish", "forcing_floor")]
    options = {"adjoint_mode": solver["adjoint_mode"],
               **{key: solver[key] for key in ("supg_parameter", "thickness_linear_solver") if key in solver},
               "friction_parameterisation": solver["friction_parameterisation"],
               "rate_factor_parameterisation": solver["rate_factor_parameterisation"],
               "picard": PicardOptions(strategy=strategy, newton_finish=newton,
                                       **{key: solver[key] for key in picard_keys})}
    options.update(overrides)
    return options


def physics_options(parameters: dict) -> dict:
    """IceModel keyword options from a scenario's optional ``[physics]`` table: ``grounded_indicator`` "sharp" (the
    default) or "smooth" with ``grounding_width`` (m) (icesheet.physics.smooth_grounded_indicator), and, in
    scenarios with a sub-shelf melt, ``melt_at_grounding_line`` (icesheet.melt.GROUNDING_LINE_MELT)."""
    table = parameters.get("physics", {})
    smooth = table.get("grounded_indicator", "sharp") == "smooth"
    options = {"grounding_width": table["grounding_width"] if smooth else None}
    if "melt_at_grounding_line" in table:
        options["melt_at_grounding_line"] = table["melt_at_grounding_line"]
    return options


def ice_shelf_ramp(parameters: dict, **overrides) -> IceModel:
    """Floating shelf with h = h0 - dh x / L (docs/model.md, section 7); friction zero (it floats everywhere)."""
    mesh_p, ice = parameters["mesh"], parameters["ice"]
    mesh = rectangle_mesh(mesh_p)
    x, _ = firedrake.SpatialCoordinate(mesh)
    h0, dh, u0 = ice["inflow_thickness"], ice["thickness_drop"], ice["inflow_speed"]
    return IceModel(mesh, degree=mesh_p["degree"], thickness=h0 - dh * x / mesh_p["length"], bed=ice["bed"],
                    friction=0.0, rate_factor=constants.rate_factor(ice["temperature"]),
                    accumulation=ice["accumulation"], inflow_velocity=as_vector((u0, 0.0)),
                    inflow_thickness=h0, velocity=as_vector((u0, 0.0)), boundaries=CHANNEL,
                    **model_options(parameters["solver"], **overrides))


def van_der_veen_shelf(parameters: dict, **overrides) -> IceModel:
    """One-cell-wide floating strip, sea water of ``water_density`` kg/m^3, A = B^-3 converted to MPa^-3 yr^-1."""
    mesh_p, ice = parameters["mesh"], parameters["ice"]
    mesh = rectangle_mesh(mesh_p, cells_across=1)
    x, _ = firedrake.SpatialCoordinate(mesh)
    h0, u0, h1 = ice["inflow_thickness"], ice["inflow_speed"], ice["initial_front_thickness"]
    rate_factor = ice["rheology_si"] ** -3 * 1.0e18 * constants.year  # Pa^-3 s^-1 -> MPa^-3 yr^-1
    return IceModel(mesh, degree=mesh_p["degree"], thickness=h0 + (h1 - h0) * x / mesh_p["length"],
                    bed=ice["bed"], friction=0.0, rate_factor=rate_factor, accumulation=ice["accumulation"],
                    inflow_velocity=as_vector((u0, 0.0)), inflow_thickness=h0, velocity=as_vector((u0, 0.0)),
                    boundaries=CHANNEL, water_density=constants.density_in_model_units(ice["water_density"]),
                    **model_options(parameters["solver"], **overrides))


def mismip_plus_bed(x, y, width, exp=firedrake.exp, maximum=max_value):
    """MISMIP+ bed (Asay-Davis et al. 2016, GMD 9, eqs. 1-4), m: a trough along x deepening to an overdeepening
    near x = 300 km, bounded by side walls 500 m high, floored at -720 m.  ``exp`` and ``maximum`` are UFL's by
    default; pass ``math.exp`` and ``max`` to evaluate it at a point."""
    xt = x / 300e3
    along = -150.0 - 728.8 * xt**2 + 343.91 * xt**4 - 50.57 * xt**6
    depth, wall_width, trough_half_width = 500.0, 4e3, 24e3
    across = (depth / (1 + exp(-2 * (y - width / 2 - trough_half_width) / wall_width))
              + depth / (1 + exp(2 * (y - width / 2 + trough_half_width) / wall_width)))
    return maximum(along + across, -720.0)


def marine_ice_stream(parameters: dict, **overrides) -> IceModel:
    """MISMIP+-like marine ice stream.  Initial geometry: on the trough's centreline the ice is grounded for
    x < grounding_line with a surface falling linearly from ``inflow_surface`` to the flotation surface there, and
    floats beyond it with a thickness falling linearly to ``front_thickness``; across the trough the surface is
    flat, so h = min(s - b, s / (1 - rho_i / rho_w)) (grounded where the bed is high enough, afloat elsewhere)."""
    mesh_p, ice = parameters["mesh"], parameters["ice"]
    mesh = rectangle_mesh(mesh_p)
    x, y = firedrake.SpatialCoordinate(mesh)
    length, width, x_g = mesh_p["length"], mesh_p["width"], ice["grounding_line"]
    if not 0 < x_g < length:
        raise ScenarioError(f"ice.grounding_line = {x_g!r}: must lie inside the domain, 0 < x < {length:g}")
    buoyancy = 1 - constants.ice_density / constants.water_density
    h_g = -mismip_plus_bed(x_g, width / 2, width, math.exp, max) * constants.water_density / constants.ice_density
    s_g = buoyancy * h_g
    shelf_surface = buoyancy * (h_g + (ice["front_thickness"] - h_g) * (x - x_g) / (length - x_g))
    surface = conditional(lt(x, x_g), s_g + (ice["inflow_surface"] - s_g) * (1 - x / x_g), shelf_surface)
    bed = mismip_plus_bed(x, y, width)
    thickness = min_value(surface - bed, surface / buoyancy)
    u_in, u_front = ice["inflow_speed"], ice["front_speed_guess"]
    return IceModel(mesh, degree=mesh_p["degree"], thickness=thickness, bed=bed, friction=ice["friction"],
                    rate_factor=ice["rate_factor"], accumulation=ice["accumulation"],
                    inflow_velocity=as_vector((u_in, 0.0)), inflow_thickness=thickness,
                    velocity=as_vector((u_in + (u_front - u_in) * x / length, 0.0)), boundaries=CHANNEL,
                    **model_options(parameters["solver"], **{**physics_options(parameters), **overrides}))


def mismip_plus(parameters: dict, **overrides) -> IceModel:
    """MISMIP+ (Asay-Davis et al. 2016, GMD 9, 2471): the bed of :func:`mismip_plus_bed`, Glen's law with the
    rate factor A, Weertman friction C|u|^(1/m - 1)u with m = 3 on grounded ice, accumulation a, calving front at
    x = length, no flow through x = 0 (the ice divide: u = 0 there), free-slip side walls, a uniform initial
    thickness.  With a ``[melt]`` table (experiments Ice1r, Ice1rr) the Ice1 sub-shelf melt
    (:func:`icesheet.melt.mismip_melt_rate`) times the field ``melt_factor`` is a sink on floating ice.

    Densities: the model's ice density is icesheet.constants.ice_density (917 kg/m^3); the water density is set to
    ``917 * water_density / ice_density`` so that the flotation ratio rho_i / rho_w, which fixes the grounding
    line, the shelf's draft and the melt, equals MISMIP+'s 918/1028 (the driving stress then differs by 0.1 %)."""
    from icesheet.melt import mismip_melt_rate

    mesh_p, ice, melt = parameters["mesh"], parameters["ice"], parameters.get("melt")
    mesh = rectangle_mesh(mesh_p)
    x, y = firedrake.SpatialCoordinate(mesh)
    rho_water = constants.ice_density * ice["water_density"] / ice["ice_density"]
    options = {}
    if melt is not None:
        def melt_rate(thickness, bed, rho_water):
            return mismip_melt_rate(thickness, bed, rate=melt["rate"], water_column_scale=melt["water_column_scale"],
                                    depth=melt["onset_depth"], rho_water=rho_water)

        options = {"melt": melt_rate, "melt_factor": melt["melt_factor"]}
    return IceModel(mesh, degree=mesh_p["degree"], thickness=ice["initial_thickness"],
                    bed=mismip_plus_bed(x, y, mesh_p["width"]), friction=ice["friction"],
                    rate_factor=ice["rate_factor"], accumulation=ice["accumulation"],
                    inflow_velocity=as_vector((0.0, 0.0)), inflow_thickness=ice["initial_thickness"],
                    velocity=as_vector((0.0, 0.0)), boundaries=CHANNEL, water_density=rho_water, **options,
                    **model_options(parameters["solver"], **{**physics_options(parameters), **overrides}))
