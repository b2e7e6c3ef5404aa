"""Morozov's discrepancy principle (icesheet.inversion.discrepancy_search) on misfit curves with known roots: it
brackets the root by factors of 10 from either side, then refines it to the tolerance; the answer is the solve whose
misfit is closest to the target.  Pure Python (the solves are closed-form stand-ins for minimisations)."""
import math
from types import SimpleNamespace

import pytest

from icesheet.inversion import discrepancy_search


def solver(curve):
    calls = []

    def solve(alpha):
        calls.append(alpha)
        return SimpleNamespace(alpha=alpha, misfit=curve(alpha))
    return solve, calls


@pytest.mark.parametrize("root, start", [(0.3, 1e-2), (0.3, 100.0), (4e-4, 1.0), (2.0, 2.5)])
def test_finds_the_root_of_a_sigmoid_misfit(root, start):
    # E(alpha) = 0.8 + 0.4 alpha^p / (alpha^p + root^p): increasing, E(root) = 1 exactly
    curve = lambda alpha: 0.8 + 0.4 * alpha**0.7 / (alpha**0.7 + root**0.7)  # noqa: E731
    solve, calls = solver(curve)
    best, results = discrepancy_search(solve, start, target=1.0, tolerance=0.01)
    assert abs(best.misfit - 1.0) <= 0.01
    assert [r.alpha for r in results] == calls
    assert len(calls) <= 10
    assert math.isclose(best.alpha, root, rel_tol=0.2)


def test_stops_at_the_first_solve_within_tolerance():
    solve, calls = solver(lambda alpha: 1.0 + 0.01 * math.log(alpha))
    best, results = discrepancy_search(solve, 1.5, tolerance=0.05)
    assert calls == [1.5] and best is results[0]


def test_unreachable_target_gives_the_closest_solve_within_max_solves():
    solve, calls = solver(lambda alpha: 2.0 + alpha)  # always above the target
    best, results = discrepancy_search(solve, 1.0, max_solves=4)
    assert len(calls) == 4 and calls == [1.0, 0.1, pytest.approx(0.01), pytest.approx(0.001)]
    assert best.alpha == min(calls)
