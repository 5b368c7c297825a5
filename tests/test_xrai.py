"""XRAI against PAIR's `saliency` package with the same base attribution, and its parts against their definitions."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

from explainers import explain
from explainers.xrai import dilated_label_masks, grow_regions

ESPRESSO = 967


def pair_xrai(bundle, x, base: np.ndarray) -> np.ndarray:
    import saliency.core as core

    image = bundle.to_image(x)
    # PAIR takes a base attribution shaped like its input (H, W, 3) and aggregates it by the max over channels.
    return core.XRAI().GetMask(image, None, base_attribution=np.repeat(base[..., None], 3, axis=-1))


@pytest.mark.parametrize("arch", ["lite0", "resnet18"])
def test_xrai_matches_pair_with_the_same_base_attribution(lite0, resnet18, two_objects_image, cat_image, arch):
    """Full size (224) for lite0, where the segmentation runs unresized; 112 px for ResNet (resized to 224 and back)."""
    if arch == "lite0":
        bundle, x, target = lite0, lite0.preprocess(two_objects_image), ESPRESSO
    else:
        bundle, target = resnet18, 7
        x = F.interpolate(resnet18.preprocess(cat_image), size=(112, 112), mode="bilinear", antialias=True)
    base = explain(bundle, x, target, "saliency").attribution.max(axis=0)
    ours = explain(bundle, x, target, "xrai", base_attribution=base)
    ref = pair_xrai(bundle, x, base)
    assert ours.attribution.shape == ours.heatmap.shape == tuple(x.shape[-2:])
    assert spearmanr(ours.attribution.ravel(), ref.ravel())[0] > 0.95
    assert np.abs(ours.attribution - ref).max() <= 1e-5 * np.abs(ref).max()
    # By method id: the same map (the base method's (3, H, W) map, max over channels).
    by_id = explain(bundle, x, target, "xrai", base_attribution="saliency")
    assert np.array_equal(by_id.attribution, ours.attribution) and by_id.extras["base_attribution"] == "saliency"
    ranks = ours.extras["regions"]
    assert ranks.min() == 1 and ours.attribution[ranks == 1].mean() >= ours.attribution[ranks == ranks.max()].mean()


def test_label_masks_are_skimage_dilations():
    from skimage.morphology import dilation, disk

    labels = np.random.default_rng(0).integers(2, 7, size=(30, 23))
    labels[:8] = 4
    ours = dilated_label_masks(labels, 5)
    ref = np.stack([dilation(labels == v, footprint=disk(5)) for v in range(2, 7)])
    assert ours.shape == ref.shape and np.array_equal(ours, ref)


def test_growth_adds_the_densest_region_first_and_fills_the_rest_with_its_mean():
    attribution = np.zeros((10, 10), dtype=np.float32)
    attribution[:, :5] = 1.0
    attribution[0, 9] = 50.0
    masks = np.zeros((3, 10, 10), dtype=bool)
    masks[0, :, :5] = True          # 50 pixels of density 1
    masks[1, :, 3:] = True          # 70 pixels: density (20 + 50) / 70 = 1 too
    masks[2, :6, 5:] = True         # 30 pixels: fewer than 50, never added
    density, ranks = grow_regions(attribution, masks)
    # Equal densities: the first mask wins, as in PAIR.
    assert ranks[0, 0] == 1 and density[0, 0] == pytest.approx(1.0)
    # Then mask 1 adds its 50 uncovered pixels, whose sum is the 50 at (0, 9): density 1.
    assert ranks[0, 9] == 2 and density[0, 9] == pytest.approx(1.0)
    assert ranks.max() == 2 and np.isfinite(density).all()


def test_xrai_refuses_a_bad_base_attribution(resnet18):
    x = torch.zeros(1, 3, 32, 32)
    for base, words in [(np.zeros((3, 32, 32)), r"\(32, 32\) array"), (np.full((32, 32), np.nan), "NaN"),
                        ("xrai", "its own base"), ("nope", "Unknown method")]:
        with pytest.raises((ValueError, KeyError), match=words):
            explain(resnet18, x, 1, "xrai", base_attribution=base)


def test_xrai_takes_smooth_like_every_path_method(resnet18):
    """As PAIR's GetSmoothedMask: the region maps of noisy copies, averaged."""
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    smooth = {"kind": "smoothgrad", "samples": 2, "sigma": 0.1}
    exp = explain(resnet18, x, 1, "xrai", base_attribution="saliency", smooth=smooth)
    assert exp.attribution.shape == (32, 32) and np.isfinite(exp.attribution).all()
    assert exp.extras["smooth"]["samples"] == 2
