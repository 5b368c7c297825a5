"""Helpers every page shares: the cached model, the user's current input, cached explanations.

How the pieces fit:
- `app.py` calls `ui.sidebar.render_shared_sidebar()` on every run *before* `pg.run()`. It draws the image
  picker (sample gallery, upload, camera), the model and the class, and stores the result in
  `st.session_state[INPUT_KEY]` as a `CurrentInput`. Because the sidebar is drawn on every page, its widgets
  (and the uploaded file) survive page switches.
- A page calls `ui.sidebar.current_input()` to get that object (if a page is run on its own, without `app.py`, the
  shared sidebar is drawn on demand) and `run_explain(...)` to get an `Explanation`.
- Explanations live in one process-wide LRU store keyed by (image hash, model, method, target, options):
  display-only settings (opacity, colour map, clipping) are not part of the key, so changing them recomputes
  nothing, and a class of students on the same sample shares the results.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import streamlit as st
import torch
from PIL import Image

import explainers  # explainers.explain looked up per call: tests count and replace it
from explainers import NotApplicable, method_info
from models import DEFAULT_MODEL, ImageError, ModelBundle, ModelUnavailable, load_model, read_image
from models.host_memory import release_freed_memory
from ui import estimates, jobs

log = logging.getLogger(__name__)

INPUT_KEY = "current_input"
EXPLANATION_CACHE_SIZE = 32  # an IG result keeps up to 64 gradient maps (~13 MB at 224 px); CAMs are tiny


@dataclass
class CurrentInput:
    """The image, model and class the user chose (see the module docstring for where it comes from)."""
    bundle: ModelBundle
    image: Image.Image          # PIL RGB, as decoded (before resize/crop)
    image_id: str               # sha1 of the image bytes: the cache key for everything derived from it
    x: torch.Tensor             # bundle.preprocess(image): (1, 3, H, W)
    target: int
    target_name: str
    source: str = ""            # "sample: cat.jpg", "upload: photo.png", "camera"
    probabilities: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # softmax over classes

    def top(self, k: int = 5) -> list[tuple[int, str, float]]:
        """The k most probable classes as (index, name, probability)."""
        order = np.argsort(-self.probabilities)[:k]
        return [(int(i), self.bundle.category(int(i)), float(self.probabilities[i])) for i in order]


def literal(text: str, limit: int = 120) -> str:
    """`text` (a file name, a search a user typed) as a Markdown code span: shown as typed, never a link, an image,
    HTML, a directive or formatting. Control characters (a blank line would end the span) become spaces."""
    text = "".join(" " if unicodedata.category(c)[0] == "C" else c for c in str(text))
    text = text if len(text) <= limit else text[:limit - 1] + "…"
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}"


def image_id_of(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()[:16]


# ---------------------------------------------------------------- models

@st.cache_resource(show_spinner="Loading the model…")
def _load_cached(name: str) -> ModelBundle:
    return load_model(name)


def get_bundle(name: str) -> ModelBundle:
    """The named model, loaded once per process; if it cannot be loaded, say why and use the default model."""
    try:
        return _load_cached(name)
    except ModelUnavailable as err:
        if name == DEFAULT_MODEL:
            raise
        st.warning(f"That model could not be loaded: {err}\n\nShowing the default model "
                   "instead.", icon=":material/swap_horiz:")
        return _load_cached(DEFAULT_MODEL)


# ---------------------------------------------------------------- images and predictions

@st.cache_resource(max_entries=32, show_spinner=False)
def _decode_cached(image_id: str, _data: bytes) -> Image.Image:
    # Keyed by the hash only (the bytes are not hashed again). Errors are not cached, so they show every run.
    return read_image(_data)


def decode_image(data: bytes) -> tuple[Image.Image, str]:
    """(RGB image, image id) for uploaded bytes; raises `ImageError` with a message for the user."""
    image_id = image_id_of(data)
    return _decode_cached(image_id, data), image_id


@st.cache_resource(max_entries=32, show_spinner=False)
def _preprocess_cached(image_id: str, model_name: str, device: str, _image: Image.Image, _bundle: ModelBundle):
    # A 12-megapixel phone photo takes a noticeable moment to resize; every rerun (an opacity change) reuses it.
    return _bundle.preprocess(_image)


def model_input(bundle: ModelBundle, image: Image.Image, image_id: str) -> torch.Tensor:
    """`bundle.preprocess(image)`, cached by (image, model). Callers must not modify it in place."""
    return _preprocess_cached(image_id, bundle.name, str(bundle.device), image, bundle)


@st.cache_resource(max_entries=64, show_spinner=False)  # one shared array: figures are cached per object
def _probabilities_cached(image_id: str, model_name: str, _x: torch.Tensor, _bundle: ModelBundle) -> np.ndarray:
    with torch.no_grad():
        logits = _bundle.model(_x)
    return torch.softmax(logits.float(), dim=1)[0].cpu().numpy()


def class_probabilities(bundle: ModelBundle, image_id: str, x: torch.Tensor) -> np.ndarray:
    """Softmax over all classes for this input, cached by (image, model)."""
    return _probabilities_cached(image_id, bundle.name, x, bundle)


# ---------------------------------------------------------------- explanations

class _LRU:
    def __init__(self, size: int):
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        return None

    def put(self, key, value) -> None:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


@st.cache_resource
def explanation_store() -> _LRU:
    """The process-wide store of computed explanations (shared by all sessions)."""
    return _LRU(EXPLANATION_CACHE_SIZE)


@st.cache_resource
def _figure_store() -> _LRU:
    return _LRU(64)


def cached_figure(owner: Any, name: str, build, *args, **kwargs):
    """`build(*args, **kwargs)`, once per `owner` object (an Explanation, a probabilities array) and `name`.

    The arguments must be determined by (owner, name). Building a plotly figure (validation, template
    copies) costs more than the rest of a rerun, and the figures only change when their data does.
    """
    key = (id(owner), name)
    store = _figure_store()
    hit = store.get(key)
    if hit is not None and hit[0] is owner:  # `is`: a new object may reuse a freed object's id
        return hit[1]
    figure = build(*args, **kwargs)
    store.put(key, (owner, figure))
    return figure


def options_key(options: dict) -> str:
    """A stable text key for an options dict (tensors are keyed by their bytes' hash)."""
    def encode(value: Any):
        if isinstance(value, torch.Tensor):
            return "tensor:" + hashlib.sha1(value.detach().cpu().numpy().tobytes()).hexdigest()[:16]
        if isinstance(value, np.ndarray):
            return "array:" + hashlib.sha1(value.tobytes()).hexdigest()[:16]
        return repr(value)
    return json.dumps(options, sort_keys=True, default=encode)


def method_title(method: str) -> str:
    try:
        return method_info(method).title
    except KeyError:
        return method


def run_explain(bundle: ModelBundle, image_id: str, x: torch.Tensor, target: int, method: str,
                options: dict | None = None, *, label: str | None = None):
    """`explainers.explain(...)`, cached by (image, model, method, target, options), computed as a job.

    Returns the `Explanation`, or None after showing why not: work waiting for a click (its estimate on the
    button), a cancelled job, `NotApplicable` as a warning, bad options or an unexpected failure as an error —
    never a traceback. A rerun while the job runs (any widget, a page switch, another session asking for the same
    result) watches the same job; it never starts again from zero.
    """
    options = dict(options or {})
    key = (image_id, bundle.name, str(bundle.device), method, int(target), options_key(options))
    store = explanation_store()
    cached = store.get(key)
    if cached is not None:
        return cached
    title = label or method_title(method)
    widget = hashlib.sha1(repr(key).encode()).hexdigest()[:12]  # widget keys of this result
    job = jobs.running(key)
    if job is None:
        n_passes = _passes(bundle, method, options)
        if not _may_start(bundle, x, n_passes, title, widget):
            return None

        def work(progress):
            return explainers.explain(bundle, x, target=int(target), method=method, progress=progress, **options)

        def finished(done: jobs.Job) -> None:
            if done.error is None:
                store.put(key, done.result)
                estimates.record(bundle, n_passes, done.seconds or 0.0)
                release_freed_memory()

        job = jobs.start_or_join(key, work, on_done=finished)
    return watch_job(job, title, widget)


def _passes(bundle, method: str, options: dict) -> float:
    try:
        return estimates.passes(method_info(method), options, bundle)
    except (KeyError, AttributeError):
        return 0.0


def _may_start(bundle, x, n_passes: float, title: str, widget: str) -> bool:
    """Whether the job may start now: quick work at once; slow or cancelled work on a click."""
    if st.session_state.pop(f"go_{widget}", False):  # Compute was clicked in the run before
        return True
    cancelled = st.session_state.get(f"cancelled_{widget}", False)
    try:
        seconds = n_passes * estimates.seconds_per_pass(bundle, x) if n_passes and x is not None else 0.0
    except (AttributeError, RuntimeError, ValueError):  # no model to time or an odd input: let explain() say
        seconds = 0.0
    if seconds <= estimates.CLICK_ABOVE_S and not cancelled:
        return True
    st.caption("Cancelled." if cancelled else f"{title} takes {estimates.plain_duration(seconds)} on this machine.")
    _start_button(f"Compute ({estimates.plain_duration(seconds)})" if seconds else "Compute again", widget)
    return False


def _go(widget: str) -> None:
    st.session_state[f"go_{widget}"] = True
    st.session_state.pop(f"cancelled_{widget}", None)


def _start_button(label: str, widget: str) -> None:
    st.button(label, key=f"start_{widget}", icon=":material/play_arrow:", on_click=_go, args=(widget,))


def watch_job(job: jobs.Job, title: str, widget: str):
    """Show the job's progress and a Cancel button until it ends; then its result, or why there is none."""
    if not job.done.is_set():
        slot = st.empty()
        with slot.container():
            bar = st.progress(job.fraction, text=f"{title}: {job.stage}")
            # on_click: the callback runs first thing in the next run, before any other tile is waited for.
            st.button("Cancel", key=f"cancel_{widget}", on_click=job.cancel, icon=":material/stop:",
                      type="tertiary")
        while not job.done.wait(0.2):
            bar.progress(job.fraction, text=f"{title}: {job.stage}")  # also where a rerun interrupts the wait
        slot.empty()
    err = job.error
    if err is None:
        return job.result
    if isinstance(err, jobs.JobCancelled):
        st.session_state[f"cancelled_{widget}"] = True  # later runs offer it on a click instead of restarting it
        st.caption("Cancelled.")
        _start_button("Compute again", widget)
    elif isinstance(err, NotApplicable):
        st.warning(f"**{title}** does not apply here: {err}", icon=":material/block:")
    elif isinstance(err, (ValueError, TypeError)):
        st.error(f"**{title}** could not run with these settings: {err}", icon=":material/error:")
    else:  # a bug in a method must not take the page down or show a traceback
        log.error("explain(%s) failed", title, exc_info=err)
        st.error(f"**{title}** failed unexpectedly ({type(err).__name__}). The other results are unaffected.",
                 icon=":material/error:")
    return None


UNSURE_BELOW = 0.2  # a top-1 probability under this: the object may not be one of the model's classes


def class_question(chosen: CurrentInput) -> str:
    """The page's question in Markdown, worded for the model's own answer or for a class the user picked."""
    top = chosen.top(1)[0]
    p = float(chosen.probabilities[chosen.target])
    if chosen.target == top[0]:
        text = f"Why does **{chosen.bundle.title}** see **{chosen.target_name}** ({p:.1%}) in this photo?"
    else:
        text = (f"What in this photo speaks for **{chosen.target_name}** according to **{chosen.bundle.title}**? "
                f"It gives that class {p:.1%}; its own answer is **{top[1]}** ({top[2]:.1%}).")
    if top[2] < UNSURE_BELOW:
        text += (f" The model is unsure (its top class has {top[2]:.0%}): the object may not be one of the "
                 f"{chosen.bundle.num_classes} classes it knows.")
    return text


def friendly_image_error(err: ImageError) -> None:
    st.error(f"That file could not be used: {err}", icon=":material/image_not_supported:")
