"""Score-CAM with the top-k channels (by mean activation) against the full method: error and time.

    python bench/score_cam_top_k.py [--ks 32,64,128] [--device cpu] [--threads 1]

The bundled EfficientNet-Lite0 on every image of assets/samples, target = the predicted class. For each k: the
Pearson and Spearman correlation of the layer-resolution map with the full Score-CAM's, and the time of both.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from explainers import explain  # noqa: E402
from models import load_model, read_image  # noqa: E402


def timed(bundle, x, target, **options):
    start = time.perf_counter()
    exp = explain(bundle, x, target, "score_cam", **options)
    return exp, time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--ks", default="32,64,128")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    ks = [int(k) for k in args.ks.split(",")]
    bundle = load_model("efficientnet_lite0", device=args.device)
    rows = {k: [] for k in ks}
    for path in sorted((ROOT / "assets" / "samples").glob("*.jpg")):
        x = bundle.preprocess(read_image(path.read_bytes()))
        target = bundle.predict(x, 1)[0][0]
        full, full_s = timed(bundle, x, target)
        print(f"{path.stem}: full {full.extras['forwards']} forwards, {full_s:.1f} s", flush=True)
        for k in ks:
            part, part_s = timed(bundle, x, target, top_k=k)
            a, b = full.attribution.ravel(), part.attribution.ravel()
            rows[k].append((pearsonr(a, b)[0], spearmanr(a, b)[0], part_s, full_s))
            print(f"  top_k={k}: pearson {rows[k][-1][0]:.3f} spearman {rows[k][-1][1]:.3f} {part_s:.1f} s", flush=True)
    print("\n| top_k | Pearson mean (min) | Spearman mean (min) | time | full Score-CAM | speed-up |")
    print("|---|---|---|---|---|---|")
    for k in ks:
        r = np.array(rows[k])
        print(f"| {k} | {r[:, 0].mean():.3f} ({r[:, 0].min():.3f}) | {r[:, 1].mean():.3f} ({r[:, 1].min():.3f}) | "
              f"{r[:, 2].mean():.1f} s | {r[:, 3].mean():.1f} s | {r[:, 3].mean() / r[:, 2].mean():.0f}× |")


if __name__ == "__main__":
    main()
