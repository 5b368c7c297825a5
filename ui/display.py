"""Display settings (opacity, colour map, sign, clipping) and the tiles that show one explanation each.

Nothing here recomputes an explanation: tiles are drawn from cached `Explanation`s, so moving the opacity
slider only re-blends arrays.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from functools import partial

import numpy as np
import streamlit as st
from PIL import Image

from presentation.overlay import list_colormaps, overlay
from teaching.cards import card_markdown

SIGNED, ABSOLUTE = "signed", "absolute"
AUTO_CMAP = "auto"  # render's choice: diverging for signed maps, sequential for absolute ones


@dataclass(frozen=True)
class DisplaySettings:
    alpha: float = 0.5
    cmap: str = AUTO_CMAP
    mode: str = ABSOLUTE      # "signed": diverging map around 0; "absolute": magnitude only
    clip_percentile: float = 2.0



def colormaps() -> list[str]:
    return [AUTO_CMAP] + list(list_colormaps())


def display_controls(prefix: str = "display") -> DisplaySettings:
    """Overlay opacity, colour map, signed/absolute and clipping, in the sidebar; they persist across pages."""
    maps = colormaps()
    with st.sidebar:
        st.subheader("Display")
        alpha = st.slider("Overlay opacity", 0.0, 1.0, 0.5, 0.05, key=f"{prefix}_alpha", persist_state="session",
                          help="0 shows the photo only, 1 the heatmap only. Changing it recomputes nothing.")
        cmap = st.selectbox("Colour map", maps, key=f"{prefix}_cmap", persist_state="session",
                            format_func=lambda m: m.replace("_", "–") if m != AUTO_CMAP else "auto (by sign)",
                            help="Auto: blue–white–red for signed values (white is 0), inferno for absolute ones.")
        mode = st.radio("Values", [ABSOLUTE, SIGNED], horizontal=True, key=f"{prefix}_mode", persist_state="session",
                        help="Absolute: how much each pixel matters. Signed: positive evidence for the class vs "
                             "negative (CAM-family maps are ≥ 0 after their ReLU, so the two look alike).")
        clip = st.slider("Saturate the strongest % of the map", 0.0, 10.0, 2.0, 0.5, key=f"{prefix}_clip",
                         persist_state="session",
                         help="The colour scale tops out where the strongest few % of the attribution mass begins "
                              "(as Captum does): a handful of extreme gradient pixels no longer wash out the rest.")
    return DisplaySettings(alpha=alpha, cmap=cmap, mode=mode, clip_percentile=clip)


def overlay_image(image_hw3: np.ndarray, heatmap_hw: np.ndarray, settings: DisplaySettings) -> np.ndarray:
    """uint8 (H, W, 3) blend of the heatmap onto the image, as the settings say."""
    signed = settings.mode == SIGNED
    heatmap = np.asarray(heatmap_hw, dtype=np.float32)
    if not signed:
        heatmap = np.abs(heatmap)
    cmap = None if settings.cmap == AUTO_CMAP else settings.cmap
    return overlay(image_hw3, heatmap, signed=signed, cmap=cmap, alpha=settings.alpha,
                   clip_percentile=settings.clip_percentile)


def png_bytes(array_hw3: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array_hw3, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def method_card_markdown(method: str) -> str | None:
    """The method's card, if it has one."""
    try:
        return card_markdown(method)
    except KeyError:
        return None


def adaptive_summary(exp) -> str | None:
    """What the adaptive IG rule achieved, in words (None for other results)."""
    extras = exp.extras or {}
    check = exp.completeness()
    if extras.get("rule") != "adaptive" or check is None:
        return None
    evaluations = extras.get("evaluations")
    if extras.get("converged"):
        return f"converged to {check.relative_error:.1%} in {evaluations} gradient evaluations"
    return (f"Not converged: the budget of {extras.get('steps')} gradient evaluations ran out at "
            f"{check.relative_error:.1%} completeness error (tolerance {extras.get('tolerance', 0):.1%}). "
            "Raise the steps or the tolerance.")


def explanation_tile(exp, image_hw3: np.ndarray, settings: DisplaySettings, *, title: str, file_stem: str,
                     key: str) -> None:
    """One explanation: overlay, title, time, completeness error for path methods, downloads and the card."""
    blended = overlay_image(image_hw3, exp.heatmap, settings)
    st.image(blended, caption=title, width="stretch")
    facts = [f"computed in {exp.seconds:.2f} s"]
    check = exp.completeness()
    if check is not None:
        facts.append(f"completeness error {check.delta:+.3g}"
                     + (f" ({check.relative_error:.1%} of ΔF)" if check.output_change else ""))
    adaptive = adaptive_summary(exp)
    if adaptive and exp.extras.get("converged"):
        facts.append(adaptive)
    st.caption(" · ".join(facts))
    if adaptive and not exp.extras.get("converged"):
        st.warning(adaptive, icon=":material/warning:")
    row = st.container(horizontal=True, gap="small")  # natural widths, wraps in narrow tiles
    # Callables: the files are only made when someone clicks, not on every rerun.
    row.download_button("PNG", partial(png_bytes, blended), file_name=f"{file_stem}.png", mime="image/png",
                        key=f"{key}_png", on_click="ignore", icon=":material/download:", help="The overlay as shown")
    row.download_button("NPY", partial(npy_bytes, exp.attribution), file_name=f"{file_stem}.npy",
                        mime="application/octet-stream", key=f"{key}_npy", on_click="ignore",
                        icon=":material/download:",
                        help=f"The raw attribution, shape {tuple(exp.attribution.shape)} (numpy.load)")
    card = method_card_markdown(exp.method)
    if card:
        with row.popover("About", icon=":material/info:"):
            st.markdown(card)

