"""The simulator on hand-built schedules: costs counted by hand, and every rule broken once; the cost of the rest
of a run after its first forward sweep against the closed forms of store-all and recompute-all."""
import numpy as np
import pytest

from checkpointing.actions import Advance, Backward, Discard, Read, Write
from checkpointing.planners import plan
from checkpointing.platform import INF, Level, Platform
from checkpointing.simulator import (InvalidScheduleError, first_sweep_end, rest_makespan, simulate,
                                     simulate_timeline)

RAM_DISK = Platform((Level(2, 0.5, 0.25), Level(INF, 3.0, 2.0)), uf=1.0, ub=4.0)


def recompute_all_l2():
    """x_0 on level 0; reverse a chain of 2 steps by recomputing from x_0."""
    return [Write(0, 0), Advance(0, 2), Backward(2), Read(0, 0), Advance(0, 1), Backward(1),
            Read(0, 0), Backward(0), Discard(0, 0)]


def test_recompute_all_cost_counted_by_hand():
    rep = simulate(recompute_all_l2(), RAM_DISK, 2)
    # 3 forward steps, 3 backward steps, 1 write and 2 reads on level 0
    assert rep.forward_steps == 3 and rep.backward_steps == 3
    assert rep.writes == [1, 0] and rep.reads == [2, 0] and rep.peak == [1, 0]
    assert rep.makespan == pytest.approx(3 * 1.0 + 3 * 4.0 + 0.5 + 2 * 0.25)
    assert rep.to_dict()["makespan"] == rep.makespan


def test_two_levels_and_peak():
    sched = [Write(0, 1), Advance(0, 1), Write(1, 0), Advance(1, 2), Write(2, 0), Advance(2, 3), Backward(3),
             Read(2, 0), Backward(2), Discard(2, 0), Read(1, 0), Backward(1), Discard(1, 0), Read(0, 1), Backward(0)]
    rep = simulate(sched, RAM_DISK, 3)
    assert rep.forward_steps == 3
    assert rep.writes == [2, 1] and rep.reads == [2, 1] and rep.peak == [2, 1]
    assert rep.makespan == pytest.approx(3 + 4 * 4.0 + 2 * 0.5 + 3.0 + 2 * 0.25 + 2.0)


def test_per_step_costs():
    fwd = [1.0, 10.0]
    bwd = [0.5, 2.0, 7.0]
    rep = simulate(recompute_all_l2(), RAM_DISK, 2, forward_costs=fwd, backward_costs=bwd)
    assert rep.makespan == pytest.approx((1 + 10) + 1 + (0.5 + 2 + 7) + 0.5 + 2 * 0.25)


def test_zero_steps():
    assert simulate([Backward(0)], RAM_DISK, 0).makespan == 4.0


@pytest.mark.parametrize("costs, name", [([1.0], "forward_costs"), ([1.0, -1.0], "forward_costs")])
def test_bad_step_costs(costs, name):
    with pytest.raises(ValueError, match=name):
        simulate(recompute_all_l2(), RAM_DISK, 2, forward_costs=costs)


def test_bad_steps():
    with pytest.raises(ValueError, match="steps"):
        simulate([], RAM_DISK, -1)


def replace(sched, pos, *actions):
    return sched[:pos] + list(actions) + sched[pos + 1:]


TINY = Platform((Level(1, 0, 0),), uf=1, ub=1)

INVALID = {
    "read missing": (replace(recompute_all_l2(), 3, Read(1, 0)), 3, "not stored"),
    "read wrong level": (replace(recompute_all_l2(), 3, Read(0, 1)), 3, "not stored on level 1"),
    "no such level": (replace(recompute_all_l2(), 0, Write(0, 5)), 0, "does not exist"),
    "advance from wrong state": (replace(recompute_all_l2(), 4, Advance(1, 2)), 4, "needs x1"),
    "advance past l": (replace(recompute_all_l2(), 1, Advance(0, 3)), 1, "end <= l"),
    "advance backwards": (replace(recompute_all_l2(), 1, Advance(0, 0)), 1, "start < end"),
    "write wrong state": (replace(recompute_all_l2(), 0, Write(1, 0)), 0, "needs x1"),
    "over capacity": ([Write(0, 0), Advance(0, 1), Write(1, 0)], 2, "full"),
    "write twice": ([Write(0, 0), Write(0, 0)], 1, "already stored"),
    "backward out of order": (replace(recompute_all_l2(), 2, Backward(1)), 2, "must be 2"),
    "backward without state": (replace(recompute_all_l2(), 3, Backward(1)), 3, "no working state"),
    "backward wrong state": (replace(recompute_all_l2(), 4, Advance(0, 2)), 5, "needs x1 as working state but the working state is x2"),
    "backward twice": (recompute_all_l2()[:-1] + [Backward(0)], 8, "already run"),
    "discard missing": (replace(recompute_all_l2(), 8, Discard(1, 0)), 8, "not stored"),
    "not an action": (replace(recompute_all_l2(), 1, "advance"), 1, "not an action"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_schedule_names_position_and_action(case):
    sched, pos, why = INVALID[case]
    platform = TINY if case == "over capacity" else RAM_DISK
    with pytest.raises(InvalidScheduleError) as err:
        simulate(sched, platform, 2)
    msg = str(err.value)
    assert msg.startswith(f"action {pos} ({sched[pos]!r})"), msg
    assert why in msg


def test_missing_backward_steps():
    with pytest.raises(InvalidScheduleError, match="backward steps 1..0 never ran"):
        simulate(recompute_all_l2()[:3], RAM_DISK, 2)


def test_discarded_checkpoint_cannot_be_read():
    sched = [Write(0, 0), Advance(0, 1), Backward(1), Discard(0, 0), Read(0, 0), Backward(0)]
    with pytest.raises(InvalidScheduleError, match="action 4"):
        simulate(sched, RAM_DISK, 1)


def random_costs(steps: int, seed: int):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.1, 2.0, steps), rng.uniform(0.1, 2.0, steps + 1)


def test_rest_of_store_all_is_the_backward_steps_and_one_read_each():
    """Store-all on 2 RAM slots + disk: the first sweep writes x_0, x_1 to RAM and x_2 .. x_6 to disk, the rest
    reads each once and runs every backward step."""
    steps = 7
    forward, backward = random_costs(steps, 1)
    schedule = plan("store-all", steps, RAM_DISK)
    rest = rest_makespan(schedule, RAM_DISK, steps, forward_costs=forward, backward_costs=backward)
    assert rest == pytest.approx(backward.sum() + 2 * 0.25 + 5 * 2.0)
    assert first_sweep_end(schedule, steps) == 2 * steps  # Write(i), Advance(i, i + 1) for each i
    total = simulate(schedule, RAM_DISK, steps, forward_costs=forward, backward_costs=backward).makespan
    assert total - rest == pytest.approx(forward.sum() + 2 * 0.5 + 5 * 3.0)


def test_rest_of_recompute_all_is_the_prefix_sums():
    """Recompute-all from x_0 in RAM: after the first sweep, Fbar_i for i < l needs F_0 .. F_{i-1} again, so the
    rest costs sum_{i=1}^{l-1} (uf_0 + ... + uf_{i-1}) + sum_i ub_i + l r_0."""
    steps = 9
    forward, backward = random_costs(steps, 2)
    schedule = plan("recompute-all", steps, RAM_DISK)
    prefix_sums = np.cumsum(forward)[:steps - 1]
    rest = rest_makespan(schedule, RAM_DISK, steps, forward_costs=forward, backward_costs=backward)
    assert rest == pytest.approx(prefix_sums.sum() + backward.sum() + steps * 0.25)


def test_first_sweep_plus_rest_is_the_makespan_of_h_revolve():
    """On H-Revolve (two levels, per-step costs): the timeline never decreases and ends at the makespan, and the
    cost up to the end of the first sweep is its steps plus the writes made on the way, counted action by action."""
    steps = 30
    platform = Platform((Level(3, 0.1, 0.05), Level(4, 2.0, 1.0)), uf=1.0, ub=1.5)
    forward, backward = random_costs(steps, 3)
    schedule = plan("hrevolve", steps, platform)
    report, elapsed = simulate_timeline(schedule, platform, steps, forward_costs=forward, backward_costs=backward)
    assert len(elapsed) == len(schedule) and np.all(np.diff(elapsed) >= 0)
    assert elapsed[-1] == pytest.approx(report.makespan)
    end = first_sweep_end(schedule, steps)
    assert type(schedule[end - 1]) is Advance and schedule[end - 1].end == steps
    writes = [a.level for a in schedule[:end] if type(a) is Write]
    first = forward.sum() + sum(platform.write_costs[k] for k in writes)
    rest = rest_makespan(schedule, platform, steps, forward_costs=forward, backward_costs=backward)
    assert first + rest == pytest.approx(report.makespan)
    assert report.forward_steps > steps  # the rest recomputes: the split is not trivial


def test_first_sweep_end_refuses_a_read_before_x_l():
    schedule = [Write(0, 0), Advance(0, 1), Read(0, 0), Advance(0, 2), Backward(2), Read(0, 0), Advance(0, 1),
                Backward(1), Read(0, 0), Backward(0)]
    assert simulate(schedule, RAM_DISK, 2).forward_steps == 4  # valid, but reads before reaching x_2
    with pytest.raises(ValueError, match=r"action 2 .* before the first forward sweep reaches x2"):
        first_sweep_end(schedule, 2)


def test_rest_of_a_chain_without_steps_is_everything():
    assert first_sweep_end([Backward(0)], 0) == 0
    assert rest_makespan([Backward(0)], RAM_DISK, 0) == 4.0
