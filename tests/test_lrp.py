"""LRP: equal to Zennit's composites (with its canonizers) on VGG-11 and ResNet-18; conservation on EfficientNet-Lite;
the shared model untouched, also when the method raises; threads agree."""
from __future__ import annotations

import copy
import threading

import numpy as np
import pytest
import torch

from conftest import randn, rel_err, to_numpy
from explainers import explain
from explainers.registry import _REGISTRY
from models import wrap
from test_sharing import Fragile, state

METHODS = ["lrp_epsilon_plus_flat", "lrp_epsilon_gamma_box"]


@pytest.fixture(scope="module")
def x64():
    return randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))


def zennit_relevance(bundle, x, target, method):
    """Zennit's own result, on a copy of the model (its canonizers edit the model they are given)."""
    from zennit.attribution import Gradient
    from zennit.composites import EpsilonGammaBox, EpsilonPlusFlat
    from zennit.torchvision import ResNetCanonizer, VGGCanonizer

    model = copy.deepcopy(bundle.model)
    canonizers = [ResNetCanonizer()] if hasattr(model, "layer4") else [VGGCanonizer()]
    if method == "lrp_epsilon_plus_flat":
        composite = EpsilonPlusFlat(canonizers=canonizers)
    else:
        low, high = bundle.normalize(torch.stack([torch.zeros(3, 1, 1), torch.ones(3, 1, 1)]).to(x))
        composite = EpsilonGammaBox(low=low[None], high=high[None], canonizers=canonizers)
    onehot = torch.nn.functional.one_hot(torch.tensor([target]), bundle.num_classes).to(x)
    with Gradient(model, composite) as attributor:
        _, relevance = attributor(x.clone(), lambda out: onehot * out)
    return to_numpy(relevance[0])


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["vgg11", "resnet18"])
@pytest.mark.parametrize("method", METHODS)
def test_equal_to_zennit(arch, method, x64, request):
    bundle = request.getfixturevalue(arch)
    if arch == "resnet18":  # BatchNorm statistics away from their initial values, so that merging them matters
        bundle = perturbed_batchnorm(bundle)
    exp = explain(bundle, x64, 7, method)
    ref = zennit_relevance(bundle, x64, 7, method)
    assert exp.attribution.shape == (3, 64, 64) and exp.heatmap.shape == (64, 64)
    assert rel_err(exp.attribution, ref) < 1e-3
    assert exp.extras["relevance_sum"] == pytest.approx(float(ref.sum()), rel=1e-3)


def perturbed_batchnorm(bundle):
    model = copy.deepcopy(bundle.model)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(0.2 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_(0.2 * torch.randn(n, generator=g))
    return wrap(model, name="resnet18-bn", device=bundle.device)


def bias_free(bundle):
    """A copy of the model whose every bias (BatchNorm shifts included) is 0: nothing can absorb relevance."""
    model = copy.deepcopy(bundle.model)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.bias.copy_(m.running_mean * m.weight / (m.running_var + m.eps).sqrt())
            elif getattr(m, "bias", None) is not None:
                m.bias.zero_()
    return wrap(model, name="lite0-bias-free", mean=bundle.mean, std=bundle.std, device=bundle.device)


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_conservation_on_efficientnet_lite(lite0, cat_image, method):
    """ReLU6, depthwise convolutions, residual sums, no Zennit canonizer: relevance is conserved layer by layer,
    so without biases Σ relevance = logit (within 1 %); with the real biases, which absorb their share, the
    pixels receive a small fraction of the logit (measured on the cat: 0.02 % for ε-+-flat, 1.6 % for ε-γ-box)."""
    x = torch.nn.functional.interpolate(lite0.preprocess(cat_image), size=(96, 96), mode="bilinear")
    free = explain(bias_free(lite0), x, 282, method)
    assert abs(free.extras["relevance_sum"] - free.extras["logit"]) <= 0.01 * abs(free.extras["logit"])
    real = explain(lite0, x, 282, method)
    assert real.extras["logit"] > 0 and 0 < real.extras["relevance_sum"] < 0.1 * real.extras["logit"]
    assert np.isfinite(real.attribution).all() and real.attribution.shape == (3, 96, 96)


@pytest.mark.parametrize("method", METHODS)
def test_model_untouched_after_success_and_failure(resnet18, x64, method):
    before = state(resnet18.model)
    _REGISTRY[method].run(resnet18, x64.clone(), 4)  # the method itself, without explain()'s restoring guard
    assert state(resnet18.model) == before
    for where in ("forward", "backward"):
        net = Fragile()
        bundle = wrap(net, target_layer=net.features, classifier=net.fc, categories=list("abc"), input_size=(8, 8))
        net.fail = where
        clean = state(net)
        with pytest.raises(RuntimeError, match="boom"):
            _REGISTRY[method].run(bundle, randn(1, 3, 8, 8), 1)
        assert state(net) == clean


@pytest.mark.parametrize("method", METHODS)
def test_threads_on_a_shared_bundle_agree(resnet18, x64, method):
    alone = explain(resnet18, x64, 2, method).attribution
    results = [None, None]

    def run(i):
        results[i] = explain(resnet18, x64, 2, method).attribution
    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r is not None and np.array_equal(r, alone) for r in results)


def test_other_threads_see_plain_gradients_meanwhile(resnet18, x64):
    xr = x64.clone().requires_grad_(True)
    (plain,) = torch.autograd.grad(resnet18.model(xr)[0, 3], xr)
    seen, stop = [], threading.Event()

    def other():
        while not stop.is_set():
            xi = x64.clone().requires_grad_(True)
            seen.append(torch.autograd.grad(resnet18.model(xi)[0, 3], xi)[0])
    thread = threading.Thread(target=other)
    thread.start()
    try:
        for _ in range(2):
            explain(resnet18, x64, 3, "lrp_epsilon_gamma_box")
    finally:
        stop.set()
        thread.join()
    assert seen and all(torch.allclose(g, plain, atol=1e-6) for g in seen)
