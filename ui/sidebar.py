"""The shared sidebar: which image, which model, which class. Drawn by app.py on every run, before the page.

Widgets drawn on every run keep their state across page switches, so the uploaded photo, the model and the
class stay put while the user moves between Explore, Compare, Axioms, Trust and Methods.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from presentation.figures import top_classes_figure
from models import DEFAULT_MODEL, ImageError, list_models
from models.image_io import MAX_UPLOAD_BYTES, UPLOAD_TYPES
from ui.common import (INPUT_KEY, CurrentInput, cached_figure, class_probabilities, decode_image,
                       friendly_image_error, get_bundle, literal, model_input)
from ui.layout import CHART_CONFIG, presentation_toggle

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "samples"
DEFAULT_SAMPLE = "cat.jpg"
# MIME types as well as extensions: the browser filters the file dialog either way, and with a MIME type in the
# list Streamlit leaves server-side checking to us. With extensions only, a mis-named file that slips past the
# browser (drag and drop, scripts) makes Streamlit raise before the script runs: an opaque error page instead of
# read_image's message.
UPLOAD_FILTER = [f"image/{kind}" for kind in ("jpeg", "png", "webp", "bmp", "gif", "tiff")] + UPLOAD_TYPES


def sample_names() -> list[str]:
    names = sorted(p.name for p in SAMPLES_DIR.glob("*.jpg"))
    return sorted(names, key=lambda n: n != DEFAULT_SAMPLE)  # the default first


@st.cache_data(show_spinner=False)
def _sample_bytes(name: str) -> bytes:
    return (SAMPLES_DIR / name).read_bytes()


def _pretty(name: str) -> str:
    return Path(name).stem.replace("_", " ")


SOURCE_KEY = "image_source"  # the input the user touched last: "sample", "upload" or "camera"
LAST_SAMPLE_KEY = "last_sample"  # the sample chosen last, shown when the user's own photo cannot be
PENDING_TARGET_KEY = "address_target"  # a class asked for by a link, applied once the image and model are known
NOTES_KEY = "address_notes"
IMAGE_PROBLEM_KEY = "image_problem"  # set when the user's own image could not be used, for the main area  # what a link asked for and did not get (ui.address shows them)


def _touched(source: str) -> None:
    st.session_state[SOURCE_KEY] = source


def _sample_clicked() -> None:
    if st.session_state.get("sample") is None:  # the lit chip clicked again: it stays the image shown
        st.session_state["sample"] = st.session_state.get(LAST_SAMPLE_KEY) or sample_names()[0]
    _touched("sample")


def _own_photos() -> dict:
    """The user's own images the widgets hold now (an upload, a camera shot), by source."""
    state = st.session_state
    return {"upload": state.get("upload"), "camera": state.get("camera") if state.get("use_camera") else None}


def _choose_image() -> tuple[bytes, str]:
    """The bytes of the chosen image (always something): the input touched last, else camera, upload, sample.

    One image is current and the sidebar shows which: a lit sample chip, or none lit while the user's own photo
    is shown; a sample chip switches to it, "Show … again" switches back to the user's photo."""
    st.subheader("Image")
    st.session_state[IMAGE_PROBLEM_KEY] = None
    samples = sample_names()
    own = _own_photos()
    last = st.session_state.get(SOURCE_KEY)
    if last is None:  # nothing touched yet this session: the user's photo if the widgets hold one
        last = next((source for source in ("camera", "upload") if own[source] is not None), "sample")
    if last != "sample" and own.get(last) is not None:
        st.session_state["sample"] = None  # no chip lit: the photo shown is the user's
    elif st.session_state.get("sample") not in samples:
        st.session_state["sample"] = st.session_state.get(LAST_SAMPLE_KEY) or samples[0]
    chip = st.pills("Sample photos", samples, format_func=_pretty, key="sample", on_change=_sample_clicked,
                    help="Bundled public-domain photos (see assets/samples/SOURCES.md).")
    sample = chip or st.session_state.get(LAST_SAMPLE_KEY) or samples[0]
    st.session_state[LAST_SAMPLE_KEY] = sample
    upload = st.file_uploader("…or your own photo", type=UPLOAD_FILTER, key="upload", on_change=_touched,
                              args=("upload",), help="JPEG, PNG, WebP, BMP, GIF or TIFF, up to 20 MB.",
                              max_upload_size=MAX_UPLOAD_BYTES // 2**20)
    photo = None
    if st.toggle("Use the camera", key="use_camera"):
        photo = st.camera_input("Take a photo", key="camera", on_change=_touched, args=("camera",))
    candidates = [] if last == "sample" else [(photo, "camera"), (upload, "upload")]
    candidates.sort(key=lambda candidate: candidate[1] != last)  # the one touched last first
    for widget_value, source in candidates:
        if widget_value is not None:
            data = widget_value.getvalue()
            try:
                decode_image(data)
                st.caption("A link to this page cannot carry your photo: it opens on a sample.")
                return data, f"{source}: {widget_value.name}"
            except ImageError as err:
                friendly_image_error(err)
                st.caption(f"Showing the sample *{_pretty(sample)}* meanwhile.")
                st.session_state[IMAGE_PROBLEM_KEY] = f"Your {source} could not be used (the sidebar says why): " \
                                                      f"showing the sample *{_pretty(sample)}* meanwhile."
    for source, widget_value in (("upload", upload), ("camera", photo)) if last == "sample" else ():
        if widget_value is not None:  # the user's photo is there but a sample is shown: one click back to it
            st.button(f"Show the {'uploaded' if source == 'upload' else 'camera'} photo again", key=f"use_{source}",
                      on_click=_touched, args=(source,), icon=":material/photo:")
    return _sample_bytes(sample), f"sample: {sample}"


def _choose_model():
    infos = {info.name: info for info in list_models()}
    names = list(infos)

    def label(name: str) -> str:
        info = infos[name]
        return info.title if info.available else f"{info.title} — not available"

    if st.session_state.get("model") not in names:
        st.session_state["model"] = DEFAULT_MODEL
    name = st.selectbox("Model", names, format_func=label, key="model",
                        help="EfficientNet-Lite models ship with the app and work offline; torchvision models "
                             "download their ImageNet weights on first use.")
    info = infos[name]
    if not info.available:
        fallback = infos[DEFAULT_MODEL].title
        st.warning(f"**{info.title}** is not installed on this server. Showing **{fallback}** instead.",
                   icon=":material/cloud_off:")
        with st.expander("Details for whoever runs the server"):
            st.caption(literal(info.why_unavailable or "", limit=400))
        if info.source == "torchvision" and st.button("Try to download its weights now", key="download_model"):
            return get_bundle(name)  # falls back to the default model with a notice if the download fails
        return get_bundle(DEFAULT_MODEL)
    return get_bundle(name)


def _choose_class(bundle, image_id: str, probabilities) -> int:
    """Top-5 chart plus a searchable select of every class; resets to the top-1 when image or model change."""
    top1 = int(probabilities.argmax())
    if st.session_state.get("target_for") != (image_id, bundle.name):
        st.session_state["target_for"] = (image_id, bundle.name)
        st.session_state["target"] = top1
        asked = st.session_state.pop(PENDING_TARGET_KEY, None)
        if asked is not None and asked < bundle.num_classes:
            st.session_state["target"] = asked
        elif asked is not None:
            st.session_state.setdefault(NOTES_KEY, []).append(
                f"The link's class {asked} was ignored: {bundle.title} "
                f"has classes 0 to {bundle.num_classes - 1}.")
    order = probabilities.argsort()[::-1][:5]
    st.subheader("Class")
    figure = cached_figure(probabilities, "top5", top_classes_figure, [bundle.category(int(i)) for i in order],
                           [float(p) for p in probabilities[order]])
    st.plotly_chart(figure, config=CHART_CONFIG, key="top5_chart")

    def label(index: int) -> str:
        return f"{bundle.category(index)} ({probabilities[index]:.1%})"

    return int(st.selectbox("Explain the class", range(bundle.num_classes), format_func=label, key="target",
                            help="Type to search all classes. The default is the model's top prediction."))


def render_shared_sidebar() -> CurrentInput:
    """Draw the shared sidebar and store the choice in `st.session_state[INPUT_KEY]`."""
    with st.sidebar:
        data, source = _choose_image()
        image, image_id = decode_image(data)  # the fallback sample always decodes
        st.subheader("Model")
        bundle = _choose_model()
        x = model_input(bundle, image, image_id)
        probabilities = class_probabilities(bundle, image_id, x)
        target = _choose_class(bundle, image_id, probabilities)
        presentation_toggle()
    chosen = CurrentInput(bundle=bundle, image=image, image_id=image_id, x=x, target=target,
                          target_name=bundle.category(target), source=source, probabilities=probabilities)
    st.session_state[INPUT_KEY] = chosen
    return chosen


def current_input() -> CurrentInput:
    """The image/model/class the user chose in the shared sidebar (drawn on demand if it has not been)."""
    chosen = st.session_state.get(INPUT_KEY)
    if chosen is None:
        chosen = render_shared_sidebar()
    return chosen


def show_image_problem() -> None:
    """In the main area too: on a phone the sidebar, where the reason is, starts folded."""
    problem = st.session_state.get(IMAGE_PROBLEM_KEY)
    if problem:
        st.warning(problem, icon=":material/image_not_supported:")
