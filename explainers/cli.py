"""Command line: explain one image or a folder of images and write the results to a folder.

    python -m explainers IMAGE [IMAGE …] [--model M] [--method M …] [--target CLASS] [--steps N]
                         [--baseline B] [--rule R] [--tolerance T] --out DIR

For every image and method: `<stem>_<method>.png` (overlay), `<stem>_<method>.npy` (raw attribution); for
Integrated Gradients also `<stem>_integrated_gradients.html` (convergence figures, plotly embedded, works
offline); and one `summary.json` (predictions, timings, completeness errors, problems), rewritten as each image
finishes. `<stem>` is the file's own (made safe), with a short hash of its path where two inputs share one.
A bad file or a method that cannot run is reported and skipped; the exit code is non-zero only when nothing at
all could be done (130 after Ctrl-C). Bad arguments, devices and output folders are refused before the model
loads. Inputs are read as `cli_inputs` says, outputs written as `cli_output` says.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from .cli_inputs import InputError, InputFile, find_images, printable, read_input
from .cli_output import OutputError, OutputFolder, ProgressLine, write_results

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


def resolve_target(spec: str | None, categories: list[str], top1: int) -> int:
    """A class index from an index or a name; a name must match one class exactly or be part of only one."""
    if spec is None:
        return top1
    if spec.strip().lstrip("-").isascii() and spec.strip().lstrip("-").isdigit():
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
        raise ValueError(f"no class is called '{printable(spec)}'")
    names = "; ".join(f"{i}: {categories[i]}" for i in partial[:8])
    raise ValueError(f"'{printable(spec)}' matches {len(partial)} classes ({names}{' …' if len(partial) > 8 else ''}): "
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


class UsageError(Exception):
    """A command line that cannot work (device, options); said before the model loads."""


def check_device(spec: str | None) -> torch.device | None:
    """The device asked for, if this machine can run a model on it."""
    if spec is None:
        return None
    try:
        device = torch.device(spec)
    except (RuntimeError, ValueError, TypeError):
        raise UsageError(f"--device {printable(spec)} is not a device name; use cpu or cuda (cuda:0, ...)") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {printable(spec)}: CUDA is not available on this machine; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"--device {printable(spec)}: this machine has {torch.cuda.device_count()} CUDA "
                             "device(s), numbered from 0")
        return device
    if device.type == "mps" and torch.backends.mps.is_available():
        return device
    raise UsageError(f"--device {printable(spec)}: a model cannot run on a '{device.type}' device here; use cpu"
                     + (" or cuda" if torch.cuda.is_available() else ""))


def check_options(methods: list[str], args: argparse.Namespace) -> None:
    """The options given, checked as explain() will check them (so a typo stops the run before the model loads)."""
    from .baselines import check_name
    from .quadrature import check_rule, check_steps

    try:
        if args.rule is not None:
            check_rule(args.rule)
        if args.steps is not None:
            check_steps(args.steps, args.rule)
        if args.baseline is not None:
            check_name(args.baseline, "baseline")
    except ValueError as err:
        raise UsageError(str(err)) from None
    ignored = [flag for flag, value, users in (("--steps", args.steps, {"integrated_gradients"}),
                                              ("--rule", args.rule, {"integrated_gradients"}),
                                              ("--baseline", args.baseline, BASELINE_METHODS))
               if value is not None and not users & set(methods)]
    if ignored:
        raise UsageError(f"{', '.join(ignored)} given, but no chosen method takes it")


def explain_image(item: InputFile, bundle, methods: list[str], target: int | None, args, out: OutputFolder,
                  progress: ProgressLine) -> dict:
    """Run every method on one image, writing its results; returns its summary entry (nothing raised)."""
    from explainers import explain
    from models import ImageError, read_image

    entry: dict = {"file": item.shown, "output": item.stem}
    try:
        image = read_image(read_input(item.path))
    except (InputError, ImageError) as err:
        entry["error"] = f"cannot read image: {err}"
    except Exception as err:  # a decoder failing in a way read_image did not foresee
        entry["error"] = f"cannot read image: {type(err).__name__}"
    if "error" in entry:
        progress.skip(len(methods), f"{item.shown}: skipped")
        return entry
    try:
        x = bundle.preprocess(image)
        top = bundle.predict(x, k=5)
    except Exception as err:  # the model fails on this image (out of memory, ...): report it, go on
        entry["error"] = f"the model failed on this image: {type(err).__name__}: {err}"
        progress.skip(len(methods), f"{item.shown}: skipped")
        return entry
    entry["predictions"] = [{"index": i, "name": n, "probability": round(p, 6)} for i, n, p in top]
    target = top[0][0] if target is None else target
    entry.update(target=target, target_name=bundle.category(target), methods={})
    for method in methods:
        progress.show(f"{item.shown}: {method}…")
        record: dict = {"options": method_options(method, args)}
        try:
            exp = explain(bundle, x, target, method, **record["options"])
            record.update(write_results(out, f"{item.stem}_{method}", bundle, x, exp,
                                        f"{item.shown}: {bundle.category(target)}"))
        except Exception as err:  # NotApplicable, bad options, a failing method, a refused write: report, go on
            record["error"] = f"{type(err).__name__}: {err}"
        entry["methods"][method] = record
        progress.step(f"{item.shown}: {method}")
    return entry


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # file names and messages must never make printing fail
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = parse_args(argv)
    from explainers import list_methods
    from models import DEFAULT_MODEL, load_model

    known = [m.id for m in list_methods()]
    methods = known if args.methods == ["all"] else (args.methods or [m for m in DEFAULT_METHODS if m in known])
    unknown = [printable(m) for m in methods if m not in known]
    if unknown:
        print(f"error: unknown method(s) {', '.join(unknown)}. Known: {', '.join(known)}", file=sys.stderr)
        return 2
    try:
        device = check_device(args.device)
        check_options(methods, args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    files, problems = find_images(args.images)
    if not files:
        for problem in problems:
            print(f"error: {problem['file']}: {problem['error']}", file=sys.stderr)
        print("error: no image to explain", file=sys.stderr)
        return 1
    try:
        out = OutputFolder(args.out)
    except OutputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    try:
        out.refuse_non_file("summary.json")  # a planted link there would make every save fail: say it now
        return run(args, methods, device, files, problems, out, load_model, args.model or DEFAULT_MODEL)
    except OutputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # while the model loads (later ones are handled in run)
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        out.close()


def run(args, methods, device, files, problems, out: OutputFolder, load_model, model_name: str) -> int:
    start = time.perf_counter()
    try:
        bundle = load_model(model_name, device=device)
        target = None if args.target is None else resolve_target(args.target, bundle.categories, 0)
    except Exception as err:  # ModelUnavailable, a bad --target, a device that fails at load: no traceback
        print(f"error: {printable(str(err))}", file=sys.stderr)
        return 1
    summary = {"model": bundle.name, "device": str(bundle.device), "methods": methods,
               "model_load_seconds": round(time.perf_counter() - start, 3), "complete": False, "interrupted": False,
               "images": [], "problems": problems, "explanations_written": 0}
    progress = ProgressLine(len(files) * len(methods))
    saved = True
    try:
        for item in files:
            try:
                entry = explain_image(item, bundle, methods, target, args, out, progress)
            except Exception as err:  # a bug: this image is lost, not the run (nor the summary)
                entry = {"file": item.shown, "output": item.stem, "error": f"failed: {type(err).__name__}: {err}"}
            summary["images"].append(entry)
            summary["explanations_written"] += sum(1 for r in entry.get("methods", {}).values() if "error" not in r)
            summary["total_seconds"] = round(time.perf_counter() - start, 3)
            saved = save_summary(out, summary)  # after every image: a crash loses at most the current one
        summary["complete"] = True
    except KeyboardInterrupt:
        summary["interrupted"] = True
    finally:
        progress.close()
        summary["total_seconds"] = round(time.perf_counter() - start, 3)
        saved = save_summary(out, summary) and saved
    report(summary, out)
    if summary["interrupted"]:
        return 130
    return 0 if summary["explanations_written"] and saved else 1


def save_summary(out: OutputFolder, summary: dict) -> bool:
    try:
        out.write_json("summary.json", summary)
        return True
    except (OutputError, OSError) as err:
        print(f"error: summary.json: {printable(str(err))}", file=sys.stderr)
        return False


def report(summary: dict, out: OutputFolder) -> None:
    for e in summary["images"]:
        for line in [e.get("error")] + [f"{m}: {r['error']}" for m, r in e.get("methods", {}).items() if "error" in r]:
            if line:
                print(f"warning: {e['file']}: {printable(line)}", file=sys.stderr)
    for problem in summary["problems"]:
        print(f"warning: {problem['file']}: {problem['error']}", file=sys.stderr)
    done = summary["explanations_written"]
    state = "" if summary["complete"] else " (interrupted)"
    print(f"{done} explanation(s) of {len(summary['images'])} image(s) written to {out.shown}/ (summary.json){state}")
