"""Differential tests against the peer library checkpoint_schedules 1.0.4 (Firedrake's schedule provider).

Convention (docs/checkpointing.md, "Makespan conventions"): the peer's ``Sequence.makespan`` runs one explicit taped forward step before
each of the ``l + 1`` backward steps, so ``peer = ours + (l + 1) uf`` for the same schedule.  With ``uf == ub`` the
peer's H-Revolve is optimal and must equal our dynamic programme; with ``uf != ub`` it passes ``uf`` and ``ub`` to
its table in swapped order and may only be worse.
"""
import itertools

import pytest
from checkpoint_schedules import (DiskRevolve, HRevolve, MixedCheckpointSchedule, MultistageCheckpointSchedule,
                                  PeriodicDiskRevolve, Revolve, StorageType)
from checkpoint_schedules.hrevolve_sequences import disk_revolve, hrevolve, periodic_disk_revolve, revolve

from checkpointing.interop import ExportedSchedule, from_peer
from checkpointing.planners import PLANNERS, ScheduleDoesNotFit, optimal_makespan, plan
from checkpointing.platform import Platform
from checkpointing.simulator import simulate


def two_levels(ram, disk, wd, rd, uf, ub):
    return Platform.from_spec(f"{ram}:0:0,{disk}:{wd}:{rd}", uf, ub)


def in_peer_convention(makespan, steps, platform):
    return makespan + (steps + 1) * platform.uf


@pytest.mark.parametrize("steps, slots", list(itertools.product([1, 2, 7, 20, 45], [1, 2, 3, 6])))
@pytest.mark.parametrize("uf, ub", [(1.0, 1.0), (2.5, 2.5), (1.0, 4.0), (3.0, 0.5)])
def test_revolve_equals_peer(steps, slots, uf, ub):
    """One level: the peer's Revolve is optimal for every uf, ub (the backward cost is the same (l+1) ub for
    every schedule)."""
    platform = Platform.from_spec(f"{slots}:0:0", uf, ub)
    peer = revolve(steps, slots, 0, 0, uf, ub).makespan
    assert in_peer_convention(optimal_makespan(steps, platform), steps, platform) == pytest.approx(peer)
    ours = simulate(plan("revolve", steps, platform), platform, steps).makespan
    assert in_peer_convention(ours, steps, platform) == pytest.approx(peer)


TWO_LEVEL_GRID = list(itertools.product([5, 17, 40], [(1, 3), (2, 5), (3, 20)], [(1, 1), (2, 3), (5, 2)]))


@pytest.mark.parametrize("steps, slots, io", TWO_LEVEL_GRID)
@pytest.mark.parametrize("u", [1.0, 3.0])
def test_hrevolve_equals_peer_when_uf_equals_ub(steps, slots, io, u):
    platform = two_levels(*slots, *io, u, u)
    peer = hrevolve(steps, slots, [0, io[0]], [0, io[1]], u, u).makespan
    optimum = optimal_makespan(steps, platform)
    assert in_peer_convention(optimum, steps, platform) == pytest.approx(peer)
    assert simulate(plan("hrevolve", steps, platform), platform, steps).makespan == pytest.approx(optimum)


@pytest.mark.parametrize("steps, slots, io", TWO_LEVEL_GRID)
@pytest.mark.parametrize("uf, ub", [(1.0, 5.0), (2.0, 1.0), (1.0, 0.25)])
def test_hrevolve_never_worse_than_peer(steps, slots, io, uf, ub):
    platform = two_levels(*slots, *io, uf, ub)
    peer = hrevolve(steps, slots, [0, io[0]], [0, io[1]], uf, ub).makespan
    ours = simulate(plan("hrevolve", steps, platform), platform, steps).makespan
    assert ours == pytest.approx(optimal_makespan(steps, platform))
    assert in_peer_convention(ours, steps, platform) <= peer + 1e-9


@pytest.mark.parametrize("steps, ram", list(itertools.product([3, 12, 40], [1, 2, 4])))
@pytest.mark.parametrize("uf, ub, wd, rd", [(1, 1, 2, 2), (2, 2, 1, 5), (1, 4, 3, 3)])
def test_disk_revolve_against_peer(steps, ram, uf, ub, wd, rd):
    """Unbounded disk: equal when uf == ub, never worse otherwise."""
    platform = Platform.from_spec(f"{ram}:0:0,inf:{wd}:{rd}", uf, ub)
    peer = disk_revolve(steps, ram, wd, rd, uf, ub).makespan
    ours = simulate(plan("disk-revolve", steps, platform), platform, steps).makespan
    assert ours == pytest.approx(optimal_makespan(steps, platform))
    if uf == ub:
        assert in_peer_convention(ours, steps, platform) == pytest.approx(peer)
    assert in_peer_convention(ours, steps, platform) <= peer + 1e-9


@pytest.mark.parametrize("steps, ram", list(itertools.product([5, 20, 50], [1, 2, 4])))
@pytest.mark.parametrize("uf, ub, io", [(1, 1, 2), (1, 3, 5), (2, 1, 1)])
def test_periodic_disk_revolve_never_worse_than_peer(steps, ram, uf, ub, io, capsys):
    """Same heuristic (Aupy & Herrmann 2017); we search every period, the peer a bounded range.  Equal write and
    read costs, because the peer's PeriodicDiskRevolve passes them swapped and 1D-Revolve reads a disk checkpoint
    more than once."""
    platform = Platform.from_spec(f"{ram}:0:0,inf:{io}:{io}", uf, ub)
    peer = periodic_disk_revolve(steps, ram, io, io, uf, ub).makespan
    ours = simulate(plan("periodic-disk-revolve", steps, platform), platform, steps).makespan
    assert optimal_makespan(steps, platform) - 1e-9 <= ours
    assert in_peer_convention(ours, steps, platform) <= peer + 1e-9
    theirs = simulate(from_peer(PeriodicDiskRevolve(steps + 1, ram, uf=uf, ub=ub, wd=io, rd=io)), platform, steps)
    assert in_peer_convention(theirs.makespan, steps, platform) == pytest.approx(peer)
    capsys.readouterr()  # the peer prints its period


def test_known_case_strictly_better_than_peer():
    """docs/references.md (checkpoint_schedules): l = 60, (2 RAM, 20 disk), w = r = [0, 2], uf = 1, ub = 5: peer 586, optimum 539 in the
    peer's convention, 478 in ours."""
    platform = two_levels(2, 20, 2, 2, 1, 5)
    peer = hrevolve(60, (2, 20), [0, 2], [0, 2], 1, 5).makespan
    assert peer == 586
    assert optimal_makespan(60, platform) == pytest.approx(478)
    ours = simulate(plan("hrevolve", 60, platform), platform, 60).makespan
    assert ours == pytest.approx(478) and in_peer_convention(ours, 60, platform) == pytest.approx(539)
    # the peer's own schedule, costed by our simulator, is what the peer claims
    theirs = simulate(from_peer(HRevolve(61, 2, 20, uf=1, ub=5, wd=2, rd=2)), platform, 60)
    assert in_peer_convention(theirs.makespan, 60, platform) == pytest.approx(586)


REVOLVE_FAMILY = [
    # (peer schedule for max_n = l + 1, our platform spec, the peer's own makespan)
    (lambda: HRevolve(31, 2, 6, uf=1, ub=2, wd=3, rd=1), "2:0:0,6:3:1", 1, 2,
     lambda: hrevolve(30, (2, 6), [0, 3], [0, 1], 1, 2).makespan),
    (lambda: Revolve(26, 3), "3:0:0", 1, 1, lambda: revolve(25, 3, 2, 2, 1, 1).makespan),
    (lambda: DiskRevolve(26, 2, uf=1, ub=1, wd=4, rd=4), "2:0:0,inf:4:4", 1, 1,
     lambda: disk_revolve(25, 2, 4, 4, 1, 1).makespan),
    (lambda: PeriodicDiskRevolve(26, 2, wd=3, rd=3), "2:0:0,inf:3:3", 1, 1, None),
]


@pytest.mark.parametrize("make, spec, uf, ub, peer_makespan", REVOLVE_FAMILY,
                         ids=["HRevolve", "Revolve", "DiskRevolve", "PeriodicDiskRevolve"])
def test_peer_schedules_pass_our_simulator(make, spec, uf, ub, peer_makespan):
    schedule = make()
    steps = schedule.max_n - 1
    platform = Platform.from_spec(spec, uf, ub)
    report = simulate(from_peer(schedule), platform, steps)
    assert report.backward_steps == steps + 1
    assert report.makespan >= optimal_makespan(steps, platform) - 1e-9
    if peer_makespan is not None:
        assert in_peer_convention(report.makespan, steps, platform) == pytest.approx(peer_makespan())


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("make, spec", [
    (lambda: MultistageCheckpointSchedule(41, 3, 4), "3:0:0,4:2:2"),
    (lambda: MultistageCheckpointSchedule(41, 5, 0), "5:0:0"),
    (lambda: MixedCheckpointSchedule(41, 4, storage=StorageType.DISK), "1:0:0,4:2:2"),
])
def test_other_peer_schedules_pass_our_simulator(make, spec):
    schedule = make()
    steps = schedule.max_n - 1
    platform = Platform.from_spec(spec)
    report = simulate(from_peer(schedule), platform, steps)
    assert report.makespan >= optimal_makespan(steps, platform) - 1e-9


ROUND_TRIP_PLATFORMS = ["3:0:0", "2:0:0,inf:2:2", "2:0:0,5:1:3", "1:0:0,30:2:2"]
#: platforms on which a planner cannot fit a chain of 23 steps (too few slots in all, or on the disk level)
DOES_NOT_APPLY = {"store-all": {"3:0:0", "2:0:0,5:1:3"}, "disk-revolve": {"3:0:0", "2:0:0,5:1:3"},
                  "1d-revolve": {"3:0:0"}, "periodic-disk-revolve": {"3:0:0"}}


@pytest.mark.parametrize("spec", ROUND_TRIP_PLATFORMS)
@pytest.mark.parametrize("algorithm", sorted(PLANNERS))
def test_round_trip_through_the_peer_costs_the_same(algorithm, spec):
    steps = 23
    platform = Platform.from_spec(spec, 1.0, 2.0)
    if spec in DOES_NOT_APPLY.get(algorithm, ()):
        with pytest.raises(ScheduleDoesNotFit):
            plan(algorithm, steps, platform)
        return
    ours = plan(algorithm, steps, platform)
    back = from_peer(ExportedSchedule(ours, steps, explicit_deletes=True))
    original, again = simulate(ours, platform, steps), simulate(back, platform, steps)
    assert again == original
