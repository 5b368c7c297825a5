"""Hardening: the bad-input corpus through read_image and through the app, limits, degenerate images."""
from __future__ import annotations

import importlib.util
import io
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models import ImageError, read_image
from models.image_io import MAX_PIXELS, MAX_UPLOAD_BYTES

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
    files = {p.name for p in CORPUS.iterdir() if p.is_file()} - {"MANIFEST.json", "make_corpus.py"}
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
