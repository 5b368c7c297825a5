"""The decode worker: a separate, reused process that turns untrusted bytes into RGB pixels under hard limits.

Started by models/decode_pool.py as `python -I decode_worker.py MEMORY_BYTES CPU_SECONDS SHARED_FD`; never
imported by the app. It imports only Pillow (numpy when an image needs it) and the two sibling modules image_guards and
image_decode, never torch. Limits: the address space (RLIMIT_AS) for the whole process, and per request a
CPU-time timer (ITIMER_PROF: the kernel ends the process with SIGPROF, even inside a C decoder) backed by
RLIMIT_CPU. CPU time, not wall time, so a busy machine does not make a normal photo look hostile; the parent
adds the wall-clock limit.

Protocol (no pickle either way), one request at a time: the file's bytes are in the memory file SHARED_FD (a
memfd the parent passes), the request on stdin is a JSON line {"size": N, "max_pixels": P}. The reply on stdout
is a JSON line, {"ok": true, "width": W, "height": H, "cpu_s": .., "peak_bytes": ..} with the image left in the
memory file as binary PPM (header "P6", W H, 255, then exactly W*H*3 RGB bytes), or {"ok": false, "error":
"message for the user", "cpu_s": .., "peak_bytes": ..}.
"""
import json
import math
import os
import resource
import signal
import sys
import time


def _peak_bytes() -> int:
    """This request's peak resident memory (VmHWM, reset before each request)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:  # not Linux, or /proc read-only: the peak then covers the worker's lifetime
        pass


def _read_request(shared: int, size: int) -> bytes:
    data = os.pread(shared, size, 0)
    os.ftruncate(shared, 0)  # the pages go back before decoding needs memory
    return data


def _write_pixels(shared: int, image) -> None:
    """The image as binary PPM (a short header, then the RGB bytes): Pillow writes it to the file in one pass."""
    os.ftruncate(shared, 0)
    os.lseek(shared, 0, os.SEEK_SET)
    with os.fdopen(os.dup(shared), "wb") as out:
        image.save(out, "PPM")


def main(memory_bytes: int, cpu_seconds: float, shared: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I leaves the script's folder out
    from image_decode import decode
    from image_guards import Refused

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        line = stdin.readline()
        if not line:
            return
        request = json.loads(line)
        data = _read_request(shared, int(request["size"]))
        _reset_peak()
        start = time.process_time()
        resource.setrlimit(resource.RLIMIT_CPU, (math.ceil(start + cpu_seconds) + 1, resource.RLIM_INFINITY))
        signal.setitimer(signal.ITIMER_PROF, cpu_seconds)
        reply = {"ok": False}
        try:
            image = decode(data, int(request["max_pixels"]))
            _write_pixels(shared, image)
            reply = {"ok": True, "width": image.width, "height": image.height}
            del image
        except Refused as err:
            reply["error"] = str(err)
        except MemoryError:
            reply["error"] = "The image needs more memory to decode than an upload may use."
        except Exception as err:  # a decoder bug: say so briefly, never with internals
            reply["error"] = f"The image could not be decoded ({type(err).__name__})."
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
        del data
        reply.update(cpu_s=time.process_time() - start, peak_bytes=_peak_bytes())
        stdout.write(json.dumps(reply).encode() + b"\n")
        stdout.flush()


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]))
