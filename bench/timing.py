"""What the benchmarks share: timing contenders side by side, so machine noise hits all of them alike."""
from __future__ import annotations

import statistics
import time

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def side_by_side(contenders: dict, repeats: int, device: torch.device) -> dict[str, float]:
    """Median seconds per contender; one warm-up call each, then `repeats` interleaved rounds."""
    for fn in contenders.values():
        fn()
    times = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}
