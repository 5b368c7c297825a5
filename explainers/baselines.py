"""Baselines x' for path methods: the "absence of signal" the attribution is measured against.

Named baselines are defined in pixel space [0, 1] and then normalised like the input; a tensor is taken as
already normalised. Random ones are seeded, so the same request gives the same picture.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from models.bundle import IMAGENET_MEAN

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
    if kind not in BASELINES:
        raise ValueError(f"Unknown baseline '{kind}'. Choose one of: {', '.join(BASELINES)}, or pass a tensor.")
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


def make_baseline(bundle, x: torch.Tensor, baseline="black", seed=0) -> torch.Tensor:
    """The normalised `(1, 3, H, W)` baseline for `x`: a name from BASELINES, or a tensor already normalised."""
    if isinstance(baseline, torch.Tensor):
        b = baseline.detach().to(device=x.device, dtype=x.dtype)
        if b.dim() == 3:
            b = b.unsqueeze(0)
        if tuple(b.shape) != tuple(x.shape):
            raise ValueError(f"A baseline tensor must have the input's shape {tuple(x.shape)}, got {tuple(baseline.shape)}.")
        if not torch.isfinite(b).all():
            raise ValueError("The baseline tensor contains NaN or infinite values.")
        return b
    if not isinstance(baseline, str):
        raise ValueError(f"baseline must be one of {', '.join(BASELINES)} or a tensor, got {type(baseline).__name__}.")
    return bundle.normalize(pixel_baselines(bundle, x, baseline, 1, seed)).to(x.dtype)


def baseline_distribution(bundle, x: torch.Tensor, baselines, samples: int, seed=0) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw `samples` normalised baselines for expected gradients.

    Returns (pool, index): the distinct baselines `(K, 3, H, W)` and, per sample, which one it uses. A tensor batch
    (or a single tensor) is sampled uniformly with replacement; "uniform"/"gaussian" noise is fresh per sample;
    "blur" draws a blur width per sample from (0, 2·BLUR_SIGMA·side]; constants give one baseline.
    """
    g = _generator(seed, "cpu")
    if isinstance(baselines, torch.Tensor):
        pool = baselines.detach().to(device=x.device, dtype=x.dtype)
        if pool.dim() == 3:
            pool = pool.unsqueeze(0)
        if pool.dim() != 4 or tuple(pool.shape[1:]) != tuple(x.shape[1:]) or pool.shape[0] < 1:
            raise ValueError(f"baselines must be a (K, {', '.join(map(str, x.shape[1:]))}) tensor, got {tuple(baselines.shape)}.")
        if not torch.isfinite(pool).all():
            raise ValueError("The baselines tensor contains NaN or infinite values.")
        return pool, torch.randint(pool.shape[0], (samples,), generator=g).to(x.device)
    if not isinstance(baselines, str) or baselines not in BASELINES:
        raise ValueError(f"baselines must be one of {', '.join(BASELINES)} or a tensor batch, got {baselines!r}.")
    if baselines not in DISTRIBUTIONS:
        return make_baseline(bundle, x, baselines, seed), torch.zeros(samples, dtype=torch.long, device=x.device)
    sigmas = None
    if baselines == "blur":
        sigmas = (1 - torch.rand(samples, generator=g)) * 2 * BLUR_SIGMA * min(x.shape[-2:])
    pool = bundle.normalize(pixel_baselines(bundle, x, baselines, samples, seed, blur_sigmas=sigmas)).to(x.dtype)
    return pool, torch.arange(samples, device=x.device)
