"""explain() refuses bad requests before any work, with one clear message; good requests give what they gave."""
from __future__ import annotations

import inspect
import time

import numpy as np
import pytest
import torch

from conftest import TinyImageNetCNN
from explainers import BadRequest, explain, list_methods, method_info
from explainers.registry import method_entry
from explainers.requests import CHECKS, MAX_INPUT_SIDE, accepted_options, check_request
from models import wrap

SIDE = 32


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    net = TinyImageNetCNN()
    return wrap(net, target_layer=net.features, classifier=net.fc, input_size=(SIDE, SIDE), name="tiny", device="cpu")


@pytest.fixture(scope="module")
def x():
    return torch.randn(1, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def forwards(tiny):
    """How many forward passes the model ran: a refused request runs none."""
    calls = []
    handle = tiny.model.register_forward_hook(lambda *_: calls.append(1))
    yield calls
    handle.remove()


def with_pixel(value, dtype=torch.float32):
    def make(x):
        bad = x.clone().to(dtype)
        bad[0, 1, 3, 4] = value
        return bad
    return make


same = None  # keep the good input
nan_sigma = {"kind": "smoothgrad", "samples": 4, "sigma": float("nan")}
# (method, input (a function of the good x, or a replacement), target, options, a phrase the message must hold)
BAD = {
    "nan pixel": ("saliency", with_pixel(float("nan")), 3, {}, "NaN"),
    "inf pixel": ("saliency", with_pixel(float("inf")), 3, {}, "infinite"),
    "float64 beyond float32": ("integrated_gradients", with_pixel(1e300, torch.float64), 3, {}, "infinite"),
    "int64 pixels": ("saliency", lambda x: (x * 50).long(), 3, {}, "floating-point"),
    "uint8 pixels": ("grad_cam", lambda x: torch.zeros(1, 3, SIDE, SIDE, dtype=torch.uint8), 3, {}, "floating-point"),
    "bool pixels": ("grad_cam", lambda x: x > 0, 3, {}, "floating-point"),
    "complex pixels": ("saliency", lambda x: x.to(torch.complex64), 3, {}, "floating-point"),
    "empty image": ("grad_cam", lambda x: torch.zeros(1, 3, 0, SIDE), 3, {}, "empty"),
    "rank 3": ("grad_cam", lambda x: x[0], 3, {}, r"\(1, 3, H, W\)"),
    "batch of 2": ("grad_cam", lambda x: x.repeat(2, 1, 1, 1), 3, {}, r"\(1, 3, H, W\)"),
    "4 channels": ("grad_cam", lambda x: torch.zeros(1, 4, SIDE, SIDE), 3, {}, r"\(1, 3, H, W\)"),
    "numpy input": ("grad_cam", lambda x: x.numpy(), 3, {}, "torch.Tensor"),
    "list input": ("grad_cam", lambda x: [[0.0]], 3, {}, "torch.Tensor"),
    "above the pixel limit": ("integrated_gradients", lambda x: torch.zeros(1, 3, 1025, 1025), 3, {}, "1024×1024"),
    "a long strip": ("saliency", lambda x: torch.zeros(1, 3, 1, 2_000_000), 3, {}, "at most"),
    "meta tensor": ("saliency", lambda x: torch.empty(1, 3, SIDE, SIDE, device="meta"), 3, {}, "meta"),
    "sparse tensor": ("saliency", lambda x: x.to_sparse(), 3, {}, "dense"),
    "float target": ("grad_cam", same, 2.7, {}, "integer"),
    "whole float target": ("grad_cam", same, 2.0, {}, "integer"),
    "bool target": ("grad_cam", same, True, {}, "integer"),
    "string target": ("grad_cam", same, "285", {}, "integer"),
    "None target": ("grad_cam", same, None, {}, "integer"),
    "numpy float target": ("grad_cam", same, np.float64(3), {}, "integer"),
    "1-d tensor target": ("grad_cam", same, torch.tensor([3]), {}, "integer"),
    "float tensor target": ("grad_cam", same, torch.tensor(3.0), {}, "integer"),
    "negative target": ("grad_cam", same, -1, {}, "out of range"),
    "target past the classes": ("grad_cam", same, 1000, {}, "out of range"),
    "huge numpy target": ("grad_cam", same, np.int64(10**12), {}, "out of range"),
    "misspelt layer": ("grad_cam", same, 3, {"lyer": 1}, "did you mean 'layer'"),
    "option of another method": ("saliency", same, 3, {"steps": 8}, "does not take"),
    "several unknown options": ("deeplift", same, 3, {"stpes": 8, "rule": "x"}, "options"),
    "batch_size True": ("score_cam", same, 3, {"batch_size": True}, "batch_size"),
    "batch_size string": ("score_cam", same, 3, {"batch_size": "8"}, "batch_size"),
    "batch_size fraction": ("score_cam", same, 3, {"batch_size": 2.9}, "batch_size"),
    "batch_size zero": ("score_cam", same, 3, {"batch_size": 0}, "batch_size"),
    "IG batch_size huge": ("integrated_gradients", same, 3, {"batch_size": 10**6}, "batch_size"),
    "steps fraction": ("integrated_gradients", same, 3, {"steps": 2.5}, "steps"),
    "steps string": ("integrated_gradients", same, 3, {"steps": "32"}, "steps"),
    "steps None": ("guided_ig", same, 3, {"steps": None}, "steps"),
    "steps NaN": ("integrated_gradients", same, 3, {"steps": float("nan")}, "steps"),
    "rule list": ("integrated_gradients", same, 3, {"rule": ["gauss_legendre"]}, "rule"),
    "baseline number": ("integrated_gradients", same, 3, {"baseline": 3}, "baseline"),
    "baseline wrong shape": ("deeplift", same, 3, {"baseline": torch.zeros(1, 3, 8, 8)}, "shape"),
    "baseline integers": ("deeplift", same, 3, {"baseline": torch.zeros(1, 3, SIDE, SIDE, dtype=torch.long)},
                          "floating point"),
    "baseline NaN": ("integrated_gradients", same, 3, {"baseline": torch.full((1, 3, SIDE, SIDE), float("nan"))},
                     "NaN"),
    "seed negative": ("integrated_gradients", same, 3, {"seed": -1}, "seed"),
    "seed string": ("expected_gradients", same, 3, {"seed": "0"}, "seed"),
    "trace string": ("integrated_gradients", same, 3, {"trace": "yes"}, "trace"),
    "samples bool": ("expected_gradients", same, 3, {"samples": True}, "samples"),
    "baselines empty batch": ("expected_gradients", same, 3, {"baselines": torch.zeros(0, 3, SIDE, SIDE)}, "shape"),
    "eps negative": ("grad_cam_pp", same, 3, {"eps": -1.0}, "eps"),
    "eps NaN": ("grad_cam_pp", same, 3, {"eps": float("nan")}, "eps"),
    "eps bool": ("grad_cam_pp", same, 3, {"eps": True}, "eps"),
    "layer by name": ("grad_cam", same, 3, {"layer": "features"}, "layer"),
    "layer of another model": ("grad_cam", same, 3, {"layer": torch.nn.ReLU()}, "own modules"),
    "smooth empty": ("saliency", same, 3, {"smooth": {}}, "smooth"),
    "smooth as a string": ("saliency", same, 3, {"smooth": "smoothgrad"}, "dict"),
    "smooth samples string": ("saliency", same, 3, {"smooth": {"kind": "smoothgrad", "samples": "8"}}, "samples"),
    "smooth sigma NaN": ("saliency", same, 3, {"smooth": nan_sigma}, "sigma"),
    "smooth on a CAM": ("grad_cam", same, 3, {"smooth": {"kind": "smoothgrad"}}, "does not take"),
    "unknown method": ("gradcam", same, 3, {}, "Unknown method"),
    "method not a string": (None, same, 3, {}, "Unknown method"),
    "progress not callable": ("saliency", same, 3, {"progress": "yes"}, "progress"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_requests_are_refused_clearly_before_any_work(name, tiny, x, forwards):
    method, make_input, target, options, phrase = BAD[name]
    given = x if make_input is None else make_input(x)
    start = time.perf_counter()
    with pytest.raises(BadRequest, match=phrase) as info:
        explain(tiny, given, target, method, **options)
    assert time.perf_counter() - start < 1.0 and forwards == []  # refused before the model ran
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)
    text = str(info.value)
    assert text and "\n" not in text and len(text) < 600 and "Traceback" not in text, text


def test_the_corpus_is_large_enough():
    assert len(BAD) >= 30


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_other_float_inputs_are_converted_to_the_models_dtype(dtype, tiny, x):
    given = x.to(dtype)
    as_float32 = given.float()  # what the conversion must give
    explain(tiny, x, 3, "integrated_gradients", steps=4)  # IG's footprint measured: both runs chunk alike
    for method, options in [("saliency", {}), ("grad_cam", {}), ("integrated_gradients", {"steps": 4})]:
        ours = explain(tiny, given, 3, method, **options)
        reference = explain(tiny, as_float32, 3, method, **options)
        assert ours.attribution.dtype == np.float32
        np.testing.assert_array_equal(ours.attribution, reference.attribution)


@pytest.mark.parametrize("target", [5, np.int64(5), np.int32(5), np.array(5), torch.tensor(5), torch.tensor(5).byte()])
def test_integer_targets_of_every_kind_give_the_same_map(target, tiny, x):
    exp = explain(tiny, x, target, "grad_cam")
    assert exp.target == 5 and type(exp.target) is int
    np.testing.assert_array_equal(exp.attribution, explain(tiny, x, 5, "grad_cam").attribution)


@pytest.mark.parametrize("info", list_methods(), ids=lambda info: info.id)
def test_declared_defaults_are_the_defaults(info, tiny, x):
    """Passing every declared option at its declared value changes nothing: the declaration is the truth."""
    small = {"steps": 4, "samples": 4}  # keep the run short: the same on both sides
    options = {k: small.get(k, v) for k, v in info.options.items()}
    plain = explain(tiny, x, 7, info.id, **{k: v for k, v in small.items() if k in info.options})
    spelled = explain(tiny, x, 7, info.id, **{**options, "seed": 0, **({"layer": None} if info.needs_layer else {})})
    np.testing.assert_array_equal(plain.attribution, spelled.attribution)


def test_every_method_declares_what_it_takes():
    for info in list_methods():
        entry = method_entry(info.id)
        parameters = inspect.signature(entry.run).parameters
        named = {n for n, p in parameters.items() if p.kind is p.KEYWORD_ONLY or p.default is not p.empty} - {"progress"}
        takes_more = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        accepted = set(accepted_options(info))
        assert named <= accepted, (info.id, named - accepted)  # nothing it reads is refused
        assert set(info.options) <= named or takes_more, info.id  # nothing declared is dropped on the floor
        assert accepted <= set(CHECKS), (info.id, accepted - set(CHECKS))  # and every option is checked


def test_the_apps_options_are_all_accepted(tiny, x):
    """The sidebar's options for every method (smoothing on and off) pass the checks without being run."""
    from ui.controls import STEP_CHOICES, MethodSettings, baseline_names, rule_names

    for smooth in (None, {"kind": "vargrad", "samples": 64, "sigma": 0.5}):
        for steps, rule, baseline in zip(STEP_CHOICES, rule_names() * 3, baseline_names() * 2):
            settings = MethodSettings(methods=[], baseline=baseline, steps=steps, rule=rule, smooth=smooth)
            for info in list_methods():
                check_request(info, tiny, x, 1, settings.options_for(info))


def test_the_largest_input_is_accepted(tiny):
    big = torch.zeros(1, 3, MAX_INPUT_SIDE, MAX_INPUT_SIDE)
    assert explain(tiny, big, 1, "grad_cam").heatmap.shape == (MAX_INPUT_SIDE, MAX_INPUT_SIDE)


def test_smooth_none_means_no_smoothing(tiny, x):
    np.testing.assert_array_equal(explain(tiny, x, 2, "grad_cam", smooth=None).attribution,
                                  explain(tiny, x, 2, "grad_cam").attribution)


@pytest.mark.parametrize("method", [info.id for info in list_methods()])
def test_layer_and_seed_are_common_options(tiny, x, method):
    """The contract's common options: every method takes them (those that read no layer ignore `layer`)."""
    info = method_info(method)
    quick = {name: 4 for name in ("steps", "samples") if name in info.options}
    exp = explain(tiny, x, 3, method, layer=tiny.target_layer, seed=0, **quick)
    assert np.isfinite(exp.heatmap).all()
