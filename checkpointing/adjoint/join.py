"""Execute a join-graph schedule on pyadjoint: the gradient of ``J = phi(sum_b g_b(x^b_{l_b}))`` over ``p`` runs
of one model that share their controls, with bounded memory.

A :class:`JoinLoop` is an ensemble: ``p`` teeth (runs) of one model, tooth ``b`` taking the steps ``timesteps[b]``
once ``activate(b)`` has set its forcing, all starting from the model's state when :meth:`JoinManager.run` is
called, joined by ``y_0 = sum_b g_b(x^b_{l_b})`` with ``g_b = join_term(b, state)`` (checkpointing/joingraph.py:
an additive join), and ``J = phi(y_0)`` for a scalar function ``outer = (phi, phi')`` (default ``J = y_0``): the
handle of length 0, whose backward step is ``ybar_0 = phi'(y_0)``.  The schedule is any valid join schedule
(checkpointing/join_planners.py), checked by :func:`checkpointing.joingraph.simulate_join` before anything runs.

How it runs: one working state, the model's state Functions, as for a chain (checkpointing/adjoint/manager.py); each
tooth is a chain of its own (:meth:`JoinLoop.tooth_loop`: ``j_i = ybar_0 g_b`` at ``i = l_b``) executed by the chain
manager's own per-action handlers, one :class:`~checkpointing.adjoint.manager.CheckpointManager` execution per tooth
holding that tooth's adjoint ``xbar^b`` and hint while other teeth run in between (the adjoints are not counted in
any level, as in the chain model). The tiers are shared; a tooth's checkpoint ``x^b_i`` is stored under the key ``b
(L + 1) + i`` (``L`` the longest tooth). ``Start(b)`` puts the initial state back and activates tooth ``b``;
``Join(b)`` adds ``g_b(x^b_{l_b})`` (untaped) to ``y_0``; ``Backward(0, HANDLE)`` computes ``J = phi(y_0)`` and
``ybar_0 = phi'(y_0)``, which seeds each tooth's first backward step ``Fbar^b_{l_b}``: its functional term is
``ybar_0 g_b``, so ``xbar^b_{l_b} = ybar_0 dg_b/dx``. Any tooth action on the model activates its tooth first. The
gradient is the sum of the teeth's: ``dJ/dp = phi'(y_0) sum_b dg_b/dp``.

::

    loop = JoinLoop(model, [[dt] * l] * p, controls=(friction,), activate=set_forcing, join_term=g)
    result = JoinManager(loop, [RamTier(c)]).run(plan_join("optimal", loop.graph(), platform), platform)
    result.value, result.gradient, result.counters.mismatches(result.predicted)
"""
from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from firedrake.adjoint import stop_annotating

from ..actions import HANDLE, Join, Start
from ..joingraph import Branch, JoinGraph, JoinReport, simulate_join
from ..memory import peak_rss_mb
from ..platform import Level, Platform
from .manager import (CheckpointManager, _assign_owned, _cofunction, _Execution, _owned_views,
                      _renew_block_variables)
from .protocol import TimeLoop
from .tiers import StateLayout, Tier

__all__ = ["JoinLoop", "JoinManager", "JoinResult", "JoinCounters"]


@dataclass(frozen=True)
class JoinLoop:
    """``p`` runs of ``model`` (``timesteps[b]`` for tooth ``b``) sharing ``controls``; ``activate(b)`` sets tooth
    ``b``'s forcing (untaped; ``activate(None)``, called when a run ends, puts the model's own back);
    ``join_term(b, state)`` is ``g_b`` on the state Functions, an AdjFloat; ``outer = (phi, dphi)``, two functions
    of a float, makes ``J = phi(y_0)`` (default ``J = y_0``)."""

    model: Any
    timesteps: Sequence[Sequence[float]]
    controls: tuple
    activate: Callable[[int], None]
    join_term: Callable[[int, tuple], Any]
    outer: tuple | None = None

    def __post_init__(self):
        teeth = [list(dts) for dts in self.timesteps]
        if not teeth:
            raise ValueError("timesteps = []: a join loop needs at least one tooth")
        object.__setattr__(self, "timesteps", teeth)
        if self.outer is not None and (len(self.outer) != 2 or not all(callable(f) for f in self.outer)):
            raise TypeError(f"outer = {self.outer!r}: expected (phi, dphi), two functions of a float")
        for b in range(len(teeth)):
            self.tooth_loop(b)                      # checks the model, the steps and the controls

    @property
    def p(self) -> int:
        return len(self.timesteps)

    def tooth_loop(self, b: int, seed: Callable[[], float] = lambda: 1.0) -> TimeLoop:
        """Tooth ``b`` as a chain: its steps, the shared controls, and ``seed() * g_b`` as its last functional term
        (``seed()`` is ``ybar_0`` when the join manager runs it)."""
        steps = len(self.timesteps[b])
        return TimeLoop(self.model, self.timesteps[b], self.controls,
                        lambda i, state: seed() * self.join_term(b, state) if i == steps else None)

    def graph(self) -> JoinGraph:
        """The join graph this loop executes: its teeth and a handle of length 0."""
        return JoinGraph(tuple(Branch(len(dts)) for dts in self.timesteps))


@dataclass
class JoinCounters:
    """What was executed, in the shape of :class:`checkpointing.joingraph.JoinReport`: forward and backward steps
    per branch (teeth, then the handle), reads, writes and peak per tier; plus wall time and peak RSS (MB)."""

    forward_steps: list
    backward_steps: list
    reads: list = field(default_factory=list)
    writes: list = field(default_factory=list)
    peak: list = field(default_factory=list)
    wall_time: float = 0.0
    peak_rss_mb: float = 0.0

    def mismatches(self, report: JoinReport) -> list[str]:
        """The counts that differ from the simulator's, as ``"name: executed != predicted"`` (empty: none)."""
        return [f"{name}: {getattr(self, name)} != {getattr(report, name)}"
                for name in ("forward_steps", "backward_steps", "reads", "writes", "peak")
                if getattr(self, name) != getattr(report, name)]


@dataclass
class JoinResult:
    """``value`` = J, ``gradient`` = dJ/dp per control (Cofunctions, summed over the teeth), ``counters``,
    ``predicted`` (the simulator's report on the platform), ``join`` = y_0."""

    value: float
    gradient: tuple
    counters: JoinCounters
    predicted: JoinReport
    join: float = 0.0


class _KeyedTier(Tier):
    """A view of a shared tier that stores tooth ``b``'s ``x_i`` under ``offset + i`` (the shared tier counts)."""

    def __init__(self, tier: Tier, offset: int):
        super().__init__(tier.capacity, tier.name)
        self.tier, self.offset = tier, offset

    def write(self, index, arrays):
        self.tier.write(self.offset + index, arrays)

    def read(self, index):
        return self.tier.read(self.offset + index)

    def discard(self, index):
        self.tier.discard(self.offset + index)


class JoinManager:
    """Runs join schedules for ``loop`` with ``tiers[k]`` serving level ``k`` (module docstring)."""

    def __init__(self, loop: JoinLoop, tiers):
        if not isinstance(loop, JoinLoop):
            raise TypeError(f"loop = {loop!r}: expected a checkpointing.adjoint.join.JoinLoop")
        tiers = list(tiers)
        if not tiers or not all(isinstance(t, Tier) for t in tiers):
            raise TypeError(f"tiers = {tiers!r}: expected a non-empty list of Tier (RamTier, DiskTier)")
        self.loop, self.tiers = loop, tiers
        stride = max(len(dts) for dts in loop.timesteps) + 1
        self._seed = 1.0
        self._managers = [CheckpointManager(loop.tooth_loop(b, lambda: self._seed),
                                            [_KeyedTier(t, b * stride) for t in tiers]) for b in range(loop.p)]

    def run(self, schedule, platform: Platform | None = None) -> JoinResult:
        """Execute ``schedule`` (validated first by the simulator on ``platform``, default: the tiers' capacities
        with unit costs) and return J, its gradient and the counters."""
        schedule = list(schedule)
        graph = self.loop.graph()
        if platform is None:
            platform = Platform(tuple(Level(t.capacity, name=t.name) for t in self.tiers), uf=1.0, ub=1.0)
        elif platform.n_levels != len(self.tiers) or any(
                level.capacity > tier.capacity for level, tier in zip(platform.levels, self.tiers)):
            raise ValueError(f"platform capacities {platform.capacities} do not fit the tiers' capacities "
                             f"{[t.capacity for t in self.tiers]} (one level per tier, none larger than its tier)")
        predicted = simulate_join(schedule, graph, platform)
        return _JoinExecution(self, schedule, predicted).run()


class _JoinExecution:
    """One run: the teeth's chain executions, the active tooth, J."""

    def __init__(self, manager: JoinManager, schedule: list, predicted: JoinReport):
        self.manager, self.loop, self.schedule, self.predicted = manager, manager.loop, schedule, predicted
        manager._seed = 1.0
        self.teeth = [_Execution(m, [], None) for m in manager._managers]
        self.active = None
        self.join = 0.0                               # y_0
        self.value = 0.0                              # J = phi(y_0), set by the handle's backward step
        self.handle_steps = 0

    def activate(self, b: int) -> None:
        if self.active != b:
            with stop_annotating():
                self.loop.activate(b)
            self.active = b

    def run(self) -> JoinResult:
        state = self.loop.model.state
        self.initial = [np.array(a) for a in _owned_views(state)]
        layout = StateLayout.of(self.initial)
        tiers, opened = self.manager.tiers, []
        comm = state[0].function_space().mesh().comm
        start = time.perf_counter()
        gc.collect()
        gc.freeze()
        try:
            for tier, slots in zip(tiers, self.predicted.peak):
                tier.open(layout, slots, comm)
                opened.append(tier)
            for position, action in enumerate(self.schedule):
                self.execute(position, action)
            counts = dict(reads=[t.reads for t in tiers], writes=[t.writes for t in tiers],
                          peak=[t.peak for t in tiers])
        finally:
            for tier in opened:
                tier.close()
            _assign_owned(state, self.initial)
            with stop_annotating():
                self.loop.activate(None)
            _renew_block_variables(tuple(state) + self.loop.controls)
            gc.unfreeze()
            gc.collect()
        counters = JoinCounters(forward_steps=[t.counters.forward_steps for t in self.teeth] + [0],
                                backward_steps=[t.counters.backward_steps for t in self.teeth] + [self.handle_steps],
                                wall_time=time.perf_counter() - start,
                                peak_rss_mb=peak_rss_mb(), **counts)
        total = [[sum(arrays) for arrays in zip(*parts)] for parts in zip(*(t.gradient for t in self.teeth))]
        gradient = tuple(_cofunction(p, g) for p, g in zip(self.loop.controls, total))
        return JoinResult(self.value, gradient, counters, self.predicted, self.join)

    def execute(self, position: int, action) -> None:
        b = action.branch
        if b == HANDLE:                              # Start(HANDLE) leaves the teeth; Backward(0) is the turn
            if type(action) is Start:
                self.active = None
                return
            phi, dphi = self.loop.outer or (float, lambda y: 1.0)
            self.value, self.manager._seed = float(phi(self.join)), float(dphi(self.join))
            self.handle_steps += 1
            return
        tooth = self.teeth[b]
        tooth.position = position
        if type(action) is Start:
            _assign_owned(self.loop.model.state, self.initial)
            self.active = None
            self.activate(b)
        elif type(action) is Join:
            with stop_annotating():
                self.join += float(self.loop.join_term(b, self.loop.model.state))
        else:                                        # Advance, Write, Read, Discard, Backward: as on a chain
            self.activate(b)
            tooth.execute(action)
