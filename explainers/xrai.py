"""XRAI (Kapishnikov et al., 2019): rank image regions by the attribution density they add, as PAIR's `saliency`
package does (its full, not fast, algorithm).

Regions: Felzenszwalb segmentations of the image (pixel space, rescaled to [−1, 1] and resized to 224 × 224) at
six scales, each segment a mask resized back to the input and dilated by a disk of radius 5. Growing: starting
from nothing, add the mask whose not-yet-covered pixels have the highest mean base attribution, until no mask
adds 50 new pixels; the pixels a mask adds get that mean. Pixels no mask covered get their own mean. The base
attribution is per pixel (the max over channels of a `(3, H, W)` map, as PAIR aggregates).

Per round, every mask's uncovered pixel count and attribution sum are kept up to date by subtracting the pixels
just covered, so the whole growth costs one pass over the masks instead of one per round.
"""
from __future__ import annotations

import numpy as np
import torch

from .base import MethodResult, Progress
from .registry import register

SCALES = (50, 100, 150, 250, 500, 1200)
SMOOTHING_SIGMA = 0.8
SEGMENTATION_SIZE = (224, 224)
MIN_SEGMENT_SIZE = 150
DILATION_RADIUS = 5
MIN_NEW_PIXELS = 50  # a mask that adds fewer uncovered pixels is dropped
DEFAULT_BASE = "integrated_gradients"


def disk_offsets(radius: int) -> list[tuple[int, int]]:
    """The (dy, dx) of skimage's `disk(radius)`: dy² + dx² ≤ radius²."""
    return [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)
            if dy * dy + dx * dx <= radius * radius]


def dilated_label_masks(labels: np.ndarray, radius: int) -> np.ndarray:
    """`(L, H, W)`: for each label from min to max, its mask dilated by a disk (empty where a label is absent).

    Equal to dilating every `labels == l` with `skimage.morphology.dilation(..., disk(radius))`, but one pass
    per disk offset for all labels together: a pixel joins label l's mask if l occurs at any offset from it.
    """
    h, w = labels.shape
    lowest = int(labels.min())
    out = np.zeros((int(labels.max()) - lowest + 1, h, w), dtype=bool)
    rows, cols = np.indices((h, w))
    for dy, dx in disk_offsets(radius):
        dst = (slice(max(0, -dy), h - max(0, dy)), slice(max(0, -dx), w - max(0, dx)))
        src = (slice(max(0, dy), h + min(0, dy)), slice(max(0, dx), w + min(0, dx)))
        out[labels[src] - lowest, rows[dst], cols[dst]] = True
    return out


def region_masks(image: np.ndarray) -> np.ndarray:
    """`(M, H, W)` boolean masks of the dilated Felzenszwalb segments of an `(H, W, 3)` image, scale by scale."""
    from skimage.segmentation import felzenszwalb
    from skimage.transform import resize

    size = image.shape[:2]
    lo, hi = float(image.min()), float(image.max())
    scaled = (image - lo) / (hi - lo) * 2.0 - 1.0 if hi > lo else np.zeros_like(image)
    scaled = resize(scaled, SEGMENTATION_SIZE, order=3, mode="constant", preserve_range=True, anti_aliasing=True)
    masks = []
    for scale in SCALES:
        segments = felzenszwalb(scaled, scale=scale, sigma=SMOOTHING_SIGMA, min_size=MIN_SEGMENT_SIZE)
        segments = resize(segments, size, order=0, preserve_range=True, mode="constant",
                          anti_aliasing=False).astype(int)
        masks.append(dilated_label_masks(segments, DILATION_RADIUS))
    return np.concatenate(masks)


def grow_regions(attribution: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(density map, region ranks): ranks 1, 2, … in order of density, the uncovered rest last."""
    shape = attribution.shape
    attr = attribution.reshape(-1).astype(np.float64)
    flat = masks.reshape(len(masks), -1)
    remaining = flat.sum(axis=1)                  # uncovered pixels of each mask
    total = np.array([attr[mask].sum() for mask in flat])  # their attribution sum
    alive = np.ones(len(masks), dtype=bool)
    covered = np.zeros(attr.size, dtype=bool)
    density = np.full(attr.size, -np.inf)
    added = []                                    # (gain, new pixels) per round
    while True:
        alive &= remaining >= MIN_NEW_PIXELS
        if not alive.any():
            break
        gains = np.where(alive, total / np.maximum(remaining, 1), -np.inf)
        best = int(np.argmax(gains))              # the first of equals, as PAIR
        new = flat[best] & ~covered
        density[new] = gains[best]
        covered |= new
        alive[best] = False
        columns = flat[:, new]
        remaining = remaining - columns.sum(axis=1)
        total = total - columns @ attr[new]
        added.append((gains[best], new))
    ranks = np.zeros(attr.size, dtype=np.int32)
    for rank, (_, new) in enumerate(sorted(added, key=lambda item: -item[0]), start=1):
        ranks[new] = rank
    rest = ~covered
    if rest.any():
        density[rest] = attr[rest].mean()
        ranks[rest] = len(added) + 1
    return density.reshape(shape), ranks.reshape(shape)


def pixel_attribution(bundle, x, target, base, progress) -> tuple[np.ndarray, str]:
    """The base attribution as an `(H, W)` float array, and where it came from."""
    size = tuple(x.shape[-2:])
    if isinstance(base, str):
        from .api import explain

        if base == "xrai":
            raise ValueError("XRAI cannot be its own base attribution; pick a pixel attribution method.")
        explanation = explain(bundle, x, target, base, progress=progress)
        a = explanation.attribution
        if a.shape[-2:] != size:
            a = explanation.heatmap  # layer-resolution maps (CAMs): their upsampled heatmap
        return (a.max(axis=0) if a.ndim == 3 else a), base
    if isinstance(base, torch.Tensor):
        base = base.detach().cpu().numpy()
    a = np.asarray(base, dtype=np.float32) if isinstance(base, np.ndarray) else None
    if a is None or a.shape != size:
        raise ValueError(f"base_attribution must be a method id or an {size} array (the input's height and width), "
                         f"got {type(base).__name__} {getattr(base, 'shape', '')}".rstrip())
    if not np.isfinite(a).all():
        raise ValueError("base_attribution contains NaN or infinite values.")
    return a, "array"


@register("xrai", "XRAI", "path", options={"base_attribution": DEFAULT_BASE})
def xrai(bundle, x, target, progress: Progress | None = None, base_attribution=DEFAULT_BASE, **_):
    def base_progress(fraction, stage):
        if progress is not None:
            progress(0.8 * fraction, f"base attribution: {stage}")

    attribution, source = pixel_attribution(bundle, x, target, base_attribution, base_progress)
    masks = region_masks(bundle.to_image(x))
    if progress is not None:
        progress(0.9, f"growing regions from {len(masks)} segments")
    density, ranks = grow_regions(attribution, masks)
    if progress is not None:
        progress(1.0, "regions ranked")
    density = density.astype(np.float32)
    return MethodResult(attribution=density, heatmap=density.copy(),
                        extras={"regions": ranks, "base_attribution": source, "masks": len(masks)})
