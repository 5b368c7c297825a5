"""SmoothGrad and its variants for any gradient or path method: average its attribution over noisy inputs.

With a_i the method's attribution of x + ε_i, ε_i ~ N(0, (σ · (max x − min x))²):
    smoothgrad     mean a_i                 (Smilkov et al. 2017)
    smoothgrad_sq  mean a_i²
    vargrad        mean a_i² − (mean a_i)²  (Adebayo et al. 2018)
as Captum's `NoiseTunnel` defines them. Noise is drawn from a generator seeded by `seed=` (default 0), chunk by
chunk in the order Captum draws it with `nt_samples_batch_size=CHUNK`, so the same seed gives the same noise.
`smoothed_method(entry, smooth)` wraps a registered method as Captum's `NoiseTunnel` wraps an attribution method,
reading what the method declares: methods registered with a batched form get many noisy copies per
forward/backward, in chunks sized by measurement and memory (`batching`); any other (IG, DeepLIFT, ...) is called
once per noisy copy.
"""
from __future__ import annotations

import numpy as np
import torch

from .base import BadRequest, MethodResult, cam_result, pixel_result, short_repr, whole_number
from .batching import run_in_chunks

KINDS = ("smoothgrad", "smoothgrad_sq", "vargrad")
MAX_SAMPLES = 256
CHUNK = 16


def validate(smooth) -> tuple[str, int, float]:
    """`smooth` dict → (kind, samples, sigma), or BadRequest saying what is wrong."""
    if not isinstance(smooth, dict):
        raise BadRequest(f"smooth= must be a dict like {{'kind': 'smoothgrad', 'samples': 16, 'sigma': 0.15}}, "
                         f"got {type(smooth).__name__}")
    if not smooth:
        raise BadRequest("smooth={} says nothing: give at least its 'kind' (smoothgrad, smoothgrad_sq or vargrad), "
                         "or leave smooth= out for no smoothing.")
    unknown = set(smooth) - {"kind", "samples", "sigma"}
    if unknown:
        raise BadRequest(f"smooth= has unknown keys {short_repr(sorted(map(str, unknown)), 80)}; expected kind, samples, sigma")
    kind = smooth.get("kind", "smoothgrad")
    if not isinstance(kind, str) or kind not in KINDS:
        raise BadRequest(f"Unknown smoothing kind {short_repr(kind)}; expected one of {', '.join(KINDS)}.")
    samples, sigma = smooth.get("samples", 16), smooth.get("sigma", 0.15)
    samples = whole_number(samples, "smooth samples", 1, MAX_SAMPLES)
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float, np.floating)) or not 0 <= sigma <= 1:
        raise BadRequest(f"smooth sigma (a fraction of the input's value range) must be in [0, 1], got {short_repr(sigma)}")
    return kind, int(samples), float(sigma)


def noise_chunks(x: torch.Tensor, samples: int, stdev: float, seed: int):
    """Yield (N, 3, H, W) noisy copies of `x`, CHUNK at a time, from a generator seeded by `seed`."""
    generator = torch.Generator(device=x.device).manual_seed(int(seed))
    for start in range(0, samples, CHUNK):
        n = min(CHUNK, samples - start)
        noise = torch.randn((n, *x.shape[1:]), generator=generator, device=x.device, dtype=x.dtype)
        yield x.expand(n, *x.shape[1:]) + noise * stdev


class NoisyCopies:
    """The noisy copies of `noise_chunks`, handed out by consecutive index ranges: only the range asked for (and
    the rest of one drawn CHUNK) is held, not all `samples` copies (256 of a 1024 × 1024 input are 3 GB)."""

    def __init__(self, x: torch.Tensor, samples: int, stdev: float, seed: int):
        self.draws = noise_chunks(x, samples, stdev, seed)
        self.pending = x.new_empty((0, *x.shape[1:]))
        self.next = 0

    def take(self, start: int, stop: int) -> torch.Tensor:
        assert start == self.next, "noisy copies are handed out in order"
        parts, held = [self.pending], self.pending.shape[0]
        while held < stop - start:
            parts.append(next(self.draws))
            held += parts[-1].shape[0]
        drawn = torch.cat(parts) if len(parts) > 1 else self.pending
        self.pending, self.next = drawn[stop - start:], stop
        return drawn[:stop - start]


def smoothed_method(entry, smooth):
    """A method function that runs `entry`'s method under `smooth` (validated here, before any work)."""
    if not entry.info.smoothable:
        raise BadRequest(f"{entry.info.title} does not take smooth= (only gradient and path methods do).")
    validate(smooth)

    def run(bundle, x, target, progress=None, **options) -> MethodResult:
        return smoothed(entry.run, bundle, x, target, smooth, progress=progress, batched=entry.batched, **options)
    return run


def smoothed(fn, bundle, x, target, smooth, progress=None, batched=None, **options) -> MethodResult:
    """The `smooth`-kind aggregate of `fn`'s attribution over noisy copies of `x` (`batched`: fn's batch form)."""
    kind, samples, sigma = validate(smooth)
    seed = options.get("seed")
    stdev = sigma * float(x.max() - x.min())
    deltas = []
    sums: list[torch.Tensor] = []  # running [Σ a_i, Σ a_i²]

    def accumulate(attributions: torch.Tensor) -> None:
        attributions = attributions.detach().to(x.device).double()
        parts = (attributions.sum(0), (attributions * attributions).sum(0))
        sums[:] = parts if not sums else [a + b for a, b in zip(sums, parts)]

    # The noise is drawn CHUNK at a time (Captum's order, so seeds agree) but need not be computed that way:
    # batched methods run it in chunks sized by measurement and memory, as IG does (one launch on a GPU).
    noisy = NoisyCopies(x, samples, stdev, 0 if seed is None else seed)
    if batched is not None:
        run_in_chunks(bundle.model, x, samples, lambda a, b: accumulate(batched(bundle, noisy.take(a, b), target,
                                                                                **options)),
                      progress=progress, stage="noisy sample")
    else:
        for i in range(samples):
            part = fn(bundle, noisy.take(i, i + 1), target, progress=None, **options)
            accumulate(torch.as_tensor(part.attribution)[None])
            if part.delta is not None:
                deltas.append(float(part.delta))
            if progress is not None:  # one call can be slow (a 256-step IG): report each
                progress((i + 1) / samples, f"noisy sample {i + 1} / {samples}")
    total, total_sq = sums
    mean, mean_sq = total / samples, total_sq / samples
    aggregate = {"smoothgrad": mean, "smoothgrad_sq": mean_sq, "vargrad": mean_sq - mean * mean}[kind].float()
    if aggregate.dim() == 2:
        result = cam_result(aggregate, tuple(x.shape[-2:]))
    else:
        result = pixel_result(aggregate)
    result.extras["smooth"] = {"kind": kind, "samples": samples, "sigma": sigma, "stdev": stdev}
    if deltas:  # completeness errors of the noisy copies, each against its own input; not of x
        result.extras["noisy_deltas_mean_abs"] = float(np.mean(np.abs(deltas)))
    return result
