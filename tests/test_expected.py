"""Expected Gradients: exactly the mean over its own draws, Captum's GradientShap in expectation, limits."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from captum.attr import GradientShap

from explainers import explain
from explainers.expected import draw
from models import wrap
from conftest import DEVICE, randn


def tiny_bundle():
    torch.manual_seed(4)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 6, 3), nn.SiLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))
    return wrap(net, categories=list("abc"), input_size=(10, 10), name="tiny")


def one_by_one(model, x, bases, alphas, target):
    """Each sample's gradient × (x − x'_s) at its own point, one forward/backward per sample."""
    out = []
    for base, alpha in zip(bases, alphas):
        p = (base[None] + alpha * (x - base[None])).requires_grad_(True)
        (g,) = torch.autograd.grad(model(p)[0, target], p)
        out.append((g * (x - base[None]))[0])
    return torch.stack(out)


def test_equals_mean_over_its_draws_one_by_one(resnet18, cat_image):
    x = torch.nn.functional.interpolate(resnet18.preprocess(cat_image), size=(32, 32), mode="bilinear")
    pool = randn(3, 3, 32, 32)
    exp = explain(resnet18, x, 11, "expected_gradients", samples=6, baselines=pool, seed=5)
    index, alphas = exp.extras["baseline_index"], torch.as_tensor(exp.extras["alphas"]).to(DEVICE)
    ref = one_by_one(resnet18.model, x, pool[index], alphas, 11).mean(0).cpu().numpy()
    assert np.abs(exp.attribution - ref).max() <= 1e-4 * np.abs(ref).max()
    with torch.no_grad():
        expected_base = float(resnet18.model(pool[index])[:, 11].mean())
        f_input = float(resnet18.model(x)[0, 11])
    assert exp.delta == pytest.approx(float(exp.attribution.sum()) - (f_input - expected_base), abs=1e-5)


def test_agrees_with_captum_gradientshap_in_expectation():
    bundle = tiny_bundle()
    model = bundle.model
    torch.manual_seed(0)
    x, pool = randn(1, 3, 10, 10), randn(5, 3, 10, 10)
    runs = [explain(bundle, x, 2, "expected_gradients", samples=512, baselines=pool, seed=s) for s in range(4)]
    ours = np.mean([r.attribution for r in runs], 0)
    n_ours = 4 * 512
    # per-pixel spread of one sample's contribution, from our own draws (recomputed in one batch)
    index = np.concatenate([r.extras["baseline_index"] for r in runs])
    alphas = torch.as_tensor(np.concatenate([r.extras["alphas"] for r in runs])).view(-1, 1, 1, 1).to(DEVICE)
    bases = pool[index]
    points = (bases + alphas * (x - bases)).requires_grad_(True)
    (g,) = torch.autograd.grad(model(points)[:, 2].sum(), points)
    contributions = (g * (x - bases)).detach().cpu().numpy()
    np.testing.assert_allclose(contributions.mean(0), ours, atol=1e-5 * np.abs(ours).max())
    variance = contributions.var(0, ddof=1)
    np.random.seed(0)
    torch.manual_seed(0)
    n_captum = 4096
    ref = GradientShap(model).attribute(x, pool, n_samples=n_captum, target=2)[0].detach().cpu().numpy()
    standard_error = np.sqrt(variance / n_ours + variance / n_captum) + 1e-12
    z = np.abs(ours - ref) / standard_error
    assert z.max() < 5.5  # a max over 300 pixels of |N(0, 1)|: ~3.5 expected; a wrong estimator lands far beyond
    assert np.median(z) < 1.2
    # the same check is sharp: an estimator with α fixed at ½ (midpoint IG per baseline) fails it
    mid = (pool + 0.5 * (x - pool)).requires_grad_(True)
    (gm,) = torch.autograd.grad(model(mid)[:, 2].sum(), mid)
    biased = (gm * (x - pool)).mean(0).detach().cpu().numpy()
    assert (np.abs(biased - ref) / standard_error).max() > 5.5


@pytest.mark.parametrize("kind", ["uniform", "gaussian", "blur", "black"])
def test_named_distributions_seeded(kind, resnet18, cat_image):
    x = torch.nn.functional.interpolate(resnet18.preprocess(cat_image), size=(32, 32), mode="bilinear")
    pool, index, alphas = draw(resnet18, x, kind, 8, seed=2)
    again = draw(resnet18, x, kind, 8, seed=2)
    assert torch.equal(pool, again[0]) and torch.equal(alphas, again[2])
    assert ((alphas >= 0) & (alphas < 1)).all() and len(set(alphas.tolist())) == 8
    distinct = len({tuple(pool[i].flatten()[:50].tolist()) for i in index.tolist()})
    assert distinct == (1 if kind == "black" else 8)
    exp = explain(resnet18, x, 0, "expected_gradients", samples=8, baselines=kind, seed=2)
    assert np.isfinite(exp.attribution).all() and exp.extras["baseline"].shape == (3, 32, 32)


def test_limits(resnet18):
    x = torch.zeros(1, 3, 32, 32)
    for bad in (dict(samples=0), dict(samples=513), dict(baselines="grey"), dict(baselines=torch.zeros(2, 3, 8, 8)),
                dict(baselines=torch.full((1, 3, 32, 32), float("nan")))):
        with pytest.raises(ValueError):
            explain(resnet18, x, 0, "expected_gradients", **bad)
