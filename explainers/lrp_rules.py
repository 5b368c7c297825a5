"""LRP's rules as Zennit 0.5 defines them, applied to a shared model without touching it.

Relevance travels backwards as the "gradient": at a layer's output it is R_out, and the layer's backward returns
its input's relevance R_in by the layer's rule. A per-thread `TorchFunctionMode` swaps each layer's backward as its
function reaches torch (modules call F.conv2d, F.linear, F.batch_norm, ...), so the model gets no hook, no copy
and no edit, and other threads' forwards are not affected. What Zennit's canonizers do by editing the model is
done here on the fly:
- BatchNorm after a convolution (or Linear) is merged into it (Zennit's `SequentialMergeBatchNorm`): W' = W·s,
  b' = (b − μ)·s + β with s = γ/√(σ² + ε), and the rule is applied to the merged layer;
- a sum of two tensors of one shape (ResNet's and EfficientNet's residual additions) gets the Norm rule, as
  Zennit's `ResNetCanonizer` gives its `Sum` module.

Rules (z the layer's output, s = R_out / stab(z), stab(z) = z + ε·sign(z) with sign(0) = 1, Wᵀ the transposed
layer, x⁺ = max(x, 0), x⁻ = min(x, 0), W⁺, W⁻ likewise):
  Epsilon  R_in = x ⊙ Wᵀ s
  ZPlus    z = W⁺x⁺ + b⁺ + W⁻x⁻;  R_in = x⁺ ⊙ W⁺ᵀ s + x⁻ ⊙ W⁻ᵀ s
  Gamma    the generalised rule: positive outputs (z > 0) are explained by W + γW⁺ on x⁺ and W + γW⁻ on x⁻,
           negative ones by the opposite pairing
  ZBox     z = Wx + b − (W⁺l + b⁺) − (W⁻h + b⁻);  R_in = x ⊙ Wᵀ s − l ⊙ W⁺ᵀ s − h ⊙ W⁻ᵀ s  (l, h: input bounds)
  Flat     z = 1ᵀ·1 over the receptive field;  R_in = 1ᵀ s  (relevance spread evenly)
  Norm     (average pooling, sums) R_in = x ⊙ Pᵀ s with P the pooling / summing
  Pass     (elementwise activations, BatchNorm left alone) R_in = R_out
Max pooling, reshapes and dropout keep their gradient (winner takes all; relevance moves with the value).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from .deeplift import ELEMENTWISE_ACTIVATIONS

STABILIZER = 1e-6  # Zennit's default stabiliser, and its default ε for the Epsilon rule
GAMMA = 0.25       # Zennit's default γ


class Layer(NamedTuple):
    """A linear map as a function of its input and parameters: `op(x, weight, bias)`."""
    op: Callable
    weight: torch.Tensor | None
    bias: torch.Tensor | None


Rule = Callable[[Layer, torch.Tensor, torch.Tensor], torch.Tensor]  # (layer, input, R_out) -> R_in


def stabilize(z: torch.Tensor, epsilon: float = STABILIZER) -> torch.Tensor:
    return z + ((z == 0).to(z) + z.sign()) * epsilon


def transpose(layer: Layer, weight, like: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Wᵀ g for the layer with `weight` (no bias): its vector-Jacobian product; `grads` may stack several g along
    the batch axis (one call, several products)."""
    repeat = grads.shape[0] // like.shape[0]
    with torch.enable_grad():
        probe = torch.zeros((like.shape[0] * repeat, *like.shape[1:]), dtype=like.dtype, device=like.device,
                            requires_grad=True)
        (out,) = torch.autograd.grad(layer.op(probe, weight, None), probe, grads)
    return out


def _parts(t):
    return (None, None) if t is None else (t.clamp(min=0), t.clamp(max=0))


def epsilon_rule(layer: Layer, x, relevance, epsilon: float = STABILIZER):
    s = relevance / stabilize(layer.op(x, layer.weight, layer.bias), epsilon)
    return x * transpose(layer, layer.weight, x, s)


norm_rule = epsilon_rule  # Norm is the Epsilon rule with ε only as a stabiliser, on parameter-free layers


def zplus_rule(layer: Layer, x, relevance):
    (w_pos, w_neg), (b_pos, _) = _parts(layer.weight), _parts(layer.bias)
    x_pos, x_neg = x.clamp(min=0), x.clamp(max=0)
    s = relevance / stabilize(layer.op(x_pos, w_pos, b_pos) + layer.op(x_neg, w_neg, None))
    return x_pos * transpose(layer, w_pos, x, s) + x_neg * transpose(layer, w_neg, x, s)


def gamma_rule(layer: Layer, x, relevance, gamma: float = GAMMA):
    w, b = layer.weight, layer.bias
    (w_pos, w_neg), (b_pos, b_neg) = _parts(w), _parts(b)
    w_up, w_down = w + gamma * w_pos, w + gamma * w_neg
    b_up = None if b is None else b + gamma * b_pos
    b_down = None if b is None else b + gamma * b_neg
    x_pos, x_neg = x.clamp(min=0), x.clamp(max=0)
    z = layer.op(x, w, b)
    s_pos = (z > 0) * relevance / stabilize(layer.op(x_pos, w_up, b_up) + layer.op(x_neg, w_down, None))
    s_neg = (z < 0) * relevance / stabilize(layer.op(x_pos, w_down, b_down) + layer.op(x_neg, w_up, None))
    n = x.shape[0]
    up = transpose(layer, w_up, x, torch.cat([s_pos, s_neg]))      # W_upᵀ s₊, W_upᵀ s₋
    down = transpose(layer, w_down, x, torch.cat([s_pos, s_neg]))  # W_downᵀ s₊, W_downᵀ s₋
    return x_pos * (up[:n] + down[n:]) + x_neg * (down[:n] + up[n:])


def zbox_rule(layer: Layer, x, relevance, low: torch.Tensor, high: torch.Tensor):
    (w_pos, w_neg), (b_pos, b_neg) = _parts(layer.weight), _parts(layer.bias)
    low, high = low.to(x).expand_as(x), high.to(x).expand_as(x)
    z = layer.op(x, layer.weight, layer.bias) - layer.op(low, w_pos, b_pos) - layer.op(high, w_neg, b_neg)
    s = relevance / stabilize(z)
    return (x * transpose(layer, layer.weight, x, s) - low * transpose(layer, w_pos, x, s)
            - high * transpose(layer, w_neg, x, s))


def flat_rule(layer: Layer, x, relevance):
    ones = torch.ones_like(layer.weight)
    s = relevance / stabilize(layer.op(torch.ones_like(x), ones, None))
    return transpose(layer, ones, x, s)


@dataclass(frozen=True)
class Composite:
    """Which rule each kind of layer gets; the first layer (in forward order) of a kind in `first_kinds` gets
    `first` instead (Zennit's SpecialFirstLayerMapComposite)."""
    first: Rule
    first_kinds: tuple[str, ...]
    conv: Rule
    linear: Rule


class _Relevance(torch.autograd.Function):
    """Forward: the layer's output. Backward: the rule's R_in for the incoming relevance."""

    @staticmethod
    def forward(ctx, x, layer: Layer, rule: Rule):
        ctx.layer, ctx.rule = layer, rule
        ctx.save_for_backward(x)
        return layer.op(x, layer.weight, layer.bias)

    @staticmethod
    def backward(ctx, relevance):
        (x,) = ctx.saved_tensors
        return ctx.rule(ctx.layer, x, relevance), None, None


class _Pass(torch.autograd.Function):
    """Forward: an elementwise function; backward: the relevance unchanged."""

    @staticmethod
    def forward(ctx, z, fn):
        return fn(z.clone())  # the clone absorbs in-place variants (ReLU(inplace=True))

    @staticmethod
    def backward(ctx, relevance):
        return relevance, None


class _Sum(torch.autograd.Function):
    """a + b with the Norm rule: each summand gets relevance in proportion to its value."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a + b

    @staticmethod
    def backward(ctx, relevance):
        a, b = ctx.saved_tensors
        s = relevance / stabilize(a + b)
        return a * s, b * s


_LINEAR = {torch.conv1d: "conv", torch.conv2d: "conv", torch.conv3d: "conv", F.linear: "linear"}
_AVG_POOL = {F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d,
             F.adaptive_avg_pool3d}
_ADD = {torch.add, torch.Tensor.add, torch.Tensor.add_, torch.Tensor.__add__, torch.Tensor.__iadd__,
        torch.Tensor.__radd__}
_BN_ARGS = ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps")


def _split(args, kwargs, names):
    """Bind the leading parameters by name; return them and a function of them that calls with the rest."""
    bound = dict(zip(names, args))
    bound.update({k: kwargs[k] for k in names if k in kwargs})
    rest_args, rest_kwargs = args[len(names):], {k: v for k, v in kwargs.items() if k not in names}
    return bound, rest_args, rest_kwargs


class LRPMode(TorchFunctionMode):
    """Within this context (this thread only), the model's backward carries LRP relevance under `composite`."""

    def __init__(self, composite: Composite):
        super().__init__()
        self.composite = composite
        self.first_done = False
        self.last = None  # (output, input, layer, rule) of the last linear layer, for a BatchNorm that follows

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _LINEAR:
            return self._linear(func, _LINEAR[func], args, kwargs)
        if func is F.batch_norm:
            return self._batch_norm(func, args, kwargs)
        if func in ELEMENTWISE_ACTIVATIONS and args and isinstance(args[0], torch.Tensor):
            return _Pass.apply(args[0], lambda z: func(z, *args[1:], **kwargs))
        if func in _AVG_POOL and args and isinstance(args[0], torch.Tensor):
            layer = Layer(lambda x, _w, _b: func(x, *args[1:], **kwargs), None, None)
            return _Relevance.apply(args[0], layer, norm_rule)
        if (func in _ADD and len(args) == 2 and not kwargs and all(isinstance(a, torch.Tensor) for a in args)
                and args[0].shape == args[1].shape and args[0].is_floating_point()):
            return _Sum.apply(*args)
        return func(*args, **kwargs)

    def _linear(self, func, kind, args, kwargs):
        bound, rest_args, rest_kwargs = _split(args, kwargs, ("input", "weight", "bias"))
        if not self.first_done and kind in self.composite.first_kinds:
            self.first_done, rule = True, self.composite.first
        else:
            rule = getattr(self.composite, kind)
        weight, bias = bound["weight"].detach(), bound.get("bias")
        layer = Layer(lambda x, w, b: func(x, w, b, *rest_args, **rest_kwargs), weight,
                      None if bias is None else bias.detach())
        out = _Relevance.apply(bound["input"], layer, rule)
        self.last = (out, bound["input"], layer, rule)
        return out

    def _batch_norm(self, func, args, kwargs):
        bound, _, _ = _split(args, kwargs, _BN_ARGS)
        z = bound["input"]
        if self.last is None or self.last[0] is not z or bound.get("training") or bound["running_var"] is None:
            return _Pass.apply(z, lambda t: func(t, *args[1:], **kwargs))
        _, x, layer, rule = self.last
        with torch.no_grad():
            scale = (bound["running_var"] + bound.get("eps", 1e-5)) ** 0.5
            scale = (bound["weight"] / scale) if bound.get("weight") is not None else 1 / scale
            shape = (-1,) + (1,) * (layer.weight.dim() - 1)
            bias = layer.bias if layer.bias is not None else torch.zeros_like(scale)
            shift = bound["bias"] if bound.get("bias") is not None else torch.zeros_like(scale)
            merged = Layer(layer.op, layer.weight * scale.view(shape), (bias - bound["running_mean"]) * scale + shift)
        self.last = None
        out = _Relevance.apply(x, merged, rule)
        # Zennit leaves the merged BatchNorm as y = z / √(1 + ε) (its ε is kept) under the Pass rule: the same here.
        residual_scale = (1 + bound.get("eps", 1e-5)) ** -0.5
        return _Pass.apply(out, lambda t: t * residual_scale)


def lrp(model: torch.nn.Module, x: torch.Tensor, target: int, composite: Composite):
    """(relevance of each input value `(1, 3, H, W)`, the target logit), starting from R = logit at the target."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        with LRPMode(composite):
            logits = model(x)
        start = torch.zeros_like(logits)
        start[:, target] = logits[:, target].detach()
        (relevance,) = torch.autograd.grad(logits, x, start)  # outside the mode: the rules' own torch calls run plain
    return relevance.detach(), float(logits[0, target].detach())
