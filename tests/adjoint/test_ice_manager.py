"""The manager on the ice model: marine ice stream (MISMIP+ bed, coarse mesh), 5 steps of 10 years.

J = 1e-16 int |u_2|^2 dx (the velocity of the state x_2, so the adjoint must carry velocity across steps)
  + 1e-12 x volume above flotation at the end.  Controls: friction C, accumulation a, initial thickness.
Oracles: the store-all gradient (Revolve must reproduce it to round-off) and a Taylor test.
"""
import math

import numpy as np
import pytest

pytestmark = pytest.mark.firedrake

STEPS = 5
DT = 10.0


@pytest.fixture(scope="module")
def ice():
    import firedrake as fd
    from icesheet import physics
    from icesheet.controls import time_loop
    from icesheet.scenarios import build_model, scenario_parameters

    model = build_model("marine_ice_stream", scenario_parameters("marine_ice_stream",
                                                                 overrides={"mesh.cell_size": 40000.0}))
    thickness, velocity = model.state
    speed_form = fd.inner(velocity, velocity) * fd.dx
    above_flotation = physics.thickness_above_flotation(thickness, model.bed, rho_water=model.water_density) * fd.dx

    def functional(index, state):
        if index == 2:
            return 1e-16 * fd.assemble(speed_form)
        if index == STEPS:
            return 1e-12 * fd.assemble(above_flotation)
        return None

    return model, time_loop(model, functional, [DT] * STEPS, controls=("friction", "accumulation"))


def run(loop, planner, spec):
    from checkpointing.adjoint import gradient
    from checkpointing.platform import Platform

    return gradient(loop, planner, Platform.from_spec(spec))


def test_revolve_gives_the_store_all_gradient_which_passes_a_taylor_test(ice):
    import firedrake as fd
    from checkpointing.adjoint import evaluate

    model, loop = ice
    store_all = run(loop, "store-all", "inf:0:0")
    revolve = run(loop, "revolve", "2:0:0")
    assert revolve.counters.forward_steps > STEPS  # it did recompute
    assert revolve.value == pytest.approx(store_all.value, rel=1e-12)
    for a, b in zip(store_all.initial_state_gradient + store_all.gradient,
                    revolve.initial_state_gradient + revolve.gradient):
        scale = max(np.linalg.norm(a.dat.data_ro), 1e-300)
        assert np.linalg.norm(a.dat.data_ro - b.dat.data_ro) / scale < 1e-10

    # Taylor test in a joint direction of (initial thickness, friction, accumulation).  The thickness perturbation is
    # a bump far upstream of the grounding line: J is not differentiable where grounded/afloat switches or the
    # h >= 0 clamp acts, and a perturbation reaching the grounding line (x = 450 km) within 50 years would cross them.
    x, y = fd.SpatialCoordinate(model.mesh)
    Q = model.thickness.function_space()
    controls = (model.thickness, model.friction, model.accumulation)
    directions = [fd.Function(Q).interpolate(e) for e in
                  (20.0 * fd.exp(-((x - 1e5) / 5e4) ** 2), 2e-3 * fd.cos(y / 2e4), 0.1 * fd.cos(x / 2e5))]
    derivatives = (store_all.initial_state_gradient[0],) + store_all.gradient
    slope = sum(g.dat.inner(h.dat) for g, h in zip(derivatives, directions))
    assert abs(slope) > 0
    base = [c.copy(deepcopy=True) for c in controls]
    velocity = model.velocity.copy(deepcopy=True)
    remainders = []
    try:
        for eps in [0.5 / 2 ** k for k in range(3)]:
            for c, b, h in zip(controls, base, directions):
                c.assign(b + eps * h)
            model.velocity.assign(velocity)
            remainders.append(abs(evaluate(loop) - store_all.value - eps * slope))
    finally:
        for c, b in zip(controls, base):
            c.assign(b)
        model.velocity.assign(velocity)
    orders = [math.log2(r0 / r1) for r0, r1 in zip(remainders, remainders[1:])]
    assert min(orders) > 1.95, (remainders, orders)


def test_a_hinted_retape_skips_picard_and_gives_the_unhinted_gradient(ice):
    # The manager re-tapes F_i with the hint model.retape_hint() taken on x_{i+1} (the converged velocity); a model
    # without the hook re-tapes the whole Picard loop.  Both tapes hold one Newton solve at the same root, so the
    # gradients agree to the Newton tolerance.
    from checkpointing.adjoint import TimeLoop
    from checkpointing.adjoint.calibration import ObservedModel

    model, loop = ice

    class WithoutHint:
        state = property(lambda self: model.state)

        def step(self, dt):
            return model.step(dt)

    steps = {}
    results = {}
    for name, stepped in (("hinted", model), ("unhinted", WithoutHint())):
        infos = steps[name] = {True: [], False: []}
        observed = ObservedModel(stepped, lambda info, taped, seconds, infos=infos: infos[taped].append(info))
        results[name] = run(TimeLoop(observed, loop.timesteps, loop.controls, loop.functional), "revolve", "2:0:0")
    hinted, unhinted = steps["hinted"], steps["unhinted"]
    assert len(hinted[True]) == len(unhinted[True]) == STEPS
    assert [info.picard_iterations for info in hinted[True]] == [0] * STEPS
    assert all(info.newton_iterations + info.chord_iterations <= 1 for info in hinted[True])
    # unhinted solves iterate (Picard, Newton and/or chord, by the velocity strategy): more than the hinted one solve
    assert all(info.picard_iterations + info.newton_iterations + info.chord_iterations > 1
               for info in unhinted[True] + hinted[False] + unhinted[False])
    assert results["hinted"].counters.forward_steps == results["unhinted"].counters.forward_steps > STEPS
    assert results["hinted"].value == pytest.approx(results["unhinted"].value, rel=1e-12)
    for a, b in zip(results["unhinted"].initial_state_gradient + results["unhinted"].gradient,
                    results["hinted"].initial_state_gradient + results["hinted"].gradient):
        scale = max(np.linalg.norm(a.dat.data_ro), 1e-300)
        assert np.linalg.norm(a.dat.data_ro - b.dat.data_ro) / scale < 1e-8
