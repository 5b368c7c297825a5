"""Expected Gradients (Erion et al., 2021), a.k.a. GradientSHAP: Integrated Gradients averaged over baselines.

Each sample draws a baseline x'_s from a distribution and one α_s ~ U(0, 1), and contributes
∇F(x'_s + α_s (x − x'_s)) · (x − x'_s); the attribution is their mean, a Monte-Carlo estimate of IG's path
integral averaged over the baselines. Its completeness target is F(x) − E[F(x')], with E over the same draws.
"""
from __future__ import annotations

import numpy as np
import torch

from .base import Progress, pixel_result, to_numpy
from .registry import register
from .baselines import baseline_distribution
from .batching import run_in_chunks
from .quadrature import check_steps

MAX_SAMPLES = 512


def draw(bundle, x, baselines, samples: int, seed) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(baseline pool, per-sample index into it, per-sample α): all of a request's randomness, seeded."""
    pool, index = baseline_distribution(bundle, x, baselines, samples, seed)
    g = torch.Generator().manual_seed(10_007 + (0 if seed is None else int(seed)))  # α independent of the baselines
    alphas = torch.rand(samples, generator=g, dtype=torch.float64).to(device=x.device, dtype=x.dtype)
    return pool, index, alphas


@register("expected_gradients", "Expected Gradients (GradientSHAP)", "path",
          options=dict(samples=32, baselines="uniform", seed=0, batch_size=None))
def expected_gradients(bundle, x, target, progress: Progress | None = None, samples: int = 32, baselines="uniform",
                       seed=0, batch_size=None):
    samples = check_steps(samples, limit=MAX_SAMPLES, what="samples")
    model = bundle.model
    pool, index, alphas = draw(bundle, x, baselines, samples, seed)
    total = torch.zeros_like(x[0])
    baseline_logits = torch.zeros(samples, dtype=torch.float64)
    sample_mass = np.zeros(samples)  # Σ_i of each sample's attribution, for its spread

    def work(start: int, stop: int) -> None:
        nonlocal total
        base = pool[index[start:stop]]
        diff = x - base
        points = (base + alphas[start:stop].view(-1, 1, 1, 1) * diff).requires_grad_(True)
        with torch.enable_grad():
            (grads,) = torch.autograd.grad(model(points)[:, target].sum(), points)
        contributions = grads * diff
        total = total + contributions.sum(0)
        sample_mass[start:stop] = contributions.double().sum((1, 2, 3)).cpu().numpy()
        with torch.no_grad():
            baseline_logits[start:stop] = model(base)[:, target].double().cpu()

    chunks = run_in_chunks(model, x, samples, work, batch_size=batch_size, progress=progress,
                           stage="sample")
    attribution = total / samples
    with torch.no_grad():
        f_input = float(model(x)[0, target])
    expected_base = float(baseline_logits.mean())
    change = f_input - expected_base
    exp = pixel_result(attribution, delta=float(attribution.double().sum()) - change)
    exp.extras.update(
        baseline=to_numpy(pool[index].mean(0)), alphas=to_numpy(alphas), baseline_index=index.cpu().numpy(),
        baseline_logits=baseline_logits.numpy(), sample_mass=sample_mass, chunk_sizes=chunks,
        endpoint_logits=(expected_base, f_input),
        # standard error of the Σ attribution estimate: how far Σ attribution may sit from its expectation
        mass_standard_error=float(sample_mass.std(ddof=1) / np.sqrt(samples)) if samples > 1 else float("nan"))
    return exp
