"""Screenshots of the real app at the sizes people use it: a laptop (1440×900), a projector (1280×720 at 150 %
zoom, in presentation mode) and a phone (390×844). Run from the repository root: `python docs/screens/make.py
[FILE...]` (all three by default).

Starts the app on loopback (bench/app_driver.Server) and drives Debian's Chromium with Playwright.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "bench"))

from app_driver import Server  # noqa: E402

VIEW = "sample=cat_and_espresso&methods=grad_cam,integrated_gradients&steps=32"
SHOTS = [  # file, CSS viewport, device scale, extra query
    ("laptop-1440x900.png", (1440, 900), 1, ""),
    ("projector-1280x720-150.png", (853, 480), 1.5, "&present=1"),
    ("phone-390x844.png", (390, 844), 2, ""),
]


def main() -> None:
    from playwright.sync_api import sync_playwright

    server = Server()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
            for name, (width, height), scale, extra in [s for s in SHOTS if not sys.argv[1:] or s[0] in sys.argv[1:]]:
                page = browser.new_context(viewport={"width": width, "height": height},
                                           device_scale_factor=scale).new_page()
                page.goto(f"{server.url}?{VIEW}{extra}", wait_until="domcontentloaded")
                page.locator(".st-key-tiles [data-testid='stImageCaption']",
                             has_text="Integrated Gradients").wait_for(timeout=600_000)
                page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(timeout=600_000)
                page.mouse.move(0, 0)
                page.wait_for_timeout(1500)  # plotly's first layout
                page.screenshot(path=str(HERE / name))
                print("wrote", HERE / name, flush=True)
                page.context.close()
            browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
