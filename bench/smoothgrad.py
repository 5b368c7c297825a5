"""SmoothGrad on saliency: ours vs Captum NoiseTunnel(Saliency) vs the floor, measured side by side.

    python bench/smoothgrad.py [--device cpu|cuda] [--samples 32] [--repeats 5] [--quick]

Same model, input, class, sample count and noise level (sigma as a fraction of the input's value range; Captum
takes the absolute standard deviation, so it gets sigma * (max - min)). Captum runs with each of a few
`nt_samples_batch_size` values and the best is kept, so the comparison is against its best setting. The floor is
`samples` forward+backward passes in one batch. Medians of interleaved rounds; ratios < 1: we are faster.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.timing import seeded_input, side_by_side  # noqa: E402
from explainers import explain  # noqa: E402
from models import load_model, wrap  # noqa: E402

def bundles(device: torch.device, quick: bool):
    yield "efficientnet_lite0", load_model("efficientnet_lite0", device=device)
    if not quick:
        import torchvision

        torch.manual_seed(0)
        r50 = torchvision.models.resnet50(weights=None)
        yield "resnet50 (weights=None)", wrap(r50, target_layer=r50.layer4, classifier=r50.fc, device=device)


def main(argv: list[str] | None = None) -> None:
    from captum.attr import NoiseTunnel, Saliency

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--sigma", type=float, default=0.15)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="EfficientNet-Lite0 only, 8 samples, 2 rounds")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    samples, repeats = (8, 2) if args.quick else (args.samples, args.repeats)
    print(f"device={device} threads={torch.get_num_threads()} samples={samples} sigma={args.sigma} repeats={repeats}")
    header = (f"{'model':26s} {'ours ms':>9s} {'floor ms':>9s} {'captum ms':>10s} {'captum batch':>12s} "
              f"{'ours/floor':>10s} {'ours/captum':>11s}")
    print(header)
    print("-" * len(header))
    for name, bundle in bundles(device, args.quick):
        x, target = seeded_input(bundle, device)
        smooth = {"kind": "smoothgrad", "samples": samples, "sigma": args.sigma}
        stdev = args.sigma * float(x.max() - x.min())
        tunnel = NoiseTunnel(Saliency(bundle.model))

        def captum(batch):
            return lambda: tunnel.attribute(x, nt_type="smoothgrad", nt_samples=samples, stdevs=stdev,
                                            nt_samples_batch_size=batch, target=target, abs=False)

        def floor():
            with torch.enable_grad():
                xs = x.detach().expand(samples, -1, -1, -1).clone().requires_grad_(True)
                torch.autograd.grad(bundle.model(xs)[:, target].sum(), xs)

        batches = sorted({min(samples, b) for b in (8, 16, samples)})
        contenders = {"ours": lambda: explain(bundle, x, target, method="saliency", smooth=smooth, seed=0),
                      "floor": floor}
        contenders.update({f"captum/{b}": captum(b) for b in batches})
        try:
            med = side_by_side(contenders, repeats, device)
        finally:
            bundle.model.zero_grad(set_to_none=True)
        best = min(batches, key=lambda b: med[f"captum/{b}"])
        cap = med[f"captum/{best}"]
        print(f"{name:26s} {med['ours'] * 1e3:9.1f} {med['floor'] * 1e3:9.1f} {cap * 1e3:10.1f} {best:12d} "
              f"{med['ours'] / med['floor']:10.2f} {med['ours'] / cap:11.2f}")


if __name__ == "__main__":
    main()
