"""Guided Integrated Gradients (Kapishnikov et al., 2021): an adaptive path that moves the least important
features first, as PAIR's `saliency` package computes it.

The path starts at the baseline x′ and reaches x in `steps` steps; after step k every feature has covered, in
L1, the fraction k/steps of the way. At each step the gradient g is taken once at the current point, then, until
the step's L1 target is met: features that fell behind α − max_dist (α = k/steps) are pulled up to it; among the
features not yet at their upper bound x′ + (α + max_dist)(x − x′), those with |g| at or below the `fraction`
quantile (numpy's "lower") move towards that bound, all of the way or by the share γ that meets the target.
Each move adds Δx ⊙ g to the attribution, so Σ attribution ≈ F(x) − F(x′) (a Riemann sum along the path).

The path is kept in float64 and the model is fed float32 points, as in PAIR; at max_dist > 0 the path depends
on every earlier gradient (chaotic), so only the same arithmetic gives the same result. Each step needs the
gradient at the point the previous one reached: the evaluations cannot be batched.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .base import Progress, pixel_result, whole_number
from .baselines import make_baseline
from .gradients import input_gradients
from .registry import register

L1_TOLERANCE = 1e-9  # a step is done when the L1 distance to x is this close to the step's target (PAIR's)


def fraction_in(value, name: str, low: float, high: float, *, open_low: bool = False) -> float:
    """`value` as a float in [low, high] (or (low, high] with `open_low`), or a ValueError naming `name`."""
    ok = isinstance(value, (int, float, np.floating)) and not isinstance(value, (bool, np.bool_))
    if not ok or not math.isfinite(value) or value > high or value < low or (open_low and value == low):
        interval = f"{'(' if open_low else '['}{low}, {high}]"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}.")
    return float(value)


def guided_path_attribution(x_in: np.ndarray, x_base: np.ndarray, gradient_at, steps: int, fraction: float,
                            max_dist: float, progress: Progress | None = None) -> np.ndarray:
    """Σ over the guided path of Δx ⊙ ∇F, in float64; `gradient_at(point)` returns ∇F at a float64 point."""
    x_in, x_base = np.asarray(x_in, np.float64), np.asarray(x_base, np.float64)
    span = x_in - x_base
    x = x_base.copy()
    attribution = np.zeros_like(x_in)
    l1_total = np.abs(x_in - x_base).sum()
    if np.abs(span).sum() == 0:
        return attribution
    for step in range(steps):
        gradient = gradient_at(x)
        ranked = gradient.copy()  # features at their upper bound get |g| = inf here, so they are never selected
        alpha = (step + 1.0) / steps
        alpha_low, alpha_high = max(alpha - max_dist, 0.0), min(alpha + max_dist, 1.0)
        x_low, x_high = x_base + span * alpha_low, x_base + span * alpha_high
        l1_target = l1_total * (1 - (step + 1) / steps)
        gamma = np.inf
        while gamma > 1.0:
            x_before = x.copy()
            with np.errstate(divide="ignore", invalid="ignore"):
                position = np.where(span != 0, (x - x_base) / span, np.nan)
            position[np.isnan(position)] = alpha_high  # features with x = x′ never lag behind
            behind = position < alpha_low
            x[behind] = x_low[behind]
            l1_now = np.abs(x - x_in).sum()
            if math.isclose(l1_target, l1_now, rel_tol=L1_TOLERANCE, abs_tol=L1_TOLERANCE):
                attribution += (x - x_before) * gradient
                break
            ranked[x == x_high] = np.inf
            magnitude = np.abs(ranked)
            threshold = np.quantile(magnitude, fraction, method="lower")
            chosen = (magnitude <= threshold) & (ranked != np.inf)
            room = (np.abs(x - x_high) * chosen).sum()
            gamma = (l1_now - l1_target) / room if room > 0 else np.inf
            if gamma > 1.0:
                x[chosen] = x_high[chosen]
            else:
                x[chosen] = (x + (x_high - x) * gamma)[chosen]
            attribution += (x - x_before) * gradient
        if progress is not None:
            progress((step + 1) / steps, f"guided IG step {step + 1}/{steps}")
    return attribution


@register("guided_ig", "Guided Integrated Gradients", "path",
          options=dict(steps=200, max_dist=0.02, fraction=0.25, baseline="black", seed=0))
def guided_ig(bundle, x, target, progress: Progress | None = None, steps=200, max_dist=0.02, fraction=0.25,
              baseline="black", seed=0, **_):
    steps = whole_number(steps, "steps", 1, 4096)
    max_dist = fraction_in(max_dist, "max_dist", 0.0, 1.0)
    fraction = fraction_in(fraction, "fraction", 0.0, 1.0, open_low=True)
    x_base = make_baseline(bundle, x, baseline, seed)

    def gradient_at(point: np.ndarray) -> np.ndarray:
        batch = torch.from_numpy(point.astype(np.float32)[None]).to(x.device)
        return input_gradients(bundle, batch, target)[0].cpu().numpy()

    attribution = guided_path_attribution(x[0].cpu().numpy(), x_base[0].cpu().numpy(), gradient_at, steps,
                                          fraction, max_dist, progress)
    with torch.no_grad():
        f_base, f_input = bundle.model(torch.cat([x_base, x]))[:, target].double().tolist()
    result = pixel_result(attribution.astype(np.float32))
    result.extras.update(baseline=x_base[0].cpu().numpy(), endpoint_logits=(f_base, f_input))
    return result
