"""Evidence about whether an attribution map can be trusted: faithfulness curves and the randomisation check.

- Deletion / insertion (Petsiuk et al., RISE, 2018): remove (or reveal) pixels or patches in the order the map
  ranks them and watch the class score; a faithful map makes it fall fast (small deletion AUC) or rise fast
  (large insertion AUC). All perturbed images go through the model in batches under `no_grad`.
- Model-parameter randomisation (Adebayo et al., Sanity Checks for Saliency Maps, 2018): re-initialise the
  model's layers cumulatively from the top down and measure, with Spearman's rank correlation, how much each
  method's map still resembles the map of the trained model. A map that barely changes does not depend on what
  the model learned. It runs on a deep copy, so the shared, cached model is never modified.
"""
from __future__ import annotations

import copy
import dataclasses
import threading
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .api import explain
from .base import Progress
from .baselines import gaussian_blur

FILLS = ("blur", "black", "mean")
FILL_BLUR_SIGMA = 0.025  # as a fraction of the shorter side, as baselines.BLUR_SIGMA: objects smeared, layout kept


# ---------------------------------------------------------------- rank correlation

def rankdata(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of the flattened values, ties sharing their average rank (as scipy's `rankdata`)."""
    a = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(a, kind="mergesort")
    sorted_a = a[order]
    starts = np.r_[True, sorted_a[1:] != sorted_a[:-1]]
    group = np.cumsum(starts) - 1
    counts = np.bincount(group)
    average = np.cumsum(counts) - (counts - 1) / 2.0  # last rank of each tie group minus half its width
    ranks = np.empty_like(a)
    ranks[order] = average[group]
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps of the same size.

    A constant map has no ranking: two constant maps count as identical (1.0), one constant map against a
    varying one as unrelated (0.0), rather than NaN, so that a map wiped out by randomisation reads as "changed".
    """
    ra, rb = rankdata(a), rankdata(b)
    if ra.shape != rb.shape:
        raise ValueError(f"maps differ in size: {np.shape(a)} vs {np.shape(b)}")
    da, db = ra - ra.mean(), rb - rb.mean()
    na, nb = float(np.sqrt((da * da).sum())), float(np.sqrt((db * db).sum()))
    if na == 0.0 or nb == 0.0:
        return 1.0 if na == nb else 0.0
    return float((da * db).sum() / (na * nb))


# ---------------------------------------------------------------- deletion / insertion

@dataclass
class Curve:
    mode: str  # "deletion" | "insertion"
    fractions: np.ndarray  # fraction of the image removed (deletion) or revealed (insertion), 0 → 1
    scores: np.ndarray  # the class score at each fraction
    auc: float


def auc(fractions: np.ndarray, scores: np.ndarray) -> float:
    """Area under a curve by the trapezoid rule (fractions span [0, 1], so this is also the mean height)."""
    f, s = np.asarray(fractions, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    return float(np.sum((f[1:] - f[:-1]) * (s[1:] + s[:-1]) / 2.0))


def fill_image(bundle, x: torch.Tensor, fill: str) -> torch.Tensor:
    """What removed pixels become, in model input space: a blurred copy, black, or the dataset-mean colour."""
    if fill == "blur":  # blurring commutes with the per-channel normalisation, so blur x itself
        return gaussian_blur(x, max(1.0, FILL_BLUR_SIGMA * min(x.shape[-2:])))
    if fill == "black":
        return bundle.normalize(torch.zeros_like(x))
    if fill == "mean":  # normalisation maps the mean colour to 0
        return torch.zeros_like(x)
    raise ValueError(f"Unknown fill '{fill}'. Choose one of: {', '.join(FILLS)}.")


def rank_map(score_map: np.ndarray | torch.Tensor, patch: int = 1) -> tuple[torch.Tensor, int]:
    """Each pixel's rank (0 = most important) of the `patch`×`patch` cell it lies in, and the number of cells.

    Cells are ranked by the sum of the map over them, largest first; ties keep reading order.
    """
    m = torch.as_tensor(np.asarray(score_map, dtype=np.float32))
    if m.dim() != 2:
        raise ValueError(f"score map must be (H, W), got {tuple(m.shape)}")
    if patch < 1:
        raise ValueError("patch must be at least 1 pixel")
    h, w = m.shape
    cells = F.avg_pool2d(m[None, None], patch, ceil_mode=True)[0, 0] if patch > 1 else m
    gh, gw = cells.shape
    order = torch.from_numpy(np.argsort(-cells.flatten().numpy(), kind="stable").copy())
    ranks = torch.empty(gh * gw, dtype=torch.long)
    ranks[order] = torch.arange(gh * gw)
    ranks = ranks.view(gh, gw)
    if patch > 1:
        ranks = ranks.repeat_interleave(patch, 0).repeat_interleave(patch, 1)[:h, :w]
    return ranks, gh * gw


@torch.no_grad()
def _class_scores(model, images: torch.Tensor, target: int, score: str, batch_size: int,
                  progress: Progress | None, stage: str) -> np.ndarray:
    out = []
    for start in range(0, images.shape[0], batch_size):
        logits = model(images[start:start + batch_size]).float()
        values = torch.softmax(logits, 1)[:, target] if score == "probability" else logits[:, target]
        out.append(values.cpu())
        if progress:
            progress(min(1.0, (start + batch_size) / images.shape[0]), stage)
    return torch.cat(out).numpy().astype(np.float64)


def perturbation_curve(bundle, x: torch.Tensor, target: int, score_map: np.ndarray, mode: str = "deletion", *,
                       steps: int = 32, patch: int = 8, fill: str = "blur", score: str = "probability",
                       batch_size: int = 16, progress: Progress | None = None) -> Curve:
    """Deletion or insertion curve of `score_map` (an `(H, W)` map, larger = more important) for class `target`.

    Deletion replaces the top-ranked cells of `x` by the fill, insertion starts from the fill and puts them
    back; `steps` + 1 images from 0 % to 100 %, forwarded `batch_size` at a time.
    """
    if mode not in ("deletion", "insertion"):
        raise ValueError("mode must be 'deletion' or 'insertion'")
    if score not in ("probability", "logit"):
        raise ValueError("score must be 'probability' or 'logit'")
    x = x.detach().to(bundle.device)
    if tuple(np.shape(score_map)) != tuple(x.shape[-2:]):
        raise ValueError(f"score map {np.shape(score_map)} does not match the input's size {tuple(x.shape[-2:])}")
    ranks, cells = rank_map(score_map, patch)
    counts = np.round(np.linspace(0, cells, steps + 1)).astype(np.int64)
    masks = (ranks.to(x.device)[None] < torch.as_tensor(counts, device=x.device)[:, None, None])[:, None]
    base = fill_image(bundle, x, fill)
    images = torch.where(masks, base, x) if mode == "deletion" else torch.where(masks, x, base)
    scores = _class_scores(bundle.model, images, int(target), score, batch_size, progress, mode)
    fractions = counts / cells
    return Curve(mode, fractions, scores, auc(fractions, scores))


def deletion_curve(bundle, x, target, score_map, **kw) -> Curve:
    return perturbation_curve(bundle, x, target, score_map, "deletion", **kw)


def insertion_curve(bundle, x, target, score_map, **kw) -> Curve:
    return perturbation_curve(bundle, x, target, score_map, "insertion", **kw)


# ---------------------------------------------------------------- model-parameter randomisation

def _param_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def parameter_groups(model: torch.nn.Module, max_groups: int = 8) -> list[tuple[str, list[torch.nn.Module]]]:
    """The model cut into at most `max_groups` named blocks that hold parameters, output side first.

    Starts from the model's children, splits the largest block into its own children while there are fewer
    than `max_groups`, then merges the smallest neighbours while there are too many (a ResNet-18 in 8 groups
    reads `fc, layer4.1, layer4.0, layer3, layer2, layer1, bn1, conv1`). Order is the order of definition,
    which for the zoo's networks is that of the forward pass.
    """
    def children(name: str, module: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
        if any(True for _ in module.parameters(recurse=False)):
            return []  # its own parameters would be lost by splitting it
        return [(f"{name}.{n}" if name else n, c) for n, c in module.named_children() if _param_count(c)]

    groups = children("", model) or [("model", model)]
    while len(groups) < max_groups:
        splittable = [i for i, group in enumerate(groups) if children(*group)]
        if not splittable:
            break
        i = max(splittable, key=lambda i: _param_count(groups[i][1]))
        groups[i:i + 1] = children(*groups[i])
    merged = [(name, [module]) for name, module in groups]
    while len(merged) > max(1, max_groups):
        sizes = [sum(map(_param_count, mods)) for _, mods in merged]
        i = min(range(len(merged) - 1), key=lambda i: sizes[i] + sizes[i + 1])
        (first, a), (_, b) = merged[i], merged[i + 1]
        merged[i:i + 2] = [(f"{first.split(' … ')[0]} … {merged[i + 1][0].split(' … ')[-1]}", a + b)]
    return merged[::-1]


def randomize_(modules: Sequence[torch.nn.Module]) -> int:
    """Re-initialise every sub-module that knows how (`reset_parameters`); returns how many did."""
    n = 0
    for m in (sub for module in modules for sub in module.modules()):
        if callable(getattr(m, "reset_parameters", None)):
            m.reset_parameters()
            n += 1
    return n


def private_copy(bundle):
    """A deep copy of `bundle` with its own model, safe to randomise (the copy is taken under `bundle.lock`)."""
    with bundle.lock:
        model = copy.deepcopy(bundle.model)
    for m in model.modules():  # a hook another thread had registered at copy time must not live on in the copy
        for hooks in (m._forward_hooks, m._forward_pre_hooks, m._backward_hooks, m._backward_pre_hooks):
            hooks.clear()
    names = {id(m): n for n, m in bundle.model.named_modules()}
    copied = dict(model.named_modules())

    def same(module):
        return copied.get(names.get(id(module))) if module is not None else None

    return dataclasses.replace(bundle, model=model, target_layer=same(bundle.target_layer),
                               classifier=same(bundle.classifier), lock=threading.RLock())


@dataclass
class Cascade:
    layers: list[str]  # "original", then each group as it is re-initialised (cumulatively)
    maps: dict[str, list[np.ndarray]]  # method → heatmap at each stage
    similarity: dict[str, np.ndarray]  # method → Spearman ρ to the original map at each stage (1.0 first)
    errors: dict[str, str]  # method → why it could not run


ExplainFn = Callable[..., object]


def randomization_cascade(bundle, x: torch.Tensor, target: int, methods: Sequence[str | tuple[str, dict]], *,
                          max_groups: int = 8, absolute: bool = True, seed: int = 0,
                          explain_fn: ExplainFn = explain, progress: Progress | None = None) -> Cascade:
    """Re-initialise `bundle`'s model (a private copy) block by block from the output down; map every method.

    `methods` are method ids or `(id, options)` pairs; heatmaps are compared by absolute value when `absolute`
    (a sign flip of a gradient map is not a different explanation). `explain_fn` defaults to `explain`.
    """
    specs = [(m, {}) if isinstance(m, str) else (m[0], dict(m[1])) for m in methods]
    work = private_copy(bundle)
    groups = parameter_groups(work.model, max_groups)
    layers = ["original"] + [name for name, _ in groups]
    maps: dict[str, list[np.ndarray]] = {m: [] for m, _ in specs}
    errors: dict[str, str] = {}
    total, done = len(layers) * len(specs), 0
    with torch.random.fork_rng(devices=[]):  # reset_parameters draws from the global generator
        torch.manual_seed(seed)
        for stage, name in enumerate(layers):
            if stage:
                randomize_(groups[stage - 1][1])
            for method, options in specs:
                if method not in errors:
                    try:
                        heat = np.asarray(explain_fn(work, x, target, method=method, **options).heatmap)
                        maps[method].append(np.abs(heat) if absolute else heat)
                    except Exception as err:  # e.g. NotApplicable: report it, keep the other methods going
                        errors[method] = str(err) or type(err).__name__
                done += 1
                if progress:
                    progress(done / total, f"{name}: {method}")
    similarity = {m: np.array([spearman(ms[0], other) for other in ms]) for m, ms in maps.items() if m not in errors}
    return Cascade(layers, {m: v for m, v in maps.items() if m not in errors}, similarity, errors)
