"""Several users at once on shared cached models: same results as one at a time, nothing left on the models.

Two levels: `explain` from 8 threads on shared bundles (float results compared), and 8 app sessions
(AppTest) run at once with different models and methods (the drawn heatmaps compared by content hash).
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from explainers import explain
from models import load_model

pytestmark = pytest.mark.slow

# (model, method, options): a mix that runs hooks, a per-thread function mode (guided backprop),
# plain gradients, seeded noise and a path integral side by side on the same module objects.
LIBRARY_JOBS = [
    ("resnet18", "grad_cam", {}), ("resnet18", "guided_backprop", {}), ("resnet18", "saliency", {}),
    ("resnet18", "integrated_gradients", {"steps": 8}), ("resnet18", "layer_cam", {}),
    ("resnet18", "saliency", {"smooth": {"kind": "smoothgrad", "samples": 4, "sigma": 0.1}, "seed": 3}),
    ("lite0", "grad_cam", {}), ("lite0", "deconvnet", {}),
]


def run_together(functions) -> list:
    """Call every function in its own thread, all released at once; re-raise the first failure."""
    barrier = threading.Barrier(len(functions))
    results, errors = [None] * len(functions), []

    def worker(i, fn):
        barrier.wait()
        try:
            results[i] = fn()
        except BaseException as err:  # noqa: BLE001 - reported below with its job
            errors.append((i, err))

    threads = [threading.Thread(target=worker, args=(i, fn)) for i, fn in enumerate(functions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise AssertionError(f"job {errors[0][0]} failed") from errors[0][1]
    return results


def model_state(model: torch.nn.Module):
    return ([m.training for m in model.modules()], [(p.requires_grad, p.grad is None) for p in model.parameters()])


def assert_untouched(model: torch.nn.Module, before) -> None:
    for m in model.modules():
        for name in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"):
            assert not getattr(m, name, {}), f"{type(m).__name__}.{name} left behind"
    assert model_state(model) == before


def test_explain_from_eight_threads_equals_sequential(resnet18, lite0, cat_image):
    bundles = {"resnet18": resnet18, "lite0": lite0}
    inputs = {"resnet18": torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)),
              "lite0": lite0.preprocess(cat_image)}
    before = {name: model_state(b.model) for name, b in bundles.items()}
    jobs = [lambda m=m, meth=meth, o=o: explain(bundles[m], inputs[m], 281, method=meth, **o)
            for m, meth, o in LIBRARY_JOBS]
    sequential = [job() for job in jobs]
    together = run_together(jobs)
    for (model, method, _), one, many in zip(LIBRARY_JOBS, sequential, together):
        scale = float(np.abs(one.attribution).max()) or 1.0
        np.testing.assert_allclose(many.attribution, one.attribution, rtol=1e-4, atol=1e-5 * scale,
                                   err_msg=f"{model}/{method} differs when run beside others")
        assert np.isfinite(many.heatmap).all()
    for name, bundle in bundles.items():
        assert_untouched(bundle.model, before[name])


# (model, methods, sample): different models and methods per session; saliency and guided backprop on the
# same module at the same time is the case a process-wide backward hook would get wrong.
SESSIONS = [
    ("efficientnet_lite0", ["grad_cam"], "cat.jpg"),
    ("efficientnet_lite0", ["saliency"], "coffee.jpg"),
    ("efficientnet_lite1", ["grad_cam_pp"], "cat.jpg"),
    ("efficientnet_lite0", ["guided_backprop"], "coffee.jpg"),
    ("efficientnet_lite1", ["layer_cam"], "rocket.jpg"),
    ("efficientnet_lite0", ["integrated_gradients"], "astronaut.jpg"),
    ("efficientnet_lite0", ["input_x_gradient"], "cat_and_espresso.jpg"),
    ("efficientnet_lite1", ["hires_cam", "cam"], "coffee.jpg"),
]


@contextlib.contextmanager
def one_streamlit_runtime():
    """Let overlapping AppTest runs share one Streamlit runtime, as sessions of a real server do.

    AppTest was written for one run at a time: each run installs a process-global mock `Runtime` (media
    files, cache storage) and config patch, and its teardown removes them, which would pull them from under
    the runs still going. Here the latest runtime stays reachable and the config patch is applied once.
    """
    import streamlit.testing.v1.app_test as app_test
    from streamlit.runtime import Runtime
    from streamlit.testing.v1.util import patch_config_options

    pinned = {}

    def instance(cls):
        if cls._instance is not None:
            pinned["runtime"] = cls._instance
        if "runtime" not in pinned:
            raise RuntimeError("Runtime hasn't been created!")
        return cls._instance if cls._instance is not None else pinned["runtime"]

    saved = Runtime.__dict__["instance"], Runtime.__dict__["exists"], app_test.patch_config_options
    Runtime.instance = classmethod(instance)
    Runtime.exists = classmethod(lambda cls: cls._instance is not None or "runtime" in pinned)
    app_test.patch_config_options = lambda options: contextlib.nullcontext()
    try:
        with patch_config_options({"global.appTest": True}):
            yield
    finally:
        Runtime.instance, Runtime.exists, app_test.patch_config_options = saved


def app_session(model: str, methods: list[str], sample: str):
    def run():
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
        at.session_state["model"], at.session_state["methods"] = model, methods
        at.session_state["sample"], at.session_state["ig_steps"] = sample, 8
        at.run()
        return {"exceptions": [e.value for e in at.exception], "errors": [e.value for e in at.error],
                "tiles": {c: url for im in at.image for c, url in zip(im.captions, im.value)}}
    return run


def test_eight_app_sessions_at_once_match_sequential_runs():
    import ui.common

    for name in {m for m, _, _ in SESSIONS}:
        load_model(name)  # the app's cached models are these same objects
    bundles = {name: load_model(name) for name in {m for m, _, _ in SESSIONS}}
    before = {name: model_state(b.model) for name, b in bundles.items()}
    jobs = [app_session(*s) for s in SESSIONS]

    ui.common.explanation_store.clear()  # every session computes its own maps, all at once
    with one_streamlit_runtime():
        together = run_together(jobs)
    ui.common.explanation_store.clear()
    sequential = [job() for job in jobs]

    for (model, methods, sample), many, one in zip(SESSIONS, together, sequential):
        label = f"{model} {methods} {sample}"
        assert many["exceptions"] == [] and many["errors"] == [], (label, many)
        assert len(many["tiles"]) >= 1 + len(methods), (label, list(many["tiles"]))  # IG adds its path images
        assert many["tiles"] == one["tiles"], f"{label}: the drawn maps differ from a run on its own"
    # Different inputs really gave different pictures (the comparison above is not vacuous).
    assert len({url for r in together for url in r["tiles"].values()}) >= len(SESSIONS) + 3
    for name, bundle in bundles.items():
        assert_untouched(bundle.model, before[name])


def test_sessions_asking_for_the_same_explanation_compute_it_once(monkeypatch):
    """A class opening the same sample: one session computes, the others wait and share its result."""
    import time
    import uuid
    from types import SimpleNamespace

    import explainers
    from explainers import Explanation
    from ui import common, jobs

    calls = []

    def slow_explain(bundle, x, target, method, progress=None, **options):
        calls.append(method)
        time.sleep(0.5)
        return Explanation(method, target, np.zeros((2, 2), np.float32), np.zeros((4, 4), np.float32))

    monkeypatch.setattr(explainers, "explain", slow_explain)
    bundle = SimpleNamespace(name="stub", device="cpu")
    image_id = f"lock-test-{uuid.uuid4()}"
    results = run_together([lambda: common.run_explain(bundle, image_id, None, 3, "grad_cam", {"steps": 1})] * 6)
    assert calls == ["grad_cam"]
    assert all(r is results[0] for r in results) and results[0] is not None
    assert all(k[0] != image_id for k in jobs._jobs)  # the finished job left the registry
