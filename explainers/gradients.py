"""Plain gradient methods: the class logit's gradient w.r.t. the input pixels, and that gradient × the input.

    saliency          ∂logit_target/∂x, signed, no abs (Simonyan et al. 2014; Captum `Saliency(abs=False)`)
    input_x_gradient  x ⊙ ∂logit_target/∂x                    (Shrikumar et al. 2016)

Each method declares a batched form on (N, 3, H, W) that SmoothGrad uses, so noisy copies go through the model
together instead of one forward and backward each.
"""
from __future__ import annotations

import torch

from .base import pixel_result
from .registry import register


def input_gradients(bundle, xs: torch.Tensor, target: int) -> torch.Tensor:
    """∂logit_target/∂x for every sample of a batch; eval-mode models treat the samples independently."""
    with torch.enable_grad():
        x_in = xs.detach().requires_grad_(True)
        logits = bundle.model(x_in)
        (grad,) = torch.autograd.grad(logits[:, target].sum(), x_in)
    return grad.detach()


def _saliency_batch(bundle, xs, target, **_):
    return input_gradients(bundle, xs, target)


def _input_x_gradient_batch(bundle, xs, target, **_):
    return xs * input_gradients(bundle, xs, target)


@register("saliency", "Saliency (gradient)", "gradient", batched=_saliency_batch)
def saliency(bundle, x, target, progress=None, **_):
    return pixel_result(_saliency_batch(bundle, x, target))


@register("input_x_gradient", "Input × gradient", "gradient", batched=_input_x_gradient_batch)
def input_x_gradient(bundle, x, target, progress=None, **_):
    return pixel_result(_input_x_gradient_batch(bundle, x, target))
