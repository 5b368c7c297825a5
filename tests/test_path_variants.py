"""Guided IG and Blur IG against PAIR's `saliency` package (the reference its users trust), on identical inputs:
the same model gradients are fed to PAIR's algorithm and to ours."""
from __future__ import annotations

import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from explainers import explain
from explainers.blur_ig import gaussian_blur
from explainers.gradients import input_gradients
from conftest import randn, rel_err

ESPRESSO = 967


class NumpyWithOldQuantile(types.ModuleType):
    """numpy as PAIR 0.2.1 expects it: `np.quantile(..., interpolation=)` was renamed `method=` (numpy ≥ 2)."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def quantile(a, q, interpolation="linear", **kw):
        return np.quantile(a, q, method=interpolation, **kw)


@pytest.fixture(scope="module")
def pair(request):
    import saliency.core as core
    import saliency.core.guided_ig

    patched = pytest.MonkeyPatch()
    patched.setattr(saliency.core.guided_ig, "np", NumpyWithOldQuantile("numpy"))
    request.addfinalizer(patched.undo)
    return core


@pytest.fixture(scope="module")
def cases(lite0, resnet18, two_objects_image):
    """Small inputs keep PAIR's one-gradient-at-a-time loops fast: a real photo at 64 px for lite0, noise for ResNet."""
    photo = F.interpolate(lite0.preprocess(two_objects_image), size=(64, 64), mode="bilinear", antialias=True)
    return {"lite0": (lite0, photo, ESPRESSO),
            "resnet18": (resnet18, randn(1, 3, 48, 48, generator=torch.Generator().manual_seed(4)), 7)}


def model_function(pair, bundle, target, channels_last=False):
    """PAIR's call_model_function: input gradients of the target logit for a numpy batch (fed as float32)."""
    def call(batch, call_model_args=None, expected_keys=None):
        xs = torch.from_numpy(np.asarray(batch).astype(np.float32)).to(bundle.device)
        if channels_last:
            xs = xs.permute(0, 3, 1, 2)
        grads = input_gradients(bundle, xs, target)
        grads = grads.permute(0, 2, 3, 1) if channels_last else grads
        return {pair.INPUT_OUTPUT_GRADIENTS: grads.cpu().numpy()}
    return call


@pytest.mark.parametrize("arch", ["lite0", "resnet18"])
@pytest.mark.parametrize("steps, max_dist", [(8, 0.02), (8, 1.0)])
def test_guided_ig_matches_pair(pair, cases, arch, steps, max_dist):
    bundle, x, target = cases[arch]
    reports = []
    ours = explain(bundle, x, target, "guided_ig", steps=steps, max_dist=max_dist, baseline="black",
                   progress=lambda f, s: reports.append(f))
    ref = pair.GuidedIG().GetMask(x[0].cpu().numpy(), model_function(pair, bundle, target),
                                  x_baseline=ours.extras["baseline"], x_steps=steps, fraction=0.25, max_dist=max_dist)
    assert np.abs(ref).max() > 0
    assert rel_err(ours.attribution, ref) < 1e-3
    assert ours.attribution.shape == (3, *x.shape[-2:]) and ours.delta is None
    assert len(reports) == steps and reports[-1] == pytest.approx(1.0)


def test_guided_ig_without_deviation_is_ig_on_the_straight_line(cases):
    """max_dist = 0 pins every feature to α = k/steps: IG on the straight path, with the gradient taken at the
    start of each step (the left Riemann rule on the same nodes)."""
    bundle, x, target = cases["resnet18"]
    ours = explain(bundle, x, target, "guided_ig", steps=8, max_dist=0.0, baseline="black")
    ig = explain(bundle, x, target, "integrated_gradients", steps=8, rule="riemann_left", baseline="black")
    assert rel_err(ours.attribution, ig.attribution) < 1e-4


@pytest.mark.parametrize("arch", ["lite0", "resnet18"])
def test_blur_ig_matches_pair(pair, cases, arch):
    bundle, x, target = cases[arch]
    ours = explain(bundle, x, target, "blur_ig", steps=12, max_sigma=20.0, grad_step=0.01, batch_size=5)
    ref = pair.BlurIG().GetMask(x[0].permute(1, 2, 0).cpu().numpy(), model_function(pair, bundle, target, True),
                                max_sigma=20.0, steps=12, grad_step=0.01, batch_size=5)
    ref = ref.transpose(2, 0, 1)
    assert np.abs(ref).max() > 0
    assert rel_err(ours.attribution, ref) < 1e-2
    chunks = ours.extras["chunk_sizes"]  # the first row is measured alone, then chunks of at most batch_size
    assert sum(chunks) == 12 and max(chunks) == 5


def test_blur_is_scipys_gaussian_filter_with_zero_padding():
    from scipy import ndimage

    image = torch.rand(1, 3, 20, 17, generator=torch.Generator().manual_seed(0))
    sigmas = [0.0, 0.01, 0.7, 3.0, 30.0]  # 0.01: radius 0 (identity); 30: a kernel wider than the image
    ours = gaussian_blur(image, sigmas)
    for s, blurred in zip(sigmas, ours):
        ref = ndimage.gaussian_filter(image[0].double().numpy(), sigma=[0, s, s], mode="constant")
        assert np.abs(blurred.numpy() - ref).max() < 1e-12, s


def test_path_variants_refuse_bad_options(cases):
    bundle, x, target = cases["resnet18"]
    for method, options, words in [("guided_ig", {"steps": 0}, "steps"), ("guided_ig", {"max_dist": 1.5}, "max_dist"),
                                   ("guided_ig", {"fraction": 0}, "fraction"), ("guided_ig", {"baseline": "x"}, "baseline"),
                                   ("blur_ig", {"max_sigma": -1}, "max_sigma"), ("blur_ig", {"grad_step": 0}, "grad_step"),
                                   ("blur_ig", {"steps": 2.5}, "steps")]:
        with pytest.raises(ValueError, match=words):
            explain(bundle, x, target, method, **options)
