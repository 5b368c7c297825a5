"""Load on the real server: N concurrent browser sessions, then many uploads in a row; time-to-heatmap and RSS.

    python bench/load.py [--sessions 8] [--uploads 100] [--methods grad_cam] [--timeout 900]

Starts `streamlit run app.py` on 127.0.0.1 (a free port; nothing leaves the machine) and drives headless
Chromium pages with Playwright, as users would: each session opens the app (the sample's heatmaps), then
uploads its own photo (a distinct image, so no session is served from another's cache) and waits until every
tile of that photo is drawn. It reports p50/p95 time-to-heatmap and the server's peak RSS. Then one session
uploads `--uploads` distinct photos in a row and the server's RSS is read after each: the process-wide caches
are bounded (explanations, decoded images), so RSS must level off once they are full. Without Chromium it says
so and exits 2.

The growth rule. A single reading depends on where in the allocator's free-and-retake cycle it falls (with IG,
readings one upload apart can differ by hundreds of MB), so comparing two readings judges the phase of that
saw-tooth, not growth. The verdict therefore compares windows of `--window` uploads (default 10): the maximum
RSS over the last window against the maximum over the window ending at upload `--warm` (caches full), and
passes if that grows ≤ 10 %. A leak raises every tooth and so the window's maximum; a steady saw-tooth does not.
The endpoint figure (last reading / reading at `--warm`, the rule before) and the windowed medians are printed
beside it for comparison.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from app_driver import ROOT, Server, choose_methods, one_session, photo, upload, wait_done


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


async def run(args) -> int:
    from playwright.async_api import async_playwright

    server = Server()
    print(f"server {server.url} pid {server.proc.pid}, RSS at start {server.rss() / 2**20:.0f} MiB")
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=args.browser, args=["--no-sandbox"])
            # Warm-up: the first session pays for importing torch and loading the model; not a user's wait.
            status = 0
            if args.sessions:
                warm = await one_session(browser, server.url, 0, args.timeout, args.titles)
                print(f"warm-up session: open {warm['open']:.1f} s, upload {warm['upload']:.1f} s")
                status = await concurrent_sessions(browser, server, args)
            if args.uploads:
                status = max(status, await uploads_in_a_row(browser, server, args))
            await browser.close()
    finally:
        server.stop()
    print(f"server peak RSS overall {server.peak / 2**30:.2f} GiB")
    return status


async def concurrent_sessions(browser, server: Server, args) -> int:
    """N sessions at once; a session that fails or overruns is counted and reported, not hidden."""
    async def bounded(i):
        return await asyncio.wait_for(one_session(browser, server.url, i, args.timeout, args.titles), args.timeout)

    start = time.perf_counter()
    outcomes = await asyncio.gather(*(bounded(i) for i in range(1, args.sessions + 1)), return_exceptions=True)
    wall = time.perf_counter() - start
    results = [r for r in outcomes if isinstance(r, dict)]
    failed = [f"session {i + 1}: {type(r).__name__}" for i, r in enumerate(outcomes) if not isinstance(r, dict)]
    opens, uploads = [r["open"] for r in results], [r["upload"] for r in results]
    print(f"\n{args.sessions} concurrent sessions ({wall:.1f} s wall), {len(results)} completed:")
    print(f"  open → sample heatmaps   p50 {percentile(opens, 50):6.1f} s   p95 {percentile(opens, 95):6.1f} s")
    print(f"  upload → its heatmaps    p50 {percentile(uploads, 50):6.1f} s   p95 {percentile(uploads, 95):6.1f} s")
    print(f"  server peak RSS {server.peak / 2**30:.2f} GiB")
    if failed:
        print("  FAILED: " + "; ".join(failed))
    return 1 if failed else 0


async def uploads_in_a_row(browser, server: Server, args) -> int:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(args.timeout * 1000)
    page = await context.new_page()
    await page.goto(server.url, wait_until="domcontentloaded")
    await wait_done(page, "sample: ", args.timeout)
    await choose_methods(page, args.titles, args.timeout)
    rss, times = [], []
    deadline = time.monotonic() + args.timeout
    for i in range(1, args.uploads + 1):
        times.append(await upload(page, f"row{i}.jpg", photo(5000 + i), args.timeout))
        rss.append(server.rss())
        if i in (1, args.warm, args.uploads) or i % 25 == 0:
            print(f"  upload {i:3d}: {times[-1]:5.1f} s, server RSS {rss[-1] / 2**20:7.0f} MiB", flush=True)
        if time.monotonic() > deadline:
            print(f"  stopped after {i} uploads: --timeout reached")
            break
    await context.close()
    n = len(rss)
    g = growth(rss, args.warm, args.window)
    mib = lambda b: f"{b / 2**20:.0f} MiB"  # noqa: E731
    print(f"\n{n} uploads in a row: median {statistics.median(times):.1f} s per upload")
    print("  RSS after each upload, MiB: " + " ".join(f"{r / 2**20:.0f}" for r in rss))
    print(f"  RSS growth upload 1 → {n}: {rss[-1] / rss[0] - 1:+.1%} (caches filling)")
    print(f"  RSS endpoint growth upload {g['warm']} → {n}: {g['endpoint']:+.1%} "
          f"({mib(rss[g['warm'] - 1])} → {mib(rss[-1])}; one reading each, not the verdict)")
    early, late = f"uploads {g['early'][0]}–{g['early'][1]}", f"uploads {g['late'][0]}–{g['late'][1]}"
    print(f"  RSS window median {early} {mib(g['early_median'])} → {late} {mib(g['late_median'])}: "
          f"{g['median']:+.1%}")
    verdict = "OK" if g["max"] <= 0.10 and n == args.uploads else "FAIL"
    print(f"  RSS window max    {early} {mib(g['early_max'])} → {late} {mib(g['late_max'])}: "
          f"{g['max']:+.1%} (criterion ≤ +10 %): {verdict}")
    if g["late"][0] <= g["early"][1]:
        print("  (the two windows overlap: too few uploads after --warm to judge growth)")
    return 0 if verdict == "OK" else 1


def growth(rss: list[int], warm: int, window: int) -> dict:
    """Growth of RSS readings (one per upload) from the window ending at upload `warm` to the last window.

    Windows are `window` uploads long (shorter where there are fewer readings); uploads are numbered from 1.
    Returns the endpoint growth (last reading / reading at `warm`), and the growth of the windows' max and
    median, with the windows' bounds and values.
    """
    n = len(rss)
    warm, window = max(1, min(warm, n)), max(1, window)
    early, late = rss[max(0, warm - window):warm], rss[max(0, n - window):]
    out = {"warm": warm, "endpoint": rss[-1] / rss[warm - 1] - 1,
           "early": (max(1, warm - window + 1), warm), "late": (max(1, n - window + 1), n),
           "early_max": max(early), "late_max": max(late),
           "early_median": statistics.median(early), "late_median": statistics.median(late)}
    out["max"] = out["late_max"] / out["early_max"] - 1
    out["median"] = out["late_median"] / out["early_median"] - 1
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--uploads", type=int, default=100, help="uploads in a row (0: skip)")
    parser.add_argument("--warm", type=int, default=40, help="upload after which the bounded caches are full")
    parser.add_argument("--window", type=int, default=10,
                        help="uploads per window for the RSS growth verdict (window max at --warm vs at the end)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds, per phase")
    parser.add_argument("--browser", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    parser.add_argument("--methods", default=None,
                        help="comma-separated method ids each session picks in the sidebar (default: the app's)")
    args = parser.parse_args(argv)
    args.titles = None
    if args.methods:
        sys.path.insert(0, str(ROOT))
        from explainers import method_info

        args.titles = [method_info(m.strip()).title for m in args.methods.split(",") if m.strip()]
    print(f"methods: {', '.join(args.titles) if args.titles else 'the app defaults'}")
    if not 0 <= args.sessions <= 32:
        parser.error("--sessions must be in 0..32 (each is a headless browser page; 0 skips that phase)")
    if not Path(args.browser).exists():
        print(f"No Chromium at {args.browser}: install it (make chromium) or pass --browser.", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
