"""The treatments of sub-shelf melt in cells the grounding line crosses (icesheet.melt; Seroussi & Morlighem 2018,
The Cryosphere 12, 3085): "sub-element" (melt at the floating quadrature points) and "no-partial" (none in a cell
with a grounded vertex), on MISMIP+ Ice1r at 40 km (16 x 2 cells).

Oracles: the definition of the treatments checked cell by cell against the vertices' flotation computed here with
numpy from MISMIP+'s densities (918, 1028 kg/m^3); the total melt of a state with a uniform shelf, the published
Ice1 formula times the area of the floating cells, by hand; the store-all gradient (Revolve must reproduce it to
round-off: the cell indicator is recomputed when the manager re-runs a step) and a Taylor remainder of second order.
"""
import math

import pytest

from icesheet.scenarios import ScenarioError, scenario_parameters

pytestmark = pytest.mark.firedrake

COARSE = {"mesh.cell_size": 40000.0, "ice.initial_thickness": 300.0}
RHO_I, RHO_W = 918.0, 1028.0  # MISMIP+


def build(treatment, **overrides):
    from icesheet.scenarios import build_model

    return build_model("mismip_ice1r", scenario_parameters(
        "mismip_ice1r", overrides={**COARSE, "physics.melt_at_grounding_line": treatment, **overrides}))


def cell_melt(model):
    """The melt integrated over each cell (m^3/yr), in the thickness solver's quadrature."""
    import firedrake as fd

    w = fd.TestFunction(fd.FunctionSpace(model.mesh, "DG", 0))
    return fd.assemble(model.melt_rate * w * fd.dx(metadata={"quadrature_degree": 4})).dat.data_ro.copy()


def grounded_vertices_per_cell(model):
    """For every cell, whether any of its vertices is grounded (rho_i h + rho_w b > 0), from the nodal values."""
    import firedrake as fd

    Q = model.thickness.function_space()
    cell_nodes = Q.cell_node_map().values
    dg0_cells = fd.FunctionSpace(model.mesh, "DG", 0).cell_node_map().values[:, 0]
    h, b = model.thickness.dat.data_ro, model.bed.dat.data_ro
    grounded = RHO_I * h + RHO_W * b > 0
    result = grounded[cell_nodes].any(axis=1)
    ordered = result.copy()
    ordered[dg0_cells] = result
    return ordered


def test_no_partial_has_no_melt_in_cells_with_a_grounded_vertex_and_equals_sub_element_elsewhere():
    import firedrake as fd
    import numpy as np
    from firedrake.adjoint import stop_annotating

    from icesheet import constants

    sub, none = build("sub-element"), build("no-partial")
    for model in (sub, none):  # a grounding line at x = 430 km crossing cells: h_f = 0.001 (430 km - x)
        x, _ = fd.SpatialCoordinate(model.mesh)
        with stop_annotating():
            model.thickness.interpolate(-model.water_density / constants.ice_density * model.bed
                                        + 0.001 * (430e3 - x))
            model.update_floating_cells()
    partly = grounded_vertices_per_cell(none)
    m_sub, m_none = cell_melt(sub), cell_melt(none)
    assert partly.any() and (~partly).any()
    assert np.all(m_none[partly] == 0)
    assert np.allclose(m_none[~partly], m_sub[~partly], rtol=1e-13, atol=0)
    assert (m_sub[partly] > 0).any()  # the sub-element treatment melts some partly grounded cells: they differ
    assert none.floating_cells.cells.dat.data_ro.sum() == (~partly).sum()


def test_total_melt_of_a_uniform_shelf_is_the_published_rate_times_the_floating_area():
    """Bed at -700 m; 1000 m of ice (grounded) at the vertices x <= 400 km, 400 m (afloat) at x >= 440 km.  No
    partial melt: 0.2 tanh(H_c / 75) (-z_d - 100) m/yr with z_d = -(918/1028) 400 m, H_c = z_d + 700, over the cells
    with x in [440, 640] km (200 x 80 km); sub-element: more, from the floating part of the column of cells that the
    grounding line crosses."""
    import firedrake as fd
    from firedrake.adjoint import stop_annotating

    draft = -RHO_I / RHO_W * 400.0
    rate = 0.2 * math.tanh((draft + 700.0) / 75.0) * (-100.0 - draft)
    assert rate == pytest.approx(51.43, abs=0.01)  # the value worked on paper in tests/icesheet/test_mismip.py
    totals = {}
    for treatment in ("no-partial", "sub-element"):
        model = build(treatment)
        x, _ = fd.SpatialCoordinate(model.mesh)
        with stop_annotating():
            model.bed.assign(-700.0)
            model.thickness.interpolate(fd.conditional(fd.lt(x, 420e3), 1000.0, 400.0))
            model.update_floating_cells()
        totals[treatment] = fd.assemble(model.melt_rate * fd.dx(metadata={"quadrature_degree": 4}))
    assert totals["no-partial"] == pytest.approx(rate * 200e3 * 80e3, rel=1e-12)
    assert totals["sub-element"] > totals["no-partial"] * (1 + 1e-3)


def test_no_partial_gradient_through_revolve_equals_store_all_and_passes_a_taylor_test():
    """J = volume after 4 steps of 2 yr; controls the melt factor and C; Revolve on 2 slots re-runs steps."""
    import firedrake as fd
    import numpy as np

    from checkpointing.adjoint import evaluate, gradient
    from checkpointing.platform import Platform
    from icesheet.controls import time_loop
    from icesheet.functionals import build_functional

    steps, dt = 4, 2.0
    model = build("no-partial")
    assert 0 < model.floating_cells.cells.dat.data_ro.sum() < model.floating_cells.cells.dat.data_ro.size
    loop = time_loop(model, build_functional(model, "volume", steps), [dt] * steps, ("melt", "friction"))
    store_all = gradient(loop, "store-all", Platform.from_spec("inf:0:0"))
    revolve = gradient(loop, "revolve", Platform.from_spec("2:0:0"))
    assert revolve.counters.forward_steps > steps  # it did recompute
    assert revolve.value == pytest.approx(store_all.value, rel=1e-12)
    for a, b in zip(store_all.gradient, revolve.gradient):
        assert np.linalg.norm(a.dat.data_ro - b.dat.data_ro) <= 1e-10 * np.linalg.norm(a.dat.data_ro)
    x, _ = fd.SpatialCoordinate(model.mesh)
    direction = fd.Function(model.melt_factor.function_space()).interpolate(0.5 + 0.3 * fd.cos(x / 1e5))
    slope = store_all.gradient[0].dat.inner(direction.dat)
    assert slope < 0  # more melt, less ice
    base, velocity = model.melt_factor.copy(deepcopy=True), model.velocity.copy(deepcopy=True)
    remainders = []
    try:
        for eps in (0.1, 0.05, 0.025):
            model.melt_factor.assign(base + eps * direction)
            model.velocity.assign(velocity)
            remainders.append(abs(evaluate(loop) - store_all.value - eps * slope))
    finally:
        model.melt_factor.assign(base)
        model.velocity.assign(velocity)
    orders = [math.log2(r0 / r1) for r0, r1 in zip(remainders, remainders[1:])]
    assert min(orders) >= 1.9, (remainders, orders, slope)


def test_the_scenario_key_takes_the_treatments_the_model_offers_and_names_a_bad_one():
    from icesheet.melt import GROUNDING_LINE_MELT

    for treatment in GROUNDING_LINE_MELT:
        p = scenario_parameters("mismip_ice1r", overrides={"physics.melt_at_grounding_line": treatment})
        assert p["physics"]["melt_at_grounding_line"] == treatment
    with pytest.raises(ScenarioError) as error:
        scenario_parameters("mismip_ice1r", overrides={"physics.melt_at_grounding_line": "sem"})
    message = str(error.value)
    assert "\n" not in message
    assert message == (f"physics.melt_at_grounding_line = 'sem': allowed values are {GROUNDING_LINE_MELT}")
