"""The CAMs that need no gradient: their channel weights come from forwards or from the activations alone.

As in `cam`, a method is only its weights w (one per channel), and `cam.combine` forms ReLU(Σ_c w_c A_c):
    score_cam     w_c = p_target(x ⊙ norm(up(A_c)))                                    (Wang et al. 2020)
    eigen_cam     w = first right-singular vector of the centred (h·w, C) activations,
                  on the centred A (the projection on the first principal component)   (Muhammad & Yeasin 2020)
    ablation_cam  w_c = (F − F_{A_c ablated}) / F, F the target logit                  (Desai & Ramaswamy 2020)
Eigen-CAM and Ablation-CAM follow pytorch-grad-cam: numpy's SVD (its sign decides which way the map points), and
ablation sets the channel to 0, or to min(A) − 1e7 where the layer's minimum is not 0.
"""
from __future__ import annotations

import numpy as np
import torch

from .base import capture_output, replace_output, upsample, whole_number
from .cam import activations, combine, feature_map, resolve_layer, spatial_size
from .registry import register

MAX_CHANNELS = 1 << 16
ABLATION_OFFSET = 1e7  # pytorch-grad-cam's: below the minimum when 0 is not "off" for this layer


def _in_batches(channels: torch.Tensor, batch_size: int, progress, stage: str, score) -> torch.Tensor:
    """`score(batch of channel indices) -> (n,) values` over all `channels`, reporting progress per batch."""
    values = []
    for start in range(0, len(channels), batch_size):
        values.append(score(channels[start:start + batch_size]))
        if progress is not None:
            done = min(start + batch_size, len(channels))
            progress(done / len(channels), f"{stage} {done} / {len(channels)}")
    return torch.cat(values) if values else torch.zeros(0)


@register("score_cam", "Score-CAM", "cam", options={"batch_size": 32, "top_k": None}, needs_layer=True)
def score_cam(bundle, x, target, progress=None, layer=None, batch_size=32, top_k=None, **_):
    """Each channel, upsampled and scaled to [0, 1], masks the input; the class probability it keeps is its weight.

    Channels whose map is constant carry no location and cannot be scaled to [0, 1]; they get weight 0 (in a
    ReLU network most of them are all zeros, which would contribute nothing anyway), which also saves forwards.
    `top_k` keeps only the k informative channels of highest mean activation (the others get weight 0): k
    forwards instead of one per channel, at the cost measured in bench/README.md.
    """
    batch_size = whole_number(batch_size, "batch_size", 1, 1024)
    A = activations(bundle, x, layer)[0].clone()
    flat = A.flatten(1)
    informative = (flat.amax(dim=1) > flat.amin(dim=1)).nonzero().flatten()
    if top_k is not None:
        # A k above the layer's channel count means all of them (the app asks for the same k on every model).
        top_k = whole_number(top_k, "top_k (None: every channel)", 1, MAX_CHANNELS)
        order = flat[informative].mean(dim=1).argsort(descending=True, stable=True)
        informative = informative[order[:top_k]].sort().values
    weights = torch.zeros(A.shape[0], device=A.device, dtype=A.dtype)

    def kept_probability(channels):
        m = upsample(A[channels], spatial_size(x))  # per batch: all of them at input size may not fit in memory
        lo, hi = m.amin(dim=(1, 2), keepdim=True), m.amax(dim=(1, 2), keepdim=True)
        m = (m - lo) / (hi - lo).clamp_min(torch.finfo(m.dtype).tiny)
        return torch.softmax(bundle.model(x * m[:, None]).float(), dim=1)[:, target]

    with torch.no_grad():
        weights[informative] = _in_batches(informative, batch_size, progress, "masked forwards",
                                           kept_probability).to(device=A.device, dtype=A.dtype)
    result = combine(weights, A, spatial_size(x))
    result.extras["forwards"] = int(len(informative)) + 1
    return result


@register("eigen_cam", "Eigen-CAM", "cam", needs_layer=True)
def eigen_cam(bundle, x, target, progress=None, layer=None, **_):
    """Class-agnostic: the map is the same for every target (the first principal component of the features)."""
    A = activations(bundle, x, layer)[0].float()
    rows = A.flatten(1).T.cpu().numpy()        # (h·w, C): one row per location, as pytorch-grad-cam
    rows = np.nan_to_num(rows, nan=0.0)
    centred = rows - rows.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=True)
    weights = torch.from_numpy(vt[0].copy()).to(A.device)
    centred_A = torch.from_numpy(np.ascontiguousarray(centred.T)).to(A.device).view_as(A)
    return combine(weights, centred_A, spatial_size(x))


@register("ablation_cam", "Ablation-CAM", "cam", options={"batch_size": 32}, needs_layer=True)
def ablation_cam(bundle, x, target, progress=None, layer=None, batch_size=32, **_):
    """One forward per channel with that channel of the layer's output switched off; the drop of the target
    logit, relative to the logit, is the channel's weight. Channels already off everywhere would not change the
    logit and contribute 0 to the map whatever their weight, so they are skipped (fewer forwards, same map)."""
    batch_size = whole_number(batch_size, "batch_size", 1, 1024)
    layer = resolve_layer(bundle, layer)
    with torch.no_grad():
        with capture_output(layer) as outputs:
            logit = float(bundle.model(x)[0, target])
        A = feature_map(outputs, layer)[0].detach().clone()
        low = float(A.min())
        off = 0.0 if low == 0 else low - ABLATION_OFFSET
        channels = (A.flatten(1) != off).any(dim=1).nonzero().flatten()

        def ablated_logits(batch):
            n = len(batch)

            def ablate(output):
                out = A.expand(n, *A.shape).clone()
                out[torch.arange(n, device=A.device), batch] = off
                return out

            with replace_output(layer, ablate):
                return bundle.model(x.expand(n, *x.shape[1:]))[:, target]

        scores = _in_batches(channels, batch_size, progress, "ablated forwards", ablated_logits)
    weights = torch.zeros(A.shape[0], device=A.device, dtype=torch.float32)
    if logit != 0:
        weights[channels] = (logit - scores.float().to(A.device)) / logit
    result = combine(weights.to(A.dtype), A, spatial_size(x))
    result.extras.update(forwards=int(len(channels)) + 1, logit=logit)
    return result
