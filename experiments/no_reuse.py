"""The "No reuse" strategy of Pallez (2019): periodic checkpoints written once during the first forward sweep.

With ``s`` slots and a chain of ``l`` steps, the first sweep writes ``x_{a_0}, ..., x_{a_{s-1}}``,
``a_k = floor(k l / s)`` (so ``a_0 = 0``), and never overwrites them; the reverse sweep then handles the segments
last first, reversing segment ``k`` by recomputing every state from its checkpoint ``x_{a_k}`` (no further
checkpoints).  A slot is freed only when its segment is done, so the memory is never reused for a new checkpoint.
With segments of length ``p_k`` the cost is ``l uf`` (first sweep) ``+ sum_k p_k (p_k - 1)/2 uf`` (recomputation)
``+ (l + 1) ub``, about ``l uf (1 + l / (2 s)) + (l + 1) ub``: between store-all and recompute-all, for ``s`` slots.
"""
from __future__ import annotations

from checkpointing.actions import Advance, Backward, Discard, Read, Write

__all__ = ["no_reuse_schedule"]


def no_reuse_schedule(steps: int, slots: int, level: int = 0) -> list:
    """The periodic, write-once schedule above for ``steps`` steps and ``slots`` checkpoints on ``level``."""
    if slots < 1:
        raise ValueError(f"slots = {slots}: the no-reuse strategy needs at least one slot (for x_0)")
    if steps == 0:
        return [Backward(0)]
    starts = sorted({k * steps // slots for k in range(min(slots, steps))})
    ends = starts[1:] + [steps]
    out = []
    for a, b in zip(starts, ends):
        out += [Write(a, level), Advance(a, b)]
    out.append(Backward(steps))
    for a, b in reversed(list(zip(starts, ends))):
        for i in range(b - 1, a - 1, -1):
            out.append(Read(a, level))
            if i > a:
                out.append(Advance(a, i))
            out.append(Backward(i))
        out.append(Discard(a, level))
    return out
