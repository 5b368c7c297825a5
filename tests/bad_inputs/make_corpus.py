"""Write the bad-input corpus and its MANIFEST.json: `python tests/bad_inputs/make_corpus.py [DIR]`.

Each entry says what a user-facing reader must do with the file: refuse it with a message matching a
regular expression, or accept it as an RGB image of a given size. Files are built from scratch (fixed seeds), so the
corpus is reproducible and small; the over-the-limit upload is made by `huge_jpeg()` at test time.
"""
from __future__ import annotations

import io
import json
import struct
import sys
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
NOT_AN_IMAGE = "not an image"
# Damaged files: Pillow fails at different stages (header sniffing, decoding), so the wording varies.
DAMAGED = "damaged"  # "header is damaged or truncated" / "truncated or damaged: its pixel data..."
TOO_BIG = "megapixels"


def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def photo(w: int = 96, h: int = 64, seed: int = 0) -> Image.Image:
    """A smooth colourful image with a little noise (JPEG-friendly, not constant)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    arr = np.stack([np.sin(6 * xx) * 0.5 + 0.5, np.cos(5 * yy) * 0.5 + 0.5, xx * yy], -1) * 230
    return Image.fromarray((arr + rng.uniform(0, 25, arr.shape)).astype(np.uint8))


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def deflate_bomb_png(side: int) -> bytes:
    """A real grey PNG of side x side zero pixels: every scanline is present, deflated to almost nothing."""
    row = b"\x00" * (side + 1)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b"")


def gif_with_screen(width: int, height: int) -> bytes:
    """A GIF whose header claims a huge canvas but carries one tiny frame."""
    small = encode(Image.new("P", (4, 4), 0), "GIF")
    return small[:6] + struct.pack("<HH", width, height) + small[10:]


def huge_jpeg(min_bytes: int) -> bytes:
    """An honest, decodable JPEG bigger than `min_bytes` (noise at quality 100 barely compresses)."""
    rng = np.random.default_rng(7)
    side = 1024
    while True:
        data = encode(Image.fromarray(rng.integers(0, 256, (side, side, 3), np.uint8)), "JPEG", quality=100)
        if len(data) > min_bytes:
            return data
        side = int(side * (min_bytes / len(data)) ** 0.5 * 1.1) + 16


def exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90° clockwise: the stored 96x64 shows as 64x96
    return encode(photo(96, 64), "JPEG", exif=exif.tobytes())


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (40, 30), c) for c in [(250, 10, 10), (10, 10, 250), (10, 250, 10)]]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def palette_with_transparency() -> bytes:
    pal = photo(48, 48).quantize(16)
    return encode(pal, "PNG", transparency=0)


def png16() -> bytes:
    ramp = np.linspace(0, 65535, 64 * 48).reshape(48, 64).astype(np.uint16)
    return encode(Image.fromarray(ramp), "PNG")


def multipage_tiff() -> bytes:
    pages = [photo(40, 40, seed=s) for s in range(3)]
    return encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])


def float_tiff() -> bytes:
    arr = np.linspace(-3.0, 7.0, 32 * 32, dtype=np.float32).reshape(32, 32)
    arr[0, 0] = np.nan
    return encode(Image.fromarray(arr, mode="F"), "TIFF")


def build() -> dict[str, tuple[bytes | Callable[[], bytes], dict]]:
    """name → (bytes, or a function making them when that is slow, expectation)."""
    jpg, png, webp = encode(photo(), "JPEG", quality=90), encode(photo(), "PNG"), encode(photo(), "WEBP")
    html = b"<!DOCTYPE html><html><head><script>alert(1)</script></head><body>not a cat</body></html>\n"
    refuse = lambda phrase: {"expect": "refused", "message": phrase}  # noqa: E731
    accept = lambda w, h: {"expect": "accepted", "size": [w, h]}  # noqa: E731
    corrupt_crc = bytearray(png)
    corrupt_crc[29:33] = b"\0\0\0\0"  # IHDR CRC
    zero_ihdr = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0)) + png[33:]
    return {
        # not images at all
        "empty.png": (b"", refuse("empty")),
        "text_named.png": (b"This is a text file with a .png name.\n" * 20, refuse(NOT_AN_IMAGE)),
        "page.html": (html, refuse(NOT_AN_IMAGE)),
        "html_named.jpg": (html, refuse(NOT_AN_IMAGE)),
        "drawing.svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
                        b'<circle cx="32" cy="32" r="30" fill="red"/></svg>', refuse(NOT_AN_IMAGE)),
        "document.pdf": (b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n",
                         refuse(NOT_AN_IMAGE)),
        "archive.zip": (b"PK\x05\x06" + b"\0" * 18, refuse(NOT_AN_IMAGE)),
        "random_bytes.jpg": (np.random.default_rng(1).integers(0, 256, 4096, np.uint8).tobytes(),
                             refuse(NOT_AN_IMAGE)),
        "null_bytes.png": (b"\0" * 2048, refuse(NOT_AN_IMAGE)),
        "html_then_png.png": (html + png, refuse(NOT_AN_IMAGE)),
        # broken images
        "truncated.jpg": (jpg[: len(jpg) // 2], refuse(DAMAGED)),
        "truncated.png": (png[: len(png) // 2], refuse(DAMAGED)),
        "truncated.webp": (webp[: len(webp) // 2], refuse(DAMAGED)),
        "jpeg_header_only.jpg": (jpg[:200], refuse(DAMAGED)),
        "png_signature_only.png": (png[:8], refuse(DAMAGED)),
        "png_bad_crc.png": (bytes(corrupt_crc), refuse(DAMAGED)),
        "png_zero_size.png": (zero_ihdr, refuse(DAMAGED)),
        # sizes we refuse
        "bomb_deflate_20000.png": (lambda: deflate_bomb_png(20000), refuse(TOO_BIG)),
        "bomb_deflate_8000.png": (lambda: deflate_bomb_png(8000), refuse(TOO_BIG)),  # under Pillow's guard, over ours
        "bomb_gif_screen.gif": (gif_with_screen(65535, 65535), refuse(TOO_BIG)),
        "one_by_one.png": (encode(Image.new("RGB", (1, 1), (200, 30, 30)), "PNG"), refuse("at least 8x8")),
        "seven_by_seven.jpg": (encode(photo(7, 7), "JPEG"), refuse("at least 8x8")),
        "strip_20000x10.png": (encode(Image.new("RGB", (20000, 10), (90, 90, 90)), "PNG"), refuse("aspect ratio")),
        "strip_10x20000.png": (encode(Image.new("L", (10, 20000), 90), "PNG"), refuse("aspect ratio")),
        # formats Pillow reads but uploads must not be
        "icon.ico": (encode(photo(32, 32), "ICO"), refuse("not supported")),
        "bitmap.pcx": (encode(photo(32, 32), "PCX"), refuse("not supported")),
        "targa.tga": (encode(photo(32, 32), "TGA"), refuse("not supported")),
        # unusual but valid: accepted as RGB, the right way up
        "cmyk.jpg": (encode(photo().convert("CMYK"), "JPEG"), accept(96, 64)),
        "grey16.png": (png16(), accept(64, 48)),
        "palette_transparency.png": (palette_with_transparency(), accept(48, 48)),
        "animated.gif": (animated_gif(), accept(40, 30)),
        "exif_rotated.jpg": (exif_rotated(), accept(64, 96)),
        "grey_alpha.png": (encode(photo().convert("LA"), "PNG"), accept(96, 64)),
        "one_bit.png": (encode(photo().convert("1"), "PNG"), accept(96, 64)),
        "float32.tiff": (float_tiff(), accept(32, 32)),
        "multipage.tiff": (multipage_tiff(), accept(40, 40)),
        "progressive.jpg": (encode(photo(), "JPEG", progressive=True), accept(96, 64)),
        "rgba.webp": (encode(photo().convert("RGBA"), "WEBP", lossless=True), accept(96, 64)),
        "eight_by_eight.bmp": (encode(photo(8, 8), "BMP"), accept(8, 8)),
        "all_black.png": (encode(Image.new("RGB", (64, 64)), "PNG"), accept(64, 64)),
        "jpeg_named.png": (jpg, accept(96, 64)),
        "png_then_html.png": (png + html, accept(96, 64)),  # polyglot: a browser could sniff the tail
        "jpeg_then_zip.jpg": (jpg + b"PK\x03\x04" + b"\0" * 26 + b"PK\x05\x06" + b"\0" * 18, accept(96, 64)),
    }


def main(out: Path = HERE) -> None:
    out.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for name, (data, expectation) in build().items():
        (out / name).write_bytes(data() if callable(data) else data)
        manifest[name] = expectation
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum((out / n).stat().st_size for n in manifest)
    print(f"{len(manifest)} files, {total / 1024:.0f} KiB in {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
