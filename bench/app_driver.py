"""Drive the real app: `streamlit run app.py` on loopback with its RSS sampled, and Playwright pages that upload a
photo and wait until every tile is drawn. Used by bench/load.py."""
from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "assets" / "samples" / "cat.jpg"

# True once the page shows `source` (the sidebar's "upload: NAME" or "sample: NAME") and the run is over: no
# element left from the previous run (Streamlit marks those data-stale until it redraws or drops them), no
# progress bar, and a tile (image) per method chosen in the sidebar besides the input. (Between two methods a
# run can briefly have no progress bar, so counting tiles is what tells "done" from "between methods".)
DONE_JS = """(source) => {
  const fresh = el => !el.closest('[data-stale="true"]');
  const main = document.querySelector('[data-testid="stMain"]') || document.body;
  const shown = [...main.querySelectorAll('[data-testid="stMarkdownContainer"], [data-testid="stCaptionContainer"]')]
      .some(e => fresh(e) && e.innerText.includes(source));
  const stale = main.querySelectorAll('[data-stale="true"]').length;
  const busy = main.querySelectorAll('[data-testid="stProgress"], [data-testid="stSpinner"]').length;
  const tiles = [...main.querySelectorAll('[data-testid="stImageCaption"]')].filter(fresh).length;
  const picker = document.querySelector('[data-testid="stSidebar"] [data-testid="stMultiSelect"]');
  const wanted = picker ? picker.querySelectorAll('[data-tag]').length : 1;
  return shown && stale === 0 && busy === 0 && tiles >= 1 + wanted;
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


class Server:
    """`streamlit run app.py` on loopback, with a thread sampling its RSS."""

    def __init__(self, startup_timeout: float = 90):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(self.port),
             "--server.address", "127.0.0.1", "--server.headless", "true"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env={**os.environ, "ATTRIBUTION_CLICK_ABOVE_S": "inf"})  # every tile computes, as the timing expects
        self.peak = 0
        self._stop = threading.Event()
        deadline = time.monotonic() + startup_timeout
        while True:
            if self.proc.poll() is not None:
                raise SystemExit("the server exited:\n" + self.proc.stderr.read().decode()[-3000:])
            try:
                with urllib.request.urlopen(self.url + "_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit("the server did not become healthy in time")
            time.sleep(0.3)
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_bytes(self.proc.pid))
            except OSError:
                return
            time.sleep(0.2)

    def rss(self) -> int:
        return rss_bytes(self.proc.pid)

    def stop(self) -> None:
        self._stop.set()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def photo(seed: int) -> bytes:
    """The cat sample with seeded noise: a different image (and cache key) per seed, same content."""
    image = np.asarray(Image.open(SAMPLE).convert("RGB"), dtype=np.int16)
    noise = np.random.default_rng(seed).integers(-6, 7, image.shape, dtype=np.int16)
    buf = io.BytesIO()
    Image.fromarray(np.clip(image + noise, 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


async def wait_done(page, source: str, timeout_s: float) -> None:
    await page.wait_for_function(DONE_JS, arg=source, timeout=timeout_s * 1000, polling=100)


async def upload(page, name: str, data: bytes, timeout_s: float) -> float:
    """Seconds from handing the file to the uploader until every tile for it is drawn."""
    start = time.perf_counter()
    await page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        files=[{"name": name, "mimeType": "image/jpeg", "buffer": data}])
    await wait_done(page, f"upload: {name}", timeout_s)
    return time.perf_counter() - start


async def choose_methods(page, titles: list[str] | None, timeout_s: float) -> None:
    """Make the sidebar's method picker hold exactly `titles` (None: leave the app's defaults)."""
    if titles is None:
        return
    picker = page.locator('[data-testid="stMultiSelect"]').first
    for title in [t for t in await picker.locator("[data-tag] > span[title]").all_inner_texts() if t not in titles]:
        await picker.get_by_role("button", name=f"Remove {title}").click()
        await wait_done(page, "sample: ", timeout_s)
    present = await picker.locator("[data-tag] > span[title]").all_inner_texts()
    for title in [t for t in titles if t not in present]:
        box = picker.locator("input").first
        await box.click()
        await box.fill(title)
        await box.press("Enter")
        await page.keyboard.press("Escape")
        await wait_done(page, "sample: ", timeout_s)


async def one_session(browser, url: str, index: int, timeout_s: float, titles: list[str] | None = None) -> dict:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(timeout_s * 1000)  # Playwright's 30 s default is short for 8 pages on 2 cores
    try:
        page = await context.new_page()
        start = time.perf_counter()
        await page.goto(url, wait_until="domcontentloaded")
        await wait_done(page, "sample: ", timeout_s)
        opened = time.perf_counter() - start
        await choose_methods(page, titles, timeout_s)
        uploaded = await upload(page, f"session{index}.jpg", photo(1000 + index), timeout_s)
        print(f"  session {index}: open {opened:.1f} s, upload {uploaded:.1f} s", flush=True)
        return {"open": opened, "upload": uploaded}
    finally:
        await context.close()
