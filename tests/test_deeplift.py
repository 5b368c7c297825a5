"""DeepLIFT (Rescale): summation to delta on real nets, Captum on ReLU nets, max-pool rule, thread isolation."""
import threading

import numpy as np
import pytest
import torch
import torch.nn as nn
from captum.attr import DeepLift

import explainers.deeplift as deeplift_module
from explainers import explain
from explainers.baselines import make_baseline
from models import wrap
from conftest import randn


def small_input(bundle, image, side=96):
    return torch.nn.functional.interpolate(bundle.preprocess(image), size=(side, side), mode="bilinear")


def relative_delta(exp):
    f_base, f_input = exp.extras["endpoint_logits"]
    return abs(exp.delta) / abs(f_input - f_base)


@pytest.mark.parametrize("baseline", ["black", "blur"])
def test_sums_to_delta_lite0(lite0, cat_image, baseline):
    x = lite0.preprocess(cat_image)
    exp = explain(lite0, x, 281, "deeplift", baseline=baseline)
    assert relative_delta(exp) < 1e-3
    assert exp.attribution.shape == (3, 224, 224) and exp.extras["baseline"].shape == (3, 224, 224)


def test_sums_to_delta_resnet18_and_maxpool_rule_matters(resnet18, cat_image, monkeypatch):
    x = small_input(resnet18, cat_image)
    with torch.no_grad():
        top = int(resnet18.model(x).argmax())
    exp = explain(resnet18, x, top, "deeplift", baseline="black")
    assert relative_delta(exp) < 1e-3
    # the stem's 3×3/2 max-pool (overlapping windows) with the plain gradient instead of DeepLIFT's rule
    monkeypatch.setattr(deeplift_module, "_MAX_POOL", set())
    broken = explain(resnet18, x, top, "deeplift", baseline="black")
    assert relative_delta(broken) > 0.01  # 4 % on this random net; tens of percent on trained ones


def relu_net():
    torch.manual_seed(2)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, stride=2), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(24, 10), nn.ReLU(), nn.Linear(10, 3))


def test_matches_captum_on_relu_net():
    net = relu_net()
    bundle = wrap(net, categories=list("abc"), input_size=(20, 20))
    x, x_base = randn(1, 3, 20, 20), randn(1, 3, 20, 20) * 0.3
    for target in range(3):
        ours = explain(bundle, x, target, "deeplift", baseline=x_base)
        ref = DeepLift(net).attribute(x, x_base, target=target)[0].detach().cpu().numpy()
        assert np.abs(ours.attribution - ref).max() <= 1e-4 * np.abs(ref).max()
        assert relative_delta(ours) < 1e-4


@pytest.mark.parametrize("act", [nn.ReLU6, nn.SiLU, nn.Hardswish, nn.GELU, nn.Sigmoid, nn.Tanh, nn.ELU])
def test_every_nonlinearity_sums_to_delta(act):
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), act(), nn.MaxPool2d(3, 2, 1), nn.Conv2d(8, 8, 3), act(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
    bundle = wrap(net, categories=["a", "b"], input_size=(12, 12))
    x, x_base = randn(1, 3, 12, 12) * 2, randn(1, 3, 12, 12) * 0
    exp = explain(bundle, x, 1, "deeplift", baseline=x_base)
    assert relative_delta(exp) < 1e-4
    # gradient × (x − x') does not sum to the change: the rule is doing the work
    xr = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(net(xr)[0, 1], xr)
    f_base, f_input = exp.extras["endpoint_logits"]
    assert abs(float((g * x).sum()) - (f_input - f_base)) > 1e-3 * abs(f_input - f_base)


def test_baseline_equal_to_input_gives_zero(resnet18, cat_image):
    x = small_input(resnet18, cat_image, 32)
    exp = explain(resnet18, x, 3, "deeplift", baseline=x.clone())
    assert np.isfinite(exp.attribution).all() and np.abs(exp.attribution).max() == 0 and exp.delta == 0


def test_mode_is_per_thread_and_model_untouched(resnet18, cat_image):
    """Another thread forwarding the same model during a DeepLIFT call sees ordinary gradients."""
    x = small_input(resnet18, cat_image, 32)
    xr = x.clone().requires_grad_(True)
    (plain,) = torch.autograd.grad(resnet18.model(xr)[0, 3], xr)
    results, stop = [], threading.Event()

    def other():
        while not stop.is_set():
            xi = x.clone().requires_grad_(True)
            results.append(torch.autograd.grad(resnet18.model(xi)[0, 3], xi)[0])
    thread = threading.Thread(target=other)
    thread.start()
    try:
        for _ in range(3):
            explain(resnet18, x, 3, "deeplift", baseline=make_baseline(resnet18, x, "uniform", 1))
    finally:
        stop.set()
        thread.join()
    assert results and all(torch.allclose(r, plain, atol=1e-6) for r in results)
    assert not resnet18.model._forward_hooks and all(p.grad is None for p in resnet18.model.parameters())
