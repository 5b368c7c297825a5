"""presentation.figures: the plotly figures the app and the CLI share (pure functions of arrays, no streamlit)."""
from __future__ import annotations

import numpy as np
import pytest


def _trace(n: int = 9, *, converged: bool = True):
    from explainers import IGTrace

    alphas = np.linspace(0, 1, n)
    logits = 2.0 + 6.0 * np.sqrt(alphas)  # F(x') = 2, F(x) = 8: a saturating path
    increments = np.diff(logits, prepend=logits[0])
    cumulative = np.cumsum(increments) * (1.0 if converged else 0.5)
    return IGTrace(alphas=alphas, weights=np.full(n, 1 / n), logits=logits, probabilities=alphas ** 0.3,
                   grad_mean_abs=1 / (1 + 10 * alphas), cumulative=cumulative,
                   steps_error={2: 0.3, 4: 0.08, 8: 0.0}, endpoint_logits=(2.0, 8.0))


def test_convergence_figure_puts_the_target_where_the_running_sum_must_end():
    from presentation.figures import ig_convergence_figure

    by_name = {t.name: t for t in ig_convergence_figure(_trace()).data}
    logit = by_name["F(γ(α)) − F(x′)"]
    cumulative = by_name["cumulative attribution"]
    target = next(t for name, t in by_name.items() if name.startswith("F(x) − F(x′)"))
    assert logit.y[0] == 0 and target.x[0] == 1.0 and target.y[0] == pytest.approx(6.0)
    right = _trace()
    right.alphas = right.alphas[1:]
    right.logits = right.logits[1:]; right.cumulative = right.cumulative[1:]
    anchored = {t.name: t for t in ig_convergence_figure(right).data}
    assert anchored["cumulative attribution"].x[0] == 0 and anchored["cumulative attribution"].y[0] == 0
    assert cumulative.y[-1] == pytest.approx(target.y[0])  # converged: they meet at α = 1
    half = {t.name: t for t in ig_convergence_figure(_trace(converged=False)).data}["cumulative attribution"]
    assert half.y[-1] == pytest.approx(3.0)  # not converged: the gap is visible
    assert by_name["mean |∇F|"].yaxis != by_name["probability"].yaxis  # second axis for saturation


def test_steps_error_figure_is_log_log_and_survives_a_zero_error():
    from presentation.figures import steps_error_figure

    fig = steps_error_figure(_trace().steps_error, chosen=8)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    errors = fig.data[0].y
    assert list(fig.data[0].x) == [2, 4, 8] and np.all(errors > 0) and errors[0] == pytest.approx(0.3)
    assert fig.data[1].x[0] == 8  # the chosen step count is marked


def test_top_classes_figure_lists_the_most_probable_on_top():
    from presentation.figures import top_classes_figure

    bar = top_classes_figure(["tabby", "tiger cat", "lynx"], [0.6, 0.3, 0.1]).data[0]
    assert list(bar.hovertext) == ["lynx", "tiger cat", "tabby"]  # plotly draws bottom-up
    assert list(bar.x) == [0.1, 0.3, 0.6]
