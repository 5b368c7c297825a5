"""LRP and perturbation methods: ours vs the reference library doing the same work, side by side.

    python bench/methods_lrp.py [--device cpu] [--repeats 1] [--quick]

EfficientNet-Lite0 (bundled) and ResNet-50 (torchvision, weights=None: timing does not depend on the weights), one
224x224 input (the cat sample). References: Zennit (LRP composites; on Lite0 with SequentialMergeBatchNorm only, as Zennit has no
canonizer for its residual sums), Captum's Occlusion and KernelShap (same windows / feature mask / samples, the
same forward batch size as ours). RISE has no reference library here: its row shows the same number of plain
forwards instead. Settings are small so that the run stays short; per-forward costs scale linearly.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.timing import sync  # noqa: E402
from explainers import explain  # noqa: E402
from explainers.baselines import make_baseline  # noqa: E402
from explainers.perturbation import forward_chunk  # noqa: E402
from explainers.shap import superpixels  # noqa: E402
from models import load_model, read_image, wrap  # noqa: E402

OCCLUSION = dict(window=112, stride=56)  # 3 × 3 windows
RISE = dict(masks=32, cells=7)
SHAP = dict(segments=50, samples=32)
SAMPLE = Path(__file__).resolve().parent.parent / "assets" / "samples" / "cat.jpg"  # SLIC needs a real image


def zennit_lrp(bundle, x, target, method):
    from zennit.attribution import Gradient
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.composites import EpsilonGammaBox, EpsilonPlusFlat
    from zennit.torchvision import ResNetCanonizer

    model = copy.deepcopy(bundle.model)  # Zennit's canonizers edit the model they get
    canonizers = [ResNetCanonizer()] if hasattr(model, "layer4") else [SequentialMergeBatchNorm()]
    if method == "lrp_epsilon_plus_flat":
        composite = EpsilonPlusFlat(canonizers=canonizers)
    else:
        low, high = bundle.normalize(torch.stack([torch.zeros(3, 1, 1), torch.ones(3, 1, 1)]).to(x))
        composite = EpsilonGammaBox(low=low[None], high=high[None], canonizers=canonizers)
    onehot = torch.nn.functional.one_hot(torch.tensor([target]), bundle.num_classes).to(x)

    def run():
        with Gradient(model, composite) as attributor:
            attributor(x.clone(), lambda out: onehot * out)
    return run


def references(bundle, x, target):
    from captum.attr import KernelShap, Occlusion

    base = make_baseline(bundle, x, "black")
    chunk = forward_chunk(x.device)
    w, s = OCCLUSION["window"], OCCLUSION["stride"]
    mask = torch.as_tensor(superpixels(bundle, x, SHAP["segments"]), device=x.device)[None, None].expand_as(x)

    def plain_forwards(n):
        def run():
            with torch.no_grad():
                for start in range(0, n, chunk):
                    bundle.model(x.expand(min(chunk, n - start), -1, -1, -1))
        return run
    return {
        "lrp_epsilon_plus_flat": ("zennit", zennit_lrp(bundle, x, target, "lrp_epsilon_plus_flat")),
        "lrp_epsilon_gamma_box": ("zennit", zennit_lrp(bundle, x, target, "lrp_epsilon_gamma_box")),
        "occlusion": ("captum", lambda: Occlusion(bundle.model).attribute(
            x, sliding_window_shapes=(3, w, w), strides=(3, s, s), baselines=base, target=target,
            perturbations_per_eval=chunk)),
        "rise": ("forwards", plain_forwards(RISE["masks"])),
        "kernel_shap": ("captum", lambda: KernelShap(bundle.model).attribute(
            x, baselines=base, target=target, feature_mask=mask, n_samples=SHAP["samples"],
            perturbations_per_eval=chunk)),
    }


def timed(fn, device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=1, help="interleaved rounds (the minimum is shown)")
    parser.add_argument("--quick", action="store_true", help="EfficientNet-Lite0 only")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    options = {"occlusion": OCCLUSION, "rise": RISE, "kernel_shap": SHAP}
    print(f"device={device} threads={torch.get_num_threads()} torch={torch.__version__} "
          f"occlusion={OCCLUSION} rise={RISE} kernel_shap={SHAP}")
    print(f"{'model':26s} {'method':22s} {'ours s':>8s} {'ref s':>8s} {'ref':>9s} {'ours/ref':>8s}")
    bundles = [("efficientnet_lite0", load_model("efficientnet_lite0", device=device))]
    if not args.quick:
        import torchvision

        torch.manual_seed(0)
        r50 = torchvision.models.resnet50(weights=None)
        bundles.append(("resnet50 (weights=None)", wrap(r50, target_layer=r50.layer4, classifier=r50.fc,
                                                        name="resnet50", device=device)))
    for name, bundle in bundles:
        x = bundle.preprocess(read_image(SAMPLE.read_bytes()))
        with torch.no_grad():
            target = int(bundle.model(x).argmax())  # also the warm-up
        for method, (ref_name, ref) in references(bundle, x, target).items():
            ours_t, ref_t = [], []
            for _ in range(max(1, args.repeats)):
                ours_t.append(timed(lambda: explain(bundle, x, target, method, **options.get(method, {})), device))
                ref_t.append(timed(ref, device))
            o, r = min(ours_t), min(ref_t)
            print(f"{name:26s} {method:22s} {o:8.2f} {r:8.2f} {ref_name:>9s} {o / r:8.2f}", flush=True)


if __name__ == "__main__":
    main()
