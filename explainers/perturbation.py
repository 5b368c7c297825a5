"""Perturbation methods: change the input, watch the target's score; no gradients, any model.

- `occlusion` (Zeiler & Fergus, 2014; Captum's `Occlusion`): a window of the baseline slides over the image (all
  channels together); each pixel gets the mean, over the windows covering it, of F(x) − F(x with the window
  occluded). Window starts are 0, s, 2s, … up to the last one that reaches the border (cut there), as Captum.
- `rise` (Petsiuk et al., 2018): N random masks, each a `cells × cells` grid of Bernoulli(p) cells upsampled
  bilinearly to (cells + 1) cells of ⌈H / cells⌉ px and cropped at a random shift; the map is
  Σ_i P(target | x ⊙ M_i) · M_i / (N · p), with masked pixels at 0 in the normalised input as in the paper's code.
Both run batched forwards without autograd, in chunks with progress.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from .base import MethodResult, Progress, pixel_result, to_numpy, whole_number
from .baselines import make_baseline
from .registry import register

CPU_FORWARD_CHUNK = 16           # forwards only: no activations kept for a backward pass
ACCELERATOR_FORWARD_CHUNK = 128


def forward_chunk(device: torch.device) -> int:
    return CPU_FORWARD_CHUNK if device.type == "cpu" else ACCELERATOR_FORWARD_CHUNK


def scores(model: torch.nn.Module, x: torch.Tensor, total: int, make_batch: Callable[[int, int], torch.Tensor],
           score: Callable[[torch.Tensor], torch.Tensor], progress: Progress | None, stage: str) -> torch.Tensor:
    """`score(model(make_batch(start, stop)))` for `range(total)` in chunks: a `(total,)` float64 tensor."""
    out = torch.empty(total, dtype=torch.float64, device=x.device)
    chunk = forward_chunk(x.device)  # fixed: forwards without gradients keep no activations to budget
    for start in range(0, total, chunk):
        stop = min(start + chunk, total)
        with torch.no_grad():
            out[start:stop] = score(model(make_batch(start, stop))).double()
        if progress is not None:
            progress(stop / total, f"{stage} {stop} / {total}")
    return out


def window_starts(size: int, window: int, stride: int) -> list[int]:
    """Captum's window positions on one axis: ⌈(size − window) / stride⌉ + 1 starts, the last cut at the border."""
    return [i * stride for i in range(math.ceil((size - window) / stride) + 1)]


@register("occlusion", "Occlusion", "perturbation", options=dict(window=32, stride=16, baseline="black", seed=0))
def occlusion(bundle, x, target, progress: Progress | None = None, window=32, stride=16, baseline="black", seed=0):
    h, w = x.shape[-2:]
    asked = whole_number(window, "window (pixels)", 1, 4096)
    stride = whole_number(stride, "stride (pixels)", 1, 4096)
    if stride > asked:
        raise ValueError(f"stride ({stride}) must not exceed the window ({asked} px): pixels would be skipped.")
    # A window larger than the image covers all of it (so the defaults also suit small inputs).
    window = min(asked, h, w)
    stride = min(stride, window)
    x_base = make_baseline(bundle, x, baseline, seed)
    spots = [(r, c) for r in window_starts(h, window, stride) for c in window_starts(w, window, stride)]

    def occluded(start: int, stop: int) -> torch.Tensor:
        batch = x.repeat(stop - start, 1, 1, 1)
        for i, (r, c) in enumerate(spots[start:stop]):
            batch[i, :, r:r + window, c:c + window] = x_base[0, :, r:r + window, c:c + window]
        return batch

    def logit(out):
        return out[:, target]

    with torch.no_grad():
        full = float(bundle.model(x)[0, target])
    drops = full - scores(bundle.model, x, len(spots), occluded, logit, progress, "window")
    total = torch.zeros(h, w, dtype=torch.float64, device=x.device)
    counts = torch.zeros(h, w, dtype=torch.float64, device=x.device)
    for (r, c), drop in zip(spots, drops):
        total[r:r + window, c:c + window] += drop
        counts[r:r + window, c:c + window] += 1
    attribution = (total / counts).float().expand(3, h, w)
    result = pixel_result(attribution)
    result.extras.update(windows=len(spots), baseline=to_numpy(x_base[0]))
    return result


def rise_masks(size: tuple[int, int], masks: int, cells: int, p: float, seed) -> Callable[[int, int], torch.Tensor]:
    """A function giving masks start..stop `(n, 1, H, W)` of one seeded draw (the grids and shifts are drawn at
    once; the upsampled masks are made chunk by chunk, so memory does not grow with their number)."""
    g = torch.Generator().manual_seed(0 if seed is None else int(seed))
    grids = (torch.rand(masks, 1, cells, cells, generator=g) < p).float()
    cell = (math.ceil(size[0] / cells), math.ceil(size[1] / cells))
    shifts = torch.stack([torch.randint(cell[0], (masks,), generator=g), torch.randint(cell[1], (masks,), generator=g)], 1)
    up = ((cells + 1) * cell[0], (cells + 1) * cell[1])

    def make(start: int, stop: int) -> torch.Tensor:
        big = F.interpolate(grids[start:stop], size=up, mode="bilinear", align_corners=False)
        return torch.stack([big[i, :, r:r + size[0], c:c + size[1]]
                            for i, (r, c) in enumerate(shifts[start:stop].tolist())])
    return make


@register("rise", "RISE", "perturbation", options=dict(masks=500, cells=7, p=0.5, seed=0))
def rise(bundle, x, target, progress: Progress | None = None, masks=500, cells=7, p=0.5, seed=0) -> MethodResult:
    masks = whole_number(masks, "masks", 1, 20000)
    cells = whole_number(cells, "cells", 1, min(x.shape[-2:]))
    if not isinstance(p, (int, float)) or not 0 < p <= 1:
        raise ValueError(f"p (the probability that a cell is kept) must be in (0, 1], got {p!r}.")
    make = rise_masks(tuple(x.shape[-2:]), masks, cells, float(p), seed)
    saliency = torch.zeros(x.shape[-2:], dtype=torch.float64, device=x.device)

    def masked(start: int, stop: int) -> torch.Tensor:
        return x * make(start, stop).to(x.device)

    def probability(out):
        return torch.softmax(out.float(), dim=1)[:, target]

    weights = scores(bundle.model, x, masks, masked, probability, progress, "mask")
    for start in range(0, masks, 256):  # Σ_i w_i M_i, a chunk of masks at a time
        stop = min(masks, start + 256)
        saliency += torch.einsum("n,nhw->hw", weights[start:stop], make(start, stop)[:, 0].to(x.device).double())
    saliency = (saliency / (masks * float(p))).float()
    return MethodResult(attribution=to_numpy(saliency), heatmap=to_numpy(saliency), extras=dict(masks=masks))
