"""Translation between our actions and checkpoint_schedules 1.0.4's.

Oracles: the peer's own schedules (translated there and back they must come out identical), the peer's documented
action semantics (a small executor written from its docstrings runs our exported schedules on a scalar chain and
must reproduce the exact derivative), and closed forms for the peer's store-everything schedules.
"""
import math

import pytest
from checkpoint_schedules import (CheckpointSchedule, Copy, DiskRevolve, EndForward, EndReverse, Forward, HRevolve,
                                  MixedCheckpointSchedule, Move, MultistageCheckpointSchedule, PeriodicDiskRevolve,
                                  Reverse, Revolve, SingleDiskStorageSchedule, SingleMemoryStorageSchedule,
                                  StorageType)

from checkpointing.actions import Advance, Backward, Discard, Read, Write
from checkpointing.interop import ExportedSchedule, TranslationError, from_peer, to_peer_actions
from checkpointing.planners import plan
from checkpointing.platform import INF, Level, Platform
from checkpointing.simulator import simulate

UNBOUNDED = Platform((Level(INF, 0.0, 0.0, "ram"), Level(INF, 2.0, 2.0, "disk")), uf=1.0, ub=1.0)

PEER_SCHEDULES = {
    "HRevolve": lambda: HRevolve(31, 2, 5, uf=1, ub=3, wd=2, rd=1),
    "Revolve": lambda: Revolve(21, 3),
    "DiskRevolve": lambda: DiskRevolve(21, 3, wd=3, rd=3),
    "PeriodicDiskRevolve": lambda: PeriodicDiskRevolve(21, 3),
    "Multistage": lambda: MultistageCheckpointSchedule(21, 3, 2),
}


def peer_list(schedule):
    """The peer's actions up to its first EndReverse, as reprs (its CheckpointAction.__eq__ is unusable)."""
    out = []
    for action in schedule:
        out.append(repr(action))
        if isinstance(action, EndReverse):
            return out
    raise AssertionError("no EndReverse")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", sorted(PEER_SCHEDULES))
def test_peer_schedule_survives_the_round_trip_unchanged(name):
    make = PEER_SCHEDULES[name]
    steps = make().max_n - 1
    ours = from_peer(make())
    simulate(ours, UNBOUNDED, steps)
    assert [repr(a) for a in to_peer_actions(ours, steps)] == peer_list(make())


# --- an executor of checkpoint_schedules actions, written from the peer's documented semantics ---------------
def step(x, p):
    """One step of a scalar chain x_{i+1} = sin(x_i) + p x_i."""
    return math.sin(x) + p * x


def step_derivative(x, p):
    return math.cos(x) + p


def run_peer_actions(actions, max_n, x0, p):
    """Execute peer actions: Forward(n0, n1, write_ics, write_adj_deps, storage) advances from the start of step
    n0 to the start of n1, storing the state at n0 (ics) or the data each step's adjoint needs (adj deps);
    Reverse(n1, n0) runs the adjoint over steps n1-1 .. n0; Copy/Move load a stored state into WORK.  The model
    has max_n steps and J = x_{max_n}; returns dJ/dx_0 and the largest number of states held at once."""
    work = (0, x0)
    stored = {StorageType.RAM: {}, StorageType.DISK: {}}
    tape = {}
    adjoint = 1.0
    peak = 0
    for a in actions:
        if isinstance(a, Forward):
            n, x = work
            assert n == a.n0, f"{a!r} but the forward is at {n}"
            if a.write_ics:
                stored[a.storage][a.n0] = x
            for i in range(a.n0, a.n1):
                if a.write_adj_deps:
                    tape[i] = x
                x = step(x, p)
            work = (a.n1, x)
        elif isinstance(a, Reverse):
            for i in range(a.n1 - 1, a.n0 - 1, -1):
                adjoint *= step_derivative(tape[i], p)
                if a.clear_adj_deps:
                    del tape[i]
        elif isinstance(a, Move) and a.to_storage is StorageType.NONE:  # a delete
            del stored[a.from_storage][a.n]
        elif isinstance(a, (Copy, Move)):
            assert a.to_storage is StorageType.WORK
            work = (a.n, stored[a.from_storage][a.n])
            if isinstance(a, Move):
                del stored[a.from_storage][a.n]
        else:
            assert isinstance(a, (EndForward, EndReverse))
        peak = max(peak, sum(len(s) for s in stored.values()))
    return adjoint, peak


def exact_derivative(max_n, x0, p):
    x, d = x0, 1.0
    for _ in range(max_n):
        d *= step_derivative(x, p)
        x = step(x, p)
    return d


@pytest.mark.parametrize("algorithm, levels", [
    ("revolve", "3:0:0"), ("store-all", "4:0:0,inf:2:2"), ("recompute-all", "1:0:0"), ("revolve", "1:0:0"),
    ("hrevolve", "2:0:0,4:1:1"), ("periodic-disk-revolve", "2:0:0,inf:2:2"), ("1d-revolve", "2:0:0,inf:1:1"),
    ("online", "3:0:0"),
])
@pytest.mark.parametrize("steps", [0, 1, 7, 20])
@pytest.mark.parametrize("explicit_deletes", [False, True])
def test_exported_schedule_computes_the_exact_derivative(algorithm, levels, steps, explicit_deletes):
    platform = Platform.from_spec(levels)
    ours = plan(algorithm, steps, platform)
    report = simulate(ours, platform, steps)
    actions = list(ExportedSchedule(ours, steps, explicit_deletes=explicit_deletes))
    grad, peak = run_peer_actions(actions, steps + 1, 0.3, 0.7)
    assert grad == pytest.approx(exact_derivative(steps + 1, 0.3, 0.7), rel=1e-13)
    if explicit_deletes:  # with dropped deletes a state may be held longer than our schedule holds it
        assert peak <= sum(report.peak)


def test_exported_schedule_is_a_checkpoint_schedule():
    ours = plan("store-all", 6, Platform.from_spec("2:0:0,inf:1:1"))
    schedule = ExportedSchedule(ours, 6)
    assert isinstance(schedule, CheckpointSchedule) and schedule.max_n == 7
    assert schedule.uses_storage_type(StorageType.DISK) and schedule.uses_storage_type(StorageType.RAM)
    assert not schedule.is_exhausted
    actions = list(schedule)
    assert schedule.is_exhausted and isinstance(actions[-1], EndReverse)
    assert sum(isinstance(a, EndForward) for a in actions) == 1
    assert schedule.r == 7
    ram_only = ExportedSchedule(plan("revolve", 6, Platform.from_spec("2:0:0")), 6)
    assert not ram_only.uses_storage_type(StorageType.DISK)


@pytest.mark.parametrize("algorithm, levels", [("revolve", "3:0:0"), ("store-all", "3:0:0,inf:2:2"),
                                               ("recompute-all", "1:0:0")])
def test_our_schedule_round_trips_exactly(algorithm, levels):
    """Our planners discard a checkpoint right after its last read, so nothing is lost in translation."""
    platform = Platform.from_spec(levels)
    ours = plan(algorithm, 15, platform)
    back = from_peer(ExportedSchedule(ours, 15))
    assert simulate(back, platform, 15) == simulate(ours, platform, 15)


def test_state_written_to_two_levels():
    ours = [Write(0, 1), Write(0, 0), Advance(0, 2), Backward(2), Read(0, 0), Advance(0, 1), Backward(1),
            Read(0, 1), Discard(0, 0), Discard(0, 1), Backward(0)]
    platform = Platform.from_spec("1:0:0,1:2:2")
    peer = to_peer_actions(ours, 2)
    # the second copy of x_0 becomes a zero-length Forward that only writes
    assert peer[0].args == (0, 0, True, False, StorageType.RAM)
    assert peer[1].args == (0, 2, True, False, StorageType.DISK)
    back = from_peer(ExportedSchedule(ours, 2))
    assert simulate(back, platform, 2).makespan == simulate(ours, platform, 2).makespan
    assert run_peer_actions(peer, 3, 0.1, 0.5)[0] == pytest.approx(exact_derivative(3, 0.1, 0.5), rel=1e-14)


@pytest.mark.parametrize("ours, steps, match", [
    ([Write(0, 2), Advance(0, 1), Backward(1), Read(0, 2), Backward(0)], 1, "two checkpoint storages"),
    ([Write(0, 0), Advance(0, 1), Read(0, 0), Advance(0, 1), Backward(1), Read(0, 0), Backward(0)], 1,
     "before the first backward"),
    ([Write(0, 0), Advance(0, 1), Write(1, 0), Backward(1), Read(0, 0), Backward(0)], 1, "without advancing"),
])
def test_export_refuses_what_the_peer_cannot_express(ours, steps, match):
    with pytest.raises(TranslationError, match=match):
        to_peer_actions(ours, steps)


def test_export_validates_with_the_simulator():
    with pytest.raises(ValueError, match="backward"):
        to_peer_actions([Advance(0, 2), Backward(2)], 2)


@pytest.mark.parametrize("cls, storage", [(SingleMemoryStorageSchedule, 0), (SingleDiskStorageSchedule, 1)])
def test_import_store_everything_schedules(cls, storage):
    """Keeping every step's taped data is store-all: l uf + (l + 1) ub plus one write and one read per kept state
    (the state x_l reversed first is never stored)."""
    steps = 9
    platform = Platform.from_spec("inf:0.5:0.25,inf:3:2", uf=2.0, ub=7.0)
    ours = from_peer(cls(), steps)
    report = simulate(ours, platform, steps)
    w, r = platform.write_costs[storage], platform.read_costs[storage]
    kept = steps if storage == 0 else steps + 1  # the peer's disk schedule also stores step l's data
    expected = steps * 2.0 + (steps + 1) * 7.0 + kept * (w + r)
    assert report.makespan == pytest.approx(expected)
    assert report.peak[storage] == kept


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_import_mixed_schedule_respects_its_snapshot_budget():
    snapshots = 3
    ours = from_peer(MixedCheckpointSchedule(21, snapshots, storage=StorageType.RAM))
    report = simulate(ours, Platform.from_spec(f"{snapshots}:0:0"), 20)
    assert report.peak == [snapshots]


def test_import_needs_steps_for_online_schedules():
    with pytest.raises(TranslationError, match="steps"):
        from_peer(SingleMemoryStorageSchedule())
    with pytest.raises(TranslationError, match="steps = 5"):
        from_peer(Revolve(11, 2), 5)
