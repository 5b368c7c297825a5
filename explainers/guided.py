"""Guided backpropagation, deconvnet and Guided Grad-CAM, on any model and without touching it.

Both methods change only the backward pass of relu-like units. Instead of module hooks (which miss `F.relu`
called inside `forward`, as in DenseNet, and ReLU6 as in EfficientNet-Lite, and which would be visible to other
threads), a `TorchFunctionMode` swaps each relu-like call for an autograd function with the modified backward.
Torch function modes live on a per-thread stack, so another thread forwarding the same model at the same time
sees the ordinary ReLUs. In-place calls stay in place (`mark_dirty`), so code that relies on the side effect
still sees it.

Rules (what passes backward through a relu-like unit with forward input `z`, for an incoming gradient `g`):
    guided:    act'(z) · max(g, 0)      (Springenberg et al. 2015)
    deconvnet: max(g, 0), whatever z    (Zeiler & Fergus 2014)
act' is the unit's ordinary derivative: 1 on (0, ∞) for ReLU, on (0, 6) for ReLU6, as torch's own backward.
"""
from __future__ import annotations

import contextlib
import math
from typing import Iterator

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from .base import NotApplicable, pixel_result, upsample
from .registry import register
from .cam import grad_cam_map

RULES = ("guided", "deconvnet")


class _RectifiedBackward(torch.autograd.Function):
    """Forward: clamp to [0, upper] (a ReLU when upper is inf). Backward: the chosen rule."""

    @staticmethod
    def forward(ctx, z, upper: float, rule: str, inplace: bool):
        ctx.rule = rule
        if rule == "guided":
            pass_through = z > 0 if math.isinf(upper) else (z > 0) & (z < upper)
            ctx.save_for_backward(pass_through)
        if inplace:
            out = torch.relu_(z) if math.isinf(upper) else z.clamp_(0.0, upper)
            ctx.mark_dirty(z)
            return out
        return torch.relu(z) if math.isinf(upper) else z.clamp(0.0, upper)

    @staticmethod
    def backward(ctx, grad):
        positive = grad.clamp(min=0)
        if ctx.rule == "guided":
            (pass_through,) = ctx.saved_tensors
            positive = positive * pass_through
        return positive, None, None, None


def _clamp_call(upper: float):
    """Parser of relu(input, inplace) / relu6(input, inplace) calls: (input, upper bound, in place)."""
    def parse(args, kwargs, default_inplace: bool):
        inplace = kwargs.get("inplace", args[1] if len(args) > 1 else default_inplace)
        return args[0], upper, bool(inplace)
    return parse


_relu_call, _relu6_call = _clamp_call(math.inf), _clamp_call(6.0)


def _hardtanh_call(args, kwargs, default_inplace: bool):
    names = ("min_val", "max_val", "inplace")
    values = dict(zip(names, args[1:]))
    values.update({k: v for k, v in kwargs.items() if k in names})
    lower, upper = values.get("min_val", -1.0), values.get("max_val", 1.0)
    if lower != 0:
        return None  # a true hardtanh (e.g. [-1, 1]) is not relu-like: leave it alone
    return args[0], float(upper), bool(values.get("inplace", default_inplace))


# func → (argument parser, whether the call is in place by default)
_RELU_LIKE = {
    F.relu: (_relu_call, False),
    torch.relu: (_relu_call, False),
    torch.relu_: (_relu_call, True),
    torch.Tensor.relu: (_relu_call, False),
    torch.Tensor.relu_: (_relu_call, True),
    F.relu6: (_relu6_call, False),
    torch._C._nn.relu6: (_relu6_call, False),
    torch._C._nn.relu6_: (_relu6_call, True),
    F.hardtanh: (_hardtanh_call, False),
    torch._C._nn.hardtanh: (_hardtanh_call, False),
    torch._C._nn.hardtanh_: (_hardtanh_call, True),
}


class _RectifierMode(TorchFunctionMode):
    def __init__(self, rule: str):
        super().__init__()
        self.rule = rule

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        entry = _RELU_LIKE.get(func)
        if entry is not None and args and isinstance(args[0], torch.Tensor):
            call = entry[0](args, kwargs, entry[1])
            if call is not None:
                z, upper, inplace = call
                return _RectifiedBackward.apply(z, upper, self.rule, inplace)
        return func(*args, **kwargs)


@contextlib.contextmanager
def rectifier_rule(rule: str) -> Iterator[None]:
    """Within the block, this thread's relu-like calls backpropagate by `rule` ("guided" or "deconvnet")."""
    if rule not in RULES:
        raise ValueError(f"Unknown rule '{rule}'; expected one of {RULES}")
    with _RectifierMode(rule):
        yield


def rectified_gradients(bundle, xs: torch.Tensor, target: int, rule: str) -> torch.Tensor:
    """Modified-backward gradient of the target logit w.r.t. a batch `xs` (N, 3, H, W)."""
    if isinstance(bundle.model, torch.jit.ScriptModule):  # its graph runs below the Python dispatch we swap
        raise NotApplicable("Guided backprop and deconvnet need an eager (not TorchScript) model: a scripted "
                            "model's ReLUs cannot be swapped, so the result would silently be the plain gradient.")
    with torch.enable_grad():
        x_in = xs.detach().requires_grad_(True)
        with rectifier_rule(rule):
            logits = bundle.model(x_in)
        (grad,) = torch.autograd.grad(logits[:, target].sum(), x_in)
    return grad.detach()


def _guided_batch(bundle, xs, target, **_):
    return rectified_gradients(bundle, xs, target, "guided")


def _deconvnet_batch(bundle, xs, target, **_):
    return rectified_gradients(bundle, xs, target, "deconvnet")


@register("guided_backprop", "Guided backpropagation", "gradient", batched=_guided_batch)
def guided_backprop(bundle, x, target, progress=None, **_):
    return pixel_result(_guided_batch(bundle, x, target))


@register("deconvnet", "Deconvnet", "gradient", batched=_deconvnet_batch)
def deconvnet(bundle, x, target, progress=None, **_):
    return pixel_result(_deconvnet_batch(bundle, x, target))


@register("guided_grad_cam", "Guided Grad-CAM", "gradient", needs_layer=True)
def guided_grad_cam(bundle, x, target, progress=None, layer=None, **_):
    """Guided backprop × Grad-CAM upsampled bilinearly to the input (Selvaraju et al. 2017)."""
    cam = grad_cam_map(bundle, x, target, layer)
    cam_up = upsample(cam, tuple(x.shape[-2:]))
    guided = rectified_gradients(bundle, x, target, "guided")[0]
    result = pixel_result(guided * cam_up)
    result.extras["grad_cam"] = cam.detach().cpu().numpy()
    return result
