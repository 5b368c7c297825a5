"""Baselines x' for path methods: the "absence of signal" the attribution is measured against.

Named baselines are defined in pixel space [0, 1] and then normalised like the input; a tensor is taken as
already normalised. Random ones are seeded, so the same request gives the same picture.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from models.bundle import IMAGENET_MEAN

from .base import BadRequest, short_repr

BASELINES = ("black", "white", "mean", "uniform", "gaussian", "blur")
# Named distributions expected gradients can draw from (a fresh draw per sample); constants give one baseline.
DISTRIBUTIONS = ("uniform", "gaussian", "blur")
GAUSSIAN_SIGMA = 0.2   # pixel-space std of the noise added to the input for the "gaussian" baseline
BLUR_SIGMA = 1 / 20    # blur std as a fraction of the shorter side (≈ 11 px at 224): objects gone, colours kept


def dataset_mean(bundle) -> tuple[float, float, float]:
    """The training set's mean colour: ImageNet's for 1000-class models (EfficientNet-Lite normalises with 0.5,
    which is not a mean colour), else the bundle's normalisation mean."""
    return IMAGENET_MEAN if bundle.num_classes == 1000 else tuple(bundle.mean)


def gaussian_blur(pixels: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of `(N, 3, H, W)` images with reflected borders (sigma in pixels)."""
    if sigma <= 0:
        return pixels
    radius = max(1, min(int(3 * sigma + 0.5), min(pixels.shape[-2:]) - 1))
    t = torch.arange(-radius, radius + 1, dtype=pixels.dtype, device=pixels.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = pixels.shape[1]
    out = F.pad(pixels, (radius, radius, 0, 0), mode="reflect")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    out = F.pad(out, (0, 0, radius, radius), mode="reflect")
    return F.conv2d(out, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def _generator(seed, device) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(0 if seed is None else int(seed))
    return g


def pixel_baselines(bundle, x: torch.Tensor, kind: str, count: int = 1, seed=0,
                    blur_sigmas: torch.Tensor | None = None) -> torch.Tensor:
    """`count` pixel-space baselines `(count, 3, H, W)` of a named kind for input `x` (normalised, `(1, 3, H, W)`)."""
    check_name(kind, "baseline")
    shape = (count, *x.shape[1:])
    image = bundle.denormalize(x.detach().float()).clamp(0, 1)
    g = _generator(seed, x.device)
    if kind == "black":
        return torch.zeros(shape, device=x.device)
    if kind == "white":
        return torch.ones(shape, device=x.device)
    if kind == "mean":
        return torch.tensor(dataset_mean(bundle), device=x.device).view(1, 3, 1, 1).expand(shape).clone()
    if kind == "uniform":
        return torch.rand(shape, generator=g, device=x.device)
    if kind == "gaussian":
        return (image + GAUSSIAN_SIGMA * torch.randn(shape, generator=g, device=x.device)).clamp(0, 1)
    side = min(x.shape[-2:])
    if blur_sigmas is None:
        blur_sigmas = torch.full((count,), BLUR_SIGMA * side)
    return torch.cat([gaussian_blur(image, float(s)) for s in blur_sigmas])


def check_name(kind, what: str) -> str:
    if not isinstance(kind, str) or kind not in BASELINES:
        raise BadRequest(f"Unknown {what} {short_repr(kind)}. Choose one of: {', '.join(BASELINES)}, or pass a tensor.")
    return kind


def check_tensor(t: torch.Tensor, x: torch.Tensor, what: str, batch: bool) -> torch.Tensor:
    """A baseline tensor on `x`'s device and dtype, `(K, 3, H, W)` (`batch`) or `(1, 3, H, W)`, finite; or
    BadRequest. A 3-d tensor is one baseline."""
    b = t.detach()
    if b.dim() == 3:
        b = b.unsqueeze(0)
    shape = f"({'K' if batch else 1}, {', '.join(map(str, x.shape[1:]))})"
    if b.dim() != 4 or tuple(b.shape[1:]) != tuple(x.shape[1:]) or b.shape[0] < 1 or (not batch and b.shape[0] != 1):
        raise BadRequest(f"A {what} tensor must have the shape {shape}, got {tuple(t.shape)}.")
    if not b.is_floating_point():
        raise BadRequest(f"A {what} tensor must be floating point (normalised like the input), got {b.dtype}.")
    b = b.to(device=x.device, dtype=x.dtype)
    if not torch.isfinite(b).all():
        raise BadRequest(f"The {what} tensor contains NaN or infinite values (in {x.dtype}).")
    return b


def check_baseline(baseline, x: torch.Tensor, *, batch: bool = False):
    """`baseline` (or expected gradients' `baselines`, `batch=True`) checked: a name, or a tensor converted to
    `x`'s device and dtype. Raises BadRequest saying what is wrong."""
    what = "baselines" if batch else "baseline"
    if isinstance(baseline, torch.Tensor):
        return check_tensor(baseline, x, what, batch)
    return check_name(baseline, what)


def make_baseline(bundle, x: torch.Tensor, baseline="black", seed=0) -> torch.Tensor:
    """The normalised `(1, 3, H, W)` baseline for `x`: a name from BASELINES, or a tensor already normalised."""
    baseline = check_baseline(baseline, x)
    if isinstance(baseline, torch.Tensor):
        return baseline
    return bundle.normalize(pixel_baselines(bundle, x, baseline, 1, seed)).to(x.dtype)


def baseline_distribution(bundle, x: torch.Tensor, baselines, samples: int, seed=0) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw `samples` normalised baselines for expected gradients.

    Returns (pool, index): the distinct baselines `(K, 3, H, W)` and, per sample, which one it uses. A tensor batch
    (or a single tensor) is sampled uniformly with replacement; "uniform"/"gaussian" noise is fresh per sample;
    "blur" draws a blur width per sample from (0, 2·BLUR_SIGMA·side]; constants give one baseline.
    """
    g = _generator(seed, "cpu")
    baselines = check_baseline(baselines, x, batch=True)
    if isinstance(baselines, torch.Tensor):
        return baselines, torch.randint(baselines.shape[0], (samples,), generator=g).to(x.device)
    if baselines not in DISTRIBUTIONS:
        return make_baseline(bundle, x, baselines, seed), torch.zeros(samples, dtype=torch.long, device=x.device)
    sigmas = None
    if baselines == "blur":
        sigmas = (1 - torch.rand(samples, generator=g)) * 2 * BLUR_SIGMA * min(x.shape[-2:])
    pool = bundle.normalize(pixel_baselines(bundle, x, baselines, samples, seed, blur_sigmas=sigmas)).to(x.dtype)
    return pool, torch.arange(samples, device=x.device)
