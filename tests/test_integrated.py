"""Integrated Gradients: the seed's axioms on tiny nets, Captum on identical nodes, completeness on a real photo,
the trace from the same pass, baselines, chunking and limits."""
import threading

import numpy as np
import pytest
import torch
import torch.nn as nn
from captum.attr import IntegratedGradients

from explainers import explain
from explainers.baselines import BASELINES, make_baseline
from explainers.quadrature import RULES, nodes
from models import wrap

torch.manual_seed(0)


class Scalar(nn.Module):
    """A function of the first input channel at pixel (0, 0), as a one-class classifier."""

    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, x):
        return self.f(x[:, 0, 0, 0]).unsqueeze(1)


def scalar_bundle(f):
    return wrap(Scalar(f), input_size=(1, 1), mean=(0, 0, 0), std=(1, 1, 1), categories=["f"], name="toy")


def point(v):
    x = torch.zeros(1, 3, 1, 1)
    x[0, 0, 0, 0] = v
    return x


def grad_times_input(bundle, x):
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(bundle.model(x)[0, 0], x)
    return float((g * x).sum().detach())


def test_saturation_gradient_misses_it_ig_does_not():
    net = scalar_bundle(lambda v: 1 - torch.relu(1 - v))  # f(x) = 1 − ReLU(1 − x)
    x = point(2.0)
    assert grad_times_input(net, x) == 0.0
    for rule in ("riemann_left", "gauss_legendre"):  # both place exactly half their weight below the kink at ½
        exp = explain(net, x, 0, "integrated_gradients", steps=64, rule=rule, baseline=torch.zeros_like(x))
        assert exp.attribution[0, 0, 0] == pytest.approx(1.0, abs=1e-6)
        assert exp.delta == pytest.approx(0.0, abs=1e-6)


def test_sensitivity_one_relu():
    net = scalar_bundle(torch.relu)
    x, x_base = point(-2.0), point(2.0)
    x_req = x.clone().requires_grad_(True)
    assert float(torch.autograd.grad(net.model(x_req)[0, 0], x_req)[0].abs().sum()) == 0.0
    exp = explain(net, x, 0, "integrated_gradients", steps=32, baseline=x_base)
    assert exp.attribution.sum() == pytest.approx(-2.0, abs=1e-6)  # = f(x) − f(x')
    assert exp.trace.endpoint_logits == (pytest.approx(2.0), pytest.approx(0.0))


def test_implementation_invariance():
    conv = nn.Conv2d(3, 4, 3, padding=1)
    head = nn.Linear(4, 5)
    a = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)
    # b: every channel split in two halves scaled by 3 and 1 before the ReLU (positively homogeneous), merged after
    conv_b = nn.Conv2d(3, 8, 3, padding=1)
    head_b = nn.Linear(8, 5)
    with torch.no_grad():
        conv_b.weight.copy_(torch.cat([conv.weight * 3, conv.weight]))
        conv_b.bias.copy_(torch.cat([conv.bias * 3, conv.bias]))
        head_b.weight.copy_(torch.cat([head.weight / 6, head.weight / 2], 1))
        head_b.bias.copy_(head.bias)
    b = nn.Sequential(conv_b, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head_b)
    x = torch.randn(1, 3, 12, 12)
    assert torch.allclose(a(x), b(x), atol=1e-5)
    ea = explain(wrap(a, categories=list("abcde")), x, 2, "integrated_gradients", steps=16)
    eb = explain(wrap(b, categories=list("abcde")), x, 2, "integrated_gradients", steps=16)
    np.testing.assert_allclose(ea.attribution, eb.attribution, atol=1e-5 * np.abs(ea.attribution).max())


def _input(bundle, image, side):
    return torch.nn.functional.interpolate(bundle.preprocess(image), size=(side, side), mode="bilinear")


@pytest.mark.parametrize("arch", ["lite0", "resnet18", "vgg11"])
def test_matches_captum_on_identical_nodes(arch, request, cat_image):
    bundle = request.getfixturevalue(arch)
    x = _input(bundle, cat_image, 48)
    target = 281
    captum = IntegratedGradients(bundle.model)
    # A requested batch_size is capped by the memory budget, so a new input shape is first measured on one
    # sample: measure it here, so that each run below is one chunk.
    explain(bundle, x, target, "integrated_gradients", steps=1)
    for rule, steps, baseline in [("gauss_legendre", 8, "black"), ("riemann_trapezoid", 5, "blur"),
                                  ("riemann_middle", 4, "uniform")]:
        # One chunk, as Captum's one batch: conv kernels differ by batch size in the last bit, which can flip a
        # near-tie of a random net's max-pool and move a few attributions by far more than 1e-4.
        exp = explain(bundle, x, target, "integrated_gradients", steps=steps, rule=rule, baseline=baseline,
                      batch_size=steps)
        alphas, weights = nodes(rule, steps)
        x_base = make_baseline(bundle, x, baseline, 0)
        (ref,) = captum._attribute((x,), (x_base,), target=target, n_steps=steps,
                                   step_sizes_and_alphas=(weights.tolist(), alphas.tolist()))
        ref = ref[0].detach().cpu().numpy()
        assert np.abs(exp.attribution - ref).max() <= 1e-4 * np.abs(ref).max(), (arch, rule)


@pytest.mark.slow
def test_completeness_on_real_photo_lite0(lite0, cat_image):
    """64 Gauss–Legendre nodes leave ~2 % completeness error on this photo (the integrand is jagged on ReLU6
    nets), as in Captum; 512 nodes bring it under 0.5 %."""
    x = lite0.preprocess(cat_image)
    target = lite0.predict(x, 1)[0][0]
    exp64 = explain(lite0, x, target, "integrated_gradients", steps=64, rule="gauss_legendre", baseline="black")
    f_base, f_input = exp64.trace.endpoint_logits
    change = f_input - f_base
    ref, ref_delta = IntegratedGradients(lite0.model).attribute(
        x, torch.zeros_like(x) + make_baseline(lite0, x, "black"), target=target, n_steps=64,
        method="gausslegendre", internal_batch_size=16, return_convergence_delta=True)
    # On CUDA, cuDNN picks its algorithms by batch size, and Captum's batches of 16 are not our chunks: on the
    # jagged ReLU6 integrand that moved Σ by 1.8e-4 of ΔF on an H200.
    tol = (1e-4 if x.device.type == "cpu" else 5e-4) * abs(change)
    assert exp64.attribution.sum() == pytest.approx(float(ref.sum()), abs=tol)
    assert exp64.delta == pytest.approx(float(ref_delta), abs=tol)
    error64 = exp64.trace.steps_error[64]
    assert error64 == pytest.approx(abs(exp64.delta) / abs(change), abs=1e-5)  # float32 sums, two orders
    assert 0.005 < error64 < 0.05
    exp512 = explain(lite0, x, target, "integrated_gradients", steps=512, rule="gauss_legendre", baseline="black")
    assert exp512.trace.steps_error[512] < 0.005
    assert len(exp512.trace.grad_maps) == 64 and len(exp512.trace.grad_map_alphas) == 64


def test_trace_from_the_same_pass(resnet18, cat_image):
    x = _input(resnet18, cat_image, 32)
    exp = explain(resnet18, x, 7, "integrated_gradients", steps=33, rule="riemann_trapezoid", baseline="uniform", seed=3,
                  batch_size=33)
    tr = exp.trace
    assert len(tr.alphas) == len(tr.weights) == len(tr.logits) == len(tr.probabilities) == len(tr.cumulative) == 33
    assert tr.cumulative[-1] == pytest.approx(float(exp.attribution.sum()), rel=1e-4)
    assert sorted(tr.steps_error) == [2, 3, 5, 9, 17, 33]
    f_base, f_input = tr.endpoint_logits
    assert (tr.logits[0], tr.logits[-1]) == (pytest.approx(f_base, abs=1e-5), pytest.approx(f_input, abs=1e-5))
    # logits and probabilities at a node equal a direct evaluation there
    x_base = torch.as_tensor(exp.extras["baseline"])[None].to(x.device)
    with torch.no_grad():
        out = resnet18.model(x_base + float(tr.alphas[10]) * (x - x_base))
    assert tr.logits[10] == pytest.approx(float(out[0, 7]), abs=1e-4)
    assert tr.probabilities[10] == pytest.approx(float(out.softmax(1)[0, 7]), abs=1e-6)
    # a coarser nested grid's error equals a separate run with that many steps
    exp9 = explain(resnet18, x, 7, "integrated_gradients", steps=9, rule="riemann_trapezoid", baseline="uniform", seed=3,
                   batch_size=9)
    assert tr.steps_error[9] == pytest.approx(exp9.trace.steps_error[9], rel=1e-4, abs=1e-6)
    assert tr.grad_maps.shape == (33, 32, 32) and np.array_equal(tr.grad_map_alphas, tr.alphas)
    assert np.all(tr.grad_mean_abs > 0)
    assert exp.extras["baseline"].shape == (3, 32, 32)


def tiny_cnn():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU6(), nn.MaxPool2d(3, 2, 1), nn.Conv2d(8, 8, 3),
                        nn.SiLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    return wrap(net, categories=list("abcd"), input_size=(16, 16), name="tiny")


def test_grad_maps_bounded_and_batch_size_invariant():
    bundle = tiny_cnn()
    x = torch.randn(1, 3, 16, 16)
    seen = []
    exp = explain(bundle, x, 1, "integrated_gradients", steps=100, progress=lambda f, s: seen.append(f))
    assert exp.trace.grad_maps.shape == (64, 16, 16) and exp.trace.grad_map_alphas[[0, -1]].tolist() == [
        exp.trace.alphas[0], exp.trace.alphas[-1]]
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) == len(exp.extras["chunk_sizes"])
    fixed = explain(bundle, x, 1, "integrated_gradients", steps=100, batch_size=7)
    assert fixed.extras["chunk_sizes"] == [7] * 14 + [2]
    np.testing.assert_allclose(fixed.attribution, exp.attribution, atol=1e-5 * np.abs(exp.attribution).max())


@pytest.mark.parametrize("kind", BASELINES)
def test_named_baselines(kind, resnet18, cat_image):
    x = _input(resnet18, cat_image, 32)
    b = make_baseline(resnet18, x, kind, seed=1)
    pixels = resnet18.denormalize(b)
    assert b.shape == x.shape and pixels.min() >= -1e-6 and pixels.max() <= 1 + 1e-6
    assert torch.equal(b, make_baseline(resnet18, x, kind, seed=1))
    expected = {"black": 0.0, "white": 1.0}.get(kind)
    if expected is not None:
        assert torch.allclose(pixels, torch.full_like(pixels, expected), atol=1e-6)
    if kind == "mean":
        assert torch.allclose(pixels[0, :, 0, 0], torch.tensor([0.485, 0.456, 0.406], device=pixels.device), atol=1e-6)
    if kind in ("uniform", "gaussian"):
        assert not torch.equal(b, make_baseline(resnet18, x, kind, seed=2))
    if kind == "blur":
        image = resnet18.denormalize(x).clamp(0, 1)
        tv = lambda t: (t[..., 1:, :] - t[..., :-1, :]).abs().mean()  # noqa: E731
        assert tv(pixels) < 0.5 * tv(image)
        assert torch.allclose(pixels.mean((2, 3)), image.mean((2, 3)), atol=0.03)


def test_limits_and_bad_input(resnet18):
    x = torch.zeros(1, 3, 32, 32)
    for bad in (dict(steps=0), dict(steps=1025), dict(rule="simpson"), dict(baseline="grey"),
                dict(baseline=torch.zeros(1, 3, 8, 8)), dict(batch_size=0), dict(rule="riemann_trapezoid", steps=1)):
        with pytest.raises(ValueError):
            explain(resnet18, x, 0, "integrated_gradients", **bad)


def test_threads_share_one_bundle(resnet18, cat_image):
    x = _input(resnet18, cat_image, 32)
    solo = explain(resnet18, x, 5, "integrated_gradients", steps=8).attribution
    results = [None] * 3

    def run(i):
        results[i] = explain(resnet18, x, 5, "integrated_gradients", steps=8).attribution
    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_allclose(r, solo, atol=1e-5 * np.abs(solo).max())
    assert not resnet18.model._forward_hooks and all(p.grad is None for p in resnet18.model.parameters())


def test_endpoints_folded_into_the_first_chunk_give_the_same_result(monkeypatch):
    """On accelerators F(x') and F(x) ride in the first chunk; forced on the CPU here, nothing may change."""
    import explainers.integrated as integrated

    bundle = tiny_cnn()
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    separate = explain(bundle, x, 2, "integrated_gradients", steps=12, batch_size=5)
    forwards = []
    handle = bundle.model.register_forward_hook(lambda m, i, o: forwards.append(i[0].shape[0]))
    try:
        monkeypatch.setattr(integrated, "FOLD_ENDPOINTS_ON", frozenset({x.device.type, "cuda"}))
        folded = explain(bundle, x, 2, "integrated_gradients", steps=12, batch_size=5)
    finally:
        handle.remove()
    assert forwards == [7, 5, 2]  # 5 nodes + x' + x, then the other chunks; no separate endpoint forward
    assert folded.trace.endpoint_logits == pytest.approx(separate.trace.endpoint_logits, abs=1e-5)
    np.testing.assert_allclose(folded.attribution, separate.attribution, atol=1e-6 * np.abs(separate.attribution).max())
    assert folded.delta == pytest.approx(separate.delta, abs=1e-5)
    np.testing.assert_allclose(folded.trace.logits, separate.trace.logits, atol=1e-5)
