"""Hardening: the bad-input corpus through read_image and through the app, limits, degenerate images."""
from __future__ import annotations

import importlib.util
import io
import json
import mimetypes
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from explainers import explain
from models import ImageError, read_image, wrap
from models.image_io import MAX_PIXELS, MAX_UPLOAD_BYTES
from conftest import shows_source

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "bad_inputs"
MANIFEST = json.loads((CORPUS / "MANIFEST.json").read_text())


def load_generator():
    spec = importlib.util.spec_from_file_location("make_corpus", CORPUS / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_user_message(text: str) -> None:
    """A message for a person: one short sentence-like line, no Python internals."""
    assert text and "\n" not in text and len(text) < 240, text
    assert "Traceback" not in text and "File \"" not in text and not re.search(r"0x[0-9a-f]{6,}", text), text


def test_corpus_is_complete_small_and_described():
    files = {p.name for p in CORPUS.iterdir() if p.is_file() and p.suffix != ".py"} - {"MANIFEST.json"}
    assert files == set(MANIFEST), "the manifest and the files on disk disagree: rerun make_corpus.py"
    assert len(files) >= 30
    assert sum((CORPUS / n).stat().st_size for n in files) <= 2 * 2**20
    kinds = {e["expect"] for e in MANIFEST.values()}
    assert kinds == {"refused", "accepted"}


def test_generator_still_describes_the_committed_corpus():
    cases = load_generator().build()
    assert {name: expectation for name, (_, expectation) in cases.items()} == MANIFEST


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_read_image_on_the_corpus(name):
    expectation = MANIFEST[name]
    data = (CORPUS / name).read_bytes()
    start = time.perf_counter()
    if expectation["expect"] == "refused":
        with pytest.raises(ImageError) as info:
            read_image(data)
        assert re.search(expectation["message"], str(info.value)), str(info.value)
        assert_user_message(str(info.value))
    else:
        image = read_image(data)
        assert image.mode == "RGB" and list(image.size) == expectation["size"]
        assert np.asarray(image).dtype == np.uint8
    assert time.perf_counter() - start < 2.0, "bombs must be refused from the header, before decoding"


def test_exif_rotation_and_transparency_are_honoured():
    rotated = read_image((CORPUS / "exif_rotated.jpg").read_bytes())
    stored = Image.open(CORPUS / "exif_rotated.jpg")
    assert stored.size == (96, 64) and rotated.size == (64, 96)
    # The corpus photo is red on the left (sin ramp); rotated 90° clockwise, that edge is on top.
    arr = np.asarray(rotated).astype(float)
    assert arr[:8, :, 0].mean() != pytest.approx(arr[-8:, :, 0].mean(), abs=5)
    palette = read_image((CORPUS / "palette_transparency.png").read_bytes())
    src = Image.open(CORPUS / "palette_transparency.png")
    transparent = np.asarray(src) == src.info["transparency"]
    assert transparent.any()
    assert (np.asarray(palette)[transparent] == 255).all()  # transparent pixels composite onto white


def test_huge_jpeg_over_the_upload_limit_is_refused_by_size():
    data = load_generator().huge_jpeg(MAX_UPLOAD_BYTES + 1)
    assert len(data) > MAX_UPLOAD_BYTES
    Image.open(io.BytesIO(data)).verify()  # an honest JPEG: refused for its size, not for damage
    with pytest.raises(ImageError, match=r"the limit is 20 MB") as info:
        read_image(data)
    assert_user_message(str(info.value))


def test_streamlit_upload_limit_matches_read_image():
    config = (ROOT / ".streamlit" / "config.toml").read_text()
    limit_mb = int(re.search(r"^maxUploadSize\s*=\s*(\d+)", config, re.M).group(1))
    assert limit_mb * 2**20 == MAX_UPLOAD_BYTES


def test_pixel_limit_is_exact():
    png = io.BytesIO()
    Image.new("RGB", (100, 80), (10, 200, 30)).save(png, format="PNG")
    assert read_image(png.getvalue(), max_pixels=8000).size == (100, 80)
    with pytest.raises(ImageError, match="megapixels"):
        read_image(png.getvalue(), max_pixels=7999)
    side = int(MAX_PIXELS ** 0.5) + 1  # just over the default limit; refused from the header
    with pytest.raises(ImageError, match=f"{side}x{side}"):
        read_image(load_generator().deflate_bomb_png(side))


# ---------------------------------------------------------------- the corpus through the app

def upload(at, name: str, data: bytes):
    mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return at.file_uploader(key="upload").set_value((name, data, mime)).run()


def tile_captions(at) -> list[str]:
    return [c for image in at.image for c in image.captions]


@pytest.mark.slow
def test_corpus_through_the_app_uploader(tiny_bundle, monkeypatch):
    """One session uploads every corpus file in turn: a message for each bad one, never a traceback.

    The model is a tiny CNN (the upload path is under test, not the model), so 45 reruns stay quick.
    """
    import ui.common
    from streamlit.testing.v1 import AppTest

    monkeypatch.setattr(ui.common, "_load_cached", lambda name: tiny_bundle)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.session_state["methods"] = ["grad_cam"]
    at.run()
    assert not at.exception and not at.error and "Grad-CAM" in tile_captions(at)
    huge = load_generator().huge_jpeg(MAX_UPLOAD_BYTES + 1)
    cases = [(name, (CORPUS / name).read_bytes(), MANIFEST[name]) for name in sorted(MANIFEST)]
    cases.append(("huge.jpg", huge, {"expect": "refused", "message": "the limit is 20 MB"}))
    for name, data, expectation in cases:
        upload(at, name, data)
        assert not at.exception, (name, [e.value for e in at.exception])
        errors = [e.value for e in at.error]
        if expectation["expect"] == "refused":
            assert len(errors) == 1 and re.search(expectation["message"], errors[0]), (name, errors)
            assert "Traceback" not in errors[0]
            assert any("Showing the sample" in c.value for c in at.sidebar.caption), name
        else:
            assert errors == [], (name, errors)
            assert shows_source(at, f"upload: {name}"), name
        assert "Grad-CAM" in tile_captions(at), name  # the page keeps explaining something
    # Still fully working: a good photo after all the bad ones.
    upload(at, "coffee.jpg", (ROOT / "assets" / "samples" / "coffee.jpg").read_bytes())
    assert not at.exception and not at.error and "Grad-CAM" in tile_captions(at)
    assert shows_source(at, "upload: coffee.jpg")


# ---------------------------------------------------------------- limits

@pytest.mark.parametrize("method, options, phrase", [
    ("integrated_gradients", {"steps": 0}, "steps"),
    ("integrated_gradients", {"steps": 1025}, "steps"),
    ("integrated_gradients", {"steps": 10**9}, "steps"),
    ("expected_gradients", {"samples": 0}, "samples"),
    ("expected_gradients", {"samples": 513}, "samples"),
    ("saliency", {"smooth": {"kind": "smoothgrad", "samples": 0, "sigma": 0.1}}, "samples"),
    ("saliency", {"smooth": {"kind": "smoothgrad", "samples": 257, "sigma": 0.1}}, "samples"),
    ("saliency", {"smooth": {"kind": "smoothgrad", "samples": 8, "sigma": -1.0}}, "sigma"),
])
def test_work_limits_are_enforced_with_a_clear_message(tiny_bundle, method, options, phrase):
    x = torch.zeros(1, 3, 32, 32)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=phrase) as info:
        explain(tiny_bundle, x, 3, method=method, **options)
    assert time.perf_counter() - start < 1.0  # refused before any work
    assert_user_message(str(info.value))


def test_the_apps_widgets_stay_within_the_limits():
    from explainers.expected import MAX_SAMPLES as EG_MAX
    from explainers.smoothing import MAX_SAMPLES as SMOOTH_MAX
    from ui.controls import STEP_CHOICES

    assert max(STEP_CHOICES) <= 1024 and min(STEP_CHOICES) >= 1
    source = (ROOT / "ui" / "controls.py").read_text()
    smooth_max = int(re.search(r'st\.slider\("Samples", \d+, (\d+)', source).group(1))
    assert smooth_max <= SMOOTH_MAX and EG_MAX == 512


@pytest.mark.parametrize("target", [-1, 1000, 10**12])
def test_class_ids_out_of_range_are_refused(tiny_bundle, target):
    with pytest.raises(ValueError, match="out of range") as info:
        explain(tiny_bundle, torch.zeros(1, 3, 32, 32), target, method="grad_cam")
    assert_user_message(str(info.value))


# ---------------------------------------------------------------- degenerate images

class TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                            torch.nn.MaxPool2d(2), torch.nn.Conv2d(8, 16, 3, padding=1),
                                            torch.nn.ReLU())
        self.fc = torch.nn.Linear(16, 1000)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


@pytest.fixture(scope="module")
def tiny_bundle():
    torch.manual_seed(0)
    net = TinyNet()
    return wrap(net, target_layer=net.features, classifier=net.fc, input_size=(32, 32), name="tiny")


CONSTANT_IMAGES = {"black": (0, 0, 0), "white": (255, 255, 255), "grey": (128, 128, 128)}


@pytest.mark.parametrize("colour", sorted(CONSTANT_IMAGES))
def test_constant_images_give_nan_free_maps_for_every_method(tiny_bundle, colour):
    """A constant photo is a fixed point of several baselines (x = x'): 0/0 must not leak out as NaN."""
    from explainers import list_methods, normalize_map
    from presentation.overlay import overlay

    image = read_image(encode_png(Image.new("RGB", (40, 40), CONSTANT_IMAGES[colour])))
    x = tiny_bundle.preprocess(image)
    for info in list_methods():
        options = {"steps": 8} if info.id == "integrated_gradients" else {"samples": 4} \
            if info.id == "expected_gradients" else {}
        baselines = ["black", "white"] if info.id in ("integrated_gradients", "deeplift") else [None]
        for baseline in baselines:
            extra = {"baseline": baseline} if baseline else {}
            exp = explain(tiny_bundle, x, 7, method=info.id, **options, **extra)
            label = f"{info.id} {extra} on {colour}"
            assert np.isfinite(exp.attribution).all() and np.isfinite(exp.heatmap).all(), label
            assert exp.delta is None or np.isfinite(exp.delta), label
            if exp.trace is not None:
                assert not any(np.isnan(v) for v in exp.trace.steps_error.values()), label
                assert np.isfinite(exp.trace.cumulative).all(), label
            shown = normalize_map(exp.heatmap)
            assert np.isfinite(shown).all() and shown.min() >= 0 and shown.max() <= 1, label
            for signed in (False, True):
                blended = overlay(tiny_bundle.to_image(x), exp.heatmap, signed=signed)
                assert np.isfinite(np.asarray(blended, dtype=np.float64)).all(), label


def test_all_zero_map_normalises_to_zeros():
    from explainers import normalize_map

    for a in (np.zeros((7, 7)), np.full((3, 5), 2.5), np.array([[np.nan, 1.0], [1.0, np.inf]])):
        out = normalize_map(a)
        assert np.isfinite(out).all() and out.shape == np.shape(a)
    assert (normalize_map(np.zeros((4, 4))) == 0).all()


def encode_png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
