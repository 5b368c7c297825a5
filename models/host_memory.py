"""The process's heap (glibc only; no-ops elsewhere): keep freed memory for reuse, or hand it back to the OS.

A CPU forward+backward allocates and frees hundreds of MB of activations per chunk, and a GPU run copies its
results into fresh host buffers. By default glibc serves such blocks with fresh `mmap`s and returns freed heap
tops to the kernel, so every chunk page-faults its memory in again.

- `keep_freed_memory()`: raise glibc's mmap and trim thresholds, so freed blocks stay in the heap and are reused.
  Process-wide, so it is for processes this project owns (the CLI, the benchmarks on request), never done on
  import: a library should not change its host's allocator. Resident memory then stays near its peak.
- `release_freed_memory()`: `malloc_trim(0)`, handing every arena's free pages back. The app calls it after each
  explanation it computes, so a server's resident memory does not ride at the high-water mark of the last upload.
Figures for both are in bench/README.md.
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


@functools.cache
def _malloc_trim():
    """glibc's `malloc_trim` from the running process, or None (not Linux, not glibc, or not exported)."""
    libc = glibc()
    trim = getattr(libc, "malloc_trim", None) if libc is not None else None
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_freed_memory() -> bool:
    """Return freed heap memory to the OS; True if `malloc_trim` ran, False where it is unavailable. Never raises."""
    trim = _malloc_trim()
    if trim is None:
        return False
    try:
        trim(0)
    except Exception:  # noqa: BLE001 - freeing memory early is an optimisation, never a reason to fail a page
        return False
    return True
