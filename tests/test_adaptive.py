"""Adaptive Integrated Gradients: the panel rules' order, the exact per-panel error identity on a closed-form
network, the first round equal to a fixed rule, weights, the budget counted on the model, threads, bad input."""
import threading

import numpy as np
import pytest
import torch
import torch.nn as nn

from explainers import explain
from explainers.adaptive import LOBATTO, composite_lobatto, first_round_size, refine
from models import wrap


class SineOfLinear(nn.Module):
    """F(z) = sin(⟨w, z⟩ / 4 + 0.3): along the straight path its integral over any [a, b] is known in closed form."""

    def __init__(self, w):
        super().__init__()
        self.register_buffer("w", w)

    def forward(self, z):
        return torch.sin((z * self.w).flatten(1).sum(1, keepdim=True) / 4 + 0.3)


def sine_bundle():
    w = torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    return wrap(SineOfLinear(w), input_size=(4, 4), mean=(0, 0, 0), std=(1, 1, 1), categories=["f"], name="exp")


def tiny_cnn():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU6(), nn.MaxPool2d(3, 2, 1), nn.Conv2d(8, 8, 3),
                        nn.SiLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    return wrap(net, categories=list("abcd"), input_size=(16, 16), name="tiny")


def counted_rows(model):
    """Rows through grad-enabled forwards of `model` (what the budget is counted in), and the hook's handle."""
    rows = []
    handle = model.register_forward_pre_hook(
        lambda m, inputs: rows.append(inputs[0].shape[0]) if torch.is_grad_enabled() else None)
    return rows, handle


@pytest.mark.parametrize("points", sorted(LOBATTO))
def test_composite_rule_converges_at_its_order(points):
    """Gauss–Lobatto with q points is exact to degree 2q − 3, so halving the panels divides the error by 2^(2q − 2)."""
    exact = (np.exp(3.0) - 1) / 3
    errors = []
    for panels in (2, 4, 8):
        alphas, weights = composite_lobatto(np.linspace(0, 1, panels + 1), points)
        assert weights.sum() == pytest.approx(1.0, abs=1e-14) and np.all(np.diff(alphas) > 0)
        assert len(alphas) == first_round_size(points, panels)
        errors.append(abs(weights @ np.exp(3 * alphas) - exact))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(orders - (2 * points - 2)) < 0.15), orders


def test_simpson_weights_are_the_classical_ones():
    alphas, weights = composite_lobatto(np.linspace(0, 1, 5), 3)
    np.testing.assert_allclose(alphas, np.arange(9) / 8)
    np.testing.assert_allclose(weights, np.array([1, 4, 2, 4, 2, 4, 2, 4, 1]) / 24, rtol=1e-14)


def test_panel_errors_are_exact_on_a_closed_form_network():
    """e_p = Q_p − (F(b) − F(a)) per panel, with Q_p the panel's rule on the true integrand, in closed form."""
    bundle = sine_bundle()
    w = bundle.model.w
    x = w * 32 / (w * w).sum()  # F(γ(α)) = sin(8α + 0.3): every panel's error stays far above float32's noise
    x_base = torch.zeros_like(x)
    exp = explain(bundle, x, 0, "integrated_gradients", rule="adaptive", tolerance=1e-6, steps=25, baseline=x_base)
    w, d = bundle.model.w.double(), (x - x_base).double()
    c0, slope = float((w * x_base.double()).sum()) / 4 + 0.3, float((w * d).sum()) / 4

    def F(a):
        return np.sin(c0 + slope * np.asarray(a))

    def g(a):  # d/dα F(γ(α)) = ⟨∇F, x − x'⟩
        return slope * np.cos(c0 + slope * np.asarray(a))

    edges = exp.extras["panel_edges"]
    assert 9 < len(edges) < 17 and edges[0] == 0 and edges[-1] == 1  # it refined, and the panels cover the path
    t, wt = LOBATTO[3]
    widths = np.diff(edges)
    q = widths * (g(edges[:-1, None] + widths[:, None] * t) @ wt)
    expected = q - (F(edges[1:]) - F(edges[:-1]))
    scale = abs(F(1.0) - F(0.0))
    assert slope == pytest.approx(8.0, rel=1e-5)
    np.testing.assert_allclose(exp.extras["panel_errors"], expected, rtol=1e-2, atol=1e-6)  # float32 logits: ~5e-7 of noise
    assert np.abs(expected).min() > 5e-6  # every panel error is well above that noise
    # the panel errors add up to the whole completeness error: the trace's last entry and the delta
    assert exp.trace.steps_error[exp.extras["evaluations"]] == pytest.approx(abs(expected.sum()) / scale,
                                                                             rel=1e-3, abs=1e-6)
    assert exp.delta == pytest.approx(expected.sum(), rel=1e-2, abs=1e-6)
    assert exp.trace.endpoint_logits == (pytest.approx(F(0.0), abs=1e-6), pytest.approx(F(1.0), abs=1e-6))


def test_first_round_is_composite_simpson_from_the_trapezoid_rule():
    """With a budget of exactly the first round, adaptive is composite Simpson on 8 panels, which is
    (4 T₁₆ − T₈) / 3 from the fixed trapezoid rule's 17- and 9-node grids (Richardson)."""
    bundle = tiny_cnn()
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    first = first_round_size()
    assert first == 17
    # a noise baseline: at a constant image max-pool ties make the gradient at α = 0 depend on the chunk's size
    common = dict(baseline="uniform", seed=1)
    exp = explain(bundle, x, 2, "integrated_gradients", rule="adaptive", tolerance=1e-6, steps=first, **common)
    assert exp.extras["evaluations"] == first and exp.extras["rounds"] == [first] and not exp.extras["converged"]
    fine = explain(bundle, x, 2, "integrated_gradients", rule="riemann_trapezoid", steps=17, **common).attribution
    coarse = explain(bundle, x, 2, "integrated_gradients", rule="riemann_trapezoid", steps=9, **common).attribution
    simpson = (4 * fine.astype(np.float64) - coarse) / 3
    np.testing.assert_allclose(exp.attribution, simpson, rtol=0, atol=1e-5 * np.abs(simpson).max())
    np.testing.assert_allclose(exp.trace.alphas, np.arange(17) / 16)
    assert list(exp.trace.steps_error) == [first]


def test_trace_weights_and_budget_counted_on_the_model():
    bundle = tiny_cnn()
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(4)) * 3
    rows, handle = counted_rows(bundle.model)
    try:
        exp = explain(bundle, x, 1, "integrated_gradients", rule="adaptive", tolerance=1e-6, steps=50, batch_size=8)
    finally:
        handle.remove()
    tr = exp.trace
    assert sum(rows) == exp.extras["evaluations"] == len(tr.alphas) <= 50  # no row outside the budget
    assert not exp.extras["converged"]  # 1e-6 is out of reach in 50: said so, not hidden
    assert tr.weights.sum() == pytest.approx(1.0, abs=1e-12) and np.all(tr.weights >= 0)
    assert np.all(np.diff(tr.alphas) > 0) and tr.alphas[0] == 0 and tr.alphas[-1] == 1
    assert len(set(tr.alphas.tolist())) == len(tr.alphas)  # no node evaluated twice
    keys = list(tr.steps_error)
    assert keys == sorted(keys) and keys[0] == 17 and keys[-1] == exp.extras["evaluations"]
    assert sum(exp.extras["rounds"]) == keys[-1] and len(exp.extras["rounds"]) == len(keys)
    # the trace describes the result: its integrand, weighted, is the attribution's sum, and the cumulative ends there
    assert tr.cumulative[-1] == pytest.approx(float(exp.attribution.sum()), rel=1e-4, abs=1e-6)
    assert exp.completeness().relative_error == pytest.approx(tr.steps_error[keys[-1]], rel=1e-3, abs=1e-6)


def test_stops_once_within_tolerance():
    """A smooth integrand with a sharp step: converges, with nodes crowded at the step, in far fewer evaluations
    than a uniform rule of the same order needs."""
    def evaluate(a):
        return np.tanh(40 * (a - 0.3)), 40 / np.cosh(40 * (a - 0.3)) ** 2

    result = refine(evaluate, tolerance=1e-4, budget=400)
    assert result.converged and result.steps_error[len(result.alphas)] <= 1e-4
    assert result.weights.sum() == pytest.approx(1.0, abs=1e-12)
    near = np.mean(np.abs(result.alphas - 0.3) < 0.1)
    assert near > 0.5  # the nodes went where the integrand changes
    uniform = next(n for n in range(2, 200) if abs(composite_lobatto(np.linspace(0, 1, n + 1), 3)[1]
                                                   @ evaluate(composite_lobatto(np.linspace(0, 1, n + 1), 3)[0])[1]
                                                   - (np.tanh(28) + np.tanh(12))) <= 1e-4 * (np.tanh(28) + np.tanh(12)))
    assert len(result.alphas) < 2 * uniform + 1


def test_threads_share_one_bundle():
    bundle = tiny_cnn()
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    options = dict(rule="adaptive", tolerance=1e-3, steps=60, baseline="uniform", seed=2)
    solo = explain(bundle, x, 3, "integrated_gradients", **options)
    results = [None] * 3

    def run(i):
        results[i] = explain(bundle, x, 3, "integrated_gradients", **options)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r.trace.alphas, solo.trace.alphas)
        np.testing.assert_allclose(r.attribution, solo.attribution, atol=1e-5 * np.abs(solo.attribution).max())
    assert not bundle.model._forward_hooks and not bundle.model._forward_pre_hooks
    assert all(p.grad is None for p in bundle.model.parameters())


def test_bad_input():
    bundle = tiny_cnn()
    x = torch.zeros(1, 3, 16, 16)
    for bad in (dict(tolerance=0), dict(tolerance="1%"), dict(tolerance=True), dict(tolerance=2.0), dict(steps=2),
                dict(steps=1025), dict(rule="adaptve")):
        with pytest.raises(ValueError):
            explain(bundle, x, 0, "integrated_gradients", **{"rule": "adaptive", **bad})
    small = explain(bundle, x + 1, 0, "integrated_gradients", rule="adaptive", steps=5)  # budget below 17: fewer panels
    assert small.extras["evaluations"] <= 5 and small.trace.weights.sum() == pytest.approx(1.0)


def test_tile_text_and_figures_say_what_the_rule_did():
    from presentation.figures import ig_convergence_figure, steps_error_figure
    from ui.display import adaptive_summary

    bundle = tiny_cnn()
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(6))
    done = explain(bundle, x, 0, "integrated_gradients", rule="adaptive", tolerance=0.05, steps=200)
    spent = explain(bundle, x, 0, "integrated_gradients", rule="adaptive", tolerance=1e-6, steps=20)
    assert done.extras["converged"] and not spent.extras["converged"]
    error = done.completeness().relative_error
    assert adaptive_summary(done) == f"converged to {error:.1%} in {done.extras['evaluations']} gradient evaluations"
    assert adaptive_summary(spent).startswith("Not converged: the budget of 20 gradient evaluations ran out")
    assert adaptive_summary(explain(bundle, x, 0, "integrated_gradients", steps=4)) is None  # fixed rules: nothing
    marks = [t for t in ig_convergence_figure(done.trace).data if t.name.startswith("nodes")]
    assert len(marks) == 1 and list(marks[0].x) == done.trace.alphas.tolist()
    rounds = steps_error_figure(done.trace.steps_error, x_title="gradient evaluations", tolerance=0.05)
    assert rounds.layout.xaxis.title.text == "gradient evaluations"
    assert list(rounds.data[0].x) == sorted(done.trace.steps_error)
