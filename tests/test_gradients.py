"""Saliency and input × gradient against Captum on three architectures."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from explainers import explain
from conftest import randn, rel_err


@pytest.fixture(scope="module")
def cases(lite0, resnet18, vgg11, cat_image):
    g = torch.Generator().manual_seed(2)
    return {
        "lite0": (lite0, F.interpolate(lite0.preprocess(cat_image), size=(128, 128), mode="area"), 285),
        "resnet18": (resnet18, randn(1, 3, 64, 64, generator=g), 11),
        "vgg11": (vgg11, randn(1, 3, 64, 64, generator=g), 11),
    }


@pytest.mark.parametrize("arch", ["lite0", "resnet18", "vgg11"])
def test_saliency_is_captums_signed_gradient(cases, arch):
    from captum.attr import Saliency

    bundle, x, target = cases[arch]
    ref = Saliency(bundle.model).attribute(x.clone().requires_grad_(True), target=target, abs=False)[0].detach()
    ours = explain(bundle, x, target, "saliency")
    assert rel_err(ours.attribution, ref) < 1e-4
    assert ours.attribution.min() < 0 < ours.attribution.max()  # signed: no abs taken
    assert np.allclose(ours.heatmap, ours.attribution.sum(0), atol=1e-6)


@pytest.mark.parametrize("arch", ["lite0", "resnet18", "vgg11"])
def test_input_x_gradient_matches_captum(cases, arch):
    from captum.attr import InputXGradient

    bundle, x, target = cases[arch]
    ref = InputXGradient(bundle.model).attribute(x.clone().requires_grad_(True), target=target)[0].detach()
    ours = explain(bundle, x, target, "input_x_gradient")
    assert rel_err(ours.attribution, ref) < 1e-4
    assert ours.attribution.dtype == np.float32 and ours.attribution.shape == tuple(x.shape[1:])


def test_batched_form_equals_one_at_a_time(cases):
    from explainers.gradients import saliency

    bundle, x, target = cases["resnet18"]
    xs = torch.cat([x, x.flip(-1), 0.5 * x])
    batch = saliency.batched(bundle, xs, target)
    for i in range(3):
        single = explain(bundle, xs[i:i + 1], target, "saliency").attribution
        assert rel_err(batch[i], single) < 1e-5
