"""Command line: explain one image or a folder of images and write the results to a folder.

    python -m explainers IMAGE [IMAGE …] [--model M] [--method M …] [--target CLASS] [--steps N]
                         [--baseline B] [--rule R] [--tolerance T] --out DIR

For every image and method: `<stem>_<method>.png` (overlay), `<stem>_<method>.npy` (raw attribution); for
Integrated Gradients also `<stem>_integrated_gradients.html` (convergence figures, plotly embedded, works
offline); and one `summary.json` (predictions, timings, completeness errors, problems). A bad file or a method
that cannot run is reported and skipped; the exit code is non-zero only when nothing at all could be done.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from presentation.overlay import overlay

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
DEFAULT_METHODS = ["grad_cam", "saliency", "integrated_gradients"]
BASELINE_METHODS = {"integrated_gradients", "deeplift"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m explainers", description=__doc__.split("\n\n")[0])
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files and/or folders of images")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the results (created if missing)")
    p.add_argument("--model", default=None, help="model name (default: the bundled EfficientNet-Lite0)")
    p.add_argument("--method", action="append", dest="methods", metavar="M",
                   help=f"method id, repeatable (default: {' '.join(DEFAULT_METHODS)}; 'all' for every method)")
    p.add_argument("--target", default=None, metavar="CLASS",
                   help="class index or (part of a) class name (default: each image's top prediction)")
    p.add_argument("--steps", type=int, default=None,
                   help="Integrated Gradients steps (for --rule adaptive: the budget of gradient evaluations)")
    p.add_argument("--rule", default=None, help="Integrated Gradients quadrature rule, e.g. gauss_legendre or adaptive")
    p.add_argument("--tolerance", type=float, default=None,
                   help="relative completeness error the adaptive rule stops at (default 0.01)")
    p.add_argument("--baseline", default=None, help="baseline for IG and DeepLIFT: black, white, mean, uniform, "
                                                     "gaussian or blur")
    p.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cuda if available)")
    return p.parse_args(argv)


def find_images(paths: list[str]) -> tuple[list[Path], list[dict]]:
    """The image files named or inside the named folders (sorted), and a problem entry for each bad path."""
    files, problems = [], []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(f for f in path.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                problems.append({"file": raw, "error": "folder holds no image files (" + ", ".join(
                    sorted(IMAGE_SUFFIXES)) + ")"})
            files += found
        elif path.is_file():
            files.append(path)
        else:
            problems.append({"file": raw, "error": "no such file or folder"})
    return files, problems


def resolve_target(spec: str | None, categories: list[str], top1: int) -> int:
    """A class index from an index or a name; a name must match one class exactly or be part of only one."""
    if spec is None:
        return top1
    if spec.strip().lstrip("-").isdigit():
        index = int(spec)
        if not 0 <= index < len(categories):
            raise ValueError(f"class {index} is out of range 0..{len(categories) - 1}")
        return index
    wanted = spec.strip().lower()
    exact = [i for i, c in enumerate(categories) if c.lower() == wanted or wanted in c.lower().split(", ")]
    if len(exact) == 1:
        return exact[0]
    partial = [i for i, c in enumerate(categories) if wanted in c.lower()]
    if len(partial) == 1:
        return partial[0]
    if not partial:
        raise ValueError(f"no class is called '{spec}'")
    names = "; ".join(f"{i}: {categories[i]}" for i in partial[:8])
    raise ValueError(f"'{spec}' matches {len(partial)} classes ({names}{' …' if len(partial) > 8 else ''}): "
                     "give the index or a longer name")


def method_options(method: str, args: argparse.Namespace) -> dict:
    options = {}
    if method == "integrated_gradients":
        if args.steps is not None:
            options["steps"] = args.steps
        if args.rule is not None:
            options["rule"] = args.rule
        if args.tolerance is not None:
            options["tolerance"] = args.tolerance
    if method in BASELINE_METHODS and args.baseline is not None:
        options["baseline"] = args.baseline
    return options


class ProgressLine:
    """A one-line progress bar on stderr (rewritten in place on a terminal, one line per step otherwise)."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total, self.done, self.stream = max(total, 1), 0, stream
        self.tty = getattr(stream, "isatty", lambda: False)()

    def show(self, label: str) -> None:
        width = 24
        filled = int(width * self.done / self.total)
        line = f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {label}"
        self.stream.write(("\r" + line[:120].ljust(120)) if self.tty else line + "\n")
        self.stream.flush()

    def step(self, label: str) -> None:
        self.done += 1
        self.show(label)

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


def render_overlay(bundle, x, exp) -> np.ndarray:
    """The explanation over the image as uint8 RGB: signed colours for pixel-space maps, a heat scale for CAMs."""
    signed = exp.attribution.ndim == 3
    return overlay(bundle.to_image(x), exp.heatmap, signed=signed, alpha=0.6)


def write_convergence_html(trace, path: Path, title: str) -> bool:
    """IG's convergence figures (the app's own) in one self-contained HTML file; False if none could be made."""
    from presentation.figures import ig_convergence_figure, steps_error_figure

    parts = [ig_convergence_figure(trace, title=title).to_html(full_html=False, include_plotlyjs=True)]
    if trace.steps_error:
        parts.append(steps_error_figure(trace.steps_error, chosen=len(trace.alphas)).to_html(
            full_html=False, include_plotlyjs=False))
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
                    + "".join(parts) + "</body></html>", encoding="utf-8")
    return True


def completeness(exp) -> dict:
    """delta = Σ attribution − ΔF as reported by the method, and the error relative to ΔF."""
    check = exp.completeness()
    return {} if check is None else dataclasses.asdict(check)


def explain_image(path: Path, bundle, methods: list[str], args, out: Path, progress: ProgressLine) -> dict:
    """Run every method on one image; returns its summary entry (problems included, nothing raised)."""
    from explainers import explain
    from models import ImageError, read_image

    entry: dict = {"file": str(path)}
    try:
        image = read_image(path.read_bytes())
    except (ImageError, OSError) as err:
        entry["error"] = f"cannot read image: {err}"
        for _ in methods:
            progress.step(f"{path.name}: skipped")
        return entry
    x = bundle.preprocess(image)
    top = bundle.predict(x, k=5)
    entry["predictions"] = [{"index": i, "name": n, "probability": round(p, 6)} for i, n, p in top]
    try:
        target = resolve_target(args.target, bundle.categories, top[0][0])
    except ValueError as err:
        entry["error"] = f"--target: {err}"
        for _ in methods:
            progress.step(f"{path.name}: skipped")
        return entry
    entry.update(target=target, target_name=bundle.category(target), methods={})
    for method in methods:
        progress.show(f"{path.name}: {method}…")
        record: dict = {"options": method_options(method, args)}
        try:
            exp = explain(bundle, x, target, method, **record["options"])
        except Exception as err:  # NotApplicable, bad options, a failing method: report and go on
            record["error"] = f"{type(err).__name__}: {err}"
        else:
            stem = f"{path.stem}_{method}"
            np.save(out / f"{stem}.npy", exp.attribution)
            Image.fromarray(render_overlay(bundle, x, exp)).save(out / f"{stem}.png")
            record.update(seconds=round(exp.seconds, 4), overlay=f"{stem}.png", attribution=f"{stem}.npy",
                          attribution_shape=list(exp.attribution.shape), **completeness(exp))
            if exp.trace is not None and write_convergence_html(
                    exp.trace, out / f"{stem}.html", f"{path.name}: {bundle.category(target)}"):
                record["convergence"] = f"{stem}.html"
                record["steps_error"] = {str(k): v for k, v in sorted(exp.trace.steps_error.items())}
            if "evaluations" in exp.extras:  # the adaptive rule: what it spent and whether it met the tolerance
                record.update(evaluations=exp.extras["evaluations"], converged=exp.extras["converged"])
        entry["methods"][method] = record
        progress.step(f"{path.name}: {method}")
    return entry


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from explainers import list_methods
    from models import DEFAULT_MODEL, ModelUnavailable, load_model

    known = [m.id for m in list_methods()]
    methods = known if args.methods == ["all"] else (args.methods or [m for m in DEFAULT_METHODS if m in known])
    unknown = [m for m in methods if m not in known]
    if unknown:
        print(f"error: unknown method(s) {', '.join(unknown)}. Known: {', '.join(known)}", file=sys.stderr)
        return 2
    files, problems = find_images(args.images)
    if not files:
        for problem in problems:
            print(f"error: {problem['file']}: {problem['error']}", file=sys.stderr)
        print("error: no image to explain", file=sys.stderr)
        return 1
    start = time.perf_counter()
    try:
        bundle = load_model(args.model or DEFAULT_MODEL, device=args.device)
    except (ModelUnavailable, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    load_seconds = time.perf_counter() - start
    progress = ProgressLine(len(files) * len(methods))
    entries = [explain_image(path, bundle, methods, args, out, progress) for path in files]
    progress.close()
    done = sum(1 for e in entries for r in e.get("methods", {}).values() if "error" not in r)
    summary = {"model": bundle.name, "device": str(bundle.device), "methods": methods,
               "model_load_seconds": round(load_seconds, 3), "total_seconds": round(time.perf_counter() - start, 3),
               "images": entries, "problems": problems, "explanations_written": done}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    for e in entries:
        for line in [e.get("error")] + [f"{m}: {r['error']}" for m, r in e.get("methods", {}).items() if "error" in r]:
            if line:
                print(f"warning: {e['file']}: {line}", file=sys.stderr)
    for problem in problems:
        print(f"warning: {problem['file']}: {problem['error']}", file=sys.stderr)
    print(f"{done} explanation(s) of {len(files)} image(s) written to {out}/ (summary.json)")
    return 0 if done else 1
