"""Property tests: random platforms and lengths give simulator-valid schedules whose makespan is the DP value, and
no planner beats the optimum."""
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checkpointing.emit import ScheduleDoesNotFit
from checkpointing.hrevolve import is_hierarchical
from checkpointing.planners import PLANNERS, optimal_makespan, plan
from checkpointing.platform import INF, Level, Platform
from checkpointing.simulator import simulate

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
costs = st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 7.5])


@st.composite
def platforms(draw, hierarchical=False):
    K = draw(st.integers(1, 3))
    caps = [draw(st.sampled_from([0, 1, 2, 3, 5, INF])) for _ in range(K - 1)]
    caps.append(draw(st.sampled_from([1, 2, 4, 9, INF])))
    w = [draw(costs) for _ in range(K)]
    r = [draw(costs) for _ in range(K)]
    if hierarchical:
        w.sort(), r.sort()
    uf = draw(st.sampled_from([0.5, 1.0, 2.0, 3.0]))
    ub = draw(st.sampled_from([0.0, 1.0, 2.0, 5.0]))
    return Platform(tuple(Level(c, wk, rk) for c, wk, rk in zip(caps, w, r)), uf=uf, ub=ub)


@SETTINGS
@given(platforms(), st.integers(0, 80))
def test_hrevolve_schedule_is_valid_and_costs_the_dp_value(platform, l):
    report = simulate(plan("hrevolve", l, platform), platform, l)
    assert report.makespan == pytest.approx(optimal_makespan(l, platform), rel=1e-12)
    assert report.backward_steps == l + 1
    assert all(p <= c for p, c in zip(report.peak, platform.capacities))


@SETTINGS
@given(platforms(hierarchical=True), st.integers(0, 60))
def test_no_planner_beats_the_optimum(platform, l):
    assert is_hierarchical(platform)
    best = optimal_makespan(l, platform)
    for name in PLANNERS:
        try:
            schedule = plan(name, l, platform)
        except ScheduleDoesNotFit:
            continue
        makespan = simulate(schedule, platform, l).makespan
        assert makespan >= best - 1e-9 * max(1.0, best), name


@SETTINGS
@given(platforms(hierarchical=True), st.integers(1, 60), st.data())
def test_periodic_disk_revolve_with_any_period(platform, l, data):
    period = data.draw(st.integers(1, l))
    try:
        schedule = plan("periodic-disk-revolve", l, platform, period=period)
    except ScheduleDoesNotFit as exc:
        assert platform.n_levels < 2 or math.ceil(l / period) > platform.capacities[1], str(exc)
        return
    assert simulate(schedule, platform, l).makespan >= optimal_makespan(l, platform) - 1e-9


def test_heuristics_can_be_strictly_worse():
    """Herrmann & Pallez (2020, section 6): Revolve on RAM alone and store-all lose to H-Revolve on a RAM + disk
    platform; the optimal two-level schedules (Disk-Revolve, H-Revolve) coincide."""
    platform = Platform.from_spec("3:0:0,inf:2:3", uf=1, ub=2)
    cost = {name: simulate(plan(name, 100, platform), platform, 100).makespan
            for name in ("revolve", "store-all", "disk-revolve", "hrevolve")}
    assert cost["revolve"] > cost["hrevolve"] and cost["store-all"] > cost["hrevolve"]
    assert cost["disk-revolve"] == cost["hrevolve"]


def test_bad_inputs_are_named():
    platform = Platform.from_spec("2:0:0", uf=1, ub=1)
    with pytest.raises(ValueError, match="planner = 'nope'"):
        plan("nope", 5, platform)
    with pytest.raises(ValueError, match="options \\['period'\\]: planner 'hrevolve' takes no options"):
        plan("hrevolve", 5, platform, period=2)
    with pytest.raises(ValueError, match="steps = -1"):
        plan("hrevolve", -1, platform)
    with pytest.raises(ScheduleDoesNotFit, match="holds 2 checkpoints.*l = 5"):
        plan("store-all", 5, platform)
    with pytest.raises(ScheduleDoesNotFit, match="level 1"):
        plan("periodic-disk-revolve", 5, platform)
