"""The front door: `explain(bundle, x, target, method, **options) -> Explanation`."""
from __future__ import annotations

import time

import torch

from .base import Explanation, NotApplicable, Progress, model_untouched
from .registry import method_entry
from .smoothing import smoothed_method


def explain(bundle, x: torch.Tensor, target: int, method: str = "grad_cam", *, progress: Progress | None = None,
            **options) -> Explanation:
    """Explain `bundle.model`'s logit for class `target` at input `x` (a `(1, 3, H, W)` tensor).

    `smooth=` wraps the method in SmoothGrad (see `smoothing`); every other option goes to the method.
    """
    entry = method_entry(method)
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        raise ValueError(f"x must be a (1, 3, H, W) tensor from bundle.preprocess, got {tuple(getattr(x, 'shape', ()))}")
    target = int(target)
    if not 0 <= target < bundle.num_classes:
        raise ValueError(f"Class {target} is out of range: this model has classes 0 to {bundle.num_classes - 1}.")
    reason = entry.info.applicable(bundle)
    if reason:
        raise NotApplicable(reason)
    smooth = options.pop("smooth", None)
    run = entry.run if smooth is None else smoothed_method(entry, smooth)
    x = x.detach().to(bundle.device)
    start = time.perf_counter()
    with model_untouched(bundle.model):
        result = run(bundle, x, target, progress=progress, **options)
    return Explanation.of(result, method, target, time.perf_counter() - start)
