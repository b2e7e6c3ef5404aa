"""checkpointing.memory's probes see an allocation of known size: 200 MiB written by numpy raise the C heap in use by
at least that much (glibc serves it by mmap), and the peak RSS is at least the resident size the kernel reports then
(``VmRSS``).  The peak is not compared with its value before the allocation: a child of a large process (pytest, a
whole test suite) may start with that process's peak, which Linux carries over fork and exec."""
import subprocess
import sys

CODE = """
import numpy as np
from checkpointing.memory import c_heap_bytes, peak_rss_mb

def resident_mib():
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:")) / 1024.0

heap, resident = c_heap_bytes(), resident_mib()
block = np.ones(200 * 2**20 // 8)  # 200 MiB, every page written
grown_heap, grown_resident, peak, now = c_heap_bytes() - heap, resident_mib() - resident, peak_rss_mb(), resident_mib()
del block
print(grown_heap / 2**20, grown_resident, peak, now, (c_heap_bytes() - heap) / 2**20)
"""


def test_probes_see_a_known_allocation():
    out = subprocess.run([sys.executable, "-c", CODE], check=True, capture_output=True, text=True).stdout.split()
    heap_mib, resident_mib, peak_mib, resident_now_mib, heap_after_free_mib = map(float, out)
    assert 200 <= heap_mib < 202
    assert 195 <= resident_mib < 215
    assert peak_mib >= resident_now_mib - 1  # ru_maxrss / 1024 and VmRSS, both MiB
    assert abs(heap_after_free_mib) < 2
