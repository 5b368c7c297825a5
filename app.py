"""Streamlit entry point: `streamlit run app.py` (or `make run`).

Draws the shared sidebar (image, model, class: `ui.sidebar`) on every run, then the chosen page. Pages are
plain scripts under ui/ that read the shared choice with `ui.sidebar.current_input()`.
"""
import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `streamlit run` from another directory

from ui.settings import enforce_project_settings  # noqa: E402

enforce_project_settings()  # upload limit, XSRF, hidden error details: whatever flags or other config files said

from ui.layout import presenting, presentation_style  # noqa: E402

# "auto": open beside the page on a desktop, folded away on a phone; a presentation starts with it folded.
st.set_page_config(page_title="CNN attribution explorer", page_icon=":material/visibility:", layout="wide",
                   initial_sidebar_state="collapsed" if presenting() else "auto")
presentation_style()

from ui.address import apply_query_params, show_notes, write_query_params  # noqa: E402  (after set_page_config)
from ui.sidebar import render_shared_sidebar, show_image_problem  # noqa: E402

PAGES = [
    st.Page("ui/page_explore.py", title="Explore", icon=":material/image_search:", default=True),
    st.Page("ui/page_compare.py", title="Compare classes", icon=":material/compare:", url_path="compare"),
    st.Page("ui/page_axioms.py", title="Axioms", icon=":material/rule:", url_path="axioms"),
    st.Page("ui/page_trust.py", title="Trust", icon=":material/verified_user:", url_path="trust"),
    st.Page("ui/page_methods.py", title="Methods", icon=":material/menu_book:", url_path="methods"),
]

page = st.navigation(PAGES, position="top")
apply_query_params()
with st.spinner("Loading the model…"):  # shown only if it takes a while (a cold start), in the main area
    chosen = render_shared_sidebar()
show_image_problem()
show_notes()
try:
    page.run()
finally:  # also when a page stops early: the address always reproduces the view
    write_query_params(chosen)
