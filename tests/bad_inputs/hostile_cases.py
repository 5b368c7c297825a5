"""The hostile corpus: name → (function making the bytes, expectation). See hostile.py for the builders."""
from __future__ import annotations

from typing import Callable

from hostile import (STALL, TOO_BIG, bmp_rle8, bmp_rle8_escapes, bmp_with_size, encode, float_tiff_with_infinities,
                     gif_with_extensions, gif_with_size, grey16_png_with_trns, grey16_tiff, grey_png_with_trns,
                     int32_tiff_above_16_bits, jpeg_with_empty_scans, jpeg_with_segments, jpeg_with_size,
                     jpeg_with_stray_bytes, photo, photo_12mp, png_chunk, png_deflate_bomb, png_split_idat,
                     png_text_bomb, png_with_chunks, png_with_size, rgb_png_with_trns, tiff_big_tag_data, tiff_strips,
                     tiff_tiles, tiff_with_tags, truncated, webp_with_size)

DAMAGED = "damaged|truncated|could not be decoded"


def refuse(pattern: str) -> dict:
    return {"expect": "refused", "message": pattern}


def accept(width: int, height: int) -> dict:
    return {"expect": "accepted", "size": [width, height]}


BOUNDED = {"expect": "bounded"}


def build() -> dict[str, tuple[Callable[[], bytes], dict]]:
    def jpeg():
        return encode(photo(640, 480), "JPEG", quality=90)

    def progressive():
        return encode(photo(640, 480), "JPEG", quality=90, progressive=True)

    def png():
        return encode(photo(640, 480), "PNG")

    def tif():
        return encode(photo(320, 240), "TIFF", compression="tiff_lzw")

    def bmp():
        return encode(photo(320, 240), "BMP")

    def gif():
        return encode(photo(320, 240).quantize(64), "GIF")

    def webp():
        return encode(photo(320, 240), "WEBP", quality=80)

    cases: dict[str, tuple[Callable[[], bytes], dict]] = {
        # JPEG: scans, segments, stray bytes, declared size
        "jpeg_scans_100.jpg": (lambda: jpeg_with_empty_scans(100), refuse(STALL)),
        "jpeg_scans_10000.jpg": (lambda: jpeg_with_empty_scans(10_000), refuse(STALL)),
        "jpeg_scans_100000.jpg": (lambda: jpeg_with_empty_scans(100_000), refuse(STALL)),
        "jpeg_scans_50_large.jpg": (lambda: jpeg_with_empty_scans(50, (1024, 1024)), BOUNDED),
        "jpeg_scans_50_declared_36mp.jpg": (lambda: _declare(jpeg_with_empty_scans(50), 6000, 6000), BOUNDED),
        "jpeg_app_1000.jpg": (lambda: jpeg_with_segments(0xE5, 1000), refuse(STALL)),
        "jpeg_app_1m.jpg": (lambda: jpeg_with_segments(0xE5, 1_000_000), refuse(STALL)),
        "jpeg_com_100k.jpg": (lambda: jpeg_with_segments(0xFE, 100_000, b"x"), refuse(STALL)),
        "jpeg_app1_exif_junk_120.jpg": (lambda: jpeg_with_segments(0xE1, 120, b"Exif\0\0" + b"\xff" * 60000),
                                        BOUNDED),
        "jpeg_dqt_5000.jpg": (lambda: jpeg_with_segments(0xDB, 5000, b"\x00" + b"\x01" * 64), refuse(STALL)),
        "jpeg_stray_ff_5m.jpg": (lambda: jpeg_with_stray_bytes(5_000_000), refuse(STALL)),
        "jpeg_declared_65535.jpg": (lambda: jpeg_with_size(65535, 65535), refuse(TOO_BIG)),
        "jpeg_declared_65535_progressive.jpg": (lambda: jpeg_with_size(65535, 65535, True), refuse(TOO_BIG)),
        "jpeg_declared_7000x6000.jpg": (lambda: jpeg_with_size(7000, 6000), refuse(TOO_BIG)),
        "jpeg_declared_6000x6000.jpg": (lambda: jpeg_with_size(6000, 6000), BOUNDED),
        "jpeg_declared_6000x6000_progressive.jpg": (lambda: jpeg_with_size(6000, 6000, True), BOUNDED),
        "jpeg_zero_width.jpg": (lambda: jpeg_with_size(0, 64), refuse(DAMAGED)),
        # PNG: chunks, declared size, compression bombs
        "png_chunks_1m.png": (lambda: png_with_chunks(1_000_000), refuse(STALL)),
        "png_chunks_100k_after_idat.png": (lambda: png_with_chunks(100_000, before_idat=False), refuse(STALL)),
        "png_text_50k.png": (lambda: png_with_chunks(50_000, b"tEXt", b"k\x00v"), refuse(STALL)),
        "png_empty_idat_500k.png": (lambda: png_split_idat(500_000), refuse(STALL)),
        "png_empty_idat_5000.png": (lambda: png_split_idat(5000), accept(96, 64)),
        "png_ztxt_bomb.png": (lambda: png_text_bomb(b"zTXt"), BOUNDED),
        "png_iccp_bomb.png": (lambda: png_text_bomb(b"iCCP"), BOUNDED),
        "png_declared_65535.png": (lambda: png_with_size(65535, 65535), refuse(TOO_BIG)),
        "png_declared_2g_wide.png": (lambda: png_with_size(2**31 - 1, 1), refuse(DAMAGED + "|" + TOO_BIG)),
        "png_declared_6000_16bit_rgba.png": (lambda: png_with_size(6000, 6000, 16, 6), refuse(DAMAGED)),
        "png_deflate_6000.png": (lambda: png_deflate_bomb(6000), accept(6000, 6000)),
        "png_deflate_7000.png": (lambda: png_deflate_bomb(7000), refuse(TOO_BIG)),
        "png_huge_chunk_length.png": (lambda: _patch(png(), 33, b"\x7f\xff\xff\xff"), refuse(DAMAGED)),
        "png_apng_many_frames.png": (lambda: png_with_chunks(15_000, b"fcTL", b"\0" * 26), BOUNDED),
        # TIFF: strips, tiles, tags, declared sizes
        "tiff_strips_1m.tiff": (lambda: tiff_strips(64, 64, 1_000_000), refuse(STALL)),
        "tiff_strips_2m.tiff": (lambda: tiff_strips(64, 64, 2_000_000), refuse(STALL)),
        "tiff_strips_50k.tiff": (lambda: tiff_strips(64, 50_000, 50_000), refuse(TOO_BIG + "|aspect")),
        "tiff_tiles_65520.tiff": (lambda: tiff_tiles(64, 64, 65520), refuse("tiles")),
        "tiff_tiles_32768.tiff": (lambda: tiff_tiles(64, 64, 32768), refuse("tiles")),
        "tiff_tiles_16384_on_6000.tiff": (lambda: tiff_tiles(6000, 6000, 16384), refuse("tiles")),
        "tiff_tiles_4096.tiff": (lambda: tiff_tiles(64, 64, 4096), BOUNDED),
        "tiff_tags_60000.tiff": (lambda: tiff_with_tags(60_000), refuse(STALL)),
        "tiff_tags_500.tiff": (lambda: tiff_with_tags(500), BOUNDED),
        "tiff_tag_data_600x1mb.tiff": (lambda: tiff_big_tag_data(600), refuse("more data than the file holds")),
        "tiff_declared_65535.tiff": (lambda: tiff_tiles(65535, 65535, 256), refuse(TOO_BIG)),
        "tiff_declared_zero.tiff": (lambda: tiff_tiles(0, 0, 16), refuse(DAMAGED + "|at least")),
        # BMP
        "bmp_rle8_1m_runs.bmp": (lambda: bmp_rle8(2000, 1000, 1_000_000), refuse("Run-length")),
        "bmp_rle8_5m_escapes.bmp": (lambda: bmp_rle8_escapes(2_500_000), refuse("Run-length")),
        "bmp_rle8_100k_runs.bmp": (lambda: bmp_rle8(1000, 500, 100_000), accept(1000, 500)),
        "bmp_declared_65535.bmp": (lambda: bmp_with_size(65535, 65535), refuse(TOO_BIG)),
        "bmp_declared_top_down_huge.bmp": (lambda: bmp_with_size(30000, -30000), refuse(TOO_BIG)),
        "bmp_declared_6000.bmp": (lambda: bmp_with_size(6000, 6000), refuse(DAMAGED)),
        # GIF and WebP
        "gif_comment_blocks_80k.gif": (lambda: gif_with_extensions(80_000), refuse(STALL)),
        "gif_comment_blocks_1000.gif": (lambda: gif_with_extensions(1000), accept(16, 16)),
        "gif_frame_65535.gif": (lambda: gif_with_size(65535, 65535), BOUNDED),
        "webp_declared_16384.webp": (lambda: webp_with_size(16384), refuse(TOO_BIG + "|" + DAMAGED)),
        # truncated at several points
        "truncated_jpeg_10.jpg": (truncated(jpeg, 0.1), refuse(DAMAGED)),
        "truncated_jpeg_90.jpg": (truncated(jpeg, 0.9), refuse(DAMAGED)),
        "truncated_progressive_50.jpg": (truncated(progressive, 0.5), refuse(DAMAGED)),
        "truncated_png_95.png": (truncated(png, 0.95), refuse(DAMAGED)),
        "truncated_tiff_60.tiff": (truncated(tif, 0.6), refuse(DAMAGED)),
        "truncated_bmp_50.bmp": (truncated(bmp, 0.5), refuse(DAMAGED)),
        "truncated_gif_50.gif": (truncated(gif, 0.5), BOUNDED),
        "truncated_webp_70.webp": (truncated(webp, 0.7), refuse(DAMAGED)),
        "truncated_12mp_jpeg_80.jpg": (truncated(photo_12mp, 0.8), refuse(DAMAGED)),
        # valid but odd: must come out right
        "photo_12mp.jpg": (photo_12mp, accept(4000, 3000)),
        "float_infinities.tiff": (float_tiff_with_infinities, accept(32, 32)),
        "int32_above_65535.tiff": (int32_tiff_above_16_bits, accept(32, 32)),
        "grey16_narrow_range.tiff": (grey16_tiff, accept(32, 32)),
        "grey_trns.png": (grey_png_with_trns, accept(32, 32)),
        "rgb_trns.png": (rgb_png_with_trns, accept(32, 32)),
        "grey16_trns.png": (grey16_png_with_trns, accept(32, 32)),
        "cmyk_progressive.jpg": (lambda: encode(photo().convert("CMYK"), "JPEG", progressive=True), accept(96, 64)),
        "one_bit.tiff": (lambda: encode(photo().convert("1"), "TIFF"), accept(96, 64)),
        "la.png": (lambda: encode(photo().convert("LA"), "PNG"), accept(96, 64)),
        "rgba_tiff.tiff": (lambda: encode(photo().convert("RGBA"), "TIFF"), accept(96, 64)),
        "palette_bmp_rle8.bmp": (lambda: encode(photo().quantize(200), "BMP"), accept(96, 64)),
        "png_with_after_iend.png": (lambda: encode(photo(), "PNG") + png_chunk(b"ruSt", b"") * 100_000,
                                    accept(96, 64)),
    }
    return cases


def _patch(data: bytes, at: int, value: bytes) -> bytes:
    return data[:at] + value + data[at + len(value):]


def _declare(data: bytes, width: int, height: int) -> bytes:
    """Rewrite the size in the first frame header (baseline or progressive)."""
    at = min(i for i in (data.find(b"\xff\xc0"), data.find(b"\xff\xc2")) if i >= 0)
    return data[:at + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + data[at + 9:]

