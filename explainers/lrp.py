"""Layer-wise Relevance Propagation with Zennit's two standard composites (rules in `lrp_rules`).

- `lrp_epsilon_plus_flat`: Flat on the first layer, ZPlus on convolutions, Epsilon on fully connected layers;
- `lrp_epsilon_gamma_box`: ZBox on the first convolution (bounds: the normalised images of pixel values 0 and 1,
  per channel), Gamma (γ = 0.25) on the other convolutions, Epsilon on fully connected layers.
Both: Pass through activations, Norm at average pooling and residual sums, BatchNorm merged into the layer before
it. Relevance starts as the target's logit at the target (0 elsewhere); the attribution is the relevance of each
input value, `(3, H, W)`. Conservation (Σ relevance = logit) holds up to what biases absorb.
"""
from __future__ import annotations

from functools import partial

import torch

from .base import Progress, pixel_result
from .lrp_rules import Composite, epsilon_rule, flat_rule, gamma_rule, lrp, zbox_rule, zplus_rule
from .registry import register

EPSILON_PLUS_FLAT = Composite(first=flat_rule, first_kinds=("conv", "linear"), conv=zplus_rule, linear=epsilon_rule)


def epsilon_gamma_box(bundle, x: torch.Tensor) -> Composite:
    pixels = torch.stack([torch.zeros(3, 1, 1), torch.ones(3, 1, 1)]).to(x)
    low, high = bundle.normalize(pixels)
    return Composite(first=partial(zbox_rule, low=low[None], high=high[None]), first_kinds=("conv",),
                     conv=gamma_rule, linear=epsilon_rule)


def _result(bundle, x, target, composite, progress, stage):
    relevance, logit = lrp(bundle.model, x, target, composite)
    total = float(relevance.double().sum())
    result = pixel_result(relevance)
    result.extras.update(logit=logit, relevance_sum=total)
    if progress is not None:
        progress(1.0, stage)
    return result


@register("lrp_epsilon_plus_flat", "LRP ε-+-flat", "gradient")
def lrp_epsilon_plus_flat(bundle, x, target, progress: Progress | None = None):
    return _result(bundle, x, target, EPSILON_PLUS_FLAT, progress, "LRP ε-+-flat")


@register("lrp_epsilon_gamma_box", "LRP ε-γ-box", "gradient")
def lrp_epsilon_gamma_box(bundle, x, target, progress: Progress | None = None):
    return _result(bundle, x, target, epsilon_gamma_box(bundle, x), progress, "LRP ε-γ-box")
