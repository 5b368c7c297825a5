"""The model zoo: real bundled weights, specs carrying preprocessing, torchvision loading through the cache."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

import models
from models import ModelUnavailable, list_models, load_model, wrap
from models.zoo import SPECS, weights_file


@pytest.mark.parametrize("sample, expected", [
    ("cat.jpg", {"Egyptian cat", "tabby", "tiger cat"}),
    ("coffee.jpg", {"espresso"}),
])
def test_embedded_model_recognises_the_samples(lite0, sample, expected):
    from conftest import sample_bytes

    x = lite0.preprocess(models.read_image(sample_bytes(sample)))
    (index, name, prob), *_ = lite0.predict(x, k=5)
    assert name in expected, f"top-1 was {name} ({prob:.2f})"
    assert prob > 0.3


@pytest.mark.parametrize("name, side", [("efficientnet_lite1", 240), ("efficientnet_lite2", 260)])
def test_larger_lite_models_load_with_their_own_input_size(name, side, cat_image):
    bundle = load_model(name)
    x = bundle.preprocess(cat_image)
    assert x.shape == (1, 3, side, side)
    assert bundle.predict(x, 1)[0][1] in {"Egyptian cat", "tabby", "tiger cat"}


def test_bundle_carries_what_explainers_need(lite0, cat_image):
    assert not lite0.model.training
    assert lite0.target_layer is lite0.model.bn2 and lite0.classifier is lite0.model.classifier
    assert isinstance(lite0.classifier, torch.nn.Linear) and lite0.classifier.in_features == 1280
    assert len(lite0.categories) == 1000 and lite0.categories[281] == "tabby"
    assert lite0.device == models.default_device()
    # the target layer is the feature map the head pools: 1280 channels at 7x7
    feats = []
    h = lite0.target_layer.register_forward_hook(lambda m, i, o: feats.append(o))
    try:
        with torch.no_grad():
            lite0.model(lite0.preprocess(cat_image))
    finally:
        h.remove()
    assert feats[0].shape == (1, 1280, 7, 7)


def test_to_image_undoes_preprocess(lite0, cat_image):
    x = lite0.preprocess(cat_image)
    img = lite0.to_image(x)
    assert img.shape == (224, 224, 3) and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0
    assert torch.allclose(lite0.normalize(torch.from_numpy(img).permute(2, 0, 1)), x[0].cpu(), atol=1e-5)


def test_models_are_loaded_once_per_process():
    assert load_model("efficientnet_lite0") is load_model("efficientnet_lite0")


def test_list_models_reports_without_downloading(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    infos = {m.name: m for m in list_models()}
    assert {"efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "resnet50", "vgg16", "densenet121",
            "mobilenet_v2", "googlenet"} <= set(infos)
    assert infos["efficientnet_lite0"].available and infos["efficientnet_lite0"].source == "bundled"
    assert not infos["resnet50"].available and "TORCH_HOME" in infos["resnet50"].why_unavailable
    assert infos["resnet50"].source == "torchvision"
    assert not infos["vgg16"].has_cam_head and infos["resnet50"].has_cam_head
    assert list(tmp_path.iterdir()) == []  # nothing was fetched


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ModelUnavailable, match="Unknown model 'nope'"):
        load_model("nope")


def test_torchvision_model_offline_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    import torch.hub

    def no_network(*args, **kwargs):
        raise OSError("network is unreachable")
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(ModelUnavailable) as err:
        load_model("googlenet", device="cpu")
    message = str(err.value)
    assert "TORCH_HOME" in message and "googlenet" in message.lower() and "network" in message


@pytest.mark.parametrize("name, layer, cam_head", [
    ("resnet18", "layer4", "fc"), ("densenet121", "features", "classifier"), ("vgg16", "features.29", None),
    ("mobilenet_v2", "features", "classifier.1"), ("googlenet", "inception5b", "fc"),
    ("mobilenet_v3_large", "features", None),
])
def test_torchvision_models_load_from_a_prefilled_cache(tmp_path, monkeypatch, cat_image, name, layer, cam_head):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    spec = SPECS[name]
    weights = getattr(torchvision.models, spec.weights_enum).DEFAULT
    kwargs = {"aux_logits": True, "init_weights": False} if name == "googlenet" else {}
    torch.manual_seed(0)
    reference = torchvision.models.get_model(name, weights=None, **kwargs).eval()
    path = weights_file(spec)
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(reference.state_dict(), path)
    # A random model cannot match torchvision's published hash: the check is pointed at this file's own digest
    # (tests/test_zoo_weights.py tests the check itself).
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    monkeypatch.setattr(models.zoo, "hash_prefix", lambda spec: digest[:8])
    assert {m.name: m for m in list_models()}[name].available
    bundle = models.zoo._build(spec, torch.device("cpu"))  # not the process cache: this is a random model
    modules = dict(bundle.model.named_modules())
    assert bundle.target_layer is modules[layer]
    assert (bundle.classifier is modules[cam_head]) if cam_head else (bundle.classifier is None and bundle.cam_unavailable_reason)
    x = bundle.preprocess(cat_image)
    assert x.shape[-2:] == tuple(weights.transforms().crop_size * 2)[:2]
    with torch.no_grad():
        out = bundle.model(x)
        ref = reference(x) if name != "googlenet" else reference.eval()(x)
    assert torch.allclose(out, ref, atol=1e-5)


def test_wrap_any_module():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 3))
    bundle = wrap(net, target_layer=net[1], classifier=net[4], input_size=(32, 32), categories=["a", "b", "c"],
                  name="tiny")
    assert bundle.num_classes == 3 and bundle.input_size == (32, 32) and not bundle.model.training
    with pytest.raises(TypeError):
        wrap(net, classifier=net[0])
