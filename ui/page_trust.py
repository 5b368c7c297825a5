"""Trust page: can this map be trusted? The randomisation sanity check and deletion/insertion faithfulness."""
from __future__ import annotations

import numpy as np
import streamlit as st

from explainers import list_methods
from explainers.metrics import FILLS, Curve, deletion_curve, insertion_curve, randomization_cascade
from ui import estimates, jobs
from ui.common import explanation_store, literal, options_key, run_explain, watch_job
from ui.controls import method_controls
from ui.display import DisplaySettings, overlay_image
from ui.sidebar import current_input
from ui.layout import CHART_CONFIG
from presentation.lessons import faithfulness_figure, randomization_figure

DEFAULT_METHODS = ["saliency", "guided_backprop", "grad_cam", "integrated_gradients"]
STAYS_SIMILAR = 0.5  # mean Spearman ρ over the cascade above which a map "ignores the model"
CASCADE_PATH_NODES = 16  # steps / samples for path methods in the check: it ranks maps, it does not integrate


def cascade_options(opts: dict) -> dict:
    """The method's options with IG steps and EG samples capped: the check repeats each map for every stage."""
    return {k: min(v, CASCADE_PATH_NODES) if k in ("steps", "samples") and isinstance(v, int) else v
            for k, v in opts.items()}

chosen = current_input()
bundle = chosen.bundle
settings = method_controls(bundle, choose_methods=False)  # IG / SmoothGrad settings shared with Explore
infos = {info.id: info for info in list_methods()}
offered = [m for m, info in infos.items() if not info.applicable(bundle)]

st.title("Can these maps be trusted?")
st.markdown(f"**{bundle.title}**, class **{chosen.target_name}**, image {literal(chosen.source or chosen.image_id)}. "
            "Two checks that need no ground truth: does the map depend on what the model learned, and does "
            "removing what it points at actually change the model's mind?")
methods = st.multiselect("Methods to test", offered, default=[m for m in DEFAULT_METHODS if m in offered],
                         format_func=lambda m: infos[m].title, key="trust_methods",
                         help="Integrated Gradients and SmoothGrad use the settings of the sidebar (as on Explore).")
if not methods:
    st.info("Pick at least one method to test.")
    st.stop()
options = {m: settings.options_for(infos[m]) for m in methods}
titles = {m: infos[m].title for m in methods} | {"random": "random order"}
if "score_cam" in methods:
    st.caption("Score-CAM runs one forward per channel: the randomisation check repeats it for every layer group.")
store = explanation_store()


def progress_bar(label: str):
    bar = st.progress(0.0, text=f"{label}: starting…")
    return bar, lambda fraction, stage: bar.progress(float(min(max(fraction, 0.0), 1.0)), text=f"{label}: {stage}")


# ---------------------------------------------------------------- sanity check
st.header("Sanity check: randomise the model, layer by layer")
c1, c2 = st.columns(2)
groups = c1.slider("Layer groups to re-initialise", 3, 12, 8, key="trust_groups",
                   help="The network is cut into this many blocks; they are reset cumulatively from the output down.")
absolute = c2.toggle("Compare absolute values", True, key="trust_absolute",
                     help="A sign flip of a gradient map is not a different explanation (Adebayo et al. report both).")
key = ("trust-cascade", chosen.image_id, bundle.name, str(bundle.device), chosen.target, groups, absolute,
       options_key({m: cascade_options(options[m]) for m in methods}))
cascade = store.get(key)
job = jobs.running(key)
if cascade is None and job is None:
    requests = [(m, cascade_options(options[m])) for m in methods]
    runs = len(methods) * (groups + 1)
    passes = sum(estimates.passes(infos[m], o, bundle) for m, o in requests) * (groups + 1)
    seconds = passes * estimates.seconds_per_pass(bundle, chosen.x)
    st.caption(f"The check explains the image up to {runs} times ({len(methods)} method(s) × the trained model and "
               f"up to {groups} re-initialised stages) on a private copy of the model; path methods use at most "
               f"{CASCADE_PATH_NODES} steps here. It takes {estimates.plain_duration(seconds)} on this machine.")
    again = st.session_state.pop("go_trust_cascade", False)  # "Compute again" after a Cancel
    if st.button("Run the randomisation check", key="trust_run_cascade", icon=":material/shuffle:") or again:
        def work(progress):
            return randomization_cascade(bundle, chosen.x, chosen.target, requests, max_groups=groups,
                                         absolute=absolute, progress=progress)

        def keep(done: jobs.Job) -> None:
            if done.error is None:
                store.put(key, done.result)

        job = jobs.start_or_join(key, work, on_done=keep)
if cascade is None and job is not None:  # started now, or by an earlier run or another session: watch it
    cascade = watch_job(job, "Randomisation check", "trust_cascade")
if cascade is not None:
    for method, why in cascade.errors.items():
        st.warning(f"**{infos[method].title}** could not run here: {why}")
    if cascade.similarity:
        st.plotly_chart(randomization_figure(cascade.layers, cascade.similarity, titles), key="trust_cascade_chart",
                        config=CHART_CONFIG)
        mean_rho = {m: float(np.mean(rho[1:])) for m, rho in cascade.similarity.items() if len(rho) > 1}
        stayed = [f"{titles[m]} (mean ρ {r:.2f})" for m, r in mean_rho.items() if r > STAYS_SIMILAR]
        dropped = [titles[m] for m, r in mean_rho.items() if r <= STAYS_SIMILAR]
        text = ("Each point compares the map of a model whose top layers (down to the named block) were reset to "
                "random weights with the map of the trained model (Spearman rank correlation; 1 = same ranking). "
                "A map that explains the model must change when the model is destroyed. ")
        if stayed:
            text += (f"**{', '.join(stayed)}** stays similar while much of the network is random: such a map depends "
                     "on the image more than on what the model learned, and fails this check (guided backprop is "
                     "the famous case: it acts much like an edge detector). ")
        if dropped:
            text += f"**{', '.join(dropped)}** lose their resemblance at once, as they should."
        st.caption(text)
        with st.expander("The maps at every step", expanded=False):
            image = bundle.to_image(chosen.x)
            look = DisplaySettings(alpha=0.7, mode="absolute" if absolute else "signed")
            for method, maps in cascade.maps.items():
                st.markdown(f"**{titles[method]}**")
                st.image([overlay_image(image, m, look) for m in maps], width=96,
                         caption=[f"{layer} · ρ {rho:.2f}" for layer, rho in zip(cascade.layers,
                                                                               cascade.similarity[method])])

# ---------------------------------------------------------------- faithfulness
st.header("Faithfulness: delete or insert pixels in the map's order")
c1, c2, c3, c4 = st.columns(4)
fill = c1.selectbox("Removed pixels become", FILLS, key="trust_fill",
                    format_func={"blur": "a blurred copy", "black": "black", "mean": "the mean colour"}.get)
patch = c2.select_slider("Patch size (px)", [1, 4, 8, 16, 32], value=16, key="trust_patch")
steps = c3.select_slider("Points per curve", [8, 16, 24, 32, 48, 64], value=24, key="trust_steps")
rank_abs = c4.toggle("Rank by |attribution|", False, key="trust_rank_abs",
                     help="Off: positive evidence first (negative attributions last). On: magnitude first.")
curves: dict[str, tuple[Curve, Curve]] = {}
maps = {m: exp.heatmap for m in methods
        if (exp := run_explain(bundle, chosen.image_id, chosen.x, chosen.target, m, options[m])) is not None}
maps["random"] = np.random.default_rng(0).random(tuple(chosen.x.shape[-2:])).astype(np.float32)
todo = {}
for method, heat in maps.items():
    key = ("trust-curves", chosen.image_id, bundle.name, str(bundle.device), chosen.target, method,
           options_key(options.get(method, {})), fill, patch, steps, rank_abs)
    if (pair := store.get(key)) is not None:
        curves[method] = pair
    else:
        todo[method] = (key, np.abs(heat) if rank_abs else heat)
if todo:
    bar, progress = progress_bar("Deletion and insertion")
    try:
        for i, (method, (key, heat)) in enumerate(todo.items()):
            def step(fraction, stage, i=i, method=method):
                progress((i + fraction) / len(todo), f"{titles[method]}, {stage}")
            pair = tuple(curve(bundle, chosen.x, chosen.target, heat, steps=steps, patch=patch, fill=fill,
                               progress=lambda f, s, half=half: step((half + f) / 2, s))
                         for half, curve in enumerate((deletion_curve, insertion_curve)))
            store.put(key, pair)
            curves[method] = pair
    finally:
        bar.empty()
curves = {m: curves[m] for m in maps if m in curves}  # the chosen order, the random reference last
st.plotly_chart(faithfulness_figure(curves, titles), key="trust_curves_chart", config=CHART_CONFIG)
st.caption(f"The class probability of **{chosen.target_name}** as the top-ranked {patch}×{patch} patches are "
           "removed (left) or revealed on a blurred/blank image (right). A faithful map finds the evidence first: "
           "its deletion curve falls fastest and its insertion curve rises fastest. The dotted random order is the "
           "floor every method should beat. Removed regions are inputs the model never saw in training, so treat "
           "small differences with care.")

# ---------------------------------------------------------------- ranking
st.header("Ranking on this image")
rows = []
for method in [m for m in methods + ["random"] if m in curves]:
    deletion, insertion = curves[method]
    rho = cascade.similarity.get(method) if cascade is not None else None
    similar = float(np.mean(rho[1:])) if rho is not None and len(rho) > 1 else None
    if method == "random" and cascade is not None:
        similar = 1.0  # the same seeded map whatever the weights: it depends on nothing the model learned
    rows.append({"method": titles[method], "deletion AUC ↓": deletion.auc, "insertion AUC ↑": insertion.auc,
                 "randomisation similarity ↓": similar})
if rows:
    def ranks(column: str, best_low: bool) -> list[float]:
        values = np.array([np.nan if r[column] is None else r[column] for r in rows], dtype=float)
        order = np.where(np.isnan(values), np.inf, values if best_low else -values)
        return list(np.argsort(np.argsort(order, kind="stable"), kind="stable") + 1.0)
    columns = (("deletion AUC ↓", True), ("insertion AUC ↑", False), ("randomisation similarity ↓", True))
    per_column = [ranks(c, low) for c, low in columns]
    for i, row in enumerate(rows):
        row["mean rank"] = float(np.mean([r[i] for r in per_column]))
    rows.sort(key=lambda r: r["mean rank"])
    st.dataframe(rows, hide_index=True, key="trust_ranking",
                 column_config={c: st.column_config.NumberColumn(format="%.3f") for c, _ in columns}
                 | {"mean rank": st.column_config.NumberColumn(format="%.1f")})
    beaten = [r["method"] for r in rows if r["method"] != titles["random"]
              and r["mean rank"] > next(x["mean rank"] for x in rows if x["method"] == titles["random"])]
    st.caption("The random order is ranked with the methods: a method below it found less evidence than chance. "
               "Randomisation similarity is the mean Spearman ρ over the cascade above (lower: the map depends more "
               "on the learned weights; a random map depends on none, ρ = 1). One image is an anecdote; the ranking "
               "can change from photo to photo."
               + (f" Here random order ranks above **{', '.join(beaten)}**." if beaten else ""))
