"""The analysis of benchmarks/bench_memory_ice.py (pure Python): least-squares extrapolation, the backward working set
and issue 10's goal check, on hand-made tables whose answers follow from their construction (a table on an exact
line, ratios of given peaks), not from a run of our code."""
import importlib.util
import sys
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_memory_ice.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_memory_ice", PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


STATE_MB = 0.5
FORWARD_PEAK = 400.0  # MB, the forward-only run at every l


def row(variant, steps, above_forward, **extra):
    """A derived row: peak = the forward run's + the memory above it."""
    return {"variant": variant, "steps": steps, "cell_size": 2000.0, "state_mb": STATE_MB,
            "peak_mb": FORWARD_PEAK + above_forward, "above_forward_mb": above_forward, **extra}


def table(vanilla_lengths=(25, 50, 100)):
    """Vanilla store-all on the line 2 l + 10 MB (and a wild l = 1 point off it), ours bounded at 20 MB, our
    store-all at l = 1 using W = 15 MB."""
    rows = [row("forward-only", s, 0.0) for s in (1, 25, 50, 100, 1000)]
    rows += [row("pyadjoint-store-all", s, 2.0 * s + 10.0) for s in vanilla_lengths]
    rows += [row("pyadjoint-store-all", 1, 500.0), row("manager-store-all", 1, 15.0)]
    rows += [row("manager-hrevolve", s, 20.0) for s in (25, 100, 1000)]
    return rows


def test_least_squares_line_recovers_an_exact_line_and_passes_through_the_mean(bench):
    slope, intercept = bench.least_squares_line([1, 2, 4, 8], [3 * x - 7 for x in (1, 2, 4, 8)])
    assert slope == pytest.approx(3.0) and intercept == pytest.approx(-7.0)
    xs, ys = [1, 2, 3, 4], [1.0, 3.0, 2.0, 5.0]
    slope, intercept = bench.least_squares_line(xs, ys)
    assert slope * 2.5 + intercept == pytest.approx(sum(ys) / 4)  # the mean point lies on the fitted line
    with pytest.raises(ValueError, match="two distinct"):
        bench.least_squares_line([5, 5], [1, 2])


def test_extrapolation_follows_the_measured_line_and_ignores_l_equal_1(bench):
    guess = bench.extrapolate(table(), "pyadjoint-store-all", 1000)
    assert guess["extrapolated"] and guess["steps"] == 1000
    assert guess["above_forward_mb"] == pytest.approx(2010.0, abs=0.05)
    assert guess["peak_mb"] == pytest.approx(FORWARD_PEAK + 2010.0, abs=0.05)
    assert guess["above_forward_states"] == pytest.approx(2010.0 / STATE_MB, abs=0.05)
    assert bench.extrapolate(table(vanilla_lengths=(25,)), "pyadjoint-store-all", 1000) is None  # one length


def test_working_set_is_store_all_at_one_step_above_forward(bench):
    assert bench.working_set_mb(table()) == 15.0
    assert bench.working_set_mb([r for r in table() if r["steps"] != 1]) is None


def test_goal_check_bound_and_ratio_to_extrapolated_vanilla(bench):
    slots = 4
    bound = (slots + 5) * STATE_MB + 15.0  # 19.5 MB above forward
    rows = table() + [row("manager-revolve", 1000, bound), row("manager-revolve", 100, bound + 0.1)]
    bench.goal_check(rows, slots)
    at = {(r["variant"], r["steps"]): r for r in rows}
    assert at["manager-revolve", 1000]["bound_mb"] == pytest.approx(bound)
    assert at["manager-revolve", 1000]["within_bound"] is True  # on the bound counts as within
    assert at["manager-revolve", 100]["within_bound"] is False
    assert at["manager-hrevolve", 1000]["within_bound"] is False  # 20 > 19.5
    hrevolve = at["manager-hrevolve", 1000]  # vanilla not run at 1000: extrapolated to 2 * 1000 + 10 MB
    assert hrevolve["below_vanilla_x"] == pytest.approx((FORWARD_PEAK + 2010.0) / (FORWARD_PEAK + 20.0), abs=0.01)
    assert hrevolve["below_vanilla_adjoint_x"] == pytest.approx(2010.0 / 20.0, abs=0.1)
    measured = at["manager-hrevolve", 100]  # vanilla measured at 100: 210 MB, its own row
    assert measured["below_vanilla_adjoint_x"] == pytest.approx(210.0 / 20.0, abs=0.1)
    assert at["pyadjoint-store-all", 100]["below_vanilla_x"] is None  # not compared with itself


def test_derive_subtracts_the_forward_increment_and_compares_every_control(bench):
    rows = [{"variant": v, "steps": 10, "cell_size": 2000.0, "state_mb": STATE_MB, "peak_mb": p, "above_start_mb": a,
             "directional_derivative": d}
            for v, p, a, d in (("forward-only", 401.0, 9.0, None),
                               ("manager-store-all", 420.0, 19.0, [2.0, -4.0]),
                               ("pyadjoint-revolve", 430.0, 29.0, [2.0, -4.4]))]
    bench.derive(rows, slots=4)
    store_all, revolve = rows[1], rows[2]
    assert store_all["above_forward_mb"] == 10.0 and store_all["above_forward_states"] == 20.0
    assert store_all["relative_difference"] == 0.0 and store_all["agrees_with_store_all"] is True
    assert revolve["relative_difference"] == pytest.approx(0.1)  # the larger of 0 and 0.4 / 4
    assert revolve["agrees_with_store_all"] is False
