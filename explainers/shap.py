"""Kernel SHAP on superpixels (Lundberg & Lee, 2017): Shapley values of image regions, by weighted regression.

Players are SLIC superpixels of the image (scikit-image), or a given `(H, W)` integer map. A coalition z ∈ {0, 1}^M
keeps the present segments of x and puts the baseline's values in the absent ones; v(z) = F(that input), F the
target logit. The Shapley values φ solve the weighted least squares
    min Σ_z π(z) (v(z) − v(∅) − z·φ)²,  π(z) = (M − 1) / (C(M, |z|) |z| (M − |z|)),
under the constraint Σ φ = v(1) − v(∅) that the infinite weights of the empty and full coalitions stand for
(solved exactly by eliminating one unknown). With every coalition enumerated (samples ≥ 2^M − 2) the solution
is the exact Shapley value; otherwise the sizes of most kernel weight are enumerated and the rest sampled, as the
shap library's KernelExplainer does (see `coalitions`).
Each segment's value is spread evenly over its pixels and channels, so Σ attribution = F(x) − F(x′).
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from .base import MethodResult, Progress, pixel_result, to_numpy, whole_number
from .baselines import make_baseline
from .perturbation import scores
from .registry import register

MAX_EXACT_PLAYERS = 16  # 2^16 forwards is the most an exact enumeration may ask for


def superpixels(bundle, x: torch.Tensor, segments) -> np.ndarray:
    """The `(H, W)` map of segment indices 0..M−1: SLIC with about `segments` regions, or a given map relabelled."""
    if isinstance(segments, (np.ndarray, torch.Tensor)):
        given = np.asarray(segments.cpu() if isinstance(segments, torch.Tensor) else segments)
        if given.shape != tuple(x.shape[-2:]) or not np.issubdtype(given.dtype, np.integer):
            raise ValueError(f"segments must be a count or an integer map of shape {tuple(x.shape[-2:])}, "
                             f"got {given.dtype} {given.shape}.")
        return np.unique(given, return_inverse=True)[1].reshape(given.shape).astype(np.int64)
    from skimage.segmentation import slic  # deferred: scikit-image is slow to import

    count = whole_number(segments, "segments", 1, 1000)
    labels = slic(bundle.to_image(x).astype(np.float64), n_segments=count, compactness=10, start_label=0)
    return np.unique(labels, return_inverse=True)[1].reshape(labels.shape).astype(np.int64)


def kernel_weight(players: int, size: np.ndarray) -> np.ndarray:
    """π(z) for coalitions of `size` present players (1..M−1)."""
    comb = np.array([math.comb(players, int(k)) for k in np.atleast_1d(size)], dtype=np.float64)
    return (players - 1) / (comb * size * (players - size))


def coalitions(players: int, samples: int, seed) -> tuple[np.ndarray, np.ndarray, bool]:
    """(coalitions `(n, M)` of 0/1, their regression weights, whether every coalition is there); the empty and
    full coalitions are left out (the constraint stands for them).

    As the shap library's KernelExplainer: the sizes with the most kernel weight (1 and M−1, then 2 and M−2, …) are
    enumerated completely while the budget allows, each coalition weighing π(z); the remaining budget samples the
    other sizes (size ∝ its kernel mass, then a uniform subset, paired with its complement), sharing their mass.
    """
    if players <= MAX_EXACT_PLAYERS and samples >= 2 ** players - 2:
        z = np.array(list(itertools.product((0, 1), repeat=players))[1:-1], dtype=np.float64).reshape(-1, players)
        return z, kernel_weight(players, z.sum(1)), True
    rows, weights, budget, left = [], [], samples, list(range(1, players))
    for k in range(1, players // 2 + 1):
        pair = sorted({k, players - k})
        count = sum(math.comb(players, size) for size in pair)
        if count > budget:
            break
        for size in pair:
            for members in itertools.combinations(range(players), size):
                row = np.zeros(players)
                row[list(members)] = 1
                rows.append(row)
                weights.append(float(kernel_weight(players, np.array([size]))[0]))
            left.remove(size)
        budget -= count
    if left and budget >= 2:
        rng = np.random.default_rng(0 if seed is None else int(seed))
        sizes = np.array(left)
        mass = (players - 1) / (sizes * (players - sizes))
        half = budget // 2
        for k in rng.choice(sizes, size=half, p=mass / mass.sum()):
            row = np.zeros(players)
            row[rng.choice(players, size=int(k), replace=False)] = 1
            rows += [row, 1 - row]
        weights += [mass.sum() / (2 * half)] * (2 * half)
    return np.array(rows).reshape(-1, players), np.array(weights), not left


def shapley_regression(z: np.ndarray, weights: np.ndarray, values: np.ndarray, total: float) -> np.ndarray:
    """φ minimising Σ w (values − z·φ)² subject to Σ φ = total (the last φ eliminated: φ_M = total − Σ_{j<M} φ_j)."""
    if z.shape[1] == 1:
        return np.array([total])
    a = z[:, :-1] - z[:, -1:]
    b = values - z[:, -1] * total
    root = np.sqrt(weights)[:, None]
    head = np.linalg.lstsq(a * root, b * root[:, 0], rcond=None)[0]
    return np.append(head, total - head.sum())


@register("kernel_shap", "Kernel SHAP (superpixels)", "perturbation",
          options=dict(segments=50, samples=512, seed=0, baseline="black"))
def kernel_shap(bundle, x, target, progress: Progress | None = None, segments=50, samples=512, seed=0,
                baseline="black") -> MethodResult:
    samples = whole_number(samples, "samples", 2, 65536)
    segment_map = superpixels(bundle, x, segments)
    players = int(segment_map.max()) + 1
    x_base = make_baseline(bundle, x, baseline, seed)
    z, weights, exact = coalitions(players, samples, seed)
    # Row 0: the baseline (empty coalition), row 1: x (full); then the coalitions.
    z_all = np.concatenate([np.zeros((1, players)), np.ones((1, players)), z])
    segment_index = torch.as_tensor(segment_map, device=x.device)
    present = torch.as_tensor(z_all, dtype=x.dtype, device=x.device)

    def inputs(start: int, stop: int) -> torch.Tensor:
        mask = present[start:stop][:, segment_index].unsqueeze(1)  # (n, 1, H, W)
        return x * mask + x_base * (1 - mask)

    values = scores(bundle.model, x, len(z_all), inputs, lambda out: out[:, target], progress,
                    "coalition").cpu().numpy()
    base_value, full_value = values[0], values[1]
    phi = shapley_regression(z, weights, values[2:] - base_value, full_value - base_value)
    pixels = np.bincount(segment_map.ravel(), minlength=players)
    per_pixel = (phi / (3 * pixels))[segment_map].astype(np.float32)
    attribution = np.broadcast_to(per_pixel, (3, *segment_map.shape)).copy()
    change = full_value - base_value
    result = pixel_result(attribution, delta=float(attribution.sum(dtype=np.float64)) - change)
    result.extras.update(segments=segment_map, shapley_values=phi, exact=exact, coalitions=len(z),
                         endpoint_logits=(float(base_value), float(full_value)), baseline=to_numpy(x_base[0]))
    return result
