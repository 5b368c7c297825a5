"""What every explainer shares: the result types, the rules for touching a shared model, array helpers.

A method is a plain function `fn(bundle, x, target, progress=None, **options) -> MethodResult` registered with
`registry.register(...)`; `api.explain()` validates the request, times the call, enforces the sharing rules and
turns the result into an `Explanation`, so the method functions stay small.
"""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

Progress = Callable[[float, str], None]  # (fraction done in [0, 1], stage name)


class NotApplicable(ValueError):
    """The method cannot run on this model (e.g. CAM without a GAP → Linear head); the message says why."""


class BadRequest(ValueError, TypeError):
    """A request `explain()` refuses (bad input tensor, target or option); the message says what to change.
    Both a ValueError and a TypeError, so callers catching either (the app catches both) see it."""


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
class MethodResult:
    """What a method function returns; `explain()` adds which method, which class and how long it took."""
    attribution: np.ndarray
    heatmap: np.ndarray
    delta: float | None = None
    trace: IGTrace | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class Explanation:
    """A method's result for one class, with which method made it and how long it took (what `explain` returns)."""
    method: str
    target: int
    attribution: np.ndarray
    heatmap: np.ndarray
    delta: float | None = None
    trace: IGTrace | None = None
    seconds: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, result: MethodResult, method: str, target: int, seconds: float) -> "Explanation":
        return cls(method, target, result.attribution, result.heatmap, result.delta, result.trace, seconds,
                   result.extras)

    def completeness(self) -> "Completeness | None":
        """How well Σ attribution matches F(x) − F(x') (None for methods that make no such promise)."""
        return completeness(self)


@dataclass(frozen=True)
class Completeness:
    sum_attribution: float
    output_change: float   # F(x) − F(x'), i.e. Σ attribution − delta
    delta: float
    relative_error: float  # see relative_error()


def relative_error(error: float, change: float) -> float:
    """|error| / |ΔF|: the one convention for completeness errors. When ΔF is 0 there is nothing to be relative
    to, and the absolute error is returned."""
    return abs(error) / abs(change) if change != 0 else abs(error)


def completeness(result: MethodResult | Explanation) -> Completeness | None:
    if result.delta is None:
        return None
    total = float(np.sum(result.attribution, dtype=np.float64))
    change = total - float(result.delta)
    return Completeness(total, change, float(result.delta), relative_error(float(result.delta), change))


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


def short_repr(value, limit: int = 40) -> str:
    """`repr(value)` cut to `limit` characters, for messages that quote what a caller passed."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def whole_number(value, name: str, low: int, high: int) -> int:
    """`value` as an int in [low, high] — a Python or numpy integer, or a float with no fractional part — or a
    BadRequest naming `name`. Booleans are refused: `True` is not a count."""
    whole = isinstance(value, (int, np.integer)) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, (bool, np.bool_)) or not whole:
        raise BadRequest(f"{name} must be a whole number (an integer) in {low}..{high}, got {short_repr(value)}.")
    if not low <= int(value) <= high:
        raise BadRequest(f"{name} must be in {low}..{high}, got {int(value)}.")
    return int(value)


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


@contextlib.contextmanager
def replace_output(layer: torch.nn.Module, replacement: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Make `layer` return `replacement(output)` in this thread's forwards (other threads see the real output).
    Like `capture_output`, the hook filters by thread and is always removed."""
    owner = threading.get_ident()

    def hook(_module, _inputs, output):
        return replacement(output) if threading.get_ident() == owner else None

    handle = layer.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


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


def pixel_result(attribution: torch.Tensor | np.ndarray, **kw) -> MethodResult:
    """The result for a pixel-space `(3, H, W)` attribution; the heatmap sums it over channels."""
    if isinstance(attribution, torch.Tensor):
        attribution = to_numpy(attribution)
    if attribution.ndim == 4:
        attribution = attribution[0]
    return MethodResult(attribution=attribution, heatmap=attribution.sum(0), **kw)


def cam_result(cam: torch.Tensor, input_size: tuple[int, int], **kw) -> MethodResult:
    """The result for a layer-resolution `(h, w)` map; the heatmap is its bilinear upsampling."""
    cam = cam.detach().float()
    return MethodResult(attribution=to_numpy(cam), heatmap=to_numpy(upsample(cam, input_size)), **kw)


def normalize_map(a: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1]; a constant map becomes zeros instead of NaN."""
    a = np.nan_to_num(np.asarray(a, dtype=np.float32))
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
