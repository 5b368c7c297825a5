"""Quadrature rules: Captum's nodes and weights (trapezoid weights fixed to sum to 1), exactness, nesting, limits."""
import numpy as np
import pytest
from captum.attr._utils.approximation_methods import approximation_parameters

from explainers.quadrature import MAX_STEPS, RULES, check_steps, nested_grids, nested_weights, nodes

CAPTUM_NAME = {"gauss_legendre": "gausslegendre"}


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("n", [2, 3, 7, 50, 64])
def test_nodes_and_weights_equal_captums(rule, n):
    step_sizes, alphas = approximation_parameters(CAPTUM_NAME.get(rule, rule))
    ours_a, ours_w = nodes(rule, n)
    # Captum's Riemann nodes come from a float32 linspace: about one ulp from k/n; ours are exact fractions.
    np.testing.assert_allclose(ours_a, alphas(n), rtol=0, atol=1e-6 if rule.startswith("riemann") else 1e-15)
    captum_w = np.array(step_sizes(n))
    if rule == "riemann_trapezoid":
        assert captum_w.sum() == pytest.approx((n - 1) / n)  # the flaw we avoid
        np.testing.assert_allclose(ours_w, captum_w * n / (n - 1), rtol=1e-12)
    else:
        np.testing.assert_allclose(ours_w, captum_w, rtol=1e-10, atol=1e-14)
    assert np.all(np.diff(ours_a) > 0) and 0 <= ours_a[0] and ours_a[-1] <= 1


@pytest.mark.parametrize("rule", RULES)
def test_weights_sum_to_one_for_every_step_count(rule):
    for n in [*range(2 if rule == "riemann_trapezoid" else 1, 40), 255, 256, 777, MAX_STEPS]:
        assert nodes(rule, n)[1].sum() == pytest.approx(1.0, abs=1e-12)


def test_gauss_legendre_large_n_fast_and_exact():
    # ours by Newton (O(n²)); numpy's leggauss, which Captum calls, takes ~15 s at 1024 on 2 cores
    x, w = np.polynomial.legendre.leggauss(200)
    a, v = nodes("gauss_legendre", 200)
    np.testing.assert_allclose(a, 0.5 * (x + 1), atol=1e-14)
    np.testing.assert_allclose(v, 0.5 * w, rtol=1e-9, atol=1e-14)
    a, v = nodes("gauss_legendre", MAX_STEPS)
    for k in (0, 1, 7, 40):
        assert np.dot(v, a ** k) == pytest.approx(1 / (k + 1), rel=1e-12)


def test_exactness_orders():
    for n in (1, 4, 9):  # Gauss–Legendre with n nodes integrates degree 2n−1 exactly
        a, w = nodes("gauss_legendre", n)
        assert np.dot(w, a ** (2 * n - 1)) == pytest.approx(1 / (2 * n), rel=1e-12)
    for rule in ("riemann_trapezoid", "riemann_middle"):  # exact on linear integrands
        a, w = nodes(rule, 5)
        assert np.dot(w, 3 * a + 1) == pytest.approx(2.5, rel=1e-12)
    a, w = nodes("riemann_left", 10)  # left sums under-estimate increasing integrands by h/2 · (f(1) − f(0))
    assert np.dot(w, a) == pytest.approx(0.5 - 0.05, rel=1e-12)


@pytest.mark.parametrize("rule, n, expected", [
    ("riemann_trapezoid", 33, [2, 3, 5, 9, 17, 33]),
    ("riemann_left", 32, [1, 2, 4, 8, 16, 32]),
    ("riemann_right", 12, [1, 2, 3, 4, 6, 12]),
    ("riemann_middle", 27, [1, 3, 9, 27]),
    ("riemann_middle", 32, [32]),
    ("gauss_legendre", 33, [1, 33]),
    ("gauss_legendre", 64, [64]),
])
def test_nested_grids(rule, n, expected):
    assert sorted(nested_grids(rule, n)) == expected
    full, _ = nodes(rule, n)
    for m, (idx, w) in nested_weights(rule, n).items():
        np.testing.assert_allclose(full[idx], nodes(rule, m)[0], atol=1e-12)
        assert w.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [0, 1025, -3, 2.5, "8", None, True])
def test_step_limits(bad):
    with pytest.raises(ValueError, match="steps"):
        check_steps(bad)


def test_rule_errors():
    with pytest.raises(ValueError, match="Unknown quadrature rule"):
        nodes("simpson", 8)
    with pytest.raises(ValueError, match="at least 2"):
        nodes("riemann_trapezoid", 1)
    assert check_steps(8.0) == 8
