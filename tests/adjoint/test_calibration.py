"""Calibration of the cost model (checkpointing.adjoint.calibration) on the manager's toy model.

Oracles: a step that sleeps a known time costs at least that long, forward and taped (lower bounds only: no
timing assertion that load could break); the calibrated platform's H-Revolve schedule has the dynamic-programming
optimal makespan (Herrmann & Pallez 2020; docs/checkpointing.md) and, run by the manager on the calibrated tiers, gives the store-all
gradient with the simulator's counts; calibration leaves the model's state and the disk as it found them.
"""
import time

import numpy as np
import pytest

pytestmark = pytest.mark.firedrake

TIMESTEPS = (0.03, 0.06, 0.02, 0.04)  # dt_i, also the seconds step i sleeps


class SleepyDiffusion:
    """The toy model, sleeping ``dt`` seconds in every step: a step of known minimum cost."""

    def __init__(self):
        from support.toymodel import NonlinearDiffusion

        self.model = NonlinearDiffusion(cells=4)

    @property
    def state(self):
        return self.model.state

    def step(self, dt):
        time.sleep(dt)
        return self.model.step(dt)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    from checkpointing.adjoint import DiskTier, RamTier, TimeLoop
    from checkpointing.adjoint.calibration import calibrate
    from support.toymodel import misfit_functional

    sleepy = SleepyDiffusion()
    loop = TimeLoop(sleepy, TIMESTEPS, (sleepy.model.source,), misfit_functional(sleepy.model, len(TIMESTEPS)))
    disk = tmp_path_factory.mktemp("disk")
    tiers = [RamTier(1), DiskTier(disk, 2, name="disk")]
    initial = np.array(sleepy.model.u.dat.data_ro)
    calibration = calibrate(loop, tiers, repeats=3)
    return {"loop": loop, "tiers": tiers, "disk": disk, "initial": initial, "calibration": calibration}


def test_step_costs_are_at_least_the_known_sleeps(calibrated):
    calibration = calibrated["calibration"]
    steps = len(TIMESTEPS)
    assert calibration.steps == steps and len(calibration.backward_costs) == steps + 1
    for i, dt in enumerate(TIMESTEPS):
        assert calibration.forward_costs[i] >= dt
        assert calibration.taped_forward_costs[i] >= dt
        assert calibration.backward_costs[i] >= calibration.taped_forward_costs[i]  # Fbar_i re-runs F_i taped
    assert calibration.backward_costs[steps] > 0
    assert calibration.uf == pytest.approx(np.mean(calibration.forward_costs))


def test_calibration_restores_the_state_and_leaves_no_checkpoint_files(calibrated):
    assert np.array_equal(calibrated["loop"].state[0].dat.data_ro, calibrated["initial"])
    assert not any(calibrated["disk"].iterdir())
    ram, disk = calibrated["calibration"].write_costs
    assert ram >= 0 and disk > 0 and calibrated["calibration"].read_costs[1] > 0


def test_optimal_schedule_on_the_calibrated_platform_runs_with_the_store_all_gradient(calibrated):
    from checkpointing.adjoint import gradient
    from checkpointing.planners import optimal_makespan

    calibration, loop, tiers = calibrated["calibration"], calibrated["loop"], calibrated["tiers"]
    platform = calibration.platform()
    assert platform.capacities == [1, 2] and platform.write_costs == list(calibration.write_costs)
    schedule = calibration.optimal_schedule()
    assert calibration.predict(schedule, per_step=False).makespan == pytest.approx(
        optimal_makespan(len(TIMESTEPS), platform), rel=1e-12)
    result = gradient(loop, schedule, platform, tiers)
    assert result.counters.mismatches(calibration.predict(schedule)) == []
    reference = gradient(loop, "store-all")
    for run in (result, calibration.result):  # the calibration's own store-all run is a gradient too
        assert run.value == pytest.approx(reference.value, rel=1e-12)
        g, g_ref = run.gradient[0].dat.data_ro, reference.gradient[0].dat.data_ro
        assert np.linalg.norm(g - g_ref) <= 1e-10 * np.linalg.norm(g_ref)
    assert calibration.result.counters.forward_steps == len(TIMESTEPS)


def test_per_step_planner_is_no_worse_than_h_revolve_under_the_per_step_costs(calibrated):
    """The nonuniform dynamic programme minimises over the hierarchical schedules, H-Revolve's among them."""
    calibration = calibrated["calibration"]
    nonuniform = calibration.predict(calibration.plan("nonuniform")).makespan
    assert nonuniform <= calibration.predict(calibration.optimal_schedule()).makespan * (1 + 1e-12)


def test_bad_repeats_is_refused(calibrated):
    from checkpointing.adjoint.calibration import calibrate

    with pytest.raises(ValueError, match="repeats = 0"):
        calibrate(calibrated["loop"], calibrated["tiers"], repeats=0)
