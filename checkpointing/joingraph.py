"""Join graphs: several chains (the teeth) whose end states meet in one join, continued by one chain (the handle).

Beaumont, Herrmann, Pallez & Shilova, "Optimal memory-aware backpropagation of deep join networks", Phil. Trans.
R. Soc. A 378: 20190049 (2020), call this graph a *join graph* (a "pitchfork"); an ensemble of ``p`` model runs
whose results enter one functional has this shape.  Our model of it, in the conventions of the chain model
(:mod:`checkpointing.actions`, ``docs/join_graphs.md``):

* tooth ``b = 0 .. p-1`` is a chain of ``l_b`` forward steps ``x^b_{i+1} = F^b_i(x^b_i)`` costing ``uf_b`` each,
  and ``l_b + 1`` backward steps ``Fbar^b_{l_b} .. Fbar^b_0`` costing ``ub_b`` each;
* the join is additive: ``y_0 = sum_b g_b(x^b_{l_b})`` (an ensemble mean, a sum of misfits).  ``Join(b)`` adds
  tooth ``b``'s term while ``x^b_{l_b}`` is the working state, into an accumulator; its cost is part of the tooth's
  steps (0 here), as the functional's is in the chain model;
* the handle is a chain of ``h >= 0`` steps ``y_{i+1} = G_i(y_i)`` (``uf_H``, ``ub_H``) with backward steps
  ``Gbar_h .. Gbar_0``; ``Gbar_0`` gives ``ybar_0``, and every tooth's first backward step ``Fbar^b_{l_b}`` (the
  join's derivative with respect to ``x^b_{l_b}``, which needs only ``x^b_{l_b}`` and ``ybar_0`` because the join is
  additive) needs it.  A handle of length 0 is "no handle": the functional of the join alone.

The machine holds one working state and checkpoints on the platform's levels (as for a chain), plus two registers
not counted in any level, like the chain model's adjoint: the join accumulator and the adjoint.  The rules:

``Start(b)``
    tooth ``b``: the working state becomes ``x^b_0`` (from the run's inputs).  ``Start(HANDLE)``: every tooth has
    joined; the working state becomes ``y_0`` (moved out of the accumulator).  Each branch starts at most once, so
    a state needed again must be written.  Cost 0.
``Join(b)``
    working state ``x^b_{l_b}``; each tooth once; the working state is kept.  Cost 0.
``Advance``, ``Write``, ``Read``, ``Discard``, ``Backward`` with ``branch = b`` or ``HANDLE``
    as on a chain, on the states of that branch (``x^b_i`` or ``y_i``), with that branch's costs.  A tooth's
    backward steps need the handle's to be all done.  ``Backward(0, branch=HANDLE)`` of a handle of length 0 may
    also take ``y_0`` from the accumulator (then the working state is kept): the functional of the join reads the
    join, not the working state.

A schedule is valid when every action finds what it needs, no level holds more than ``c_k`` checkpoints, and every
branch runs all its backward steps in order.  Its makespan is the sum of its actions' costs.

**The structure of the paper's proof, as checked properties** (:attr:`JoinReport.violations`, or
``simulate_join(..., structured=True)`` to raise on the first).  For one branch, with ``Fbar_i`` "done" once it ran:

* *stability 1*: once ``Fbar_i`` is done, no forward step ``F_j`` with ``j >= i`` runs on that branch;
* *checkpoint persistence*: while ``x_i`` is stored and ``Fbar_i`` is not done, no ``F_j`` with ``j < i`` runs on
  that branch (the branch is reversed from its highest checkpoint down);
* *stability 2*: after ``Read(x^b_i)``, no forward step of another branch runs until ``Fbar^b_i`` is done;
* *phases*: every forward step of the forward phase (before the handle's first backward step) is a tooth's first
  computation of that state, i.e. the teeth are traversed once each before the turn.

Valid schedules may break them; optimal ones need not (the paper shows some optimal schedule has them, and our
planners' schedules are checked to have them).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .actions import HANDLE, Advance, Backward, Discard, Join, Read, Start, Write
from .platform import Platform, PlatformError, check_cost
from .simulator import InvalidScheduleError, StorageLevels, _fail as fail

__all__ = ["Branch", "JoinGraph", "JoinReport", "simulate_join", "HANDLE", "JoinGraphError"]


class JoinGraphError(ValueError):
    """A join graph description is invalid; the message names the field, the value and what is allowed."""


def _check_length(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise JoinGraphError(f"{name} = {value!r}: a branch length must be an integer >= 0")
    return int(value)


def _check_cost(name: str, value) -> float | None:
    """``value`` as a step cost (``None`` kept: the platform's); the platform's rule, raised as JoinGraphError."""
    if value is None:
        return None
    try:
        return check_cost(name, value)
    except PlatformError as err:
        raise JoinGraphError(str(err)) from None


@dataclass(frozen=True)
class Branch:
    """One chain of a join graph: ``length`` forward steps of cost ``uf`` and ``length + 1`` backward steps of cost
    ``ub`` (``None``: the platform's ``uf``/``ub``)."""

    length: int
    uf: float | None = None
    ub: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "length", _check_length("length", self.length))
        object.__setattr__(self, "uf", _check_cost("uf", self.uf))
        object.__setattr__(self, "ub", _check_cost("ub", self.ub))


@dataclass(frozen=True)
class JoinGraph:
    """``p >= 1`` teeth joined into a handle (default: a handle of length 0 whose backward step costs 0, i.e. no
    handle).  Step costs left ``None`` are the platform's."""

    teeth: tuple[Branch, ...]
    handle: Branch = field(default_factory=lambda: Branch(0, 0.0, 0.0))

    def __post_init__(self):
        teeth = tuple(self.teeth)
        if not teeth:
            raise JoinGraphError("teeth = []: a join graph needs at least one tooth")
        for b, tooth in enumerate(teeth):
            if not isinstance(tooth, Branch):
                raise JoinGraphError(f"teeth[{b}] = {tooth!r}: expected a checkpointing.joingraph.Branch")
        if not isinstance(self.handle, Branch):
            raise JoinGraphError(f"handle = {self.handle!r}: expected a checkpointing.joingraph.Branch")
        object.__setattr__(self, "teeth", teeth)

    @classmethod
    def uniform(cls, teeth: int, length: int, handle: int = 0, **costs) -> "JoinGraph":
        """``teeth`` teeth of ``length`` steps and a handle of ``handle`` steps; ``costs`` may give ``uf``, ``ub``
        (teeth) and ``handle_uf``, ``handle_ub``."""
        if isinstance(teeth, bool) or not isinstance(teeth, int) or teeth < 1:
            raise JoinGraphError(f"teeth = {teeth!r}: the number of teeth must be an integer >= 1")
        tooth = Branch(length, costs.get("uf"), costs.get("ub"))
        return cls((tooth,) * teeth, Branch(handle, costs.get("handle_uf"), costs.get("handle_ub", 0.0)))

    @property
    def p(self) -> int:
        return len(self.teeth)

    @property
    def lengths(self) -> list[int]:
        return [t.length for t in self.teeth]

    def branch(self, b: int) -> Branch:
        return self.handle if b == HANDLE else self.teeth[b]

    def branches(self) -> list[int]:
        """Every branch index: the teeth ``0 .. p-1``, then ``HANDLE``."""
        return list(range(self.p)) + [HANDLE]

    def costs(self, b: int, platform: Platform) -> tuple[float, float]:
        """``(uf, ub)`` of branch ``b`` on ``platform``."""
        br = self.branch(b)
        return (platform.uf if br.uf is None else br.uf, platform.ub if br.ub is None else br.ub)

    def describe(self) -> str:
        teeth = ", ".join(str(t.length) for t in self.teeth)
        return f"{self.p} teeth of lengths [{teeth}], handle of length {self.handle.length}"


@dataclass
class JoinReport:
    """What a join schedule costs: makespan, forward and backward steps per branch (teeth, then the handle), reads,
    writes and peak checkpoints per level, and the structural properties it breaks (empty: all hold)."""

    makespan: float
    forward_steps: list[int]
    backward_steps: list[int]
    reads: list[int]
    writes: list[int]
    peak: list[int]
    violations: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


def simulate_join(schedule, graph: JoinGraph, platform: Platform, *, structured: bool = False) -> JoinReport:
    """Run ``schedule`` on ``graph`` with the checkpoint levels of ``platform`` (module docstring).

    Raises :class:`~checkpointing.simulator.InvalidScheduleError` at the first action that breaks a rule, naming
    its position and the action; with ``structured=True`` also at the first break of a structural property."""
    if not isinstance(graph, JoinGraph):
        raise JoinGraphError(f"graph = {graph!r}: expected a checkpointing.joingraph.JoinGraph")
    branches = graph.branches()
    length = {b: graph.branch(b).length for b in branches}
    uf = {b: graph.costs(b, platform)[0] for b in branches}
    ub = {b: graph.costs(b, platform)[1] for b in branches}

    def state_name(state):
        b, i = state
        return f"y{i}" if b == HANDLE else f"x{i} of tooth {b}"

    levels = StorageLevels(platform, state_name)      # (branch, index) pairs
    working = None                                    # (branch, index) or None
    next_backward = dict(length)                      # per branch; -1 when done
    started, joined = set(), set()
    accumulator = False                               # y_0 complete and still in the accumulator
    forward = {b: 0 for b in branches}
    reached = {b: -1 if b != HANDLE else 0 for b in branches}  # highest state computed so far (forward phase)
    open_reads = {}                                   # branch -> lowest index read and not yet reversed
    violations: list[str] = []
    time = 0.0

    def need(pos, action, state):
        levels.need(pos, action, state, working)

    def note(pos, action, why):
        violations.append(f"action {pos} ({action}): {why}")
        if structured:
            fail(pos, action, why)

    def check_branch(pos, action, b):
        if b not in length:
            fail(pos, action, f"branch {b!r} does not exist; the graph has teeth 0..{graph.p - 1} and HANDLE "
                              f"({HANDLE})")

    turn_started = False
    for pos, action in enumerate(schedule):
        kind = type(action)
        b = getattr(action, "branch", None)
        if kind not in (Advance, Write, Read, Discard, Backward, Start, Join):
            fail(pos, action, "not an action (expected Advance, Write, Read, Discard, Backward, Start or Join)")
        if b is None:
            fail(pos, action, "names no branch; in a join graph every action names a tooth 0..p-1 or HANDLE")
        check_branch(pos, action, b)
        if kind is Start:
            if b in started:
                fail(pos, action, "this branch has already started; a state needed again must be written")
            if b == HANDLE:
                if len(joined) < graph.p:
                    fail(pos, action, f"the handle starts after every tooth joined; joined so far: {sorted(joined)}")
                if not accumulator:
                    fail(pos, action, "y_0 has already been used by the handle's backward step")
                accumulator = False
            started.add(b)
            working = (b, 0)
            turn_started = turn_started or b == HANDLE
        elif kind is Join:
            if b == HANDLE:
                fail(pos, action, "only teeth join")
            if b in joined:
                fail(pos, action, "this tooth has already joined")
            need(pos, action, (b, length[b]))
            joined.add(b)
            accumulator = len(joined) == graph.p
        elif kind is Advance:
            a, e = action.start, action.end
            need(pos, action, (b, a))
            if not a < e <= length[b]:
                fail(pos, action, f"needs start < end <= {length[b]} (the length of this branch)")
            if e - 1 >= next_backward[b] + 1 and next_backward[b] < length[b]:
                note(pos, action, f"stability 1: F_{e - 1} runs after Fbar_{next_backward[b] + 1} is done")
            below = [i for lev in levels.stored for (bb, i) in lev if bb == b and a < i <= next_backward[b]]
            if below:
                note(pos, action, f"checkpoint persistence: F_{a} runs below the stored x{min(below)} of this branch")
            others = {bb: i for bb, i in open_reads.items() if bb != b}
            if others:
                bb, i = next(iter(others.items()))
                note(pos, action, f"stability 2: a forward step while x{i} of branch {bb} is read and not yet reversed")
            if b != HANDLE and not turn_started and a < reached[b]:
                note(pos, action, f"phases: the forward phase recomputes F_{a} of this branch")
            if b != HANDLE and turn_started and next_backward[HANDLE] >= 0:
                note(pos, action, "phases: a tooth's forward step during the turn (the handle's reversal)")
            reached[b] = max(reached[b], e)
            forward[b] += e - a
            time += (e - a) * uf[b]
            working = (b, e)
        elif kind in (Write, Read, Discard):
            working = levels.apply(pos, action, (b, action.index), working)
            if kind is Read:
                open_reads[b] = min(action.index, open_reads.get(b, action.index))
        else:  # Backward
            i = action.index
            if next_backward[b] < 0:
                fail(pos, action, "all backward steps of this branch have already run")
            if i != next_backward[b]:
                fail(pos, action, f"the next backward step of this branch is {next_backward[b]}")
            if b == HANDLE:
                if len(joined) < graph.p:
                    fail(pos, action, f"the handle's backward steps need the join of every tooth; joined: "
                                      f"{sorted(joined)}")
                if i == 0 and length[HANDLE] == 0 and accumulator and working != (HANDLE, 0):
                    accumulator = False     # the functional of the join reads the accumulator
                else:
                    need(pos, action, (b, i))
                    working = None
                turn_started = True
            else:
                if next_backward[HANDLE] >= 0:
                    fail(pos, action, f"a tooth's backward steps need ybar_0: the handle's backward steps "
                                      f"{next_backward[HANDLE]}..0 have not run")
                need(pos, action, (b, i))
                working = None
            if open_reads.get(b, -1) >= i:
                del open_reads[b]
            time += ub[b]
            next_backward[b] -= 1
    undone = [b for b in branches if next_backward[b] >= 0]
    if undone:
        names = ", ".join("the handle" if b == HANDLE else f"tooth {b}" for b in undone)
        raise InvalidScheduleError(f"end of schedule after {len(schedule)} actions: backward steps of {names} never "
                                   "ran")
    order = branches
    return JoinReport(float(time + levels.time), [forward[b] for b in order], [length[b] + 1 for b in order],
                      levels.reads, levels.writes, levels.peak, violations)
