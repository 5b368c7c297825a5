"""Plotly figures of explanations, as pure functions of arrays (no streamlit): the app, the CLI and the tests share them.

    fig = ig_convergence_figure(exp.trace)      # F(γ(α)) vs cumulative attribution; probability and saturation
    fig = steps_error_figure(exp.trace.steps_error)
    fig = top_classes_figure(names, probabilities)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .style import BLUE, GREEN, GREY, LAYOUT, ORANGE, VERMILION


def top_classes_figure(names: Sequence[str], probabilities: Sequence[float], *, height: int = 190) -> go.Figure:
    """Horizontal bars of the top classes, most probable on top."""
    names, probabilities = list(names), [float(p) for p in probabilities]
    fig = go.Figure(go.Bar(
        x=probabilities[::-1], y=[_short(n) for n in names[::-1]], orientation="h", marker_color=BLUE,
        text=[f"{p:.1%}" for p in probabilities[::-1]], textposition="auto", hovertext=names[::-1],
        hovertemplate="%{hovertext}: %{x:.2%}<extra></extra>",
    ))
    fig.update_layout(**{**LAYOUT, "margin": dict(l=0, r=0, t=0, b=0)}, height=height, showlegend=False)
    fig.update_xaxes(range=[0, 1], tickformat=".0%", showgrid=False, visible=False)
    fig.update_yaxes(automargin=True)
    return fig


def ig_convergence_figure(trace, *, title: str | None = None) -> go.Figure:
    """IG along the path, from one trace.

    Top panel: the target logit F(γ(α)), shifted to start at 0 (so it reads F(γ(α)) − F(x')), and the running
    attribution mass Σ_k w_k ⟨∇F(γ(α_k)), x − x'⟩; at α = 1 they meet when the integral converged.
    Bottom panel: the target's probability and the mean |gradient| along the path (where it collapses, the
    model is saturated and IG's attribution comes from the early part of the path).
    """
    alphas = np.asarray(trace.alphas, dtype=float)
    logits = np.asarray(trace.logits, dtype=float)
    cumulative = np.asarray(trace.cumulative, dtype=float)
    start = trace.endpoint_logits[0] if trace.endpoint_logits else logits[0]
    end = trace.endpoint_logits[1] if trace.endpoint_logits else logits[-1]
    path_alphas = alphas
    if trace.endpoint_logits and alphas[0] > 0:  # both curves are 0 at α = 0 by definition: draw it
        path_alphas = np.concatenate([[0.0], alphas])
        logits, cumulative = np.concatenate([[start], logits]), np.concatenate([[0.0], cumulative])
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.6, 0.4],
                        specs=[[{}], [{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=path_alphas, y=logits - start, name="F(γ(α)) − F(x′)", mode="lines+markers",
                             line=dict(color=BLUE, width=2), marker=dict(size=4)), row=1, col=1)
    fig.add_trace(go.Scatter(x=path_alphas, y=cumulative, name="cumulative attribution",
                             mode="lines+markers", line=dict(color=ORANGE, width=2, dash="dash"),
                             marker=dict(size=4)), row=1, col=1)
    fig.add_trace(go.Scatter(x=[1.0], y=[end - start], name="F(x) − F(x′) (target at α = 1)", mode="markers",
                             marker=dict(color=VERMILION, size=11, symbol="star")), row=1, col=1)
    fig.add_trace(go.Scatter(x=alphas, y=np.asarray(trace.probabilities, dtype=float), name="probability",
                             line=dict(color=GREEN, width=2)), row=2, col=1, secondary_y=False)
    fig.add_trace(go.Scatter(x=alphas, y=np.asarray(trace.grad_mean_abs, dtype=float), name="mean |∇F|",
                             line=dict(color=GREY, width=2, dash="dot")), row=2, col=1, secondary_y=True)
    # where the gradients were taken: one tick per node on the α axis (the adaptive rule crowds them)
    fig.add_trace(go.Scatter(x=alphas, y=np.zeros_like(alphas), name=f"nodes ({len(alphas)})", mode="markers",
                             marker=dict(color=BLUE, size=9, symbol="line-ns-open"),
                             hovertemplate="node at α = %{x:.4f}<extra></extra>"), row=2, col=1, secondary_y=False)
    fig.update_layout(**LAYOUT, height=480, title=title, hovermode="x unified")
    fig.update_xaxes(title_text="α (0 = baseline, 1 = input)", range=[-0.02, 1.02], row=2, col=1)
    fig.update_yaxes(title_text="logit", row=1, col=1)
    fig.update_yaxes(title_text="probability", range=[0, 1.02], tickformat=".0%", row=2, col=1, secondary_y=False)
    fig.update_yaxes(title_text="mean |∇F|", row=2, col=1, secondary_y=True, showgrid=False)
    return fig


def steps_error_figure(steps_error: dict[int, float], *, chosen: int | None = None, title: str | None = None,
                       x_title: str = "steps", tolerance: float | None = None) -> go.Figure:
    """Relative completeness error |Σ attribution − ΔF| / |ΔF| against the number of steps (or, for the adaptive
    rule, the gradient evaluations after each refinement round, with its tolerance), log–log."""
    steps = np.array(sorted(steps_error), dtype=float)
    errors = np.array([steps_error[int(s)] for s in steps], dtype=float)
    floor = np.finfo(np.float32).eps  # an exact zero cannot sit on a log axis
    fig = go.Figure(go.Scatter(x=steps, y=np.maximum(errors, floor), mode="lines+markers", name="relative error",
                               line=dict(color=BLUE, width=2), marker=dict(size=8),
                               hovertemplate="%{x:d} " + x_title + ": %{y:.2%}<extra></extra>"))
    if chosen is not None and chosen in steps_error:
        fig.add_trace(go.Scatter(x=[chosen], y=[max(steps_error[chosen], floor)], mode="markers", name="chosen",
                                 marker=dict(color=VERMILION, size=13, symbol="star")))
    line = 0.05 if tolerance is None else tolerance
    fig.add_hline(y=line, line=dict(color=GREY, dash="dot"), annotation_position="top right",
                  annotation_text=f"{line:.1%}" if tolerance is not None else "5 %")
    fig.update_layout(**LAYOUT, height=300, title=title, showlegend=False)
    fig.update_xaxes(type="log", title_text=x_title, tickvals=steps, ticktext=[str(int(s)) for s in steps])
    low, high = np.log10(max(errors.min(), floor)), np.log10(max(errors.max(), floor))
    decades = 10.0 ** np.arange(np.floor(low), np.ceil(high) + 1)  # one tick per decade: 0.1 %, 1 %, 10 %...
    fig.update_yaxes(type="log", title_text="relative completeness error", tickvals=decades,
                     ticktext=[f"{d:.3g}".replace("e-0", "e-") if d < 1e-4 else f"{d * 100:g} %" for d in decades])
    return fig


def gradient_map_figure(grad_map: np.ndarray, *, title: str | None = None, height: int = 300) -> go.Figure:
    """One signed gradient map (H, W) as a diverging heatmap centred on zero."""
    grad_map = np.asarray(grad_map, dtype=float)
    bound = float(np.percentile(np.abs(grad_map), 99)) or 1e-12
    fig = go.Figure(go.Heatmap(z=grad_map, zmin=-bound, zmax=bound, zmid=0, colorscale="RdBu_r", showscale=False,
                               hovertemplate="x %{x}, y %{y}: %{z:.3g}<extra></extra>"))
    fig.update_layout(**LAYOUT, height=height, title=title)
    fig.update_yaxes(autorange="reversed", scaleanchor="x", visible=False)
    fig.update_xaxes(visible=False)
    return fig


def interpolate(baseline: np.ndarray, x: np.ndarray, alpha: float) -> np.ndarray:
    """γ(α) = x′ + α (x − x′), the straight-line IG path."""
    return baseline + float(alpha) * (x - baseline)


def nearest_node(alphas: np.ndarray, alpha: float) -> int:
    return int(np.argmin(np.abs(np.asarray(alphas, dtype=float) - float(alpha))))


def _short(name: str, limit: int = 26) -> str:
    name = name.split(",")[0]
    return name if len(name) <= limit else name[: limit - 1] + "…"
