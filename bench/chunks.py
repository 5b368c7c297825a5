"""Chunk sizes for gradient batches: the automatic size (explainers.batching) against fixed sizes.

The chunk learner that timed sizes on the real work was measured with this script before it was removed (figures
in bench/README.md); "automatic" is now the fixed size per device capped by memory.

Integrated Gradients (Gauss–Legendre, trace on) on EfficientNet-Lite0 (real weights) and ResNet-50 (random
weights: timing only), side by side in one run: rounds interleave the contenders, so load from other processes
hits all alike; each figure is the median over rounds, after one warm-up call each (the learner's warm-up is
where the memory footprint is measured).

    python bench/chunks.py                 # 64 steps, 7 rounds
    python bench/chunks.py --steps 128 --rounds 5 --sizes 4 8 16
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench.timing import seeded_input, side_by_side  # noqa: E402
from explainers import explain  # noqa: E402
from models import load_model, wrap  # noqa: E402


def bundles():
    import torchvision

    yield load_model("efficientnet_lite0", device="cpu")
    torch.manual_seed(0)
    net = torchvision.models.resnet50(weights=None)
    yield wrap(net, target_layer=net.layer4, classifier=net.fc, name="resnet50-random")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=64)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16, 32])
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    for bundle in bundles():
        x, target = seeded_input(bundle, bundle.device)

        def ig(batch_size):
            return lambda: explain(bundle, x, target, "integrated_gradients", steps=args.steps,
                                   rule="gauss_legendre", batch_size=batch_size)
        contenders = {"automatic": ig(None)} | {f"fixed {s}": ig(s) for s in args.sizes}
        times = side_by_side(contenders, args.rounds, bundle.device)
        auto_sizes = explain(bundle, x, target, "integrated_gradients", steps=args.steps,
                                rule="gauss_legendre").extras["chunk_sizes"]
        best = min((t, n) for n, t in times.items() if n != "automatic")
        print(f"{bundle.name}: IG-{args.steps}, median of {args.rounds} rounds; automatic chunks {auto_sizes}")
        for name, t in times.items():
            print(f"  {name:>9}: {t * 1000:8.1f} ms   {t / best[0]:.3f} x best fixed ({best[1]})")


if __name__ == "__main__":
    main()
