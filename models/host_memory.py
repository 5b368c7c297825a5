"""Keep freed host memory in the process instead of handing it back to the kernel after every batch (glibc).

A CPU forward+backward allocates and frees hundreds of MB of activations per chunk. glibc serves the large
blocks with fresh `mmap`s and returns freed heap tops to the kernel, so every chunk page-faults its activations
in again (measured on 2 vCPUs: 83–106 thousand faults per EfficientNet-Lite0 chunk of 8, 0.15–0.2 s of kernel
time in a 0.21–0.25 s chunk). With blocks up to 32 MB taken from the heap and freed memory kept, the same chunk
runs in 0.16–0.19 s. The same page faults hit a GPU run's device-to-host copies of its results.

It is process-wide, so it is for processes this project owns, not done on import: a library should not change
its host's allocator. The CLI sets it; the benchmarks on request. The app does not: measured with
bench/load.py (2 sessions, then 30 uploads, two runs each way) it saved nothing per upload (2.2-2.4 s either
way) while the server's peak RSS rose (2.31 / 3.01 GiB against 2.05 / 2.39 GiB). The likely reason, not
measured: the app computes in Streamlit's script threads, and glibc's per-thread arenas give back a heap that
is wholly free whatever the thresholds; the app also trims after each explanation (ui/memory.py). The price
where it is set: resident memory stays near its peak after a computation (the peak of IG-256 on ResNet-50,
bench/rss.py, is unchanged: 1.67 vs 1.71 GB).
"""
from __future__ import annotations

import ctypes
import functools
import os
import sys

M_TRIM_THRESHOLD = -1  # <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's ceiling for this setting on 64-bit
TRIM_THRESHOLD_BYTES = (1 << 31) - 1  # free heap kept before any is given back (mallopt takes an int)


@functools.cache
def glibc() -> ctypes.CDLL | None:
    """The running process's C library if it is glibc (Linux), else None (musl, macOS, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):  # musl and others have no such name, or no value
            return None
        return ctypes.CDLL(None)
    except (AttributeError, OSError, ValueError):
        return None


@functools.cache
def keep_freed_memory() -> bool:
    """Set glibc's thresholds once per process; True where applied (Linux with glibc), False elsewhere."""
    libc = glibc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    mmap_set = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    return bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)) and mmap_set
