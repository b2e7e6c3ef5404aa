"""The forecast of a run's rest from its first forward sweep (checkpointing.adjoint.calibration: forecast_rest,
FirstSweepForecast, Calibration.backward_costs_for).

Oracles: synthetic calibrations whose backward costs follow a known law (constant, or proportional to the forward
costs) are extended exactly by the matching model; the rest of recompute-all costs the prefix sums of the forward
costs (closed form); on the manager's toy model with a virtual clock (every step advances it by a known cost), the
forecast is made after exactly the first ``l`` untaped steps and before any backward step, and the recomputation
it predicts is exactly what the run then spends in untaped steps.
"""
import dataclasses

import numpy as np
import pytest

pytestmark = pytest.mark.firedrake


def synthetic_calibration(forward, backward, capacities=(2,), write=(0.01,), read=(0.02,)):
    from checkpointing.adjoint.calibration import Calibration

    return Calibration(forward_costs=tuple(forward), backward_costs=tuple(backward), write_costs=tuple(write),
                       read_costs=tuple(read), capacities=tuple(capacities), names=tuple(f"t{k}" for k in
                                                                                          range(len(capacities))))


def test_backward_models_extend_a_known_law_exactly():
    prefix = np.array([0.3, 0.5, 0.2, 0.4])
    later = np.array([0.9, 0.1, 0.6, 0.6, 1.2, 0.7, 0.8])
    constant = synthetic_calibration(prefix, [0.25] * 4 + [0.01])
    assert constant.backward_costs_for(later, "constant") == pytest.approx(np.append([0.25] * 7, 0.01))
    proportional = synthetic_calibration(prefix, list(1.5 * prefix) + [0.01])
    assert proportional.backward_costs_for(later, "forward") == pytest.approx(np.append(1.5 * later, 0.01))
    with pytest.raises(ValueError, match="model = 'linear'"):
        constant.backward_costs_for(later, "linear")


def test_calibration_read_back_from_its_dictionary_predicts_the_same():
    import json

    from checkpointing.adjoint.calibration import Calibration, forecast_rest
    from checkpointing.planners import plan

    calibration = synthetic_calibration([0.3, 0.5, 0.4], [0.25, 0.3, 0.2, 0.01], capacities=(2, float("inf")),
                                        write=(0.0, 0.5), read=(0.0, 0.4))
    again = Calibration.from_dict(json.loads(json.dumps(calibration.to_dict())))
    assert again == calibration
    forward = [0.5, 0.2, 0.9, 0.4, 0.7, 0.6, 0.3, 0.8]
    schedule = plan("hrevolve", len(forward), calibration.platform())
    assert forecast_rest(schedule, again, forward) == forecast_rest(schedule, calibration, forward)


def test_forecast_of_recompute_all_is_its_closed_form():
    """x_0 in the one RAM slot: rest = sum_{i=1}^{l-1} (F_0 + ... + F_{i-1}) + sum ub_i + l r, in its parts."""
    from checkpointing.adjoint.calibration import forecast_rest
    from checkpointing.planners import plan
    from checkpointing.simulator import simulate

    calibration = synthetic_calibration([0.3, 0.5], [0.25, 0.25, 0.01], capacities=(1,))
    forward = np.array([0.4, 0.9, 0.2, 0.7, 1.1, 0.3])
    steps = len(forward)
    schedule = plan("recompute-all", steps, calibration.platform())
    forecast = forecast_rest(schedule, calibration, forward)
    recomputation = np.cumsum(forward)[:steps - 1].sum()
    backward = steps * 0.25 + 0.01
    assert forecast["recomputation"] == pytest.approx(recomputation)
    assert forecast["backward"] == pytest.approx(backward)
    assert forecast["storage"] == pytest.approx(steps * 0.02)
    assert forecast["rest"] == pytest.approx(recomputation + backward + steps * 0.02)
    assert forecast["first_sweep"] == pytest.approx(forward.sum() + 0.01)
    whole = simulate(schedule, calibration.platform(), steps, forward_costs=forward,
                     backward_costs=calibration.backward_costs_for(forward))
    assert forecast["first_sweep"] + forecast["rest"] == pytest.approx(whole.makespan)


TIMESTEPS = (0.03, 0.01, 0.05, 0.02, 0.06, 0.04, 0.07)
COST = {dt: 100 * dt for dt in TIMESTEPS}  # virtual seconds of the step of each dt


class VirtualClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class VirtualCostDiffusion:
    """The toy model, each step advancing a virtual clock by its known cost; records the untaped steps' costs."""

    def __init__(self, clock):
        from support.toymodel import NonlinearDiffusion

        self.model, self.clock, self.untaped = NonlinearDiffusion(cells=4), clock, []

    @property
    def state(self):
        return self.model.state

    def step(self, dt):
        from firedrake.adjoint import annotate_tape

        self.clock.now += COST[dt]
        if not annotate_tape():
            self.untaped.append(COST[dt])
        return self.model.step(dt)


def test_forecast_is_made_when_the_first_sweep_ends_and_predicts_the_recomputation():
    from checkpointing.adjoint import CheckpointManager, RamTier, TimeLoop
    from checkpointing.adjoint.calibration import FirstSweepForecast, ObservedModel
    from checkpointing.planners import plan
    from support.toymodel import misfit_functional

    clock = VirtualClock()
    virtual = VirtualCostDiffusion(clock)
    steps = len(TIMESTEPS)
    calibration = synthetic_calibration([1.0, 2.0], [1.5, 1.5, 0.1], capacities=(2,))
    platform = calibration.platform()
    schedule = plan("hrevolve", steps, platform)
    seen = {}

    def announce(predictions):
        seen["untaped steps"] = len(virtual.untaped)
        seen["backward steps begun"] = calls["functional"]

    forecast = FirstSweepForecast(schedule, calibration, steps, announce=announce)
    functional = misfit_functional(virtual.model, steps)
    calls = {"functional": 0}

    def counted(index, state):
        calls["functional"] += 1  # the manager evaluates j_i at the start of Fbar_i only
        return functional(index, state)

    loop = TimeLoop(ObservedModel(virtual, forecast, clock), TIMESTEPS, (virtual.model.source,), counted)
    result = CheckpointManager(loop, [RamTier(2)]).run(schedule, platform)
    assert result.counters.forward_steps > steps  # H-Revolve on 2 slots recomputes
    assert seen == {"untaped steps": steps, "backward steps begun": 0}
    assert forecast.first_sweep_costs == pytest.approx([COST[dt] for dt in TIMESTEPS], rel=1e-12)
    prediction = forecast.predictions["constant"]
    assert prediction["recomputation"] == pytest.approx(sum(virtual.untaped[steps:]), rel=1e-12)
    assert forecast.recomputed_seconds == pytest.approx(prediction["recomputation"], rel=1e-12)
    assert set(forecast.predictions) == {"constant", "forward"}


def test_forecast_refuses_a_schedule_that_reads_before_the_first_sweep_ends():
    from checkpointing.actions import Advance, Backward, Read, Write
    from checkpointing.adjoint.calibration import FirstSweepForecast

    calibration = synthetic_calibration([1.0], [1.0, 0.1], capacities=(1,))
    schedule = [Write(0, 0), Advance(0, 1), Read(0, 0), Advance(0, 2), Backward(2), Read(0, 0), Advance(0, 1),
                Backward(1), Read(0, 0), Backward(0)]
    with pytest.raises(ValueError, match="before the first forward sweep reaches x2"):
        FirstSweepForecast(schedule, calibration, 2)


def test_a_longer_chain_is_predicted_with_the_profile_and_its_own_backward_mean():
    """Calibration.chain_costs / predict_chain / platform(steps=...) on a prefix of 3 steps carried to 8: forward
    costs the measured ones, then the mean of the prefix's steps 1.. times rho; backward costs the prefix's mean
    with u_b,l apart; recompute-all against its closed form
    w + P_l + sum_{i=1}^{l-1} P_i + sum_i ub_i + l r (P_i: prefix sums of the forward costs); for store-all the
    uniform platform of the chain (ub = (l mean + ub_l) / (l + 1)) predicts the same, the prefix's platform less;
    the chain's uniform u_f with the profile, a chain of 2 < l_c steps and ndarray costs against hand values."""
    from checkpointing.planners import plan
    from checkpointing.simulator import simulate

    calibration = synthetic_calibration([0.3, 0.5, 0.4], [0.25, 0.3, 0.2, 0.01], capacities=(1,), write=(0.05,),
                                        read=(0.02,))
    rho = np.array([1.0, 1.2, 0.8, 1.5, 2.0, 1.7, 1.1, 0.9])
    steps = len(rho)
    forward, backward = calibration.chain_costs(steps, rho)
    assert forward == pytest.approx([0.3, 0.5, 0.4, *(0.45 * rho[3:])])
    assert backward == pytest.approx([0.25] * steps + [0.01])
    schedule = plan("recompute-all", steps, calibration.platform())
    prefix_sums = np.cumsum(forward)
    closed = 0.05 + prefix_sums[-1] + prefix_sums[:steps - 1].sum() + backward.sum() + steps * 0.02
    assert calibration.predict_chain(schedule, steps, rho).makespan == pytest.approx(closed)

    chain = calibration.platform(steps=steps)
    assert chain.uf == pytest.approx((1.2 + 5 * 0.45) / steps) and chain.ub == pytest.approx((steps * 0.25 + 0.01) / (steps + 1))
    # with the profile: u_f = (u_f,0 + u_f,1 + u_f,2 + 0.45 (rho_3 + .. + rho_7)) / 8, u_b unchanged (constant model)
    drifting = calibration.platform(steps=steps, profile=rho)
    assert drifting.uf == pytest.approx((0.3 + 0.5 + 0.4 + 0.45 * (1.5 + 2.0 + 1.7 + 1.1 + 0.9)) / steps)
    assert drifting.ub == pytest.approx(chain.ub)
    # a chain shorter than the prefix: its first 2 measured u_f, u_b,0 = u_b,1 = mean(0.25, 0.3, 0.2), u_b,2 = 0.01
    short_forward, short_backward = calibration.chain_costs(2)
    assert short_forward == pytest.approx([0.3, 0.5]) and short_backward == pytest.approx([0.25, 0.25, 0.01])
    with pytest.raises(ValueError, match="steps = -1: the chain length must be an integer >= 0"):
        calibration.chain_costs(-1)
    as_arrays = dataclasses.replace(calibration, forward_costs=np.array(calibration.forward_costs),
                                    backward_costs=np.array(calibration.backward_costs))
    array_forward, array_backward = as_arrays.chain_costs(steps, rho)  # ndarray costs: the same hand values
    assert array_forward == pytest.approx([0.3, 0.5, 0.4, *(0.45 * rho[3:])])
    assert array_backward == pytest.approx([0.25] * steps + [0.01])
    roomy = synthetic_calibration([0.3, 0.5, 0.4], [0.25, 0.3, 0.2, 0.01], capacities=(steps,), write=(0.05,),
                                  read=(0.02,))
    schedule = plan("store-all", steps, roomy.platform())
    flat = roomy.predict_chain(schedule, steps)
    assert simulate(schedule, roomy.platform(steps=steps), steps).makespan == pytest.approx(flat.makespan)
    assert simulate(schedule, roomy.platform(), steps).makespan < flat.makespan - 0.1


def test_drift_profile_is_relative_to_the_pilot_prefix():
    from checkpointing.adjoint.calibration import drift_profile

    pilot = np.array([0.2, 0.4, 0.3, 0.6, 0.9, 0.75])
    assert drift_profile(pilot, 3) == pytest.approx(pilot / 0.35)  # steps 1..l_c-1: the first apart
    assert drift_profile(pilot, 1) == pytest.approx(pilot / 0.2)
    for bad in (0, 7, 2.0, True):
        with pytest.raises(ValueError, match=f"prefix_steps = {bad!r}: must be an integer in 1..6"):
            drift_profile(pilot, bad)
    assert drift_profile(pilot, np.int64(3)) == pytest.approx(pilot / 0.35)
    with pytest.raises(ValueError, match=r"pilot_costs\[1:2\] are all 0"):
        drift_profile([1.0, 0.0, 1.0], 2)
    with pytest.raises(ValueError, match=r"pilot_costs\[0\] is 0"):  # l_c = 1: the slice actually used
        drift_profile([0.0, 1.0], 1)
    for bad in (None, 3.0):
        with pytest.raises(ValueError, match=f"pilot_costs = {bad!r}: must be a sequence"):
            drift_profile(bad, 1)


class VirtualTier:
    """A tier whose write, read and discard advance a virtual clock by known costs."""

    capacity, name = 1, "virtual"

    def __init__(self, clock, write, read, discard):
        self.clock, self.costs = clock, {"write": write, "read": read, "discard": discard}

    def open(self, layout, slots, comm):
        pass

    def close(self):
        pass

    def write(self, index, arrays):
        self.clock.now += self.costs["write"]

    def read(self, index):
        self.clock.now += self.costs["read"]

    def discard(self, index):
        self.clock.now += self.costs["discard"]


def test_tier_write_cost_includes_the_discard():
    """Every checkpoint written is discarded once, and the cost model charges it once (w_k): w = write + discard."""
    from mpi4py import MPI

    from checkpointing.adjoint.calibration import measure_tier_costs

    clock = VirtualClock()
    tier = VirtualTier(clock, write=1.5e-3, read=1.0e-3, discard=2.5e-3)
    write, read = measure_tier_costs(tier, [np.zeros(4)], MPI.COMM_WORLD, repeats=3, clock=clock)
    assert write == pytest.approx(4.0e-3) and read == pytest.approx(1.0e-3)
