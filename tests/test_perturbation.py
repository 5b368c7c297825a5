"""Perturbation methods: occlusion equal to Captum's; RISE seeded and equal to its formula mask by mask; Kernel SHAP
equal to Shapley values by enumeration (exactly when it enumerates, within 5 % when it samples), efficient, and
close to Captum's KernelShap; all leave the shared model untouched and agree across threads."""
from __future__ import annotations

import itertools
import math
import threading

import numpy as np
import pytest
import torch

from conftest import randn, rel_err, to_numpy
from explainers import explain
from explainers.baselines import make_baseline
from explainers.perturbation import forward_chunk, rise_masks
from explainers.registry import _REGISTRY
from models import wrap
from test_sharing import Fragile, state

ARCHS = ["resnet18", "vgg11"]
FAST = {"occlusion": dict(window=16, stride=12), "rise": dict(masks=40, cells=4),
        "kernel_shap": dict(segments=8, samples=40)}
ON_8PX = {"occlusion": dict(window=4, stride=4), "rise": dict(masks=4, cells=2), "kernel_shap": dict(segments=2, samples=4)}


@pytest.fixture(scope="module")
def x64():
    return randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(11))


def grid_segments(size=64, rows=3, cols=3, players=7) -> np.ndarray:
    """A fixed (H, W) map of `players` rectangular segments (the 3 × 3 grid with its last cells merged)."""
    r, c = np.arange(size)[:, None] * rows // size, np.arange(size)[None, :] * cols // size
    return np.minimum(r * cols + c, players - 1)


def logit(bundle, x, target) -> float:
    with torch.no_grad():
        return float(bundle.model(x)[0, target])


# ---------------------------------------------------------------- occlusion

@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("baseline", ["black", "mean", "tensor"])
def test_occlusion_equals_captum(arch, baseline, x64, request):
    from captum.attr import Occlusion

    bundle = request.getfixturevalue(arch)
    if baseline == "tensor":
        baseline = randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    base = make_baseline(bundle, x64, baseline)
    exp = explain(bundle, x64, 5, "occlusion", window=16, stride=12, baseline=baseline)
    # Captum batched as ours: float32 logits of a random VGG differ by batch size at ~1e-5 of the drops
    ref = Occlusion(bundle.model).attribute(x64, sliding_window_shapes=(3, 16, 16), strides=(3, 12, 12),
                                            baselines=base, target=5, perturbations_per_eval=forward_chunk(x64.device))
    assert exp.attribution.shape == (3, 64, 64) and exp.extras["windows"] == 25
    assert rel_err(exp.attribution, ref[0]) < 1e-5


def test_occlusion_refuses_a_stride_past_the_window(resnet18, x64):
    with pytest.raises(ValueError, match="stride"):
        explain(resnet18, x64, 1, "occlusion", window=8, stride=9)


# ---------------------------------------------------------------- RISE

@pytest.mark.parametrize("arch", ARCHS)
def test_rise_is_its_formula_mask_by_mask_and_seeded(arch, x64, request):
    bundle = request.getfixturevalue(arch)
    exp = explain(bundle, x64, 9, "rise", masks=24, cells=5, p=0.4, seed=3)
    masks = rise_masks((64, 64), 24, 5, 0.4, 3)(0, 24).to(x64.device)
    expected = torch.zeros(64, 64, dtype=torch.float64, device=x64.device)
    with torch.no_grad():
        for m in masks:  # one forward per mask: no chunking to get wrong
            expected += float(torch.softmax(bundle.model(x64 * m), 1)[0, 9]) * m[0].double()
    assert rel_err(exp.attribution, expected / (24 * 0.4)) < 1e-5
    assert masks.min() >= 0 and masks.max() <= 1 and exp.attribution.shape == (64, 64)
    again = explain(bundle, x64, 9, "rise", masks=24, cells=5, p=0.4, seed=3).attribution
    other = explain(bundle, x64, 9, "rise", masks=24, cells=5, p=0.4, seed=4).attribution
    assert np.array_equal(again, exp.attribution) and not np.array_equal(other, exp.attribution)


class PatchScore(torch.nn.Module):
    """Class 0's logit rises steeply with the mean of a 16 × 16 patch of channel 0: only the patch matters."""

    def forward(self, x):
        patch = 20 * (x[:, 0, 8:24, 8:24].mean((1, 2)) - 0.5)
        return torch.stack([patch, torch.zeros_like(patch)], 1)


def test_rise_finds_the_only_region_that_matters():
    bundle = wrap(PatchScore(), categories=["patch", "other"], input_size=(48, 48))
    exp = explain(bundle, torch.ones(1, 3, 48, 48, device=bundle.device), 0, "rise", masks=400, cells=6)
    inside = np.zeros((48, 48), bool)
    inside[8:24, 8:24] = True
    a = exp.attribution
    assert a[inside].mean() > a[~inside].mean() + 0.05 and inside[np.unravel_index(a.argmax(), a.shape)]


# ---------------------------------------------------------------- Kernel SHAP

def shapley_by_enumeration(bundle, x, base, target, segments) -> np.ndarray:
    """φ_i = Σ_S |S|!(M−|S|−1)!/M! (v(S ∪ i) − v(S)) over all coalitions S of the other segments."""
    players = int(segments.max()) + 1
    seg = torch.as_tensor(segments, device=x.device)
    value = {}
    for size in range(players + 1):
        for s in itertools.combinations(range(players), size):
            keep = torch.isin(seg, torch.tensor(s, dtype=seg.dtype, device=x.device)).to(x.dtype)
            value[s] = logit(bundle, x * keep + base * (1 - keep), target)
    phi = np.zeros(players)
    for i in range(players):
        for s, v in value.items():
            if i not in s:
                with_i = tuple(sorted(s + (i,)))
                phi[i] += math.factorial(len(s)) * math.factorial(players - len(s) - 1) / math.factorial(players) \
                    * (value[with_i] - v)
    return phi


@pytest.mark.parametrize("arch", ARCHS)
def test_kernel_shap_equals_enumerated_shapley_values(arch, x64, request):
    bundle = request.getfixturevalue(arch)
    segments = grid_segments()
    base = make_baseline(bundle, x64, "mean")
    exact = shapley_by_enumeration(bundle, x64, base, 6, segments)
    full = explain(bundle, x64, 6, "kernel_shap", segments=segments, samples=128, baseline="mean")
    assert full.extras["exact"] and rel_err(full.extras["shapley_values"], exact) < 1e-4
    sampled = explain(bundle, x64, 6, "kernel_shap", segments=segments, samples=100, baseline="mean", seed=1)
    assert not sampled.extras["exact"] and rel_err(sampled.extras["shapley_values"], exact) < 0.05
    for exp in (full, sampled):  # each segment's pixels carry its value; the values add up to F(x) − F(x′)
        per_segment = [exp.attribution[:, segments == s].sum() for s in range(7)]
        assert np.allclose(per_segment, exp.extras["shapley_values"], rtol=1e-4, atol=1e-6)
        change = logit(bundle, x64, 6) - logit(bundle, base, 6)
        assert abs(exp.delta) <= 1e-5 * max(1.0, abs(change))
        assert exp.attribution.sum(dtype=np.float64) == pytest.approx(change, rel=1e-5, abs=1e-6)


def test_kernel_shap_close_to_captum_with_the_same_feature_mask(x64):
    from captum.attr import KernelShap

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 5, stride=4), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3),
                              torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 4))
    bundle = wrap(net, categories=list("abcd"), input_size=(64, 64))
    segments = grid_segments()
    ours = explain(bundle, x64, 2, "kernel_shap", segments=segments, samples=128).extras["shapley_values"]
    torch.manual_seed(0)
    mask = torch.as_tensor(segments, device=x64.device)[None, None].expand(1, 3, 64, 64)
    ref = KernelShap(bundle.model).attribute(x64, baselines=make_baseline(bundle, x64, "black"), target=2,
                                            feature_mask=mask, n_samples=600, perturbations_per_eval=64)
    theirs = np.array([to_numpy(ref[0])[0][segments == s].mean() for s in range(7)])
    # Captum gives every pixel of a segment the segment's whole value; its sampling leaves a few % of noise.
    assert rel_err(theirs, ours) < 0.1 and np.corrcoef(theirs, ours)[0, 1] > 0.98


def test_kernel_shap_on_slic_superpixels(resnet18, cat_image):
    x = resnet18.preprocess(cat_image)
    x = torch.nn.functional.interpolate(x, size=(64, 64), mode="bilinear")
    exp = explain(resnet18, x, 281, "kernel_shap", segments=12, samples=64)
    seg = exp.extras["segments"]
    assert seg.shape == (64, 64) and np.issubdtype(seg.dtype, np.integer) and seg.min() == 0
    assert 4 <= seg.max() + 1 <= 30 and len(exp.extras["shapley_values"]) == seg.max() + 1
    assert abs(exp.delta) < 1e-4


# ---------------------------------------------------------------- sharing

@pytest.mark.parametrize("method", list(FAST))
def test_model_untouched_after_success_and_failure(resnet18, x64, method):
    before = state(resnet18.model)
    _REGISTRY[method].run(resnet18, x64.clone(), 4, **FAST[method])  # without explain()'s restoring guard
    assert state(resnet18.model) == before
    net = Fragile()
    bundle = wrap(net, target_layer=net.features, classifier=net.fc, categories=list("abc"), input_size=(8, 8))
    net.fail = "forward"
    clean = state(net)
    with pytest.raises(RuntimeError, match="boom"):
        _REGISTRY[method].run(bundle, randn(1, 3, 8, 8), 1, **ON_8PX[method])
    assert state(net) == clean


@pytest.mark.parametrize("method", list(FAST))
def test_threads_on_a_shared_bundle_agree(resnet18, x64, method):
    alone = explain(resnet18, x64, 2, method, **FAST[method]).attribution
    results = [None, None]

    def run(i):
        results[i] = explain(resnet18, x64, 2, method, **FAST[method]).attribution
    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r is not None and np.array_equal(r, alone) for r in results)
