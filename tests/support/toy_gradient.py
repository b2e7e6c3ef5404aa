"""Gradient of the toy nonlinear-diffusion functional through a planned schedule, summarised as JSON.

    python -m support.toy_gradient --cells 8 --steps 10 --planner disk-revolve \\
        --platform 2:0:0,inf:2:2 --directory CHECKPOINT_DIR             (with tests/ on PYTHONPATH)
    mpiexec -n 2 python -m support.toy_gradient ...     (the same numbers, partition-independent)

Prints one JSON line (rank 0): ``J``, the global l2 norms of the gradient cofunctions, the directional derivatives
``dJ/dp . h`` for fixed smooth directions ``h`` (partition-independent, unlike raw dof vectors), the counters and
the simulator's prediction.  Used by the MPI test and handy for a quick look.

``--corrupt-rank R`` flips one byte of the first checkpoint file that rank ``R`` writes on the first disk level:
the run must then stop on *every* rank with the same ``ChecksumError`` (the ranks agree on errors, so none is left
waiting in a collective) and leave no file behind; the JSON line then reports the error instead of the gradient.

``--hold-at-backward I`` prints ``holding at backward step I`` (rank 0) when the backward phase reaches step ``I``
and sleeps there, with its checkpoints on disk, until a signal ends it (for the crash-safety tests: SIGKILL,
SIGTERM).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import firedrake as fd

from checkpointing.adjoint import DiskTier, StorageError, TimeLoop, gradient, tiers_for_platform
from checkpointing.platform import Platform
from support.toymodel import NonlinearDiffusion, misfit_functional

__all__ = ["toy_gradient_summary", "main"]


def toy_gradient_summary(cells: int, steps: int, planner: str, platform: Platform, directories=(),
                         dt: float = 0.05, corrupt_rank: int | None = None,
                         hold_at_backward: int | None = None) -> dict:
    """The gradient of the toy model through ``planner``'s schedule on ``platform``; return partition-independent
    numbers (see the module docstring)."""
    model = NonlinearDiffusion(cells)
    comm = model.mesh.comm
    functional = misfit_functional(model, steps)
    if hold_at_backward is not None:
        functional = _holding_at(functional, hold_at_backward, comm.rank == 0)
    loop = TimeLoop(model, [dt] * steps, (model.source, model.diffusivity), functional)
    tiers = tiers_for_platform(platform, directories)
    if corrupt_rank is not None:
        _corrupt_first_write(next(t for t in tiers if isinstance(t, DiskTier)), comm.rank == corrupt_rank)
    try:
        result = gradient(loop, planner, platform, tiers)
    except StorageError as exc:
        left = comm.allreduce(sum(len(files) for d in directories for _, _, files in os.walk(d)))
        return {"ranks": comm.size, "error": type(exc).__name__, "message": str(exc), "files_left": left}
    x, y = fd.SpatialCoordinate(model.mesh)
    direction = fd.Function(model.u.function_space()).interpolate(fd.cos(2 * x) + y * y)
    derivatives = result.initial_state_gradient + result.gradient
    return {
        "ranks": model.mesh.comm.size,
        "J": result.value,
        "gradient_norms": [float(g.dat.norm) for g in derivatives],
        "directional_derivatives": [float(g.dat.inner(direction.dat)) for g in derivatives],
        "counters": {k: v for k, v in result.counters.to_dict().items() if k not in ("wall_time", "peak_rss_mb")},
        "predicted": result.predicted.to_dict(),
    }


def _holding_at(functional, index: int, announce: bool):
    """``functional``, sleeping when called for ``index`` (the manager calls it only in backward steps)."""

    def holding(i, state):
        if i == index:
            if announce:
                print(f"holding at backward step {index}", flush=True)
            time.sleep(3600)
        return functional(i, state)

    return holding


def _corrupt_first_write(tier: DiskTier, here: bool) -> None:
    """Make ``tier`` flip one byte of the first file it writes, on this rank only if ``here``."""
    write, done = tier.write, []

    def write_then_corrupt(index, arrays):
        write(index, arrays)
        if here and not done:
            with open(tier.path_of(index), "r+b") as fh:
                first = fh.read(1)
                fh.seek(0)
                fh.write(bytes([first[0] ^ 0x01]))
            done.append(index)

    tier.write = write_then_corrupt


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--planner", default="revolve")
    parser.add_argument("--platform", default="3:0:0", help="levels as 'c:w:r,...' (level 0 is RAM)")
    parser.add_argument("--directory", action="append", default=[],
                        help="directory of disk level k >= 1 (repeat once per disk level)")
    parser.add_argument("--corrupt-rank", type=int, default=None,
                        help="flip a byte of the first disk checkpoint this rank writes (fault demonstration)")
    parser.add_argument("--hold-at-backward", type=int, default=None,
                        help="sleep at this backward step until killed (crash-safety tests)")
    args = parser.parse_args(argv)
    summary = toy_gradient_summary(args.cells, args.steps, args.planner, Platform.from_spec(args.platform),
                                   args.directory, corrupt_rank=args.corrupt_rank,
                                   hold_at_backward=args.hold_at_backward)
    if fd.COMM_WORLD.rank == 0:
        print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
