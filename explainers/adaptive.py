"""Adaptive quadrature for Integrated Gradients, driven by exactly known errors.

The integrand g(α) = ⟨∇F(γ(α)), x − x'⟩ has a known integral over every piece of the path:
∫ₐᵇ g = F(γ(b)) − F(γ(a)), and the pass that takes the gradient at a node also gives F there. With panels whose
ends are nodes (composite Gauss–Lobatto), the quadrature error of every panel, e_p = Q_p − (F(b) − F(a)), is
therefore known, not estimated, and the panel errors add up to the whole completeness error (the F terms
telescope to F(x) − F(x')).

The first round is the composite rule on `FIRST_PANELS` equal panels. Each further round bisects the panels
carrying the largest |e_p| (bulk marking: the fewest panels that hold `MARKED_SHARE` of Σ|e_p|, but at least
`GROWTH` times the evaluations so far, so chunks stay large and rounds few). It stops when the signed relative
error is within the tolerance and Σ|e_p| within `SPREAD` times it (a small signed error that is only
cancellation between large panel errors does not count as converged), or when the budget cannot pay for
another split.

This module works on scalars only (α, F, g): the caller evaluates nodes and combines the gradients with the
final weights, so the same refinement runs on a toy integrand in the tests and on a network in the app.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

# Gauss–Lobatto rules on [0, 1] (ends included, so neighbouring panels share them): points → (nodes, weights).
# 3 points is Simpson's rule (exact to degree 3); its bisection reuses all three nodes, 5 points (degree 7)
# re-uses three of five.
LOBATTO = {
    3: (np.array([0.0, 0.5, 1.0]), np.array([1.0, 4.0, 1.0]) / 6.0),
    4: (np.array([0.0, (1 - 5 ** -0.5) / 2, (1 + 5 ** -0.5) / 2, 1.0]), np.array([1.0, 5.0, 5.0, 1.0]) / 12.0),
    5: (np.array([0.0, (1 - (3 / 7) ** 0.5) / 2, 0.5, (1 + (3 / 7) ** 0.5) / 2, 1.0]),
        np.array([9.0, 49.0, 64.0, 49.0, 9.0]) / 180.0),
}
PANEL_POINTS = 3
FIRST_PANELS = 8       # a power of two, so every panel end is an exact binary fraction (nodes are matched by α)
MARKED_SHARE = 0.5     # bulk (Dörfler) marking: split the fewest panels that carry this share of Σ|e_p|
GROWTH = 0.25          # ... and at least this many new evaluations per round, as a fraction of those so far
SPREAD = 4.0           # converged also needs Σ|e_p| ≤ SPREAD · tolerance · |ΔF|

Evaluate = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # alphas → (F, g) at those alphas


def first_round_size(points: int = PANEL_POINTS, panels: int = FIRST_PANELS) -> int:
    return panels * (points - 1) + 1


def composite_lobatto(edges: np.ndarray, points: int = PANEL_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(alphas, weights) of the composite Gauss–Lobatto rule on panels [edges[i], edges[i+1]] (shared ends merged)."""
    t, w = LOBATTO[points]
    edges = np.asarray(edges, dtype=np.float64)
    widths = np.diff(edges)
    alphas = (edges[:-1, None] + widths[:, None] * t[None, :]).ravel()
    weights = (widths[:, None] * w[None, :]).ravel()
    merged, index = np.unique(alphas, return_inverse=True)
    return merged, np.bincount(index, weights=weights, minlength=len(merged))


@dataclass
class Refinement:
    """The outcome: every node evaluated (α order), its final weight (0 for interior nodes of split panels)."""
    alphas: np.ndarray
    weights: np.ndarray
    logits: np.ndarray
    integrand: np.ndarray
    order: np.ndarray              # position of each α-sorted node in evaluation order
    steps_error: dict[int, float]  # evaluations after each round → relative completeness error
    panel_errors: np.ndarray       # final e_p per panel, panels in α order
    edges: np.ndarray              # final panel edges
    converged: bool
    rounds: list[int] = field(default_factory=list)  # evaluations made in each round


def _panel_errors(edges, points, where, g, f) -> np.ndarray:
    """Per panel: e_p = Q_p − (F(b) − F(a)), Q_p being the panel's rule applied to g."""
    t, w = LOBATTO[points]
    widths = np.diff(edges)
    idx = np.array([[where[a + h * tj] if tj not in (0.0, 1.0) else where[a if tj == 0.0 else b]
                     for tj in t] for a, b, h in zip(edges[:-1], edges[1:], widths)])
    return widths * (g[idx] @ w) - (f[idx[:, -1]] - f[idx[:, 0]])


def refine(evaluate: Evaluate, *, tolerance: float, budget: int, points: int = PANEL_POINTS,
           first_panels: int = FIRST_PANELS) -> Refinement:
    """Adaptive composite Gauss–Lobatto quadrature of g over [0, 1] with at most `budget` evaluations."""
    if points not in LOBATTO:
        raise ValueError(f"Panels have {', '.join(map(str, LOBATTO))} Gauss–Lobatto points, not {points}.")
    while first_panels > 1 and first_round_size(points, first_panels) > budget:
        first_panels //= 2
    if first_round_size(points, first_panels) > budget:
        raise ValueError(f"The adaptive rule needs a budget of at least {points} gradient evaluations, got {budget}.")
    edges = np.linspace(0.0, 1.0, first_panels + 1)
    where: dict[float, int] = {}
    f_all, g_all, steps_error, rounds = [], [], {}, []
    new = composite_lobatto(edges, points)[0]
    while True:
        f_new, g_new = evaluate(new)
        where.update({float(a): len(where) + i for i, a in enumerate(new)})
        f_all.append(np.asarray(f_new, dtype=np.float64))
        g_all.append(np.asarray(g_new, dtype=np.float64))
        rounds.append(len(new))
        f, g = np.concatenate(f_all), np.concatenate(g_all)
        change = f[where[1.0]] - f[where[0.0]]
        scale = abs(change) or 1.0
        errors = _panel_errors(edges, points, where, g, f)
        signed, spread = abs(errors.sum()) / scale, np.abs(errors).sum() / scale
        steps_error[len(where)] = float(signed)
        converged = signed <= tolerance and spread <= SPREAD * tolerance
        marked = [] if converged else _mark(np.abs(errors), len(where), budget, points)
        if not marked:
            break
        split = np.zeros(len(edges) - 1, dtype=bool)
        split[marked] = True
        mids = (edges[:-1] + edges[1:])[split] / 2
        edges = np.sort(np.concatenate([edges, mids]))
        candidates = composite_lobatto(edges, points)[0]
        new = np.array([a for a in candidates if float(a) not in where])
    alphas, weights = composite_lobatto(edges, points)
    final = dict(zip(map(float, alphas), weights))
    sorted_alphas = np.array(sorted(where))
    order = np.array([where[a] for a in sorted_alphas])
    return Refinement(alphas=sorted_alphas, weights=np.array([final.get(a, 0.0) for a in sorted_alphas]),
                      logits=f[order], integrand=g[order], order=order, steps_error=steps_error,
                      panel_errors=errors, edges=edges, converged=bool(converged), rounds=rounds)


def _mark(abs_errors: np.ndarray, evaluations: int, budget: int, points: int) -> list[int]:
    """Panels to bisect: largest |e_p| first, within what the budget can pay."""
    cost = 2 * points - 3 - (points % 2)  # new nodes per bisection (ends, and the middle for odd rules, re-used)
    affordable = (budget - evaluations) // cost
    if affordable <= 0:
        return []
    least = math.ceil(GROWTH * evaluations / cost)
    goal, mass, marked = MARKED_SHARE * abs_errors.sum(), 0.0, []
    for p in np.argsort(-abs_errors, kind="stable"):
        if len(marked) >= affordable or (mass >= goal and len(marked) >= least):
            break
        marked.append(int(p))
        mass += abs_errors[p]
    return marked
