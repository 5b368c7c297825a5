"""Axioms page: the seed's thought experiments as live, editable experiments run by the real explainers."""
from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from explainers import list_methods
from teaching.toy import (InvarianceNetA, InvarianceNetB, OneMinusReLU, SaturatingUnit, along_line, toy_bundle,
                            toy_input, values_and_gradients)
from ui.common import literal, run_explain
from ui.controls import method_controls
from ui.sidebar import current_input
from ui.layout import CHART_CONFIG
from presentation.lessons import attribution_bars_figure, function_path_figure, gradient_along_path_figure

TOY_IG = {"steps": 128, "rule": "gauss_legendre"}  # toys are cheap: enough steps that the quadrature is exact-ish


@st.cache_resource(show_spinner=False)
def toy(kind: str, steepness: float = 20.0):
    nets = {"sensitivity": OneMinusReLU, "invariance_a": InvarianceNetA, "invariance_b": InvarianceNetB}
    module = SaturatingUnit(steepness) if kind == "saturation" else nets[kind]()
    return toy_bundle(module, f"toy-{kind}-{steepness:g}")


def toy_attribution(bundle, x1: float, x2: float, method: str, options: dict | None = None) -> np.ndarray | None:
    """(a1, a2) from the real explainer on a toy net with baseline 0, or None (run_explain said why)."""
    options = dict(options or {})
    if method in ("integrated_gradients", "deeplift"):
        options["baseline"] = toy_input(0.0, 0.0, bundle.device)
    exp = run_explain(bundle, f"toy:{x1:.4f}:{x2:.4f}", toy_input(x1, x2, bundle.device), 0, method, options)
    return None if exp is None else exp.attribution[:2, 0, 0].astype(float)


def number(value: float | None, spec: str = ".3f") -> str:
    """A metric's text; "—" when the explainer could not run (run_explain has said why)."""
    return "—" if value is None else format(round(float(value), 6) + 0.0, spec)  # + 0.0: no "-0.000"


def toy_value(bundle, x1: float, x2: float = 0.0) -> float:
    with torch.no_grad():
        return float(bundle.model(toy_input(x1, x2, bundle.device))[0, 0])


st.title("Axioms, as experiments")
st.caption("Integrated Gradients was built to satisfy a few simple requirements that gradients break "
           "(Sundararajan, Taly & Yan, 2017). Each experiment below runs the app's real explainers on a tiny "
           "network you can change; the last one checks the same promise on the real model and your image.")

# ---------------------------------------------------------------- 1. Sensitivity(a)
st.header("1 · Sensitivity: a feature that changes the output must get credit")
plot, numbers = st.columns([3, 2], gap="large")
with numbers:
    st.markdown("Network: `f(x) = 1 − ReLU(1 − x)`, baseline `x′ = 0`.")
    x = st.slider("Input x", -1.0, 3.0, 2.0, 0.1, key="axioms_sensitivity_x")
    net = toy("sensitivity")
    change = toy_value(net, x) - toy_value(net, 0.0)
    ixg = toy_attribution(net, x, 0.0, "input_x_gradient")
    ig = toy_attribution(net, x, 0.0, "integrated_gradients", TOY_IG)
    st.metric("f(x) − f(x′)", number(change))
    a, b = st.columns(2)
    a.metric("Gradient × input", number(None if ixg is None else ixg[0]))
    b.metric("Integrated Gradients", number(None if ig is None else ig[0]))
with plot:
    xs = along_line(-1.0, 3.0, 401)
    values, grads = values_and_gradients(net.model, xs)
    st.plotly_chart(function_path_figure(xs[:, 0, 0, 0].numpy(), values.numpy(), grads.numpy(), 0.0, x,
                                         title="f and its gradient; the path from x′ to x shaded"),
                    key="axioms_sensitivity_chart", config=CHART_CONFIG)
if x > 1:
    st.caption(f"For x > 1 the function is flat, so its gradient is 0 and gradient × input says the input did "
               f"nothing, although f changed by {change:.2f}: gradients break **Sensitivity**. Integrated Gradients "
               "adds the gradient up along the whole shaded path, where it was 1 until x = 1, and gets the change.")
else:
    st.caption("Below x = 1 the function is linear and both methods agree. Drag x past 1 to see the gradient "
               "method lose the feature while Integrated Gradients keeps it.")

# ---------------------------------------------------------------- 2. Saturation
st.header("2 · Saturation: flat at both ends, the change happens in between")
plot, numbers = st.columns([3, 2], gap="large")
with numbers:
    st.markdown("Network: a sigmoid-like unit `f(x) = σ(k (x − 0.5))`, baseline `x′ = 0`.")
    k = st.slider("Steepness k", 4.0, 40.0, 20.0, 1.0, key="axioms_saturation_k")
    x = st.slider("Input x", 0.6, 2.0, 1.0, 0.05, key="axioms_saturation_x")
    net = toy("saturation", k)
    change = toy_value(net, x) - toy_value(net, 0.0)
    grad_base = toy_attribution(net, 0.0, 0.0, "saliency")
    grad_input = toy_attribution(net, x, 0.0, "saliency")
    ig_exp = run_explain(net, f"toy:{x:.4f}:0", toy_input(x, 0.0, net.device), 0, "integrated_gradients",
                         {**TOY_IG, "baseline": toy_input(0.0, 0.0, net.device)})
    a, b = st.columns(2)
    a.metric("Gradient at x′", number(None if grad_base is None else grad_base[0], ".2e"))
    b.metric("Gradient at x", number(None if grad_input is None else grad_input[0], ".2e"))
    a.metric("f(x) − f(x′)", number(change))
    b.metric("Integrated Gradients", number(None if ig_exp is None else ig_exp.attribution[0, 0, 0]))
with plot:
    path = along_line(0.0, x, 401)
    values, grads = values_and_gradients(net.model, path)
    trace = getattr(ig_exp, "trace", None)
    st.plotly_chart(gradient_along_path_figure(
        np.linspace(0, 1, 401), values.numpy(), grads.numpy(),
        None if trace is None else np.asarray(trace.alphas), None if trace is None else np.asarray(trace.cumulative),
        title="Along the path γ(α) = α·x: the output, IG's running sum, and the gradient"),
        key="axioms_saturation_chart", config=CHART_CONFIG)
st.caption("Both endpoints sit on the flat parts of the sigmoid, so the gradient there is almost 0: a saliency "
           "map of x (or of x′) would call the input irrelevant. The gradient spikes mid-path, where the unit "
           "switches; Integrated Gradients collects exactly that spike, and its running sum climbs to f(x) − f(x′). "
           "Deep networks saturate the same way, which is why photo-level gradients are noisy and small.")

# ---------------------------------------------------------------- 3. Implementation invariance
st.header("3 · Implementation invariance: same function, same attribution?")
st.markdown("Two networks that compute the same function with different internals:  \n"
            "`f(x₁, x₂) = ReLU(ReLU(x₁) − 1 − ReLU(x₂))`  and  `g(x₁, x₂) = ReLU(ReLU(x₁ − 1) − ReLU(x₂))`; "
            "baseline `(0, 0)`.")
plot, numbers = st.columns([3, 2], gap="large")
with numbers:
    x1 = st.slider("x₁", -1.0, 4.0, 3.0, 0.1, key="axioms_invariance_x1")
    x2 = st.slider("x₂", -1.0, 3.0, 1.0, 0.1, key="axioms_invariance_x2")
    net_a, net_b = toy("invariance_a"), toy("invariance_b")
    st.metric("f(x) = g(x)", number(toy_value(net_a, x1, x2)),
              help=f"f(x) − g(x) = {toy_value(net_a, x1, x2) - toy_value(net_b, x1, x2):.1e}")
    rows = {}
    for method, label in (("integrated_gradients", "IG"), ("deeplift", "DeepLIFT")):
        for net, name in ((net_a, "f"), (net_b, "g")):
            attribution = toy_attribution(net, x1, x2, method, TOY_IG if method == "integrated_gradients" else None)
            if attribution is not None:
                rows[f"{label} on {name}"] = attribution
with plot:
    if rows:
        st.plotly_chart(attribution_bars_figure(rows, ["x₁", "x₂"], title="Attributions of the two networks"),
                        key="axioms_invariance_chart", config=CHART_CONFIG)
if {"IG on f", "IG on g"} <= rows.keys():
    ig_gap = float(np.abs(rows["IG on f"] - rows["IG on g"]).max())
    text = f"IG gives both networks the same attributions (largest difference {ig_gap:.1e}): it only sees the function."
    if {"DeepLIFT on f", "DeepLIFT on g"} <= rows.keys():
        dl_gap = float(np.abs(rows["DeepLIFT on f"] - rows["DeepLIFT on g"]).max())
        text += (f" DeepLIFT applies its rule unit by unit, so the internals matter: here its two answers differ by "
                 f"up to {dl_gap:.2f}." if dl_gap > 1e-3 else
                 " DeepLIFT happens to agree at this input; try x₁ = 3, x₂ = 1 (there it gives (1.5, −0.5) vs (2, −1)).")
    st.caption(text + " Both still sum to f(x) − f(x′): completeness alone does not pin an attribution down.")

# ---------------------------------------------------------------- 4. Completeness on the real model
st.header("4 · Completeness on the real model")
chosen = current_input()
st.markdown(f"**{chosen.bundle.title}**, class **{chosen.target_name}**, image {literal(chosen.source or chosen.image_id)}. "
            "Path methods promise that the attributions add up to the change of the class logit between the "
            "baseline and the image: `Σ attribution = F(x) − F(x′)`.")
settings = method_controls(chosen.bundle, choose_methods=False)  # baseline, steps, rule: shared with Explore
infos = {info.id: info for info in list_methods()}
eg_default = int(infos["expected_gradients"].options.get("samples", 32)) if "expected_gradients" in infos else 32
samples = st.select_slider("Expected Gradients samples", sorted({8, 16, 32, 64, 128, eg_default}), value=eg_default,
                           key="axioms_samples", help="Baselines drawn; completeness holds only on average.")
st.caption(f"Baseline **{settings.baseline}**, {settings.steps} IG steps ({settings.rule.replace('_', ' ')}): change "
           "them in the sidebar; results computed on Explore with the same settings are reused.")


def options(method: str) -> dict:
    """The sidebar's options for the method (as Explore passes them, so cached results are shared)."""
    opts = settings.options_for(infos[method]) if method in infos else {}
    return opts | ({"samples": samples} if method == "expected_gradients" and samples != eg_default else {})


requests = [("integrated_gradients", "Integrated Gradients", options("integrated_gradients")),
            ("expected_gradients", "Expected Gradients", options("expected_gradients")),
            ("deeplift", "DeepLIFT", options("deeplift")),
            # One node at α = 1 with weight 1 is Σ ∇F(x)·(x − x′): what the plain gradient claims, measured the same way.
            ("integrated_gradients", "gradient × (x − x′)",
             {"steps": 1, "rule": "riemann_right", "baseline": settings.baseline})]
table = []
for method, label, options in requests:
    exp = run_explain(chosen.bundle, chosen.image_id, chosen.x, chosen.target, method, options, label=label)
    check = exp.completeness() if exp is not None else None
    if check is None:
        continue
    table.append({"method": label, "Σ attribution": check.sum_attribution, "F(x) − F(x′)": check.output_change,
                  "error Σ − ΔF": check.delta, "relative error": check.relative_error})
if table:
    st.dataframe(table, hide_index=True, key="axioms_completeness_table",
                 column_config={"relative error": st.column_config.NumberColumn(format="percent")})
    st.caption("IG's error shrinks as its steps grow (the Explore page's convergence plot shows how); DeepLIFT is "
               "exact by construction. For Expected Gradients the baseline is random, so its ΔF is F(x) minus the "
               "*average* F over the drawn baselines and completeness holds only in expectation: more samples, "
               "smaller error. The last row is the plain gradient's first-order guess (IG with a single step at "
               "the input): gradients are local slopes, so nothing makes them add up to the change of the output. "
               "Grad-CAM's map lives at the layer's resolution, after a ReLU, in arbitrary units: it is not built "
               "to add up to anything, so it has no completeness to check.")
