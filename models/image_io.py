"""Reading user images safely: one entry point for the app, the CLI and the tests.

Everything a user can upload ends up here, so every refusal is an `ImageError` whose message can be shown as is.
The bytes are never parsed in this process: a reused worker process (models/decode_pool.py, decode_worker.py)
checks their structure (models/image_guards.py) and decodes them (models/image_decode.py) under hard limits on
memory and CPU time, and this side waits at most `WALL_LIMIT_S`. The pixel count is checked from the header,
before any pixel data is decoded.
"""
from __future__ import annotations

from PIL import Image

from .decode_pool import CPU_LIMIT_S, MEMORY_LIMIT_BYTES, WALL_LIMIT_S, DecodeFailed, decode_in_worker
from .image_decode import ACCEPTED_FORMATS, MAX_ASPECT, MIN_SIDE

MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # matches server.maxUploadSize in .streamlit/config.toml
MAX_PIXELS = 40_000_000
UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"]

__all__ = ["ACCEPTED_FORMATS", "CPU_LIMIT_S", "ImageError", "MAX_ASPECT", "MAX_PIXELS", "MAX_UPLOAD_BYTES",
           "MEMORY_LIMIT_BYTES", "MIN_SIDE", "UPLOAD_TYPES", "WALL_LIMIT_S", "read_image"]


class ImageError(ValueError):
    """The bytes are not an image we can explain; the message is written for the user."""


def read_image(data: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode `data` into an RGB PIL image, EXIF-oriented, or raise `ImageError` saying why not."""
    if data is None or len(data) == 0:
        raise ImageError("The file is empty.")
    if len(data) > max_bytes:
        raise ImageError(f"The file is {len(data) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB.")
    try:
        return decode_in_worker(bytes(data), max_pixels)
    except DecodeFailed as err:
        raise ImageError(str(err)) from None
