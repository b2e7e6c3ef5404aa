"""The simulator on hand-built schedules: costs counted by hand, and every rule broken once."""
import pytest

from checkpointing.actions import Advance, Backward, Discard, Read, Write
from checkpointing.platform import INF, Level, Platform
from checkpointing.simulator import InvalidScheduleError, simulate

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
