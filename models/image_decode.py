"""Bytes → RGB PIL image, or `Refused` with a message for the user. Runs inside the decode worker.

Imports only Pillow and the standard library (numpy lazily, for >8-bit and float images), never torch: the
worker process (models/decode_worker.py) loads this file as a top-level module. `models.read_image` is the
entry point everyone else calls; it sends the bytes here through the worker.

Transparency has one rule whatever carries it (alpha channel, palette entry, tRNS grey or colour key): the image is
composited on white. Greyscale deeper than 8 bits (16-bit, 32-bit integer, float) is stretched from its smallest to
its largest finite value; +inf shows as the largest, -inf and NaN as the smallest.
"""
from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps

if __package__:  # imported as models.image_decode (the bench's in-process baseline, constants for image_io)
    from .image_guards import Refused, check_structure
else:  # loaded by the worker as a top-level module, without the models package (and torch)
    from image_guards import Refused, check_structure

MIN_SIDE = 8
MAX_ASPECT = 50  # a 20000x10 strip cannot be centre-cropped into anything meaningful
ACCEPTED_FORMATS = {"JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF", "MPO"}  # MPO: JPEGs from many phone cameras


def decode(data: bytes, max_pixels: int) -> Image.Image:
    """Decode `data` into an RGB image, EXIF-oriented, or raise `Refused` saying why not."""
    check_structure(data)
    Image.MAX_IMAGE_PIXELS = None  # the header's size is checked below, with a message naming it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            fmt = image.format
            width, height = image.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Refused(f"The image is too large to decode safely (limit {max_pixels / 1e6:.0f} megapixels).") from None
    except Exception:  # UnidentifiedImageError, or one of the many types Pillow raises on malformed headers
        claimed = claimed_format(data)
        if claimed:
            raise Refused(f"The file starts like a {claimed} image but its header is damaged or truncated.") from None
        raise Refused("This file is not an image we can read (accepted: JPEG, PNG, WebP, BMP, GIF, TIFF).") from None

    if fmt not in ACCEPTED_FORMATS:
        raise Refused(f"{fmt or 'This'} files are not supported; use JPEG, PNG, WebP, BMP, GIF or TIFF.")
    if width * height > max_pixels:
        raise Refused(f"The image is {width}x{height} ({width * height / 1e6:.0f} megapixels); the limit is "
                      f"{max_pixels / 1e6:.0f} megapixels. Please downscale it first.")
    if min(width, height) < MIN_SIDE:
        raise Refused(f"The image is {width}x{height}; it must be at least {MIN_SIDE}x{MIN_SIDE} pixels.")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise Refused(f"The image is {width}x{height}; its aspect ratio is beyond {MAX_ASPECT}:1.")
    Image.MAX_IMAGE_PIXELS = max_pixels  # Pillow's own guard, for frames past the header our check saw
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "possibly corrupt EXIF" and the like: the pixels are what count
            image.seek(0)  # GIF / multi-page TIFF: the first frame
            image.load()
            image = ImageOps.exif_transpose(image)
            return to_rgb(image)
    except Refused:
        raise
    except MemoryError:
        raise Refused("The image needs more memory to decode than an upload may use.") from None
    except Exception:  # OSError, SyntaxError, ValueError, EOFError... from the decoders
        raise Refused(f"The {fmt} image is truncated or damaged: its pixel data could not be decoded.") from None


def to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image
    if mode in ("I", "F") or mode.startswith("I;16"):
        return _stretch_to_grey(image).convert("RGB")
    if "transparency" in image.info or mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")  # applies palette, grey and colour-key transparency alike
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV


def _stretch_to_grey(image: Image.Image) -> Image.Image:
    """16/32-bit integer or float greyscale → 8 bits over its finite range (float32, in place: 40 MP < 400 MB);
    a tRNS grey key (16-bit PNG) turns white, as every other kind of transparency does."""
    import numpy as np

    key = image.info.get("transparency")
    values = np.array(image, dtype=np.float32)  # a copy: the image's own buffer is read-only
    image.close()
    transparent = values == key if isinstance(key, int) else None
    finite = np.isfinite(values)
    lo = float(values.min(where=finite, initial=np.inf))
    hi = float(values.max(where=finite, initial=-np.inf))
    if not np.isfinite(lo):  # nothing finite: NaN and infinities only
        lo = hi = 0.0
    del finite
    np.nan_to_num(values, copy=False, nan=lo, posinf=hi, neginf=lo)
    values -= lo
    values *= 255.0 / (hi - lo) if hi > lo else 0.0
    values += 0.5
    grey = values.astype(np.uint8)
    if transparent is not None:
        grey[transparent] = 255
    return Image.fromarray(grey)


_SIGNATURES = [(b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
               (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF")]


def claimed_format(data: bytes) -> str | None:
    """The format the first bytes announce, for a message more useful than "not an image"."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return next((name for magic, name in _SIGNATURES if data.startswith(magic)), None)
