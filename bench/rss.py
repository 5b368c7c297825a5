"""Peak memory of Integrated Gradients with 256 steps on ResNet-50 (weights=None). Target: peak RSS ≤ 2.5 GB.

    python bench/rss.py [--device cpu|cuda] [--steps 256] [--captum-batch 32] [--keep-freed-memory]

Each measurement runs in a fresh child process, so one run's allocator caches do not hide the next one's peak.
The child loads the model, runs one forward+backward (the process's resting size: torch, weights, one graph),
then IG; it reports the peak resident set size (VmHWM) before and after IG, and on CUDA the peak allocated
GPU memory. `--captum-batch N` adds Captum's IG with `internal_batch_size=N` as a reference row.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_GB = 2.5


def peak_rss_bytes() -> int:
    """The process's peak resident set size so far (Linux /proc; ru_maxrss elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def child(impl: str, device_name: str, steps: int, batch: int, keep_freed: bool) -> dict:
    sys.path.insert(0, str(ROOT))
    if keep_freed:
        from models.host_memory import keep_freed_memory

        keep_freed_memory()
    import torch
    import torchvision

    from models import wrap

    device = torch.device(device_name)
    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None)
    bundle = wrap(model, target_layer=model.layer4, classifier=model.fc, name="resnet50", device=device)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(device)
    with torch.enable_grad():
        xi = x.clone().requires_grad_(True)
        torch.autograd.grad(bundle.model(xi)[0, 0], xi)
    rest = peak_rss_bytes()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    if impl == "ours":
        from explainers import explain

        exp = explain(bundle, x, 0, method="integrated_gradients", steps=steps)
        delta = exp.delta
    else:
        from captum.attr import IntegratedGradients

        attr, delta = IntegratedGradients(bundle.model).attribute(
            x, baselines=bundle.normalize(torch.zeros_like(x)), target=0, n_steps=steps,
            internal_batch_size=batch, return_convergence_delta=True)
        delta = float(delta.item())
    seconds = time.perf_counter() - start
    gpu_peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
    return {"impl": impl, "rest_rss": rest, "peak_rss": peak_rss_bytes(), "gpu_peak": gpu_peak,
            "seconds": seconds, "delta": delta}


def measure(impl: str, device: str, steps: int, batch: int, keep_freed: bool) -> dict:
    run = subprocess.run([sys.executable, __file__, "--child", impl, "--device", device, "--steps", str(steps),
                          "--captum-batch", str(batch)] + ["--keep-freed-memory"] * keep_freed,
                         capture_output=True, text=True, cwd=ROOT)
    if run.returncode != 0:
        raise SystemExit(f"{impl} failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--captum-batch", type=int, default=0, help="also measure Captum IG with this batch")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="as the CLI runs: glibc keeps freed memory (models/host_memory.py)")
    parser.add_argument("--child", choices=["ours", "captum"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    keep = args.keep_freed_memory
    if args.child:
        print(json.dumps(child(args.child, args.device, args.steps, args.captum_batch, keep)))
        return
    print(f"IG on ResNet-50 (weights=None), 224x224, {args.steps} steps, device={args.device}, "
          f"freed host memory {'kept (glibc)' if keep else 'returned (default)'}")
    header = f"{'implementation':22s} {'rest RSS GB':>11s} {'peak RSS GB':>11s} {'IG adds GB':>10s} {'GPU peak GB':>11s} {'seconds':>8s}"
    print(header)
    print("-" * len(header))
    rows = [("ours (auto batch)", measure("ours", args.device, args.steps, 0, keep))]
    if args.captum_batch:
        rows.append((f"captum (batch {args.captum_batch})", measure("captum", args.device, args.steps, args.captum_batch, keep)))
    gb = 2**30
    for label, r in rows:
        gpu = f"{r['gpu_peak'] / gb:11.2f}" if r["gpu_peak"] is not None else f"{'-':>11s}"
        print(f"{label:22s} {r['rest_rss'] / gb:11.2f} {r['peak_rss'] / gb:11.2f} "
              f"{(r['peak_rss'] - r['rest_rss']) / gb:10.2f} {gpu} {r['seconds']:8.1f}")
    ours = rows[0][1]["peak_rss"] / gb
    print(f"ours: peak RSS {ours:.2f} GB, target ≤ {TARGET_GB} GB: {'OK' if ours <= TARGET_GB else 'OVER'}")


if __name__ == "__main__":
    main()
