"""van der Veen's steady ice shelf (docs/model.md, section 7): the coupled model (velocity + thickness) marches from a
linear ramp to a steady state that matches the exact H(x) = (4 C x / Q0 + H0^-4)^(-1/4), u = Q0 / H, with the
error falling under mesh refinement."""
import numpy as np
import pytest

pytestmark = pytest.mark.firedrake


def steady_state_errors(cell_size):
    import firedrake
    from firedrake import assemble, dx

    from icesheet import constants
    from icesheet.scenarios import build_model, scenario_parameters

    parameters = scenario_parameters("van_der_veen_shelf", overrides={"mesh.cell_size": cell_size})
    ice = parameters["ice"]
    model = build_model("van_der_veen_shelf", parameters)
    dt = 100.0
    for _ in range(200):
        before = model.thickness.dat.data_ro.copy()
        model.step(dt)
        change = np.linalg.norm(model.thickness.dat.data_ro - before) / np.linalg.norm(before)
        if change < 1e-9:
            break
    else:
        pytest.fail(f"no steady state after 200 steps of {dt} yr (last relative change {change:.2e})")
    model.solve_velocity()  # the velocity of the final thickness

    rho_i, rho_w = 917.0, ice["water_density"]
    C = (rho_i * 9.81 * (1 - rho_i / rho_w) / (4 * ice["rheology_si"])) ** 3  # SI: m^-3 s^-1
    H0, Q0 = ice["inflow_thickness"], ice["inflow_thickness"] * ice["inflow_speed"] / constants.year  # m^2/s
    x, _ = firedrake.SpatialCoordinate(model.mesh)
    H = (4 * C * x / Q0 + H0**-4) ** -0.25
    u = Q0 * constants.year / H

    def relative_l2(f, exact):
        return np.sqrt(assemble((f - exact) ** 2 * dx(degree=6)) / assemble(exact**2 * dx(degree=6)))

    return relative_l2(model.thickness, H), relative_l2(model.velocity[0], u)


def test_steady_state_matches_the_exact_shelf_and_improves_with_refinement():
    coarse, fine = steady_state_errors(10e3), steady_state_errors(5e3)
    print("thickness, velocity errors: coarse", coarse, "fine", fine)
    assert fine[0] < 0.6 * coarse[0] and fine[1] < 0.6 * coarse[1]
    assert fine[0] < 0.01 and fine[1] < 0.01
