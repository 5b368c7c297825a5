"""App re-render after a cosmetic change (opacity, colour map: a cache hit) vs recomputing the explanations.

    python bench/rerender.py [--repeats 5] [--methods grad_cam,integrated_gradients]

Drives the real app script through Streamlit's AppTest (no browser: this times the Python side of a rerun,
which is what the cache saves). Default view: EfficientNet-Lite0, the cat sample, Grad-CAM + IG (32 steps).
"recompute" clears the explanation store first (the models and the decoded image stay cached, as they would
for a user changing the class); "cosmetic" moves the opacity slider or the colour map. Medians of rounds that
alternate the two kinds.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--methods", default="grad_cam,integrated_gradients")
    args = parser.parse_args(argv)

    import logging

    logging.getLogger("streamlit").setLevel(logging.ERROR)  # AppTest's "missing ScriptRunContext" chatter
    import ui.common
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.session_state["methods"] = [m.strip() for m in args.methods.split(",") if m.strip()]
    start = time.perf_counter()
    at.run()
    first = time.perf_counter() - start
    if at.exception or at.error:
        raise SystemExit(f"the app failed: {[e.value for e in at.exception] + [e.value for e in at.error]}")
    print(f"model={at.selectbox(key='model').value} methods={args.methods} repeats={args.repeats}")
    print(f"first run (imports, model load, compute): {first:.2f} s")

    def timed(action) -> float:
        t = time.perf_counter()
        action()
        elapsed = time.perf_counter() - t
        assert not at.exception and not at.error, [e.value for e in at.exception]
        return elapsed

    cmaps = at.selectbox(key="display_cmap").options
    recompute, cosmetic = [], []
    for i in range(args.repeats):
        ui.common.explanation_store.clear()
        recompute.append(timed(lambda: at.slider(key="display_alpha").set_value(0.3 + 0.1 * (i % 2)).run()))
        cosmetic.append(timed(lambda: at.slider(key="display_alpha").set_value(0.6 + 0.1 * (i % 2)).run()))
        cosmetic.append(timed(lambda: at.selectbox(key="display_cmap").set_value(cmaps[i % len(cmaps)]).run()))
    r, c = statistics.median(recompute), statistics.median(cosmetic)
    print(f"{'recompute (cache miss)':26s} median {r * 1e3:8.1f} ms  (n={len(recompute)})")
    print(f"{'cosmetic (cache hit)':26s} median {c * 1e3:8.1f} ms  (n={len(cosmetic)})")
    print(f"cosmetic / recompute = {c / r:.3f}  ({r / c:.0f}x faster)")


if __name__ == "__main__":
    main()
