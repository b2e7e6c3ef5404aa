"""Revolve against Griewank & Walther's closed form (ACM TOMS 26(1), 2000) and their recursion."""
from functools import lru_cache

import pytest

from checkpointing.emit import ScheduleDoesNotFit
from checkpointing.platform import Level, Platform
from checkpointing.revolve import beta, extra_forward_steps, repetition_number, revolve_forward_steps, revolve_schedule
from checkpointing.simulator import simulate


@pytest.mark.parametrize("s", range(1, 13))
def test_simulated_forward_steps_equal_closed_form(s):
    """Our chain of length l is Griewank & Walther's chain of L = l + 1 steps: the simulator's forward-step count
    of the planned schedule is t(l + 1, s) = (L + t(L, s)) - L, for every l <= 300."""
    platform = Platform((Level(s),), uf=1.0, ub=0.0)
    for l in range(0, 301):
        report = simulate(revolve_schedule(l, s), platform, l)
        assert report.forward_steps == revolve_forward_steps(l + 1, s) - (l + 1), (l, s)
        assert report.peak[0] <= s
        assert report.makespan == report.forward_steps


@pytest.mark.parametrize("s, steps, total", [(3, 14, 14 + 27), (2, 10, 30), (2, 100, 945), (3, 10, 25),
                                             (3, 100, 590), (5, 100, 416), (10, 1000, 4636)])
def test_table_of_total_forward_steps(s, steps, total):
    """Griewank & Walther 2000 (docs/references.md; the TOMS 799 driver and table): L + t(L, s); the schedule for our chain of
    length L - 1 runs total - L untaped forward steps."""
    assert revolve_forward_steps(steps, s) == total
    platform = Platform((Level(s),), uf=1.0, ub=0.0)
    assert simulate(revolve_schedule(steps - 1, s), platform, steps - 1).forward_steps == total - steps


@lru_cache(maxsize=None)
def recursion_t(L, s):
    """Griewank & Walther's recursion t(L, s) = min_{0 < k < L} k + t(L - k, s - 1) + t(k, s), t(L, 1) =
    L(L - 1)/2, t(1, s) = 0 (their Proposition; independent of the closed form)."""
    if L <= 1:
        return 0
    if s == 1:
        return L * (L - 1) // 2
    return min(k + recursion_t(L - k, s - 1) + recursion_t(k, s) for k in range(1, L))


@pytest.mark.parametrize("s", range(1, 7))
def test_closed_form_equals_recursion(s):
    for L in range(1, 61):
        assert extra_forward_steps(L, s) == recursion_t(L, s), (L, s)


def test_beta_and_repetition_number():
    assert beta(3, 2) == 10 and beta(2, -1) == 0
    for s in range(1, 6):
        for L in range(1, 200):
            r = repetition_number(L, s)
            assert beta(s, r) >= L and (r == 0 or beta(s, r - 1) < L)


def test_no_slot_does_not_fit():
    with pytest.raises(ScheduleDoesNotFit, match="capacity 0.*l = 5"):
        revolve_schedule(5, 0)
