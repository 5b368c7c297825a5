"""Decode latency: `read_image` through the worker process vs the same decode in-process, and the hostile corpus.

    python bench/decode.py [--rounds 7] [--no-corpus]

Normal photos (assets/samples and a generated 12-megapixel JPEG) are decoded in interleaved rounds by both paths;
medians are printed. "in-process" is `models.image_decode.decode` called directly: the structural guards and the
same Pillow decode as before the worker existed, without the process hop. Then every case of the hostile corpus
(tests/bad_inputs/hostile_cases.py) once through `read_image`, with the worker's CPU time and peak memory; the
worst wall time and peak are the figures for bench/README.md.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "bad_inputs"))

from hostile import photo_12mp  # noqa: E402
from hostile_cases import build  # noqa: E402
from models import ImageError, read_image  # noqa: E402
from models.decode_pool import last_decode  # noqa: E402
from models.image_decode import decode  # noqa: E402
from models.image_io import MAX_PIXELS  # noqa: E402


def photos() -> dict[str, bytes]:
    files = {p.name: p.read_bytes() for p in sorted((ROOT / "assets" / "samples").glob("*.jpg"))}
    files["photo_12mp.jpg (4000x3000)"] = photo_12mp()
    return files


def latency(rounds: int) -> None:
    files = photos()
    read_image(files[next(iter(files))])  # start the worker: its start-up is paid once per process
    times = {name: {"worker": [], "in-process": []} for name in files}
    for _ in range(rounds):
        for name, data in files.items():
            start = time.perf_counter()
            read_image(data)
            times[name]["worker"].append(time.perf_counter() - start)
            start = time.perf_counter()
            decode(data, MAX_PIXELS)
            times[name]["in-process"].append(time.perf_counter() - start)
    print(f"| image | in-process (before) | worker (after) | added |  ({rounds} interleaved rounds, medians)")
    print("|---|---|---|---|")
    for name, both in times.items():
        before, after = statistics.median(both["in-process"]), statistics.median(both["worker"])
        print(f"| {name} | {before * 1000:.0f} ms | {after * 1000:.0f} ms | {(after - before) * 1000:+.0f} ms |")


def corpus() -> None:
    rows = []
    for name, (make, _) in build().items():
        data = make()
        start = time.perf_counter()
        try:
            read_image(data)
            outcome = "decoded"
        except ImageError:
            outcome = "refused"
        wall = time.perf_counter() - start
        stats = last_decode()
        rows.append((wall, name, outcome, stats))
    rows.sort(key=lambda row: row[0], reverse=True)
    print(f"\n{len(rows)} hostile cases; the 8 slowest:")
    for wall, name, outcome, stats in rows[:8]:
        cpu = f"{stats.cpu_s:.2f} s" if stats.cpu_s is not None else "killed"
        print(f"  {name:42s} {outcome:8s} wall {wall:.2f} s  worker cpu {cpu}  peak {stats.peak_bytes / 2**20:.0f} MB")
    peak = max(rows, key=lambda row: row[3].peak_bytes or 0)
    print(f"worst wall {rows[0][0]:.2f} s ({rows[0][1]}); worst worker peak {peak[3].peak_bytes / 2**20:.0f} MB "
          f"({peak[1]})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-corpus", action="store_true")
    args = parser.parse_args()
    latency(args.rounds)
    if not args.no_corpus:
        corpus()


if __name__ == "__main__":
    main()
