"""DeepLIFT with the Rescale rule (Shrikumar et al., 2017), on any model and without touching it.

Input and baseline run as one batch of two. A per-thread `TorchFunctionMode` replaces every elementwise
nonlinearity y = f(z) by the same value whose backward multiplies by the *multiplier* Δy/Δz (difference between
the input's and the baseline's half), falling back to the ordinary derivative where Δz ≈ 0; linear layers keep
their gradient. Max pooling gets its own rule (below). Multipliers compose by the chain rule, so
Σ (x − x') · m = F(x) − F(x') holds for every net built of these pieces ("summation to delta").

Max pooling: for each window, y − y' is routed to the input's argmax when the input's max is the larger, else
(negative) to the baseline's argmax, and each input position receives the sum over all windows it wins — the
windows of ResNet's 3×3/2 stem pooling overlap, so contributions are scatter-added, not unpooled (an unpool
keeps one window's share and drops the rest). The multiplier is then contribution / Δz.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from .base import Progress, pixel_result, to_numpy
from .registry import register
from .baselines import make_baseline

EPS = 1e-7  # |Δz| below this: use the derivative (Δy/Δz would be 0/0 or noise)

# Elementwise nonlinearities as they reach torch (modules call these); LRP passes relevance through the same set.
ELEMENTWISE_ACTIVATIONS = {
    F.relu, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_, F.relu_, F.relu6, F.hardtanh,
    F.hardtanh_, F.silu, F.hardswish, F.hardsigmoid, F.gelu, F.elu, F.elu_, F.leaky_relu, F.leaky_relu_,
    F.softplus, F.mish, F.selu, F.celu, torch.sigmoid, torch.Tensor.sigmoid, torch.tanh, torch.Tensor.tanh,
    torch.sigmoid_, torch.tanh_, torch.Tensor.sigmoid_, torch.Tensor.tanh_,
}
_MAX_POOL = {F.max_pool2d, torch.max_pool2d}


def _paired(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    n = t.shape[0] // 2
    return t[:n], t[n:]


def rescale(func, args, kwargs):
    """f(z) with the Rescale multiplier as its backward."""
    z = args[0]
    y = func(z.clone(), *args[1:], **kwargs)  # a clone: in-place variants must not overwrite z, which we still need
    z_in, z_ref = _paired(z)
    y_in, y_ref = _paired(y)
    dz = (z_in - z_ref).detach()
    usable = dz.abs() > EPS
    multiplier = torch.where(usable, (y_in - y_ref).detach() / torch.where(usable, dz, torch.ones_like(dz)), 0.0)
    usable, multiplier = torch.cat([usable, usable]), torch.cat([multiplier, multiplier])
    return torch.where(usable, y.detach() + multiplier * (z - z.detach()), y)


class _MaxPoolDeepLift(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, kernel_size, stride, padding, dilation, ceil_mode):
        y, idx = F.max_pool2d_with_indices(z, kernel_size, stride, padding, dilation, ceil_mode)
        ctx.save_for_backward(z, y, idx)
        return y

    @staticmethod
    def backward(ctx, grad):
        z, y, idx = ctx.saved_tensors
        (z_in, z_ref), (y_in, y_ref), (idx_in, idx_ref) = _paired(z), _paired(y), _paired(idx)
        g = _paired(grad)[0]
        top = torch.maximum(y_in, y_ref)
        flat = z_in.flatten(2)
        contribution = torch.zeros_like(flat)
        contribution.scatter_add_(2, idx_in.flatten(2), (g * (top - y_ref)).flatten(2))
        contribution.scatter_add_(2, idx_ref.flatten(2), (g * (y_in - top)).flatten(2))
        plain = torch.zeros_like(flat).scatter_add_(2, idx_in.flatten(2), g.flatten(2))
        dz = flat - z_ref.flatten(2)
        usable = dz.abs() > EPS
        grad_in = torch.where(usable, contribution / torch.where(usable, dz, torch.ones_like(dz)), plain)
        grad_in = grad_in.view_as(z_in)
        return torch.cat([grad_in, grad_in]), None, None, None, None, None


def _max_pool(args, kwargs):
    names = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
    bound = dict(zip(names, args))
    bound.update(kwargs)
    if bound.get("return_indices"):
        return None
    stride = bound.get("stride") or bound["kernel_size"]
    return _MaxPoolDeepLift.apply(bound["input"], bound["kernel_size"], stride, bound.get("padding", 0),
                                  bound.get("dilation", 1), bound.get("ceil_mode", False))


class DeepLiftMode(TorchFunctionMode):
    """Within this context (this thread only), nonlinearities backpropagate DeepLIFT multipliers."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in ELEMENTWISE_ACTIVATIONS and args and isinstance(args[0], torch.Tensor) and args[0].shape[0] % 2 == 0:
            return rescale(func, args, kwargs)
        if func in _MAX_POOL and args and isinstance(args[0], torch.Tensor) and args[0].dim() == 4:
            out = _max_pool(args, kwargs)
            if out is not None:
                return out
        return func(*args, **kwargs)


def deeplift_multipliers(model, x, x_base, target: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(∂_DeepLIFT F / ∂x for the input half, the target logits of (x, x'))."""
    pair = torch.cat([x, x_base]).requires_grad_(True)
    with torch.enable_grad(), DeepLiftMode():
        logits = model(pair)[:, target]
    (grad,) = torch.autograd.grad(logits[0], pair)
    return grad[:1], logits.detach()


@register("deeplift", "DeepLIFT (Rescale)", "path", options=dict(baseline="black", seed=0))
def deeplift(bundle, x, target, progress: Progress | None = None, baseline="black", seed=0):
    x_base = make_baseline(bundle, x, baseline, seed)
    multipliers, logits = deeplift_multipliers(bundle.model, x, x_base, target)
    attribution = ((x - x_base) * multipliers)[0]
    change = float(logits[0] - logits[1])
    exp = pixel_result(attribution, delta=float(attribution.double().sum()) - change)
    exp.extras.update(baseline=to_numpy(x_base[0]), endpoint_logits=(float(logits[1]), float(logits[0])))
    if progress is not None:
        progress(1.0, "deeplift")
    return exp
