"""The sharing rules (see test_sharing.py) for XGrad-, Eigen- and Ablation-CAM, Guided IG, Blur IG and XRAI."""
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
from test_sharing import Fragile, state

# Small settings: the rules are under test here, not the maps.
OPTIONS = {"xgrad_cam": {}, "eigen_cam": {}, "ablation_cam": {"batch_size": 64}, "guided_ig": {"steps": 3},
           "blur_ig": {"steps": 3}, "xrai": {"base_attribution": "saliency"}}
GRADIENT_FREE = {"eigen_cam", "ablation_cam"}


@pytest.fixture(scope="module")
def x32():
    return randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(8))


@pytest.mark.parametrize("method", list(OPTIONS))
def test_method_leaves_model_untouched_even_without_the_guard(resnet18, x32, method):
    before = state(resnet18.model)
    x = x32.clone()
    result = _REGISTRY[method][1](resnet18, x, 4, **OPTIONS[method])
    assert state(resnet18.model) == before
    assert torch.equal(x, x32) and not x.requires_grad
    assert isinstance(result.attribution, np.ndarray) and np.isfinite(result.attribution).all()
    assert result.heatmap.shape == (32, 32) and result.heatmap.dtype == np.float32


@pytest.mark.parametrize("where", ["forward", "backward"])
def test_nothing_left_behind_when_a_method_raises(where):
    net = Fragile()
    bundle = wrap(net, target_layer=net.features, classifier=net.fc, categories=list("abc"), input_size=(8, 8))
    before = state(net)
    x = torch.randn(1, 3, 8, 8)
    net.fail = where
    raised = set()
    for method, options in OPTIONS.items():
        try:
            explain(bundle, x, 1, method, **options)
        except RuntimeError as err:
            assert "boom" in str(err)
            raised.add(method)
        assert state(net) == before, method
    assert raised == (set(OPTIONS) if where == "forward" else set(OPTIONS) - GRADIENT_FREE)


def test_threads_agree_with_sequential_runs(resnet18, lite0):
    """64 px: ResNet's layer4 map is 2 × 2 there (at 32 px its single cell leaves Eigen-CAM nothing to vary)."""
    x64 = randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(9))
    jobs = [(resnet18, x64, m, o) for m, o in OPTIONS.items() if m != "ablation_cam"] + [
        (resnet18, x64, "ablation_cam", {"layer": resnet18.model.layer3, "batch_size": 64}),
        (lite0, x64, "xgrad_cam", {}), (lite0, x64, "blur_ig", {"steps": 3})]
    sequential = [explain(b, x, 7, m, **o).attribution for b, x, m, o in jobs]
    start = threading.Barrier(len(jobs))

    def run(job):
        b, x, m, o = job
        start.wait(60)
        return explain(b, x, 7, m, **o).attribution

    with ThreadPoolExecutor(len(jobs)) as pool:
        parallel = list(pool.map(run, jobs))
    for (_, _, method, _), expected, got in zip(jobs, sequential, parallel):
        scale = np.abs(expected).max()
        assert scale > 0 and np.abs(got - expected).max() <= 1e-5 * scale, method
    assert state(resnet18.model)[0] == 0 and state(lite0.model)[0] == 0
