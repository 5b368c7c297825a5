"""XGrad-, Eigen-, Ablation-CAM, Guided IG, Blur IG and XRAI: ours next to the reference library doing the same work.

    python bench/methods_pair.py [--threads 1] [--repeats 1] [--models lite0,resnet50]

References: pytorch-grad-cam for the CAMs, PAIR's `saliency` for the path variants, fed the same model gradients
(one function, float32 inputs, as in tests/test_path_variants.py). Settings kept short so the run takes minutes:
Guided IG and Blur IG with 16 steps, XRAI on a given base attribution (the saliency map, max over channels; both
sides then segment and grow regions), Ablation-CAM (one forward per channel) on Lite0 at 96 px only. Inputs are
seeded noise of the model's size (224 px). Each round times ours and the reference in turn; medians.
"""
from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.timing import seeded_input, side_by_side  # noqa: E402
from explainers import explain  # noqa: E402
from explainers.gradients import input_gradients  # noqa: E402
from models import load_model, wrap  # noqa: E402

STEPS = 16


def pair_module():
    """PAIR's core, with numpy's renamed quantile argument (interpolation= → method=) patched for its Guided IG."""
    import saliency.core as core
    import saliency.core.guided_ig as guided

    class Numpy(types.ModuleType):
        def __getattr__(self, name):
            return getattr(np, name)

        @staticmethod
        def quantile(a, q, interpolation="linear", **kw):
            return np.quantile(a, q, method=interpolation, **kw)

    guided.np = Numpy("numpy")
    return core


def pair_gradients(core, bundle, target, channels_last=False):
    def call(batch, call_model_args=None, expected_keys=None):
        xs = torch.from_numpy(np.asarray(batch).astype(np.float32)).to(bundle.device)
        xs = xs.permute(0, 3, 1, 2) if channels_last else xs
        g = input_gradients(bundle, xs, target)
        return {core.INPUT_OUTPUT_GRADIENTS: (g.permute(0, 2, 3, 1) if channels_last else g).cpu().numpy()}
    return call


def grad_cam_reference(name, bundle, x, target, layer):
    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cam = getattr(pgc, name)(model=bundle.model, target_layers=[layer])

    def run():
        cam(input_tensor=x, targets=[ClassifierOutputTarget(target)])
        for p in bundle.model.parameters():  # its loss.backward() fills .grad
            p.grad = None
    return run


def contenders(core, bundle, x, target, with_ablation: bool):
    """(method, setting, ours, reference) for every method on this model."""
    layer = bundle.target_layer
    base = explain(bundle, x, target, "saliency").attribution.max(axis=0)
    image, base3 = bundle.to_image(x), np.repeat(base[..., None], 3, axis=-1)
    x_np = x[0].cpu().numpy()
    out = [
        ("xgrad_cam", "", lambda: explain(bundle, x, target, "xgrad_cam"),
         grad_cam_reference("XGradCAM", bundle, x, target, layer)),
        ("eigen_cam", "", lambda: explain(bundle, x, target, "eigen_cam"),
         grad_cam_reference("EigenCAM", bundle, x, target, layer)),
        ("guided_ig", f"{STEPS} steps", lambda: explain(bundle, x, target, "guided_ig", steps=STEPS),
         lambda: core.GuidedIG().GetMask(x_np, pair_gradients(core, bundle, target), x_steps=STEPS,
                                         x_baseline=bundle.normalize(torch.zeros_like(x))[0].cpu().numpy())),
        ("blur_ig", f"{STEPS} steps, chunks of 8", lambda: explain(bundle, x, target, "blur_ig", steps=STEPS),
         lambda: core.BlurIG().GetMask(x_np.transpose(1, 2, 0), pair_gradients(core, bundle, target, True),
                                       steps=STEPS, batch_size=8)),
        ("xrai", "given base attribution", lambda: explain(bundle, x, target, "xrai", base_attribution=base),
         lambda: core.XRAI().GetMask(image, None, base_attribution=base3)),
    ]
    if with_ablation:
        small = F.interpolate(x, size=(96, 96), mode="bilinear")
        out.append(("ablation_cam", "96 px input", lambda: explain(bundle, small, target, "ablation_cam"),
                    grad_cam_reference("AblationCAM", bundle, small, target, layer)))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a loaded machine)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--models", default="lite0,resnet50")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    import logging

    logging.getLogger("tqdm").setLevel(logging.ERROR)
    core = pair_module()
    device = torch.device("cpu")
    print("| model | method | setting | ours | reference | ours / reference |")
    print("|---|---|---|---|---|---|")
    for name in args.models.split(","):
        if name == "lite0":
            bundle, title = load_model("efficientnet_lite0", device=device), "EfficientNet-Lite0"
        else:
            import torchvision

            torch.manual_seed(0)
            m = torchvision.models.resnet50(weights=None)
            bundle, title = wrap(m, target_layer=m.layer4, classifier=m.fc, name="resnet50"), "ResNet-50 (weights=None)"
        x, target = seeded_input(bundle, device)
        for method, setting, ours, reference in contenders(core, bundle, x, target, with_ablation=name == "lite0"):
            t = side_by_side({"ours": ours, "reference": reference}, args.repeats, device)
            print(f"| {title} | {method} | {setting} | {t['ours']:.2f} s | {t['reference']:.2f} s | "
                  f"{t['ours'] / t['reference']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
