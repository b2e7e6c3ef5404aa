"""What grows during a bounded-memory gradient, measured inside one process: the C heap in use and the peak RSS, at
every ``--every``-th backward step of our manager on the MISMIP+ model, and the peer leak behind it.

Peak RSS compared between processes (benchmarks/bench_memory_ice.py) scatters by 1-2 MB from one process to the
next, so a growth of a few kB per step is not visible there.  Here one run is sampled as it goes (glibc only):

- ``manager``: MISMIP+ Ice1r (``mismip_ice1r``, the 8 km Ice0 steady state ``data/mismip/ice0_8km.h5`` on a
  ``--cell-size`` mesh), steps of 0.1 year, J = VAF at step l, controls the Weertman coefficient and the melt factor,
  through ``checkpointing.adjoint.gradient`` with ``--schedule`` revolve (``--slots`` RAM slots) or hrevolve
  (``--slots`` RAM + ``--disk-slots`` disk slots in a temporary directory, unit costs).  At the start of every backward
  step ``Backward(i)`` (the manager calls ``functional(i, state)`` there; wrapped here, nothing patched), after a
  cycle collection: the C heap in use (glibc ``mallinfo2``: ``uordblks + hblkhd``; PETSc's matrices, every
  library's C allocations, numpy's arrays) and the peak RSS (``ru_maxrss``).  The slopes per backward step are
  least-squares fits (numpy.polyfit) over the samples after the first.  (What Python allocates is counted by
  tests/adjoint/test_manager_memory.py; ``tracemalloc`` is not run here because its own tables, in the C heap,
  would grow with every allocation it traces.)
- ``peer``: the C heap in use per ``c += d`` for Firedrake Cofunctions ``c``, ``d`` (what pyadjoint's
  ``BlockVariable.add_adj_output`` does when a variable receives a second adjoint contribution), with ``c`` fresh
  at every call (as on a fresh tape) and with one ``c`` reused, and per ``islpy.make_zero_and_vars`` plus the set
  operations PyOP2's ``Dat._iop_kernel`` does to build its loopy kernel.  PyOP2 caches that kernel on the Dat
  *instance*, so every fresh Cofunction builds it anew, and islpy leaves C memory behind per build.

Measured (29 Nov 2026, Firedrake 2026.10, islpy as pinned by it): see docs/mismip.md, "Memory and time of the
flagship gradient".

Usage:  python benchmarks/bench_memory_leak.py [--cell-size M] [--steps L] [--every N] [--schedule revolve|hrevolve]
        [--slots S] [--disk-slots D] [--reps R]
Writes benchmarks/results/bench_memory_leak.json (the peer figures and one run per (schedule, cell size, l)).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from checkpointing.memory import c_heap_bytes, peak_rss_mb  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def per_call(operation, reps: int) -> float:
    """C heap bytes left in use per call of ``operation`` (after 20 calls that fill caches)."""
    for _ in range(20):
        operation()
    before = c_heap_bytes()
    for _ in range(reps):
        operation()
    return (c_heap_bytes() - before) / reps


def peer(reps: int) -> dict:
    import firedrake as fd
    import islpy as isl

    space = fd.FunctionSpace(fd.UnitSquareMesh(10, 10), "CG", 1).dual()
    other, kept = fd.Cofunction(space), fd.Cofunction(space)
    other.dat.data[:] = 1.0

    def fresh():
        c = fd.Cofunction(space)
        c += other

    def reused():
        kept.dat.data[:] = 0.0
        kept.__iadd__(other)

    def islpy_domain():
        names = isl.make_zero_and_vars(["i"])
        names[0].le_set(names["i"]) & names["i"].lt_set(names[0] + 1)

    return {"reps": reps, "fresh_cofunction_iadd_bytes": per_call(fresh, reps),
            "reused_cofunction_iadd_bytes": per_call(reused, reps),
            "islpy_domain_bytes": per_call(islpy_domain, reps)}


def manager(cell_size: float, steps: int, every: int, slots: int, schedule: str = "revolve",
            disk_slots: int = 40) -> dict:
    import firedrake as fd  # noqa: F401 (before the model)

    from checkpointing.adjoint import gradient
    from checkpointing.platform import Platform
    from experiments.mismip import STATES, build
    from icesheet.controls import time_loop
    from icesheet.functionals import build_functional

    controls = ("friction", "melt")
    model = build("mismip_ice1r", cell_size, STATES / "ice0_8km.h5")
    state_bytes = sum(f.dat.data_ro.nbytes for f in model.state)
    gradient(time_loop(model, build_functional(model, "vaf", 2, "final"), [0.1] * 2, controls), "store-all")
    functional = build_functional(model, "vaf", steps, "final")
    samples, count = [], [0]

    def observed(i, state):  # called at the start of Backward(i), i = l, ..., 0
        count[0] += 1
        if count[0] == 1 or count[0] % every == 0:
            samples.append({"backward_steps": count[0] - 1, "c_heap_bytes": c_heap_bytes(),
                            "peak_rss_mb": peak_rss_mb()})
        return functional(i, state)

    loop = time_loop(model, observed, [0.1] * steps, controls)
    start = time.process_time()
    with tempfile.TemporaryDirectory(prefix="bench-memory-leak-") as directory:
        if schedule == "revolve":
            result = gradient(loop, "revolve", Platform.from_spec(f"{slots}:0:0"))
        else:
            result = gradient(loop, "hrevolve", Platform.from_spec(f"{slots}:0:0,{disk_slots}:1:1"), [directory])
    fit = samples[1:]
    done = [s["backward_steps"] for s in fit]
    slopes = {key: float(np.polyfit(done, [s[key] for s in fit], 1)[0]) for key in
              ("c_heap_bytes", "peak_rss_mb")}
    return {"cell_size": cell_size, "steps": steps, "schedule": schedule, "slots": slots,
            "disk_slots": disk_slots if schedule == "hrevolve" else 0, "state_bytes": state_bytes,
            "forward_steps": result.counters.forward_steps, "cpu_s": round(time.process_time() - start, 1),
            "load": os.getloadavg()[0], "samples": samples,
            "c_heap_bytes_per_backward_step": round(slopes["c_heap_bytes"], 1),
            "peak_rss_kb_per_backward_step": round(slopes["peak_rss_mb"] * 1024.0, 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell-size", type=float, default=8000.0, help="m (default 8000)")
    parser.add_argument("--steps", type=int, default=200, help="chain length l (default 200)")
    parser.add_argument("--every", type=int, default=20, help="sample every N backward steps (default 20)")
    parser.add_argument("--schedule", choices=("revolve", "hrevolve"), default="revolve")
    parser.add_argument("--slots", type=int, default=10, help="RAM slots (default 10)")
    parser.add_argument("--disk-slots", type=int, default=40, help="hrevolve's disk slots (default 40)")
    parser.add_argument("--reps", type=int, default=2000, help="calls per peer measurement (default 2000)")
    args = parser.parse_args(argv)
    for name in ("cell_size", "steps", "every", "slots", "disk_slots", "reps"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} = {getattr(args, name)}: must be > 0")
    if args.steps < 3 * args.every:
        parser.error(f"--steps {args.steps} with --every {args.every}: need at least 3 samples (steps >= 3 every)")
    results = {"peer": peer(args.reps), "manager": manager(args.cell_size, args.steps, args.every, args.slots,
                                                           args.schedule, args.disk_slots)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "bench_memory_leak.json"
    saved = json.loads(path.read_text()) if path.is_file() else {}
    m = results["manager"]
    runs = [r for r in saved.get("runs", []) if (r["schedule"], r["cell_size"], r["steps"]) !=
            (m["schedule"], m["cell_size"], m["steps"])] + [m]  # one row per (schedule, cell size, l)
    path.write_text(json.dumps({"peer": results["peer"], "runs": runs}, indent=1))
    p, m = results["peer"], results["manager"]
    print(f"peer (bytes of C heap left per call, {p['reps']} calls): Cofunction += on a fresh Cofunction "
          f"{p['fresh_cofunction_iadd_bytes']:.0f}, on a reused one {p['reused_cofunction_iadd_bytes']:.0f}; "
          f"islpy domain of PyOP2's _iop_kernel {p['islpy_domain_bytes']:.0f}")
    print(f"manager, {m['schedule']}({m['steps']}) on {m['slots']} RAM + {m['disk_slots']} disk slots at "
          f"{m['cell_size']:g} m (state {m['state_bytes']} B), "
          f"{m['forward_steps']} forward steps, CPU {m['cpu_s']} s, load {m['load']:.1f}:")
    for s in m["samples"]:
        print(f"  after {s['backward_steps']:5d} backward steps: C heap {s['c_heap_bytes'] / 1e6:9.3f} MB, "
              f"peak RSS {s['peak_rss_mb']:8.2f} MB")
    print(f"  per backward step: C heap {m['c_heap_bytes_per_backward_step']:+.0f} B "
          f"({m['c_heap_bytes_per_backward_step'] / m['state_bytes']:+.3f} states), "
          f"peak RSS {m['peak_rss_kb_per_backward_step']:+.2f} kB")
    print(f"written: {path} (the runs of every (schedule, cell size, l) measured so far)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
