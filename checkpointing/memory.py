"""What this process holds in memory, for the manager's counters and the memory benchmarks.

* :func:`peak_rss_mb`: the peak resident set size so far (``getrusage``'s ``ru_maxrss``, KiB on Linux, / 1024: MiB,
  which the project's tables call MB);
* :func:`c_heap_bytes`: the C heap in use now (glibc's ``mallinfo2``: arena blocks in use plus ``mmap``-ed blocks),
  after a cycle collection: PETSc's matrices and factorisations, numpy's arrays and every library's C allocations,
  which the peak RSS shows only once they exceed an earlier peak.
"""
from __future__ import annotations

import ctypes
import gc
import resource

__all__ = ["peak_rss_mb", "c_heap_bytes"]


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MB (``ru_maxrss`` / 1024)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]


def c_heap_bytes(collect: bool = True) -> int:
    """Bytes of C heap in use (glibc ``mallinfo2``: ``uordblks + hblkhd``), after a cycle collection unless
    ``collect`` is False.  Needs glibc 2.33 or later (Debian 12 has 2.36)."""
    if collect:
        gc.collect()
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return info.uordblks + info.hblkhd
