"""The CAM family against pytorch-grad-cam, Captum's LayerGradCam and the formulas written out."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from explainers import NotApplicable, explain, normalize_map
from explainers.cam import activations_and_gradients
from conftest import randn, rel_err

ESPRESSO, EGYPTIAN_CAT = 967, 285
PGC_METHODS = {"grad_cam": "GradCAM", "grad_cam_pp": "GradCAMPlusPlus", "hires_cam": "HiResCAM", "layer_cam": "LayerCAM",
               "xgrad_cam": "XGradCAM", "eigen_cam": "EigenCAM"}
# One forward per channel: checked on smaller layers (test_ablation_cam_matches_pytorch_grad_cam).
PGC_SLOW_METHODS = {"ablation_cam": "AblationCAM"}


@pytest.fixture(scope="module")
def cases(lite0, resnet18, vgg11, two_objects_image):
    """(bundle, input, target) on the three architectures: a real image for lite0, seeded noise for the others."""
    g = torch.Generator().manual_seed(1)
    return {
        "lite0": (lite0, lite0.preprocess(two_objects_image), ESPRESSO),
        "resnet18": (resnet18, randn(1, 3, 96, 96, generator=g), 7),
        "vgg11": (vgg11, randn(1, 3, 64, 64, generator=g), 7),
    }


def _pytorch_grad_cam(name, bundle, x, target, layer=None):
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cls = getattr(pytorch_grad_cam, {**PGC_METHODS, **PGC_SLOW_METHODS}[name])
    try:
        with cls(model=bundle.model, target_layers=[layer or bundle.target_layer]) as reference:
            return reference(input_tensor=x.clone(), targets=[ClassifierOutputTarget(target)])[0]
    finally:
        for p in bundle.model.parameters():  # its loss.backward() fills parameter .grad
            p.grad = None


@pytest.mark.parametrize("arch", ["lite0", "resnet18", "vgg11"])
@pytest.mark.parametrize("method", list(PGC_METHODS))
def test_matches_pytorch_grad_cam(cases, arch, method):
    bundle, x, target = cases[arch]
    # pytorch-grad-cam adds 1e-6 to Grad-CAM++'s α denominator; ours defaults to the paper's 0 (see cam.py).
    options = {"eps": 1e-6} if method == "grad_cam_pp" else {}
    ours = explain(bundle, x, target, method, **options)
    ref = _pytorch_grad_cam(method, bundle, x, target)
    assert ref.max() > 0.5, "reference map is empty: the comparison would prove nothing"
    # The reference upsamples and then min-max normalises: do the same to ours.
    assert rel_err(normalize_map(ours.heatmap), ref) < 1e-4
    assert ours.attribution.shape == tuple(activations_and_gradients(bundle, x, target)[0].shape[-2:])
    assert all(p.grad is None for p in bundle.model.parameters())


def test_grad_cam_pp_eps_zero_is_the_paper_formula(cases):
    bundle, x, target = cases["lite0"]
    A, g, _ = (t[0].double() for t in activations_and_gradients(bundle, x, target))
    alpha = g**2 / (2 * g**2 + A.sum(dim=(1, 2), keepdim=True) * g**3)
    alpha = torch.nan_to_num(alpha)  # 0/0 where g == 0
    weights = (alpha * g.clamp(min=0)).sum(dim=(1, 2))
    expected = torch.relu((weights[:, None, None] * A).sum(0))
    assert rel_err(explain(bundle, x, target, "grad_cam_pp").attribution, expected) < 1e-4


@pytest.mark.parametrize("arch", ["lite0", "resnet18", "vgg11"])
def test_grad_cam_matches_captum_layer_grad_cam(cases, arch):
    from captum.attr import LayerGradCam

    bundle, x, target = cases[arch]
    ref = LayerGradCam(bundle.model, bundle.target_layer).attribute(x.clone(), target=target, relu_attributions=True)
    ours = explain(bundle, x, target, "grad_cam")
    assert float(ref.detach().abs().max()) > 0
    assert rel_err(ours.attribution, ref[0, 0].detach()) < 1e-4


@pytest.mark.parametrize("arch", ["lite0", "resnet18"])
def test_cam_is_classifier_weights_times_features(cases, arch):
    bundle, x, target = cases[arch]
    with torch.no_grad():
        features = {}
        handle = bundle.target_layer.register_forward_hook(lambda m, i, o: features.setdefault("A", o.clone()))
        try:
            logits = bundle.model(x)
        finally:
            handle.remove()
    A = features["A"][0].double()
    w = bundle.classifier.weight[target].detach().double()
    expected = (w[:, None, None] * A).sum(0)
    ours = explain(bundle, x, target, "cam")
    assert rel_err(ours.attribution, expected) < 1e-4
    # GAP → Linear: the map's mean plus the bias is the logit (the whole point of CAM).
    logit = ours.attribution.astype(np.float64).mean() + float(bundle.classifier.bias[target])
    assert abs(logit - float(logits[0, target])) < 1e-3 * max(1.0, abs(float(logits[0, target])))


def test_cam_refuses_without_linear_head_and_says_why(cases):
    bundle, x, target = cases["vgg11"]
    with pytest.raises(NotApplicable, match="global-average-pool"):
        explain(bundle, x, target, "cam")


def test_cam_applies_pooled_activation_like_densenet():
    """A head that pools F.relu(features) (as DenseNet does): CAM must weigh relu(A), not A."""
    from models import wrap

    class ReluPooledHead(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.features = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.fc = torch.nn.Linear(8, 5)

        def forward(self, x):
            return self.fc(F.relu(self.features(x)).mean(dim=(2, 3)))

    torch.manual_seed(0)
    net = ReluPooledHead()
    bundle = wrap(net, target_layer=net.features, classifier=net.fc, categories=[str(i) for i in range(5)],
                  input_size=(16, 16), pooled_activation=F.relu)
    x = randn(1, 3, 16, 16)
    with torch.no_grad():
        A = F.relu(net.features(x))[0]
        expected = (net.fc.weight[2][:, None, None] * A).sum(0)
        logit = net(x)[0, 2]
    ours = explain(bundle, x, 2, "cam")
    assert rel_err(ours.attribution, expected) < 1e-5
    assert abs(ours.attribution.mean() + float(net.fc.bias[2]) - float(logit)) < 1e-4


def test_layer_option_overrides_target_layer(cases):
    bundle, x, target = cases["resnet18"]
    at_layer3 = explain(bundle, x, target, "grad_cam", layer=bundle.model.layer3)
    assert at_layer3.attribution.shape == (6, 6)  # 96 px / 16
    assert explain(bundle, x, target, "grad_cam").attribution.shape == (3, 3)
    assert at_layer3.heatmap.shape == (96, 96)
    with pytest.raises(ValueError, match="own modules"):
        explain(bundle, x, target, "grad_cam", layer=torch.nn.ReLU())


class TinyCNN(torch.nn.Module):
    """Small enough that Score-CAM's one-forward-per-channel reference loop costs nothing."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(inplace=True),
                                            torch.nn.MaxPool2d(2), torch.nn.Conv2d(8, 24, 3, padding=1),
                                            torch.nn.ReLU(inplace=True))
        self.fc = torch.nn.Linear(24, 10)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


def test_score_cam_matches_formula_and_reports_progress():
    from models import wrap

    torch.manual_seed(3)
    net = TinyCNN()
    bundle = wrap(net, target_layer=net.features, classifier=net.fc, categories=[str(i) for i in range(10)],
                  input_size=(32, 32))
    x, target = randn(1, 3, 32, 32), 4
    with torch.no_grad():
        A = net.features(x)[0]
        weights = torch.zeros(A.shape[0], device=A.device)
        for k in range(A.shape[0]):
            up = F.interpolate(A[k][None, None], size=(32, 32), mode="bilinear", align_corners=False)[0, 0]
            if up.max() > up.min():
                mask = (up - up.min()) / (up.max() - up.min())
                weights[k] = torch.softmax(net(x * mask), dim=1)[0, target]
        expected = torch.relu((weights[:, None, None] * A).sum(0))
    assert (weights > 0).sum() >= 10
    reports = []
    ours = explain(bundle, x, target, "score_cam", batch_size=5, progress=lambda frac, stage: reports.append(frac))
    assert rel_err(ours.attribution, expected) < 1e-4
    assert len(reports) >= 2 and reports[-1] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(reports, reports[1:]))
    with pytest.raises(ValueError, match="batch_size"):
        explain(bundle, x, target, "score_cam", batch_size=0)


def test_grad_cam_is_class_discriminative(lite0, two_objects_image, artifacts_dir):
    """Cat on the left half, espresso on the right: each class's Grad-CAM must peak on its own half."""
    x = lite0.preprocess(two_objects_image)
    halves = {}
    for name, target in [("espresso", ESPRESSO), ("cat", EGYPTIAN_CAT)]:
        heat = explain(lite0, x, target, "grad_cam").heatmap
        w = heat.shape[1]
        peak_col = np.unravel_index(np.argmax(heat), heat.shape)[1]
        halves[name] = ("left" if peak_col < w // 2 else "right", heat[:, : w // 2].sum(), heat[:, w // 2:].sum())
    assert halves["cat"][0] == "left" and halves["cat"][1] > halves["cat"][2]
    assert halves["espresso"][0] == "right" and halves["espresso"][2] > halves["espresso"][1]


def test_cam_family_rejects_bad_layers():
    from models import wrap

    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
    bundle = wrap(net, target_layer=None, categories=list("abcd"), input_size=(8, 8))
    x = randn(1, 3, 8, 8)
    with pytest.raises(NotApplicable, match="layer"):
        explain(bundle, x, 1, "grad_cam")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(NotApplicable, match=r"\(N, C, h, w\)"):
            explain(bundle, x, 1, "grad_cam", layer=net[1])


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["lite0", "resnet18"])
def test_ablation_cam_matches_pytorch_grad_cam(lite0, resnet18, two_objects_image, arch):
    """One forward per channel, so on a small input at a stride-16 layer with few channels (after a ReLU/ReLU6,
    where pytorch-grad-cam ablates to 0): lite0's 240-channel block (96 px), ResNet's 256-channel layer3 (64 px)."""
    if arch == "lite0":
        bundle, target = lite0, ESPRESSO
        x = F.interpolate(lite0.preprocess(two_objects_image), size=(96, 96), mode="bilinear", antialias=True)
        layer = lite0.model.blocks[3][0].bn2
    else:
        bundle, target, layer = resnet18, 7, resnet18.model.layer3
        x = randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    ours = explain(bundle, x, target, "ablation_cam", layer=layer)
    ref = _pytorch_grad_cam("ablation_cam", bundle, x, target, layer=layer)
    assert ours.attribution.shape == (x.shape[-2] // 16, x.shape[-1] // 16) and ref.max() > 0.5
    assert rel_err(normalize_map(ours.heatmap), ref) < 1e-4
    assert ours.extras["forwards"] <= 1 + activations_and_gradients(bundle, x, target, layer)[0].shape[1]


def test_ablation_cam_is_the_relative_logit_drop_and_skips_channels_that_are_off():
    from models import wrap

    torch.manual_seed(5)
    net = TinyCNN()
    bundle = wrap(net, target_layer=net.features, classifier=net.fc, categories=[str(i) for i in range(10)],
                  input_size=(32, 32))
    x, target = randn(1, 3, 32, 32), 3
    with torch.no_grad():
        A = net.features(x)[0]
        logit = net(x)[0, target]
        # GAP → Linear after the layer: switching channel c off changes the logit by W_c · mean(A_c).
        drop = net.fc.weight[target] * A.mean(dim=(1, 2))
        expected = torch.relu(((drop / logit)[:, None, None] * A).sum(0))
    off = int((A.flatten(1).amax(dim=1) == 0).sum())
    assert off > 0, "the test needs channels that are already off"
    reports = []
    ours = explain(bundle, x, target, "ablation_cam", batch_size=7, progress=lambda f, s: reports.append(f))
    assert rel_err(ours.attribution, expected) < 1e-4
    assert ours.extras["forwards"] == 1 + A.shape[0] - off
    assert reports[-1] == pytest.approx(1.0) and len(reports) >= 2


def test_eigen_cam_is_class_agnostic_and_xgrad_cam_is_its_formula(cases):
    bundle, x, target = cases["resnet18"]
    assert np.array_equal(explain(bundle, x, 1, "eigen_cam").attribution, explain(bundle, x, 2, "eigen_cam").attribution)
    A, g, _ = (t[0].double() for t in activations_and_gradients(bundle, x, target))
    weights = (g * A).sum(dim=(1, 2)) / (A.sum(dim=(1, 2)) + 1e-7)
    expected = torch.relu((weights[:, None, None] * A).sum(0))
    assert rel_err(explain(bundle, x, target, "xgrad_cam").attribution, expected) < 1e-4


def test_score_cam_top_k_keeps_the_channels_of_highest_mean_activation():
    from models import wrap

    torch.manual_seed(3)
    net = TinyCNN()
    bundle = wrap(net, target_layer=net.features, classifier=net.fc, categories=[str(i) for i in range(10)],
                  input_size=(32, 32))
    x, target = randn(1, 3, 32, 32), 4
    full = explain(bundle, x, target, "score_cam")
    for every in (24, 100):  # above the channel count: all of them
        assert np.array_equal(explain(bundle, x, target, "score_cam", top_k=every).attribution, full.attribution)
    part = explain(bundle, x, target, "score_cam", top_k=5)
    with torch.no_grad():
        means = net.features(x)[0].mean(dim=(1, 2))
    kept = set(torch.topk(means, 5).indices.tolist())
    weights, full_weights = part.extras["channel_weights"], full.extras["channel_weights"]
    assert {c for c in range(24) if weights[c] != 0} == kept and part.extras["forwards"] == 6
    assert np.allclose(weights[sorted(kept)], full_weights[sorted(kept)], rtol=1e-5)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="top_k"):
            explain(bundle, x, target, "score_cam", top_k=bad)
