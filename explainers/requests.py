"""What `explain()` accepts, checked before any work: the input tensor, the target class and every option.

Every refusal is a `BadRequest` (both a ValueError and a TypeError) whose message says what to change:
- `x`: a dense `(1, 3, H, W)` floating-point tensor of at most MAX_INPUT_SIDE × MAX_INPUT_SIDE pixels, with no
  NaN or infinity. float16/bfloat16/float64 are converted to the model's dtype (values float32 cannot hold become
  infinite and are then refused); integer, boolean and complex tensors are refused (an image of 0..255 values is
  not a normalised input: use `bundle.preprocess`).
- `target`: an integer (Python, numpy or a 0-d torch integer tensor) in 0..classes − 1; 2.7, True, "285" are
  refused rather than coerced.
- options: only those the method takes (`accepted_options`), each checked for type and range by the checker
  of its name in CHECKS (the same name means the same thing in every method).
"""
from __future__ import annotations

import difflib
import math
from typing import Any, Callable, NamedTuple

import numpy as np
import torch

from .base import BadRequest, MethodInfo, short_repr, whole_number
from .baselines import check_baseline
from .batching import MAX_CHUNK
from .cam import resolve_layer
from .expected import MAX_SAMPLES as EXPECTED_MAX_SAMPLES
from .quadrature import check_rule, check_steps
from .smoothing import validate as check_smooth

MAX_INPUT_SIDE = 1024
MAX_INPUT_PIXELS = MAX_INPUT_SIDE * MAX_INPUT_SIDE  # H × W; what one sample of a chunk may cost stays bounded
MAX_SEED = 2**63 - 1
MAX_SAMPLES = 65536  # random draws (Kernel SHAP's coalitions); gradient samples cost more and are capped lower
SAMPLE_LIMITS = {"expected_gradients": EXPECTED_MAX_SAMPLES}
MAX_MASKS = 20000
MAX_SEGMENTS = 1000
# The contract's common option: every method takes seed= (those without randomness have nothing to seed).
COMMON_OPTIONS = ("layer", "seed")  # every method takes them (../shared/CONTRACT.md)


class Request(NamedTuple):
    info: MethodInfo
    bundle: Any
    x: torch.Tensor
    options: dict


def accepted_options(info: MethodInfo) -> list[str]:
    """Every keyword option `info`'s method takes: what it declares, the common `layer` and `seed`, and `smooth`
    for gradient and path methods."""
    names = set(info.options) | set(COMMON_OPTIONS)
    if info.smoothable:
        names.add("smooth")
    return sorted(names)


def check_request(info: MethodInfo, bundle, x, target, options: dict) -> tuple[torch.Tensor, int, dict]:
    """(x on the model's device and dtype, target as an int, checked options), or BadRequest."""
    check_option_names(info, options)
    target = check_target(target, bundle.num_classes)
    x = check_input(bundle, x)
    request = Request(info, bundle, x, options)
    checked = dict(options)
    for name in sorted(options, key=lambda n: ORDER.get(n, len(ORDER))):  # rule before steps
        checked[name] = CHECKS[name](options[name], request)
    return x, target, checked


def check_option_names(info: MethodInfo, options: dict) -> None:
    accepted = accepted_options(info)
    unknown = [name for name in options if name not in accepted]
    if not unknown:
        return
    hints = [match for name in unknown for match in difflib.get_close_matches(str(name), accepted, n=1)]
    hint = f" (did you mean {', '.join(map(repr, hints))}?)" if hints else ""
    listed = ", ".join(short_repr(name, 30) for name in unknown[:5])
    raise BadRequest(f"{info.title} does not take the option{'s' if len(unknown) > 1 else ''} {listed}{hint}. "
                     f"It takes: {', '.join(accepted)}.")


def check_target(target, num_classes: int) -> int:
    """The class index as an int; only integers are accepted (no float, bool or string coercion)."""
    integer_tensor = isinstance(target, torch.Tensor) and target.dim() == 0 and not (
        target.is_floating_point() or target.is_complex() or target.dtype == torch.bool)
    integer_array = isinstance(target, np.ndarray) and target.ndim == 0 and np.issubdtype(target.dtype, np.integer)
    integer = isinstance(target, (int, np.integer)) and not isinstance(target, (bool, np.bool_))
    if not (integer or integer_tensor or integer_array):
        raise BadRequest(f"target must be a class index (an integer), got {short_repr(target)} "
                         f"({type(target).__name__}).")
    value = int(target)
    if not 0 <= value < num_classes:
        raise BadRequest(f"Class {value} is out of range: this model has classes 0 to {num_classes - 1}.")
    return value


def model_dtype(bundle) -> torch.dtype:
    return next((p.dtype for p in bundle.model.parameters() if p.is_floating_point()), torch.float32)


def check_input(bundle, x) -> torch.Tensor:
    """`x` detached, on the model's device and in its dtype; refused if it is not a finite (1, 3, H, W) image."""
    if not isinstance(x, torch.Tensor):
        raise BadRequest(f"x must be a torch.Tensor of shape (1, 3, H, W) from bundle.preprocess, "
                         f"got {type(x).__name__}.")
    if x.layout != torch.strided or x.is_quantized or getattr(x, "is_nested", False):
        raise BadRequest(f"x must be a dense tensor (1, 3, H, W), got a {x.layout} tensor.")
    if x.device.type == "meta":
        raise BadRequest("x is on the meta device: it has a shape but no values to explain.")
    shape = tuple(x.shape)
    if x.dim() != 4 or shape[0] != 1 or shape[1] != 3:
        raise BadRequest(f"x must have the shape (1, 3, H, W) (one RGB image, as bundle.preprocess gives), "
                         f"got {shape}.")
    height, width = shape[2], shape[3]
    if height == 0 or width == 0:
        raise BadRequest(f"x is empty: its shape is {shape}.")
    if height * width > MAX_INPUT_PIXELS:
        raise BadRequest(f"x is {height}×{width} pixels; explain() takes at most {MAX_INPUT_SIDE}×{MAX_INPUT_SIDE} "
                         f"({MAX_INPUT_PIXELS:,} pixels). Resize the image first (bundle.preprocess does).")
    if x.is_complex() or not x.is_floating_point():
        raise BadRequest(f"x must be a floating-point tensor normalised by bundle.preprocess, got {x.dtype} "
                         "(raw 0..255 or boolean pixels are not a model input).")
    dtype = model_dtype(bundle)
    x = x.detach().to(device=bundle.device, dtype=dtype)
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        nan = int(torch.isnan(x).sum())
        inf = int((~finite).sum()) - nan
        held = "" if x.dtype == dtype else f" once converted to the model's {dtype}"
        raise BadRequest(f"x contains {nan} NaN and {inf} infinite value(s){held}: there is nothing meaningful "
                         "to attribute. Check the preprocessing.")
    return x


def check_seed(value, _request=None):
    return None if value is None else whole_number(value, "seed", 0, MAX_SEED)


def check_flag(name: str) -> Callable:
    def check(value, _request=None) -> bool:
        if not isinstance(value, (bool, np.bool_)):
            raise BadRequest(f"{name} must be True or False, got {short_repr(value)}.")
        return bool(value)
    return check


def check_eps(value, _request=None) -> float:
    """Grad-CAM++'s stabiliser added to α's denominator: a finite number in [0, 1]."""
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if not number or not math.isfinite(float(value)) or not 0 <= float(value) <= 1:
        raise BadRequest(f"eps must be a number in [0, 1], got {short_repr(value)}.")
    return float(value)


def check_batch_size(value, _request=None):
    return None if value is None else whole_number(value, "batch_size (None: automatic)", 1, MAX_CHUNK)


def check_layer(value, request: Request):
    if value is not None and not isinstance(value, torch.nn.Module):
        raise BadRequest(f"layer= must be one of this model's modules (e.g. bundle.model.layer4), "
                         f"got {type(value).__name__}.")
    return None if value is None else resolve_layer(request.bundle, value)


def check_fraction(value, name: str, low_open: bool = False) -> float:
    """A real number in [0, 1] ((0, 1] with `low_open`)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not math.isfinite(float(value)) or not (0 < float(value) if low_open else 0 <= float(value)) \
            or float(value) > 1:
        raise BadRequest(f"{name} must be a number in {'(0, 1]' if low_open else '[0, 1]'}, got {short_repr(value)}.")
    return float(value)


def check_positive(value, name: str, limit: float) -> float:
    """A real number in (0, limit]."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not 0 < float(value) <= limit:
        raise BadRequest(f"{name} must be a number in (0, {limit:g}], got {short_repr(value)}.")
    return float(value)


def check_base_attribution(value, request: Request):
    """XRAI's base: a registered method id (its map is computed first), or an array XRAI checks itself."""
    if isinstance(value, str):
        from .registry import list_methods

        known = [info.id for info in list_methods()]
        if value not in known:  # a method id: XRAI itself says why it cannot be its own base
            raise BadRequest(f"Unknown method {short_repr(value)} for base_attribution: a method id "
                             f"({', '.join(known)}) or an (H, W) array.")
    elif not isinstance(value, (np.ndarray, torch.Tensor)):
        raise BadRequest(f"base_attribution must be a method id or an (H, W) array, got {type(value).__name__}.")
    return value


def check_segments(value, request: Request):
    """Kernel SHAP's segments: how many superpixels (1..MAX_SEGMENTS), or an (H, W) integer map of them."""
    if isinstance(value, (np.ndarray, torch.Tensor)):
        array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
        if array.shape != tuple(request.x.shape[-2:]) or not np.issubdtype(array.dtype, np.integer):
            raise BadRequest(f"segments as a map must be an integer array of shape {tuple(request.x.shape[-2:])}, "
                             f"got {array.dtype} {array.shape}.")
        return value
    return whole_number(value, "segments", 1, MAX_SEGMENTS)


def check_smoothing(value, request: Request):
    if value is not None:
        check_smooth(value)
    return value


def check_steps_option(value, request: Request) -> int | None:
    if value is None and request.info.options.get("steps", 0) is None:  # the method picks by its rule (IG)
        return None
    return check_steps(value, request.options.get("rule", request.info.options.get("rule")))


CHECKS: dict[str, Callable[[Any, Request], Any]] = {
    "rule": lambda value, request: check_rule(value, allow_adaptive=request.info.id == "integrated_gradients"),
    "steps": check_steps_option,
    "samples": lambda value, request: check_steps(value, limit=SAMPLE_LIMITS.get(request.info.id, MAX_SAMPLES),
                                                  what="samples"),
    "baseline": lambda value, request: check_baseline(value, request.x),
    "baselines": lambda value, request: check_baseline(value, request.x, batch=True),
    "batch_size": check_batch_size,
    "seed": check_seed,
    "eps": check_eps,
    "layer": check_layer,
    "trace": check_flag("trace"),
    "smooth": check_smoothing,
    "window": lambda value, _: whole_number(value, "window (pixels)", 1, MAX_INPUT_SIDE),
    "stride": lambda value, _: whole_number(value, "stride (pixels)", 1, MAX_INPUT_SIDE),
    "masks": lambda value, _: whole_number(value, "masks", 1, MAX_MASKS),
    "cells": lambda value, _: whole_number(value, "cells", 1, MAX_INPUT_SIDE),
    "p": lambda value, _: check_fraction(value, "p", low_open=True),
    "segments": check_segments,
    "top_k": lambda value, _: None if value is None else whole_number(value, "top_k (None: every channel)", 1, 65536),
    "max_dist": lambda value, _: check_fraction(value, "max_dist"),
    "fraction": lambda value, _: check_fraction(value, "fraction"),
    "max_sigma": lambda value, _: check_positive(value, "max_sigma", 1000.0),
    "grad_step": lambda value, _: check_positive(value, "grad_step", 1.0),
    "tolerance": lambda value, _: check_positive(value, "tolerance", 1.0),
    "base_attribution": check_base_attribution,
}
ORDER = {name: i for i, name in enumerate(CHECKS)}
