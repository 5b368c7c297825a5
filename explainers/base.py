"""What every explainer shares: the result type, the registry, and the rules for touching a shared model.

A method is a plain function `fn(bundle, x, target, progress=None, **options) -> Explanation` registered with
`@register(...)`. `explain()` validates the request, times the call and enforces the sharing rules, so the
method functions stay small.
"""
from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

Progress = Callable[[float, str], None]  # (fraction done in [0, 1], stage name)


class NotApplicable(ValueError):
    """The method cannot run on this model (e.g. CAM without a GAP → Linear head); the message says why."""


@dataclass
class IGTrace:
    """Integrated Gradients along the path, one entry per quadrature node in α order."""
    alphas: np.ndarray
    weights: np.ndarray
    logits: np.ndarray
    probabilities: np.ndarray
    grad_mean_abs: np.ndarray
    cumulative: np.ndarray
    steps_error: dict[int, float]
    grad_maps: np.ndarray | None = None  # (nodes, H, W): gradient summed over channels, for an α scrubber
    endpoint_logits: tuple[float, float] | None = None  # F(x'), F(x)
    grad_map_alphas: np.ndarray | None = None  # the α of each row of grad_maps (≤ 64 nodes, evenly subsampled)
    integrand: np.ndarray | None = None  # per node ⟨∇F(γ(α)), x − x'⟩: the integrand, before the weights


@dataclass
class Explanation:
    method: str
    target: int
    attribution: np.ndarray
    heatmap: np.ndarray
    delta: float | None = None
    trace: IGTrace | None = None
    seconds: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MethodInfo:
    id: str
    title: str
    family: str  # "cam" | "gradient" | "path" | "perturbation"
    options: dict[str, Any] = field(default_factory=dict)  # option name → default
    needs_classifier: bool = False
    needs_layer: bool = False
    smoothable: bool = False

    def applicable(self, bundle) -> str | None:
        """None when the method can run on `bundle`, else the reason it cannot."""
        if self.needs_classifier and getattr(bundle, "classifier", None) is None:
            return f"{self.title} needs a global-average-pool → Linear head: {bundle.cam_unavailable_reason}"
        return None


_REGISTRY: dict[str, tuple[MethodInfo, Callable[..., Explanation]]] = {}


def register(id: str, title: str, family: str, *, options: dict | None = None, needs_classifier: bool = False,
             needs_layer: bool = False, smoothable: bool | None = None):
    """Decorator adding a method function to the registry under `id`."""
    info = MethodInfo(id, title, family, dict(options or {}), needs_classifier, needs_layer,
                      family in ("gradient", "path") if smoothable is None else smoothable)

    def decorate(fn: Callable[..., Explanation]):
        _REGISTRY[id] = (info, fn)
        return fn
    return decorate


def list_methods() -> list[MethodInfo]:
    return [info for info, _ in _REGISTRY.values()]


def method_info(method: str) -> MethodInfo:
    if method not in _REGISTRY:
        raise KeyError(f"Unknown method '{method}'. Known: {', '.join(_REGISTRY)}")
    return _REGISTRY[method][0]


def explain(bundle, x: torch.Tensor, target: int, method: str = "grad_cam", *, progress: Progress | None = None,
            **options) -> Explanation:
    """Explain `bundle.model`'s logit for class `target` at input `x` (a `(1, 3, H, W)` tensor)."""
    info = method_info(method)
    fn = _REGISTRY[method][1]
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        raise ValueError(f"x must be a (1, 3, H, W) tensor from bundle.preprocess, got {tuple(getattr(x, 'shape', ()))}")
    target = int(target)
    if not 0 <= target < bundle.num_classes:
        raise ValueError(f"Class {target} is out of range: this model has classes 0 to {bundle.num_classes - 1}.")
    reason = info.applicable(bundle)
    if reason:
        raise NotApplicable(reason)
    smooth = options.pop("smooth", None)
    if smooth and not info.smoothable:
        raise ValueError(f"{info.title} does not take smooth= (only gradient and path methods do).")
    x = x.detach().to(bundle.device)
    start = time.perf_counter()
    with model_untouched(bundle.model):
        if smooth:
            from .smoothing import smoothed
            result = smoothed(fn, bundle, x, target, smooth, progress=progress, **options)
        else:
            result = fn(bundle, x, target, progress=progress, **options)
    result.seconds = time.perf_counter() - start
    result.method, result.target = method, target
    return result


# ---------------------------------------------------------------- sharing rules

@contextlib.contextmanager
def model_untouched(model: torch.nn.Module) -> Iterator[None]:
    """Run a block and check on the way out that it left `model` as it found it.

    Explainers take gradients with `torch.autograd.grad` w.r.t. inputs or activations, so parameter `.grad`
    is never written, and they neither switch modes nor toggle `requires_grad` (other threads share the
    model). This guard restores anything a buggy or interrupted method did leave behind.
    """
    modes = [(m, m.training) for m in model.modules()]
    params = [(p, p.requires_grad, p.grad) for p in model.parameters()]
    try:
        yield
    finally:
        for module, training in modes:
            if module.training != training:
                module.training = training
        for p, requires_grad, grad in params:
            if p.requires_grad != requires_grad:
                p.requires_grad_(requires_grad)
            if p.grad is not grad:
                p.grad = grad


@contextlib.contextmanager
def capture_output(layer: torch.nn.Module) -> Iterator[list[torch.Tensor]]:
    """Record `layer`'s outputs produced by this thread's forwards, without touching other threads' calls.

    The hook is registered on the shared module, so it filters by thread and is always removed.
    """
    owner = threading.get_ident()
    outputs: list[torch.Tensor] = []

    def hook(_module, _inputs, output):
        if threading.get_ident() == owner:
            outputs.append(output if isinstance(output, torch.Tensor) else output[0])

    handle = layer.register_forward_hook(hook)
    try:
        yield outputs
    finally:
        handle.remove()


def target_logits(model: torch.nn.Module, x: torch.Tensor, target: int | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward `x` and return (all logits, the target logit per sample)."""
    logits = model(x)
    if isinstance(target, int):
        return logits, logits[:, target]
    return logits, logits.gather(1, target.view(-1, 1)).squeeze(1)


# ---------------------------------------------------------------- array helpers

def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """`(h, w)` or `(N, h, w)` maps → bilinear `(.., H, W)`."""
    squeeze = maps.dim() == 2
    m = maps[None, None] if squeeze else maps[:, None]
    out = F.interpolate(m.float(), size=tuple(size), mode="bilinear", align_corners=False)
    return out[0, 0] if squeeze else out[:, 0]


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A float32 copy on the host (one copy: the device-to-host one where there is one)."""
    t = t.detach().float()
    return t.numpy().copy() if t.device.type == "cpu" else t.cpu().numpy()


def to_host(tensors: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Float32 host copies of several tensors in one transfer (on a GPU each separate copy waits for the device
    and pays a fixed cost). The arrays are views into one buffer."""
    flat = torch.cat([t.detach().float().reshape(-1) for t in tensors.values()])
    host = flat.numpy() if flat.device.type == "cpu" else flat.cpu().numpy()  # torch.cat made a fresh copy
    out, offset = {}, 0
    for key, t in tensors.items():
        out[key] = host[offset:offset + t.numel()].reshape(t.shape)
        offset += t.numel()
    return out


def pixel_explanation(attribution: torch.Tensor | np.ndarray, **kw) -> Explanation:
    """An Explanation for a pixel-space `(3, H, W)` attribution; the heatmap sums it over channels."""
    if isinstance(attribution, torch.Tensor):
        attribution = to_numpy(attribution)
    if attribution.ndim == 4:
        attribution = attribution[0]
    return Explanation(method="", target=-1, attribution=attribution, heatmap=attribution.sum(0), **kw)


def cam_explanation(cam: torch.Tensor, input_size: tuple[int, int], **kw) -> Explanation:
    """An Explanation for a layer-resolution `(h, w)` map; the heatmap is its bilinear upsampling."""
    cam = cam.detach().float()
    return Explanation(method="", target=-1, attribution=to_numpy(cam), heatmap=to_numpy(upsample(cam, input_size)), **kw)


def normalize_map(a: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1]; a constant map becomes zeros instead of NaN."""
    a = np.nan_to_num(np.asarray(a, dtype=np.float32))
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
