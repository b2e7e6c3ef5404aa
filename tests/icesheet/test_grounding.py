"""The smoothed grounded indicator (icesheet.physics.smooth_grounded_indicator) and its scenario option.

Oracles: the closed form (1 + tanh(h_f / w)) / 2 evaluated with numpy at the mesh's vertices, with h_f = h + (rho_W /
rho_I) b from the densities; its limit w -> 0, the sharp indicator (away from flotation); and, for the option
``physics.grounded_indicator = "smooth"``, the same limit for the solved velocity: a width of a millimetre gives the
sharp model's velocity, a width of tens of metres another one.
"""
import numpy as np
import pytest

pytestmark = pytest.mark.firedrake

CELL = 40000.0


def _model(indicator="sharp", width=20.0):
    from icesheet.scenarios import build_model, scenario_parameters

    overrides = {"mesh.cell_size": CELL, "physics.grounded_indicator": indicator, "physics.grounding_width": width,
                 "solver.tolerance": 1e-2, "solver.residual_tolerance": 1e-2}
    return build_model("marine_ice_stream", scenario_parameters("marine_ice_stream", overrides=overrides))


def test_smooth_indicator_is_the_closed_form_and_tends_to_the_sharp_one():
    import firedrake as fd

    from icesheet import constants, physics

    model = _model()
    Q = model.thickness_space
    h, b = model.thickness.dat.data_ro, model.bed.dat.data_ro
    flotation = h + constants.water_density / constants.ice_density * b
    assert np.any(flotation > 0) and np.any(flotation < 0)  # the scenario has grounded and floating ice
    sharp = fd.Function(Q).interpolate(physics.grounded_indicator(model.thickness, model.bed)).dat.data_ro
    np.testing.assert_array_equal(sharp, (flotation > 0).astype(float))
    for width in (50.0, 5.0, 0.5):
        smooth = fd.Function(Q).interpolate(
            physics.smooth_grounded_indicator(model.thickness, model.bed, width)).dat.data_ro
        np.testing.assert_allclose(smooth, 0.5 * (1 + np.tanh(flotation / width)), rtol=1e-12, atol=1e-14)
        far = np.abs(flotation) > 4 * width  # 1 - tanh(4) = 6.7e-4
        assert np.all(np.abs(smooth[far] - sharp[far]) < 4e-4)


def test_physics_table_selects_the_smooth_indicator_in_the_friction():
    from pyadjoint import stop_annotating

    models = {"sharp": _model("sharp"), "millimetre": _model("smooth", 1e-3), "wide": _model("smooth", 30.0)}
    assert models["sharp"].grounding_width is None and models["wide"].grounding_width == 30.0
    with stop_annotating():
        for model in models.values():
            model.solve_velocity()
    u = {name: m.velocity.dat.data_ro for name, m in models.items()}
    scale = np.abs(u["sharp"]).max()
    np.testing.assert_allclose(u["millimetre"], u["sharp"], rtol=0, atol=1e-6 * scale)
    assert np.abs(u["wide"] - u["sharp"]).max() > 1e-3 * scale
