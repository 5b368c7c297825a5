"""Explanations as jobs (ui/jobs.py) and the click gate for slow work (ui/estimates.py)."""
from __future__ import annotations

import time
import uuid

import pytest
import torch
from streamlit.testing.v1 import AppTest

from conftest import ROOT, TinyImageNetCNN
from explainers import explain, model_untouched
from models import wrap
from ui import estimates, jobs


def slow_work(calls: list, seconds: float = 0.6, steps: int = 6):
    def work(progress):
        calls.append(1)
        for i in range(steps):
            time.sleep(seconds / steps)
            progress((i + 1) / steps, f"step {i + 1} / {steps}")
        return "done"
    return work


def test_one_job_per_key_whoever_asks_and_when():
    calls, stored = [], []
    key = ("job-test", uuid.uuid4().hex)
    first = jobs.start_or_join(key, slow_work(calls), on_done=lambda job: stored.append(jobs.running(key) is job))
    time.sleep(0.2)
    again = jobs.start_or_join(key, slow_work(calls))  # a rerun, or another session, while it runs
    assert again is first and first.fraction > 0
    assert first.done.wait(5) and first.result == "done" and first.error is None and first.seconds >= 0.6
    assert calls == [1] and stored == [True]  # the result is handed over before the job leaves the registry
    assert jobs.running(key) is None


def test_cancel_stops_at_the_next_progress_report():
    key = ("job-test", uuid.uuid4().hex)
    job = jobs.start_or_join(key, slow_work([], seconds=30, steps=300))
    time.sleep(0.3)
    asked = time.monotonic()
    job.cancel()
    assert job.done.wait(2) and time.monotonic() - asked < 2
    assert job.cancelled and job.result is None and jobs.running(key) is None


def test_a_cancelled_method_leaves_the_shared_model_untouched():
    torch.manual_seed(0)
    net = TinyImageNetCNN()
    bundle = wrap(net, target_layer=net.features, classifier=net.fc, input_size=(48, 48), name="tiny-cnn")
    x = torch.randn(1, 3, 48, 48)
    with model_untouched(bundle.model):
        job = jobs.start_or_join(("job-test", uuid.uuid4().hex), lambda progress: explain(
            bundle, x, 3, "integrated_gradients", steps=512, rule="riemann_left", batch_size=2, progress=progress))
        while job.fraction == 0 and not job.done.is_set():
            time.sleep(0.01)
        job.cancel()
        assert job.done.wait(5) and job.cancelled
    # The same bundle still explains correctly afterwards.
    assert explain(bundle, x, 3, "grad_cam").heatmap.shape == (48, 48)


def test_estimates_count_passes_and_learn_from_finished_jobs():
    from explainers import method_info

    torch.manual_seed(0)
    net = TinyImageNetCNN()
    bundle = wrap(net, target_layer=net.features, classifier=net.fc, input_size=(48, 48),
                  name=f"tiny-{uuid.uuid4().hex[:6]}")
    ig = method_info("integrated_gradients")
    assert estimates.passes(ig, {"steps": 64}, bundle) == 64
    assert estimates.passes(ig, {"steps": 64, "smooth": {"kind": "smoothgrad", "samples": 8}}, bundle) == 512
    assert estimates.passes(method_info("saliency"), {}, bundle) == 1
    channels = estimates.passes(method_info("score_cam"), {}, bundle) / estimates.FORWARD_ONLY
    assert channels == pytest.approx(next(m.out_channels for m in reversed(list(net.features.modules()))
                                          if isinstance(m, torch.nn.Conv2d)))
    windows = estimates.passes(method_info("occlusion"), {"window": 16, "stride": 8}, bundle) / estimates.FORWARD_ONLY
    assert windows == 5 * 5  # 48 px: windows start at 0, 8, ..., 32
    x = torch.randn(1, 3, 48, 48)
    probe = estimates.seconds_per_pass(bundle, x)
    assert probe > 0 and all(p.grad is None for p in bundle.model.parameters())
    estimates.record(bundle, 100, 100 * probe * 3)
    assert estimates.seconds_per_pass(bundle, x) == pytest.approx(2 * probe)  # the average moved halfway


def test_slow_work_waits_for_a_click_with_its_estimate(tiny_model, monkeypatch, explain_calls):
    monkeypatch.setattr(estimates, "CLICK_ABOVE_S", 0.0)  # everything counts as slow
    calls = explain_calls
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    at.session_state["methods"] = ["saliency"]
    at.run()
    assert not at.exception and calls == []
    start = next(b for b in at.button if b.label.startswith("Compute (about"))
    assert any("takes about" in c.value and "on this machine" in c.value for c in at.caption)
    start.click().run()
    assert not at.exception and calls == ["saliency"]
    assert "Saliency (gradient)" in [c for image in at.image for c in image.captions]
