"""The Integrated Gradients convergence section: along α, error against steps, and the α scrubber."""
from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from presentation.figures import gradient_map_figure, ig_convergence_figure, interpolate, nearest_node, steps_error_figure
from ui.common import cached_figure
from ui.controls import pretty_name
from ui.layout import CHART_CONFIG

CAPTION_ALONG_ALPHA = ("Look where the two top curves meet at α = 1: the dashed running attribution should land on "
                       "the star F(x) − F(x′). A gap is the completeness error. Below, where the probability is "
                       "already flat and the mean |gradient| has collapsed, the model is saturated: the attribution "
                       "comes from the early part of the path.")
CAPTION_STEPS = ("Each point re-uses the same gradients on a coarser nested grid. The error should trend down as "
                 "steps grow (about 1/steps for left/right Riemann sums); bumps come from the network's kinks "
                 "along the path, and a plateau means more steps will not help.")
CAPTION_ROUNDS = ("Each point is one refinement round of the adaptive rule: the error of the whole path after that "
                  "many gradient evaluations. Every round splits the pieces of the path whose error — known "
                  "exactly, since F at both ends of each piece is known — is largest; the ticks on the α axis on "
                  "the left show where the nodes went.")
CAPTION_SCRUBBER = ("Slide α from the baseline (0) to the photo (1). Watch where the gradient is large: often "
                    "early on the path, at images the model barely recognises, and near zero once it is sure.")


def convergence_section(exp, bundle, x: torch.Tensor, *, steps: int, rule: str, baseline: str) -> None:
    """Plots of one IG explanation's trace; says what is missing instead of failing when the trace is partial."""
    trace = getattr(exp, "trace", None)
    st.subheader("Integrated Gradients: did the integral converge?")
    if trace is None:
        st.info("This Integrated Gradients result carries no trace to plot.")
        return
    adaptive = exp.extras.get("rule") == "adaptive" if exp.extras else False
    used = (f"a budget of {steps} gradient evaluations, {exp.extras.get('evaluations')} used" if adaptive
            else f"{steps} steps")
    st.caption(f"Baseline **{pretty_name(baseline)}**, rule **{pretty_name(rule)}**, {used}.")
    along, by_steps = st.columns([3, 2], gap="medium")
    with along:
        st.plotly_chart(cached_figure(exp, "along α", ig_convergence_figure, trace), key="ig_along_alpha",
                        config=CHART_CONFIG)
        st.caption(CAPTION_ALONG_ALPHA)
    with by_steps:
        if adaptive:
            st.plotly_chart(cached_figure(exp, "rounds", steps_error_figure, trace.steps_error,
                                          chosen=max(trace.steps_error), x_title="gradient evaluations",
                                          tolerance=exp.extras.get("tolerance")),
                            key="ig_steps_error", config=CHART_CONFIG)
            st.caption(CAPTION_ROUNDS)
        elif len(trace.steps_error) > 1:
            st.plotly_chart(cached_figure(exp, "steps", steps_error_figure, trace.steps_error, chosen=steps),
                            key="ig_steps_error",
                            config=CHART_CONFIG)
            st.caption(CAPTION_STEPS)
        else:
            error = next(iter(trace.steps_error.values()), None)
            st.info((f"Relative completeness error at {steps} steps: **{error:.2%}**. " if error is not None else "")
                    + f"{pretty_name(rule)} grids do not nest, so one run gives no error-against-steps curve: "
                    "pick the trapezoid or a Riemann rule to see it.")
    _alpha_scrubber(exp, trace, bundle, x)


def _alpha_scrubber(exp, trace, bundle, x: torch.Tensor) -> None:
    st.markdown("**Walk the path: γ(α) = x′ + α (x − x′)**")
    baseline = exp.extras.get("baseline") if exp.extras else None
    has_maps = trace.grad_maps is not None and len(trace.grad_maps) > 0
    map_alphas = np.asarray(trace.grad_map_alphas if getattr(trace, "grad_map_alphas", None) is not None
                            else trace.alphas, dtype=float)
    if baseline is None and not has_maps:
        st.info("This result has neither its baseline nor gradient maps, so the path cannot be shown.")
        return
    choices = [round(float(a), 3) for a in (map_alphas if has_maps else np.linspace(0, 1, 11))]
    alpha = st.select_slider("α", choices, value=choices[len(choices) // 2], key="ig_alpha",
                             format_func=lambda a: f"{a:.3f}")
    node = nearest_node(trace.alphas, alpha)
    image_col, grad_col, numbers_col = st.columns([2, 2, 1.5], gap="medium")  # room for "35.12" at 150 % zoom
    if baseline is not None:
        x_np = x.detach().cpu().numpy()[0]
        path_point = torch.from_numpy(interpolate(np.asarray(baseline, dtype=np.float32), x_np, alpha))
        image_col.image(bundle.to_image(path_point), caption=f"γ({alpha:.3f})", width="stretch")
    else:
        image_col.info("No baseline in this result to draw γ(α).")
    if has_maps:
        index = nearest_node(map_alphas, alpha)
        figure = cached_figure(exp, f"gradient map {index}", gradient_map_figure, trace.grad_maps[index],
                               title=f"∇F at α = {map_alphas[index]:.3f}")
        grad_col.plotly_chart(figure, key="ig_grad_map", config=CHART_CONFIG)
    else:
        grad_col.info("This result kept no gradient maps.")
    numbers_col.metric("target logit F(γ(α))", f"{float(trace.logits[node]):.2f}")
    numbers_col.metric("probability", f"{float(trace.probabilities[node]):.1%}")
    numbers_col.metric("mean |∇F|", f"{float(trace.grad_mean_abs[node]):.2e}")
    st.caption(CAPTION_SCRUBBER)
