"""The CAM family: maps at a convolutional layer's resolution, weighted by what the class score says of them.

A CAM method is only its weights: with A the layer's activations (C, h, w) and g = ∂logit_target/∂A, each method
says how w is made, and `combine` forms Σ_c w_c ⊙ A_c (w per channel, or per channel and location) and applies
the method's ReLU:
    cam         w_c = W_target,c (the final Linear's weights), on act(A); no ReLU    (Zhou et al. 2016)
    grad_cam    w_c = mean(g_c)                                                      (Selvaraju et al. 2017)
    grad_cam_pp w_c = Σ_ij α_cij ReLU(g_cij), α = g² / (2g² + Σ_ab A_cab · g³)       (Chattopadhay et al. 2018)
    hires_cam   w_cij = g_cij                                                        (Draelos & Carin 2020)
    layer_cam   w_cij = ReLU(g_cij)                                                  (Jiang et al. 2021)
    xgrad_cam   w_c = Σ_ij g_cij A_cij / Σ_ij A_cij                                  (Fu et al. 2020)
The CAMs that need no gradient (Score-CAM, Eigen-CAM, Ablation-CAM) are in `cam_gradient_free`.
Gradients are taken with `torch.autograd.grad` w.r.t. the captured activation, so parameters never get `.grad`.
"""
from __future__ import annotations

import torch

from .base import BadRequest, MethodResult, NotApplicable, cam_result, capture_output, to_numpy
from .registry import register


def resolve_layer(bundle, layer) -> torch.nn.Module:
    layer = bundle.target_layer if layer is None else layer
    if layer is None:
        raise NotApplicable(f"{bundle.title} has no default target layer; choose one with layer=.")
    if not isinstance(layer, torch.nn.Module) or not any(m is layer for m in bundle.model.modules()):
        raise BadRequest("layer= must be one of this model's own modules (e.g. bundle.model.layer4).")
    return layer


def feature_map(outputs: list[torch.Tensor], layer) -> torch.Tensor:
    if not outputs:
        raise NotApplicable(f"The layer {type(layer).__name__} did not run in the forward pass.")
    # A module called several times per forward (shared activations): the last call is the one nearest the head.
    activation = outputs[-1]
    if activation.dim() != 4:
        raise NotApplicable(f"CAM methods need a (N, C, h, w) feature map; {type(layer).__name__} gives "
                            f"shape {tuple(activation.shape)}.")
    return activation


def activations(bundle, x: torch.Tensor, layer=None) -> torch.Tensor:
    """The layer's activations (N, C, h, w) for a batch `x`, without gradients."""
    layer = resolve_layer(bundle, layer)
    with torch.no_grad(), capture_output(layer) as outputs:
        bundle.model(x)
        return feature_map(outputs, layer).detach()


def activations_and_gradients(bundle, x: torch.Tensor, target: int, layer=None):
    """(A, ∂logit/∂A, logits) for a batch `x`, A captured at `layer` (default: the bundle's target layer)."""
    layer = resolve_layer(bundle, layer)
    with torch.enable_grad(), capture_output(layer) as outputs:
        # The input requires grad so that the graph exists even if someone froze the parameters.
        logits = bundle.model(x.detach().requires_grad_(True))
        activation = feature_map(outputs, layer)
        (grad,) = torch.autograd.grad(logits[:, target].sum(), activation)
    return activation.detach(), grad.detach(), logits.detach()


def weighted_sum(weights: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """Σ_c w_c ⊙ A_c for one sample's (C, h, w) activations; `weights` is (C,) or (C, h, w)."""
    if weights.dim() == 1:
        return torch.einsum("c,chw->hw", weights, A)
    return (weights * A).sum(0)


def combine(weights: torch.Tensor, A: torch.Tensor, size: tuple[int, int], *, relu: bool = True) -> MethodResult:
    """The CAM result for `weights` on one sample's activations `A`; per-channel weights are kept in extras."""
    cam_map = weighted_sum(weights, A)
    result = cam_result(torch.relu(cam_map) if relu else cam_map, size)
    if weights.dim() == 1:
        result.extras["channel_weights"] = to_numpy(weights)
    return result


def grad_cam_map(bundle, x, target, layer=None) -> torch.Tensor:
    """Grad-CAM (h, w) for the first sample (Guided Grad-CAM multiplies guided backprop by it)."""
    A, g, _ = activations_and_gradients(bundle, x, target, layer)
    return torch.relu(weighted_sum(grad_cam_weights(A[0], g[0]), A[0]))


def spatial_size(x) -> tuple[int, int]:
    return tuple(x.shape[-2:])


def gradient_cam(id: str, title: str, weights_of, *, options: dict | None = None):
    """Register a CAM whose weights come from the activations and their gradient: `weights_of(A, g, **options)`."""
    @register(id, title, "cam", needs_layer=True, options=options)
    def method(bundle, x, target, progress=None, layer=None, **opts):
        A, g, _ = activations_and_gradients(bundle, x, target, layer)
        return combine(weights_of(A[0], g[0], **{k: v for k, v in opts.items() if k in (options or {})}), A[0],
                       spatial_size(x))
    method.__name__ = id
    return method


def grad_cam_weights(A, g):
    return g.mean(dim=(1, 2))


def grad_cam_pp_weights(A, g, eps: float = 0.0):
    """`eps` is added to α's denominator. 0 is the paper; pytorch-grad-cam adds 1e-6, which matters: gradients
    of a logit w.r.t. a 7×7×1280 map are ~1e-3, so 2g² is ~1e-6 too. With ReLU-family activations (Σ A ≥ 0)
    the denominator of every g > 0 term is ≥ 2g² > 0, so no eps is needed for stability."""
    g2 = g * g
    denominator = 2 * g2 + A.sum(dim=(1, 2), keepdim=True) * g2 * g + float(eps)
    # α is 0 where the gradient is 0 (there the paper's 0/0 has no meaning and the term drops out).
    alpha = torch.where(denominator != 0, g2 / torch.where(denominator != 0, denominator, 1.0), 0.0)
    return (alpha * torch.relu(g)).sum(dim=(1, 2))


def xgrad_cam_weights(A, g, eps: float = 1e-7):
    """`eps` keeps channels with Σ A = 0 finite; 1e-7 is pytorch-grad-cam's (the paper has none)."""
    return (g * A).sum(dim=(1, 2)) / (A.sum(dim=(1, 2)) + float(eps))


def hires_cam_weights(A, g):
    return g


def layer_cam_weights(A, g):
    return torch.relu(g)


@register("cam", "CAM", "cam", needs_classifier=True, needs_layer=True)
def cam(bundle, x, target, progress=None, layer=None, **_):
    classifier = bundle.classifier
    if classifier is None:
        raise NotApplicable(f"CAM needs a global-average-pool → Linear head: {bundle.cam_unavailable_reason}")
    A = activations(bundle, x, layer)[0]
    if bundle.pooled_activation is not None:  # the head pools act(A) (DenseNet: F.relu), so CAM weighs that
        A = bundle.pooled_activation(A)
    if A.shape[0] != classifier.in_features:
        raise NotApplicable(f"CAM needs the pooled layer's {A.shape[0]} channels to feed the classifier directly, "
                            f"but it takes {classifier.in_features} inputs; pick the layer the head pools.")
    return combine(classifier.weight[target].detach(), A, spatial_size(x), relu=False)


grad_cam = gradient_cam("grad_cam", "Grad-CAM", grad_cam_weights)
grad_cam_pp = gradient_cam("grad_cam_pp", "Grad-CAM++", grad_cam_pp_weights, options={"eps": 0.0})
hires_cam = gradient_cam("hires_cam", "HiResCAM", hires_cam_weights)
layer_cam = gradient_cam("layer_cam", "LayerCAM", layer_cam_weights)
xgrad_cam = gradient_cam("xgrad_cam", "XGrad-CAM", xgrad_cam_weights, options={"eps": 1e-7})
