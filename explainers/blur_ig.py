"""Blur IG (Xu et al., 2020): integrated gradients along a path of ever more blurred copies of the input, as
PAIR's `saliency` package computes it — no baseline image: the path starts from the input blurred away.

With B_σ(x) the Gaussian blur of the (normalised) input, σ_i = i · max_sigma / steps for i < steps:
    A = − Σ_i (σ_{i+1} − σ_i) · (B_{σ_i + h}(x) − B_{σ_i}(x)) / h ⊙ ∇F(B_{σ_i}(x)),   h = grad_step
the minus because the path runs from x (σ = 0) towards the blurred image. The blur is scipy's
`gaussian_filter(mode="constant")`: per axis, taps exp(−t²/2σ²) for |t| ≤ int(4σ + 0.5), normalised over the
whole kernel, zeros outside the image (so the image darkens to 0 at its borders as σ grows). It is applied as one
matrix per axis (B = K_H X K_Wᵀ), in float64 because the finite difference over h amplifies rounding.
The gradient evaluations run in chunks (`batching`); the blurs of a chunk are made together.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .base import Progress, pixel_result, whole_number
from .batching import run_in_chunks
from .gradients import input_gradients
from .guided_ig import fraction_in
from .registry import register

TRUNCATE = 4.0  # kernel radius in σ, as scipy's default


def blur_matrix(size: int, sigma: float, device) -> torch.Tensor:
    """The (size, size) float64 matrix of a 1-D Gaussian blur with zero padding (identity for σ = 0)."""
    if sigma == 0:
        return torch.eye(size, dtype=torch.float64, device=device)
    radius = int(TRUNCATE * sigma + 0.5)
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    norm = torch.exp(-0.5 / sigma ** 2 * taps ** 2).sum()
    offset = torch.arange(size, device=device)[None, :] - torch.arange(size, device=device)[:, None]
    kernel = torch.exp(-0.5 / sigma ** 2 * offset.to(torch.float64) ** 2)
    return torch.where(offset.abs() <= radius, kernel, 0.0) / norm


def gaussian_blur(x: torch.Tensor, sigmas: list[float]) -> torch.Tensor:
    """`(1, C, H, W)` → `(len(sigmas), C, H, W)` float64: x blurred with each σ (in pixels) over both axes."""
    h, w = x.shape[-2:]
    rows = torch.stack([blur_matrix(h, s, x.device) for s in sigmas])[:, None]  # (n, 1, H, H)
    cols = torch.stack([blur_matrix(w, s, x.device) for s in sigmas])[:, None]  # (n, 1, W, W)
    return rows @ x.to(torch.float64) @ cols.transpose(-1, -2)


@register("blur_ig", "Blur IG", "path", options=dict(max_sigma=50.0, steps=100, grad_step=0.01, batch_size=None))
def blur_ig(bundle, x, target, progress: Progress | None = None, max_sigma=50.0, steps=100, grad_step=0.01,
            batch_size=None, **_):
    steps = whole_number(steps, "steps", 1, 4096)
    max_sigma = fraction_in(max_sigma, "max_sigma (pixels)", 0.0, 1000.0, open_low=True)
    grad_step = fraction_in(grad_step, "grad_step (pixels)", 0.0, 10.0, open_low=True)
    sigmas = [i * max_sigma / steps for i in range(steps + 1)]
    widths = torch.tensor([sigmas[i + 1] - sigmas[i] for i in range(steps)], dtype=torch.float64, device=x.device)
    total = torch.zeros(x.shape[1:], dtype=torch.float64, device=x.device)

    def work(start: int, stop: int) -> None:
        nonlocal total
        chunk = sigmas[start:stop]
        blurred = gaussian_blur(x, chunk)
        slope = (gaussian_blur(x, [s + grad_step for s in chunk]) - blurred) / grad_step
        grads = input_gradients(bundle, blurred.to(x.dtype), target)
        total = total + torch.einsum("n,nchw->chw", widths[start:stop], slope * grads.to(torch.float64))

    chunks = run_in_chunks(bundle.model, x, steps, work, batch_size=batch_size, progress=progress, stage="blur IG")
    with torch.no_grad():
        fully_blurred = gaussian_blur(x, [max_sigma]).to(x.dtype)
        f_base, f_input = bundle.model(torch.cat([fully_blurred, x]))[:, target].double().tolist()
    result = pixel_result(-total)
    result.extras.update(chunk_sizes=chunks, endpoint_logits=(f_base, f_input))
    return result
