"""The checkpoint manager's gradient is pyadjoint's gradient, through every schedule, at the predicted cost.

Oracles: pyadjoint's own adjoint of the whole taped time loop (the peer library), a Taylor test (the remainder of
a first-order expansion must shrink like eps^2), and the schedule simulator's counts.
"""
import math

import numpy as np
import pytest

pytestmark = pytest.mark.firedrake

STEPS = 10
DT = 0.05

# planner name -> platform spec ("capacity:write:read" per level, level 0 in RAM, the others on disk)
SCHEDULES = {
    "store-all": "inf:0:0",
    "recompute-all": "1:0:0",
    "revolve": "3:0:0",
    "disk-revolve": "2:0:0,inf:2:2",
    "periodic-disk-revolve": "2:0:0,inf:2:2",
    "hrevolve": "1:0:0,1:0.5:0.5,inf:1:1",  # uses all three levels
    "nonuniform": "3:0:0",
}


@pytest.fixture(scope="module")
def toy():
    from checkpointing.adjoint import TimeLoop
    from support.toymodel import NonlinearDiffusion, misfit_functional

    model = NonlinearDiffusion(8)
    loop = TimeLoop(model, [DT] * STEPS, (model.source, model.diffusivity), misfit_functional(model, STEPS))
    return model, loop


@pytest.fixture(scope="module")
def store_all(toy, tmp_path_factory):
    return run_schedule(toy[1], "store-all", "inf:0:0", tmp_path_factory.mktemp("store-all"))[2]


def run_schedule(loop, name, spec, tmp_path):
    from checkpointing.adjoint import gradient
    from checkpointing.planners import plan
    from checkpointing.platform import Platform

    platform = Platform.from_spec(spec)
    directories = [tmp_path / f"level{k}" for k in range(1, platform.n_levels)]
    opts = {}
    if name == "nonuniform":  # a chain whose steps cost differently (e.g. Picard iteration counts)
        opts = {"forward_costs": [1.0 + (i % 3) for i in range(STEPS)], "backward_costs": [2.0] * (STEPS + 1)}
    schedule = plan(name, STEPS, platform, **opts)
    result = gradient(loop, name, platform, directories, planner_options=opts)
    return schedule, platform, result


def taped_reference(model, loop):
    """J and dJ/d(x_0, source, diffusivity) by pyadjoint: the whole loop on one tape, compute_derivative."""
    from firedrake.adjoint import Control, Tape, compute_derivative, continue_annotation, pause_annotation, \
        set_working_tape

    initial = model.u.copy(deepcopy=True)
    with set_working_tape(Tape()) as tape:
        continue_annotation()
        try:
            controls = [Control(model.u), Control(model.source), Control(model.diffusivity)]
            J = 0.0
            for i in range(STEPS + 1):
                term = loop.functional(i, model.state)
                J = J if term is None else J + term
                if i < STEPS:
                    model.step(DT)
        finally:
            pause_annotation()
        derivatives = compute_derivative(J, controls, tape=tape)
    value = float(J)
    model.u.assign(initial)
    return value, [d.dat.data_ro.copy() for d in derivatives]


def manager_derivatives(result):
    return [g.dat.data_ro.copy() for g in result.initial_state_gradient + result.gradient]


def relative_error(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def test_store_all_matches_pyadjoint_whole_tape(toy, store_all):
    model, loop = toy
    value, reference = taped_reference(model, loop)
    result = store_all
    assert result.value == pytest.approx(value, rel=1e-12)
    for ours, theirs in zip(manager_derivatives(result), reference, strict=True):
        assert relative_error(ours, theirs) < 1e-10


def test_taylor_remainder_is_second_order(toy):
    """|J(m + eps h) - J(m) - eps dJ(m).h| = O(eps^2) for a joint direction h in (x_0, source, diffusivity)."""
    import firedrake as fd
    from checkpointing.adjoint import CheckpointManager, RamTier
    from checkpointing.planners import plan
    from checkpointing.platform import Platform

    model, loop = toy
    manager = CheckpointManager(loop, [RamTier(3)])
    result = manager.run(plan("revolve", STEPS, Platform.from_spec("3:0:0")))
    assert manager.evaluate() == pytest.approx(result.value, rel=1e-12)
    x, y = fd.SpatialCoordinate(model.mesh)
    V = model.u.function_space()
    controls = (model.u, model.source, model.diffusivity)
    directions = [fd.Function(V).interpolate(e) for e in (fd.sin(4 * x) * y, fd.cos(3 * y) + x, 0.02 * x * (1 - y))]
    derivatives = result.initial_state_gradient + result.gradient
    slope = sum(g.dat.inner(h.dat) for g, h in zip(derivatives, directions))
    base = [c.copy(deepcopy=True) for c in controls]
    remainders = []
    for eps in [1e-2 / 2 ** k for k in range(4)]:
        for c, b, h in zip(controls, base, directions):
            c.assign(b + eps * h)
        remainders.append(abs(manager.evaluate() - result.value - eps * slope))
    for c, b in zip(controls, base):
        c.assign(b)
    orders = [math.log2(r0 / r1) for r0, r1 in zip(remainders, remainders[1:])]
    assert min(orders) > 1.95, (remainders, orders)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_every_schedule_gives_the_store_all_gradient_at_the_predicted_counts(toy, store_all, tmp_path, name):
    from checkpointing.simulator import simulate

    model, loop = toy
    reference = store_all
    schedule, platform, result = run_schedule(loop, name, SCHEDULES[name], tmp_path)
    assert result.value == pytest.approx(reference.value, rel=1e-12)
    for ours, theirs in zip(manager_derivatives(result), manager_derivatives(reference), strict=True):
        assert relative_error(ours, theirs) < 1e-10
    predicted = simulate(schedule, platform, STEPS)
    counted = result.counters
    assert (counted.forward_steps, counted.backward_steps) == (predicted.forward_steps, predicted.backward_steps)
    assert (counted.reads, counted.writes, counted.peak) == (predicted.reads, predicted.writes, predicted.peak)
    assert counted.mismatches(predicted) == []
    assert result.predicted.makespan == predicted.makespan
    assert counted.backward_steps == STEPS + 1
    assert not any(tmp_path.rglob("*.bin")), "checkpoint files left behind"


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_every_retaped_step_gets_the_hint_taken_on_its_own_result(toy, store_all, tmp_path, name):
    # A model with the optional retape_hint hook (protocol.py) whose hint is its whole state: a re-taped F_i must
    # receive exactly x_{i+1} (the result it then computes), in every schedule, and the gradient must not change.
    from checkpointing.adjoint import TimeLoop

    model, loop = toy

    class HintIsState:
        state = property(lambda self: model.state)
        received = []  # per hinted step: the hint equals the step's result

        def retape_hint(self):
            return model.u.dat.data_ro.copy()

        def step(self, dt, hint=None):
            info = model.step(dt)
            if hint is not None:
                self.received.append(np.array_equal(hint, model.u.dat.data_ro))
            return info

    hinted = TimeLoop(HintIsState(), loop.timesteps, loop.controls, loop.functional)
    _, _, result = run_schedule(hinted, name, SCHEDULES[name], tmp_path)
    assert HintIsState.received == [True] * STEPS
    for ours, theirs in zip(manager_derivatives(result), manager_derivatives(store_all), strict=True):
        assert relative_error(ours, theirs) < 1e-10


def test_state_is_restored_and_a_second_run_agrees(toy, tmp_path):
    model, loop = toy
    before = model.u.dat.data_ro.copy()
    _, _, first = run_schedule(loop, "hrevolve", SCHEDULES["hrevolve"], tmp_path)
    assert np.array_equal(model.u.dat.data_ro, before)
    _, _, second = run_schedule(loop, "hrevolve", SCHEDULES["hrevolve"], tmp_path)
    assert second.value == first.value  # the forward recomputations repeat bit for bit
    for a, b in zip(manager_derivatives(first), manager_derivatives(second)):
        assert relative_error(a, b) < 1e-12  # adjoint sums may be accumulated in another order


def test_the_entry_point_times_the_whole_run_and_refuses_inconsistent_arguments(toy, store_all, tmp_path):
    """``checkpointing.adjoint.gradient``: its run time covers every action's; ``evaluate`` gives the same J; bad
    combinations of schedule, platform and storage fail before anything runs, naming the argument."""
    from checkpointing.adjoint import RamTier, evaluate, gradient
    from checkpointing.planners import plan
    from checkpointing.platform import Platform

    _, loop = toy
    assert store_all.run_time >= sum(store_all.counters.wall_time.values()) > 0 and store_all.cpu_time > 0
    assert evaluate(loop) == pytest.approx(store_all.value, rel=1e-12)
    ram = Platform.from_spec("inf:0:0")
    with pytest.raises(ValueError, match="planner_options"):
        gradient(loop, plan("store-all", STEPS, ram), ram, planner_options={"period": 2})
    with pytest.raises(ValueError, match="1 directories are needed"):
        gradient(loop, "disk-revolve", Platform.from_spec("2:0:0,inf:2:2"))
    with pytest.raises(TypeError, match="storage"):
        gradient(loop, "store-all", ram, [RamTier(), tmp_path])
