"""Run many forward+backward passes in chunks: a fixed size per kind of device, capped by memory.

On a CPU a small chunk keeps the activations in cache, and larger ones gain nothing; on an accelerator every
chunk pays a fixed cost in kernel launches, so chunks are as large as memory allows (bench/chunks.py compares
this with a learner that times chunk sizes on the real work).

Memory stays bounded whatever the step count or input size: the activations one sample keeps for the backward
pass are measured on a first chunk of one sample (saved-tensor hooks, this thread only), remembered per
(model, device, input shape), and no chunk exceeds the budget — a requested `batch_size` included, which is
also measured on one sample first. (One sample alone may exceed it; `requests.MAX_INPUT_PIXELS` bounds that.)
"""
from __future__ import annotations

import os
import threading
import weakref
from typing import Callable

import torch

from .base import whole_number

MAX_CHUNK = 1024
CPU_CHUNK = 8
ACCELERATOR_CHUNK = 256
CPU_BUDGET_BYTES = 1 << 30  # saved activations per chunk on the CPU (or a quarter of the free RAM, if less)
GPU_BUDGET_FRACTION = 0.5   # of the device's free memory

_bytes_per_sample: "weakref.WeakKeyDictionary[torch.nn.Module, dict[tuple, float]]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _key(x: torch.Tensor) -> tuple:
    return str(x.device), tuple(x.shape[1:]), str(x.dtype)


def known_bytes_per_sample(model: torch.nn.Module, x: torch.Tensor) -> float | None:
    with _lock:
        return _bytes_per_sample.get(model, {}).get(_key(x))


def forget_measurements() -> None:
    """Drop every measured footprint (for benchmarks that want a cold start)."""
    with _lock:
        _bytes_per_sample.clear()


def memory_budget(device: torch.device) -> float:
    """Bytes of saved activations one chunk may hold on `device`."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return GPU_BUDGET_FRACTION * free
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        available = 8 << 30
    return min(CPU_BUDGET_BYTES, available / 4)


def chunk_size(device: torch.device, bytes_per_sample: float | None, requested: int | None = None) -> int:
    """The chunk size for `device`: `requested`, else its fixed size, capped by the memory budget (1 until the
    footprint is known)."""
    if not bytes_per_sample:
        return 1
    wanted = requested or (CPU_CHUNK if device.type == "cpu" else ACCELERATOR_CHUNK)
    return max(1, min(wanted, MAX_CHUNK, int(memory_budget(device) // bytes_per_sample)))


class _SavedBytes:
    """Counts the bytes of activations autograd saves for backward, in this thread. Parameters are excluded, and
    so are views of them (a Linear saves `weight.t()`, which is weights, not activations)."""

    def __init__(self, model: torch.nn.Module):
        self.total = 0
        self.parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self.hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    def _pack(self, t):
        if isinstance(t, torch.Tensor) and not isinstance(t, torch.nn.Parameter) and (
                t.untyped_storage().data_ptr() not in self.parameters):
            self.total += t.numel() * t.element_size()
        return t


def run_in_chunks(model: torch.nn.Module, x: torch.Tensor, total: int, work: Callable[[int, int], int | None],
                  batch_size: int | None = None, progress: Callable[[float, str], None] | None = None,
                  stage: str = "step") -> list[int]:
    """Call `work(start, stop)` over `range(total)` in chunks; returns the chunk sizes used.

    `batch_size` is the chunk size wanted (None: the device's), capped by memory like any chunk. `work` may return
    how many rows it really ran (IG adds two on accelerators), so the footprint per row is measured right.
    `progress(fraction, "<stage> <done> / <total>")` is called after every chunk.
    """
    if batch_size is not None:
        batch_size = whole_number(batch_size, "batch_size (None: automatic)", 1, MAX_CHUNK)
    sizes, done = [], 0
    while done < total:
        footprint = known_bytes_per_sample(model, x)
        size = min(chunk_size(x.device, footprint, batch_size), total - done)
        if footprint is None:
            counter = _SavedBytes(model)
            with counter.hooks:
                rows = work(done, done + size)
            if counter.total:
                rows = rows if isinstance(rows, int) and rows > 0 else size
                with _lock:
                    _bytes_per_sample.setdefault(model, {})[_key(x)] = counter.total / rows
        else:
            work(done, done + size)
        done += size
        sizes.append(size)
        if progress is not None:
            progress(done / total, f"{stage} {done} / {total}")
    return sizes
