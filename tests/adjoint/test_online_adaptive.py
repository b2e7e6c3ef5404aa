"""Adaptive time steps through the online checkpointer (CheckpointManager.run_online, checkpointing/online.py).

The chain's length is decided during the run: before each step a rule computes dt_i from the state x_i.  Oracles:
the gradient equals the store-all gradient of a fixed-step chain with the same recorded dt_i (to 1e-10: a schedule
changes what is recomputed, not the arithmetic; docs/model.md, section 6), and the executed counts equal the
simulator's report of the online schedule for the l reached (``online_schedule(l, platform)``, planned afresh,
without the run), so every recomputation reused its recorded dt_i.  On the nonlinear-diffusion toy model
(tests/support/toymodel.py) and on MISMIP+ Ice1r at 8 km with the stability rule (icesheet.stability.
AdaptiveTimesteps).
"""
import numpy as np
import pytest

pytestmark = pytest.mark.firedrake


def relative_difference(a, b) -> float:
    a, b = np.asarray(a.dat.data_ro), np.asarray(b.dat.data_ro)
    return float(np.abs(a - b).max() / np.abs(b).max())


def toy_rule(model, end):
    """dt_i = 0.02 / (1 + max u_i^2), up to t = end: a step that depends on the state."""
    steps = []

    def rule(index, state):
        elapsed = sum(steps)
        if elapsed >= end - 1e-12:
            return None
        (u,) = state
        dt = min(0.02 / (1.0 + float(np.max(u.dat.data_ro ** 2))), end - elapsed)
        steps.append(dt)
        return dt

    return rule


@pytest.mark.parametrize("slots", [2, 3, 5])
def test_toy_online_gradient_is_the_store_all_gradient_of_the_recorded_steps(slots, tmp_path):
    from checkpointing.adjoint import AdaptiveTimeLoop, TimeLoop, gradient, online_gradient
    from checkpointing.online import online_schedule
    from checkpointing.platform import Level, Platform
    from checkpointing.simulator import simulate
    from support.toymodel import NonlinearDiffusion, misfit_functional

    model = NonlinearDiffusion(6)
    controls = (model.source, model.diffusivity)
    adaptive = AdaptiveTimeLoop(model, toy_rule(model, 0.25), controls, lambda l: misfit_functional(model, l))
    platform = Platform((Level(slots, name="ram"),))
    online = online_gradient(adaptive, platform)
    l = len(online.timesteps)
    assert l == adaptive.steps and l > 3 * slots  # the run is long enough for recomputations
    assert len(set(online.timesteps[:-1])) > 1  # the steps do vary
    reference = gradient(TimeLoop(model, online.timesteps, controls, misfit_functional(model, l)), "store-all")
    assert online.value == pytest.approx(reference.value, rel=1e-10)
    for ours, theirs in zip(online.gradient + online.initial_state_gradient,
                            reference.gradient + reference.initial_state_gradient):
        assert relative_difference(ours, theirs) < 1e-10
    predicted = simulate(online_schedule(l, platform), platform, l)
    assert online.counters.mismatches(predicted) == []
    assert online.counters.forward_steps == predicted.forward_steps > l


def test_a_bad_time_step_from_the_rule_is_refused_and_the_state_restored():
    from checkpointing.adjoint import AdaptiveTimeLoop, CheckpointManager, RamTier
    from checkpointing.platform import Level, Platform
    from support.toymodel import NonlinearDiffusion, misfit_functional

    model = NonlinearDiffusion(4)
    initial = np.array(model.u.dat.data_ro)
    rule = lambda index, state: 0.01 if index < 3 else float("nan")  # noqa: E731
    adaptive = AdaptiveTimeLoop(model, rule, (model.source,), lambda l: misfit_functional(model, l))
    manager = CheckpointManager(adaptive, [RamTier(2)])
    with pytest.raises(ValueError, match=r"next_timestep\(3\) = nan"):
        manager.run_online(Platform((Level(2, name="ram"),)))
    assert np.array_equal(model.u.dat.data_ro, initial)
    with pytest.raises(TypeError, match="needs a TimeLoop"):
        manager.run([])


def test_ice_online_gradient_with_stability_steps_is_the_store_all_gradient(tmp_path):
    """MISMIP+ Ice1r at 8 km for 3 years, dt_i = a quarter of the stable step at x_i (icesheet/stability.py)."""
    from checkpointing.online import online_schedule
    from checkpointing.platform import Level, Platform
    from checkpointing.simulator import simulate
    from experiments.mismip import STATES, build
    from icesheet.controls import compute_gradient, compute_online_gradient
    from icesheet.functionals import build_functional
    from icesheet.stability import AdaptiveTimesteps

    model = build("mismip_ice1r", 8000.0, STATES / "ice0_8km.h5")
    rule = AdaptiveTimesteps(model, end=3.0, fraction=0.25)
    platform = Platform((Level(3, name="ram"), Level(2, name="disk")))
    online = compute_online_gradient(model, lambda l: build_functional(model, "vaf", l), rule, ("melt", "friction"),
                                     platform, [tmp_path / "disk"], level=1)
    timesteps = online.result.timesteps
    l = len(timesteps)
    assert list(timesteps) == rule.timesteps and sum(timesteps) == pytest.approx(3.0, rel=1e-12)
    assert l > 6 and len(set(timesteps[:-1])) > 1
    reference = compute_gradient(model, build_functional(model, "vaf", l), timesteps, ("melt", "friction"))
    assert online.value == pytest.approx(reference.value, rel=1e-10)
    for control in ("melt", "friction"):
        assert relative_difference(online.derivative[control], reference.derivative[control]) < 1e-10
    predicted = simulate(online_schedule(l, platform, level=1), platform, l)
    counters = online.result.counters
    assert counters.mismatches(predicted) == [] and counters.forward_steps > l
    assert counters.writes[1] > 0 and counters.writes[0] == 0  # the online checkpointer used the disk level only


def test_a_chain_that_never_ends_stops_after_max_steps_and_the_state_is_restored():
    """A rule that always gives a step: run_online raises once the rule asks for step max_steps + 1, having run
    exactly max_steps forward steps, and puts x_0 back."""
    from checkpointing.adjoint import AdaptiveTimeLoop, CheckpointManager, RamTier
    from checkpointing.platform import Level, Platform
    from support.toymodel import NonlinearDiffusion, misfit_functional

    model = NonlinearDiffusion(4)
    initial = np.array(model.u.dat.data_ro)
    stepped = []
    step = model.step
    model.step = lambda dt, **hint: (stepped.append(dt), step(dt, **hint))[1]
    adaptive = AdaptiveTimeLoop(model, lambda index, state: 0.01, (model.source,),
                                lambda l: misfit_functional(model, l))
    with pytest.raises(ValueError, match="max_steps = 5: the adaptive chain did not end within it"):
        CheckpointManager(adaptive, [RamTier(2)]).run_online(Platform((Level(2, name="ram"),)), max_steps=5)
    assert len(stepped) == 5
    assert np.array_equal(model.u.dat.data_ro, initial)
