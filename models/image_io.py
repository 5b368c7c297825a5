"""Reading user images safely: one entry point for the app, the CLI and the tests.

Everything a user can upload ends up here, so every refusal is an `ImageError` whose message can be shown
as is. Pillow's own decompression-bomb guard is not relied on (it only warns below 2x its limit); the pixel
count is checked before any pixel data is decoded.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # matches server.maxUploadSize in .streamlit/config.toml
MAX_PIXELS = 40_000_000
MIN_SIDE = 8
MAX_ASPECT = 50  # a 20000x10 strip cannot be centre-cropped into anything meaningful
ACCEPTED_FORMATS = {"JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF", "MPO"}  # MPO: JPEGs from many phone cameras
UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"]


class ImageError(ValueError):
    """The bytes are not an image we can explain; the message is written for the user."""


def read_image(data: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode `data` into an RGB PIL image, EXIF-oriented, or raise `ImageError` saying why not."""
    if data is None or len(data) == 0:
        raise ImageError("The file is empty.")
    if len(data) > max_bytes:
        raise ImageError(f"The file is {len(data) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            fmt = image.format
            width, height = image.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"The image is too large to decode safely (limit {max_pixels / 1e6:.0f} megapixels).") from None
    except Exception:  # UnidentifiedImageError, or one of the many types Pillow raises on malformed headers
        claimed = _claimed_format(data)
        if claimed:
            raise ImageError(f"The file starts like a {claimed} image but its header is damaged or truncated.") from None
        raise ImageError("This file is not an image we can read (accepted: JPEG, PNG, WebP, BMP, GIF, TIFF).") from None

    if fmt not in ACCEPTED_FORMATS:
        raise ImageError(f"{fmt or 'This'} files are not supported; use JPEG, PNG, WebP, BMP, GIF or TIFF.")
    if width * height > max_pixels:
        raise ImageError(
            f"The image is {width}x{height} ({width * height / 1e6:.0f} megapixels); the limit is "
            f"{max_pixels / 1e6:.0f} megapixels. Please downscale it first."
        )
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"The image is {width}x{height}; it must be at least {MIN_SIDE}x{MIN_SIDE} pixels.")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise ImageError(f"The image is {width}x{height}; its aspect ratio is beyond {MAX_ASPECT}:1.")

    try:
        image.seek(0)  # GIF / multi-page TIFF: the first frame
        image.load()
        image = ImageOps.exif_transpose(image)
        return _to_rgb(image)
    except ImageError:
        raise
    except Exception:  # OSError, SyntaxError, ValueError, EOFError... from the decoders
        raise ImageError(f"The {fmt} image is truncated or damaged: its pixel data could not be decoded.") from None


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image.copy()
    if mode == "P":
        image = image.convert("RGBA") if "transparency" in image.info else image.convert("RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16/32-bit greyscale: scale the actual value range to 8 bits instead of clipping at 255.
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if array.max() > 255 else 255.0
        return Image.fromarray(np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)).convert("RGB")
    if mode == "F":
        array = np.nan_to_num(np.asarray(image, dtype=np.float64))
        lo, hi = float(array.min()), float(array.max())
        scaled = (array - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(array)
        return Image.fromarray(scaled.astype(np.uint8)).convert("RGB")
    return image.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


_SIGNATURES = [(b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
               (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF")]


def _claimed_format(data: bytes) -> str | None:
    """The format the first bytes announce, for a message more useful than "not an image"."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return next((name for magic, name in _SIGNATURES if data.startswith(magic)), None)
