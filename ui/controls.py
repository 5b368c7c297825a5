"""The Explore page's method settings in the sidebar, and how they turn into `explain(...)` options.

Every widget has a key and `persist_state="session"`, so settings survive a visit to another page.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import streamlit as st

from explainers.baselines import BASELINES
from explainers.quadrature import ADAPTIVE, RULES

DEFAULT_METHODS = ("grad_cam", "integrated_gradients")  # cheap enough for the first view on 2 CPU cores
STEP_CHOICES = [4, 8, 16, 32, 64, 128, 256, 512]
DEFAULT_STEPS = 32
# The paper's right Riemann sum: its grids nest (32 steps contain 16, 8, 4, 2, 1), so one run draws the whole
# error-against-steps curve. Gauss–Legendre (the library's default, more accurate per step) has no nested grids,
# and the trapezoid on 2^k nodes only nests at 2.
APP_DEFAULT_RULE = "riemann_right"
TOLERANCE_CHOICES = [0.005, 0.01, 0.02, 0.05]  # the adaptive rule's target relative completeness error
DEFAULT_TOLERANCE = 0.01
SMOOTH_KINDS = {"off": "Off", "smoothgrad": "SmoothGrad", "smoothgrad_sq": "SmoothGrad²", "vargrad": "VarGrad"}
# Which of the page's settings each method takes, per the contract (plus whatever its MethodInfo declares).
PATH_OPTIONS = {"integrated_gradients": ("steps", "rule", "baseline"), "deeplift": ("baseline",)}
# Options the app sets where the library's default is too slow for a first view. Score-CAM on its 64 channels of
# highest mean activation: about 10× fewer forwards than all of them, its map's Pearson r with the full
# method's ≥ 0.98 on the sample images (bench/README.md).
APP_METHOD_OPTIONS = {"score_cam": {"top_k": 64}}


@dataclass(frozen=True)
class MethodSettings:
    methods: list[str]
    baseline: str = "black"
    steps: int = DEFAULT_STEPS
    rule: str = APP_DEFAULT_RULE
    tolerance: float = DEFAULT_TOLERANCE
    smooth: dict | None = None
    smooth_methods: tuple[str, ...] = ()  # which methods SmoothGrad applies to
    skipped: dict[str, str] = field(default_factory=dict)  # method id -> why it is not offered

    def options_for(self, info) -> dict:
        """The `explain` options for one method: only what it takes, so unrelated changes reuse its cache."""
        wanted = set(PATH_OPTIONS.get(info.id, ())) | (set(info.options) & {"steps", "rule", "baseline"})
        values = {"steps": self.steps, "rule": self.rule, "baseline": self.baseline}
        options = {name: values[name] for name in sorted(wanted)} | APP_METHOD_OPTIONS.get(info.id, {})
        if options.get("rule") == ADAPTIVE:
            options["tolerance"] = self.tolerance
        if self.smooth and info.smoothable and info.id in self.smooth_methods:
            options["smooth"] = dict(self.smooth)
            options["seed"] = 0  # reproducible noise: the same settings give the same (cached) map
        return options


def baseline_names() -> list[str]:
    return list(BASELINES)


def rule_names() -> list[str]:
    return list(RULES) + [ADAPTIVE]


def pretty_name(name: str) -> str:
    return name.replace("_", " ").replace("riemann", "Riemann").replace("gauss legendre", "Gauss–Legendre")


def method_controls(bundle, *, choose_methods: bool = True) -> MethodSettings:
    """Sidebar settings; `choose_methods=False` leaves out the method picker (pages that pick one themselves)."""
    from explainers import list_methods

    infos = {info.id: info for info in list_methods()}
    skipped = {mid: why for mid, info in infos.items() if (why := info.applicable(bundle))}
    offered = [mid for mid in infos if mid not in skipped]
    defaults = [m for m in DEFAULT_METHODS if m in offered] or offered[:2]
    st.session_state.setdefault("methods", defaults)
    # Keep the choice valid when the model changes (e.g. CAM on VGG): drop what no longer applies.
    st.session_state["methods"] = [m for m in st.session_state["methods"] if m in offered]
    with st.sidebar:
        st.subheader("Methods" if choose_methods else "Method settings")
        methods = st.session_state["methods"]
        if choose_methods:
            methods = st.multiselect("Attribution methods", offered, format_func=lambda m: infos[m].title, key="methods",
                                     persist_state="session",
                                     help="Each one becomes a tile. Results are cached: switching back is instant.")
        if skipped and choose_methods:
            st.caption("Not available for this model: " + "; ".join(
                f"**{infos[m].title}** ({why})" for m, why in skipped.items()))
        ig = infos.get("integrated_gradients")
        defaults_ig = ig.options if ig else {}
        with st.expander("Integrated Gradients / DeepLIFT", expanded=True):
            st.session_state.setdefault("ig_baseline", defaults_ig.get("baseline", "black"))
            baseline = st.selectbox("Baseline x′", baseline_names(), format_func=pretty_name, key="ig_baseline",
                                    persist_state="session",
                                    help="The reference input whose logit the attributions are measured against.")
            st.session_state.setdefault("ig_steps", DEFAULT_STEPS)
            steps = st.select_slider("Steps", STEP_CHOICES, key="ig_steps", persist_state="session",
                                     help="Gradient evaluations along the path; more steps, smaller completeness error. "
                                          "For the adaptive rule: the most it may spend.")
            st.session_state.setdefault("ig_rule", APP_DEFAULT_RULE)
            rule = st.selectbox("Quadrature rule", rule_names(), format_func=pretty_name, key="ig_rule",
                                persist_state="session",
                                help="How the path integral is approximated from the gradient samples. Adaptive "
                                     "places the samples where the integral is measurably wrong, until the "
                                     "tolerance is met or the steps are spent.")
            st.session_state.setdefault("ig_tolerance", DEFAULT_TOLERANCE)
            tolerance = st.select_slider("Tolerance (adaptive rule)", TOLERANCE_CHOICES, key="ig_tolerance",
                                         persist_state="session", format_func=lambda t: f"{t:.1%}",
                                         disabled=rule != ADAPTIVE,
                                         help="Target completeness error |Σ attribution − ΔF| / |ΔF|.")
        with st.expander("SmoothGrad"):
            kind = st.radio("Noise averaging", list(SMOOTH_KINDS), format_func=SMOOTH_KINDS.get, key="smooth_kind",
                            persist_state="session", horizontal=True,
                            help="Average the map over noisy copies of the input (Smilkov et al., 2017).")
            smoothable = [m for m in offered if infos[m].smoothable]
            st.session_state.setdefault("smooth_methods", [m for m in smoothable if infos[m].family == "gradient"])
            st.session_state["smooth_methods"] = [m for m in st.session_state["smooth_methods"] if m in smoothable]
            scope = st.multiselect("Apply to", smoothable, format_func=lambda m: infos[m].title, key="smooth_methods",
                                   persist_state="session", disabled=kind == "off",
                                   help="Path methods already average many gradients and take their samples times "
                                        "longer with noise, so by default only the gradient methods are smoothed.")
            samples = st.slider("Samples", 4, 64, 16, 4, key="smooth_samples", persist_state="session",
                                disabled=kind == "off")
            sigma = st.slider("Noise σ (fraction of the input range)", 0.05, 0.5, 0.15, 0.05, key="smooth_sigma",
                              persist_state="session", disabled=kind == "off")
    smooth = None if kind == "off" else {"kind": kind, "samples": int(samples), "sigma": float(sigma)}
    return MethodSettings(methods=list(methods), baseline=baseline, steps=int(steps), rule=rule,
                          tolerance=float(tolerance), smooth=smooth, smooth_methods=tuple(scope), skipped=skipped)
