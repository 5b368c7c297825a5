"""Plotly figures of the Axioms and Trust pages, as pure functions of arrays (no streamlit)."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .style import GREY, LAYOUT, PALETTE, colour, headline

_LAYOUT = {**LAYOUT, "margin": dict(l=10, r=10, t=80, b=10)}  # room for a title above the legend


def function_path_figure(xs: np.ndarray, values: np.ndarray, gradients: np.ndarray, baseline: float, x: float,
                         *, title: str) -> go.Figure:
    """A 1-D function with its gradient; the straight path from the baseline to the input shaded."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_vrect(x0=min(baseline, x), x1=max(baseline, x), fillcolor=PALETTE[0], opacity=0.12, line_width=0,
                  layer="below")
    fig.add_trace(go.Scatter(x=xs, y=values, name="f(x)", line=dict(color=PALETTE[0], width=3)))
    fig.add_trace(go.Scatter(x=xs, y=gradients, name="f′(x)", line=dict(color=PALETTE[1], width=2, dash="dash")),
                  secondary_y=True)
    for at, label, line_colour in ((baseline, "baseline x′", GREY), (x, "input x", PALETTE[3])):
        fig.add_vline(x=at, line=dict(color=line_colour, dash="dot"), annotation_text=label,
                      annotation_position="bottom right")
    fig.update_layout(**_LAYOUT, height=360, title=headline(title), hovermode="x unified")
    fig.update_xaxes(title_text="x")
    fig.update_yaxes(title_text="f(x)", secondary_y=False)
    fig.update_yaxes(title_text="gradient f′(x)", secondary_y=True, showgrid=False)
    return fig


def gradient_along_path_figure(alphas: np.ndarray, values: np.ndarray, gradients: np.ndarray,
                               ig_alphas: np.ndarray | None = None, ig_cumulative: np.ndarray | None = None,
                               *, title: str) -> go.Figure:
    """f(γ(α)) and the gradient along the path; optionally IG's running attribution at its quadrature nodes."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    start = float(values[0])
    fig.add_trace(go.Scatter(x=alphas, y=values - start, name="f(γ(α)) − f(x′)", line=dict(color=PALETTE[0], width=3)))
    if ig_alphas is not None and ig_cumulative is not None:
        fig.add_trace(go.Scatter(x=ig_alphas, y=ig_cumulative, name="IG running attribution", mode="lines+markers",
                                 line=dict(color=PALETTE[2], width=2, dash="dash"), marker=dict(size=4)))
    fig.add_trace(go.Scatter(x=alphas, y=gradients, name="gradient at γ(α)", line=dict(color=PALETTE[1], width=2)),
                  secondary_y=True)
    fig.update_layout(**_LAYOUT, height=360, title=headline(title), hovermode="x unified")
    fig.update_xaxes(title_text="α (0 = baseline, 1 = input)", range=[0, 1])
    fig.update_yaxes(title_text="change of f", secondary_y=False)
    fig.update_yaxes(title_text="gradient", secondary_y=True, showgrid=False)
    return fig


def attribution_bars_figure(rows: Mapping[str, Sequence[float]], features: Sequence[str], *, title: str) -> go.Figure:
    """Grouped bars: one group per feature, one bar per (method, network) row."""
    fig = go.Figure()
    for i, (label, values) in enumerate(rows.items()):
        fig.add_trace(go.Bar(x=list(features), y=[float(v) for v in values], name=label,
                             marker_color=colour(i), text=[f"{float(v):.3g}" for v in values],
                             textposition="outside"))
    fig.update_layout(**_LAYOUT, height=360, title=headline(title), barmode="group")
    fig.update_yaxes(title_text="attribution", zeroline=True, zerolinecolor=GREY)
    return fig


def randomization_figure(layers: Sequence[str], similarity: Mapping[str, np.ndarray],
                         titles: Mapping[str, str] | None = None) -> go.Figure:
    """Spearman ρ to the original map against the cascade of re-initialised layers, one line per method."""
    titles = titles or {}
    fig = go.Figure()
    for i, (method, rho) in enumerate(similarity.items()):
        fig.add_trace(go.Scatter(x=list(layers), y=np.asarray(rho, dtype=float), name=titles.get(method, method),
                                 mode="lines+markers", line=dict(color=colour(i), width=2),
                                 hovertemplate="%{x}: ρ = %{y:.2f}<extra>" + titles.get(method, method) + "</extra>"))
    fig.add_hline(y=0, line=dict(color=GREY, dash="dot"))
    fig.update_layout(**_LAYOUT, height=400, title=headline("Similarity to the trained model's map as layers are reset"))
    fig.update_xaxes(title_text="re-initialised down to (cumulative, from the output)", type="category")
    values = np.concatenate([np.asarray(rho, dtype=float).ravel() for rho in similarity.values()] or [np.zeros(0)])
    values = values[np.isfinite(values)]
    low = min(-0.3, float(values.min()) - 0.05) if values.size else -0.3  # every point in view, 0 always shown
    fig.update_yaxes(title_text="Spearman ρ", range=[low, 1.05])
    return fig


def faithfulness_figure(curves: Mapping[str, tuple], titles: Mapping[str, str] | None = None) -> go.Figure:
    """Deletion (left) and insertion (right) curves: `curves` maps a method to its (deletion, insertion) pair.

    The legend gives each method's deletion / insertion AUC."""
    titles = titles or {}
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Deletion: lower area is better",
                                                        "Insertion: higher area is better"), horizontal_spacing=0.08)
    for i, (method, pair) in enumerate(curves.items()):
        line_colour = GREY if method == "random" else colour(i)
        dash = "dot" if method == "random" else "solid"
        name = f"{titles.get(method, method)}: {pair[0].auc:.3f} / {pair[1].auc:.3f}"
        for col, curve in enumerate(pair, start=1):  # one legend entry per method toggles both of its curves
            fig.add_trace(go.Scatter(x=curve.fractions, y=curve.scores, name=name, legendgroup=method,
                                     showlegend=col == 1, line=dict(color=line_colour, width=2, dash=dash), mode="lines",
                                     hovertemplate=f"%{{x:.0%}}: %{{y:.3f}}<extra>{curve.mode}, {name}</extra>"),
                          row=1, col=col)
    legend = dict(orientation="v", title=dict(text="AUC deletion / insertion"))
    fig.update_layout(**{**_LAYOUT, "margin": dict(l=10, r=10, t=40, b=10), "legend": legend}, height=380)
    fig.update_xaxes(title_text="fraction of the image removed", tickformat=".0%", row=1, col=1)
    fig.update_xaxes(title_text="fraction of the image revealed", tickformat=".0%", row=1, col=2)
    fig.update_yaxes(title_text="class score", row=1, col=1)
    return fig
