"""Run many forward+backward passes in chunks whose size is chosen by measurement, not assumed.

The cost per sample of a forward+backward pass falls with the batch size until the machine is saturated, and
where that happens depends on the model, the input size and the machine. So the chunk size is learned while the
real work is done: chunks double in size as long as the time per sample measured on the real data keeps falling,
and the best size found is remembered per (model, device, input shape) for later calls, which then only use it
(and keep probing one size up while the largest size tried is still the best). A size timed only once and not far
behind the best is timed again before the best is settled on: one chunk's time is noisy (on a shared 2-vCPU
machine by ±15 %, as much as sizes differ), and the first chunks of a fresh process run slow (allocator growth,
kernel selection), which would otherwise brand a good size bad for good. That happens as early as the chunks allow
(in the first call, mostly), so later calls run at the best size only. No work is thrown away.

Memory stays bounded whatever the step count: the activations a sample keeps for the backward pass are measured
on the first chunk (saved-tensor hooks, this thread only) and chunks never exceed a budget.
"""
from __future__ import annotations

import math
import os
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Callable

import torch

MAX_CHUNK = 1024
FIRST_CHUNK = 4  # small: its saved activations are measured before any chunk is sized by memory
# Saved activations per chunk on the CPU (or a quarter of free RAM): IG-256 on ResNet-50 peaks at 1.67-1.71 GB RSS.
# 1.5 GiB was tried (Lite0, 80 MB a sample, could then reach chunks of 16-20): 2.05 GB there, no gain above the
# run-to-run noise, and two app sessions computing at once peaked no lower.
CPU_BUDGET_BYTES = 1 << 30
GPU_BUDGET_FRACTION = 0.5   # of the device's free memory
# Per-sample times this close count as equal and the larger chunk wins (see Profile.best), on accelerators only:
# there every chunk pays a fixed cost in kernel launches that timing noise hides. On a CPU the cost per sample
# rises again past a cache-friendly size (measured on 2 vCPUs: Lite0 chunks of 8 are 8 % slower than 3–6,
# ResNet-50 chunks of 16 are 20 % slower than 8–12), so leaning larger would land on the rising edge.
ACCELERATOR_TIE_TOLERANCE = 0.10
# A size is timed again until it has been timed RETIME_UNTIL times if its time is within a factor of the best
# size's: 2 for smaller sizes (tried first, maybe while the process was cold: 2.4x slower measured), 1.25 for
# larger ones (tried warm, so only one chunk's noise can have wronged them).
RETIME_SMALLER_WITHIN = 2.0
RETIME_LARGER_WITHIN = 1.25
TIMINGS_COMPARED = 2  # a size's time is the minimum of its last this many timings (see Profile.record)
RETIME_UNTIL = TIMINGS_COMPARED


@dataclass
class Profile:
    per_sample: dict[int, float] = field(default_factory=dict)  # chunk size → seconds per sample (see record)
    times_measured: dict[int, int] = field(default_factory=dict)  # chunk size → how many chunks were timed
    recent: dict[int, list[float]] = field(default_factory=dict)  # chunk size → its last TIMINGS_COMPARED timings
    bytes_per_sample: float | None = None
    tie_tolerance: float = 0.0

    def record(self, size: int, seconds_per_sample: float) -> None:
        """A size's time is the minimum of its last TIMINGS_COMPARED timings: a minimum, as interference from other
        work only ever slows a chunk down; of the same number of timings for every size, as a minimum over more
        timings is lower by luck alone and would lock in whichever size ran most; the last ones, so the machine's
        drift shows."""
        last = self.recent.setdefault(size, [])
        last.append(seconds_per_sample)
        del last[:-TIMINGS_COMPARED]
        self.per_sample[size] = min(last)
        self.times_measured[size] = self.times_measured.get(size, 0) + 1

    def best(self) -> int | None:
        """The fastest size; on accelerators the largest within `tie_tolerance` of it: where the cost curve is
        flat (a GPU past saturation) timing noise would otherwise pick at random, and a larger chunk means fewer
        per-chunk overheads, which the noise hides."""
        if not self.per_sample:
            return None
        fastest = min(self.per_sample.values())
        return max(size for size, t in self.per_sample.items() if t <= fastest * (1 + self.tie_tolerance))

    def worth_retiming(self, best: int) -> int | None:
        """A size other than `best` timed fewer than RETIME_UNTIL times and close enough to it (see
        RETIME_SMALLER_WITHIN), the smallest first; None if there is none."""
        fastest = self.per_sample[best]
        stale = [s for s, t in self.per_sample.items()
                 if s != best and self.times_measured.get(s, 0) < RETIME_UNTIL
                 and t <= fastest * (RETIME_SMALLER_WITHIN if s < best else RETIME_LARGER_WITHIN)]
        return min(stale, default=None)


_profiles: "weakref.WeakKeyDictionary[torch.nn.Module, dict[tuple, Profile]]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def profile_for(model: torch.nn.Module, x: torch.Tensor, kind: str = "fwd+bwd") -> Profile:
    key = (kind, str(x.device), tuple(x.shape[1:]), str(x.dtype))
    with _lock:
        profiles = _profiles.setdefault(model, {})
        if key not in profiles:
            profiles[key] = Profile(tie_tolerance=0.0 if x.device.type == "cpu" else ACCELERATOR_TIE_TOLERANCE)
        return profiles[key]


def forget_profiles() -> None:
    """Drop everything learned (for benchmarks that want a cold start)."""
    with _lock:
        _profiles.clear()


def _free_memory_bytes(device: torch.device) -> float:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return GPU_BUDGET_FRACTION * free
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        available = 8 << 30
    return min(CPU_BUDGET_BYTES, available / 4)


def memory_cap(profile: Profile, device: torch.device) -> int:
    if not profile.bytes_per_sample:
        return MAX_CHUNK
    return max(1, min(MAX_CHUNK, int(_free_memory_bytes(device) // profile.bytes_per_sample)))


class _SavedBytes:
    """Counts the bytes of activations autograd saves for backward (parameters excluded), in this thread."""

    def __init__(self):
        self.total = 0
        self.hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    def _pack(self, t):
        if isinstance(t, torch.Tensor) and not isinstance(t, torch.nn.Parameter):
            self.total += t.numel() * t.element_size()
        return t


def next_chunk(profile: Profile, remaining: int, cap: int) -> int:
    """Chunk size for the next chunk: explore upwards (doubling) while the largest size tried is the fastest,
    else re-time a size that is worth it (Profile.worth_retiming), else the best size, spread evenly over what
    remains. An exploring chunk that would leave less than half its size behind takes the rest (a small tail
    costs nearly a whole chunk on a GPU, where time hardly grows with the batch), or, where the memory cap cuts it
    short, is split in two rather than leave a small tail."""
    best = profile.best()
    if best is None:
        size = FIRST_CHUNK
    elif best == max(profile.per_sample) and best < cap:
        size = 2 * best
        if remaining - size < size / 2:
            size = remaining
        if size > cap and 0 < remaining - cap < cap / 2:
            # the memory cap would leave a small tail: two halves instead (a tail of 2 after 20 was then
            # re-timed by the next call as a candidate, at a cost per sample 1.4x the best's)
            size = math.ceil(remaining / 2)
    else:
        again = profile.worth_retiming(best)
        if again is not None and again <= min(remaining, cap):
            return again
        chunks = math.ceil(remaining / best)
        size = math.ceil(remaining / chunks)
    return max(1, min(size, remaining, cap))


def run_in_chunks(model: torch.nn.Module, x: torch.Tensor, total: int, work: Callable[[int, int], None],
                  batch_size: int | None = None, progress: Callable[[float, str], None] | None = None,
                  stage: str = "gradients") -> list[int]:
    """Call `work(start, stop)` over `range(total)` in chunks; returns the chunk sizes used.

    `batch_size` fixes the chunk size (no measuring); None learns it for `model` and `x`'s shape and device.
    """
    if batch_size is not None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_CHUNK:
            raise ValueError(f"batch_size must be None (automatic) or a whole number from 1 to {MAX_CHUNK}, got {batch_size!r}.")
    profile = profile_for(model, x)
    sizes, done = [], 0
    while done < total:
        if batch_size is not None:
            size = min(batch_size, total - done)
        else:
            cap = memory_cap(profile, x.device)
            with _lock:  # another session may be recording into the same profile
                size = next_chunk(profile, total - done, cap)
        measure_memory = profile.bytes_per_sample is None
        counter = _SavedBytes() if measure_memory else None
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
        start = time.perf_counter()
        if counter is not None:
            with counter.hooks:
                work(done, done + size)
        else:
            work(done, done + size)
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
        per_sample = (time.perf_counter() - start) / size
        with _lock:
            if counter is not None and counter.total:
                profile.bytes_per_sample = counter.total / size
            profile.record(size, per_sample)
        done += size
        sizes.append(size)
        if progress is not None:
            progress(done / total, stage)
    return sizes
