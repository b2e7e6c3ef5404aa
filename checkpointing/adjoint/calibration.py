r"""Calibrate the cost model of a platform on the actual model and machine, and predict makespans with it.

The cost model (Herrmann & Pallez 2020, ACM TOMS 46(2), section 2; docs/checkpointing.md): a forward step
:math:`F_i` costs :math:`u_{f,i}`, a backward step :math:`\bar F_i` costs :math:`u_{b,i}` (it re-runs :math:`F_i` on a
tape and evaluates the tape's adjoint), writing a checkpoint to level :math:`k` costs :math:`w_k` and reading one
:math:`r_k`; the makespan of a schedule is the sum of the costs of its actions
(:func:`checkpointing.simulator.simulate`).

:func:`calibrate` measures these costs in seconds:

- :math:`u_{f,i}` and :math:`u_{b,i}`: from one store-all run of the manager on the loop (so it computes one
  gradient).  Each forward step of the first sweep is timed around ``model.step``; the backward steps are timed
  between successive calls of ``functional(i, state)``, which the manager makes at the start of each
  :math:`\bar F_i` (the interval from the call for :math:`i` to the call for :math:`i-1` is :math:`\bar F_i` plus the
  RAM read and discard around it).  :math:`\bar F_0` ends inside the manager, so :math:`u_{b,0}` = its taped
  step plus the median over :math:`0 < i < l` of :math:`u_{b,i}` minus its taped step (the adjoint part, the same
  for every step when the adjoint solves do not depend on the step; :math:`u_{b,l}` for ``l = 1``).  Per-step
  costs matter: the number of Picard iterations, hence the cost, differs between steps (and a recomputed step
  repeats its iterations exactly).  A one-step store-all run first compiles the kernels of the forward and adjoint
  forms, so that compilation (seconds, once per process) is not counted as a step cost.
- :math:`w_k`, :math:`r_k`: the median over ``repeats`` writes and reads of the state on tier ``k`` itself;
  :math:`w_k` includes the discard of the checkpoint (deleting a disk file costs as much as writing it: 2.8 ms against
  2.3 ms at 1 km, docs/mismip.md), since the cost model charges each checkpoint once, at its write, and every
  checkpoint written is discarded once.

Times are read from ``clock``: ``time.perf_counter`` (wall time, the default) or ``time.process_time`` (this
process's CPU time, which other processes sharing the cores inflate less, though not at all only on an idle
machine).  Every number is the maximum over MPI ranks, so that all ranks build the same platform and plan the same
schedule.  The calibrated :class:`~checkpointing.platform.Platform` has uniform costs (the means, so that a sweep
costs the same in total) for planners such as H-Revolve; :meth:`Calibration.predict` and the ``"nonuniform"``
planner use the per-step costs.

**A chain longer than the calibration.**  A calibration on a prefix of :math:`l_c` steps predicts a chain of
:math:`l` steps (:meth:`Calibration.chain_costs`, :meth:`Calibration.predict_chain`) with the measured
:math:`u_{f,i}` for :math:`i < l_c` and :math:`u_{f,i} = \bar u_f \rho_i` after, :math:`\bar u_f` the mean of
:math:`u_{f,1} .. u_{f,l_c-1}` (the first step apart: it starts from a velocity not solved on this mesh, and may
cost several times the next ones) and :math:`\rho_i` a relative cost profile (1 by default; :func:`drift_profile`
makes one from the step costs of a cheaper pilot run of the whole chain, e.g. the same scenario on a coarser mesh,
relative to its steps :math:`1 .. l_c-1`), and :math:`u_{b,i}` from :meth:`Calibration.backward_costs_for`
(:math:`u_{b,l}`, the adjoint of :math:`J` alone, kept apart: averaged into a uniform :math:`u_b` it would weigh
:math:`1/(l_c+1)` of the backward sweep instead of :math:`1/(l+1)`, 5 % of :math:`u_b` for :math:`l_c = 20`).

**Forecast from the first sweep.**  A calibration on a prefix of the chain (a store-all run of its first steps,
cheaper than one of the whole chain) cannot see how the cost of a step changes further on (an ice model's Newton
iterations grow as the grounding line retreats, docs/mismip.md).  Every schedule here runs ``F_0 .. F_{l-1}`` once
before its first read (``checkpointing.simulator.first_sweep_end``), so when the first sweep reaches ``x_l`` the cost
of every forward step has been measured once; :func:`forecast_rest` predicts the rest of the run (recomputations,
backward steps, reads and writes: ``checkpointing.simulator.rest_makespan``) with those costs, the backward costs
modelled from the calibration (:meth:`Calibration.backward_costs_for`) and the calibrated tiers.
:class:`FirstSweepForecast` makes that prediction during the run, at the moment the first sweep ends, as an
``on_step`` callback.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import numpy as np
from mpi4py import MPI

from ..planners import plan
from ..platform import INF, Level, Platform
from ..simulator import Report, check_steps, check_step_costs, first_sweep_end, first_sweep_split, simulate
from .driver import gradient
from .protocol import TimeLoop
from .tiers import StateLayout

__all__ = ["Calibration", "calibrate", "measure_tier_costs", "ObservedModel", "forecast_rest", "FirstSweepForecast",
           "BACKWARD_MODELS", "drift_profile", "prefix_mean"]

BACKWARD_MODELS = ("constant", "forward")  # how Calibration.backward_costs_for extends the calibrated ub_i


def prefix_mean(costs, prefix_steps: int) -> float:
    """The mean step cost of a calibrated prefix of :math:`l_c` = ``prefix_steps`` steps: the mean of
    ``costs[1:l_c]`` (the first step apart: it starts from a velocity not solved on this mesh, module docstring), or
    ``costs[0]`` if :math:`l_c = 1`.  The callers check ``1 <= prefix_steps <= len(costs)``."""
    costs = np.asarray(costs, dtype=float)
    return float(costs[1:prefix_steps].mean()) if prefix_steps > 1 else float(costs[0])


@dataclass
class Calibration:
    """Measured costs (seconds): ``forward_costs[i]`` = :math:`u_{f,i}` (``i < l``), ``backward_costs[i]`` =
    :math:`u_{b,i}` (``i <= l``), and per tier ``write_costs``/``read_costs`` with the tiers' ``capacities`` and
    ``names``; ``run_time`` is the time of the store-all run that measured the step costs, ``run_overhead`` the
    part of it outside every step (the manager's set-up, its garbage collections at start and end, opening and
    closing tiers: a constant per ``CheckpointManager.run``, not part of the makespan); ``clock`` names the clock
    all times were read from; ``result`` is the :class:`~checkpointing.adjoint.manager.AdjointResult` of that
    store-all run (a gradient already paid for; not part of :meth:`to_dict`)."""

    forward_costs: tuple
    backward_costs: tuple
    write_costs: tuple
    read_costs: tuple
    capacities: tuple
    names: tuple
    run_time: float = 0.0
    run_overhead: float = 0.0
    taped_forward_costs: tuple = field(default=())
    clock: str = "perf_counter"
    result: object = field(default=None, repr=False, compare=False)

    @property
    def steps(self) -> int:
        return len(self.forward_costs)

    @property
    def uf(self) -> float:
        return float(np.mean(self.forward_costs))

    @property
    def ub(self) -> float:
        return float(np.mean(self.backward_costs))

    def platform(self, name: str = "calibrated", steps: int | None = None, profile=None) -> Platform:
        """The platform with the tiers' capacities, the measured ``w_k``, ``r_k`` and mean ``uf``, ``ub``: of the
        calibrated steps, or with ``steps`` the means of :meth:`chain_costs` for that chain (and ``profile``)."""
        levels = tuple(Level(c, w, r, n) for c, w, r, n in
                       zip(self.capacities, self.write_costs, self.read_costs, self.names))
        if steps is None:
            return Platform(levels, uf=self.uf, ub=self.ub, name=name)
        forward, backward = self.chain_costs(steps, profile)
        return Platform(levels, uf=float(forward.mean()) if steps else self.uf, ub=float(backward.mean()), name=name)

    def chain_costs(self, steps: int, profile=None, backward_model: str = "constant") -> tuple:
        """``(forward, backward)``: the calibrated :math:`u_{f,i}` for ``i < min(steps, l_c)``, then
        :math:`u_{f,i} = \\bar u_f \\rho_i` (:math:`\\bar u_f`: :func:`prefix_mean` of the calibrated steps,
        :math:`\\rho` = ``profile``, default all 1), and :math:`u_{b,0} .. u_{b,l}` from :meth:`backward_costs_for`:
        the per-step costs this calibration predicts for a chain of ``steps`` steps (module docstring)."""
        steps = check_steps(steps)
        if self.steps < 1:
            raise ValueError("calibration has no forward steps: it cannot predict a chain")
        rho = np.ones(steps) if profile is None else check_step_costs("profile", profile, steps)
        measured = np.asarray(self.forward_costs[:steps], dtype=float)
        later = prefix_mean(self.forward_costs, self.steps)
        forward = np.concatenate((measured, later * rho[len(measured):]))
        return forward, self.backward_costs_for(forward, backward_model)

    def predict_chain(self, schedule, steps: int, profile=None, platform=None,
                      backward_model: str = "constant") -> Report:
        """The simulator's report for ``schedule`` on a chain of ``steps`` steps with :meth:`chain_costs` and the
        calibrated tiers (``platform``: the one the schedule was planned on, by default :meth:`platform`)."""
        forward, backward = self.chain_costs(steps, profile, backward_model)
        return simulate(list(schedule), platform or self.platform(), steps, forward_costs=forward,
                        backward_costs=backward)

    def plan(self, planner: str) -> list:
        """The schedule of ``planner`` (checkpointing.planners) on the calibrated platform; ``"nonuniform"`` is
        given the per-step costs (the interval dynamic programme of checkpointing.nonuniform)."""
        costs = {"forward_costs": self.forward_costs, "backward_costs": self.backward_costs} \
            if planner == "nonuniform" else {}
        return plan(planner, self.steps, self.platform(), **costs)

    def optimal_schedule(self) -> list:
        """The H-Revolve schedule (optimal makespan for the uniform mean costs, Herrmann & Pallez 2020)."""
        return self.plan("hrevolve")

    def predict(self, schedule, per_step: bool = True) -> Report:
        """The simulator's report for ``schedule`` with the calibrated costs (per step unless ``per_step=False``)."""
        costs = {"forward_costs": self.forward_costs, "backward_costs": self.backward_costs} if per_step else {}
        return simulate(list(schedule), self.platform(), self.steps, **costs)

    def backward_costs_for(self, forward_costs, model: str = "constant") -> np.ndarray:
        """Backward costs :math:`u_{b,0} .. u_{b,l}` for a chain with forward costs ``forward_costs``
        (:math:`u_{f,0} .. u_{f,l-1}`), extended from this calibration of :math:`l_c` steps (perhaps a prefix of
        the chain).  :math:`u_{b,l}` (no re-taped step, only :math:`j_l`) is the calibrated one.  For
        :math:`i < l`, ``model`` ``"constant"``: the calibrated mean of :math:`u_{b,0} .. u_{b,l_c-1}`, for models
        whose backward step does not follow the forward one (the ice model re-tapes a step from its converged
        velocity, so the re-taped step costs nearly the same whatever its forward iterations); ``"forward"``:
        :math:`u_{f,i} \\sum_{j<l_c} u_{b,j} / \\sum_{j<l_c} u_{f,j}`, for a backward step that re-runs its
        forward step in full."""
        if model not in BACKWARD_MODELS:
            raise ValueError(f"model = {model!r}: the backward cost model must be one of {BACKWARD_MODELS}")
        forward = np.asarray(forward_costs, dtype=float)
        taped = np.asarray(self.backward_costs[:self.steps], dtype=float)
        if model == "constant":
            inner = np.full(forward.shape, taped.mean())
        else:
            inner = forward * (taped.sum() / sum(self.forward_costs))
        return np.append(inner, self.backward_costs[self.steps])

    def to_dict(self) -> dict:
        return {"uf": self.uf, "ub": self.ub, "forward_costs": list(self.forward_costs),
                "backward_costs": list(self.backward_costs), "taped_forward_costs": list(self.taped_forward_costs),
                "levels": self.platform().to_dict()["levels"],
                "run_time": self.run_time, "run_overhead": self.run_overhead, "clock": self.clock}

    @classmethod
    def from_dict(cls, data: dict) -> "Calibration":
        """The calibration :meth:`to_dict` wrote (e.g. a run's ``calibration.json``; other keys are ignored), to
        predict with it after the run (:func:`forecast_rest`)."""
        levels = data["levels"]
        return cls(forward_costs=tuple(data["forward_costs"]), backward_costs=tuple(data["backward_costs"]),
                   write_costs=tuple(v["write"] for v in levels), read_costs=tuple(v["read"] for v in levels),
                   capacities=tuple(INF if v["capacity"] == "inf" else v["capacity"] for v in levels),
                   names=tuple(v["name"] for v in levels), run_time=data["run_time"],
                   run_overhead=data["run_overhead"], taped_forward_costs=tuple(data["taped_forward_costs"]),
                   clock=data["clock"])


def _max_over_ranks(comm, values):
    return [comm.allreduce(float(v), op=MPI.MAX) for v in values]


def measure_tier_costs(tier, arrays, comm, repeats: int = 5, clock=time.perf_counter) -> tuple[float, float]:
    """``(w, r)``: the median time on ``clock`` (s, maximum over ranks) of writing ``arrays`` (this rank's owned
    state values) to ``tier`` and discarding them, and of reading them back, over ``repeats`` trials (``w``
    includes the discard: module docstring).  A tier with capacity 0 costs nothing."""
    if tier.capacity < 1:
        return 0.0, 0.0
    writes, reads = [], []
    tier.open(StateLayout.of(arrays), 1, comm)
    try:
        for _ in range(repeats):
            comm.barrier()
            start = clock()
            tier.write(0, arrays)
            middle = clock()
            tier.read(0)
            end = clock()
            tier.discard(0)
            writes.append(middle - start + clock() - end)
            reads.append(end - middle)
    finally:
        tier.close()
    return tuple(_max_over_ranks(comm, (statistics.median(writes), statistics.median(reads))))


class ObservedModel:
    """A model as the manager sees it (``state``, ``step``) that calls ``on_step(info, taped, seconds)`` after each
    step: ``info`` is what ``model.step`` returned, ``taped`` whether pyadjoint was annotating (the step was re-run
    inside a backward step), ``seconds`` its duration on ``clock``.  For timings and progress bars.  The model's
    optional ``retape_hint`` (protocol.py) is passed through."""

    def __init__(self, model, on_step, clock=time.perf_counter):
        self.model, self.on_step, self.clock = model, on_step, clock
        if hasattr(model, "retape_hint"):
            self.retape_hint = model.retape_hint

    @property
    def state(self) -> tuple:
        return self.model.state

    def step(self, dt, **hint):
        from firedrake.adjoint import annotate_tape

        taped = annotate_tape()
        start = self.clock()
        info = self.model.step(dt, **hint)
        self.on_step(info, taped, self.clock() - start)
        return info


def calibrate(loop: TimeLoop, tiers, repeats: int = 5, clock=time.perf_counter) -> Calibration:
    """Measure :math:`u_{f,i}`, :math:`u_{b,i}` on ``loop`` (one store-all gradient run in RAM, from the model's
    current state, which is restored) and :math:`w_k`, :math:`r_k` on each of ``tiers`` (see the module docstring)."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats = {repeats!r}: must be an integer >= 1")
    tiers = list(tiers)
    comm = loop.state[0].function_space().mesh().comm
    arrays = [np.array(sub.dat.data_ro) for f in loop.state for sub in f.subfunctions]
    tier_costs = [measure_tier_costs(t, arrays, comm, repeats, clock) for t in tiers]

    times = []  # (seconds, taped) per step, in call order
    timed = ObservedModel(loop.model, lambda info, taped, seconds: times.append((seconds, taped)), clock)
    stamps = {}

    def functional(index, state):
        stamps[index] = clock()
        return loop.functional(index, state)

    steps = loop.steps
    warm_up = TimeLoop(loop.model, loop.timesteps[:1], loop.controls,
                       lambda index, state: loop.functional(steps, state) if index == 1 else None)
    gradient(warm_up, "store-all")
    start = clock()
    result = gradient(TimeLoop(timed, loop.timesteps, loop.controls, functional), "store-all")
    elapsed = clock() - start
    forward = [t for t, taped in times if not taped]
    taped_forward = [t for t, taped in times if taped][::-1]  # re-taped in the order F_{l-1} .. F_0
    backward = [0.0] + [stamps[i - 1] - stamps[i] for i in range(1, steps + 1)]
    adjoint_parts = [backward[i] - taped_forward[i] for i in range(1, steps)] or [backward[steps]]
    backward[0] = taped_forward[0] + statistics.median(adjoint_parts)
    overhead = elapsed - sum(forward) - sum(backward)
    return Calibration(forward_costs=tuple(_max_over_ranks(comm, forward)),
                       backward_costs=tuple(_max_over_ranks(comm, backward)),
                       write_costs=tuple(w for w, _ in tier_costs), read_costs=tuple(r for _, r in tier_costs),
                       capacities=tuple(t.capacity for t in tiers), names=tuple(t.name for t in tiers),
                       run_time=comm.allreduce(elapsed, op=MPI.MAX),
                       run_overhead=comm.allreduce(overhead, op=MPI.MAX), clock=clock.__name__,
                       taped_forward_costs=tuple(_max_over_ranks(comm, taped_forward)), result=result)


def drift_profile(pilot_costs, prefix_steps: int) -> np.ndarray:
    """The relative cost profile :math:`\\rho_i = c_i / \\mathrm{mean}(c_1 .. c_{l_c - 1})` of a pilot run's
    per-step costs ``pilot_costs`` (:math:`c_i`, the whole chain), relative to its steps after the first within
    ``prefix_steps`` (:math:`l_c`, the calibrated prefix; :math:`c_0` if :math:`l_c = 1`: :func:`prefix_mean`): with it
    :meth:`Calibration.chain_costs` carries the prefix's mean to the rest of the chain, assuming that the step costs
    of the calibrated run change along the chain as the pilot's do."""
    if np.ndim(pilot_costs) != 1:  # (a string has ndim 0)
        raise ValueError(f"pilot_costs = {pilot_costs!r}: must be a sequence of the pilot's per-step costs")
    costs = check_step_costs("pilot_costs", pilot_costs, len(pilot_costs))
    if isinstance(prefix_steps, bool) or not isinstance(prefix_steps, (int, np.integer)) \
            or not 1 <= prefix_steps <= len(costs):
        raise ValueError(f"prefix_steps = {prefix_steps!r}: must be an integer in 1..{len(costs)} (the pilot's steps)")
    base = prefix_mean(costs, prefix_steps)
    if base <= 0:
        used = f"pilot_costs[1:{prefix_steps}] are all 0" if prefix_steps > 1 else "pilot_costs[0] is 0"
        raise ValueError(f"{used}: no cost to relate the profile to")
    return costs / base


def forecast_rest(schedule, calibration: Calibration, first_sweep_costs, backward_model: str = "constant",
                  platform=None) -> dict:
    """The simulator's prediction of what follows the first forward sweep of ``schedule`` (seconds), from the
    measured cost of every step of that sweep (``first_sweep_costs[i]`` = :math:`u_{f,i}`, ``i < l``), the
    backward costs :meth:`Calibration.backward_costs_for` models with ``backward_model`` and the calibrated
    tiers (``platform``: the one the schedule was planned on, by default ``calibration.platform()``).

    Returns ``first_sweep`` (the cost of the schedule up to the first sweep reaching :math:`x_l`: the measured
    steps and the writes on the way), ``rest`` (the cost after it) and the rest's parts ``recomputation`` (its
    forward steps), ``backward`` (:math:`\\sum_i u_{b,i}`) and ``storage`` (its reads and writes), so that
    ``first_sweep + rest`` is the simulator's makespan with these costs.

    A known bias: :math:`w_k` includes the discard of the checkpoint (:func:`measure_tier_costs`), so a checkpoint
    written in the first sweep is charged to ``first_sweep`` although it is discarded in the rest; ``rest``
    under-predicts the measured rest by (the first sweep's writes) x (the discard's cost).  For the 1 km MISMIP+ run
    of docs/mismip.md (``benchmarks/results/mismip_flagship_1km/``: 990 disk checkpoints, all written in the first
    sweep; its calibrated disk ``w`` 1.4 ms, discard included; the transient 1 km run's 990 discards took 2.8 s)
    that is at most about 2.8 s of a measured rest of 1100 s, 0.3 %."""
    platform = platform or calibration.platform()
    forward = np.asarray(first_sweep_costs, dtype=float)
    steps = len(forward)
    backward = calibration.backward_costs_for(forward, backward_model)

    def split(forward_costs, backward_costs):
        return first_sweep_split(schedule, platform, steps, forward_costs=forward_costs,
                                 backward_costs=backward_costs)

    first, rest = split(forward, backward)
    storage = split(np.zeros(steps), np.zeros(steps + 1))[1]
    recomputation = split(forward, np.zeros(steps + 1))[1] - storage
    return {"first_sweep": first, "rest": rest, "recomputation": recomputation, "backward": float(backward.sum()),
            "storage": storage, "backward_model": backward_model}


class FirstSweepForecast:
    """An ``on_step(info, taped, seconds)`` callback (:class:`ObservedModel`) that predicts the rest of a run of
    ``schedule`` when its first forward sweep reaches :math:`x_l`: it keeps the times of the first ``steps``
    untaped steps (the first sweep: :func:`~checkpointing.simulator.first_sweep_end` checks, here, that the
    schedule neither reads nor runs a backward step before), and after the last of them stores
    :func:`forecast_rest` for every backward model in ``predictions`` and calls ``announce(predictions)``, before
    anything of the rest has run.  Every call is passed on to ``then`` (e.g. a progress bar).

    What the rest then measured, for comparison: ``recomputed_seconds``, the time of the untaped steps after the
    first sweep (in the clock of the ``seconds`` passed, as ``first_sweep_costs``), and ``clocks``, the wall and
    CPU time of this process (``time.perf_counter``, ``time.process_time``) when the forecast was built (just
    before the run) and when it was made: the rest's time is the caller's reading at the end minus the latter."""

    def __init__(self, schedule, calibration: Calibration, steps: int, then=None, announce=None, platform=None):
        first_sweep_end(schedule, steps)
        self.schedule, self.calibration, self.steps, self.platform = list(schedule), calibration, steps, platform
        self.then, self.announce = then, announce
        self.first_sweep_costs: list[float] = []
        self.predictions: dict = {}
        self.recomputed_seconds = 0.0
        self.clocks = {"start": (time.perf_counter(), time.process_time())}

    def __call__(self, info, taped, seconds):
        if not taped and len(self.first_sweep_costs) == self.steps:
            self.recomputed_seconds += seconds
        elif not taped:
            self.first_sweep_costs.append(seconds)
            if len(self.first_sweep_costs) == self.steps:
                self.clocks["first_sweep_end"] = (time.perf_counter(), time.process_time())
                self.predictions = {model: forecast_rest(self.schedule, self.calibration, self.first_sweep_costs,
                                                         model, self.platform) for model in BACKWARD_MODELS}
                if self.announce is not None:
                    self.announce(self.predictions)
        if self.then is not None:
            self.then(info, taped, seconds)
