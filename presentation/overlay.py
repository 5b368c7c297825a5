"""Attribution → RGB, in plain numpy: the app, the CLI and the tests draw maps the same way.

Signed maps use a diverging map centred on 0 (blue negative, white 0, red positive); absolute maps a
sequential one. As in Captum's visualisation, the scale is set so that the strongest `clip_percentile` % of
the attribution mass saturates: one hot pixel does not wash out the rest of the map.
"""
from __future__ import annotations

import numpy as np


def _even(hex_colours: str) -> np.ndarray:
    """'#rrggbb #rrggbb ...' evenly spaced on [0, 1] → control-point table (position, r, g, b)."""
    rgb = [[int(h[i:i + 2], 16) / 255.0 for i in (1, 3, 5)] for h in hex_colours.split()]
    return np.column_stack([np.linspace(0.0, 1.0, len(rgb)), rgb])


# Control points, linearly interpolated: viridis and inferno are matplotlib's perceptually uniform maps
# sampled at ten points; jet the classic rainbow; blue_white_red the ColorBrewer RdBu ramp, blue for negative.
_COLORMAPS: dict[str, np.ndarray] = {
    "viridis": _even("#440154 #482878 #3e4989 #31688e #26828e #1f9e89 #35b779 #6ece58 #b5de2b #fde725"),
    "inferno": _even("#000004 #1b0c41 #4a0c6b #781c6d #a52c60 #cf4446 #ed6925 #fb9b06 #f7d13d #fcffa4"),
    "jet": np.column_stack([[0, 1 / 8, 3 / 8, 5 / 8, 7 / 8, 1],
                            np.array([[0, 0, 131], [0, 60, 170], [5, 255, 255], [255, 255, 0], [250, 0, 0],
                                      [128, 0, 0]]) / 255.0]),
    "gray": np.array([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]),
    "blue_white_red": _even("#053061 #2166ac #4393c3 #92c5de #d1e5f0 #f7f7f7 #fddbc7 #f4a582 #d6604d #b2182b "
                            "#67001f"),
}
DIVERGING = {"blue_white_red"}
DEFAULT_SIGNED, DEFAULT_ABSOLUTE = "blue_white_red", "inferno"


def list_colormaps() -> list[str]:
    return list(_COLORMAPS)


def apply_colormap(values: np.ndarray, cmap: str) -> np.ndarray:
    """Values in [0, 1] (clipped) → (..., 3) float RGB in [0, 1]."""
    if cmap not in _COLORMAPS:
        raise ValueError(f"Unknown colour map {cmap!r}; choose one of {', '.join(_COLORMAPS)}.")
    points = _COLORMAPS[cmap]
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64)), 0.0, 1.0)
    return np.stack([np.interp(v, points[:, 0], points[:, c]) for c in (1, 2, 3)], axis=-1)


def saturation_threshold(magnitudes: np.ndarray, clip_percentile: float) -> float:
    """The value above which the largest `clip_percentile` % of the total mass lies (Captum's convention).

    0 for an all-zero map; with clip_percentile = 0, the maximum.
    """
    if not 0 <= clip_percentile < 100:
        raise ValueError(f"clip_percentile must be in [0, 100), got {clip_percentile}")
    m = np.sort(np.abs(np.nan_to_num(np.asarray(magnitudes, dtype=np.float64))).ravel())
    total = m.sum()
    if m.size == 0 or total <= 0:
        return 0.0
    cumulative = np.cumsum(m) / total
    index = int(np.searchsorted(cumulative, 1.0 - clip_percentile / 100.0, side="left"))
    return float(m[min(index, m.size - 1)])


def to_heatmap(attribution: np.ndarray) -> np.ndarray:
    """(3, H, W) pixel attribution → (H, W) by summing channels; (H, W) passes through."""
    a = np.asarray(attribution, dtype=np.float32)
    if a.ndim == 3:
        return a.sum(0)
    if a.ndim != 2:
        raise ValueError(f"Expected a (H, W) or (3, H, W) attribution, got shape {a.shape}")
    return a


def scale(heatmap: np.ndarray, signed: bool, clip_percentile: float = 2.0) -> np.ndarray:
    """Heatmap → [0, 1]: signed maps with 0 at 0.5, absolute maps |h| with 0 at 0. Never NaN."""
    h = np.nan_to_num(to_heatmap(heatmap).astype(np.float64))
    if not signed:
        h = np.abs(h)
    threshold = saturation_threshold(h, clip_percentile)
    if threshold <= 0:
        return np.full(h.shape, 0.5 if signed else 0.0)
    normalized = np.clip(h / threshold, -1.0, 1.0)
    return (normalized + 1.0) / 2.0 if signed else normalized


def colorize(heatmap: np.ndarray, signed: bool, cmap: str | None = None, clip_percentile: float = 2.0) -> np.ndarray:
    """(H, W) or (3, H, W) attribution → (H, W, 3) float RGB in [0, 1]."""
    cmap = cmap or (DEFAULT_SIGNED if signed else DEFAULT_ABSOLUTE)
    return apply_colormap(scale(heatmap, signed, clip_percentile), cmap)


def resize_bilinear(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) → (H, W), half-pixel centres (as torch's bilinear with align_corners=False, no antialias)."""
    a = np.asarray(a, dtype=np.float64)
    (h, w), (H, W) = a.shape, size
    if (h, w) == (H, W):
        return a

    def axis(n_in, n_out):
        pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, pos - lo

    r0, r1, fr = axis(h, H)
    c0, c1, fc = axis(w, W)
    top = a[r0][:, c0] * (1 - fc) + a[r0][:, c1] * fc
    bottom = a[r1][:, c0] * (1 - fc) + a[r1][:, c1] * fc
    return top * (1 - fr)[:, None] + bottom * fr[:, None]


def overlay(image_hw3: np.ndarray, heatmap_hw: np.ndarray, *, signed: bool, cmap: str | None = None,
            alpha: float = 0.5, clip_percentile: float = 2.0) -> np.ndarray:
    """Blend the coloured attribution over the image: (1 − α)·image + α·colour, as uint8 (H, W, 3).

    `image_hw3`: float in [0, 1] or uint8. The heatmap may be (3, H, W) or at another resolution (a CAM at its
    layer's size): it is summed over channels / upsampled bilinearly to the image.
    """
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    image = np.asarray(image_hw3)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"Expected an (H, W, 3) image, got shape {image.shape}")
    image = image.astype(np.float64) / 255.0 if image.dtype == np.uint8 else np.clip(image.astype(np.float64), 0, 1)
    heat = to_heatmap(heatmap_hw)
    if heat.shape != image.shape[:2]:
        heat = resize_bilinear(heat, image.shape[:2])
    colour = colorize(heat, signed, cmap, clip_percentile)
    blended = (1.0 - alpha) * image + alpha * colour
    return np.clip(np.rint(blended * 255.0), 0, 255).astype(np.uint8)
