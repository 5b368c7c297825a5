"""Decoding is bounded: every hostile file is decoded or refused within the wall limit and the worker's memory limit.

The corpus is built at test time (tests/bad_inputs/hostile.py, hostile_cases.py). Each case goes through
`read_image`; the worker reports its CPU time and peak resident memory for the request (or, when it was killed,
its whole life's peak from wait4), which the tests hold against the limits. Odd but valid images must come out
right, and the worker itself must be the isolated, reused, torch-free process the design promises.
"""
from __future__ import annotations

import io
import re
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models import ImageError, read_image
from models import decode_pool
from models.decode_pool import last_decode
from models.image_io import MAX_UPLOAD_BYTES, MEMORY_LIMIT_BYTES, WALL_LIMIT_S

sys.path.insert(0, str(Path(__file__).resolve().parent / "bad_inputs"))
import hostile  # noqa: E402
from hostile_cases import build  # noqa: E402

CASES = build()
WALL_SLACK = 1.15  # the scheduler of a busy machine may wake the caller a little late
HEAVY = {name for name in CASES if "6000" in name or "36mp" in name}  # 36-megapixel decodes: ~2 s each when busy


def test_the_corpus_covers_every_class():
    assert len(CASES) >= 60
    for word in ("jpeg_scans", "jpeg_app", "png_chunks", "png_empty_idat", "tiff_strips", "tiff_tiles", "bmp_rle8",
                 "declared", "truncated", "gif_comment", "float", "int32", "trns"):
        assert any(word in name for name in CASES), word
    assert {c["expect"] for _, c in CASES.values()} == {"refused", "accepted", "bounded"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in CASES])
def test_each_case_is_decoded_or_refused_within_the_limits(name):
    make, expectation = CASES[name]
    data = make()
    assert 0 < len(data) <= MAX_UPLOAD_BYTES, name
    start = time.perf_counter()
    try:
        image, message = read_image(data), None
    except ImageError as err:
        image, message = None, str(err)
    wall = time.perf_counter() - start
    stats = last_decode()
    assert wall <= WALL_LIMIT_S * WALL_SLACK, (name, wall, stats)
    assert stats.peak_bytes is not None and stats.peak_bytes <= MEMORY_LIMIT_BYTES, (name, stats)
    if expectation["expect"] == "accepted":
        assert message is None, (name, message)
        assert image.mode == "RGB" and list(image.size) == expectation["size"], name
    elif expectation["expect"] == "refused":
        assert message is not None and re.search(expectation["message"], message), (name, message)
    if message is not None:
        assert "\n" not in message and len(message) < 240 and "Traceback" not in message, message


# ---------------------------------------------------------------- odd but valid images come out right

def grey(data: bytes) -> np.ndarray:
    return np.asarray(read_image(data))[..., 0]


def test_float_tiff_with_infinities_and_nan():
    out = grey(hostile.float_tiff_with_infinities())
    assert out[0, 0] == 255 and out[0, 1] == 0 and out[0, 2] == 0  # +inf at the top, -inf and NaN at the bottom
    assert len(np.unique(out)) > 200  # the finite ramp spreads over the whole range


def test_int32_above_16_bits_keeps_its_levels():
    out = grey(hostile.int32_tiff_above_16_bits())  # 0 … 4,000,000
    assert out.min() == 0 and out.max() == 255 and len(np.unique(out)) > 200


def test_16_bit_narrow_range_is_stretched():
    out = grey(hostile.grey16_tiff())  # 1000 … 3000 of 65535
    assert out.min() == 0 and out.max() == 255


@pytest.mark.parametrize("make", [hostile.grey_png_with_trns, hostile.rgb_png_with_trns])
def test_colour_key_transparency_goes_on_white_like_every_other_kind(make):
    out = np.asarray(read_image(make()))
    assert (out[8:24, 8:24] == 255).all()  # the transparent square
    assert (out[0, 0] == 200).all()       # the opaque rest keeps its value


def test_16_bit_grey_key_transparency_goes_on_white():
    out = grey(hostile.grey16_png_with_trns())
    assert (out[8:24, 8:24] == 255).all() and 0 < out[0, 0] < 30


def test_palette_and_alpha_transparency_follow_the_same_rule():
    pal = Image.new("P", (16, 16), 3)
    pal.putpalette([0, 0, 0] * 256)
    alpha = Image.new("LA", (16, 16), (0, 0))
    for image, options in ((pal, {"transparency": 3}), (alpha, {})):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", **options)
        assert (np.asarray(read_image(buffer.getvalue())) == 255).all()


def test_small_file_declaring_a_huge_image_is_refused_before_decoding():
    data = hostile.png_with_size(20000, 20000)
    assert len(data) < 1000
    with pytest.raises(ImageError, match="megapixels"):
        read_image(data)
    stats = last_decode()
    assert stats.outcome == "refused" and stats.peak_bytes < 100 * 2**20


# ---------------------------------------------------------------- the worker

def worker_pid() -> int:
    read_image(hostile.encode(hostile.photo(), "PNG"))
    return last_decode().worker_pid


def test_worker_is_reused_isolated_and_limited():
    pid = worker_pid()
    assert worker_pid() == pid  # reused between requests
    maps = Path(f"/proc/{pid}/maps").read_text()
    assert "torch" not in maps and "libtorch" not in maps
    limits = Path(f"/proc/{pid}/limits").read_text()
    address_space = re.search(r"Max address space\s+(\d+)\s+(\d+)", limits)
    assert address_space and int(address_space.group(1)) == int(address_space.group(2)) == MEMORY_LIMIT_BYTES
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"-I" in cmdline and cmdline[2].endswith(b"decode_worker.py")


@pytest.fixture
def limits(monkeypatch):
    """Lets a test tighten the limits; fresh workers pick them up, and the defaults come back afterwards."""
    decode_pool.reset()
    yield monkeypatch
    monkeypatch.undo()
    decode_pool.reset()


def test_cpu_limit_kills_a_decode_that_spins(limits):
    limits.setattr(decode_pool, "CPU_LIMIT_S", 0.02)
    with pytest.raises(ImageError, match="processor time"):
        read_image(hostile.photo_12mp())
    assert last_decode().outcome == "cpu limit"


def test_memory_limit_refuses_what_does_not_fit(limits):
    limits.setattr(decode_pool, "MEMORY_LIMIT_BYTES", 100 * 2**20)
    with pytest.raises(ImageError, match="memory"):
        read_image(hostile.photo_12mp())  # 12 MP needs ~150 MB decoded, plus the interpreter
    stats = last_decode()
    assert stats.outcome in ("refused", "memory limit") and stats.peak_bytes <= 100 * 2**20


def test_wall_limit_gives_up_and_the_next_upload_works(limits):
    limits.setattr(decode_pool, "WALL_LIMIT_S", 0.05)  # a 12-megapixel decode needs ~0.15 s of CPU on its own
    limits.setattr(decode_pool, "IMAGE_BUILD_RESERVE_S", 0.0)
    photo = hostile.photo_12mp()
    start = time.perf_counter()
    with pytest.raises(ImageError, match="took longer"):
        read_image(photo)
    assert time.perf_counter() - start < 0.05 + 0.5  # the deadline, plus killing and reaping on a busy machine
    killed = last_decode().worker_pid
    assert last_decode().outcome == "wall limit" and not Path(f"/proc/{killed}").exists()
    limits.undo()  # the default limits again: the next upload gets a working worker
    assert read_image(hostile.encode(hostile.photo(), "PNG")).size == (96, 64)


def test_a_decoder_that_cannot_start_is_a_message(limits):
    limits.setattr(decode_pool, "WORKER_SCRIPT", "/nonexistent/decode_worker.py")  # the interpreter exits at once
    with pytest.raises(ImageError, match="could not be decoded|decoder"):
        read_image(hostile.encode(hostile.photo(), "PNG"))
    limits.setattr(decode_pool.sys, "executable", "/nonexistent/python")
    decode_pool.reset()
    with pytest.raises(ImageError, match="could not be started"):
        read_image(hostile.encode(hostile.photo(), "PNG"))


def test_concurrent_decodes_each_get_their_own_worker():
    photos = [hostile.encode(hostile.photo(1600, 1200, seed=i), "JPEG") for i in range(4)]
    start_together = threading.Barrier(len(photos))
    sizes = {}

    def decode(i):
        start_together.wait()
        sizes[i] = read_image(photos[i]).size

    threads = [threading.Thread(target=decode, args=(i,)) for i in range(len(photos))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sizes == {i: (1600, 1200) for i in range(len(photos))}
    pool = decode_pool._get_pool()
    first, second = pool.take(), pool.take()  # a worker in use is never handed out again: no serialising
    assert first.proc.pid != second.proc.pid
    pool.give_back(first)
    pool.give_back(second)


def test_no_pickle_or_torch_on_either_side_of_the_worker():
    models_dir = Path(__file__).resolve().parent.parent / "models"
    for name in ("decode_pool.py", "decode_worker.py", "image_decode.py", "image_guards.py"):
        source = (models_dir / name).read_text()
        assert not re.search(r"^\s*(import|from)\s+(pickle|multiprocessing|torch)\b", source, re.M), name
