"""Explore: the chosen photo and one tile per attribution method, then IG's convergence plots.

Run by app.py through st.navigation; the image, model and class come from the shared sidebar.
"""
import streamlit as st

from explainers import method_info
from ui.common import class_question, literal, run_explain
from ui.controls import SMOOTH_KINDS, method_controls
from ui.convergence import convergence_section
from ui.display import display_controls, explanation_tile
from ui.layout import presenting, tile_width
from ui.sidebar import current_input

chosen = current_input()
bundle = chosen.bundle
settings = method_controls(bundle)
display = display_controls()

if not presenting():  # on a projector the first screen is for the pictures
    st.header("Explore")
st.markdown(class_question(chosen))
st.caption(literal(chosen.source))

model_view = bundle.to_image(chosen.x)  # what the model sees: resized and centre-cropped
if not settings.methods:
    st.info("Pick one or more attribution methods in the sidebar.")

results = {}
grid = st.grid("auto", min_column_width=tile_width(), border=True, key="tiles")
with grid.cell():
    st.image(model_view, caption="Input as the model sees it", width="stretch")
    st.caption(f"{bundle.input_size[0]}×{bundle.input_size[1]} px, centre crop")
for method in settings.methods:
    info = method_info(method)
    options = settings.options_for(info)
    with grid.cell():
        exp = run_explain(bundle, chosen.image_id, chosen.x, chosen.target, method, options)
        if exp is None:
            st.caption(info.title)
            continue
        results[method] = (exp, options)
        title = info.title + (f" + {SMOOTH_KINDS[settings.smooth['kind']]}" if "smooth" in options else "")
        explanation_tile(exp, model_view, display, title=title, key=f"tile_{method}",
                         file_stem=f"{method}_{bundle.name}_class{chosen.target}_{chosen.image_id[:8]}")

if "integrated_gradients" in results:
    exp, options = results["integrated_gradients"]
    convergence_section(exp, bundle, chosen.x, steps=options.get("steps", settings.steps),
                        rule=options.get("rule", settings.rule), baseline=options.get("baseline", settings.baseline))
elif settings.methods:
    st.caption("Add *Integrated Gradients* to the methods to see whether its path integral converged.")
