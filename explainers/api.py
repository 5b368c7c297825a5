"""The front door: `explain(bundle, x, target, method, **options) -> Explanation`."""
from __future__ import annotations

import inspect
import time

import torch

from .base import BadRequest, Explanation, NotApplicable, Progress, model_untouched
from .registry import method_entry
from .requests import COMMON_OPTIONS, check_request
from .smoothing import smoothed_method


def explain(bundle, x: torch.Tensor, target: int, method: str = "grad_cam", *, progress: Progress | None = None,
            **options) -> Explanation:
    """Explain `bundle.model`'s logit for class `target` at input `x` (a `(1, 3, H, W)` tensor).

    The request is checked before any work (`requests`: BadRequest says what is wrong). `smooth=` wraps the
    method in SmoothGrad (see `smoothing`; `smooth=None` means none); every other option goes to the method.
    """
    entry = method_entry(method)
    if not isinstance(getattr(bundle, "model", None), torch.nn.Module):
        raise BadRequest(f"bundle must be a ModelBundle (models.load_model or models.wrap), got {type(bundle).__name__}.")
    if progress is not None and not callable(progress):
        raise BadRequest(f"progress must be a function (fraction, stage) or None, got {type(progress).__name__}.")
    if options.get("smooth", False) is None:
        del options["smooth"]
    x, target, options = check_request(entry.info, bundle, x, target, options)
    reason = entry.info.applicable(bundle)
    if reason:
        raise NotApplicable(reason)
    for name in COMMON_OPTIONS:  # the contract's common options: a method that has no use for one ignores it
        if name in options and not takes(entry.run, name):
            del options[name]
    smooth = options.pop("smooth", None)
    run = entry.run if smooth is None else smoothed_method(entry, smooth)
    start = time.perf_counter()
    with model_untouched(bundle.model):
        result = run(bundle, x, target, progress=progress, **options)
    return Explanation.of(result, method, target, time.perf_counter() - start)


def takes(fn, name: str) -> bool:
    """Whether `fn` accepts the keyword `name` (by name or through **options)."""
    parameters = inspect.signature(fn).parameters
    return name in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())
