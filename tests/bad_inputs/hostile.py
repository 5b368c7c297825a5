"""Hostile and odd-but-valid files for the decoder's limits, built at test time (some are megabytes; none is committed).

`build()` gives name → (a function making the bytes, expectation). Expectations: {"expect": "refused", "message":
regex}, {"expect": "accepted", "size": [w, h]}, or {"expect": "bounded"} (either outcome is fine; only the time
and memory limits are checked). Classes: structure bombs (scans, segments, chunks, strips, runs, blocks), header-
declared huge sizes, truncations at several points, and valid odd images (float with ±inf/NaN, int32 above 65535,
16-bit, transparency of every kind). Used by tests/test_decode_limits.py and bench/decode.py.
"""
from __future__ import annotations

import struct
import zlib
from typing import Callable

import numpy as np
from PIL import Image

from make_corpus import encode, photo  # bad_inputs/ is on sys.path wherever this is used

STALL = "malformed or built to stall decoders"
TOO_BIG = "megapixels"


def photo_12mp() -> bytes:
    """A 4000x3000 JPEG (quality 92, ~4 MB): what a phone uploads."""
    return encode(photo(4000, 3000), "JPEG", quality=92)


# ---------------------------------------------------------------- JPEG

def _jpeg_segments(data: bytes) -> tuple[bytes, bytes]:
    """(everything before the final EOI, EOI)."""
    end = data.rindex(b"\xff\xd9")
    return data[:end], data[end:]


def jpeg_with_empty_scans(scans: int, size: tuple[int, int] = (64, 64)) -> bytes:
    """A progressive JPEG followed by `scans` AC refinement scans that carry no data."""
    body, eoi = _jpeg_segments(encode(photo(*size), "JPEG", progressive=True, quality=80))
    empty_scan = b"\xff\xda\x00\x08\x01\x01\x00\x01\x3f\x10"  # 1 component, Ss=1 Se=63, Ah=1 Al=0, no data
    return body + empty_scan * scans + eoi


def jpeg_with_segments(marker: int, count: int, payload: bytes = b"") -> bytes:
    """A baseline JPEG with `count` extra segments of type `marker` right after SOI."""
    data = encode(photo(), "JPEG")
    segment = bytes([0xFF, marker]) + struct.pack(">H", 2 + len(payload)) + payload
    return data[:2] + segment * count + data[2:]


def jpeg_with_size(width: int, height: int, progressive: bool = False) -> bytes:
    """A small JPEG whose frame header declares `width`x`height`."""
    data = bytearray(encode(photo(), "JPEG", progressive=progressive))
    sof = data.find(b"\xff\xc2" if progressive else b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def jpeg_with_stray_bytes(count: int) -> bytes:
    data = encode(photo(), "JPEG")
    return data[:2] + b"\xff" * count + data[2:]


# ---------------------------------------------------------------- PNG

def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_with_chunks(count: int, kind: bytes = b"ruSt", payload: bytes = b"", before_idat: bool = True) -> bytes:
    data = encode(photo(), "PNG")
    at = data.index(b"IDAT") - 4 if before_idat else data.index(b"IEND") - 4
    return data[:at] + png_chunk(kind, payload) * count + data[at:]


def png_split_idat(pieces: int) -> bytes:
    """The same PNG with its image data split into `pieces` IDAT chunks (most of them empty)."""
    data = encode(photo(), "PNG")
    start = data.index(b"IDAT") - 4
    length = struct.unpack(">I", data[start:start + 4])[0]
    stream = data[start + 8:start + 8 + length]
    idats = png_chunk(b"IDAT", stream) + png_chunk(b"IDAT", b"") * (pieces - 1)
    return data[:start] + idats + data[start + 12 + length:]


def png_with_size(width: int, height: int, depth: int = 8, colour: int = 0) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def png_deflate_bomb(side: int) -> bytes:
    row = b"\x00" * (side + 1)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b"")


def png_text_bomb(kind: bytes) -> bytes:
    """A zTXt or iCCP chunk inflating to 64 MB (Pillow's limit for one is 1 MB)."""
    comp = zlib.compressobj(1)
    zeros = b"\0" * 2**20
    bomb = b"".join(comp.compress(zeros) for _ in range(64)) + comp.flush()
    payload = (b"Comment\x00\x00" if kind == b"zTXt" else b"icc\x00\x00") + bomb
    return png_with_chunks(1, kind, payload)


def grey_png_with_trns() -> bytes:
    """An L-mode PNG whose grey level 0 is transparent (tRNS), as opposed to palette transparency."""
    arr = np.full((32, 32), 200, np.uint8)
    arr[8:24, 8:24] = 0
    return encode(Image.fromarray(arr), "PNG", transparency=0)


def grey16_png_with_trns() -> bytes:
    arr = np.full((32, 32), 3000, np.uint16)
    arr[8:24, 8:24] = 1234
    arr[0, 1] = 60000  # the range is 1234 … 60000: the opaque 3000 is a dark grey
    return encode(Image.fromarray(arr), "PNG", transparency=1234)


def rgb_png_with_trns() -> bytes:
    arr = np.full((32, 32, 3), 200, np.uint8)
    arr[8:24, 8:24] = (10, 20, 30)
    return encode(Image.fromarray(arr), "PNG", transparency=(10, 20, 30))


# ---------------------------------------------------------------- TIFF

def tiff(entries: list[tuple[int, int, int, bytes | int]], tail: bytes = b"", pixels: bytes = b"") -> bytes:
    """A little-endian TIFF with one directory; an entry's value is an int (inline) or bytes (stored after it)."""
    header_size, ifd_size = 8, 2 + 12 * len(entries) + 4
    data_at = header_size + ifd_size
    extra, body = bytearray(), bytearray(struct.pack("<H", len(entries)))
    pixel_at = data_at + sum(len(v) + (len(v) & 1) for *_, v in entries if isinstance(v, bytes))
    for tag, kind, count, value in sorted(entries):
        if isinstance(value, bytes):
            body += struct.pack("<HHII", tag, kind, count, data_at + len(extra))
            extra += value + b"\0" * (len(value) & 1)
        else:
            value = pixel_at if value == -1 else value
            body += struct.pack("<HHI", tag, kind, count) + (struct.pack("<HH", value, 0) if kind == 3
                                                              else struct.pack("<I", value))
    return b"II*\x00" + struct.pack("<I", header_size) + bytes(body) + b"\0\0\0\0" + bytes(extra) + pixels + tail


def tiff_strips(width: int, height: int, strips: int) -> bytes:
    """An 8-bit grey TIFF declaring `strips` strips whose offsets all point at one row of data."""
    row = b"\x80" * width
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (278, 4, 1, max(1, height // strips)), (277, 3, 1, 1)]
    base = tiff(entries + [(273, 4, strips, b"\0" * 4 * strips), (279, 4, strips, b"\0" * 4 * strips)])
    pixel_at = len(base)
    offsets = struct.pack("<I", pixel_at) * strips
    counts = struct.pack("<I", width) * strips
    return tiff(entries + [(273, 4, strips, offsets), (279, 4, strips, counts)], pixels=row)


def tiff_tiles(width: int, height: int, tile: int) -> bytes:
    """A tiny tiled TIFF whose one tile is `tile`x`tile` (the decoder allocates a whole tile)."""
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (277, 3, 1, 1), (322, 4, 1, tile), (323, 4, 1, tile), (324, 4, 1, -1), (325, 4, 1, 16)]
    return tiff(entries, pixels=b"\x80" * 16)


def tiff_with_tags(count: int) -> bytes:
    entries = [(256, 4, 1, 16), (257, 4, 1, 16), (258, 3, 1, 8), (262, 3, 1, 1), (273, 4, 1, -1),
               (279, 4, 1, 256)]
    entries += [(400 + i, 3, 1, 0) for i in range(count)]
    return tiff(entries, pixels=b"\x80" * 256)


def tiff_big_tag_data(tags: int) -> bytes:
    """`tags` tags whose values all point at the same megabyte: declared data far beyond the file."""
    blob = b"\0" * 2**20
    entries = [(256, 4, 1, 16), (257, 4, 1, 16), (258, 3, 1, 8), (262, 3, 1, 1), (273, 4, 1, -1),
               (279, 4, 1, 256)]
    base = tiff(entries, pixels=b"\x80" * 256)
    body = bytearray(base)
    blob_at = len(body)
    body += blob
    ifd = bytearray(struct.pack("<H", len(entries) + tags))
    for tag, kind, count, value in sorted(entries):
        value = 8 + 2 + 12 * (len(entries) + tags) + 4 if value == -1 else value
        ifd += struct.pack("<HHI", tag, kind, count) + (struct.pack("<HH", value, 0) if kind == 3
                                                         else struct.pack("<I", value))
    for i in range(tags):
        ifd += struct.pack("<HHII", 50000 + i, 7, len(blob), blob_at + 16 + 256)
    ifd += b"\0\0\0\0"
    return b"II*\x00" + struct.pack("<I", 8) + bytes(ifd) + b"\x80" * 256 + bytes(16) + blob


def float_tiff_with_infinities() -> bytes:
    arr = np.linspace(-2.0, 5.0, 32 * 32, dtype=np.float32).reshape(32, 32)
    arr[0, 0], arr[0, 1], arr[0, 2] = np.inf, -np.inf, np.nan
    return encode(Image.fromarray(arr), "TIFF")


def int32_tiff_above_16_bits() -> bytes:
    arr = np.linspace(0, 4_000_000, 32 * 32).astype(np.int32).reshape(32, 32)
    return encode(Image.fromarray(arr), "TIFF")


def grey16_tiff() -> bytes:
    arr = np.linspace(1000, 3000, 32 * 32).astype(np.uint16).reshape(32, 32)
    return encode(Image.fromarray(arr), "TIFF")


# ---------------------------------------------------------------- BMP, GIF, WebP

def bmp_rle8(width: int, height: int, runs: int) -> bytes:
    """An RLE8 BMP made of `runs` one-pixel runs (each row ends with an end-of-line escape)."""
    body = bytearray()
    per_row = max(1, runs // height)
    for _ in range(min(height, runs)):
        body += b"\x01\x07" * min(per_row, width) + b"\x00\x00"
    body += b"\x00\x01"
    palette = b"".join(bytes([i, i, i, 0]) for i in range(256))
    offset = 14 + 40 + len(palette)
    header = struct.pack("<2sIHHI", b"BM", offset + len(body), 0, 0, offset)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(body), 2835, 2835, 256, 0)
    return header + info + palette + bytes(body)


def bmp_rle8_escapes(count: int) -> bytes:
    """A small RLE8 BMP with `count` empty end-of-line escapes: millions of runs that draw nothing."""
    data = bytearray(bmp_rle8(64, 64, 64))
    end = len(data) - 2
    return bytes(data[:end]) + b"\x00\x02\x00\x00" * count + bytes(data[end:])


def bmp_with_size(width: int, height: int, bits: int = 24) -> bytes:
    header = struct.pack("<2sIHHI", b"BM", 14 + 40 + 64, 0, 0, 14 + 40)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, bits, 0, 0, 2835, 2835, 0, 0)
    return header + info + b"\0" * 64


def gif_with_extensions(blocks: int) -> bytes:
    """A GIF with `blocks` comment sub-blocks before its first frame."""
    data = encode(Image.new("P", (16, 16), 0), "GIF")
    at = 13 + 3 * 2 ** ((data[10] & 7) + 1) if data[10] & 0x80 else 13
    comment = b"\x21\xfe" + (b"\xff" + b"x" * 255) * blocks + b"\x00"
    return data[:at] + comment + data[at:]


def gif_with_size(width: int, height: int) -> bytes:
    small = encode(Image.new("P", (16, 16), 0), "GIF")
    at = small.index(b"\x2c")
    return small[:at + 5] + struct.pack("<HH", width, height) + small[at + 9:]


def webp_with_size(side: int) -> bytes:
    """A lossless WebP whose header declares side x side."""
    data = bytearray(encode(photo(16, 16), "WEBP", lossless=True))
    at = data.index(b"VP8L") + 9
    bits = struct.unpack("<I", data[at:at + 4])[0]
    bits = (bits & ~0x0FFFFFFF) | (side - 1) | ((side - 1) << 14)
    data[at:at + 4] = struct.pack("<I", bits)
    return bytes(data)


def truncated(make: Callable[[], bytes], fraction: float) -> Callable[[], bytes]:
    return lambda: (lambda data: data[:int(len(data) * fraction)])(make())
