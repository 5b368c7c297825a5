"""Adaptive Integrated Gradients against uniform Gauss–Legendre, side by side in one run on real photos.

Per photo × model (black baseline unless told, top-1 class):
  - uniform GL at 16, 32, … up to --max-uniform nodes: the completeness error of each, and the smallest count
    that reaches the tolerance (reported as 2 × max where none does);
  - adaptive at that tolerance with a budget of --budget evaluations: the evaluations it used, counted on the
    model (rows through grad-enabled forwards), whether it converged, its error, seconds per evaluation;
  - per-pixel accuracy: relative L2 distance of the attribution to a --reference-node GL reference, adaptive vs
    uniform GL with the same number of evaluations (that uniform run also gives the seconds-per-evaluation
    comparison).
Every result is printed as one JSON line as soon as it exists (a long run can be cut short), then a summary.

    nice python bench/adaptive.py                                   # all photos, Lite0 and Lite2, 1 %
    nice python bench/adaptive.py --photos 3 --models efficientnet_lite0 --max-uniform 256 --reference 256
    nice python bench/adaptive.py --tolerances 0.005 0.02 --baselines blur uniform
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from explainers import explain  # noqa: E402
from models import load_model, read_image  # noqa: E402

SKIMAGE_PHOTOS = ("chelsea.png", "astronaut.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
                  "hubble_deep_field.jpg", "retina.jpg", "ihc.png")
SAMPLE_PHOTOS = ("cat.jpg", "cat_and_espresso.jpg")  # the other bundled samples are skimage's photos again


def photos() -> list[Path]:
    import skimage

    data = Path(skimage.__file__).parent / "data"
    found = [ROOT / "assets" / "samples" / n for n in SAMPLE_PHOTOS] + [data / n for n in SKIMAGE_PHOTOS]
    return [p for p in found if p.exists()]


class RowCounter:
    """Rows through grad-enabled forwards of a model: gradient evaluations, counted where they happen."""

    def __init__(self, model):
        self.rows = 0
        self.handle = model.register_forward_pre_hook(self._count)

    def _count(self, _module, inputs):
        if torch.is_grad_enabled():
            self.rows += inputs[0].shape[0]

    def take(self) -> int:
        rows, self.rows = self.rows, 0
        return rows


def run(bundle, counter, x, target, **options):
    counter.take()
    start = time.perf_counter()
    exp = explain(bundle, x, target, "integrated_gradients", **options)
    return exp, counter.take(), time.perf_counter() - start


def relative_l2(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(a - ref) / np.linalg.norm(ref))


def one_case(bundle, counter, x, target, tolerance, baseline, args) -> dict:
    common = dict(baseline=baseline, seed=0)
    uniform, attributions, needed = {}, {}, None
    n = 16
    while n <= args.max_uniform and not args.no_uniform:
        exp, rows, seconds = run(bundle, counter, x, target, rule="gauss_legendre", steps=n, **common)
        uniform[n] = exp.completeness().relative_error
        attributions[n] = exp.attribution
        if needed is None and uniform[n] <= tolerance:
            needed = n
            if not args.full_uniform:
                break
        n *= 2
    needed = needed or (None if args.no_uniform else 2 * args.max_uniform)
    exp, rows, seconds = run(bundle, counter, x, target, rule="adaptive", tolerance=tolerance, steps=args.budget,
                             **common)
    assert rows == exp.extras["evaluations"], (rows, exp.extras["evaluations"])
    out = dict(tolerance=tolerance, baseline=baseline, uniform_errors=uniform, uniform_needed=needed,
               adaptive_evaluations=rows, adaptive_error=exp.completeness().relative_error,
               converged=exp.extras["converged"], rounds=exp.extras["rounds"], ratio=rows / needed if needed else None,
               adaptive_errors=exp.trace.steps_error,
               adaptive_s_per_eval=seconds / rows)
    if args.reference:
        if args.reference not in attributions:
            attributions[args.reference] = run(bundle, counter, x, target, rule="gauss_legendre",
                                               steps=args.reference, **common)[0].attribution
        ref = attributions[args.reference]
        same, same_rows, same_seconds = run(bundle, counter, x, target, rule="gauss_legendre", steps=rows, **common)
        out.update(reference=args.reference, l2_adaptive=relative_l2(exp.attribution, ref),
                   l2_uniform_same=relative_l2(same.attribution, ref),
                   uniform_same_error=same.completeness().relative_error,
                   uniform_s_per_eval=same_seconds / same_rows)
        out["l2_ratio"] = out["l2_adaptive"] / out["l2_uniform_same"]
    return out


def summary(rows: list[dict]) -> None:
    for (tol, base), group in sorted(_groups(rows).items()):
        ratios = np.array([r["ratio"] for r in group if r["ratio"] is not None])
        print(f"\ntolerance {tol:.1%}, baseline {base}: {len(group)} cases")
        if len(ratios):
            print(f"  evaluations ratio adaptive / uniform GL: median {np.median(ratios):.2f}, max {ratios.max():.2f}")
        print(f"  adaptive converged in budget: {sum(r['converged'] for r in group)}/{len(group)}; "
              f"max evaluations {max(r['adaptive_evaluations'] for r in group)}")
        l2 = [r["l2_ratio"] for r in group if "l2_ratio" in r]
        if l2:
            print(f"  L2 to reference, adaptive / uniform at the same count: median {np.median(l2):.2f}, "
                  f"max {max(l2):.2f}")
            speed = [r["adaptive_s_per_eval"] / r["uniform_s_per_eval"] for r in group if "uniform_s_per_eval" in r]
            print(f"  seconds per evaluation, adaptive / uniform: median {np.median(speed):.2f}")


def _groups(rows):
    out: dict[tuple, list] = {}
    for r in rows:
        out.setdefault((r["tolerance"], r["baseline"]), []).append(r)
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["efficientnet_lite0", "efficientnet_lite2"])
    p.add_argument("--photos", type=int, default=None, help="only the first N photos")
    p.add_argument("--size", type=int, default=224, help="input side in pixels")
    p.add_argument("--tolerances", type=float, nargs="+", default=[0.01])
    p.add_argument("--baselines", nargs="+", default=["black"])
    p.add_argument("--budget", type=int, default=512)
    p.add_argument("--max-uniform", type=int, default=512)
    p.add_argument("--no-uniform", action="store_true", help="skip the uniform sequence (L2 and speed only)")
    p.add_argument("--only", nargs="+", default=None, help="only these photo file names")
    p.add_argument("--full-uniform", action="store_true", help="every uniform count, not only up to the needed one")
    p.add_argument("--reference", type=int, default=1024, help="GL nodes of the L2 reference (0: no L2)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = []
    for name in args.models:
        bundle = load_model(name)
        counter = RowCounter(bundle.model)
        try:
            for path in [p for p in photos() if args.only is None or p.name in args.only][: args.photos]:
                x = bundle.preprocess(read_image(path.read_bytes()))
                if x.shape[-1] != args.size:
                    x = F.interpolate(x, size=(args.size, args.size), mode="bilinear", align_corners=False)
                with torch.no_grad():
                    target = int(bundle.model(x).argmax())
                for baseline in args.baselines:
                    for tolerance in args.tolerances:
                        row = dict(model=name, photo=path.name, target=target,
                                   **one_case(bundle, counter, x, target, tolerance, baseline, args))
                        results.append(row)
                        print(json.dumps(row), flush=True)
        finally:
            counter.handle.remove()
    summary(results)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
