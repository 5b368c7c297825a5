"""read_image: every accepted format becomes RGB the right way up; every bad input gets its own message."""
from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

from models import ImageError, read_image
from models.image_io import MAX_UPLOAD_BYTES


def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def gradient_image(w=64, h=48, mode="RGB") -> Image.Image:
    xs = np.linspace(0, 255, w, dtype=np.uint8)
    arr = np.stack([np.tile(xs, (h, 1)), np.tile(xs[::-1], (h, 1)), np.full((h, w), 128, np.uint8)], -1)
    return Image.fromarray(arr).convert(mode)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF"])
def test_accepts_common_formats(fmt):
    img = read_image(encode(gradient_image(), fmt))
    assert img.mode == "RGB" and img.size == (64, 48)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16", "1"])
def test_converts_modes_to_rgb(mode):
    src = gradient_image().convert("RGBA" if mode == "LA" else "RGB")
    if mode == "I;16":
        src = Image.fromarray((np.linspace(0, 65535, 64 * 48).reshape(48, 64)).astype(np.uint16))
    elif mode != "LA":
        src = src.convert(mode)
    else:
        src = src.convert("LA")
    fmt = "JPEG" if mode == "CMYK" else ("TIFF" if mode == "I;16" else "PNG")
    img = read_image(encode(src, fmt))
    assert img.mode == "RGB" and img.size == (64, 48)
    if mode == "I;16":  # 16-bit values are scaled, not clipped to white
        arr = np.asarray(img)[..., 0]
        assert arr.min() < 10 and arr.max() > 245 and len(np.unique(arr)) > 100


def test_transparent_pixels_go_on_white():
    rgba = Image.new("RGBA", (16, 16), (255, 0, 0, 0))
    assert np.asarray(read_image(encode(rgba, "PNG")))[0, 0].tolist() == [255, 255, 255]
    pal = Image.new("P", (16, 16), 0)
    pal.putpalette([0, 0, 0] * 256)
    assert np.asarray(read_image(encode(pal, "PNG", transparency=0)))[0, 0].tolist() == [255, 255, 255]


def test_exif_orientation_is_applied():
    img = gradient_image(64, 32)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    out = read_image(encode(img, "JPEG", exif=exif.tobytes()))
    assert out.size == (32, 64)


def test_animated_gif_gives_first_frame():
    frames = [Image.new("RGB", (20, 20), c) for c in [(255, 0, 0), (0, 0, 255)]]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    px = np.asarray(read_image(buf.getvalue()))[10, 10]
    assert px[0] > 200 and px[2] < 50


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"just some text, not an image\n" * 10, "not an image"),
    (b"<!DOCTYPE html><html><body>hi</body></html>", "not an image"),
    (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "not an image"),
])
def test_refuses_non_images(data, message):
    with pytest.raises(ImageError, match=message):
        read_image(data)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_refuses_truncated_files(fmt):
    data = encode(gradient_image(256, 256), fmt)
    with pytest.raises(ImageError, match="truncated or damaged"):
        read_image(data[: len(data) // 2])


def test_refuses_disguised_format():
    # An ICO file (a format Pillow reads) is not an upload type we accept, whatever its name says.
    with pytest.raises(ImageError, match="not supported"):
        read_image(encode(gradient_image(32, 32), "ICO"))


def png_with_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width`x`height` (a decompression bomb when huge)."""
    import zlib

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    raw = zlib.compress(b"\x00" * (width + 1) * min(height, 4))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


@pytest.mark.parametrize("w, h", [(10000, 10000), (30000, 30000)])
def test_refuses_decompression_bombs(w, h):
    data = png_with_size(w, h)
    assert len(data) < 10_000
    with pytest.raises(ImageError, match="megapixels"):
        read_image(data)


def test_refuses_tiny_images():
    with pytest.raises(ImageError, match="at least 8x8"):
        read_image(encode(Image.new("RGB", (1, 1)), "PNG"))


def test_refuses_extreme_strips():
    with pytest.raises(ImageError, match="aspect ratio"):
        read_image(encode(Image.new("RGB", (20000, 10)), "PNG"))


def test_refuses_files_over_the_upload_limit():
    with pytest.raises(ImageError, match="the limit is 20 MB"):
        read_image(b"\xff\xd8\xff" + b"\0" * MAX_UPLOAD_BYTES)
