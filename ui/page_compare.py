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
top = chosen.top(2)
order = [index for index, _, _ in top]


def class_label(index: int) -> str:
    return f"{bundle.category(index)} ({chosen.probabilities[index]:.1%})"


# Reset the two classes to top-1/top-2 whenever the image or model changes.
if st.session_state.get("compare_for") != (chosen.image_id, bundle.name):
    st.session_state["compare_for"] = (chosen.image_id, bundle.name)
    st.session_state["compare_a"], st.session_state["compare_b"] = order[0], order[-1]

method_col, a_col, b_col = st.columns([1, 1, 1])
method = method_col.selectbox("Method", ids, format_func=lambda m: infos[m].title, key="compare_method",
                              index=ids.index("grad_cam") if "grad_cam" in ids else 0, persist_state="session")
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
