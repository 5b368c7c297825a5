"""The address bar reproduces the view: query parameters are read on a session's first run and written back on
every run, so a link on a slide opens every student on the same image, model, class, methods and IG settings.

Parameters and their meaning are fixed by ../shared/CONTRACT.md ("The app's address bar"). Reading is a pure
function (`parse_view`) from the parameters to widget values plus notes on what was ignored; the notes are shown on
the page, never raised.
"""
from __future__ import annotations

import streamlit as st

from explainers import list_methods
from explainers.baselines import BASELINES
from models import list_models
from ui.controls import STEP_CHOICES, rule_names
from ui.layout import PRESENT_KEY
from ui.sidebar import PENDING_TARGET_KEY, sample_names

APPLIED_KEY = "address_applied"
NOTES_KEY = "address_notes"
UPLOADED = "uploaded"  # the `sample` written for a view whose image cannot travel in a link
# Query parameter -> the widget key that holds it (methods and target as the sidebar and controls name them).
WIDGET_KEYS = {"sample": "sample", "model": "model", "target": PENDING_TARGET_KEY, "methods": "methods",
               "steps": "ig_steps", "rule": "ig_rule", "baseline": "ig_baseline"}


def parse_view(params: dict[str, str]) -> tuple[dict[str, object], list[str]]:
    """Widget key -> value for every valid parameter, and one plain sentence per ignored one."""
    values: dict[str, object] = {}
    notes: list[str] = []

    def accept(name: str, value: object) -> None:
        values[WIDGET_KEYS[name]] = value

    def ignore(name: str, why: str) -> None:
        notes.append(f"The link's {name} = {params[name]!r} was ignored: {why}.")

    if "sample" in params:
        stems = {name.rsplit(".", 1)[0]: name for name in sample_names()}
        if params["sample"] in stems:
            accept("sample", stems[params["sample"]])
        elif params["sample"] == UPLOADED:
            notes.append("This link was made with an uploaded photo, which cannot travel in a link: "
                         "it opens on the default sample instead.")
        else:
            ignore("sample", "the samples are " + ", ".join(sorted(stems)))
    if "model" in params:
        models = {info.name: info for info in list_models()}
        info = models.get(params["model"])
        if info is None:
            ignore("model", "the models are " + ", ".join(models))
        elif not info.available:
            ignore("model", f"{info.title} is not available on this server")
        else:
            accept("model", info.name)
    if "target" in params:
        text = params["target"]
        if text.isdigit() and int(text) < 100_000:
            accept("target", int(text))
        else:
            ignore("target", "a class is a whole number such as 281")
    if "methods" in params:
        known = [info.id for info in list_methods()]
        chosen = [m for m in params["methods"].split(",") if m]
        unknown = [m for m in chosen if m not in known]
        if unknown:
            notes.append(f"Unknown methods in the link were left out: {', '.join(unknown)}.")
        if chosen and len(unknown) < len(chosen):
            accept("methods", list(dict.fromkeys(m for m in chosen if m in known)))
    if "steps" in params:
        text = params["steps"]
        if text.isdigit() and int(text) in STEP_CHOICES:
            accept("steps", int(text))
        else:
            ignore("steps", "steps is one of " + ", ".join(map(str, STEP_CHOICES)))
    for name, allowed in (("rule", rule_names()), ("baseline", BASELINES)):
        if name in params:
            if params[name] in allowed:
                accept(name, params[name])
            else:
                ignore(name, f"the {name}s are " + ", ".join(allowed))
    return values, notes


def apply_query_params() -> None:
    """On the session's first run, put the link's view into the widgets' state before they are drawn."""
    if st.session_state.get(APPLIED_KEY):
        return
    st.session_state[APPLIED_KEY] = True
    values, notes = parse_view({name: st.query_params[name] for name in WIDGET_KEYS if name in st.query_params})
    for key, value in values.items():
        st.session_state[key] = value
    if values.get("sample"):
        st.session_state["image_source"] = "sample"
    st.session_state[NOTES_KEY] = notes


def show_notes() -> None:
    """What the link asked for and did not get, until the user dismisses it."""
    notes = st.session_state.get(NOTES_KEY)
    if not notes:
        return
    with st.container(border=True):
        for note in notes:
            st.warning(note, icon=":material/link_off:")
        if st.button("Dismiss", key="address_notes_dismiss"):
            st.session_state[NOTES_KEY] = []
            st.rerun()


def current_view(chosen) -> dict[str, str]:
    """The query parameters that reproduce what is on screen now."""
    state = st.session_state
    shown = chosen.source.split(": ", 1)[-1]  # "sample: cat.jpg": the image on screen, a fallback included
    view = {"sample": shown.rsplit(".", 1)[0] if chosen.source.startswith("sample") else UPLOADED,
            "model": chosen.bundle.name, "target": str(chosen.target)}
    if state.get(PRESENT_KEY):
        view[PRESENT_KEY] = "1"
    if state.get("methods"):
        view["methods"] = ",".join(state["methods"])
    for name in ("steps", "rule", "baseline"):
        if state.get(WIDGET_KEYS[name]) is not None:
            view[name] = str(state[WIDGET_KEYS[name]])
    return view


def write_query_params(chosen) -> None:
    view = current_view(chosen)
    if st.query_params.to_dict() != view:
        st.query_params.from_dict(view)
