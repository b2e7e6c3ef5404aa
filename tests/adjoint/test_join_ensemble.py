"""A join schedule on the ice model: an ensemble of 3 marine-ice-stream runs (20 km cells, 3 steps of 10 years)
under accumulations 0.2, 0.3 and 0.5 m/yr, joined by the mean volume above flotation, differentiated with respect to
the shared basal friction through checkpointing/adjoint/join.py.  Oracle: the mean of the three runs' store-all
gradients, each computed alone by the chain manager; the executed counts must be the join simulator's."""
import numpy as np
import pytest

pytestmark = pytest.mark.firedrake

STEPS, DT = 3, 10.0
ACCUMULATIONS = (0.2, 0.3, 0.5)


@pytest.fixture(scope="module")
def ensemble():
    from icesheet.ensemble import ensemble_loop
    from icesheet.scenarios import build_model, scenario_parameters

    model = build_model("marine_ice_stream", scenario_parameters("marine_ice_stream",
                                                                 overrides={"mesh.cell_size": 20000.0}))
    loop = ensemble_loop(model, ACCUMULATIONS, STEPS, DT, "vaf", ("friction",))
    return model, loop


@pytest.fixture(scope="module")
def store_all_mean(ensemble):
    """The mean over the runs of each run's store-all gradient (J_b = VAF_b / p, so their sum)."""
    from checkpointing.adjoint import gradient

    model, loop = ensemble
    values, gradients = [], []
    for b in range(loop.p):
        loop.activate(b)
        result = gradient(loop.tooth_loop(b), "store-all")
        values.append(result.value)
        gradients.append(result.gradient[0].dat.data_ro.copy())
    loop.activate(None)
    assert min(np.linalg.norm(g - gradients[0]) for g in gradients[1:]) > 1e-3 * np.linalg.norm(gradients[0])
    return sum(values), sum(gradients)


@pytest.mark.parametrize("planner, slots", [("optimal", 4), ("one-after-another", 5)])
def test_join_gradient_is_the_mean_of_store_all_gradients(ensemble, store_all_mean, planner, slots):
    from checkpointing.adjoint import RamTier
    from checkpointing.adjoint.join import JoinManager
    from checkpointing.join_planners import plan_join
    from checkpointing.platform import Level, Platform

    model, loop = ensemble
    platform = Platform((Level(slots),))
    schedule = plan_join(planner, loop.graph(), platform)
    thickness = model.thickness.dat.data_ro.copy()
    result = JoinManager(loop, [RamTier(slots)]).run(schedule, platform)
    value, reference = store_all_mean
    assert result.counters.mismatches(result.predicted) == []
    assert result.counters.peak[0] <= slots
    assert sum(result.counters.forward_steps) > loop.p * STEPS          # it recomputed
    assert result.value == pytest.approx(value, rel=1e-12)
    error = np.linalg.norm(result.gradient[0].dat.data_ro - reference) / np.linalg.norm(reference)
    assert error < 1e-10
    assert np.array_equal(model.thickness.dat.data_ro, thickness)       # the model's state is put back


def test_a_misfit_of_the_ensemble_mean_seeds_every_run_with_its_derivative(ensemble, store_all_mean):
    """J = (mean VAF - T)^2 / (2T) joins the runs for real: each run's adjoint is seeded with J'(mean), known only
    once every run has ended.  Oracle: the chain rule on the store-all gradients of the mean.  (J is scaled so that
    the seed J' = mean / T - 1 is O(0.1): the ice model's adjoint is not exact for seeds of 1e-15, see
    docs/join_graphs.md.)"""
    from checkpointing.adjoint import RamTier
    from checkpointing.adjoint.join import JoinLoop, JoinManager
    from checkpointing.join_planners import plan_join
    from checkpointing.platform import Level, Platform

    model, mean_loop = ensemble
    value, reference = store_all_mean
    target = 0.9 * value
    loop = JoinLoop(mean_loop.model, mean_loop.timesteps, mean_loop.controls, mean_loop.activate,
                    mean_loop.join_term, (lambda y: (y - target) ** 2 / (2 * target), lambda y: (y - target) / target))
    platform = Platform((Level(4),))
    result = JoinManager(loop, [RamTier(4)]).run(plan_join("optimal", loop.graph(), platform), platform)
    assert result.join == pytest.approx(value, rel=1e-12)
    assert result.value == pytest.approx((value - target) ** 2 / (2 * target), rel=1e-10)
    expected = (value - target) / target * reference
    assert np.linalg.norm(result.gradient[0].dat.data_ro - expected) / np.linalg.norm(expected) < 1e-10
    assert result.counters.mismatches(result.predicted) == []
