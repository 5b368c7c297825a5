"""Run many forward+backward passes in chunks whose size is chosen by measurement, not assumed.

The cost per sample of a forward+backward pass falls with the batch size until the machine is saturated, and
where that happens depends on the model, the input size and the machine. So the chunk size is learned while the
real work is done: chunks double in size as long as the time per sample measured on the real data keeps falling,
and the best size found is remembered per (model, device, input shape) for later calls, which then only use it
(and keep probing one size up while the largest size tried is still the best). No work is thrown away.

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
CPU_BUDGET_BYTES = 1 << 30  # saved activations per chunk (or a quarter of free RAM): keeps IG-256 on ResNet-50 near 2.3 GB peak
GPU_BUDGET_FRACTION = 0.5   # of the device's free memory
TIE_TOLERANCE = 0.10        # per-sample times this close count as equal (see Profile.best)


@dataclass
class Profile:
    per_sample: dict[int, float] = field(default_factory=dict)  # chunk size → best seconds per sample seen
    bytes_per_sample: float | None = None

    def best(self) -> int | None:
        """The largest size within TIE_TOLERANCE of the fastest per-sample time: where the cost curve is flat
        (a GPU past saturation, a CPU between a few sizes) timing noise would otherwise pick at random, and a
        larger chunk means fewer per-chunk overheads, which the noise hides."""
        if not self.per_sample:
            return None
        fastest = min(self.per_sample.values())
        return max(size for size, t in self.per_sample.items() if t <= fastest * (1 + TIE_TOLERANCE))


_profiles: "weakref.WeakKeyDictionary[torch.nn.Module, dict[tuple, Profile]]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def profile_for(model: torch.nn.Module, x: torch.Tensor, kind: str = "fwd+bwd") -> Profile:
    key = (kind, str(x.device), tuple(x.shape[1:]), str(x.dtype))
    with _lock:
        return _profiles.setdefault(model, {}).setdefault(key, Profile())


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
    else the best size, spread evenly over what remains. Neither leaves a small last chunk: an exploring chunk
    that would leave less than half its size behind takes the rest (a small tail costs nearly a whole chunk on
    a GPU, where time hardly grows with the batch)."""
    best = profile.best()
    if best is None:
        size = FIRST_CHUNK
    elif best == max(profile.per_sample) and best < cap:
        size = 2 * best
        if remaining - size < size / 2:
            size = remaining
    else:
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
            size = next_chunk(profile, total - done, memory_cap(profile, x.device))
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
            if per_sample < profile.per_sample.get(size, math.inf):
                profile.per_sample[size] = per_sample
        done += size
        sizes.append(size)
        if progress is not None:
            progress(done / total, stage)
    return sizes
