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

st.set_page_config(page_title="CNN attribution explorer", page_icon=":material/visibility:", layout="wide",
                   initial_sidebar_state="expanded")

from ui.sidebar import render_shared_sidebar  # noqa: E402  (after set_page_config)

PAGES = [
    st.Page("ui/page_explore.py", title="Explore", icon=":material/image_search:", default=True),
    st.Page("ui/page_compare.py", title="Compare classes", icon=":material/compare:", url_path="compare"),
    st.Page("ui/page_axioms.py", title="Axioms", icon=":material/rule:", url_path="axioms"),
    st.Page("ui/page_trust.py", title="Trust", icon=":material/verified_user:", url_path="trust"),
    st.Page("ui/page_methods.py", title="Methods", icon=":material/menu_book:", url_path="methods"),
]

page = st.navigation(PAGES, position="top")
render_shared_sidebar()
page.run()
