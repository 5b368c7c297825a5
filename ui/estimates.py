"""How long an explanation will take here: passes it needs × the measured seconds per pass on this machine.

Work expected to take longer than `CLICK_ABOVE_S` starts on a click, with the estimate on the button; quick
methods compute at once. A "pass" is one input's forward and backward; forward-only passes (Score-CAM's masked
inputs, perturbation methods) count as `FORWARD_ONLY` of one. Seconds per pass come from the jobs finished on
this model and device (a running average), and before the first one from a short probe.
"""
from __future__ import annotations

import os
import threading
import time

import torch

# Seconds; the environment variable lets a demo or a test server compute everything at once ("inf").
CLICK_ABOVE_S = float(os.environ.get("ATTRIBUTION_CLICK_ABOVE_S", "3"))
FORWARD_ONLY = 0.4  # a forward pass as a fraction of a forward + backward
PROBE_BATCH = 4
COUNT_OPTIONS = ("steps", "samples", "masks")  # options that say how many passes a method makes
FORWARD_ONLY_FAMILIES = ("perturbation",)

_seconds_per_pass: dict[tuple[str, str], float] = {}
_lock = threading.Lock()


def _channels(layer: torch.nn.Module) -> int:
    """Output channels of a CAM layer: the last convolution or normalisation inside it."""
    for module in reversed(list(layer.modules())):
        for name in ("out_channels", "num_features"):
            if isinstance(getattr(module, name, None), int):
                return getattr(module, name)
    return 1


def passes(info, options: dict, bundle) -> float:
    """Forward-and-backward equivalents the method makes for one map with these options."""
    options = {**info.options, **options}
    if info.id == "score_cam":
        count = options.get("top_k") or _channels(bundle.target_layer)
        n = FORWARD_ONLY * count
    elif isinstance(options.get("window"), int) and isinstance(options.get("stride"), int):  # sliding windows
        sides = [(max(side - min(options["window"], side), 0) + options["stride"] - 1) // options["stride"] + 1
                 for side in bundle.input_size]
        n = FORWARD_ONLY * sides[0] * sides[1]
    else:
        n = float(next((options[k] for k in COUNT_OPTIONS if isinstance(options.get(k), int)), 1))
        if info.family in FORWARD_ONLY_FAMILIES:
            n *= FORWARD_ONLY
    smooth = options.get("smooth")
    if smooth:
        n *= int(smooth.get("samples", 1))
    return n


def _key(bundle) -> tuple[str, str]:
    return bundle.name, str(bundle.device)


def seconds_per_pass(bundle, x: torch.Tensor) -> float:
    with _lock:
        known = _seconds_per_pass.get(_key(bundle))
    if known is not None:
        return known
    probe = x.detach().expand(PROBE_BATCH, *x.shape[1:]).clone().requires_grad_(True)
    start = time.perf_counter()
    torch.autograd.grad(bundle.model(probe).sum(), probe)  # gradients for the input only: the model keeps no .grad
    measured = (time.perf_counter() - start) / PROBE_BATCH
    with _lock:
        return _seconds_per_pass.setdefault(_key(bundle), measured)


def record(bundle, n_passes: float, seconds: float) -> None:
    """A finished job's time per pass, folded into the running average for its model and device."""
    if n_passes < 4 or seconds <= 0:  # a handful of passes is mostly overhead
        return
    with _lock:
        old = _seconds_per_pass.get(_key(bundle))
        new = seconds / n_passes
        _seconds_per_pass[_key(bundle)] = new if old is None else 0.5 * old + 0.5 * new


def plain_duration(seconds: float) -> str:
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    return f"about {round(seconds / 60)} min"
