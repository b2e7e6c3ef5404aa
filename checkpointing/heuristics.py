"""Heuristics compared with H-Revolve (Herrmann & Pallez 2020, section 6) that use level 1 as "the disk".

* 1D-Revolve (Aupy, Herrmann, Hovland & Robert 2016): ``x_0`` is the only checkpoint on level 1 and may be read
  many times; between reads, the sub-chain is reversed optimally with level 0's ``c_0`` slots.  Its optimum is the
  two-level DP of :mod:`checkpointing.hrevolve` on the platform (level 0, level 1 with one slot).
* Periodic-Disk-Revolve (Aupy & Herrmann, "Periodicity in optimal hierarchical checkpointing schemes for adjoint
  computations", Optim. Methods Softw. 32(3), 2017): the first forward sweep writes ``x_0, x_m, x_2m, ...`` to
  level 1 (period ``m``); each segment is then reversed by 1D-Revolve from its level-1 checkpoint.  With
  ``Q = ceil(l / m)`` segments and the last one of length ``l_Q = l - (Q - 1) m``:

      cost(m) = (Q - 1) (w_1 + m uf + r_1 + Optbar_1D(m - 1)) + Opt_1D(l_Q),

  where ``Opt_1D``/``Optbar_1D`` are the one-disk-slot DP values before/after ``x`` is written.  The period
  minimising ``cost(m)`` over ``1 <= m <= l`` (among those with ``Q <= c_1``) is used unless one is given;
  choosing it costs one DP table, ``O(l^2 c_0)``, plus ``O(l)``.

Revolve on level 0 alone and Disk-Revolve on levels 0 and 1 are in :mod:`checkpointing.planners`.
"""
from __future__ import annotations

import math

from .actions import Advance, Discard, Read, Write
from .emit import ScheduleDoesNotFit
from .hrevolve import HRevolveTables
from .platform import Level, Platform

__all__ = ["one_d_revolve", "periodic_disk_revolve", "periodic_disk_revolve_cost"]


def _one_disk_slot(steps: int, platform: Platform, name: str) -> HRevolveTables:
    """The DP tables on (level 0, level 1 with a single slot), levels in this order."""
    if platform.n_levels < 2 or platform.capacities[1] < 1:
        raise ScheduleDoesNotFit(f"{name}: needs a level 1 with at least one slot; capacities are "
                                 f"{platform.capacities} (l = {steps})")
    ram, disk = platform.levels[:2]
    return HRevolveTables(steps, Platform((ram, Level(1, disk.write_cost, disk.read_cost, disk.name)),
                                          platform.uf, platform.ub))


def one_d_revolve(steps: int, platform: Platform) -> list:
    """1D-Revolve: ``x_0`` on level 1 (read as often as needed), level 0 between reads (see module docstring)."""
    return _one_disk_slot(steps, platform, "1d-revolve").schedule()


def periodic_disk_revolve_cost(steps: int, platform: Platform, period: int,
                               tables: HRevolveTables | None = None) -> float:
    """``cost(m)`` of the module docstring for ``m = period`` (``inf`` when level 1 cannot hold ``Q`` slots)."""
    tables = _one_disk_slot(steps, platform, "periodic-disk-revolve") if tables is None else tables
    segments = -(-steps // period)
    if segments > platform.capacities[1]:
        return math.inf
    last = steps - (segments - 1) * period
    disk = platform.levels[1]
    full = disk.write_cost + period * platform.uf + disk.read_cost + tables.stored_value(period - 1)
    return (segments - 1) * full + tables.value(last)


def periodic_disk_revolve(steps: int, platform: Platform, period: int | None = None) -> list:
    """Periodic-Disk-Revolve with the given ``period`` or, by default, the best one."""
    if steps == 0:
        return _one_disk_slot(0, platform, "periodic-disk-revolve").schedule()
    tables = _one_disk_slot(steps, platform, "periodic-disk-revolve")
    if period is None:
        period = min(range(1, steps + 1), key=lambda m: periodic_disk_revolve_cost(steps, platform, m, tables))
    if isinstance(period, bool) or not isinstance(period, int) or not 1 <= period <= steps:
        raise ValueError(f"period = {period!r}: must be an integer in 1..l = {steps}")
    if not math.isfinite(periodic_disk_revolve_cost(steps, platform, period, tables)):
        raise ScheduleDoesNotFit(f"periodic-disk-revolve: period {period} needs {-(-steps // period)} slots on "
                                 f"level 1 but its capacity is {platform.capacities[1]} (l = {steps})")
    starts = list(range(0, steps, period))
    out = []
    for s in starts[:-1]:
        out += [Write(s, 1), Advance(s, s + period)]
    out += tables.schedule(steps - starts[-1], start=starts[-1])
    for s in reversed(starts[:-1]):
        out += [Read(s, 1)] + tables.schedule(period - 1, start=s, stored=True) + [Discard(s, 1)]
    return out
