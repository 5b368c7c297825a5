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


def seeded_input(bundle, device: torch.device) -> tuple[torch.Tensor, int]:
    """A fixed random input of the bundle's size and the class the model ranks first for it (timing only)."""
    x = torch.randn(1, 3, *bundle.input_size, generator=torch.Generator().manual_seed(0)).to(device)
    with torch.no_grad():
        return x, int(bundle.model(x).argmax())
