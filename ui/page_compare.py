"""Compare classes: one method, two classes side by side (default: the top-1 and top-2 predictions).

A class-discriminative method (Grad-CAM) moves to the other object when the class changes; guided backprop
barely changes (Adebayo et al., 2018; Nie et al., 2018). The correlation between the two maps puts a number on it.
"""
import numpy as np
import streamlit as st

from explainers import list_methods
from ui.common import run_explain
from ui.controls import method_controls
from ui.display import display_controls, explanation_tile
from ui.sidebar import current_input

chosen = current_input()
bundle = chosen.bundle
settings = method_controls(bundle, choose_methods=False)  # the same IG/SmoothGrad settings as Explore (shared, persistent keys)
display = display_controls()

st.header("Compare classes")
st.markdown("Same photo, same method, two classes. A **class-discriminative** map moves to the evidence for "
            "each class; a map that stays put is showing the image's edges rather than the model's reasons. "
            "Try the *cat and espresso* sample with Grad-CAM, then with Guided Backprop.")

infos = {info.id: info for info in list_methods() if not info.applicable(bundle)}
if not infos:
    st.warning("No attribution method applies to this model.")
    st.stop()
ids = list(infos)
TABBY, ESPRESSO = 281, 967  # ImageNet classes of the cat-and-espresso sample


def class_label(index: int) -> str:
    return f"{bundle.category(index)} ({chosen.probabilities[index]:.1%})"


def tabby_vs_espresso() -> None:
    """The preset: the sample with both objects, its two classes, Grad-CAM (class-discriminative)."""
    st.session_state.update({"sample": "cat_and_espresso.jpg", "image_source": "sample", "compare_preset": True,
                             "compare_method": "grad_cam"})


# Class A follows the sidebar's class; B starts at the model's most probable other class. Both reset when the
# image, model or sidebar class change (to the preset's pair right after the preset was chosen).
if st.session_state.get("compare_for") != (chosen.image_id, bundle.name, chosen.target):
    st.session_state["compare_for"] = (chosen.image_id, bundle.name, chosen.target)
    other = next(index for index, _, _ in chosen.top(2) if index != chosen.target)
    st.session_state["compare_a"], st.session_state["compare_b"] = chosen.target, other
    if st.session_state.pop("compare_preset", False) and bundle.num_classes > ESPRESSO:
        st.session_state["compare_a"], st.session_state["compare_b"] = TABBY, ESPRESSO
st.button("Preset: tabby vs espresso", key="compare_preset_button", on_click=tabby_vs_espresso,
          icon=":material/coffee:", help="The cat-and-espresso sample with Grad-CAM for each of its two objects.")

method_col, a_col, b_col = st.columns([1, 1, 1])
if st.session_state.get("compare_method") not in ids:
    st.session_state["compare_method"] = "grad_cam" if "grad_cam" in ids else ids[0]
method = method_col.selectbox("Method", ids, format_func=lambda m: infos[m].title, key="compare_method",
                              persist_state="session")
class_a = a_col.selectbox("Class A", range(bundle.num_classes), format_func=class_label, key="compare_a")
class_b = b_col.selectbox("Class B", range(bundle.num_classes), format_func=class_label, key="compare_b")

model_view = bundle.to_image(chosen.x)
options = settings.options_for(infos[method])
maps = []
left, right = st.columns(2, gap="medium")
for column, target, tag in ((left, class_a, "a"), (right, class_b, "b")):
    with column, st.container(border=True):
        exp = run_explain(bundle, chosen.image_id, chosen.x, target, method, options)
        if exp is not None:
            maps.append(exp.heatmap)
            explanation_tile(exp, model_view, display, title=f"{infos[method].title} for {class_label(target)}",
                             key=f"compare_{tag}", file_stem=f"{method}_{bundle.name}_class{target}_{chosen.image_id[:8]}")

if len(maps) == 2:
    a, b = (np.abs(m).ravel().astype(np.float64) for m in maps)
    same_map = a.std() == 0 or b.std() == 0
    correlation = 1.0 if same_map else float(np.corrcoef(a, b)[0, 1])
    st.metric("Correlation between the two maps (|values|)", f"{correlation:.2f}",
              help="1 means the map ignores the class; near 0 or negative means it moved.")
    if class_a == class_b:
        st.caption("Both sides explain the same class; pick two different ones.")
    elif correlation > 0.9:
        st.caption("The map hardly changed between these classes: either the method ignores the class, or both "
                   "classes rest on the same evidence (two cat breeds do). Type another object's class into "
                   "Class B, e.g. *espresso* for the cat-and-espresso sample, and compare Grad-CAM with Guided "
                   "Backprop.")
    else:
        st.caption("The map moved with the class: here the method is class-discriminative.")
