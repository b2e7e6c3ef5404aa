"""The checkpoint manager's memory does not grow with the chain: what is alive during its last backward step is the
same for l = 100 as for l = 25 under Revolve with 3 RAM slots, counted, not timed.

The property (docs/checkpointing.md, "The checkpoint manager"): a bounded schedule holds at most its slots of
checkpoints, and each backward step re-tapes one step on a fresh tape that is dropped afterwards, so nothing
state-sized may accumulate over the backward steps.  Counted at ``Backward(0)`` (inside the run, where a leak
would raise the peak, not after it, where ``close()`` may have hidden it), with a reference cycle collection first:

- the live Firedrake Functions and Cofunctions, PETSc Vecs and Mats, pyadjoint Blocks, BlockVariables and Tapes
  (``gc.get_objects``): each a constant independent of l;
- the bytes Python allocated and still holds (``tracemalloc``: every numpy array, hence every state's values):
  for l = 100 at most what the schedule's own, longer list of actions holds more (the planner's list and the
  manager's copy of it), plus 0.1 states per step over the 75 extra steps (17 kB), above l = 25.  The traced bytes
  at Backward(0) move by up to 4.5 kB between identical runs (29 Nov 2026: 64.8-69.3 kB at l = 25, 89.3-91.9 kB at
  l = 100, three runs each, in one process), so the excess over the schedule measured 4.7-10.8 kB in three pairs
  of runs; the earlier allowance of 0.05 states per step (8.7 kB) failed once in a CI run at 10.3 kB.  A leak of
  one state per step would add 173 kB.

Each count would fail on a manager that kept the backward steps' tapes, their Cofunction seeds or one state per
step (checked by hand when this test was written: keeping every tape raises the Block count by ~1 per step).
What it cannot see is C memory that a peer library leaks outside Python: PyOP2 builds a loopy kernel per fresh
Dat for ``Cofunction +=`` (pyadjoint's ``add_adj_output``) and islpy keeps ~0.8 kB of C heap per kernel; that is
measured, not asserted, in docs/mismip.md ("Memory and time of the flagship gradient").
"""
import gc
import logging
import tracemalloc
from collections import Counter

import pytest

pytestmark = pytest.mark.firedrake

DT = 0.05
SLOTS = 3
CELLS = 16  # a state of 17 x 17 P1 values, 2.3 kB
SHORT, LONG = 25, 100


def live_objects() -> Counter:
    import firedrake as fd
    from petsc4py import PETSc
    from pyadjoint.block import Block
    from pyadjoint.block_variable import BlockVariable
    from pyadjoint.tape import Tape

    kinds = {"Function": fd.Function, "Cofunction": fd.Cofunction, "PETSc.Vec": PETSc.Vec, "PETSc.Mat": PETSc.Mat,
             "Block": Block, "BlockVariable": BlockVariable, "Tape": Tape}
    counts = Counter(dict.fromkeys(kinds, 0))
    for obj in gc.get_objects():
        for name, kind in kinds.items():
            if isinstance(obj, kind):
                counts[name] += 1
    return counts


def measure_last_backward_step(steps: int) -> tuple[Counter, int, int]:
    """Run Revolve(steps, SLOTS) on the toy model; return the live objects and the traced bytes at Backward(0),
    and the bytes that the schedule's list of actions holds."""
    from checkpointing.adjoint import TimeLoop, gradient
    from checkpointing.planners import plan
    from checkpointing.platform import Platform
    from support.toymodel import NonlinearDiffusion, misfit_functional

    model = NonlinearDiffusion(CELLS)
    functional = misfit_functional(model, steps)
    seen = {}

    def observed(i, state):
        if i == 0 and "objects" not in seen and tracemalloc.is_tracing():  # Backward(0): the last backward step
            gc.collect()
            seen["objects"], seen["traced"] = live_objects(), tracemalloc.get_traced_memory()[0]
        return functional(i, state)

    loop = TimeLoop(model, [DT] * steps, (model.source, model.diffusivity), observed)
    platform = Platform.from_spec(f"{SLOTS}:0:0")
    tracemalloc.start()  # what the schedule itself (the run's list of actions) holds
    try:
        before = tracemalloc.get_traced_memory()[0]
        schedule = list(plan("revolve", steps, platform))
        held = list(schedule)  # the run holds the planner's list and the manager's copy of it (manager.run)
        schedule_bytes = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del schedule, held
    gradient(TimeLoop(model, [DT] * 2, loop.controls, misfit_functional(model, 2)), "store-all")  # warm caches
    # pytest keeps every captured log record and line of output in memory, a harness cost that grows with the
    # chain's actions: the traced run logs nothing (measured: 6 kB more at l = 60 than at l = 25 with it)
    logging.disable(logging.CRITICAL)
    tracemalloc.start()
    try:
        gradient(loop, "revolve", platform)
    finally:
        tracemalloc.stop()
        logging.disable(logging.NOTSET)
    assert "objects" in seen, "the functional was not called for x_0 during the backward sweep"
    return seen["objects"], seen["traced"], schedule_bytes


def test_what_is_alive_at_the_last_backward_step_does_not_grow_with_the_chain():
    short_objects, short_traced, short_schedule = measure_last_backward_step(SHORT)
    long_objects, long_traced, long_schedule = measure_last_backward_step(LONG)
    # the census sees what the run created (objects from before it are frozen, gc.freeze(), and not listed):
    # Backward(0)'s fresh tape and its controls' block variables
    assert short_objects["Tape"] >= 1 and short_objects["BlockVariable"] >= 1
    grown = {name: long_objects[name] - short_objects[name] for name in short_objects}
    assert all(abs(change) <= 2 for change in grown.values()), (
        f"live objects at Backward(0), l = {LONG} minus l = {SHORT}: {grown}")
    state_bytes = (CELLS + 1) ** 2 * 8
    slack = 0.1 * state_bytes * (LONG - SHORT)  # bytes: 0.1 states per extra step (module docstring)
    assert long_traced - short_traced <= long_schedule - short_schedule + slack, (
        f"Python-allocated memory at Backward(0): {long_traced} B at l = {LONG} against {short_traced} B at "
        f"l = {SHORT}, {(long_traced - short_traced) / (LONG - SHORT) / state_bytes:.3f} states per step (the "
        f"schedule's list holds {long_schedule} B against {short_schedule} B)")
