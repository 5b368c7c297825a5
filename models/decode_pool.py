"""Run decodes in reused worker processes (models/decode_worker.py) with a wall-clock deadline.

A worker serves one request at a time; idle ones wait in a small pool so a normal upload pays only the copy of
its bytes in and its pixels out. Both travel through a memory file (memfd) that the worker inherits: one copy each
way, where a pipe would take a round trip per megabyte, each stretched by a busy scheduler. The pipes carry one
JSON line each way; nothing is unpickled, and the pixels must be exactly the size the reply announces. A worker
that passed a limit (CPU timer, address space, wall clock) or crashed is reaped and a spare started. `last_decode()`
tells the calling thread what its latest decode cost.
"""
from __future__ import annotations

import atexit
import json
import mmap
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from PIL import Image

WALL_LIMIT_S = 3.0        # what a session or the CLI may wait for one file, queueing included
IMAGE_BUILD_RESERVE_S = 0.3  # of which kept for making the PIL image from the pixels (40 megapixels, busy machine)
CPU_LIMIT_S = 1.5         # a 12-megapixel JPEG needs ~0.15 s, 36 megapixels ~0.4 s (bench/README.md)
MEMORY_LIMIT_BYTES = 768 * 2**20  # the worker's whole address space, interpreter and Pillow included
MAX_IDLE_WORKERS = 2
MAX_CONCURRENT = 4        # decodes at once; more wait for a slot within their wall limit
MAX_REQUESTS_PER_WORKER = 200
WORKER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "decode_worker.py")


class DecodeFailed(Exception):
    """The worker gave no image; `str()` is a message for the user."""


@dataclass
class DecodeStats:
    outcome: str          # "decoded", "refused", "cpu limit", "memory limit", "wall limit", "busy", "crashed"
    wall_s: float         # the whole call, the image built
    cpu_s: float | None   # worker CPU for this request (None when it was killed before answering)
    peak_bytes: int | None  # worker peak RSS for this request, or for its whole life when it was killed
    worker_pid: int | None


class _Worker:
    def __init__(self):
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MALLOC_ARENA_MAX="2")
        self.shared = os.memfd_create("decode-worker", os.MFD_CLOEXEC)
        self.proc = subprocess.Popen(
            [sys.executable, "-I", WORKER_SCRIPT, str(MEMORY_LIMIT_BYTES), str(CPU_LIMIT_S), str(self.shared)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, close_fds=True,
            pass_fds=(self.shared,))
        self.served = 0

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> tuple[int, int]:
        """Kill and reap; (exit status, peak RSS in bytes over its life)."""
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        if self.shared >= 0:
            os.close(self.shared)
            self.shared = -1
        try:
            _, status, usage = os.wait4(self.proc.pid, 0)
        except ChildProcessError:  # already reaped by Popen.poll()
            return self.proc.returncode or 0, 0
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        return self.proc.returncode, usage.ru_maxrss * 1024

    def exchange(self, data: bytes, max_pixels: int, deadline: float) -> dict | None:
        """Hand over the bytes, wait for the reply line; None when the deadline passes or the worker dies first."""
        os.ftruncate(self.shared, 0)
        view, done = memoryview(data), 0
        while done < len(view):
            done += os.pwrite(self.shared, view[done:], done)
        in_fd = self.proc.stdout.fileno()
        os.set_blocking(in_fd, False)
        try:  # one short line: far below the pipe's buffer, so this does not block
            self.proc.stdin.write(json.dumps({"size": len(data), "max_pixels": int(max_pixels)}).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ConnectionResetError):
            return None
        line = bytearray()
        with selectors.DefaultSelector() as selector:
            selector.register(in_fd, selectors.EVENT_READ)
            while b"\n" not in line:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or len(line) > 65536:
                    return None
                if selector.select(remaining):
                    try:
                        chunk = os.read(in_fd, 65536)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        return None
                    line += chunk
        return json.loads(bytes(line).partition(b"\n")[0])

    def image(self, reply: dict, max_pixels: int) -> Image.Image:
        """The RGB image the worker left in the memory file as binary PPM (checked against the reply)."""
        width, height = reply["width"], reply["height"]
        if not (type(width) is int and type(height) is int and 0 < width and 0 < height
                and width * height <= max_pixels):
            raise ValueError("the reply's size is out of bounds")
        header = b"P6\n%d %d\n255\n" % (width, height)
        size = len(header) + width * height * 3
        if os.fstat(self.shared).st_size != size:
            raise ValueError("the pixels do not match the reply")
        image = Image.new("RGB", (width, height), None)  # no fill: every pixel is written next
        with mmap.mmap(self.shared, size, prot=mmap.PROT_READ) as ppm:
            if ppm[:len(header)] != header:
                raise ValueError("the pixels do not match the reply")
            with memoryview(ppm) as view:
                image.frombytes(view[len(header):])
        os.ftruncate(self.shared, 0)  # give the pages back while the worker waits
        return image


class _Pool:
    def __init__(self):
        self.pid = os.getpid()
        self.idle: list[_Worker] = []
        self.lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(MAX_CONCURRENT)

    def take(self) -> _Worker:
        with self.lock:
            while self.idle:
                worker = self.idle.pop()
                if worker.alive():
                    return worker
                worker.kill()
        return _Worker()

    def give_back(self, worker: _Worker) -> None:
        with self.lock:
            if worker.alive() and worker.served < MAX_REQUESTS_PER_WORKER and len(self.idle) < MAX_IDLE_WORKERS:
                self.idle.append(worker)
                return
        worker.kill()

    def keep_one_ready(self) -> None:
        """Start a spare worker now, so the next upload does not pay the interpreter's start-up."""
        with self.lock:
            if not self.idle:
                try:
                    self.idle.append(_Worker())
                except OSError:  # the next decode tries again, and says so if it cannot
                    pass

    def close(self) -> None:
        with self.lock:
            workers, self.idle = self.idle, []
        for worker in workers:
            worker.kill()


_pool: _Pool | None = None
_pool_lock = threading.Lock()
_last = threading.local()


def _get_pool() -> _Pool:
    global _pool
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid():  # a forked child must not share its parent's pipes
            _pool = _Pool()
        return _pool


def reset() -> None:
    """Stop every idle worker; the next decode starts fresh ones with the module's current limits."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None and pool.pid == os.getpid():
        pool.close()


atexit.register(reset)


def last_decode() -> DecodeStats | None:
    """What the calling thread's latest `decode_in_worker` cost (tests and benchmarks read it)."""
    return getattr(_last, "stats", None)


def decode_in_worker(data: bytes, max_pixels: int) -> Image.Image:
    """`data` decoded by a worker into an RGB image; `DecodeFailed` with a message for the user otherwise."""
    start = time.monotonic()
    deadline = start + WALL_LIMIT_S - IMAGE_BUILD_RESERVE_S
    pool = _get_pool()

    def finish(outcome, cpu=None, peak=None, pid=None):
        _last.stats = DecodeStats(outcome, time.monotonic() - start, cpu, peak, pid)

    if not pool.slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
        finish("busy")
        raise DecodeFailed("The server is busy decoding other images; please try again in a moment.")
    try:
        try:
            worker = pool.take()
        except OSError as err:  # no interpreter to start, no file descriptors left...
            finish("crashed")
            raise DecodeFailed(f"The image decoder could not be started ({type(err).__name__}); please try again.")
        try:
            reply = worker.exchange(data, max_pixels, deadline)
            image = worker.image(reply, max_pixels) if reply is not None and reply["ok"] else None
        except (ValueError, KeyError, TypeError, OSError):  # a reply that does not check out: not trusted again
            reply = None
        if reply is None:
            timed_out = time.monotonic() >= deadline
            status, peak = worker.kill()
            outcome, message = _why_it_died(status, timed_out)
            finish(outcome, None, peak, worker.proc.pid)
            raise DecodeFailed(message)
        worker.served += 1
        pool.give_back(worker)
        finish("decoded" if reply["ok"] else "refused", reply.get("cpu_s"), reply.get("peak_bytes"), worker.proc.pid)
        if image is None:
            raise DecodeFailed(str(reply.get("error") or "The image could not be decoded."))
        return image
    finally:
        pool.slots.release()
        pool.keep_one_ready()


def _why_it_died(status: int, timed_out: bool) -> tuple[str, str]:
    if status in (-signal.SIGPROF, -signal.SIGXCPU):
        return "cpu limit", (f"Decoding this image needed more than {CPU_LIMIT_S:g} s of processor time: the file is "
                             "malformed or built to stall decoders.")
    if timed_out:
        return "wall limit", (f"Decoding this image took longer than {WALL_LIMIT_S:g} s (the server may be busy); "
                              "please try again, or upload a smaller image.")
    if status in (-signal.SIGSEGV, -signal.SIGBUS, -signal.SIGABRT, -signal.SIGKILL):
        return "memory limit", (f"The image needs more than {MEMORY_LIMIT_BYTES // 2**20} MB of memory to decode, "
                                "or the decoder failed on it.")
    return "crashed", "The image could not be decoded: the decoder stopped on it."
