"""Rendering attributions: scaling, colour maps, overlays; degenerate maps never give NaN."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from presentation import overlay as render


def test_saturation_threshold_is_the_cumulative_mass_percentile():
    values = np.array([1.0] * 98 + [50.0, 50.0])  # the top 2 pixels hold 50 % of the mass
    # Mass-based (Captum's rule), not rank-based: the top 2 % of the mass lies above 50, so 50 saturates.
    assert render.saturation_threshold(values, 2.0) == 50.0
    assert render.saturation_threshold(np.arange(1.0, 101.0), 0.0) == 100.0
    # Written out: sort, cumulate, first value whose cumulative sum reaches 98 % of the total.
    rng = np.random.default_rng(0)
    m = np.sort(np.abs(rng.standard_cauchy(10_000)))
    expected = m[np.nonzero(np.cumsum(m) >= 0.98 * m.sum())[0][0]]
    assert render.saturation_threshold(m[::-1], 2.0) == expected
    with pytest.raises(ValueError):
        render.saturation_threshold(m, 100.0)


def test_top_mass_saturates_so_the_rest_gets_more_contrast():
    """The strongest 2 % of the mass share the top colour instead of stretching the scale for the rest."""
    heat = np.random.default_rng(4).standard_normal((64, 64))
    unclipped = render.scale(heat, signed=False, clip_percentile=0.0)
    clipped = render.scale(heat, signed=False, clip_percentile=2.0)
    assert (unclipped == 1.0).sum() == 1 and (clipped == 1.0).sum() > 10
    assert np.median(clipped) > 1.2 * np.median(unclipped)
    signed = render.scale(heat, signed=True, clip_percentile=2.0)
    assert signed.min() == 0.0 and signed.max() == 1.0 and abs(np.median(signed) - 0.5) < 0.05


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("fill", [0.0, 3.0, np.nan])
def test_degenerate_maps_render_without_nan(signed, fill):
    image = np.random.default_rng(1).random((16, 16, 3))
    out = render.overlay(image, np.full((16, 16), fill), signed=signed, alpha=0.6)
    assert out.dtype == np.uint8 and out.shape == (16, 16, 3)
    colours = render.colorize(np.full((16, 16), fill), signed=signed)
    assert np.isfinite(colours).all() and (colours >= 0).all() and (colours <= 1).all()


def test_signed_map_is_diverging_around_zero():
    heat = np.array([[-2.0, 0.0, 2.0]])
    rgb = render.colorize(heat, signed=True, cmap="blue_white_red", clip_percentile=0.0)
    neg, zero, pos = rgb[0]
    assert neg[2] > neg[0] and pos[0] > pos[2]  # blue for negative, red for positive
    assert np.allclose(zero, zero[0]) and zero.min() > 0.9  # white at 0
    absolute = render.scale(heat, signed=False, clip_percentile=0.0)
    assert np.allclose(absolute, [[1.0, 0.0, 1.0]])  # absolute: sign dropped


def test_overlay_blends_and_resizes():
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    cam = np.array([[0.0, 1.0], [0.0, 1.0]])  # a layer-resolution map
    out = render.overlay(image, cam, signed=False, cmap="gray", alpha=1.0, clip_percentile=0.0)
    assert out.shape == (8, 8, 3)
    assert out[:, 0].max() == 0 and out[:, -1].min() == 255  # left dark, right bright
    assert render.overlay(image, cam, signed=False, cmap="gray", alpha=0.0).max() == 0
    with pytest.raises(ValueError, match="alpha"):
        render.overlay(image, cam, signed=False, alpha=1.5)
    with pytest.raises(ValueError, match="colour map"):
        render.colorize(cam, signed=False, cmap="no-such-map")


def test_resize_matches_torch_bilinear():
    a = np.random.default_rng(2).random((7, 5))
    ours = render.resize_bilinear(a, (224, 160))
    ref = F.interpolate(torch.tensor(a)[None, None], size=(224, 160), mode="bilinear", align_corners=False)[0, 0]
    assert np.abs(ours - ref.numpy()).max() < 1e-9


def test_colormaps_are_well_formed():
    for name in render.list_colormaps():
        ramp = render.apply_colormap(np.linspace(0, 1, 50), name)
        assert ramp.shape == (50, 3) and (ramp >= 0).all() and (ramp <= 1).all()
    viridis = render.apply_colormap(np.array([0.0, 1.0]), "viridis")
    assert np.allclose(viridis * 255, [[0x44, 0x01, 0x54], [0xfd, 0xe7, 0x25]])
    assert render.DEFAULT_SIGNED in render.DIVERGING and render.DEFAULT_ABSOLUTE not in render.DIVERGING


def test_pixel_attribution_sums_channels():
    a = np.random.default_rng(3).standard_normal((3, 6, 6)).astype(np.float32)
    assert np.allclose(render.to_heatmap(a), a.sum(0))
    with pytest.raises(ValueError):
        render.to_heatmap(np.zeros((2, 2, 2, 2)))
