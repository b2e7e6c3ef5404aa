"""The Picard solver converges on every scenario to a velocity that satisfies the SSA as an independent oracle
writes it: the Euler-Lagrange equation of the SSA action functional (icepack's formulation; Schoof 2006,
Math. Models Methods Appl. Sci.), differentiated by UFL rather than written out by hand."""
import numpy as np
import pytest

pytestmark = pytest.mark.firedrake

COARSE = {"ice_shelf_ramp": {"mesh.cell_size": 5000.0},
          "van_der_veen_shelf": {"mesh.cell_size": 10000.0},
          "marine_ice_stream": {"mesh.cell_size": 40000.0}}


def coarse_model(name, **model_options):
    from icesheet.scenarios import build_model, scenario_parameters

    return build_model(name, scenario_parameters(name, overrides=COARSE[name]), **model_options)


def action_residual_norms(model):
    """||dE/du|| and ||dE/du at u = 0 from the load terms|| with Dirichlet rows removed, E the SSA action
    (integrated with the model's quadrature rule, which is part of the discretisation: the grounded indicator jumps
    inside cells crossed by the grounding line):

    E(u) = int 2n/(n+1) h A^(-1/n) e_e^(1/n+1) + m/(m+1) chi_g C (|u|^2 + u_min^2)^((1/m+1)/2) + rho_i g h grad s . u dx
           - int_front (rho_i g h^2 / 2 - rho_w g d^2 / 2) u . nu ds
    """
    import firedrake
    from firedrake import conditional, grad, gt, inner, max_value, min_value, sqrt, sym, tr

    from icesheet import constants as c

    u, h, b = model.velocity, model.thickness, model.bed
    A, C, rho_i, rho_w, g = model.rate_factor, model.friction, c.ice_density, model.water_density, c.gravity
    n, m = c.glen_flow_law, c.weertman_sliding_law
    eps = sym(grad(u))
    eps_e = sqrt((inner(eps, eps) + tr(eps) ** 2 + c.strain_rate_min**2) / 2)
    s = max_value(b + h, (1 - rho_i / rho_w) * h)
    grounded = conditional(gt(rho_i * h + rho_w * b, 0), 1, 0)
    d = min_value(s - h, 0)
    nu = firedrake.FacetNormal(model.mesh)
    front = model.boundaries.calving_front
    dx = firedrake.dx(degree=model.velocity_solver.quadrature_degree)
    ds = firedrake.ds(front, degree=model.velocity_solver.quadrature_degree)
    viscous = 2 * n / (n + 1) * h * A ** (-1 / n) * eps_e ** (1 / n + 1) * dx
    friction = m / (m + 1) * grounded * C * (inner(u, u) + c.sliding_speed_min**2) ** ((1 / m + 1) / 2) * dx
    loads = rho_i * g * h * inner(grad(s), u) * dx - 0.5 * g * (rho_i * h**2 - rho_w * d**2) * inner(u, nu) * ds
    v = firedrake.TestFunction(model.velocity_space)
    mask = model.velocity_solver._bc_mask

    def norm(form):
        return np.linalg.norm(np.where(mask, 0.0, firedrake.assemble(form).dat.data_ro))

    return norm(firedrake.derivative(viscous + friction + loads, u, v)), norm(firedrake.derivative(loads, u, v))


@pytest.mark.parametrize("name", sorted(COARSE))
def test_picard_converges_to_the_root_of_the_ssa_action(name):
    model = coarse_model(name, adjoint_mode="unrolled")
    info = model.solve_velocity()
    assert 1 <= info.picard_iterations < 100
    assert info.changes[-1] <= 1e-6
    assert info.residuals[-1] <= 1e-6 * max(info.residuals[0], 1.0)
    residual, load = action_residual_norms(model)
    assert residual <= 1e-5 * load, (residual, load)


@pytest.mark.parametrize("name", sorted(COARSE))
def test_newton_finish_drives_the_residual_to_round_off(name):
    model = coarse_model(name)  # fixed-point mode: Picard, then Newton on the full residual
    info = model.solve_velocity()
    assert info.newton_iterations <= 3
    residual, load = action_residual_norms(model)
    assert residual <= 1e-9 * load, (residual, load)


def test_grounded_and_floating_ice_both_present_in_the_marine_ice_stream():
    model = coarse_model("marine_ice_stream")
    grounded = model.output_fields()["grounded"].dat.data_ro
    assert grounded.min() == 0.0 and grounded.max() == 1.0


def test_too_few_iterations_raise_with_the_history():
    from icesheet.velocity_solver import PicardConvergenceError, PicardOptions

    model = coarse_model("marine_ice_stream", picard=PicardOptions(max_iterations=2))
    with pytest.raises(PicardConvergenceError, match="did not converge in max_iterations = 2") as caught:
        model.step(10.0)
    assert caught.value.info.picard_iterations == 2
    assert len(caught.value.info.residuals) == 3 and len(caught.value.info.changes) == 2


def test_restored_state_repeats_the_step_bit_for_bit():
    model = coarse_model("marine_ice_stream")
    start = model.state_arrays()
    first = model.step(10.0)
    after_first = model.state_arrays()
    model.set_state_arrays(start)
    second = model.step(10.0)
    assert first.picard_iterations == second.picard_iterations > 0
    assert first.residual_history == second.residual_history
    for a, b in zip(after_first, model.state_arrays()):
        assert np.array_equal(a, b)


def test_adjoint_modes_give_the_same_velocity():
    velocities = {}
    for mode in ("fixed-point", "unrolled"):
        model = coarse_model("marine_ice_stream", adjoint_mode=mode)
        model.step(10.0)
        velocities[mode] = model.velocity.dat.data_ro.copy()
    difference = np.linalg.norm(velocities["fixed-point"] - velocities["unrolled"])
    assert difference <= 1e-5 * np.linalg.norm(velocities["fixed-point"])


def test_save_and_load_state_round_trip(tmp_path):
    model = coarse_model("marine_ice_stream")
    model.step(10.0)
    saved = model.state_arrays()
    model.save_state(tmp_path / "state.h5")
    model.step(10.0)
    model.load_state(tmp_path / "state.h5")
    for a, b in zip(saved, model.state_arrays()):
        assert np.allclose(a, b, rtol=1e-12, atol=1e-9)
