"""Guided backprop, deconvnet and Guided Grad-CAM against Captum, on ReLU, ReLU6 and functional activations."""
from __future__ import annotations

import copy
import threading
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from explainers import explain
from explainers.guided import rectifier_rule
from models import wrap
from conftest import DEVICE, randn, rel_err

warnings.filterwarnings("ignore", message="Setting backward hooks")


def _captum(name):
    from captum.attr import Deconvolution, GuidedBackprop

    return {"guided_backprop": GuidedBackprop, "deconvnet": Deconvolution}[name]


class ClampAt6(torch.nn.Module):
    """min(z, 6). `straight_through`: same values, identity gradient (for deconvnet, see below)."""

    def __init__(self, straight_through: bool):
        super().__init__()
        self.straight_through = straight_through

    def forward(self, z):
        return z - (z - 6).clamp(min=0).detach() if self.straight_through else z.clamp(max=6)


def relu_module_twin(bundle, straight_through: bool):
    """A copy of the model with each ReLU6 rebuilt as nn.ReLU then a clamp at 6, so Captum's hooks see it.

    Guided backprop: the clamp's own gradient mask (z ≤ 6) and the ReLU's (z > 0) give act'(z) of ReLU6.
    Deconvnet ignores the unit's input entirely, so the clamp there must pass gradients unchanged.
    """
    twin = copy.deepcopy(bundle.model)
    for parent in list(twin.modules()):
        for name, child in parent.named_children():
            if isinstance(child, torch.nn.ReLU6):
                setattr(parent, name, torch.nn.Sequential(torch.nn.ReLU(), ClampAt6(straight_through)))
    return twin


@pytest.fixture(scope="module")
def lite0_input(lite0, cat_image):
    return F.interpolate(lite0.preprocess(cat_image), size=(128, 128), mode="area")  # any size works; faster


@pytest.mark.parametrize("method", ["guided_backprop", "deconvnet"])
@pytest.mark.parametrize("arch", ["resnet18", "vgg11"])
def test_matches_captum_on_inplace_relu_models(request, arch, method):
    bundle = request.getfixturevalue(arch)
    x = randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    assert any(isinstance(m, torch.nn.ReLU) and m.inplace for m in bundle.model.modules())
    ref = _captum(method)(bundle.model).attribute(x.clone().requires_grad_(True), target=5)[0].detach()
    ours = explain(bundle, x, 5, method)
    assert rel_err(ours.attribution, ref) < 1e-4
    plain = explain(bundle, x, 5, "saliency").attribution
    assert rel_err(ours.attribution, plain) > 0.05  # the modified backward really did something


@pytest.mark.parametrize("method", ["guided_backprop", "deconvnet"])
def test_relu6_on_lite0_matches_captum_on_relu_module_twin(lite0, lite0_input, method):
    twin = relu_module_twin(lite0, straight_through=(method == "deconvnet"))
    with torch.no_grad():
        assert torch.allclose(twin(lite0_input), lite0.model(lite0_input), atol=1e-4)
    ref = _captum(method)(twin).attribute(lite0_input.clone().requires_grad_(True), target=285)[0].detach()
    ours = explain(lite0, lite0_input, 285, method)
    assert rel_err(ours.attribution, ref) < 1e-4
    # Captum on the real ReLU6 model leaves the gradient unmodified: it is not an oracle there.
    naive = _captum(method)(lite0.model).attribute(lite0_input.clone().requires_grad_(True), target=285)[0]
    assert rel_err(ours.attribution, naive.detach()) > 0.05


class FunctionalNet(torch.nn.Module):
    """Activations called as functions inside forward (as DenseNet does), several spellings, some in place."""

    def __init__(self, modules: bool):
        super().__init__()
        self.modules_version = modules
        self.c1, self.c2, self.c3 = (torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 3, padding=1),
                                     torch.nn.Conv2d(8, 8, 3, padding=1))
        self.fc = torch.nn.Linear(8, 6)
        self.r1, self.r2, self.r3 = torch.nn.ReLU(), torch.nn.ReLU(), torch.nn.ReLU()

    def forward(self, x):
        if self.modules_version:
            h = self.r3(self.c3(self.r2(self.c2(self.r1(self.c1(x))))))
        else:
            h = self.c1(x)
            F.relu(h, inplace=True)  # return value ignored: relies on the in-place side effect
            h = torch.relu(self.c2(h))
            h = self.c3(h).relu_()
        return self.fc(h.mean(dim=(2, 3)))


@pytest.mark.parametrize("method", ["guided_backprop", "deconvnet"])
def test_functional_relus_match_captum_on_module_twin(method):
    torch.manual_seed(0)
    functional = FunctionalNet(modules=False)
    modules = FunctionalNet(modules=True)
    modules.load_state_dict(functional.state_dict())
    modules.to(DEVICE)
    bundle = wrap(functional, categories=[str(i) for i in range(6)], input_size=(16, 16))
    x = randn(1, 3, 16, 16)
    ref = _captum(method)(modules).attribute(x.clone().requires_grad_(True), target=2)[0].detach()
    ours = explain(bundle, x, 2, method)
    assert rel_err(ours.attribution, ref) < 1e-5
    with rectifier_rule("guided"), torch.no_grad():  # in place stays in place
        assert torch.allclose(functional(x), modules(x))


def test_true_hardtanh_is_left_alone():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Hardtanh(), torch.nn.Flatten(),
                              torch.nn.LazyLinear(3))
    torch.manual_seed(0)
    x = torch.randn(1, 3, 8, 8)
    net(x)
    bundle = wrap(net, categories=list("abc"), input_size=(8, 8))
    plain = explain(bundle, x, 1, "saliency").attribution
    assert np.array_equal(explain(bundle, x, 1, "guided_backprop").attribution, plain)


def test_rule_is_per_thread(resnet18):
    """While one thread is inside the guided rule, another thread's plain gradient stays plain."""
    x = randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    expected = explain(resnet18, x, 3, "saliency").attribution
    inside, release, seen = threading.Event(), threading.Event(), {}

    def hold_rule():
        with rectifier_rule("guided"):
            inside.set()
            release.wait(30)

    holder = threading.Thread(target=hold_rule)
    holder.start()
    try:
        assert inside.wait(30)
        seen["other"] = explain(resnet18, x, 3, "saliency").attribution
    finally:
        release.set()
        holder.join()
    assert np.array_equal(seen["other"], expected)
    assert torch._C._len_torch_function_stack() == 0


@pytest.mark.parametrize("arch", ["resnet18", "vgg11", "lite0"])
def test_guided_grad_cam_matches_captum(request, arch, lite0_input):
    from captum.attr import GuidedGradCam

    bundle = request.getfixturevalue(arch)
    if arch == "lite0":
        x, model = lite0_input, relu_module_twin(bundle, straight_through=False)
        layer = model.bn2
    else:
        x, model = randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(6)), bundle.model
        layer = bundle.target_layer
    ref = GuidedGradCam(model, layer).attribute(x.clone().requires_grad_(True), target=285,
                                                interpolate_mode="bilinear")[0].detach()
    ours = explain(bundle, x, 285, "guided_grad_cam")
    assert float(ref.abs().max()) > 0
    assert rel_err(ours.attribution, ref) < 1e-4


def test_scripted_model_is_refused_not_silently_plain():
    from explainers import NotApplicable

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(144, 3))
    x = torch.randn(1, 3, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.trace(net, x)
    bundle = wrap(scripted, categories=list("abc"), input_size=(8, 8))
    for method in ("guided_backprop", "deconvnet"):
        with pytest.raises(NotApplicable, match="TorchScript"):
            explain(bundle, x, 0, method)
