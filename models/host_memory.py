"""Keep freed host memory in the process instead of handing it back to the kernel after every batch (glibc).

A CPU forward+backward allocates and frees hundreds of MB of activations per chunk. glibc serves the large
blocks with fresh `mmap`s and returns freed heap tops to the kernel, so every chunk page-faults its activations
in again (measured on 2 vCPUs: 83–106 thousand faults per EfficientNet-Lite0 chunk of 8, 0.15–0.2 s of kernel
time in a 0.21–0.25 s chunk). With blocks up to 32 MB taken from the heap and freed memory kept, the same chunk
runs in 0.16–0.19 s. The same page faults hit a GPU run's device-to-host copies of its results.

It is process-wide, so it is for the processes this project owns (the app, the CLI, the benchmarks), not done
on import: a library should not change its host's allocator. The price: the process's resident memory stays
near its peak instead of shrinking after a computation (the peak itself is what bench/rss.py measures).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1  # <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's ceiling for this setting on 64-bit
TRIM_THRESHOLD_BYTES = (1 << 31) - 1  # free heap kept before any is given back (mallopt takes an int)

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Set glibc's thresholds once per process; True where applied (Linux with glibc), False elsewhere."""
    global _applied
    if _applied is None:
        _applied = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                mallopt = libc.mallopt
            except (OSError, AttributeError):  # musl and others have no mallopt: leave their defaults
                return False
            mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
            _applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
                mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
    return _applied
