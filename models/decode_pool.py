"""Run decodes in reused worker processes (models/decode_worker.py) with a wall-clock deadline.

A worker serves one request at a time; idle ones wait in a small pool so a normal upload pays only the transfer
of its bytes and pixels. A worker that passed a limit (CPU timer, address space, wall clock) or crashed is
reaped and replaced in the background. Replies are a JSON line plus raw RGB bytes, checked against the size the
header announces; nothing is unpickled. `last_decode()` tells the calling thread what its latest decode cost.
"""
from __future__ import annotations

import atexit
import fcntl
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

WALL_LIMIT_S = 3.0        # what a session or the CLI may wait for one file, queueing included
IMAGE_BUILD_RESERVE_S = 0.3  # of which kept for making the PIL image from the pixels (40 megapixels, busy machine)
CPU_LIMIT_S = 1.5         # a 12-megapixel JPEG needs ~0.15 s, 40 megapixels ~0.5 s (bench/README.md)
MEMORY_LIMIT_BYTES = 768 * 2**20  # the worker's whole address space, interpreter and Pillow included
MAX_IDLE_WORKERS = 2
MAX_CONCURRENT = 4        # decodes at once; more wait for a slot within their wall limit
MAX_REQUESTS_PER_WORKER = 200
PIPE_BYTES = 2**20
WORKER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "decode_worker.py")


class DecodeFailed(Exception):
    """The worker gave no image; `str()` is a message for the user."""


@dataclass
class DecodeStats:
    outcome: str          # "decoded", "refused", "cpu limit", "memory limit", "wall limit", "busy", "crashed"
    wall_s: float
    cpu_s: float | None   # worker CPU for this request (None when it was killed before answering)
    peak_bytes: int | None  # worker peak RSS for this request, or for its whole life when it was killed
    worker_pid: int | None


class _Worker:
    def __init__(self):
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MALLOC_ARENA_MAX="2")
        self.proc = subprocess.Popen(
            [sys.executable, "-I", WORKER_SCRIPT, str(MEMORY_LIMIT_BYTES), str(CPU_LIMIT_S)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, close_fds=True)
        self.served = 0
        for stream in (self.proc.stdin, self.proc.stdout):  # fewer round trips for megabytes of pixels
            try:
                fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
            except OSError:  # above /proc/sys/fs/pipe-max-size: the default 64 KB works, only slower
                pass

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
        try:
            _, status, usage = os.wait4(self.proc.pid, 0)
        except ChildProcessError:  # already reaped by Popen.poll()
            return self.proc.returncode or 0, 0
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        return self.proc.returncode, usage.ru_maxrss * 1024

    def exchange(self, request: bytes, deadline: float) -> tuple[dict, bytearray] | None:
        """Send the request, read the reply; None when the deadline passes or the worker dies first."""
        out_fd, in_fd = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        os.set_blocking(out_fd, False)
        os.set_blocking(in_fd, False)
        sent, head, header, pixels, got = 0, bytearray(), None, None, 0
        with selectors.DefaultSelector() as selector:
            selector.register(out_fd, selectors.EVENT_WRITE)
            selector.register(in_fd, selectors.EVENT_READ)
            view = memoryview(request)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                for key, _ in selector.select(remaining):
                    try:
                        if key.fd == out_fd:
                            sent += os.write(out_fd, view[sent:sent + 2**20])
                            if sent == len(request):
                                selector.unregister(out_fd)
                        elif header is None:
                            chunk = os.read(in_fd, 65536)
                            if not chunk:
                                return None
                            head += chunk
                            if b"\n" in head:
                                line, _, rest = bytes(head).partition(b"\n")
                                header = json.loads(line)
                                pixels = bytearray(_payload_size(header))
                                if len(rest) > len(pixels):
                                    return None
                                pixels[:len(rest)] = rest
                                got = len(rest)
                        else:
                            count = os.readv(in_fd, [memoryview(pixels)[got:]])
                            if count == 0:
                                return None
                            got += count
                    except (BrokenPipeError, ConnectionResetError):
                        return None
                    except BlockingIOError:
                        continue
                if header is not None and got == len(pixels):
                    return header, pixels


def _payload_size(header: dict) -> int:
    if not header.get("ok"):
        return 0
    width, height = header["width"], header["height"]
    if not (isinstance(width, int) and isinstance(height, int) and 0 < width and 0 < height):
        raise ValueError("bad reply header")
    return width * height * 3


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
                self.idle.append(_Worker())

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


def decode_in_worker(data: bytes, max_pixels: int) -> tuple[int, int, bytearray]:
    """(width, height, RGB bytes) of `data`, decoded in a worker; `DecodeFailed` with a user message otherwise."""
    start = time.monotonic()
    deadline = start + WALL_LIMIT_S - IMAGE_BUILD_RESERVE_S
    pool = _get_pool()

    def finish(outcome, cpu=None, peak=None, pid=None):
        _last.stats = DecodeStats(outcome, time.monotonic() - start, cpu, peak, pid)

    if not pool.slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
        finish("busy")
        raise DecodeFailed("The server is busy decoding other images; please try again in a moment.")
    try:
        worker = pool.take()
        request = json.dumps({"size": len(data), "max_pixels": int(max_pixels)}).encode() + b"\n" + data
        try:
            reply = worker.exchange(request, deadline)
        except (ValueError, KeyError):  # a reply that does not parse: the worker is not trusted again
            reply = None
        if reply is None:
            timed_out = time.monotonic() >= deadline
            status, peak = worker.kill()
            outcome, message = _why_it_died(status, timed_out)
            finish(outcome, None, peak, worker.proc.pid)
            raise DecodeFailed(message)
        header, pixels = reply
        worker.served += 1
        pool.give_back(worker)
        finish("decoded" if header["ok"] else "refused", header.get("cpu_s"), header.get("peak_bytes"),
               worker.proc.pid)
        if not header["ok"]:
            raise DecodeFailed(str(header.get("error") or "The image could not be decoded."))
        return header["width"], header["height"], pixels
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
