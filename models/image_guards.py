"""Cheap structural checks on untrusted image bytes, run before any decoder sees them.

Pillow parses container structure (JPEG markers, PNG chunks, TIFF tags, GIF blocks, BMP runs) in Python, one
loop iteration per element, and libjpeg/libtiff do work per scan or per tile that does not depend on how much data
the file carries. A small file can therefore declare millions of elements and keep a decoder busy for minutes.
These walks count the elements with bounded loops (they stop at the first limit passed) and refuse files whose
structure no real camera or editor writes. They import nothing but the standard library: they run inside the
decode worker (models/decode_worker.py), which must not import torch.
"""
from __future__ import annotations

import re
import struct

MAX_JPEG_SCANS = 64           # progressive encoders write ~10; libjpeg processes every scan over every block
MAX_JPEG_METADATA_SEGMENTS = 128  # APPn and COM (Pillow reads each in Python); extended XMP needs a few dozen
MAX_JPEG_SEGMENTS = 1024      # all markers before the end of the first image
MAX_STRAY_BYTES = 4096        # fill or junk bytes between JPEG markers (Pillow reads them one at a time)
MAX_PNG_CHUNKS = 20_000       # 20 MB in 1 KB IDAT chunks; libpng writes 8 KB ones
MAX_TIFF_TAGS = 1000          # tags in the first directory (real files: ~20 to 60)
MAX_TIFF_PIECES = 100_000     # strips or tiles: one strip per row of a 40-megapixel image fits
MAX_TIFF_TILE_BYTES = 64 * 2**20
MAX_TIFF_SAMPLES = 16
MAX_GIF_BLOCKS = 4096         # extension sub-blocks before the first frame
MAX_BMP_RLE_BYTES = 2**20  # Pillow decodes BMP run-length data in Python, about a microsecond per run
MAX_WEBP_CHUNKS = 10_000


class Refused(ValueError):
    """The structure is out of bounds; the message is written for the user."""


def check_structure(data: bytes) -> None:
    """Raise `Refused` when `data` declares more structure than any real image needs; formats not listed pass."""
    if data.startswith(b"\xff\xd8"):
        _check_jpeg(data)
    elif data.startswith(b"\x89PNG\r\n\x1a\n"):
        _check_png(data)
    elif data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        _check_tiff(data)
    elif data.startswith(b"BM"):
        _check_bmp(data)
    elif data[:6] in (b"GIF87a", b"GIF89a"):
        _check_gif(data)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        _check_webp(data)


def _too_many(what: str, limit: int, fmt: str) -> Refused:
    return Refused(f"This {fmt} file has more than {limit:,} {what}: it is malformed or built to stall decoders.")


# A marker inside entropy-coded data: 0xFF followed by anything but a stuffed zero, a restart marker or a fill byte.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_STANDALONE = set(range(0xD0, 0xD8)) | {0x01, 0xD8}


def _check_jpeg(data: bytes) -> None:
    pos, n = 2, len(data)
    scans = metadata = segments = stray = 0
    while pos + 1 < n:
        if data[pos] != 0xFF or data[pos + 1] in (0x00, 0xFF):  # junk or fill bytes where a marker belongs
            stray += 1
            if stray > MAX_STRAY_BYTES:
                raise _too_many("stray bytes between markers", MAX_STRAY_BYTES, "JPEG")
            pos += 1
            continue
        marker = data[pos + 1]
        if marker == 0xD9:  # end of the first image: trailing data (MPO frames, appended files) is not decoded
            return
        if marker in _STANDALONE:
            pos += 2
            continue
        if pos + 4 > n:
            return  # truncated: the decoder says so
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            raise _too_many("segments", MAX_JPEG_SEGMENTS, "JPEG")
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            metadata += 1
            if metadata > MAX_JPEG_METADATA_SEGMENTS:
                raise _too_many("metadata segments", MAX_JPEG_METADATA_SEGMENTS, "JPEG")
        pos += 2 + struct.unpack_from(">H", data, pos + 2)[0]
        if marker == 0xDA:
            scans += 1
            if scans > MAX_JPEG_SCANS:
                raise _too_many("scans", MAX_JPEG_SCANS, "JPEG")
            found = _NEXT_MARKER.search(data, pos)
            if found is None:
                return
            pos = found.start()


def _check_png(data: bytes) -> None:
    pos, n, chunks = 8, len(data), 0
    while pos + 8 <= n:
        length, kind = struct.unpack_from(">I4s", data, pos)
        chunks += 1
        if chunks > MAX_PNG_CHUNKS:
            raise _too_many("chunks", MAX_PNG_CHUNKS, "PNG")
        pos += 12 + length
        if kind == b"IEND":
            return


_TIFF_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8,
                    18: 8}
_STRIP_OR_TILE_TABLES = {273: "strip offsets", 279: "strip byte counts", 324: "tile offsets", 325: "tile byte counts"}


def _check_tiff(data: bytes) -> None:
    """Only the first directory: the one Pillow opens and decodes (other pages are never loaded)."""
    endian = "<" if data[:2] == b"II" else ">"
    big = data[2:4] in (b"+\x00", b"\x00+")
    entry, count_fmt, value_fmt = (20, "Q", "Q") if big else (12, "H", "I")
    try:
        ifd = struct.unpack_from(endian + ("Q" if big else "I"), data, 8 if big else 4)[0]
        tags = struct.unpack_from(endian + count_fmt, data, ifd)[0]
    except struct.error:
        return  # truncated header: the decoder says so
    if tags > MAX_TIFF_TAGS:
        raise _too_many("tags", MAX_TIFF_TAGS, "TIFF")
    values: dict[int, int] = {}
    declared_bytes = 0
    first = ifd + struct.calcsize(count_fmt)
    for i in range(tags):
        try:
            tag, kind, count = struct.unpack_from(endian + "HH" + value_fmt, data, first + i * entry)
            inline = struct.unpack_from(endian + ("HH" if kind == 3 else value_fmt), data,
                                        first + i * entry + (12 if big else 8))[0]
        except struct.error:
            return
        size = count * _TIFF_TYPE_SIZES.get(kind, 1)
        if size > len(data):
            raise Refused(f"This TIFF file's tag {tag} declares {count:,} values, more than the file holds: "
                          "it is damaged or malformed.")
        declared_bytes += size
        if tag in _STRIP_OR_TILE_TABLES and count > MAX_TIFF_PIECES:
            raise _too_many(_STRIP_OR_TILE_TABLES[tag], MAX_TIFF_PIECES, "TIFF")
        if count == 1:
            values[tag] = inline
    if declared_bytes > 2 * len(data) + 65536:
        raise Refused("This TIFF file's tags declare more data than the file holds: it is malformed.")
    samples = values.get(277, 1)
    if samples > MAX_TIFF_SAMPLES:
        raise Refused(f"This TIFF file declares {samples} samples per pixel; the limit is {MAX_TIFF_SAMPLES}.")
    tile_w, tile_h = values.get(322), values.get(323)
    if tile_w is not None or tile_h is not None:
        bits = values.get(258, 8)
        tile_bytes = (tile_w or 1) * (tile_h or 1) * samples * max(1, (bits + 7) // 8)
        if tile_bytes > MAX_TIFF_TILE_BYTES:
            raise Refused(f"This TIFF file declares {tile_w}x{tile_h} tiles ({tile_bytes / 2**20:,.0f} MB each; the "
                          f"limit is {MAX_TIFF_TILE_BYTES // 2**20} MB): it is malformed.")


def _check_bmp(data: bytes) -> None:
    try:
        offset = struct.unpack_from("<I", data, 10)[0]
        header = struct.unpack_from("<I", data, 14)[0]
        compression = struct.unpack_from("<I", data, 30)[0] if header >= 40 else 0
    except struct.error:
        return
    if compression in (1, 2) and len(data) - offset > MAX_BMP_RLE_BYTES:
        raise Refused(f"Run-length compressed BMP files over {MAX_BMP_RLE_BYTES // 2**20} MB of pixel data are not "
                      "supported; save it as PNG or JPEG.")


def _check_gif(data: bytes) -> None:
    """The blocks before the first frame: Pillow reads them in Python (comments by repeated concatenation)."""
    n = len(data)
    if n < 13:
        return
    flags = data[10]
    pos = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    blocks = 0
    while pos < n and data[pos] == 0x21:  # extension introducer
        pos += 2
        while pos < n:
            size = data[pos]
            pos += 1 + size
            blocks += 1
            if blocks > MAX_GIF_BLOCKS:
                raise _too_many("extension blocks before its first frame", MAX_GIF_BLOCKS, "GIF")
            if size == 0:
                break


def _check_webp(data: bytes) -> None:
    pos, n, chunks = 12, len(data), 0
    while pos + 8 <= n:
        size = struct.unpack_from("<I", data, pos + 4)[0]
        chunks += 1
        if chunks > MAX_WEBP_CHUNKS:
            raise _too_many("chunks", MAX_WEBP_CHUNKS, "WebP")
        pos += 8 + size + (size & 1)
