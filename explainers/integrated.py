"""Integrated Gradients (Sundararajan et al., 2017) along the straight path γ(α) = x' + α (x − x').

Attribution_i = (x_i − x'_i) · Σ_k w_k ∂F/∂x_i(γ(α_k)), with (α_k, w_k) from `quadrature`. The nodes run in
chunks sized by measurement (`batching`), and the same pass records the trace the app plots: F and p at every
node, mean |gradient|, the integrand ⟨∇F(γ(α_k)), x − x'⟩ and its running weighted sum, gradient maps for an α
scrubber, and the completeness error of every coarser nested grid (a weighted sum of the integrand values
already computed, so no extra forward or backward). `rule="adaptive"` places the nodes by the errors measured
on the way (`adaptive`), and its trace has the completeness error after every refinement round.
"""
from __future__ import annotations

from bisect import bisect_left

import numpy as np
import torch

from .base import IGTrace, Progress, pixel_result, relative_error, to_host
from .registry import register
from .baselines import make_baseline
from .batching import run_in_chunks
from .quadrature import ADAPTIVE, check_rule, check_steps, nested_weights, nodes
from . import adaptive

# Gauss–Legendre by default: measured on EfficientNet-Lite0 (real photo, black baseline) it reaches a given
# completeness error with fewer nodes than the trapezoid, and it is Captum's default, so numbers compare.
# Its grids do not nest, so steps_error has only the chosen count (and 1 for odd counts); the trapezoid's do.
DEFAULT_RULE = "gauss_legendre"
MAX_GRAD_MAPS = 64
# Devices where F(x') and F(x) ride along in the first chunk instead of a separate forward (see path_integral).
FOLD_ENDPOINTS_ON = frozenset({"cuda", "xpu", "mps"})


def grad_map_nodes(count: int) -> np.ndarray:
    """Indices of at most MAX_GRAD_MAPS nodes, evenly spread over `count` (first and last included)."""
    return np.unique(np.round(np.linspace(0, count - 1, min(count, MAX_GRAD_MAPS))).astype(int))


@torch.no_grad()
def endpoint_logits(model, x, x_base, target, known: dict[float, float]) -> tuple[float, float]:
    """(F(x'), F(x)), reusing values already known (path nodes on an end); one small forward for the rest."""
    missing = [a for a in (0.0, 1.0) if a not in known]
    if missing:
        batch = torch.cat([x_base if a == 0.0 else x for a in missing])
        values = model(batch)[:, target].double().tolist()
        known = {**known, **dict(zip(missing, values))}
    return known[0.0], known[1.0]


def path_integral(model, x, x_base, target: int, alphas: np.ndarray, weights: np.ndarray, *, batch_size=None,
                  progress: Progress | None = None, with_trace: bool = True, keep_gradients: bool = False,
                  fold_ends: bool | None = None):
    """Σ_k w_k ∇F(γ(α_k)) over the nodes, in measured chunks; returns (weighted gradient sum, per-node records).

    Records stay on the model's device (the caller copies them to the host with its results, in one go). On an
    accelerator the two endpoints ride along as two extra rows of the first chunk: a separate forward there
    costs a whole sequence of kernel launches, while on the CPU it costs only its arithmetic, which is less than
    carrying the rows through the chunk's backward.

    `keep_gradients=True` also returns every node's gradient in the records (`gradients`, one row per node), for
    callers that re-weigh nodes later (the adaptive rule); `fold_ends=False` keeps the endpoints out (when they
    are nodes anyway).
    """
    diff = x - x_base
    alphas_t = torch.as_tensor(alphas, dtype=x.dtype, device=x.device).view(-1, 1, 1, 1)
    weights_t = torch.as_tensor(weights, dtype=x.dtype, device=x.device)
    total = torch.zeros_like(x[0])
    n = len(alphas)
    parts: dict[str, list[torch.Tensor]] = {"logits": [], "probabilities": [], "grad_mean_abs": [], "integrand": []}
    # Which nodes keep a gradient map: a device index made before any work is queued (building one per chunk
    # from a Python list is a host-to-device copy, which on CUDA waits for the queued forward+backward).
    keep = grad_map_nodes(n).tolist() if with_trace else []
    keep_t = torch.as_tensor(keep, dtype=torch.long, device=x.device)
    maps: list[torch.Tensor] = []
    ends: dict[float, torch.Tensor] = {}
    fold_ends = x.device.type in FOLD_ENDPOINTS_ON if fold_ends is None else fold_ends
    kept: list[torch.Tensor] = []

    def work(start: int, stop: int) -> int:
        nonlocal total
        points = x_base + alphas_t[start:stop] * diff
        extra = fold_ends and not ends
        if extra:
            points = torch.cat([points, x_base, x])
        points.requires_grad_(True)
        size = stop - start
        with torch.enable_grad():
            logits = model(points)
            (grads,) = torch.autograd.grad(logits[:size, target].sum(), points)
        logits, grads = logits.detach(), grads[:size]
        if extra:
            ends.update({0.0: logits[size, target], 1.0: logits[size + 1, target]})
            logits = logits[:size]
        total = total + torch.einsum("k,kchw->chw", weights_t[start:stop], grads)
        parts["logits"].append(logits[:, target])
        if keep_gradients:
            kept.append(grads)
        if with_trace:
            # cheap next to the forward+backward: a few passes over the chunk's gradients, no float64 copies
            flat = grads.flatten(1)
            parts["probabilities"].append(torch.softmax(logits, 1)[:, target])
            parts["grad_mean_abs"].append(torch.linalg.vector_norm(flat, 1, dim=1) / flat.shape[1])  # no |g| copy
            parts["integrand"].append(flat @ diff.flatten())
            first, last = bisect_left(keep, start), bisect_left(keep, stop)
            if last > first:
                rows = grads if last - first == size else grads.index_select(0, keep_t[first:last] - start)
                maps.append(rows.sum(1))
        return size + 2 * extra  # rows run (the footprint is measured per row)

    chunks = run_in_chunks(model, x, n, work, batch_size=batch_size, progress=progress, stage="step")
    record = {key: torch.cat(v) for key, v in parts.items() if v}
    if maps:
        record["grad_maps"] = torch.cat(maps)
    if kept:
        record["gradients"] = torch.cat(kept)
    if ends:
        record["ends"] = torch.stack([ends[0.0], ends[1.0]])
    return total, record, chunks


DEFAULT_STEPS = {ADAPTIVE: 256}  # the adaptive rule's steps are a budget of gradient evaluations
FIXED_DEFAULT_STEPS = 32


@register("integrated_gradients", "Integrated Gradients", "path",
          options=dict(steps=None, rule=DEFAULT_RULE, tolerance=0.01, baseline="black", seed=0, batch_size=None,
                       trace=True))
def integrated_gradients(bundle, x, target, progress: Progress | None = None, steps: int | None = None,
                         rule: str = DEFAULT_RULE, tolerance: float = 0.01, baseline="black", seed=0, batch_size=None,
                         trace: bool = True):
    """`steps` None: 32 nodes for a fixed rule, a budget of 256 evaluations for the adaptive one; `tolerance`: the
    adaptive rule's target relative completeness error. `trace=False` skips the per-node records of a fixed rule
    (only for measuring what they cost; the adaptive rule needs them to refine)."""
    rule = check_rule(rule, allow_adaptive=True)
    steps = check_steps(DEFAULT_STEPS.get(rule, FIXED_DEFAULT_STEPS) if steps is None else steps, rule)
    x_base = make_baseline(bundle, x, baseline, seed)
    if rule == ADAPTIVE:
        return _adaptive_result(bundle, x, x_base, target, check_tolerance(tolerance), steps, batch_size, progress)
    alphas, weights = nodes(rule, steps)
    total, rec, chunks = path_integral(bundle.model, x, x_base, target, alphas, weights, batch_size=batch_size,
                                       progress=progress, with_trace=trace)
    host = to_host({"attribution": (x - x_base)[0] * total, "baseline": x_base[0], **rec})
    logits = host["logits"].astype(np.float64)
    known = dict(zip((0.0, 1.0), host["ends"].tolist())) if "ends" in host else {}
    known.update((float(a), float(v)) for a, v in zip(alphas, logits) if a in (0.0, 1.0))
    f_base, f_input = endpoint_logits(bundle.model, x, x_base, target, known)
    change = f_input - f_base
    attribution = host["attribution"]
    delta = float(attribution.sum(dtype=np.float64)) - change
    ig_trace = None
    if trace:
        integrand = host["integrand"].astype(np.float64)
        steps_error = {m: relative_error(float(np.dot(w, integrand[idx])) - change, change)
                       for m, (idx, w) in nested_weights(rule, steps).items()}
        ig_trace = IGTrace(
            alphas=alphas, weights=weights, logits=logits, probabilities=host["probabilities"].astype(np.float64),
            grad_mean_abs=host["grad_mean_abs"].astype(np.float64), cumulative=np.cumsum(weights * integrand),
            steps_error=steps_error, grad_maps=host["grad_maps"], grad_map_alphas=alphas[grad_map_nodes(len(alphas))],
            endpoint_logits=(f_base, f_input), integrand=integrand)
    exp = pixel_result(attribution, delta=delta, trace=ig_trace)
    exp.extras.update(baseline=host["baseline"], rule=rule, steps=steps, chunk_sizes=chunks)
    return exp


def check_tolerance(tolerance) -> float:
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float, np.floating, np.integer)) \
            or not 1e-6 <= float(tolerance) <= 1.0:
        raise ValueError(f"tolerance is a relative completeness error in 1e-6..1 (0.01 = 1 %), got {tolerance!r}.")
    return float(tolerance)


def _adaptive_result(bundle, x, x_base, target, tolerance, budget, batch_size, progress):
    """Refine the path where its panels are wrong (adaptive.refine); every round's nodes run as one chunked pass.

    Every node's gradient stays on the device until the weights are final (a split changes the weights of the
    nodes it re-uses): memory grows as budget × the input's size.
    """
    records, chunks = [], []

    def evaluate(alphas: np.ndarray):
        done = sum(len(r["logits"]) for r in records)
        report = None if progress is None else (
            lambda f, stage: progress(min(1.0, (done + f * len(alphas)) / budget), stage))
        _, rec, sizes = path_integral(bundle.model, x, x_base, target, alphas, np.zeros(len(alphas)),
                                      batch_size=batch_size, progress=report, keep_gradients=True, fold_ends=False)
        records.append(rec)
        chunks.extend(sizes)
        host = to_host({"logits": rec["logits"], "integrand": rec["integrand"]})
        return host["logits"], host["integrand"]

    result = adaptive.refine(evaluate, tolerance=tolerance, budget=budget)
    order = torch.as_tensor(result.order, device=x.device)
    gradients = torch.cat([r["gradients"] for r in records]).index_select(0, order)  # α order
    weights_t = torch.as_tensor(result.weights, dtype=x.dtype, device=x.device)
    keep = grad_map_nodes(len(result.alphas))
    host = to_host({
        "attribution": (x - x_base)[0] * torch.einsum("k,kchw->chw", weights_t, gradients),
        "baseline": x_base[0],
        "probabilities": torch.cat([r["probabilities"] for r in records]).index_select(0, order),
        "grad_mean_abs": torch.cat([r["grad_mean_abs"] for r in records]).index_select(0, order),
        "grad_maps": gradients[torch.as_tensor(keep, device=x.device)].sum(1)})
    f_base, f_input = float(result.logits[0]), float(result.logits[-1])
    attribution = host["attribution"]
    delta = float(attribution.sum(dtype=np.float64)) - (f_input - f_base)
    ig_trace = IGTrace(
        alphas=result.alphas, weights=result.weights, logits=result.logits,
        probabilities=host["probabilities"].astype(np.float64), grad_mean_abs=host["grad_mean_abs"].astype(np.float64),
        cumulative=np.cumsum(result.weights * result.integrand), steps_error=result.steps_error,
        grad_maps=host["grad_maps"], grad_map_alphas=result.alphas[keep], endpoint_logits=(f_base, f_input),
        integrand=result.integrand)
    exp = pixel_result(attribution, delta=delta, trace=ig_trace)
    exp.extras.update(baseline=host["baseline"], rule=ADAPTIVE, steps=budget, chunk_sizes=chunks,
                      evaluations=len(result.alphas), converged=result.converged, tolerance=tolerance,
                      rounds=result.rounds, panel_edges=result.edges,
                      panel_errors=result.panel_errors)
    return exp
