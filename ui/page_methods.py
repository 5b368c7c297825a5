"""Methods page: every method's card — what it computes, its formula, what it is good for, its known weakness."""
from __future__ import annotations

import streamlit as st

from explainers import list_methods
from teaching.cards import card, card_ids
from ui.common import literal

FAMILIES = {
    "cam": ("Class activation maps", "Weigh the feature maps of one convolutional layer: coarse, class-discriminative."),
    "gradient": ("Gradients", "Backpropagate the class score to the pixels: fine-grained, but local and noisy."),
    "path": ("Path and reference methods", "Compare the input with a baseline: attributions that add up to the "
                                           "change of the output."),
    "perturbation": ("Perturbation", "Change the input and watch the output."),
    "option": ("Options of other methods", "Applied on top of a gradient or path method."),
}

st.title("Methods")
st.caption("One card per method. The same cards sit behind the *About* button of every tile on Explore; the "
           "Axioms and Trust pages test the claims made here.")
query = st.text_input("Filter", placeholder="e.g. baseline, saturation, ReLU", key="methods_filter").strip().lower()

family_of = {info.id: info.family for info in list_methods()}
by_family: dict[str, list[str]] = {}
for method in card_ids():
    by_family.setdefault(family_of.get(method, "option" if method == "smoothgrad" else "gradient"), []).append(method)

shown = 0
for family, (heading, blurb) in FAMILIES.items():
    methods = [m for m in by_family.get(family, []) if not query or query in " ".join(card(m).values()).lower()]
    if not methods:
        continue
    st.header(heading)
    st.caption(blurb)
    columns = st.columns(2, gap="medium")
    for i, method in enumerate(methods):
        c = card(method)
        with columns[i % 2].container(border=True, key=f"methods_card_{method}"):
            st.subheader(c["title"])
            st.markdown(c["what"])
            st.code(c["formula"], language=None, wrap_lines=True)
            st.markdown(f":green-badge[:material/thumb_up: Good for] {c['good_for']}")
            st.markdown(f":orange-badge[:material/warning: Weakness] {c['weakness']}")
            if c.get("reference"):
                st.caption(c["reference"] + (f" · method id `{method}`" if method in family_of else ""))
        shown += 1
if not shown:
    st.info(f"No card mentions {literal(query)}.")
