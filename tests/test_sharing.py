"""One shared bundle, many callers: explain leaves the model untouched, also when it raises, and threads agree."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from explainers import explain
from explainers.registry import _REGISTRY
from models import wrap
from conftest import randn

MINE = ["cam", "grad_cam", "grad_cam_pp", "hires_cam", "layer_cam", "score_cam", "saliency", "input_x_gradient",
        "guided_backprop", "deconvnet", "guided_grad_cam"]
HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def state(model: torch.nn.Module):
    """Everything an explainer could leave behind on a model."""
    hooks = sum(len(getattr(m, d, {})) for m in model.modules() for d in HOOK_DICTS)
    return (hooks, [m.training for m in model.modules()], [p.requires_grad for p in model.parameters()],
            [p.grad is None for p in model.parameters()], torch._C._len_torch_function_stack())


def options_for(method, bundle):
    return {"layer": bundle.model.layer1} if method == "score_cam" else {}


@pytest.fixture(scope="module")
def x64():
    return randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(8))


@pytest.mark.parametrize("method", MINE)
def test_method_leaves_model_untouched_even_without_the_guard(resnet18, x64, method):
    before = state(resnet18.model)
    x = x64.clone()
    # Call the registered function itself, bypassing explain()'s restoring guard: the method must be clean.
    result = _REGISTRY[method][1](resnet18, x, 4, **options_for(method, resnet18))
    assert state(resnet18.model) == before
    assert torch.equal(x, x64) and not x.requires_grad
    assert isinstance(result.attribution, np.ndarray) and np.isfinite(result.attribution).all()
    assert result.heatmap.shape == (64, 64) and result.heatmap.dtype == np.float32


class Exploding(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z):
        return z.clone()

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError("boom in backward")


class Fragile(torch.nn.Module):
    """Raises in forward after the target layer, or in backward, on demand."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.ReLU(inplace=True))
        self.fc = torch.nn.Linear(6, 3)
        self.fail = None

    def forward(self, x):
        h = self.features(x)
        if self.fail == "backward":  # between the target layer and the logit: every gradient passes it
            h = Exploding.apply(h)
        if self.fail == "forward":
            raise RuntimeError("boom in forward")
        return self.fc(torch.relu(h).mean(dim=(2, 3)))


@pytest.mark.parametrize("where", ["forward", "backward"])
def test_nothing_left_behind_when_a_method_raises(where):
    net = Fragile()
    bundle = wrap(net, target_layer=net.features, classifier=net.fc, categories=list("abc"), input_size=(8, 8))
    before = state(net)
    x = torch.randn(1, 3, 8, 8)
    net.fail = where
    raised = 0
    for method in MINE:
        try:
            explain(bundle, x, 1, method)
        except RuntimeError as err:
            assert "boom" in str(err)
            raised += 1
        assert state(net) == before, method
    # CAM and Score-CAM take no gradients, so only a forward failure reaches them.
    assert raised == (len(MINE) if where == "forward" else len(MINE) - 2)


def test_frozen_parameters_stay_frozen(x64):
    import torchvision

    torch.manual_seed(0)
    m = torchvision.models.resnet18(weights=None, num_classes=10).requires_grad_(False)
    bundle = wrap(m, target_layer=m.layer4, classifier=m.fc, categories=[str(i) for i in range(10)])
    for method in ("saliency", "guided_backprop"):
        assert np.abs(explain(bundle, x64, 2, method).attribution).max() > 0
    assert np.abs(explain(bundle, x64, 2, "grad_cam").extras["channel_weights"]).max() > 0
    assert not any(p.requires_grad for p in m.parameters()) and all(p.grad is None for p in m.parameters())


def test_eight_threads_agree_with_sequential_runs(resnet18, lite0, x64):
    """Different methods at once on the same two shared bundles, each thread starting together."""
    x96 = randn(1, 3, 96, 96, generator=torch.Generator().manual_seed(9))
    jobs = [
        (resnet18, x64, "guided_backprop", {}), (resnet18, x64, "saliency", {}),
        (resnet18, x64, "grad_cam", {}), (resnet18, x64, "deconvnet", {}),
        (lite0, x96, "guided_grad_cam", {}), (lite0, x96, "input_x_gradient", {}),
        (lite0, x96, "layer_cam", {}),
        (resnet18, x64, "saliency", {"smooth": {"kind": "smoothgrad", "samples": 4, "sigma": 0.1}}),
    ]
    sequential = [explain(b, x, 7, m, **o).attribution for b, x, m, o in jobs]
    start = threading.Barrier(len(jobs))

    def run(job):
        b, x, m, o = job
        start.wait(30)
        return [explain(b, x, 7, m, **o).attribution for _ in range(2)]

    with ThreadPoolExecutor(len(jobs)) as pool:
        parallel = list(pool.map(run, jobs))
    for (_, _, method, _), expected, got in zip(jobs, sequential, parallel):
        for attribution in got:
            scale = np.abs(expected).max()
            assert scale > 0 and np.abs(attribution - expected).max() <= 1e-5 * scale, method
    assert state(resnet18.model)[0] == 0 and state(lite0.model)[0] == 0
