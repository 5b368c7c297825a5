"""Integrated Gradients speed, measured side by side in one run on the same input.

For EfficientNet-Lite0 and ResNet-50 (random weights: timing only), 50 Gauss–Legendre steps:
  ours (cold: the memory footprint not yet measured; warm: measured by the earlier call), ours without the trace,
  the floor = steps × the best per-sample forward+backward time over batch sizes, each size timed over a whole
  pass of at least `steps` samples (as IG runs them: one batch timed alone is noisier, and the minimum over
  sizes and rounds of noisy figures is biased low),
  Captum IntegratedGradients with its defaults (one batch of all steps) and with its best internal_batch_size,
  on the very model ours runs and, on the CPU, also on a copy in the stock NCHW layout: a CPU bundle's
  convolution weights are channels-last (models/bundle.py), which speeds up Captum's calls on it as much as
  ours, so the first comparison isolates the algorithm and the second is what a Captum user on that model gets.
Rounds are interleaved, so load from other processes hits all alike, and each figure is the minimum over rounds.
The best batch sizes (floor, Captum) are chosen in selection rounds and then timed afresh in as many evaluation
rounds as ours: the minimum of the very figures a best size was picked by is biased low (with 7 sizes there are
7 times as many chances of a lucky timing), which on a noisy machine is as large as the differences measured.

    python bench/ig.py            # 2 selection rounds, then 5 evaluation rounds (about 15 min on 2 vCPUs)
    python bench/ig.py --quick    # 1 round, 16 steps, 112 px, fewer batch sizes: a smoke run
    python bench/ig.py --keep-freed-memory   # the whole run with the app's allocator setting
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from captum.attr import IntegratedGradients  # noqa: E402

from explainers import explain  # noqa: E402
from explainers.batching import forget_measurements  # noqa: E402
from models import load_model, wrap  # noqa: E402
from models.host_memory import keep_freed_memory  # noqa: E402


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def device_allocations() -> int:
    """cudaMalloc calls so far (-1 off CUDA): a call that grows the allocator's cache pays for it."""
    return torch.cuda.memory_stats().get("num_device_alloc", -1) if torch.cuda.is_available() else -1


def fwd_bwd_pass(model, x, batch, steps, target) -> int:
    """ceil(steps / batch) forward+backward passes of `batch` samples; returns the number of samples."""
    batches = -(-steps // batch)
    for _ in range(batches):
        points = x.expand(batch, -1, -1, -1).clone().requires_grad_(True)
        torch.autograd.grad(model(points)[:, target].sum(), points)
    return batches * batch


def bench_model(name, bundle, x, steps, selection_rounds, rounds, sizes, target=1):
    model = bundle.model
    contenders = {"captum": IntegratedGradients(model)}
    if any(p.dim() == 4 and not p.is_contiguous() for p in model.parameters()):  # channels-last weights
        contenders["stock"] = IntegratedGradients(copy.deepcopy(model).to(memory_format=torch.contiguous_format))
    base = torch.zeros_like(x)

    def floor(b):
        samples = []
        seconds = timed(lambda: samples.append(fwd_bwd_pass(model, x, b, steps, target)))
        return seconds / samples[0] * steps

    def captum_at(b, who="captum"):  # b=None: Captum's default, one batch of all steps
        return timed(lambda: contenders[who].attribute(x, base, target=target, n_steps=steps, internal_batch_size=b))

    selection: dict[str, float] = {}

    def select(key, seconds):
        selection[key] = min(selection.get(key, float("inf")), seconds)

    for r in range(selection_rounds):
        for b in sizes:
            select(f"floor@{b}", floor(b))
            for who in contenders:
                select(f"{who}@{b}", captum_at(b, who))
        print(f"  {name}: selection round {r + 1}/{selection_rounds} done", flush=True)
    print("  selection: " + ", ".join(f"{k} {v:.3f}s" for k, v in selection.items()), flush=True)
    floor_b = min(sizes, key=lambda b: selection[f"floor@{b}"])
    best_b = {who: min(sizes, key=lambda b: selection[f"{who}@{b}"]) for who in contenders}

    best: dict[str, float] = {}

    def keep(key, seconds):
        best[key] = min(best.get(key, float("inf")), seconds)

    chunks = []  # the warm calls' chunk sizes
    for r in range(rounds):
        forget_measurements()
        keep("ours cold", timed(lambda: explain(bundle, x, target, "integrated_gradients", steps=steps)))
        warm = []
        before = device_allocations()
        warm_s = timed(lambda: warm.append(explain(bundle, x, target, "integrated_gradients", steps=steps)))
        allocs = device_allocations() - before if before >= 0 else None
        keep("ours warm", warm_s)
        chunks.append(warm[0].extras["chunk_sizes"])
        no_trace_s = timed(lambda: explain(bundle, x, target, "integrated_gradients", steps=steps, trace=False))
        keep("ours no trace", no_trace_s)
        keep("floor", floor(floor_b))
        for who in contenders:
            keep(f"{who} default", captum_at(None, who))
            keep(f"{who} best", captum_at(best_b[who], who))
        print(f"  {name}: evaluation round {r + 1}/{rounds}: ours warm {warm_s:.4f}s"
              + (f" ({allocs} new device allocations)" if allocs is not None else "") + f", no trace {no_trace_s:.4f}s",
              flush=True)
    print(f"  evaluation (floor @{floor_b}, best sizes {best_b}): "
          + ", ".join(f"{k} {v:.3f}s" for k, v in best.items()), flush=True)  # kept if a later model is cut short
    print(f"  ours warm, chunk sizes per round: {chunks}", flush=True)
    return dict(best, floor_b=floor_b, captum_b=best_b["captum"], stock_b=best_b.get("stock"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--keep-freed-memory", action="store_true",
                    help="run as the CLI does: glibc keeps freed memory (models/host_memory.py), for all")
    args = ap.parse_args()
    kept = keep_freed_memory() if args.keep_freed_memory else False
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)) if args.device == "cpu" else torch.get_num_threads())
    steps = 16 if args.quick else 50
    side = 112 if args.quick else 224
    rounds = args.rounds or (1 if args.quick else 5)
    selection_rounds = 1 if args.quick else 2
    sizes = [1, 4, 16] if args.quick else [1, 2, 4, 8, 16, 25, 50]
    sizes = [b for b in sizes if b <= steps]
    import torchvision

    torch.manual_seed(0)
    r50 = torchvision.models.resnet50(weights=None)
    models = [("EfficientNet-Lite0", load_model("efficientnet_lite0", device=args.device)),
              ("ResNet-50", wrap(r50.to(args.device), target_layer=r50.layer4, classifier=r50.fc, name="resnet50"))]
    x = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(1)).to(args.device)
    print(f"IG, {steps} Gauss–Legendre steps, {side} px, device {args.device}, torch threads {torch.get_num_threads()}, "
          f"{selection_rounds} selection + {rounds} evaluation round(s), min over rounds, "
          f"freed host memory {'kept (glibc)' if kept else 'returned (default)'}", flush=True)
    rows = [(name, bench_model(name, bundle, x, steps, selection_rounds, rounds, sizes)) for name, bundle in models]
    print()
    print(f"{'model':20} {'ours warm':>9} {'ours cold':>9} {'no trace':>9} {'floor':>13} {'Captum dflt':>11} "
          f"{'Captum best':>14}")
    for name, m in rows:
        print(f"{name:20} {m['ours warm']:8.3f}s {m['ours cold']:8.3f}s {m['ours no trace']:8.3f}s "
              f"{m['floor']:8.3f}s @{m['floor_b']:<3} {m['captum default']:10.3f}s {m['captum best']:8.3f}s @{m['captum_b']:<3}")
    print()
    print(f"{'model':20} {'warm/floor':>10} {'cold/floor':>10} {'warm/Captum dflt':>16} {'warm/Captum best':>16} "
          f"{'trace cost':>10}")
    for name, m in rows:
        print(f"{name:20} {m['ours warm'] / m['floor']:10.3f} {m['ours cold'] / m['floor']:10.3f} "
              f"{m['ours warm'] / m['captum default']:16.3f} {m['ours warm'] / m['captum best']:16.3f} "
              f"{m['ours warm'] / m['ours no trace'] - 1:+10.1%}")
    stock = [(name, m) for name, m in rows if m.get("stock_b")]
    if stock:
        print("\nCaptum on the stock (NCHW) layout, as a Captum user runs these models:")
        print(f"{'model':20} {'Captum dflt':>11} {'Captum best':>14} {'warm/Captum dflt':>16} {'warm/Captum best':>16}")
        for name, m in stock:
            print(f"{name:20} {m['stock default']:10.3f}s {m['stock best']:8.3f}s @{m['stock_b']:<3} "
                  f"{m['ours warm'] / m['stock default']:16.3f} {m['ours warm'] / m['stock best']:16.3f}")
    print("\ntargets: warm/floor ≤ 1.10; warm/Captum default ≤ 0.6 on ResNet-50; warm/Captum best ≤ 1.05; trace ≤ +5 %")


if __name__ == "__main__":
    main()
