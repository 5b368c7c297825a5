"""SmoothGrad, SmoothGrad² and VarGrad against Captum's NoiseTunnel with the same noise."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from explainers import explain
from explainers.base import pixel_result as pixel_explanation
from explainers.smoothing import smoothed
from conftest import randn, rel_err

warnings.filterwarnings("ignore", message="Setting backward hooks")
CAPTUM_KIND = {"smoothgrad": "smoothgrad", "smoothgrad_sq": "smoothgrad_sq", "vargrad": "vargrad"}


@pytest.fixture(scope="module")
def small(resnet18):
    return resnet18, randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(7)), 9


def _noise_tunnel(captum_cls, bundle, x, target, kind, samples, stdev, seed, **kw):
    from captum.attr import NoiseTunnel

    torch.manual_seed(seed)  # NoiseTunnel draws from the global generator, CHUNK samples per draw
    tunnel = NoiseTunnel(captum_cls(bundle.model))
    return tunnel.attribute(x.clone().requires_grad_(True), nt_type=CAPTUM_KIND[kind], nt_samples=samples,
                            nt_samples_batch_size=16, stdevs=stdev, target=target, **kw)[0].detach()


@pytest.mark.parametrize("kind", ["smoothgrad", "smoothgrad_sq", "vargrad"])
def test_saliency_matches_noise_tunnel(small, kind):
    from captum.attr import Saliency

    bundle, x, target = small
    sigma, samples = 0.1, 20  # 20: one full chunk of 16 and a remainder, as Captum partitions them
    stdev = sigma * float(x.max() - x.min())
    ref = _noise_tunnel(Saliency, bundle, x, target, kind, samples, stdev, seed=3, abs=False)
    ours = explain(bundle, x, target, "saliency", smooth={"kind": kind, "samples": samples, "sigma": sigma}, seed=3)
    assert rel_err(ours.attribution, ref) < 1e-4
    assert ours.extras["smooth"]["stdev"] == pytest.approx(stdev)


@pytest.mark.parametrize("method,captum_name", [("input_x_gradient", "InputXGradient"),
                                                ("guided_backprop", "GuidedBackprop")])
def test_other_gradient_methods_match_noise_tunnel(small, method, captum_name):
    import captum.attr

    bundle, x, target = small
    stdev = 0.2 * float(x.max() - x.min())
    ref = _noise_tunnel(getattr(captum.attr, captum_name), bundle, x, target, "smoothgrad", 8, stdev, seed=11)
    ours = explain(bundle, x, target, method, smooth={"kind": "smoothgrad", "samples": 8, "sigma": 0.2}, seed=11)
    assert rel_err(ours.attribution, ref) < 1e-4


def test_generic_path_for_methods_without_a_batched_form(small):
    """IG, DeepLIFT etc. are plain functions: smoothing calls them once per noisy copy, same noise."""
    from explainers.gradients import saliency

    bundle, x, target = small
    calls = []

    def one_at_a_time(bundle, x, target, progress=None, **options):
        calls.append(x.shape[0])
        return saliency(bundle, x, target)

    smooth = {"kind": "vargrad", "samples": 18, "sigma": 0.15}
    reports = []
    generic = smoothed(one_at_a_time, bundle, x, target, smooth, progress=lambda f, s: reports.append(f), seed=5)
    batched = explain(bundle, x, target, "saliency", smooth=smooth, seed=5)
    assert calls == [1] * 18
    assert rel_err(generic.attribution, batched.attribution) < 1e-4
    assert reports == pytest.approx([(i + 1) / 18 for i in range(18)])  # per call: each may be slow
    batched_reports = []
    explain(bundle, x, target, "saliency", smooth=smooth, progress=lambda f, s: batched_reports.append(f))
    # per chunk of noisy copies, chunks sized by measurement: fewer reports than copies, rising to 1
    assert 1 <= len(batched_reports) < 18 and batched_reports == sorted(batched_reports)
    assert batched_reports[-1] == pytest.approx(1.0)


def test_seed_reproducible_and_noise_free_limit(small):
    bundle, x, target = small
    smooth = {"kind": "smoothgrad", "samples": 4, "sigma": 0.2}
    a = explain(bundle, x, target, "saliency", smooth=smooth, seed=1).attribution
    assert np.array_equal(a, explain(bundle, x, target, "saliency", smooth=smooth, seed=1).attribution)
    assert not np.array_equal(a, explain(bundle, x, target, "saliency", smooth=smooth, seed=2).attribution)
    plain = explain(bundle, x, target, "saliency").attribution
    zero_noise = explain(bundle, x, target, "saliency", smooth={"kind": "smoothgrad", "samples": 3, "sigma": 0.0})
    assert rel_err(zero_noise.attribution, plain) < 1e-5
    vargrad = explain(bundle, x, target, "saliency", smooth={"kind": "vargrad", "samples": 3, "sigma": 0.0})
    assert np.abs(vargrad.attribution).max() < 1e-6 * np.abs(plain).max() ** 2 + 1e-12


@pytest.mark.parametrize("smooth,message", [
    ({"kind": "blur", "samples": 4, "sigma": 0.1}, "Unknown smoothing kind"),
    ({"kind": "smoothgrad", "samples": 0, "sigma": 0.1}, "1..256"),
    ({"kind": "smoothgrad", "samples": 257, "sigma": 0.1}, "1..256"),
    ({"kind": "smoothgrad", "samples": 2.5, "sigma": 0.1}, "integer"),
    ({"kind": "smoothgrad", "samples": 4, "sigma": -0.1}, r"\[0, 1\]"),
    ({"kind": "smoothgrad", "samples": 4, "sigma": 1.5}, r"\[0, 1\]"),
    ({"kind": "smoothgrad", "samples": 4, "sigma": 0.1, "noise": 3}, "unknown keys"),
    ("smoothgrad", "dict"),
])
def test_bad_smooth_is_a_clear_value_error(small, smooth, message):
    bundle, x, target = small
    with pytest.raises(ValueError, match=message):
        explain(bundle, x, target, "saliency", smooth=smooth)


def test_cam_methods_refuse_smoothing(small):
    bundle, x, target = small
    with pytest.raises(ValueError, match="smooth"):
        explain(bundle, x, target, "grad_cam", smooth={"kind": "smoothgrad", "samples": 2, "sigma": 0.1})


def test_smoothing_keeps_a_method_defined_map_shape(small):
    bundle, x, target = small
    result = smoothed(lambda b, xx, t, progress=None, **o: pixel_explanation(xx[0] * 0 + 1), bundle, x, target,
                      {"kind": "smoothgrad_sq", "samples": 2, "sigma": 0.1})
    assert result.attribution.shape == (3, 32, 32) and np.allclose(result.attribution, 1.0)
