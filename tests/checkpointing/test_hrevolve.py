"""H-Revolve's dynamic programme: exactness of the fast tables, known optima, Disk-Revolve and Revolve limits."""
import math
import random
from functools import lru_cache

import pytest

from checkpointing.bruteforce import exhaustive_search
from checkpointing.hrevolve import HRevolveTables, hrevolve_tables, optimal_makespan
from checkpointing.planners import plan
from checkpointing.platform import INF, Level, Platform
from checkpointing.revolve import extra_forward_steps
from checkpointing.simulator import simulate


def plain_reference(l, platform):
    """The recursion of Herrmann & Pallez (2020, section 3), memoised and written as literally as possible, with
    the recompute-all term on every level (see checkpointing.hrevolve): no vectorisation, no capping of m."""
    uf, ub = platform.uf, platform.ub
    caps, w, r = platform.capacities, platform.write_costs, platform.read_costs

    def cap(k):
        return caps[k] if math.isfinite(caps[k]) else l + 1

    @lru_cache(maxsize=None)
    def opt(k, n, m):
        down = opt(k - 1, n, cap(k - 1)) if k > 0 else math.inf
        return down if m == 0 else min(down, w[k] + optbar(k, n, m))

    @lru_cache(maxsize=None)
    def optbar(k, n, m):
        if n == 0:
            return ub
        options = [(n + 1) * ub + n * (n + 1) / 2 * uf + n * r[k]]
        if k > 0:
            options.append(opt(k - 1, n, cap(k - 1)))
        options += [j * uf + opt(k, n - j, m - 1) + r[k] + optbar(k, j - 1, m) for j in range(1, n)]
        return min(options)

    return ub if l == 0 else opt(len(caps) - 1, l, cap(len(caps) - 1))


def random_platform(rng, k_max=3):
    levels = []
    K = rng.randint(1, k_max)
    for k in range(K):
        levels.append(Level(rng.choice([0, 1, 2, 3, 5, 30, INF]) if k < K - 1 else rng.choice([1, 2, 4, 30, INF]),
                            rng.choice([0, 0.5, 1, 3]), rng.choice([0, 0.5, 1, 3])))
    return Platform(tuple(levels), uf=rng.choice([0.5, 1, 2]), ub=rng.choice([0, 1, 2.5]))


def test_tables_equal_plain_recursion():
    rng = random.Random(20200601)
    for _ in range(60):
        platform = random_platform(rng)
        l = rng.randint(0, 25)
        tables = HRevolveTables(l, platform)  # the levels in the given order, as in the recursion
        for n in range(l + 1):
            assert tables.value(n) == pytest.approx(plain_reference(n, platform), rel=1e-12), (n, platform)


def test_schedules_simulate_to_the_table_value():
    rng = random.Random(7)
    for _ in range(40):
        platform = random_platform(rng)
        l = rng.randint(0, 60)
        tables = hrevolve_tables(l, platform)
        report = simulate(tables.schedule(), platform, l)
        assert report.makespan == pytest.approx(tables.value(), rel=1e-12)
        assert all(p <= c for p, c in zip(report.peak, platform.capacities))


def test_known_case_where_the_peer_swaps_uf_and_ub():
    """docs/references.md (checkpoint_schedules): l = 60, 2 RAM slots + 20 disk slots, w = r = [0, 2], uf = 1, ub = 5: optimum 478
    (539 = 478 + (l + 1) uf in checkpoint_schedules' convention; its HRevolve returns 586)."""
    platform = Platform((Level(2, 0, 0), Level(20, 2, 2)), uf=1, ub=5)
    assert optimal_makespan(60, platform) == 478
    assert simulate(plan("hrevolve", 60, platform), platform, 60).makespan == 478


@lru_cache(maxsize=None)
def memory_only(n, c, uf, ub):
    """Revolve's cost with c free memory slots (Aupy et al. 2016, Opt_0)."""
    if n == 0:
        return ub
    best = n * (n + 1) / 2 * uf + (n + 1) * ub
    if c >= 2:
        best = min([best] + [j * uf + memory_only(n - j, c - 1, uf, ub) + memory_only(j - 1, c, uf, ub)
                             for j in range(1, n)])
    return best


def disk_revolve_reference(l, cm, uf, ub, wd, rd):
    """Aupy, Herrmann, Hovland & Robert (2016), Disk-Revolve, written independently of H-Revolve: disk checkpoints
    are written only during the first forward sweep; between two of them, 1D-Revolve reverses the segment from a
    disk checkpoint that may be read several times, with the memory's cm slots:
        Opt_1D(n) = min(Opt_0(n, cm), min_{1<=j<=n} j uf + Opt_0(n-j, cm) + rd + Opt_1D(j-1)),
        Opt_inf(n) = min(Opt_0(n, cm), min_{1<=j<=n} wd + j uf + Opt_inf(n-j) + rd + Opt_1D(j-1))."""
    one_d, disk = [ub], [ub]
    for n in range(1, l + 1):
        mem = [memory_only(n - j, cm, uf, ub) for j in range(1, n + 1)]
        one_d.append(min([memory_only(n, cm, uf, ub)] +
                         [j * uf + mem[j - 1] + rd + one_d[j - 1] for j in range(1, n + 1)]))
        disk.append(min([memory_only(n, cm, uf, ub)] +
                        [wd + j * uf + disk[n - j] + rd + one_d[j - 1] for j in range(1, n + 1)]))
    return disk[l]


@pytest.mark.parametrize("cm, uf, ub, wd, rd", [(1, 1, 1, 2, 2), (2, 1, 0, 5, 5), (3, 1, 2, 1, 3), (4, 2, 1, 10, 0),
                                                (2, 1, 5, 0.5, 0.25)])
def test_equals_disk_revolve(cm, uf, ub, wd, rd):
    platform = Platform((Level(cm, 0, 0), Level(INF, wd, rd)), uf=uf, ub=ub)
    tables = hrevolve_tables(80, platform)
    for l in range(81):
        assert tables.value(l) == pytest.approx(disk_revolve_reference(l, cm, uf, ub, wd, rd)), l
    assert plan("disk-revolve", 80, platform) == tables.schedule()


def test_disk_costs_matter_separately():
    """A disk checkpoint may be read more than once (1D-Revolve), so the optimum depends on w_d and r_d, not only
    on w_d + r_d: exhaustive search and the DP agree on two platforms with the same w_d + r_d."""
    values = []
    for wd, rd in ((3, 0), (0, 3)):
        platform = Platform((Level(1, 0, 0), Level(INF, wd, rd)), uf=1, ub=0)
        best, _ = exhaustive_search(5, platform)
        assert optimal_makespan(5, platform) == pytest.approx(best)
        values.append(best)
    assert values[0] != values[1]


@pytest.mark.parametrize("c", [1, 2, 3, 7, 12])
def test_one_free_level_reduces_to_revolve(c):
    tables = hrevolve_tables(200, Platform((Level(c, 0, 0),), uf=1, ub=0))
    for l in range(201):
        assert tables.value(l) == extra_forward_steps(l + 1, c)


def test_capacity_beyond_length_is_unbounded():
    for l in (5, 17):
        a = optimal_makespan(l, Platform((Level(2, 0, 0), Level(l, 1, 2)), uf=1, ub=1))
        b = optimal_makespan(l, Platform((Level(2, 0, 0), Level(INF, 1, 2)), uf=1, ub=1))
        assert a == b


def test_long_chain_plans_without_recursion_limit():
    platform = Platform((Level(4, 0, 0), Level(INF, 2, 2)), uf=1, ub=1)
    l = 10000
    tables = hrevolve_tables(l, platform)
    assert simulate(tables.schedule(), platform, l).makespan == pytest.approx(tables.value())


def test_zero_steps_and_no_memory():
    platform = Platform((Level(0, 0, 0), Level(1, 3, 4)), uf=1, ub=1)
    assert optimal_makespan(0, platform) == 1
    # only one slot, on level 1: recompute everything from x_0
    assert optimal_makespan(4, platform) == pytest.approx(5 * 1 + 10 * 1 + 3 + 4 * 4)
