"""Per-step costs (checkpointing.nonuniform) and the online checkpointer (checkpointing.online)."""
import random

import numpy as np
import pytest

from checkpointing.bruteforce import exhaustive_search
from checkpointing.hrevolve import hrevolve_tables, optimal_makespan
from checkpointing.nonuniform import nonuniform_makespan, nonuniform_schedule, nonuniform_tables
from checkpointing.online import OnlineCheckpointing, online_schedule
from checkpointing.planners import plan
from checkpointing.platform import INF, Level, Platform
from checkpointing.simulator import simulate

EXACT = ["3:0:0", "2:0.5:1", "0:0:0,2:1:1",                        # one level
         "1:0:0,inf:2:1", "2:0:0,2:1:3", "1:0:0,1:1:1,inf:2:4"]     # hierarchical with a free level 0


def per_step_costs(seed, l):
    rng = np.random.default_rng(seed)
    return rng.choice([0.25, 1.0, 3.0, 8.0], size=l), rng.choice([0.0, 1.0, 4.0], size=l + 1)


@pytest.mark.parametrize("spec", EXACT)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nonuniform_equals_exhaustive_search(spec, seed):
    platform = Platform.from_spec(spec, uf=1, ub=1)
    l = 6 if platform.n_levels < 3 else 5
    fwd, bwd = per_step_costs(seed, l)
    best, _ = exhaustive_search(l, platform, forward_costs=fwd, backward_costs=bwd)
    assert nonuniform_makespan(l, platform, fwd, bwd) == pytest.approx(best)
    schedule = plan("nonuniform", l, platform, forward_costs=fwd, backward_costs=bwd)
    assert simulate(schedule, platform, l, forward_costs=fwd, backward_costs=bwd).makespan == pytest.approx(best)


def test_nonuniform_multilevel_counterexample():
    """The case in checkpointing.nonuniform's docstring: with per-step costs and a level 0 that is not free, the
    best schedule is not hierarchical and the DP's (valid) schedule costs more."""
    platform = Platform.from_spec("2:0.5:0.5,2:1:3", uf=1, ub=1)
    fwd, bwd = [1, 3, 8, 8, 0.25, 0.25], [4, 4, 0, 0, 4, 1, 0]
    best, _ = exhaustive_search(6, platform, forward_costs=fwd, backward_costs=bwd)
    schedule = nonuniform_schedule(6, platform, fwd, bwd)
    makespan = simulate(schedule, platform, 6, forward_costs=fwd, backward_costs=bwd).makespan
    assert makespan == pytest.approx(nonuniform_makespan(6, platform, fwd, bwd))
    assert makespan > best + 0.25


def test_equal_costs_give_the_uniform_dp_for_every_sub_chain():
    rng = random.Random(5)
    for _ in range(12):
        caps = [rng.choice([0, 1, 2, 4]), rng.choice([1, 3, INF])][: rng.randint(1, 2)]
        if not any(caps):
            caps[0] = 1
        levels = tuple(Level(c, w, w) for c, w in zip(caps, (0.0, 2.0)))
        platform = Platform(levels, uf=rng.choice([0.5, 1, 2]), ub=rng.choice([0, 1, 3]))
        l = 30
        uniform = hrevolve_tables(l, platform)
        tables = nonuniform_tables(l, platform, [platform.uf] * l, [platform.ub] * (l + 1))
        for a in range(0, l + 1, 3):
            for n in range(l - a + 1):
                assert tables.value(n, start=a) == pytest.approx(uniform.value(n)), (a, n)


def test_expensive_steps_are_not_recomputed():
    """One very expensive step among cheap ones: the optimal schedule advances over it only once."""
    l = 40
    fwd = np.ones(l)
    fwd[25] = 1000.0
    platform = Platform.from_spec("3:0:0", uf=1, ub=1)
    schedule = nonuniform_schedule(l, platform, fwd)
    over_25 = sum(1 for a in schedule if type(a).__name__ == "Advance" and a.start <= 25 < a.end)
    assert over_25 == 1
    report = simulate(schedule, platform, l, forward_costs=fwd)
    assert report.makespan < simulate(plan("hrevolve", l, platform), platform, l, forward_costs=fwd).makespan


def test_nonuniform_refuses_huge_tables_before_allocating():
    with pytest.raises(ValueError, match="steps = 5000 .* GiB"):
        nonuniform_schedule(5000, Platform.from_spec("10:0:0,100:1:1,inf:5:5"))


def test_nonuniform_bad_costs():
    platform = Platform.from_spec("2:0:0")
    with pytest.raises(ValueError, match="forward_costs"):
        nonuniform_schedule(4, platform, [1.0, 2.0])
    with pytest.raises(ValueError, match="backward_costs"):
        nonuniform_schedule(4, platform, None, [1.0] * 4)


@pytest.mark.parametrize("spec", ["1:0:0", "2:0:0", "3:0.5:1", "5:0:0", "12:0:0", "inf:0:0"])
def test_online_is_valid_and_never_beats_the_offline_optimum(spec):
    platform = Platform.from_spec(spec, uf=1, ub=2)
    offline = hrevolve_tables(300, platform)
    for l in list(range(0, 60)) + [97, 150, 233, 300]:
        report = simulate(online_schedule(l, platform), platform, l)
        assert report.makespan >= offline.value(l) - 1e-9
        assert report.peak[0] <= platform.capacities[0]


@pytest.mark.parametrize("level", [0, 1])
def test_online_on_any_level_uses_that_level_only(level):
    """The checkpointer on level ``level`` of a two-level platform: its whole schedule (the reversal's segments
    too) stores on that level, and costs the same as on a one-level platform of that level."""
    platform = Platform.from_spec("3:0:0,4:1:2", uf=1, ub=2)
    alone = Platform((platform.levels[level],), uf=1, ub=2)
    for l in (5, 17, 40):
        schedule = online_schedule(l, platform, level=level)
        assert {a.level for a in schedule if hasattr(a, "level")} == {level}
        report = simulate(schedule, platform, l)
        assert report.makespan == pytest.approx(simulate(online_schedule(l, alone), alone, l).makespan)
        assert report.peak[1 - level] == 0


def test_online_emits_actions_step_by_step():
    platform = Platform.from_spec("3:0:0", uf=1, ub=1)
    online = OnlineCheckpointing(platform)
    emitted = []
    for i in range(10):
        actions = online.step()
        assert actions[-1].start == i and actions[-1].end == i + 1  # each step ends with one advance
        emitted += actions
    emitted += online.finish()
    assert emitted == online.actions
    simulate(emitted, platform, 10)
    with pytest.raises(RuntimeError):
        online.step()


def test_online_with_few_steps_is_optimal():
    """While the chain fits in the slots, nothing is recomputed."""
    platform = Platform.from_spec("6:0:0", uf=1, ub=1)
    for l in range(0, 7):
        assert simulate(online_schedule(l, platform), platform, l).makespan == optimal_makespan(l, platform)


def test_online_needs_a_slot():
    with pytest.raises(ValueError, match="level = 3"):
        OnlineCheckpointing(Platform.from_spec("2:0:0"), level=3)
