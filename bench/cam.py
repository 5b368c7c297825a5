"""Grad-CAM family: ours vs one forward+backward (the floor) vs pytorch-grad-cam, measured side by side.

    python bench/cam.py [--device cpu|cuda] [--repeats 7] [--methods grad_cam,hires_cam] [--quick]

ResNet-50 (torchvision, weights=None: timing does not depend on the weights) and the bundled EfficientNet-Lite0,
one 224x224 input. Every round times each contender once, in turn, so machine noise hits all of them alike;
the table shows medians and the ratios ours/floor and ours/pytorch-grad-cam (< 1: we are faster).
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

PGC_CLASSES = {"grad_cam": "GradCAM", "grad_cam_pp": "GradCAMPlusPlus", "hires_cam": "HiResCAM",
               "layer_cam": "LayerCAM"}

def models(device: torch.device, quick: bool):
    import torchvision

    lite0 = load_model("efficientnet_lite0", device=device)
    yield "efficientnet_lite0", lite0
    if not quick:
        torch.manual_seed(0)
        r50 = torchvision.models.resnet50(weights=None)
        yield "resnet50 (weights=None)", wrap(r50, target_layer=r50.layer4, classifier=r50.fc, name="resnet50",
                                             device=device)


def floor(bundle, x: torch.Tensor, target: int):
    """One forward and one backward to the input: what any gradient method pays at least."""
    def run():
        with torch.enable_grad():
            xi = x.detach().requires_grad_(True)
            torch.autograd.grad(bundle.model(xi)[0, target], xi)
    return run


def pytorch_grad_cam(bundle, x: torch.Tensor, target: int, method: str):
    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cam = getattr(pgc, PGC_CLASSES[method])(model=bundle.model, target_layers=[bundle.target_layer])
    targets = [ClassifierOutputTarget(target)]
    return cam, (lambda: cam(input_tensor=x, targets=targets))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--methods", default="grad_cam", help=f"comma-separated, from {', '.join(PGC_CLASSES)}")
    parser.add_argument("--quick", action="store_true", help="EfficientNet-Lite0 only, 3 rounds")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    repeats = 3 if args.quick else args.repeats
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    print(f"device={device} threads={torch.get_num_threads()} repeats={repeats} torch={torch.__version__}")
    header = f"{'model':26s} {'method':12s} {'ours ms':>9s} {'floor ms':>9s} {'pgc ms':>9s} {'ours/floor':>10s} {'ours/pgc':>9s}"
    print(header)
    print("-" * len(header))
    for model_name, bundle in models(device, args.quick):
        x, target = seeded_input(bundle, device)
        for method in methods:
            cam, pgc_run = pytorch_grad_cam(bundle, x, target, method)
            try:
                med = side_by_side({
                    "ours": lambda: explain(bundle, x, target, method=method),
                    "floor": floor(bundle, x, target),
                    "pgc": pgc_run,
                }, repeats, device)
            finally:
                cam.activations_and_grads.release()  # pytorch-grad-cam's hooks off the model
                bundle.model.zero_grad(set_to_none=True)  # it calls backward() on the loss: parameter grads
            print(f"{model_name:26s} {method:12s} {med['ours'] * 1e3:9.1f} {med['floor'] * 1e3:9.1f} "
                  f"{med['pgc'] * 1e3:9.1f} {med['ours'] / med['floor']:10.2f} {med['ours'] / med['pgc']:9.2f}")


if __name__ == "__main__":
    main()
