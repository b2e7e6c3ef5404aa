"""checkpointing.memory's probes see an allocation of known size: 200 MB written by numpy raise the C heap in use by
at least that much (glibc serves it by mmap) and, in a fresh process whose peak is below it, the peak RSS."""
import subprocess
import sys

CODE = """
import numpy as np
from checkpointing.memory import c_heap_bytes, peak_rss_mb
heap, peak = c_heap_bytes(), peak_rss_mb()
block = np.ones(200 * 2**20 // 8)  # 200 MiB, every page written
grown_heap, grown_peak = c_heap_bytes() - heap, peak_rss_mb() - peak
del block
print(grown_heap / 2**20, grown_peak, (c_heap_bytes() - heap) / 2**20)
"""


def test_probes_see_a_known_allocation():
    out = subprocess.run([sys.executable, "-c", CODE], check=True, capture_output=True, text=True).stdout.split()
    heap_mib, peak_mb, heap_after_free_mib = map(float, out)
    assert 200 <= heap_mib < 202
    assert 195 <= peak_mb < 215  # MiB (ru_maxrss / 1024); numpy's and the interpreter's pages besides
    assert abs(heap_after_free_mib) < 2
