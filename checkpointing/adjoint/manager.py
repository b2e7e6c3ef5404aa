"""Execute a checkpointing schedule on pyadjoint: the gradient of ``J = sum_i j_i(x_i)`` with bounded memory.

API
---
Most callers want :func:`checkpointing.adjoint.gradient` (driver.py), which plans the schedule, builds the tiers
and runs this manager in one call.  The manager itself::

    from checkpointing.adjoint import CheckpointManager, TimeLoop, tiers_for_platform
    from checkpointing.planners import plan

    loop = TimeLoop(model, timesteps=[dt] * l, controls=(p,), functional=j)   # see protocol.py
    tiers = tiers_for_platform(platform, directories=["/scratch/ckpt"])  # or [RamTier(4), DiskTier(path), ...]
    manager = CheckpointManager(loop, tiers)
    result = manager.run(plan("hrevolve", l, platform), platform)  # any schedule of checkpointing.actions
    result.value                    # J (float, the same on every rank)
    result.gradient                 # tuple of firedrake.Cofunction: dJ/dp per control p (a derivative, no Riesz map)
    result.initial_state_gradient   # tuple of firedrake.Cofunction: xbar_0 = dJ/dx_0, one per state Function
    result.counters                 # Counters: forward/backward steps, reads/writes/peak per tier, wall time, RSS
    result.predicted                # simulator Report on `platform` (counts must match; makespan in its units)
    result.run_time, result.cpu_time  # wall and CPU seconds of the whole run
    manager.evaluate()              # J only: one untaped forward sweep

    # a chain of unknown length (adaptive time steps; protocol.py), with the online checkpointer on one level:
    adaptive = AdaptiveTimeLoop(model, next_timestep=rule, controls=(p,), functional_for=lambda l: j)
    result = CheckpointManager(adaptive, tiers).run_online(platform, level=0)   # adaptive.timesteps: the dt_i run

``run`` reads ``x_0`` from ``model.state`` when called and puts it back there when it returns (or fails), so
it can be called again after changing the controls.  Errors: :class:`StepFailedError` (a model step or its adjoint raised;
says which step and which phase), :class:`~checkpointing.adjoint.tiers.StorageError` and its subclasses
(``ChecksumError``, ``CapacityError``, ``StorageUnavailableError``), ``InvalidScheduleError`` (from the simulator,
before anything runs).

How a schedule is executed
--------------------------
The working state of the schedule (checkpointing/actions.py) *is* the model's state Functions.

``Advance(a, b)``
    ``model.step(dt_i)`` for ``i = a .. b-1`` under ``pyadjoint.stop_annotating()``: nothing is taped.
``Write(i, k)`` / ``Read(i, k)`` / ``Discard(i, k)``
    copy the owned degrees of freedom of the state Functions to / from / off tier ``k``.
``Backward(i)``
    ``Fbar_i``: on a *fresh* pyadjoint ``Tape``, the state Functions (holding ``x_i``) and the controls get fresh
    block variables, ``j_i(x_i)`` and (for ``i < l``) step ``F_i`` are taped, and the tape's adjoint is evaluated
    with the seeds ``adj_value = xbar_{i+1}`` on the state's output block variables and ``1`` on ``j_i``:

        xbar_i = (dF_i/dx_i)^T xbar_{i+1} + dj_i/dx_i,      gbar += (dF_i/dp)^T xbar_{i+1} + dj_i/dp,

    with ``xbar_l = dj_l/dx_l`` (Griewank & Walther 2008, ch. 12).  ``xbar`` and ``gbar`` are kept as numpy arrays
    of the cofunctions' owned values, never as tape objects; then the tape is dropped, the block variables renewed
    and ``gc.collect()`` run, so the only state-sized memory that grows with the schedule is its checkpoints.
    (Firedrake's heap holds ~2e5 Python objects, and a full collection scanning them costs ~0.2 s; ``run``
    therefore calls ``gc.freeze()`` once at its start, so that each collection scans only the objects created
    during the run, and ``gc.unfreeze()`` at its end.)

    Re-taping hint (optional, protocol.py): if the model has a method ``retape_hint()``, ``Backward(i+1)`` calls it
    on its working state ``x_{i+1}`` before anything else, and ``Backward(i)`` re-tapes ``F_i`` as
    ``model.step(dt_i, hint=...)``.  ``x_{i+1}`` is the result of ``F_i``, and every schedule runs ``Backward(l)``,
    ..., ``Backward(0)`` in this order, each ``Backward(i+1)`` starting on ``x_{i+1}``, so every re-taped step gets a
    hint taken from its own result (e.g. a model with an iterative solve can start it from the converged solution
    kept in ``x_{i+1}``).  The manager holds one hint at a time (e.g. one field: bounded memory, not
    a checkpoint; the schedule's counts and the simulator's ``ub`` are unchanged, the hint only makes the re-taped
    step cheaper).

Why not pyadjoint's own ``CheckpointManager`` (``tape.enable_checkpointing`` with a checkpoint_schedules
schedule): it keeps the whole tape (every block, form and block variable of every step) and only drops the
*values* its schedule does not need, so memory still grows with ``l`` (pyadjoint#169).  Measured on this machine
(docs/checkpointing.md, "The checkpoint manager"): with ``Revolve(l, 4)`` it grew 1.0 MB per step (~1.8 states) and used more memory
than store-all at ``l = 40``, whereas re-taping one step on a fresh tape with objects built once and reference
cycles collected grew by the stored states only.  It also knows only two storage types (RAM, disk), not ``K``
levels.
"""
from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from functools import singledispatchmethod

import firedrake as fd
import numpy as np
from firedrake.adjoint import (AdjFloat, Control, Tape, annotate_tape, continue_annotation, pause_annotation,
                       set_working_tape, stop_annotating)
from pyadjoint.drivers import marked_controls

from ..actions import Advance, Backward, Discard, Read, Write
from ..memory import peak_rss_mb
from ..online import OnlineCheckpointing
from ..platform import Level, Platform
from ..simulator import Report, simulate
from ..rundirs import check_terminated
from .protocol import AdaptiveTimeLoop, TimeLoop
from .tiers import StateLayout, Tier

__all__ = ["CheckpointManager", "AdjointResult", "Counters", "StepFailedError"]


class StepFailedError(RuntimeError):
    """A model step (e.g. its Picard or Newton solver) or the adjoint of one (e.g. an adjoint linear solve) failed;
    the message names the step and the phase."""

    exit_status = 5  # checkpointing/exits.py


@dataclass
class Counters:
    """What the manager executed: the same quantities as :class:`checkpointing.simulator.Report` (per tier:
    ``reads``, ``writes``, ``peak`` occupancy) plus wall time (seconds) per action kind and the peak RSS (MB) of
    this process so far (``getrusage``)."""

    forward_steps: int = 0
    backward_steps: int = 0
    reads: list = field(default_factory=list)
    writes: list = field(default_factory=list)
    peak: list = field(default_factory=list)
    wall_time: dict = field(default_factory=lambda: dict.fromkeys(("advance", "write", "read", "discard",
                                                                     "backward"), 0.0))
    peak_rss_mb: float = 0.0

    def mismatches(self, report: Report) -> list[str]:
        """The counts that differ from the simulator's prediction, as ``"name: executed != predicted"``
        (empty when the run did exactly what the schedule's cost model counts)."""
        return [f"{name}: {getattr(self, name)} != {getattr(report, name)}"
                for name in ("forward_steps", "backward_steps", "reads", "writes", "peak")
                if getattr(self, name) != getattr(report, name)]

    def to_dict(self) -> dict:
        return {"forward_steps": self.forward_steps, "backward_steps": self.backward_steps, "reads": self.reads,
                "writes": self.writes, "peak": self.peak, "wall_time": dict(self.wall_time),
                "peak_rss_mb": self.peak_rss_mb}


@dataclass
class AdjointResult:
    """``value`` = J, ``gradient`` = dJ/dp per control, ``initial_state_gradient`` = xbar_0 per state Function;
    ``run_time`` and ``cpu_time``: wall and CPU time (s, this process) of the whole :meth:`CheckpointManager.run`;
    ``timesteps``: the ``dt_i`` of the chain run (recorded during the run for an adaptive one)."""

    value: float
    gradient: tuple
    initial_state_gradient: tuple
    counters: Counters
    predicted: Report
    run_time: float = 0.0
    cpu_time: float = 0.0
    timesteps: tuple = ()


def _owned_views(functions) -> list[np.ndarray]:
    """Read-only views of this rank's owned values of ``functions`` (Functions or Cofunctions, mixed or not),
    one array per sub-function, in order."""
    return [sub.dat.data_ro for f in functions for sub in f.subfunctions]


def _assign_owned(functions, arrays) -> None:
    """The inverse of :func:`_owned_views`: copy ``arrays`` into the owned values of ``functions``."""
    subs = [sub for f in functions for sub in f.subfunctions]
    if len(subs) != len(arrays):
        raise ValueError(f"{len(arrays)} arrays for {len(subs)} sub-functions")
    for sub, values in zip(subs, arrays):
        sub.dat.data_wo[...] = values


def _cofunction(function, arrays):
    """A Cofunction in the dual of ``function``'s space holding ``arrays`` (its owned values)."""
    result = fd.Cofunction(function.function_space().dual())
    _assign_owned([result], arrays)
    return result


class CheckpointManager:
    """Runs schedules of :mod:`checkpointing.actions` for the chain ``loop`` with ``tiers[k]`` serving level
    ``k`` (see the module docstring)."""

    def __init__(self, loop: TimeLoop | AdaptiveTimeLoop, tiers):
        if not isinstance(loop, (TimeLoop, AdaptiveTimeLoop)):
            raise TypeError(f"loop = {loop!r}: expected a checkpointing.adjoint.TimeLoop or AdaptiveTimeLoop")
        tiers = list(tiers)
        if not tiers or not all(isinstance(t, Tier) for t in tiers):
            raise TypeError(f"tiers = {tiers!r}: expected a non-empty list of Tier (RamTier, DiskTier)")
        self.loop = loop
        self.tiers = tiers
        self.comm = loop.state[0].function_space().mesh().comm

    @property
    def platform(self) -> Platform:
        """The tiers' capacities as a platform with unit step costs and free I/O (what schedules are checked on)."""
        return Platform(tuple(Level(t.capacity, name=t.name) for t in self.tiers), uf=1.0, ub=1.0)

    # public entry points ------------------------------------------------------------------------------------
    def evaluate(self) -> float:
        """``J = sum_i j_i(x_i)`` by one untaped forward sweep from the current state (which is restored)."""
        self._require(TimeLoop, "evaluate")
        state, initial = self.loop.state, [np.array(a) for a in _owned_views(self.loop.state)]
        value = 0.0
        try:
            with stop_annotating():
                for i in range(self.loop.steps + 1):
                    term = self.loop.functional(i, state)
                    value += 0.0 if term is None else float(term)
                    if i < self.loop.steps:
                        _step(self.loop, i, "forward evaluation of J")
        finally:
            _assign_owned(state, initial)
        return value

    def run(self, schedule, platform: Platform | None = None) -> AdjointResult:
        """Execute ``schedule`` (validated first by the simulator) and return J, its gradients and the counters.

        ``platform``: optionally the costed platform the schedule was planned for; ``result.predicted`` is then the
        simulator's report on it (makespan in its units) instead of on :attr:`platform` (unit costs).  It must
        have one level per tier and no level larger than its tier."""
        self._require(TimeLoop, "run")
        start, cpu_start = time.perf_counter(), time.process_time()
        schedule = list(schedule)
        platform = self._check_platform(platform)
        predicted = simulate(schedule, platform, self.loop.steps)
        result = _Execution(self, schedule, predicted).run()
        result.run_time, result.cpu_time = time.perf_counter() - start, time.process_time() - cpu_start
        return result

    def run_online(self, platform: Platform | None = None, level: int = 0, max_steps: int = 10**6) -> AdjointResult:
        """J and its gradients for an :class:`AdaptiveTimeLoop`, whose length ``l`` is decided during the first
        forward sweep, with the online checkpointer (checkpointing/online.py) on ``level`` of ``platform``.

        Before each step of the first sweep the loop's rule gives ``dt_i`` from ``x_i`` (recorded in
        ``loop.timesteps``); the checkpointer's actions for that step (keep ``x_i`` or not, advance) are executed
        at once; when the rule ends the chain, the reversal the checkpointer plans for the ``l`` reached is
        executed.  ``result.predicted`` is the simulator's report of the whole schedule (``online.actions``) for
        that ``l``, so the counters can be checked against it as for :meth:`run`.  More than ``max_steps`` steps
        raise ValueError."""
        self._require(AdaptiveTimeLoop, "run_online")
        start, cpu_start = time.perf_counter(), time.process_time()
        platform = self._check_platform(platform)
        online = OnlineCheckpointing(platform, level)
        adaptive = self.loop
        adaptive.timesteps.clear()
        execution = _Execution(self, [], None)
        try:
            execution.open([online.slots if k == level else 0 for k in range(len(self.tiers))])
            while True:
                with stop_annotating():
                    dt = adaptive.record()
                if dt is None:
                    break
                if adaptive.steps > max_steps:
                    raise ValueError(f"max_steps = {max_steps}: the adaptive chain did not end within it")
                execution.feed(online.step())
            if adaptive.steps == 0:
                raise ValueError("next_timestep(0) = None: the adaptive chain has no step")
            execution.loop = adaptive.loop()
            execution.feed(online.finish())
        finally:
            execution.close()
        execution.predicted = simulate(online.actions, platform, adaptive.steps)
        result = execution.result()
        result.run_time, result.cpu_time = time.perf_counter() - start, time.process_time() - cpu_start
        return result

    def _require(self, kind, method: str) -> None:
        if not isinstance(self.loop, kind):
            raise TypeError(f"CheckpointManager.{method}: needs a {kind.__name__}, this manager has a "
                            f"{type(self.loop).__name__}")

    def _check_platform(self, platform: Platform | None) -> Platform:
        """``platform`` (default: :attr:`platform`), checked against the tiers."""
        if platform is None:
            return self.platform
        if platform.n_levels != len(self.tiers) or any(
                level.capacity > tier.capacity for level, tier in zip(platform.levels, self.tiers)):
            raise ValueError(f"platform capacities {platform.capacities} do not fit the tiers' capacities "
                             f"{[t.capacity for t in self.tiers]} (one level per tier, none larger than its tier)")
        return platform



def _step(loop, index: int, phase: str, hint=None) -> None:
    """``F_index`` of ``loop`` (``model.step(dt_index)``, with ``hint`` if given); StepFailedError names the step."""
    dt = loop.timesteps[index]
    try:
        if hint is None:
            loop.model.step(dt)
        else:
            loop.model.step(dt, hint=hint)
    except Exception as exc:
        raise StepFailedError(f"forward step F_{index} (x_{index} -> x_{index + 1}, dt = {dt:g}) failed during "
                              f"{phase}: {type(exc).__name__}: {exc}") from exc


class _Execution:
    """One run of one schedule: the counters, ``J`` so far, ``xbar`` and the accumulated ``gbar``.

    ``xbar`` is kept per state Function and ``gbar`` per control, each as a list of numpy arrays (one per
    sub-function, this rank's owned values)."""

    def __init__(self, manager: CheckpointManager, schedule: list, predicted: Report):
        self.manager, self.loop, self.tiers = manager, manager.loop, manager.tiers
        self.schedule, self.predicted = schedule, predicted
        self.counters = Counters()
        self.position = 0
        self.furthest = 0  # the largest i with x_i computed so far: steps below it are recomputations
        self.value = 0.0
        self.adjoint_state = None  # xbar_{i+1} between backward steps, then xbar_0
        self.hint = None  # (i + 1, model.retape_hint() on x_{i+1}) between backward steps, if the model has one
        self.gradient = [[np.zeros_like(a) for a in _owned_views([p])] for p in self.loop.controls]
        self.initial, self.opened = None, []  # x_0 and the tiers opened, between open() and close()

    def run(self) -> AdjointResult:
        try:
            self.open(self.predicted.peak)
            self.feed(self.schedule)
        finally:
            self.close()
        return self.result()

    def open(self, slots) -> None:
        """Keep ``x_0`` (put back by :meth:`close`) and open the tiers for at most ``slots[k]`` checkpoints each."""
        self.initial = [np.array(a) for a in _owned_views(self.loop.state)]
        layout = StateLayout.of(self.initial)
        gc.collect()
        gc.freeze()  # the per-step collections then scan only objects created during this run
        for tier, count in zip(self.tiers, slots):
            tier.open(layout, count, self.manager.comm)
            self.opened.append(tier)

    def feed(self, actions) -> None:
        """Execute ``actions``, the next part of the schedule (positions count on from the last call)."""
        for action in actions:
            check_terminated()  # a SIGTERM whose exception a destructor swallowed (checkpointing/rundirs.py)
            start = time.perf_counter()
            self.execute(action)
            self.counters.wall_time[type(action).__name__.lower()] += time.perf_counter() - start
            self.position += 1

    def close(self) -> None:
        """Count the tiers' reads, writes and peaks, close them, put ``x_0`` back and drop the run's objects."""
        self.counters.reads = [t.reads for t in self.tiers]
        self.counters.writes = [t.writes for t in self.tiers]
        self.counters.peak = [t.peak for t in self.tiers]
        for tier in self.opened:
            tier.close()
        self.opened = []
        if self.initial is not None:
            _assign_owned(self.loop.state, self.initial)
        _renew_block_variables(self.loop.state + self.loop.controls)
        gc.unfreeze()
        gc.collect()
        self.counters.peak_rss_mb = peak_rss_mb()

    def result(self) -> AdjointResult:
        return AdjointResult(
            value=self.value,
            gradient=tuple(_cofunction(p, g) for p, g in zip(self.loop.controls, self.gradient)),
            initial_state_gradient=tuple(_cofunction(f, a) for f, a in zip(self.loop.state, self.adjoint_state)),
            counters=self.counters, predicted=self.predicted, timesteps=tuple(self.loop.timesteps))

    # one handler per action ----------------------------------------------------------------------------------
    @singledispatchmethod
    def execute(self, action):
        raise TypeError(f"schedule[{self.position}] = {action!r}: not an action of checkpointing.actions")

    @execute.register
    def _(self, action: Advance):
        with stop_annotating():
            for i in range(action.start, action.end):
                phase = ("the first forward sweep" if i >= self.furthest
                         else f"recomputation (schedule[{self.position}]: {action})")
                _step(self.loop, i, phase)
                self.furthest = max(self.furthest, i + 1)
        self.counters.forward_steps += action.end - action.start

    @execute.register
    def _(self, action: Write):
        self.tiers[action.level].write(action.index, _owned_views(self.loop.state))

    @execute.register
    def _(self, action: Read):
        _assign_owned(self.loop.state, self.tiers[action.level].read(action.index))

    @execute.register
    def _(self, action: Discard):
        self.tiers[action.level].discard(action.index)

    @execute.register
    def _(self, action: Backward):
        self.adjoint_state = self.backward_step(action.index)
        self.counters.backward_steps += 1

    # the adjoint of one step --------------------------------------------------------------------------------
    def backward_step(self, index: int) -> list:
        """``Fbar_index`` on a fresh tape: returns ``xbar_index`` and adds to ``gbar`` (see the module docstring)."""
        state, controls = self.loop.state, self.loop.controls
        taped_step = index < self.loop.steps
        hint = self.hint[1] if self.hint is not None and self.hint[0] == index + 1 else None
        self.hint = None
        retape_hint = getattr(self.loop.model, "retape_hint", None)
        if retape_hint is not None and index > 0:
            with stop_annotating():
                self.hint = (index, retape_hint())
        _renew_block_variables(state + controls)
        tape = Tape()
        with set_working_tape(tape), _annotating():
            inputs = [Control(f) for f in state]
            parameters = [Control(p) for p in controls]
            term = self.loop.functional(index, state)
            if taped_step:
                _step(self.loop, index, f"re-taping for backward step {index} (schedule[{self.position}])", hint)
        if taped_step:
            for f, seed in zip(state, self.adjoint_state):
                f.block_variable.adj_value = _cofunction(f, seed)
        if term is not None:
            self.value += float(term)
            if isinstance(term, AdjFloat):
                term.block_variable.adj_value = 1.0
        independents = inputs + parameters
        with stop_annotating(), tape.marked_control_dependents(independents), marked_controls(independents):
            try:
                tape.evaluate_adj(markings=True)
            except Exception as exc:  # e.g. an adjoint linear solve that fails where the Jacobian is not definite
                raise StepFailedError(f"backward step B_{index} (the adjoint of x_{index} -> x_{index + 1}) "
                                      f"failed: {type(exc).__name__}: {exc}") from exc
        adjoint = [[np.array(a) for a in _owned_views([_adjoint_of(c, f)])] for c, f in zip(inputs, state)]
        for total, c, p in zip(self.gradient, parameters, controls):
            for acc, a in zip(total, _owned_views([_adjoint_of(c, p)])):
                acc += a
        del tape, inputs, parameters, independents, term, hint
        _renew_block_variables(state + controls)
        gc.collect()
        return adjoint


def _renew_block_variables(functions) -> None:
    """Drop each Function's block variable (pyadjoint holds it by weak reference): the next access creates a fresh
    one, an independent input of the next tape with no value saved from an earlier one."""
    for f in functions:
        f.clear_block_variable()


def _adjoint_of(control, function):
    """The adjoint value of ``control`` after an adjoint sweep, as a Cofunction in the dual of ``function``'s space
    (zero when nothing on the tape depended on it)."""
    value = control.block_variable.adj_value
    if value is None:
        return fd.Cofunction(function.function_space().dual())
    if isinstance(value, fd.Cofunction):
        return value
    return fd.assemble(value)


class _annotating:
    """Context in which pyadjoint annotates, whatever the caller's annotation state (restored on exit)."""

    def __enter__(self):
        self._was_annotating = annotate_tape()
        continue_annotation()

    def __exit__(self, *exc):
        if not self._was_annotating:
            pause_annotation()
