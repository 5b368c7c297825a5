"""Device placement: CUDA picked automatically when present, explanations computed there and equal to CPU's.

The CUDA tests run on a machine with a GPU (`make test` there) and are skipped, saying why, elsewhere.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models import default_device, load_model, wrap

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device on this machine (torch.cuda.is_available() is False)")

# Deterministic methods, one or two per family, with options small enough for a quick run.
METHODS = {
    "grad_cam": {}, "grad_cam_pp": {}, "layer_cam": {}, "cam": {},
    "saliency": {}, "input_x_gradient": {}, "guided_backprop": {},
    "integrated_gradients": {"steps": 16}, "deeplift": {},
}


def test_default_device_follows_cuda_availability():
    assert default_device().type == ("cuda" if CUDA else "cpu")
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                            torch.nn.Linear(4, 10))
    bundle = wrap(m, target_layer=m[0], classifier=m[3], input_size=(32, 32), categories=[str(i) for i in range(10)])
    assert next(bundle.model.parameters()).device.type == default_device().type
    from PIL import Image

    assert bundle.preprocess(Image.new("RGB", (40, 40))).device.type == default_device().type


@pytest.fixture(scope="module")
def lite0_pair():
    """The bundled EfficientNet-Lite0 on CUDA (the default there) and on CPU."""
    return load_model("efficientnet_lite0"), load_model("efficientnet_lite0", device="cpu")


@needs_cuda
def test_bundle_lives_on_cuda_by_default(lite0_pair, cat_image):
    gpu, _ = lite0_pair
    assert gpu.device.type == "cuda"
    assert all(p.device.type == "cuda" for p in gpu.model.parameters())
    assert gpu.preprocess(cat_image).device.type == "cuda"


@needs_cuda
@pytest.mark.parametrize("method", sorted(METHODS))
def test_explanations_on_cuda_match_cpu(lite0_pair, cat_image, method):
    from explainers import explain

    gpu, cpu = lite0_pair
    x_gpu, x_cpu = gpu.preprocess(cat_image), cpu.preprocess(cat_image)
    target = int(cpu.model(x_cpu).argmax())
    torch.cuda.reset_peak_memory_stats()
    on_gpu = explain(gpu, x_gpu, target, method=method, **METHODS[method])
    assert torch.cuda.max_memory_allocated() > 0  # the work happened on the GPU
    on_cpu = explain(cpu, x_cpu, target, method=method, **METHODS[method])
    assert all(p.device.type == "cuda" for p in gpu.model.parameters())
    assert all(h == {} for h in _hook_dicts(gpu.model))
    a, b = on_gpu.attribution, on_cpu.attribution
    assert a.shape == b.shape and np.isfinite(a).all()
    # Full float32 on both (TF32 is off, see models.bundle). What is left: cuDNN's summation order, which flips
    # a few ReLU6 units sitting on a kink, each moving its pixels' gradient. Measured on an H200: saliency 0.5 %
    # and IG-16 2.7 % of the largest attribution at the worst pixel; with TF32 on, IG was 30 % off.
    scale = float(np.abs(b).max()) or 1.0
    assert float(np.abs(a - b).max()) <= 0.1 * scale, method
    assert float(np.linalg.norm(a - b)) <= 0.02 * float(np.linalg.norm(b)), method  # the map as a whole
    if on_cpu.delta is not None:
        assert abs(on_gpu.delta - on_cpu.delta) <= 2e-3 * max(1.0, abs(on_cpu.delta))


@needs_cuda
def test_tf32_is_off_once_a_bundle_is_on_cuda(lite0_pair):
    assert lite0_pair[0].device.type == "cuda"
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32


@needs_cuda
def test_smoothgrad_and_expected_gradients_run_on_cuda(lite0_pair, cat_image):
    from explainers import explain

    gpu, _ = lite0_pair
    x = gpu.preprocess(cat_image)
    sg = explain(gpu, x, 281, method="saliency", smooth={"kind": "smoothgrad", "samples": 8, "sigma": 0.1}, seed=0)
    eg = explain(gpu, x, 281, method="expected_gradients", samples=16, seed=0)
    for exp in (sg, eg):
        assert np.isfinite(exp.attribution).all() and exp.attribution.shape == (3, 224, 224)


def _hook_dicts(model: torch.nn.Module):
    for m in model.modules():
        for name in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"):
            yield getattr(m, name, {})
