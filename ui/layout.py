"""Presentation mode, for a projector: the sidebar starts folded, tiles are large (two per row on a 1280 px
screen at 150 % zoom) and so is the type. It is part of the address (`present=1`), so a link on a slide opens
the view ready to show; the sidebar's toggle switches it."""
from __future__ import annotations

import streamlit as st

PRESENT_KEY = "present"
# Plotly's toolbar sits over the legend on a phone; dragging still zooms and a double click resets.
CHART_CONFIG = {"displayModeBar": False}
TILE_WIDTH = {False: 250, True: 340}  # px: the narrowest a tile may get before the grid wraps
# Streamlit sizes its type and spacing in rem, so the root font size scales the whole page.
_STYLE = ("<style>html { font-size: 19px; } "
          "[data-testid='stMainBlockContainer'] { padding-top: 5rem; }</style>")


def presenting() -> bool:
    """Whether the view is in presentation mode: the toggle's state, else the address on a session's first run."""
    if PRESENT_KEY not in st.session_state:
        st.session_state[PRESENT_KEY] = st.query_params.get(PRESENT_KEY) == "1"
    return bool(st.session_state[PRESENT_KEY])


def presentation_style() -> None:
    if presenting():
        st.html(_STYLE)


def presentation_toggle() -> None:
    st.toggle("Presentation mode", key=PRESENT_KEY,
              help="Large tiles and type for a projector; the sidebar starts folded. The link keeps it (present=1).")


def tile_width() -> int:
    return TILE_WIDTH[presenting()]
