"""Taylor tests of the gradients users get (icesheet.controls.compute_gradient, i.e. the checkpoint manager) for every
functional x control pair on the marine ice stream (MISMIP+ bed, 40 km cells, 3 steps of 10 years).

Oracle (docs/model.md, section 6): for a direction dp, the remainder |J(p + eps dp) - J(p) - eps dJ/dp[dp]| of a
correct gradient falls as eps^2, so its observed order between successive halvings of eps is about 2; a wrong
gradient leaves a first-order remainder.  J(p + eps dp) comes from a plain untaped forward sweep of the model (not
the manager).  One model build and one manager run per functional (all four controls at once) are shared.
"""
import math

import pytest

pytestmark = pytest.mark.firedrake

STEPS = 3
DT = 10.0
EPSILONS = (0.5, 0.25, 0.125)
#: loose Picard tolerances (the Newton finish still converges to 1e-10): three times fewer Picard iterations
FAST_SOLVER = {"mesh.cell_size": 40000.0, "solver.tolerance": 1e-2, "solver.residual_tolerance": 1e-2}


def make_problem(friction_parameterisation):
    """The model, its three functionals and a perturbation direction per control."""
    import firedrake as fd
    from icesheet.functionals import FUNCTIONALS, build_functional, initial_velocity_observations
    from icesheet.scenarios import build_model, scenario_parameters

    model = build_model("marine_ice_stream", scenario_parameters("marine_ice_stream", overrides=FAST_SOLVER),
                        friction_parameterisation=friction_parameterisation, rate_factor_parameterisation="log")
    observed = initial_velocity_observations(model)
    observed.assign(0.8 * observed)  # a misfit that is first-order sensitive already at x_1
    when = {"volume": "sum", "vaf": "final", "misfit": "sum"}
    functionals = {name: build_functional(model, name, STEPS, when[name], observed_velocity=observed)
                   for name in FUNCTIONALS}
    x, y = fd.SpatialCoordinate(model.mesh)
    Q = model.thickness.function_space()
    # Thickness: a bump far upstream of the grounding line (x = 450 km), so that within 30 years it crosses neither
    # the grounding line (the grounded indicator is a jump) nor the h >= 0 clamp.  Friction: relative changes of
    # 10% for theta = log C, of 10% of C = 0.01 for the linear parameterisation.
    friction = fd.cos(y / 2e4) * (0.1 if friction_parameterisation == "log" else 1e-3)
    directions = {"thickness": 20.0 * fd.exp(-((x - 1e5) / 5e4) ** 2), "friction": friction,
                  "accumulation": 0.1 * fd.cos(x / 2e5), "rheology": 0.1 * fd.sin(x / 1e5)}
    directions = {c: fd.Function(Q).interpolate(e) for c, e in directions.items()}
    return {"model": model, "functionals": functionals, "directions": directions, "gradients": {},
            "sweeps": {}}


@pytest.fixture(scope="module")
def problem():
    return make_problem("log")


def gradient(problem, name):
    from icesheet.controls import compute_gradient

    if name not in problem["gradients"]:
        problem["gradients"][name] = compute_gradient(problem["model"], problem["functionals"][name],
                                                      [DT] * STEPS, schedule="store-all")
    return problem["gradients"][name]


def sweep(problem, control, eps):
    """{functional: J} after a plain forward sweep with the control moved by eps x its direction."""
    import firedrake as fd
    from firedrake.adjoint import stop_annotating
    from icesheet.controls import control_function

    key = (control, eps)
    if key not in problem["sweeps"]:
        model, functionals = problem["model"], problem["functionals"]
        p = control_function(model, control)
        saved = [f.copy(deepcopy=True) for f in (p,) + model.state]
        values = dict.fromkeys(functionals, 0.0)
        try:
            with stop_annotating():
                p.assign(saved[0] + eps * problem["directions"][control])
                for i in range(STEPS + 1):
                    for name, j in functionals.items():
                        if j.has_term(i):
                            values[name] += float(fd.assemble(j.form))
                    if i < STEPS:
                        model.step(DT)
        finally:
            with stop_annotating():
                for f, s in zip((p,) + model.state, saved):
                    f.assign(s)
        problem["sweeps"][key] = values
    return problem["sweeps"][key]


@pytest.mark.parametrize("control", ["friction", "accumulation", "thickness", "rheology"])
@pytest.mark.parametrize("functional", ["volume", "vaf", "misfit"])
def test_taylor_remainder_is_second_order(problem, functional, control):
    result = gradient(problem, functional)
    slope = result.derivative[control].dat.inner(problem["directions"][control].dat)
    assert slope != 0
    base = sweep(problem, control, 0.0)[functional]
    assert base == pytest.approx(result.value, rel=1e-9)  # the manager's J is the forward model's J
    remainders = [abs(sweep(problem, control, eps)[functional] - base - eps * slope) for eps in EPSILONS]
    orders = [math.log2(r0 / r1) for r0, r1 in zip(remainders, remainders[1:])]
    assert min(orders) >= 1.95, (remainders, orders, slope)


def test_taylor_remainder_with_linear_friction():
    """The same oracle for the Weertman coefficient C itself (friction_parameterisation = "linear")."""
    linear = make_problem("linear")
    assert "friction" in linear["model"].controls()
    test_taylor_remainder_is_second_order(linear, "vaf", "friction")


def test_riesz_representatives_are_the_duals_of_the_derivative(problem):
    """(g, phi)_X = dJ/dp[phi] for the direction phi, with (u, v)_L2 = int u v dx (the mass-matrix solve) and
    (u, v)_H1 = int u v + grad u . grad v dx."""
    import firedrake as fd
    from icesheet.controls import riesz_representative

    result = gradient(problem, "volume")
    for control in ("friction", "thickness"):
        phi = problem["directions"][control]
        pairing = result.derivative[control].dat.inner(phi.dat)
        assert fd.assemble(fd.inner(result.riesz[control], phi) * fd.dx) == pytest.approx(pairing, rel=1e-10)
        g = riesz_representative(result.derivative[control], "H1")
        h1 = fd.assemble((fd.inner(g, phi) + fd.inner(fd.grad(g), fd.grad(phi))) * fd.dx)
        assert h1 == pytest.approx(pairing, rel=1e-10)
