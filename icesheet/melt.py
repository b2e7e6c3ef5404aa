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

Melt at the grounding line (Seroussi & Morlighem 2018, *Representation of basal melting at the grounding line in ice
flow models*, The Cryosphere 12, 3085, the methods section, where they define the treatments NMP, FMP and SEM): a
cell that the grounding line crosses is partly grounded, and how much of the melt of its floating part the model
applies decides how fast the grounding line retreats at a given resolution (docs/mismip.md, "Melt at the grounding
line and the time step", measures both treatments below on MISMIP+ Ice1r).  :data:`GROUNDING_LINE_MELT` names the
treatments the model offers (``IceModel(melt_at_grounding_line=)``, the scenario key
``physics.melt_at_grounding_line``):

``"sub-element"``
    :func:`sub_element_melt`: the melt rate evaluated at every quadrature point, zero where that point is grounded,
    so the floating part of a partly grounded cell melts: their sub-element melt (SEM), which they found to
    overestimate the retreat at coarse resolution.  (For the Ice1 formula the indicator changes nothing: the
    water column :math:`H_c` vanishes at a grounded point, and with it the melt.  Their full melt, FMP, which
    spreads the melt of a cell's floating vertices over the whole cell, is not offered.)
``"no-partial"``
    :func:`no_partial_melt`: no melt in a cell with a grounded vertex (their NMP, which they recommend: it converges
    faster with resolution); elsewhere the same as ``"sub-element"``.  The cell indicator :math:`\chi_K`
    (:class:`FloatingCells`) is computed from the thickness at the start of each step, like the melt itself.
"""
from __future__ import annotations

from ufl import conditional, gt, max_value, tanh

from icesheet import constants, physics

__all__ = ["MISMIP_MELT_RATE", "MISMIP_WATER_COLUMN_SCALE", "MISMIP_MELT_DEPTH", "GROUNDING_LINE_MELT",
           "mismip_melt_rate", "floating_vertices", "floating_cell_indicator", "sub_element_melt", "no_partial_melt",
           "FloatingCells"]

#: :math:`\Omega`, yr^-1
MISMIP_MELT_RATE = 0.2
#: :math:`H_{c0}`, m
MISMIP_WATER_COLUMN_SCALE = 75.0
#: :math:`z_0`, m (sea level is z = 0)
MISMIP_MELT_DEPTH = -100.0
#: the treatments of melt in partly grounded cells (module docstring); the first is the model's default
GROUNDING_LINE_MELT = ("sub-element", "no-partial")


def mismip_melt_rate(thickness, bed, rate=MISMIP_MELT_RATE, water_column_scale=MISMIP_WATER_COLUMN_SCALE,
                     depth=MISMIP_MELT_DEPTH, rho_ice=constants.ice_density, rho_water=constants.water_density):
    r"""The MISMIP+ Ice1 melt rate :math:`m` (module docstring), m/yr, at thickness ``thickness`` over ``bed``:
    zero where the ice is grounded.  The draft is :math:`z_d = s - h` with :math:`s` from
    :func:`icesheet.physics.surface` (:math:`z_d = -(\rho_I/\rho_W) h` afloat); :math:`H_c` is clipped at 0."""
    draft = physics.surface(thickness, bed, rho_ice, rho_water) - thickness
    water_column = max_value(draft - bed, 0.0)
    floating = floating_vertices(thickness, bed, rho_ice, rho_water)
    return floating * rate * tanh(water_column / water_column_scale) * max_value(depth - draft, 0.0)


def sub_element_melt(melt_rate):
    """The ``"sub-element"`` treatment (module docstring; Seroussi & Morlighem 2018, SEM): ``melt_rate`` as it is,
    evaluated at the quadrature points, where it is zero on grounded ice (:func:`mismip_melt_rate`)."""
    return melt_rate


def no_partial_melt(melt_rate, floating_cells):
    r"""The ``"no-partial"`` treatment (Seroussi & Morlighem 2018, NMP): :math:`\chi_K\,m`, with
    ``floating_cells`` :math:`\chi_K` a piecewise-constant field, 1 in cells whose vertices all float and 0 in cells
    with a grounded vertex (:class:`FloatingCells`)."""
    return floating_cells * melt_rate


def floating_vertices(thickness, bed, rho_ice=constants.ice_density, rho_water=constants.water_density):
    r""":math:`1 - \chi_g`: 1 where the ice floats (height above flotation :math:`\le 0`), 0 where it is grounded
    (:func:`icesheet.physics.grounded_indicator`); interpolated into P1 it is the floating flag of every vertex."""
    return 1 - physics.grounded_indicator(thickness, bed, rho_ice, rho_water)


def floating_cell_indicator(vertex_flags, dimension: int):
    r""":math:`\chi_K`, to be interpolated into piecewise constants: 1 where the P1 field ``vertex_flags`` (1 at a
    floating vertex, 0 at a grounded one) is 1 at every vertex of the cell, else 0.  Interpolation into DG0
    evaluates at the barycentre, where a P1 field is the mean of its :math:`d + 1` vertex values: the mean is 1 when
    every vertex floats and at most :math:`1 - 1/(d+1)` otherwise, so the threshold :math:`1 - 1/(2(d+1))` between
    them decides exactly."""
    return conditional(gt(vertex_flags, 1 - 1 / (2 * (dimension + 1))), 1.0, 0.0)


class FloatingCells:
    r"""The cell indicator :math:`\chi_K` of the ``"no-partial"`` treatment as a DG0 Function (``cells``), kept up to
    date from ``thickness`` and ``bed`` by :meth:`update`: the floating flags of the vertices
    (:func:`floating_vertices` interpolated into P1), then :func:`floating_cell_indicator` interpolated into DG0.

    Both are interpolations of UFL conditionals: taped when annotation is on, their derivative is zero (the indicator
    is piecewise constant in the thickness), and a replay of the tape or a re-run of the step recomputes them from
    the thickness it starts from, as the model's ``step`` calls :meth:`update` first (a checkpointed step re-taped by
    the manager therefore sees the same :math:`\chi_K` as its first run)."""

    def __init__(self, thickness, bed, rho_ice=constants.ice_density, rho_water=constants.water_density):
        import firedrake

        mesh = thickness.function_space().mesh()
        self.vertices = firedrake.Function(firedrake.FunctionSpace(mesh, "CG", 1), name="floating_vertices")
        self.cells = firedrake.Function(firedrake.FunctionSpace(mesh, "DG", 0), name="floating_cells")
        self._vertex_expr = floating_vertices(thickness, bed, rho_ice, rho_water)
        self._cell_expr = floating_cell_indicator(self.vertices, mesh.topological_dimension)
        self.update()

    def update(self) -> None:
        r"""Recompute :math:`\chi_K` from the current thickness."""
        self.vertices.interpolate(self._vertex_expr)
        self.cells.interpolate(self._cell_expr)
