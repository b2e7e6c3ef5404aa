"""H-Revolve against an exhaustive search over all valid schedules (checkpointing.bruteforce), on small chains."""
import random
from math import comb

import pytest

from checkpointing.bruteforce import exhaustive_search
from checkpointing.hrevolve import HRevolveTables, is_hierarchical, optimal_makespan
from checkpointing.planners import plan
from checkpointing.platform import INF, Level, Platform
from checkpointing.simulator import simulate


def small_instances(seed, count, hierarchical):
    """Random platforms with K <= 3 levels and chains short enough for the exhaustive search (l <= 8)."""
    rng = random.Random(seed)
    out = []
    while len(out) < count:
        K = rng.randint(1, 3)
        w = [rng.choice([0, 0.5, 1, 2, 5]) for _ in range(K)]
        r = [rng.choice([0, 0.5, 1, 2, 5]) for _ in range(K)]
        if hierarchical:
            w.sort(), r.sort()
        caps = [rng.choice([0, 1, 1, 2, 2, 3]) for _ in range(K - 1)] + [rng.choice([1, 2, 3, INF])]
        if not any(caps):
            continue
        platform = Platform(tuple(Level(c, wk, rk) for c, wk, rk in zip(caps, w, r)),
                            uf=rng.choice([0.5, 1, 2]), ub=rng.choice([0, 1, 2, 5]))
        if is_hierarchical(platform) != hierarchical:
            continue
        l = rng.randint(0, 8)
        while search_size(l, caps) > 60_000:
            l -= 1
        out.append((l, platform))
    return out


def search_size(l, caps):
    """A rough count of the search's states: working state x next backward step x stored sets per level."""
    size = (l + 1) ** 2
    for c in caps:
        size *= sum(comb(l + 1, i) for i in range(int(min(c, l + 1)) + 1))
    return size


def check_against_exhaustive_search(l, platform):
    best, witness = exhaustive_search(l, platform)
    # the witness is a valid schedule of that cost: the search and the simulator agree
    assert simulate(witness, platform, l).makespan == pytest.approx(best)
    assert optimal_makespan(l, platform) == pytest.approx(best), (l, platform.describe())
    assert simulate(plan("hrevolve", l, platform), platform, l).makespan == pytest.approx(best)


@pytest.mark.parametrize("l, platform", small_instances(2020, 40, hierarchical=True))
def test_hrevolve_is_optimal_on_hierarchical_platforms(l, platform):
    check_against_exhaustive_search(l, platform)


@pytest.mark.parametrize("l, platform", small_instances(2016, 15, hierarchical=False))
def test_best_level_order_matches_search_on_other_platforms(l, platform):
    check_against_exhaustive_search(l, platform)


@pytest.mark.parametrize("l, spec", [(8, "3:0:0"), (8, "1:0:0,1:1:1,1:2:2"), (7, "2:0:0,inf:2:2"),
                                     (6, "1:0:0,2:1:1,inf:3:3"), (8, "1:0:0,inf:1:1")])
def test_longer_chains(l, spec):
    check_against_exhaustive_search(l, Platform.from_spec(spec, uf=1, ub=1))


def test_level_order_matters_when_costs_do_not_grow():
    """Level 1 reads for free but level 0 does not: the DP in the given order keeps x_0 on level 1 and misses the
    optimum, which keeps x_0 on level 0 and later checkpoints on level 1."""
    platform = Platform.from_spec("1:0.5:1,1:1:0", uf=1, ub=0)
    best, _ = exhaustive_search(6, platform)
    assert HRevolveTables(6, platform).value() > best + 0.25
    assert optimal_makespan(6, platform) == pytest.approx(best)
