"""The registry of schedule planners: ``plan(name, steps, platform, **opts)`` returns a list of actions.

Every planner takes the chain length ``steps`` (``l``) and a :class:`~checkpointing.platform.Platform` and returns
a schedule that :func:`checkpointing.simulator.simulate` accepts.  Optimal planners: ``"revolve"`` (one level,
Griewank & Walther 2000), ``"disk-revolve"`` (two levels, Aupy et al. 2016), ``"hrevolve"`` (any ``K`` levels,
Herrmann & Pallez 2020), ``"nonuniform"`` (per-step costs: options ``forward_costs``, ``backward_costs``).
Baselines (``"store-all"``, ``"recompute-all"``), the heuristics of Herrmann & Pallez (2020, section 6)
(``"revolve"`` on level 0 alone, ``"disk-revolve"`` on levels 0-1, ``"periodic-disk-revolve"`` (option
``period``), ``"1d-revolve"``) and the online checkpointer (``"online"``, option ``level``; it does not use
``l`` until the forward sweep has ended) are listed in :data:`PLANNERS` too.
"""
from __future__ import annotations

import inspect
import math

from .actions import Advance, Backward, Discard, Read, Write
from .emit import ScheduleDoesNotFit, recompute_all_actions
from .heuristics import one_d_revolve, periodic_disk_revolve
from .hrevolve import hrevolve_schedule, optimal_makespan
from .nonuniform import nonuniform_schedule
from .online import online_schedule
from .platform import INF, Level, Platform
from .revolve import revolve_schedule
from .simulator import check_steps

__all__ = ["PLANNERS", "plan", "optimal_makespan", "ScheduleDoesNotFit", "store_all", "recompute_all", "revolve",
           "hrevolve", "disk_revolve"]


def store_all(steps: int, platform: Platform) -> list:
    """Store ``x_0 .. x_{l-1}`` during one forward sweep, filling the fastest levels first, then reverse with
    one read each: ``l uf + (l+1) ub + sum(w + r)`` of the levels used."""
    if steps == 0:
        return [Backward(0)]
    places = []
    for k, cap in enumerate(platform.capacities):
        places.extend([k] * int(min(cap, steps - len(places))))
    if len(places) < steps:
        raise ScheduleDoesNotFit(f"store-all: the platform holds {len(places)} checkpoints (capacities "
                                 f"{platform.capacities}) but a chain of l = {steps} steps needs {steps}")
    out = []
    for i, k in enumerate(places):
        out += [Write(i, k), Advance(i, i + 1)]
    out.append(Backward(steps))
    for i in range(steps - 1, -1, -1):
        out += [Read(i, places[i]), Backward(i), Discard(i, places[i])]
    return out


def recompute_all(steps: int, platform: Platform) -> list:
    """Store only ``x_0``, on the level with room that minimises ``w_k + l r_k``, and recompute every state
    from it: ``l(l+1)/2 uf + (l+1) ub + w_k + l r_k``."""
    if steps == 0:
        return [Backward(0)]
    usable = [k for k, cap in enumerate(platform.capacities) if cap >= 1]
    k = min(usable, key=lambda k: platform.write_costs[k] + steps * platform.read_costs[k])
    return [Write(0, k)] + recompute_all_actions(0, steps, k) + [Discard(0, k)]


def revolve(steps: int, platform: Platform) -> list:
    """Revolve on the fastest level only, with its ``c_0`` slots (Griewank & Walther 2000)."""
    return revolve_schedule(steps, platform.capacities[0] if math.isfinite(platform.capacities[0]) else steps, 0)


def hrevolve(steps: int, platform: Platform) -> list:
    """H-Revolve on all levels (Herrmann & Pallez 2020): see :mod:`checkpointing.hrevolve`."""
    return hrevolve_schedule(steps, platform)


def disk_revolve(steps: int, platform: Platform) -> list:
    """Disk-Revolve (Aupy, Herrmann, Hovland & Robert 2016) on the two fastest levels, level 1 taken as an
    unbounded disk.  Optimal on a two-level platform whose level 1 holds every checkpoint the schedule writes;
    raises :class:`ScheduleDoesNotFit` if the schedule needs more level-1 slots than ``c_1``."""
    if platform.n_levels < 2:
        raise ScheduleDoesNotFit(f"disk-revolve: needs two levels, the platform has {platform.n_levels}")
    ram, disk = platform.levels[:2]
    two = Platform((ram, Level(INF, disk.write_cost, disk.read_cost, disk.name)), platform.uf, platform.ub)
    schedule = hrevolve_schedule(steps, two)
    _check_level_fits("disk-revolve", schedule, 1, disk.capacity, steps)
    return schedule


def _check_level_fits(name, schedule, level, capacity, steps):
    held = peak = 0
    for action in schedule:
        if getattr(action, "level", None) == level:
            held += 1 if type(action) is Write else -1 if type(action) is Discard else 0
            peak = max(peak, held)
    if peak > capacity:
        raise ScheduleDoesNotFit(f"{name}: the schedule for l = {steps} holds {peak} checkpoints on level {level} "
                                 f"but its capacity is {capacity}")


PLANNERS = {
    "store-all": store_all,
    "recompute-all": recompute_all,
    "revolve": revolve,
    "disk-revolve": disk_revolve,
    "hrevolve": hrevolve,
    "periodic-disk-revolve": periodic_disk_revolve,
    "1d-revolve": one_d_revolve,
    "nonuniform": nonuniform_schedule,
    "online": online_schedule,
}


def plan(name: str, steps: int, platform: Platform, **opts) -> list:
    """Plan a schedule with the planner ``name`` (a key of :data:`PLANNERS`)."""
    if name not in PLANNERS:
        raise ValueError(f"planner = {name!r}: unknown; choose one of {sorted(PLANNERS)}")
    if not isinstance(platform, Platform):
        raise ValueError(f"platform = {platform!r}: expected a checkpointing.Platform")
    allowed = list(inspect.signature(PLANNERS[name]).parameters)[2:]
    unknown = sorted(set(opts) - set(allowed))
    if unknown:
        raise ValueError(f"options {unknown}: planner {name!r} takes {allowed or 'no options'}")
    return PLANNERS[name](check_steps(steps), platform, **opts)
