"""Quadrature rules for path integrals over α ∈ [0, 1], as data: nodes (alphas) and weights.

Nodes and weights follow Captum's rules, except the trapezoid: Captum spaces its nodes `1/(n−1)` apart but
weights them `1/n` (so they sum to `(n−1)/n`); ours weight them `1/(n−1)` and sum to 1. Nodes are built in
float64 as exact fractions `k/n` (Captum's float32 `linspace` lands about one ulp off).

`nested_grids` lists the coarser grids of the same rule whose nodes are a subset of the chosen grid, so the
completeness error of every coarser grid comes from the gradients already taken.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .base import BadRequest, short_repr, whole_number

RULES = ("gauss_legendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle")  # fixed nodes
ADAPTIVE = "adaptive"  # nodes placed by the errors measured on the way (explainers/adaptive.py)
MAX_STEPS = 1024


def check_rule(rule: str, allow_adaptive: bool = False) -> str:
    known = RULES + ((ADAPTIVE,) if allow_adaptive else ())
    if not isinstance(rule, str) or rule not in known:
        raise BadRequest(f"Unknown quadrature rule {short_repr(rule)}. Choose one of: {', '.join(known)}.")
    return rule


def check_steps(steps, rule: str | None = None, limit: int = MAX_STEPS, what: str = "steps") -> int:
    steps = whole_number(steps, what, 1, limit)
    if rule == "riemann_trapezoid" and steps < 2:
        raise BadRequest("The trapezoid rule needs at least 2 steps (its nodes include both ends of the path).")
    return steps


def nodes(rule: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(alphas, weights), float64, alphas increasing; the weights sum to 1 for every rule."""
    check_rule(rule)
    n = check_steps(steps, rule)
    k = np.arange(n, dtype=np.float64)
    if rule == "gauss_legendre":
        x, w = _legendre(n)
        return 0.5 * (x + 1.0), 0.5 * w
    if rule == "riemann_trapezoid":
        weights = np.full(n, 1.0 / (n - 1))
        weights[[0, -1]] /= 2
        return k / (n - 1), weights
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[rule]
    return (k + offset) / n, np.full(n, 1.0 / n)


@lru_cache(maxsize=64)
def _legendre_cached(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes and weights on [−1, 1] by Newton's method on P_n (O(n²), vectorised).

    numpy's `leggauss` (what Captum calls) solves an eigenproblem, O(n³): about 15 s at n = 1024 on a small CPU.
    """
    i = np.arange(1, n + 1)
    x = np.cos(np.pi * (i - 0.25) / (n + 0.5))  # Tricomi's initial guess, within Newton's basin for every n
    for _ in range(100):
        p_prev, p = np.ones_like(x), x.copy()
        for k in range(1, n):
            p_prev, p = p, ((2 * k + 1) * x * p - k * p_prev) / (k + 1)
        dp = n * (x * p - p_prev) / (x * x - 1)
        step = p / dp
        x = x - step
        if np.max(np.abs(step)) < 1e-14:
            break
    p_prev, p = np.ones_like(x), x.copy()
    for k in range(1, n):
        p_prev, p = p, ((2 * k + 1) * x * p - k * p_prev) / (k + 1)
    dp = n * (x * p - p_prev) / (x * x - 1)
    w = 2 / ((1 - x * x) * dp * dp)
    order = np.argsort(x)
    return x[order], w[order]


def _legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    if n == 1:
        return np.zeros(1), np.full(1, 2.0)
    x, w = _legendre_cached(n)
    return x.copy(), w.copy()


def nested_grids(rule: str, steps: int) -> dict[int, np.ndarray]:
    """Step count m → indices (into the `steps`-node grid) of the m-node grid of the same rule, for every m ≤ steps
    whose nodes are all among the chosen ones (including m = steps itself).

    Riemann left/right: m divides n. Midpoint: n/m is odd. Trapezoid: (m−1) divides (n−1). Gauss–Legendre grids
    never nest, except the 1-node rule (α = ½) inside any odd grid.
    """
    check_rule(rule)
    n = check_steps(steps, rule)
    grids: dict[int, np.ndarray] = {}
    for m in range(1, n + 1):
        k = np.arange(m)
        if rule == "gauss_legendre":
            idx = np.arange(n) if m == n else (np.array([n // 2]) if m == 1 and n % 2 else None)
        elif rule == "riemann_trapezoid":
            idx = k * ((n - 1) // (m - 1)) if m >= 2 and (n - 1) % (m - 1) == 0 else None
        elif n % m:
            idx = None
        elif rule == "riemann_left":
            idx = k * (n // m)
        elif rule == "riemann_right":
            idx = (k + 1) * (n // m) - 1
        else:  # middle: (k + ½)/m = (j + ½)/n  ⇔  j = ((2k + 1)·q − 1)/2 with q = n/m odd
            q = n // m
            idx = ((2 * k + 1) * q - 1) // 2 if q % 2 else None
        if idx is not None:
            grids[m] = idx
    return grids


def nested_weights(rule: str, steps: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """m → (indices into the full grid, the m-node rule's weights), checked against the m-node rule's nodes."""
    full_alphas, _ = nodes(rule, steps)
    out = {}
    for m, idx in nested_grids(rule, steps).items():
        sub_alphas, sub_weights = nodes(rule, m)
        if not np.allclose(full_alphas[idx], sub_alphas, rtol=0, atol=1e-12):
            raise AssertionError(f"{rule}: the {m}-node grid is not nested in the {steps}-node grid")
        out[m] = (idx, sub_weights)
    return out
